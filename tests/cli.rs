//! The `recess` command line: `check`, flags, the listening line.

mod common;

use std::process::Command;

fn recess() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recess"))
}

#[test]
fn check_reports_file_and_line_and_fails_on_broken_games() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.lua"),
        "return { init = function() return {} end, view = function() return {} end }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.lua"),
        "return {\n  init = function() return {} end,\n  view = function( end\n}",
    )
    .unwrap();
    let out = recess().arg("check").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{}:3:", dir.path().join("bad.lua").display()))),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "ok  good"), "{stdout}");

    check_passes(&dir.path().join("good.lua"));
}

#[test]
fn the_shipped_games_pass_check() {
    let out = recess()
        .arg("check")
        .arg(common::shipped_games())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout, "ok  buzzer\nok  chat\nok  geography\nok  poll\nok  quiz\nok  science\n",
        "no warnings either"
    );
}

#[tokio::test]
async fn serve_prints_the_listening_line_and_fails_clearly_without_redis() {
    let games = common::games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let node = common::Process::spawn(games.path(), data.path(), &[]).await;
    assert_eq!(node.addr.ip().to_string(), "127.0.0.1");
    node.kill().await;

    let out = recess()
        .args(["--port", "0", "--redis", "redis://127.0.0.1:1"])
        .arg("--games")
        .arg(games.path())
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach Redis at redis://127.0.0.1:1"),
        "{stderr}"
    );
}

/// A data folder that cannot be written is refused at start, with its path,
/// rather than served without durability.
#[test]
fn serve_refuses_a_data_folder_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_folder = dir.path().join("data");
    std::fs::write(&not_a_folder, "a file where the data folder should be").unwrap();
    let games = dir.path().join("games");
    let out = recess()
        .args(["serve", "--port", "0", "--data"])
        .arg(&not_a_folder)
        .arg("--games")
        .arg(&games)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot open the data folder") && stderr.contains("data"),
        "{stderr}"
    );
}

/// `recess check` starts each game headless: every kind of broken game gets
/// its one exact line, warnings do not fail the run, good games get `ok`.
#[test]
fn check_runs_each_game_and_reports_errors_and_warnings_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let view = "view = function() return {} end";
    let games = [
        ("syntax", "return {\n  init = function() return {} end,\n  view = function( end\n}\n".to_owned()),
        ("load", "local x = 1\nerror(\"at load\")\n".to_owned()),
        ("noview", "return { init = function() return {} end }\n".to_owned()),
        ("notfn", format!("return {{ init = function() return {{}} end,\n  join = 3,\n  {view} }}\n")),
        ("title", format!("return {{ title = 5,\n  init = function() return {{}} end, {view} }}\n")),
        ("loop", format!("return {{\n  init = function()\n    while true do end\n  end, {view} }}\n")),
        ("typo", "return { init = function() return {} end,\n  view = function() return {\n    choises = {} } end }\n".to_owned()),
        ("global", format!("return {{ init = function()\n  score = 0\n  return {{}} end, {view} }}\n")),
        ("send", format!("return {{ init = function(ctx)\n  ctx.send(nil, 'x')\n  return {{}} end, {view} }}\n")),
        ("good", format!("return {{ init = function() return {{}} end, {view} }}\n")),
    ];
    for (name, text) in &games {
        std::fs::write(dir.path().join(format!("{name}.lua")), text).unwrap();
    }
    let out = recess().arg("check").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let d = dir.path().display();
    let want = format!(
        "{d}/global.lua:2: warning: assigns the global 'score' (a missing 'local'?)\n\
         ok  global\n\
         ok  good\n\
         {d}/load.lua:2: at load\n\
         {d}/loop.lua:3: CPU budget exceeded (the handler ran too long: an endless loop?)\n\
         {d}/notfn.lua:2: `join` must be a function, got 3\n\
         {d}/noview.lua: the game table has no `view` function (every game needs `init` and `view`)\n\
         {d}/send.lua:2: ctx.send: argument 1 (player id) must be a string, got nil\n\
         {d}/syntax.lua:3: <name> or '...' expected near 'end'\n\
         {d}/title.lua:1: `title` must be a string, got 5\n\
         {d}/typo.lua:3: warning: unknown view key 'choises' (did you mean 'choices'?)\n\
         ok  typo\n"
    );
    assert_eq!(stdout, want);
    assert_eq!(out.status.code(), Some(1));
    for bad in [
        "userdata",
        "FromLua",
        "CallbackError",
        "stack traceback",
        "error converting",
    ] {
        assert!(!stdout.contains(bad), "{bad}: {stdout}");
    }

    // Warnings alone do not fail the run.
    check_passes(&dir.path().join("typo.lua"));
}

/// The quiz's parts of the vocabulary (`select`, `slider`, `order` and its
/// items, `bars`, `cloud`) are checked field by field like the others.
#[test]
fn check_warns_on_unknown_fields_of_the_question_parts() {
    let dir = tempfile::tempdir().unwrap();
    let game = r#"return { init = function() return {} end,
  view = function() return {
    choices = { { label = "A", action = "pick" } },
    select = { action = "answer", mni = 1 },
    slider = { action = "guess", min = 0, max = 10, stpe = 1 },
    order = { action = "order", items = {
      { label = "One", stlye = "correct" },
      { label = "Two", style = "corect" } }, lable = "Put them in order" },
    bars = { { label = "A", vaule = 3 } },
    cloud = { { text = "sun", cuont = 2 } },
  } end }
"#;
    std::fs::write(dir.path().join("parts.lua"), game).unwrap();
    let good = r#"return { init = function() return {} end,
  view = function() return {
    choices = { { label = "A", action = "pick" }, { label = "B", action = "pick" } },
    select = { action = "answer", min = 1, max = 2, label = "Submit" },
    slider = { action = "guess", min = 0, max = 10, step = 1, value = 5, unit = "kg", label = "How heavy?", answer = 7 },
    order = { action = "order", label = "Oldest first", items = {
      { label = "One", style = "correct", detail = "1st" }, { label = "Two", style = "wrong" } } },
    bars = { { label = "A", value = 3, style = "correct", detail = "60%" }, { label = "B", value = 2 } },
    cloud = { { text = "sun", count = 2 }, { text = "rain", count = 1 } },
  } end }
"#;
    std::fs::write(dir.path().join("good.lua"), good).unwrap();
    let out = recess().arg("check").arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let d = dir.path().display();
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    let mut want = vec![
        format!("{d}/parts.lua:4: warning: unknown field 'mni' in 'select' (did you mean 'min'?)"),
        format!(
            "{d}/parts.lua:5: warning: unknown field 'stpe' in 'slider' (did you mean 'step'?)"
        ),
        format!(
            "{d}/parts.lua:7: warning: unknown field 'stlye' in an item of 'order' (did you mean 'style'?)"
        ),
        format!(
            "{d}/parts.lua:8: warning: unknown field 'lable' in 'order' (did you mean 'label'?)"
        ),
        format!(
            "{d}/parts.lua:8: warning: unknown style 'corect' in an item of 'order' (did you mean 'correct'?)"
        ),
        format!(
            "{d}/parts.lua:9: warning: unknown field 'vaule' in a bar of 'bars' (did you mean 'value'?)"
        ),
        format!(
            "{d}/parts.lua:10: warning: unknown field 'cuont' in a word of 'cloud' (did you mean 'count'?)"
        ),
        "ok  good".to_owned(),
        "ok  parts".to_owned(),
    ];
    want.sort_unstable();
    assert_eq!(lines, want, "{stdout}");
    assert!(out.status.success(), "{stdout}");
}

/// `recess check PATH` exits 0.
fn check_passes(path: &std::path::Path) {
    let out = recess().arg("check").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// With an address other devices can reach, the second line says where
/// students join; on loopback alone there is no such line.
#[tokio::test]
async fn serve_prints_where_students_join() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let games = common::games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let first_lines = |extra: &'static [&'static str]| {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_recess"))
            .args(["--port", "0", "--games"])
            .arg(games.path())
            .arg("--data")
            .arg(data.path())
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut read = Vec::new();
            // The listening line, then the join line or nothing until exit.
            for _ in 0..2 {
                let next =
                    tokio::time::timeout(std::time::Duration::from_secs(2), lines.next_line());
                match next.await {
                    Ok(Ok(Some(line))) => read.push(line),
                    _ => break,
                }
            }
            child.kill().await.unwrap();
            read
        }
    };
    let lines = first_lines(&["--public-url", "http://192.0.2.10:8123/"]).await;
    assert!(
        lines[0].starts_with("recess listening on http://127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "students join at http://192.0.2.10:8123/");
    let lines = first_lines(&[]).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
}
