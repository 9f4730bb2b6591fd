--[[
  Detach a child from its parent (BullMQ's removeChildDependency): the child is no longer
  a dependency, and a parent left with none pending goes to the end of wait (its priority
  and delay are not applied, as BullMQ's). The child keeps running on its own.

  KEYS[1] the child's job key

  Returns 0 detached, 1 it had no parent or was not a pending dependency (nothing changes),
  -1 the child does not exist, -5 its parent does not exist.
]]
local childKey = KEYS[1]
if rcall("EXISTS", childKey) == 0 then return -1 end
local f = rcall("HMGET", childKey, "parentKey", "parent")
if not (f[1] or f[2]) then return 1 end
local parent = parentOf(f[1], f[2])
if not parent then return 1 end
if rcall("EXISTS", parent.key) == 0 then return -5 end
if rcall("SISMEMBER", parent.key .. ":dependencies", childKey) == 0 then return 1 end
dropChild(childKey, parent)
rcall("HDEL", childKey, "parentKey", "parent")
return 0
