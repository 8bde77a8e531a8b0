--[[
  Move up to `count` jobs of a finished set back to waiting (Bull's retryJobs-5, `queue.retryJobs()`).

  KEYS[1] base (unused, kept for Bull's key order)  KEYS[2] failed (or completed)  KEYS[3] wait
  KEYS[4] meta-paused  KEYS[5] paused
  ARGV[1] count  ARGV[2] base key
  Returns 1 when exactly `count` jobs were moved (call again), else 0.
]]
local rcall = redis.call
-- @include "target_list"
local count = tonumber(ARGV[1])
local ids = rcall("ZRANGE", KEYS[2], 0, count - 1)
if #ids == 0 then return 0 end
local target = target_list(KEYS[4], KEYS[3], KEYS[5])
for i = 1, #ids, 7000 do
  local last = math.min(i + 6999, #ids)
  for j = i, last do
    rcall("HDEL", ARGV[2] .. ids[j], "finishedOn", "processedOn", "failedReason")
  end
  rcall("ZREM", KEYS[2], unpack(ids, i, last))
  rcall("LPUSH", target, unpack(ids, i, last))
end
if #ids == count then return 1 end
return 0
