//! The editor stubs (`games/types/recess.lua`, `games/.luarc.json`) are
//! true to the engine and to docs/lua-api.md. Each check compares the names
//! on every side and fails naming what is missing, and where: the `ctx`
//! functions and the globals a real run installs, the player tables it hands
//! out, the test API of `recess test`, the screen vocabulary of
//! `script::vocabulary`, the handlers of `script::catalog`, and the docs'
//! headings and tables. Also: the types folder is never taken for a game.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use recess::authoring::test::{SESSION_FIELDS, SESSION_METHODS};
use recess::script::catalog::{HANDLERS, check_target};
use recess::script::vocabulary::{
    BANNER_FIELDS, BAR_FIELDS, BUTTON_FIELDS, INPUT_FIELDS, MESSAGE_FIELDS, ORDER_FIELDS,
    ORDER_ITEM_FIELDS, PLAYER_FIELDS, RANK_FIELDS, SELECT_FIELDS, SLIDER_FIELDS, STYLES,
    TIMER_FIELDS, VIEW_KEYS, WORD_FIELDS,
};
use recess::script::{Catalog, Limits};

const STUB: &str = "games/types/recess.lua";
const LUARC: &str = "games/.luarc.json";
const DOCS: &str = "docs/lua-api.md";

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Names = BTreeSet<String>;

fn names<'a>(list: impl IntoIterator<Item = &'a str>) -> Names {
    list.into_iter().map(str::to_owned).collect()
}

/// Compares the same list as two sides have it; fails with every name one
/// side has and the other lacks.
fn same(what: &str, (a_name, a): (&str, &Names), (b_name, b): (&str, &Names)) {
    let mut problems = Vec::new();
    for n in a.difference(b) {
        problems.push(format!(
            "{what}: `{n}` is in {a_name} but missing from {b_name}"
        ));
    }
    for n in b.difference(a) {
        problems.push(format!(
            "{what}: `{n}` is in {b_name} but missing from {a_name}"
        ));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// The stub, read as LuaLS reads it: classes with their fields and
// functions, and string aliases.

#[derive(Debug, Default)]
struct Class {
    exact: bool,
    /// Member name → the parameter names of its function (a `fun(...)`
    /// field or a `function Class.name(...)`), if it is one.
    members: BTreeMap<String, Option<Vec<String>>>,
    /// Members without `?`.
    required: Names,
}

#[derive(Debug, Default)]
struct Stub {
    classes: BTreeMap<String, Class>,
    aliases: BTreeMap<String, Names>,
}

impl Stub {
    fn class(&self, name: &str) -> &Class {
        self.classes
            .get(name)
            .unwrap_or_else(|| panic!("{STUB} has no `---@class {name}`"))
    }

    fn members(&self, class: &str) -> Names {
        self.class(class).members.keys().cloned().collect()
    }

    fn params(&self, class: &str, member: &str) -> Vec<String> {
        match self.class(class).members.get(member) {
            Some(Some(params)) => params.clone(),
            _ => panic!("{STUB}: `{class}.{member}` is not declared as a function"),
        }
    }
}

/// `a: T, b?: U, ...` → `["a", "b", "..."]`.
fn param_names(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes: Vec<char> = list.chars().collect();
    let mut push = |piece: String| {
        let name = piece.split(':').next().unwrap_or_default().trim();
        let name = name.trim_end_matches('?');
        if !name.is_empty() {
            out.push(name.to_owned());
        }
    };
    for (i, c) in bytes.iter().enumerate() {
        match c {
            '(' | '{' | '<' | '[' => depth += 1,
            ')' | '}' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                push(bytes[start..i].iter().collect());
                start = i + 1;
            }
            _ => {}
        }
    }
    push(bytes[start..].iter().collect());
    out
}

/// The parameters of `fun(a: T, b: U): R`, or None for a type that is not a function.
fn fun_params(ty: &str) -> Option<Vec<String>> {
    let rest = ty.strip_prefix("fun(")?;
    let mut depth = 1;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(param_names(&rest[..i]));
                }
            }
            _ => {}
        }
    }
    None
}

fn parse_stub(text: &str) -> Stub {
    let mut stub = Stub::default();
    let mut class: Option<String> = None;
    let mut alias: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("---@class ") {
            let (exact, rest) = match rest.strip_prefix("(exact) ") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let name = rest
                .split(|c: char| c == ':' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned();
            stub.classes.entry(name.clone()).or_default().exact |= exact;
            class = Some(name);
            alias = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("---@field ") {
            let class = class
                .as_ref()
                .unwrap_or_else(|| panic!("{STUB}: `{line}` outside a class"));
            let mut words = rest.splitn(2, ' ');
            let raw = words.next().unwrap_or_default();
            let ty = words.next().unwrap_or_default().trim();
            let name = raw.trim_end_matches('?').to_owned();
            let c = stub.classes.entry(class.clone()).or_default();
            if !raw.ends_with('?') {
                c.required.insert(name.clone());
            }
            c.members.insert(name, fun_params(ty));
            continue;
        }
        if let Some(rest) = line.strip_prefix("---@alias ") {
            let mut words = rest.splitn(2, ' ');
            let name = words.next().unwrap_or_default().to_owned();
            let values = stub.aliases.entry(name.clone()).or_default();
            for v in words.next().unwrap_or_default().split('|') {
                if let Some(s) = v.trim().strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    values.insert(s.to_owned());
                }
            }
            alias = Some(name);
            class = None;
            continue;
        }
        if let Some(rest) = line.strip_prefix("---|") {
            if let Some(alias) = &alias {
                let v = rest.trim().split(" #").next().unwrap_or_default().trim();
                if let Some(s) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    stub.aliases
                        .entry(alias.clone())
                        .or_default()
                        .insert(s.to_owned());
                }
            }
            continue;
        }
        if line.starts_with("---") {
            continue;
        }
        class = None;
        alias = None;
        // `function Ctx.now()` or `function Session:join(name)`.
        if let Some(rest) = line.strip_prefix("function ")
            && let Some(open) = rest.find('(')
            && let Some((owner, member)) = rest[..open].split_once(['.', ':'])
        {
            let close = rest.rfind(')').unwrap_or(rest.len());
            let params = param_names(&rest[open + 1..close]);
            let c = stub.classes.get_mut(owner).unwrap_or_else(|| {
                panic!("{STUB}: `function {owner}.{member}` but no `---@class {owner}`")
            });
            c.members.insert(member.to_owned(), Some(params));
            c.required.insert(member.to_owned());
        }
    }
    stub
}

fn stub() -> Stub {
    parse_stub(&repo_file(STUB))
}

/// The globals the stub declares: what running it assigns (a meta file's
/// bodies are empty, so running it only defines them).
fn stub_globals() -> Names {
    let lua = mlua::Lua::new();
    let text = repo_file(STUB);
    let record: mlua::Function = lua
        .load(
            r#"
            local seen = {}
            local env = setmetatable({}, { __newindex = function(_, k) seen[#seen + 1] = k end })
            return function(chunk) chunk(env) return seen end
            "#,
        )
        .eval()
        .unwrap();
    let chunk = lua
        .load(format!("local _ENV = ...\n{text}"))
        .set_name(format!("={STUB}"))
        .into_function()
        .unwrap_or_else(|e| panic!("{STUB} does not compile as Lua 5.4: {e}"));
    let seen: Vec<String> = record
        .call(chunk)
        .unwrap_or_else(|e| panic!("{STUB} does not run: {e}"));
    seen.into_iter().collect()
}

// ---------------------------------------------------------------------------
// The engine, asked at run time: a probe game and a test file that prints
// what they find, run with the real `recess test`.

const PROBE_GAME: &str = r#"
local function keys(t)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = k .. ":" .. type(v) end
  table.sort(out)
  return table.concat(out, " ")
end
return {
  title = "probe",
  init = function(ctx, params)
    return { ctx = keys(ctx), globals = keys(_G) }
  end,
  join = function(state, ctx, player)
    state.player = keys(player)
    state.member = keys(ctx.players()[1])
  end,
  view = function(state, player)
    return { title = "probe", ctx = state.ctx, globals = state.globals,
             player = state.player, member = state.member }
  end,
}
"#;

fn probe_test(methods: &Names) -> String {
    let list: Vec<String> = methods.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"
local function keys(t)
  local out = {{}}
  for k, v in pairs(t) do out[#out + 1] = k .. ":" .. type(v) end
  table.sort(out)
  return table.concat(out, " ")
end
local function say(what, text) print("probe " .. what .. " = " .. text) end
local s = session("probe")
local ana = s:join("Ana")
local v = s:view(s.host)
say("ctx", v.ctx)
say("game_globals", v.globals)
say("player", v.player)
say("member", v.member)
say("test_globals", keys(_G))
say("expect", keys(expect(1)))
local methods = {{}}
for _, m in ipairs({{ {list} }}) do methods[#methods + 1] = m .. ":" .. type(s[m]) end
say("session_methods", table.concat(methods, " "))
say("session_fields", "host:" .. type(s.host))
local bot = s:join("Helper", {{role = "bot"}})
say("roles", s.host.role .. ":string " .. ana.role .. ":string " .. bot.role .. ":string")
"#,
        list = list.join(", ")
    )
}

/// What the probe printed, by name: each a set of `name:type`.
fn probe_engine(methods: &Names) -> BTreeMap<String, BTreeMap<String, String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probe.lua"), PROBE_GAME).unwrap();
    std::fs::write(dir.path().join("probe_test.lua"), probe_test(methods)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recess"))
        .arg("test")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the probe failed:\n{stdout}\n{stderr}"
    );
    let mut found = BTreeMap::new();
    for line in stderr.lines() {
        let Some(rest) = line.trim_start().strip_prefix("| probe ") else {
            continue;
        };
        let Some((what, list)) = rest.split_once(" = ") else {
            continue;
        };
        let entries = list
            .split_whitespace()
            .filter_map(|e| e.split_once(':'))
            .map(|(k, t)| (k.to_owned(), t.to_owned()))
            .collect();
        found.insert(what.to_owned(), entries);
    }
    for what in ["ctx", "game_globals", "test_globals", "expect", "player"] {
        assert!(
            found.contains_key(what),
            "the probe printed no `{what}`:\n{stderr}"
        );
    }
    found
}

fn with_type(found: &BTreeMap<String, String>, ty: &str) -> Names {
    found
        .iter()
        .filter(|(_, t)| t.as_str() == ty)
        .map(|(k, _)| k.clone())
        .collect()
}

// ---------------------------------------------------------------------------
// The docs.

/// The lines of the section that starts with `## N.`, up to the next `## `.
fn section(docs: &str, number: u32) -> Vec<&str> {
    let start = format!("## {number}. ");
    let lines: Vec<&str> = docs.lines().collect();
    let from = lines
        .iter()
        .position(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("{DOCS} has no section `{start}…`"));
    lines[from + 1..]
        .iter()
        .take_while(|l| !l.starts_with("## "))
        .copied()
        .collect()
}

/// The first column of the table whose header row starts `| HEADER |`,
/// without backticks.
fn table_keys(lines: &[&str], header: &str) -> Names {
    let head = format!("| {header} |");
    let from = lines
        .iter()
        .position(|l| l.starts_with(&head))
        .unwrap_or_else(|| panic!("{DOCS}: no table with the header `{head}`"));
    lines[from + 2..]
        .iter()
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1))
        .map(|cell| cell.trim().trim_matches('`').to_owned())
        .collect()
}

/// `### \`PREFIXname(a, b)\` …` headings → name → parameter names.
fn headings(lines: &[&str], prefix: &str) -> BTreeMap<String, Vec<String>> {
    let start = format!("### `{prefix}");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&start))
        .filter_map(|rest| {
            let open = rest.find('(')?;
            let close = rest[open..].find(')')? + open;
            Some((rest[..open].to_owned(), param_names(&rest[open + 1..close])))
        })
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
fn ctx_functions_match_the_engine_the_stub_and_the_docs() {
    let stub = stub();
    let engine = probe_engine(&names(SESSION_METHODS.iter().copied()));
    let installed = &engine["ctx"];
    let functions = with_type(installed, "function");
    same(
        "ctx",
        (
            "the ctx table a real session installs",
            &names(installed.keys().map(String::as_str)),
        ),
        ("its functions", &functions),
    );
    let in_stub = stub.members("Ctx");
    same(
        "ctx",
        ("the ctx table a real session installs", &functions),
        (&format!("{STUB} (class Ctx)"), &in_stub),
    );
    let docs = repo_file(DOCS);
    let headed = headings(&section(&docs, 8), "ctx.");
    same(
        "ctx",
        (&format!("{STUB} (class Ctx)"), &in_stub),
        (
            &format!("the ### `ctx.NAME(...)` headings of {DOCS} §8"),
            &headed.keys().cloned().collect(),
        ),
    );
    for (name, params) in &headed {
        assert_eq!(
            &stub.params("Ctx", name),
            params,
            "ctx.{name}: the parameters in {STUB} differ from the heading in {DOCS} §8"
        );
    }
    // Not `(exact)`: LuaLS then leaves out the `function Ctx.name` members.
    assert!(
        !stub.class("Ctx").exact,
        "{STUB}: Ctx must not be `(exact)` (the editor would not see its functions)"
    );
}

#[test]
fn the_game_table_matches_the_catalog_and_the_docs() {
    let stub = stub();
    let game = stub.class("Game");
    assert!(game.exact, "{STUB}: Game must be `(exact)`");
    let mut engine = names(HANDLERS);
    engine.extend(names(["title", "max_players", "sheet", "settings"]));
    same(
        "the game table",
        (
            "script::catalog (HANDLERS, title, max_players, sheet, settings)",
            &engine,
        ),
        (&format!("{STUB} (class Game)"), &stub.members("Game")),
    );
    let docs = repo_file(DOCS);
    let s3 = section(&docs, 3);
    same(
        "the game table",
        (&format!("{STUB} (class Game)"), &stub.members("Game")),
        (
            &format!("the table of {DOCS} §3"),
            &table_keys(&s3, "field"),
        ),
    );
    // The fields the docs call required are the ones without `?`.
    let required: Names = s3
        .iter()
        .filter(|l| l.split('|').nth(3).is_some_and(|c| c.trim() == "yes"))
        .filter_map(|l| l.split('|').nth(1))
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect();
    same(
        "required fields of the game table",
        (&format!("{STUB} (Game fields without `?`)"), &game.required),
        (&format!("the `yes` rows of {DOCS} §3"), &required),
    );
    // Each handler's parameters, as the §6 headings give them.
    let headed = headings(&section(&docs, 6), "");
    same(
        "handlers",
        ("script::catalog::HANDLERS", &names(HANDLERS)),
        (
            &format!("the ### `NAME(...)` headings of {DOCS} §6"),
            &headed.keys().cloned().collect(),
        ),
    );
    for (name, params) in &headed {
        assert_eq!(
            &stub.params("Game", name),
            params,
            "{name}: the parameters in {STUB} (class Game) differ from the heading in {DOCS} §6"
        );
    }
}

#[test]
fn the_screen_vocabulary_matches_the_engine_the_stub_and_the_docs() {
    let stub = stub();
    let view = names(VIEW_KEYS.iter().copied());
    same(
        "view keys",
        ("script::vocabulary::VIEW_KEYS", &view),
        (&format!("{STUB} (class View)"), &stub.members("View")),
    );
    let docs = repo_file(DOCS);
    let s11 = section(&docs, 11);
    same(
        "view keys",
        ("script::vocabulary::VIEW_KEYS", &view),
        (
            &format!("the table of {DOCS} §11"),
            &table_keys(&s11, "key"),
        ),
    );
    same(
        "button fields",
        (
            "script::vocabulary::BUTTON_FIELDS",
            &names(BUTTON_FIELDS.iter().copied()),
        ),
        (
            &format!("the buttons table of {DOCS} §11"),
            &table_keys(&s11, "field"),
        ),
    );
    for (list, fields, class) in [
        ("BUTTON_FIELDS", BUTTON_FIELDS, "View.Button"),
        ("INPUT_FIELDS", INPUT_FIELDS, "View.Input"),
        ("BANNER_FIELDS", BANNER_FIELDS, "View.Banner"),
        ("TIMER_FIELDS", TIMER_FIELDS, "View.Timer"),
        ("MESSAGE_FIELDS", MESSAGE_FIELDS, "View.Message"),
        ("RANK_FIELDS", RANK_FIELDS, "View.Rank"),
        ("PLAYER_FIELDS", PLAYER_FIELDS, "View.Player"),
        ("SELECT_FIELDS", SELECT_FIELDS, "View.Select"),
        ("SLIDER_FIELDS", SLIDER_FIELDS, "View.Slider"),
        ("ORDER_FIELDS", ORDER_FIELDS, "View.Order"),
        ("ORDER_ITEM_FIELDS", ORDER_ITEM_FIELDS, "View.OrderItem"),
        ("BAR_FIELDS", BAR_FIELDS, "View.Bar"),
        ("WORD_FIELDS", WORD_FIELDS, "View.Word"),
    ] {
        same(
            "view fields",
            (
                &format!("script::vocabulary::{list}"),
                &names(fields.iter().copied()),
            ),
            (&format!("{STUB} (class {class})"), &stub.members(class)),
        );
    }
    for class in [
        "View",
        "View.Button",
        "View.Input",
        "View.Banner",
        "View.Timer",
        "View.Message",
        "View.Rank",
        "View.Player",
        "View.Select",
        "View.Slider",
        "View.Order",
        "View.OrderItem",
        "View.Bar",
        "View.Word",
    ] {
        assert!(
            stub.class(class).exact,
            "{STUB}: {class} must be `(exact)`, so a misspelled field is flagged"
        );
    }
    // The question parts each have a table of their fields in §11.
    for (list, fields, header) in [
        ("SELECT_FIELDS", SELECT_FIELDS, "`select` field"),
        ("SLIDER_FIELDS", SLIDER_FIELDS, "`slider` field"),
        ("ORDER_FIELDS", ORDER_FIELDS, "`order` field"),
        ("ORDER_ITEM_FIELDS", ORDER_ITEM_FIELDS, "field of an item"),
        ("BAR_FIELDS", BAR_FIELDS, "field of a bar"),
        ("WORD_FIELDS", WORD_FIELDS, "field of a word"),
    ] {
        same(
            "view fields",
            (
                &format!("script::vocabulary::{list}"),
                &names(fields.iter().copied()),
            ),
            (
                &format!("the table `| {header} |` of {DOCS} §11"),
                &table_keys(&s11, header),
            ),
        );
    }
    same(
        "styles",
        ("script::vocabulary::STYLES", &names(STYLES.iter().copied())),
        (&format!("{STUB} (alias Style)"), &stub.aliases["Style"]),
    );
}

#[test]
fn players_match_what_handlers_get() {
    let stub = stub();
    let engine = probe_engine(&names(SESSION_METHODS.iter().copied()));
    // `real_name` is there only in a session with generated names, which
    // the probe does not start (tests/names.rs sees it there).
    let with_real_name = |keys: &BTreeMap<String, String>| {
        names(
            keys.keys()
                .map(String::as_str)
                .chain(std::iter::once("real_name")),
        )
    };
    let player = with_real_name(&engine["player"]);
    same(
        "player",
        ("the player table join gets", &player),
        (&format!("{STUB} (class Player)"), &stub.members("Player")),
    );
    // A member of ctx.players() is a Player with `connected`.
    let mut member = stub.members("Player");
    member.extend(stub.members("Member"));
    same(
        "ctx.players()",
        (
            "an entry of ctx.players()",
            &with_real_name(&engine["member"]),
        ),
        (&format!("{STUB} (class Member: Player)"), &member),
    );
    let roles = names(engine["roles"].keys().map(String::as_str));
    same(
        "roles",
        ("the roles of a session's host and of a student", &roles),
        (&format!("{STUB} (alias Role)"), &stub.aliases["Role"]),
    );
}

#[test]
fn the_test_api_matches_the_engine() {
    let stub = stub();
    let in_stub = stub.members("Session");
    // Probe every name either side knows: each must be a method at run time.
    let mut asked = names(SESSION_METHODS.iter().copied());
    asked.extend(in_stub.iter().cloned());
    let engine = probe_engine(&asked);
    let methods = &engine["session_methods"];
    let fields = names(SESSION_FIELDS.iter().copied());
    let stub_methods: Names = in_stub.difference(&fields).cloned().collect();
    same(
        "session methods",
        (
            "authoring::test::SESSION_METHODS",
            &names(SESSION_METHODS.iter().copied()),
        ),
        (
            &format!("{STUB} (class Session, its functions)"),
            &stub_methods,
        ),
    );
    same(
        "session methods",
        (
            &format!("{STUB} (class Session, its functions)"),
            &stub_methods,
        ),
        (
            "the methods a session in a test file has",
            &with_type(methods, "function"),
        ),
    );
    let stub_fields: Names = in_stub
        .iter()
        .filter(|m| stub.class("Session").members[*m].is_none())
        .cloned()
        .collect();
    same(
        "session fields",
        ("authoring::test::SESSION_FIELDS", &fields),
        (&format!("{STUB} (class Session, its fields)"), &stub_fields),
    );
    assert!(
        engine["session_fields"]
            .get("host")
            .is_some_and(|t| t == "table"),
        "s.host is not a table in a test file"
    );
    let matchers = &engine["expect"];
    same(
        "expect",
        (
            "the matchers of expect(x) in a test file",
            &with_type(matchers, "function"),
        ),
        (
            &format!("{STUB} (class Expectation)"),
            &stub.members("Expectation"),
        ),
    );
    assert!(
        !stub.class("Expectation").exact,
        "{STUB}: Expectation must not be `(exact)` (the editor would not see its functions)"
    );
    for class in ["Session", "Player", "Member"] {
        assert!(stub.class(class).exact, "{STUB}: {class} must be `(exact)`");
    }
}

#[test]
fn globals_match_the_sandbox_and_the_editor_settings() {
    let engine = probe_engine(&names(SESSION_METHODS.iter().copied()));
    let luarc: serde_json::Value = serde_json::from_str(&repo_file(LUARC))
        .unwrap_or_else(|e| panic!("{LUARC} is not JSON: {e}"));
    let builtin = |lib: &str| {
        luarc["runtime.builtin"][lib]
            .as_str()
            .unwrap_or("default")
            .to_owned()
    };
    // The libraries: a table global of the sandbox is left to the editor
    // (not disabled); one the sandbox lacks is disabled.
    let mut all = engine["game_globals"].clone();
    all.extend(engine["test_globals"].clone());
    let libraries: Names = with_type(&all, "table")
        .into_iter()
        .filter(|k| k != "_G")
        .collect();
    for lib in [
        "string",
        "table",
        "math",
        "utf8",
        "io",
        "os",
        "debug",
        "coroutine",
        "package",
    ] {
        let present = libraries.contains(lib);
        let off = builtin(lib) == "disable";
        assert!(
            present != off,
            "{LUARC}: runtime.builtin.{lib} is {:?}, but the sandbox {} `{lib}`",
            builtin(lib),
            if present { "has" } else { "does not have" }
        );
    }
    // The basic functions: the editor's list is off, the stub declares the
    // sandbox's own (games' and test files' alike).
    assert_eq!(
        builtin("basic"),
        "disable",
        "{LUARC}: runtime.builtin.basic must be \"disable\": {STUB} declares the sandbox's basic functions"
    );
    let sandbox: Names = all
        .keys()
        .filter(|k| !libraries.contains(*k))
        .cloned()
        .collect();
    same(
        "globals",
        (
            "the globals of a game's and a test file's sandbox",
            &sandbox,
        ),
        (&format!("the globals {STUB} declares"), &stub_globals()),
    );
}

#[test]
fn the_editor_settings_name_the_stubs() {
    let luarc: serde_json::Value = serde_json::from_str(&repo_file(LUARC))
        .unwrap_or_else(|e| panic!("{LUARC} is not JSON: {e}"));
    assert_eq!(
        luarc["runtime.version"], "Lua 5.4",
        "{LUARC}: runtime.version must be \"Lua 5.4\""
    );
    let library: Vec<&str> = luarc["workspace.library"]
        .as_array()
        .unwrap_or_else(|| panic!("{LUARC}: workspace.library must be a list"))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let games = Path::new(env!("CARGO_MANIFEST_DIR")).join("games");
    let stub = Path::new(env!("CARGO_MANIFEST_DIR")).join(STUB);
    assert!(
        library
            .iter()
            .any(|l| games.join(l) == stub.parent().map(Path::to_path_buf).unwrap_or_default()),
        "{LUARC}: workspace.library {library:?} does not name the folder of {STUB}"
    );
    for l in &library {
        assert!(
            games.join(l).is_dir(),
            "{LUARC}: workspace.library names {l}, which is not a folder in games/"
        );
    }
    let text = repo_file(STUB);
    assert!(
        text.starts_with("---@meta"),
        "{STUB} must start with ---@meta"
    );
    mlua::Lua::new()
        .load(&text)
        .set_name(format!("={STUB}"))
        .into_function()
        .unwrap_or_else(|e| panic!("{STUB} does not compile as Lua 5.4: {e}"));
}

// ---------------------------------------------------------------------------
// The types folder is not a game.

/// A games folder like the shipped one: a game, its test, the stubs and the
/// editor settings.
fn games_with_stubs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let types = dir.path().join("types");
    std::fs::create_dir(&types).unwrap();
    std::fs::write(types.join("recess.lua"), repo_file(STUB)).unwrap();
    std::fs::write(dir.path().join(".luarc.json"), repo_file(LUARC)).unwrap();
    std::fs::write(
        dir.path().join("hands.lua"),
        "---@type Game\nreturn { title = 'Hands', init = function() return {} end, view = function() return { title = 'Hands' } end }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hands_test.lua"),
        "test('starts', function() local s = session('hands') expect(s:view(s.host).title).to_be('Hands') end)",
    )
    .unwrap();
    dir
}

fn stub_path(dir: &Path) -> PathBuf {
    dir.join("types").join("recess.lua")
}

#[test]
fn the_types_folder_is_not_a_game() {
    let dir = games_with_stubs();
    let catalog = Catalog::new(dir.path(), Limits::default());
    let loaded: Vec<String> = catalog.load_all().into_iter().map(|(n, _)| n).collect();
    assert_eq!(loaded, vec!["hands"], "the catalog loaded {loaded:?}");
    // A save of the stubs while the server runs reloads nothing.
    let reloaded = catalog.reload_paths([stub_path(dir.path()).as_path()]);
    assert!(reloaded.is_empty(), "saving {STUB} reloaded {reloaded:?}");
    let (_, checked) = check_target(dir.path());
    assert_eq!(checked, vec!["hands"], "recess check looked at {checked:?}");

    let recess = |verb: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_recess"))
            .arg(verb)
            .arg(dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "recess {verb}:\n{text}");
        assert!(
            !text.contains("types"),
            "recess {verb} looked at types/:\n{text}"
        );
        text
    };
    let check = recess("check");
    assert_eq!(check.trim(), "ok  hands", "recess check:\n{check}");
    let test = recess("test");
    assert!(test.contains("1 passed, 0 failed"), "recess test:\n{test}");
}
