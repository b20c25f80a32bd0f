//! Backends as members: a bot joins over the WebSocket with an API key,
//! gets what the rules send it, acts, resumes, and is not a player.

mod common;

use common::cluster::TwoNodes;
use common::{API_KEY, Client, TestServer, chat_with_host, games_dir_with_shipped, http, summary};
use serde_json::{Value, json};

/// A game with room for one player whose actions show everyone the members
/// as `ctx.players()` lists them.
const ROLL_CALL: &str = r#"
return {
  max_players = 1,
  init = function(ctx) return {} end,
  action = function(state, ctx, player, name)
    state.last = player.role .. ":" .. name
    state.members = {}
    for _, p in ipairs(ctx.players()) do state.members[#state.members + 1] = p.name .. "=" .. p.role end
  end,
  view = function(state, player)
    return { members = state.members, me = player.role, last = state.last }
  end,
}
"#;

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

/// A chat with its host, Ana, and a bot called Helper.
struct Room {
    _host: Client,
    session: String,
    ana: Client,
    bot: Client,
    /// The bot's welcome.
    welcome: Value,
}

impl Room {
    async fn start(server: &TestServer) -> Room {
        let (host, session, code) = chat_with_host(server).await;
        let mut ana = server.client().await;
        ana.join(&code, "Ana").await;
        let mut bot = server.client().await;
        let welcome = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
        Room {
            _host: host,
            session,
            ana,
            bot,
            welcome,
        }
    }
}

#[tokio::test]
async fn a_bot_joins_with_an_api_key_chats_and_is_marked_as_a_bot() {
    let server = TestServer::start().await;
    let Room {
        session,
        mut ana,
        mut bot,
        welcome: w,
        ..
    } = Room::start(&server).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["role"], "bot");
    assert_eq!(w["player"]["role"], "bot");
    assert!(
        w.get("code").is_none(),
        "only the host is told the code: {w}"
    );

    // What others do reaches the bot; what the bot does reaches the others.
    ana.act(&session, "send", json!({"text": "what time is it?"}))
        .await;
    let heard = bot
        .recv_until(|v| v["type"] == "event" && v["name"] == "message")
        .await;
    assert_eq!(heard["data"]["text"], "what time is it?");
    let ack = bot
        .act(&session, "send", json!({"text": "It is noon."}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let reply = ana
        .recv_until(|v| v["type"] == "event" && v["data"]["text"] == "It is noon.")
        .await;
    assert_eq!(reply["data"]["from"], "Helper");
    let view = ana
        .wait_view(&session, |v| {
            v["players"].as_array().is_some_and(|p| p.len() == 3)
        })
        .await;
    let helper = view["players"]
        .as_array()
        .and_then(|p| p.iter().find(|m| m["name"] == "Helper"))
        .cloned()
        .expect("the bot is listed");
    assert_eq!(helper["detail"], "bot");

    // The session's summary lists it with its role.
    let summary = summary(server.addr, &session).await;
    let roles: Vec<_> = summary["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["name"].as_str().unwrap(),
                p["role"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(roles, ["Host=host", "Ana=player", "Helper=bot"]);
    server.stop().await;
}

#[tokio::test]
async fn joining_as_a_bot_needs_the_api_key() {
    let server = TestServer::start().await;
    let (_host, _session, code) = chat_with_host(&server).await;
    let mut student = server.client().await;
    let missing = student.join_bot(&code, "Sneaky", None).await;
    assert_eq!(missing["code"], "unauthorized", "{missing}");
    let wrong = student.join_bot(&code, "Sneaky", Some("not-the-key")).await;
    assert_eq!(wrong["code"], "unauthorized", "{wrong}");
    // Nor can a join claim to be the host.
    student
        .send(json!({"type": "join", "code": code, "name": "Boss", "role": "host"}))
        .await;
    let host = student.recv_type("error").await;
    assert_eq!(host["code"], "bad_frame", "{host}");
    // Wrong keys count as wrong codes do: the connection is slowed down.
    let mut last = Value::Null;
    for _ in 0..6 {
        last = student.join_bot(&code, "Sneaky", Some("guess")).await;
    }
    assert_eq!(last["code"], "rate_limited", "{last}");
    // With the key, the same code lets a bot in.
    let mut bot = server.client().await;
    let w = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
    assert_eq!(w["role"], "bot", "{w}");
    server.stop().await;
}

#[tokio::test]
async fn a_node_without_api_keys_refuses_bots() {
    let server = TestServer::start_in(games_dir_with_shipped(), |c| c.api_key = None).await;
    let (_host, _session, code) = chat_with_host(&server).await;
    let mut bot = server.client().await;
    let w = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
    assert_eq!(w["code"], "forbidden", "{w}");
    server.stop().await;
}

#[tokio::test]
async fn a_bot_is_not_a_player_but_the_rules_see_it_with_its_role() {
    let server = TestServer::with_games(&[("roll.lua", ROLL_CALL)]).await;
    let mut host = server.client().await;
    let w = host.host("roll", json!({})).await;
    let (session, code) = (text(&w, "session"), text(&w, "code"));
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;
    // max_players = 1: Ana fills the game, yet a bot still gets in.
    let mut ben = server.client().await;
    ben.send(json!({"type": "join", "code": code, "name": "Ben"}))
        .await;
    assert_eq!(ben.recv_type("error").await["code"], "session_full");
    let mut bot = server.client().await;
    let w = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["view"]["me"], "bot");
    let ack = bot.act(&session, "poke", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let view = ana.wait_view(&session, |v| v["last"] == "bot:poke").await;
    assert_eq!(
        view["members"],
        json!(["Host=host", "Ana=player", "Helper=bot"])
    );
    // A session seats at most 16 bots.
    let mut bots = Vec::new();
    for i in 1..16 {
        let mut c = server.client().await;
        let w = c
            .join_bot(&code, &format!("Bot {i:02}"), Some(API_KEY))
            .await;
        assert_eq!(w["type"], "welcome", "{w}");
        bots.push(c);
    }
    let mut extra = server.client().await;
    let w = extra.join_bot(&code, "One Too Many", Some(API_KEY)).await;
    assert_eq!(w["code"], "session_full", "{w}");
    server.stop().await;
}

#[tokio::test]
async fn a_bot_keeps_the_name_its_backend_gave_where_names_are_generated() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    host.send(json!({"type": "host", "game": "chat", "params": {}, "names": "generated"}))
        .await;
    let w = host.recv_type("welcome").await;
    let code = text(&w, "code");
    let mut ana = server.client().await;
    let student = ana.join(&code, "Ana").await;
    assert_ne!(
        student["player"]["name"], "Ana",
        "students get generated names"
    );
    let mut bot = server.client().await;
    let w = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
    assert_eq!(w["player"]["name"], "Helper", "{w}");
    server.stop().await;
}

#[tokio::test]
async fn a_bot_resumes_and_gets_what_it_missed() {
    let server = TestServer::start().await;
    let Room {
        session,
        mut ana,
        bot,
        welcome: w,
        ..
    } = Room::start(&server).await;
    let token = text(&w, "token");
    let seen = *bot.last_seq.get(&session).unwrap();
    bot.close().await;
    ana.act(&session, "send", json!({"text": "are you there?"}))
        .await;
    let mut back = server.client().await;
    let w = back.resume(&token, seen).await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["role"], "bot");
    let missed = back
        .recv_until(|v| v["type"] == "event" && v["name"] == "message")
        .await;
    assert_eq!(missed["data"]["text"], "are you there?");
    server.stop().await;
}

/// The session lives on node a; the bot and the grading service talk to
/// node b only.
#[tokio::test]
async fn a_bot_and_a_rest_push_reach_a_session_owned_by_the_other_node() {
    let games = games_dir_with_shipped();
    let nodes = TwoNodes::start(games.path(), &[]).await;
    let (a, b) = (nodes.a, nodes.b);

    let mut host = Client::connect(a.addr).await;
    let w = host.host("chat", json!({})).await;
    let (session, code) = (text(&w, "session"), text(&w, "code"));
    let mut bot = Client::connect(b.addr).await;
    let w = bot.join_bot(&code, "Helper", Some(API_KEY)).await;
    assert_eq!(w["role"], "bot", "{w}");
    let ack = bot
        .act(&session, "send", json!({"text": "Hello from b"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    host.recv_until(|v| v["type"] == "event" && v["data"]["text"] == "Hello from b")
        .await;

    let (status, body) = http(
        b.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": "announce", "data": {"text": "Grades are in", "from": "Grader"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for c in [&mut host, &mut bot] {
        let e = c
            .recv_until(|v| v["type"] == "event" && v["data"]["text"] == "Grades are in")
            .await;
        assert_eq!(e["data"]["from"], "Grader");
    }
    let summary = summary(b.addr, &session).await;
    assert!(
        summary["owner"].as_str().unwrap().starts_with("a-"),
        "{summary}"
    );
    a.kill().await;
    b.kill().await;
}
