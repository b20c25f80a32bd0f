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
    let (status, csv) = http(
        server.addr,
        "GET",
        &format!("/api/sessions/{session}/results?format=csv&token={token}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{csv}");
    assert!(csv.starts_with("\"rank\",\"name\",\"score\",\"correct\"\r\n"));
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
