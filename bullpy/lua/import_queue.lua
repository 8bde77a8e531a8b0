--[[
  The queue-level part of an import or copy: id counter, repeatable definitions, metrics
  (bullpy's own; Bull has none).

  KEYS[1] id  KEYS[2] repeat  KEYS[3] metrics:completed  KEYS[4] metrics:completed:data
  KEYS[5] metrics:failed  KEYS[6] metrics:failed:data

  ARGV[1] id counter floor ("" for none): raised to it, never lowered
  ARGV[2] "replace" overwrites the next-run score of a definition the queue already has; anything
          else keeps the queue's own (both add the missing ones)
  ARGV[3] number of repeatable definitions, then member and score for each
  then, for each metrics key to restore (written only when the queue has none): KEYS index, value
  count, values (hash field/value pairs for KEYS[3] and KEYS[5], list items left to right for the
  data lists)

  Returns {definitions added, definitions already there, metrics keys written}.
]]
local rcall = redis.call
local id_floor, mode, n = ARGV[1], ARGV[2], tonumber(ARGV[3])

-- @include "expect_types"

local type_error = check_types({{KEYS[1], "string"}, {KEYS[2], "zset"}})
if type_error then return type_error end

if id_floor ~= "" then
  local current = tonumber(rcall("GET", KEYS[1])) or 0
  if tonumber(id_floor) > current then rcall("SET", KEYS[1], id_floor) end
end

local added, present = 0, 0
for i = 4, 3 + 2 * n, 2 do
  local member, score = ARGV[i], ARGV[i + 1]
  if rcall("ZSCORE", KEYS[2], member) then
    present = present + 1
    if mode == "replace" then rcall("ZADD", KEYS[2], score, member) end
  else
    added = added + 1
    rcall("ZADD", KEYS[2], score, member)
  end
end

local written = 0
local o = 4 + 2 * n
while o <= #ARGV do
  local index, count = tonumber(ARGV[o]), tonumber(ARGV[o + 1])
  local key = KEYS[index]
  if rcall("EXISTS", key) == 0 and count > 0 then
    local command = (index == 3 or index == 5) and "HSET" or "RPUSH"
    for i = o + 2, o + 1 + count, 7000 do
      rcall(command, key, unpack(ARGV, i, math.min(i + 6999, o + 1 + count)))
    end
    written = written + 1
  end
  o = o + 2 + count
end
return {added, present, written}
