//! [`Socket`]: one WebSocket's TCP stream and what waits to be written to it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::protocol;

/// Frames queued for one socket (the kernel's buffer being full) past which
/// it counts as too slow once it has been over them, taking nothing, for
/// [`STALL_GRACE`]: a reader that keeps reading is spared a burst (a game
/// that broadcasts a few thousand messages at once).
pub(crate) const OUTBOUND_QUEUE: usize = 1024;
/// How long a socket over [`OUTBOUND_QUEUE`] may go without taking a byte
/// (counted from when a frame pushed past the bound first finds it so).
pub(crate) const STALL_GRACE: Duration = Duration::from_secs(3);
/// Past these, a socket is too slow however it reads: what one socket may
/// hold back (the frames are shared, but a reader far behind keeps them).
pub(crate) const OUTBOUND_QUEUE_MAX: usize = 4 * OUTBOUND_QUEUE;
pub(crate) const OUTBOUND_BYTES_MAX: usize = 8 << 20;
/// Messages held for one seat while its welcome is on the way.
pub(crate) const MAX_HELD: usize = 4096;
/// Queued frames written with one `writev`.
const WRITEV_MAX: usize = 64;

/// One WebSocket's TCP stream and everything waiting to be written to it,
/// shared by its connection task (which reads, and writes what had to wait)
/// and the fanout (which writes session messages).
pub(crate) struct Socket {
    pub id: u64,
    stream: TcpStream,
    out: Mutex<Out>,
}

/// Where a socket's writing stands.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    #[default]
    Open,
    /// A close frame is queued (or the peer closed): nothing follows it.
    Closing,
    /// The queue overflowed: the connection closes it with 1008.
    TooSlow,
    /// A write failed, or the connection ended: nothing is written any more.
    Failed,
}

#[derive(Default)]
struct Out {
    queue: Queue,
    /// Per membership slot of this socket (usually one or two).
    seats: Vec<(u32, Seat)>,
}

enum Seat {
    /// Welcome not written yet: messages wait here.
    Held(Vec<(u64, Bytes)>),
    /// Messages with a `seq` above this one are written.
    Live(u64),
}

#[derive(Default)]
struct Queue {
    frames: VecDeque<Bytes>,
    /// Bytes of `frames[0]` already written.
    written: usize,
    /// Bytes of `frames`, whole (for [`OUTBOUND_BYTES_MAX`]).
    bytes: usize,
    /// Writes that took bytes, ever (a counter, so that a write reads no clock).
    progress: u64,
    /// Once the queue is over [`OUTBOUND_QUEUE`]: since when it has been seen
    /// there with no write taking bytes (at `progress`). The clock is read
    /// only for frames pushed past the bound.
    stalled_since: Option<(Instant, u64)>,
    state: State,
    /// The connection task, woken when `frames` stops being empty or the
    /// state changes.
    waker: Option<Waker>,
}

impl Queue {
    /// Appends a frame; `false` if the socket takes no more (then the
    /// frame is dropped).
    fn push(&mut self, frame: Bytes) -> bool {
        if self.state != State::Open {
            return false;
        }
        if self.frames.len() >= OUTBOUND_QUEUE {
            let now = Instant::now();
            let stalled = match self.stalled_since {
                Some((since, at)) if at == self.progress => now - since >= STALL_GRACE,
                // First seen over the bound, or bytes moved since: the grace
                // starts now.
                _ => {
                    self.stalled_since = Some((now, self.progress));
                    false
                }
            };
            if stalled
                || self.frames.len() >= OUTBOUND_QUEUE_MAX
                || self.bytes >= OUTBOUND_BYTES_MAX
            {
                self.overflow();
                return false;
            }
        }
        self.append(frame);
        true
    }

    /// Queues a frame (the queue's byte count follows).
    fn append(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Too slow: only the frame being written is kept (a frame is never cut),
    /// the rest is dropped; the client resumes and gets it again.
    fn overflow(&mut self) {
        if self.state == State::Open {
            self.state = State::TooSlow;
            let keep = usize::from(self.written > 0);
            self.frames.truncate(keep);
            self.bytes = self.frames.iter().map(Bytes::len).sum();
            self.wake();
        }
    }

    /// The states in which the connection task stops writing.
    fn ended(&self) -> Option<State> {
        match self.state {
            State::TooSlow | State::Failed => Some(self.state),
            State::Closing if self.frames.is_empty() => Some(self.state),
            _ => None,
        }
    }

    fn fail(&mut self) {
        self.state = State::Failed;
        self.frames = VecDeque::new();
        self.written = 0;
        self.bytes = 0;
        self.wake();
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Writes as much of the queue as the socket takes without blocking.
    fn write_some(&mut self, stream: &TcpStream) {
        while let Some(front) = self.frames.front() {
            let result = if self.frames.len() == 1 {
                stream.try_write(&front[self.written..])
            } else {
                let mut slices = [IoSlice::new(&[]); WRITEV_MAX];
                let mut n = 0;
                for (slot, frame) in slices.iter_mut().zip(&self.frames) {
                    let bytes = if n == 0 {
                        &frame[self.written..]
                    } else {
                        &frame[..]
                    };
                    *slot = IoSlice::new(bytes);
                    n += 1;
                }
                stream.try_write_vectored(&slices[..n])
            };
            match result {
                Ok(0) => return self.fail(),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(error = %e, "socket write failed");
                    return self.fail();
                }
            }
        }
        // Drained: an idle socket keeps no queue memory.
        self.written = 0;
        self.bytes = 0;
        self.stalled_since = None;
        self.frames = VecDeque::new();
    }

    /// `n` more bytes were written.
    fn advance(&mut self, n: usize) {
        if n > 0 {
            self.progress += 1;
        }
        let mut n = n + self.written;
        self.written = 0;
        while let Some(front) = self.frames.front() {
            if n < front.len() {
                self.written = n;
                return;
            }
            n -= front.len();
            self.bytes = self.bytes.saturating_sub(front.len());
            self.frames.pop_front();
        }
    }

    /// One frame: straight to the socket if nothing is queued before it (the
    /// common case: no queue memory, no copy), else behind the queue. Only
    /// what the socket did not take is queued, for the connection task.
    fn offer(&mut self, frame: &Bytes, stream: &TcpStream) -> bool {
        if self.state != State::Open {
            return false;
        }
        if !self.frames.is_empty() {
            return self.push(frame.clone());
        }
        let written = match stream.try_write(frame) {
            Ok(n) if n == frame.len() => return true,
            Ok(0) => {
                self.fail();
                return false;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => {
                tracing::debug!(error = %e, "socket write failed");
                self.fail();
                return false;
            }
        };
        self.append(frame.clone());
        self.written = written;
        self.wake();
        true
    }

    /// After frames were pushed onto a queue that was empty before: write
    /// them now, and wake the connection task for whatever the kernel did not
    /// take. (A queue that was not empty is already the task's to write.)
    fn kick(&mut self, was_empty: bool, stream: &TcpStream) {
        if was_empty && !self.frames.is_empty() {
            self.write_some(stream);
            if !self.frames.is_empty() {
                self.wake();
            }
        }
    }
}

impl Socket {
    pub(crate) fn new(id: u64, stream: TcpStream) -> Socket {
        Socket {
            id,
            stream,
            out: Mutex::new(Out::default()),
        }
    }

    /// The stream, for reading (all writes go through this `Socket`).
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn state(&self) -> State {
        self.lock().queue.state
    }

    /// A frame for this socket only (ack, error, pong, ping), already framed.
    pub(crate) fn send(&self, frame: Bytes) {
        self.lock().queue.offer(&frame, &self.stream);
    }

    /// Membership `slot` is being attached: hold its messages until `attach`.
    pub(crate) fn open(&self, slot: u32) {
        let mut out = self.lock();
        out.seats.retain(|(s, _)| *s != slot);
        // Usually the socket's only seat: no room for four.
        out.seats.reserve_exact(1);
        out.seats.push((slot, Seat::Held(Vec::new())));
    }

    /// Writes the welcome (and replay) of `slot`, then the messages held for
    /// it with a `seq` above `seq`; later messages above the last written follow.
    pub(crate) fn attach(&self, slot: u32, seq: u64, frames: impl IntoIterator<Item = Bytes>) {
        let mut guard = self.lock();
        let Out { queue, seats } = &mut *guard;
        let was_empty = queue.frames.is_empty();
        for frame in frames {
            queue.push(frame);
        }
        let mut last = seq;
        let held = match seats.iter().position(|(s, _)| *s == slot) {
            Some(i) => match std::mem::replace(&mut seats[i].1, Seat::Live(seq)) {
                Seat::Held(held) => held,
                Seat::Live(_) => Vec::new(),
            },
            None => {
                seats.push((slot, Seat::Live(seq)));
                Vec::new()
            }
        };
        for (s, frame) in held {
            if s == 0 || s > last {
                last = last.max(s);
                queue.push(frame);
            }
        }
        if let Some((_, seat)) = seats.iter_mut().find(|(s, _)| *s == slot) {
            *seat = Seat::Live(last);
        }
        queue.kick(was_empty, &self.stream);
    }

    /// Membership `slot` ended: its messages are dropped from now on.
    pub(crate) fn forget(&self, slot: u32) {
        self.lock().seats.retain(|(s, _)| *s != slot);
    }

    /// Session messages `(seq, frame)` for membership `slot`, in order.
    /// Returns how many the socket took (written, queued or held). With
    /// `write_now` false they are only queued, and the caller calls
    /// [`Socket::flush`] afterwards.
    pub(crate) fn deliver(&self, slot: u32, messages: &[(u64, &Bytes)], write_now: bool) -> usize {
        let mut guard = self.lock();
        let Out { queue, seats } = &mut *guard;
        if queue.state != State::Open {
            return 0;
        }
        let Some((_, seat)) = seats.iter_mut().find(|(s, _)| *s == slot) else {
            return 0;
        };
        if let ([(seq, frame)], true, Seat::Live(last)) = (messages, write_now, &mut *seat) {
            if (*seq == 0 || *seq > *last) && queue.offer(frame, &self.stream) {
                *last = (*last).max(*seq);
                return 1;
            }
            return 0;
        }
        let was_empty = queue.frames.is_empty();
        let mut taken = 0;
        for &(seq, frame) in messages {
            match seat {
                Seat::Live(last) => {
                    if (seq == 0 || seq > *last) && queue.push(frame.clone()) {
                        *last = (*last).max(seq);
                        taken += 1;
                    }
                }
                Seat::Held(held) => {
                    if held.len() >= MAX_HELD {
                        queue.overflow();
                        break;
                    }
                    held.push((seq, frame.clone()));
                    taken += 1;
                }
            }
        }
        if write_now {
            queue.kick(was_empty, &self.stream);
        }
        taken
    }

    /// Writes what is queued, if the socket takes it now; wakes the
    /// connection task for the rest.
    pub(crate) fn flush(&self) {
        let mut out = self.lock();
        let q = &mut out.queue;
        if matches!(q.state, State::Open | State::Closing) {
            q.kick(true, &self.stream);
        }
    }

    /// Queues a close frame (`None`: the peer closed, and tungstenite has
    /// already queued the answer); nothing is written after it.
    pub(crate) fn close(&self, close: Option<(u16, &'static str)>) {
        let mut out = self.lock();
        let q = &mut out.queue;
        let was_empty = q.frames.is_empty();
        if matches!(q.state, State::Open | State::TooSlow) {
            if let Some((code, reason)) = close {
                q.append(protocol::ws_close(code, reason));
            }
            q.state = State::Closing;
            q.wake();
        }
        q.kick(was_empty, &self.stream);
    }

    /// The connection is over: nothing is queued or written any more.
    pub(crate) fn end(&self) {
        self.lock().queue.fail();
    }

    /// Writes queued frames whenever the socket can take them. Returns once
    /// the socket cannot go on: `TooSlow`, `Failed`, or `Closing` with the
    /// queue (the close frame last) written. The task waits for both the
    /// socket's write readiness and changes to the queue.
    pub(crate) async fn write_queued(&self) -> State {
        poll_fn(|cx| {
            let mut out = self.lock();
            let q = &mut out.queue;
            // Bounded: a socket that is always writable must not keep the
            // task here forever.
            for _ in 0..16 {
                if let Some(end) = q.ended() {
                    return Poll::Ready(end);
                }
                if q.frames.is_empty() {
                    break;
                }
                match self.stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => q.write_some(&self.stream),
                    Poll::Ready(Err(_)) => q.fail(),
                    Poll::Pending => break,
                }
            }
            if let Some(end) = q.ended() {
                return Poll::Ready(end);
            }
            match &mut q.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            if !q.frames.is_empty() {
                // Either waiting for the socket (registered above by
                // `poll_write_ready`) or out of turns: try again soon.
                if self.stream.poll_write_ready(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket};

    /// A connected pair: the server side as a `Socket`, and a client whose
    /// receive buffer is small so the server's writes block soon.
    async fn pair() -> (Arc<Socket>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpSocket::new_v4().unwrap();
        client.set_recv_buffer_size(4096).unwrap();
        let (client, accepted) = tokio::join!(
            client.connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let (server, _) = accepted.unwrap();
        (Arc::new(Socket::new(1, server)), client.unwrap())
    }

    fn frame(i: u32, len: usize) -> Bytes {
        let mut f = vec![b'.'; len];
        f[..4].copy_from_slice(&i.to_be_bytes());
        Bytes::from(f)
    }

    /// Reads `n` frames of `len` bytes and returns their numbers.
    async fn read_frames(client: &mut TcpStream, n: usize, len: usize) -> Vec<u32> {
        let mut buf = vec![0u8; n * len];
        client.read_exact(&mut buf).await.unwrap();
        buf.chunks(len)
            .map(|c| {
                assert!(c[4..].iter().all(|b| *b == b'.'), "a frame was cut");
                u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            })
            .collect()
    }

    #[tokio::test]
    async fn a_blocked_socket_queues_then_writes_everything_in_order() {
        let (socket, mut client) = pair().await;
        socket.open(7);
        socket.attach(7, 0, []);
        // 1000 frames of 3001 bytes: far more than the kernel buffers take
        // from a reader that does not read, and odd-sized so writes split
        // frames.
        let len = 3001;
        let frames: Vec<Bytes> = (0..1000).map(|i| frame(i, len)).collect();
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(socket.deliver(7, &[(i as u64 + 1, f)], true), 1);
        }
        // A duplicate and an old seq are dropped.
        assert_eq!(socket.deliver(7, &[(1000, &frames[999])], true), 0);
        assert_eq!(socket.deliver(7, &[(3, &frames[2])], true), 0);
        let queued = socket.lock().queue.frames.len();
        assert!(queued > 0, "the socket never blocked");
        assert_eq!(socket.state(), State::Open);
        let writer = socket.clone();
        let writing = tokio::spawn(async move { writer.write_queued().await });
        let got = read_frames(&mut client, 1000, len).await;
        assert_eq!(got, (0..1000).collect::<Vec<u32>>());
        socket.close(Some((1001, "bye")));
        assert_eq!(writing.await.unwrap(), State::Closing);
        let mut close = [0u8; 7];
        client.read_exact(&mut close).await.unwrap();
        assert_eq!(&close[..], &protocol::ws_close(1001, "bye")[..]);
        assert_eq!(
            socket.lock().queue.frames.capacity(),
            0,
            "a drained queue is freed"
        );
    }

    #[tokio::test]
    async fn a_socket_that_never_drains_is_too_slow_at_the_hard_bound() {
        let (socket, _client) = pair().await;
        socket.open(1);
        socket.attach(1, 0, []);
        let f = frame(0, 2000);
        let mut taken = 0;
        for seq in 1..=(OUTBOUND_QUEUE as u64 + 10_000) {
            let n = socket.deliver(1, &[(seq, &f)], true);
            if n == 0 {
                break;
            }
            taken += n;
        }
        assert_eq!(socket.state(), State::TooSlow);
        let q = socket.lock().queue.frames.len();
        assert!(q <= 1, "only a frame in flight is kept: {q}");
        assert!(taken > OUTBOUND_QUEUE, "{taken}");
        assert_eq!(socket.write_queued().await, State::TooSlow);
        socket.close(Some((1008, "too slow")));
        assert_eq!(socket.state(), State::Closing);
        assert_eq!(
            socket.deliver(1, &[(u64::MAX, &f)], true),
            0,
            "nothing after a close"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_past_the_bound_is_spared_while_it_takes_bytes() {
        let (socket, mut client) = pair().await;
        socket.open(1);
        socket.attach(1, 0, []);
        let f = frame(0, 500);
        let mut seq = 0;
        let mut push = |socket: &Socket| {
            seq += 1;
            socket.deliver(1, &[(seq, &f)], true)
        };
        while socket.lock().queue.frames.len() < OUTBOUND_QUEUE + 100 {
            assert_eq!(push(&socket), 1, "frame {seq}");
        }
        assert_eq!(socket.state(), State::Open, "just over the bound");
        // Most of the grace passes; then the reader takes some bytes.
        tokio::time::advance(STALL_GRACE - Duration::from_secs(1)).await;
        let mut buf = vec![0u8; 8 << 10];
        client.read_exact(&mut buf).await.unwrap();
        socket.flush();
        tokio::time::advance(Duration::from_secs(2)).await;
        // Past the grace since the queue first went over the bound, but not
        // since bytes last moved: it fills past the bound again unharmed.
        while socket.lock().queue.frames.len() < OUTBOUND_QUEUE + 100 {
            assert_eq!(
                push(&socket),
                1,
                "frame {seq}: bytes moved within the grace"
            );
        }
        assert_eq!(socket.state(), State::Open);
        tokio::time::advance(STALL_GRACE).await;
        assert_eq!(push(&socket), 0);
        assert_eq!(
            socket.state(),
            State::TooSlow,
            "nothing taken for the grace"
        );
    }

    #[tokio::test]
    async fn held_messages_follow_the_welcome_without_duplicates() {
        let (socket, mut client) = pair().await;
        socket.open(3);
        let (a, b, c) = (frame(1, 10), frame(2, 10), frame(3, 10));
        assert_eq!(socket.deliver(3, &[(4, &a), (5, &b)], true), 2);
        // The welcome was computed at seq 4: only 5 and later follow it.
        socket.attach(3, 4, [frame(0, 10)]);
        assert_eq!(socket.deliver(3, &[(5, &b), (6, &c), (0, &a)], false), 2);
        socket.flush();
        assert_eq!(read_frames(&mut client, 4, 10).await, [0, 2, 3, 1]);
        socket.forget(3);
        assert_eq!(socket.deliver(3, &[(7, &c)], true), 0);
    }
}
