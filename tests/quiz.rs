//! A whole quiz played over real WebSockets by a host and 30 students.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Barrier;

use common::{Client, TestServer, http};
use serde_json::{Value, json};

const PLAYERS: usize = 30;
const LIMIT_S: u64 = 20;

fn questions() -> Value {
    json!([
        {"text": "2 + 2?", "choices": ["3", "4", "5", "22"], "answer": 2},
        {"text": "Capital of Italy?", "choices": ["Rome", "Milan", "Turin", "Naples"], "answer": 1},
        {"text": "H2O is?", "choices": ["Salt", "Air", "Gold", "Water"], "answer": 4},
    ])
}

/// Which choice student `i` picks for question `q` (1-based): right for most,
/// wrong for every third.
fn pick(i: usize, q: usize, answer: u64) -> u64 {
    if (i + q).is_multiple_of(3) {
        answer % 4 + 1
    } else {
        answer
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Outcome {
    name: String,
    /// (question, points the server reported, points expected from our clock)
    points: Vec<(u64, i64, i64, bool)>,
    final_score: i64,
    log: Vec<Value>,
    results: Value,
}

/// Keys that would give the answer away while a question is open.
fn leaks(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| {
            k == "answer"
                || k == "correct"
                || (k == "style" && (x == "correct" || x == "wrong"))
                || leaks(x)
        }),
        Value::Array(a) => a.iter().any(leaks),
        _ => false,
    }
}

async fn student(
    mut c: Client,
    code: String,
    i: usize,
    answers: Vec<u64>,
    question_done: Arc<Barrier>,
) -> Outcome {
    let name = format!("Student {i:02}");
    let w = c.join(&code, &name).await;
    let session = w["session"].as_str().unwrap().to_owned();
    let mut points = Vec::new();
    for (q, answer) in answers.iter().enumerate() {
        let q = q + 1;
        let ev = c
            .recv_until(|v| {
                v["type"] == "event" && v["name"] == "question" && v["data"]["number"] == q
            })
            .await;
        let ends_at = ev["data"]["ends_at"].as_i64().unwrap();
        let choice = pick(i, q, *answer);
        let sent = now_ms();
        // Answer twice, pipelined: the session handles them in order, so the
        // second is refused whether or not the first ended the question.
        let (first, second) = (format!("a{q}"), format!("b{q}"));
        for r in [&first, &second] {
            c.send(json!({"type": "action", "session": session, "name": "answer", "data": {"choice": choice}, "ref": r}))
                .await;
        }
        let ack = c.recv_until(|v| v["ref"] == first.as_str()).await;
        assert_eq!(ack["type"], "ack", "{name} q{q}: {ack}");
        let again = c.recv_until(|v| v["ref"] == second.as_str()).await;
        assert_eq!(
            again["code"], "refused",
            "a second answer is refused: {again}"
        );
        // The host moves on only when every student has checked this.
        question_done.wait().await;
        let result = c
            .recv_until(|v| v["type"] == "event" && v["name"] == "result")
            .await;
        let correct = choice == *answer;
        assert_eq!(result["data"]["correct"], correct, "{name} q{q}");
        let expected = if correct {
            let left = (ends_at - sent).clamp(0, (LIMIT_S * 1000) as i64);
            500 + 500 * left / (LIMIT_S * 1000) as i64
        } else {
            0
        };
        points.push((
            q as u64,
            result["data"]["points"].as_i64().unwrap(),
            expected,
            correct,
        ));
    }
    let ended = c.recv_type("ended").await;
    let view = c.wait_view(&session, |v| v["phase"] == "podium").await;
    Outcome {
        name,
        points,
        final_score: view["score"].as_i64().unwrap_or(-1),
        log: c.log.clone(),
        results: ended["results"].clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_students_play_a_whole_quiz() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    let w = host
        .host(
            "quiz",
            json!({"questions": questions(), "time_limit": LIMIT_S}),
        )
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    let token = w["token"].as_str().unwrap().to_owned();
    let answers: Vec<u64> = questions()
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["answer"].as_u64().unwrap())
        .collect();

    let question_done = Arc::new(Barrier::new(PLAYERS + 1));
    let mut tasks = Vec::new();
    for i in 0..PLAYERS {
        let c = server.client().await;
        tasks.push(tokio::spawn(student(
            c,
            code.clone(),
            i,
            answers.clone(),
            question_done.clone(),
        )));
    }
    host.wait_view(&session, |v| {
        v["players"].as_array().is_some_and(|p| p.len() == PLAYERS)
    })
    .await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");
    for q in 1..=answers.len() {
        // Everyone answers, so the reveal comes without the timer.
        host.recv_until(|v| {
            v["type"] == "event" && v["name"] == "reveal" && v["data"]["number"] == q
        })
        .await;
        question_done.wait().await;
        let ack = host.act(&session, "next", json!({})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    let ended = host.recv_type("ended").await;

    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("student task"));
    }

    // Scores follow the rules: 500 + 500 * time_left / limit for a right answer.
    let mut expected_scores: HashMap<String, i64> = HashMap::new();
    for o in &outcomes {
        let mut total = 0;
        for (q, got, expected, correct) in &o.points {
            if *correct {
                assert!((500..=1000).contains(got), "{} q{q}: {got}", o.name);
                assert!(
                    (got - expected).abs() <= 50,
                    "{} q{q}: got {got}, expected about {expected}",
                    o.name
                );
            } else {
                assert_eq!(*got, 0);
            }
            total += got;
        }
        assert_eq!(
            o.final_score, total,
            "{}: the screen shows the sum of the points",
            o.name
        );
        expected_scores.insert(o.name.clone(), total);
    }

    // The results (and every student's copy of them) agree, sorted by score.
    let rows = ended["results"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), PLAYERS);
    let mut last = i64::MAX;
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let score = row["score"].as_i64().unwrap();
        assert_eq!(score, expected_scores[name], "{name}");
        assert!(score <= last, "results are sorted by score");
        last = score;
    }
    for o in &outcomes {
        assert_eq!(o.results, ended["results"]);
    }

    // No student frame gives the answer away while a question is open, and
    // every student saw the broadcasts in the same order with the same seqs.
    let broadcasts = |log: &[Value]| -> Vec<(u64, String)> {
        log.iter()
            .filter(|v| v["type"] == "event" && (v["name"] == "question" || v["name"] == "reveal"))
            .map(|v| {
                (
                    v["seq"].as_u64().unwrap(),
                    v["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let reference = broadcasts(&outcomes[0].log);
    assert_eq!(reference.len(), 2 * answers.len());
    for o in &outcomes {
        assert_eq!(broadcasts(&o.log), reference, "{}", o.name);
        let mut open = false;
        for v in &o.log {
            if v["type"] == "event" && v["name"] == "question" {
                open = true;
            } else if v["type"] == "event" && v["name"] == "reveal" {
                open = false;
            } else if open {
                assert!(
                    !leaks(v),
                    "{} saw the answer before the reveal: {v}",
                    o.name
                );
            }
        }
    }

    // The spreadsheet matches.
    let csv = common::results_csv(&server, &session, &token).await;
    assert!(csv.starts_with("\"rank\",\"name\",\"score\",\"correct\","));
    let csv_scores: HashMap<String, i64> = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(|r| {
            let cells = r.unwrap();
            (cells[1].to_owned(), cells[2].parse().unwrap())
        })
        .collect();
    assert_eq!(csv_scores, expected_scores);
    let (status, _) = http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}/results?format=csv&token={session}.x.y"),
        None,
    )
    .await;
    assert_eq!(status, 401, "a wrong token gets no results");
    server.stop().await;
}

/// One question of each type, as `games/quiz.lua` documents them.
fn every_type() -> Value {
    json!([
        {"text": "2 + 2?", "choices": ["3", "4", "5"], "answer": 2},
        {"text": "Which are even?", "choices": ["2", "3", "4"], "answer": [1, 3]},
        {"type": "truefalse", "text": "Ice is frozen water.", "answer": true},
        {"type": "type", "text": "Largest city of Switzerland?", "answer": ["Zürich"]},
        {"type": "slider", "text": "Water boils at?", "min": 0, "max": 200, "step": 5, "unit": "°C", "answer": 100, "tolerance": 20, "points": 2},
        {"type": "order", "text": "Smallest first", "items": ["one", "two", "three", "four"]},
        {"type": "poll", "text": "Favourite?", "choices": ["Red", "Blue"]},
        {"type": "cloud", "text": "One word?", "words": 1},
    ])
}

/// The `order` data that puts the items of `view` into `wanted`.
fn order_of(view: &Value, wanted: &[&str]) -> Value {
    let shown: Vec<&str> = view["order"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    json!(
        wanted
            .iter()
            .map(|w| shown.iter().position(|s| s == w).unwrap() + 1)
            .collect::<Vec<_>>()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_question_of_each_type_over_the_real_protocol() {
    let server = TestServer::start().await;
    let mut host = server.client().await;
    let w = host
        .host("quiz", json!({"questions": every_type(), "time_limit": 60}))
        .await;
    let session = w["session"].as_str().unwrap().to_owned();
    let code = w["code"].as_str().unwrap().to_owned();
    // Ana answers right, Ben wrong, Cal sends the wrong shape first.
    let mut ana = server.client().await;
    let mut ben = server.client().await;
    let mut cal = server.client().await;
    ana.join(&code, "Ana").await;
    ben.join(&code, "Ben").await;
    cal.join(&code, "Cal").await;
    host.wait_view(&session, |v| {
        v["players"].as_array().is_some_and(|p| p.len() == 3)
    })
    .await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");

    // (right for Ana, wrong for Ben, the wrong shape and then an answer for
    // Cal, the key the question is answered with, and whether it is scored)
    struct Step {
        key: &'static str,
        right: Value,
        wrong: Value,
        bad: Value,
        refusal: &'static str,
        scored: bool,
    }
    let steps = [
        Step {
            key: "choices",
            right: json!({"choice": 2}),
            wrong: json!({"choice": 1}),
            bad: json!({"text": "4"}),
            refusal: "pick one of the answers, 1 to 3",
            scored: true,
        },
        Step {
            key: "select",
            right: json!({"choices": [3, 1]}),
            wrong: json!({"choices": [1]}),
            bad: json!({"choice": 1}),
            refusal: "tick one or more answers and press Submit ({choices = {1, 3}})",
            scored: true,
        },
        Step {
            key: "choices",
            right: json!({"choice": 1}),
            wrong: json!({"choice": 2}),
            bad: json!({"choice": 3}),
            refusal: "pick one of the answers, 1 to 2",
            scored: true,
        },
        Step {
            key: "input",
            right: json!({"text": "  zurich "}),
            wrong: json!({"text": "Geneva"}),
            bad: json!({"value": 3}),
            refusal: "type your answer ({text = \"...\"})",
            scored: true,
        },
        Step {
            key: "slider",
            right: json!({"value": 95}),
            wrong: json!({"value": 150}),
            bad: json!({"value": 500}),
            refusal: "pick a number from 0 to 200, got 500",
            scored: true,
        },
        Step {
            key: "order",
            right: Value::Null,
            wrong: Value::Null,
            bad: json!({"order": [1, 2]}),
            refusal: "put all 4 items in order: {order = {3, 1, 2, ...}}, the places of the items as shown, in your order",
            scored: true,
        },
        Step {
            key: "choices",
            right: json!({"choice": 2}),
            wrong: json!({"choice": 2}),
            bad: json!({"choice": 7}),
            refusal: "pick one of the answers, 1 to 2",
            scored: false,
        },
        Step {
            key: "input",
            right: json!({"text": "Paris"}),
            wrong: json!({"text": "paris"}),
            bad: json!({"text": ""}),
            refusal: "type a word first",
            scored: false,
        },
    ];
    let mut expected_points = 0;
    for (i, step) in steps.iter().enumerate() {
        let number = i + 1;
        let title = format!("Question {number} of {}", steps.len());
        let mut views = Vec::new();
        for c in [&mut ana, &mut ben, &mut cal] {
            let v = c
                .wait_view(&session, |v| {
                    v["title"] == title.as_str() && v["phase"] == "question"
                })
                .await;
            assert!(
                v[step.key].is_object() || v[step.key].is_array(),
                "{title}: {v}"
            );
            assert!(!leaks(&v), "{title}: a student saw the answer: {v}");
            views.push(v);
        }
        let (right, wrong) = if step.key == "order" {
            (
                json!({"order": order_of(&views[0], &["one", "two", "three", "four"])}),
                json!({"order": order_of(&views[1], &["four", "three", "two", "one"])}),
            )
        } else {
            (step.right.clone(), step.wrong.clone())
        };
        let e = cal.act(&session, "answer", step.bad.clone()).await;
        assert_eq!(e["code"], "refused", "{title}: {e}");
        assert_eq!(e["message"], step.refusal, "{title}: {e}");
        for (c, data) in [
            (&mut ana, right.clone()),
            (&mut ben, wrong.clone()),
            (&mut cal, wrong),
        ] {
            let ack = c.act(&session, "answer", data).await;
            assert_eq!(ack["type"], "ack", "{title}: {ack}");
        }
        // Everyone answered: the reveal comes by itself.
        let reveal = host
            .recv_until(|v| {
                v["type"] == "event" && v["name"] == "reveal" && v["data"]["number"] == number
            })
            .await;
        if step.scored {
            assert!(reveal["data"]["label"].is_string(), "{reveal}");
            let r = ana
                .recv_until(|v| v["type"] == "event" && v["name"] == "result")
                .await;
            assert_eq!(r["data"]["correct"], true, "{title}: {r}");
            let points = r["data"]["points"].as_i64().unwrap();
            // Speed points within a few seconds of 60; the slider is 3/4 close, doubled.
            let (low, high) = if step.key == "slider" {
                (1400, 1500)
            } else {
                (950, 1000)
            };
            assert!((low..=high).contains(&points), "{title}: {points}");
            expected_points += points;
            for c in [&mut ben, &mut cal] {
                let r = c
                    .recv_until(|v| v["type"] == "event" && v["name"] == "result")
                    .await;
                assert_eq!(r["data"], json!({"correct": false, "points": 0}), "{title}");
            }
        } else {
            assert_eq!(
                reveal["data"]["type"],
                if i == 6 { "poll" } else { "cloud" }
            );
            let v = host
                .wait_view(&session, |v| {
                    v["phase"] == "reveal" && v["title"] == title.as_str()
                })
                .await;
            if i == 6 {
                assert_eq!(v["bars"][1]["value"], 3, "{v}");
            } else {
                assert_eq!(v["cloud"], json!([{"text": "Paris", "count": 3}]), "{v}");
            }
        }
        assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    }

    let ended = host.recv_type("ended").await;
    let rows = ended["results"]["rows"].as_array().unwrap();
    assert_eq!(rows[0]["name"], "Ana", "{ended}");
    assert_eq!(rows[0]["score"], expected_points);
    assert_eq!(rows[0]["correct"], 6, "the six scored questions");
    for row in &rows[1..] {
        assert_eq!(row["score"], 0, "{row}");
        assert_eq!(row["correct"], 0, "{row}");
    }
    // No student frame gave an answer away while a question was open.
    for c in [&ana, &ben, &cal] {
        let mut open = false;
        for v in &c.log {
            if v["type"] == "event" && v["name"] == "question" {
                open = true;
            } else if v["type"] == "event" && v["name"] == "reveal" {
                open = false;
            } else if open {
                assert!(!leaks(v), "saw the answer before the reveal: {v}");
            }
        }
    }
    server.stop().await;
}
