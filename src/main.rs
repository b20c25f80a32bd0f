//! The `recess` command: `recess [serve]` runs a node, `recess check`
//! validates games, `recess test` runs their tests.

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
    /// Validate games and print errors as `file:line: message`.
    Check {
        /// A games folder, a game file or a game folder (default: ./games).
        path: Option<PathBuf>,
    },
    /// Run game tests (`*_test.lua`) against headless sessions.
    Test {
        /// A games folder, a game folder or a test file (default: ./games).
        path: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RECESS_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
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
        Some(Cmd::Serve(config)) => serve(*config),
        None => serve(cli.serve),
    }
}

fn check(path: PathBuf, config: &Config) -> ExitCode {
    let results = recess::script::catalog::check_path(&path, config.limits());
    if results.is_empty() {
        eprintln!("{}: no games found", path.display());
        return ExitCode::FAILURE;
    }
    let mut failed = false;
    for (name, error) in results {
        match error {
            None => println!("ok  {name}"),
            Some(e) => {
                failed = true;
                println!("{e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
