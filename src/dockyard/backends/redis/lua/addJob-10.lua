--[[
  Add one job: store its hash and put it in wait, prioritized or delayed.

  KEYS[1]  wait            KEYS[6]  prioritized
  KEYS[2]  paused          KEYS[7]  pc (priority counter)
  KEYS[3]  meta            KEYS[8]  marker
  KEYS[4]  id (counter)    KEYS[9]  events
  KEYS[5]  delayed         KEYS[10] active

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[6] timestamp (ms)
  ARGV[2] custom job id, or ""        ARGV[7] delay (ms)
  ARGV[3] name                        ARGV[8] priority
  ARGV[4] data (JSON text)            ARGV[9] lifo "1" | "0"
  ARGV[5] opts (JSON text)            ARGV[10] deduplication id ("" = none)
                                      ARGV[11] deduplication ttl (ms, "" = none)
                                      ARGV[12] extend "1" | "0"   ARGV[13] replace "1" | "0"

  Returns the job id (the existing id when a job with that custom id exists: nothing
  is changed then and `duplicated` is emitted; the kept job's id when deduplicated).
]]
local k = {wait = KEYS[1], paused = KEYS[2], meta = KEYS[3], delayed = KEYS[5],
  prioritized = KEYS[6], pc = KEYS[7], marker = KEYS[8], events = KEYS[9], active = KEYS[10]}
local prefix = ARGV[1]
local counter = rcall("INCR", KEYS[4])
local meta = readMeta(k.meta)
local jobId = ARGV[2]
if jobId == "" then
  jobId = string.format("%d", counter)
else
  if rcall("EXISTS", prefix .. jobId) == 1 then
    emit(k.events, meta.maxEvents, "duplicated", "jobId", jobId)
    return jobId
  end
end
local deid = ARGV[10] or ""
if deid ~= "" then
  -- BullMQ's deduplication: Q:de:<id> holds the id of the job that owns it.
  local deKey = prefix .. "de:" .. deid
  local ttl = tonumber(ARGV[11])
  local owner = rcall("GET", deKey)
  if owner and rcall("PTTL", deKey) == 0 then
    rcall("DEL", deKey)
    owner = false
  end
  if owner and ARGV[13] == "1" and rcall("ZSCORE", k.delayed, owner) then
    -- Debounce: the owner has not run yet; the new job takes its place.
    rcall("ZREM", k.delayed, owner)
    deleteJobKeys(prefix, owner)
    emit(k.events, meta.maxEvents, "removed", "jobId", owner, "prev", "delayed")
    if ttl and ARGV[12] == "1" then
      rcall("SET", deKey, jobId, "PX", ttl)
    elseif ttl then
      rcall("SET", deKey, jobId, "KEEPTTL")
    else
      rcall("SET", deKey, jobId)
    end
    emit(k.events, meta.maxEvents, "deduplicated", "jobId", jobId, "deduplicationId", deid,
      "deduplicatedJobId", owner)
  elseif owner then
    if ttl and ARGV[12] == "1" then rcall("PEXPIRE", deKey, ttl) end
    emit(k.events, meta.maxEvents, "deduplicated", "jobId", owner, "deduplicationId", deid,
      "deduplicatedJobId", jobId)
    return owner
  elseif ttl then
    rcall("SET", deKey, jobId, "PX", ttl)
  else
    rcall("SET", deKey, jobId)
  end
end
local jobKey = prefix .. jobId
local timestamp = tonumber(ARGV[6])
local delay = tonumber(ARGV[7])
local priority = tonumber(ARGV[8])
rcall("HSET", jobKey, "name", ARGV[3], "data", ARGV[4], "opts", ARGV[5],
  "timestamp", ARGV[6], "delay", ARGV[7], "priority", ARGV[8])
if deid ~= "" then rcall("HSET", jobKey, "deid", deid) end
emit(k.events, meta.maxEvents, "added", "jobId", jobId, "name", ARGV[3])
if delay > 0 then
  local due = timestamp + delay
  rcall("ZADD", k.delayed, delayedScore(k.delayed, due), jobId)
  emit(k.events, meta.maxEvents, "delayed", "jobId", jobId, "delay", due)
  if not meta.paused then addDelayMarker(k.marker, k.delayed) end
else
  enqueueReady(readyList(meta, k.wait, k.paused), k.prioritized, k.pc, jobId, priority,
    ARGV[9] == "1")
  if not pausedOrMaxed(meta, k.active) then addReadyMarker(k.marker) end
  emit(k.events, meta.maxEvents, "waiting", "jobId", jobId)
end
return jobId
