//! Error lines for people at a terminal: one line, Vietnamese first, then English.
//!
//! Nothing here prints a value the user typed or a record's content: core errors carry none,
//! and usage errors are rebuilt from clap's error kind and the option's name only.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use donghanh_core::Error;
use donghanh_core::keystore::KeyStoreError;

pub(crate) fn line(vi: &str, en: &str) -> String {
    format!("lỗi: {vi} | error: {en}")
}

fn kind_vi(kind: &str) -> &'static str {
    match kind {
        "person" => "người",
        "episode" => "hồ sơ",
        "visit" => "lần thăm",
        "task" => "việc cần làm",
        "session" => "buổi sinh hoạt",
        "attendance" => "điểm danh",
        "assignment" => "phân công",
        "supervision_note" => "ghi chú giám sát",
        "drug_test" => "lần xét nghiệm",
        "support_benefit" => "hỗ trợ",
        "referral" => "chuyển gửi",
        "relapse" => "tái nghiện",
        "conflict" => "xung đột",
        _ => "bản ghi",
    }
}

pub(crate) fn keystore_error(e: &KeyStoreError) -> String {
    let vi = match e {
        KeyStoreError::KeyMissing => "thiếu khóa thiết bị (device.key); không thể mở kho dữ liệu",
        KeyStoreError::Rejected => "khóa thiết bị không khớp với kho dữ liệu này",
        KeyStoreError::Unavailable(_) => "không dùng được khóa thiết bị",
    };
    line(vi, &e.to_string())
}

pub(crate) fn io_error(e: &std::io::Error) -> String {
    line("lỗi tệp", &format!("file error: {e}"))
}

pub(crate) fn core_error(e: &Error) -> String {
    let en = e.to_string();
    let vi = match e {
        Error::NoStore(p) => format!(
            "chưa có kho dữ liệu ở {}; hãy chạy `init` trước",
            p.display()
        ),
        Error::AlreadyInitialised(p) => format!("đã có kho dữ liệu ở {}", p.display()),
        Error::WrongPin => "sai mã PIN".to_owned(),
        Error::WeakPin { min, max } => format!("mã PIN phải có từ {min} đến {max} ký tự"),
        Error::KeyStore(k) => return keystore_error(k),
        Error::CorruptStore { moved_to } => format!(
            "kho dữ liệu bị hỏng, đã được chuyển sang {} (không xóa); hãy đăng ký lại thiết bị",
            moved_to.display()
        ),
        Error::CorruptKeys => "khóa trong kho dữ liệu bị hỏng".to_owned(),
        Error::Tampered { kind } => format!("một {} đã bị sửa đổi hoặc hỏng", kind_vi(kind)),
        Error::Format { kind } => format!("không đọc được một {}", kind_vi(kind)),
        Error::NotFound { kind } => format!("không tìm thấy {} với mã này", kind_vi(kind)),
        Error::UnknownUser => "không có người dùng với tên đăng nhập này trong danh bạ của thiết bị; hãy đồng bộ trước, hoặc người này không thuộc xã của bạn".to_owned(),
        Error::LeaseExpired => {
            "thiết bị không đồng bộ quá lâu (hết hạn khóa dữ liệu); dữ liệu đã được xóa, hãy đăng ký lại"
                .to_owned()
        }
        Error::Wiped => "thiết bị đã bị thu hồi và dữ liệu đã được xóa; hãy đăng ký lại".to_owned(),
        Error::DeviceRevoked => {
            "thiết bị đã bị máy chủ thu hồi; dữ liệu trên máy đã được xóa".to_owned()
        }
        Error::NotEnrolled => "thiết bị chưa đăng ký với máy chủ (chạy `enroll`)".to_owned(),
        Error::SupervisorOnly => {
            "chỉ người giám sát (tổ trưởng, cán bộ xã) mới được xem và giải quyết xung đột"
                .to_owned()
        }
        Error::Network(_) => "không kết nối được máy chủ; dữ liệu vẫn được giữ trên máy".to_owned(),
        Error::Server { code, .. } if code == donghanh_core::protocol::codes::STORAGE_FULL => {
            "bộ nhớ của máy chủ đã đầy; máy chủ chưa lưu gì, dữ liệu vẫn được giữ trên máy — hãy đồng bộ lại sau"
                .to_owned()
        }
        Error::Server { .. } => "máy chủ từ chối yêu cầu".to_owned(),
        Error::AlreadyExists { kind } => format!("{} với mã này đã tồn tại", kind_vi(kind)),
        Error::Invalid(d) => format!("dữ liệu không hợp lệ: {}", d.message_vi()),
        Error::Report(r) => r.message_vi(),
        Error::RemoteRecord { kind, .. } => format!(
            "máy chủ gửi một {} không hợp lệ; chưa áp dụng gì từ trang dữ liệu này",
            kind_vi(kind)
        ),
        Error::NewerSchema { .. } => "kho dữ liệu do phiên bản mới hơn tạo ra".to_owned(),
        Error::DiskFull => "bộ nhớ thiết bị đã đầy; chưa lưu gì".to_owned(),
        Error::Busy => "kho dữ liệu đang được tiến trình khác sử dụng".to_owned(),
        Error::Storage(_) => "lỗi lưu trữ".to_owned(),
        Error::Io(_) => "lỗi tệp".to_owned(),
    };
    line(&vi, &en)
}

/// A usage error without the offending value.
pub(crate) fn usage_error(e: &clap::Error) -> String {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let (vi, en) = match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let why = match e.get(ContextKind::Custom) {
                Some(ContextValue::String(s)) => format!(": {s}"),
                _ => String::new(),
            };
            (
                format!("giá trị không hợp lệ cho {arg}"),
                format!("invalid value for {arg}{why}"),
            )
        }
        ErrorKind::MissingRequiredArgument => (
            format!("thiếu tham số bắt buộc {arg}"),
            format!("missing required argument {arg}"),
        ),
        ErrorKind::UnknownArgument => (
            format!("tham số không được hỗ trợ {arg}"),
            format!("unknown argument {arg}"),
        ),
        ErrorKind::InvalidSubcommand => (
            "lệnh không tồn tại".to_owned(),
            "unknown command (see --help)".to_owned(),
        ),
        ErrorKind::MissingSubcommand => (
            "thiếu lệnh".to_owned(),
            "missing command (see --help)".to_owned(),
        ),
        ErrorKind::ArgumentConflict => (
            format!("tham số xung đột {arg}"),
            format!("conflicting arguments {arg}"),
        ),
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => (
            format!("số giá trị sai cho {arg}"),
            format!("wrong number of values for {arg}"),
        ),
        ErrorKind::InvalidUtf8 => (
            "tham số không phải UTF-8".to_owned(),
            "argument is not valid UTF-8".to_owned(),
        ),
        _ => (
            "cú pháp lệnh sai".to_owned(),
            "invalid command line (see --help)".to_owned(),
        ),
    };
    line(&vi, &en)
}
