//! The `recess` command: `recess [serve]` runs a node, `recess check`
//! validates games, `recess test` runs their tests, `recess sim` plays one
//! with bots, `recess replay` runs a recorded session again.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use recess::{Config, Server};
use tracing_subscriber::EnvFilter;

/// Session actors and Lua states allocate many small objects; mimalloc is
/// markedly faster than glibc's malloc at that (see docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "recess",
    version,
    about = "A game-session server for classrooms"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node (the default).
    Serve(Box<Config>),
    /// Load and start each game; print errors and warnings as
    /// `file:line: message`.
    Check {
        /// A games folder, a game file or a game folder (default: ./games).
        path: Option<PathBuf>,
    },
    /// Run game tests (`*_test.lua`) against headless sessions.
    Test {
        /// A games folder, a game folder or a test file (default: ./games).
        path: Option<PathBuf>,
    },
    /// Play a session headless with bots and print what happens.
    Sim(SimArgs),
    /// Run a recorded session again and check every message is the same.
    Replay {
        /// A recording (`GET /api/sessions/{id}/recording`, or the host
        /// page's "Download recording").
        file: PathBuf,
        /// Replay against the game in this folder instead of the recorded
        /// rules.
        #[arg(long)]
        games: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SimArgs {
    /// The game to play (its name in the games folder).
    game: String,
    /// Bots that join.
    #[arg(long, default_value_t = 3)]
    players: usize,
    /// Where every random choice comes from: the same seed, the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Play these inputs (JSON lines, as a failed run saves them) instead
    /// of random ones.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Play until the game ends.
    #[arg(long)]
    until_end: bool,
    /// Random steps to play (without --until-end).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// The session's params, as JSON.
    #[arg(long, default_value = "{}")]
    params: String,
    /// Where to save the inputs when a script error stops the run.
    #[arg(long)]
    save: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The authoring tools print their own output: only warnings and what
    // games log (`ctx.log`) go to stderr beside it.
    let default_filter = match cli.command {
        Some(Cmd::Test { .. } | Cmd::Sim(_)) => "warn,recess::game=info",
        // `check` prints every problem itself; what a replayed game logs
        // was logged when it happened.
        Some(Cmd::Check { .. } | Cmd::Replay { .. }) => "error",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RECESS_LOG")
                .unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Cmd::Check { path }) => {
            check(path.unwrap_or_else(|| cli.serve.games.clone()), &cli.serve)
        }
        Some(Cmd::Test { path }) => {
            let path = path.unwrap_or_else(|| cli.serve.games.clone());
            let mut out = std::io::stdout().lock();
            match recess::authoring::test::run(&path, cli.serve.limits(), &mut out) {
                Ok(tally) if tally.failed == 0 => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("recess test: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Cmd::Sim(args)) => sim(args, &cli.serve),
        Some(Cmd::Replay { file, games }) => {
            let options = recess::authoring::replay::Options { file, games };
            let mut out = std::io::stdout().lock();
            match recess::authoring::replay::run(&options, &mut out) {
                Ok(recess::authoring::replay::Verdict::Identical) => ExitCode::SUCCESS,
                Ok(recess::authoring::replay::Verdict::Differs) => ExitCode::FAILURE,
                // Not a verdict: the replay could not be made at all.
                Err(e) => {
                    eprintln!("recess replay: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Some(Cmd::Serve(config)) => serve(*config),
        None => serve(cli.serve),
    }
}

fn check(path: PathBuf, config: &Config) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match recess::authoring::check::run(&path, config.limits(), &mut out) {
        Ok(report) if report.games.is_empty() => {
            eprintln!("{}: no games found", path.display());
            ExitCode::FAILURE
        }
        Ok(report) if report.failed() => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recess check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sim(args: SimArgs, config: &Config) -> ExitCode {
    let params = match serde_json::from_str(&args.params) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("recess sim: --params is not JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = recess::authoring::sim::Options {
        game: args.game,
        games: config.games.clone(),
        players: args.players,
        seed: args.seed,
        params,
        actions: args.actions,
        until_end: args.until_end,
        steps: args.steps,
        save: args.save,
    };
    let mut out = std::io::stdout().lock();
    match recess::authoring::sim::run(&options, config.limits(), &mut out) {
        Ok(ending) if ending.failed(options.until_end) => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recess sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.threads > 0 {
        builder.worker_threads(config.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("recess: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("recess: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("recess listening on http://{}", server.addr);
        if let Some(url) = server.join_url() {
            println!("students join at {url}");
        }
        tracing::info!(addr = %server.addr, node = %server.node_id(), "recess listening");
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
