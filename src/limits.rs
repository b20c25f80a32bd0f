//! Rate limits: a token bucket, the per-connection frame and wrong-code
//! limits, and the per-address limit on wrong join codes. Each limit, its
//! default and what a refusal looks like are listed in docs/security.md.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `capacity` tokens, refilled at `per_sec`; each allowed event takes one.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
    capacity: f64,
    per_sec: f64,
}

impl TokenBucket {
    pub(crate) fn new(capacity: f64, per_sec: f64) -> Self {
        TokenBucket {
            tokens: capacity,
            last: Instant::now(),
            capacity,
            per_sec,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// Whether a token is there now (none is taken).
    pub(crate) fn check(&mut self) -> Result<(), Duration> {
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait_for_one())
        }
    }

    /// Takes a token, or says how long until one is there.
    pub(crate) fn take(&mut self) -> Result<(), Duration> {
        self.check()?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// Takes a token even if none is there; the debt is bounded by the
    /// capacity, so a burst cannot lock the bucket for longer than refilling
    /// twice over takes.
    pub(crate) fn spend(&mut self) {
        self.refill(Instant::now());
        self.tokens = (self.tokens - 1.0).max(-self.capacity);
    }

    /// Gives a taken token back.
    pub(crate) fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.capacity);
    }

    fn wait_for_one(&self) -> Duration {
        if self.per_sec <= 0.0 {
            return Duration::from_secs(3600);
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / self.per_sec).max(0.001))
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// Frames one connection may send: `--frame-burst` at once and
/// `--frame-rate` per second after that. A refused frame gets `rate_limited`;
/// a client that goes on sending (more than [`FrameLimit::STRIKES`] refused
/// frames, recovering 10 per second) is disconnected.
pub(crate) struct FrameLimit {
    frames: TokenBucket,
    strikes: TokenBucket,
}

impl FrameLimit {
    /// Refused frames a client may send in a burst before it is disconnected.
    pub(crate) const STRIKES: f64 = 100.0;

    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        FrameLimit {
            frames: TokenBucket::new(f64::from(burst.max(1)), f64::from(rate.max(1))),
            strikes: TokenBucket::new(Self::STRIKES, 10.0),
        }
    }

    /// `Ok` if the frame may be handled; otherwise the wait, and whether the
    /// client has now sent too many refused frames to stay connected.
    pub(crate) fn admit(&mut self) -> Result<(), (Duration, bool)> {
        match self.frames.take() {
            Ok(()) => Ok(()),
            Err(wait) => Err((wait, self.strikes.take().is_err())),
        }
    }
}

/// Wrong join codes one connection may send: a burst of 5, then one every
/// 2 s; after 50 the connection is closed. Beside it, the node counts wrong
/// codes per client address ([`JoinGuard`]), so reconnecting does not start
/// afresh.
pub(crate) struct FailureLimit {
    bucket: TokenBucket,
    total: u32,
}

impl Default for FailureLimit {
    fn default() -> Self {
        FailureLimit {
            bucket: TokenBucket::new(Self::BURST, Self::PER_SEC),
            total: 0,
        }
    }
}

impl FailureLimit {
    const BURST: f64 = 5.0;
    const PER_SEC: f64 = 0.5;
    const MAX_TOTAL: u32 = 50;

    /// `Err(wait)` while no wrong code may be tried.
    pub(crate) fn check(&mut self) -> Result<(), Duration> {
        if self.exhausted() {
            return Err(Duration::from_secs(60));
        }
        self.bucket.check()
    }

    /// Counts one wrong code.
    pub(crate) fn failed(&mut self) {
        self.bucket.spend();
        self.total += 1;
    }

    /// Whether the connection has sent all the wrong codes it may.
    pub(crate) fn exhausted(&self) -> bool {
        self.total >= Self::MAX_TOTAL
    }
}

/// Wrong join codes from one client address (an IPv6 client's /64, which one
/// household or attacker usually holds whole): [`JoinGuard::BURST`] at once,
/// then one a minute. A class behind one school address that mistypes never
/// comes near it; guessing one of 300 live codes out of a million at that
/// rate takes about two days.
///
/// An address that has used up its wrong codes may still join with a code
/// it has already been seen to know (one that it hosted or that a join from
/// it found): a student who spams wrong codes cannot lock the rest of the
/// class out of their own game, and the answer tells a guesser nothing new.
pub(crate) struct JoinGuard {
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

/// What the guard remembers of one address.
struct Address {
    /// Wrong codes it may still send.
    wrong: TokenBucket,
    /// Codes it has been seen to know, newest last.
    known: Vec<String>,
}

impl Default for JoinGuard {
    fn default() -> Self {
        JoinGuard {
            addresses: Mutex::new(HashMap::new()),
        }
    }
}

impl JoinGuard {
    pub(crate) const BURST: f64 = 100.0;
    pub(crate) const PER_SEC: f64 = 1.0 / 60.0;
    /// Addresses remembered before the ones back to a full allowance are forgotten.
    const PRUNE_AT: usize = 4096;
    /// Codes remembered per address: more than the games one address may
    /// host at once, so hosting cannot push a class's code out.
    const KNOWN: usize = 256;

    /// Takes one wrong code's place before `code` is looked up, unless this
    /// address knows it: `Ok(true)` if a place was taken (give it back with
    /// [`JoinGuard::found`] if the code is right), `Err(wait)` if none is
    /// left. Taken before the lookup, so that many sockets of one address
    /// asking at once cannot all pass on the same last place.
    pub(crate) fn try_code(&self, addr: IpAddr, code: &str) -> Result<bool, Duration> {
        let mut result = Ok(false);
        self.with(addr, |a| {
            if !a.known.iter().any(|k| k == code) {
                result = a.wrong.take().map(|()| true);
            }
        });
        result
    }

    /// `code` was right: the place [`JoinGuard::try_code`] took (if it took
    /// one) is given back, and the address knows the code from now on.
    pub(crate) fn found(&self, addr: IpAddr, code: &str, took: bool) {
        self.with(addr, |a| {
            if took {
                a.wrong.give_back();
            }
        });
        self.knows(addr, code);
    }

    /// This address knows `code` (it hosted that game, or found it).
    pub(crate) fn knows(&self, addr: IpAddr, code: &str) {
        self.with(addr, |a| {
            if a.known.iter().any(|k| k == code) {
                return;
            }
            if a.known.len() >= Self::KNOWN {
                a.known.remove(0);
            }
            a.known.push(code.to_owned());
        });
    }

    fn with(&self, addr: IpAddr, change: impl FnOnce(&mut Address)) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if addresses.len() >= Self::PRUNE_AT {
            let now = Instant::now();
            addresses.retain(|_, a| !a.wrong.is_full(now));
        }
        let address = addresses.entry(key(addr)).or_insert_with(|| Address {
            wrong: TokenBucket::new(Self::BURST, Self::PER_SEC),
            known: Vec::new(),
        });
        change(address);
    }
}

/// The address a limit counts: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by
/// its /64 prefix.
pub(crate) fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].fill(0);
                IpAddr::V6(s.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refills_at_its_rate() {
        let mut b = TokenBucket::new(2.0, 1.0);
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::from_millis(900));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(b.take().is_ok());
        assert!(b.take().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn frames_past_the_burst_are_refused_then_the_client_is_cut_off() {
        let mut limit = FrameLimit::new(10, 5);
        for _ in 0..5 {
            assert!(limit.admit().is_ok());
        }
        for _ in 0..FrameLimit::STRIKES as usize {
            assert!(!limit.admit().unwrap_err().1);
        }
        assert!(limit.admit().unwrap_err().1);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limit.admit().is_ok(), "the rate refills");
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_codes_are_counted_per_address_and_per_ipv6_prefix() {
        let guard = JoinGuard::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        guard.knows(a, "482913");
        for _ in 0..JoinGuard::BURST as usize {
            assert_eq!(guard.try_code(a, "000000"), Ok(true));
        }
        let wait = guard.try_code(a, "000000").unwrap_err();
        assert!(wait > Duration::from_secs(55) && wait <= Duration::from_secs(60));
        assert_eq!(
            guard.try_code(a, "482913"),
            Ok(false),
            "a code it knows passes"
        );
        assert!(
            guard.try_code(b, "000000").is_ok(),
            "another address is not affected"
        );
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        for _ in 0..JoinGuard::BURST as usize {
            assert!(guard.try_code(v6a, "000000").is_ok());
        }
        assert!(
            guard.try_code(v6b, "000000").is_err(),
            "one /64 is one client"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(guard.try_code(a, "000000").is_ok(), "one more a minute");
        // A right code gives its place back.
        tokio::time::advance(Duration::from_secs(61)).await;
        let took = guard.try_code(a, "123456").unwrap();
        guard.found(a, "123456", took);
        assert!(guard.try_code(a, "000000").is_ok(), "the place came back");
    }
}
