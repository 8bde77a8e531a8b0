--[[
  Set a job's progress and announce it (Bull's updateProgress-2).
  KEYS[1] job hash  KEYS[2] channel P:Q:progress
  ARGV[1] progress JSON  ARGV[2] event payload {"jobId":...,"progress":...}
  Returns 0, or -1 when the job does not exist.
]]
if redis.call("EXISTS", KEYS[1]) == 1 then
  redis.call("HSET", KEYS[1], "progress", ARGV[1])
  redis.call("PUBLISH", KEYS[2], ARGV[2])
  return 0
end
return -1
