-- Write-tracking proxies and the undo journal of one session's Lua state.
-- Loaded once per state by src/script/journal.rs, before any game code runs;
-- see that file for the design. Every function here is Recess's own code:
-- none of it is reachable by a game except through the proxies' metatable and
-- the replaced base functions (next, rawget, rawset, rawlen, getmetatable,
-- setmetatable).

local real_setmetatable, real_getmetatable, force_setmetatable, null = ...
local guarded_setmetatable = setmetatable -- the sandbox's: refuses __gc
local next, type, rawget, rawset, rawlen, rawequal, getmetatable, select, error, tostring =
  next, type, rawget, rawset, rawlen, rawequal, getmetatable, select, error, tostring

-- proxy -> raw table, and raw table -> its proxy. Weak keys: an entry lives
-- as long as its key does, so a proxy lives as long as its raw table and
-- `state.a == state.a` holds across calls.
local P2R = real_setmetatable({}, { __mode = "k" })
local R2P = real_setmetatable({}, { __mode = "k" })

-- A proxy used as a key means the key stored as given if the table has it
-- (a table built during the call may hold proxies as keys), else its raw
-- table (what a write through a proxy stores).

-- Raw tables that got their proxy during the call in progress. A table whose
-- proxy is older existed before the call, so it cannot hold a proxy that no
-- journal entry accounts for (see `normalize`).
local NEW, new_count = {}, 0

-- The undo journal: triples (raw table, key, value before the call's first
-- write to it), in write order. `n` is the number of slots in use.
local J, n = {}, 0
-- The journal's key for "the metatable of this table".
local METATABLE = {}

local MT = { __metatable = false }

-- Lua's messages for assigning to a nil or NaN key, as this Lua words them.
local _, NIL_KEY = pcall(rawset, {}, nil, true)
local _, NAN_KEY = pcall(rawset, {}, 0 / 0, true)

local function wrap(raw)
  local p = R2P[raw]
  if p == nil then
    -- In this order, an error between two steps (memory) never leaves a
    -- proxy that P2R does not know, nor a new proxy not marked NEW.
    NEW[raw] = true
    new_count = new_count + 1
    p = real_setmetatable({}, MT)
    P2R[p] = raw
    R2P[raw] = p
  end
  return p
end

-- Drops the journal and the NEW marks. Allocates (only) before it changes
-- anything, so it cannot fail half-way.
local function clear()
  local fresh_j = n > 384 and {} or nil
  local fresh_new = new_count > 128 and {} or nil
  if fresh_j then
    J = fresh_j
  else
    for i = 1, n do J[i] = nil end
  end
  n = 0
  if fresh_new then
    NEW = fresh_new
  elseif new_count > 0 then
    for k in next, NEW do NEW[k] = nil end
  end
  new_count = 0
end

function MT.__index(p, k)
  local r = P2R[p]
  local v = r[k]
  if v == nil then
    local x = P2R[k]
    if x == nil then return nil end
    v = r[x]
  end
  -- A table seen before is returned without the `type` call, the
  -- costliest step here.
  local w = R2P[v]
  if w ~= nil then return w end
  if type(v) ~= "table" or P2R[v] ~= nil then return v end
  return wrap(v)
end

function MT.__newindex(p, k, v)
  -- Lua's own messages for these, blamed on the line that assigned.
  if k == nil then error(NIL_KEY, 2) end
  if k ~= k then error(NAN_KEY, 2) end
  local r = P2R[p]
  local x = P2R[k]
  if x ~= nil and rawget(r, k) == nil then k = x end
  x = P2R[v]
  if x ~= nil then v = x end
  local i = n
  -- A write to the slot the previous entry records needs no entry of its
  -- own (a counter bumped in a loop journals once).
  if not (rawequal(J[i - 2], r) and rawequal(J[i - 1], k)) then
    J[i + 1], J[i + 2], J[i + 3] = r, k, rawget(r, k)
    n = i + 3
  end
  r[k] = v
end

function MT.__len(p)
  return #P2R[p]
end

local function pnext(p, k)
  local r = P2R[p]
  local x = P2R[k]
  if x ~= nil and rawget(r, k) == nil then k = x end
  local k2, v = next(r, k)
  local w = R2P[v]
  if w ~= nil then
    v = w
  elseif type(v) == "table" and P2R[v] == nil then
    v = wrap(v)
  end
  if type(k2) == "table" and P2R[k2] == nil then k2 = wrap(k2) end
  return k2, v
end

function MT.__pairs(p)
  return pnext, p, nil
end

function MT.__tostring(p)
  return tostring(P2R[p])
end

-- Replacements for the base functions that see a table's raw contents or
-- its metatable. On a proxy they act on its raw table (wrapping what they
-- return, journaling what they change); on anything else they are the
-- originals. Argument errors are raised here, with Lua's wording, so that
-- they name the game's line rather than this file.

local function got(i, ...)
  if select("#", ...) < i then return "no value" end
  local v = select(i, ...)
  if v == null then return "light userdata" end
  return type(v)
end

local function bad(fname, i, msg)
  error("bad argument #" .. i .. " to '" .. fname .. "' (" .. msg .. ")", 3)
end

local function next_(...)
  local t, k = ...
  if P2R[t] ~= nil then return pnext(t, k) end
  if type(t) ~= "table" then bad("next", 1, "table expected, got " .. got(1, ...)) end
  return next(t, k)
end

local function rawget_(...)
  local t, k = ...
  local r = P2R[t]
  if r == nil and type(t) ~= "table" then
    bad("rawget", 1, "table expected, got " .. got(1, ...))
  end
  if select("#", ...) < 2 then bad("rawget", 2, "value expected") end
  if r == nil then return rawget(t, k) end
  local v = rawget(r, k)
  if v == nil then
    local x = P2R[k]
    if x ~= nil then v = rawget(r, x) end
  end
  if type(v) == "table" and P2R[v] == nil then v = wrap(v) end
  return v
end

local function rawset_(...)
  local t, k, v = ...
  local r = P2R[t]
  if r == nil and type(t) ~= "table" then
    bad("rawset", 1, "table expected, got " .. got(1, ...))
  end
  local count = select("#", ...)
  if count < 2 then bad("rawset", 2, "value expected") end
  if count < 3 then bad("rawset", 3, "value expected") end
  if r == nil then return rawset(t, k, v) end
  local x = P2R[k]
  if x ~= nil and rawget(r, k) == nil then k = x end
  x = P2R[v]
  if x ~= nil then v = x end
  if k ~= nil and k == k then -- otherwise rawset below raises Lua's error
    local i = n
    J[i + 1], J[i + 2], J[i + 3] = r, k, rawget(r, k)
    n = i + 3
  end
  rawset(r, k, v)
  return t
end

local function rawlen_(...)
  local t = ...
  local r = P2R[t]
  if r ~= nil then return rawlen(r) end
  local ty = type(t)
  if ty ~= "table" and ty ~= "string" then
    bad("rawlen", 1, "table or string expected, got " .. got(1, ...))
  end
  return rawlen(t)
end

local function getmetatable_(...)
  if select("#", ...) < 1 then bad("getmetatable", 1, "value expected") end
  local t = ...
  return getmetatable(P2R[t] or t)
end

local function setmetatable_(t, mt)
  local x = P2R[mt]
  if x ~= nil then mt = x end
  local r = P2R[t]
  if r == nil then return guarded_setmetatable(t, mt) end
  local i = n
  J[i + 1], J[i + 2], J[i + 3] = r, METATABLE, real_getmetatable(r)
  n = i + 3
  guarded_setmetatable(r, mt)
  return t
end

_ENV.next = next_
_ENV.rawget = rawget_
_ENV.rawset = rawset_
_ENV.rawlen = rawlen_
_ENV.getmetatable = getmetatable_
_ENV.setmetatable = setmetatable_

-- Replaces every proxy held by `x` (a raw table) and by the tables it holds
-- with its raw table, descending only into tables that may be new in this
-- call: a table whose proxy predates the call existed before it, and any
-- proxy written into it since went through __newindex (which unwraps) or is
-- found from that write's own journal entry.
local function normalize(x, seen)
  if seen[x] or (R2P[x] ~= nil and not NEW[x]) then return end
  seen[x] = true
  local rekey
  for k, v in next, x do
    local r = P2R[v]
    if r ~= nil then
      rawset(x, k, r)
    elseif type(v) == "table" then
      normalize(v, seen)
    end
    if P2R[k] ~= nil then
      rekey = rekey or {}
      rekey[#rekey + 1] = k
    end
  end
  if rekey then
    for i = 1, #rekey do
      local k = rekey[i]
      local v = rawget(x, k)
      rawset(x, k, nil)
      rawset(x, P2R[k], v)
    end
  end
end

-- A handler call: the state goes in as its proxy. A tail call, so the
-- handler's caller is the engine as before (error levels, positions).
local function enter(f, state, ...)
  if n > 0 or new_count > 0 then clear() end
  if type(state) == "table" then state = wrap(state) end
  return f(state, ...)
end

-- After a successful call: the state graph holds no proxy any more (written
-- values, and `new`, the table the handler returned, if any); the journal is
-- dropped. Returns `new` as a raw table. `root` is the state the call began with.
local function commit(new, root)
  local seen
  for i = 1, n, 3 do
    local t, k = J[i], J[i + 1]
    if not rawequal(k, METATABLE) then
      local v = rawget(t, k)
      if type(v) == "table" then
        local r = P2R[v]
        if r ~= nil then
          rawset(t, k, r)
        else
          seen = seen or {}
          normalize(v, seen)
        end
      end
    end
  end
  if type(new) == "table" then
    new = P2R[new] or new
    if not rawequal(new, root) then
      seen = seen or {}
      normalize(new, seen)
    end
  end
  clear()
  return new
end

-- After a failed or refused call: every journaled write undone, newest first.
local function rollback()
  for i = n - 2, 1, -3 do
    local t, k, old = J[i], J[i + 1], J[i + 2]
    if rawequal(k, METATABLE) then
      force_setmetatable(t, old)
    else
      rawset(t, k, old)
    end
  end
  clear()
end

-- `v` without proxies, for values that leave Lua (ctx arguments, logs):
-- `v` itself when it holds none, else a copy holding raw tables instead.
local function has_proxy(x, seen)
  if seen[x] then return false end
  seen[x] = true
  for k, v in next, x do
    if P2R[k] ~= nil or P2R[v] ~= nil then return true end
    if type(v) == "table" and has_proxy(v, seen) then return true end
  end
  return false
end

local function copy(x, seen)
  x = P2R[x] or x
  local c = seen[x]
  if c then return c end
  c = {}
  seen[x] = c
  for k, v in next, x do
    if type(k) == "table" then k = copy(k, seen) end
    if type(v) == "table" then v = copy(v, seen) end
    rawset(c, k, v)
  end
  local mt = real_getmetatable(x)
  if mt ~= nil then real_setmetatable(c, mt) end
  return c
end

local function plain(v)
  v = P2R[v] or v
  if type(v) ~= "table" or not has_proxy(v, {}) then return v end
  return copy(v, {})
end

return enter, commit, rollback, plain
