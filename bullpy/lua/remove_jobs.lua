--[[
  One bounded step of "remove every unlocked job whose id matches a pattern" (Bull's removeJobs-8):
  one SCAN step over the job hashes, or a given list of ids.

  KEYS[1] active KEYS[2] wait KEYS[3] delayed KEYS[4] paused KEYS[5] completed KEYS[6] failed
  KEYS[7] priority
  ARGV[1] base key  ARGV[2] MATCH pattern (the base key glob-escaped, then the user's pattern)
  ARGV[3] SCAN cursor, or "" to look at the ids ARGV[8...] instead  ARGV[4] SCAN COUNT
  ARGV[5] "1" for a dry run (nothing removed)  ARGV[6] time budget, microseconds
  ARGV[7] "1" to remove jobs that are in no sorted set too (the caller has walked the lists for them)
  Returns {next cursor ("0": the scan is over; "" for given ids), removed ids (on a dry run, that
  would be), deferred ids, ids not looked at yet (the budget ran out: pass them again)}.

  A job in a sorted set (delayed, completed, failed) is removed here. One in none is deferred: it waits
  in a list (wait, paused, active) or is an orphan hash, and taking an id out of a long list costs an LREM
  over the whole list, so the caller walks the lists once for all of them (remove_listed_jobs) instead.
  Divergence (safe): Node removes every *hash* under the base key, including the queue's own `meta`,
  `limiter:index` and `metrics:*` hashes; those are skipped here.
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "budget"
local base = ARGV[1]
local dry, orphans = ARGV[5] == "1", ARGV[7] == "1"
budget_us = tonumber(ARGV[6])
local skip = {meta = true, ["limiter:index"] = true, ["metrics:completed"] = true, ["metrics:failed"] = true}

local cursor, ids = "", {}
if ARGV[3] == "" then
  for i = 8, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  local reply = rcall("SCAN", ARGV[3], "MATCH", ARGV[2], "COUNT", ARGV[4])
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do ids[#ids + 1] = string.sub(key, #base + 1) end
end

local removed, deferred, later = {}, {}, {}
for i, id in ipairs(ids) do
  if i > 1 and over_budget(1) then
    for j = i, #ids do later[#later + 1] = ids[j] end
    break
  end
  local key = base .. id
  local t = rcall("TYPE", key)
  t = t["ok"] or t
  if t == "hash" and not skip[id] and rcall("EXISTS", key .. ":lock") == 0 then
    if dry then
      removed[#removed + 1] = id
    else
      local held = rcall("ZREM", KEYS[3], id) + rcall("ZREM", KEYS[5], id) + rcall("ZREM", KEYS[6], id)
      if held > 0 or orphans then
        rcall("ZREM", KEYS[7], id)
        remove_job_keys(base, id, true)
        removed[#removed + 1] = id
      else
        deferred[#deferred + 1] = id
      end
    end
  end
end
return {cursor, removed, deferred, later}
