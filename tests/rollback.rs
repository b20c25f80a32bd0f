//! Rollback of failed and refused handler calls, over real sessions.
//!
//! The game below keeps its test data in `state.data`. Action `run` applies
//! one mutation to it, then fails one way (or not at all). After every failed
//! or refused call the state must be what the last successful call saved:
//! the same JSON, and the tables a restart would read back from it (the
//! `shape` of the state: a table that was in two places comes back as two,
//! lists carry the JSON list marker, as docs/lua-api.md §5 and §7 say). After
//! a successful call the state must hold exactly what the same mutation
//! makes of a plain Lua copy of it, and serialize to the same JSON.

mod common;

use common::TestServer;
use serde_json::{Value, json};

const GAME: &str = r##"
-- Canonical text of a value: keys sorted, each table named by its address
-- (tostring) so that identities and aliasing show.
local function dump(v, seen, out, addresses)
  if type(v) ~= "table" then
    out[#out + 1] = type(v) == "string" and ("%q"):format(v) or tostring(v)
    return
  end
  out[#out + 1] = addresses and tostring(v) or "table"
  if seen[v] then out[#out + 1] = "(again)" return end
  seen[v] = true
  local mt = getmetatable(v)
  if mt ~= nil then out[#out + 1] = addresses and ("<" .. tostring(mt) .. ">") or "<mt>" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return type(a) .. tostring(a) < type(b) .. tostring(b) end)
  out[#out + 1] = "{"
  for _, k in ipairs(keys) do
    dump(k, seen, out, addresses)
    out[#out + 1] = "="
    dump(v[k], seen, out, addresses)
    out[#out + 1] = ","
  end
  out[#out + 1] = "}"
end

local function fingerprint(v) local out = {} dump(v, {}, out, true) return table.concat(out) end
local function shape(v) local out = {} dump(v, {}, out, false) return table.concat(out) end

-- A plain copy (aliasing kept): what the same code does to plain tables is
-- what it must do to the state.
local function copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local c = {}
  seen[v] = c
  for k, x in pairs(v) do c[copy(k, seen)] = copy(x, seen) end
  local mt = getmetatable(v)
  -- (a list from JSON has a protected metatable: getmetatable gives false)
  if type(mt) == "table" then setmetatable(c, mt) end
  return c
end

local function initial()
  local shared = { s = 1 }
  return {
    n = 1,
    nested = { deep = { x = 1, list = { 1, 2, 3 } } },
    list = { "b", "c", "a" },
    map = { k1 = "v1", k2 = "v2" },
    empty = {},
    shared = shared,
    alias = shared,
  }
end

local DEFAULT_MT = { __index = function() return "default" end }

-- Each changes `d` (state.data) and may return a new `data` table.
local MUTATIONS = {
  nested = function(d) d.nested.deep.x = 99; d.nested.deep.list[2] = "two"; d.n = d.n + 1 end,
  new_keys = function(d) d.fresh = { a = { b = 1 } }; d.map.k3 = "v3"; d.list[#d.list + 1] = "d" end,
  delete = function(d) d.map.k1 = nil; d.nested = nil; d.list[#d.list] = nil end,
  insert = function(d) table.insert(d.list, "d"); table.insert(d.list, 1, "z") end,
  remove = function(d) table.remove(d.list, 1); table.remove(d.list) end,
  sort = function(d) table.sort(d.list) end,
  replace_sub = function(d)
    local old = d.nested
    d.nested = { replaced = true, old = old }
    d.map = d.list
    old.deep.x = -1
  end,
  alias = function(d) d.alias.touched = true; d.shared.more = { d.nested } end,
  move = function(d) d.moved = d.nested.deep; d.nested.deep = nil; d.moved.x = 5 end,
  wrapped = function(d) d.wrapper = { inner = d.map, list = { d.nested.deep } }; d.wrapper.inner.k9 = 9 end,
  raw = function(d) rawset(d.map, "raw", true); rawset(d, "n", 100); d.map[rawget(d, "n")] = nil end,
  metatable = function(d) setmetatable(d.map, DEFAULT_MT) end,
  many = function(d)
    for i = 1, 2000 do d.list[#d.list + 1] = i end
    for k in pairs(d.map) do d.map[k] = nil end
  end,
  replace_state = function(d) d.n = 7; return { n = -1, kept = d.nested, list = d.list } end,
}

local FAILURES = {
  throw = function() error("failing on purpose") end,
  budget = function() while true do end end,
  memory = function() local t = {} while true do t[#t + 1] = ("x"):rep(1e5) end end,
  write_budget = function(d) while true do d.n = (d.n or 0) + 1 end end,
  write_memory = function(d) d.list = d.list or {} while true do d.list[#d.list + 1] = ("x"):rep(1000) end end,
}

-- Behaviour that must be the same on the state as on plain tables: each
-- check runs on the state, then on a plain copy taken just before.
local mt = {}
local CHECKS = {
  function(d) return #d.list, rawlen(d.list), #d.empty, rawlen(d.nested.deep.list) end,
  function(d) return select("#", table.unpack(d.list)), table.unpack(d.list) end,
  function(d) return table.concat(d.list, ","), table.concat(d.nested.deep.list, "-", 2, 3) end,
  function(d) local r = {} for i, v in ipairs(d.list) do r[i] = v end return r end,
  function(d) local r = {} for k, v in pairs(d.map) do r[#r + 1] = k .. "=" .. v end table.sort(r) return r end,
  function(d) local r = {} for k, v in next, d.map do r[#r + 1] = k end table.sort(r) return r end,
  function(d) return next(d.empty) == nil, next(d.map) ~= nil, next(d.list) end,
  function(d) return rawget(d.map, "k1"), rawget(d.nested, "deep").x, rawget(d.empty, "nope") end,
  function(d) return rawequal(d.nested, d.nested), rawequal(d.shared, d.alias), rawequal(d.nested, d.map) end,
  function(d) return d.nested == d.nested, d.shared == d.alias, d.nested.deep == d.nested.deep, d.map ~= d.list end,
  function(d) return tostring(d.shared) == tostring(d.alias), type(d.nested) end,
  function(d) table.sort(d.list) return d.list end,
  function(d) table.sort(d.list, function(a, b) return a > b end) return d.list end,
  function(d) table.insert(d.list, 2, "q") table.insert(d.list, "r") return d.list end,
  function(d) return table.remove(d.list, 1), table.remove(d.list), d.list end,
  function(d) table.move(d.list, 1, 2, 3) return d.list end,
  function(d) table.move(d.list, 1, #d.list, 1, d.map) return d.map end,
  function(d) return rawset(d.map, "r", 1) == d.map, d.map end,
  function(d) d.alias.x = 1 return d.shared.x end,
  function(d) local t = d.nested; d.other = t; t.y = 2; return d.other.y, d.other == d.nested end,
  function(d) d.keep = d.nested.deep; d.nested.deep = nil; d.keep.x = 3; return d.keep, d.nested end,
  function(d) return getmetatable(d.map) == nil, setmetatable(d.map, mt) == d.map, getmetatable(d.map) == mt end,
  function(d) for k in pairs(d.map) do d.map[k] = nil end return next(d.map), d.map end,
  function(d) d.list[#d.list + 1] = d.list; return #d.list, d.list[#d.list] == d.list end,
  function(d) return pcall(function() return next(nil) end) end,
  function(d) return pcall(function() return rawget(d.map) end) end,
  function(d) return pcall(function() return rawlen(5) end) end,
  function(d) return pcall(function() d.map[nil] = 1 end) end,
  function(d) return pcall(function() return d.nested.nothing.x end) end,
  function(d) return pcall(function() return d.map + 1 end) end,
  function(d) return pcall(function() return #d.n end) end,
}

local function run_checks(d)
  local failed = {}
  for i, check in ipairs(CHECKS) do
    local plain = copy(d)
    local on_state = shape(table.pack(check(d)))
    local on_plain = shape(table.pack(check(plain)))
    local after_state, after_plain = shape(d), shape(plain)
    if on_state ~= on_plain or after_state ~= after_plain then
      failed[#failed + 1] = "check " .. i .. ": " .. on_state .. " ~= " .. on_plain
        .. " / " .. after_state .. " ~= " .. after_plain
    end
  end
  return failed
end

return {
  title = "Rollback probes",
  init = function() return { data = initial(), tick = 0, runs = 0 } end,
  action = function(state, ctx, player, name, data)
    if name == "tick" then state.tick = state.tick + 1 return end
    if name == "reset" then state.data = initial() state.tick = state.tick + 1 return end
    if name == "fingerprint" then
      ctx.broadcast("fingerprint", { fp = fingerprint(state.data) })
      return
    end
    if name == "checks" then
      -- Reported as the error, which also rolls back what the checks changed.
      local failed = run_checks(state.data)
      if #failed > 0 then error(table.concat(failed, "; ")) end
      error(#CHECKS .. " checks passed")
    end
    -- run: one mutation, then one failure (or none).
    state.runs = state.runs + 1
    local expected = copy(state.data)
    local new_data = MUTATIONS[data.mutation](state.data)
    local expected_new = MUTATIONS[data.mutation](expected)
    if data.fail == "refuse" then return false, "refused on purpose" end
    if data.fail ~= "none" then FAILURES[data.fail](state.data) end
    state.expected = expected_new or expected
    if new_data then
      return { data = new_data, expected = state.expected, tick = state.tick, runs = state.runs }
    end
  end,
  view = function(state)
    return {
      tick = state.tick,
      runs = state.runs,
      fp = fingerprint(state.data),
      shape = shape(state.data),
      expected_shape = state.expected and shape(state.expected) or nil,
      json = state.data,
      expected_json = state.expected,
    }
  end,
}
"##;

/// The initial state as a rollback (or a restart) rebuilds it from its JSON:
/// `shared` and `alias` are two tables now, the lists are lists from JSON.
const SAVED_SHAPE: &str = r#"table{"alias"=table{"s"=1,},"empty"=table{},"list"=table<mt>{1="b",2="c",3="a",},"map"=table{"k1"="v1","k2"="v2",},"n"=1,"nested"=table{"deep"=table{"list"=table<mt>{1=1,2=2,3=3,},"x"=1,},},"shared"=table{"s"=1,},}"#;

const MUTATIONS: [&str; 14] = [
    "nested",
    "new_keys",
    "delete",
    "insert",
    "remove",
    "sort",
    "replace_sub",
    "alias",
    "move",
    "wrapped",
    "raw",
    "metatable",
    "many",
    "replace_state",
];

/// (failure, what its error message says).
const FAILURES: [(&str, &str); 6] = [
    ("throw", "rollback.lua:"),
    ("budget", "CPU budget"),
    ("memory", "memory"),
    ("write_budget", "CPU budget"),
    ("write_memory", "memory"),
    ("refuse", "refused on purpose"),
];

async fn server() -> TestServer {
    let dir = tempfile::tempdir().expect("temp games dir");
    std::fs::write(dir.path().join("rollback.lua"), GAME).expect("write game");
    // Smaller budgets than the defaults keep the runaway probes quick.
    TestServer::start_in(dir, |c| {
        c.cpu_budget_m = 2;
        // The runaway probes stop at the instruction count; the wall-clock
        // limit is kept far from it, so that a loaded machine does not stop
        // the view of `many` (about 1.5 M instructions) instead.
        c.cpu_budget_ms = 5_000;
        c.session_memory_mb = 4;
        // One socket sends ~170 actions back to back, far above a person's
        // frame rate.
        c.frame_rate = 10_000;
        c.frame_burst = 10_000;
    })
    .await
}

/// Sends `tick` and returns the view once it shows that tick.
async fn view_after_tick(host: &mut common::Client, session: &str, tick: &mut u64) -> Value {
    let ack = host.act(session, "tick", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    *tick += 1;
    let t = *tick;
    host.wait_view(session, |v| v["tick"] == t).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_refused_calls_leave_the_state_as_it_was_saved() {
    let server = server().await;
    let mut host = server.client().await;
    let w = host.host("rollback", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let before = w["view"].clone();
    assert!(
        before["shape"].as_str().unwrap().contains("(again)"),
        "the shape shows aliasing: {before}"
    );
    let mut tick = 0;

    for mutation in MUTATIONS {
        for (fail, words) in FAILURES {
            let r = host
                .act(&session, "run", json!({"mutation": mutation, "fail": fail}))
                .await;
            assert_eq!(r["type"], "error", "{mutation}/{fail}: {r}");
            let code = if fail == "refuse" {
                "refused"
            } else {
                "script_error"
            };
            assert_eq!(r["code"], code, "{mutation}/{fail}: {r}");
            let message = r["message"].as_str().unwrap();
            assert!(message.contains(words), "{mutation}/{fail}: {message}");

            let view = view_after_tick(&mut host, &session, &mut tick).await;
            assert_eq!(
                view["shape"], SAVED_SHAPE,
                "{mutation}/{fail}: the state changed"
            );
            assert_eq!(view["json"], before["json"], "{mutation}/{fail}");
            assert_eq!(view["runs"], before["runs"], "{mutation}/{fail}");
        }
    }
    assert!(!host.log.iter().any(|v| v["type"] == "event"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_calls_keep_their_writes_and_serialize_them() {
    let server = server().await;
    for mutation in MUTATIONS {
        let mut host = server.client().await;
        let w = host.host("rollback", json!({})).await;
        let session = w["session"].as_str().unwrap().to_owned();
        let r = host
            .act(
                &session,
                "run",
                json!({"mutation": mutation, "fail": "none"}),
            )
            .await;
        assert_eq!(r["type"], "ack", "{mutation}: {r}");
        let view = host.wait_view(&session, |v| v["runs"] == 1).await;
        assert_ne!(
            view["shape"], w["view"]["shape"],
            "{mutation}: nothing changed"
        );
        assert_eq!(view["shape"], view["expected_shape"], "{mutation}");
        assert_eq!(view["json"], view["expected_json"], "{mutation}");

        // A failing call after it rolls back to the new state, not the old one.
        let mut tick = view["tick"].as_u64().unwrap();
        let mut rebuilt: Option<String> = None;
        for fail in ["throw", "refuse", "write_memory"] {
            let r = host
                .act(&session, "run", json!({"mutation": "nested", "fail": fail}))
                .await;
            assert_eq!(r["type"], "error", "{mutation}/{fail}: {r}");
            let after = view_after_tick(&mut host, &session, &mut tick).await;
            assert_eq!(after["json"], view["json"], "{mutation} then {fail}");
            // Each rollback rebuilds the same tables from the same JSON.
            let shape = after["shape"].as_str().unwrap().to_owned();
            assert!(
                !shape.contains("(again)"),
                "{mutation} then {fail}: {shape}"
            );
            match &rebuilt {
                None => rebuilt = Some(shape),
                Some(first) => assert_eq!(&shape, first, "{mutation} then {fail}"),
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_state_as_plain_tables() {
    let server = server().await;
    let mut host = server.client().await;
    let w = host.host("rollback", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();

    // Iteration, lengths, identities and addresses as the view sees them.
    let r = host.act(&session, "fingerprint", json!({})).await;
    assert_eq!(r["type"], "ack", "{r}");
    let fp = host.recv_until(|v| v["name"] == "fingerprint").await;
    assert_eq!(fp["data"]["fp"], w["view"]["fp"]);

    // The base functions and the table library, state against plain copy;
    // then the call fails and everything the checks changed is undone.
    let r = host.act(&session, "checks", json!({})).await;
    assert_eq!(r["type"], "error", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .ends_with(": 31 checks passed"),
        "{}",
        r["message"]
    );
    let mut tick = 0;
    let view = view_after_tick(&mut host, &session, &mut tick).await;
    assert_eq!(view["shape"], SAVED_SHAPE);
    assert_eq!(view["json"], w["view"]["json"]);
    server.stop().await;
}
