//! Delivery of session messages to this node's sockets.
//!
//! A connection subscribes once per membership (session + member). Delivering
//! a batch encodes each message's WebSocket frame once for the whole node
//! ([`protocol::ws_text`]) and hands the same bytes to every subscribed
//! [`Socket`], which writes them at once when nothing is queued before them
//! (a non-blocking `write` from the delivering task: no channel, no task
//! wake-up, no copy per socket) and queues them otherwise, for its
//! connection task to write when the kernel takes more. Audiences above
//! `INLINE_WRITES` sockets are queued first and written by tasks of
//! `WRITE_CHUNK` sockets each. A socket whose queue holds
//! [`OUTBOUND_QUEUE`](socket::OUTBOUND_QUEUE) frames is too slow to keep up: it is closed with 1008
//! and its client resumes.
//!
//! Invariants (ARCHITECTURE.md, `delivery`):
//! - Everything written to a socket goes through its [`Socket`], under its
//!   lock: frames go out whole and in the order they were handed over, and
//!   nothing follows a close frame.
//! - A frame is written directly only when the queue is empty; otherwise it
//!   is appended, and the connection task, woken when the queue stopped
//!   being empty, writes the queue (resuming a partly written frame) when
//!   the socket is writable.
//! - Per seat, messages wait (`Held`) until the seat's welcome is written,
//!   then only messages with a higher `seq` than the last written one go out
//!   (`Live`; `seq` 0, an unsequenced notice, always): a client never sees a
//!   message twice or out of order.
//! - No fanout lock is held while writing to a socket.
//!
//! [`socket`] is one WebSocket's writing side; [`fanout`] is this node's
//! subscriptions and the delivery of a batch to them. Sessions know nothing
//! of either: they produce [`Outgoing`](crate::session::Outgoing) messages,
//! and what commits them hands those to the [`Fanout`].

pub(crate) mod fanout;
pub(crate) mod socket;

pub(crate) use fanout::{Fanout, Subscriber};
pub(crate) use socket::{Socket, State};
