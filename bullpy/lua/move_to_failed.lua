--[[
  A failed attempt (Node's job.moveToFailed: one MULTI of saveStacktrace-1 and then retryJob-7,
  moveToDelayed-4 or moveToFinished-9), as one script.

  KEYS[1] active KEYS[2] failed KEYS[3] job hash KEYS[4] wait KEYS[5] priority KEYS[6] stalled
  KEYS[7] delayed KEYS[8] meta-paused KEYS[9] paused KEYS[10] metrics:failed
  ARGV[1] job id  ARGV[2] token or "0"  ARGV[3] stacktrace JSON  ARGV[4] failed reason (raw text)
  ARGV[5] attempts made  ARGV[6] what next: "retry", "delay" or "fail"
  ARGV[7] retry: "LPUSH"/"RPUSH"; delay: the delayed score (due*4096 + low bits); fail: finished on
  ARGV[8] fail: keep count or ""  ARGV[9] fail: keep age (s) or ""  ARGV[10] fail: event payload
  ARGV[11] base key  ARGV[12] metrics max data points or ""
  ARGV[13] fail: the worker's clock offset from Redis's (ms), or "" to stamp ARGV[7] as finishedOn

  Returns 0, or -1 (no job), -2 (no lock), -6 (another worker's lock), -3 (not active). As in Node, the
  attempt (stacktrace, failedReason, attemptsMade) is saved even when the move is then refused.
]]
local rcall = redis.call
-- @include "stamp_time"
-- @include "lock_check"
-- @include "target_list"
-- @include "priority_insert"
-- @include "trim_finished"
-- @include "debounce_done"
-- @include "collect_metrics"
-- @include "finish_job"

local job_key, id, mode, base = KEYS[3], ARGV[1], ARGV[6], ARGV[11]
if rcall("EXISTS", job_key) ~= 1 then return -1 end
rcall("HMSET", job_key, "stacktrace", ARGV[3], "failedReason", ARGV[4], "attemptsMade", ARGV[5])

local code = lock_check(job_key, KEYS[6], ARGV[2], id)
if code < 0 then return code end
if rcall("LREM", KEYS[1], -1, id) < 1 then return -3 end

if mode == "retry" then
  local target = target_list(KEYS[8], KEYS[4], KEYS[9])
  local priority = tonumber(rcall("HGET", job_key, "priority")) or 0
  if priority == 0 then
    rcall(ARGV[7], target, id)
  else
    priority_insert(KEYS[5], priority, id, target)
  end
elseif mode == "delay" then
  local score = tonumber(ARGV[7])
  rcall("ZADD", KEYS[7], score, id)
  rcall("PUBLISH", KEYS[7], score / 4096)
else
  finish_job(base, job_key, id, KEYS[2], "failedReason", ARGV[4], stamp_time(ARGV[7], ARGV[13]), tonumber(ARGV[8]),
    tonumber(ARGV[9]),
    KEYS[10], ARGV[12], ARGV[10])
end
return 0
