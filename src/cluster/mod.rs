//! The cluster bus: how a session's committed messages become durable and
//! reach every node that has members of that session.
//!
//! [`Bus`] has two implementations. [`LocalBus`] (one process, no Redis) makes
//! a batch durable in the node's sled store and delivers it to this node's
//! [`Fanout`]. `redis::RedisBus` also writes it to Redis (the cluster's
//! source of truth for failover) and publishes it to the other nodes. The
//! session actor only ever sees `Arc<dyn Bus>`.
//!
//! Architecture Invariant: `cluster` never calls Lua and never changes session
//! state; it moves and stores bytes the session actor produced.

pub mod redis;
pub mod wire;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::metrics::Metrics;
use crate::session::{CommitError, CommitSink, SessionId};
use crate::delivery::Fanout;
use crate::session::record::SessionWrite;
use crate::store::Store;

/// A session's commits (to the subscribers of every node), and what else
/// the node does with the session's stored copy.
pub trait Bus: CommitSink {

    /// Forgets a session that ended or expired.
    fn remove<'a>(&'a self, session: &'a str, code: &'a str) -> BoxFuture<'a, ()>;

    /// Gives up ownership on shutdown so another node can take over at once.
    fn release<'a>(&'a self, _session: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// One node, no Redis: sled for durability, local delivery.
pub struct LocalBus {
    store: Store,
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
}

impl LocalBus {
    pub fn new(store: Store, fanout: Arc<Fanout>, metrics: Arc<Metrics>) -> Self {
        LocalBus {
            store,
            fanout,
            metrics,
        }
    }
}

/// Delivers a committed batch to this node's sockets.
pub fn deliver_locally(
    fanout: &Fanout,
    metrics: &Metrics,
    session: &SessionId,
    write: &SessionWrite<'_>,
) {
    if write.messages.is_empty() {
        return;
    }
    let n = fanout.deliver(session, write.messages);
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
            deliver_locally(&self.fanout, &self.metrics, write.session, &write);
            result.map_err(|e| CommitError::Failed(e.to_string()))
        })
    }
}

impl Bus for LocalBus {
    fn remove<'a>(&'a self, session: &'a str, _code: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.store.delete(session).await {
                tracing::error!(session, error = %e, "could not delete a session");
            }
        })
    }
}
