//! `ctx`: what a handler can do — the functions of the `ctx` table and the
//! limits on them (timers, log lines, the size of what a call emits). Each
//! function records an `Effect` in the call's `CallScope`; `GameVm` applies
//! nothing itself, the session does once the call succeeded.

use mlua::{Lua, LuaSerdeExt, Table, Value, Variadic};
use serde_json::Value as Json;

use super::json::{SizedError, lua_to_json_sized};
use super::sandbox::{self, Limits};
use super::vm::{CallScope, Effect, player_table};

/// Longest delay `ctx.after` accepts (a week), so timers always fit a snapshot.
const MAX_TIMER_MS: i64 = 7 * 24 * 3600 * 1000;
/// Timers a session may have waiting at once (they live outside Lua's
/// memory budget, in the session and its snapshot).
pub(super) const MAX_PENDING_TIMERS: usize = 1000;
/// `ctx.log` lines one call may write, so a looping script cannot flood the log.
const MAX_LOG_LINES: u32 = 50;
/// A log line's length, and the most of a table `ctx.log` converts to show.
const MAX_LOG_BYTES: usize = 1000;

/// Where the `ctx` table is kept, so its functions can tell `ctx:send(…)`
/// (the table passed as the first argument) from a wrong first argument.
const CTX_KEY: &str = "recess.ctx";

/// A `ctx` function's arguments, checked one by one. Every message names the
/// function and the argument: `ctx.send: argument 1 (player id) must be a
/// string, got nil`. The script's file and line are put in front when the
/// error reaches Lua (`sandbox::plain_errors`).
struct Args {
    func: &'static str,
    params: &'static [&'static str],
    values: Vec<Value>,
}

impl Args {
    /// Checks that `ctx` was called with a dot and with at most as many
    /// arguments as it takes.
    fn new(
        lua: &Lua,
        func: &'static str,
        params: &'static [&'static str],
        values: Variadic<Value>,
    ) -> mlua::Result<Args> {
        let values: Vec<Value> = values.into_iter().collect();
        if let Some(Value::Table(t)) = values.first()
            && let Ok(ctx) = lua.named_registry_value::<Table>(CTX_KEY)
            && t.to_pointer() == ctx.to_pointer()
        {
            let short = func.strip_prefix("ctx.").unwrap_or(func);
            return Err(fail(format!(
                "{func}: call it with a dot, {func}(…), not ctx:{short}(…)"
            )));
        }
        if values.len() > params.len() {
            let takes = match params.len() {
                0 => "takes no arguments".to_owned(),
                1 => format!("takes at most 1 argument ({})", params[0]),
                n => format!("takes at most {n} arguments ({})", params.join(", ")),
            };
            return Err(fail(format!("{func}: {takes}, got {}", values.len())));
        }
        Ok(Args {
            func,
            params,
            values,
        })
    }

    /// Argument `n` (from 1); `nil` when it was not given.
    fn get(&self, n: usize) -> &Value {
        self.values.get(n - 1).unwrap_or(&Value::Nil)
    }

    /// Argument `n` moved out.
    fn take(&mut self, n: usize) -> Value {
        self.values
            .get_mut(n - 1)
            .map(std::mem::take)
            .unwrap_or(Value::Nil)
    }

    /// `func: argument n (param) must be EXPECTED, got VALUE`.
    fn bad(&self, n: usize, expected: &str) -> mlua::Error {
        let param = self.params.get(n - 1).copied().unwrap_or("?");
        fail(format!(
            "{}: argument {n} ({param}) must be {expected}, got {}",
            self.func,
            sandbox::value_text(self.get(n))
        ))
    }

    fn string(&self, n: usize) -> mlua::Result<String> {
        match self.get(n) {
            Value::String(s) => Ok(s.to_string_lossy()),
            _ => Err(self.bad(n, "a string")),
        }
    }

    fn opt_string(&self, n: usize) -> mlua::Result<Option<String>> {
        match self.get(n) {
            Value::Nil => Ok(None),
            Value::String(s) => Ok(Some(s.to_string_lossy())),
            _ => Err(self.bad(n, "a string or nil")),
        }
    }

    /// A whole number (an integer, or a float without a fraction).
    fn whole(&self, n: usize) -> Option<i64> {
        match self.get(n) {
            Value::Integer(i) => Some(*i),
            Value::Number(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            _ => None,
        }
    }

    fn number(&self, n: usize) -> Option<f64> {
        match self.get(n) {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(f) => Some(*f),
            _ => None,
        }
    }
}

/// An error of a `ctx` function (see [`Args`]).
fn fail(message: String) -> mlua::Error {
    mlua::Error::runtime(message)
}

/// Builds the `ctx` table. Its functions find the call in progress through
/// the state's `CallScope`, so one table serves every call.
pub(super) fn make_ctx(lua: &Lua) -> mlua::Result<Table> {
    let ctx = lua.create_table()?;

    fn scope<R>(
        lua: &Lua,
        func: &str,
        f: impl FnOnce(&mut CallScope) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        let mut s = lua
            .app_data_mut::<CallScope>()
            .ok_or_else(|| fail(format!("{func}: ctx is not available here")))?;
        if !s.active {
            return Err(fail(format!(
                "{func}: ctx works only during the handler call it was given to (view and migrate get none; do not keep it for later)"
            )));
        }
        f(&mut s)
    }
    /// Converts what a call emits and counts it against the call's limits:
    /// argument `n` of `args` is the data, `name` is the message's name,
    /// `cap` the limit of one such value (the message limit, or the call's
    /// for results).
    fn data_arg(
        lua: &Lua,
        args: &mut Args,
        n: usize,
        name: &str,
        cap: impl FnOnce(&Limits) -> usize,
    ) -> mlua::Result<Json> {
        let what = args.func;
        let limits = scope(lua, what, |s| Ok(s.limits))?;
        let cap = cap(&limits);
        let (data, bytes) = match args.take(n) {
            Value::Nil => (Json::Null, SCALAR_BYTES),
            v => match lua_to_json_sized(lua, v, cap.saturating_sub(name.len())) {
                Ok(sized) => sized,
                Err(SizedError::Lua(e)) => {
                    let param = args.params.get(n - 1).copied().unwrap_or("data");
                    return Err(fail(format!(
                        "{what}: argument {n} ({param}) must be plain data (tables, strings, numbers, booleans): {}",
                        sandbox::describe(&e)
                    )));
                }
                Err(SizedError::TooBig(big)) => {
                    return Err(fail(format!(
                        "{what}: the {} is {}; it may be at most {}",
                        if what == "ctx.finish" || what == "ctx.report" {
                            "results"
                        } else {
                            "message"
                        },
                        sandbox::size_text(big.bytes + name.len()),
                        sandbox::limit_text(cap)
                    )));
                }
            },
        };
        scope(lua, what, |s| {
            emit(s, what, "messages, timers and results", bytes + name.len())
        })?;
        Ok(data)
    }
    /// What a value without data adds to a call's output.
    const SCALAR_BYTES: usize = 32;

    /// Counts `bytes` more against what one call may emit, or fails `func`
    /// naming what counts (`kinds`: "messages, timers and results").
    fn emit(s: &mut CallScope, func: &str, kinds: &str, bytes: usize) -> mlua::Result<()> {
        let total = s.emitted + bytes;
        if total > s.limits.call_output_bytes {
            return Err(fail(format!(
                "{func}: this call's {kinds} come to {}; one call may emit at most {}",
                sandbox::size_text(total),
                sandbox::limit_text(s.limits.call_output_bytes)
            )));
        }
        s.emitted = total;
        Ok(())
    }

    /// Adds `ctx.NAME`, with errors as plain strings at the script's line.
    fn add<R: mlua::IntoLuaMulti>(
        lua: &Lua,
        ctx: &Table,
        name: &str,
        f: impl Fn(&Lua, Variadic<Value>) -> mlua::Result<R> + mlua::MaybeSend + 'static,
    ) -> mlua::Result<mlua::Function> {
        let f = sandbox::plain_errors(lua, lua.create_function(f)?)?;
        ctx.raw_set(name, f.clone())?;
        Ok(f)
    }

    add(lua, &ctx, "broadcast", |lua, values| {
        let mut args = Args::new(lua, "ctx.broadcast", &["event name", "data"], values)?;
        let name = args.string(1)?;
        let data = data_arg(lua, &mut args, 2, &name, |l| l.message_bytes)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Broadcast { name, data });
            Ok(())
        })
    })?;
    add(lua, &ctx, "emit", |lua, values| {
        let mut args = Args::new(lua, "ctx.emit", &["webhook event name", "data"], values)?;
        let name = args.string(1)?;
        if name.starts_with("session.") {
            return Err(args.bad(1, "a name of your own: `session.` names are Recess's"));
        }
        let data = data_arg(lua, &mut args, 2, &name, |l| l.message_bytes)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Emit { name, data });
            Ok(())
        })
    })?;
    add(lua, &ctx, "send", |lua, values| {
        let mut args = Args::new(
            lua,
            "ctx.send",
            &["player id", "event name", "data"],
            values,
        )?;
        let to = args.string(1)?;
        let name = args.string(2)?;
        let data = data_arg(lua, &mut args, 3, &name, |l| l.message_bytes)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Send { to, name, data });
            Ok(())
        })
    })?;
    add(lua, &ctx, "after", |lua, values| {
        let mut args = Args::new(lua, "ctx.after", &["ms", "timer name", "data"], values)?;
        let ms = args
            .number(1)
            .filter(|ms| (0.0..=MAX_TIMER_MS as f64).contains(ms))
            .ok_or_else(|| {
                args.bad(
                    1,
                    &format!("a number of milliseconds from 0 to {MAX_TIMER_MS} (a week)"),
                )
            })?;
        let name = args.string(2)?;
        let data = data_arg(lua, &mut args, 3, &name, |l| l.message_bytes)?;
        scope(lua, args.func, |s| {
            if s.pending_timers + s.timers_added >= MAX_PENDING_TIMERS {
                return Err(fail(format!(
                    "ctx.after: {MAX_PENDING_TIMERS} timers are already waiting in this session; cancel some with ctx.cancel or start fewer"
                )));
            }
            s.timers_added += 1;
            s.next_timer += 1;
            let id = s.next_timer;
            s.effects.push(Effect::After {
                id,
                ms: ms as u64,
                name,
                data,
            });
            Ok(id)
        })
    })?;
    add(lua, &ctx, "cancel", |lua, values| {
        let args = Args::new(lua, "ctx.cancel", &["timer id"], values)?;
        // Cancelling "no timer" (a field never set) does nothing.
        if args.get(1).is_nil() {
            return Ok(());
        }
        let id = args
            .whole(1)
            .and_then(|id| u64::try_from(id).ok())
            .filter(|&id| id > 0)
            .ok_or_else(|| args.bad(1, "a timer id from ctx.after (a whole number from 1)"))?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Cancel { id });
            Ok(())
        })
    })?;
    add(lua, &ctx, "now", |lua, values| {
        let args = Args::new(lua, "ctx.now", &[], values)?;
        scope(lua, args.func, |s| Ok(s.now_ms))
    })?;
    for (table, name, func) in [
        (ctx.clone(), "random", "ctx.random"),
        (lua.globals().get::<Table>("math")?, "random", "math.random"),
    ] {
        let random = lua.create_function(move |lua, values: Variadic<Value>| {
            let args = Args::new(lua, func, &["m", "n"], values)?;
            let mut s = lua
                .app_data_mut::<CallScope>()
                .ok_or_else(|| fail(format!("{func} is not available here")))?;
            random_value(&mut s.rng, &args)
        })?;
        table.raw_set(name, sandbox::plain_errors(lua, random)?)?;
    }
    add(lua, &ctx, "players", |lua, values| {
        let args = Args::new(lua, "ctx.players", &[], values)?;
        if let Some(list) = scope(lua, args.func, |s| Ok(s.players_table.clone()))? {
            return Ok(list);
        }
        let players = scope(lua, args.func, |s| Ok(s.players.clone()))?;
        let list = lua.create_table_with_capacity(players.len(), 0)?;
        for p in &players {
            let t = player_table(lua, p)?;
            t.raw_set("connected", p.connected)?;
            list.raw_push(t)?;
        }
        list.set_metatable(Some(lua.array_metatable()))?;
        scope(lua, args.func, |s| {
            s.players_table = Some(list.clone());
            Ok(())
        })?;
        Ok(list)
    })?;
    add(lua, &ctx, "kick", |lua, values| {
        let args = Args::new(lua, "ctx.kick", &["player id", "reason"], values)?;
        let player = args.string(1)?;
        let reason = args.opt_string(2)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Kick {
                player,
                reason: reason.unwrap_or_else(|| "removed by the game".to_owned()),
            });
            Ok(())
        })
    })?;
    add(lua, &ctx, "readmit", |lua, values| {
        let args = Args::new(lua, "ctx.readmit", &["name"], values)?;
        let name = args.string(1)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Readmit { name });
            Ok(())
        })
    })?;
    add(lua, &ctx, "rename", |lua, values| {
        let args = Args::new(lua, "ctx.rename", &["player id", "new name"], values)?;
        let player = args.string(1)?;
        let name = args.string(2)?;
        scope(lua, args.func, |s| {
            // Each rename is kept until the call ends: it counts against
            // what one call may emit, like a message.
            let bytes = SCALAR_BYTES + player.len() + name.len();
            emit(
                s,
                "ctx.rename",
                "messages, timers, renames and results",
                bytes,
            )?;
            Ok(rename(s, player, &name))
        })
    })?;
    add(lua, &ctx, "redraw", |lua, values| {
        let args = Args::new(lua, "ctx.redraw", &["who"], values)?;
        let who: Vec<String> = match args.get(1) {
            Value::String(s) => vec![s.to_string_lossy()],
            Value::Table(t) if t.raw_len() > 0 || t.is_empty() => {
                let mut who = Vec::with_capacity(t.raw_len());
                for (n, v) in t.sequence_values::<Value>().enumerate() {
                    match v? {
                        Value::String(s) => who.push(s.to_string_lossy()),
                        other => {
                            return Err(fail(format!(
                                "ctx.redraw: argument 1 (who) must be a list of player ids and roles, got {} at [{}]",
                                sandbox::value_text(&other),
                                n + 1
                            )));
                        }
                    }
                }
                who
            }
            _ => {
                return Err(args.bad(
                    1,
                    "a player id, a role (\"host\", \"player\") or a list of them",
                ));
            }
        };
        scope(lua, args.func, |s| {
            // Kept until the call ends: counted like a message.
            let bytes = who.iter().map(|w| SCALAR_BYTES + w.len()).sum();
            emit(
                s,
                "ctx.redraw",
                "messages, timers, redraws and results",
                bytes,
            )?;
            s.effects.push(Effect::Redraw { who });
            Ok(())
        })
    })?;
    add(lua, &ctx, "report", |lua, values| {
        let mut args = Args::new(lua, "ctx.report", &["results"], values)?;
        if !matches!(args.get(1), Value::Nil | Value::Table(_)) {
            return Err(args.bad(1, "a table (columns and rows) or nil"));
        }
        let results = data_arg(lua, &mut args, 1, "", |l| l.call_output_bytes)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Report { results });
            Ok(())
        })
    })?;
    add(lua, &ctx, "finish", |lua, values| {
        let mut args = Args::new(lua, "ctx.finish", &["results"], values)?;
        if !matches!(args.get(1), Value::Nil | Value::Table(_)) {
            return Err(args.bad(1, "a table (columns and rows) or nil"));
        }
        let results = data_arg(lua, &mut args, 1, "", |l| l.call_output_bytes)?;
        scope(lua, args.func, |s| {
            s.effects.push(Effect::Finish { results });
            Ok(())
        })
    })?;
    let log = add(lua, &ctx, "log", |lua, args: Variadic<Value>| {
        let mut parts = Vec::with_capacity(args.len());
        for a in args.iter() {
            parts.push(match a {
                Value::String(s) => s.to_string_lossy(),
                Value::Nil => "nil".to_owned(),
                Value::Boolean(b) => b.to_string(),
                Value::Integer(i) => i.to_string(),
                Value::Number(n) => n.to_string(),
                other => match lua_to_json_sized(lua, other.clone(), MAX_LOG_BYTES) {
                    Ok((j, _)) => j.to_string(),
                    Err(SizedError::TooBig(_)) => {
                        format!("<{} too large to log>", sandbox::kind(other))
                    }
                    Err(SizedError::Lua(_)) => format!("<{}>", sandbox::kind(other)),
                },
            });
        }
        let mut line = parts.join(" ");
        if line.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let mut s = lua
            .app_data_mut::<CallScope>()
            .ok_or_else(|| fail("ctx.log: ctx is not available here".to_owned()))?;
        s.log_lines += 1;
        if s.log_lines <= MAX_LOG_LINES {
            tracing::info!(target: "recess::game", session = %s.session, "{line}");
        }
        Ok(())
    })?;
    lua.globals().raw_set("print", log)?;
    lua.set_named_registry_value(CTX_KEY, ctx.clone())?;
    Ok(ctx)
}

/// `ctx.rename`: `true` and the name as it will be shown (trimmed, NFC), or
/// `false` and why. The name must pass the
/// session's name rules and be unlike every other member's name, counting
/// the renames this call already made.
fn rename(s: &mut CallScope, player: String, name: &str) -> (bool, String) {
    let Some(rules) = s.names.clone() else {
        return (false, "names cannot be changed here".to_owned());
    };
    let mut names: Vec<(&str, &str)> = s.players.iter().map(|p| (&*p.id, &*p.name)).collect();
    for effect in &s.effects {
        if let Effect::Rename { player, name } = effect
            && let Some(slot) = names.iter_mut().find(|(id, _)| *id == player.as_str())
        {
            slot.1 = name;
        }
    }
    match s.players.iter().find(|p| *p.id == *player) {
        None => return (false, "that player is not in this game".to_owned()),
        Some(p) if p.role != crate::protocol::Role::Player => {
            return (false, "only players can be renamed".to_owned());
        }
        Some(_) => {}
    }
    let (name, key) = match rules.accept(name) {
        Ok(accepted) => accepted,
        Err(why) => return (false, why),
    };
    if names
        .iter()
        .any(|(id, other)| *id != player.as_str() && rules.key(other) == key)
    {
        return (
            false,
            format!("the name \"{name}\" is already taken in this game"),
        );
    }
    s.effects.push(Effect::Rename {
        player,
        name: name.clone(),
    });
    (true, name)
}

/// `math.random` semantics on the session generator.
fn random_value(rng: &mut SplitMix64, args: &Args) -> mlua::Result<Value> {
    let whole = |n: usize| args.whole(n).ok_or_else(|| args.bad(n, "a whole number"));
    let (lo, hi) = match args.values.len() {
        0 => {
            return Ok(Value::Number(
                (rng.next() >> 11) as f64 / (1u64 << 53) as f64,
            ));
        }
        1 => {
            let m = whole(1)?;
            if m < 1 {
                return Err(args.bad(1, "a whole number from 1"));
            }
            (1, m)
        }
        _ => {
            let (m, n) = (whole(1)?, whole(2)?);
            if n < m {
                return Err(args.bad(2, &format!("at least {m} (argument 1)")));
            }
            (m, n)
        }
    };
    let span = (hi as i128 - lo as i128 + 1) as u128;
    let r = (rng.next() as u128 * span) >> 64;
    Ok(Value::Integer((lo as i128 + r as i128) as i64))
}

/// SplitMix64: tiny, fast, and its whole state is one `u64` that a snapshot keeps,
/// so a restored session continues the same random sequence.
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitMix64(pub(super) u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
