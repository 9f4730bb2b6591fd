--[[
  Replace a job's data (Job.update_data); no event, as BullMQ.

  KEYS[1] the job's hash

  ARGV[1] data (JSON text)

  Returns 0, or -1 job missing.
]]
if rcall("EXISTS", KEYS[1]) == 0 then return -1 end
rcall("HSET", KEYS[1], "data", ARGV[1])
return 0
