--[[
  Take the next job for a worker (Bull's moveToActive-8), with Bull's shared rate limiter.

  KEYS[1] wait KEYS[2] active KEYS[3] priority KEYS[4] channel active@<token> KEYS[5] stalled
  KEYS[6] limiter KEYS[7] delayed KEYS[8] channel drained
  ARGV[1] base key  ARGV[2] token  ARGV[3] lock duration (ms)  ARGV[4] now (ms)
  ARGV[5] job id already moved by BLMOVE, or ""
  ARGV[6] limiter max or ""  ARGV[7] limiter duration (ms)  ARGV[8] "1" when grouping by job id suffix
  ARGV[9] the worker's clock offset from Redis's (ms), or "" to stamp ARGV[4] (see includes/stamp_time)

  Returns {hash fields, id}, or nil when there was no job (publishes `drained`) or the job was
  rate-limited (parked in `delayed`).

  The limiter keys and arithmetic are Node's, so a mixed fleet shares one limit. Divergence (safe):
  there is no bounceBack; a limited job is always parked in `delayed` (Node's bounceBack drops it).
]]
local rcall = redis.call
-- @include "stamp_time"
-- @include "take_job"

local function rate_limited(job_id, max_jobs, now)
  local duration = tonumber(ARGV[7])
  local counter_key = KEYS[6]
  local index_key = counter_key .. ":index"
  if ARGV[8] == "1" then
    local group = string.match(job_id, "[^:]+$")
    if group ~= nil then counter_key = counter_key .. ":" .. group end
  end
  local limited_key = counter_key .. ":limited"
  local delay = 0
  if rcall("SISMEMBER", limited_key, job_id) == 1 then
    rcall("SREM", limited_key, job_id)
    rcall("HDEL", index_key, job_id)
  else
    local parked = rcall("SCARD", limited_key)
    if parked > 0 then
      delay = ((parked * duration * 1.1) / max_jobs) + tonumber(rcall("PTTL", counter_key))
    end
  end
  local counter = tonumber(rcall("GET", counter_key)) or 0
  if delay == 0 and counter >= max_jobs then
    delay = tonumber(rcall("PTTL", counter_key)) + ((counter - max_jobs) * duration) / max_jobs
  end
  if delay > 0 then
    local due = delay + now
    rcall("ZADD", KEYS[7], due * 4096 + (counter % 4096), job_id)
    rcall("PUBLISH", KEYS[7], due)
    rcall("SADD", limited_key, job_id)
    rcall("HSET", index_key, job_id, limited_key)
    rcall("LREM", KEYS[2], 1, job_id)
    return true
  end
  if counter == 0 then
    rcall("PSETEX", counter_key, duration, 1)
  else
    rcall("INCR", counter_key)
  end
  return false
end

local job_id = ARGV[5]
if job_id ~= "" then
  rcall("SREM", KEYS[5], job_id)
else
  job_id = rcall("RPOPLPUSH", KEYS[1], KEYS[2])
end
if not job_id then
  rcall("PUBLISH", KEYS[8], "")
  return nil
end
local now = stamp_time(ARGV[4], ARGV[9])
local max_jobs = tonumber(ARGV[6])
if max_jobs and rate_limited(job_id, max_jobs, now) then
  return nil
end
return take_job(ARGV[1], job_id, ARGV[2], ARGV[3], now, KEYS[3], KEYS[4])
