//! Rollback of a failed handler call at the cost of what the call wrote.
//!
//! A handler does not get the session's state table itself but a *proxy* of
//! it: an empty table whose metatable (`journal.lua`, compiled once per Lua
//! state) reads through to the raw table and, before every write, records
//! `(raw table, key, previous value)` in an undo journal. Reading a sub-table
//! gives that sub-table's proxy, cached per raw table (weak keys), so
//! `state.a == state.a` and aliasing behave as on the raw tables. Values
//! stored through a proxy are unwrapped first, so the raw state never holds a
//! proxy once a call has ended:
//! - a failed or refused call replays the journal backwards
//!   ([`Journal::rollback`]) and the state is exactly what it was, the same
//!   tables with the same contents;
//! - a successful call drops the journal ([`Journal::commit`]), after
//!   replacing any proxy that reached the state inside a table built during
//!   the call (`state.b = {inner = state.a}`) with its raw table.
//!
//! The journal lives in the session's Lua memory, so it counts against the
//! memory budget like anything else a call allocates.
//!
//! The sandbox's `next`, `rawget`, `rawset`, `rawlen`, `getmetatable` and
//! `setmetatable` are replaced by versions that treat a proxy as its raw
//! table; `pairs`, `ipairs`, `#` and the `table` library reach the raw table
//! through the proxy's metamethods (`__pairs`, `__index`, `__newindex`,
//! `__len`). `rawequal` needs nothing: there is one proxy per raw table.
//! Anything that leaves Lua as data (`ctx` arguments, log lines) goes through
//! [`plain`] first.
//!
//! Views get the raw state (no proxies, no journal): they run between calls
//! and are read-only by contract.
//!
//! Architecture Invariant: no proxy is ever reachable from the raw state
//! outside a handler call, so snapshots, views and JSON conversion only ever
//! see plain tables.

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua, MultiValue, Table, Value};

/// Chunk name of Recess's own Lua code (`=recess` shows as `recess` in
/// messages; game chunks are always named `*.lua`).
pub const INTERNAL_CHUNK: &str = "recess";

const SOURCE: &str = include_str!("journal.lua");

/// The Lua functions of one state's journal.
#[derive(Clone)]
pub struct Journal {
    /// `enter(handler, state, ...)`: calls `handler(proxy(state), ...)`.
    enter: Function,
    /// `commit(new, root) -> new`: see `journal.lua`.
    commit: Function,
    rollback: Function,
    plain: Function,
}

impl Journal {
    /// Calls `handler(proxy of state, args...)` and returns what it returned.
    pub fn enter(
        &self,
        handler: Function,
        state: Value,
        args: MultiValue,
    ) -> mlua::Result<MultiValue> {
        let mut all = args;
        all.push_front(state);
        all.push_front(Value::Function(handler));
        self.enter.call(all)
    }

    /// Ends a successful call: the state holds no proxy and the journal is
    /// empty. `new` is the table the handler returned (a proxy or not), if
    /// any; the result is that table as a raw table. `root` is the state the
    /// call started with.
    pub fn commit(&self, new: Option<Table>, root: Value) -> mlua::Result<Value> {
        self.commit.call((new, root))
    }

    /// Undoes every write of the call in progress, newest first. Must run
    /// unmetered and without the memory limit (the call may have failed for
    /// either): see `GameVm::undo`.
    pub fn rollback(&self) -> mlua::Result<()> {
        self.rollback.call(())
    }
}

/// Compiles the journal into `lua` and replaces the base functions it must
/// see through. `real_setmetatable` is Lua's own `setmetatable` (the sandbox
/// installs a guarded one, which proxies use for games' calls).
pub fn install(lua: &Lua, real_setmetatable: Function) -> mlua::Result<Journal> {
    let real_getmetatable = lua.create_function(|_, t: Table| Ok(t.metatable()))?;
    // Rollback must restore a metatable even where the call protected it
    // with `__metatable`; Lua's setmetatable would refuse.
    let force_setmetatable =
        lua.create_function(|_, (t, mt): (Table, Option<Table>)| t.set_metatable(mt))?;
    let (enter, commit, rollback, plain): (Function, Function, Function, Function) = lua
        .load(SOURCE)
        .set_name(format!("={INTERNAL_CHUNK}"))
        .set_mode(ChunkMode::Text)
        .call((
            real_setmetatable,
            real_getmetatable,
            force_setmetatable,
            Value::NULL,
        ))?;
    Ok(Journal {
        enter,
        commit,
        rollback,
        plain,
    })
}

/// `value` without proxies: itself when it holds none, else a copy. For
/// values a handler hands to the engine (`ctx.broadcast` data, …), which may
/// be or contain state tables.
pub fn plain(lua: &Lua, value: Value) -> mlua::Result<Value> {
    if !matches!(value, Value::Table(_)) {
        return Ok(value);
    }
    let plain = match lua.app_data_ref::<Journal>() {
        Some(j) => j.plain.clone(),
        None => return Ok(value),
    };
    plain.call(value)
}
