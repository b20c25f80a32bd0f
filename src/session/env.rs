//! What a session is given: everything it reaches outside itself.
//!
//! A [`SessionActor`](super::SessionActor) knows no node, socket, store or
//! cluster. Its spawner hands it a [`SessionEnv`]: where commits go
//! ([`CommitSink`]), the game catalog, a [`Clock`], the metrics and the
//! [`Settings`]. The server gives it sled or Redis behind the sink and the
//! system clock; a unit test gives it an in-memory sink and a clock that
//! moves when the test says so, and runs the same actor code.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::record::SessionWrite;
use crate::metrics::Metrics;
use crate::script::{Catalog, Limits};

/// Why a commit did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Another node owns the session now: this actor must stop at once.
    #[error("this node no longer owns the session")]
    NotOwner,
    #[error("{0}")]
    Failed(String),
}

/// Where a session's commits go.
pub trait CommitSink: Send + Sync + 'static {
    /// Makes one batch of a session durable, then delivers its messages, in
    /// order, to every subscriber. Nothing of the batch may be acknowledged
    /// before this returns `Ok`.
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>>;
}

/// The time a session lives by: `ctx.now()`, timers, expiry.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        super::now_ms()
    }
}

/// A clock that follows tokio's: in a test whose runtime starts paused,
/// it stands still until the test advances time (`tokio::time::advance`),
/// and then timers due meanwhile fire at once, without waiting.
pub struct TokioClock {
    start_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start_ms` now.
    pub fn starting_at(start_ms: i64) -> TokioClock {
        TokioClock {
            start_ms,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> i64 {
        self.start_ms + self.start.elapsed().as_millis() as i64
    }
}

/// A session's settings (from the node's flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The script sandbox's limits.
    pub script: Limits,
    /// Messages kept for resumes (`--replay-window`).
    pub replay_window: usize,
    /// Least time between two view passes (`--view-interval-ms`).
    pub view_interval: Duration,
    /// How long an ended session stays (`--ended-ttl-min`).
    pub ended_ttl: Duration,
    /// How long a session nobody is connected to stays (`--idle-ttl-h`).
    pub idle_ttl: Duration,
}

/// Everything a session reaches outside itself; one per node, shared by its
/// sessions.
pub struct SessionEnv {
    /// The name reported as the session's owner.
    pub node_id: Arc<str>,
    pub sink: Arc<dyn CommitSink>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
}
