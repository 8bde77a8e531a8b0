--[[
  Whether each job hash exists, and whether a worker holds its lock, for many jobs in one call (bullpy's
  own, for import's conflict check; Bull has none). The lock is looked up only for jobs that exist.

  KEYS[1] the queue's id key (only to route the call to the queue's node)
  ARGV[1] base key "prefix:name:"  ARGV[2 ..] job ids
  Returns one character per id: "0" no such job, "1" the job exists, "2" it exists and is locked.
]]
local rcall = redis.call
local base = ARGV[1]
local flags = {}
for i = 2, #ARGV do
  local job_key = base .. ARGV[i]
  local flag = "0"
  if rcall("EXISTS", job_key) == 1 then
    flag = rcall("EXISTS", job_key .. ":lock") == 1 and "2" or "1"
  end
  flags[i - 1] = flag
end
return table.concat(flags)
