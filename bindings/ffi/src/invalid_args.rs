//! The FFI invalid-argument table (DESIGN.md §7: every input path answers bad input with a
//! clear, specific error and changes nothing).
//!
//! Every exported call that takes a string id, a day, an instant, a directory, a PIN, an
//! enum-as-string (period, template, format, book) or a number is called with bad values on a
//! real device store (a temporary directory, the real core), exactly as Kotlin, Swift and
//! Python call it. Each case must give its specific error variant (an `InvalidInput` that
//! names the argument, `NotFound` of the right kind, `WeakPin`, `WrongPin`…), never a panic,
//! never the bad value quoted back; and the store's contents and outbox must be the same
//! after it as before.
//!
//! These are unit tests inside the crate: it builds only as a `cdylib`/`staticlib`, so an
//! integration test could not link it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;

use crate::callbacks::KeyStore;
use crate::device::{Device, store_exists};
use crate::error::DonghanhError;
use crate::types::{
    AttendanceStatus, BenefitKind, EpisodeKind, NewDrugTest, NewPerson, NewVisit, PriorRehab,
    ReferralStatus, ReferralTarget, SessionKind, Sex, TerminationReason, TestKind, TestMethod,
    TestResult, VisitMode,
};

const PIN: &str = "246810";

/// A platform key store for tests: a fixed XOR (the real ones are the Android Keystore and
/// the iOS Keychain).
#[derive(Debug)]
struct TestKeys;

impl KeyStore for TestKeys {
    fn wrap(&self, secret: Vec<u8>) -> Result<Vec<u8>, DonghanhError> {
        Ok(secret.iter().map(|b| b ^ 0x5a).collect())
    }

    fn unwrap(&self, wrapped: Vec<u8>) -> Result<Vec<u8>, DonghanhError> {
        Ok(wrapped.iter().map(|b| b ^ 0x5a).collect())
    }
}

fn keys() -> Arc<dyn KeyStore> {
    Arc::new(TestKeys)
}

/// What a device holds, as text: every record the API can list, and the outbox.
fn contents(dev: &Device, people: &[String], sessions: &[String]) -> String {
    let mut out = String::new();
    for p in dev.people().unwrap() {
        writeln!(
            out,
            "person {} {} {} {:?} {:?} {:?}",
            p.id, p.full_name, p.birth_date, p.phone, p.address, p.id_number
        )
        .unwrap();
    }
    for id in people {
        for e in dev.episodes(id.clone()).unwrap() {
            writeln!(out, "episode {e:?}").unwrap();
        }
        for v in dev.visits(id.clone()).unwrap() {
            writeln!(
                out,
                "visit {} {} {} {:?}",
                v.id, v.at, v.notes, v.next_visit_due
            )
            .unwrap();
        }
        for t in dev.drug_tests(id.clone()).unwrap() {
            writeln!(out, "test {} {} {:?}", t.id, t.at, t.note).unwrap();
        }
        for b in dev.support_benefits(id.clone()).unwrap() {
            writeln!(
                out,
                "benefit {} {} {} {:?}",
                b.id, b.on, b.amount_vnd, b.note
            )
            .unwrap();
        }
        for r in dev.referrals(id.clone()).unwrap() {
            writeln!(out, "referral {} {:?} {:?}", r.id, r.status, r.status_on).unwrap();
        }
    }
    for t in dev.open_tasks().unwrap() {
        writeln!(out, "task {} {} {} {:?}", t.id, t.due, t.reason, t.status).unwrap();
    }
    for s in dev.sessions().unwrap() {
        writeln!(out, "session {} {} {:?} {}", s.id, s.topic, s.status, s.at).unwrap();
    }
    for id in sessions {
        for a in dev.attendance(id.clone()).unwrap() {
            writeln!(out, "attendance {} {:?} {}", a.id, a.person, a.walk_ins).unwrap();
        }
    }
    writeln!(out, "outbox {}", dev.pending_changes().unwrap()).unwrap();
    writeln!(out, "rejected {}", dev.rejected().unwrap().len()).unwrap();
    out
}

/// What a case must get.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// `InvalidInput` whose reason begins with this (the argument's name).
    Invalid(&'static str),
    /// `NotFound` of this kind.
    NotFound(&'static str),
    WeakPin,
    WrongPin,
    NoStore,
    NotEnrolled,
}

impl Want {
    fn matches(self, e: &DonghanhError) -> bool {
        match (self, e) {
            (Want::Invalid(arg), DonghanhError::InvalidInput { reason }) => reason.starts_with(arg),
            (Want::NotFound(kind), DonghanhError::NotFound { kind: k }) => k == kind,
            (Want::WeakPin, DonghanhError::WeakPin { .. })
            | (Want::WrongPin, DonghanhError::WrongPin)
            | (Want::NoStore, DonghanhError::NoStore)
            | (Want::NotEnrolled, DonghanhError::NotEnrolled) => true,
            _ => false,
        }
    }
}

type Call = Box<dyn Fn(&Device) -> Result<(), DonghanhError>>;

struct Case {
    name: String,
    /// The bad value, which must not come back in the error (empty: nothing to check).
    value: String,
    call: Call,
    want: Want,
}

fn case(
    name: impl Into<String>,
    value: &str,
    want: Want,
    call: impl Fn(&Device) -> Result<(), DonghanhError> + 'static,
) -> Case {
    Case {
        name: name.into(),
        value: value.to_owned(),
        call: Box::new(call),
        want,
    }
}

/// Strings that are not ids.
fn bad_ids(valid: &str) -> Vec<String> {
    vec![
        String::new(),
        "   ".into(),
        "not-an-id-markervalue".into(),
        "12345".into(),
        format!("{}g", &valid[..valid.len() - 1]),
        format!("{valid}00"),
        "'; DROP TABLE records; --".into(),
        "Nguyễn Văn Markervalue".into(),
        "\0".into(),
        "9".repeat(10_000),
    ]
}

/// Strings that are not `YYYY-MM-DD` days.
fn bad_days() -> Vec<String> {
    vec![
        String::new(),
        "2026-13-01".into(),
        "2026-02-30".into(),
        "2026/10/01".into(),
        "01-10-2026".into(),
        "2026-10-01T09:00:00+07:00".into(),
        "markervalue".into(),
        "+99999-01-01".into(),
        "2026-1-1".into(),
        "２０２６-10-01".into(),
        "2026-10-01\0".into(),
    ]
}

/// Strings that are not RFC 3339 instants.
fn bad_instants() -> Vec<String> {
    vec![
        String::new(),
        "2026-10-01".into(),
        "2026-10-01 09:30".into(),
        "09:30".into(),
        "2026-13-01T09:30:00Z".into(),
        "2026-10-01T25:00:00+07:00".into(),
        "markervalue".into(),
    ]
}

#[test]
fn every_invalid_ffi_argument_gets_its_specific_error_and_changes_nothing() {
    let tmp = tempfile_dir();
    let dir = tmp.join("device");
    let dev = Device::create(dir.to_string_lossy().into_owned(), keys(), PIN.into()).unwrap();
    let person = dev
        .add_person(NewPerson {
            full_name: "Trần Thị Bảng".into(),
            birth_date: "1990-05-06".into(),
            sex: Sex::Female,
            phone: None,
            address: None,
            id_number: None,
            commune: None,
        })
        .unwrap();
    let episode = dev
        .add_episode(
            person.clone(),
            EpisodeKind::PostRehab,
            "2026-09-01".into(),
            Some(PriorRehab::Voluntary),
        )
        .unwrap();
    // A second person under management: an active episode.
    let second = dev
        .add_person(NewPerson {
            full_name: "Hoàng Văn Quản Lý".into(),
            birth_date: "1985-02-03".into(),
            sex: Sex::Male,
            phone: None,
            address: None,
            id_number: None,
            commune: None,
        })
        .unwrap();
    let active = dev
        .add_episode(
            second.clone(),
            EpisodeKind::PostRehab,
            "2026-08-01".into(),
            Some(PriorRehab::Voluntary),
        )
        .unwrap();
    dev.propose_episode(active.clone(), "2026-08-02".into())
        .unwrap();
    dev.activate_episode(active.clone(), "2026-08-05".into())
        .unwrap();
    let session = dev
        .add_session(
            uuid_like(),
            SessionKind::Group,
            "Sinh hoạt nhóm".into(),
            Some("2026-09-10T09:00:00+07:00".into()),
        )
        .unwrap();
    let referral = dev
        .add_referral(
            person.clone(),
            ReferralTarget::OstClinic,
            "2026-09-05".into(),
            None,
        )
        .unwrap();
    let task = dev
        .add_task(person.clone(), "2026-12-01".into(), "Gọi điện".into(), None)
        .unwrap();
    let unknown = uuid_like();
    let mut cases: Vec<Case> = Vec::new();

    // Ids, argument by argument.
    type IdCall = fn(&Device, String) -> Result<(), DonghanhError>;
    let id_args: Vec<(&str, &'static str, IdCall)> = vec![
        ("person", "id", |d, v| d.person(v).map(drop)),
        ("episodes", "person", |d, v| d.episodes(v).map(drop)),
        ("add_episode", "person", |d, v| {
            d.add_episode(v, EpisodeKind::PostRehab, "2026-09-01".into(), None)
                .map(drop)
        }),
        ("propose_episode", "id", |d, v| {
            d.propose_episode(v, "2026-09-02".into()).map(drop)
        }),
        ("activate_episode", "id", |d, v| {
            d.activate_episode(v, "2026-09-02".into()).map(drop)
        }),
        ("complete_episode", "id", |d, v| {
            d.complete_episode(v, "2026-09-02".into()).map(drop)
        }),
        ("terminate_episode", "id", |d, v| {
            d.terminate_episode(v, TerminationReason::Moved, "2026-09-02".into())
                .map(drop)
        }),
        ("record_relapse", "episode", |d, v| {
            d.record_relapse(
                v,
                "2026-09-02".into(),
                "Công an xã".into(),
                "2026-09-03".into(),
                None,
            )
            .map(drop)
        }),
        ("assign_case", "person", |d, v| {
            d.assign_case(v, "tnv.hoa".into()).map(drop)
        }),
        ("add_visit", "person", |d, v| {
            d.add_visit(visit(v, None, None)).map(drop)
        }),
        ("visits", "person", |d, v| d.visits(v).map(drop)),
        ("add_drug_test", "person", |d, v| {
            d.add_drug_test(drug_test(v, None)).map(drop)
        }),
        ("drug_tests", "person", |d, v| d.drug_tests(v).map(drop)),
        ("add_support_benefit", "person", |d, v| {
            d.add_support_benefit(v, BenefitKind::Loan, 1_000_000, "2026-09-02".into(), None)
                .map(drop)
        }),
        ("support_benefits", "person", |d, v| {
            d.support_benefits(v).map(drop)
        }),
        ("add_referral", "person", |d, v| {
            d.add_referral(v, ReferralTarget::HivCare, "2026-09-02".into(), None)
                .map(drop)
        }),
        ("referrals", "person", |d, v| d.referrals(v).map(drop)),
        ("update_referral", "id", |d, v| {
            d.update_referral(v, ReferralStatus::Accepted, "2026-09-06".into())
                .map(drop)
        }),
        ("add_task", "person", |d, v| {
            d.add_task(v, "2026-12-01".into(), "Gọi điện".into(), None)
                .map(drop)
        }),
        ("complete_task", "id", |d, v| d.complete_task(v)),
        ("add_session", "point", |d, v| {
            d.add_session(v, SessionKind::Club, "Câu lạc bộ".into(), None)
                .map(drop)
        }),
        ("hold_session", "id", |d, v| d.hold_session(v).map(drop)),
        ("cancel_session", "id", |d, v| d.cancel_session(v).map(drop)),
        ("mark_walk_ins", "session", |d, v| {
            d.mark_walk_ins(v, 3).map(drop)
        }),
        ("attendance", "session", |d, v| d.attendance(v).map(drop)),
        ("resolve_conflict", "id", |d, v| d.resolve_conflict(v, true)),
    ];
    for (call, arg, f) in id_args {
        for value in bad_ids(&unknown) {
            let v = value.clone();
            cases.push(case(
                format!("{call}({arg} = {value:.20?})"),
                &value,
                Want::Invalid(arg),
                move |d| f(d, v.clone()),
            ));
        }
    }
    // Both ids of an attendance mark, and a person's commune.
    for value in bad_ids(&unknown) {
        let (s, p) = (session.clone(), person.clone());
        let v = value.clone();
        cases.push(case(
            format!("mark_attendance(session = {value:.20?})"),
            &value,
            Want::Invalid("session"),
            move |d| {
                d.mark_attendance(v.clone(), p.clone(), AttendanceStatus::Present)
                    .map(drop)
            },
        ));
        let v = value.clone();
        cases.push(case(
            format!("mark_attendance(person = {value:.20?})"),
            &value,
            Want::Invalid("person"),
            move |d| {
                d.mark_attendance(s.clone(), v.clone(), AttendanceStatus::Present)
                    .map(drop)
            },
        ));
        let v = value.clone();
        cases.push(case(
            format!("add_person(commune = {value:.20?})"),
            &value,
            Want::Invalid("commune"),
            move |d| {
                d.add_person(NewPerson {
                    full_name: "Lê Văn Xã".into(),
                    birth_date: "1980-01-01".into(),
                    sex: Sex::Male,
                    phone: None,
                    address: None,
                    id_number: None,
                    commune: Some(v.clone()),
                })
                .map(drop)
            },
        ));
    }
    // Well-formed ids of nothing held.
    let nf: Vec<(&str, &'static str, IdCall)> = vec![
        ("person", "person", |d, v| d.person(v).map(drop)),
        ("episodes", "person", |d, v| d.episodes(v).map(drop)),
        ("add_drug_test", "person", |d, v| {
            d.add_drug_test(drug_test(v, None)).map(drop)
        }),
        ("add_support_benefit", "person", |d, v| {
            d.add_support_benefit(v, BenefitKind::Loan, 1, "2026-09-02".into(), None)
                .map(drop)
        }),
        ("add_referral", "person", |d, v| {
            d.add_referral(v, ReferralTarget::School, "2026-09-02".into(), None)
                .map(drop)
        }),
        ("propose_episode", "episode", |d, v| {
            d.propose_episode(v, "2026-09-02".into()).map(drop)
        }),
        ("update_referral", "referral", |d, v| {
            d.update_referral(v, ReferralStatus::Declined, "2026-09-06".into())
                .map(drop)
        }),
        ("hold_session", "session", |d, v| {
            d.hold_session(v).map(drop)
        }),
        ("complete_task", "task", |d, v| d.complete_task(v)),
    ];
    for (call, kind, f) in nf {
        let v = unknown.clone();
        cases.push(case(
            format!("{call}(an id of nothing held)"),
            "",
            Want::NotFound(kind),
            move |d| f(d, v.clone()),
        ));
    }

    // Days, argument by argument (the other arguments valid, the ids real).
    type DayCall = Box<dyn Fn(&Device, String) -> Result<(), DonghanhError>>;
    let (p, e, r) = (person.clone(), episode.clone(), referral.clone());
    let day_args: Vec<(&str, &'static str, DayCall)> = vec![
        (
            "add_person",
            "birth_date",
            Box::new(|d, v| {
                d.add_person(NewPerson {
                    full_name: "Phạm Văn Ngày".into(),
                    birth_date: v,
                    sex: Sex::Male,
                    phone: None,
                    address: None,
                    id_number: None,
                    commune: None,
                })
                .map(drop)
            }),
        ),
        ("add_episode", "start", {
            let p = p.clone();
            Box::new(move |d, v| {
                d.add_episode(p.clone(), EpisodeKind::DrugUserManagement, v, None)
                    .map(drop)
            })
        }),
        ("propose_episode", "on", {
            let e = e.clone();
            Box::new(move |d, v| d.propose_episode(e.clone(), v).map(drop))
        }),
        ("activate_episode", "on", {
            let e = e.clone();
            Box::new(move |d, v| d.activate_episode(e.clone(), v).map(drop))
        }),
        ("complete_episode", "on", {
            let e = e.clone();
            Box::new(move |d, v| d.complete_episode(e.clone(), v).map(drop))
        }),
        ("terminate_episode", "on", {
            let e = e.clone();
            Box::new(move |d, v| {
                d.terminate_episode(e.clone(), TerminationReason::Prison, v)
                    .map(drop)
            })
        }),
        ("record_relapse", "detected_on", {
            let e = e.clone();
            Box::new(move |d, v| {
                d.record_relapse(e.clone(), v, "Công an".into(), "2026-09-03".into(), None)
                    .map(drop)
            })
        }),
        ("record_relapse", "determined_on", {
            let e = e.clone();
            Box::new(move |d, v| {
                d.record_relapse(e.clone(), "2026-09-02".into(), "Công an".into(), v, None)
                    .map(drop)
            })
        }),
        ("add_visit", "next_visit_due", {
            let p = p.clone();
            Box::new(move |d, v| d.add_visit(visit(p.clone(), None, Some(v))).map(drop))
        }),
        ("add_support_benefit", "on", {
            let p = p.clone();
            Box::new(move |d, v| {
                d.add_support_benefit(p.clone(), BenefitKind::CashSupport, 500_000, v, None)
                    .map(drop)
            })
        }),
        ("add_referral", "sent_on", {
            let p = p.clone();
            Box::new(move |d, v| {
                d.add_referral(p.clone(), ReferralTarget::JobCentre, v, None)
                    .map(drop)
            })
        }),
        ("update_referral", "on", {
            let r = r.clone();
            Box::new(move |d, v| {
                d.update_referral(r.clone(), ReferralStatus::Accepted, v)
                    .map(drop)
            })
        }),
        ("add_task", "due", {
            let p = p.clone();
            Box::new(move |d, v| d.add_task(p.clone(), v, "Gọi".into(), None).map(drop))
        }),
        (
            "book_export",
            "as_of",
            Box::new(|d, v| {
                d.book_export(
                    "04-SCN".into(),
                    v,
                    "Kiểm tra sổ".into(),
                    "csv".into(),
                    "Xã".into(),
                )
                .map(drop)
            }),
        ),
    ];
    let day_args: Vec<(&str, &'static str, Rc<DayCall>)> = day_args
        .into_iter()
        .map(|(c, a, f)| (c, a, Rc::new(f)))
        .collect();
    for (call, arg, f) in &day_args {
        for value in bad_days() {
            let f = Rc::clone(f);
            let v = value.clone();
            cases.push(case(
                format!("{call}({arg} = {value:?})"),
                &value,
                Want::Invalid(arg),
                move |d| f(d, v.clone()),
            ));
        }
    }

    // Instants.
    for value in bad_instants() {
        let (p1, p2, v1, v2, v3) = (
            person.clone(),
            person.clone(),
            value.clone(),
            value.clone(),
            value.clone(),
        );
        cases.push(case(
            format!("add_visit(at = {value:?})"),
            &value,
            Want::Invalid("at"),
            move |d| {
                d.add_visit(visit(p1.clone(), Some(v1.clone()), None))
                    .map(drop)
            },
        ));
        cases.push(case(
            format!("add_drug_test(at = {value:?})"),
            &value,
            Want::Invalid("at"),
            move |d| {
                d.add_drug_test(drug_test(p2.clone(), Some(v2.clone())))
                    .map(drop)
            },
        ));
        let point = uuid_like();
        cases.push(case(
            format!("add_session(at = {value:?})"),
            &value,
            Want::Invalid("at"),
            move |d| {
                d.add_session(
                    point.clone(),
                    SessionKind::Training,
                    "Tập huấn".into(),
                    Some(v3.clone()),
                )
                .map(drop)
            },
        ));
    }

    // Enums as strings: report periods, templates, export formats, books.
    for period in [
        "",
        "2026-13",
        "2026-Q5",
        "2026-H3",
        "26-10",
        "markervalue",
        "2026-10-01",
    ] {
        let p = period.to_owned();
        cases.push(case(
            format!("report(period = {period:?})"),
            period,
            Want::Invalid(""),
            move |d| d.report(String::new(), p.clone()).map(drop),
        ));
        let p = period.to_owned();
        cases.push(case(
            format!("report_records(period = {period:?})"),
            period,
            Want::Invalid(""),
            move |d| d.report_records("VISITS".into(), p.clone()).map(drop),
        ));
    }
    for format in ["", "pdf", "XLSX ", "markervalue"] {
        let f = format.to_owned();
        cases.push(case(
            format!("report_export(format = {format:?})"),
            format,
            Want::Invalid("format"),
            move |d| {
                d.report_export(String::new(), "2026-10".into(), f.clone(), "Xã".into())
                    .map(drop)
            },
        ));
        let f = format.to_owned();
        cases.push(case(
            format!("book_export(format = {format:?})"),
            format,
            Want::Invalid("format"),
            move |d| {
                d.book_export(
                    "04-SCN".into(),
                    "2026-10-01".into(),
                    "Kiểm tra".into(),
                    f.clone(),
                    "Xã".into(),
                )
                .map(drop)
            },
        ));
    }
    for book in ["", "06-SCN", "04-scn-markervalue"] {
        let b = book.to_owned();
        cases.push(case(
            format!("book_export(book = {book:?})"),
            book,
            Want::Invalid(""),
            move |d| {
                d.book_export(
                    b.clone(),
                    "2026-10-01".into(),
                    "Kiểm tra".into(),
                    "csv".into(),
                    "Xã".into(),
                )
                .map(drop)
            },
        ));
    }
    for (what, template, indicator) in [
        ("template", "Nguyễn Văn Markervalue", "VISITS"),
        ("indicator", "", "0912 markervalue"),
    ] {
        let (t, i) = (template.to_owned(), indicator.to_owned());
        cases.push(case(
            // An unenrolled device has no commune: refused before the name is looked at.
            format!("report({what} = free text) on an unenrolled device"),
            "markervalue",
            Want::NotEnrolled,
            move |d| {
                if t.is_empty() {
                    d.report_records(i.clone(), "2026-10".into()).map(drop)
                } else {
                    d.report(t.clone(), "2026-10".into()).map(drop)
                }
            },
        ));
    }
    // A quarter has no default template.
    cases.push(case(
        "report(template = \"\", period = a quarter)",
        "",
        Want::Invalid("name a template"),
        |d| d.report(String::new(), "2026-Q3".into()).map(drop),
    ));

    // Numbers and texts the domain bounds.
    for count in [0, 1_001, u32::MAX] {
        let s = session.clone();
        cases.push(case(
            format!("mark_walk_ins(count = {count})"),
            "",
            Want::Invalid(""),
            move |d| d.mark_walk_ins(s.clone(), count).map(drop),
        ));
    }
    for amount in [-1, i64::MIN] {
        let p = person.clone();
        cases.push(case(
            format!("add_support_benefit(amount_vnd = {amount})"),
            "",
            Want::Invalid(""),
            move |d| {
                d.add_support_benefit(
                    p.clone(),
                    BenefitKind::Loan,
                    amount,
                    "2026-09-02".into(),
                    None,
                )
                .map(drop)
            },
        ));
    }
    for (what, name) in [("blank", "   "), ("empty", "")] {
        let n = name.to_owned();
        cases.push(case(
            format!("add_person(full_name {what})"),
            "",
            Want::Invalid(""),
            move |d| {
                d.add_person(NewPerson {
                    full_name: n.clone(),
                    birth_date: "1980-01-01".into(),
                    sex: Sex::Male,
                    phone: None,
                    address: None,
                    id_number: None,
                    commune: None,
                })
                .map(drop)
            },
        ));
    }
    {
        let p = person.clone();
        cases.push(case(
            "add_person(birth_date in the future)",
            "",
            Want::Invalid(""),
            |d| {
                d.add_person(NewPerson {
                    full_name: "Vũ Văn Tương Lai".into(),
                    birth_date: "2999-01-01".into(),
                    sex: Sex::Male,
                    phone: None,
                    address: None,
                    id_number: None,
                    commune: None,
                })
                .map(drop)
            },
        ));
        cases.push(case(
            "add_task(reason blank)",
            "",
            Want::Invalid(""),
            move |d| {
                d.add_task(p.clone(), "2026-12-01".into(), "  ".into(), None)
                    .map(drop)
            },
        ));
        let s = uuid_like();
        cases.push(case(
            "add_session(topic blank)",
            "",
            Want::Invalid(""),
            move |d| {
                d.add_session(s.clone(), SessionKind::Group, " ".into(), None)
                    .map(drop)
            },
        ));
        let e = active.clone();
        cases.push(case(
            "terminate_episode(reason = relapse)",
            "",
            Want::Invalid(""),
            move |d| {
                d.terminate_episode(e.clone(), TerminationReason::Relapse, "2026-09-02".into())
                    .map(drop)
            },
        ));
        let p = person.clone();
        cases.push(case(
            "add_visit(at a day ahead)",
            "",
            Want::Invalid(""),
            move |d| {
                let at = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
                d.add_visit(visit(p.clone(), Some(at), None)).map(drop)
            },
        ));
    }
    // A supervisor's calls on a device that is not enrolled.
    cases.push(case(
        "assign_case on an unenrolled device",
        "",
        Want::NotEnrolled,
        {
            let p = person.clone();
            move |d| d.assign_case(p.clone(), "tnv.hoa".into()).map(drop)
        },
    ));
    // The task stays open through all of this.
    let _ = task;

    // Run the table: no panic, the specific error, no echo, nothing changed.
    let people = vec![person.clone(), second.clone()];
    let sessions = vec![session.clone()];
    let before = contents(&dev, &people, &sessions);
    let mut failures = Vec::new();
    for c in &cases {
        let result = catch_unwind(AssertUnwindSafe(|| (c.call)(&dev)));
        match result {
            Err(_) => failures.push(format!("{}: panicked", c.name)),
            Ok(Ok(())) => failures.push(format!("{}: accepted", c.name)),
            Ok(Err(e)) => {
                if !c.want.matches(&e) {
                    failures.push(format!("{}: expected {:?}, got {e:?}", c.name, c.want));
                }
                // Free text never comes back (codes and periods may: the core shows a value
                // only when it has a code's or a period's shape, never a name's).
                let text = e.to_string();
                if c.value.contains("arkervalue") && text.to_lowercase().contains("markervalue") {
                    failures.push(format!("{}: the error quotes the value", c.name));
                }
            }
        }
        let after = contents(&dev, &people, &sessions);
        if after != before {
            failures.push(format!("{}: the store changed", c.name));
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("FFI invalid-argument table: {} cases", cases.len());
    assert!(cases.len() >= 100);
    drop(dev);

    // Directories and PINs, on the constructors.
    let mut constructor_cases = 0;
    for bad in ["", "   ", "dir\0name"] {
        constructor_cases += 2;
        let e = Device::create(bad.into(), keys(), PIN.into()).unwrap_err();
        assert!(Want::Invalid("dir").matches(&e), "{e:?}");
        let e = Device::open(bad.into(), keys(), PIN.into()).unwrap_err();
        assert!(Want::Invalid("dir").matches(&e), "{e:?}");
        assert!(!store_exists(bad.into()));
    }
    for weak in ["", "1", "12345"] {
        constructor_cases += 1;
        let fresh = tmp.join(format!("weak-{}", weak.len()));
        let e =
            Device::create(fresh.to_string_lossy().into_owned(), keys(), weak.into()).unwrap_err();
        assert!(Want::WeakPin.matches(&e), "{e:?}");
        assert!(!store_exists(fresh.to_string_lossy().into_owned()));
    }
    constructor_cases += 1;
    let e = Device::open(
        tmp.join("nothing-here").to_string_lossy().into_owned(),
        keys(),
        PIN.into(),
    )
    .unwrap_err();
    assert!(Want::NoStore.matches(&e), "{e:?}");
    constructor_cases += 1;
    let e = Device::open(dir.to_string_lossy().into_owned(), keys(), "135790".into()).unwrap_err();
    assert!(Want::WrongPin.matches(&e), "{e:?}");
    // The store is intact after all of it.
    let dev = Device::open(dir.to_string_lossy().into_owned(), keys(), PIN.into()).unwrap();
    assert_eq!(contents(&dev, &people, &sessions), before);
    eprintln!("FFI constructor cases: {constructor_cases}");
    drop(dev);
    std::fs::remove_dir_all(&tmp).unwrap();
}

fn visit(person: String, at: Option<String>, next: Option<String>) -> NewVisit {
    NewVisit {
        person,
        notes: "Thăm nhà".into(),
        at,
        mode: VisitMode::Home,
        risk_signs: Vec::new(),
        relapse_suspected: false,
        services: Vec::new(),
        next_visit_due: next,
    }
}

fn drug_test(person: String, at: Option<String>) -> NewDrugTest {
    NewDrugTest {
        person,
        at,
        kind: TestKind::Periodic,
        method: TestMethod::UrineRapid,
        result: TestResult::Negative,
        note: None,
    }
}

fn uuid_like() -> String {
    donghanh_core::domain::Id::new().to_string()
}

/// A fresh temporary directory under the system's (the crate has no `tempfile` dependency).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("donghanh-ffi-args-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
