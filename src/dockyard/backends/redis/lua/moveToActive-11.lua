--[[
  Fetch: move up to `count` ready jobs to active and lock them; promote due delayed jobs.

  KEYS[1] wait       KEYS[5] stalled   KEYS[9]  meta
  KEYS[2] active     KEYS[6] limiter   KEYS[10] pc
  KEYS[3] prioritized KEYS[7] delayed  KEYS[11] marker
  KEYS[4] events     KEYS[8] paused

  ARGV[1] job key prefix "<P>:<N>:"    ARGV[5] worker name ("" = none)
  ARGV[2] now (ms)                     ARGV[6] how many jobs at most
  ARGV[3] lock token                   ARGV[7] worker rate limit: max jobs ("" = none)
  ARGV[4] lock duration (ms)           ARGV[8] worker rate limit: window (ms, "" = none)

  Returns {rateLimitTtl, nextDelayedTs, id1, hash1, id2, hash2, ...}: rateLimitTtl > 0 when
  the queue is rate limited, nextDelayedTs > 0 when nothing was ready but a job is delayed.
]]
local k = {wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
  stalled = KEYS[5], limiter = KEYS[6], delayed = KEYS[7], paused = KEYS[8], meta = KEYS[9],
  pc = KEYS[10], marker = KEYS[11]}
local meta = readMeta(k.meta)
return fetchJobs(k, meta, ARGV[1], tonumber(ARGV[2]), ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), true)
