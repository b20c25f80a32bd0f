//! Counters for `/metrics`, in the Prometheus text format.
//!
//! Plain atomics: an increment on the hot path costs one relaxed add.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! metrics {
    ($( $field:ident : $kind:literal, $help:literal; )*) => {
        #[derive(Debug, Default)]
        pub(crate) struct Metrics {
            $( pub(crate) $field: AtomicU64, )*
        }

        impl Metrics {
            /// The value of the metric called `name` (without `recess_`).
            pub(crate) fn value(&self, name: &str) -> Option<u64> {
                match name {
                    $( stringify!($field) => Some(self.$field.load(Ordering::Relaxed)), )*
                    _ => None,
                }
            }

            /// The text `/metrics` serves.
            pub(crate) fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let _ = writeln!(out, "# HELP recess_{} {}", stringify!($field), $help);
                    let _ = writeln!(out, "# TYPE recess_{} {}", stringify!($field), $kind);
                    let _ = writeln!(out, "recess_{} {}", stringify!($field), self.$field.load(Ordering::Relaxed));
                )*
                out
            }
        }
    };
}

metrics! {
    connections_open: "gauge", "WebSocket connections open now.";
    connections_total: "counter", "WebSocket connections accepted.";
    sessions_live: "gauge", "Sessions owned by this node now.";
    sessions_not_durable: "gauge", "Sessions whose last commit no store took (degraded: they go on in memory).";
    sessions_created_total: "counter", "Sessions created on this node.";
    frames_in_total: "counter", "Client frames received.";
    frames_bad_total: "counter", "Client frames answered with a protocol error.";
    messages_total: "counter", "Sequenced session messages produced by owners on this node.";
    deliveries_total: "counter", "Frames handed to sockets on this node.";
    actions_total: "counter", "Action handlers run.";
    script_errors_total: "counter", "Handler calls that raised an error (state rolled back).";
    view_passes_total: "counter", "View passes run.";
    snapshot_writes_total: "counter", "Snapshot commits to the local store.";
    snapshot_errors_total: "counter", "Snapshot commits that failed.";
    stored_bytes_total: "counter", "Bytes of session records commits handed to the stores (snapshots, game state, members and their views, messages).";
    state_bytes_total: "counter", "Of those, bytes of game state.";
    slow_consumers_total: "counter", "Sockets closed because they could not keep up.";
    join_failures_total: "counter", "Joins refused for an unknown code.";
    rate_limited_total: "counter", "Client frames and joins refused by a rate limit.";
    webhooks_delivered_total: "counter", "Webhooks a receiver took (2xx), counted per receiver.";
    webhook_failures_total: "counter", "Webhook posts that failed (no answer, or not 2xx); each is retried.";
    webhooks_given_up_total: "counter", "Webhooks given up for a receiver after --webhook-give-up-min of retries.";
    busy_refusals_total: "counter", "Forwarded requests refused because their session's queue was full.";
    pushes_lost_total: "counter", "Times the Redis push dispatcher fell behind and pushes were lost (followers resume).";
    accept_errors_total: "counter", "Failed accepts (e.g. out of file descriptors).";
    view_interval_ms: "gauge", "The sessions' view interval now: --view-interval-ms, longer while the node is past capacity.";
    coalescing_for_load: "gauge", "1 while views wait longer than --view-interval-ms because the sessions' threads are behind.";
    connections_max: "gauge", "Connections this node serves at once (--max-connections, fitted to the open-file limit).";
}

impl Metrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
