--[[
  Remove a job scheduler (BullMQ's removeJobScheduler data model).

  KEYS[1] repeat (schedulers zset)
  KEYS[2] delayed
  KEYS[3] events

  ARGV[1] job key prefix "<P>:<N>:"
  ARGV[2] scheduler id

  Its current iteration is deleted if it is still delayed (event `removed`, prev
  `delayed`); one already ready or running is left to run once (its start finds no
  scheduler, so it makes no next iteration).

  Returns 1 when the scheduler existed (zset member or hash), 0 when it did not.
]]
local prefix, sid = ARGV[1], ARGV[2]
local currentId = currentIteration(KEYS[1], sid)
if currentId and rcall("ZREM", KEYS[2], currentId) == 1 then
  deleteJobKeys(prefix, currentId, false)
  local meta = readMeta(prefix .. "meta")
  emit(KEYS[3], meta.maxEvents, "removed", "jobId", currentId, "prev", "delayed")
end
local removed = rcall("ZREM", KEYS[1], sid) + rcall("DEL", KEYS[1] .. ":" .. sid)
if removed > 0 then return 1 end
return 0
