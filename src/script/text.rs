//! `string.fold(s)`: the form two typed answers are compared in, so that
//! "Zürich", "zurich " and "ZURICH" are the same answer and "São  Paulo"
//! is "sao paulo". Games call it as `answer:fold()`.

use mlua::Lua;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// Compatibility-decomposes `s` (NFKD: `ﬁ` → `fi`, full-width `Ａ` → `A`),
/// drops the accents (combining marks), lowercases (every script), spells
/// out the letters with a stroke or a ligature (`ł` → `l`, `ø` → `o`, `æ` →
/// `ae`, `ß` → `ss`), makes curly quotes straight, and trims and collapses
/// whitespace (no-break spaces too) to single spaces.
pub(super) fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.nfkd().filter(|c| canonical_combining_class(*c) == 0) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        for l in c.to_lowercase() {
            match plain(l) {
                Some(p) => out.push_str(p),
                None => out.push(l),
            }
        }
    }
    out
}

/// Letters that Unicode does not decompose into a base letter and an accent
/// (a stroke or a ligature), and the quotes phones type: what they fold to.
fn plain(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'ħ' => "h",
        'ŧ' => "t",
        'ı' => "i",
        'þ' => "th",
        '‘' | '’' | '‚' | '′' => "'",
        '“' | '”' | '„' | '″' => "\"",
        _ => return None,
    })
}

/// Adds `fold` to the `string` library (before the sandbox bills it).
pub(super) fn install(lua: &Lua) -> mlua::Result<()> {
    let string: mlua::Table = lua.globals().get("string")?;
    let f = lua.create_function(|lua, s: mlua::Value| {
        let text = match &s {
            mlua::Value::String(s) => s.to_string_lossy(),
            mlua::Value::Integer(_) | mlua::Value::Number(_) => s.to_string()?,
            other => {
                return Err(mlua::Error::runtime(format!(
                    "bad argument #1 to 'fold' (string expected, got {})",
                    other.type_name()
                )));
            }
        };
        lua.create_string(fold(&text))
    })?;
    // Its errors are plain strings, so the sandbox names the script's line.
    string.raw_set("fold", super::sandbox::plain_errors(lua, f)?)
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn accents_case_and_spaces_do_not_matter() {
        assert_eq!(fold("Zürich"), "zurich");
        assert_eq!(fold("  São   Paulo \n"), "sao paulo");
        assert_eq!(fold("ÉCOLE"), "ecole");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("ﬁsh Ａ"), "fish a");
        assert_eq!(fold("Łódź"), "lodz");
        assert_eq!(fold("Øresund Æbleskiver"), "oresund aebleskiver");
        assert_eq!(fold("ΑΘΉΝΑ Москва"), "αθηνα москва");
        assert_eq!(fold("it’s\u{a0}“fine”"), "it's \"fine\"");
        assert_eq!(fold(""), "");
    }
}
