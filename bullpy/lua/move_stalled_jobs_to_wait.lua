--[[
  The shared stalled-job check (Bull's moveStalledJobsToWait-7). Whichever worker runs it first in a
  stalledInterval does the work for the fleet, Node or Python.

  KEYS[1] stalled KEYS[2] wait KEYS[3] active KEYS[4] failed KEYS[5] stalled-check KEYS[6] meta-paused
  KEYS[7] paused
  ARGV[1] max stalled count  ARGV[2] base key  ARGV[3] now (ms)  ARGV[4] stalled interval (ms)
  Returns {failed ids, requeued ids}.

  A job is stalled when it was active at the previous check, nobody touched its stalled mark since
  (lock renewal, finishing) and its lock is gone. It goes back to the head of the wait list, or fails
  once it stalled more than the allowed count (then removeOnFail of its stored opts applies).
]]
local rcall = redis.call
-- @include "target_list"
-- @include "trim_finished"
-- @include "debounce_done"

if rcall("EXISTS", KEYS[5]) == 1 then return {{}, {}} end
rcall("SET", KEYS[5], ARGV[3], "PX", ARGV[4])

local base, now = ARGV[2], tonumber(ARGV[3])
local max_stalled = tonumber(ARGV[1])
local failed, stalled = {}, {}
local marked = rcall("SMEMBERS", KEYS[1])
if #marked > 0 then
  rcall("DEL", KEYS[1])
  for _, id in ipairs(marked) do
    local job_key = base .. id
    if rcall("EXISTS", job_key .. ":lock") == 0 and rcall("LREM", KEYS[3], 1, id) > 0 then
      local count = rcall("HINCRBY", job_key, "stalledCounter", 1)
      if count > max_stalled then
        local fields = rcall("HMGET", job_key, "opts", "deid")
        local ok, opts = pcall(cjson.decode, fields[1] or "{}")
        if not ok or type(opts) ~= "table" then opts = {} end
        rcall("ZADD", KEYS[4], ARGV[3], id)
        rcall("HMSET", job_key, "failedReason", "job stalled more than allowable limit", "finishedOn", ARGV[3])
        debounce_done(base, fields[2])
        -- Node's exact payload: note the spaces and the different wording from failedReason.
        rcall("PUBLISH", KEYS[4], '{"jobId":"' .. id .. '", "val": "job stalled more than maxStalledCount"}')
        local keep = opts["removeOnFail"]
        if type(keep) == "number" then
          -- As in Node, a number keeps that many of the newest failed jobs (0 deletes the whole set).
          for _, old in ipairs(rcall("ZREVRANGE", KEYS[4], keep, -1)) do
            rcall("DEL", base .. old, base .. old .. ":logs")
          end
          rcall("ZREMRANGEBYRANK", KEYS[4], 0, -(keep + 1))
        elseif keep == true then
          rcall("DEL", job_key, job_key .. ":logs")
          rcall("ZREM", KEYS[4], id)
        elseif type(keep) == "table" then
          trim_finished(KEYS[4], base, now, keep["age"], keep["count"])
        end
        failed[#failed + 1] = id
      else
        local target = target_list(KEYS[6], KEYS[2], KEYS[7])
        rcall("RPUSH", target, id)
        rcall("PUBLISH", KEYS[1] .. "@", id)
        stalled[#stalled + 1] = id
      end
    end
  end
end

local active = rcall("LRANGE", KEYS[3], 0, -1)
for i = 1, #active, 7000 do
  rcall("SADD", KEYS[1], unpack(active, i, math.min(i + 6999, #active)))
end
return {failed, stalled}
