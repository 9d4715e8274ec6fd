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
    Episode, EpisodeKind, FollowUpTask, Id, Person, Sex, Visit, VisitMode,
};
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
    },
    /// A person's episodes.
    List {
        /// The person's id.
        #[arg(long, value_parser = parse_id)]
        person: Id,
    },
}

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
    },
    /// Open tasks, earliest due first.
    List,
    /// Mark a task done.
    Done {
        /// The task's id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

fn parse_id(s: &str) -> Result<Id, String> {
    s.parse()
        .map_err(|_| "not a valid id / mã không hợp lệ".to_owned())
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| "expected a date YYYY-MM-DD / cần ngày dạng YYYY-MM-DD".to_owned())
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| "expected an RFC 3339 time such as 2026-11-20T09:30:00+07:00".to_owned())
}

fn parse_sex(s: &str) -> Result<Sex, String> {
    s.parse()
        .map_err(|_| "expected female|male (nữ|nam)".to_owned())
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
            match cmd {
                EpisodeCmd::Add {
                    person,
                    kind,
                    start,
                } => {
                    let kind = match kind {
                        KindArg::PostRehab => EpisodeKind::PostRehab,
                        KindArg::DrugUser => EpisodeKind::DrugUserManagement,
                        KindArg::HomeRehab => EpisodeKind::VoluntaryHomeRehab,
                        KindArg::CommunityRehab => EpisodeKind::VoluntaryCommunityRehab,
                        KindArg::Ost => EpisodeKind::Ost,
                    };
                    println!(
                        "{}",
                        device.add_episode(&Episode::new(*person, kind, *start))?
                    );
                }
                EpisodeCmd::List { person } => {
                    for e in device.episodes(*person)? {
                        println!("{}\t{}\t{}\t{}", e.id, e.kind, e.start, e.status);
                    }
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
                } => {
                    let t = FollowUpTask::new(*person, *due, reason.clone());
                    println!("{}", device.add_task(&t)?);
                }
                TaskCmd::List => {
                    for t in device.open_tasks()? {
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
