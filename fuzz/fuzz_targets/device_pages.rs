//! What the device decodes from the server: every response body, and above all pulled pages
//! and snapshot pages, decoded as the sync client does (`RawJson` records) and then applied to
//! a real encrypted store (`Writer::apply_page`, `Writer::apply_snapshot`): kind codes, record
//! decoding, the id and scope checks, the record rules, sealing and the cursor.
//!
//! The store is created once per process (PBKDF2 at 600,000 iterations is far too slow for
//! the loop) in a temporary directory, and every application is rolled back, so each input
//! meets the same empty store.

#![no_main]

use std::cell::RefCell;

use donghanh_core::store::{CreateOptions, Store};
use donghanh_core::sync::RawJson;
use donghanh_core::{Error, FileKeyStore};
use donghanh_protocol::{
    ConflictList, Directory, EnrollResponse, ErrorBody, PullPage, PushResponse, SnapshotPage,
    Tokens,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tempfile::TempDir;

struct Fixture {
    store: Store,
    _dir: TempDir,
}

/// The store every input is applied to. Failing to make it is a broken fuzz set-up, not a
/// finding: it stops the run rather than fuzzing the decoders alone.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory for the fuzz store");
    let keys = FileKeyStore::create(dir.path().join("device.key")).expect("the fuzz key store");
    let store = Store::create(
        &dir.path().join("store.db"),
        &keys,
        "fuzz-pin-246810",
        CreateOptions::default(),
    )
    .expect("the fuzz store");
    Fixture { store, _dir: dir }
}

thread_local! {
    static FIXTURE: RefCell<Fixture> = RefCell::new(fixture());
}

/// Stands for "roll back": the write closure always fails after applying.
fn rollback() -> Error {
    Error::NotFound { kind: "fuzz" }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let Ok(page) = serde_json::from_slice::<PullPage<RawJson>>(body) else {
                return;
            };
            FIXTURE.with_borrow(|f| {
                let _ = f.store.write(|w| {
                    let _ = w.apply_page(&page)?;
                    Err::<(), _>(rollback())
                });
            });
        }
        1 => {
            let Ok(page) = serde_json::from_slice::<SnapshotPage<RawJson>>(body) else {
                return;
            };
            FIXTURE.with_borrow(|f| {
                let _ = f.store.write(|w| {
                    let _ = w.apply_snapshot(&page)?;
                    Err::<(), _>(rollback())
                });
            });
        }
        _ => {
            let _ = serde_json::from_slice::<EnrollResponse>(body);
            let _ = serde_json::from_slice::<Tokens>(body);
            let _ = serde_json::from_slice::<PushResponse>(body);
            let _ = serde_json::from_slice::<ErrorBody>(body);
            let _ = serde_json::from_slice::<ConflictList<Value>>(body);
            let _ = serde_json::from_slice::<Directory>(body);
        }
    }
});
