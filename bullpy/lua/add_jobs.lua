--[[
  Add one or many jobs atomically, as Bull's addJob-6 does for one (lib/commands/addJob-6.lua).

  KEYS[1] wait  KEYS[2] paused  KEYS[3] meta-paused  KEYS[4] id  KEYS[5] delayed  KEYS[6] priority
  KEYS[7] repeat

  ARGV[1] base key "prefix:name:"   ARGV[2] token

  Job layout (any mix of jobs): ARGV[3] number of jobs, then 14 values per job:
    custom id or "", name, data JSON, opts JSON, timestamp, delay, delayed timestamp (0 = not delayed),
    priority, "LPUSH" or "RPUSH", debounce id or "", debounce ttl or "", repeat key or "",
    repeat next millis or "", "1" when the repeatable definition must still exist (a worker scheduling
    the next iteration: Node checks ZSCORE first, so a removed series stops)
  Returns a flat array: id1, status1, id2, status2, ... with status "added", "duplicate", "debounced"
  or "ended" (the repeatable definition was removed; nothing written, id "").

  Row layout (a chunk of jobs sharing name and options, bullpy._core.rows): ARGV[3] "rows:" followed by
  the letters of what each row gives ("i" custom id, "o" opts JSON, "d" delay, "p" priority; data always),
  ARGV[4] number of rows, ARGV[5] name, ARGV[6] opts JSON (rows without "o"), ARGV[7] timestamp, ARGV[8]
  delay, ARGV[9] priority (rows without "d"/"p"), ARGV[10] "LPUSH" or "RPUSH", ARGV[11] debounce id or "",
  ARGV[12] debounce ttl or "", then per row: [custom id] data [opts] [delay] [priority].
  Returns {statuses, auto ids, ids...}: one letter per row ("a" added, "d" duplicate, "b" debounced), the
  counter ids given to rows without a custom id, joined by commas, then the existing job's id for each
  debounced row that had a custom id.

  Either way an error reply comes before anything is written, also when a custom id names a key that is
  not a job hash (another queue's list, say: Node would report it as a duplicate, or corrupt it).

  All-or-nothing: every key this script writes is type-checked before the first write, so a batch is
  either written whole or not at all (Node's MULTI of addJob calls can leave part of a batch behind).
]]
local rcall = redis.call
local base = ARGV[1]
local token = ARGV[2]
local FIELDS = 14

-- @include "target_list"
-- @include "priority_insert"

-- @include "expect_types"

local type_error = check_types({{KEYS[1], "list"}, {KEYS[2], "list"}, {KEYS[4], "string"}, {KEYS[5], "zset"},
                               {KEYS[6], "zset"}, {KEYS[7], "zset"}})
if type_error then return type_error end

-- A custom id whose key exists but is not a hash is not a duplicate job: it is some other key (a sibling
-- queue's "b:paused" list seen from queue "a"). Refused before the first write.
local function check_job_key(custom_id)
  if custom_id == "" then return nil end
  local t = rcall("TYPE", base .. custom_id)
  t = t["ok"] or t
  if t ~= "none" and t ~= "hash" then
    return redis.error_reply("ERR bullpy: job id '" .. custom_id .. "' names the key " .. base .. custom_id ..
      ", a " .. t .. " that is not a job (another queue's key?); nothing was added")
  end
  return nil
end

if string.sub(ARGV[3], 1, 5) == "rows:" then
  if string.find(ARGV[3], "i", 6, true) ~= nil then
    local layout = string.sub(ARGV[3], 6)
    local width = 2 + (string.find(layout, "o", 1, true) and 1 or 0) + (string.find(layout, "d", 1, true) and 1 or 0)
      + (string.find(layout, "p", 1, true) and 1 or 0)
    for i = 0, tonumber(ARGV[4]) - 1 do
      local id_error = check_job_key(ARGV[13 + i * width])
      if id_error then return id_error end
    end
  end
else
  for i = 0, tonumber(ARGV[3]) - 1 do
    local id_error = check_job_key(ARGV[3 + i * FIELDS + 1])
    if id_error then return id_error end
  end
end

local target = target_list(KEYS[3], KEYS[1], KEYS[2])
local waiting_channel = KEYS[1] .. "ing@" .. token

-- One job, as addJob-6 adds it (delayed_ts: the due time as text, "0" when not delayed); returns its id and
-- its status.
local function add_one(custom_id, name, data, opts, timestamp, delay, delayed_ts, priority, push, deid, de_ttl)
  -- Bull increments the counter on every add, custom ids and duplicates included.
  local counter = rcall("INCR", KEYS[4])
  local job_id
  local status = "added"
  if custom_id == "" then
    job_id = counter
    -- Divergence (safe): Node writes over a job whose custom id equals the next counter value;
    -- bullpy skips to the next free number instead of destroying that job.
    while rcall("EXISTS", base .. job_id) == 1 do
      counter = rcall("INCR", KEYS[4])
      job_id = counter
    end
    job_id = tostring(job_id)
  else
    job_id = custom_id
    if rcall("EXISTS", base .. job_id) == 1 then
      status = "duplicate"
      rcall("PUBLISH", base .. "duplicated@" .. token, job_id)
    end
  end

  if status == "added" and deid ~= "" then
    local de_key = base .. "de:" .. deid
    local set
    if de_ttl ~= "" then
      set = rcall("SET", de_key, job_id, "PX", de_ttl, "NX")
    else
      set = rcall("SET", de_key, job_id, "NX")
    end
    if not set then
      job_id = rcall("GET", de_key)
      status = "debounced"
      rcall("PUBLISH", base .. "debounced@" .. token, job_id)
    end
  end

  if status == "added" then
    local job_key = base .. job_id
    if deid ~= "" then
      rcall("HMSET", job_key, "name", name, "data", data, "opts", opts, "timestamp", timestamp,
        "delay", delay, "priority", priority, "deid", deid)
    else
      rcall("HMSET", job_key, "name", name, "data", data, "opts", opts, "timestamp", timestamp,
        "delay", delay, "priority", priority)
    end
    local due = tonumber(delayed_ts)
    if due ~= 0 then
      -- Score: due time in the high bits, the counter's low 12 bits below (Bull's bit.band, done with %).
      rcall("ZADD", KEYS[5], due * 4096 + (counter % 4096), job_id)
      -- Idle Node workers re-arm their delay timer on this message.
      rcall("PUBLISH", KEYS[5], delayed_ts)
    else
      if tonumber(priority) == 0 then
        rcall(push, target, job_id)
      else
        priority_insert(KEYS[6], tonumber(priority), job_id, target)
      end
      -- The channel is derived from the wait key even when the target is `paused`, as in Node.
      rcall("PUBLISH", waiting_channel, job_id)
    end
  end
  return job_id, status
end

local result = {}

if string.sub(ARGV[3], 1, 5) == "rows:" then
  local layout = string.sub(ARGV[3], 6)
  local has_id = string.find(layout, "i", 1, true) ~= nil
  local has_opts = string.find(layout, "o", 1, true) ~= nil
  local has_delay = string.find(layout, "d", 1, true) ~= nil
  local has_priority = string.find(layout, "p", 1, true) ~= nil
  local width = 1 + (has_id and 1 or 0) + (has_opts and 1 or 0) + (has_delay and 1 or 0) + (has_priority and 1 or 0)
  local n = tonumber(ARGV[4])
  local name, shared_opts, timestamp = ARGV[5], ARGV[6], ARGV[7]
  local shared_delay, shared_priority, push, deid, de_ttl = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
  local stamp = tonumber(timestamp)
  local letters, auto, others = {}, {}, {}
  local code = {added = "a", duplicate = "d", debounced = "b"}
  for i = 0, n - 1 do
    local k = 13 + i * width
    local custom_id = ""
    if has_id then custom_id = ARGV[k]; k = k + 1 end
    local data = ARGV[k]; k = k + 1
    local opts = shared_opts
    if has_opts then opts = ARGV[k]; k = k + 1 end
    local delay = shared_delay
    if has_delay then delay = ARGV[k]; k = k + 1 end
    local priority = shared_priority
    if has_priority then priority = ARGV[k] end
    local delayed_ts = "0"
    if delay ~= "0" then delayed_ts = string.format("%d", stamp + tonumber(delay)) end
    local job_id, status = add_one(custom_id, name, data, opts, timestamp, delay, delayed_ts, priority, push,
      deid, de_ttl)
    letters[#letters + 1] = code[status]
    if custom_id == "" then
      auto[#auto + 1] = job_id
    elseif status == "debounced" then
      others[#others + 1] = job_id
    end
  end
  result[1] = table.concat(letters)
  result[2] = table.concat(auto, ",")
  for _, job_id in ipairs(others) do
    result[#result + 1] = job_id
  end
  return result
end

local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local o = 3 + i * FIELDS
  local repeat_key, repeat_next = ARGV[o + 12], ARGV[o + 13]
  local must_exist = ARGV[o + 14] == "1"
  if must_exist and not rcall("ZSCORE", KEYS[7], repeat_key) then
    result[#result + 1] = ""
    result[#result + 1] = "ended"
  else
    if repeat_key ~= "" then
      -- Node ZADDs the repeatable definition before adding its iteration (even a duplicate one).
      rcall("ZADD", KEYS[7], repeat_next, repeat_key)
    end
    local job_id, status = add_one(ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5], ARGV[o + 6],
      ARGV[o + 7], ARGV[o + 8], ARGV[o + 9], ARGV[o + 10], ARGV[o + 11])
    result[#result + 1] = job_id
    result[#result + 1] = status
  end
end

return result
