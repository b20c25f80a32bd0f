//! Commits: what a batch changed becomes one `SessionWrite` for the sink;
//! only once it is durable are its messages delivered and its answers sent.

use std::borrow::Cow;

use super::*;

impl SessionActor {
    pub(super) fn snapshot(&mut self) -> Result<Vec<u8>, ScriptError> {
        let rules_version = self.vm.rules().version.clone();
        let counters = self.vm.counters();
        let state = self.vm.state_json()?;
        let snapshot = SessionSnapshot {
            id: self.id.to_string(),
            code: self.code.clone(),
            game: self.game.clone(),
            rules_version,
            seq: self.seq,
            state: Cow::Borrowed(state),
            members: Vec::new(),
            timers: self.timers.values().cloned().collect(),
            counters,
            ended: self.ended.clone(),
            created_ms: self.created_ms,
            active_ms: self.active_ms,
            removed_names: self.removed_names.iter().map(|k| k.to_string()).collect(),
            names: self.names,
            name_seed: self.name_seed,
            report: self.report.as_ref().map(|r| Cow::Borrowed(&*r.text)),
        };
        serde_json::to_vec(&snapshot).map_err(|e| ScriptError {
            message: format!("the session could not be saved: {e}"),
        })
    }

    /// Makes the batch durable, then publishes its messages and sends its
    /// answers. Returns `false` when this node no longer owns the session.
    pub(crate) async fn commit(&mut self) -> bool {
        // A rewrite goes with the next batch that writes anything, or alone
        // once its retry is due (not at every turn of the loop).
        let due = self.resync_due();
        let mut batch = std::mem::take(&mut self.batch);
        let full = self.resync && (due || !batch.is_empty());
        if full {
            self.resync = false;
        }
        if batch.is_empty() && !full {
            for (reply, outcome) in batch.replies {
                reply.send(outcome);
            }
            return true;
        }
        // Messages alone (a REST broadcast, notices) leave the snapshot as
        // it is: the stored messages carry the new `seq`.
        let stale_activity = self.active_ms - self.stored_active_ms > ACTIVE_MS_SLACK;
        let snapshot = if batch.state || full || stale_activity {
            let s = self.snapshot_or_notify(&mut batch);
            if s.is_some() {
                self.stored_active_ms = self.active_ms;
            }
            s
        } else {
            None
        };
        let all_messages: Vec<Outgoing>;
        let messages: &[Outgoing] = if full {
            all_messages = self
                .log
                .iter()
                .cloned()
                .chain(batch.messages.iter().filter(|m| m.seq == 0).cloned())
                .collect();
            &all_messages
        } else {
            &batch.messages
        };
        let all = Touched {
            record: true,
            view: true,
        };
        let touched: Vec<(&MemberId, Touched)> = if full {
            self.members.keys().map(|id| (id, all)).collect()
        } else {
            batch.members.iter().map(|(id, t)| (id, *t)).collect()
        };
        let members = touched
            .into_iter()
            .filter_map(|(id, touched)| {
                let m = self.members.get(id)?;
                Some(MemberWrite {
                    id,
                    record: serde_json::to_vec(&m.record()).unwrap_or_default(),
                    record_changed: touched.record,
                    view: serde_json::to_vec(&*m.view).unwrap_or_default(),
                    view_changed: touched.view,
                })
            })
            .collect();
        let write = SessionWrite {
            id: &self.id,
            session: &self.id,
            code: &self.code,
            snapshot,
            full,
            messages,
            evicted: batch.evicted.clone(),
            members,
            removed_members: batch.removed.iter().map(|m| &**m).collect(),
        };
        match self.env.sink.commit(write).await {
            Ok(()) => {
                self.retry_at = None;
                if !self.durable {
                    tracing::info!(session = %self.id, "this session's commits are saved again");
                }
                self.set_durable(true);
            }
            Err(CommitError::NotOwner) => {
                tracing::warn!(session = %self.id, "another node took this session over; stopping here");
                return false;
            }
            Err(CommitError::Lagging(e)) => {
                // What is stored elsewhere lags: rewrite it all next time.
                self.resync = true;
                self.retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
                self.set_durable(true);
                tracing::warn!(session = %self.id, error = %e, "commit did not reach every store");
            }
            Err(CommitError::NotDurable(e)) => {
                // Degraded: the game goes on in memory (what a class would
                // rather have than a frozen screen), the node says so in
                // /healthz and /metrics, and everything is rewritten as soon
                // as a store takes it again.
                self.resync = true;
                self.retry_at = Some(Instant::now() + RETRY_AFTER_FAILURE);
                if self.durable {
                    tracing::error!(session = %self.id, error = %e, "this session's commits cannot be saved; it goes on in memory until they can");
                }
                self.set_durable(false);
            }
        }

        for (reply, outcome) in batch.replies {
            reply.send(outcome);
        }
        true
    }

    /// The snapshot to store, or `None` (and a notice to the hosts) when the
    /// state cannot be serialized.
    pub(super) fn snapshot_or_notify(&mut self, batch: &mut Batch) -> Option<Vec<u8>> {
        match self.snapshot() {
            Ok(s) => Some(s),
            Err(e) => {
                Metrics::inc(&self.env.metrics.snapshot_errors_total);
                let err = ProtocolError::new(
                    ErrorCode::ScriptError,
                    format!(
                        "the game state cannot be saved (keep it to tables, strings, numbers and booleans): {}",
                        e.message
                    ),
                );
                tracing::error!(session = %self.id, "{}", err.message);
                let _ = self.notice(&err, None);
                batch.messages.append(&mut self.batch.messages);
                None
            }
        }
    }

    /// Records whether the last commit was durable, in the node's count of
    /// sessions that are not (`recess_sessions_not_durable`).
    pub(super) fn set_durable(&mut self, durable: bool) {
        if durable != self.durable {
            self.durable = durable;
            if durable {
                Metrics::dec(&self.env.metrics.sessions_not_durable);
            } else {
                Metrics::inc(&self.env.metrics.sessions_not_durable);
            }
        }
    }

    /// Asks for the next commit to rewrite everything (the cluster copy was lost).
    pub(crate) fn request_resync(&mut self) {
        self.resync = true;
    }
}
