//! One session's Lua state: the game table, the session state, and `ctx`.
//!
//! [`GameVm`] is owned by exactly one session actor and is the only way the
//! engine calls into a game. Every handler call:
//! 1. gets a fresh CPU allowance;
//! 2. can be undone: a failed or refused call puts back the state as the last
//!    successful one left it, read back from its saved JSON (the copy every
//!    successful call makes anyway, and the one a restart reads);
//! 3. collects what the script asked for through `ctx` as [`Effect`]s, which the
//!    actor applies only if the call succeeded.
//!
//! Architecture Invariant: this module knows nothing about sockets, sequence
//! numbers or persistence; it turns calls into effects and views.

use std::sync::Arc;

use mlua::{Lua, LuaSerdeExt, MultiValue, Table, Value};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::budget::CallBudget;
use super::catalog::{Rules, load_game_table};
use super::copy::{deep_copy, shared_table};
use super::ctx::{SplitMix64, make_ctx};
use super::json::{SizedError, call_to_json};
use super::json_text::lua_to_json_text;
use super::sandbox::{self, Limits};
use super::saved::SavedState;

/// A member as the rules see it.
#[derive(Debug, Clone)]
pub struct PlayerInfo {
    /// Shared with the session's member record: building one allocates nothing.
    pub id: Arc<str>,
    /// The name everyone sees: the nickname they joined with (trimmed,
    /// NFC), a generated one, or the one `ctx.rename` gave; the host's is `Host`.
    pub name: Arc<str>,
    /// In a session with generated names, the name they typed; `None` otherwise.
    pub real_name: Option<Arc<str>>,
    /// Whether they host the session or play in it.
    pub role: crate::protocol::Role,
    /// Whether a socket is attached to their seat now.
    pub connected: bool,
}

/// Something a handler asked for through `ctx`, applied after the call succeeds.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `ctx.broadcast(name, data)`: an `event` frame to every member.
    Broadcast {
        /// The `name` of the `event` frame.
        name: String,
        /// The `data` of the `event` frame; `null` when the call gave none.
        data: Json,
    },
    /// `ctx.send(to, name, data)`: an `event` frame to one member.
    Send {
        /// The member's id; a send to someone not in the session is dropped.
        to: String,
        /// The `name` of the `event` frame.
        name: String,
        /// The `data` of the `event` frame; `null` when the call gave none.
        data: Json,
    },
    /// `ctx.after(ms, name, data)`: a timer; when it is due, the game's
    /// `timer(state, ctx, name, data)` runs.
    After {
        /// The id `ctx.after` returned: the session's timers are numbered from 1.
        id: u64,
        /// Delay from the time of the call, in ms (at most a week).
        ms: u64,
        /// The `name` the `timer` handler gets.
        name: String,
        /// The `data` the `timer` handler gets; `null` when the call gave none.
        data: Json,
    },
    /// `ctx.cancel(id)`: the timer is not to fire; nothing happens if it already has.
    Cancel {
        /// The id `ctx.after` returned.
        id: u64,
    },
    /// `ctx.kick(player, reason)`: the member is removed with a `kicked` error
    /// and cannot join again under that name until `ctx.readmit`.
    Kick {
        /// The member's id; nothing happens if they are not in the session.
        player: String,
        /// Sent to the member with the `kicked` error; `removed by the game`
        /// when the call gave none.
        reason: String,
    },
    /// `ctx.readmit(name)`: someone removed by a kick may join again.
    Readmit {
        /// The name they had when they were kicked.
        name: String,
    },
    /// `ctx.rename(player, name)`: the member is called `name` from now on.
    /// `name` passed the session's name rules when the call made it.
    Rename {
        /// The member's id.
        player: String,
        /// The new name, cleaned (`clean_name`).
        name: String,
    },
    /// `ctx.report(results)`: the results so far, served by
    /// `GET /api/sessions/{id}/results` until the game finishes.
    Report {
        /// Results as `ctx.finish` takes them.
        results: Json,
    },
    /// `ctx.redraw(who)`: this call changed what these members see and
    /// nobody else's screen, so the next view pass runs `view` for them only.
    /// A call that makes none redraws everyone.
    Redraw {
        /// Member ids, or the roles `host` and `player` (everyone with it).
        who: Vec<String>,
    },
    /// `ctx.emit(name, data)`: a webhook to the node's receivers (none
    /// without `--webhook`).
    Emit {
        /// The webhook's `event`; never starts with `session.`.
        name: String,
        /// Its `data`; `null` when the call gave none.
        data: Json,
    },
    /// `ctx.finish(results)`: the game ends, its timers are dropped and every
    /// member gets an `ended` frame; only the first finish counts.
    Finish {
        /// What the `ended` frame and `GET /api/sessions/{id}/results` carry;
        /// `null` when the call gave none.
        results: Json,
    },
}

/// The session's rules for names, which `ctx.rename` asks: the name
/// cleaned and its uniqueness key, or why it is refused.
pub trait NameRules: Send + Sync {
    /// `Ok((cleaned, key))` or the sentence for the game.
    fn accept(&self, name: &str) -> Result<(String, Box<str>), String>;
    /// The key two names share when they look alike.
    fn key(&self, name: &str) -> Box<str>;
}

/// A handler call that failed: the state was rolled back.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    /// `quiz.lua:57: message`.
    pub message: String,
}

/// What a successful handler call produced.
#[derive(Debug, Default)]
pub struct CallOutcome {
    /// What the handler asked for through `ctx`, in the order it asked; empty
    /// after a refusal.
    pub effects: Vec<Effect>,
    /// `join`/`action`/`event` returned `false, "reason"`: nothing happened.
    pub refusal: Option<String>,
}

/// The handlers whose `false, "reason"` is a refusal. `leave` and `timer`
/// have nobody to tell, so what they return is ignored.
const REFUSABLE: [&str; 3] = ["join", "action", "event"];

/// Per-call data the `ctx` functions reach through the state's app data.
pub(super) struct CallScope {
    /// `ctx` works only while a handler runs.
    pub(super) active: bool,
    pub(super) now_ms: i64,
    pub(super) effects: Vec<Effect>,
    pub(super) players: Vec<PlayerInfo>,
    /// The Lua list `ctx.players()` returns, built once per change of the
    /// member list rather than on every call (games call it per action).
    pub(super) players_table: Option<Table>,
    /// Session-seeded generator behind `ctx.random` and `math.random`.
    pub(super) rng: SplitMix64,
    pub(super) next_timer: u64,
    pub(super) log_lines: u32,
    /// Bytes of messages, timers and results this call has emitted.
    pub(super) emitted: usize,
    /// Timers the session has waiting, set by the session when they change;
    /// `ctx.after` counts this call's own on top.
    pub(super) pending_timers: usize,
    /// Timers this call has started.
    pub(super) timers_added: usize,
    /// The state's limits on what a call may emit.
    pub(super) limits: Limits,
    /// For log lines.
    pub(super) session: String,
    /// What `ctx.rename` checks a name against; none in a VM without a session.
    pub(super) names: Option<Arc<dyn NameRules>>,
}

/// The persistent numbers of a VM, stored in snapshots.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct VmCounters {
    /// The state of the generator behind `ctx.random` and `math.random`.
    pub rng: u64,
    /// The id of the last timer `ctx.after` started (0 before the first); the
    /// next gets the one after.
    pub next_timer: u64,
}

/// The Lua state of one session: its game, its state and `ctx`.
pub struct GameVm {
    lua: Lua,
    budget: Arc<CallBudget>,
    limits: Limits,
    /// The version of the rules this state runs.
    rules: Arc<Rules>,
    /// The table the game file returned.
    game: Table,
    /// The session state (what `init` returned, changed by handlers).
    state: Value,
    /// The state as JSON text after the last successful handler call: every
    /// call must leave a state that can be saved, so it is converted then; the
    /// snapshot serializes it, and a failed or refused call is rolled back
    /// to it. `None` until the state was first converted. Shared with the
    /// session, which compares it with what it last stored.
    saved: Option<Arc<SavedState>>,
    /// The table of `ctx` functions every handler gets.
    ctx: Table,
    /// Whether a call that leaves one table in two places of the state fails.
    check_shared: bool,
}

impl GameVm {
    /// A VM with `rules` loaded and no state yet (call `init` or `restore_state`).
    pub fn new(
        rules: Arc<Rules>,
        limits: Limits,
        session: &str,
        counters: VmCounters,
    ) -> Result<Self, ScriptError> {
        let budget = CallBudget::new();
        let lua = sandbox::new_state(limits, budget.clone()).map_err(script_error)?;
        lua.set_app_data(CallScope {
            active: false,
            now_ms: 0,
            effects: Vec::new(),
            players: Vec::new(),
            players_table: None,
            rng: SplitMix64(counters.rng),
            next_timer: counters.next_timer,
            log_lines: 0,
            emitted: 0,
            pending_timers: 0,
            timers_added: 0,
            limits,
            session: session.to_owned(),
            names: None,
        });
        let ctx = make_ctx(&lua).map_err(script_error)?;
        budget.reset(limits.cpu_units, limits.cpu_time);
        let game = load_game_table(&lua, &rules).map_err(|message| ScriptError { message })?;
        if let Some(watch) = &rules.globals {
            watch_globals(&lua, watch.clone()).map_err(script_error)?;
        }
        // Setting up the sandbox and compiling the game leave garbage (the
        // parser's buffers, replaced library functions) that an idle session
        // would otherwise carry until its first collection: ~3 KB each.
        lua.gc_collect().map_err(script_error)?;
        Ok(GameVm {
            lua,
            budget,
            limits,
            rules,
            game,
            state: Value::Nil,
            saved: None,
            ctx,
            check_shared: false,
        })
    }

    /// The version of the rules this state runs.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// The generator and timer counters, for a snapshot.
    pub fn counters(&self) -> VmCounters {
        self.with_scope(|s| VmCounters {
            rng: s.rng.0,
            next_timer: s.next_timer,
        })
    }

    /// Memory the state uses now, in bytes.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// How many timers the session has waiting (for `ctx::MAX_PENDING_TIMERS`).
    pub fn set_pending_timers(&self, pending: usize) {
        self.with_scope(|s| s.pending_timers = pending);
    }

    /// What `ctx.rename` checks names against.
    pub fn set_name_rules(&self, names: Arc<dyn NameRules>) {
        self.with_scope(|s| s.names = Some(names));
    }

    /// Who `ctx.players()` lists.
    pub fn set_players(&self, players: Vec<PlayerInfo>) {
        self.update_players(|list| *list = players);
    }

    /// Changes who `ctx.players()` lists in place (one seat, not the whole
    /// list: a session of 10 000 would otherwise rebuild it on every join).
    pub fn update_players(&self, change: impl FnOnce(&mut Vec<PlayerInfo>)) {
        self.with_scope(|s| {
            change(&mut s.players);
            s.players_table = None;
        });
    }

    /// Switches to a newer version of the rules, keeping the state; runs the
    /// new version's `migrate(state)` if it has one. On error the old version
    /// keeps running.
    pub fn upgrade(&mut self, rules: Arc<Rules>) -> Result<(), ScriptError> {
        self.budget
            .reset(self.limits.cpu_units, self.limits.cpu_time);
        let game = match load_game_table(&self.lua, &rules) {
            Ok(g) => g,
            Err(message) => {
                let _ = super::catalog::install_require(&self.lua, self.rules.clone());
                return Err(ScriptError { message });
            }
        };
        let old_game = std::mem::replace(&mut self.game, game);
        if let Err(e) = self.migrate() {
            self.game = old_game;
            let _ = super::catalog::install_require(&self.lua, self.rules.clone());
            return Err(e);
        }
        self.rules = rules;
        Ok(())
    }

    /// From now on (`recess test`, `recess sim`), a call that leaves one
    /// table in two places of the state fails: the state is saved as JSON,
    /// so a rollback, a restart or a failover would bring back two tables,
    /// and a change to one would no longer show in the other.
    pub fn check_shared_tables(&mut self, on: bool) {
        self.check_shared = on;
    }

    /// Runs the loaded rules' `migrate(state)`, if they have one; rolls back on error.
    pub fn migrate(&mut self) -> Result<(), ScriptError> {
        let Ok(Value::Function(migrate)) = self.game.raw_get::<Value>("migrate") else {
            return Ok(());
        };
        let backup = self.backup()?;
        self.budget
            .reset(self.limits.cpu_units, self.limits.cpu_time);
        self.saved = None;
        match migrate.call::<Value>(self.state.clone()) {
            Ok(Value::Table(t)) => self.state = Value::Table(t),
            Ok(_) => {}
            Err(e) => {
                self.state = backup;
                return Err(script_error(e));
            }
        }
        Ok(())
    }

    /// Runs `init(ctx, params)`; its return value becomes the state.
    pub fn init(&mut self, params: &Json, now_ms: i64) -> Result<CallOutcome, ScriptError> {
        let params = self.to_lua(params)?;
        self.state = self
            .lua
            .create_table()
            .map(Value::Table)
            .map_err(script_error)?;
        self.call("init", now_ms, |_, _, ctx| Ok((ctx, params)))
    }

    /// Replaces the state with one read back from a snapshot.
    pub fn restore_state(&mut self, state: &RawValue) -> Result<(), ScriptError> {
        let json: Json = serde_json::from_str(state.get()).map_err(|e| ScriptError {
            message: format!("the saved state cannot be read: {e}"),
        })?;
        self.state = self.to_lua(&json)?;
        // Written again from the table: the text then has the table's
        // order of keys, as every later save has.
        self.saved = None;
        self.state_json()?;
        Ok(())
    }

    /// The state as saved, for a snapshot: what the last handler call left
    /// (converted when it returned), or converted now.
    pub fn state_json(&mut self) -> Result<Arc<SavedState>, ScriptError> {
        if let Some(saved) = &self.saved {
            return Ok(saved.clone());
        }
        let saved =
            Arc::new(lua_to_json_text(&self.lua, self.state.clone()).map_err(script_error)?);
        self.saved = Some(saved.clone());
        Ok(saved)
    }

    /// Runs `join(state, ctx, player)`: `player` entered the session, and the
    /// game may refuse them. A game without `join` admits everyone.
    pub fn join(&mut self, player: &PlayerInfo, now_ms: i64) -> Result<CallOutcome, ScriptError> {
        self.player_call("join", player, now_ms)
    }

    /// Runs `leave(state, ctx, player)`: `player` has left the session. It
    /// cannot refuse: what it returns is ignored.
    pub fn leave(&mut self, player: &PlayerInfo, now_ms: i64) -> Result<CallOutcome, ScriptError> {
        self.player_call("leave", player, now_ms)
    }

    /// Runs `action(state, ctx, player, name, data)`: `player` sent action
    /// `name`, and the game may refuse it.
    pub fn action(
        &mut self,
        player: &PlayerInfo,
        name: &str,
        data: &Json,
        now_ms: i64,
    ) -> Result<CallOutcome, ScriptError> {
        let data = self.to_lua(data)?;
        self.call("action", now_ms, |lua, state, ctx| {
            Ok((state, ctx, player_table(lua, player)?, name, data))
        })
    }

    /// Runs `timer(state, ctx, name, data)`: a timer `ctx.after` started is due.
    pub fn timer(
        &mut self,
        name: &str,
        data: &Json,
        now_ms: i64,
    ) -> Result<CallOutcome, ScriptError> {
        self.named_call("timer", name, data, now_ms)
    }

    /// Runs `event(state, ctx, name, data)`: a backend posted event `name` over
    /// REST, and the game may refuse it.
    pub fn event(
        &mut self,
        name: &str,
        data: &Json,
        now_ms: i64,
    ) -> Result<CallOutcome, ScriptError> {
        self.named_call("event", name, data, now_ms)
    }

    /// `handler(state, ctx, player)`: `join` and `leave`.
    fn player_call(
        &mut self,
        handler: &str,
        player: &PlayerInfo,
        now_ms: i64,
    ) -> Result<CallOutcome, ScriptError> {
        self.call(handler, now_ms, |lua, state, ctx| {
            Ok((state, ctx, player_table(lua, player)?))
        })
    }

    /// `handler(state, ctx, name, data)`: `timer` and `event`.
    fn named_call(
        &mut self,
        handler: &str,
        name: &str,
        data: &Json,
        now_ms: i64,
    ) -> Result<CallOutcome, ScriptError> {
        let data = self.to_lua(data)?;
        self.call(handler, now_ms, |_, state, ctx| {
            Ok((state, ctx, name, data))
        })
    }

    /// What `player` sees now. A view must be a table; nulls inside it are
    /// dropped (a merge patch cannot carry them).
    pub fn view(&mut self, player: &PlayerInfo) -> Result<Json, ScriptError> {
        let Ok(Value::Function(view)) = self.game.raw_get::<Value>("view") else {
            return Err(ScriptError {
                message: format!(
                    "{}: the game has no view function",
                    self.rules.main.chunk_name
                ),
            });
        };
        self.state_ready()?;
        self.budget
            .reset(self.limits.cpu_units, self.limits.cpu_time);
        let fields = player_fields(player);
        let json = match call_to_json(
            &self.lua,
            &view,
            &self.state,
            &fields,
            self.limits.view_bytes,
        ) {
            Ok(json) => json,
            Err(SizedError::Lua(e)) => return Err(script_error(e)),
            Err(SizedError::TooBig(big)) => {
                return Err(ScriptError {
                    message: format!(
                        "{}: view: the view for {} is {}; a view may be at most {}",
                        self.rules.main.chunk_name,
                        player.name,
                        sandbox::size_text(big.bytes),
                        sandbox::limit_text(self.limits.view_bytes)
                    ),
                });
            }
        };
        match json {
            Json::Object(mut map) => {
                strip_nulls(&mut map);
                Ok(Json::Object(map))
            }
            Json::Array(a) if a.is_empty() => Ok(Json::Object(Default::default())),
            other => Err(ScriptError {
                message: format!(
                    "{}: view must return a table of named fields, not {}",
                    defined_at(&view, &self.rules.main.chunk_name),
                    json_kind(&other)
                ),
            }),
        }
    }

    /// Runs handler `name` with rollback. `args` makes its arguments from the
    /// state and `ctx` as they are when it runs. What `init` returns is the
    /// new state; what another handler returns is an optional replacement.
    fn call<A: mlua::IntoLuaMulti>(
        &mut self,
        name: &str,
        now_ms: i64,
        args: impl FnOnce(&Lua, Value, Table) -> mlua::Result<A>,
    ) -> Result<CallOutcome, ScriptError> {
        let is_init = name == "init";
        let handler = match self.game.raw_get::<Value>(name) {
            Ok(Value::Function(f)) => f,
            _ => return Ok(CallOutcome::default()),
        };
        if !is_init {
            self.state_ready()?;
            // What a rollback goes back to.
            self.state_json()?;
        }
        let (rng, next_timer) = self.with_scope(|s| {
            s.active = true;
            s.now_ms = now_ms;
            s.effects.clear();
            s.log_lines = 0;
            s.emitted = 0;
            s.timers_added = 0;
            (s.rng.0, s.next_timer)
        });
        self.budget
            .reset(self.limits.cpu_units, self.limits.cpu_time);
        // The state as it is now: a rollback that could not rebuild it is
        // made good above, before the handler is given it.
        let result = args(&self.lua, self.state.clone(), self.ctx.clone())
            .and_then(|a| handler.call::<MultiValue>(a));
        let effects = self.with_scope(|s| {
            s.active = false;
            std::mem::take(&mut s.effects)
        });
        let rollback = |vm: &mut GameVm| {
            vm.put_back_saved();
            vm.with_scope(|s| {
                s.rng.0 = rng;
                s.next_timer = next_timer;
            });
        };
        let returned = match result {
            Ok(values) => values,
            Err(e) => {
                rollback(self);
                // A call that failed (above all, one stopped by the memory
                // limit) leaves garbage behind; collect it now rather than
                // let the next call or view meet a full budget.
                let _ = self.lua.gc_collect();
                return Err(script_error(e));
            }
        };
        let mut values = returned.into_iter();
        let first = values.next().unwrap_or(Value::Nil);
        if first == Value::Boolean(false) && REFUSABLE.contains(&name) {
            let reason = match values.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                _ => format!("the game refused this {name}"),
            };
            rollback(self);
            return Ok(CallOutcome {
                effects: Vec::new(),
                refusal: Some(reason),
            });
        }
        match first {
            Value::Table(t) => self.state = Value::Table(t),
            Value::Nil => {}
            other if is_init => {
                rollback(self);
                return Err(ScriptError {
                    message: format!(
                        "{}: init must return the state table, not {}",
                        defined_at(&handler, &self.rules.main.chunk_name),
                        sandbox::kind(&other)
                    ),
                });
            }
            _ => {}
        }
        if self.check_shared
            && let Some((first, again)) = shared_table(&self.state)
        {
            rollback(self);
            return Err(ScriptError {
                message: format!(
                    "{}: {name} left one table in two places of the state ({first} and {again}): the state is saved as JSON, so after a refused call, a restart or a failover they would be two tables; keep an id or an index in one of them instead",
                    self.rules.main.chunk_name
                ),
            });
        }
        // A state that cannot be saved would fail every later snapshot:
        // refuse the call that left it, like any failing call.
        match lua_to_json_text(&self.lua, self.state.clone()) {
            Ok(saved) => self.saved = Some(Arc::new(saved)),
            Err(e) => {
                rollback(self);
                return Err(ScriptError {
                    message: format!(
                        "{}: {name} left a state that cannot be saved (keep it to tables, strings, numbers and booleans): {}",
                        self.rules.main.chunk_name,
                        sandbox::describe(&e)
                    ),
                });
            }
        }
        Ok(CallOutcome {
            effects,
            refusal: None,
        })
    }

    /// Puts back the state the last successful call left (an empty table
    /// before `init` returned one). The handler may have changed the live
    /// table in place, so it is rebuilt from its saved JSON; if that does
    /// not fit (a call stopped by the memory limit leaves the memory full of
    /// what it made), once more after letting go of the live table.
    fn put_back_saved(&mut self) {
        if self.rebuild_state().is_ok() {
            return;
        }
        self.state = Value::Nil;
        let _ = self.lua.gc_collect();
        if let Err(e) = self.rebuild_state() {
            // Not even the saved state fits: the next call tries again.
            tracing::error!("a rolled-back state could not be rebuilt: {}", e.message);
        }
    }

    /// Rebuilds the state if the last rollback could not (see
    /// `put_back_saved`), before anything reads it.
    fn state_ready(&mut self) -> Result<(), ScriptError> {
        if self.state == Value::Nil {
            self.rebuild_state()?;
        }
        Ok(())
    }

    /// `state` from the saved JSON (an empty table when there is none).
    fn rebuild_state(&mut self) -> Result<(), ScriptError> {
        let rebuilt = match &self.saved {
            Some(saved) => match serde_json::from_str::<Json>(saved.text()) {
                Ok(json) => self.lua.to_value(&json),
                Err(e) => Err(mlua::Error::runtime(format!(
                    "the saved state cannot be read: {e}"
                ))),
            },
            None => self.lua.create_table().map(Value::Table),
        };
        self.state = rebuilt.map_err(script_error)?;
        Ok(())
    }

    fn backup(&self) -> Result<Value, ScriptError> {
        self.budget
            .reset(self.limits.cpu_units, self.limits.cpu_time);
        deep_copy(&self.lua, self.state.clone()).map_err(script_error)
    }

    fn with_scope<R>(&self, f: impl FnOnce(&mut CallScope) -> R) -> R {
        match self.lua.app_data_mut::<CallScope>() {
            Some(mut scope) => f(&mut scope),
            // The scope is installed in `new` and never removed.
            None => unreachable!("GameVm without a call scope"),
        }
    }

    fn to_lua(&self, json: &Json) -> Result<Value, ScriptError> {
        self.lua.to_value(json).map_err(script_error)
    }
}

/// Records every new global set from now on in `watch`, with the line
/// that set it (`recess check`: a handler's missing `local`).
fn watch_globals(lua: &Lua, watch: Arc<super::catalog::GlobalWatch>) -> mlua::Result<()> {
    let record =
        lua.create_function(move |lua, (globals, key, value): (Table, Value, Value)| {
            if let Value::String(name) = &key {
                let at = sandbox::script_location(lua).unwrap_or_default();
                watch.record(name.to_string_lossy(), at);
            }
            globals.raw_set(key, value)
        })?;
    let meta = lua.create_table()?;
    meta.raw_set("__newindex", record)?;
    lua.globals().set_metatable(Some(meta))
}

fn script_error(e: mlua::Error) -> ScriptError {
    ScriptError {
        message: sandbox::describe(&e),
    }
}

/// Where `f` was defined, as `quiz.lua:150` (`chunk` when Lua cannot tell).
fn defined_at(f: &mlua::Function, chunk: &str) -> String {
    let info = f.info();
    match (info.short_src, info.line_defined) {
        (Some(file), Some(line)) if line > 0 => format!("{file}:{line}"),
        _ => chunk.to_owned(),
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "nil",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a table",
    }
}

fn strip_nulls(map: &mut serde_json::Map<String, Json>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Json::Object(inner) = v {
            strip_nulls(inner);
        }
    }
}

/// The fields of the `player` table handlers and `view` get: `id`, `name`,
/// `role`, and `real_name` in a session with generated names.
/// Built on the stack: a view pass asks for one per member.
fn player_fields(p: &PlayerInfo) -> PlayerFields<'_> {
    let real = p.real_name.as_deref().unwrap_or("");
    PlayerFields {
        fields: [
            (c"id", &*p.id),
            (c"name", &*p.name),
            (c"role", p.role.as_str()),
            (c"real_name", real),
        ],
        len: if p.real_name.is_some() { 4 } else { 3 },
    }
}

struct PlayerFields<'a> {
    fields: [(&'static std::ffi::CStr, &'a str); 4],
    len: usize,
}

impl<'a> std::ops::Deref for PlayerFields<'a> {
    type Target = [(&'static std::ffi::CStr, &'a str)];
    fn deref(&self) -> &Self::Target {
        &self.fields[..self.len]
    }
}

pub(super) fn player_table(lua: &Lua, p: &PlayerInfo) -> mlua::Result<Table> {
    let fields = player_fields(p);
    let t = lua.create_table_with_capacity(0, fields.len())?;
    for &(key, value) in fields.iter() {
        t.raw_set(key.to_str().unwrap_or_default(), value)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
