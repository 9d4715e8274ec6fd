//! Several `donghanh-server` processes on one PostgreSQL, behind a round-robin balancer on
//! loopback (in this test: it hands each new connection to the next replica that accepts it).
//! Real phones work through the balancer, a replica is killed in the middle of a push, another
//! takes its place, and nothing acknowledged is lost, duplicated or left behind.
//!
//! Needs the server binary (`cargo test --workspace` builds it) and PostgreSQL (see
//! `donghanh_server::store::pg_cluster`; skipped without it outside CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, OrgUnit, OrgUnitKind, Person, PriorRehab, Role, Sex, User,
    Visit,
};
use donghanh_core::{Device, FileKeyStore};
use donghanh_e2e::{PASSWORD, PIN};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::pg_cluster::test_database;
use donghanh_server::store::postgres::{PgConfig, PgStore};
use donghanh_server::store::{StoredUser, SyncStore};

/// The server's binary, built by `cargo test --workspace` beside this test's.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("donghanh-server");
    assert!(
        bin.exists(),
        "{} is missing: run cargo test --workspace",
        bin.display()
    );
    bin
}

/// One `donghanh-server serve` process on 127.0.0.1; killed (by its pid) when dropped.
struct Replica {
    child: Arc<Mutex<Child>>,
    addr: SocketAddr,
}

impl Replica {
    fn start(keys: &Path, url: &str) -> Replica {
        let mut child = Command::new(server_binary())
            .args(["--data", keys.to_str().unwrap(), "--database", url])
            .args(["--database-pool", "4", "serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the replica said {line:?}"))
            .parse()
            .unwrap();
        Replica {
            child: Arc::new(Mutex::new(child)),
            addr,
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What the balancer does to the replica behind the first connection that uploads a push.
struct Victim {
    /// Kill it once this many request bytes have gone through one connection to it.
    after_bytes: usize,
    killed: AtomicBool,
    /// The replicas' processes, by address.
    processes: Mutex<Vec<(SocketAddr, Arc<Mutex<Child>>)>>,
}

/// A round-robin TCP balancer on 127.0.0.1 in a thread of its own: each new connection goes
/// to the next replica that accepts it (a dead one is skipped), copied both ways by two threads.
/// Stopped when dropped.
struct Balancer {
    url: String,
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<SocketAddr>>>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Balancer {
    fn start(backends: Vec<SocketAddr>, victim: Arc<Victim>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let backends = Arc::new(Mutex::new(backends));
        let stopping = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (Arc::clone(&backends), Arc::clone(&stopping));
        let thread = std::thread::spawn(move || {
            let mut next = 0usize;
            for client in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let candidates = shared.lock().unwrap().clone();
                let start = next;
                next += 1;
                let victim = Arc::clone(&victim);
                std::thread::spawn(move || {
                    for i in 0..candidates.len() {
                        let addr = candidates[(start + i) % candidates.len()];
                        if let Ok(server) = TcpStream::connect(addr) {
                            proxy(client, server, addr, &victim);
                            return;
                        }
                    }
                });
            }
        });
        Balancer {
            url: format!("http://{addr}"),
            addr,
            backends,
            stopping,
            thread: Some(thread),
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways; the first connection whose request bytes pass the victim's threshold
/// (a push body: pulls and token requests are small) has its replica killed right there, in
/// the middle of the upload.
fn proxy(mut client: TcpStream, mut server: TcpStream, addr: SocketAddr, victim: &Victim) {
    let (Ok(mut client_back), Ok(mut server_back)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let download = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_back, &mut client_back);
        let _ = client_back.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 16 * 1024];
    let mut sent = 0usize;
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        sent += n;
        if sent >= victim.after_bytes && !victim.killed.swap(true, Ordering::SeqCst) {
            let processes = victim.processes.lock().unwrap();
            if let Some((_, child)) = processes.iter().find(|(a, _)| *a == addr) {
                let mut child = child.lock().unwrap();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if server.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
    let _ = download.join();
}

fn enroll(dir: &Path, url: &str, username: &str) -> Device {
    std::fs::create_dir_all(dir).unwrap();
    let keystore = FileKeyStore::create(dir.join("device.key")).unwrap();
    Device::enroll(dir, &keystore, PIN, url, username, PASSWORD, "test phone").unwrap()
}

/// Syncs until nothing is pending, at most `rounds` times: a round cut by a dying replica
/// fails and the next one pushes again (answered from the stored receipts where the cut push
/// had committed). Returns the errors seen.
fn sync_until_done(device: &Device, rounds: usize) -> usize {
    let mut errors = 0;
    for _ in 0..rounds {
        match device.sync() {
            Ok(_) if device.pending_changes().unwrap() == 0 => return errors,
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    panic!(
        "still {} pending after {rounds} rounds",
        device.pending_changes().unwrap()
    );
}

fn cli(keys: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(server_binary())
        .args(["--data", keys.to_str().unwrap(), "--database", url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn three_replicas_on_one_postgresql_serve_a_commune_through_a_killed_replica() {
    let Some(db) =
        test_database("three_replicas_on_one_postgresql_serve_a_commune_through_a_killed_replica")
    else {
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    // The first command on a new database creates the key and the admin; every replica then
    // uses that key file.
    assert_eq!(
        cli(keys.path(), &db.url, &["migrate"]).trim(),
        "database at the latest schema"
    );
    assert!(keys.path().join("server.key").exists());

    // The commune, its staff.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let province = OrgUnit::new("Tỉnh Nhân Bản", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Nhân Bản", OrgUnitKind::Commune, Some(province.id));
    let team = OrgUnit::new("Đội Nhân Bản", OrgUnitKind::Team, Some(commune.id));
    let mut ids = std::collections::HashMap::new();
    rt.block_on(async {
        let store = PgStore::connect(
            &PgConfig {
                url: db.url.clone(),
                pool_size: 2,
            },
            ServerKeys::load(&keys.path().join("server.key")).unwrap(),
        )
        .await
        .unwrap();
        for unit in [&province, &commune, &team] {
            store.add_org_unit(unit.clone()).await.unwrap();
        }
        let hash = donghanh_server::auth::hash_password(PASSWORD).unwrap();
        for (name, role) in [
            ("gs.minh", Role::Supervisor),
            ("tnv.hoa", Role::Volunteer),
            ("tnv.lan", Role::Volunteer),
        ] {
            let user = User::new(name, name, role, team.id);
            ids.insert(name, user.id);
            store
                .add_user(StoredUser {
                    user,
                    password_hash: hash.clone(),
                })
                .await
                .unwrap();
        }
    });

    // Three replicas and the balancer; the first connection to upload 24 KiB (a push of
    // many visits) has its replica killed mid-upload.
    let mut replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(keys.path(), &db.url))
        .collect();
    let victim = Arc::new(Victim {
        after_bytes: 24 * 1024,
        killed: AtomicBool::new(false),
        processes: Mutex::new(
            replicas
                .iter()
                .map(|r| (r.addr, Arc::clone(&r.child)))
                .collect(),
        ),
    });
    let balancer = Balancer::start(
        replicas.iter().map(|r| r.addr).collect(),
        Arc::clone(&victim),
    );

    let phones = tempfile::tempdir().unwrap();
    let sup = enroll(&phones.path().join("sup"), &balancer.url, "gs.minh");
    let hoa = enroll(&phones.path().join("hoa"), &balancer.url, "tnv.hoa");
    let lan = enroll(&phones.path().join("lan"), &balancer.url, "tnv.lan");

    // The supervisor opens three cases: two for Hoa, one for Lan.
    let today = donghanh_core::domain::vn_date(Utc::now());
    let mut cases = Vec::new();
    for (name, helper) in [
        ("Phạm Văn Nhân Một", "tnv.hoa"),
        ("Phạm Văn Nhân Hai", "tnv.hoa"),
        ("Phạm Thị Nhân Ba", "tnv.lan"),
    ] {
        let mut p = Person::new(
            name,
            chrono::NaiveDate::from_ymd_opt(1988, 3, 4).unwrap(),
            Sex::Male,
        );
        p.commune = Some(commune.id);
        sup.add_person(&p).unwrap();
        let episode = Episode::new(p.id, EpisodeKind::PostRehab, today - Duration::days(30))
            .with_after(PriorRehab::Voluntary);
        sup.add_episode(&episode).unwrap();
        let assignment = Assignment::new(p.id, episode.id, ids[helper], today);
        sup.add_record(&assignment).unwrap();
        cases.push((p, assignment));
    }
    assert_eq!(sync_until_done(&sup, 3), 0);
    hoa.sync().unwrap();
    lan.sync().unwrap();
    assert_eq!(hoa.people().unwrap().len(), 2);
    assert_eq!(lan.people().unwrap().len(), 1);

    // Offline, each volunteer records 150 visits; then both sync at once. One of the pushes
    // loses its replica in the middle of its upload.
    const VISITS: usize = 150;
    let record = |device: &Device, people: &[&Person]| {
        for i in 0..VISITS {
            let p = people[i % people.len()];
            let v = Visit::new(
                p.id,
                Utc::now() - Duration::minutes(i64::try_from(i).unwrap() + 1),
                format!("Thăm nhà lần {i}: gia đình hợp tác, không có dấu hiệu sử dụng lại"),
            );
            device.add_visit(&v).unwrap();
        }
    };
    record(&hoa, &[&cases[0].0, &cases[1].0]);
    record(&lan, &[&cases[2].0]);
    let errors = std::thread::scope(|s| {
        let a = s.spawn(|| sync_until_done(&hoa, 5));
        let b = s.spawn(|| sync_until_done(&lan, 5));
        a.join().unwrap() + b.join().unwrap()
    });
    assert!(
        victim.killed.load(Ordering::SeqCst),
        "no push went through the balancer: the test did not test the kill"
    );
    assert!(
        errors >= 1,
        "the push cut by the kill failed and was pushed again"
    );

    // A new replica takes the dead one's place.
    let fresh = Replica::start(keys.path(), &db.url);
    balancer.backends.lock().unwrap().push(fresh.addr);
    replicas.push(fresh);

    // The supervisor's phone receives every visit exactly once, whichever replica took it.
    assert_eq!(sync_until_done(&sup, 3), 0);
    for (p, _) in &cases[..2] {
        assert_eq!(sup.visits(p.id).unwrap().len(), VISITS / 2);
    }
    assert_eq!(sup.visits(cases[2].0.id).unwrap().len(), VISITS);

    // A reassignment made through one replica reaches the phones through the others.
    let (p2, mut assignment) = cases[1].clone();
    assignment.helper = Some(ids["tnv.lan"]);
    sup.update_record(&assignment).unwrap();
    assert_eq!(sync_until_done(&sup, 3), 0);
    let r = hoa.sync().unwrap();
    assert_eq!(r.purged, 1, "{r:?}");
    assert!(hoa.person(p2.id).is_err());
    lan.sync().unwrap();
    assert_eq!(lan.person(p2.id).unwrap(), p2);
    assert_eq!(lan.visits(p2.id).unwrap().len(), VISITS / 2);
    for device in [&sup, &hoa, &lan] {
        assert_eq!(device.pending_changes().unwrap(), 0);
    }

    // The audit chain the replicas wrote together is whole.
    let verdict = cli(keys.path(), &db.url, &["admin", "audit", "verify"]);
    assert!(verdict.starts_with("intact "), "{verdict}");
    drop(balancer);
    drop(replicas);
}
