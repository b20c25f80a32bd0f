//! Recess: a game-session server for classrooms.
//!
//! A teacher hosts a game, students join with a 6-digit code, and the rules —
//! a Lua file in `games/` — decide what happens. Module map:
//!
//! - [`server`]: the HTTP listener, routing, connection limits, shutdown;
//!   it puts a node together.
//! - `connection`: one WebSocket: reading frames, routing them, ordered writing.
//! - `api`, `web`: the REST API under `/api`; the browser pages from `web/`.
//! - `node`: what a process shares (the sessions it owns, join codes), and
//!   the one place a request finds its session, here or on its owner.
//! - `session`: the session actor (one task per session), what it is
//!   asked and given, its stored records, the replay log and view patches.
//! - [`script`]: the Lua sandbox, the `ctx` API, game loading and hot reload.
//! - `delivery`: this node's subscriptions and the writing of frames to sockets.
//! - `cluster`: what differs between a node alone and one in a cluster,
//!   behind one trait; the Redis implementation.
//! - `store`: the sled snapshot cache that lets a restarted node resume.
//! - `auth`, `limits`: who may do what (keys, origins, client addresses)
//!   and the rate limits; docs/security.md states the rules.
//! - [`config`], `metrics`: flags and `/metrics` counters.
//! - `headless`: sessions with no server (the same actor, an in-memory
//!   sink, a clock that moves when told); [`authoring`]: `recess test` and
//!   `recess sim` on top of it.
//!
//! Only what the `recess` binary, its examples and tests use is public:
//! [`Config`], [`Server`], [`script`], [`authoring`], [`Role`] and [`view`].
//!
//! `ARCHITECTURE.md` describes how these fit together and what each must never do.

#![warn(unreachable_pub, missing_docs)]

mod api;
mod auth;
pub mod authoring;
mod cluster;
pub mod config;
mod connection;
mod delivery;
mod headless;
mod http;
mod join;
mod keys;
mod limits;
mod metrics;
mod node;
mod protocol;
pub mod script;
pub mod server;
mod session;
mod store;
mod web;
mod webhook;

pub use config::Config;
pub use protocol::Role;
pub use server::Server;
pub use session::view;
