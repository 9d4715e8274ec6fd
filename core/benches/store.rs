//! Store benchmark: the encrypted store beside raw rusqlite doing the same work on the same
//! plaintext, in the same run, with the same pragmas (WAL, synchronous=NORMAL, secure_delete).
//!
//! Run: `cargo bench -p donghanh-core --bench store` (BENCHMARKS.md has the figures).
//! `DONGHANH_BENCH_QUICK=1` runs a smaller version (CI runs it so the bench keeps working;
//! its figures are not the ones recorded).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use donghanh_core::domain::{FollowUpTask, Person, Sex, ValidationContext, Visit};
use donghanh_core::search;
use donghanh_core::{Device, FileKeyStore};
use rusqlite::{Connection, params};

const FAMILY: [&str; 10] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
];
const MIDDLE: [&str; 6] = ["Văn", "Thị", "Minh", "Quốc", "Thanh", "Hữu"];
const GIVEN: [&str; 12] = [
    "An", "Bình", "Cường", "Dũng", "Hà", "Hùng", "Lan", "Long", "Phúc", "Sơn", "Tuấn", "Yến",
];

fn name(i: usize) -> String {
    format!(
        "{} {} {}",
        FAMILY[i % 10],
        MIDDLE[(i / 10) % 6],
        GIVEN[(i / 60 + i) % 12]
    )
}

fn person(i: usize) -> Person {
    let birth = NaiveDate::from_ymd_opt(
        1980 + (i % 25) as i32,
        1 + (i % 12) as u32,
        1 + (i % 28) as u32,
    )
    .unwrap();
    let mut p = Person::new(
        name(i),
        birth,
        if i.is_multiple_of(5) {
            Sex::Female
        } else {
            Sex::Male
        },
    );
    p.phone = Some(format!("09{i:08}"));
    p.address = Some(format!("Thôn {} xã Tân Hòa", i % 7));
    p
}

fn visit(person: &Person, i: usize) -> Visit {
    let at = Utc
        .with_ymd_and_hms(2026, 1 + (i % 10) as u32, 1 + (i % 27) as u32, 2, 0, 0)
        .unwrap();
    Visit::new(
        person.id,
        at,
        "Gia đình hợp tác tốt; đang đi làm phụ hồ, tinh thần ổn định, hẹn thăm lại sau hai tuần.",
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Raw rusqlite: the same rows in plaintext JSON, the same pragmas, no crypto, no validation.
struct Raw {
    conn: Connection,
    seq: i64,
}

struct RawRow<'a> {
    kind: &'a str,
    id: &'a [u8; 16],
    subject: &'a [u8; 16],
    day: Option<String>,
    state: Option<&'a str>,
    body: Vec<u8>,
    folded: Option<String>,
}

impl Raw {
    fn new(path: &Path) -> Raw {
        let conn = Connection::open(path).unwrap();
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON; PRAGMA temp_store=MEMORY;
             PRAGMA cache_size=-8192;
             CREATE TABLE records (rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,
               kind TEXT NOT NULL, scope TEXT NOT NULL, subject BLOB, day TEXT, state TEXT,
               version INTEGER NOT NULL, body BLOB NOT NULL, name_folded TEXT) STRICT;
             CREATE INDEX records_kind_subject_day ON records(kind, subject, day, state);
             CREATE TABLE outbox (client_seq INTEGER PRIMARY KEY, record_id BLOB NOT NULL,
               kind TEXT NOT NULL, scope TEXT NOT NULL, op TEXT NOT NULL,
               base_version INTEGER NOT NULL, body BLOB NOT NULL,
               created_at INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        Raw { conn, seq: 0 }
    }

    fn insert_in(conn: &Connection, seq: &mut i64, row: &RawRow<'_>) {
        let scope = "person:00000000-0000-4000-8000-000000000000";
        conn.prepare_cached(
            "INSERT INTO records(id, kind, scope, subject, day, state, version, body, name_folded)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
        )
        .unwrap()
        .execute(params![
            row.id,
            row.kind,
            scope,
            row.subject,
            row.day,
            row.state,
            row.body,
            row.folded
        ])
        .unwrap();
        *seq += 1;
        conn.prepare_cached(
            "INSERT INTO outbox(client_seq, record_id, kind, scope, op, base_version, body, created_at)
             VALUES (?1, ?2, ?3, ?4, 'create', 0, ?5, 0)",
        )
        .unwrap()
        .execute(params![*seq, row.id, row.kind, scope, row.body])
        .unwrap();
    }

    fn add_person(&mut self, p: &Person) {
        let tx = self.conn.transaction().unwrap();
        let row = RawRow {
            kind: "person",
            id: p.id.as_bytes(),
            subject: p.id.as_bytes(),
            day: None,
            state: None,
            body: serde_json::to_vec(p).unwrap(),
            folded: Some(search::fold(&p.full_name)),
        };
        Self::insert_in(&tx, &mut self.seq, &row);
        tx.commit().unwrap();
    }

    fn add_task(&mut self, t: &FollowUpTask) {
        let tx = self.conn.transaction().unwrap();
        let row = RawRow {
            kind: "task",
            id: t.id.as_bytes(),
            subject: t.person.as_bytes(),
            day: Some(t.due.to_string()),
            state: Some("open"),
            body: serde_json::to_vec(t).unwrap(),
            folded: None,
        };
        Self::insert_in(&tx, &mut self.seq, &row);
        tx.commit().unwrap();
    }

    fn visit_row(v: &Visit) -> RawRow<'_> {
        RawRow {
            kind: "visit",
            id: v.id.as_bytes(),
            subject: v.person.as_bytes(),
            day: Some(v.at.date_naive().to_string()),
            state: None,
            body: serde_json::to_vec(v).unwrap(),
            folded: None,
        }
    }

    /// What a plaintext app does to record a visit: check that the person exists, look up their
    /// active episode, insert, queue.
    fn add_visit_in(conn: &Connection, seq: &mut i64, v: &Visit) {
        let exists = conn
            .prepare_cached("SELECT 1 FROM records WHERE id = ?1 AND kind = 'person'")
            .unwrap()
            .exists([v.person.as_bytes()])
            .unwrap();
        assert!(exists);
        let active: Vec<Vec<u8>> = conn
            .prepare_cached(
                "SELECT body FROM records WHERE kind = 'episode' AND subject = ?1 AND state = 'active'",
            )
            .unwrap()
            .query_map([v.person.as_bytes()], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        black_box(active);
        Self::insert_in(conn, seq, &Self::visit_row(v));
    }

    fn caseload(&self) -> usize {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.body,
                   (SELECT MIN(t.day) FROM records t
                     WHERE t.kind = 'task' AND t.subject = p.id AND t.state = 'open'),
                   (SELECT MAX(v.day) FROM records v WHERE v.kind = 'visit' AND v.subject = p.id)
                 FROM records p WHERE p.kind = 'person'",
            )
            .unwrap();
        let mut rows: Vec<(Option<String>, String, Person)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .unwrap()
            .map(|row| {
                let (body, next, last) = row.unwrap();
                black_box(last);
                let p: Person = serde_json::from_slice(&body).unwrap();
                (next, search::fold(&p.full_name), p)
            })
            .collect();
        rows.sort_by(|a, b| (a.0.is_none(), &a.0, &a.1).cmp(&(b.0.is_none(), &b.0, &b.1)));
        rows.len()
    }

    fn search(&self, query: &str) -> usize {
        let like = format!("%{}%", search::words(query).join("%"));
        self.conn
            .prepare_cached(
                "SELECT body FROM records WHERE kind = 'person' AND name_folded LIKE ?1",
            )
            .unwrap()
            .query_map([like], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|b| serde_json::from_slice::<Person>(&b.unwrap()).unwrap())
            .filter(|p| search::matches(&p.full_name, query))
            .count()
    }
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..runs).map(|_| f()).collect();
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var_os("DONGHANH_BENCH_QUICK").is_some();
    // Bulk batches: (visits per transaction, rounds). Rounds alternate ours/raw; medians shown.
    let (single_n, bulk_sizes, people_n, reps): (usize, &[(usize, usize)], usize, usize) = if quick
    {
        (200, &[(2_000, 1)], 500, 5)
    } else {
        (5_000, &[(10_000, 7), (100_000, 1)], 500, 31)
    };
    let dir = tempfile::tempdir().unwrap();
    let pin = "bench-pin-2468";

    // --- unlock ---------------------------------------------------------------------------
    let dev_dir = dir.path().join("device");
    std::fs::create_dir_all(&dev_dir).unwrap();
    let ks = FileKeyStore::create(dev_dir.join("device.key")).unwrap();
    drop(Device::init(&dev_dir, &ks, pin).unwrap());
    let unlock = median_of(if quick { 1 } else { 5 }, || {
        time(|| Device::open(&dev_dir, &ks, pin).unwrap()).1
    });
    let device = Device::open(&dev_dir, &ks, pin).unwrap();

    // --- caseload data: 500 people, 2 open tasks and 3 visits each -------------------------
    let mut raw = Raw::new(&dir.path().join("raw.db"));
    let people: Vec<Person> = (0..people_n).map(person).collect();
    for (i, p) in people.iter().enumerate() {
        device.add_person(p).unwrap();
        raw.add_person(p);
        for k in 0..2 {
            let due = NaiveDate::from_ymd_opt(2026, 12, 1 + ((i + k * 7) % 28) as u32).unwrap();
            let t = FollowUpTask::new(p.id, due, "Thăm gia đình, xét nghiệm định kỳ");
            device.add_task(&t).unwrap();
            raw.add_task(&t);
        }
    }
    let ctx = ValidationContext::now();
    let history: Vec<Visit> = people
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (0..3).map(move |k| visit(p, i * 3 + k)))
        .collect();
    device
        .store()
        .write(|w| history.iter().try_for_each(|v| w.insert(v, &ctx).map(drop)))
        .unwrap();
    {
        let tx = raw.conn.transaction().unwrap();
        for v in &history {
            Raw::add_visit_in(&tx, &mut raw.seq, v);
        }
        tx.commit().unwrap();
    }

    // --- recording a visit, one transaction each, interleaved ------------------------------
    let mut ours = Vec::with_capacity(single_n);
    let mut theirs = Vec::with_capacity(single_n);
    for i in 0..single_n {
        let p = &people[i % people.len()];
        let v = visit(p, i);
        ours.push(time(|| device.add_visit(&v).unwrap()).1);
        let v = visit(p, i);
        theirs.push(
            time(|| {
                let tx = raw.conn.transaction().unwrap();
                Raw::add_visit_in(&tx, &mut raw.seq, &v);
                tx.commit().unwrap();
            })
            .1,
        );
    }
    ours.sort();
    theirs.sort();

    // --- bulk: many visits in one transaction, at two batch sizes ---------------------------
    let mut bulk = Vec::new();
    for &(bulk_n, rounds) in bulk_sizes {
        let (mut ours_in, mut theirs_in, mut ours_all, mut theirs_all) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let visits: Vec<Visit> = (0..bulk_n)
                .map(|i| visit(&people[i % people.len()], i))
                .collect();
            let (inside, all) = time(|| {
                device
                    .store()
                    .write(|w| {
                        let t = Instant::now();
                        visits
                            .iter()
                            .try_for_each(|v| w.insert(v, &ctx).map(drop))?;
                        Ok(t.elapsed())
                    })
                    .unwrap()
            });
            ours_in.push(inside);
            ours_all.push(all);
            let visits: Vec<Visit> = (0..bulk_n)
                .map(|i| visit(&people[i % people.len()], i))
                .collect();
            let (inside, all) = time(|| {
                let tx = raw.conn.transaction().unwrap();
                let t = Instant::now();
                for v in &visits {
                    Raw::insert_in(&tx, &mut raw.seq, &Raw::visit_row(v));
                }
                let inside = t.elapsed();
                tx.commit().unwrap();
                inside
            });
            theirs_in.push(inside);
            theirs_all.push(all);
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        bulk.push((
            bulk_n,
            rounds,
            median(ours_in),
            median(theirs_in),
            median(ours_all),
            median(theirs_all),
        ));
    }

    // --- caseload and search ---------------------------------------------------------------
    assert_eq!(device.caseload().unwrap().len(), people_n);
    assert_eq!(raw.caseload(), people_n);
    let case_ours = median_of(reps, || {
        time(|| black_box(device.caseload().unwrap().len())).1
    });
    let case_raw = median_of(reps, || time(|| black_box(raw.caseload())).1);
    let query = "nguyen van";
    let hits_ours = device.find_people(query).unwrap().len();
    let hits_raw = raw.search(query);
    assert_eq!(
        hits_ours, hits_raw,
        "both searches must find the same people"
    );
    let search_ours = median_of(reps, || {
        time(|| black_box(device.find_people(query).unwrap().len())).1
    });
    let search_raw = median_of(reps, || time(|| black_box(raw.search(query))).1);

    println!(
        "donghanh-core store benchmark{}",
        if quick { " (quick)" } else { "" }
    );
    println!("| measure | donghanh (encrypted) | raw rusqlite (plaintext) | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!("| {name} | {a:.3} {unit} | {b:.3} {unit} | {:.2}× |", a / b);
    };
    row(
        &format!("record a visit, p50 ({single_n} commits)"),
        ms(percentile(&ours, 0.5)),
        ms(percentile(&theirs, 0.5)),
        "ms",
    );
    row(
        &format!("record a visit, p99 ({single_n} commits)"),
        ms(percentile(&ours, 0.99)),
        ms(percentile(&theirs, 0.99)),
        "ms",
    );
    for (bulk_n, rounds, ours_inside, theirs_inside, ours, theirs) in bulk {
        let rate = |d: Duration| bulk_n as f64 / d.as_secs_f64();
        println!(
            "| bulk: {bulk_n} visits inside one transaction (median of {rounds}) | {:.0} /s | {:.0} /s | {:.2}× (time) |",
            rate(ours_inside),
            rate(theirs_inside),
            ours_inside.as_secs_f64() / theirs_inside.as_secs_f64()
        );
        println!(
            "| bulk: the same, including commit and WAL checkpoint | {:.0} /s | {:.0} /s | {:.2}× (time) |",
            rate(ours),
            rate(theirs),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
    row(
        &format!("caseload of {people_n} with next due task (median of {reps})"),
        ms(case_ours),
        ms(case_raw),
        "ms",
    );
    row(
        &format!("name search \"{query}\", {hits_ours} of {people_n} match (median of {reps})"),
        ms(search_ours),
        ms(search_raw),
        "ms",
    );
    println!(
        "| unlock (PBKDF2-HMAC-SHA256, 600,000 iterations, median of {}) | {:.1} ms | – | – |",
        if quick { 1 } else { 5 },
        ms(unlock)
    );
}
