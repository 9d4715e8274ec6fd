//! A real server on loopback for the integration tests that share it (`mod support;`): port 0,
//! a temporary data directory, a commune with one user of each role that the tests need, and a
//! read-only view of every table of the server's SQLite file, to prove a refused request
//! changed nothing.
//!
//! `http.rs` keeps its own copy of the start-up code for now (it predates this module).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use donghanh_core::domain::{OrgUnit, OrgUnitKind, Role, User};
use donghanh_protocol::{EnrollResponse, PROTOCOL_HEADER};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{StoredUser, SyncStore};
use donghanh_server::{AppState, Config, auth, serve};
use reqwest::StatusCode;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

/// Every seeded user's password.
pub const PASSWORD: &str = "mật-khẩu-chung-của-thử-nghiệm";

/// The seeded users: login name and role.
pub const USERS: [(&str, Role); 5] = [
    ("tnv.hoa", Role::Volunteer),
    ("tnv.lan", Role::Volunteer),
    ("gs.minh", Role::Supervisor),
    ("quantri", Role::Admin),
    ("bi.khoa", Role::Volunteer),
];

fn crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A running server and what a test needs to reach into it.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client that opens a new connection per request, so that a connection the server
    /// closes (after a refused oversized body) can never fail the next request.
    pub http: reqwest::Client,
    /// The data directory.
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts a server with `config` over a new commune holding [`USERS`].
    pub async fn start(config: Config) -> Server {
        crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let keys = ServerKeys::create(&dir.path().join("server.key")).unwrap();
        let store = SqliteStore::open(&dir.path().join("server.db"), keys).unwrap();
        let commune = OrgUnit::new("Xã Tân Hòa", OrgUnitKind::Commune, None);
        store.add_org_unit(commune.clone()).await.unwrap();
        let password_hash = auth::hash_password(PASSWORD).unwrap();
        for (name, role) in USERS {
            let user = User::new(name, name, role, commune.id);
            let password_hash = password_hash.clone();
            store
                .add_user(StoredUser {
                    user,
                    password_hash,
                })
                .await
                .unwrap();
        }
        Self::serve_store(store, config, dir).await
    }

    /// Stops the server and starts a new one with `config` over the same data directory (the
    /// same keys and database, nothing seeded again).
    pub async fn restart(self, config: Config) -> Server {
        let dir = self.stop().await;
        let keys = ServerKeys::load(&dir.path().join("server.key")).unwrap();
        let store = SqliteStore::open(&dir.path().join("server.db"), keys).unwrap();
        Self::serve_store(store, config, dir).await
    }

    async fn serve_store(store: SqliteStore, config: Config, dir: tempfile::TempDir) -> Server {
        let state = AppState::new(store, config).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            serve(listener, state, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Server {
            base,
            http,
            dir,
            stop: Some(tx),
            task,
        }
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("server.db")
    }

    /// A request with the protocol header.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, "1")
    }

    /// Enrols a device of a seeded user.
    pub async fn enroll(&self, username: &str) -> EnrollResponse {
        let resp = self
            .request(reqwest::Method::POST, "/v1/enroll")
            .json(&json!({"username": username, "password": PASSWORD, "device_label": "Redmi 12"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "enrol {username}");
        resp.json().await.unwrap()
    }

    /// Every table's rows (see [`db_state`]).
    pub fn db_state(&self) -> DbState {
        db_state(&self.db())
    }

    /// Stops the server and waits for it: a panic inside it fails the test here.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
        self.dir
    }
}

/// Every table of a database: its rows, each rendered as text, sorted.
pub type DbState = BTreeMap<String, Vec<String>>;

/// Reads every table of the SQLite file at `path` through a read-only connection (the server
/// keeps writing through its own; WAL lets both work).
pub fn db_state(path: &Path) -> DbState {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut state = DbState::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let mut row = String::new();
                for i in 0..columns {
                    write!(row, "{:?}|", r.get_ref(i)?).unwrap();
                }
                Ok(row)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows.sort();
        state.insert(table, rows);
    }
    state
}

/// The tables whose rows differ, with their row counts before and after.
pub fn changed_tables(before: &DbState, after: &DbState) -> Vec<String> {
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|t| before.get(*t) != after.get(*t))
        .map(|t| {
            let count = |s: &DbState| s.get(t).map_or(0, Vec::len);
            format!("{t} ({} → {} rows)", count(before), count(after))
        })
        .collect()
}
