--[[
  Advance a job scheduler (BullMQ's upsertJobScheduler data model) when a worker starts
  one of its iterations: create the next iteration, as Node BullMQ's worker does.

  KEYS[1] repeat (schedulers zset)  KEYS[7]  marker
  KEYS[2] delayed                   KEYS[8]  id (counter)
  KEYS[3] wait                      KEYS[9]  events
  KEYS[4] paused                    KEYS[10] pc (priority counter)
  KEYS[5] meta                      KEYS[11] active
  KEYS[6] prioritized               KEYS[12] the started iteration's job key

  ARGV[1] job key prefix "<P>:<N>:"        ARGV[4] now (ms)
  ARGV[2] scheduler id                     ARGV[5] iteration number of the next iteration
  ARGV[3] id of the started iteration      ARGV[6] next time (ms) for cron schedulers,
                                                   "" for `every` ones (computed here)

  The next iteration is created only when the started job is the scheduler's current one
  (`repeat:<sid>:<score>`), so retries and stall re-queues of an iteration change nothing.

  Returns the new iteration's id, or a number when nothing was created:
   0 the scheduler no longer exists (removed)
   1 the started job is not the scheduler's current iteration (already advanced)
   2 the next iteration exists already (a `duplicated` event is emitted)
   3 no next time: neither an `every` nor a client-computed cron time
   4 a legacy repeatable key (colon-separated, no `ic`): not advanced here
]]
local prefix, sid, producerId, nowText = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(nowText)
local prevText = rcall("ZSCORE", KEYS[1], sid)
if not prevText then return 0 end
local prev = tonumber(prevText)
local schedulerKey = KEYS[1] .. ":" .. sid
local attrs = rcall("HMGET", schedulerKey, "name", "data", "every", "offset", "ic")
if not attrs[5] then
  local _, colons = string.gsub(sid, ":", "")
  if colons >= 4 then return 4 end
end
if producerId ~= "repeat:" .. sid .. ":" .. string.format("%d", prev) then return 1 end

-- The started job's options are the template of the next iteration (as in BullMQ).
local producer = rcall("HMGET", KEYS[12], "opts", "data", "name")
local ok, opts = pcall(cjson.decode, producer[1] or "{}")
if not ok or type(opts) ~= "table" then opts = {} end
if type(opts["repeat"]) ~= "table" then opts["repeat"] = {} end

local every = tonumber(attrs[3]) or tonumber(opts["repeat"]["every"])
local nextMs
if every and every > 0 then
  -- Slots are prev + every; after a gap, skip to the first slot (of the scheduler's phase
  -- `offset`) after now, never back-filling missed ones (BullMQ 5.80.2+/6.x).
  nextMs = prev + every
  if nextMs < now then
    local offset = tonumber(attrs[4]) or tonumber(opts["repeat"]["offset"]) or 0
    local aligned = math.floor(now / every) * every + offset
    if aligned <= now then aligned = aligned + every end
    nextMs = aligned
  end
  nextMs = math.floor(nextMs)
  opts["prevMillis"] = nil
else
  nextMs = tonumber(ARGV[6])
  if not nextMs then return 3 end
  opts["prevMillis"] = nextMs
end

local nextText = string.format("%d", nextMs)
local nextId = "repeat:" .. sid .. ":" .. nextText
local meta = readMeta(KEYS[5])
if rcall("EXISTS", prefix .. nextId) == 1 then
  emit(KEYS[9], meta.maxEvents, "duplicated", "jobId", nextId)
  return 2
end

rcall("ZADD", KEYS[1], nextText, sid)
rcall("HINCRBY", schedulerKey, "ic", "1")
rcall("INCR", KEYS[8])

local data = attrs[2]
if not data then
  if meta.v6 then
    data = "{}"
  else
    -- BullMQ 5.x: a scheduler without template data takes the started job's, and keeps it.
    data = producer[2] or "{}"
    if data ~= "{}" then rcall("HSET", schedulerKey, "data", data) end
  end
end
local name = attrs[1] or producer[3] or sid
local delay = nextMs - now
if delay < 0 then delay = 0 end
local priority = tonumber(opts["priority"]) or 0
opts["repeat"]["count"] = tonumber(ARGV[5])
opts["jobId"] = nextId
opts["delay"] = delay
opts["timestamp"] = now
opts["repeatJobKey"] = sid

local jobKey = prefix .. nextId
rcall("HSET", jobKey, "name", name, "data", data, "opts", cjson.encode(opts),
  "timestamp", nowText, "delay", string.format("%d", delay), "priority",
  string.format("%d", priority), "rjk", sid)
emit(KEYS[9], meta.maxEvents, "added", "jobId", nextId, "name", name)
if delay > 0 then
  rcall("ZADD", KEYS[2], delayedScore(KEYS[2], nextMs), nextId)
  emit(KEYS[9], meta.maxEvents, "delayed", "jobId", nextId, "delay", nextText)
  if not meta.paused then addDelayMarker(KEYS[7], KEYS[2]) end
else
  enqueueReady(readyList(meta, KEYS[3], KEYS[4]), KEYS[6], KEYS[10], nextId, priority,
    opts["lifo"] == true)
  if not pausedOrMaxed(meta, KEYS[11]) then addReadyMarker(KEYS[7]) end
  emit(KEYS[9], meta.maxEvents, "waiting", "jobId", nextId)
end
-- BullMQ 5.x records the iteration a job produced (6.x readers ignore it).
if not meta.v6 then rcall("HSET", KEYS[12], "nrjid", nextId) end
return nextId
