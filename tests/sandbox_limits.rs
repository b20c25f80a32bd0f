//! The sandbox's limits over real sessions: nesting, unsaveable state, error
//! values, the CPU time of C library calls, and the size of what a handler
//! emits. Each refusal names the limit, the session keeps working, and
//! nothing of the refused call remains.

mod common;

use common::{Client, Process, TestServer};
use serde_json::{Value, json};

const LIMITS: &str = r#"
local function nest(levels)
  local t = {}
  for _ = 2, levels do t = { t } end
  return t
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
    elseif name == "error_table" then error({ code = 7 })
    elseif name == "error_empty" then error({})
    end
  end,
  view = function(state) return { count = state.count } end,
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
