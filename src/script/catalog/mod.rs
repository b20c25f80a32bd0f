//! The games folder: loading, validating and versioning game rules.
//!
//! A game is `games/NAME.lua` or `games/NAME/init.lua` (with helper modules
//! beside it). Loading a game reads its source(s) into memory, runs the main
//! chunk in a scratch sandbox and checks the table it returns. A game that
//! passes becomes a [`Rules`] value with a content hash as its version; a
//! game that fails keeps its previous good version (if any) and records the
//! error as `file:line: message`. Sessions never read files: they take
//! `Arc<Rules>` from here, so a save is picked up by every session at its next
//! handler call without touching the disk again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use mlua::chunk::ChunkMode;
use mlua::{Lua, Table, Value};
use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::broadcast;

mod settings;
mod sheets;

use super::budget::CallBudget;
use super::sandbox::{self, Limits};
use super::sheet;
pub use settings::Setting;
pub use sheets::Sheet;
use sheets::{read_rows, read_sheet_game, sheet_files};

/// Handlers a game table may have; all but `init` and `view` are optional.
pub const HANDLERS: [&str; 8] = [
    "init", "join", "leave", "action", "timer", "event", "view", "migrate",
];
const REQUIRED: [&str; 2] = ["init", "view"];
/// Bounds on what one game folder may hold.
const MAX_SOURCE_BYTES: u64 = 1 << 20;
const MAX_MODULES: usize = 64;

/// One Lua source file of a game.
#[derive(Debug)]
pub struct Source {
    /// Name used in error messages: `quiz.lua` or `quiz/helpers.lua`.
    pub chunk_name: String,
    /// The file's contents.
    pub text: Arc<str>,
}

/// A validated version of a game's rules, shared by every session that runs it.
#[derive(Debug)]
pub struct Rules {
    /// The game's name: `quiz` for `games/quiz.lua` or `games/quiz/init.lua`.
    pub game: String,
    /// FNV-1a hash of every source; stored in snapshots to detect a change of rules.
    pub version: String,
    /// The main chunk: `NAME.lua`, or `NAME/init.lua` for a folder game.
    pub main: Source,
    /// Helper modules of a folder game, by `require` name (`helpers`, `lib.util`).
    pub modules: HashMap<String, Source>,
    /// The game table's `title`; the game's name when it has none.
    pub title: String,
    /// The game table's `max_players`: most players a session admits, the host
    /// not counted; `None`: no limit.
    pub max_players: Option<usize>,
    /// The game table's `settings`: what the host page offers to set before
    /// a session starts (empty: only the Advanced params field).
    pub settings: Vec<Setting>,
    /// A folder game that ships its own `client.html`.
    pub has_client: bool,
    /// `recess check` only: the globals that handlers assign are written
    /// here (see [`GlobalWatch`]); `None` on a server.
    pub globals: Option<Arc<GlobalWatch>>,
    /// A spreadsheet game (`capitals.quiz.csv`): its rows and the params its
    /// rules' `sheet` function made of them; `None` for a Lua game.
    pub sheet: Option<Sheet>,
}

/// The globals a game's handlers assigned (a missing `local`), with where:
/// what `recess check` warns about. A session whose rules carry one records
/// every new global set after the file has loaded.
#[derive(Debug, Default)]
pub struct GlobalWatch {
    assigned: std::sync::Mutex<Vec<AssignedGlobal>>,
}

/// One global a handler assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct AssignedGlobal {
    /// The global's name.
    pub name: String,
    /// Where, as `quiz.lua:42: `; empty when Lua cannot tell.
    pub at: String,
}

impl GlobalWatch {
    /// Records that `name` was assigned `at`; only the first time counts.
    pub fn record(&self, name: String, at: String) {
        let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
        if !assigned.iter().any(|a| a.name == name) {
            assigned.push(AssignedGlobal { name, at });
        }
    }

    /// What was recorded, in order.
    pub fn assigned(&self) -> Vec<AssignedGlobal> {
        self.assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the catalog knows of one game name.
#[derive(Debug, Clone, Default)]
pub struct GameEntry {
    /// The last version that loaded cleanly; what new sessions get.
    pub rules: Option<Arc<Rules>>,
    /// Why the file on disk does not load right now, as `file:line: message`.
    pub error: Option<String>,
}

/// A change to the games folder, announced to running sessions.
#[derive(Debug, Clone)]
pub enum GameChange {
    /// A version other than the one serving (or the game's first) loaded
    /// cleanly: new sessions get it, running ones switch to it at their next
    /// handler call.
    Updated {
        /// The game's name.
        game: String,
        /// The version that loaded (see [`Rules::version`]).
        version: String,
    },
    /// The file on disk does not load; the previous version, if any, keeps
    /// serving, and the hosts of its sessions are told.
    Broken {
        /// The game's name.
        game: String,
        /// Why, as `file:line: message`.
        message: String,
    },
    /// The game is gone from the folder: new sessions cannot start it,
    /// running ones keep their version.
    Removed {
        /// The game's name.
        game: String,
    },
}

/// The row `GET /api/games` returns for a game.
#[derive(Debug, Serialize)]
pub struct GameInfo {
    /// The game's name: `quiz` for `games/quiz.lua` or `games/quiz/init.lua`.
    pub name: String,
    /// The serving version's `title`; `None` when no version has loaded.
    pub title: Option<String>,
    /// The serving version's hash (see [`Rules::version`]); `None` when no
    /// version has loaded.
    pub version: Option<String>,
    /// The serving version's `max_players`; `None` when it sets no limit or no
    /// version has loaded.
    pub max_players: Option<usize>,
    /// The serving version's `settings`, for the host page's form.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<Setting>,
    /// The game ships `client.html`, served at `/custom/NAME/client.html`.
    pub client: bool,
    /// `ok`, or `error` when the file on disk does not load (a previous
    /// version may still be serving, see `version`).
    pub status: &'static str,
    /// Why the file on disk does not load, as `file:line: message`; `None` when
    /// `status` is `ok`.
    pub error: Option<String>,
}

/// All games of the folder, kept current by `script::watch`.
pub struct Catalog {
    /// The games folder.
    dir: PathBuf,
    /// Limits used when running a game's main chunk to validate it.
    limits: Limits,
    games: RwLock<BTreeMap<String, GameEntry>>,
    /// Tells running sessions (and tests) about every change.
    changes: broadcast::Sender<GameChange>,
    /// Rules loaded here record the globals their handlers assign
    /// (`recess check`).
    watch_globals: bool,
}

impl Catalog {
    /// An empty catalog of the games in `dir` (fill it with `load_all`);
    /// `limits` bound the run of a main chunk that validates a game.
    pub fn new(dir: impl Into<PathBuf>, limits: Limits) -> Arc<Self> {
        Self::with_watch(dir.into(), limits, false)
    }

    /// Like [`Catalog::new`], but every game loaded records the globals its
    /// handlers assign in [`Rules::globals`]: for `recess check`.
    pub fn watching_globals(dir: impl Into<PathBuf>, limits: Limits) -> Arc<Self> {
        Self::with_watch(dir.into(), limits, true)
    }

    fn with_watch(dir: PathBuf, limits: Limits, watch_globals: bool) -> Arc<Self> {
        let (changes, _) = broadcast::channel(256);
        Arc::new(Catalog {
            dir,
            limits,
            games: RwLock::new(BTreeMap::new()),
            changes,
            watch_globals,
        })
    }

    /// The games folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes from now on; a receiver that falls more than 256 behind loses
    /// the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<GameChange> {
        self.changes.subscribe()
    }

    /// Loads every game in the folder; returns each game's outcome for logging.
    pub fn load_all(&self) -> Vec<(String, Result<Arc<Rules>, String>)> {
        let mut names = game_names(&self.dir);
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let outcome = self.reload(&name);
                (
                    name,
                    outcome.ok_or_else(|| "removed".to_owned()).and_then(|r| r),
                )
            })
            .collect()
    }

    /// Re-reads one game from disk. `None` when the game no longer exists.
    pub fn reload(&self, name: &str) -> Option<Result<Arc<Rules>, String>> {
        let read = read_game(&self.dir, name);
        // Unchanged sources (same hash as the version serving): nothing to do.
        if let Some(Ok(r)) = &read {
            let games = self.games.read().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = games.get(name)
                && entry.error.is_none()
                && let Some(current) = &entry.rules
                && current.version == r.version
            {
                return Some(Ok(current.clone()));
            }
        }
        let loaded = read.map(|r| {
            r.and_then(|mut r| {
                if self.watch_globals {
                    r.globals = Some(Arc::default());
                }
                validate(r, self.limits)
            })
        });
        let mut games = self.games.write().unwrap_or_else(|e| e.into_inner());
        match loaded {
            None => {
                if games.remove(name).is_some() {
                    let _ = self.changes.send(GameChange::Removed {
                        game: name.to_owned(),
                    });
                }
                None
            }
            Some(Ok(rules)) => {
                let rules = Arc::new(rules);
                let entry = games.entry(name.to_owned()).or_default();
                let same = entry
                    .rules
                    .as_ref()
                    .is_some_and(|old| old.version == rules.version);
                entry.error = None;
                if !same {
                    entry.rules = Some(rules.clone());
                    let _ = self.changes.send(GameChange::Updated {
                        game: name.to_owned(),
                        version: rules.version.clone(),
                    });
                }
                Some(Ok(entry.rules.clone().unwrap_or(rules)))
            }
            Some(Err(message)) => {
                let entry = games.entry(name.to_owned()).or_default();
                entry.error = Some(message.clone());
                let _ = self.changes.send(GameChange::Broken {
                    game: name.to_owned(),
                    message: message.clone(),
                });
                Some(Err(message))
            }
        }
    }

    /// Reloads the games touched by changed paths (from the file watcher).
    /// Returns the names it reloaded.
    pub fn reload_paths<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Vec<String> {
        let mut names: Vec<String> = paths
            .into_iter()
            .filter_map(|p| game_of_path(&self.dir, p))
            // A folder that is not a game and never was (such as `types/`,
            // the editor stubs): nothing to reload, no "game removed".
            .filter(|name| self.entry(name).is_some() || has_game(&self.dir, name))
            .collect();
        // A spreadsheet game changes with the rules that play it.
        let played: Vec<String> = names
            .iter()
            .flat_map(|rules| sheet_files(&self.dir, |s| s.rules == rules))
            .filter_map(|f| sheet::parse_name(&f).map(|s| s.game.to_owned()))
            .collect();
        names.extend(played);
        names.sort();
        names.dedup();
        for name in &names {
            match self.reload(name) {
                Some(Ok(rules)) => {
                    tracing::info!(game = %name, version = %rules.version, "game reloaded")
                }
                Some(Err(message)) => {
                    tracing::warn!(game = %name, "game failed to reload, the previous version keeps running: {message}")
                }
                None => tracing::info!(game = %name, "game removed"),
            }
        }
        names
    }

    /// The version new sessions get, if the game has ever loaded.
    pub fn get(&self, name: &str) -> Option<Arc<Rules>> {
        let games = self.games.read().unwrap_or_else(|e| e.into_inner());
        games.get(name).and_then(|e| e.rules.clone())
    }

    /// What the catalog knows of `name`: its serving version and its load
    /// error; `None` for a game it does not have.
    pub fn entry(&self, name: &str) -> Option<GameEntry> {
        let games = self.games.read().unwrap_or_else(|e| e.into_inner());
        games.get(name).cloned()
    }

    /// Every game the catalog has, in name order: the rows of `GET /api/games`.
    pub fn list(&self) -> Vec<GameInfo> {
        let games = self.games.read().unwrap_or_else(|e| e.into_inner());
        games
            .iter()
            .map(|(name, e)| GameInfo {
                name: name.clone(),
                title: e.rules.as_ref().map(|r| r.title.clone()),
                version: e.rules.as_ref().map(|r| r.version.clone()),
                max_players: e.rules.as_ref().and_then(|r| r.max_players),
                settings: e
                    .rules
                    .as_ref()
                    .map(|r| r.settings.clone())
                    .unwrap_or_default(),
                client: e.rules.as_ref().is_some_and(|r| r.has_client),
                status: if e.error.is_some() { "error" } else { "ok" },
                error: e.error.clone(),
            })
            .collect()
    }
}

/// Whether `name` can be a game name (it becomes part of paths and chunk names).
pub fn valid_game_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// How a test file's name ends (`quiz_test.lua`): not a game.
pub const TEST_SUFFIX: &str = "_test.lua";

/// A folder game's folder of tests (`space/tests/`): not modules of the game.
pub const TESTS_FOLDER: &str = "tests";

/// Files editors write beside the real one while saving.
fn is_editor_noise(file_name: &str) -> bool {
    file_name.starts_with('.')
        || file_name.ends_with('~')
        || file_name.ends_with(".swp")
        || file_name.ends_with(".swx")
        || file_name.ends_with(".tmp")
        || file_name == "4913"
}

fn game_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| game_of_path(dir, &e.path()))
        .collect()
}

/// The game a path inside the games folder belongs to.
fn game_of_path(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    if is_editor_noise(first) {
        return None;
    }
    let nested = rel.components().count() > 1;
    let name = if nested {
        first
    } else if first.ends_with(TEST_SUFFIX) {
        // `quiz_test.lua` holds tests of `quiz` (`recess test`), not a game.
        return None;
    } else if let Some(stem) = first.strip_suffix(".lua") {
        stem
    } else if let Some(sheet) = sheet::parse_name(first) {
        sheet.game
    } else if path.join("init.lua").is_file() {
        first
    } else {
        // A folder without `init.lua` (such as `types/`, the editor stubs)
        // is not a game.
        return None;
    };
    if nested {
        let file = rel.file_name()?.to_str()?;
        if is_editor_noise(file) {
            return None;
        }
    }
    valid_game_name(name).then(|| name.to_owned())
}

fn read_source(path: &Path, chunk_name: String) -> Result<Source, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{chunk_name}: {e}"))?;
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "{chunk_name}: file is larger than {MAX_SOURCE_BYTES} bytes"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{chunk_name}: {e}"))?;
    Ok(Source {
        chunk_name,
        text: text.into(),
    })
}

/// Reads a game's sources (and a spreadsheet game's rows); `None` when it
/// has none of the forms.
fn read_game(dir: &Path, name: &str) -> Option<Result<Rules, String>> {
    let sheets = sheet_files(dir, |s| s.game == name);
    let Some(file) = sheets.first() else {
        return read_lua_game(dir, name);
    };
    if let Some(other) = lua_main(dir, name).as_ref().or(sheets.get(1)) {
        return Some(Err(format!(
            "{file}: {other} makes a game called '{name}' too; rename one of them"
        )));
    }
    Some(read_sheet_game(dir, name, file))
}

/// The main file of the Lua game `name` (`quiz.lua`, `space/init.lua`),
/// without reading it; `None` when neither form exists.
fn lua_main(dir: &Path, name: &str) -> Option<String> {
    if dir.join(name).join("init.lua").is_file() {
        Some(format!("{name}/init.lua"))
    } else if dir.join(format!("{name}.lua")).is_file() {
        Some(format!("{name}.lua"))
    } else {
        None
    }
}

/// Whether the folder has any form of the game `name`, without reading it.
fn has_game(dir: &Path, name: &str) -> bool {
    lua_main(dir, name).is_some() || !sheet_files(dir, |s| s.game == name).is_empty()
}

/// Reads a Lua game's sources; `None` when neither form exists.
fn read_lua_game(dir: &Path, name: &str) -> Option<Result<Rules, String>> {
    let main = lua_main(dir, name)?;
    if main.ends_with("/init.lua") {
        return Some(read_folder_game(&dir.join(name), name));
    }
    Some(read_source(&dir.join(&main), main).map(|main| rules_from(name, main, HashMap::new())))
}

fn read_folder_game(folder: &Path, name: &str) -> Result<Rules, String> {
    let main = read_source(&folder.join("init.lua"), format!("{name}/init.lua"))?;
    let mut modules = HashMap::new();
    let mut stack = vec![(folder.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{name}/: {e}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()).map(str::to_owned) else {
                continue;
            };
            if is_editor_noise(&file) {
                continue;
            }
            if path.is_dir() && prefix.is_empty() && file == TESTS_FOLDER {
                // The game's tests are not part of its rules.
                continue;
            }
            if path.is_dir() && prefix.matches('.').count() < 4 {
                stack.push((path, format!("{prefix}{file}.")));
            } else if let Some(stem) = file.strip_suffix(".lua") {
                if prefix.is_empty() && stem == "init" {
                    continue;
                }
                if modules.len() >= MAX_MODULES {
                    return Err(format!("{name}/: more than {MAX_MODULES} Lua files"));
                }
                let rel = format!("{}{file}", prefix.replace('.', "/"));
                let source = read_source(&path, format!("{name}/{rel}"))?;
                modules.insert(format!("{prefix}{stem}"), source);
            }
        }
    }
    let mut rules = rules_from(name, main, modules);
    rules.has_client = folder.join("client.html").is_file();
    Ok(rules)
}

fn rules_from(name: &str, main: Source, modules: HashMap<String, Source>) -> Rules {
    let mut hash = Fnv::default();
    hash.write(main.chunk_name.as_bytes());
    hash.write(main.text.as_bytes());
    let mut names: Vec<&String> = modules.keys().collect();
    names.sort();
    for m in names {
        hash.write(m.as_bytes());
        hash.write(modules[m].text.as_bytes());
    }
    Rules {
        game: name.to_owned(),
        version: format!("{:016x}", hash.0),
        main,
        modules,
        title: name.to_owned(),
        max_players: None,
        settings: Vec::new(),
        has_client: false,
        globals: None,
        sheet: None,
    }
}

/// 64-bit FNV-1a: stable across builds and machines, unlike `DefaultHasher`,
/// so a version written in a snapshot means the same thing after an upgrade.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 ^= 0xff;
    }
}

/// The 64-bit FNV-1a hash of `bytes` (as a version hashes one source).
pub(crate) fn fnv64(bytes: &[u8]) -> u64 {
    let mut hash = Fnv::default();
    hash.write(bytes);
    hash.0
}

/// Runs the main chunk in a scratch sandbox and checks the game table; a
/// spreadsheet game's rows go through its rules' `sheet` function there.
fn validate(rules: Rules, limits: Limits) -> Result<Rules, String> {
    let rules = Arc::new(rules);
    let (fields, params) = {
        let budget = CallBudget::new();
        let lua = sandbox::new_state(limits, budget.clone()).map_err(|e| sandbox::describe(&e))?;
        budget.reset(limits.cpu_units, limits.cpu_time);
        let table = load_game_table(&lua, &rules)?;
        let fields = check_game_table(&lua, &table, &rules.main)?;
        let params = match &rules.sheet {
            Some(sheet) => {
                budget.reset(limits.cpu_units, limits.cpu_time);
                Some(read_rows(&lua, &table, sheet)?)
            }
            None => None,
        };
        (fields, params)
    };
    // The scratch state (and the `require` closure holding a clone) is gone now.
    let mut rules = Arc::try_unwrap(rules)
        .map_err(|_| "internal error: game rules still shared after validation".to_owned())?;
    match (params, rules.sheet.as_mut()) {
        (Some(params), Some(sheet)) => {
            // A spreadsheet game is titled by its file, not by its rules.
            rules.title = match params.get("title") {
                Some(Json::String(t)) if !t.is_empty() => t.clone(),
                _ => rules.game.clone(),
            };
            sheet.params = params;
        }
        _ => {
            if let Some(title) = fields.title {
                rules.title = title;
            }
        }
    }
    rules.max_players = fields.max_players;
    rules.settings = fields.settings;
    Ok(rules)
}

/// Loads `rules` into `lua`: installs `require` for its modules, runs the main
/// chunk and returns the game table. Errors are `file:line: message`.
pub fn load_game_table(lua: &Lua, rules: &Arc<Rules>) -> Result<Table, String> {
    install_require(lua, rules.clone()).map_err(|e| sandbox::describe(&e))?;
    let value: Value = lua
        .load(&*rules.main.text)
        .set_name(format!("={}", rules.main.chunk_name))
        .set_mode(ChunkMode::Text)
        .eval()
        .map_err(|e| sandbox::describe(&e))?;
    match value {
        Value::Table(t) => Ok(t),
        other => Err(format!(
            "{}: the file must end with `return {{ ... }}` (a game table), but it returned {}",
            rules.main.chunk_name,
            other.type_name()
        )),
    }
}

/// The game table's fields other than its functions.
struct TableFields {
    title: Option<String>,
    max_players: Option<usize>,
    settings: Vec<Setting>,
}

/// Checks the game table's fields (docs/lua-api.md §3). A wrong field is
/// reported at the line that sets it when the source shows it plainly
/// (`title = 5`).
fn check_game_table(lua: &Lua, table: &Table, main: &Source) -> Result<TableFields, String> {
    let chunk = &main.chunk_name;
    let at = |key: &str, value: &Value| match key_line(&main.text, key, literal_start(value)) {
        Some(line) => format!("{chunk}:{line}"),
        None => chunk.clone(),
    };
    for name in HANDLERS {
        let v: Value = table.raw_get(name).map_err(|e| sandbox::describe(&e))?;
        match v {
            Value::Function(_) => {}
            Value::Nil if !REQUIRED.contains(&name) => {}
            Value::Nil => {
                return Err(format!(
                    "{chunk}: the game table has no `{name}` function (every game needs `init` and `view`)"
                ));
            }
            other => {
                return Err(format!(
                    "{}: `{name}` must be a function, got {}",
                    at(name, &other),
                    sandbox::value_text(&other)
                ));
            }
        }
    }
    match table
        .raw_get::<Value>("sheet")
        .map_err(|e| sandbox::describe(&e))?
    {
        Value::Nil | Value::Function(_) => {}
        other => {
            return Err(format!(
                "{}: `sheet` must be a function, got {}",
                at("sheet", &other),
                sandbox::value_text(&other)
            ));
        }
    }
    let title = match table
        .raw_get::<Value>("title")
        .map_err(|e| sandbox::describe(&e))?
    {
        Value::Nil => None,
        Value::String(s) => Some(s.to_string_lossy()),
        other => {
            return Err(format!(
                "{}: `title` must be a string, got {}",
                at("title", &other),
                sandbox::value_text(&other)
            ));
        }
    };
    let max_players = match table
        .raw_get::<Value>("max_players")
        .map_err(|e| sandbox::describe(&e))?
    {
        Value::Nil => None,
        Value::Integer(n) if n > 0 => Some(n as usize),
        Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
        other => {
            return Err(format!(
                "{}: `max_players` must be a positive whole number, got {}",
                at("max_players", &other),
                sandbox::value_text(&other)
            ));
        }
    };
    let raw: Value = table
        .raw_get("settings")
        .map_err(|e| sandbox::describe(&e))?;
    let settings = match raw {
        Value::Nil => Vec::new(),
        raw => {
            let where_ = at("settings", &raw);
            let json = super::json::lua_to_json(lua, raw)
                .map_err(|e| format!("{where_}: `settings`: {}", sandbox::describe(&e)))?;
            settings::parse(&json).map_err(|e| format!("{where_}: {e}"))?
        }
    };
    Ok(TableFields {
        title,
        max_players,
        settings,
    })
}

/// How the source text of a value of this kind starts, when it is written
/// as a literal: `5`, `"`, `{`, `function`, `true`.
fn literal_start(v: &Value) -> Option<&'static str> {
    match v {
        Value::Boolean(true) => Some("true"),
        Value::Boolean(false) => Some("false"),
        Value::Table(_) => Some("{"),
        Value::Function(_) => Some("function"),
        Value::String(_) => Some("\"'["),
        Value::Integer(_) | Value::Number(_) => Some("-0123456789."),
        _ => None,
    }
}

/// The first line (from 1) of `text` where `key` is set as a field:
/// `key = …`, `x.key = …` or `["key"] = …`, outside comments. With
/// `starts`, the value after `=` must begin with one of its characters (or
/// with `starts` itself when it is a word, such as `function`). Used to put
/// a line on problems found in values: a game table's wrong field, a view
/// key `recess check` does not know.
pub fn key_line(text: &str, key: &str, starts: Option<&str>) -> Option<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.lines().enumerate().find_map(|(i, line)| {
        let code = line.split("--").next().unwrap_or(line);
        let mut from = 0;
        while let Some(found) = code[from..].find(key) {
            let begin = from + found;
            let end = begin + key.len();
            from = end;
            let before = code[..begin].chars().next_back();
            let after = code[end..].chars().next();
            let bracketed = matches!(before, Some('"' | '\''))
                && code[..begin - 1].ends_with('[')
                && code[end..].starts_with(['"', '\''])
                && code[end + 1..].starts_with(']');
            let rest = if bracketed {
                &code[end + 2..]
            } else if before.is_some_and(ident) || after.is_some_and(ident) {
                continue;
            } else {
                &code[end..]
            };
            let Some(value) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            if value.starts_with('=') {
                continue;
            }
            let value = value.trim_start();
            let fits = match starts {
                None => true,
                Some(word) if word.chars().all(|c| c.is_ascii_alphabetic()) => {
                    value.starts_with(word)
                }
                Some(chars) => value.starts_with(|c| chars.contains(c)),
            };
            if fits {
                return Some(i + 1);
            }
        }
        None
    })
}

/// Installs `require`, which loads only this game's own modules, from memory.
pub fn install_require(lua: &Lua, rules: Arc<Rules>) -> mlua::Result<()> {
    let cache = lua.create_table()?;
    let require = lua.create_function(move |lua, name: Value| {
        let Value::String(name) = name else {
            return Err(mlua::Error::runtime(format!(
                "bad argument #1 to 'require' (string expected, got {})",
                sandbox::kind(&name)
            )));
        };
        let name = name.to_string_lossy();
        if let Some(v) = cache.raw_get::<Option<Value>>(name.as_str())? {
            return Ok(v);
        }
        let Some(source) = rules.modules.get(&name) else {
            let hint = if rules.modules.is_empty() {
                " (helper modules need the folder form: games/NAME/init.lua beside them)"
            } else {
                ""
            };
            return Err(mlua::Error::runtime(format!(
                "module '{name}' not found in game '{}'{hint}",
                rules.game
            )));
        };
        // Mark the module as loading so a require cycle ends instead of recursing.
        cache.raw_set(name.as_str(), true)?;
        let value: Value = lua
            .load(&*source.text)
            .set_name(format!("={}", source.chunk_name))
            .set_mode(ChunkMode::Text)
            .call(name.as_str())?;
        let value = if value.is_nil() {
            Value::Boolean(true)
        } else {
            value
        };
        cache.raw_set(name.as_str(), value.clone())?;
        Ok(value)
    })?;
    lua.globals()
        .raw_set("require", sandbox::plain_errors(lua, require)?)
}

/// What `recess check PATH` looks at: a games folder (every game in it),
/// a game file or a game folder (that one game). Returns the games folder
/// and the names of the games to check.
pub fn check_target(path: &Path) -> (PathBuf, Vec<String>) {
    if path.is_file() || path.join("init.lua").is_file() {
        let file = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let name = match sheet::parse_name(file) {
            Some(sheet) => sheet.game.to_owned(),
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned(),
        };
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, vec![name])
    } else {
        let mut names = game_names(path);
        names.sort();
        (path.to_path_buf(), names)
    }
}

#[cfg(test)]
mod tests;
