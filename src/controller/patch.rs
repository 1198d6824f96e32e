//! The smallest write that turns a cached status into a new one: an RFC 7386
//! JSON merge patch between the two. A re-evaluation that changes nothing
//! but its timestamps sends those timestamps only, never the whole status
//! with its history.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are
/// equal. A `null` in `new` and a missing key mean the same (absent), so a
/// serialised `None` never produces a write. Arrays are replaced whole, as
/// a merge patch does.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, value) in new {
                let before = old.get(key).unwrap_or(&Value::Null);
                if value.is_null() {
                    if !before.is_null() {
                        patch.insert(key.clone(), Value::Null);
                    }
                    continue;
                }
                if before.is_object() && value.is_object() {
                    if let Some(inner) = merge_diff(before, value) {
                        patch.insert(key.clone(), inner);
                    }
                } else if before != value {
                    patch.insert(key.clone(), without_nulls(value));
                }
            }
            for (key, before) in old {
                if !new.contains_key(key) && !before.is_null() {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(without_nulls(new)),
    }
}

/// Whether writing `new` over `old` would change any key `new` sets (keys
/// only `old` has are left alone, as a server-side apply of `new` by its
/// only writer would not leave them, but a reader cannot tell).
pub fn changes(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => new.iter().any(|(key, value)| {
            let before = old.get(key).unwrap_or(&Value::Null);
            changes(before, value)
        }),
        _ => without_nulls(old) != without_nulls(new),
    }
}

/// `value` with the `null` members of its objects removed (a merge patch
/// would read them as deletions).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_need_no_patch() {
        let doc = json!({"a": 1, "b": {"c": [1, 2]}, "d": null});
        assert_eq!(merge_diff(&doc, &doc), None);
        // A null and a missing key are the same absence.
        assert_eq!(
            merge_diff(&json!({"a": 1}), &json!({"a": 1, "d": null})),
            None
        );
    }

    #[test]
    fn only_changed_timestamps_are_sent() {
        let old = json!({
            "decision": "Allow",
            "evaluatedAt": "2026-01-01T00:00:00Z",
            "nextEvaluationAt": "2026-01-01T00:05:00Z",
            "history": [{"type": "DecisionChanged", "message": "a long entry"}],
            "conditions": [{"type": "Ready", "status": "True"}],
        });
        let mut new = old.clone();
        new["evaluatedAt"] = json!("2026-01-01T00:01:00Z");
        new["nextEvaluationAt"] = json!("2026-01-01T00:06:00Z");
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({
                "evaluatedAt": "2026-01-01T00:01:00Z",
                "nextEvaluationAt": "2026-01-01T00:06:00Z",
            }))
        );
    }

    #[test]
    fn removed_keys_become_null_and_nested_objects_are_diffed() {
        let old = json!({"watchUntil": "t", "audit": {"mode": "shadow", "approvals": ["a"]}});
        let new = json!({"audit": {"mode": "enforce", "approvals": ["a"]}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"watchUntil": null, "audit": {"mode": "enforce"}}))
        );
    }

    #[test]
    fn a_changed_array_is_sent_whole_without_nulls() {
        let old = json!({"history": [{"a": 1}]});
        let new = json!({"history": [{"a": 1}, {"a": 2, "actor": null}]});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"history": [{"a": 1}, {"a": 2}]}))
        );
    }

    #[test]
    fn a_new_object_has_everything_to_write() {
        let new = json!({"decision": "Hold", "confidence": 60});
        assert_eq!(merge_diff(&Value::Null, &new), Some(new));
    }

    #[test]
    fn changes_looks_at_the_keys_written_only() {
        let old = json!({"health": "Healthy", "message": "read 2 facts", "extra": 1});
        assert!(!changes(
            &old,
            &json!({"health": "Healthy", "message": "read 2 facts"})
        ));
        assert!(!changes(
            &old,
            &json!({"health": "Healthy", "lastObservedAt": null})
        ));
        assert!(changes(&old, &json!({"health": "Stale"})));
    }
}
