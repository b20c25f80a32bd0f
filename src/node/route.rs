//! Routing: the one place a request finds its session — this node's actor,
//! or the owner's through the cluster — and where what the cluster hears
//! from other nodes ([`Inbound`]) is acted on.
//!
//! A forwarded request is put in its session's own forwarded queue without
//! waiting (a full queue refuses it with `overloaded`), so one busy session
//! never holds up another's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::Node;
use crate::cluster::{Claim, Inbound, moving};
use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::{Control, Envelope, Outcome, Reply, Request, SessionId, unknown_session};

/// How long a request waits for a session's answer before giving up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a busy session's caller is asked to wait before trying again.
const BUSY_RETRY: Duration = Duration::from_secs(1);
/// Between attempts to check which sessions are still this node's.
const RECHECK_EVERY: Duration = Duration::from_millis(500);

impl Node {
    /// Sends a request and waits for the session's answer.
    pub(crate) async fn request(self: &Arc<Self>, session: &str, request: Request) -> Outcome {
        let (reply, rx) = Reply::local();
        self.send(session, request, reply).await?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(unknown_session()),
            Err(_) => Err(ProtocolError::new(
                ErrorCode::Unavailable,
                "the session did not answer in time; try again",
            )),
        }
    }

    /// Sends a request that needs no answer (`leave`, a socket gone).
    pub(crate) async fn notify(self: &Arc<Self>, session: &str, request: Request) {
        let _ = self.send(session, request, Reply::None).await;
    }

    /// Hands a request to a session's actor, on this node or its owner's;
    /// `reply` gets the answer. An error means it was not handed over (and
    /// `reply` gets nothing).
    pub(crate) async fn send(
        self: &Arc<Self>,
        session: &str,
        request: Request,
        reply: Reply,
    ) -> Result<(), ProtocolError> {
        let (request, reply) = match self.send_local(session, request, reply).await {
            Ok(()) => return Ok(()),
            Err(back) => back,
        };
        let owner = match self.cluster.owner(session, true).await? {
            Some(owner) if owner != self.node_id => owner,
            _ => {
                // Nobody (alive) owns it: take it over and serve it here.
                if self.take_over(session).await {
                    return self
                        .send_local(session, request, reply)
                        .await
                        .map_err(|_| unknown_session());
                }
                match self.cluster.owner(session, false).await? {
                    Some(owner) if owner != self.node_id => owner,
                    _ if self.cluster.settling() => {
                        return Err(ProtocolError::new(
                            ErrorCode::Unavailable,
                            "the game servers are reconnecting; try again in a moment",
                        ));
                    }
                    _ => return Err(unknown_session()),
                }
            }
        };
        // Published before returning, so a connection's requests reach the
        // owner in the order it sent them.
        self.cluster.forward(&owner, session, request, reply).await
    }

    /// Puts a request in the mailbox of a session owned here (waiting while
    /// it is full); gives it back if there is no such session.
    async fn send_local(
        &self,
        session: &str,
        request: Request,
        reply: Reply,
    ) -> Result<(), (Request, Reply)> {
        let Some(tx) = self.mailbox_of(session) else {
            return Err((request, reply));
        };
        tx.send_request(request, reply).await
    }

    /// Tells a session owned here something from the node itself.
    pub(super) async fn control(&self, session: &str, control: Control) {
        if let Some(tx) = self.mailbox_of(session) {
            let _ = tx.send(Envelope::Control(control)).await;
        }
    }

    fn mailbox_of(&self, session: &str) -> Option<crate::session::MailboxSender> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.get(session).map(|h| h.tx.clone())
    }

    /// Acts on what the cluster heard from other nodes, one event at a time.
    /// Never waits on a session: what takes time runs on tasks of its own.
    pub(crate) async fn listen(self: Arc<Self>, mut inbound: mpsc::Receiver<Inbound>) {
        loop {
            let event = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                event = inbound.recv() => match event { Some(e) => e, None => return },
            };
            self.on_inbound(event);
        }
    }

    fn on_inbound(self: &Arc<Self>, event: Inbound) {
        match event {
            Inbound::Request {
                session,
                request,
                reply,
            } => self.serve_forwarded(session, request, reply),
            Inbound::Moved(session) => {
                let members = self.fanout.members(&session);
                if members.is_empty() {
                    return;
                }
                let node = self.clone();
                self.tasks.spawn(async move {
                    for member in members {
                        node.notify(&session, Request::Reattach { member }).await;
                    }
                });
            }
            Inbound::LinkLost(followed) => {
                for session in followed {
                    if !self.owns(&session) {
                        self.fanout.close_session(
                            &session,
                            1012,
                            "reconnecting to the game server",
                        );
                    }
                }
            }
            Inbound::Lapsed => {
                self.tasks.spawn(self.clone().check_owned());
            }
            Inbound::Orphaned(session) => {
                if self.owns(&session) {
                    return;
                }
                let fresh = self
                    .adopting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(session.clone());
                if fresh {
                    let node = self.clone();
                    self.tasks.spawn(async move {
                        node.take_over(&session).await;
                        node.adopting
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&session);
                    });
                }
            }
        }
    }

    /// Puts a request another node forwarded in its session's forwarded
    /// queue, at once. A session not owned here is taken over first if its
    /// owner is gone (on a task of its own).
    fn serve_forwarded(self: &Arc<Self>, session: SessionId, request: Request, reply: Reply) {
        if let Some(tx) = self.mailbox_of(&session) {
            forward_into(&tx, &self.metrics, request, reply);
            return;
        }
        let node = self.clone();
        self.tasks.spawn(async move {
            let orphan = matches!(node.cluster.owner(&session, false).await, Ok(None));
            match node.mailbox_of(&session) {
                Some(tx) => forward_into(&tx, &node.metrics, request, reply),
                None if orphan && node.take_over(&session).await => match node.mailbox_of(&session)
                {
                    Some(tx) => forward_into(&tx, &node.metrics, request, reply),
                    None => reply.send(Err(unknown_session())),
                },
                None => reply.send(Err(moving())),
            }
        });
    }

    /// Takes over a session whose owner is gone: claims it (only if its
    /// owner's heartbeat is gone), restores it from the cluster's copy and
    /// tells every node. Returns whether it is owned here now.
    pub(super) async fn take_over(self: &Arc<Self>, session: &str) -> bool {
        let _guard = self.takeover.lock().await;
        if self.owns(session) {
            return true;
        }
        // Claimed first, then read: the last owner's commits all landed
        // before the claim, and none can land after it.
        if !matches!(self.cluster.claim(session, Claim::Adopt).await, Ok(true)) {
            return false;
        }
        let stored = match self.cluster.load(session).await {
            Ok(Some(s)) => s,
            _ => {
                self.cluster.release(session).await;
                return false;
            }
        };
        let Some(rules) = self.catalog.get(&stored.snapshot.game) else {
            tracing::error!(session, game = %stored.snapshot.game, "cannot take over: the game is not loaded here");
            self.cluster.release(session).await;
            return false;
        };
        match self.restore(stored, rules).await {
            Ok(mut actor) => {
                tracing::info!(session, node = %self.node_id, "took the session over");
                // This node's local copy has none of the session yet: the
                // first commit writes all of it (a commit writes only what
                // changed, and a restart here may have only that copy).
                actor.request_resync();
                self.adopt(actor);
                for member in self.fanout.members(session) {
                    let _ = self
                        .send_local(session, Request::Reattach { member }, Reply::None)
                        .await;
                }
                self.cluster.announce_takeover(session).await;
                true
            }
            Err(e) => {
                tracing::error!(session, "cannot take over: {e}");
                self.cluster.release(session).await;
                false
            }
        }
    }

    /// After a lapse of the heartbeat (the cluster was away or restarted, or
    /// this node was cut off): sessions another node took meanwhile are given
    /// up, sessions the cluster lost are written back in full.
    async fn check_owned(self: Arc<Self>) {
        let owned = self.owned_sessions();
        if owned.is_empty() {
            return;
        }
        let owners = loop {
            match self.cluster.owners(&owned).await {
                Ok(owners) => break owners,
                Err(_) => tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RECHECK_EVERY) => {}
                },
            }
        };
        for (session, owner) in owned.iter().zip(owners) {
            match owner {
                Some(o) if o == self.node_id => {}
                None => {
                    tracing::info!(session = %session, "the cluster lost this session; writing it back");
                    self.control(session, Control::Resync).await;
                }
                Some(_) => {
                    tracing::warn!(session = %session, "another node owns this session now; stopping here");
                    self.control(session, Control::Relinquish).await;
                }
            }
        }
    }
}

/// Queues a forwarded request without waiting; a full queue refuses it.
fn forward_into(
    tx: &crate::session::MailboxSender,
    metrics: &Metrics,
    request: Request,
    reply: Reply,
) {
    match tx.try_forward(request, reply) {
        Ok(()) => {}
        Err(TrySendError::Full(reply)) => {
            Metrics::inc(&metrics.busy_refusals_total);
            reply.send(Err(ProtocolError::new(
                ErrorCode::Overloaded,
                "this game is too busy to take more right now; try again in a moment",
            )
            .retry_after(BUSY_RETRY)));
        }
        Err(TrySendError::Closed(reply)) => reply.send(Err(unknown_session())),
    }
}
