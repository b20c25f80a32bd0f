//! Pub/sub: following the channels of sessions this node has seats in, and
//! the dispatcher of everything Redis pushes (session batches, requests
//! from other nodes and their answers, takeover notices).
//!
//! The dispatcher never waits on a session: batches go to the fanout (which
//! does not block), answers to the requests waiting for them, and requests
//! and notices to the node as `Inbound` events, which the node hands to each
//! session's own queue. So one session whose mailbox is full delays only
//! itself.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use redis::PushKind;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{RedisCluster, TAKEOVER, key};
use crate::cluster::Inbound;
use crate::cluster::wire::{NodeMessage, decode_batch};
use crate::metrics::Metrics;
use crate::protocol::ProtocolError;
use crate::session::{Reply, SessionId};

impl RedisCluster {
    /// Makes sure this node receives `session`'s messages; returns once Redis
    /// confirmed the subscription, so nothing published after can be missed.
    pub(super) async fn follow(&self, session: &SessionId) -> Result<(), ProtocolError> {
        let first = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            let n = followed.entry(session.clone()).or_insert(0);
            *n += 1;
            *n == 1
        };
        if first {
            let mut sub = self.sub.lock().await;
            if let Err(e) = sub.subscribe(key("s", session)).await {
                drop(sub);
                self.unfollow(session).await;
                return Err(self.unavailable(e));
            }
        }
        Ok(())
    }

    pub(super) async fn unfollow(&self, session: &str) {
        let last = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            match followed.get_mut(session) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    followed.remove(session);
                    true
                }
                None => false,
            }
        };
        if last {
            let mut sub = self.sub.lock().await;
            let _ = sub.unsubscribe(key("s", session)).await;
        }
    }

    /// A managed connection reconnects only when it is used: ping the
    /// subscription connection so that after a Redis restart it reconnects
    /// and resubscribes by itself.
    pub(super) async fn keep_subscribed(&self) {
        let mut sub = self.sub.lock().await.clone();
        let ok: Result<String, _> = redis::cmd("PING").query_async(&mut sub).await;
        if ok.is_err() {
            self.mark(false);
        }
    }

    /// Handles each push in the order Redis sent it.
    pub(super) async fn dispatch(
        self: Arc<Self>,
        mut pushes: mpsc::Receiver<redis::PushInfo>,
        shutdown: CancellationToken,
    ) {
        let session_prefix = "recess:s:";
        let own_channel = key("n", &self.node_id);
        loop {
            let push = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = pushes.recv() => match p { Some(p) => p, None => return },
            };
            if self.pushes_lost.swap(false, Ordering::Relaxed) {
                Metrics::inc(&self.metrics.pushes_lost_total);
                tracing::warn!("pushes from Redis were lost (the dispatcher fell behind)");
                self.on_link_lost().await;
            }
            match push.kind {
                PushKind::Message => {
                    let (Some(channel), Some(payload)) = (push.data.first(), push.data.get(1))
                    else {
                        continue;
                    };
                    let (Some(channel), Some(payload)) = (bytes_of(channel), bytes_of(payload))
                    else {
                        continue;
                    };
                    let channel = String::from_utf8_lossy(channel);
                    if let Some(session) = channel.strip_prefix(session_prefix) {
                        self.on_batch(session, payload);
                    } else if channel == own_channel {
                        self.on_node_message(payload).await;
                    } else if channel == TAKEOVER {
                        let session = String::from_utf8_lossy(payload);
                        self.forget_owner(&session);
                        self.tell(Inbound::Moved(session.as_ref().into())).await;
                    }
                }
                PushKind::Disconnection => {
                    self.mark(false);
                    self.on_link_lost().await;
                }
                _ => {}
            }
        }
    }

    fn on_batch(&self, session: &str, payload: &[u8]) {
        let Some((origin, messages)) = decode_batch(payload) else {
            tracing::warn!(session, "malformed message batch from Redis");
            return;
        };
        if origin == self.node_id {
            return; // delivered locally at commit
        }
        let n = self.fanout.deliver(session, &messages);
        Metrics::add(&self.metrics.deliveries_total, n as u64);
    }

    async fn on_node_message(&self, payload: &[u8]) {
        match serde_json::from_slice::<NodeMessage>(payload) {
            Ok(NodeMessage::Response(r)) => {
                let tx = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.reply_to);
                if let Some(tx) = tx {
                    let _ = tx.send(r.outcome);
                }
            }
            Ok(NodeMessage::Forward(f)) => {
                let reply = match (f.id, self.background.get()) {
                    (0, _) | (_, None) => Reply::None,
                    (id, Some(b)) => {
                        let answers = b.answers.clone();
                        let from = f.from;
                        Reply::Remote(Box::new(move |outcome| {
                            let _ = answers.send((from, id, outcome));
                        }))
                    }
                };
                // In the order its sender published it: the node puts it in
                // the session's queue without waiting.
                self.tell(Inbound::Request {
                    session: f.session.into(),
                    request: f.request,
                    reply,
                })
                .await;
            }
            Err(e) => tracing::warn!(error = %e, "malformed node message from Redis"),
        }
    }

    /// The subscription connection dropped, or pushes were lost: messages
    /// published meanwhile are lost to this node, so the node closes (1012)
    /// sockets following sessions owned elsewhere, and their clients resume,
    /// getting exactly what they missed.
    async fn on_link_lost(&self) {
        let followed: Vec<SessionId> = self
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        self.tell(Inbound::LinkLost(followed)).await;
    }

    /// Publishes the answers to requests other nodes forwarded here.
    pub(super) async fn publish_answers(
        self: Arc<Self>,
        mut answers: mpsc::UnboundedReceiver<(String, u64, crate::session::Outcome)>,
        shutdown: CancellationToken,
    ) {
        loop {
            let (to, reply_to, outcome) = tokio::select! {
                _ = shutdown.cancelled() => return,
                a = answers.recv() => match a { Some(a) => a, None => return },
            };
            self.answer(&to, reply_to, outcome).await;
        }
    }
}

fn bytes_of(v: &redis::Value) -> Option<&[u8]> {
    match v {
        redis::Value::BulkString(b) => Some(b),
        redis::Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}
