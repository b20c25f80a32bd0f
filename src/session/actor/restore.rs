//! Bringing a stored session back: after a restart, or at a takeover.

use super::*;

impl SessionActor {
    /// Brings a stored session back after a restart.
    pub(crate) fn restore(
        env: Arc<SessionEnv>,
        stored: StoredSession,
        rules: Arc<Rules>,
    ) -> Result<Self, String> {
        let seq = stored.seq();
        let snap = stored.snapshot;
        let mut vm = GameVm::new(rules.clone(), env.settings.script, &snap.id, snap.counters)
            .map_err(|e| e.message)?;
        vm.check_shared_tables(env.settings.check_game);
        let state = snap.state.as_ref().ok_or("the snapshot has no state")?;
        vm.restore_state(state).map_err(|e| e.message)?;
        if snap.rules_version != rules.version {
            vm.migrate().map_err(|e| e.message)?;
        }
        let mut views: HashMap<String, Json> = stored.views.into_iter().collect();
        let mut members = IndexMap::new();
        for m in stored.members {
            let id: MemberId = m.id.as_str().into();
            let member = Member {
                view: Arc::new(
                    views
                        .remove(&m.id)
                        .unwrap_or_else(|| Json::Object(Default::default())),
                ),
                id: id.clone(),
                name_key: name_key(&m.name),
                name: m.name.into(),
                real_name: m.real_name.map(|real| {
                    let key = name_key(&real);
                    (real.into(), key)
                }),
                role: m.role,
                secret: m.secret,
                joined_seq: m.joined_seq,
                welcomed: m.welcomed,
                connections: 0,
                join_nonce: m.join_nonce,
                order: m.order,
            };
            members.insert(id, member);
        }
        let mut actor = SessionActor::fresh(
            env,
            snap.id.as_str().into(),
            snap.code,
            snap.game,
            vm,
            snap.created_ms,
        );
        let mut evicted = Vec::new();
        for m in stored.messages {
            actor.log.push(m, &mut evicted);
        }
        // Stored under an older, looser window: drop them at the next commit.
        actor.batch.evicted = evicted;
        actor.members = members;
        actor.seq = seq;
        actor.timers = snap.timers.into_iter().map(|t| (t.id, t)).collect();
        actor.vm.set_pending_timers(actor.timers.len());
        actor.ended = snap.ended;
        actor.report = match snap.report {
            Some(text) => {
                Some(Arc::new(Encoded::read(text.into_owned()).map_err(|e| {
                    format!("the stored report cannot be read: {e}")
                })?))
            }
            None => None,
        };
        actor.names = snap.names;
        actor.name_seed = snap.name_seed;
        actor.active_ms = snap.active_ms;
        actor.stored_active_ms = snap.active_ms;
        actor.removed_names = snap.removed_names.into_iter().map(Into::into).collect();
        actor.outbox = snap.hooks.into_owned();
        actor.resume_hooks();
        // What members last saw was stored; recompute once in case it lags.
        actor.redraw.everyone();
        actor.sync_players();
        Ok(actor)
    }
}
