--[[
  Create or replace a job scheduler in BullMQ's data model (upsertJobScheduler) and make
  its pending iteration, so that Node and dockyard workers advance it alike.

  KEYS[1] repeat (schedulers zset)  KEYS[7]  marker
  KEYS[2] delayed                   KEYS[8]  id (counter)
  KEYS[3] wait                      KEYS[9]  events
  KEYS[4] paused                    KEYS[10] pc (priority counter)
  KEYS[5] meta                      KEYS[11] active
  KEYS[6] prioritized

  ARGV[1] job key prefix "<P>:<N>:"     ARGV[7]  start (ms) or ""
  ARGV[2] scheduler id                  ARGV[8]  hash fields, a JSON object of texts:
  ARGV[3] now (ms)                               name and, when set, tz, limit, pattern,
  ARGV[4] first cron time (ms) for a             startDate, endDate
          pattern, "" for `every`       ARGV[9]  template data (JSON text)
  ARGV[5] every (ms), "" for a pattern  ARGV[10] template opts (JSON object text)
  ARGV[6] offset (ms) given, or ""      ARGV[11] the iterations' `repeat` (JSON object)

  The scheduler's current iteration, if it has not started (delayed, prioritized, waiting),
  is replaced silently (no `removed` event): with the same `every` slots the new one keeps
  its time, so upserting again neither doubles nor skips a run. A started or finished one
  stays (its start already made, or will not make, the next).

  Returns the pending iteration's id, or, with nothing written:
  -10 a pattern's iteration id is held by another job (e.g. a kept finished iteration)
  -11 `every`: the next 32 slots are all held by other jobs
]]
local prefix, sid, nowText = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(nowText)
local schedulerKey = KEYS[1] .. ":" .. sid
local old = rcall("HMGET", schedulerKey, "every", "offset", "ic")
local prevText = rcall("ZSCORE", KEYS[1], sid)
local prev = prevText and tonumber(prevText)
local currentId = currentIteration(KEYS[1], sid)

-- Where the current iteration waits, when it has not started yet.
local pendingIn
if currentId then
  if rcall("ZSCORE", KEYS[2], currentId) then
    pendingIn = KEYS[2]
  elseif rcall("ZSCORE", KEYS[6], currentId) then
    pendingIn = KEYS[6]
  elseif rcall("LPOS", KEYS[3], currentId) then
    pendingIn = KEYS[3]
  elseif rcall("LPOS", KEYS[4], currentId) then
    pendingIn = KEYS[4]
  end
end

local every = tonumber(ARGV[5])
local givenOffset = tonumber(ARGV[6])
local start = tonumber(ARGV[7])
local nextMs, offset
if every then
  local oldOffset = tonumber(old[2])
  -- The same slots: same interval and phase, and a start (if any) not after them.
  local sameSlots = prev and tonumber(old[1]) == every
    and (givenOffset == nil or givenOffset == oldOffset)
    and (start == nil or start <= prev)
  if sameSlots and pendingIn then
    nextMs = prev
  elseif sameSlots then
    nextMs = nextEverySlot(prev, every, now, oldOffset)
  elseif start then
    nextMs = math.max(start, now)
  elseif givenOffset and givenOffset > 0 then
    nextMs = math.floor(now / every) * every + givenOffset
    if nextMs <= now then nextMs = nextMs + every end
  else
    nextMs = now
  end
  if givenOffset then
    offset = givenOffset
  elseif sameSlots and oldOffset then
    offset = oldOffset
  else
    offset = nextMs % every
  end
else
  nextMs = tonumber(ARGV[4])
  offset = 0
end

-- Ids held by other jobs (a stale finished iteration, say) are never overwritten.
local function held(ms)
  local id = "repeat:" .. sid .. ":" .. string.format("%d", ms)
  if pendingIn and id == currentId then return false end
  return rcall("EXISTS", prefix .. id) == 1
end
if held(nextMs) then
  if not every then return -10 end
  local scans = 0
  repeat
    nextMs = nextMs + every
    scans = scans + 1
  until not held(nextMs) or scans >= 32
  if held(nextMs) then return -11 end
end

if pendingIn then
  if pendingIn == KEYS[3] or pendingIn == KEYS[4] then
    rcall("LREM", pendingIn, 1, currentId)
  else
    rcall("ZREM", pendingIn, currentId)
  end
  deleteJobKeys(prefix, currentId, false)
end

rcall("ZADD", KEYS[1], string.format("%d", nextMs), sid)
local fields = cjson.decode(ARGV[8])
local hash = {"name", fields["name"]}
for _, field in ipairs({"tz", "limit", "pattern", "startDate", "endDate"}) do
  if type(fields[field]) == "string" then
    hash[#hash + 1] = field
    hash[#hash + 1] = fields[field]
  end
end
if every then
  hash[#hash + 1] = "every"
  hash[#hash + 1] = ARGV[5]
end
hash[#hash + 1] = "offset"
hash[#hash + 1] = string.format("%d", offset)
if ARGV[10] ~= "{}" then
  hash[#hash + 1] = "opts"
  hash[#hash + 1] = ARGV[10]
end
if ARGV[9] ~= "{}" then
  hash[#hash + 1] = "data"
  hash[#hash + 1] = ARGV[9]
end
hash[#hash + 1] = "ic"
hash[#hash + 1] = old[3] or "1"
rcall("DEL", schedulerKey)
rcall("HSET", schedulerKey, unpack(hash))
rcall("INCR", KEYS[8])

local opts = cjson.decode(ARGV[10])
opts["repeat"] = cjson.decode(ARGV[11])
opts["repeat"]["count"] = 1
if not every then opts["prevMillis"] = nextMs end
local meta = readMeta(KEYS[5])
local k = {delayed = KEYS[2], wait = KEYS[3], paused = KEYS[4], prioritized = KEYS[6],
  pc = KEYS[10], marker = KEYS[7], events = KEYS[9], active = KEYS[11]}
return storeIteration(k, meta, prefix, sid, nextMs, now, nowText, fields["name"], ARGV[9], opts)
