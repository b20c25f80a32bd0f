//! Node configuration: every flag of `recess serve`, each with an environment
//! variable, and the defaults a laptop in a classroom needs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::script::Limits;

/// The settings of one node: every flag of `recess serve`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// TCP port; 0 picks a free one (the chosen port is printed).
    #[arg(long, env = "RECESS_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on; 0.0.0.0 to serve a classroom network.
    #[arg(long, env = "RECESS_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Folder of game rules (`NAME.lua` or `NAME/init.lua`).
    #[arg(long, env = "RECESS_GAMES", default_value = "games")]
    pub games: PathBuf,
    /// Folder for the sled snapshot cache.
    #[arg(long, env = "RECESS_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Redis URL to join a cluster (e.g. redis://127.0.0.1:6379). Without it
    /// the node runs alone with the in-process bus.
    #[arg(long, env = "RECESS_REDIS")]
    pub redis: Option<String>,
    /// This node's name in the cluster; each process adds a random suffix
    /// (its instance name), so a restarted node is a new instance.
    #[arg(long, env = "RECESS_NODE_ID")]
    pub node_id: Option<String>,
    /// When set, `host` frames (and `POST /api/sessions`) must carry this key.
    #[arg(long, env = "RECESS_HOST_KEY")]
    pub host_key: Option<String>,
    /// The REST API's key (`Authorization: Bearer KEY`). Without it the routes
    /// that read or change sessions answer 403 (docs/security.md).
    #[arg(long, env = "RECESS_API_KEY")]
    pub api_key: Option<String>,
    /// More API keys, one `NAME KEY` a line (the name is what logs show);
    /// read again on SIGHUP, so keys rotate without a restart.
    #[arg(long, env = "RECESS_API_KEYS")]
    pub api_keys: Option<PathBuf>,
    /// More host keys, as `--api-keys`.
    #[arg(long, env = "RECESS_HOST_KEYS")]
    pub host_keys: Option<PathBuf>,
    /// Where webhooks go (`http://HOST:PORT/PATH`); may be given several
    /// times (docs/api.md, "Webhooks").
    #[arg(long = "webhook", env = "RECESS_WEBHOOKS", value_delimiter = ',')]
    pub webhooks: Vec<String>,
    /// The secret each webhook is signed with: one for all, or one per
    /// `--webhook` in the same order.
    #[arg(
        long = "webhook-secret",
        env = "RECESS_WEBHOOK_SECRETS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secrets: Vec<String>,
    /// How long a webhook is retried for one receiver before it is given up.
    #[arg(long, env = "RECESS_WEBHOOK_GIVE_UP_MIN", default_value_t = 60)]
    pub webhook_give_up_min: u64,
    /// Browser origins allowed to open WebSockets, comma-separated
    /// (e.g. `https://games.school.example`). Pages this node served from an IP
    /// address or localhost are always allowed; a hostname must be listed.
    /// Clients without an Origin header (bots, apps) are always accepted.
    #[arg(long, env = "RECESS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Inbound frames above this many bytes get a `too_large` error.
    #[arg(long, env = "RECESS_MAX_FRAME", default_value_t = 64 * 1024)]
    pub max_frame: usize,
    /// Minimum time between two view passes of one session, in ms.
    #[arg(long, env = "RECESS_VIEW_INTERVAL_MS", default_value_t = 50)]
    pub view_interval_ms: u64,
    /// Past capacity the view interval grows with the sessions' scheduling
    /// lag (views coalesce, acks keep up), up to this many ms; at most
    /// `--view-interval-ms` keeps it fixed.
    #[arg(long, env = "RECESS_VIEW_INTERVAL_MAX_MS", default_value_t = 1000)]
    pub view_interval_max_ms: u64,
    /// Messages per session kept for `resume`.
    #[arg(long, env = "RECESS_REPLAY_WINDOW", default_value_t = 1000)]
    pub replay_window: usize,
    /// A session's recording (`GET /api/sessions/{id}/recording`, for
    /// `recess replay`) keeps this many KiB of messages in full, then their
    /// hashes; it stops at twice this. 0: sessions are not recorded.
    #[arg(long, env = "RECESS_RECORDING_KIB", default_value_t = 4096)]
    pub recording_kib: usize,
    /// A file of names students may not use, one word a line, replacing the
    /// shipped list (docs/security.md, "Names").
    #[arg(long, env = "RECESS_BLOCKED_NAMES")]
    pub blocked_names: Option<PathBuf>,
    /// Lua memory per session, in MiB.
    #[arg(long, env = "RECESS_SESSION_MEMORY_MB", default_value_t = 16)]
    pub session_memory_mb: usize,
    /// CPU budget per handler call, in Lua VM instructions (millions).
    #[arg(long, env = "RECESS_CPU_BUDGET_M", default_value_t = 20)]
    pub cpu_budget_m: u64,
    /// Most WebSocket and HTTP connections served at once.
    #[arg(long, env = "RECESS_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Minutes an ended session stays (for its results) before it is removed.
    #[arg(long, env = "RECESS_ENDED_TTL_MIN", default_value_t = 60)]
    pub ended_ttl_min: u64,
    /// Hours a session with nobody connected and nothing happening is kept.
    #[arg(long, env = "RECESS_IDLE_TTL_H", default_value_t = 24)]
    pub idle_ttl_h: u64,
    /// sled page cache, in MiB.
    #[arg(long, env = "RECESS_SLED_CACHE_MB", default_value_t = 64)]
    pub sled_cache_mb: u64,
    /// Runtime worker threads for sockets and HTTP; 0 means one per core.
    #[arg(long, env = "RECESS_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Threads that run sessions (their Lua handlers), apart from the
    /// sockets' threads so a long handler delays no socket; 0 means one per
    /// core.
    #[arg(long, env = "RECESS_SCRIPT_THREADS", default_value_t = 0)]
    pub script_threads: usize,
    /// Time a client has to send a request's headers (and a REST body), in ms.
    #[arg(long, env = "RECESS_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// Most live sessions this node keeps.
    #[arg(long, env = "RECESS_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,
    /// Most live sessions hosted from one client address (0: no limit).
    #[arg(long, env = "RECESS_MAX_SESSIONS_PER_ADDRESS", default_value_t = 200)]
    pub max_sessions_per_address: usize,
    /// Frames per second one WebSocket may send, sustained.
    #[arg(long, env = "RECESS_FRAME_RATE", default_value_t = 20)]
    pub frame_rate: u32,
    /// Frames one WebSocket may send at once above the sustained rate.
    #[arg(long, env = "RECESS_FRAME_BURST", default_value_t = 40)]
    pub frame_burst: u32,
    /// Proxies (e.g. nginx) whose `X-Forwarded-For` names the client,
    /// comma-separated; loopback addresses are always trusted.
    #[arg(long, env = "RECESS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
    /// Wall-clock time per handler call, in ms, on top of the instruction
    /// budget: what bounds work done inside library functions.
    #[arg(long, env = "RECESS_CPU_BUDGET_MS", default_value_t = 250)]
    pub cpu_budget_ms: u64,
    /// The address students' devices open when it is not this node's own
    /// (behind nginx, or under a DNS name): `http(s)://NAME[:PORT][/PATH]`.
    /// The host page shows it, and its QR code, instead of the address it
    /// finds by itself (docs/web-client.md); its origin may open game
    /// sockets, as if listed in `--allowed-origins`.
    #[arg(long, env = "RECESS_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
}

/// `--public-url`: an `http` or `https` URL with a host, no query and no
/// fragment (the join code is added as `?code=`), at most 512 bytes so its
/// QR code stays small enough to scan; kept with one trailing `/`.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or("the public URL must start with http:// or https://")?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') {
        return Err("the public URL needs a host name or address after http(s)://".into());
    }
    if s.contains(['?', '#'])
        || s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("the public URL may not have a query (?), a fragment (#) or spaces".into());
    }
    if s.len() > 512 {
        return Err("the public URL may be at most 512 characters".into());
    }
    Ok(format!("{}/", s.trim_end_matches('/')))
}

impl Config {
    /// The sandbox limits of every session: `--cpu-budget-m`, `--cpu-budget-ms`
    /// and `--session-memory-mb` (at least 100 000 units, 10 ms and 1 MiB); the
    /// other limits are the defaults.
    pub fn limits(&self) -> Limits {
        Limits {
            cpu_units: self.cpu_budget_m.saturating_mul(1_000_000).max(100_000),
            cpu_time: Duration::from_millis(self.cpu_budget_ms.max(10)),
            memory_bytes: self.session_memory_mb.max(1) << 20,
            ..Limits::default()
        }
    }

    /// `--header-timeout-ms` as a duration (at least 1 ms).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms.max(1))
    }

    /// Where the API and host keys come from.
    pub(crate) fn key_sources(&self) -> crate::keys::KeySources {
        crate::keys::KeySources {
            api_flag: self.api_key.clone(),
            host_flag: self.host_key.clone(),
            api_file: self.api_keys.clone(),
            host_file: self.host_keys.clone(),
        }
    }

    /// `--view-interval-ms` as a duration.
    pub fn view_interval(&self) -> Duration {
        Duration::from_millis(self.view_interval_ms)
    }

    /// A configuration for tests and embedding: defaults, port 0, given folders.
    pub fn for_dirs(games: impl Into<PathBuf>, data: impl Into<PathBuf>) -> Config {
        Config {
            port: 0,
            bind: IpAddr::from([127, 0, 0, 1]),
            games: games.into(),
            data: data.into(),
            redis: None,
            node_id: None,
            host_key: None,
            api_key: None,
            api_keys: None,
            host_keys: None,
            webhooks: Vec::new(),
            webhook_secrets: Vec::new(),
            webhook_give_up_min: 60,
            allowed_origins: Vec::new(),
            max_frame: 64 * 1024,
            view_interval_ms: 50,
            view_interval_max_ms: 1000,
            replay_window: 1000,
            recording_kib: 4096,
            blocked_names: None,
            session_memory_mb: 16,
            cpu_budget_m: 20,
            max_connections: 20_000,
            ended_ttl_min: 60,
            idle_ttl_h: 24,
            sled_cache_mb: 64,
            threads: 0,
            script_threads: 0,
            header_timeout_ms: 10_000,
            max_sessions: 10_000,
            max_sessions_per_address: 200,
            frame_rate: 20,
            frame_burst: 40,
            trusted_proxies: Vec::new(),
            cpu_budget_ms: 250,
            public_url: None,
        }
    }
}
