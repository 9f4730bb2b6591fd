--[[
  Change a job's priority; a ready job moves to its new place at once (Job.change_priority).

  KEYS[1] wait    KEYS[3] meta         KEYS[5] pc      KEYS[7] active
  KEYS[2] paused  KEYS[4] prioritized  KEYS[6] marker

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[3] new priority (>= 0)
  ARGV[2] job id                      ARGV[4] lifo "1" | "0"

  Returns 0, or -1 job missing.
]]
local prefix, jobId, priority, lifo = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == "1"
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
local meta = readMeta(KEYS[3])
local list = readyList(meta, KEYS[1], KEYS[2])
local ready = rcall("ZREM", KEYS[4], jobId) > 0
if rcall("LREM", list, 0, jobId) > 0 then ready = true end
if ready then
  enqueueReady(list, KEYS[4], KEYS[5], jobId, priority, lifo)
  if not pausedOrMaxed(meta, KEYS[7]) then addReadyMarker(KEYS[6]) end
end
rcall("HSET", jobKey, "priority", priority)
return 0
