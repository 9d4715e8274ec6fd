//! The server's request decoders: every body the server deserialises (as axum's `Json` does,
//! with serde_json) and every query string (as axum's `Query` does, with serde_urlencoded),
//! then the pure checks the push path runs on each mutation before any storage: the scope and
//! kind codes, the record decode and its rules, and the field-level merge.
//!
//! The first byte picks the decoder; the rest is the body.

#![no_main]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use donghanh_core::domain::merge::merge_patch;
use donghanh_core::domain::{AnyRecord, Id, RecordKind, Scope};
use donghanh_core::report::{Definitions, Period, Plan};
use donghanh_fuzz::exercise;
use donghanh_protocol::{
    EnrollRequest, PullQuery, PushRequest, RefreshRequest, ResolveConflict, ScopeAck, ScopeAcks,
    SnapshotQuery,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fn definitions() -> Option<&'static Definitions> {
    static DEFS: OnceLock<Option<Definitions>> = OnceLock::new();
    DEFS.get_or_init(|| Definitions::embedded().ok()).as_ref()
}

/// What the server does with one pushed mutation before it touches storage.
fn check_push(body: &[u8]) {
    let Ok(push) = serde_json::from_slice::<PushRequest<Value>>(body) else {
        return;
    };
    for m in &push.mutations {
        let _ = Scope::from_str(&m.scope);
        let Some(kind) = RecordKind::from_code(&m.kind) else {
            continue;
        };
        let Value::Object(patch) = &m.patch else {
            continue;
        };
        if let Ok(record) = AnyRecord::from_json(kind, m.patch.clone()) {
            exercise(&record);
        }
        // The patch merged into an empty record and into itself, with every field last
        // changed at version 2, from each side of it.
        let empty = Map::new();
        let versions: BTreeMap<String, u64> = patch.keys().map(|k| (k.clone(), 2)).collect();
        for current in [&empty, patch] {
            let _ = merge_patch(
                current,
                3,
                &versions,
                m.base_version,
                patch,
                &["id", "scope"],
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            let _ = serde_json::from_slice::<EnrollRequest>(body);
        }
        1 => {
            let _ = serde_json::from_slice::<RefreshRequest>(body);
        }
        2 => check_push(body),
        3 => {
            let _ = serde_json::from_slice::<ScopeAck>(body);
        }
        4 => {
            if let Ok(acks) = serde_json::from_slice::<ScopeAcks>(body) {
                for ack in &acks.acks {
                    let _ = Scope::from_str(&ack.scope);
                }
            }
        }
        5 => {
            let _ = serde_json::from_slice::<ResolveConflict>(body);
        }
        6 => {
            if let (Ok(plan), Some(defs)) = (serde_json::from_slice::<Plan>(body), definitions()) {
                let _ = plan.validate(defs);
            }
        }
        7 => {
            let _ = serde_urlencoded::from_bytes::<PullQuery>(body);
        }
        8 => {
            let _ = serde_urlencoded::from_bytes::<SnapshotQuery>(body);
        }
        _ => {
            // Path and query parameters: scopes, ids and report periods.
            let text = String::from_utf8_lossy(body);
            let _ = Scope::from_str(&text);
            let _ = Id::from_str(&text);
            let _ = Period::parse(&text);
        }
    }
});
