//! The replay log: the last messages of a session, so a reconnecting client
//! gets exactly what it missed.

use std::collections::VecDeque;

use super::{Audience, Outgoing};

/// A window of the most recent sequenced messages, oldest first.
#[derive(Debug)]
pub struct ReplayLog {
    messages: VecDeque<Outgoing>,
    /// How many messages the window keeps.
    capacity: usize,
}

/// What a resume can be answered with.
pub enum Replay {
    /// Every message with `seq > last_seq` addressed to the member, in order.
    Complete(Vec<Outgoing>),
    /// Part of the range is gone: the client needs a full view instead.
    TooOld,
}

impl ReplayLog {
    pub fn new(capacity: usize) -> Self {
        ReplayLog {
            messages: VecDeque::with_capacity(capacity.min(64)),
            capacity: capacity.max(1),
        }
    }

    /// Appends a message; returns the one that fell out of the window, if any.
    pub fn push(&mut self, message: Outgoing) -> Option<Outgoing> {
        let evicted = if self.messages.len() >= self.capacity {
            self.messages.pop_front()
        } else {
            None
        };
        self.messages.push_back(message);
        evicted
    }

    /// Messages after `last_seq` for `member`, if the window still holds every
    /// message after `last_seq` (up to `current_seq`).
    pub fn since(&self, last_seq: u64, current_seq: u64, member: &str) -> Replay {
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

    pub fn iter(&self) -> impl Iterator<Item = &Outgoing> {
        self.messages.iter()
    }
}

impl Audience {
    pub fn includes(&self, member: &str) -> bool {
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
        log.push(msg(1, Audience::All));
        log.push(msg(2, Audience::Members(vec![Arc::from("b")])));
        log.push(msg(3, Audience::Members(vec![Arc::from("a")])));
        let Replay::Complete(got) = log.since(1, 3, "a") else {
            panic!("expected a replay")
        };
        assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn too_old_when_the_window_moved_on() {
        let mut log = ReplayLog::new(2);
        for seq in 1..=5 {
            log.push(msg(seq, Audience::All));
        }
        assert!(matches!(log.since(2, 5, "a"), Replay::TooOld));
        assert!(matches!(log.since(3, 5, "a"), Replay::Complete(v) if v.len() == 2));
        assert!(matches!(log.since(5, 5, "a"), Replay::Complete(v) if v.is_empty()));
    }
}
