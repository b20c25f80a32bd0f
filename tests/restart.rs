//! `kill -9` of the real binary, restart on the same data folder, `resume`:
//! no acknowledged action is lost and no message is lost or repeated.

mod common;

use common::{Client, Process, games_dir_with_shipped};
use serde_json::json;

fn texts(c: &Client, session: &str) -> Vec<String> {
    c.log
        .iter()
        .filter(|v| v["type"] == "event" && v["name"] == "message" && v["session"] == session)
        .map(|v| v["data"]["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_loses_nothing_acknowledged() {
    let games = games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let node = Process::spawn(games.path(), data.path(), &[]).await;

    let mut ana = Client::connect(node.addr).await;
    let w = ana.host("chat", json!({})).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let ana_token = w["token"].as_str().unwrap().to_owned();

    let mut bo = Client::connect(node.addr).await;
    let bo_token = bo.join(&code, "Bo").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 1..=2 {
        assert_eq!(
            ana.act(&session, "send", json!({"text": format!("m{i}")}))
                .await["type"],
            "ack"
        );
    }
    while texts(&bo, &session).len() < 2 {
        bo.recv().await;
    }
    let bo_last = bo.last_seq[&session];
    let bo_view = bo.views[&session].clone();
    bo.close().await; // Bo's Wi-Fi drops.

    for i in 3..=5 {
        assert_eq!(
            ana.act(&session, "send", json!({"text": format!("m{i}")}))
                .await["type"],
            "ack"
        );
    }
    // A backend rings a bell over REST: a message that changes no state.
    let (status, body) = common::http(
        node.addr,
        "POST",
        &format!("/api/sessions/{session}/broadcast"),
        Some(&json!({"name": "bell", "data": {}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bell: serde_json::Value = serde_json::from_str(&body).unwrap();
    let bell_seq = bell["seq"].as_u64().unwrap();
    ana.recv_until(|v| v["name"] == "bell").await;
    let ana_last = ana.last_seq[&session];
    assert_eq!(ana_last, bell_seq);
    let ana_view = ana.views[&session].clone();
    node.kill().await; // kill -9, right after the acks.

    let node = Process::spawn(games.path(), data.path(), &[]).await;

    // Bo comes back and gets exactly m3..m5, with their original seqs.
    let mut bo = Client::connect(node.addr).await;
    bo.views.insert(session.clone(), bo_view);
    bo.last_seq.insert(session.clone(), bo_last);
    bo.send(json!({"type": "resume", "token": bo_token, "last_seq": bo_last}))
        .await;
    let w = bo.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["resumed"], true);
    let view = bo
        .wait_view(&session, |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 5)
        })
        .await;
    assert_eq!(texts(&bo, &session), ["m3", "m4", "m5"]);
    assert_eq!(view["messages"][4]["text"], "m5");
    let bell = bo.recv_until(|v| v["name"] == "bell").await;
    assert_eq!(
        bell["seq"].as_u64(),
        Some(bell_seq),
        "the bell survived too"
    );

    // Ana resumes at her last seq: only what came after it (a view patch the
    // session may have sent after her last ack), no message repeated.
    let mut ana = Client::connect(node.addr).await;
    ana.last_seq.insert(session.clone(), ana_last);
    ana.views.insert(session.clone(), ana_view);
    ana.send(json!({"type": "resume", "token": ana_token, "last_seq": ana_last}))
        .await;
    let w = ana.recv().await;
    assert_eq!(w["resumed"], true, "{w}");
    assert!(w["seq"].as_u64().unwrap() >= ana_last);
    let view = ana
        .wait_view(&session, |v| {
            v["messages"].as_array().is_some_and(|m| m.len() == 5)
        })
        .await;
    let all: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        all,
        ["m1", "m2", "m3", "m4", "m5"],
        "every acknowledged message survived"
    );

    // The session goes on with fresh seqs.
    assert_eq!(
        ana.act(&session, "send", json!({"text": "m6"})).await["type"],
        "ack"
    );
    let m6 = bo
        .recv_until(|v| v["name"] == "message" && v["data"]["text"] == "m6")
        .await;
    assert_eq!(m6["data"]["text"], "m6");
    assert!(m6["seq"].as_u64().unwrap() > bell_seq, "no seq reused");
    assert!(
        texts(&ana, &session).iter().all(|t| t == "m6"),
        "nothing replayed twice to Ana"
    );
    ana.wait_view(&session, |v| v["messages"][5]["text"] == "m6")
        .await;
    // The views members last received came back too: patches after the
    // restart carry what changed, not parts of the view that never did.
    for (who, c) in [("Ana", &ana), ("Bo", &bo)] {
        let patches: Vec<&serde_json::Value> = c
            .log
            .iter()
            .filter(|v| v["type"] == "view" && v["session"] == session)
            .map(|v| &v["patch"])
            .collect();
        assert!(!patches.is_empty(), "{who} got view patches");
        for patch in patches {
            assert!(
                patch.get("title").is_none() && patch.get("input").is_none(),
                "{who} got a patch against a view they never had: {patch}"
            );
        }
    }
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_survive_a_restart() {
    let games = games_dir_with_shipped();
    let data = tempfile::tempdir().unwrap();
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    let w = host
        .host(
            "quiz",
            json!({"time_limit": 1.5, "questions": [{"text": "1+1?", "choices": ["1", "2"], "answer": 2}]}),
        )
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let mut ana = Client::connect(node.addr).await;
    ana.join(w["code"].as_str().unwrap(), "Ana").await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");
    host.recv_until(|v| v["name"] == "question").await;
    node.kill().await;

    // Nobody answers: the question's timer must still fire after the restart.
    let node = Process::spawn(games.path(), data.path(), &[]).await;
    let mut host = Client::connect(node.addr).await;
    host.send(json!({"type": "resume", "token": token, "last_seq": 0}))
        .await;
    assert_eq!(host.recv().await["type"], "welcome");
    let reveal = host
        .recv_until(|v| v["type"] == "event" && v["name"] == "reveal")
        .await;
    assert_eq!(reveal["data"]["answer"], 2);
    // A recording covers a session from its start on one node: a restored
    // one has none, and the download says why.
    let (status, body) = common::http_with(
        node.addr,
        "GET",
        &format!("/api/sessions/{session}/recording?token={token}"),
        "",
        "",
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("this session has no recording: it was restored after a restart"),
        "{body}"
    );
    node.kill().await;
}
