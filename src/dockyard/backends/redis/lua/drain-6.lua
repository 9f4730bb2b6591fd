--[[
  Delete every job that waits to run: wait, paused, prioritized, and delayed if asked.
  No events, as BullMQ's drain.

  KEYS[1] wait    KEYS[3] prioritized  KEYS[5] pc
  KEYS[2] paused  KEYS[4] delayed      KEYS[6] marker

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[2] also delayed "1" | "0"

  Returns how many jobs were deleted.
]]
local prefix = ARGV[1]
local removed = 0
local function dropAll(ids)
  for _, jobId in ipairs(ids) do
    local deid = rcall("HGET", prefix .. jobId, "deid")
    if deid and rcall("GET", prefix .. "de:" .. deid) == jobId then
      rcall("DEL", prefix .. "de:" .. deid)
    end
    deleteJobKeys(prefix, jobId)
    removed = removed + 1
  end
end
dropAll(rcall("LRANGE", KEYS[1], 0, -1))
dropAll(rcall("LRANGE", KEYS[2], 0, -1))
dropAll(rcall("ZRANGE", KEYS[3], 0, -1))
rcall("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[5])
if ARGV[2] == "1" then
  dropAll(rcall("ZRANGE", KEYS[4], 0, -1))
  rcall("DEL", KEYS[4])
end
if rcall("ZCARD", KEYS[4]) == 0 then rcall("DEL", KEYS[6]) end
return removed
