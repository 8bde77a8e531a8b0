--[[
  Finish a job: completed, or failed for good (Bull's moveToFinished-9), optionally taking the next one.

  KEYS[1] active KEYS[2] completed or failed KEYS[3] job hash KEYS[4] wait KEYS[5] priority
  KEYS[6] channel active@<token> KEYS[7] stalled KEYS[8] metrics key (metrics:completed|failed)
  ARGV[1] job id  ARGV[2] finished on (ms)  ARGV[3] "returnvalue" or "failedReason"
  ARGV[4] the value (returnvalue JSON, or the raw failure message)  ARGV[5] token, or "0" to skip
  the lock check  ARGV[6] keep count ("" = keep all, "0" = delete the job)  ARGV[7] keep age in
  seconds or ""  ARGV[8] event payload  ARGV[9] "1" to fetch the next job  ARGV[10] base key
  ARGV[11] lock duration (ms)  ARGV[12] metrics max data points or ""  ARGV[13] the worker's clock offset
  from Redis's (ms), or "" to stamp ARGV[2] as finishedOn (and processedOn of the next job)

  Returns 0, {hash fields, id} of the next job, or -1 (no job), -2 (no lock), -6 (another worker's
  lock), -3 (not active).
]]
local rcall = redis.call
-- @include "stamp_time"
-- @include "lock_check"
-- @include "trim_finished"
-- @include "debounce_done"
-- @include "collect_metrics"
-- @include "take_job"
-- @include "finish_job"

local job_key, id, base = KEYS[3], ARGV[1], ARGV[10]
if rcall("EXISTS", job_key) ~= 1 then return -1 end
local code = lock_check(job_key, KEYS[7], ARGV[5], id)
if code < 0 then return code end
if rcall("LREM", KEYS[1], -1, id) < 1 then return -3 end

local now = stamp_time(ARGV[2], ARGV[13])
finish_job(base, job_key, id, KEYS[2], ARGV[3], ARGV[4], now, tonumber(ARGV[6]), tonumber(ARGV[7]),
  KEYS[8], ARGV[12], ARGV[8])

if ARGV[9] == "1" then
  local next_id = rcall("RPOPLPUSH", KEYS[4], KEYS[1])
  if next_id then
    return take_job(base, next_id, ARGV[5], ARGV[11], now, KEYS[5], KEYS[6])
  end
end
return 0
