//! Small helpers for figures: latency percentiles, rounding, wall-clock
//! stamps, and a seeded random generator for the bots.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Microseconds since the Unix epoch. Clients and servers share the machine,
/// so a stamp taken by the sender can be compared with one taken on receipt.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

pub fn round(x: f64, digits: i32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// Latency samples in microseconds.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Vec<u32>,
}

impl Latencies {
    pub fn record_us(&mut self, us: u64) {
        self.samples.push(us.min(u64::from(u32::MAX)) as u32);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// `{PREFIX_p50_ms, PREFIX_p90_ms, PREFIX_p99_ms, PREFIX_max_ms}` (nearest rank).
    pub fn summary(&mut self, prefix: &str) -> Vec<(String, Value)> {
        self.samples.sort_unstable();
        let n = self.samples.len();
        let at = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            round(f64::from(self.samples[rank - 1]) / 1000.0, 2)
        };
        [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0)]
            .into_iter()
            .map(|(name, p)| (format!("{prefix}{name}_ms"), json!(at(p))))
            .collect()
    }
}

/// SplitMix64: a tiny seeded generator, so a run's bots are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Up to `MAX_KINDS` distinct error messages, with how often each happened.
#[derive(Debug, Default)]
pub struct Errors {
    counts: Vec<(String, u64)>,
}

impl Errors {
    const MAX_KINDS: usize = 8;

    pub fn add(&mut self, message: impl Into<String>) {
        self.add_n(message.into(), 1);
    }

    fn add_n(&mut self, message: String, n: u64) {
        if let Some(entry) = self.counts.iter_mut().find(|(m, _)| *m == message) {
            entry.1 += n;
        } else if self.counts.len() < Self::MAX_KINDS {
            self.counts.push((message, n));
        } else if let Some(last) = self.counts.last_mut() {
            last.0 = "(other errors)".into();
            last.1 += n;
        }
    }

    pub fn merge(&mut self, other: Errors) {
        for (m, n) in other.counts {
            self.add_n(m, n);
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    pub fn to_json(&self) -> Value {
        self.counts
            .iter()
            .map(|(m, n)| json!({"message": m, "count": n}))
            .collect::<Vec<_>>()
            .into()
    }
}

/// A JSON object that keeps its keys in insertion order (the figures line is
/// read by people, so related figures stay together).
#[derive(Debug, Default)]
pub struct Figures(Vec<(String, Value)>);

impl Figures {
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.0.push((key.to_owned(), value.into()));
    }

    pub fn extend(&mut self, entries: Vec<(String, Value)>) {
        self.0.extend(entries);
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{value}", Value::from(key.as_str()))?;
        }
        f.write_str("}")
    }
}
