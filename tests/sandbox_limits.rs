//! The sandbox's limits over real sessions: nesting, unsaveable state, error
//! values, the CPU time of C library calls, and the size of what a handler
//! emits. Each refusal names the limit, the session keeps working, and
//! nothing of the refused call remains.

mod common;

use common::{Client, TestServer};
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
