--[[
  A job's state, checked in Node's order (job.getState): completed, failed, delayed, active,
  waiting, paused, else stuck; "missing" when the job hash does not exist.
  KEYS[1] completed KEYS[2] failed KEYS[3] delayed KEYS[4] active KEYS[5] wait KEYS[6] paused
  KEYS[7] job hash
  ARGV[1] job id
]]
local rcall = redis.call
local id = ARGV[1]
if rcall("ZSCORE", KEYS[1], id) then return "completed" end
if rcall("ZSCORE", KEYS[2], id) then return "failed" end
if rcall("ZSCORE", KEYS[3], id) then return "delayed" end
local lists = {{KEYS[4], "active"}, {KEYS[5], "waiting"}, {KEYS[6], "paused"}}
for _, l in ipairs(lists) do
  if rcall("LPOS", l[1], id) then return l[2] end
end
if rcall("EXISTS", KEYS[7]) == 0 then return "missing" end
return "stuck"
