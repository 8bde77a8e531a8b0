--[[
  Add one or many jobs atomically, as Bull's addJob-6 does for one (lib/commands/addJob-6.lua).

  KEYS[1] wait  KEYS[2] paused  KEYS[3] meta-paused  KEYS[4] id  KEYS[5] delayed  KEYS[6] priority
  KEYS[7] repeat

  ARGV[1] base key "prefix:name:"   ARGV[2] token   ARGV[3] number of jobs
  then 13 values per job:
    custom id or "", name, data JSON, opts JSON, timestamp, delay, delayed timestamp (0 = not delayed),
    priority, "LPUSH" or "RPUSH", debounce id or "", debounce ttl or "", repeat key or "",
    repeat next millis or "", "1" when the repeatable definition must still exist (a worker scheduling
    the next iteration: Node checks ZSCORE first, so a removed series stops)

  Returns a flat array: id1, status1, id2, status2, ... with status "added", "duplicate", "debounced"
  or "ended" (the repeatable definition was removed; nothing written, id ""),
  or an error reply before anything is written.

  All-or-nothing: every key this script writes is type-checked before the first write, so a batch is
  either written whole or not at all (Node's MULTI of addJob calls can leave part of a batch behind).
]]
local rcall = redis.call
local base = ARGV[1]
local token = ARGV[2]
local n = tonumber(ARGV[3])
local FIELDS = 14

-- @include "target_list"
-- @include "priority_insert"

-- @include "expect_types"

local type_error = check_types({{KEYS[1], "list"}, {KEYS[2], "list"}, {KEYS[4], "string"}, {KEYS[5], "zset"},
                               {KEYS[6], "zset"}, {KEYS[7], "zset"}})
if type_error then return type_error end

local target = target_list(KEYS[3], KEYS[1], KEYS[2])
local result = {}

for i = 0, n - 1 do
  local o = 3 + i * FIELDS
  local custom_id = ARGV[o + 1]
  local name, data, opts = ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local timestamp, delay, delayed_ts = ARGV[o + 5], ARGV[o + 6], tonumber(ARGV[o + 7])
  local priority, push = ARGV[o + 8], ARGV[o + 9]
  local deid, de_ttl = ARGV[o + 10], ARGV[o + 11]
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
      if delayed_ts ~= 0 then
        -- Score: due time in the high bits, the counter's low 12 bits below (Bull's bit.band, done with %).
        rcall("ZADD", KEYS[5], delayed_ts * 4096 + (counter % 4096), job_id)
        -- Idle Node workers re-arm their delay timer on this message.
        rcall("PUBLISH", KEYS[5], ARGV[o + 7])
      else
        if tonumber(priority) == 0 then
          rcall(push, target, job_id)
        else
          priority_insert(KEYS[6], tonumber(priority), job_id, target)
        end
        -- The channel is derived from the wait key even when the target is `paused`, as in Node.
        rcall("PUBLISH", KEYS[1] .. "ing@" .. token, job_id)
      end
    end
    result[#result + 1] = job_id
    result[#result + 1] = status
  end
end

return result
