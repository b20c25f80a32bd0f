//! The Lua scripts Redis runs for the cluster: each reads and writes its
//! keys atomically.

pub(super) const COMMIT: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code, owned (of this instance), members,
--       fields (of the state), report
-- ARGV: instance, (unused), snapshot ('' = keep), window, channel, payload ('' = none),
--       full (1/0), session, code, n, messages..., m, (member, view)...,
--       p, (member, record)..., k, removed..., f, (field, text)...,
--       g, fields removed..., report ('' = keep)
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then
  if owner then return 0 end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[7], ARGV[8])
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[3], KEYS[4], KEYS[8], KEYS[9])
  redis.call('SET', KEYS[6], ARGV[8])
end
redis.call('SADD', KEYS[5], ARGV[8])
local i = 10
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('RPUSH', KEYS[3], ARGV[i]); i = i + 1 end
if n > 0 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1) end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
local p = tonumber(ARGV[i]); i = i + 1
for _ = 1, p do redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]); i = i + 2 end
local k = tonumber(ARGV[i]); i = i + 1
for _ = 1, k do
  redis.call('HDEL', KEYS[4], ARGV[i]); redis.call('HDEL', KEYS[8], ARGV[i]); i = i + 1
end
local f = tonumber(ARGV[i]); i = i + 1
for _ = 1, f do redis.call('HSET', KEYS[9], ARGV[i], ARGV[i + 1]); i = i + 2 end
local g = tonumber(ARGV[i]); i = i + 1
for _ = 1, g do redis.call('HDEL', KEYS[9], ARGV[i]); i = i + 1 end
if ARGV[i] ~= '' then redis.call('SET', KEYS[10], ARGV[i]) end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
"#;

pub(super) const CLAIM: &str = r#"
-- KEYS: owner, snap, orphans, owned (of this instance)
-- ARGV: instance, session, mode: 'create' (nobody may own it), 'restore' (a
-- stored copy of ours: claim unless a live instance owns it), 'adopt' (a
-- takeover: as restore, and Redis must hold the session).
-- Returns 1 claimed (or already ours), 0 a live instance owns it, -1 gone.
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return 1 end
if ARGV[3] == 'adopt' and redis.call('EXISTS', KEYS[2]) == 0 then
  if owner then redis.call('SREM', 'recess:owned:' .. owner, ARGV[2]) end
  redis.call('SREM', KEYS[3], ARGV[2])
  return -1
end
if owner then
  if ARGV[3] == 'create' then return 0 end
  if redis.call('EXISTS', 'recess:alive:' .. owner) == 1 then return 0 end
  redis.call('SREM', 'recess:owned:' .. owner, ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"#;

pub(super) const OWNER: &str = r#"
-- KEYS: owner. Returns the owning instance if its heartbeat lives, else nil.
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', 'recess:alive:' .. owner) == 1 then return owner end
return false
"#;

pub(super) const HEARTBEAT: &str = r#"
-- KEYS: alive (of this instance), instances; ARGV: instance, ttl_ms.
-- Returns 1 renewed, 2 (re)started: the heartbeat had lapsed or never ran.
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 1 then return 1 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 2
"#;

pub(super) const RELEASE: &str = r#"
-- KEYS: owner, orphans, owned (of this instance); ARGV: instance, session
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

pub(super) const REMOVE: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code, orphans, members, fields, report
-- ARGV: instance, session
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[8], KEYS[9], KEYS[10])
if redis.call('GET', KEYS[6]) == ARGV[2] then redis.call('DEL', KEYS[6]) end
redis.call('SREM', KEYS[5], ARGV[2])
redis.call('SREM', KEYS[7], ARGV[2])
if owner then redis.call('SREM', 'recess:owned:' .. owner, ARGV[2]) end
return 1
"#;

pub(super) const FORGET_INSTANCE: &str = r#"
-- KEYS: alive, owned (of a dead instance), instances; ARGV: instance.
-- Drops a dead instance once it owns nothing.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"#;
