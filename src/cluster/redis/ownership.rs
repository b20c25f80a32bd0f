//! Who owns what: join codes, claims on sessions, reading a session back
//! for a takeover, and the scan that finds sessions whose owner is gone.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::AsyncCommands;

use super::{INSTANCES, ORPHANS, RedisCluster, SESSIONS, TAKEOVER, key};
use crate::cluster::{Claim, Inbound};
use crate::protocol::{ErrorCode, ProtocolError};
use crate::session::SessionId;
use crate::session::record::{SessionSnapshot, StoredParts, StoredSession, decode_message};

/// How often nodes look for sessions whose owner is gone.
const SCAN_EVERY: Duration = Duration::from_millis(500);

impl Claim {
    fn as_arg(self) -> &'static str {
        match self {
            Claim::Create => "create",
            Claim::Restore => "restore",
            Claim::Adopt => "adopt",
        }
    }
}

impl RedisCluster {
    /// Claims `code` for `session` if no live session has it.
    pub(super) async fn claim_code(
        &self,
        code: &str,
        session: &str,
    ) -> Result<bool, ProtocolError> {
        let mut con = self.con();
        let set: Option<String> = redis::cmd("SET")
            .arg(key("code", code))
            .arg(session)
            .arg("NX")
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(set.is_some())
    }

    pub(super) async fn lookup_code(&self, code: &str) -> Result<Option<String>, ProtocolError> {
        let mut con = self.con();
        con.get(key("code", code))
            .await
            .map_err(|e| self.unavailable(e))
    }

    pub(super) async fn release_code(&self, code: &str, session: &str) {
        let mut con = self.con();
        let current: Option<String> = con.get(key("code", code)).await.unwrap_or(None);
        if current.as_deref() == Some(session) {
            let _: Result<(), _> = con.del(key("code", code)).await;
        }
    }

    /// Makes this node the owner of `session` (see [`Claim`] and the
    /// `CLAIM` script). Returns
    /// whether it is ours now.
    pub(super) async fn claim(&self, session: &str, how: Claim) -> Result<bool, ProtocolError> {
        let mut con = self.con();
        let claimed: i64 = self
            .claim_script
            .key(key("owner", session))
            .key(key("snap", session))
            .key(ORPHANS)
            .key(key("owned", &self.node_id))
            .arg(&self.node_id)
            .arg(session)
            .arg(how.as_arg())
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(claimed == 1)
    }

    /// The live node that owns `session` now, if any: an owner whose
    /// heartbeat is gone counts as none.
    pub(super) async fn owner(&self, session: &str) -> Result<Option<String>, ProtocolError> {
        let mut con = self.con();
        let owner: Option<String> = self
            .owner_script
            .key(key("owner", session))
            .invoke_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        self.mark(true);
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        match &owner {
            Some(o) if *o != self.node_id => {
                owners.insert(session.to_owned(), o.clone());
            }
            _ => {
                owners.remove(session);
            }
        }
        Ok(owner)
    }

    /// Whether `instance`'s heartbeat lives.
    pub(super) async fn is_alive(&self, instance: &str) -> bool {
        let mut con = self.con();
        let alive: Result<bool, _> = con.exists(key("alive", instance)).await;
        alive.unwrap_or(false)
    }

    /// The owner as last seen, or as Redis says now.
    pub(super) async fn owner_cached(
        &self,
        session: &str,
    ) -> Result<Option<String>, ProtocolError> {
        let cached = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session)
            .cloned();
        match cached {
            Some(o) => Ok(Some(o)),
            None => self.owner(session).await,
        }
    }

    /// Forgets the cached owner of `session` (it moved, or did not answer).
    pub(super) fn forget_owner(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session);
    }

    /// Gives a session up (graceful shutdown, or a takeover that failed
    /// here): it becomes an orphan that another node adopts at its next scan.
    pub(super) async fn release(&self, session: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = self
            .release_script
            .key(key("owner", session))
            .key(ORPHANS)
            .key(key("owned", &self.node_id))
            .arg(&self.node_id)
            .arg(session)
            .invoke_async(&mut con)
            .await;
    }

    /// Reads a session as its owner last committed it.
    pub(super) async fn load(&self, session: &str) -> Result<Option<StoredSession>, ProtocolError> {
        let mut con = self.con();
        // One atomic round trip, so the parts belong to the same commit.
        type Parts = (
            Option<Vec<u8>>,
            Vec<Vec<u8>>,
            HashMap<String, Vec<u8>>,
            HashMap<String, Vec<u8>>,
            HashMap<String, String>,
            Option<String>,
        );
        let (snap, raw, views, members, fields, report): Parts = redis::pipe()
            .atomic()
            .get(key("snap", session))
            .lrange(key("log", session), 0, -1)
            .hgetall(key("views", session))
            .hgetall(key("members", session))
            .hgetall(key("fields", session))
            .get(key("report", session))
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        let Some(snap) = snap else {
            return Ok(None);
        };
        let snapshot: SessionSnapshot<'static> = serde_json::from_slice(&snap).map_err(|e| {
            ProtocolError::new(
                ErrorCode::Internal,
                format!("a stored session is corrupt: {e}"),
            )
        })?;
        let messages = raw.iter().filter_map(|b| decode_message(b).ok()).collect();
        let views = views
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_slice(&v).ok().map(|v| (k, v)))
            .collect();
        let members = members
            .values()
            .filter_map(|v| serde_json::from_slice(v).ok())
            .collect();
        let parts = StoredParts {
            members,
            messages,
            views,
            fields,
            report,
        };
        StoredSession::assemble(snapshot, parts)
            .map(Some)
            .map_err(|e| {
                ProtocolError::new(
                    ErrorCode::Internal,
                    format!("a stored session is corrupt: {e}"),
                )
            })
    }

    /// Tells every node that `session` has a new owner, so their sockets
    /// reattach their seats.
    pub(super) async fn announce_takeover(&self, session: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = con.publish(TAKEOVER, session).await;
    }

    /// The owner Redis records for each session, alive or not.
    pub(super) async fn recorded_owners(
        &self,
        sessions: &[SessionId],
    ) -> Result<Vec<Option<String>>, ProtocolError> {
        let mut pipe = redis::pipe();
        for s in sessions {
            pipe.get(key("owner", s));
        }
        let mut con = self.con();
        let owners = pipe
            .query_async(&mut con)
            .await
            .map_err(|e| self.unavailable(e))?;
        self.mark(true);
        Ok(owners)
    }

    /// Forgets a session that ended or expired: every key of it in Redis.
    pub(super) async fn remove(&self, session: &str, code: &str) {
        let mut con = self.con();
        let _: Result<i64, _> = self
            .remove_script
            .key(key("owner", session))
            .key(key("snap", session))
            .key(key("log", session))
            .key(key("views", session))
            .key(SESSIONS)
            .key(key("code", code))
            .key(ORPHANS)
            .key(key("members", session))
            .key(key("fields", session))
            .key(key("report", session))
            .arg(&self.node_id)
            .arg(session)
            .invoke_async(&mut con)
            .await;
    }

    /// Every `SCAN_EVERY`: shows the heartbeat thread the runtime is alive,
    /// keeps the subscription connection up, and finds sessions whose
    /// owner is gone. When the heartbeat had lapsed, the node checks its
    /// sessions first.
    pub(super) async fn scan_loop(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(SCAN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let lapsed = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => false,
                _ = self.lapsed.notified() => true,
            };
            self.runtime_tick
                .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
            if lapsed {
                self.tell(Inbound::Lapsed).await;
                continue;
            }
            self.keep_subscribed().await;
            self.find_orphans().await;
        }
    }

    /// Tells the node of the sessions of instances whose heartbeat is gone,
    /// and of sessions given up by their owner, for it to take over. Costs a few round trips per scan
    /// whatever the number of sessions.
    async fn find_orphans(&self) {
        let mut con = self.con();
        let instances: Result<Vec<String>, _> = con.smembers(INSTANCES).await;
        let Ok(instances) = instances else {
            self.mark(false);
            return;
        };
        self.mark(true);
        let others: Vec<String> = instances
            .into_iter()
            .filter(|i| *i != self.node_id)
            .collect();
        if !others.is_empty() {
            let mut pipe = redis::pipe();
            for i in &others {
                pipe.exists(key("alive", i));
            }
            let alive: Result<Vec<bool>, _> = pipe.query_async(&mut con).await;
            let Ok(alive) = alive else {
                return;
            };
            for (instance, alive) in others.iter().zip(alive) {
                if alive {
                    continue;
                }
                let owned: Result<Vec<String>, _> = con.smembers(key("owned", instance)).await;
                let Ok(owned) = owned else {
                    return;
                };
                if owned.is_empty() {
                    let _: Result<i64, _> = self
                        .forget_script
                        .key(key("alive", instance))
                        .key(key("owned", instance))
                        .key(INSTANCES)
                        .arg(instance)
                        .invoke_async(&mut con)
                        .await;
                    continue;
                }
                tracing::info!(instance = %instance, sessions = owned.len(), "a node is gone; taking its sessions over");
                for session in owned {
                    self.tell(Inbound::Orphaned(session.into())).await;
                }
            }
        }
        let orphans: Result<Vec<String>, _> = con.smembers(ORPHANS).await;
        for session in orphans.unwrap_or_default() {
            self.tell(Inbound::Orphaned(session.into())).await;
        }
    }
}
