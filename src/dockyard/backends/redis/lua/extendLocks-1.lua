--[[
  Renew the locks of several jobs of one worker in one call (compare-and-set on the token).

  KEYS[1] stalled

  ARGV[1] job key prefix "<P>:<N>:"
  ARGV[2] lock duration (ms)
  ARGV[3..] pairs: job id, token

  Returns the ids whose lock was missing or held by another token (those jobs are lost).
]]
local prefix, lockMs = ARGV[1], ARGV[2]
local lost = {}
for i = 3, #ARGV, 2 do
  local jobId, token = ARGV[i], ARGV[i + 1]
  local lockKey = prefix .. jobId .. ":lock"
  if rcall("GET", lockKey) == token then
    rcall("SET", lockKey, token, "PX", lockMs)
    rcall("SREM", KEYS[1], jobId)
  else
    lost[#lost + 1] = jobId
  end
end
return lost
