-- Delete a job's hash and logs, its debounce marker (when asked) and its rate-limiter bookkeeping.
local function remove_job_keys(base, job_id, with_debounce)
  local job_key = base .. job_id
  if with_debounce then
    local deid = redis.call("HGET", job_key, "deid")
    if deid then
      redis.call("DEL", base .. "de:" .. deid)
    end
  end
  redis.call("DEL", job_key, job_key .. ":logs")
  local index_key = base .. "limiter:index"
  local limited_key = redis.call("HGET", index_key, job_id)
  if limited_key then
    redis.call("SREM", limited_key, job_id)
    redis.call("HDEL", index_key, job_id)
  end
end
