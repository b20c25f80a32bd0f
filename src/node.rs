//! `Node`: what one `recess` process shares between its tasks — the games,
//! the store, the bus, the sessions it owns and their join codes.
//!
//! Connections and REST handlers never touch a session directly: they ask the
//! node to route a [`Command`] to the session's actor.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Bus, LocalBus};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::script::Catalog;
use crate::session::actor::NewSession;
use crate::session::fanout::Fanout;
use crate::session::{
    Attached, Command, MemberId, Reply, SessionActor, SessionId, random_code, random_id,
};
use crate::store::Store;

/// Commands a session's mailbox holds before senders wait.
const MAILBOX: usize = 1024;
/// How long a request waits for a session's answer before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct SessionHandle {
    tx: mpsc::Sender<Command>,
    game: String,
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
    /// Sessions this node owns.
    sessions: RwLock<HashMap<SessionId, SessionHandle>>,
    /// Join codes of live sessions.
    codes: RwLock<HashMap<String, SessionId>>,
    /// Cancelled when the node shuts down; every task watches it.
    pub shutdown: CancellationToken,
    /// Every actor and connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
}

impl Node {
    pub fn new(config: Config, catalog: Arc<Catalog>, store: Store) -> Arc<Node> {
        let fanout = Arc::new(Fanout::default());
        let metrics = Arc::new(Metrics::default());
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(store.clone(), fanout.clone(), metrics.clone()));
        let node_id = config
            .node_id
            .clone()
            .unwrap_or_else(|| format!("node-{}", random_id(6)));
        Arc::new(Node {
            node_id,
            config,
            catalog,
            store,
            fanout,
            bus,
            metrics,
            sessions: RwLock::new(HashMap::new()),
            codes: RwLock::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// The session a join code belongs to.
    pub fn lookup_code(&self, code: &str) -> Option<SessionId> {
        let codes = self.codes.read().unwrap_or_else(|e| e.into_inner());
        codes.get(code).cloned()
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

    /// Creates a session of `game` whose host seat is `host`.
    pub async fn create_session(
        self: &Arc<Self>,
        id: SessionId,
        game: &str,
        params: Json,
        host: MemberId,
        host_secret: String,
        host_attached: bool,
    ) -> Result<(String, Attached), ProtocolError> {
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
        let code = self.claim_code(&id);
        let created = SessionActor::create(
            self.clone(),
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
                self.release_code(&code);
                return Err(e);
            }
        };
        // The session exists once its first snapshot is on disk.
        actor.commit().await;
        self.spawn(actor);
        tracing::info!(session = %id, game, code, "session created");
        Ok((code, attached))
    }

    /// Brings back every session in the store (at start-up).
    pub fn restore_sessions(self: &Arc<Self>) -> usize {
        let stored = match self.store.load_all() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "could not read stored sessions");
                return 0;
            }
        };
        let mut restored = 0;
        for session in stored {
            let id = session.snapshot.id.clone();
            let game = session.snapshot.game.clone();
            let Some(rules) = self.catalog.get(&game) else {
                tracing::error!(session = %id, game = %game, "cannot restore a session: its game is not loaded (kept on disk)");
                continue;
            };
            match SessionActor::restore(self.clone(), session, rules) {
                Ok(actor) => {
                    let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
                    codes.insert(actor.code().to_owned(), actor.id().clone());
                    drop(codes);
                    self.spawn(actor);
                    restored += 1;
                }
                Err(e) => tracing::error!(session = %id, "cannot restore a session: {e}"),
            }
        }
        restored
    }

    fn spawn(self: &Arc<Self>, actor: SessionActor) {
        let (tx, rx) = mpsc::channel(MAILBOX);
        {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            sessions.insert(
                actor.id().clone(),
                SessionHandle {
                    tx,
                    game: actor.game().to_owned(),
                },
            );
        }
        Metrics::inc(&self.metrics.sessions_live);
        let changes = self.catalog.subscribe();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(actor.run(rx, changes, shutdown));
    }

    /// Called by an actor that stops: the session is no longer served here.
    pub(crate) fn detach(&self, id: &str, code: &str) {
        let removed = {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            sessions.remove(id).is_some()
        };
        if removed {
            Metrics::dec(&self.metrics.sessions_live);
        }
        if !self.shutdown.is_cancelled() {
            self.release_code(code);
        }
    }

    fn claim_code(&self, id: &SessionId) -> String {
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        loop {
            let code = random_code();
            if !codes.contains_key(&code) {
                codes.insert(code.clone(), id.clone());
                return code;
            }
        }
    }

    fn release_code(&self, code: &str) {
        let mut codes = self.codes.write().unwrap_or_else(|e| e.into_inner());
        codes.remove(code);
    }

    /// Hands a command to a session's actor.
    pub async fn send(&self, session: &str, cmd: Command) -> Result<(), ProtocolError> {
        let tx = {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            sessions.get(session).map(|h| h.tx.clone())
        };
        let Some(tx) = tx else {
            return Err(unknown_session());
        };
        tx.send(cmd).await.map_err(|_| unknown_session())
    }

    /// Sends a command built around a reply channel and waits for the answer.
    pub async fn request<T>(
        &self,
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
