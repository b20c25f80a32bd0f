//! Commits: what a batch changed becomes one `SessionWrite` for the sink;
//! only once it is durable are its messages delivered and its answers sent.

use std::borrow::Cow;

use super::*;

/// What a commit writes of the state and the report besides the snapshot.
#[derive(Default)]
struct Parts<'a> {
    fields: Vec<(Cow<'a, str>, &'a str)>,
    removed_fields: Vec<String>,
    report: Option<&'a str>,
}

impl SessionActor {
    /// The snapshot's bytes. A state that is an object is kept as one
    /// record per field and the report as a record of its own: the
    /// snapshot names them, and the commit writes the ones that changed.
    pub(super) fn snapshot(&self, state: &SavedState) -> Result<Vec<u8>, ScriptError> {
        let rules_version = self.vm.rules().version.clone();
        let counters = self.vm.counters();
        let inline = match state.has_fields() {
            true => None,
            false => Some(
                serde_json::value::RawValue::from_string(state.text().to_owned()).map_err(|e| {
                    ScriptError {
                        message: format!("the state could not be saved: {e}"),
                    }
                })?,
            ),
        };
        let snapshot = SessionSnapshot {
            id: self.id.to_string(),
            code: self.code.clone(),
            game: self.game.clone(),
            rules_version,
            seq: self.seq,
            state: inline.map(Cow::Owned),
            fields: state.has_fields().then(|| state.names().collect()),
            members: Vec::new(),
            timers: self.timers.values().cloned().collect(),
            counters,
            ended: self.ended.clone(),
            created_ms: self.created_ms,
            active_ms: self.active_ms,
            removed_names: self.removed_names.iter().map(|k| k.to_string()).collect(),
            names: self.names,
            name_seed: self.name_seed,
            report: None,
            report_apart: self.report.is_some(),
            hooks: Cow::Borrowed(&self.outbox),
        };
        serde_json::to_vec(&snapshot).map_err(|e| ScriptError {
            message: format!("the session could not be saved: {e}"),
        })
    }

    /// The fields and the report to write with a snapshot: what differs
    /// from what the stores hold, or all of it in a `full` write.
    fn parts<'a>(
        &self,
        state: &'a SavedState,
        report: Option<&'a Encoded>,
        full: bool,
    ) -> Parts<'a> {
        let before = self.stored_state.as_deref().filter(|_| !full);
        let changes = state.changes_since(before);
        // A report is replaced, never changed in place: a new one is
        // another allocation.
        let stored = |now: &Encoded| {
            self.stored_report
                .as_deref()
                .is_some_and(|s| std::ptr::eq(s, now))
        };
        Parts {
            fields: changes.changed,
            removed_fields: changes.removed,
            report: report.filter(|r| full || !stored(r)).map(|r| r.text.get()),
        }
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
        self.trim_hooks();
        let (snapshot, state) = if batch.state || full || stale_activity {
            match self.snapshot_or_notify(&mut batch) {
                Some((bytes, state)) => {
                    self.stored_active_ms = self.active_ms;
                    (Some(bytes), Some(state))
                }
                None => (None, None),
            }
        } else {
            (None, None)
        };
        let report = self.report.clone();
        let parts = state
            .as_deref()
            .map(|state| self.parts(state, report.as_deref(), full))
            .unwrap_or_default();
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
            fields: parts.fields,
            removed_fields: parts.removed_fields,
            report: parts.report,
            full,
            messages,
            evicted: batch.evicted.clone(),
            members,
            removed_members: batch.removed.iter().map(|m| &**m).collect(),
            hooks: &batch.hooks,
        };
        self.count_stored(&write);
        let outcome = self.env.sink.commit(write).await;
        // A commit that failed is followed by a full one (`resync`), so
        // what was handed over counts as stored either way.
        if let Some(state) = state {
            self.stored_state = Some(state);
            self.stored_report = report;
        }
        match outcome {
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

        self.send_hooks(batch.hooks);
        for (reply, outcome) in batch.replies {
            reply.send(outcome);
        }
        true
    }

    /// Counts what a commit hands to the stores (`recess_stored_bytes_total`).
    fn count_stored(&self, w: &SessionWrite<'_>) {
        let state: usize = w
            .fields
            .iter()
            .map(|(name, text)| name.len() + text.len())
            .sum();
        let state = state + w.report.map_or(0, str::len);
        let snapshot = w.snapshot.as_ref().map_or(0, Vec::len);
        let members: usize = w
            .members
            .iter()
            .map(|m| m.record.len() + m.view.len())
            .sum();
        let messages: usize = w.messages.iter().map(|m| m.frame.len()).sum();
        let metrics = &self.env.metrics;
        let all = state + snapshot + members + messages;
        Metrics::add(&metrics.stored_bytes_total, all as u64);
        Metrics::add(&metrics.state_bytes_total, state as u64);
    }

    /// The snapshot to store and the state it holds, or `None` (and a
    /// notice to the hosts) when the state cannot be serialized.
    pub(super) fn snapshot_or_notify(
        &mut self,
        batch: &mut Batch,
    ) -> Option<(Vec<u8>, Arc<SavedState>)> {
        let snapshot = self
            .vm
            .state_json()
            .and_then(|state| Ok((self.snapshot(&state)?, state)));
        match snapshot {
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
