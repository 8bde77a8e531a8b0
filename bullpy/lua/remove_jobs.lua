--[[
  One SCAN step of "remove every unlocked job whose id matches a pattern" (Bull's removeJobs-8).

  KEYS[1] active KEYS[2] wait KEYS[3] delayed KEYS[4] paused KEYS[5] completed KEYS[6] failed
  KEYS[7] priority
  ARGV[1] base key  ARGV[2] MATCH pattern (the base key glob-escaped, then the user's pattern)
  ARGV[3] cursor  ARGV[4] SCAN COUNT  ARGV[5] "1" for a dry run (nothing removed)
  Returns {next cursor, removed ids} (on a dry run, the ids that would be removed).

  Divergence (safe): Node removes every *hash* under the base key, including the queue's own `meta`,
  `limiter:index` and `metrics:*` hashes; those are skipped here.
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "remove_from_states"
local base = ARGV[1]
local reply = rcall("SCAN", ARGV[3], "MATCH", ARGV[2], "COUNT", ARGV[4])
local removed = {}
local skip = {meta = true, ["limiter:index"] = true, ["metrics:completed"] = true, ["metrics:failed"] = true}
for _, key in ipairs(reply[2]) do
  local t = rcall("TYPE", key)
  t = t["ok"] or t
  local id = string.sub(key, #base + 1)
  if t == "hash" and not skip[id] and rcall("EXISTS", key .. ":lock") == 0 then
    if ARGV[5] ~= "1" then
      remove_from_states(id)
      remove_job_keys(base, id, true)
    end
    removed[#removed + 1] = id
  end
end
return {reply[1], removed}
