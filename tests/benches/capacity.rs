//! Capacity: N simulated devices syncing against one server replica and against several, on
//! SQLite and on PostgreSQL (BENCHMARKS.md, "Capacity").
//!
//! Command: `cargo bench -p donghanh-e2e --bench capacity --locked` (1,000 devices, 5 sync
//! rounds each). `DONGHANH_BENCH_QUICK=1`: 40 devices, 2 rounds (keeps the benchmark working in
//! the test suite; its figures mean nothing). `DONGHANH_CAPACITY_DEVICES` and
//! `DONGHANH_CAPACITY_ROUNDS` override the two numbers.
//!
//! Set-up, per scenario: a fresh database (an SQLite file; or a database on a PostgreSQL cluster
//! this benchmark starts on 127.0.0.1 with PostgreSQL's durable defaults, fsync on) holding a
//! commune with one volunteer per device and one case (person, episode, assignment) per
//! volunteer, pushed through the server's own push path; each device enrolled with an access
//! token (enrolment's 600,000-iteration PBKDF2 is not what is measured). Then 1 or 3 server
//! processes (this binary re-executed as a server: `DONGHANH_CAPACITY_SERVE`), on 127.0.0.1.
//!
//! A **sync round** of one device is what a phone does when it has recorded one visit: a push
//! of that visit, then pulls from its cursor until the server has nothing more (the first round
//! brings the device's case). Every device runs its rounds back to back, no think time, all
//! devices at once; at most 64 requests are in flight (a load balancer's connection limit),
//! spread over the replicas round-robin. Measured: rounds per second over the whole run, the
//! round's latency (p50, p99; from the first request's send to the last answer, not counting
//! the wait for a connection slot), errors (transport errors, non-2xx answers, a rejected
//! receipt, a device that did not receive its own visit), and the server processes' CPU time
//! and peak memory (and PostgreSQL's CPU time, all its processes). Bounded: every device stops
//! after its rounds, and the whole run after 20 minutes whatever happened.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, Id, OrgUnit, OrgUnitKind, Person, PriorRehab, Record, Role,
    Sex, User, Visit, vn_date,
};
use donghanh_protocol::{Mutation, MutationOp, Outcome, PullPage, PushRequest, PushResponse};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::any::AnyStore;
use donghanh_server::store::pg_cluster::{TempCluster, binaries, create_database};
use donghanh_server::store::postgres::{PgConfig, PgStore};
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{AccessGrant, PushCaller, StoredUser, SyncStore};
use donghanh_server::{AppState, Config, auth, serve};

const SERVE_ENV: &str = "DONGHANH_CAPACITY_SERVE";
const IN_FLIGHT: usize = 64;
const RUN_LIMIT: Duration = Duration::from_secs(20 * 60);

fn main() {
    if let Ok(spec) = std::env::var(SERVE_ENV) {
        serve_child(&spec);
        return;
    }
    let quick = std::env::var("DONGHANH_BENCH_QUICK").is_ok_and(|v| v == "1");
    let number = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let devices = number("DONGHANH_CAPACITY_DEVICES", if quick { 40 } else { 1000 });
    let rounds = number("DONGHANH_CAPACITY_ROUNDS", if quick { 2 } else { 5 });
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "capacity: {devices} devices × {rounds} sync rounds, at most {IN_FLIGHT} requests in flight"
    );
    println!(
        "| backend | replicas | rounds/s | p50 | p99 | errors | server CPU (s) | server peak RSS | PostgreSQL CPU (s) | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");

    // SQLite: one replica (one file, one process).
    {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("sqlite {}", dir.path().display());
        let seeded = seed(&spec, devices);
        run_scenario("SQLite", &spec, 1, &seeded, rounds, false);
    }
    // PostgreSQL: one replica, then three, each on a fresh database of one durable cluster.
    let Some(bin) = binaries() else {
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL is required in CI");
        }
        println!("(no PostgreSQL binaries: the PostgreSQL scenarios are skipped)");
        return;
    };
    let cluster = TempCluster::start(&bin, &["shared_buffers=256MB"]).unwrap();
    for replicas in [1, 3] {
        let name = format!("capacity_{replicas}");
        create_database(&cluster.url("postgres"), &name).unwrap();
        let keys = tempfile::tempdir().unwrap();
        let spec = format!("postgres {} {}", keys.path().display(), cluster.url(&name));
        let seeded = seed(&spec, devices);
        run_scenario("PostgreSQL", &spec, replicas, &seeded, rounds, true);
    }
    drop(cluster);
}

/// One simulated device: its credentials and case.
#[derive(Clone)]
struct SimDevice {
    token: String,
    person: Id,
}

/// Opens the store a spec names: `sqlite DIR` or `postgres KEYDIR URL` (creating the key).
async fn open(spec: &str, create_key: bool) -> AnyStore {
    let parts: Vec<&str> = spec.split(' ').collect();
    let key = Path::new(parts[1]).join("server.key");
    let keys = if create_key {
        ServerKeys::create(&key).unwrap()
    } else {
        ServerKeys::load(&key).unwrap()
    };
    match parts[0] {
        "sqlite" => AnyStore::Sqlite(
            SqliteStore::open(&Path::new(parts[1]).join("server.db"), keys).unwrap(),
        ),
        _ => AnyStore::Postgres(
            PgStore::connect(
                &PgConfig {
                    url: parts[2].to_owned(),
                    pool_size: 16,
                },
                keys,
            )
            .await
            .unwrap(),
        ),
    }
}

/// A commune, one volunteer with one case and one enrolled device per simulated device.
fn seed(spec: &str, devices: usize) -> Vec<SimDevice> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(spec, true).await;
        let province = OrgUnit::new("Tỉnh Công Suất", OrgUnitKind::Province, None);
        let commune = OrgUnit::new("Xã Công Suất", OrgUnitKind::Commune, Some(province.id));
        let team = OrgUnit::new("Đội Công Suất", OrgUnitKind::Team, Some(commune.id));
        for u in [&province, &commune, &team] {
            store.add_org_unit(u.clone()).await.unwrap();
        }
        let hash = auth::hash_password("mật-khẩu-công-suất").unwrap();
        let sup = User::new("gs.congsuat", "GS", Role::Supervisor, commune.id);
        store
            .add_user(StoredUser {
                user: sup.clone(),
                password_hash: hash.clone(),
            })
            .await
            .unwrap();
        let sup_device = donghanh_core::domain::Device::new(sup.id, "nạp", Utc::now());
        store.add_device(sup_device.clone(), vec![0]).await.unwrap();
        let caller = PushCaller {
            user: sup.id,
            role: Role::Supervisor,
            device: sup_device.id,
        };
        let today = vn_date(Utc::now());
        let mut seq = 0;
        let mut out = Vec::with_capacity(devices);
        for i in 0..devices {
            let user = User::new(format!("tnv.cs.{i}"), "TNV", Role::Volunteer, team.id);
            store
                .add_user(StoredUser {
                    user: user.clone(),
                    password_hash: hash.clone(),
                })
                .await
                .unwrap();
            let mut person = Person::new(
                "Nguyễn Văn Công Suất",
                chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
                Sex::Male,
            );
            person.commune = Some(commune.id);
            let episode = Episode::new(
                person.id,
                EpisodeKind::PostRehab,
                today - chrono::Duration::days(30),
            )
            .with_after(PriorRehab::Voluntary);
            let assignment = Assignment::new(person.id, episode.id, user.id, today);
            let mut batch = Vec::new();
            for m in [
                create(&mut seq, &person),
                create(&mut seq, &episode),
                create(&mut seq, &assignment),
            ] {
                batch.push(m);
            }
            let receipts = store.push_many(caller, batch, Utc::now()).await.unwrap();
            assert!(receipts.iter().all(|r| r.outcome == Outcome::Applied));
            let device = donghanh_core::domain::Device::new(user.id, "máy đo", Utc::now());
            store.add_device(device.clone(), vec![1]).await.unwrap();
            let token = auth::new_token().unwrap();
            store
                .put_access_token(
                    auth::token_hash(&token),
                    AccessGrant {
                        device: device.id,
                        user: user.id,
                        expires_at: Utc::now() + chrono::Duration::hours(2),
                    },
                )
                .await
                .unwrap();
            out.push(SimDevice {
                token,
                person: person.id,
            });
        }
        out
    })
}

fn create<R: Record>(seq: &mut u64, record: &R) -> Mutation<serde_json::Value> {
    *seq += 1;
    Mutation {
        client_seq: *seq,
        record_id: record.id().uuid(),
        kind: R::KIND.code().to_owned(),
        scope: record.scope().to_string(),
        op: MutationOp::Create,
        base_version: 0,
        patch: serde_json::to_value(record).unwrap(),
    }
}

/// A server process of this scenario.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(spec: &str) -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SERVE_ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().strip_prefix("ready ").unwrap().to_owned();
        ServerProcess {
            child,
            url: format!("http://{addr}"),
        }
    }

    /// CPU seconds (user + system) and peak resident memory (KiB) so far.
    fn usage(&self) -> (f64, u64) {
        let pid = self.child.id();
        (cpu_seconds(pid), peak_kib(pid))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin stops the child; kill it (by pid) only if it does not stop by itself.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds of every process named `postgres` on the machine (the benchmark's cluster is
/// the only one it runs; another would be counted too).
fn postgres_cpu() -> f64 {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "postgres")
        {
            total += cpu_seconds(pid);
        }
    }
    total
}

/// The child: serves the spec's store on 127.0.0.1 until stdin closes.
fn serve_child(spec: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = open(spec, false).await;
        let config = Config {
            compact_interval_seconds: 0,
            ..Config::default()
        };
        let state = AppState::new(store, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("ready {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
            let _ = stop.send(());
        });
        serve(listener, state, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
}

#[derive(Default)]
struct Tally {
    errors: AtomicU64,
    rounds: AtomicU64,
}

fn run_scenario(
    backend: &str,
    spec: &str,
    replicas: usize,
    devices: &[SimDevice],
    rounds: usize,
    postgres: bool,
) {
    let servers: Vec<ServerProcess> = (0..replicas).map(|_| ServerProcess::start(spec)).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let before: Vec<(f64, u64)> = servers.iter().map(ServerProcess::usage).collect();
    let pg_before = postgres.then(postgres_cpu);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let latencies = rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .build()
            .unwrap();
        let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let next_request = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::with_capacity(devices.len());
        for device in devices {
            let device = device.clone();
            let (http, slots, tally, urls, next_request) = (
                http.clone(),
                Arc::clone(&slots),
                Arc::clone(&tally),
                urls.clone(),
                Arc::clone(&next_request),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(rounds);
                let mut cursor = 0u64;
                for round in 0..rounds {
                    if started.elapsed() > RUN_LIMIT {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    let _slot = slots.acquire().await.unwrap();
                    let url = &urls[usize::try_from(next_request.fetch_add(1, Ordering::Relaxed))
                        .unwrap()
                        % urls.len()];
                    let t = Instant::now();
                    match sync_round(&http, url, &device, round, &mut cursor).await {
                        Ok(()) => {
                            latencies.push(t.elapsed());
                            tally.rounds.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let wall = started.elapsed().as_secs_f64();
    let after: Vec<(f64, u64)> = servers.iter().map(ServerProcess::usage).collect();
    let pg_cpu = pg_before.map(|b| postgres_cpu() - b);
    drop(servers);
    let mut latencies = latencies;
    latencies.sort();
    let pct = |p: f64| -> String {
        if latencies.is_empty() {
            return "-".into();
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        format!("{:.1} ms", latencies[i].as_secs_f64() * 1e3)
    };
    let done = tally.rounds.load(Ordering::Relaxed);
    let cpu: f64 = after.iter().zip(&before).map(|(a, b)| a.0 - b.0).sum();
    let peak: u64 = after.iter().map(|a| a.1).max().unwrap_or(0);
    println!(
        "| {backend} | {replicas} | {:.0} | {} | {} | {} | {cpu:.1} | {:.1} MiB (each, max) | {} | {wall:.1} |",
        done as f64 / wall,
        pct(0.5),
        pct(0.99),
        tally.errors.load(Ordering::Relaxed),
        peak as f64 / 1024.0,
        pg_cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}")),
    );
    let expected = (devices.len() * rounds) as u64;
    if done != expected {
        println!("  ({done} of {expected} rounds completed)");
    }
}

/// One round: push one new visit, pull until nothing more; the visit must come back.
async fn sync_round(
    http: &reqwest::Client,
    url: &str,
    device: &SimDevice,
    round: usize,
    cursor: &mut u64,
) -> Result<(), String> {
    let visit = Visit::new(
        device.person,
        Utc::now() - chrono::Duration::minutes(5),
        format!("Lần thăm {round}: gia đình hợp tác, đã nhắc lịch xét nghiệm"),
    );
    // client_seq 1, 2, … one per round.
    let mut seq = u64::try_from(round).unwrap();
    let body = PushRequest {
        mutations: vec![create(&mut seq, &visit)],
    };
    let resp = http
        .post(format!("{url}/v1/push"))
        .header(
            donghanh_protocol::PROTOCOL_HEADER,
            donghanh_protocol::PROTOCOL_VERSION.to_string(),
        )
        .bearer_auth(&device.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("push: {}", resp.status()));
    }
    let pushed: PushResponse = resp.json().await.map_err(|e| e.to_string())?;
    if pushed
        .receipts
        .iter()
        .any(|r| r.outcome == Outcome::Rejected)
    {
        return Err("push rejected".into());
    }
    let mut got_visit = false;
    for _ in 0..100 {
        let resp = http
            .get(format!("{url}/v1/pull?cursor={cursor}"))
            .header(
                donghanh_protocol::PROTOCOL_HEADER,
                donghanh_protocol::PROTOCOL_VERSION.to_string(),
            )
            .bearer_auth(&device.token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("pull: {}", resp.status()));
        }
        let page: PullPage<serde_json::Value> = resp.json().await.map_err(|e| e.to_string())?;
        got_visit |= page.changes.iter().any(|c| c.record_id == visit.id.uuid());
        *cursor = page.next_cursor;
        if !page.has_more {
            return if got_visit {
                Ok(())
            } else {
                Err("the pushed visit did not come back".into())
            };
        }
    }
    Err("more than 100 pull pages".into())
}
