//! The Redis cluster: several nodes, one Redis, sessions that survive a node.
//!
//! One file per concern: `scripts` (the Lua scripts Redis runs),
//! `heartbeat` (the thread that keeps this node alive in Redis), `ownership`
//! (join codes, claims, takeover reads and the scan for orphans), `pubsub`
//! (following session channels and the push dispatcher), `forward`
//! (requests to owners and their answers) and `commit` ([`RedisBus`]).
//!
//! What lives in Redis (all keys prefixed `recess:`; no TTL unless stated):
//! - `alive:{instance}` → the heartbeat of one running node process (`PX`
//!   = `HEARTBEAT_TTL`, renewed every `BEAT_EVERY` from a thread of its own);
//! - `instances` → set of node instances that may own sessions;
//! - `owner:{session}` → the instance that owns the session; it stays the
//!   owner for as long as its heartbeat lives;
//! - `owned:{instance}` → set of the sessions that instance owns, so a dead
//!   instance's sessions are found without scanning every session;
//! - `orphans` → sessions given up by their owner (graceful shutdown);
//! - `snap:{session}` → the session snapshot (JSON, as in sled);
//! - `members:{session}` → hash member → that member's record (JSON);
//! - `log:{session}` → list of the replay window's messages, oldest first;
//! - `views:{session}` → hash member → the view that member last received;
//! - `code:{code}` → session id; `sessions` → set of every live session id.
//!
//! Channels: `recess:s:{session}` carries each committed batch of a session's
//! messages to the nodes following it; `recess:n:{instance}` carries forwarded
//! requests and their answers; `recess:takeover` announces a new owner.
//!
//! The owner writes a batch (snapshot, messages, views) and publishes it in
//! one Lua script that first checks ownership, so a node that lost a session
//! can never overwrite the new owner's copy, and nothing is acknowledged
//! before the batch is in Redis.
//!
//! Architecture Invariant: a session is taken over only when its owner's
//! heartbeat is gone. The heartbeat runs on its own thread and Redis
//! connection, so a node whose runtime is saturated by game scripts keeps its
//! sessions; it stops beating only when its runtime has made no progress for
//! `RUNTIME_STALL` (a hung node), or when it cannot reach Redis.

mod commit;
mod forward;
mod heartbeat;
mod ownership;
mod pubsub;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use commit::RedisBus;
use heartbeat::Heartbeat;

use super::{Claim, Cluster, Inbound};
use crate::delivery::Fanout;
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::record::StoredSession;
use crate::session::{Outcome, Reply, Request, SessionId};
use crate::store::Store;

/// How long a node's heartbeat lives without renewal: a dead node's
/// sessions are taken over this long after its last beat (plus one scan).
pub(crate) const HEARTBEAT_TTL: Duration = Duration::from_millis(2000);
/// How long a Redis command may take before Redis counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pushes (session batches, requests, answers) the subscription connection
/// may hold for the dispatcher. Past it a push is lost, and the dispatcher
/// handles the loss like a dropped link: sockets following sessions owned
/// elsewhere resume.
const PUSH_QUEUE: usize = 8192;

fn key(kind: &str, id: &str) -> String {
    format!("recess:{kind}:{id}")
}
const SESSIONS: &str = "recess:sessions";
const INSTANCES: &str = "recess:instances";
const ORPHANS: &str = "recess:orphans";
const TAKEOVER: &str = "recess:takeover";

/// One node's link to the cluster.
pub(crate) struct RedisCluster {
    /// This cluster link itself, for the tasks it starts.
    me: std::sync::Weak<RedisCluster>,
    /// This process's name in the cluster (`--node-id` plus a per-process
    /// suffix, so a restarted node is a new instance): it owns sessions,
    /// beats, and receives forwarded requests under this name.
    node_id: String,
    /// Commands, scripts and publishes.
    cmd: ConnectionManager,
    /// Subscriptions (RESP3 pushes, resubscribed automatically on reconnect).
    sub: tokio::sync::Mutex<ConnectionManager>,
    /// Sessions followed on this node, with how many local seats need them.
    followed: Mutex<HashMap<SessionId, usize>>,
    /// Forwarded requests waiting for their answer.
    pending: Mutex<HashMap<u64, oneshot::Sender<Outcome>>>,
    /// Last known owner of sessions owned elsewhere, so forwarding an action
    /// costs one Redis round trip, not two. Dropped when a forward fails or a
    /// takeover is announced.
    owners: Mutex<HashMap<String, String>>,
    next_request: AtomicU64,
    /// Whether the last Redis round trip worked (for `/healthz` and logs).
    reachable: AtomicBool,
    /// When Redis last came back after being unreachable: for a while after,
    /// a session missing from Redis may just not be written back yet.
    recovered_at: Mutex<Option<std::time::Instant>>,
    /// Set when a push was lost because the dispatcher was behind.
    pushes_lost: Arc<AtomicBool>,
    replay_window: usize,
    store: Store,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    /// Where inbound events go and what background work runs on, from `start`.
    background: OnceLock<Background>,
    /// The heartbeat thread; `leave` stops it, and so does dropping it.
    heartbeat: Mutex<Option<Heartbeat>>,
    /// Woken by the heartbeat thread when the heartbeat had lapsed.
    lapsed: Arc<tokio::sync::Notify>,
    /// When the runtime last ran the scan loop (ms since `started`), so the
    /// heartbeat thread can tell a busy runtime from a hung one.
    runtime_tick: Arc<AtomicU64>,
    started: std::time::Instant,
    commit_script: Script,
    claim_script: Script,
    owner_script: Script,
    release_script: Script,
    remove_script: Script,
    forget_script: Script,
}

/// What `start` gives the cluster.
struct Background {
    inbound: mpsc::Sender<Inbound>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Answers to requests other nodes forwarded here, to be published.
    answers: mpsc::UnboundedSender<(String, u64, Outcome)>,
}

/// The pushes of the subscription connection, for `start`.
pub(crate) struct Pushes(mpsc::Receiver<redis::PushInfo>);

/// Adds `protocol=resp3` (needed for pushes on a managed connection).
fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else if url.ends_with('/') {
        format!("{url}?protocol=resp3")
    } else {
        format!("{url}/?protocol=resp3")
    }
}

impl RedisCluster {
    /// Connects to Redis and starts the heartbeat; call `start` once the
    /// node is there to receive what other nodes send.
    pub(crate) async fn connect(
        url: &str,
        node_id: String,
        replay_window: usize,
        store: Store,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Self>, Pushes), redis::RedisError> {
        let client = redis::Client::open(resp3_url(url))?;
        let beat_client = redis::Client::open(url)?;
        // A late answer is not a lost one: a commit whose answer times out
        // may still have run, so the timeout is for a Redis that is gone
        // (an unreachable one fails at once), not for a busy machine.
        let settings = ConnectionManagerConfig::new()
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(3)
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(1)));
        let cmd = client
            .get_connection_manager_with_config(settings.clone())
            .await?;
        let (push_tx, push_rx) = mpsc::channel(PUSH_QUEUE);
        let pushes_lost = Arc::new(AtomicBool::new(false));
        let lost = pushes_lost.clone();
        // Called by the connection's reader, which must not wait.
        let push_sender = move |info: redis::PushInfo| -> Result<(), ()> {
            if push_tx.try_send(info).is_err() {
                lost.store(true, Ordering::Relaxed);
            }
            Ok(())
        };
        let sub = client
            .get_connection_manager_with_config(
                settings
                    .set_push_sender(push_sender)
                    .set_automatic_resubscription(),
            )
            .await?;
        let cluster = Arc::new_cyclic(|me| RedisCluster {
            me: me.clone(),
            node_id,
            cmd,
            sub: tokio::sync::Mutex::new(sub),
            followed: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            reachable: AtomicBool::new(true),
            recovered_at: Mutex::new(None),
            pushes_lost,
            replay_window,
            store,
            fanout,
            metrics,
            background: OnceLock::new(),
            heartbeat: Mutex::new(None),
            lapsed: Arc::new(tokio::sync::Notify::new()),
            runtime_tick: Arc::new(AtomicU64::new(0)),
            started: std::time::Instant::now(),
            commit_script: Script::new(scripts::COMMIT),
            claim_script: Script::new(scripts::CLAIM),
            owner_script: Script::new(scripts::OWNER),
            release_script: Script::new(scripts::RELEASE),
            remove_script: Script::new(scripts::REMOVE),
            forget_script: Script::new(scripts::FORGET_INSTANCE),
        });
        {
            let mut sub = cluster.sub.lock().await;
            sub.subscribe(key("n", &cluster.node_id)).await?;
            sub.subscribe(TAKEOVER).await?;
        }
        // The first beat lands before this node claims anything.
        let (heartbeat, first_beat) = cluster.spawn_heartbeat(beat_client)?;
        *cluster.heartbeat.lock().unwrap_or_else(|e| e.into_inner()) = Some(heartbeat);
        first_beat.await.unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::other(
                "the heartbeat thread ended",
            )))
        })?;
        Ok((cluster, Pushes(push_rx)))
    }

    /// Starts the push dispatcher, the publisher of answers and the scan
    /// for orphaned sessions; what other nodes send goes to `inbound`.
    pub(crate) fn start(
        self: &Arc<Self>,
        pushes: Pushes,
        inbound: mpsc::Sender<Inbound>,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) {
        let (answers, answers_rx) = mpsc::unbounded_channel();
        let background = Background {
            inbound,
            tasks: tasks.clone(),
            shutdown: shutdown.clone(),
            answers,
        };
        if self.background.set(background).is_err() {
            return;
        }
        tasks.spawn(self.clone().dispatch(pushes.0, shutdown.clone()));
        tasks.spawn(self.clone().publish_answers(answers_rx, shutdown.clone()));
        tasks.spawn(self.clone().scan_loop(shutdown));
    }

    fn myself(&self) -> Option<Arc<RedisCluster>> {
        self.me.upgrade()
    }

    pub(crate) fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    fn mark(&self, ok: bool) {
        let was = self.reachable.swap(ok, Ordering::Relaxed);
        if was != ok {
            if ok {
                *self.recovered_at.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(std::time::Instant::now());
                tracing::info!("Redis is reachable again");
            } else {
                tracing::warn!(
                    "Redis is unreachable; sessions owned here keep running, cross-node play waits"
                );
            }
        }
    }

    fn con(&self) -> ConnectionManager {
        self.cmd.clone()
    }

    fn unavailable(&self, e: redis::RedisError) -> ProtocolError {
        self.mark(false);
        tracing::debug!(error = %e, "redis call failed");
        ProtocolError::new(
            ErrorCode::Unavailable,
            "the game servers cannot reach each other right now; try again in a moment",
        )
    }

    /// Hands an event to the node; waits if the node is behind (it never
    /// waits on a session, so it is never behind for long).
    async fn tell(&self, event: Inbound) {
        if let Some(b) = self.background.get() {
            let _ = b.inbound.send(event).await;
        }
    }
}

impl Cluster for RedisCluster {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn claim_code<'a>(
        &'a self,
        code: &'a str,
        session: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProtocolError>> {
        Box::pin(self.claim_code(code, session))
    }

    fn lookup_code<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionId>, ProtocolError>> {
        Box::pin(async move { Ok(self.lookup_code(code).await?.map(SessionId::from)) })
    }

    fn release_code<'a>(&'a self, code: &'a str, session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.release_code(code, session))
    }

    fn claim<'a>(
        &'a self,
        session: &'a str,
        how: Claim,
    ) -> BoxFuture<'a, Result<bool, ProtocolError>> {
        Box::pin(self.claim(session, how))
    }

    fn release<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.release(session))
    }

    fn forget<'a>(&'a self, session: &'a str, code: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.remove(session, code))
    }

    fn owner<'a>(
        &'a self,
        session: &'a str,
        cached: bool,
    ) -> BoxFuture<'a, Result<Option<String>, ProtocolError>> {
        Box::pin(async move {
            if cached {
                self.owner_cached(session).await
            } else {
                self.owner(session).await
            }
        })
    }

    fn owners<'a>(
        &'a self,
        sessions: &'a [SessionId],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, ProtocolError>> {
        Box::pin(self.recorded_owners(sessions))
    }

    fn holds_copies(&self) -> bool {
        true
    }

    fn settling(&self) -> bool {
        if !self.is_reachable() {
            return true;
        }
        let at = *self.recovered_at.lock().unwrap_or_else(|e| e.into_inner());
        at.is_some_and(|t| t.elapsed() < HEARTBEAT_TTL * 3)
    }

    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSession>, ProtocolError>> {
        Box::pin(self.load(session))
    }

    fn announce_takeover<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.announce_takeover(session))
    }

    fn follow<'a>(&'a self, session: &'a SessionId) -> BoxFuture<'a, Result<(), ProtocolError>> {
        Box::pin(self.follow(session))
    }

    fn unfollow<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.unfollow(session))
    }

    fn forward<'a>(
        &'a self,
        owner: &'a str,
        session: &'a str,
        request: Request,
        reply: Reply,
    ) -> BoxFuture<'a, Result<(), ProtocolError>> {
        Box::pin(self.forward(owner, session, request, reply))
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.leave())
    }
}
