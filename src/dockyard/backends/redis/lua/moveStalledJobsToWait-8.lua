--[[
  Stalled-job check: requeue jobs that stayed active across two checks without a lock.
  Runs at most once per interval per queue (the `stalled-check` key guards it).

  KEYS[1] stalled   KEYS[4] stalled-check   KEYS[7] marker
  KEYS[2] wait      KEYS[5] meta            KEYS[8] events
  KEYS[3] active    KEYS[6] paused

  ARGV[1] max stalled count   ARGV[3] now (ms)
  ARGV[2] job key prefix      ARGV[4] stalled interval (ms)

  Returns the ids found stalled this round. A job past the max stalled count gets `defa`
  set; the next worker that fetches it fails it at once.
]]
local k = {stalled = KEYS[1], wait = KEYS[2], active = KEYS[3], meta = KEYS[5],
  paused = KEYS[6], marker = KEYS[7], events = KEYS[8]}
local maxStalled, prefix, now = tonumber(ARGV[1]), ARGV[2], ARGV[3]
if rcall("EXISTS", KEYS[4]) == 1 then return {} end
rcall("SET", KEYS[4], now, "PX", ARGV[4])
local meta = readMeta(k.meta)
rcall("XTRIM", k.events, "MAXLEN", "~", meta.maxEvents)
local stalledIds = {}
local candidates = rcall("SMEMBERS", k.stalled)
if #candidates > 0 then
  rcall("DEL", k.stalled)
  local list = readyList(meta, k.wait, k.paused)
  local wake = not pausedOrMaxed(meta, k.active)
  for _, jobId in ipairs(candidates) do
    if string.sub(jobId, 1, 2) ~= "0:" then
      local jobKey = prefix .. jobId
      if rcall("EXISTS", jobKey .. ":lock") == 0
          and rcall("LREM", k.active, 1, jobId) > 0 then
        local count = rcall("HINCRBY", jobKey, "stc", 1)
        if count > maxStalled then
          local opts = cjson.decode(rcall("HGET", jobKey, "opts") or "{}")
          if opts["repeat"] == nil then
            rcall("HSET", jobKey, "defa", "job stalled more than allowable limit (its worker died or lost the job's lock each time it ran it)")
          end
        end
        rcall("RPUSH", list, jobId)
        if wake then addReadyMarker(k.marker) end
        emit(k.events, meta.maxEvents, "waiting", "jobId", jobId, "prev", "active")
        emit(k.events, meta.maxEvents, "stalled", "jobId", jobId)
        stalledIds[#stalledIds + 1] = jobId
      end
    end
  end
end
local active = rcall("LRANGE", k.active, 0, -1)
for i = 1, #active, 5000 do
  rcall("SADD", k.stalled, unpack(active, i, math.min(i + 4999, #active)))
end
return stalledIds
