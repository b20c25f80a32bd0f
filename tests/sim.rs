//! `recess sim`: bots play a game headless; a seed is a run, and a script
//! error stops it with what reproduces it.

use std::path::Path;
use std::process::Output;

use common::stdout;

mod common;

fn sim(games: &Path, args: &[&str]) -> Output {
    let games = games.to_str().expect("a UTF-8 path");
    common::recess_in(Path::new("."), &[&["--games", games, "sim"], args].concat())
}

#[test]
fn one_seed_gives_one_transcript_and_a_whole_quiz_ends_with_results() {
    let games = common::shipped_games();
    let args = ["quiz", "--players", "5", "--seed", "7", "--until-end"];
    let first = sim(&games, &args);
    let second = sim(&games, &args);
    let text = stdout(&first);
    assert!(first.status.success(), "{text}");
    assert_eq!(text, stdout(&second), "the same seed played differently");
    assert!(
        text.starts_with("00:00.000  Host starts \"quiz\" (seed 7)\n"),
        "{text}"
    );
    assert!(text.contains("Host presses \"Start\" (start)"), "{text}");
    // A results table: the header and one row per bot.
    let results: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "results:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(results.len(), 6, "{text}");
    // (The quiz's report columns for each question follow.)
    assert!(
        results[0].starts_with("  rank  name  score  correct  q1 answer"),
        "{text}"
    );
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("5 players, ") && last.ends_with(" refused)"),
        "{last}"
    );

    let other = sim(
        &games,
        &["quiz", "--players", "5", "--seed", "8", "--until-end"],
    );
    assert_ne!(stdout(&other), text, "another seed played the same");
}

/// A counter whose third press fails on line 6.
const BUGGY: &str = r#"return {
  init = function(ctx) return { n = 0 } end,
  action = function(state, ctx, player, name)
    state.n = state.n + 1
    local broken = nil
    if state.n == LIMIT then return broken.field end
  end,
  view = function(state) return { title = "n = " .. state.n, buttons = { { label = "Add", action = "add" } } } end,
}
"#;

#[test]
fn a_script_error_stops_the_run_with_its_place_and_the_inputs_that_replay_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("counter.lua"), BUGGY.replace("LIMIT", "3")).unwrap();
    let saved = dir.path().join("inputs.jsonl");
    let saved_arg = saved.to_str().unwrap();
    let out = sim(
        dir.path(),
        &[
            "counter",
            "--players",
            "2",
            "--seed",
            "3",
            "--save",
            saved_arg,
        ],
    );
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    let error = format!(
        "script error: {}/counter.lua:6: attempt to index a nil value (local 'broken')",
        dir.path().display()
    );
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with(&error))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        lines[at + 1],
        format!("reproduce with: recess sim counter --seed 3 --actions {saved_arg}"),
        "{text}"
    );
    assert_eq!(text.matches(" presses \"Add\" (add)").count(), 3, "{text}");
    let inputs = std::fs::read_to_string(&saved).unwrap();
    assert!(
        inputs.starts_with("{\"join\":\"Ana\"}\n{\"join\":\"Ben\"}\n{\"wait\":"),
        "{inputs}"
    );
    assert_eq!(inputs.matches("\"action\":\"add\"").count(), 3, "{inputs}");

    // The saved inputs replay the error exactly, under another seed too.
    let again = sim(
        dir.path(),
        &["counter", "--actions", saved_arg, "--save", saved_arg],
    );
    assert!(!again.status.success());
    assert!(
        stdout(&again).lines().any(|l| l.ends_with(&error)),
        "{}",
        stdout(&again)
    );

    // With the game fixed, the same inputs play through.
    std::fs::write(
        dir.path().join("counter.lua"),
        BUGGY.replace("LIMIT", "100"),
    )
    .unwrap();
    let fixed = sim(dir.path(), &["counter", "--actions", saved_arg]);
    let text = stdout(&fixed);
    assert!(fixed.status.success(), "{text}");
    assert!(text.contains("title \"n = 3\""), "{text}");
    assert!(text.contains("the game has not ended"), "{text}");
}

#[test]
fn timers_fire_at_their_time_in_the_transcript() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clock.lua"),
        r#"return {
  init = function(ctx) ctx.after(5000, "ring") return { rang = false } end,
  timer = function(state, ctx) state.rang = true ctx.finish({ columns = { "rang" }, rows = { { rang = "yes" } } }) end,
  view = function(state) return { title = state.rang and "rang" or "waiting" } end,
}
"#,
    )
    .unwrap();
    let out = sim(dir.path(), &["clock", "--players", "1", "--until-end"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("\n00:05.000    Host and Ana: the game ended; title \"rang\"\n"),
        "{text}"
    );
    assert!(text.contains("results:\n  rang\n  yes\n"), "{text}");
}

#[test]
fn a_game_nobody_can_move_is_stuck_and_bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("still.lua"),
        "return { init = function() return {} end, view = function() return { title = 'nothing to do' } end }",
    )
    .unwrap();
    let out = sim(dir.path(), &["still", "--until-end"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("  stuck: nobody has anything to press and no timer is set\n"),
        "{}",
        stdout(&out)
    );
    // Without --until-end a run that cannot go on is not a failure.
    assert!(sim(dir.path(), &["still"]).status.success());

    let inputs = dir.path().join("bad.jsonl");
    std::fs::write(&inputs, "{\"wait\": 100}\n{\"jump\": true}\n").unwrap();
    let out = sim(
        dir.path(),
        &["still", "--actions", inputs.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("recess sim: {}:2: not an input", inputs.display())),
        "{stderr}"
    );
    let out = sim(dir.path(), &["nosuch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no game called 'nosuch'"));
}

#[test]
fn bots_type_into_inputs() {
    let out = sim(
        &common::shipped_games(),
        &["chat", "--players", "2", "--steps", "6"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" sends (send {\"text\":"), "{text}");
    assert!(text.contains("messages ("), "{text}");
}

/// A game with one question of each kind a bot must make data for: a
/// `select` of choices, a `slider` and an `order`. It echoes what came.
const PARTS: &str = r#"return {
  init = function() return { got = {} } end,
  action = function(state, ctx, player, name, data)
    if name == "choice" then return false, "the choices are toggles here" end
    local picked = data.choices or data.order
    if picked then
      for i = 2, #picked do
        if data.choices and picked[i] <= picked[i - 1] then return false, "not ascending" end
      end
    end
    if data.value and (data.value < 10 or data.value > 20 or data.value % 5 ~= 0) then
      return false, "off the slider"
    end
    state.got[#state.got + 1] = name
  end,
  view = function(state)
    local parts = { title = #state.got .. " answers" }
    parts.choices = { { label = "A", action = "choice" }, { label = "B", action = "choice" }, { label = "C", action = "choice" } }
    parts.select = { action = "ticked", min = 2, max = 2 }
    parts.slider = { action = "slid", min = 10, max = 20, step = 5 }
    parts.order = { action = "ordered", items = { { label = "x" }, { label = "y" }, { label = "z" } } }
    return parts
  end,
}
"#;

#[test]
fn bots_tick_slide_and_order_within_what_the_view_allows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("parts.lua"), PARTS).unwrap();
    let out = sim(dir.path(), &["parts", "--players", "3", "--seed", "3"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains(": refused"),
        "bots sent what the view allows: {text}"
    );
    for sent in [
        "(ticked {\"choices\":[",
        "(slid {\"value\":",
        "(ordered {\"order\":[",
    ] {
        assert!(text.contains(sent), "{sent} in {text}");
    }
    assert!(
        !text.contains("(choice"),
        "toggles are not pressed one by one: {text}"
    );
}
