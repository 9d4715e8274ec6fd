//! The offline demo: a volunteer's phone in a commune, with no server.
//!
//! Loads a small, realistic caseload (invented people: any likeness is chance), then shows what
//! the volunteer sees: the caseload ordered by what is due, a search typed without diacritics,
//! a person's visit history, and the changes waiting for the next sync. Finally it checks the
//! data directory byte by byte for the names it wrote, to show that none is stored in clear.

use std::path::Path;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use donghanh_core::domain::{Episode, EpisodeKind, FollowUpTask, Person, Sex, Visit, VisitMode};
use donghanh_core::{Device, search};

use crate::{CliResult, Failure, init_device, messages, open_device};

const DEMO_PIN: &str = "246810";

const PEOPLE: [(&str, &str, Sex, &str); 10] = [
    (
        "Nguyễn Văn Hùng",
        "1988-03-14",
        Sex::Male,
        "Thôn Đông, xã Tân Hòa",
    ),
    (
        "Trần Thị Thu Hà",
        "1992-07-02",
        Sex::Female,
        "Thôn Tây, xã Tân Hòa",
    ),
    (
        "Lê Minh Đức",
        "1985-11-23",
        Sex::Male,
        "Xóm Chợ, xã Tân Hòa",
    ),
    (
        "Phạm Quốc Bảo",
        "1999-01-09",
        Sex::Male,
        "Thôn Bắc, xã Tân Hòa",
    ),
    (
        "Hoàng Văn Tuấn",
        "1979-05-30",
        Sex::Male,
        "Thôn Nam, xã Tân Hòa",
    ),
    (
        "Nguyễn Thị Lan",
        "1990-09-17",
        Sex::Female,
        "Thôn Đông, xã Tân Hòa",
    ),
    (
        "Võ Thành Long",
        "2001-12-01",
        Sex::Male,
        "Xóm Bến, xã Tân Hòa",
    ),
    (
        "Đặng Văn Phúc",
        "1983-04-26",
        Sex::Male,
        "Thôn Tây, xã Tân Hòa",
    ),
    (
        "Bùi Anh Khoa",
        "1995-08-08",
        Sex::Male,
        "Xóm Chợ, xã Tân Hòa",
    ),
    (
        "Ngô Văn Sơn",
        "1987-02-19",
        Sex::Male,
        "Thôn Bắc, xã Tân Hòa",
    ),
];

const NOTES: [&str; 5] = [
    "Gia đình hợp tác tốt; đang làm phụ hồ, tinh thần ổn định.",
    "Có dấu hiệu mất ngủ, đã tư vấn và hẹn gặp lại tuần sau.",
    "Đã hỗ trợ làm lại căn cước; cần giới thiệu vay vốn.",
    "Gọi điện hỏi thăm, đi làm xa nhà, hẹn về thăm cuối tháng.",
    "Tham gia sinh hoạt nhóm tại điểm tư vấn, tiến bộ rõ.",
];

fn date(s: &str) -> CliResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Failure(messages::line("dữ liệu mẫu sai", "bad demo data")))
}

fn load(device: &Device) -> CliResult {
    let today = Utc::now().date_naive();
    for (i, (name, birth, sex, address)) in PEOPLE.iter().enumerate() {
        let mut person = Person::new(*name, date(birth)?, *sex);
        person.address = Some((*address).to_owned());
        person.phone = Some(format!("09{:08}", 12_345_670 + i * 1_111));
        device.add_person(&person)?;
        let kind = if i % 4 == 3 {
            EpisodeKind::Ost
        } else {
            EpisodeKind::PostRehab
        };
        let start = today - Duration::days(60 + 25 * i as i64);
        device.add_episode(&Episode::new(person.id, kind, start))?;
        for k in 0..(2 + i % 3) {
            let days_ago = 5 + 17 * k as i64 + i as i64;
            let at = Utc.from_utc_datetime(
                &(today - Duration::days(days_ago))
                    .and_hms_opt(2, 30, 0)
                    .unwrap_or_default(),
            );
            let mut visit = Visit::new(person.id, at, NOTES[(i + k) % NOTES.len()]);
            visit.mode = if k % 2 == 0 {
                VisitMode::Home
            } else {
                VisitMode::Phone
            };
            device.add_visit(&visit)?;
        }
        if i % 3 != 2 {
            let due = today + Duration::days(i as i64 - 3);
            let reason = if i % 2 == 0 {
                "Thăm gia đình, xét nghiệm định kỳ"
            } else {
                "Giới thiệu học nghề"
            };
            device.add_task(&FollowUpTask::new(person.id, due, reason))?;
        }
    }
    Ok(())
}

/// Files of the data directory that contain any of the markers (raw or diacritic-folded).
fn files_with_markers(dir: &Path, markers: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for entry in entries.flatten() {
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        if markers
            .iter()
            .any(|m| bytes.windows(m.len()).any(|w| w == m.as_bytes()))
        {
            hits.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    hits
}

pub(crate) fn run(dir: &Path, pin: Option<&str>) -> CliResult {
    let pin = pin.unwrap_or(DEMO_PIN);
    let fresh = !Device::store_path(dir).exists();
    let device = if fresh {
        println!(
            "Tạo thiết bị mới / creating a new device in {} (PIN {pin})",
            dir.display()
        );
        let device = init_device(dir, pin)?;
        load(&device)?;
        device
    } else {
        println!(
            "Mở thiết bị có sẵn / opening the existing device in {}",
            dir.display()
        );
        open_device(dir, pin)?
    };

    println!("\n== Danh sách quản lý / caseload (next due task, last visit) ==");
    let today = Utc::now().date_naive();
    for e in device.caseload()? {
        let due = match e.next_due {
            Some(d) if d < today => format!("QUÁ HẠN/overdue {d}"),
            Some(d) => format!("hạn/due {d}"),
            None => "-".to_owned(),
        };
        let last = e
            .last_visit
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        println!(
            "  {:<22} {:<28} thăm gần nhất/last visit {}",
            e.person.full_name, due, last
        );
    }

    println!("\n== Tìm \"nguyen\" (không dấu) / search without diacritics ==");
    let found = device.find_people("nguyen")?;
    for p in &found {
        println!("  {}  {}", p.id, p.full_name);
    }
    if let Some(first) = found.first() {
        println!("\n== Các lần thăm của {} / visits ==", first.full_name);
        for v in device.visits(first.id)? {
            println!(
                "  {}  {}  {}",
                v.at.format("%Y-%m-%d"),
                v.mode,
                v.observations
            );
        }
    }
    println!(
        "\n== Chờ đồng bộ / waiting for sync: {} changes ==",
        device.pending_changes()?
    );

    let people = device.people()?;
    drop(device);
    let markers: Vec<String> = people
        .iter()
        .flat_map(|p| [p.full_name.clone(), search::fold(&p.full_name)])
        .collect();
    let hits = files_with_markers(dir, &markers);
    if hits.is_empty() {
        println!(
            "\nKhông tệp nào trong {} chứa tên ở dạng rõ / no file in the data directory holds a name in clear ({} names checked).",
            dir.display(),
            people.len()
        );
        Ok(())
    } else {
        Err(Failure(format!(
            "lỗi: tên ở dạng rõ trong {hits:?} | error: plaintext names found in {hits:?}"
        )))
    }
}
