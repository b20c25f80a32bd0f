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
        stdout.lines().any(|l| l.starts_with("bad.lua:3:")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "ok  good"), "{stdout}");

    let out = recess()
        .arg("check")
        .arg(dir.path().join("good.lua"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
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
    assert!(
        stdout.contains("ok  quiz") && stdout.contains("ok  chat"),
        "{stdout}"
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
