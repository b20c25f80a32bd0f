//! The actor's rules, driven alone: the same `SessionActor::run` the server
//! runs, with an in-memory sink, a real game file in a temp folder, and
//! tokio's paused clock (timers fire when the test moves time, at once).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Ended, NewSession, SessionActor};
use crate::metrics::Metrics;
use crate::protocol::ErrorCode;
use crate::protocol::Role;
use crate::script::{Catalog, Limits};
use crate::session::env::{MemorySink, Settings, TokioClock};
use crate::session::pressure::Pressure;
use crate::session::{
    Answer, Attached, Audience, Control, Envelope, MAILBOX, MailboxSender, Outcome, Reply, Request,
    SessionEnv, mailbox,
};

const GAME: &str = r#"
return {
  title = "Probe",
  init = function(ctx, params) return { clicks = 0 } end,
  action = function(state, ctx, player, name, data)
    if name == "click" then
      state.clicks = state.clicks + 1
      ctx.broadcast("clicked", { n = state.clicks, by = player.name })
    elseif name == "mine" then
      state.clicks = state.clicks + 1
      ctx.redraw(player.id)
    elseif name == "hosts" then
      state.clicks = state.clicks + 1
      ctx.redraw("host")
    elseif name == "quiet" then
      state.quiet = (state.quiet or 0) + 1
      ctx.redraw({})
    elseif name == "forget" then
      state.quiet = nil
    elseif name == "report" then
      ctx.report({ rows = { { name = "Ana", clicks = state.clicks } } })
    elseif name == "later" then
      ctx.after(data.ms, "tick", { n = data.n, every = data.every })
    elseif name == "kick" then
      if player.role ~= "host" then return false, "only the host can remove someone" end
      ctx.kick(data.player, "the host removed you")
    elseif name == "finish" then
      if player.role ~= "host" then return false, "only the host can end the game" end
      ctx.finish({ rows = { { name = "Ana", clicks = state.clicks } } })
    else
      return false, "unknown action " .. name
    end
  end,
  timer = function(state, ctx, name, data)
    ctx.broadcast("tick", { n = data.n, at = ctx.now() })
    if data.every then ctx.after(data.every, "tick", data) end
  end,
  view = function(state, player) return { clicks = state.clicks, me = player.name } end,
}
"#;

/// The clock's reading when a test starts.
const START_MS: i64 = 1_700_000_000_000;
const ENDED_TTL: Duration = Duration::from_secs(600);

struct Session {
    tx: MailboxSender,
    sink: Arc<MemorySink>,
    metrics: Arc<Metrics>,
    pressure: Arc<Pressure>,
    run: JoinHandle<Ended>,
    shutdown: CancellationToken,
    _games: tempfile::TempDir,
}

/// A session of the probe game, its host seat `phost` (secret `hs`), running.
async fn start() -> Session {
    start_with(false).await
}

/// `start`, with `Settings::check_game` as given.
async fn start_with(check_game: bool) -> Session {
    let games = tempfile::tempdir().unwrap();
    std::fs::write(games.path().join("probe.lua"), GAME).unwrap();
    let catalog = Catalog::new(games.path(), Limits::default());
    catalog.load_all();
    let sink = Arc::new(MemorySink::default());
    let metrics = Arc::new(Metrics::default());
    let pressure = Arc::new(Pressure::new(Duration::from_secs(1)));
    let env = Arc::new(SessionEnv {
        node_id: "test".into(),
        sink: sink.clone(),
        catalog: catalog.clone(),
        clock: Arc::new(TokioClock::starting_at(START_MS)),
        metrics: metrics.clone(),
        pressure: pressure.clone(),
        hooks: None,
        settings: Settings {
            script: Limits::default(),
            replay_window: 100,
            view_interval: Duration::from_millis(50),
            commit_gap: super::COMMIT_GAP,
            ended_ttl: ENDED_TTL,
            idle_ttl: IDLE_TTL,
            recording_bytes: 1 << 20,
            blocked_names: Arc::default(),
            check_game,
            keep_hooks: false,
        },
    });
    let new = NewSession {
        id: "s1".into(),
        code: "123456".into(),
        rules: catalog.get("probe").unwrap(),
        params: json!({}),
        host: "phost".into(),
        host_secret: "hs".into(),
        host_attached: true,
        seed: 7,
        names: Default::default(),
    };
    let (mut actor, _) = SessionActor::create(env, new).unwrap();
    assert!(actor.commit().await);
    let (tx, rx) = mailbox(MAILBOX);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(actor.run(rx, shutdown.clone()));
    Session {
        tx,
        sink,
        metrics,
        pressure,
        run,
        shutdown,
        _games: games,
    }
}

impl Session {
    async fn ask(&self, request: Request) -> Outcome {
        let (reply, rx) = Reply::local();
        self.tx.send_request(request, reply).await.unwrap();
        rx.await.unwrap()
    }

    async fn join(&self, member: &str, name: &str, nonce: Option<&str>) -> Outcome {
        self.ask(Request::Join {
            member: member.into(),
            secret: format!("secret-{member}"),
            name: name.into(),
            nonce: nonce.map(str::to_owned),
            role: Role::Player,
        })
        .await
    }

    async fn act(&self, member: &str, name: &str, data: Json) -> Outcome {
        self.ask(Request::Action {
            member: member.into(),
            name: name.into(),
            data,
        })
        .await
    }

    async fn resume(&self, member: &str, secret: &str, last_seq: u64) -> Outcome {
        self.ask(Request::Resume {
            member: member.into(),
            secret: secret.into(),
            last_seq,
        })
        .await
    }

    /// View passes the session has run.
    fn view_passes(&self) -> u64 {
        self.metrics
            .view_passes_total
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The committed events called `name`, in order.
    fn events(&self, name: &str) -> Vec<Json> {
        self.sink
            .frames()
            .iter()
            .map(|(_, f)| serde_json::from_str::<Json>(f).unwrap())
            .filter(|f| f["type"] == "event" && f["name"] == name)
            .collect()
    }
}

/// The view frames committed after the first `from` messages: who each was
/// for and its patch.
fn views_since(s: &Session, from: usize) -> Vec<(Vec<String>, Json)> {
    s.sink.messages_from(0)[from..]
        .iter()
        .filter_map(|m| {
            let f: Json = serde_json::from_str(&m.frame).unwrap();
            let Audience::Members(ids) = &m.audience else {
                return None;
            };
            (f["type"] == "view").then(|| {
                (
                    ids.iter().map(|i| i.to_string()).collect(),
                    f["patch"].clone(),
                )
            })
        })
        .collect()
}

/// Lets the paused clock pass a view interval and the actor run.
async fn next_pass() {
    tokio::time::advance(Duration::from_millis(100)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn welcome(attached: &Attached) -> Json {
    serde_json::from_str(attached.frames[0].as_str()).unwrap()
}

fn code(outcome: Outcome) -> ErrorCode {
    outcome.unwrap_err().code
}

#[tokio::test(start_paused = true)]
async fn a_join_is_answered_once_committed_and_a_name_is_taken_once() {
    let s = start().await;
    let ana = Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    assert_eq!(&*ana.member, "pana");
    let w = welcome(&ana);
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["view"]["me"], "Ana");
    let last = s.sink.commits().pop().unwrap();
    assert!(
        last.members.contains(&"pana".to_owned()),
        "the seat was stored before the welcome: {last:?}"
    );
    assert!(last.snapshot, "a join runs a handler: the state is stored");
    // The same name in another case, or in look-alike letters, is taken.
    assert_eq!(code(s.join("px", "ANA", None).await), ErrorCode::NameTaken);
    assert_eq!(code(s.join("py", "Аna", None).await), ErrorCode::NameTaken);
}

#[tokio::test(start_paused = true)]
async fn a_retried_join_gets_its_seat_back_only_once_the_first_socket_is_gone() {
    let s = start().await;
    let nonce = Some("a-long-enough-nonce");
    Answer::attached(s.join("pbob", "Bob", nonce).await).unwrap();
    // The first socket has not been seen to drop yet.
    let busy = s.join("pbob2", "Bob", nonce).await.unwrap_err();
    assert_eq!(busy.code, ErrorCode::Unavailable);
    assert!(busy.retry_after_ms.is_some());
    let gone = Request::Disconnected {
        member: "pbob".into(),
    };
    s.tx.send(Envelope::Request(gone, Reply::None))
        .await
        .unwrap();
    let again = Answer::attached(s.join("pbob3", "Bob", nonce).await).unwrap();
    assert_eq!(&*again.member, "pbob", "the same seat, not a new one");
    // Another nonce is another person: the name is taken.
    let other = s.join("pbob4", "Bob", Some("another-long-nonce")).await;
    assert_eq!(code(other), ErrorCode::NameTaken);
}

#[tokio::test(start_paused = true)]
async fn a_resume_replays_what_was_missed_or_sends_the_whole_view() {
    let s = start().await;
    let ana = Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    let seen = ana.seq;
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    let back = Answer::attached(s.resume("pana", "secret-pana", seen).await).unwrap();
    let w = welcome(&back);
    assert_eq!(w["resumed"], true);
    assert!(w.get("view").is_none(), "a replay keeps the client's view");
    let replayed: Vec<Json> = back.frames[1..]
        .iter()
        .map(|f| serde_json::from_str(f.as_str()).unwrap())
        .collect();
    assert!(
        replayed.iter().any(|f| f["name"] == "clicked"),
        "{replayed:?}"
    );
    assert!(replayed.iter().all(|f| f["seq"].as_u64().unwrap() > seen));
    // A socket with no view yet (what a retried join resumes with): the
    // whole view, as of the last view pass.
    tokio::time::advance(Duration::from_millis(100)).await;
    tokio::task::yield_now().await;
    let full = Answer::attached(s.resume("pana", "secret-pana", u64::MAX).await).unwrap();
    let w = welcome(&full);
    assert_eq!(w["resumed"], false);
    assert_eq!(w["view"]["clicks"], 1);
    assert_eq!(full.frames.len(), 1);
    // A wrong secret is refused; so is a seat that left.
    let wrong = s.resume("pana", "secret-guess", seen).await;
    assert_eq!(code(wrong), ErrorCode::BadToken);
    let leave = Request::Leave {
        member: "pana".into(),
    };
    s.tx.send(Envelope::Request(leave, Reply::None))
        .await
        .unwrap();
    let left = s.resume("pana", "secret-pana", seen).await;
    assert_eq!(code(left), ErrorCode::BadToken);
    assert!(s.sink.commits().iter().any(|c| c.removed == ["pana"]));
}

#[tokio::test(start_paused = true)]
async fn actions_waiting_together_share_one_commit_and_are_acked_after_it() {
    let s = start().await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    let before = s.sink.commits().len();
    let mut acks = Vec::new();
    for _ in 0..20 {
        let (reply, rx) = Reply::local();
        let click = Request::Action {
            member: "pana".into(),
            name: "click".into(),
            data: json!({}),
        };
        s.tx.send_request(click, reply).await.unwrap();
        acks.push(rx);
    }
    for (i, rx) in acks.into_iter().enumerate() {
        Answer::done(rx.await.unwrap()).unwrap();
        // Acked only once its event is stored.
        assert!(s.events("clicked").len() > i, "ack {i} before its commit");
    }
    let commits = s.sink.commits()[before..].to_vec();
    assert_eq!(commits.len(), 1, "one commit for the batch: {commits:?}");
    let clicked = s.events("clicked");
    assert_eq!(clicked.len(), 20);
    let seqs: Vec<u64> = clicked.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[tokio::test(start_paused = true)]
async fn under_load_commits_keep_the_commit_gap_and_after_a_quiet_spell_do_not_wait() {
    let s = start().await;
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    let commits = s.sink.commits();
    let [.., a, b] = &commits[..] else {
        panic!("two commits: {commits:?}")
    };
    assert!(b.at - a.at >= super::COMMIT_GAP, "{:?} apart", b.at - a.at);
    tokio::time::advance(Duration::from_secs(1)).await;
    let asked = tokio::time::Instant::now();
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    assert_eq!(
        asked.elapsed(),
        Duration::ZERO,
        "a lone action is not delayed"
    );
}

#[tokio::test(start_paused = true)]
async fn timers_fire_when_time_reaches_them() {
    let s = start().await;
    Answer::done(s.act("phost", "later", json!({"ms": 10_000, "n": 1})).await).unwrap();
    tokio::time::advance(Duration::from_millis(9_990)).await;
    // An action's ack follows everything handled before it.
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    assert!(s.events("tick").is_empty(), "fired early");
    tokio::time::advance(Duration::from_millis(20)).await;
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    let ticks = s.events("tick");
    assert_eq!(ticks.len(), 1, "{ticks:?}");
    let at = ticks[0]["data"]["at"].as_i64().unwrap();
    assert!(
        (START_MS + 10_000..START_MS + 10_100).contains(&at),
        "ctx.now() at the tick: {}",
        at - START_MS
    );
}

#[tokio::test(start_paused = true)]
async fn a_kick_is_the_hosts_and_keeps_the_name_out_until_readmitted() {
    let s = start().await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    Answer::attached(s.join("pben", "Ben", None).await).unwrap();
    let by_student = s.act("pben", "kick", json!({"player": "pana"})).await;
    assert_eq!(code(by_student), ErrorCode::Refused);
    Answer::done(s.act("phost", "kick", json!({"player": "pana"})).await).unwrap();
    let kicked = s
        .sink
        .frames()
        .iter()
        .map(|(_, f)| serde_json::from_str::<Json>(f).unwrap())
        .find(|f| f["code"] == "kicked")
        .expect("the kicked player is told");
    assert_eq!(kicked["message"], "the host removed you");
    assert_eq!(
        code(s.resume("pana", "secret-pana", 0).await),
        ErrorCode::BadToken
    );
    assert_eq!(code(s.join("pana2", "ana", None).await), ErrorCode::Kicked);
}

#[tokio::test(start_paused = true)]
async fn a_finished_game_refuses_actions_keeps_its_results_and_expires() {
    let mut s = start().await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    Answer::done(s.act("pana", "click", json!({})).await).unwrap();
    Answer::done(s.act("phost", "finish", json!({})).await).unwrap();
    let ended = s
        .sink
        .frames()
        .iter()
        .map(|(_, f)| serde_json::from_str::<Json>(f).unwrap())
        .find(|f| f["type"] == "ended")
        .expect("everyone is told the game ended");
    assert_eq!(ended["results"]["rows"][0]["clicks"], 1);
    assert_eq!(
        code(s.act("pana", "click", json!({})).await),
        ErrorCode::Ended
    );
    let results = Answer::results(s.ask(Request::Results { host: None }).await).unwrap();
    assert_eq!(results.0.unwrap()["rows"][0]["name"], "Ana");
    assert!(results.1, "the results are final");
    let not_host = s
        .ask(Request::Results {
            host: Some(("pana".into(), "secret-pana".into())),
        })
        .await;
    assert_eq!(code(not_host), ErrorCode::Unauthorized);
    tokio::time::advance(ENDED_TTL - Duration::from_secs(1)).await;
    tokio::task::yield_now().await;
    assert!(!s.run.is_finished(), "expired early");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!((&mut s.run).await.unwrap(), Ended::Expired);
}

const IDLE_TTL: Duration = Duration::from_secs(3600);

impl Session {
    /// The host's socket drops: nobody is connected any more.
    async fn host_gone(&self) {
        let gone = Request::Disconnected {
            member: "phost".into(),
        };
        self.tx
            .send(Envelope::Request(gone, Reply::None))
            .await
            .unwrap();
    }

    async fn advance(&self, by: Duration) {
        tokio::time::advance(by).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_someone_set_holds_an_idle_session_until_idle_ttl_after_it_fires() {
    let mut s = start().await;
    // A homework deadline two idle TTLs away.
    let deadline = 2 * IDLE_TTL;
    let ms = deadline.as_millis() as u64;
    Answer::done(s.act("phost", "later", json!({ "ms": ms, "n": 1 })).await).unwrap();
    s.host_gone().await;
    s.advance(IDLE_TTL + Duration::from_secs(60)).await;
    assert!(!s.run.is_finished(), "expired with a timer waiting");
    s.advance(deadline - IDLE_TTL).await;
    assert_eq!(s.events("tick").len(), 1, "the timer fired");
    s.advance(IDLE_TTL - Duration::from_secs(120)).await;
    assert!(
        !s.run.is_finished(),
        "expired before the TTL after the timer"
    );
    s.advance(Duration::from_secs(120)).await;
    assert_eq!((&mut s.run).await.unwrap(), Ended::Expired);
}

#[tokio::test(start_paused = true)]
async fn a_game_that_ticks_on_with_nobody_there_still_expires() {
    let mut s = start().await;
    let every = json!({ "ms": 60_000, "n": 1, "every": 60_000 });
    Answer::done(s.act("phost", "later", every).await).unwrap();
    s.host_gone().await;
    for _ in 0..5 {
        s.advance(Duration::from_secs(10 * 60)).await;
    }
    assert!(!s.run.is_finished(), "expired early");
    let ticks = s.events("tick").len();
    assert!(ticks >= 5, "the game ticked on: {ticks} ticks");
    s.advance(Duration::from_secs(15 * 60)).await;
    // (bounded: a session kept alive by its own ticks would never end)
    let ended = tokio::time::timeout(IDLE_TTL, &mut s.run).await;
    assert_eq!(ended.expect("still running").unwrap(), Ended::Expired);
}

#[tokio::test(start_paused = true)]
async fn shutdown_commits_last_and_a_relinquished_session_writes_nothing() {
    let s = start().await;
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    s.shutdown.cancel();
    assert_eq!(s.run.await.unwrap(), Ended::Shutdown);

    let s = start().await;
    let commits = s.sink.commits().len();
    s.tx.send(Envelope::Control(Control::Relinquish))
        .await
        .unwrap();
    assert_eq!(s.run.await.unwrap(), Ended::NotOwner);
    assert_eq!(s.sink.commits().len(), commits);
}

#[tokio::test(start_paused = true)]
async fn a_commit_no_store_takes_is_named_and_rewritten_in_full_once_one_does() {
    let s = start().await;
    let not_durable = || {
        s.metrics
            .sessions_not_durable
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    s.sink.fail(true);
    // Degraded, not frozen: the class goes on, and the node says so.
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    assert_eq!(not_durable(), 1);
    // A field only this lost commit wrote.
    Answer::done(s.act("phost", "quiet", json!({})).await).unwrap();
    // The rewrite is retried once a second, not at every turn of the loop.
    for _ in 0..30 {
        tokio::time::advance(Duration::from_millis(100)).await;
        tokio::task::yield_now().await;
    }
    let failures = s.sink.failures();
    assert!((2..=5).contains(&failures), "{failures} attempts in 3 s");
    let stored = s.sink.commits().len();
    s.sink.fail(false);
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    let commits = s.sink.commits();
    assert_eq!(commits.len(), stored + 1);
    let last = commits.last().unwrap();
    assert!(last.full, "what was lost is rewritten: {last:?}");
    let mut fields = last.fields.clone();
    fields.sort();
    assert_eq!(
        fields,
        ["clicks", "quiet"],
        "every field of the state is in the rewrite"
    );
    let clicks: Vec<u64> = s
        .events("clicked")
        .iter()
        .map(|e| e["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(clicks, [1, 2], "the unsaved click is in the rewrite");
    assert_eq!(not_durable(), 0);
}

/// A commit writes the state's fields whose text changed, removes the
/// ones gone, and writes the report only when the rules gave a new one.
#[tokio::test(start_paused = true)]
async fn a_commit_writes_only_the_fields_that_changed() {
    let s = start().await;
    let first = s.sink.commits();
    assert_eq!(
        first[0].fields,
        ["clicks"],
        "the first commit writes the state"
    );
    let last = || s.sink.commits().pop().unwrap();
    Answer::done(s.act("phost", "quiet", json!({})).await).unwrap();
    assert_eq!(last().fields, ["quiet"]);
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    assert_eq!(last().fields, ["clicks"]);
    Answer::done(s.act("phost", "forget", json!({})).await).unwrap();
    let (fields, removed) = (last().fields, last().removed_fields);
    assert!(fields.is_empty(), "{fields:?}");
    assert_eq!(removed, ["quiet"]);
    Answer::done(s.act("phost", "report", json!({})).await).unwrap();
    assert!(last().report && last().fields.is_empty());
    // A refused call leaves the state (and the report) as stored.
    assert!(s.act("phost", "nonsense", json!({})).await.is_err());
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    assert!(!last().report, "the report is written when it changes");
    assert_eq!(last().fields, ["clicks"]);
}

/// Past capacity (the sessions' threads lag), view passes wait longer and
/// carry more changes at once, while each action is still acked at its
/// commit; once the lag is gone, views go out at the base interval again.
/// Ten clicks 50 ms apart, each acked; the view passes they took.
async fn clicks(s: &Session) -> u64 {
    let passes = s.view_passes();
    for _ in 0..10 {
        let acked = s.act("pana", "click", json!({})).await;
        assert!(acked.is_ok(), "every click is acked at its commit");
        tokio::time::advance(Duration::from_millis(50)).await;
        tokio::task::yield_now().await;
    }
    next_pass().await;
    s.view_passes() - passes
}

#[tokio::test(start_paused = true)]
async fn a_lagging_node_coalesces_views_and_still_acks_every_action() {
    let s = start().await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    next_pass().await;
    let at_base = clicks(&s).await;
    assert!(
        at_base >= 9,
        "{at_base} view passes for 10 clicks at the base interval"
    );
    // 200 ms of lag: 450 ms between passes.
    for _ in 0..100 {
        s.pressure.record(Duration::from_millis(202));
    }
    let from = s.sink.messages_from(0).len();
    let lagging = clicks(&s).await;
    assert!(
        lagging <= 2,
        "{lagging} view passes for 10 clicks while lagging"
    );
    // The next pass, at most the stretched interval later, has them all.
    tokio::time::advance(Duration::from_millis(450)).await;
    next_pass().await;
    let last = views_since(&s, from).pop().unwrap();
    assert_eq!(
        last.1["clicks"], 20,
        "the last patch has every click: {last:?}"
    );
    for _ in 0..200 {
        s.pressure.record(Duration::ZERO);
    }
    assert!(clicks(&s).await >= 9, "back to the base interval");
}

#[tokio::test(start_paused = true)]
async fn a_request_that_writes_nothing_does_not_bring_the_rewrite_forward() {
    let s = start().await;
    s.sink.fail(true);
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    // The view pass that follows writes too (and fails).
    tokio::time::advance(Duration::from_millis(100)).await;
    tokio::task::yield_now().await;
    let failed = s.sink.failures();
    // Reads answered at once turn the actor's loop without a write.
    for _ in 0..20 {
        Answer::summary(s.ask(Request::Summary).await).unwrap();
        tokio::time::advance(Duration::from_millis(20)).await;
    }
    assert_eq!(s.sink.failures(), failed, "the rewrite waits for its retry");
}

#[tokio::test(start_paused = true)]
async fn a_call_that_names_whose_screen_changed_redraws_only_them() {
    let s = start().await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    Answer::attached(s.join("pbob", "Bob", None).await).unwrap();
    next_pass().await;
    let from = s.sink.messages_from(0).len();
    Answer::done(s.act("pbob", "mine", json!({})).await).unwrap();
    next_pass().await;
    assert_eq!(
        views_since(&s, from),
        [(vec!["pbob".to_owned()], json!({ "clicks": 1 }))],
        "only Bob's view ran again"
    );
    // By role: the host, whoever it is.
    let from = s.sink.messages_from(0).len();
    Answer::done(s.act("pana", "hosts", json!({})).await).unwrap();
    next_pass().await;
    assert_eq!(
        views_since(&s, from),
        [(vec!["phost".to_owned()], json!({ "clicks": 2 }))]
    );
    // `{}`: nobody's screen changed, so no pass at all.
    let passes = s.view_passes();
    Answer::done(s.act("pana", "quiet", json!({})).await).unwrap();
    next_pass().await;
    assert_eq!(s.view_passes(), passes);
    // A call that names nobody redraws everyone: the screens left out
    // catch up (Ana from 0, Bob from 1, the host from 2: one patch).
    let from = s.sink.messages_from(0).len();
    Answer::done(s.act("phost", "click", json!({})).await).unwrap();
    next_pass().await;
    assert_eq!(
        views_since(&s, from),
        [(
            vec!["phost".to_owned(), "pana".to_owned(), "pbob".to_owned()],
            json!({ "clicks": 3 })
        )]
    );
    // A refused call's redraw is undone with it: nothing is due.
    let passes = s.view_passes();
    assert_eq!(
        code(s.act("pana", "kick", json!({})).await),
        ErrorCode::Refused
    );
    next_pass().await;
    assert_eq!(s.view_passes(), passes);
}

#[tokio::test(start_paused = true)]
async fn checking_redraws_a_screen_left_out_that_changed_is_the_games_error() {
    let s = start_with(true).await;
    Answer::attached(s.join("pana", "Ana", None).await).unwrap();
    next_pass().await;
    let from = s.sink.messages_from(0).len();
    Answer::done(s.act("pana", "mine", json!({})).await).unwrap();
    next_pass().await;
    let errors: Vec<Json> = s.sink.messages_from(0)[from..]
        .iter()
        .map(|m| serde_json::from_str::<Json>(&m.frame).unwrap())
        .filter(|f| f["type"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        errors[0]["message"],
        "probe.lua: ctx.redraw left out Host (host), whose view changed too (field \"clicks\"): name them in ctx.redraw, or call no ctx.redraw and every view is redrawn"
    );
    // What was left out is not sent: the check shows the screen the
    // server would have shown.
    assert_eq!(
        views_since(&s, from),
        [(vec!["pana".to_owned()], json!({ "clicks": 1 }))]
    );
    assert_eq!(
        s.metrics
            .script_errors_total
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
