//! Recess: a game-session server for classrooms.
//!
//! A teacher hosts a game, students join with a 6-digit code, and the rules —
//! a Lua file in `games/` — decide what happens. Module map:
//!
//! - [`server`]: the HTTP listener, routing, connection limits, shutdown.
//! - [`connection`]: one WebSocket: reading frames, routing them, ordered writing.
//! - [`protocol`]: wire protocol v1 — every client and server frame, error codes.
//! - [`node`]: what a process shares: sessions it owns, join codes, store, bus.
//! - [`session`]: the session actor (one task per session), fan-out to sockets,
//!   the replay log and view patches.
//! - [`script`]: the Lua sandbox, the `ctx` API, game loading and hot reload.
//! - [`cluster`]: the bus trait that carries session messages between nodes.
//! - [`store`]: the sled snapshot cache that lets a restarted node resume.
//! - [`api`]: the REST API under `/api`.
//! - [`web`]: the browser pages embedded from `web/`.
//! - [`auth`], [`limits`]: who may do what (keys, origins, client addresses)
//!   and the rate limits; docs/security.md states the rules.
//! - [`config`], [`metrics`]: flags and `/metrics` counters.
//!
//! `ARCHITECTURE.md` describes how these fit together and what each must never do.

#![warn(unreachable_pub)]

mod api;
mod auth;
mod cluster;
pub mod config;
mod connection;
mod delivery;
mod http;
mod limits;
mod metrics;
mod node;
mod protocol;
pub mod script;
pub mod server;
mod session;
mod store;
mod web;

pub use config::Config;
pub use protocol::Role;
pub use server::Server;
pub use session::view;
