//! What the game's rules decide: joins, resumes, actions, events, leaves
//! and timers run their handlers here, and the effects of a successful
//! call become messages, timers, kicks and the end of the game.

use super::*;

impl SessionActor {
    pub(super) fn join(
        &mut self,
        member: MemberId,
        secret: String,
        name: String,
        nonce: Option<String>,
        role: Role,
        now: i64,
    ) -> Result<Attached, ProtocolError> {
        if self.ended.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::Ended,
                "this game has already finished",
            ));
        }
        let name = clean_name(&name)?;
        // A retried join (its first answer was lost): the same seat again,
        // for exactly the same name and nonce, and only while no socket holds
        // the seat. The connection resumes it, since it holds another member id.
        if let Some(nonce) = &nonce
            && let Some(existing) = self.members.values().find(|m| {
                m.real_name
                    .as_ref()
                    .map_or(&m.name, |(real, _)| real)
                    .as_ref()
                    == name
                    && m.join_nonce
                        .as_deref()
                        .is_some_and(|n| constant_time_eq(n.as_bytes(), nonce.as_bytes()))
            })
        {
            if existing.connections > 0 {
                // Most likely this client's own previous connection, which
                // the server has not seen drop yet.
                return Err(ProtocolError::new(
                    ErrorCode::Unavailable,
                    format!(
                        "\"{name}\" is still connected on another connection; try again in a few seconds"
                    ),
                )
                .retry_after(Duration::from_secs(2)));
            }
            let id = existing.id.clone();
            return Ok(self.attached(&id, None));
        }
        self.env.settings.blocked_names.check(&name)?;
        let key = name_key(&name);
        if self.removed_names.contains(&*key) {
            return Err(ProtocolError::new(
                ErrorCode::Kicked,
                "the teacher removed you from this game; ask them to let you back in",
            ));
        }
        if self.members.values().any(|m| m.person_key() == &*key) {
            return Err(ProtocolError::new(
                ErrorCode::NameTaken,
                format!("the name \"{name}\" is already taken in this game; pick another"),
            ));
        }
        // Players count towards the game's `max_players`, bots towards
        // their own limit.
        let limit = match role {
            Role::Bot => Some((MAX_BOTS, "bots")),
            _ => self.vm.rules().max_players.map(|max| (max, "players")),
        };
        if let Some((max, who)) = limit
            && self.members.values().filter(|m| m.role == role).count() >= max
        {
            return Err(ProtocolError::new(
                ErrorCode::SessionFull,
                format!("this game is full ({max} {who})"),
            ));
        }
        if self.members.contains_key(&member) {
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "member id clash; please try again",
            ));
        }
        // Members are kept in join order, so the last one has the highest.
        let order = self.members.last().map_or(0, |(_, m)| m.order + 1);
        // A bot is named by its backend, never given a generated name.
        let (shown, shown_key, real_name) = match (self.names, role) {
            (NameMode::Typed, _) | (_, Role::Bot) => (name, key, None),
            (NameMode::Generated, _) => {
                let shown = generated_name(self.name_seed, order, |k| {
                    self.members.values().any(|m| &*m.name_key == k)
                });
                let shown_key = name_key(&shown);
                (shown, shown_key, Some((Arc::from(name), key)))
            }
        };
        self.members.insert(
            member.clone(),
            Member {
                id: member.clone(),
                name: shown.into(),
                name_key: shown_key,
                real_name,
                role,
                secret,
                joined_seq: self.seq,
                welcomed: true,
                connections: 1,
                view: Arc::new(Json::Object(Default::default())),
                join_nonce: nonce,
                order,
            },
        );
        self.sync_player(&member);
        let info = self.members[&member].info();
        self.refresh_rules();
        let joined_seq = self.seq;
        let outcome = match self.vm.join(&info, now) {
            Ok(o) => o,
            Err(e) => {
                self.remove_member(&member);
                return Err(self.script_failed(e, Some(&member)));
            }
        };
        if let Some(reason) = outcome.refusal {
            self.remove_member(&member);
            return Err(ProtocolError::new(ErrorCode::Refused, reason));
        }
        self.apply(outcome.effects, now);
        let view = match self.vm.view(&info) {
            Ok(v) => v,
            Err(e) => {
                // The seat stays: the player sees an empty screen until the view works.
                let _ = self.script_failed(e, None);
                Json::Object(Default::default())
            }
        };
        // Players often see what the one before them sees: share its copy.
        let len = self.members.len();
        let view = match self.members.get_index(len.wrapping_sub(2)) {
            Some((_, before)) if *before.view == view => before.view.clone(),
            _ => Arc::new(view),
        };
        let m = &mut self.members[&member];
        m.view = view;
        m.joined_seq = joined_seq;
        self.batch.record(&member);
        self.batch.view(&member);
        self.batch.state = true;
        Ok(self.attached(&member, None))
    }

    pub(super) fn resume(
        &mut self,
        member: &str,
        secret: &str,
        last_seq: u64,
    ) -> Result<Attached, ProtocolError> {
        let Some(m) = self.members.get_mut(member) else {
            return Err(ProtocolError::new(
                ErrorCode::BadToken,
                "this seat no longer exists (the player left or was removed); join again with the code",
            ));
        };
        if !constant_time_eq(m.secret.as_bytes(), secret.as_bytes()) {
            return Err(ProtocolError::new(
                ErrorCode::BadToken,
                "this token is not valid",
            ));
        }
        m.connections += 1;
        let member_id = m.id.clone();
        let replay = if m.welcomed && last_seq >= m.joined_seq && last_seq <= self.seq {
            self.log.since(last_seq, self.seq, member)
        } else {
            Replay::TooOld
        };
        let attached = match replay {
            Replay::Complete(messages) => {
                let mut attached = self.attached(&member_id, Some(true));
                attached
                    .frames
                    .extend(messages.into_iter().map(|m| m.frame));
                attached
            }
            Replay::TooOld => {
                let m = &mut self.members[member];
                if !m.welcomed {
                    m.welcomed = true;
                    self.batch.record(&member_id);
                }
                self.attached(&member_id, Some(false))
            }
        };
        self.sync_player(&member_id);
        Ok(attached)
    }

    pub(super) fn action(
        &mut self,
        member: &str,
        name: &str,
        data: &Json,
        now: i64,
    ) -> Result<(), ProtocolError> {
        let Some(m) = self.members.get(member) else {
            return Err(not_member());
        };
        if self.ended.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::Ended,
                "this game has finished",
            ));
        }
        if name.is_empty() || name.len() > MAX_ACTION_NAME {
            return Err(ProtocolError::new(
                ErrorCode::BadFrame,
                format!("an action name must be 1 to {MAX_ACTION_NAME} bytes"),
            ));
        }
        let info = m.info();
        let member: MemberId = m.id.clone();
        Metrics::inc(&self.env.metrics.actions_total);
        self.refresh_rules();
        let outcome = self
            .vm
            .action(&info, name, data, now)
            .map_err(|e| self.script_failed(e, Some(&member)))?;
        self.finish_call(outcome, now)
    }

    pub(super) fn event(&mut self, name: &str, data: &Json, now: i64) -> Result<(), ProtocolError> {
        if self.ended.is_some() {
            return Err(ProtocolError::new(
                ErrorCode::Ended,
                "this game has finished",
            ));
        }
        self.refresh_rules();
        let outcome = self
            .vm
            .event(name, data, now)
            .map_err(|e| self.script_failed(e, None))?;
        self.finish_call(outcome, now)
    }

    pub(super) fn finish_call(
        &mut self,
        outcome: CallOutcome,
        now: i64,
    ) -> Result<(), ProtocolError> {
        if let Some(reason) = outcome.refusal {
            return Err(ProtocolError::new(ErrorCode::Refused, reason));
        }
        self.apply(outcome.effects, now);
        self.batch.state = true;
        Ok(())
    }

    pub(super) fn leave(&mut self, member: &str, now: i64) {
        let Some(m) = self.members.get(member) else {
            return;
        };
        let info = m.info();
        let id = m.id.clone();
        self.remove_member(member);
        self.batch.removed.push(id.clone());
        self.batch.state = true;
        self.redraw.everyone();
        if self.ended.is_some() {
            return;
        }
        self.refresh_rules();
        match self.vm.leave(&info, now) {
            Ok(outcome) => self.apply(outcome.effects, now),
            Err(e) => {
                let _ = self.script_failed(e, None);
            }
        }
    }

    pub(super) fn fire_due_timers(&mut self) {
        let now = self.env.clock.now_ms();
        let mut due: Vec<(i64, u64)> = self
            .timers
            .values()
            .filter(|t| t.due_ms <= now)
            .map(|t| (t.due_ms, t.id))
            .collect();
        if due.is_empty() {
            return;
        }
        self.begin(now, Input::Timers);
        due.sort_unstable();
        for (_, id) in due {
            let Some(timer) = self.timers.remove(&id) else {
                continue;
            };
            // A held timer carries out what someone did earlier: its firing
            // is activity (the one it sets, if any, is not held).
            if timer.held {
                self.active_ms = now;
            }
            self.vm.set_pending_timers(self.timers.len());
            self.batch.state = true;
            if self.ended.is_some() {
                continue;
            }
            self.refresh_rules();
            match self.vm.timer(&timer.name, &timer.data, now) {
                Ok(outcome) => {
                    self.apply_from_timer(outcome.effects, now);
                }
                Err(e) => {
                    let _ = self.script_failed(e, None);
                }
            }
        }
    }

    /// Applies a successful call's effects, in the order the script made
    /// them: what a handler called by a member, the API or the session's
    /// creation did: its timers hold an idle session (see `expire_at`).
    pub(super) fn apply(&mut self, effects: Vec<Effect>, now: i64) {
        self.apply_effects(effects, now, true);
        self.vm.set_pending_timers(self.timers.len());
    }

    /// Applies what a timer's handler did: the timers it sets do not hold
    /// an idle session, so a game that ticks on with nobody there expires.
    fn apply_from_timer(&mut self, effects: Vec<Effect>, now: i64) {
        self.apply_effects(effects, now, false);
        self.vm.set_pending_timers(self.timers.len());
    }

    /// Whose views may have changed comes from the call's `ctx.redraw`s:
    /// everyone's when it made none.
    fn apply_effects(&mut self, effects: Vec<Effect>, now: i64, held: bool) {
        let mut redraw: Option<Vec<String>> = None;
        for effect in effects {
            match effect {
                Effect::Broadcast { name, data } => {
                    let id = self.id.clone();
                    self.push(Audience::All, false, |seq| {
                        protocol::encode_event(&id, seq, &name, &data)
                    });
                }
                Effect::Send { to, name, data } => {
                    let Some(member) = self.members.get(to.as_str()).map(|m| m.id.clone()) else {
                        tracing::debug!(session = %self.id, player = %to, "ctx.send to a player who is not here");
                        continue;
                    };
                    let id = self.id.clone();
                    self.push(Audience::Members(vec![member]), false, |seq| {
                        protocol::encode_event(&id, seq, &name, &data)
                    });
                }
                Effect::After { id, ms, name, data } => {
                    self.timers.insert(
                        id,
                        TimerRecord {
                            id,
                            due_ms: now.saturating_add(ms as i64),
                            name,
                            data,
                            held,
                        },
                    );
                }
                Effect::Cancel { id } => {
                    self.timers.remove(&id);
                }
                Effect::Kick { player, reason } => {
                    let Some(member) = self.members.get(player.as_str()).map(|m| m.id.clone())
                    else {
                        continue;
                    };
                    let id = self.id.clone();
                    let err = ProtocolError::new(ErrorCode::Kicked, reason);
                    self.push(Audience::Members(vec![member.clone()]), true, |seq| {
                        protocol::encode_session_error(&err, &id, seq)
                    });
                    if let Some(m) = self.members.get(&member) {
                        self.removed_names.insert(m.person_key().into());
                    }
                    self.remove_member(&member);
                    self.batch.removed.push(member);
                    self.redraw.everyone();
                }
                Effect::Readmit { name } => {
                    self.removed_names.remove(&*name_key(name.trim()));
                }
                Effect::Rename { player, name } => self.rename(&player, name),
                Effect::Redraw { who } => redraw.get_or_insert_default().extend(who),
                Effect::Emit { name, data } => self.hook(&name, data, now),
                Effect::Report { results } => {
                    if self.ended.is_none() {
                        self.report = Some(Arc::new(Encoded::new(results)));
                    }
                }
                Effect::Finish { results } => {
                    if self.ended.is_some() {
                        continue;
                    }
                    self.timers.clear();
                    // `--ended-ttl-min` counts from here.
                    self.active_ms = now;
                    self.push_ended(&results);
                    self.hook(
                        "session.ended",
                        serde_json::json!({ "results": &results }),
                        now,
                    );
                    self.ended = Some(results);
                    self.redraw.everyone();
                }
            }
        }
        self.redraw.after_call(redraw);
        self.batch.state = true;
    }

    /// `ctx.rename`: the member is called `name` (which the call checked)
    /// from now on, everywhere, and is told so with a `renamed` frame.
    fn rename(&mut self, player: &str, name: String) {
        let key = name_key(&name);
        // Checked when the call made it; a kick in the same call may have
        // removed the member since.
        if !self.members.contains_key(player)
            || self
                .members
                .values()
                .any(|m| &*m.id != player && m.name_key == key)
        {
            return;
        }
        let Some(m) = self.members.get_mut(player) else {
            return;
        };
        m.name = name.into();
        m.name_key = key;
        let (member, shown, role) = (m.id.clone(), m.name.clone(), m.role);
        self.sync_player(&member);
        self.batch.record(&member);
        self.redraw.everyone();
        let id = self.id.clone();
        self.push(Audience::Members(vec![member.clone()]), false, |seq| {
            protocol::encode_renamed(
                &id,
                seq,
                &PlayerRef {
                    id: &member,
                    name: &shown,
                    role,
                },
            )
        });
    }

    /// The `ended` frame: with private columns (`results.private`), the
    /// hosts' has them and everyone else's has not, under one `seq`.
    fn push_ended(&mut self, results: &Json) {
        let id = self.id.clone();
        let Some(public) = public_results(results) else {
            self.push(Audience::All, false, |seq| {
                protocol::encode_ended(&id, seq, results)
            });
            return;
        };
        let (hosts, others): (Vec<&Member>, Vec<&Member>) =
            self.members.values().partition(|m| m.role == Role::Host);
        let ids = |list: Vec<&Member>| list.into_iter().map(|m| m.id.clone()).collect::<Vec<_>>();
        let (hosts, others) = (ids(hosts), ids(others));
        self.seq += 1;
        let seq = self.seq;
        for (audience, results) in [(hosts, results), (others, &public)] {
            if audience.is_empty() {
                continue;
            }
            let frame = protocol::encode_ended(&id, seq, results);
            self.queue(Outgoing {
                seq,
                audience: Audience::Members(audience),
                frame: frame.into(),
                revoke: false,
            });
        }
    }

    /// Sends each member the patch from its last view to its current one.
    /// Members whose patches are equal share one message (and one `seq`).
    /// Only the members the calls since the last pass redrew are visited
    /// (see `view::Redraw`); with `check_game` the others are too, and a
    /// changed view among them is the game's error.
    pub(super) fn view_pass(&mut self) {
        self.begin(self.env.clock.now_ms(), Input::Views);
        self.last_view_pass = Instant::now();
        Metrics::inc(&self.env.metrics.view_passes_total);
        self.refresh_rules();
        let redraw = self.redraw.take();
        let check = self.env.settings.check_game && !redraw.is_everyone();
        let mut pass = view::ViewPass::default();
        let mut errors: Vec<ScriptError> = Vec::new();
        let ids: Vec<(MemberId, bool)> = self
            .members
            .values()
            .filter_map(|m| {
                let covered = redraw.covers(&m.id, m.role.as_str());
                (check || covered).then(|| (m.id.clone(), covered))
            })
            .collect();
        for (id, covered) in ids {
            let info = self.members[&id].info();
            let new = match self.vm.view(&info) {
                Ok(v) => v,
                Err(e) => {
                    if !errors.iter().any(|x| x.message == e.message) {
                        errors.push(e);
                    }
                    continue;
                }
            };
            if !covered {
                if let Some(patch) = view::diff(&self.members[&id].view, &new) {
                    errors.push(self.left_out(&info, &patch));
                }
                continue;
            }
            let m = &mut self.members[&id];
            if pass.update(id.clone(), &mut m.view, new) {
                self.batch.view(&id);
            }
        }
        for e in errors {
            let _ = self.script_failed(e, None);
        }
        let session = self.id.clone();
        for (patch, ids) in pass.into_groups() {
            self.push(Audience::Members(ids), false, |seq| {
                protocol::encode_view_raw(&session, seq, &patch)
            });
        }
    }

    /// The error of a `ctx.redraw` that left out a member whose view
    /// changed (`recess test` and `recess sim` check every pass).
    fn left_out(&self, who: &PlayerInfo, patch: &Json) -> ScriptError {
        let fields: Vec<String> = patch
            .as_object()
            .map(|m| m.keys().map(|k| format!("\"{k}\"")).collect())
            .unwrap_or_default();
        ScriptError {
            message: format!(
                "{}: ctx.redraw left out {} ({}), whose view changed too (field {}): name them in ctx.redraw, or call no ctx.redraw and every view is redrawn",
                self.vm.rules().main.chunk_name,
                who.name,
                who.role.as_str(),
                fields.join(", ")
            ),
        }
    }

    /// Adds a sequenced message to the batch and the replay log.
    pub(super) fn push(
        &mut self,
        audience: Audience,
        revoke: bool,
        frame: impl FnOnce(u64) -> String,
    ) -> u64 {
        self.seq += 1;
        let message = Outgoing {
            seq: self.seq,
            audience,
            frame: frame(self.seq).into(),
            revoke,
        };
        self.queue(message);
        self.seq
    }

    /// Adds a message with the current `seq` to the batch and the replay log.
    fn queue(&mut self, message: Outgoing) {
        self.batch.bytes += message.frame.len();
        if let Some(r) = &mut self.recording {
            r.frame(message.seq, &message.audience, &message.frame);
        }
        self.log.push(message.clone(), &mut self.batch.evicted);
        self.batch.messages.push(message);
        Metrics::inc(&self.env.metrics.messages_total);
    }

    /// An unsequenced notice to the hosts (except `skip`), e.g. a script error.
    pub(super) fn notify_hosts(&mut self, err: &ProtocolError, skip: Option<&str>) {
        if self.notice(err, skip)
            && let (Some(r), Some(notice)) = (&mut self.recording, self.batch.messages.last())
        {
            r.frame(0, &notice.audience, &notice.frame);
        }
    }

    /// Queues a notice to the hosts (except `skip`) at the end of the
    /// batch's messages; `false` when there is nobody to tell. Not recorded:
    /// a notice about a commit depends on when commits happen, which a
    /// replay does not reproduce.
    pub(super) fn notice(&mut self, err: &ProtocolError, skip: Option<&str>) -> bool {
        let hosts: Vec<MemberId> = self
            .members
            .values()
            .filter(|m| m.role == Role::Host && Some(&*m.id) != skip)
            .map(|m| m.id.clone())
            .collect();
        if hosts.is_empty() {
            return false;
        }
        self.batch.messages.push(Outgoing {
            seq: 0,
            audience: Audience::Members(hosts),
            frame: protocol::encode_error(err, None, Some(&self.id)).into(),
            revoke: false,
        });
        true
    }

    /// Reports a failed handler call: logged, shown to the hosts, returned to the caller.
    pub(super) fn script_failed(&mut self, e: ScriptError, caller: Option<&str>) -> ProtocolError {
        Metrics::inc(&self.env.metrics.script_errors_total);
        tracing::warn!(session = %self.id, game = %self.game, "script error: {}", e.message);
        let err = ProtocolError::new(ErrorCode::ScriptError, e.message);
        self.notify_hosts(&err, caller);
        err
    }

    /// Switches to the newest good rules before a handler call, if they changed.
    pub(super) fn refresh_rules(&mut self) {
        let Some(current) = self.offered.clone() else {
            return;
        };
        if current.version == self.vm.rules().version
            || self.failed_version.as_deref() == Some(current.version.as_str())
        {
            return;
        }
        match self.vm.upgrade(current.clone()) {
            Ok(()) => {
                tracing::info!(session = %self.id, game = %self.game, version = %current.version, "session switched to new rules");
                self.batch.state = true;
                self.redraw.everyone();
            }
            Err(e) => {
                self.failed_version = Some(current.version.clone());
                let err = ProtocolError::new(
                    ErrorCode::GameBroken,
                    format!(
                        "the new version of the game could not be applied, the previous one keeps running: {}",
                        e.message
                    ),
                );
                self.notify_hosts(&err, None);
            }
        }
    }

    pub(super) fn on_game_change(&mut self, change: GameChange) {
        if let GameChange::Broken { game, message } = change
            && game == self.game
        {
            self.begin(
                self.env.clock.now_ms(),
                Input::Broken {
                    message: message.clone(),
                },
            );
            let err = ProtocolError::new(
                ErrorCode::GameBroken,
                format!(
                    "the saved game file has an error; the previous version keeps running: {message}"
                ),
            );
            self.notify_hosts(&err, None);
        }
    }
}

/// `results` without its private columns (`results.private`, a list of
/// column names, or one name): those columns leave `columns` and every
/// row, and the `private` list itself goes. `None` when there are none.
pub(super) fn public_results(results: &Json) -> Option<Json> {
    let private: Vec<&str> = match results.get("private")? {
        // One column given without a list is still private.
        Json::String(column) => vec![column],
        Json::Array(columns) => columns.iter().filter_map(Json::as_str).collect(),
        _ => return None,
    };
    let mut public = results.clone();
    let map = public.as_object_mut()?;
    map.remove("private");
    if let Some(Json::Array(columns)) = map.get_mut("columns") {
        columns.retain(|c| c.as_str().is_none_or(|c| !private.contains(&c)));
    }
    if let Some(Json::Array(rows)) = map.get_mut("rows") {
        for row in rows.iter_mut().filter_map(Json::as_object_mut) {
            row.retain(|k, _| !private.contains(&k.as_str()));
        }
    }
    Some(public)
}

#[cfg(test)]
mod private_columns {
    use super::public_results;
    use serde_json::json;

    #[test]
    fn private_columns_leave_columns_and_rows() {
        let results = json!({
            "columns": ["name", "real_name", "score"],
            "private": ["real_name"],
            "rows": [{"name": "Brave Otter", "real_name": "Ana", "score": 3}],
            "title": "Quiz"
        });
        assert_eq!(
            public_results(&results),
            Some(json!({
                "columns": ["name", "score"],
                "rows": [{"name": "Brave Otter", "score": 3}],
                "title": "Quiz"
            }))
        );
        let one = json!({"private": "real_name", "rows": [{"real_name": "Ana", "n": 1}]});
        assert_eq!(public_results(&one), Some(json!({"rows": [{"n": 1}]})));
        assert_eq!(public_results(&json!({"rows": []})), None);
        assert_eq!(public_results(&json!(null)), None);
    }
}
