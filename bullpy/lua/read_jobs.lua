--[[
  Read a batch of jobs in one atomic step, for export, copy and move (bullpy's own; Bull has none).
  Reading the range and the jobs in the same script means every job returned really was in the state
  it is returned with at that instant, with a hash that belongs to that state.

  KEYS[1] active  KEYS[2] wait  KEYS[3] delayed  KEYS[4] paused  KEYS[5] completed  KEYS[6] failed
  KEYS[7] priority (the order of Bull's removeJob; the state index below is the KEYS index)

  ARGV[1] base key "prefix:name:"
  ARGV[2] what: "all" (hash, logs, debounce), "hashes" (the same without locks: each job reads as
          unlocked, a key lookup less) or "ids" (id, state, score, priority, lock only)
  ARGV[3] mode, then
    "list": ARGV[4] KEYS index (1 active, 2 wait, 4 paused), ARGV[5] start index counted from the
            left (the tail: LPUSH side), ARGV[6] count. Reading from the left keeps the window steady
            while workers pop the head and producers LPUSH (a push re-shows ids, never hides one).
    "zset": ARGV[4] KEYS index (3 delayed, 5 completed, 6 failed), ARGV[5] min score (inclusive),
            ARGV[6] offset among the members at or above it, ARGV[7] count
    "ids":  ARGV[4...] job ids, each looked up in every state (Node's getState order)

  Returns one row per id of the range (the caller's cursor moves by their number and scores):
  {id, state index (0: in no state), score or false, priority or false, locked 0/1, hash exists 0/1
  (2: the key is not a hash, with "all" and "hashes"),
  hash as a flat array, logs, debounce ttl or false} (hash, logs and ttl only with "all").
  The debounce ttl is the PTTL of "de:<deid>" (-1: no expiry) when that key still names this job.
]]
local rcall = redis.call
local base, what, mode = ARGV[1], ARGV[2], ARGV[3]

local ids, scores, states = {}, {}, {}
if mode == "list" then
  local index, start = tonumber(ARGV[4]), tonumber(ARGV[5])
  ids = rcall("LRANGE", KEYS[index], start, start + tonumber(ARGV[6]) - 1)
  for i = 1, #ids do states[i] = index end
elseif mode == "zset" then
  local index = tonumber(ARGV[4])
  local flat = rcall("ZRANGEBYSCORE", KEYS[index], ARGV[5], "+inf", "WITHSCORES", "LIMIT", ARGV[6], ARGV[7])
  for i = 1, #flat, 2 do
    ids[#ids + 1] = flat[i]
    scores[#ids] = flat[i + 1]
    states[#ids] = index
  end
else
  for i = 4, #ARGV do
    local id = ARGV[i]
    ids[#ids + 1] = id
    local state = 0
    for _, index in ipairs({5, 6, 3}) do
      local score = rcall("ZSCORE", KEYS[index], id)
      if score then
        state, scores[#ids] = index, score
        break
      end
    end
    if state == 0 then
      for _, index in ipairs({1, 2, 4}) do
        if rcall("LPOS", KEYS[index], id) then
          state = index
          break
        end
      end
    end
    states[#ids] = state
  end
end

-- Per job, as few calls as the answer allows (each costs a key lookup): the priority zset only when it
-- has members, the hash's existence from HGETALL itself, its deid from the hash read.
local prioritised = rcall("ZCARD", KEYS[7]) > 0
local rows = {}
for i, id in ipairs(ids) do
  local job_key = base .. id
  local state = states[i]
  local priority = false
  if prioritised and (state == 2 or state == 4) then
    priority = rcall("ZSCORE", KEYS[7], id) or false
  end
  local locked = 0
  if what ~= "hashes" then locked = rcall("EXISTS", job_key .. ":lock") end
  local hash, logs, de_ttl = {}, {}, false
  local exists
  if what ~= "ids" then
    -- A key that is not a hash (damage left by another program) is reported, not fatal to the batch.
    local reply = redis.pcall("HGETALL", job_key)
    if reply.err then
      exists = 2
    else
      hash = reply
      exists = #hash > 0 and 1 or 0
    end
    if exists == 1 then
      logs = rcall("LRANGE", job_key .. ":logs", 0, -1)
      local deid
      for j = 1, #hash, 2 do
        if hash[j] == "deid" then deid = hash[j + 1] break end
      end
      if deid and rcall("GET", base .. "de:" .. deid) == id then
        de_ttl = rcall("PTTL", base .. "de:" .. deid)
      end
    end
  else
    exists = rcall("EXISTS", job_key)
  end
  rows[i] = {id, state, scores[i] or false, priority, locked, exists, hash, logs, de_ttl}
end
return rows
