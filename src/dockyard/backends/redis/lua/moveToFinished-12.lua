--[[
  Finish an attempt as completed or (finally) failed, release the lock, apply retention,
  and optionally fetch the next jobs for the same worker in the same call.

  KEYS[1] wait        KEYS[5] stalled   KEYS[9]  meta
  KEYS[2] active      KEYS[6] limiter   KEYS[10] pc
  KEYS[3] prioritized KEYS[7] delayed   KEYS[11] marker
  KEYS[4] events      KEYS[8] paused    KEYS[12] completed or failed (the target set)

  ARGV[1]  job key prefix "<P>:<N>:"     ARGV[9]  keep age (seconds, 0 = no age limit)
  ARGV[2]  job id                        ARGV[10] attempts (for retries-exhausted)
  ARGV[3]  lock token ("0" = no check)   ARGV[11] fetch next: how many jobs (0 = none)
  ARGV[4]  now (ms)                      ARGV[12] lock token for fetched jobs
  ARGV[5]  "completed" | "failed"        ARGV[13] lock duration (ms)
  ARGV[6]  return value JSON | reason    ARGV[14] worker name ("" = none)
  ARGV[7]  stacktrace JSON ("" = keep)   ARGV[15] worker rate limit max ("" = none)
  ARGV[8]  keep count (-1 = keep all)    ARGV[16] worker rate limit window ms ("" = none)
                                         ARGV[17] metrics data points to keep (0 = none)

  Returns -1 job missing, -2 lock missing, -6 lock held by another token, -3 not active;
  completing only: -4 the job has pending children, -9 a child failed with failParentOnFailure;
  else {rateLimitTtl, nextDelayedTs, id1, hash1, ...} as moveToActive (no jobs unless asked).

  Flows: a child's completion or final failure updates its parent (lib.lua, "Flows").
]]
local k = {wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
  stalled = KEYS[5], limiter = KEYS[6], delayed = KEYS[7], paused = KEYS[8], meta = KEYS[9],
  pc = KEYS[10], marker = KEYS[11]}
local target = KEYS[12]
local prefix, jobId, nowText = ARGV[1], ARGV[2], ARGV[4]
local now = tonumber(nowText)
local code, meta = finishJob(k, target, prefix, jobId, ARGV[3], now, nowText, ARGV[5],
  ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10], tonumber(ARGV[17]) or 0)
if code < 0 then return code end
local reply = {0, 0}
local want = tonumber(ARGV[11])
if want > 0 then
  reply = fetchJobs(k, meta, prefix, now, nowText, ARGV[12], ARGV[13], ARGV[14], want,
    tonumber(ARGV[15]), tonumber(ARGV[16]), false)
end
if #reply == 2 and rcall("LLEN", k.wait) == 0 and rcall("LLEN", k.active) == 0
    and rcall("ZCARD", k.prioritized) == 0 then
  emit(k.events, meta.maxEvents, "drained")
end
return reply
