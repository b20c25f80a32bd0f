//! The delivery path over real sockets: frames written straight from the
//! fanout, queued when a socket is full, written on when it drains; order and
//! exactly-once per seat; the queue bound; the WebSocket handshake and control
//! frames now that writes bypass tungstenite.

mod common;

use std::net::SocketAddr;

use common::{Client, TIMEOUT, TestServer, http};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};

/// Broadcasts events `flood` {i, pad} of about `size` bytes, `i` from
/// `from` to `to`, in one action (one call may emit at most 1 MiB).
const FLOOD: &str = r#"
return {
  init = function(ctx, params) return {} end,
  join = function(state, ctx, player) end,
  action = function(state, ctx, player, name, data)
    if name ~= "flood" then return false, "unknown action" end
    local pad = string.rep("x", data.size)
    for i = data.from, data.to do
      ctx.broadcast("flood", { i = i, pad = pad })
    end
  end,
  view = function(state, player) return {} end,
}
"#;

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket client whose kernel receive buffer is small (8 KiB), so that
/// when it does not read, the server's writes soon block.
async fn small_buffer_client(addr: SocketAddr) -> Ws {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let stream = socket.connect(addr).await.expect("connect");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/games"), stream)
        .await
        .expect("websocket handshake");
    ws
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON frame, or the close code once the server closed.
async fn next(ws: &mut Ws) -> Result<Value, Option<u16>> {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, ws.next())
            .await
            .expect("nothing from the server within the timeout");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).expect("JSON")),
            Some(Ok(Message::Close(f))) => return Err(f.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return Err(None),
        }
    }
}

async fn join(ws: &mut Ws, code: &str, name: &str) -> Value {
    send(ws, json!({"type": "join", "code": code, "name": name})).await;
    loop {
        let v = next(ws).await.expect("open");
        match v["type"].as_str() {
            Some("welcome") => return v,
            Some("error") => panic!("join failed: {v}"),
            _ => {}
        }
    }
}

/// The host floods and reads everything itself: once it has the last
/// message, the server has written or queued all of them for every socket.
async fn flood(host: &mut Client, session: &str, count: u64, size: u64) {
    // Calls of at most 512 KiB each.
    let per_call = (512 * 1024 / size.max(1)).max(1);
    let mut from = 1;
    while from <= count {
        let to = (from + per_call - 1).min(count);
        let ack = host
            .act(
                session,
                "flood",
                json!({"from": from, "to": to, "size": size}),
            )
            .await;
        if ack["code"] == "rate_limited" {
            let wait = ack["retry_after_ms"].as_u64().expect("a retry time");
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            continue;
        }
        assert_eq!(ack["type"], "ack", "{ack}");
        from = to + 1;
    }
    host.recv_until(|v| v["name"] == "flood" && v["data"]["i"] == count)
        .await;
    host.log.clear();
}

/// Reads a flood's events until `until` (or the close): checks that they come
/// in order, each once, with increasing `seq`; returns the last `i` and the
/// close code, if the server closed.
async fn read_flood(ws: &mut Ws, until: u64) -> (u64, Option<u16>) {
    let (mut last_i, mut last_seq) = (0, 0);
    loop {
        let v = match next(ws).await {
            Ok(v) => v,
            Err(code) => return (last_i, code),
        };
        if v["name"] != "flood" {
            continue;
        }
        let (i, seq) = (v["data"]["i"].as_u64().unwrap(), v["seq"].as_u64().unwrap());
        assert_eq!(i, last_i + 1, "out of order or twice: {i} after {last_i}");
        assert!(seq > last_seq, "seq {seq} after {last_seq}");
        (last_i, last_seq) = (i, seq);
        if i == until {
            return (i, None);
        }
    }
}

async fn metric(server: &TestServer, name: &str) -> u64 {
    let mut total = 0;
    for addr in server.addrs() {
        let (_, body) = http(addr, "GET", "/metrics", None).await;
        total += body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_every_message_in_order_once() {
    let server = TestServer::with_games(&[("flood.lua", FLOOD)]).await;
    let mut host = server.client().await;
    let w = host.host("flood", json!({})).await;
    let (session, code) = (w["session"].as_str().unwrap(), w["code"].as_str().unwrap());
    let addr = server.addrs()[server.addrs().len() - 1];
    let mut slow = small_buffer_client(addr).await;
    join(&mut slow, code, "Slow").await;
    // 900 × 8 KB: several MB more than the kernel's buffers hold for a reader
    // that does not read, under the queue bound of 1024 frames.
    flood(&mut host, session, 900, 8000).await;
    // Only now does the slow client read: everything was queued for it.
    assert_eq!(read_flood(&mut slow, 900).await, (900, None));
    // And the socket works on as usual.
    flood(&mut host, session, 3, 10).await;
    assert_eq!(read_flood(&mut slow, 3).await, (3, None));
    assert_eq!(metric(&server, "recess_slow_consumers_total").await, 0);
    server.stop().await;
}

/// A game that broadcasts 3000 messages at once to a reader that keeps
/// reading: more frames than the queue bound are waiting for a moment, but
/// the reader takes bytes all along, so it is not cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_keeps_reading_is_spared_a_burst_past_the_queue_bound() {
    let server = TestServer::with_games(&[("flood.lua", FLOOD)]).await;
    let mut host = server.client().await;
    let w = host.host("flood", json!({})).await;
    let (session, code) = (w["session"].as_str().unwrap(), w["code"].as_str().unwrap());
    let addr = server.addrs()[server.addrs().len() - 1];
    let mut reader = small_buffer_client(addr).await;
    join(&mut reader, code, "Reader").await;
    let reading = tokio::spawn(async move { read_flood(&mut reader, 3000).await });
    flood(&mut host, session, 3000, 50).await;
    assert_eq!(reading.await.unwrap(), (3000, None));
    assert_eq!(metric(&server, "recess_slow_consumers_total").await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_at_the_queue_bound() {
    let server = TestServer::with_games(&[("flood.lua", FLOOD)]).await;
    let mut host = server.client().await;
    let w = host.host("flood", json!({})).await;
    let (session, code) = (w["session"].as_str().unwrap(), w["code"].as_str().unwrap());
    let addr = server.addrs()[server.addrs().len() - 1];
    let mut deaf = small_buffer_client(addr).await;
    join(&mut deaf, code, "Deaf").await;
    // 1024 frames queued (on top of what the kernel holds) is the bound.
    let mut rounds = 0;
    while metric(&server, "recess_slow_consumers_total").await == 0 {
        rounds += 1;
        assert!(rounds <= 8, "never counted as too slow");
        flood(&mut host, session, 400, 8000).await;
    }
    assert!(
        rounds >= 3,
        "cut off before the bound, after {rounds} rounds"
    );
    // What it reads is in order with no gaps, then the close with 1008.
    let (last, close) = read_flood(&mut deaf, u64::MAX).await;
    assert!(last > 0, "nothing was written before the close");
    assert_eq!(close, Some(1008));
    // The host was not affected.
    assert_eq!(
        host.act(session, "flood", json!({"from": 1, "to": 1, "size": 1}))
            .await["type"],
        "ack"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_many_sockets_reaches_each_in_order() {
    let server = TestServer::with_games(&[("flood.lua", FLOOD)]).await;
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/sessions",
        Some(&json!({"game": "flood"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let (session, code) = (
        created["session"].as_str().unwrap(),
        created["code"].as_str().unwrap(),
    );
    // More sockets per node than are written inline: the chunked writers.
    let mut players = Vec::new();
    for i in 0..150 {
        let mut c = server.client().await;
        c.join(code, &format!("p{i}")).await;
        players.push(c);
    }
    for i in 0..10 {
        let (status, body) = http(
            server.addr,
            "POST",
            &format!("/api/sessions/{session}/broadcast"),
            Some(&json!({"name": "n", "data": {"i": i}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    for p in &mut players {
        for i in 0..10 {
            let v = p
                .recv_until(|v| v["type"] == "event" && v["name"] == "n")
                .await;
            assert_eq!(v["data"]["i"], i);
        }
    }
    server.stop().await;
}

/// Reads an HTTP response head; returns it and the bytes after it.
async fn read_head(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return (head, buf[end + 4..].to_vec());
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("no answer")
            .expect("read");
        assert!(n > 0, "closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_with_the_upgrade_request_are_read() {
    let server = TestServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = format!(
        "GET /games HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.addr
    )
    .into_bytes();
    // A masked client frame in the same write as the request.
    let mut frame = Frame::message(
        r#"{"type":"ping","ref":"early"}"#.as_bytes().to_vec(),
        OpCode::Data(Data::Text),
        true,
    );
    frame.header_mut().mask = Some([7, 1, 2, 9]);
    frame.format(&mut bytes).unwrap();
    stream.write_all(&bytes).await.unwrap();
    let (head, rest) = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "RFC 6455's example accept key: {head}"
    );
    let mut ws = WebSocketStream::from_partially_read(stream, rest, Role::Client, None).await;
    let pong = next(&mut ws).await.expect("open");
    assert_eq!(pong, json!({"type": "pong", "ref": "early"}));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_and_a_client_close_is_echoed() {
    let server = TestServer::start().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/games", server.addr))
        .await
        .unwrap();
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    assert_eq!(
        pong.unwrap().unwrap(),
        Message::Pong(b"are you there".to_vec().into())
    );
    // An unmasked frame from a client is a protocol error: the socket ends.
    let mut raw = TcpStream::connect(server.addr).await.unwrap();
    raw.write_all(
        b"GET /games HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    read_head(&mut raw).await;
    let mut unmasked = Vec::new();
    FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    }
    .format(2, &mut unmasked)
    .unwrap();
    unmasked.extend_from_slice(b"{}");
    raw.write_all(&unmasked).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, raw.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok(),
        "the server kept a socket that broke the protocol"
    );

    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let echo = tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap();
    match echo {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Normal),
        other => panic!("no close answer: {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_count_against_max_connections() {
    let server =
        TestServer::start_in(common::games_dir_with_shipped(), |c| c.max_connections = 1).await;
    let first = Client::connect(server.addr).await;
    // The only place is the open WebSocket's: another connection waits.
    let addr = server.addr;
    let mut second = tokio::spawn(async move { Client::connect(addr).await });
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), &mut second).await;
    assert!(
        waited.is_err(),
        "a second connection was served beside the first"
    );
    first.close().await;
    let mut second = tokio::time::timeout(TIMEOUT, second)
        .await
        .expect("served once the first closed")
        .unwrap();
    second.send(json!({"type": "ping"})).await;
    assert_eq!(second.recv().await["type"], "pong");
    server.stop().await;
}
