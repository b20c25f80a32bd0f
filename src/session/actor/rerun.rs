//! Taking a recorded input again (`recess replay`): each [`Input`] goes
//! through the same path it took when it happened, so the same code runs.

use super::*;
use crate::script::GameChange;

/// The secret every seat of a replayed session has: recordings keep none,
/// and nothing a replay compares depends on it.
pub(crate) const RERUN_SECRET: &str = "replay";

impl SessionActor {
    /// Takes `input` again; the caller has set the clock to its time and
    /// offered the rules of any `Rules` input before it.
    pub(crate) fn rerun(&mut self, input: &Input) {
        let member = |m: &String| -> MemberId { m.as_str().into() };
        let request = match input {
            // The session was created with its header; a `Rules` input
            // changed what the catalog offers, not the session.
            Input::Start | Input::Rules { .. } => return,
            Input::Timers => return self.fire_due_timers(),
            Input::Views => return self.view_pass(),
            Input::Broken { message } => {
                return self.on_game_change(GameChange::Broken {
                    game: self.game.clone(),
                    message: message.clone(),
                });
            }
            Input::Join {
                member: m,
                name,
                nonce,
            } => Request::Join {
                member: member(m),
                secret: RERUN_SECRET.into(),
                name: name.clone(),
                nonce: nonce.clone(),
            },
            Input::Resume { member: m } => Request::Resume {
                member: member(m),
                secret: RERUN_SECRET.into(),
                // Past the end: a resume that sends back no messages.
                last_seq: u64::MAX,
            },
            Input::Disconnect { member: m } => Request::Disconnected { member: member(m) },
            Input::Reattach { member: m } => Request::Reattach { member: member(m) },
            Input::Action {
                member: m,
                name,
                data,
            } => Request::Action {
                member: member(m),
                name: name.clone(),
                data: data.clone(),
            },
            Input::Leave { member: m } => Request::Leave { member: member(m) },
            Input::Event { name, data } => Request::Event {
                name: name.clone(),
                data: data.clone(),
            },
            Input::Broadcast { name, data } => Request::Broadcast {
                name: name.clone(),
                data: data.clone(),
            },
        };
        self.request(request, Reply::None);
    }

    /// The session's recording so far.
    pub(crate) fn recording(&self) -> Option<&Recording> {
        self.recording.as_ref()
    }

    /// Ends the current batch without storing it (a replay keeps nothing
    /// but its recording).
    pub(crate) fn drop_batch(&mut self) {
        self.batch = Batch::default();
    }
}
