//! Game rules: the Lua sandbox, the `ctx` API, loading and hot reload.
//!
//! Architecture Invariant: `script` knows nothing about sockets, the cluster
//! or persistence. It loads rules ([`catalog`]), runs them in a metered
//! sandbox ([`sandbox`], [`budget`], [`pattern`]) and turns handler calls into
//! effects and views ([`vm`], whose `ctx` table is built in `ctx`), rolling back with [`copy`] and converting what
//! leaves Lua with [`json`].

pub mod budget;
pub mod catalog;
pub mod copy;
mod ctx;
pub mod json;
mod json_text;
pub mod pattern;
pub mod sandbox;
pub mod saved;
pub mod sheet;
mod text;
pub mod vm;
pub mod vocabulary;
pub mod watch;

pub use catalog::{Catalog, GameChange, Rules};
pub use sandbox::Limits;
pub use saved::SavedState;
pub use vm::{CallOutcome, Effect, GameVm, NameRules, PlayerInfo, ScriptError, VmCounters};
