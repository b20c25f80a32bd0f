//! Webhooks a session owes: `session.created`, `session.ended` and what the
//! rules `ctx.emit`, kept in the session's snapshot until delivered.
//!
//! A session numbers its webhooks and stores the undelivered ones in its
//! snapshot ([`Outbox`]), so a restart or a takeover by another node sends
//! what was pending, in order. Once the commit that holds a webhook is
//! durable, the actor hands it to its [`Lane`]: a task that posts the
//! session's webhooks one after the other through a [`HookTransport`] (the
//! node's HTTP client, `crate::webhook`), each to every receiver, retrying
//! with backoff, and records how far it got, which the next commit drops
//! from the outbox. A webhook sent but not yet dropped when the node stops
//! is sent again by the next owner: delivery is at least once, and the
//! webhook's `id` lets a receiver drop repeats. The session never waits on
//! a receiver.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Most webhooks a session keeps waiting, and most bytes of them (the
/// snapshot holds them); past either the oldest is dropped (and logged), so
/// a receiver that is away for good costs bounded memory and storage.
pub(crate) const MAX_PENDING: usize = 1000;
pub(crate) const MAX_PENDING_BYTES: usize = 1 << 20;

/// One webhook: its number in the session and its body, encoded once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Hook {
    pub n: u64,
    /// Unique among all sessions' webhooks (`SESSION.N`): what a receiver
    /// drops repeats by.
    pub id: Arc<str>,
    /// The JSON body every receiver gets.
    pub body: Arc<str>,
}

/// The session's webhooks not yet delivered everywhere, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Outbox {
    /// The number the next webhook gets (from 1).
    pub next: u64,
    pub pending: VecDeque<Hook>,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds a webhook, whose id and body `make` writes for its number; the
    /// oldest one is dropped if too many wait.
    pub(crate) fn push(&mut self, make: impl FnOnce(u64) -> (String, String)) -> Hook {
        self.next = self.next.max(1);
        let (id, body) = make(self.next);
        let hook = Hook {
            n: self.next,
            id: id.into(),
            body: body.into(),
        };
        self.next += 1;
        self.pending.push_back(hook.clone());
        let mut bytes: usize = self.pending.iter().map(|h| h.body.len()).sum();
        while self.pending.len() > 1
            && (self.pending.len() > MAX_PENDING || bytes > MAX_PENDING_BYTES)
            && let Some(old) = self.pending.pop_front()
        {
            bytes -= old.body.len();
            tracing::warn!(webhook = %old.id, "too many webhooks waiting; the oldest is dropped");
        }
        hook
    }

    /// Forgets the webhooks delivered up to `n`.
    pub(crate) fn delivered(&mut self, n: u64) {
        while self.pending.front().is_some_and(|h| h.n <= n) {
            self.pending.pop_front();
        }
    }
}

/// Why a receiver did not take a webhook.
pub(crate) struct Refused {
    pub why: String,
}

/// Where webhooks go: the node's receivers.
pub(crate) trait HookTransport: Send + Sync + 'static {
    /// How many receivers there are.
    fn receivers(&self) -> usize;
    /// Posts `body` to receiver `to`, once.
    fn post<'a>(&'a self, to: usize, hook: &'a Hook) -> BoxFuture<'a, Result<(), Refused>>;
    /// How long a webhook is retried for one receiver before it is given up.
    fn give_up_after(&self) -> Duration;
    /// Counts a webhook given up for a receiver.
    fn given_up(&self);
}

/// A session's delivery task, stopped when the actor drops it.
pub(crate) struct Lane {
    tx: mpsc::UnboundedSender<Hook>,
    /// The highest webhook number delivered to every receiver.
    done: Arc<AtomicU64>,
    _stop: DropGuard,
}

/// The first wait before a retry; it doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Lane {
    /// Starts delivering what it is sent, in order.
    pub(crate) fn start(session: Arc<str>, transport: Arc<dyn HookTransport>) -> Lane {
        let (tx, mut rx) = mpsc::unbounded_channel::<Hook>();
        let done = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let (reached, stopped) = (done.clone(), stop.clone());
        tokio::spawn(async move {
            let deliver = async {
                while let Some(hook) = rx.recv().await {
                    deliver(&session, &*transport, &hook).await;
                    reached.store(hook.n, Ordering::Release);
                }
            };
            tokio::select! {
                () = stopped.cancelled() => {}
                () = deliver => {}
            }
        });
        Lane {
            tx,
            done,
            _stop: stop.drop_guard(),
        }
    }

    /// Queues a webhook whose commit is durable.
    pub(crate) fn send(&self, hook: Hook) {
        let _ = self.tx.send(hook);
    }

    /// The highest webhook number delivered to every receiver (0: none yet).
    pub(crate) fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }
}

/// Posts one webhook to every receiver, each until it takes it or the time
/// to give up has passed.
async fn deliver(session: &str, transport: &dyn HookTransport, hook: &Hook) {
    let tries = (0..transport.receivers()).map(|to| async move {
        let deadline = tokio::time::Instant::now() + transport.give_up_after();
        let mut wait = FIRST_BACKOFF;
        loop {
            match transport.post(to, hook).await {
                Ok(()) => return,
                Err(Refused { why }) if tokio::time::Instant::now() + wait > deadline => {
                    tracing::error!(session, webhook = %hook.id, receiver = to, error = %why, "webhook given up");
                    transport.given_up();
                    return;
                }
                Err(Refused { why }) => {
                    tracing::debug!(session, webhook = %hook.id, receiver = to, error = %why, "webhook refused; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    futures_util::future::join_all(tries).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_keeps_the_newest_within_its_count_and_bytes() {
        let mut outbox = Outbox::default();
        for _ in 0..MAX_PENDING + 5 {
            outbox.push(|n| (format!("s.{n}"), "{}".into()));
        }
        assert_eq!(outbox.pending.len(), MAX_PENDING);
        assert_eq!(outbox.pending.front().map(|h| h.n), Some(6));
        let big = "x".repeat(MAX_PENDING_BYTES / 3);
        for _ in 0..4 {
            outbox.push(|n| (format!("s.{n}"), big.clone()));
        }
        let bytes: usize = outbox.pending.iter().map(|h| h.body.len()).sum();
        assert!(bytes <= MAX_PENDING_BYTES, "{bytes}");
        assert_eq!(
            outbox.pending.back().map(|h| h.n),
            Some(MAX_PENDING as u64 + 9)
        );
        outbox.delivered(MAX_PENDING as u64 + 8);
        assert_eq!(outbox.pending.len(), 1);
        // One webhook larger than the bound is still kept: the newest is never dropped.
        let mut one = Outbox::default();
        one.push(|n| (format!("s.{n}"), "y".repeat(MAX_PENDING_BYTES + 1)));
        assert_eq!(one.pending.len(), 1);
    }
}
