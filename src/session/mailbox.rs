//! A session's mailbox: two bounded queues, one for callers on this node
//! (who wait while it is full) and one for requests other nodes forwarded
//! (which never wait: a full queue refuses them), so whoever hands over a
//! forwarded request is never held up by one busy session.

use std::future::poll_fn;
use std::task::Poll;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{Envelope, Reply, Request};

/// What each of a session's two queues holds before it is full.
pub(crate) const MAILBOX: usize = 1024;

/// The sending side, kept by the node for each session it owns.
#[derive(Clone)]
pub(crate) struct MailboxSender {
    local: mpsc::Sender<Envelope>,
    forwarded: mpsc::Sender<Envelope>,
}

/// The receiving side, owned by the session's actor.
pub(crate) struct Mailbox {
    local: mpsc::Receiver<Envelope>,
    forwarded: mpsc::Receiver<Envelope>,
    local_open: bool,
    forwarded_open: bool,
    /// Which queue is read first next time, so neither starves the other.
    forwarded_first: bool,
}

/// A mailbox whose queues hold `capacity` items each.
pub(crate) fn mailbox(capacity: usize) -> (MailboxSender, Mailbox) {
    let (local_tx, local) = mpsc::channel(capacity);
    let (forwarded_tx, forwarded) = mpsc::channel(capacity);
    (
        MailboxSender {
            local: local_tx,
            forwarded: forwarded_tx,
        },
        Mailbox {
            local,
            forwarded,
            local_open: true,
            forwarded_open: true,
            forwarded_first: false,
        },
    )
}

impl MailboxSender {
    /// Queues an envelope from this node, waiting while the queue is full.
    /// Gives it back if the session is gone.
    pub(crate) async fn send(&self, envelope: Envelope) -> Result<(), Envelope> {
        self.local.send(envelope).await.map_err(|e| e.0)
    }

    /// Queues a request from this node, waiting while the queue is full.
    /// Gives it back if the session is gone.
    pub(crate) async fn send_request(
        &self,
        request: Request,
        reply: Reply,
    ) -> Result<(), (Request, Reply)> {
        match self.local.reserve().await {
            Ok(permit) => {
                permit.send(Envelope::Request(request, reply));
                Ok(())
            }
            Err(_) => Err((request, reply)),
        }
    }

    /// Queues a request another node forwarded, without waiting. Gives the
    /// reply back, saying whether the queue was full or the session gone.
    pub(crate) fn try_forward(
        &self,
        request: Request,
        reply: Reply,
    ) -> Result<(), TrySendError<Reply>> {
        match self.forwarded.try_reserve() {
            Ok(permit) => {
                permit.send(Envelope::Request(request, reply));
                Ok(())
            }
            Err(TrySendError::Full(())) => Err(TrySendError::Full(reply)),
            Err(TrySendError::Closed(())) => Err(TrySendError::Closed(reply)),
        }
    }
}

impl Mailbox {
    /// The next envelope from either queue; `None` once both are closed
    /// and empty.
    pub(crate) async fn recv(&mut self) -> Option<Envelope> {
        poll_fn(|cx| {
            self.forwarded_first = !self.forwarded_first;
            for forwarded in [self.forwarded_first, !self.forwarded_first] {
                let (rx, open) = if forwarded {
                    (&mut self.forwarded, &mut self.forwarded_open)
                } else {
                    (&mut self.local, &mut self.local_open)
                };
                if !*open {
                    continue;
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(envelope)) => return Poll::Ready(Some(envelope)),
                    Poll::Ready(None) => *open = false,
                    Poll::Pending => {}
                }
            }
            if self.local_open || self.forwarded_open {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await
    }

    /// An envelope already waiting in either queue.
    pub(crate) fn try_recv(&mut self) -> Option<Envelope> {
        self.forwarded_first = !self.forwarded_first;
        if self.forwarded_first {
            self.forwarded
                .try_recv()
                .or_else(|_| self.local.try_recv())
                .ok()
        } else {
            self.local
                .try_recv()
                .or_else(|_| self.forwarded.try_recv())
                .ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Control;

    fn leave(member: &str) -> Request {
        Request::Leave {
            member: member.into(),
        }
    }

    fn notice(member: &str) -> Envelope {
        Envelope::Request(leave(member), Reply::None)
    }

    fn member(e: &Envelope) -> &str {
        match e {
            Envelope::Request(Request::Leave { member }, _) => member,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_full_forwarded_queue_refuses_at_once_and_both_queues_are_read_in_turn() {
        let (tx, mut rx) = mailbox(2);
        tx.try_forward(leave("f1"), Reply::None).unwrap();
        tx.try_forward(leave("f2"), Reply::None).unwrap();
        assert!(matches!(
            tx.try_forward(leave("f3"), Reply::None),
            Err(TrySendError::Full(_))
        ));
        tx.send(notice("l1")).await.unwrap();
        tx.send(Envelope::Control(Control::Resync)).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = rx.recv().await.unwrap();
            seen.push(match &e {
                Envelope::Control(_) => "control".to_owned(),
                e => member(e).to_owned(),
            });
        }
        let last = rx.try_recv().unwrap();
        seen.push(match &last {
            Envelope::Control(_) => "control".to_owned(),
            e => member(e).to_owned(),
        });
        // Each queue keeps its order, and neither waits for the other to empty.
        assert_eq!(seen, ["f1", "l1", "f2", "control"]);
        drop(tx);
        assert!(rx.recv().await.is_none());
    }
}
