//! Sessions on one node are isolated from each other across the cluster: a
//! session flooded through another node until its mailbox is full must not
//! hold up the commands other nodes forward to the owner's other sessions
//! (real `recess` processes, one real Redis).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::RedisServer;
use common::{Client, Process, games_dir_with_shipped};
use serde_json::{Value, json};

/// Commands a session's mailbox holds (`MAILBOX` in src/node.rs).
const MAILBOX: u64 = 1024;
/// Most commands an actor takes out of its mailbox for one batch
/// (`MAX_BATCH` in src/session/actor.rs).
const MAX_BATCH: u64 = 256;
/// Sockets flooding the busy session through node b, and the actions each
/// sends: far more than the mailbox and a batch hold, so the owner still has
/// a backlog long after the flood was sent (about 40 ms an action).
const FLOODERS: u64 = 4;
const FLOOD_PER_SOCKET: u64 = 600;
const FLOOD: u64 = FLOODERS * FLOOD_PER_SOCKET;
/// What the player of the other session is allowed for joining through b and
/// having five actions acknowledged.
const BUDGET: Duration = Duration::from_secs(3);

/// The node `GET /api/sessions/{id}` on `addr` names as the session's owner.
async fn owner(addr: SocketAddr, session: &str) -> String {
    let (status, body) = common::http(addr, "GET", &format!("/api/sessions/{session}"), None).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    body["owner"].as_str().unwrap().to_owned()
}

/// Hosts `game` on a new socket connected to `addr`: the host, the session
/// id and its join code.
async fn host(addr: SocketAddr, game: &str) -> (Client, String, String) {
    let mut host = Client::connect(addr).await;
    let w = host.host(game, json!({})).await;
    let field = |k: &str| w[k].as_str().unwrap().to_owned();
    (host, field("session"), field("code"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_session_does_not_stall_forwarded_commands_of_other_sessions() {
    let redis = RedisServer::start().await;
    let games = games_dir_with_shipped();
    std::fs::write(games.path().join("crunch.lua"), common::CRUNCH_GAME).unwrap();
    let url = redis.url();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Process::spawn(
        games.path(),
        data_a.path(),
        &["--redis", &url, "--node-id", "a"],
    )
    .await;
    // The frame limit is per socket on the node it is connected to: b lets
    // the flooding sockets send their whole flood at once.
    let b = Process::spawn(
        games.path(),
        data_b.path(),
        &[
            "--redis",
            &url,
            "--node-id",
            "b",
            "--frame-rate",
            "1000",
            "--frame-burst",
            "2000",
        ],
    )
    .await;

    // Both sessions are hosted on a, so a owns them.
    let (_busy_host, busy, busy_code) = host(a.addr, "crunch").await;
    let (_calm_host, calm, calm_code) = host(a.addr, "chat").await;
    for session in [&busy, &calm] {
        let owner = owner(b.addr, session).await;
        assert!(owner.starts_with('a'), "{session} is owned by {owner}");
    }

    let mut flooders = Vec::new();
    for i in 0..FLOODERS {
        let mut c = Client::connect(b.addr).await;
        c.join(&busy_code, &format!("Flood {i}")).await;
        flooders.push(c);
    }
    let read_by_b = common::metric(b.addr, "frames_in_total").await;

    // The flood: every action sent, none of the answers read.
    let flood_started = Instant::now();
    let frame = |i: u64, k: u64| {
        json!({"type": "action", "session": busy, "name": "crunch",
            "data": {"n": 500_000}, "ref": format!("f{i}-{k}")})
        .to_string()
    };
    for k in 0..FLOOD_PER_SOCKET {
        for (i, c) in (0..).zip(flooders.iter_mut()) {
            c.send_text(frame(i, k)).await;
        }
    }
    // Node b has read every flood frame (and publishes each to a as it reads it).
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::metric(b.addr, "frames_in_total").await < read_by_b + FLOOD {
        assert!(
            Instant::now() < deadline,
            "node b did not read the flood in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        common::metric(b.addr, "rate_limited_total").await,
        0,
        "the frame limit refused some of the flood"
    );
    // More of the flood is still to be run on a than its mailbox and a batch
    // hold: the mailbox is full and a's dispatcher waits for room in it.
    let run = common::metric(a.addr, "actions_total").await;
    println!(
        "flood of {FLOOD} actions read by b in {:?}; a has run {run} of them",
        flood_started.elapsed()
    );
    assert!(
        FLOOD - run > MAILBOX + MAX_BATCH,
        "the owner kept up with the flood ({run} of {FLOOD} run): its mailbox is not full"
    );

    // Meanwhile, a player of the other session joins it through b and plays.
    let started = Instant::now();
    let mut steps = Vec::new();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let mut player = Client::connect(b.addr).await;
        player
            .send(json!({"type": "join", "code": calm_code, "name": "Calm"}))
            .await;
        let w = player
            .recv_until(|v| v["type"] == "welcome" || v["type"] == "error")
            .await;
        steps.push(format!("join: {} after {:?}", w["type"], started.elapsed()));
        if w["type"] != "welcome" {
            return Err(format!("the join through b failed: {w}"));
        }
        for i in 0..5 {
            let r = player
                .act(&calm, "send", json!({"text": format!("hello {i}")}))
                .await;
            steps.push(format!(
                "action {i}: {} after {:?}",
                r["type"],
                started.elapsed()
            ));
            if r["type"] != "ack" {
                return Err(format!("action {i} through b was not acknowledged: {r}"));
            }
        }
        Ok(())
    })
    .await;
    let elapsed = started.elapsed();
    println!("{}", steps.join("\n"));
    let outcome = outcome.unwrap_or_else(|_| Err("no answer within 20 s".to_owned()));
    if let Err(e) = outcome {
        panic!(
            "with {busy} flooded, {calm} (also owned by a) did not serve a player on b: \
             {e} ({elapsed:?} after connecting; steps: {steps:?})"
        );
    }
    assert!(
        elapsed < BUDGET,
        "with {busy} flooded, joining {calm} through b and five acks took {elapsed:?} \
         (budget {BUDGET:?}; steps: {steps:?})"
    );
    a.kill().await;
    b.kill().await;
}
