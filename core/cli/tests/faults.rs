//! Real-process faults (issue 6, item 2): the real `donghanh-server` and `donghanh` binaries as
//! separate processes, killed with SIGKILL at seeded-random moments, and run out of disk on a
//! small tmpfs the test mounts.
//!
//! - The server is killed while three devices record visits and sync in a loop, sometimes at a
//!   random moment and sometimes just after it committed a push and before the device got the
//!   answer (a loopback proxy drops the answer). Every visit must end on the server exactly once
//!   (one row at version 1, one `edit` in the audit log), every outbox must drain, the server must
//!   reopen its database every time and every device must hold the server's visits of its cases.
//! - A device is killed while adding visits and while syncing: the store opens again, every id
//!   the CLI printed is there, whole, and the outbox drains to the server exactly once.
//! - A full disk on the device refuses `visit add` with the disk-full message and keeps every
//!   earlier record; a full disk on the server answers `storage_full` (HTTP 507), the device keeps
//!   its outbox, and both work again once space is freed.
//!
//! Seeds: `DONGHANH_FAULT_SEED=N` replays a run's choices (each test prints its seed): the
//! delays, which kills lose an answer, which visits go where; how the processes interleave
//! still depends on the machine's load, which is the point of running it often;
//! `DONGHANH_FAULT_KILLS=N` sets how many times the server is killed (default 8) and
//! `DONGHANH_FAULT_DEVICE_KILLS=N` how many device processes are killed (default 6), for longer
//! opt-in runs. The tmpfs tests need root (they run as root in CI); outside CI without root they
//! are skipped with a loud message, in CI they fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    // The seed and the figures of a run are printed for whoever replays or reports it.
    clippy::print_stderr
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const PIN: &str = "246810";
/// The demo dataset's password (`donghanh-server demo`).
const PASSWORD: &str = "donghanh-demo";
const VOLUNTEERS: [&str; 3] = ["tnv.hoa", "tnv.lan", "tnv.binh"];

// ---------------------------------------------------------------------------------------------
// Seeds

/// SplitMix64: a seeded sequence, so that a failing run is replayed from the seed it printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number")),
        Err(_) => default,
    }
}

fn seeded(test: &str) -> Rng {
    let seed = env_number(
        "DONGHANH_FAULT_SEED",
        u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
        ),
    );
    eprintln!("{test}: seed {seed} (replay with DONGHANH_FAULT_SEED={seed})");
    Rng(seed)
}

// ---------------------------------------------------------------------------------------------
// Processes

fn server_binary() -> PathBuf {
    let cli = Path::new(env!("CARGO_BIN_EXE_donghanh"));
    let server = cli.with_file_name(format!("donghanh-server{}", std::env::consts::EXE_SUFFIX));
    assert!(
        server.is_file(),
        "the server binary is missing at {}: these tests run the real `donghanh-server` next to \
         `donghanh`; build both with `cargo test --workspace` or `cargo build -p donghanh-server`",
        server.display()
    );
    server
}

fn cli(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_donghanh"));
    cmd.arg("--data")
        .arg(dir)
        .args(args)
        .env("DONGHANH_PIN", PIN)
        .env_remove("DONGHANH_PASSWORD");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    cli(dir, args).output().unwrap()
}

fn text(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn pending(dir: &Path) -> u64 {
    text(&run(dir, &["pending"])).trim().parse().unwrap()
}

/// Visit ids and notes held by a device for its people.
fn device_visits(dir: &Path, people: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in people {
        for line in text(&run(dir, &["visit", "list", "--person", p])).lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line:?}");
            out.insert(cols[0].to_owned(), cols[3].to_owned());
        }
    }
    out
}

fn people(dir: &Path) -> Vec<String> {
    text(&run(dir, &["person", "list"]))
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

/// Adds a visit offline and returns its id.
fn add_visit(dir: &Path, person: &str, notes: &str) -> String {
    let id = text(&run(
        dir,
        &["visit", "add", "--person", person, "--notes", notes],
    ))
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "{id:?}");
    id
}

/// Syncs until the outbox is empty; every attempt must succeed (the server is up).
fn drain(dir: &Path) {
    for _ in 0..5 {
        let o = run(dir, &["sync"]);
        assert!(o.status.success(), "sync failed: {}", stderr(&o));
        if pending(dir) == 0 {
            return;
        }
    }
    panic!("the outbox of {} did not drain in 5 syncs", dir.display());
}

/// The real server on 127.0.0.1, on a data directory that outlives its processes.
struct Server {
    dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    addr: Option<SocketAddr>,
    starts: u32,
}

impl Server {
    /// A new data directory with the demo commune (three volunteers, a supervisor).
    fn demo(dir: &Path, log: &Path) -> Server {
        let o = Command::new(server_binary())
            .arg("--data")
            .arg(dir)
            .arg("demo")
            .output()
            .unwrap();
        assert!(o.status.success(), "demo: {}", stderr(&o));
        Server {
            dir: dir.to_owned(),
            log: log.to_owned(),
            child: None,
            addr: None,
            starts: 0,
        }
    }

    /// Starts the server on a free port and waits (at most 60 s) until it listens.
    fn start(&mut self) -> SocketAddr {
        let starts = self.starts + 1;
        self.try_start()
            .unwrap_or_else(|log| panic!("start {starts}: the server did not listen: {log}"))
    }

    /// Starts the server; `Err` with its log if it exits (or hangs 60 s) before it listens.
    fn try_start(&mut self) -> Result<SocketAddr, String> {
        assert!(self.child.is_none(), "already running");
        let logged = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(server_binary())
            .arg("--data")
            .arg(&self.dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.starts += 1;
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            self.kill();
            let log = std::fs::read(&self.log).unwrap_or_default();
            let start = usize::try_from(logged).unwrap().min(log.len());
            return Err(String::from_utf8_lossy(&log[start..]).into_owned());
        };
        let addr: SocketAddr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        self.addr = Some(addr);
        Ok(addr)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr.unwrap())
    }

    /// SIGKILL, and reaps the process.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Still running (not crashed).
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    fn admin(&self, args: &[&str]) -> Output {
        Command::new(server_binary())
            .arg("--data")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.dir.join("server.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn enroll(dir: &Path, url: &str, username: &str) {
    let o = cli(
        dir,
        &[
            "enroll",
            "--server",
            url,
            "--username",
            username,
            "--label",
            "fault test",
        ],
    )
    .env("DONGHANH_PASSWORD", PASSWORD)
    .output()
    .unwrap();
    text(&o);
}

/// The server's view of visits, read from its database: id → (scope, version, deleted).
fn server_visits(server: &Server) -> BTreeMap<String, (String, i64, i64)> {
    let db = server.db();
    let mut stmt = db
        .prepare("SELECT id, scope, version, deleted FROM records WHERE kind = 'visit'")
        .unwrap();
    stmt.query_map([], |r| {
        let id: Vec<u8> = r.get(0)?;
        Ok((
            uuid::Uuid::from_slice(&id).unwrap().to_string(),
            (r.get(1)?, r.get(2)?, r.get(3)?),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every visit in `ids` is on the server exactly once: one live row at version 1, and one
/// `edit` in the audit log (a replay applied twice would write a second one or a version 2).
fn assert_exactly_once(server: &Server, ids: &BTreeSet<String>) {
    let visits = server_visits(server);
    let db = server.db();
    for id in ids {
        let (_, version, deleted) = visits
            .get(id)
            .unwrap_or_else(|| panic!("visit {id} was lost"));
        assert_eq!((*version, *deleted), (1, 0), "visit {id}");
        let blob = uuid::Uuid::parse_str(id).unwrap().as_bytes().to_vec();
        let edits: i64 = db
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'edit' AND record = ?1",
                [blob],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(edits, 1, "visit {id} applied {edits} times");
    }
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let verify = server.admin(&["admin", "audit", "verify"]);
    assert!(text(&verify).starts_with("intact "), "{}", stderr(&verify));
}

/// Each device holds exactly the server's visits of the people it holds; returns what each
/// holds.
fn assert_converged(server: &Server, devices: &[Device]) -> Vec<BTreeMap<String, String>> {
    let visits = server_visits(server);
    let mut all = Vec::new();
    for d in devices {
        let held = device_visits(&d.dir, &d.people);
        let scopes: BTreeSet<String> = d.people.iter().map(|p| format!("person:{p}")).collect();
        let expected: BTreeSet<&String> = visits
            .iter()
            .filter(|(_, (scope, _, deleted))| scopes.contains(scope) && *deleted == 0)
            .map(|(id, _)| id)
            .collect();
        let held_ids: BTreeSet<&String> = held.keys().collect();
        assert_eq!(held_ids, expected, "{} differs from the server", d.name);
        all.push(held);
    }
    all
}

/// Whether a failed command failed the way a device without its server should: one line that
/// says the network failed, with nothing lost.
fn is_network_failure(o: &Output) -> bool {
    let e = stderr(o);
    !o.status.success()
        && e.lines().count() == 1
        && e.contains("không kết nối được máy chủ; dữ liệu vẫn được giữ trên máy")
}

struct Device {
    name: String,
    dir: PathBuf,
    people: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// A proxy that can lose the answer to a push

/// What the proxy's trap waits for: nothing, the answer to a push, or to a token refresh.
const TRAP_NONE: u8 = 0;
const TRAP_PUSH: u8 = 1;
const TRAP_TOKEN: u8 = 2;

/// A TCP proxy on 127.0.0.1 between devices and the server (whose port changes at each
/// restart). Armed, it lets the next push (or token refresh) reach the server and drops the
/// connection when the answer comes back: the server committed, the device never heard.
struct Proxy {
    addr: SocketAddr,
    upstream: Arc<Mutex<SocketAddr>>,
    armed: Arc<AtomicU8>,
    sprung: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream: Arc::new(Mutex::new(upstream)),
            armed: Arc::new(AtomicU8::new(TRAP_NONE)),
            sprung: Arc::new(AtomicU32::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (upstream, armed, sprung, stop) = (
            proxy.upstream.clone(),
            proxy.armed.clone(),
            proxy.sprung.clone(),
            proxy.stop.clone(),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let to = *upstream.lock().unwrap();
                        let (armed, sprung) = (armed.clone(), sprung.clone());
                        thread::spawn(move || relay(client, to, &armed, &sprung));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => panic!("proxy accept: {e}"),
                }
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn relay(client: TcpStream, to: SocketAddr, armed: &AtomicU8, sprung: &AtomicU32) {
    let Ok(server) = TcpStream::connect(to) else {
        // The server is down: the device sees its connection closed.
        return;
    };
    // The kind of the request whose answer comes next (HTTP/1.1: one at a time).
    let asked = Arc::new(AtomicU8::new(TRAP_NONE));
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let seen = asked.clone();
    let up = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match c_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if buf[..n].windows(13).any(|w| w == b"POST /v1/push") {
                seen.store(TRAP_PUSH, Ordering::SeqCst);
            } else if buf[..n].windows(14).any(|w| w == b"POST /v1/token") {
                seen.store(TRAP_TOKEN, Ordering::SeqCst);
            }
            if s_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut s_read, mut c_write) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let kind = asked.swap(TRAP_NONE, Ordering::SeqCst);
        if kind != TRAP_NONE
            && armed
                .compare_exchange(kind, TRAP_NONE, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            // The request was handled and its answer is here: lose it.
            sprung.fetch_add(1, Ordering::SeqCst);
            let _ = c_write.shutdown(std::net::Shutdown::Both);
            let _ = s_read.shutdown(std::net::Shutdown::Both);
            break;
        }
        if c_write.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}

// ---------------------------------------------------------------------------------------------
// 1. The server killed during pushes

#[derive(Default)]
struct Tally {
    visits: BTreeSet<String>,
    syncs_ok: u32,
    syncs_failed: u32,
}

#[test]
fn server_killed_during_pushes_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let mut rng = seeded("server_killed_during_pushes");
    let kills = env_number("DONGHANH_FAULT_KILLS", 8);
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::demo(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let proxy = Proxy::start(server.start());

    let mut devices = Vec::new();
    for name in VOLUNTEERS {
        let dir = tmp.path().join(name);
        enroll(&dir, &proxy.url(), name);
        text(&run(&dir, &["sync"]));
        let people = people(&dir);
        assert!(!people.is_empty(), "{name} holds no case");
        devices.push(Device {
            name: name.to_owned(),
            dir,
            people,
        });
    }

    // Each device: add one to three visits offline, then sync; again, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(n, d)| {
            let (dir, people, stop) = (d.dir.clone(), d.people.clone(), stop.clone());
            let mut rng = Rng(rng.next());
            thread::spawn(move || {
                let mut tally = Tally::default();
                for round in 0..400 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    for k in 0..rng.range(1, 4) {
                        let person =
                            &people[usize::try_from(rng.range(0, 100)).unwrap() % people.len()];
                        let notes = format!("fault test: device {n} round {round} visit {k}");
                        tally.visits.insert(add_visit(&dir, person, &notes));
                    }
                    let o = run(&dir, &["sync"]);
                    if o.status.success() {
                        tally.syncs_ok += 1;
                    } else {
                        assert!(
                            is_network_failure(&o),
                            "sync failed otherwise: {}",
                            stderr(&o)
                        );
                        tally.syncs_failed += 1;
                    }
                }
                tally
            })
        })
        .collect();

    let (mut lost_pushes, mut lost_tokens) = (0, 0);
    for k in 0..kills {
        // Let the devices work a while, then kill: a third of the time just after a push
        // committed and its answer was dropped, a third just after a token refresh committed
        // and its answer was dropped, else at a random moment.
        thread::sleep(Duration::from_millis(rng.range(100, 800)));
        let trap = [TRAP_NONE, TRAP_PUSH, TRAP_TOKEN][usize::try_from(rng.range(0, 3)).unwrap()];
        if trap != TRAP_NONE {
            let before = proxy.sprung.load(Ordering::SeqCst);
            proxy.armed.store(trap, Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(20);
            while proxy.sprung.load(Ordering::SeqCst) == before && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            proxy.armed.store(TRAP_NONE, Ordering::SeqCst);
            if proxy.sprung.load(Ordering::SeqCst) > before {
                if trap == TRAP_PUSH {
                    lost_pushes += 1;
                } else {
                    lost_tokens += 1;
                }
            }
        }
        assert!(server.alive(), "kill {k}: the server died by itself");
        server.kill();
        // Down for a moment: some syncs find no server at all.
        thread::sleep(Duration::from_millis(rng.range(0, 400)));
        let addr = server.start();
        *proxy.upstream.lock().unwrap() = addr;
    }
    stop.store(true, Ordering::SeqCst);
    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    for d in &devices {
        drain(&d.dir);
    }
    // Every device pulls what the others pushed.
    for d in &devices {
        text(&run(&d.dir, &["sync"]));
    }
    // One more kill with everything at rest: the database opens again.
    server.kill();
    server.start();
    server.kill();

    let all: BTreeSet<String> = tallies.iter().flat_map(|t| t.visits.clone()).collect();
    assert_exactly_once(&server, &all);
    let held = assert_converged(&server, &devices);
    // Every device holds its own visits with the notes it wrote.
    for ((d, t), held) in devices.iter().zip(&tallies).zip(&held) {
        for id in &t.visits {
            assert!(
                held.get(id)
                    .is_some_and(|n| n.starts_with("fault test: device")),
                "{} lost its visit {id}",
                d.name
            );
        }
    }
    // Every start and failure is in the log: no name of a person held, no visit notes.
    let log = std::fs::read_to_string(&server.log).unwrap();
    for d in &devices {
        for line in text(&run(&d.dir, &["person", "list"])).lines() {
            let name = line.split('\t').nth(1).unwrap();
            assert!(!log.contains(name), "the server log holds a person's name");
        }
    }
    assert!(
        !log.contains("fault test:"),
        "the server log holds visit notes"
    );
    eprintln!(
        "server_killed_during_pushes: {} kills ({} after a committed push whose answer was lost, \
         {} after a committed token refresh whose answer was lost), {} server starts, {} devices, \
         {} visits, {} syncs ok, {} syncs failed on the kill, {:.1} s",
        kills,
        lost_pushes,
        lost_tokens,
        server.starts,
        devices.len(),
        all.len(),
        tallies.iter().map(|t| t.syncs_ok).sum::<u32>(),
        tallies.iter().map(|t| t.syncs_failed).sum::<u32>(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A device killed while writing and while syncing

/// Spawns `args` on the device and SIGKILLs it after `after`; returns what it printed, if it
/// finished first.
fn kill_after(dir: &Path, args: &[&str], after: Duration) -> Option<Output> {
    let mut child = cli(dir, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let o = child.wait_with_output().unwrap();
    // A process that finished between the last look and the kill reports success.
    o.status.success().then_some(o)
}

#[test]
fn device_killed_while_writing_and_syncing_keeps_every_printed_record() {
    let started = Instant::now();
    let mut rng = seeded("device_killed");
    let kills = env_number("DONGHANH_FAULT_DEVICE_KILLS", 6);
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::demo(&tmp.path().join("server"), &tmp.path().join("server.log"));
    server.start();
    let dir = tmp.path().join("device");
    enroll(&dir, &server.url(), "tnv.hoa");
    text(&run(&dir, &["sync"]));
    // One person's visits: one `visit list` reads them all back.
    let person = people(&dir).swap_remove(0);
    let one = std::slice::from_ref(&person);

    // How long one add and one sync of a few visits take here, to aim the kills inside them
    // (the write comes at the end of an add, after the PIN is stretched).
    let mut printed: BTreeMap<String, String> = BTreeMap::new();
    let n = std::cell::Cell::new(0);
    let add = |printed: &mut BTreeMap<String, String>| {
        n.set(n.get() + 1);
        let notes = format!("fault test: visit {}", n.get());
        let t = Instant::now();
        printed.insert(add_visit(&dir, &person, &notes), notes);
        t.elapsed()
    };
    let add_time = add(&mut printed);
    add(&mut printed);
    let t = Instant::now();
    text(&run(&dir, &["sync"]));
    let sync_time = t.elapsed();

    // The store opens (no corruption, no lock left behind), every printed record is there,
    // whole (its notes decrypt to what was written), and the outbox holds what it should.
    let check = |printed: &BTreeMap<String, String>| {
        let held = device_visits(&dir, one);
        for (id, notes) in printed {
            assert_eq!(held.get(id), Some(notes), "visit {id} after a kill");
        }
        (held, pending(&dir))
    };
    let aim = |rng: &mut Rng, took: Duration, from: u64, to: u64| {
        let micros = u64::try_from(took.as_micros()).unwrap();
        Duration::from_micros(rng.range(micros * from / 100, micros * to / 100))
    };

    let (mut write_kills, mut sync_kills, mut finished_anyway) = (0, 0, 0);
    let mut unprinted_kept = 0;
    for k in 0..kills {
        // Aimed by the add just before it (the machine's load changes); a process that
        // finished first is tried again with an earlier kill, at most four times.
        let took = add(&mut printed);
        for attempt in 0..4 {
            let (held_before, pending_before) = check(&printed);
            n.set(n.get() + 1);
            let notes = format!("fault test: visit {}", n.get());
            let args = ["visit", "add", "--person", &person, "--notes", &notes];
            let after = aim(&mut rng, took, 50, 105).mul_f64(0.7_f64.powi(attempt));
            if let Some(o) = kill_after(&dir, &args, after) {
                finished_anyway += 1;
                printed.insert(text(&o).trim().to_owned(), notes);
                continue;
            }
            write_kills += 1;
            // Not printed: written whole with its outbox entry, or not at all.
            let (held, queued) = check(&printed);
            let kept = held.len() - held_before.len();
            assert!(kept <= 1);
            assert_eq!(
                queued,
                pending_before + u64::try_from(kept).unwrap(),
                "record and outbox disagree"
            );
            if kept == 1 {
                unprinted_kept += 1;
                let (id, notes) = held
                    .into_iter()
                    .find(|(id, _)| !held_before.contains_key(id))
                    .filter(|(_, kept_notes)| *kept_notes == notes)
                    .expect("the kept visit is the killed one, whole");
                printed.insert(id, notes);
            }
            break;
        }

        // A sync killed at a random moment, every other round (again earlier, at most three
        // times, if it finished first; then with a new visit to push).
        if k % 2 == 1 {
            for attempt in 0..3 {
                let (_, queued_before) = check(&printed);
                let after = aim(&mut rng, sync_time, 15, 75).mul_f64(0.6_f64.powi(attempt));
                if kill_after(&dir, &["sync"], after).is_none() {
                    sync_kills += 1;
                    let (_, queued) = check(&printed);
                    assert!(queued <= queued_before);
                    break;
                }
                finished_anyway += 1;
                add(&mut printed);
            }
        }
    }

    drain(&dir);
    let (held, _) = check(&printed);
    server.kill();
    // Every visit this test wrote is on the server exactly once.
    let mine: BTreeSet<String> = held
        .iter()
        .filter(|(_, notes)| notes.starts_with("fault test:"))
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(mine, printed.keys().cloned().collect());
    assert_exactly_once(&server, &mine);
    eprintln!(
        "device_killed: {write_kills} kills during visit add ({unprinted_kept} of them after the \
         commit), {sync_kills} kills during sync, {finished_anyway} finished before the kill, \
         {} visits, add {:.0} ms, sync {:.0} ms, {:.1} s",
        mine.len(),
        add_time.as_secs_f64() * 1000.0,
        sync_time.as_secs_f64() * 1000.0,
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A full disk

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped (even on failure).
struct Tmpfs {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when mounting is impossible outside CI (loudly); in CI that fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir,
                _parent: parent,
            }),
            other => {
                let why = match other {
                    Ok(o) => stderr(&o),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must be able to mount a tmpfs (run as root): {why}"
                );
                eprintln!(
                    "\n!!! SKIPPED: cannot mount a tmpfs here ({}); the full-disk tests need \
                     root. They run in CI. !!!\n",
                    why.trim()
                );
                None
            }
        }
    }

    /// Fills the file system to the last byte with a filler file.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut size = chunk.len();
        // Bounded: a tmpfs of a few MiB fills in a few hundred writes.
        for _ in 0..100_000 {
            match f.write(&chunk[..size]) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                    if size == 1 {
                        return path;
                    }
                    size = (size / 2).max(1);
                }
                Err(e) => panic!("filling: {e}"),
            }
        }
        panic!("the file system did not fill");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let o = Command::new("umount").arg(&self.dir).output();
        if !o.is_ok_and(|o| o.status.success()) {
            // Something still holds a file there: detach it now, freed when released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[test]
fn full_disk_on_the_device_refuses_the_write_and_keeps_every_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::demo(&tmp.path().join("server"), &tmp.path().join("server.log"));
    server.start();
    let Some(fs) = Tmpfs::mount("8m") else {
        return;
    };
    let dir = fs.dir.join("device");
    enroll(&dir, &server.url(), "tnv.lan");
    text(&run(&dir, &["sync"]));
    let people = people(&dir);
    let mut printed = BTreeMap::new();
    for n in 0..3 {
        let notes = format!("fault test: before the disk filled {n}");
        printed.insert(add_visit(&dir, &people[n % people.len()], &notes), notes);
    }
    let before = pending(&dir);

    let filler = fs.fill();
    let o = run(
        &dir,
        &[
            "visit",
            "add",
            "--person",
            &people[0],
            "--notes",
            "fault test: on a full disk",
        ],
    );
    assert!(!o.status.success(), "a visit was saved on a full disk");
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e:?}");
    assert!(
        e.starts_with(
            "lỗi: bộ nhớ thiết bị đã đầy; chưa lưu gì | error: the device storage is full"
        ),
        "{e:?}"
    );
    assert!(!e.contains("fault test"), "the error repeats the notes");
    // Nothing was written, and the store still opens and reads on the full disk.
    assert_eq!(pending(&dir), before);
    let held = device_visits(&dir, &people);
    for (id, notes) in &printed {
        assert_eq!(held.get(id), Some(notes));
    }
    assert!(!held.values().any(|n| n.contains("on a full disk")));

    // Space freed: the same add works, and everything syncs once.
    std::fs::remove_file(filler).unwrap();
    let notes = "fault test: after space was freed".to_owned();
    printed.insert(add_visit(&dir, &people[0], &notes), notes);
    drain(&dir);
    let held = device_visits(&dir, &people);
    for (id, notes) in &printed {
        assert_eq!(held.get(id), Some(notes));
    }
    server.kill();
    assert_exactly_once(&server, &printed.keys().cloned().collect());
}

#[test]
fn full_disk_on_the_server_answers_storage_full_and_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount("16m") else {
        return;
    };
    let mut server = Server::demo(&fs.dir.join("server"), &tmp.path().join("server.log"));
    // Through a proxy: the restarted server listens on another port.
    let proxy = Proxy::start(server.start());
    let dir = tmp.path().join("device");
    enroll(&dir, &proxy.url(), "tnv.binh");
    text(&run(&dir, &["sync"]));
    let people = people(&dir);
    let mut printed = BTreeSet::new();
    for n in 0..4 {
        printed.insert(add_visit(
            &dir,
            &people[n % people.len()],
            &format!("fault test: pushed to a full server {n}"),
        ));
    }
    let before = pending(&dir);
    assert!(before >= 4);

    let filler = fs.fill();
    let refused = |dir: &Path| {
        let o = run(dir, &["sync"]);
        assert!(
            !o.status.success(),
            "a sync succeeded on a full server disk"
        );
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{e:?}");
        assert!(
            e.starts_with("lỗi: bộ nhớ của máy chủ đã đầy;")
                && e.contains("| error: the server refused: storage_full: "),
            "{e:?}"
        );
        assert_eq!(pending(dir), before, "the outbox changed");
    };
    for _ in 0..2 {
        refused(&dir);
        assert!(server.alive(), "the server died on a full disk");
    }
    // Reads still answer.
    let status = raw_status(server.addr.unwrap());
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");

    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        log.contains("the database's disk is full"),
        "the operator is not told"
    );

    // Killed while full, restarted on the full disk: it either serves and refuses writes the
    // same way (its WAL index survived the kill), or stops at once naming the full disk (not a
    // bare "disk I/O error"). Once space is freed the database opens and the sync succeeds.
    server.kill();
    match server.try_start() {
        Ok(addr) => {
            *proxy.upstream.lock().unwrap() = addr;
            refused(&dir);
            server.kill();
        }
        Err(log) => assert!(
            log.trim_end()
                .ends_with("error: the database's disk is full"),
            "{log:?}"
        ),
    }
    std::fs::remove_file(filler).unwrap();
    *proxy.upstream.lock().unwrap() = server.start();
    drain(&dir);
    server.kill();
    assert_exactly_once(&server, &printed);
}

/// The first line of a plain `GET /healthz` (reads stay possible on a full disk).
fn raw_status(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line
}
