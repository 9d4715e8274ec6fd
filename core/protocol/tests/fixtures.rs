//! Frozen wire format: each type serialises to exactly its fixture, and the fixture parses back.
//! Changing a fixture is a protocol change (bump `PROTOCOL_VERSION`).

#![allow(clippy::unwrap_used)]

use donghanh_protocol::{
    Change, ChangeOp, Conflict, ConflictList, Directory, DirectoryEntry, EnrollRequest,
    EnrollResponse, ErrorBody, Mutation, MutationOp, Outcome, PROTOCOL_HEADER, PROTOCOL_VERSION,
    PullPage, PullQuery, PushRequest, PushResponse, Receipt, RefreshRequest, ResolveConflict, Role,
    ScopeAck, ScopeAcks, ScopeEvent, ScopeEventKind, SnapshotPage, SnapshotQuery, Tokens, codes,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

const DEVICE: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);
const USER: Uuid = Uuid::from_u128(0x2222_2222_2222_4222_8222_2222_2222_2222);
const RECORD: Uuid = Uuid::from_u128(0x3333_3333_3333_4333_8333_3333_3333_3333);
const PERSON: &str = "person:44444444-4444-4444-8444-444444444444";

/// The fixture file, parsed; and the value serialised and parsed back equal to it.
fn frozen<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(name: &str, value: &T) {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(value).unwrap(),
        fixture,
        "{name}: wire format changed"
    );
    assert_eq!(
        &serde_json::from_value::<T>(fixture).unwrap(),
        value,
        "{name}: does not parse back"
    );
}

fn tokens() -> Tokens {
    Tokens {
        access_token: "acc.TOKEN".into(),
        access_expires_in: 900,
        refresh_token: "ref.TOKEN".into(),
    }
}

#[test]
fn error_body_wire_format_is_frozen() {
    frozen(
        "error_body",
        &ErrorBody::new(codes::INVALID_INPUT, "visit: at is in the future"),
    );
}

#[test]
fn enrolment_and_tokens_are_frozen() {
    frozen(
        "enroll_request",
        &EnrollRequest {
            username: "tnv.hoa".into(),
            password: "correct horse".into(),
            device_label: "Android 13".into(),
        },
    );
    frozen(
        "enroll_response",
        &EnrollResponse {
            device_id: DEVICE,
            user_id: USER,
            role: Role::Volunteer,
            tokens: tokens(),
            key_lease_seconds: 1_209_600,
        },
    );
    frozen(
        "refresh_request",
        &RefreshRequest {
            next_refresh_token: None,
            device_id: DEVICE,
            refresh_token: "ref.TOKEN".into(),
        },
    );
    frozen("tokens", &tokens());
}

#[test]
fn push_is_frozen() {
    frozen(
        "push_request",
        &PushRequest {
            mutations: vec![
                Mutation {
                    client_seq: 7,
                    record_id: RECORD,
                    kind: "visit".into(),
                    scope: PERSON.into(),
                    op: MutationOp::Create,
                    base_version: 0,
                    patch: json!({"observations": "ok"}),
                },
                Mutation {
                    client_seq: 8,
                    record_id: RECORD,
                    kind: "visit".into(),
                    scope: PERSON.into(),
                    op: MutationOp::Update,
                    base_version: 1,
                    patch: json!({"mode": "phone"}),
                },
            ],
        },
    );
    frozen(
        "push_response",
        &PushResponse {
            receipts: vec![
                Receipt {
                    client_seq: 7,
                    record_id: RECORD,
                    outcome: Outcome::Applied,
                    version: Some(1),
                    op_id: Some(41),
                    reason: None,
                },
                Receipt {
                    client_seq: 8,
                    record_id: RECORD,
                    outcome: Outcome::Rejected,
                    version: None,
                    op_id: None,
                    reason: Some(ErrorBody::new(codes::FORBIDDEN, "scope not held")),
                },
            ],
            key_lease_seconds: 1_209_600,
        },
    );
}

#[test]
fn pull_and_snapshot_are_frozen() {
    frozen(
        "pull_query",
        &PullQuery {
            cursor: 40,
            limit: Some(500),
            max_bytes: None,
        },
    );
    let change = Change {
        op_id: 41,
        record_id: RECORD,
        kind: "visit".into(),
        scope: PERSON.into(),
        version: 1,
        op: ChangeOp::Upsert,
        record: Some(json!({"observations": "ok"})),
    };
    frozen(
        "pull_page",
        &PullPage {
            changes: vec![
                change.clone(),
                Change {
                    op_id: 43,
                    version: 2,
                    op: ChangeOp::Delete,
                    record: None,
                    ..change.clone()
                },
            ],
            scope_events: vec![ScopeEvent {
                op_id: 42,
                scope: PERSON.into(),
                kind: ScopeEventKind::Revoke,
            }],
            next_cursor: 43,
            has_more: false,
            as_of: 45,
        },
    );
    // A page from a server that does not say where it was read (`as_of` came later within
    // this protocol version) still parses, as "unknown".
    let mut older: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/pull_page.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    older.as_object_mut().unwrap().remove("as_of");
    assert_eq!(
        serde_json::from_value::<PullPage<Value>>(older)
            .unwrap()
            .as_of,
        0
    );
    frozen(
        "snapshot_query",
        &SnapshotQuery {
            after: Some(RECORD),
            limit: Some(1000),
        },
    );
    frozen(
        "snapshot_page",
        &SnapshotPage {
            scope: PERSON.into(),
            records: vec![change],
            as_of: 41,
            next_after: None,
        },
    );
    frozen(
        "scope_ack",
        &ScopeAck {
            scope: PERSON.into(),
            kind: ScopeEventKind::Revoke,
            op_id: 42,
        },
    );
    frozen(
        "scope_acks",
        &ScopeAcks {
            acks: vec![
                ScopeAck {
                    scope: PERSON.into(),
                    kind: ScopeEventKind::Grant,
                    op_id: 41,
                },
                ScopeAck {
                    scope: PERSON.into(),
                    kind: ScopeEventKind::Revoke,
                    op_id: 42,
                },
            ],
        },
    );
}

#[test]
fn conflicts_are_frozen() {
    frozen(
        "conflict_list",
        &ConflictList {
            conflicts: vec![Conflict {
                id: USER,
                record_id: RECORD,
                kind: "person".into(),
                scope: PERSON.into(),
                field: "phone".into(),
                kept: json!("0900000001"),
                lost: json!("0900000002"),
                lost_by_device: DEVICE,
                op_id: 44,
            }],
        },
    );
    frozen("resolve_conflict", &ResolveConflict { restore: true });
}

#[test]
fn requests_refuse_unknown_fields() {
    assert!(serde_json::from_str::<ErrorBody>(r#"{"code":"x","message":"y","extra":1}"#).is_err());
    assert!(
        serde_json::from_value::<EnrollRequest>(json!({
            "username": "a", "password": "b", "device_label": "c", "role": "admin"
        }))
        .is_err()
    );
    assert!(
        serde_json::from_value::<PushRequest<Value>>(json!({
            "mutations": [], "device_id": DEVICE
        }))
        .is_err()
    );
    assert!(serde_json::from_value::<PullQuery>(json!({"cursor": 1, "scope": PERSON})).is_err());
    assert!(serde_json::from_value::<ResolveConflict>(json!({"restore": "yes"})).is_err());
}

#[test]
fn responses_accept_fields_added_later_in_the_same_version() {
    let mut v = serde_json::to_value(tokens()).unwrap();
    v["new_field"] = json!(1);
    assert_eq!(serde_json::from_value::<Tokens>(v).unwrap(), tokens());
}

#[test]
fn wrong_types_and_negative_numbers_are_refused() {
    assert!(serde_json::from_value::<PullQuery>(json!({"cursor": -1})).is_err());
    assert!(serde_json::from_value::<PullQuery>(json!({"cursor": "1"})).is_err());
    assert!(
        serde_json::from_value::<Mutation<Value>>(json!({
            "client_seq": 1, "record_id": "not-a-uuid", "kind": "visit", "scope": PERSON,
            "op": "create", "base_version": 0, "patch": {}
        }))
        .is_err()
    );
    assert!(
        serde_json::from_value::<Mutation<Value>>(json!({
            "client_seq": 1, "record_id": RECORD, "kind": "visit", "scope": PERSON,
            "op": "upsert", "base_version": 0, "patch": {}
        }))
        .is_err()
    );
}

#[test]
fn protocol_version_and_header_are_frozen() {
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(PROTOCOL_HEADER, "x-donghanh-protocol");
}

#[test]
fn directory_is_frozen() {
    frozen(
        "directory",
        &Directory {
            users: vec![DirectoryEntry {
                id: USER,
                username: "tnv.hoa".into(),
                display_name: "Hoa".into(),
                role: Role::Volunteer,
                org_unit: DEVICE,
                point: None,
            }],
        },
    );
    assert_eq!(codes::CURSOR_EXPIRED, "cursor_expired");
}
