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

-- Commands over many keys or members are sent in pieces (Lua's unpack has a stack limit).
local function each_piece(command, key, items)
  for i = 1, #items, 1000 do
    if key then
      rcall(command, key, unpack(items, i, math.min(i + 999, #items)))
    else
      rcall(command, unpack(items, i, math.min(i + 999, #items)))
    end
  end
end

-- First pass: where each job starts in ARGV, and its checks, before anything is written. Per job, parallel
-- arrays rather than a table each: this loop and the write loop run a million times for a big import.
local offsets, nhashes, nlogs, job_keys, logs_keys = {}, {}, {}, {}, {}
local nargs = #ARGV
local o = 4
for i = 1, n do
  if o + 8 > nargs then return redis.error_reply("arguments end early") end
  local id, placement = ARGV[o + 1], ARGV[o + 2]
  local nhash, nlog = tonumber(ARGV[o + 7]), tonumber(ARGV[o + 8])
  if not nhash or nhash < 2 or nhash % 2 ~= 0 or not nlog then
    return redis.error_reply("job " .. id .. ": bad hash or log counts")
  end
  if placement ~= "head" or ARGV[o + 4] ~= "" then
    local score, priority = ARGV[o + 3], ARGV[o + 4]
    if SETS[placement] then
      if not tonumber(score) then return redis.error_reply("job " .. id .. ": bad score " .. score) end
    elseif placement == "prio" or placement == "head" then
      if not tonumber(priority) then return redis.error_reply("job " .. id .. ": bad priority " .. priority) end
    elseif placement ~= "tail" then
      return redis.error_reply("job " .. id .. ": unknown placement " .. placement)
    end
  end
  local job_key = base .. id
  offsets[i], nhashes[i], nlogs[i], job_keys[i], logs_keys[i] = o, nhash, nlog, job_key, job_key .. ":logs"
  o = o + 8 + nhash + nlog
  if o > nargs then return redis.error_reply("job " .. id .. ": arguments end early") end
end
if o ~= nargs then return redis.error_reply("arguments left after the last job") end

-- One EXISTS answers for a batch of new jobs (the common case: a key lookup each, no call each); otherwise
-- each job is looked at: is there a job hash, and is the key a hash at all. The logs key is checked only
-- when rows go into it (it is deleted either way, as Node's removeJob does).
local existing = 0
for i = 1, n, 1000 do
  existing = existing + rcall("EXISTS", unpack(job_keys, i, math.min(i + 999, n)))
end
local exists, locked = {}, {}
local conflicts = {}
for i = 1, n do
  if existing > 0 then
    local job_type = rcall("TYPE", job_keys[i])
    job_type = job_type["ok"] or job_type
    if job_type ~= "none" and job_type ~= "hash" then
      return redis.error_reply("WRONGTYPE " .. job_keys[i] .. " is a " .. job_type .. ", expected a hash")
    end
    if job_type == "hash" then
      exists[i] = true
      locked[i] = rcall("EXISTS", job_keys[i] .. ":lock") == 1
      conflicts[#conflicts + 1] = ARGV[offsets[i] + 1]
    end
  end
  if nlogs[i] > 0 then
    local err = check_types({{logs_keys[i], "list"}})
    if err then return err end
  end
end
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
-- Ready-list pushes and zset adds are gathered and sent together; the pushes go out, in order, before
-- anything that reads or changes the ready list otherwise (an LPUSH, Bull's priority insert).
local heads, prioritised, scored = {}, {}, {delayed = {}, completed = {}, failed = {}}
local function push_heads()
  each_piece("RPUSH", target, heads)
  each_piece("ZADD", KEYS[7], prioritised)
  heads, prioritised = {}, {}
end
local statuses = {}
if existing > 0 then
  local written = {}
  for i = 1, n do
    local status = "added"
    if exists[i] then
      if on_conflict ~= "replace" then
        status = "skipped"
      elseif locked[i] then
        status = "locked"
      else
        status = "replaced"
      end
    end
    statuses[i] = status
    if status == "added" or status == "replaced" then written[#written + 1] = logs_keys[i] end
  end
  logs_keys = written
end
-- Log rows left behind by a removed job (Node's empty() keeps them) must not precede ours.
each_piece("DEL", nil, logs_keys)
for i = 1, n do
  local status = statuses[i] or "added"
  local p = offsets[i]
  local id = ARGV[p + 1]
  if status == "replaced" then
    remove_from_states(id)
    remove_job_keys(base, id, true)
  end
  if status == "added" or status == "replaced" then
    local placement = ARGV[p + 2]
    local job_key = job_keys[i]
    local first, last = p + 9, p + 8 + nhashes[i]
    if last - first < 1000 then
      rcall("HSET", job_key, unpack(ARGV, first, last))
    else
      for j = first, last, 1000 do
        rcall("HSET", job_key, unpack(ARGV, j, math.min(j + 999, last)))
      end
    end
    if nlogs[i] > 0 then
      first, last = last + 1, last + nlogs[i]
      for j = first, last, 7000 do
        rcall("RPUSH", logs_keys[i], unpack(ARGV, j, math.min(j + 6999, last)))
      end
    end
    local deid = ARGV[p + 5]
    if deid ~= "" then
      local de_ttl = ARGV[p + 6]
      if de_ttl == "-1" then
        rcall("SET", base .. "de:" .. deid, id, "NX")
      else
        rcall("SET", base .. "de:" .. deid, id, "PX", math.max(tonumber(de_ttl), 1), "NX")
      end
    end
    if placement == "head" then
      heads[#heads + 1] = id
      local priority = ARGV[p + 4]
      if priority ~= "" then
        prioritised[#prioritised + 1] = priority
        prioritised[#prioritised + 1] = id
      end
    elseif placement == "tail" then
      push_heads()
      rcall("LPUSH", target, id)
    elseif placement == "prio" then
      push_heads()
      priority_insert(KEYS[7], tonumber(ARGV[p + 4]), id, target)
    else
      local score = ARGV[p + 3]
      local members = scored[placement]
      members[#members + 1] = score
      members[#members + 1] = id
      if placement == "delayed" then
        local due = math.floor(tonumber(score) / 4096)
        if next_due == nil or due < next_due then next_due = due end
      end
    end
  end
  result[i + 1] = status
end
push_heads()
for placement, members in pairs(scored) do
  each_piece("ZADD", SETS[placement], members)
end
if next_due ~= nil then
  -- Idle Node workers re-arm their delay timer on this message (as after an add with a delay).
  rcall("PUBLISH", KEYS[3], string.format("%.0f", next_due))
end
return result
