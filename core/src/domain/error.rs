//! The domain's error type.
//!
//! Every variant is something a caller can act on: show the user which field to fix, refuse a
//! status change, or ask an operator to load newer reference data. Messages are English and name
//! **fields, never values**: an error may end up in a log, a crash report or a sync receipt, and
//! nothing about a person (name, ID number, phone, note, date of birth) may travel with it. The
//! only values a message may print are reference-data facts (a calendar year, an effective date
//! of a legal parameter set) that say nothing about anyone.
//!
//! `DataParse` carries the JSON parser's description of a malformed *reference data* file (legal
//! parameters, holiday calendar). Those files hold public law and calendar facts, never personal
//! data, and the parser's position and reason are what an operator needs to fix them.

use chrono::NaiveDate;

/// Why a record, a status change or a piece of reference data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// A required field is missing or blank.
    #[error("{field} is required")]
    Required {
        /// The field (or fields, as `a or b`) of which one must be given.
        field: &'static str,
    },
    /// An optional text field is present but blank (leave it out instead).
    #[error("{field} is blank (leave it out instead)")]
    Blank {
        /// The field.
        field: &'static str,
    },
    /// A text field is longer than its limit, counted in Unicode characters.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A list has more entries than its limit.
    #[error("{field} has more than {max} entries")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A list names the same entry twice.
    #[error("{field} lists the same entry more than once")]
    Duplicate {
        /// The field.
        field: &'static str,
    },
    /// A field does not have the expected shape (CCCD number, phone number, one line of text).
    #[error("{field} is not in the expected format ({expected})")]
    InvalidFormat {
        /// The field.
        field: &'static str,
        /// A description of the expected format (never the value given).
        expected: &'static str,
    },
    /// A number or date is outside its plausible range.
    #[error("{field} is out of range ({expected})")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The accepted range.
        expected: &'static str,
    },
    /// A date or time that records a fact lies in the future.
    #[error("{field} is in the future")]
    InFuture {
        /// The field.
        field: &'static str,
    },
    /// Two dates are in the wrong order: `later` is before `earlier`.
    #[error("{later} is before {earlier}")]
    DateOrder {
        /// The field that must come first.
        earlier: &'static str,
        /// The field that must not be before it.
        later: &'static str,
    },
    /// An amount of money is negative.
    #[error("{field} must not be negative")]
    NegativeAmount {
        /// The field.
        field: &'static str,
    },
    /// A field is set that does not apply to this kind or status of record.
    #[error("{field} does not apply to this kind or status of record")]
    NotApplicable {
        /// The field.
        field: &'static str,
    },
    /// A field must differ from another one (a transfer to the commune the person is already in).
    #[error("{field} must differ from the current value")]
    Unchanged {
        /// The field.
        field: &'static str,
    },
    /// A reference points at a different record than the one it is checked against.
    #[error("{field} refers to a different record")]
    MismatchedReference {
        /// The referencing field.
        field: &'static str,
    },
    /// A record would move to (or is checked against) another scope.
    #[error("the record belongs to a different scope")]
    MismatchedScope,
    /// A reference names a record that is not among those it is checked against (an org
    /// unit's parent missing from the tree, a user's org unit unknown).
    #[error("{field} refers to a record that is not known")]
    UnknownReference {
        /// The referencing field.
        field: &'static str,
    },
    /// A reference names a record of the wrong kind (a user's community point that is a team).
    #[error("{field} must refer to {expected}")]
    WrongKind {
        /// The referencing field.
        field: &'static str,
        /// What it must refer to.
        expected: &'static str,
    },
    /// Following the parents of org units comes back to a unit (including a unit that is its
    /// own parent).
    #[error("the org unit tree has a cycle")]
    OrgCycle,
    /// An org unit lies within a unit it cannot belong to (a commune within a commune, a team
    /// with no commune above it).
    #[error("an org unit of kind {kind} is placed where that kind cannot be")]
    OrgPlacement {
        /// The misplaced unit's kind code.
        kind: &'static str,
    },
    /// A status change the state machine does not allow.
    #[error("status cannot change from {from} to {to}")]
    InvalidTransition {
        /// Code of the current status.
        from: &'static str,
        /// Code of the requested status.
        to: &'static str,
    },
    /// A relapse is a legal determination: it needs the determining authority and its date.
    #[error("a relapse needs the authority that determined it and the date of determination")]
    RelapseWithoutAuthority,
    /// Attendance cannot be recorded for a cancelled session.
    #[error("attendance cannot be recorded for a cancelled session")]
    SessionCancelled,
    /// A session cannot be marked held before its start time.
    #[error("the session has not taken place yet")]
    SessionNotHeld,
    /// The legal parameters give no management term for this kind of episode (its length is
    /// set by the individual decision, not by a fixed legal term).
    #[error("the legal parameters give no management term for episodes of kind {kind}")]
    NoTerm {
        /// The episode kind's code.
        kind: &'static str,
    },
    /// No legal parameter set is in force on the requested date (before the oldest set).
    #[error("no legal parameters are in force on the requested date")]
    NoLegalParams {
        /// The date asked for.
        date: NaiveDate,
    },
    /// The newest set for the requested date is known to be superseded on that date and no
    /// verified replacement has been loaded (strict look-up only).
    #[error(
        "the legal parameters were superseded on {superseded_on} and the new ones are not loaded"
    )]
    UnverifiedLegalParams {
        /// The date asked for.
        date: NaiveDate,
        /// When the newest loaded set stopped being the law.
        superseded_on: NaiveDate,
    },
    /// An episode names a legal basis that is not among the loaded parameter sets.
    #[error("the episode's legal basis is not among the loaded legal parameter sets")]
    UnknownLegalBasis,
    /// No public-holiday calendar is loaded for a year a working-day computation needs.
    #[error("no public-holiday calendar is loaded for {year}")]
    NoCalendar {
        /// The year without data.
        year: i32,
    },
    /// Date arithmetic left the range of representable dates.
    #[error("{field} falls outside the supported range of dates")]
    DateOutOfRange {
        /// The computed field.
        field: &'static str,
    },
    /// A reference data file (legal parameters, holiday calendar) is not valid JSON of the
    /// expected shape.
    #[error("{what}: malformed data ({detail})")]
    DataParse {
        /// Which data file.
        what: &'static str,
        /// The parser's message with line and column.
        detail: String,
    },
    /// A reference data file has a value that breaks a rule.
    #[error("{what}: {field} {problem}")]
    DataInvalid {
        /// Which data file.
        what: &'static str,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Dates in a reference data file are not strictly increasing (duplicated or out of order).
    #[error("{what}: dates must be strictly increasing (duplicate or out of order at {date})")]
    DataOrder {
        /// Which data file.
        what: &'static str,
        /// The first date that breaks the order.
        date: NaiveDate,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::testutil::{ctx, d};
    use crate::domain::{Person, Record, Sex, Visit};

    #[test]
    fn messages_name_the_field_and_never_the_value() {
        let mut p = Person::new("Lê Thị Hoa", d(1995, 2, 3), Sex::Female);
        p.phone = Some("0912abc678".into());
        let message = p.validate(&ctx()).unwrap_err().to_string();
        assert!(message.contains("phone"), "{message}");
        assert!(!message.contains("0912"), "{message}");
        p.phone = None;
        p.id_number = Some("0010950012".into());
        let message = p.validate(&ctx()).unwrap_err().to_string();
        assert!(
            message.contains("id_number") && !message.contains("0010950012"),
            "{message}"
        );
        let v = Visit::new(p.id, ctx().now, "Hoa\u{7}");
        let message = v.validate(&ctx()).unwrap_err().to_string();
        assert!(
            message.contains("observations") && !message.contains("Hoa"),
            "{message}"
        );
    }

    #[test]
    fn messages_read_as_sentences() {
        let samples = [
            DomainError::Required { field: "full_name" },
            DomainError::DateOrder {
                earlier: "from",
                later: "to",
            },
            DomainError::InvalidTransition {
                from: "done",
                to: "open",
            },
            DomainError::NoCalendar { year: 2027 },
            DomainError::UnverifiedLegalParams {
                date: d(2026, 7, 1),
                superseded_on: d(2026, 7, 1),
            },
        ];
        let texts: Vec<String> = samples.iter().map(ToString::to_string).collect();
        assert_eq!(texts[0], "full_name is required");
        assert_eq!(texts[1], "to is before from");
        assert_eq!(texts[2], "status cannot change from done to open");
        assert_eq!(texts[3], "no public-holiday calendar is loaded for 2027");
        assert!(
            !texts[4].contains("date:"),
            "the requested date is not printed"
        );
    }
}

/// The Vietnamese label of a status code (episodes, sessions, referrals, tasks); the code
/// itself when it has none.
#[must_use]
pub fn status_label_vi(code: &str) -> &str {
    match code {
        "draft" => "đang chuẩn bị",
        "proposed" => "đã đề nghị",
        "active" => "đang quản lý",
        "completed" => "đã hoàn thành",
        "terminated" => "đã chấm dứt",
        "planned" => "đã lên kế hoạch",
        "held" => "đã tổ chức",
        "cancelled" => "đã hủy",
        "sent" => "đã gửi",
        "accepted" => "đã tiếp nhận",
        "declined" => "bị từ chối",
        "open" => "chưa làm",
        "done" => "đã xong",
        other => other,
    }
}

/// The Vietnamese label of a field, as a field worker knows it; the code itself when unknown.
#[must_use]
pub fn field_label_vi(field: &str) -> &str {
    match field {
        "full_name" => "họ và tên",
        "birth_date" => "ngày sinh",
        "sex" => "giới tính",
        "id_number" => "số CCCD",
        "phone" => "số điện thoại",
        "address" => "nơi cư trú",
        "family_contact" => "người thân liên hệ",
        "observations" => "nội dung ghi nhận",
        "note" => "ghi chú",
        "at" => "thời điểm",
        "next_visit_due" => "ngày hẹn thăm tiếp",
        "gps.lat" | "gps.lon" | "gps.accuracy_m" => "vị trí GPS",
        "risk_signs" => "dấu hiệu nguy cơ",
        "services" => "dịch vụ đã cung cấp",
        "reason" => "lý do",
        "topic" => "chủ đề",
        "facilitators" => "người điều hành",
        "walk_ins" => "số người tham gia vãng lai",
        "duration_minutes" => "thời lượng (phút)",
        "amount_vnd" => "số tiền (đồng)",
        "detected_on" => "ngày phát hiện",
        "determined_by" => "cơ quan xác định",
        "determined_on" => "ngày xác định",
        "from" => "từ ngày",
        "to" => "đến ngày",
        "start" => "ngày bắt đầu",
        "ended_on" => "ngày kết thúc",
        "planned_end" => "ngày dự kiến kết thúc",
        "decision_date" => "ngày quyết định",
        "file_opened_on" => "ngày lập hồ sơ",
        "completion_reported_on" => "ngày trình báo hoàn thành",
        "positive_test_on" => "ngày xét nghiệm dương tính",
        "notified_on" => "ngày thông báo",
        "reported_on" => "ngày báo cáo",
        "to_commune" => "xã chuyển đến",
        "given_on" => "ngày đồng ý",
        "withdrawn_on" => "ngày rút lại",
        "purpose" => "mục đích",
        "sent_on" => "ngày gửi",
        "status_on" => "ngày cập nhật trạng thái",
        "concerns or agreed_actions" => "vấn đề hoặc biện pháp đã thống nhất",
        "agreed_actions" => "biện pháp đã thống nhất",
        "caseload_reviewed" => "số hồ sơ đã rà soát",
        "after" => "hình thức cai nghiện trước đó",
        "episode" => "hồ sơ quản lý",
        "person" => "người được quản lý",
        "session" => "buổi sinh hoạt",
        "organisation" => "tổ chức",
        "facility" => "cơ sở",
        "disclosed_to" => "người được cung cấp thông tin",
        "legal_basis" => "căn cứ pháp lý",
        "name" => "tên",
        "parent" => "đơn vị cấp trên",
        "username" => "tên đăng nhập",
        "display_name" => "tên hiển thị",
        "org_unit" => "đơn vị",
        "point" => "điểm tư vấn cộng đồng",
        "label" => "tên thiết bị",
        "enrolled_at" => "thời điểm đăng ký thiết bị",
        "revoked_at" => "thời điểm thu hồi thiết bị",
        "id" => "mã",
        other => other,
    }
}

impl DomainError {
    /// The message in Vietnamese, for the people in the field (the `Display` text is English).
    /// Like the English one, it names fields and never values.
    #[must_use]
    pub fn message_vi(&self) -> String {
        let f = field_label_vi;
        match self {
            Self::Required { field } => format!("cần nhập {}", f(field)),
            Self::Blank { field } => format!("{} để trống (hãy bỏ qua trường này)", f(field)),
            Self::TooLong { field, max } => format!("{} dài quá {max} ký tự", f(field)),
            Self::TooMany { field, max } => format!("{} có quá {max} mục", f(field)),
            Self::Duplicate { field } => format!("{} có mục bị lặp lại", f(field)),
            Self::InvalidFormat { field, expected } => {
                format!("{} không đúng định dạng ({expected})", f(field))
            }
            Self::OutOfRange { field, expected } => {
                format!("{} nằm ngoài khoảng cho phép ({expected})", f(field))
            }
            Self::InFuture { field } => format!("{} không được ở tương lai", f(field)),
            Self::DateOrder { earlier, later } => {
                format!("{} không được trước {}", f(later), f(earlier))
            }
            Self::NegativeAmount { field } => format!("{} không được âm", f(field)),
            Self::NotApplicable { field } => {
                format!("{} không áp dụng cho loại hoặc trạng thái này", f(field))
            }
            Self::Unchanged { field } => format!("{} phải khác giá trị hiện tại", f(field)),
            Self::MismatchedReference { field } => {
                format!("{} trỏ tới một bản ghi khác", f(field))
            }
            Self::MismatchedScope => "bản ghi thuộc phạm vi khác".to_owned(),
            Self::UnknownReference { field } => {
                format!("{} trỏ tới một bản ghi không tồn tại", f(field))
            }
            Self::WrongKind { field, expected } => {
                format!("{} phải trỏ tới đúng loại bản ghi ({expected})", f(field))
            }
            Self::OrgCycle => "cây đơn vị có vòng lặp (một đơn vị nằm dưới chính nó)".to_owned(),
            Self::OrgPlacement { kind } => {
                format!("đơn vị loại {kind} được đặt dưới một đơn vị không phù hợp")
            }
            Self::InvalidTransition { from, to } => format!(
                "không thể chuyển trạng thái từ “{}” sang “{}”",
                status_label_vi(from),
                status_label_vi(to)
            ),
            Self::RelapseWithoutAuthority => {
                "tái nghiện phải có cơ quan xác định và ngày xác định".to_owned()
            }
            Self::SessionCancelled => "không thể điểm danh cho buổi đã hủy".to_owned(),
            Self::SessionNotHeld => "buổi sinh hoạt chưa diễn ra".to_owned(),
            Self::NoTerm { kind } => {
                format!("quy định pháp luật không có thời hạn quản lý cho loại hồ sơ {kind}")
            }
            Self::NoLegalParams { .. } => {
                "không có quy định pháp luật áp dụng cho ngày này".to_owned()
            }
            Self::UnverifiedLegalParams { superseded_on, .. } => format!(
                "quy định pháp luật đã được thay thế từ {superseded_on}; chưa nạp quy định mới"
            ),
            Self::UnknownLegalBasis => "căn cứ pháp lý của hồ sơ chưa được nạp".to_owned(),
            Self::NoCalendar { year } => format!("chưa có lịch nghỉ lễ năm {year}"),
            Self::DateOutOfRange { field } => {
                format!("{} nằm ngoài khoảng ngày được hỗ trợ", f(field))
            }
            Self::DataParse { what, .. } => format!("{what}: dữ liệu sai định dạng"),
            Self::DataInvalid { what, field, .. } => format!("{what}: {field} không hợp lệ"),
            Self::DataOrder { what, date } => {
                format!("{what}: ngày phải tăng dần (trùng hoặc sai thứ tự tại {date})")
            }
        }
    }
}

#[cfg(test)]
mod vi_tests {
    use super::*;

    #[test]
    fn a_refused_status_change_names_both_statuses_in_vietnamese() {
        let e = DomainError::InvalidTransition {
            from: "completed",
            to: "terminated",
        };
        assert_eq!(
            e.message_vi(),
            "không thể chuyển trạng thái từ “đã hoàn thành” sang “đã chấm dứt”"
        );
        assert_eq!(
            e.to_string(),
            "status cannot change from completed to terminated"
        );
        assert_eq!(status_label_vi("unknown_code"), "unknown_code");
    }

    #[test]
    fn vietnamese_messages_name_fields_in_vietnamese() {
        assert_eq!(
            DomainError::Required { field: "full_name" }.message_vi(),
            "cần nhập họ và tên"
        );
        assert_eq!(
            DomainError::InFuture { field: "at" }.message_vi(),
            "thời điểm không được ở tương lai"
        );
        assert_eq!(
            DomainError::DateOrder {
                earlier: "from",
                later: "to"
            }
            .message_vi(),
            "đến ngày không được trước từ ngày"
        );
        assert_eq!(
            DomainError::NegativeAmount {
                field: "amount_vnd"
            }
            .message_vi(),
            "số tiền (đồng) không được âm"
        );
    }
}
