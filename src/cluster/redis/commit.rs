//! Commits in a cluster: [`RedisBus`] writes a session's batch to Redis and
//! publishes it in one script, then writes the local copy behind.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{RedisCluster, SESSIONS, key};
use crate::cluster::deliver_locally;
use crate::cluster::wire::encode_batch;
use crate::metrics::Metrics;
use crate::session::record::{SessionWrite, encode_message};
use crate::session::{CommitError, CommitSink, Outgoing};

impl RedisCluster {
    /// Runs the `COMMIT` script: checks that this node owns the session,
    /// writes the batch and publishes it, atomically. `Ok(false)`: another
    /// node owns it.
    async fn commit_redis(&self, w: &SessionWrite<'_>) -> Result<bool, redis::RedisError> {
        let sequenced: Vec<&Outgoing> = w.messages.iter().filter(|m| m.seq > 0).collect();
        let payload = if w.messages.is_empty() || w.full {
            // A full rewrite republishes nothing: followers already have it,
            // and clients that missed it resume.
            let fresh: Vec<Outgoing> = w.messages.iter().filter(|m| m.seq == 0).cloned().collect();
            if fresh.is_empty() {
                Vec::new()
            } else {
                encode_batch(&self.node_id, &fresh)
            }
        } else {
            encode_batch(&self.node_id, w.messages)
        };
        let mut inv = self.commit_script.prepare_invoke();
        inv.key(key("owner", w.id))
            .key(key("snap", w.id))
            .key(key("log", w.id))
            .key(key("views", w.id))
            .key(SESSIONS)
            .key(key("code", w.code))
            .key(key("owned", &self.node_id))
            .key(key("members", w.id))
            .key(key("fields", w.id))
            .key(key("report", w.id));
        inv.arg(&self.node_id)
            .arg(0)
            .arg(w.snapshot.as_deref().unwrap_or(b""))
            .arg(self.replay_window.max(1))
            .arg(key("s", w.id))
            .arg(payload)
            .arg(if w.full { "1" } else { "0" })
            .arg(w.id)
            .arg(w.code)
            .arg(sequenced.len());
        for m in &sequenced {
            inv.arg(encode_message(m));
        }
        let views = || w.members.iter().filter(|m| m.view_changed);
        inv.arg(views().count());
        for m in views() {
            inv.arg(m.id).arg(m.view.as_slice());
        }
        let records = || w.members.iter().filter(|m| m.record_changed);
        inv.arg(records().count());
        for m in records() {
            inv.arg(m.id).arg(m.record.as_slice());
        }
        inv.arg(w.removed_members.len());
        for member in &w.removed_members {
            inv.arg(*member);
        }
        inv.arg(w.fields.len());
        for (name, text) in &w.fields {
            inv.arg(&**name).arg(*text);
        }
        inv.arg(w.removed_fields.len());
        for name in &w.removed_fields {
            inv.arg(name);
        }
        inv.arg(w.report.unwrap_or(""));
        let mut con = self.con();
        let result: i64 = inv.invoke_async(&mut con).await?;
        Ok(result == 1)
    }
}

/// The bus of a cluster node.
pub(crate) struct RedisBus {
    pub cluster: Arc<RedisCluster>,
}

impl CommitSink for RedisBus {
    fn commit<'a>(&'a self, write: SessionWrite<'a>) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(async move {
            let c = &self.cluster;
            let redis = c.commit_redis(&write).await;
            // Redis holds the durable copy; the local one (for a restart) is
            // written behind, unless Redis failed and it is all there is.
            let local = match &redis {
                Ok(true) => c.store.commit_behind(&write),
                Ok(false) => Ok(()),
                Err(_) => c.store.commit(&write).await,
            };
            if let Err(e) = &local {
                Metrics::inc(&c.metrics.snapshot_errors_total);
                tracing::error!(session = %write.id, error = %e, "local snapshot write failed");
            } else {
                Metrics::inc(&c.metrics.snapshot_writes_total);
            }
            match redis {
                Ok(true) => {
                    c.mark(true);
                    deliver_locally(&c.fanout, &c.metrics, &write);
                    Ok(())
                }
                Ok(false) => Err(CommitError::NotOwner),
                Err(e) => {
                    // Redis is away: the session keeps running here on the
                    // local store; the next commit after it is back rewrites
                    // the Redis copy in full.
                    c.mark(false);
                    deliver_locally(&c.fanout, &c.metrics, &write);
                    match local {
                        Ok(()) => Err(CommitError::Lagging(format!("redis: {e}"))),
                        Err(local) => Err(CommitError::NotDurable(format!(
                            "redis: {e}; local store: {local}"
                        ))),
                    }
                }
            }
        })
    }
}
