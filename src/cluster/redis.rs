//! The Redis bus: several nodes, one Redis, sessions that survive a node.
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
//! commands and their replies; `recess:takeover` announces a new owner.
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, PushKind, Script};
use tokio::sync::{mpsc, oneshot};

use super::wire::{
    NodeMessage, RemoteCommand, RemoteReply, Request, Response, decode_batch, encode_batch,
};
use super::{Bus, deliver_locally};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::delivery::Fanout;
use crate::session::{Command, CommitError, CommitSink, SessionId};
use crate::session::record::{
    SessionSnapshot, SessionWrite, StoredSession, decode_message, encode_message,
};
use crate::store::Store;

/// How long a node's heartbeat lives without renewal: a dead node's
/// sessions are taken over this long after its last beat (plus one scan).
pub const HEARTBEAT_TTL: Duration = Duration::from_millis(2000);
/// How often the heartbeat thread renews the heartbeat.
const BEAT_EVERY: Duration = Duration::from_millis(500);
/// How long a Redis command may take before Redis counts as unreachable.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often nodes look for sessions whose owner is gone.
const SCAN_EVERY: Duration = Duration::from_millis(500);
/// A runtime that has not ticked for this long is hung, not busy: the
/// heartbeat stops, so other nodes take its sessions over.
const RUNTIME_STALL: Duration = Duration::from_secs(10);
/// How long a forwarded command waits for the owner's reply before checking
/// that the owner is still alive; a live owner is waited for up to
/// `FORWARD_GIVE_UP`.
const FORWARD_CHECK: Duration = Duration::from_secs(5);
const FORWARD_GIVE_UP: Duration = Duration::from_secs(60);

const COMMIT: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code, owned (of this instance), members
-- ARGV: instance, (unused), snapshot ('' = keep), window, channel, payload ('' = none),
--       full (1/0), session, code, n, messages..., m, (member, view)...,
--       p, (member, record)..., k, removed...
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then
  if owner then return 0 end
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[7], ARGV[8])
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[3], KEYS[4], KEYS[8])
  redis.call('SET', KEYS[6], ARGV[8])
end
redis.call('SADD', KEYS[5], ARGV[8])
local i = 10
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('RPUSH', KEYS[3], ARGV[i]); i = i + 1 end
if n > 0 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1) end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
local p = tonumber(ARGV[i]); i = i + 1
for _ = 1, p do redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1]); i = i + 2 end
local k = tonumber(ARGV[i]); i = i + 1
for _ = 1, k do
  redis.call('HDEL', KEYS[4], ARGV[i]); redis.call('HDEL', KEYS[8], ARGV[i]); i = i + 1
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
"#;

const CLAIM: &str = r#"
-- KEYS: owner, snap, orphans, owned (of this instance)
-- ARGV: instance, session, mode: 'create' (nobody may own it), 'restore' (a
-- stored copy of ours: claim unless a live instance owns it), 'adopt' (a
-- takeover: as restore, and Redis must hold the session).
-- Returns 1 claimed (or already ours), 0 a live instance owns it, -1 gone.
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return 1 end
if ARGV[3] == 'adopt' and redis.call('EXISTS', KEYS[2]) == 0 then
  if owner then redis.call('SREM', 'recess:owned:' .. owner, ARGV[2]) end
  redis.call('SREM', KEYS[3], ARGV[2])
  return -1
end
if owner then
  if ARGV[3] == 'create' then return 0 end
  if redis.call('EXISTS', 'recess:alive:' .. owner) == 1 then return 0 end
  redis.call('SREM', 'recess:owned:' .. owner, ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"#;

const OWNER: &str = r#"
-- KEYS: owner. Returns the owning instance if its heartbeat lives, else nil.
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('EXISTS', 'recess:alive:' .. owner) == 1 then return owner end
return false
"#;

const HEARTBEAT: &str = r#"
-- KEYS: alive (of this instance), instances; ARGV: instance, ttl_ms.
-- Returns 1 renewed, 2 (re)started: the heartbeat had lapsed or never ran.
if redis.call('PEXPIRE', KEYS[1], ARGV[2]) == 1 then return 1 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 2
"#;

const RELEASE: &str = r#"
-- KEYS: owner, orphans, owned (of this instance); ARGV: instance, session
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[3], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[2])
  return 1
end
return 0
"#;

const REMOVE: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code, orphans, members; ARGV: instance, session
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[8])
if redis.call('GET', KEYS[6]) == ARGV[2] then redis.call('DEL', KEYS[6]) end
redis.call('SREM', KEYS[5], ARGV[2])
redis.call('SREM', KEYS[7], ARGV[2])
if owner then redis.call('SREM', 'recess:owned:' .. owner, ARGV[2]) end
return 1
"#;

const FORGET_INSTANCE: &str = r#"
-- KEYS: alive, owned (of a dead instance), instances; ARGV: instance.
-- Drops a dead instance once it owns nothing.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"#;

fn key(kind: &str, id: &str) -> String {
    format!("recess:{kind}:{id}")
}
const SESSIONS: &str = "recess:sessions";
const INSTANCES: &str = "recess:instances";
const ORPHANS: &str = "recess:orphans";
const TAKEOVER: &str = "recess:takeover";

/// One node's link to the cluster.
pub struct RedisCluster {
    /// This process's name in the cluster (`--node-id` plus a per-process
    /// suffix, so a restarted node is a new instance): it owns sessions,
    /// beats, and receives forwarded commands under this name.
    node_id: String,
    /// Commands, scripts and publishes.
    cmd: ConnectionManager,
    /// Subscriptions (RESP3 pushes, resubscribed automatically on reconnect).
    sub: tokio::sync::Mutex<ConnectionManager>,
    /// Sessions followed on this node, with how many local seats need them.
    followed: Mutex<HashMap<SessionId, usize>>,
    /// Forwarded commands waiting for their reply.
    pending: Mutex<HashMap<u64, oneshot::Sender<RemoteReply>>>,
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
    replay_window: usize,
    store: Store,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    /// The node, for commands that arrive from other nodes.
    node: OnceLock<Weak<Node>>,
    /// Serializes takeovers so one session is restored once.
    takeover: tokio::sync::Mutex<()>,
    /// The heartbeat thread; `leave` stops it, and so does dropping it.
    heartbeat: Mutex<Option<Heartbeat>>,
    /// Woken by the heartbeat thread when the heartbeat had lapsed: this
    /// node checks which of its sessions are still its own.
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

/// How a node claims a session (see the `CLAIM` script).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A new session: only if nobody owns the id.
    Create,
    /// A session from this node's own store, at start-up.
    Restore,
    /// A takeover of a session whose owner is gone.
    Adopt,
}

impl Claim {
    fn as_arg(self) -> &'static str {
        match self {
            Claim::Create => "create",
            Claim::Restore => "restore",
            Claim::Adopt => "adopt",
        }
    }
}

/// The outcome of the heartbeat thread's first beat.
type FirstBeat = oneshot::Receiver<redis::RedisResult<()>>;

/// The handle of the heartbeat thread.
struct Heartbeat {
    /// `Some(())` asks the thread to end the heartbeat (graceful leave);
    /// dropping the sender just stops it.
    stop: std::sync::mpsc::Sender<()>,
    done: Option<oneshot::Receiver<()>>,
}

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
    /// Connects to Redis; call `start` once the node exists.
    pub async fn connect(
        url: &str,
        node_id: String,
        replay_window: usize,
        store: Store,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<redis::PushInfo>), redis::RedisError> {
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
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let sub = client
            .get_connection_manager_with_config(
                settings
                    .set_push_sender(push_tx)
                    .set_automatic_resubscription(),
            )
            .await?;
        let cluster = Arc::new(RedisCluster {
            node_id,
            cmd,
            sub: tokio::sync::Mutex::new(sub),
            followed: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            reachable: AtomicBool::new(true),
            recovered_at: Mutex::new(None),
            replay_window,
            store,
            fanout,
            metrics,
            node: OnceLock::new(),
            takeover: tokio::sync::Mutex::new(()),
            heartbeat: Mutex::new(None),
            lapsed: Arc::new(tokio::sync::Notify::new()),
            runtime_tick: Arc::new(AtomicU64::new(0)),
            started: std::time::Instant::now(),
            commit_script: Script::new(COMMIT),
            claim_script: Script::new(CLAIM),
            owner_script: Script::new(OWNER),
            release_script: Script::new(RELEASE),
            remove_script: Script::new(REMOVE),
            forget_script: Script::new(FORGET_INSTANCE),
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
        Ok((cluster, push_rx))
    }

    /// Starts the heartbeat thread: a plain thread with its own blocking
    /// Redis connection, so no amount of work on the runtime delays a beat.
    /// The receiver yields the outcome of its first beat.
    fn spawn_heartbeat(
        &self,
        client: redis::Client,
    ) -> Result<(Heartbeat, FirstBeat), redis::RedisError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (first_tx, first_beat) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let instance = self.node_id.clone();
        let lapsed = self.lapsed.clone();
        let tick = self.runtime_tick.clone();
        let started = self.started;
        std::thread::Builder::new()
            .name("recess-heartbeat".into())
            .spawn(move || {
                let beat = Script::new(HEARTBEAT);
                let alive = key("alive", &instance);
                let mut con: Option<redis::Connection> = None;
                let mut stalled = false;
                let mut first = Some(first_tx);
                loop {
                    let now = started.elapsed().as_millis() as u64;
                    let last = tick.load(Ordering::Relaxed);
                    if now.saturating_sub(last) > RUNTIME_STALL.as_millis() as u64 {
                        if !stalled {
                            tracing::error!(
                                "the runtime has made no progress for {}s; no more heartbeats, so other nodes take this node's sessions over",
                                RUNTIME_STALL.as_secs()
                            );
                        }
                        stalled = true;
                    } else {
                        stalled = false;
                        let beaten = match connected(&mut con, &client) {
                            Some(c) => beat
                                .key(&alive)
                                .key(INSTANCES)
                                .arg(&instance)
                                .arg(HEARTBEAT_TTL.as_millis() as u64)
                                .invoke::<i64>(c),
                            None => Err(redis::RedisError::from(std::io::Error::other(
                                "cannot connect to Redis",
                            ))),
                        };
                        if let Some(first) = first.take() {
                            // A fresh start always reports a (re)start.
                            let _ = first.send(beaten.as_ref().map(|_| ()).map_err(Clone::clone));
                        } else if matches!(beaten, Ok(2)) {
                            tracing::warn!("this node's heartbeat had lapsed; checking which sessions are still its own");
                            lapsed.notify_one();
                        }
                        if let Err(e) = beaten {
                            tracing::debug!(error = %e, "heartbeat failed");
                            con = None;
                        }
                    }
                    match stopped.recv_timeout(BEAT_EVERY) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Ok(()) => {
                            if let Some(c) = connected(&mut con, &client) {
                                end_heartbeat(c, &instance);
                            }
                            break;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| {
                redis::RedisError::from(std::io::Error::other(format!(
                    "cannot start the heartbeat thread: {e}"
                )))
            })?;
        Ok((
            Heartbeat {
                stop,
                done: Some(done),
            },
            first_beat,
        ))
    }

    /// Leaves the cluster (graceful shutdown, after every session was given
    /// up): ends the heartbeat and forgets this instance.
    pub async fn leave(&self) {
        let heartbeat = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut h) = heartbeat {
            let _ = h.stop.send(());
            if let Some(done) = h.done.take() {
                let _ = tokio::time::timeout(Duration::from_secs(3), done).await;
            }
        }
    }

    /// Starts the push dispatcher and the lease/takeover loop.
    pub fn start(
        self: &Arc<Self>,
        node: &Arc<Node>,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    ) {
        let _ = self.node.set(Arc::downgrade(node));
        node.tasks
            .spawn(self.clone().dispatch(pushes, node.shutdown.clone()));
        node.tasks
            .spawn(self.clone().scan_loop(node.shutdown.clone()));
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn is_reachable(&self) -> bool {
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

    /// Whether Redis came back so recently (or is away now) that a session
    /// missing from it may still be written back by its owner.
    pub fn settling(&self) -> bool {
        if !self.is_reachable() {
            return true;
        }
        let at = *self.recovered_at.lock().unwrap_or_else(|e| e.into_inner());
        at.is_some_and(|t| t.elapsed() < HEARTBEAT_TTL * 3)
    }

    fn con(&self) -> ConnectionManager {
        self.cmd.clone()
    }

    // ---- join codes -------------------------------------------------------

    /// Claims `code` for `session` if no live session has it.
    pub async fn claim_code(&self, code: &str, session: &str) -> Result<bool, ProtocolError> {
        let mut con = self.con();
        let set: Option<String> = redis::cmd("SET")
            .arg(key("code", code))
            .arg(session)
            .arg("NX")
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(set.is_some())
    }

    pub async fn lookup_code(&self, code: &str) -> Result<Option<String>, ProtocolError> {
        let mut con = self.con();
        con.get(key("code", code))
            .await
            .map_err(|e| self.unavailable(e))
    }

    pub async fn release_code(&self, code: &str, session: &str) {
        let mut con = self.con();
        let current: Option<String> = con.get(key("code", code)).await.unwrap_or(None);
        if current.as_deref() == Some(session) {
            let _: Result<(), _> = con.del(key("code", code)).await;
        }
    }

    fn unavailable(&self, e: redis::RedisError) -> ProtocolError {
        self.mark(false);
        tracing::debug!(error = %e, "redis call failed");
        ProtocolError::new(
            ErrorCode::Unavailable,
            "the game servers cannot reach each other right now; try again in a moment",
        )
    }

    // ---- ownership --------------------------------------------------------

    /// Makes this node the owner of `session` (see [`Claim`]). Returns
    /// whether it is ours now.
    pub async fn claim(&self, session: &str, how: Claim) -> Result<bool, ProtocolError> {
        let mut con = self.con();
        let claimed: i64 = self
            .claim_script
            .key(key("owner", session))
            .key(key("snap", session))
            .key(ORPHANS)
            .key(key("owned", &self.node_id))
            .arg(&self.node_id)
            .arg(session)
            .arg(how.as_arg())
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(claimed == 1)
    }

    /// The live node that owns `session` now, if any: an owner whose
    /// heartbeat is gone counts as none.
    pub async fn owner(&self, session: &str) -> Result<Option<String>, ProtocolError> {
        let mut con = self.con();
        let owner: Option<String> = self
            .owner_script
            .key(key("owner", session))
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        self.mark(true);
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        match &owner {
            Some(o) if *o != self.node_id => {
                owners.insert(session.to_owned(), o.clone());
            }
            _ => {
                owners.remove(session);
            }
        }
        Ok(owner)
    }

    /// Whether `instance`'s heartbeat lives.
    async fn is_alive(&self, instance: &str) -> bool {
        let mut con = self.con();
        let alive: Result<bool, _> = con.exists(key("alive", instance)).await;
        alive.unwrap_or(false)
    }

    /// The owner as last seen, or as Redis says now.
    pub async fn owner_cached(&self, session: &str) -> Result<Option<String>, ProtocolError> {
        let cached = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .cloned();
        match cached {
            Some(o) => Ok(Some(o)),
            None => self.owner(session).await,
        }
    }

    /// Forgets the cached owner of `session` (it moved, or did not answer).
    pub fn forget_owner(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session);
    }

    /// Gives a session up (graceful shutdown, or a takeover that failed
    /// here): it becomes an orphan that another node adopts at its next scan.
    pub async fn release(&self, session: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = self
            .release_script
            .key(key("owner", session))
            .key(ORPHANS)
            .key(key("owned", &self.node_id))
            .arg(&self.node_id)
            .arg(session)
            .invoke_async(&mut con)
            .await;
    }

    /// Reads a session as its owner last committed it.
    pub async fn load(&self, session: &str) -> Result<Option<StoredSession>, ProtocolError> {
        let mut con = self.con();
        // One atomic round trip, so the parts belong to the same commit.
        type Parts = (
            Option<Vec<u8>>,
            Vec<Vec<u8>>,
            HashMap<String, Vec<u8>>,
            HashMap<String, Vec<u8>>,
        );
        let (snap, raw, views, members): Parts = redis::pipe()
            .atomic()
            .get(key("snap", session))
            .lrange(key("log", session), 0, -1)
            .hgetall(key("views", session))
            .hgetall(key("members", session))
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        let Some(snap) = snap else {
            return Ok(None);
        };
        let snapshot: SessionSnapshot = serde_json::from_slice(&snap).map_err(|e| {
            ProtocolError::new(
                ErrorCode::Internal,
                format!("a stored session is corrupt: {e}"),
            )
        })?;
        let messages = raw.iter().filter_map(|b| decode_message(b).ok()).collect();
        let views = views
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|v| (k, v)))
            .collect();
        let members = members
            .values()
            .filter_map(|v| serde_json::from_slice(v).ok())
            .collect();
        Ok(Some(StoredSession::assemble(
            snapshot, members, messages, views,
        )))
    }

    /// Tells every node that `session` has a new owner, so their sockets
    /// reattach their seats.
    pub async fn announce_takeover(&self, session: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = con.publish(TAKEOVER, session).await;
    }

    // ---- following sessions -----------------------------------------------

    /// Makes sure this node receives `session`'s messages; returns once Redis
    /// confirmed the subscription, so nothing published after can be missed.
    pub async fn follow(&self, session: &SessionId) -> Result<(), ProtocolError> {
        let first = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            let n = followed.entry(session.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            let mut sub = self.sub.lock().await;
            if let Err(e) = sub.subscribe(key("s", session)).await {
                drop(sub);
                self.unfollow(session).await;
                return Err(self.unavailable(e));
            }
        }
        Ok(())
    }

    pub async fn unfollow(&self, session: &str) {
        let last = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            match followed.get_mut(session) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    followed.remove(session);
                    true
                }
                None => false,
            }
        };
        if last {
            let mut sub = self.sub.lock().await;
            let _ = sub.unsubscribe(key("s", session)).await;
        }
    }

    // ---- forwarding -------------------------------------------------------

    /// Publishes a command to the node `owner`. Returns once Redis has it,
    /// so commands published one after another reach the owner in that order;
    /// the receiver yields the reply (`None` for commands that need none).
    pub async fn forward(
        &self,
        owner: &str,
        session: &str,
        command: RemoteCommand,
    ) -> Result<Option<PendingReply>, ProtocolError> {
        let wants_reply = command.wants_reply();
        let id = if wants_reply {
            self.next_request.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let rx = wants_reply.then(|| {
            let (tx, rx) = oneshot::channel();
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tx);
            rx
        });
        let request = Request {
            id,
            from: self.node_id.clone(),
            session: session.to_owned(),
            command,
        };
        let payload = serde_json::to_vec(&request).unwrap_or_default();
        let mut con = self.con();
        let receivers: Result<i64, _> = con.publish(key("n", owner), payload).await;
        let failed = match receivers {
            Ok(0) => Some(moving()),
            Ok(_) => None,
            Err(e) => Some(self.unavailable(e)),
        };
        if let Some(error) = failed {
            self.forget(id);
            self.forget_owner(session);
            return Err(error);
        }
        Ok(rx.map(|rx| PendingReply {
            id,
            owner: owner.to_owned(),
            rx,
        }))
    }

    /// Waits for a forwarded command's reply: for as long as the owner is
    /// alive (a busy owner answers late, not never), up to `FORWARD_GIVE_UP`.
    pub async fn reply(
        &self,
        session: &str,
        mut pending: PendingReply,
    ) -> Result<RemoteReply, ProtocolError> {
        let give_up = tokio::time::Instant::now() + FORWARD_GIVE_UP;
        let reply = loop {
            match tokio::time::timeout(FORWARD_CHECK, &mut pending.rx).await {
                Ok(Ok(reply)) => break Ok(reply),
                Ok(Err(_)) => break Err(moving()),
                Err(_)
                    if tokio::time::Instant::now() < give_up
                        && self.is_alive(&pending.owner).await => {}
                Err(_) => break Err(moving()),
            }
        };
        if reply.is_err() {
            self.forget(pending.id);
        }
        if matches!(&reply, Err(_) | Ok(RemoteReply::Failed { .. })) {
            self.forget_owner(session);
        }
        reply
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    async fn answer(&self, to: &str, reply_to: u64, reply: RemoteReply) {
        let payload = serde_json::to_vec(&Response { reply_to, reply }).unwrap_or_default();
        let mut con = self.con();
        let _: Result<i64, _> = con.publish(key("n", to), payload).await;
    }

    // ---- background tasks -------------------------------------------------

    async fn dispatch(
        self: Arc<Self>,
        mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let session_prefix = "recess:s:";
        let own_channel = key("n", &self.node_id);
        loop {
            let push = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = pushes.recv() => match p { Some(p) => p, None => return },
            };
            match push.kind {
                PushKind::Message => {
                    let (Some(channel), Some(payload)) = (push.data.first(), push.data.get(1))
                    else {
                        continue;
                    };
                    let (Some(channel), Some(payload)) = (bytes_of(channel), bytes_of(payload))
                    else {
                        continue;
                    };
                    let channel = String::from_utf8_lossy(channel);
                    if let Some(session) = channel.strip_prefix(session_prefix) {
                        self.on_batch(session, payload);
                    } else if channel == own_channel {
                        self.on_node_message(payload).await;
                    } else if channel == TAKEOVER {
                        self.on_takeover(&String::from_utf8_lossy(payload));
                    }
                }
                PushKind::Disconnection => {
                    self.mark(false);
                    self.on_link_lost();
                }
                _ => {}
            }
        }
    }

    fn on_batch(&self, session: &str, payload: &[u8]) {
        let Some((origin, messages)) = decode_batch(payload) else {
            tracing::warn!(session, "malformed message batch from Redis");
            return;
        };
        if origin == self.node_id {
            return; // delivered locally at commit
        }
        let n = self.fanout.deliver(session, &messages);
        Metrics::add(&self.metrics.deliveries_total, n as u64);
    }

    async fn on_node_message(self: &Arc<Self>, payload: &[u8]) {
        match serde_json::from_slice::<NodeMessage>(payload) {
            Ok(NodeMessage::Response(r)) => {
                let tx = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.reply_to);
                if let Some(tx) = tx {
                    let _ = tx.send(r.reply);
                }
            }
            Ok(NodeMessage::Request(req)) => {
                let Some(node) = self.node.get().and_then(Weak::upgrade) else {
                    return;
                };
                // The command is handed to the session right here, in the
                // order its sender published it; only the wait for the answer
                // runs on its own task.
                let handed = node.serve_forwarded(&req.session, req.command).await;
                if req.id == 0 {
                    return;
                }
                let me = self.clone();
                node.tasks.spawn(async move {
                    let reply = match handed {
                        Ok(rx) => match tokio::time::timeout(FORWARD_GIVE_UP, rx).await {
                            Ok(Ok(reply)) => reply,
                            _ => RemoteReply::Failed {
                                error: crate::node::unknown_session(),
                            },
                        },
                        Err(error) => RemoteReply::Failed { error },
                    };
                    me.answer(&req.from, req.id, reply).await;
                });
            }
            Err(e) => tracing::warn!(error = %e, "malformed node message from Redis"),
        }
    }

    /// A session moved: this node's seats in it tell the new owner they are here.
    fn on_takeover(&self, session: &str) {
        self.forget_owner(session);
        let Some(node) = self.node.get().and_then(Weak::upgrade) else {
            return;
        };
        let members = self.fanout.members(session);
        if members.is_empty() {
            return;
        }
        let session = session.to_owned();
        let tasks = node.tasks.clone();
        tasks.spawn(async move {
            for member in members {
                let _ = node.send(&session, Command::Reattach { member }).await;
            }
        });
    }

    /// The subscription connection dropped: messages published meanwhile are
    /// lost to this node, so sockets following sessions owned elsewhere are
    /// closed (1012) and their clients resume, getting exactly what they missed.
    fn on_link_lost(&self) {
        let Some(node) = self.node.get().and_then(Weak::upgrade) else {
            return;
        };
        let followed: Vec<SessionId> = self
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for session in followed {
            if !node.owns(&session) {
                self.fanout
                    .close_session(&session, 1012, "reconnecting to the game server");
            }
        }
    }

    /// Every `SCAN_EVERY`: shows the heartbeat thread the runtime is alive,
    /// keeps the subscription connection up, and adopts sessions whose
    /// owner is gone. When the heartbeat had lapsed, checks this node's
    /// sessions first.
    async fn scan_loop(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(SCAN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let lapsed = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => false,
                _ = self.lapsed.notified() => true,
            };
            self.runtime_tick
                .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
            let Some(node) = self.node.get().and_then(Weak::upgrade) else {
                return;
            };
            if lapsed {
                self.check_owned(&node).await;
                continue;
            }
            self.keep_subscribed().await;
            self.adopt_orphans(&node).await;
        }
    }

    /// A managed connection reconnects only when it is used: ping the
    /// subscription connection so that after a Redis restart it reconnects
    /// and resubscribes by itself.
    async fn keep_subscribed(&self) {
        let mut sub = self.sub.lock().await.clone();
        let ok: Result<String, _> = redis::cmd("PING").query_async(&mut sub).await;
        if ok.is_err() {
            self.mark(false);
        }
    }

    /// After a lapse of the heartbeat (Redis was away or restarted, or this
    /// node was cut off): sessions another node took meanwhile are given up,
    /// sessions Redis lost are written back in full.
    async fn check_owned(&self, node: &Arc<Node>) {
        let owned = node.owned_sessions();
        if owned.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for s in &owned {
            pipe.get(key("owner", s));
        }
        let mut con = self.con();
        let owners: Result<Vec<Option<String>>, _> = pipe.query_async(&mut con).await;
        let Ok(owners) = owners else {
            self.mark(false);
            // Try again at the next beat.
            self.lapsed.notify_one();
            return;
        };
        self.mark(true);
        for (session, owner) in owned.iter().zip(owners) {
            match owner {
                Some(o) if o == self.node_id => {}
                None => {
                    tracing::info!(session = %session, "Redis lost this session; writing it back");
                    let _ = node.send(session, Command::Resync).await;
                }
                Some(_) => {
                    tracing::warn!(session = %session, "another node owns this session now; stopping here");
                    let _ = node.send(session, Command::Relinquish).await;
                }
            }
        }
    }

    /// Takes over the sessions of instances whose heartbeat is gone, and
    /// sessions given up by their owner. Costs a few round trips per scan
    /// whatever the number of sessions.
    async fn adopt_orphans(&self, node: &Arc<Node>) {
        let mut con = self.con();
        let instances: Result<Vec<String>, _> = con.smembers(INSTANCES).await;
        let Ok(instances) = instances else {
            self.mark(false);
            return;
        };
        self.mark(true);
        let others: Vec<String> = instances
            .into_iter()
            .filter(|i| *i != self.node_id)
            .collect();
        if !others.is_empty() {
            let mut pipe = redis::pipe();
            for i in &others {
                pipe.exists(key("alive", i));
            }
            let alive: Result<Vec<bool>, _> = pipe.query_async(&mut con).await;
            let Ok(alive) = alive else {
                return;
            };
            for (instance, alive) in others.iter().zip(alive) {
                if alive {
                    continue;
                }
                let owned: Result<Vec<String>, _> = con.smembers(key("owned", instance)).await;
                let Ok(owned) = owned else {
                    return;
                };
                if owned.is_empty() {
                    let _: Result<i64, _> = self
                        .forget_script
                        .key(key("alive", instance))
                        .key(key("owned", instance))
                        .key(INSTANCES)
                        .arg(instance)
                        .invoke_async(&mut con)
                        .await;
                    continue;
                }
                tracing::info!(instance = %instance, sessions = owned.len(), "a node is gone; taking its sessions over");
                for session in owned {
                    node.take_over(&session).await;
                }
            }
        }
        let orphans: Result<Vec<String>, _> = con.smembers(ORPHANS).await;
        for session in orphans.unwrap_or_default() {
            if !node.owns(&session) {
                node.take_over(&session).await;
            }
        }
    }

    /// Serializes takeovers on this node.
    pub async fn takeover_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.takeover.lock().await
    }

    async fn commit_redis(&self, w: &SessionWrite<'_>) -> Result<bool, redis::RedisError> {
        let sequenced: Vec<&crate::session::Outgoing> =
            w.messages.iter().filter(|m| m.seq > 0).collect();
        let payload = if w.messages.is_empty() || w.full {
            // A full rewrite republishes nothing: followers already have it,
            // and clients that missed it resume.
            let fresh: Vec<crate::session::Outgoing> =
                w.messages.iter().filter(|m| m.seq == 0).cloned().collect();
            if fresh.is_empty() {
                Vec::new()
            } else {
                encode_batch(&self.node_id, &fresh)
            }
        } else {
            encode_batch(&self.node_id, w.messages)
        };
        let mut inv = self.commit_script.prepare_invoke();
        inv.key(key("owner", w.id))
            .key(key("snap", w.id))
            .key(key("log", w.id))
            .key(key("views", w.id))
            .key(SESSIONS)
            .key(key("code", w.code))
            .key(key("owned", &self.node_id))
            .key(key("members", w.id));
        inv.arg(&self.node_id)
            .arg(0)
            .arg(w.snapshot.as_deref().unwrap_or(b""))
            .arg(self.replay_window.max(1))
            .arg(key("s", w.id))
            .arg(payload)
            .arg(if w.full { "1" } else { "0" })
            .arg(w.id)
            .arg(w.code)
            .arg(sequenced.len());
        for m in &sequenced {
            inv.arg(encode_message(m));
        }
        let views = || w.members.iter().filter(|m| m.view_changed);
        inv.arg(views().count());
        for m in views() {
            inv.arg(m.id).arg(m.view.as_slice());
        }
        let records = || w.members.iter().filter(|m| m.record_changed);
        inv.arg(records().count());
        for m in records() {
            inv.arg(m.id).arg(m.record.as_slice());
        }
        inv.arg(w.removed_members.len());
        for member in &w.removed_members {
            inv.arg(*member);
        }
        let mut con = self.con();
        let result: i64 = inv.invoke_async(&mut con).await?;
        Ok(result == 1)
    }
}

/// A blocking connection for the heartbeat thread, with short timeouts so a
/// beat never waits long on a Redis that went away.
fn connect_blocking(client: &redis::Client) -> Option<redis::Connection> {
    let con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    Some(con)
}

/// The heartbeat thread's connection, made first if there is none (or the
/// last one failed).
fn connected<'a>(
    con: &'a mut Option<redis::Connection>,
    client: &redis::Client,
) -> Option<&'a mut redis::Connection> {
    if con.is_none() {
        *con = connect_blocking(client);
    }
    con.as_mut()
}

/// Ends this instance's heartbeat at once (graceful leave) and forgets the
/// instance if it owns nothing any more.
fn end_heartbeat(con: &mut redis::Connection, instance: &str) {
    let _: Result<i64, _> = redis::cmd("DEL").arg(key("alive", instance)).query(con);
    let _: Result<i64, _> = Script::new(FORGET_INSTANCE)
        .key(key("alive", instance))
        .key(key("owned", instance))
        .key(INSTANCES)
        .arg(instance)
        .invoke(con);
}

fn bytes_of(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// A forwarded command's reply, still on its way.
pub struct PendingReply {
    id: u64,
    /// The instance the command went to, checked while the reply is late.
    owner: String,
    rx: oneshot::Receiver<RemoteReply>,
}

fn moving() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Unavailable,
        "this game is moving to another server; try again in a moment",
    )
}

/// The bus of a cluster node.
pub struct RedisBus {
    pub cluster: Arc<RedisCluster>,
}

impl CommitSink for RedisBus {
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(async move {
            let c = &self.cluster;
            let redis = c.commit_redis(&write).await;
            // Redis holds the durable copy; the local one (for a restart) is
            // written behind, unless Redis failed and it is all there is.
            let local = match &redis {
                Ok(true) => c.store.commit_behind(&write),
                Ok(false) => Ok(()),
                Err(_) => c.store.commit(&write).await,
            };
            if let Err(e) = &local {
                Metrics::inc(&c.metrics.snapshot_errors_total);
                tracing::error!(session = %write.id, error = %e, "local snapshot write failed");
            } else {
                Metrics::inc(&c.metrics.snapshot_writes_total);
            }
            match redis {
                Ok(true) => {
                    c.mark(true);
                    deliver_locally(&c.fanout, &c.metrics, write.session, &write);
                    Ok(())
                }
                Ok(false) => Err(CommitError::NotOwner),
                Err(e) => {
                    // Redis is away: the session keeps running here on the
                    // local store; the next commit after it is back rewrites
                    // the Redis copy in full.
                    c.mark(false);
                    deliver_locally(&c.fanout, &c.metrics, write.session, &write);
                    Err(CommitError::Failed(format!("redis: {e}")))
                }
            }
        })
    }
}

impl Bus for RedisBus {
    fn remove<'a>(&'a self, session: &'a str, code: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let c = &self.cluster;
            let mut con = c.con();
            let _: Result<i64, _> = c
                .remove_script
                .key(key("owner", session))
                .key(key("snap", session))
                .key(key("log", session))
                .key(key("views", session))
                .key(SESSIONS)
                .key(key("code", code))
                .key(ORPHANS)
                .key(key("members", session))
                .arg(&c.node_id)
                .arg(session)
                .invoke_async(&mut con)
                .await;
            if let Err(e) = c.store.delete(session).await {
                tracing::error!(session, error = %e, "could not delete a session");
            }
        })
    }

    fn release<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.cluster.release(session))
    }
}
