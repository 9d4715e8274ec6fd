//! `donghanh`: a headless Đồng Hành field device on the real core.
//!
//! Used for demos, scripted operations and load generation. Its command line is a contract
//! for scripts (README.md, "The device CLI"): results on stdout, one line per item, ids first;
//! every error is one line on stderr (Vietnamese, then English) and a non-zero exit status.
//! Errors never echo what was typed: a name given to the wrong option must not be printed back.
//!
//! The platform secret lives in `DIR/device.key`, readable only by its owner (phones keep it
//! in the Android Keystore or the iOS Keychain).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;
mod messages;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use donghanh_core::domain::{
    AttendanceStatus, Attendee, BenefitKind, DrugTest, Episode, EpisodeKind, FollowUpTask, Id,
    Person, PriorRehab, Referral, ReferralStatus, ReferralTarget, RelapseEvent, Session,
    SessionKind, Sex, SupervisionNote, SupportBenefit, TerminationReason, TestKind, TestMethod,
    TestResult, Visit, VisitMode, vn_date,
};
use donghanh_core::input::{parse_date, parse_id, parse_instant, parse_sex};
use donghanh_core::sync::client::Conflict;
use donghanh_core::{Device, FileKeyStore};

/// File name of the CLI's stand-in for the platform key store.
const KEY_FILE: &str = "device.key";

#[derive(Parser, Debug)]
#[command(
    name = "donghanh",
    version,
    about = "Thiết bị Đồng Hành không giao diện / a headless Đồng Hành field device"
)]
struct Cli {
    /// Data directory of the device (thư mục dữ liệu).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "donghanh-device"
    )]
    data: PathBuf,
    /// PIN that unlocks the device store (mã PIN); prefer the DONGHANH_PIN variable.
    #[arg(long, global = true, env = "DONGHANH_PIN", hide_env_values = true)]
    pin: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new encrypted device store (tạo kho dữ liệu mới).
    Init,
    /// Enrol this device with a server and create its store (đăng ký thiết bị).
    Enroll {
        /// The server's address, e.g. http://127.0.0.1:8080
        #[arg(long)]
        server: String,
        /// The user's login name.
        #[arg(long)]
        username: String,
        /// The user's password.
        #[arg(long, env = "DONGHANH_PASSWORD", hide_env_values = true)]
        password: String,
        /// A label for this device (no personal names).
        #[arg(long, default_value = "donghanh CLI")]
        label: String,
    },
    /// Send local changes and receive the server's (đồng bộ).
    Sync,
    /// People (người được quản lý).
    #[command(subcommand)]
    Person(PersonCmd),
    /// Management episodes (hồ sơ quản lý).
    #[command(subcommand)]
    Episode(EpisodeCmd),
    /// Visits (lần thăm).
    #[command(subcommand)]
    Visit(VisitCmd),
    /// Follow-up tasks (việc cần làm).
    #[command(subcommand)]
    Task(TaskCmd),
    /// Everyone held, with the next due task and the last visit (danh sách quản lý).
    Caseload,
    /// Local changes waiting to be sent (thay đổi chờ gửi).
    Pending,
    /// Changes the server refused, with its reason (thay đổi bị từ chối).
    Rejected,
    /// Cases: assignment to a helper (supervisor) (phân công).
    #[command(subcommand)]
    Case(CaseCmd),
    /// Sessions at a community point (buổi tư vấn / sinh hoạt nhóm).
    #[command(subcommand)]
    Session(SessionCmd),
    /// Attendance at a session (điểm danh).
    #[command(subcommand)]
    Attendance(AttendanceCmd),
    /// Supervision notes on a volunteer (ghi chú giám sát) (supervisor).
    #[command(subcommand)]
    Supervision(SupervisionCmd),
    /// The commune's report for a period, computed offline from this supervisor's device
    /// (báo cáo): `--period 2026-10` gives form 01-BCN.
    Report {
        /// 2026-10 (month), 2026-H2 (half-year) or 2026 (year).
        #[arg(long)]
        period: String,
        /// Template (default: 01-BCN for a month, PROVINCE-H / PROVINCE-Y otherwise).
        #[arg(long)]
        template: Option<String>,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "out")]
        json: bool,
        /// Write the report to this file instead: `.xlsx` (laid out as the paper form) or
        /// `.csv`; an existing file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The commune's name, printed at the top of an exported form.
        #[arg(long, value_name = "NAME", default_value = "")]
        unit_name: String,
    },
    /// A commune record book (sổ): 04-SCN, people under post-rehab management; 05-SCN, people
    /// who completed rehab. Books name people: the export is logged for each person listed
    /// (with the purpose) and synced to the server.
    Book {
        /// 04-SCN or 05-SCN.
        #[arg(value_name = "BOOK")]
        book: String,
        /// The day the book is drawn up to (default: today).
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        as_of: Option<NaiveDate>,
        /// Why it is exported (mục đích), recorded in the access log.
        #[arg(long)]
        purpose: String,
        /// The file to write: `.xlsx` or `.csv`; an existing file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The commune's name, printed at the top.
        #[arg(long, value_name = "NAME", default_value = "")]
        unit_name: String,
    },
    /// Drug tests (xét nghiệm ma túy).
    #[command(subcommand, name = "drug-test")]
    DrugTest(DrugTestCmd),
    /// Support given: training, jobs, loans, papers (hỗ trợ).
    #[command(subcommand)]
    Benefit(BenefitCmd),
    /// Referrals to services (chuyển gửi).
    #[command(subcommand)]
    Referral(ReferralCmd),
    /// Conflicting edits the server kept for review (xung đột) (supervisor; online).
    #[command(subcommand)]
    Conflict(ConflictCmd),
    /// Load a realistic demo commune into a new store and show a volunteer's day offline.
    Demo,
}

#[derive(Subcommand, Debug)]
enum PersonCmd {
    /// Record a person; prints the new id.
    Add(PersonAdd),
    /// Find people by name, ignoring case and diacritics.
    Find {
        /// Name or part of it ("nguyen an" finds "Nguyễn Văn An").
        text: String,
    },
    /// Everyone this device holds.
    List,
    /// One person in full.
    Show {
        /// The person's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

#[derive(Args, Debug)]
struct PersonAdd {
    /// Full name (họ và tên).
    #[arg(long)]
    name: String,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    birth: NaiveDate,
    /// Sex: female (nữ) or male (nam).
    #[arg(long, value_parser = parse_sex)]
    sex: Sex,
    /// Phone number.
    #[arg(long)]
    phone: Option<String>,
    /// Residence (village, commune).
    #[arg(long)]
    address: Option<String>,
    /// Citizen ID number (CCCD, 12 digits).
    #[arg(long)]
    id_number: Option<String>,
}

#[derive(Subcommand, Debug)]
enum EpisodeCmd {
    /// Open a management episode for a person; prints its id.
    Add {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// Kind of episode.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Start date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        start: NaiveDate,
        /// For post-rehab: the rehab that came before (needed before the file is proposed).
        #[arg(long, value_enum)]
        after: Option<AfterArg>,
    },
    /// A person's episodes.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
    /// A draft's file was opened and proposed to the chairman on a day (đề nghị).
    Propose(EpisodeOn),
    /// The chairman's decision of a day puts a proposed episode under management (quyết định).
    Activate(EpisodeOn),
    /// An active episode's term was served (hoàn thành).
    Complete(EpisodeOn),
    /// An active episode ends early for a reason (chấm dứt); a relapse uses `episode relapse`.
    Terminate {
        #[command(flatten)]
        at: EpisodeOn,
        /// Why: prison, moved, death, missing or other.
        #[arg(long, value_enum)]
        reason: TerminationArg,
    },
    /// A relapse determined during an active episode: recorded, and the episode ends on the
    /// day of the determination (tái nghiện); prints the relapse record's id.
    Relapse {
        /// The episode's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
        /// Day the drug use was detected, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        detected: NaiveDate,
        /// The health facility that determined addiction (cơ quan xác định).
        #[arg(long)]
        determined_by: String,
        /// Day of the determination, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        on: NaiveDate,
        /// Note.
        #[arg(long)]
        note: Option<String>,
    },
}

/// An episode and the day of its status change.
#[derive(Args, Debug)]
struct EpisodeOn {
    /// The episode's id.
    #[arg(long, value_parser = parse_id)]
    id: Id,
    /// The day, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    on: NaiveDate,
}

/// A command-line spelling (kebab-case) of a core enum, mapped variant for variant.
macro_rules! arg_enum {
    ($name:ident => $core:ty { $($v:ident),+ $(,)? }) => {
        #[derive(ValueEnum, Clone, Copy, Debug)]
        enum $name { $($v),+ }

        impl From<$name> for $core {
            fn from(v: $name) -> Self {
                match v { $($name::$v => <$core>::$v),+ }
            }
        }
    };
}

arg_enum!(AfterArg => PriorRehab { Voluntary, OstCompleted, CompulsoryAdult, CompulsoryMinor });
arg_enum!(TerminationArg => TerminationReason { Prison, Moved, Death, Missing, Other });
arg_enum!(TestKindArg => TestKind { Periodic, Surprise });
arg_enum!(TestMethodArg => TestMethod { UrineRapid, Saliva, UrineLab, Blood, Hair });
arg_enum!(TestResultArg => TestResult { Negative, Positive, Invalid });
arg_enum!(BenefitArg => BenefitKind {
    VocationalTraining, JobReferral, Loan, CashSupport, Schooling, PapersHelp
});
arg_enum!(TargetArg => ReferralTarget {
    OstClinic, HivCare, HarmReduction, RehabFacility, VocationalCentre, JobCentre, Loan, School,
    HealthFacility
});
arg_enum!(ReferralStatusArg => ReferralStatus { Accepted, Completed, Declined });

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    PostRehab,
    DrugUser,
    HomeRehab,
    CommunityRehab,
    Ost,
}

#[derive(Subcommand, Debug)]
enum VisitCmd {
    /// Record a visit; prints its id.
    Add {
        /// The person visited.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// What was observed (ghi chú).
        #[arg(long)]
        notes: String,
        /// When, RFC 3339 (default: now).
        #[arg(long, value_parser = parse_instant, value_name = "RFC3339")]
        at: Option<DateTime<Utc>>,
        /// How the visit was made.
        #[arg(long, value_enum, default_value = "home")]
        mode: ModeArg,
    },
    /// A person's visits, oldest first, one per line with the notes.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ModeArg {
    Home,
    Phone,
    AtPoint,
}

#[derive(Subcommand, Debug)]
enum TaskCmd {
    /// Add a follow-up task about a person; prints its id.
    Add {
        /// The person concerned.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// Due date, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        due: NaiveDate,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who should do it (a username from the directory; default: nobody in particular).
        #[arg(long, value_name = "USERNAME")]
        assignee: Option<String>,
    },
    /// Open tasks assigned to this device's user, earliest due first (with --all: every open
    /// task held).
    List {
        /// Every open task this device holds.
        #[arg(long)]
        all: bool,
    },
    /// Mark a task done.
    Done {
        /// The task's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

#[derive(Subcommand, Debug)]
enum CaseCmd {
    /// Assign a person's case to a volunteer from today; prints the assignment id.
    Assign {
        /// The person.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// The helper's username (from the directory the last sync brought).
        #[arg(long, value_name = "USERNAME")]
        to: String,
    },
}

#[derive(Subcommand, Debug)]
enum SessionCmd {
    /// Plan a session at a community point; prints its id.
    Add {
        /// The community point.
        #[arg(long, value_parser = parse_id)]
        point: Id,
        /// Kind of session.
        #[arg(long, value_enum)]
        kind: SessionKindArg,
        /// Topic (chủ đề).
        #[arg(long)]
        topic: String,
        /// When, RFC 3339 (default: now).
        #[arg(long, value_parser = parse_instant, value_name = "RFC3339")]
        at: Option<DateTime<Utc>>,
    },
    /// Sessions this device holds, most recent first.
    List,
    /// Mark a planned session held, once it has started (đã tổ chức).
    Hold {
        /// The session's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
    },
    /// Cancel a planned session (hủy).
    Cancel {
        /// The session's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
    },
}

#[derive(Subcommand, Debug)]
enum DrugTestCmd {
    /// Record a drug test; prints its id. A positive result is not a relapse by itself.
    Add {
        /// The person tested.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// The result.
        #[arg(long, value_enum)]
        result: TestResultArg,
        /// Periodic or surprise.
        #[arg(long, value_enum, default_value = "periodic")]
        kind: TestKindArg,
        /// How the sample was tested.
        #[arg(long, value_enum, default_value = "urine-rapid")]
        method: TestMethodArg,
        /// When, RFC 3339 (default: now).
        #[arg(long, value_parser = parse_instant, value_name = "RFC3339")]
        at: Option<DateTime<Utc>>,
        /// Note.
        #[arg(long)]
        note: Option<String>,
    },
    /// A person's drug tests, oldest first.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
}

#[derive(Subcommand, Debug)]
enum BenefitCmd {
    /// Record support given to a person; prints its id.
    Add {
        /// The person.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// Kind of support.
        #[arg(long, value_enum)]
        kind: BenefitArg,
        /// Amount in VND (0 for support in kind; loans and cash need one).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        amount: i64,
        /// Day given, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        on: NaiveDate,
        /// Note.
        #[arg(long)]
        note: Option<String>,
    },
    /// Support given to a person, oldest first.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
}

#[derive(Subcommand, Debug)]
enum ReferralCmd {
    /// Refer a person to a service; prints the referral's id.
    Add {
        /// The person.
        #[arg(long, value_parser = parse_id)]
        person: Id,
        /// Kind of service.
        #[arg(long, value_enum)]
        to: TargetArg,
        /// Day sent, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        sent: NaiveDate,
        /// Note.
        #[arg(long)]
        note: Option<String>,
    },
    /// A person's referrals, oldest first.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
    /// Move a referral on: sent → accepted | declined, accepted → completed | declined.
    Update {
        /// The referral's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
        /// The new status.
        #[arg(long, value_enum)]
        status: ReferralStatusArg,
        /// Day of the change, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
        on: NaiveDate,
    },
}

#[derive(Subcommand, Debug)]
enum ConflictCmd {
    /// The open conflicts in your commune's cases, oldest first (asks the server).
    List,
    /// Keep the current value of a conflict, or restore the one that lost (--restore).
    Resolve {
        /// The conflict's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
        /// Put the losing value back (it reaches the phones at their next sync).
        #[arg(long)]
        restore: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum SessionKindArg {
    Individual,
    Group,
    Club,
    Training,
}

#[derive(Subcommand, Debug)]
enum AttendanceCmd {
    /// Mark a person present at a session (or count walk-ins); prints the row's id.
    Mark {
        /// The session.
        #[arg(long, value_parser = parse_id)]
        session: Id,
        /// The person who attended.
        #[arg(long, value_parser = parse_id, required_unless_present = "walk_ins", conflicts_with = "walk_ins")]
        person: Option<Id>,
        /// A number of anonymous walk-ins instead of a person.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        walk_ins: Option<u32>,
        /// How they attended.
        #[arg(long, value_enum, default_value = "present")]
        status: StatusArg,
    },
    /// Who attended a session.
    List {
        /// The session.
        #[arg(long, value_parser = parse_id)]
        session: Id,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StatusArg {
    Present,
    Late,
    LeftEarly,
}

#[derive(Subcommand, Debug)]
enum SupervisionCmd {
    /// Write a supervision note on a volunteer of your commune; prints its id.
    Add {
        /// The volunteer's username (from the directory the last sync brought).
        #[arg(long, value_name = "USERNAME")]
        volunteer: String,
        /// Concerns and observations (nhận xét).
        #[arg(long)]
        notes: String,
    },
}

enum ExportFormat {
    Xlsx,
    Csv,
}

/// The export format a file name asks for.
fn export_format(path: &Path) -> CliResult<ExportFormat> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("xlsx") => Ok(ExportFormat::Xlsx),
        Some("csv") => Ok(ExportFormat::Csv),
        _ => Err(Failure(messages::line(
            "tệp xuất phải có đuôi .xlsx hoặc .csv",
            "the export file must end in .xlsx or .csv",
        ))),
    }
}

/// The file is not named: a path may hold a name someone typed.
fn exists(_path: &Path) -> Failure {
    Failure(messages::line(
        "tệp xuất đã có, không ghi đè",
        "the export file already exists and is not replaced",
    ))
}

/// Writes `bytes` to `path`, which must not exist yet, all or nothing: into a temporary file
/// beside it, synced, then linked into place (a crash leaves no half-written export, and a file
/// that appeared meanwhile is not replaced).
fn write_new_file(path: &Path, bytes: &[u8]) -> CliResult {
    finish_new_file(new_file_beside(path)?, path, bytes)
}

/// The temporary file an export is written to, beside `path`, which must not exist: made
/// before anything is logged or computed, so that an unwritable place fails first.
fn new_file_beside(path: &Path) -> CliResult<tempfile::NamedTempFile> {
    if path.exists() {
        return Err(exists(path));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::NamedTempFile::new_in(&parent).map_err(|e| export_io(&e))
}

/// A file error of an export, by its kind only: the error's own text names the path, and a
/// path may hold a name someone typed.
fn export_io(e: &std::io::Error) -> Failure {
    Failure(messages::io_error(&std::io::Error::from(e.kind())))
}

/// Writes `bytes` into `tmp`, syncs it and links it into place at `path` without replacing
/// anything.
fn finish_new_file(mut tmp: tempfile::NamedTempFile, path: &Path, bytes: &[u8]) -> CliResult {
    use std::io::Write as _;
    let io = |e: std::io::Error| export_io(&e);
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            exists(path)
        } else {
            io(e.error)
        }
    })?;
    Ok(())
}

/// A CLI failure: one line, Vietnamese then English.
#[derive(Debug)]
pub(crate) struct Failure(String);

impl From<donghanh_core::Error> for Failure {
    fn from(e: donghanh_core::Error) -> Self {
        Failure(messages::core_error(&e))
    }
}

type CliResult<T = ()> = Result<T, Failure>;

fn pin(cli: &Cli) -> CliResult<&str> {
    cli.pin.as_deref().ok_or_else(|| {
        Failure(messages::line(
            "cần mã PIN (--pin hoặc DONGHANH_PIN)",
            "a PIN is required (--pin or DONGHANH_PIN)",
        ))
    })
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

pub(crate) fn init_device(dir: &Path, pin: &str) -> CliResult<Device> {
    let store = Device::store_path(dir);
    if store.exists() {
        return Err(donghanh_core::Error::AlreadyInitialised(store).into());
    }
    std::fs::create_dir_all(dir).map_err(|e| Failure(messages::io_error(&e)))?;
    let key = key_path(dir);
    let keystore = FileKeyStore::create(&key).map_err(|e| Failure(messages::keystore_error(&e)))?;
    Device::init(dir, &keystore, pin).map_err(|e| {
        // The key protects nothing yet: remove it so that init can be run again.
        let _ = std::fs::remove_file(&key);
        e.into()
    })
}

pub(crate) fn open_device(dir: &Path, pin: &str) -> CliResult<Device> {
    if !Device::store_path(dir).exists() {
        return Err(donghanh_core::Error::NoStore(Device::store_path(dir)).into());
    }
    Ok(Device::open(dir, &FileKeyStore::open(key_path(dir)), pin)?)
}

/// Keeps one item per line whatever the user typed into a free-text field.
fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t")
}

fn person_line(p: &Person) -> String {
    format!(
        "{}\t{}\t{}\t{}",
        p.id,
        one_line(&p.full_name),
        p.birth_date,
        p.sex
    )
}

/// An optional day as printed in a list: `-` when there is none.
fn opt_day(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| d.to_string())
}

/// Optional free text as printed in a list: `-` when there is none.
fn opt_text(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_owned(), one_line)
}

fn episode_cmd(device: &Device, cmd: &EpisodeCmd) -> CliResult {
    match cmd {
        EpisodeCmd::Add {
            person,
            kind,
            start,
            after,
        } => {
            let kind = match kind {
                KindArg::PostRehab => EpisodeKind::PostRehab,
                KindArg::DrugUser => EpisodeKind::DrugUserManagement,
                KindArg::HomeRehab => EpisodeKind::VoluntaryHomeRehab,
                KindArg::CommunityRehab => EpisodeKind::VoluntaryCommunityRehab,
                KindArg::Ost => EpisodeKind::Ost,
            };
            let mut episode = Episode::new(*person, kind, *start);
            episode.after = after.map(Into::into);
            println!("{}", device.add_episode(&episode)?);
        }
        EpisodeCmd::List { person } => {
            for e in device.episodes(*person)? {
                println!("{}\t{}\t{}\t{}", e.id, e.kind, e.start, e.status);
            }
        }
        EpisodeCmd::Propose(EpisodeOn { id, on }) => {
            device.propose_episode(*id, *on)?;
        }
        EpisodeCmd::Activate(EpisodeOn { id, on }) => {
            device.activate_episode(*id, *on)?;
        }
        EpisodeCmd::Complete(EpisodeOn { id, on }) => {
            device.complete_episode(*id, *on)?;
        }
        EpisodeCmd::Terminate {
            at: EpisodeOn { id, on },
            reason,
        } => {
            device.terminate_episode(*id, (*reason).into(), *on)?;
        }
        EpisodeCmd::Relapse {
            id,
            detected,
            determined_by,
            on,
            note,
        } => {
            // The person is taken from the episode by the core.
            let mut relapse = RelapseEvent::new(*id, *id, *detected, determined_by.clone(), *on);
            relapse.note.clone_from(note);
            println!("{}", device.record_relapse(&relapse)?);
        }
    }
    Ok(())
}

fn support_cmd(device: &Device, cmd: &Command) -> CliResult {
    let me = device.enrollment()?.map(|(_, user)| Id::from(user));
    match cmd {
        Command::DrugTest(DrugTestCmd::Add {
            person,
            result,
            kind,
            method,
            at,
            note,
        }) => {
            let mut t = DrugTest::new(
                *person,
                at.unwrap_or_else(Utc::now),
                (*kind).into(),
                (*method).into(),
                (*result).into(),
            );
            t.note.clone_from(note);
            t.performed_by = me;
            device.person(*person)?;
            println!("{}", device.add_record(&t)?);
        }
        Command::DrugTest(DrugTestCmd::List { person }) => {
            for t in device.drug_tests(*person)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.at.to_rfc3339(),
                    t.kind,
                    t.method,
                    t.result,
                    opt_text(t.note.as_deref())
                );
            }
        }
        Command::Benefit(BenefitCmd::Add {
            person,
            kind,
            amount,
            on,
            note,
        }) => {
            let mut b = SupportBenefit::new(*person, (*kind).into(), *amount, *on);
            b.note.clone_from(note);
            device.person(*person)?;
            println!("{}", device.add_record(&b)?);
        }
        Command::Benefit(BenefitCmd::List { person }) => {
            for b in device.support_benefits(*person)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    b.id,
                    b.on,
                    b.kind,
                    b.amount_vnd,
                    opt_text(b.note.as_deref())
                );
            }
        }
        Command::Referral(ReferralCmd::Add {
            person,
            to,
            sent,
            note,
        }) => {
            let mut r = Referral::new(*person, (*to).into(), *sent);
            r.note.clone_from(note);
            device.person(*person)?;
            println!("{}", device.add_record(&r)?);
        }
        Command::Referral(ReferralCmd::List { person }) => {
            for r in device.referrals(*person)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.sent_on,
                    r.to,
                    r.status,
                    opt_day(r.status_on),
                    opt_text(r.note.as_deref())
                );
            }
        }
        Command::Referral(ReferralCmd::Update { id, status, on }) => {
            device.update_referral(*id, (*status).into(), *on)?;
        }
        _ => {}
    }
    Ok(())
}

fn conflict_line(c: &Conflict) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        c.id,
        c.record_id,
        c.kind,
        c.field,
        opt_text(c.kept_text().as_deref()),
        opt_text(c.lost_text().as_deref()),
        c.lost_by_device,
        c.op_id
    )
}

fn run(cli: &Cli) -> CliResult {
    let dir = cli.data.as_path();
    match &cli.command {
        Command::Init => {
            init_device(dir, pin(cli)?)?;
            println!("{}", Device::store_path(dir).display());
        }
        Command::Demo => demo::run(dir, cli.pin.as_deref())?,
        Command::Enroll {
            server,
            username,
            password,
            label,
        } => {
            let pin = pin(cli)?;
            if Device::store_path(dir).exists() {
                return Err(
                    donghanh_core::Error::AlreadyInitialised(Device::store_path(dir)).into(),
                );
            }
            std::fs::create_dir_all(dir).map_err(|e| Failure(messages::io_error(&e)))?;
            let key = key_path(dir);
            let keystore =
                FileKeyStore::create(&key).map_err(|e| Failure(messages::keystore_error(&e)))?;
            Device::enroll(dir, &keystore, pin, server, username, password, label).map_err(
                |e| {
                    // Nothing is protected by the key yet: remove it so enrolment can be retried.
                    let _ = std::fs::remove_file(&key);
                    Failure::from(e)
                },
            )?;
            println!("{}", Device::store_path(dir).display());
        }
        Command::Sync => {
            let device = open_device(dir, pin(cli)?)?;
            let r = device.sync()?;
            println!(
                "pushed {} rejected {} pulled {} purged {}",
                r.pushed, r.rejected, r.pulled, r.purged
            );
        }
        Command::Person(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                PersonCmd::Add(a) => {
                    let mut p = Person::new(a.name.clone(), a.birth, a.sex);
                    p.phone.clone_from(&a.phone);
                    p.address.clone_from(&a.address);
                    p.id_number.clone_from(&a.id_number);
                    println!("{}", device.add_person(&p)?);
                }
                PersonCmd::Find { text } => {
                    for p in device.find_people(text)? {
                        println!("{}", person_line(&p));
                    }
                }
                PersonCmd::List => {
                    for p in device.people()? {
                        println!("{}", person_line(&p));
                    }
                }
                PersonCmd::Show { id } => {
                    let p = device.person(*id)?;
                    println!("{}", person_line(&p));
                    for (label, value) in [
                        ("phone", &p.phone),
                        ("address", &p.address),
                        ("id_number", &p.id_number),
                    ] {
                        if let Some(v) = value {
                            println!("{label}\t{}", one_line(v));
                        }
                    }
                }
            }
        }
        Command::Episode(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            episode_cmd(&device, cmd)?;
        }
        Command::DrugTest(_) | Command::Benefit(_) | Command::Referral(_) => {
            let device = open_device(dir, pin(cli)?)?;
            support_cmd(&device, &cli.command)?;
        }
        Command::Conflict(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                ConflictCmd::List => {
                    for c in device.conflicts()? {
                        println!("{}", conflict_line(&c));
                    }
                }
                ConflictCmd::Resolve { id, restore } => {
                    device.resolve_conflict(id.uuid(), *restore)?;
                }
            }
        }
        Command::Visit(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                VisitCmd::Add {
                    person,
                    notes,
                    at,
                    mode,
                } => {
                    let mut v = Visit::new(*person, at.unwrap_or_else(Utc::now), notes.clone());
                    v.mode = match mode {
                        ModeArg::Home => VisitMode::Home,
                        ModeArg::Phone => VisitMode::Phone,
                        ModeArg::AtPoint => VisitMode::AtPoint,
                    };
                    println!("{}", device.add_visit(&v)?);
                }
                VisitCmd::List { person } => {
                    for v in device.visits(*person)? {
                        println!(
                            "{}\t{}\t{}\t{}",
                            v.id,
                            v.at.to_rfc3339(),
                            v.mode,
                            one_line(&v.observations)
                        );
                    }
                }
            }
        }
        Command::Task(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                TaskCmd::Add {
                    person,
                    due,
                    reason,
                    assignee,
                } => {
                    let mut t = FollowUpTask::new(*person, *due, reason.clone());
                    if let Some(username) = assignee {
                        t.assignee = Some(Id::from(device.colleague(username)?.id));
                    }
                    t.created_by = device.enrollment()?.map(|(_, user)| Id::from(user));
                    println!("{}", device.add_task(&t)?);
                }
                TaskCmd::List { all } => {
                    let tasks = match device.enrollment()? {
                        Some((_, user)) if !all => device.tasks_for(Id::from(user))?,
                        // Not enrolled (the offline demo): every open task is this user's.
                        _ => device.open_tasks()?,
                    };
                    for t in tasks {
                        println!("{}\t{}\t{}\t{}", t.id, t.due, t.person, one_line(&t.reason));
                    }
                }
                TaskCmd::Done { id } => device.complete_task(*id)?,
            }
        }
        Command::Caseload => {
            let device = open_device(dir, pin(cli)?)?;
            for e in device.caseload()? {
                let d = |d: Option<NaiveDate>| d.map_or_else(|| "-".to_owned(), |d| d.to_string());
                println!(
                    "{}\t{}\tnext-due={}\tlast-visit={}",
                    e.person.id,
                    one_line(&e.person.full_name),
                    d(e.next_due),
                    d(e.last_visit)
                );
            }
        }
        Command::Pending => {
            let device = open_device(dir, pin(cli)?)?;
            println!("{}", device.pending_changes()?);
        }
        Command::Report {
            period,
            template,
            json,
            out,
            unit_name,
        } => {
            let device = open_device(dir, pin(cli)?)?;
            let period =
                donghanh_core::report::Period::parse(period).map_err(donghanh_core::Error::from)?;
            let template = match template {
                Some(t) => t.clone(),
                None => period
                    .kind()
                    .default_template()
                    .ok_or(donghanh_core::Error::from(
                        donghanh_core::report::ReportError::UnknownTemplate("-".into()),
                    ))?
                    .to_owned(),
            };
            let report = device.report(&template, period)?;
            if let Some(out) = out {
                let labels = donghanh_core::report::export::Labels {
                    org_name: unit_name.clone(),
                    ..Default::default()
                };
                let bytes = match export_format(out)? {
                    ExportFormat::Xlsx => donghanh_core::report::export::to_xlsx(&report, &labels),
                    ExportFormat::Csv => donghanh_core::report::export::to_csv(&report, &labels),
                }
                .map_err(donghanh_core::Error::from)?;
                write_new_file(out, &bytes)?;
                println!("{}", out.display());
            } else if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|_| donghanh_core::Error::CorruptKeys)?
                );
            } else {
                print!("{}", report.to_text());
            }
        }
        Command::Book {
            book,
            as_of,
            purpose,
            out,
            unit_name,
        } => {
            use donghanh_core::report::books;
            let kind = books::BookKind::parse(book).map_err(donghanh_core::Error::from)?;
            let format = export_format(out)?;
            // The file first: a place that cannot be written fails before anyone is logged.
            let tmp = new_file_beside(out)?;
            let device = open_device(dir, pin(cli)?)?;
            let as_of = as_of.unwrap_or_else(|| donghanh_core::domain::vn_date(Utc::now()));
            let lines = device.book(kind, as_of, purpose)?;
            let labels = donghanh_core::report::export::Labels {
                org_name: unit_name.clone(),
                ..Default::default()
            };
            let bytes = match format {
                ExportFormat::Xlsx => books::to_xlsx(kind, &lines, &labels, as_of),
                ExportFormat::Csv => books::to_csv(kind, &lines),
            }
            .map_err(donghanh_core::Error::from)?;
            finish_new_file(tmp, out, &bytes)?;
            println!("{}\t{}", out.display(), lines.len());
        }
        Command::Rejected => {
            let device = open_device(dir, pin(cli)?)?;
            for r in device.store().read(|r| r.rejected())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    r.client_seq,
                    r.kind,
                    r.record_id,
                    r.code,
                    one_line(&r.message)
                );
            }
        }
        Command::Case(CaseCmd::Assign { person, to }) => {
            let device = open_device(dir, pin(cli)?)?;
            let me = device.user_id()?;
            let helper = device.colleague(to)?;
            println!("{}", device.assign_case(*person, Id::from(helper.id), me)?);
        }
        Command::Session(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                SessionCmd::Add {
                    point,
                    kind,
                    topic,
                    at,
                } => {
                    let kind = match kind {
                        SessionKindArg::Individual => SessionKind::Individual,
                        SessionKindArg::Group => SessionKind::Group,
                        SessionKindArg::Club => SessionKind::Club,
                        SessionKindArg::Training => SessionKind::Training,
                    };
                    let mut session =
                        Session::new(*point, kind, topic.clone(), at.unwrap_or_else(Utc::now));
                    if let Some((_, me)) = device.enrollment()? {
                        session.facilitators.push(Id::from(me));
                    }
                    println!("{}", device.add_session(&session)?);
                }
                SessionCmd::Hold { id } => {
                    device.hold_session(*id)?;
                }
                SessionCmd::Cancel { id } => {
                    device.cancel_session(*id)?;
                }
                SessionCmd::List => {
                    for s in device.sessions()? {
                        println!(
                            "{}\t{}\t{}\t{}\t{}\t{}",
                            s.id,
                            s.point,
                            s.at.to_rfc3339(),
                            s.kind,
                            s.status,
                            one_line(&s.topic)
                        );
                    }
                }
            }
        }
        Command::Attendance(cmd) => {
            let device = open_device(dir, pin(cli)?)?;
            match cmd {
                AttendanceCmd::Mark {
                    session,
                    person,
                    walk_ins,
                    status,
                } => {
                    let attendee = match (person, walk_ins) {
                        (Some(p), _) => Attendee::Person(*p),
                        (None, Some(n)) => Attendee::WalkIns(*n),
                        (None, None) => {
                            return Err(Failure(messages::line(
                                "cần --person hoặc --walk-ins",
                                "--person or --walk-ins is required",
                            )));
                        }
                    };
                    let status = match status {
                        StatusArg::Present => AttendanceStatus::Present,
                        StatusArg::Late => AttendanceStatus::Late,
                        StatusArg::LeftEarly => AttendanceStatus::LeftEarly,
                    };
                    println!("{}", device.mark_attendance(*session, attendee, status)?);
                }
                AttendanceCmd::List { session } => {
                    for a in device.attendance(*session)? {
                        let who = match a.attendee {
                            Attendee::Person(p) => p.to_string(),
                            Attendee::WalkIns(n) => format!("walk-ins={n}"),
                        };
                        println!("{}\t{}\t{}", a.id, who, a.status);
                    }
                }
            }
        }
        Command::Supervision(SupervisionCmd::Add { volunteer, notes }) => {
            let device = open_device(dir, pin(cli)?)?;
            let me = device.user_id()?;
            let v = device.colleague(volunteer)?;
            let mut note = SupervisionNote::new(
                Id::from(v.org_unit),
                me,
                Id::from(v.id),
                vn_date(Utc::now()),
            );
            note.concerns.clone_from(notes);
            println!("{}", device.add_supervision_note(&note)?);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            eprintln!("{}", messages::usage_error(&e));
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(line)) => {
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
