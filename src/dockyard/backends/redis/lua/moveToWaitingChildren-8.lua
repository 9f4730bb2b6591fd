--[[
  Step jobs: a running job waits for its children (BullMQ's moveToWaitingChildren). With
  children pending it leaves active for waiting-children, where the last child's
  completion releases it; with none pending it stays active and carries on.

  KEYS[1] active             KEYS[5] job:unsuccessful
  KEYS[2] waiting-children   KEYS[6] stalled
  KEYS[3] job                KEYS[7] events
  KEYS[4] job:dependencies   KEYS[8] meta

  ARGV[1] lock token ("0" = no check)   ARGV[3] now (ms)   ARGV[5] job key prefix "<P>:<N>:"
  ARGV[2] one child's key ("" = any)    ARGV[4] job id

  Returns 0 moved, 1 nothing pending (the job stays active and locked), -1 job missing,
  -9 a child failed with failParentOnFailure, -2/-6 lock missing/another's, -3 not active.
]]
local token, childKey, nowText, jobId, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if rcall("EXISTS", KEYS[3]) == 0 then return -1 end
if rcall("ZCARD", KEYS[5]) > 0 then return -9 end
if childKey ~= "" then
  if rcall("SISMEMBER", KEYS[4], childKey) == 0 then return 1 end
elseif rcall("SCARD", KEYS[4]) == 0 then
  return 1
end
local lockCode = takeLock(prefix, jobId, token, KEYS[6])
if lockCode < 0 then return lockCode end
if rcall("LREM", KEYS[1], 0, jobId) == 0 then return -3 end
rcall("ZADD", KEYS[2], nowText, jobId)
local meta = readMeta(KEYS[8])
emit(KEYS[7], meta.maxEvents, "waiting-children", "jobId", jobId, "prev", "active")
return 0
