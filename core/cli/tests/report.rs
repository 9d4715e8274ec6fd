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
}
