//! Sessions: one actor per running game, and the plumbing around it.
//!
//! - [`actor`]: `SessionActor`, the task that owns a session's Lua state,
//!   members, `seq` counter, timers and replay log.
//! - [`names`]: which nicknames are accepted, and when two are the same.
//! - [`replay`]: the window of recent messages a resume is served from.
//! - [`view`]: merge patches between views.
//!
//! Architecture Invariant: only a session's actor changes that session's
//! state, one command at a time; everything else sends it a [`Command`].

pub mod actor;
pub mod env;
pub mod names;
pub mod record;
pub mod replay;
pub mod view;

use std::sync::Arc;

use hyper_tungstenite::tungstenite::Utf8Bytes;
use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::oneshot;

use crate::protocol::ProtocolError;

pub use actor::{Ended, SessionActor};
pub use env::{Clock, CommitError, CommitSink, SessionEnv, Settings, SystemClock};

/// Session ids are random, URL-safe and long enough not to be guessed.
pub type SessionId = Arc<str>;
/// Member ids are random and unique within their session (`p` + 8 chars).
pub type MemberId = Arc<str>;

/// Who a session message is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Audience {
    /// Every member of the session when the message was sent.
    All,
    Members(Vec<MemberId>),
}

/// One message of a session, encoded once by its owner; every node and socket
/// that delivers it shares the same bytes.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The session's sequence number; 0 for an unsequenced notice (such as a
    /// script error shown to the host), which is neither logged nor replayed.
    pub seq: u64,
    pub audience: Audience,
    /// The whole frame as it goes on the wire.
    pub frame: Utf8Bytes,
    /// After delivery, the audience's subscriptions end (a kick).
    pub revoke: bool,
}

/// The reply to `join`, `resume` and `host`: the frames to send, in order.
#[derive(Debug)]
pub struct Attached {
    pub member: MemberId,
    /// The session's `seq` at the welcome; later messages have a higher one.
    pub seq: u64,
    /// `welcome` first, then any replayed messages.
    pub frames: Vec<Utf8Bytes>,
}

pub type Reply<T> = oneshot::Sender<Result<T, ProtocolError>>;

/// A request to a session actor.
#[derive(Debug)]
pub enum Command {
    Join {
        member: MemberId,
        secret: String,
        name: String,
        /// The client's retry key: a join with the same name and nonce as an
        /// existing seat answers with that seat.
        nonce: Option<String>,
        reply: Reply<Attached>,
    },
    Resume {
        member: MemberId,
        secret: String,
        last_seq: u64,
        reply: Reply<Attached>,
    },
    Action {
        member: MemberId,
        name: String,
        data: Json,
        reply: Reply<()>,
    },
    Leave {
        member: MemberId,
    },
    /// A member's socket went away (not a `leave`: the seat is kept).
    Disconnected {
        member: MemberId,
    },
    /// A socket that already holds this seat tells a new owner it is there
    /// (after a failover).
    Reattach {
        member: MemberId,
    },
    /// The cluster's copy of this session was lost (Redis restarted): the
    /// next commit rewrites all of it.
    Resync,
    /// Another node owns this session now: stop without writing anything.
    Relinquish,
    /// `POST /api/sessions/{id}/events`: runs the `event` handler.
    Event {
        name: String,
        data: Json,
        reply: Reply<()>,
    },
    /// `POST /api/sessions/{id}/broadcast`: an `event` to every member, no Lua.
    Broadcast {
        name: String,
        data: Json,
        reply: Reply<u64>,
    },
    Summary {
        reply: Reply<SessionSummary>,
    },
    /// The results after `ended`. With `host`, only if that seat is a host
    /// whose secret matches (the REST route's `?token=` form).
    Results {
        host: Option<(MemberId, String)>,
        reply: Reply<Option<Json>>,
    },
}

/// `GET /api/sessions/{id}`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SessionSummary {
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
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PlayerSummary {
    pub id: String,
    pub name: String,
    pub role: crate::protocol::Role,
    pub connected: bool,
}

/// Token a member presents to `resume`: `session.member.secret`.
pub fn make_token(session: &str, member: &str, secret: &str) -> String {
    format!("{session}.{member}.{secret}")
}

/// Splits a token into session, member and secret.
pub fn parse_token(token: &str) -> Option<(&str, &str, &str)> {
    let mut parts = token.splitn(3, '.');
    let (s, m, k) = (parts.next()?, parts.next()?, parts.next()?);
    (!s.is_empty() && !m.is_empty() && !k.is_empty()).then_some((s, m, k))
}

/// A random string of `len` characters from a URL-safe alphabet without
/// look-alikes, from the OS generator.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS generator does not fail on Linux; fall back to time-seeded
        // bytes rather than refusing service.
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    bytes
        .iter()
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect()
}

/// A 6-digit join code.
pub fn random_code() -> String {
    let mut b = [0u8; 4];
    let n = if getrandom::fill(&mut b).is_ok() {
        u32::from_le_bytes(b)
    } else {
        std::process::id() ^ (now_ms() as u32)
    };
    format!("{:06}", n % 1_000_000)
}

/// Unix time in milliseconds (what `ctx.now()` returns).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = make_token("s1", "p2", "k3.x");
        assert_eq!(parse_token(&t), Some(("s1", "p2", "k3.x")));
        assert_eq!(parse_token("a.b"), None);
        assert_eq!(parse_token("..x"), None);
    }

    #[test]
    fn ids_and_codes_have_their_shape() {
        assert_eq!(random_id(12).len(), 12);
        let c = random_code();
        assert_eq!(c.len(), 6);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
}
