--[[
  Refuse to write into keys of the wrong type (a Node queue corrupted by, e.g., a job id equal to one of
  the queue's own key names): check_types({{key, "list"}, ...}) returns an error reply naming the first
  key whose type is neither absent nor the one wanted, else nil.
]]
local function check_types(checks)
  for _, check in ipairs(checks) do
    local t = redis.call("TYPE", check[1])
    t = t["ok"] or t
    if t ~= "none" and t ~= check[2] then
      return redis.error_reply("WRONGTYPE " .. check[1] .. " is a " .. t .. ", expected a " .. check[2])
    end
  end
end
