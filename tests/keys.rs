//! Several API keys and host keys, each with a name, rotated without a
//! restart (files read again on SIGHUP), and never shown in the log (a real
//! `recess` process).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{API_KEY, Client, Process, games_dir_with_shipped};
use serde_json::json;

/// `GET /metrics` with `key` as the bearer token: the status.
async fn with_key(addr: SocketAddr, key: &str) -> u16 {
    let headers = format!("Authorization: Bearer {key}\r\n");
    common::http_with(addr, "GET", "/metrics", &headers, "")
        .await
        .0
}

#[tokio::test]
async fn several_named_keys_work_rotate_on_sighup_and_never_reach_the_log() {
    let games = games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (api_file, host_file, log) = (
        dir.path().join("api"),
        dir.path().join("host"),
        dir.path().join("log"),
    );
    std::fs::write(&api_file, "grading key-grading-7f3a\nci key-ci-old-91bd\n").unwrap();
    std::fs::write(&host_file, "# rooms\nroom-12 key-room-12-c0de\n").unwrap();
    // (The node's `--api-key` is the harness's `API_KEY`.)
    let Process { mut child, addr } = Process::spawn_logged(
        games.path(),
        data.path(),
        &[
            "--api-keys",
            api_file.to_str().unwrap(),
            "--host-keys",
            host_file.to_str().unwrap(),
        ],
        &log,
        "recess=debug",
    )
    .await;

    for key in ["key-grading-7f3a", "key-ci-old-91bd", API_KEY] {
        assert_eq!(with_key(addr, key).await, 200, "{key}");
    }
    for wrong in [
        "key-ci-old-91b",
        "key-room-12-c0de",
        "",
        "key-grading-7f3a key-ci-old-91bd",
    ] {
        assert_eq!(
            with_key(addr, wrong).await,
            401,
            "{wrong:?} is not an API key"
        );
    }
    // Hosting takes a host key; an API key is not one.
    let mut teacher = Client::connect(addr).await;
    teacher
        .send(json!({"type": "host", "game": "chat", "key": "key-grading-7f3a"}))
        .await;
    assert_eq!(teacher.recv_type("error").await["code"], "unauthorized");
    teacher
        .send(json!({"type": "host", "game": "chat", "key": "key-room-12-c0de"}))
        .await;
    let hosted = teacher.recv_type("welcome").await;
    // A bot joins with a named API key (after SIGHUP, below, with the new one).
    let code = hosted["code"].as_str().unwrap().to_owned();
    let mut bot = Client::connect(addr).await;
    let w = bot.join_bot(&code, "Helper", Some("key-ci-old-91bd")).await;
    assert_eq!(w["role"], "bot", "{w}");
    // Over REST, a named key creates a session and the log names it.
    let headers = "Authorization: Bearer key-grading-7f3a\r\nContent-Type: application/json\r\n";
    let (status, body) =
        common::http_with(addr, "POST", "/api/sessions", headers, r#"{"game":"chat"}"#).await;
    assert_eq!(status, 201, "{body}");

    // Rotation: ci gets a new key, the old one goes; no restart.
    std::fs::write(&api_file, "grading key-grading-7f3a\nci key-ci-new-22aa\n").unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let until = Instant::now() + Duration::from_secs(10);
    while with_key(addr, "key-ci-new-22aa").await != 200 {
        assert!(
            Instant::now() < until,
            "the new key was not taken after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        with_key(addr, "key-ci-old-91bd").await,
        401,
        "the old key is gone"
    );
    assert_eq!(with_key(addr, "key-grading-7f3a").await, 200);
    assert_eq!(with_key(addr, API_KEY).await, 200, "the flag's key stays");
    let mut late = Client::connect(addr).await;
    let refused = late.join_bot(&code, "Late", Some("key-ci-old-91bd")).await;
    assert_eq!(
        refused["code"], "unauthorized",
        "a bot's old key is gone too"
    );
    let w = late.join_bot(&code, "Late", Some("key-ci-new-22aa")).await;
    assert_eq!(w["role"], "bot", "{w}");

    child.kill().await.unwrap();
    let log = without_colours(&std::fs::read_to_string(&log).unwrap());
    assert!(
        log.contains("key=grading") && log.contains("session created over REST"),
        "{log}"
    );
    assert!(log.contains("API keys: api-key, grading, ci"), "{log}");
    let bots: Vec<_> = log.lines().filter(|l| l.contains("bot joining")).collect();
    assert_eq!(bots.len(), 2, "{log}");
    assert!(bots.iter().all(|l| l.contains("key=ci")), "{bots:?}");
    for secret in ["7f3a", "91bd", "22aa", "c0de", API_KEY] {
        assert!(!log.contains(secret), "a key reached the log: {secret}");
    }
}

/// The log's text without its terminal colour codes (`ESC [ ... m`).
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
