//! `donghanh-sim`: the deterministic simulation of issue 6 (DESIGN.md §7).
//!
//! One server and N devices in one process. The server is the real `donghanh-server` router
//! over the real SQLite store (a file in a temporary directory); the devices are real
//! `donghanh-core` devices on real encrypted stores. Between them sits [`Net`], a
//! [`Transport`] that hands each request to the router in process, without a socket, and that
//! loses, duplicates, holds back (to deliver it later, out of order), cuts, or answers it and
//! then crashes the server, as a seeded random generator decides.
//!
//! A seeded scheduler ([`run`]) interleaves offline edits on the phones, sync rounds, new cases,
//! reassignments, device revocations, server restarts, tombstone compaction, late delivery of
//! held requests and app restarts. Then the network goes quiet, every phone syncs until it has
//! nothing left to do, and the invariants are checked:
//!
//! 1. no acknowledged mutation is lost or applied twice: each record's server version is the
//!    number of mutations acknowledged for it (a range when a revoked phone held some unsent);
//! 2. every phone converges to the server's state for the scopes its user holds (same records,
//!    same versions, same contents);
//! 3. no phone holds a row or a key of a scope it no longer holds;
//! 4. every outbox drains, and nothing is refused: each change is one its user may make on
//!    data the phone held when it was made (work done offline before a reassignment arrived
//!    is still taken);
//! 5. no panic, and a phone revoked is wiped at its next contact.
//!
//! A run is a function of its seed alone: every choice is drawn from the seed's generator, over
//! lists kept in creation order (never in id order: ids are random), so a failing seed replays
//! exactly (`DONGHANH_SIM_SEED=<seed>`), with its trace.

// A harness: a set-up step that cannot go on panics, and [`run`] catches it as the seed's failure.
#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use axum::body::Body;
use chrono::{Duration, Utc};
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, Id, OrgUnit, OrgUnitKind, Person, PriorRehab, Record, Role,
    Sex, User, Visit, vn_date,
};
use donghanh_core::store::CreateOptions;
use donghanh_core::sync::client::{
    Login, Method, NoListener, Transport, WireRequest, WireResponse,
};
use donghanh_core::{Device, Error, FileKeyStore};
use donghanh_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{StoredUser, SyncStore};
use donghanh_server::{AppState, Config, router};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};
use tower::ServiceExt as _;

/// The password of every simulated account.
const PASSWORD: &str = "mật-khẩu-mô-phỏng";
/// The PIN of every simulated phone.
const PIN: &str = "135790";
/// PBKDF2 iterations of the simulated accounts and phones: the real code paths, cheap keys.
const CHEAP_ITERATIONS: u32 = 1_000;
/// The base address the phones enrol with (the in-process network ignores it).
const SERVER: &str = "http://sim.invalid";

/// What a run is made of.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scheduler steps before the network goes quiet.
    pub steps: usize,
    /// Volunteer phones (the first volunteer has two phones when this is 3 or more).
    pub volunteer_phones: usize,
    /// Chance, in thousandths, that an exchange meets a fault.
    pub fault_per_mille: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 60,
            volunteer_phones: 3,
            fault_per_mille: 250,
        }
    }
}

/// What a run did (summed over runs for RELIABILITY.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Scheduler steps taken.
    pub steps: u64,
    /// Sync rounds started (including the quiet ones).
    pub syncs: u64,
    /// Sync rounds that failed on a fault.
    pub failed_syncs: u64,
    /// Exchanges with the server.
    pub exchanges: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Server restarts (scheduled ones and crashes).
    pub restarts: u64,
    /// Local mutations made on phones.
    pub mutations: u64,
    /// Mutations the server refused (kept in the phone's rejected list).
    pub rejected: u64,
    /// Reassignments.
    pub reassignments: u64,
    /// Devices revoked.
    pub revocations: u64,
    /// Scopes purged from phones.
    pub purges: u64,
    /// Conflicts the supervisor resolved (kept or restored).
    pub resolved: u64,
    /// A digest of the trace (two runs of one seed must agree).
    pub trace_digest: String,
    /// The trace of this run (not summed by [`Outcome::add`]).
    pub trace: Vec<String>,
}

impl Outcome {
    /// Adds another run's figures to these.
    pub fn add(&mut self, other: &Outcome) {
        self.steps += other.steps;
        self.syncs += other.syncs;
        self.failed_syncs += other.failed_syncs;
        self.exchanges += other.exchanges;
        for (k, v) in &other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        self.restarts += other.restarts;
        self.mutations += other.mutations;
        self.rejected += other.rejected;
        self.reassignments += other.reassignments;
        self.revocations += other.revocations;
        self.purges += other.purges;
        self.resolved += other.resolved;
    }

    /// Every fault injected.
    #[must_use]
    pub fn fault_total(&self) -> u64 {
        self.faults.values().sum()
    }
}

/// A run that broke an invariant or panicked: its seed, what broke, and its trace.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed (replay it with `DONGHANH_SIM_SEED`).
    pub seed: u64,
    /// What broke.
    pub message: String,
    /// What happened, step by step.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "simulation seed {} failed: {}", self.seed, self.message)?;
        writeln!(
            f,
            "replay: DONGHANH_SIM_SEED={} cargo test -p donghanh-sim --test simulation -- --nocapture",
            self.seed
        )?;
        let skip = self.trace.len().saturating_sub(80);
        if skip > 0 {
            writeln!(f, "… {skip} earlier trace lines")?;
        }
        for line in &self.trace[skip..] {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// A password hash in the server's own format, at [`CHEAP_ITERATIONS`].
fn cheap_hash(password: &str) -> String {
    donghanh_server::auth::hash_password_with(password, CHEAP_ITERATIONS).expect("hash")
}

/// The real server, in process: its router over its SQLite store.
struct Server {
    dir: PathBuf,
    rt: tokio::runtime::Runtime,
    state: Option<AppState<SqliteStore>>,
    router: Option<axum::Router>,
}

impl Server {
    fn start(dir: &Path) -> Server {
        ServerKeys::create(&dir.join("server.key")).expect("server key");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut server = Server {
            dir: dir.to_owned(),
            rt,
            state: None,
            router: None,
        };
        server.open();
        server
    }

    /// Opens the store and builds the router, as the binary does when it starts.
    fn open(&mut self) {
        let keys = ServerKeys::load(&self.dir.join("server.key")).expect("server key");
        let store = SqliteStore::open(&self.dir.join("server.db"), keys).expect("server store");
        let state = AppState {
            store: std::sync::Arc::new(store),
            config: std::sync::Arc::new(Config {
                compact_interval_seconds: 0,
                ..Config::default()
            }),
            metrics: std::sync::Arc::default(),
            dummy_hash: cheap_hash("no such password"),
            // Cleared by a restart, as in the real server: the per-address login limit
            // lives in memory.
            login_addresses: std::sync::Arc::default(),
        };
        self.router = Some(router(state.clone()));
        self.state = Some(state);
    }

    /// Stops and starts again on the same files: everything held in memory is gone.
    fn restart(&mut self) {
        self.router = None;
        self.state = None;
        self.open();
    }

    fn store(&self) -> &SqliteStore {
        &self.state.as_ref().expect("server state").store
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// One exchange through the real router.
    fn deliver(&self, req: &WireRequest) -> WireResponse {
        let mut builder = axum::http::Request::builder()
            .method(match req.method {
                Method::Get => axum::http::Method::GET,
                Method::Post => axum::http::Method::POST,
            })
            .uri(&req.path)
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(token) = &req.bearer {
            builder = builder.header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match &req.body {
            Some(bytes) => {
                builder = builder.header(axum::http::header::CONTENT_TYPE, "application/json");
                Body::from(bytes.clone())
            }
            None => Body::empty(),
        };
        let request = builder.body(body).expect("request");
        let router = self.router.clone().expect("router");
        self.rt.block_on(async move {
            let resp = match router.oneshot(request).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let status = resp.status().as_u16();
            let protocol = resp
                .headers()
                .get(PROTOCOL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("response body");
            WireResponse {
                status,
                protocol,
                body: body.to_vec(),
            }
        })
    }
}

/// The kinds of fault the network injects.
const FAULTS: [&str; 7] = [
    "request lost",
    "response lost",
    "duplicated",
    "held back",
    "request cut",
    "response cut",
    "server crashed after commit",
];

struct NetInner {
    server: Server,
    rng: StdRng,
    faulty: bool,
    per_mille: u32,
    held: Vec<WireRequest>,
    exchanges: u64,
    faults: BTreeMap<&'static str, u64>,
    restarts: u64,
    trace: Vec<String>,
}

/// The network between the phones and the server (see the crate notes).
pub struct Net {
    inner: Mutex<NetInner>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Net")
    }
}

impl Net {
    fn lock(&self) -> std::sync::MutexGuard<'_, NetInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The first path segment after `/v1/` (what a trace line shows of a request).
fn route_of(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or(path);
    path.trim_start_matches("/v1/")
        .split('/')
        .next()
        .unwrap_or(path)
}

impl Transport for Net {
    fn exchange(&self, _server: &str, request: WireRequest) -> donghanh_core::Result<WireResponse> {
        let mut guard = self.lock();
        let n = &mut *guard;
        n.exchanges += 1;
        let per_mille = n.per_mille;
        let fault = (n.faulty && n.rng.random_ratio(per_mille, 1000))
            .then(|| FAULTS[n.rng.random_range(0..FAULTS.len())]);
        let route = route_of(&request.path).to_owned();
        let Some(fault) = fault else {
            return Ok(n.server.deliver(&request));
        };
        *n.faults.entry(fault).or_default() += 1;
        n.trace.push(format!("    net: {route}: {fault}"));
        let lost = || Err(Error::Network(format!("simulated: {fault}")));
        match fault {
            "request lost" => lost(),
            "response lost" => {
                let _ = n.server.deliver(&request);
                lost()
            }
            "duplicated" => {
                let _ = n.server.deliver(&request);
                Ok(n.server.deliver(&request))
            }
            "held back" => {
                n.held.push(request);
                lost()
            }
            "request cut" => {
                let mut request = request;
                if let Some(body) = &mut request.body {
                    let keep = n.rng.random_range(0..body.len().max(1));
                    body.truncate(keep);
                }
                Ok(n.server.deliver(&request))
            }
            "response cut" => {
                let mut resp = n.server.deliver(&request);
                let keep = n.rng.random_range(0..resp.body.len().max(1));
                resp.body.truncate(keep);
                Ok(resp)
            }
            _ => {
                let _ = n.server.deliver(&request);
                n.server.restart();
                n.restarts += 1;
                lost()
            }
        }
    }
}

/// A mutation a phone made, and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Still in the outbox (or, at the end, unknown: its phone was revoked with it unsent).
    Pending,
    /// The server acknowledged it.
    Acked,
    /// The server refused it (kept in the phone's rejected list).
    Rejected,
}

#[derive(Debug, Clone)]
struct Made {
    record: Id,
    seq: u64,
    fate: Fate,
}

struct Phone {
    label: String,
    user: usize,
    dir: PathBuf,
    device: Option<Device>,
    revoked: bool,
    seen_seq: u64,
    made: Vec<Made>,
}

impl Phone {
    fn device(&self) -> &Device {
        self.device.as_ref().expect("an open phone")
    }
}

struct Case {
    person: Id,
    assignment: Id,
    helper: usize,
}

struct SimUser {
    id: Id,
    username: String,
    role: Role,
}

/// One simulated world.
struct World {
    seed: u64,
    rng: StdRng,
    net: Net,
    tmp: tempfile::TempDir,
    users: Vec<SimUser>,
    phones: Vec<Phone>,
    cases: Vec<Case>,
    out: Outcome,
    edits: u64,
    /// Restores of a losing value by record: (answered, possibly applied).
    restores: HashMap<Id, (u64, u64)>,
}

type Check<T> = std::result::Result<T, String>;

fn err_code(e: &Error) -> String {
    match e {
        Error::Server { code, .. } => format!("server {code}"),
        Error::Network(_) => "network".into(),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

impl World {
    fn new(seed: u64, options: &Options) -> World {
        // Real SQLite files, in memory when the machine has a tmpfs (fsync on a disk would
        // be most of a run's time, and proves nothing here: the fault tests kill real
        // processes on real disks).
        let tmp = match std::env::var_os("DONGHANH_SIM_DIR") {
            Some(dir) => tempfile::tempdir_in(dir),
            None if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm"),
            None => tempfile::tempdir(),
        }
        .expect("tempdir");
        let server = Server::start(tmp.path());
        // Two streams from one seed: the scheduler's and the network's, so that a change in how
        // many exchanges a round makes does not shift every later scheduling choice.
        let mut rng = StdRng::seed_from_u64(seed);
        let net_rng = StdRng::seed_from_u64(rng.random::<u64>());
        let net = Net {
            inner: Mutex::new(NetInner {
                server,
                rng: net_rng,
                faulty: false,
                per_mille: options.fault_per_mille,
                held: Vec::new(),
                exchanges: 0,
                faults: BTreeMap::new(),
                restarts: 0,
                trace: Vec::new(),
            }),
        };
        let mut world = World {
            seed,
            rng,
            net,
            tmp,
            users: Vec::new(),
            phones: Vec::new(),
            cases: Vec::new(),
            out: Outcome::default(),
            edits: 0,
            restores: HashMap::new(),
        };
        world.build_commune(options);
        world
    }

    fn trace(&self, line: String) {
        self.net.lock().trace.push(line);
    }

    fn build_commune(&mut self, options: &Options) {
        let province = OrgUnit::new("Tỉnh Mô Phỏng", OrgUnitKind::Province, None);
        let commune = OrgUnit::new("Xã Mô Phỏng", OrgUnitKind::Commune, Some(province.id));
        let team = OrgUnit::new("Đội Mô Phỏng", OrgUnitKind::Team, Some(commune.id));
        let hash = cheap_hash(PASSWORD);
        let people = [
            ("gs.sim", Role::Supervisor),
            ("tnv.a", Role::Volunteer),
            ("tnv.b", Role::Volunteer),
        ];
        {
            let n = self.net.lock();
            for unit in [&province, &commune, &team] {
                n.server
                    .block_on(n.server.store().add_org_unit(unit.clone()))
                    .expect("org unit");
            }
            for (username, role) in people {
                let user = User::new(username, username, role, commune.id);
                self.users.push(SimUser {
                    id: user.id,
                    username: username.into(),
                    role,
                });
                n.server
                    .block_on(n.server.store().add_user(StoredUser {
                        user,
                        password_hash: hash.clone(),
                    }))
                    .expect("user");
            }
        }
        self.enroll(0);
        for i in 0..options.volunteer_phones {
            // tnv.a, tnv.b, tnv.a (a second phone), tnv.b…
            self.enroll(1 + i % 2);
        }
    }

    /// Enrols a new phone for `user` (over a quiet network: enrolment is not what is tested).
    fn enroll(&mut self, user: usize) -> usize {
        let label = format!(
            "{}#{}",
            self.users[user].username,
            self.phones.iter().filter(|p| p.user == user).count()
        );
        let dir = self.tmp.path().join(format!("phone-{}", self.phones.len()));
        std::fs::create_dir_all(&dir).expect("phone dir");
        let keystore = FileKeyStore::create(dir.join("device.key")).expect("device key");
        let faulty = std::mem::replace(&mut self.net.lock().faulty, false);
        let device = Device::enroll_via(
            &dir,
            &keystore,
            PIN,
            CreateOptions {
                pin_iterations: CHEAP_ITERATIONS,
            },
            &self.net,
            &Login {
                server: SERVER,
                username: &self.users[user].username,
                password: PASSWORD,
                label: "điện thoại mô phỏng",
            },
        )
        .expect("enrol");
        self.net.lock().faulty = faulty;
        self.trace(format!("enrol {label}"));
        self.phones.push(Phone {
            label,
            user,
            dir,
            device: Some(device),
            revoked: false,
            seen_seq: 0,
            made: Vec::new(),
        });
        self.phones.len() - 1
    }

    /// Records the mutations a local write just queued on `phone`.
    fn note_mutations(&mut self, phone: usize) -> Check<()> {
        let p = &mut self.phones[phone];
        let outbox = p
            .device()
            .store()
            .read(|r| r.outbox())
            .map_err(|e| format!("{}: outbox unreadable: {e}", p.label))?;
        for entry in outbox {
            if entry.client_seq > p.seen_seq {
                p.made.push(Made {
                    record: entry.record_id,
                    seq: entry.client_seq,
                    fate: Fate::Pending,
                });
                p.seen_seq = entry.client_seq;
                self.out.mutations += 1;
            }
        }
        Ok(())
    }

    /// Settles the fate of each mutation of `phone` from its outbox and rejected list.
    fn settle(&mut self, phone: usize) -> Check<()> {
        let p = &mut self.phones[phone];
        let device = p.device();
        let pending: BTreeSet<u64> = device
            .store()
            .read(|r| r.outbox())
            .map_err(|e| format!("{}: outbox unreadable: {e}", p.label))?
            .into_iter()
            .map(|e| e.client_seq)
            .collect();
        let rejected: BTreeSet<u64> = device
            .store()
            .read(|r| r.rejected())
            .map_err(|e| format!("{}: rejected list unreadable: {e}", p.label))?
            .into_iter()
            .map(|r| r.client_seq)
            .collect();
        for m in &mut p.made {
            let now = if pending.contains(&m.seq) {
                Fate::Pending
            } else if rejected.contains(&m.seq) {
                Fate::Rejected
            } else {
                Fate::Acked
            };
            if m.fate != Fate::Pending && now != m.fate {
                return Err(format!(
                    "{}: mutation {} went from {:?} to {:?}",
                    p.label, m.seq, m.fate, now
                ));
            }
            m.fate = now;
        }
        Ok(())
    }

    fn live_phones(&self) -> Vec<usize> {
        (0..self.phones.len())
            .filter(|&i| self.phones[i].device.is_some() && !self.phones[i].revoked)
            .collect()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.random_range(0..items.len())])
    }

    fn step(&mut self, n: usize) -> Check<()> {
        let roll = self.rng.random_range(0..100u32);
        let phones: Vec<usize> = (0..self.phones.len())
            .filter(|&i| self.phones[i].device.is_some())
            .collect();
        match roll {
            0..28 => {
                let Some(p) = self.pick(&phones) else {
                    return Ok(());
                };
                self.sync(n, p, false).map(|_| ())
            }
            28..40 => {
                let Some(p) = self.pick(&phones) else {
                    return Ok(());
                };
                self.visit(n, p)
            }
            40..60 => {
                let Some(p) = self.pick(&phones) else {
                    return Ok(());
                };
                self.edit(n, p)
            }
            60..64 => self.new_case(n),
            64..72 => self.reassign(n),
            72..76 => {
                let mut net = self.net.lock();
                net.server.restart();
                net.restarts += 1;
                net.trace.push(format!("{n}: server restart"));
                Ok(())
            }
            76..78 => {
                let mut net = self.net.lock();
                let removed = net
                    .server
                    .block_on(net.server.store().compact(Utc::now(), 14 * 24 * 3600))
                    .map_err(|e| format!("compaction failed: {e}"))?;
                net.trace.push(format!("{n}: compact: {removed} removed"));
                Ok(())
            }
            78..85 => {
                let mut net = self.net.lock();
                if net.held.is_empty() {
                    return Ok(());
                }
                let i = self.rng.random_range(0..net.held.len());
                let req = net.held.remove(i);
                let resp = net.server.deliver(&req);
                let line = format!(
                    "{n}: late delivery of {} -> {}",
                    route_of(&req.path),
                    resp.status
                );
                net.trace.push(line);
                if resp.status >= 500 {
                    return Err(format!("a late request got {}", resp.status));
                }
                Ok(())
            }
            85..90 => {
                let Some(p) = self.pick(&phones) else {
                    return Ok(());
                };
                self.reopen(n, p)
            }
            90..92 => self.revoke(n),
            92..97 => self.resolve(n),
            _ => {
                // Two phones sync back to back: edits cross on the server.
                let Some(a) = self.pick(&phones) else {
                    return Ok(());
                };
                let Some(b) = self.pick(&phones) else {
                    return Ok(());
                };
                self.sync(n, a, false)?;
                self.sync(n, b, false).map(|_| ())
            }
        }
    }

    fn sync(&mut self, n: usize, phone: usize, quiet: bool) -> Check<bool> {
        let Some(device) = &self.phones[phone].device else {
            // Wiped earlier in this step.
            return Ok(false);
        };
        self.out.syncs += 1;
        let result = device.sync_via(&self.net, &NoListener);
        let label = self.phones[phone].label.clone();
        match result {
            Ok(report) => {
                self.out.purges += report.purged as u64;
                self.out.rejected += report.rejected as u64;
                self.trace(format!(
                    "{n}: sync {label}: pushed {} rejected {} pulled {} purged {}",
                    report.pushed, report.rejected, report.pulled, report.purged
                ));
                self.settle(phone)?;
                Ok(true)
            }
            Err(Error::DeviceRevoked) => {
                self.trace(format!("{n}: sync {label}: revoked, wiped"));
                if !self.phones[phone].revoked {
                    return Err(format!("{label} was told it is revoked, and it is not"));
                }
                // The store is gone for good: reopening says so.
                let p = &mut self.phones[phone];
                p.device = None;
                match Device::open(&p.dir, &FileKeyStore::open(p.dir.join("device.key")), PIN) {
                    Err(Error::Wiped) => Ok(false),
                    Err(e) => Err(format!("{label}: a wiped phone reopened with {e}")),
                    Ok(_) => Err(format!("{label}: a wiped phone reopened with its data")),
                }
            }
            Err(e) => {
                self.out.failed_syncs += 1;
                self.trace(format!("{n}: sync {label}: failed: {}", err_code(&e)));
                if quiet {
                    return Err(format!("{label}: sync failed on a quiet network: {e}"));
                }
                match e {
                    Error::Network(_) | Error::Server { .. } => {
                        self.settle(phone)?;
                        Ok(false)
                    }
                    other => Err(format!("{label}: sync failed with {other}")),
                }
            }
        }
    }

    /// One of the cases the phone holds now (in creation order, so the choice replays).
    fn held_case(&mut self, phone: usize) -> Option<(usize, Person)> {
        let device = self.phones[phone].device();
        let held: Vec<usize> = (0..self.cases.len())
            .filter(|&c| device.person(self.cases[c].person).is_ok())
            .collect();
        let c = self.pick(&held)?;
        let person = self.phones[phone]
            .device()
            .person(self.cases[c].person)
            .ok()?;
        Some((c, person))
    }

    fn visit(&mut self, n: usize, phone: usize) -> Check<()> {
        if self.users[self.phones[phone].user].role != Role::Volunteer {
            return Ok(());
        }
        let Some((c, _)) = self.held_case(phone) else {
            return Ok(());
        };
        let minutes = self.rng.random_range(5..600i64);
        let visit = Visit::new(
            self.cases[c].person,
            Utc::now() - Duration::minutes(minutes),
            "Ghi chú mô phỏng: gia đình hợp tác",
        );
        let label = self.phones[phone].label.clone();
        self.phones[phone]
            .device()
            .add_visit(&visit)
            .map_err(|e| format!("{label}: a visit was refused: {e}"))?;
        self.trace(format!("{n}: visit on {label} to case {c}"));
        self.note_mutations(phone)
    }

    fn edit(&mut self, n: usize, phone: usize) -> Check<()> {
        let Some((c, person)) = self.held_case(phone) else {
            return Ok(());
        };
        // Mostly the phone number: two phones editing one field is what makes conflicts.
        let phone_field = self.rng.random_bool(0.7);
        self.edit_field(n, phone, c, person, phone_field)?;
        // Half the time another phone holding the case edits the same field before either
        // syncs: the server merges them, and keeps the losing value as a conflict.
        if self.rng.random_bool(0.5) {
            let others: Vec<usize> = self
                .live_phones()
                .into_iter()
                .filter(|&p| {
                    p != phone && self.phones[p].device().person(self.cases[c].person).is_ok()
                })
                .collect();
            if let Some(other) = self.pick(&others) {
                let person = self.phones[other]
                    .device()
                    .person(self.cases[c].person)
                    .map_err(|e| format!("a held case did not read: {e}"))?;
                self.edit_field(n, other, c, person, phone_field)?;
            }
        }
        Ok(())
    }

    fn edit_field(
        &mut self,
        n: usize,
        phone: usize,
        c: usize,
        mut person: Person,
        phone_field: bool,
    ) -> Check<()> {
        self.edits += 1;
        let field = if phone_field {
            person.phone = Some(format!("09{:08}", self.edits));
            "phone"
        } else {
            person.address = Some(format!("Số {} đường Mô Phỏng", self.edits));
            "address"
        };
        let label = self.phones[phone].label.clone();
        self.phones[phone]
            .device()
            .update_record(&person)
            .map_err(|e| format!("{label}: an edit was refused: {e}"))?;
        self.trace(format!("{n}: edit {field} on {label} of case {c}"));
        self.note_mutations(phone)
    }

    fn supervisor_phone(&self) -> Option<usize> {
        self.live_phones()
            .into_iter()
            .find(|&p| self.users[self.phones[p].user].role == Role::Supervisor)
    }

    fn new_case(&mut self, n: usize) -> Check<()> {
        if self.cases.len() >= 6 {
            return Ok(());
        }
        let Some(sup) = self.supervisor_phone() else {
            return Ok(());
        };
        let helper = 1 + self.rng.random_range(0..2usize);
        let today = vn_date(Utc::now());
        let person = Person::new(
            format!("Người Mô Phỏng {}", self.cases.len()),
            chrono::NaiveDate::from_ymd_opt(1990, 1, 2).expect("date"),
            Sex::Female,
        );
        let episode = Episode::new(
            person.id,
            EpisodeKind::PostRehab,
            today - Duration::days(30),
        )
        .with_after(PriorRehab::Voluntary);
        let assignment = Assignment::new(person.id, episode.id, self.users[helper].id, today);
        let device = self.phones[sup].device();
        device
            .add_person(&person)
            .and_then(|_| device.add_episode(&episode))
            .and_then(|_| device.add_record(&assignment))
            .map_err(|e| format!("a new case was refused: {e}"))?;
        self.trace(format!(
            "{n}: new case {} for {}",
            self.cases.len(),
            self.users[helper].username
        ));
        self.cases.push(Case {
            person: person.id,
            assignment: assignment.id,
            helper,
        });
        self.note_mutations(sup)
    }

    fn reassign(&mut self, n: usize) -> Check<()> {
        let Some(sup) = self.supervisor_phone() else {
            return Ok(());
        };
        let idx: Vec<usize> = (0..self.cases.len()).collect();
        let Some(c) = self.pick(&idx) else {
            return Ok(());
        };
        let Ok(mut assignment) = self.phones[sup]
            .device()
            .record::<Assignment>(self.cases[c].assignment)
        else {
            return Ok(());
        };
        let to = if self.cases[c].helper == 1 { 2 } else { 1 };
        assignment.helper = Some(self.users[to].id);
        self.phones[sup]
            .device()
            .update_record(&assignment)
            .map_err(|e| format!("a reassignment was refused: {e}"))?;
        self.cases[c].helper = to;
        self.out.reassignments += 1;
        self.trace(format!(
            "{n}: reassign case {c} to {}",
            self.users[to].username
        ));
        self.note_mutations(sup)
    }

    /// The supervisor lists the open conflicts and resolves one, keeping the current value or
    /// restoring the one that lost (a change made by the server, counted as a mutation).
    fn resolve(&mut self, n: usize) -> Check<()> {
        let Some(sup) = self.supervisor_phone() else {
            return Ok(());
        };
        let list = match self.phones[sup].device().conflicts_via(&self.net) {
            Ok(list) => list,
            Err(e @ (Error::Network(_) | Error::Server { .. })) => {
                self.trace(format!("{n}: conflicts: failed: {}", err_code(&e)));
                return Ok(());
            }
            Err(e) => return Err(format!("listing conflicts failed with {e}")),
        };
        let Some(c) = self.pick(&(0..list.len()).collect::<Vec<_>>()) else {
            self.trace(format!("{n}: conflicts: none"));
            return Ok(());
        };
        let conflict = &list[c];
        let restore = self.rng.random_bool(0.5);
        let result =
            self.phones[sup]
                .device()
                .resolve_conflict_via(&self.net, conflict.id, restore);
        let entry = self.restores.entry(conflict.record_id).or_default();
        let told = match result {
            Ok(()) => {
                self.out.resolved += 1;
                if restore {
                    entry.0 += 1;
                    entry.1 += 1;
                }
                "ok".to_owned()
            }
            // Lost, late, or answered `not found` because a first delivery closed it: the
            // restore may have happened.
            Err(e @ (Error::Network(_) | Error::Server { .. } | Error::NotFound { .. })) => {
                if restore {
                    entry.1 += 1;
                }
                err_code(&e)
            }
            Err(e) => return Err(format!("resolving a conflict failed with {e}")),
        };
        self.trace(format!(
            "{n}: resolve conflict {c} of {} ({}): {told}",
            list.len(),
            if restore { "restore" } else { "keep" }
        ));
        Ok(())
    }

    fn reopen(&mut self, n: usize, phone: usize) -> Check<()> {
        let p = &mut self.phones[phone];
        p.device = None;
        let device = Device::open(&p.dir, &FileKeyStore::open(p.dir.join("device.key")), PIN)
            .map_err(|e| format!("{}: the store did not reopen: {e}", p.label))?;
        p.device = Some(device);
        let label = p.label.clone();
        self.trace(format!("{n}: app restart on {label}"));
        Ok(())
    }

    fn revoke(&mut self, n: usize) -> Check<()> {
        if self.out.revocations > 0 {
            return Ok(());
        }
        let volunteers: Vec<usize> = self
            .live_phones()
            .into_iter()
            .filter(|&p| self.users[self.phones[p].user].role == Role::Volunteer)
            .collect();
        let Some(phone) = self.pick(&volunteers) else {
            return Ok(());
        };
        self.settle(phone)?;
        let (device_id, _) = self.phones[phone]
            .device()
            .enrollment()
            .map_err(|e| format!("enrolment unreadable: {e}"))?
            .ok_or("a simulated phone is not enrolled")?;
        {
            let net = self.net.lock();
            net.server
                .block_on(
                    net.server
                        .store()
                        .revoke_device(Id::from(device_id), Utc::now()),
                )
                .map_err(|e| format!("revoking failed: {e}"))?;
        }
        self.phones[phone].revoked = true;
        self.out.revocations += 1;
        let label = self.phones[phone].label.clone();
        self.trace(format!("{n}: revoke {label}"));
        let user = self.phones[phone].user;
        self.enroll(user);
        Ok(())
    }

    /// The quiet end: held requests land, every phone syncs until nothing moves.
    fn quiesce(&mut self) -> Check<()> {
        {
            let mut net = self.net.lock();
            net.faulty = false;
            let held = std::mem::take(&mut net.held);
            for req in held {
                let resp = net.server.deliver(&req);
                let line = format!(
                    "quiet: late delivery of {} -> {}",
                    route_of(&req.path),
                    resp.status
                );
                net.trace.push(line);
                if resp.status >= 500 {
                    return Err(format!("a late request got {}", resp.status));
                }
            }
        }
        // Revoked phones learn it; then three rounds: pushes land, the supervisor's
        // reassignments reach the volunteers, purges are acknowledged.
        for phone in 0..self.phones.len() {
            if self.phones[phone].revoked && self.phones[phone].device.is_some() {
                if self.sync(usize::MAX, phone, false)? {
                    return Err(format!(
                        "{}: a revoked phone synced",
                        self.phones[phone].label
                    ));
                }
                if self.phones[phone].device.is_some() {
                    return Err(format!(
                        "{}: a revoked phone was not wiped",
                        self.phones[phone].label
                    ));
                }
            }
        }
        for _ in 0..3 {
            for phone in self.live_phones() {
                self.sync(usize::MAX, phone, true)?;
            }
        }
        Ok(())
    }

    /// The server's records for the scopes `phone`'s user holds: id → (kind, scope, version,
    /// record).
    fn server_view(&self, phone: usize) -> Check<ServerView> {
        let p = &self.phones[phone];
        let (device_id, user_id) = p
            .device()
            .enrollment()
            .map_err(|e| format!("enrolment unreadable: {e}"))?
            .ok_or("not enrolled")?;
        let user = Id::from(user_id);
        let device = Id::from(device_id);
        let net = self.net.lock();
        let store = net.server.store();
        let scopes = net
            .server
            .block_on(store.scopes_of(user))
            .map_err(|e| format!("scopes_of failed: {e}"))?;
        let mut records = HashMap::new();
        for scope in &scopes {
            let mut after = None;
            loop {
                let page = net
                    .server
                    .block_on(store.snapshot(user, device, scope.clone(), after, 500))
                    .map_err(|e| format!("snapshot of a held scope failed: {e}"))?;
                let page = serde_json::to_value(&page).map_err(|e| e.to_string())?;
                for change in page["records"].as_array().into_iter().flatten() {
                    let id: uuid::Uuid = serde_json::from_value(change["record_id"].clone())
                        .map_err(|e| e.to_string())?;
                    records.insert(
                        Id::from(id),
                        ServerRecord {
                            kind: change["kind"].as_str().unwrap_or_default().to_owned(),
                            scope: change["scope"].as_str().unwrap_or_default().to_owned(),
                            version: change["version"].as_u64().unwrap_or_default(),
                            record: change["record"].clone(),
                        },
                    );
                }
                match page["next_after"].as_str() {
                    Some(a) => after = Some(a.parse::<Id>().map_err(|_| "bad after")?),
                    None => break,
                }
            }
        }
        Ok(ServerView {
            scopes: scopes.into_iter().collect(),
            records,
        })
    }

    fn check(&mut self) -> Check<()> {
        let live = self.live_phones();
        let mut versions: HashMap<Id, u64> = HashMap::new();
        for &phone in &live {
            self.settle(phone)?;
            let p = &self.phones[phone];
            // 4. Outboxes drain.
            if let Some(m) = p.made.iter().find(|m| m.fate == Fate::Pending) {
                return Err(format!(
                    "{}: mutation {} still in the outbox after the quiet rounds",
                    p.label, m.seq
                ));
            }
            // Every change in the simulation is one its user may make on data the phone held
            // when it was made: work done offline before a reassignment reached the phone is
            // still taken (DESIGN.md §3), so a refusal would be work lost.
            if let Some(m) = p.made.iter().find(|m| m.fate == Fate::Rejected) {
                let code = p
                    .device()
                    .store()
                    .read(|r| r.rejected())
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .find(|r| r.client_seq == m.seq)
                    .map(|r| r.code)
                    .unwrap_or_default();
                return Err(format!(
                    "{}: the server refused mutation {} ({code})",
                    p.label, m.seq
                ));
            }
            let view = self.server_view(phone)?;
            let device = p.device();
            // 3. No key and no row of a scope not held.
            let held: Vec<String> = device
                .store()
                .read(|r| r.scopes())
                .map_err(|e| e.to_string())?;
            for scope in &held {
                if !view.scopes.contains(scope) {
                    return Err(format!(
                        "{}: keeps the key of a scope its user does not hold",
                        p.label
                    ));
                }
            }
            // 2. Convergence, kind by kind.
            compare::<Person>(&p.label, device, &view)?;
            compare::<Episode>(&p.label, device, &view)?;
            compare::<Assignment>(&p.label, device, &view)?;
            compare::<Visit>(&p.label, device, &view)?;
            for (id, r) in &view.records {
                let local = device
                    .store()
                    .read(|rd| rd.server_version_of(*id))
                    .map_err(|e| e.to_string())?;
                if local != Some(r.version) {
                    return Err(format!(
                        "{}: a {} is at version {local:?} on the phone and {} on the server",
                        p.label, r.kind, r.version
                    ));
                }
                versions.insert(*id, r.version);
            }
        }
        // 1. Each acknowledged mutation applied once: a record's server version counts them.
        let mut acked: HashMap<Id, (u64, u64)> = HashMap::new();
        for p in &self.phones {
            for m in &p.made {
                let e = acked.entry(m.record).or_default();
                match m.fate {
                    Fate::Acked => {
                        e.0 += 1;
                        e.1 += 1;
                    }
                    // Unsent on a phone revoked since: it may have landed before the revoke.
                    Fate::Pending if p.revoked => e.1 += 1,
                    Fate::Pending | Fate::Rejected => {}
                }
            }
        }
        for (id, (low, high)) in &self.restores {
            let e = acked.entry(*id).or_default();
            e.0 += low;
            e.1 += high;
        }
        for (id, (low, high)) in &acked {
            let Some(&version) = versions.get(id) else {
                if *low > 0 {
                    return Err(format!(
                        "a record with {low} acknowledged mutations is on no phone's server view"
                    ));
                }
                continue;
            };
            if version < *low || version > *high {
                return Err(format!(
                    "a record is at server version {version} after {low}..={high} acknowledged mutations"
                ));
            }
        }
        Ok(())
    }
}

struct ServerRecord {
    kind: String,
    scope: String,
    version: u64,
    record: serde_json::Value,
}

struct ServerView {
    scopes: BTreeSet<String>,
    records: HashMap<Id, ServerRecord>,
}

/// The phone's records of one kind equal the server's in the scopes held, and the phone has
/// none besides.
fn compare<R: Record + serde::de::DeserializeOwned + PartialEq>(
    label: &str,
    device: &Device,
    view: &ServerView,
) -> Check<()> {
    let local: Vec<R> = device
        .store()
        .read(|r| r.all::<R>())
        .map_err(|e| e.to_string())?;
    let kind = R::KIND.code();
    let mut seen = BTreeSet::new();
    for record in &local {
        let id = record.id();
        seen.insert(id);
        let Some(server) = view.records.get(&id) else {
            return Err(format!(
                "{label}: holds a {kind} the server does not give its user (scope {})",
                record.scope().kind()
            ));
        };
        let theirs: R = serde_json::from_value(server.record.clone())
            .map_err(|e| format!("the server's {kind} did not decode: {e}"))?;
        if &theirs != record {
            return Err(format!("{label}: a {kind} differs from the server's"));
        }
        if server.scope != record.scope().to_string() {
            return Err(format!("{label}: a {kind} is filed under another scope"));
        }
    }
    for (id, server) in &view.records {
        if server.kind == kind && !seen.contains(id) {
            return Err(format!("{label}: misses a {kind} its user holds"));
        }
    }
    Ok(())
}

/// Runs one seed. `Err` when an invariant broke or anything panicked.
pub fn run(seed: u64, options: &Options) -> Result<Outcome, Failure> {
    let world = std::panic::catch_unwind(|| World::new(seed, options)).map_err(|p| Failure {
        seed,
        message: format!("panic while building the world: {}", panic_text(&p)),
        trace: Vec::new(),
    })?;
    let world = std::cell::RefCell::new(world);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut w = world.borrow_mut();
        // The first two cases, made offline by the supervisor.
        w.new_case(0)?;
        w.new_case(0)?;
        w.net.lock().faulty = true;
        for n in 1..=options.steps {
            w.out.steps += 1;
            w.step(n)?;
        }
        w.quiesce()?;
        w.check()
    }));
    let mut w = world.into_inner();
    let (trace, exchanges, faults, restarts) = {
        let net = w.net.lock();
        (
            net.trace.clone(),
            net.exchanges,
            net.faults.clone(),
            net.restarts,
        )
    };
    let message = match result {
        Ok(Ok(())) => None,
        Ok(Err(message)) => Some(message),
        Err(p) => Some(format!("panic: {}", panic_text(&p))),
    };
    if let Some(message) = message {
        return Err(Failure {
            seed,
            message,
            trace,
        });
    }
    w.out.exchanges = exchanges;
    w.out.faults = faults;
    w.out.restarts = restarts;
    w.out.trace_digest = digest(&trace);
    w.out.trace = trace;
    let _ = w.seed;
    Ok(w.out)
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not text)".into())
}

fn digest(trace: &[String]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for line in trace {
        ctx.update(line.as_bytes());
        ctx.update(b"\n");
    }
    ctx.finish()
        .as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
