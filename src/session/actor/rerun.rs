//! The session's recording: each input recorded as it begins and the
//! answer its sender got, the recording handed out as a file, and taking a
//! recorded input again (`recess replay`), where each [`Input`] goes through
//! the same path it took when it happened, so the same code runs.

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
                role,
            } => Request::Join {
                member: member(m),
                secret: RERUN_SECRET.into(),
                name: name.clone(),
                nonce: nonce.clone(),
                role: *role,
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

impl SessionActor {
    /// The session's recording as a file holds it.
    pub(super) fn recording_json(&self) -> Result<String, ProtocolError> {
        let Some(recording) = &self.recording else {
            let why = if self.env.settings.recording_bytes == 0 {
                "this server keeps no recordings (--recording-kib 0)"
            } else {
                "this session has no recording: it was restored after a restart or moved from another node, and a recording covers a session from its start on one node"
            };
            return Err(ProtocolError::new(ErrorCode::Refused, why));
        };
        serde_json::to_string(&recording.file()).map_err(|e| {
            ProtocolError::new(
                ErrorCode::Internal,
                format!("the recording could not be written: {e}"),
            )
        })
    }

    /// An input begins at Unix ms `now`: the rules the catalog offers now
    /// are the ones its handlers switch to, and it is recorded.
    pub(super) fn begin(&mut self, now: i64, input: Input) {
        self.offered = self.env.catalog.get(&self.game);
        if let Some(r) = &mut self.recording {
            r.input(now, self.offered.as_ref(), input);
        }
    }

    /// Records the answer the sender of the current input was given.
    pub(super) fn record_answer(&mut self, to: Option<&str>, answer: Result<Json, &ProtocolError>) {
        let Some(r) = &mut self.recording else {
            return;
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => serde_json::json!({ "error": e.code, "message": e.message }),
        };
        r.answer(to, answer);
    }
}
