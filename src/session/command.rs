//! What a session is asked and what it answers.
//!
//! A [`Request`] is one definition for every caller: a connection or a REST
//! handler on this node, or another node that forwarded it over the cluster
//! (it serializes as it is). Its [`Reply`] says where the [`Answer`] goes: a
//! local channel, or back to the node that asked. [`Control`] messages come
//! from the node itself and never cross the network. Adding a command means
//! a variant here and its handler in the actor.

use hyper_tungstenite::tungstenite::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::sync::oneshot;

use super::MemberId;
use crate::protocol::{ErrorCode, ProtocolError, Role};

/// A request to a session, from whichever node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Request {
    Join {
        member: MemberId,
        secret: String,
        name: String,
        /// The client's retry key: a join with the same name and nonce as an
        /// existing seat answers with that seat.
        nonce: Option<String>,
        /// `Player`, or `Bot` for a backend the connection let in with an
        /// API key.
        #[serde(default = "Role::joiner")]
        role: Role,
    },
    Resume {
        member: MemberId,
        secret: String,
        last_seq: u64,
    },
    Action {
        member: MemberId,
        name: String,
        data: Json,
    },
    /// Needs no answer.
    Leave {
        member: MemberId,
    },
    /// A member's socket went away (not a `leave`: the seat is kept). Needs
    /// no answer.
    Disconnected {
        member: MemberId,
    },
    /// A socket that already holds this seat tells a new owner it is there
    /// (after a failover). Needs no answer.
    Reattach {
        member: MemberId,
    },
    /// `POST /api/sessions/{id}/events`: runs the `event` handler.
    Event {
        name: String,
        data: Json,
    },
    /// `POST /api/sessions/{id}/broadcast`: an `event` to every member, no Lua.
    Broadcast {
        name: String,
        data: Json,
    },
    Summary,
    /// The results: those of `ended`, or before it the last `ctx.report`.
    /// With `host`, only if that seat is a host whose secret matches (the
    /// REST route's `?token=` form).
    Results {
        host: Option<(MemberId, String)>,
    },
    /// The session's recording (for `recess replay`), with `host` checked
    /// as for `Results`.
    Recording {
        host: Option<(MemberId, String)>,
    },
}

/// What a session answers to a request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Answer {
    /// To `join` and `resume`: the seat and the frames to send.
    Attached(Attached),
    Done,
    /// To `broadcast`: the event's `seq`.
    Seq {
        seq: u64,
    },
    Summary(SessionSummary),
    Results {
        results: Option<Json>,
        /// Whether they are the game's final results (`ctx.finish`) rather
        /// than the last `ctx.report`.
        #[serde(default)]
        finished: bool,
    },
    /// To `recording`: the recording file's JSON text.
    Recording {
        json: String,
    },
}

/// An answer, or why there is none.
pub(crate) type Outcome = Result<Answer, ProtocolError>;

impl Answer {
    /// The answer as the kind the caller asked for, or an internal error
    /// naming what came instead (a node that answered something else).
    pub(crate) fn attached(outcome: Outcome) -> Result<Attached, ProtocolError> {
        match outcome? {
            Answer::Attached(a) => Ok(a),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) fn done(outcome: Outcome) -> Result<(), ProtocolError> {
        match outcome? {
            Answer::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) fn seq(outcome: Outcome) -> Result<u64, ProtocolError> {
        match outcome? {
            Answer::Seq { seq } => Ok(seq),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) fn summary(outcome: Outcome) -> Result<SessionSummary, ProtocolError> {
        match outcome? {
            Answer::Summary(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// The results and whether they are final.
    pub(crate) fn results(outcome: Outcome) -> Result<(Option<Json>, bool), ProtocolError> {
        match outcome? {
            Answer::Results { results, finished } => Ok((results, finished)),
            other => Err(unexpected(&other)),
        }
    }

    pub(crate) fn recording(outcome: Outcome) -> Result<String, ProtocolError> {
        match outcome? {
            Answer::Recording { json } => Ok(json),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(answer: &Answer) -> ProtocolError {
    tracing::error!(?answer, "a session answered something unexpected");
    ProtocolError::new(
        ErrorCode::Internal,
        "the game server answered something unexpected",
    )
}

/// Where a request's answer goes.
pub(crate) enum Reply {
    /// Nobody waits for it.
    None,
    /// A caller on this node.
    Local(oneshot::Sender<Outcome>),
    /// A caller on another node: this sends the answer there.
    Remote(Box<dyn FnOnce(Outcome) + Send>),
}

impl Reply {
    /// A reply to a caller on this node, and where it will arrive.
    pub(crate) fn local() -> (Reply, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (Reply::Local(tx), rx)
    }

    pub(crate) fn send(self, outcome: Outcome) {
        match self {
            Reply::None => {}
            Reply::Local(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Remote(send) => send(outcome),
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reply::None => "Reply::None",
            Reply::Local(_) => "Reply::Local",
            Reply::Remote(_) => "Reply::Remote",
        })
    }
}

/// What the node itself tells one of its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// The cluster's copy of this session was lost (Redis restarted): the
    /// next commit rewrites all of it.
    Resync,
    /// Another node owns this session now: stop without writing anything.
    Relinquish,
}

/// One item of a session's mailbox.
#[derive(Debug)]
pub(crate) enum Envelope {
    Request(Request, Reply),
    Control(Control),
}

/// The answer to `join`, `resume` and `host`: the frames to send, in order.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Attached {
    pub member: MemberId,
    /// The session's `seq` at the welcome; later messages have a higher one.
    pub seq: u64,
    /// `welcome` first, then any replayed messages.
    #[serde(with = "frames")]
    pub frames: Vec<Utf8Bytes>,
}

/// Frames as a list of JSON strings.
mod frames {
    use hyper_tungstenite::tungstenite::Utf8Bytes;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(frames: &[Utf8Bytes], s: S) -> Result<S::Ok, S::Error> {
        let strs: Vec<&str> = frames.iter().map(Utf8Bytes::as_str).collect();
        strs.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Utf8Bytes>, D::Error> {
        let strings = Vec::<String>::deserialize(d)?;
        Ok(strings.into_iter().map(Utf8Bytes::from).collect())
    }
}

/// `GET /api/sessions/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionSummary {
    pub session: String,
    pub game: String,
    pub title: String,
    pub code: String,
    pub seq: u64,
    pub owner: String,
    pub players: Vec<PlayerSummary>,
    pub ended: bool,
    pub rules_version: String,
    pub state_bytes: usize,
    pub timers: usize,
    /// When the next timer is due (Unix ms), if one is waiting.
    #[serde(default)]
    pub next_timer_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlayerSummary {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub connected: bool,
}
