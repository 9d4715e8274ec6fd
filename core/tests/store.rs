//! The encrypted store's promises (DESIGN.md §4), tested on real SQLite files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use chrono::{Duration, Utc};
use donghanh_core::domain::{FollowUpTask, Id, Scope, ValidationContext, Visit};
use donghanh_core::keystore::KeyStoreError;
use donghanh_core::search::fold;
use donghanh_core::{Device, Error, FileKeyStore};

mod common;

use common::{Fixture, PIN, assert_no_marker, person};

fn file_digest(path: &Path) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, &fs::read(path).unwrap())
        .as_ref()
        .to_vec()
}

#[test]
fn no_identifying_marker_reaches_any_file_and_all_read_back() {
    let (fx, device) = Fixture::new();
    let names = [
        "Nguyễn Thị Mậu Đơn",
        "Trần Văn Ửng Khoát",
        "Lê Đình Phượng Vỹ",
    ];
    let notes = "MARKER-GHI-CHÚ: tái sử dụng nghi ngờ, mẹ báo đi đêm về khuya";
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut p = person(name);
        p.phone = Some(format!("098765432{i}"));
        p.address = Some(format!("Thôn Bí Mật Số {i}, xã Hòa Bình"));
        p.id_number = Some(format!("00109901234{i}"));
        device.add_person(&p).unwrap();
        let v = Visit::new(
            p.id,
            Utc::now() - Duration::hours(2),
            format!("{notes} #{i}"),
        );
        device.add_visit(&v).unwrap();
        ids.push(p);
    }
    let mut markers: Vec<String> = Vec::new();
    for p in &ids {
        for s in [
            Some(p.full_name.clone()),
            p.phone.clone(),
            p.address.clone(),
            p.id_number.clone(),
        ]
        .into_iter()
        .flatten()
        {
            markers.push(fold(&s));
            markers.push(s);
        }
    }
    for word in [
        "Mậu Đơn",
        "mau don",
        "Ửng",
        "ung khoat",
        "Phượng",
        "phuong vy",
        "MARKER-GHI",
    ] {
        markers.push(word.to_owned());
    }
    markers.push(notes.to_owned());
    markers.push(fold(notes));
    // While open (WAL and shm present) ...
    assert_no_marker(&fx.dir, &markers);
    drop(device);
    // ... and after closing.
    assert_no_marker(&fx.dir, &markers);

    let device = fx.open(PIN).unwrap();
    for p in &ids {
        assert_eq!(device.person(p.id).unwrap(), *p);
        let visits = device.visits(p.id).unwrap();
        assert_eq!(visits.len(), 1);
        assert!(visits[0].observations.starts_with("MARKER-GHI-CHÚ"));
    }
    let found = device.find_people("mau don").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ids[0].id);
}

#[test]
fn ciphertext_moved_to_another_row_fails_to_open() {
    let (fx, device) = Fixture::new();
    let a = person("Phan Văn A");
    let b = person("Phan Văn B");
    device.add_person(&a).unwrap();
    device.add_person(&b).unwrap();
    drop(device);
    let raw = fx.raw();
    let env_a: Vec<u8> = raw
        .query_row(
            "SELECT envelope FROM records WHERE id = ?1",
            [a.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    raw.execute(
        "UPDATE records SET envelope = ?1 WHERE id = ?2",
        rusqlite::params![env_a, b.id.as_bytes()],
    )
    .unwrap();
    drop(raw);
    let device = fx.open(PIN).unwrap();
    assert_eq!(device.person(a.id).unwrap(), a);
    match device.person(b.id) {
        Err(Error::Tampered { kind }) => assert_eq!(kind, "person"),
        other => panic!("expected Tampered, got {other:?}"),
    }
}

#[test]
fn ciphertext_replayed_at_an_older_version_fails_to_open() {
    let (fx, device) = Fixture::new();
    let p = person("Vũ Thị C");
    let task = FollowUpTask::new(p.id, Utc::now().date_naive(), "Thăm lại");
    device.add_person(&p).unwrap();
    device.add_task(&task).unwrap();
    let v1: Vec<u8> = fx
        .raw()
        .query_row(
            "SELECT envelope FROM records WHERE id = ?1",
            [task.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    device.complete_task(task.id).unwrap();
    drop(device);
    let raw = fx.raw();
    let version: i64 = raw
        .query_row(
            "SELECT version FROM records WHERE id = ?1",
            [task.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 2);
    // Put the version-1 ciphertext back under the version-2 row: it must not open.
    raw.execute(
        "UPDATE records SET envelope = ?1 WHERE id = ?2",
        rusqlite::params![v1, task.id.as_bytes()],
    )
    .unwrap();
    drop(raw);
    let device = fx.open(PIN).unwrap();
    let r = device.store().read(|r| r.get::<FollowUpTask>(task.id));
    assert!(matches!(r, Err(Error::Tampered { .. })), "got {r:?}");
}

#[test]
fn a_flipped_byte_in_a_stored_record_is_a_typed_error() {
    let (fx, device) = Fixture::new();
    let p = person("Đỗ Văn D");
    device.add_person(&p).unwrap();
    drop(device);
    let raw = fx.raw();
    let mut env: Vec<u8> = raw
        .query_row(
            "SELECT envelope FROM records WHERE id = ?1",
            [p.id.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    let last = env.len() - 1;
    env[last] ^= 0x01;
    raw.execute(
        "UPDATE records SET envelope = ?1 WHERE id = ?2",
        rusqlite::params![env, p.id.as_bytes()],
    )
    .unwrap();
    drop(raw);
    let device = fx.open(PIN).unwrap();
    assert!(matches!(device.person(p.id), Err(Error::Tampered { .. })));
    assert!(matches!(device.people(), Err(Error::Tampered { .. })));
}

#[test]
fn wrong_pin_is_told_apart_from_corrupt_keys_and_changes_nothing() {
    let (fx, device) = Fixture::new();
    device.add_person(&person("Hồ Văn E")).unwrap();
    drop(device);
    let before = file_digest(&fx.db());
    assert!(matches!(fx.open("000000"), Err(Error::WrongPin)));
    assert!(matches!(fx.open("1357901"), Err(Error::WrongPin)));
    assert_eq!(before, file_digest(&fx.db()), "a wrong PIN must not write");
    assert!(fx.open(PIN).is_ok());

    // Damage the wrapped master key: the PIN is still recognised as right, the keys are not.
    let raw = fx.raw();
    let mut wrapped: Vec<u8> = raw
        .query_row("SELECT v FROM meta WHERE k = 'master_wrapped'", [], |r| {
            r.get(0)
        })
        .unwrap();
    wrapped[20] ^= 0xFF;
    raw.execute(
        "UPDATE meta SET v = ?1 WHERE k = 'master_wrapped'",
        [&wrapped],
    )
    .unwrap();
    drop(raw);
    assert!(matches!(fx.open(PIN), Err(Error::CorruptKeys)));
    assert!(matches!(fx.open("000000"), Err(Error::WrongPin)));
    assert!(fx.db().exists(), "damaged keys never delete the store");
}

#[test]
fn damaged_canary_is_corrupt_keys_not_wrong_pin() {
    let (fx, device) = Fixture::new();
    drop(device);
    let raw = fx.raw();
    let mut canary: Vec<u8> = raw
        .query_row("SELECT v FROM meta WHERE k = 'canary'", [], |r| r.get(0))
        .unwrap();
    canary[25] ^= 0x10;
    raw.execute("UPDATE meta SET v = ?1 WHERE k = 'canary'", [&canary])
        .unwrap();
    drop(raw);
    assert!(matches!(fx.open(PIN), Err(Error::CorruptKeys)));
}

#[test]
fn missing_device_key_is_an_error_and_no_new_key_is_made() {
    let (fx, device) = Fixture::new();
    device.add_person(&person("Mai Thị F")).unwrap();
    drop(device);
    let before = file_digest(&fx.db());
    fs::remove_file(fx.dir.join("device.key")).unwrap();
    let r = fx.open(PIN);
    assert!(
        matches!(r, Err(Error::KeyStore(KeyStoreError::KeyMissing))),
        "got {r:?}"
    );
    assert!(!fx.dir.join("device.key").exists());
    assert_eq!(before, file_digest(&fx.db()));
}

#[test]
fn corrupted_database_file_is_moved_aside_not_deleted() {
    let (fx, device) = Fixture::new();
    device.add_person(&person("Tạ Văn G")).unwrap();
    drop(device);
    let mut bytes = fs::read(fx.db()).unwrap();
    for b in bytes.iter_mut().take(100) {
        *b = 0xA5;
    }
    fs::write(fx.db(), &bytes).unwrap();
    match fx.open(PIN) {
        Err(Error::CorruptStore { moved_to }) => {
            assert!(!fx.db().exists(), "the damaged file is no longer in place");
            assert_eq!(
                fs::read(&moved_to).unwrap(),
                bytes,
                "moved byte for byte, not deleted"
            );
            assert!(moved_to.starts_with(&fx.dir));
        }
        other => panic!("expected CorruptStore, got {other:?}"),
    }
    // The next open says plainly that there is no store; it never creates one silently.
    assert!(matches!(fx.open(PIN), Err(Error::NoStore(_))));
}

#[test]
fn truncated_database_file_is_moved_aside() {
    let (fx, device) = Fixture::new();
    for i in 0..50 {
        device
            .add_person(&person(&format!("Người Số {i}")))
            .unwrap();
    }
    drop(device);
    let bytes = fs::read(fx.db()).unwrap();
    fs::write(fx.db(), &bytes[..bytes.len() / 2]).unwrap();
    let r = fx.open(PIN);
    assert!(matches!(r, Err(Error::CorruptStore { .. })), "got {r:?}");
}

#[test]
fn init_refuses_an_existing_store_and_weak_pins() {
    let (fx, device) = Fixture::new();
    drop(device);
    let r = Device::init(&fx.dir, &fx.keystore(), PIN);
    assert!(matches!(r, Err(Error::AlreadyInitialised(_))));
    let tmp = tempfile::tempdir().unwrap();
    let ks = FileKeyStore::create(tmp.path().join("device.key")).unwrap();
    let r = Device::init(tmp.path(), &ks, "12345");
    assert!(matches!(r, Err(Error::WeakPin { .. })));
    assert!(
        !Device::store_path(tmp.path()).exists(),
        "a refused init leaves no file"
    );
    let r = Device::open(tmp.path(), &ks, PIN);
    assert!(matches!(r, Err(Error::NoStore(_))));
}

#[test]
fn every_change_writes_its_outbox_mutation_in_the_same_transaction() {
    let (_fx, device) = Fixture::new();
    let p = person("Lý Thị H");
    device.add_person(&p).unwrap();
    let task = FollowUpTask::new(p.id, Utc::now().date_naive(), "Giới thiệu học nghề");
    device.add_task(&task).unwrap();
    device.complete_task(task.id).unwrap();
    let outbox = device.store().read(|r| r.outbox()).unwrap();
    let seqs: Vec<u64> = outbox.iter().map(|e| e.client_seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(outbox[2].op, "update");
    // The base is the version the server confirmed: none yet (tests/sync.rs covers the rest).
    assert_eq!(outbox[2].base_version, 0);
    // An update carries only the fields that changed.
    let patch = device.store().read(|r| r.outbox_patch(3)).unwrap();
    let keys: Vec<&String> = patch.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["status"]);

    // A transaction that fails after writing leaves neither the record nor its mutation, and
    // does not consume a client_seq.
    let q = person("Lý Văn I");
    let ctx = ValidationContext::now();
    let r = device.store().write(|w| {
        w.insert(&q, &ctx)?;
        let bad = Visit::new(q.id, Utc::now() + Duration::days(3), "future");
        w.insert(&bad, &ctx)
    });
    assert!(matches!(r, Err(Error::Invalid(_))), "got {r:?}");
    assert!(matches!(device.person(q.id), Err(Error::NotFound { .. })));
    device.add_person(&q).unwrap();
    let outbox = device.store().read(|r| r.outbox()).unwrap();
    assert_eq!(outbox.last().unwrap().client_seq, 4);
}

#[test]
fn invalid_records_are_refused_before_anything_is_written() {
    let (_fx, device) = Fixture::new();
    let mut p = person("  ");
    p.full_name = "   ".into();
    assert!(matches!(device.add_person(&p), Err(Error::Invalid(_))));
    let ghost = Visit::new(Id::new(), Utc::now(), "no such person");
    assert!(matches!(
        device.add_visit(&ghost),
        Err(Error::NotFound { kind: "person" })
    ));
    assert_eq!(device.pending_changes().unwrap(), 0);
}

#[test]
fn purging_a_scope_removes_its_rows_index_and_key() {
    let (fx, device) = Fixture::new();
    let keep = person("Giữ Lại Văn K");
    let gone = person("Chuyển Đi Văn L");
    device.add_person(&keep).unwrap();
    device.add_person(&gone).unwrap();
    device
        .add_visit(&Visit::new(gone.id, Utc::now(), "thăm"))
        .unwrap();
    let scope = Scope::Person(gone.id);
    let n = device.store().write(|w| w.purge_scope(&scope)).unwrap();
    assert_eq!(n, 2);
    device.store().checkpoint().unwrap();
    assert!(matches!(
        device.person(gone.id),
        Err(Error::NotFound { .. })
    ));
    assert!(device.find_people("chuyen").unwrap().is_empty());
    assert_eq!(device.find_people("giu lai").unwrap().len(), 1);
    let scopes = device.store().read(|r| r.scopes()).unwrap();
    assert_eq!(scopes, vec![Scope::Person(keep.id).to_string()]);
    drop(device);
    let raw = fx.raw();
    let left: i64 = raw
        .query_row(
            "SELECT (SELECT count(*) FROM records WHERE scope = ?1)
                  + (SELECT count(*) FROM scope_keys WHERE scope = ?1)
                  + (SELECT count(*) FROM outbox WHERE scope = ?1)",
            [scope.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn search_ignores_case_and_diacritics_and_confirms_matches() {
    let (_fx, device) = Fixture::new();
    for name in [
        "Nguyễn Văn An",
        "Nguyễn Thị Bình",
        "Trần Văn An",
        "Ngô Quốc Anh",
        "Đặng Đức",
    ] {
        device.add_person(&person(name)).unwrap();
    }
    let names = |q: &str| -> Vec<String> {
        device
            .find_people(q)
            .unwrap()
            .into_iter()
            .map(|p| p.full_name)
            .collect()
    };
    assert_eq!(names("nguyen"), vec!["Nguyễn Thị Bình", "Nguyễn Văn An"]);
    assert_eq!(names("NGUYEN an"), vec!["Nguyễn Văn An"]);
    assert_eq!(
        names("an"),
        vec!["Ngô Quốc Anh", "Nguyễn Văn An", "Trần Văn An"]
    );
    assert_eq!(names("dang duc"), vec!["Đặng Đức"]);
    assert_eq!(names("đặng"), vec!["Đặng Đức"]);
    assert_eq!(
        names("n"),
        vec!["Ngô Quốc Anh", "Nguyễn Thị Bình", "Nguyễn Văn An"]
    );
    assert!(names("xyz").is_empty());
    assert!(names("   ").is_empty());
}

#[test]
fn caseload_orders_by_next_due_task() {
    let (_fx, device) = Fixture::new();
    let today = Utc::now().date_naive();
    let a = person("An");
    let b = person("Bình");
    let c = person("Cường");
    for p in [&a, &b, &c] {
        device.add_person(p).unwrap();
    }
    device
        .add_task(&FollowUpTask::new(b.id, today + Duration::days(1), "x"))
        .unwrap();
    device
        .add_task(&FollowUpTask::new(b.id, today + Duration::days(9), "y"))
        .unwrap();
    let t = FollowUpTask::new(a.id, today + Duration::days(3), "z");
    device.add_task(&t).unwrap();
    device
        .add_visit(&Visit::new(c.id, Utc::now() - Duration::days(2), "ok"))
        .unwrap();
    let load = device.caseload().unwrap();
    let order: Vec<&str> = load.iter().map(|e| e.person.full_name.as_str()).collect();
    assert_eq!(order, vec!["Bình", "An", "Cường"]);
    assert_eq!(load[0].next_due, Some(today + Duration::days(1)));
    assert!(load[2].last_visit.is_some());
    device.complete_task(t.id).unwrap();
    let load = device.caseload().unwrap();
    assert_eq!(load[1].next_due, None, "a done task is not due");
}

#[test]
fn client_seq_is_never_reused_after_outbox_rows_are_removed() {
    let (fx, device) = Fixture::new();
    let keep = person("Còn Lại");
    let gone = person("Bị Chuyển");
    device.add_person(&keep).unwrap(); // 1
    device.add_person(&gone).unwrap(); // 2
    device
        .add_visit(&Visit::new(gone.id, Utc::now(), "thăm"))
        .unwrap(); // 3
    // Removing the newest mutations (3 and 2) must not let their numbers come back ...
    device
        .store()
        .write(|w| w.purge_scope(&Scope::Person(gone.id)))
        .unwrap();
    let next = person("Người Mới");
    device.add_person(&next).unwrap();
    let seqs: Vec<u64> = device
        .store()
        .read(|r| r.outbox())
        .unwrap()
        .iter()
        .map(|e| e.client_seq)
        .collect();
    assert_eq!(seqs, vec![1, 4]);
    // ... not even after the store is closed and reopened (no cached counter).
    device
        .store()
        .write(|w| w.purge_scope(&Scope::Person(next.id)))
        .unwrap();
    drop(device);
    let device = fx.open(PIN).unwrap();
    device
        .add_visit(&Visit::new(keep.id, Utc::now(), "thăm lại"))
        .unwrap();
    let seqs: Vec<u64> = device
        .store()
        .read(|r| r.outbox())
        .unwrap()
        .iter()
        .map(|e| e.client_seq)
        .collect();
    assert_eq!(seqs, vec![1, 5]);
}

#[test]
fn empty_database_file_is_moved_aside_not_reused() {
    let (fx, device) = Fixture::new();
    drop(device);
    fs::write(fx.db(), b"").unwrap();
    let r = fx.open(PIN);
    match r {
        Err(Error::CorruptStore { moved_to }) => {
            assert!(moved_to.exists());
            assert!(!fx.db().exists());
        }
        other => panic!("expected CorruptStore, got {other:?}"),
    }
}
