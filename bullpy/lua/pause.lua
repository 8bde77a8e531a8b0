--[[
  Global pause or resume (Bull's pause-5).

  KEYS[1] source list (wait to pause, paused to resume)  KEYS[2] destination list
  KEYS[3] meta-paused  KEYS[4] channel (P:Q:paused or P:Q:resumed)  KEYS[5] meta
  ARGV[1] "paused" or "resumed"
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 1 then
  -- RENAME replaces the destination, exactly as Node does; every bullpy writer honours meta-paused,
  -- so the destination is empty here unless a foreign writer ignored the pause.
  rcall("RENAME", KEYS[1], KEYS[2])
end
if ARGV[1] == "paused" then
  rcall("SET", KEYS[3], 1)
  rcall("HSET", KEYS[5], "paused", 1)
else
  rcall("DEL", KEYS[3])
  rcall("HDEL", KEYS[5], "paused")
end
rcall("PUBLISH", KEYS[4], ARGV[1])
return 0
