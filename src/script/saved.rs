//! The game state as it is saved: its JSON text, and where each of its
//! top-level fields is in that text.
//!
//! A commit stores a state whose top level is an object as one record per
//! field, and writes only the fields whose text changed since the last
//! commit (a quiz answer changes three small fields of thirty; the
//! questions, the players and their scores stay as they were). The text
//! is the one `json_text` wrote, so the spans cost nothing to find.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// A state saved as JSON text.
#[derive(Debug)]
pub struct SavedState {
    text: String,
    /// When the state is an object with at least one field: each field's
    /// key (as JSON, quotes included) and value, in the text's order.
    fields: Option<Vec<Span>>,
}

#[derive(Debug)]
pub(super) struct Span {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// What changed in the state's fields since the last commit.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FieldChanges<'a> {
    /// New or changed fields: name and JSON text, in the state's order.
    pub changed: Vec<(Cow<'a, str>, &'a str)>,
    /// Fields gone.
    pub removed: Vec<String>,
}

impl SavedState {
    pub(super) fn new(text: String, fields: Option<Vec<Span>>) -> SavedState {
        SavedState { text, fields }
    }

    /// The whole state as JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the state is kept as one record per field: its top level
    /// is an object with at least one field.
    pub fn has_fields(&self) -> bool {
        self.fields.is_some()
    }

    /// The fields' names, in the text's order (none unless `has_fields`).
    pub fn names(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.spans().iter().map(|s| self.name(s))
    }

    /// The fields whose text differs from `before`'s (every field when
    /// there is no `before`), and the fields of `before` that are gone.
    pub fn changes_since(&self, before: Option<&SavedState>) -> FieldChanges<'_> {
        let spans = self.spans();
        let Some(before) = before.filter(|b| b.has_fields()) else {
            return FieldChanges {
                changed: spans.iter().map(|s| self.field(s)).collect(),
                removed: Vec::new(),
            };
        };
        let old = before.spans();
        // Fields usually keep their places (a table's order only changes
        // when keys come or go), so each is compared with the one at its
        // place first, and looked up by key only when that is another.
        let mut by_key: Option<HashMap<&str, &str>> = None;
        let mut changed = Vec::new();
        let mut in_place = spans.len() == old.len();
        for (i, s) in spans.iter().enumerate() {
            let (key, value) = (self.slice(&s.key), self.slice(&s.value));
            let was = match old.get(i) {
                Some(o) if before.slice(&o.key) == key => Some(before.slice(&o.value)),
                _ => {
                    in_place = false;
                    let map = by_key.get_or_insert_with(|| before.key_values().collect());
                    map.get(key).copied()
                }
            };
            if was != Some(value) {
                changed.push(self.field(s));
            }
        }
        let removed = if in_place {
            Vec::new()
        } else {
            let now: HashSet<&str> = spans.iter().map(|s| self.slice(&s.key)).collect();
            old.iter()
                .filter(|o| !now.contains(before.slice(&o.key)))
                .map(|o| before.name(o).into_owned())
                .collect()
        };
        FieldChanges { changed, removed }
    }

    fn spans(&self) -> &[Span] {
        self.fields.as_deref().unwrap_or_default()
    }

    fn key_values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans()
            .iter()
            .map(|s| (self.slice(&s.key), self.slice(&s.value)))
    }

    fn field(&self, s: &Span) -> (Cow<'_, str>, &str) {
        (self.name(s), self.slice(&s.value))
    }

    /// A field's name: its key without the quotes, unescaped.
    fn name(&self, s: &Span) -> Cow<'_, str> {
        let key = self.slice(&s.key);
        let inner = key.get(1..key.len().saturating_sub(1)).unwrap_or_default();
        if inner.contains('\\') {
            // The key is a JSON string the writer escaped: it reads back.
            Cow::Owned(serde_json::from_str(key).unwrap_or_default())
        } else {
            Cow::Borrowed(inner)
        }
    }

    fn slice(&self, r: &Range<usize>) -> &str {
        self.text.get(r.clone()).unwrap_or_default()
    }
}

/// A state kept as one record per field, put back together: the object
/// whose fields are `fields` (name and JSON text) in that order.
pub fn join_fields<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut text = String::from("{");
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // A string always serializes.
        text.push_str(&serde_json::to_string(name).unwrap_or_default());
        text.push(':');
        text.push_str(value);
    }
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use mlua::{Lua, Value};

    use super::*;

    fn saved(lua: &Lua, src: &str) -> SavedState {
        let v: Value = lua.load(src).eval().unwrap();
        super::super::json_text::lua_to_json_text(lua, v).unwrap()
    }

    fn names(c: &FieldChanges<'_>) -> Vec<String> {
        c.changed.iter().map(|(n, _)| n.to_string()).collect()
    }

    #[test]
    fn only_fields_whose_text_changed_are_written() {
        let lua = Lua::new();
        let first = saved(&lua, "return {a = 1, b = {2, 3}, ['q\"x'] = 'y'}");
        assert!(first.has_fields());
        let all = first.changes_since(None);
        let mut got = names(&all);
        got.sort();
        assert_eq!(got, ["a", "b", "q\"x"], "a first commit writes every field");
        // Each field's text parses to the field's value, and the fields
        // put back together are the state.
        let parts: Vec<(String, String)> = all
            .changed
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let joined = join_fields(parts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        let back: serde_json::Value = serde_json::from_str(&joined).unwrap();
        let whole: serde_json::Value = serde_json::from_str(first.text()).unwrap();
        assert_eq!(back, whole);

        lua.load("s = {a = 1, b = {2, 3}, ['q\"x'] = 'y'}")
            .exec()
            .unwrap();
        let before = saved(&lua, "return s");
        lua.load("s.b[2] = 4").exec().unwrap();
        let after = saved(&lua, "return s");
        let c = after.changes_since(Some(&before));
        assert_eq!(names(&c), ["b"]);
        assert_eq!(c.changed[0].1, "[2,4]");
        assert!(c.removed.is_empty());
        assert_eq!(after.changes_since(Some(&after)), FieldChanges::default());

        lua.load("s.a = nil s.c = true").exec().unwrap();
        let later = saved(&lua, "return s");
        let c = later.changes_since(Some(&after));
        assert_eq!(names(&c), ["c"]);
        assert_eq!(c.removed, ["a"]);
    }

    #[test]
    fn a_state_that_is_not_an_object_has_no_fields() {
        let lua = Lua::new();
        for src in [
            "return {}",
            "return {1, 2}",
            "return 'x'",
            "return {{a = 1}}",
        ] {
            let s = saved(&lua, src);
            assert!(!s.has_fields(), "{src}");
            assert_eq!(s.names().count(), 0);
        }
        // Nested objects are not split: only the top level.
        let s = saved(&lua, "return {a = {b = {c = 1}}}");
        assert_eq!(s.names().collect::<Vec<_>>(), ["a"]);
    }
}
