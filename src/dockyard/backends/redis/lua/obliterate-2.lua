--[[
  Delete a whole queue, jobs and keys, in batches (Queue.obliterate). The queue must be
  paused, and have no active jobs unless forced.

  KEYS[1] meta   KEYS[2] events

  ARGV[1] queue key prefix "<P>:<N>:"   ARGV[2] jobs per call   ARGV[3] force "1" | "0"

  Returns 0 done, 1 call again (more jobs remain), -1 not paused, -2 active jobs.
]]
local prefix, batch, force = ARGV[1], tonumber(ARGV[2]), ARGV[3] == "1"
if rcall("HEXISTS", KEYS[1], "paused") == 0 then return -1 end
local active = prefix .. "active"
if not force and rcall("LLEN", active) > 0 then return -2 end
local left = batch
local function dropIds(ids)
  for _, jobId in ipairs(ids) do
    local deid = rcall("HGET", prefix .. jobId, "deid")
    if deid then rcall("DEL", prefix .. "de:" .. deid) end
    deleteJobKeys(prefix, jobId)
    rcall("DEL", prefix .. jobId .. ":lock")
  end
  left = left - #ids
end
for _, name in ipairs({"active", "wait", "paused"}) do
  if left <= 0 then return 1 end
  local key = prefix .. name
  local ids = rcall("LRANGE", key, 0, left - 1)
  dropIds(ids)
  if #ids > 0 then rcall("LTRIM", key, #ids, -1) end
  if rcall("LLEN", key) > 0 then return 1 end
end
for _, name in ipairs({"prioritized", "delayed", "completed", "failed", "waiting-children"}) do
  if left <= 0 then return 1 end
  local key = prefix .. name
  local ids = rcall("ZRANGE", key, 0, left - 1)
  dropIds(ids)
  if #ids > 0 then rcall("ZREM", key, unpack(ids)) end
  if rcall("ZCARD", key) > 0 then return 1 end
end
rcall("DEL", KEYS[1], KEYS[2], prefix .. "stalled", prefix .. "stalled-check", prefix .. "id",
  prefix .. "pc", prefix .. "marker", prefix .. "limiter", prefix .. "metrics:completed",
  prefix .. "metrics:completed:data", prefix .. "metrics:failed",
  prefix .. "metrics:failed:data", prefix .. "repeat", prefix .. "priority", prefix .. "delay")
return 0
