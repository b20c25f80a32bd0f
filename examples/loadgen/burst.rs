//! burst: one session of the bench game; the host asks a question and every
//! player answers it once, at a random moment within the same second. Measures
//! each answer's ack latency, the time until the host's view counts every
//! answer, and the server CPU spent on the whole burst.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Cluster, Options};
use crate::stats::{Errors, Figures, Latencies, Rng, round};
use crate::{Outcome, Result, bail, ws};

pub struct Params {
    pub players: usize,
    pub window: Duration,
    pub connect_concurrency: usize,
    pub seed: u64,
}

/// How long after the window the tool waits for acks and the host's count.
const GRACE: Duration = Duration::from_secs(30);

pub async fn run(options: &Options, params: &Params) -> Result<Outcome> {
    if params.players == 0 {
        bail!("--players must be above 0");
    }
    cluster::check_fd_limit(params.players + 256)?;
    let mut cluster = Cluster::start(options).await?;
    let result = measure(&mut cluster, params).await;
    cluster.finish(&result).await;
    result
}

/// What a player reports: joined, then its answer's outcome.
enum Note {
    Joined,
    JoinFailed(String),
    Acked(Duration),
    Failed(String),
}

async fn measure(cluster: &mut Cluster, params: &Params) -> Result<Outcome> {
    let addrs = cluster.addrs();
    let mut host = ws::connect(addrs[0]).await?;
    let welcome = ws::host(&mut host, "bench", &json!({})).await?;
    let session: Arc<str> = ws::field(&welcome, "session")?.into();
    let code: Arc<str> = ws::field(&welcome, "code")?.into();

    eprintln!(
        "loadgen: {} players joining session {session} over {} node(s)",
        params.players,
        addrs.len()
    );
    let stop = CancellationToken::new();
    let _stop_players = stop.clone().drop_guard();
    let gate = Arc::new(Semaphore::new(params.connect_concurrency.max(1)));
    let (notes_tx, mut notes) = mpsc::channel::<Note>(4096);
    let join_started = Instant::now();
    for i in 0..params.players {
        let player = Player {
            index: i,
            addr: addrs[i % addrs.len()],
            session: session.clone(),
            code: code.clone(),
            window: params.window,
            rng: Rng::new(params.seed, i as u64),
            stop: stop.clone(),
            gate: gate.clone(),
            notes: notes_tx.clone(),
        };
        tokio::spawn(player.run());
    }
    drop(notes_tx);
    let join_s = ws::await_joins(
        &mut notes,
        params.players,
        join_started,
        |note| match note {
            Note::Joined => Some(Ok(())),
            Note::JoinFailed(e) => Some(Err(e)),
            _ => None,
        },
    )
    .await?;
    let mut errors = Errors::default();
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.check_alive()?;

    // The burst: the host asks, everyone answers within the window.
    cluster.start_profiling("burst").await?;
    let commits_before = cluster::metric_sum(&addrs, "recess_snapshot_writes_total").await;
    let start = cluster.usage()?;
    let t0 = Instant::now();
    ws::action(&mut host, &session, "ask", &json!({}), 1).await?;
    let deadline = t0 + params.window + GRACE;
    let players = params.players as u64;
    let host_watch = tokio::spawn(watch_host(host, players, deadline));
    let mut acks = Latencies::default();
    let mut answered = 0u64;
    while answered < players {
        match tokio::time::timeout_at(deadline, notes.recv()).await {
            Ok(Some(Note::Acked(d))) => {
                answered += 1;
                acks.record_us(d.as_micros() as u64);
            }
            Ok(Some(Note::Failed(e))) => {
                answered += 1;
                errors.add(e);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let acked_at = t0.elapsed();
    let host_seen = host_watch.await??;
    let wall = t0.elapsed();
    let end = cluster.usage()?;
    cluster.stop_profiling().await;
    cluster.check_alive()?;
    let commits =
        cluster::metric_sum(&addrs, "recess_snapshot_writes_total").await - commits_before;
    stop.cancel();

    let unanswered = players - answered;
    let server_cpu = end.nodes_cpu_s() - start.nodes_cpu_s();
    let redis_cpu = end.redis_cpu_s() - start.redis_cpu_s();
    let mut figures = Figures::default();
    figures.put("scenario", json!("burst"));
    figures.put("nodes", json!(addrs.len()));
    figures.put("players", json!(params.players));
    figures.put("window_ms", json!(params.window.as_millis() as u64));
    figures.put("acked", json!(acks.len()));
    figures.put("lost", json!(unanswered));
    figures.extend(acks.summary("ack_"));
    figures.put(
        "host_view_complete_ms",
        json!(host_seen.map(|d| round(d.as_secs_f64() * 1000.0, 1))),
    );
    figures.put(
        "all_acked_ms",
        json!(round(acked_at.as_secs_f64() * 1000.0, 1)),
    );
    figures.put("server_cpu_s", json!(round(server_cpu, 3)));
    figures.put("redis_cpu_s", json!(round(redis_cpu, 3)));
    figures.put(
        "cpu_us_per_action",
        json!(round(server_cpu * 1e6 / players as f64, 1)),
    );
    figures.put(
        "client_cpu_s",
        json!(round(end.client.cpu_s - start.client.cpu_s, 2)),
    );
    figures.put("commits", json!(commits));
    figures.put("measured_s", json!(round(wall.as_secs_f64(), 2)));
    figures.put("rss_mb", end.rss_mb());
    figures.put("join_s", json!(round(join_s, 2)));
    figures.put("errors", errors.to_json());
    let ok = unanswered == 0 && errors.total() == 0 && host_seen.is_some();
    Ok(Outcome { figures, ok })
}

/// Reads the host's frames until its view counts `players` answers; returns
/// how long that took, or `None` at the deadline.
async fn watch_host(mut host: ws::Ws, players: u64, deadline: Instant) -> Result<Option<Duration>> {
    let t0 = Instant::now();
    loop {
        let text = match tokio::time::timeout_at(deadline, ws::next_text(&mut host)).await {
            Ok(Ok(Some(t))) => t,
            Ok(Ok(None)) => bail!("the server closed the host's socket"),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(None),
        };
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] == "view" && frame["patch"]["answers"].as_u64() == Some(players) {
            return Ok(Some(t0.elapsed()));
        }
    }
}

struct Player {
    index: usize,
    addr: SocketAddr,
    session: Arc<str>,
    code: Arc<str>,
    window: Duration,
    rng: Rng,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
    notes: mpsc::Sender<Note>,
}

impl Player {
    async fn run(mut self) {
        let joined = ws::connect_and_join(
            &self.gate,
            self.addr,
            &self.code,
            &format!("p{}", self.index),
        )
        .await;
        let mut socket = match joined {
            Ok(s) => s,
            Err(e) => {
                let _ = self.notes.send(Note::JoinFailed(e.to_string())).await;
                return;
            }
        };
        let _ = self.notes.send(Note::Joined).await;
        let stop = self.stop.clone();
        let note = tokio::select! {
            _ = stop.cancelled() => return,
            note = self.answer(&mut socket) => note,
        };
        let _ = self.notes.send(note).await;
        // Stay connected until the end, as a student would.
        stop.cancelled().await;
        let _ = socket.close(None).await;
    }

    /// Waits for the question, answers within the window, waits for the ack.
    async fn answer(&mut self, socket: &mut ws::Ws) -> Note {
        let mut answer_at: Option<Instant> = None;
        let mut sent_at: Option<Instant> = None;
        loop {
            let due = async {
                match answer_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let text = tokio::select! {
                _ = due => {
                    answer_at = None;
                    sent_at = Some(Instant::now());
                    let data = json!({"choice": 1 + self.rng.between(0, 3)});
                    if let Err(e) = ws::action(socket, &self.session, "answer", &data, 7).await {
                        return Note::Failed(format!("send: {e}"));
                    }
                    continue;
                }
                text = ws::next_text(socket) => text,
            };
            let text = match text {
                Ok(Some(t)) => t,
                Ok(None) => return Note::Failed("the server closed a player's socket".into()),
                Err(e) => return Note::Failed(format!("socket error: {e}")),
            };
            let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                return Note::Failed("a frame that is not JSON".into());
            };
            match frame["type"].as_str() {
                Some("event") if frame["name"] == "question" && sent_at.is_none() => {
                    let delay = self.rng.between(0, self.window.as_millis() as u64);
                    answer_at = Some(Instant::now() + Duration::from_millis(delay));
                }
                Some("ack") if frame["ref"] == 7 => {
                    if let Some(at) = sent_at {
                        return Note::Acked(at.elapsed());
                    }
                }
                Some("error") if frame["ref"] == 7 => {
                    return Note::Failed(format!(
                        "answer refused: {}",
                        frame["message"].as_str().unwrap_or("")
                    ));
                }
                _ => {}
            }
        }
    }
}
