--[[
  Run a finished job again (Job.retry): from completed or failed back to wait.

  KEYS[1] the job's set (completed or failed)   KEYS[5] marker
  KEYS[2] wait                                   KEYS[6] events
  KEYS[3] paused                                 KEYS[7] active
  KEYS[4] meta

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[3] the state it is in ("completed" | "failed")
  ARGV[2] job id                      ARGV[4] lifo "1" | "0"   ARGV[5] reset attempts "1" | "0"

  Returns 1, or -1 job missing, -3 not in that state.
]]
local prefix, jobId, state = ARGV[1], ARGV[2], ARGV[3]
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
if rcall("ZREM", KEYS[1], jobId) == 0 then return -3 end
rcall("HDEL", jobKey, "finishedOn", "processedOn", "returnvalue", "failedReason", "defa")
if ARGV[5] == "1" then rcall("HSET", jobKey, "atm", 0, "ats", 0) end
local meta = readMeta(KEYS[4])
local list = readyList(meta, KEYS[2], KEYS[3])
if ARGV[4] == "1" then rcall("RPUSH", list, jobId) else rcall("LPUSH", list, jobId) end
if not pausedOrMaxed(meta, KEYS[7]) then addReadyMarker(KEYS[5]) end
emit(KEYS[6], meta.maxEvents, "waiting", "jobId", jobId, "prev", state)
return 1
