//! `loadgen`: Recess's load tool.
//!
//! It starts its own `recess` nodes (and, for two nodes, its own
//! `redis-server`), all on 127.0.0.1 and free ports, drives them with real
//! WebSocket and REST clients speaking protocol v1, and prints one JSON line of
//! figures per run on stdout (progress goes to stderr). Every process it starts
//! is killed when it stops, also on error and on Ctrl-C.
//!
//! ```sh
//! cargo build --release --bin recess
//! cargo run --release --example loadgen -- fanout-2k
//! cargo run --release --example loadgen -- fanout --nodes 1 --players 50 --seconds 2
//! ```
//!
//! Scenarios, options and the figures measured on the reference machine are in
//! `docs/performance.md`. The exit status is 0 when nothing was lost and no
//! client failed, 1 when something was lost or failed, 2 when the run could
//! not be set up.

#[path = "loadgen/burst.rs"]
mod burst;
#[path = "loadgen/cluster.rs"]
mod cluster;
#[path = "loadgen/district.rs"]
mod district;
#[path = "loadgen/fanout.rs"]
mod fanout;
#[path = "loadgen/floor.rs"]
mod floor;
#[path = "loadgen/http.rs"]
mod http;
#[path = "loadgen/idle.rs"]
mod idle;
#[path = "loadgen/stats.rs"]
mod stats;
#[path = "loadgen/ws.rs"]
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with an error built like `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(format!($($arg)*).into())
    };
}
pub(crate) use bail;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// One session, 2000 players, 20 REST broadcasts/s for 25 s.
    #[value(name = "fanout-2k")]
    Fanout2k,
    /// One session, 10 000 players, 5 REST broadcasts/s for 25 s.
    #[value(name = "fanout-10k")]
    Fanout10k,
    /// Like fanout-2k, sized by --players, --rate and --seconds.
    Fanout,
    /// One session, 1000 players each answering within the same second.
    Burst,
    /// 300 sessions x 30 players playing games/quiz.lua at human pace.
    District,
    /// 10 000 sessions of games/chat.lua created over REST, nobody connected.
    Idle,
    /// No Recess: the kernel's CPU cost of one loopback delivery, as a yardstick.
    Floor,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fanout2k => "fanout-2k",
            Scenario::Fanout10k => "fanout-10k",
            Scenario::Fanout => "fanout",
            Scenario::Burst => "burst",
            Scenario::District => "district",
            Scenario::Idle => "idle",
            Scenario::Floor => "floor",
        }
    }
}

/// Load tool for Recess: starts its own nodes on 127.0.0.1 and prints one JSON
/// line of figures.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
pub struct Cli {
    /// What to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Number of recess nodes: 1 (no Redis) or 2 (with a Redis the tool starts).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub nodes: u8,
    /// Players (fanout, burst: in the session; district: per session).
    #[arg(long)]
    pub players: Option<usize>,
    /// Broadcasting time in seconds (fanout).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Broadcasts per second (fanout).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Sessions (district, idle).
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Questions per quiz (district).
    #[arg(long, default_value_t = 5)]
    pub questions: usize,
    /// Seconds per question (district; `time_limit` of games/quiz.lua).
    #[arg(long, default_value_t = 15.0)]
    pub time_limit: f64,
    /// A bot's thinking time before it answers, in ms: MIN-MAX (district).
    #[arg(long, default_value = "1000-6000")]
    pub think_ms: String,
    /// The host's pause on each reveal before pressing Next, in ms (district).
    #[arg(long, default_value_t = 3000)]
    pub reveal_ms: u64,
    /// Hosts start their quizzes spread over this many ms (district).
    #[arg(long, default_value_t = 5000)]
    pub stagger_ms: u64,
    /// Window in which every player answers, in ms (burst).
    #[arg(long, default_value_t = 1000)]
    pub window_ms: u64,
    /// Seconds of quiet after creating the sessions, to measure idle CPU (idle).
    #[arg(long, default_value_t = 5.0)]
    pub idle_seconds: f64,
    /// Connections opened at once while players join.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Threads of the load client's own runtime (it shares the machine with the nodes).
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// The recess binary (default: `recess` beside this example's target folder).
    #[arg(long, env = "LOADGEN_RECESS_BIN")]
    pub bin: Option<PathBuf>,
    /// Record a `perf` CPU profile of every node during the measured window into this folder.
    #[arg(long)]
    pub perf: Option<PathBuf>,
    /// The nodes' log filter (`RECESS_LOG`); their logs are shown when a run fails.
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// More flags for every node, e.g. `--server-args "--view-interval-ms 200"`
    /// (the tool sets --port, --bind, --games, --data, --redis and --node-id).
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    pub server_args: String,
    /// Copy the nodes' logs into this folder at the end.
    #[arg(long)]
    pub keep_logs: Option<PathBuf>,
    /// Seed of the bots' random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Give up (and stop everything) after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub max_seconds: u64,
}

/// The outcome of a scenario: its JSON line and whether it passed.
pub struct Outcome {
    pub figures: stats::Figures,
    pub ok: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let limit = Duration::from_secs(cli.max_seconds);
    let result = runtime.block_on(async {
        tokio::select! {
            r = tokio::time::timeout(limit, run(&cli)) => match r {
                Ok(r) => r,
                Err(_) => Err(format!("gave up after {} s (--max-seconds)", cli.max_seconds).into()),
            },
            signal = stop_signal() => Err(format!("stopped by {signal}").into()),
        }
    });
    // Client tasks still running are dropped with the runtime; the processes
    // were killed when the cluster was dropped.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(outcome) => {
            println!("{}", outcome.figures);
            if outcome.ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("loadgen: FAILED (see `lost` and `errors` above)");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP, so that `run` is dropped and every
/// process it started is stopped before the tool exits.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
    }
}

async fn run(cli: &Cli) -> Result<Outcome> {
    // The nodes to start (every scenario but `floor` has some).
    let options = || -> Result<cluster::Options> {
        Ok(cluster::Options {
            nodes: usize::from(cli.nodes),
            bin: cluster::recess_binary(cli.bin.as_deref())?,
            perf: cli.perf.clone(),
            log: cli.server_log.clone(),
            keep_logs: cli.keep_logs.clone(),
            server_args: cli
                .server_args
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    };
    match cli.scenario {
        Scenario::Fanout2k | Scenario::Fanout10k | Scenario::Fanout => {
            let (players, rate, seconds) = match cli.scenario {
                Scenario::Fanout10k => (10_000, 5.0, 25.0),
                _ => (2000, 20.0, 25.0),
            };
            let params = fanout::Params {
                players: cli.players.unwrap_or(players),
                rate: cli.rate.unwrap_or(rate),
                seconds: cli.seconds.unwrap_or(seconds),
                connect_concurrency: cli.connect_concurrency,
            };
            fanout::run(cli.scenario.name(), &options()?, &params).await
        }
        Scenario::Burst => {
            let params = burst::Params {
                players: cli.players.unwrap_or(1000),
                window: Duration::from_millis(cli.window_ms),
                connect_concurrency: cli.connect_concurrency,
                seed: cli.seed,
            };
            burst::run(&options()?, &params).await
        }
        Scenario::District => {
            let (think_min, think_max) = parse_range(&cli.think_ms)?;
            let params = district::Params {
                sessions: cli.sessions.unwrap_or(300),
                players: cli.players.unwrap_or(30),
                questions: cli.questions.max(1),
                time_limit: cli.time_limit,
                think: (
                    Duration::from_millis(think_min),
                    Duration::from_millis(think_max),
                ),
                reveal: Duration::from_millis(cli.reveal_ms),
                stagger: Duration::from_millis(cli.stagger_ms),
                connect_concurrency: cli.connect_concurrency,
                seed: cli.seed,
            };
            district::run(&options()?, &params).await
        }
        Scenario::Idle => {
            let params = idle::Params {
                sessions: cli.sessions.unwrap_or(10_000),
                quiet: Duration::from_secs_f64(cli.idle_seconds.max(0.0)),
            };
            idle::run(&options()?, &params).await
        }
        Scenario::Floor => {
            let params = floor::Params {
                sockets: cli.players.unwrap_or(2000),
                rate: cli.rate.unwrap_or(20.0),
                seconds: cli.seconds.unwrap_or(10.0),
            };
            floor::run(params).await
        }
    }
}

/// `"A-B"` → `(A, B)` with `A <= B`.
fn parse_range(text: &str) -> Result<(u64, u64)> {
    let parsed = text
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((a, b)) if a <= b => Ok((a, b)),
        _ => bail!("--think-ms wants MIN-MAX in ms, e.g. 1000-6000 (got {text:?})"),
    }
}
