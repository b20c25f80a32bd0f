//! Tools for the people who write games: `recess check` ([`check`]) loads
//! and starts each game and says what is wrong, `recess test` ([`test`](mod@test))
//! runs a game's tests against headless sessions, `recess sim` ([`sim`])
//! plays one with bots, and `recess replay` ([`replay`]) runs a recorded
//! session again and compares every message.
//!
//! Architecture Invariant: authoring drives sessions only through
//! `headless` (or, for `replay`, a `SessionActor` with an in-memory
//! environment of its own): the same actor a node runs; it never reaches a
//! socket, a store or the cluster.

pub mod check;
pub mod replay;
pub mod sim;
pub mod test;

use serde_json::Value as Json;

/// A time since a session started, as transcripts show it: `mm:ss.mmm`.
pub(crate) fn elapsed(ms: i64) -> String {
    let ms = ms.max(0);
    format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}

/// Compact JSON, cut at `max` characters.
pub(crate) fn short(value: &Json, max: usize) -> String {
    truncate(&value.to_string(), max)
}

/// `text` cut at `max` characters, with an ellipsis if it was cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
