//! The quiz's teams and its per-student report over the real server: a host
//! and 10 students in 2 teams play three questions; the team results and
//! the results CSV (during the game and at the end) are checked cell by cell
//! against what the students did. And with generated names, the host's CSV
//! has the private real_name column.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::{Client, TestServer, http};
use serde_json::{Value, json};

const STUDENTS: usize = 10;
const LIMIT_S: f64 = 20.0;

fn questions() -> Value {
    json!([
        {"text": "2 + 2?", "choices": ["3", "4", "5"], "answer": 2},
        {"type": "type", "text": "Capital of France?", "answer": "Paris"},
        {"type": "poll", "text": "Fun?", "choices": ["Yes", "No"]},
    ])
}

/// What student `i` (0-based) sends for question `q` (1-based), and the
/// answer cell, correct cell the report should show.
fn plan(i: usize, q: usize) -> (Value, &'static str, &'static str) {
    match q {
        1 if i.is_multiple_of(3) => (json!({"choice": 1}), "3", "no"),
        1 => (json!({"choice": 2}), "4", "yes"),
        2 if i.is_multiple_of(2) => (json!({"text": " paris "}), "paris", "yes"),
        2 => (json!({"text": "Rome"}), "Rome", "no"),
        _ if i.is_multiple_of(2) => (json!({"choice": 1}), "Yes", ""),
        _ => (json!({"choice": 2}), "No", ""),
    }
}

fn name(i: usize) -> String {
    format!("S{:02}", i + 1)
}

async fn csv_rows(
    server: &TestServer,
    session: &str,
    token: &str,
) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let csv = common::results_csv(server, session, token).await;
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (header, rows)
}

/// What a student did at one question: the report's four cells, and the
/// seconds from just before the host started the question to the ack (the
/// most the server can have counted).
struct Did {
    answer: &'static str,
    correct: &'static str,
    points: i64,
    measured: f64,
}

/// Checks the report cells of question `q` for every student.
fn check_question(rows: &[HashMap<String, String>], did: &HashMap<String, Vec<Did>>, q: usize) {
    for row in rows {
        let d = &did[&row["name"]][q - 1];
        let cell = |f: &str| row[&format!("q{q} {f}")].clone();
        assert_eq!(cell("answer"), d.answer, "{} q{q}", row["name"]);
        assert_eq!(cell("correct"), d.correct, "{} q{q}", row["name"]);
        assert_eq!(cell("points"), d.points.to_string(), "{} q{q}", row["name"]);
        let time: f64 = cell("time").parse().unwrap();
        assert_eq!(cell("time"), format!("{time:.1}"), "one decimal");
        // (+ 0.05: the cell is rounded to a tenth)
        assert!(
            (0.0..=d.measured + 0.05).contains(&time),
            "{} q{q}: the report says {time} s, the student measured {}",
            row["name"],
            d.measured
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_students_in_two_teams_and_the_report_cell_by_cell() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    let w = host
        .host(
            "quiz",
            json!({"questions": questions(), "time_limit": LIMIT_S, "teams": ["Red", "Blue"]}),
        )
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();

    let mut students: Vec<Client> = Vec::new();
    for i in 0..STUDENTS {
        let mut c = server.client().await;
        let w = c.join(&code, &name(i)).await;
        let team = if i.is_multiple_of(2) { "Red" } else { "Blue" };
        assert!(
            w["view"]["text"]
                .as_str()
                .unwrap()
                .contains(&format!("You are on team {team}.")),
            "{w}"
        );
        students.push(c);
    }
    host.wait_view(&session, |v| {
        v["players"].as_array().is_some_and(|p| p.len() == STUDENTS)
    })
    .await;
    let mut before = Instant::now();
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");

    // Before the first reveal the report has the roster, every cell empty.
    let (header, rows) = csv_rows(&server, &session, &token).await;
    let mut columns: Vec<String> = ["rank", "name", "score", "correct", "team"]
        .map(String::from)
        .to_vec();
    for q in 1..=3 {
        for f in ["answer", "correct", "points", "time"] {
            columns.push(format!("q{q} {f}"));
        }
    }
    assert_eq!(header, columns);
    assert_eq!(rows.len(), STUDENTS);
    assert!(
        rows.iter()
            .all(|r| r["score"] == "0" && r["q1 answer"].is_empty())
    );

    let mut did: HashMap<String, Vec<Did>> = HashMap::new();
    for q in 1..=3 {
        for c in students.iter_mut() {
            c.recv_until(|v| {
                v["type"] == "event" && v["name"] == "question" && v["data"]["number"] == q
            })
            .await;
        }
        for (i, c) in students.iter_mut().enumerate() {
            let (data, answer, correct) = plan(i, q);
            let ack = c.act(&session, "answer", data).await;
            assert_eq!(ack["type"], "ack", "{ack}");
            did.entry(name(i)).or_default().push(Did {
                answer,
                correct,
                points: 0,
                measured: before.elapsed().as_secs_f64(),
            });
        }
        // Everyone answered: the reveal, and each student's points.
        host.recv_until(|v| {
            v["type"] == "event" && v["name"] == "reveal" && v["data"]["number"] == q
        })
        .await;
        if q < 3 {
            for (i, c) in students.iter_mut().enumerate() {
                let result = c
                    .recv_until(|v| v["type"] == "event" && v["name"] == "result")
                    .await;
                let d = did.get_mut(&name(i)).unwrap().last_mut().unwrap();
                assert_eq!(result["data"]["correct"], d.correct == "yes");
                d.points = result["data"]["points"].as_i64().unwrap();
            }
        }
        if q == 1 {
            // The report during the game: question 1 filled in, 2 and 3 empty.
            let (_, rows) = csv_rows(&server, &session, &token).await;
            check_question(&rows, &did, 1);
            for row in &rows {
                assert_eq!(row["score"], did[&row["name"]][0].points.to_string());
                for f in ["answer", "correct", "points", "time"] {
                    assert_eq!(row[&format!("q2 {f}")], "", "{f}");
                }
            }
        }
        before = Instant::now();
        assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    }
    let ended = host.recv_type("ended").await;

    // The final CSV, cell by cell.
    let (_, rows) = csv_rows(&server, &session, &token).await;
    for q in 1..=3 {
        check_question(&rows, &did, q);
    }
    let mut totals: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut last = i64::MAX;
    for (k, row) in rows.iter().enumerate() {
        let n = &row["name"];
        let i: usize = n[1..].parse::<usize>().unwrap() - 1;
        let d = &did[n];
        let score: i64 = d.iter().map(|d| d.points).sum();
        let correct = d.iter().filter(|d| d.correct == "yes").count();
        assert_eq!(row["score"], score.to_string(), "{n}");
        assert_eq!(row["correct"], correct.to_string(), "{n}");
        let team = if i.is_multiple_of(2) { "Red" } else { "Blue" };
        assert_eq!(row["team"], team, "{n}");
        assert!(score <= last, "sorted by score");
        if k == 0 {
            assert_eq!(row["rank"], "1");
        }
        last = score;
        let t = totals.entry(team).or_default();
        t.0 += score;
        t.1 += 1;
    }

    // The teams: the average of the members' scores, rounded down.
    let mut teams: Vec<(&str, i64, i64)> = totals
        .iter()
        .map(|(team, (sum, n))| (*team, sum / n, *n))
        .collect();
    teams.sort_by(|a, b| {
        b.1.cmp(&a.1).then(if a.0 == "Red" {
            std::cmp::Ordering::Less
        } else {
            std::cmp::Ordering::Greater
        })
    });
    let expected: Vec<Value> = teams
        .iter()
        .enumerate()
        .map(|(k, (team, score, n))| {
            let rank = if k == 1 && teams[0].1 == *score {
                1
            } else {
                k + 1
            };
            json!({"rank": rank, "team": team, "score": score, "members": n})
        })
        .collect();
    assert_eq!(
        ended["results"]["teams"],
        json!(expected),
        "{}",
        ended["results"]
    );
    let (status, body) = http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}/results?token={token}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["final"], true);
    assert_eq!(json["results"]["teams"], json!(expected), "{body}");
    // Every student's podium is the team podium.
    let view = students[1]
        .wait_view(&session, |v| v["phase"] == "podium")
        .await;
    assert_eq!(view["podium"][0]["name"], expected[0]["team"]);
    assert_eq!(view["podium"][0]["score"], expected[0]["score"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_names_give_the_host_a_private_real_name_column() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    host.send(json!({"type": "host", "game": "quiz", "names": "generated",
        "params": {"questions": [questions()[0].clone()], "time_limit": LIMIT_S}}))
        .await;
    let w = host.recv().await;
    assert_eq!(w["type"], "welcome", "{w}");
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let mut ana = server.client().await;
    let w = ana.join(&code, "Ana Lopez").await;
    let shown = w["player"]["name"].as_str().unwrap().to_owned();
    assert_ne!(shown, "Ana Lopez");
    host.wait_view(&session, |v| {
        v["players"].as_array().is_some_and(|p| p.len() == 1)
    })
    .await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");
    ana.recv_until(|v| v["type"] == "event" && v["name"] == "question")
        .await;
    assert_eq!(
        ana.act(&session, "answer", json!({"choice": 2})).await["type"],
        "ack"
    );
    host.recv_until(|v| v["type"] == "event" && v["name"] == "reveal")
        .await;

    // During the game and at the end, the host's CSV has the typed name.
    let (header, rows) = csv_rows(&server, &session, &token).await;
    assert_eq!(
        header[..5],
        ["rank", "name", "score", "correct", "real_name"]
    );
    assert_eq!(rows[0]["name"], shown);
    assert_eq!(rows[0]["real_name"], "Ana Lopez");
    assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    let ended = host.recv_type("ended").await;
    assert_eq!(ended["results"]["rows"][0]["real_name"], "Ana Lopez");
    assert_eq!(ended["results"]["private"], json!(["real_name"]));
    let theirs = ana.recv_type("ended").await;
    assert!(
        theirs["results"]["rows"][0].get("real_name").is_none(),
        "{theirs}"
    );
    let (_, rows) = csv_rows(&server, &session, &token).await;
    assert_eq!(rows[0]["real_name"], "Ana Lopez");
    server.stop().await;
}
