//! `donghanh-e2e`: the harness for end-to-end tests (DESIGN.md §1 `tests/`).
//!
//! [`TestServer`] runs the real `donghanh-server` (a temporary data directory) on a loopback
//! port of its own thread and runtime, so that tests can drive real devices through the
//! blocking core API exactly as the CLI and the apps do. Everything is stopped and deleted when
//! the server is dropped.
//!
//! The backend is embedded SQLite, or PostgreSQL when `DONGHANH_E2E_BACKEND=postgres` (a fresh
//! database, see `donghanh_server::store::pg_cluster`): `scripts/test` runs these tests once on
//! each.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::path::Path;
use std::thread::JoinHandle;

use donghanh_core::domain::{Id, OrgUnit, OrgUnitKind, Role, User};
use donghanh_core::{Device, FileKeyStore};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::any::AnyStore;
use donghanh_server::store::pg_cluster::{TestDatabase, test_database};
use donghanh_server::store::postgres::{PgConfig, PgStore};
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{StoredUser, SyncStore};
use donghanh_server::{AppState, Config, auth, serve};

/// The password of every test account.
pub const PASSWORD: &str = "mật-khẩu-thử-nghiệm";
/// The PIN of every test device.
pub const PIN: &str = "482615";

/// A running server on loopback.
#[derive(Debug)]
pub struct TestServer {
    /// Base address, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The server's data directory.
    pub dir: tempfile::TempDir,
    /// The commune every test user belongs to.
    pub commune: Id,
    /// The province the commune belongs to.
    pub province: Id,
    /// The commune's volunteer team.
    pub team: Id,
    /// The commune's community point.
    pub point: Id,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// A runtime and a second handle on the database, for set-up and checks.
    helper: Option<(tokio::runtime::Runtime, AnyStore)>,
    /// The PostgreSQL database (and the cluster this test started for it), dropped last.
    database: Option<TestDatabase>,
}

/// The backend the environment asks for: `DONGHANH_E2E_BACKEND=postgres`, or SQLite.
#[must_use]
pub fn wants_postgres() -> bool {
    std::env::var("DONGHANH_E2E_BACKEND").is_ok_and(|b| b == "postgres")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl TestServer {
    /// Starts a server with one province, one commune in it, its team and its community point.
    #[must_use]
    pub fn start() -> TestServer {
        Self::start_with(Config::default())
    }

    /// [`TestServer::start`] with explicit settings.
    #[must_use]
    pub fn start_with(config: Config) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let province = OrgUnit::new("Tỉnh Thử Nghiệm", OrgUnitKind::Province, None);
        let commune = OrgUnit::new("Xã Thử Nghiệm", OrgUnitKind::Commune, Some(province.id));
        let team = OrgUnit::new("Đội Thử Nghiệm", OrgUnitKind::Team, Some(commune.id));
        let point = OrgUnit::new(
            "Điểm Tư Vấn Thử Nghiệm",
            OrgUnitKind::CommunityPoint,
            Some(commune.id),
        );
        ServerKeys::create(&dir.path().join("server.key")).expect("server key");
        let database = if wants_postgres() {
            // In CI (or with PostgreSQL installed) this never skips: a run that asked for
            // PostgreSQL and cannot have it fails.
            Some(
                test_database("the end-to-end tests").expect("PostgreSQL for DONGHANH_E2E_BACKEND"),
            )
        } else {
            None
        };
        let url = database.as_ref().map(|d| d.url.clone());
        let rt = runtime();
        let store = rt.block_on(Self::open_store(dir.path(), url.as_deref()));
        for unit in [&province, &commune, &team, &point] {
            rt.block_on(store.add_org_unit(unit.clone()))
                .expect("org unit");
        }
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(async move {
                let state = AppState::new(store, config).expect("state");
                let _ = serve(listener, state, async move {
                    let _ = rx.await;
                })
                .await;
            });
        });
        let helper_rt = runtime();
        let helper_store = helper_rt.block_on(Self::open_store(dir.path(), url.as_deref()));
        TestServer {
            url: base,
            dir,
            province: province.id,
            commune: commune.id,
            team: team.id,
            point: point.id,
            stop: Some(tx),
            thread: Some(thread),
            helper: Some((helper_rt, helper_store)),
            database,
        }
    }

    async fn open_store(dir: &Path, postgres: Option<&str>) -> AnyStore {
        let keys = ServerKeys::load(&dir.join("server.key")).expect("server key");
        match postgres {
            None => AnyStore::Sqlite(
                SqliteStore::open(&dir.join("server.db"), keys).expect("server store"),
            ),
            Some(url) => AnyStore::Postgres(
                PgStore::connect(
                    &PgConfig {
                        url: url.to_owned(),
                        pool_size: 4,
                    },
                    keys,
                )
                .await
                .expect("server store"),
            ),
        }
    }

    /// Runs `f` on the second handle on the server's database.
    fn with_store<T, F: std::future::Future<Output = T>>(
        &self,
        f: impl FnOnce(AnyStore) -> F,
    ) -> T {
        let (rt, store) = self.helper.as_ref().expect("the helper store");
        rt.block_on(f(store.clone()))
    }

    /// Whether this server runs on PostgreSQL (`DONGHANH_E2E_BACKEND=postgres`).
    #[must_use]
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The command-line arguments that point `donghanh-server` at this server's data: the
    /// data directory, and the database when it is PostgreSQL.
    #[must_use]
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--data".to_owned(), self.dir.path().display().to_string()];
        if let Some(db) = &self.database {
            args.push("--database".into());
            args.push(db.url.clone());
        }
        args
    }

    /// Adds an org unit; returns its id.
    #[must_use]
    pub fn add_unit(&self, name: &str, kind: OrgUnitKind, parent: Option<Id>) -> Id {
        let unit = OrgUnit::new(name, kind, parent);
        let added = unit.clone();
        self.with_store(|s| async move { s.add_org_unit(added).await })
            .expect("org unit");
        unit.id
    }

    /// Adds a user of the commune; returns their id.
    #[must_use]
    pub fn add_user(&self, username: &str, role: Role) -> Id {
        self.add_user_at(username, role, self.commune, None)
    }

    /// Adds a user placed in `org` (and, for a counsellor, at `point`); returns their id.
    #[must_use]
    pub fn add_user_at(&self, username: &str, role: Role, org: Id, point: Option<Id>) -> Id {
        let mut user = User::new(username, username, role, org);
        user.point = point;
        let password_hash = auth::hash_password(PASSWORD).expect("hash");
        let stored = StoredUser {
            user: user.clone(),
            password_hash,
        };
        self.with_store(|s| async move { s.add_user(stored).await })
            .expect("add user");
        user.id
    }

    /// Removes the tombstones every active device has pulled past, as the server does
    /// periodically, judging activity at `now`; returns how many went.
    #[must_use]
    pub fn compact(&self, now: chrono::DateTime<chrono::Utc>, lease_seconds: u64) -> u64 {
        self.with_store(|s| async move { s.compact(now, lease_seconds).await })
            .expect("compact")
    }

    /// Revokes a device.
    pub fn revoke(&self, device: uuid::Uuid) {
        self.with_store(
            |s| async move { s.revoke_device(Id::from(device), chrono::Utc::now()).await },
        )
        .expect("revoke");
    }

    /// Enrols a new device for `username` in `dir`.
    #[must_use]
    pub fn enroll(&self, dir: &Path, username: &str) -> Device {
        std::fs::create_dir_all(dir).expect("device dir");
        let keystore = FileKeyStore::create(dir.join("device.key")).expect("device key");
        Device::enroll(
            dir,
            &keystore,
            PIN,
            &self.url,
            username,
            PASSWORD,
            "test phone",
        )
        .expect("enroll")
    }
}

/// Reopens a device store (as the app does after a restart).
pub fn reopen(dir: &Path) -> Result<Device, donghanh_core::Error> {
    Device::open(dir, &FileKeyStore::open(dir.join("device.key")), PIN)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The helper's connections close before the database's cluster stops.
        drop(self.helper.take());
        drop(self.database.take());
    }
}

/// A device speaking raw HTTP to the server (for probing endpoints the core never misuses):
/// enrolled with a user's login, holding its access token.
#[derive(Debug)]
pub struct RawDevice {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    url: String,
    /// The access token.
    pub token: String,
    /// The device id.
    pub device_id: uuid::Uuid,
}

impl RawDevice {
    /// Enrols a new device for `username` over HTTP.
    #[must_use]
    pub fn enroll(server: &TestServer, username: &str) -> RawDevice {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = runtime();
        let http = reqwest::Client::new();
        let mut raw = RawDevice {
            rt,
            http,
            url: server.url.clone(),
            token: String::new(),
            device_id: uuid::Uuid::nil(),
        };
        let (status, body) = raw.post(
            "/v1/enroll",
            &serde_json::json!({
                "username": username, "password": PASSWORD, "device_label": "raw"
            }),
        );
        assert_eq!(status, 200, "{body}");
        let e: donghanh_protocol::EnrollResponse =
            serde_json::from_value(body).expect("enroll response");
        raw.token = e.tokens.access_token;
        raw.device_id = e.device_id;
        raw
    }

    fn send(&self, req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        self.rt.block_on(async {
            let resp = req
                .header(
                    donghanh_protocol::PROTOCOL_HEADER,
                    donghanh_protocol::PROTOCOL_VERSION.to_string(),
                )
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            let body = if text.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::from_str(&text).expect("a JSON body")
            };
            (status, body)
        })
    }

    /// `GET path`: the status and the JSON body (null when empty).
    #[must_use]
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.http.get(format!("{}{path}", self.url)))
    }

    /// `GET path` for a file: the status, the content type and the body's bytes.
    #[must_use]
    pub fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        self.rt.block_on(async {
            let resp = self
                .http
                .get(format!("{}{path}", self.url))
                .header(
                    donghanh_protocol::PROTOCOL_HEADER,
                    donghanh_protocol::PROTOCOL_VERSION.to_string(),
                )
                .bearer_auth(&self.token)
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let kind = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let bytes = resp.bytes().await.expect("body").to_vec();
            (status, kind, bytes)
        })
    }

    /// `PUT path` with a JSON body: the status and the JSON body (null when empty).
    #[must_use]
    pub fn put(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.http.put(format!("{}{path}", self.url)).json(body))
    }

    /// `POST path` with a JSON body: the status and the JSON body (null when empty).
    #[must_use]
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.http.post(format!("{}{path}", self.url)).json(body))
    }

    /// Every change and scope event the server serves this device from cursor 0.
    #[must_use]
    pub fn pull_everything(&self) -> Vec<donghanh_protocol::PullPage<serde_json::Value>> {
        let mut cursor = 0;
        let mut pages = Vec::new();
        loop {
            let (status, body) = self.get(&format!("/v1/pull?cursor={cursor}"));
            assert_eq!(status, 200, "{body}");
            let page: donghanh_protocol::PullPage<serde_json::Value> =
                serde_json::from_value(body).expect("pull page");
            cursor = page.next_cursor;
            let more = page.has_more;
            pages.push(page);
            if !more {
                return pages;
            }
        }
    }
}
