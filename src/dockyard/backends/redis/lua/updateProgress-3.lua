--[[
  Store a job's progress and emit `progress`.

  KEYS[1] job key   KEYS[2] events   KEYS[3] meta

  ARGV[1] job id    ARGV[2] progress (JSON text)

  Returns 0, or -1 when the job does not exist.
]]
if rcall("EXISTS", KEYS[1]) == 0 then return -1 end
local meta = readMeta(KEYS[3])
rcall("HSET", KEYS[1], "progress", ARGV[2])
emit(KEYS[2], meta.maxEvents, "progress", "jobId", ARGV[1], "data", ARGV[2])
return 0
