//! A small commune worked out by hand: the records, and every indicator's value for
//! October 2026 with the reasoning beside it. The core's tests, the server's, the CLI's and the
//! bindings' check these same numbers, so that "the same definitions, the same code, the same
//! numbers" is tested, not promised. Names are marker strings the privacy tests look for.
//!
//! October 2026 runs Thursday 1 to Saturday 31; it has no public holiday, so working days are
//! Monday to Friday. Ages are on 31 October 2026 from the year of birth.
//!
//! People, all of commune `home`:
//! - **A**, male, born 1990 (36, band 30_39);
//! - **B**, female, born 2000 (26, band 18_29);
//! - **C**, male, born 1970 (56, band 50_plus);
//! - **D**, male, born 2010 (16, band under_18);
//! - **E**, female, born 1985 (41, band 40_49);
//! - **F**, male, born 1995 (31, band 30_39).
//!
//! Episodes:
//! - eA: A post-rehab after voluntary rehab; completion reported Thu 1 Oct, file opened Mon 5,
//!   decision Tue 6, start Tue 6, active. File deadline: 3 working days after 1 Oct = Tue 6,
//!   met (5). Decision deadline: 2 working days after 5 Oct = Wed 7, met (6).
//! - eB: B post-rehab after compulsory rehab; reported Mon 12, file opened Tue 20, start 20,
//!   still *proposed* (no decision). File deadline Thu 15: late. Decision deadline 2 working
//!   days after 20 = Thu 22, not done: overdue on 31 Oct.
//! - eC: C post-rehab after voluntary rehab, 1 Nov 2025 – completed Sat 31 Oct 2026.
//! - eD: D voluntary community rehab from Sat 10 Oct, active.
//! - eE: E post-rehab after OST, 1 Mar 2026 – terminated for relapse Thu 15 Oct.
//! - eE2: E drug-user management: positive test Thu 15, decision Fri 16, start 16, active.
//!   Deadline: 3 working days after 15 = Tue 20, met (16).
//! - eF: F post-rehab after compulsory rehab, reported Mon 26, a *draft* (no file). File
//!   deadline Thu 29, not done: overdue on 31 Oct.
//! - A transfer of C to commune `elsewhere`, moved Tue 27 Oct, notified Mon 2 Nov: 5 working days after 27 Oct is
//!   Tue 3 Nov, so the deadline falls in November (met there), not in October.
//!
//! Events (days in Vietnam time, UTC+7):
//! - visits: v1 A Wed 7 counselling; v2 A Tue 20 vocational counselling; v3 D Mon 12 harm
//!   reduction + job search; v4 B Tue 13 counselling; v5 E 30 Sep counselling (September);
//!   v6 E at 18:00 UTC 31 Oct = 1 Nov in Vietnam (November); v7 E at 17:30 UTC 30 Sep =
//!   00:30 1 Oct in Vietnam (October), no service;
//! - benefits: loans to A 20,000,000 (8 Oct) and 10,000,000 (25 Oct); cash 1,000,000 to D and
//!   to E (9 Oct); job referral for B (21 Oct); vocational training for B (2 Nov: November);
//!   schooling for D (3 Oct);
//! - referrals: E to an OST clinic (16 Oct); F to a rehab facility (sent 28 Sep: September;
//!   accepted 2 Oct);
//! - relapse: E determined 14 Oct, a compulsory-rehab file opened;
//! - sessions at point `point` (of commune `home`): individual, held, 5 Oct; group, held,
//!   19 Oct; group, cancelled, 26 Oct; club, planned, 2 Nov;
//! - attendance: A at the 5 Oct session; A, D and 7 walk-ins at the 19 Oct session;
//! - drug tests: A negative 7 Oct; E positive 15 Oct; D invalid 12 Oct.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    AnyRecord, Attendance, AttendanceStatus, BenefitKind, DrugTest, Episode, EpisodeKind,
    EpisodeStatus, Id, Person, PriorRehab, Referral, ReferralStatus, ReferralTarget, RelapseEvent,
    RelapseOutcome, Service, Session, SessionKind, SessionStatus, Sex, SupportBenefit,
    TerminationReason, TestKind, TestMethod, TestResult, Transfer, Visit,
};

/// Names of the worked commune's people: marker strings privacy tests grep for.
pub const NAMES: [&str; 6] = [
    "Nguyễn Văn Anmarker",
    "Trần Thị Bichmarker",
    "Lê Văn Cuongmarker",
    "Phạm Văn Dungmarker",
    "Hoàng Thị Emarker",
    "Vũ Văn Phucmarker",
];

/// The expected values for October 2026 (template `01-BCN`), in the template's order:
/// `(code, value)`; for a percentage, `value` is the numerator and [`EXPECTED_PERCENT`] has
/// the rest.
pub const EXPECTED_2026_10: &[(&str, i64)] = &[
    // I. VR_NEW: eD starts 10 Oct. VR_ACTIVE_END: eD. VR_COMPLETED: none.
    ("VR_NEW", 1),
    ("VR_ACTIVE_END", 1),
    ("VR_COMPLETED", 0),
    // II. Completion reported in October: A (1), B (12), F (26). A after voluntary; B and F
    // after compulsory; none after OST.
    ("COMPLETERS", 3),
    ("COMPLETERS_VOLUNTARY", 1),
    ("COMPLETERS_COMPULSORY", 2),
    ("COMPLETERS_OST", 0),
    // Post-rehab starting in October and past the proposal: eA only (eB is proposed).
    ("PR_NEW", 1),
    // In force on 31 Oct: eA (eC ended that day, eE on the 15th, eB is proposed).
    ("PR_ACTIVE_END", 1),
    // Completed in October: eC.
    ("PR_COMPLETED", 1),
    ("PR_ENDED_RELAPSE", 1),
    ("PR_ENDED_MOVED", 0),
    ("PR_ENDED_OTHER", 0),
    // Completers with a file: A and B of A, B, F → 2 of 3 = 66.7 %.
    ("COMPLETERS_FILED_PCT", 2),
    // III. eE2; no OST; people in force on 31 Oct: A (eA), D (eD), E (eE2) = 3.
    ("DU_ACTIVE_END", 1),
    ("OST_ACTIVE_END", 0),
    ("FILE_ACTIVE_END", 3),
    // IV. Visits with a Vietnamese day in October: v1, v2, v3, v4, v7 = 5.
    ("VISITS", 5),
    // Of A, D, E: A (v1 counselling) and D (v3 harm reduction); B is not in force, E's v7 has
    // no service → 2 of 3 = 66.7 %.
    ("REACHED", 2),
    ("REACHED_PCT", 2),
    // v2 (vocational counselling) and v3 (job search).
    ("JOB_COUNSELLING", 2),
    ("BEN_VOCATIONAL", 0),
    ("BEN_JOB", 1),
    ("BEN_JOB_PEOPLE", 1),
    ("BEN_LOAN_PEOPLE", 1),
    ("BEN_LOAN_VND", 30_000_000),
    ("BEN_CASH_PEOPLE", 2),
    ("BEN_CASH_VND", 2_000_000),
    ("BEN_OTHER", 1),
    ("REF_OST", 1),
    ("REF_REHAB", 0),
    // V. E's relapse; under post-rehab management during October: eA, eC, eE (eB proposed,
    // eF draft) → 1 of 3 = 33.3 %.
    ("RELAPSES", 1),
    ("RELAPSE_RATE", 1),
    // VI. Held sessions in October: one individual, one group (the cancelled one is not
    // held); attendances 1 + 2 + 7 walk-ins = 10.
    ("SESS_INDIVIDUAL", 1),
    ("SESS_GROUP", 1),
    ("ATTENDANCE", 10),
    // VII. Three tests, one positive.
    ("TESTS", 3),
    ("TESTS_POSITIVE", 1),
    // Deadlines due in October: eA file (met), eA decision (met), eB file (late), eB
    // decision (overdue), eE2 decision (met), eF file (overdue) = 6 decided, 3 met, 50 %.
    ("DEADLINES_DECIDED", 6),
    ("DEADLINES_MET", 3),
    ("DEADLINES_MET_PCT", 3),
];

/// The percentages of [`EXPECTED_2026_10`]: `(code, numerator, denominator, percent)`.
pub const EXPECTED_PERCENT: &[(&str, i64, i64, f64)] = &[
    ("COMPLETERS_FILED_PCT", 2, 3, 66.7),
    ("REACHED_PCT", 2, 3, 66.7),
    ("RELAPSE_RATE", 1, 3, 33.3),
    ("DEADLINES_MET_PCT", 3, 6, 50.0),
];

/// The worked commune's records. `home` is the commune, `point` a community point of it, and
/// `elsewhere` the commune C moves to.
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn records(home: Id, point: Id, elsewhere: Id) -> Vec<AnyRecord> {
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
    let day25 = |m: u32, d: u32| NaiveDate::from_ymd_opt(2025, m, d).unwrap_or_default();
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
    let person = |i: usize, year: i32, sex: Sex, commune: Id| {
        let mut p = Person::new(
            NAMES[i],
            NaiveDate::from_ymd_opt(year, 6, 15).unwrap_or_default(),
            sex,
        );
        p.commune = Some(commune);
        p
    };
    let a = person(0, 1990, Sex::Male, home);
    let b = person(1, 2000, Sex::Female, home);
    let c = person(2, 1970, Sex::Male, home);
    let d = person(3, 2010, Sex::Male, home);
    let e = person(4, 1985, Sex::Female, home);
    let f = person(5, 1995, Sex::Male, home);

    let episode = |p: &Person, kind: EpisodeKind, start: NaiveDate, status: EpisodeStatus| {
        let mut ep = Episode::new(p.id, kind, start);
        ep.status = status;
        ep
    };
    let mut ea = episode(
        &a,
        EpisodeKind::PostRehab,
        day(10, 6),
        EpisodeStatus::Active,
    );
    ea.after = Some(PriorRehab::Voluntary);
    ea.completion_reported_on = Some(day(10, 1));
    ea.file_opened_on = Some(day(10, 5));
    ea.decision_date = Some(day(10, 6));
    let mut eb = episode(
        &b,
        EpisodeKind::PostRehab,
        day(10, 20),
        EpisodeStatus::Proposed,
    );
    eb.after = Some(PriorRehab::CompulsoryAdult);
    eb.completion_reported_on = Some(day(10, 12));
    eb.file_opened_on = Some(day(10, 20));
    let mut ec = episode(
        &c,
        EpisodeKind::PostRehab,
        day25(11, 1),
        EpisodeStatus::Completed,
    );
    ec.after = Some(PriorRehab::Voluntary);
    ec.ended_on = Some(day(10, 31));
    let ed = episode(
        &d,
        EpisodeKind::VoluntaryCommunityRehab,
        day(10, 10),
        EpisodeStatus::Active,
    );
    let mut ee = episode(
        &e,
        EpisodeKind::PostRehab,
        day(3, 1),
        EpisodeStatus::Terminated(TerminationReason::Relapse),
    );
    ee.after = Some(PriorRehab::OstCompleted);
    ee.ended_on = Some(day(10, 15));
    let mut ee2 = episode(
        &e,
        EpisodeKind::DrugUserManagement,
        day(10, 16),
        EpisodeStatus::Active,
    );
    ee2.positive_test_on = Some(day(10, 15));
    ee2.decision_date = Some(day(10, 16));
    let mut ef = episode(
        &f,
        EpisodeKind::PostRehab,
        day(10, 26),
        EpisodeStatus::Draft,
    );
    ef.after = Some(PriorRehab::CompulsoryAdult);
    ef.completion_reported_on = Some(day(10, 26));
    let mut transfer = Transfer::new(c.id, elsewhere, day(10, 27));
    transfer.from_commune = Some(home);
    transfer.notified_on = Some(day(11, 2));

    let visit = |p: &Person, when: &str, services: &[Service]| {
        let mut v = Visit::new(p.id, at(when), "ghi chú thăm gặp markervisit");
        v.services = services.to_vec();
        v
    };
    let visits = [
        visit(&a, "2026-10-07T03:00:00Z", &[Service::Counselling]),
        visit(
            &a,
            "2026-10-20T03:00:00Z",
            &[Service::VocationalCounselling],
        ),
        visit(
            &d,
            "2026-10-12T03:00:00Z",
            &[Service::HarmReduction, Service::JobSearch],
        ),
        visit(&b, "2026-10-13T03:00:00Z", &[Service::Counselling]),
        visit(&e, "2026-09-30T03:00:00Z", &[Service::Counselling]),
        visit(&e, "2026-10-31T18:00:00Z", &[Service::Counselling]),
        visit(&e, "2026-09-30T17:30:00Z", &[]),
    ];
    let benefit = |p: &Person, kind: BenefitKind, amount: i64, on: NaiveDate| {
        SupportBenefit::new(p.id, kind, amount, on)
    };
    let benefits = [
        benefit(&a, BenefitKind::Loan, 20_000_000, day(10, 8)),
        benefit(&a, BenefitKind::Loan, 10_000_000, day(10, 25)),
        benefit(&d, BenefitKind::CashSupport, 1_000_000, day(10, 9)),
        benefit(&e, BenefitKind::CashSupport, 1_000_000, day(10, 9)),
        benefit(&b, BenefitKind::JobReferral, 0, day(10, 21)),
        benefit(&b, BenefitKind::VocationalTraining, 0, day(11, 2)),
        benefit(&d, BenefitKind::Schooling, 0, day(10, 3)),
    ];
    let mut to_facility = Referral::new(f.id, ReferralTarget::RehabFacility, day(9, 28));
    to_facility.status = ReferralStatus::Accepted;
    to_facility.status_on = Some(day(10, 2));
    let referrals = [
        Referral::new(e.id, ReferralTarget::OstClinic, day(10, 16)),
        to_facility,
    ];
    let mut relapse = RelapseEvent::new(
        e.id,
        ee.id,
        day(10, 10),
        "Trung tâm y tế markerdoctor",
        day(10, 14),
    );
    relapse.outcome = Some(RelapseOutcome::CompulsoryRehabFile);
    let session = |kind: SessionKind, when: &str, status: SessionStatus| {
        let mut s = Session::new(point, kind, "chủ đề markertopic", at(when));
        s.status = status;
        s
    };
    let s1 = session(
        SessionKind::Individual,
        "2026-10-05T02:00:00Z",
        SessionStatus::Held,
    );
    let s2 = session(
        SessionKind::Group,
        "2026-10-19T02:00:00Z",
        SessionStatus::Held,
    );
    let s3 = session(
        SessionKind::Group,
        "2026-10-26T02:00:00Z",
        SessionStatus::Cancelled,
    );
    let s4 = session(
        SessionKind::Club,
        "2026-11-02T02:00:00Z",
        SessionStatus::Planned,
    );
    let attendance = [
        Attendance::for_person(&s1, a.id, AttendanceStatus::Present),
        Attendance::for_person(&s2, a.id, AttendanceStatus::Present),
        Attendance::for_person(&s2, d.id, AttendanceStatus::Late),
        Attendance::walk_ins(&s2, 7),
    ];
    let test = |p: &Person, when: &str, result: TestResult| {
        DrugTest::new(
            p.id,
            at(when),
            TestKind::Periodic,
            TestMethod::UrineRapid,
            result,
        )
    };
    let tests = [
        test(&a, "2026-10-07T04:00:00Z", TestResult::Negative),
        test(&e, "2026-10-15T04:00:00Z", TestResult::Positive),
        test(&d, "2026-10-12T04:00:00Z", TestResult::Invalid),
    ];

    let mut out: Vec<AnyRecord> = [a, b, c, d, e, f]
        .into_iter()
        .map(AnyRecord::Person)
        .collect();
    out.extend(
        [ea, eb, ec, ed, ee, ee2, ef]
            .into_iter()
            .map(AnyRecord::Episode),
    );
    out.push(AnyRecord::Transfer(transfer));
    out.extend(visits.into_iter().map(AnyRecord::Visit));
    out.extend(benefits.into_iter().map(AnyRecord::SupportBenefit));
    out.extend(referrals.into_iter().map(AnyRecord::Referral));
    out.push(AnyRecord::RelapseEvent(relapse));
    out.extend([s1, s2, s3, s4].into_iter().map(AnyRecord::Session));
    out.extend(attendance.into_iter().map(AnyRecord::Attendance));
    out.extend(tests.into_iter().map(AnyRecord::DrugTest));
    out
}
