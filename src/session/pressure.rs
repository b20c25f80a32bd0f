//! How far behind the sessions' threads are, and so how long view passes
//! wait: past capacity, views coalesce more instead of acks queueing behind
//! view passes.
//!
//! A probe on the sessions' runtime asks to wake every [`PROBE_EVERY`] and
//! notes how late it woke (the time a ready session waits for a thread, at
//! that moment). The smoothed lateness stretches every session's view
//! interval: `--view-interval-ms` plus [`STRETCH`] times the lag, at most
//! `--view-interval-max-ms`. On a node with room to spare the lag is a
//! fraction of a millisecond and views go out at the base interval; a node
//! past capacity sends fewer, larger patches (each member still gets every
//! change, coalesced) and spends what it saves on actions and their acks.
//! `/metrics` says so (`recess_view_interval_ms`, `recess_coalescing_for_load`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How often the probe asks to wake.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(10);
/// View interval added per unit of lag.
pub(crate) const STRETCH: u32 = 2;
/// Lateness below this is the timer's own slack, not load.
const SLACK: Duration = Duration::from_millis(2);

/// The sessions' scheduling lag, shared by a node's sessions.
#[derive(Debug, Default)]
pub(crate) struct Pressure {
    /// Smoothed lag in µs (an exponential average over ~8 probes).
    lag_us: AtomicU64,
    /// The longest a view interval grows to; zero: it never grows.
    max_interval: Duration,
}

impl Pressure {
    pub(crate) fn new(max_interval: Duration) -> Pressure {
        Pressure {
            lag_us: AtomicU64::new(0),
            max_interval,
        }
    }

    /// Adds one probe's lateness to the average.
    pub(crate) fn record(&self, lag: Duration) {
        // (At most a minute: the average of anything longer says as much.)
        let lag = lag.saturating_sub(SLACK).as_micros().min(60_000_000) as u64;
        let old = self.lag_us.load(Ordering::Relaxed);
        self.lag_us.store((old * 7 + lag) / 8, Ordering::Relaxed);
    }

    /// The smoothed lag.
    pub(crate) fn lag(&self) -> Duration {
        Duration::from_micros(self.lag_us.load(Ordering::Relaxed))
    }

    /// The view interval now, for a session whose base interval is `base`.
    pub(crate) fn view_interval(&self, base: Duration) -> Duration {
        let stretched = base + self.lag() * STRETCH;
        stretched.min(self.max_interval.max(base))
    }
}

/// The probe: runs on the sessions' runtime until `shutdown`, recording its
/// lateness and publishing the interval it leads to in `metrics`.
pub(crate) async fn probe(
    pressure: std::sync::Arc<Pressure>,
    base: Duration,
    metrics: std::sync::Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut due = tokio::time::Instant::now() + PROBE_EVERY;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(due) => {}
        }
        let now = tokio::time::Instant::now();
        pressure.record(now.saturating_duration_since(due));
        let interval = pressure.view_interval(base);
        metrics
            .view_interval_ms
            .store(interval.as_millis() as u64, Ordering::Relaxed);
        metrics
            .coalescing_for_load
            .store(u64::from(interval > base), Ordering::Relaxed);
        due = now + PROBE_EVERY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(50);

    #[test]
    fn the_interval_grows_with_the_lag_within_its_bound() {
        let p = Pressure::new(Duration::from_secs(1));
        assert_eq!(p.view_interval(BASE), BASE);
        // Timer slack is not load.
        for _ in 0..100 {
            p.record(Duration::from_micros(1500));
        }
        assert_eq!(p.view_interval(BASE), BASE);
        assert!(p.view_interval(BASE) <= BASE);
        for _ in 0..100 {
            p.record(Duration::from_millis(102));
        }
        let at = p.view_interval(BASE);
        assert!(
            at > Duration::from_millis(240) && at <= Duration::from_millis(250),
            "{at:?}"
        );
        assert!(p.view_interval(BASE) > BASE);
        for _ in 0..100 {
            p.record(Duration::from_secs(5));
        }
        assert_eq!(p.view_interval(BASE), Duration::from_secs(1), "the bound");
        // Back to idle: back to the base (the average decays to nothing).
        for _ in 0..200 {
            p.record(Duration::ZERO);
        }
        assert_eq!(p.view_interval(BASE), BASE);
        // A bound below the base leaves the base.
        let never = Pressure::new(Duration::ZERO);
        never.record(Duration::from_secs(1));
        assert_eq!(never.view_interval(BASE), BASE);
    }
}
