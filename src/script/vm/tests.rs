//! `GameVm` alone: handler calls, rollback, views and their limits, and
//! how errors read, on games written to a temp folder.

use super::*;
use crate::script::budget::BUDGET_MESSAGE;
use crate::script::catalog::Catalog;

/// A VM (before `init`) for the game `probe.lua` whose source is `source`.
fn probe(source: &str, limits: Limits) -> GameVm {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probe.lua"), source).unwrap();
    let catalog = Catalog::new(dir.path(), limits);
    catalog.load_all();
    let rules = catalog.get("probe").expect("the probe game loads");
    let counters = VmCounters {
        rng: 1,
        next_timer: 0,
    };
    GameVm::new(rules, limits, "s1", counters).unwrap()
}

/// A VM for a game whose `view` is `view_body` (a function of `state,
/// player`), with `state = { n = 1 }`.
fn vm_with_view(view_body: &str) -> GameVm {
    let source = format!(
        "return {{ init = function() return {{ n = 1 }} end,\n  view = function(state, player)\n{view_body}\nend }}\n"
    );
    let limits = Limits {
        cpu_units: 1_000_000,
        cpu_time: std::time::Duration::from_secs(5),
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let mut vm = probe(&source, limits);
    vm.init(&Json::Null, 0).unwrap();
    vm
}

fn student() -> PlayerInfo {
    PlayerInfo {
        id: "p1".into(),
        name: "Ana".into(),
        role: crate::protocol::Role::Player,
        connected: true,
        real_name: None,
    }
}

#[test]
fn view_gets_the_state_and_a_fresh_player_table() {
    let mut vm = vm_with_view(
        "local seen = player.seen\n player.seen = true\n return { n = state.n, id = player.id, name = player.name, role = player.role, seen = seen, gone = null }",
    );
    for _ in 0..2 {
        let view = vm.view(&student()).unwrap();
        assert_eq!(
            view,
            serde_json::json!({"n": 1, "id": "p1", "name": "Ana", "role": "player"}),
            "a player table changed by one call is not the next call's"
        );
    }
}

#[test]
fn a_view_that_fails_says_why_and_the_next_call_works() {
    let mut vm = vm_with_view(
        "if state.n == 1 then state.n = 2; error('no view today') end\n return { n = state.n }",
    );
    let err = vm.view(&student()).unwrap_err();
    assert!(err.message.contains("no view today"), "{}", err.message);
    assert!(err.message.starts_with("probe.lua:"), "{}", err.message);
    assert_eq!(vm.view(&student()).unwrap(), serde_json::json!({"n": 2}));
}

#[test]
fn a_view_that_loops_forever_is_stopped_by_the_cpu_budget() {
    let mut vm = vm_with_view("while true do end");
    let err = vm.view(&student()).unwrap_err();
    assert!(err.message.contains(BUDGET_MESSAGE), "{}", err.message);
}

#[test]
fn a_view_that_eats_memory_is_stopped_by_the_memory_limit() {
    let mut vm = vm_with_view(
        "if state.n == 1 then\n state.n = 2\n local t = {}\n for i = 1, 1e9 do t[i] = i end\n end\n return { n = state.n }",
    );
    let err = vm.view(&student()).unwrap_err();
    assert!(
        err.message
            .contains("not enough memory: the game went over its session memory budget"),
        "{}",
        err.message
    );
    assert_eq!(vm.view(&student()).unwrap(), serde_json::json!({"n": 2}));
}

/// Runs `init(ctx)` of a game whose init is `body`; its error message.
fn init_error(body: &str) -> String {
    let source = format!(
        "return {{ init = function(ctx, params)\n{body}\nreturn {{}} end,\n  view = function() return {{}} end }}\n"
    );
    probe(&source, Limits::default())
        .init(&Json::Null, 0)
        .unwrap_err()
        .message
}

#[test]
fn recess_test_fails_a_call_that_leaves_one_table_in_two_places() {
    let source = "return { init = function(ctx)\n local q = { text = 'Q1' }\n return { questions = { q }, current = q }\n end,\n view = function() return {} end }\n";
    let mut vm = probe(source, Limits::default());
    vm.init(&Json::Null, 0).expect("a node allows it");
    let mut vm = probe(source, Limits::default());
    vm.check_shared_tables(true);
    assert_eq!(
        vm.init(&Json::Null, 0).unwrap_err().message,
        "probe.lua: init left one table in two places of the state (state.current and state.questions[1]): the state is saved as JSON, so after a refused call, a restart or a failover they would be two tables; keep an id or an index in one of them instead"
    );
}

#[test]
fn errors_read_plainly_wherever_they_come_from() {
    for (body, want) in [
        (
            "local ok, e = pcall(ctx.send, nil)\nerror(type(e) .. ': ' .. e)",
            "probe.lua:3: string: probe.lua:2: ctx.send: argument 1 (player id) must be a string, got nil",
        ),
        (
            "local ok, e = pcall(ctx.after, -5, 'x')\nerror(e, 0)",
            "probe.lua:2: ctx.after: argument 1 (ms) must be a number of milliseconds from 0 to 604800000 (a week), got -5",
        ),
        (
            "local ok, e = pcall(require, 'nope')\nerror(e, 0)",
            "probe.lua:2: module 'nope' not found in game 'probe' (helper modules need the folder form: games/NAME/init.lua beside them)",
        ),
        (
            "require(nil)",
            "probe.lua:2: bad argument #1 to 'require' (string expected, got nil)",
        ),
        (
            "setmetatable(nil, {})",
            "probe.lua:2: bad argument #1 to 'setmetatable' (table expected, got nil)",
        ),
        (
            "local s = ('x'):gsub('x', function() ctx.kick(5) end)",
            "probe.lua:2: ctx.kick: argument 1 (player id) must be a string, got 5",
        ),
        (
            "ctx.redraw(5)",
            "probe.lua:2: ctx.redraw: argument 1 (who) must be a player id, a role (\"host\", \"player\") or a list of them, got 5",
        ),
        (
            "ctx.redraw({ 'p1', true })",
            "probe.lua:2: ctx.redraw: argument 1 (who) must be a list of player ids and roles, got true at [2]",
        ),
        (
            "ctx.redraw({ host = true })",
            "probe.lua:2: ctx.redraw: argument 1 (who) must be a player id, a role (\"host\", \"player\") or a list of them, got a table",
        ),
        (
            "ctx:broadcast('x')",
            "probe.lua:2: ctx.broadcast: call it with a dot, ctx.broadcast(…), not ctx:broadcast(…)",
        ),
        (
            "local state = {}\nlocal q = state.question.text",
            "probe.lua:3: attempt to index a nil value (field 'question')",
        ),
    ] {
        let got = init_error(body);
        assert_eq!(got, want, "{body}");
    }
}

#[test]
fn a_view_must_return_a_table_of_named_fields() {
    let mut vm = vm_with_view("return 42");
    let err = vm.view(&student()).unwrap_err();
    assert!(err.message.contains("not a number"), "{}", err.message);
    let mut vm = vm_with_view("return { function() end }");
    let err = vm.view(&student()).unwrap_err();
    assert!(err.message.contains("function"), "{}", err.message);
}
