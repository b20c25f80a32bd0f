//! What differs between one node alone and a node in a cluster.
//!
//! [`Cluster`] is everything a node asks of the others: join codes, who owns
//! a session, following a session's channel, forwarding a request to its
//! owner, reading a session back for a takeover. [`LocalCluster`] is a node
//! alone (there is nobody else to ask); `redis::RedisCluster` is the Redis
//! cluster. What the cluster hears from other nodes reaches the node as
//! [`Inbound`] events on a bounded channel, so the cluster never calls into
//! the node.
//!
//! A session's commits go to a [`CommitSink`]: [`LocalBus`] (the node's sled
//! store, then this node's [`Fanout`]) or `redis::RedisBus` (Redis, which
//! also publishes the batch to the other nodes, then the same).
//!
//! Architecture Invariant: `cluster` never calls Lua and never changes session
//! state; it moves and stores bytes the session actor produced.

pub(crate) mod redis;
pub(crate) mod wire;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::delivery::Fanout;
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::record::{SessionWrite, StoredSession};
use crate::session::{CommitError, CommitSink, Reply, Request, SessionId, unknown_session};
use crate::store::Store;

/// How a node claims a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A new session: only if nobody owns the id.
    Create,
    /// A session from this node's own store, at start-up: unless a live
    /// node owns it.
    Restore,
    /// A takeover of a session whose owner is gone (the cluster must hold it).
    Adopt,
}

/// What the cluster tells its node.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Another node forwarded a request for a session it believes this node
    /// owns; `reply` sends the answer back to it.
    Request {
        session: SessionId,
        request: Request,
        reply: Reply,
    },
    /// A session has a new owner: this node's seats in it tell it they are here.
    Moved(SessionId),
    /// Messages published while the link to the cluster was down are lost to
    /// this node: sockets following sessions owned elsewhere should resume.
    LinkLost(Vec<SessionId>),
    /// This node's heartbeat had lapsed: another node may have taken some of
    /// its sessions, and the cluster may have lost others.
    Lapsed,
    /// A session whose owner is gone (dead, or it gave the session up).
    Orphaned(SessionId),
}

/// Events a cluster may hold for its node before it waits.
pub(crate) const INBOUND_QUEUE: usize = 4096;

/// A node's view of the other nodes.
pub(crate) trait Cluster: Send + Sync + 'static {
    /// This process's name in the cluster (reported as a session's owner).
    fn node_id(&self) -> &str;

    /// Claims `code` for `session` if no live session has it.
    fn claim_code<'a>(
        &'a self,
        code: &'a str,
        session: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProtocolError>>;
    /// The session a join code belongs to on another node.
    fn lookup_code<'a>(
        &'a self,
        code: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionId>, ProtocolError>>;
    /// Frees `code` if it still belongs to `session`.
    fn release_code<'a>(&'a self, code: &'a str, session: &'a str) -> BoxFuture<'a, ()>;

    /// Makes this node the owner of `session`; whether it is ours now.
    fn claim<'a>(
        &'a self,
        session: &'a str,
        how: Claim,
    ) -> BoxFuture<'a, Result<bool, ProtocolError>>;
    /// Gives a session up (shutdown, or a takeover that failed here) for
    /// another node to adopt.
    fn release<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()>;
    /// Forgets a session that ended or expired, and its code.
    fn forget<'a>(&'a self, session: &'a str, code: &'a str) -> BoxFuture<'a, ()>;
    /// The live node that owns `session`, if any; with `cached`, as last seen.
    fn owner<'a>(
        &'a self,
        session: &'a str,
        cached: bool,
    ) -> BoxFuture<'a, Result<Option<String>, ProtocolError>>;
    /// The recorded owner of each session (alive or not), in order.
    fn owners<'a>(
        &'a self,
        sessions: &'a [SessionId],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, ProtocolError>>;
    /// Whether the cluster keeps its own copy of every session (which a
    /// session restored from the local store must rewrite in full).
    fn holds_copies(&self) -> bool;
    /// Whether the cluster is (or was just) unreachable, so that a session
    /// missing from it may still be written back by its owner.
    fn settling(&self) -> bool;
    /// Reads a session as its owner last committed it.
    fn load<'a>(
        &'a self,
        session: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSession>, ProtocolError>>;
    /// Tells every node that this node owns `session` now.
    fn announce_takeover<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()>;

    /// Makes sure this node receives `session`'s messages; returns once
    /// nothing published after can be missed. Counted: one `unfollow` each.
    fn follow<'a>(&'a self, session: &'a SessionId) -> BoxFuture<'a, Result<(), ProtocolError>>;
    fn unfollow<'a>(&'a self, session: &'a str) -> BoxFuture<'a, ()>;

    /// Sends `request` to the node `owner`; returns once it is on its way,
    /// so requests sent one after another arrive in that order. `reply`
    /// gets the owner's answer (or why there is none).
    fn forward<'a>(
        &'a self,
        owner: &'a str,
        session: &'a str,
        request: Request,
        reply: Reply,
    ) -> BoxFuture<'a, Result<(), ProtocolError>>;

    /// Leaves the cluster (graceful shutdown, after every session was given up).
    fn leave(&self) -> BoxFuture<'_, ()>;
}

/// A request could not reach its session's owner: the session is changing
/// hands, or the owner does not answer.
pub(crate) fn moving() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Unavailable,
        "this game is moving to another server; try again in a moment",
    )
}

/// A node alone: nobody else owns a session, holds a code or can be asked.
pub(crate) struct LocalCluster {
    node_id: String,
}

impl LocalCluster {
    pub(crate) fn new(node_id: String) -> LocalCluster {
        LocalCluster { node_id }
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl Cluster for LocalCluster {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn claim_code<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool, ProtocolError>> {
        ready(Ok(true))
    }

    fn lookup_code<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionId>, ProtocolError>> {
        ready(Ok(None))
    }

    fn release_code<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, ()> {
        ready(())
    }

    fn claim<'a>(&'a self, _: &'a str, how: Claim) -> BoxFuture<'a, Result<bool, ProtocolError>> {
        // Nothing is held elsewhere to be adopted.
        ready(Ok(how != Claim::Adopt))
    }

    fn release<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        ready(())
    }

    fn forget<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, ()> {
        ready(())
    }

    fn owner<'a>(
        &'a self,
        _: &'a str,
        _: bool,
    ) -> BoxFuture<'a, Result<Option<String>, ProtocolError>> {
        ready(Ok(None))
    }

    fn owners<'a>(
        &'a self,
        sessions: &'a [SessionId],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, ProtocolError>> {
        ready(Ok(vec![Some(self.node_id.clone()); sessions.len()]))
    }

    fn holds_copies(&self) -> bool {
        false
    }

    fn settling(&self) -> bool {
        false
    }

    fn load<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<StoredSession>, ProtocolError>> {
        ready(Ok(None))
    }

    fn announce_takeover<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        ready(())
    }

    fn follow<'a>(&'a self, _: &'a SessionId) -> BoxFuture<'a, Result<(), ProtocolError>> {
        ready(Ok(()))
    }

    fn unfollow<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ()> {
        ready(())
    }

    fn forward<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Request,
        _: Reply,
    ) -> BoxFuture<'a, Result<(), ProtocolError>> {
        ready(Err(unknown_session()))
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        ready(())
    }
}

/// One node, no Redis: sled for durability, local delivery.
pub(crate) struct LocalBus {
    store: Store,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
}

impl LocalBus {
    pub(crate) fn new(store: Store, fanout: Arc<Fanout>, metrics: Arc<Metrics>) -> Self {
        LocalBus {
            store,
            fanout,
            metrics,
        }
    }
}

/// Delivers a committed batch to this node's sockets.
pub(crate) fn deliver_locally(fanout: &Fanout, metrics: &Metrics, write: &SessionWrite<'_>) {
    if write.messages.is_empty() {
        return;
    }
    let n = fanout.deliver(write.session, write.messages);
    Metrics::add(&metrics.deliveries_total, n as u64);
}

impl CommitSink for LocalBus {
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(async move {
            let result = self.store.commit(&write).await;
            match &result {
                Ok(()) => Metrics::inc(&self.metrics.snapshot_writes_total),
                Err(e) => {
                    Metrics::inc(&self.metrics.snapshot_errors_total);
                    tracing::error!(session = %write.id, error = %e, "snapshot write failed");
                }
            }
            deliver_locally(&self.fanout, &self.metrics, &write);
            result.map_err(|e| CommitError::NotDurable(e.to_string()))
        })
    }
}
