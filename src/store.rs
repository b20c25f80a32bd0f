//! The local snapshot store (sled): every session this node owns, so a node
//! that restarts (even after `kill -9`) resumes its sessions.
//!
//! One tree, four kinds of keys (and one read for older stores), written
//! together in one atomic batch and flushed before the owner acknowledges
//! anything:
//! - `s\0{session}` → the session snapshot (JSON [`SessionSnapshot`]):
//!   timers, counters, the names of the state's fields; rewritten only when
//!   a handler ran (or the rules or the session's activity time changed),
//!   not for every message;
//! - `f\0{session}\0{field}` → one top-level field of the game state (JSON),
//!   written when its text changed; older snapshots hold the whole state;
//! - `f\0{session}` → the results of the last `ctx.report` (JSON), written
//!   when they change (beside the session's fields, in the same leaves);
//! - `p\0{session}\0{member}` → one member: its record ([`MemberRecord`]),
//!   a newline, and the view it last received (both JSON; compact JSON has
//!   no raw newline), written when either changes, removed when it goes;
//! - `m\0{session}\0{seq:be64}` → one message of the replay window;
//! - `v\0{session}\0{member}` → a member's view in stores written before
//!   the view moved into the member's value: read, and removed with the
//!   member, never written.
//!
//! A leaf of sled's tree holds up to 16 keys, and every tenth write to a
//! leaf writes all of it to the log again (past 128 KB, as a file of its
//! own): with the whole state in the snapshot, 16 snapshots of 20 KB shared
//! a leaf and every answer of a quiz wrote the state again. Fields are
//! small, and those that rarely change (the questions, the scores) are
//! written when they do.
//!
//! One key per member rather than two halves what sled keeps per member
//! (each key costs a slot in a leaf of at most 16, and leaves are copied on
//! every write): about 0.6 KB per member at 8000 members.
//!
//! A session's `seq` is the highest of the snapshot's and its messages': a
//! batch of messages alone (a REST broadcast) does not rewrite the snapshot.
//!
//! Architecture Invariant: the store never interprets game state; it keeps
//! bytes the session actor gave it.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::session::record::{CorruptMessage, decode_message, encode_message};
use crate::session::record::{
    MemberRecord, SessionSnapshot, SessionWrite, StoredParts, StoredSession,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("the store writer: {0}")]
    Writer(String),
}

impl From<CorruptMessage> for StoreError {
    fn from(_: CorruptMessage) -> Self {
        StoreError::Corrupt("replay message".to_owned())
    }
}

/// Work for the writer thread, and who waits for it.
struct Job {
    work: Work,
    /// `None`: nobody waits, so the writes are held back (`HOLD_BEHIND`)
    /// and need not be flushed at once.
    done: Option<Done>,
}

/// Where the writer thread sends a job's outcome.
type Done = tokio::sync::oneshot::Sender<Result<(), StoreError>>;

/// How often sled flushes by itself what was written without waiting.
const FLUSH_EVERY_MS: u64 = 500;

/// Epoch collections the writer thread runs after each group of writes.
///
/// Every write into a sled 0.34 tree replaces a node with a modified copy,
/// and the old one is freed through crossbeam-epoch's global collector, which
/// frees at most 8 bags of 64 objects each time some thread pins 128 times.
/// After a burst of writes (a class joining) the replaced nodes wait there,
/// and with them pages of the allocator: 6 MB at 8000 members
/// (docs/performance.md, fifth round). Each flush here seals this thread's
/// bag, advances the epoch if no thread is pinned behind it, and frees up
/// to 8 expired bags.
const EPOCH_FLUSHES: usize = 4;

/// How long the writer holds back writes nobody waits for (a cluster node's
/// local copy), taking later writes of the same keys in their place: a quiz
/// session commits several times in this time, and its snapshot, fields and
/// host record are written once. They reach the disk within this and
/// `FLUSH_EVERY_MS` more.
const HOLD_BEHIND: Duration = Duration::from_millis(FLUSH_EVERY_MS);

enum Work {
    /// One commit's writes: applied at once (after what is held back) when
    /// someone waits, else held back and merged with the writes held before.
    Write(Writes),
    Delete(String),
}

/// One commit's writes in order: a key set to a value, or removed (`None`).
/// A list rather than a `sled::Batch`, which cannot be read back, so that
/// the writer can merge it into what it holds.
#[derive(Default)]
struct Writes(Vec<(sled::IVec, Option<sled::IVec>)>);

impl Writes {
    fn put(&mut self, key: Vec<u8>, value: impl Into<sled::IVec>) {
        self.0.push((key.into(), Some(value.into())));
    }

    fn remove(&mut self, key: Vec<u8>) {
        self.0.push((key.into(), None));
    }

    /// Into `batch`, where a later write of a key replaces an earlier one.
    fn into_batch(self, batch: &mut sled::Batch) {
        for (key, value) in self.0 {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct Store {
    db: sled::Db,
    /// All writes go through one thread that applies every batch waiting and
    /// flushes once for the group (group commit). Writing and flushing from
    /// many tokio workers at once (`apply_batch` + `flush_async`) deadlocked
    /// sled 0.34 under load, and blocked the runtime's workers.
    writer: std::sync::mpsc::Sender<Job>,
}

fn key(kind: u8, session: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(session.len() + 12);
    k.push(kind);
    k.push(0);
    k.extend_from_slice(session.as_bytes());
    k.push(0);
    k
}

impl Store {
    pub(crate) fn open(path: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .open()?;
        let (writer, jobs) = std::sync::mpsc::channel::<Job>();
        let db2 = db.clone();
        std::thread::Builder::new()
            .name("recess-store".into())
            .spawn(move || write_loop(&db2, &jobs))
            .map_err(|e| StoreError::Writer(format!("cannot start: {e}")))?;
        Ok(Store { db, writer })
    }

    /// Hands work to the writer thread and waits until it is on disk.
    async fn write(&self, work: Work) -> Result<(), StoreError> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.queue(work, Some(done))?;
        wait.await
            .map_err(|_| StoreError::Writer("stopped".into()))?
    }

    fn queue(&self, work: Work, done: Option<Done>) -> Result<(), StoreError> {
        self.writer
            .send(Job { work, done })
            .map_err(|_| StoreError::Writer("stopped".into()))
    }

    /// Writes one commit atomically (after every write queued before it) and
    /// waits until it is on disk.
    pub(crate) async fn commit(&self, w: &SessionWrite<'_>) -> Result<(), StoreError> {
        self.write(Work::Write(Self::writes_of(w))).await
    }

    /// Queues one commit without waiting for it: for a cluster node, whose
    /// durable copy is in Redis and whose local copy only speeds up a
    /// restart. The writer holds it back up to `HOLD_BEHIND`, with later
    /// writes of the same keys taking its place, and applies what it holds
    /// as one atomic batch (so the disk has the sessions as some commit left
    /// them) before any write that is waited for; it is on disk within
    /// `HOLD_BEHIND` and `FLUSH_EVERY_MS` more, or at [`Store::settle`].
    pub(crate) fn commit_behind(&self, w: &SessionWrite<'_>) -> Result<(), StoreError> {
        self.queue(Work::Write(Self::writes_of(w)), None)
    }

    /// Waits until everything queued before is on disk, held-back writes
    /// too: for a node that stops.
    pub(crate) async fn settle(&self) -> Result<(), StoreError> {
        self.write(Work::Write(Writes::default())).await
    }

    fn writes_of(w: &SessionWrite<'_>) -> Writes {
        let mut batch = Writes::default();
        if let Some(snapshot) = &w.snapshot {
            let mut skey = key(b's', w.id);
            skey.pop();
            batch.put(skey, snapshot.as_slice());
        }
        let fprefix = key(b'f', w.id);
        let keyed = |prefix: &[u8], name: &str| [prefix, name.as_bytes()].concat();
        for (name, text) in &w.fields {
            batch.put(keyed(&fprefix, name), text.as_bytes());
        }
        for name in &w.removed_fields {
            batch.remove(keyed(&fprefix, name));
        }
        if let Some(report) = w.report {
            let mut rkey = key(b'f', w.id);
            rkey.pop();
            batch.put(rkey, report.as_bytes());
        }
        let mprefix = key(b'm', w.id);
        // Messages of one `seq` for different audiences (the `ended` of a
        // game with private columns) come together: the second one's key
        // gets a byte more, so it sorts after the first and before `seq + 1`.
        let mut previous = 0;
        for m in w.messages.iter().filter(|m| m.seq > 0) {
            let mut k = mprefix.clone();
            k.extend_from_slice(&m.seq.to_be_bytes());
            if m.seq == previous {
                k.push(1);
            }
            previous = m.seq;
            batch.put(k, encode_message(m));
        }
        for seq in &w.evicted {
            let mut k = mprefix.clone();
            k.extend_from_slice(&seq.to_be_bytes());
            batch.remove(k.clone());
            k.push(1);
            batch.remove(k);
        }
        let vprefix = key(b'v', w.id);
        let pprefix = key(b'p', w.id);
        for m in &w.members {
            batch.put(
                keyed(&pprefix, m.id),
                [&m.record[..], b"\n", &m.view].concat(),
            );
        }
        for member in &w.removed_members {
            batch.remove(keyed(&vprefix, member));
            batch.remove(keyed(&pprefix, member));
        }
        batch
    }

    /// Removes everything of a session.
    pub(crate) async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.write(Work::Delete(id.to_owned())).await
    }

    /// Reads every stored session. A corrupt one is logged and skipped.
    pub(crate) fn load_all(&self) -> Result<Vec<StoredSession>, StoreError> {
        let mut out = Vec::new();
        for entry in self.db.scan_prefix([b's', 0]) {
            let (_, value) = entry?;
            let snapshot: SessionSnapshot<'static> = match serde_json::from_slice(&value) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "skipping a corrupt session snapshot");
                    continue;
                }
            };
            let id = snapshot.id.clone();
            match self
                .parts_of(&id)
                .map(|p| StoredSession::assemble(snapshot, p))
            {
                Ok(Ok(session)) => out.push(session),
                Ok(Err(e)) => {
                    tracing::error!(session = %id, "skipping a corrupt stored session: {e}")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The records of one session besides its snapshot.
    fn parts_of(&self, id: &str) -> Result<StoredParts, StoreError> {
        let mut parts = StoredParts::default();
        let text = |what: &str, value: &[u8]| {
            String::from_utf8(value.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("{what} is not UTF-8")))
        };
        let fprefix = key(b'f', id);
        for entry in self.db.scan_prefix(&fprefix) {
            let (k, value) = entry?;
            let name = text("a state field's name", &k[fprefix.len()..])?;
            let value = text("a state field", &value)?;
            parts.fields.insert(name, value);
        }
        let mut rkey = key(b'f', id);
        rkey.pop();
        if let Some(report) = self.db.get(&rkey)? {
            parts.report = Some(text("the report", &report)?);
        }
        for entry in self.db.scan_prefix(key(b'm', id)) {
            let (_, value) = entry?;
            parts.messages.push(decode_message(&value)?);
        }
        // Views of older stores first: a view in the member's value wins.
        let vprefix = key(b'v', id);
        for entry in self.db.scan_prefix(&vprefix) {
            let (k, value) = entry?;
            let member = String::from_utf8_lossy(&k[vprefix.len()..]).into_owned();
            parts
                .views
                .push((member.clone(), parse_view(&member, &value)?));
        }
        for entry in self.db.scan_prefix(key(b'p', id)) {
            let (_, value) = entry?;
            let (record, view) = match value.iter().position(|&b| b == b'\n') {
                Some(at) => (&value[..at], Some(&value[at + 1..])),
                None => (&value[..], None),
            };
            let record: MemberRecord = serde_json::from_slice(record)
                .map_err(|e| StoreError::Corrupt(format!("member record: {e}")))?;
            if let Some(view) = view {
                parts
                    .views
                    .push((record.id.clone(), parse_view(&record.id, view)?));
            }
            parts.members.push(record);
        }
        Ok(parts)
    }
}

fn parse_view(member: &str, bytes: &[u8]) -> Result<Json, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("view of {member}: {e}")))
}

/// The writer thread: applies every waiting job, then one flush for all;
/// holds back the writes nobody waits for (`Held`) until they are due or a
/// job that is waited for comes.
fn write_loop(db: &sled::Db, jobs: &std::sync::mpsc::Receiver<Job>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut held = Held::default();
    loop {
        let first = match held.due() {
            None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => jobs.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let first = match first {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                held.apply(db);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while let Ok(more) = jobs.try_recv() {
            group.push(more);
        }
        let mut results: Vec<Result<(), StoreError>> = group
            .iter_mut()
            .map(|job| {
                let work = std::mem::replace(&mut job.work, Work::Write(Writes::default()));
                match work {
                    Work::Write(writes) if job.done.is_none() => {
                        held.take(writes);
                        Ok(())
                    }
                    // What was held back goes first: writes keep their order.
                    Work::Write(writes) => {
                        held.apply(db);
                        let mut batch = sled::Batch::default();
                        writes.into_batch(&mut batch);
                        db.apply_batch(batch).map_err(StoreError::from)
                    }
                    Work::Delete(id) => {
                        held.apply(db);
                        delete_batch(db, &id).and_then(|b| Ok(db.apply_batch(b)?))
                    }
                }
            })
            .collect();
        if held.due().is_some_and(|at| at <= Instant::now()) {
            held.apply(db);
        }
        let waited = group.iter().any(|job| job.done.is_some());
        if waited && let Err(e) = db.flush() {
            let message = e.to_string();
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(StoreError::Writer(format!("flush failed: {message}")));
            }
        }
        for _ in 0..EPOCH_FLUSHES {
            crossbeam_epoch::pin().flush();
        }
        for (job, result) in group.into_iter().zip(results) {
            if let Some(done) = job.done {
                let _ = done.send(result);
            }
        }
    }
    held.apply(db);
    if let Err(e) = db.flush() {
        tracing::error!(error = %e, "local copy of sessions not flushed at the end");
    }
}

/// Writes nobody waits for, held back by the writer thread: one batch in
/// which a later write of a key replaces an earlier one.
#[derive(Default)]
struct Held {
    batch: sled::Batch,
    /// When the oldest write held came.
    since: Option<Instant>,
}

impl Held {
    fn take(&mut self, writes: Writes) {
        writes.into_batch(&mut self.batch);
        self.since.get_or_insert_with(Instant::now);
    }

    /// When what is held is to be applied.
    fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + HOLD_BEHIND)
    }

    /// Applies what is held, if anything; an error is logged (nobody waits).
    fn apply(&mut self, db: &sled::Db) {
        if self.since.take().is_none() {
            return;
        }
        if let Err(e) = db.apply_batch(std::mem::take(&mut self.batch)) {
            tracing::error!(error = %e, "local copy of sessions not written");
        }
    }
}

fn delete_batch(db: &sled::Db, id: &str) -> Result<sled::Batch, StoreError> {
    let mut batch = sled::Batch::default();
    for kind in [b's', b'f'] {
        let mut k = key(kind, id);
        k.pop();
        batch.remove(k);
    }
    for prefix in [key(b'm', id), key(b'v', id), key(b'p', id), key(b'f', id)] {
        for entry in db.scan_prefix(prefix) {
            let (k, _) = entry?;
            batch.remove(k);
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::protocol::Role;
    use crate::script::VmCounters;
    use crate::session::record::MemberWrite;
    use crate::session::{Audience, Outgoing};

    fn snapshot(seq: u64, members: Vec<MemberRecord>) -> SessionSnapshot<'static> {
        SessionSnapshot {
            id: "s1".into(),
            code: "ABCD".into(),
            game: "chat".into(),
            rules_version: "v".into(),
            seq,
            state: Some(std::borrow::Cow::Owned(
                serde_json::value::RawValue::from_string(r#"{"n":1}"#.to_owned()).unwrap(),
            )),
            fields: None,
            members,
            timers: Vec::new(),
            counters: VmCounters {
                rng: 1,
                next_timer: 0,
            },
            ended: None,
            created_ms: 0,
            active_ms: 0,
            removed_names: Vec::new(),
            names: Default::default(),
            name_seed: 0,
            report: None,
            report_apart: false,
            hooks: Default::default(),
        }
    }

    fn member(id: &str, order: u64) -> MemberRecord {
        MemberRecord {
            id: id.into(),
            name: id.to_uppercase(),
            real_name: None,
            role: Role::Player,
            secret: "x".into(),
            joined_seq: 0,
            welcomed: true,
            join_nonce: None,
            order,
        }
    }

    fn event(seq: u64) -> Outgoing {
        Outgoing {
            seq,
            audience: Audience::All,
            frame: format!(r#"{{"seq":{seq}}}"#).into(),
            revoke: false,
        }
    }

    /// Members have records of their own, and messages written without a
    /// snapshot (a REST broadcast) still count: the session's `seq` is the
    /// newest message's.
    #[tokio::test]
    async fn members_and_messages_written_without_a_snapshot_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id: crate::session::SessionId = "s1".into();
        let first = [event(1)];
        let records = [member("pb", 1), member("pa", 0), member("pc", 2)];
        store
            .commit(&write(
                &id,
                Some(1),
                &first,
                records
                    .iter()
                    .map(|m| member_write(m, serde_json::json!({"me": m.id})))
                    .collect(),
                Vec::new(),
            ))
            .await
            .unwrap();
        // A batch of messages alone, and a member leaving.
        let later = [event(2), event(3)];
        store
            .commit(&write(&id, None, &later, Vec::new(), vec!["pc"]))
            .await
            .unwrap();
        let stored = store.load_all().unwrap();
        assert_eq!(stored.len(), 1);
        let s = &stored[0];
        assert_eq!(s.snapshot.seq, 1);
        assert_eq!(s.seq(), 3);
        assert_eq!(s.messages.len(), 3);
        let ids: Vec<&str> = s.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["pa", "pb"], "join order, without the one who left");
        let mut views = s.views.clone();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            views,
            [
                ("pa".to_owned(), serde_json::json!({"me": "pa"})),
                ("pb".to_owned(), serde_json::json!({"me": "pb"}))
            ]
        );
    }

    fn member_write(m: &MemberRecord, view: Json) -> MemberWrite<'_> {
        MemberWrite {
            id: &m.id,
            record: serde_json::to_vec(m).unwrap(),
            record_changed: true,
            view: serde_json::to_vec(&view).unwrap(),
            view_changed: true,
        }
    }

    /// A commit of session `s1`: a snapshot at `snapshot_seq` (or none),
    /// `messages`, members written and members removed.
    fn write<'a>(
        session: &'a crate::session::SessionId,
        snapshot_seq: Option<u64>,
        messages: &'a [Outgoing],
        members: Vec<MemberWrite<'a>>,
        removed_members: Vec<&'a str>,
    ) -> SessionWrite<'a> {
        SessionWrite {
            id: "s1",
            session,
            code: "ABCD",
            snapshot: snapshot_seq
                .map(|seq| serde_json::to_vec(&snapshot(seq, Vec::new())).unwrap()),
            fields: Vec::new(),
            removed_fields: Vec::new(),
            report: None,
            full: false,
            messages,
            evicted: Vec::new(),
            members,
            removed_members,
            hooks: &[],
        }
    }

    /// A store written when a member's view had a key of its own (`v`):
    /// the view is read, a newer one in the member's value wins, and both
    /// go when the member leaves.
    #[tokio::test]
    async fn views_under_keys_of_their_own_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id: crate::session::SessionId = "s1".into();
        let (old, newer) = (member("po", 0), member("pn", 1));
        store
            .commit(&write(
                &id,
                Some(1),
                &[],
                vec![member_write(&newer, serde_json::json!({"v": "newer"}))],
                Vec::new(),
            ))
            .await
            .unwrap();
        // What the previous layout wrote: the record alone, the view apart.
        let legacy = |kind: u8, m: &str| [key(kind, "s1"), m.as_bytes().to_vec()].concat();
        let db = &store.db;
        db.insert(legacy(b'p', "po"), serde_json::to_vec(&old).unwrap())
            .unwrap();
        db.insert(legacy(b'v', "po"), &br#"{"v":"old"}"#[..])
            .unwrap();
        db.insert(legacy(b'v', "pn"), &br#"{"v":"stale"}"#[..])
            .unwrap();
        let stored = store.load_all().unwrap();
        // Later entries win, as when a session is restored.
        let views: HashMap<String, Json> = stored[0].views.iter().cloned().collect();
        assert_eq!(views["po"], serde_json::json!({"v": "old"}));
        assert_eq!(views["pn"], serde_json::json!({"v": "newer"}));
        let ids: Vec<&str> = stored[0].members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["po", "pn"]);

        store
            .commit(&write(&id, None, &[], Vec::new(), vec!["po", "pn"]))
            .await
            .unwrap();
        let left: Vec<_> = db.scan_prefix(key(b'v', "s1")).collect();
        assert!(
            left.is_empty(),
            "the old layout's views go with their members"
        );
        assert!(store.load_all().unwrap()[0].members.is_empty());
    }

    /// A write behind (a cluster node's local copy) is applied in order with
    /// the writes that wait.
    #[tokio::test]
    async fn writes_behind_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id: crate::session::SessionId = "s1".into();
        let (first, second) = ([event(1)], [event(2)]);
        let at = |seq, messages| write(&id, Some(seq), messages, Vec::new(), Vec::new());
        store.commit_behind(&at(1, &first)).unwrap();
        store.commit(&at(2, &second)).await.unwrap();
        let stored = store.load_all().unwrap();
        assert_eq!(stored[0].snapshot.seq, 2);
        let seqs: Vec<u64> = stored[0].messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2]);
    }

    /// Writes behind are held back and merged (a later snapshot replaces
    /// the earlier one, a removal the member written before it); `settle`
    /// puts them on disk.
    #[tokio::test]
    async fn writes_held_back_are_merged_and_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id: crate::session::SessionId = "s1".into();
        let (first, second) = ([event(1)], [event(2)]);
        let pa = member("pa", 0);
        let joined = vec![member_write(&pa, serde_json::json!({}))];
        store
            .commit_behind(&write(&id, Some(1), &first, joined, Vec::new()))
            .unwrap();
        store
            .commit_behind(&write(&id, Some(2), &second, Vec::new(), vec!["pa"]))
            .unwrap();
        store.settle().await.unwrap();
        let stored = store.load_all().unwrap();
        assert_eq!(stored[0].snapshot.seq, 2);
        let seqs: Vec<u64> = stored[0].messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [1, 2]);
        assert!(
            stored[0].members.is_empty(),
            "the removal came after the join"
        );
    }

    /// A snapshot written before member records had keys of their own.
    #[test]
    fn members_inside_an_old_snapshot_are_read() {
        let old = snapshot(5, vec![member("pz", 0), member("py", 0)]);
        let text = serde_json::to_vec(&old).unwrap();
        let back: SessionSnapshot<'static> = serde_json::from_slice(&text).unwrap();
        let s = StoredSession::assemble(back, StoredParts::default()).unwrap();
        let ids: Vec<&str> = s.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["pz", "py"]);
        assert_eq!(s.seq(), 5);
        assert!(s.snapshot.members.is_empty());
    }

    /// A state kept as fields and a report kept apart: a later commit
    /// writes one field and removes another, and what is read back is the
    /// state as the last snapshot names it. A field the snapshot names but
    /// the store lacks makes that session unreadable, not another state.
    #[tokio::test]
    async fn a_state_kept_as_fields_is_put_back_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let id: crate::session::SessionId = "s1".into();
        let split = |seq, fields: &[&str], report: bool| {
            let mut s = snapshot(seq, Vec::new());
            s.state = None;
            s.fields = Some(fields.iter().map(|f| (*f).to_owned().into()).collect());
            s.report_apart = report;
            serde_json::to_vec(&s).unwrap()
        };
        let mut first = write(&id, None, &[], Vec::new(), Vec::new());
        first.snapshot = Some(split(1, &["a", "b\"", "c"], true));
        first.fields = vec![
            ("a".into(), "1"),
            ("b\"".into(), r#"{"x":[2]}"#),
            ("c".into(), "3"),
        ];
        first.report = Some(r#"{"rows":[]}"#);
        store.commit(&first).await.unwrap();
        let mut second = write(&id, None, &[], Vec::new(), Vec::new());
        second.snapshot = Some(split(2, &["c", "a"], true));
        second.fields = vec![("c".into(), r#""three""#)];
        second.removed_fields = vec!["b\"".to_owned()];
        store.commit(&second).await.unwrap();

        let stored = store.load_all().unwrap();
        let s = &stored[0].snapshot;
        assert_eq!(s.state.as_ref().unwrap().get(), r#"{"c":"three","a":1}"#);
        assert_eq!(s.report.as_ref().unwrap().get(), r#"{"rows":[]}"#);
        assert!(!s.report_apart && s.fields.is_none());
        let left: Vec<_> = store.db.scan_prefix(key(b'f', "s1")).collect();
        assert_eq!(left.len(), 2, "the removed field is gone");

        let mut broken = write(&id, None, &[], Vec::new(), Vec::new());
        broken.snapshot = Some(split(3, &["c", "gone"], false));
        store.commit(&broken).await.unwrap();
        assert!(store.load_all().unwrap().is_empty());
        store.delete("s1").await.unwrap();
        assert_eq!(store.db.len(), 0, "a deleted session leaves no key");
    }

    #[test]
    fn messages_round_trip() {
        for audience in [
            Audience::All,
            Audience::Members(vec!["pa".into(), "pbb".into()]),
        ] {
            let m = Outgoing {
                seq: 42,
                audience: audience.clone(),
                frame: r#"{"type":"event"}"#.into(),
                revoke: true,
            };
            let back = decode_message(&encode_message(&m)).unwrap();
            assert_eq!(back.seq, 42);
            assert_eq!(back.audience, audience);
            assert_eq!(back.frame.as_str(), m.frame.as_str());
            assert!(back.revoke);
        }
        assert!(decode_message(&[1, 2, 3]).is_err());
    }
}
