--[[
  Finish several attempts (completed or finally failed) in one call, each as
  moveToFinished does (lock check per job), then optionally fetch the next jobs for the
  same worker. A worker sends it when several of its jobs finish in one turn of its loop.

  KEYS[1] wait        KEYS[5] stalled   KEYS[9]  meta
  KEYS[2] active      KEYS[6] limiter   KEYS[10] pc
  KEYS[3] prioritized KEYS[7] delayed   KEYS[11] marker
  KEYS[4] events      KEYS[8] paused    KEYS[12] completed   KEYS[13] failed

  ARGV[1] job key prefix "<P>:<N>:"     ARGV[6] worker name ("" = none)
  ARGV[2] now (ms)                      ARGV[7] worker rate limit max ("" = none)
  ARGV[3] fetch next: how many jobs     ARGV[8] worker rate limit window ms ("" = none)
  ARGV[4] lock token for fetched jobs   ARGV[9] n, the number of jobs finished
  ARGV[5] lock duration (ms)
  then 9 per job, from ARGV[10]: job id, lock token ("0" = no check), "completed" |
  "failed", return value JSON | reason, stacktrace JSON ("" = keep), keep count (-1 = keep
  all), keep age (seconds, 0 = none), attempts, metrics data points (0 = none).

  Returns {code1, ..., codeN, rateLimitTtl, nextDelayedTs, id1, hash1, ...}: per job 0 or
  moveToFinished's negative code (-1 job missing, -2 lock missing, -6 lock held by another
  token, -3 not active, -4 pending children, -9 a child failed); a job refused changes
  nothing and the others go on. The fetch (as moveToActive) is made only when at least
  one job was finished; otherwise its part is {0, 0}.
]]
local k = {wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
  stalled = KEYS[5], limiter = KEYS[6], delayed = KEYS[7], paused = KEYS[8], meta = KEYS[9],
  pc = KEYS[10], marker = KEYS[11]}
local prefix, nowText = ARGV[1], ARGV[2]
local now = tonumber(nowText)
local n = tonumber(ARGV[9])
local codes = {}
local meta = nil
local finished = 0
for i = 0, n - 1 do
  local a = 10 + i * 9
  local kind = ARGV[a + 2]
  local target = KEYS[13]
  if kind == "completed" then target = KEYS[12] end
  local code
  code, meta = finishJob(k, target, prefix, ARGV[a], ARGV[a + 1], now, nowText, kind,
    ARGV[a + 3], ARGV[a + 4], tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]), ARGV[a + 7],
    tonumber(ARGV[a + 8]) or 0, meta)
  codes[#codes + 1] = code
  if code == 0 then finished = finished + 1 end
end
local reply = {0, 0}
if finished > 0 then
  local want = tonumber(ARGV[3])
  if want > 0 then
    reply = fetchJobs(k, meta, prefix, now, nowText, ARGV[4], ARGV[5], ARGV[6], want,
      tonumber(ARGV[7]), tonumber(ARGV[8]), false)
  end
  if #reply == 2 and rcall("LLEN", k.wait) == 0 and rcall("LLEN", k.active) == 0
      and rcall("ZCARD", k.prioritized) == 0 then
    emit(k.events, meta.maxEvents, "drained")
  end
end
for _, part in ipairs(reply) do codes[#codes + 1] = part end
return codes
