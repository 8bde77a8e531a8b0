-- Lock a job just moved to `active` and read it: SET lock PX, ZREM priority, PUBLISH active@token,
-- HSET processedOn (Bull's moveToActive tail, shared with moveToFinished's fetch-next).
local function take_job(base, job_id, token, lock_duration, now, priority_key, active_channel)
  local job_key = base .. job_id
  redis.call("SET", job_key .. ":lock", token, "PX", lock_duration)
  redis.call("ZREM", priority_key, job_id)
  redis.call("PUBLISH", active_channel, job_id)
  redis.call("HSET", job_key, "processedOn", now)
  return {redis.call("HGETALL", job_key), job_id}
end
