--[[
  Move due delayed jobs to waiting (Bull's updateDelaySet-6) and announce the next due time.
  KEYS[1] delayed KEYS[2] active KEYS[3] wait KEYS[4] priority KEYS[5] paused KEYS[6] meta-paused
  ARGV[1] base key  ARGV[2] now (ms)  ARGV[3] token
  Returns the next delayed score (due*4096 + low bits) as a string, or nil.
]]
local rcall = redis.call
-- @include "target_list"
-- @include "priority_insert"
local jobs = rcall("ZRANGEBYSCORE", KEYS[1], 0, tonumber(ARGV[2]) * 4096, "LIMIT", 0, 1000)
if #jobs > 0 then
  rcall("ZREM", KEYS[1], unpack(jobs))
  local target = target_list(KEYS[6], KEYS[3], KEYS[5])
  for _, id in ipairs(jobs) do
    rcall("LREM", KEYS[2], 0, id)
    local priority = tonumber(rcall("HGET", ARGV[1] .. id, "priority")) or 0
    if priority == 0 then
      -- Due jobs queue behind the waiting ones, whatever their lifo option (as in Node).
      rcall("LPUSH", target, id)
    else
      priority_insert(KEYS[4], priority, id, target)
    end
    rcall("PUBLISH", KEYS[3] .. "ing@" .. ARGV[3], id)
    rcall("HSET", ARGV[1] .. id, "delay", 0)
  end
end
local next_score = rcall("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")[2]
if next_score ~= nil then
  rcall("PUBLISH", KEYS[1], next_score / 4096)
end
return next_score
