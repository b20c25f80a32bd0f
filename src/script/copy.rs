//! The deep copy of a session's state that `migrate` rolls back to, and the
//! check `recess test` makes that no table is in two places of the state.
//!
//! The copy walks the tables with the C API inside one
//! protected call: each table is created at its final size (`lua_createtable`
//! with the counts from a first `lua_next` pass) and filled with raw sets, with
//! no Lua function call per key and value. Tables reached twice, including a
//! table that contains itself, are copied once, so the copy has the shape of
//! the original. Metatables are shared, not copied, as `setmetatable` would.
//!
//! Only allocation can raise an error here (the session's memory limit), and
//! the Rust frames it would unwind through hold nothing that needs dropping.
//! No Lua code runs: raw access only, and the sandbox refuses `__gc`.

use std::ffi::c_int;

use mlua::{Lua, Value, ffi};

/// Tables nested deeper than this make the copy fail, as they would make the
/// snapshot fail ([`super::json::MAX_DEPTH`]); without the limit a deep
/// enough state would overflow the C stack.
const MAX_DEPTH: usize = super::json::MAX_DEPTH;

/// A deep copy of `value` (values other than tables are returned as they are:
/// strings are immutable in Lua).
pub fn deep_copy(lua: &Lua, value: Value) -> mlua::Result<Value> {
    if !matches!(value, Value::Table(_)) {
        return Ok(value);
    }
    let mut too_deep = false;
    // SAFETY: the closure starts with the original table at index 1 and
    // leaves exactly one value, the copy, on the stack; every push is
    // preceded by a stack check. An allocation failure unwinds to the
    // protected call of `exec_raw` through frames that own nothing.
    let copy: Value = unsafe {
        lua.exec_raw(value, |state| {
            ffi::lua_createtable(state, 0, 0); // 2: original table -> its copy
            too_deep = !copy_table(state, 1, 2, 0);
            ffi::lua_replace(state, 1);
            ffi::lua_settop(state, 1);
        })?
    };
    if too_deep {
        return Err(mlua::Error::runtime(format!(
            "the state has tables nested more than {MAX_DEPTH} deep"
        )));
    }
    Ok(copy)
}

/// Pushes a copy of the table at absolute index `src`, using the table at
/// `seen` to copy each table once. Returns false (with something pushed in
/// place of the copy) when the nesting is too deep.
unsafe fn copy_table(l: *mut ffi::lua_State, src: c_int, seen: c_int, depth: usize) -> bool {
    unsafe {
        if depth >= MAX_DEPTH || ffi::lua_checkstack(l, 6) == 0 {
            ffi::lua_pushnil(l);
            return false;
        }
        ffi::lua_pushvalue(l, src);
        if ffi::lua_rawget(l, seen) != ffi::LUA_TNIL {
            return true;
        }
        ffi::lua_pop(l, 1);

        let list = ffi::lua_rawlen(l, src);
        let mut entries = 0usize;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, src) != 0 {
            entries += 1;
            ffi::lua_pop(l, 1);
        }
        let records = entries.saturating_sub(list);
        ffi::lua_createtable(l, clamp(list), clamp(records));
        let dst = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, src);
        ffi::lua_pushvalue(l, dst);
        ffi::lua_rawset(l, seen);

        ffi::lua_pushnil(l);
        while ffi::lua_next(l, src) != 0 {
            let value = ffi::lua_gettop(l);
            let key = value - 1;
            // Stop before `lua_rawset`, which raises on a nil key.
            if !push_copy(l, key, seen, depth) || !push_copy(l, value, seen, depth) {
                return false;
            }
            ffi::lua_rawset(l, dst);
            ffi::lua_pop(l, 1);
        }
        if ffi::lua_getmetatable(l, src) != 0 {
            ffi::lua_setmetatable(l, dst);
        }
        true
    }
}

/// Pushes a copy of the value at `idx`: tables are copied, the rest pushed.
unsafe fn push_copy(l: *mut ffi::lua_State, idx: c_int, seen: c_int, depth: usize) -> bool {
    unsafe {
        if ffi::lua_type(l, idx) == ffi::LUA_TTABLE {
            copy_table(l, idx, seen, depth + 1)
        } else {
            ffi::lua_pushvalue(l, idx);
            true
        }
    }
}

fn clamp(n: usize) -> c_int {
    c_int::try_from(n).unwrap_or(c_int::MAX)
}

/// Where one table is reached twice in `state`: the two paths
/// (`state.current`, `state.questions[3]`), the first found. Only tables
/// count (strings are values); a table that contains itself is found too.
/// Used by `recess test` and `recess sim` only, after every call, so it may
/// be plain and slow.
pub fn shared_table(state: &Value) -> Option<(String, String)> {
    fn walk(
        t: &mlua::Table,
        path: String,
        seen: &mut std::collections::HashMap<usize, String>,
        depth: usize,
    ) -> Option<(String, String)> {
        if let Some(first) = seen.get(&(t.to_pointer() as usize)) {
            return Some((first.clone(), path));
        }
        seen.insert(t.to_pointer() as usize, path.clone());
        if depth >= MAX_DEPTH {
            return None;
        }
        let mut keys: Vec<(String, mlua::Table)> = Vec::new();
        for (k, v) in t.clone().pairs::<Value, Value>().flatten() {
            if let Value::Table(child) = v {
                let step = match &k {
                    Value::String(s) => {
                        let s = s.to_string_lossy();
                        if !s.is_empty()
                            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                            && !s.starts_with(|c: char| c.is_ascii_digit())
                        {
                            format!(".{s}")
                        } else {
                            format!("[{s:?}]")
                        }
                    }
                    Value::Integer(i) => format!("[{i}]"),
                    other => format!("[{}]", super::sandbox::value_text(other)),
                };
                keys.push((step, child));
            }
        }
        // In a stable order, so the message names the same two paths each run.
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for (step, child) in keys {
            if let Some(found) = walk(&child, format!("{path}{step}"), seen, depth + 1) {
                return Some(found);
            }
        }
        None
    }
    match state {
        Value::Table(t) => walk(t, "state".to_owned(), &mut Default::default(), 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Table;

    #[test]
    fn the_copy_is_equal_and_independent() {
        let lua = Lua::new();
        let state: Table = lua
            .load(
                r#"
                local shared = {n = 1}
                local t = {list = {1, 2, {x = "y"}}, a = shared, b = shared,
                           flag = true, [5] = "five", [{k = 1}] = "table key"}
                t.me = t
                setmetatable(t.list, {__index = function() return 42 end})
                return t
                "#,
            )
            .eval()
            .unwrap();
        let copy = deep_copy(&lua, Value::Table(state.clone())).unwrap();
        lua.globals().set("orig", state).unwrap();
        lua.globals().set("copy", copy).unwrap();
        let checks: bool = lua
            .load(
                r#"
                assert(copy ~= orig and copy.list ~= orig.list)
                assert(copy.list[3].x == "y" and copy.list[3] ~= orig.list[3])
                assert(copy.a == copy.b and copy.a ~= orig.a, "sharing is kept")
                assert(copy.me == copy, "a table that contains itself")
                assert(copy.flag == true and copy[5] == "five")
                assert(getmetatable(copy.list) == getmetatable(orig.list))
                assert(copy.list[99] == 42)
                local found
                for k, v in pairs(copy) do
                  if type(k) == "table" then found = k.k == 1 and v == "table key" end
                end
                assert(found, "table keys are copied")
                -- Changing the copy leaves the original alone.
                copy.a.n = 2; copy.list[1] = 10; copy.new = 1
                return orig.a.n == 1 and orig.list[1] == 1 and orig.new == nil
                "#,
            )
            .eval()
            .unwrap();
        assert!(checks);
    }

    #[test]
    fn scalars_pass_through_and_deep_nesting_is_an_error() {
        let lua = Lua::new();
        assert_eq!(
            deep_copy(&lua, Value::Integer(3)).unwrap(),
            Value::Integer(3)
        );
        let deep: Value = lua
            .load(format!(
                "local t = {{}} for i = 1, {} do t = {{t}} end return t",
                MAX_DEPTH + 5
            ))
            .eval()
            .unwrap();
        let err = deep_copy(&lua, deep).unwrap_err().to_string();
        assert!(err.contains("nested more than"), "{err}");
        // The state is usable afterwards.
        let t: Value = lua.load("return {1, {2}}").eval().unwrap();
        let Value::Table(c) = deep_copy(&lua, t).unwrap() else {
            panic!()
        };
        assert_eq!(c.raw_len(), 2);
    }

    #[test]
    fn running_out_of_memory_is_an_error_not_a_crash() {
        let lua = Lua::new();
        let big: Value = lua
            .load("local t = {} for i = 1, 20000 do t[i] = {i} end return t")
            .eval()
            .unwrap();
        lua.set_memory_limit(lua.used_memory() + 64 * 1024).unwrap();
        let err = deep_copy(&lua, big).unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
        lua.set_memory_limit(0).unwrap();
        let t: Value = lua.load("return {1}").eval().unwrap();
        assert!(deep_copy(&lua, t).is_ok());
    }
}
