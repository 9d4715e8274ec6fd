//! Reports end to end: the hand-worked commune (`donghanh_core::report::worked`) recorded on a
//! supervisor's phone, synced to the real server, and its report computed by the server (API
//! and command line) and by another supervisor phone offline — the same numbers everywhere,
//! and the province's half-year rolls up two communes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use donghanh_core::Device;
use donghanh_core::domain::{AnyRecord, Id, OrgUnitKind, Role};
use donghanh_core::report::worked::{EXPECTED_2026_10, EXPECTED_PERCENT, NAMES, records};
use donghanh_core::report::{Period, Report, Value};
use donghanh_e2e::{RawDevice, TestServer};

fn add(device: &Device, record: &AnyRecord) {
    let result = match record {
        AnyRecord::Person(r) => device.add_record(r),
        AnyRecord::Episode(r) => device.add_record(r),
        AnyRecord::Visit(r) => device.add_record(r),
        AnyRecord::DrugTest(r) => device.add_record(r),
        AnyRecord::SupportBenefit(r) => device.add_record(r),
        AnyRecord::Referral(r) => device.add_record(r),
        AnyRecord::RelapseEvent(r) => device.add_record(r),
        AnyRecord::Session(r) => device.add_record(r),
        AnyRecord::Attendance(r) => device.add_record(r),
        AnyRecord::Transfer(r) => device.add_record(r),
        other => panic!("the worked commune has no {:?}", other.kind()),
    };
    result.unwrap_or_else(|e| panic!("{:?}: {e}", record.kind()));
}

fn check_expected(report: &Report, factor: i64) {
    for (code, want) in EXPECTED_2026_10 {
        assert_eq!(
            report.row(code).unwrap().value.whole(),
            want * factor,
            "{code}"
        );
    }
    for (code, num, den, pct) in EXPECTED_PERCENT {
        assert_eq!(
            report.row(code).unwrap().value,
            Value::Percent {
                numerator: num * factor,
                denominator: den * factor,
                percent: Some(*pct)
            },
            "{code}"
        );
    }
}

/// The server's binary, built by `cargo test --workspace` beside this test's.
fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("donghanh-server");
    assert!(
        bin.exists(),
        "{} is missing: run cargo test --workspace",
        bin.display()
    );
    bin
}

#[test]
fn the_server_the_api_the_command_line_and_a_phone_give_the_hand_worked_numbers() {
    let server = TestServer::start();
    let commune2 = server.add_unit("Xã Thứ Hai", OrgUnitKind::Commune, Some(server.province));
    let point2 = server.add_unit("Điểm Thứ Hai", OrgUnitKind::CommunityPoint, Some(commune2));
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let _ = server.add_user_at("gs.hai", Role::Supervisor, commune2, None);
    let _ = server.add_user_at("cb.tinh", Role::Officer, server.province, None);
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let dirs = tempfile::tempdir().unwrap();

    // Each commune's supervisor records its worked commune and syncs.
    let phone1 = server.enroll(&dirs.path().join("gs1"), "gs.mot");
    for r in records(server.commune, server.point, commune2) {
        add(&phone1, &r);
    }
    let report1 = phone1.sync().unwrap();
    assert_eq!(report1.rejected, 0, "{report1:?}");
    let phone2 = server.enroll(&dirs.path().join("gs2"), "gs.hai");
    for r in records(commune2, point2, server.commune) {
        add(&phone2, &r);
    }
    assert_eq!(phone2.sync().unwrap().rejected, 0);

    // A second phone of the first supervisor downloads the commune and computes offline.
    let fresh = server.enroll(&dirs.path().join("gs1-new"), "gs.mot");
    fresh.sync().unwrap();
    let oct = Period::parse("2026-10").unwrap();
    let on_phone = fresh.report("01-BCN", oct).unwrap();
    check_expected(&on_phone, 1);
    // The phone that recorded it agrees, breakdowns included.
    phone1.sync().unwrap();
    assert_eq!(phone1.report("01-BCN", oct).unwrap(), on_phone);

    // The API gives the same report, to the supervisor and to the province officer.
    let sup = RawDevice::enroll(&server, "gs.mot");
    let path = format!("/v1/reports/01-BCN?org={}&period=2026-10", server.commune);
    let (status, body) = sup.get(&path);
    assert_eq!(status, 200, "{body}");
    let from_api: Report = serde_json::from_value(body).unwrap();
    assert_eq!(from_api, on_phone, "the server and the phone disagree");
    let officer = RawDevice::enroll(&server, "cb.tinh");
    let (status, body) = officer.get(&path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_value::<Report>(body).unwrap(), on_phone);

    // The province's half-year rolls up both communes: every count doubles, every
    // percentage stays (the two communes are the same story).
    let (status, body) = officer.get(&format!(
        "/v1/reports/PROVINCE-H?org={}&period=2026-H2",
        server.province
    ));
    assert_eq!(status, 200, "{body}");
    let h2: Report = serde_json::from_value(body).unwrap();
    assert_eq!(h2.row("FILE_ACTIVE_END").unwrap().value.whole(), 6);
    assert_eq!(h2.row("COMPLETERS").unwrap().value.whole(), 6);
    assert_eq!(h2.row("BEN_LOAN_VND").unwrap().value.whole(), 60_000_000);
    assert_eq!(h2.row("ATTENDANCE").unwrap().value.whole(), 20);
    // Over July–December E is reached too (counselling on 30 September and 1 November),
    // so all three people with a file in each commune are: 6 of 6.
    assert_eq!(
        h2.row("REACHED_PCT").unwrap().value,
        Value::Percent {
            numerator: 6,
            denominator: 6,
            percent: Some(100.0)
        }
    );
    let by_commune = &h2.row("FILE_ACTIVE_END").unwrap().breakdown["commune"];
    assert_eq!(by_commune[&server.commune.to_string()], 3);
    assert_eq!(by_commune[&commune2.to_string()], 3);

    // The server keeps report facts beside the records: none of them holds a name or a note
    // in clear (a person's fact is sealed).
    for file in ["server.db", "server.db-wal"] {
        let bytes = std::fs::read(server.dir.path().join(file)).unwrap_or_default();
        for marker in NAMES.iter().copied().chain(["markervisit", "markerdoctor"]) {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{marker} in {file}"
            );
        }
    }

    // The records behind a number: the supervisor of the commune may list them (audited); the
    // officer sees aggregates only.
    let (status, body) = sup.get(&format!(
        "/v1/reports/records?org={}&period=2026-10&indicator=BEN_LOAN_VND",
        server.commune
    ));
    assert_eq!(status, 200, "{body}");
    let listed = body["records"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "the two loans");
    assert!(listed.iter().all(|r| r["kind"] == "benefit"));
    let loans = format!(
        "/v1/reports/records?org={}&period=2026-10&indicator=BEN_LOAN_VND",
        server.commune
    );
    let (status, _) = officer.get(&loans);
    assert_eq!(status, 403);

    // Break-the-glass: the officer writes a reason and gets names for a limited time, audited;
    // a one-word reason, a day-long grant, a supervisor or an unknown unit are refused.
    let glass = |who: &RawDevice, org: Id, reason: &str, minutes: u32| {
        who.post(
            "/v1/break-glass",
            &serde_json::json!({"org": org, "reason": reason, "minutes": minutes}),
        )
    };
    let reason = "Tòa án nhân dân tỉnh yêu cầu xác minh khoản vay markerreason";
    assert_eq!(glass(&officer, server.commune, "kiểm tra", 30).0, 400);
    assert_eq!(glass(&officer, server.commune, reason, 24 * 60).0, 400);
    assert_eq!(glass(&sup, server.commune, reason, 30).0, 403);
    assert_eq!(glass(&officer, Id::new(), reason, 30).0, 404);
    let (status, _) = officer.get(&loans);
    assert_eq!(status, 403, "refused requests grant nothing");
    let (status, grant) = glass(&officer, server.commune, reason, 30);
    assert_eq!(status, 201, "{grant}");
    let (status, body) = officer.get(&loans);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"].as_array().unwrap().len(), 2);
    let people: Vec<&str> = body["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["full_name"].as_str().unwrap())
        .collect();
    assert_eq!(people, vec![NAMES[0]], "the two loans are A's");
    // The supervisor's answer carries no names (the phone holds them).
    let (_, body) = sup.get(&loans);
    assert!(body.get("people").is_none());
    // The grant covers the unit it names (and below), nothing else.
    let (status, _) = officer.get(&format!(
        "/v1/reports/records?org={commune2}&period=2026-10&indicator=BEN_LOAN_VND"
    ));
    assert_eq!(status, 403);
    let (status, _) = sup.get(&format!(
        "/v1/reports/records?org={}&period=2026-10&indicator=NOPE",
        server.commune
    ));
    assert_eq!(status, 400);

    // The server's command line, on the same data directory.
    let out = Command::new(server_binary())
        .args(server.cli_args())
        .args(["report", "--org", &server.commune.to_string()])
        .args(["--period", "2026-10", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_cli: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_cli, on_phone, "the server's command line disagrees");
    let text = Command::new(server_binary())
        .args(server.cli_args())
        .args(["report", "--org", &server.commune.to_string()])
        .args(["--period", "2026-10"])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("30.000.000 đ"), "{text}");
    assert!(text.contains("66,7 % (2/3)"), "{text}");
    for name in NAMES {
        assert!(!text.contains(name), "a name in the report");
    }

    // Exports: the API's XLSX, the server command line's XLSX and the phone's XLSX all hold the
    // hand-worked numbers in the form's value column, and name the commune; the CSVs agree.
    let (status, kind, api_xlsx) = sup.get_bytes(&format!("{path}&format=xlsx"));
    assert_eq!(status, 200);
    assert_eq!(
        kind,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    check_xlsx(&api_xlsx, "XÃ THỬ NGHIỆM");
    let files = tempfile::tempdir().unwrap();
    let server_xlsx = files.path().join("01-BCN.xlsx");
    let out = Command::new(server_binary())
        .args(server.cli_args())
        .args(["report", "--org", &server.commune.to_string()])
        .args(["--period", "2026-10", "--out"])
        .arg(&server_xlsx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_xlsx(&std::fs::read(&server_xlsx).unwrap(), "XÃ THỬ NGHIỆM");
    // An existing file is not replaced.
    let again = Command::new(server_binary())
        .args(server.cli_args())
        .args(["report", "--org", &server.commune.to_string()])
        .args(["--period", "2026-10", "--out"])
        .arg(&server_xlsx)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let phone_xlsx = donghanh_core::report::export::to_xlsx(
        &on_phone,
        &donghanh_core::report::export::Labels {
            org_name: "Xã Thử Nghiệm".into(),
            ..Default::default()
        },
    )
    .unwrap();
    check_xlsx(&phone_xlsx, "XÃ THỬ NGHIỆM");
    let (status, kind, api_csv) = sup.get_bytes(&format!("{path}&format=csv"));
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    let commune_names = donghanh_core::report::export::Labels {
        units: std::collections::HashMap::from([(
            server.commune.to_string(),
            "Xã Thử Nghiệm".to_owned(),
        )]),
        ..Default::default()
    };
    assert_eq!(
        api_csv,
        donghanh_core::report::export::to_csv(&on_phone, &commune_names).unwrap(),
        "the API's CSV and the phone's differ"
    );
    let (status, body) = sup.get(&format!("{path}&format=pdf"));
    assert_eq!(status, 400, "{body}");

    // The break-the-glass reason is sealed at rest like the names.
    for file in ["server.db", "server.db-wal"] {
        let bytes = std::fs::read(server.dir.path().join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(12).any(|w| w == b"markerreason"),
            "the reason in clear in {file}"
        );
    }
}

/// The form sheet of an exported 01-BCN holds every hand-worked number in its value column.
fn check_xlsx(bytes: &[u8], unit: &str) {
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use donghanh_core::report::export::{COL_CODE, COL_VALUE, FORM_HEADER_ROW};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = wb.worksheet_range("01-BCN").unwrap();
    let at = |r: u32, c: u16| sheet.get_value((r, u32::from(c))).cloned();
    assert_eq!(at(1, 0), Some(Data::String(unit.to_owned())));
    let mut seen = 0;
    for row in FORM_HEADER_ROW + 1..FORM_HEADER_ROW + 200 {
        let Some(Data::String(code)) = at(row, COL_CODE) else {
            continue;
        };
        let want = EXPECTED_PERCENT
            .iter()
            .find(|p| p.0 == code)
            .map(|p| p.3 / 100.0)
            .or_else(|| {
                EXPECTED_2026_10
                    .iter()
                    .find(|e| e.0 == code)
                    .map(|e| e.1 as f64)
            })
            .unwrap_or_else(|| panic!("{code} is not on the form"));
        assert_eq!(at(row, COL_VALUE), Some(Data::Float(want)), "{code}");
        seen += 1;
    }
    assert_eq!(seen, EXPECTED_2026_10.len());
}

#[test]
fn reports_answer_only_those_who_may_see_them_and_refuse_bad_requests() {
    let server = TestServer::start();
    let commune2 = server.add_unit("Xã Thứ Hai", OrgUnitKind::Commune, Some(server.province));
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let _ = server.add_user_at(
        "tv.binh",
        Role::Counsellor,
        server.commune,
        Some(server.point),
    );
    let _ = server.add_user_at("cb.xa2", Role::Officer, commune2, None);
    let sup = RawDevice::enroll(&server, "gs.mot");
    let report = |who: &RawDevice, org: Id, query: &str| {
        who.get(&format!("/v1/reports/01-BCN?org={org}&{query}"))
    };
    // Another commune, the province above: not the supervisor's.
    for org in [commune2, server.province] {
        let (status, body) = report(&sup, org, "period=2026-10");
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "forbidden");
    }
    // A unit within their commune: allowed (the point's sessions only).
    assert_eq!(report(&sup, server.point, "period=2026-10").0, 200);
    // Volunteers and counsellors see no report; an officer only within their own unit.
    for who in ["tnv.an", "tv.binh"] {
        let d = RawDevice::enroll(&server, who);
        assert_eq!(report(&d, server.commune, "period=2026-10").0, 403, "{who}");
    }
    let officer2 = RawDevice::enroll(&server, "cb.xa2");
    assert_eq!(report(&officer2, server.commune, "period=2026-10").0, 403);
    assert_eq!(report(&officer2, commune2, "period=2026-10").0, 200);
    // Bad requests: 4xx with the error body.
    for (query, status) in [
        ("period=2026-13", 400),
        ("period=2026-H1", 400),
        ("period=", 400),
        ("", 400),
        ("period=2026-10&colour=red", 400),
    ] {
        let (got, body) = report(&sup, server.commune, query);
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body["code"], "invalid_input", "{query}");
    }
    let (status, body) = sup.get(&format!(
        "/v1/reports/99-XYZ?org={}&period=2026-10",
        server.commune
    ));
    assert_eq!(status, 404, "{body}");
    let (status, _) = report(&sup, Id::new(), "period=2026-10");
    assert_eq!(status, 404);
    let (status, _) = sup.get("/v1/reports/01-BCN?org=not-an-id&period=2026-10");
    assert_eq!(status, 400);
}

#[test]
fn only_a_supervisor_phone_computes_the_commune_report() {
    let server = TestServer::start();
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let dirs = tempfile::tempdir().unwrap();
    let phone = server.enroll(&dirs.path().join("v"), "tnv.an");
    let err = phone
        .report("01-BCN", Period::parse("2026-10").unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            donghanh_core::Error::Report(donghanh_core::report::ReportError::NotSupervisor)
        ),
        "{err:?}"
    );
}

fn server_cli(server: &TestServer, args: &[&str]) -> String {
    let out = Command::new(server_binary())
        .args(server.cli_args())
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

/// The Sóc Sơn 2019 targets (DOMAIN.md) set on the worked commune's 2026, with ten staff of
/// whom six were trained in March and a seventh in November: progress on 31 October, the
/// result on 31 December (the numbers are worked out in core/src/report/tests.rs).
#[test]
fn the_soc_son_plan_shows_its_progress_and_result_through_the_api_and_the_command_line() {
    let server = TestServer::start();
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let mut staff = vec![];
    for i in 0..9 {
        staff.push(server.add_user(&format!("tnv.{i}"), Role::Volunteer));
    }
    let commune2 = server.add_unit("Xã Thứ Hai", OrgUnitKind::Commune, Some(server.province));
    let _ = server.add_user_at("gs.hai", Role::Supervisor, commune2, None);
    let dirs = tempfile::tempdir().unwrap();
    let phone = server.enroll(&dirs.path().join("gs"), "gs.mot");
    for r in records(server.commune, server.point, commune2) {
        add(&phone, &r);
    }
    assert_eq!(phone.sync().unwrap().rejected, 0);
    let supervisor = phone.user_id().unwrap();
    for (i, user) in std::iter::once(supervisor).chain(staff).enumerate() {
        let on = match i {
            0..6 => "2026-03-01",
            6 => "2026-11-15",
            _ => continue,
        };
        server_cli(
            &server,
            &[
                "admin",
                "user",
                "trained",
                "--id",
                &user.to_string(),
                "--on",
                on,
            ],
        );
    }

    let sup = RawDevice::enroll(&server, "gs.mot");
    let plan = serde_json::json!({
        "org": server.commune,
        "period": "2026",
        "title": "Chỉ tiêu theo kế hoạch Sóc Sơn 2019",
        "targets": [
            {"indicator": "REHAB_COMPULSORY", "goal": {"at_least": 26}},
            {"indicator": "REHAB_FACILITY_VOLUNTARY", "goal": {"at_least": 82}},
            {"indicator": "VR_NEW", "goal": {"at_least": 17}},
            {"indicator": "COMPLETERS_FILED_PCT", "goal": {"at_least": 100}},
            {"indicator": "STAFF_TRAINED_PCT", "goal": {"at_least": 70}},
            {"indicator": "BEN_JOB_PEOPLE", "goal": {"at_least": 20}},
        ],
    });
    let (status, body) = sup.put("/v1/plans", &plan);
    assert_eq!(status, 204, "{body}");

    let progress = |as_of: &str| {
        let (status, body) = sup.get(&format!(
            "/v1/plans?org={}&period=2026&as_of={as_of}",
            server.commune
        ));
        assert_eq!(status, 200, "{body}");
        body
    };
    let target = |body: &serde_json::Value, code: &str| {
        body["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["indicator"] == code)
            .unwrap()
            .clone()
    };
    let oct = progress("2026-10-31");
    assert_eq!(oct["final_result"], false);
    for (code, status, diff) in [
        ("REHAB_COMPULSORY", "not_yet", -25.0),
        ("REHAB_FACILITY_VOLUNTARY", "not_yet", -81.0),
        ("VR_NEW", "not_yet", -16.0),
        ("COMPLETERS_FILED_PCT", "off_track", -33.3),
        ("STAFF_TRAINED_PCT", "off_track", -10.0),
        ("BEN_JOB_PEOPLE", "not_yet", -19.0),
    ] {
        let t = target(&oct, code);
        assert_eq!(t["status"], status, "{code}: {t}");
        assert_eq!(t["difference"], diff, "{code}: {t}");
    }
    let end = progress("2026-12-31");
    assert_eq!(end["final_result"], true);
    assert_eq!(target(&end, "STAFF_TRAINED_PCT")["status"], "met");
    assert_eq!(target(&end, "STAFF_TRAINED_PCT")["value"]["percent"], 70.0);
    assert_eq!(target(&end, "VR_NEW")["status"], "not_met");

    // The month's report carries the plan's progress to its last day.
    let (status, body) = sup.get(&format!(
        "/v1/reports/01-BCN?org={}&period=2026-10",
        server.commune
    ));
    assert_eq!(status, 200);
    let report: Report = serde_json::from_value(body).unwrap();
    assert_eq!(report.plans.len(), 1);
    assert_eq!(
        serde_json::to_value(&report.plans[0]).unwrap(),
        oct,
        "the report's plan progress"
    );

    // The command line shows the same.
    let shown = server_cli(
        &server,
        &[
            "plan",
            "show",
            "--org",
            &server.commune.to_string(),
            "--period",
            "2026",
            "--as-of",
            "2026-12-31",
        ],
    );
    assert!(
        shown.contains("STAFF_TRAINED_PCT\t70,0 % (7/10)\t>=70\tmet\t0"),
        "{shown}"
    );
    server_cli(
        &server,
        &[
            "plan",
            "set",
            "--org",
            &commune2.to_string(),
            "--period",
            "2026",
            "--target",
            "VR_NEW>=5",
        ],
    );

    // Who may set plans, and what a plan may say.
    let other = RawDevice::enroll(&server, "gs.hai");
    let (status, _) = other.put("/v1/plans", &plan);
    assert_eq!(status, 403);
    let volunteer = RawDevice::enroll(&server, "tnv.0");
    assert_eq!(volunteer.put("/v1/plans", &plan).0, 403);
    for (edit, value) in [
        ("/targets/0/indicator", serde_json::json!("NOPE")),
        ("/targets/3/goal", serde_json::json!({"at_least": 150})),
        ("/targets/0/goal", serde_json::json!({"at_least": 2.5})),
        ("/period", serde_json::json!("2026-13")),
        ("/targets", serde_json::json!([])),
    ] {
        let mut bad = plan.clone();
        *bad.pointer_mut(edit).unwrap() = value;
        let (status, body) = sup.put("/v1/plans", &bad);
        assert_eq!(status, 400, "{edit}: {body}");
        assert_eq!(body["code"], "invalid_input");
    }
    let (status, _) = sup.get(&format!("/v1/plans?org={}&period=2025", server.commune));
    assert_eq!(status, 404, "no plan for 2025");
}

/// A closed period keeps its numbers; a visit recorded late for it shows as a note on the next
/// open period's report, and closing asks for a period that is over and not closed yet.
#[test]
fn a_closed_period_is_frozen_and_late_records_show_on_the_next_open_one() {
    let server = TestServer::start();
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let dirs = tempfile::tempdir().unwrap();
    let phone = server.enroll(&dirs.path().join("gs"), "gs.mot");
    let recs = records(server.commune, server.point, Id::new());
    for r in &recs {
        add(&phone, r);
    }
    phone.sync().unwrap();
    let sup = RawDevice::enroll(&server, "gs.mot");
    let path = |what: &str, period: &str| {
        format!(
            "/v1/reports/01-BCN{what}?org={}&period={period}",
            server.commune
        )
    };
    let (status, body) = sup.post(&path("/close", "2026-10"), &serde_json::json!(null));
    assert_eq!(status, 200, "{body}");
    let closed: Report = serde_json::from_value(body).unwrap();
    assert!(closed.closed.is_some());
    check_expected(&closed, 1);

    // A visit of A on 15 October with counselling, recorded in November.
    let a = recs
        .iter()
        .find_map(|r| match r {
            AnyRecord::Person(p) if p.full_name == NAMES[0] => Some(p.id),
            _ => None,
        })
        .unwrap();
    let mut late =
        donghanh_core::domain::Visit::new(a, "2026-10-15T03:00:00Z".parse().unwrap(), "thăm muộn");
    late.services = vec![donghanh_core::domain::Service::Counselling];
    phone.add_record(&late).unwrap();
    phone.sync().unwrap();

    // October answers as closed; the phone, which knows no closings, counts the late visit.
    let (_, body) = sup.get(&path("", "2026-10"));
    let again: Report = serde_json::from_value(body).unwrap();
    assert_eq!(again, closed, "a closed period changed");
    assert_eq!(
        phone
            .report("01-BCN", Period::parse("2026-10").unwrap())
            .unwrap()
            .row("VISITS")
            .unwrap()
            .value
            .whole(),
        6
    );
    // November notes it: VISITS 5 → 6 for 2026-10 (REACHED stays: A was reached already).
    let (_, body) = sup.get(&path("", "2026-11"));
    let nov: Report = serde_json::from_value(body).unwrap();
    assert!(nov.closed.is_none());
    assert_eq!(nov.late.len(), 1, "{:?}", nov.late);
    assert_eq!(nov.late[0].code, "VISITS");
    assert_eq!(nov.late[0].period.to_string(), "2026-10");
    assert_eq!(nov.late[0].frozen, Value::Count { value: 5 });
    assert_eq!(nov.late[0].now, Value::Count { value: 6 });
    assert_eq!(
        nov.row("VISITS").unwrap().value.whole(),
        1,
        "November's own"
    );

    // Closing twice, closing a running period, closing someone else's: refused.
    let (status, body) = sup.post(&path("/close", "2026-10"), &serde_json::json!(null));
    assert_eq!(status, 400, "{body}");
    let next_month = Period::containing(
        donghanh_core::report::PeriodKind::Month,
        donghanh_core::domain::vn_date(chrono::Utc::now()),
    );
    let (status, body) = sup.post(
        &path("/close", &next_month.to_string()),
        &serde_json::json!(null),
    );
    assert_eq!(status, 400, "{body}");
    let _ = server.add_user("tnv.an", Role::Volunteer);
    let volunteer = RawDevice::enroll(&server, "tnv.an");
    let (status, _) = volunteer.post(&path("/close", "2026-09"), &serde_json::json!(null));
    assert_eq!(status, 403);

    // The server's command line closes too, and shows the closing.
    let text = server_cli(
        &server,
        &[
            "report",
            "--org",
            &server.commune.to_string(),
            "--period",
            "2026-09",
            "--close",
        ],
    );
    assert!(text.contains("Đã chốt kỳ / closed:"), "{text}");
}

/// The server reads a report's facts two ways (store `report_facts`): through the person and
/// point indexes for a small subtree, by one ordered scan of the table when the subtree holds
/// at least an eighth of the cases. Both must give the hand-worked numbers: here commune 1
/// holds 6 of 54 people (the index path) and commune 2 the other 48, eight copies of the
/// worked commune (the scan path).
#[test]
fn a_small_and_a_large_subtree_count_the_same_through_the_index_and_the_scan() {
    let server = TestServer::start();
    let commune2 = server.add_unit("Xã Lớn", OrgUnitKind::Commune, Some(server.province));
    let point2 = server.add_unit("Điểm Lớn", OrgUnitKind::CommunityPoint, Some(commune2));
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let _ = server.add_user_at("gs.hai", Role::Supervisor, commune2, None);
    let dirs = tempfile::tempdir().unwrap();
    let phone1 = server.enroll(&dirs.path().join("gs1"), "gs.mot");
    for r in records(server.commune, server.point, commune2) {
        add(&phone1, &r);
    }
    assert_eq!(phone1.sync().unwrap().rejected, 0);
    let phone2 = server.enroll(&dirs.path().join("gs2"), "gs.hai");
    for _ in 0..8 {
        for r in records(commune2, point2, server.commune) {
            add(&phone2, &r);
        }
    }
    assert_eq!(phone2.sync().unwrap().rejected, 0);

    let sup1 = RawDevice::enroll(&server, "gs.mot");
    let (status, body) = sup1.get(&format!(
        "/v1/reports/01-BCN?org={}&period=2026-10",
        server.commune
    ));
    assert_eq!(status, 200, "{body}");
    let small: Report = serde_json::from_value(body).unwrap();
    check_expected(&small, 1);
    let sup2 = RawDevice::enroll(&server, "gs.hai");
    let (status, body) = sup2.get(&format!("/v1/reports/01-BCN?org={commune2}&period=2026-10"));
    assert_eq!(status, 200, "{body}");
    let large: Report = serde_json::from_value(body).unwrap();
    check_expected(&large, 8);
    // The small commune's report is the one its own phone computes, breakdowns included.
    assert_eq!(
        phone1
            .report("01-BCN", Period::parse("2026-10").unwrap())
            .unwrap(),
        small
    );
}

/// `report_facts` rows carry the format they were built with: a store whose rows are of an
/// older format (or missing) rebuilds them from the records when it opens, and the report is
/// the same as before.
#[test]
fn report_facts_of_an_older_format_are_rebuilt_from_the_records_when_the_store_opens() {
    let server = TestServer::start();
    if server.on_postgres() {
        // This test edits the SQLite file; PostgreSQL's rebuild is the same code path over its
        // own tables (server/src/store/postgres.rs).
        eprintln!("SQLite only: skipped on PostgreSQL");
        return;
    }
    let _ = server.add_user("gs.mot", Role::Supervisor);
    let dirs = tempfile::tempdir().unwrap();
    let phone = server.enroll(&dirs.path().join("gs"), "gs.mot");
    for r in records(server.commune, server.point, Id::new()) {
        add(&phone, &r);
    }
    assert_eq!(phone.sync().unwrap().rejected, 0);
    let sup = RawDevice::enroll(&server, "gs.mot");
    let path = format!("/v1/reports/01-BCN?org={}&period=2026-10", server.commune);
    let (status, body) = sup.get(&path);
    assert_eq!(status, 200, "{body}");
    let before: Report = serde_json::from_value(body).unwrap();
    check_expected(&before, 1);

    // What an older build leaves: rows of format 1 (here: none at all).
    {
        let db = rusqlite::Connection::open(server.dir.path().join("server.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        db.execute("UPDATE server_meta SET v = 1 WHERE k = 'report_facts'", [])
            .unwrap();
        db.execute("DELETE FROM report_facts", []).unwrap();
    }
    let (_, body) = sup.get(&path);
    let emptied: Report = serde_json::from_value(body).unwrap();
    assert_eq!(emptied.row("VISITS").unwrap().value.whole(), 0);

    // The server's command line opens the store, which rebuilds the facts from the records.
    let out = Command::new(server_binary())
        .args(server.cli_args())
        .args(["report", "--org", &server.commune.to_string()])
        .args(["--period", "2026-10", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rebuilt: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rebuilt, before);
    let (_, body) = sup.get(&path);
    assert_eq!(serde_json::from_value::<Report>(body).unwrap(), before);
}
