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
local jobKey = prefix .. jobId
-- The lock first: a lock of ours means the job exists (a locked job is never removed),
-- so the common case needs no EXISTS; without one, tell a missing job (-1) from a lost
-- lock (-2) as BullMQ does.
local token = ARGV[3]
if token == "0" and rcall("EXISTS", jobKey) == 0 then return -1 end
local completed = ARGV[5] == "completed"
-- A parent completes only once its children are done (checked before the lock is released).
-- Both keys exist only while non-empty, so one EXISTS covers the common case of no children.
if completed and rcall("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") > 0 then
  if rcall("SCARD", jobKey .. ":dependencies") > 0 then return -4 end
  if rcall("ZCARD", jobKey .. ":unsuccessful") > 0 then return -9 end
end
local lockCode = takeLock(prefix, jobId, token, k.stalled)
if lockCode == -2 and rcall("EXISTS", jobKey) == 0 then return -1 end
if lockCode < 0 then return lockCode end
if rcall("LREM", k.active, "-1", jobId) == 0 then return -3 end
local meta = readMeta(k.meta)
-- (no XTRIM: every XADD of ours already caps the stream with MAXLEN ~)
local attemptsMade = rcall("HINCRBY", jobKey, "atm", "1")
local keepCount = tonumber(ARGV[8])
local fields = rcall("HMGET", jobKey, "deid", "parentKey", "parent")
local deid = fields[1]
local parent = false
if fields[2] or fields[3] then
  parent = parentOf(fields[2], fields[3])
  if parent then
    if completed then
      childCompleted(jobKey, parent, ARGV[6], now)
      parent = false -- no longer a dependency: deleting it below changes nothing
    else
      childFailed(jobKey, parent, ARGV[6], now, nowText)
    end
  end
end
if deid then
  -- A deduplication key without a ttl lasts as long as its job is unfinished.
  local deKey = prefix .. "de:" .. deid
  if rcall("PTTL", deKey) == -1 and rcall("GET", deKey) == jobId then rcall("DEL", deKey) end
end
if keepCount == 0 then
  deleteJobKeys(prefix, jobId, parent)
else
  rcall("ZADD", target, nowText, jobId)
  if completed then
    rcall("HSET", jobKey, "returnvalue", ARGV[6], "finishedOn", nowText)
  else
    if ARGV[7] ~= "" then
      rcall("HSET", jobKey, "failedReason", ARGV[6], "finishedOn", nowText, "stacktrace", ARGV[7])
    else
      rcall("HSET", jobKey, "failedReason", ARGV[6], "finishedOn", nowText)
    end
    rcall("HDEL", jobKey, "defa")
  end
  -- A completed job is no longer a dependency of its parent: trimming it needs no lookup.
  local trimParent = nil
  if completed then trimParent = false end
  local keepAge = tonumber(ARGV[9])
  if keepAge > 0 then
    local old = rcall("ZRANGEBYSCORE", target, 0, now - keepAge * 1000, "LIMIT", 0, 1000)
    for _, oldId in ipairs(old) do
      deleteJobKeys(prefix, oldId, trimParent)
      rcall("ZREM", target, oldId)
    end
  end
  if keepCount > 0 then
    local extra = rcall("ZREVRANGE", target, keepCount, -1)
    for _, oldId in ipairs(extra) do
      deleteJobKeys(prefix, oldId, trimParent)
      rcall("ZREM", target, oldId)
    end
  end
end
local points = tonumber(ARGV[17]) or 0
if points > 0 then
  -- BullMQ's metrics: a total, and jobs per elapsed minute (newest first).
  local metricsKey = prefix .. "metrics:" .. ARGV[5]
  local before = rcall("HINCRBY", metricsKey, "count", 1) - 1
  local prev = rcall("HMGET", metricsKey, "prevTS", "prevCount")
  if not prev[1] then
    rcall("HSET", metricsKey, "prevTS", now, "prevCount", 0)
  else
    local minutes = math.floor(now / 60000) - math.floor(tonumber(prev[1]) / 60000)
    if minutes > 0 then
      if minutes > points then minutes = points end
      local dataKey = metricsKey .. ":data"
      rcall("LPUSH", dataKey, before - tonumber(prev[2] or 0))
      for _ = 2, minutes do rcall("LPUSH", dataKey, 0) end
      rcall("LTRIM", dataKey, 0, points - 1)
      rcall("HSET", metricsKey, "prevCount", before, "prevTS", now)
    end
  end
end
if completed then
  emit(k.events, meta.maxEvents, "completed", "jobId", jobId, "returnvalue", ARGV[6],
    "prev", "active")
else
  emit(k.events, meta.maxEvents, "failed", "jobId", jobId, "failedReason", ARGV[6],
    "prev", "active")
  if attemptsMade >= tonumber(ARGV[10]) then
    emit(k.events, meta.maxEvents, "retries-exhausted", "jobId", jobId,
      "attemptsMade", attemptsMade)
  end
end
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
