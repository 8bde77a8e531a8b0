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
-- @include "remove_from_states"
local base, id = ARGV[1], ARGV[2]
if rcall("EXISTS", base .. id .. ":lock") == 1 then return 0 end
local held = remove_from_states(id)
if rcall("EXISTS", base .. id) == 0 then
  -- A dangling id is still cleaned out of the lists and sets; with nothing at all it is missing.
  if held == 0 then return -1 end
  return 1
end
remove_job_keys(base, id, true)
return 1
