//! Payloads: a JSON object per point. Keys are addressed with dotted paths (`a.b.c`); arrays met on the way are
//! flattened, so `tags` matches any element of a `tags` array and `items.price` any `price` of an `items` array
//! of objects (`items[].price` is accepted as the same path).

use serde_json::{Map, Value};

/// A point's payload.
pub type Payload = Map<String, Value>;

/// Largest payload accepted by default, in bytes of compact JSON.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 64 << 10;

/// Every value found at `path` in `payload` (arrays flattened, including a final array). `null` values are
/// returned as they are; a missing key yields nothing.
pub fn values_at<'a>(payload: &'a Payload, path: &str) -> Vec<&'a Value> {
    let found = raw_at(payload, path);
    let mut out = Vec::with_capacity(found.len());
    for v in found {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            other => out.push(other),
        }
    }
    out
}

fn collect_field<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => out.extend(m.get(key)),
        Value::Array(items) => {
            for item in items {
                collect_field(item, key, out);
            }
        }
        _ => {}
    }
}

/// Whether the key at `path` is present with a `null` value (not missing, not an empty array).
pub fn is_null_at(payload: &Payload, path: &str) -> bool {
    raw_at(payload, path).iter().any(|v| v.is_null())
}

/// Whether `path` holds nothing: missing, `null`, or an empty array.
pub fn is_empty_at(payload: &Payload, path: &str) -> bool {
    values_at(payload, path).iter().all(|v| v.is_null())
}

/// Values at `path` without flattening a final array (to tell `null` from `[]`).
fn raw_at<'a>(payload: &'a Payload, path: &str) -> Vec<&'a Value> {
    let mut parts = path.split('.').map(|p| p.strip_suffix("[]").unwrap_or(p));
    let Some(first) = parts.next() else { return Vec::new() };
    let mut current: Vec<&Value> = payload.get(first).into_iter().collect();
    for part in parts {
        let mut next = Vec::new();
        for v in current {
            collect_field(v, part, &mut next);
        }
        current = next;
    }
    current
}

/// Sets `value` at dotted `path`, creating intermediate objects (replacing non-objects on the way).
pub fn set_at(payload: &mut Payload, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut map = payload;
    for part in parts {
        let entry = map.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(m) = entry else { return };
        map = m;
    }
    map.insert(last.to_owned(), value);
}

/// Removes the key at dotted `path` (through objects only). Returns whether something was removed.
pub fn remove_at(payload: &mut Payload, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return false };
    let mut map = payload;
    for part in parts {
        match map.get_mut(part) {
            Some(Value::Object(m)) => map = m,
            _ => return false,
        }
    }
    map.remove(last).is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Payload {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nested_paths_flatten_arrays() {
        let pl =
            p(json!({"a": {"b": 1}, "tags": ["x", "y"], "items": [{"price": 3}, {"price": 5}], "n": null, "e": []}));
        assert_eq!(values_at(&pl, "a.b"), vec![&json!(1)]);
        assert_eq!(values_at(&pl, "tags"), vec![&json!("x"), &json!("y")]);
        assert_eq!(values_at(&pl, "items.price"), vec![&json!(3), &json!(5)]);
        assert_eq!(values_at(&pl, "items[].price"), vec![&json!(3), &json!(5)]);
        assert!(values_at(&pl, "missing.x").is_empty());
        assert!(is_null_at(&pl, "n") && !is_null_at(&pl, "e") && !is_null_at(&pl, "missing"));
        assert!(is_empty_at(&pl, "e") && is_empty_at(&pl, "n") && is_empty_at(&pl, "missing"));
        assert!(!is_empty_at(&pl, "tags"));
    }

    #[test]
    fn set_and_remove_nested_keys() {
        let mut pl = p(json!({"a": 1}));
        set_at(&mut pl, "b.c", json!(2));
        set_at(&mut pl, "a.x", json!(3));
        assert_eq!(Value::Object(pl.clone()), json!({"a": {"x": 3}, "b": {"c": 2}}));
        assert!(remove_at(&mut pl, "b.c"));
        assert!(!remove_at(&mut pl, "b.c"));
        assert_eq!(Value::Object(pl), json!({"a": {"x": 3}, "b": {}}));
    }
}
