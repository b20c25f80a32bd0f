//! A chat bot: a backend service that joins a Recess chat session as a bot
//! and answers the class, the way a real assistant backend would (it talks
//! to Recess only; Recess carries the conversation to the students).
//!
//! ```text
//! RECESS_API_KEY=KEY cargo run --example chatbot -- --code 482913
//! cargo run --example chatbot -- --url ws://school.example/games --code 482913 --name Helper --key KEY
//! ```
//!
//! It joins with `role: "bot"` and the API key (docs/protocol.md, "`join`
//! as a bot"), follows the chat's view to know who is in the room, and
//! answers every message someone else posts:
//!
//! - "what time is it" → the time (UTC);
//! - "how many people are here" → the number in the room's member list;
//! - anything else → echoed back politely, with what it can answer.
//!
//! When its connection drops (Wi-Fi, a node restarting or failing over) it
//! reconnects with backoff and `resume`s with its token and the last `seq`
//! it saw, so the messages posted meanwhile are replayed to it and each is
//! answered once. It exits when the session ends (`ended`, or a token the
//! server no longer knows), or when the join is refused.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(about = "A chat bot that joins a Recess chat session by its code")]
struct Args {
    /// The node's WebSocket address.
    #[arg(long, default_value = "ws://127.0.0.1:8080/games")]
    url: String,
    /// The session's join code (the 6 digits on the teacher's screen).
    #[arg(long)]
    code: String,
    /// The name the class sees.
    #[arg(long, default_value = "Helper")]
    name: String,
    /// One of the node's API keys.
    #[arg(long, env = "RECESS_API_KEY", hide_env_values = true)]
    key: String,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// Waits between reconnection attempts: doubling from the first, at most the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// What the bot keeps across connections.
struct Bot {
    name: String,
    /// The seat: the session and the token to resume it with.
    session: String,
    token: String,
    /// The highest `seq` handled: a replayed message at or below it was
    /// answered already.
    seq: u64,
    /// The chat's view, kept up to date with its patches.
    view: Value,
}

/// How one connection ended.
enum Over {
    /// The connection dropped: reconnect and resume.
    Dropped,
    /// The session is over, or the bot was refused: stop.
    Done(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(why) => {
            println!("chatbot: {why}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatbot: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<String, Error> {
    let (mut ws, _) = tokio_tungstenite::connect_async(args.url.as_str()).await?;
    let join = json!({"type": "join", "code": args.code, "name": args.name, "role": "bot", "key": args.key});
    send(&mut ws, &join).await?;
    let welcome = loop {
        let frame = recv(&mut ws)
            .await?
            .ok_or("the server closed the connection")?;
        match frame["type"].as_str() {
            Some("welcome") => break frame,
            Some("error") => return Err(format!("could not join: {}", frame["message"]).into()),
            _ => {}
        }
    };
    let text = |k: &str| welcome[k].as_str().unwrap_or_default().to_owned();
    let mut bot = Bot {
        name: welcome["player"]["name"]
            .as_str()
            .unwrap_or(&args.name)
            .to_owned(),
        session: text("session"),
        token: text("token"),
        seq: welcome["seq"].as_u64().unwrap_or(0),
        view: welcome["view"].clone(),
    };
    println!("chatbot: joined session {} as {}", bot.session, bot.name);
    let mut ws = Some(ws);
    let mut wait = BACKOFF.0;
    loop {
        let Some(mut socket) = ws.take() else {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(BACKOFF.1);
            ws = resume(&args.url, &mut bot).await?;
            continue;
        };
        match bot.serve(&mut socket).await {
            Over::Dropped => {
                println!("chatbot: connection lost; reconnecting");
                wait = BACKOFF.0;
            }
            Over::Done(why) => return Ok(why),
        }
    }
}

/// One attempt to take the seat back: the socket, or `None` to try again
/// later (the node is away, or has not seen the old connection drop yet).
async fn resume(url: &str, bot: &mut Bot) -> Result<Option<Ws>, Error> {
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
        return Ok(None);
    };
    let frame = json!({"type": "resume", "token": bot.token, "last_seq": bot.seq});
    if send(&mut ws, &frame).await.is_err() {
        return Ok(None);
    }
    loop {
        let Ok(Some(frame)) = recv(&mut ws).await else {
            return Ok(None);
        };
        match frame["type"].as_str() {
            Some("welcome") => {
                println!("chatbot: resumed after seq {}", bot.seq);
                return Ok(Some(ws));
            }
            Some("error") if frame["code"] == "bad_token" => {
                return Err(format!("the seat is gone: {}", frame["message"]).into());
            }
            // `unavailable`, `overloaded`: the node is busy or catching up.
            Some("error") => return Ok(None),
            _ => {}
        }
    }
}

impl Bot {
    /// Handles frames until the connection drops or the session is over.
    async fn serve(&mut self, ws: &mut Ws) -> Over {
        loop {
            let frame = match recv(ws).await {
                Ok(Some(frame)) => frame,
                Ok(None) | Err(_) => return Over::Dropped,
            };
            if frame["session"] != self.session.as_str() {
                continue;
            }
            let seq = frame["seq"].as_u64();
            if seq.is_some_and(|s| s <= self.seq) {
                continue; // replayed, and handled before the drop
            }
            let reply = match frame["type"].as_str() {
                Some("view") => {
                    recess::view::apply(&mut self.view, &frame["patch"]);
                    None
                }
                Some("event") if frame["name"] == "message" => self.answer(&frame["data"]),
                Some("ended") => return Over::Done("the session has ended".into()),
                Some("error") if frame["code"] == "kicked" => {
                    return Over::Done("the host removed the bot".into());
                }
                _ => None,
            };
            if let Some(seq) = seq {
                self.seq = seq;
            }
            if let Some(text) = reply {
                let action = json!({"type": "action", "session": self.session, "name": "send", "data": {"text": text}});
                if send(ws, &action).await.is_err() {
                    return Over::Dropped;
                }
            }
        }
    }

    /// The answer to a chat message, or `None` for the bot's own.
    fn answer(&self, message: &Value) -> Option<String> {
        let from = message["from"].as_str().unwrap_or("someone");
        let text = message["text"].as_str()?;
        if from == self.name {
            return None;
        }
        let asked = text.to_lowercase();
        if asked.contains("what time") {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (h, m) = (secs / 3600 % 24, secs / 60 % 60);
            return Some(format!("It is {h:02}:{m:02} (UTC), {from}."));
        }
        if asked.contains("how many") {
            let here = self.view["players"].as_array().map_or(0, Vec::len);
            let people = if here == 1 { "person is" } else { "people are" };
            return Some(format!("{here} {people} here, {from}, me included."));
        }
        // A message is at most 500 characters: quote the start of a long one.
        let mut quoted: String = text.chars().take(200).collect();
        if quoted.len() < text.len() {
            quoted.push('…');
        }
        Some(format!(
            "Thank you, {from}: you said \"{quoted}\". Ask me what time it is or how many people are here."
        ))
    }
}

async fn send(ws: &mut Ws, frame: &Value) -> Result<(), Error> {
    ws.send(Message::Text(frame.to_string().into())).await?;
    Ok(())
}

/// The next JSON frame, or `None` when the connection closed.
async fn recv(ws: &mut Ws) -> Result<Option<Value>, Error> {
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => return Ok(Some(serde_json::from_str(&text)?)),
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}
