--[[
  Delete a paused queue and all its jobs, at most `count` jobs per call (Bull's obliterate-2) and within
  a time budget.

  KEYS[1] meta-paused  KEYS[2] base key
  ARGV[1] count  ARGV[2] "force" or ""  ARGV[3] time budget, microseconds
  Returns 0 when done, 1 when the count or the time ran out (call again), -1 when the queue is not
  paused, -2 when it has active jobs and force was not given.

  Divergence (safe): also deletes jobs found in `wait` (a foreign writer may have pushed there while
  paused) and the queue's rate-limiter keys, which Node leaves behind. The jobs' priority entries go with
  them, so the last call deletes only small keys.
]]
local rcall = redis.call
-- @include "remove_job_keys"
-- @include "budget"
local count = tonumber(ARGV[1])
local base = KEYS[2]
budget_us = tonumber(ARGV[3])

if rcall("EXISTS", KEYS[1]) ~= 1 then return -1 end

local active = rcall("LRANGE", base .. "active", 0, count - 1)
if #active > 0 and ARGV[2] == "" then return -2 end

local dropped = 0
-- Deletes the jobs of `ids` in order until the count or the time is used up; returns how many went.
local function drop(ids, with_locks)
  local n = 0
  for _, id in ipairs(ids) do
    if dropped >= count or (dropped > 0 and over_budget(1)) then break end
    if with_locks then rcall("DEL", base .. id .. ":lock") end
    remove_job_keys(base, id, true)
    n, dropped = n + 1, dropped + 1
  end
  for i = 1, n, 5000 do rcall("ZREM", base .. "priority", unpack(ids, i, math.min(i + 4999, n))) end
  return n
end

local n = drop(active, true)
if n > 0 then rcall("LTRIM", base .. "active", n, -1) end
if n < #active or dropped >= count then return 1 end

for _, list in ipairs({"paused", "wait"}) do
  local ids = rcall("LRANGE", base .. list, 0, count - dropped - 1)
  n = drop(ids, false)
  if n > 0 then rcall("LTRIM", base .. list, n, -1) end
  if n < #ids or dropped >= count then return 1 end
end

for _, set in ipairs({"delayed", "completed", "failed"}) do
  local ids = rcall("ZRANGE", base .. set, 0, count - dropped - 1)
  n = drop(ids, false)
  if n > 0 then rcall("ZREMRANGEBYRANK", base .. set, 0, n - 1) end
  if n < #ids or dropped >= count then return 1 end
end

for _, key in ipairs(rcall("HVALS", base .. "limiter:index")) do rcall("UNLINK", key) end
for _, suffix in ipairs({"priority", "stalled-check", "stalled", "meta-paused", "meta", "id", "repeat",
    "metrics:completed", "metrics:completed:data", "metrics:failed", "metrics:failed:data", "limiter",
    "limiter:index", "limiter:limited"}) do
  rcall("UNLINK", base .. suffix)
end
return 0
