//! The HTTP server: one listener for the WebSocket endpoint `/games`, the REST
//! API under `/api`, `/healthz`, `/metrics` and the browser pages.
//!
//! Connections are bounded by a semaphore. Shutdown is explicit: the node's
//! `CancellationToken` stops the accept loop, closes WebSockets with 1001
//! (hyper's graceful shutdown does not cover upgraded connections) and lets
//! session actors finish their last commit; `Server::shutdown` waits for all.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::handshake::derive_accept_key;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::cluster::redis::{RedisBus, RedisCluster};
use crate::cluster::{Cluster, INBOUND_QUEUE, LocalBus, LocalCluster};
use crate::config::Config;
use crate::delivery::Fanout;
use crate::http::{Body, text};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::node::{Node, NodeParts};
use crate::script::Catalog;
use crate::script::watch::{GamesWatcher, watch};
use crate::session::CommitSink;
use crate::session::names::NameFilter;
use crate::store::Store;
use crate::{api, auth, connection, join, web};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store in the data folder did not open (or its writer thread did not start).
    #[error("cannot open the data folder {path}: {source}")]
    Store {
        /// The data folder, as configured (`--data`).
        path: String,
        /// What the store reported.
        source: crate::store::StoreError,
    },
    /// The listening address could not be bound (or the port it got read back).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for: `--bind` and `--port`.
        addr: String,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// The `--blocked-names` file could not be read.
    #[error("cannot read the blocked names file {path}: {source}")]
    BlockedNames {
        /// The file, as configured.
        path: String,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// The games folder did not exist and could not be created.
    #[error("cannot create the games folder {path}: {source}")]
    Games {
        /// The games folder, as configured (`--games`).
        path: String,
        /// What the operating system reported.
        source: std::io::Error,
    },
    /// A keys file (`--api-keys`, `--host-keys`) could not be read, or has a
    /// bad line.
    #[error("{0}")]
    Keys(String),
    /// `--webhook` and `--webhook-secret` do not make a set of receivers.
    #[error("{0}")]
    Webhooks(String),
    /// The runtime that runs sessions (`--script-threads`) could not be built.
    #[error("cannot start the script threads: {0}")]
    Scripts(std::io::Error),
    /// Joining the cluster failed: the `--redis` URL is not valid, or Redis did
    /// not answer.
    #[error("cannot reach Redis at {url}: {source}")]
    Redis {
        /// The Redis URL, as configured (`--redis`).
        url: String,
        /// What the Redis client reported.
        source: redis::RedisError,
    },
}

/// A running node.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    node: Arc<Node>,
    /// Hot reload stops when this is dropped.
    _watcher: Option<GamesWatcher>,
    /// Where sessions run; stopped when the server is dropped.
    _scripts: ScriptRuntime,
}

/// The runtime sessions (and their Lua handlers) run on, apart from the one
/// that serves sockets: the OS shares the cores between both, so a handler
/// that runs for its whole budget cannot hold up socket reads and writes.
struct ScriptRuntime(Option<tokio::runtime::Runtime>);

impl ScriptRuntime {
    /// The runtime, and the handle sessions are spawned with.
    fn start(threads: usize) -> std::io::Result<(ScriptRuntime, tokio::runtime::Handle)> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if threads > 0 {
            builder.worker_threads(threads);
        }
        let runtime = builder.thread_name("recess-script").enable_all().build()?;
        let handle = runtime.handle().clone();
        Ok((ScriptRuntime(Some(runtime)), handle))
    }
}

impl Drop for ScriptRuntime {
    fn drop(&mut self) {
        // Every session has stopped by now (`shutdown` waits for them), or
        // the server is being dropped; either way nothing waits on it.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Server {
    /// Loads the games, restores stored sessions, starts hot reload and listens.
    pub async fn start(mut config: Config) -> Result<Server, StartError> {
        fit_open_file_limit(&mut config);
        // Students who scan the join QR code open --public-url: its origin
        // may open game sockets without being listed in --allowed-origins.
        if let Some(origin) = config.public_url.as_deref().and_then(join::public_origin)
            && !config
                .allowed_origins
                .iter()
                .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin))
        {
            config.allowed_origins.push(origin);
        }
        if !config.games.exists() {
            std::fs::create_dir_all(&config.games).map_err(|source| StartError::Games {
                path: config.games.display().to_string(),
                source,
            })?;
        }
        let catalog = Catalog::new(&config.games, config.limits());
        for (name, outcome) in catalog.load_all() {
            match outcome {
                Ok(rules) => {
                    tracing::info!(game = %name, title = %rules.title, version = %rules.version, "game loaded")
                }
                Err(message) => tracing::warn!(game = %name, "game failed to load: {message}"),
            }
        }
        let blocked_names = Arc::new(match &config.blocked_names {
            None => NameFilter::default(),
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| StartError::BlockedNames {
                        path: path.display().to_string(),
                        source,
                    })?;
                let filter = NameFilter::custom(&text);
                tracing::info!(path = %path.display(), words = filter.len(), "blocked names loaded");
                filter
            }
        });
        let keys = Arc::new(Keys::load(config.key_sources()).map_err(StartError::Keys)?);
        tracing::info!("{}", keys.summary());
        let store = Store::open(&config.data, config.sled_cache_mb << 20).map_err(|source| {
            StartError::Store {
                path: config.data.display().to_string(),
                source,
            }
        })?;
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        // The port chosen for `--port 0`, for the join address (src/join.rs).
        config.port = addr.port();
        let fanout = Arc::new(Fanout::default());
        let metrics = Arc::new(Metrics::default());
        let redis = match &config.redis {
            None => None,
            Some(url) => {
                // One name per process: a restarted node is a new instance,
                // which takes its old sessions back only once the old
                // instance's heartbeat is gone.
                let node_id = format!(
                    "{}-{}",
                    config.node_id.as_deref().unwrap_or("node"),
                    crate::session::random_id(6)
                );
                let (cluster, pushes) = RedisCluster::connect(
                    url,
                    node_id,
                    config.replay_window,
                    store.clone(),
                    fanout.clone(),
                    metrics.clone(),
                )
                .await
                .map_err(|source| StartError::Redis {
                    url: url.clone(),
                    source,
                })?;
                Some((cluster, pushes))
            }
        };
        metrics.connections_max.store(
            config.max_connections as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let (cluster, sink): (Arc<dyn Cluster>, Arc<dyn CommitSink>) = match &redis {
            Some((cluster, _)) => (
                cluster.clone(),
                Arc::new(RedisBus {
                    cluster: cluster.clone(),
                }),
            ),
            None => {
                let node_id = config
                    .node_id
                    .clone()
                    .unwrap_or_else(|| format!("node-{}", crate::session::random_id(6)));
                (
                    Arc::new(LocalCluster::new(node_id)),
                    Arc::new(LocalBus::new(
                        store.clone(),
                        fanout.clone(),
                        metrics.clone(),
                    )),
                )
            }
        };
        let hooks = crate::webhook::Webhooks::from_flags(
            &config.webhooks,
            &config.webhook_secrets,
            std::time::Duration::from_secs(config.webhook_give_up_min.saturating_mul(60)),
            metrics.clone(),
        )
        .map_err(StartError::Webhooks)?;
        if hooks.is_some() {
            tracing::info!("webhooks go to {}", config.webhooks.join(", "));
        }
        let (scripts, handle) =
            ScriptRuntime::start(config.script_threads).map_err(StartError::Scripts)?;
        let node = Node::new(NodeParts {
            config,
            catalog: catalog.clone(),
            store,
            fanout,
            metrics,
            cluster,
            sink,
            scripts: handle,
            blocked_names,
            keys: keys.clone(),
            hooks: hooks.map(|h| Arc::new(h) as Arc<dyn crate::session::hooks::HookTransport>),
        });
        let (inbound, events) = mpsc::channel(INBOUND_QUEUE);
        if let Some((cluster, pushes)) = redis {
            cluster.start(pushes, inbound, node.tasks.clone(), node.shutdown.clone());
            tracing::info!(node = %node.node_id, "joined the cluster");
        }
        node.tasks.spawn(node.clone().listen(events));
        let restored = node.restore_sessions().await;
        if restored > 0 {
            tracing::info!(
                sessions = restored,
                "restored sessions from the data folder"
            );
        }
        let watcher = match watch(catalog, node.shutdown.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "hot reload is off: cannot watch the games folder");
                None
            }
        };
        node.tasks.spawn(accept_loop(listener, node.clone()));
        node.tasks
            .spawn(reload_keys_on_hangup(keys, node.shutdown.clone()));
        Ok(Server {
            addr,
            node,
            _watcher: watcher,
            _scripts: scripts,
        })
    }

    /// Where students on other devices open the player page
    /// (`http://192.168.1.20:8080/`, or `--public-url`), as the host page
    /// shows it; `None` when the server listens on loopback only.
    pub fn join_url(&self) -> Option<String> {
        let mut config = self.node.config.clone();
        config.port = self.addr.port();
        let join = crate::join::join_address(&config, None);
        join.reachable.then_some(join.url)
    }

    /// This node's name (in a cluster, its instance's).
    pub fn node_id(&self) -> &str {
        &self.node.node_id
    }

    /// Changes to the games as hot reload sees them (a saved file loaded,
    /// or refused with its error).
    pub fn game_changes(&self) -> tokio::sync::broadcast::Receiver<crate::script::GameChange> {
        self.node.catalog.subscribe()
    }

    /// A metric of `/metrics` by its name without `recess_`, read directly
    /// (for a process that cannot open a socket to itself).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.node.metrics.value(name)
    }

    /// How many seats of `session` sockets on this node follow now.
    pub fn seats_followed(&self, session: &str) -> usize {
        self.node.fanout.members(session).len()
    }

    /// Stops accepting, closes sockets with 1001, lets sessions commit, waits.
    pub async fn shutdown(self) {
        self.node.shutdown.cancel();
        self.node.tasks.close();
        self.node.tasks.wait().await;
        self.node.leave_cluster().await;
    }
}

/// File descriptors kept for what is not a connection: the listener, sled's
/// files, Redis links, the games folder's watcher, logs.
const RESERVED_FDS: u64 = 64;

/// Makes room for `--max-connections` under the open-file limit: raises the
/// soft limit towards the hard one, and if that is not enough lowers
/// `--max-connections` (with a warning) so that accepting never fails for
/// want of a descriptor.
fn fit_open_file_limit(config: &mut Config) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let wanted = (config.max_connections as u64).saturating_add(RESERVED_FDS);
    if limit.rlim_cur < wanted && limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: wanted.min(limit.rlim_max),
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = raised.rlim_cur;
        }
    }
    if limit.rlim_cur < wanted {
        let fitted = limit.rlim_cur.saturating_sub(RESERVED_FDS).max(16) as usize;
        tracing::warn!(
            open_files = limit.rlim_cur,
            requested = config.max_connections,
            max_connections = fitted,
            "the open-file limit (ulimit -n) is too low for --max-connections; serving fewer connections"
        );
        config.max_connections = fitted;
    }
}

/// How long `accept` rests after it failed for want of resources (out of
/// file descriptors or memory) before trying again, at first and at most:
/// trying at once would spin a core while the condition lasts.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(1));
/// Failed accepts are logged at most once per this interval, with a count.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

async fn accept_loop(listener: TcpListener, node: Arc<Node>) {
    let limit = Arc::new(Semaphore::new(node.config.max_connections));
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut failures_unlogged = 0u64;
    let mut last_log: Option<tokio::time::Instant> = None;
    loop {
        let permit = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = ACCEPT_BACKOFF.0;
                    a
                }
                Err(e) => {
                    Metrics::inc(&node.metrics.accept_errors_total);
                    failures_unlogged += 1;
                    if last_log.is_none_or(|t| t.elapsed() >= ACCEPT_LOG_EVERY) {
                        tracing::warn!(error = %e, failures = failures_unlogged, "accept failed");
                        failures_unlogged = 0;
                        last_log = Some(tokio::time::Instant::now());
                    }
                    if resource_exhausted(&e) {
                        tokio::select! {
                            _ = node.shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // Shared with the WebSocket this connection may become: hyper's task
        // ends at the upgrade, the socket holds its place until it closes.
        let permit = Arc::new(permit);
        let node2 = node.clone();
        let conn_node = node.clone();
        let conn_permit = permit.clone();
        let peer = peer.ip();
        node.tasks.spawn(async move {
            let node = conn_node;
            let service = service_fn(move |req| {
                let node = node2.clone();
                let permit = conn_permit.clone();
                async move { Ok::<_, Infallible>(route(node, req, permit, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(node.config.header_timeout())
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let shutdown = node.shutdown.clone();
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "http connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
    }
}

/// Accept errors that last while the process is short of something (and
/// would fail again at once), as opposed to one connection's failure.
fn resource_exhausted(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade request
/// (RFC 6455 §4.2.2), or why the request is not one.
fn accept_websocket<B>(req: &Request<B>) -> Result<Response<Body>, &'static str> {
    let key = req
        .headers()
        .get(SEC_WEBSOCKET_KEY)
        .ok_or("no Sec-WebSocket-Key header")?;
    if req
        .headers()
        .get(SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err("Sec-WebSocket-Version must be 13");
    }
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "websocket")
        .header(SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
        .body(Body::default())
        .map_err(|_| "bad Sec-WebSocket-Key header")
}

/// `/healthz`: `200 ok`, or `503` naming what is degraded.
fn health(metrics: &Metrics) -> Response<Body> {
    let not_durable = metrics
        .sessions_not_durable
        .load(std::sync::atomic::Ordering::Relaxed);
    if not_durable == 0 {
        return text(StatusCode::OK, "ok");
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "degraded: {not_durable} session(s) cannot save their commits (the data folder cannot be written, or in a cluster neither Redis nor it); they go on in memory, and a crash now would lose what happened since (see the log)"
        ),
    )
}

async fn route(
    node: Arc<Node>,
    mut req: Request<Incoming>,
    permit: Arc<OwnedSemaphorePermit>,
    peer: IpAddr,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/games") if hyper_tungstenite::is_upgrade_request(&req) => {
            if !auth::origin_allowed(req.headers(), &node.config.allowed_origins) {
                return text(
                    StatusCode::FORBIDDEN,
                    "this page's origin may not open game sockets here: open the page by this server's IP address, or list its address in --allowed-origins",
                );
            }
            match accept_websocket(&req) {
                Ok(response) => {
                    let client =
                        auth::client_addr(peer, req.headers(), &node.config.trusted_proxies);
                    let upgrade = hyper::upgrade::on(&mut req);
                    node.tasks
                        .spawn(connection::serve(node.clone(), upgrade, permit, client));
                    response
                }
                Err(e) => text(
                    StatusCode::BAD_REQUEST,
                    &format!("bad websocket upgrade: {e}"),
                ),
            }
        }
        (_, "/games") => text(
            StatusCode::BAD_REQUEST,
            "/games is the WebSocket endpoint: connect with a WebSocket client",
        ),
        (&Method::GET, "/healthz") => health(&node.metrics),
        (&Method::GET, "/metrics") => match api::authorize(&node, &req) {
            Ok(_) => Response::builder()
                .header(CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(Body::from(node.metrics.render()))
                .unwrap_or_default(),
            Err(e) => api::error(&e),
        },
        (&Method::GET, "/api/join") => join::info(&node.config, &req),
        (&Method::GET, "/join.svg") => web::with_page_headers(join::qr(&node.config, &req), &req),
        (_, p) if p == "/api" || p.starts_with("/api/") => {
            let client = auth::client_addr(peer, req.headers(), &node.config.trusted_proxies);
            api::handle(node, req, client).await
        }
        (&Method::GET, p) if p.starts_with("/custom/") => web::serve_custom(&node, &req),
        (&Method::GET, _) | (&Method::HEAD, _) => web::serve(&node, &req),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// Reads the keys files again at every `SIGHUP` (a bad file keeps the keys
/// in force, and says why).
async fn reload_keys_on_hangup(keys: Arc<Keys>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "keys are not re-read on SIGHUP: cannot listen for it");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hangup.recv() => if got.is_none() { return },
        }
        match keys.reload() {
            Ok(summary) => tracing::info!("SIGHUP: keys read again; {summary}"),
            Err(e) => tracing::error!("SIGHUP: the keys in force stay, because {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthz_says_when_sessions_cannot_save() {
        let metrics = Metrics::default();
        assert_eq!(health(&metrics).status(), StatusCode::OK);
        Metrics::inc(&metrics.sessions_not_durable);
        assert_eq!(health(&metrics).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
