//! Property tests of the legal clock, the working-day calendar and validation.
//!
//! The planned end is checked against a brute-force model: the set of absent days, and the
//! least fixed point `end = base + |{absent day d : start <= d < end}|` found by iteration.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use proptest::prelude::*;

use super::testutil::{ctx, d};
use super::*;

fn calendar() -> &'static Calendar {
    Calendar::embedded()
}

fn params() -> &'static LegalParams {
    LegalParams::embedded()
}

fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_add_days(Days::new(days)).unwrap()
}

/// A start day in 2026 early enough that 25 working days stay in 2026.
fn start_2026() -> impl Strategy<Value = NaiveDate> {
    (0u64..=310).prop_map(|offset| plus(d(2026, 1, 1), offset))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nth_working_day_is_a_working_day_strictly_after_start(
        start in start_2026(),
        n in 1u32..=25,
    ) {
        let c = calendar();
        let due = c.add_working_days(start, n).unwrap();
        prop_assert!(due > start);
        prop_assert!(c.is_working_day(due).unwrap());
        prop_assert_eq!(c.working_days_between(start, due).unwrap(), i64::from(n));
        // No working day is skipped: exactly n working days lie in (start, due].
        let mut count = 0;
        let mut day = start;
        while day < due {
            day = day.succ_opt().unwrap();
            if c.is_working_day(day).unwrap() {
                count += 1;
            }
        }
        prop_assert_eq!(count, n);
    }

    #[test]
    fn adding_more_working_days_lands_strictly_later(start in start_2026(), n in 0u32..=24) {
        let c = calendar();
        let shorter = c.add_working_days(start, n).unwrap();
        prop_assert!(shorter < c.add_working_days(start, n + 1).unwrap());
    }

    #[test]
    fn working_days_between_is_antisymmetric(a in start_2026(), b in start_2026()) {
        let c = calendar();
        let forward = c.working_days_between(a, b).unwrap();
        prop_assert_eq!(forward, -c.working_days_between(b, a).unwrap());
    }
}

/// An absence as (offset from the episode start in days, length in days, reported).
type Spec = (i64, u64, bool);

fn episode_with(start: NaiveDate, after: PriorRehab) -> Episode {
    Episode::new(Id::new(), EpisodeKind::PostRehab, start).with_after(after)
}

fn absences(episode: &Episode, specs: &[Spec]) -> Vec<AbsenceReport> {
    specs
        .iter()
        .map(|&(offset, len, reported)| {
            let from = episode
                .start
                .checked_add_signed(chrono::Duration::days(offset))
                .unwrap();
            let to = plus(from, len - 1);
            AbsenceReport::new(episode.person, episode.id, from, to, reported)
        })
        .collect()
}

/// The brute-force model of the planned end.
fn model_end(episode: &Episode, base: NaiveDate, absences: &[AbsenceReport]) -> NaiveDate {
    let mut days = BTreeSet::new();
    for a in absences
        .iter()
        .filter(|a| !a.reported && a.episode == episode.id)
    {
        let mut day = a.from;
        while day <= a.to {
            days.insert(day);
            day = day.succ_opt().unwrap();
        }
    }
    let mut end = base;
    loop {
        let counted = days
            .iter()
            .filter(|&&day| day >= episode.start && day < end)
            .count();
        let next = plus(base, counted as u64);
        if next == end {
            return end;
        }
        end = next;
    }
}

fn start_in_force() -> impl Strategy<Value = NaiveDate> {
    (0u64..=1600).prop_map(|offset| plus(d(2022, 1, 1), offset))
}

fn any_after() -> impl Strategy<Value = PriorRehab> {
    prop::sample::select(PriorRehab::ALL.to_vec())
}

/// Absences anywhere around the episode, including before its start and after its end.
fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec((-60i64..800, 1u64..90, any::<bool>()), 0..8)
}

/// Unreported absences inside the first year of management (the base window of every term).
fn inner_specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec((0i64..300, 1u64..60, Just(false)), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn planned_end_matches_the_brute_force_model(
        start in start_in_force(),
        after in any_after(),
        specs in specs(),
    ) {
        let e = episode_with(start, after);
        let list = absences(&e, &specs);
        let base = e.base_end(params()).unwrap();
        let end = e.planned_end(params(), &list).unwrap();
        prop_assert!(end >= base);
        prop_assert_eq!(end, model_end(&e, base, &list));
    }

    #[test]
    fn two_year_episode_ends_after_one_year_episode(
        start in start_in_force(),
        specs in specs(),
    ) {
        let one = episode_with(start, PriorRehab::Voluntary);
        let mut two = one.clone();
        two.after = Some(PriorRehab::CompulsoryAdult);
        let list = absences(&one, &specs);
        let one_year = one.planned_end(params(), &list).unwrap();
        prop_assert!(two.planned_end(params(), &list).unwrap() > one_year);
    }

    #[test]
    fn unreported_absence_moves_the_end_by_exactly_its_uncovered_days(
        start in start_in_force(),
        after in any_after(),
        existing in inner_specs(),
        (offset, len) in (0i64..300, 1u64..60),
    ) {
        let e = episode_with(start, after);
        let list = absences(&e, &existing);
        let added = absences(&e, &[(offset, len, false)]).remove(0);
        let covered: BTreeSet<NaiveDate> = list
            .iter()
            .flat_map(|a| (0..a.days()).map(move |i| plus(a.from, i)))
            .collect();
        let uncovered =
            (0..added.days()).filter(|&i| !covered.contains(&plus(added.from, i))).count();
        let before = e.planned_end(params(), &list).unwrap();
        let mut with = list.clone();
        with.push(added);
        let after_adding = e.planned_end(params(), &with).unwrap();
        prop_assert_eq!(after_adding, plus(before, uncovered as u64));
    }

    #[test]
    fn reported_absences_never_move_the_end(
        start in start_in_force(),
        after in any_after(),
        specs in specs(),
        reported in prop::collection::vec((-60i64..800, 1u64..90), 0..5),
    ) {
        let e = episode_with(start, after);
        let list = absences(&e, &specs);
        let extra: Vec<Spec> = reported.into_iter().map(|(o, l)| (o, l, true)).collect();
        let mut with = list.clone();
        with.extend(absences(&e, &extra));
        let without = e.planned_end(params(), &list).unwrap();
        prop_assert_eq!(e.planned_end(params(), &with).unwrap(), without);
    }

    #[test]
    fn order_of_absences_does_not_matter(
        start in start_in_force(),
        after in any_after(),
        (specs, order) in specs().prop_flat_map(|s| {
            let indices: Vec<usize> = (0..s.len()).collect();
            (Just(s), Just(indices).prop_shuffle())
        }),
    ) {
        let e = episode_with(start, after);
        let list = absences(&e, &specs);
        let reordered: Vec<AbsenceReport> = order.iter().map(|&i| list[i].clone()).collect();
        let in_order = e.planned_end(params(), &list).unwrap();
        prop_assert_eq!(e.planned_end(params(), &reordered).unwrap(), in_order);
    }

    #[test]
    fn overlapping_absences_are_not_double_counted(
        start in start_in_force(),
        after in any_after(),
        specs in inner_specs(),
    ) {
        let e = episode_with(start, after);
        let list = absences(&e, &specs);
        let mut doubled = list.clone();
        doubled.extend(list.iter().cloned());
        let union: BTreeSet<NaiveDate> = list
            .iter()
            .flat_map(|a| (0..a.days()).map(move |i| plus(a.from, i)))
            .collect();
        let base = e.base_end(params()).unwrap();
        prop_assert_eq!(e.planned_end(params(), &doubled).unwrap(), plus(base, union.len() as u64));
    }
}

fn any_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        (NaiveDate::MIN.num_days_from_ce()..=NaiveDate::MAX.num_days_from_ce())
            .prop_filter_map("in range", NaiveDate::from_num_days_from_ce_opt),
        Just(NaiveDate::MIN),
        Just(NaiveDate::MAX),
        (0u64..2000).prop_map(|offset| plus(d(2021, 1, 1), offset)),
    ]
}

fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    let (min, max) = (
        DateTime::<Utc>::MIN_UTC.timestamp(),
        DateTime::<Utc>::MAX_UTC.timestamp(),
    );
    prop_oneof![
        (min..=max).prop_filter_map("in range", |s| DateTime::from_timestamp(s, 0)),
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
        (-4_000_000_000i64..4_000_000_000)
            .prop_filter_map("in range", |s| DateTime::from_timestamp(s, 0)),
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[0-9 +.\\-]{0,20}", "\\PC{0,30}"]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn person_validation_never_panics(
        name in any_text(), birth in any_date(), id_number in proptest::option::of(any_text()),
        phone in proptest::option::of(any_text()), address in proptest::option::of(any_text()),
        sex_text in any_text(),
    ) {
        let _ = sex_text.parse::<Sex>();
        let mut p = Person::new(name, birth, Sex::Female);
        p.id_number = id_number;
        p.phone = phone;
        p.address = address;
        let _ = p.validate(&ctx());
        let _ = format!("{p:?}");
        let _ = p.age_on(birth);
    }

    #[test]
    fn visit_validation_never_panics(
        observations in any_text(), at in any_instant(), due in proptest::option::of(any_date()),
        lat in any::<f64>(), lon in any::<f64>(), acc in proptest::option::of(any::<f64>()),
    ) {
        let mut v = Visit::new(Id::new(), at, observations);
        v.next_visit_due = due;
        v.gps = Some(GeoPoint { lat, lon, accuracy_m: acc });
        let _ = v.validate(&ctx());
        let _ = v.day();
        let _ = format!("{v:?}");
    }

    #[test]
    fn clock_and_calendar_never_panic_on_any_date(
        start in any_date(),
        specs in prop::collection::vec((any_date(), any_date(), any::<bool>()), 0..4),
        n in any::<u32>(),
    ) {
        let e = episode_with(start, PriorRehab::CompulsoryAdult);
        let list: Vec<AbsenceReport> = specs
            .into_iter()
            .map(|(from, to, reported)| AbsenceReport::new(e.person, e.id, from, to, reported))
            .collect();
        let _ = e.planned_end(params(), &list);
        let _ = calendar().add_working_days(start, n);
        let _ = calendar().working_days_between(start, d(2026, 6, 1));
        let _ = file_opening_deadline(start, calendar(), params());
        for a in &list {
            let _ = a.validate(&ctx());
            let _ = a.days();
        }
    }

    #[test]
    fn other_records_validation_never_panics(
        text in any_text(),
        date in any_date(),
        at in any_instant(),
        amount in any::<i64>(),
        count in any::<u32>(),
    ) {
        let c = ctx();
        let person = Id::new();
        let _ = FollowUpTask::new(person, date, text.clone()).validate(&c);
        let session = Session::new(Id::new(), SessionKind::Group, text.clone(), at);
        let _ = session.validate(&c);
        let _ = Attendance::walk_ins(&session, count).validate(&c);
        let _ = SupportBenefit::new(person, BenefitKind::Loan, amount, date).validate(&c);
        let _ = RelapseEvent::new(person, Id::new(), date, text.clone(), date).validate(&c);
        let _ = ConsentRecord::new(person, text.clone(), ConsentBasis::Consent, date).validate(&c);
        let mut log = AccessLog::new(Id::new(), Scope::Person(person), AccessAction::Disclose, at);
        log.purpose = Some(text.clone());
        log.disclosed_to = Some(text.clone());
        let _ = log.validate(&c);
        let mut note = SupervisionNote::new(Id::new(), Id::new(), Id::new(), date);
        note.concerns = text.clone();
        let _ = note.validate(&c);
        let mut transfer = Transfer::new(person, Id::new(), date);
        transfer.note = Some(text.clone());
        let _ = transfer.validate(&c);
        let _ = transfer.deadline_check(calendar(), params());
        let mut referral = Referral::new(person, ReferralTarget::School, date);
        referral.organisation = Some(text);
        let _ = referral.validate(&c);
        let (kind, method) = (TestKind::Periodic, TestMethod::Saliva);
        let test = DrugTest::new(person, at, kind, method, TestResult::Invalid);
        let _ = test.validate(&c);
    }

    #[test]
    fn reference_data_parsers_never_panic(text in any_text()) {
        let _ = LegalParams::from_json(&text);
        let _ = Calendar::from_json(&text);
    }
}
