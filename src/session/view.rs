//! RFC 7386 JSON merge patches between two views.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are equal.
///
/// Views are objects whose values never contain `null` (the VM strips them),
/// so the patch is exact: `null` in the patch always means "remove this key".
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let patch = diff_objects(a, b);
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (a, b) if a == b => None,
        (_, b) => Some(b.clone()),
    }
}

fn diff_objects(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in old.keys() {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    for (key, value) in new {
        match old.get(key) {
            Some(previous) if previous == value => {}
            Some(Value::Object(a)) => match value {
                Value::Object(b) => {
                    let inner = diff_objects(a, b);
                    if !inner.is_empty() {
                        patch.insert(key.clone(), Value::Object(inner));
                    }
                }
                other => {
                    patch.insert(key.clone(), other.clone());
                }
            },
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    patch
}

/// Applies a merge patch (RFC 7386 section 2), as a client does.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                apply(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let cases = [
            (json!({}), json!({"a": 1})),
            (
                json!({"a": 1, "b": {"c": 2, "d": 3}}),
                json!({"b": {"c": 2}}),
            ),
            (json!({"a": [1, 2]}), json!({"a": [1]})),
            (json!({"a": {"x": 1}}), json!({"a": 5})),
            (json!({"a": 5}), json!({"a": {"x": 1}})),
            (json!({"a": {}}), json!({"a": {"b": {}}})),
        ];
        for (old, new) in cases {
            let mut v = old.clone();
            if let Some(p) = diff(&old, &new) {
                apply(&mut v, &p);
            }
            assert_eq!(v, new, "from {old}");
        }
        assert_eq!(diff(&json!({"a": 1}), &json!({"a": 1})), None);
    }

    #[test]
    fn removed_keys_become_null() {
        assert_eq!(
            diff(&json!({"a": 1, "b": 2}), &json!({"b": 2})),
            Some(json!({"a": null}))
        );
    }
}
