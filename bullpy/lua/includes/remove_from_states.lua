-- Take a job id out of every list and set a job can be in. KEYS order shared by remove_job and
-- remove_jobs: active, wait, delayed, paused, completed, failed, priority. Returns how many held it.
local function remove_from_states(id)
  local n = 0
  for _, i in ipairs({1, 2, 4}) do n = n + redis.call("LREM", KEYS[i], 0, id) end
  for _, i in ipairs({3, 5, 6, 7}) do n = n + redis.call("ZREM", KEYS[i], id) end
  return n
end
