--[[
  Make a delayed job ready now (Job.promote).

  KEYS[1] delayed  KEYS[4] meta         KEYS[7] marker
  KEYS[2] wait     KEYS[5] prioritized  KEYS[8] events
  KEYS[3] paused   KEYS[6] pc           KEYS[9] active

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[2] job id

  Returns 0, or -1 job missing, -3 not delayed.
]]
local prefix, jobId = ARGV[1], ARGV[2]
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
if rcall("ZREM", KEYS[1], jobId) == 0 then return -3 end
local meta = readMeta(KEYS[4])
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
enqueueReady(readyList(meta, KEYS[2], KEYS[3]), KEYS[5], KEYS[6], jobId, priority, false)
if not pausedOrMaxed(meta, KEYS[9]) then addReadyMarker(KEYS[7]) end
emit(KEYS[8], meta.maxEvents, "waiting", "jobId", jobId, "prev", "delayed")
rcall("HSET", jobKey, "delay", 0)
return 0
