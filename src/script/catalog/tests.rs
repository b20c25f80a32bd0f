//! The catalog's own tests: file and folder games, errors, spreadsheet games.

use super::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

const GOOD: &str =
    "return { title = 'T', init = function() return {} end, view = function() return {} end }";

#[test]
fn loads_file_and_folder_games() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.lua", GOOD);
    write(
        dir.path(),
        "b/init.lua",
        "local h = require('helpers') return { init = function() return {n = h.n} end, view = function() return {} end }",
    );
    write(dir.path(), "b/helpers.lua", "return { n = 3 }");
    write(dir.path(), ".hidden.lua", GOOD);
    let catalog = Catalog::new(dir.path(), Limits::default());
    let loaded = catalog.load_all();
    let names: Vec<_> = loaded
        .iter()
        .map(|(n, r)| (n.as_str(), r.is_ok()))
        .collect();
    assert_eq!(names, vec![("a", true), ("b", true)]);
    assert_eq!(catalog.get("a").unwrap().title, "T");
    assert_eq!(catalog.get("b").unwrap().title, "b");
}

#[test]
fn reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.lua", "return {\n init = function( end }");
    write(dir.path(), "r.lua", "local x = 1\nerror('at load')");
    write(dir.path(), "m.lua", "return { init = function() end }");
    let catalog = Catalog::new(dir.path(), Limits::default());
    catalog.load_all();
    let s = catalog.entry("s").unwrap().error.unwrap();
    assert!(s.starts_with("s.lua:2:"), "{s}");
    assert_eq!(
        catalog.entry("r").unwrap().error.unwrap(),
        "r.lua:2: at load"
    );
    let m = catalog.entry("m").unwrap().error.unwrap();
    assert!(m.contains("`view`"), "{m}");
}

#[test]
fn a_broken_save_keeps_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "g.lua", GOOD);
    let catalog = Catalog::new(dir.path(), Limits::default());
    catalog.load_all();
    let v1 = catalog.get("g").unwrap().version.clone();
    write(dir.path(), "g.lua", "return {");
    assert!(catalog.reload("g").unwrap().is_err());
    assert_eq!(catalog.get("g").unwrap().version, v1);
    assert!(catalog.entry("g").unwrap().error.is_some());
    std::fs::remove_file(dir.path().join("g.lua")).unwrap();
    assert!(catalog.reload("g").is_none());
    assert!(catalog.get("g").is_none());
}

#[test]
fn paths_map_to_games() {
    let dir = Path::new("/games");
    assert_eq!(
        game_of_path(dir, Path::new("/games/quiz.lua")).as_deref(),
        Some("quiz")
    );
    assert_eq!(
        game_of_path(dir, Path::new("/games/b/x.lua")).as_deref(),
        Some("b")
    );
    assert_eq!(game_of_path(dir, Path::new("/games/.quiz.lua.swp")), None);
    assert_eq!(game_of_path(dir, Path::new("/games/quiz.lua~")), None);
    assert_eq!(game_of_path(dir, Path::new("/games/b/.x.swp")), None);
}

/// Rules that read a spreadsheet: each row's first cell is a question.
const MINI: &str = r#"
return {
  title = "Mini",
  init = function(ctx, params) return { params = params } end,
  view = function(state) return { text = state.params.questions[1] } end,
  sheet = function(sheet)
    local questions = {}
    for i, row in ipairs(sheet.rows) do
      if row.cells[2] == nil or row.cells[2] == "" then return nil, row.row, "the question is empty" end
      questions[i] = row.cells[2]
    end
    return { questions = questions, title = "Capitals" }
  end,
}"#;

#[test]
fn a_spreadsheet_is_a_game_played_by_the_rules_its_name_gives() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "mini.lua", MINI);
    write(dir.path(), "cap.mini.csv", "1,Paris?\n2,Rome?\n");
    let catalog = Catalog::new(dir.path(), Limits::default());
    catalog.load_all();
    let rules = catalog.get("cap").unwrap();
    assert_eq!(rules.title, "Capitals");
    assert_eq!(rules.main.chunk_name, "mini.lua");
    let given = serde_json::json!({ "time_limit": 5, "title": "Mine" });
    assert_eq!(
        rules.params_with(given.clone()),
        serde_json::json!({ "questions": ["Paris?", "Rome?"], "title": "Mine", "time_limit": 5 })
    );
    // Merging twice changes nothing (a replay merges recorded params again).
    assert_eq!(
        rules.params_with(rules.params_with(given.clone())),
        rules.params_with(given)
    );
    assert_eq!(catalog.get("mini").unwrap().title, "Mini");

    // A bad row: reported by file and row; the good version keeps serving.
    let v1 = rules.version.clone();
    write(dir.path(), "cap.mini.csv", "1,Paris?\n\n3,\n");
    assert_eq!(
        catalog.reload("cap").unwrap().unwrap_err(),
        "cap.mini.csv:3: the question is empty"
    );
    assert_eq!(catalog.get("cap").unwrap().version, v1);

    // Saving the rules reloads the spreadsheets they play.
    write(dir.path(), "cap.mini.csv", "1,Paris?\n");
    write(
        dir.path(),
        "mini.lua",
        &MINI.replace("\"Capitals\"", "\"Cities\""),
    );
    let reloaded = catalog.reload_paths([dir.path().join("mini.lua").as_path()]);
    assert_eq!(reloaded, ["cap", "mini"]);
    assert_eq!(catalog.get("cap").unwrap().title, "Cities");
}

#[test]
fn a_spreadsheet_without_rules_to_play_it_says_why() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.nothing.csv", "x\n");
    write(dir.path(), "plain.lua", GOOD);
    write(dir.path(), "b.plain.csv", "x\n");
    write(dir.path(), "mini.lua", MINI);
    write(dir.path(), "plain.mini.csv", "1,q\n");
    let catalog = Catalog::new(dir.path(), Limits::default());
    let errors: BTreeMap<String, String> = catalog
        .load_all()
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| (name, e)))
        .collect();
    assert_eq!(
        errors["a"],
        "a.nothing.csv: there is no game 'nothing' in this folder to play it (the file's name says nothing.lua plays it)"
    );
    assert_eq!(
        errors["b"],
        "b.plain.csv: the game 'plain' cannot read spreadsheets (its game table has no `sheet` function)"
    );
    assert_eq!(
        errors["plain"],
        "plain.mini.csv: plain.lua makes a game called 'plain' too; rename one of them"
    );
}

#[test]
fn settings_are_served_with_the_game_and_a_wrong_one_is_a_load_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let with = |settings: &str| {
        format!(
            "return {{\n title = 'T',\n settings = {settings},\n init = function() return {{}} end,\n view = function() return {{}} end,\n sheet = function() return {{}} end,\n}}"
        )
    };
    write(
        dir.path(),
        "good.lua",
        &with("{ { key = 'shuffle', label = 'Shuffle', type = 'checkbox', default = false } }"),
    );
    write(
        dir.path(),
        "bad.lua",
        &with("{ { key = 'rounds', label = 'Rounds', type = 'number', min = 'five' } }"),
    );
    // A sheet played by `good` offers good's settings.
    write(dir.path(), "g.good.csv", "a\n1\n");
    let catalog = Catalog::new(dir.path(), Limits::default());
    catalog.load_all();
    let list = catalog.list();
    let served = |name: &str| {
        let info = list.iter().find(|g| g.name == name).unwrap();
        serde_json::to_value(info).unwrap()["settings"].clone()
    };
    assert_eq!(
        served("good"),
        serde_json::json!([{"key": "shuffle", "label": "Shuffle", "type": "checkbox", "default": false}])
    );
    assert_eq!(served("good"), served("g"));
    assert_eq!(
        served("bad"),
        Json::Null,
        "no settings key without settings"
    );
    assert_eq!(
        catalog.entry("bad").unwrap().error.unwrap(),
        "bad.lua:3: settings[1] (rounds): `min` must be a number, got \"five\""
    );
}
