//! The sandbox's limits over real sessions: nesting, unsaveable state, error
//! values, the CPU time of C library calls, and the size of what a handler
//! emits. Each refusal names the limit, the session keeps working, and
//! nothing of the refused call remains.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Process, TestServer};
use serde_json::{Value, json};

const LIMITS: &str = r#"
local function nest(levels)
  local t = {}
  for _ = 2, levels do t = { t } end
  return t
end
-- 300 sorts of 200 000 numbers: ~10 s of C work with no VM instructions
-- to count, unless library calls are charged.
local function sort_forever()
  local t = {}
  for i = 1, 200000 do t[i] = (i * 7919) % 200003 end
  for _ = 1, 300 do table.sort(t) end
end
return {
  title = "Limits",
  init = function() return { count = 0 } end,
  action = function(state, ctx, player, name, data)
    if name == "bump" then
      state.count = state.count + 1
      return
    end
    state.count = state.count + 1000   -- must be rolled back
    ctx.broadcast("should_not_arrive", {})
    if name == "keep" then state.kept = data
    elseif name == "keep_function" then state.f = function() end
    elseif name == "keep_cycle" then state.me = state
    elseif name == "keep_deep" then state.deep = nest(70)
    elseif name == "sort_loop" then sort_forever()
    elseif name == "broadcast_big" then
      local s = ("x"):rep(5e6)
      for _ = 1, 40 do ctx.broadcast("big", { s = s }) end
    elseif name == "send_big" then ctx.send(player.id, "big", ("x"):rep(70000))
    elseif name == "broadcast_many" then
      -- 20 messages of 60 kB: each within its limit, together over the call's.
      local s = ("x"):rep(60000)
      for _ = 1, 20 do ctx.broadcast("many", s) end
    elseif name == "timer_big" then ctx.after(1000, "t", ("x"):rep(70000))
    elseif name == "error_table" then error({ code = 7 })
    elseif name == "error_empty" then error({})
    end
  end,
  event = function(state, ctx, name)
    if name == "slow_view" then state.slow_view = true else state.slow_view = nil end
    if name == "big_view" then state.big_view = true else state.big_view = nil end
  end,
  view = function(state)
    if state.slow_view then sort_forever() end
    if state.big_view then return { count = state.count, big = ("x"):rep(5e6) } end
    return { count = state.count }
  end,
}
"#;

/// A frame's `data` nested `levels` deep, as raw text.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

async fn host(server: &TestServer, game: &str) -> (Client, String) {
    let mut host = server.client().await;
    let w = host.host(game, json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    (host, session)
}

/// Bumps the counter and waits for the view to show `count`.
async fn bump(c: &mut Client, session: &str, count: u64) {
    let ack = c.act(session, "bump", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    c.wait_view(session, |v| v["count"] == count).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_nested_deeper_than_the_limit_are_refused_at_parse() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    let (mut host, session) = host(&server, "limits").await;
    for levels in [65, 110] {
        host.send_text(format!(
            r#"{{"type":"action","session":"{session}","name":"keep","data":{},"ref":1}}"#,
            nested(levels)
        ))
        .await;
        let e = host.recv_type("error").await;
        assert_eq!(e["code"], "bad_frame", "{levels}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("deeper than 64"),
            "{e}"
        );
    }
    // Within the limit: accepted and kept (the state is one level more).
    let data: Value = serde_json::from_str(&nested(63)).unwrap();
    assert_eq!(host.act(&session, "keep", data).await["type"], "ack");
    bump(&mut host, &session, 1001).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_cannot_be_saved_is_refused_and_the_session_stays_saveable() {
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("limits.lua"), LIMITS).unwrap();
    let data = tempfile::tempdir().unwrap();
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    let w = host.host("limits", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();

    let deep64: Value = serde_json::from_str(&nested(64)).unwrap();
    let cases = [
        ("keep_function", json!({}), "a function"),
        ("keep_cycle", json!({}), "does a table contain itself"),
        ("keep_deep", json!({}), "nested more than 64"),
        // Accepted as a frame, but one level too deep once inside the state.
        ("keep", deep64, "nested more than 64"),
    ];
    for (i, (name, data, words)) in cases.into_iter().enumerate() {
        let e = host.act(&session, name, data).await;
        assert_eq!(e["code"], "script_error", "{name}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.starts_with("limits.lua: action left a state that cannot be saved"),
            "{name}: {message}"
        );
        assert!(message.contains(words), "{name}: {message}");
        bump(&mut host, &session, i as u64 + 1).await;
    }
    assert!(!host.log.iter().any(|v| v["name"] == "should_not_arrive"));
    node.kill().await;

    // The acknowledged bumps were saved: the session comes back with them.
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    host.send(json!({"type": "resume", "token": token, "last_seq": 0}))
        .await;
    let w = host.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    // The replay from seq 0 rebuilds the view, as stored.
    host.wait_view(&session, |v| v["count"] == 4).await;
    bump(&mut host, &session, 5).await;
    node.kill().await;
}

/// Pings on `c` until `done` resolves; returns its output and the slowest pong.
async fn ping_until<T>(c: &mut Client, done: tokio::task::JoinHandle<T>) -> (T, Duration) {
    let mut slowest = Duration::ZERO;
    while !done.is_finished() {
        let sent = Instant::now();
        c.send(json!({"type": "ping", "ref": 1})).await;
        c.recv_type("pong").await;
        slowest = slowest.max(sent.elapsed());
        // Below the frame rate limit (20 a second).
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    (done.await.unwrap(), slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_work_is_stopped_by_the_time_budget_and_the_node_stays_responsive() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    // Two sessions at once, as many as the node has worker threads.
    let mut sessions = Vec::new();
    for _ in 0..2 {
        sessions.push(host(&server, "limits").await);
    }
    let mut bystander = server.client().await;
    let started = Instant::now();
    let runs: Vec<_> = sessions
        .into_iter()
        .map(|(mut c, session)| {
            tokio::spawn(async move {
                let e = c.act(&session, "sort_loop", json!({})).await;
                (c, session, e, started.elapsed())
            })
        })
        .collect();
    let all = tokio::spawn(futures_util::future::join_all(runs));
    let (results, slowest_pong) = ping_until(&mut bystander, all).await;
    assert!(
        slowest_pong < Duration::from_secs(1),
        "another connection waited {slowest_pong:?} for its pong"
    );
    for result in results {
        let (mut c, session, e, took) = result.unwrap();
        assert_eq!(e["code"], "script_error", "{e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.starts_with("limits.lua:"), "{message}");
        assert!(message.contains("CPU budget exceeded"), "{message}");
        assert!(took < Duration::from_secs(3), "the call took {took:?}");
        bump(&mut c, &session, 1).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_doing_library_work_is_stopped_by_the_time_budget() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    let (mut host, session) = host(&server, "limits").await;
    let mut bystander = server.client().await;
    let started = Instant::now();
    let (status, body) = common::http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": "slow_view", "data": {}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let notice = tokio::spawn(async move {
        let e = host
            .recv_until(|v| v["type"] == "error" && v["code"] == "script_error")
            .await;
        (host, e)
    });
    let ((mut host, e), slowest_pong) = ping_until(&mut bystander, notice).await;
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("CPU budget exceeded"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(slowest_pong < Duration::from_secs(1), "{slowest_pong:?}");
    // The view works again once the state lets it.
    let (status, body) = common::http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": "fast_view", "data": {}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bump(&mut host, &session, 1).await;
    server.stop().await;
}

/// This process's resident memory, in bytes (the server runs in-process).
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

async fn event(server: &TestServer, session: &str, name: &str) {
    let (status, body) = common::http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": name, "data": {}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_handler_emits_is_bounded_and_memory_stays_bounded() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    let (mut host, session) = host(&server, "limits").await;
    let before = rss_bytes();
    let cases = [
        (
            "broadcast_big",
            "limits.lua:31: ctx.broadcast: the message is 5.0 MB; it may be at most 64 KiB",
        ),
        (
            "send_big",
            "limits.lua:32: ctx.send: the message is 70.0 kB; it may be at most 64 KiB",
        ),
        (
            "broadcast_many",
            "limits.lua:36: ctx.broadcast: this call's messages, timers and results come to 1.1 MB; one call may emit at most 1 MiB",
        ),
        (
            "timer_big",
            "limits.lua:37: ctx.after: the message is 70.0 kB; it may be at most 64 KiB",
        ),
    ];
    for (round, (name, want)) in cases.iter().enumerate() {
        for _ in 0..5 {
            // Bounded: without the limits the call emits hundreds of MB.
            let e =
                tokio::time::timeout(Duration::from_secs(20), host.act(&session, name, json!({})))
                    .await
                    .unwrap_or_else(|_| panic!("{name}: no answer within 20 s"));
            assert_eq!(e["code"], "script_error", "{name}: {e}");
            assert_eq!(e["message"], *want, "{name}");
        }
        bump(&mut host, &session, round as u64 + 1).await;
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 100 << 20, "the server grew by {} MB", grown >> 20);
    assert!(
        !host
            .log
            .iter()
            .any(|v| ["big", "many", "should_not_arrive"]
                .contains(&v["name"].as_str().unwrap_or(""))),
        "nothing of a refused call was sent"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_over_its_limit_is_an_error_and_members_keep_their_last_view() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    let (mut host, session) = host(&server, "limits").await;
    let code = host.log[0]["code"].as_str().unwrap().to_owned();
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;
    bump(&mut host, &session, 1).await;
    ana.wait_view(&session, |v| v["count"] == 1).await;
    let before = rss_bytes();

    event(&server, &session, "big_view").await;
    let e = host
        .recv_until(|v| v["type"] == "error" && v["code"] == "script_error")
        .await;
    let message = e["message"].as_str().unwrap();
    assert!(
        message.starts_with("limits.lua: view: the view for ")
            && message.ends_with(" is 5.0 MB; a view may be at most 256 KiB"),
        "{message}"
    );
    // While the view is too big, actions work and nobody gets a broken view.
    let ack = host.act(&session, "bump", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    event(&server, &session, "small_view").await;
    host.wait_view(&session, |v| v["count"] == 2).await;
    ana.wait_view(&session, |v| v["count"] == 2).await;
    for c in [&host, &ana] {
        assert!(
            !c.log
                .iter()
                .any(|v| v["type"] == "view" && v["patch"].get("big").is_some()),
            "an oversized view was sent"
        );
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 100 << 20, "the server grew by {} MB", grown >> 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_raised_with_a_table_shows_no_heap_address() {
    let server = TestServer::with_games(&[("limits.lua", LIMITS)]).await;
    let (mut host, session) = host(&server, "limits").await;
    for name in ["error_table", "error_empty"] {
        let e = host.act(&session, name, json!({})).await;
        assert_eq!(e["code"], "script_error", "{e}");
        assert_eq!(
            e["message"],
            "error() was called with a table, not a message; use error(\"what went wrong\")"
        );
    }
    bump(&mut host, &session, 1).await;
    server.stop().await;
}

/// Timers live outside Lua's memory budget: a session may have 1000 waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_timers_are_bounded_per_session() {
    const TIMERS: &str = r#"
return {
  init = function() return { started = 0 } end,
  action = function(state, ctx, player, name, data)
    for _ = 1, data.n do ctx.after(3600000, "later") end
    state.started = state.started + data.n
  end,
  timer = function(state, ctx, name, data) end,
  view = function(state, player) return { started = state.started } end,
}
"#;
    let server = TestServer::with_games(&[("timers.lua", TIMERS)]).await;
    let (mut host, session) = host(&server, "timers").await;
    let ack = host.act(&session, "start", json!({"n": 600})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let e = host.act(&session, "start", json!({"n": 600})).await;
    assert_eq!(e["code"], "script_error", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("ctx.after: 1000 timers are already waiting in this session"),
        "{e}"
    );
    // Rolled back: no timer of the refused call is kept, and the session goes on.
    let ack = host.act(&session, "start", json!({"n": 399})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let (_, body) = common::http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
    )
    .await;
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["timers"], 999, "{summary}");
    server.stop().await;
}
