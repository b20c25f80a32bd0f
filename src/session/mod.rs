//! Sessions: one actor per running game, and the plumbing around it.
//!
//! - [`actor`]: `SessionActor`, the task that owns a session's Lua state,
//!   members, `seq` counter, timers and replay log.
//! - [`names`]: which nicknames are accepted, and when two are the same.
//! - [`replay`]: the window of recent messages a resume is served from.
//! - [`view`]: merge patches between views.
//!
//! Architecture Invariant: only a session's actor changes that session's
//! state, one command at a time; everything else sends it a [`Request`].

pub(crate) mod actor;
pub(crate) mod command;
pub(crate) mod env;
pub(crate) mod hooks;
pub(crate) mod mailbox;
pub(crate) mod names;
pub(crate) mod pressure;
pub(crate) mod record;
pub(crate) mod recording;
pub(crate) mod replay;
pub mod view;

use std::sync::Arc;

use hyper_tungstenite::tungstenite::Utf8Bytes;

pub(crate) use crate::protocol::NameMode;
use crate::protocol::{ErrorCode, ProtocolError};

pub(crate) use actor::{Ended, SessionActor};
pub(crate) use command::{
    Answer, Attached, Control, Envelope, Outcome, PlayerSummary, Reply, Request, SessionSummary,
};
pub(crate) use env::{CommitError, CommitSink, SessionEnv, Settings, SystemClock};
pub(crate) use mailbox::{MAILBOX, Mailbox, MailboxSender, mailbox};

/// Session ids are random, URL-safe and long enough not to be guessed.
pub(crate) type SessionId = Arc<str>;
/// Member ids are random and unique within their session (`p` + 8 chars).
pub(crate) type MemberId = Arc<str>;

/// Who a session message is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Audience {
    /// Every member of the session when the message was sent.
    All,
    Members(Vec<MemberId>),
}

/// One message of a session, encoded once by its owner; every node and socket
/// that delivers it shares the same bytes.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    /// The session's sequence number; 0 for an unsequenced notice (such as a
    /// script error shown to the host), which is neither logged nor replayed.
    pub seq: u64,
    pub audience: Audience,
    /// The whole frame as it goes on the wire.
    pub frame: Utf8Bytes,
    /// After delivery, the audience's subscriptions end (a kick).
    pub revoke: bool,
}

/// The answer for a session that is not (or no longer) there.
pub(crate) fn unknown_session() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownSession,
        "that session does not exist (any more)",
    )
}

/// Token a member presents to `resume`: `session.member.secret`.
pub(crate) fn make_token(session: &str, member: &str, secret: &str) -> String {
    format!("{session}.{member}.{secret}")
}

/// Splits a token into session, member and secret.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str, &str)> {
    let mut parts = token.splitn(3, '.');
    let (s, m, k) = (parts.next()?, parts.next()?, parts.next()?);
    (!s.is_empty() && !m.is_empty() && !k.is_empty()).then_some((s, m, k))
}

/// A new session id: 12 random characters.
pub(crate) fn new_session_id() -> SessionId {
    random_id(12).into()
}

/// A new member id: `p` and 8 random characters.
pub(crate) fn new_member_id() -> MemberId {
    format!("p{}", random_id(8)).into()
}

/// A new seat secret: 24 random characters (120 bits).
pub(crate) fn new_secret() -> String {
    random_id(24)
}

/// A new seed for a session's `ctx.random`, from the OS generator.
pub(crate) fn new_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}

/// A random string of `len` characters from a URL-safe alphabet without
/// look-alikes, from the OS generator.
pub(crate) fn random_id(len: usize) -> String {
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
pub(crate) fn random_code() -> String {
    let mut b = [0u8; 4];
    let n = if getrandom::fill(&mut b).is_ok() {
        u32::from_le_bytes(b)
    } else {
        std::process::id() ^ (now_ms() as u32)
    };
    format!("{:06}", n % 1_000_000)
}

/// Unix time in milliseconds (what `ctx.now()` returns).
pub(crate) fn now_ms() -> i64 {
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
