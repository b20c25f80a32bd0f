//! The replay log: the last messages of a session, so a reconnecting client
//! gets exactly what it missed.

use std::collections::VecDeque;

use super::{Audience, Outgoing};

/// Most bytes of frames the window keeps (beyond its newest message), so a
/// game sending large messages keeps fewer of them, in memory and in the
/// store. A class's messages are a few hundred bytes: 1000 of them are far
/// below this.
pub(crate) const MAX_REPLAY_BYTES: usize = 4 << 20;

/// A window of the most recent sequenced messages, oldest first.
#[derive(Debug)]
pub(crate) struct ReplayLog {
    /// The window, oldest first.
    messages: VecDeque<Outgoing>,
    /// How many messages the window keeps.
    capacity: usize,
    /// Bytes of the frames in the window.
    bytes: usize,
    /// Most bytes the window keeps (it always keeps the newest message).
    max_bytes: usize,
}

/// What a resume can be answered with.
pub(crate) enum Replay {
    /// Every message with `seq > last_seq` addressed to the member, in order.
    Complete(Vec<Outgoing>),
    /// Part of the range is gone: the client needs a full view instead.
    TooOld,
}

impl ReplayLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_max_bytes(capacity, MAX_REPLAY_BYTES)
    }

    /// A window of at most `capacity` messages and `max_bytes` bytes.
    pub(crate) fn with_max_bytes(capacity: usize, max_bytes: usize) -> Self {
        ReplayLog {
            messages: VecDeque::with_capacity(capacity.min(64)),
            capacity: capacity.max(1),
            bytes: 0,
            max_bytes,
        }
    }

    /// Appends a message; the `seq`s of those that fell out of the window
    /// are added to `evicted`.
    pub(crate) fn push(&mut self, message: Outgoing, evicted: &mut Vec<u64>) {
        self.bytes += message.frame.len();
        self.messages.push_back(message);
        while self.messages.len() > self.capacity
            || (self.bytes > self.max_bytes && self.messages.len() > 1)
        {
            let Some(old) = self.messages.pop_front() else {
                break;
            };
            self.bytes -= old.frame.len();
            evicted.push(old.seq);
        }
    }

    /// Messages after `last_seq` for `member`, if the window still holds every
    /// message after `last_seq` (up to `current_seq`).
    pub(crate) fn since(&self, last_seq: u64, current_seq: u64, member: &str) -> Replay {
        if last_seq >= current_seq {
            return Replay::Complete(Vec::new());
        }
        match self.messages.front() {
            Some(first) if first.seq <= last_seq + 1 => {}
            _ => return Replay::TooOld,
        }
        let start = self.messages.partition_point(|m| m.seq <= last_seq);
        Replay::Complete(
            self.messages
                .range(start..)
                .filter(|m| m.audience.includes(member))
                .cloned()
                .collect(),
        )
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Outgoing> {
        self.messages.iter()
    }
}

impl Audience {
    pub(crate) fn includes(&self, member: &str) -> bool {
        match self {
            Audience::All => true,
            Audience::Members(ids) => ids.iter().any(|id| &**id == member),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn msg(seq: u64, audience: Audience) -> Outgoing {
        Outgoing {
            seq,
            audience,
            frame: format!("{seq}").into(),
            revoke: false,
        }
    }

    #[test]
    fn replays_only_what_is_addressed_and_missed() {
        let mut log = ReplayLog::new(10);
        let mut evicted = Vec::new();
        log.push(msg(1, Audience::All), &mut evicted);
        log.push(
            msg(2, Audience::Members(vec![Arc::from("b")])),
            &mut evicted,
        );
        log.push(
            msg(3, Audience::Members(vec![Arc::from("a")])),
            &mut evicted,
        );
        assert!(evicted.is_empty());
        let Replay::Complete(got) = log.since(1, 3, "a") else {
            panic!("expected a replay")
        };
        assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn too_old_when_the_window_moved_on() {
        let mut log = ReplayLog::new(2);
        let mut evicted = Vec::new();
        for seq in 1..=5 {
            log.push(msg(seq, Audience::All), &mut evicted);
        }
        assert_eq!(evicted, [1, 2, 3]);
        assert!(matches!(log.since(2, 5, "a"), Replay::TooOld));
        assert!(matches!(log.since(3, 5, "a"), Replay::Complete(v) if v.len() == 2));
        assert!(matches!(log.since(5, 5, "a"), Replay::Complete(v) if v.is_empty()));
    }

    #[test]
    fn the_window_is_bounded_in_bytes_too() {
        let mut log = ReplayLog::with_max_bytes(1000, 10);
        let mut evicted = Vec::new();
        for seq in 1..=12 {
            log.push(msg(seq, Audience::All), &mut evicted); // frames "1" .. "12"
        }
        // "6" to "9" are a byte each, "10" to "12" two: 10 bytes in all.
        assert_eq!(
            log.iter().map(|m| m.seq).collect::<Vec<_>>(),
            [6, 7, 8, 9, 10, 11, 12]
        );
        assert_eq!(evicted, [1, 2, 3, 4, 5]);
        // One message over the bound is still kept: the newest always is.
        let mut log = ReplayLog::with_max_bytes(1000, 1);
        log.push(msg(10, Audience::All), &mut evicted);
        assert_eq!(log.iter().count(), 1);
        assert!(matches!(log.since(9, 10, "a"), Replay::Complete(v) if v.len() == 1));
    }
}
