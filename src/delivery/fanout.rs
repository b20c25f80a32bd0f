//! [`Fanout`]: this node's subscriptions (session → member → sockets) and
//! the delivery of a committed batch to them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use indexmap::IndexMap;

use crate::protocol;
use crate::session::{Audience, MemberId, Outgoing, SessionId};

use super::socket::Socket;

/// Audiences up to this size are written by the delivering task itself;
/// larger ones are queued first (cheap, in order) and written by tasks of
/// [`WRITE_CHUNK`] sockets each, so the workers share the writes and the
/// session actor (or the cluster's dispatcher) is not held up by them.
const INLINE_WRITES: usize = 64;
const WRITE_CHUNK: usize = 128;

/// One socket's subscription to one membership.
#[derive(Clone)]
pub(crate) struct Subscriber {
    pub socket: Arc<Socket>,
    pub slot: u32,
}

#[derive(Default)]
struct Followers {
    members: HashMap<MemberId, Vec<Subscriber>>,
    /// Every subscriber, for `Audience::All`: built on the first delivery
    /// after a change, so delivering holds no lock while writing.
    all: OnceLock<Arc<[Subscriber]>>,
}

impl Followers {
    fn all(&self) -> Arc<[Subscriber]> {
        self.all
            .get_or_init(|| self.members.values().flatten().cloned().collect())
            .clone()
    }
}

#[derive(Default)]
pub(crate) struct Fanout {
    sessions: RwLock<HashMap<SessionId, Followers>>,
}

impl Fanout {
    pub(crate) fn subscribe(&self, session: &SessionId, member: &MemberId, sub: Subscriber) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        let followers = sessions.entry(session.clone()).or_default();
        followers
            .members
            .entry(member.clone())
            .or_insert_with(|| Vec::with_capacity(1))
            .push(sub);
        followers.all = OnceLock::new();
    }

    pub(crate) fn unsubscribe(&self, session: &str, member: &str, conn: u64) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        if let Some(followers) = sessions.get_mut(session) {
            if let Some(subs) = followers.members.get_mut(member) {
                subs.retain(|s| s.socket.id != conn);
                if subs.is_empty() {
                    followers.members.remove(member);
                }
            }
            followers.all = OnceLock::new();
            if followers.members.is_empty() {
                sessions.remove(session);
            }
        }
    }

    /// Members of `session` with sockets on this node.
    pub(crate) fn members(&self, session: &str) -> Vec<MemberId> {
        let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(session)
            .map(|f| f.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Closes every local socket following `session` (their clients resume).
    pub(crate) fn close_session(&self, session: &str, code: u16, reason: &'static str) {
        let all = {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            match sessions.get(session) {
                Some(f) => f.all(),
                None => return,
            }
        };
        for s in all.iter() {
            s.socket.close(Some((code, reason)));
        }
    }

    /// Delivers `messages` (in order) to this node's subscribers; returns how
    /// many socket deliveries were made.
    pub(crate) fn deliver(&self, session: &str, messages: &[Outgoing]) -> usize {
        let delivered = match messages {
            [] => 0,
            [one] => self.deliver_one(session, one),
            _ => self.deliver_many(session, messages),
        };
        let revoked: Vec<&MemberId> = messages
            .iter()
            .filter(|m| m.revoke)
            .filter_map(|m| match &m.audience {
                Audience::Members(ids) => Some(ids),
                Audience::All => None,
            })
            .flatten()
            .collect();
        if !revoked.is_empty() {
            let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
            if let Some(followers) = sessions.get_mut(session) {
                for id in revoked {
                    if let Some(subs) = followers.members.remove(id) {
                        for s in subs {
                            s.socket.forget(s.slot);
                        }
                    }
                }
                followers.all = OnceLock::new();
                if followers.members.is_empty() {
                    sessions.remove(session);
                }
            }
        }
        delivered
    }

    /// The common case (a broadcast, or one patch): no per-socket bookkeeping.
    fn deliver_one(&self, session: &str, m: &Outgoing) -> usize {
        let targets: Arc<[Subscriber]> = {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            let Some(followers) = sessions.get(session) else {
                return 0;
            };
            match &m.audience {
                Audience::All => followers.all(),
                Audience::Members(ids) => ids
                    .iter()
                    .filter_map(|id| followers.members.get(id))
                    .flatten()
                    .cloned()
                    .collect(),
            }
        };
        if targets.is_empty() {
            return 0;
        }
        let frame = protocol::ws_text(m.frame.clone());
        let one = [(m.seq, &frame)];
        let write_now = targets.len() <= INLINE_WRITES;
        let delivered = targets
            .iter()
            .map(|s| s.socket.deliver(s.slot, &one, write_now))
            .sum();
        if !write_now {
            flush_in_chunks(targets);
        }
        delivered
    }

    /// Several messages: each socket gets all of its share in one call (and,
    /// when its queue is empty, one `writev`).
    fn deliver_many(&self, session: &str, messages: &[Outgoing]) -> usize {
        let mut plan: IndexMap<(usize, u32), (Subscriber, Vec<usize>)> = IndexMap::new();
        {
            let sessions = self.sessions.read().unwrap_or_else(|e| e.into_inner());
            let Some(followers) = sessions.get(session) else {
                return 0;
            };
            let mut add = |i: usize, subs: &[Subscriber]| {
                for s in subs {
                    let key = (Arc::as_ptr(&s.socket) as usize, s.slot);
                    plan.entry(key)
                        .or_insert_with(|| (s.clone(), Vec::new()))
                        .1
                        .push(i);
                }
            };
            for (i, m) in messages.iter().enumerate() {
                match &m.audience {
                    Audience::All => {
                        for subs in followers.members.values() {
                            add(i, subs);
                        }
                    }
                    Audience::Members(ids) => {
                        for id in ids {
                            if let Some(subs) = followers.members.get(id) {
                                add(i, subs);
                            }
                        }
                    }
                }
            }
        }
        if plan.is_empty() {
            return 0;
        }
        let mut needed = vec![false; messages.len()];
        for (_, indexes) in plan.values() {
            for &i in indexes {
                needed[i] = true;
            }
        }
        let frames: Vec<Option<Bytes>> = messages
            .iter()
            .zip(needed)
            .map(|(m, needed)| needed.then(|| protocol::ws_text(m.frame.clone())))
            .collect();
        let write_now = plan.len() <= INLINE_WRITES;
        let mut mine: Vec<(u64, &Bytes)> = Vec::new();
        let mut delivered = 0;
        for (sub, indexes) in plan.values() {
            mine.clear();
            mine.extend(
                indexes
                    .iter()
                    .filter_map(|&i| frames[i].as_ref().map(|f| (messages[i].seq, f))),
            );
            delivered += sub.socket.deliver(sub.slot, &mine, write_now);
        }
        if !write_now {
            flush_in_chunks(plan.into_values().map(|(sub, _)| sub).collect());
        }
        delivered
    }
}

/// Writes what was queued for `targets`, [`WRITE_CHUNK`] sockets per task.
/// Order is kept by each socket's queue, whichever task writes it.
fn flush_in_chunks(targets: Arc<[Subscriber]>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        targets.iter().for_each(|s| s.socket.flush());
        return;
    };
    for start in (0..targets.len()).step_by(WRITE_CHUNK) {
        let targets = targets.clone();
        runtime.spawn(async move {
            let end = (start + WRITE_CHUNK).min(targets.len());
            for s in &targets[start..end] {
                s.socket.flush();
            }
        });
    }
}
