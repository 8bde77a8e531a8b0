--[[
  One bounded step of remove_jobs' walk over a list (wait, paused or active): removes the unlocked jobs
  whose id matches the pattern (or is one of the given ids), taking them out of the list with one LREM
  per step instead of one per job.

  KEYS[1] the list  KEYS[2] delayed  KEYS[3] completed  KEYS[4] failed  KEYS[5] priority
  ARGV[1] base key  ARGV[2] the user's glob pattern, or "" to remove the ids ARGV[6+n...] instead
  ARGV[3] at most this many ids visited  ARGV[4] time budget, microseconds
  ARGV[5] n, the cursor's length  ARGV[6...5+n] the cursor the last step returned (n = 0 to begin)
  Returns {removed ids, the next cursor ({} when the walk is over)}.

  What goes is what Bull's removeJobs removes: an id whose key is a hash (not one of the queue's own
  hashes) with no lock; it leaves every list and set it is in, with its hash, logs and debounce marker.
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "budget"
-- @include "list_walk"
-- @include "glob_match"
local base, pattern, batch = ARGV[1], ARGV[2], tonumber(ARGV[3])
budget_us = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local cursor, wanted = {}, {}
for i = 6, 5 + n do cursor[#cursor + 1] = ARGV[i] end
for i = 6 + n, #ARGV do wanted[ARGV[i]] = true end
local skip = {meta = true, ["limiter:index"] = true, ["metrics:completed"] = true, ["metrics:failed"] = true}

local removed, gone = {}, {}
local function leaves(id)
  if gone[id] then return true end -- a second copy of an id removed in this step
  if pattern ~= "" then
    if not glob_match(pattern, id) then return false end
  elseif not wanted[id] then
    return false
  end
  local key = base .. id
  local t = rcall("TYPE", key)
  t = t["ok"] or t
  if t ~= "hash" or skip[id] or rcall("EXISTS", key .. ":lock") == 1 then return false end
  for i = 2, 5 do rcall("ZREM", KEYS[i], id) end
  remove_job_keys(base, id, true)
  removed[#removed + 1] = id
  gone[id] = true
  return true
end

local function enough()
  return over_budget(16)
end

return {removed, walk_list(KEYS[1], cursor, batch, leaves, enough) or {}}
