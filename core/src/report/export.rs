//! Reports out of the software: CSV for other programs, XLSX laid out as the paper form.
//!
//! - [`to_csv`]: one row per indicator (the totals) followed by its breakdown rows, UTF-8 with
//!   a byte-order mark (so that Excel reads the Vietnamese correctly), comma-separated, `.` as
//!   the decimal point; one table a pivot table or a script can take as it is.
//! - [`to_xlsx`]: a workbook whose first sheet is the form as the commune or province files it
//!   (national motto, reporting unit, form code, title, period, the numbered rows with units and
//!   figures, the signature block), then the breakdown, the plans' progress and the late notes.
//!   Numbers are stored as numbers with a display format, so the sheet adds up.
//!
//! Both carry only what the report carries: counts, amounts, percentages, codes and the names of
//! org units. No person's name or note is in a report, so none is in an export.
//!
//! The layout constants ([`FORM_HEADER_ROW`], [`FORM_COLUMNS`]) are the contract a reader of
//! the sheet (or a test) relies on.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use super::definitions::{Definitions, Measure, Source};
use super::engine::{Report, ReportRow, Value};
use super::plan::TargetStatus;
use super::{Goal, Period, PeriodKind, ReportError};

/// Names to print instead of ids and codes: the reporting unit and the org units a breakdown
/// refers to (by id as it appears in the report).
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// The reporting unit's name ("Xã Minh Phú").
    pub org_name: String,
    /// The unit above it, printed over it ("Tỉnh Hà Nội"; empty for none).
    pub parent_name: String,
    /// Org-unit names by id (the `commune` breakdown's buckets).
    pub units: HashMap<String, String>,
}

/// The 0-based row of the form sheet's column headings.
pub const FORM_HEADER_ROW: u32 = 9;
/// The form sheet's columns, in order (0-based column = index).
pub const FORM_COLUMNS: [&str; 8] = [
    "STT\nNo.",
    "Chỉ tiêu",
    "Indicator",
    "Mã\nCode",
    "Đơn vị tính\nUnit",
    "Số liệu\nValue",
    "Tử số\nNumerator",
    "Mẫu số\nDenominator",
];
/// Column of the indicator code on the form sheet.
pub const COL_CODE: u16 = 3;
/// Column of the figure on the form sheet.
pub const COL_VALUE: u16 = 5;
/// Name of the breakdown sheet.
pub const BREAKDOWN_SHEET: &str = "Phân tổ - Breakdown";
/// Name of the plans sheet.
pub const PLANS_SHEET: &str = "Kế hoạch - Plans";

/// The CSV's header row.
pub const CSV_HEADER: [&str; 13] = [
    "template",
    "period",
    "no",
    "code",
    "label_vi",
    "label_en",
    "unit",
    "dimension",
    "bucket",
    "bucket_label",
    "value",
    "numerator",
    "denominator",
];

/// The report as CSV (see the module documentation).
///
/// # Errors
/// [`ReportError::Export`] if the writer fails (it writes to memory, so in practice never).
pub fn to_csv(report: &Report, labels: &Labels) -> Result<Vec<u8>, ReportError> {
    let defs = Definitions::embedded().ok();
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::Writer::from_writer(&mut out);
        let fail = |_| ReportError::Export("csv");
        w.write_record(CSV_HEADER).map_err(fail)?;
        let period = report.period.to_string();
        for row in report.rows() {
            let unit = unit(defs.as_ref(), row).1;
            let (value, num, den) = csv_value(&row.value);
            w.write_record([
                report.template.as_str(),
                &period,
                &row.no,
                &row.code,
                &row.label_vi,
                &row.label_en,
                unit,
                "",
                "",
                "",
                &value,
                &num,
                &den,
            ])
            .map_err(fail)?;
            for (dim, buckets) in &row.breakdown {
                for (bucket, n) in buckets {
                    w.write_record([
                        report.template.as_str(),
                        &period,
                        &row.no,
                        &row.code,
                        &row.label_vi,
                        &row.label_en,
                        unit,
                        dim,
                        bucket,
                        &bucket_label(dim, bucket, labels, defs.as_ref()),
                        &n.to_string(),
                        "",
                        "",
                    ])
                    .map_err(fail)?;
                }
            }
        }
        w.flush().map_err(|_| ReportError::Export("csv"))?;
    }
    Ok(out)
}

fn csv_value(v: &Value) -> (String, String, String) {
    match v {
        Value::Count { value } | Value::AmountVnd { value } => {
            (value.to_string(), String::new(), String::new())
        }
        Value::Percent {
            numerator,
            denominator,
            percent,
        } => (
            percent.map_or_else(String::new, |p| format!("{p:.1}")),
            numerator.to_string(),
            denominator.to_string(),
        ),
    }
}

/// The unit of a row: (Vietnamese, English).
fn unit(defs: Option<&Definitions>, row: &ReportRow) -> (&'static str, &'static str) {
    if matches!(row.value, Value::Percent { .. }) {
        return ("%", "%");
    }
    if matches!(row.value, Value::AmountVnd { .. }) {
        return ("đồng", "VND");
    }
    let ind = defs.and_then(|d| d.indicator(&row.code));
    match (ind.and_then(|i| i.measure), ind.and_then(|i| i.source)) {
        (Some(Measure::People), _) | (_, Some(Source::Staff)) => ("người", "people"),
        (Some(Measure::Attendance), _) => ("lượt người", "attendances"),
        (_, Some(Source::Session)) => ("buổi", "sessions"),
        (_, Some(Source::Episode | Source::Deadline)) => ("hồ sơ", "files"),
        (_, Some(Source::Relapse)) => ("trường hợp", "cases"),
        _ => ("lượt", "times"),
    }
}

fn dimension_label(dim: &str) -> &str {
    match dim {
        "commune" => "Xã / Commune",
        "sex" => "Giới tính / Sex",
        "age_band" => "Nhóm tuổi / Age band",
        "episode_kind" => "Loại hồ sơ / Kind of file",
        other => other,
    }
}

fn bucket_label(dim: &str, bucket: &str, labels: &Labels, defs: Option<&Definitions>) -> String {
    if bucket == "unknown" {
        return "Không rõ / Unknown".to_owned();
    }
    match dim {
        "commune" => labels.units.get(bucket).cloned().unwrap_or_else(|| {
            // An id the caller has no name for: its first group is enough to tell units apart.
            format!(
                "Đơn vị / unit {}",
                bucket.split('-').next().unwrap_or(bucket)
            )
        }),
        "sex" => match bucket {
            "female" => "Nữ / Female".to_owned(),
            "male" => "Nam / Male".to_owned(),
            other => other.to_owned(),
        },
        "age_band" => defs
            .and_then(|d| d.age_bands.iter().find(|b| b.code == bucket))
            .map_or_else(
                || bucket.to_owned(),
                |b| format!("{} / {}", b.label_vi, b.label_en),
            ),
        "episode_kind" => kind_label(bucket).to_owned(),
        _ => bucket.to_owned(),
    }
}

/// A kind of episode, in both languages.
#[must_use]
pub fn kind_label(code: &str) -> &str {
    match code {
        "drug_user_management" => {
            "Quản lý người sử dụng trái phép chất ma túy / Illegal drug user management"
        }
        "post_rehab" => "Quản lý sau cai nghiện / Post-rehab management",
        "voluntary_home_rehab" => "Cai nghiện tự nguyện tại gia đình / Voluntary rehab at home",
        "voluntary_community_rehab" => {
            "Cai nghiện tự nguyện tại cộng đồng / Voluntary rehab in the community"
        }
        "ost" => "Điều trị thay thế / Opioid substitution therapy",
        "none" => "Không gắn hồ sơ / No file",
        other => other,
    }
}

/// The period as the form prints it: "tháng 10 năm 2026".
#[must_use]
pub fn period_label_vi(period: Period) -> String {
    let start = period.start();
    match period.kind() {
        PeriodKind::Month => format!("tháng {} năm {}", start.month(), start.year()),
        PeriodKind::Quarter => format!("quý {} năm {}", start.month().div_ceil(3), start.year()),
        PeriodKind::HalfYear if start.month() == 1 => {
            format!("6 tháng đầu năm {}", start.year())
        }
        PeriodKind::HalfYear => format!("6 tháng cuối năm {}", start.year()),
        PeriodKind::Year => format!("năm {}", start.year()),
    }
}

fn day_vi(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// The formats of the form.
struct Formats {
    bold_center: Format,
    italic_center: Format,
    title: Format,
    header: Format,
    section: Format,
    cell: Format,
    cell_center: Format,
    count: Format,
    amount: Format,
    percent: Format,
    small: Format,
}

impl Formats {
    fn new() -> Self {
        let base = Format::new()
            .set_font_name("Times New Roman")
            .set_font_size(12);
        let cell = base
            .clone()
            .set_border(FormatBorder::Thin)
            .set_text_wrap()
            .set_align(FormatAlign::VerticalCenter);
        Formats {
            bold_center: base.clone().set_bold().set_align(FormatAlign::Center),
            italic_center: base.clone().set_italic().set_align(FormatAlign::Center),
            title: base
                .clone()
                .set_bold()
                .set_font_size(14)
                .set_align(FormatAlign::Center)
                .set_text_wrap(),
            header: cell
                .clone()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_background_color(0x00E7_EEF7),
            section: cell.clone().set_bold(),
            cell_center: cell.clone().set_align(FormatAlign::Center),
            count: cell.clone().set_num_format("#,##0"),
            amount: cell.clone().set_num_format("#,##0\" đ\""),
            percent: cell.clone().set_num_format("0.0%"),
            cell,
            small: base.set_italic().set_font_size(10),
        }
    }
}

fn xlsx_err(_: XlsxError) -> ReportError {
    ReportError::Export("xlsx")
}

/// A sheet name Excel accepts: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(code: &str) -> String {
    let clean: String = code
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '-' } else { c })
        .take(31)
        .collect();
    if clean.trim().is_empty() {
        "Report".to_owned()
    } else {
        clean
    }
}

/// The report as an XLSX workbook (see the module documentation).
///
/// # Errors
/// [`ReportError::Export`] if the workbook cannot be written.
pub fn to_xlsx(report: &Report, labels: &Labels) -> Result<Vec<u8>, ReportError> {
    let defs = Definitions::embedded().ok();
    let f = Formats::new();
    let mut wb = Workbook::new();
    let sheet = wb.add_worksheet();
    sheet
        .set_name(sheet_name(&report.template))
        .map_err(xlsx_err)?;
    form_sheet(sheet, report, labels, defs.as_ref(), &f).map_err(xlsx_err)?;
    if report.rows().any(|r| !r.breakdown.is_empty()) {
        let sheet = wb.add_worksheet();
        sheet.set_name(BREAKDOWN_SHEET).map_err(xlsx_err)?;
        breakdown_sheet(sheet, report, labels, defs.as_ref(), &f).map_err(xlsx_err)?;
    }
    if !report.plans.is_empty() {
        let sheet = wb.add_worksheet();
        sheet.set_name(PLANS_SHEET).map_err(xlsx_err)?;
        plans_sheet(sheet, report, &f).map_err(xlsx_err)?;
    }
    wb.save_to_buffer().map_err(xlsx_err)
}

fn form_sheet(
    ws: &mut Worksheet,
    report: &Report,
    labels: &Labels,
    defs: Option<&Definitions>,
    f: &Formats,
) -> Result<(), XlsxError> {
    ws.set_paper_size(9); // A4
    ws.set_portrait();
    ws.set_print_fit_to_pages(1, 0);
    ws.set_margins(0.6, 0.5, 0.6, 0.6, 0.3, 0.3);
    for (col, width) in [6.0, 46.0, 34.0, 22.0, 12.0, 14.0, 10.0, 10.0]
        .into_iter()
        .enumerate()
    {
        #[allow(clippy::cast_possible_truncation)]
        ws.set_column_width(col as u16, width)?;
    }
    // The heading block: the reporting unit on the left, the national motto on the right.
    ws.merge_range(
        0,
        0,
        0,
        2,
        &labels.parent_name.to_uppercase(),
        &f.bold_center,
    )?;
    ws.merge_range(1, 0, 1, 2, &labels.org_name.to_uppercase(), &f.bold_center)?;
    ws.merge_range(
        0,
        3,
        0,
        7,
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        &f.bold_center,
    )?;
    ws.merge_range(1, 3, 1, 7, "Độc lập - Tự do - Hạnh phúc", &f.bold_center)?;
    ws.merge_range(
        2,
        3,
        2,
        7,
        &format!("Biểu {}", report.template),
        &f.italic_center,
    )?;
    ws.set_row_height(4, 36)?;
    ws.merge_range(4, 0, 4, 7, &report.title_vi.to_uppercase(), &f.title)?;
    ws.merge_range(5, 0, 5, 7, &report.title_en, &f.italic_center)?;
    ws.merge_range(
        6,
        0,
        6,
        7,
        &format!(
            "Kỳ báo cáo: {} (từ {} đến {}) / Period {}",
            period_label_vi(report.period),
            day_vi(report.start),
            day_vi(report.end),
            report.period
        ),
        &f.bold_center,
    )?;
    let mut note = format!(
        "{} · Định nghĩa chỉ tiêu / definitions {}",
        report.basis, report.definitions_version
    );
    if let Some(c) = &report.closed {
        note.push_str(&format!(
            " · Đã chốt số liệu / closed {}",
            c.at.format("%d/%m/%Y %H:%M UTC")
        ));
    }
    ws.merge_range(7, 0, 7, 7, &note, &f.italic_center)?;
    ws.set_row_height(FORM_HEADER_ROW, 32)?;
    for (col, heading) in FORM_COLUMNS.iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        ws.write_string_with_format(FORM_HEADER_ROW, col as u16, *heading, &f.header)?;
    }
    ws.set_repeat_rows(FORM_HEADER_ROW, FORM_HEADER_ROW)?;
    let mut row = FORM_HEADER_ROW + 1;
    for (i, section) in report.sections.iter().enumerate() {
        ws.merge_range(
            row,
            0,
            row,
            7,
            &format!(
                "{}. {} / {}",
                roman(i + 1),
                section.title_vi,
                section.title_en
            ),
            &f.section,
        )?;
        row += 1;
        for r in &section.rows {
            let (unit_vi, unit_en) = unit(defs, r);
            ws.write_string_with_format(row, 0, &r.no, &f.cell_center)?;
            ws.write_string_with_format(row, 1, &r.label_vi, &f.cell)?;
            ws.write_string_with_format(row, 2, &r.label_en, &f.cell)?;
            ws.write_string_with_format(row, COL_CODE, &r.code, &f.cell)?;
            ws.write_string_with_format(row, 4, format!("{unit_vi} / {unit_en}"), &f.cell_center)?;
            write_value(ws, row, &r.value, f)?;
            row += 1;
        }
    }
    if !report.late.is_empty() {
        row += 1;
        ws.merge_range(
            row,
            0,
            row,
            7,
            "Số liệu đến muộn của kỳ đã chốt / Late records for closed periods",
            &f.section,
        )?;
        row += 1;
        for n in &report.late {
            let label = defs
                .and_then(|d| d.indicator(&n.code))
                .map_or(n.code.as_str(), |i| i.label_vi.as_str());
            ws.merge_range(
                row,
                0,
                row,
                7,
                &format!(
                    "Kỳ {} · {} ({}): đã chốt / closed {} → nay / now {}",
                    n.period,
                    label,
                    n.code,
                    n.frozen.to_text(),
                    n.now.to_text()
                ),
                &f.cell,
            )?;
            row += 1;
        }
    }
    // The signature block.
    row += 2;
    ws.merge_range(
        row,
        4,
        row,
        7,
        "......, ngày ..... tháng ..... năm ........",
        &f.italic_center,
    )?;
    row += 1;
    ws.merge_range(row, 0, row, 2, "NGƯỜI LẬP BIỂU", &f.bold_center)?;
    ws.merge_range(row, 4, row, 7, "THỦ TRƯỞNG ĐƠN VỊ", &f.bold_center)?;
    row += 1;
    ws.merge_range(row, 0, row, 2, "(Ký, ghi rõ họ tên)", &f.italic_center)?;
    ws.merge_range(row, 4, row, 7, "(Ký tên, đóng dấu)", &f.italic_center)?;
    row += 5;
    ws.write_string_with_format(
        row,
        0,
        "Lập từ hồ sơ bằng Đồng Hành / computed from the records by Đồng Hành",
        &f.small,
    )?;
    Ok(())
}

fn write_value(ws: &mut Worksheet, row: u32, v: &Value, f: &Formats) -> Result<(), XlsxError> {
    #[allow(clippy::cast_precision_loss)]
    match v {
        Value::Count { value } => {
            ws.write_number_with_format(row, COL_VALUE, *value as f64, &f.count)?;
            ws.write_blank(row, COL_VALUE + 1, &f.cell)?;
            ws.write_blank(row, COL_VALUE + 2, &f.cell)?;
        }
        Value::AmountVnd { value } => {
            ws.write_number_with_format(row, COL_VALUE, *value as f64, &f.amount)?;
            ws.write_blank(row, COL_VALUE + 1, &f.cell)?;
            ws.write_blank(row, COL_VALUE + 2, &f.cell)?;
        }
        Value::Percent {
            numerator,
            denominator,
            percent,
        } => {
            match percent {
                Some(p) => {
                    ws.write_number_with_format(row, COL_VALUE, p / 100.0, &f.percent)?;
                }
                None => {
                    ws.write_string_with_format(row, COL_VALUE, "–", &f.cell_center)?;
                }
            }
            ws.write_number_with_format(row, COL_VALUE + 1, *numerator as f64, &f.count)?;
            ws.write_number_with_format(row, COL_VALUE + 2, *denominator as f64, &f.count)?;
        }
    }
    Ok(())
}

fn breakdown_sheet(
    ws: &mut Worksheet,
    report: &Report,
    labels: &Labels,
    defs: Option<&Definitions>,
    f: &Formats,
) -> Result<(), XlsxError> {
    for (col, width) in [6.0, 46.0, 22.0, 24.0, 44.0, 14.0].into_iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        ws.set_column_width(col as u16, width)?;
    }
    ws.merge_range(
        0,
        0,
        0,
        5,
        &format!(
            "Phân tổ số liệu / Breakdown — {} — {}",
            report.template,
            period_label_vi(report.period)
        ),
        &f.title,
    )?;
    let headings = [
        "STT\nNo.",
        "Chỉ tiêu / Indicator",
        "Mã\nCode",
        "Phân tổ\nDimension",
        "Nhóm\nGroup",
        "Số liệu\nValue",
    ];
    for (col, h) in headings.iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        ws.write_string_with_format(2, col as u16, *h, &f.header)?;
    }
    let mut row = 3;
    for r in report.rows() {
        let fmt = if matches!(r.value, Value::AmountVnd { .. }) {
            &f.amount
        } else {
            &f.count
        };
        for (dim, buckets) in &r.breakdown {
            for (bucket, n) in buckets {
                ws.write_string_with_format(row, 0, &r.no, &f.cell_center)?;
                ws.write_string_with_format(row, 1, &r.label_vi, &f.cell)?;
                ws.write_string_with_format(row, 2, &r.code, &f.cell)?;
                ws.write_string_with_format(row, 3, dimension_label(dim), &f.cell)?;
                ws.write_string_with_format(
                    row,
                    4,
                    bucket_label(dim, bucket, labels, defs),
                    &f.cell,
                )?;
                #[allow(clippy::cast_precision_loss)]
                ws.write_number_with_format(row, 5, *n as f64, fmt)?;
                row += 1;
            }
        }
    }
    ws.set_repeat_rows(2, 2)?;
    Ok(())
}

fn plans_sheet(ws: &mut Worksheet, report: &Report, f: &Formats) -> Result<(), XlsxError> {
    for (col, width) in [46.0, 22.0, 16.0, 16.0, 26.0, 14.0].into_iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)]
        ws.set_column_width(col as u16, width)?;
    }
    let mut row = 0;
    for p in &report.plans {
        let title = if p.plan.title.is_empty() {
            format!("Kế hoạch / Plan {}", p.plan.period)
        } else {
            p.plan.title.clone()
        };
        ws.merge_range(row, 0, row, 5, &title, &f.title)?;
        row += 1;
        let when = if p.final_result {
            format!("Kết quả cuối kỳ / final result ({})", day_vi(p.as_of))
        } else {
            format!("Tiến độ đến ngày / progress to {}", day_vi(p.as_of))
        };
        ws.merge_range(row, 0, row, 5, &when, &f.italic_center)?;
        row += 1;
        let headings = [
            "Chỉ tiêu / Indicator",
            "Mã\nCode",
            "Mục tiêu\nTarget",
            "Đạt được\nAchieved",
            "Đánh giá\nStatus",
            "Chênh lệch\nDifference",
        ];
        for (col, h) in headings.iter().enumerate() {
            #[allow(clippy::cast_possible_truncation)]
            ws.write_string_with_format(row, col as u16, *h, &f.header)?;
        }
        row += 1;
        for t in &p.targets {
            ws.write_string_with_format(row, 0, &t.label_vi, &f.cell)?;
            ws.write_string_with_format(row, 1, &t.indicator, &f.cell)?;
            let percent = matches!(t.value, Value::Percent { .. });
            let goal = match t.goal {
                Goal::AtLeast(n) => format!("≥ {}", goal_text(n, percent)),
                Goal::AtMost(n) => format!("≤ {}", goal_text(n, percent)),
            };
            ws.write_string_with_format(row, 2, goal, &f.cell_center)?;
            ws.write_string_with_format(row, 3, t.value.to_text(), &f.cell_center)?;
            ws.write_string_with_format(row, 4, status_label(t.status), &f.cell_center)?;
            match t.difference {
                Some(d) => ws.write_number_with_format(row, 5, d, &f.cell_center)?,
                None => ws.write_blank(row, 5, &f.cell)?,
            };
            row += 1;
        }
        row += 1;
    }
    Ok(())
}

fn goal_text(n: f64, percent: bool) -> String {
    let text = if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}").replace('.', ",")
    };
    if percent { format!("{text} %") } else { text }
}

/// A target's status, in both languages.
#[must_use]
pub fn status_label(status: TargetStatus) -> &'static str {
    match status {
        TargetStatus::Met => "Đạt / met",
        TargetStatus::NotYet => "Chưa đạt / not yet",
        TargetStatus::OnTrack => "Đúng tiến độ / on track",
        TargetStatus::OffTrack => "Chậm tiến độ / off track",
        TargetStatus::NotMet => "Không đạt / not met",
    }
}

/// 1 → "I", 4 → "IV" (section numbers on the forms).
fn roman(mut n: usize) -> String {
    const TABLE: [(usize, &str); 9] = [
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (value, text) in TABLE {
        while n >= value {
            out.push_str(text);
            n -= value;
        }
    }
    out
}
