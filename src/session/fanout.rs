//! Delivery of session messages to this node's sockets.
//!
//! A connection subscribes once per membership (session + member). Delivering
//! a message is a lookup and, per socket, a `try_send` of a refcounted frame:
//! nothing is serialized or copied per recipient. A socket whose queue is full
//! is too slow to keep up; it is closed and its client resumes.

use std::collections::HashMap;
use std::sync::RwLock;

use hyper_tungstenite::tungstenite::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Audience, MemberId, Outgoing, SessionId};

/// What a connection's writer task receives.
#[derive(Debug)]
pub enum Outbound {
    /// A session message for membership `slot`.
    Deliver {
        slot: u32,
        seq: u64,
        frame: Utf8Bytes,
    },
    /// A reply to this socket only (ack, error).
    Frame(Utf8Bytes),
    /// Membership `slot` is being attached: hold its messages until `Attach`.
    Open {
        slot: u32,
    },
    /// The welcome (and replay) of `slot`; messages after `seq` follow.
    Attach {
        slot: u32,
        seq: u64,
        frames: Vec<Utf8Bytes>,
    },
    /// Membership `slot` ended; drop its messages.
    Forget {
        slot: u32,
    },
    /// Keep-alive.
    Ping,
    Close {
        code: u16,
        reason: &'static str,
    },
}

/// One socket's subscription to one membership.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub conn: u64,
    pub slot: u32,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled when the socket cannot keep up.
    pub too_slow: CancellationToken,
}

#[derive(Default)]
pub struct Fanout {
    sessions: RwLock<HashMap<SessionId, HashMap<MemberId, Vec<Subscriber>>>>,
}

impl Fanout {
    pub fn subscribe(&self, session: &SessionId, member: &MemberId, sub: Subscriber) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        sessions
            .entry(session.clone())
            .or_default()
            .entry(member.clone())
            .or_default()
            .push(sub);
    }

    pub fn unsubscribe(&self, session: &str, member: &str, conn: u64) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = sessions.get_mut(session) {
            if let Some(subs) = members.get_mut(member) {
                subs.retain(|s| s.conn != conn);
                if subs.is_empty() {
                    members.remove(member);
                }
            }
            if members.is_empty() {
                sessions.remove(session);
            }
        }
    }

    /// Whether any socket on this node follows `session`.
    pub fn has_subscribers(&self, session: &str) -> bool {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.contains_key(session)
    }

    /// Sessions with sockets on this node (the cluster bus subscribes to these).
    pub fn sessions(&self) -> Vec<SessionId> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions.keys().cloned().collect()
    }

    /// Members of `session` with sockets on this node.
    pub fn members(&self, session: &str) -> Vec<MemberId> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(session)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Closes every local socket following `session` (their clients resume).
    pub fn close_session(&self, session: &str, code: u16, reason: &'static str) {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        if let Some(members) = sessions.get(session) {
            for s in members.values().flatten() {
                let _ = s.tx.try_send(Outbound::Close { code, reason });
            }
        }
    }

    /// Delivers `messages` (in order) to this node's subscribers; returns how
    /// many socket deliveries were made.
    pub fn deliver(&self, session: &str, messages: &[Outgoing]) -> usize {
        let mut delivered = 0;
        let mut revoked: Vec<MemberId> = Vec::new();
        {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            let Some(members) = sessions.get(session) else {
                return 0;
            };
            for m in messages {
                let mut send = |subs: &Vec<Subscriber>| {
                    for s in subs {
                        let out = Outbound::Deliver {
                            slot: s.slot,
                            seq: m.seq,
                            frame: m.frame.clone(),
                        };
                        match s.tx.try_send(out) {
                            Ok(()) => delivered += 1,
                            Err(mpsc::error::TrySendError::Full(_)) => s.too_slow.cancel(),
                            Err(mpsc::error::TrySendError::Closed(_)) => {}
                        }
                    }
                };
                match &m.audience {
                    Audience::All => members.values().for_each(&mut send),
                    Audience::Members(ids) => {
                        for id in ids {
                            if let Some(subs) = members.get(id) {
                                send(subs);
                            }
                        }
                    }
                }
                if m.revoke
                    && let Audience::Members(ids) = &m.audience
                {
                    revoked.extend(ids.iter().cloned());
                }
            }
        }
        if !revoked.is_empty() {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            if let Some(members) = sessions.get_mut(session) {
                for id in &revoked {
                    if let Some(subs) = members.remove(id) {
                        for s in subs {
                            let _ = s.tx.try_send(Outbound::Forget { slot: s.slot });
                        }
                    }
                }
                if members.is_empty() {
                    sessions.remove(session);
                }
            }
        }
        delivered
    }
}
