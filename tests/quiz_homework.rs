//! A self-paced (homework) quiz over the real server: a host and 10
//! students, each at a different place in the quiz on their own timer, the
//! host's live progress, the host closing it, and the results spreadsheet
//! checked cell by cell against the documented rules.

mod common;

use common::{Class, TestServer};
use serde_json::{Value, json};

const STUDENTS: usize = 10;
const LIMIT_S: i64 = 30;
const LABELS: [[&str; 3]; 3] = [
    ["Paris", "Rome", "Berlin"],
    ["4", "5", "3"],
    ["Blue", "Green", "Red"],
];

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// How many questions student `i` answers before the host closes the quiz:
/// 0, 1, 2 or 3 (the last of those also press Next to finish).
fn answered(i: usize) -> usize {
    i % 4
}

/// Student `i` is right at question `q` unless `i + q` is a multiple of 3.
fn right(i: usize, q: usize) -> bool {
    !(i + q).is_multiple_of(3)
}

/// What student `i` did at one question, as their report cells must say.
#[derive(Clone, Debug)]
struct Did {
    label: &'static str,
    ok: bool,
    points: i64,
    /// Bounds of the seconds from their question's start to the answer.
    secs: (f64, f64),
}

#[tokio::test]
async fn students_at_different_questions_on_their_own_timers_get_the_same_spreadsheet() {
    let server = TestServer::start().await;
    let questions: Vec<Value> = LABELS
        .iter()
        .map(|l| json!({"text": format!("Which is {}?", l[0]), "choices": l, "answer": 1}))
        .collect();
    let params =
        json!({"pace": "self", "deadline": 1, "time_limit": LIMIT_S, "questions": questions});
    let Class {
        mut host,
        session,
        token,
        mut students,
        ..
    } = Class::start(&server, "quiz", params, STUDENTS).await;
    host.wait_view(&session, |v| {
        v["status"] == "10 students: 0 finished, 0 playing, 10 not started"
    })
    .await;
    // The host moves nobody on.
    let refused = host.act(&session, "next", json!({})).await;
    assert_eq!(refused["type"], "error", "{refused}");

    let mut did: Vec<Vec<Did>> = vec![Vec::new(); STUDENTS];
    for (i, s) in students.iter_mut().enumerate() {
        let ready = s.wait_view(&session, |v| v["phase"] == "ready").await;
        assert_eq!(ready["buttons"][0]["action"], "next", "{ready}");
        for (q, labels) in LABELS.iter().enumerate().take(answered(i)) {
            let number = q + 1;
            let pressed = now_ms();
            assert_eq!(s.act(&session, "next", json!({})).await["type"], "ack");
            // Their own question, on their own clock, sent to them alone.
            let event = s
                .recv_until(|v| v["name"] == "question" && v["data"]["number"] == number)
                .await;
            let ends_at = event["data"]["ends_at"].as_i64().unwrap();
            let started = ends_at - LIMIT_S * 1000;
            assert!(
                started >= pressed - 1 && started <= now_ms(),
                "student {i} q{number}: the timer starts when they press Next"
            );
            let ok = right(i, q);
            let choice = if ok { 1 } else { 2 };
            let sent = now_ms();
            let ack = s.act(&session, "answer", json!({"choice": choice})).await;
            let acked = now_ms();
            assert_eq!(ack["type"], "ack", "student {i} q{number}: {ack}");
            let result = s.recv_until(|v| v["name"] == "result").await;
            let points = result["data"]["points"].as_i64().unwrap();
            let speed =
                |at: i64| 500 + 500 * (ends_at - at).clamp(0, LIMIT_S * 1000) / (LIMIT_S * 1000);
            let (lo, hi) = if ok {
                (speed(acked), speed(sent))
            } else {
                (0, 0)
            };
            assert!(
                (lo..=hi).contains(&points),
                "student {i} q{number}: {points} points, expected {lo}..={hi}"
            );
            assert_eq!(result["data"]["correct"], ok);
            let secs = |at: i64| (at - started) as f64 / 1000.0;
            did[i].push(Did {
                label: labels[choice - 1],
                ok,
                points,
                secs: (secs(sent) - 0.1, secs(acked) + 0.1),
            });
        }
        if answered(i) == 3 {
            assert_eq!(s.act(&session, "next", json!({})).await["type"], "ack");
            s.wait_view(&session, |v| v["phase"] == "done").await;
        }
    }
    // Student 9 opens question 2 and is still thinking when the host closes.
    let nine = &mut students[9];
    assert_eq!(nine.act(&session, "next", json!({})).await["type"], "ack");
    nine.wait_view(&session, |v| v["title"] == "Question 2 of 3")
        .await;

    // The host sees where everyone is.
    let view = host
        .wait_view(&session, |v| {
            v["status"] == "10 students: 2 finished, 5 playing, 3 not started"
        })
        .await;
    let detail = |name: &str| {
        view["players"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["detail"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let score = |i: usize| did[i].iter().map(|d| d.points).sum::<i64>();
    assert_eq!(detail("Student 00"), "not started");
    assert_eq!(
        detail("Student 02"),
        format!("question 2 of 3 · {} pts", score(2))
    );
    assert_eq!(
        detail("Student 03"),
        format!(
            "finished · {} right · {} pts",
            did[3].iter().filter(|d| d.ok).count(),
            score(3)
        )
    );
    assert_eq!(
        detail("Student 09"),
        format!("question 2 of 3 · {} pts", score(9))
    );
    let done_with = |q: usize| (0..STUDENTS).filter(|&i| answered(i) > q).count();
    for q in 0..3 {
        let right_at = (0..STUDENTS)
            .filter(|&i| answered(i) > q && right(i, q))
            .count();
        assert_eq!(view["bars"][q]["value"], done_with(q), "{view}");
        assert_eq!(view["bars"][q]["detail"], format!("done, {right_at} right"));
    }

    // A student may not close it; the host does.
    let no = students[1].act(&session, "close", json!({})).await;
    assert_eq!(no["type"], "error", "{no}");
    assert_eq!(host.act(&session, "close", json!({})).await["type"], "ack");
    let ended = students[0].recv_type("ended").await;
    assert_eq!(ended["results"]["rows"].as_array().unwrap().len(), STUDENTS);

    // The spreadsheet, cell by cell.
    let csv = common::results_csv(&server, &session, &token).await;
    let table: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let mut header = ["rank", "name", "score", "correct"]
        .map(str::to_owned)
        .to_vec();
    for n in 1..=3 {
        for f in ["answer", "correct", "points", "time"] {
            header.push(format!("q{n} {f}"));
        }
    }
    assert_eq!(table[0], header, "{csv}");
    assert_eq!(table.len(), STUDENTS + 1, "{csv}");
    // Best first, ties by name.
    let mut order: Vec<usize> = (0..STUDENTS).collect();
    order.sort_by_key(|&i| (-score(i), i));
    for (line, &i) in table[1..].iter().zip(&order) {
        let name = format!("Student {i:02}");
        assert_eq!(line[1], name, "{csv}");
        assert_eq!(line[2], score(i).to_string(), "{name}");
        let corrects = did[i].iter().filter(|d| d.ok).count();
        assert_eq!(line[3], corrects.to_string(), "{name}");
        for q in 0..3 {
            let cells = &line[4 + 4 * q..8 + 4 * q];
            match did[i].get(q) {
                Some(d) => {
                    assert_eq!(cells[0], d.label, "{name} q{}", q + 1);
                    assert_eq!(cells[1], if d.ok { "yes" } else { "no" });
                    assert_eq!(cells[2], d.points.to_string());
                    let t: f64 = cells[3].parse().unwrap();
                    assert!(
                        t >= d.secs.0 && t <= d.secs.1,
                        "{name} q{}: {t} s, expected {:?}",
                        q + 1,
                        d.secs
                    );
                }
                // Open when the host closed it: not answered.
                None if i == 9 && q == 1 => assert_eq!(cells, ["", "no", "0", ""], "{name}"),
                // Never reached.
                None => assert_eq!(cells, ["", "", "", ""], "{name} q{}", q + 1),
            }
        }
    }
    // Equal scores share a rank.
    for w in table[1..].windows(2) {
        if w[0][2] == w[1][2] {
            assert_eq!(w[0][0], w[1][0], "{csv}");
        }
    }
}
