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

/// Builds the `ctx` table. Its functions find the call in progress through
/// the state's `CallScope`, so one table serves every call.
pub(super) fn make_ctx(lua: &Lua) -> mlua::Result<Table> {
    let ctx = lua.create_table()?;

    fn scope<R>(lua: &Lua, f: impl FnOnce(&mut CallScope) -> mlua::Result<R>) -> mlua::Result<R> {
        let mut s = lua
            .app_data_mut::<CallScope>()
            .ok_or_else(|| mlua::Error::runtime("ctx is not available here"))?;
        if !s.active {
            return Err(mlua::Error::runtime(
                "ctx can only be used while a handler runs (do not keep it in the state)",
            ));
        }
        f(&mut s)
    }
    fn name_arg(v: Value, what: &str) -> mlua::Result<String> {
        match v {
            Value::String(s) => Ok(s.to_string_lossy()),
            other => Err(mlua::Error::runtime(format!(
                "{what}: the name must be a string, not a {}",
                other.type_name()
            ))),
        }
    }
    /// Converts what a call emits and counts it against the call's limits:
    /// `what` names the function, `name` is the message's name, `cap` the
    /// limit of one such value (the message limit, or the call's for results).
    fn data_arg(
        lua: &Lua,
        v: Option<Value>,
        what: &str,
        name: &str,
        cap: impl FnOnce(&Limits) -> usize,
    ) -> mlua::Result<Json> {
        let (limits, emitted) = scope(lua, |s| Ok((s.limits, s.emitted)))?;
        let cap = cap(&limits);
        let at = || sandbox::script_location(lua).unwrap_or_default();
        let (data, bytes) = match v {
            None | Some(Value::Nil) => (Json::Null, SCALAR_BYTES),
            Some(v) => match lua_to_json_sized(lua, v, cap.saturating_sub(name.len())) {
                Ok(sized) => sized,
                Err(SizedError::Lua(e)) => {
                    return Err(mlua::Error::runtime(format!(
                        "{}{what}: {}",
                        at(),
                        sandbox::describe(&e)
                    )));
                }
                Err(SizedError::TooBig(big)) => {
                    return Err(mlua::Error::runtime(format!(
                        "{}{what}: the {} is {}; it may be at most {}",
                        at(),
                        if what == "ctx.finish" {
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
        let total = emitted + bytes + name.len();
        if total > limits.call_output_bytes {
            return Err(mlua::Error::runtime(format!(
                "{}{what}: this call's messages, timers and results come to {}; one call may emit at most {}",
                at(),
                sandbox::size_text(total),
                sandbox::limit_text(limits.call_output_bytes)
            )));
        }
        scope(lua, |s| {
            s.emitted = total;
            Ok(())
        })?;
        Ok(data)
    }
    /// What a value without data adds to a call's output.
    const SCALAR_BYTES: usize = 32;

    ctx.raw_set(
        "broadcast",
        lua.create_function(|lua, (name, data): (Value, Option<Value>)| {
            let name = name_arg(name, "ctx.broadcast")?;
            let data = data_arg(lua, data, "ctx.broadcast", &name, |l| l.message_bytes)?;
            scope(lua, |s| {
                s.effects.push(Effect::Broadcast { name, data });
                Ok(())
            })
        })?,
    )?;
    ctx.raw_set(
        "send",
        lua.create_function(|lua, (to, name, data): (Value, Value, Option<Value>)| {
            let to = match to {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "ctx.send: the first argument must be a player id (string), not a {}",
                        other.type_name()
                    )));
                }
            };
            let name = name_arg(name, "ctx.send")?;
            let data = data_arg(lua, data, "ctx.send", &name, |l| l.message_bytes)?;
            scope(lua, |s| {
                s.effects.push(Effect::Send { to, name, data });
                Ok(())
            })
        })?,
    )?;
    ctx.raw_set(
        "after",
        lua.create_function(|lua, (ms, name, data): (f64, Value, Option<Value>)| {
            if !ms.is_finite() || ms < 0.0 || ms > MAX_TIMER_MS as f64 {
                return Err(mlua::Error::runtime(format!(
                    "ctx.after: delay must be between 0 and {MAX_TIMER_MS} ms"
                )));
            }
            let name = name_arg(name, "ctx.after")?;
            let data = data_arg(lua, data, "ctx.after", &name, |l| l.message_bytes)?;
            scope(lua, |s| {
                if s.pending_timers + s.timers_added >= MAX_PENDING_TIMERS {
                    return Err(mlua::Error::runtime(format!(
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
        })?,
    )?;
    ctx.raw_set(
        "cancel",
        lua.create_function(|lua, id: Value| {
            let id = match id {
                Value::Integer(i) if i > 0 => i as u64,
                Value::Number(n) if n > 0.0 && n.fract() == 0.0 => n as u64,
                Value::Nil => return Ok(()),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "ctx.cancel: expected a timer id from ctx.after, got a {}",
                        other.type_name()
                    )));
                }
            };
            scope(lua, |s| {
                s.effects.push(Effect::Cancel { id });
                Ok(())
            })
        })?,
    )?;
    ctx.raw_set(
        "now",
        lua.create_function(|lua, ()| scope(lua, |s| Ok(s.now_ms)))?,
    )?;
    let random = lua.create_function(|lua, args: Variadic<Value>| {
        let mut s = lua
            .app_data_mut::<CallScope>()
            .ok_or_else(|| mlua::Error::runtime("random is not available here"))?;
        random_value(&mut s.rng, &args)
    })?;
    ctx.raw_set("random", random.clone())?;
    let math: Table = lua.globals().get("math")?;
    math.raw_set("random", random)?;
    ctx.raw_set(
        "players",
        lua.create_function(|lua, ()| {
            if let Some(list) = scope(lua, |s| Ok(s.players_table.clone()))? {
                return Ok(list);
            }
            let players = scope(lua, |s| Ok(s.players.clone()))?;
            let list = lua.create_table_with_capacity(players.len(), 0)?;
            for p in &players {
                let t = player_table(lua, p)?;
                t.raw_set("connected", p.connected)?;
                list.raw_push(t)?;
            }
            list.set_metatable(Some(lua.array_metatable()))?;
            scope(lua, |s| {
                s.players_table = Some(list.clone());
                Ok(())
            })?;
            Ok(list)
        })?,
    )?;
    ctx.raw_set(
        "kick",
        lua.create_function(|lua, (player, reason): (String, Option<String>)| {
            scope(lua, |s| {
                s.effects.push(Effect::Kick {
                    player,
                    reason: reason.unwrap_or_else(|| "removed by the game".to_owned()),
                });
                Ok(())
            })
        })?,
    )?;
    ctx.raw_set(
        "readmit",
        lua.create_function(|lua, name: String| {
            scope(lua, |s| {
                s.effects.push(Effect::Readmit { name });
                Ok(())
            })
        })?,
    )?;
    ctx.raw_set(
        "finish",
        lua.create_function(|lua, results: Option<Value>| {
            let results = data_arg(lua, results, "ctx.finish", "", |l| l.call_output_bytes)?;
            scope(lua, |s| {
                s.effects.push(Effect::Finish { results });
                Ok(())
            })
        })?,
    )?;
    let log = lua.create_function(|lua, args: Variadic<Value>| {
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
                        format!("<{} too large to log>", other.type_name())
                    }
                    Err(SizedError::Lua(_)) => format!("<{}>", other.type_name()),
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
            .ok_or_else(|| mlua::Error::runtime("ctx.log is not available here"))?;
        s.log_lines += 1;
        if s.log_lines <= MAX_LOG_LINES {
            tracing::info!(target: "recess::game", session = %s.session, "{line}");
        }
        Ok(())
    })?;
    ctx.raw_set("log", log.clone())?;
    lua.globals().raw_set("print", log)?;
    Ok(ctx)
}

/// `math.random` semantics on the session generator.
fn random_value(rng: &mut SplitMix64, args: &[Value]) -> mlua::Result<Value> {
    fn int(v: &Value, pos: usize) -> mlua::Result<i64> {
        match v {
            Value::Integer(i) => Ok(*i),
            Value::Number(n) if n.fract() == 0.0 => Ok(*n as i64),
            other => Err(mlua::Error::runtime(format!(
                "bad argument #{pos} to 'random' (number has no integer representation, got {})",
                other.type_name()
            ))),
        }
    }
    let (lo, hi) = match args {
        [] => {
            return Ok(Value::Number(
                (rng.next() >> 11) as f64 / (1u64 << 53) as f64,
            ));
        }
        [m] => (1, int(m, 1)?),
        [m, n, ..] => (int(m, 1)?, int(n, 2)?),
    };
    if lo > hi {
        return Err(mlua::Error::runtime(
            "bad argument to 'random' (interval is empty)",
        ));
    }
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
