-- Bull's lock check before a job leaves `active`: token "0" skips it (Node's ignoreLock); otherwise the
-- lock must hold this token, and is then released with the job's stalled mark. -6: another worker's
-- lock; -2: no lock at all.
local function lock_check(job_key, stalled_key, token, job_id)
  if token ~= "0" then
    local lock_key = job_key .. ":lock"
    local holder = redis.call("GET", lock_key)
    if holder == token then
      redis.call("DEL", lock_key)
      redis.call("SREM", stalled_key, job_id)
    elseif holder then
      return -6
    else
      return -2
    end
  end
  return 0
end
