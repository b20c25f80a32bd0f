//! games/buzzer.lua played over real WebSockets by a host and 10 students:
//! they buzz at once, the line is the server's order of arrival (the same
//! for everyone), right and wrong move the line on as the rules say, and
//! the scores in the results, the views and the spreadsheet agree.

mod common;

use std::collections::HashMap;

use futures_util::future::join_all;
use serde_json::json;

use common::{Class, Client, TestServer};

const PLAYERS: usize = 10;
const POINTS: i64 = 100;

/// The names in the `buzz` events the host got for question `number`, in
/// their place order, once `n` have come.
async fn line(host: &mut Client, number: u64, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        let v = host
            .recv_until(|v| {
                v["type"] == "event" && (v["name"] == "buzz" || v["name"] == "question")
            })
            .await;
        if v["name"] == "question" {
            assert_eq!(v["data"]["number"], number, "{v}");
            names.clear();
            continue;
        }
        assert_eq!(v["data"]["place"], names.len() + 1, "places count up: {v}");
        names.push(v["data"]["name"].as_str().expect("a name").to_owned());
    }
    names
}

/// The names of the events `buzz` a student saw, with their seqs.
fn buzzes(c: &Client) -> Vec<(u64, String)> {
    c.log
        .iter()
        .filter(|v| v["type"] == "event" && v["name"] == "buzz")
        .map(|v| {
            (
                v["seq"].as_u64().unwrap_or_default(),
                v["data"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn ok(c: &mut Client, session: &str, name: &str) {
    let r = c.act(session, name, json!(null)).await;
    assert_eq!(r["type"], "ack", "{name}: {r}");
}

#[tokio::test]
async fn ten_students_buzz_at_once_and_the_scores_follow_the_servers_order() {
    let server = TestServer::start().await;
    let Class {
        mut host,
        session,
        token,
        mut students,
        ..
    } = Class::start(&server, "buzzer", json!({"points": POINTS}), PLAYERS).await;
    ok(&mut host, &session, "start").await;

    // Each question: who buzzes (all, or the first few), and how the host
    // marks the line in turn (false = wrong, true = right).
    let rounds: [(usize, &[bool]); 4] = [
        (PLAYERS, &[false, true]),
        (PLAYERS, &[true]),
        (4, &[false, false, true]),
        (2, &[false, false]),
    ];
    let mut expected: HashMap<String, i64> = (0..PLAYERS)
        .map(|i| (format!("Student {i:02}"), 0))
        .collect();
    for (q, (buzzing, marks)) in rounds.iter().enumerate() {
        let number = q as u64 + 1;
        if number > 1 {
            ok(&mut host, &session, "next").await;
        }
        // Everyone buzzing sends at once; every buzz is accepted.
        let acks = join_all(
            students
                .iter_mut()
                .take(*buzzing)
                .map(|c| c.act(&session, "buzz", json!(null))),
        )
        .await;
        for a in &acks {
            assert_eq!(a["type"], "ack", "{a}");
        }
        let order = line(&mut host, number, *buzzing).await;
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            *buzzing,
            "each student is in line once: {order:?}"
        );

        // A second buzz is refused with the place in line.
        let second = &order[1];
        let i: usize = second[8..].parse().expect("a number");
        let again = students[i].act(&session, "buzz", json!(null)).await;
        assert_eq!(again["code"], "refused", "{again}");
        assert_eq!(again["message"], "you are already in line (2nd)");

        for (k, right) in marks.iter().enumerate() {
            let answering = &order[k];
            let shown = host
                .wait_view(&session, |v| {
                    v["banner"]["text"] == format!("{answering} is answering")
                })
                .await;
            assert_eq!(shown["buttons"][0]["action"], "right", "{shown}");
            ok(&mut host, &session, if *right { "right" } else { "wrong" }).await;
            if *right {
                *expected.get_mut(answering).expect("a student") += POINTS;
            }
        }
    }

    // A student may not end the game; the host does.
    let refused = students[0].act(&session, "finish", json!(null)).await;
    assert_eq!(
        refused["message"], "only the host can end the game",
        "{refused}"
    );
    ok(&mut host, &session, "finish").await;
    let ended = host.recv_type("ended").await;
    let rows = ended["results"]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), PLAYERS);
    let mut last = i64::MAX;
    for row in rows {
        let name = row["name"].as_str().expect("name");
        let score = row["score"].as_i64().expect("score");
        assert_eq!(score, expected[name], "{name}: {ended}");
        assert!(score <= last, "sorted by score");
        last = score;
    }
    assert_eq!(
        ended["results"]["columns"],
        json!(["rank", "name", "score"])
    );
    assert_eq!(
        expected.values().sum::<i64>(),
        3 * POINTS,
        "three questions answered right"
    );

    // Every student saw the same line, with the same seqs, and their own
    // score on screen.
    let reference = buzzes(&students[0]);
    for (i, c) in students.iter_mut().enumerate() {
        let theirs = c.recv_type("ended").await;
        assert_eq!(theirs["results"], ended["results"]);
        assert_eq!(buzzes(c), reference, "student {i}");
        let name = format!("Student {i:02}");
        let view = c.wait_view(&session, |v| v["phase"] == "podium").await;
        assert_eq!(view["score"], expected[&name], "{name}: {view}");
    }

    let csv = common::results_csv(&server, &session, &token).await;
    assert!(csv.starts_with("\"rank\",\"name\",\"score\"\r\n"), "{csv}");
    server.stop().await;
}
