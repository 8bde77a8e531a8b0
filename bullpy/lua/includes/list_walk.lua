--[[
  Walking a long list one piece per call (clean, remove_jobs); needs the "budget" include before it.

  A position is a distance from the list's right end, its head (0: the next job to run). Between two
  calls workers take jobs, producers push them and other scripts remove some, so a call does not trust the
  positions it is handed: each comes with the id that was there (an anchor), looked for at that position
  first, then among the LIST_SPAN items around it. Visited items that must go are overwritten with ""
  (never a job id, and what Bull's own clean uses) and removed by one LREM from the nearer end when the
  call ends, so positions do not move during a call. An LREM costs ~25 ns per item it passes over: that
  time is reserved out of the call's budget as marks are made.
]]
local LIST_SPAN = 2000
local LIST_READ = 1000

-- Where `id` is now, looked for near `d` (its position when the last call ended); nil when it is gone.
local function find_in_list(key, id, d)
  if id == "" then return nil end
  d = tonumber(d)
  if d < 0 then return nil end
  if redis.call("LINDEX", key, -d - 1) == id then return d end
  local lo = math.max(d - LIST_SPAN, 0)
  local items = redis.call("LRANGE", key, -(d + LIST_SPAN) - 1, -lo - 1)
  local best
  for i = #items, 1, -1 do
    if items[i] == id then
      local at = lo + #items - i
      if not best or math.abs(at - d) < math.abs(best - d) then best = at end
    end
  end
  return best
end

local function mark(key, marks, d, len)
  redis.call("LSET", key, -d - 1, "")
  marks[#marks + 1] = d
  marks.lowest = math.min(marks.lowest or d, d)
  marks.highest = math.max(marks.highest or d, d)
  reserve_us(math.min(marks.highest + 1, len - marks.lowest) / 40)
end

local function drop_marks(key, marks, len)
  local n = #marks
  if n == 0 then return end
  -- From the right, LREM stops after the farthest mark; from the left, after the nearest one.
  if marks.highest + 1 <= len - marks.lowest then
    redis.call("LREM", key, -n, "")
  else
    redis.call("LREM", key, n, "")
  end
end

-- How many marks lay right of position d (so d moved that much towards the right end).
local function marks_below(marks, d)
  local n = 0
  for _, m in ipairs(marks) do
    if m < d then n = n + 1 end
  end
  return n
end

local function id_at(key, d, len)
  if d >= 0 and d < len then return redis.call("LINDEX", key, -d - 1) end
  return ""
end

-- The whole list, from its right end (oldest first) to the item that was its left end when the walk
-- began: jobs pushed after that are not visited, so a walk ends even under a steady stream of new jobs.
-- cursor: {} to begin, else {"A", done_id, done_d, end_id, end_d}: [0, done_d] has been visited and kept.
-- visit(id) returns true when the item leaves the list; enough() ends the call (asked after a first visit).
-- Returns the next cursor, or nil when the walk is over.
local function walk_list(key, cursor, batch, visit, enough)
  local len = redis.call("LLEN", key)
  local q, e, end_id
  if #cursor == 0 then
    if len == 0 then return nil end
    q, e, end_id = 0, len - 1, redis.call("LINDEX", key, 0)
  else
    -- When the done part's leftmost item is gone, workers took the whole done part (they take from the
    -- right end) or someone removed it: start again from the right end (a revisit only re-checks jobs).
    q = (find_in_list(key, cursor[2], cursor[3]) or -1) + 1
    end_id = cursor[4]
    e = find_in_list(key, end_id, cursor[5]) or math.min(tonumber(cursor[5]), len - 1)
  end
  local marks, visited, stop = {}, 0, false
  while not stop and q <= e and visited < batch do
    local m = math.min(e - q + 1, batch - visited, LIST_READ)
    local items = redis.call("LRANGE", key, -(q + m), -(q + 1))
    if #items == 0 then break end
    for i = #items, 1, -1 do
      if visited > 0 and enough() then
        stop = true
        break
      end
      if visit(items[i]) then mark(key, marks, q, len) end
      q, visited = q + 1, visited + 1
    end
  end
  drop_marks(key, marks, len)
  if q > e then return nil end
  -- Every mark lay right of q and of the end item.
  q, e, len = q - #marks, e - #marks, len - #marks
  return {"A", id_at(key, q - 1, len), tostring(q - 1), end_id, tostring(e)}
end

-- Node's order when clean has a limit: windows of `size` items from the right end, each read left to
-- right, the next window starting where the last one began. cursor: {} to begin, else {"B", done_id,
-- done_d, left_id, left_d, next_id, next_d}: [0, done_d] is behind us, the window's unvisited part ends
-- just right of left_d ("" left_id: at the list's left end), the next window starts at next_d ("": none).
local function walk_windows(key, cursor, size, batch, visit, enough)
  local len = redis.call("LLEN", key)
  local q, top, nxt
  local function open()
    top = math.min(q + size, len)
    nxt = nil
    if q + size < len then nxt = q + size end
  end
  if #cursor == 0 then
    q = 0
    open()
  else
    q = (find_in_list(key, cursor[2], cursor[3]) or -1) + 1
    if cursor[4] == "" then
      top = len
    else
      top = find_in_list(key, cursor[4], cursor[5]) or math.min(tonumber(cursor[5]), len)
    end
    if cursor[6] ~= "" then
      nxt = find_in_list(key, cursor[6], cursor[7]) or tonumber(cursor[7])
      if nxt >= len then nxt = nil end
    end
  end
  local marks, visited, finished = {}, 0, false
  while true do
    if top <= q then
      if not nxt then
        finished = true
        break
      end
      q = nxt
      open()
    elseif visited >= batch then
      break
    else
      local m = math.min(top - q, batch - visited, LIST_READ)
      local items = redis.call("LRANGE", key, -top, -(top - m + 1))
      if #items == 0 then top = q end
      local stop = false
      for i = 1, #items do
        if visited > 0 and enough() then
          stop = true
          break
        end
        top = top - 1
        if visit(items[i]) then mark(key, marks, top, len) end
        visited = visited + 1
      end
      if stop then break end
    end
  end
  drop_marks(key, marks, len)
  if finished then return nil end
  q, top = q - marks_below(marks, q), top - marks_below(marks, top)
  local next_id, next_d = "", 0
  len = len - #marks
  if nxt then
    next_d = nxt - marks_below(marks, nxt)
    next_id = id_at(key, next_d, len)
  end
  return {"B", id_at(key, q - 1, len), tostring(q - 1), id_at(key, top, len), tostring(top), next_id,
    tostring(next_d)}
end
