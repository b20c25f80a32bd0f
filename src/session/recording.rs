//! A session's recording: every input that changed it, each with its time,
//! beside the seed of its `ctx.random`, and every message it sent. `recess
//! replay` runs the inputs again through the same actor code and checks that
//! the messages come out byte for byte the same (`authoring::replay`).
//!
//! What is recorded, in the order the actor took it ([`Input`]): joins,
//! leaves, resumes, dropped and returning connections, actions, REST events
//! and broadcasts, timer firings, view passes, and each new version of the
//! rules the session was offered. Secrets are not recorded (a recording is
//! no key to anyone's seat): join retry keys are kept only as a hash, which
//! is all the actor compares. What is checked ([`Output`]): every sequenced
//! message and notice, and the answer to every input that has one.
//!
//! A recording is bounded by `--recording-kib`: past that many bytes the
//! messages are kept as hashes (still compared, not shown); past twice that
//! the recording stops, and a replay checks what it holds. A session that
//! was restored (after a restart or a failover) has no recording: one covers
//! a session from its start on one node.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use hyper_tungstenite::tungstenite::Utf8Bytes;

use super::{Audience, MemberId, NameMode};
use crate::protocol::Role;
use crate::script::catalog::fnv64;
use crate::script::{Limits, Rules};

/// The file format's version, `"recording"` in the file.
pub(crate) const FORMAT: u32 = 1;

/// One thing that happened to the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub(crate) enum Input {
    /// The session was created (always the first input): `init`, the host's
    /// `join` and view.
    Start,
    Join {
        member: String,
        name: String,
        /// The hash of the client's join retry key.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// `player` unless written (`bot`).
        #[serde(default = "Role::joiner", skip_serializing_if = "Role::is_player")]
        role: Role,
    },
    /// A socket took the seat again with its token.
    Resume {
        member: String,
    },
    /// A member's socket went away.
    Disconnect {
        member: String,
    },
    /// A socket that holds the seat told a new owner it is there.
    Reattach {
        member: String,
    },
    Action {
        member: String,
        name: String,
        #[serde(default)]
        data: Json,
    },
    Leave {
        member: String,
    },
    /// `POST /api/sessions/{id}/events`.
    Event {
        name: String,
        #[serde(default)]
        data: Json,
    },
    /// `POST /api/sessions/{id}/broadcast`.
    Broadcast {
        name: String,
        #[serde(default)]
        data: Json,
    },
    /// The timers due at this time fired.
    Timers,
    /// A view pass: every member's view was built and patched.
    Views,
    /// From here on the catalog offered this version of the rules (the
    /// session switches at its next handler call, or reports why not).
    Rules {
        version: String,
    },
    /// The saved game file failed to load (the hosts were told).
    Broken {
        message: String,
    },
}

/// An input and when it came, in ms since the session started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub t: i64,
    #[serde(flatten)]
    pub input: Input,
}

/// Something the session sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Output {
    /// The input it came from (its index in `steps`).
    pub step: usize,
    /// The message's `seq`; 0 for a notice or an answer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Who it was for; absent: every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Vec<String>>,
    #[serde(flatten)]
    pub what: What,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum What {
    /// A frame, exactly as it went on the wire.
    Frame(String),
    /// A frame past the recording's size limit: its FNV-1a hash and length.
    Digest { hash: String, bytes: usize },
    /// The answer to the input's sender: `"ok"`, `{"seq": n}`, the welcome
    /// view of a join (`{"view": …}`) or `{"error": code, "message": …}`.
    Answer(Json),
}

impl What {
    /// Whether `self` (recorded) and `other` (replayed) are the same message.
    pub(crate) fn matches(&self, other: &What) -> bool {
        match (self, other) {
            (What::Digest { hash, bytes }, What::Frame(f))
            | (What::Frame(f), What::Digest { hash, bytes }) => {
                f.len() == *bytes && digest(f) == *hash
            }
            (a, b) => a == b,
        }
    }

    /// The message as a report shows it.
    pub(crate) fn show(&self) -> String {
        match self {
            What::Frame(f) => f.clone(),
            What::Digest { hash, bytes } => {
                format!("(a {bytes}-byte message past the recording's size limit, hash {hash})")
            }
            What::Answer(a) => format!("answer {a}"),
        }
    }
}

/// The hash a [`What::Digest`] keeps.
pub(crate) fn digest(frame: &str) -> String {
    format!("{:016x}", fnv64(frame.as_bytes()))
}

/// The sandbox limits the session ran under (a replay uses the same).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecordedLimits {
    pub cpu_units: u64,
    pub cpu_time_ms: u64,
    pub memory_bytes: usize,
    pub message_bytes: usize,
    pub call_output_bytes: usize,
    pub view_bytes: usize,
}

impl From<Limits> for RecordedLimits {
    fn from(l: Limits) -> Self {
        RecordedLimits {
            cpu_units: l.cpu_units,
            cpu_time_ms: u64::try_from(l.cpu_time.as_millis()).unwrap_or(u64::MAX),
            memory_bytes: l.memory_bytes,
            message_bytes: l.message_bytes,
            call_output_bytes: l.call_output_bytes,
            view_bytes: l.view_bytes,
        }
    }
}

impl From<RecordedLimits> for Limits {
    fn from(l: RecordedLimits) -> Self {
        Limits {
            cpu_units: l.cpu_units,
            cpu_time: std::time::Duration::from_millis(l.cpu_time_ms),
            memory_bytes: l.memory_bytes,
            message_bytes: l.message_bytes,
            call_output_bytes: l.call_output_bytes,
            view_bytes: l.view_bytes,
        }
    }
}

/// How the session was started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Header {
    pub session: String,
    pub code: String,
    pub game: String,
    /// The seed of `ctx.random` and `math.random`.
    pub seed: u64,
    pub params: Json,
    /// Unix ms when the session started; step times count from here.
    pub created_ms: i64,
    /// The host's member id.
    pub host: String,
    /// Whether the host had a socket from the start (false: created by REST).
    pub host_attached: bool,
    pub limits: RecordedLimits,
    /// How players are named (`names` of the `host` frame).
    #[serde(default, skip_serializing_if = "NameMode::is_typed")]
    pub names: NameMode,
    /// The list of `--blocked-names` when it replaced the shipped one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_names: Option<String>,
}

/// One version of the rules: its files by name in the games folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RulesFiles {
    pub version: String,
    pub files: BTreeMap<String, String>,
}

impl RulesFiles {
    fn of(rules: &Rules) -> RulesFiles {
        let mut files = BTreeMap::new();
        files.insert(rules.main.chunk_name.clone(), rules.main.text.to_string());
        for m in rules.modules.values() {
            files.insert(m.chunk_name.clone(), m.text.to_string());
        }
        // A spreadsheet game: its rows, as CSV whatever the file was, load
        // as the same version (the version hashes the cells).
        if let Some(sheet) = &rules.sheet {
            files.insert(
                format!("{}.{}.csv", rules.game, sheet.rules),
                crate::script::sheet::to_csv(&sheet.rows),
            );
        }
        RulesFiles {
            version: rules.version.clone(),
            files,
        }
    }
}

/// A recording as a file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RecordingFile {
    /// [`FORMAT`].
    pub recording: u32,
    /// The version of Recess that recorded it.
    pub recess: String,
    #[serde(flatten)]
    pub header: Header,
    /// Every version of the rules the session was offered, first the one
    /// it started with.
    pub rules: Vec<RulesFiles>,
    pub steps: Vec<Step>,
    pub outputs: Vec<Output>,
    /// The recording stopped at its size limit: later inputs are missing.
    #[serde(default)]
    pub stopped: bool,
}

/// An output as a session's recording holds it in memory: a frame shares
/// the bytes the session sent (with its replay log and its deliveries), an
/// audience the member ids.
struct Held {
    step: usize,
    seq: u64,
    to: Option<Vec<MemberId>>,
    what: HeldWhat,
}

enum HeldWhat {
    Frame(Utf8Bytes),
    Digest {
        hash: String,
        bytes: usize,
    },
    /// As JSON text: a small answer's value tree takes many times its text
    /// (`{"view": {...}}` is two maps), and the budget counts the text.
    Answer(Box<str>),
}

impl Held {
    fn output(&self) -> Output {
        Output {
            step: self.step,
            seq: self.seq,
            to: self
                .to
                .as_ref()
                .map(|ids| ids.iter().map(|m| m.to_string()).collect()),
            what: match &self.what {
                HeldWhat::Frame(f) => What::Frame(f.as_str().to_owned()),
                HeldWhat::Digest { hash, bytes } => What::Digest {
                    hash: hash.clone(),
                    bytes: *bytes,
                },
                HeldWhat::Answer(a) => What::Answer(serde_json::from_str(a).unwrap_or(Json::Null)),
            },
        }
    }
}

/// A recording being made by a session's actor.
pub(crate) struct Recording {
    header: Header,
    rules: Vec<Arc<Rules>>,
    /// Each step as its JSON text, which is what the budget counts (an
    /// action's data as a value tree takes many times its text).
    steps: Vec<Box<str>>,
    outputs: Vec<Held>,
    /// The version the last `Rules` input (or the start) named.
    offered: String,
    bytes: usize,
    /// Bytes after which frames are kept as hashes; twice this, it stops.
    limit: usize,
    stopped: bool,
}

/// Bytes an output costs beyond its text (its entry, `to`, numbers).
const ENTRY_BYTES: usize = 48;

/// A step as the recording keeps it (a `Step` always serializes).
fn step_text(step: &Step) -> Box<str> {
    serde_json::to_string(step)
        .unwrap_or_default()
        .into_boxed_str()
}

impl Recording {
    /// A recording of a session that starts now with `rules`.
    pub(crate) fn start(header: Header, rules: Arc<Rules>, limit: usize) -> Recording {
        let offered = rules.version.clone();
        Recording {
            header,
            rules: vec![rules],
            steps: vec![step_text(&Step {
                t: 0,
                input: Input::Start,
            })],
            outputs: Vec::new(),
            offered,
            bytes: 0,
            limit,
            stopped: false,
        }
    }

    /// Records an input taken at Unix ms `now`, after noting `offered` as
    /// the rules the catalog offers from now on, if they are new.
    pub(crate) fn input(&mut self, now: i64, offered: Option<&Arc<Rules>>, input: Input) {
        if let Some(rules) = offered
            && rules.version != self.offered
        {
            self.offered = rules.version.clone();
            // Shared with the catalog: not counted against the limit.
            if !self.rules.iter().any(|r| r.version == rules.version) {
                self.rules.push(rules.clone());
            }
            self.push_step(
                now,
                Input::Rules {
                    version: rules.version.clone(),
                },
            );
        }
        self.push_step(now, input);
    }

    fn push_step(&mut self, now: i64, input: Input) {
        if self.stopped {
            return;
        }
        if self.bytes >= self.limit.saturating_mul(2) {
            self.stopped = true;
            return;
        }
        let step = Step {
            t: now - self.header.created_ms,
            input,
        };
        let text = step_text(&step);
        self.bytes += ENTRY_BYTES + text.len();
        self.steps.push(text);
    }

    /// Records a frame sent to `audience`.
    pub(crate) fn frame(&mut self, seq: u64, audience: &Audience, frame: &Utf8Bytes) {
        let what = if self.bytes + frame.len() > self.limit {
            HeldWhat::Digest {
                hash: digest(frame.as_str()),
                bytes: frame.len(),
            }
        } else {
            self.bytes += frame.len();
            HeldWhat::Frame(frame.clone())
        };
        let to = match audience {
            Audience::All => None,
            Audience::Members(ids) => {
                self.bytes += ids.len() * std::mem::size_of::<MemberId>();
                Some(ids.clone())
            }
        };
        self.output(seq, to, what);
    }

    /// Records the answer `member` (or a REST caller) was given.
    pub(crate) fn answer(&mut self, member: Option<&str>, answer: Json) {
        let text = answer.to_string();
        self.bytes += text.len();
        let to = member.map(|m| vec![MemberId::from(m)]);
        self.output(0, to, HeldWhat::Answer(text.into_boxed_str()));
    }

    fn output(&mut self, seq: u64, to: Option<Vec<MemberId>>, what: HeldWhat) {
        if self.stopped {
            return;
        }
        self.bytes += ENTRY_BYTES;
        let step = self.steps.len().saturating_sub(1);
        self.outputs.push(Held {
            step,
            seq,
            to,
            what,
        });
    }

    /// The outputs recorded so far, as a file holds them.
    pub(crate) fn outputs(&self) -> Vec<Output> {
        self.outputs.iter().map(Held::output).collect()
    }

    /// The inputs recorded so far.
    pub(crate) fn steps(&self) -> Vec<Step> {
        self.steps
            .iter()
            .filter_map(|text| serde_json::from_str(text).ok())
            .collect()
    }

    /// The recording as a file holds it.
    pub(crate) fn file(&self) -> RecordingFile {
        RecordingFile {
            recording: FORMAT,
            recess: env!("CARGO_PKG_VERSION").to_owned(),
            header: self.header.clone(),
            rules: self.rules.iter().map(|r| RulesFiles::of(r)).collect(),
            steps: self.steps(),
            outputs: self.outputs(),
            stopped: self.stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn steps_and_outputs_read_back_as_written() {
        let steps = vec![
            Step {
                t: 0,
                input: Input::Start,
            },
            Step {
                t: 1500,
                input: Input::Action {
                    member: "pabc".into(),
                    name: "answer".into(),
                    data: json!({"choice": 2, "x": 0.5}),
                },
            },
            Step {
                t: 2000,
                input: Input::Timers,
            },
        ];
        let text = serde_json::to_string(&steps).unwrap();
        assert!(
            text.contains(r#"{"t":1500,"do":"action","member":"pabc""#),
            "{text}"
        );
        let back: Vec<Step> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, steps);
        let outputs = vec![
            Output {
                step: 1,
                seq: 7,
                to: None,
                what: What::Frame("{\"type\":\"event\"}".into()),
            },
            Output {
                step: 1,
                seq: 0,
                to: Some(vec!["pabc".into()]),
                what: What::Answer(json!("ok")),
            },
        ];
        let text = serde_json::to_string(&outputs).unwrap();
        let back: Vec<Output> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, outputs);
    }

    #[test]
    fn a_digest_matches_only_its_frame() {
        let frame = r#"{"type":"view","seq":3}"#;
        let kept = What::Digest {
            hash: digest(frame),
            bytes: frame.len(),
        };
        assert!(kept.matches(&What::Frame(frame.into())));
        assert!(!kept.matches(&What::Frame(r#"{"type":"view","seq":4}"#.into())));
        assert!(What::Frame(frame.into()).matches(&What::Frame(frame.into())));
        assert!(!What::Frame(frame.into()).matches(&What::Answer(json!("ok"))));
    }
}
