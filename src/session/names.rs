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
    fn every_character_is_judged_without_panicking() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let _ = check_char(c, Some('a'), Some('b'));
            let _ = check_char(c, None, None);
        }
    }
}
