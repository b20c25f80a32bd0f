//! games/README.md, the tutorial, cannot rot: each step's files (the code
//! blocks marked `<!-- file: NAME, step N -->`) are written into a fresh
//! games folder in order, a later step's file replacing the earlier one,
//! and after each step the commands the tutorial gives must do what it says
//! they do: `recess check` passes, `recess test` passes where the step has
//! a test file, the outputs it shows are the real ones.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::stdout;

const TUTORIAL: &str = include_str!("../games/README.md");

/// A fenced block of the tutorial: its info string (`lua`, `sh`, empty),
/// its text and the file marker just before it, if any.
struct Block {
    info: String,
    text: String,
    file: Option<(String, u32)>,
}

fn blocks(doc: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = doc.lines();
    let mut marker = None;
    while let Some(line) = lines.next() {
        if let Some(rest) = line
            .strip_prefix("<!-- file: ")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            let (name, step) = rest
                .split_once(", step ")
                .unwrap_or_else(|| panic!("a file marker without a step: {line}"));
            marker = Some((name.to_owned(), step.parse().unwrap()));
            continue;
        }
        if let Some(info) = line.strip_prefix("```") {
            let mut text = String::new();
            for line in lines.by_ref() {
                if line == "```" {
                    break;
                }
                text.push_str(line);
                text.push('\n');
            }
            found.push(Block {
                info: info.to_owned(),
                text,
                file: marker.take(),
            });
        } else if !line.trim().is_empty() {
            // A marker belongs to the block directly after it.
            assert!(marker.is_none(), "a file marker not before a block: {line}");
        }
    }
    found
}

/// The output block that begins with `start`.
fn shown<'a>(blocks: &'a [Block], start: &str) -> &'a str {
    blocks
        .iter()
        .find(|b| b.info.is_empty() && b.text.starts_with(start))
        .map(|b| b.text.as_str())
        .unwrap_or_else(|| panic!("the tutorial shows no output starting {start:?}"))
}

/// `recess ARGS` in `dir`, as the tutorial runs it from the Recess folder.
fn recess(dir: &Path, args: &[&str]) -> Output {
    common::recess_in(dir, args)
}

#[test]
fn every_step_of_the_tutorial_checks_and_passes_its_tests() {
    let blocks = blocks(TUTORIAL);
    let mut steps: BTreeMap<u32, Vec<(&str, &str)>> = BTreeMap::new();
    for b in &blocks {
        if let Some((name, step)) = &b.file {
            assert_eq!(b.info, "lua", "{name} at step {step} is not a ```lua block");
            steps.entry(*step).or_default().push((name, &b.text));
        }
    }
    assert_eq!(
        steps.keys().copied().collect::<Vec<_>>(),
        [1, 2, 3],
        "the tutorial's steps"
    );

    let dir = tempfile::tempdir().unwrap();
    let games = dir.path().join("games");
    std::fs::create_dir(&games).unwrap();
    // The tutorial itself sits in the games folder, and is no game.
    std::fs::write(games.join("README.md"), TUTORIAL).unwrap();

    for (step, files) in &steps {
        for (name, text) in files {
            std::fs::write(games.join(name), text).unwrap();
        }
        let check = recess(dir.path(), &["check", "games/capitals.lua"]);
        assert!(check.status.success(), "step {step}: {}", stdout(&check));
        assert_eq!(stdout(&check), "ok  capitals\n", "step {step}");
        let all = recess(dir.path(), &["check", "games"]);
        assert_eq!(stdout(&all), "ok  capitals\n", "step {step}");

        if games.join("capitals_test.lua").is_file() {
            let test = recess(dir.path(), &["test", "games/capitals_test.lua"]);
            let text = stdout(&test);
            assert!(test.status.success(), "step {step}: {text}");
            assert!(text.ends_with(" passed, 0 failed\n"), "step {step}: {text}");
            let summary = text.lines().last().unwrap_or_default();
            assert!(
                TUTORIAL.contains(&format!("`{summary}`"))
                    || shown(&blocks, "ok   games/capitals_test.lua") == text,
                "step {step}: the tutorial does not show this outcome:\n{text}"
            );
            // `recess test` on the whole folder finds the same tests.
            assert_eq!(stdout(&recess(dir.path(), &["test"])), text, "step {step}");
        }

        match step {
            1 => {
                // The comma the tutorial has you delete.
                let good = files[0].1;
                let broken = good.replacen("\"Capital cities\",", "\"Capital cities\"", 1);
                std::fs::write(games.join("capitals.lua"), broken).unwrap();
                let check = recess(dir.path(), &["check", "games/capitals.lua"]);
                assert!(!check.status.success());
                assert_eq!(
                    stdout(&check),
                    shown(&blocks, "games/capitals.lua:"),
                    "the syntax error the tutorial shows"
                );
                std::fs::write(games.join("capitals.lua"), good).unwrap();
            }
            2 => {
                assert_eq!(
                    stdout(&recess(dir.path(), &["test", "games/capitals_test.lua"])),
                    shown(&blocks, "ok   games/capitals_test.lua"),
                    "the test run the tutorial shows"
                );
                // The mistake the tutorial has you make on purpose.
                let (_, good) = files.iter().find(|(n, _)| *n == "capitals.lua").unwrap();
                let wrong = "state.scores[id] + 10";
                assert!(TUTORIAL.contains(&format!("`{wrong}`")));
                let broken = good.replacen("state.scores[id] + POINTS", wrong, 1);
                assert_ne!(&broken, good);
                std::fs::write(games.join("capitals.lua"), broken).unwrap();
                let test = recess(dir.path(), &["test", "games/capitals_test.lua"]);
                assert!(!test.status.success());
                let text = stdout(&test);
                let first_fail = text
                    .lines()
                    .find(|l| l.starts_with("FAIL "))
                    .unwrap_or_else(|| panic!("{text}"));
                assert_eq!(
                    format!("{first_fail}\n"),
                    shown(&blocks, "FAIL games/capitals_test.lua:"),
                    "the failure the tutorial shows"
                );
                std::fs::write(games.join("capitals.lua"), good).unwrap();
            }
            _ => {}
        }
    }

    // Step 4: the bots play it to the end, as the transcript shows.
    let sim = recess(dir.path(), &["sim", "capitals", "--until-end"]);
    let text = stdout(&sim);
    assert!(sim.status.success(), "{text}");
    for line in shown(&blocks, "00:00.000  Host starts \"capitals\"").lines() {
        if line != "..." {
            assert!(
                text.lines().any(|l| l == line),
                "the tutorial's transcript has {line:?}; the real one:\n{text}"
            );
        }
    }
}
