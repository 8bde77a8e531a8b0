--[[
  Move a delayed job to waiting now (Bull's promote-5).
  KEYS[1] delayed  KEYS[2] wait  KEYS[3] paused  KEYS[4] meta-paused  KEYS[5] priority
  ARGV[1] base key  ARGV[2] job id  ARGV[3] token
  Returns 0, or -3 when the job is not delayed.
]]
local rcall = redis.call
-- @include "target_list"
-- @include "priority_insert"
if rcall("ZREM", KEYS[1], ARGV[2]) ~= 1 then return -3 end
local target = target_list(KEYS[4], KEYS[2], KEYS[3])
local priority = tonumber(rcall("HGET", ARGV[1] .. ARGV[2], "priority")) or 0
if priority == 0 then
  rcall("LPUSH", target, ARGV[2])
else
  priority_insert(KEYS[5], priority, ARGV[2], target)
end
rcall("PUBLISH", KEYS[2] .. "ing@" .. ARGV[3], ARGV[2])
rcall("HSET", ARGV[1] .. ARGV[2], "delay", 0)
return 0
