//! The processes under test: `recess` nodes and a `redis-server`, started on
//! 127.0.0.1 and free ports with temp folders, and their CPU time and RSS read
//! from `/proc`. Every process is started with `kill_on_drop`, and `Cluster::stop`
//! kills and reaps them, so none outlives the tool.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{Result, bail};

/// The load tool's bench game, written into the nodes' games folder.
const BENCH_LUA: &str = include_str!("bench.lua");
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a node may take to shut down after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub struct Options {
    pub nodes: usize,
    pub bin: PathBuf,
    /// Where `perf record` writes one profile per node, if wanted.
    pub perf: Option<PathBuf>,
    /// The nodes' `RECESS_LOG` filter.
    pub log: String,
    /// Where to copy the nodes' logs at the end, if wanted.
    pub keep_logs: Option<PathBuf>,
    /// More `recess` flags for every node (e.g. `--view-interval-ms 200`).
    pub server_args: Vec<String>,
}

/// The `recess` binary: `--bin`, else `recess` in the same target profile
/// folder as this example (`target/release/examples/loadgen` →
/// `target/release/recess`).
pub fn recess_binary(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = given {
        if !path.is_file() {
            bail!("{} does not exist (--bin)", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe()?;
    let Some(profile) = exe.parent().and_then(Path::parent) else {
        bail!("cannot locate the recess binary; pass --bin PATH");
    };
    let candidate = profile.join("recess");
    if !candidate.is_file() {
        let release = profile.file_name().is_some_and(|n| n == "release");
        bail!(
            "{} does not exist: build the server first with `cargo build{} --bin recess` (or pass --bin PATH)",
            candidate.display(),
            if release { " --release" } else { "" }
        );
    }
    Ok(candidate)
}

/// A free TCP port on 127.0.0.1 (free when returned).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub struct Node {
    pub name: String,
    pub addr: SocketAddr,
    pub pid: u32,
    child: Child,
    log: PathBuf,
}

pub struct Redis {
    pub pid: u32,
    child: Child,
}

/// The nodes (and Redis) of one run, with their temp folders.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: Option<Redis>,
    perf: Vec<Child>,
    perf_dir: Option<PathBuf>,
    keep_logs: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts Redis (for more than one node), then the nodes, one after the
    /// other, each waiting for its `recess listening on` line.
    pub async fn start(options: &Options) -> Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("recess-loadgen-")
            .tempdir()?;
        let mut cluster = Cluster {
            nodes: Vec::new(),
            redis: None,
            perf: Vec::new(),
            perf_dir: options.perf.clone(),
            keep_logs: options.keep_logs.clone(),
            dir,
        };
        let redis_url = if options.nodes > 1 {
            let (redis, url) = start_redis(cluster.dir.path()).await?;
            cluster.redis = Some(redis);
            Some(url)
        } else {
            None
        };
        for i in 0..options.nodes {
            let name = ((b'a' + i as u8) as char).to_string();
            // Each node gets its own copy of the games, as on separate
            // machines: nodes sharing one folder set off each other's hot
            // reload (reading a game file counts as a change; see
            // docs/performance.md).
            let games = cluster.dir.path().join(format!("games-{name}"));
            write_games(&games)?;
            let node = start_node(
                options,
                cluster.dir.path(),
                &games,
                &name,
                redis_url.as_deref(),
            )
            .await?;
            eprintln!(
                "loadgen: node {name} listening on {} (pid {})",
                node.addr, node.pid
            );
            cluster.nodes.push(node);
        }
        Ok(cluster)
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.addr).collect()
    }

    /// Current CPU time and RSS of every node, of Redis and of this tool.
    pub fn usage(&self) -> Result<UsageSet> {
        let nodes = self
            .nodes
            .iter()
            .map(|n| Ok((n.name.clone(), usage(n.pid)?)))
            .collect::<Result<Vec<_>>>()?;
        let redis = match &self.redis {
            Some(r) => Some(usage(r.pid)?),
            None => None,
        };
        Ok(UsageSet {
            nodes,
            redis,
            client: usage(std::process::id())?,
        })
    }

    /// Fails if a node or Redis has exited (showing the end of a node's log).
    pub fn check_alive(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            if let Some(status) = node.child.try_wait()? {
                let tail = log_tail(&node.log);
                bail!(
                    "node {} exited ({status}); its log ends with:\n{tail}",
                    node.name
                );
            }
        }
        if let Some(redis) = &mut self.redis
            && let Some(status) = redis.child.try_wait()?
        {
            bail!("redis-server exited ({status})");
        }
        Ok(())
    }

    /// Starts `perf record` on every node when `--perf` was given.
    pub async fn start_profiling(&mut self, label: &str) -> Result<()> {
        let Some(dir) = self.perf_dir.clone() else {
            return Ok(());
        };
        std::fs::create_dir_all(&dir)?;
        for node in &self.nodes {
            let out = dir.join(format!("{label}-node-{}.data", node.name));
            let child = Command::new("perf")
                .args([
                    "record",
                    "-e",
                    "cpu-clock",
                    "-F",
                    "499",
                    "--call-graph",
                    "dwarf,16384",
                ])
                .arg("-p")
                .arg(node.pid.to_string())
                .arg("-o")
                .arg(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run perf (install linux-perf): {e}"))?;
            eprintln!(
                "loadgen: profiling node {} into {}",
                node.name,
                out.display()
            );
            self.perf.push(child);
        }
        // perf needs a moment to attach before the window starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(())
    }

    /// Stops `perf record` (SIGINT, so it writes its file) and waits for it.
    pub async fn stop_profiling(&mut self) {
        for mut child in std::mem::take(&mut self.perf) {
            signal(&child, "INT").await;
            if tokio::time::timeout(Duration::from_secs(60), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }

    /// Prints the end of every node's log (warnings and errors) to stderr.
    pub fn print_logs(&self) {
        for node in &self.nodes {
            let tail = log_tail(&node.log);
            if !tail.is_empty() {
                eprintln!("loadgen: node {}'s log ends with:\n{tail}", node.name);
            }
        }
    }

    /// Kills and reaps every process of the run; on failure first prints the
    /// nodes' logs.
    pub async fn finish(self, result: &Result<crate::Outcome>) {
        if !matches!(result, Ok(o) if o.ok) {
            self.print_logs();
        }
        if let Some(to) = &self.keep_logs {
            let copied = std::fs::create_dir_all(to).and_then(|()| {
                for node in &self.nodes {
                    std::fs::copy(&node.log, to.join(format!("node-{}.log", node.name)))?;
                }
                Ok(())
            });
            match copied {
                Ok(()) => eprintln!("loadgen: node logs copied to {}", to.display()),
                Err(e) => eprintln!("loadgen: cannot copy the node logs: {e}"),
            }
        }
        self.stop().await;
    }

    /// Stops every process of the run: the nodes with SIGTERM (a clean
    /// shutdown, so tools such as valgrind write their reports), SIGKILL for
    /// any still running after a grace period; then Redis.
    pub async fn stop(mut self) {
        self.stop_profiling().await;
        for node in &self.nodes {
            signal(&node.child, "TERM").await;
        }
        for node in &mut self.nodes {
            if tokio::time::timeout(STOP_GRACE, node.child.wait())
                .await
                .is_err()
            {
                let _ = node.child.kill().await;
            }
        }
        if let Some(redis) = &mut self.redis {
            let _ = redis.child.kill().await;
        }
    }
}

/// Sends a signal (`TERM`, `INT`) to a child that is still running.
async fn signal(child: &Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .await;
    }
}

/// The shipped `games/*.lua` and the bench game, in a fresh folder.
fn write_games(games: &Path) -> Result<()> {
    std::fs::create_dir_all(games)?;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("games");
    for entry in std::fs::read_dir(&shipped)
        .map_err(|e| format!("cannot read {}: {e}", shipped.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "lua")
            && let Some(name) = path.file_name()
        {
            std::fs::copy(&path, games.join(name))?;
        }
    }
    std::fs::write(games.join("bench.lua"), BENCH_LUA)?;
    Ok(())
}

async fn start_redis(dir: &Path) -> Result<(Redis, String)> {
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("redis.log"))?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::from(log))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run redis-server (is it installed?): {e}"))?;
    let pid = child.id().ok_or("redis-server exited at once")?;
    let redis = Redis { pid, child };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ready = tokio::time::timeout(START_TIMEOUT, async {
        loop {
            if redis_ping(addr).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if ready.is_err() {
        bail!("redis-server did not answer PING on {addr} within {START_TIMEOUT:?}");
    }
    eprintln!("loadgen: redis-server on {addr} (pid {pid})");
    Ok((redis, format!("redis://{addr}")))
}

async fn redis_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    stream.read_exact(&mut buf).await.is_ok() && &buf == b"+PONG\r\n"
}

async fn start_node(
    options: &Options,
    dir: &Path,
    games: &Path,
    name: &str,
    redis: Option<&str>,
) -> Result<Node> {
    let data = dir.join(format!("data-{name}"));
    let log = dir.join(format!("node-{name}.log"));
    let bin = &options.bin;
    let mut command = Command::new(bin);
    // Only the flags below configure the node, not the caller's RECESS_* variables.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RECESS_") {
            command.env_remove(key);
        }
    }
    command
        .env("RECESS_LOG", &options.log)
        .args(["--port", "0", "--bind", "127.0.0.1"])
        .arg("--games")
        .arg(games)
        .arg("--data")
        .arg(&data);
    if let Some(url) = redis {
        command.args(["--redis", url, "--node-id", name]);
    }
    // Every client of a load run comes from 127.0.0.1: the per-address cap
    // on hosted sessions would stop a district's 300 classrooms, and the
    // idle scenario keeps more sessions than a node's default cap.
    command
        .args(["--api-key", crate::http::API_KEY])
        .args(["--max-sessions-per-address", "0"])
        .args(["--max-sessions", "1000000"]);
    // Players are named by number (`p155`), which the shipped list of
    // blocked names reads as leet (`piss`): an empty list lets them all in.
    let no_blocked_names = dir.join("blocked-names.txt");
    std::fs::write(&no_blocked_names, "")?;
    command.arg("--blocked-names").arg(&no_blocked_names);
    command.args(&options.server_args);
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log)?))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let pid = child.id().ok_or("recess exited at once")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        _ => {
            let _ = child.kill().await;
            bail!(
                "node {name} did not print its listening line; its log ends with:\n{}",
                log_tail(&log)
            );
        }
    };
    let Some(addr) = line
        .strip_prefix("recess listening on http://")
        .and_then(|a| a.trim().parse::<SocketAddr>().ok())
    else {
        let _ = child.kill().await;
        bail!("node {name} printed {line:?} instead of its listening line");
    };
    if !addr.ip().is_loopback() {
        let _ = child.kill().await;
        bail!("node {name} listens on {addr}, not on 127.0.0.1");
    }
    // Nothing else is expected on stdout; keep the pipe drained anyway.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Node {
        name: name.to_owned(),
        addr,
        pid,
        child,
        log,
    })
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// CPU time (user + system, all threads) and resident memory of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_s: f64,
    /// All resident memory (`VmRSS`), including the pages of the executable
    /// and libraries that the process has touched so far.
    pub rss_kb: u64,
    /// Resident memory the process allocated (`RssAnon`: heap, stacks). The
    /// per-connection, per-session and per-member figures use this: a run
    /// first touches part of the executable's code (~4 MB per node) while
    /// players join, which `VmRSS` would charge to them.
    pub anon_kb: u64,
}

/// `Usage` of every process of a run at one moment.
#[derive(Debug, Clone)]
pub struct UsageSet {
    pub nodes: Vec<(String, Usage)>,
    pub redis: Option<Usage>,
    pub client: Usage,
}

impl UsageSet {
    pub fn nodes_cpu_s(&self) -> f64 {
        self.nodes.iter().map(|(_, u)| u.cpu_s).sum()
    }

    pub fn nodes_rss_kb(&self) -> u64 {
        self.nodes.iter().map(|(_, u)| u.rss_kb).sum()
    }

    pub fn nodes_anon_kb(&self) -> u64 {
        self.nodes.iter().map(|(_, u)| u.anon_kb).sum()
    }

    pub fn redis_cpu_s(&self) -> f64 {
        self.redis.map_or(0.0, |u| u.cpu_s)
    }

    /// `{"a": MB, "b": MB}`.
    pub fn rss_mb(&self) -> serde_json::Value {
        self.nodes
            .iter()
            .map(|(name, u)| {
                (
                    name.clone(),
                    serde_json::json!(crate::stats::round(u.rss_kb as f64 / 1024.0, 1)),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// User + system CPU seconds from a `stat` file of proc(5).
fn stat_cpu_s(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // The command name may contain spaces: fields are counted after its ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("malformed {path}"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 14 (utime) and 15 (stime) of proc(5); `after` starts at field 3.
    let ticks = |i: usize| -> Result<u64> {
        Ok(fields
            .get(i - 3)
            .ok_or_else(|| format!("short {path}"))?
            .parse::<u64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) as f64 / clock_ticks())
}

/// CPU seconds of the calling thread.
pub fn thread_cpu_s() -> Result<f64> {
    stat_cpu_s("/proc/thread-self/stat")
}

/// Reads `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS,
/// RssAnon).
pub fn usage(pid: u32) -> Result<Usage> {
    let cpu_s = stat_cpu_s(&format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |field: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        cpu_s,
        rss_kb: kb("VmRSS:"),
        anon_kb: kb("RssAnon:"),
    })
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, else 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// Fails with advice when this process may not open `needed` files.
pub fn check_fd_limit(needed: usize) -> Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft_hard = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .map(|l| {
            let numbers: Vec<&str> = l.split_whitespace().skip(3).take(2).collect();
            (
                numbers.first().and_then(|n| n.parse::<usize>().ok()),
                numbers.get(1).map(|n| n.to_string()).unwrap_or_default(),
            )
        });
    if let Some((Some(soft), hard)) = soft_hard
        && soft < needed
    {
        bail!(
            "this run needs about {needed} open files but the limit is {soft} (hard limit {hard}); \
             raise it in the shell first, e.g. `ulimit -n {}`",
            needed.next_power_of_two().max(4096)
        );
    }
    Ok(())
}

/// Sum of one counter of `/metrics` over the nodes.
pub async fn metric_sum(addrs: &[SocketAddr], name: &str) -> u64 {
    let mut total = 0;
    for addr in addrs {
        if let Ok(text) = crate::http::get_text(*addr, "/metrics").await {
            total += text
                .lines()
                .find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix(' '))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .unwrap_or(0);
        }
    }
    total
}
