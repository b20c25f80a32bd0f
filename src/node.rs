//! `Node`: what one `recess` process shares between its tasks — the games,
//! the store, the bus, the sessions it owns and their join codes.
//!
//! Connections and REST handlers never touch a session directly: they ask the
//! node to route a [`Command`] to the session's actor.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::redis::{Claim, RedisBus, RedisCluster};
use crate::cluster::wire::{RemoteCommand, RemoteReply};
use crate::cluster::{Bus, LocalBus};
use crate::config::Config;
use crate::limits::{self, JoinGuard};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::script::Catalog;
use crate::session::actor::NewSession;
use crate::delivery::Fanout;
use crate::session::{
    Attached, Command, CommitSink, Ended, MemberId, Reply, SessionActor, SessionEnv, SessionId,
    Settings, SystemClock, random_code, random_id,
};
use crate::store::Store;

/// Commands a session's mailbox holds before senders wait.
const MAILBOX: usize = 1024;
/// How long a request waits for a session's answer before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct SessionHandle {
    tx: mpsc::Sender<Command>,
    game: String,
    /// The client address (as `limits::key` counts it) that hosted it, holding
    /// a place under `--max-sessions-per-address` while it lives; none for
    /// sessions made with the API key and for restores.
    host_addr: Option<IpAddr>,
}

pub struct Node {
    /// This node's name (`--node-id`), reported as a session's owner.
    pub node_id: String,
    pub config: Config,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    pub fanout: Arc<Fanout>,
    pub bus: Arc<dyn Bus>,
    pub metrics: Arc<Metrics>,
    /// What every session of this node is given.
    env: Arc<SessionEnv>,
    /// Sessions this node owns.
    sessions: RwLock<HashMap<SessionId, SessionHandle>>,
    /// Join codes of live sessions.
    codes: RwLock<HashMap<String, SessionId>>,
    /// Live sessions per hosting client address.
    hosted: Mutex<HashMap<IpAddr, usize>>,
    /// Wrong join codes per client address.
    pub join_guard: JoinGuard,
    /// Cancelled when the node shuts down; every task watches it.
    pub shutdown: CancellationToken,
    /// Every actor and connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The cluster link, when the node runs with `--redis`.
    pub cluster: Option<Arc<RedisCluster>>,
}

impl Node {
    /// A node; with `cluster`, sessions are shared through Redis.
    pub fn new(
        config: Config,
        catalog: Arc<Catalog>,
        store: Store,
        fanout: Arc<Fanout>,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<RedisCluster>>,
    ) -> Arc<Node> {
        let bus: Arc<dyn Bus> = match &cluster {
            Some(c) => Arc::new(RedisBus { cluster: c.clone() }),
            None => Arc::new(LocalBus::new(
                store.clone(),
                fanout.clone(),
                metrics.clone(),
            )),
        };
        let node_id = match &cluster {
            Some(c) => c.node_id().to_owned(),
            None => config
                .node_id
                .clone()
                .unwrap_or_else(|| format!("node-{}", random_id(6))),
        };
        let env = Arc::new(SessionEnv {
            node_id: node_id.as_str().into(),
            sink: bus.clone() as Arc<dyn CommitSink>,
            catalog: catalog.clone(),
            clock: Arc::new(SystemClock),
            metrics: metrics.clone(),
            settings: settings(&config),
        });
        Arc::new(Node {
            node_id,
            config,
            catalog,
            store,
            fanout,
            bus,
            metrics,
            env,
            sessions: RwLock::new(HashMap::new()),
            codes: RwLock::new(HashMap::new()),
            hosted: Mutex::new(HashMap::new()),
            join_guard: JoinGuard::default(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            cluster,
        })
    }

    /// The session a join code belongs to, on any node.
    pub async fn lookup_code(&self, code: &str) -> Result<Option<SessionId>, ProtocolError> {
        let local = {
            let codes = self.codes.read().unwrap_or_else(|e| e.into_inner());
            codes.get(code).cloned()
        };
        match (local, &self.cluster) {
            (Some(s), _) => Ok(Some(s)),
            (None, Some(c)) => Ok(c.lookup_code(code).await?.map(SessionId::from)),
            (None, None) => Ok(None),
        }
    }

    /// Whether this node owns `session` now.
    pub fn owns(&self, session: &str) -> bool {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session)
    }

    /// The sessions this node owns now.
    pub fn owned_sessions(&self) -> Vec<SessionId> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Makes sure messages of `session` reach this node (a no-op alone).
    pub async fn follow(&self, session: &SessionId) -> Result<(), ProtocolError> {
        match &self.cluster {
            Some(c) => c.follow(session).await,
            None => Ok(()),
        }
    }

    pub async fn unfollow(&self, session: &str) {
        if let Some(c) = &self.cluster {
            c.unfollow(session).await;
        }
    }

    pub fn session_count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Sessions of `game` owned here (for tests and the host page).
    pub fn sessions_of(&self, game: &str) -> Vec<SessionId> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions
            .iter()
            .filter(|(_, h)| h.game == game)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Creates a session of `game` whose host seat is `host`; `host_addr` is
    /// the hosting client's address (`None` for a REST call with the API key).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_session(
        self: &Arc<Self>,
        id: SessionId,
        game: &str,
        params: Json,
        host: MemberId,
        host_secret: String,
        host_attached: bool,
        host_addr: Option<IpAddr>,
    ) -> Result<(String, Attached), ProtocolError> {
        let place = self.reserve_session(host_addr)?;
        let rules = match self.catalog.entry(game) {
            Some(entry) => match (entry.rules, entry.error) {
                (Some(rules), _) => rules,
                (None, Some(error)) => {
                    return Err(ProtocolError::new(
                        ErrorCode::GameBroken,
                        format!("the game '{game}' does not load: {error}"),
                    ));
                }
                (None, None) => return Err(unknown_game(game)),
            },
            None => return Err(unknown_game(game)),
        };
        let code = self.claim_code(&id).await?;
        if let Some(c) = &self.cluster
            && !c.claim(&id, Claim::Create).await?
        {
            self.release_code(&code).await;
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "session id clash; please try again",
            ));
        }
        let created = SessionActor::create(
            self.env.clone(),
            NewSession {
                id: id.clone(),
                code: code.clone(),
                rules,
                params,
                host,
                host_secret,
                host_attached,
            },
        );
        let (mut actor, attached) = match created {
            Ok(c) => c,
            Err(e) => {
                self.release_code(&code).await;
                if let Some(c) = &self.cluster {
                    c.release(&id).await;
                }
                return Err(e);
            }
        };
        // The session exists once its first snapshot is on disk.
        actor.commit().await;
        self.spawn(actor, place.keep());
        tracing::info!(session = %id, game, code, "session created");
        Ok((code, attached))
    }

    /// Brings back every session in the store (at start-up). In a cluster,
    /// only sessions no other node has taken over, from whichever copy (local
    /// or Redis) is newer.
    pub async fn restore_sessions(self: &Arc<Self>) -> usize {
        let stored = match self.store.load_all() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read stored sessions");
                return 0;
            }
        };
        let mut restored = 0;
        for mut session in stored {
            let id = session.snapshot.id.clone();
            if let Some(c) = &self.cluster {
                match c.claim(&id, Claim::Restore).await {
                    Ok(true) => {}
                    _ => continue,
                }
                if let Ok(Some(shared)) = c.load(&id).await
                    && shared.seq() > session.seq()
                {
                    session = shared;
                }
            }
            let game = session.snapshot.game.clone();
            let Some(rules) = self.catalog.get(&game) else {
                tracing::error!(session = %id, game = %game, "cannot restore a session: its game is not loaded (kept on disk)");
                continue;
            };
            match SessionActor::restore(self.env.clone(), session, rules) {
                Ok(mut actor) => {
                    if self.cluster.is_some() {
                        actor.request_resync();
                    }
                    self.adopt(actor);
                    restored += 1;
                }
                Err(e) => tracing::error!(session = %id, "cannot restore a session: {e}"),
            }
        }
        restored
    }

    fn adopt(self: &Arc<Self>, actor: SessionActor) {
        {
            let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
            codes.insert(actor.code().to_owned(), actor.id().clone());
        }
        self.spawn(actor, None);
    }

    /// Takes over a session whose owner is gone: claims it (only if its
    /// owner's heartbeat is gone), restores it from Redis and tells every
    /// node. Returns whether it is owned here now.
    pub async fn take_over(self: &Arc<Self>, session: &str) -> bool {
        let Some(cluster) = &self.cluster else {
            return self.owns(session);
        };
        let _guard = cluster.takeover_guard().await;
        if self.owns(session) {
            return true;
        }
        // Claimed first, then read: the last owner's commits all landed
        // before the claim, and none can land after it.
        if !matches!(cluster.claim(session, Claim::Adopt).await, Ok(true)) {
            return false;
        }
        let stored = match cluster.load(session).await {
            Ok(Some(s)) => s,
            _ => {
                cluster.release(session).await;
                return false;
            }
        };
        let Some(rules) = self.catalog.get(&stored.snapshot.game) else {
            tracing::error!(session, game = %stored.snapshot.game, "cannot take over: the game is not loaded here");
            cluster.release(session).await;
            return false;
        };
        match SessionActor::restore(self.env.clone(), stored, rules) {
            Ok(actor) => {
                tracing::info!(session, node = %self.node_id, "took the session over");
                self.adopt(actor);
                for member in self.fanout.members(session) {
                    let _ = self.send_local(session, Command::Reattach { member }).await;
                }
                cluster.announce_takeover(session).await;
                true
            }
            Err(e) => {
                tracing::error!(session, "cannot take over: {e}");
                cluster.release(session).await;
                false
            }
        }
    }

    /// Hands a command another node forwarded to this owner's session;
    /// the receiver yields the reply.
    pub async fn serve_forwarded(
        self: &Arc<Self>,
        session: &str,
        command: RemoteCommand,
    ) -> Result<oneshot::Receiver<RemoteReply>, ProtocolError> {
        if !self.owns(session) {
            let orphan = match &self.cluster {
                Some(c) => c.owner(session).await?.is_none(),
                None => false,
            };
            if !(orphan && self.take_over(session).await) {
                return Err(ProtocolError::new(
                    ErrorCode::Unavailable,
                    "this game is moving to another server; try again in a moment",
                ));
            }
        }
        let (cmd, rx) = command.into_local();
        if let Some(cmd) = cmd {
            self.send_local(session, cmd)
                .await
                .map_err(|_| unknown_session())?;
        }
        Ok(rx)
    }

    /// Checks `--max-sessions` and `--max-sessions-per-address` before a
    /// session is created. The returned guard holds the address's place; the
    /// live session keeps it (`HostedPlace::keep`) until `detach`, and a
    /// creation that fails gives it back.
    fn reserve_session(&self, host_addr: Option<IpAddr>) -> Result<HostedPlace<'_>, ProtocolError> {
        let max = self.config.max_sessions;
        if self.session_count() >= max {
            return Err(ProtocolError::new(
                ErrorCode::Overloaded,
                format!("this server already runs its most games ({max}); try again later"),
            ));
        }
        let per_address = self.config.max_sessions_per_address;
        let Some(addr) = host_addr.filter(|_| per_address > 0).map(limits::key) else {
            return Ok(HostedPlace {
                node: self,
                addr: None,
            });
        };
        let mut hosted = self.hosted.lock().unwrap_or_else(|e| e.into_inner());
        let count = hosted.entry(addr).or_insert(0);
        if *count >= per_address {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                format!(
                    "{per_address} games hosted from your network are still running; end one before starting another"
                ),
            ));
        }
        *count += 1;
        Ok(HostedPlace {
            node: self,
            addr: Some(addr),
        })
    }

    fn release_hosted(&self, addr: IpAddr) {
        let mut hosted = self.hosted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = hosted.get_mut(&addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                hosted.remove(&addr);
            }
        }
    }

    fn spawn(self: &Arc<Self>, actor: SessionActor, host_addr: Option<IpAddr>) {
        let (tx, rx) = mpsc::channel(MAILBOX);
        {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            let old = sessions.insert(
                actor.id().clone(),
                SessionHandle {
                    tx,
                    game: actor.game().to_owned(),
                    host_addr,
                },
            );
            if let Some(addr) = old.and_then(|h| h.host_addr) {
                self.release_hosted(addr);
            }
        }
        Metrics::inc(&self.metrics.sessions_live);
        let shutdown = self.shutdown.clone();
        let node = self.clone();
        let (id, code) = (actor.id().clone(), actor.code().to_owned());
        self.tasks.spawn(async move {
            let ended = actor.run(rx, shutdown).await;
            node.session_ended(&id, &code, ended).await;
        });
    }

    /// An actor stopped: the session is handed on (shutdown), forgotten
    /// (expiry) or left to its new owner, and no longer served here.
    async fn session_ended(&self, id: &str, code: &str, ended: Ended) {
        match ended {
            Ended::Shutdown => self.bus.release(id).await,
            Ended::Expired => self.bus.remove(id, code).await,
            Ended::NotOwner | Ended::Closed => {}
        }
        self.detach(id, code);
    }

    /// The session is no longer served here.
    fn detach(&self, id: &str, code: &str) {
        let removed = {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            sessions.remove(id)
        };
        if let Some(handle) = removed {
            Metrics::dec(&self.metrics.sessions_live);
            if let Some(addr) = handle.host_addr {
                self.release_hosted(addr);
            }
        }
        // The code stays claimed in the cluster while another node serves
        // the session; locally it is no longer ours to answer for.
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        codes.remove(code);
    }

    async fn claim_code(&self, id: &SessionId) -> Result<String, ProtocolError> {
        loop {
            let code = random_code();
            {
                let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
                if codes.contains_key(&code) {
                    continue;
                }
                codes.insert(code.clone(), id.clone());
            }
            match &self.cluster {
                None => return Ok(code),
                Some(c) => match c.claim_code(&code, id).await {
                    Ok(true) => return Ok(code),
                    Ok(false) => self.forget_code(&code),
                    Err(e) => {
                        self.forget_code(&code);
                        return Err(e);
                    }
                },
            }
        }
    }

    fn forget_code(&self, code: &str) {
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        codes.remove(code);
    }

    async fn release_code(&self, code: &str) {
        let session = {
            let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
            codes.remove(code)
        };
        if let (Some(c), Some(session)) = (&self.cluster, session) {
            c.release_code(code, &session).await;
        }
    }

    async fn send_local(&self, session: &str, cmd: Command) -> Result<(), Command> {
        let tx = {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            sessions.get(session).map(|h| h.tx.clone())
        };
        match tx {
            Some(tx) => tx.send(cmd).await.map_err(|e| e.0),
            None => Err(cmd),
        }
    }

    /// Hands a command to a session's actor, on this node or its owner's.
    pub async fn send(self: &Arc<Self>, session: &str, cmd: Command) -> Result<(), ProtocolError> {
        let cmd = match self.send_local(session, cmd).await {
            Ok(()) => return Ok(()),
            Err(cmd) => cmd,
        };
        let Some(cluster) = self.cluster.clone() else {
            return Err(unknown_session());
        };
        let owner = match cluster.owner_cached(session).await? {
            Some(owner) if owner != self.node_id => owner,
            _ => {
                // Nobody (alive) owns it: take it over and serve it here.
                if self.take_over(session).await {
                    return self
                        .send_local(session, cmd)
                        .await
                        .map_err(|_| unknown_session());
                }
                match cluster.owner(session).await? {
                    Some(owner) if owner != self.node_id => owner,
                    _ if cluster.settling() => {
                        return Err(ProtocolError::new(
                            ErrorCode::Unavailable,
                            "the game servers are reconnecting; try again in a moment",
                        ));
                    }
                    _ => return Err(unknown_session()),
                }
            }
        };
        let (remote, adapter) = RemoteCommand::from_local(cmd);
        // Published before returning, so a connection's commands reach the
        // owner in the order it sent them; the reply is awaited on a task and
        // delivered through the command's own channel.
        match cluster.forward(&owner, session, remote).await {
            Ok(Some(pending)) => {
                let shutdown = self.shutdown.clone();
                let session = session.to_owned();
                self.tasks.spawn(async move {
                    tokio::select! {
                        reply = cluster.reply(&session, pending) => adapter(reply),
                        _ = shutdown.cancelled() => {}
                    }
                });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                adapter(Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Sends a command built around a reply channel and waits for the answer.
    pub async fn request<T>(
        self: &Arc<Self>,
        session: &str,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T, ProtocolError> {
        let (tx, rx) = oneshot::channel();
        self.send(session, make(tx)).await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(unknown_session()),
            Err(_) => Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "the session did not answer in time; try again",
            )),
        }
    }
}

/// A place under `--max-sessions-per-address` (the address as
/// `limits::key` counts it) held while a session is being created; given back
/// on drop unless the session keeps it.
struct HostedPlace<'a> {
    node: &'a Node,
    addr: Option<IpAddr>,
}

impl HostedPlace<'_> {
    /// The session now holds the place: it is given back by `detach`.
    fn keep(mut self) -> Option<IpAddr> {
        self.addr.take()
    }
}

impl Drop for HostedPlace<'_> {
    fn drop(&mut self) {
        if let Some(addr) = self.addr {
            self.node.release_hosted(addr);
        }
    }
}

/// What a session is set to by the node's flags.
fn settings(config: &Config) -> Settings {
    Settings {
        script: config.limits(),
        replay_window: config.replay_window,
        view_interval: config.view_interval(),
        ended_ttl: Duration::from_secs(config.ended_ttl_min.saturating_mul(60)),
        idle_ttl: Duration::from_secs(config.idle_ttl_h.saturating_mul(3600)),
    }
}

fn unknown_game(game: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownGame,
        format!("there is no game called '{game}' (see GET /api/games)"),
    )
}

pub fn unknown_session() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownSession,
        "that session does not exist (any more)",
    )
}
