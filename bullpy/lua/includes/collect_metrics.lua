-- Jobs finished per minute (Bull's collectMetrics): `count` before this job, a data point per elapsed
-- minute pushed newest first, at most max_points kept.
local function collect_metrics(meta_key, data_key, max_points, now)
  local count = redis.call("HINCRBY", meta_key, "count", 1) - 1
  local prev_ts = redis.call("HGET", meta_key, "prevTS")
  if not prev_ts then
    redis.call("HSET", meta_key, "prevTS", now, "prevCount", 0)
    return
  end
  local n = math.min(math.floor(now / 60000) - math.floor(prev_ts / 60000), tonumber(max_points))
  if n > 0 then
    local delta = count - redis.call("HGET", meta_key, "prevCount")
    local points = {delta}
    for i = 2, n do points[i] = 0 end
    for i = 1, #points, 7000 do
      redis.call("LPUSH", data_key, unpack(points, i, math.min(i + 6999, #points)))
    end
    redis.call("LTRIM", data_key, 0, max_points - 1)
    redis.call("HSET", meta_key, "prevCount", count, "prevTS", now)
  end
end
