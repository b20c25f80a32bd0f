//! The session's webhooks (`session::hooks`): made by what happens, stored
//! with the commit, delivered once it is durable.

use super::*;

impl SessionActor {
    /// Adds the webhook `event` with `data`, if the node has receivers: it
    /// goes into the snapshot with this batch, and out once that is durable.
    pub(super) fn hook(&mut self, event: &str, data: Json, now: i64) {
        if self.env.hooks.is_none() && !self.env.settings.keep_hooks {
            return;
        }
        let (session, game) = (&*self.id, &self.game);
        let hook = self.outbox.push(|n| {
            let id = format!("{session}.{n}");
            let body = serde_json::json!({
                "id": id,
                "event": event,
                "session": session,
                "game": game,
                "at": now,
                "data": data,
            });
            (id, body.to_string())
        });
        self.batch.hooks.push(hook);
        self.batch.state = true;
    }

    /// Before a snapshot: forget what every receiver has taken.
    pub(super) fn trim_hooks(&mut self) {
        if let Some(lane) = &self.lane {
            self.outbox.delivered(lane.done());
        }
    }

    /// After a commit: its webhooks are stored, so they may go out (the
    /// session's lane starts with the first).
    pub(super) fn send_hooks(&mut self, hooks: Vec<Hook>) {
        if hooks.is_empty() {
            return;
        }
        let Some(transport) = &self.env.hooks else {
            return;
        };
        let lane = self
            .lane
            .get_or_insert_with(|| Lane::start(self.id.clone(), transport.clone()));
        for hook in hooks {
            lane.send(hook);
        }
    }

    /// After a restore: what the snapshot holds goes out again (a receiver
    /// may get one twice; its `id` tells).
    pub(super) fn resume_hooks(&mut self) {
        let pending = self.outbox.pending.iter().cloned().collect();
        self.send_hooks(pending);
    }
}
