#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use super::worked::{EXPECTED_2026_10, EXPECTED_PERCENT, records};
use super::*;
use crate::domain::{Calendar, Id, LegalParams};

fn worked() -> (FactSet, Id) {
    let (home, point) = (Id::new(), Id::new());
    let facts = records(home, point, Id::new())
        .iter()
        .flat_map(|r| Fact::of(r, Calendar::embedded(), LegalParams::embedded()))
        .collect();
    (FactSet::new(facts, HashMap::from([(point, home)])), home)
}

#[test]
fn the_embedded_definitions_load_and_every_template_row_is_known() {
    let defs = Definitions::embedded().unwrap();
    assert!(!defs.version.is_empty());
    for t in &defs.templates {
        for s in &t.sections {
            for r in &s.rows {
                assert!(defs.indicator(&r.indicator).is_some(), "{}", r.indicator);
            }
        }
    }
}

#[test]
fn the_worked_commune_gives_the_hand_worked_numbers() {
    let defs = Definitions::embedded().unwrap();
    let (set, _) = worked();
    let report = set
        .report(&defs, "01-BCN", Period::parse("2026-10").unwrap())
        .unwrap();
    let codes: Vec<&str> = report.rows().map(|r| r.code.as_str()).collect();
    let expected: Vec<&str> = EXPECTED_2026_10.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, expected, "the template's rows, in order");
    for (code, want) in EXPECTED_2026_10 {
        let row = report.row(code).unwrap();
        assert_eq!(row.value.whole(), *want, "{code}");
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
    assert_eq!(
        report.row("BEN_LOAN_VND").unwrap().value,
        Value::AmountVnd { value: 30_000_000 }
    );
}

#[test]
fn breakdowns_by_commune_sex_age_and_episode_kind() {
    let defs = Definitions::embedded().unwrap();
    let (set, home) = worked();
    let report = set
        .report(&defs, "01-BCN", Period::parse("2026-10").unwrap())
        .unwrap();
    // FILE_ACTIVE_END = A (male, 36, post-rehab), D (male, 16, voluntary community rehab),
    // E (female, 41, drug-user management), all of `home`.
    let b = &report.row("FILE_ACTIVE_END").unwrap().breakdown;
    let bucket = |dim: &str, key: &str| b[dim].get(key).copied().unwrap_or(0);
    assert_eq!(bucket("commune", &home.to_string()), 3);
    assert_eq!(b["commune"].len(), 1);
    assert_eq!(bucket("sex", "male"), 2);
    assert_eq!(bucket("sex", "female"), 1);
    assert_eq!(bucket("age_band", "30_39"), 1);
    assert_eq!(bucket("age_band", "under_18"), 1);
    assert_eq!(bucket("age_band", "40_49"), 1);
    assert_eq!(bucket("episode_kind", "post_rehab"), 1);
    assert_eq!(bucket("episode_kind", "voluntary_community_rehab"), 1);
    assert_eq!(bucket("episode_kind", "drug_user_management"), 1);
    // Attendance is by the point's commune; walk-ins have no sex.
    let att = &report.row("ATTENDANCE").unwrap().breakdown;
    assert_eq!(att["commune"][&home.to_string()], 10);
    assert_eq!(att["sex"]["male"], 3);
    assert_eq!(att["sex"]["unknown"], 7);
    // Loans by sex: both to A.
    let loans = &report.row("BEN_LOAN_VND").unwrap().breakdown;
    assert_eq!(loans["sex"]["male"], 30_000_000);
}

#[test]
fn a_deadline_counts_in_the_period_it_falls_due() {
    let defs = Definitions::embedded().unwrap();
    let (set, _) = worked();
    // C's transfer: moved 27 Oct, due Tue 3 Nov, notified 2 Nov: met, in November.
    let nov = Period::parse("2026-11").unwrap();
    let report = set.report(&defs, "01-BCN", nov).unwrap();
    assert_eq!(report.row("DEADLINES_DECIDED").unwrap().value.whole(), 1);
    assert_eq!(report.row("DEADLINES_MET").unwrap().value.whole(), 1);
    // November's visits: v6 (18:00 UTC on 31 Oct is 1 Nov in Vietnam).
    assert_eq!(report.row("VISITS").unwrap().value.whole(), 1);
    assert_eq!(report.row("BEN_VOCATIONAL").unwrap().value.whole(), 1);
}

#[test]
fn the_half_year_and_the_year_roll_up_the_same_facts() {
    let defs = Definitions::embedded().unwrap();
    let (set, _) = worked();
    let h2 = set
        .report(&defs, "PROVINCE-H", Period::parse("2026-H2").unwrap())
        .unwrap();
    // In force on 31 Dec: eA, eD, eE2 (nothing ends later in the data).
    assert_eq!(h2.row("FILE_ACTIVE_END").unwrap().value.whole(), 3);
    // July–December: the October completers; the 2 Nov vocational training.
    assert_eq!(h2.row("COMPLETERS").unwrap().value.whole(), 3);
    assert_eq!(h2.row("BEN_VOCATIONAL").unwrap().value.whole(), 1);
    // Deadlines: October's six and November's one; met 3 + 1 of 7.
    assert_eq!(
        h2.row("DEADLINES_MET_PCT").unwrap().value,
        Value::Percent {
            numerator: 4,
            denominator: 7,
            percent: Some(57.1)
        }
    );
    let year = set
        .report(&defs, "PROVINCE-Y", Period::parse("2026").unwrap())
        .unwrap();
    // Under post-rehab management in 2026: eA, eC, eE → relapse rate 1 of 3.
    assert_eq!(year.row("PR_DURING").unwrap().value.whole(), 3);
    assert_eq!(year.row("RELAPSE_RATE").unwrap().value.number(), Some(33.3));
}

#[test]
fn explain_lists_the_records_behind_a_number() {
    let defs = Definitions::embedded().unwrap();
    let (set, _) = worked();
    let oct = Period::parse("2026-10").unwrap();
    let ids = set.explain(&defs, "BEN_LOAN_VND", oct).unwrap();
    assert_eq!(ids.len(), 2, "the two loans");
    // A ratio explains its numerator: the reached visits of A and D.
    assert_eq!(set.explain(&defs, "REACHED_PCT", oct).unwrap().len(), 2);
    assert!(matches!(
        set.explain(&defs, "NOPE", oct),
        Err(ReportError::UnknownIndicator(_))
    ));
}

#[test]
fn a_template_refuses_another_kind_of_period_and_unknown_codes() {
    let defs = Definitions::embedded().unwrap();
    let (set, _) = worked();
    assert!(matches!(
        set.report(&defs, "01-BCN", Period::parse("2026-H1").unwrap()),
        Err(ReportError::WrongPeriodKind { .. })
    ));
    assert!(matches!(
        set.report(&defs, "99-XYZ", Period::parse("2026-10").unwrap()),
        Err(ReportError::UnknownTemplate(_))
    ));
}

#[test]
fn periods_parse_print_and_bound() {
    for (text, start, end) in [
        ("2026-10", "2026-10-01", "2026-10-31"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2026-Q4", "2026-10-01", "2026-12-31"),
        ("2026-H1", "2026-01-01", "2026-06-30"),
        ("2026-H2", "2026-07-01", "2026-12-31"),
        ("2026", "2026-01-01", "2026-12-31"),
    ] {
        let p = Period::parse(text).unwrap();
        assert_eq!(p.to_string(), text);
        assert_eq!(p.start().to_string(), start);
        assert_eq!(p.end().to_string(), end);
    }
    assert_eq!(
        Period::parse("2026-12").unwrap().next().to_string(),
        "2027-01"
    );
    for bad in [
        "",
        "2026-13",
        "2026-00",
        "2026-1",
        "26-10",
        "2026-H3",
        "2026-Q0",
        "2026-10-01",
        "abcd",
        "2026-",
        "１２３４",
        "2026-+1",
        "9999",
    ] {
        assert!(
            matches!(Period::parse(bad), Err(ReportError::InvalidPeriod(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn definitions_refuse_what_the_engine_would_have_to_guess() {
    let base: serde_json::Value =
        serde_json::from_str(include_str!("../../data/reports.json")).unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        edit(&mut v);
        Definitions::from_json(&v.to_string())
    };
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "unknown field",
            Box::new(|v| v["indicators"][0]["colour"] = "red".into()),
        ),
        (
            "unknown kind code",
            Box::new(|v| v["indicators"][1]["filter"]["kind"][0] = "home".into()),
        ),
        (
            "filter not for source",
            Box::new(|v| {
                v["indicators"][1]["filter"]["services_any"] = serde_json::json!(["counselling"])
            }),
        ),
        (
            "episode without date rule",
            Box::new(|v| {
                v["indicators"][1]["filter"]
                    .as_object_mut()
                    .unwrap()
                    .remove("date");
            }),
        ),
        (
            "repeated code",
            Box::new(|v| v["indicators"][1]["code"] = "FILE_ACTIVE_END".into()),
        ),
        (
            "ratio of unknown",
            Box::new(|v| v["indicators"][18]["ratio"]["numerator"] = "NOPE".into()),
        ),
        (
            "template names unknown",
            Box::new(|v| v["templates"][0]["sections"][0]["rows"][0]["indicator"] = "NOPE".into()),
        ),
        (
            "age bands with a gap",
            Box::new(|v| v["age_bands"][1]["min"] = 19.into()),
        ),
        (
            "empty filter list",
            Box::new(|v| v["indicators"][1]["filter"]["kind"] = serde_json::json!([])),
        ),
        (
            "amount of visits",
            Box::new(|v| v["indicators"][21]["measure"] = "amount_vnd".into()),
        ),
    ];
    for (what, edit) in cases {
        assert!(
            matches!(with(&*edit), Err(ReportError::Definitions(_))),
            "{what}"
        );
    }
    assert!(matches!(
        Definitions::from_json("{"),
        Err(ReportError::Definitions(_))
    ));
}

#[test]
fn facts_carry_no_names_or_notes() {
    let (set, _) = worked();
    let json = serde_json::to_string(set.facts()).unwrap();
    for marker in ["marker", "Nguyễn", "Trung tâm"] {
        assert!(!json.contains(marker), "{marker}");
    }
}

#[test]
fn values_print_in_vietnamese_number_format() {
    assert_eq!(Value::Count { value: 1234 }.to_text(), "1.234");
    assert_eq!(
        Value::AmountVnd { value: 30_000_000 }.to_text(),
        "30.000.000 đ"
    );
    assert_eq!(
        Value::Percent {
            numerator: 2,
            denominator: 3,
            percent: Some(66.7)
        }
        .to_text(),
        "66,7 % (2/3)"
    );
    assert_eq!(
        Value::Percent {
            numerator: 0,
            denominator: 0,
            percent: None
        }
        .to_text(),
        "– (0/0)"
    );
    assert_eq!(Value::Count { value: 0 }.to_text(), "0");
    assert_eq!(Value::Count { value: 100 }.to_text(), "100");
}

/// The Sóc Sơn 2019 targets (DOMAIN.md), set for the worked commune's 2026.
fn soc_son(org: Id) -> Plan {
    let target = |indicator: &str, goal: Goal| Target {
        indicator: indicator.to_owned(),
        goal,
    };
    Plan {
        org,
        period: Period::parse("2026").unwrap(),
        title: "Chỉ tiêu theo kế hoạch Sóc Sơn 2019".into(),
        targets: vec![
            target("REHAB_COMPULSORY", Goal::AtLeast(26.0)),
            target("REHAB_FACILITY_VOLUNTARY", Goal::AtLeast(82.0)),
            target("VR_NEW", Goal::AtLeast(17.0)),
            target("COMPLETERS_FILED_PCT", Goal::AtLeast(100.0)),
            target("STAFF_TRAINED_PCT", Goal::AtLeast(70.0)),
            target("BEN_JOB_PEOPLE", Goal::AtLeast(20.0)),
        ],
    }
}

/// The worked commune plus ten staff: six trained in March 2026, one in November, three never.
fn worked_with_staff() -> (FactSet, Id) {
    let (home, point) = (Id::new(), Id::new());
    let mut facts: Vec<Fact> = records(home, point, Id::new())
        .iter()
        .flat_map(|r| Fact::of(r, Calendar::embedded(), LegalParams::embedded()))
        .collect();
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    for i in 0..10 {
        let trained_on = match i {
            0..6 => Some(day(3, 1)),
            6 => Some(day(11, 15)),
            _ => None,
        };
        facts.push(Fact::Staff {
            id: Id::new(),
            commune: Some(home),
            trained_on,
        });
    }
    (FactSet::new(facts, HashMap::from([(point, home)])), home)
}

#[test]
fn the_soc_son_targets_show_progress_during_the_year_and_the_result_at_its_end() {
    let defs = Definitions::embedded().unwrap();
    let (set, home) = worked_with_staff();
    let plan = soc_son(home);
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let row = |p: &PlanProgress, code: &str| {
        p.targets
            .iter()
            .find(|t| t.indicator == code)
            .unwrap()
            .clone()
    };

    // On 31 October. 2026 so far: E's compulsory-rehab file (1 of 26); F accepted at a facility
    // (1 of 82); D into community rehab (1 of 17); completers A, B, F, of whom A and B have a
    // file (66.7 % of 100 %); 6 of 10 staff trained (60 % of 70 %); B's job (1 of 20).
    let oct = set.plan_progress(&defs, &plan, day(10, 31)).unwrap();
    assert!(!oct.final_result);
    for (code, value, status, diff) in [
        ("REHAB_COMPULSORY", 1.0, TargetStatus::NotYet, -25.0),
        ("REHAB_FACILITY_VOLUNTARY", 1.0, TargetStatus::NotYet, -81.0),
        ("VR_NEW", 1.0, TargetStatus::NotYet, -16.0),
        ("COMPLETERS_FILED_PCT", 66.7, TargetStatus::OffTrack, -33.3),
        ("STAFF_TRAINED_PCT", 60.0, TargetStatus::OffTrack, -10.0),
        ("BEN_JOB_PEOPLE", 1.0, TargetStatus::NotYet, -19.0),
    ] {
        let t = row(&oct, code);
        assert_eq!(t.value.number(), Some(value), "{code}");
        assert_eq!(t.status, status, "{code}");
        assert_eq!(t.difference, Some(diff), "{code}");
    }

    // The result on 31 December (a later day is counted to the plan's end): the seventh
    // person trained in November makes 70 %, met; the rest are not met.
    let end = set.plan_progress(&defs, &plan, day(12, 31)).unwrap();
    let later = set
        .plan_progress(
            &defs,
            &plan,
            chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        )
        .unwrap();
    assert_eq!(end, later);
    assert!(end.final_result);
    let staff = row(&end, "STAFF_TRAINED_PCT");
    assert_eq!(staff.status, TargetStatus::Met);
    assert_eq!(staff.difference, Some(0.0));
    assert_eq!(
        staff.value,
        Value::Percent {
            numerator: 7,
            denominator: 10,
            percent: Some(70.0)
        }
    );
    for code in [
        "REHAB_COMPULSORY",
        "REHAB_FACILITY_VOLUNTARY",
        "VR_NEW",
        "COMPLETERS_FILED_PCT",
        "BEN_JOB_PEOPLE",
    ] {
        assert_eq!(row(&end, code).status, TargetStatus::NotMet, "{code}");
    }
}

#[test]
fn plans_refuse_unknown_indicators_and_impossible_goals() {
    let defs = Definitions::embedded().unwrap();
    let base = soc_son(Id::new());
    let with = |edit: &dyn Fn(&mut Plan)| {
        let mut p = base.clone();
        edit(&mut p);
        p.validate(&defs)
    };
    assert_eq!(with(&|_| {}), Ok(()));
    assert!(matches!(
        with(&|p| p.targets[0].indicator = "NOPE".into()),
        Err(ReportError::UnknownIndicator(_))
    ));
    for edit in [
        &(|p: &mut Plan| p.targets[3].goal = Goal::AtLeast(120.0)) as &dyn Fn(&mut Plan),
        &|p| p.targets[0].goal = Goal::AtLeast(2.5),
        &|p| p.targets[0].goal = Goal::AtMost(-1.0),
        &|p| p.targets[0].goal = Goal::AtLeast(f64::NAN),
        &|p| p.targets.clear(),
        &|p| p.targets.push(p.targets[0].clone()),
        &|p| p.title = "a\nb".into(),
        &|p| p.title = "x".repeat(201),
    ] {
        assert!(matches!(with(edit), Err(ReportError::Definitions(_))));
    }
}

#[test]
fn errors_repeat_a_typed_code_only_when_it_looks_like_one() {
    // A name, a phone number and an ID-card number typed into the wrong field.
    for typed in [
        "Nguyen Van An",
        "0912345678",
        "001087012345",
        "0912-345-678",
    ] {
        for e in [
            Period::parse(typed).unwrap_err(),
            ReportError::UnknownTemplate(typed.into()),
            ReportError::UnknownIndicator(typed.into()),
        ] {
            assert!(!e.to_string().contains(typed), "{e}");
            assert!(!e.message_vi().contains(typed));
        }
    }
    assert!(
        Period::parse("2026-13")
            .unwrap_err()
            .to_string()
            .contains("2026-13")
    );
    assert!(
        ReportError::UnknownTemplate("NOPE".into())
            .to_string()
            .contains("NOPE")
    );
}

mod exports {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use chrono::NaiveDate;

    use super::super::books::{self, BookKind, BookSource};
    use super::super::export::{self, COL_CODE, COL_VALUE, FORM_COLUMNS, FORM_HEADER_ROW, Labels};
    use super::*;
    use crate::domain::AnyRecord;

    fn october() -> (Report, Labels) {
        let defs = Definitions::embedded().unwrap();
        let (set, home) = worked();
        let report = set
            .report(&defs, "01-BCN", Period::parse("2026-10").unwrap())
            .unwrap();
        let labels = Labels {
            org_name: "Xã Minh Phú".into(),
            parent_name: "Thành phố Hà Nội".into(),
            units: HashMap::from([(home.to_string(), "Xã Minh Phú".to_owned())]),
        };
        (report, labels)
    }

    fn cell(range: &calamine::Range<Data>, row: u32, col: u16) -> Data {
        range
            .get_value((row, u32::from(col)))
            .cloned()
            .unwrap_or(Data::Empty)
    }

    fn text(range: &calamine::Range<Data>, row: u32, col: u16) -> String {
        match cell(range, row, col) {
            Data::String(s) => s,
            other => panic!("({row}, {col}) is {other:?}, not text"),
        }
    }

    #[test]
    fn the_xlsx_has_every_hand_worked_number_in_its_cell() {
        let (report, labels) = october();
        let bytes = export::to_xlsx(&report, &labels).unwrap();
        let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        assert_eq!(
            wb.sheet_names(),
            vec!["01-BCN".to_owned(), export::BREAKDOWN_SHEET.to_owned()]
        );
        let form = wb.worksheet_range("01-BCN").unwrap();
        // The heading block, the title and the period as the paper form has them.
        assert_eq!(text(&form, 0, 3), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM");
        assert_eq!(text(&form, 1, 0), "XÃ MINH PHÚ");
        assert_eq!(text(&form, 2, 3), "Biểu 01-BCN");
        assert!(text(&form, 4, 0).starts_with("BÁO CÁO THÁNG"));
        assert!(
            text(&form, 6, 0)
                .starts_with("Kỳ báo cáo: tháng 10 năm 2026 (từ 01/10/2026 đến 31/10/2026)"),
            "{}",
            text(&form, 6, 0)
        );
        for (col, heading) in FORM_COLUMNS.iter().enumerate() {
            assert_eq!(text(&form, FORM_HEADER_ROW, col as u16), *heading);
        }
        // Every indicator's row, in the template's order, with its number in the value column
        // (a number, not text, so that the sheet adds up).
        let mut codes = Vec::new();
        let mut rows = std::collections::HashMap::new();
        for row in FORM_HEADER_ROW + 1..FORM_HEADER_ROW + 200 {
            if let Data::String(code) = cell(&form, row, COL_CODE) {
                codes.push(code.clone());
                rows.insert(code, row);
            }
        }
        let expected: Vec<&str> = EXPECTED_2026_10.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, expected);
        let percents: HashMap<&str, (i64, i64, f64)> = EXPECTED_PERCENT
            .iter()
            .map(|(c, n, d, p)| (*c, (*n, *d, *p)))
            .collect();
        for (code, want) in EXPECTED_2026_10 {
            let row = rows[*code];
            match percents.get(code) {
                Some((num, den, pct)) => {
                    assert_eq!(
                        cell(&form, row, COL_VALUE),
                        Data::Float(pct / 100.0),
                        "{code}"
                    );
                    assert_eq!(cell(&form, row, COL_VALUE + 1), Data::Float(*num as f64));
                    assert_eq!(cell(&form, row, COL_VALUE + 2), Data::Float(*den as f64));
                    assert_eq!(text(&form, row, 4), "% / %");
                }
                None => assert_eq!(
                    cell(&form, row, COL_VALUE),
                    Data::Float(*want as f64),
                    "{code}"
                ),
            }
        }
        assert_eq!(text(&form, rows["BEN_LOAN_VND"], 4), "đồng / VND");
        assert_eq!(
            cell(&form, rows["BEN_LOAN_VND"], COL_VALUE),
            Data::Float(30_000_000.0)
        );
        // The breakdown sheet names the commune and adds up to the total.
        let by = wb.worksheet_range(export::BREAKDOWN_SHEET).unwrap();
        let mut by_commune = 0.0;
        for row in 3..2000 {
            if cell(&by, row, 2) == Data::String("VR_NEW".into())
                && cell(&by, row, 3) == Data::String("Xã / Commune".into())
            {
                assert_eq!(text(&by, row, 4), "Xã Minh Phú");
                if let Data::Float(n) = cell(&by, row, 5) {
                    by_commune += n;
                }
            }
        }
        assert_eq!(by_commune, 1.0);
    }

    #[test]
    fn the_csv_has_the_totals_then_the_breakdowns() {
        let (report, labels) = october();
        let bytes = export::to_csv(&report, &labels).unwrap();
        assert!(
            bytes.starts_with("\u{feff}".as_bytes()),
            "a byte-order mark for Excel"
        );
        let mut r = csv::Reader::from_reader(&bytes[3..]);
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            export::CSV_HEADER.to_vec()
        );
        let records: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        let totals: Vec<(String, String)> = records
            .iter()
            .filter(|r| r[7].is_empty())
            .map(|r| (r[3].to_owned(), r[10].to_owned()))
            .collect();
        let want: Vec<(String, String)> = EXPECTED_2026_10
            .iter()
            .map(|(c, v)| {
                let shown = EXPECTED_PERCENT
                    .iter()
                    .find(|p| p.0 == *c)
                    .map_or_else(|| v.to_string(), |p| format!("{:.1}", p.3));
                ((*c).to_owned(), shown)
            })
            .collect();
        assert_eq!(totals, want);
        let sex: Vec<(&str, &str)> = records
            .iter()
            .filter(|r| &r[3] == "BEN_LOAN_VND" && &r[7] == "sex")
            .map(|r| (r.get(9).unwrap(), r.get(10).unwrap()))
            .collect();
        assert_eq!(sex, vec![("Nam / Male", "30000000")]);
    }

    fn book_source(
        records: &[AnyRecord],
    ) -> (
        Vec<Person>,
        Vec<crate::domain::Episode>,
        Vec<crate::domain::RelapseEvent>,
    ) {
        let mut persons = Vec::new();
        let mut episodes = Vec::new();
        let mut relapses = Vec::new();
        for r in records {
            match r {
                AnyRecord::Person(p) => persons.push(p.clone()),
                AnyRecord::Episode(e) => episodes.push(e.clone()),
                AnyRecord::RelapseEvent(r) => relapses.push(r.clone()),
                _ => {}
            }
        }
        (persons, episodes, relapses)
    }

    use crate::domain::Person;

    #[test]
    fn the_books_list_the_worked_communes_people_as_worked_out_by_hand() {
        let records = records(Id::new(), Id::new(), Id::new());
        let (persons, episodes, relapses) = book_source(&records);
        let src = BookSource {
            persons: &persons,
            episodes: &episodes,
            relapses: &relapses,
            ..BookSource::default()
        };
        let as_of = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        let name = |i: usize| crate::report::worked::NAMES[i].to_owned();
        // Sổ 04: the post-rehab files under management (B's is only proposed, F's a draft):
        // C (from 1 Nov 2025, served its term on 31 Oct), E (from 1 Mar, ended by relapse on
        // 15 Oct), A (from 6 Oct, under management until 6 Oct 2027: one year after voluntary).
        let b04 = books::lines(BookKind::Scn04, &src, as_of);
        let got: Vec<(String, String)> = b04
            .iter()
            .map(|l| (l.name.clone(), l.outcome.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    name(2),
                    "Hết thời hạn quản lý ngày 31/10/2026 / term served".to_owned()
                ),
                (
                    name(4),
                    "Chấm dứt ngày 15/10/2026: tái nghiện / relapse".to_owned()
                ),
                (name(0), "Đang quản lý / under management".to_owned()),
            ]
        );
        assert_eq!(b04[2].until, NaiveDate::from_ymd_opt(2027, 10, 6));
        assert_eq!(b04[2].decision.as_deref(), Some("ngày 06/10/2026"));
        // Sổ 05: every completion the commune knows, by the day it was completed or reported:
        // C (no report date: the file's start), E, A (reported 1 Oct), B (12 Oct), F (26 Oct).
        // D's community rehab is still running. E relapsed after completing.
        let b05 = books::lines(BookKind::Scn05, &src, as_of);
        let got: Vec<(String, Option<NaiveDate>)> =
            b05.iter().map(|l| (l.name.clone(), l.from)).collect();
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day);
        assert_eq!(
            got,
            vec![
                (name(2), NaiveDate::from_ymd_opt(2025, 11, 1)),
                (name(4), d(3, 1)),
                (name(0), d(10, 1)),
                (name(1), d(10, 12)),
                (name(5), d(10, 26)),
            ]
        );
        assert!(
            b05[1]
                .outcome
                .starts_with("Tái nghiện, xác định ngày 14/10/2026")
        );
        assert_eq!(b05[3].until, None, "B's file is not decided yet");
        // Debug never prints a name.
        assert!(!format!("{b05:?}").contains("marker"));

        // The XLSX: the book's columns, one person a row, in the right cells.
        let labels = Labels {
            org_name: "Xã Minh Phú".into(),
            ..Labels::default()
        };
        let bytes = books::to_xlsx(BookKind::Scn04, &b04, &labels, as_of).unwrap();
        let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
        let sheet = wb.worksheet_range("Sổ 04-SCN").unwrap();
        let header = books::BOOK_HEADER_ROW;
        for (col, h) in books::columns(BookKind::Scn04).iter().enumerate() {
            assert_eq!(text(&sheet, header, col as u16), *h);
        }
        assert_eq!(text(&sheet, header + 1, 0), "1");
        assert_eq!(text(&sheet, header + 1, 1), name(2));
        assert_eq!(text(&sheet, header + 3, 1), name(0));
        assert_eq!(text(&sheet, header + 3, 8), "06/10/2026");
        assert_eq!(text(&sheet, header + 3, 9), "06/10/2027");
        assert_eq!(cell(&sheet, header + 4, 1), Data::Empty);
        // The CSV: the same lines.
        let csv_bytes = books::to_csv(BookKind::Scn05, &b05).unwrap();
        let mut r = csv::Reader::from_reader(&csv_bytes[3..]);
        let names: Vec<String> = r.records().map(|r| r.unwrap()[1].to_owned()).collect();
        assert_eq!(names, vec![name(2), name(4), name(0), name(1), name(5)]);
    }

    #[test]
    fn book_names_parse() {
        assert_eq!(BookKind::parse("04").unwrap(), BookKind::Scn04);
        assert_eq!(BookKind::parse("05-scn").unwrap(), BookKind::Scn05);
        assert!(BookKind::parse("Nguyễn Văn An").is_err());
        assert!(
            !BookKind::parse("Nguyễn Văn An")
                .unwrap_err()
                .to_string()
                .contains("Nguy")
        );
    }
}
