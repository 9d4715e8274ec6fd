//! The commune's record books (DOMAIN.md, "What gets counted"):
//!
//! - **Sổ 04-SCN**, people under post-rehab management: one line per post-rehab file from the
//!   chairman's decision on (status active, completed or ended early), with the decision, the
//!   term and its planned end (moved by unreported absences), who was assigned to help, and how
//!   it ended.
//! - **Sổ 05-SCN**, people who completed rehab (the source of relapse counts): one line per
//!   completion the commune knows — a voluntary rehab at home or in the community, or a
//!   methadone course, completed here; or a post-rehab file whose rehab was elsewhere (a facility,
//!   compulsory rehab) — with the date, the post-rehab file that followed, and any relapse
//!   determined after it.
//!
//! Unlike reports, books name people: only a commune supervisor's device builds them, from what
//! it holds, and every person listed gets an access-log entry (action `export`, with the purpose
//! the supervisor typed) that syncs to the server (`Device::book`). This module is the pure part:
//! which lines, in which order, and the files.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};

use crate::domain::{
    AbsenceReport, Assignment, Episode, EpisodeKind, EpisodeStatus, Id, LegalParams, Person,
    PriorRehab, RelapseEvent, Sex, TerminationReason,
};

use super::ReportError;
use super::export::{Labels, kind_label};

/// Which book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookKind {
    /// Sổ 04-SCN: people under post-rehab management.
    #[serde(rename = "04-SCN")]
    Scn04,
    /// Sổ 05-SCN: people who completed rehab.
    #[serde(rename = "05-SCN")]
    Scn05,
}

impl BookKind {
    /// `04-SCN` or `05-SCN`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            BookKind::Scn04 => "04-SCN",
            BookKind::Scn05 => "05-SCN",
        }
    }

    /// The book named `text` (`04-SCN`, `04`, `05-scn` …).
    ///
    /// # Errors
    /// [`ReportError::UnknownBook`].
    pub fn parse(text: &str) -> Result<Self, ReportError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "04-SCN" | "04" | "SCN04" => Ok(BookKind::Scn04),
            "05-SCN" | "05" | "SCN05" => Ok(BookKind::Scn05),
            _ => Err(ReportError::UnknownBook(text.to_owned())),
        }
    }

    /// The title, in Vietnamese.
    #[must_use]
    pub fn title_vi(self) -> &'static str {
        match self {
            BookKind::Scn04 => "SỔ THEO DÕI NGƯỜI ĐANG QUẢN LÝ SAU CAI NGHIỆN MA TÚY",
            BookKind::Scn05 => "SỔ THEO DÕI NGƯỜI ĐÃ HOÀN THÀNH CAI NGHIỆN MA TÚY",
        }
    }

    /// The title, in English.
    #[must_use]
    pub fn title_en(self) -> &'static str {
        match self {
            BookKind::Scn04 => "Record book of people under post-rehab management",
            BookKind::Scn05 => "Record book of people who completed rehab",
        }
    }
}

/// One line of a book. Holds names: never logged, never written anywhere but the file the
/// supervisor asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct BookLine {
    /// The person.
    pub person: Id,
    /// The episode the line is about.
    pub episode: Id,
    /// Full name.
    pub name: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Sex.
    pub sex: Sex,
    /// Personal identification number (CCCD).
    pub id_number: Option<String>,
    /// Residence.
    pub address: Option<String>,
    /// Sổ 04: the kind of management; Sổ 05: the rehab completed.
    pub modality: String,
    /// The decision's reference and date (Form 51).
    pub decision: Option<String>,
    /// Sổ 04: start of management; Sổ 05: the day the rehab was completed (or reported).
    pub from: Option<NaiveDate>,
    /// Sổ 04: planned end; Sổ 05: start of the post-rehab management that followed.
    pub until: Option<NaiveDate>,
    /// Sổ 04: who helps (users' names or the organisation); Sổ 05: the post-rehab decision.
    pub helpers: String,
    /// How it ended (Sổ 04) or the relapse determined after it (Sổ 05), in Vietnamese.
    pub outcome: String,
}

impl std::fmt::Debug for BookLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BookLine")
            .field("person", &self.person)
            .field("episode", &self.episode)
            .finish_non_exhaustive()
    }
}

/// What a book is built from: the records a supervisor's device holds.
#[derive(Clone, Debug, Default)]
pub struct BookSource<'a> {
    /// People.
    pub persons: &'a [Person],
    /// Their episodes.
    pub episodes: &'a [Episode],
    /// Assignments of helpers.
    pub assignments: &'a [Assignment],
    /// Absence reports (for the planned end).
    pub absences: &'a [AbsenceReport],
    /// Relapse determinations.
    pub relapses: &'a [RelapseEvent],
    /// Users' names by id (the helpers).
    pub users: HashMap<Id, String>,
}

/// The lines of `book` as of `as_of` (records dated after it are left out), in order of the
/// day they begin, then by name.
#[must_use]
pub fn lines(book: BookKind, src: &BookSource<'_>, as_of: NaiveDate) -> Vec<BookLine> {
    let persons: HashMap<Id, &Person> = src.persons.iter().map(|p| (p.id, p)).collect();
    let mut out = match book {
        BookKind::Scn04 => scn04(src, &persons, as_of),
        BookKind::Scn05 => scn05(src, &persons, as_of),
    };
    out.sort_by(|a, b| {
        (a.from, &a.name, a.episode.to_string()).cmp(&(b.from, &b.name, b.episode.to_string()))
    });
    out
}

fn under_management(e: &Episode) -> bool {
    matches!(
        e.status,
        EpisodeStatus::Active | EpisodeStatus::Completed | EpisodeStatus::Terminated(_)
    )
}

fn scn04(src: &BookSource<'_>, persons: &HashMap<Id, &Person>, as_of: NaiveDate) -> Vec<BookLine> {
    let params = LegalParams::embedded();
    src.episodes
        .iter()
        .filter(|e| e.kind == EpisodeKind::PostRehab && under_management(e) && e.start <= as_of)
        .filter_map(|e| {
            let p = persons.get(&e.person)?;
            let absences: Vec<AbsenceReport> = src
                .absences
                .iter()
                .filter(|a| a.episode == e.id)
                .cloned()
                .collect();
            let mut helpers: Vec<String> = src
                .assignments
                .iter()
                .filter(|a| a.episode == e.id && a.from <= as_of)
                .filter(|a| a.to.is_none_or(|to| to >= as_of))
                .filter_map(|a| {
                    a.helper
                        .and_then(|h| src.users.get(&h).cloned())
                        .or_else(|| a.organisation.clone())
                })
                .collect();
            helpers.sort();
            helpers.dedup();
            Some(BookLine {
                person: p.id,
                episode: e.id,
                name: p.full_name.clone(),
                birth_date: p.birth_date,
                sex: p.sex,
                id_number: p.id_number.clone(),
                address: p.address.clone(),
                modality: after_label(e.after).to_owned(),
                decision: decision(e),
                from: Some(e.start),
                until: e.planned_end(params, &absences).ok(),
                helpers: helpers.join("; "),
                outcome: ended(e, as_of),
            })
        })
        .collect()
}

fn scn05(src: &BookSource<'_>, persons: &HashMap<Id, &Person>, as_of: NaiveDate) -> Vec<BookLine> {
    let post_rehab: Vec<&Episode> = src
        .episodes
        .iter()
        .filter(|e| e.kind == EpisodeKind::PostRehab && e.start <= as_of)
        .collect();
    // The first post-rehab file of a person that began on or after a day.
    let file_after = |person: Id, on: NaiveDate| {
        post_rehab
            .iter()
            .filter(|pr| pr.person == person && pr.start >= on)
            .min_by_key(|pr| pr.start)
            .copied()
    };
    let line = |p: &Person, e: &Episode, modality: &str, on: NaiveDate, next: Option<&Episode>| {
        let relapse = src
            .relapses
            .iter()
            .filter(|r| r.person == p.id && r.determined_on <= as_of && r.determined_on >= on)
            .min_by_key(|r| r.determined_on);
        BookLine {
            person: p.id,
            episode: e.id,
            name: p.full_name.clone(),
            birth_date: p.birth_date,
            sex: p.sex,
            id_number: p.id_number.clone(),
            address: p.address.clone(),
            modality: modality.to_owned(),
            decision: next.and_then(decision),
            from: Some(on),
            until: next.filter(|n| under_management(n)).map(|n| n.start),
            helpers: String::new(),
            outcome: relapse.map_or_else(String::new, |r| {
                format!(
                    "Tái nghiện, xác định ngày {} ({})",
                    r.determined_on.format("%d/%m/%Y"),
                    r.determined_by
                )
            }),
        }
    };
    let mut followed: Vec<Id> = Vec::new();
    let mut out = Vec::new();
    // Rehab completed here.
    for e in src.episodes {
        let rehab = matches!(
            e.kind,
            EpisodeKind::VoluntaryHomeRehab
                | EpisodeKind::VoluntaryCommunityRehab
                | EpisodeKind::Ost
        );
        let Some(on) = e.ended_on.filter(|d| *d <= as_of) else {
            continue;
        };
        if !rehab || e.status != EpisodeStatus::Completed {
            continue;
        }
        let Some(p) = persons.get(&e.person) else {
            continue;
        };
        let next = file_after(p.id, on);
        followed.extend(next.map(|n| n.id));
        out.push(line(p, e, kind_label(e.kind.code()), on, next));
    }
    // Rehab elsewhere (a facility, compulsory rehab), known from the post-rehab file it led to.
    for e in &post_rehab {
        if followed.contains(&e.id) {
            continue;
        }
        let Some(p) = persons.get(&e.person) else {
            continue;
        };
        let on = e.completion_reported_on.unwrap_or(e.start);
        out.push(line(p, e, after_label(e.after), on, Some(e)));
    }
    out
}

fn decision(e: &Episode) -> Option<String> {
    match (&e.forms.decision, e.decision_date) {
        (Some(r), Some(d)) => Some(format!("{r} ngày {}", d.format("%d/%m/%Y"))),
        (Some(r), None) => Some(r.clone()),
        (None, Some(d)) => Some(format!("ngày {}", d.format("%d/%m/%Y"))),
        (None, None) => None,
    }
}

fn after_label(after: Option<PriorRehab>) -> &'static str {
    match after {
        Some(PriorRehab::Voluntary) => "Sau cai nghiện tự nguyện / after voluntary rehab",
        Some(PriorRehab::OstCompleted) => "Sau điều trị thay thế / after completing OST",
        Some(PriorRehab::CompulsoryAdult) => "Sau cai nghiện bắt buộc / after compulsory rehab",
        Some(PriorRehab::CompulsoryMinor) => {
            "Sau cai nghiện bắt buộc (12–18 tuổi) / after compulsory rehab (minor)"
        }
        None => "Không rõ / unknown",
    }
}

fn ended(e: &Episode, as_of: NaiveDate) -> String {
    let Some(on) = e.ended_on.filter(|d| *d <= as_of) else {
        return "Đang quản lý / under management".to_owned();
    };
    let day = on.format("%d/%m/%Y");
    match e.status {
        EpisodeStatus::Completed => format!("Hết thời hạn quản lý ngày {day} / term served"),
        EpisodeStatus::Terminated(reason) => {
            let why = match reason {
                TerminationReason::Prison => "đi tù / prison",
                TerminationReason::Moved => "chuyển nơi cư trú / moved",
                TerminationReason::Death => "chết / death",
                TerminationReason::Missing => "mất tích / missing",
                TerminationReason::Relapse => "tái nghiện / relapse",
                TerminationReason::Other => "lý do khác / other",
            };
            format!("Chấm dứt ngày {day}: {why}")
        }
        _ => "Đang quản lý / under management".to_owned(),
    }
}

/// The columns of a book's sheet, in order.
#[must_use]
pub fn columns(book: BookKind) -> [&'static str; 12] {
    match book {
        BookKind::Scn04 => [
            "STT",
            "Họ và tên",
            "Ngày sinh",
            "Giới tính",
            "Số định danh cá nhân",
            "Nơi cư trú",
            "Quản lý sau",
            "Quyết định quản lý",
            "Từ ngày",
            "Đến ngày (dự kiến)",
            "Người, tổ chức được giao giúp đỡ",
            "Kết thúc",
        ],
        BookKind::Scn05 => [
            "STT",
            "Họ và tên",
            "Ngày sinh",
            "Giới tính",
            "Số định danh cá nhân",
            "Nơi cư trú",
            "Hình thức cai nghiện đã hoàn thành",
            "Quyết định quản lý sau cai",
            "Ngày hoàn thành",
            "Quản lý sau cai từ ngày",
            "Ghi chú",
            "Tái nghiện",
        ],
    }
}

/// The 0-based row of a book sheet's column headings.
pub const BOOK_HEADER_ROW: u32 = 5;

fn cells(book: BookKind, no: usize, l: &BookLine) -> [String; 12] {
    let day =
        |d: Option<NaiveDate>| d.map_or_else(String::new, |d| d.format("%d/%m/%Y").to_string());
    let sex = match l.sex {
        Sex::Female => "Nữ",
        Sex::Male => "Nam",
    };
    let (helpers, outcome) = match book {
        BookKind::Scn04 => (l.helpers.clone(), l.outcome.clone()),
        BookKind::Scn05 => (String::new(), l.outcome.clone()),
    };
    [
        no.to_string(),
        l.name.clone(),
        l.birth_date.format("%d/%m/%Y").to_string(),
        sex.to_owned(),
        l.id_number.clone().unwrap_or_default(),
        l.address.clone().unwrap_or_default(),
        l.modality.clone(),
        l.decision.clone().unwrap_or_default(),
        day(l.from),
        day(l.until),
        helpers,
        outcome,
    ]
}

/// The book as CSV (UTF-8 with a byte-order mark; the columns of [`columns`]).
///
/// # Errors
/// [`ReportError::Export`].
pub fn to_csv(book: BookKind, lines: &[BookLine]) -> Result<Vec<u8>, ReportError> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let fail = |_| ReportError::Export("csv");
        w.write_record(columns(book)).map_err(fail)?;
        for (i, l) in lines.iter().enumerate() {
            w.write_record(cells(book, i + 1, l)).map_err(fail)?;
        }
        w.flush().map_err(|_| ReportError::Export("csv"))?;
    }
    Ok(out)
}

/// The book as an XLSX sheet laid out as the paper book (landscape A4, headings repeated on
/// every printed page), as of `as_of`.
///
/// # Errors
/// [`ReportError::Export`].
pub fn to_xlsx(
    book: BookKind,
    lines: &[BookLine],
    labels: &Labels,
    as_of: NaiveDate,
) -> Result<Vec<u8>, ReportError> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(format!("Sổ {}", book.code()))
        .map_err(|_| ReportError::Export("xlsx"))?;
    book_sheet(ws, book, lines, labels, as_of).map_err(|_| ReportError::Export("xlsx"))?;
    wb.save_to_buffer().map_err(|_| ReportError::Export("xlsx"))
}

fn book_sheet(
    ws: &mut Worksheet,
    book: BookKind,
    lines: &[BookLine],
    labels: &Labels,
    as_of: NaiveDate,
) -> Result<(), XlsxError> {
    let base = Format::new()
        .set_font_name("Times New Roman")
        .set_font_size(11);
    let bold_center = base.clone().set_bold().set_align(FormatAlign::Center);
    let italic_center = base.clone().set_italic().set_align(FormatAlign::Center);
    let cell = base
        .clone()
        .set_border(FormatBorder::Thin)
        .set_text_wrap()
        .set_align(FormatAlign::VerticalCenter);
    let header = cell
        .clone()
        .set_bold()
        .set_align(FormatAlign::Center)
        .set_background_color(0x00E7_EEF7);
    ws.set_paper_size(9);
    ws.set_landscape();
    ws.set_print_fit_to_pages(1, 0);
    for (col, width) in [
        5.0, 24.0, 11.0, 7.0, 15.0, 26.0, 24.0, 18.0, 11.0, 11.0, 22.0, 24.0,
    ]
    .into_iter()
    .enumerate()
    {
        #[allow(clippy::cast_possible_truncation)]
        ws.set_column_width(col as u16, width)?;
    }
    ws.merge_range(0, 0, 0, 4, &labels.parent_name.to_uppercase(), &bold_center)?;
    ws.merge_range(1, 0, 1, 4, &labels.org_name.to_uppercase(), &bold_center)?;
    ws.merge_range(
        0,
        7,
        0,
        11,
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        &bold_center,
    )?;
    ws.merge_range(1, 7, 1, 11, "Độc lập - Tự do - Hạnh phúc", &bold_center)?;
    ws.merge_range(2, 7, 2, 11, &format!("Sổ {}", book.code()), &italic_center)?;
    ws.merge_range(
        3,
        0,
        3,
        11,
        book.title_vi(),
        &bold_center.clone().set_font_size(14),
    )?;
    ws.merge_range(
        4,
        0,
        4,
        11,
        &format!(
            "{} — đến ngày / as of {} — TÀI LIỆU MẬT: chỉ cung cấp cho người có thẩm quyền (Nghị định 116/2021, Điều 4)",
            book.title_en(),
            as_of.format("%d/%m/%Y")
        ),
        &italic_center,
    )?;
    ws.set_row_height(BOOK_HEADER_ROW, 45)?;
    for (col, h) in columns(book).iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        ws.write_string_with_format(BOOK_HEADER_ROW, col as u16, *h, &header)?;
    }
    ws.set_repeat_rows(BOOK_HEADER_ROW, BOOK_HEADER_ROW)?;
    for (i, l) in lines.iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        let row = BOOK_HEADER_ROW + 1 + i as u32;
        for (col, text) in cells(book, i + 1, l).iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            ws.write_string_with_format(row, col as u16, text, &cell)?;
        }
    }
    Ok(())
}
