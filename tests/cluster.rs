//! Several real `recess` processes, one real Redis, real nginx in front:
//! forwarding, reconnecting anywhere, failover, Redis restarts, SIGTERM.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{Nginx, RedisServer};
use common::{Client, Process, games_dir_with_shipped};
use serde_json::json;

struct Cluster {
    redis: RedisServer,
    games: tempfile::TempDir,
    data: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster {
            redis: RedisServer::start().await,
            games: games_dir_with_shipped(),
            data: Vec::new(),
        }
    }

    async fn node(&mut self, id: &str) -> Process {
        let data = tempfile::tempdir().unwrap();
        let url = self.redis.url();
        let p = Process::spawn(
            self.games.path(),
            data.path(),
            &["--redis", &url, "--node-id", id],
        )
        .await;
        self.data.push(data);
        p
    }
}

/// What a host's welcome says about its new session.
struct Hosted {
    session: String,
    code: String,
    token: String,
}

/// Connects to `addr` and hosts a chat session there.
async fn host_chat(addr: SocketAddr) -> (Client, Hosted) {
    let mut host = Client::connect(addr).await;
    let w = host.host("chat", json!({})).await;
    let field = |k: &str| w[k].as_str().unwrap().to_owned();
    let hosted = Hosted {
        session: field("session"),
        code: field("code"),
        token: field("token"),
    };
    (host, hosted)
}

/// The message events a client received in a session: (seq, text).
fn messages(c: &Client, session: &str) -> Vec<(u64, String)> {
    c.log
        .iter()
        .filter(|v| v["type"] == "event" && v["name"] == "message" && v["session"] == session)
        .map(|v| {
            (
                v["seq"].as_u64().unwrap(),
                v["data"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Reconnects (possibly to another node) until the seat is resumed.
async fn reconnect(addr: SocketAddr, old: &Client, token: &str, session: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut c = Client::connect(addr).await;
        c.log = old.log.clone();
        c.views = old.views.clone();
        c.last_seq = old.last_seq.clone();
        let last = c.last_seq.get(session).copied().unwrap_or(0);
        let w = c.resume(token, last).await;
        if w["type"] == "welcome" {
            return c;
        }
        assert!(Instant::now() < deadline, "could not resume: {w}");
        assert_eq!(w["code"], "unavailable", "{w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_through_nginx_reconnect_to_other_nodes_and_miss_nothing() {
    let mut cluster = Cluster::start().await;
    let nodes = [
        cluster.node("a").await,
        cluster.node("b").await,
        cluster.node("c").await,
    ];
    let nginx = Nginx::start(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>()).await;

    let (mut host, Hosted { session, code, .. }) = host_chat(nginx.addr).await;

    let mut players = Vec::new();
    for i in 0..6 {
        let mut c = Client::connect(nginx.addr).await;
        let token = c.join(&code, &format!("P{i}")).await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        players.push((c, token));
    }
    let mut sent = 0;
    for round in 0..3 {
        for (i, (c, _)) in players.iter_mut().enumerate() {
            let ack = c
                .act(&session, "send", json!({"text": format!("r{round} p{i}")}))
                .await;
            assert_eq!(ack["type"], "ack", "{ack}");
            sent += 1;
        }
        // Everyone drops and comes back through nginx (round-robin: another node).
        let mut back = Vec::new();
        for (c, token) in players.drain(..) {
            let old_log = c.log.clone();
            let mut snapshot = Client::connect(nginx.addr).await;
            snapshot.log = old_log;
            snapshot.last_seq = c.last_seq.clone();
            snapshot.views = c.views.clone();
            c.close().await;
            let resumed = reconnect(nginx.addr, &snapshot, &token, &session).await;
            back.push((resumed, token));
        }
        players = back;
    }
    // Read until everyone has every message.
    while messages(&host, &session).len() < sent {
        host.recv().await;
    }
    let reference = messages(&host, &session);
    for (c, _) in players.iter_mut() {
        while messages(c, &session).len() < sent {
            c.recv().await;
        }
        assert_eq!(
            messages(c, &session),
            reference,
            "same messages, same order, same seqs, none twice"
        );
    }
    nginx.stop().await;
    for n in nodes {
        n.kill().await;
    }
}

/// A game whose `spin` action keeps the node's CPU busy for a while.
const SPIN_GAME: &str = r#"
return {
  init = function(ctx, params) return { spins = 0 } end,
  action = function(state, ctx, player, name, data)
    local x = 0
    for i = 1, data.n do x = x + i % 7 end
    state.spins = state.spins + 1
  end,
  view = function(state, player) return { spins = state.spins } end,
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_busy_running_scripts_keeps_its_sessions() {
    let mut cluster = Cluster::start().await;
    std::fs::write(cluster.games.path().join("spin.lua"), SPIN_GAME).unwrap();
    // One thread for sessions on the owner (and one for sockets), so the
    // scripts below leave it no time for anything else for several seconds
    // (longer than the 2 s heartbeat), as a node saturated by many
    // classrooms would be.
    let data = tempfile::tempdir().unwrap();
    let url = cluster.redis.url();
    let a = Process::spawn(
        cluster.games.path(),
        data.path(),
        &[
            "--redis",
            &url,
            "--node-id",
            "a",
            "--threads",
            "1",
            "--script-threads",
            "1",
        ],
    )
    .await;
    let b = cluster.node("b").await;

    let mut host = Client::connect(a.addr).await;
    let w = host.host("spin", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let summary = |addr| {
        let session = session.clone();
        async move {
            let (status, body) =
                common::http(addr, "GET", &format!("/api/sessions/{session}"), None).await;
            assert_eq!(status, 200, "{body}");
            let body: serde_json::Value = serde_json::from_str(&body).unwrap();
            body["owner"].as_str().unwrap().to_owned()
        }
    };
    let owner = summary(a.addr).await;
    assert!(owner.starts_with('a'), "{owner}");

    // Expensive actions at once (each well inside the handler's budget):
    // the owner's only session thread runs Lua for seconds.
    const SPINS: usize = 36;
    let started = Instant::now();
    for i in 0..SPINS {
        host.send(json!({"type": "action", "session": session, "name": "spin",
            "data": {"n": 1_500_000}, "ref": format!("s{i}")}))
            .await;
    }
    for i in 0..SPINS {
        let reply = host
            .recv_until(|v| v["ref"] == format!("s{i}") || v["type"] == "error")
            .await;
        assert_eq!(reply["type"], "ack", "{reply}");
    }
    println!("the owner was busy for {:?}", started.elapsed());
    // Nobody took the session over: both nodes still see A as its owner,
    // and it keeps serving.
    assert_eq!(summary(a.addr).await, owner);
    assert_eq!(summary(b.addr).await, owner);
    let view = host.recv_until(|v| v["type"] == "view").await;
    assert!(view.to_string().contains("spins"), "{view}");
    a.kill().await;
    b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_mid_quiz() {
    let mut cluster = Cluster::start().await;
    let a = cluster.node("a").await;
    let b = cluster.node("b").await;

    let mut host = Client::connect(a.addr).await;
    let w = host
        .host(
            "quiz",
            json!({"time_limit": 3, "questions": [
                {"text": "1+1?", "choices": ["1", "2"], "answer": 2},
                {"text": "2+2?", "choices": ["4", "5"], "answer": 1},
            ]}),
        )
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let host_token = w["token"].as_str().unwrap().to_owned();
    let mut on_a = Client::connect(a.addr).await;
    let a_token = on_a.join(&code, "Ann").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut on_b = Client::connect(b.addr).await;
    on_b.join(&code, "Bob").await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");
    on_b.recv_until(|v| v["name"] == "question").await;
    // Bob's answer is acknowledged before the crash: it must count.
    assert_eq!(
        on_b.act(&session, "answer", json!({"choice": 2})).await["type"],
        "ack"
    );

    let killed = Instant::now();
    a.kill().await;

    // The session answers again on B (Bob's second answer is refused by the rules).
    loop {
        let r = on_b.act(&session, "answer", json!({"choice": 2})).await;
        if r["code"] == "refused" {
            break;
        }
        if r["code"] == "rate_limited" {
            // Retrying as fast as it can, the client meets the frame rate
            // limit: it waits as long as the server says.
            let wait = r["retry_after_ms"].as_u64().expect("a retry time");
            tokio::time::sleep(Duration::from_millis(wait)).await;
            continue;
        }
        assert_eq!(r["code"], "unavailable", "{r}");
        assert!(killed.elapsed() < Duration::from_secs(15), "no recovery");
    }
    let recovery = killed.elapsed();
    println!("the session answered again {recovery:?} after kill -9 of its owner");

    // The clients of the dead node come back on B and resume.
    let mut host = reconnect(b.addr, &host, &host_token, &session).await;
    let mut on_a = reconnect(b.addr, &on_a, &a_token, &session).await;
    assert_eq!(
        on_a.act(&session, "answer", json!({"choice": 1})).await["type"],
        "ack"
    );

    // Everyone answered: the reveal counts Bob's acknowledged answer.
    let result = on_b.recv_until(|v| v["name"] == "result").await;
    assert_eq!(result["data"]["correct"], true, "{result}");
    assert!(result["data"]["points"].as_i64().unwrap() >= 500);
    let result = on_a.recv_until(|v| v["name"] == "result").await;
    assert_eq!(result["data"]["correct"], false);

    // Timers still fire after the takeover: nobody answers question 2.
    assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    let reveal = on_b
        .recv_until(|v| v["name"] == "reveal" && v["data"]["number"] == 2)
        .await;
    assert_eq!(reveal["data"]["answer"], 1);
    // Client::recv asserted on every frame that seqs only go up: none was
    // reused or delivered twice to the same client.
    b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_game() {
    let mut cluster = Cluster::start().await;
    let a = cluster.node("a").await;
    let b = cluster.node("b").await;
    let (mut host, Hosted { session, code, .. }) = host_chat(a.addr).await;
    let mut on_b = Client::connect(b.addr).await;
    let b_token = on_b.join(&code, "Bea").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        on_b.act(&session, "send", json!({"text": "before"})).await["type"],
        "ack"
    );

    let port = cluster.redis.port;
    cluster.redis.kill().await;
    // The owner keeps serving its own players.
    assert_eq!(
        host.act(&session, "send", json!({"text": "during"})).await["type"],
        "ack"
    );
    // A player on the other node is told clearly: an error, or a socket
    // closed with 1012 so the page reconnects and resumes.
    if let Some(r) = on_b
        .try_act(&session, "send", json!({"text": "lost?"}))
        .await
    {
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["code"], "unavailable", "{r}");
    }

    cluster.redis = RedisServer::start_on(port).await;
    // Cross-node play comes back without restarting any node.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut on_b = loop {
        let c = reconnect(b.addr, &on_b, &b_token, &session).await;
        let mut c = c;
        let r = c.act(&session, "send", json!({"text": "after"})).await;
        if r["type"] == "ack" {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "cross-node play did not come back: {r}"
        );
        on_b = c;
    };
    let want = |c: &Client| messages(c, &session).iter().any(|(_, t)| t == "after");
    while !want(&host) {
        host.recv().await;
    }
    while !want(&on_b) {
        on_b.recv().await;
    }
    let texts = |c: &Client| -> Vec<(u64, String)> {
        messages(c, &session)
            .into_iter()
            .filter(|(_, t)| t != "lost?")
            .collect()
    };
    assert_eq!(
        texts(&on_b),
        texts(&host),
        "both see the same messages in the same order"
    );
    assert!(texts(&host).iter().any(|(_, t)| t == "during"));
    a.kill().await;
    b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_sessions_over() {
    let mut cluster = Cluster::start().await;
    let a = cluster.node("a").await;
    let b = cluster.node("b").await;
    let (mut host, Hosted { session, token, .. }) = host_chat(a.addr).await;
    assert_eq!(
        host.act(&session, "send", json!({"text": "one"})).await["type"],
        "ack"
    );

    let stopping = tokio::spawn(a.terminate());
    assert_eq!(
        host.wait_close().await,
        Some(1001),
        "sockets close with 1001"
    );
    let status = stopping.await.unwrap();
    assert!(status.success(), "clean exit: {status:?}");

    let started = Instant::now();
    let mut host = reconnect(b.addr, &host, &token, &session).await;
    println!(
        "resumed on another node {:?} after the node stopped",
        started.elapsed()
    );
    assert_eq!(
        host.act(&session, "send", json!({"text": "two"})).await["type"],
        "ack"
    );
    let texts: Vec<String> = {
        while messages(&host, &session).len() < 2 {
            host.recv().await;
        }
        messages(&host, &session)
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    };
    assert_eq!(texts, ["one", "two"]);
    b.kill().await;
}
