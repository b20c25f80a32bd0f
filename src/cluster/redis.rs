//! The Redis bus: several nodes, one Redis, sessions that survive a node.
//!
//! What lives in Redis (all keys prefixed `recess:`; no TTL unless stated):
//! - `owner:{session}` → node id, the owner's lease (`PX` = `LEASE`, renewed
//!   every `RENEW_EVERY` by the owner);
//! - `snap:{session}` → the session snapshot (JSON, as in sled);
//! - `log:{session}` → list of the replay window's messages, oldest first;
//! - `views:{session}` → hash member → the view that member last received;
//! - `code:{code}` → session id; `sessions` → set of every live session id.
//!
//! Channels: `recess:s:{session}` carries each committed batch of a session's
//! messages to the nodes following it; `recess:n:{node}` carries forwarded
//! commands and their replies; `recess:takeover` announces a new owner.
//!
//! The owner writes a batch (snapshot, messages, views) and publishes it in
//! one Lua script that first checks the lease, so a node that lost its lease
//! can never overwrite the new owner's session, and nothing is acknowledged
//! before the batch is in Redis.

use std::collections::{HashMap, HashSet};
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
use super::{Bus, CommitError, deliver_locally};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::fanout::Fanout;
use crate::session::{Command, SessionId};
use crate::store::{
    SessionSnapshot, SessionWrite, Store, StoredSession, decode_message, encode_message,
};

/// How long an owner's lease lasts without renewal: a dead owner's sessions
/// are taken over this long after its last renewal (plus one scan).
pub const LEASE: Duration = Duration::from_millis(2000);
/// How often owners renew their leases and nodes look for orphaned sessions.
pub const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long a forwarded command waits for the owner's reply.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

const COMMIT: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code
-- ARGV: node, lease_ms, snapshot ('' = keep), window, channel, payload ('' = none),
--       full (1/0), session, code, n, messages..., m, (member, view)..., k, removed...
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then
  if owner then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
if ARGV[7] == '1' then
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('SET', KEYS[6], ARGV[8])
end
redis.call('SADD', KEYS[5], ARGV[8])
local i = 10
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('RPUSH', KEYS[3], ARGV[i]); i = i + 1 end
if n > 0 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1) end
local m = tonumber(ARGV[i]); i = i + 1
for _ = 1, m do redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
local k = tonumber(ARGV[i]); i = i + 1
for _ = 1, k do redis.call('HDEL', KEYS[4], ARGV[i]); i = i + 1 end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
"#;

const RENEW: &str = r#"
-- KEYS: owner keys; ARGV: node, lease_ms. Per key: 1 renewed, 2 reclaimed (Redis lost it), 0 lost.
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == ARGV[1] then
    redis.call('PEXPIRE', k, ARGV[2]); out[i] = 1
  elseif not v then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2]); out[i] = 2
  else
    out[i] = 0
  end
end
return out
"#;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

const REMOVE: &str = r#"
-- KEYS: owner, snap, log, views, sessions, code; ARGV: node, session
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
if redis.call('GET', KEYS[6]) == ARGV[2] then redis.call('DEL', KEYS[6]) end
redis.call('SREM', KEYS[5], ARGV[2])
return 1
"#;

fn key(kind: &str, id: &str) -> String {
    format!("recess:{kind}:{id}")
}
const SESSIONS: &str = "recess:sessions";
const TAKEOVER: &str = "recess:takeover";

/// One node's link to the cluster.
pub struct RedisCluster {
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
    commit_script: Script,
    renew_script: Script,
    release_script: Script,
    remove_script: Script,
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
        let settings = ConnectionManagerConfig::new()
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(3)
            .set_response_timeout(Some(Duration::from_secs(2)))
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
            commit_script: Script::new(COMMIT),
            renew_script: Script::new(RENEW),
            release_script: Script::new(RELEASE),
            remove_script: Script::new(REMOVE),
        });
        {
            let mut sub = cluster.sub.lock().await;
            sub.subscribe(key("n", &cluster.node_id)).await?;
            sub.subscribe(TAKEOVER).await?;
        }
        Ok((cluster, push_rx))
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
            .spawn(self.clone().lease_loop(node.shutdown.clone()));
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
        at.is_some_and(|t| t.elapsed() < LEASE * 3)
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

    /// Takes the lease of a session nobody owns.
    pub async fn claim(&self, session: &str) -> Result<bool, ProtocolError> {
        let mut con = self.con();
        let set: Option<String> = redis::cmd("SET")
            .arg(key("owner", session))
            .arg(&self.node_id)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(set.is_some())
    }

    /// The node that owns `session` now, if any.
    pub async fn owner(&self, session: &str) -> Result<Option<String>, ProtocolError> {
        let mut con = self.con();
        let owner: Option<String> = con
            .get(key("owner", session))
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

    /// Gives a session's lease up (graceful shutdown), so another node takes
    /// it over at its next scan instead of waiting for the lease to expire.
    pub async fn release(&self, session: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = self
            .release_script
            .key(key("owner", session))
            .arg(&self.node_id)
            .invoke_async(&mut con)
            .await;
    }

    /// Reads a session as its owner last committed it.
    pub async fn load(&self, session: &str) -> Result<Option<StoredSession>, ProtocolError> {
        let mut con = self.con();
        let snap: Option<Vec<u8>> = con
            .get(key("snap", session))
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
        let raw: Vec<Vec<u8>> = con
            .lrange(key("log", session), 0, -1)
            .await
            .map_err(|e| self.unavailable(e))?;
        let messages = raw
            .iter()
            .filter_map(|b| decode_message(b).ok())
            .filter(|m| m.seq <= snapshot.seq)
            .collect();
        let views: HashMap<String, Vec<u8>> = con
            .hgetall(key("views", session))
            .await
            .map_err(|e| self.unavailable(e))?;
        let views = views
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|v| (k, v)))
            .collect();
        Ok(Some(StoredSession {
            snapshot,
            messages,
            views,
        }))
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
        Ok(rx.map(|rx| PendingReply { id, rx }))
    }

    /// Waits for a forwarded command's reply.
    pub async fn reply(
        &self,
        session: &str,
        pending: PendingReply,
    ) -> Result<RemoteReply, ProtocolError> {
        let reply = match tokio::time::timeout(FORWARD_TIMEOUT, pending.rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => {
                self.forget(pending.id);
                Err(moving())
            }
        };
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
                        Ok(rx) => match tokio::time::timeout(FORWARD_TIMEOUT, rx).await {
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

    /// Renews this node's leases and takes over sessions whose owner is gone.
    async fn lease_loop(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(RENEW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(node) = self.node.get().and_then(Weak::upgrade) else {
                return;
            };
            self.keep_subscribed().await;
            self.renew(&node).await;
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

    async fn renew(&self, node: &Arc<Node>) {
        let owned = node.owned_sessions();
        if owned.is_empty() {
            // Still a cheap round trip, so reachability is known.
            let mut con = self.con();
            let ok: Result<String, _> = redis::cmd("PING").query_async(&mut con).await;
            self.mark(ok.is_ok());
            return;
        }
        let mut invocation = self.renew_script.prepare_invoke();
        for s in &owned {
            invocation.key(key("owner", s));
        }
        invocation.arg(&self.node_id).arg(LEASE.as_millis() as u64);
        let mut con = self.con();
        let result: Result<Vec<i64>, _> = invocation.invoke_async(&mut con).await;
        let Ok(states) = result else {
            self.mark(false);
            return;
        };
        self.mark(true);
        for (session, state) in owned.iter().zip(states) {
            match state {
                2 => {
                    tracing::info!(session = %session, "Redis lost this session; writing it back");
                    let _ = node.send(session, Command::Resync).await;
                }
                0 => {
                    tracing::warn!(session = %session, "another node owns this session now; stopping here");
                    let _ = node.send(session, Command::Relinquish).await;
                }
                _ => {}
            }
        }
    }

    async fn adopt_orphans(&self, node: &Arc<Node>) {
        let mut con = self.con();
        let all: Result<HashSet<String>, _> = con.smembers(SESSIONS).await;
        let Ok(all) = all else {
            return;
        };
        let candidates: Vec<String> = all.into_iter().filter(|s| !node.owns(s)).collect();
        if candidates.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for s in &candidates {
            pipe.exists(key("owner", s));
        }
        let owned: Result<Vec<bool>, _> = pipe.query_async(&mut con).await;
        let Ok(owned) = owned else {
            return;
        };
        for (session, has_owner) in candidates.into_iter().zip(owned) {
            if !has_owner {
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
            .key(key("code", w.code));
        inv.arg(&self.node_id)
            .arg(LEASE.as_millis() as u64)
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
        inv.arg(w.views.len());
        for (member, view) in &w.views {
            inv.arg(*member).arg(view.as_slice());
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

impl Bus for RedisBus {
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(async move {
            let c = &self.cluster;
            let redis = c.commit_redis(&write).await;
            let local = c.store.commit(&write).await;
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
