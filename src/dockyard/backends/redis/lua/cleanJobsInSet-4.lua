--[[
  Remove jobs of one state that are older than a grace time (Queue.clean).
  completed/failed: by finish time (the score); wait/paused/active: by finishedOn,
  processedOn or timestamp (active ones only when no worker holds their lock);
  delayed: processedOn or timestamp; prioritized: timestamp. A job scheduler's current
  iteration is never removed (its schedule would end).

  KEYS[1] the state's list or set   KEYS[3] meta
  KEYS[2] events                    KEYS[4] stalled

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[3] at most this many (0 = no limit)
  ARGV[2] remove jobs older than this (ms)   ARGV[4] state name

  Returns the ids removed.
]]
local prefix, cutoff, limit, state = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local isList = state == "wait" or state == "paused" or state == "active"
local removed = {}
local function full() return limit > 0 and #removed >= limit end
local function drop(jobId)
  local deid = rcall("HGET", prefix .. jobId, "deid")
  if deid and rcall("GET", prefix .. "de:" .. deid) == jobId then
    rcall("DEL", prefix .. "de:" .. deid)
  end
  deleteJobKeys(prefix, jobId)
  removed[#removed + 1] = jobId
end
if state == "completed" or state == "failed" then
  local ids
  if limit > 0 then
    ids = rcall("ZRANGEBYSCORE", KEYS[1], 0, cutoff, "LIMIT", 0, limit)
  else
    ids = rcall("ZRANGEBYSCORE", KEYS[1], 0, cutoff)
  end
  for _, jobId in ipairs(ids) do
    if not isCurrentIteration(prefix, jobId) then
      rcall("ZREM", KEYS[1], jobId)
      drop(jobId)
    end
  end
else
  local ids
  if isList then ids = rcall("LRANGE", KEYS[1], 0, -1) else ids = rcall("ZRANGE", KEYS[1], 0, -1) end
  -- Oldest first: lists keep the oldest at the tail.
  local first, last, step = 1, #ids, 1
  if isList then first, last, step = #ids, 1, -1 end
  for i = first, last, step do
    if full() then break end
    local jobId = ids[i]
    local jobKey = prefix .. jobId
    local f = rcall("HMGET", jobKey, "finishedOn", "processedOn", "timestamp")
    local ts
    if state == "prioritized" then ts = f[3]
    elseif state == "delayed" then ts = f[2] or f[3]
    else ts = f[1] or f[2] or f[3] end
    ts = tonumber(ts) or 0
    local locked = state == "active" and rcall("EXISTS", jobKey .. ":lock") == 1
    if ts <= cutoff and not locked and not isCurrentIteration(prefix, jobId) then
      if isList then rcall("LREM", KEYS[1], 0, jobId) else rcall("ZREM", KEYS[1], jobId) end
      if state == "active" then rcall("SREM", KEYS[4], jobId) end
      drop(jobId)
    end
  end
end
local meta = readMeta(KEYS[3])
emit(KEYS[2], meta.maxEvents, "cleaned", "count", #removed)
return removed
