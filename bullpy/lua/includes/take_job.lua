-- Lock a job just moved to `active` and read it: SET lock PX, ZREM priority, PUBLISH active@token,
-- HSET processedOn (Bull's moveToActive tail, shared with moveToFinished's fetch-next).
-- Divergence (safe, docs/divergences.md W2): a job id whose key holds no hash (gone, or another program's
-- value of another type) is not taken. Node writes processedOn there regardless: a missing hash becomes a
-- ghost job that its worker runs with empty data, and a key of another type fails the script with the id
-- left in `active`. Here the id moves from `active` to `failed`, the key is not touched, and the reply is
-- {its type, id} so the worker reports it.
local function take_job(base, job_id, token, lock_duration, now, priority_key, active_channel)
  local job_key = base .. job_id
  local kind = redis.call("TYPE", job_key)["ok"]
  if kind ~= "hash" then
    redis.call("LREM", base .. "active", 1, job_id)
    redis.call("ZADD", base .. "failed", now, job_id)
    return {kind, job_id}
  end
  redis.call("SET", job_key .. ":lock", token, "PX", lock_duration)
  redis.call("ZREM", priority_key, job_id)
  redis.call("PUBLISH", active_channel, job_id)
  redis.call("HSET", job_key, "processedOn", now)
  return {redis.call("HGETALL", job_key), job_id}
end
