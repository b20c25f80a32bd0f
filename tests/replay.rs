//! Deterministic replay: a session's recording (`GET
//! /api/sessions/{id}/recording`) run again by `recess replay` gives every
//! message byte for byte, and a changed game file shows where it differs.

mod common;

use std::path::Path;

use common::{Client, TestServer, http, http_with, recess};
use serde_json::{Value, json};

const PLAYERS: usize = 30;

fn questions() -> Value {
    json!([
        {"text": "2 + 2?", "choices": ["3", "4", "5", "22"], "answer": 2, "time": 30},
        {"text": "Capital of Italy?", "choices": ["Rome", "Milan", "Turin", "Naples"], "answer": 1, "time": 30},
        // Nobody answers this one: its timer ends it.
        {"text": "H2O is?", "choices": ["Salt", "Air", "Gold", "Water"], "answer": 4, "time": 1},
    ])
}

/// Runs `recess replay` with `args`; its exit code and stdout.
fn replay(args: &[&str]) -> (Option<i32>, String, String) {
    let out = recess()
        .arg("replay")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run recess replay");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A student who answers the first two questions (wrong every third time);
/// student 0 loses the connection after the first and resumes.
async fn student(server_addr: std::net::SocketAddr, mut c: Client, code: String, i: usize) {
    let w = c.join(&code, &format!("Student {i:02}")).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    for (q, answer) in [(1, 2), (2, 1)] {
        c.recv_until(|v| {
            v["type"] == "event" && v["name"] == "question" && v["data"]["number"] == q
        })
        .await;
        let choice = if (i + q).is_multiple_of(3) {
            answer % 4 + 1
        } else {
            answer
        };
        let ack = c.act(&session, "answer", json!({"choice": choice})).await;
        assert_eq!(ack["type"], "ack", "student {i} q{q}: {ack}");
        if i == 0 && q == 1 {
            let last_seq = c.last_seq.get(&session).copied().unwrap_or(0);
            c.close().await;
            c = Client::connect(server_addr).await;
            let w = c.resume(&token, last_seq).await;
            assert_eq!(w["type"], "welcome", "{w}");
        }
    }
    c.recv_type("ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_thirty_player_quiz_replays_byte_for_byte_and_a_changed_game_shows_where() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    let w = host.host("quiz", json!({"questions": questions()})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let mut students = Vec::new();
    for i in 0..PLAYERS {
        let c = server.client().await;
        students.push(tokio::spawn(student(server.addr, c, code.clone(), i)));
    }
    host.wait_view(&session, |v| {
        v["players"].as_array().is_some_and(|p| p.len() == PLAYERS)
    })
    .await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/broadcast"),
        Some(&json!({"name": "notice", "data": {"text": "Eyes on the board"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for q in 1..=3 {
        host.recv_until(|v| {
            v["type"] == "event" && v["name"] == "reveal" && v["data"]["number"] == q
        })
        .await;
        assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    }
    host.recv_type("ended").await;
    for s in students {
        s.await.expect("student");
    }

    // The host downloads the recording with their own token.
    let body = download(&server, &session, &token).await;
    let recording: Value = serde_json::from_str(&body).expect("a recording is JSON");
    let steps = recording["steps"].as_array().unwrap();
    let count = |what: &str| steps.iter().filter(|s| s["do"] == what).count();
    assert_eq!(count("start"), 1);
    assert_eq!(count("join"), PLAYERS);
    assert_eq!(count("resume"), 1, "student 0 resumed once");
    assert!(count("disconnect") >= 1);
    assert_eq!(count("broadcast"), 1);
    assert!(
        count("timers") >= 1,
        "the third question ended on its timer"
    );
    assert!(count("views") >= 1);
    assert!(count("action") >= 2 * PLAYERS + 4);
    assert!(
        !body.contains(token.rsplit('.').next().unwrap()),
        "the host's secret is not in the recording"
    );
    let outputs = recording["outputs"].as_array().unwrap();
    let n = outputs.len();
    assert!(n > 200, "{n} outputs");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recording.json");
    std::fs::write(&file, &body).unwrap();
    let file = file.to_str().unwrap();

    // The same rules: every message is the same.
    let (code, out, err) = replay(&[file]);
    assert_eq!(code, Some(0), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "replaying session {session} of quiz: {} people, {} inputs over {}",
            PLAYERS + 1,
            steps.len(),
            clock(steps.last().unwrap()["t"].as_i64().unwrap())
        )
    );
    assert_eq!(lines[1], "rules: quiz as recorded");
    assert_eq!(
        lines[2],
        format!("identical: {n} messages and answers, byte for byte")
    );

    // A changed scoring rule: the first message that differs is the first
    // points a right answer earned.
    let games = tempfile::tempdir().unwrap();
    let quiz = std::fs::read_to_string(common::shipped_games().join("quiz.lua")).unwrap();
    let old = "math.floor(500 + 500 * time_left / q.time_ms)";
    assert!(quiz.contains(old));
    let changed = quiz.replace(old, "math.floor(499 + 500 * time_left / q.time_ms)");
    std::fs::write(games.path().join("quiz.lua"), changed).unwrap();
    let first = outputs
        .iter()
        .position(|o| {
            o["frame"].as_str().is_some_and(|f| {
                f.contains(r#""name":"result""#) && f.contains(r#""correct":true"#)
            })
        })
        .expect("a right answer's result");
    let games_path = games.path().to_str().unwrap();
    let (code, out, err) = replay(&[file, "--games", games_path]);
    assert_eq!(code, Some(1), "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[1],
        format!("rules: quiz from {games_path} (not the recorded version)")
    );
    let seq = outputs[first]["seq"].as_u64().unwrap();
    assert!(
        lines[2].starts_with(&format!(
            "first difference at message {} of {n} (seq {seq}), from ",
            first + 1
        )),
        "{out}"
    );
    let frame = outputs[first]["frame"].as_str().unwrap();
    assert!(
        lines[3].starts_with(&format!("  expected: {frame} (to Student ")),
        "{out}"
    );
    assert!(lines[4].starts_with("  got:      {"), "{out}");
    assert_ne!(
        lines[3]["  expected: ".len()..],
        lines[4]["  got:      ".len()..]
    );

    // The recorded rules again, from the same file: still identical.
    assert_eq!(replay(&[file]).0, Some(0));
    server.stop().await;
}

/// `GET path` with no key.
async fn get(server: &TestServer, path: &str) -> (u16, String) {
    http_with(server.addr, "GET", path, "", "").await
}

/// `GET path` with the API key.
async fn get_with_key(server: &TestServer, path: &str) -> (u16, String) {
    http(server.addr, "GET", path, None).await
}

/// The recording, downloaded with the host's token.
async fn download(server: &TestServer, session: &str, token: &str) -> String {
    let path = format!("/api/sessions/{session}/recording?token={token}");
    let (status, body) = get(server, &path).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn clock(ms: i64) -> String {
    format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}

const HOT_V1: &str = r#"
return {
  title = "Counter",
  init = function(ctx) return { n = 0, seed = ctx.random(1, 1000000) } end,
  action = function(state, ctx, player, name)
    state.n = state.n + 1
    ctx.broadcast("counted", { n = state.n, by = player.name, at = ctx.now() })
    ctx.after(500, "tick", { n = state.n })
  end,
  timer = function(state, ctx, name, data)
    ctx.broadcast("tick", { n = data.n, roll = ctx.random(1, 6) })
  end,
  view = function(state, player) return { title = "Count " .. state.n, text = tostring(state.seed) } end,
}
"#;

#[tokio::test]
async fn a_rules_change_during_the_session_is_recorded_and_replayed() {
    let server = TestServer::with_games(&[("counter.lua", HOT_V1)]).await;
    let mut host = server.client().await;
    let w = host.host("counter", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;
    assert_eq!(ana.act(&session, "press", json!({})).await["type"], "ack");
    ana.recv_until(|v| v["type"] == "event" && v["name"] == "tick")
        .await;
    // The teacher saves a new version: views say "Total" from now on.
    let mut changes = server.server.as_ref().unwrap().game_changes();
    server.write_game("counter.lua", &HOT_V1.replace("\"Count \"", "\"Total \""));
    loop {
        let change = tokio::time::timeout(std::time::Duration::from_secs(10), changes.recv())
            .await
            .expect("no reload within 10 s")
            .expect("change channel");
        if matches!(change, recess::script::GameChange::Updated { .. }) {
            break;
        }
    }
    assert_eq!(ana.act(&session, "press", json!({})).await["type"], "ack");
    ana.recv_until(|v| v["type"] == "event" && v["name"] == "tick" && v["data"]["n"] == 2)
        .await;
    host.wait_view(&session, |v| {
        v["title"].as_str().is_some_and(|t| t.starts_with("Total"))
    })
    .await;
    let body = download(&server, &session, &token).await;
    let recording: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        recording["rules"].as_array().unwrap().len(),
        2,
        "both versions are kept"
    );
    assert!(
        recording["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["do"] == "rules")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counter.json");
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = replay(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("identical: "), "{out}");

    // Against the first version throughout, the first view after the save
    // differs.
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("counter.lua"), HOT_V1).unwrap();
    let (code, out, _) = replay(&[
        file.to_str().unwrap(),
        "--games",
        games.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("(the recorded version)"), "{out}");
    assert!(
        out.contains(r#"  expected: {"type":"view""#) && out.contains("Total"),
        "{out}"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_the_host_or_the_api_key_may_download_a_recording() {
    let server = TestServer::start().await;
    let (host, session, code) = common::chat_with_host(&server).await;
    let host_token = host_token(&host);
    let mut ana = server.client().await;
    let w = ana.join(&code, "Ana").await;
    let ana_token = w["token"].as_str().unwrap().to_owned();
    let path = |token: &str| format!("/api/sessions/{session}/recording?token={token}");

    let (status, body) = get(&server, &path(&ana_token)).await;
    assert_eq!(status, 401, "a student's token is refused: {body}");
    assert!(body.contains("not the host's token"), "{body}");
    let (status, _) = get(&server, &format!("/api/sessions/{session}/recording")).await;
    assert_eq!(status, 401, "no token and no key");
    let (status, body) = get_with_key(&server, &format!("/api/sessions/{session}/recording")).await;
    assert_eq!(status, 200, "the API key may: {body}");
    // Another session's id with this token answers as a wrong token does.
    let (status, body) = get(
        &server,
        &format!("/api/sessions/nosuchsession/recording?token={host_token}"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = get(&server, &path(&host_token)).await;
    assert_eq!(status, 200);
    server.stop().await;
}

fn host_token(host: &Client) -> String {
    host.log
        .iter()
        .find(|v| v["type"] == "welcome")
        .and_then(|v| v["token"].as_str())
        .map(str::to_owned)
        .expect("the host's welcome")
}

#[tokio::test]
async fn a_server_that_keeps_no_recordings_says_so() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| c.recording_kib = 0).await;
    let (_host, session, _) = common::chat_with_host(&server).await;
    let (status, body) = get_with_key(&server, &format!("/api/sessions/{session}/recording")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("this server keeps no recordings (--recording-kib 0)"),
        "{body}"
    );
    server.stop().await;
}

#[test]
fn a_file_that_is_not_a_recording_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.json");
    std::fs::write(&file, r#"{"hello": 1}"#).unwrap();
    let (code, out, err) = replay(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.starts_with(&format!(
            "recess replay: {} is not a Recess recording: ",
            file.display()
        )),
        "{err}"
    );
    let (code, _, err) = replay(&[Path::new("/nonexistent/r.json").to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with("recess replay: cannot read /nonexistent/r.json: "),
        "{err}"
    );
}

/// Lua's string hash seed is fixed (`.cargo/config.toml`): `pairs` visits a
/// table's string keys in the same order in every process, so a game that
/// iterates with `pairs` replays the same.
#[test]
fn pairs_visits_keys_in_the_same_order_in_every_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.lua"),
        r#"return { title = "P", init = function() return {} end, view = function() return {} end }"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p_test.lua"),
        r#"test("order", function()
  local t = {}
  for i = 1, 40 do t["key" .. i] = i end
  local s = {}
  for k in pairs(t) do s[#s + 1] = k end
  print(table.concat(s, ","))
end)"#,
    )
    .unwrap();
    let order = || {
        let out = recess()
            .arg("test")
            .arg(dir.path())
            .output()
            .expect("run recess test");
        // `print` in a test goes to the log, on stderr.
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = text
            .lines()
            .find_map(|l| l.find("key").map(|at| l[at..].to_owned()));
        line.unwrap_or_else(|| panic!("no order printed: {text}"))
    };
    let first = order();
    for _ in 0..3 {
        assert_eq!(
            order(),
            first,
            "the order of pairs changed between processes"
        );
    }
}

/// In a cluster the recording is the owner's; any node hands it out, and
/// what players on another node did (forwarded to the owner) is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_of_a_cluster_hands_out_the_owners_recording() {
    let games = common::games_dir_with_shipped();
    let nodes = common::cluster::TwoNodes::start(games.path(), &[]).await;
    let (a, b) = (nodes.a, nodes.b);
    let mut host = Client::connect(a.addr).await;
    let w = host.host("chat", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let mut ana = Client::connect(b.addr).await;
    ana.join(w["code"].as_str().unwrap(), "Ana").await;
    for text in ["hello", "from node b"] {
        assert_eq!(
            ana.act(&session, "send", json!({"text": text})).await["type"],
            "ack"
        );
    }
    let path = format!("/api/sessions/{session}/recording?token={token}");
    let (status, body) = common::http_with(b.addr, "GET", &path, "", "").await;
    assert_eq!(status, 200, "{body}");
    let recording: Value = serde_json::from_str(&body).unwrap();
    let sent = recording["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["do"] == "action" && s["name"] == "send")
        .count();
    assert_eq!(sent, 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chat.json");
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = replay(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    a.kill().await;
    b.kill().await;
}

/// Past `--recording-kib` frames are kept as hashes and still compared;
/// at twice that the recording stops and a replay checks what it holds.
#[tokio::test]
async fn a_recording_past_its_size_limit_keeps_hashes_then_stops_and_still_replays() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| c.recording_kib = 4).await;
    let (host, session, code) = common::chat_with_host(&server).await;
    let token = host_token(&host);
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;
    for i in 0..40 {
        let text = format!("message {i}: {}", "la ".repeat(40));
        assert_eq!(
            ana.act(&session, "send", json!({"text": text})).await["type"],
            "ack"
        );
    }
    let body = download(&server, &session, &token).await;
    let recording: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(recording["stopped"], true, "the recording stopped at 8 KiB");
    let outputs = recording["outputs"].as_array().unwrap();
    let digests = outputs.iter().filter(|o| o.get("digest").is_some()).count();
    assert!(
        digests > 0 && outputs[0].get("frame").is_some(),
        "frames, then hashes"
    );
    assert!(body.len() < 40 * 1024, "{} bytes", body.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chat.json");
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = replay(&[file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(
            "the recording stopped at its size limit (--recording-kib): what it holds is checked"
        ),
        "{out}"
    );

    // A chat that changes one message past the limit differs where only
    // the hash of that message was kept.
    // (The first hash may be of a view pass, whose place depends on timing:
    // the first one of a message sent is looked for.)
    let text = outputs
        .iter()
        .filter(|o| o.get("digest").is_some())
        .find_map(|o| {
            let step = &recording["steps"][o["step"].as_u64()? as usize];
            step["data"]["text"].as_str()
        })
        .expect("a message sent past the limit");
    let marker = text.split(':').next().unwrap().to_owned() + ":";
    let games = tempfile::tempdir().unwrap();
    let chat = std::fs::read_to_string(common::shipped_games().join("chat.lua")).unwrap();
    let old = "local message = { from = from, text = text, at = ctx.now() }";
    assert!(chat.contains(old));
    let changed =
        format!("if text:find({marker:?}, 1, true) then text = text .. \"!\" end\n  {old}");
    std::fs::write(games.path().join("chat.lua"), chat.replace(old, &changed)).unwrap();
    let (code, out, _) = replay(&[
        file.to_str().unwrap(),
        "--games",
        games.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("  expected: (a ")
            && out.contains("-byte message past the recording's size limit, hash "),
        "{out}"
    );
    server.stop().await;
}
