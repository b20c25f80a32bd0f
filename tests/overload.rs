//! Past capacity a node coalesces views instead of letting acks queue behind
//! view passes, and says so in `/metrics`; with the load gone it goes back
//! to `--view-interval-ms` (a real server, its sessions on one thread, and
//! actions that keep that thread busy).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::json;

/// Polls `/metrics` until `done` holds for (interval, coalescing), for at
/// most `within`; the gauges change with the node's load, which no event
/// announces.
async fn until_gauges(
    addr: SocketAddr,
    within: Duration,
    done: impl Fn(u64, u64) -> bool,
) -> (u64, u64) {
    let until = Instant::now() + within;
    loop {
        let now = (
            common::metric(addr, "view_interval_ms").await,
            common::metric(addr, "coalescing_for_load").await,
        );
        if done(now.0, now.1) || Instant::now() >= until {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_node_past_capacity_coalesces_views_says_so_and_recovers() {
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("crunch.lua"), common::CRUNCH_GAME).unwrap();
    let server = TestServer::start_in(games, |c| {
        c.script_threads = 1;
        c.cpu_budget_ms = 5000;
    })
    .await;
    let addr = server.addrs()[0];
    let idle = until_gauges(addr, Duration::from_secs(5), |i, c| i == 50 && c == 0).await;
    assert_eq!(
        idle,
        (50, 0),
        "an idle node sends views at --view-interval-ms"
    );

    let mut host = Client::connect(addr).await;
    let hosted = host.host("crunch", json!({})).await;
    let session = hosted["session"].as_str().unwrap().to_owned();
    // Three students keep the one thread busy; each waits for its acks.
    let mut busy = Vec::new();
    let stop = tokio_util::sync::CancellationToken::new();
    for i in 0..3 {
        let mut student = Client::connect(addr).await;
        student
            .join(hosted["code"].as_str().unwrap(), &format!("S{i}"))
            .await;
        let (session, stop) = (session.clone(), stop.clone());
        busy.push(tokio::spawn(async move {
            let mut acked = 0;
            while !stop.is_cancelled() && acked < 200 {
                let ack = student
                    .act(&session, "crunch", json!({"n": 1_000_000}))
                    .await;
                assert_eq!(ack["type"], "ack", "every action is acked: {ack}");
                acked += 1;
            }
            acked
        }));
    }
    let loaded = until_gauges(addr, Duration::from_secs(20), |i, c| i > 50 && c == 1).await;
    stop.cancel();
    let mut acked = 0;
    for b in busy {
        acked += b.await.unwrap();
    }
    assert!(
        loaded.1 == 1 && loaded.0 > 50 && loaded.0 <= 1000,
        "while its thread is behind, the node coalesces views (within --view-interval-max-ms): {loaded:?}"
    );
    assert!(acked > 0);
    // The host still sees every crunch, coalesced.
    host.wait_view(&session, |v| v["crunched"].as_u64() == Some(acked))
        .await;
    let back = until_gauges(addr, Duration::from_secs(10), |i, c| i == 50 && c == 0).await;
    assert_eq!(
        back,
        (50, 0),
        "with the load gone, views go out at the base interval again"
    );
    server.stop().await;
}
