//! Views: RFC 7386 JSON merge patches between two of them, and a view pass
//! that shares equal views between members.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde_json::{Map, Value};

/// Most views kept per content hash: equal hashes of different views are
/// rare, and a bound keeps crafted collisions from costing more than a copy.
const MAX_PER_HASH: usize = 4;

/// One view pass over a session's members. Members who see the same thing
/// hold one shared copy of it, and the patch from one shared view to another
/// is computed and encoded once: a pass over 10 000 members who all see the
/// same view keeps one view and diffs once.
pub struct ViewPass<K> {
    by_hash: FxHashMap<u64, Vec<Arc<Value>>>,
    /// Patches by (old view, new view) address: the index of their group in
    /// `groups`, or `None` when the two are equal.
    patches: FxHashMap<(usize, usize), Option<usize>>,
    /// Views replaced during the pass whose last holder let go: kept alive
    /// until the pass ends, so no address in `patches` is reused.
    retired: Vec<Arc<Value>>,
    /// Encoded patches and the members who receive each, in first-seen order.
    groups: IndexMap<String, Vec<K>>,
}

impl<K> Default for ViewPass<K> {
    fn default() -> Self {
        ViewPass {
            by_hash: FxHashMap::default(),
            patches: FxHashMap::default(),
            retired: Vec::new(),
            groups: IndexMap::new(),
        }
    }
}

impl<K> ViewPass<K> {
    /// Moves `member`'s view (`held`) to `new`. Returns whether it changed;
    /// if so, the member joins the group of its patch. An unchanged view is
    /// still swapped for the shared copy, so equal views end up stored once.
    pub fn update(&mut self, member: K, held: &mut Arc<Value>, new: Value) -> bool {
        let new = self.share(new);
        if Arc::ptr_eq(held, &new) {
            return false;
        }
        let key = (Arc::as_ptr(held) as usize, Arc::as_ptr(&new) as usize);
        let group = match self.patches.get(&key) {
            Some(group) => *group,
            None => {
                let group = diff(held, &new).map(|patch| {
                    let entry = self.groups.entry(patch.to_string());
                    let index = entry.index();
                    entry.or_default();
                    index
                });
                self.patches.insert(key, group);
                group
            }
        };
        let old = std::mem::replace(held, new);
        if Arc::strong_count(&old) == 1 {
            self.retired.push(old);
        }
        match group.and_then(|index| self.groups.get_index_mut(index)) {
            Some((_, members)) => {
                members.push(member);
                true
            }
            None => false,
        }
    }

    /// The shared copy of `view`: an equal one made earlier in this pass, or
    /// this one.
    fn share(&mut self, view: Value) -> Arc<Value> {
        let mut hasher = FxHasher::default();
        hash_value(&view, &mut hasher);
        let candidates = self.by_hash.entry(hasher.finish()).or_default();
        if let Some(found) = candidates.iter().find(|c| ***c == view) {
            return found.clone();
        }
        let view = Arc::new(view);
        if candidates.len() < MAX_PER_HASH {
            candidates.push(view.clone());
        }
        view
    }

    /// The encoded patches and who receives each.
    pub fn into_groups(self) -> IndexMap<String, Vec<K>> {
        self.groups
    }
}

/// Whose views the next view pass recomputes: everyone's, or only those a
/// handler named with `ctx.redraw` (member ids, or the roles `host` and
/// `player`). Anything the engine itself changes (a kick, a rename, new
/// rules, a call that named nobody) redraws everyone.
#[derive(Debug, Default)]
pub struct Redraw {
    everyone: bool,
    named: FxHashSet<String>,
}

impl Redraw {
    /// Every member's view may have changed.
    pub fn everyone(&mut self) {
        self.everyone = true;
        self.named.clear();
    }

    /// What one successful call asked for: `None` (it named nobody, so
    /// anything may have changed) redraws everyone.
    pub fn after_call(&mut self, named: Option<Vec<String>>) {
        match named {
            None => self.everyone(),
            Some(_) if self.everyone => {}
            Some(who) => self.named.extend(who),
        }
    }

    /// Whether a view pass is due.
    pub fn is_due(&self) -> bool {
        self.everyone || !self.named.is_empty()
    }

    /// Whether the member with this id and role is to be redrawn.
    pub fn covers(&self, id: &str, role: &str) -> bool {
        self.everyone || self.named.contains(id) || self.named.contains(role)
    }

    /// Whether everyone is to be redrawn.
    pub fn is_everyone(&self) -> bool {
        self.everyone
    }

    /// The set for this pass; the next starts empty.
    pub fn take(&mut self) -> Redraw {
        std::mem::take(self)
    }
}

/// Hashes a view consistently with `==`: equal views hash equally.
fn hash_value(value: &Value, h: &mut FxHasher) {
    match value {
        Value::Null => h.write_u8(0),
        Value::Bool(b) => {
            h.write_u8(1);
            h.write_u8(u8::from(*b));
        }
        Value::Number(n) => {
            // serde_json's numbers are equal only within one representation.
            h.write_u8(2);
            if let Some(u) = n.as_u64() {
                h.write_u64(u);
            } else if let Some(i) = n.as_i64() {
                h.write_i64(i);
            } else {
                h.write_u64(n.as_f64().map_or(0, f64::to_bits));
            }
        }
        Value::String(s) => {
            h.write_u8(3);
            s.hash(h);
        }
        Value::Array(items) => {
            h.write_u8(4);
            h.write_usize(items.len());
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(map) => {
            h.write_u8(5);
            h.write_usize(map.len());
            for (key, item) in map {
                key.hash(h);
                hash_value(item, h);
            }
        }
    }
}

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
    fn a_pass_shares_equal_views_and_groups_equal_patches() {
        let empty = Arc::new(json!({}));
        // Four members: three start from one shared view, one from its own
        // equal copy; all move to equal new views except the last.
        let mut held = [empty.clone(), empty.clone(), Arc::new(json!({})), empty];
        let mut pass = ViewPass::default();
        let new = [
            json!({"q": 1}),
            json!({"q": 1}),
            json!({"q": 1}),
            json!({"q": 2}),
        ];
        for (k, (slot, view)) in held.iter_mut().zip(new).enumerate() {
            assert!(pass.update(k, slot, view));
        }
        assert!(Arc::ptr_eq(&held[0], &held[1]) && Arc::ptr_eq(&held[1], &held[2]));
        assert_eq!(*held[3], json!({"q": 2}));
        let groups: Vec<(String, Vec<usize>)> = pass.into_groups().into_iter().collect();
        assert_eq!(
            groups,
            vec![
                (r#"{"q":1}"#.to_owned(), vec![0, 1, 2]),
                (r#"{"q":2}"#.to_owned(), vec![3]),
            ]
        );

        // An unchanged view sends nothing but is swapped for the shared copy.
        let mut own = Arc::new(json!({"q": 1}));
        let mut pass = ViewPass::default();
        assert!(!pass.update(0, &mut held[0], json!({"q": 1})));
        assert!(!pass.update(1, &mut own, json!({"q": 1})));
        assert!(Arc::ptr_eq(&own, &held[0]));
        assert!(pass.into_groups().is_empty());
    }

    #[test]
    fn equal_views_hash_equally_and_numbers_keep_their_kind() {
        let hash = |v: &Value| {
            let mut h = FxHasher::default();
            hash_value(v, &mut h);
            h.finish()
        };
        let a = json!({"b": [1, -2, 3.5, "x", null, true], "a": {}});
        let b: Value = serde_json::from_str(&a.to_string()).unwrap();
        assert_eq!(hash(&a), hash(&b));
        // 1 and 1.0 are different views (serde_json compares them unequal),
        // so sharing them would change what a client receives.
        let mut pass = ViewPass::<usize>::default();
        let int = pass.share(json!({"n": 1}));
        let float = pass.share(json!({"n": 1.0}));
        assert!(!Arc::ptr_eq(&int, &float));
        assert_eq!(float.to_string(), r#"{"n":1.0}"#);
    }

    #[test]
    fn removed_keys_become_null() {
        assert_eq!(
            diff(&json!({"a": 1, "b": 2}), &json!({"b": 2})),
            Some(json!({"a": null}))
        );
    }
}
