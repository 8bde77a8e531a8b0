--[[
  Remove a repeatable job definition and its next scheduled iteration (Bull's removeRepeatable-2).
  KEYS[1] repeat  KEYS[2] delayed
  ARGV[1] iteration id prefix "repeat:<md5>:"  ARGV[2] repeat key  ARGV[3] base key
  Returns 1 when the definition existed, else 0.
]]
local rcall = redis.call
local millis = rcall("ZSCORE", KEYS[1], ARGV[2])
if millis then
  -- ZSCORE answers the score as Redis prints it; repeat scores are whole ms.
  local id = ARGV[1] .. string.format("%d", tonumber(millis))
  if rcall("ZREM", KEYS[2], id) == 1 then
    rcall("DEL", ARGV[3] .. id, ARGV[3] .. id .. ":logs")
  end
  rcall("ZREM", KEYS[1], ARGV[2])
  return 1
end
return 0
