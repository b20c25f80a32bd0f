//! district: many classrooms at once. Each session plays the shipped
//! `games/quiz.lua`: its host (a bot) starts the quiz and presses Next a
//! moment after each reveal; its players (bots) answer each question after a
//! human thinking time. Measures the server CPU per view patch delivered and
//! the answers' ack latency.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::cluster::{self, Cluster, Options};
use crate::stats::{Errors, Figures, Latencies, Rng, round};
use crate::{Outcome, Result, bail, ws};

pub struct Params {
    pub sessions: usize,
    /// Players per session.
    pub players: usize,
    pub questions: usize,
    pub time_limit: f64,
    pub think: (Duration, Duration),
    pub reveal: Duration,
    pub stagger: Duration,
    pub connect_concurrency: usize,
    pub seed: u64,
}

/// What a client has seen by the end of the run.
#[derive(Default)]
struct Report {
    views: u64,
    events: u64,
    acks: Latencies,
    /// Answers refused because the question had closed.
    late: u64,
    /// Answers sent and never answered.
    unanswered: u64,
    errors: Errors,
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.views += other.views;
        self.events += other.events;
        self.acks.extend(other.acks);
        self.late += other.late;
        self.unanswered += other.unanswered;
        self.errors.merge(other.errors);
    }
}

enum Note {
    Hosted {
        index: usize,
        session: Arc<str>,
        code: Arc<str>,
    },
    Joined,
    Failed(String),
    Ended,
}

/// The part of a server frame a bot looks at.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, rename = "ref")]
    reference: Option<u64>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
}

/// The text a bot's socket gave, or `None` (with the reason counted) when
/// the socket ended.
fn received(text: Result<Option<Utf8Bytes>>, who: &str, errors: &mut Errors) -> Option<Utf8Bytes> {
    match text {
        Ok(Some(t)) => Some(t),
        Ok(None) => {
            errors.add(format!("the server closed a {who}'s socket"));
            None
        }
        Err(e) => {
            errors.add(format!("{who} socket: {e}"));
            None
        }
    }
}

pub async fn run(options: &Options, params: &Params) -> Result<Outcome> {
    if params.sessions == 0 || params.players == 0 {
        bail!("--sessions and --players must be above 0");
    }
    if params.players > 199 {
        bail!(
            "games/quiz.lua takes at most 200 members (host included): use --players 199 or fewer"
        );
    }
    cluster::check_fd_limit(params.sessions * (params.players + 1) + 256)?;
    let mut cluster = Cluster::start(options).await?;
    let result = measure(&mut cluster, params).await;
    cluster.finish(&result).await;
    result
}

fn quiz_params(params: &Params) -> Value {
    let questions: Vec<Value> = (0..params.questions)
        .map(|k| {
            json!({
                "text": format!("Load test question {}", k + 1),
                "choices": ["North", "South", "East", "West"],
                "answer": 1 + k % 4,
            })
        })
        .collect();
    json!({"time_limit": params.time_limit, "questions": questions, "title": "Load test"})
}

async fn measure(cluster: &mut Cluster, params: &Params) -> Result<Outcome> {
    let addrs = cluster.addrs();
    let members = params.sessions * (params.players + 1);
    let stop = CancellationToken::new();
    let _stop_clients = stop.clone().drop_guard();
    let gate = Arc::new(Semaphore::new(params.connect_concurrency.max(1)));
    let (notes_tx, mut notes) = mpsc::channel::<Note>(4096);
    let (start_tx, start_rx) = watch::channel::<Option<Instant>>(None);
    let quiz = Arc::new(quiz_params(params));
    let empty = cluster.usage()?;
    eprintln!(
        "loadgen: {} sessions x {} players joining over {} node(s)",
        params.sessions,
        params.players,
        addrs.len()
    );
    let join_started = Instant::now();
    let mut handles: Vec<JoinHandle<Report>> = Vec::with_capacity(members);
    for s in 0..params.sessions {
        let host = Host {
            index: s,
            addr: addrs[s % addrs.len()],
            quiz: quiz.clone(),
            start_offset: params.stagger.mul_f64(s as f64 / params.sessions as f64),
            reveal: params.reveal,
            start: start_rx.clone(),
            stop: stop.clone(),
            gate: gate.clone(),
            notes: notes_tx.clone(),
        };
        handles.push(tokio::spawn(host.run()));
    }
    let join_deadline =
        join_started + ws::WELCOME_TIMEOUT + Duration::from_millis(members as u64 * 10);
    let mut errors = Errors::default();
    let mut ready = 0;
    while ready < members {
        let note = match tokio::time::timeout_at(join_deadline, notes.recv()).await {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => bail!(
                "clients were still joining after {:?}",
                join_deadline - join_started
            ),
        };
        match note {
            Note::Hosted {
                index,
                session,
                code,
            } => {
                ready += 1;
                for j in 0..params.players {
                    let player = Player {
                        index: j,
                        addr: addrs[(index + j) % addrs.len()],
                        session: session.clone(),
                        code: code.clone(),
                        think: params.think,
                        rng: Rng::new(params.seed, (index * 1000 + j) as u64),
                        stop: stop.clone(),
                        gate: gate.clone(),
                        notes: notes_tx.clone(),
                    };
                    handles.push(tokio::spawn(player.run()));
                }
            }
            Note::Joined => ready += 1,
            Note::Failed(e) => {
                errors.add(e);
                break;
            }
            Note::Ended => {}
        }
    }
    drop(notes_tx);
    if errors.total() > 0 {
        bail!("clients could not join: {}", errors.to_json());
    }
    let join_s = join_started.elapsed().as_secs_f64();
    eprintln!("loadgen: {members} clients joined in {join_s:.1} s; the quizzes start");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.check_alive()?;
    let joined = cluster.usage()?;

    cluster.start_profiling("district").await?;
    let start = cluster.usage()?;
    let deliveries_before = cluster::metric_sum(&addrs, "recess_deliveries_total").await;
    let commits_before = cluster::metric_sum(&addrs, "recess_snapshot_writes_total").await;
    let stored_before = cluster::metric_sum(&addrs, "recess_stored_bytes_total").await;
    let state_before = cluster::metric_sum(&addrs, "recess_state_bytes_total").await;
    let t0 = Instant::now();
    let _ = start_tx.send(Some(t0));
    let per_question = Duration::from_secs_f64(params.time_limit) + params.reveal;
    let deadline = t0
        + params.stagger
        + per_question.mul_f64(params.questions as f64)
        + Duration::from_secs(60);
    let mut ended = 0;
    while ended < params.sessions {
        match tokio::time::timeout_at(deadline, notes.recv()).await {
            Ok(Some(Note::Ended)) => ended += 1,
            Ok(Some(Note::Failed(e))) => errors.add(e),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let game_s = t0.elapsed().as_secs_f64();
    // The last view passes (podiums) follow the `ended` events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let end = cluster.usage()?;
    let window = t0.elapsed().as_secs_f64();
    cluster.stop_profiling().await;
    cluster.check_alive()?;
    let server_deliveries =
        cluster::metric_sum(&addrs, "recess_deliveries_total").await - deliveries_before;
    let commits =
        cluster::metric_sum(&addrs, "recess_snapshot_writes_total").await - commits_before;
    let stored = cluster::metric_sum(&addrs, "recess_stored_bytes_total").await - stored_before;
    let state_stored = cluster::metric_sum(&addrs, "recess_state_bytes_total").await - state_before;
    stop.cancel();

    let mut total = Report::default();
    let collect_by = Instant::now() + Duration::from_secs(10);
    for h in handles {
        match tokio::time::timeout_at(collect_by, h).await {
            Ok(Ok(r)) => total.merge(r),
            Ok(Err(e)) => errors.add(format!("client task failed: {e}")),
            Err(_) => errors.add("a client did not stop"),
        }
    }
    errors.merge(std::mem::take(&mut total.errors));
    if ended < params.sessions {
        errors.add(format!(
            "{} quizzes did not end in time",
            params.sessions - ended
        ));
    }
    let server_cpu = end.nodes_cpu_s() - start.nodes_cpu_s();
    let redis_cpu = end.redis_cpu_s() - start.redis_cpu_s();
    let per = |cpu: f64, n: u64| round(cpu * 1e6 / n.max(1) as f64, 2);
    let mut figures = Figures::default();
    figures.put("scenario", json!("district"));
    figures.put("nodes", json!(addrs.len()));
    figures.put("sessions", json!(params.sessions));
    figures.put("players_per_session", json!(params.players));
    figures.put("questions", json!(params.questions));
    figures.put("sessions_ended", json!(ended));
    figures.put("answers_acked", json!(total.acks.len()));
    figures.put("answers_late", json!(total.late));
    figures.put("lost", json!(total.unanswered));
    figures.put("view_patches", json!(total.views));
    figures.put("events", json!(total.events));
    figures.put(
        "view_patches_per_s",
        json!(round(total.views as f64 / window, 0)),
    );
    figures.put("server_cpu_s", json!(round(server_cpu, 2)));
    figures.put("cpu_us_per_view_patch", json!(per(server_cpu, total.views)));
    figures.put("redis_cpu_s", json!(round(redis_cpu, 2)));
    figures.put(
        "cpu_us_per_view_patch_with_redis",
        json!(per(server_cpu + redis_cpu, total.views)),
    );
    figures.put(
        "cpu_us_per_delivery",
        json!(per(server_cpu, server_deliveries)),
    );
    figures.put("server_deliveries", json!(server_deliveries));
    figures.put("commits", json!(commits));
    let answers = total.acks.len().max(1) as f64;
    figures.put(
        "stored_kb_per_answer",
        json!(round(stored as f64 / 1024.0 / answers, 2)),
    );
    figures.put(
        "state_kb_per_answer",
        json!(round(state_stored as f64 / 1024.0 / answers, 2)),
    );
    figures.extend(total.acks.summary("ack_"));
    figures.put(
        "client_cpu_s",
        json!(round(end.client.cpu_s - start.client.cpu_s, 2)),
    );
    figures.put("game_s", json!(round(game_s, 1)));
    figures.put("rss_mb", end.rss_mb());
    figures.put(
        "kb_per_member",
        json!(round(
            (joined.nodes_anon_kb() as f64 - empty.nodes_anon_kb() as f64) / members as f64,
            1
        )),
    );
    figures.put(
        "kb_per_member_rss",
        json!(round(
            (joined.nodes_rss_kb() as f64 - empty.nodes_rss_kb() as f64) / members as f64,
            1
        )),
    );
    figures.put("join_s", json!(round(join_s, 2)));
    figures.put("errors", errors.to_json());
    let ok = total.unanswered == 0 && errors.total() == 0 && ended == params.sessions;
    Ok(Outcome { figures, ok })
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Host {
    index: usize,
    addr: SocketAddr,
    quiz: Arc<Value>,
    start_offset: Duration,
    reveal: Duration,
    start: watch::Receiver<Option<Instant>>,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
    notes: mpsc::Sender<Note>,
}

impl Host {
    async fn run(mut self) -> Report {
        let mut report = Report::default();
        let hosted = async {
            let _permit = self.gate.acquire().await?;
            let mut socket = ws::connect(self.addr).await?;
            let welcome = ws::host(&mut socket, "quiz", &self.quiz).await?;
            let session: Arc<str> = ws::field(&welcome, "session")?.into();
            let code: Arc<str> = ws::field(&welcome, "code")?.into();
            Ok::<_, crate::Error>((socket, session, code))
        }
        .await;
        let (mut socket, session, code) = match hosted {
            Ok(h) => h,
            Err(e) => {
                let _ = self.notes.send(Note::Failed(format!("host: {e}"))).await;
                return report;
            }
        };
        let note = Note::Hosted {
            index: self.index,
            session: session.clone(),
            code,
        };
        let _ = self.notes.send(note).await;
        let t0 = tokio::select! {
            _ = self.stop.cancelled() => return report,
            t0 = self.start.wait_for(Option::is_some) => match t0.ok().and_then(|t| *t) {
                Some(t0) => t0,
                None => return report,
            },
        };
        // Replies to the host's own actions are only checked for errors.
        let mut next_ref = 1u64;
        let mut press_at = Some(t0 + self.start_offset);
        let mut command = "start";
        loop {
            let text = tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = sleep_until(press_at) => {
                    press_at = None;
                    let sent = ws::action(&mut socket, &session, command, &json!({}), next_ref).await;
                    next_ref += 1;
                    if let Err(e) = sent {
                        report.errors.add(format!("host send: {e}"));
                        break;
                    }
                    continue;
                }
                text = ws::next_text(&mut socket) => text,
            };
            let Some(text) = received(text, "host", &mut report.errors) else {
                break;
            };
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                report.errors.add("a frame that is not JSON");
                continue;
            };
            match frame.kind.as_ref() {
                "view" => report.views += 1,
                "event" => {
                    report.events += 1;
                    if frame.name.as_deref() == Some("reveal") {
                        command = "next";
                        press_at = Some(Instant::now() + self.reveal);
                    }
                }
                "ended" => {
                    report.events += 1;
                    let _ = self.notes.send(Note::Ended).await;
                }
                "error" => report.errors.add(format!(
                    "host got an error: {}",
                    frame.message.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        }
        let _ = socket.close(None).await;
        report
    }
}

struct Player {
    index: usize,
    addr: SocketAddr,
    session: Arc<str>,
    code: Arc<str>,
    think: (Duration, Duration),
    rng: Rng,
    stop: CancellationToken,
    gate: Arc<Semaphore>,
    notes: mpsc::Sender<Note>,
}

impl Player {
    async fn run(mut self) -> Report {
        let mut report = Report::default();
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
                let _ = self.notes.send(Note::Failed(format!("join: {e}"))).await;
                return report;
            }
        };
        let _ = self.notes.send(Note::Joined).await;
        // Questions seen so far; the answer to question k carries `ref` k.
        let mut asked = 0u64;
        let mut answer_at: Option<(Instant, u64)> = None;
        // The answer on its way: (ref = question number, sent at).
        let mut pending: Option<(u64, Instant)> = None;
        let (think_min, think_max) = (
            self.think.0.as_millis() as u64,
            self.think.1.as_millis() as u64,
        );
        loop {
            let text = tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = sleep_until(answer_at.map(|(at, _)| at)) => {
                    let Some((_, question)) = answer_at.take() else { continue };
                    let data = json!({"choice": 1 + self.rng.between(0, 3)});
                    if let Err(e) = ws::action(&mut socket, &self.session, "answer", &data, question).await {
                        report.errors.add(format!("player send: {e}"));
                        break;
                    }
                    if pending.replace((question, Instant::now())).is_some() {
                        report.unanswered += 1;
                    }
                    continue;
                }
                text = ws::next_text(&mut socket) => text,
            };
            let Some(text) = received(text, "player", &mut report.errors) else {
                break;
            };
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
                report.errors.add("a frame that is not JSON");
                continue;
            };
            match frame.kind.as_ref() {
                "view" => report.views += 1,
                "event" | "ended" => {
                    report.events += 1;
                    if frame.name.as_deref() == Some("question") {
                        asked += 1;
                        let think = self.rng.between(think_min, think_max);
                        answer_at = Some((Instant::now() + Duration::from_millis(think), asked));
                    }
                }
                "ack" => match pending {
                    Some((q, sent)) if frame.reference == Some(q) => {
                        report.acks.record_us(sent.elapsed().as_micros() as u64);
                        pending = None;
                    }
                    _ => report.errors.add("an ack for nothing sent"),
                },
                "error" => match pending {
                    Some((q, _)) if frame.reference == Some(q) => {
                        pending = None;
                        let message = frame.message.as_deref().unwrap_or("");
                        if message.contains("time is up") {
                            report.late += 1;
                        } else {
                            report.errors.add(format!("answer refused: {message}"));
                        }
                    }
                    _ => report.errors.add(format!(
                        "player got an error: {}",
                        frame.message.as_deref().unwrap_or("")
                    )),
                },
                _ => {}
            }
        }
        if pending.is_some() {
            report.unanswered += 1;
        }
        let _ = socket.close(None).await;
        report
    }
}
