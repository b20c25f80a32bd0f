//! Spreadsheet games (`capitals.quiz.csv`): the rules of the game a file's
//! name gives, the file's rows (read by `script::sheet`), and the params the
//! rules' `sheet` function makes of them (docs/lua-api.md §2).

use std::path::Path;

use mlua::{Lua, Table, Value};
use serde_json::Value as Json;

use super::{Fnv, Rules, is_editor_noise, read_lua_game, valid_game_name};
use crate::script::sandbox;
use crate::script::sheet::{self, SheetRow};

/// The spreadsheet behind a spreadsheet game.
#[derive(Debug)]
pub struct Sheet {
    /// Its file name in the games folder: `capitals.quiz.csv`.
    pub file: String,
    /// The game whose rules play it: `quiz`.
    pub rules: String,
    /// What the file holds (kept so a recording can hold it too).
    pub rows: Vec<SheetRow>,
    /// What the rules' `sheet` function returned: the params every new
    /// session of the game starts with (a host's own params override them
    /// key by key). `Null` until the rules have read the rows.
    pub params: Json,
}

impl Rules {
    /// The params `init` gets for a session created with `given`: a
    /// spreadsheet game's params with `given`'s keys on top; `given` as it
    /// is for a Lua game. Merging twice gives the same (replay relies on it).
    pub fn params_with(&self, given: Json) -> Json {
        let Some(Json::Object(base)) = self.sheet.as_ref().map(|s| &s.params) else {
            return given;
        };
        let mut merged = base.clone();
        match given {
            Json::Object(own) => merged.extend(own),
            Json::Null => {}
            other => return other,
        }
        Json::Object(merged)
    }
}

/// The spreadsheet files in `dir` whose names pass `wanted`, sorted.
pub(super) fn sheet_files(dir: &Path, wanted: impl Fn(&sheet::SheetName) -> bool) -> Vec<String> {
    // (`recess check capitals.quiz.csv` names the current folder as "".)
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|f| !is_editor_noise(f) && sheet::parse_name(f).is_some_and(|n| wanted(&n)))
        .filter(|f| dir.join(f).is_file())
        .collect();
    files.sort();
    files
}

/// `capitals.quiz.csv`: the rules of `quiz` with the file's rows; the
/// params are filled in by [`validate`].
pub(super) fn read_sheet_game(dir: &Path, name: &str, file: &str) -> Result<Rules, String> {
    let rules_name = sheet::parse_name(file).map_or("", |s| s.rules);
    if !valid_game_name(rules_name) || rules_name == name {
        return Err(format!(
            "{file}: name the file GAME.RULES.{}, where RULES is the game that plays it (such as capitals.quiz.csv)",
            sheet::parse_name(file).map_or("csv", |s| s.extension)
        ));
    }
    let mut rules = match read_lua_game(dir, rules_name) {
        None => {
            return Err(format!(
                "{file}: there is no game '{rules_name}' in this folder to play it (the file's name says {rules_name}.lua plays it)"
            ));
        }
        Some(Err(e)) => return Err(format!("{file}: its rules do not load: {e}")),
        Some(Ok(rules)) => rules,
    };
    let rows = sheet::read(&dir.join(file), file)?;
    let mut hash = Fnv::default();
    hash.write(rules.version.as_bytes());
    for row in &rows {
        for cell in &row.cells {
            hash.write(cell.as_bytes());
            hash.write(&[0x1f]);
        }
        hash.write(&[0x1e]);
    }
    rules.game = name.to_owned();
    rules.version = format!("{:016x}", hash.0);
    rules.sheet = Some(Sheet {
        file: file.to_owned(),
        rules: rules_name.to_owned(),
        rows,
        params: Json::Null,
    });
    Ok(rules)
}

/// Most bytes of params a spreadsheet may make.
const MAX_SHEET_PARAMS: usize = 1 << 20;

/// Calls the game table's `sheet(sheet)` with a spreadsheet's file name and
/// rows (`{file =, rows = {{row =, cells = {...}}, ...}}`): it returns the
/// params, or `nil, row, message` for a problem in the file.
pub(super) fn read_rows(lua: &Lua, table: &Table, sheet: &Sheet) -> Result<Json, String> {
    let file = &sheet.file;
    let lua_err = |e: mlua::Error| sandbox::describe(&e);
    let reader = match table.raw_get::<Value>("sheet").map_err(lua_err)? {
        Value::Function(f) => f,
        _ => {
            return Err(format!(
                "{file}: the game '{}' cannot read spreadsheets (its game table has no `sheet` function)",
                sheet.rules
            ));
        }
    };
    let rows = lua.create_table().map_err(lua_err)?;
    for (i, row) in sheet.rows.iter().enumerate() {
        let cells = lua
            .create_sequence_from(row.cells.iter().map(String::as_str))
            .map_err(lua_err)?;
        let t = lua.create_table().map_err(lua_err)?;
        t.raw_set("row", row.row).map_err(lua_err)?;
        t.raw_set("cells", cells).map_err(lua_err)?;
        rows.raw_set(i + 1, t).map_err(lua_err)?;
    }
    let arg = lua.create_table().map_err(lua_err)?;
    arg.raw_set("file", sheet.file.as_str()).map_err(lua_err)?;
    arg.raw_set("rows", rows).map_err(lua_err)?;
    let (params, row, message): (Value, Value, Value) = reader.call(arg).map_err(lua_err)?;
    if let Value::Nil = params {
        let message = match &message {
            Value::String(m) => m.to_string_lossy(),
            _ => "the rules could not read this spreadsheet".to_owned(),
        };
        return Err(match row {
            Value::Integer(r) => format!("{file}:{r}: {message}"),
            Value::Number(r) if r.fract() == 0.0 => format!("{file}:{r}: {message}"),
            _ => format!("{file}: {message}"),
        });
    }
    if !params.is_table() {
        return Err(format!(
            "{file}: `sheet` in {} must return a table of params, got {}",
            sheet.rules,
            sandbox::value_text(&params)
        ));
    }
    match crate::script::json::lua_to_json_sized(lua, params, MAX_SHEET_PARAMS) {
        Ok((json, _)) => Ok(json),
        Err(crate::script::json::SizedError::TooBig(_)) => Err(format!(
            "{file}: the spreadsheet makes more than {} KiB of questions",
            MAX_SHEET_PARAMS >> 10
        )),
        Err(crate::script::json::SizedError::Lua(e)) => {
            Err(format!("{file}: {}", sandbox::describe(&e)))
        }
    }
}
