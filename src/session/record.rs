//! What a session stores: the records a commit writes and a restore reads
//! back, in the form every store (sled, Redis) keeps them.
//!
//! The session actor produces these; `store` and `cluster` keep their bytes
//! without interpreting game state.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::hooks::{Hook, Outbox};
use super::{Audience, MemberId, NameMode, Outgoing, SessionId};
use crate::protocol::Role;
use crate::script::VmCounters;
use crate::script::saved::join_fields;

/// A stored message that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("a stored message is corrupt")]
pub struct CorruptMessage;

/// Everything needed to bring a session back, except its views and messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
/// A commit writes it borrowing the state and the report from the session
/// (they can be large, and a commit should not copy them); what is read
/// back owns them (`SessionSnapshot<'static>`).
pub(crate) struct SessionSnapshot<'a> {
    pub id: String,
    pub code: String,
    pub game: String,
    pub rules_version: String,
    /// The `seq` when the snapshot was written; later messages raise it.
    pub seq: u64,
    /// The game state as JSON text (written as it was saved, not re-encoded),
    /// when it is not kept as one record per field (`fields`): a state
    /// that is not an object, and every snapshot of older stores. What is
    /// read back always has it (`StoredSession::assemble` puts the fields
    /// together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Cow<'a, RawValue>>,
    /// The names of the state's fields, in order, when each is a record
    /// of its own (a top-level object): a commit writes only those whose
    /// text changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<Cow<'a, str>>>,
    /// Members as snapshots written before member records had keys of
    /// their own held them; empty in new snapshots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberRecord>,
    pub timers: Vec<TimerRecord>,
    pub counters: VmCounters,
    pub ended: Option<Json>,
    pub created_ms: i64,
    /// When the session last did anything (for idle expiry).
    pub active_ms: i64,
    /// Name keys (`session::names::name_key`) of members removed by a kick,
    /// who may not join again until the game readmits them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_names: Vec<String>,
    /// How players are named.
    #[serde(default, skip_serializing_if = "NameMode::is_typed")]
    pub names: NameMode,
    /// What generated names are drawn from (`names::generated_name`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub name_seed: u64,
    /// The results of the last `ctx.report` (before the game ended), in
    /// snapshots of older stores, and when read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Cow<'a, RawValue>>,
    /// Whether there is a report, kept as a record of its own (written
    /// when it changes, not with every snapshot).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_apart: bool,
    /// The webhooks not yet delivered everywhere (`session::hooks`).
    #[serde(default, skip_serializing_if = "no_hooks")]
    pub hooks: Cow<'a, Outbox>,
}

#[expect(
    clippy::ptr_arg,
    reason = "serde's skip_serializing_if passes the field's type"
)]
fn no_hooks(outbox: &Cow<'_, Outbox>) -> bool {
    outbox.next == 0 && outbox.is_empty()
}

/// A value kept twice: as JSON to serve, and as the text every snapshot
/// stores, encoded once when the value is set (the results of `ctx.report`
/// are large and change rarely; the snapshot is written at every commit).
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub json: Json,
    pub text: Box<RawValue>,
}

impl Encoded {
    pub(crate) fn new(json: Json) -> Encoded {
        // A `Value` always serializes (the default is `null`).
        let text = serde_json::value::to_raw_value(&json).unwrap_or_default();
        Encoded { json, text }
    }

    /// What a snapshot stored, read back.
    pub(crate) fn read(text: Box<RawValue>) -> Result<Encoded, serde_json::Error> {
        Ok(Encoded {
            json: serde_json::from_str(text.get())?,
            text,
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    pub id: String,
    /// The name everyone sees.
    pub name: String,
    /// In a session with generated names, the name the student typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_name: Option<String>,
    pub role: Role,
    pub secret: String,
    pub joined_seq: u64,
    /// Whether this member has ever received a full view (REST-created hosts
    /// have not until their first resume).
    pub welcomed: bool,
    #[serde(default)]
    pub join_nonce: Option<String>,
    /// Position in the session's member list (join order).
    #[serde(default)]
    pub order: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TimerRecord {
    pub id: u64,
    /// Unix ms at which it fires.
    pub due_ms: i64,
    pub name: String,
    pub data: Json,
    /// Set by what a member, the API or the session's creation did (not by
    /// another timer): while it waits, the session is not idle.
    #[serde(default)]
    pub held: bool,
}

/// One commit of a session actor.
pub(crate) struct SessionWrite<'a> {
    pub id: &'a str,
    pub session: &'a SessionId,
    pub code: &'a str,
    /// `None` when the state could not be serialized (the old snapshot stays).
    pub snapshot: Option<Vec<u8>>,
    /// State fields new or changed since the last commit (name, JSON text),
    /// written with the snapshot; every field in a `full` write.
    pub fields: Vec<(Cow<'a, str>, &'a str)>,
    /// State fields gone since the last commit.
    pub removed_fields: Vec<String>,
    /// The report (JSON text), when it changed.
    pub report: Option<&'a str>,
    /// Everything (whole replay window, every view) rather than what changed:
    /// used to rebuild a copy that was lost (a Redis restart).
    pub full: bool,
    pub messages: &'a [Outgoing],
    /// Sequence numbers that fell out of the replay window.
    pub evicted: Vec<u64>,
    /// Members whose record or view is new or changed.
    pub members: Vec<MemberWrite<'a>>,
    /// Members gone: their record and view are removed.
    pub removed_members: Vec<&'a str>,
    /// Webhooks this batch made (the snapshot's outbox holds them for the
    /// stores; a tool's sink keeps them to show, `s:emitted`).
    pub hooks: &'a [Hook],
}

/// One member's stored parts. Both are given when either changed: the local
/// store keeps them in one value, Redis writes only the changed ones.
pub(crate) struct MemberWrite<'a> {
    pub id: &'a str,
    /// JSON [`MemberRecord`].
    pub record: Vec<u8>,
    pub record_changed: bool,
    /// JSON of the view the member last received.
    pub view: Vec<u8>,
    pub view_changed: bool,
}

/// A session's records as a store read them, before they are put together.
#[derive(Default)]
pub(crate) struct StoredParts {
    pub members: Vec<MemberRecord>,
    pub messages: Vec<Outgoing>,
    pub views: Vec<(String, Json)>,
    /// The state's fields by name (JSON text).
    pub fields: HashMap<String, String>,
    /// The report kept apart (JSON text).
    pub report: Option<String>,
}

/// A session as read back at start-up (or from Redis at a takeover).
pub(crate) struct StoredSession {
    pub snapshot: SessionSnapshot<'static>,
    /// In join order.
    pub members: Vec<MemberRecord>,
    pub messages: Vec<Outgoing>,
    pub views: Vec<(String, Json)>,
}

impl StoredSession {
    /// Puts the parts read back together: the state from its fields and
    /// the report (the snapshot then has both, as older ones held them),
    /// members in join order (from the old snapshot format too), messages
    /// in `seq` order. A field or report the snapshot names but the store
    /// lacks is an error.
    pub(crate) fn assemble(
        mut snapshot: SessionSnapshot<'static>,
        parts: StoredParts,
    ) -> Result<StoredSession, String> {
        let StoredParts {
            mut members,
            mut messages,
            views,
            mut fields,
            report,
        } = parts;
        if let Some(names) = snapshot.fields.take() {
            let mut texts = Vec::with_capacity(names.len());
            for name in &names {
                let text = fields
                    .remove(&**name)
                    .ok_or_else(|| format!("the state's field {name:?} is missing"))?;
                texts.push(text);
            }
            let text = join_fields(names.iter().map(|n| &**n).zip(texts.iter().map(|t| &**t)));
            let state = RawValue::from_string(text)
                .map_err(|e| format!("the stored state is corrupt: {e}"))?;
            snapshot.state = Some(Cow::Owned(state));
        }
        if snapshot.state.is_none() {
            return Err("the snapshot has no state".to_owned());
        }
        if std::mem::take(&mut snapshot.report_apart) {
            let text = report.ok_or("the stored report is missing")?;
            let report = RawValue::from_string(text)
                .map_err(|e| format!("the stored report is corrupt: {e}"))?;
            snapshot.report = Some(Cow::Owned(report));
        }
        if members.is_empty() {
            members = std::mem::take(&mut snapshot.members)
                .into_iter()
                .enumerate()
                .map(|(i, m)| MemberRecord {
                    order: i as u64,
                    ..m
                })
                .collect();
        }
        members.sort_by_key(|m| m.order);
        messages.sort_by_key(|m| m.seq);
        Ok(StoredSession {
            snapshot,
            members,
            messages,
            views,
        })
    }

    /// The session's last `seq`: its snapshot's or its newest message's.
    pub(crate) fn seq(&self) -> u64 {
        let newest = self.messages.last().map_or(0, |m| m.seq);
        self.snapshot.seq.max(newest)
    }
}

/// `[seq:8][revoke:1][n:2]([len:2][id])*[frame]`
pub(crate) fn encode_message(m: &Outgoing) -> Vec<u8> {
    let ids: &[MemberId] = match &m.audience {
        Audience::All => &[],
        Audience::Members(ids) => ids,
    };
    let mut out = Vec::with_capacity(m.frame.len() + 16 + ids.len() * 12);
    out.extend_from_slice(&m.seq.to_be_bytes());
    out.push(u8::from(m.revoke));
    let n = match m.audience {
        Audience::All => u16::MAX,
        Audience::Members(_) => ids.len().min(u16::MAX as usize - 1) as u16,
    };
    out.extend_from_slice(&n.to_be_bytes());
    for id in ids.iter().take(n as usize) {
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(m.frame.as_bytes());
    out
}

/// Reads back a message `encode_message` wrote.
pub(crate) fn decode_message(b: &[u8]) -> Result<Outgoing, CorruptMessage> {
    let corrupt = || CorruptMessage;
    let take =
        |b: &[u8], at: usize, n: usize| b.get(at..at + n).ok_or_else(corrupt).map(<[u8]>::to_vec);
    let seq = u64::from_be_bytes(take(b, 0, 8)?.try_into().map_err(|_| corrupt())?);
    let revoke = take(b, 8, 1)?[0] == 1;
    let n = u16::from_be_bytes(take(b, 9, 2)?.try_into().map_err(|_| corrupt())?);
    let mut at = 11;
    let audience = if n == u16::MAX {
        Audience::All
    } else {
        let mut ids = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len =
                u16::from_be_bytes(take(b, at, 2)?.try_into().map_err(|_| corrupt())?) as usize;
            let id = String::from_utf8(take(b, at + 2, len)?).map_err(|_| corrupt())?;
            ids.push(MemberId::from(id));
            at += 2 + len;
        }
        Audience::Members(ids)
    };
    let frame =
        String::from_utf8(b.get(at..).ok_or_else(corrupt)?.to_vec()).map_err(|_| corrupt())?;
    Ok(Outgoing {
        seq,
        audience,
        frame: frame.into(),
        revoke,
    })
}
