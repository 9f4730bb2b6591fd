--[[
  Append a line to a job's log, keeping only the newest lines when asked.

  KEYS[1] job key   KEYS[2] job logs key

  ARGV[1] line      ARGV[2] lines to keep ("" = all)

  Returns the number of lines kept, or -1 when the job does not exist.
]]
if rcall("EXISTS", KEYS[1]) == 0 then return -1 end
local count = rcall("RPUSH", KEYS[2], ARGV[1])
local keep = tonumber(ARGV[2])
if keep then
  if keep == 0 then
    rcall("DEL", KEYS[2])
    return 0
  end
  rcall("LTRIM", KEYS[2], -keep, -1)
  if count > keep then count = keep end
end
return count
