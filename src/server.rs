//! The HTTP server: one listener for the WebSocket endpoint `/games`, the REST
//! API under `/api`, `/healthz`, `/metrics` and the browser pages.
//!
//! Connections are bounded by a semaphore. Shutdown is explicit: the node's
//! `CancellationToken` stops the accept loop, closes WebSockets with 1001
//! (hyper's graceful shutdown does not cover upgraded connections) and lets
//! session actors finish their last commit; `Server::shutdown` waits for all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, CONTENT_TYPE, HOST, ORIGIN, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::handshake::derive_accept_key;
use hyper_tungstenite::tungstenite::protocol::WebSocketConfig;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::cluster::redis::RedisCluster;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::script::Catalog;
use crate::script::watch::{GamesWatcher, watch};
use crate::session::fanout::Fanout;
use crate::store::Store;
use crate::{api, connection, web};

pub type Body = Full<Bytes>;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data folder {path}: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot create the games folder {path}: {source}")]
    Games {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot reach Redis at {url}: {source}")]
    Redis {
        url: String,
        source: redis::RedisError,
    },
}

/// A running node.
pub struct Server {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    /// Hot reload stops when this is dropped.
    _watcher: Option<GamesWatcher>,
}

impl Server {
    /// Loads the games, restores stored sessions, starts hot reload and listens.
    pub async fn start(config: Config) -> Result<Server, StartError> {
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
        let fanout = Arc::new(Fanout::default());
        let metrics = Arc::new(Metrics::default());
        let cluster = match &config.redis {
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
        let node = Node::new(
            config,
            catalog.clone(),
            store,
            fanout,
            metrics,
            cluster.as_ref().map(|(c, _)| c.clone()),
        );
        if let Some((cluster, pushes)) = cluster {
            cluster.start(&node, pushes);
            tracing::info!(node = %node.node_id, "joined the cluster");
        }
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
        Ok(Server {
            addr,
            node,
            _watcher: watcher,
        })
    }

    /// Stops accepting, closes sockets with 1001, lets sessions commit, waits.
    pub async fn shutdown(self) {
        self.node.shutdown.cancel();
        self.node.tasks.close();
        self.node.tasks.wait().await;
        if let Some(cluster) = &self.node.cluster {
            cluster.leave().await;
        }
    }
}

async fn accept_loop(listener: TcpListener, node: Arc<Node>) {
    let limit = Arc::new(Semaphore::new(node.config.max_connections));
    loop {
        let permit = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, _) = tokio::select! {
            _ = node.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
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
        node.tasks.spawn(async move {
            let node = conn_node;
            let service = service_fn(move |req| {
                let node = node2.clone();
                let permit = conn_permit.clone();
                async move { Ok::<_, Infallible>(route(node, req, permit).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
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

/// The WebSocket reader's settings: a small read buffer (the default would
/// cost 128 KiB per socket, and it is kept for the socket's life; a client
/// frame is usually 100–300 bytes, and a larger one is read into a buffer of
/// its own size, 512 bytes per `read`) and a hard cap
/// well above `--max-frame`, past which the socket is closed with 1009
/// instead of answered with an error. (Writes do not go through tungstenite:
/// see `session::fanout::Socket`.)
pub(crate) fn ws_config(max_frame: usize) -> WebSocketConfig {
    let hard_cap = (max_frame * 16).max(1 << 20);
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
}

/// Bytes read from a WebSocket at a time, and the buffer every socket keeps
/// while idle (tungstenite allocates it up front). Clients send small frames
/// (an action is about 100 bytes), so one read takes a whole frame; a frame
/// at the 64 KiB limit takes 256 reads, which only a client sending large
/// frames pays for. 256 rather than 512 saves 256 bytes per connection.
const WS_READ_BUFFER: usize = 256;

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

async fn route(
    node: Arc<Node>,
    mut req: Request<Incoming>,
    permit: Arc<OwnedSemaphorePermit>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/games") if hyper_tungstenite::is_upgrade_request(&req) => {
            if !origin_allowed(&req, &node.config) {
                return text(
                    StatusCode::FORBIDDEN,
                    "this page's origin may not open game sockets here (see --allowed-origins)",
                );
            }
            match accept_websocket(&req) {
                Ok(response) => {
                    let upgrade = hyper::upgrade::on(&mut req);
                    node.tasks
                        .spawn(connection::serve(node.clone(), upgrade, permit));
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
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/metrics") => Response::builder()
            .header(CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(Body::from(node.metrics.render()))
            .unwrap_or_default(),
        (_, p) if p == "/api" || p.starts_with("/api/") => api::handle(node, req).await,
        (&Method::GET, p) if p.starts_with("/custom/") => web::serve_custom(&node, &req),
        (&Method::GET, _) | (&Method::HEAD, _) => web::serve(&node, &req),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// Browsers send `Origin`; it must be the page's own origin or a configured one.
/// Clients without it (bots, native apps) are accepted.
fn origin_allowed<B>(req: &Request<B>, config: &Config) -> bool {
    let Some(origin) = req.headers().get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if config
        .allowed_origins
        .iter()
        .any(|o| o == "*" || o.trim_end_matches('/') == origin)
    {
        return true;
    }
    let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

pub fn text(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(body.to_owned()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(origin: Option<&str>, host: &str) -> Request<()> {
        let mut b = Request::builder().uri("/games").header(HOST, host);
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn origins() {
        let mut config = Config::for_dirs("g", "d");
        assert!(origin_allowed(&req(None, "a:1"), &config));
        assert!(origin_allowed(&req(Some("http://a:1"), "a:1"), &config));
        assert!(!origin_allowed(&req(Some("http://evil"), "a:1"), &config));
        config.allowed_origins = vec!["https://school.example".into()];
        assert!(origin_allowed(
            &req(Some("https://school.example"), "a:1"),
            &config
        ));
    }
}
