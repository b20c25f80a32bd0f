//! fanout: one session of the bench game, N players spread over the nodes, and
//! a backend pushing `POST /api/sessions/{id}/broadcast` at a steady rate to
//! the session's owner. Each broadcast carries its index and the wall-clock
//! time it was sent; each player computes the latency on receipt and marks the
//! index, so a broadcast a player never received is counted as lost.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Cluster, Options};
use crate::http::HttpConn;
use crate::stats::{Errors, Figures, Latencies, now_us, round};
use crate::{Outcome, Result, bail, ws};

pub struct Params {
    pub players: usize,
    pub rate: f64,
    pub seconds: f64,
    pub connect_concurrency: usize,
}

/// REST connections pushing broadcasts in turn, so one slow answer does not
/// hold back the schedule.
const DRIVERS: usize = 4;
/// How long after the last broadcast the players may take to receive it.
const DRAIN: Duration = Duration::from_secs(5);

struct Shared {
    /// Broadcasts received (first receipt of an index), over all players.
    received: AtomicU64,
    stop: CancellationToken,
}

pub async fn run(name: &str, options: &Options, params: &Params) -> Result<Outcome> {
    if params.players == 0 || params.rate <= 0.0 || params.seconds <= 0.0 {
        bail!("--players, --rate and --seconds must be above 0");
    }
    cluster::check_fd_limit(params.players + 256)?;
    let mut cluster = Cluster::start(options).await?;
    let result = measure(name, &mut cluster, params).await;
    cluster.finish(&result).await;
    result
}

async fn measure(name: &str, cluster: &mut Cluster, params: &Params) -> Result<Outcome> {
    let addrs = cluster.addrs();
    let total = ((params.rate * params.seconds).round() as usize).max(1);
    let mut rest = HttpConn::new(addrs[0]);
    let created: Value = serde_json::from_slice(
        &rest
            .post_json("/api/sessions", br#"{"game":"bench"}"#)
            .await?,
    )?;
    let session: Arc<str> = ws::field(&created, "session")?.into();
    let code: Arc<str> = ws::field(&created, "code")?.into();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base = cluster.usage()?;

    // Players join, a bounded number connecting at a time.
    eprintln!(
        "loadgen: {} players joining session {session} over {} node(s)",
        params.players,
        addrs.len()
    );
    let shared = Arc::new(Shared {
        received: AtomicU64::new(0),
        stop: CancellationToken::new(),
    });
    let _stop_players = shared.stop.clone().drop_guard();
    let gate = Arc::new(Semaphore::new(params.connect_concurrency.max(1)));
    let (joined_tx, mut joined_rx) = mpsc::channel::<Result<(), String>>(1024);
    let mut handles = Vec::with_capacity(params.players);
    // Two halves: the memory the second half adds is what one more
    // connection costs, without what a node allocates once when it gets
    // busy (thread stacks, allocator pages, sled's buffers).
    let half = params.players / 2;
    let mut join_s = 0.0;
    let mut halfway = base.clone();
    for (from, to) in [(0, half), (half, params.players)] {
        let started = Instant::now();
        for i in from..to {
            let player = Player {
                index: i,
                addr: addrs[i % addrs.len()],
                code: code.clone(),
                total,
                shared: shared.clone(),
                gate: gate.clone(),
                joined: joined_tx.clone(),
            };
            handles.push(tokio::spawn(player.run()));
        }
        join_s += ws::await_joins(&mut joined_rx, to - from, started, Some).await?;
        // Let the view passes that follow the joins finish.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if from == 0 {
            halfway = cluster.usage()?;
        }
    }
    drop(joined_tx);
    cluster.check_alive()?;
    let joined = cluster.usage()?;
    let slow_before = cluster::metric_sum(&addrs, "recess_slow_consumers_total").await;
    let deliveries_before = cluster::metric_sum(&addrs, "recess_deliveries_total").await;

    // Broadcasts on a fixed schedule from DRIVERS keep-alive connections.
    cluster.start_profiling(name).await?;
    eprintln!(
        "loadgen: {total} broadcasts at {}/s to node {}",
        params.rate, cluster.nodes[0].name
    );
    let start = cluster.usage()?;
    let t0 = Instant::now() + Duration::from_millis(50);
    let give_up = t0 + Duration::from_secs_f64(params.seconds) + Duration::from_secs(30);
    let drivers: Vec<_> = (0..DRIVERS.min(total))
        .map(|k| {
            let driver = Driver {
                first: k,
                step: DRIVERS.min(total),
                total,
                rate: params.rate,
                t0,
                give_up,
                conn: HttpConn::new(addrs[0]),
                path: format!("/api/sessions/{session}/broadcast"),
            };
            tokio::spawn(driver.run())
        })
        .collect();
    let mut sent_ok = vec![false; total];
    let mut rest_latency = Latencies::default();
    let mut errors = Errors::default();
    for d in drivers {
        let report = d.await?;
        for i in report.ok {
            sent_ok[i] = true;
        }
        rest_latency.extend(report.latency);
        errors.merge(report.errors);
    }
    let broadcasts = sent_ok.iter().filter(|ok| **ok).count() as u64;
    let expected = broadcasts * params.players as u64;
    let drained_by = Instant::now() + DRAIN;
    while shared.received.load(Ordering::Relaxed) < expected && Instant::now() < drained_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let window = t0.elapsed().as_secs_f64();
    let end = cluster.usage()?;
    cluster.stop_profiling().await;
    cluster.check_alive()?;
    let slow = cluster::metric_sum(&addrs, "recess_slow_consumers_total").await - slow_before;
    let server_deliveries =
        cluster::metric_sum(&addrs, "recess_deliveries_total").await - deliveries_before;

    // Stop the players and count what each one missed.
    shared.stop.cancel();
    let mut latency = Latencies::default();
    let mut lost = 0u64;
    let mut other_frames = 0u64;
    let collect_by = Instant::now() + Duration::from_secs(10);
    for h in handles {
        let report = match tokio::time::timeout_at(collect_by, h).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                errors.add(format!("player task failed: {e}"));
                continue;
            }
            Err(_) => {
                errors.add("a player did not stop");
                continue;
            }
        };
        lost += (0..total).filter(|&i| sent_ok[i] && !report.got(i)).count() as u64;
        latency.extend(report.latency);
        other_frames += report.other_frames;
        if let Some(e) = report.error {
            errors.add(e);
        }
    }
    let deliveries = latency.len() as u64;
    let server_cpu = end.nodes_cpu_s() - start.nodes_cpu_s();
    let redis_cpu = end.redis_cpu_s() - start.redis_cpu_s();
    let conn_kb = |u: &cluster::UsageSet| {
        (u.nodes_anon_kb() as f64 - base.nodes_anon_kb() as f64) / params.players as f64
    };
    let conn_kb_rss = |u: &cluster::UsageSet| {
        (u.nodes_rss_kb() as f64 - base.nodes_rss_kb() as f64) / params.players as f64
    };
    let per_delivery = |cpu: f64| round(cpu * 1e6 / deliveries.max(1) as f64, 2);
    let mut figures = Figures::default();
    figures.put("scenario", json!(name));
    figures.put("nodes", json!(addrs.len()));
    figures.put("players", json!(params.players));
    figures.put("rate", json!(params.rate));
    figures.put("seconds", json!(params.seconds));
    figures.put("broadcasts", json!(broadcasts));
    figures.put("deliveries", json!(deliveries));
    figures.put(
        "deliveries_per_s",
        json!(round(deliveries as f64 / window, 0)),
    );
    figures.put("lost", json!(lost));
    figures.extend(latency.summary(""));
    figures.put("server_cpu_s", json!(round(server_cpu, 2)));
    figures.put("cpu_us_per_delivery", json!(per_delivery(server_cpu)));
    figures.put("redis_cpu_s", json!(round(redis_cpu, 2)));
    figures.put(
        "cpu_us_per_delivery_with_redis",
        json!(per_delivery(server_cpu + redis_cpu)),
    );
    figures.put(
        "client_cpu_s",
        json!(round(end.client.cpu_s - start.client.cpu_s, 2)),
    );
    figures.put("rss_mb", end.rss_mb());
    figures.put("kb_per_conn", json!(round(conn_kb(&joined), 1)));
    figures.put("kb_per_conn_rss", json!(round(conn_kb_rss(&joined), 1)));
    // Per node: the owner also holds every member's state; the others only
    // their sockets. Players `players` joined between `before` and `now`.
    let by_node =
        |now: &cluster::UsageSet, before: &cluster::UsageSet, players: std::ops::Range<usize>| {
            let map: serde_json::Map<String, Value> = now
                .nodes
                .iter()
                .zip(&before.nodes)
                .enumerate()
                .map(|(k, ((name, now), (_, before)))| {
                    let conns = players.clone().filter(|i| i % addrs.len() == k).count();
                    let kb = (now.anon_kb as f64 - before.anon_kb as f64) / conns.max(1) as f64;
                    (name.clone(), json!(round(kb, 1)))
                })
                .collect();
            Value::Object(map)
        };
    figures.put(
        "kb_per_conn_by_node",
        by_node(&joined, &base, 0..params.players),
    );
    let second_half = params.players - half;
    figures.put(
        "kb_per_conn_marginal",
        json!(round(
            (joined.nodes_anon_kb() as f64 - halfway.nodes_anon_kb() as f64)
                / second_half.max(1) as f64,
            1
        )),
    );
    figures.put(
        "kb_per_conn_marginal_by_node",
        by_node(&joined, &halfway, half..params.players),
    );
    figures.put("kb_per_conn_after_run", json!(round(conn_kb(&end), 1)));
    figures.put(
        "redis_rss_mb",
        json!(round(end.redis.map_or(0, |u| u.rss_kb) as f64 / 1024.0, 1)),
    );
    figures.put("window_s", json!(round(window, 2)));
    figures.put("join_s", json!(round(join_s, 2)));
    figures.extend(rest_latency.summary("rest_"));
    figures.put("server_deliveries", json!(server_deliveries));
    figures.put("other_frames", json!(other_frames));
    figures.put("slow_consumers", json!(slow));
    figures.put("errors", errors.to_json());
    let ok = lost == 0 && errors.total() == 0 && broadcasts == total as u64;
    Ok(Outcome { figures, ok })
}

/// What a player saw.
struct PlayerReport {
    latency: Latencies,
    /// Bit `i` set: broadcast `i` received.
    got: Vec<u64>,
    other_frames: u64,
    error: Option<String>,
}

impl PlayerReport {
    fn got(&self, i: usize) -> bool {
        self.got
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

struct Player {
    index: usize,
    addr: std::net::SocketAddr,
    code: Arc<str>,
    total: usize,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    joined: mpsc::Sender<Result<(), String>>,
}

/// The part of a server frame a player looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    data: Option<Stamp>,
}

/// `data` of a bench broadcast: its index and send time (µs since the epoch).
#[derive(Deserialize)]
struct Stamp {
    #[serde(default)]
    i: Option<u64>,
    #[serde(default)]
    t: Option<u64>,
}

impl Player {
    async fn run(self) -> PlayerReport {
        let mut report = PlayerReport {
            latency: Latencies::default(),
            got: vec![0; self.total.div_ceil(64)],
            other_frames: 0,
            error: None,
        };
        let joined = ws::connect_and_join(
            &self.gate,
            self.addr,
            &self.code,
            &format!("p{}", self.index),
        )
        .await;
        let mut socket = match joined {
            Ok(s) => {
                let _ = self.joined.send(Ok(())).await;
                s
            }
            Err(e) => {
                let _ = self.joined.send(Err(e.to_string())).await;
                report.error = Some(format!("join: {e}"));
                return report;
            }
        };
        loop {
            let msg = tokio::select! {
                biased;
                _ = self.shared.stop.cancelled() => break,
                msg = socket.next() => msg,
            };
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Close(_))) | None => {
                    report.error = Some("the server closed a player's socket".into());
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    report.error = Some(format!("socket error: {e}"));
                    break;
                }
            };
            let received = now_us();
            match serde_json::from_str::<Frame>(&text) {
                Ok(Frame {
                    kind,
                    name: Some(name),
                    data:
                        Some(Stamp {
                            i: Some(i),
                            t: Some(t),
                        }),
                }) if kind == "event" && name == "bench" => {
                    let i = i as usize;
                    if i < self.total && !report.got(i) {
                        report.got[i / 64] |= 1 << (i % 64);
                        report.latency.record_us(received.saturating_sub(t));
                        self.shared.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => report.other_frames += 1,
            }
        }
        let _ = socket.close(None).await;
        report
    }
}

struct DriverReport {
    ok: Vec<usize>,
    latency: Latencies,
    errors: Errors,
}

/// Sends broadcasts `first, first + step, …` each at `t0 + i / rate`.
struct Driver {
    first: usize,
    step: usize,
    total: usize,
    rate: f64,
    t0: Instant,
    give_up: Instant,
    conn: HttpConn,
    path: String,
}

impl Driver {
    async fn run(mut self) -> DriverReport {
        let mut report = DriverReport {
            ok: Vec::new(),
            latency: Latencies::default(),
            errors: Errors::default(),
        };
        for i in (self.first..self.total).step_by(self.step) {
            let at = self.t0 + Duration::from_secs_f64(i as f64 / self.rate);
            if at > self.give_up || Instant::now() > self.give_up {
                report
                    .errors
                    .add("broadcast not sent: the run fell too far behind");
                continue;
            }
            tokio::time::sleep_until(at).await;
            let sent = now_us();
            let body = json!({"name": "bench", "data": {"i": i, "t": sent}}).to_string();
            match self.conn.post_json(&self.path, body.as_bytes()).await {
                Ok(_) => {
                    report.latency.record_us(now_us().saturating_sub(sent));
                    report.ok.push(i);
                }
                Err(e) => report.errors.add(format!("broadcast: {e}")),
            }
        }
        report
    }
}
