//! One WebSocket connection: a reader task that parses frames and routes
//! them, and a writer task that owns the socket's sending half.
//!
//! The writer is where ordering is kept per membership (session seat): while
//! a `join`/`resume` is being answered, that seat's messages are held; when
//! the welcome arrives it is written first, then the replay, then held
//! messages newer than the welcome's `seq`. A message with a `seq` the socket
//! has already passed is dropped, so a client never sees one twice.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper_tungstenite::tungstenite::protocol::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use hyper_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use hyper_tungstenite::{HyperWebsocket, HyperWebsocketStream};
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::node::Node;
use crate::protocol::{self, ClientFrame, ErrorCode, ProtocolError};
use crate::session::fanout::{Outbound, Subscriber};
use crate::session::{Attached, Command, MemberId, SessionId, parse_token, random_id};

/// Frames queued for one socket before it counts as too slow.
const OUTBOUND_QUEUE: usize = 1024;
/// Messages held for one seat while its welcome is on the way.
const MAX_HELD: usize = 4096;
/// Bad frames in a row before the socket is closed.
const MAX_BAD_FRAMES: u32 = 20;
const PING_EVERY: Duration = Duration::from_secs(30);
/// Silence after which a socket is considered dead.
const IDLE_LIMIT: Duration = Duration::from_secs(75);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

type PendingReply = Pin<Box<dyn Future<Output = Option<Utf8Bytes>> + Send + Sync>>;

/// Serves an upgraded WebSocket until it closes or the node shuts down.
pub async fn serve(node: Arc<Node>, socket: HyperWebsocket) {
    let ws = match socket.await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return;
        }
    };
    Metrics::inc(&node.metrics.connections_total);
    Metrics::inc(&node.metrics.connections_open);
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let writer = tokio::spawn(write_loop(sink, rx));
    let mut conn = Connection {
        id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
        too_slow: CancellationToken::new(),
        node: node.clone(),
        tx,
        seats: HashMap::new(),
        next_slot: 1,
        join_limit: FailureLimit::new(),
        bad_in_row: 0,
        pending: FuturesOrdered::new(),
    };
    let close = conn.read_loop(stream).await;
    conn.detach_all().await;
    if let Some((code, reason)) = close {
        let _ = conn.tx.send(Outbound::Close { code, reason }).await;
    }
    drop(conn);
    let _ = writer.await;
    Metrics::dec(&node.metrics.connections_open);
}

/// A seat this socket holds in a session.
struct Seat {
    slot: u32,
    member: MemberId,
}

struct Connection {
    id: u64,
    /// Cancelled by the fanout when this socket's queue is full.
    too_slow: CancellationToken,
    node: Arc<Node>,
    tx: mpsc::Sender<Outbound>,
    seats: HashMap<SessionId, Seat>,
    next_slot: u32,
    join_limit: FailureLimit,
    bad_in_row: u32,
    /// Answers to actions, written in the order the actions were sent.
    pending: FuturesOrdered<PendingReply>,
}

impl Connection {
    /// Returns the close frame to send, if the server is the one closing.
    async fn read_loop(
        &mut self,
        mut stream: SplitStream<HyperWebsocketStream>,
    ) -> Option<(u16, &'static str)> {
        let shutdown = self.node.shutdown.clone();
        let too_slow = self.too_slow.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_seen = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Some((1001, "server shutting down")),
                _ = too_slow.cancelled() => {
                    Metrics::inc(&self.node.metrics.slow_consumers_total);
                    return Some((1008, "too slow to keep up; reconnect and resume"));
                }
                Some(reply) = self.pending.next(), if !self.pending.is_empty() => {
                    if let Some(frame) = reply {
                        self.send(Outbound::Frame(frame)).await;
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > IDLE_LIMIT {
                        return Some((1001, "no sign of life"));
                    }
                    self.send(Outbound::Ping).await;
                }
                msg = stream.next() => {
                    last_seen = Instant::now();
                    let msg = match msg {
                        None => return None,
                        Some(Ok(m)) => m,
                        Some(Err(tungstenite::Error::Capacity(e))) => {
                            tracing::debug!(conn = self.id, error = %e, "frame far above the limit");
                            return Some((1009, "frame too large"));
                        }
                        Some(Err(e)) => {
                            tracing::debug!(conn = self.id, error = %e, "websocket read error");
                            return None;
                        }
                    };
                    match msg {
                        Message::Text(text) => {
                            if let Some(close) = self.on_text(&text).await {
                                return Some(close);
                            }
                        }
                        Message::Binary(_) => {
                            let err = ProtocolError::new(ErrorCode::BadFrame, "frames must be JSON text, not binary");
                            if let Some(close) = self.bad_frame(&err, None).await {
                                return Some(close);
                            }
                        }
                        Message::Close(_) => return None,
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Option<(u16, &'static str)> {
        Metrics::inc(&self.node.metrics.frames_in_total);
        let max = self.node.config.max_frame;
        if text.len() > max {
            let err = ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame of {} bytes is above the limit of {max} bytes",
                    text.len()
                ),
            );
            return self.bad_frame(&err, None).await;
        }
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err(err) => return self.bad_frame(&err, None).await,
        };
        self.bad_in_row = 0;
        let session = frame.session().map(str::to_owned);
        let result = match frame {
            ClientFrame::Host { game, params, key } => self.host(&game, params, key).await,
            ClientFrame::Join { code, name, nonce } => self.join(&code, name, nonce).await,
            ClientFrame::Resume { token, last_seq } => self.resume(&token, last_seq).await,
            ClientFrame::Action {
                session,
                name,
                data,
                reference,
            } => {
                self.action(session, name, data, reference).await;
                Ok(())
            }
            ClientFrame::Leave { session } => {
                self.leave(&session).await;
                Ok(())
            }
            ClientFrame::Ping { reference } => {
                let pong = protocol::encode_pong(reference.as_ref());
                self.send(Outbound::Frame(pong.into())).await;
                Ok(())
            }
        };
        if let Err(err) = result {
            Metrics::inc(&self.node.metrics.frames_bad_total);
            let frame = protocol::encode_error(&err, None, session.as_deref());
            self.send(Outbound::Frame(frame.into())).await;
            if err.code == ErrorCode::RateLimited && self.join_limit.exhausted() {
                return Some((1008, "too many wrong join codes"));
            }
        }
        None
    }

    async fn bad_frame(
        &mut self,
        err: &ProtocolError,
        session: Option<&str>,
    ) -> Option<(u16, &'static str)> {
        Metrics::inc(&self.node.metrics.frames_bad_total);
        self.bad_in_row += 1;
        let frame = protocol::encode_error(err, None, session);
        self.send(Outbound::Frame(frame.into())).await;
        (self.bad_in_row >= MAX_BAD_FRAMES).then_some((1008, "too many bad frames"))
    }

    async fn send(&self, out: Outbound) {
        let _ = self.tx.send(out).await;
    }

    /// Reserves a slot and subscribes it (on this node and, in a cluster, to
    /// the session's channel) before the session computes the welcome, so
    /// nothing sent after the welcome can be missed.
    async fn open_seat(
        &mut self,
        session: &SessionId,
        member: &MemberId,
    ) -> Result<u32, ProtocolError> {
        self.node.follow(session).await?;
        let slot = self.next_slot;
        self.next_slot += 1;
        self.send(Outbound::Open { slot }).await;
        self.node.fanout.subscribe(
            session,
            member,
            Subscriber {
                conn: self.id,
                slot,
                tx: self.tx.clone(),
                too_slow: self.too_slow.clone(),
            },
        );
        Ok(slot)
    }

    async fn close_seat(&mut self, session: &str, member: &str, slot: u32) {
        self.node.fanout.unsubscribe(session, member, self.id);
        self.node.unfollow(session).await;
        self.send(Outbound::Forget { slot }).await;
    }

    async fn finish_seat(
        &mut self,
        session: SessionId,
        member: MemberId,
        slot: u32,
        result: Result<Attached, ProtocolError>,
    ) -> Result<(), ProtocolError> {
        match result {
            Ok(attached) => {
                self.send(Outbound::Attach {
                    slot,
                    seq: attached.seq,
                    frames: attached.frames,
                })
                .await;
                self.seats.insert(session, Seat { slot, member });
                Ok(())
            }
            Err(e) => {
                self.close_seat(&session, &member, slot).await;
                Err(e)
            }
        }
    }

    async fn host(
        &mut self,
        game: &str,
        params: Json,
        key: Option<String>,
    ) -> Result<(), ProtocolError> {
        if let Some(expected) = &self.node.config.host_key
            && key.as_deref() != Some(expected.as_str())
        {
            return Err(ProtocolError::new(
                ErrorCode::Unauthorized,
                "starting a game needs the host key (field `key`)",
            ));
        }
        let session: SessionId = random_id(12).into();
        let member: MemberId = format!("p{}", random_id(8)).into();
        let secret = random_id(24);
        let slot = self.open_seat(&session, &member).await?;
        let result = self
            .node
            .create_session(session.clone(), game, params, member.clone(), secret, true)
            .await
            .map(|(_, attached)| attached);
        self.finish_seat(session, member, slot, result).await
    }

    async fn join(
        &mut self,
        code: &str,
        name: String,
        nonce: Option<String>,
    ) -> Result<(), ProtocolError> {
        if nonce.as_ref().is_some_and(|n| n.is_empty() || n.len() > 64) {
            return Err(ProtocolError::new(
                ErrorCode::BadFrame,
                "`nonce` must be 1 to 64 characters",
            ));
        }
        if !self.join_limit.allow() {
            return Err(ProtocolError::new(
                ErrorCode::RateLimited,
                "too many wrong codes; wait a few seconds and check the code",
            ));
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let session = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            self.node.lookup_code(&code).await?
        } else {
            None
        };
        let Some(session) = session else {
            self.join_limit.failed();
            Metrics::inc(&self.node.metrics.join_failures_total);
            return Err(ProtocolError::new(
                ErrorCode::UnknownCode,
                format!(
                    "no game with code {code} is running; check the code on the teacher's screen"
                ),
            ));
        };
        let member: MemberId = format!("p{}", random_id(8)).into();
        let secret = random_id(24);
        let slot = self.open_seat(&session, &member).await?;
        let m = member.clone();
        let result = self
            .node
            .request(&session, |reply| Command::Join {
                member: m,
                secret,
                name,
                nonce,
                reply,
            })
            .await;
        match result {
            // A retried join: the seat exists under another member id.
            Ok(attached) if attached.member != member => {
                self.close_seat(&session, &member, slot).await;
                match welcome_token(&attached) {
                    // `u64::MAX`: this socket has no view yet, so a full one.
                    Some(token) => self.resume(&token, u64::MAX).await,
                    None => Err(ProtocolError::new(
                        ErrorCode::Internal,
                        "the seat could not be recovered; join with another name",
                    )),
                }
            }
            result => self.finish_seat(session, member, slot, result).await,
        }
    }

    async fn resume(&mut self, token: &str, last_seq: u64) -> Result<(), ProtocolError> {
        let Some((session, member, secret)) = parse_token(token) else {
            return Err(ProtocolError::new(
                ErrorCode::BadToken,
                "that is not a Recess token",
            ));
        };
        let session: SessionId = session.into();
        let member: MemberId = member.into();
        let secret = secret.to_owned();
        if let Some(old) = self.seats.remove(&session) {
            self.close_seat(&session, &old.member, old.slot).await;
            let _ = self
                .node
                .send(&session, Command::Disconnected { member: old.member })
                .await;
        }
        let slot = self.open_seat(&session, &member).await?;
        let m = member.clone();
        let result = self
            .node
            .request(&session, |reply| Command::Resume {
                member: m,
                secret,
                last_seq,
                reply,
            })
            .await
            .map_err(|e| match e.code {
                ErrorCode::UnknownSession => ProtocolError::new(
                    ErrorCode::BadToken,
                    "that session has ended or does not exist; join again with a code",
                ),
                _ => e,
            });
        self.finish_seat(session, member, slot, result).await
    }

    async fn action(&mut self, session: String, name: String, data: Json, reference: Option<Json>) {
        let Some(seat) = self.seats.get(session.as_str()) else {
            let err = ProtocolError::new(
                ErrorCode::NotMember,
                "you are not in this session on this connection (join or resume first)",
            );
            let frame = protocol::encode_error(&err, reference.as_ref(), Some(&session));
            self.send(Outbound::Frame(frame.into())).await;
            return;
        };
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Action {
            member: seat.member.clone(),
            name,
            data,
            reply: tx,
        };
        if let Err(err) = self.node.send(&session, cmd).await {
            let frame = protocol::encode_error(&err, reference.as_ref(), Some(&session));
            self.send(Outbound::Frame(frame.into())).await;
            return;
        }
        self.pending.push_back(Box::pin(async move {
            let result = rx
                .await
                .unwrap_or_else(|_| Err(crate::node::unknown_session()));
            match (result, reference) {
                (Ok(()), Some(r)) => Some(protocol::encode_ack(&r, &session).into()),
                (Ok(()), None) => None,
                (Err(e), r) => Some(protocol::encode_error(&e, r.as_ref(), Some(&session)).into()),
            }
        }));
    }

    async fn leave(&mut self, session: &str) {
        let Some(seat) = self.seats.remove(session) else {
            return;
        };
        self.close_seat(session, &seat.member, seat.slot).await;
        let _ = self
            .node
            .send(
                session,
                Command::Leave {
                    member: seat.member,
                },
            )
            .await;
    }

    /// The socket is gone: seats are kept for `resume`, subscriptions end.
    async fn detach_all(&mut self) {
        for (session, seat) in std::mem::take(&mut self.seats) {
            self.node
                .fanout
                .unsubscribe(&session, &seat.member, self.id);
            let _ = self
                .node
                .send(
                    &session,
                    Command::Disconnected {
                        member: seat.member,
                    },
                )
                .await;
        }
    }
}

/// The token in an `Attached`'s welcome frame.
fn welcome_token(attached: &Attached) -> Option<String> {
    let welcome: Json = serde_json::from_str(attached.frames.first()?.as_str()).ok()?;
    welcome.get("token")?.as_str().map(str::to_owned)
}

/// Failed joins allowed per connection: a burst of 5, then one every 2 s;
/// after 50 failures the connection is closed. With at most a few hundred live
/// codes among a million, guessing one this way takes days.
struct FailureLimit {
    tokens: f64,
    last: Instant,
    total: u32,
}

impl FailureLimit {
    const BURST: f64 = 5.0;
    const PER_SEC: f64 = 0.5;
    const MAX_TOTAL: u32 = 50;

    fn new() -> Self {
        FailureLimit {
            tokens: Self::BURST,
            last: Instant::now(),
            total: 0,
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * Self::PER_SEC)
            .min(Self::BURST);
        self.last = now;
    }

    fn allow(&mut self) -> bool {
        self.refill();
        self.tokens >= 1.0 && !self.exhausted()
    }

    fn failed(&mut self) {
        self.refill();
        self.tokens -= 1.0;
        self.total += 1;
    }

    fn exhausted(&self) -> bool {
        self.total >= Self::MAX_TOTAL
    }
}

enum SeatState {
    /// Welcome not written yet: messages wait here.
    Held(Vec<(u64, Utf8Bytes)>),
    /// Messages with a `seq` above this one are written.
    Live(u64),
}

async fn write_loop(
    mut sink: SplitSink<HyperWebsocketStream, Message>,
    mut rx: mpsc::Receiver<Outbound>,
) {
    let mut seats: HashMap<u32, SeatState> = HashMap::new();
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(out) = next {
            match out {
                Outbound::Deliver { slot, seq, frame } => match seats.get_mut(&slot) {
                    Some(SeatState::Live(last)) if seq == 0 || seq > *last => {
                        if seq > 0 {
                            *last = seq;
                        }
                        if sink.feed(Message::Text(frame)).await.is_err() {
                            break 'outer;
                        }
                    }
                    Some(SeatState::Live(_)) => {}
                    Some(SeatState::Held(held)) => {
                        if held.len() >= MAX_HELD {
                            break 'outer;
                        }
                        held.push((seq, frame));
                    }
                    None => {}
                },
                Outbound::Frame(frame) => {
                    if sink.feed(Message::Text(frame)).await.is_err() {
                        break 'outer;
                    }
                }
                Outbound::Open { slot } => {
                    seats.insert(slot, SeatState::Held(Vec::new()));
                }
                Outbound::Attach { slot, seq, frames } => {
                    for frame in frames {
                        if sink.feed(Message::Text(frame)).await.is_err() {
                            break 'outer;
                        }
                    }
                    let mut last = seq;
                    if let Some(SeatState::Held(held)) = seats.remove(&slot) {
                        for (s, frame) in held {
                            if s == 0 || s > last {
                                last = last.max(s);
                                if sink.feed(Message::Text(frame)).await.is_err() {
                                    break 'outer;
                                }
                            }
                        }
                    }
                    seats.insert(slot, SeatState::Live(last));
                }
                Outbound::Forget { slot } => {
                    seats.remove(&slot);
                }
                Outbound::Ping => {
                    if sink.feed(Message::Ping(Default::default())).await.is_err() {
                        break 'outer;
                    }
                }
                Outbound::Close { code, reason } => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break 'outer;
                }
            }
            written += 1;
            next = if written < 64 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}
