//! The sealed-record envelope (`core/src/crypto.rs`): opening arbitrary bytes must fail with
//! an error, never panic, and never open (no forgery without the key); the associated data
//! built from outside text must encode or refuse cleanly; and whatever is sealed opens again
//! to the same bytes under the same associated data only.

#![no_main]

use donghanh_core::crypto::{self, Aad, SecretKey};
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;

const KEY: [u8; 32] = [7; 32];
const RECORD: [u8; 16] = [1; 16];

fuzz_target!(|data: &[u8]| {
    let Ok(key) = SecretKey::from_slice(&KEY) else {
        return;
    };
    let fixed = Aad {
        table: "records",
        record_id: &RECORD,
        record_version: 1,
        schema_version: 1,
        scope: "person:00000000-0000-0000-0000-000000000001",
        key_id: crypto::envelope_key_id(data).unwrap_or(1),
    };
    // Arbitrary bytes as an envelope: an error, whatever they are.
    assert!(
        crypto::open(&key, &fixed, data).is_err(),
        "arbitrary bytes opened as an envelope"
    );

    // The input split into associated data (scope text) and plaintext.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (head, plain) = data.split_at(split);
    let scope = String::from_utf8_lossy(head);
    let aad = Aad {
        scope: &scope,
        key_id: 9,
        ..fixed
    };
    if aad.to_bytes().is_err() {
        return;
    }
    let rng = SystemRandom::new();
    let Ok(sealed) = crypto::seal(&rng, &key, &aad, plain) else {
        return;
    };
    assert_eq!(crypto::envelope_key_id(&sealed).ok(), Some(9));
    assert_eq!(
        crypto::open(&key, &aad, &sealed).ok().as_deref(),
        Some(plain)
    );
    let moved = Aad {
        record_version: 2,
        ..aad
    };
    assert!(
        crypto::open(&key, &moved, &sealed).is_err(),
        "an envelope opened at another version"
    );
});
