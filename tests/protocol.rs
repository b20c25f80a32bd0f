//! Protocol v1 over real WebSockets: every frame type and every error path.

mod common;

use common::{Client, TestServer, chat_with_host, http};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_join_action_ack_and_shared_order() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    let welcome = &host.log[0];
    assert_eq!(welcome["role"], "host");
    assert_eq!(welcome["game"], "chat");
    assert!(welcome["token"].as_str().unwrap().len() > 20);
    assert_eq!(welcome["view"]["title"], "Room 4");

    let mut ana = server.client().await;
    let w = ana.join(&code, "  Ana  ").await;
    assert_eq!(w["role"], "player");
    assert_eq!(w["player"]["name"], "Ana", "names are trimmed");
    assert!(w.get("code").is_none(), "players do not get the code field");

    let ack = ana.act(&session, "send", json!({"text": "hello"})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["session"], session.as_str());

    let at_ana = ana
        .recv_until(|v| v["type"] == "event" && v["name"] == "message")
        .await;
    let at_host = host
        .recv_until(|v| v["type"] == "event" && v["name"] == "message")
        .await;
    assert_eq!(
        at_ana["seq"], at_host["seq"],
        "a broadcast is one message with one seq"
    );
    assert_eq!(at_ana["data"]["text"], "hello");
    assert_eq!(at_ana["data"]["from"], "Ana");

    // The views follow through merge patches.
    let view = host
        .wait_view(&session, |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 1)
        })
        .await;
    assert_eq!(view["messages"][0]["text"], "hello");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_socket_stays_usable() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;

    host.send_text("{not json".into()).await;
    assert_eq!(host.recv().await["code"], "bad_json");
    host.send(json!({"type": "teleport"})).await;
    let e = host.recv().await;
    assert_eq!(e["code"], "unknown_type");
    assert!(e["message"].as_str().unwrap().contains("teleport"));
    host.send(json!({"type": "join", "name": "x"})).await;
    let e = host.recv().await;
    assert_eq!(e["code"], "bad_frame");
    assert!(e["message"].as_str().unwrap().contains("code"), "{e}");
    host.send(json!({"no_type": 1})).await;
    assert_eq!(host.recv().await["code"], "bad_frame");
    host.send_text(format!(
        r#"{{"type":"action","session":"{session}","name":"send","data":{{"text":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    ))
    .await;
    let e = host.recv().await;
    assert_eq!(e["code"], "too_large", "{e}");

    // Still usable.
    let ack = host
        .act(&session, "send", json!({"text": "still here"}))
        .await;
    assert_eq!(ack["type"], "ack");

    let mut other = server.client().await;
    other
        .send(json!({"type": "join", "code": "000000", "name": "Bo"}))
        .await;
    let e = other.recv().await;
    if code != "000000" {
        assert_eq!(e["code"], "unknown_code");
    }
    other
        .send(json!({"type": "join", "code": code, "name": "   "}))
        .await;
    assert_eq!(other.recv().await["code"], "name_invalid");
    other
        .send(json!({"type": "join", "code": code, "name": "x".repeat(25)}))
        .await;
    assert_eq!(other.recv().await["code"], "name_invalid");
    other.join(&code, "Bo").await;
    let mut twin = server.client().await;
    twin.send(json!({"type": "join", "code": code, "name": "bo"}))
        .await;
    assert_eq!(twin.recv().await["code"], "name_taken");

    // An action on a session this socket is not in.
    let e = twin.act(&session, "send", json!({"text": "sneaky"})).await;
    assert_eq!(e["code"], "not_member");
    assert_eq!(e["session"], session.as_str());

    // A refusal from the rules.
    let e = other.act(&session, "send", json!({"text": ""})).await;
    assert_eq!(e["code"], "refused");
    assert!(e["message"].as_str().unwrap().contains("empty"), "{e}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_far_above_the_limit_close_with_1009() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    // The server may close (1009) before the client finished writing; then
    // the client's write fails and the close frame can be lost to a reset.
    let sent = c.try_send_text("x".repeat(2 << 20)).await;
    let close = c.wait_close().await;
    if sent {
        assert_eq!(close, Some(1009));
    } else {
        assert!(matches!(close, None | Some(1009)), "{close:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_forever_gets_the_socket_closed() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    for _ in 0..20 {
        c.send_text("garbage".into()).await;
    }
    // More garbage while the server closes: these may meet a closed socket.
    for _ in 0..10 {
        let _ = c.try_send_text("garbage".into()).await;
    }
    for _ in 0..20 {
        assert_eq!(c.recv().await["code"], "bad_json");
    }
    assert_eq!(
        c.wait_close().await,
        Some(1008),
        "closed after 20 bad frames in a row"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_rate_limited() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut codes = Vec::new();
    for i in 0..7 {
        c.send(json!({"type": "join", "code": format!("99999{i}"), "name": "Eve"}))
            .await;
        codes.push(c.recv().await["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(&codes[..5], ["unknown_code"; 5]);
    assert_eq!(codes[5], "rate_limited");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_runs_the_leave_handler() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;
    ana.send(json!({"type": "leave", "session": session})).await;
    let left = host
        .recv_until(|v| v["type"] == "event" && v["name"] == "left")
        .await;
    assert_eq!(left["data"]["name"], "Ana");
    let e = ana.act(&session, "send", json!({"text": "hi"})).await;
    assert_eq!(e["code"], "not_member");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_in_two_sessions() {
    let server = TestServer::start().await;
    let (mut host, chat, chat_code) = chat_with_host(&server).await;
    let quiz = host.host("quiz", json!({})).await;
    let quiz_id = quiz["session"].as_str().unwrap().to_owned();
    assert_ne!(quiz_id, chat);

    let mut ana = server.client().await;
    ana.join(&chat_code, "Ana").await;
    ana.join(quiz["code"].as_str().unwrap(), "Ana").await;
    let ack = ana.act(&chat, "send", json!({"text": "in chat"})).await;
    assert_eq!(ack["type"], "ack");
    let e = ana.act(&quiz_id, "start", json!({})).await;
    assert_eq!(e["code"], "refused", "students cannot start the quiz: {e}");
    let ack = host.act(&quiz_id, "start", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let q = ana.wait_view(&quiz_id, |v| v["choices"].is_array()).await;
    assert_eq!(q["choices"].as_array().unwrap().len(), 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_what_was_missed() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    let mut ana = server.client().await;
    let w = ana.join(&code, "Ana").await;
    let token = w["token"].as_str().unwrap().to_owned();
    let joined_at = w["seq"].as_u64().unwrap();
    ana.act(&session, "send", json!({"text": "before"})).await;
    ana.recv_until(|v| v["name"] == "message").await;
    let view_before = ana.wait_view(&session, |v| v["messages"].is_array()).await;
    let last_seq = ana.last_seq[&session];
    ana.close().await;

    for i in 0..3 {
        host.act(&session, "send", json!({"text": format!("missed {i}")}))
            .await;
    }
    let host_messages: Vec<Value> = host
        .log
        .iter()
        .filter(|v| {
            v["type"] == "event" && v["name"] == "message" && v["seq"].as_u64().unwrap() > last_seq
        })
        .cloned()
        .collect();
    // Wait until the host saw all three, so the session has sent them.
    while host.log.iter().filter(|v| v["name"] == "message").count() < 4 {
        host.recv().await;
    }

    let mut back = server.client().await;
    back.views.insert(session.clone(), view_before.clone());
    back.last_seq.insert(session.clone(), last_seq);
    back.send(json!({"type": "resume", "token": token, "last_seq": last_seq}))
        .await;
    let w = back.recv().await;
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["resumed"], true);
    assert!(w.get("view").is_none());
    let mut texts = Vec::new();
    let final_view = back
        .wait_view(&session, |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 4)
        })
        .await;
    for v in &back.log {
        if v["name"] == "message" {
            texts.push(v["data"]["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(texts, ["missed 0", "missed 1", "missed 2"]);
    assert_eq!(final_view["messages"][3]["text"], "missed 2");
    let _ = host_messages;

    // From the very start of the seat: everything addressed to Ana again.
    let mut again = server.client().await;
    again
        .send(json!({"type": "resume", "token": token, "last_seq": joined_at}))
        .await;
    let w = again.recv().await;
    assert_eq!(w["resumed"], true);
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        let v = again.recv().await;
        if v["name"] == "message" {
            replayed.push(v["data"]["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(replayed, ["before", "missed 0", "missed 1", "missed 2"]);

    // Before the seat existed there is no view to patch: a full view.
    let mut fresh = server.client().await;
    fresh
        .send(json!({"type": "resume", "token": token, "last_seq": 0}))
        .await;
    let w = fresh.recv().await;
    assert_eq!(w["resumed"], false);
    assert_eq!(w["view"]["messages"].as_array().unwrap().len(), 4);

    // Before the seat existed there is no view to patch: a full view.
    let mut fresh = server.client().await;
    fresh
        .send(json!({"type": "resume", "token": token, "last_seq": 0}))
        .await;
    let w = fresh.recv().await;
    assert_eq!(w["resumed"], false);
    assert_eq!(w["view"]["messages"].as_array().unwrap().len(), 4);

    let mut bad = server.client().await;
    bad.send(json!({"type": "resume", "token": format!("{session}.nobody.x"), "last_seq": 0}))
        .await;
    assert_eq!(bad.recv().await["code"], "bad_token");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_routes() {
    let server = TestServer::start().await;
    let (status, body) = http(server.addr, "GET", "/api/games", None).await;
    assert_eq!(status, 200);
    let games: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = games["games"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"quiz") && names.contains(&"chat"),
        "{names:?}"
    );

    let (status, body) = http(
        server.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"game": "chat"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let session = created["session"].as_str().unwrap().to_owned();

    let mut host = server.client().await;
    host.send(json!({"type": "resume", "token": created["host_token"], "last_seq": 0}))
        .await;
    let w = host.recv().await;
    assert_eq!(w["role"], "host");
    assert_eq!(w["resumed"], false);
    assert_eq!(w["code"], created["code"]);

    let (status, _) = http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": "announce", "data": {"text": "fire drill at 10"}})),
    )
    .await;
    assert_eq!(status, 200);
    let m = host.recv_until(|v| v["type"] == "event").await;
    assert_eq!(m["data"]["text"], "fire drill at 10");

    // `event` refuses with `false, "reason"` as `action` does: the REST
    // caller gets 409 and the reason, and nothing reaches the members.
    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/events"),
        Some(&json!({"name": "shout", "data": {"text": "x"}})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("refused"), "{body}");
    assert!(body.contains("unknown event 'shout'"), "{body}");

    let (status, body) = http(
        server.addr,
        "POST",
        &format!("/api/sessions/{session}/broadcast"),
        Some(&json!({"name": "ping", "data": {"n": 1}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let m = host
        .recv_until(|v| v["type"] == "event" && v["name"] == "ping")
        .await;
    assert_eq!(m["data"]["n"], 1);

    let (status, body) = http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["game"], "chat");
    assert_eq!(summary["players"][0]["role"], "host");

    let (status, _) = http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}/results"),
        None,
    )
    .await;
    assert_eq!(status, 409, "no results before the end");
    let (status, body) = http(server.addr, "GET", "/api/sessions/nope", None).await;
    assert_eq!(status, 404);
    assert!(body.contains("unknown_session"));
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"game": "nope"})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(body.contains("unknown_game"));
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"gam": 1})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(server.addr, "GET", "/healthz", None).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http(server.addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("recess_sessions_live 1"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_beyond_the_window_gets_a_full_view() {
    let server =
        TestServer::start_in(common::games_dir_with_shipped(), |c| c.replay_window = 3).await;
    let (mut host, session, code) = chat_with_host(&server).await;
    let mut ana = server.client().await;
    let token = ana.join(&code, "Ana").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let last_seq = ana.last_seq[&session];
    ana.close().await;
    for i in 0..5 {
        host.act(&session, "send", json!({"text": format!("m{i}")}))
            .await;
    }
    let mut back = server.client().await;
    back.send(json!({"type": "resume", "token": token, "last_seq": last_seq}))
        .await;
    let w = back.recv().await;
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["resumed"], false, "never a partial replay");
    let view = back
        .wait_view(&session, |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 5)
        })
        .await;
    assert_eq!(view["messages"][4]["text"], "m4");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_player_is_told_and_cannot_come_back_with_the_token() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    let mut eve = server.client().await;
    let w = eve.join(&code, "Eve").await;
    let eve_id = w["player"]["id"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let ack = host.act(&session, "kick", json!({"player": eve_id})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let kicked = eve.recv_until(|v| v["type"] == "error").await;
    assert_eq!(kicked["code"], "kicked");
    assert!(kicked["seq"].as_u64().is_some());
    let e = eve
        .act(&session, "send", json!({"text": "let me in"}))
        .await;
    assert_eq!(e["code"], "not_member");
    let mut again = server.client().await;
    again
        .send(json!({"type": "resume", "token": token, "last_seq": 0}))
        .await;
    assert_eq!(again.recv().await["code"], "bad_token");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_sockets_with_1001() {
    let server = TestServer::start().await;
    let (mut host, _, _) = chat_with_host(&server).await;
    let stop = tokio::spawn(server.stop());
    let close = host.wait_close().await;
    assert_eq!(close, Some(1001));
    stop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_game_serves_its_own_client_files() {
    let init = "return { init = function() return {} end, view = function() return {} end }";
    let server = TestServer::with_games(&[
        ("space/init.lua", init),
        ("space/client.html", "<h1>v1</h1>"),
    ])
    .await;
    let (status, body) = http(server.addr, "GET", "/api/games", None).await;
    assert_eq!(status, 200);
    let games: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(games["games"][0]["client"], true);
    let (status, body) = http(server.addr, "GET", "/custom/space/client.html", None).await;
    assert_eq!((status, body.as_str()), (200, "<h1>v1</h1>"));
    // Saved files are served at once, like the rules.
    std::fs::write(server.games.path().join("space/client.html"), "<h1>v2</h1>").unwrap();
    let (_, body) = http(server.addr, "GET", "/custom/space/client.html", None).await;
    assert_eq!(body, "<h1>v2</h1>");
    // Only plain files of the game's own folder.
    for path in [
        "/custom/space/init.lua",
        "/custom/space/..%2Finit.lua",
        "/custom/space/../space/client.html",
        "/custom/../games/space/client.html",
        "/custom/space/.hidden.html",
    ] {
        let (status, _) = http(server.addr, "GET", path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_join_gets_the_seat_whose_welcome_was_lost() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    // The first attempt's answer is lost: the socket goes away unread.
    let mut lost = server.client().await;
    lost.send(json!({"type": "join", "code": code, "name": "Ana", "nonce": "n-123-0123456789ab"}))
        .await;
    host.recv_until(|v| v["name"] == "joined" && v["data"]["name"] == "Ana")
        .await;
    lost.close().await;

    let mut retry = server.client().await;
    let w = loop {
        retry
            .send(
                json!({"type": "join", "code": code, "name": "Ana", "nonce": "n-123-0123456789ab"}),
            )
            .await;
        let w = retry
            .recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await;
        // Until the session has seen the lost socket go, the seat is not
        // handed to another one: the client is told to try again.
        if w["code"] == "unavailable" {
            let wait = w["retry_after_ms"].as_u64().expect("a retry time");
            tokio::time::sleep(std::time::Duration::from_millis(wait.min(200))).await;
            continue;
        }
        break w;
    };
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["player"]["name"], "Ana");
    assert!(w["view"].is_object(), "a full view: {w}");
    assert_eq!(
        retry.act(&session, "send", json!({"text": "hi"})).await["type"],
        "ack"
    );

    // Same name, another nonce: someone else.
    let mut other = server.client().await;
    other
        .send(json!({"type": "join", "code": code, "name": "ana", "nonce": "n-999-0123456789ab"}))
        .await;
    assert_eq!(other.recv().await["code"], "name_taken");
    let view = host
        .wait_view(&session, |v| {
            v["players"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["name"] == "Ana"))
        })
        .await;
    let anas = view["players"]
        .as_array()
        .map(|p| p.iter().filter(|x| x["name"] == "Ana").count())
        .unwrap_or(0);
    assert_eq!(anas, 1, "one seat, not two: {view}");
    server.stop().await;
}

/// `ctx.players()` follows joins, refused joins, disconnects, resumes,
/// leaves and kicks, in join order (the list is kept up to date seat by seat).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctx_players_follows_every_change_of_membership() {
    const ROSTER: &str = r#"
return {
  init = function(ctx) return { roster = "" } end,
  join = function(state, ctx, player)
    if player.name == "Nobody" then return false, "not that name" end
  end,
  action = function(state, ctx, player, name, data)
    if name == "look" then
      local names = {}
      for _, p in ipairs(ctx.players()) do
        names[#names + 1] = p.name .. (p.connected and "+" or "-")
      end
      state.roster = table.concat(names, " ")
    elseif name == "kick" then
      ctx.kick(data.id, "bye")
    end
  end,
  view = function(state, player) return { roster = state.roster } end,
}
"#;
    let server = TestServer::with_games(&[("roster.lua", ROSTER)]).await;
    let mut host = server.client().await;
    let w = host.host("roster", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for name in ["Ana", "Ben", "Cy"] {
        let mut c = server.client().await;
        let w = c.join(&code, name).await;
        ids.push(w["player"]["id"].as_str().unwrap().to_owned());
        tokens.push(w["token"].as_str().unwrap().to_owned());
        clients.push(c);
    }
    let mut nobody = server.client().await;
    nobody
        .send(json!({"type": "join", "code": code, "name": "Nobody"}))
        .await;
    assert_eq!(nobody.recv().await["code"], "refused");

    // Asks the game to read `ctx.players()` until the roster is `want`: a
    // disconnect reaches the session a moment after the socket closes.
    async fn roster_becomes(host: &mut Client, session: &str, want: &str) {
        let mut seen = String::new();
        for _ in 0..200 {
            let answer = host.act(session, "look", json!({})).await;
            if answer["code"] == "rate_limited" {
                let wait = answer["retry_after_ms"].as_u64().expect("a retry time");
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                continue;
            }
            assert_eq!(answer["type"], "ack", "{answer}");
            let view = host
                .wait_view(session, |v| {
                    v["roster"].as_str().is_some_and(|r| !r.is_empty())
                })
                .await;
            seen = view["roster"].as_str().unwrap_or_default().to_owned();
            if seen == want {
                return;
            }
        }
        panic!("the roster stayed {seen:?}, expected {want:?}");
    }
    roster_becomes(&mut host, &session, "Host+ Ana+ Ben+ Cy+").await;

    let ben = clients.remove(1);
    ben.close().await;
    roster_becomes(&mut host, &session, "Host+ Ana+ Ben- Cy+").await;

    let mut ben = server.client().await;
    let w = ben.resume(&tokens[1], 0).await;
    assert_eq!(w["type"], "welcome", "{w}");
    roster_becomes(&mut host, &session, "Host+ Ana+ Ben+ Cy+").await;

    clients[0]
        .send(json!({"type": "leave", "session": session}))
        .await;
    roster_becomes(&mut host, &session, "Host+ Ben+ Cy+").await;

    let ack = host.act(&session, "kick", json!({"id": ids[2]})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    roster_becomes(&mut host, &session, "Host+ Ben+").await;

    let mut dee = server.client().await;
    dee.join(&code, "Dee").await;
    roster_becomes(&mut host, &session, "Host+ Ben+ Dee+").await;
    server.stop().await;
}
