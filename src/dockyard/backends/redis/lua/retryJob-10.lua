--[[
  Retry a failed attempt at once: back to wait (or prioritized), attemptsMade + 1.

  KEYS[1] active   KEYS[5] prioritized   KEYS[9]  stalled
  KEYS[2] wait     KEYS[6] pc            KEYS[10] delayed
  KEYS[3] paused   KEYS[7] marker
  KEYS[4] meta     KEYS[8] events

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[5] lifo "1" | "0"
  ARGV[2] job id                      ARGV[6] failed reason of this attempt
  ARGV[3] lock token ("0" = no check) ARGV[7] stacktrace JSON ("" = keep)
  ARGV[4] now (ms)                    ARGV[8] count the attempt "1" | "0" (a release: the job
                                              goes back untouched, attempts and reason kept)

  Returns 0, or -1 job missing, -2 lock missing, -6 lock held by another token, -3 not active.
]]
local k = {active = KEYS[1], wait = KEYS[2], paused = KEYS[3], meta = KEYS[4],
  prioritized = KEYS[5], pc = KEYS[6], marker = KEYS[7], events = KEYS[8], stalled = KEYS[9],
  delayed = KEYS[10]}
local prefix, jobId, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
local jobKey = prefix .. jobId
local meta = readMeta(k.meta)
promoteDelayed(k, prefix, now, meta)
if rcall("EXISTS", jobKey) == 0 then return -1 end
local lockCode = takeLock(prefix, jobId, ARGV[3], k.stalled)
if lockCode < 0 then return lockCode end
local counted = ARGV[8] ~= "0"
if not counted then
  -- nothing to record
elseif ARGV[7] ~= "" then
  rcall("HSET", jobKey, "failedReason", ARGV[6], "stacktrace", ARGV[7])
else
  rcall("HSET", jobKey, "failedReason", ARGV[6])
end
if rcall("LREM", k.active, -1, jobId) == 0 then return -3 end
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
enqueueReady(readyList(meta, k.wait, k.paused), k.prioritized, k.pc, jobId, priority,
  ARGV[5] == "1")
if not pausedOrMaxed(meta, k.active) then addReadyMarker(k.marker) end
if counted then rcall("HINCRBY", jobKey, "atm", 1) end
emit(k.events, meta.maxEvents, "waiting", "jobId", jobId, "prev", "active")
return 0
