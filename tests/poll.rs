//! poll.lua over the real server: a host and 10 students, a poll and a word
//! cloud, the live chart on the host's screen and the results spreadsheet.

mod common;

use common::{Class, TestServer};
use serde_json::{Value, json};

const STUDENTS: usize = 10;

fn bars(view: &Value) -> Vec<(String, u64)> {
    view["bars"]
        .as_array()
        .map(|b| {
            b.iter()
                .map(|b| {
                    (
                        b["label"].as_str().unwrap().to_owned(),
                        b["value"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_votes_and_sends_words_and_the_teacher_gets_the_counts() {
    let server = TestServer::start().await;
    let Class {
        mut host,
        session,
        token,
        mut students,
        ..
    } = Class::start(&server, "poll", json!({}), STUDENTS).await;
    host.wait_view(&session, |v| v["status"] == "10 students here")
        .await;

    // The host types the question and the choices on their own screen.
    for (name, text) in [
        ("ask", "Which planet next?"),
        ("add", "Mars"),
        ("add", "Venus"),
        ("add", "Saturn"),
    ] {
        assert_eq!(
            host.act(&session, name, json!({ "text": text })).await["type"],
            "ack"
        );
    }
    assert_eq!(
        host.act(&session, "open_poll", json!({})).await["type"],
        "ack"
    );

    // Student i votes for choice i % 3 + 1; the first two change their minds.
    for (i, s) in students.iter_mut().enumerate() {
        s.wait_view(&session, |v| v["choices"].is_array()).await;
        let ack = s
            .act(&session, "vote", json!({ "choice": i % 3 + 1 }))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    for s in students.iter_mut().take(2) {
        assert_eq!(
            s.act(&session, "vote", json!({ "choice": 3 })).await["type"],
            "ack"
        );
    }
    // Votes: Mars 4 (0,3,6,9) - 1 (0) = 3; Venus 3 (1,4,7) - 1 (1) = 2; Saturn 3 + 2 = 5.
    // The host's views come in order, and one may show "10 of 10" before the
    // changed votes, so the wait is for the final counts (it fails on timeout).
    let expected: Vec<(String, u64)> = vec![
        ("Mars".into(), 3),
        ("Venus".into(), 2),
        ("Saturn".into(), 5),
    ];
    let v = host.wait_view(&session, |v| bars(v) == expected).await;
    assert_eq!(v["status"], "10 of 10 students answered", "{v}");
    // Students see no chart while the poll is open, and no other names.
    let seen = students[5]
        .wait_view(&session, |v| v["choices"].is_array())
        .await;
    assert!(seen.get("bars").is_none(), "{seen}");
    assert!(!seen.to_string().contains("Student 04"), "{seen}");

    assert_eq!(host.act(&session, "close", json!({})).await["type"], "ack");
    let closed = students[5]
        .wait_view(&session, |v| v["bars"].is_array())
        .await;
    assert_eq!(bars(&closed)[2], ("Saturn".into(), 5));
    assert_eq!(host.act(&session, "new", json!({})).await["type"], "ack");
    assert_eq!(
        host.act(&session, "ask", json!({ "text": "One word for space" }))
            .await["type"],
        "ack"
    );
    assert_eq!(
        host.act(&session, "open_cloud", json!({})).await["type"],
        "ack"
    );
    for (i, s) in students.iter_mut().enumerate() {
        s.wait_view(&session, |v| v["input"]["action"] == "send")
            .await;
        let word = if i % 2 == 0 { "Huge" } else { " huge " };
        assert_eq!(
            s.act(&session, "send", json!({ "text": word })).await["type"],
            "ack"
        );
    }
    assert_eq!(
        students[0]
            .act(&session, "send", json!({ "text": "Dark" }))
            .await["type"],
        "ack"
    );
    let v = host
        .wait_view(&session, |v| v["cloud"][1]["count"] == 1)
        .await;
    assert_eq!(
        v["cloud"],
        json!([{ "text": "Huge", "count": 10 }, { "text": "Dark", "count": 1 }])
    );
    assert_eq!(host.act(&session, "close", json!({})).await["type"], "ack");
    assert_eq!(host.act(&session, "finish", json!({})).await["type"], "ack");
    let ended = students[3].recv_type("ended").await;
    assert_eq!(ended["results"]["rows"].as_array().unwrap().len(), 5);

    let csv = common::results_csv(&server, &session, &token).await;
    assert_eq!(
        csv,
        "\"question\",\"answer\",\"votes\"\r\n\
         \"Which planet next?\",\"Mars\",\"3\"\r\n\
         \"Which planet next?\",\"Venus\",\"2\"\r\n\
         \"Which planet next?\",\"Saturn\",\"5\"\r\n\
         \"One word for space\",\"Huge\",\"10\"\r\n\
         \"One word for space\",\"Dark\",\"1\"\r\n"
    );
    server.stop().await;
}
