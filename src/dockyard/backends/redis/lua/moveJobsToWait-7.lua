--[[
  Move many jobs from one sorted set back to wait: retry_jobs (failed, completed) and
  promote_jobs (delayed). Priorities are ignored, as BullMQ does.

  KEYS[1] source set   KEYS[3] paused  KEYS[5] marker  KEYS[7] active
  KEYS[2] wait         KEYS[4] meta    KEYS[6] events

  ARGV[1] job key prefix "<P>:<N>:"   ARGV[3] highest score to move
  ARGV[2] how many at most            ARGV[4] the source's state name

  Returns {how many moved, 1 when more remain else 0}.
]]
local prefix, count, maxScore, state = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ids = rcall("ZRANGEBYSCORE", KEYS[1], 0, maxScore, "LIMIT", 0, count)
if #ids > 0 then
  local meta = readMeta(KEYS[4])
  local list = readyList(meta, KEYS[2], KEYS[3])
  for _, jobId in ipairs(ids) do
    rcall("ZREM", KEYS[1], jobId)
    local jobKey = prefix .. jobId
    rcall("HDEL", jobKey, "finishedOn", "processedOn", "returnvalue", "failedReason", "defa")
    if state == "delayed" then rcall("HSET", jobKey, "delay", 0) end
    rcall("LPUSH", list, jobId)
    emit(KEYS[6], meta.maxEvents, "waiting", "jobId", jobId, "prev", state)
  end
  if not pausedOrMaxed(meta, KEYS[7]) then addReadyMarker(KEYS[5]) end
end
if rcall("ZCOUNT", KEYS[1], 0, maxScore) > 0 then return {#ids, 1} end
return {#ids, 0}
