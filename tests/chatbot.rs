//! `examples/chatbot.rs`, run end to end against a real node: it joins a
//! chat as a bot, answers the class, and when its connection is cut
//! resumes and answers what was said meanwhile, once.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{API_KEY, Client, TestServer, chat_with_host};
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

/// The example's binary, built by `cargo test --all-targets` beside the
/// server's (target/debug/examples/chatbot).
fn chatbot_binary() -> PathBuf {
    let recess = PathBuf::from(env!("CARGO_BIN_EXE_recess"));
    let path = recess
        .parent()
        .expect("target dir")
        .join("examples")
        .join("chatbot");
    let built = std::fs::metadata(&path).and_then(|m| m.modified());
    let source = std::fs::metadata(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chatbot.rs"))
        .and_then(|m| m.modified())
        .expect("examples/chatbot.rs");
    // `cargo test --test chatbot` alone does not build examples: a missing
    // or stale binary would test other code than the file's.
    assert!(
        built.is_ok_and(|built| built >= source),
        "{} is missing or older than examples/chatbot.rs: build it with `cargo build --example chatbot` (`cargo test --all-targets` does)",
        path.display()
    );
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

    let mut bot = tokio::process::Command::new(chatbot_binary())
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
