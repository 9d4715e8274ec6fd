//! Province-scale report benchmark (issue 7): a province of 250,000 people in 100 communes with
//! 5,000,000 visits, its half-year (`PROVINCE-H`, 2026-H1) computed by the server's report path
//! (`reports::compute`: read the report facts of the subtree, unseal the people's, run the
//! engine), beside a raw SQLite scan of the same rows in the same run (the ratio).
//!
//! Run: `cargo bench -p donghanh-server --bench report` (`DONGHANH_BENCH=1 scripts/test` runs it).
//! `DONGHANH_BENCH_QUICK=1` runs 1 % of the size (CI keeps it working that way; its figures are
//! not the recorded ones).
//!
//! Seeding writes report facts straight into the database, as the push path would have left
//! them (the same projection, `Fact`, the same JSON, people's facts sealed with the server key):
//! pushing five million visits one by one would measure the push, not the report.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use donghanh_core::domain::{
    BenefitKind, EpisodeKind, EpisodeStatus, Id, OrgUnit, OrgUnitKind, PriorRehab, Service, Sex,
    TestKind, TestResult,
};
use donghanh_core::report::{Fact, Period};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::SyncStore;
use donghanh_server::store::sqlite::SqliteStore;
use rusqlite::params;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn day(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

#[allow(clippy::too_many_lines)]
fn main() {
    let quick = std::env::var_os("DONGHANH_BENCH_QUICK").is_some();
    let (communes_n, people_n, visits_n) = if quick {
        (10_u64, 2_500_u64, 50_000_u64)
    } else {
        (100, 250_000, 5_000_000)
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let keys = ServerKeys::create(&dir.path().join("server.key")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = SqliteStore::open(&db, keys).unwrap();
    let seal_keys = ServerKeys::load(&dir.path().join("server.key")).unwrap();

    let province = OrgUnit::new("Tỉnh", OrgUnitKind::Province, None);
    rt.block_on(store.add_org_unit(province.clone())).unwrap();
    let mut communes = Vec::new();
    for i in 0..communes_n {
        let c = OrgUnit::new(format!("Xã {i}"), OrgUnitKind::Commune, Some(province.id));
        rt.block_on(store.add_org_unit(c.clone())).unwrap();
        let p = OrgUnit::new(format!("Điểm {i}"), OrgUnitKind::CommunityPoint, Some(c.id));
        rt.block_on(store.add_org_unit(p.clone())).unwrap();
        communes.push((c.id, p.id));
    }

    let seeding = Instant::now();
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    // A large page cache: the record and person indexes take random keys, and with the default
    // 2 MB cache every insert reads and writes pages back and forth (seeding took 10 minutes).
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-1048576;",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut fact = tx
            .prepare(
                "INSERT INTO report_facts(record, person, point, day, personal, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .unwrap();
        let mut case = tx
            .prepare("INSERT INTO case_communes(person, commune) VALUES (?1, ?2)")
            .unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let h1 = Period::parse("2026-H1").unwrap();
        let span = (h1.end() - h1.start()).num_days().unsigned_abs() + 1;
        let kinds = EpisodeKind::ALL;
        let mut people = Vec::with_capacity(usize::try_from(people_n).unwrap());
        for i in 0..people_n {
            let (commune, _) = communes[usize::try_from(i % communes_n).unwrap()];
            let person = Id::new();
            people.push(person);
            case.execute(params![person.as_bytes(), commune.as_bytes()])
                .unwrap();
            let p = Fact::Person {
                id: person,
                commune: Some(commune),
                sex: if rng.below(5) == 0 {
                    Sex::Female
                } else {
                    Sex::Male
                },
                birth_year: 1960 + i32::try_from(rng.below(50)).unwrap(),
            };
            let json = serde_json::to_vec(&vec![p]).unwrap();
            let sealed = seal_keys
                .seal("report_facts", person.as_bytes(), &json)
                .unwrap();
            fact.execute(params![
                person.as_bytes(),
                person.as_bytes(),
                None::<Vec<u8>>,
                None::<i64>,
                1,
                sealed
            ])
            .unwrap();
            let kind = kinds[usize::try_from(rng.below(kinds.len() as u64)).unwrap()];
            let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
                + chrono::Duration::days(i64::try_from(rng.below(900)).unwrap());
            let ended = rng.below(3) == 0;
            let e = Fact::Episode {
                id: Id::new(),
                person,
                kind,
                status: if ended {
                    EpisodeStatus::Completed
                } else {
                    EpisodeStatus::Active
                },
                after: (kind == EpisodeKind::PostRehab).then_some(PriorRehab::Voluntary),
                start,
                ended_on: ended.then(|| start + chrono::Duration::days(365)),
                completion_reported_on: (kind == EpisodeKind::PostRehab)
                    .then(|| start - chrono::Duration::days(3)),
                file_opened_on: (kind == EpisodeKind::PostRehab)
                    .then(|| start - chrono::Duration::days(1)),
                decision_date: Some(start),
            };
            let json = serde_json::to_vec(&vec![e.clone()]).unwrap();
            fact.execute(params![
                e.id().as_bytes(),
                person.as_bytes(),
                None::<Vec<u8>>,
                None::<i64>,
                0,
                json
            ])
            .unwrap();
        }
        let services = [
            Service::Counselling,
            Service::HarmReduction,
            Service::VocationalCounselling,
            Service::PapersHelp,
        ];
        for i in 0..visits_n {
            let person = people[usize::try_from(i % people_n).unwrap()];
            let d = h1.start() + chrono::Duration::days(i64::try_from(rng.below(span)).unwrap());
            let f = match i % 50 {
                0 => Fact::DrugTest {
                    id: Id::new(),
                    person,
                    episode: None,
                    day: d,
                    kind: TestKind::Periodic,
                    result: if rng.below(10) == 0 {
                        TestResult::Positive
                    } else {
                        TestResult::Negative
                    },
                },
                1 => Fact::Benefit {
                    id: Id::new(),
                    person,
                    episode: None,
                    day: d,
                    kind: BenefitKind::Loan,
                    amount_vnd: 10_000_000,
                },
                _ => Fact::Visit {
                    id: Id::new(),
                    person,
                    episode: None,
                    day: d,
                    services: vec![services[usize::try_from(rng.below(4)).unwrap()]],
                },
            };
            let json = serde_json::to_vec(&vec![f.clone()]).unwrap();
            fact.execute(params![
                f.id().as_bytes(),
                person.as_bytes(),
                None::<Vec<u8>>,
                day(d),
                0,
                json
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    eprintln!(
        "seeded {people_n} people, {visits_n} visits and tests in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let period = Period::parse("2026-H1").unwrap();
    let runs = if quick { 1 } else { 3 };
    let mut report_s = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let report = rt
            .block_on(donghanh_server::reports::compute(
                &store,
                None,
                province.id,
                "PROVINCE-H",
                period,
            ))
            .unwrap();
        report_s.push(t.elapsed().as_secs_f64());
        rows = report.rows().count();
        assert!(report.row("FILE_ACTIVE_END").unwrap().value.whole() > 0);
    }
    report_s.sort_by(f64::total_cmp);
    let report_med = report_s[report_s.len() / 2];

    // Baseline: the same rows read raw (no unsealing, no JSON, no engine).
    let mut raw_s = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let (n, bytes): (i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(length(body)) FROM report_facts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(n > 0 && bytes > 0);
        raw_s.push(t.elapsed().as_secs_f64());
    }
    raw_s.sort_by(f64::total_cmp);
    let raw_med = raw_s[raw_s.len() / 2];
    let facts = people_n * 2 + visits_n;
    println!(
        "donghanh report benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    println!("| measure | donghanh | raw SQLite scan of the same rows | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| PROVINCE-H 2026-H1 over {communes_n} communes, {people_n} people, {visits_n} visits and tests ({facts} facts, {rows} rows; median of {runs}) | {report_med:.2} s = {:.0} facts/s | {raw_med:.2} s | {:.1}× |",
        facts as f64 / report_med,
        report_med / raw_med
    );
}
