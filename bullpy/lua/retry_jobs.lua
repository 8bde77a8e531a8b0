--[[
  Move up to `count` jobs of a finished set back to waiting (Bull's retryJobs-5, `queue.retryJobs()`),
  within a time budget.

  KEYS[1] base (unused, kept for Bull's key order)  KEYS[2] failed (or completed)  KEYS[3] wait
  KEYS[4] meta-paused  KEYS[5] paused
  ARGV[1] count  ARGV[2] base key  ARGV[3] time budget, microseconds
  Returns 1 when `count` jobs were moved or the time ran out (call again), else 0.

  The jobs go oldest first and are pushed in that order, so steps cut short by the budget leave the
  waiting list as one call would have.
]]
local rcall = redis.call
-- @include "target_list"
-- @include "budget"
local count = tonumber(ARGV[1])
budget_us = tonumber(ARGV[3])
local ids = rcall("ZRANGE", KEYS[2], 0, count - 1)
if #ids == 0 then return 0 end
local n = 0
for i, id in ipairs(ids) do
  if i > 1 and over_budget(4) then break end
  rcall("HDEL", ARGV[2] .. id, "finishedOn", "processedOn", "failedReason")
  n = i
end
local target = target_list(KEYS[4], KEYS[3], KEYS[5])
for i = 1, n, 5000 do
  local last = math.min(i + 4999, n)
  rcall("ZREM", KEYS[2], unpack(ids, i, last))
  rcall("LPUSH", target, unpack(ids, i, last))
end
if n < #ids or #ids == count then return 1 end
return 0
