//! Forwarding: a request for a session owned by another node is published
//! on that node's channel, and its answer comes back on this node's.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::oneshot;

use super::{RedisCluster, key};
use crate::cluster::moving;
use crate::cluster::wire::{Forward, Response};
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::{Outcome, Reply, Request};

/// How long a forwarded request waits for the owner's answer before checking
/// that the owner is still alive; a live owner is waited for up to
/// `FORWARD_GIVE_UP`.
const FORWARD_CHECK: Duration = Duration::from_secs(5);
const FORWARD_GIVE_UP: Duration = Duration::from_secs(60);

impl RedisCluster {
    /// Publishes a request to the node `owner`. Returns once Redis has it,
    /// so requests published one after another reach the owner in that
    /// order; `reply` gets the answer when it comes back.
    pub(super) async fn forward(
        &self,
        owner: &str,
        session: &str,
        request: Request,
        reply: Reply,
    ) -> Result<(), ProtocolError> {
        // Nobody waits for a notice (`leave`, a socket gone): no id, no answer.
        let wants_answer = !matches!(reply, Reply::None);
        let id = if wants_answer {
            self.next_request.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let rx = wants_answer.then(|| {
            let (tx, rx) = oneshot::channel();
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, tx);
            rx
        });
        let forward = Forward {
            id,
            from: self.node_id.clone(),
            session: session.to_owned(),
            request,
        };
        let payload = serde_json::to_vec(&forward).unwrap_or_default();
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
        let Some(rx) = rx else {
            return Ok(());
        };
        let Some(background) = self.background.get() else {
            return Ok(());
        };
        let me = match self.myself() {
            Some(me) => me,
            None => return Ok(()),
        };
        let (owner, session) = (owner.to_owned(), session.to_owned());
        let shutdown = background.shutdown.clone();
        background.tasks.spawn(async move {
            tokio::select! {
                outcome = me.wait_answer(&owner, &session, id, rx) => reply.send(outcome),
                _ = shutdown.cancelled() => {}
            }
        });
        Ok(())
    }

    /// Waits for a forwarded request's answer: for as long as the owner is
    /// alive (a busy owner answers late, not never), up to `FORWARD_GIVE_UP`.
    async fn wait_answer(
        &self,
        owner: &str,
        session: &str,
        id: u64,
        mut rx: oneshot::Receiver<Outcome>,
    ) -> Outcome {
        let give_up = tokio::time::Instant::now() + FORWARD_GIVE_UP;
        let outcome = loop {
            match tokio::time::timeout(FORWARD_CHECK, &mut rx).await {
                Ok(Ok(outcome)) => break outcome,
                Ok(Err(_)) => break Err(moving()),
                Err(_) if tokio::time::Instant::now() < give_up && self.is_alive(owner).await => {}
                Err(_) => {
                    self.forget(id);
                    break Err(moving());
                }
            }
        };
        if let Err(e) = &outcome
            && matches!(e.code, ErrorCode::Unavailable | ErrorCode::UnknownSession)
        {
            self.forget_owner(session);
        }
        outcome
    }

    fn forget(&self, id: u64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Publishes the answer to a request another node forwarded here.
    pub(super) async fn answer(&self, to: &str, reply_to: u64, outcome: Outcome) {
        let payload = serde_json::to_vec(&Response { reply_to, outcome }).unwrap_or_default();
        let mut con = self.con();
        let _: Result<i64, _> = con.publish(key("n", to), payload).await;
    }
}
