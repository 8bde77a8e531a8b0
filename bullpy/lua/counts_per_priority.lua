--[[
  Count waiting jobs per priority (Bull's getCountsPerPriority-4).
  KEYS[1] wait KEYS[2] paused KEYS[3] meta-paused KEYS[4] priority
  ARGV priorities (numbers as strings)
  Returns one count per priority, in order. Priority 0 = waiting jobs without a priority.
]]
local rcall = redis.call
-- @include "target_list"
local target = target_list(KEYS[3], KEYS[1], KEYS[2])
local counts = {}
for i, p in ipairs(ARGV) do
  if tonumber(p) == 0 then
    counts[i] = math.max(rcall("LLEN", target) - rcall("ZCARD", KEYS[4]), 0)
  else
    counts[i] = rcall("ZCOUNT", KEYS[4], p, p)
  end
end
return counts
