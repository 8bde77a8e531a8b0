--[[
  One bounded step of "remove every waiting, paused and delayed job" (Bull's `queue.empty()`, which Node
  runs as two non-atomic MULTI blocks); the caller repeats it until nothing is left.

  KEYS[1] wait KEYS[2] paused KEYS[3] delayed KEYS[4] priority KEYS[5] limiter KEYS[6] limiter:index
  ARGV[1] base key  ARGV[2] at most this many jobs per step  ARGV[3] time budget, microseconds
  Returns {jobs removed by this step, 1 when jobs are left (call again) or 0}.

  Jobs go from the head (next to run) of wait, then of paused, then the soonest-due delayed ones. The
  step that finds all three empty also deletes priority, the limiter counter, limiter:index and the
  limited sets, as Node's empty does.
  Divergences (safe): the hashes (and logs) of delayed jobs are deleted too, where Node leaves them
  orphaned; the queue's paused state is left as it is, where Node deletes `meta-paused` but keeps
  `meta.paused` (the queue then runs while reporting itself paused).
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "budget"
local base, batch = ARGV[1], tonumber(ARGV[2])
budget_us = tonumber(ARGV[3])
local removed = 0

-- Removes the jobs of `ids` in order until the budget is spent; returns how many went.
local function drop(ids)
  local n = 0
  for _, id in ipairs(ids) do
    if removed + n > 0 and over_budget(1) then break end
    remove_job_keys(base, id, true)
    n = n + 1
  end
  for i = 1, n, 5000 do rcall("ZREM", KEYS[4], unpack(ids, i, math.min(i + 4999, n))) end
  removed = removed + n
  return n
end

for _, key in ipairs({KEYS[1], KEYS[2]}) do
  if removed < batch then
    local ids = rcall("LRANGE", key, removed - batch, -1)
    local head_first = {}
    for i = #ids, 1, -1 do head_first[#head_first + 1] = ids[i] end
    local n = drop(head_first)
    if n > 0 then rcall("LTRIM", key, 0, -n - 1) end
    if n < #ids then return {removed, 1} end
  end
end
if removed < batch then
  local ids = rcall("ZRANGE", KEYS[3], 0, batch - removed - 1)
  local n = drop(ids)
  if n > 0 then rcall("ZREMRANGEBYRANK", KEYS[3], 0, n - 1) end
  if n < #ids then return {removed, 1} end
end
if rcall("EXISTS", KEYS[1], KEYS[2], KEYS[3]) > 0 then return {removed, 1} end
for _, key in ipairs(rcall("HVALS", KEYS[6])) do rcall("UNLINK", key) end
rcall("UNLINK", KEYS[4], KEYS[5], KEYS[6], KEYS[5] .. ":limited")
return {removed, 0}
