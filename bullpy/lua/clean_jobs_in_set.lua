--[[
  One bounded step of "remove the jobs of one state older than a cut-off" (Bull's cleanJobsInSet-3,
  `queue.clean`), which the caller repeats until the walk is over.

  KEYS[1] the state's key  KEYS[2] priority
  ARGV[1] base key  ARGV[2] cut-off ms (now - grace)  ARGV[3] limit (0 = no limit)
  ARGV[4] state: wait, active, paused, delayed, completed or failed
  ARGV[5] "1" for a dry run (bullpy's `clean --dry-run`): the same walk, nothing removed
  ARGV[6] how many more jobs may be taken in this step (0 = no limit)
  ARGV[7] at most this many jobs visited  ARGV[8] time budget, microseconds
  ARGV[9...] the cursor the last step returned (none for the first step)
  Returns {ids removed in this step (on a dry run, that would be), the next cursor ({} when done)}.

  As in Node: locked jobs are never removed; a job's age is the first present of finishedOn,
  processedOn, timestamp; with a limit, lists are walked in windows of `limit` from the head, each window
  read left to right; without one, every job is visited (lists from the head here: the caller reverses
  the ids into Node's left-to-right order) and sets in score order.
  Divergences (safe): ages are compared as numbers (Node compares strings), a job with no time at all
  does not inherit the previous job's time (a Node loop bug), and `delayed` with a limit is walked by
  rank like the other sets (Node compares ms against ms*4096 delayed scores and never removes any).
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "budget"
-- @include "list_walk"
local set_key, priority_key = KEYS[1], KEYS[2]
local base, cutoff, limit, state = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local dry = ARGV[5] == "1"
local remaining, batch = tonumber(ARGV[6]), tonumber(ARGV[7])
budget_us = tonumber(ARGV[8])
local cursor = {}
for i = 9, #ARGV do cursor[#cursor + 1] = ARGV[i] end
local finished = state == "completed" or state == "failed"

local function is_old(job_key)
  -- pcall: a job key another program made something other than a hash is kept, not an error for the walk.
  local times = redis.pcall("HMGET", job_key, "finishedOn", "processedOn", "timestamp")
  if times.err then return false end
  for i = 1, 3 do
    if times[i] then
      local t = tonumber(times[i])
      return t == nil or t < cutoff
    end
  end
  return true
end

local taken = {}
-- True when the job is taken (removed, or would be on a dry run).
local function visit(id)
  local job_key = base .. id
  if rcall("EXISTS", job_key .. ":lock") == 1 or not is_old(job_key) then return false end
  taken[#taken + 1] = id
  if not dry then
    rcall("ZREM", priority_key, id)
    remove_job_keys(base, id, not finished)
  end
  return true
end

local function enough()
  return (remaining > 0 and #taken >= remaining) or over_budget(1)
end

-- Sets: in score order from the rank after the last kept job seen (the anchor), which stays put while
-- the jobs before it are removed. With a limit (not for delayed) only scores in [0, cut-off] are walked,
-- as Node's ZRANGEBYSCORE 0 cut-off.
local function walk_set()
  local by_score = limit > 0 and state ~= "delayed"
  local anchor, anchor_score = cursor[2] or "", cursor[3] or ""
  local start = 0
  if anchor ~= "" then
    local rank = rcall("ZRANK", set_key, anchor)
    if rank then
      start = rank + 1
    else
      -- The anchor went meanwhile: go back to its score (jobs kept at that score are looked at again).
      start = rcall("ZCOUNT", set_key, "-inf", "(" .. anchor_score)
    end
  elseif by_score then
    start = rcall("ZCOUNT", set_key, "-inf", "(0")
  end
  local visited = 0
  while visited < batch do
    local m = math.min(batch - visited, LIST_READ)
    local items = rcall("ZRANGE", set_key, start, start + m - 1, "WITHSCORES")
    for i = 1, #items, 2 do
      local id, score = items[i], items[i + 1]
      if by_score and tonumber(score) > cutoff then return nil end
      if visited > 0 and enough() then return {"Z", anchor, anchor_score} end
      visited = visited + 1
      if visit(id) and not dry then
        rcall("ZREM", set_key, id)
      else
        start, anchor, anchor_score = start + 1, id, score
      end
    end
    if #items < 2 * m then return nil end
  end
  return {"Z", anchor, anchor_score}
end

local next_cursor
if state == "wait" or state == "active" or state == "paused" then
  local leaves = function(id) return visit(id) and not dry end
  if limit > 0 then
    next_cursor = walk_windows(set_key, cursor, limit, batch, leaves, enough)
  else
    next_cursor = walk_list(set_key, cursor, batch, leaves, enough)
  end
else
  next_cursor = walk_set()
end
return {taken, next_cursor or {}}
