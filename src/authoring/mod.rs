//! Tools for the people who write games: `recess check` ([`check`]) loads
//! and starts each game and says what is wrong, `recess test` ([`test`]) runs a
//! game's tests against headless sessions, and `recess sim` ([`sim`]) plays
//! one with bots.
//!
//! Architecture Invariant: authoring drives sessions only through
//! `headless`, the same actor a node runs; it never reaches a socket, a
//! store or the cluster.

pub mod check;
pub mod sim;
pub mod test;
