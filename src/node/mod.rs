//! `Node`: what one `recess` process shares between its tasks — the games,
//! the store, the bus, the sessions it owns and their join codes.
//!
//! Connections and REST handlers never touch a session directly: they ask the
//! node to route a [`Request`] to the session's actor (`route`), on this node
//! or, through the [`Cluster`], on its owner's. What differs between a node
//! alone and one in a cluster is behind that trait, so there is one code
//! path for both.

mod route;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Claim, Cluster};
use crate::config::Config;
use crate::delivery::Fanout;
use crate::keys::Keys;
use crate::limits::{self, JoinGuard};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, NameMode, ProtocolError};
use crate::script::Catalog;
use crate::session::actor::NewSession;
use crate::session::names::NameFilter;
use crate::session::pressure::{self, Pressure};
use crate::session::{
    Attached, CommitSink, Ended, MAILBOX, MailboxSender, MemberId, SessionActor, SessionEnv,
    SessionId, Settings, SystemClock, mailbox, random_code,
};
use crate::store::Store;

/// What a node is made of.
pub(crate) struct NodeParts {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    pub fanout: Arc<Fanout>,
    pub metrics: Arc<Metrics>,
    /// Who else there is (`LocalCluster` alone).
    pub cluster: Arc<dyn Cluster>,
    /// Where its sessions' commits go (`LocalBus`, or the cluster's `RedisBus`).
    pub sink: Arc<dyn CommitSink>,
    /// The runtime its sessions run on.
    pub scripts: tokio::runtime::Handle,
    /// Names students may not use (`--blocked-names`, or the shipped list).
    pub blocked_names: Arc<NameFilter>,
    /// The API and host keys in force.
    pub keys: Arc<Keys>,
    /// Where the sessions' webhooks go (`--webhook`), if anywhere.
    pub hooks: Option<Arc<dyn crate::session::hooks::HookTransport>>,
}

struct SessionHandle {
    tx: MailboxSender,
    /// The client address (as `limits::key` counts it) that hosted it, holding
    /// a place under `--max-sessions-per-address` while it lives; none for
    /// sessions made with the API key and for restores.
    host_addr: Option<IpAddr>,
}

pub(crate) struct Node {
    /// This node's name (`--node-id`), reported as a session's owner.
    pub node_id: String,
    pub config: Config,
    pub catalog: Arc<Catalog>,
    pub store: Store,
    pub fanout: Arc<Fanout>,
    pub metrics: Arc<Metrics>,
    /// The API and host keys in force (re-read on SIGHUP).
    pub keys: Arc<Keys>,
    /// The other nodes (or nobody, alone).
    cluster: Arc<dyn Cluster>,
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
    /// Where sessions run: threads apart from the sockets', so a handler
    /// that takes its whole budget delays no socket's reads and writes.
    scripts: tokio::runtime::Handle,
    /// Serializes takeovers so one session is restored once.
    takeover: tokio::sync::Mutex<()>,
    /// Sessions a takeover is under way for (or queued), so a scan that
    /// finds them again does not queue them twice.
    adopting: Mutex<HashSet<SessionId>>,
}

impl Node {
    /// A node made of its parts.
    pub(crate) fn new(parts: NodeParts) -> Arc<Node> {
        let NodeParts {
            config,
            catalog,
            store,
            fanout,
            metrics,
            cluster,
            sink,
            scripts,
            blocked_names,
            keys,
            hooks,
        } = parts;
        let node_id = cluster.node_id().to_owned();
        let env = Arc::new(SessionEnv {
            node_id: node_id.as_str().into(),
            sink,
            catalog: catalog.clone(),
            clock: Arc::new(SystemClock),
            metrics: metrics.clone(),
            pressure: Arc::new(Pressure::new(Duration::from_millis(
                config.view_interval_max_ms,
            ))),
            settings: settings(&config, &blocked_names),
            hooks,
        });
        let (shutdown, tasks) = (CancellationToken::new(), TaskTracker::new());
        // The probe runs where the sessions run, to feel how far behind they are.
        tasks.spawn_on(
            pressure::probe(
                env.pressure.clone(),
                env.settings.view_interval,
                metrics.clone(),
                shutdown.clone(),
            ),
            &scripts,
        );
        Arc::new(Node {
            node_id,
            config,
            catalog,
            store,
            fanout,
            metrics,
            keys,
            cluster,
            env,
            sessions: RwLock::new(HashMap::new()),
            codes: RwLock::new(HashMap::new()),
            hosted: Mutex::new(HashMap::new()),
            join_guard: JoinGuard::default(),
            shutdown,
            tasks,
            scripts,
            takeover: tokio::sync::Mutex::new(()),
            adopting: Mutex::new(HashSet::new()),
        })
    }

    /// Leaves the cluster (after shutdown gave every session up).
    pub(crate) async fn leave_cluster(&self) {
        self.cluster.leave().await;
    }

    /// The session a join code belongs to, on any node.
    pub(crate) async fn lookup_code(&self, code: &str) -> Result<Option<SessionId>, ProtocolError> {
        let local = {
            let codes = self.codes.read().unwrap_or_else(|e| e.into_inner());
            codes.get(code).cloned()
        };
        match local {
            Some(s) => Ok(Some(s)),
            None => self.cluster.lookup_code(code).await,
        }
    }

    /// Whether this node owns `session` now.
    pub(crate) fn owns(&self, session: &str) -> bool {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session)
    }

    /// The sessions this node owns now.
    pub(crate) fn owned_sessions(&self) -> Vec<SessionId> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Makes sure messages of `session` reach this node (a no-op alone).
    pub(crate) async fn follow(&self, session: &SessionId) -> Result<(), ProtocolError> {
        self.cluster.follow(session).await
    }

    pub(crate) async fn unfollow(&self, session: &str) {
        self.cluster.unfollow(session).await;
    }

    /// Creates a session of `game` whose host seat is `host`; `host_addr` is
    /// the hosting client's address (`None` for a REST call with the API key).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn create_session(
        self: &Arc<Self>,
        id: SessionId,
        game: &str,
        params: Json,
        names: NameMode,
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
        if !self.cluster.claim(&id, Claim::Create).await? {
            self.release_code(&code).await;
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "session id clash; please try again",
            ));
        }
        let new = NewSession {
            id: id.clone(),
            code: code.clone(),
            rules,
            params,
            host,
            host_secret,
            host_attached,
            seed: crate::session::new_seed(),
            names,
        };
        let env = self.env.clone();
        // `init` and the host's first view run on a script thread too.
        let created = self
            .on_scripts(async move {
                let (mut actor, attached) = SessionActor::create(env, new)?;
                // The session exists once its first snapshot is on disk.
                actor.commit().await;
                Ok((actor, attached))
            })
            .await
            .unwrap_or_else(|| {
                Err(ProtocolError::new(
                    ErrorCode::Unavailable,
                    "this server is shutting down; try again in a moment",
                ))
            });
        let (actor, attached) = match created {
            Ok(c) => c,
            Err(e) => {
                self.release_code(&code).await;
                self.cluster.release(&id).await;
                return Err(e);
            }
        };
        self.spawn(actor, place.keep());
        tracing::info!(session = %id, game, code, "session created");
        Ok((code, attached))
    }

    /// Brings back every session in the store (at start-up). In a cluster,
    /// only sessions no other node has taken over, from whichever copy (local
    /// or Redis) is newer.
    pub(crate) async fn restore_sessions(self: &Arc<Self>) -> usize {
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
            match self.cluster.claim(&id, Claim::Restore).await {
                Ok(true) => {}
                _ => continue,
            }
            if let Ok(Some(shared)) = self.cluster.load(&id).await
                && shared.seq() > session.seq()
            {
                session = shared;
            }
            let game = session.snapshot.game.clone();
            let Some(rules) = self.catalog.get(&game) else {
                tracing::error!(session = %id, game = %game, "cannot restore a session: its game is not loaded (kept on disk)");
                continue;
            };
            match self.restore(session, rules).await {
                Ok(mut actor) => {
                    if self.cluster.holds_copies() {
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

    /// Runs `work` on the script threads (where Lua runs), and waits for it;
    /// `None` if they are shutting down.
    async fn on_scripts<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        self.scripts.spawn(work).await.ok()
    }

    /// Brings a stored session back (its state into Lua, and `migrate` if
    /// the rules changed), on the script threads.
    async fn restore(
        &self,
        stored: crate::session::record::StoredSession,
        rules: Arc<crate::script::Rules>,
    ) -> Result<SessionActor, String> {
        let env = self.env.clone();
        self.on_scripts(async move { SessionActor::restore(env, stored, rules) })
            .await
            .unwrap_or_else(|| Err("this server is shutting down".into()))
    }

    fn adopt(self: &Arc<Self>, actor: SessionActor) {
        {
            let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
            codes.insert(actor.code().to_owned(), actor.id().clone());
        }
        self.spawn(actor, None);
    }

    /// Checks `--max-sessions` and `--max-sessions-per-address` before a
    /// session is created. The returned guard holds the address's place; the
    /// live session keeps it (`HostedPlace::keep`) until `detach`, and a
    /// creation that fails gives it back.
    fn reserve_session(&self, host_addr: Option<IpAddr>) -> Result<HostedPlace<'_>, ProtocolError> {
        let max = self.config.max_sessions;
        let live = self
            .sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        if live >= max {
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
        let (tx, rx) = mailbox(MAILBOX);
        {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            let old = sessions.insert(actor.id().clone(), SessionHandle { tx, host_addr });
            if let Some(addr) = old.and_then(|h| h.host_addr) {
                self.release_hosted(addr);
            }
        }
        Metrics::inc(&self.metrics.sessions_live);
        let shutdown = self.shutdown.clone();
        let node = self.clone();
        let (id, code) = (actor.id().clone(), actor.code().to_owned());
        let run = async move {
            let ended = actor.run(rx, shutdown).await;
            node.session_ended(&id, &code, ended).await;
        };
        self.tasks.spawn_on(run, &self.scripts);
    }

    /// An actor stopped: the session is handed on (shutdown), forgotten
    /// (expiry) or left to its new owner, and no longer served here.
    async fn session_ended(&self, id: &str, code: &str, ended: Ended) {
        match ended {
            Ended::Shutdown => self.cluster.release(id).await,
            Ended::Expired => {
                self.cluster.forget(id, code).await;
                if let Err(e) = self.store.delete(id).await {
                    tracing::error!(session = id, error = %e, "could not delete a session");
                }
            }
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
            match self.cluster.claim_code(&code, id).await {
                Ok(true) => return Ok(code),
                Ok(false) => self.forget_code(&code),
                Err(e) => {
                    self.forget_code(&code);
                    return Err(e);
                }
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
        if let Some(session) = session {
            self.cluster.release_code(code, &session).await;
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
fn settings(config: &Config, blocked_names: &Arc<NameFilter>) -> Settings {
    Settings {
        script: config.limits(),
        replay_window: config.replay_window,
        view_interval: config.view_interval(),
        commit_gap: crate::session::actor::COMMIT_GAP,
        ended_ttl: Duration::from_secs(config.ended_ttl_min.saturating_mul(60)),
        idle_ttl: Duration::from_secs(config.idle_ttl_h.saturating_mul(3600)),
        recording_bytes: config.recording_kib.saturating_mul(1024),
        blocked_names: blocked_names.clone(),
        check_game: false,
        keep_hooks: false,
    }
}

fn unknown_game(game: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownGame,
        format!("there is no game called '{game}' (see GET /api/games)"),
    )
}
