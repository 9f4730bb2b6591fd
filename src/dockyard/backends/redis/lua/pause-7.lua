--[[
  Pause or resume a queue, with the semantics of the queue's BullMQ generation:
  5.x moves waiting jobs between `wait` and `paused`; 6.x keeps them in `wait`.

  KEYS[1] wait   KEYS[3] meta         KEYS[5] events   KEYS[7] marker
  KEYS[2] paused KEYS[4] prioritized  KEYS[6] delayed

  ARGV[1] "paused" | "resumed"

  Returns 0.
]]
-- Append all of src at the consuming (right) end of dst, keeping src's order, then drop src.
local function appendList(src, dst)
  while true do
    local chunk = rcall("LRANGE", src, 0, 999)
    if #chunk == 0 then break end
    rcall("RPUSH", dst, unpack(chunk))
    rcall("LTRIM", src, #chunk, -1)
  end
  rcall("DEL", src)
end

local function moveList(src, dst)
  if rcall("EXISTS", src) == 0 then return end
  if rcall("EXISTS", dst) == 0 then rcall("RENAME", src, dst) else appendList(src, dst) end
end

local meta = readMeta(KEYS[3])
if ARGV[1] == "paused" then
  if not meta.v6 then moveList(KEYS[1], KEYS[2]) end
  rcall("HSET", KEYS[3], "paused", 1)
  rcall("DEL", KEYS[7])
else
  moveList(KEYS[2], KEYS[1])
  rcall("HDEL", KEYS[3], "paused")
  if rcall("LLEN", KEYS[1]) > 0 or rcall("ZCARD", KEYS[4]) > 0 then
    addReadyMarker(KEYS[7])
  else
    addDelayMarker(KEYS[7], KEYS[6])
  end
end
rcall("XADD", KEYS[5], "*", "event", ARGV[1])
return 0
