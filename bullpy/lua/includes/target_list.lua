-- The list a job that becomes ready goes to: `paused` while the queue is globally paused
-- (meta-paused exists), else `wait`. Bull checks the key's existence, not the list's emptiness.
local function target_list(meta_paused_key, wait_key, paused_key)
  if redis.call("EXISTS", meta_paused_key) == 1 then
    return paused_key, true
  end
  return wait_key, false
end
