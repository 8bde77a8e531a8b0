-- Put a job that left `active` into its finished set (Bull's moveToFinished tail): delete it when the
-- keep count is 0, else record the field (returnvalue or failedReason) and finishedOn, trim the set by
-- removeOn* age/count, count the metrics when asked, and announce it on the set's channel.
local function finish_job(base, job_key, id, set_key, field, value, finished_on, keep_count, keep_age,
                          metrics_key, metrics_points, payload)
  debounce_done(base, redis.call("HGET", job_key, "deid"))
  if keep_count == 0 then
    redis.call("DEL", job_key, job_key .. ":logs")
  else
    redis.call("ZADD", set_key, finished_on, id)
    redis.call("HMSET", job_key, field, value, "finishedOn", finished_on)
    trim_finished(set_key, base, tonumber(finished_on), keep_age, keep_count)
  end
  if metrics_points ~= "" then
    collect_metrics(metrics_key, metrics_key .. ":data", metrics_points, tonumber(finished_on))
  end
  redis.call("PUBLISH", set_key, payload)
end
