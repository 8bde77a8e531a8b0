--[[
  Append a row to a job's log (Bull's addLog-2).
  KEYS[1] job hash  KEYS[2] job logs list
  ARGV[1] job id  ARGV[2] row  ARGV[3] keep at most this many rows, or ""
  Returns the number of rows kept, or -1 when the job does not exist.
]]
if redis.call("EXISTS", KEYS[1]) == 1 then
  local len = redis.call("RPUSH", KEYS[2], ARGV[2])
  if ARGV[3] ~= "" then
    local keep = tonumber(ARGV[3])
    redis.call("LTRIM", KEYS[2], -keep, -1)
    return math.min(keep, len)
  end
  return len
end
return -1
