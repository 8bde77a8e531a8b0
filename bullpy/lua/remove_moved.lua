--[[
  Remove from the source queue the jobs a move has just copied, each only if it is still exactly
  what was copied (bullpy's own; Bull has none): in the same state, with the same lifecycle fields,
  and not locked by a worker. Anything else is left alone and reported.

  KEYS[1] active  KEYS[2] wait  KEYS[3] delayed  KEYS[4] paused  KEYS[5] completed  KEYS[6] failed
  KEYS[7] priority

  ARGV[1] base key  ARGV[2] number of jobs, then per job: id, KEYS index of the state it was
  copied from, fingerprint (see below)
  Fingerprint: the values of processedOn, finishedOn, attemptsMade, stalledCounter, retriedOn and
  delay joined by "\n" ("" for a missing field): every state change Bull makes touches one of them.

  Returns one status per job: "removed", "locked" (a worker holds its lock) or "changed" (no
  longer in that state, changed, or gone).
]]
local rcall = redis.call
local base, n = ARGV[1], tonumber(ARGV[2])
local FIELDS = {"processedOn", "finishedOn", "attemptsMade", "stalledCounter", "retriedOn", "delay"}

-- @include "remove_job_keys"

local result = {}
for i = 0, n - 1 do
  local id, index, fingerprint = ARGV[3 + i * 3], tonumber(ARGV[4 + i * 3]), ARGV[5 + i * 3]
  local job_key = base .. id
  local status = "removed"
  if rcall("EXISTS", job_key .. ":lock") == 1 then
    status = "locked"
  else
    local values = rcall("HMGET", job_key, unpack(FIELDS))
    for j = 1, #FIELDS do values[j] = values[j] or "" end
    if rcall("EXISTS", job_key) == 0 or table.concat(values, "\n") ~= fingerprint then
      status = "changed"
    elseif index == 1 or index == 2 or index == 4 then
      -- Count 1 from the left: a move reads lists from the left, so the id is near that end.
      if rcall("LREM", KEYS[index], 1, id) == 0 then status = "changed" end
    elseif rcall("ZREM", KEYS[index], id) == 0 then
      status = "changed"
    end
  end
  if status == "removed" then
    rcall("ZREM", KEYS[7], id)
    local deid = rcall("HGET", job_key, "deid")
    if deid and rcall("GET", base .. "de:" .. deid) == id then
      rcall("DEL", base .. "de:" .. deid)
    end
    remove_job_keys(base, id, false)
  end
  result[#result + 1] = status
end
return result
