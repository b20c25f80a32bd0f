//! The examples for backend developers, run end to end against a real
//! node: `examples/chatbot.rs` joins a chat as a bot, answers the class, and
//! when its connection is cut resumes and answers what was said meanwhile,
//! once; `examples/push.rs` pushes a grading service's points into a quiz.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{API_KEY, Class, Client, TestServer, chat_with_host};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP relay to `upstream` whose connections the test can cut, as a
/// dropped Wi-Fi or a failed router does.
struct Relay {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let kept = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                kept.lock().unwrap().push(link);
            }
        });
        Relay {
            addr,
            links,
            accept,
        }
    }

    /// Drops every connection open through the relay (new ones still pass).
    fn cut(&self) -> usize {
        let links = std::mem::take(&mut *self.links.lock().unwrap());
        let open = links.iter().filter(|l| !l.is_finished()).count();
        links.iter().for_each(JoinHandle::abort);
        open
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// An example's binary (target/debug/examples/NAME), built here by the cargo
/// that runs the tests: `cargo test --all-targets` compiles examples only as
/// test harnesses under hashed names, and a binary left from an earlier
/// build would test other code than the file's. Cargo has nothing to do when
/// it is up to date.
fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--quiet", "--example", name]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let out = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo build --example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recess = PathBuf::from(env!("CARGO_BIN_EXE_recess"));
    let path = recess
        .parent()
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The bot's messages the student has received, in order.
fn replies(ana: &Client) -> Vec<String> {
    ana.log
        .iter()
        .filter(|v| v["type"] == "event" && v["name"] == "message" && v["data"]["from"] == "Helper")
        .map(|v| v["data"]["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn say_and_hear(ana: &mut Client, session: &str, text: &str) -> String {
    let ack = ana.act(session, "send", json!({ "text": text })).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let reply: Value = ana
        .recv_until(|v| {
            v["type"] == "event"
                && v["data"]["from"] == "Helper"
                && v["data"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(text) || !t.starts_with("Thank you"))
        })
        .await;
    reply["data"]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_chat_bot_example_answers_the_class_and_survives_a_dropped_connection() {
    let server = TestServer::start().await;
    let relay = Relay::start(server.addr).await;
    let (_host, session, code) = chat_with_host(&server).await;
    let mut ana = server.client().await;
    ana.join(&code, "Ana").await;

    let mut bot = tokio::process::Command::new(example("chatbot"))
        .args([
            "--url",
            &format!("ws://{}/games", relay.addr),
            "--code",
            &code,
        ])
        .env("RECESS_API_KEY", API_KEY)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the chat bot");
    let joined = ana
        .recv_until(|v| {
            v["type"] == "event" && v["name"] == "joined" && v["data"]["name"] == "Helper"
        })
        .await;
    assert_eq!(joined["data"]["name"], "Helper");

    let time = say_and_hear(&mut ana, &session, "what time is it?").await;
    assert!(
        time.starts_with("It is ") && time.contains("(UTC)"),
        "{time}"
    );
    let count = say_and_hear(&mut ana, &session, "how many people are here?").await;
    assert_eq!(count, "3 people are here, Ana, me included.");
    let echo = say_and_hear(&mut ana, &session, "I like maps").await;
    assert_eq!(
        echo,
        "Thank you, Ana: you said \"I like maps\". Ask me what time it is or how many people are here."
    );

    // The bot's connection drops; what is said meanwhile is answered once,
    // after it resumes (not rejoins: it is not announced again).
    assert_eq!(
        relay.cut(),
        1,
        "the bot's one connection ran through the relay"
    );
    let during = say_and_hear(&mut ana, &session, "are you still there?").await;
    assert!(during.contains("are you still there?"), "{during}");
    let after = say_and_hear(&mut ana, &session, "one more thing").await;
    assert!(after.contains("one more thing"), "{after}");
    let answered: Vec<_> = replies(&ana)
        .into_iter()
        .filter(|t| t.contains("are you still there?"))
        .collect();
    assert_eq!(answered.len(), 1, "answered once: {:?}", replies(&ana));
    let announced = ana
        .log
        .iter()
        .filter(|v| v["type"] == "event" && v["name"] == "joined" && v["data"]["name"] == "Helper")
        .count();
    assert_eq!(
        announced, 1,
        "the bot resumed its seat instead of joining again"
    );
    assert!(
        bot.try_wait().unwrap().is_none(),
        "the bot is still running"
    );
    bot.kill().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_push_example_adds_a_grading_services_points_to_a_running_quiz() {
    let server = TestServer::start().await;
    let questions = json!([{"text": "1 + 1?", "choices": ["2", "3"], "answer": 1}]);
    let mut class = Class::start(&server, "quiz", json!({"questions": questions}), 2).await;
    let ack = class.host.act(&class.session, "start", json!({})).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    // Both answer wrong, so the board (shown at the reveal) is all zeros.
    for student in &mut class.students {
        let ack = student
            .act(&class.session, "answer", json!({"choice": 2}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
    }
    // The node runs on this test's runtime: the tool must not block it.
    let push = |points: &[&str]| {
        let mut command = tokio::process::Command::new(example("push"));
        command
            .args([
                "--node",
                &server.addr.to_string(),
                "--session",
                &class.session,
            ])
            .args(["--reason", "Lab report"])
            .env("RECESS_API_KEY", API_KEY)
            .kill_on_drop(true);
        for p in points {
            command.args(["--points", p]);
        }
        async move {
            tokio::time::timeout(common::TIMEOUT, command.output())
                .await
                .expect("the push example finished")
                .expect("run the push example")
        }
    };
    let out = push(&["Student 01=700", "student 00=50"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"ok":true}"#
    );
    let told = class.students[1]
        .recv_until(|v| v["type"] == "event" && v["name"] == "award")
        .await;
    assert_eq!(
        told["data"],
        json!({"points": 700, "reason": "Lab report", "score": 700})
    );
    let board = class
        .host
        .wait_view(&class.session, |v| v["leaderboard"][0]["score"] == 700)
        .await;
    assert_eq!(board["leaderboard"][0]["name"], "Student 01");
    assert_eq!(board["leaderboard"][1]["score"], 50);

    // One unknown name: refused whole, the tool says why and fails.
    let out = push(&["Student 01=5", "Nobody=5"]).await;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("409") && said.contains("there is no student 'Nobody' in this quiz"),
        "{said}"
    );
    server.stop().await;
}
