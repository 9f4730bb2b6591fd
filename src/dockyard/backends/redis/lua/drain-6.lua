--[[
  Delete every job that waits to run: wait, paused, prioritized, and delayed if asked,
  except a job scheduler's current iteration. No events, as BullMQ's drain.

  KEYS[1] wait    KEYS[3] prioritized  KEYS[5] pc
  KEYS[2] paused  KEYS[4] delayed      KEYS[6] marker

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[2] also delayed "1" | "0"

  Returns how many jobs were deleted.
]]
local prefix = ARGV[1]
local removed = 0
-- A scheduler's current iteration stays (BullMQ's drain skips it too): kept ids are put
-- back, in order, after their list or set is deleted.
local function dropAll(ids)
  local kept = {}
  for _, jobId in ipairs(ids) do
    if isCurrentIteration(prefix, jobId) then
      kept[#kept + 1] = jobId
    else
      local deid = rcall("HGET", prefix .. jobId, "deid")
      if deid and rcall("GET", prefix .. "de:" .. deid) == jobId then
        rcall("DEL", prefix .. "de:" .. deid)
      end
      deleteJobKeys(prefix, jobId)
      removed = removed + 1
    end
  end
  return kept
end
local function dropList(key)
  local kept = dropAll(rcall("LRANGE", key, 0, -1))
  rcall("DEL", key)
  for _, jobId in ipairs(kept) do rcall("RPUSH", key, jobId) end
end
local function dropSet(key)
  local scores = {}
  local flat = rcall("ZRANGE", key, 0, -1, "WITHSCORES")
  local ids = {}
  for i = 1, #flat, 2 do
    ids[#ids + 1] = flat[i]
    scores[flat[i]] = flat[i + 1]
  end
  local kept = dropAll(ids)
  rcall("DEL", key)
  for _, jobId in ipairs(kept) do rcall("ZADD", key, scores[jobId], jobId) end
  return #kept
end
dropList(KEYS[1])
dropList(KEYS[2])
if dropSet(KEYS[3]) == 0 then rcall("DEL", KEYS[5]) end
if ARGV[2] == "1" then dropSet(KEYS[4]) end
if rcall("ZCARD", KEYS[4]) == 0 then rcall("DEL", KEYS[6]) end
if rcall("LLEN", KEYS[1]) > 0 or rcall("ZCARD", KEYS[3]) > 0 then
  addReadyMarker(KEYS[6])  -- a kept iteration is still ready to run: wake workers for it
end
return removed
