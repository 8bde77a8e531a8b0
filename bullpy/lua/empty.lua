--[[
  Remove every waiting, paused and delayed job (Bull's `queue.empty()`, which Node runs as two
  non-atomic MULTI blocks).

  KEYS[1] wait KEYS[2] paused KEYS[3] delayed KEYS[4] priority KEYS[5] limiter KEYS[6] limiter:index
  ARGV[1] base key
  Returns the number of jobs removed.

  Divergences (safe): atomic; the hashes (and logs) of delayed jobs are deleted too, where Node leaves
  them orphaned; the queue's paused state is left as it is, where Node deletes `meta-paused` but keeps
  `meta.paused` (the queue then runs while reporting itself paused).
]]
local rcall = redis.call
-- @include "remove_job_keys"
local base = ARGV[1]
local removed = 0
for _, key in ipairs({KEYS[1], KEYS[2]}) do
  for _, id in ipairs(rcall("LRANGE", key, 0, -1)) do
    remove_job_keys(base, id, true)
    removed = removed + 1
  end
end
for _, id in ipairs(rcall("ZRANGE", KEYS[3], 0, -1)) do
  remove_job_keys(base, id, true)
  removed = removed + 1
end
for _, key in ipairs(rcall("HVALS", KEYS[6])) do rcall("DEL", key) end
rcall("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[5] .. ":limited")
return removed
