//! Field-level three-way merge of a device's patch into the server's record (DESIGN.md §3).
//!
//! The device sends the fields it changed (`patch`) and the version it changed them on
//! (`base_version`). Instead of keeping every past version, the server keeps, for each field,
//! the version at which it last changed (`field_versions`). Then, for each patched field:
//!
//! - the same value as now: nothing to do;
//! - unchanged on the server since the device's base (`field_version ≤ base_version`): apply;
//! - changed on the server since the base, to another value: both sides changed it. Server commit
//!   order decides: this mutation commits later, so its value is kept and the value it replaces
//!   is returned as a [`FieldConflict`] for the supervisor to see and, if they choose, restore.
//!
//! Fields the patch does not name are never touched, so two people editing different fields of
//! one record never conflict. Device clocks play no part. The function is pure: the caller
//! validates the merged record with the entity's own rules before committing it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How a mutation landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// The device's base was the current version: applied as sent.
    Applied,
    /// Other fields had changed since the base; the patch was merged around them.
    Merged,
    /// At least one field changed on both sides; the patch's values were kept.
    Conflict,
}

/// A field changed on both sides since the device's base.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldConflict {
    /// The field.
    pub field: String,
    /// The value kept (the mutation that committed later).
    pub kept: Value,
    /// The value it replaced, kept for the supervisor.
    pub lost: Value,
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    /// The record after the merge.
    pub record: Map<String, Value>,
    /// The fields whose value changed (their field version becomes the new version).
    pub changed: Vec<String>,
    /// Fields changed on both sides.
    pub conflicts: Vec<FieldConflict>,
    /// How the mutation landed.
    pub kind: MergeKind,
}

/// Why a patch cannot be merged at all. Messages name fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The patch changes a field that never changes after creation (the id, the scope's person).
    #[error("{field} cannot be changed after creation")]
    Immutable {
        /// The field.
        field: String,
    },
    /// The device claims a base newer than the server's record.
    #[error("the base version is newer than the record")]
    BaseInFuture,
}

/// Merges `patch` (made on `base_version`) into `current` (now at `current_version`, each field
/// last changed at `field_versions[field]`, absent meaning 0). `immutable` fields may be sent
/// only with their current value.
pub fn merge_patch(
    current: &Map<String, Value>,
    current_version: u64,
    field_versions: &BTreeMap<String, u64>,
    base_version: u64,
    patch: &Map<String, Value>,
    immutable: &[&str],
) -> Result<MergeOutcome, MergeError> {
    if base_version > current_version {
        return Err(MergeError::BaseInFuture);
    }
    let mut record = current.clone();
    let mut changed = Vec::new();
    let mut conflicts = Vec::new();
    for (field, value) in patch {
        let now = current.get(field).unwrap_or(&Value::Null);
        if now == value {
            continue;
        }
        if immutable.contains(&field.as_str()) {
            return Err(MergeError::Immutable {
                field: field.clone(),
            });
        }
        let last_changed = field_versions.get(field).copied().unwrap_or(0);
        if last_changed > base_version {
            conflicts.push(FieldConflict {
                field: field.clone(),
                kept: value.clone(),
                lost: now.clone(),
            });
        }
        record.insert(field.clone(), value.clone());
        changed.push(field.clone());
    }
    let kind = if !conflicts.is_empty() {
        MergeKind::Conflict
    } else if base_version < current_version {
        MergeKind::Merged
    } else {
        MergeKind::Applied
    };
    Ok(MergeOutcome {
        record,
        changed,
        conflicts,
        kind,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn versions(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn patch_on_the_current_version_is_applied() {
        let cur = map(json!({"id": "a", "phone": "1", "address": "x"}));
        let out = merge_patch(
            &cur,
            3,
            &versions(&[("phone", 2)]),
            3,
            &map(json!({"phone": "2"})),
            &["id"],
        )
        .unwrap();
        assert_eq!(out.kind, MergeKind::Applied);
        assert_eq!(
            out.record,
            map(json!({"id": "a", "phone": "2", "address": "x"}))
        );
        assert_eq!(out.changed, vec!["phone"]);
    }

    #[test]
    fn edits_of_different_fields_merge_without_conflict() {
        // The server changed the address at v4; the device, on v3, changed the phone.
        let cur = map(json!({"phone": "1", "address": "y"}));
        let fv = versions(&[("phone", 1), ("address", 4)]);
        let out = merge_patch(&cur, 4, &fv, 3, &map(json!({"phone": "2"})), &[]).unwrap();
        assert_eq!(out.kind, MergeKind::Merged);
        assert_eq!(out.record, map(json!({"phone": "2", "address": "y"})));
        assert!(out.conflicts.is_empty());
    }

    #[test]
    fn same_field_changed_on_both_sides_keeps_the_later_commit_and_reports_the_loser() {
        let cur = map(json!({"phone": "server"}));
        let fv = versions(&[("phone", 5)]);
        let out = merge_patch(&cur, 5, &fv, 3, &map(json!({"phone": "device"})), &[]).unwrap();
        assert_eq!(out.kind, MergeKind::Conflict);
        assert_eq!(out.record, map(json!({"phone": "device"})));
        assert_eq!(
            out.conflicts,
            vec![FieldConflict {
                field: "phone".into(),
                kept: json!("device"),
                lost: json!("server")
            }]
        );
    }

    #[test]
    fn both_sides_setting_the_same_value_is_no_conflict() {
        let cur = map(json!({"status": "done"}));
        let out = merge_patch(
            &cur,
            5,
            &versions(&[("status", 5)]),
            2,
            &map(json!({"status": "done"})),
            &[],
        )
        .unwrap();
        assert!(out.conflicts.is_empty() && out.changed.is_empty());
    }

    #[test]
    fn immutable_fields_and_future_bases_are_refused() {
        let cur = map(json!({"id": "a", "person": "p"}));
        let e = merge_patch(
            &cur,
            1,
            &BTreeMap::new(),
            1,
            &map(json!({"person": "q"})),
            &["id", "person"],
        );
        assert_eq!(
            e,
            Err(MergeError::Immutable {
                field: "person".into()
            })
        );
        // Sending an immutable field with its current value is fine.
        assert!(
            merge_patch(
                &cur,
                1,
                &BTreeMap::new(),
                1,
                &map(json!({"id": "a"})),
                &["id"]
            )
            .is_ok()
        );
        let e = merge_patch(&cur, 1, &BTreeMap::new(), 2, &Map::new(), &[]);
        assert_eq!(e, Err(MergeError::BaseInFuture));
        assert!(
            !MergeError::Immutable {
                field: "person".into()
            }
            .to_string()
            .contains('q')
        );
    }

    fn small_map() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-e]", 0u8..4, 0..5)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k, json!(v))).collect())
    }

    proptest! {
        #[test]
        fn merge_laws_hold(
            current in small_map(),
            patch in small_map(),
            fv in prop::collection::btree_map("[a-e]", 0u64..10, 0..5),
            current_version in 0u64..10,
            base_back in 0u64..10,
        ) {
            let base = current_version.saturating_sub(base_back);
            let out = merge_patch(&current, current_version, &fv, base, &patch, &[]).unwrap();
            // Every patched field ends with the patch's value (the later commit wins) ...
            for (k, v) in &patch {
                prop_assert_eq!(out.record.get(k), Some(v));
            }
            // ... and no other field moves.
            for (k, v) in &current {
                if !patch.contains_key(k) {
                    prop_assert_eq!(out.record.get(k), Some(v));
                }
            }
            // A conflict is reported exactly for fields changed on both sides to different values.
            for (k, v) in &patch {
                let differs = current.get(k).unwrap_or(&Value::Null) != v;
                let server_changed = fv.get(k).copied().unwrap_or(0) > base;
                let reported = out.conflicts.iter().any(|c| &c.field == k);
                prop_assert_eq!(reported, differs && server_changed);
            }
            prop_assert_eq!(out.kind == MergeKind::Conflict, !out.conflicts.is_empty());
            // Replaying the same patch on the result changes nothing more.
            let again = merge_patch(&out.record, current_version + 1, &fv, current_version + 1, &patch, &[])
                .unwrap();
            prop_assert!(again.changed.is_empty());
            prop_assert_eq!(again.record, out.record);
        }
    }
}
