//! The heartbeat: a thread of its own, with its own blocking Redis
//! connection, renews this node's `alive:{instance}` key, so no amount of
//! work on the runtime delays a beat. It stops beating when the runtime has
//! made no progress for `RUNTIME_STALL` (a hung node, whose sessions other
//! nodes should take), and tells the node when its heartbeat had lapsed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::Script;
use tokio::sync::oneshot;

use super::{HEARTBEAT_TTL, INSTANCES, RedisCluster, key, scripts};

/// How often the heartbeat thread renews the heartbeat.
const BEAT_EVERY: Duration = Duration::from_millis(500);
/// A runtime that has not ticked for this long is hung, not busy: the
/// heartbeat stops, so other nodes take its sessions over.
const RUNTIME_STALL: Duration = Duration::from_secs(10);

/// The outcome of the heartbeat thread's first beat.
pub(super) type FirstBeat = oneshot::Receiver<redis::RedisResult<()>>;

/// The handle of the heartbeat thread.
pub(super) struct Heartbeat {
    /// `Some(())` asks the thread to end the heartbeat (graceful leave);
    /// dropping the sender just stops it.
    stop: std::sync::mpsc::Sender<()>,
    done: Option<oneshot::Receiver<()>>,
}

impl RedisCluster {
    /// Starts the heartbeat thread: a plain thread with its own blocking
    /// Redis connection, so no amount of work on the runtime delays a beat.
    /// The receiver yields the outcome of its first beat.
    pub(super) fn spawn_heartbeat(
        &self,
        client: redis::Client,
    ) -> Result<(Heartbeat, FirstBeat), redis::RedisError> {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (first_tx, first_beat) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let instance = self.node_id.clone();
        let lapsed = self.lapsed.clone();
        let tick = self.runtime_tick.clone();
        let started = self.started;
        std::thread::Builder::new()
            .name("recess-heartbeat".into())
            .spawn(move || {
                let beat = Script::new(scripts::HEARTBEAT);
                let alive = key("alive", &instance);
                let mut con: Option<redis::Connection> = None;
                let mut stalled = false;
                let mut first = Some(first_tx);
                loop {
                    let now = started.elapsed().as_millis() as u64;
                    let last = tick.load(Ordering::Relaxed);
                    if now.saturating_sub(last) > RUNTIME_STALL.as_millis() as u64 {
                        if !stalled {
                            tracing::error!(
                                "the runtime has made no progress for {}s; no more heartbeats, so other nodes take this node's sessions over",
                                RUNTIME_STALL.as_secs()
                            );
                        }
                        stalled = true;
                    } else {
                        stalled = false;
                        let beaten = match connected(&mut con, &client) {
                            Some(c) => beat
                                .key(&alive)
                                .key(INSTANCES)
                                .arg(&instance)
                                .arg(HEARTBEAT_TTL.as_millis() as u64)
                                .invoke::<i64>(c),
                            None => Err(redis::RedisError::from(std::io::Error::other(
                                "cannot connect to Redis",
                            ))),
                        };
                        if let Some(first) = first.take() {
                            // A fresh start always reports a (re)start.
                            let _ = first.send(beaten.as_ref().map(|_| ()).map_err(Clone::clone));
                        } else if matches!(beaten, Ok(2)) {
                            tracing::warn!("this node's heartbeat had lapsed; checking which sessions are still its own");
                            lapsed.notify_one();
                        }
                        if let Err(e) = beaten {
                            tracing::debug!(error = %e, "heartbeat failed");
                            con = None;
                        }
                    }
                    match stopped.recv_timeout(BEAT_EVERY) {
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                        Ok(()) => {
                            if let Some(c) = connected(&mut con, &client) {
                                end_heartbeat(c, &instance);
                            }
                            break;
                        }
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| {
                redis::RedisError::from(std::io::Error::other(format!(
                    "cannot start the heartbeat thread: {e}"
                )))
            })?;
        Ok((
            Heartbeat {
                stop,
                done: Some(done),
            },
            first_beat,
        ))
    }

    /// Leaves the cluster (graceful shutdown, after every session was given
    /// up): puts the local copy's held-back writes on disk, ends the
    /// heartbeat and forgets this instance.
    pub(super) async fn leave(&self) {
        if let Err(e) = self.store.settle().await {
            tracing::error!(error = %e, "local copy of sessions not written at the end");
        }
        let heartbeat = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut h) = heartbeat {
            let _ = h.stop.send(());
            if let Some(done) = h.done.take() {
                let _ = tokio::time::timeout(Duration::from_secs(3), done).await;
            }
        }
    }
}

/// A blocking connection for the heartbeat thread, with short timeouts so a
/// beat never waits long on a Redis that went away.
fn connect_blocking(client: &redis::Client) -> Option<redis::Connection> {
    let con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    Some(con)
}

/// The heartbeat thread's connection, made first if there is none (or the
/// last one failed).
fn connected<'a>(
    con: &'a mut Option<redis::Connection>,
    client: &redis::Client,
) -> Option<&'a mut redis::Connection> {
    if con.is_none() {
        *con = connect_blocking(client);
    }
    con.as_mut()
}

/// Ends this instance's heartbeat at once (graceful leave) and forgets the
/// instance if it owns nothing any more.
fn end_heartbeat(con: &mut redis::Connection, instance: &str) {
    let _: Result<i64, _> = redis::cmd("DEL").arg(key("alive", instance)).query(con);
    let _: Result<i64, _> = Script::new(scripts::FORGET_INSTANCE)
        .key(key("alive", instance))
        .key(key("owned", instance))
        .key(INSTANCES)
        .arg(instance)
        .invoke(con);
}
