--[[
  Remove jobs of one state that are older than a cut-off (Bull's cleanJobsInSet-3, `queue.clean`).

  KEYS[1] the state's key  KEYS[2] priority
  ARGV[1] base key  ARGV[2] cut-off ms (now - grace)  ARGV[3] limit (0 = no limit)
  ARGV[4] state: wait, active, paused, delayed, completed or failed
  ARGV[5] "1" for a dry run (bullpy's `clean --dry-run`): the same walk, nothing removed
  Returns the removed ids (on a dry run, the ids that would be removed).

  As in Node: locked jobs are never removed; a job's age is the first present of finishedOn,
  processedOn, timestamp; lists are walked from the head (next to run) in windows of `limit`.
  Divergences (safe): ages are compared as numbers (Node compares strings), a job with no time at all
  does not inherit the previous job's time (a Node loop bug), and `delayed` with a limit is walked by
  rank like the other sets (Node compares ms against ms*4096 delayed scores and never removes any).
]]
local rcall = redis.call
-- @include "remove_job_keys"
local set_key, priority_key = KEYS[1], KEYS[2]
local base, cutoff, limit, state = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local dry = ARGV[5] == "1"
local is_list = state == "wait" or state == "active" or state == "paused"
local finished = state == "completed" or state == "failed"

local function is_old(job_key)
  local times = rcall("HMGET", job_key, "finishedOn", "processedOn", "timestamp")
  for i = 1, 3 do
    if times[i] then
      local t = tonumber(times[i])
      return t == nil or t < cutoff
    end
  end
  return true
end

local removed = {}
local function consider(id)
  local job_key = base .. id
  if rcall("EXISTS", job_key .. ":lock") == 0 and is_old(job_key) then
    if not dry then
      rcall("ZREM", priority_key, id)
      remove_job_keys(base, id, not finished)
    end
    removed[#removed + 1] = id
    return true
  end
  return false
end

if is_list then
  -- Node's order: the whole list left to right, or windows of `limit` from the head end, each window
  -- read left to right.
  local start, stop = 0, -1
  if limit > 0 then start = -limit end
  while true do
    local ids = rcall("LRANGE", set_key, start, stop)
    if #ids == 0 then break end
    for i, id in ipairs(ids) do
      if limit > 0 and #removed >= limit then break end
      if consider(id) and not dry then
        if limit > 0 then
          rcall("LSET", set_key, stop - #ids + i, "")
        else
          rcall("LSET", set_key, i - 1, "")
        end
      end
    end
    if limit <= 0 or #removed >= limit then break end
    start, stop = start - limit, stop - limit
  end
  rcall("LREM", set_key, 0, "")
else
  local offset = 0
  local window = limit > 0 and limit or 1000
  while true do
    local ids
    if state == "delayed" or limit <= 0 then
      ids = rcall("ZRANGE", set_key, offset, offset + window - 1)
    else
      ids = rcall("ZRANGEBYSCORE", set_key, 0, cutoff, "LIMIT", offset, window)
    end
    if #ids == 0 then break end
    local kept = 0
    for _, id in ipairs(ids) do
      if limit > 0 and #removed >= limit then break end
      -- A dry run leaves the id in the set, so the next window starts after it.
      if consider(id) and not dry then rcall("ZREM", set_key, id) else kept = kept + 1 end
    end
    if limit > 0 and #removed >= limit then break end
    offset = offset + kept
  end
end
return removed
