//! Schema migrations: a store written by every shipped version, kept frozen in
//! `tests/fixtures/v<N>/`, must open, migrate to a schema identical to a fresh store's, and
//! read back exactly what was written.
//!
//! When a schema version ships, freeze its fixture once:
//! `DONGHANH_WRITE_FIXTURE=1 cargo test -p donghanh-core --test migrations -- --ignored`
//! (it refuses to overwrite an existing fixture; never edit a shipped one).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone, Utc};
use donghanh_core::domain::{FollowUpTask, Id, Person, Sex, Visit};
use donghanh_core::protocol::{MutationOp, Outcome, Receipt};
use donghanh_core::store::SCHEMA_VERSION;
use donghanh_core::{Device, FileKeyStore};
use rusqlite::Connection;

/// The PIN of every fixture store.
const FIXTURE_PIN: &str = "fixture-2468";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One `sqlite_master` row: type, name, table, SQL.
type SchemaRow = (String, String, String, Option<String>);

/// The schema as SQLite describes it, comparable across files.
fn schema_of(db: &Path) -> (usize, Vec<SchemaRow>) {
    let conn = Connection::open(db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let version = usize::try_from(version).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (version, rows)
}

fn fixture_people() -> Vec<(Person, Visit, FollowUpTask)> {
    let names = ["Nguyễn Văn Fixture", "Trần Thị Cố Định", "Lê Đình Mẫu"];
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut p = Person::new(
                *name,
                NaiveDate::from_ymd_opt(1980 + i as i32, 2, 3).unwrap(),
                if i == 1 { Sex::Female } else { Sex::Male },
            );
            p.id = Id::from_bytes([i as u8 + 1; 16]);
            p.phone = Some(format!("091234567{i}"));
            let at = Utc
                .with_ymd_and_hms(2026, 10, 1 + i as u32, 3, 0, 0)
                .unwrap();
            let mut v = Visit::new(p.id, at, format!("Ghi chú cố định số {i}"));
            v.id = Id::from_bytes([i as u8 + 11; 16]);
            let mut t = FollowUpTask::new(
                p.id,
                NaiveDate::from_ymd_opt(2026, 11, 10 + i as u32).unwrap(),
                "Thăm lại",
            );
            t.id = Id::from_bytes([i as u8 + 21; 16]);
            (p, v, t)
        })
        .collect()
}

fn copy_fixture(version: usize, to: &Path) {
    let from = fixtures().join(format!("v{version}"));
    fs::create_dir_all(to).unwrap();
    for name in ["device.db", "device.key"] {
        fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[test]
fn every_shipped_fixture_migrates_to_a_schema_equal_to_a_fresh_store() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    let ks = FileKeyStore::create(fresh.join("device.key")).unwrap();
    drop(Device::init(&fresh, &ks, FIXTURE_PIN).unwrap());
    let fresh_schema = schema_of(&Device::store_path(&fresh));
    assert_eq!(fresh_schema.0, SCHEMA_VERSION);

    let mut checked = 0;
    for version in 1..=SCHEMA_VERSION {
        // Every shipped version has a frozen fixture; the current one may not have shipped yet
        // (its fixture is written once, when it does).
        if version == SCHEMA_VERSION && !fixtures().join(format!("v{version}")).exists() {
            continue;
        }
        let dir = tmp.path().join(format!("v{version}"));
        copy_fixture(version, &dir);
        let device = Device::open(
            &dir,
            &FileKeyStore::open(dir.join("device.key")),
            FIXTURE_PIN,
        )
        .unwrap();
        for (p, v, t) in fixture_people() {
            assert_eq!(device.person(p.id).unwrap(), p, "fixture v{version}");
            assert_eq!(device.visits(p.id).unwrap(), vec![v]);
            let tasks: Vec<FollowUpTask> = device.store().read(|r| r.by_subject(p.id)).unwrap();
            assert_eq!(tasks, vec![t]);
        }
        assert_eq!(device.find_people("co dinh").unwrap().len(), 1);
        assert_eq!(device.pending_changes().unwrap(), 9);
        check_sync_state(&device, version);
        drop(device);
        assert_eq!(
            schema_of(&Device::store_path(&dir)),
            fresh_schema,
            "fixture v{version}"
        );
        checked += 1;
    }
    assert!(
        checked >= SCHEMA_VERSION - 1,
        "a shipped fixture is missing"
    );
    assert!(fixtures().join("v1").exists());
}

/// Sync state of a migrated store (v2): nothing was ever confirmed by a server before v2, so
/// every record is at server version 0, the outbox pushes as it is, the cursor starts at 0,
/// and receipts work on the migrated rows.
fn check_sync_state(device: &Device, version: usize) {
    let pending = device.store().read(|r| r.pending_mutations(100)).unwrap();
    assert_eq!(pending.len(), 9, "fixture v{version}");
    if version == 1 {
        assert!(pending.iter().all(|m| m.base_version == 0));
        assert!(pending.iter().all(|m| m.op == MutationOp::Create));
        for (p, _, _) in fixture_people() {
            assert_eq!(
                device.store().read(|r| r.server_version_of(p.id)).unwrap(),
                Some(0)
            );
        }
        assert_eq!(device.store().read(|r| r.pull_cursor()).unwrap(), 0);
    }
    let (p, _, _) = &fixture_people()[0];
    let m = pending.iter().find(|m| m.record_id == p.id.uuid()).unwrap();
    assert_eq!(m.patch, serde_json::to_value(p).unwrap());
    assert!(device.store().read(|r| r.rejected()).unwrap().is_empty());
    // Exercise the new schema on migrated rows, then roll back so the schema comparison below
    // sees the store as migrated.
    let r: Result<(), donghanh_core::Error> = device.store().write(|w| {
        let receipt = Receipt {
            client_seq: m.client_seq,
            record_id: m.record_id,
            outcome: Outcome::Applied,
            version: Some(3),
            op_id: Some(3),
            reason: None,
        };
        let s = w.apply_receipts(&[receipt])?;
        assert_eq!(s.acknowledged, 1);
        assert_eq!(w.reader().server_version_of(p.id)?, Some(3));
        Err(donghanh_core::Error::Busy)
    });
    assert!(r.is_err());
}

#[test]
#[ignore = "writes the fixture of the current schema version; run once when a version ships"]
fn write_fixture_for_current_schema() {
    if std::env::var_os("DONGHANH_WRITE_FIXTURE").is_none() {
        println!("set DONGHANH_WRITE_FIXTURE=1 to write the fixture");
        return;
    }
    let dir = fixtures().join(format!("v{SCHEMA_VERSION}"));
    assert!(
        !dir.exists(),
        "fixture v{SCHEMA_VERSION} exists: never edit a shipped fixture"
    );
    fs::create_dir_all(&dir).unwrap();
    let ks = FileKeyStore::create(dir.join("device.key")).unwrap();
    let device = Device::init(&dir, &ks, FIXTURE_PIN).unwrap();
    for (p, v, t) in fixture_people() {
        device.add_person(&p).unwrap();
        device.add_visit(&v).unwrap();
        device.add_task(&t).unwrap();
    }
    drop(device);
    for side in ["device.db-wal", "device.db-shm"] {
        assert!(
            !dir.join(side).exists(),
            "the fixture must be one checkpointed file"
        );
    }
    println!("wrote {}", dir.display());
}
