//! One WebSocket connection: one task that reads frames and routes them, and
//! writes what the socket could not take at once.
//!
//! Writing goes through the connection's [`Socket`] (see `delivery`):
//! the fanout writes session messages straight to the socket when nothing is
//! queued before them, and this task writes the queue when the socket is
//! writable again. Reading uses tungstenite's `WebSocketContext` (unmasking,
//! fragments, size limits, pong and close answers) over the same TCP stream;
//! what it writes (pongs, the answer to a close) also goes through the
//! `Socket`, so every frame goes out whole and in order.
//!
//! Ordering per membership (session seat) is kept by the `Socket`: while a
//! `join`/`resume` is being answered, that seat's messages are held; when the
//! welcome arrives it is written first, then the replay, then held messages
//! newer than the welcome's `seq`. A message with a `seq` the socket has
//! already passed is dropped, so a client never sees one twice.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_tungstenite::tungstenite::protocol::{Role as WsRole, WebSocketConfig, WebSocketContext};
use hyper_tungstenite::tungstenite::{self, Message};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::delivery::{Socket, State, Subscriber};
use crate::keys::KeyKind;
use crate::limits::{FailureLimit, FrameLimit};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::protocol::{self, ClientFrame, ErrorCode, NameMode, ProtocolError, Role};
use crate::session::{
    Answer, Attached, MemberId, Outcome, Reply, Request, SessionId, new_member_id, new_secret,
    new_session_id, parse_token,
};

/// Bad frames in a row before the socket is closed.
const MAX_BAD_FRAMES: u32 = 20;
/// Seats one socket may hold at once (in as many sessions): a student in a
/// quiz and a chat beside it needs two.
const MAX_SEATS: usize = 8;
/// Shortest `nonce` a join may carry: it stands for the seat until the
/// welcome arrives, so it must not be guessable.
const MIN_NONCE: usize = 16;
mod seats;

const PING_EVERY: Duration = Duration::from_secs(30);
/// Silence after which a socket is considered dead.
const IDLE_LIMIT: Duration = Duration::from_secs(75);
/// How long what is still queued (the close frame last) may take to go out
/// once the connection is over.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// How the read loop ended.
enum End {
    /// The server closes with this code and reason.
    Close(u16, &'static str),
    /// The client sent a close frame: tungstenite's answer is all that is left.
    PeerClosed,
    /// A close frame was already written (the fanout closed this socket).
    Closed,
    /// The socket is broken or gone.
    Gone,
}

/// Serves an upgraded WebSocket until it closes or the node shuts down.
/// `permit` is the connection's place under `--max-connections`; `client`
/// the address rate limits count it under.
///
/// An `async` block rather than an `async fn`: an `async fn` keeps its
/// arguments twice in its state (as captured and as locals), and this state
/// is every connection's task (816 → 768 bytes, which puts tokio's task cell,
/// aligned to 128 bytes, at 896 rather than 1024).
#[allow(clippy::manual_async_fn)]
pub(crate) fn serve(
    node: Arc<Node>,
    upgrade: OnUpgrade,
    permit: Arc<OwnedSemaphorePermit>,
    client: IpAddr,
) -> impl Future<Output = ()> {
    async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let Some((mut ws, socket)) = accept(&node, upgraded) else {
            return;
        };
        Metrics::inc(&node.metrics.connections_total);
        Metrics::inc(&node.metrics.connections_open);
        let mut conn = Connection {
            id: socket.id,
            node: node.clone(),
            socket: socket.clone(),
            seats: Vec::new(),
            next_slot: 1,
            client,
            frames: FrameLimit::new(node.config.frame_rate, node.config.frame_burst),
            join_limit: FailureLimit::default(),
            bad_in_row: 0,
            pending: VecDeque::new(),
        };
        let end = tokio::select! {
            end = conn.read_loop(&mut ws) => end,
            state = socket.write_queued() => match state {
                State::TooSlow => {
                    Metrics::inc(&node.metrics.slow_consumers_total);
                    End::Close(1008, "too slow to keep up; reconnect and resume")
                }
                State::Closing => End::Closed,
                State::Open | State::Failed => End::Gone,
            },
        };
        // Boxed, like the frame handlers: its future (commands to the session,
        // perhaps forwarded over the cluster) is larger than the rest of the
        // connection's and only lives at the end.
        Box::pin(conn.detach_all()).await;
        let close = match end {
            End::Close(code, reason) => Some((code, reason)),
            // Tungstenite has queued its answer to the client's close frame.
            End::PeerClosed => None,
            End::Closed | End::Gone => {
                socket.end();
                None
            }
        };
        if let End::Close(..) | End::PeerClosed = end {
            let _ = ws.flush(&mut WsIo(&socket));
            socket.close(close);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.write_queued()).await;
        }
        drop(conn);
        socket.end();
        drop(permit);
        Metrics::dec(&node.metrics.connections_open);
    }
}

/// The upgraded connection as a WebSocket: tungstenite's context (holding
/// any frames the client sent right after its upgrade request) and the
/// connection's `Socket`.
fn accept(node: &Node, upgraded: Upgraded) -> Option<(WebSocketContext, Arc<Socket>)> {
    // The server serves every connection as `TokioIo<TcpStream>`.
    let hyper::upgrade::Parts { io, read_buf, .. } = match upgraded.downcast::<TokioIo<TcpStream>>()
    {
        Ok(parts) => parts,
        Err(_) => {
            tracing::error!("an upgraded connection is not a TCP stream");
            return None;
        }
    };
    let config = Some(ws_config(node.config.max_frame));
    // Bytes the client sent right after its upgrade request are its first
    // frames. `read_buf` is a view into hyper's 8 KiB read buffer: it must
    // not live on with the connection.
    let ws = if read_buf.is_empty() {
        WebSocketContext::new(WsRole::Server, config)
    } else {
        WebSocketContext::from_partially_read(read_buf.to_vec(), WsRole::Server, config)
    };
    let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    Some((ws, Arc::new(Socket::new(id, io.into_inner()))))
}

/// The socket as tungstenite's `Read + Write`: reads without blocking from
/// the TCP stream (`WouldBlock` when there is nothing), writes (pongs, close
/// answers) into the `Socket` like every other frame.
struct WsIo<'a>(&'a Socket);

impl io::Read for WsIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.stream().try_read(buf)
    }
}

impl io::Write for WsIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send(Bytes::copy_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A seat this socket holds in a session.
struct Seat {
    session: SessionId,
    slot: u32,
    member: MemberId,
}

/// An action whose answer (`ack` or `error`) is still to be written.
struct PendingReply {
    rx: oneshot::Receiver<Outcome>,
    reference: Option<Json>,
    session: String,
}

struct Connection {
    id: u64,
    node: Arc<Node>,
    socket: Arc<Socket>,
    /// Usually one or two.
    seats: Vec<Seat>,
    next_slot: u32,
    /// The client's address (behind a trusted proxy, the one it forwarded).
    client: IpAddr,
    /// Frames this socket may still send (`--frame-rate`, `--frame-burst`).
    frames: FrameLimit,
    /// Wrong join codes this socket may still send.
    join_limit: FailureLimit,
    bad_in_row: u32,
    /// Answers to actions, written in the order the actions were sent.
    pending: VecDeque<PendingReply>,
}

/// Resolves when the socket may have something to read (at once if
/// `buffered`: tungstenite may hold frames already read). `poll_read_ready`
/// rather than `readable()`: its future is 150 bytes of every connection's
/// state, and this task is the socket's only reader.
async fn readable(socket: &Socket, buffered: bool) -> io::Result<()> {
    poll_fn(|cx| {
        if buffered {
            return Poll::Ready(Ok(()));
        }
        socket.stream().poll_read_ready(cx)
    })
    .await
}

/// The next answer to an action, in the order the actions were sent.
async fn next_reply(pending: &mut VecDeque<PendingReply>) -> Option<String> {
    poll_fn(|cx| {
        let Some(front) = pending.front_mut() else {
            return Poll::Pending;
        };
        let Poll::Ready(result) = Pin::new(&mut front.rx).poll(cx) else {
            return Poll::Pending;
        };
        let Some(p) = pending.pop_front() else {
            return Poll::Pending;
        };
        let result =
            Answer::done(result.unwrap_or_else(|_| Err(crate::session::unknown_session())));
        Poll::Ready(match (result, p.reference) {
            (Ok(()), Some(r)) => Some(protocol::encode_ack(&r, &p.session)),
            (Ok(()), None) => None,
            (Err(e), r) => Some(protocol::encode_error(&e, r.as_ref(), Some(&p.session))),
        })
    })
    .await
}

impl Connection {
    async fn read_loop(&mut self, ws: &mut WebSocketContext) -> End {
        let shutdown = self.node.shutdown.clone();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut last_seen = Instant::now();
        // Frames that came with the upgrade request are already buffered:
        // read before waiting for the socket.
        let mut buffered = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return End::Close(1001, "server shutting down"),
                reply = next_reply(&mut self.pending), if !self.pending.is_empty() => {
                    if let Some(frame) = reply {
                        self.reply(frame);
                    }
                }
                _ = ping.tick() => {
                    if last_seen.elapsed() > IDLE_LIMIT {
                        return End::Close(1001, "no sign of life");
                    }
                    self.socket.send(protocol::ws_ping());
                }
                ready = readable(&self.socket, buffered) => {
                    buffered = false;
                    if ready.is_err() {
                        return End::Gone;
                    }
                    let msg = match ws.read(&mut WsIo(&self.socket)) {
                        Ok(m) => m,
                        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(tungstenite::Error::Capacity(e)) => {
                            tracing::debug!(conn = self.id, error = %e, "frame far above the limit");
                            return End::Close(1009, "frame too large");
                        }
                        Err(tungstenite::Error::Utf8(e)) => {
                            tracing::debug!(conn = self.id, error = %e, "text frame not UTF-8");
                            return End::Close(1007, "text frames must be valid UTF-8");
                        }
                        Err(tungstenite::Error::Protocol(e)) => {
                            tracing::debug!(conn = self.id, error = %e, "websocket protocol error");
                            return End::Close(1002, "websocket protocol error");
                        }
                        Err(e) => {
                            tracing::debug!(conn = self.id, error = %e, "websocket read error");
                            return End::Gone;
                        }
                    };
                    last_seen = Instant::now();
                    match msg {
                        Message::Text(text) => {
                            // Boxed: the handlers' futures are large and
                            // short-lived; the connection's own stays small.
                            if let Some((code, reason)) = Box::pin(self.on_text(&text)).await {
                                return End::Close(code, reason);
                            }
                        }
                        Message::Binary(_) => {
                            match self.over_limit(None) {
                                Some(Some((code, reason))) => return End::Close(code, reason),
                                Some(None) => continue,
                                None => {}
                            }
                            let err = ProtocolError::new(ErrorCode::BadFrame, "frames must be JSON text, not binary");
                            if let Some((code, reason)) = self.bad_frame(&err, None) {
                                return End::Close(code, reason);
                            }
                        }
                        Message::Close(_) => return End::PeerClosed,
                        Message::Ping(_) => {
                            if let Some(Some((code, reason))) = self.over_limit(None) {
                                return End::Close(code, reason);
                            }
                            // Writes the pong tungstenite queued.
                            let _ = ws.flush(&mut WsIo(&self.socket));
                        }
                        Message::Pong(_) | Message::Frame(_) => {}
                    }
                }
            }
        }
    }

    /// The socket's frame limit, taken before any work is done for a frame
    /// (bad and binary frames and pings count too). `None`: go on; `Some`:
    /// the frame was refused, and with a close code if the client has gone
    /// on sending past its refusals. A refused text frame that can be read
    /// gets its `ref` and `session` echoed.
    fn over_limit(&mut self, text: Option<&str>) -> Option<Option<(u16, &'static str)>> {
        let Err((wait, cut_off)) = self.frames.admit() else {
            return None;
        };
        Metrics::inc(&self.node.metrics.rate_limited_total);
        if cut_off {
            return Some(Some((1008, "too many frames; slow down and reconnect")));
        }
        let frame = text
            .filter(|t| t.len() <= self.node.config.max_frame)
            .and_then(|t| ClientFrame::parse(t).ok());
        let err = ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "too many messages at once (at most {} a second); this one was not handled",
                self.node.config.frame_rate
            ),
        )
        .retry_after(wait);
        let reply = protocol::encode_error(
            &err,
            frame.as_ref().and_then(ClientFrame::reference),
            frame.as_ref().and_then(ClientFrame::session),
        );
        self.reply(reply);
        Some(None)
    }

    async fn on_text(&mut self, text: &str) -> Option<(u16, &'static str)> {
        Metrics::inc(&self.node.metrics.frames_in_total);
        if let Some(close) = self.over_limit(Some(text)) {
            return close;
        }
        let max = self.node.config.max_frame;
        if text.len() > max {
            let err = ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame of {} bytes is above the limit of {max} bytes",
                    text.len()
                ),
            );
            return self.bad_frame(&err, None);
        }
        let frame = match ClientFrame::parse(text) {
            Ok(f) => f,
            Err(err) => return self.bad_frame(&err, None),
        };
        self.bad_in_row = 0;
        let session = frame.session().map(str::to_owned);
        let result = match frame {
            ClientFrame::Host {
                game,
                params,
                key,
                names,
            } => self.host(&game, params, key, names).await,
            ClientFrame::Join {
                code,
                name,
                nonce,
                role,
                key,
            } => self.join(&code, name, nonce, role, key).await,
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
                self.reply(pong);
                Ok(())
            }
        };
        if let Err(err) = result {
            Metrics::inc(&self.node.metrics.frames_bad_total);
            let frame = protocol::encode_error(&err, None, session.as_deref());
            self.reply(frame);
            if err.code == ErrorCode::RateLimited && self.join_limit.exhausted() {
                return Some((1008, "too many wrong join codes"));
            }
        }
        None
    }

    fn bad_frame(
        &mut self,
        err: &ProtocolError,
        session: Option<&str>,
    ) -> Option<(u16, &'static str)> {
        Metrics::inc(&self.node.metrics.frames_bad_total);
        self.bad_in_row += 1;
        let frame = protocol::encode_error(err, None, session);
        self.reply(frame);
        (self.bad_in_row >= MAX_BAD_FRAMES).then_some((1008, "too many bad frames"))
    }

    /// A frame for this socket only (ack, error, pong).
    fn reply(&self, json: String) {
        self.socket.send(protocol::ws_text(json));
    }

    fn seat(&self, session: &str) -> Option<&Seat> {
        self.seats.iter().find(|s| &*s.session == session)
    }

    fn take_seat(&mut self, session: &str) -> Option<Seat> {
        let i = self.seats.iter().position(|s| &*s.session == session)?;
        Some(self.seats.swap_remove(i))
    }

    /// Reserves a slot and subscribes it (on this node and, in a cluster, to
    /// the session's channel) before the session computes the welcome, so
    /// nothing sent after the welcome can be missed.
    async fn open_seat(
        &mut self,
        session: &SessionId,
        member: &MemberId,
    ) -> Result<u32, ProtocolError> {
        if self.seats.len() >= MAX_SEATS && self.seat(session).is_none() {
            return Err(ProtocolError::new(
                ErrorCode::Refused,
                format!(
                    "one connection can be in at most {MAX_SEATS} games at once; leave one first"
                ),
            ));
        }
        self.node.follow(session).await?;
        let slot = self.next_slot;
        self.next_slot += 1;
        self.socket.open(slot);
        self.node.fanout.subscribe(
            session,
            member,
            Subscriber {
                socket: self.socket.clone(),
                slot,
            },
        );
        Ok(slot)
    }

    /// Gives up a seat this socket held: its subscription ends and the
    /// session counts one connection less on it (the seat itself stays).
    async fn release_seat(&mut self, old: Seat) {
        self.close_seat(&old.session, &old.member, old.slot).await;
        let gone = Request::Disconnected { member: old.member };
        self.node.notify(&old.session, gone).await;
    }

    async fn close_seat(&mut self, session: &str, member: &str, slot: u32) {
        self.node.fanout.unsubscribe(session, member, self.id);
        self.node.unfollow(session).await;
        self.socket.forget(slot);
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
                self.socket.attach(
                    slot,
                    attached.seq,
                    attached.frames.into_iter().map(protocol::ws_text),
                );
                // Callers release a seat the socket held in this session
                // before opening another; never leave one behind.
                if let Some(old) = self.take_seat(&session) {
                    self.release_seat(old).await;
                }
                self.seats.reserve_exact(1);
                self.seats.push(Seat {
                    session,
                    slot,
                    member,
                });
                Ok(())
            }
            Err(e) => {
                self.close_seat(&session, &member, slot).await;
                Err(e)
            }
        }
    }

    async fn action(&mut self, session: String, name: String, data: Json, reference: Option<Json>) {
        let Some(seat) = self.seat(&session) else {
            let err = ProtocolError::new(
                ErrorCode::NotMember,
                "you are not in this session on this connection (join or resume first)",
            );
            let frame = protocol::encode_error(&err, reference.as_ref(), Some(&session));
            self.reply(frame);
            return;
        };
        let (reply, rx) = Reply::local();
        let action = Request::Action {
            member: seat.member.clone(),
            name,
            data,
        };
        if let Err(err) = self.node.send(&session, action, reply).await {
            let frame = protocol::encode_error(&err, reference.as_ref(), Some(&session));
            self.reply(frame);
            return;
        }
        self.pending.push_back(PendingReply {
            rx,
            reference,
            session,
        });
    }

    async fn leave(&mut self, session: &str) {
        let Some(seat) = self.take_seat(session) else {
            return;
        };
        self.close_seat(session, &seat.member, seat.slot).await;
        let leave = Request::Leave {
            member: seat.member,
        };
        self.node.notify(session, leave).await;
    }

    /// The socket is gone: seats are kept for `resume`, subscriptions end.
    async fn detach_all(&mut self) {
        for seat in std::mem::take(&mut self.seats) {
            self.node
                .fanout
                .unsubscribe(&seat.session, &seat.member, self.id);
            let gone = Request::Disconnected {
                member: seat.member,
            };
            self.node.notify(&seat.session, gone).await;
        }
    }
}

/// The WebSocket reader's settings: a small read buffer (the default would
/// cost 128 KiB per socket, and it is kept for the socket's life; a client
/// frame is usually 100–300 bytes, and a larger one is read into a buffer of
/// its own size, 512 bytes per `read`) and a hard cap
/// well above `--max-frame`, past which the socket is closed with 1009
/// instead of answered with an error. (Writes do not go through tungstenite:
/// see `delivery::Socket`.)
fn ws_config(max_frame: usize) -> WebSocketConfig {
    let hard_cap = (max_frame * 16).max(1 << 20);
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
}

/// Bytes read from a WebSocket at a time, and the buffer every socket keeps
/// while idle (tungstenite allocates it up front). Clients send small frames
/// (an action is about 100 bytes), so one read takes a whole frame; a frame
/// at the 64 KiB limit takes 256 reads, which only a client sending large
/// frames pays for. 256 rather than 512 saves 256 bytes per connection.
const WS_READ_BUFFER: usize = 256;
