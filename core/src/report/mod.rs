//! Reports: the commune's month, the province's half-year and year, computed from the records
//! (DOMAIN.md, "What gets counted").
//!
//! - [`definitions`]: indicators and templates as data (`core/data/reports.json`), checked when
//!   loaded, versioned;
//! - [`facts`]: the projection of a record onto what indicators count (no identity, no text);
//! - [`engine`]: one engine for the server (any org subtree) and a supervisor's device (its own
//!   commune, offline): the same definitions and the same code give the same numbers.
//!
//! Plain Rust without storage or I/O, built without the device store too (the server links it).

pub mod books;
pub mod definitions;
pub mod engine;
pub mod export;
pub mod facts;
pub mod plan;
pub mod worked;

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

pub use definitions::{Definitions, Indicator, Measure, Source, Template};
pub use engine::{Breakdown, Closed, FactSet, LateNote, Report, ReportRow, ReportSection, Value};
pub use facts::Fact;
pub use plan::{Goal, Plan, PlanProgress, Target, TargetProgress, TargetStatus};

/// What went wrong computing a report. Messages name codes and periods, never data; `Display`
/// is English, [`ReportError::message_vi`] Vietnamese.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The definitions file is wrong.
    #[error("invalid report definitions: {0}")]
    Definitions(String),
    /// No template has this code.
    #[error("no report template {}", shown(.0))]
    UnknownTemplate(String),
    /// No indicator has this code.
    #[error("no indicator {}", shown(.0))]
    UnknownIndicator(String),
    /// The period is not written as the template needs.
    #[error("invalid period {}: write YYYY-MM, YYYY-Qn, YYYY-H1/H2 or YYYY", shown(.0))]
    InvalidPeriod(String),
    /// Only a commune supervisor's device computes the commune's report.
    #[error("only a commune supervisor's device computes the commune report")]
    NotSupervisor,
    /// A period still running cannot be closed.
    #[error("period {0} is not over yet: it cannot be closed")]
    PeriodNotOver(String),
    /// The template is for another kind of period.
    #[error("template {template} is for a {expected} period, not a {given}")]
    WrongPeriodKind {
        /// The template.
        template: String,
        /// What it needs.
        expected: PeriodKind,
        /// What was given.
        given: PeriodKind,
    },
    /// No record book has this name.
    #[error("no record book {}: write 04-SCN or 05-SCN", shown(.0))]
    UnknownBook(String),
    /// An export file could not be written (`csv`, `xlsx`).
    #[error("could not write the {0} file")]
    Export(&'static str),
}

/// A code typed by a user, as an error may repeat it: only when it looks like one (upper-case
/// letters, digits, `-`, `_`, at least one letter; at most 20 characters), so that a name or a
/// phone number typed into the wrong field never reaches a message or a log. A period is shown
/// only when it has a period's shape (`2026-13`).
fn shown(text: &str) -> String {
    let looks_like_code = !text.is_empty()
        && text.chars().count() <= 20
        && text.chars().any(|c| c.is_ascii_uppercase())
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
    let bytes = text.as_bytes();
    let looks_like_period = text.len() <= 8
        && bytes.len() >= 4
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && (bytes.len() == 4
            || (bytes[4] == b'-'
                && bytes.len() > 5
                && bytes[5..].iter().all(u8::is_ascii_alphanumeric)));
    if looks_like_code || looks_like_period {
        text.to_owned()
    } else {
        "(không hiển thị / not shown)".to_owned()
    }
}

impl ReportError {
    /// The message in Vietnamese.
    #[must_use]
    pub fn message_vi(&self) -> String {
        match self {
            ReportError::Definitions(what) => format!("định nghĩa chỉ tiêu không hợp lệ: {what}"),
            ReportError::UnknownTemplate(t) => format!("không có mẫu báo cáo {}", shown(t)),
            ReportError::UnknownIndicator(c) => format!("không có chỉ tiêu {}", shown(c)),
            ReportError::InvalidPeriod(p) => format!(
                "kỳ báo cáo {} không hợp lệ: viết YYYY-MM (tháng), YYYY-Qn (quý), YYYY-H1/H2 (6 tháng) hoặc YYYY (năm)",
                shown(p)
            ),
            ReportError::PeriodNotOver(p) => format!("kỳ {p} chưa kết thúc, chưa chốt được"),
            ReportError::Export(what) => format!("không ghi được tệp {what}"),
            ReportError::UnknownBook(b) => {
                format!("không có sổ {}: viết 04-SCN hoặc 05-SCN", shown(b))
            }
            ReportError::NotSupervisor => {
                "chỉ máy của giám sát viên xã mới lập được báo cáo của xã".to_owned()
            }
            ReportError::WrongPeriodKind {
                template,
                expected,
                given,
            } => format!(
                "mẫu {template} dùng kỳ {}, không phải kỳ {}",
                expected.label_vi(),
                given.label_vi()
            ),
        }
    }
}

/// How long a reporting period is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// A calendar month (`2026-10`).
    Month,
    /// A quarter (`2026-Q4`).
    Quarter,
    /// A half-year (`2026-H2`).
    HalfYear,
    /// A calendar year (`2026`).
    Year,
}

impl PeriodKind {
    /// The kind in Vietnamese.
    #[must_use]
    pub fn label_vi(self) -> &'static str {
        match self {
            PeriodKind::Month => "tháng",
            PeriodKind::Quarter => "quý",
            PeriodKind::HalfYear => "6 tháng",
            PeriodKind::Year => "năm",
        }
    }

    /// The template a period of this kind reports on by default: the commune's monthly
    /// `01-BCN`, the province's `PROVINCE-H` and `PROVINCE-Y`; none for a quarter.
    #[must_use]
    pub fn default_template(self) -> Option<&'static str> {
        match self {
            PeriodKind::Month => Some("01-BCN"),
            PeriodKind::HalfYear => Some("PROVINCE-H"),
            PeriodKind::Year => Some("PROVINCE-Y"),
            PeriodKind::Quarter => None,
        }
    }
}

impl fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::HalfYear => "half_year",
            PeriodKind::Year => "year",
        })
    }
}

/// A reporting period: whole calendar months, first and last day included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    kind: PeriodKind,
    year: i32,
    /// Month 1–12, quarter 1–4, half 1–2, or 1 for a year.
    index: u32,
}

impl Period {
    /// The period written `text`: `2026-10`, `2026-Q4`, `2026-H2` or `2026`.
    ///
    /// # Errors
    /// `InvalidPeriod`.
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        let invalid = || ReportError::InvalidPeriod(text.chars().take(20).collect());
        let t = text.trim();
        let (year, rest) = match t.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (t, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        if !(2000..=2200).contains(&year) {
            return Err(invalid());
        }
        let number = |s: &str, max: u32| -> Result<u32, ReportError> {
            if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let n: u32 = s.parse().map_err(|_| invalid())?;
            if (1..=max).contains(&n) {
                Ok(n)
            } else {
                Err(invalid())
            }
        };
        let (kind, index) = match rest {
            None => (PeriodKind::Year, 1),
            Some(r) => {
                if let Some(q) = r.strip_prefix(['Q', 'q']) {
                    (PeriodKind::Quarter, number(q, 4)?)
                } else if let Some(h) = r.strip_prefix(['H', 'h']) {
                    (PeriodKind::HalfYear, number(h, 2)?)
                } else if r.len() == 2 {
                    (PeriodKind::Month, number(r, 12)?)
                } else {
                    return Err(invalid());
                }
            }
        };
        Ok(Self { kind, year, index })
    }

    /// The month `month` (1–12) of `year`.
    ///
    /// # Errors
    /// `InvalidPeriod` for a month out of range.
    pub fn month(year: i32, month: u32) -> Result<Self, ReportError> {
        Self::parse(&format!("{year:04}-{month:02}"))
    }

    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> PeriodKind {
        self.kind
    }

    fn months(&self) -> (u32, u32) {
        match self.kind {
            PeriodKind::Month => (self.index, self.index),
            PeriodKind::Quarter => (self.index * 3 - 2, self.index * 3),
            PeriodKind::HalfYear => (self.index * 6 - 5, self.index * 6),
            PeriodKind::Year => (1, 12),
        }
    }

    /// The first day.
    #[must_use]
    pub fn start(&self) -> NaiveDate {
        let (first, _) = self.months();
        NaiveDate::from_ymd_opt(self.year, first, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The last day.
    #[must_use]
    pub fn end(&self) -> NaiveDate {
        let (_, last) = self.months();
        let next = if last == 12 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year, last + 1, 1)
        };
        next.and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MAX)
    }

    /// Whether `day` is in the period.
    #[must_use]
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start() <= day && day <= self.end()
    }

    /// The period of the same kind that follows.
    #[must_use]
    pub fn next(&self) -> Self {
        let count = match self.kind {
            PeriodKind::Month => 12,
            PeriodKind::Quarter => 4,
            PeriodKind::HalfYear => 2,
            PeriodKind::Year => 1,
        };
        if self.index == count {
            Self {
                kind: self.kind,
                year: self.year + 1,
                index: 1,
            }
        } else {
            Self {
                kind: self.kind,
                year: self.year,
                index: self.index + 1,
            }
        }
    }

    /// The period of the same kind before this one.
    #[must_use]
    pub fn prev(&self) -> Self {
        if self.index == 1 {
            let last = match self.kind {
                PeriodKind::Month => 12,
                PeriodKind::Quarter => 4,
                PeriodKind::HalfYear => 2,
                PeriodKind::Year => 1,
            };
            Self {
                kind: self.kind,
                year: self.year - 1,
                index: last,
            }
        } else {
            Self {
                kind: self.kind,
                year: self.year,
                index: self.index - 1,
            }
        }
    }

    /// The year the period is in.
    #[must_use]
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The period containing `day` of this kind.
    #[must_use]
    pub fn containing(kind: PeriodKind, day: NaiveDate) -> Self {
        let m = day.month();
        let index = match kind {
            PeriodKind::Month => m,
            PeriodKind::Quarter => m.div_ceil(3),
            PeriodKind::HalfYear => m.div_ceil(6),
            PeriodKind::Year => 1,
        };
        Self {
            kind,
            year: day.year(),
            index,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Month => write!(f, "{:04}-{:02}", self.year, self.index),
            PeriodKind::Quarter => write!(f, "{:04}-Q{}", self.year, self.index),
            PeriodKind::HalfYear => write!(f, "{:04}-H{}", self.year, self.index),
            PeriodKind::Year => write!(f, "{:04}", self.year),
        }
    }
}

impl TryFrom<String> for Period {
    type Error = ReportError;
    fn try_from(s: String) -> Result<Self, ReportError> {
        Period::parse(&s)
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests;
