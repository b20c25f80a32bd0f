//! What one `view(state, player)` call costs, conversion to JSON included:
//! the unit of every view pass (a pass calls it once per member).
//!
//! ```sh
//! cargo run --release --example viewbench                      # the load tool's bench game
//! cargo run --release --example viewbench -- games quiz '{"questions":[{"text":"2+2?","choices":["3","4"],"answer":2}]}'
//! ```
//!
//! Arguments: a games folder, a game in it, and `init` parameters (JSON).
//! Prints one JSON line: µs per call over 200 000 calls, after 20 000 to
//! warm up. Built as an example, it allocates with the system allocator, not
//! the `recess` binary's mimalloc.

use std::sync::Arc;
use std::time::Instant;

use recess::Role;
use recess::script::VmCounters;
use recess::script::catalog::Catalog;
use recess::script::vm::{GameVm, PlayerInfo};

const WARM_UP: u32 = 20_000;
const CALLS: u32 = 200_000;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/examples/loadgen").to_owned());
    let game = args.next().unwrap_or_else(|| "bench".to_owned());
    let params: serde_json::Value = match args.next() {
        Some(text) => serde_json::from_str(&text).map_err(|e| format!("init parameters: {e}"))?,
        None => serde_json::json!({}),
    };
    let config = recess::Config::for_dirs(&dir, std::env::temp_dir());
    let catalog = Catalog::new(&dir, config.limits());
    for (name, outcome) in catalog.load_all() {
        if let Err(e) = outcome
            && name == game
        {
            return Err(e);
        }
    }
    let rules = catalog
        .get(&game)
        .ok_or_else(|| format!("no game {game} in {dir}"))?;
    let counters = VmCounters {
        rng: 1,
        next_timer: 0,
    };
    let mut vm = GameVm::new(rules, config.limits(), "bench", counters).map_err(|e| e.message)?;
    vm.init(&params, 0).map_err(|e| e.message)?;
    let player = PlayerInfo {
        id: Arc::from("p0123456789"),
        name: Arc::from("Student"),
        real_name: None,
        role: Role::Player,
        connected: true,
    };
    for _ in 0..WARM_UP {
        vm.view(&player).map_err(|e| e.message)?;
    }
    let started = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(vm.view(&player).map_err(|e| e.message)?);
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    println!(r#"{{"game":"{game}","calls":{CALLS},"us_per_view":{us:.2}}}"#);
    Ok(())
}
