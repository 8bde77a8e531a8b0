--[[
  Redis's glob matching (SCAN MATCH, KEYS), byte by byte and case-sensitive: `*`, `?`, `[abc]`,
  `[^abc]`, `[a-z]` (reversed ranges swapped), `\` escaping the next byte, an unclosed `[` running to
  the end of the pattern; ranges compare bytes as C's signed chars do. remove_jobs matches job ids found
  in lists with it: the same ids its SCAN MATCH finds among the job hashes.
]]
local function glob_match(pattern, str)
  local plen, slen = #pattern, #str
  local byte = string.byte
  local function signed(b)
    if b and b > 127 then return b - 256 end
    return b
  end
  -- true: match; false: no match; nil: no match, and no longer match for an earlier `*` can help.
  local function match(p, s)
    while p <= plen and s <= slen do
      local c = byte(pattern, p)
      if c == 42 then -- *
        while p < plen and byte(pattern, p + 1) == 42 do p = p + 1 end
        if p == plen then return true end
        for from = s, slen do
          local found = match(p + 1, from)
          if found then return true end
          if found == nil then return nil end
        end
        return nil
      elseif c == 63 then -- ?
        s = s + 1
      elseif c == 91 then -- [
        p = p + 1
        local negate = byte(pattern, p) == 94 -- ^
        if negate then p = p + 1 end
        local sc, hit = byte(str, s), false
        while true do
          local pc = byte(pattern, p)
          if pc == 92 and plen - p + 1 >= 2 then -- \x: a literal x
            p = p + 1
            if byte(pattern, p) == sc then hit = true end
          elseif pc == 93 then -- ]
            break
          elseif p > plen then
            p = p - 1 -- unclosed: the pattern ends here
            break
          elseif plen - p + 1 >= 3 and byte(pattern, p + 1) == 45 then -- a-z
            local first, last = signed(pc), signed(byte(pattern, p + 2))
            if first > last then first, last = last, first end
            local x = signed(sc)
            p = p + 2
            if x >= first and x <= last then hit = true end
          elseif pc == sc then
            hit = true
          end
          p = p + 1
        end
        if negate then hit = not hit end
        if not hit then return false end
        s = s + 1
      else
        if c == 92 and plen - p + 1 >= 2 then -- \x
          p = p + 1
          c = byte(pattern, p)
        end
        if c ~= byte(str, s) then return false end
        s = s + 1
      end
      p = p + 1
      if s > slen then
        while p <= plen and byte(pattern, p) == 42 do p = p + 1 end
        break
      end
    end
    return p > plen and s > slen
  end
  return match(1, 1) == true
end
