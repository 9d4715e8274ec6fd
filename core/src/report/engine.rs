//! The report engine: indicators over facts, for a period, with disaggregation.
//!
//! Decisions (also in the definitions' texts, which are what users read):
//! - An episode is *in force* on day `d` when it reached management (active, completed or
//!   terminated; not a draft or proposal), started on or before `d`, and has not ended on or
//!   before `d`. "Active at end" is in force on the period's last day; "active during" is in
//!   force on at least one of its days.
//! - Event facts (visits, tests, benefits, referrals, relapses, sessions, attendance) count in
//!   the period their day falls in; a deadline counts in the period its last day falls in, with
//!   its status as it stood on the period's last day (a step done after it is "overdue" there),
//!   so a closed period's numbers do not change when a late step is recorded.
//! - Disaggregation: by commune (a person's recorded commune; for sessions and attendance the
//!   commune of the point), sex and age band (age on the period's last day from the year of
//!   birth), and episode kind (the fact's own episode). A person counted in two buckets (two
//!   episode kinds) is counted once in each, so the buckets of a "people" row may add up to
//!   more than its total; "unknown" and "none" buckets are shown, not dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::{DeadlineStatus, EpisodeStatus, Id, Sex};

use super::definitions::{Definitions, EpisodeDate, Indicator, Measure, Source};
use super::facts::{Fact, status_parts};
use super::{Period, ReportError};

/// Disaggregation: dimension → bucket → value.
pub type Breakdown = BTreeMap<String, BTreeMap<String, i64>>;

/// The value of one indicator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Value {
    /// A count (records, people, attendances).
    Count {
        /// The count.
        value: i64,
    },
    /// An amount in VND.
    AmountVnd {
        /// The amount.
        value: i64,
    },
    /// A percentage of two counts.
    Percent {
        /// Numerator.
        numerator: i64,
        /// Denominator.
        denominator: i64,
        /// `100 × numerator ÷ denominator`, rounded to one decimal; none when the denominator
        /// is 0.
        percent: Option<f64>,
    },
}

impl Value {
    /// The number shown (percent for a ratio; none for a ratio over zero).
    #[must_use]
    pub fn number(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Value::Count { value } | Value::AmountVnd { value } => Some(*value as f64),
            Value::Percent { percent, .. } => *percent,
        }
    }

    /// The count or amount; for a ratio, its numerator.
    #[must_use]
    pub fn whole(&self) -> i64 {
        match self {
            Value::Count { value } | Value::AmountVnd { value } => *value,
            Value::Percent { numerator, .. } => *numerator,
        }
    }
}

/// Percent rounded to one decimal.
#[must_use]
pub fn percent(numerator: i64, denominator: i64) -> Option<f64> {
    if denominator == 0 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)]
    let p = numerator as f64 * 100.0 / denominator as f64;
    Some((p * 10.0).round() / 10.0)
}

/// One row of a computed report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// Row number on the form.
    pub no: String,
    /// Indicator code.
    pub code: String,
    /// Label in Vietnamese.
    pub label_vi: String,
    /// Label in English.
    pub label_en: String,
    /// The value.
    pub value: Value,
    /// The value by commune, sex, age band and episode kind (counts and amounts only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub breakdown: Breakdown,
}

/// One section of a computed report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportSection {
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// Rows.
    pub rows: Vec<ReportRow>,
}

/// A computed report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Template code.
    pub template: String,
    /// Title in Vietnamese.
    pub title_vi: String,
    /// Title in English.
    pub title_en: String,
    /// The form it follows.
    pub basis: String,
    /// The period (`2026-10`).
    pub period: Period,
    /// First day.
    pub start: NaiveDate,
    /// Last day.
    pub end: NaiveDate,
    /// The definitions version used.
    pub definitions_version: String,
    /// Sections.
    pub sections: Vec<ReportSection>,
    /// Progress of the plans set for this org unit whose period includes this report's last
    /// day, counted to that day (the server's reports; a phone has no plans).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<super::plan::PlanProgress>,
    /// Set when the period was closed: the report is the snapshot taken then, and does not
    /// change when late records arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<Closed>,
    /// On an open period's report: rows of the closed periods just before it whose numbers
    /// changed since they were closed (records that arrived late).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<LateNote>,
}

/// When and by whom a report's period was closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who (none: the server's command line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Id>,
}

/// A closed period's row whose number changed after it was closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateNote {
    /// The closed period.
    pub period: Period,
    /// The row's indicator.
    pub code: String,
    /// The number frozen when the period closed.
    pub frozen: Value,
    /// The number the records give now.
    pub now: Value,
}

impl Report {
    /// The row of an indicator.
    #[must_use]
    pub fn row(&self, code: &str) -> Option<&ReportRow> {
        self.sections
            .iter()
            .flat_map(|s| &s.rows)
            .find(|r| r.code == code)
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &ReportRow> {
        self.sections.iter().flat_map(|s| &s.rows)
    }

    /// The rows of `self` (a closed period's frozen report) whose values differ in `now` (the
    /// same period computed again), as late notes.
    #[must_use]
    pub fn changes_since(&self, now: &Report) -> Vec<LateNote> {
        self.rows()
            .filter_map(|frozen| {
                let current = now.row(&frozen.code)?;
                (current.value != frozen.value).then(|| LateNote {
                    period: self.period,
                    code: frozen.code.clone(),
                    frozen: frozen.value.clone(),
                    now: current.value.clone(),
                })
            })
            .collect()
    }

    /// The report as text for a terminal: Vietnamese first, English second, one row a line.
    #[must_use]
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "{} — {}", self.template, self.title_vi);
        let _ = writeln!(out, "{}", self.title_en);
        let _ = writeln!(
            out,
            "Kỳ báo cáo / period: {} ({} – {}) · định nghĩa / definitions {}",
            self.period, self.start, self.end, self.definitions_version
        );
        let _ = writeln!(out, "{}", self.basis);
        if let Some(c) = &self.closed {
            let _ = writeln!(
                out,
                "Đã chốt kỳ / closed: {} (số liệu cố định / figures frozen)",
                c.at.format("%Y-%m-%d %H:%M UTC")
            );
        }
        for s in &self.sections {
            let _ = writeln!(out, "\n{} / {}", s.title_vi, s.title_en);
            for r in &s.rows {
                let _ = writeln!(
                    out,
                    "{:>5}  {} / {}: {}",
                    r.no,
                    r.label_vi,
                    r.label_en,
                    r.value.to_text()
                );
            }
        }
        if !self.late.is_empty() {
            let _ = writeln!(
                out,
                "\nSố liệu đến muộn của kỳ đã chốt / late records for closed periods:"
            );
            for n in &self.late {
                let _ = writeln!(
                    out,
                    "  {} {}: {} → {}",
                    n.period,
                    n.code,
                    n.frozen.to_text(),
                    n.now.to_text()
                );
            }
        }
        out
    }
}

impl Value {
    /// The value as shown: `12`, `30.000.000 đ`, `66,7 % (2/3)` (Vietnamese number format).
    #[must_use]
    pub fn to_text(&self) -> String {
        match self {
            Value::Count { value } => group_thousands(*value),
            Value::AmountVnd { value } => format!("{} đ", group_thousands(*value)),
            Value::Percent {
                numerator,
                denominator,
                percent: Some(p),
            } => format!(
                "{} % ({numerator}/{denominator})",
                format!("{p:.1}").replace('.', ",")
            ),
            Value::Percent {
                numerator,
                denominator,
                percent: None,
            } => format!("– ({numerator}/{denominator})"),
        }
    }
}

/// `30000000` → `30.000.000` (Vietnamese groups thousands with dots).
fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[derive(Clone, Copy, Debug)]
struct PersonInfo {
    commune: Option<Id>,
    sex: Sex,
    birth_year: i32,
}

/// No person, no bucket: a dense index that is not there.
const NONE: u32 = u32::MAX;

/// Facts indexed for the engine: positions by source, people as dense indexes, and the
/// breakdown buckets of each fact interned once (labels exactly as shown in a breakdown).
#[derive(Debug, Default)]
pub struct FactSet {
    facts: Vec<Fact>,
    /// Fact positions by [`source_slot`], ascending.
    by_source: [Vec<u32>; SOURCES],
    /// Per fact: its person's dense index, or [`NONE`].
    person: Vec<u32>,
    /// Per fact: its commune bucket (into `communes`).
    commune: Vec<u32>,
    /// Per fact: its episode kind bucket (into `kinds`).
    kind: Vec<u8>,
    /// Per dense person: the sex bucket (into `sexes`).
    person_sex: Vec<u8>,
    /// Per dense person: the year of birth, when a person fact gives one.
    person_birth: Vec<Option<i32>>,
    communes: Vec<String>,
    sexes: Vec<&'static str>,
    kinds: Vec<&'static str>,
}

/// How many sources there are.
const SOURCES: usize = 10;

/// A source's slot in [`FactSet::by_source`].
fn source_slot(source: Source) -> usize {
    match source {
        Source::Episode => 0,
        Source::Visit => 1,
        Source::DrugTest => 2,
        Source::Benefit => 3,
        Source::Referral => 4,
        Source::Relapse => 5,
        Source::Session => 6,
        Source::Attendance => 7,
        Source::Deadline => 8,
        Source::Staff => 9,
    }
}

/// The source whose indicators may count `fact`.
fn fact_source(fact: &Fact) -> Option<Source> {
    Some(match fact {
        Fact::Person { .. } => return None,
        Fact::Episode { .. } => Source::Episode,
        Fact::Visit { .. } => Source::Visit,
        Fact::DrugTest { .. } => Source::DrugTest,
        Fact::Benefit { .. } => Source::Benefit,
        Fact::Referral { .. } => Source::Referral,
        Fact::Relapse { .. } => Source::Relapse,
        Fact::Session { .. } => Source::Session,
        Fact::Attendance { .. } => Source::Attendance,
        Fact::Deadline { .. } => Source::Deadline,
        Fact::Staff { .. } => Source::Staff,
    })
}

/// The slot of `label` in `labels`, added when new.
fn intern_str(labels: &mut Vec<&'static str>, label: &'static str) -> u8 {
    let at = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
        labels.push(label);
        labels.len() - 1
    });
    u8::try_from(at).unwrap_or(u8::MAX)
}

/// Which breakdown dimensions a fact has beyond the commune: (sex and age band, episode kind).
fn fact_dims(fact: &Fact) -> (bool, bool) {
    match fact {
        Fact::Staff { .. } | Fact::Session { .. } => (false, false),
        Fact::Attendance { .. } => (true, false),
        _ => (true, true),
    }
}

impl FactSet {
    /// Indexes `facts`. `point_communes` gives the commune of each community point (for the
    /// commune breakdown of sessions and attendance).
    #[must_use]
    pub fn new(facts: Vec<Fact>, point_communes: HashMap<Id, Id>) -> Self {
        let mut persons: HashMap<Id, PersonInfo> = HashMap::new();
        let mut episodes = HashMap::new();
        for f in &facts {
            match f {
                Fact::Person {
                    id,
                    commune,
                    sex,
                    birth_year,
                } => {
                    persons.insert(
                        *id,
                        PersonInfo {
                            commune: *commune,
                            sex: *sex,
                            birth_year: *birth_year,
                        },
                    );
                }
                Fact::Episode { id, kind, .. } => {
                    episodes.insert(*id, *kind);
                }
                _ => {}
            }
        }
        let n = facts.len();
        let mut by_source: [Vec<u32>; SOURCES] = Default::default();
        let mut person = Vec::with_capacity(n);
        let mut commune = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut dense: HashMap<Id, u32> = HashMap::new();
        let mut person_sex = Vec::new();
        let mut person_birth = Vec::new();
        let mut person_commune = Vec::new();
        let mut communes = Vec::new();
        let mut commune_slots: HashMap<Option<Id>, u32> = HashMap::new();
        let mut intern_commune = |c: Option<Id>| {
            *commune_slots.entry(c).or_insert_with(|| {
                communes.push(c.map_or_else(|| "unknown".to_owned(), |c| c.to_string()));
                u32::try_from(communes.len() - 1).unwrap_or(NONE)
            })
        };
        // Slot 0: a fact without a person.
        let mut sexes = vec!["unknown"];
        let mut kinds = Vec::new();
        for (i, f) in facts.iter().enumerate() {
            if let Some(source) = fact_source(f) {
                by_source[source_slot(source)].push(u32::try_from(i).unwrap_or(NONE));
            }
            // One lookup per fact (the person's dense index); what a person gives (sex, year
            // of birth, commune bucket) is looked up once per person.
            let p = f.person().map_or(NONE, |p| {
                *dense.entry(p).or_insert_with(|| {
                    let info = persons.get(&p);
                    person_sex.push(intern_str(
                        &mut sexes,
                        info.map_or("unknown", |i| i.sex.code()),
                    ));
                    person_birth.push(info.map(|i| i.birth_year));
                    person_commune.push(intern_commune(info.and_then(|i| i.commune)));
                    u32::try_from(person_sex.len() - 1).unwrap_or(NONE)
                })
            });
            person.push(p);
            commune.push(match (f, f.point()) {
                (Fact::Staff { commune, .. }, _) => intern_commune(*commune),
                (_, Some(point)) => intern_commune(point_communes.get(&point).copied()),
                (_, None) if p != NONE => person_commune[p as usize],
                (_, None) => intern_commune(None),
            });
            kind.push(intern_str(
                &mut kinds,
                f.episode()
                    .and_then(|e| episodes.get(&e))
                    .map_or("none", |k| k.code()),
            ));
        }
        Self {
            facts,
            by_source,
            person,
            commune,
            kind,
            person_sex,
            person_birth,
            communes,
            sexes,
            kinds,
        }
    }

    /// The facts.
    #[must_use]
    pub fn facts(&self) -> &[Fact] {
        &self.facts
    }

    /// Computes `template` for `period`.
    ///
    /// # Errors
    /// `UnknownTemplate`; `WrongPeriodKind` when the template is for another kind of period.
    pub fn report(
        &self,
        defs: &Definitions,
        template: &str,
        period: Period,
    ) -> Result<Report, ReportError> {
        let t = defs.template(template)?;
        if t.period != period.kind() {
            return Err(ReportError::WrongPeriodKind {
                template: t.code.clone(),
                expected: t.period,
                given: period.kind(),
            });
        }
        let mut eval = Eval::new(self, defs, period.start(), period.end());
        let mut sections = Vec::new();
        for s in &t.sections {
            let mut rows = Vec::new();
            for r in &s.rows {
                let ind = defs
                    .indicator(&r.indicator)
                    .ok_or_else(|| ReportError::UnknownIndicator(r.indicator.clone()))?;
                let (value, breakdown) = eval.value(ind)?;
                rows.push(ReportRow {
                    no: r.no.clone(),
                    code: ind.code.clone(),
                    label_vi: ind.label_vi.clone(),
                    label_en: ind.label_en.clone(),
                    value,
                    breakdown,
                });
            }
            sections.push(ReportSection {
                title_vi: s.title_vi.clone(),
                title_en: s.title_en.clone(),
                rows,
            });
        }
        Ok(Report {
            template: t.code.clone(),
            title_vi: t.title_vi.clone(),
            title_en: t.title_en.clone(),
            basis: t.basis.clone(),
            period,
            start: period.start(),
            end: period.end(),
            definitions_version: defs.version.clone(),
            sections,
            plans: Vec::new(),
            closed: None,
            late: Vec::new(),
        })
    }

    /// One indicator between two days (inclusive), without a template: for plans, whose
    /// progress is counted from the start of their period to a day inside it.
    ///
    /// # Errors
    /// `UnknownIndicator`.
    pub fn indicator(
        &self,
        defs: &Definitions,
        code: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<Value, ReportError> {
        let ind = defs
            .indicator(code)
            .ok_or_else(|| ReportError::UnknownIndicator(code.to_owned()))?;
        Ok(Eval::new(self, defs, start, end).value(ind)?.0)
    }

    /// The records behind an indicator's number for `period` (for a ratio, its numerator's),
    /// sorted. The caller shows only those the viewer may see.
    ///
    /// # Errors
    /// `UnknownIndicator`.
    pub fn explain(
        &self,
        defs: &Definitions,
        code: &str,
        period: Period,
    ) -> Result<Vec<Id>, ReportError> {
        let mut ind = defs
            .indicator(code)
            .ok_or_else(|| ReportError::UnknownIndicator(code.to_owned()))?;
        if let Some(ratio) = &ind.ratio {
            ind = defs
                .indicator(&ratio.numerator)
                .ok_or_else(|| ReportError::UnknownIndicator(ratio.numerator.clone()))?;
        }
        let mut eval = Eval::new(self, defs, period.start(), period.end());
        let matching = eval.matching(ind)?;
        let ids: BTreeSet<Id> = matching.iter().map(|&i| self.facts[i].id()).collect();
        Ok(ids.into_iter().collect())
    }
}

/// One evaluation (a period), memoising indicator values and the people sets `people_of`
/// refers to.
struct Eval<'a> {
    set: &'a FactSet,
    defs: &'a Definitions,
    start: NaiveDate,
    end: NaiveDate,
    /// People sets by indicator code: membership by dense person index.
    people: HashMap<String, Rc<Vec<bool>>>,
    /// Values by indicator code.
    values: HashMap<String, (Value, Breakdown)>,
    /// Per dense person: the age band bucket (into `ages`), on `end`.
    person_age: Vec<u32>,
    ages: Vec<String>,
}

impl<'a> Eval<'a> {
    fn new(set: &'a FactSet, defs: &'a Definitions, start: NaiveDate, end: NaiveDate) -> Self {
        // Slot 0: unknown (no person, no year of birth, no band).
        let mut ages = vec!["unknown".to_owned()];
        let mut by_year: HashMap<i32, u32> = HashMap::new();
        let slot_of = |label: &str, ages: &mut Vec<String>| -> u32 {
            let at = ages.iter().position(|l| l == label).unwrap_or_else(|| {
                ages.push(label.to_owned());
                ages.len() - 1
            });
            u32::try_from(at).unwrap_or(0)
        };
        let person_age = set
            .person_birth
            .iter()
            .map(|birth| {
                birth.map_or(0, |year| {
                    *by_year.entry(year).or_insert_with(|| {
                        let band = u32::try_from(end.year() - year)
                            .ok()
                            .and_then(|a| defs.age_band(a))
                            .map_or("unknown", |b| b.code.as_str());
                        slot_of(band, &mut ages)
                    })
                })
            })
            .collect();
        Self {
            set,
            defs,
            start,
            end,
            people: HashMap::new(),
            values: HashMap::new(),
            person_age,
            ages,
        }
    }

    fn value(&mut self, ind: &Indicator) -> Result<(Value, Breakdown), ReportError> {
        if let Some(known) = self.values.get(&ind.code) {
            return Ok(known.clone());
        }
        let computed = self.compute(ind)?;
        self.values.insert(ind.code.clone(), computed.clone());
        Ok(computed)
    }

    fn compute(&mut self, ind: &Indicator) -> Result<(Value, Breakdown), ReportError> {
        if let Some(ratio) = &ind.ratio {
            let part = |this: &mut Self, code: &str| -> Result<i64, ReportError> {
                let p = this
                    .defs
                    .indicator(code)
                    .ok_or_else(|| ReportError::UnknownIndicator(code.to_owned()))?;
                Ok(this.value(p)?.0.whole())
            };
            let numerator = part(self, &ratio.numerator)?;
            let denominator = part(self, &ratio.denominator)?;
            return Ok((
                Value::Percent {
                    numerator,
                    denominator,
                    percent: percent(numerator, denominator),
                },
                Breakdown::new(),
            ));
        }
        let measure = ind.measure.unwrap_or(Measure::Records);
        let matching = self.matching(ind)?;
        let set = self.set;
        let mut total = Tally::new(measure);
        let mut communes: Vec<Option<Tally>> = Vec::new();
        communes.resize_with(set.communes.len(), || None);
        let mut sexes: Vec<Option<Tally>> = Vec::new();
        sexes.resize_with(set.sexes.len(), || None);
        let mut ages: Vec<Option<Tally>> = Vec::new();
        ages.resize_with(self.ages.len(), || None);
        let mut kinds: Vec<Option<Tally>> = Vec::new();
        kinds.resize_with(set.kinds.len(), || None);
        let bucket = |buckets: &mut [Option<Tally>], slot: usize, i: usize| {
            buckets[slot]
                .get_or_insert_with(|| Tally::new(measure))
                .add(set, i);
        };
        for &i in &matching {
            let fact = &set.facts[i];
            total.add(set, i);
            bucket(&mut communes, set.commune[i] as usize, i);
            let (sex_age, kind) = fact_dims(fact);
            if sex_age {
                let p = set.person[i];
                let (sex, age) = if p == NONE {
                    (0, 0)
                } else {
                    (
                        usize::from(set.person_sex[p as usize]),
                        self.person_age[p as usize] as usize,
                    )
                };
                bucket(&mut sexes, sex, i);
                bucket(&mut ages, age, i);
            }
            if kind {
                bucket(&mut kinds, usize::from(set.kind[i]), i);
            }
        }
        let mut breakdown = Breakdown::new();
        let mut dim = |name: &str, buckets: Vec<Option<Tally>>, label: &dyn Fn(usize) -> String| {
            let values: BTreeMap<String, i64> = buckets
                .into_iter()
                .enumerate()
                .filter_map(|(slot, t)| t.map(|t| (label(slot), t.value())))
                .collect();
            if !values.is_empty() {
                breakdown.insert(name.to_owned(), values);
            }
        };
        dim("commune", communes, &|s| set.communes[s].clone());
        dim("sex", sexes, &|s| set.sexes[s].to_owned());
        dim("age_band", ages, &|s| self.ages[s].clone());
        dim("episode_kind", kinds, &|s| set.kinds[s].to_owned());
        let value = match measure {
            Measure::AmountVnd => Value::AmountVnd {
                value: total.value(),
            },
            _ => Value::Count {
                value: total.value(),
            },
        };
        Ok((value, breakdown))
    }

    /// Indexes of the facts an indicator counts.
    fn matching(&mut self, ind: &Indicator) -> Result<Vec<usize>, ReportError> {
        let Some(source) = ind.source else {
            return Ok(Vec::new());
        };
        let f = &ind.filter;
        let restrict = match &f.people_of {
            Some(code) => Some(self.people_of(code)?),
            None => None,
        };
        let (start, end) = (self.start, self.end);
        let in_period = |d: NaiveDate| start <= d && d <= end;
        let listed = |list: &Option<Vec<String>>, code: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|c| c == code))
        };
        let set = self.set;
        let mut out = Vec::new();
        for &i in &set.by_source[source_slot(source)] {
            let i = i as usize;
            let fact = &set.facts[i];
            let hit = match (source, fact) {
                (
                    Source::Episode,
                    Fact::Episode {
                        kind,
                        status,
                        after,
                        start: began,
                        ended_on,
                        completion_reported_on,
                        file_opened_on,
                        decision_date,
                        ..
                    },
                ) => {
                    let (status_code, reason) = status_parts(*status);
                    let date_of = |d: EpisodeDate| match d {
                        EpisodeDate::Start => Some(*began),
                        EpisodeDate::EndedOn => *ended_on,
                        EpisodeDate::CompletionReportedOn => *completion_reported_on,
                        EpisodeDate::FileOpenedOn => *file_opened_on,
                        EpisodeDate::DecisionDate => *decision_date,
                    };
                    let reached = !matches!(status, EpisodeStatus::Draft | EpisodeStatus::Proposed);
                    let in_force_on =
                        |d: NaiveDate| reached && *began <= d && ended_on.is_none_or(|e| e > d);
                    listed(&f.kind, kind.code())
                        && listed(&f.status, status_code)
                        && f.reason
                            .as_ref()
                            .is_none_or(|l| reason.is_some_and(|r| l.iter().any(|c| c == r.code())))
                        && f.after
                            .as_ref()
                            .is_none_or(|l| after.is_some_and(|a| l.iter().any(|c| c == a.code())))
                        && f.date.is_none_or(|d| date_of(d).is_some_and(in_period))
                        && f.has_date
                            .as_ref()
                            .is_none_or(|l| l.iter().all(|d| date_of(*d).is_some()))
                        && (f.active_at_end != Some(true) || in_force_on(end))
                        && (f.active_during != Some(true)
                            || (reached && *began <= end && ended_on.is_none_or(|e| e >= start)))
                }
                (Source::Visit, Fact::Visit { day, services, .. }) => {
                    in_period(*day)
                        && f.services_any.as_ref().is_none_or(|l| {
                            services.iter().any(|s| l.iter().any(|c| c == s.code()))
                        })
                }
                (
                    Source::DrugTest,
                    Fact::DrugTest {
                        day, kind, result, ..
                    },
                ) => {
                    in_period(*day)
                        && listed(&f.kind, kind.code())
                        && listed(&f.result, result.code())
                }
                (Source::Benefit, Fact::Benefit { day, kind, .. }) => {
                    in_period(*day) && listed(&f.kind, kind.code())
                }
                (
                    Source::Referral,
                    Fact::Referral {
                        day, to, status, ..
                    },
                ) => {
                    in_period(*day)
                        && listed(&f.kind, to.code())
                        && listed(&f.status, status.code())
                }
                (Source::Relapse, Fact::Relapse { day, outcome, .. }) => {
                    in_period(*day)
                        && f.outcome.as_ref().is_none_or(|l| {
                            outcome.is_some_and(|o| l.iter().any(|c| c == o.code()))
                        })
                }
                (Source::Attendance, Fact::Attendance { day, .. }) => in_period(*day),
                (Source::Staff, Fact::Staff { trained_on, .. }) => f
                    .trained
                    .is_none_or(|want| trained_on.is_some_and(|d| d <= end) == want),
                (
                    Source::Session,
                    Fact::Session {
                        day, kind, status, ..
                    },
                ) => {
                    in_period(*day)
                        && listed(&f.kind, kind.code())
                        && listed(&f.status, status.code())
                }
                (Source::Deadline, Fact::Deadline { check, .. }) => {
                    let mut as_of_end = *check;
                    as_of_end.done_on = check.done_on.filter(|d| *d <= end);
                    let status: DeadlineStatus = as_of_end.status(end);
                    in_period(check.due)
                        && listed(&f.kind, check.kind.code())
                        && listed(&f.deadline, status.code())
                }
                _ => false,
            };
            let allowed = restrict.as_ref().is_none_or(|people| {
                let p = set.person[i];
                p != NONE && people[p as usize]
            });
            if hit && allowed {
                out.push(i);
            }
        }
        Ok(out)
    }

    /// The people an indicator's facts are about, by dense person index.
    fn people_of(&mut self, code: &str) -> Result<Rc<Vec<bool>>, ReportError> {
        if let Some(people) = self.people.get(code) {
            return Ok(Rc::clone(people));
        }
        let ind = self
            .defs
            .indicator(code)
            .ok_or_else(|| ReportError::UnknownIndicator(code.to_owned()))?;
        let matching = self.matching(ind)?;
        let mut people = vec![false; self.set.person_sex.len()];
        for &i in &matching {
            let p = self.set.person[i];
            if p != NONE {
                people[p as usize] = true;
            }
        }
        let people = Rc::new(people);
        self.people.insert(code.to_owned(), Rc::clone(&people));
        Ok(people)
    }
}

/// Adds up one measure.
enum Tally {
    Records(i64),
    Amount(i64),
    Attendances(i64),
    /// Dense person indexes, with repeats (deduplicated when read).
    People(Vec<u32>),
}

impl Tally {
    fn new(measure: Measure) -> Self {
        match measure {
            Measure::Records => Tally::Records(0),
            Measure::People => Tally::People(Vec::new()),
            Measure::AmountVnd => Tally::Amount(0),
            Measure::Attendance => Tally::Attendances(0),
        }
    }

    fn add(&mut self, set: &FactSet, i: usize) {
        match self {
            Tally::Records(n) => *n += 1,
            Tally::People(people) => {
                let p = set.person[i];
                if p != NONE {
                    people.push(p);
                }
            }
            Tally::Amount(sum) => {
                if let Fact::Benefit { amount_vnd, .. } = &set.facts[i] {
                    *sum = sum.saturating_add(*amount_vnd);
                }
            }
            Tally::Attendances(sum) => {
                if let Fact::Attendance { count, .. } = &set.facts[i] {
                    *sum = sum.saturating_add(i64::from(*count));
                }
            }
        }
    }

    fn value(self) -> i64 {
        match self {
            Tally::Records(n) | Tally::Amount(n) | Tally::Attendances(n) => n,
            Tally::People(mut p) => {
                p.sort_unstable();
                p.dedup();
                i64::try_from(p.len()).unwrap_or(i64::MAX)
            }
        }
    }
}
