--[[
  Shared helpers, prepended by the loader to every script in this folder.
  Not a script itself: it declares no KEYS and returns nothing.

  Conventions: `prefix` is the job key prefix "<P>:<N>:"; times are integer ms; every
  event goes to the queue's stream capped with MAXLEN ~ meta.maxEvents.

  Speed: Redis 7.0 turns each Lua number handed to redis.call into text with printf's
  "%.17g", which costs more than a whole cheap command. On the per-job path, arguments are
  therefore passed as strings (ARGV as given, literals quoted), and counters are bumped
  with HINCRBY rather than read, added to and written back.
]]
local rcall = redis.call

-- Queue metadata in one read: paused flag, generation (5 or 6), concurrency, event cap, limits.
local function readMeta(metaKey)
  local m = rcall("HMGET", metaKey, "paused", "concurrency", "version", "opts.maxLenEvents",
    "max", "duration")
  local meta = {paused = m[1] ~= false, v6 = false, concurrency = tonumber(m[2]),
    maxEvents = m[4], max = tonumber(m[5]), duration = tonumber(m[6])}
  if m[3] then
    local major = string.match(m[3], "^bullmq:(%d+)")
    if major and tonumber(major) >= 6 then meta.v6 = true end
  end
  if not meta.maxEvents then
    meta.maxEvents = "10000"
    rcall("HSET", metaKey, "opts.maxLenEvents", "10000")
  end
  return meta
end

-- The list ready jobs go to: `paused` while a 5.x queue is paused, else `wait`.
local function readyList(meta, waitKey, pausedKey)
  if meta.paused and not meta.v6 then return pausedKey end
  return waitKey
end

-- True when workers must not be woken: paused, or the global concurrency is reached.
local function pausedOrMaxed(meta, activeKey)
  if meta.paused then return true end
  if meta.concurrency then return rcall("LLEN", activeKey) >= meta.concurrency end
  return false
end

local function emit(eventsKey, maxEvents, ...)
  rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", "event", ...)
end

local function addReadyMarker(markerKey)
  rcall("ZADD", markerKey, "0", "0")
end

-- Tell blocked workers when the earliest delayed job is due (marker member "1").
local function addDelayMarker(markerKey, delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if first[2] then
    rcall("ZADD", markerKey, math.floor(tonumber(first[2]) / 4096), "1")
  end
end

-- Score in `delayed` for a due time: due*4096 plus a sequence that keeps FIFO within a ms.
local function delayedScore(delayedKey, due)
  local low = due * 4096
  local high = low + 4095
  local top = rcall("ZREVRANGEBYSCORE", delayedKey, high, low, "WITHSCORES", "LIMIT", 0, 1)
  if top[2] then
    local score = tonumber(top[2]) + 1
    if score > high then score = high end
    return score
  end
  return low
end

local function priorityScore(pcKey, priority)
  local seq = rcall("INCR", pcKey)
  return priority * 4294967296 + (seq % 4294967296)
end

-- Put a ready job where workers take it from: a list (FIFO or LIFO) or the prioritized set.
local function enqueueReady(list, prioritizedKey, pcKey, jobId, priority, lifo)
  if priority > 0 then
    rcall("ZADD", prioritizedKey, priorityScore(pcKey, priority), jobId)
  elseif lifo then
    rcall("RPUSH", list, jobId)
  else
    rcall("LPUSH", list, jobId)
  end
end

-- Lock check of every finishing script: token "0" skips it; else it must match, then it is released.
local function takeLock(prefix, jobId, token, stalledKey)
  if token == "0" then return 0 end
  local lockKey = prefix .. jobId .. ":lock"
  local held = rcall("GET", lockKey)
  if not held then return -2 end
  if held ~= token then return -6 end
  rcall("DEL", lockKey)
  rcall("SREM", stalledKey, jobId)
  return 0
end

-- Flows ---------------------------------------------------------------------------------
-- A child names its parent in `parent` (JSON: id, queueKey, and fpof/cpof/idof/rdof when
-- set) and `parentKey`; a parent keeps `:dependencies` (pending children's keys),
-- `:processed` (their return values), `:failed` and `:unsuccessful` (failures by policy).
-- Keys of the parent's queue are not declared in KEYS (as BullMQ): one server only.

-- The parent of a child as {key, queue, id, flags}, from `parent` JSON, else `parentKey`
-- split at its last ':' (no failure policy then); nil when it has none.
local function parentOf(parentKey, parentJson)
  if parentJson and parentJson ~= "" then
    local ok, p = pcall(cjson.decode, parentJson)
    if ok and type(p) == "table" and p.id ~= nil and type(p.queueKey) == "string" then
      local id = tostring(p.id)
      return {key = p.queueKey .. ":" .. id, queue = p.queueKey, id = id, flags = p}
    end
  end
  if parentKey and parentKey ~= "" then
    local queue, id = string.match(parentKey, "^(.*):([^:]*)$")
    if queue then return {key = parentKey, queue = queue, id = id, flags = {}} end
  end
  return nil
end

-- Move a parent just taken out of waiting-children to where it runs: delayed by its
-- `delay`, else prioritized by its `priority`, else the end of wait (next to run).
local function releaseParent(parent, now)
  local pq = parent.queue
  local f = rcall("HMGET", parent.key, "priority", "delay")
  local priority, delay = tonumber(f[1]) or 0, tonumber(f[2]) or 0
  local meta = readMeta(pq .. ":meta")
  if delay > 0 then
    local due = now + delay
    rcall("ZADD", pq .. ":delayed", due * 4096, parent.id)
    emit(pq .. ":events", meta.maxEvents, "delayed", "jobId", parent.id, "delay", due)
    addDelayMarker(pq .. ":marker", pq .. ":delayed")
    return
  end
  if priority > 0 then
    rcall("ZADD", pq .. ":prioritized", priorityScore(pq .. ":pc", priority), parent.id)
  else
    rcall("RPUSH", readyList(meta, pq .. ":wait", pq .. ":paused"), parent.id)
  end
  if not pausedOrMaxed(meta, pq .. ":active") then addReadyMarker(pq .. ":marker") end
  emit(pq .. ":events", meta.maxEvents, "waiting", "jobId", parent.id, "prev",
    "waiting-children")
end

-- Release the parent when no child is pending and it waits for children.
local function releaseParentIfReady(parent, now)
  if rcall("SCARD", parent.key .. ":dependencies") == 0 and rcall("EXISTS", parent.key) == 1
      and rcall("ZREM", parent.queue .. ":waiting-children", parent.id) == 1 then
    releaseParent(parent, now)
  end
end

-- A child completed: record its value in the parent, release the parent if it was the last.
local function childCompleted(childKey, parent, value, now)
  if rcall("SREM", parent.key .. ":dependencies", childKey) == 1 then
    rcall("HSET", parent.key .. ":processed", childKey, value)
    releaseParentIfReady(parent, now)
  end
end

-- A child failed for good: apply its failure policy (the flag in its `parent` JSON).
local function childFailed(childKey, parent, reason, now, nowText)
  local flags = parent.flags
  if not (flags.fpof or flags.cpof or flags.idof or flags.rdof) then return end
  if rcall("SREM", parent.key .. ":dependencies", childKey) == 0 then return end
  if flags.fpof then
    rcall("ZADD", parent.key .. ":unsuccessful", nowText, childKey)
    if rcall("EXISTS", parent.key) == 0 then return end
    local moved = rcall("ZREM", parent.queue .. ":waiting-children", parent.id) == 1
    if not moved and rcall("ZREM", parent.queue .. ":delayed", parent.id) == 1 then
      rcall("HSET", parent.key, "delay", "0")
      moved = true
    end
    if moved or not rcall("ZSCORE", parent.queue .. ":failed", parent.id) then
      -- The next worker to fetch the parent fails it at once with this reason.
      rcall("HSET", parent.key, "defa", "child " .. childKey .. " failed")
    end
    if moved then releaseParent(parent, now) end
  elseif flags.cpof then
    rcall("HSET", parent.key .. ":failed", childKey, reason)
    if rcall("EXISTS", parent.key) == 1
        and rcall("ZREM", parent.queue .. ":waiting-children", parent.id) == 1 then
      releaseParent(parent, now)
    end
  elseif flags.idof then
    releaseParentIfReady(parent, now)
    rcall("HSET", parent.key .. ":failed", childKey, reason)
  else
    releaseParentIfReady(parent, now)
  end
end

-- A child is being deleted: it is no longer a dependency; a parent left with none goes to
-- the end of wait (its priority and delay are not applied, as BullMQ's removal).
local function dropChild(childKey, parent)
  local depsKey = parent.key .. ":dependencies"
  if rcall("SREM", depsKey, childKey) == 0 or rcall("SCARD", depsKey) > 0 then return end
  local pq = parent.queue
  if rcall("ZREM", pq .. ":waiting-children", parent.id) == 0 then return end
  local meta = readMeta(pq .. ":meta")
  rcall("RPUSH", readyList(meta, pq .. ":wait", pq .. ":paused"), parent.id)
  if not pausedOrMaxed(meta, pq .. ":active") then addReadyMarker(pq .. ":marker") end
  emit(pq .. ":events", meta.maxEvents, "waiting", "jobId", parent.id, "prev",
    "waiting-children")
end

-- Delete a job's keys. `parent`: the job's parent as parentOf gives it, false when it is
-- known to need no parent bookkeeping, nil to look it up (one HMGET).
local function deleteJobKeys(prefix, jobId, parent)
  local key = prefix .. jobId
  if parent == nil then
    local f = rcall("HMGET", key, "parentKey", "parent")
    if f[1] or f[2] then parent = parentOf(f[1], f[2]) end
  end
  if parent then dropChild(key, parent) end
  rcall("DEL", key, key .. ":logs", key .. ":dependencies", key .. ":processed",
    key .. ":failed", key .. ":unsuccessful")
end

-- Move due delayed jobs (at most 1000) to where ready jobs go; returns how many moved.
local function promoteDelayed(k, prefix, now, meta)
  if rcall("ZCARD", k.delayed) == 0 then return 0 end
  local due = rcall("ZRANGEBYSCORE", k.delayed, "0", (now + 1) * 4096 - 1, "LIMIT", "0", "1000")
  if #due == 0 then return 0 end
  local list = readyList(meta, k.wait, k.paused)
  for _, jobId in ipairs(due) do
    rcall("ZREM", k.delayed, jobId)
    local jobKey = prefix .. jobId
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    enqueueReady(list, k.prioritized, k.pc, jobId, priority, false)
    emit(k.events, meta.maxEvents, "waiting", "jobId", jobId, "prev", "delayed")
    rcall("HSET", jobKey, "delay", 0)
  end
  return #due
end

-- Record the start of an attempt (processedOn, ats + 1, pb); the job's hash as it is now.
local function startAttempt(jobKey, nowText, workerName)
  if workerName ~= "" then
    rcall("HSET", jobKey, "processedOn", nowText, "pb", workerName)
  else
    rcall("HSET", jobKey, "processedOn", nowText)
  end
  rcall("HINCRBY", jobKey, "ats", "1")
  return rcall("HGETALL", jobKey)
end

--[[
  Take up to `count` ready jobs into active, locked with `token` for `lockMs`.
  k: table of keys (wait, active, prioritized, events, stalled, limiter, delayed, paused, meta,
  pc, marker). `wake`: add the ready marker when jobs remain, for other idle workers (a
  fetch made while finishing skips it: whoever is idle was woken by the adds already).
  `nowText` is `now` as the caller's text. Returns {rateLimitTtl, nextDelayedTs, id1, hash1,
  id2, hash2, ...}.
]]
local function fetchJobs(k, meta, prefix, now, nowText, token, lockMs, workerName, count,
    limMax, limDur, wake)
  local list = readyList(meta, k.wait, k.paused)
  if promoteDelayed(k, prefix, now, meta) > 0 and not pausedOrMaxed(meta, k.active) then
    addReadyMarker(k.marker)
  end
  local maxJobs = meta.max or limMax
  local window = limDur or meta.duration
  if maxJobs then
    local used = tonumber(rcall("GET", k.limiter)) or 0
    if used >= maxJobs then
      local ttl = rcall("PTTL", k.limiter)
      if ttl > 0 then return {ttl, 0} end
      -- PTTL 0: the window ends this millisecond; -1: a key with no expiry. Either way the
      -- window is over: start a new one, or the next INCR would count into the dying one.
      rcall("DEL", k.limiter)
    end
  end
  if meta.paused then return {0, 0} end
  if meta.concurrency then
    local free = meta.concurrency - rcall("LLEN", k.active)
    if free < count then count = free end
  end
  local reply = {0, 0}
  local taken = 0
  while taken < count do
    local jobId = rcall("RPOPLPUSH", list, k.active)
    if jobId and string.sub(jobId, 1, 2) == "0:" then
      rcall("LREM", k.active, "1", jobId)
    elseif not jobId then
      local popped = rcall("ZPOPMIN", k.prioritized)
      if popped[1] then
        jobId = popped[1]
        rcall("LPUSH", k.active, jobId)
      else
        rcall("DEL", k.pc)
        break
      end
    end
    if jobId and string.sub(jobId, 1, 2) ~= "0:" then
      local used = 0
      if maxJobs then
        used = rcall("INCR", k.limiter)
        if used == 1 then rcall("PEXPIRE", k.limiter, math.floor(math.abs(window or 0))) end
      end
      local jobKey = prefix .. jobId
      if token ~= "0" then rcall("SET", jobKey .. ":lock", token, "PX", lockMs) end
      emit(k.events, meta.maxEvents, "active", "jobId", jobId, "prev", "waiting")
      reply[#reply + 1] = jobId
      reply[#reply + 1] = startAttempt(jobKey, nowText, workerName)
      taken = taken + 1
      if maxJobs and used >= maxJobs then break end
    end
  end
  if taken > 0 then
    -- Wake another worker only when ready jobs remain for it.
    if wake and (rcall("LLEN", list) > 0 or rcall("ZCARD", k.prioritized) > 0) then
      addReadyMarker(k.marker)
    end
  else
    local first = rcall("ZRANGE", k.delayed, "0", "0", "WITHSCORES")
    if first[2] then reply[2] = math.floor(tonumber(first[2]) / 4096) end
  end
  return reply
end

-- Finishing one attempt -----------------------------------------------------------------
--[[
  Finish job `jobId` as "completed" or (finally) "failed" (`kind`): check and release the
  lock (`token` "0": no check), store the value or reason, update a flow parent, apply
  retention (`keepCount` -1 = keep all; `keepAge` seconds, 0 = no age limit) and metrics
  (`points` data points, 0 = none), emit the events. `target` is the completed or failed
  set; `k` the queue's keys as in fetchJobs plus stalled, limiter, meta; `meta` read once
  per script call (nil: read it here when needed). Returns 0 or a negative code (see
  moveToFinished), and the meta read so far.
]]
local function finishJob(k, target, prefix, jobId, token, now, nowText, kind, value, stack,
    keepCount, keepAge, attempts, points, meta)
  local jobKey = prefix .. jobId
  -- The lock first: a lock of ours means the job exists (a locked job is never removed),
  -- so the common case needs no EXISTS; without one, tell a missing job (-1) from a lost
  -- lock (-2) as BullMQ does.
  if token == "0" and rcall("EXISTS", jobKey) == 0 then return -1, meta end
  local completed = kind == "completed"
  -- A parent completes only once its children are done (checked before the lock is released).
  -- Both keys exist only while non-empty, so one EXISTS covers the common case of no children.
  if completed and rcall("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") > 0 then
    if rcall("SCARD", jobKey .. ":dependencies") > 0 then return -4, meta end
    if rcall("ZCARD", jobKey .. ":unsuccessful") > 0 then return -9, meta end
  end
  local lockCode = takeLock(prefix, jobId, token, k.stalled)
  if lockCode == -2 and rcall("EXISTS", jobKey) == 0 then return -1, meta end
  if lockCode < 0 then return lockCode, meta end
  if rcall("LREM", k.active, "-1", jobId) == 0 then return -3, meta end
  meta = meta or readMeta(k.meta)
  -- (no XTRIM: every XADD of ours already caps the stream with MAXLEN ~)
  local attemptsMade = rcall("HINCRBY", jobKey, "atm", "1")
  local fields = rcall("HMGET", jobKey, "deid", "parentKey", "parent")
  local deid = fields[1]
  local parent = false
  if fields[2] or fields[3] then
    parent = parentOf(fields[2], fields[3])
    if parent then
      if completed then
        childCompleted(jobKey, parent, value, now)
        parent = false -- no longer a dependency: deleting it below changes nothing
      else
        childFailed(jobKey, parent, value, now, nowText)
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
      rcall("HSET", jobKey, "returnvalue", value, "finishedOn", nowText)
    else
      if stack ~= "" then
        rcall("HSET", jobKey, "failedReason", value, "finishedOn", nowText, "stacktrace", stack)
      else
        rcall("HSET", jobKey, "failedReason", value, "finishedOn", nowText)
      end
      rcall("HDEL", jobKey, "defa")
    end
    -- A completed job is no longer a dependency of its parent: trimming it needs no lookup.
    local trimParent = nil
    if completed then trimParent = false end
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
  if points > 0 then
    -- BullMQ's metrics: a total, and jobs per elapsed minute (newest first).
    local metricsKey = prefix .. "metrics:" .. kind
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
    emit(k.events, meta.maxEvents, "completed", "jobId", jobId, "returnvalue", value,
      "prev", "active")
  else
    emit(k.events, meta.maxEvents, "failed", "jobId", jobId, "failedReason", value,
      "prev", "active")
    if attemptsMade >= tonumber(attempts) then
      emit(k.events, meta.maxEvents, "retries-exhausted", "jobId", jobId,
        "attemptsMade", attemptsMade)
    end
  end
  return 0, meta
end

-- Job schedulers ------------------------------------------------------------------------
-- BullMQ's layout: zset `repeat` (scheduler id -> ms of its current iteration), hash
-- `repeat:<sid>` (the schedule and template), iterations `repeat:<sid>:<ms>` with `rjk`.

-- The slot after `prev` of an `every` scheduler: prev + every or, after a gap, the first
-- slot of phase `offset` after now. Missed slots are skipped, never back-filled (BullMQ
-- 5.80.2+/6.x).
local function nextEverySlot(prev, every, now, offset)
  local nextMs = prev + every
  if nextMs < now then
    local aligned = math.floor(now / every) * every + (offset or 0)
    if aligned <= now then aligned = aligned + every end
    nextMs = aligned
  end
  return math.floor(nextMs)
end

-- Store iteration `repeat:<sid>:<nextMs>` and enqueue it as an add does (`added`, then
-- `delayed` or `waiting`). `opts` (a table: template options with `repeat`) gets the
-- per-iteration fields BullMQ writes. k: keys delayed, wait, paused, prioritized, pc,
-- marker, events, active. Returns the iteration's id.
local function storeIteration(k, meta, prefix, sid, nextMs, now, nowText, name, data, opts)
  local nextText = string.format("%d", nextMs)
  local jobId = "repeat:" .. sid .. ":" .. nextText
  local delay = nextMs - now
  if delay < 0 then delay = 0 end
  local priority = tonumber(opts["priority"]) or 0
  opts["jobId"] = jobId
  opts["delay"] = delay
  opts["timestamp"] = now
  opts["repeatJobKey"] = sid
  rcall("HSET", prefix .. jobId, "name", name, "data", data, "opts", cjson.encode(opts),
    "timestamp", nowText, "delay", string.format("%d", delay), "priority",
    string.format("%d", priority), "rjk", sid)
  emit(k.events, meta.maxEvents, "added", "jobId", jobId, "name", name)
  if delay > 0 then
    rcall("ZADD", k.delayed, delayedScore(k.delayed, nextMs), jobId)
    emit(k.events, meta.maxEvents, "delayed", "jobId", jobId, "delay", nextText)
    if not meta.paused then addDelayMarker(k.marker, k.delayed) end
  else
    enqueueReady(readyList(meta, k.wait, k.paused), k.prioritized, k.pc, jobId, priority,
      opts["lifo"] == true)
    if not pausedOrMaxed(meta, k.active) then addReadyMarker(k.marker) end
    emit(k.events, meta.maxEvents, "waiting", "jobId", jobId)
  end
  return jobId
end

-- The id of scheduler `sid`'s current iteration, or nil when it has none.
local function currentIteration(repeatKey, sid)
  local score = rcall("ZSCORE", repeatKey, sid)
  if not score then return nil end
  return "repeat:" .. sid .. ":" .. string.format("%d", tonumber(score))
end

-- True for a scheduler's current iteration, which drain and clean leave alone (deleting it
-- would end the schedule: the next iteration is made when the current one starts).
local function isCurrentIteration(prefix, jobId)
  if string.sub(jobId, 1, 7) ~= "repeat:" then return false end
  local rjk = rcall("HGET", prefix .. jobId, "rjk")
  return rjk ~= false and currentIteration(prefix .. "repeat", rjk) == jobId
end
