//! The CPU budget of one handler call.
//!
//! Lua code is metered in *units*: one unit is one Lua VM instruction (counted by
//! an instruction hook), one step of the pattern matcher in `script::pattern`
//! (which runs outside the VM and so is never seen by the hook), or a share of
//! the work of a C library function, charged by the size of its arguments
//! (see `sandbox`). A handler call starts with a fresh allowance of units and
//! of time; once either is spent every further charge fails, and the
//! sandbox's `pcall`/`xpcall` wrappers re-raise instead of swallowing the
//! error, so a script cannot catch its way past its budget.
//!
//! The clock is read once per [`CLOCK_EVERY`] units charged (once per hook
//! call), so metering time costs one `Instant::now()` per 1000 instructions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Units charged between two looks at the clock.
pub const CLOCK_EVERY: u64 = 1000;

/// The text every budget error carries; tests and the error classifier match it.
pub const BUDGET_MESSAGE: &str = "CPU budget exceeded (the handler ran too long: an endless loop?)";

/// Units left for the handler call in progress. Stored in the Lua state's app
/// data as `Arc<CallBudget>` so Rust callbacks can reach it.
#[derive(Debug, Default)]
pub struct CallBudget {
    /// Units the current call may still spend.
    remaining: AtomicU64,
    /// Set once the allowance ran out; stays set until the next `reset`, so
    /// every later check (hook, pcall wrapper, matcher) fails fast.
    spent: AtomicBool,
    /// When the current call's time is up, in nanoseconds after [`epoch`].
    deadline_ns: AtomicU64,
    /// Units charged since the clock was last read.
    since_clock: AtomicU64,
}

/// The instant deadlines are counted from (atomics cannot hold an `Instant`).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

impl CallBudget {
    /// A budget with nothing to spend until the first `reset`.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Gives the next handler call a fresh allowance of `units` and `time`.
    pub fn reset(&self, units: u64, time: Duration) {
        let deadline = nanos_since_epoch(Instant::now())
            .saturating_add(u64::try_from(time.as_nanos()).unwrap_or(u64::MAX));
        self.deadline_ns.store(deadline, Ordering::Relaxed);
        self.since_clock.store(0, Ordering::Relaxed);
        self.remaining.store(units, Ordering::Relaxed);
        self.spent.store(false, Ordering::Relaxed);
    }

    /// Spends `units`; returns `false` (and marks the budget spent) when the
    /// allowance does not cover them or the call's time is up.
    pub fn charge(&self, units: u64) -> bool {
        if self.spent.load(Ordering::Relaxed) {
            return false;
        }
        let left = self.remaining.load(Ordering::Relaxed);
        if left < units {
            return self.spend_all();
        }
        self.remaining.store(left - units, Ordering::Relaxed);
        let since = self
            .since_clock
            .load(Ordering::Relaxed)
            .saturating_add(units);
        if since < CLOCK_EVERY {
            self.since_clock.store(since, Ordering::Relaxed);
            return true;
        }
        self.since_clock.store(0, Ordering::Relaxed);
        if self.out_of_time() {
            return self.spend_all();
        }
        true
    }

    /// Whether the current call's time is up (reads the clock).
    pub fn out_of_time(&self) -> bool {
        nanos_since_epoch(Instant::now()) > self.deadline_ns.load(Ordering::Relaxed)
    }

    /// When the current call's time is up.
    pub fn deadline(&self) -> Instant {
        epoch() + Duration::from_nanos(self.deadline_ns.load(Ordering::Relaxed))
    }

    fn spend_all(&self) -> bool {
        self.remaining.store(0, Ordering::Relaxed);
        self.spent.store(true, Ordering::Relaxed);
        false
    }

    /// Units still available to the call in progress.
    pub fn remaining(&self) -> u64 {
        if self.spent.load(Ordering::Relaxed) {
            0
        } else {
            self.remaining.load(Ordering::Relaxed)
        }
    }

    /// Whether the allowance (units or time) ran out since the last `reset`.
    pub fn is_spent(&self) -> bool {
        self.spent.load(Ordering::Relaxed)
    }
}

/// Charges `units` to the budget installed in `lua`, failing with the budget
/// error once it is spent. A state without a budget (e.g. `recess check`) is
/// not metered.
pub fn charge(lua: &mlua::Lua, units: u64) -> mlua::Result<()> {
    match lua.app_data_ref::<Arc<CallBudget>>() {
        Some(budget) if !budget.charge(units) => Err(mlua::Error::runtime(BUDGET_MESSAGE)),
        _ => Ok(()),
    }
}

/// When the call in progress must end, if `lua` is metered.
pub fn deadline(lua: &mlua::Lua) -> Option<Instant> {
    lua.app_data_ref::<Arc<CallBudget>>().map(|b| b.deadline())
}

/// Whether the budget installed in `lua` is spent.
pub fn is_spent(lua: &mlua::Lua) -> bool {
    lua.app_data_ref::<Arc<CallBudget>>()
        .is_some_and(|b| b.is_spent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_time_both_end_a_call() {
        let budget = CallBudget::new();
        budget.reset(10 * CLOCK_EVERY, Duration::from_secs(60));
        assert!(budget.charge(5 * CLOCK_EVERY));
        assert!(!budget.charge(6 * CLOCK_EVERY), "over the units");
        assert!(!budget.charge(1), "spent stays spent");

        budget.reset(u64::MAX, Duration::ZERO);
        assert!(budget.charge(CLOCK_EVERY - 1), "the clock is not read yet");
        assert!(!budget.charge(1), "the clock is read: time is up");
        assert!(budget.is_spent());

        budget.reset(u64::MAX, Duration::from_secs(60));
        assert!(budget.charge(100 * CLOCK_EVERY));
    }
}
