--[[
  Delete a paused queue and all its jobs, a budget of `count` jobs per call (Bull's obliterate-2).

  KEYS[1] meta-paused  KEYS[2] base key
  ARGV[1] count  ARGV[2] "force" or ""
  Returns 0 when done, 1 when the budget ran out (call again), -1 when the queue is not paused,
  -2 when it has active jobs and force was not given.

  Divergence (safe): also deletes jobs found in `wait` (a foreign writer may have pushed there while
  paused) and the queue's rate-limiter keys, which Node leaves behind.
]]
local rcall = redis.call
-- @include "remove_job_keys"
local budget = tonumber(ARGV[1])
local base = KEYS[2]

if rcall("EXISTS", KEYS[1]) ~= 1 then return -1 end

local active = rcall("LRANGE", base .. "active", 0, budget - 1)
if #active > 0 and ARGV[2] == "" then return -2 end

local function drop(ids)
  for _, id in ipairs(ids) do remove_job_keys(base, id, true) end
  budget = budget - #ids
end

for _, id in ipairs(active) do rcall("DEL", base .. id .. ":lock") end
drop(active)
rcall("LTRIM", base .. "active", #active, -1)
if budget <= 0 then return 1 end

for _, list in ipairs({"paused", "wait"}) do
  local ids = rcall("LRANGE", base .. list, 0, budget - 1)
  drop(ids)
  rcall("LTRIM", base .. list, #ids, -1)
  if budget <= 0 then return 1 end
end

for _, set in ipairs({"delayed", "completed", "failed"}) do
  local ids = rcall("ZRANGE", base .. set, 0, budget - 1)
  drop(ids)
  if #ids > 0 then
    for i = 1, #ids, 7000 do rcall("ZREM", base .. set, unpack(ids, i, math.min(i + 6999, #ids))) end
  end
  if budget <= 0 then return 1 end
end

local limited = rcall("HVALS", base .. "limiter:index")
for _, key in ipairs(limited) do rcall("DEL", key) end
for _, suffix in ipairs({"priority", "stalled-check", "stalled", "meta-paused", "meta", "id", "repeat",
    "metrics:completed", "metrics:completed:data", "metrics:failed", "metrics:failed:data", "limiter",
    "limiter:index", "limiter:limited"}) do
  rcall("DEL", base .. suffix)
end
return 0
