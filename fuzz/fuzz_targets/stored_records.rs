//! What the device store reads back from disk once an envelope has opened: a record's
//! plaintext decoded straight into its entity (as `Reader::open_row` does), the clear columns
//! and rules read from it, and a JSON round trip that must give the same record; and the
//! store's other sealed or clear JSON (scope work left by a pulled page, outbox patches).
//!
//! The first byte picks the record kind; the rest is the plaintext.

#![no_main]

use donghanh_core::sync::ScopeTask;
use donghanh_fuzz::{decode_stored, exercise, kind_from_byte};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if let Some(record) = decode_stored(kind_from_byte(which), body) {
        exercise(&record);
    }
    let _ = serde_json::from_slice::<Vec<ScopeTask>>(body);
    let _ = serde_json::from_slice::<serde_json::Value>(body);
});
