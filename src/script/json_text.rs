//! Lua values → JSON text, written straight from the tables: the state a
//! handler call leaves, which every successful call saves (for the snapshot
//! and for rolling back the next call) and which can be the largest value a
//! session has. Building a `serde_json::Value` tree first and serializing it
//! then allocated every string and map node twice over; this writes the
//! text in one walk.
//!
//! The rules are [`super::json`]'s, and so are the errors, word for word (a
//! value with two faults may be refused for either): a value this refuses,
//! that refuses, and the text parses to the `Value` that
//! [`super::json::lua_to_json`] makes. Only the order of an object's
//! keys differs (the table's, not sorted), which JSON does not fix.
//! The same safety argument holds: raw access and functions that cannot
//! raise a Lua error inside one protected call, no Lua code run.

use std::ffi::c_int;

use mlua::{Lua, LuaSerdeExt, Value, ffi};

use super::json::{
    dense_enough, enter_table, list_position, lua_string, mixed, not_a_list, not_data, other_key,
};
use super::saved::{SavedState, Span};

/// `value` as JSON text, by the rules of [`super::json`], with the places
/// of its top-level fields when it is an object.
pub(super) fn lua_to_json_text(lua: &Lua, value: Value) -> mlua::Result<SavedState> {
    let mut out: Result<(), String> = Ok(());
    let mut text = Vec::with_capacity(256);
    let mut fields = Vec::new();
    // SAFETY: the walk reads the two arguments `exec_raw` pushed (the value
    // at 1, the array metatable at 2) with functions that never raise a Lua
    // error, and checks the stack before every push; `exec_raw` restores the
    // stack afterwards.
    unsafe {
        lua.exec_raw::<()>((value, lua.array_metatable()), |state| {
            let mut writer = Writer {
                state,
                array_mt: 2,
                fields: &mut fields,
            };
            out = writer.write(1, 0, &mut text);
        })?;
    }
    out.map_err(mlua::Error::runtime)?;
    // Only UTF-8 strings are written, and the rest is ASCII.
    let text = String::from_utf8(text)
        .map_err(|_| mlua::Error::runtime("a string that is not valid UTF-8"))?;
    let split = !fields.is_empty() && text.starts_with('{');
    Ok(SavedState::new(text, split.then_some(fields)))
}

struct Writer<'a> {
    state: *mut ffi::lua_State,
    /// Stack index of the array metatable.
    array_mt: c_int,
    /// Where each field of the top-level object is in the text.
    fields: &'a mut Vec<Span>,
}

impl Writer<'_> {
    /// Writes the value at absolute stack index `idx`.
    unsafe fn write(&mut self, idx: c_int, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
        let l = self.state;
        unsafe {
            match ffi::lua_type(l, idx) {
                ffi::LUA_TNIL => out.extend_from_slice(b"null"),
                ffi::LUA_TBOOLEAN => out.extend_from_slice(if ffi::lua_toboolean(l, idx) != 0 {
                    b"true"
                } else {
                    b"false"
                }),
                ffi::LUA_TNUMBER => {
                    if ffi::lua_isinteger(l, idx) != 0 {
                        let n = ffi::lua_tointegerx(l, idx, std::ptr::null_mut());
                        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                    } else {
                        // serde_json's own float text; NaN and infinities are `null`.
                        let n = ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
                        write_json(out, &n);
                    }
                }
                ffi::LUA_TSTRING => write_json(out, lua_string(l, idx)?),
                ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, idx).is_null() => {
                    out.extend_from_slice(b"null")
                }
                ffi::LUA_TTABLE => self.table(idx, depth, out)?,
                other => return Err(not_data(other)),
            }
        }
        Ok(())
    }

    unsafe fn table(&mut self, idx: c_int, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
        let l = self.state;
        unsafe {
            if let Some(len) = enter_table(l, idx, self.array_mt, depth)? {
                return self.items(idx, len, depth, out);
            }
            // Named fields are written as they come; number keys are only
            // counted, and the list is written in order afterwards.
            let start = out.len();
            let (mut fields, mut items, mut len) = (0usize, 0usize, 0usize);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                let value_at = ffi::lua_gettop(l);
                let key_at = value_at - 1;
                match ffi::lua_type(l, key_at) {
                    ffi::LUA_TSTRING => {
                        if items > 0 {
                            return Err(mixed());
                        }
                        out.push(if fields == 0 { b'{' } else { b',' });
                        let key_start = out.len();
                        write_json(out, lua_string(l, key_at)?);
                        let key = key_start..out.len();
                        out.push(b':');
                        let value_start = out.len();
                        self.write(value_at, depth + 1, out)?;
                        if depth == 0 {
                            let value = value_start..out.len();
                            self.fields.push(Span { key, value });
                        }
                        fields += 1;
                    }
                    ffi::LUA_TNUMBER => {
                        if fields > 0 {
                            return Err(mixed());
                        }
                        let position = list_position(l, key_at)?;
                        // What the value is may still be an error: found
                        // when the list is written.
                        items += 1;
                        len = len.max(position);
                    }
                    other => return Err(other_key(l, other)),
                }
                ffi::lua_pop(l, 1);
            }
            if items == 0 {
                if fields == 0 {
                    out.truncate(start);
                    out.extend_from_slice(b"{}");
                } else {
                    out.push(b'}');
                }
                return Ok(());
            }
            if !dense_enough(items, len) {
                return Err(not_a_list());
            }
            self.items(idx, len, depth, out)
        }
    }

    /// Writes `t[1] … t[len]` of the table at `idx` as a list (`null` in holes).
    unsafe fn items(
        &mut self,
        idx: c_int,
        len: usize,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let l = self.state;
        out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                out.push(b',');
            }
            unsafe {
                ffi::lua_rawgeti(l, idx, i as ffi::lua_Integer);
                let written = self.write(ffi::lua_gettop(l), depth + 1, out);
                ffi::lua_pop(l, 1);
                written?;
            }
        }
        out.push(b']');
        Ok(())
    }
}

/// Appends `value`'s JSON text (strings escaped as serde_json escapes them).
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing to a Vec cannot fail, and a string or a float always serializes.
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::json::lua_to_json;
    use serde_json::{Value as Json, json};

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().raw_set("null", Value::NULL).unwrap();
        lua
    }

    /// Both conversions of `src`: the text parsed back, and the tree (or
    /// both errors).
    fn both(lua: &Lua, src: &str) -> (Result<Json, String>, Result<Json, String>) {
        let v: Value = lua.load(src).eval().unwrap();
        let text = lua_to_json_text(lua, v.clone())
            .map(|t| serde_json::from_str(t.text()).expect("the text is JSON"))
            .map_err(|e| e.to_string());
        let tree = lua_to_json(lua, v).map_err(|e| e.to_string());
        (text, tree)
    }

    #[test]
    fn the_text_is_the_tree_and_the_errors_are_the_same() {
        let lua = lua();
        let sources = [
            "return nil",
            "return true",
            "return 7",
            "return 7 / 2",
            "return 6 / 2",
            "return 0/0",
            "return -1/0",
            "return 'h\\u{e9}llo \"q\" \\n \\0'",
            "return {}",
            "return {a = 1, b = {c = {}}, d = null, e = false}",
            "return {10, 20, 'x', {y = false}}",
            "return {[1] = 'a', [3] = 'c'}",
            "local t = {} for i = 1, 20 do t[i] = i end t[5] = nil return t",
            "local t = {} for i = 30, 1, -1 do t[i] = i * 1.5 end return t",
            "return {1, 2, x = 3}",
            "return {x = 3, 1}",
            "return {[100] = 1}",
            "return {[0] = 1}",
            "return {[1.5] = 1}",
            "return {[true] = 1}",
            "return {f = print}",
            "return {co = coroutine.create(print)}",
            "return {s = '\\xff'}",
            "return {['\\xff'] = 1}",
            "return {1, print}",
            "local t = {} t.self = t return t",
            "local s = {v = 1} return {a = s, b = {s, s}}",
        ];
        for src in sources {
            let (text, tree) = both(&lua, src);
            assert_eq!(text, tree, "{src}");
        }
        let list = lua
            .to_value(&json!({"items": [], "more": [1, [2]]}))
            .unwrap();
        let text = lua_to_json_text(&lua, list).unwrap();
        assert_eq!(
            serde_json::from_str::<Json>(text.text()).unwrap(),
            json!({"items": [], "more": [1, [2]]})
        );
        // The state is usable afterwards: the stack was restored.
        assert_eq!(both(&lua, "return {ok = 1}").0, Ok(json!({"ok": 1})));
    }
}
