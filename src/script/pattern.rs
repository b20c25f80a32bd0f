//! Lua 5.4 pattern matching, metered.
//!
//! Lua's own matcher (`lstrlib.c`) runs entirely inside one C call, so the
//! instruction hook that enforces a handler's CPU budget never fires while it
//! works: `("a"):rep(20000):find(".-.-.-b")` runs for minutes and cannot be
//! interrupted. This module is a close port of the 5.4 matcher in which every
//! step is charged to a [`Meter`], and [`install`] replaces `string.find`,
//! `string.match`, `string.gmatch` and `string.gsub` with versions that bill
//! those steps to the handler's [`CallBudget`].
//!
//! The port keeps the C structure (and its comments' vocabulary) so the two can
//! be compared side by side; positions are byte offsets into the subject and
//! pattern instead of pointers.
//!
//! Charging: one unit per `do_match` step (including its `goto init` tail
//! steps), per iteration of the `max_expand`/`min_expand` loops and per start
//! position tried; scans inside one step longer than a few bytes (set bodies,
//! `%b`, back-references, replacement strings) pay per byte block. A plain
//! `find` pays about one unit per KiB scanned. The glue reads the allowance
//! from the state's `CallBudget`, and bills what was used before every call
//! back into Lua (a `gsub` function or `__index`) and when it returns.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use crate::script::budget::{self, BUDGET_MESSAGE, CallBudget};

/// Maximum number of captures in one pattern (`LUA_MAXCAPTURES`).
pub const MAX_CAPTURES: usize = 32;

/// Maximum recursion depth of the matcher (`MAXCCALLS`); deeper patterns fail
/// with "pattern too complex" exactly as in C Lua.
pub const MAX_DEPTH: usize = 200;

/// Steps one matcher call may take when the state carries no budget (e.g.
/// `recess check`): large enough for any sane pattern, small enough that a
/// pattern bomb still ends within seconds.
pub const UNMETERED_STEPS: u64 = 100_000_000;

/// Bytes a single step may scan for free. Longer scans inside one step (set
/// bodies, `%b`, back-references, replacement strings) pay one unit per this
/// many bytes, so a huge pattern or subject cannot hide quadratic work inside
/// a constant number of steps.
const SCAN_BYTES_PER_UNIT: u64 = 8;

/// Bytes of subject a plain `find` scans per unit: searching is a cheap linear
/// scan, so it is billed only lightly.
const PLAIN_BYTES_PER_UNIT: u64 = 1024;

/// Size of the blocks in which a plain-`find` candidate is verified; every
/// block after the first costs a unit, which bills the quadratic worst case
/// (`("a"):rep(n):find(("a"):rep(n / 2) .. "b", 1, true)`) at its real cost.
const PLAIN_VERIFY_BLOCK: usize = 64;

/// Characters that make a pattern more than a literal (`SPECIALS`).
const SPECIALS: &[u8] = b"^$*+?.([%-";

/// The escape character (`L_ESC`).
const ESC: u8 = b'%';

/// Why a match was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchError {
    /// The pattern (or a capture reference) is malformed.
    Pattern(PatternError),
    /// The [`Meter`] ran out of steps.
    Budget,
}

/// A malformed pattern; `Display` gives Lua's own message. Kept `Copy` and
/// small so the matcher's hot `Result`s stay in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternError {
    /// "malformed pattern (ends with '%')"
    EndsWithEscape,
    /// "malformed pattern (missing ']')"
    MissingBracket,
    /// "malformed pattern (missing arguments to '%b')"
    MissingBalanceArguments,
    /// "missing '[' after '%f' in pattern"
    MissingFrontierSet,
    /// "invalid capture index %N" (N may be 0 or beyond 9 as in C)
    InvalidCaptureIndex(i32),
    /// "invalid pattern capture": a ')' with no open capture
    InvalidPatternCapture,
    /// "unfinished capture": a match ended with a capture still open
    UnfinishedCapture,
    /// "too many captures": more than [`MAX_CAPTURES`]
    TooManyCaptures,
    /// "pattern too complex": recursion deeper than [`MAX_DEPTH`]
    TooComplex,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EndsWithEscape => f.write_str("malformed pattern (ends with '%')"),
            Self::MissingBracket => f.write_str("malformed pattern (missing ']')"),
            Self::MissingBalanceArguments => {
                f.write_str("malformed pattern (missing arguments to '%b')")
            }
            Self::MissingFrontierSet => f.write_str("missing '[' after '%f' in pattern"),
            Self::InvalidCaptureIndex(n) => write!(f, "invalid capture index %{n}"),
            Self::InvalidPatternCapture => f.write_str("invalid pattern capture"),
            Self::UnfinishedCapture => f.write_str("unfinished capture"),
            Self::TooManyCaptures => f.write_str("too many captures"),
            Self::TooComplex => f.write_str("pattern too complex"),
        }
    }
}

impl fmt::Display for MatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pattern(e) => e.fmt(f),
            Self::Budget => f.write_str(BUDGET_MESSAGE),
        }
    }
}

impl std::error::Error for MatchError {}

impl From<PatternError> for MatchError {
    fn from(e: PatternError) -> Self {
        Self::Pattern(e)
    }
}

/// A step allowance: the matcher charges every unit of work here and stops
/// with [`MatchError::Budget`] when it runs dry.
#[derive(Debug, Clone)]
pub struct Meter {
    allowance: u64,
    left: u64,
    /// When the handler call's time is up, if it has a clock.
    deadline: Option<Instant>,
    /// `left` at (or below) which the clock is read next.
    check_at: u64,
}

/// Steps between two looks at the clock (some tens of microseconds).
const CLOCK_EVERY_STEPS: u64 = 16 * 1024;

impl Meter {
    /// A meter that allows `allowance` units.
    pub fn new(allowance: u64) -> Self {
        Self::with_deadline(allowance, None)
    }

    /// A meter that allows `allowance` units until `deadline`.
    pub fn with_deadline(allowance: u64, deadline: Option<Instant>) -> Self {
        Self {
            allowance,
            left: allowance,
            deadline,
            check_at: allowance.saturating_sub(CLOCK_EVERY_STEPS),
        }
    }

    /// Spends `units`, failing once the allowance does not cover them or the
    /// time is up (what was left is then counted as used).
    #[inline]
    pub fn charge(&mut self, units: u64) -> Result<(), MatchError> {
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                if left < self.check_at {
                    return self.check_clock();
                }
                Ok(())
            }
            None => {
                self.left = 0;
                Err(MatchError::Budget)
            }
        }
    }

    #[cold]
    fn check_clock(&mut self) -> Result<(), MatchError> {
        self.check_at = self.left.saturating_sub(CLOCK_EVERY_STEPS);
        match self.deadline {
            Some(deadline) if Instant::now() > deadline => {
                self.left = 0;
                Err(MatchError::Budget)
            }
            _ => Ok(()),
        }
    }

    /// Charges a scan of `bytes` bytes inside a single step.
    #[inline]
    fn charge_scan(&mut self, bytes: usize) -> Result<(), MatchError> {
        self.charge(bytes as u64 / SCAN_BYTES_PER_UNIT)
    }

    /// Units spent so far.
    pub fn used(&self) -> u64 {
        self.allowance - self.left
    }

    /// Units still available.
    pub fn left(&self) -> u64 {
        self.left
    }
}

/// One capture value as Lua reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture<'s> {
    /// A substring capture `(...)`, or the whole match.
    Text(&'s [u8]),
    /// A position capture `()`: the 1-based index it stands at.
    Position(usize),
}

/// How far a capture has got (`capture[i].len` in C, with its two sentinels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureLen {
    Unfinished,
    Position,
    Closed(usize),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    init: usize,
    len: CaptureLen,
}

const EMPTY_SLOT: Slot = Slot {
    init: 0,
    len: CaptureLen::Unfinished,
};

/// Splits a leading `^` anchor off a pattern (as `find`, `match` and `gsub`
/// do; `gmatch` treats `^` literally).
pub fn split_anchor(pattern: &[u8]) -> (bool, &[u8]) {
    match pattern.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, pattern),
    }
}

/// Whether `find` must treat `pattern` as a pattern (`!nospecials`).
pub fn has_specials(pattern: &[u8]) -> bool {
    pattern.iter().any(|b| SPECIALS.contains(b))
}

/// Finds `needle` in `haystack` as a plain byte string (`lmemfind`), returning
/// the offset of the first occurrence. An empty needle is found at 0.
pub fn find_plain(
    haystack: &[u8],
    needle: &[u8],
    meter: &mut Meter,
) -> Result<Option<usize>, MatchError> {
    let Some((&first, rest)) = needle.split_first() else {
        return Ok(Some(0));
    };
    if needle.len() > haystack.len() {
        return Ok(None);
    }
    let last_start = haystack.len() - needle.len();
    let mut scanned = 0usize;
    let mut billed = 0u64;
    let mut from = 0;
    while from <= last_start {
        let hit = haystack[from..=last_start].iter().position(|&b| b == first);
        scanned += hit.map_or(last_start + 1 - from, |off| off + 1);
        let due = scanned as u64 / PLAIN_BYTES_PER_UNIT;
        meter.charge(due - billed)?;
        billed = due;
        let Some(off) = hit else {
            return Ok(None);
        };
        let at = from + off;
        let candidate = &haystack[at + 1..at + needle.len()];
        let mut equal = true;
        for (block, (a, b)) in candidate
            .chunks(PLAIN_VERIFY_BLOCK)
            .zip(rest.chunks(PLAIN_VERIFY_BLOCK))
            .enumerate()
        {
            if block > 0 {
                meter.charge(1)?;
            }
            if a != b {
                equal = false;
                break;
            }
        }
        if equal {
            return Ok(Some(at));
        }
        from = at + 1;
    }
    Ok(None)
}

/// C Lua's `match_class`, with C-locale `<ctype.h>` semantics.
fn match_class(c: u8, class: u8) -> bool {
    let res = match class.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        // C's isspace also accepts '\v', which Rust's is_ascii_whitespace does not.
        b's' => c == b' ' || (b'\t'..=b'\r').contains(&c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        b'z' => c == 0,
        _ => return class == c,
    };
    if class.is_ascii_lowercase() {
        res
    } else {
        !res
    }
}

/// The matcher proper (`MatchState`): one subject, one pattern (already
/// stripped of its anchor), and the captures of the attempt in progress.
#[derive(Debug, Clone)]
pub struct MatchState<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    /// Recursion levels still allowed (`matchdepth`).
    depth: usize,
    /// Captures opened so far, finished or not.
    level: usize,
    capture: [Slot; MAX_CAPTURES],
}

impl<'a> MatchState<'a> {
    /// Prepares to match `pattern` against `subject` (`prepstate`).
    pub fn new(subject: &'a [u8], pattern: &'a [u8]) -> Self {
        Self {
            src: subject,
            pat: pattern,
            depth: MAX_DEPTH,
            level: 0,
            capture: [EMPTY_SLOT; MAX_CAPTURES],
        }
    }

    /// Tries to match the whole pattern starting exactly at byte `start`;
    /// returns where the match ends. Resets the captures first
    /// (`reprepstate`), so the state can be reused for the next position.
    pub fn match_at(
        &mut self,
        start: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        self.depth = MAX_DEPTH;
        self.level = 0;
        if start > self.src.len() {
            return Ok(None);
        }
        self.do_match(start, 0, meter)
    }

    /// How many values a successful match yields (`push_captures`): the
    /// captures, or the whole match when there are none and `whole` is asked
    /// for (`match`, `gmatch`, `gsub`; `find` reports only real captures).
    pub fn capture_count(&self, whole: bool) -> usize {
        if self.level == 0 && whole {
            1
        } else {
            self.level
        }
    }

    /// The `i`-th (0-based) capture of the match `start..end`
    /// (`get_onecapture`); index 0 stands for the whole match when the
    /// pattern has no captures.
    pub fn capture(&self, i: usize, start: usize, end: usize) -> Result<Capture<'a>, MatchError> {
        if i >= self.level {
            if i != 0 {
                return Err(PatternError::InvalidCaptureIndex(
                    i32::try_from(i).map_or(i32::MAX, |i| i.saturating_add(1)),
                )
                .into());
            }
            return Ok(Capture::Text(&self.src[start..end]));
        }
        let slot = self.capture[i];
        match slot.len {
            CaptureLen::Unfinished => Err(PatternError::UnfinishedCapture.into()),
            CaptureLen::Position => Ok(Capture::Position(slot.init + 1)),
            CaptureLen::Closed(len) => Ok(Capture::Text(&self.src[slot.init..slot.init + len])),
        }
    }

    /// All values of the match `start..end`, as counted by [`Self::capture_count`].
    pub fn captures(
        &self,
        start: usize,
        end: usize,
        whole: bool,
    ) -> Result<Vec<Capture<'a>>, MatchError> {
        (0..self.capture_count(whole))
            .map(|i| self.capture(i, start, end))
            .collect()
    }

    /// The pattern byte at `i`, or 0 past the end (C reads the terminator).
    #[inline]
    fn pat_at(&self, i: usize) -> u8 {
        self.pat.get(i).copied().unwrap_or(0)
    }

    /// The subject byte at `i`, or 0 past the end (C reads the terminator).
    #[inline]
    fn src_at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn check_capture(&self, l: u8) -> Result<usize, MatchError> {
        let index = usize::from(l.wrapping_sub(b'1'));
        if l < b'1' || index >= self.level || self.capture[index].len == CaptureLen::Unfinished {
            return Err(PatternError::InvalidCaptureIndex(i32::from(l) - i32::from(b'0')).into());
        }
        Ok(index)
    }

    fn capture_to_close(&self) -> Result<usize, MatchError> {
        (0..self.level)
            .rev()
            .find(|&l| self.capture[l].len == CaptureLen::Unfinished)
            .ok_or(MatchError::Pattern(PatternError::InvalidPatternCapture))
    }

    /// The end of the single-character class starting at `p` (`classend`).
    fn class_end(&self, p: usize, meter: &mut Meter) -> Result<usize, MatchError> {
        let len = self.pat.len();
        let mut q = p + 1;
        match self.pat[p] {
            ESC => {
                if q >= len {
                    return Err(PatternError::EndsWithEscape.into());
                }
                Ok(q + 1)
            }
            b'[' => {
                if self.pat_at(q) == b'^' {
                    q += 1;
                }
                loop {
                    // Look for a ']', skipping escapes such as '%]'.
                    if q >= len {
                        return Err(PatternError::MissingBracket.into());
                    }
                    let c = self.pat[q];
                    q += 1;
                    if c == ESC && q < len {
                        q += 1;
                    }
                    if self.pat_at(q) == b']' {
                        break;
                    }
                }
                meter.charge_scan(q - p)?;
                Ok(q + 1)
            }
            _ => Ok(q),
        }
    }

    /// Whether `c` is in the set `[...]` spanning `p` (the '[') to `ec` (its
    /// ']') (`matchbracketclass`).
    fn bracket_class(
        &self,
        c: u8,
        p: usize,
        ec: usize,
        meter: &mut Meter,
    ) -> Result<bool, MatchError> {
        meter.charge_scan(ec - p)?;
        let mut p = p;
        let mut sig = true;
        if self.pat_at(p + 1) == b'^' {
            sig = false;
            p += 1;
        }
        loop {
            p += 1;
            if p >= ec {
                return Ok(!sig);
            }
            let pc = self.pat[p];
            if pc == ESC {
                p += 1;
                if match_class(c, self.pat_at(p)) {
                    return Ok(sig);
                }
            } else if self.pat_at(p + 1) == b'-' && p + 2 < ec {
                p += 2;
                if pc <= c && c <= self.pat[p] {
                    return Ok(sig);
                }
            } else if pc == c {
                return Ok(sig);
            }
        }
    }

    /// Whether the subject byte at `s` matches the class `p..ep` (`singlematch`).
    fn single_match(
        &self,
        s: usize,
        p: usize,
        ep: usize,
        meter: &mut Meter,
    ) -> Result<bool, MatchError> {
        let Some(&c) = self.src.get(s) else {
            return Ok(false);
        };
        Ok(match self.pat[p] {
            b'.' => true,
            ESC => match_class(c, self.pat_at(p + 1)),
            b'[' => self.bracket_class(c, p, ep - 1, meter)?,
            pc => pc == c,
        })
    }

    /// `%bxy` at pattern offset `p` (just after "%b") (`matchbalance`).
    fn match_balance(
        &self,
        s: usize,
        p: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        if p + 1 >= self.pat.len() {
            return Err(PatternError::MissingBalanceArguments.into());
        }
        let (open, close) = (self.pat[p], self.pat[p + 1]);
        if self.src_at(s) != open {
            return Ok(None);
        }
        let mut depth = 1usize;
        for (i, &c) in self.src.iter().enumerate().skip(s + 1) {
            if c == close {
                depth -= 1;
                if depth == 0 {
                    meter.charge_scan(i - s)?;
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        meter.charge_scan(self.src.len().saturating_sub(s))?;
        Ok(None)
    }

    /// Greedy repetition `*` / `+` (`max_expand`).
    fn max_expand(
        &mut self,
        s: usize,
        p: usize,
        ep: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        let mut i = 0;
        while self.single_match(s + i, p, ep, meter)? {
            meter.charge(1)?;
            i += 1;
        }
        // Keep trying to match the rest with the maximum repetitions.
        loop {
            meter.charge(1)?;
            if let Some(end) = self.do_match(s + i, ep + 1, meter)? {
                return Ok(Some(end));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    /// Lazy repetition `-` (`min_expand`).
    fn min_expand(
        &mut self,
        mut s: usize,
        p: usize,
        ep: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        loop {
            meter.charge(1)?;
            if let Some(end) = self.do_match(s, ep + 1, meter)? {
                return Ok(Some(end));
            }
            if !self.single_match(s, p, ep, meter)? {
                return Ok(None);
            }
            s += 1;
        }
    }

    fn start_capture(
        &mut self,
        s: usize,
        p: usize,
        what: CaptureLen,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        let level = self.level;
        if level >= MAX_CAPTURES {
            return Err(PatternError::TooManyCaptures.into());
        }
        self.capture[level] = Slot { init: s, len: what };
        self.level = level + 1;
        let res = self.do_match(s, p, meter)?;
        if res.is_none() {
            self.level -= 1;
        }
        Ok(res)
    }

    fn end_capture(
        &mut self,
        s: usize,
        p: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        let l = self.capture_to_close()?;
        self.capture[l].len = CaptureLen::Closed(s - self.capture[l].init);
        let res = self.do_match(s, p, meter)?;
        if res.is_none() {
            self.capture[l].len = CaptureLen::Unfinished;
        }
        Ok(res)
    }

    /// Back-reference `%1`..`%9` (`match_capture`).
    fn match_capture(
        &self,
        s: usize,
        l: u8,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        let slot = self.capture[self.check_capture(l)?];
        // A position capture has no text; in C its negative length makes the
        // comparison fail, and so does this.
        let CaptureLen::Closed(len) = slot.len else {
            return Ok(None);
        };
        meter.charge_scan(len)?;
        let fits = self.src.len().saturating_sub(s) >= len;
        Ok(
            (fits && self.src[slot.init..slot.init + len] == self.src[s..s + len])
                .then_some(s + len),
        )
    }

    /// The core step (`match`): matches pattern offset `p` onwards against
    /// subject offset `s` onwards. C's `goto init` tail calls are the loop.
    fn do_match(
        &mut self,
        mut s: usize,
        mut p: usize,
        meter: &mut Meter,
    ) -> Result<Option<usize>, MatchError> {
        if self.depth == 0 {
            return Err(PatternError::TooComplex.into());
        }
        self.depth -= 1;
        let res = loop {
            meter.charge(1)?;
            if p == self.pat.len() {
                break Some(s);
            }
            match self.pat[p] {
                b'(' => {
                    break if self.pat_at(p + 1) == b')' {
                        self.start_capture(s, p + 2, CaptureLen::Position, meter)?
                    } else {
                        self.start_capture(s, p + 1, CaptureLen::Unfinished, meter)?
                    };
                }
                b')' => break self.end_capture(s, p + 1, meter)?,
                b'$' if p + 1 == self.pat.len() => break (s == self.src.len()).then_some(s),
                ESC if self.pat_at(p + 1) == b'b' => match self.match_balance(s, p + 2, meter)? {
                    Some(e) => {
                        s = e;
                        p += 4;
                    }
                    None => break None,
                },
                ESC if self.pat_at(p + 1) == b'f' => {
                    p += 2;
                    if self.pat_at(p) != b'[' {
                        return Err(PatternError::MissingFrontierSet.into());
                    }
                    let ep = self.class_end(p, meter)?;
                    let previous = if s == 0 { 0 } else { self.src[s - 1] };
                    let current = self.src_at(s);
                    if !self.bracket_class(previous, p, ep - 1, meter)?
                        && self.bracket_class(current, p, ep - 1, meter)?
                    {
                        p = ep;
                    } else {
                        break None;
                    }
                }
                ESC if self.pat_at(p + 1).is_ascii_digit() => {
                    match self.match_capture(s, self.pat_at(p + 1), meter)? {
                        Some(e) => {
                            s = e;
                            p += 2;
                        }
                        None => break None,
                    }
                }
                _ => {
                    // A single-character class plus an optional suffix.
                    let ep = self.class_end(p, meter)?;
                    let suffix = self.pat_at(ep);
                    if !self.single_match(s, p, ep, meter)? {
                        if matches!(suffix, b'*' | b'?' | b'-') {
                            // Accept the empty repetition.
                            p = ep + 1;
                            continue;
                        }
                        break None;
                    }
                    match suffix {
                        b'?' => {
                            if let Some(e) = self.do_match(s + 1, ep + 1, meter)? {
                                break Some(e);
                            }
                            p = ep + 1;
                        }
                        b'+' => break self.max_expand(s + 1, p, ep, meter)?,
                        b'*' => break self.max_expand(s, p, ep, meter)?,
                        b'-' => break self.min_expand(s, p, ep, meter)?,
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        };
        self.depth += 1;
        Ok(res)
    }
}

/// Installs the metered `find`, `match`, `gmatch` and `gsub` into the global
/// `string` table of `lua`. That table is also the string metatable's
/// `__index`, so method calls (`s:find(...)`) pick them up as well.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let string: Table = lua.globals().get("string")?;
    string.raw_set(
        "find",
        lua.create_function(|lua, args: MultiValue| str_find_aux(lua, args, true))?,
    )?;
    string.raw_set(
        "match",
        lua.create_function(|lua, args: MultiValue| str_find_aux(lua, args, false))?,
    )?;
    string.raw_set(
        "gmatch",
        lua.create_function(|lua, args: MultiValue| str_gmatch(lua, args))?,
    )?;
    string.raw_set(
        "gsub",
        lua.create_function(|lua, args: MultiValue| str_gsub(lua, args))?,
    )?;
    Ok(())
}

/// Units the handler may still spend on matching.
fn allowance(lua: &Lua) -> u64 {
    lua.app_data_ref::<Arc<CallBudget>>()
        .map_or(UNMETERED_STEPS, |budget| budget.remaining())
}

/// The budget error, after marking the budget spent so the hook and the
/// `pcall` wrappers fail fast from now on.
fn budget_exhausted(lua: &Lua) -> mlua::Error {
    budget::charge(lua, u64::MAX)
        .err()
        .unwrap_or_else(|| mlua::Error::runtime(BUDGET_MESSAGE))
}

/// `luaL_where(L, 1)`: the "chunk:line: " of the Lua code calling us, if any.
fn location(lua: &Lua) -> String {
    lua.inspect_stack(1, |frame| {
        let line = frame.current_line().filter(|&line| line > 0)?;
        let src = frame.source().short_src?.into_owned();
        Some(format!("{src}:{line}: "))
    })
    .flatten()
    .unwrap_or_default()
}

/// `luaL_error`: a runtime error prefixed with the caller's location.
fn lua_error(lua: &Lua, msg: &str) -> mlua::Error {
    mlua::Error::runtime(format!("{}{msg}", location(lua)))
}

/// A meter tied to the state's budget. Steps are billed to the budget before
/// every call back into Lua (which spends the same budget) and at the end.
struct Billing<'l> {
    lua: &'l Lua,
    meter: Meter,
}

impl<'l> Billing<'l> {
    fn start(lua: &'l Lua) -> Self {
        Self {
            lua,
            meter: Meter::with_deadline(allowance(lua), budget::deadline(lua)),
        }
    }

    /// Bills the steps taken so far.
    fn settle(&mut self) -> mlua::Result<()> {
        let used = self.meter.used();
        self.meter = Meter::new(0);
        budget::charge(self.lua, used)
    }

    /// Bills the steps taken so far and takes a fresh allowance, e.g. after a
    /// replacement function has spent part of the budget.
    fn renew(&mut self) -> mlua::Result<()> {
        self.settle()?;
        self.meter = Meter::with_deadline(allowance(self.lua), budget::deadline(self.lua));
        Ok(())
    }

    /// Turns a matcher result into an mlua one, billing what was spent.
    fn check<T>(&mut self, res: Result<T, MatchError>) -> mlua::Result<T> {
        match res {
            Ok(v) => Ok(v),
            Err(MatchError::Budget) => Err(budget_exhausted(self.lua)),
            Err(MatchError::Pattern(e)) => {
                self.settle()?;
                Err(lua_error(self.lua, &e.to_string()))
            }
        }
    }
}

/// The arguments of one library call, with `lauxlib`-style checking.
struct Args<'a> {
    lua: &'a Lua,
    name: &'static str,
    values: MultiValue,
}

impl Args<'_> {
    /// Argument `n` (1-based), `None` when absent.
    fn get(&self, n: usize) -> Option<&Value> {
        self.values.get(n - 1)
    }

    /// `luaL_argerror`, including its "method call" renumbering.
    fn arg_error(&self, n: usize, extra: &str) -> mlua::Error {
        let (name, method) = self
            .lua
            .inspect_stack(0, |frame| {
                let names = frame.names();
                (
                    names.name.map(|n| n.into_owned()),
                    names.name_what == Some("method"),
                )
            })
            .unwrap_or((None, false));
        let mut n = n;
        if method {
            n -= 1;
            if n == 0 {
                let name = name.unwrap_or_else(|| "?".to_owned());
                return lua_error(self.lua, &format!("calling '{name}' on bad self ({extra})"));
            }
        }
        let name = name.unwrap_or_else(|| format!("string.{}", self.name));
        lua_error(
            self.lua,
            &format!("bad argument #{n} to '{name}' ({extra})"),
        )
    }

    /// `luaL_typeerror`.
    fn type_error(&self, n: usize, expected: &str) -> mlua::Error {
        let got = match self.get(n) {
            None => "no value".to_owned(),
            Some(v) => metafield_name(v).unwrap_or_else(|| match v {
                Value::LightUserData(_) => "light userdata".to_owned(),
                v => type_name(v).to_owned(),
            }),
        };
        self.arg_error(n, &format!("{expected} expected, got {got}"))
    }

    /// Moves argument `n` out (leaving `nil`); used once a value has been
    /// checked, to avoid cloning (and re-referencing) it.
    fn take(&mut self, n: usize) -> Value {
        self.values
            .get_mut(n - 1)
            .map_or(Value::Nil, std::mem::take)
    }

    /// Puts a value taken with [`Self::take`] back, for error messages.
    fn restore(&mut self, n: usize, v: Value) {
        if let Some(slot) = self.values.get_mut(n - 1) {
            *slot = v;
        }
    }

    /// `luaL_checklstring`: a string, or a number converted like Lua does.
    fn check_string(&mut self, n: usize) -> mlua::Result<LuaString> {
        let v = match self.take(n) {
            Value::String(s) => return Ok(s),
            v => v,
        };
        let converted = match v {
            Value::Integer(_) | Value::Number(_) => self.lua.coerce_string(v.clone())?,
            _ => None,
        };
        converted.ok_or_else(|| {
            self.restore(n, v);
            self.type_error(n, "string")
        })
    }

    /// `luaL_optinteger`.
    fn opt_integer(&self, n: usize, default: i64) -> mlua::Result<i64> {
        let v = match self.get(n) {
            None | Some(Value::Nil) => return Ok(default),
            Some(Value::Integer(i)) => return Ok(*i),
            Some(v) => v.clone(),
        };
        if let Some(i) = self.lua.coerce_integer(v.clone())? {
            Ok(i)
        } else if self.lua.coerce_number(v)?.is_some() {
            Err(self.arg_error(n, "number has no integer representation"))
        } else {
            Err(self.type_error(n, "number"))
        }
    }

    /// `lua_toboolean`.
    fn truthy(&self, n: usize) -> bool {
        !matches!(self.get(n), None | Some(Value::Nil | Value::Boolean(false)))
    }
}

/// `luaL_typename`.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A string `__name` in the value's metatable, which `luaL_typeerror` prefers
/// to the plain type name.
fn metafield_name(v: &Value) -> Option<String> {
    let name: Value = match v {
        Value::Table(t) => t.metatable()?.raw_get("__name").ok()?,
        Value::UserData(ud) => ud.metatable().ok()?.get("__name").ok()?,
        _ => return None,
    };
    match name {
        Value::String(s) => Some(s.to_string_lossy()),
        _ => None,
    }
}

/// `posrelatI(pos, len) - 1`: a 0-based start offset, possibly past the end.
fn start_offset(pos: i64, len: usize) -> usize {
    if pos > 0 {
        usize::try_from(pos - 1).unwrap_or(usize::MAX)
    } else if pos == 0 || pos.unsigned_abs() > len as u64 {
        0
    } else {
        len - usize::try_from(pos.unsigned_abs()).unwrap_or(len)
    }
}

fn capture_value(lua: &Lua, cap: Capture<'_>) -> mlua::Result<Value> {
    Ok(match cap {
        Capture::Text(bytes) => Value::String(lua.create_string(bytes)?),
        Capture::Position(pos) => Value::Integer(pos as i64),
    })
}

fn captures_to_values(lua: &Lua, caps: Vec<Capture<'_>>) -> mlua::Result<MultiValue> {
    caps.into_iter()
        .map(|cap| capture_value(lua, cap))
        .collect()
}

fn fail() -> MultiValue {
    MultiValue::from_vec(vec![Value::Nil])
}

/// `string.find` (`find == true`) and `string.match` (`str_find_aux`).
fn str_find_aux(lua: &Lua, values: MultiValue, find: bool) -> mlua::Result<MultiValue> {
    let mut args = Args {
        lua,
        name: if find { "find" } else { "match" },
        values,
    };
    let subject = args.check_string(1)?;
    let pattern = args.check_string(2)?;
    let s = subject.as_bytes();
    let p = pattern.as_bytes();
    let init = start_offset(args.opt_integer(3, 1)?, s.len());
    if init > s.len() {
        return Ok(fail());
    }
    let mut billing = Billing::start(lua);
    let entry = billing.meter.charge(1);
    billing.check(entry)?;
    if find && (args.truthy(4) || !has_specials(&p)) {
        let found = find_plain(&s[init..], &p, &mut billing.meter);
        let found = billing.check(found)?;
        billing.settle()?;
        return Ok(match found {
            Some(off) => MultiValue::from_vec(vec![
                Value::Integer((init + off + 1) as i64),
                Value::Integer((init + off + p.len()) as i64),
            ]),
            None => fail(),
        });
    }
    let (anchor, body) = split_anchor(&p);
    let mut ms = MatchState::new(&s, body);
    let mut start = init;
    loop {
        let attempt = billing
            .meter
            .charge(1)
            .and_then(|()| ms.match_at(start, &mut billing.meter));
        if let Some(end) = billing.check(attempt)? {
            let caps = billing.check(ms.captures(start, end, !find))?;
            billing.settle()?;
            let caps = captures_to_values(lua, caps)?;
            if !find {
                return Ok(caps);
            }
            let mut out = MultiValue::with_capacity(caps.len() + 2);
            out.push_back(Value::Integer((start + 1) as i64));
            out.push_back(Value::Integer(end as i64));
            out.extend(caps);
            return Ok(out);
        }
        if start >= s.len() || anchor {
            break;
        }
        start += 1;
    }
    billing.settle()?;
    Ok(fail())
}

/// `string.gmatch`: returns an iterator closure over the matches.
fn str_gmatch(lua: &Lua, values: MultiValue) -> mlua::Result<Function> {
    let mut args = Args {
        lua,
        name: "gmatch",
        values,
    };
    let subject = args.check_string(1)?;
    let pattern = args.check_string(2)?;
    let len = subject.as_bytes().len();
    // Starting past the end only needs to be "past the end" (C clamps too).
    let init = start_offset(args.opt_integer(3, 1)?, len).min(len + 1);
    let next = Cell::new(init);
    let last_match: Cell<Option<usize>> = Cell::new(None);
    lua.create_function(move |lua, _: MultiValue| {
        let s = subject.as_bytes();
        let p = pattern.as_bytes();
        let mut ms = MatchState::new(&s, &p);
        let mut billing = Billing::start(lua);
        for start in next.get()..=s.len() {
            let attempt = billing
                .meter
                .charge(1)
                .and_then(|()| ms.match_at(start, &mut billing.meter));
            match billing.check(attempt)? {
                Some(end) if Some(end) != last_match.get() => {
                    next.set(end);
                    last_match.set(Some(end));
                    let caps = billing.check(ms.captures(start, end, true))?;
                    billing.settle()?;
                    return captures_to_values(lua, caps);
                }
                _ => {}
            }
        }
        billing.settle()?;
        Ok(MultiValue::new())
    })
}

/// The replacement argument of `gsub`.
enum Replacement {
    Text(LuaString),
    Table(Table),
    Function(Function),
}

/// The result of `gsub` under construction (`luaL_Buffer`). Full blocks are
/// moved into Lua strings so the result grows inside the state's memory limit
/// rather than on the Rust heap.
struct Output<'l> {
    lua: &'l Lua,
    block: Vec<u8>,
    done: Vec<LuaString>,
}

impl<'l> Output<'l> {
    const BLOCK: usize = 64 * 1024;

    fn new(lua: &'l Lua) -> Self {
        Self {
            lua,
            block: Vec::new(),
            done: Vec::new(),
        }
    }

    fn push(&mut self, byte: u8) -> mlua::Result<()> {
        self.block.push(byte);
        self.flush_if_full()
    }

    fn extend(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        self.block.extend_from_slice(bytes);
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> mlua::Result<()> {
        if self.block.len() >= Self::BLOCK {
            // Copying the result is work too: a block's worth, like `string.rep`.
            budget::charge(self.lua, (Self::BLOCK / 64) as u64)?;
            self.done.push(self.lua.create_string(&self.block)?);
            self.block.clear();
        }
        Ok(())
    }

    fn finish(self) -> mlua::Result<LuaString> {
        if self.done.is_empty() {
            return self.lua.create_string(&self.block);
        }
        let total = self.done.iter().map(|s| s.as_bytes().len()).sum::<usize>() + self.block.len();
        let mut all = Vec::with_capacity(total);
        for part in &self.done {
            all.extend_from_slice(&part.as_bytes());
        }
        all.extend_from_slice(&self.block);
        self.lua.create_string(&all)
    }
}

/// `string.gsub` (`str_gsub`).
fn str_gsub(lua: &Lua, values: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args {
        lua,
        name: "gsub",
        values,
    };
    let subject = args.check_string(1)?;
    let pattern = args.check_string(2)?;
    let s = subject.as_bytes();
    let p = pattern.as_bytes();
    let max_n = args.opt_integer(4, s.len() as i64 + 1)?;
    let repl = match args.get(3) {
        Some(Value::String(r)) => Replacement::Text(r.clone()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => match lua.coerce_string(v.clone())? {
            Some(r) => Replacement::Text(r),
            None => return Err(args.type_error(3, "string/function/table")),
        },
        Some(Value::Table(t)) => Replacement::Table(t.clone()),
        Some(Value::Function(f)) => Replacement::Function(f.clone()),
        _ => return Err(args.type_error(3, "string/function/table")),
    };
    let (anchor, body) = split_anchor(&p);
    let mut ms = MatchState::new(&s, body);
    let mut billing = Billing::start(lua);
    let mut out = Output::new(lua);
    let mut pos = 0;
    let mut last_match = None;
    let mut n = 0i64;
    let mut changed = false;
    while n < max_n {
        let attempt = billing
            .meter
            .charge(1)
            .and_then(|()| ms.match_at(pos, &mut billing.meter));
        match billing.check(attempt)? {
            Some(end) if Some(end) != last_match => {
                n += 1;
                changed |= add_value(&ms, &mut billing, &mut out, &repl, pos, end)?;
                pos = end;
                last_match = Some(end);
            }
            _ if pos < s.len() => {
                out.push(s[pos])?;
                pos += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    billing.settle()?;
    let result = if changed {
        out.extend(&s[pos..])?;
        out.finish()?
    } else {
        subject.clone()
    };
    Ok(MultiValue::from_vec(vec![
        Value::String(result),
        Value::Integer(n),
    ]))
}

/// Appends the replacement for the match `start..end` (`add_value`); returns
/// whether the subject changed (a `nil`/`false` result keeps the match).
fn add_value(
    ms: &MatchState<'_>,
    billing: &mut Billing<'_>,
    out: &mut Output<'_>,
    repl: &Replacement,
    start: usize,
    end: usize,
) -> mlua::Result<bool> {
    let lua = billing.lua;
    let value = match repl {
        Replacement::Text(r) => {
            add_string(ms, billing, out, &r.as_bytes(), start, end)?;
            return Ok(true);
        }
        Replacement::Table(t) => {
            let key = billing.check(ms.capture(0, start, end))?;
            let key = capture_value(lua, key)?;
            billing.renew()?;
            t.get::<Value>(key)?
        }
        Replacement::Function(f) => {
            let caps = billing.check(ms.captures(start, end, true))?;
            let caps = captures_to_values(lua, caps)?;
            billing.renew()?;
            f.call::<Value>(caps)?
        }
    };
    billing.renew()?;
    match value {
        Value::Nil | Value::Boolean(false) => {
            out.extend(&ms.src[start..end])?;
            Ok(false)
        }
        Value::String(r) => {
            out.extend(&r.as_bytes())?;
            Ok(true)
        }
        v @ (Value::Integer(_) | Value::Number(_)) => match lua.coerce_string(v.clone())? {
            Some(r) => {
                out.extend(&r.as_bytes())?;
                Ok(true)
            }
            None => Err(invalid_replacement(lua, &v)),
        },
        v => Err(invalid_replacement(lua, &v)),
    }
}

fn invalid_replacement(lua: &Lua, v: &Value) -> mlua::Error {
    lua_error(
        lua,
        &format!("invalid replacement value (a {})", type_name(v)),
    )
}

/// Appends a replacement string, expanding `%0`-`%9` and `%%` (`add_s`).
fn add_string(
    ms: &MatchState<'_>,
    billing: &mut Billing<'_>,
    out: &mut Output<'_>,
    repl: &[u8],
    start: usize,
    end: usize,
) -> mlua::Result<()> {
    let scan = billing.meter.charge_scan(repl.len());
    billing.check(scan)?;
    let mut rest = repl;
    while let Some(at) = rest.iter().position(|&b| b == ESC) {
        out.extend(&rest[..at])?;
        let step = billing.meter.charge(1);
        billing.check(step)?;
        match rest.get(at + 1).copied() {
            Some(ESC) => out.push(ESC)?,
            Some(b'0') => out.extend(&ms.src[start..end])?,
            Some(d) if d.is_ascii_digit() => {
                match billing.check(ms.capture(usize::from(d - b'1'), start, end))? {
                    Capture::Text(text) => out.extend(text)?,
                    Capture::Position(pos) => out.extend(pos.to_string().as_bytes())?,
                }
            }
            _ => {
                return Err(lua_error(
                    billing.lua,
                    "invalid use of '%' in replacement string",
                ));
            }
        }
        rest = &rest[at + 2..];
    }
    out.extend(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Lua helpers loaded into both states: each runs one library call under
    /// `pcall` and serialises everything it returned (or the error message) to
    /// a string. They deliberately avoid the pattern functions themselves.
    const HARNESS: &str = r##"
        local function clean(e)
            e = tostring(e)
            -- mlua shows a Rust callback's error as "runtime error: <msg>\n<traceback>".
            if e:sub(1, 15) == "runtime error: " then e = e:sub(16) end
            for i = 1, #e do
                if e:byte(i) == 10 then return e:sub(1, i - 1) end
            end
            return e
        end

        local function ser(ok, ...)
            if not ok then return "ERR " .. clean((...)) end
            local out = {}
            for i = 1, select("#", ...) do
                local v = select(i, ...)
                if type(v) == "string" then
                    out[#out + 1] = string.format("%q", v)
                elseif math.type(v) == "integer" then
                    out[#out + 1] = "i" .. v
                else
                    out[#out + 1] = tostring(v)
                end
            end
            return "OK " .. table.concat(out, ",")
        end

        local repls = {
            tab = { a = "[A]", b = false, hello = "HI", ["1"] = "one", [1] = "pos1", x = 7 },
            meta = setmetatable({}, { __index = function(_, k) return "<" .. tostring(k) .. ">" end }),
            fn = function(...)
                local t = table.pack(...)
                for i = 1, t.n do t[i] = tostring(t[i]) end
                return "{" .. table.concat(t, ";", 1, t.n) .. "}"
            end,
            fnfalse = function() return false end,
            fnnil = function() end,
            fnnum = function() return 4.5 end,
            fntable = function() return {} end,
            fntrue = function() return true end,
            fnerr = function() error("boom") end,
            bool = true,
            num = 12,
            float = 1.5,
        }

        function t_find(fname, s, p, init, plain)
            return ser(pcall(string[fname], s, p, init, plain))
        end

        function t_gmatch(s, p, init)
            local ok, it = pcall(string.gmatch, s, p, init)
            if not ok then return ser(false, it) end
            local out = {}
            for _ = 1, 100 do
                local r = table.pack(pcall(it))
                if not r[1] then
                    out[#out + 1] = ser(false, r[2])
                    break
                end
                if r.n == 1 then break end
                out[#out + 1] = ser(table.unpack(r, 1, r.n))
            end
            return table.concat(out, " | ")
        end

        function t_gsub(s, p, spec, n)
            local repl
            if spec == "nil" then
                repl = nil
            elseif repls[spec] ~= nil then
                repl = repls[spec]
            else
                repl = spec:sub(3)
            end
            return ser(pcall(string.gsub, s, p, repl, n))
        end

        function t_chunk(code)
            local f = assert(load(code, "=case"))
            return ser(pcall(f))
        end
    "##;

    /// A state with the stock C functions and one with ours, both running
    /// the harness.
    fn states() -> (Lua, Lua) {
        let stock = Lua::new();
        let ported = Lua::new();
        install(&ported).expect("install");
        for lua in [&stock, &ported] {
            lua.load(HARNESS)
                .set_name("=harness")
                .exec()
                .expect("harness");
        }
        (stock, ported)
    }

    /// Calls harness function `f` in both states and asserts equal results.
    fn same(states: &(Lua, Lua), f: &str, args: &[Value]) -> String {
        let run = |lua: &Lua| -> String {
            let func: Function = lua.globals().get(f).expect("harness function");
            let args: MultiValue = args
                .iter()
                .map(|v| match v {
                    Value::String(s) => {
                        Value::String(lua.create_string(s.as_bytes()).expect("string"))
                    }
                    v => v.clone(),
                })
                .collect();
            let out: LuaString = func.call(args).expect("harness call");
            String::from_utf8_lossy(&out.as_bytes()).into_owned()
        };
        let (want, got) = (run(&states.0), run(&states.1));
        assert_eq!(want, got, "{f}{args:?}");
        want
    }

    fn s(lua: &Lua, text: &[u8]) -> Value {
        Value::String(lua.create_string(text).expect("string"))
    }

    fn int(i: i64) -> Value {
        Value::Integer(i)
    }

    const SUBJECTS: &[&[u8]] = &[
        b"",
        b"a",
        b"aaa",
        b"hello world",
        b"  x = 10, y = 20  ",
        b"THE (quick) [brown] fox",
        b"f(a(b)c)d(e",
        b"abc\0def\0",
        b"a.b.c%d$e^f",
        b"\xc3\xbcber caf\xc3\xa9 \t\x0b\n",
        b"key=value; other = thing",
        b"2024-01-31T12:00:00Z",
        b"aXbXcX",
        b"THE END",
    ];

    const PATTERNS: &[&[u8]] = &[
        b"",
        b"a",
        b"o",
        b"l+",
        b"l*",
        b"l-",
        b"l?",
        b"x*",
        b".",
        b".-",
        b".*",
        b"^",
        b"$",
        b"^$",
        b"^a",
        b"a$",
        b"^.-$",
        b"a^",
        b"$a",
        b"%a+",
        b"%A+",
        b"%c",
        b"%d+",
        b"%D+",
        b"%g+",
        b"%l+",
        b"%p",
        b"%P+",
        b"%s+",
        b"%S+",
        b"%u+",
        b"%w+",
        b"%W",
        b"%x+",
        b"%z",
        b"%Z+",
        b"%.",
        b"%%",
        b"%$",
        b"[aeiou]",
        b"[^aeiou]+",
        b"[a-f]+",
        b"[%a_][%w_]*",
        b"[%]]",
        b"[]]",
        b"[^]]+",
        b"[a-]",
        b"[-a]",
        b"[%-]",
        b"[^%s=]+",
        b"[\0-\x1f]",
        b"[\x80-\xff]+",
        b"(%w+)=(%w+)",
        b"(%w+)%s*=%s*(%w+)",
        b"()",
        b"()a()",
        b"(a)()",
        b"((a)(b))",
        b"(h)(e)(l)(l)(o)",
        b"%b()",
        b"%b[]",
        b"%bXX",
        b"%f[%w]%w+",
        b"%f[%W]",
        b"%f[%a]",
        b"%f[%z]",
        b"%f[^\0]",
        b"(a)%1",
        b"(.)%1",
        b"(l)%1",
        b"(%w)(%w)%2%1",
        b"()%1",
        b"(.-)%s",
        b"^(.-)%s*$",
        b"^%s*(.-)%s*$",
        b"(%d+)-(%d+)-(%d+)",
        b"\0",
        b"c\0d",
        b"%",
        b"a%",
        b"[a",
        b"[a%",
        b"[%",
        b"[^",
        b"(",
        b"(()",
        b")",
        b"a)",
        b"%1",
        b"(a%1)",
        b"%0",
        b"%9",
        b"%b",
        b"%ba",
        b"%f",
        b"%fa",
        b"%g%",
        b"(a",
        b"a(",
        b"(a)(",
    ];

    const INITS: &[Option<i64>] = &[
        None,
        Some(1),
        Some(0),
        Some(2),
        Some(5),
        Some(-1),
        Some(-3),
        Some(-100),
        Some(12),
        Some(100),
        Some(i64::MIN),
        Some(i64::MAX),
    ];

    #[test]
    fn find_and_match_agree_with_c_lua() {
        let st = states();
        let lua = &st.0;
        let mut cases = 0;
        for &subject in SUBJECTS {
            for &pattern in PATTERNS {
                for &init in INITS {
                    let init = init.map_or(Value::Nil, int);
                    for fname in ["find", "match"] {
                        let args = [
                            s(lua, fname.as_bytes()),
                            s(lua, subject),
                            s(lua, pattern),
                            init.clone(),
                        ];
                        same(&st, "t_find", &args);
                        cases += 1;
                    }
                    for plain in [Value::Boolean(true), Value::Boolean(false), int(0)] {
                        let args = [
                            s(lua, b"find"),
                            s(lua, subject),
                            s(lua, pattern),
                            init.clone(),
                            plain,
                        ];
                        same(&st, "t_find", &args);
                        cases += 1;
                    }
                }
            }
        }
        assert!(cases > 50_000, "{cases}");
    }

    #[test]
    fn plain_find_agrees_with_c_lua() {
        let st = states();
        let lua = &st.0;
        let subjects: &[&[u8]] = &[
            b"a+b*c?(d)[e]%f.g^h$",
            b"aaaaab",
            b"abababc",
            b"",
            b"x\0y\0z",
        ];
        let needles: &[&[u8]] = &[
            b"", b"+", b"b*", b"(d)", b"[e]", b"%f", b".g", b"^h", b"h$", b"aab", b"abc", b"\0z",
            b"x\0y\0z", b"zz",
        ];
        for &subject in subjects {
            for &needle in needles {
                for init in [Value::Nil, int(1), int(3), int(-2), int(0), int(30), int(6)] {
                    for plain in [Value::Boolean(true), Value::Nil] {
                        let args = [
                            s(lua, b"find"),
                            s(lua, subject),
                            s(lua, needle),
                            init.clone(),
                            plain,
                        ];
                        same(&st, "t_find", &args);
                    }
                }
            }
        }
    }

    #[test]
    fn gmatch_agrees_with_c_lua() {
        let st = states();
        let lua = &st.0;
        for &subject in SUBJECTS {
            for &pattern in PATTERNS {
                for init in [Value::Nil, int(0), int(3), int(-4), int(50)] {
                    same(&st, "t_gmatch", &[s(lua, subject), s(lua, pattern), init]);
                }
            }
        }
        // gmatch treats '^' literally and skips empty matches right after a match.
        for (subject, pattern) in [
            (&b"^a^b"[..], &b"^."[..]),
            (b"abc", b"x*"),
            (b"hello world from lua", b"%a*"),
            (b"a,b,,c", b"([^,]*)"),
            (b"one two", b"()"),
        ] {
            same(
                &st,
                "t_gmatch",
                &[s(lua, subject), s(lua, pattern), Value::Nil],
            );
        }
    }

    #[test]
    fn gsub_agrees_with_c_lua() {
        let st = states();
        let lua = &st.0;
        let specs: &[&[u8]] = &[
            b"s:",
            b"s:<%0>",
            b"s:%1",
            b"s:[%1|%2]",
            b"s:%2",
            b"s:%%",
            b"s:%",
            b"s:a%b",
            b"s:100%",
            b"s:%9",
            b"s:x\0y",
            b"tab",
            b"meta",
            b"fn",
            b"fnfalse",
            b"fnnil",
            b"fnnum",
            b"fntable",
            b"fntrue",
            b"fnerr",
            b"nil",
            b"bool",
            b"num",
            b"float",
        ];
        for &subject in SUBJECTS {
            for &pattern in PATTERNS {
                for &spec in specs {
                    for n in [Value::Nil, int(1), int(0), int(-1), int(2)] {
                        same(
                            &st,
                            "t_gsub",
                            &[s(lua, subject), s(lua, pattern), s(lua, spec), n],
                        );
                    }
                }
            }
        }
        let extra: &[(&[u8], &[u8], &[u8])] = &[
            (b"hello world", b"(o)", b"s:%1%1"),
            (b"hello world", b"o", b"tab"),
            (b"abc", b"", b"s:-"),
            (b"abc", b"b*", b"s:-"),
            (b"abc", b"^", b"s:>"),
            (b"abc", b"$", b"s:<"),
            (b"a b", b"()", b"s:%1"),
            (b"a b", b"()", b"tab"),
            (b"hello", b"l+", b"fn"),
            (b"x = 1", b"(%w+) = (%w+)", b"s:%2 = %1"),
        ];
        for &(subject, pattern, spec) in extra {
            same(
                &st,
                "t_gsub",
                &[s(lua, subject), s(lua, pattern), s(lua, spec), Value::Nil],
            );
        }
    }

    #[test]
    fn argument_handling_agrees_with_c_lua() {
        let st = states();
        let lua = &st.0;
        let chunks = [
            "return string.find()",
            "return string.find('x')",
            "return string.find('x', {})",
            "return string.find(nil, 'x')",
            "return string.find('x', 'x', 'y')",
            "return string.find('x', 'x', 1.5)",
            "return string.find('x', 'x', '1')",
            "return string.find('x', 'x', 2.0)",
            "return string.find('x', 'x', '0x1')",
            "return string.find('x', 'x', 1, nil)",
            "return string.find(12345, 34)",
            "return string.find(1.5, '.', 1, true)",
            "return string.match(2^53, '%d+')",
            "return string.match(-0.0, '.+')",
            "return ('x'):find()",
            "return ('x'):find({})",
            "return ('x'):match('x', {})",
            "return ('x'):gsub('x')",
            "return ('x'):gsub('x', 'y', 'z')",
            "return ('x'):gsub('x', 'y', 1.5)",
            "return ('x'):gmatch()",
            "return ('x'):find('%')",
            "return ('x'):find('(x')",
            "local t = { find = string.find }; return t:find('x')",
            "local f = string.find; return f(nil)",
            "local f = string.gsub; return f('x', 'x', true)",
            "return string.gsub('abc', 'b', setmetatable({}, { __name = 'Thing' }), 'no')",
            "return string.gsub('abc', '%w', '%1', 2)",
            "return string.gsub(123, '2', 'x')",
            "return string.gsub(123, 'z', 'x')",
            "return string.gsub('abc', '%w', 9)",
            "return string.gsub('abc', '', 0.5)",
            "return string.gsub('abc', '%w', '%2')",
            "return string.gsub('abc', '(a)', '%3')",
            "return string.gsub('abc', '%w', function() return {} end)",
            "return string.gsub('abc', '%w', '%')",
            "local n = 0; for a, b in ('k1=v1, k2=v2'):gmatch('(%w+)=(%w+)') do n = n + 1 end; return n",
            "local it = ('abc'):gmatch('.'); return it(), it(), it(), it(), it()",
            "local it = ('abc'):gmatch('(.'); return it()",
            "return ('abc'):gmatch('%')()",
            "return ('x'):rep(300):find(('x?'):rep(300))",
            "return ('x'):rep(300):match(('(x)'):rep(40))",
            "return ('x'):find(('('):rep(40) .. 'x' .. (')'):rep(40))",
            "return ('ab'):rep(10):gsub('(a)(b)', '%2%1', 3)",
            "return string.find('abc', 'b', nil, true)",
            "return string.find('a.c', '.', 1, 1)",
            "return string.gsub('hello', '', '-', 3)",
            "return string.gsub('hello world', '%w+', '%0 %0', 1)",
            "return string.gsub('abc', 'b', '%%1')",
            "return string.match('  trim  ', '^%s*(.-)%s*$')",
            "return string.match('[[x]]', '%[(%b[])%]')",
            "return string.find('THE (quick) fox', '%f[%a]%a+', 5)",
            "return string.gsub('THE (quick) fox', '%f[%a]%a+', string.lower)",
            "return string.gsub('abc', '.', { a = 1, b = true })",
            "return string.find(setmetatable({}, { __name = 'Thing' }), 'x')",
            "return ('a'):rep(10):find(('a*'):rep(300))",
            "return ('a'):rep(10):find(('a-'):rep(250))",
            "return ('a'):rep(10):find(('(a?)'):rep(30))",
            "return string.gsub('abc', '%w', '%0%0', -1)",
            "return string.gsub('a(b', '%b()', 'x')",
            "return string.gsub('hello world', '%f[%w]%w+', '<%0>')",
            "return string.gsub('abc', '', '/')",
        ];
        for chunk in chunks {
            same(&st, "t_chunk", &[s(lua, chunk.as_bytes())]);
        }
    }

    /// A tiny deterministic PRNG (xorshift64*), so the fuzz needs no crates.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
            &items[self.below(items.len())]
        }
    }

    #[test]
    fn random_patterns_agree_with_c_lua() {
        const TOKENS: &[&str] = &[
            ".", "a", "b", " ", "(", ")", "()", "%a", "%d", "%s", "%w", "%p", "%A", "%S", "[ab]",
            "[^a]", "[a-c]", "[%d_]", "[%]]", "*", "+", "-", "?", "%1", "%2", "%b()", "%bab",
            "%f[%w]", "%f[^%s]", "^", "$", "%", "[", "]", "%.", "%%", "%z", "[^", "%f", "%b",
        ];
        const ALPHABET: &[u8] = b"ab ()1_.%\0A[]c";
        let st = states();
        let lua = &st.0;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..6000 {
            let pattern: String = (0..1 + rng.below(5)).map(|_| *rng.pick(TOKENS)).collect();
            let subject: Vec<u8> = (0..rng.below(10)).map(|_| *rng.pick(ALPHABET)).collect();
            let init = match rng.below(4) {
                0 => Value::Nil,
                _ => int(rng.below(25) as i64 - 12),
            };
            let (subject, pattern) = (s(lua, &subject), s(lua, pattern.as_bytes()));
            for fname in ["find", "match"] {
                let args = [
                    s(lua, fname.as_bytes()),
                    subject.clone(),
                    pattern.clone(),
                    init.clone(),
                ];
                same(&st, "t_find", &args);
            }
            same(
                &st,
                "t_gmatch",
                &[subject.clone(), pattern.clone(), init.clone()],
            );
            let spec = s(lua, rng.pick(&["fn", "s:<%0>", "s:%1", "tab"]).as_bytes());
            same(&st, "t_gsub", &[subject, pattern, spec, Value::Nil]);
        }
    }

    #[test]
    fn deepest_patterns_fit_a_small_thread_stack() {
        let worker = std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(|| {
                let lua = Lua::new();
                install(&lua).expect("install");
                let deep = r#"
                    local s = ("a"):rep(400)
                    assert(not pcall(s.find, s, ("a?"):rep(300)))
                    assert(not pcall(s.find, s, ("a-"):rep(300)))
                    assert(s:find(("a?"):rep(199)))
                    assert(s:find(("a-"):rep(199)))
                    assert(s:find(("(a?)"):rep(32)))
                "#;
                lua.load(deep).exec()
            })
            .expect("spawn");
        worker
            .join()
            .expect("no stack overflow")
            .expect("deep patterns");
    }

    /// A deliberately small stack (tokio's default worker stack is 2 MiB).
    const STACK: usize = 512 * 1024;

    fn budgeted(units: u64) -> (Lua, Arc<CallBudget>) {
        let lua = Lua::new();
        install(&lua).expect("install");
        let budget = CallBudget::new();
        budget.reset(units, std::time::Duration::from_secs(3600));
        lua.set_app_data(Arc::clone(&budget));
        (lua, budget)
    }

    #[test]
    fn pattern_bomb_is_stopped_by_the_budget() {
        let (lua, budget) = budgeted(10_000_000);
        let started = Instant::now();
        let err = lua
            .load(r#"return ("a"):rep(20000):find(".-.-.-b")"#)
            .exec()
            .expect_err("the bomb must fail");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains(BUDGET_MESSAGE), "{err}");
        assert!(budget.is_spent());
        assert_eq!(budget.remaining(), 0);
        // Once spent, even trivial matching fails at once.
        let err = lua
            .load(r#"return ("abc"):find("b", 1, true)"#)
            .exec()
            .expect_err("spent");
        assert!(err.to_string().contains(BUDGET_MESSAGE), "{err}");
    }

    #[test]
    fn bombs_in_every_entry_point_are_stopped() {
        let bombs = [
            r#"return ("a"):rep(20000):match("(.-)(.-)(.-)b")"#,
            r#"for _ in ("a"):rep(20000):gmatch(".-.-.-b") do end"#,
            r#"return ("a"):rep(20000):gsub(".-.-.-b", "x")"#,
            r#"return ("("):rep(20000):find("%b()")"#,
            r#"return ("a"):rep(5000):find("(a*)%1b")"#,
            r#"return ("a"):rep(20000):find("[" .. ("b"):rep(100000) .. "]")"#,
            r#"return ("a"):rep(200000):find(("a"):rep(100000) .. "b", 1, true)"#,
            r#"return ("a"):rep(100000):gsub("", ("%0"):rep(100000))"#,
        ];
        for bomb in bombs {
            let (lua, budget) = budgeted(5_000_000);
            let started = Instant::now();
            let err = lua.load(bomb).exec().expect_err(bomb);
            assert!(err.to_string().contains(BUDGET_MESSAGE), "{bomb}: {err}");
            assert!(budget.is_spent(), "{bomb}");
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{bomb}: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn ordinary_matching_is_charged_modestly() {
        let (lua, budget) = budgeted(10_000_000);
        lua.load(r#"assert(("a"):rep(1000000):find("b", 1, true) == nil)"#)
            .exec()
            .expect("plain find");
        let after_plain = budget.remaining();
        assert!(10_000_000 - after_plain < 2_000, "{after_plain}");
        lua.load(r#"assert(("hello world"):match("(%w+) (%w+)") == "hello")"#)
            .exec()
            .expect("match");
        let spent = after_plain - budget.remaining();
        assert!((10..1_000).contains(&spent), "{spent}");
        assert!(!budget.is_spent());
    }

    #[test]
    fn gsub_with_a_function_is_charged_per_match() {
        let (lua, budget) = budgeted(10_000_000);
        let probe = Arc::clone(&budget);
        let remaining = lua
            .create_function(move |_, ()| Ok(probe.remaining()))
            .expect("probe");
        lua.globals().set("remaining", remaining).expect("global");
        let seen: Vec<u64> = lua
            .load(
                r#"
                local seen = {}
                string.gsub(("word "):rep(50), "%a+", function() seen[#seen + 1] = remaining() end)
                return seen
                "#,
            )
            .eval()
            .expect("gsub");
        assert_eq!(seen.len(), 50);
        // Matching steps reach the budget before each callback, not only at the end.
        assert!(seen[0] < 10_000_000);
        assert!(seen.windows(2).all(|w| w[1] < w[0]), "{seen:?}");
    }

    #[test]
    fn gsub_results_grow_inside_the_memory_limit() {
        let lua = Lua::new();
        install(&lua).expect("install");
        lua.set_memory_limit(16 << 20).expect("limit");
        let err = lua
            .load(r#"local s = ("x"):rep(1000000); return s:gsub(".", s)"#)
            .exec()
            .expect_err("the result cannot fit");
        assert!(
            matches!(describe_root(&err), mlua::Error::MemoryError(_)),
            "{err}"
        );
    }

    fn describe_root(err: &mlua::Error) -> &mlua::Error {
        match err {
            mlua::Error::CallbackError { cause, .. } => describe_root(cause),
            other => other,
        }
    }

    #[test]
    fn matcher_works_without_lua() {
        let mut meter = Meter::new(1_000);
        let mut ms = MatchState::new(b"key = value", b"(%w+)%s*=%s*(%w+)");
        assert_eq!(ms.match_at(0, &mut meter), Ok(Some(11)));
        assert_eq!(
            ms.captures(0, 11, true),
            Ok(vec![Capture::Text(b"key"), Capture::Text(b"value")])
        );
        assert!(meter.used() > 0);
        let mut ms = MatchState::new(b"abc", b"()b()");
        assert_eq!(ms.match_at(1, &mut meter), Ok(Some(2)));
        assert_eq!(
            ms.captures(1, 2, true),
            Ok(vec![Capture::Position(2), Capture::Position(3)])
        );
        let mut tiny = Meter::new(3);
        let mut ms = MatchState::new(b"aaaaaaaa", b"a*b");
        assert_eq!(ms.match_at(0, &mut tiny), Err(MatchError::Budget));
        assert_eq!((tiny.used(), tiny.left()), (3, 0));
        let mut ms = MatchState::new(b"x", b"[x");
        assert_eq!(
            ms.match_at(0, &mut meter),
            Err(MatchError::Pattern(PatternError::MissingBracket))
        );
    }
}
