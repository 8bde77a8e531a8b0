-- Bull's priority placement, reproduced step by step so that the list order is what Node produces:
-- the job is placed left of the element at index len - (count - 1) (a negative index counting from the
-- right, as LINDEX reads it), where count is the number of waiting prioritised jobs with a priority <= this
-- one (the new job included); with no element there it goes to the right end.
-- Node does it with LINSERT BEFORE, which looks for the pivot from the left end: ~20 ns an element, 17 ms on
-- a 900,000-job list when the place is near the right end (few prioritised jobs: the usual case). There the
-- same place is reached from the right instead: the elements right of it are taken off and pushed back
-- after the job (~180 ns an element), which leaves the very list LINSERT does, ids being unique.
local function priority_insert(priority_key, priority, job_id, list_key)
  redis.call("ZADD", priority_key, priority, job_id)
  local count = redis.call("ZCOUNT", priority_key, 0, priority)
  local len = redis.call("LLEN", list_key)
  local at = len - (count - 1)
  if at < 0 then at = len + at end
  if at < 0 or at >= len then
    redis.call("RPUSH", list_key, job_id)
  elseif (len - at) * 10 < at then
    local tail = redis.call("LRANGE", list_key, at, -1)
    redis.call("LTRIM", list_key, 0, at - 1)
    redis.call("RPUSH", list_key, job_id)
    for i = 1, #tail, 5000 do redis.call("RPUSH", list_key, unpack(tail, i, math.min(i + 4999, #tail))) end
  else
    redis.call("LINSERT", list_key, "BEFORE", redis.call("LINDEX", list_key, at), job_id)
  end
end
