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

use super::Outgoing;
use super::names::NameFilter;
use super::record::SessionWrite;
use crate::metrics::Metrics;
use crate::script::{Catalog, Limits};

/// Why a commit did not fully succeed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommitError {
    /// Another node owns the session now: this actor must stop at once.
    #[error("this node no longer owns the session")]
    NotOwner,
    /// The batch is durable in one store, another copy now lags (a cluster
    /// node whose Redis is away wrote it to its local store): the next
    /// commit rewrites that copy in full.
    #[error("a copy lags: {0}")]
    Lagging(String),
    /// No store took the batch (the data folder cannot be written, and in
    /// a cluster Redis is away too). The session goes on in memory, in the
    /// degraded mode docs/operations.md describes, and rewrites everything at
    /// its next commit.
    #[error("not durable: {0}")]
    NotDurable(String),
}

/// Where a session's commits go.
pub(crate) trait CommitSink: Send + Sync + 'static {
    /// Makes one batch of a session durable, then delivers its messages, in
    /// order, to every subscriber. Nothing of the batch may be acknowledged
    /// before this returns `Ok`.
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>>;
}

/// The time a session lives by: `ctx.now()`, timers, expiry.
pub(crate) trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        super::now_ms()
    }
}

/// A clock that follows tokio's: in a test whose runtime starts paused,
/// it stands still until the test advances time (`tokio::time::advance`),
/// and then timers due meanwhile fire at once, without waiting.
pub(crate) struct TokioClock {
    start_ms: i64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start_ms` now.
    pub(crate) fn starting_at(start_ms: i64) -> TokioClock {
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
pub(crate) struct Settings {
    /// The script sandbox's limits.
    pub script: Limits,
    /// Messages kept for resumes (`--replay-window`).
    pub replay_window: usize,
    /// Least time between two view passes (`--view-interval-ms`).
    pub view_interval: Duration,
    /// Under load, least time between two commits (`actor::COMMIT_GAP` on a
    /// node; none in a headless session, whose clock only moves when told).
    pub commit_gap: Duration,
    /// How long an ended session stays (`--ended-ttl-min`).
    pub ended_ttl: Duration,
    /// How long a session nobody is connected to stays (`--idle-ttl-h`).
    pub idle_ttl: Duration,
    /// Bytes of a session's recording kept in full (`--recording-kib`);
    /// 0: sessions are not recorded.
    pub recording_bytes: usize,
    /// Names students may not use (`--blocked-names`).
    pub blocked_names: Arc<NameFilter>,
    /// `recess test` and `recess sim`: every view pass also runs `view` for
    /// the members no `ctx.redraw` named and fails when one of them changed,
    /// and every handler call fails when it leaves one table in two places
    /// of the state (see `GameVm::check_shared_tables`), so a test catches
    /// what a node would get wrong only later or silently.
    pub check_game: bool,
    /// Make webhooks even without a transport: a tool's sink keeps them
    /// for the test to read (`s:emitted`).
    pub keep_hooks: bool,
}

impl Settings {
    /// A session run by a tool in one process (`headless`, `recess replay`):
    /// every turn of its loop makes its view pass and its commit, since its
    /// clock moves only when the tool says so.
    pub(crate) fn offline(script: Limits, recording_bytes: usize) -> Settings {
        Settings {
            script,
            replay_window: 1000,
            view_interval: Duration::ZERO,
            commit_gap: Duration::ZERO,
            ended_ttl: Duration::from_secs(3600),
            idle_ttl: Duration::from_secs(24 * 3600),
            recording_bytes,
            blocked_names: Arc::default(),
            check_game: false,
            keep_hooks: true,
        }
    }
}

/// Everything a session reaches outside itself; one per node, shared by its
/// sessions.
pub(crate) struct SessionEnv {
    /// The name reported as the session's owner.
    pub node_id: Arc<str>,
    pub sink: Arc<dyn CommitSink>,
    pub catalog: Arc<Catalog>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    /// How far behind the sessions' threads are (stretches view intervals).
    pub pressure: Arc<super::pressure::Pressure>,
    /// Where webhooks go; `None` when the node has no `--webhook`.
    pub hooks: Option<Arc<dyn super::hooks::HookTransport>>,
    pub settings: Settings,
}

/// What a [`MemorySink`] kept of one commit.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "only the actor's unit tests read more than the messages"
    )
)]
pub(crate) struct Committed {
    /// The batch's messages, in order (sequenced and notices).
    pub messages: Vec<Outgoing>,
    /// Whether the batch rewrote the snapshot.
    pub snapshot: bool,
    /// Whether the batch was a full rewrite.
    pub full: bool,
    /// Members whose record or view was written.
    pub members: Vec<String>,
    /// Members removed.
    pub removed: Vec<String>,
    /// State fields written, and removed.
    pub fields: Vec<String>,
    pub removed_fields: Vec<String>,
    /// Whether the report was written.
    pub report: bool,
    /// The webhooks the batch made.
    pub hooks: Vec<super::hooks::Hook>,
    /// When (by the clock tokio keeps) the commit was made.
    pub at: tokio::time::Instant,
}

/// A sink that keeps every commit in memory: a session with no store, for
/// tests and tools that run one in a single process. It can be told to
/// fail, as a store or a cluster can.
#[derive(Default)]
pub(crate) struct MemorySink {
    commits: std::sync::Mutex<Vec<Committed>>,
    failing: std::sync::atomic::AtomicBool,
    failed: std::sync::atomic::AtomicUsize,
}

impl MemorySink {
    /// Every commit so far, in order.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> Vec<Committed> {
        self.commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every message committed from the `from`-th on, in order (a reader
    /// keeps its place with the count it has read).
    pub(crate) fn messages_from(&self, from: usize) -> Vec<Outgoing> {
        let commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        commits
            .iter()
            .flat_map(|c| c.messages.iter())
            .skip(from)
            .cloned()
            .collect()
    }

    /// The bodies of every webhook committed so far, in order.
    pub(crate) fn hooks(&self) -> Vec<std::sync::Arc<str>> {
        let commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
        commits
            .iter()
            .flat_map(|c| c.hooks.iter().map(|h| h.body.clone()))
            .collect()
    }

    /// Every message frame committed so far, in order.
    #[cfg(test)]
    pub(crate) fn frames(&self) -> Vec<(u64, String)> {
        self.messages_from(0)
            .into_iter()
            .map(|m| (m.seq, m.frame.to_string()))
            .collect()
    }

    /// How many commits failed (while told to fail).
    #[cfg(test)]
    pub(crate) fn failures(&self) -> usize {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From now on, commits fail (`true`) or succeed again (`false`).
    #[cfg(test)]
    pub(crate) fn fail(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
    }
}

impl CommitSink for MemorySink {
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        let result = if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(CommitError::NotDurable(
                "the memory sink was told to fail".into(),
            ))
        } else {
            self.commits
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Committed {
                    messages: write.messages.to_vec(),
                    snapshot: write.snapshot.is_some(),
                    full: write.full,
                    members: write.members.iter().map(|m| m.id.to_owned()).collect(),
                    removed: write
                        .removed_members
                        .iter()
                        .map(|m| (*m).to_owned())
                        .collect(),
                    fields: write.fields.iter().map(|(n, _)| n.to_string()).collect(),
                    removed_fields: write.removed_fields.clone(),
                    report: write.report.is_some(),
                    hooks: write.hooks.to_vec(),
                    at: tokio::time::Instant::now(),
                });
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }
}
