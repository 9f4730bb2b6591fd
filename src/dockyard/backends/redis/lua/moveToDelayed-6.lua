--[[
  Move an active job to delayed (a retry after backoff, or a handler's own delay).

  KEYS[1] active   KEYS[3] events   KEYS[5] marker
  KEYS[2] delayed  KEYS[4] meta     KEYS[6] stalled

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[5] delay (ms); due time = now + delay
  ARGV[2] job id                      ARGV[6] skip attempt "1" (attemptsMade unchanged) | "0"
  ARGV[3] lock token ("0" = no check) ARGV[7] failed reason ("" = none)
  ARGV[4] now (ms)                    ARGV[8] stacktrace JSON ("" = keep)

  Returns 0, or -1 job missing, -2 lock missing, -6 lock held by another token, -3 not active.
]]
local k = {active = KEYS[1], delayed = KEYS[2], events = KEYS[3], meta = KEYS[4],
  marker = KEYS[5], stalled = KEYS[6]}
local prefix, jobId, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
local lockCode = takeLock(prefix, jobId, ARGV[3], k.stalled)
if lockCode < 0 then return lockCode end
if ARGV[7] ~= "" then rcall("HSET", jobKey, "failedReason", ARGV[7]) end
if ARGV[8] ~= "" then rcall("HSET", jobKey, "stacktrace", ARGV[8]) end
if rcall("LREM", k.active, -1, jobId) == 0 then return -3 end
local meta = readMeta(k.meta)
local delay = tonumber(ARGV[5])
local due = now + delay
rcall("ZADD", k.delayed, delayedScore(k.delayed, due), jobId)
rcall("HSET", jobKey, "delay", delay)
if ARGV[6] ~= "1" then rcall("HINCRBY", jobKey, "atm", 1) end
emit(k.events, meta.maxEvents, "delayed", "jobId", jobId, "delay", due)
if not meta.paused then addDelayMarker(k.marker, k.delayed) end
return 0
