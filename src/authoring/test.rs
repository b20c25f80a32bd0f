//! `recess test`: game tests written in Lua, run against headless sessions.
//!
//! A test file (`NAME_test.lua` beside the games, or in a folder game's
//! `tests/`) runs in the same sandbox as a game, with the API of
//! docs/lua-api.md §15 on top: `test`, `expect` (from `prelude.lua`) and
//! `session`, whose sessions are `HeadlessSession`s of a fresh
//! `Harness` per test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlua::{Function, Lua, LuaSerdeExt, Table, UserData, UserDataFields, UserDataMethods, Value};
use serde_json::Value as Json;

use crate::headless::{Failure, Harness, HeadlessSession, Received};
use crate::protocol::{NameMode, Role};
use crate::script::budget::CallBudget;
use crate::script::json::lua_to_json;
use crate::script::sandbox::{self, describe, script_location};
use crate::script::{Catalog, Limits};

const PRELUDE: &str = include_str!("prelude.lua");

/// The seed every test's harness starts from: a test is the same run each
/// time.
const TEST_SEED: u64 = 1;

/// What a run of `recess test` found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed (an error in a test file counts as one).
    pub failed: usize,
}

/// Runs every test under `path` (a games folder, a game folder or one test
/// file), writing one line per test and a summary line to `out`.
pub fn run(path: &Path, limits: Limits, out: &mut dyn Write) -> std::io::Result<Tally> {
    let (games, files) = find(path);
    let mut tally = Tally::default();
    if files.is_empty() {
        writeln!(out, "{}: no *_test.lua files found", path.display())?;
        tally.failed = 1;
        return Ok(tally);
    }
    let catalog = Catalog::new(&games, limits);
    catalog.load_all();
    for file in files {
        run_file(&file, &catalog, limits, &mut tally, out)?;
    }
    writeln!(out, "{} passed, {} failed", tally.passed, tally.failed)?;
    Ok(tally)
}

/// The games folder and the test files a path names, in name order.
fn find(path: &Path) -> (PathBuf, Vec<PathBuf>) {
    let is_test = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(crate::script::catalog::TEST_SUFFIX))
    };
    let in_dir = |dir: &Path| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_test(p))
            .collect();
        found.sort();
        found
    };
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    if path.is_file() {
        // From the absolute path: `x_test.lua` named in the games folder
        // itself has the folder `.`, and `tests/x_test.lua` named in a game
        // folder has the games folder `..`.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = parent(&absolute);
        // games/space/tests/x_test.lua: the games folder is two up.
        let games = if dir
            .file_name()
            .is_some_and(|n| n == crate::script::catalog::TESTS_FOLDER)
            && parent(&dir).join("init.lua").is_file()
        {
            parent(&parent(&dir))
        } else {
            dir
        };
        return (games, vec![path.to_path_buf()]);
    }
    if path.join("init.lua").is_file() {
        return (
            parent(path),
            in_dir(&path.join(crate::script::catalog::TESTS_FOLDER)),
        );
    }
    let mut files = in_dir(path);
    let mut folders: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("init.lua").is_file())
        .collect();
    folders.sort();
    for folder in folders {
        files.extend(in_dir(&folder.join(crate::script::catalog::TESTS_FOLDER)));
    }
    (path.to_path_buf(), files)
}

/// A test's budget: generous next to a handler's, but an endless loop in a
/// test still ends.
fn test_budget(limits: Limits) -> (u64, Duration) {
    (
        limits.cpu_units.saturating_mul(100),
        Duration::from_secs(60),
    )
}

fn run_file(
    file: &Path,
    catalog: &Arc<Catalog>,
    limits: Limits,
    tally: &mut Tally,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let shown = file.display().to_string();
    let fail = |tally: &mut Tally, out: &mut dyn Write, message: String, name: Option<&str>| {
        tally.failed += 1;
        match name {
            Some(name) => writeln!(out, "FAIL {message} (in \"{name}\")"),
            None => writeln!(out, "FAIL {message}"),
        }
    };
    let source = match std::fs::read_to_string(file) {
        Ok(s) => s,
        Err(e) => return fail(tally, out, format!("{shown}: {e}"), None),
    };
    let budget = CallBudget::new();
    let (units, time) = test_budget(limits);
    let state = TestState {
        catalog: catalog.clone(),
        limits,
        harness: Arc::new(Mutex::new(None)),
    };
    let lua = match test_lua(&state, limits, budget.clone()) {
        Ok(l) => l,
        Err(e) => return fail(tally, out, format!("{shown}: {}", describe(&e)), None),
    };
    let registered = match load(&lua, &source, &shown) {
        Ok(t) => t,
        Err(e) => return fail(tally, out, located(&shown, &e), None),
    };
    budget.reset(units, time);
    state.fresh_harness();
    if let Err(e) = registered.run_file.call::<()>(()) {
        return fail(tally, out, located(&shown, &e), None);
    }
    let tests: Vec<(String, Function)> = registered
        .tests
        .sequence_values::<Table>()
        .flatten()
        .filter_map(|t| Some((t.get("name").ok()?, t.get("fn").ok()?)))
        .collect();
    if tests.is_empty() {
        tally.passed += 1;
        return writeln!(out, "ok   {shown}");
    }
    for (name, f) in tests {
        budget.reset(units, time);
        state.fresh_harness();
        match f.call::<()>(()) {
            Ok(()) => {
                tally.passed += 1;
                writeln!(out, "ok   {shown}: {name}")?;
            }
            Err(e) => fail(tally, out, located(&shown, &e), Some(&name))?,
        }
    }
    state
        .harness
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    Ok(())
}

/// An error as `file:line: message`; one that carries no place (a Rust
/// callback's refusal without a line) is put at the file.
fn located(shown: &str, e: &mlua::Error) -> String {
    let message = describe(e);
    if message.starts_with(shown) {
        message
    } else {
        format!("{shown}: {message}")
    }
}

struct Registered {
    run_file: Function,
    tests: Table,
}

/// Loads the prelude and the test file (not yet run).
fn load(lua: &Lua, source: &str, shown: &str) -> mlua::Result<Registered> {
    let tests = lua.create_table()?;
    lua.load(PRELUDE)
        .set_name("=recess test")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .call::<Function>(tests.clone())?;
    let run_file = lua
        .load(source)
        .set_name(format!("@{shown}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()?;
    Ok(Registered { run_file, tests })
}

/// What the `session` function of one test file reaches.
#[derive(Clone)]
struct TestState {
    catalog: Arc<Catalog>,
    limits: Limits,
    /// The harness of the test running now (a fresh one per test).
    harness: Arc<Mutex<Option<Arc<Harness>>>>,
}

impl TestState {
    fn fresh_harness(&self) {
        let harness = Harness::new(self.catalog.clone(), self.limits, TEST_SEED).ok();
        *self.harness.lock().unwrap_or_else(|e| e.into_inner()) = harness;
    }

    fn harness(&self) -> mlua::Result<Arc<Harness>> {
        self.harness
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| mlua::Error::runtime("session: the test runtime could not start"))
    }
}

/// A sandboxed state (as a game's) with `session` installed.
fn test_lua(state: &TestState, limits: Limits, budget: Arc<CallBudget>) -> mlua::Result<Lua> {
    let limits = Limits {
        memory_bytes: limits.memory_bytes.saturating_mul(16),
        ..limits
    };
    let lua = sandbox::new_state(limits, budget)?;
    let state = state.clone();
    let session =
        lua.create_function(move |lua, (game, params, options): (Value, Value, Value)| {
            let Value::String(game) = game else {
                return Err(here(
                    lua,
                    format!(
                        "session: argument 1 (game) must be a string, got {}",
                        game.type_name()
                    ),
                ));
            };
            let params = match params {
                Value::Nil => Json::Null,
                v => lua_to_json(lua, v)
                    .map_err(|e| here(lua, format!("session: params: {}", describe(&e))))?,
            };
            let names = match options {
                Value::Nil => NameMode::Typed,
                Value::Table(t) => match t.get::<Value>("names")? {
                    Value::Nil => NameMode::Typed,
                    Value::String(s) if s.to_str()? == "typed" => NameMode::Typed,
                    Value::String(s) if s.to_str()? == "generated" => NameMode::Generated,
                    other => {
                        return Err(here(
                            lua,
                            format!(
                                "session: options.names must be \"typed\" or \"generated\", got {}",
                                other.type_name()
                            ),
                        ));
                    }
                },
                other => {
                    return Err(here(
                        lua,
                        format!(
                            "session: argument 3 (options) must be a table or nil, got {}",
                            other.type_name()
                        ),
                    ));
                }
            };
            let harness = state.harness()?;
            let session = harness.start(&game.to_str()?, params, names).map_err(|f| {
                here(
                    lua,
                    format!("session(\"{}\"): {}", game.display(), f.message()),
                )
            })?;
            Ok(LuaSession(session))
        })?;
    lua.globals().raw_set("session", session)?;
    // `print` in a test goes to the terminal, under the test's lines.
    let print = lua.create_function(|_, args: mlua::Variadic<Value>| {
        let parts: Vec<String> = args
            .iter()
            .map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_owned()))
            .collect();
        eprintln!("     | {}", parts.join(" "));
        Ok(())
    })?;
    lua.globals().raw_set("print", print)?;
    Ok(lua)
}

/// An error at the test line that called into Rust.
fn here(lua: &Lua, message: String) -> mlua::Error {
    let at = script_location(lua).unwrap_or_default();
    mlua::Error::runtime(format!("{at}{message}"))
}

/// A session as a test file sees it (`local s = session("quiz")`).
struct LuaSession(Arc<HeadlessSession>);

/// The methods of a session in a test file (`s:join("Ana")`): all it has,
/// since `add_methods` registers only these (see `Listed`). The editor
/// stubs (`games/types/recess.lua`) are tested against this list.
pub const SESSION_METHODS: &[&str] = &[
    "join",
    "act",
    "event",
    "leave",
    "disconnect",
    "reconnect",
    "advance",
    "now",
    "view",
    "events",
    "emitted",
    "results",
    "report",
    "players",
];

/// The fields of a session in a test file (`s.host`).
pub const SESSION_FIELDS: &[&str] = &["host"];

/// Registers a session's methods, those of [`SESSION_METHODS`] only: a
/// method missing from the list is missing in test files too, so the list
/// stays the whole of them.
struct Listed<'a, M>(&'a mut M);

impl<M: UserDataMethods<LuaSession>> Listed<'_, M> {
    fn add_method<F, A, R>(&mut self, name: &str, method: F)
    where
        F: Fn(&Lua, &LuaSession, A) -> mlua::Result<R> + mlua::MaybeSend + 'static,
        A: mlua::FromLuaMulti,
        R: mlua::IntoLuaMulti,
    {
        if SESSION_METHODS.contains(&name) {
            self.0.add_method(name, method);
        }
    }
}

impl LuaSession {
    fn player(&self, lua: &Lua, id: &str) -> mlua::Result<Table> {
        let t = lua.create_table()?;
        t.raw_set("id", id)?;
        if let Some(seat) = self.0.seat(id) {
            t.raw_set("name", seat.name)?;
            t.raw_set("role", seat.role.as_str())?;
        }
        Ok(t)
    }

    /// The member a player argument names: a table from `s:join` (or
    /// `s.host`), or an id.
    fn member(&self, lua: &Lua, method: &str, v: &Value) -> mlua::Result<String> {
        let id = match v {
            Value::Table(t) => t.raw_get::<Option<String>>("id").ok().flatten(),
            Value::String(s) => s.to_str().ok().map(|s| s.to_owned()),
            _ => None,
        };
        id.ok_or_else(|| {
            here(
                lua,
                format!(
                    "s:{method}: argument 1 (player) must be a player from s:join or s.host, got {}",
                    v.type_name()
                ),
            )
        })
    }

    /// A refusal becomes `false, reason`; a script error is raised at the
    /// test's line.
    fn outcome(lua: &Lua, result: Result<(), Failure>) -> mlua::Result<(bool, Option<String>)> {
        match result {
            Ok(()) => Ok((true, None)),
            Err(Failure::Refused(reason)) => Ok((false, Some(reason))),
            Err(Failure::Script(message)) => Err(here(lua, message)),
        }
    }
}

/// The role `s:join(name, {role = "bot"})` asks for (a player without it).
fn join_role(lua: &Lua, options: Value) -> mlua::Result<Role> {
    let role = match &options {
        Value::Nil => return Ok(Role::Player),
        Value::Table(t) => t.get::<Value>("role")?,
        other => {
            return Err(here(
                lua,
                format!(
                    "s:join: argument 2 (options) must be a table such as {{role = \"bot\"}}, got {}",
                    other.type_name()
                ),
            ));
        }
    };
    match role {
        Value::Nil => Ok(Role::Player),
        Value::String(r) if r.as_bytes() == b"player" => Ok(Role::Player),
        Value::String(r) if r.as_bytes() == b"bot" => Ok(Role::Bot),
        other => Err(here(
            lua,
            format!(
                "s:join: options.role must be \"player\" or \"bot\", got {}",
                other
                    .to_string()
                    .unwrap_or_else(|_| other.type_name().to_owned())
            ),
        )),
    }
}

fn data_arg(lua: &Lua, method: &str, v: Value) -> mlua::Result<Json> {
    match v {
        Value::Nil => Ok(Json::Null),
        v => lua_to_json(lua, v)
            .map_err(|e| here(lua, format!("s:{method}: data: {}", describe(&e)))),
    }
}

impl UserData for LuaSession {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("host", |lua, this| this.player(lua, this.0.host()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        let methods = &mut Listed(methods);
        methods.add_method("join", |lua, this, (name, options): (Value, Value)| {
            let Value::String(name) = name else {
                return Err(here(
                    lua,
                    format!(
                        "s:join: argument 1 (name) must be a string, got {}",
                        name.type_name()
                    ),
                ));
            };
            let role = join_role(lua, options)?;
            match this.0.join(&name.to_str()?, role) {
                Ok(id) => Ok((Value::Table(this.player(lua, &id)?), None)),
                Err(Failure::Refused(reason)) => Ok((Value::Nil, Some(reason))),
                Err(Failure::Script(message)) => Err(here(lua, message)),
            }
        });
        methods.add_method(
            "act",
            |lua, this, (player, name, data): (Value, Value, Value)| {
                let member = this.member(lua, "act", &player)?;
                let Value::String(name) = name else {
                    return Err(here(
                        lua,
                        format!(
                            "s:act: argument 2 (action name) must be a string, got {}",
                            name.type_name()
                        ),
                    ));
                };
                let data = data_arg(lua, "act", data)?;
                LuaSession::outcome(lua, this.0.act(&member, &name.to_str()?, data))
            },
        );
        methods.add_method("event", |lua, this, (name, data): (Value, Value)| {
            let Value::String(name) = name else {
                return Err(here(
                    lua,
                    format!(
                        "s:event: argument 1 (event name) must be a string, got {}",
                        name.type_name()
                    ),
                ));
            };
            let data = data_arg(lua, "event", data)?;
            LuaSession::outcome(lua, this.0.event(&name.to_str()?, data))
        });
        methods.add_method("leave", |lua, this, player: Value| {
            let member = this.member(lua, "leave", &player)?;
            LuaSession::outcome(lua, this.0.leave(&member)).map(|_| ())
        });
        for (method, connected) in [("disconnect", false), ("reconnect", true)] {
            methods.add_method(method, move |lua, this, player: Value| {
                let member = this.member(lua, method, &player)?;
                LuaSession::outcome(lua, this.0.connect(&member, connected)).map(|_| ())
            });
        }
        methods.add_method("advance", |lua, this, ms: Value| {
            let ms = match ms {
                Value::Integer(n) if n >= 0 => n as u64,
                Value::Number(n) if n >= 0.0 && n.is_finite() => n as u64,
                other => {
                    return Err(here(
                        lua,
                        format!(
                            "s:advance: argument 1 (milliseconds) must be a number of 0 or more, got {}",
                            other.type_name()
                        ),
                    ));
                }
            };
            let harness = this.0.harness();
            harness.advance(ms).map_err(|f| here(lua, f.message().to_owned()))
        });
        methods.add_method("now", |_, this, ()| Ok(this.0.harness().now()));
        methods.add_method("view", |lua, this, player: Value| {
            let member = this.member(lua, "view", &player)?;
            let seat = this.0.seat(&member).ok_or_else(|| {
                here(lua, format!("s:view: no player '{member}' in this session"))
            })?;
            lua.to_value(&seat.view)
        });
        methods.add_method(
            "events",
            |lua, this, (player, name): (Value, Option<String>)| {
                let member = this.member(lua, "events", &player)?;
                let seat = this.0.seat(&member).ok_or_else(|| {
                    here(
                        lua,
                        format!("s:events: no player '{member}' in this session"),
                    )
                })?;
                let list = lua.create_table()?;
                for r in seat.received {
                    let Received::Event { seq, name: n, data } = r else {
                        continue;
                    };
                    if name.as_ref().is_some_and(|want| *want != n) {
                        continue;
                    }
                    let e = lua.create_table()?;
                    e.raw_set("name", n)?;
                    e.raw_set("data", lua.to_value(&data)?)?;
                    e.raw_set("seq", seq)?;
                    list.raw_push(e)?;
                }
                Ok(list)
            },
        );
        methods.add_method("emitted", |lua, this, name: Option<String>| {
            let list = lua.create_table()?;
            for (event, data) in this.0.emitted() {
                if name.as_ref().is_some_and(|want| *want != event) {
                    continue;
                }
                let e = lua.create_table()?;
                e.raw_set("name", event)?;
                e.raw_set("data", lua.to_value(&data)?)?;
                list.raw_push(e)?;
            }
            Ok(list)
        });
        methods.add_method("results", |lua, this, ()| match this.0.results() {
            Some(r) => lua.to_value(&r),
            None => Ok(Value::Nil),
        });
        methods.add_method("report", |lua, this, ()| match this.0.report() {
            Some(r) => lua.to_value(&r),
            None => Ok(Value::Nil),
        });
        methods.add_method("players", |lua, this, ()| {
            let list = lua.create_table()?;
            for p in this.0.summary().map(|s| s.players).unwrap_or_default() {
                let t = lua.create_table()?;
                t.raw_set("id", p.id)?;
                t.raw_set("name", p.name)?;
                t.raw_set("role", p.role.as_str())?;
                t.raw_set("connected", p.connected)?;
                list.raw_push(t)?;
            }
            Ok(list)
        });
    }
}
