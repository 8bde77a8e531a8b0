--[[
  Retry one finished job now (Bull's reprocessJob-6, behind `job.retry()`).

  KEYS[1] job hash  KEYS[2] job lock  KEYS[3] the set to retry from (failed or completed)
  KEYS[4] wait  KEYS[5] meta-paused  KEYS[6] paused
  ARGV[1] job id  ARGV[2] "LPUSH" or "RPUSH"  ARGV[3] token  ARGV[4] now (ms)

  Returns 1 when retried, 0 when the job does not exist, -1 when it is locked, -2 when it is not in
  the set. Divergence (safe): Node strips finishedOn/processedOn/failedReason and sets retriedOn before
  checking the set, so retrying a completed job corrupts it; here nothing changes unless it is retried.
]]
local rcall = redis.call
-- @include "target_list"
if rcall("EXISTS", KEYS[1]) ~= 1 then return 0 end
if rcall("EXISTS", KEYS[2]) == 1 then return -1 end
if rcall("ZREM", KEYS[3], ARGV[1]) ~= 1 then return -2 end
rcall("HDEL", KEYS[1], "finishedOn", "processedOn", "failedReason")
rcall("HSET", KEYS[1], "retriedOn", ARGV[4])
local target = target_list(KEYS[5], KEYS[4], KEYS[6])
rcall(ARGV[2], target, ARGV[1])
rcall("PUBLISH", KEYS[4] .. "ing@" .. ARGV[3], ARGV[1])
return 1
