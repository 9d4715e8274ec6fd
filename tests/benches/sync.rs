//! Sync benchmark: a real server and a real device on loopback, encryption on both sides, each
//! figure printed beside raw rusqlite inserting the same records into a plain table in the same
//! run (BENCHMARKS.md, "Sync").
//!
//! Run: `cargo bench -p donghanh-e2e --bench sync`. `DONGHANH_BENCH_QUICK=1` runs a smaller
//! version (CI runs it so the bench keeps working; its figures are not the ones recorded);
//! `DONGHANH_BENCH_VISITS=10000x5,50000` replaces the sizes of the full pulls and the number of
//! fresh phones measured at each (to profile one size).
//!
//! Shape:
//! - The server runs in a child process (this same binary, started with [`SERVE_ENV`]), so that
//!   the peak memory measured here (`VmHWM`, reset through `/proc/self/clear_refs` before each
//!   measure) is the device's alone, and the two compete for the machine's cores as a phone and
//!   a server on one host would. The child counts the bytes it writes to its sockets (HTTP
//!   headers and compressed bodies): that is the wire figure.
//! - Seeding goes through the server's own push path ([`SyncStore::push`]), so every record is
//!   validated, sealed with the server key, logged and audited as in production: a supervisor
//!   opens each case (which grants them its scope), assigns it to a volunteer, and the
//!   volunteers' phones push the visits. The device measured is the supervisor's new phone,
//!   enrolled through the real HTTP API, which then sees every case of the commune.
//! - Records are generated from a fixed seed, so the child (seeding) and this process (the raw
//!   baseline) build the same records, byte for byte.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, GeoPoint, Id, OrgUnit, OrgUnitKind, Person, PriorRehab,
    Record, RiskSign, Role, Service, Sex, User, Visit, VisitMode, vn_date,
};
use donghanh_core::sync::client::{SyncListener, SyncPhase, SyncReport};
use donghanh_core::{Device, FileKeyStore};
use donghanh_protocol::{Mutation, MutationOp, Outcome};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{PushCaller, StoredUser, SyncStore};
use donghanh_server::{AppState, Config, auth, router};
use rusqlite::{Connection, params};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Set in the child process: the data directory of the server it runs.
const SERVE_ENV: &str = "DONGHANH_BENCH_SERVE";
const PASSWORD: &str = "mật-khẩu-đo-hiệu-năng";
const PIN: &str = "135790";
const SUPERVISOR: &str = "gs.minh";
const VOLUNTEERS: usize = 8;
/// Each case gets this many visits on average (about eighteen months of fortnightly visits).
const VISITS_PER_CASE: usize = 40;

// ---------------------------------------------------------------------------------------------
// Deterministic, realistic data.

/// splitmix64: small, fast, and the same in both processes.
struct Rng(u64);

impl Rng {
    fn new(stream: u64, index: usize) -> Rng {
        Rng(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_add(1))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn id(&mut self) -> Id {
        let bytes = (u128::from(self.next()) << 64 | u128::from(self.next())).to_le_bytes();
        Id::from(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

const FAMILY: [&str; 14] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Ngô", "Lý",
];
const MIDDLE: [&str; 8] = ["Văn", "Thị", "Minh", "Quốc", "Thanh", "Hữu", "Anh", "Đức"];
const GIVEN: [&str; 20] = [
    "An", "Bình", "Cường", "Dũng", "Hà", "Hùng", "Lan", "Long", "Phúc", "Sơn", "Tuấn", "Yến",
    "Khoa", "Tâm", "Mai", "Bảo", "Thắng", "Hiếu", "Nam", "Trung",
];
const HAMLETS: [&str; 8] = [
    "Ấp Đông",
    "Ấp Tây",
    "Ấp Chợ",
    "Ấp Bến Đò",
    "Ấp Mỹ Lợi",
    "Ấp Hòa Thành",
    "Ấp Tân Phú",
    "Ấp Kinh Xáng",
];
const OPENERS: [&str; 10] = [
    "Đến nhà, gặp trực tiếp đối tượng và mẹ",
    "Đến nhà nhưng đối tượng đi vắng, trao đổi với vợ",
    "Gọi điện hỏi thăm vì đối tượng đang đi làm xa",
    "Gặp tại điểm tư vấn sau buổi sinh hoạt nhóm",
    "Gặp tại nơi làm việc ở xưởng mộc đầu ấp",
    "Thăm cùng công an xã theo kế hoạch của tổ",
    "Đối tượng chủ động đến gặp tại trụ sở ấp",
    "Đến nhà, gặp đối tượng và anh trai",
    "Gặp ngoài quán nước gần chợ, nói chuyện riêng",
    "Thăm nhà buổi tối vì ban ngày đối tượng đi làm",
];
const STATES: [&str; 14] = [
    "tinh thần ổn định, ăn ngủ bình thường",
    "có dấu hiệu mất ngủ, hay cáu gắt với người nhà",
    "đang làm phụ hồ, thu nhập khoảng 250.000 đồng mỗi ngày",
    "gia đình hợp tác tốt, vợ theo dõi sát giờ giấc",
    "than phiền bị bạn cũ rủ rê, đã tư vấn cách từ chối",
    "xét nghiệm nhanh âm tính, thái độ hợp tác",
    "đang điều trị methadone tại cơ sở của huyện, uống thuốc đều",
    "bỏ hai buổi uống methadone trong tuần, cần nhắc nhở",
    "mới có việc chạy xe ôm công nghệ, còn nợ tiền mua xe",
    "mẹ cho biết đối tượng hay đi khuya, về nhà lúc nửa đêm",
    "sức khỏe yếu, ho kéo dài, đã khuyên đi khám ở trạm y tế",
    "đã làm xong căn cước, đang chờ hồ sơ vay vốn",
    "con nhỏ đi học lại, gia đình bớt căng thẳng",
    "có mâu thuẫn với vợ về chuyện tiền bạc",
];
const PLANS: [&str; 10] = [
    "hẹn thăm lại sau hai tuần.",
    "cần giới thiệu học nghề sửa xe máy ở trung tâm huyện.",
    "đề nghị hỗ trợ làm lại giấy tờ tùy thân.",
    "hướng dẫn gia đình thủ tục vay vốn Ngân hàng Chính sách xã hội.",
    "báo cáo tổ trưởng để theo dõi thêm.",
    "hẹn xét nghiệm định kỳ vào đầu tháng sau.",
    "mời tham gia sinh hoạt nhóm tại điểm tư vấn thứ bảy này.",
    "phối hợp với công an ấp để nắm tình hình.",
    "đề xuất hỗ trợ tiền mặt theo chương trình của xã.",
    "tiếp tục động viên, chưa cần can thiệp thêm.",
];
const RISKS: [RiskSign; 9] = [
    RiskSign::SignsOfUse,
    RiskSign::WithdrawalSymptoms,
    RiskSign::ContactWithUsers,
    RiskSign::FamilyConflict,
    RiskSign::Unemployment,
    RiskSign::MentalDistress,
    RiskSign::HealthProblem,
    RiskSign::MissedAppointments,
    RiskSign::AwayFromHome,
];
const SERVICES: [Service; 10] = [
    Service::Counselling,
    Service::HarmReduction,
    Service::TreatmentSupport,
    Service::PapersHelp,
    Service::VocationalCounselling,
    Service::JobSearch,
    Service::LoanSupport,
    Service::SchoolingSupport,
    Service::FamilySupport,
    Service::HealthEducation,
];

/// The fixed people of the bench: the commune, the supervisor, the volunteers.
struct Staff {
    commune: Id,
    supervisor: Id,
    volunteers: Vec<Id>,
}

fn staff() -> Staff {
    let mut rng = Rng::new(1, 0);
    Staff {
        commune: rng.id(),
        supervisor: rng.id(),
        volunteers: (0..VOLUNTEERS).map(|_| rng.id()).collect(),
    }
}

/// A case: the person, their post-rehab episode and the volunteer assigned to them.
struct Case {
    person: Person,
    episode: Episode,
    assignment: Assignment,
    helper: usize,
}

fn case(k: usize, staff: &Staff, today: NaiveDate) -> Case {
    let mut rng = Rng::new(2, k);
    let name = format!(
        "{} {} {}",
        rng.pick(&FAMILY),
        rng.pick(&MIDDLE),
        rng.pick(&GIVEN)
    );
    let birth = NaiveDate::from_ymd_opt(
        1975 + rng.below(30) as i32,
        1 + rng.below(12) as u32,
        1 + rng.below(28) as u32,
    )
    .unwrap();
    let sex = if rng.chance(12) {
        Sex::Female
    } else {
        Sex::Male
    };
    let mut person = Person::new(name, birth, sex);
    person.id = rng.id();
    person.phone = Some(format!("09{:08}", rng.next() % 100_000_000));
    person.address = Some(format!("{}, xã Tân Hòa", rng.pick(&HAMLETS)));
    person.commune = Some(staff.commune);
    let start = today - chrono::Duration::days(730 + rng.below(200) as i64);
    let mut episode =
        Episode::new(person.id, EpisodeKind::PostRehab, start).with_after(if rng.chance(30) {
            PriorRehab::CompulsoryAdult
        } else {
            PriorRehab::Voluntary
        });
    episode.id = rng.id();
    let helper = rng.below(VOLUNTEERS);
    let mut assignment = Assignment::new(person.id, episode.id, staff.volunteers[helper], start);
    assignment.id = rng.id();
    Case {
        person,
        episode,
        assignment,
        helper,
    }
}

fn observations(rng: &mut Rng) -> String {
    let mut s = String::from(rng.pick(&OPENERS));
    s.push_str("; ");
    s.push_str(rng.pick(&STATES));
    if rng.chance(40) {
        s.push_str(", ");
        s.push_str(rng.pick(&STATES));
    }
    s.push_str("; ");
    s.push_str(rng.pick(&PLANS));
    s
}

/// Visit `i` of the data set and the index of its case. Visit `i` is about one of the cases
/// that existed when it was made (the first `cases_for(i + 1)`, at most `cases.len()`), so older
/// cases have more visits, and the choice does not depend on how the data set was seeded.
fn visit(i: usize, cases: &[Case], today: NaiveDate) -> (Visit, usize) {
    let mut rng = Rng::new(3, i);
    let k = rng.below(cases_for(i + 1).min(cases.len()));
    let case = &cases[k];
    let day = today - chrono::Duration::days(1 + rng.below(700) as i64);
    let at = Utc.from_utc_datetime(
        &day.and_hms_opt(rng.below(10) as u32, rng.below(60) as u32, 0)
            .unwrap(),
    );
    let mut v = Visit::new(case.person.id, at, observations(&mut rng));
    v.id = rng.id();
    v.episode = Some(case.episode.id);
    v.worker = case.assignment.helper;
    v.mode = match rng.below(10) {
        0..=6 => VisitMode::Home,
        7 | 8 => VisitMode::Phone,
        _ => VisitMode::AtPoint,
    };
    for _ in 0..rng.below(3) {
        let r = rng.pick(&RISKS);
        if !v.risk_signs.contains(&r) {
            v.risk_signs.push(r);
        }
    }
    for _ in 0..rng.below(4) {
        let s = rng.pick(&SERVICES);
        if !v.services.contains(&s) {
            v.services.push(s);
        }
    }
    v.relapse_suspected = rng.chance(4);
    if rng.chance(60) {
        v.next_visit_due = Some(day + chrono::Duration::days(14));
    }
    if v.mode == VisitMode::Home && rng.chance(50) {
        let micro = |rng: &mut Rng, base: f64| base + (rng.below(100_000) as f64) / 1e6;
        v.gps = Some(GeoPoint {
            lat: micro(&mut rng, 9.55),
            lon: micro(&mut rng, 105.9),
            accuracy_m: Some(5.0 + rng.below(30) as f64),
        });
    }
    (v, k)
}

/// How many cases `total` visits are about.
fn cases_for(total: usize) -> usize {
    total.div_ceil(VISITS_PER_CASE)
}

// ---------------------------------------------------------------------------------------------
// The server child process.

/// A TCP listener whose connections count the bytes written to them (what goes on the wire).
struct CountingListener {
    inner: tokio::net::TcpListener,
    written: Arc<AtomicU64>,
}

struct CountingStream {
    inner: tokio::net::TcpStream,
    written: Arc<AtomicU64>,
}

impl axum::serve::Listener for CountingListener {
    type Io = CountingStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, addr)) = self.inner.accept().await {
                let _ = stream.set_nodelay(true);
                return (
                    CountingStream {
                        inner: stream,
                        written: Arc::clone(&self.written),
                    },
                    addr,
                );
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Pushes records as one device of one user, the way a phone's outbox does.
struct Pusher {
    caller: PushCaller,
    seq: u64,
}

impl Pusher {
    async fn create<R: Record>(&mut self, store: &SqliteStore, record: &R) {
        self.seq += 1;
        let m = Mutation {
            client_seq: self.seq,
            record_id: record.id().uuid(),
            kind: R::KIND.code().to_owned(),
            scope: record.scope().to_string(),
            op: MutationOp::Create,
            base_version: 0,
            patch: serde_json::to_value(record).unwrap(),
        };
        let receipt = store.push(self.caller, m, Utc::now()).await.unwrap();
        assert_eq!(receipt.outcome, Outcome::Applied, "{receipt:?}");
    }
}

/// The child: a server on loopback, driven by lines on stdin (`seed VISITS CASES`, `wire`); it
/// stops when stdin closes.
fn serve_child(dir: PathBuf) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let keys = ServerKeys::create(&dir.join("server.key")).unwrap();
    let store = SqliteStore::open(&dir.join("server.db"), keys).unwrap();
    let staff = staff();
    let today = vn_date(Utc::now());
    let mut pushers: Vec<Pusher> = rt.block_on(async {
        let mut commune = OrgUnit::new("Xã Tân Hòa (đo hiệu năng)", OrgUnitKind::Commune, None);
        commune.id = staff.commune;
        store.add_org_unit(commune).await.unwrap();
        let hash = auth::hash_password(PASSWORD).unwrap();
        let mut users = vec![(SUPERVISOR.to_owned(), Role::Supervisor, staff.supervisor)];
        for (k, id) in staff.volunteers.iter().enumerate() {
            users.push((format!("tnv.{k}"), Role::Volunteer, *id));
        }
        let mut pushers = Vec::new();
        for (username, role, id) in users {
            let mut user = User::new(&username, &username, role, staff.commune);
            user.id = id;
            store
                .add_user(StoredUser {
                    user,
                    password_hash: hash.clone(),
                })
                .await
                .unwrap();
            // Each user's records come from a loader phone of theirs.
            let device = donghanh_core::domain::Device::new(id, "máy nạp dữ liệu", Utc::now());
            store
                .add_device(
                    device.clone(),
                    auth::token_hash(&auth::new_token().unwrap()),
                )
                .await
                .unwrap();
            pushers.push(Pusher {
                caller: PushCaller {
                    user: id,
                    role,
                    device: device.id,
                },
                seq: 0,
            });
        }
        pushers
    });
    let written = Arc::new(AtomicU64::new(0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(store.clone(), Config::default()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(
        axum::serve(
            CountingListener {
                inner: listener,
                written: Arc::clone(&written),
            },
            router(state),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .into_future(),
    );
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {url}").unwrap();
    out.flush().unwrap();

    let (mut cases, mut visits) = (Vec::<Case>::new(), 0usize);
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("seed"), Some(total), Some(n_cases)) => {
                let total: usize = total.parse().unwrap();
                let n_cases: usize = n_cases.parse().unwrap();
                let t = Instant::now();
                let mut records = 0;
                rt.block_on(async {
                    let (sup, vols) = pushers.split_first_mut().unwrap();
                    while cases.len() < n_cases {
                        let c = case(cases.len(), &staff, today);
                        sup.create(&store, &c.person).await;
                        sup.create(&store, &c.episode).await;
                        sup.create(&store, &c.assignment).await;
                        records += 3;
                        cases.push(c);
                    }
                    while visits < total {
                        let (v, k) = visit(visits, &cases, today);
                        vols[cases[k].helper].create(&store, &v).await;
                        records += 1;
                        visits += 1;
                    }
                });
                writeln!(out, "seeded {records} {}", t.elapsed().as_millis()).unwrap();
            }
            (Some("wire"), None, None) => {
                writeln!(out, "wire {}", written.load(Ordering::Relaxed)).unwrap();
            }
            _ => writeln!(out, "error unknown command").unwrap(),
        }
        out.flush().unwrap();
    }
    let _ = stop.send(());
    rt.block_on(server).unwrap().unwrap();
}

/// The server child as seen from the bench.
struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    url: String,
}

impl ServerProcess {
    fn start(dir: &Path) -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(SERVE_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut p = ServerProcess {
            child,
            stdin,
            stdout,
            url: String::new(),
        };
        p.url = p.answer("ready").remove(0);
        p
    }

    fn answer(&mut self, expect: &str) -> Vec<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let mut words = line.split_whitespace().map(str::to_owned);
        assert_eq!(
            words.next().as_deref(),
            Some(expect),
            "server said {line:?}"
        );
        words.collect()
    }

    fn ask(&mut self, command: &str, expect: &str) -> Vec<String> {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.answer(expect)
    }

    /// Seeds until the server holds `cases` cases and `total` visits; returns (records pushed,
    /// seconds).
    fn seed(&mut self, total: usize, cases: usize) -> (usize, f64) {
        let a = self.ask(&format!("seed {total} {cases}"), "seeded");
        (a[0].parse().unwrap(), a[1].parse::<f64>().unwrap() / 1e3)
    }

    /// Bytes the server has written to its sockets so far.
    fn wire(&mut self) -> u64 {
        self.ask("wire", "wire")[0].parse().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin stops the child; kill it only if it does not stop by itself.
        drop(self.stdin.take());
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Measures on this (the device's) process.

/// Peak resident memory of this process since the last [`reset_peak_memory`], in bytes.
fn peak_memory() -> u64 {
    proc_status_kib("VmHWM:") * 1024
}

fn current_memory() -> u64 {
    proc_status_kib("VmRSS:") * 1024
}

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak to the current resident size (Linux `clear_refs`, value 5).
fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The device store's size on disk: the database and its write-ahead log.
fn store_size(dir: &Path) -> (u64, u64) {
    let db = Device::store_path(dir);
    (
        file_size(&db),
        file_size(&PathBuf::from(format!("{}-wal", db.display()))),
    )
}

/// Raw rusqlite: the same records as plaintext JSON in a plain table, with the device store's
/// pragmas (WAL, synchronous=NORMAL, secure_delete, temp_store=MEMORY, 8 MiB cache), committed
/// every `per_tx` rows. Returns the time for all of it.
fn raw_insert(path: &Path, rows: &[(Id, &'static str, String, Vec<u8>)], per_tx: usize) -> f64 {
    let mut conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;
         PRAGMA cache_size=-8192;
         CREATE TABLE IF NOT EXISTS records (rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
           kind TEXT NOT NULL, scope TEXT NOT NULL, body BLOB NOT NULL) STRICT;",
    )
    .unwrap();
    let t = Instant::now();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction().unwrap();
        for (id, kind, scope, body) in chunk {
            tx.prepare_cached("INSERT INTO records(id, kind, scope, body) VALUES (?1, ?2, ?3, ?4)")
                .unwrap()
                .execute(params![id.as_bytes(), kind, scope, body])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    t.elapsed().as_secs_f64()
}

fn raw_row<R: Record>(r: &R) -> (Id, &'static str, String, Vec<u8>) {
    (
        r.id(),
        R::KIND.code(),
        r.scope().to_string(),
        serde_json::to_vec(r).unwrap(),
    )
}

/// Every record of the data set of `total` visits about `n_cases` cases, as the raw baseline
/// inserts them.
fn raw_rows(
    total: usize,
    n_cases: usize,
    today: NaiveDate,
) -> Vec<(Id, &'static str, String, Vec<u8>)> {
    let staff = staff();
    let cases: Vec<Case> = (0..n_cases).map(|k| case(k, &staff, today)).collect();
    let mut rows = Vec::new();
    for c in &cases {
        rows.push(raw_row(&c.person));
        rows.push(raw_row(&c.episode));
        rows.push(raw_row(&c.assignment));
    }
    for i in 0..total {
        rows.push(raw_row(&visit(i, &cases, today).0));
    }
    rows
}

fn enroll(url: &str, dir: &Path) -> Device {
    std::fs::create_dir_all(dir).unwrap();
    let keystore = FileKeyStore::create(dir.join("device.key")).unwrap();
    Device::enroll(
        dir,
        &keystore,
        PIN,
        url,
        SUPERVISOR,
        PASSWORD,
        "điện thoại đo",
    )
    .unwrap()
}

/// Notes when a sync round first reaches its pull (the end of its push phase).
#[derive(Default)]
struct PhaseClock {
    first_pull: std::cell::Cell<Option<Instant>>,
}

impl SyncListener for PhaseClock {
    fn progress(&self, phase: SyncPhase, _report: &SyncReport) {
        if phase == SyncPhase::Pulling && self.first_pull.get().is_none() {
            self.first_pull.set(Some(Instant::now()));
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

struct FullPull {
    visits: usize,
    /// Records in the data set (cases and visits).
    records: usize,
    /// Records the sync round received (more than `records` if some came twice).
    received: usize,
    rounds: usize,
    seconds: f64,
    raw_seconds: f64,
    wire_bytes: u64,
    rss_before: u64,
    rss_peak: u64,
    db: (u64, u64),
    raw_db: u64,
    /// Average size of a record's plaintext JSON.
    json_bytes: f64,
}

fn main() {
    if let Some(dir) = std::env::var_os(SERVE_ENV) {
        serve_child(PathBuf::from(dir));
        return;
    }
    let quick = std::env::var_os("DONGHANH_BENCH_QUICK").is_some();
    // Full pulls: (visits on the server, fresh devices measured). Then incremental pulls and a push.
    let (pulls, incremental_rounds, push_n, push_rounds): (&[(usize, usize)], usize, usize, usize) =
        if quick {
            (&[(1_000, 1), (5_000, 1)], 3, 1_000, 1)
        } else {
            (&[(10_000, 3), (100_000, 1)], 11, 1_000, 5)
        };
    // `DONGHANH_BENCH_VISITS=10000x5,50000` replaces the full pulls' sizes (`x` the number
    // of fresh phones, 1 if not given), e.g. to profile one size.
    let custom: Vec<(usize, usize)> = std::env::var("DONGHANH_BENCH_VISITS")
        .map(|v| {
            v.split(',')
                .map(|n| match n.trim().split_once('x') {
                    Some((n, r)) => (n.parse().unwrap(), r.parse().unwrap()),
                    None => (n.trim().parse().unwrap(), 1),
                })
                .collect()
        })
        .unwrap_or_default();
    let pulls = if custom.is_empty() { pulls } else { &custom };
    let incremental_n = 100;
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir).unwrap();
    let mut server = ServerProcess::start(&server_dir);
    let today = vn_date(Utc::now());
    let mut phone = 0;
    let mut fresh_phone = |dir: &Path| {
        phone += 1;
        dir.join(format!("phone-{phone}"))
    };

    // --- full pulls by fresh devices --------------------------------------------------------
    let mut full = Vec::new();
    let mut last_device = None;
    for &(visits, rounds) in pulls {
        let (_, seed_s) = server.seed(visits, cases_for(visits));
        eprintln!("seeded {visits} visits in {seed_s:.1} s");
        let mut times = Vec::new();
        let mut measure = None;
        for _ in 0..rounds {
            let phone_dir = fresh_phone(dir.path());
            let device = enroll(&server.url, &phone_dir);
            let wire0 = server.wire();
            reset_peak_memory();
            let rss_before = current_memory();
            let t = Instant::now();
            let report = device.sync().unwrap();
            let seconds = t.elapsed().as_secs_f64();
            let rss_peak = peak_memory();
            let wire_bytes = server.wire() - wire0;
            times.push(seconds);
            measure = Some((
                report,
                wire_bytes,
                rss_before,
                rss_peak,
                store_size(&phone_dir),
            ));
            last_device = Some((device, phone_dir));
        }
        let (report, wire_bytes, rss_before, rss_peak, db) = measure.unwrap();
        let rows = raw_rows(visits, cases_for(visits), today);
        let raw_path = dir.path().join(format!("raw-{visits}.db"));
        // Committed every 3,000 rows, about a pull page (2 MiB of records).
        let raw_seconds = raw_insert(&raw_path, &rows, 3_000);
        let json_bytes = rows.iter().map(|r| r.3.len()).sum::<usize>() as f64 / rows.len() as f64;
        full.push(FullPull {
            json_bytes,
            visits,
            records: rows.len(),
            received: report.pulled,
            rounds,
            seconds: median(times),
            raw_seconds,
            wire_bytes,
            rss_before,
            rss_peak,
            db,
            raw_db: file_size(&raw_path)
                + file_size(&PathBuf::from(format!("{}-wal", raw_path.display()))),
        });
        assert!(
            report.pulled >= rows.len(),
            "pulled {} of {} records",
            report.pulled,
            rows.len()
        );
    }
    let (device, _phone_dir) = last_device.unwrap();
    let mut total = pulls.last().unwrap().0;
    let n_cases = cases_for(total);

    // --- incremental pulls: the volunteers push 100 visits, the phone syncs -----------------
    let mut incremental = Vec::new();
    let mut incremental_wire = Vec::new();
    for _ in 0..incremental_rounds {
        total += incremental_n;
        server.seed(total, n_cases);
        let wire0 = server.wire();
        let t = Instant::now();
        let report = device.sync().unwrap();
        incremental.push(t.elapsed().as_secs_f64());
        incremental_wire.push(server.wire() - wire0);
        assert_eq!(report.pulled, incremental_n, "{report:?}");
    }
    let incremental_raw = {
        let rows = raw_rows(total, n_cases, today);
        let rows = &rows[rows.len() - incremental_n..];
        let path = dir.path().join("raw-incremental.db");
        median(
            (0..incremental_rounds)
                .map(|_| {
                    let _ = std::fs::remove_file(&path);
                    let _ = std::fs::remove_file(format!("{}-wal", path.display()));
                    raw_insert(&path, rows, incremental_n)
                })
                .collect(),
        )
    };

    // --- push of 1,000 visits recorded offline ----------------------------------------------
    // Each round records `push_n` new visits on the phone with the network off, then syncs.
    // The push phase is timed from the start of the round to the round's first `Pulling`
    // progress: it includes the token refresh, every push request and the receipts applied
    // (the outbox read to empty), and nothing of the pull. The whole round is timed too.
    let staff = staff();
    let cases: Vec<Case> = (0..n_cases).map(|k| case(k, &staff, today)).collect();
    let (mut push_phase, mut push_round, mut push_wire) = (Vec::new(), Vec::new(), Vec::new());
    let mut pulled_back = Vec::new();
    let mut push_raw = Vec::new();
    for round in 0..push_rounds {
        let now = Utc::now();
        let offline: Vec<Visit> = (0..push_n)
            .map(|i| {
                let (mut v, _) = visit(1_000_000 + round * push_n + i, &cases, today);
                v.at = now - chrono::Duration::minutes(i as i64 + 5);
                v.next_visit_due = None;
                v
            })
            .collect();
        for v in &offline {
            device.add_visit(v).unwrap();
        }
        let clock = PhaseClock::default();
        let wire0 = server.wire();
        let t = Instant::now();
        let report = device.sync_with(&clock).unwrap();
        push_round.push(t.elapsed().as_secs_f64());
        push_phase.push(
            clock
                .first_pull
                .get()
                .unwrap()
                .duration_since(t)
                .as_secs_f64(),
        );
        push_wire.push(server.wire() - wire0);
        assert_eq!(report.pushed, push_n, "{report:?}");
        pulled_back.push(report.pulled);
        let rows: Vec<_> = offline.iter().map(raw_row).collect();
        let path = dir.path().join(format!("raw-push-{round}.db"));
        push_raw.push(raw_insert(&path, &rows, push_n));
    }
    let push_raw = median(push_raw);
    drop(device);
    drop(server);

    // --- report -----------------------------------------------------------------------------
    println!(
        "donghanh sync benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    println!(
        "| measure | donghanh (HTTP + encryption, both sides) | raw rusqlite insert | ratio |"
    );
    println!("|---|---|---|---|");
    for f in &full {
        println!(
            "| full pull by a fresh phone: {} visits ({} records, {} received; median of {}) | {:.3} s = {:.0} records/s | {:.3} s | {:.1}× |",
            f.visits,
            f.records,
            f.received,
            f.rounds,
            f.seconds,
            f.records as f64 / f.seconds,
            f.raw_seconds,
            f.seconds / f.raw_seconds
        );
        println!(
            "| … bytes on the wire (server to phone, compressed) | {:.0} bytes/record ({:.1} MiB) | {:.0} bytes/record (the record's JSON) | {:.2}× |",
            f.wire_bytes as f64 / f.records as f64,
            mib(f.wire_bytes),
            f.json_bytes,
            f.wire_bytes as f64 / f.records as f64 / f.json_bytes
        );
        println!(
            "| … peak memory of the phone (VmHWM; {:.1} MiB before the pull) | {:.1} MiB | – | – |",
            mib(f.rss_before),
            mib(f.rss_peak)
        );
        println!(
            "| … store size on the phone (database + WAL) | {:.1} + {:.1} MiB | {:.1} MiB | {:.2}× |",
            mib(f.db.0),
            mib(f.db.1),
            mib(f.raw_db),
            (f.db.0 + f.db.1) as f64 / f.raw_db as f64
        );
    }
    let inc = median(incremental.clone());
    println!(
        "| incremental pull of {incremental_n} new visits (sync round, median of {incremental_rounds}) | {:.1} ms ({:.0} bytes/record on the wire) | {:.1} ms | {:.1}× |",
        inc * 1e3,
        median(incremental_wire.iter().map(|&b| b as f64).collect()) / incremental_n as f64,
        incremental_raw * 1e3,
        inc / incremental_raw
    );
    let (phase, whole) = (median(push_phase), median(push_round));
    println!(
        "| push of {push_n} visits recorded offline (push phase: tokens, requests, receipts; median of {push_rounds}) | {:.1} ms | {:.1} ms | {:.1}× |",
        phase * 1e3,
        push_raw * 1e3,
        phase / push_raw
    );
    println!(
        "| … the whole sync round (push, then pull; {} pulled back; {:.0} bytes/visit on the wire) | {:.1} ms | {:.1} ms | {:.1}× |",
        pulled_back.iter().max().unwrap(),
        median(push_wire.iter().map(|&b| b as f64).collect()) / push_n as f64,
        whole * 1e3,
        push_raw * 1e3,
        whole / push_raw
    );
}
