//! A throwaway PostgreSQL for tests and benchmarks: a fresh database on a cluster that
//! `scripts/test` started (`DONGHANH_TEST_DATABASE_URL`), or else on a cluster of its own
//! (initdb on a temporary directory, `pg_ctl` on 127.0.0.1 on a free port), stopped and
//! deleted when dropped.
//!
//! initdb refuses to run as root: as root, the cluster is created and run as the `postgres`
//! user (`runuser`), which Debian's `postgresql` package creates. Without PostgreSQL binaries a
//! test is skipped with a message, except in CI (`CI` set), where PostgreSQL is required and
//! its absence fails the test.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming a running cluster's `postgres` database, as a URL.
pub const URL_VAR: &str = "DONGHANH_TEST_DATABASE_URL";
/// The environment variable naming that cluster's directory (for tests that read its files).
pub const DIR_VAR: &str = "DONGHANH_TEST_DATABASE_DIR";

/// A database for one test: its URL, and the cluster it lives on when the test owns one.
#[derive(Debug)]
pub struct TestDatabase {
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub url: String,
    /// The cluster, when started for this database (stopped on drop).
    pub cluster: Option<TempCluster>,
    /// The cluster's directory (its files), when known: this test's own cluster, or
    /// `DONGHANH_TEST_DATABASE_DIR` beside `DONGHANH_TEST_DATABASE_URL`.
    pub files: Option<PathBuf>,
}

/// A fresh, empty database, or `None` (with a message on stderr) when no PostgreSQL is
/// installed outside CI. Panics in CI without PostgreSQL, or when a cluster fails to start.
#[must_use]
pub fn test_database(test: &str) -> Option<TestDatabase> {
    test_database_with(test, &[])
}

/// [`test_database`] on a cluster started with extra server settings (`-c name=value` each)
/// when it starts one.
#[must_use]
#[allow(clippy::panic)]
pub fn test_database_with(test: &str, settings: &[&str]) -> Option<TestDatabase> {
    let name = format!("dh_{}", uuid::Uuid::new_v4().simple());
    if let Ok(admin) = std::env::var(URL_VAR)
        && !admin.is_empty()
    {
        if let Err(e) = create_database(&admin, &name) {
            panic!("cannot create a test database on {URL_VAR}: {e}");
        }
        return Some(TestDatabase {
            url: with_database(&admin, &name),
            cluster: None,
            files: std::env::var_os(DIR_VAR).map(PathBuf::from),
        });
    }
    let Some(bin) = binaries() else {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: PostgreSQL is required in CI, and no initdb/pg_ctl was found");
        }
        eprintln!(
            "skipping {test}: no PostgreSQL binaries (install Debian's `postgresql`, or set \
             {URL_VAR})"
        );
        return None;
    };
    let cluster = match TempCluster::start(&bin, settings) {
        Ok(c) => c,
        Err(e) => panic!("{test}: cannot start a temporary PostgreSQL: {e}"),
    };
    let admin = cluster.url("postgres");
    if let Err(e) = create_database(&admin, &name) {
        panic!("{test}: cannot create a test database: {e}");
    }
    Some(TestDatabase {
        url: cluster.url(&name),
        files: Some(cluster.dir.clone()),
        cluster: Some(cluster),
    })
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let head = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// Creates a database through `admin_url` (a blocking call on a runtime of its own, so that
/// it works inside and outside async tests).
pub fn create_database(admin_url: &str, name: &str) -> Result<(), String> {
    let admin_url = admin_url.to_owned();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
            let task = tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .map_err(|e| e.to_string())?;
            drop(client);
            let _ = task.await;
            Ok(())
        })
    })
    .join()
    .map_err(|_| "the set-up thread panicked".to_owned())?
}

/// The directory holding `initdb` and `pg_ctl`: `DONGHANH_PG_BIN`, the newest
/// `/usr/lib/postgresql/*/bin` (Debian), or the directory of `initdb` on `PATH`.
#[must_use]
pub fn binaries() -> Option<PathBuf> {
    let usable = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("DONGHANH_PG_BIN") {
        let dir = PathBuf::from(dir);
        return usable(&dir).then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| usable(d))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|d| usable(d)))
}

/// A PostgreSQL cluster on a temporary directory, listening on 127.0.0.1 only, with trust
/// authentication for the `postgres` user (loopback, throwaway data). Stopped (`pg_ctl stop`,
/// which signals the postmaster named in its pid file) and deleted on drop.
#[derive(Debug)]
pub struct TempCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl TempCluster {
    /// initdb on a new temporary directory and start the server; `settings` are extra
    /// `name=value` server settings.
    pub fn start(bin: &Path, settings: &[&str]) -> Result<TempCluster, String> {
        let dir = std::env::temp_dir().join(format!("donghanh-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        let mut cluster = TempCluster {
            dir,
            bin: bin.to_owned(),
            port: 0,
            as_postgres,
        };
        if as_postgres {
            let (uid, gid) = postgres_ids()
                .ok_or("running as root, and there is no `postgres` user to run PostgreSQL")?;
            std::os::unix::fs::chown(&cluster.dir, Some(uid), Some(gid))
                .map_err(|e| e.to_string())?;
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        cluster.port = free_port()?;
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c max_connections=300",
            cluster.port,
            path_str(&cluster.dir)?
        );
        for s in settings {
            options.push_str(" -c ");
            options.push_str(s);
        }
        let log = cluster.dir.join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// The URL of database `name` on this cluster.
    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| "a temporary path is not UTF-8".to_owned())
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        if self.port != 0
            && let Ok(data) = path_str(&self.dir.join("data")).map(str::to_owned)
        {
            let _ = self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn a_database_name_replaces_the_one_in_the_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "dh_1"),
            "postgres://postgres@127.0.0.1:5432/dh_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
    }
}
