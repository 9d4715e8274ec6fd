//! `donghanh-server`: the command line of the sync server, a contract for scripts (README.md).
//!
//! A data directory holds `server.db` (SQLite) and `server.key` (the at-rest key, owner-only).
//! The first command run on a new directory creates both and an `admin` user whose one-time
//! password is printed once. With `--database postgres://…` (or `DONGHANH_DATABASE`), every
//! subcommand uses that PostgreSQL database instead, and the data directory holds only the key
//! (the same key file on every replica). Results go to stdout (ids, one per line); errors are one line on
//! stderr with a non-zero status. Logs (stderr) carry ids and counts, never names.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use donghanh_core::domain::{Id, OrgUnit, OrgUnitKind, Role, User};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::postgres::{self, PgConfig, PgStore};
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{StoredUser, SyncStore};
use donghanh_server::{AppState, Config, auth, serve};

#[derive(Parser, Debug)]
#[command(name = "donghanh-server", version, about = "The Đồng Hành sync server")]
struct Cli {
    /// Data directory (database and key).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "donghanh-data"
    )]
    data: PathBuf,
    /// The database: a PostgreSQL URL (`postgres://user:password@host:port/dbname`) for
    /// several replicas on one database; without it, the embedded SQLite file in the data
    /// directory. Every subcommand honours it.
    #[arg(
        long,
        global = true,
        env = "DONGHANH_DATABASE",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Connections each process keeps to PostgreSQL at most.
    #[arg(
        long,
        global = true,
        env = "DONGHANH_DATABASE_POOL",
        value_name = "N",
        default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..=1000)
    )]
    database_pool: u16,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the sync API.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// How long a device may keep its data without a successful sync (the key lease), in
        /// seconds; an offline device past it wipes itself.
        #[arg(long, default_value_t = 14 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
        key_lease_seconds: u64,
        /// Lifetime of an access token in seconds (default 900). At most a day: access tokens
        /// are meant to be short-lived, the device's refresh token buys the next one.
        #[arg(long, env = "DONGHANH_ACCESS_TTL_SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        access_ttl_seconds: Option<u64>,
        /// Failed logins allowed from one client address in 15 minutes, whatever usernames
        /// they try (default 100); then that address's logins are refused until the window
        /// passes. 0 turns the per-address limit off: do so behind a proxy that hides client
        /// addresses (the limit of 5 failures per username still applies).
        #[arg(long, env = "DONGHANH_LOGIN_ADDRESS_MAX_FAILURES")]
        login_address_max_failures: Option<u32>,
    },
    /// Create or upgrade the database to this build's schema, then exit.
    Migrate,
    /// Administration.
    #[command(subcommand)]
    Admin(Admin),
    /// Load a realistic demo commune (into a new data directory) and print the accounts to try.
    Demo,
    /// Plans and targets of an org unit.
    #[command(subcommand)]
    Plan(PlanCmd),
    /// Compute a report for an org unit and everything below it, for a period; prints it as
    /// text (Vietnamese, then English) or, with --json, as the API returns it.
    Report {
        /// The org unit (a commune, a province, …).
        #[arg(long, value_parser = parse_id)]
        org: Id,
        /// The period: 2026-10 (month), 2026-Q4, 2026-H2 (half-year) or 2026 (year).
        #[arg(long)]
        period: String,
        /// The template (default: 01-BCN for a month, PROVINCE-H for a half-year, PROVINCE-Y
        /// for a year).
        #[arg(long)]
        template: Option<String>,
        /// Print JSON instead of text.
        #[arg(long, conflicts_with = "out")]
        json: bool,
        /// Write the report to this file instead: `.xlsx` (laid out as the paper form) or
        /// `.csv`; an existing file is not replaced.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Close the period (it must be over): the report is kept as it is now and answers
        /// from then on.
        #[arg(long)]
        close: bool,
    },
}

#[derive(Subcommand, Debug)]
enum Admin {
    /// Org units.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Community points.
    #[command(subcommand)]
    Point(PointCmd),
    /// Users.
    #[command(subcommand)]
    User(UserCmd),
    /// Devices.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The server key (encryption at rest).
    #[command(subcommand)]
    Key(KeyCmd),
    /// Remove tombstones every active device has pulled past; prints `removed N horizon H`.
    Compact {
        /// Devices not seen for this many seconds no longer hold tombstones back (their key
        /// lease has run out and they wipe themselves).
        #[arg(long, default_value_t = 14 * 24 * 3600)]
        key_lease_seconds: u64,
    },
}

#[derive(Subcommand, Debug)]
enum PlanCmd {
    /// Set the plan of an org unit for a period (replaces the one set before). Each --target
    /// is CODE>=N or CODE<=N: a whole count, or a percentage for a ratio indicator
    /// (`--target VR_NEW>=17 --target STAFF_TRAINED_PCT>=70`).
    Set {
        /// The org unit.
        #[arg(long, value_parser = parse_id)]
        org: Id,
        /// The period (usually a year: 2026).
        #[arg(long)]
        period: String,
        /// A public title.
        #[arg(long, default_value = "")]
        title: String,
        /// Targets.
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
    },
    /// Show a plan's progress to a day (default today): one line per target,
    /// `code⇥value⇥goal⇥status⇥difference`.
    Show {
        /// The org unit.
        #[arg(long, value_parser = parse_id)]
        org: Id,
        /// The plan's period.
        #[arg(long)]
        period: String,
        /// Count to this day (YYYY-MM-DD).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
}

fn parse_target(text: &str) -> Result<donghanh_core::report::Target, String> {
    use donghanh_core::report::{Goal, Target};
    let bad = || "a target is CODE>=N or CODE<=N".to_owned();
    let (code, goal) = if let Some((c, n)) = text.split_once(">=") {
        (c, Goal::AtLeast(n.trim().parse().map_err(|_| bad())?))
    } else if let Some((c, n)) = text.split_once("<=") {
        (c, Goal::AtMost(n.trim().parse().map_err(|_| bad())?))
    } else {
        return Err(bad());
    };
    Ok(Target {
        indicator: code.trim().to_owned(),
        goal,
    })
}

#[derive(Subcommand, Debug)]
enum KeyCmd {
    /// Rotate the at-rest key: add a new key, re-seal every row with it, retire the old ones.
    /// Stop the server first. Prints `rotated to key K, resealed N rows`.
    Rotate,
}

#[derive(Subcommand, Debug)]
enum AuditCmd {
    /// Recompute the hash chain: prints `intact N` (exit 0) or `broken at SEQ` (exit 1).
    Verify,
}

#[derive(Subcommand, Debug)]
enum OrgCmd {
    /// Add an org unit; prints its id. Without --kind: a root is a province, under a province a
    /// commune, under a commune a team, elsewhere `other`.
    Add {
        /// Name (public).
        #[arg(long)]
        name: String,
        /// Parent unit.
        #[arg(long, value_parser = parse_id)]
        parent: Option<Id>,
        /// Kind of unit.
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
    },
    /// List org units: id, kind, parent, name.
    List,
}

#[derive(Subcommand, Debug)]
enum PointCmd {
    /// Add a community point under a commune; prints its id.
    Add {
        /// Name (public).
        #[arg(long)]
        name: String,
        /// The commune.
        #[arg(long, value_parser = parse_id)]
        org: Id,
    },
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Record when a user was last trained for post-rehab work (the staff-trained
    /// indicator); `--on none` clears it.
    Trained {
        /// The user's id.
        #[arg(long, value_parser = parse_id)]
        id: Id,
        /// The day (YYYY-MM-DD) or `none`.
        #[arg(long)]
        on: String,
    },
    /// Add a user; prints the id.
    Add {
        /// Login name: 3–64 of a-z 0-9 . _ -
        #[arg(long)]
        username: String,
        /// Initial password.
        #[arg(long, env = "DONGHANH_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Org unit the user works in.
        #[arg(long, value_parser = parse_id)]
        org: Id,
        /// Community point (counsellors).
        #[arg(long, value_parser = parse_id)]
        point: Option<Id>,
        /// Name shown to colleagues (default: the username).
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum DeviceCmd {
    /// Revoke a device: it is refused from now on and told to wipe.
    Revoke {
        /// The device id.
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum KindArg {
    Province,
    Commune,
    Team,
    CommunityPoint,
    Other,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    Volunteer,
    Counsellor,
    Supervisor,
    Officer,
    Admin,
}

fn parse_id(s: &str) -> Result<Id, String> {
    s.parse().map_err(|_| "not a valid id".to_owned())
}

type CliResult<T = ()> = Result<T, String>;

/// Where the data lives, from the command line.
struct Location {
    dir: PathBuf,
    postgres: Option<PgConfig>,
}

impl Location {
    fn of(cli: &Cli) -> CliResult<Location> {
        let postgres = match &cli.database {
            None => None,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(PgConfig {
                    url: url.clone(),
                    pool_size: usize::from(cli.database_pool),
                })
            }
            Some(_) => return Err("--database must be a postgres:// URL".into()),
        };
        Ok(Location {
            dir: cli.data.clone(),
            postgres,
        })
    }
}

/// Opens the SQLite data directory, creating it (key, database, admin) on first use.
async fn open_sqlite(dir: &Path) -> CliResult<SqliteStore> {
    let db = dir.join("server.db");
    let key = dir.join("server.key");
    if db.exists() {
        let keys = ServerKeys::load(&key).map_err(|e| e.to_string())?;
        return SqliteStore::open(&db, keys).map_err(|e| e.to_string());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let keys = ServerKeys::create(&key).map_err(|e| e.to_string())?;
    let store = SqliteStore::open(&db, keys).map_err(|e| e.to_string())?;
    let (root, admin, password) = first_admin().await?;
    store.add_org_unit(root).await.map_err(|e| e.to_string())?;
    store.add_user(admin).await.map_err(|e| e.to_string())?;
    eprintln!(
        "created {} — admin login: admin / {password} (shown once; keep it safe)",
        dir.display()
    );
    Ok(store)
}

/// The root unit and the `admin` user of a new server, and the admin's one-time password.
async fn first_admin() -> CliResult<(OrgUnit, StoredUser, String)> {
    let password = auth::new_token().map_err(|e| e.to_string())?;
    let root = OrgUnit::new("Quản trị hệ thống / System", OrgUnitKind::Other, None);
    let admin = User::new("admin", "Administrator", Role::Admin, root.id);
    let hashed = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || auth::hash_password(&hashed))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok((
        root,
        StoredUser {
            user: admin,
            password_hash,
        },
        password,
    ))
}

/// Opens a PostgreSQL database with the key of the data directory: migrates it, checks the
/// key against it, and on a new database creates the key (unless the database already holds a
/// server: a missing key is never regenerated), the root unit and the `admin` user.
async fn open_postgres(dir: &Path, config: &PgConfig) -> CliResult<PgStore> {
    let key = dir.join("server.key");
    let keys = if key.exists() {
        ServerKeys::load(&key).map_err(|e| e.to_string())?
    } else {
        if postgres::holds_a_server(config)
            .await
            .map_err(|e| e.to_string())?
        {
            return Err(donghanh_server::secrets::SecretError::KeyMissing.to_string());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        ServerKeys::create(&key).map_err(|e| e.to_string())?
    };
    let store = PgStore::connect(config, keys)
        .await
        .map_err(|e| e.to_string())?;
    if store.has_no_user().await.map_err(|e| e.to_string())? {
        let (root, admin, password) = first_admin().await?;
        if store
            .bootstrap_admin(root, admin)
            .await
            .map_err(|e| e.to_string())?
        {
            eprintln!(
                "created the server in the database — admin login: admin / {password} \
                 (shown once; keep it safe)"
            );
        }
    }
    Ok(store)
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

fn infer_kind(units: &[OrgUnit], parent: Option<Id>) -> OrgUnitKind {
    match parent
        .and_then(|p| units.iter().find(|u| u.id == p))
        .map(|u| u.kind)
    {
        None => OrgUnitKind::Province,
        Some(OrgUnitKind::Province) => OrgUnitKind::Commune,
        Some(OrgUnitKind::Commune) => OrgUnitKind::Team,
        Some(_) => OrgUnitKind::Other,
    }
}

/// Rotates the at-rest key (see `secrets`): the new key is in the file before any row uses
/// it; old keys leave only after the re-seal committed. A failure at any step leaves a data
/// directory that opens: run the command again. With PostgreSQL, stop every replica first and
/// copy the new key file to each before starting them again.
async fn rotate_key(at: &Location) -> CliResult {
    let key = at.dir.join("server.key");
    let (id, resealed) = match &at.postgres {
        None => {
            let db = at.dir.join("server.db");
            if !db.exists() {
                return Err(format!("no server database in {}", at.dir.display()));
            }
            let keys = ServerKeys::add_key(&key).map_err(|e| e.to_string())?;
            let id = keys.current_key_id();
            let store = SqliteStore::open(&db, keys).map_err(|e| e.to_string())?;
            let resealed = store.reseal_all().await.map_err(|e| e.to_string())?;
            (id, resealed)
        }
        Some(config) => {
            if !key.exists() {
                return Err(donghanh_server::secrets::SecretError::KeyMissing.to_string());
            }
            let keys = ServerKeys::add_key(&key).map_err(|e| e.to_string())?;
            let id = keys.current_key_id();
            let store = PgStore::connect(config, keys)
                .await
                .map_err(|e| e.to_string())?;
            let resealed = store.reseal_all().await.map_err(|e| e.to_string())?;
            (id, resealed)
        }
    };
    ServerKeys::retire_keys(&key).map_err(|e| e.to_string())?;
    println!("rotated to key {id}, resealed {resealed} rows");
    Ok(())
}

fn run(cli: Cli) -> CliResult {
    let at = Location::of(&cli)?;
    let rt = runtime()?;
    rt.block_on(async move {
        if matches!(cli.command, Command::Admin(Admin::Key(KeyCmd::Rotate))) {
            return rotate_key(&at).await;
        }
        match &at.postgres {
            None => run_command(open_sqlite(&at.dir).await?, cli.command).await,
            Some(config) => run_command(open_postgres(&at.dir, config).await?, cli.command).await,
        }
    })
}

/// Runs one subcommand on an open store, whichever the backend.
async fn run_command<S: SyncStore>(store: S, command: Command) -> CliResult {
    {
        match command {
            Command::Migrate => {
                println!("database at the latest schema");
                Ok(())
            }
            Command::Admin(Admin::Key(KeyCmd::Rotate)) => Err("handled above".into()),
            Command::Admin(Admin::Compact { key_lease_seconds }) => {
                let removed = store
                    .compact(chrono::Utc::now(), key_lease_seconds)
                    .await
                    .map_err(|e| e.to_string())?;
                let horizon = store.tombstone_horizon().await.map_err(|e| e.to_string())?;
                println!("removed {removed} horizon {horizon}");
                Ok(())
            }
            Command::Serve {
                listen,
                key_lease_seconds,
                access_ttl_seconds,
                login_address_max_failures,
            } => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let defaults = Config::default();
                let config = Config {
                    key_lease_seconds,
                    access_ttl_seconds: access_ttl_seconds.unwrap_or(defaults.access_ttl_seconds),
                    login_address_max_failures: login_address_max_failures
                        .unwrap_or(defaults.login_address_max_failures),
                    ..defaults
                };
                let state = AppState::new(store, config).map_err(|e| e.to_string())?;
                tracing::info!(%addr, "serving");
                println!("listening on {addr}");
                serve(listener, state, shutdown_signal())
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Report {
                org,
                period,
                template,
                json,
                out,
                close,
            } => {
                let csv = match out.as_deref().map(|o| {
                    o.extension()
                        .and_then(|e| e.to_str())
                        .map(str::to_ascii_lowercase)
                }) {
                    None => None,
                    Some(Some(e)) if e == "csv" => Some(true),
                    Some(Some(e)) if e == "xlsx" => Some(false),
                    Some(_) => return Err("the export file must end in .xlsx or .csv".into()),
                };
                if out.as_deref().is_some_and(Path::exists) {
                    return Err("the export file already exists and is not replaced".into());
                }
                let period =
                    donghanh_core::report::Period::parse(&period).map_err(|e| e.to_string())?;
                let template = template
                    .or_else(|| period.kind().default_template().map(str::to_owned))
                    .ok_or("name a --template for a quarter")?;
                let report = if close {
                    donghanh_server::reports::close(
                        &store,
                        None,
                        org,
                        &template,
                        period,
                        chrono::Utc::now(),
                    )
                    .await
                } else {
                    donghanh_server::reports::compute(&store, None, org, &template, period).await
                }
                .map_err(|e| e.to_string())?;
                if let (Some(out), Some(csv)) = (&out, csv) {
                    let labels = donghanh_server::reports::labels(&store, org)
                        .await
                        .map_err(|e| e.to_string())?;
                    let bytes = if csv {
                        donghanh_core::report::export::to_csv(&report, &labels)
                    } else {
                        donghanh_core::report::export::to_xlsx(&report, &labels)
                    }
                    .map_err(|e| e.to_string())?;
                    write_new_file(out, &bytes)?;
                    println!("{}", out.display());
                } else if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                    );
                } else {
                    print!("{}", report.to_text());
                }
                Ok(())
            }
            Command::Plan(PlanCmd::Set {
                org,
                period,
                title,
                targets,
            }) => {
                let period =
                    donghanh_core::report::Period::parse(&period).map_err(|e| e.to_string())?;
                let targets = targets
                    .iter()
                    .map(|t| parse_target(t))
                    .collect::<Result<Vec<_>, _>>()?;
                let plan = donghanh_core::report::Plan {
                    org,
                    period,
                    title,
                    targets,
                };
                donghanh_server::reports::set_plan(&store, None, plan, chrono::Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                println!("plan set");
                Ok(())
            }
            Command::Plan(PlanCmd::Show {
                org,
                period,
                as_of,
                json,
            }) => {
                let period =
                    donghanh_core::report::Period::parse(&period).map_err(|e| e.to_string())?;
                let as_of =
                    as_of.unwrap_or_else(|| donghanh_core::domain::vn_date(chrono::Utc::now()));
                let progress =
                    donghanh_server::reports::plan_progress(&store, None, org, period, as_of)
                        .await
                        .map_err(|e| e.to_string())?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&progress).map_err(|e| e.to_string())?
                    );
                } else {
                    for t in &progress.targets {
                        let goal = match t.goal {
                            donghanh_core::report::Goal::AtLeast(n) => format!(">={n}"),
                            donghanh_core::report::Goal::AtMost(n) => format!("<={n}"),
                        };
                        let status = serde_json::to_value(t.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        let diff = t
                            .difference
                            .map_or_else(|| "-".to_owned(), |d| d.to_string());
                        println!(
                            "{}\t{}\t{goal}\t{status}\t{diff}",
                            t.indicator,
                            t.value.to_text()
                        );
                    }
                }
                Ok(())
            }
            Command::Admin(Admin::User(UserCmd::Trained { id, on })) => {
                let on = if on == "none" {
                    None
                } else {
                    Some(
                        on.parse::<chrono::NaiveDate>()
                            .map_err(|_| "--on is YYYY-MM-DD or none")?,
                    )
                };
                store.set_trained(id, on).await.map_err(|e| e.to_string())?;
                Ok(())
            }
            Command::Demo => {
                if store
                    .user_by_username("gs.minh")
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Err("the demo is already loaded in this data directory".into());
                }
                let accounts = donghanh_server::demo::load(&store).await?;
                println!(
                    "Demo commune loaded. Password for every account: {}",
                    donghanh_server::demo::DEMO_PASSWORD
                );
                for a in accounts {
                    println!("{}\t{}\t{}", a.username, a.role, a.note);
                }
                Ok(())
            }
            Command::Admin(Admin::Org(OrgCmd::Add { name, parent, kind })) => {
                let units = store.org_units().await.map_err(|e| e.to_string())?;
                let kind = match kind {
                    Some(KindArg::Province) => OrgUnitKind::Province,
                    Some(KindArg::Commune) => OrgUnitKind::Commune,
                    Some(KindArg::Team) => OrgUnitKind::Team,
                    Some(KindArg::CommunityPoint) => OrgUnitKind::CommunityPoint,
                    Some(KindArg::Other) => OrgUnitKind::Other,
                    None => infer_kind(&units, parent),
                };
                let unit = OrgUnit::new(name, kind, parent);
                store
                    .add_org_unit(unit.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", unit.id);
                Ok(())
            }
            Command::Admin(Admin::Org(OrgCmd::List)) => {
                for u in store.org_units().await.map_err(|e| e.to_string())? {
                    let parent = u.parent.map_or_else(|| "-".to_owned(), |p| p.to_string());
                    println!("{}\t{}\t{}\t{}", u.id, u.kind, parent, u.name);
                }
                Ok(())
            }
            Command::Admin(Admin::Point(PointCmd::Add { name, org })) => {
                let unit = OrgUnit::new(name, OrgUnitKind::CommunityPoint, Some(org));
                store
                    .add_org_unit(unit.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", unit.id);
                Ok(())
            }
            Command::Admin(Admin::User(UserCmd::Add {
                username,
                password,
                role,
                org,
                point,
                display_name,
            })) => {
                let role = match role {
                    RoleArg::Volunteer => Role::Volunteer,
                    RoleArg::Counsellor => Role::Counsellor,
                    RoleArg::Supervisor => Role::Supervisor,
                    RoleArg::Officer => Role::Officer,
                    RoleArg::Admin => Role::Admin,
                };
                if password.chars().count() < 8 {
                    return Err("the password must have at least 8 characters".into());
                }
                let display = display_name.unwrap_or_else(|| username.clone());
                let mut user = User::new(username, display, role, org);
                user.point = point;
                let password_hash =
                    tokio::task::spawn_blocking(move || auth::hash_password(&password))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                store
                    .add_user(StoredUser {
                        user: user.clone(),
                        password_hash,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                println!("{}", user.id);
                Ok(())
            }
            Command::Admin(Admin::Audit(AuditCmd::Verify)) => {
                match store.verify_audit().await.map_err(|e| e.to_string())? {
                    donghanh_server::audit::Verdict::Intact { entries } => {
                        println!("intact {entries}");
                        Ok(())
                    }
                    donghanh_server::audit::Verdict::BrokenAt { seq } => {
                        Err(format!("the audit log is broken at entry {seq}"))
                    }
                }
            }
            Command::Admin(Admin::Device(DeviceCmd::Revoke { id })) => store
                .revoke_device(id, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `bytes` to `path`, which must not exist, all or nothing: a temporary file beside it,
/// synced, then linked into place without replacing anything.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // By kind only: an I/O error's own text names the path, which may hold a typed name.
    let io = |e: std::io::Error| format!("file error: {}", std::io::Error::from(e.kind()));
    let mut tmp = tempfile::NamedTempFile::new_in(&parent).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist_noclobber(path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            "the export file already exists and is not replaced".to_owned()
        } else {
            io(e.error)
        }
    })?;
    Ok(())
}
