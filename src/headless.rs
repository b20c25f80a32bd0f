//! Sessions with no server: `recess test` and `recess sim` run games here.
//!
//! A [`Harness`] runs the same [`SessionActor`] a node runs, on a tokio
//! runtime of its own whose clock stands still until [`Harness::advance`]
//! moves it, with an in-memory [`MemorySink`] instead of a store. Each
//! [`HeadlessSession`] reads what its actor commits and hands every message
//! to the seats it was for, as a client's socket would: a seat's view is its
//! welcome view with every patch it received applied, its events are the
//! ones it was sent. So what a test sees of a student is exactly what that
//! student's page would have been sent.
//!
//! Everything is deterministic: ids, codes and each session's `ctx.random`
//! seed come from the harness's seed, and the clock starts at [`START_MS`].

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::protocol::{ErrorCode, NameMode, ProtocolError, Role};
use crate::script::{Catalog, Limits};
use crate::session::actor::NewSession;
use crate::session::env::{Clock, MemorySink, TokioClock};
use crate::session::{
    Answer, Audience, MAILBOX, MailboxSender, MemberId, Outcome, Reply, Request, SessionActor,
    SessionEnv, SessionSummary, Settings, mailbox, view,
};

/// Where every headless clock starts: Monday 2026-01-05, 08:00 UTC, a
/// morning lesson (so `os.date`-free games see a plausible time).
pub(crate) const START_MS: i64 = 1_767_600_000_000;

/// Timer turns at one instant after which a session is taken to be looping
/// (`ctx.after(0, …)` from its own timer, forever).
const MAX_TURNS_AT_ONE_INSTANT: usize = 10_000;

/// Why a headless call did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// The game (or Recess, for a rule such as a taken name) said no: the
    /// reason, as the sender's page would show it.
    Refused(String),
    /// A handler or a view raised an error: `quiz.lua:57: message`.
    Script(String),
}

impl Failure {
    fn of(e: ProtocolError) -> Failure {
        match e.code {
            ErrorCode::ScriptError => Failure::Script(e.message),
            _ => Failure::Refused(e.message),
        }
    }

    /// The message, whichever kind.
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::Script(m) => m,
        }
    }
}

/// A message a seat received, as its page would.
#[derive(Debug, Clone)]
#[allow(
    dead_code,
    reason = "the seqs and news() are for recess sim, which lands next"
)]
pub(crate) enum Received {
    /// A `view` patch (already applied to the seat's view).
    View { seq: u64, patch: Json },
    /// An `event` frame.
    Event { seq: u64, name: String, data: Json },
    /// The `ended` frame.
    Ended { seq: u64, results: Json },
    /// An `error` frame (`kicked`, or a `script_error` shown to a host).
    Error { code: String, message: String },
}

/// One person in a headless session, as their client sees it.
#[derive(Debug, Clone)]
pub(crate) struct Seat {
    pub name: String,
    pub role: Role,
    /// What their screen shows now.
    pub view: Json,
    /// Everything they received, oldest first.
    pub received: Vec<Received>,
    /// Messages up to this `seq` were already in their welcome.
    welcome_seq: u64,
    /// Still subscribed (not left, not kicked).
    pub present: bool,
}

/// The runtime, clock and games that headless sessions share.
pub(crate) struct Harness {
    runtime: tokio::runtime::Runtime,
    clock: Arc<TokioClock>,
    catalog: Arc<Catalog>,
    settings: Settings,
    metrics: Arc<Metrics>,
    ids: Mutex<Rng>,
    sessions: Mutex<Vec<Weak<HeadlessSession>>>,
}

impl Harness {
    /// A harness over a games folder, its ids drawn from `seed`. Fails when
    /// the runtime cannot start.
    pub(crate) fn new(
        catalog: Arc<Catalog>,
        limits: Limits,
        seed: u64,
    ) -> Result<Arc<Self>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let clock = {
            let _inside = runtime.enter();
            Arc::new(TokioClock::starting_at(START_MS))
        };
        Ok(Arc::new(Harness {
            runtime,
            clock,
            catalog,
            // Tests and simulations are reproducible from their seed: no
            // recording. Every view pass checks the game's `ctx.redraw`s.
            settings: Settings {
                check_game: true,
                ..Settings::offline(limits, 0)
            },
            metrics: Arc::new(Metrics::default()),
            ids: Mutex::new(Rng::new(seed ^ 0x5265_6365_7373)),
            sessions: Mutex::new(Vec::new()),
        }))
    }

    /// The clock's reading, in Unix ms.
    pub(crate) fn now(&self) -> i64 {
        // Read inside the runtime: outside it tokio's `Instant::now` is the
        // operating system's, not the paused clock.
        let _inside = self.runtime.enter();
        self.clock.now_ms()
    }

    /// Starts a session of `game` with `params` and players named as
    /// `names` says; its host is seated.
    pub(crate) fn start(
        self: &Arc<Self>,
        game: &str,
        params: Json,
        names: NameMode,
    ) -> Result<Arc<HeadlessSession>, Failure> {
        let rules = match self.catalog.entry(game) {
            Some(entry) => match (entry.rules, entry.error) {
                (_, Some(error)) => return Err(Failure::Script(error)),
                (Some(rules), None) => rules,
                (None, None) => return Err(Failure::Refused(format!("no game '{game}'"))),
            },
            None => {
                return Err(Failure::Refused(format!(
                    "there is no game called '{game}' in {}",
                    self.catalog.dir().display()
                )));
            }
        };
        let (id, code, host, host_secret, seed) = {
            let mut ids = lock(&self.ids);
            (
                ids.text(12),
                format!("{:06}", ids.next() % 1_000_000),
                ids.member(),
                ids.text(24),
                ids.next(),
            )
        };
        let sink = Arc::new(MemorySink::default());
        let env = Arc::new(SessionEnv {
            node_id: "headless".into(),
            sink: sink.clone(),
            catalog: self.catalog.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
            // Its clock moves only when told: no load to feel.
            pressure: Arc::default(),
            hooks: None,
            settings: self.settings.clone(),
        });
        let new = NewSession {
            id: id.as_str().into(),
            code,
            rules,
            params,
            host: host.clone(),
            host_secret,
            host_attached: true,
            seed,
            names,
        };
        let _inside = self.runtime.enter();
        let (mut actor, attached) = SessionActor::create(env, new).map_err(Failure::of)?;
        self.runtime.block_on(actor.commit());
        let (tx, rx) = mailbox(MAILBOX);
        let shutdown = CancellationToken::new();
        self.runtime.spawn(actor.run(rx, shutdown.clone()));
        let session = Arc::new(HeadlessSession {
            harness: self.clone(),
            game: game.to_owned(),
            tx,
            sink,
            shutdown,
            seen: Mutex::new(Seen::default()),
            host: host.clone(),
        });
        session.take_seat(&host, "Host", Role::Host, &attached.frames[0], attached.seq);
        session.deliver();
        lock(&self.sessions).push(Arc::downgrade(&session));
        Ok(session)
    }

    /// Moves the clock `ms` forward. Timers fire in the order they are due,
    /// each at its own time (and the views they change are passed), in every
    /// session of this harness. Returns the first script error a timer or a
    /// view raised meanwhile.
    pub(crate) fn advance(&self, ms: u64) -> Result<(), Failure> {
        let target = self
            .now()
            .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
        let mut failure = None;
        loop {
            let mut next: Option<i64> = None;
            for session in self.live() {
                let due = session.settle();
                failure = failure.or(session.take_error(None));
                next = match (next, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let now = self.now();
            if now >= target {
                break;
            }
            let to = next.filter(|&t| t <= target).unwrap_or(target).max(now);
            let step = Duration::from_millis((to - now) as u64);
            self.runtime.block_on(tokio::time::advance(step));
        }
        failure.map_or(Ok(()), Err)
    }

    fn live(&self) -> Vec<Arc<HeadlessSession>> {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|s| s.strong_count() > 0);
        sessions.iter().filter_map(Weak::upgrade).collect()
    }
}

/// One session run by a [`Harness`].
pub(crate) struct HeadlessSession {
    harness: Arc<Harness>,
    game: String,
    tx: MailboxSender,
    sink: Arc<MemorySink>,
    shutdown: CancellationToken,
    seen: Mutex<Seen>,
    host: MemberId,
}

#[derive(Default)]
struct Seen {
    /// Messages of the sink read so far.
    read: usize,
    seats: IndexMap<MemberId, Seat>,
    /// `script_error` messages hosts were shown, not yet reported.
    errors: Vec<String>,
    results: Option<Json>,
}

impl Drop for HeadlessSession {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl HeadlessSession {
    /// The harness this session runs on.
    pub(crate) fn harness(&self) -> &Arc<Harness> {
        &self.harness
    }

    /// The host's member id.
    pub(crate) fn host(&self) -> &MemberId {
        &self.host
    }

    /// Seats a new member named `name`, as a player or a bot.
    pub(crate) fn join(&self, name: &str, role: Role) -> Result<MemberId, Failure> {
        let (member, secret) = {
            let mut ids = lock(&self.harness.ids);
            (ids.member(), ids.text(24))
        };
        let outcome = self.ask(Request::Join {
            member: member.clone(),
            secret,
            name: name.to_owned(),
            nonce: None,
            role,
        });
        match outcome {
            Ok(Answer::Attached(attached)) => {
                let (name, role) = self
                    .summary()
                    .and_then(|s| {
                        s.players
                            .into_iter()
                            .find(|p| *p.id == *attached.member)
                            .map(|p| (p.name, p.role))
                    })
                    .unwrap_or_else(|| (name.to_owned(), role));
                self.take_seat(
                    &attached.member,
                    &name,
                    role,
                    &attached.frames[0],
                    attached.seq,
                );
                self.finish(Ok(attached.member))
            }
            Ok(_) => self.finish(Ok(member)),
            Err(e) => self.finish(Err(Failure::of(e))),
        }
    }

    /// `member` presses `name` with `data`.
    pub(crate) fn act(&self, member: &str, name: &str, data: Json) -> Result<(), Failure> {
        let outcome = self.ask(Request::Action {
            member: member.into(),
            name: name.to_owned(),
            data,
        });
        self.finish(outcome.map(drop).map_err(Failure::of))
    }

    /// A backend posts the event `name` (`POST /api/sessions/{id}/events`).
    pub(crate) fn event(&self, name: &str, data: Json) -> Result<(), Failure> {
        let outcome = self.ask(Request::Event {
            name: name.to_owned(),
            data,
        });
        self.finish(outcome.map(drop).map_err(Failure::of))
    }

    /// `member` leaves on purpose (the `leave` frame).
    pub(crate) fn leave(&self, member: &str) -> Result<(), Failure> {
        // What was sent before the leave still reaches them; nothing after.
        self.deliver();
        if let Some(seat) = lock(&self.seen).seats.get_mut(member) {
            seat.present = false;
        }
        let outcome = self.ask(Request::Leave {
            member: member.into(),
        });
        self.finish(outcome.map(drop).map_err(Failure::of))
    }

    /// `member`'s connection drops (`connected = false` in `ctx.players()`),
    /// or comes back. What they miss meanwhile reaches them on their return,
    /// as a resume would bring it, so their seat keeps receiving.
    pub(crate) fn connect(&self, member: &str, connected: bool) -> Result<(), Failure> {
        let member: MemberId = member.into();
        let request = if connected {
            Request::Reattach { member }
        } else {
            Request::Disconnected { member }
        };
        let outcome = self.ask(request);
        self.finish(outcome.map(drop).map_err(Failure::of))
    }

    /// A seat as its client sees it now.
    pub(crate) fn seat(&self, member: &str) -> Option<Seat> {
        lock(&self.seen).seats.get(member).cloned()
    }

    /// What each seat received since `read` (how many of each seat's
    /// messages the caller has seen), in join order; moves `read` on.
    pub(crate) fn news(
        &self,
        read: &mut std::collections::HashMap<MemberId, usize>,
    ) -> Vec<(MemberId, String, Vec<Received>)> {
        let seen = lock(&self.seen);
        seen.seats
            .iter()
            .filter_map(|(id, seat)| {
                let from = read.entry(id.clone()).or_default();
                let new = seat.received.get(*from..).unwrap_or_default().to_vec();
                *from = seat.received.len();
                (!new.is_empty()).then(|| (id.clone(), seat.name.clone(), new))
            })
            .collect()
    }

    /// The webhooks the session made so far (`session.created`, what the
    /// rules `ctx.emit`, `session.ended`), in order: `(event, data)`.
    pub(crate) fn emitted(&self) -> Vec<(String, Json)> {
        self.sink
            .hooks()
            .iter()
            .filter_map(|body| serde_json::from_str::<Json>(body).ok())
            .map(|mut hook| {
                let event = hook["event"].as_str().unwrap_or_default().to_owned();
                (event, hook["data"].take())
            })
            .collect()
    }

    /// What `ctx.finish` ended the game with.
    pub(crate) fn results(&self) -> Option<Json> {
        lock(&self.seen).results.clone()
    }

    /// The results as the host downloads them now: the final ones, or
    /// before the end those of the last `ctx.report` (`None`: neither yet).
    pub(crate) fn report(&self) -> Option<Json> {
        match self.ask(Request::Results { host: None }) {
            Ok(Answer::Results { results, .. }) => results,
            _ => None,
        }
    }

    /// The members now, in join order, as `ctx.players()` lists them.
    pub(crate) fn summary(&self) -> Option<SessionSummary> {
        match self.ask(Request::Summary) {
            Ok(Answer::Summary(s)) => Some(s),
            _ => None,
        }
    }

    /// Sends a request and waits for its answer (after its commit).
    fn ask(&self, request: Request) -> Outcome {
        let (reply, rx) = Reply::local();
        self.harness.runtime.block_on(async {
            if self.tx.send_request(request, reply).await.is_err() {
                return Err(gone());
            }
            rx.await.unwrap_or_else(|_| Err(gone()))
        })
    }

    /// Lets the actor finish whatever is due now (timers whose time has
    /// come, and the timers those set for the same instant), delivers what
    /// it committed, and says when its next timer is due.
    fn settle(&self) -> Option<i64> {
        let mut next = None;
        for _ in 0..MAX_TURNS_AT_ONE_INSTANT {
            // The second summary is answered in a later turn of the actor's
            // loop than the first: by then the first turn's timers, view
            // pass and commit are done.
            let _ = self.summary();
            next = self.summary().and_then(|s| s.next_timer_ms);
            if next.is_none_or(|t| t > self.harness.now()) {
                self.deliver();
                return next;
            }
        }
        self.deliver();
        lock(&self.seen).errors.push(format!(
            "{}: timers keep firing at the same instant ({MAX_TURNS_AT_ONE_INSTANT} turns): a timer that sets ctx.after(0, …) again each time?",
            self.game
        ));
        next
    }

    /// Delivers what was committed, then turns a script error shown to the
    /// hosts meanwhile into the call's failure (unless the call failed with
    /// that very error already).
    fn finish<T>(&self, result: Result<T, Failure>) -> Result<T, Failure> {
        self.deliver();
        let own = match &result {
            Err(Failure::Script(m)) => Some(m.clone()),
            _ => None,
        };
        match self.take_error(own.as_deref()) {
            Some(f) if result.is_ok() => Err(f),
            _ => result,
        }
    }

    /// The first script error the hosts were shown since the last look,
    /// other than `except`.
    fn take_error(&self, except: Option<&str>) -> Option<Failure> {
        let mut seen = lock(&self.seen);
        let errors = std::mem::take(&mut seen.errors);
        errors
            .into_iter()
            .find(|m| Some(m.as_str()) != except)
            .map(Failure::Script)
    }

    fn take_seat(&self, member: &MemberId, name: &str, role: Role, welcome: &str, seq: u64) {
        let view = serde_json::from_str::<Json>(welcome)
            .ok()
            .and_then(|mut w| w.get_mut("view").map(Json::take))
            .unwrap_or_else(|| Json::Object(Default::default()));
        lock(&self.seen).seats.insert(
            member.clone(),
            Seat {
                name: name.to_owned(),
                role,
                view,
                received: Vec::new(),
                welcome_seq: seq,
                present: true,
            },
        );
    }

    /// Hands every newly committed message to the seats it is for.
    fn deliver(&self) {
        let mut seen = lock(&self.seen);
        let messages = self.sink.messages_from(seen.read);
        seen.read += messages.len();
        for m in messages {
            let Ok(frame) = serde_json::from_str::<Json>(&m.frame) else {
                continue;
            };
            let for_seat = |id: &MemberId, seat: &Seat| {
                seat.present
                    && (m.seq == 0 || m.seq > seat.welcome_seq)
                    && match &m.audience {
                        Audience::All => true,
                        Audience::Members(ids) => ids.contains(id),
                    }
            };
            let to: Vec<MemberId> = seen
                .seats
                .iter()
                .filter(|(id, seat)| for_seat(id, seat))
                .map(|(id, _)| id.clone())
                .collect();
            let received = received(m.seq, &frame);
            match &received {
                Some(Received::Ended { results, .. }) => seen.results = Some(results.clone()),
                Some(Received::Error { code, message })
                    if code == "script_error" && !seen.errors.contains(message) =>
                {
                    seen.errors.push(message.clone());
                }
                _ => {}
            }
            let Some(received) = received else { continue };
            for id in to {
                let Some(seat) = seen.seats.get_mut(&id) else {
                    continue;
                };
                if let Received::View { patch, .. } = &received {
                    view::apply(&mut seat.view, patch);
                }
                seat.received.push(received.clone());
                if m.revoke {
                    seat.present = false;
                }
            }
        }
    }
}

/// What a frame is to the page that receives it.
fn received(seq: u64, frame: &Json) -> Option<Received> {
    let field = |k: &str| frame.get(k).cloned().unwrap_or(Json::Null);
    let text = |k: &str| {
        frame
            .get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(match frame.get("type")?.as_str()? {
        "view" => Received::View {
            seq,
            patch: field("patch"),
        },
        "event" => Received::Event {
            seq,
            name: text("name"),
            data: field("data"),
        },
        "ended" => Received::Ended {
            seq,
            results: field("results"),
        },
        "error" => Received::Error {
            code: text("code"),
            message: text("message"),
        },
        _ => return None,
    })
}

fn gone() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::UnknownSession,
        "the session is over (it ended, or expired)",
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A seeded generator (splitmix64): the same seed, the same ids and choices.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// `len` characters of the alphabet real ids use.
    pub(crate) fn text(&mut self, len: usize) -> String {
        const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
        (0..len)
            .map(|_| ALPHABET[(self.next() % 32) as usize] as char)
            .collect()
    }

    fn member(&mut self) -> MemberId {
        format!("p{}", self.text(8)).into()
    }
}
