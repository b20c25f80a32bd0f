//! WebSocket clients speaking protocol v1 (`/games`, JSON text frames).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::stats::Errors;
use crate::{Result, bail};

pub type Ws = WebSocketStream<TcpStream>;

/// How long a `join`/`host` may take before the client gives up.
pub const WELCOME_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens `ws://ADDR/games`. The read buffer is kept small: the load client
/// holds up to 10 000 of these.
pub async fn connect(addr: SocketAddr) -> Result<Ws> {
    let connecting = async {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{addr}/games"),
            stream,
            Some(config),
        )
        .await?;
        Ok::<_, crate::Error>(ws)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(r) => r,
        Err(_) => bail!("connecting to {addr} took more than {CONNECT_TIMEOUT:?}"),
    }
}

pub async fn send(ws: &mut Ws, frame: &Value) -> Result<()> {
    ws.send(Message::Text(frame.to_string().into())).await?;
    Ok(())
}

/// The next text frame; `None` once the server closed the socket.
pub async fn next_text(ws: &mut Ws) -> Result<Option<Utf8Bytes>> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(Message::Text(text))) => return Ok(Some(text)),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Reads until the `welcome` (returned) or an `error` (the error's message).
/// Other frames before it are dropped: the caller has no seat yet.
pub async fn welcome(ws: &mut Ws) -> Result<Value> {
    let waiting = async {
        loop {
            let Some(text) = next_text(ws).await? else {
                bail!("the server closed the socket before the welcome");
            };
            let frame: Value = serde_json::from_str(&text)?;
            match frame["type"].as_str() {
                Some("welcome") => return Ok(frame),
                Some("error") => bail!(
                    "{}: {}",
                    frame["code"].as_str().unwrap_or("error"),
                    frame["message"].as_str().unwrap_or("")
                ),
                _ => continue,
            }
        }
    };
    match tokio::time::timeout(WELCOME_TIMEOUT, waiting).await {
        Ok(r) => r,
        Err(_) => bail!("no welcome within {WELCOME_TIMEOUT:?}"),
    }
}

/// `join` with a code; returns the welcome.
pub async fn join(ws: &mut Ws, code: &str, name: &str) -> Result<Value> {
    send(ws, &json!({"type": "join", "code": code, "name": name})).await?;
    welcome(ws).await
}

/// Connects and joins as `name`, holding a permit of `gate` while doing it
/// (so thousands of players do not all connect at once).
pub async fn connect_and_join(
    gate: &tokio::sync::Semaphore,
    addr: SocketAddr,
    code: &str,
    name: &str,
) -> Result<Ws> {
    let _permit = gate.acquire().await?;
    let mut socket = connect(addr).await?;
    join(&mut socket, code, name).await?;
    Ok(socket)
}

/// `host` a game; returns the welcome (with `session` and `code`).
pub async fn host(ws: &mut Ws, game: &str, params: &Value) -> Result<Value> {
    send(ws, &json!({"type": "host", "game": game, "params": params})).await?;
    welcome(ws).await
}

/// An `action` with a `ref`.
pub async fn action(
    ws: &mut Ws,
    session: &str,
    name: &str,
    data: &Value,
    reference: u64,
) -> Result<()> {
    send(
        ws,
        &json!({"type": "action", "session": session, "name": name, "data": data, "ref": reference}),
    )
    .await
}

/// A string field of a frame, or an error naming it.
pub fn field<'a>(frame: &'a Value, name: &str) -> Result<&'a str> {
    match frame[name].as_str() {
        Some(s) => Ok(s),
        None => bail!("frame without `{name}`: {frame}"),
    }
}

/// Waits for `players` join reports on `notes` (`joined` reads one:
/// `Some(Ok)` joined, `Some(Err)` could not join, `None` anything else, which
/// ends the wait). Fails when a player could not join or joining took longer
/// than a welcome may plus 10 ms a player; returns the seconds it took.
pub async fn await_joins<T>(
    notes: &mut mpsc::Receiver<T>,
    players: usize,
    started: Instant,
    joined: impl Fn(T) -> Option<std::result::Result<(), String>>,
) -> Result<f64> {
    let deadline = started + WELCOME_TIMEOUT + Duration::from_millis(players as u64 * 10);
    let mut errors = Errors::default();
    for _ in 0..players {
        match tokio::time::timeout_at(deadline, notes.recv()).await {
            Ok(Some(note)) => match joined(note) {
                Some(Ok(())) => {}
                Some(Err(e)) => errors.add(e),
                None => break,
            },
            Ok(None) => break,
            Err(_) => bail!("players were still joining after {:?}", deadline - started),
        }
    }
    if errors.total() > 0 {
        bail!(
            "{} players could not join: {}",
            errors.total(),
            errors.to_json()
        );
    }
    let join_s = started.elapsed().as_secs_f64();
    eprintln!("loadgen: {players} players joined in {join_s:.1} s");
    Ok(join_s)
}
