-- Bull's priority placement, reproduced step by step so that the list order is what Node produces:
-- the job is placed left of the (count-1)-th element from the right end, where count is the number
-- of waiting prioritised jobs with a priority <= this one (the new job included).
local function priority_insert(priority_key, priority, job_id, list_key)
  redis.call("ZADD", priority_key, priority, job_id)
  local count = redis.call("ZCOUNT", priority_key, 0, priority)
  local len = redis.call("LLEN", list_key)
  local pivot = redis.call("LINDEX", list_key, len - (count - 1))
  if pivot then
    redis.call("LINSERT", list_key, "BEFORE", pivot, job_id)
  else
    redis.call("RPUSH", list_key, job_id)
  end
end
