--[[
  Some fields of many job hashes in one call: HMGET per job, all replies in one array. A pipeline of
  HMGETs costs the client far more than Redis (one command to pack and one reply to read per job).

  KEYS[1] the queue's id key (only to route the call to the queue's node)
  ARGV[1] base key  ARGV[2] number of fields n  ARGV[3 .. 2+n] the fields  ARGV[3+n ..] job ids
  Returns, per job id, the HMGET reply (nil for absent fields; all nil where the key is not a hash, which
  another program may have written: one such key must not hide the other jobs).
]]
local base, n = ARGV[1], tonumber(ARGV[2])
local fields = {}
for i = 1, n do fields[i] = ARGV[2 + i] end
local rows = {}
for i = 3 + n, #ARGV do
  local row = redis.pcall("HMGET", base .. ARGV[i], unpack(fields))
  if type(row) ~= "table" or row.err then row = {} ; for k = 1, n do row[k] = false end end
  rows[#rows + 1] = row
end
return rows
