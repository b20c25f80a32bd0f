//! `recess sim`: a session played by bots, headless, with a transcript.
//!
//! Bots join, then at each step the clock moves a random 0.2–3 s (timers
//! fire at their own times on the way) and one member, chosen at random
//! among those whose view offers something to press, presses one of its
//! `choices` or `buttons` or sends its `input`. Everything random comes
//! from the seed, so a seed is a run: the same seed and game give the same
//! transcript. The inputs can be saved and played back (`--actions`), which
//! keeps a run reproducible after the game file changes.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use super::{short, truncate};
use crate::headless::{Failure, Harness, HeadlessSession, Received, Rng, START_MS};
use crate::protocol::{NameMode, Role};
use crate::script::{Catalog, Limits};
use crate::session::MemberId;

/// Bot names, in joining order; past the list, `Player 27`.
const NAMES: &[&str] = &[
    "Ana", "Ben", "Cara", "Dev", "Emil", "Fatima", "Gus", "Hana", "Ivo", "Jun", "Kemal", "Lena",
    "Milo", "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sami", "Tess", "Uma", "Vik", "Wen", "Xena",
    "Yusuf", "Zoe",
];

/// What bots type into an `input`.
const WORDS: &[&str] = &[
    "hello",
    "42",
    "I think it's B",
    "Paris",
    "can we do this again?",
    "🙂",
    "no idea",
    "the mitochondria",
];

/// Shortest and longest wait before a step, in ms.
const WAIT_MS: (u64, u64) = (200, 3000);

/// Steps `--until-end` takes at most before it gives up.
pub const MAX_STEPS: usize = 10_000;

/// How a simulation runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The game's name in the games folder.
    pub game: String,
    /// The games folder.
    pub games: PathBuf,
    /// Bots that join (ignored with `actions`, whose joins say who).
    pub players: usize,
    /// Where every random choice comes from.
    pub seed: u64,
    /// The session's params.
    pub params: Json,
    /// Inputs to play instead of random ones (JSON lines, as saved).
    pub actions: Option<PathBuf>,
    /// Play until the game ends (at most [`MAX_STEPS`] steps).
    pub until_end: bool,
    /// Steps to play when not `until_end`.
    pub steps: usize,
    /// Where the inputs are saved when a script error stops the run (the
    /// default is a file in the temp folder).
    pub save: Option<PathBuf>,
}

/// One input of a run, as a line of an actions file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// `{"wait": 1500}`: the clock moves on.
    Wait {
        /// Milliseconds.
        wait: u64,
    },
    /// `{"join": "Ana"}`: someone joins.
    Join {
        /// Their nickname.
        join: String,
    },
    /// `{"leave": "Ana"}`: someone leaves.
    Leave {
        /// Their nickname.
        leave: String,
    },
    /// `{"player": "Ana", "action": "answer", "data": {"choice": 2}}`.
    Action {
        /// Who presses (a nickname, or `Host`).
        player: String,
        /// The action's name.
        action: String,
        /// Its data.
        #[serde(default)]
        data: Json,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The game finished (`ctx.finish`).
    Finished,
    /// The steps ran out before the game ended (not an error unless
    /// `--until-end` was asked for).
    OutOfSteps,
    /// Nothing to press and no timer pending: the game cannot go on.
    Stuck,
    /// A handler or a view raised this error.
    ScriptError(String),
}

impl Ending {
    /// Whether `recess sim` should exit with a failure.
    pub fn failed(&self, until_end: bool) -> bool {
        match self {
            Ending::Finished => false,
            Ending::OutOfSteps | Ending::Stuck => until_end,
            Ending::ScriptError(_) => true,
        }
    }
}

/// Plays a session as `options` say, writing the transcript to `out`.
/// Errors are the ones that stop a run before it starts (no such game, an
/// unreadable actions file) or a failed write.
pub fn run(options: &Options, limits: Limits, out: &mut dyn Write) -> Result<Ending, String> {
    let scripted = match &options.actions {
        Some(path) => Some(read_actions(path)?),
        None => None,
    };
    let catalog = Catalog::new(&options.games, limits);
    catalog.load_all();
    let harness = Harness::new(catalog, limits, options.seed)?;
    let w = |e: std::io::Error| format!("cannot write the transcript: {e}");
    let session = match harness.start(&options.game, options.params.clone(), NameMode::Typed) {
        Ok(s) => s,
        Err(Failure::Refused(reason)) => return Err(reason),
        Err(Failure::Script(message)) => {
            writeln!(out, "script error: {}", place(&options.games, &message)).map_err(w)?;
            return Ok(Ending::ScriptError(message));
        }
    };
    let mut sim = Sim {
        out,
        rng: Rng::new(options.seed),
        inputs: Vec::new(),
        members: vec![("Host".to_owned(), session.host().clone())],
        read: HashMap::new(),
        session,
        refused: 0,
        actions: 0,
    };
    writeln!(
        sim.out,
        "{}  Host starts \"{}\" (seed {})",
        sim.clock(),
        options.game,
        options.seed
    )
    .map_err(w)?;
    sim.news().map_err(w)?;
    let ending = match scripted {
        Some(inputs) => sim.play(inputs),
        None => sim.random(options),
    }
    .map_err(w)?;
    sim.report(&ending, options).map_err(w)?;
    Ok(ending)
}

/// Reads an actions file: one JSON input per line; blank lines and lines
/// starting with `#` are skipped.
fn read_actions(path: &Path) -> Result<Vec<Input>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                format!(
                    "{}:{}: not an input ({e}); expected {{\"wait\": ms}}, {{\"join\": name}}, {{\"leave\": name}} or {{\"player\": name, \"action\": name, \"data\": …}}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

struct Sim<'a> {
    out: &'a mut dyn Write,
    rng: Rng,
    /// What was played so far, for the actions file.
    inputs: Vec<Input>,
    /// Nicknames and member ids, in joining order.
    members: Vec<(String, MemberId)>,
    /// How many of each seat's messages the transcript has shown.
    read: HashMap<MemberId, usize>,
    session: Arc<HeadlessSession>,
    refused: usize,
    actions: usize,
}

/// Why a step stopped the run.
enum Stop {
    Ended(Ending),
    Write(std::io::Error),
}

impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Stop {
        Stop::Write(e)
    }
}

type Step = Result<(), Stop>;

impl Sim<'_> {
    fn session(&self) -> &Arc<HeadlessSession> {
        &self.session
    }

    fn clock(&self) -> String {
        super::elapsed(self.session.harness().now() - START_MS)
    }

    fn random(&mut self, options: &Options) -> std::io::Result<Ending> {
        let joins: Vec<Input> = (0..options.players)
            .map(|i| Input::Join {
                join: NAMES
                    .get(i)
                    .map_or_else(|| format!("Player {}", i + 1), |n| (*n).to_owned()),
            })
            .collect();
        for input in joins {
            if let Err(stop) = self.input(input) {
                return finish(stop);
            }
        }
        let steps = if options.until_end {
            MAX_STEPS
        } else {
            options.steps
        };
        for _ in 0..steps {
            if let Err(stop) = self.random_step() {
                return finish(stop);
            }
        }
        Ok(Ending::OutOfSteps)
    }

    fn play(&mut self, inputs: Vec<Input>) -> std::io::Result<Ending> {
        for input in inputs {
            if let Err(stop) = self.input(input) {
                return finish(stop);
            }
        }
        Ok(Ending::OutOfSteps)
    }

    /// One random step: a wait, then one press by someone who has
    /// something to press.
    fn random_step(&mut self) -> Step {
        let wait = WAIT_MS.0 + self.rng.below(WAIT_MS.1 - WAIT_MS.0 + 1);
        let mut offers = Vec::new();
        self.input(Input::Wait { wait })?;
        for (name, id) in &self.members {
            let Some(seat) = self.session().seat(id) else {
                continue;
            };
            if seat.present {
                offers.extend(offers_of(&seat.view).into_iter().map(|o| (name.clone(), o)));
            }
        }
        if offers.is_empty() {
            let pending = self
                .session()
                .summary()
                .and_then(|s| s.next_timer_ms)
                .is_some();
            if !pending {
                return Err(Stop::Ended(Ending::Stuck));
            }
            return Ok(());
        }
        let (player, offer) = offers.swap_remove(self.rng.below(offers.len() as u64) as usize);
        let data = self.data_for(offer.kind);
        self.input(Input::Action {
            player,
            action: offer.action,
            data,
        })
    }

    /// The data a bot sends with what it presses.
    fn data_for(&mut self, kind: OfferKind) -> Json {
        let rng = &mut self.rng;
        match kind {
            OfferKind::Press(data) => data,
            OfferKind::Type => json!({ "text": WORDS[rng.below(WORDS.len() as u64) as usize] }),
            OfferKind::Select { min, max, n } => {
                let count = min + rng.below(max - min + 1);
                let mut picked: Vec<u64> = (1..=n).collect();
                shuffle(rng, &mut picked);
                picked.truncate(count as usize);
                picked.sort_unstable();
                json!({ "choices": picked })
            }
            OfferKind::Slider { min, max, step } => {
                let steps = ((max - min) / step).floor() as u64;
                let value = min + step * rng.below(steps + 1) as f64;
                if value.fract() == 0.0 && value.abs() < 1e15 {
                    json!({ "value": value as i64 })
                } else {
                    json!({ "value": value })
                }
            }
            OfferKind::Order { n } => {
                let mut order: Vec<u64> = (1..=n).collect();
                shuffle(rng, &mut order);
                json!({ "order": order })
            }
        }
    }

    /// Plays one input and prints what it caused.
    fn input(&mut self, input: Input) -> Step {
        self.inputs.push(input.clone());
        let session = self.session().clone();
        match input {
            Input::Wait { wait } => return self.wait(wait),
            Input::Join { join } => {
                let result = session.join(&join, Role::Player);
                let line = format!("{}  {join} joins", self.clock());
                match result {
                    Ok(id) => {
                        writeln!(self.out, "{line}")?;
                        self.members.push((join, id));
                    }
                    Err(f) => self.failed(&line, f)?,
                }
            }
            Input::Leave { leave } => {
                let line = format!("{}  {leave} leaves", self.clock());
                match self.member(&leave) {
                    Some(id) => {
                        let result = session.leave(&id);
                        self.outcome(&line, result)?;
                    }
                    None => writeln!(self.out, "{line}: there is no {leave} here")?,
                }
            }
            Input::Action {
                player,
                action,
                data,
            } => {
                self.actions += 1;
                let label = self
                    .member(&player)
                    .and_then(|id| session.seat(&id))
                    .and_then(|seat| label_of(&seat.view, &action, &data));
                let what = match label {
                    Some(label) => format!("presses \"{label}\""),
                    None => "sends".to_owned(),
                };
                let line = format!(
                    "{}  {player} {what} ({action}{})",
                    self.clock(),
                    match &data {
                        Json::Null => String::new(),
                        d => format!(" {}", short(d, 80)),
                    }
                );
                match self.member(&player) {
                    Some(id) => {
                        let result = session.act(&id, &action, data);
                        self.outcome(&line, result)?;
                    }
                    None => writeln!(self.out, "{line}: there is no {player} here")?,
                }
            }
        }
        self.news()?;
        self.check_ended()
    }

    fn member(&self, name: &str) -> Option<MemberId> {
        self.members
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.clone())
    }

    fn outcome(&mut self, line: &str, result: Result<(), Failure>) -> Step {
        match result {
            Ok(()) => Ok(writeln!(self.out, "{line}")?),
            Err(f) => self.failed(line, f),
        }
    }

    fn failed(&mut self, line: &str, failure: Failure) -> Step {
        match failure {
            Failure::Refused(reason) => {
                self.refused += 1;
                Ok(writeln!(self.out, "{line}: refused: {reason}")?)
            }
            Failure::Script(message) => {
                writeln!(self.out, "{line}")?;
                Err(Stop::Ended(Ending::ScriptError(message)))
            }
        }
    }

    /// Moves the clock `ms` on, stopping at each timer on the way so the
    /// transcript shows what it changed at the time it fired.
    fn wait(&mut self, ms: u64) -> Step {
        let session = self.session().clone();
        let harness = session.harness().clone();
        let target = harness.now() + ms as i64;
        loop {
            let now = harness.now();
            let next = session
                .summary()
                .and_then(|s| s.next_timer_ms)
                .filter(|&t| t > now && t <= target)
                .unwrap_or(target);
            if let Err(f) = harness.advance((next - now).max(0) as u64) {
                self.news()?;
                return Err(Stop::Ended(Ending::ScriptError(f.message().to_owned())));
            }
            self.news()?;
            self.check_ended()?;
            if harness.now() >= target {
                return Ok(());
            }
        }
    }

    fn check_ended(&self) -> Step {
        match self.session().results() {
            Some(_) => Err(Stop::Ended(Ending::Finished)),
            None => Ok(()),
        }
    }

    /// Prints what each seat received since the last look, members who
    /// received the same on one line.
    fn news(&mut self) -> std::io::Result<()> {
        let session = self.session().clone();
        let now = session.harness().now();
        let mut groups: Vec<(Vec<String>, String)> = Vec::new();
        for (_, name, received) in session.news(&mut self.read) {
            let text = received
                .iter()
                .map(|r| describe(r, now))
                .collect::<Vec<_>>()
                .join("; ");
            match groups.iter_mut().find(|(_, t)| *t == text) {
                Some((names, _)) => names.push(name),
                None => groups.push((vec![name], text)),
            }
        }
        if groups.is_empty() {
            return Ok(());
        }
        let clock = self.clock();
        for (names, text) in groups {
            writeln!(self.out, "{clock}    {}: {text}", who(&names))?;
        }
        Ok(())
    }

    /// The end of the transcript: the results, or the error with what
    /// reproduces it.
    fn report(&mut self, ending: &Ending, options: &Options) -> std::io::Result<()> {
        let clock = self.clock();
        match ending {
            Ending::Finished => {
                let results = self.session.results();
                writeln!(self.out, "results:")?;
                for line in results_lines(results.as_ref()) {
                    writeln!(self.out, "  {line}")?;
                }
            }
            Ending::OutOfSteps => writeln!(
                self.out,
                "{clock}  stopped after {} inputs; the game has not ended",
                self.inputs.len()
            )?,
            Ending::Stuck => writeln!(
                self.out,
                "{clock}  stuck: nobody has anything to press and no timer is set"
            )?,
            Ending::ScriptError(message) => {
                writeln!(
                    self.out,
                    "{clock}  script error: {}",
                    place(&options.games, message)
                )?;
                let path = options.save.clone().unwrap_or_else(|| {
                    std::env::temp_dir().join(format!(
                        "recess-sim-{}-{}.jsonl",
                        options.game, options.seed
                    ))
                });
                let lines: Vec<String> = self
                    .inputs
                    .iter()
                    .filter_map(|i| serde_json::to_string(i).ok())
                    .collect();
                match std::fs::write(&path, lines.join("\n") + "\n") {
                    Ok(()) => writeln!(
                        self.out,
                        "reproduce with: recess sim {} --seed {} --actions {}",
                        options.game,
                        options.seed,
                        path.display()
                    )?,
                    Err(e) => writeln!(
                        self.out,
                        "reproduce with seed {} (the inputs could not be saved to {}: {e})",
                        options.seed,
                        path.display()
                    )?,
                }
            }
        }
        writeln!(
            self.out,
            "{} players, {} actions ({} refused)",
            self.members.len().saturating_sub(1),
            self.actions,
            self.refused
        )
    }
}

/// A script error's place with the games folder in front
/// (`games/quiz.lua:42: …`), as `recess check` prints it.
fn place(games: &Path, message: &str) -> String {
    if games.as_os_str().is_empty() {
        message.to_owned()
    } else {
        format!("{}/{message}", games.display())
    }
}

fn finish(stop: Stop) -> std::io::Result<Ending> {
    match stop {
        Stop::Ended(ending) => Ok(ending),
        Stop::Write(e) => Err(e),
    }
}

/// Something a view offers to press.
#[derive(Debug, Clone, PartialEq)]
struct Offer {
    action: String,
    /// What the action's data is made of.
    kind: OfferKind,
}

/// How a bot makes the data of what it presses.
#[derive(Debug, Clone, PartialEq)]
enum OfferKind {
    /// A button: its own data.
    Press(Json),
    /// An `input`: what the bot types (`{text}`).
    Type,
    /// A `select` of `choices`: between `min` and `max` of the `n` choices
    /// (`{choices}`, ascending).
    Select { min: u64, max: u64, n: u64 },
    /// A `slider`: a number on its steps (`{value}`).
    Slider { min: f64, max: f64, step: f64 },
    /// An `order` of `n` items: a shuffle of them (`{order}`).
    Order { n: u64 },
}

/// What a view offers: its pressable `choices` and `buttons` (with an
/// `action`, not `disabled`), its `input`, and a `select`, `slider` or
/// `order` with an `action`. Never `kick` or `rename`: bots do not remove
/// or rename each other.
fn offers_of(view: &Json) -> Vec<Offer> {
    let mut offers = Vec::new();
    let action_of = |key: &str| {
        view.get(key)
            .and_then(|t| t.get("action"))
            .and_then(Json::as_str)
            .map(str::to_owned)
    };
    let number = |key: &str, field: &str| {
        view.get(key)
            .and_then(|t| t.get(field))
            .and_then(Json::as_f64)
    };
    let select = action_of("select");
    for key in ["choices", "buttons"] {
        // Under a `select` the choices are toggles: the page sends them with
        // its Submit, never one by one.
        if key == "choices" && select.is_some() {
            continue;
        }
        for button in view.get(key).and_then(Json::as_array).into_iter().flatten() {
            let Some(action) = button.get("action").and_then(Json::as_str) else {
                continue;
            };
            if button.get("style").and_then(Json::as_str) == Some("disabled") {
                continue;
            }
            offers.push(Offer {
                action: action.to_owned(),
                kind: OfferKind::Press(button.get("data").cloned().unwrap_or(Json::Null)),
            });
        }
    }
    if let Some(action) = select {
        let n = view
            .get("choices")
            .and_then(Json::as_array)
            .map_or(0, Vec::len) as u64;
        let min = number("select", "min")
            .map_or(1, |m| m.max(1.0) as u64)
            .min(n);
        let max = number("select", "max")
            .map_or(n, |m| m as u64)
            .clamp(min, n);
        if n > 0 {
            offers.push(Offer {
                action,
                kind: OfferKind::Select { min, max, n },
            });
        }
    }
    if let Some(action) = action_of("slider")
        && let (Some(min), Some(max)) = (number("slider", "min"), number("slider", "max"))
        && min <= max
    {
        let step = number("slider", "step").filter(|s| *s > 0.0).unwrap_or(1.0);
        offers.push(Offer {
            action,
            kind: OfferKind::Slider { min, max, step },
        });
    }
    if let Some(action) = action_of("order") {
        let n = view
            .get("order")
            .and_then(|o| o.get("items"))
            .and_then(Json::as_array)
            .map_or(0, Vec::len) as u64;
        if n > 0 {
            offers.push(Offer {
                action,
                kind: OfferKind::Order { n },
            });
        }
    }
    if let Some(action) = action_of("input") {
        offers.push(Offer {
            action,
            kind: OfferKind::Type,
        });
    }
    offers
}

/// Shuffles `list` in place (Fisher–Yates) with the run's randomness.
fn shuffle(rng: &mut Rng, list: &mut [u64]) {
    for i in (1..list.len()).rev() {
        list.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// The label of the button in `view` that sends `action` with `data`.
fn label_of(view: &Json, action: &str, data: &Json) -> Option<String> {
    ["choices", "buttons"]
        .iter()
        .flat_map(|k| view.get(*k).and_then(Json::as_array).into_iter().flatten())
        .find(|b| {
            b.get("action").and_then(Json::as_str) == Some(action)
                && b.get("data").unwrap_or(&Json::Null) == data
        })
        .and_then(|b| text_of(b, "label"))
}

/// `Ana`, `Ana and Ben`, `Ana, Ben and Cara`, `Ana, Ben, Cara and 27 others`.
fn who(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [first @ .., last] if names.len() <= 4 => format!("{} and {last}", first.join(", ")),
        _ => format!("{} and {} others", names[..3].join(", "), names.len() - 3),
    }
}

/// One received message in a few words.
fn describe(received: &Received, now: i64) -> String {
    match received {
        Received::View { patch, .. } => match patch.as_object() {
            Some(keys) => keys
                .iter()
                .map(|(k, v)| view_change(k, v, now))
                .collect::<Vec<_>>()
                .join(", "),
            None => format!("view {}", short(patch, 80)),
        },
        Received::Event { name, data, .. } => match data {
            Json::Null => format!("event {name}"),
            d => format!("event {name} {}", short(d, 80)),
        },
        Received::Ended { .. } => "the game ended".to_owned(),
        Received::Error { code, message } => format!("{code}: {message}"),
    }
}

/// One changed view key: `choices [Paris, London*]`, `timer 20 s`,
/// `-banner` for a key that went away.
fn view_change(key: &str, value: &Json, now: i64) -> String {
    match (key, value) {
        (_, Json::Null) => format!("-{key}"),
        ("choices" | "buttons", Json::Array(buttons)) => {
            let labels: Vec<String> = buttons
                .iter()
                .map(|b| {
                    let label = text_of(b, "label").unwrap_or_else(|| "?".to_owned());
                    match b.get("style").and_then(Json::as_str) {
                        Some(style) => format!("{label} ({style})"),
                        None => label,
                    }
                })
                .collect();
            format!("{key} [{}]", truncate(&labels.join(" | "), 120))
        }
        ("players" | "leaderboard" | "podium", Json::Array(rows)) => {
            let rows: Vec<String> = rows.iter().map(row).collect();
            format!("{key} [{}]", truncate(&rows.join(", "), 120))
        }
        ("messages", Json::Array(messages)) => match messages.last() {
            Some(m) => format!(
                "messages ({}, last: {})",
                messages.len(),
                truncate(
                    &match (text_of(m, "from"), text_of(m, "text")) {
                        (Some(from), Some(text)) => format!("{from}: {text}"),
                        (None, Some(text)) => text,
                        _ => m.to_string(),
                    },
                    80
                )
            ),
            None => "messages (0)".to_owned(),
        },
        ("timer", timer) => match timer.get("ends_at").and_then(Json::as_i64) {
            Some(at) => format!("timer {} s", ((at - now) as f64 / 1000.0).ceil()),
            None => format!("timer {}", short(timer, 60)),
        },
        (_, v) => format!("{key} {}", short(v, 80)),
    }
}

/// An entry of `players`, `leaderboard` or `podium`: `Ana (answered)`,
/// `1. Cara 949`.
fn row(entry: &Json) -> String {
    let name = text_of(entry, "name").unwrap_or_else(|| "?".to_owned());
    let rank = text_of(entry, "rank").map_or_else(String::new, |r| format!("{r}. "));
    match (text_of(entry, "score"), text_of(entry, "detail")) {
        (Some(score), _) => format!("{rank}{name} {score}"),
        (None, Some(detail)) => format!("{rank}{name} ({detail})"),
        (None, None) => format!("{rank}{name}"),
    }
}

/// A field as text: strings as they are, numbers as written.
fn text_of(value: &Json, key: &str) -> Option<String> {
    match value.get(key)? {
        Json::String(s) => Some(s.clone()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// Columns of the results printed; a quiz's report has four per question,
/// which a terminal line cannot hold (the rest are named by their count).
const RESULT_COLUMNS: usize = 8;

/// The results, one line per row when they have `rows`.
fn results_lines(results: Option<&Json>) -> Vec<String> {
    let Some(results) = results else {
        return vec!["(none)".to_owned()];
    };
    let all: Vec<&str> = results
        .get("columns")
        .and_then(Json::as_array)
        .map(|c| c.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let columns = &all[..all.len().min(RESULT_COLUMNS)];
    let more = match all.len() - columns.len() {
        0 => String::new(),
        n => format!("  (and {n} more columns)"),
    };
    match results.get("rows").and_then(Json::as_array) {
        Some(rows) if !columns.is_empty() => std::iter::once(columns.join("  ") + &more)
            .chain(rows.iter().map(|row| {
                columns
                    .iter()
                    .map(|c| text_of(row, c).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("  ")
            }))
            .collect(),
        _ => vec![short(results, 400)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_skip_what_cannot_be_pressed() {
        let view = json!({
            "choices": [
                {"label": "A", "action": "answer", "data": {"choice": 1}},
                {"label": "B", "action": "answer", "data": {"choice": 2}, "style": "disabled"},
                {"label": "C"}
            ],
            "buttons": [{"label": "Next", "action": "next"}],
            "input": {"action": "send"},
            "players": [{"id": "p1", "name": "Ana"}],
            "kick": "kick"
        });
        let actions: Vec<(String, bool)> = offers_of(&view)
            .into_iter()
            .map(|o| (o.action, o.kind == OfferKind::Type))
            .collect();
        assert_eq!(
            actions,
            [
                ("answer".to_owned(), false),
                ("next".to_owned(), false),
                ("send".to_owned(), true)
            ]
        );
        assert_eq!(
            label_of(&view, "answer", &json!({"choice": 1})).as_deref(),
            Some("A")
        );
    }

    #[test]
    fn inputs_read_as_written() {
        let lines = [
            r#"{"wait":1500}"#,
            r#"{"join":"Ana"}"#,
            r#"{"leave":"Ana"}"#,
            r#"{"player":"Host","action":"start","data":null}"#,
        ];
        for line in lines {
            let input: Input = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&input).unwrap(), line);
        }
    }

    #[test]
    fn names_are_grouped_readably() {
        let names: Vec<String> = NAMES.iter().take(6).map(|n| (*n).to_owned()).collect();
        assert_eq!(who(&names[..1]), "Ana");
        assert_eq!(who(&names[..3]), "Ana, Ben and Cara");
        assert_eq!(who(&names), "Ana, Ben, Cara and 3 others");
    }
}
