//! Nicknames: what a student may type as a name, and when two names are the
//! same person's.
//!
//! [`clean_name`] trims and NFC-normalises a name and refuses what would let
//! it hide or pose as another: control, format, private-use and unassigned
//! characters, invisible fillers, marks with nothing to sit on. Zero-width
//! joiners stay where writing needs them (emoji sequences, after a virama,
//! non-joiners between Arabic-script letters), tag characters only inside an
//! emoji flag. [`name_key`] is what uniqueness compares: NFKC, case folded,
//! then the Unicode confusable skeleton (UTS #39), so `Аna` (Cyrillic А),
//! `Ａna`, `ANA` and `A\u{200b}na` all collide with `Ana`.
//!
//! [`NameFilter`] refuses names on a word list (`names/blocked.txt`, or the
//! file of `--blocked-names`), seen through the same folding plus leet
//! digits; [`generated_name`] draws an adjective and an animal
//! (`names/adjectives.txt`, `names/animals.txt`) for sessions whose players
//! get generated names.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;
use unicode_properties::{GeneralCategory, UnicodeEmoji, UnicodeGeneralCategory};

use crate::protocol::{ErrorCode, ProtocolError};

/// Longest accepted nickname, in characters (after NFC).
pub(crate) const MAX_NAME_CHARS: usize = 24;

const ZWNJ: char = '\u{200c}';
const ZWJ: char = '\u{200d}';
/// Canonical combining class of a virama, after which ZWJ/ZWNJ pick a
/// conjunct form in Indic scripts.
const VIRAMA: u8 = 9;

/// Trims, NFC-normalises and checks a nickname.
pub(crate) fn clean_name(name: &str) -> Result<String, ProtocolError> {
    let name: String = name.trim().nfc().collect();
    let chars: Vec<char> = name.chars().collect();
    if chars.is_empty() {
        return Err(invalid("please enter a name"));
    }
    if chars.len() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "names can be at most {MAX_NAME_CHARS} characters"
        )));
    }
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        check_char(c, prev, next)?;
    }
    Ok(name)
}

/// What uniqueness compares: names with equal keys look alike. Infallible,
/// so names stored before these rules still get one.
pub(crate) fn name_key(name: &str) -> Box<str> {
    let folded = fold(&name.nfkc().collect::<String>());
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    // The skeleton maps some characters to capitals (`0` to `O`).
    let key = fold(&skeleton);
    key.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .into_boxed_str()
}

/// Full case folding, near enough: `ß` and `SS` fold alike, as do `ſ` and `s`.
fn fold(s: &str) -> String {
    s.to_uppercase().to_lowercase()
}

fn check_char(c: char, prev: Option<char>, next: Option<char>) -> Result<(), ProtocolError> {
    use GeneralCategory as G;
    match c.general_category() {
        G::Control => Err(invalid("names cannot contain control characters")),
        G::Format if joiner_allowed(c, prev, next) || tag_allowed(c, prev) => Ok(()),
        G::Format | G::LineSeparator | G::ParagraphSeparator => Err(invisible()),
        G::PrivateUse | G::Unassigned | G::Surrogate => Err(invalid(
            "names can only use letters, numbers, punctuation, spaces and emoji",
        )),
        _ if is_blank(c) => Err(invisible()),
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark => {
            // A mark needs a letter (or emoji) to sit on; NFC has already
            // joined accents to their letters where it can.
            match prev {
                Some(p) if !p.is_whitespace() => Ok(()),
                _ => Err(invalid(
                    "accents and other marks must sit on a letter, not stand alone",
                )),
            }
        }
        _ => Ok(()),
    }
}

/// ZWJ and ZWNJ where a script or an emoji sequence needs them.
fn joiner_allowed(c: char, prev: Option<char>, next: Option<char>) -> bool {
    let (Some(prev), Some(next)) = (prev, next) else {
        return false;
    };
    if canonical_combining_class(prev) == VIRAMA {
        return c == ZWJ || c == ZWNJ;
    }
    match c {
        // 👩‍🚀: a joiner between two emoji (the first maybe with a skin
        // tone or VS16).
        ZWJ => {
            let emoji = |c: char| !c.is_ascii() && c.is_emoji_char();
            (emoji(prev) || prev == '\u{fe0f}') && emoji(next)
        }
        // Persian names such as علی‌رضا keep two letters apart with ZWNJ.
        ZWNJ => arabic_script(prev) && arabic_script(next),
        _ => false,
    }
}

/// Tag characters spell a subdivision flag after 🏴 (England, Scotland,
/// Wales), ended by the cancel tag.
fn tag_allowed(c: char, prev: Option<char>) -> bool {
    let Some(prev) = prev else {
        return false;
    };
    let tag = |c: char| ('\u{e0020}'..='\u{e007e}').contains(&c);
    (tag(c) || c == '\u{e007f}') && (prev == '\u{1f3f4}' || tag(prev))
}

fn arabic_script(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06ff}' | '\u{0750}'..='\u{077f}' | '\u{08a0}'..='\u{08ff}'
        | '\u{fb50}'..='\u{fdff}' | '\u{fe70}'..='\u{feff}')
        && !matches!(c.general_category(), GeneralCategory::Format)
}

/// Letters and symbols that draw nothing: Hangul fillers, the combining
/// grapheme joiner, Khmer inherent vowels, the blank Braille pattern.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
            | '\u{034f}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{2800}'
    )
}

/// The shipped list of names students may not use.
const BLOCKED: &str = include_str!("../../names/blocked.txt");
const ADJECTIVES: &str = include_str!("../../names/adjectives.txt");
const ANIMALS: &str = include_str!("../../names/animals.txt");

/// Listed words this long or longer (after folding) are refused anywhere in
/// a name; shorter ones only as a whole word, so `ass` does not refuse
/// `Cassandra`.
const SUBSTRING_CHARS: usize = 5;

/// The lines of a word list: trimmed, without blank lines and `#` comments.
fn list_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Names students may not use: a word list, matched through case, lookalike
/// letters, leet digits and spacing (see [`NameFilter::blocks`]).
#[derive(Debug, Clone)]
pub(crate) struct NameFilter {
    /// Each listed word in its folded form (`filter_words`, joined), and
    /// whether it is matched anywhere in a name rather than as a word.
    words: Vec<(String, bool)>,
    /// The list's text when it replaced the shipped one (a recording keeps
    /// it, so a replay refuses the same names).
    custom: Option<String>,
}

impl Default for NameFilter {
    /// The shipped list (`names/blocked.txt`).
    fn default() -> Self {
        NameFilter::from_list(BLOCKED)
    }
}

impl NameFilter {
    /// A filter of the words in `text`, one a line (`#` starts a comment line).
    pub(crate) fn from_list(text: &str) -> NameFilter {
        let mut words: Vec<(String, bool)> = list_lines(text)
            .map(|line| filter_words(line).concat())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let anywhere = w.chars().count() >= SUBSTRING_CHARS;
                (w, anywhere)
            })
            .collect();
        words.sort();
        words.dedup();
        NameFilter {
            words,
            custom: None,
        }
    }

    /// A filter that replaces the shipped list (`--blocked-names FILE`).
    pub(crate) fn custom(text: &str) -> NameFilter {
        NameFilter {
            custom: Some(text.to_owned()),
            ..NameFilter::from_list(text)
        }
    }

    /// The list's text when it is not the shipped one.
    pub(crate) fn custom_text(&self) -> Option<&str> {
        self.custom.as_deref()
    }

    /// Cleans a name (`clean_name`) and checks it against the list; its
    /// `name_key` with it.
    pub(crate) fn accept(&self, name: &str) -> Result<(String, Box<str>), ProtocolError> {
        let name = clean_name(name)?;
        self.check(&name)?;
        let key = name_key(&name);
        Ok((name, key))
    }

    /// How many words the list holds.
    pub(crate) fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether `name` uses a listed word: a long word (5 letters or more)
    /// anywhere in the name with spaces and punctuation ignored, a short one
    /// as a whole word (single letters with spaces or dots between them,
    /// `f u c k`, count as one word).
    pub(crate) fn blocks(&self, name: &str) -> bool {
        let words = filter_words(name);
        let joined = words.concat();
        self.words.iter().any(|(w, anywhere)| {
            if *anywhere {
                joined.contains(w.as_str())
            } else {
                words.iter().any(|x| x == w) || joined == *w
            }
        })
    }

    /// Checks a cleaned name against the list.
    pub(crate) fn check(&self, name: &str) -> Result<(), ProtocolError> {
        if self.blocks(name) {
            Err(invalid("please choose another name"))
        } else {
            Ok(())
        }
    }
}

impl crate::script::NameRules for NameFilter {
    fn accept(&self, name: &str) -> Result<(String, Box<str>), String> {
        NameFilter::accept(self, name).map_err(|e| e.message)
    }

    fn key(&self, name: &str) -> Box<str> {
        name_key(name)
    }
}

/// What the filter compares: NFKC, case folded, leet digits as letters,
/// the confusable skeleton, split into words of letters and digits, with
/// runs of single characters (`f u c k`, `f.u.c.k`) closed up into one word.
fn filter_words(name: &str) -> Vec<String> {
    let folded: String = fold(&name.nfkc().collect::<String>())
        .chars()
        .map(leet)
        .collect();
    let skeleton: String = unicode_security::skeleton(&folded).collect();
    let key = fold(&skeleton);
    let mut words: Vec<String> = Vec::new();
    let mut single_run = false;
    for word in key
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let single = word.chars().count() == 1;
        match words.last_mut() {
            Some(last) if single && single_run => last.push_str(word),
            _ => words.push(word.to_owned()),
        }
        single_run = single;
    }
    words
}

/// A digit or sign used for the letter it looks like.
fn leet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | '!' | '|' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' | '+' => 't',
        '8' => 'b',
        c => c,
    }
}

/// The words generated names are made of.
struct NameParts {
    adjectives: Vec<&'static str>,
    animals: Vec<&'static str>,
}

fn name_parts() -> &'static NameParts {
    static PARTS: std::sync::OnceLock<NameParts> = std::sync::OnceLock::new();
    PARTS.get_or_init(|| NameParts {
        adjectives: list_lines(ADJECTIVES).collect(),
        animals: list_lines(ANIMALS).collect(),
    })
}

/// Every generated name there can be, in order (for tests and checks).
#[cfg(test)]
pub(crate) fn all_generated_names() -> impl Iterator<Item = String> {
    let parts = name_parts();
    parts
        .adjectives
        .iter()
        .flat_map(move |a| parts.animals.iter().map(move |b| format!("{a} {b}")))
}

/// A generated name (`Brave Otter`) for the member with join position
/// `order` in a session whose names are drawn from `seed`, whose key
/// (`name_key`) `taken` does not refuse. The same seed, order and members
/// give the same name, so a replayed session draws what the original did.
/// When the draws keep hitting names in use, the whole list is walked from
/// a drawn place; when every pair is in use, a number is added.
pub(crate) fn generated_name(seed: u64, order: u64, taken: impl Fn(&str) -> bool) -> String {
    let parts = name_parts();
    let (a, b) = (parts.adjectives.len() as u64, parts.animals.len() as u64);
    if a == 0 || b == 0 {
        return format!("Player {order}");
    }
    let pick = |i: u64| {
        let adjective = parts.adjectives[(i / b % a) as usize];
        let animal = parts.animals[(i % b) as usize];
        format!("{adjective} {animal}")
    };
    let mut state = seed ^ order.wrapping_mul(0xd6e8_feb8_6659_fd93);
    let mut draw = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for _ in 0..32 {
        let name = pick(draw() % (a * b));
        if !taken(&name_key(&name)) {
            return name;
        }
    }
    let start = draw() % (a * b);
    for i in 0..a * b {
        let name = pick((start + i) % (a * b));
        if !taken(&name_key(&name)) {
            return name;
        }
    }
    let base = pick(start);
    (2u64..)
        .map(|n| format!("{base} {n}"))
        .find(|name| !taken(&name_key(name)))
        .unwrap_or(base)
}

fn invisible() -> ProtocolError {
    invalid("names cannot contain invisible characters (like zero-width spaces or direction marks)")
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::NameInvalid, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> bool {
        clean_name(name).is_err_and(|e| e.code == ErrorCode::NameInvalid)
    }

    #[test]
    fn hostile_names_are_refused() {
        for name in [
            "\u{202e}Ana",
            "A\u{200b}na",
            "\u{feff}Ana",
            "\u{200b}\u{200d}",
            "\u{3164}",
            "\u{115f}\u{1160}",
            "\u{ffa0}",
            "A\u{2800}na",
            "\u{0301}",
            "Ana \u{0301}",
            "A\u{200d}na",
            "A\u{200c}na",
            "Ana\u{e0041}",
            "A\u{2028}na",
            "Ana\u{e000}",
            "Ana\u{0378}",
            "Ana\u{7}",
            "A\u{034f}na",
        ] {
            assert!(refused(name), "{name:?} accepted");
        }
    }

    #[test]
    fn real_names_are_accepted() {
        for name in [
            "Ana",
            "José",
            "Zoë Müller",
            "Łukasz",
            "Nguyễn Thị Hương",
            "Ольга",
            "محمد",
            "علی\u{200c}رضا",
            "דנה",
            "山田　太郎",
            "김민준",
            "प्रिया",
            "क्\u{200d}ष",
            "Ana 🦊",
            "👩\u{200d}🚀 Sam",
            "👍🏽",
            "❤\u{fe0f}",
            "1\u{fe0f}\u{20e3}",
            "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
            "O'Brien-Smith",
        ] {
            assert!(
                clean_name(name).is_ok(),
                "{name:?} refused: {:?}",
                clean_name(name)
            );
        }
    }

    #[test]
    fn names_are_nfc() {
        assert_eq!(clean_name("  Jose\u{301} ").unwrap(), "José");
        assert_eq!(
            clean_name(&"e\u{301}".repeat(24)).unwrap().chars().count(),
            24
        );
        assert!(refused(&"a".repeat(25)));
    }

    #[test]
    fn lookalikes_share_a_key() {
        let ana = name_key("Ana");
        for name in [
            "ANA",
            "ana",
            "\u{410}na",
            "\u{ff21}na",
            "A\u{200b}na",
            "Ana  ",
        ] {
            assert_eq!(name_key(name), ana, "{name:?}");
        }
        assert_eq!(name_key("José"), name_key("Jose\u{301}"));
        assert_eq!(name_key("B0b"), name_key("Bob"));
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
        assert_eq!(name_key("Ana  María"), name_key("Ana María"));
        for other in ["Anna", "Ama", "Ena", "Ana B", "Аня", "José B"] {
            assert_ne!(name_key(other), ana, "{other:?}");
        }
    }

    #[test]
    fn listed_words_are_refused_through_disguises() {
        let filter = NameFilter::default();
        for name in [
            "shit",
            "SHIT",
            "Sh1t",
            "sh!t",
            "5hit",
            "s h i t",
            "s.h.i.t",
            "\u{0455}hit",
            "ｓｈｉｔ",
            "Big Shit Face",
            "Bitchface",
            "ass",
            "Big A S S",
            "a55",
            "Fuuck Fuck",
            "b1tch",
            "BiTcHy",
            "xXbitchXx",
            "p0rn",
        ] {
            assert!(filter.blocks(name), "{name:?} passed");
        }
        for name in [
            "Ana",
            "Cassandra",
            "Scunthorpe",
            "Bass",
            "Dickens",
            "Sussex",
            "Classic",
            "Grass Snake",
            "Shiitake",
            "Hancock",
            "Matsushita",
            "Titus",
            "Michael",
            "Ana 2",
        ] {
            assert!(!filter.blocks(name), "{name:?} refused");
        }
        let message = filter.check("shit").unwrap_err().message;
        assert_eq!(message, "please choose another name");
    }

    #[test]
    fn a_list_of_our_own_replaces_the_shipped_one() {
        let filter = NameFilter::custom("# ours\n\nbanana\nkiwi\n");
        assert_eq!(filter.len(), 2);
        assert!(filter.blocks("B4NANA split"));
        assert!(filter.blocks("Kiwi"));
        assert!(!filter.blocks("Kiwifruit"));
        assert!(!filter.blocks("shit"));
    }

    #[test]
    fn generated_names_are_never_refused_and_are_distinct() {
        let filter = NameFilter::default();
        let mut keys = std::collections::HashSet::new();
        for name in all_generated_names() {
            assert!(clean_name(&name).is_ok_and(|n| n == name), "{name:?}");
            assert!(!filter.blocks(&name), "{name:?} is refused by the filter");
            assert!(keys.insert(name_key(&name)), "{name:?} looks like another");
        }
        assert_eq!(keys.len(), 100 * 100);
    }

    #[test]
    fn generated_names_follow_the_seed_and_avoid_taken_ones() {
        assert_eq!(
            generated_name(7, 3, |_| false),
            generated_name(7, 3, |_| false)
        );
        let first = generated_name(7, 3, |_| false);
        let other = generated_name(7, 3, |k| *k == *name_key(&first));
        assert_ne!(first, other);
        let all: std::collections::HashSet<Box<str>> =
            all_generated_names().map(|n| name_key(&n)).collect();
        let full = generated_name(1, 1, |k| all.contains(k));
        assert!(full.ends_with(" 2"), "{full}");
    }

    #[test]
    fn every_character_is_judged_without_panicking() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let _ = check_char(c, Some('a'), Some('b'));
            let _ = check_char(c, None, None);
        }
    }
}
