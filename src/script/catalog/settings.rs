//! A game's `settings`: the choices the host page offers before a session
//! starts, each one a param of `init` (docs/lua-api.md §3 "Settings").
//! Checked when the file loads, so a typo is a load error at the file and
//! not a form that quietly sends nothing.

use serde::Serialize;
use serde_json::{Map, Value as Json};

/// Most settings one game may offer (a form longer than this is no help).
const MAX_SETTINGS: usize = 20;
/// Most choices one `choice` setting may have.
const MAX_CHOICES: usize = 20;
const MAX_KEY: usize = 40;
const MAX_LABEL: usize = 80;
const MAX_HINT: usize = 200;

/// One setting, as `GET /api/games` serves it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    /// The param it sets: `time_limit`.
    pub key: String,
    /// What the form says: "Seconds per question".
    pub label: String,
    /// What kind of field it is (`type` in Lua and JSON).
    #[serde(rename = "type")]
    pub kind: Kind,
    /// A line under the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// What the game does when the host leaves it alone (the form starts
    /// there, and sends the param only when the host changed it).
    #[serde(skip_serializing_if = "Json::is_null")]
    pub default: Json,
    /// A number setting's lowest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// A number setting's highest value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A number setting's step (default: any number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// A `choice` setting's options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    /// Shown (and sent) only while another setting has a value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_if: Option<ShowIf>,
}

/// What kind of field a setting is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tick box: the param is `true` or `false`.
    Checkbox,
    /// A number field: the param is a number (within `min`, `max`).
    Number,
    /// One of `choices`: the param is that choice's `value`.
    Choice,
    /// A line of text.
    Text,
}

/// One option of a `choice` setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The param's value: a string or a number.
    pub value: Json,
    /// What the form says for it.
    pub label: String,
}

/// `show_if = {key = "pace", value = "self"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShowIf {
    /// The other setting's key.
    pub key: String,
    /// The value it must have.
    pub value: Json,
}

/// Reads the game table's `settings` (as JSON; `Null` when it has none).
/// An error says which setting and what to write: `settings[2]
/// (time_limit): `min` must be a number, got "five"`.
pub(super) fn parse(value: &Json) -> Result<Vec<Setting>, String> {
    let list = match value {
        Json::Null => return Ok(Vec::new()),
        // (an empty Lua table arrives as an empty object)
        Json::Object(o) if o.is_empty() => return Ok(Vec::new()),
        Json::Array(list) => list,
        other => {
            return Err(format!(
                "`settings` must be a list of settings ({{key =, label =, type =}}), got {}",
                shown(other)
            ));
        }
    };
    if list.len() > MAX_SETTINGS {
        return Err(format!(
            "`settings` has {} settings; a game may offer at most {MAX_SETTINGS}",
            list.len()
        ));
    }
    let mut settings: Vec<Setting> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let setting = one(item).map_err(|e| at(i, item, &e))?;
        if settings.iter().any(|s| s.key == setting.key) {
            return Err(at(i, item, "this key is offered twice"));
        }
        settings.push(setting);
    }
    for (i, s) in settings.iter().enumerate() {
        if let Some(cond) = &s.show_if {
            check_show_if(cond, &settings).map_err(|e| at(i, &list[i], &e))?;
        }
    }
    Ok(settings)
}

const FIELDS: &[&str] = &[
    "key", "label", "type", "hint", "default", "min", "max", "step", "choices", "show_if",
];

fn one(item: &Json) -> Result<Setting, String> {
    let Json::Object(t) = item else {
        return Err(format!(
            "a setting is a table {{key =, label =, type =}}, got {}",
            shown(item)
        ));
    };
    if let Some(unknown) = t.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{unknown}` (a setting has {})",
            FIELDS.join(", ")
        ));
    }
    let key = text(t, "key", MAX_KEY)?.ok_or("`key` is missing: the param it sets")?;
    let valid = key.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(format!(
            "`key` must be a param name: lowercase letters, digits and _, got {key:?}"
        ));
    }
    let label = text(t, "label", MAX_LABEL)?.ok_or("`label` is missing: what the form says")?;
    let given = t.get("type");
    let Some(&(_, kind)) = KINDS
        .iter()
        .find(|(name, _)| given.and_then(Json::as_str) == Some(*name))
    else {
        return Err(format!(
            "`type` must be \"checkbox\", \"number\", \"choice\" or \"text\", got {}",
            given.map_or("nothing".to_owned(), shown)
        ));
    };
    let hint = text(t, "hint", MAX_HINT)?;
    let number = |field: &str| -> Result<Option<f64>, String> {
        match t.get(field) {
            None => Ok(None),
            Some(_) if kind != Kind::Number => {
                Err(format!("`{field}` is for a \"number\" setting"))
            }
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(format!("`{field}` must be a number, got {}", shown(other))),
        }
    };
    let (min, max, step) = (number("min")?, number("max")?, number("step")?);
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(format!("`min` ({lo}) is above `max` ({hi})"));
    }
    if step.is_some_and(|s| s <= 0.0) {
        return Err("`step` must be above 0".to_owned());
    }
    let choices = match (kind, t.get("choices")) {
        (Kind::Choice, Some(Json::Array(list))) => choices(list)?,
        (Kind::Choice, other) => {
            return Err(format!(
                "a \"choice\" setting needs `choices`, a list of {{value =, label =}}, got {}",
                other.map_or("nothing".to_owned(), shown)
            ));
        }
        (_, Some(_)) => return Err("`choices` is for a \"choice\" setting".to_owned()),
        (_, None) => Vec::new(),
    };
    let default = t.get("default").cloned().unwrap_or(Json::Null);
    let fits = match (&default, kind) {
        (Json::Null, _) | (Json::Bool(_), Kind::Checkbox) | (Json::String(_), Kind::Text) => true,
        (Json::Number(n), Kind::Number) => n
            .as_f64()
            .is_some_and(|n| min.is_none_or(|lo| n >= lo) && max.is_none_or(|hi| n <= hi)),
        (v, Kind::Choice) => choices.iter().any(|c| &c.value == v),
        _ => false,
    };
    if !fits {
        return Err(format!(
            "`default` {} does not fit this {} setting",
            shown(&default),
            kind_name(kind)
        ));
    }
    let show_if = match t.get("show_if") {
        None => None,
        Some(Json::Object(c)) => match (c.get("key"), c.get("value")) {
            (Some(Json::String(key)), Some(value)) if c.len() == 2 => Some(ShowIf {
                key: key.clone(),
                value: value.clone(),
            }),
            _ => return Err("`show_if` must be {key = \"other_key\", value = ...}".to_owned()),
        },
        Some(other) => {
            return Err(format!(
                "`show_if` must be {{key = \"other_key\", value = ...}}, got {}",
                shown(other)
            ));
        }
    };
    Ok(Setting {
        key,
        label,
        kind,
        hint,
        default,
        min,
        max,
        step,
        choices,
        show_if,
    })
}

fn choices(list: &[Json]) -> Result<Vec<Choice>, String> {
    if list.len() < 2 || list.len() > MAX_CHOICES {
        return Err(format!(
            "`choices` must have 2 to {MAX_CHOICES} choices, got {}",
            list.len()
        ));
    }
    let mut out: Vec<Choice> = Vec::with_capacity(list.len());
    for (n, c) in list.iter().enumerate() {
        let bad = || {
            format!(
                "choice {}: a choice is {{value = \"...\", label = \"...\"}} (value a string or a number), got {}",
                n + 1,
                shown(c)
            )
        };
        let Json::Object(c) = c else {
            return Err(bad());
        };
        let value = match c.get("value") {
            Some(v @ (Json::String(_) | Json::Number(_))) => v.clone(),
            _ => return Err(bad()),
        };
        let label = match c.get("label") {
            Some(Json::String(l)) if !l.trim().is_empty() && l.chars().count() <= MAX_LABEL => {
                l.clone()
            }
            _ => return Err(bad()),
        };
        if c.len() != 2 {
            return Err(bad());
        }
        if out.iter().any(|o| o.value == value) {
            return Err(format!(
                "choice {}: the value {} is offered twice",
                n + 1,
                shown(&value)
            ));
        }
        out.push(Choice { value, label });
    }
    Ok(out)
}

fn check_show_if(cond: &ShowIf, settings: &[Setting]) -> Result<(), String> {
    let Some(other) = settings.iter().find(|s| s.key == cond.key) else {
        return Err(format!(
            "`show_if` names `{}`, which is not one of the settings",
            cond.key
        ));
    };
    let possible = match other.kind {
        Kind::Checkbox => cond.value.is_boolean(),
        Kind::Choice => other.choices.iter().any(|c| c.value == cond.value),
        Kind::Number | Kind::Text => false,
    };
    if !possible {
        return Err(format!(
            "`show_if` needs a checkbox or choice setting and one of its values; `{}` never has {}",
            cond.key,
            shown(&cond.value)
        ));
    }
    Ok(())
}

/// A string field, trimmed, of at most `max` characters; `None` when absent.
fn text(t: &Map<String, Json>, field: &str, max: usize) -> Result<Option<String>, String> {
    match t.get(field) {
        None => Ok(None),
        Some(Json::String(s)) if s.trim().is_empty() => Err(format!("`{field}` is empty")),
        Some(Json::String(s)) if s.trim().chars().count() > max => Err(format!(
            "`{field}` is {} characters; at most {max}",
            s.trim().chars().count()
        )),
        Some(Json::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(other) => Err(format!("`{field}` must be a string, got {}", shown(other))),
    }
}

/// The kinds by the name a game writes (and `GET /api/games` serves).
const KINDS: [(&str, Kind); 4] = [
    ("checkbox", Kind::Checkbox),
    ("number", Kind::Number),
    ("choice", Kind::Choice),
    ("text", Kind::Text),
];

fn kind_name(kind: Kind) -> &'static str {
    KINDS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("", |(name, _)| name)
}

/// `settings[2] (time_limit): message`.
fn at(i: usize, item: &Json, message: &str) -> String {
    match item.get("key").and_then(Json::as_str) {
        Some(key) => format!("settings[{}] ({key}): {message}", i + 1),
        None => format!("settings[{}]: {message}", i + 1),
    }
}

/// A value in a message, as short JSON.
fn shown(v: &Json) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_list_is_read_as_written() {
        let settings = parse(&json!([
            {"key": "time_limit", "label": "Seconds per question", "type": "number",
             "min": 5, "max": 240, "hint": "Empty: each question's own time"},
            {"key": "pace", "label": "Pace", "type": "choice", "default": "host",
             "choices": [{"value": "host", "label": "Live"}, {"value": "self", "label": "Homework"}]},
            {"key": "deadline", "label": "Closes after (hours)", "type": "number", "default": 24,
             "min": 1, "max": 168, "show_if": {"key": "pace", "value": "self"}},
            {"key": "shuffle", "label": "Shuffle", "type": "checkbox", "default": false},
        ]))
        .unwrap();
        assert_eq!(settings.len(), 4);
        assert_eq!(settings[0].kind, Kind::Number);
        assert_eq!(settings[0].max, Some(240.0));
        assert_eq!(settings[1].choices[1].value, json!("self"));
        assert_eq!(
            settings[2].show_if,
            Some(ShowIf {
                key: "pace".into(),
                value: json!("self")
            })
        );
        let served = serde_json::to_value(&settings[3]).unwrap();
        assert_eq!(
            served,
            json!({"key": "shuffle", "label": "Shuffle", "type": "checkbox", "default": false})
        );
        assert_eq!(parse(&Json::Null).unwrap(), Vec::new());
        assert_eq!(parse(&json!({})).unwrap(), Vec::new());
    }

    #[test]
    fn each_mistake_is_named_with_the_setting_and_what_to_write() {
        let cases = [
            (json!("x"), "`settings` must be a list of settings"),
            (
                json!([5]),
                "settings[1]: a setting is a table {key =, label =, type =}, got 5",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "slider"}]),
                "settings[1] (a): `type` must be \"checkbox\", \"number\", \"choice\" or \"text\", got \"slider\"",
            ),
            (
                json!([{"key": "a", "lable": "A", "type": "text"}]),
                "settings[1] (a): unknown field `lable`",
            ),
            (
                json!([{"key": "Time", "label": "A", "type": "text"}]),
                "`key` must be a param name",
            ),
            (
                json!([{"label": "A", "type": "text"}]),
                "settings[1]: `key` is missing",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "number", "min": "five"}]),
                "settings[1] (a): `min` must be a number, got \"five\"",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "number", "min": 9, "max": 1}]),
                "`min` (9) is above `max` (1)",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "text", "min": 1}]),
                "`min` is for a \"number\" setting",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "choice"}]),
                "a \"choice\" setting needs `choices`",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "choice", "choices": [{"value": 1, "label": "One"}]}]),
                "`choices` must have 2 to 20 choices, got 1",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "number", "default": 500, "max": 100}]),
                "`default` 500 does not fit this number setting",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "text"}, {"key": "a", "label": "B", "type": "text"}]),
                "settings[2] (a): this key is offered twice",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "text", "show_if": {"key": "b", "value": true}}]),
                "`show_if` names `b`, which is not one of the settings",
            ),
            (
                json!([{"key": "a", "label": "A", "type": "checkbox"},
                    {"key": "b", "label": "B", "type": "text", "show_if": {"key": "a", "value": "yes"}}]),
                "settings[2] (b): `show_if` needs a checkbox or choice setting and one of its values; `a` never has \"yes\"",
            ),
        ];
        for (value, expected) in cases {
            let err = parse(&value).unwrap_err();
            assert!(
                err.contains(expected),
                "{value}: {err:?} should contain {expected:?}"
            );
        }
        let many: Vec<Json> = (0..21)
            .map(|i| json!({"key": format!("k{i}"), "label": "L", "type": "text"}))
            .collect();
        assert!(
            parse(&Json::Array(many))
                .unwrap_err()
                .contains("at most 20")
        );
    }
}
