-- A finished job releases its debounce marker only when the marker has no TTL (Node's
-- removeDebounceKeyIfNeeded).
local function debounce_done(base, deid)
  if deid then
    local key = base .. "de:" .. deid
    local ttl = redis.call("PTTL", key)
    if ttl == 0 or ttl == -1 then
      redis.call("DEL", key)
    end
  end
end
