//! What a pushed mutation does, decided without I/O (DESIGN.md §3 "Push", "Merge").
//!
//! A backend reads the facts (the stored receipt, the record's current state, whether the caller
//! holds the scope), calls [`plan`], and writes the plan in the same transaction. Keeping the
//! decision pure keeps the SQLite and PostgreSQL backends from disagreeing, and lets it be tested
//! exhaustively.
//!
//! Rules:
//! - The caller must hold the mutation's scope; a supervisor may also create a new case
//!   (a `person` record), which grants them its scope. Admins and officers write no case content.
//! - `create` takes the patch as the whole record; `update` merges the patch field by field
//!   ([`donghanh_core::domain::merge::merge_patch`]); `delete` leaves a tombstone.
//! - The result is decoded into its entity and validated with the domain rules; its id and scope
//!   must be the mutation's. Timestamps are checked against the server clock with a day of
//!   slack: phone clocks are wrong in the field, and a visit must not be refused for it.
//! - An assignment that is active today grants its helper the person's scope; one that ended,
//!   moved to another helper or was deleted revokes it.
//! - Org scopes: a supervisor holds every team and community point of their commune and every
//!   case whose `commune` is theirs; a counsellor holds their community point ([`org_scopes`]).
//!   A case created with, or moved to, a commune grants its scope to that commune's
//!   supervisors and revokes it from the old commune's ([`Plan::case_commune`]). A supervisor
//!   creates cases of their own commune only.
//! - A supervision note is written by a supervisor in their own name.
//! - A refusal is a rejected receipt with a reason that names no value; it never blocks the
//!   mutations behind it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use donghanh_core::domain::merge::{FieldConflict, MergeError, MergeKind, merge_patch};
use donghanh_core::domain::{
    AnyRecord, Id, OrgTree, OrgUnitKind, RecordKind, Role, Scope, User, ValidationContext,
};
use donghanh_protocol::{ErrorBody, Mutation, MutationOp, Outcome, codes};
use serde_json::{Map, Value};

/// Fields that never change after creation: the id and what places a record in its scope.
pub const IMMUTABLE: [&str; 5] = ["id", "person", "point", "team", "session"];

/// How far ahead of the server clock a device's timestamp may be.
pub const DEVICE_CLOCK_SLACK: Duration = Duration::hours(24);

/// A record as the server holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Kind code.
    pub kind: String,
    /// Scope.
    pub scope: String,
    /// The record's fields (empty for a tombstone).
    pub record: Map<String, Value>,
    /// Server version.
    pub version: u64,
    /// Version at which each field last changed.
    pub field_versions: BTreeMap<String, u64>,
    /// The device that last changed each field.
    pub field_devices: BTreeMap<String, Id>,
    /// A tombstone.
    pub deleted: bool,
}

/// What the caller may do.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The caller.
    pub user: Id,
    /// Their role.
    pub role: Role,
    /// Whether they hold the mutation's scope.
    pub holds_scope: bool,
    /// The device the mutation comes from.
    pub device: Id,
    /// The commune the caller belongs to (their org unit or its nearest commune ancestor).
    pub commune: Option<Id>,
}

/// A case whose commune changed: `(before, after)`; `None` for no commune (or no record).
pub type CommuneMove = (Option<Id>, Option<Id>);

/// A change of who holds a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// The user now holds the scope.
    Grant(Scope, Id),
    /// The user no longer holds the scope.
    Revoke(Scope, Id),
}

/// What to write for an accepted mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The record after the mutation (for a delete: the last state, not served again).
    pub record: Map<String, Value>,
    /// Its typed form (none for a delete).
    pub typed: Option<AnyRecord>,
    /// Its new version.
    pub version: u64,
    /// Its field versions.
    pub field_versions: BTreeMap<String, u64>,
    /// The device that last changed each field.
    pub field_devices: BTreeMap<String, Id>,
    /// Whether it is now a tombstone.
    pub deleted: bool,
    /// Applied, merged or conflict.
    pub outcome: Outcome,
    /// Fields changed on both sides.
    pub conflicts: Vec<FieldConflict>,
    /// For each conflicting field, the device whose value lost: the one that last changed
    /// the field before this mutation (absent when the record does not say).
    pub lost_by: BTreeMap<String, Id>,
    /// Scope membership changes it causes.
    pub membership: Vec<Membership>,
    /// For a case (`person` record) created, deleted or moved between communes: the commune
    /// before and after. The backend grants the scope to the new commune's supervisors and
    /// revokes it from the old one's, and keeps its clear commune column up to date.
    pub case_commune: Option<CommuneMove>,
}

/// The scopes a user holds by their place in the org tree rather than by an assignment: a
/// supervisor the teams and community points of their commune, a counsellor their point.
#[must_use]
pub fn org_scopes(user: &User, tree: &OrgTree) -> Vec<Scope> {
    match user.role {
        Role::Supervisor => {
            let Some(commune) = tree.commune_of(user.org_unit) else {
                return Vec::new();
            };
            tree.subtree(commune)
                .into_iter()
                .filter_map(|id| match tree.get(id).map(|u| u.kind) {
                    Some(OrgUnitKind::Team) => Some(Scope::Team(id)),
                    Some(OrgUnitKind::CommunityPoint) => Some(Scope::Point(id)),
                    _ => None,
                })
                .collect()
        }
        Role::Counsellor => user.point.map(Scope::Point).into_iter().collect(),
        Role::Volunteer | Role::Officer | Role::Admin => Vec::new(),
    }
}

/// The commune whose cases `user` supervises, if they are a supervisor placed in one.
#[must_use]
pub fn supervised_commune(user: &User, tree: &OrgTree) -> Option<Id> {
    (user.role == Role::Supervisor)
        .then(|| tree.commune_of(user.org_unit))
        .flatten()
}

fn reject(code: &str, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

fn object(patch: &Value) -> Result<&Map<String, Value>, ErrorBody> {
    patch
        .as_object()
        .ok_or_else(|| reject(codes::INVALID_INPUT, "the patch must be a JSON object"))
}

/// Decides what `m` does. `Err` is the reason of a rejected receipt.
pub fn plan(
    m: &Mutation<Value>,
    current: Option<&Current>,
    access: Access,
    now: DateTime<Utc>,
) -> Result<Plan, ErrorBody> {
    let kind = RecordKind::from_code(&m.kind)
        .ok_or_else(|| reject(codes::INVALID_INPUT, "unknown record kind"))?;
    let scope: Scope = m
        .scope
        .parse()
        .map_err(|_| reject(codes::INVALID_INPUT, "not a valid scope"))?;
    if matches!(access.role, Role::Admin | Role::Officer) {
        return Err(reject(codes::FORBIDDEN, "this role writes no case records"));
    }
    let creates_case =
        m.op == MutationOp::Create && kind == RecordKind::Person && access.role == Role::Supervisor;
    if !access.holds_scope && !creates_case {
        return Err(reject(
            codes::FORBIDDEN,
            "the scope is not held by this user",
        ));
    }
    if let Some(cur) = current
        && (cur.kind != m.kind || cur.scope != m.scope)
    {
        return Err(reject(
            codes::INVALID_INPUT,
            "the record exists with another kind or scope",
        ));
    }
    let ctx = ValidationContext {
        now: now + DEVICE_CLOCK_SLACK,
    };
    let mut changed_fields: Vec<String> = Vec::new();
    let (record, version, mut field_versions, outcome, conflicts, deleted) = match m.op {
        MutationOp::Create => {
            if current.is_some() {
                return Err(reject(
                    codes::INVALID_INPUT,
                    "a record with this id already exists",
                ));
            }
            if m.base_version != 0 {
                return Err(reject(codes::INVALID_INPUT, "a create has base version 0"));
            }
            let record = object(&m.patch)?.clone();
            let fv = record.keys().map(|k| (k.clone(), 1)).collect();
            changed_fields = record.keys().cloned().collect();
            (record, 1, fv, Outcome::Applied, Vec::new(), false)
        }
        MutationOp::Update => {
            let cur = current
                .filter(|c| !c.deleted)
                .ok_or_else(|| reject(codes::NOT_FOUND, "no such record"))?;
            // A device's own earlier edits are not a conflict: its mutations all name the base
            // it last heard of, and apply in its own order.
            let others: BTreeMap<String, u64> = cur
                .field_versions
                .iter()
                .filter(|(f, _)| cur.field_devices.get(*f) != Some(&access.device))
                .map(|(f, v)| (f.clone(), *v))
                .collect();
            let merged = merge_patch(
                &cur.record,
                cur.version,
                &others,
                m.base_version,
                object(&m.patch)?,
                &IMMUTABLE,
            )
            .map_err(|e| match e {
                MergeError::Immutable { field } => {
                    reject(codes::INVALID_INPUT, format!("{field} cannot be changed"))
                }
                MergeError::BaseInFuture => reject(
                    codes::INVALID_INPUT,
                    "the base version is newer than the record",
                ),
            })?;
            let version = cur.version + 1;
            let mut fv = cur.field_versions.clone();
            for field in &merged.changed {
                fv.insert(field.clone(), version);
            }
            changed_fields.clone_from(&merged.changed);
            let outcome = match merged.kind {
                MergeKind::Applied => Outcome::Applied,
                MergeKind::Merged => Outcome::Merged,
                MergeKind::Conflict => Outcome::Conflict,
            };
            (merged.record, version, fv, outcome, merged.conflicts, false)
        }
        MutationOp::Delete => {
            let cur = current
                .filter(|c| !c.deleted)
                .ok_or_else(|| reject(codes::NOT_FOUND, "no such record"))?;
            (
                cur.record.clone(),
                cur.version + 1,
                cur.field_versions.clone(),
                Outcome::Applied,
                Vec::new(),
                true,
            )
        }
    };
    let before = current
        .filter(|c| !c.deleted)
        .and_then(|c| AnyRecord::from_json(kind, Value::Object(c.record.clone())).ok());
    let typed = AnyRecord::from_json(kind, Value::Object(record.clone()))
        .map_err(|e| reject(codes::INVALID_INPUT, e.to_string()))?;
    if !deleted {
        typed
            .validate(&ctx)
            .map_err(|e| reject(codes::INVALID_INPUT, e.to_string()))?;
    }
    if typed.id().uuid() != m.record_id || typed.scope() != scope {
        return Err(reject(
            codes::INVALID_INPUT,
            "the record's id or scope differs from the mutation's",
        ));
    }
    if !deleted
        && let AnyRecord::SupervisionNote(note) = &typed
        && (access.role != Role::Supervisor || note.supervisor != access.user)
    {
        return Err(reject(
            codes::FORBIDDEN,
            "a supervision note is written by a supervisor in their own name",
        ));
    }
    let commune_of = |r: Option<&AnyRecord>| match r {
        Some(AnyRecord::Person(p)) => p.commune,
        _ => None,
    };
    let (commune_before, commune_after) = (
        commune_of(before.as_ref()),
        if deleted {
            None
        } else {
            commune_of(Some(&typed))
        },
    );
    if creates_case
        && current.is_none()
        && commune_after.is_some()
        && commune_after != access.commune
    {
        return Err(reject(
            codes::FORBIDDEN,
            "a supervisor creates cases of their own commune only",
        ));
    }
    let case_commune = (kind == RecordKind::Person && commune_before != commune_after)
        .then_some((commune_before, commune_after));
    let mut membership = Vec::new();
    if creates_case && current.is_none() {
        membership.push(Membership::Grant(scope, access.user));
    }
    let today = donghanh_core::domain::vn_date(now);
    let helper_of = |r: &Option<AnyRecord>| match r {
        Some(AnyRecord::Assignment(a)) if a.is_active_on(today) => a.helper,
        _ => None,
    };
    let (old_helper, new_helper) = (
        helper_of(&before),
        if deleted {
            None
        } else {
            helper_of(&Some(typed.clone()))
        },
    );
    if old_helper != new_helper {
        if let Some(h) = old_helper {
            membership.push(Membership::Revoke(scope, h));
        }
        if let Some(h) = new_helper {
            membership.push(Membership::Grant(scope, h));
        }
    }
    let mut field_devices = current.map(|c| c.field_devices.clone()).unwrap_or_default();
    // The value that loses a conflict is the one stored, written by the field's last device.
    let lost_by = conflicts
        .iter()
        .filter_map(|c| Some((c.field.clone(), *field_devices.get(&c.field)?)))
        .collect();
    for field in changed_fields {
        field_devices.insert(field, access.device);
    }
    if deleted {
        field_versions.clear();
        field_devices.clear();
    }
    Ok(Plan {
        record,
        typed: (!deleted).then_some(typed),
        version,
        field_versions,
        field_devices,
        deleted,
        outcome,
        conflicts,
        lost_by,
        membership,
        case_commune,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use donghanh_core::domain::{Assignment, Person, Sex, Visit};
    use serde_json::json;

    fn person() -> Person {
        Person::new(
            "Nguyễn Văn An",
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            Sex::Male,
        )
    }

    fn mutation(
        op: MutationOp,
        kind: &str,
        scope: Scope,
        id: Id,
        base: u64,
        patch: Value,
    ) -> Mutation<Value> {
        Mutation {
            client_seq: 1,
            record_id: id.uuid(),
            kind: kind.into(),
            scope: scope.to_string(),
            op,
            base_version: base,
            patch,
        }
    }

    fn access(role: Role, holds: bool) -> Access {
        Access {
            user: Id::new(),
            role,
            holds_scope: holds,
            device: Id::new(),
            commune: None,
        }
    }

    fn current_of(kind: &str, scope: Scope, record: Value, version: u64) -> Current {
        let record = record.as_object().unwrap().clone();
        let field_versions = record.keys().map(|k| (k.clone(), version)).collect();
        Current {
            kind: kind.into(),
            scope: scope.to_string(),
            record,
            version,
            field_versions,
            field_devices: BTreeMap::new(),
            deleted: false,
        }
    }

    #[test]
    fn supervisor_creates_a_case_and_is_granted_its_scope() {
        let p = person();
        let m = mutation(
            MutationOp::Create,
            "person",
            Scope::Person(p.id),
            p.id,
            0,
            serde_json::to_value(&p).unwrap(),
        );
        let who = access(Role::Supervisor, false);
        let plan = plan(&m, None, who, Utc::now()).unwrap();
        assert_eq!(plan.version, 1);
        assert_eq!(
            plan.membership,
            vec![Membership::Grant(Scope::Person(p.id), who.user)]
        );
        // A create names base version 0.
        let mut odd = m.clone();
        odd.base_version = 3;
        assert_eq!(
            super::plan(&odd, None, who, Utc::now()).unwrap_err().code,
            codes::INVALID_INPUT
        );
        // A volunteer may not; nor anyone on a scope they do not hold.
        let e = super::plan(&m, None, access(Role::Volunteer, false), Utc::now()).unwrap_err();
        assert_eq!(e.code, codes::FORBIDDEN);
        let e = super::plan(&m, None, access(Role::Admin, true), Utc::now()).unwrap_err();
        assert_eq!(e.code, codes::FORBIDDEN);
    }

    #[test]
    fn invalid_records_are_rejected_without_quoting_them() {
        let mut p = person();
        p.birth_date = NaiveDate::from_ymd_opt(2999, 1, 1).unwrap();
        let m = mutation(
            MutationOp::Create,
            "person",
            Scope::Person(p.id),
            p.id,
            0,
            serde_json::to_value(&p).unwrap(),
        );
        let e = plan(&m, None, access(Role::Supervisor, false), Utc::now()).unwrap_err();
        assert_eq!(e.code, codes::INVALID_INPUT);
        assert!(
            !e.message.contains("An") && !e.message.contains("2999"),
            "{e:?}"
        );
        // The scope must be the record's own.
        let other = Id::new();
        let m = mutation(
            MutationOp::Create,
            "person",
            Scope::Person(other),
            person().id,
            0,
            serde_json::to_value(person()).unwrap(),
        );
        assert_eq!(
            plan(&m, None, access(Role::Supervisor, false), Utc::now())
                .unwrap_err()
                .code,
            codes::INVALID_INPUT
        );
        let m = mutation(
            MutationOp::Create,
            "nonsense",
            Scope::Person(other),
            other,
            0,
            json!({}),
        );
        assert_eq!(
            plan(&m, None, access(Role::Supervisor, true), Utc::now())
                .unwrap_err()
                .code,
            codes::INVALID_INPUT
        );
    }

    #[test]
    fn a_visit_from_a_phone_with_a_fast_clock_is_accepted() {
        let p = person();
        let v = Visit::new(p.id, Utc::now() + Duration::hours(3), "ghi chú");
        let m = mutation(
            MutationOp::Create,
            "visit",
            Scope::Person(p.id),
            v.id,
            0,
            serde_json::to_value(&v).unwrap(),
        );
        assert!(plan(&m, None, access(Role::Volunteer, true), Utc::now()).is_ok());
    }

    #[test]
    fn concurrent_field_edits_conflict_and_the_later_commit_wins() {
        let p = person();
        let scope = Scope::Person(p.id);
        let mut cur = current_of("person", scope, serde_json::to_value(&p).unwrap(), 2);
        cur.field_versions.insert("phone".into(), 2);
        cur.record.insert("phone".into(), json!("0900000001"));
        let tablet = Id::new();
        cur.field_devices.insert("phone".into(), tablet);
        let m = mutation(
            MutationOp::Update,
            "person",
            scope,
            p.id,
            1,
            json!({"phone": "0900000002"}),
        );
        let plan = plan(&m, Some(&cur), access(Role::Volunteer, true), Utc::now()).unwrap();
        assert_eq!(plan.outcome, Outcome::Conflict);
        assert_eq!(plan.record["phone"], json!("0900000002"));
        assert_eq!(plan.conflicts[0].lost, json!("0900000001"));
        // The value lost is the one the tablet wrote, not the pushing device's.
        assert_eq!(plan.lost_by["phone"], tablet);
        assert_ne!(plan.field_devices["phone"], tablet);
        assert_eq!(plan.version, 3);
        assert_eq!(plan.field_versions["phone"], 3);
        // Changing what places the record in its scope is refused.
        let m = mutation(
            MutationOp::Update,
            "person",
            scope,
            p.id,
            2,
            json!({"id": Id::new()}),
        );
        assert_eq!(
            super::plan(&m, Some(&cur), access(Role::Volunteer, true), Utc::now())
                .unwrap_err()
                .code,
            codes::INVALID_INPUT
        );
    }

    #[test]
    fn assignments_grant_and_revoke_the_person_scope() {
        let p = person();
        let scope = Scope::Person(p.id);
        let (hoa, lan) = (Id::new(), Id::new());
        let today = donghanh_core::domain::vn_date(Utc::now());
        let a = Assignment::new(p.id, Id::new(), hoa, today);
        let m = mutation(
            MutationOp::Create,
            "assignment",
            scope,
            a.id,
            0,
            serde_json::to_value(&a).unwrap(),
        );
        let sup = access(Role::Supervisor, true);
        assert_eq!(
            plan(&m, None, sup, Utc::now()).unwrap().membership,
            vec![Membership::Grant(scope, hoa)]
        );
        // Reassigned to another helper: the old one loses the scope, the new one gains it.
        let cur = current_of("assignment", scope, serde_json::to_value(&a).unwrap(), 1);
        let m = mutation(
            MutationOp::Update,
            "assignment",
            scope,
            a.id,
            1,
            json!({"helper": lan}),
        );
        assert_eq!(
            plan(&m, Some(&cur), sup, Utc::now()).unwrap().membership,
            vec![
                Membership::Revoke(scope, hoa),
                Membership::Grant(scope, lan)
            ]
        );
        // Deleted: revoked.
        let m = mutation(MutationOp::Delete, "assignment", scope, a.id, 1, json!({}));
        let plan = plan(&m, Some(&cur), sup, Utc::now()).unwrap();
        assert!(plan.deleted);
        assert_eq!(plan.membership, vec![Membership::Revoke(scope, hoa)]);
    }

    #[test]
    fn a_device_never_conflicts_with_its_own_earlier_edit() {
        let p = person();
        let scope = Scope::Person(p.id);
        let phone = access(Role::Volunteer, true);
        let cur = current_of("person", scope, serde_json::to_value(&p).unwrap(), 1);
        // Two offline edits of the same field, both made on version 1.
        let first = mutation(
            MutationOp::Update,
            "person",
            scope,
            p.id,
            1,
            json!({"phone": "0900000001"}),
        );
        let one = plan(&first, Some(&cur), phone, Utc::now()).unwrap();
        let after = Current {
            record: one.record.clone(),
            version: one.version,
            field_versions: one.field_versions.clone(),
            field_devices: one.field_devices.clone(),
            ..cur.clone()
        };
        let second = mutation(
            MutationOp::Update,
            "person",
            scope,
            p.id,
            1,
            json!({"phone": "0900000002"}),
        );
        let two = plan(&second, Some(&after), phone, Utc::now()).unwrap();
        assert_eq!(two.outcome, Outcome::Merged);
        assert!(two.conflicts.is_empty());
        // Another device making the same edit on version 1 does conflict.
        let other = plan(
            &second,
            Some(&after),
            access(Role::Volunteer, true),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(other.outcome, Outcome::Conflict);
    }
}
