//! Helpers shared by the fuzz targets: the one dispatch from a record kind to its entity type,
//! decoding the way the device store reads a row back (`serde_json::from_slice` straight into
//! the entity, as `Reader::open_row` does after unsealing).

use chrono::{TimeZone, Utc};
use donghanh_core::domain::{AnyRecord, Record, RecordKind, ValidationContext};

/// A fixed "now" for validation, so that a crash reproduces whatever the day.
#[must_use]
pub fn fixed_context() -> ValidationContext {
    ValidationContext {
        now: Utc
            .with_ymd_and_hms(2026, 11, 20, 9, 30, 0)
            .single()
            .unwrap_or_else(Utc::now),
    }
}

/// The kind chosen by one input byte.
#[must_use]
pub fn kind_from_byte(b: u8) -> RecordKind {
    RecordKind::ALL[usize::from(b) % RecordKind::ALL.len()]
}

fn typed<R: Record>(bytes: &[u8], wrap: fn(R) -> AnyRecord) -> Option<AnyRecord> {
    serde_json::from_slice::<R>(bytes).ok().map(wrap)
}

/// Decodes plaintext as the store does for a row of `kind`.
#[must_use]
pub fn decode_stored(kind: RecordKind, bytes: &[u8]) -> Option<AnyRecord> {
    match kind {
        RecordKind::Person => typed(bytes, AnyRecord::Person),
        RecordKind::Episode => typed(bytes, AnyRecord::Episode),
        RecordKind::Assignment => typed(bytes, AnyRecord::Assignment),
        RecordKind::Visit => typed(bytes, AnyRecord::Visit),
        RecordKind::DrugTest => typed(bytes, AnyRecord::DrugTest),
        RecordKind::FollowUpTask => typed(bytes, AnyRecord::FollowUpTask),
        RecordKind::Session => typed(bytes, AnyRecord::Session),
        RecordKind::Attendance => typed(bytes, AnyRecord::Attendance),
        RecordKind::SupervisionNote => typed(bytes, AnyRecord::SupervisionNote),
        RecordKind::Referral => typed(bytes, AnyRecord::Referral),
        RecordKind::SupportBenefit => typed(bytes, AnyRecord::SupportBenefit),
        RecordKind::RelapseEvent => typed(bytes, AnyRecord::RelapseEvent),
        RecordKind::AbsenceReport => typed(bytes, AnyRecord::AbsenceReport),
        RecordKind::Transfer => typed(bytes, AnyRecord::Transfer),
        RecordKind::Consent => typed(bytes, AnyRecord::Consent),
        RecordKind::AccessLog => typed(bytes, AnyRecord::AccessLog),
    }
}

/// Everything the domain reads from a decoded record: the clear columns and the rules.
/// A record that decodes must also survive a JSON round trip unchanged (what the store seals
/// is what it reads back).
pub fn exercise(record: &AnyRecord) {
    let _ = record.id();
    let _ = record.scope().to_string();
    let _ = record.subject();
    let _ = record.day();
    let _ = record.state();
    let _ = record.validate(&fixed_context());
    if let Ok(json) = record.to_json() {
        let again = AnyRecord::from_json(record.kind(), json);
        assert!(
            again.as_ref() == Ok(record),
            "a {} record changed through a JSON round trip",
            record.kind()
        );
    }
}
