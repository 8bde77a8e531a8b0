-- removeOnComplete / removeOnFail trimming of a whole finished set (every job in it, whoever added it,
-- as in Node): `age` in seconds removes jobs finished at or before now - age; `count` keeps the newest.
local function trim_finished(set_key, base, now, max_age, max_count)
  if max_age then
    local cutoff = now - max_age * 1000
    for _, id in ipairs(redis.call("ZREVRANGEBYSCORE", set_key, cutoff, "-inf")) do
      redis.call("DEL", base .. id, base .. id .. ":logs")
    end
    redis.call("ZREMRANGEBYSCORE", set_key, "-inf", cutoff)
  end
  if max_count and max_count > 0 then
    for _, id in ipairs(redis.call("ZREVRANGE", set_key, max_count, -1)) do
      redis.call("DEL", base .. id, base .. id .. ":logs")
    end
    redis.call("ZREMRANGEBYRANK", set_key, 0, -(max_count + 1))
  end
end
