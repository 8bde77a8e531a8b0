--[[
  Extend the locks of a worker's running jobs (Bull's extendLock-2, for many jobs in one call).
  KEYS[1] stalled
  ARGV[1] base key  ARGV[2] token  ARGV[3] lock duration (ms)  ARGV[4..] job ids
  Returns one 1/0 per job: 0 when the lock is no longer this worker's (it is never re-created).
]]
local rcall = redis.call
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local lock_key = ARGV[1] .. id .. ":lock"
  if rcall("GET", lock_key) == ARGV[2] then
    rcall("SET", lock_key, ARGV[2], "PX", ARGV[3])
    rcall("SREM", KEYS[1], id)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
