//! The Lua 5.4 sandbox every game runs in.
//!
//! One `mlua::Lua` state per session (about 32 KiB idle), so a script can only
//! ever hurt its own session. What a state gets:
//! - the `string`, `table`, `math` and `utf8` libraries and the safe base
//!   functions; no `io`, `os`, `debug`, `coroutine`, `package`, `load`,
//!   `loadstring`, `loadfile`, `dofile`, `collectgarbage` or `string.dump`;
//! - chunks are loaded as text only (`ChunkMode::Text`), never bytecode;
//! - an instruction hook that charges every 1000 VM instructions to the call's
//!   [`CallBudget`], and `pcall`/`xpcall` wrappers that re-raise once that budget
//!   is spent (otherwise `while true do pcall(f) end` would swallow the error);
//! - `string.find/match/gmatch/gsub` replaced by the metered matcher in
//!   `script::pattern`, because C pattern matching never reaches the hook;
//! - a memory limit (`set_memory_limit`), which turns runaway allocations into
//!   a clean "not enough memory" error;
//! - `setmetatable` refusing `__gc`, so no script code runs outside a metered call.

use std::sync::Arc;

use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::budget::{self, BUDGET_MESSAGE, CallBudget};

/// Instructions between two hook calls: small enough to stop a loop quickly,
/// large enough that metering costs well under 1% of a call.
const HOOK_EVERY: u32 = 1000;

/// Resource limits of one session's Lua state.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Budget units (VM instructions + pattern steps) one handler call may spend.
    pub cpu_units: u64,
    /// Bytes the whole state may allocate.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_units: 20_000_000,
            memory_bytes: 16 << 20,
        }
    }
}

/// Creates a sandboxed state metered by `budget`.
pub fn new_state(limits: Limits, budget: Arc<CallBudget>) -> mlua::Result<Lua> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8,
        LuaOptions::new(),
    )?;
    let globals = lua.globals();
    for name in [
        "load",
        "loadstring",
        "loadfile",
        "dofile",
        "collectgarbage",
        "require",
        "print",
    ] {
        globals.raw_set(name, Value::Nil)?;
    }
    let string: Table = globals.get("string")?;
    string.raw_set("dump", Value::Nil)?;
    let math: Table = globals.get("math")?;
    math.raw_set("randomseed", Value::Nil)?;

    for name in ["pcall", "xpcall"] {
        let original: Function = globals.get(name)?;
        let wrapped = lua.create_function(move |lua, args: MultiValue| {
            let results: MultiValue = original.call(args)?;
            if budget::is_spent(lua) {
                return Err(mlua::Error::runtime(BUDGET_MESSAGE));
            }
            Ok(results)
        })?;
        globals.raw_set(name, wrapped)?;
    }

    let setmetatable: Function = globals.get("setmetatable")?;
    let guarded = lua.create_function(move |_, (table, meta): (Value, Value)| {
        if let Value::Table(m) = &meta
            && m.raw_get::<Value>("__gc")? != Value::Nil
        {
            return Err(mlua::Error::runtime(
                "setmetatable: __gc metamethods are not allowed in games",
            ));
        }
        setmetatable.call::<Value>((table, meta))
    })?;
    globals.raw_set("setmetatable", guarded)?;
    globals.raw_set("null", Value::NULL)?;

    super::pattern::install(&lua)?;

    lua.set_app_data(budget);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        |lua, debug| {
            if budget::charge(lua, u64::from(HOOK_EVERY)).is_ok() {
                return Ok(VmState::Continue);
            }
            let source = debug.source();
            let file = source.short_src.as_deref().unwrap_or("?");
            match debug.current_line() {
                Some(line) => Err(mlua::Error::runtime(format!(
                    "{file}:{line}: {BUDGET_MESSAGE}"
                ))),
                None => Err(mlua::Error::runtime(BUDGET_MESSAGE)),
            }
        },
    )?;
    lua.set_memory_limit(limits.memory_bytes)?;
    Ok(lua)
}

/// Turns an mlua error into the one line an educator reads:
/// `quiz.lua:57: message`, without Rust wrappers or Lua tracebacks.
pub fn describe(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { cause, .. } => describe(cause),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => first_line(message),
        mlua::Error::MemoryError(_) => {
            "not enough memory: the game went over its session memory budget".to_owned()
        }
        mlua::Error::BadArgument { to, pos, cause, .. } => match to {
            Some(f) => format!("bad argument #{pos} to '{f}': {}", describe(cause)),
            None => format!("bad argument #{pos}: {}", describe(cause)),
        },
        mlua::Error::SerializeError(m) | mlua::Error::DeserializeError(m) => {
            format!("value cannot be sent as JSON: {m}")
        }
        mlua::Error::ExternalError(e) => e.to_string(),
        other => first_line(&other.to_string()),
    }
}

/// Whether `err` is the CPU budget running out (as opposed to a script bug).
pub fn is_budget_error(err: &mlua::Error) -> bool {
    describe(err).contains(BUDGET_MESSAGE)
}

fn first_line(message: &str) -> String {
    // Lua appends "stack traceback:" to some messages; the first line is the error.
    let line = message.lines().next().unwrap_or(message);
    line.strip_prefix("runtime error: ")
        .unwrap_or(line)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (Lua, Arc<CallBudget>) {
        let budget = CallBudget::new();
        let lua = new_state(Limits::default(), budget.clone()).unwrap();
        (lua, budget)
    }

    fn run(lua: &Lua, budget: &CallBudget, code: &str) -> Result<(), String> {
        budget.reset(Limits::default().cpu_units);
        lua.load(code)
            .set_name("=probe.lua")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .exec()
            .map_err(|e| describe(&e))
    }

    #[test]
    fn dangerous_globals_are_gone() {
        let (lua, budget) = sandbox();
        for name in [
            "io",
            "os",
            "debug",
            "load",
            "loadstring",
            "loadfile",
            "dofile",
            "require",
            "collectgarbage",
            "coroutine",
            "package",
        ] {
            let code = format!("assert({name} == nil, '{name} is reachable')");
            run(&lua, &budget, &code).unwrap();
        }
        run(&lua, &budget, "assert(string.dump == nil)").unwrap();
    }

    #[test]
    fn runaway_loops_are_stopped_and_the_state_stays_usable() {
        let (lua, budget) = sandbox();
        for probe in [
            "while true do end",
            "while true do pcall(function() while true do end end) end",
            "local t = {3,2,1} table.sort(t, function(a, b) while true do end end)",
            "while true do xpcall(function() while true do end end, function(e) return e end) end",
        ] {
            let err = run(&lua, &budget, probe).unwrap_err();
            assert!(err.contains(BUDGET_MESSAGE), "{probe}: {err}");
            run(&lua, &budget, "local x = 1 + 1").unwrap();
        }
    }

    #[test]
    fn errors_name_file_and_line() {
        let (lua, budget) = sandbox();
        let err = run(&lua, &budget, "local x = 1\nerror('boom')").unwrap_err();
        assert_eq!(err, "probe.lua:2: boom");
        let err = run(&lua, &budget, "while true do end").unwrap_err();
        assert!(err.starts_with("probe.lua:1: "), "{err}");
    }

    #[test]
    fn memory_bombs_are_stopped() {
        let (lua, budget) = sandbox();
        // Lua refuses this one itself ("resulting string too large")...
        let err = run(&lua, &budget, "local s = string.rep('x', 2^31)").unwrap_err();
        assert!(err.contains("memory") || err.contains("too large"), "{err}");
        // ...and the memory limit stops one just under that.
        let err = run(&lua, &budget, "local s = string.rep('x', 2^30)").unwrap_err();
        assert!(err.contains("memory"), "{err}");
        let err = run(
            &lua,
            &budget,
            "local t = {} while true do t[#t+1] = ('x'):rep(1e6) end",
        )
        .unwrap_err();
        assert!(err.contains("memory"), "{err}");
        run(&lua, &budget, "local s = ('x'):rep(10)").unwrap();
    }

    #[test]
    fn gc_metamethods_are_refused() {
        let (lua, budget) = sandbox();
        let err = run(&lua, &budget, "setmetatable({}, {__gc = function() end})").unwrap_err();
        assert!(err.contains("__gc"), "{err}");
        run(&lua, &budget, "setmetatable({}, {__index = {}})").unwrap();
    }
}
