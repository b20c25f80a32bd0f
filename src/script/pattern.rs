pub fn install(_lua: &mlua::Lua) -> mlua::Result<()> {
    Ok(())
}
