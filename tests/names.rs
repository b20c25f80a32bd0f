//! Names over the real protocol: generated names (`names: "generated"`),
//! the list of blocked names, `ctx.rename`, private results columns and
//! `ctx.report`, on one node, across a restart and in a cluster.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::TwoNodes;
use common::{Client, Process, TestServer, http, http_with};
use serde_json::{Value, json};

/// A game that keeps everyone's shown name in its state (views list them),
/// puts the typed names in a private column, and lets its host rename,
/// report and finish.
const ROSTER: &str = r#"
local function results(state, ctx)
  local rows = {}
  for _, p in ipairs(ctx.players()) do
    if p.role == "player" then
      rows[#rows + 1] = { name = p.name, real_name = p.real_name, score = state.scores[p.id] or 0 }
    end
  end
  return { columns = { "name", "real_name", "score" }, private = { "real_name" }, rows = rows }
end

return {
  title = "Roster",
  init = function(ctx) return { scores = {}, people = {} } end,
  join = function(state, ctx, player)
    if player.role == "player" then
      state.people[#state.people + 1] = { id = player.id, name = player.name }
      ctx.broadcast("joined", { name = player.name })
    end
  end,
  action = function(state, ctx, player, name, data)
    if name == "point" then
      state.scores[player.id] = (state.scores[player.id] or 0) + 1
      return
    end
    if player.role ~= "host" then return false, "only the host can do that" end
    if name == "rename" then
      local ok, new_name = ctx.rename(data.player, data.name)
      if not ok then return false, new_name end
      for _, p in ipairs(state.people) do
        if p.id == data.player then p.name = new_name end
      end
    elseif name == "report" then
      ctx.report(results(state, ctx))
    elseif name == "finish" then
      ctx.finish(results(state, ctx))
    else
      return false, "unknown action"
    end
  end,
  view = function(state, player)
    return { title = "Roster", text = "You are " .. player.name, players = state.people }
  end,
}
"#;

const ADJECTIVES: &str = include_str!("../names/adjectives.txt");
const ANIMALS: &str = include_str!("../names/animals.txt");

fn words(list: &str) -> HashSet<&str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Whether `name` is an adjective and an animal of the shipped lists.
fn generated(name: &str) -> bool {
    let (adjectives, animals) = (words(ADJECTIVES), words(ANIMALS));
    name.split_once(' ')
        .is_some_and(|(a, b)| adjectives.contains(a) && animals.contains(b))
}

/// Hosts `game` with generated names; the welcome.
async fn host_generated(c: &mut Client, game: &str) -> Value {
    c.send(json!({"type": "host", "game": game, "names": "generated"}))
        .await;
    let w = c.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    w
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_owned()
}

async fn join_error(c: &mut Client, code: &str, name: &str) -> Value {
    c.send(json!({"type": "join", "code": code, "name": name}))
        .await;
    c.recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
        .await
}

/// `GET path` with `?token=` (no API key).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_with(addr, "GET", path, "", "").await
}

fn real_name(i: usize) -> String {
    format!("Quimby Zanzibar {i:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_students_get_generated_names_and_only_the_host_sees_the_typed_ones() {
    let server = TestServer::with_games(&[("roster.lua", ROSTER)]).await;
    let mut host = server.client().await;
    let w = host_generated(&mut host, "roster").await;
    let (session, code, host_token) = (s(&w, "session"), s(&w, "code"), s(&w, "token"));
    assert_eq!(w["player"]["name"], "Host");

    let mut students = Vec::new();
    let mut shown = HashSet::new();
    for i in 0..30 {
        let mut c = server.client().await;
        let w = c.join(&code, &real_name(i)).await;
        let name = s(&w["player"], "name");
        assert!(generated(&name), "{name:?} is not from the lists");
        assert!(shown.insert(name.clone()), "{name:?} was given twice");
        assert_eq!(w["view"]["text"], format!("You are {name}"), "{w}");
        students.push((c, s(&w, "token"), name));
    }
    // The typed names are what must be unique: a second Quimby 03 is refused.
    let mut again = server.client().await;
    let e = join_error(&mut again, &code, "QUIMBY ZANZIBAR 03").await;
    assert_eq!(e["code"], "name_taken", "{e}");

    // A student reconnects on a new socket: the same generated name.
    let (old, token, name) = students.remove(4);
    old.close().await;
    let mut back = server.client().await;
    let w = back.resume(&token, 0).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["player"]["name"], name.as_str());
    students.insert(4, (back, token, name));

    assert_eq!(
        students[0].0.act(&session, "point", json!({})).await["type"],
        "ack"
    );
    assert_eq!(host.act(&session, "finish", json!({})).await["type"], "ack");
    let ended = host.recv_type("ended").await;
    let rows = ended["results"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 30);
    let host_seq = ended["seq"].as_u64().unwrap();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["real_name"], real_name(i), "the host's ended: {row}");
        assert!(generated(row["name"].as_str().unwrap()));
    }
    assert_eq!(ended["results"]["private"], json!(["real_name"]));

    let typed: Vec<String> = (0..30).map(real_name).collect();
    for (c, _, _) in &mut students {
        let e = c.recv_type("ended").await;
        assert_eq!(e["seq"].as_u64(), Some(host_seq), "one seq for everyone");
        assert_eq!(e["results"]["columns"], json!(["name", "score"]));
        assert!(e["results"].get("private").is_none(), "{e}");
        for frame in &c.log {
            let text = frame.to_string();
            for real in &typed {
                assert!(
                    !text.contains(real.as_str()),
                    "{real} reached a student: {text}"
                );
            }
            assert!(!text.contains("Quimby"), "{text}");
        }
    }

    // REST: the host's token and the API key get the private column.
    for (status, body) in [
        get(
            server.addr,
            &format!("/api/sessions/{session}/results?token={host_token}"),
        )
        .await,
        http(
            server.addr,
            "GET",
            &format!("/api/sessions/{session}/results"),
            None,
        )
        .await,
    ] {
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["final"], true);
        assert_eq!(v["results"]["rows"][7]["real_name"], real_name(7));
    }
    let (status, csv) = get(
        server.addr,
        &format!("/api/sessions/{session}/results?token={host_token}&format=csv"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("\"name\",\"real_name\",\"score\"\r\n"),
        "{csv}"
    );
    assert!(csv.contains(&real_name(29)), "{csv}");

    // The recording replays byte for byte: the same names are drawn.
    let (status, recording) = get(
        server.addr,
        &format!("/api/sessions/{session}/recording?token={host_token}"),
    )
    .await;
    assert_eq!(status, 200, "{recording}");
    let rec: Value = serde_json::from_str(&recording).unwrap();
    assert_eq!(rec["names"], "generated");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recording.json");
    std::fs::write(&file, &recording).unwrap();
    let out = common::recess()
        .arg("replay")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("identical"), "{stdout}");
    server.stop().await;
}

#[tokio::test]
async fn blocked_names_are_refused_in_disguise_and_innocent_ones_pass() {
    let server = TestServer::start().await;
    let (_host, _session, code) = common::chat_with_host(&server).await;
    for name in [
        "shit",
        "SHIT",
        "Sh1t",
        "s h i t",
        "s.h.i.t",
        "ｓｈｉｔ",
        "\u{455}hit",
        "B1tchface",
    ] {
        let mut c = server.client().await;
        let e = join_error(&mut c, &code, name).await;
        assert_eq!(e["code"], "name_invalid", "{name:?}: {e}");
        assert_eq!(e["message"], "please choose another name", "{name:?}");
    }
    for name in ["Scunthorpe", "Cassandra", "Dickens", "Bass"] {
        let mut c = server.client().await;
        c.join(&code, name).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_list_of_blocked_names_replaces_the_shipped_one() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("blocked.txt");
    std::fs::write(&list, "# our school's list\nbanana\n").unwrap();
    let list2 = list.clone();
    let server = TestServer::start_in(common::games_dir_with_shipped(), move |c| {
        c.blocked_names = Some(list2.clone());
    })
    .await;
    let (_host, _session, code) = common::chat_with_host(&server).await;
    let mut c = server.client().await;
    let e = join_error(&mut c, &code, "B4N4NA split").await;
    assert_eq!(e["message"], "please choose another name", "{e}");
    // The shipped list is replaced, not added to.
    let mut c = server.client().await;
    c.join(&code, "Crap").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_renames_a_student_and_a_restart_keeps_it() {
    let games = common::games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    let w = host.host("chat", json!({})).await;
    let (session, code, host_token) = (s(&w, "session"), s(&w, "code"), s(&w, "token"));
    let mut ana = Client::connect(node.addr).await;
    ana.join(&code, "Ana").await;
    let mut ben = Client::connect(node.addr).await;
    let w = ben.join(&code, "Ben").await;
    let (ben_id, ben_token) = (s(&w["player"], "id"), s(&w, "token"));

    // A student may not rename anyone: chat.lua refuses.
    let r = ana
        .act(&session, "rename", json!({"player": ben_id, "name": "Bob"}))
        .await;
    assert_eq!(r["code"], "refused", "{r}");
    assert_eq!(r["message"], "only the host can rename people");
    // The engine's rules: unique, the list, clean_name.
    for (name, why) in [
        ("ANA", "the name \"ANA\" is already taken in this game"),
        ("p0rn", "please choose another name"),
        (
            "a\u{200b}b",
            "names cannot contain invisible characters (like zero-width spaces or direction marks)",
        ),
        (&"x".repeat(25), "names can be at most 24 characters"),
    ] {
        let r = host
            .act(&session, "rename", json!({"player": ben_id, "name": name}))
            .await;
        assert_eq!(r["code"], "refused", "{name:?}: {r}");
        assert_eq!(r["message"], why, "{name:?}");
    }
    let r = host
        .act(
            &session,
            "rename",
            json!({"player": ben_id, "name": " Benji "}),
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let renamed = ben.recv_type("renamed").await;
    assert_eq!(renamed["player"]["name"], "Benji");
    assert_eq!(renamed["player"]["id"], ben_id.as_str());
    let has_benji = |v: &Value| {
        v["players"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Benji"))
    };
    ana.wait_view(&session, has_benji).await;
    host.wait_view(&session, has_benji).await;
    // His own messages carry the new name.
    assert_eq!(
        ben.act(&session, "send", json!({"text": "hi"})).await["type"],
        "ack"
    );
    let m = ana.recv_until(|v| v["name"] == "message").await;
    assert_eq!(m["data"]["from"], "Benji");
    // Another student may not take the name now.
    let mut c = Client::connect(node.addr).await;
    assert_eq!(
        join_error(&mut c, &code, "benji").await["code"],
        "name_taken"
    );

    node.kill().await;
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut ben = Client::connect(node.addr).await;
    let w = ben.resume(&ben_token, 0).await;
    assert_eq!(w["player"]["name"], "Benji", "{w}");
    let (status, body) = http(node.addr, "GET", &format!("/api/sessions/{session}"), None).await;
    assert_eq!(status, 200);
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert!(
        summary["players"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Benji" && p["id"] == ben_id.as_str()),
        "{summary}"
    );
    // A resume for the whole view (no replay): its players say Benji.
    let mut host = Client::connect(node.addr).await;
    let w = host.resume(&host_token, u64::MAX).await;
    assert_eq!(w["resumed"], false, "{w}");
    assert!(has_benji(&w["view"]), "{w}");
    node.kill().await;
}

/// A games folder with the shipped games and `roster.lua`.
fn games_with_roster() -> tempfile::TempDir {
    let games = common::games_dir_with_shipped();
    std::fs::write(games.path().join("roster.lua"), ROSTER).unwrap();
    games
}

fn results_path(session: &str, csv: bool) -> String {
    let format = if csv { "?format=csv" } else { "" };
    format!("/api/sessions/{session}/results{format}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_results_are_downloadable_during_the_game_and_kept_across_a_restart() {
    let games = games_with_roster();
    let data = tempfile::tempdir().unwrap();
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let (status, body) = http(
        node.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"game": "roster", "names": "generated"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let (session, code, host_token) = (
        s(&created, "session"),
        s(&created, "code"),
        s(&created, "host_token"),
    );
    let mut host = Client::connect(node.addr).await;
    assert_eq!(host.resume(&host_token, 0).await["type"], "welcome");
    let mut ana = Client::connect(node.addr).await;
    let w = ana.join(&code, "Ana Lopez").await;
    let ana_name = s(&w["player"], "name");
    assert!(generated(&ana_name), "{ana_name}");

    // Nothing reported yet.
    let (status, _) = http(node.addr, "GET", &results_path(&session, false), None).await;
    assert_eq!(status, 409);
    assert_eq!(ana.act(&session, "point", json!({})).await["type"], "ack");
    assert_eq!(host.act(&session, "report", json!({})).await["type"], "ack");
    let check = |body: &str, score: i64, finished: bool| {
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["final"], finished, "{v}");
        assert_eq!(v["results"]["rows"][0]["real_name"], "Ana Lopez", "{v}");
        assert_eq!(v["results"]["rows"][0]["score"], score, "{v}");
    };
    let (status, body) = http(node.addr, "GET", &results_path(&session, false), None).await;
    assert_eq!(status, 200, "{body}");
    check(&body, 1, false);
    let (status, csv) = get(
        node.addr,
        &format!("/api/sessions/{session}/results?format=csv&token={host_token}"),
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(
        csv,
        format!("\"name\",\"real_name\",\"score\"\r\n\"{ana_name}\",\"Ana Lopez\",\"1\"\r\n")
    );

    node.kill().await;
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let (status, body) = http(node.addr, "GET", &results_path(&session, false), None).await;
    assert_eq!(status, 200, "{body}");
    check(&body, 1, false);

    // After the restart: the generated name is kept, and the end comes.
    let mut ana = Client::connect(node.addr).await;
    // Ana's token came with her welcome before the restart.
    let token = s(&w, "token");
    let back = ana.resume(&token, 0).await;
    assert_eq!(back["player"]["name"], ana_name.as_str());
    assert_eq!(ana.act(&session, "point", json!({})).await["type"], "ack");
    let mut host = Client::connect(node.addr).await;
    assert_eq!(host.resume(&host_token, 0).await["type"], "welcome");
    assert_eq!(host.act(&session, "finish", json!({})).await["type"], "ack");
    let theirs = ana.recv_type("ended").await;
    let mine = host.recv_type("ended").await;
    assert_eq!(theirs["seq"], mine["seq"]);
    assert!(
        theirs["results"]["rows"][0].get("real_name").is_none(),
        "{theirs}"
    );
    assert_eq!(mine["results"]["rows"][0]["real_name"], "Ana Lopez");
    let (status, body) = http(node.addr, "GET", &results_path(&session, false), None).await;
    assert_eq!(status, 200);
    check(&body, 2, true);
    // The split `ended` is stored as two messages of one seq: a resume after
    // another restart replays the student's own.
    let ended_seq = theirs["seq"].as_u64().unwrap();
    node.kill().await;
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut ana = Client::connect(node.addr).await;
    let w = ana.resume(&token, ended_seq - 1).await;
    assert_eq!(w["resumed"], true, "{w}");
    let replayed = ana.recv_type("ended").await;
    assert_eq!(replayed["seq"].as_u64(), Some(ended_seq));
    assert!(
        replayed["results"]["rows"][0].get("real_name").is_none(),
        "{replayed}"
    );
    let mut host = Client::connect(node.addr).await;
    let w = host.resume(&host_token, ended_seq - 1).await;
    assert_eq!(w["resumed"], true, "{w}");
    let replayed = host.recv_type("ended").await;
    assert_eq!(replayed["results"]["rows"][0]["real_name"], "Ana Lopez");
    node.kill().await;
}

/// Resumes on `addr` until the session answers there (after a failover).
async fn resume_on(addr: SocketAddr, token: &str) -> (Client, Value) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = Client::connect(addr).await;
        let w = c.resume(token, 0).await;
        if w["type"] == "welcome" {
            return (c, w);
        }
        assert_eq!(w["code"], "unavailable", "{w}");
        assert!(Instant::now() < deadline, "no failover: {w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_a_rename_and_a_report_survive_the_owner_dying() {
    let games = games_with_roster();
    let nodes = TwoNodes::start(games.path(), &[]).await;
    let (a, b) = (nodes.a, nodes.b);

    let mut host = Client::connect(a.addr).await;
    let w = host_generated(&mut host, "roster").await;
    let (session, code, host_token) = (s(&w, "session"), s(&w, "code"), s(&w, "token"));
    // Bob is on the other node: his join and the rename travel through Redis.
    let mut bob = Client::connect(b.addr).await;
    let w = bob.join(&code, "Bob Real").await;
    let (bob_id, bob_token) = (s(&w["player"], "id"), s(&w, "token"));
    let r = host
        .act(
            &session,
            "rename",
            json!({"player": bob_id, "name": "Captain Kiwi"}),
        )
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    let renamed = bob.recv_type("renamed").await;
    assert_eq!(renamed["player"]["name"], "Captain Kiwi");
    assert_eq!(host.act(&session, "report", json!({})).await["type"], "ack");

    a.kill().await;
    // B takes the session over: the report and the new name are there.
    let (_bob, w) = resume_on(b.addr, &bob_token).await;
    assert_eq!(w["player"]["name"], "Captain Kiwi", "{w}");
    let (status, body) = http(b.addr, "GET", &results_path(&session, false), None).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["final"], false);
    assert_eq!(v["results"]["rows"][0]["name"], "Captain Kiwi");
    assert_eq!(v["results"]["rows"][0]["real_name"], "Bob Real");
    let (_host, w) = resume_on(b.addr, &host_token).await;
    assert_eq!(w["role"], "host");
    b.kill().await;
}

/// `recess test` starts sessions with generated names for a game's own tests.
#[test]
fn a_game_test_can_start_a_session_with_generated_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roster.lua"), ROSTER).unwrap();
    std::fs::write(
        dir.path().join("roster_test.lua"),
        r#"
test("students are shown generated names, the game gets the typed ones", function()
  local s = session("roster", nil, { names = "generated" })
  local ana = s:join("Ana Lopez")
  expect(ana.name == "Ana Lopez").to_be(false)
  expect(s:view(ana).text).to_be("You are " .. ana.name)
  expect(s:act(s.host, "report")).to_be(true)
  local ok = s:act(s.host, "finish")
  expect(ok).to_be(true)
end)

test("typed names are the default", function()
  local s = session("roster")
  expect(s:join("Ana Lopez").name).to_be("Ana Lopez")
end)
"#,
    )
    .unwrap();
    let out = common::recess_in(dir.path(), &["test", "."]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 passed, 0 failed"), "{text}");
}

/// Renames wait in the call until it ends: a loop of them meets the limit
/// of what one call may emit, and the call is rolled back.
#[tokio::test]
async fn a_loop_of_renames_meets_the_call_output_limit() {
    const LOOP: &str = r#"
return {
  init = function() return {} end,
  action = function(state, ctx, player, name, data)
    ctx.rename(data.player, "Bob")
    -- Each call counts what it keeps, a refused one too: a long id fills
    -- the call's 1 MiB in a few calls.
    local long = string.rep("x", 60000)
    for i = 1, 100 do ctx.rename(long, "Bob") end
  end,
  view = function(state, player) return { text = player.name } end,
}
"#;
    let server = TestServer::with_games(&[("loop.lua", LOOP)]).await;
    let mut host = server.client().await;
    let w = host.host("loop", json!({})).await;
    let (session, code) = (s(&w, "session"), s(&w, "code"));
    let mut ana = server.client().await;
    let id = s(&ana.join(&code, "Ana").await["player"], "id");
    let r = host.act(&session, "go", json!({"player": id})).await;
    assert_eq!(r["code"], "script_error", "{r}");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("ctx.rename: this call's messages, timers, renames and results come to"),
        "{message}"
    );
    let mut again = server.client().await;
    let w = again.resume(&s(&ana.log[0], "token"), u64::MAX).await;
    assert_eq!(w["player"]["name"], "Ana", "nothing was renamed: {w}");
    server.stop().await;
}
