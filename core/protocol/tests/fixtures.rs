//! Frozen wire format: each type serialises to exactly its fixture, and the fixture parses back.

#![allow(clippy::unwrap_used)]

use donghanh_protocol::{ErrorBody, PROTOCOL_HEADER, PROTOCOL_VERSION};

#[test]
fn error_body_wire_format_is_frozen() {
    let body = ErrorBody::new("invalid_input", "visit: the time is in the future");
    let fixture = include_str!("fixtures/error_body.json").trim();
    assert_eq!(serde_json::to_string(&body).unwrap(), fixture);
    assert_eq!(serde_json::from_str::<ErrorBody>(fixture).unwrap(), body);
}

#[test]
fn error_body_refuses_unknown_fields() {
    let r = serde_json::from_str::<ErrorBody>(r#"{"code":"x","message":"y","extra":1}"#);
    assert!(r.is_err());
}

#[test]
fn protocol_version_and_header_are_frozen() {
    assert_eq!(PROTOCOL_VERSION, 1);
    assert_eq!(PROTOCOL_HEADER, "x-donghanh-protocol");
}
