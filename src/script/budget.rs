//! The CPU budget of one handler call.
//!
//! Lua code is metered in *units*: one unit is one Lua VM instruction (counted by
//! an instruction hook) or one step of the pattern matcher in `script::pattern`
//! (which runs outside the VM and so is never seen by the hook). A handler call
//! starts with a fresh allowance; once it is spent every further charge fails,
//! and the sandbox's `pcall`/`xpcall` wrappers re-raise instead of swallowing
//! the error, so a script cannot catch its way past its budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
}

impl CallBudget {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Gives the next handler call a fresh allowance of `units`.
    pub fn reset(&self, units: u64) {
        self.remaining.store(units, Ordering::Relaxed);
        self.spent.store(false, Ordering::Relaxed);
    }

    /// Spends `units`; returns `false` (and marks the budget spent) when the
    /// allowance does not cover them.
    pub fn charge(&self, units: u64) -> bool {
        if self.spent.load(Ordering::Relaxed) {
            return false;
        }
        let left = self.remaining.load(Ordering::Relaxed);
        if left < units {
            self.remaining.store(0, Ordering::Relaxed);
            self.spent.store(true, Ordering::Relaxed);
            return false;
        }
        self.remaining.store(left - units, Ordering::Relaxed);
        true
    }

    /// Units still available to the call in progress.
    pub fn remaining(&self) -> u64 {
        if self.spent.load(Ordering::Relaxed) {
            0
        } else {
            self.remaining.load(Ordering::Relaxed)
        }
    }

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

/// Whether the budget installed in `lua` is spent.
pub fn is_spent(lua: &mlua::Lua) -> bool {
    lua.app_data_ref::<Arc<CallBudget>>()
        .is_some_and(|b| b.is_spent())
}
