//! `SessionActor`: the one task that owns a session.
//!
//! The actor takes commands from its mailbox in batches. For each batch it
//! 1. runs the handlers, one command at a time, in arrival order;
//! 2. runs a view pass if views are due (at most one per `--view-interval`);
//! 3. commits: writes the snapshot, the new messages and changed views to the
//!    store and waits for the flush; under load, commits are at least
//!    [`COMMIT_GAP`] apart and the batches in between are committed together;
//! 4. only then publishes the messages and answers (acks, welcomes).
//!
//! So nothing a client has seen or been told is done can be lost by a crash,
//! and no `seq` is ever handed out twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value as Json;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::env::{CommitError, SessionEnv};
use super::hooks::{Hook, Lane, Outbox};
use super::names::{clean_name, generated_name, name_key};
use super::record::{
    Encoded, MemberRecord, MemberWrite, SessionSnapshot, SessionWrite, StoredSession, TimerRecord,
};
use super::recording::{self, Header, Input, Recording};
use super::replay::{Replay, ReplayLog};
use super::view;
use super::{
    Answer, Attached, Audience, Control, Envelope, Mailbox, MemberId, NameMode, Outcome, Outgoing,
    PlayerSummary, Reply, Request, SessionId, SessionSummary, make_token,
};
use crate::auth::constant_time_eq;
use crate::metrics::Metrics;
use crate::protocol::{self, ErrorCode, PlayerRef, ProtocolError, Role, Welcome};
use crate::script::{
    CallOutcome, Effect, GameChange, GameVm, PlayerInfo, Rules, SavedState, ScriptError, VmCounters,
};

/// Most commands handled before a commit (and most answers waiting for one),
/// so one busy session cannot delay its acks indefinitely.
mod commit;
mod hooks;
mod rerun;
mod restore;
mod rules;
pub(crate) use rerun::RERUN_SECRET;
#[cfg(test)]
mod tests;

const MAX_BATCH: usize = 256;
/// Bytes of messages after which a batch is committed without taking more
/// commands, so a game emitting its limit on every call holds a few of
/// them in memory, not `MAX_BATCH`.
const MAX_BATCH_BYTES: usize = 4 << 20;
/// Time spent handling one batch after which it is committed without taking
/// more commands, so a game whose handlers are slow still answers every
/// tenth of a second instead of after `MAX_BATCH` of them.
const MAX_BATCH_TIME: Duration = Duration::from_millis(100);
/// Under load, a session's commits are at least this far apart: what happens
/// in between joins the pending batch, and its acks wait for it. One commit
/// (one snapshot, one store write, one Redis round trip) then serves many
/// actions instead of a few. A commit after a quiet spell is made at once,
/// so a lone action is not delayed.
pub(crate) const COMMIT_GAP: Duration = Duration::from_millis(4);
const MAX_ACTION_NAME: usize = 64;
/// Bots one session seats at most (they do not count towards the game's
/// `max_players`; this keeps a runaway backend from filling a session).
const MAX_BOTS: usize = 16;
/// After a commit that did not reach every store, how long before the full
/// rewrite is tried again with nothing new to write (new commands try at
/// once): a store that is away is not asked 250 times a second.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

struct Member {
    id: MemberId,
    name: Arc<str>,
    /// `names::name_key(name)`, kept so a join compares keys, not names.
    name_key: Box<str>,
    /// In a session with generated names, the name the student typed and
    /// its key (what a join's uniqueness and a kick compare there).
    real_name: Option<(Arc<str>, Box<str>)>,
    role: Role,
    secret: String,
    /// The session's `seq` when this member joined.
    joined_seq: u64,
    welcomed: bool,
    /// Sockets attached to this seat right now.
    connections: u32,
    /// The view this member last received (base of the next patch), shared
    /// with the members who see the same (see `view::ViewPass`).
    view: Arc<Json>,
    /// The client's join retry key (see `Request::Join`).
    join_nonce: Option<String>,
    /// Join order, kept in the stored record so a restore keeps the order.
    order: u64,
}

impl Member {
    fn info(&self) -> PlayerInfo {
        PlayerInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            real_name: self.real_name.as_ref().map(|(name, _)| name.clone()),
            role: self.role,
            connected: self.connections > 0,
        }
    }

    /// The key of the name this person typed: what a join compares and a
    /// kick bars (the generated name's is only what others see).
    fn person_key(&self) -> &str {
        self.real_name
            .as_ref()
            .map_or(&*self.name_key, |(_, key)| key)
    }

    fn record(&self) -> MemberRecord {
        MemberRecord {
            id: self.id.to_string(),
            name: self.name.to_string(),
            real_name: self.real_name.as_ref().map(|(name, _)| name.to_string()),
            role: self.role,
            secret: self.secret.clone(),
            joined_seq: self.joined_seq,
            welcomed: self.welcomed,
            join_nonce: self.join_nonce.clone(),
            order: self.order,
        }
    }
}

/// What a batch produced, applied by `commit`.
#[derive(Default)]
struct Batch {
    /// Sequenced messages and unsequenced notices, in order.
    messages: Vec<Outgoing>,
    evicted: Vec<u64>,
    /// Members whose stored record or view is new or changed, each once
    /// however many times the batch touched it.
    members: BTreeMap<MemberId, Touched>,
    removed: Vec<MemberId>,
    /// Answers to send once the batch is durable.
    replies: Vec<(Reply, Outcome)>,
    /// Something that the snapshot holds changed (a handler ran, the rules
    /// changed, timers changed): the snapshot is rewritten.
    state: bool,
    /// Bytes of the sequenced messages in `messages`.
    bytes: usize,
    /// Webhooks to deliver once the batch is durable.
    hooks: Vec<Hook>,
}

impl Batch {
    /// Whether the batch has nothing to store.
    fn is_empty(&self) -> bool {
        !self.state
            && self.messages.is_empty()
            && self.members.is_empty()
            && self.removed.is_empty()
    }

    /// The member's record is new or changed.
    fn record(&mut self, member: &MemberId) {
        self.members.entry(member.clone()).or_default().record = true;
    }

    /// The member was sent a new view.
    fn view(&mut self, member: &MemberId) {
        self.members.entry(member.clone()).or_default().view = true;
    }
}

/// What a batch changed of one member.
#[derive(Clone, Copy, Default)]
struct Touched {
    record: bool,
    view: bool,
}

/// How stale the stored activity time may get before a batch of messages
/// alone rewrites the snapshot (it only matters for idle expiry).
const ACTIVE_MS_SLACK: i64 = 60_000;

/// Everything needed to create a session.
pub(crate) struct NewSession {
    pub id: SessionId,
    pub code: String,
    pub rules: Arc<Rules>,
    pub params: Json,
    pub host: MemberId,
    pub host_secret: String,
    /// Whether a socket receives the host's welcome now (false for REST).
    pub host_attached: bool,
    /// The seed of `ctx.random` (and `math.random`), and of generated names.
    pub seed: u64,
    /// How players are named.
    pub names: NameMode,
}

pub(crate) struct SessionActor {
    id: SessionId,
    code: String,
    game: String,
    vm: GameVm,
    members: IndexMap<MemberId, Member>,
    seq: u64,
    log: ReplayLog,
    timers: BTreeMap<u64, TimerRecord>,
    ended: Option<Json>,
    /// The results of the last `ctx.report`, until `ended` has the final ones.
    report: Option<Arc<Encoded>>,
    /// The state and the report as the stores last took them: a commit
    /// writes the state's fields and the report only where they differ.
    stored_state: Option<Arc<SavedState>>,
    stored_report: Option<Arc<Encoded>>,
    /// How players are named, and the seed generated names are drawn from.
    names: NameMode,
    name_seed: u64,
    created_ms: i64,
    active_ms: i64,
    /// `active_ms` as of the last snapshot written.
    stored_active_ms: i64,
    /// Whose views the next pass recomputes.
    redraw: view::Redraw,
    last_view_pass: Instant,
    /// Name keys of members a kick removed: they may not join again under
    /// that name until `ctx.readmit`.
    removed_names: std::collections::BTreeSet<Box<str>>,
    /// Webhooks not yet delivered everywhere, stored in the snapshot, and
    /// the task delivering them (started with the first).
    outbox: Outbox,
    lane: Option<Lane>,
    /// A rules version this session failed to switch to; not retried.
    failed_version: Option<String>,
    /// The next commit rewrites everything (see `request_resync`).
    resync: bool,
    /// Another node owns the session now: stop without committing.
    relinquished: bool,
    /// Whether the last commit reached a store (see `CommitError::NotDurable`).
    durable: bool,
    /// After a failed commit, a rewrite alone is not tried again before this.
    retry_at: Option<Instant>,
    /// The rules the catalog offered when the current input began; a
    /// handler switches to them (see `refresh_rules`).
    offered: Option<Arc<Rules>>,
    /// Every input and output since the session started on this node;
    /// `None` for a restored session or with `--recording-kib 0`.
    recording: Option<Recording>,
    env: Arc<SessionEnv>,
    batch: Batch,
}

impl Drop for SessionActor {
    fn drop(&mut self) {
        // A session that stops is no longer one that cannot save.
        self.set_durable(true);
    }
}

/// Why a session's actor stopped; its spawner acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The node is shutting down: the last commit is made, the session is
    /// to be handed to another node.
    Shutdown,
    /// The session expired (ended, or idle too long): it is to be forgotten.
    Expired,
    /// Another node owns the session now; nothing was written.
    NotOwner,
    /// Nobody can send it commands any more.
    Closed,
}

impl SessionActor {
    /// Creates a session: runs `init` and computes the host's first view.
    pub(crate) fn create(
        env: Arc<SessionEnv>,
        new: NewSession,
    ) -> Result<(Self, Attached), ProtocolError> {
        let mut new = new;
        new.params = new.rules.params_with(std::mem::take(&mut new.params));
        let counters = VmCounters {
            rng: new.seed,
            next_timer: 0,
        };
        let mut vm = GameVm::new(new.rules.clone(), env.settings.script, &new.id, counters)
            .map_err(script_failure)?;
        vm.check_shared_tables(env.settings.check_game);
        let now = env.clock.now_ms();
        let recording = (env.settings.recording_bytes > 0).then(|| {
            let header = Header {
                session: new.id.to_string(),
                code: new.code.clone(),
                game: new.rules.game.clone(),
                seed: new.seed,
                params: new.params.clone(),
                created_ms: now,
                host: new.host.to_string(),
                host_attached: new.host_attached,
                limits: env.settings.script.into(),
                names: new.names,
                blocked_names: env.settings.blocked_names.custom_text().map(str::to_owned),
            };
            Recording::start(header, new.rules.clone(), env.settings.recording_bytes)
        });
        let mut actor = SessionActor::fresh(env, new.id, new.code, new.rules.game.clone(), vm, now);
        actor.recording = recording;
        actor.offered = Some(new.rules.clone());
        actor.names = new.names;
        if new.names == NameMode::Generated {
            // Never 0, which the snapshot leaves out.
            actor.name_seed = new.seed | 1;
        }
        let host = Member {
            id: new.host.clone(),
            name: "Host".into(),
            name_key: name_key("Host"),
            real_name: None,
            role: Role::Host,
            secret: new.host_secret,
            joined_seq: 0,
            welcomed: new.host_attached,
            connections: u32::from(new.host_attached),
            view: Arc::new(Json::Object(Default::default())),
            join_nonce: None,
            order: 0,
        };
        actor.batch.record(&host.id);
        actor.members.insert(host.id.clone(), host);
        actor.sync_players();
        let outcome = actor.vm.init(&new.params, now).map_err(script_failure)?;
        actor.apply(outcome.effects, now);
        // The host is a member like any other: `join` runs for it too.
        let host_info = actor.members[&new.host].info();
        let joined = actor.vm.join(&host_info, now).map_err(script_failure)?;
        if let Some(reason) = joined.refusal {
            return Err(ProtocolError::new(ErrorCode::Refused, reason));
        }
        actor.apply(joined.effects, now);
        let view = actor.vm.view(&host_info).map_err(script_failure)?;
        actor.batch.state = true;
        actor.batch.view(&new.host);
        actor.record_answer(Some(&new.host), Ok(serde_json::json!({ "view": &view })));
        let host = &mut actor.members[&new.host];
        host.view = Arc::new(view);
        let attached = actor.attached(&new.host, None);
        let created = serde_json::json!({ "code": actor.code, "params": new.params });
        actor.hook("session.created", created, now);
        Metrics::inc(&actor.env.metrics.sessions_created_total);
        Ok((actor, attached))
    }

    /// An actor with no members, messages or timers yet.
    fn fresh(
        env: Arc<SessionEnv>,
        id: SessionId,
        code: String,
        game: String,
        vm: GameVm,
        created_ms: i64,
    ) -> Self {
        vm.set_name_rules(env.settings.blocked_names.clone());
        SessionActor {
            id,
            code,
            game,
            vm,
            members: IndexMap::new(),
            seq: 0,
            log: ReplayLog::new(env.settings.replay_window),
            timers: BTreeMap::new(),
            ended: None,
            report: None,
            stored_state: None,
            stored_report: None,
            names: NameMode::Typed,
            name_seed: 0,
            created_ms,
            active_ms: created_ms,
            stored_active_ms: created_ms,
            redraw: view::Redraw::default(),
            last_view_pass: Instant::now(),
            removed_names: Default::default(),
            outbox: Outbox::default(),
            lane: None,
            failed_version: None,
            resync: false,
            relinquished: false,
            durable: true,
            retry_at: None,
            offered: None,
            recording: None,
            env,
            batch: Batch::default(),
        }
    }

    pub(crate) fn id(&self) -> &SessionId {
        &self.id
    }

    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// Runs the actor until its session expires, another node takes it, or
    /// the node shuts down, and says which.
    pub(crate) async fn run(mut self, mut mailbox: Mailbox, shutdown: CancellationToken) -> Ended {
        let mut changes: broadcast::Receiver<GameChange> = self.env.catalog.subscribe();
        let base = self.env.settings.view_interval;
        if !self.commit().await {
            return Ended::NotOwner;
        }
        let mut committed_at = Instant::now();
        loop {
            let timer_at = self.next_timer_at();
            let interval = self.env.pressure.view_interval(base);
            let view_at = self.redraw.is_due().then(|| self.last_view_pass + interval);
            let expire_at = self.expire_at();
            let commit_at = self.commit_at(committed_at);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = sleep_until(commit_at) => {}
                cmd = mailbox.recv() => {
                    let Some(cmd) = cmd else { return Ended::Closed };
                    // Timers that came due first run first: the order a
                    // replay of this session's inputs reproduces.
                    if timer_at.is_some_and(|at| at <= Instant::now()) {
                        self.fire_due_timers();
                    }
                    let started = std::time::Instant::now();
                    self.handle(cmd);
                    for _ in 1..MAX_BATCH {
                        if self.batch.bytes >= MAX_BATCH_BYTES
                            || started.elapsed() >= MAX_BATCH_TIME
                        {
                            break;
                        }
                        match mailbox.try_recv() {
                            Some(cmd) => self.handle(cmd),
                            None => break,
                        }
                    }
                }
                _ = sleep_until(timer_at) => self.fire_due_timers(),
                _ = sleep_until(view_at) => {}
                change = changes.recv() => {
                    if let Ok(change) = change {
                        self.on_game_change(change);
                    }
                }
                _ = sleep_until(expire_at) => {
                    tracing::info!(session = %self.id, game = %self.game, "session expired");
                    return Ended::Expired;
                }
            }
            if self.relinquished {
                return Ended::NotOwner;
            }
            let interval = self.env.pressure.view_interval(base);
            if self.redraw.is_due() && Instant::now() >= self.last_view_pass + interval {
                self.view_pass();
            }
            let writes = self.has_writes();
            if !writes
                || self.batch.replies.len() >= MAX_BATCH
                || self.batch.bytes >= MAX_BATCH_BYTES
                || Instant::now() >= committed_at + self.env.settings.commit_gap
            {
                if !self.commit().await {
                    return Ended::NotOwner;
                }
                if writes {
                    committed_at = Instant::now();
                }
            }
        }
        // Shutting down: a last commit (with any rewrite still owed, so the
        // node that adopts the session reads all of it); the spawner hands
        // the session on.
        self.retry_at = None;
        if self.commit().await {
            Ended::Shutdown
        } else {
            Ended::NotOwner
        }
    }

    /// Whether the next commit writes something (rather than only sending
    /// replies that need no write, which is done at once).
    fn has_writes(&self) -> bool {
        !self.batch.is_empty() || self.resync_due()
    }

    /// A rewrite is asked for and, after a failed commit, its retry is due.
    fn resync_due(&self) -> bool {
        self.resync && self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// When the next commit is to be made: `COMMIT_GAP` after the last, or
    /// for a rewrite alone no sooner than its retry.
    fn commit_at(&self, committed_at: Instant) -> Option<Instant> {
        let gap = committed_at + self.env.settings.commit_gap;
        if !self.batch.is_empty() {
            Some(gap)
        } else if self.resync {
            Some(self.retry_at.map_or(gap, |at| at.max(gap)))
        } else {
            None
        }
    }

    fn handle(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Request(request, reply) => self.request(request, reply),
            Envelope::Control(Control::Resync) => self.resync = true,
            Envelope::Control(Control::Relinquish) => self.relinquished = true,
        }
    }

    /// Handles one request. An answer that depends on what the request
    /// changed waits for the commit; one that reads only is sent at once.
    fn request(&mut self, request: Request, reply: Reply) {
        let now = self.env.clock.now_ms();
        match request {
            Request::Join {
                member,
                secret,
                name,
                nonce,
                role,
            } => {
                self.active_ms = now;
                self.begin(
                    now,
                    Input::Join {
                        member: member.to_string(),
                        name: name.clone(),
                        nonce: nonce.as_deref().map(recording::digest),
                        role,
                    },
                );
                let result = self.join(member.clone(), secret, name, nonce, role, now);
                let answer = match &result {
                    Ok(a) => Ok(self
                        .members
                        .get(&a.member)
                        .map_or(Json::Null, |m| serde_json::json!({ "view": &*m.view }))),
                    Err(e) => Err(e),
                };
                self.record_answer(Some(&member), answer);
                self.reply(reply, result.map(Answer::Attached));
            }
            Request::Resume {
                member,
                secret,
                last_seq,
            } => {
                let result = self.resume(&member, &secret, last_seq);
                if result.is_ok() {
                    self.begin(
                        now,
                        Input::Resume {
                            member: member.to_string(),
                        },
                    );
                }
                self.reply(reply, result.map(Answer::Attached));
            }
            Request::Action { member, name, data } => {
                self.active_ms = now;
                self.begin(
                    now,
                    Input::Action {
                        member: member.to_string(),
                        name: name.clone(),
                        data: data.clone(),
                    },
                );
                let result = self.action(&member, &name, &data, now);
                self.record_answer(Some(&member), done(&result));
                self.reply(reply, result.map(|()| Answer::Done));
            }
            Request::Leave { member } => {
                self.active_ms = now;
                self.begin(
                    now,
                    Input::Leave {
                        member: member.to_string(),
                    },
                );
                self.leave(&member, now);
                self.reply(reply, Ok(Answer::Done));
            }
            Request::Disconnected { member } => {
                if let Some(m) = self.members.get_mut(&member) {
                    m.connections = m.connections.saturating_sub(1);
                    self.sync_player(&member);
                    self.begin(
                        now,
                        Input::Disconnect {
                            member: member.to_string(),
                        },
                    );
                }
                reply.send(Ok(Answer::Done));
            }
            Request::Reattach { member } => {
                if let Some(m) = self.members.get_mut(&member) {
                    m.connections += 1;
                    self.sync_player(&member);
                    self.begin(
                        now,
                        Input::Reattach {
                            member: member.to_string(),
                        },
                    );
                }
                reply.send(Ok(Answer::Done));
            }
            Request::Event { name, data } => {
                self.active_ms = now;
                self.begin(
                    now,
                    Input::Event {
                        name: name.clone(),
                        data: data.clone(),
                    },
                );
                let result = self.event(&name, &data, now);
                self.record_answer(None, done(&result));
                self.reply(reply, result.map(|()| Answer::Done));
            }
            Request::Broadcast { name, data } => {
                self.active_ms = now;
                self.begin(
                    now,
                    Input::Broadcast {
                        name: name.clone(),
                        data: data.clone(),
                    },
                );
                let id = self.id.clone();
                let seq = self.push(Audience::All, false, |seq| {
                    protocol::encode_event(&id, seq, &name, &data)
                });
                self.record_answer(None, Ok(serde_json::json!({ "seq": seq })));
                self.reply(reply, Ok(Answer::Seq { seq }));
            }
            Request::Summary => reply.send(Ok(Answer::Summary(self.summary()))),
            Request::Results { host } => {
                let result = self.check_host(host).map(|()| Answer::Results {
                    results: self
                        .ended
                        .clone()
                        .or_else(|| self.report.as_ref().map(|r| r.json.clone())),
                    finished: self.ended.is_some(),
                });
                reply.send(result);
            }
            Request::Recording { host } => {
                let result = self.check_host(host).and_then(|()| self.recording_json());
                reply.send(result.map(|json| Answer::Recording { json }));
            }
        }
    }

    /// With `host`, whether that seat is a host whose secret matches; with
    /// none, the caller has the API key.
    fn check_host(&self, host: Option<(MemberId, String)>) -> Result<(), ProtocolError> {
        let allowed = host.is_none_or(|(member, secret)| {
            self.members.get(&member).is_some_and(|m| {
                m.role == Role::Host && constant_time_eq(m.secret.as_bytes(), secret.as_bytes())
            })
        });
        if allowed {
            Ok(())
        } else {
            Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "that token is not this session's host",
            ))
        }
    }

    /// Queues an answer for after the commit.
    fn reply(&mut self, reply: Reply, outcome: Outcome) {
        if matches!(reply, Reply::None) {
            return;
        }
        self.batch.replies.push((reply, outcome));
    }

    /// Gives the VM the whole list of players (`ctx.players()`), in join order.
    fn sync_players(&mut self) {
        self.vm
            .set_players(self.members.values().map(Member::info).collect());
    }

    /// Brings one member's entry in the VM's list of players up to date: a
    /// member just added at the end is appended. The list is in the same
    /// order as `members`, so a member's index is its place in both.
    fn sync_player(&mut self, member: &str) {
        let Some((index, _, m)) = self.members.get_full(member) else {
            return;
        };
        let info = m.info();
        self.vm.update_players(|list| match list.get_mut(index) {
            Some(slot) => *slot = info,
            None => list.push(info),
        });
    }

    /// Removes a member from `members` and from the VM's list of players.
    fn remove_member(&mut self, member: &str) {
        let Some((index, ..)) = self.members.shift_remove_full(member) else {
            return;
        };
        self.vm.update_players(|list| {
            if index < list.len() {
                list.remove(index);
            }
        });
    }

    fn attached(&self, member: &MemberId, resumed: Option<bool>) -> Attached {
        let m = &self.members[member];
        let token = make_token(&self.id, &m.id, &m.secret);
        let frame = protocol::encode_welcome(&Welcome {
            session: &self.id,
            game: &self.game,
            role: m.role,
            player: PlayerRef {
                id: &m.id,
                name: &m.name,
                role: m.role,
            },
            token: &token,
            seq: self.seq,
            view: (resumed != Some(true)).then_some(&m.view),
            code: (m.role == Role::Host).then_some(self.code.as_str()),
            resumed,
        });
        Attached {
            member: member.clone(),
            seq: self.seq,
            frames: vec![frame.into()],
        }
    }

    fn summary(&self) -> SessionSummary {
        SessionSummary {
            session: self.id.to_string(),
            game: self.game.clone(),
            title: self.vm.rules().title.clone(),
            code: self.code.clone(),
            seq: self.seq,
            owner: self.env.node_id.to_string(),
            players: self
                .members
                .values()
                .map(|m| PlayerSummary {
                    id: m.id.to_string(),
                    name: m.name.to_string(),
                    role: m.role,
                    connected: m.connections > 0,
                })
                .collect(),
            ended: self.ended.is_some(),
            rules_version: self.vm.rules().version.clone(),
            state_bytes: self.vm.used_memory(),
            timers: self.timers.len(),
            next_timer_ms: self.timers.values().map(|t| t.due_ms).min(),
        }
    }

    fn next_timer_at(&self) -> Option<Instant> {
        let due = self.timers.values().map(|t| t.due_ms).min()?;
        Some(self.instant_at(due))
    }

    /// When the session goes: `--ended-ttl-min` after it ended; with
    /// nobody connected, `--idle-ttl-h` after its last activity or after the
    /// last of its held timers (those set by what a member, the API or the
    /// creation did), whichever is later: a homework quiz whose deadline is
    /// days away stays while its students sleep, and a game that ticks on
    /// with nobody there does not. Never while someone is connected.
    fn expire_at(&self) -> Option<Instant> {
        let settings = &self.env.settings;
        let (ttl, from) = if self.ended.is_some() {
            (settings.ended_ttl, self.active_ms)
        } else if self.members.values().all(|m| m.connections == 0) {
            let held = self.timers.values().filter(|t| t.held).map(|t| t.due_ms);
            (settings.idle_ttl, held.fold(self.active_ms, i64::max))
        } else {
            return None;
        };
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Some(self.instant_at(from.saturating_add(ttl_ms)))
    }

    /// The tokio instant at which the session's clock reads `unix_ms`.
    fn instant_at(&self, unix_ms: i64) -> Instant {
        let delta = unix_ms.saturating_sub(self.env.clock.now_ms()).max(0) as u64;
        Instant::now() + Duration::from_millis(delta.min(365 * 24 * 3_600_000))
    }
}

/// How a recording shows a handler call's answer.
fn done(result: &Result<(), ProtocolError>) -> Result<Json, &ProtocolError> {
    result.as_ref().map(|()| Json::from("ok"))
}

fn script_failure(e: ScriptError) -> ProtocolError {
    ProtocolError::new(ErrorCode::ScriptError, e.message)
}

fn not_member() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotMember,
        "you are not in this session (join it first, or resume with your token)",
    )
}

/// Waits until `at`; a time already come is ready at once (a tokio sleep
/// would wait for the timer's next tick, a millisecond later, which on a
/// headless session's clock is a millisecond of the game's time).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) if at <= Instant::now() => {}
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
