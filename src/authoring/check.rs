//! `recess check`: is a game ready for a classroom?
//!
//! Each game is loaded as the server loads it, then started with default
//! params (`{}`) in a headless session (the real session actor): `init`
//! runs, `join` and `view` run for the host, one player joins and their
//! view is built. What goes wrong is an error, with the same text the
//! server logs and shows the host. What looks wrong is a warning: view keys
//! and fields the screen vocabulary does not know, and globals that
//! handlers assign (a missing `local`).
//!
//! Lines are printed as `games/quiz.lua:42: message` (warnings as
//! `games/quiz.lua:42: warning: message`), the file named as the user
//! would type it from where they ran the command, so an editor can jump to
//! it; a good game gets `ok  NAME`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::headless::{Failure, Harness};
use crate::protocol::{NameMode, Role};
use crate::script::Limits;
use crate::script::catalog::{self, Catalog, Rules, key_line};
use crate::script::sheet;
use crate::script::vocabulary::{
    BANNER_FIELDS, BAR_FIELDS, BUTTON_FIELDS, INPUT_FIELDS, MESSAGE_FIELDS, ORDER_FIELDS,
    ORDER_ITEM_FIELDS, PLAYER_FIELDS, RANK_FIELDS, SELECT_FIELDS, SLIDER_FIELDS, STYLES,
    TIMER_FIELDS, VIEW_KEYS, WORD_FIELDS, nearest,
};

/// The name the player who joins during a check gets.
const PLAYER_NAME: &str = "Ana";

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The game cannot run as it is: `recess check` fails.
    Error,
    /// The game runs, but something looks like a mistake.
    Warning,
}

/// One problem with a game.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Error or warning.
    pub level: Level,
    /// As the server says it: `quiz.lua:42: message`, the file relative to
    /// the games folder.
    pub message: String,
}

/// What checking one game found.
#[derive(Debug, Clone)]
pub struct GameCheck {
    /// The game's name.
    pub name: String,
    /// Its main file, relative to the games folder: `quiz.lua`, `space/init.lua`.
    pub main: String,
    /// What is wrong, in the order it was found.
    pub problems: Vec<Problem>,
}

impl GameCheck {
    /// Whether the game has an error (not only warnings).
    pub fn failed(&self) -> bool {
        self.problems.iter().any(|p| p.level == Level::Error)
    }

    /// The problem as a line to print: `DIR/quiz.lua:42: message`, where
    /// `dir` is the games folder as the user named it.
    pub fn line(&self, dir: &Path, problem: &Problem) -> String {
        let tag = match problem.level {
            Level::Error => "",
            Level::Warning => "warning: ",
        };
        let message = &problem.message;
        let ours = |file: &str| {
            (file.ends_with(".lua")
                && (file == self.main || file.starts_with(&format!("{}/", self.name))))
                || sheet::parse_name(file).is_some_and(|s| s.game == self.name)
        };
        if let Some((file, rest)) = message.split_once(':')
            && ours(file)
        {
            let path = dir.join(file);
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0
                && let Some(text) = rest[digits..].strip_prefix(": ")
            {
                return format!("{}:{}: {tag}{text}", path.display(), &rest[..digits]);
            }
            return format!("{}: {tag}{}", path.display(), rest.trim_start());
        }
        format!("{}: {tag}{message}", dir.join(&self.main).display())
    }
}

/// What a whole `recess check` found.
#[derive(Debug)]
pub struct Report {
    /// The games folder, as the user named it.
    pub dir: PathBuf,
    /// Each game checked, in name order.
    pub games: Vec<GameCheck>,
}

impl Report {
    /// Whether any game has an error.
    pub fn failed(&self) -> bool {
        self.games.iter().any(GameCheck::failed)
    }
}

/// Checks what `path` names: a games folder, a game file or a game folder.
pub fn check(path: &Path, limits: Limits) -> Result<Report, String> {
    let (dir, names) = catalog::check_target(path);
    let catalog = Catalog::watching_globals(&dir, limits);
    let harness = Harness::new(catalog.clone(), limits, 1)?;
    let games = names
        .into_iter()
        .map(|name| check_game(&catalog, &harness, name))
        .collect();
    Ok(Report { dir, games })
}

/// Checks `path` and prints a line per problem and `ok  NAME` per game
/// without errors.
pub fn run(path: &Path, limits: Limits, out: &mut dyn Write) -> std::io::Result<Report> {
    let report = check(path, limits).map_err(std::io::Error::other)?;
    for game in &report.games {
        for problem in &game.problems {
            writeln!(out, "{}", game.line(&report.dir, problem))?;
        }
        if !game.failed() {
            writeln!(out, "ok  {}", game.name)?;
        }
    }
    Ok(report)
}

fn check_game(catalog: &Catalog, harness: &Arc<Harness>, name: String) -> GameCheck {
    let mut game = GameCheck {
        main: format!("{name}.lua"),
        name,
        problems: Vec::new(),
    };
    let error = |game: &mut GameCheck, message: String| {
        game.problems.push(Problem {
            level: Level::Error,
            message,
        })
    };
    let rules = match catalog.reload(&game.name) {
        None => {
            let name = &game.name;
            let message = format!("no {name}.lua or {name}/init.lua here");
            error(&mut game, message);
            return game;
        }
        Some(Err(message)) => {
            if message.starts_with(&format!("{}/", game.name)) {
                game.main = format!("{}/init.lua", game.name);
            }
            error(&mut game, message);
            return game;
        }
        Some(Ok(rules)) => rules,
    };
    game.main = rules.main.chunk_name.clone();
    let mut views = Vec::new();
    match harness.start(
        &game.name,
        Json::Object(Default::default()),
        NameMode::Typed,
    ) {
        Err(failure) => {
            let message = match failure {
                Failure::Script(m) => m,
                Failure::Refused(reason) => {
                    format!("{}: join refused the host: {reason}", game.main)
                }
            };
            error(&mut game, message);
        }
        Ok(session) => {
            if let Some(host) = session.seat(session.host()) {
                views.push(host.view);
            }
            match session.join(PLAYER_NAME, Role::Player) {
                Ok(player) => views.extend(session.seat(&player).map(|s| s.view)),
                Err(Failure::Script(m)) => error(&mut game, m),
                Err(Failure::Refused(reason)) => game.problems.push(Problem {
                    level: Level::Warning,
                    message: format!(
                        "{}: join refused the first player with default params: {reason}",
                        game.main
                    ),
                }),
            }
        }
    }
    let mut warnings = Vec::new();
    for view in &views {
        check_view(view, &rules, &mut warnings);
    }
    if let Some(watch) = &rules.globals {
        for global in watch.assigned() {
            let at = if global.at.is_empty() {
                format!("{}: ", game.main)
            } else {
                global.at
            };
            warnings.push(format!(
                "{at}assigns the global '{}' (a missing 'local'?)",
                global.name
            ));
        }
    }
    for message in warnings {
        let problem = Problem {
            level: Level::Warning,
            message,
        };
        if !game.problems.contains(&problem) {
            game.problems.push(problem);
        }
    }
    game
}

/// Warns about what a view holds that the screen vocabulary does not know
/// (docs/lua-api.md §11). A folder game with its own `client.html` may
/// carry any key for it, so only the standard parts' fields are looked at.
fn check_view(view: &Json, rules: &Rules, warnings: &mut Vec<String>) {
    let Json::Object(view) = view else { return };
    for (key, value) in view {
        if !VIEW_KEYS.contains(&key.as_str()) {
            // Other keys are allowed for custom clients (docs §11, `phase`):
            // only one a letter or two from a known key is taken for a typo.
            if !rules.has_client
                && let Some(near) = nearest(key, VIEW_KEYS)
            {
                warn(
                    rules,
                    warnings,
                    find_key(rules, key),
                    format!("unknown view key '{key}' (did you mean '{near}'?)"),
                );
            }
            continue;
        }
        let (fields, part, list): (&[&str], String, bool) = match key.as_str() {
            "choices" | "buttons" => (BUTTON_FIELDS, format!("a button of '{key}'"), true),
            "messages" => (MESSAGE_FIELDS, format!("a message of '{key}'"), true),
            "podium" | "leaderboard" => (RANK_FIELDS, format!("an entry of '{key}'"), true),
            "players" => (PLAYER_FIELDS, format!("a player of '{key}'"), true),
            "bars" => (BAR_FIELDS, format!("a bar of '{key}'"), true),
            "cloud" => (WORD_FIELDS, format!("a word of '{key}'"), true),
            "input" => (INPUT_FIELDS, format!("'{key}'"), false),
            "banner" => (BANNER_FIELDS, format!("'{key}'"), false),
            "timer" => (TIMER_FIELDS, format!("'{key}'"), false),
            "select" => (SELECT_FIELDS, format!("'{key}'"), false),
            "slider" => (SLIDER_FIELDS, format!("'{key}'"), false),
            "order" => (ORDER_FIELDS, format!("'{key}'"), false),
            _ => continue,
        };
        check_parts(value, list, fields, &part, rules, warnings);
        // The rows of `order` are tables of their own.
        if key == "order"
            && let Some(items) = value.get("items")
        {
            let part = format!("an item of '{key}'");
            check_parts(items, true, ORDER_ITEM_FIELDS, &part, rules, warnings);
        }
    }
}

/// Warns about the fields of one part of a view (`list`: a list of such
/// tables) that are not in `fields`, and about unknown styles.
fn check_parts(
    value: &Json,
    list: bool,
    fields: &[&str],
    part: &str,
    rules: &Rules,
    warnings: &mut Vec<String>,
) {
    let parts: Vec<&Json> = match (list, value) {
        (true, Json::Array(items)) => items.iter().collect(),
        (false, part @ Json::Object(_)) => vec![part],
        _ => return,
    };
    for part_value in parts {
        let Json::Object(map) = part_value else {
            continue;
        };
        for (field, v) in map {
            if !fields.contains(&field.as_str()) {
                if !rules.has_client {
                    warn(
                        rules,
                        warnings,
                        find_key(rules, field),
                        format!("unknown field '{field}' in {part}{}", hint(field, fields)),
                    );
                }
            } else if field == "style"
                && let Json::String(style) = v
                && !STYLES.contains(&style.as_str())
            {
                let hint = match nearest(style, STYLES) {
                    Some(near) => format!(" (did you mean '{near}'?)"),
                    None => format!(" (one of {})", STYLES.join(", ")),
                };
                warn(
                    rules,
                    warnings,
                    find_text(rules, style),
                    format!("unknown style '{style}' in {part}{hint}"),
                );
            }
        }
    }
}

/// Adds a warning, at the line it was `found` at (or the main file).
fn warn(rules: &Rules, warnings: &mut Vec<String>, found: Option<(String, usize)>, text: String) {
    let at = match found {
        Some((file, line)) => format!("{file}:{line}: "),
        None => format!("{}: ", rules.main.chunk_name),
    };
    warnings.push(format!("{at}{text}"));
}

/// ` (did you mean 'choices'?)`, or why the page ignores the name.
fn hint(word: &str, known: &[&str]) -> String {
    match nearest(word, known) {
        Some(near) => format!(" (did you mean '{near}'?)"),
        None => " (the page does not draw it)".to_owned(),
    }
}

/// The game's sources, its main file first.
fn sources(rules: &Rules) -> Vec<&catalog::Source> {
    let mut modules: Vec<&catalog::Source> = rules.modules.values().collect();
    modules.sort_by(|a, b| a.chunk_name.cmp(&b.chunk_name));
    std::iter::once(&rules.main).chain(modules).collect()
}

/// Where a key is set in the game's sources: `(file, line)`.
fn find_key(rules: &Rules, key: &str) -> Option<(String, usize)> {
    sources(rules).into_iter().find_map(|source| {
        key_line(&source.text, key, None).map(|line| (source.chunk_name.clone(), line))
    })
}

/// Where a quoted string appears in the game's sources: `(file, line)`.
fn find_text(rules: &Rules, text: &str) -> Option<(String, usize)> {
    let quoted = [format!("\"{text}\""), format!("'{text}'")];
    sources(rules).into_iter().find_map(|source| {
        source
            .text
            .lines()
            .position(|line| quoted.iter().any(|q| line.contains(q.as_str())))
            .map(|i| (source.chunk_name.clone(), i + 1))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn game(problems: &[&str]) -> GameCheck {
        GameCheck {
            name: "quiz".into(),
            main: "quiz.lua".into(),
            problems: problems
                .iter()
                .map(|m| Problem {
                    level: Level::Error,
                    message: (*m).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn lines_name_the_file_as_the_user_typed_the_folder() {
        let g = game(&[
            "quiz.lua:42: boom",
            "quiz.lua: no view",
            "quiz/helpers.lua:3: near 'x'",
            "no quiz.lua here",
        ]);
        let lines: Vec<String> = g
            .problems
            .iter()
            .map(|p| g.line(Path::new("games"), p))
            .collect();
        assert_eq!(
            lines,
            [
                "games/quiz.lua:42: boom",
                "games/quiz.lua: no view",
                "games/quiz/helpers.lua:3: near 'x'",
                "games/quiz.lua: no quiz.lua here",
            ]
        );
        let warning = Problem {
            level: Level::Warning,
            message: "quiz.lua:7: unknown view key 'x'".into(),
        };
        assert_eq!(
            g.line(Path::new(""), &warning),
            "quiz.lua:7: warning: unknown view key 'x'"
        );
    }
}
