--[[
  Set a delayed job's delay anew, counted from now (Job.change_delay).

  KEYS[1] delayed  KEYS[2] meta  KEYS[3] marker  KEYS[4] events

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[3] delay (ms)
  ARGV[2] job id                      ARGV[4] now (ms)

  Returns 0, or -1 job missing, -3 not delayed.
]]
local prefix, jobId, delay, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
if not rcall("ZSCORE", KEYS[1], jobId) then return -3 end
local due = now + delay
rcall("ZADD", KEYS[1], delayedScore(KEYS[1], due), jobId)
rcall("HSET", jobKey, "delay", delay)
local meta = readMeta(KEYS[2])
emit(KEYS[4], meta.maxEvents, "delayed", "jobId", jobId, "delay", due)
addDelayMarker(KEYS[3], KEYS[1])
return 0
