//! The PostgreSQL backend against a real PostgreSQL (see `store::pg_cluster`): the conformance
//! suite every backend passes, commit-ordered op ids under many concurrent writers and readers
//! on several replicas, migrations and the key check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use donghanh_core::domain::{Device, Id, OrgUnit, OrgUnitKind, Person, Role, Scope, Sex, User};
use donghanh_protocol::{Mutation, MutationOp, Outcome, ScopeEventKind};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::pg_cluster::{TestDatabase, test_database};
use donghanh_server::store::postgres::{PgConfig, PgStore};
use donghanh_server::store::{PushCaller, StoredUser, SyncStore, conformance};

/// A key file in a temporary directory, and a way to load it again (one `ServerKeys` per
/// replica, as each replica process loads the same file).
struct KeyDir(tempfile::TempDir);

impl KeyDir {
    fn new() -> KeyDir {
        let dir = tempfile::tempdir().unwrap();
        ServerKeys::create(&dir.path().join("server.key")).unwrap();
        KeyDir(dir)
    }

    fn keys(&self) -> ServerKeys {
        ServerKeys::load(&self.0.path().join("server.key")).unwrap()
    }
}

async fn replica(db: &TestDatabase, keys: &KeyDir, pool_size: usize) -> PgStore {
    PgStore::connect(
        &PgConfig {
            url: db.url.clone(),
            pool_size,
        },
        keys.keys(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backend_passes_the_conformance_suite() {
    let Some(db) = test_database("postgres_backend_passes_the_conformance_suite") else {
        return;
    };
    let keys = KeyDir::new();
    conformance::run_all(&replica(&db, &keys, 4).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_a_replica_with_another_key_is_refused() {
    let Some(db) = test_database("migrations_run_once_and_a_replica_with_another_key_is_refused")
    else {
        return;
    };
    let keys = KeyDir::new();
    let first = replica(&db, &keys, 2).await;
    let unit = OrgUnit::new("Tỉnh Khóa", OrgUnitKind::Province, None);
    first.add_org_unit(unit.clone()).await.unwrap();
    // A second replica (or a restart) migrates nothing again and sees the same data.
    let second = replica(&db, &keys, 2).await;
    assert_eq!(second.org_units().await.unwrap(), vec![unit]);
    // A replica started with another key file would write rows the others cannot open.
    let other = KeyDir::new();
    let refused = PgStore::connect(
        &PgConfig {
            url: db.url.clone(),
            pool_size: 1,
        },
        other.keys(),
    )
    .await;
    let message = refused.map(|_| ()).unwrap_err().to_string();
    assert!(message.contains("key does not match"), "{message}");
}

fn create_person(seq: u64, commune: Id) -> (Id, Mutation<serde_json::Value>) {
    let mut person = Person::new(
        "Nguyễn Thị Thứ Tự",
        NaiveDate::from_ymd_opt(1991, 7, 8).unwrap(),
        Sex::Female,
    );
    person.commune = Some(commune);
    let m = Mutation {
        client_seq: seq,
        record_id: person.id.uuid(),
        kind: "person".into(),
        scope: Scope::Person(person.id).to_string(),
        op: MutationOp::Create,
        base_version: 0,
        patch: serde_json::to_value(&person).unwrap(),
    };
    (person.id, m)
}

async fn enrol(store: &PgStore, user: &User) -> PushCaller {
    store
        .add_user(StoredUser {
            user: user.clone(),
            password_hash: "h".into(),
        })
        .await
        .unwrap();
    device_of(store, user).await
}

async fn device_of(store: &PgStore, user: &User) -> PushCaller {
    let device = Device::new(user.id, "Android 14", Utc::now());
    store
        .add_device(device.clone(), b"r".to_vec())
        .await
        .unwrap();
    PushCaller {
        user: user.id,
        role: user.role,
        device: device.id,
    }
}

/// What one reader saw, in the order it saw it.
#[derive(Default)]
struct Seen {
    /// The op id of every change and scope event, page after page.
    ops: Vec<u64>,
    /// Each person record received.
    records: Vec<uuid::Uuid>,
    /// Each person scope granted to the reader.
    grants: Vec<String>,
    pages: usize,
}

/// Many writers push new cases through three replicas while readers on the replicas pull
/// small pages as fast as they can. Every op is a new record (or its scope grant), never
/// overwritten, so a reader that ever saw op N+1 before op N became visible would have moved
/// its cursor past N and would never receive it: each reader must end with every record and
/// every grant, exactly once, in strictly increasing op order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_reader_ever_skips_a_change_under_concurrent_writers_on_three_replicas() {
    const WRITERS: usize = 8;
    const PUSHES_PER_WRITER: usize = 12;
    const READERS: usize = 6;
    const PAGE: u32 = 5;
    // Bounds on the readers' loops: none is ever near them unless something is wrong.
    const MAX_PAGES: usize = 50_000;
    const MAX_TIME: Duration = Duration::from_secs(240);

    let Some(db) =
        test_database("no_reader_ever_skips_a_change_under_concurrent_writers_on_three_replicas")
    else {
        return;
    };
    let keys = KeyDir::new();
    let replicas = Arc::new([
        replica(&db, &keys, 6).await,
        replica(&db, &keys, 6).await,
        replica(&db, &keys, 6).await,
    ]);
    let province = OrgUnit::new("Tỉnh Đồng Thời", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Đồng Thời", OrgUnitKind::Commune, Some(province.id));
    for unit in [&province, &commune] {
        replicas[0].add_org_unit(unit.clone()).await.unwrap();
    }
    // Every supervisor of the commune holds every case of it: writers are supervisors, and the
    // reader is one more whose devices pull.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let user = User::new(format!("gs.viet.{w}"), "Viết", Role::Supervisor, commune.id);
        writers.push(enrol(&replicas[w % 3], &user).await);
    }
    let reader_user = User::new("gs.doc", "Đọc", Role::Supervisor, commune.id);
    let first_reader = enrol(&replicas[0], &reader_user).await;
    let mut readers = vec![first_reader];
    for r in 1..READERS {
        readers.push(device_of(&replicas[r % 3], &reader_user).await);
    }

    let writing = Arc::new(AtomicUsize::new(WRITERS));
    let started = Instant::now();
    let mut writer_tasks = Vec::new();
    for (w, caller) in writers.into_iter().enumerate() {
        let replicas = Arc::clone(&replicas);
        let writing = Arc::clone(&writing);
        let commune = commune.id;
        writer_tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            let mut seq = 0;
            for p in 0..PUSHES_PER_WRITER {
                // Pushes of one to three new cases, each through the next replica.
                let mut batch = Vec::new();
                for _ in 0..=(p + w) % 3 {
                    seq += 1;
                    let (id, m) = create_person(seq, commune);
                    created.push(id.uuid());
                    batch.push(m);
                }
                let store = &replicas[(w + p) % 3];
                let receipts = store.push_many(caller, batch, Utc::now()).await.unwrap();
                assert!(
                    receipts.iter().all(|r| r.outcome == Outcome::Applied),
                    "{receipts:?}"
                );
            }
            writing.fetch_sub(1, Ordering::SeqCst);
            created
        }));
    }
    let failed = Arc::new(AtomicBool::new(false));
    let mut reader_tasks = Vec::new();
    for (r, caller) in readers.into_iter().enumerate() {
        let replicas = Arc::clone(&replicas);
        let writing = Arc::clone(&writing);
        let failed = Arc::clone(&failed);
        reader_tasks.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut cursor = 0;
            let mut turn = r;
            loop {
                // Once every writer is done, one pull that finds nothing more ends the loop.
                let done_writing = writing.load(Ordering::SeqCst) == 0;
                let store = &replicas[turn % 3];
                turn += 1;
                let page = store
                    .pull(caller.user, caller.device, cursor, PAGE, 1 << 20)
                    .await
                    .unwrap();
                seen.pages += 1;
                // A page carries changes and events as two lists; together they are one run of
                // the log, after every earlier page's.
                let mut ops = Vec::new();
                for c in &page.changes {
                    ops.push(c.op_id);
                    seen.records.push(c.record_id);
                }
                for e in &page.scope_events {
                    ops.push(e.op_id);
                    if e.kind == ScopeEventKind::Grant && e.scope.starts_with("person:") {
                        seen.grants.push(e.scope.clone());
                    }
                }
                ops.sort_unstable();
                seen.ops.extend(ops);
                assert!(page.next_cursor >= cursor, "the cursor went back");
                cursor = page.next_cursor;
                if done_writing && !page.has_more {
                    return seen;
                }
                if seen.pages >= MAX_PAGES || started.elapsed() > MAX_TIME {
                    failed.store(true, Ordering::SeqCst);
                    return seen;
                }
            }
        }));
    }
    let mut created = BTreeSet::new();
    for t in writer_tasks {
        created.extend(t.await.unwrap());
    }
    let pushed: usize = (0..WRITERS)
        .map(|w| {
            (0..PUSHES_PER_WRITER)
                .map(|p| (p + w) % 3 + 1)
                .sum::<usize>()
        })
        .sum();
    assert_eq!(created.len(), pushed);
    let expected_grants: BTreeSet<String> = created
        .iter()
        .map(|id| Scope::Person(Id::from(*id)).to_string())
        .collect();
    let mut total_pages = 0;
    for (r, t) in reader_tasks.into_iter().enumerate() {
        let seen = t.await.unwrap();
        total_pages += seen.pages;
        assert!(
            !failed.load(Ordering::SeqCst),
            "a reader hit its bound ({MAX_PAGES} pages or {MAX_TIME:?})"
        );
        assert!(
            seen.ops.windows(2).all(|w| w[0] < w[1]),
            "reader {r} received op ids out of order"
        );
        let records: BTreeSet<_> = seen.records.iter().copied().collect();
        assert_eq!(
            records.len(),
            seen.records.len(),
            "reader {r}: a record twice"
        );
        assert_eq!(
            records,
            created,
            "reader {r} skipped {} of {} records",
            created.difference(&records).count(),
            created.len()
        );
        let grants: BTreeSet<_> = seen.grants.iter().cloned().collect();
        assert_eq!(grants.len(), seen.grants.len(), "reader {r}: a grant twice");
        assert_eq!(grants, expected_grants, "reader {r} skipped a scope grant");
    }
    // The readers really ran beside the writers (many small pages each), and the log is whole.
    assert!(total_pages > READERS * 3, "{total_pages} pages");
    assert!(matches!(
        replicas[1].verify_audit().await.unwrap(),
        donghanh_server::audit::Verdict::Intact { .. }
    ));
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A connection for checks the store does not offer.
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn wal_segment(client: &tokio_postgres::Client) -> String {
    client
        .query_one("SELECT pg_walfile_name(pg_current_wal_lsn())", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_files_hold_no_name_username_label_or_note_in_clear() {
    let Some(db) = test_database("the_cluster_files_hold_no_name_username_label_or_note_in_clear")
    else {
        return;
    };
    let Some(files) = db.files.clone() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI gives the cluster's directory (DONGHANH_TEST_DATABASE_DIR)"
        );
        eprintln!("skipping: the test cluster's directory is unknown");
        return;
    };
    let keys = KeyDir::new();
    let store = replica(&db, &keys, 2).await;
    let client = raw(&db.url).await;
    let first_segment = wal_segment(&client).await;
    let province = OrgUnit::new("Tỉnh Kín", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Kín", OrgUnitKind::Commune, Some(province.id));
    for unit in [&province, &commune] {
        store.add_org_unit(unit.clone()).await.unwrap();
    }
    let sup = User::new(
        "gs.bimatlogin",
        "Trương Bímật Giámsát",
        Role::Supervisor,
        commune.id,
    );
    store
        .add_user(StoredUser {
            user: sup.clone(),
            password_hash: "h".into(),
        })
        .await
        .unwrap();
    let device = Device::new(sup.id, "Máy của Bímật Nhãn", Utc::now());
    store
        .add_device(device.clone(), b"r".to_vec())
        .await
        .unwrap();
    let caller = PushCaller {
        user: sup.id,
        role: sup.role,
        device: device.id,
    };
    let mut person = Person::new(
        "Lương Thị Bímật Hồsơ",
        NaiveDate::from_ymd_opt(1990, 2, 3).unwrap(),
        Sex::Female,
    );
    person.commune = Some(commune.id);
    person.phone = Some("0977123456".into());
    person.address = Some("Xóm Bímật Địachỉ".into());
    let m = Mutation {
        client_seq: 1,
        record_id: person.id.uuid(),
        kind: "person".into(),
        scope: Scope::Person(person.id).to_string(),
        op: MutationOp::Create,
        base_version: 0,
        patch: serde_json::to_value(&person).unwrap(),
    };
    let r = store.push(caller, m, Utc::now()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    // Into the table files, not only the write-ahead log: this database's files, and the log
    // segments written since the test began (the cluster may hold other tests' databases).
    client.batch_execute("CHECKPOINT").await.unwrap();
    let last_segment = wal_segment(&client).await;
    let oid: u32 = client
        .query_one(
            "SELECT oid FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let data = if files.join("data").is_dir() {
        files.join("data")
    } else {
        files
    };
    let mut all = Vec::new();
    files_under(&data.join("base").join(oid.to_string()), &mut all);
    let tables = all.len();
    for entry in std::fs::read_dir(data.join("pg_wal")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() == 24 && name >= first_segment && name <= last_segment {
            all.push(entry.path());
        }
    }
    assert!(
        tables > 50 && all.len() > tables,
        "{tables} of {} files",
        all.len()
    );
    for path in all {
        let bytes = std::fs::read(&path).unwrap();
        // (`str::contains` runs the standard library's optimised search, even in a debug build.)
        let text = String::from_utf8_lossy(&bytes);
        for marker in ["Bímật", "Bimat", "bimatlogin", "0977123456"] {
            assert!(!text.contains(marker), "{marker} in {}", path.display());
        }
    }
}
