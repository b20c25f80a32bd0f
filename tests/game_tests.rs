//! `recess test`: game tests in Lua, run from the command line. What a
//! game author reads is exactly what is checked here: the `ok` and `FAIL`
//! lines, the summary and the exit status.

use std::path::Path;
use std::process::Output;

use common::stdout;

mod common;

/// A small game with a timer, for the fixtures below.
const COUNTER: &str = r#"return {
  title = "Counter",
  init = function(ctx, params) return { n = 0, rang = false } end,
  action = function(state, ctx, player, name, data)
    if name == "add" then
      state.n = state.n + 1
    elseif name == "arm" then
      ctx.after(5000, "ring")
    elseif name == "break" then
      local broken = nil
      return broken.field
    else
      return false, "unknown action '" .. tostring(name) .. "'"
    end
  end,
  timer = function(state, ctx, name)
    state.rang = true
    ctx.broadcast("rang", { at = ctx.now() })
  end,
  view = function(state) return { title = "n = " .. state.n, status = state.rang and "rang" or nil } end,
}
"#;

const PASSING: &str = r#"test("adds one", function()
  local s = session("counter")
  local ana = s:join("Ana")
  expect(ana.role).to_be("player")
  expect(s:act(ana, "add")).to_be(true)
  expect(s:view(ana).title).to_be("n = 1")
end)

test("refuses what it does not know", function()
  local s = session("counter")
  local ok, why = s:act(s.host, "jump")
  expect(ok).to_be(false)
  expect(why).to_be("unknown action 'jump'")
end)

test("rings after five seconds of virtual time", function()
  local s = session("counter")
  local start = s:now()
  s:act(s.host, "arm")
  s:advance(4999)
  expect(s:view(s.host).status).to_be_nil()
  s:advance(1)
  expect(s:view(s.host).status).to_be("rang")
  expect(s:events(s.host, "rang")[1].data).to_equal({ at = start + 5000 })
end)
"#;

/// A folder with `games/` holding `files` (path, content).
fn games(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join("games").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// `recess test ARGS`, run in `dir`.
fn recess_test(dir: &Path, args: &[&str]) -> Output {
    common::recess_in(dir, &[&["test"], args].concat())
}

#[test]
fn a_passing_file_prints_ok_per_test_and_the_summary_and_exits_0() {
    let dir = games(&[("counter.lua", COUNTER), ("counter_test.lua", PASSING)]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "ok   games/counter_test.lua: adds one\n\
         ok   games/counter_test.lua: refuses what it does not know\n\
         ok   games/counter_test.lua: rings after five seconds of virtual time\n\
         3 passed, 0 failed\n"
    );
    // One file named on its own, the default folder, and a file named from
    // inside the games folder find the same game.
    let one = recess_test(dir.path(), &["games/counter_test.lua"]);
    assert!(one.status.success(), "{}", stdout(&one));
    assert_eq!(stdout(&one), stdout(&out));
    let default = recess_test(dir.path(), &[]);
    assert_eq!(stdout(&default), stdout(&out));
    let inside = recess_test(&dir.path().join("games"), &["counter_test.lua"]);
    assert!(inside.status.success(), "{}", stdout(&inside));
    assert_eq!(
        stdout(&inside),
        "ok   counter_test.lua: adds one\n\
         ok   counter_test.lua: refuses what it does not know\n\
         ok   counter_test.lua: rings after five seconds of virtual time\n\
         3 passed, 0 failed\n"
    );
}

#[test]
fn a_failing_expect_names_file_line_and_test_and_exits_non_zero() {
    let failing = r#"test("adds one", function()
  local s = session("counter")
  expect(s:act(s.host, "add")).to_be(true)
end)

test("adds two", function()
  local s = session("counter")
  s:act(s.host, "add")
  expect(s:view(s.host).title).to_be("n = 2")
end)
"#;
    let dir = games(&[("counter.lua", COUNTER), ("counter_test.lua", failing)]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "ok   games/counter_test.lua: adds one\n\
         FAIL games/counter_test.lua:9: expected \"n = 2\", got \"n = 1\" (in \"adds two\")\n\
         1 passed, 1 failed\n"
    );
}

#[test]
fn a_runtime_error_in_a_test_or_in_the_game_is_a_failure_at_the_test_line() {
    let erring = r#"test("indexes nil", function()
  local x = nil
  return x.field
end)

test("the game breaks", function()
  local s = session("counter")
  s:act(s.host, "break")
end)

test("no such game", function()
  session("nosuch")
end)

test("still runs after the others", function()
  expect(1 + 1).to_be(2)
end)
"#;
    let dir = games(&[("counter.lua", COUNTER), ("counter_test.lua", erring)]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(
        stdout(&out),
        "FAIL games/counter_test.lua:3: attempt to index a nil value (local 'x') (in \"indexes nil\")\n\
         FAIL games/counter_test.lua:8: counter.lua:11: attempt to index a nil value (local 'broken') (in \"the game breaks\")\n\
         FAIL games/counter_test.lua:12: session(\"nosuch\"): there is no game called 'nosuch' in games (in \"no such game\")\n\
         ok   games/counter_test.lua: still runs after the others\n\
         1 passed, 3 failed\n"
    );
}

#[test]
fn a_test_file_with_a_syntax_error_fails_at_its_line_and_the_others_still_run() {
    let broken =
        "test(\"a\", function()\n  expect(1).to_be(1)\nend\n\ntest(\"b\", function() end)\n";
    let dir = games(&[
        ("counter.lua", COUNTER),
        ("a_test.lua", broken),
        ("counter_test.lua", PASSING),
    ]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "FAIL games/a_test.lua:5: ')' expected (to close '(' at line 1) near 'test'",
        "{text}"
    );
    assert_eq!(lines[1..].len(), 4, "{text}");
    assert_eq!(lines[4], "3 passed, 1 failed", "{text}");

    // An error at the top of a file, outside any test, is one failure too.
    std::fs::write(
        dir.path().join("games/a_test.lua"),
        "local x = nil\nprint(x.y)\n",
    )
    .unwrap();
    let out = recess_test(dir.path(), &["games/a_test.lua"]);
    assert!(!out.status.success());
    assert_eq!(
        stdout(&out),
        "FAIL games/a_test.lua:2: attempt to index a nil value (local 'x')\n0 passed, 1 failed\n"
    );
}

#[test]
fn a_game_folder_has_its_tests_in_tests() {
    let space = r#"return {
  title = "Space",
  init = function() return { fuel = require("fuel").START } end,
  view = function(state) return { title = "fuel " .. state.fuel } end,
}
"#;
    let space_test = r#"test("starts with full tanks", function()
  local s = session("space")
  expect(s:view(s.host).title).to_be("fuel 100")
end)
"#;
    let dir = games(&[
        ("space/init.lua", space),
        ("space/fuel.lua", "return { START = 100 }"),
        ("space/tests/space_test.lua", space_test),
        ("counter.lua", COUNTER),
        ("counter_test.lua", PASSING),
    ]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ok   games/space/tests/space_test.lua: starts with full tanks\n"),
        "{text}"
    );
    assert!(text.ends_with("\n4 passed, 0 failed\n"), "{text}");

    // The folder alone runs only its tests; so does its test file, named
    // from anywhere.
    let expected =
        "ok   games/space/tests/space_test.lua: starts with full tanks\n1 passed, 0 failed\n";
    let folder = recess_test(dir.path(), &["games/space"]);
    assert_eq!(stdout(&folder), expected);
    let file = recess_test(dir.path(), &["games/space/tests/space_test.lua"]);
    assert_eq!(stdout(&file), expected);
    let inside = recess_test(&dir.path().join("games/space"), &["tests/space_test.lua"]);
    assert_eq!(
        stdout(&inside),
        "ok   tests/space_test.lua: starts with full tanks\n1 passed, 0 failed\n"
    );
    assert!(inside.status.success());

    // The tests are not a module of the game, nor a game.
    let check = common::recess_in(dir.path(), &["check", "games"]);
    assert_eq!(stdout(&check), "ok  counter\nok  space\n");
}

#[test]
fn no_test_files_is_a_failure() {
    let dir = games(&[("counter.lua", COUNTER)]);
    let out = recess_test(dir.path(), &["games"]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "games: no *_test.lua files found\n");
}

#[test]
fn the_shipped_games_pass_their_tests() {
    let games = common::shipped_games();
    let out = recess_test(games.parent().unwrap(), &["games"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for file in [
        "buzzer_test.lua",
        "chat_test.lua",
        "poll_test.lua",
        "quiz_test.lua",
    ] {
        assert!(text.contains(&format!("ok   games/{file}: ")), "{text}");
    }
    assert!(!text.contains("FAIL"), "{text}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    let passed: usize = summary
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 40, "{summary}");
}
