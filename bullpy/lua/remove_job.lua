--[[
  Remove one job from every state (Bull's removeJob-11).
  KEYS[1] active KEYS[2] wait KEYS[3] delayed KEYS[4] paused KEYS[5] completed KEYS[6] failed
  KEYS[7] priority
  ARGV[1] base key  ARGV[2] job id
  Returns 1 when removed, 0 when the job is locked by a worker (left untouched), -1 when it does
  not exist at all.
]]
local rcall = redis.call
-- @include "remove_job_keys"
local base, id = ARGV[1], ARGV[2]
if rcall("EXISTS", base .. id .. ":lock") == 1 then return 0 end
if rcall("EXISTS", base .. id) == 0 then
  -- A dangling id still gets cleaned out of the lists and sets below; report it as missing.
  local found = 0
  for i = 1, 4 do
    if i ~= 3 then found = found + rcall("LREM", KEYS[i], 0, id) end
  end
  for _, k in ipairs({KEYS[3], KEYS[5], KEYS[6], KEYS[7]}) do found = found + rcall("ZREM", k, id) end
  if found == 0 then return -1 end
  return 1
end
rcall("LREM", KEYS[1], 0, id)
rcall("LREM", KEYS[2], 0, id)
rcall("LREM", KEYS[4], 0, id)
rcall("ZREM", KEYS[3], id)
rcall("ZREM", KEYS[5], id)
rcall("ZREM", KEYS[6], id)
rcall("ZREM", KEYS[7], id)
remove_job_keys(base, id, true)
return 1
