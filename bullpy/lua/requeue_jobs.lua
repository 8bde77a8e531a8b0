--[[
  Move jobs of one queue back to waiting, each the way Bull itself would (bullpy's own batch of
  Bull's operations):
    failed, completed  Bull's reprocessJob (job.retry()): HDEL finishedOn processedOn failedReason,
                       HSET retriedOn, LPUSH (RPUSH for lifo jobs); attemptsMade, stacktrace and
                       returnvalue stay, as in Node
    delayed            Bull's promote: HSET delay 0, priority insert when the job has a priority,
                       else LPUSH
    active             only when no worker holds its lock: RPUSH (the head), as Bull's stalled-job
                       recovery does, without counting a stall
  Jobs land in `paused` while the queue is paused. Locked jobs are never touched.

  KEYS[1] active  KEYS[2] wait  KEYS[3] delayed  KEYS[4] paused  KEYS[5] completed  KEYS[6] failed
  KEYS[7] priority  KEYS[8] meta-paused

  ARGV[1] base key  ARGV[2] now (ms)  ARGV[3] number of jobs, then per job: id, KEYS index of the
  state it is expected in, "LPUSH" or "RPUSH" (the job's lifo, for finished jobs)

  Returns one status per job: "moved", "waiting" (already waiting: nothing to do), "locked" or
  "changed" (no longer in that state, or its hash is gone).
]]
local rcall = redis.call
local base, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])

-- @include "target_list"
-- @include "priority_insert"

local target = target_list(KEYS[8], KEYS[2], KEYS[4])
local result = {}
for i = 0, n - 1 do
  local id, index, push = ARGV[4 + i * 3], tonumber(ARGV[5 + i * 3]), ARGV[6 + i * 3]
  local job_key = base .. id
  local status = "moved"
  if index == 2 or index == 4 then
    status = "waiting"
  elseif rcall("EXISTS", job_key .. ":lock") == 1 then
    status = "locked"
  elseif rcall("EXISTS", job_key) == 0 then
    status = "changed"  -- gone: never leave an id without its hash in a list
  elseif index == 1 then
    if rcall("LREM", KEYS[1], 1, id) == 0 then
      status = "changed"
    else
      rcall("RPUSH", target, id)
    end
  elseif rcall("ZREM", KEYS[index], id) == 0 then
    status = "changed"
  elseif index == 3 then
    rcall("HSET", job_key, "delay", 0)
    local priority = tonumber(rcall("HGET", job_key, "priority")) or 0
    if priority == 0 then
      rcall("LPUSH", target, id)
    else
      priority_insert(KEYS[7], priority, id, target)
    end
  else
    rcall("HDEL", job_key, "finishedOn", "processedOn", "failedReason")
    rcall("HSET", job_key, "retriedOn", now)
    rcall(push == "RPUSH" and "RPUSH" or "LPUSH", target, id)
  end
  result[#result + 1] = status
end
return result
