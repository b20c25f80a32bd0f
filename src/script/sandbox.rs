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
use std::time::Duration;

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
    /// Wall-clock time one handler call may run, whatever it spends it on.
    pub cpu_time: Duration,
    /// Bytes the whole state may allocate.
    pub memory_bytes: usize,
    /// Largest message (`ctx.broadcast`, `ctx.send`, a timer's data), in
    /// bytes of JSON: the size of the largest frame a client may send.
    pub message_bytes: usize,
    /// Most bytes of messages, timers and results one handler call may emit.
    pub call_output_bytes: usize,
    /// Largest view one member may be sent, in bytes of JSON.
    pub view_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cpu_units: 20_000_000,
            cpu_time: Duration::from_millis(250),
            memory_bytes: 16 << 20,
            message_bytes: 64 << 10,
            call_output_bytes: 1 << 20,
            view_bytes: 256 << 10,
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

    super::pattern::install(&lua)?;
    super::text::install(&lua)?;
    bill_library_calls(&lua)?;
    install_plain_errors(&lua)?;

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
        // Checked here: called from Rust, Lua's own message would name no function.
        if !matches!(table, Value::Table(_)) {
            return Err(mlua::Error::runtime(format!(
                "bad argument #1 to 'setmetatable' (table expected, got {})",
                kind(&table)
            )));
        }
        if !matches!(meta, Value::Table(_) | Value::Nil) {
            return Err(mlua::Error::runtime(format!(
                "bad argument #2 to 'setmetatable' (nil or table expected, got {})",
                kind(&meta)
            )));
        }
        if let Value::Table(m) = &meta
            && m.raw_get::<Value>("__gc")? != Value::Nil
        {
            return Err(mlua::Error::runtime(
                "setmetatable: __gc metamethods are not allowed in games",
            ));
        }
        setmetatable.call::<Value>((table, meta))
    })?;
    globals.raw_set("setmetatable", plain_errors(&lua, guarded)?)?;
    globals.raw_set("null", Value::NULL)?;

    lua.set_app_data(budget);
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        |lua, _| {
            if budget::charge(lua, u64::from(HOOK_EVERY)).is_ok() {
                return Ok(VmState::Continue);
            }
            let at = script_location(lua).unwrap_or_default();
            Err(mlua::Error::runtime(format!("{at}{BUDGET_MESSAGE}")))
        },
    )?;
    lua.set_memory_limit(limits.memory_bytes)?;
    Ok(lua)
}

/// Wraps the library functions whose work in C grows with their arguments,
/// so each call is charged by size before it runs (the hook never sees
/// inside a C function). A unit is about one VM instruction's time: a
/// comparison of `table.sort` is 2 units (1/2 with a comparator, whose own
/// instructions count), moving an element 1, a byte transformed (`upper`,
/// `lower`, `reverse`, `utf8.len`) 1/16, a byte copied (`rep`, `format`,
/// `concat`) 1/64. Each charge is also a look at the clock. `concat` is
/// charged for its result's length after it ran: one call is bounded by the
/// memory budget, and a loop of them is caught at the next charge.
///
/// A wrapper calls the original through `pcall` and raises its error again
/// at the script's line (`error(e, 2)` from a tail-called `pass`), so
/// `bad argument` errors still name the script's file and line; errors that
/// already carry a position (from a comparator) or are not strings pass
/// through as they are.
const BILLED_LIBRARY: &str = r##"
local charge, budget_error = ...
local type, tostring, tonumber, select, error, pcall =
  type, tostring, tonumber, select, error, pcall
local floor, log, find = math.floor, math.log, string.find
-- Small charges add up here and are paid 256 units at a time, so a loop of
-- small library calls is charged as much as one big one.
local owed = 0
local function bill(units)
  if units > 0 then owed = owed + units end
  if owed >= 256 then
    local units = floor(owed)
    owed = owed - units
    if not charge(units) then error(budget_error, 3) end
  end
end
local function size(s)
  if type(s) == "string" then return #s end
  if type(s) == "number" then return #tostring(s) end
  return 0
end
-- The length the C function will see: `#` honours `__len` (a proxy table).
local function len(t) return tonumber(#t) or 0 end
local function pass(ok, ...)
  if ok then return ... end
  local e = ...
  if type(e) == "string" and e ~= "not enough memory" and not find(e, "^[^:\n]*:%d+: ") then
    error(e, 2)
  end
  error(e, 0)
end

local sort, concat, insert, remove, move, unpack =
  table.sort, table.concat, table.insert, table.remove, table.move, table.unpack
table.sort = function(t, comp)
  if type(t) == "table" then
    -- A comparator's own instructions are counted by the hook.
    local n = len(t)
    if n > 8 then bill((comp == nil and 2 or 0.5) * n * (log(n, 2) + 1)) end
  end
  return pass(pcall(sort, t, comp))
end
table.concat = function(t, ...)
  -- Charged by items before, by the result's length after (the result
  -- itself is bounded by the memory budget).
  if type(t) == "table" then bill(len(t) / 4) end
  local ok, r = pcall(concat, t, ...)
  if not ok then return pass(false, r) end
  bill(#r / 64)
  return r
end
table.insert = function(t, ...)
  if select("#", ...) >= 2 and type(t) == "table" then
    bill(len(t) - (tonumber((...)) or 0))
  end
  return pass(pcall(insert, t, ...))
end
table.remove = function(t, ...)
  if select("#", ...) >= 1 and type(t) == "table" then
    bill(len(t) - (tonumber((...)) or 0))
  end
  return pass(pcall(remove, t, ...))
end
table.move = function(a1, f, e, ...)
  bill((tonumber(e) or 0) - (tonumber(f) or 0))
  return pass(pcall(move, a1, f, e, ...))
end
table.unpack = function(t, i, j)
  if type(t) == "table" then bill((tonumber(j) or len(t)) - (tonumber(i) or 1)) end
  return pass(pcall(unpack, t, i, j))
end

local rep, format, upper, lower, reverse, byte, fold =
  string.rep, string.format, string.upper, string.lower, string.reverse, string.byte, string.fold
string.rep = function(s, n, ...)
  local count = tonumber(n) or 0
  if count > 0 then bill(count * (size(s) + size((...))) / 64) end
  return pass(pcall(rep, s, n, ...))
end
string.format = function(fmt, ...)
  local bytes = size(fmt)
  for k = 1, select("#", ...) do bytes = bytes + size((select(k, ...))) end
  bill(bytes / 64)
  return pass(pcall(format, fmt, ...))
end
string.upper = function(s) bill(size(s) / 16) return pass(pcall(upper, s)) end
string.lower = function(s) bill(size(s) / 16) return pass(pcall(lower, s)) end
string.reverse = function(s) bill(size(s) / 16) return pass(pcall(reverse, s)) end
string.fold = function(s) bill(size(s) / 4) return pass(pcall(fold, s)) end
string.byte = function(s, i, ...)
  if select("#", ...) > 0 then bill(size(s) / 4) end
  return pass(pcall(byte, s, i, ...))
end

local len, codepoint, offset = utf8.len, utf8.codepoint, utf8.offset
utf8.len = function(s, ...) bill(size(s) / 16) return pass(pcall(len, s, ...)) end
utf8.codepoint = function(s, i, ...)
  if select("#", ...) > 0 then bill(size(s) / 4) end
  return pass(pcall(codepoint, s, i, ...))
end
utf8.offset = function(s, ...) bill(size(s) / 16) return pass(pcall(offset, s, ...)) end
"##;

/// The chunk name of [`BILLED_LIBRARY`]: errors are reported at the
/// script's line instead.
const LIBRARY_CHUNK: &str = "sandbox";

fn bill_library_calls(lua: &Lua) -> mlua::Result<()> {
    // The originals stay listed as loaded modules (out of the scripts'
    // reach), where Lua finds a function's name for "bad argument" errors.
    let loaded: Table = lua.named_registry_value("_LOADED")?;
    for name in ["table", "string", "utf8"] {
        let library: Table = lua.globals().get(name)?;
        let originals = lua.create_table()?;
        for pair in library.pairs::<Value, Value>() {
            let (k, v) = pair?;
            originals.raw_set(k, v)?;
        }
        loaded.raw_set(name, originals)?;
    }
    let charge = lua.create_function(|lua, units: u64| Ok(budget::charge(lua, units).is_ok()))?;
    lua.load(BILLED_LIBRARY)
        .set_name(format!("={LIBRARY_CHUNK}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .call::<()>((charge, BUDGET_MESSAGE))
}

/// Where the script is running, as `file:line: `: the innermost frame that
/// is not one of the sandbox's own wrappers.
pub(crate) fn script_location(lua: &Lua) -> Option<String> {
    (0..8).find_map(|level| {
        lua.inspect_stack(level, |frame| {
            let line = frame.current_line().filter(|&l| l > 0)?;
            let file = frame.source().short_src?.into_owned();
            (file != LIBRARY_CHUNK).then(|| format!("{file}:{line}: "))
        })
        .flatten()
    })
}

/// Turns an mlua error into the one line an educator reads:
/// `quiz.lua:57: message`, without Rust wrappers, type names or Lua
/// tracebacks.
pub fn describe(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => describe(cause),
        mlua::Error::WithContext { cause, .. } => describe(cause),
        mlua::Error::SyntaxError { message, .. } => first_line(message),
        mlua::Error::RuntimeError(message) => {
            let line = first_line(message);
            // A memory error raised again by a library wrapper is a plain string.
            if line.ends_with("not enough memory") {
                describe(&mlua::Error::MemoryError(String::new()))
            } else {
                without_addresses(without_repeated_location(&line))
            }
        }
        mlua::Error::MemoryError(_) => MEMORY_MESSAGE.to_owned(),
        mlua::Error::BadArgument { to, pos, cause, .. } => match to {
            Some(f) => format!("bad argument #{pos} to '{f}' ({})", describe(cause)),
            None => format!("bad argument #{pos} ({})", describe(cause)),
        },
        mlua::Error::FromLuaConversionError { from, to, .. } => {
            format!(
                "expected {}, got {}",
                expected_kind(to),
                lua_kind_name(from)
            )
        }
        mlua::Error::SerializeError(m) | mlua::Error::DeserializeError(m) => {
            format!("value cannot be sent as JSON: {}", first_line(m))
        }
        mlua::Error::StackError => {
            "too many values at once for Lua (a table.unpack of a huge list?)".to_owned()
        }
        mlua::Error::ExternalError(e) => first_line(&e.to_string()),
        other => format!(
            "the game's Lua state failed inside Recess: {}",
            first_line(&other.to_string())
        ),
    }
}

/// `quiz.lua:12: quiz.lua:12: message` (an error caught with `pcall` and
/// raised again with `error(e)`, which adds the position once more) as
/// `quiz.lua:12: message`.
fn without_repeated_location(message: &str) -> &str {
    let mut message = message;
    while has_location(message) {
        let Some(end) = message.find(": ").map(|i| i + 2) else {
            break;
        };
        let (at, rest) = message.split_at(end);
        match rest.strip_prefix(at) {
            Some(_) => message = rest,
            None => break,
        }
    }
    message
}

/// What a memory error reads as.
pub const MEMORY_MESSAGE: &str = "not enough memory: the game went over its session memory budget";

/// A Rust type a conversion wanted, as a Lua writer calls it.
fn expected_kind(rust: &str) -> &'static str {
    match rust {
        "String" | "str" | "BString" | "CString" | "OsString" | "PathBuf" => "a string",
        "Table" => "a table",
        "Function" => "a function",
        "bool" => "a boolean",
        r if r.starts_with('i') || r.starts_with('u') || r.starts_with('f') => "a number",
        _ => "another kind of value",
    }
}

/// A Lua type name as a message says it: `integer` is a number to a game.
fn lua_kind_name(name: &str) -> &'static str {
    match name {
        "nil" => "nil",
        "boolean" => "a boolean",
        "integer" | "number" => "a number",
        "string" => "a string",
        "table" => "a table",
        "function" => "a function",
        "thread" => "a coroutine",
        "lightuserdata" => "null",
        _ => "a userdata value",
    }
}

/// The kind of a value, as a message names it: `nil`, `null`, `a number`,
/// `a table`.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::LightUserData(_) => "null",
        other => lua_kind_name(other.type_name()),
    }
}

/// A value as a message shows it: `nil`, `null`, `true`, `-5`, `1.5`,
/// `"ten"` (cut after 40 characters), `a table`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Nil => "nil".to_owned(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) if n.is_nan() => "nan".to_owned(),
        Value::Number(n) if n.is_infinite() => if *n > 0.0 { "inf" } else { "-inf" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let text = s.to_string_lossy();
            let mut shown: String = text.chars().take(40).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        }
        other => kind(other).to_owned(),
    }
}

/// Whether a message already starts with a position (`quiz.lua:12: `).
pub fn has_location(message: &str) -> bool {
    let Some((file, rest)) = message.split_once(':') else {
        return false;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    !file.is_empty() && !file.contains('\n') && digits > 0 && rest[digits..].starts_with(": ")
}

/// Wraps Rust functions that scripts call so that their errors reach the
/// script as plain strings with the script's position
/// (`quiz.lua:12: ctx.send: ...`), as Lua's own errors do: a game that
/// catches one with `pcall` gets a message it can show or log, not an
/// opaque value.
const PLAIN_ERRORS: &str = r#"
local pcall, error, describe = ...
local function pass(ok, ...)
  if ok then return ... end
  error(describe((...)), 0)
end
return function(f)
  return function(...) return pass(pcall(f, ...)) end
end
"#;

/// Where [`install_plain_errors`] keeps its wrapper factory.
const PLAIN_ERRORS_KEY: &str = "recess.plain_errors";

fn install_plain_errors(lua: &Lua) -> mlua::Result<()> {
    let pcall: Function = lua.globals().get("pcall")?;
    let describe_error = lua.create_function(|lua, e: Value| match e {
        Value::Error(err) => {
            let text = describe(&err);
            let text = if has_location(&text) || text == MEMORY_MESSAGE {
                text
            } else {
                format!("{}{text}", script_location(lua).unwrap_or_default())
            };
            lua.create_string(&text).map(Value::String)
        }
        other => Ok(other),
    })?;
    let factory: Function = lua
        .load(PLAIN_ERRORS)
        .set_name(format!("={LIBRARY_CHUNK}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .call((
            pcall,
            lua.globals().get::<Function>("error")?,
            describe_error,
        ))?;
    lua.set_named_registry_value(PLAIN_ERRORS_KEY, factory)
}

/// `f` as scripts should call it: its errors become plain strings at the
/// script's position (see `PLAIN_ERRORS`).
pub fn plain_errors(lua: &Lua, f: Function) -> mlua::Result<Function> {
    let factory = match lua.named_registry_value::<Option<Function>>(PLAIN_ERRORS_KEY)? {
        Some(factory) => factory,
        None => {
            install_plain_errors(lua)?;
            lua.named_registry_value(PLAIN_ERRORS_KEY)?
        }
    };
    factory.call(f)
}

/// A size for an error message: `5.0 MB`, `70.2 kB`, `120 bytes`.
pub fn size_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} kB", b as f64 / 1e3),
        b => format!("{b} bytes"),
    }
}

/// A limit for an error message: `64 KiB`, `1 MiB`.
pub fn limit_text(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The types Lua prints with a heap address (`table: 0x55d0c3a2b4f0`).
const ADDRESSED: [&str; 4] = ["table", "function", "userdata", "thread"];

/// A message with heap addresses taken out: `error({})` reaches the host as
/// a sentence, and `"bad " .. tostring(t)` as `bad a table`. Addresses say
/// nothing to a teacher and tell anyone where the heap is.
fn without_addresses(message: &str) -> String {
    if let Some(kind) = ADDRESSED
        .iter()
        .find(|k| address_at(message, k) == Some(message.len()))
    {
        return format!(
            "error() was called with a {kind}, not a message; use error(\"what went wrong\")"
        );
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    'scan: while !rest.is_empty() {
        for kind in ADDRESSED {
            if let Some(end) = address_at(rest, kind) {
                out.push_str("a ");
                out.push_str(kind);
                rest = &rest[end..];
                continue 'scan;
            }
        }
        let mut next = 1;
        while !rest.is_char_boundary(next) {
            next += 1;
        }
        out.push_str(&rest[..next]);
        rest = &rest[next..];
    }
    out
}

/// Where `TYPE: 0xHEX` (or `TYPE: builtin: 0xHEX`) at the start of `text` ends.
fn address_at(text: &str, kind: &str) -> Option<usize> {
    let after = text.strip_prefix(kind)?.strip_prefix(": ")?;
    let after = after.strip_prefix("builtin: ").unwrap_or(after);
    let hex = after.strip_prefix("0x")?;
    let digits = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
    (digits > 0).then(|| text.len() - hex.len() + digits)
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
        budget.reset(Limits::default().cpu_units, Limits::default().cpu_time);
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
    fn fold_compares_typed_answers_and_is_billed() {
        let (lua, budget) = sandbox();
        run(
            &lua,
            &budget,
            "assert(('  Zürich '):fold() == 'zurich') assert(string.fold(12) == '12')",
        )
        .unwrap();
        let err = run(&lua, &budget, "\nlocal x = string.fold(nil)").unwrap_err();
        assert_eq!(
            err,
            "probe.lua:2: bad argument #1 to 'fold' (string expected, got nil)"
        );
        let err = run(
            &lua,
            &budget,
            "local s = ('é'):rep(1e6) while true do s:fold() end",
        )
        .unwrap_err();
        assert!(err.starts_with("probe.lua:1: "), "{err}");
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
    fn error_values_show_no_heap_addresses() {
        let (lua, budget) = sandbox();
        for (probe, want) in [
            (
                "error({code = 7})",
                "error() was called with a table, not a message; use error(\"what went wrong\")",
            ),
            (
                "error(function() end)",
                "error() was called with a function, not a message; use error(\"what went wrong\")",
            ),
            (
                "error('bad ' .. tostring({}) .. ' and ' .. tostring(print or pairs))",
                "probe.lua:1: bad a table and a function",
            ),
            (
                "error('a table: 0x is fine')",
                "probe.lua:1: a table: 0x is fine",
            ),
        ] {
            let err = run(&lua, &budget, probe).unwrap_err();
            assert_eq!(err, want, "{probe}");
        }
    }

    #[test]
    fn memory_bombs_are_stopped() {
        let (lua, budget) = sandbox();
        // The memory limit is what is tried here: a time budget long enough
        // for a debug build on a busy machine to fill 16 MiB.
        let run = |lua: &Lua, budget: &CallBudget, code: &str| {
            budget.reset(Limits::default().cpu_units, Duration::from_secs(30));
            lua.load(code)
                .set_name("=probe.lua")
                .exec()
                .map_err(|e| describe(&e))
        };
        // Refused before it runs: copying 2 GiB is over the CPU budget...
        let err = run(&lua, &budget, "local s = string.rep('x', 2^31)").unwrap_err();
        assert!(err.contains(BUDGET_MESSAGE), "{err}");
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
    fn proxy_tables_and_number_arguments_are_charged_by_what_c_sees() {
        let (lua, budget) = sandbox();
        let setup = "big = {} for i = 1, 2e5 do big[i] = (i * 7919) % 200003 end \
                     proxy = setmetatable({}, {__len = function() return #big end, __index = big, __newindex = big})";
        run(&lua, &budget, setup).unwrap();
        for probe in ["table.sort(proxy)", "local s = string.rep(1, 5e7)"] {
            // An allowance far below what the call does in C.
            budget.reset(100_000, Duration::from_secs(60));
            let err = lua
                .load(probe)
                .set_name("=probe.lua")
                .exec()
                .map_err(|e| describe(&e))
                .unwrap_err();
            assert!(err.contains(BUDGET_MESSAGE), "{probe}: {err}");
        }
    }

    #[test]
    fn work_inside_library_calls_is_charged_and_stopped_in_time() {
        let (lua, budget) = sandbox();
        for probe in [
            "local t = {} for i = 1, 2e5 do t[i] = (i * 7919) % 200003 end for i = 1, 1e9 do table.sort(t) end",
            "local t = {} for i = 1, 2e5 do t[i] = 'ab' end for i = 1, 1e9 do table.concat(t) end",
            "local t = {} for i = 1, 2e5 do t[i] = i end for i = 1, 1e9 do table.insert(t, 1, i) end",
            "local s = ('x'):rep(4e6) for i = 1, 1e9 do s:upper() end",
            "for i = 1, 1e9 do local s = ('x'):rep(4e6) end",
            "local s = ('x'):rep(4e6) for i = 1, 1e9 do local x = s .. s end",
            "local s = ('x'):rep(1e5) for i = 1, 1e9 do s:gsub('x', 'yy') end",
            // One call too big for the whole budget is refused before it runs.
            "local t = {} for i = 1, 5e5 do t[i] = i end table.sort(t)",
        ] {
            let started = std::time::Instant::now();
            let err = run(&lua, &budget, probe).unwrap_err();
            assert!(err.contains(BUDGET_MESSAGE), "{probe}: {err}");
            // The metered matcher reports no line; everything else does.
            assert!(
                err.starts_with("probe.lua:1: ") || probe.contains("gsub"),
                "{probe}: {err}"
            );
            let took = started.elapsed();
            assert!(took < Duration::from_millis(1500), "{probe}: {took:?}");
        }
    }

    #[test]
    fn billed_library_calls_behave_and_fail_as_before() {
        let (lua, budget) = sandbox();
        run(
            &lua,
            &budget,
            r##"
            assert(table.concat({1, 2, "x"}, ",") == "1,2,x")
            assert(("ab"):rep(3, "-") == "ab-ab-ab" and ("ab"):rep(0) == "")
            assert(select("#", table.unpack({1, 2, 3})) == 3)
            assert(("xÉ"):upper() == "XÉ" and string.lower("AB") == "ab")
            assert(string.format("%s=%d", "a", 3) == "a=3")
            assert(utf8.len("héllo") == 5 and utf8.len("\xff") == nil)
            local t = {3, 1, 2}
            table.sort(t, function(a, b) return a > b end)
            assert(t[1] == 3 and t[3] == 1)
            assert(table.remove(t, 1) == 3 and table.remove(t) == 1 and #t == 1)
            table.insert(t, 1, 0)
            assert(t[1] == 0 and t[2] == 2)
            assert(select("#", ("abc"):byte(1, -1)) == 3)
            "##,
        )
        .unwrap();
        for (probe, want) in [
            (
                "table.sort(nil)",
                "probe.lua:1: bad argument #1 to 'table.sort'",
            ),
            (
                "local s = 'x'\ns:rep(nil)",
                "probe.lua:2: bad argument #2 to 'string.rep'",
            ),
            (
                "utf8.len(nil)",
                "probe.lua:1: bad argument #1 to 'utf8.len'",
            ),
            (
                "table.concat({{}})",
                "probe.lua:1: invalid value (table) at index 1",
            ),
            // An error from the script's own comparator keeps its position.
            (
                "local t = {3, 1, 2}\ntable.sort(t, function(a, b)\nerror('cmp') end)",
                "probe.lua:3: cmp",
            ),
        ] {
            let err = run(&lua, &budget, probe).unwrap_err();
            assert!(err.starts_with(want), "{probe}: {err}");
        }
    }

    #[test]
    fn gc_metamethods_are_refused() {
        let (lua, budget) = sandbox();
        let err = run(&lua, &budget, "setmetatable({}, {__gc = function() end})").unwrap_err();
        assert!(err.contains("__gc"), "{err}");
        run(&lua, &budget, "setmetatable({}, {__index = {}})").unwrap();
    }
}
