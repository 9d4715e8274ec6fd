//! `donghanh report` on a supervisor's phone: the hand-worked commune's October, offline, from
//! the real binary on a real store synced from the real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use donghanh_core::domain::{AnyRecord, Role};
use donghanh_core::report::worked::{EXPECTED_2026_10, EXPECTED_PERCENT, NAMES, records};
use donghanh_core::report::{Report, Value};
use donghanh_e2e::{PIN, TestServer};

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(dir)
        .args(args)
        .env("DONGHANH_PIN", PIN)
        .output()
        .unwrap()
}

fn fails_with(o: &Output, needle: &str) {
    assert!(!o.status.success());
    let err = String::from_utf8(o.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("lỗi: ") && err.contains("| error: "),
        "{err:?}"
    );
    assert!(err.contains(needle), "{err:?} should say {needle:?}");
}

#[test]
fn a_supervisor_prints_the_worked_commune_report_offline() {
    let server = TestServer::start();
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("gs");
    {
        let phone = server.enroll(&dir, "gs.mot");
        for r in records(
            server.commune,
            server.point,
            donghanh_core::domain::Id::new(),
        ) {
            let done = match &r {
                AnyRecord::Person(x) => phone.add_record(x),
                AnyRecord::Episode(x) => phone.add_record(x),
                AnyRecord::Visit(x) => phone.add_record(x),
                AnyRecord::DrugTest(x) => phone.add_record(x),
                AnyRecord::SupportBenefit(x) => phone.add_record(x),
                AnyRecord::Referral(x) => phone.add_record(x),
                AnyRecord::RelapseEvent(x) => phone.add_record(x),
                AnyRecord::Session(x) => phone.add_record(x),
                AnyRecord::Attendance(x) => phone.add_record(x),
                AnyRecord::Transfer(x) => phone.add_record(x),
                other => panic!("{:?}", other.kind()),
            };
            done.unwrap();
        }
        // The directory (the supervisor's commune) comes with a sync.
        phone.sync().unwrap();
    }
    drop(server); // Offline from here on.

    let o = run(&dir, &["report", "--period", "2026-10", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Report = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report.template, "01-BCN");
    for (code, want) in EXPECTED_2026_10 {
        assert_eq!(report.row(code).unwrap().value.whole(), *want, "{code}");
    }
    for (code, num, den, pct) in EXPECTED_PERCENT {
        assert_eq!(
            report.row(code).unwrap().value,
            Value::Percent {
                numerator: *num,
                denominator: *den,
                percent: Some(*pct)
            },
            "{code}"
        );
    }

    let o = run(&dir, &["report", "--period", "2026-10"]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("01-BCN — Báo cáo tháng"), "{text}");
    assert!(text.contains("30.000.000 đ"), "{text}");
    for name in NAMES {
        assert!(!text.contains(name), "a name in the report");
    }

    // The form as a spreadsheet, and the record books (which name people: each person listed
    // gets an access-log entry waiting for sync, with the purpose).
    let files = tempfile::tempdir().unwrap();
    let xlsx = files.path().join("01-BCN thang 10.xlsx");
    let o = run(
        &dir,
        &[
            "report",
            "--period",
            "2026-10",
            "--unit-name",
            "Xã Thử Nghiệm",
            "--out",
        ],
    );
    fails_with(&o, "--out");
    let o = Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(&dir)
        .args([
            "report",
            "--period",
            "2026-10",
            "--unit-name",
            "Xã Thử Nghiệm",
            "--out",
        ])
        .arg(&xlsx)
        .env("DONGHANH_PIN", PIN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        use donghanh_core::report::export::{COL_CODE, COL_VALUE, FORM_HEADER_ROW};
        let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
        let sheet = wb.worksheet_range("01-BCN").unwrap();
        assert_eq!(
            sheet.get_value((1, 0)),
            Some(&Data::String("XÃ THỬ NGHIỆM".into()))
        );
        let row = (FORM_HEADER_ROW + 1..FORM_HEADER_ROW + 200)
            .find(|r| {
                sheet.get_value((*r, u32::from(COL_CODE)))
                    == Some(&Data::String("BEN_LOAN_VND".into()))
            })
            .unwrap();
        assert_eq!(
            sheet.get_value((row, u32::from(COL_VALUE))),
            Some(&Data::Float(30_000_000.0))
        );
    }
    let pending = |dir: &Path| -> usize {
        let o = run(dir, &["pending"]);
        String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
    };
    let before = pending(&dir);
    let book = files.path().join("so04.xlsx");
    let o = Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(&dir)
        .args(["book", "04-SCN", "--as-of", "2026-10-31"])
        .args([
            "--purpose",
            "In sổ theo dõi tháng 10 markerpurpose",
            "--out",
        ])
        .arg(&book)
        .env("DONGHANH_PIN", PIN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed = String::from_utf8(o.stdout).unwrap();
    assert!(
        printed.trim_end().ends_with("\t3"),
        "three people in Sổ 04: {printed}"
    );
    assert_eq!(
        pending(&dir),
        before + 3,
        "one access-log entry per person listed"
    );
    {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let mut wb: Xlsx<_> = open_workbook(&book).unwrap();
        let sheet = wb.worksheet_range("Sổ 04-SCN").unwrap();
        let header = donghanh_core::report::books::BOOK_HEADER_ROW;
        let names: Vec<String> = (header + 1..header + 10)
            .filter_map(|r| match sheet.get_value((r, 1)) {
                Some(Data::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(names, vec![NAMES[2], NAMES[4], NAMES[0]]);
    }
    let csv_book = files.path().join("so05.csv");
    let o = Command::new(env!("CARGO_BIN_EXE_donghanh"))
        .arg("--data")
        .arg(&dir)
        .args([
            "book",
            "05",
            "--as-of",
            "2026-10-31",
            "--purpose",
            "Báo cáo",
            "--out",
        ])
        .arg(&csv_book)
        .env("DONGHANH_PIN", PIN)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&csv_book).unwrap().lines().count(),
        6
    );
    // Refused: no purpose, an empty one, an unknown book, a format we do not write, a file
    // that exists. None of them logs anything.
    let after = pending(&dir);
    let bad = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_donghanh"))
            .arg("--data")
            .arg(&dir)
            .args(args)
            .env("DONGHANH_PIN", PIN)
            .output()
            .unwrap()
    };
    let out = |name: &str| files.path().join(name).to_str().unwrap().to_owned();
    fails_with(&bad(&["book", "04", "--out", &out("a.xlsx")]), "--purpose");
    fails_with(
        &bad(&["book", "04", "--purpose", "  ", "--out", &out("b.xlsx")]),
        "purpose",
    );
    fails_with(
        &bad(&["book", "07", "--purpose", "x", "--out", &out("c.xlsx")]),
        "04-SCN",
    );
    fails_with(
        &bad(&["book", "04", "--purpose", "x", "--out", &out("d.pdf")]),
        ".xlsx",
    );
    fails_with(
        &bad(&[
            "book",
            "04",
            "--purpose",
            "x",
            "--out",
            book.to_str().unwrap(),
        ]),
        "already exists",
    );
    fails_with(
        &bad(&[
            "book",
            "04",
            "--purpose",
            "x",
            "--out",
            &out("no-such-dir/e.xlsx"),
        ]),
        "file error",
    );
    assert_eq!(pending(&dir), after);
    assert!(!files.path().join("b.xlsx").exists());
    // No file of the store holds the purpose in clear.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
        assert!(!bytes.windows(13).any(|w| w == b"markerpurpose"));
    }

    fails_with(&run(&dir, &["report", "--period", "2026-13"]), "2026-13");
    fails_with(
        &run(
            &dir,
            &["report", "--period", "2026-H2", "--template", "01-BCN"],
        ),
        "01-BCN",
    );
    fails_with(
        &run(
            &dir,
            &["report", "--period", "2026-10", "--template", "NOPE"],
        ),
        "NOPE",
    );
}

#[test]
fn a_volunteer_phone_refuses_the_commune_report() {
    let server = TestServer::start();
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let dirs = tempfile::tempdir().unwrap();
    let dir = dirs.path().join("v");
    drop(server.enroll(&dir, "tnv.an"));
    fails_with(
        &run(&dir, &["report", "--period", "2026-10"]),
        "giám sát viên",
    );
    fails_with(
        &run(
            &dir,
            &[
                "book",
                "04",
                "--purpose",
                "in sổ",
                "--out",
                "/tmp/never.xlsx",
            ],
        ),
        "giám sát viên",
    );
    assert!(!Path::new("/tmp/never.xlsx").exists());
}
