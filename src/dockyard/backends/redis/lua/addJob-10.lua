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
  ARGV[5] opts (JSON text)

  Returns the job id (the existing id when a job with that custom id exists: nothing
  is changed then and `duplicated` is emitted).
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
local jobKey = prefix .. jobId
local timestamp = tonumber(ARGV[6])
local delay = tonumber(ARGV[7])
local priority = tonumber(ARGV[8])
rcall("HSET", jobKey, "name", ARGV[3], "data", ARGV[4], "opts", ARGV[5],
  "timestamp", ARGV[6], "delay", ARGV[7], "priority", ARGV[8])
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
