//! The shipped sample spreadsheets played to the end over the real server by
//! a host and 10 students: `geography.quiz.xlsx` (Kahoot's template) and
//! `science.quiz.csv` (the quiz's own layout, every question type). Every
//! point a student gets is checked against the documented rule, bounded by
//! the test's own clock around the answer, and the results sum them up.

mod common;

use common::{Class, TestServer};
use serde_json::{Value, json};

const STUDENTS: usize = 10;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What a student sends for a question: the right answer, or a wrong one.
/// `view` is their screen (an `order` question needs the items as shown).
type Answer = fn(&Value, bool) -> Value;

/// One question of a sample: its answer maker, its time limit in seconds and
/// its points multiplier (0 for polls and clouds).
struct Question {
    answer: Answer,
    limit_s: i64,
    points: i64,
}

fn choice(right: u64, wrong: u64) -> impl Fn(&Value, bool) -> Value {
    move |_, ok| json!({ "choice": if ok { right } else { wrong } })
}

fn geography() -> Vec<Question> {
    vec![
        Question {
            answer: |v, ok| choice(2, 1)(v, ok),
            limit_s: 20,
            points: 1,
        },
        Question {
            answer: |v, ok| choice(1, 3)(v, ok),
            limit_s: 20,
            points: 1,
        },
        Question {
            answer: |_, ok| json!({ "choices": if ok { json!([1, 3]) } else { json!([1]) } }),
            limit_s: 30,
            points: 1,
        },
        Question {
            answer: |v, ok| choice(3, 2)(v, ok),
            limit_s: 10,
            points: 1,
        },
        Question {
            answer: |v, ok| choice(2, 1)(v, ok),
            limit_s: 10,
            points: 1,
        },
    ]
}

/// The places, in the list as shown, of the planets in the right order (or
/// with the first two swapped).
fn planets(view: &Value, ok: bool) -> Value {
    let items = view["order"]["items"].as_array().unwrap();
    let at = |label: &str| items.iter().position(|i| i["label"] == label).unwrap() + 1;
    let mut order: Vec<usize> = ["Mercury", "Venus", "Earth", "Mars"].map(at).to_vec();
    if !ok {
        order.swap(0, 1);
    }
    json!({ "order": order })
}

fn science() -> Vec<Question> {
    vec![
        Question {
            answer: |v, ok| choice(2, 1)(v, ok),
            limit_s: 20,
            points: 1,
        },
        Question {
            answer: |v, ok| choice(1, 2)(v, ok),
            limit_s: 10,
            points: 1,
        },
        Question {
            answer: |_, ok| json!({ "text": if ok { " au" } else { "Ag" } }),
            limit_s: 20,
            points: 1,
        },
        Question {
            answer: |_, ok| json!({ "value": if ok { 100 } else { 180 } }),
            limit_s: 20,
            points: 1,
        },
        Question {
            answer: planets,
            limit_s: 30,
            points: 1,
        },
        Question {
            answer: |_, ok| json!({ "choices": if ok { json!([1, 3]) } else { json!([2]) } }),
            limit_s: 20,
            points: 2,
        },
        Question {
            answer: |v, _| choice(2, 2)(v, true),
            limit_s: 20,
            points: 0,
        },
        Question {
            answer: |_, _| json!({ "text": "Heat" }),
            limit_s: 30,
            points: 0,
        },
    ]
}

/// Student `i` is right unless `i + q` is a multiple of 3.
fn right(i: usize, q: usize) -> bool {
    !(i + q).is_multiple_of(3)
}

async fn play(game: &str, questions: Vec<Question>) {
    let server = TestServer::start().await;
    let Class {
        mut host,
        session,
        token,
        mut students,
        ..
    } = Class::start(&server, game, json!({}), STUDENTS).await;
    host.wait_view(&session, |v| v["status"] == "10 players joined")
        .await;
    assert_eq!(host.act(&session, "start", json!({})).await["type"], "ack");

    let mut totals = [0i64; STUDENTS];
    // Per student, for the open question: the points the rule allows
    // (lowest, highest) and whether they answered right.
    let mut expected = [((0i64, 0i64), false); STUDENTS];
    let mut corrects = [0u64; STUDENTS];
    for (q, question) in questions.iter().enumerate() {
        let number = q + 1;
        let mut cloud = false;
        for (i, s) in students.iter_mut().enumerate() {
            let event = s
                .recv_until(|v| v["name"] == "question" && v["data"]["number"] == number)
                .await;
            let ends_at = event["data"]["ends_at"].as_i64().unwrap();
            cloud = event["data"]["type"] == "cloud";
            let view = s
                .wait_view(&session, |v| {
                    v["phase"] == "question"
                        && v["title"] == format!("Question {number} of {}", questions.len())
                })
                .await;
            let ok = right(i, number);
            let data = (question.answer)(&view, ok);
            let sent = now_ms();
            let ack = s.act(&session, "answer", data.clone()).await;
            let acked = now_ms();
            assert_eq!(
                ack["type"], "ack",
                "{game} q{number} student {i} {data}: {ack}"
            );
            // Speed points from the time left when the server took it
            // (between sending and the ack), times the multiplier.
            let limit = question.limit_s * 1000;
            let speed = |at: i64| 500 + 500 * (ends_at - at).clamp(0, limit) / limit;
            let bounds = if ok && question.points > 0 {
                (
                    speed(acked) * question.points,
                    speed(sent) * question.points,
                )
            } else {
                (0, 0)
            };
            expected[i] = (bounds, ok);
        }
        // Everyone answered: the reveal comes by itself, except for a word
        // cloud, which stays open for more words until the host reveals it.
        if cloud {
            assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
        }
        for (i, s) in students.iter_mut().enumerate() {
            if question.points == 0 {
                // A poll or a cloud scores nothing and tells nobody a result.
                s.recv_until(|v| v["name"] == "reveal" && v["data"]["number"] == number)
                    .await;
                continue;
            }
            let result = s.recv_until(|v| v["name"] == "result").await;
            let ((lo, hi), ok) = expected[i];
            let points = result["data"]["points"].as_i64().unwrap();
            assert!(
                (lo..=hi).contains(&points),
                "{game} q{number} student {i}: {points} points, expected {lo}..={hi}"
            );
            assert_eq!(
                result["data"]["correct"], ok,
                "{game} q{number} student {i}"
            );
            totals[i] += points;
            corrects[i] += u64::from(ok);
        }
        host.wait_view(&session, |v| v["phase"] == "reveal").await;
        assert_eq!(host.act(&session, "next", json!({})).await["type"], "ack");
    }

    // The podium, the results and the spreadsheet add up to those points.
    let ended = students[0].recv_type("ended").await;
    let rows = ended["results"]["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), STUDENTS);
    for (i, total) in totals.iter().enumerate() {
        let name = format!("Student {i:02}");
        let row = rows.iter().find(|r| r["name"] == name.as_str()).unwrap();
        assert_eq!(row["score"], *total, "{game} {name}");
        assert_eq!(row["correct"], corrects[i], "{game} {name}");
    }
    let csv = common::results_csv(&server, &session, &token).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), STUDENTS + 1, "{csv}");
    assert!(
        lines[0].starts_with("\"rank\",\"name\",\"score\",\"correct\""),
        "{csv}"
    );
    for row in &rows {
        let line = format!(
            "\"{}\",\"{}\",\"{}\",\"{}\"",
            row["rank"],
            row["name"].as_str().unwrap(),
            row["score"],
            row["correct"]
        );
        assert!(
            lines.iter().any(|l| l.starts_with(&line)),
            "{line} in {csv}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kahoot_template_sample_is_played_to_the_end_by_ten_students() {
    play("geography", geography()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_layout_sample_with_every_type_is_played_to_the_end_by_ten_students() {
    play("science", science()).await;
}
