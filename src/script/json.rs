//! Lua values → JSON: the one conversion wherever a script's data leaves Lua
//! (state snapshots, views, `ctx.broadcast`/`ctx.send` data, results, log
//! lines).
//!
//! The rules, as docs/lua-api.md states them:
//! - `nil` and `null` → `null`; booleans, strings and numbers as they are
//!   (integers stay integers; NaN and infinities, which JSON cannot carry,
//!   become `null`);
//! - a table with the array metatable (a list that came from JSON) → a list,
//!   even when empty;
//! - an empty table → `{}`;
//! - a table whose keys are all strings → an object;
//! - a table whose keys are all whole numbers from 1 → a list, with `null`
//!   in its holes when it is dense enough (fewer than 10 slots, or at least
//!   half of them filled);
//! - anything else is an error that names what is wrong: a table mixing list
//!   items and named fields, number keys that are not a list, other key
//!   types, functions, userdata, strings that are not UTF-8, and tables nested
//!   deeper than [`MAX_DEPTH`] (which is how a table that contains itself
//!   shows).
//!
//! This is the hot path of every view pass and every snapshot, so it walks
//! the tables with the C API (`lua_next`, `lua_rawgeti`) inside one protected
//! call instead of going through mlua's serde layer, which takes a registry
//! reference for every table and string it visits and walks every table
//! twice. Only functions that cannot raise a Lua error are used inside the
//! walk (raw access, no metamethods, no string coercion), so no Lua error can
//! unwind through it, and no Lua code runs.

use std::cell::Cell;
use std::ffi::c_int;

use mlua::{Lua, LuaSerdeExt, Value, ffi};
use serde_json::{Map, Number, Value as Json};

/// Tables nested deeper than this are refused; a table that contains itself
/// is caught here. The one limit of `protocol`, so what a game can emit or
/// keep is exactly what a frame may carry.
pub use crate::protocol::MAX_DEPTH;

/// A conversion that came out over its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooBig {
    /// About how many bytes of JSON the value would have made.
    pub bytes: usize,
}

/// What a capped conversion can end in.
#[derive(Debug)]
pub enum SizedError {
    /// The value is larger than the cap (it was measured, not built).
    TooBig(TooBig),
    /// The value cannot be JSON, or Lua failed.
    Lua(mlua::Error),
}

impl From<mlua::Error> for SizedError {
    fn from(e: mlua::Error) -> Self {
        SizedError::Lua(e)
    }
}

/// Converts `value` to JSON by the rules in the module doc.
pub fn lua_to_json(lua: &Lua, value: Value) -> mlua::Result<Json> {
    match lua_to_json_sized(lua, value, usize::MAX) {
        Ok((json, _)) => Ok(json),
        Err(SizedError::Lua(e)) => Err(e),
        Err(SizedError::TooBig(_)) => Err(mlua::Error::runtime("the value is too large")),
    }
}

/// Converts `value` to JSON, with about how many bytes its JSON text has
/// (strings and keys exactly, other values approximately). Once that passes
/// `cap` the walk only measures, building nothing, and ends in `TooBig`.
pub fn lua_to_json_sized(lua: &Lua, value: Value, cap: usize) -> Result<(Json, usize), SizedError> {
    let mut out: Result<Json, String> = Err(String::new());
    let walker_size = Cell::new(0);
    // SAFETY: the walk reads the two arguments `exec_raw` pushed (the value
    // at 1, the array metatable at 2) with functions that never raise a Lua
    // error, and checks the stack before every push; `exec_raw` restores the
    // stack afterwards.
    unsafe {
        lua.exec_raw::<()>((value, lua.array_metatable()), |state| {
            let walker = Walker {
                state,
                array_mt: 2,
                size: Cell::new(0),
                cap,
            };
            out = walker.convert(1, 0);
            walker_size.set(walker.size.get());
        })?;
    }
    finish(out, walker_size.get(), cap)
}

fn finish(out: Result<Json, String>, size: usize, cap: usize) -> Result<(Json, usize), SizedError> {
    // Over the cap, what was built is partial: only the size counts.
    if size > cap {
        return Err(SizedError::TooBig(TooBig { bytes: size }));
    }
    let json = out.map_err(|e| SizedError::Lua(mlua::Error::runtime(e)))?;
    Ok((json, size))
}

/// Calls `f(arg, fields)`, where `fields` becomes a fresh table of string
/// fields, and converts what `f` returns to JSON by the rules in the module
/// doc: a view call (`view(state, player)`) in one protected call, without a
/// registry reference for the player table or the result.
///
/// A Lua error in `f` comes back as mlua would have reported it for
/// `Function::call`: it is raised again inside `exec_raw`, whose protected
/// call turns it into an `mlua::Error` (a string, the Rust error of a hook
/// or callback such as the CPU budget's, or a `MemoryError`).
pub fn call_to_json(
    lua: &Lua,
    f: &mlua::Function,
    arg: &Value,
    fields: &[(&std::ffi::CStr, &str)],
    cap: usize,
) -> Result<Json, SizedError> {
    let mut out: Result<Json, String> = Err(String::new());
    let walker_size = Cell::new(0);
    // SAFETY: the closure runs inside `exec_raw`'s protected call, with `f`
    // at 1, `arg` at 2 and the array metatable at 3. A Lua error (memory, or
    // `f` failing and being raised again) unwinds out of the closure only at
    // points where it holds nothing that needs dropping: `out` lives outside
    // it, and the walk, which never raises, has finished or not started.
    // `exec_raw` restores the stack afterwards.
    unsafe {
        lua.exec_raw::<()>((f, arg, lua.array_metatable()), |l| {
            if ffi::lua_checkstack(l, 6) == 0 {
                out = Err("the Lua stack is full".into());
                return;
            }
            ffi::lua_pushvalue(l, 1);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_createtable(l, 0, fields.len() as c_int);
            for (key, value) in fields {
                ffi::lua_pushlstring(l, value.as_ptr().cast(), value.len());
                ffi::lua_setfield(l, -2, key.as_ptr());
            }
            if ffi::lua_pcall(l, 2, 1, 0) != ffi::LUA_OK {
                ffi::lua_error(l);
            }
            let walker = Walker {
                state: l,
                array_mt: 3,
                size: Cell::new(0),
                cap,
            };
            out = walker.convert(ffi::lua_gettop(l), 0);
            walker_size.set(walker.size.get());
        })?;
    }
    finish(out, walker_size.get(), cap).map(|(json, _)| json)
}

struct Walker {
    state: *mut ffi::lua_State,
    /// Stack index of the array metatable.
    array_mt: c_int,
    /// About how many bytes of JSON text the values walked so far make.
    size: Cell<usize>,
    /// Past this size nothing more is built, only measured.
    cap: usize,
}

/// What a number, `true`, `false` or `null` adds to the size, about.
const SCALAR_BYTES: usize = 6;

impl Walker {
    /// Counts `bytes` more; whether the walk is still within its cap.
    fn add(&self, bytes: usize) -> bool {
        let size = self.size.get().saturating_add(bytes);
        self.size.set(size);
        size <= self.cap
    }

    /// Converts the value at absolute stack index `idx`.
    unsafe fn convert(&self, idx: c_int, depth: usize) -> Result<Json, String> {
        let l = self.state;
        unsafe {
            let kind = ffi::lua_type(l, idx);
            if kind != ffi::LUA_TSTRING && kind != ffi::LUA_TTABLE {
                self.add(SCALAR_BYTES);
            }
            match kind {
                ffi::LUA_TNIL => Ok(Json::Null),
                ffi::LUA_TBOOLEAN => Ok(Json::Bool(ffi::lua_toboolean(l, idx) != 0)),
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(l, idx) != 0 {
                        Ok(Json::from(ffi::lua_tointegerx(
                            l,
                            idx,
                            std::ptr::null_mut(),
                        )))
                    } else {
                        Ok(float(ffi::lua_tonumberx(l, idx, std::ptr::null_mut())))
                    }
                }
                ffi::LUA_TSTRING => {
                    let s = self.string(idx)?;
                    if self.add(s.len() + 3) {
                        Ok(Json::String(s.to_owned()))
                    } else {
                        Ok(Json::Null)
                    }
                }
                ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, idx).is_null() => Ok(Json::Null),
                ffi::LUA_TTABLE => self.table(idx, depth),
                other => Err(not_data(other)),
            }
        }
    }

    unsafe fn string(&self, idx: c_int) -> Result<&str, String> {
        unsafe { lua_string(self.state, idx) }
    }

    unsafe fn table(&self, idx: c_int, depth: usize) -> Result<Json, String> {
        let l = self.state;
        unsafe {
            let from_json = enter_table(l, idx, self.array_mt, depth)?;
            self.add(2);
            if let Some(len) = from_json {
                let mut items = Vec::with_capacity(len);
                for i in 1..=len {
                    ffi::lua_rawgeti(l, idx, i as ffi::lua_Integer);
                    let item = self.convert(ffi::lua_gettop(l), depth + 1);
                    ffi::lua_pop(l, 1);
                    let item = item?;
                    if self.size.get() <= self.cap {
                        items.push(item);
                    }
                }
                return Ok(Json::Array(items));
            }
            let mut map = Map::new();
            let mut list: Vec<(usize, Json)> = Vec::new();
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                let value_at = ffi::lua_gettop(l);
                let key_at = value_at - 1;
                match ffi::lua_type(l, key_at) {
                    ffi::LUA_TSTRING => {
                        if !list.is_empty() {
                            return Err(mixed());
                        }
                        let key = self.string(key_at)?;
                        let fits = self.add(key.len() + 3);
                        let key = if fits { key.to_owned() } else { String::new() };
                        let value = self.convert(value_at, depth + 1)?;
                        if self.size.get() <= self.cap {
                            map.insert(key, value);
                        }
                    }
                    ffi::LUA_TNUMBER => {
                        if !map.is_empty() {
                            return Err(mixed());
                        }
                        let position = list_position(l, key_at)?;
                        let value = self.convert(value_at, depth + 1)?;
                        if self.size.get() <= self.cap {
                            list.push((position, value));
                        }
                    }
                    other => return Err(other_key(l, other)),
                }
                ffi::lua_pop(l, 1);
            }
            if list.is_empty() {
                return Ok(Json::Object(map));
            }
            dense_list(list)
        }
    }
}

/// A list from `(position, item)` pairs in any order, with `null` in its
/// holes, or an error when it has too few items for its length.
fn dense_list(mut list: Vec<(usize, Json)>) -> Result<Json, String> {
    let len = list.iter().map(|(p, _)| *p).max().unwrap_or(0);
    if !dense_enough(list.len(), len) {
        return Err(not_a_list());
    }
    if list.len() == len && list.iter().enumerate().all(|(i, (p, _))| *p == i + 1) {
        return Ok(Json::Array(list.into_iter().map(|(_, v)| v).collect()));
    }
    list.sort_unstable_by_key(|(p, _)| *p);
    let mut items = vec![Json::Null; len];
    for (p, v) in list {
        items[p - 1] = v;
    }
    Ok(Json::Array(items))
}

fn float(n: f64) -> Json {
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// Checks that a table at `depth` may be walked (not too deep, room on the
/// stack for a key, a value and a metatable); `Some(length)` when it is a
/// list from JSON (it has the array metatable at `array_mt`).
///
/// # Safety
/// `l` is a live state and `idx`, `array_mt` valid indices.
pub(super) unsafe fn enter_table(
    l: *mut ffi::lua_State,
    idx: c_int,
    array_mt: c_int,
    depth: usize,
) -> Result<Option<usize>, String> {
    if depth >= MAX_DEPTH {
        return Err(format!(
            "tables nested more than {MAX_DEPTH} deep (does a table contain itself?)"
        ));
    }
    unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            return Err("tables nested too deep for the Lua stack".into());
        }
        if ffi::lua_getmetatable(l, idx) == 0 {
            return Ok(None);
        }
        let is_list = ffi::lua_rawequal(l, -1, array_mt) != 0;
        ffi::lua_pop(l, 1);
        Ok(is_list.then(|| ffi::lua_rawlen(l, idx)))
    }
}

/// The place in a list that the number key at `key_at` names (from 1).
///
/// # Safety
/// `l` is a live state and `key_at` a valid index holding a number.
pub(super) unsafe fn list_position(l: *mut ffi::lua_State, key_at: c_int) -> Result<usize, String> {
    let n = unsafe {
        if ffi::lua_isinteger(l, key_at) != 0 {
            ffi::lua_tointegerx(l, key_at, std::ptr::null_mut())
        } else {
            0
        }
    };
    usize::try_from(n)
        .ok()
        .filter(|&p| p >= 1)
        .ok_or_else(not_a_list)
}

/// The error of a value of Lua type `kind` that is not data.
pub(super) fn not_data(kind: c_int) -> String {
    match kind {
        ffi::LUA_TFUNCTION => "a function cannot be turned into JSON".into(),
        ffi::LUA_TTHREAD => "a coroutine cannot be turned into JSON".into(),
        _ => "a userdata value cannot be turned into JSON".into(),
    }
}

/// Whether `items` values at positions up to `len` make a list (with
/// `null` in the holes): fewer than 10 slots, or at least half filled.
pub(super) fn dense_enough(items: usize, len: usize) -> bool {
    len < 10 || items * 2 >= len
}

/// The string at `idx`, which must be a Lua string (not a number: that
/// would convert it in place and upset `lua_next`).
///
/// # Safety
/// `l` is a live state and `idx` a valid index holding a string.
pub(super) unsafe fn lua_string<'a>(l: *mut ffi::lua_State, idx: c_int) -> Result<&'a str, String> {
    unsafe {
        let mut len = 0usize;
        let ptr = ffi::lua_tolstring(l, idx, &mut len);
        if ptr.is_null() {
            return Err("a string could not be read".into());
        }
        let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        std::str::from_utf8(bytes).map_err(|_| "a string that is not valid UTF-8".into())
    }
}

/// The error of a table key that is neither a string nor a number.
///
/// # Safety
/// `l` is a live state and `kind` a Lua type tag.
pub(super) unsafe fn other_key(l: *mut ffi::lua_State, kind: c_int) -> String {
    let name = unsafe { std::ffi::CStr::from_ptr(ffi::lua_typename(l, kind)) };
    format!(
        "a table key of type {} cannot be turned into JSON (keys are strings, or 1, 2, 3… for a list)",
        name.to_string_lossy()
    )
}

pub(super) fn mixed() -> String {
    "a table mixes list items (keys 1, 2, 3…) with named fields; use two fields, e.g. {items = {...}, count = 2}".into()
}

pub(super) fn not_a_list() -> String {
    "a table has number keys that are not a list (1, 2, 3… with few holes); use string keys, e.g. t[tostring(n)]".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(lua: &Lua, src: &str) -> mlua::Result<Json> {
        let v: Value = lua.load(src).eval()?;
        lua_to_json(lua, v)
    }

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().raw_set("null", Value::NULL).unwrap();
        lua
    }

    #[test]
    fn plain_data() {
        let lua = lua();
        let cases = [
            ("nil", json!(null)),
            ("null", json!(null)),
            ("true", json!(true)),
            ("7", json!(7)),
            ("7 / 2", json!(3.5)),
            ("6 / 2", json!(3.0)),
            ("0/0", json!(null)),
            ("1/0", json!(null)),
            ("'héllo'", json!("héllo")),
            ("{}", json!({})),
            ("{a = 1, b = {c = {}}}", json!({"a": 1, "b": {"c": {}}})),
            (
                "{10, 20, 'x', {y = false}}",
                json!([10, 20, "x", {"y": false}]),
            ),
            ("{[1] = 'a', [3] = 'c'}", json!(["a", null, "c"])),
            ("{a = null, b = 2}", json!({"a": null, "b": 2})),
            (
                "local t = {} for i = 1, 20 do t[i] = i end t[5] = nil return t",
                json!([
                    1, 2, 3, 4, null, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
                ]),
            ),
        ];
        for (src, want) in cases {
            let src = if src.starts_with("local") {
                src.to_owned()
            } else {
                format!("return {src}")
            };
            assert_eq!(convert(&lua, &src).unwrap(), want, "{src}");
        }
    }

    #[test]
    fn lists_from_json_stay_lists_even_when_empty() {
        let lua = lua();
        let v = lua.to_value(&json!({"items": [], "more": [1, 2]})).unwrap();
        assert_eq!(
            lua_to_json(&lua, v).unwrap(),
            json!({"items": [], "more": [1, 2]})
        );
    }

    #[test]
    fn what_json_cannot_carry_is_an_error_that_says_why() {
        let lua = lua();
        let cases = [
            ("{1, 2, x = 3}", "mixes list items"),
            ("{x = 3, 1}", "mixes list items"),
            ("{[100] = 1}", "not a list"),
            ("{[0] = 1}", "not a list"),
            ("{[1.5] = 1}", "not a list"),
            ("{[true] = 1}", "key of type boolean"),
            ("{f = print}", "a function"),
            ("{co = coroutine.create(print)}", "a coroutine"),
            ("{s = '\\xff'}", "not valid UTF-8"),
            (
                "local t = {} t.self = t return t",
                "does a table contain itself",
            ),
        ];
        for (src, want) in cases {
            let src = if src.starts_with("local") {
                src.to_owned()
            } else {
                format!("return {src}")
            };
            let err = convert(&lua, &src).unwrap_err().to_string();
            assert!(err.contains(want), "{src}: {err}");
        }
        // The state is usable afterwards: the stack was restored.
        assert_eq!(convert(&lua, "return {ok = 1}").unwrap(), json!({"ok": 1}));
    }

    #[test]
    fn deep_but_finite_nesting_converts() {
        let lua = lua();
        let src = format!(
            "local t = 1 for i = 1, {} do t = {{t}} end return t",
            MAX_DEPTH - 1
        );
        let mut want = json!(1);
        for _ in 0..MAX_DEPTH - 1 {
            want = json!([want]);
        }
        assert_eq!(convert(&lua, &src).unwrap(), want);
    }
}
