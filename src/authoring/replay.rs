//! `recess replay FILE [--games DIR]`: runs a recorded session again and
//! checks that every message comes out byte for byte as it was sent.
//!
//! The recording (`GET /api/sessions/{id}/recording`, see
//! `session::recording`) holds the session's seed, params and rules and
//! every input with its time. The replay creates the session with the same
//! ids and seed in a `SessionActor` of its own, on a clock it sets to each
//! input's time, and gives it each input through the path it took the first
//! time. Every message, notice and answer the replay produces is compared
//! with the recorded one; the first that differs is reported with its `seq`,
//! the input it came from, what was expected and what came.
//!
//! With `--games DIR` the game's file in DIR is used throughout instead of
//! the recorded rules (changes of rules in the recording are then not
//! replayed): a fixed game file shows where it would have behaved
//! differently.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures_util::future::BoxFuture;

use super::{elapsed, truncate};
use crate::metrics::Metrics;
use crate::script::{Catalog, Limits, Rules};
use crate::session::actor::{NewSession, RERUN_SECRET};
use crate::session::env::Clock;
use crate::session::names::NameFilter;
use crate::session::record::SessionWrite;
use crate::session::recording::{FORMAT, Input, Output, RecordingFile, Step};
use crate::session::{CommitError, CommitSink, SessionActor, SessionEnv, Settings};

/// What to replay.
pub struct Options {
    /// The recording file.
    pub file: PathBuf,
    /// A games folder whose version of the game replaces the recorded rules.
    pub games: Option<PathBuf>,
}

/// How a replay went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every message came out as recorded.
    Identical,
    /// A message differed (the report says which).
    Differs,
}

/// Longest frame a report shows in full.
const SHOWN_CHARS: usize = 800;

/// Replays `options.file` and writes the report to `out`. `Err` when the
/// file cannot be read or is not a recording, or the rules cannot load.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<Verdict, String> {
    let file = &options.file;
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let recording: RecordingFile = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a Recess recording: {e}", file.display()))?;
    if recording.recording != FORMAT {
        return Err(format!(
            "{} is a recording of format {}; this Recess reads format {FORMAT}",
            file.display(),
            recording.recording
        ));
    }
    let limits: Limits = recording.header.limits.into();
    let rules = RulesSource::new(&recording, options.games.as_deref(), limits)?;
    let report = replay(&recording, &rules, limits)?;
    report
        .write(&recording, &rules, out)
        .map_err(|e| e.to_string())?;
    Ok(report.verdict(&recording))
}

/// Where the replay's rules come from.
struct RulesSource {
    catalog: Arc<Catalog>,
    /// The recorded rules are written here (none with `--games`).
    written: Option<tempfile::TempDir>,
    /// How the report names the rules.
    shown: String,
}

impl RulesSource {
    fn new(rec: &RecordingFile, games: Option<&Path>, limits: Limits) -> Result<Self, String> {
        let game = &rec.header.game;
        if let Some(dir) = games {
            let catalog = Catalog::new(dir, limits);
            let rules = load(&catalog, game)?;
            let changed = if rules.version == first_version(rec) {
                "the recorded version"
            } else {
                "not the recorded version"
            };
            let shown = format!("{game} from {} ({changed})", dir.display());
            return Ok(RulesSource {
                catalog,
                written: None,
                shown,
            });
        }
        let dir =
            tempfile::tempdir().map_err(|e| format!("cannot make a folder for the rules: {e}"))?;
        let catalog = Catalog::new(dir.path(), limits);
        let source = RulesSource {
            catalog,
            written: Some(dir),
            shown: format!("{game} as recorded"),
        };
        source.offer(rec, &first_version(rec))?;
        Ok(source)
    }

    /// Makes the recorded `version` the one the catalog offers.
    fn offer(&self, rec: &RecordingFile, version: &str) -> Result<(), String> {
        let Some(dir) = &self.written else {
            return Ok(());
        };
        let game = &rec.header.game;
        let files = rec
            .rules
            .iter()
            .find(|r| r.version == version)
            .ok_or_else(|| format!("the recording names rules {version} but does not hold them"))?;
        // A version replaces the last one whole (a folder game may have
        // dropped a module; a spreadsheet game brings its rules' files).
        for entry in std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
        for (name, text) in &files.files {
            let path = dir.path().join(name);
            if !path.starts_with(dir.path()) || name.split('/').any(|p| p == "..") {
                return Err(format!(
                    "the recording holds a file outside its game: {name}"
                ));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::fs::write(&path, text).map_err(|e| format!("cannot write {name}: {e}"))?;
        }
        let rules = load(&self.catalog, game)?;
        if rules.version != version {
            return Err(format!(
                "the recorded rules {version} load as version {} here",
                rules.version
            ));
        }
        Ok(())
    }
}

fn first_version(rec: &RecordingFile) -> String {
    rec.rules
        .first()
        .map(|r| r.version.clone())
        .unwrap_or_default()
}

fn load(catalog: &Catalog, game: &str) -> Result<Arc<Rules>, String> {
    match catalog.reload(game) {
        Some(Ok(rules)) => Ok(rules),
        Some(Err(e)) => Err(format!("the game does not load: {e}")),
        None => catalog.get(game).ok_or_else(|| {
            format!(
                "there is no game called '{game}' in {}",
                catalog.dir().display()
            )
        }),
    }
}

/// What the replay produced.
struct Report {
    /// The replayed outputs, and the replay's own steps they point into.
    outputs: Vec<Output>,
    steps: Vec<Step>,
    /// Why the session could not even start, if so.
    not_started: Option<String>,
}

fn replay(rec: &RecordingFile, rules: &RulesSource, limits: Limits) -> Result<Report, String> {
    let header = &rec.header;
    let clock = Arc::new(ManualClock(AtomicI64::new(header.created_ms)));
    let env = Arc::new(SessionEnv {
        node_id: "replay".into(),
        sink: Arc::new(NoStore),
        catalog: rules.catalog.clone(),
        clock: clock.clone(),
        metrics: Arc::new(Metrics::default()),
        pressure: Arc::default(),
        hooks: None,
        // Everything in full: a digest in the recording is compared with
        // the hash of the replayed frame.
        // The names the session refused are refused again.
        settings: Settings {
            blocked_names: Arc::new(
                header
                    .blocked_names
                    .as_deref()
                    .map(NameFilter::custom)
                    .unwrap_or_default(),
            ),
            ..Settings::offline(limits, usize::MAX / 4)
        },
    });
    let Some(game_rules) = rules.catalog.get(&header.game) else {
        return Err(format!("there is no game called '{}'", header.game));
    };
    if !matches!(rec.steps.first().map(|s| &s.input), Some(Input::Start)) {
        return Err("the recording does not begin with the session's start".into());
    }
    let new = NewSession {
        id: header.session.as_str().into(),
        code: header.code.clone(),
        rules: game_rules,
        params: header.params.clone(),
        host: header.host.as_str().into(),
        host_secret: RERUN_SECRET.into(),
        host_attached: header.host_attached,
        seed: header.seed,
        names: header.names,
    };
    let mut actor = match SessionActor::create(env, new) {
        Ok((actor, _)) => actor,
        Err(e) => {
            return Ok(Report {
                outputs: Vec::new(),
                steps: Vec::new(),
                not_started: Some(e.message),
            });
        }
    };
    actor.drop_batch();
    for step in &rec.steps[1..] {
        clock.0.store(header.created_ms + step.t, Ordering::Relaxed);
        match &step.input {
            Input::Rules { version } => rules.offer(rec, version)?,
            input => actor.rerun(input),
        }
        actor.drop_batch();
    }
    let (outputs, steps) = match actor.recording() {
        Some(r) => (r.outputs(), r.steps()),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Report {
        outputs,
        steps,
        not_started: None,
    })
}

impl Report {
    /// The first output (by index) where the replay differs, if any.
    fn first_difference(&self, rec: &RecordingFile) -> Option<usize> {
        let expected = &rec.outputs;
        let got = &self.outputs;
        let same =
            |e: &Output, g: &Output| e.seq == g.seq && e.to == g.to && e.what.matches(&g.what);
        let common = expected.len().min(got.len());
        if let Some(i) = (0..common).find(|&i| !same(&expected[i], &got[i])) {
            return Some(i);
        }
        // A recording that stopped at its limit holds a prefix of the
        // outputs: more in the replay is expected then.
        if expected.len() > got.len() || (expected.len() < got.len() && !rec.stopped) {
            return Some(common);
        }
        None
    }

    fn verdict(&self, rec: &RecordingFile) -> Verdict {
        if self.not_started.is_none() && self.first_difference(rec).is_none() {
            Verdict::Identical
        } else {
            Verdict::Differs
        }
    }

    fn write(
        &self,
        rec: &RecordingFile,
        rules: &RulesSource,
        out: &mut dyn Write,
    ) -> std::io::Result<()> {
        let names = names(rec);
        let header = &rec.header;
        let people = names.len();
        let span = rec.steps.last().map_or(0, |s| s.t);
        writeln!(
            out,
            "replaying session {} of {}: {} {}, {} inputs over {}",
            header.session,
            header.game,
            people,
            if people == 1 { "person" } else { "people" },
            rec.steps.len(),
            elapsed(span)
        )?;
        writeln!(out, "rules: {}", rules.shown)?;
        if rec.stopped {
            writeln!(
                out,
                "the recording stopped at its size limit (--recording-kib): what it holds is checked"
            )?;
        }
        if let Some(why) = &self.not_started {
            writeln!(out, "the session does not start: {why}")?;
            return Ok(());
        }
        let Some(i) = self.first_difference(rec) else {
            writeln!(
                out,
                "identical: {} messages and answers, byte for byte",
                rec.outputs.len()
            )?;
            return Ok(());
        };
        let expected = rec.outputs.get(i);
        let got = self.outputs.get(i);
        let (seq, from) = match (expected, got) {
            (Some(e), _) => (e.seq, describe_step(rec.steps.get(e.step), &names)),
            (None, Some(g)) => (g.seq, describe_step(self.steps.get(g.step), &names)),
            (None, None) => (0, String::new()),
        };
        let seq = if seq == 0 {
            String::from("a notice or answer")
        } else {
            format!("seq {seq}")
        };
        writeln!(
            out,
            "first difference at message {} of {} ({seq}), from {from}",
            i + 1,
            rec.outputs.len()
        )?;
        writeln!(out, "  expected: {}", show(expected, &names))?;
        writeln!(out, "  got:      {}", show(got, &names))?;
        Ok(())
    }
}

/// Member ids and the names they joined under.
fn names(rec: &RecordingFile) -> HashMap<String, String> {
    let mut names = HashMap::from([(rec.header.host.clone(), "Host".to_owned())]);
    for step in &rec.steps {
        if let Input::Join { member, name, .. } = &step.input {
            names.entry(member.clone()).or_insert_with(|| name.clone());
        }
    }
    names
}

fn describe_step(step: Option<&Step>, names: &HashMap<String, String>) -> String {
    let Some(step) = step else {
        return "no input".into();
    };
    let who = |m: &String| names.get(m).cloned().unwrap_or_else(|| m.clone());
    let what = match &step.input {
        Input::Start => "the start (init, and the host's join and view)".to_owned(),
        Input::Join { name, .. } => format!("{name} joining"),
        Input::Resume { member } => format!("{} coming back (resume)", who(member)),
        Input::Disconnect { member } => format!("{}'s connection dropping", who(member)),
        Input::Reattach { member } => format!("{}'s connection coming back", who(member)),
        Input::Action { member, name, data } => {
            format!(
                "{} doing \"{name}\" {}",
                who(member),
                super::short(data, 120)
            )
        }
        Input::Leave { member } => format!("{} leaving", who(member)),
        Input::Event { name, data } => {
            format!("the event \"{name}\" {}", super::short(data, 120))
        }
        Input::Broadcast { name, .. } => format!("the REST broadcast \"{name}\""),
        Input::Timers => "timers firing".to_owned(),
        Input::Views => "a view pass".to_owned(),
        Input::Rules { version } => format!("the rules changing to version {version}"),
        Input::Broken { .. } => "the game file failing to load".to_owned(),
    };
    format!("{what} at {}", elapsed(step.t))
}

fn show(output: Option<&Output>, names: &HashMap<String, String>) -> String {
    let Some(o) = output else {
        return "(nothing: no more messages)".into();
    };
    let to = match &o.to {
        None => "everyone".to_owned(),
        Some(ids) => ids
            .iter()
            .map(|m| names.get(m).cloned().unwrap_or_else(|| m.clone()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!("{} (to {to})", truncate(&o.what.show(), SHOWN_CHARS))
}

/// The replay's clock: each input's recorded time.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A replay stores nothing: its batches are dropped after each input.
struct NoStore;

impl CommitSink for NoStore {
    fn commit<'a>(&'a self, _: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}
