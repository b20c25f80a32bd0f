//! The screen vocabulary: the view keys the browser pages draw, and the
//! fields of the tables they take (docs/lua-api.md §11). `recess check`
//! warns on keys outside it; the editor stubs (`games/types/recess.lua`)
//! and the docs are tested against it.

/// Top-level view keys the pages draw, in the order they draw them.
pub const VIEW_KEYS: &[&str] = &[
    "title",
    "image",
    "image_alt",
    "text",
    "banner",
    "timer",
    "status",
    "choices",
    "select",
    "slider",
    "order",
    "input",
    "bars",
    "cloud",
    "messages",
    "podium",
    "leaderboard",
    "score",
    "players",
    "kick",
    "rename",
    "buttons",
];

/// Fields of a button (in `choices` and `buttons`).
pub const BUTTON_FIELDS: &[&str] = &["label", "action", "data", "style", "detail"];

/// Fields of `input`.
pub const INPUT_FIELDS: &[&str] = &["action", "placeholder", "max", "label"];

/// Fields of `select` (with `choices`: pick several, then Submit).
pub const SELECT_FIELDS: &[&str] = &["action", "min", "max", "label"];

/// Fields of `slider` (a number on a range, then Submit).
pub const SLIDER_FIELDS: &[&str] = &[
    "action", "min", "max", "step", "value", "unit", "label", "answer",
];

/// Fields of `order` (put a list in order, then Submit).
pub const ORDER_FIELDS: &[&str] = &["action", "items", "label"];

/// Fields of an entry of `order.items`.
pub const ORDER_ITEM_FIELDS: &[&str] = &["label", "style", "detail"];

/// Fields of an entry of `bars` (a bar chart).
pub const BAR_FIELDS: &[&str] = &["label", "value", "style", "detail"];

/// Fields of an entry of `cloud` (a word cloud).
pub const WORD_FIELDS: &[&str] = &["text", "count"];

/// Fields of `banner`.
pub const BANNER_FIELDS: &[&str] = &["text", "style"];

/// Fields of `timer`.
pub const TIMER_FIELDS: &[&str] = &["ends_at", "label"];

/// Fields of an entry of `messages`.
pub const MESSAGE_FIELDS: &[&str] = &["from", "text", "at"];

/// Fields of an entry of `podium` and `leaderboard`.
pub const RANK_FIELDS: &[&str] = &["name", "score", "rank", "highlight"];

/// Fields of an entry of `players`.
pub const PLAYER_FIELDS: &[&str] = &["id", "name", "detail"];

/// The styles of buttons, banners, bars and the items of `order`.
pub const STYLES: &[&str] = &["selected", "correct", "wrong", "disabled"];

/// The known name nearest to `word` (at most two edits away), for "did you
/// mean" hints: `choises` → `choices`.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_near_key() {
        assert_eq!(nearest("choises", VIEW_KEYS), Some("choices"));
        assert_eq!(nearest("titel", VIEW_KEYS), Some("title"));
        assert_eq!(nearest("phase", VIEW_KEYS), None);
        assert_eq!(nearest("slidr", VIEW_KEYS), Some("slider"));
        assert_eq!(nearest("stpe", SLIDER_FIELDS), Some("step"));
    }
}
