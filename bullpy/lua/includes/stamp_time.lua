-- The time a worker stamps on a job (processedOn, finishedOn, and what follows from it): the `given` ms,
-- or, when `offset` is a number, Redis's clock read now plus `offset` ms, the worker's clock as measured
-- against Redis's (0 on a shared clock). Read here, a stamp is never older than the script that writes it,
-- so a job is never shown taken before it was added.
local function stamp_time(given, offset)
  if offset == nil or offset == "" then
    return tonumber(given)
  end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(offset)
end
