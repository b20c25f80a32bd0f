//! Hot reload with real files in a temp games folder while a session runs.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, http};
use recess::script::GameChange;
use serde_json::{Value, json};
use tokio::sync::broadcast;

fn counter(version: &str, step: i64) -> String {
    format!(
        r#"return {{
  title = "Counter {version}",
  init = function() return {{ count = 0 }} end,
  action = function(state, ctx, player, name)
    state.count = state.count + {step}
  end,
  view = function(state) return {{ count = state.count, version = "{version}", migrated = state.migrated }} end,
  migrate = function(state) state.migrated = "{version}" end,
}}
"#
    )
}

/// Waits for the next change to `game`, returning it and how long it took.
async fn next_change(
    rx: &mut broadcast::Receiver<GameChange>,
    game: &str,
) -> (GameChange, Duration) {
    let started = Instant::now();
    loop {
        let change = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no reload within 10 s")
            .expect("change channel");
        let name = match &change {
            GameChange::Updated { game, .. }
            | GameChange::Broken { game, .. }
            | GameChange::Removed { game } => game,
        };
        if name == game {
            return (change, started.elapsed());
        }
    }
}

async fn games(server: &TestServer) -> Value {
    let (status, body) = http(server.addr, "GET", "/api/games", None).await;
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_break_fix_delete_and_add_while_a_session_runs() {
    let server = TestServer::with_games(&[("counter.lua", &counter("v1", 1))]).await;
    let mut changes = server.server.as_ref().unwrap().game_changes();
    let mut host = server.client().await;
    let w = host.host("counter", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    assert_eq!(host.act(&session, "inc", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["count"] == 1 && v["version"] == "v1")
        .await;

    // Change: the running session switches at its next call, state kept, migrate run.
    server.write_game("counter.lua", &counter("v2", 10));
    let (change, took) = next_change(&mut changes, "counter").await;
    assert!(matches!(change, GameChange::Updated { .. }), "{change:?}");
    println!("reload took {took:?} after the save");
    assert!(took < Duration::from_secs(2), "reload took {took:?}");
    assert_eq!(host.act(&session, "inc", json!({})).await["type"], "ack");
    let v = host.wait_view(&session, |v| v["count"] == 11).await;
    assert_eq!(v["version"], "v2");
    assert_eq!(v["migrated"], "v2");

    // Break: reported with file:line to the log, the API and the host; v2 keeps running.
    server.write_game(
        "counter.lua",
        "return {\n  init = function() return {} end,\n  view = function( end,\n}\n",
    );
    let (change, _) = next_change(&mut changes, "counter").await;
    let GameChange::Broken { message, .. } = change else {
        panic!("expected a broken game, got {change:?}");
    };
    assert!(message.starts_with("counter.lua:3:"), "{message}");
    let notice = host
        .recv_until(|v| v["type"] == "error" && v["code"] == "game_broken")
        .await;
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("counter.lua:3:"),
        "{notice}"
    );
    let listed = games(&server).await;
    let entry = &listed["games"][0];
    assert_eq!(entry["status"], "error");
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .starts_with("counter.lua:3:")
    );
    assert_eq!(
        entry["title"], "Counter v2",
        "the last good version still serves"
    );
    assert_eq!(host.act(&session, "inc", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["count"] == 21 && v["version"] == "v2")
        .await;

    // A runtime error at load and a missing handler are broken saves too.
    server.write_game("counter.lua", "local x = nil\nreturn x.y");
    let (change, _) = next_change(&mut changes, "counter").await;
    assert!(
        matches!(&change, GameChange::Broken { message, .. } if message.starts_with("counter.lua:2:")),
        "{change:?}"
    );
    server.write_game("counter.lua", "return { init = function() return {} end }");
    let (change, _) = next_change(&mut changes, "counter").await;
    assert!(
        matches!(&change, GameChange::Broken { message, .. } if message.contains("`view`")),
        "{change:?}"
    );

    // Fix.
    server.write_game("counter.lua", &counter("v3", 100));
    let (change, _) = next_change(&mut changes, "counter").await;
    assert!(matches!(change, GameChange::Updated { .. }));
    assert_eq!(host.act(&session, "inc", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["count"] == 121 && v["version"] == "v3")
        .await;
    assert_eq!(games(&server).await["games"][0]["status"], "ok");

    // Delete: no new sessions, the running one keeps its rules.
    std::fs::remove_file(server.games.path().join("counter.lua")).unwrap();
    let (change, _) = next_change(&mut changes, "counter").await;
    assert!(matches!(change, GameChange::Removed { .. }));
    let mut late = server.client().await;
    late.send(json!({"type": "host", "game": "counter"})).await;
    assert_eq!(late.recv().await["code"], "unknown_game");
    assert_eq!(host.act(&session, "inc", json!({})).await["type"], "ack");
    host.wait_view(&session, |v| v["count"] == 221).await;

    // Add a new game.
    server.write_game("fresh.lua", &counter("fresh", 5));
    let (change, _) = next_change(&mut changes, "fresh").await;
    assert!(matches!(change, GameChange::Updated { .. }));
    let w = late.host("fresh", json!({})).await;
    assert_eq!(w["view"]["version"], "fresh");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_games_reload_when_a_helper_module_changes() {
    let init = r#"local h = require("helpers")
return {
  init = function() return {} end,
  view = function() return { word = h.word() } end,
  action = function() end,
}"#;
    let server = TestServer::with_games(&[
        ("words/init.lua", init),
        (
            "words/helpers.lua",
            "return { word = function() return 'one' end }",
        ),
    ])
    .await;
    let mut changes = server.server.as_ref().unwrap().game_changes();
    let mut host = server.client().await;
    let w = host.host("words", json!({})).await;
    assert_eq!(w["view"]["word"], "one");
    let session = w["session"].as_str().unwrap().to_owned();
    server.write_game(
        "words/helpers.lua",
        "return { word = function() return 'two' end }",
    );
    let (change, _) = next_change(&mut changes, "words").await;
    assert!(matches!(change, GameChange::Updated { .. }), "{change:?}");
    host.act(&session, "poke", json!({})).await;
    host.wait_view(&session, |v| v["word"] == "two").await;
    server.stop().await;
}
