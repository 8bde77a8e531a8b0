-- A time budget for scripts that work through a long list or set one piece per call (clean, empty,
-- obliterate, remove_jobs): a call stops once it has spent `budget_us` microseconds (set by the script
-- from its ARGV), read from the server's clock, so it stays short whatever the jobs it meets cost.
-- `reserve_us(us)` sets aside time for what the call must still do after its loop (an LREM far into a long
-- list); at most three quarters of the budget, so every call still gets some work done.
-- Redis 3.2 and 4 write after TIME only with effects replication; from Redis 5 on that is the default.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local budget_started = redis.call("TIME")
local budget_us = 0
local budget_reserved = 0
local budget_ticks = 0

local function spent_us()
  local now = redis.call("TIME")
  return (tonumber(now[1]) - tonumber(budget_started[1])) * 1000000
    + tonumber(now[2]) - tonumber(budget_started[2])
end

local function reserve_us(us)
  budget_reserved = math.min(us, budget_us * 3 / 4)
end

-- True once the budget is spent; the clock is read every `every` calls (a visit may cost a microsecond).
local function over_budget(every)
  budget_ticks = budget_ticks + 1
  if budget_ticks % (every or 1) ~= 0 then return false end
  return spent_us() + budget_reserved >= budget_us
end
