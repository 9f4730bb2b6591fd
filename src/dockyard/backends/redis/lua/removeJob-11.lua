--[[
  Remove one job and its keys, wherever it is, unless a worker holds its lock.

  KEYS[1] wait      KEYS[4] prioritized  KEYS[7] failed            KEYS[10] meta
  KEYS[2] paused    KEYS[5] delayed      KEYS[8] waiting-children  KEYS[11] stalled
  KEYS[3] active    KEYS[6] completed    KEYS[9] events

  ARGV[1] job key prefix "<P>:<N>:"
  ARGV[2] job id

  A parent with pending children is refused (-4): they would run for a parent that is
  gone. Remove (or finish) the children first; a removed child leaves its parent's
  dependencies (lib.lua deleteJobKeys).

  Returns 1 removed, 0 the job is locked (left alone), -1 job missing, -4 pending children.
]]
local prefix, jobId = ARGV[1], ARGV[2]
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 0 then return -1 end
if rcall("EXISTS", jobKey .. ":lock") == 1 then return 0 end
if rcall("SCARD", jobKey .. ":dependencies") > 0 then return -4 end
local prev = "unknown"
local lists = {{KEYS[1], "waiting"}, {KEYS[2], "paused"}, {KEYS[3], "active"}}
for _, entry in ipairs(lists) do
  if rcall("LREM", entry[1], 0, jobId) > 0 then prev = entry[2] end
end
local sets = {{KEYS[4], "prioritized"}, {KEYS[5], "delayed"}, {KEYS[6], "completed"},
  {KEYS[7], "failed"}, {KEYS[8], "waiting-children"}}
for _, entry in ipairs(sets) do
  if rcall("ZREM", entry[1], jobId) > 0 then prev = entry[2] end
end
rcall("SREM", KEYS[11], jobId)
local deid = rcall("HGET", jobKey, "deid")
if deid then
  local deKey = prefix .. "de:" .. deid
  if rcall("GET", deKey) == jobId then rcall("DEL", deKey) end
end
deleteJobKeys(prefix, jobId)
local meta = readMeta(KEYS[10])
emit(KEYS[9], meta.maxEvents, "removed", "jobId", jobId, "prev", prev)
return 1
