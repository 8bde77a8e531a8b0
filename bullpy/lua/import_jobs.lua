--[[
  Write a batch of jobs into a queue, all or nothing (bullpy's import, copy and move; Bull has none).
  Job hashes and log rows are written exactly as given, so nothing is re-encoded on the way.

  KEYS[1] active  KEYS[2] wait  KEYS[3] delayed  KEYS[4] paused  KEYS[5] completed  KEYS[6] failed
  KEYS[7] priority  KEYS[8] meta-paused  KEYS[9] id

  ARGV[1] base key "prefix:name:"
  ARGV[2] on conflict (the job hash already exists): "error", "skip" or "replace"
  ARGV[3] id counter floor ("" for none): the counter is raised to it, never lowered
  ARGV[4] number of jobs, then per job 8 values:
    id, placement, score, priority, debounce id, debounce ttl, hash value count (2 per field),
    log row count; followed by the hash field/value pairs and then the log rows.
  placement:
    "head"      RPUSH onto the ready list, and ZADD priority when priority is not "" (a waiting job
                keeps its place and its priority entry; an active job goes first, as Bull's stalled
                recovery puts it)
    "tail"      LPUSH onto the ready list (Bull's retry/reprocess of a finished job)
    "prio"      Bull's priority insert with `priority` (promote of a prioritised delayed job)
    "delayed", "completed", "failed"   ZADD <score> into that set
  The ready list is `paused` while meta-paused exists, else `wait` (Bull's getTargetQueueList).
  debounce ttl: "" none, "-1" a key without expiry, else milliseconds; set only if the key is free.

  Returns {"ok", status1, status2, ...}: "added", "replaced", "skipped" (exists, skip) or "locked"
  (exists and a worker holds its lock: never replaced); or {"conflict", id...} with nothing written
  when on conflict is "error" and some of the jobs exist; or an error reply before any write.
]]
local rcall = redis.call
local base, on_conflict, id_floor = ARGV[1], ARGV[2], ARGV[3]
local n = tonumber(ARGV[4])

-- @include "target_list"
-- @include "priority_insert"
-- @include "remove_from_states"
-- @include "remove_job_keys"

-- @include "expect_types"

local type_error = check_types({{KEYS[1], "list"}, {KEYS[2], "list"}, {KEYS[3], "zset"}, {KEYS[4], "list"},
                         {KEYS[5], "zset"}, {KEYS[6], "zset"}, {KEYS[7], "zset"}, {KEYS[9], "string"}})
if type_error then return type_error end

local SETS = {delayed = KEYS[3], completed = KEYS[5], failed = KEYS[6]}

-- First pass: where each job starts in ARGV and whether it exists, before anything is written.
local jobs = {}
local conflicts = {}
local o = 4
for i = 1, n do
  if o + 8 > #ARGV then return redis.error_reply("arguments end early") end
  local job = {o = o, id = ARGV[o + 1], nhash = tonumber(ARGV[o + 7]), nlogs = tonumber(ARGV[o + 8])}
  local placement, score, priority = ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  if not job.nhash or job.nhash < 2 or job.nhash % 2 ~= 0 or not job.nlogs then
    return redis.error_reply("job " .. job.id .. ": bad hash or log counts")
  end
  if SETS[placement] then
    if not tonumber(score) then return redis.error_reply("job " .. job.id .. ": bad score " .. score) end
  elseif placement == "prio" or (placement == "head" and priority ~= "") then
    if not tonumber(priority) then return redis.error_reply("job " .. job.id .. ": bad priority " .. priority) end
  elseif placement ~= "head" and placement ~= "tail" then
    return redis.error_reply("job " .. job.id .. ": unknown placement " .. placement)
  end
  local job_key = base .. job.id
  -- One lookup answers both: is there a job hash, and is the key a hash at all. The logs key is checked
  -- only when rows go into it (it is deleted either way, as Node's removeJob does).
  local job_type = rcall("TYPE", job_key)
  job_type = job_type["ok"] or job_type
  if job_type ~= "none" and job_type ~= "hash" then
    return redis.error_reply("WRONGTYPE " .. job_key .. " is a " .. job_type .. ", expected a hash")
  end
  if job.nlogs > 0 then
    local err = check_types({{job_key .. ":logs", "list"}})
    if err then return err end
  end
  if job_type == "hash" then
    job.exists = true
    job.locked = rcall("EXISTS", job_key .. ":lock") == 1
    conflicts[#conflicts + 1] = job.id
  end
  jobs[i] = job
  o = o + 8 + job.nhash + job.nlogs
  if o > #ARGV then return redis.error_reply("job " .. job.id .. ": arguments end early") end
end
if o ~= #ARGV then return redis.error_reply("arguments left after the last job") end
if on_conflict == "error" and #conflicts > 0 then
  table.insert(conflicts, 1, "conflict")
  return conflicts
end

if id_floor ~= "" then
  local current = tonumber(rcall("GET", KEYS[9])) or 0
  if tonumber(id_floor) > current then rcall("SET", KEYS[9], id_floor) end
end

local target = target_list(KEYS[8], KEYS[2], KEYS[4])
local result = {"ok"}
local next_due = nil
for _, job in ipairs(jobs) do
  local status = "added"
  if job.exists then
    if on_conflict ~= "replace" then
      status = "skipped"
    elseif job.locked then
      status = "locked"
    else
      status = "replaced"
      remove_from_states(job.id)
      remove_job_keys(base, job.id, true)
    end
  end
  if status == "added" or status == "replaced" then
    local p = job.o
    local id, placement, score, priority = ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4]
    local deid, de_ttl = ARGV[p + 5], ARGV[p + 6]
    local job_key = base .. id
    local first = p + 9
    for i = first, first + job.nhash - 1, 1000 do
      rcall("HSET", job_key, unpack(ARGV, i, math.min(i + 999, first + job.nhash - 1)))
    end
    -- Log rows left behind by a removed job (Node's empty() keeps them) must not precede ours.
    rcall("DEL", job_key .. ":logs")
    first = first + job.nhash
    for i = first, first + job.nlogs - 1, 7000 do
      rcall("RPUSH", job_key .. ":logs", unpack(ARGV, i, math.min(i + 6999, first + job.nlogs - 1)))
    end
    if deid ~= "" then
      if de_ttl == "-1" then
        rcall("SET", base .. "de:" .. deid, id, "NX")
      else
        rcall("SET", base .. "de:" .. deid, id, "PX", math.max(tonumber(de_ttl), 1), "NX")
      end
    end
    if placement == "head" then
      rcall("RPUSH", target, id)
      if priority ~= "" then rcall("ZADD", KEYS[7], priority, id) end
    elseif placement == "tail" then
      rcall("LPUSH", target, id)
    elseif placement == "prio" then
      priority_insert(KEYS[7], tonumber(priority), id, target)
    else
      rcall("ZADD", SETS[placement], score, id)
      if placement == "delayed" then
        local due = math.floor(tonumber(score) / 4096)
        if next_due == nil or due < next_due then next_due = due end
      end
    end
  end
  result[#result + 1] = status
end
if next_due ~= nil then
  -- Idle Node workers re-arm their delay timer on this message (as after an add with a delay).
  rcall("PUBLISH", KEYS[3], string.format("%.0f", next_due))
end
return result
