//! The cluster bus: how a session owner's messages reach every node that has
//! members of that session.
//!
//! [`Bus`] has one implementation per deployment: [`LocalBus`] (the embedded
//! default, one process, no Redis) delivers straight to this node's
//! [`Fanout`]. The session actor only ever sees `Arc<dyn Bus>`.
//!
//! Architecture Invariant: `cluster` never calls Lua and never changes session
//! state; it moves already-encoded messages.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::session::fanout::Fanout;
use crate::session::{Outgoing, SessionId};

pub trait Bus: Send + Sync + 'static {
    /// Delivers one committed batch of a session's messages, in order, to the
    /// subscribers of every node.
    fn publish(&self, session: &SessionId, messages: &[Outgoing]);
}

/// One node, no Redis: publishing is local delivery.
pub struct LocalBus {
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
}

impl LocalBus {
    pub fn new(fanout: Arc<Fanout>, metrics: Arc<Metrics>) -> Self {
        LocalBus { fanout, metrics }
    }
}

impl Bus for LocalBus {
    fn publish(&self, session: &SessionId, messages: &[Outgoing]) {
        let n = self.fanout.deliver(session, messages);
        Metrics::add(&self.metrics.deliveries_total, n as u64);
    }
}
