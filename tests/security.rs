//! The rules of docs/security.md, each tried the way a curious student or an
//! attacker on the classroom network would, and the normal class that they
//! must never get in the way of.

mod common;

use std::time::Duration;

use common::{API_KEY, Client, TestServer, chat_with_host, http, http_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn bearer(key: &str) -> String {
    format!("Authorization: {key}\r\nContent-Type: application/json\r\n")
}

/// Reads until the server closes the connection; `false` if it is still
/// open after `within`.
/// `POST /api/sessions` for a chat, with these headers.
async fn create_chat(addr: std::net::SocketAddr, headers: String) -> (u16, String) {
    http_with(
        addr,
        "POST",
        "/api/sessions",
        &headers,
        r#"{"game":"chat"}"#,
    )
    .await
}

async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

// ---- 1, 10, 15, 21, 22: REST ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_api_key_the_session_routes_are_off() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| c.api_key = None).await;
    let (_host, session, _) = chat_with_host(&server).await;
    let routes = [
        ("GET", format!("/api/sessions/{session}"), ""),
        (
            "POST",
            format!("/api/sessions/{session}/events"),
            r#"{"name":"start"}"#,
        ),
        (
            "POST",
            format!("/api/sessions/{session}/broadcast"),
            r#"{"name":"reveal","data":{"answer":1}}"#,
        ),
        ("POST", "/api/sessions".to_owned(), r#"{"game":"chat"}"#),
        ("GET", format!("/api/sessions/{session}/results"), ""),
        ("GET", "/metrics".to_owned(), ""),
    ];
    for (method, path, body) in &routes {
        // A student who read the session id from their own welcome.
        let (status, answer) =
            http_with(server.addr, method, path, &bearer("Bearer guess"), body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["code"], "forbidden");
        assert!(
            answer["message"].as_str().unwrap().contains("--api-key"),
            "the message names the flag: {answer}"
        );
    }
    // What the pages use stays open.
    let (status, _) = http_with(server.addr, "GET", "/api/games", "", "").await;
    assert_eq!(status, 200);
    let (status, _) = http_with(server.addr, "GET", "/host", "", "").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_needed_and_read_as_rfc_says() {
    let server = TestServer::start().await;
    let (_host, session, _) = chat_with_host(&server).await;
    let path = format!("/api/sessions/{session}");
    for wrong in [
        "",
        "Bearer nope",
        "Bearer test-api-ke",
        "Basic test-api-key",
    ] {
        let headers = if wrong.is_empty() {
            String::new()
        } else {
            bearer(wrong)
        };
        let (status, body) = http_with(server.addr, "GET", &path, &headers, "").await;
        assert_eq!(status, 401, "{wrong:?}: {body}");
    }
    // The scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, body) = http_with(
            server.addr,
            "GET",
            &path,
            &bearer(&format!("{scheme} {API_KEY}")),
            "",
        )
        .await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    // `/metrics` is behind the same key.
    let (status, _) = http_with(server.addr, "GET", "/metrics", "", "").await;
    assert_eq!(status, 401);
    let (status, body) = http(server.addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(body.contains("recess_connections_open"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_session_over_rest_takes_the_host_key() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| {
        c.api_key = None;
        c.host_key = Some("teachers-only".into());
    })
    .await;
    let create = |key: &'static str| {
        let headers = if key.is_empty() {
            "Content-Type: application/json\r\n".to_owned()
        } else {
            bearer(key)
        };
        create_chat(server.addr, headers)
    };
    assert_eq!(create("").await.0, 401);
    assert_eq!(create("Bearer wrong").await.0, 401);
    let (status, body) = create("Bearer teachers-only").await;
    assert_eq!(status, 201, "{body}");
    // The host frame asks for the same key.
    let mut c = server.client().await;
    c.send(json!({"type": "host", "game": "chat"})).await;
    assert_eq!(c.recv().await["code"], "unauthorized");
    c.send(json!({"type": "host", "game": "chat", "key": "teachers-only"}))
        .await;
    assert_eq!(c.recv().await["type"], "welcome");
    server.stop().await;
}

/// A session created over REST with the host key counts against the
/// caller's address like a `host` frame; the API key is a backend's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_sessions_made_with_the_host_key_count_per_address() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| {
        c.host_key = Some("teachers-only".into());
        c.max_sessions_per_address = 1;
    })
    .await;
    let create = |key: &str| {
        let headers = format!(
            "Authorization: Bearer {key}\r\nContent-Type: application/json\r\nX-Forwarded-For: 10.0.0.9\r\n"
        );
        create_chat(server.addr, headers)
    };
    assert_eq!(create("teachers-only").await.0, 201);
    let (status, body) = create("teachers-only").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(create(API_KEY).await.0, 201, "a backend is not counted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_must_say_it_is_json() {
    let server = TestServer::start().await;
    let (_host, session, _) = chat_with_host(&server).await;
    let path = format!("/api/sessions/{session}/broadcast");
    // What a cross-site form can send without asking first.
    for kind in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let headers = format!("Authorization: Bearer {API_KEY}\r\nContent-Type: {kind}\r\n");
        let (status, body) =
            http_with(server.addr, "POST", &path, &headers, r#"{"name":"reveal"}"#).await;
        assert_eq!(status, 415, "{kind}: {body}");
    }
    let headers = format!("Authorization: Bearer {API_KEY}\r\n");
    let (status, _) = http_with(server.addr, "POST", &path, &headers, r#"{"name":"x"}"#).await;
    assert_eq!(status, 415, "no Content-Type");
    let headers = format!(
        "Authorization: Bearer {API_KEY}\r\nContent-Type: application/json; charset=utf-8\r\n"
    );
    let (status, _) = http_with(server.addr, "POST", &path, &headers, r#"{"name":"x"}"#).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_results_token_does_not_tell_which_sessions_exist() {
    let server = TestServer::start().await;
    let (_host, session, _) = chat_with_host(&server).await;
    let live = format!("/api/sessions/{session}/results?token={session}.pxxxxxxxx.wrongsecret");
    let gone = "/api/sessions/nosuchsessn/results?token=nosuchsessn.pxxxxxxxx.wrongsecret";
    let (live_status, live_body) = http_with(server.addr, "GET", &live, "", "").await;
    let (gone_status, gone_body) = http_with(server.addr, "GET", gone, "", "").await;
    assert_eq!(live_status, 401, "{live_body}");
    assert_eq!((gone_status, gone_body), (live_status, live_body));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_are_capped_per_node_and_per_address() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| {
        c.max_sessions = 4;
        c.max_sessions_per_address = 2;
    })
    .await;
    let host = |ip: &'static str| {
        let addr = server.addr;
        async move {
            let mut c = Client::connect_as(addr, ip).await;
            c.send(json!({"type": "host", "game": "chat"})).await;
            (c.recv().await, c)
        }
    };
    let mut keep = Vec::new();
    for _ in 0..2 {
        let (w, c) = host("10.0.0.1").await;
        assert_eq!(w["type"], "welcome", "{w}");
        keep.push(c);
    }
    let (refused, _) = host("10.0.0.1").await;
    assert_eq!(refused["code"], "rate_limited", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("end one"));
    // Another address is not held back by the first one's games.
    for _ in 0..2 {
        let (w, c) = host("10.0.0.2").await;
        assert_eq!(w["type"], "welcome", "{w}");
        keep.push(c);
    }
    let (full, _) = host("10.0.0.3").await;
    assert_eq!(full["code"], "overloaded", "the node's own cap: {full}");
    // So does REST.
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"game": "chat"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    server.stop().await;
}

// ---- 2, 8: seats -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_holds_one_seat_per_session_and_gives_it_back_when_it_goes() {
    let server = TestServer::start().await;
    let (_host, session, code) = chat_with_host(&server).await;
    for i in 0..40 {
        let mut c = server.client().await;
        c.join(&code, &format!("Kid{i}")).await;
        c.send(json!({"type": "join", "code": code, "name": format!("Again{i}")}))
            .await;
        let again = c.recv_until(|v| v["type"] == "error").await;
        assert_eq!(again["code"], "already_joined", "{again}");
        c.close().await;
    }
    // Every socket is gone: every seat is free, and no subscription keeps a
    // socket (and its descriptor) alive.
    let summary = |server: &TestServer| {
        let addr = server.addr;
        let path = format!("/api/sessions/{session}");
        async move {
            let (_, body) = http(addr, "GET", &path, None).await;
            serde_json::from_str::<Value>(&body).unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = summary(&server).await;
        let players = s["players"].as_array().unwrap();
        assert_eq!(players.len(), 41, "one seat per join that was let in");
        let connected = players.iter().filter(|p| p["connected"] == true).count();
        let subscribed = server.server.as_ref().unwrap().seats_followed(&session);
        if connected == 1 && subscribed == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{connected} seats still connected, {subscribed} members subscribed"
        );
        tokio::task::yield_now().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_socket_cannot_take_a_classroom_of_seats() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut refused = None;
    for _ in 0..10 {
        c.send(json!({"type": "host", "game": "chat"})).await;
        let w = c
            .recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await;
        if w["type"] == "error" {
            refused = Some(w);
            break;
        }
    }
    let refused = refused.expect("the socket's seats are bounded");
    assert_eq!(refused["code"], "refused");
    assert!(refused["message"].as_str().unwrap().contains("at most 8"));
    server.stop().await;
}

// ---- 3, 4: connections ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_cut_off_and_do_not_lock_the_node_out() {
    let games = common::games_dir_with_shipped();
    let server = TestServer::start_in(games, |c| {
        c.header_timeout_ms = 300;
        c.max_connections = 4;
    })
    .await;
    // Four clients take every place with headers they never finish.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /games HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(5)).await,
            "a half-sent request is closed"
        );
    }
    // A body that trickles in is cut off the same way.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        format!(
            "POST /api/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"game\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    // The places are free again.
    let (status, _) = http(server.addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    server.stop().await;
}

// ---- 7: guessing codes ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_codes_from_one_address_is_stopped_across_reconnects() {
    let server = TestServer::start().await;
    let (_host, _session, code) = chat_with_host(&server).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };
    // Each connection has its own 5 tries; reconnecting used to start afresh.
    let mut refused = None;
    'guess: for _ in 0..40 {
        let mut c = Client::connect_as(server.addr, "10.6.6.6").await;
        for _ in 0..5 {
            c.send(json!({"type": "join", "code": wrong, "name": "x"}))
                .await;
            let e = c.recv().await;
            if e["code"] == "rate_limited" {
                refused = Some(e);
                break 'guess;
            }
            assert_eq!(e["code"], "unknown_code", "{e}");
        }
    }
    let refused = refused.expect("the address runs out of wrong codes");
    let wait = refused["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 50_000, "one more a minute: {refused}");
    // That address cannot try even the right code now (or it would learn
    // which codes are right), but a class elsewhere joins as usual.
    let mut c = Client::connect_as(server.addr, "10.6.6.6").await;
    c.send(json!({"type": "join", "code": code, "name": "Eve"}))
        .await;
    assert_eq!(c.recv().await["code"], "rate_limited");
    let mut other = Client::connect_as(server.addr, "10.1.1.1").await;
    other.join(&code, "Ana").await;
    server.stop().await;
}

/// A student who spams wrong codes from the school's address uses up that
/// address's allowance, but the class still joins its own game: the address
/// has been seen to know that code (its teacher hosted it there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_student_guessing_does_not_lock_the_class_out_of_its_game() {
    let server = TestServer::start().await;
    let school = "198.51.100.4";
    let mut host = Client::connect_as(server.addr, school).await;
    let code = host.host("chat", json!({})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let mut limited = false;
    'spam: for _ in 0..40 {
        let mut c = Client::connect_as(server.addr, school).await;
        for _ in 0..5 {
            c.send(json!({"type": "join", "code": wrong, "name": "x"}))
                .await;
            if c.recv().await["code"] == "rate_limited" {
                limited = true;
                break 'spam;
            }
        }
    }
    assert!(limited, "the address ran out of wrong codes");
    for i in 0..5 {
        let mut s = Client::connect_as(server.addr, school).await;
        s.join(&code, &format!("Kid{i}")).await;
    }
    server.stop().await;
}

// ---- 9: floods --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_students_flood_is_refused_and_spares_everyone_else() {
    let server = TestServer::start().await;
    let (mut host, session, code) = chat_with_host(&server).await;
    let mut ben = server.client().await;
    ben.join(&code, "Ben").await;
    let mut flood = server.client().await;
    flood.join(&code, "Flo").await;
    for i in 0..3000 {
        let frame = json!({"type": "action", "session": session, "name": "send",
                           "data": {"text": format!("spam {i}")}, "ref": i});
        if !flood.try_send_text(frame.to_string()).await {
            break;
        }
    }
    // The flood is refused frame by frame (`rate_limited`), and the flooder
    // is cut off. (The close may reset the connection before every answer
    // is read, so what is counted is what the server handled.)
    let mut acked = 0;
    while let Some(v) = flood.try_recv().await {
        if v["type"] == "ack" {
            acked += 1;
        }
    }
    assert!(acked <= 200, "{acked} spam messages were handled");
    // Everyone else is still here and served.
    let ack = ben
        .act(&session, "send", json!({"text": "still here"}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let msg = host
        .recv_until(|v| v["name"] == "message" && v["data"]["text"] == "still here")
        .await;
    assert_eq!(msg["data"]["from"], "Ben");
    let spam = host
        .log
        .iter()
        .filter(|v| v["name"] == "message" && v["data"]["from"] == "Flo")
        .count();
    assert!(spam <= 200, "the host got {spam} spam messages");
    assert!(
        !host
            .log
            .iter()
            .any(|v| v["type"] == "error" && v["code"] != "rate_limited"),
        "the host was not closed or troubled"
    );
    server.stop().await;
}

/// Bad frames count against the frame limit too: 19 bad frames and a good
/// one, over and over, never trip the "bad frames in a row" rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_count_against_the_frame_limit() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    'send: for _ in 0..300 {
        for _ in 0..19 {
            if !c.try_send_text("not json".into()).await {
                break 'send;
            }
        }
        if !c.try_send_text(json!({"type": "ping"}).to_string()).await {
            break;
        }
    }
    // Only the first burst is handled (answered `bad_json` or `pong`); the
    // rest is refused (`rate_limited`), and the socket is closed for going
    // on. (The close may reset the connection before the client has read
    // every refusal, so only what was handled is counted.)
    let mut handled = 0;
    while let Some(v) = c.try_recv().await {
        if v["code"] != "rate_limited" {
            handled += 1;
        }
    }
    assert!(handled <= 40 + 5, "{handled} frames were handled");
    server.stop().await;
}

// ---- 16, 17: seats and names ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_nonce_must_be_long_and_never_takes_a_connected_seat() {
    let server = TestServer::start().await;
    let (_host, _session, code) = chat_with_host(&server).await;
    let mut c = server.client().await;
    c.send(json!({"type": "join", "code": code, "name": "Ana", "nonce": "1"}))
        .await;
    assert_eq!(c.recv().await["code"], "bad_frame");

    let nonce = "0123456789abcdef0123";
    let mut ana = server.client().await;
    ana.send(json!({"type": "join", "code": code, "name": "Ana", "nonce": nonce}))
        .await;
    let w = ana.recv_until(|v| v["type"] == "welcome").await;
    let ana_id = w["player"]["id"].clone();
    // Someone who learned the nonce, with the name in another case.
    let mut eve = server.client().await;
    eve.send(json!({"type": "join", "code": code, "name": "ana", "nonce": nonce}))
        .await;
    assert_eq!(eve.recv().await["code"], "name_taken");
    // Even with the exact name, a connected seat stays with its socket.
    eve.send(json!({"type": "join", "code": code, "name": "Ana", "nonce": nonce}))
        .await;
    let e = eve.recv().await;
    assert_eq!(e["type"], "error", "{e}");
    assert_ne!(e["player"]["id"], ana_id);
    assert_eq!(e["code"], "unavailable");
    server.stop().await;
}

// ---- 20, 22: the WebSocket itself -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_origins_must_be_this_node_by_address_or_listed() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let own = format!("http://127.0.0.1:{port}");
    let ok = Client::connect_with(server.addr, &[("origin", own.as_str())]).await;
    assert!(ok.is_ok(), "the node's own page");
    // DNS rebinding: evil.example resolves to the node, Host and Origin agree.
    let evil = format!("evil.example:{port}");
    let origin = format!("http://{evil}");
    let rebound = Client::connect_with(
        server.addr,
        &[("host", evil.as_str()), ("origin", origin.as_str())],
    )
    .await;
    assert!(
        rebound.is_err(),
        "a name must be listed in --allowed-origins"
    );
    // The scheme counts.
    let https = format!("https://127.0.0.1:{port}");
    assert!(
        Client::connect_with(server.addr, &[("origin", https.as_str())])
            .await
            .is_err()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_utf8_gets_a_close_frame() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.send_raw_text(vec![b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!(c.wait_close().await, Some(1007));
    server.stop().await;
}

// ---- the normal class -------------------------------------------------------------------------

/// 30 students behind one school address: some mistype the code, all join,
/// answer every question at once, and a third of them lose Wi-Fi and come
/// back. Nobody is ever refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_class_behind_one_address_is_never_refused() {
    let server = TestServer::start().await;
    let school = "203.0.113.7";
    let mut host = Client::connect_as(server.addr, school).await;
    let questions: Vec<Value> = (0..5)
        .map(|i| json!({"text": format!("Q{i}"), "choices": ["a", "b", "c", "d"], "answer": 1 + i % 4}))
        .collect();
    let w = host
        .host("quiz", json!({"time_limit": 30, "questions": questions}))
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    // The first digit mistyped.
    let first = if code.starts_with('9') { '1' } else { '9' };
    let typo = format!("{first}{}", code.get(1..).unwrap());
    let mut students = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..30 {
        let mut s = Client::connect_as(server.addr, school).await;
        for _ in 0..(i % 3) {
            s.send(json!({"type": "join", "code": typo, "name": format!("S{i}")}))
                .await;
            assert_eq!(s.recv().await["code"], "unknown_code");
        }
        let w = s.join(&code, &format!("S{i}")).await;
        tokens.push(w["token"].as_str().unwrap().to_owned());
        students.push(s);
    }
    for q in 0..5 {
        // `start` opens the first question, `next` after a reveal the others.
        let opens = if q == 0 { "start" } else { "next" };
        let ack = host.act(&session, opens, json!({})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let title = format!("Question {} of 5", q + 1);
        for s in students.iter_mut() {
            s.wait_view(&session, |v| {
                v["phase"] == "question" && v["title"] == title.as_str()
            })
            .await;
        }
        for (i, s) in students.iter_mut().enumerate() {
            let r = s
                .act(&session, "answer", json!({"choice": 1 + (i % 4)}))
                .await;
            assert_eq!(r["type"], "ack", "student {i}, question {q}: {r}");
        }
        // Wi-Fi drops for a third of the class; they come back and resume.
        for i in (q % 3..30).step_by(3) {
            let fresh = Client::connect_as(server.addr, school).await;
            let old = std::mem::replace(&mut students[i], fresh);
            let last = old.last_seq.get(&session).copied().unwrap_or(0);
            let view = old.views.get(&session).cloned();
            drop(old);
            let w = students[i].resume(&tokens[i], last).await;
            assert_eq!(w["type"], "welcome", "student {i}: {w}");
            if let (Some(view), true) = (view, w["resumed"] == true) {
                students[i].views.insert(session.clone(), view);
            }
        }
        // Everyone has answered: the quiz reveals the answer by itself.
        host.wait_view(&session, |v| v["phase"] == "reveal").await;
    }
    let errors: Vec<&Value> = students
        .iter()
        .flat_map(|s| s.log.iter())
        .chain(host.log.iter())
        .filter(|v| v["type"] == "error" && v["code"] != "unknown_code")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    server.stop().await;
}

// ---- 16: a kick keeps them out --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kicked_student_stays_out_until_the_host_lets_them_back() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    let w = host.host("quiz", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let mut ana = server.client().await;
    let id = ana.join(&code, "Ana").await["player"]["id"].clone();
    let ack = host.act(&session, "kick", json!({"player": id})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ana.recv_type("error").await["code"], "kicked");

    // Straight back, under the same name or a look-alike of it: refused.
    for name in ["Ana", "ana", "Аna"] {
        let mut again = server.client().await;
        again
            .send(json!({"type": "join", "code": code, "name": name}))
            .await;
        let e = again.recv().await;
        assert_eq!(e["code"], "kicked", "{name}: {e}");
    }
    // The host sees who was removed and lets her back in.
    let view = host
        .wait_view(&session, |v| {
            v["buttons"]
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["action"] == "readmit"))
        })
        .await;
    let button = view["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["action"] == "readmit")
        .unwrap()
        .clone();
    assert_eq!(button["label"], "Let Ana back in");
    let ack = host.act(&session, "readmit", button["data"].clone()).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let mut back = server.client().await;
    back.join(&code, "Ana").await;
    // Only the host may let people back in.
    let ack = back.act(&session, "readmit", json!({"name": "Ana"})).await;
    assert_eq!(ack["code"], "refused");
    server.stop().await;
}
