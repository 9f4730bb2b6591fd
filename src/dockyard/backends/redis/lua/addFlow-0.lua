--[[
  Add a whole flow (a tree of parent and child jobs, in queues of one prefix) at once.

  KEYS: none.

  ARGV[1] prefix "<P>"   ARGV[2] now (ms)
  Then 14 fields per node, parents before their descendants:
    queue name, job id, name, data (JSON), opts (JSON), timestamp (ms), delay (ms),
    priority, lifo "1"|"0", has children "1"|"0", parent key "<P>:<N>:<pid>" ("" = none),
    parent queue key "<P>:<N>", parent id, parent JSON.

  Returns {0}, or {code, node index (0-based)}: -5 the parent of that node does not exist,
  -7 that node's id exists as the child of another (existing) parent.

  One script rather than BullMQ's MULTI of per-node adds: every check runs before the
  first write, so a refused flow writes nothing. The writes are BullMQ's (A.3): a node
  with children is stored and put in `waiting-children` (events `added`, `waiting-children`);
  a leaf is enqueued as addJob does; a node with a parent stores `parentKey` and `parent`
  (JSON: id, queueKey, and its failure flag only when set) and is added to the parent's
  `:dependencies`. Keys are built from the prefix, not declared (a flow spans queues, as
  BullMQ's do): one server only.

  A node whose job id exists already is a duplicate (BullMQ 6.7): with no parent, its own
  parent, or a parent that no longer exists, it is attached to the new parent (already
  completed: its return value is recorded in the parent's `:processed`; else it becomes a
  pending dependency) and `duplicated` is emitted; nothing else of it changes. Parents are
  released at the end when none of their children is pending (6.7's deferred release).
]]
local P, nowText = ARGV[1], ARGV[2]
local now = tonumber(nowText)
local W = 14
local count = (#ARGV - 2) / W

local function field(i, f) return ARGV[2 + i * W + f] end

-- Checks first: nothing is written unless every node can be added.
local planned = {}
for i = 0, count - 1 do
  local jobKey = P .. ":" .. field(i, 1) .. ":" .. field(i, 2)
  local parentKey = field(i, 11)
  -- The parent first, as BullMQ's add prelude: a duplicate needs an existing parent too.
  if parentKey ~= "" and not planned[parentKey] and rcall("EXISTS", parentKey) == 0 then
    return {-5, i}
  end
  if rcall("EXISTS", jobKey) == 1 then
    local current = rcall("HGET", jobKey, "parentKey")
    if parentKey ~= "" and current and current ~= parentKey
        and rcall("EXISTS", current) == 1 then
      return {-7, i}
    end
  end
  planned[jobKey] = true
end

local metas = {}
local parents = {}
for i = 0, count - 1 do
  local qk = P .. ":" .. field(i, 1)
  local meta = metas[qk]
  if not meta then
    meta = readMeta(qk .. ":meta")
    metas[qk] = meta
  end
  rcall("INCR", qk .. ":id") -- as every BullMQ add, though flows choose their own ids
  local jobId = field(i, 2)
  local jobKey = qk .. ":" .. jobId
  local parentKey, parentQueue, parentId, parentJson =
    field(i, 11), field(i, 12), field(i, 13), field(i, 14)
  if parentKey ~= "" then
    parents[parentKey] = {key = parentKey, queue = parentQueue, id = parentId}
  end
  if rcall("EXISTS", jobKey) == 1 then
    if parentKey ~= "" then
      if rcall("ZSCORE", qk .. ":completed", jobId) then
        local value = rcall("HGET", jobKey, "returnvalue") or "null"
        rcall("HSET", parentKey .. ":processed", jobKey, value)
      else
        rcall("SADD", parentKey .. ":dependencies", jobKey)
      end
      rcall("HSET", jobKey, "parentKey", parentKey, "parent", parentJson)
    end
    emit(qk .. ":events", meta.maxEvents, "duplicated", "jobId", jobId)
  else
    local name, timestampText, delayText = field(i, 3), field(i, 6), field(i, 7)
    rcall("HSET", jobKey, "name", name, "data", field(i, 4), "opts", field(i, 5),
      "timestamp", timestampText, "delay", delayText, "priority", field(i, 8))
    if parentKey ~= "" then
      rcall("HSET", jobKey, "parentKey", parentKey, "parent", parentJson)
    end
    emit(qk .. ":events", meta.maxEvents, "added", "jobId", jobId, "name", name)
    local delay = tonumber(delayText)
    if field(i, 10) == "1" then
      -- Its delay and priority are applied when its children are done (releaseParent).
      rcall("ZADD", qk .. ":waiting-children", timestampText, jobId)
      emit(qk .. ":events", meta.maxEvents, "waiting-children", "jobId", jobId)
    elseif delay > 0 then
      local due = tonumber(timestampText) + delay
      rcall("ZADD", qk .. ":delayed", delayedScore(qk .. ":delayed", due), jobId)
      emit(qk .. ":events", meta.maxEvents, "delayed", "jobId", jobId, "delay", due)
      if not meta.paused then addDelayMarker(qk .. ":marker", qk .. ":delayed") end
    else
      enqueueReady(readyList(meta, qk .. ":wait", qk .. ":paused"), qk .. ":prioritized",
        qk .. ":pc", jobId, tonumber(field(i, 8)), field(i, 9) == "1")
      if not pausedOrMaxed(meta, qk .. ":active") then addReadyMarker(qk .. ":marker") end
      emit(qk .. ":events", meta.maxEvents, "waiting", "jobId", jobId)
    end
    if parentKey ~= "" then rcall("SADD", parentKey .. ":dependencies", jobKey) end
  end
end

-- A parent whose children were all done already (duplicates) runs now.
for _, parent in pairs(parents) do releaseParentIfReady(parent, now) end
return {0}
