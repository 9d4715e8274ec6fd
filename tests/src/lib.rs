//! `donghanh-e2e`: the harness for end-to-end tests (DESIGN.md §1 `tests/`).
//!
//! [`TestServer`] runs the real `donghanh-server` (embedded SQLite, a temporary data directory)
//! on a loopback port of its own thread and runtime, so that tests can drive real devices
//! through the blocking core API exactly as the CLI and the apps do. Everything is stopped and
//! deleted when the server is dropped.

#![allow(clippy::expect_used, clippy::missing_panics_doc)]

use std::path::Path;
use std::thread::JoinHandle;

use donghanh_core::domain::{Id, OrgUnit, OrgUnitKind, Role, User};
use donghanh_core::{Device, FileKeyStore};
use donghanh_server::secrets::ServerKeys;
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
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl TestServer {
    /// Starts a server with one commune.
    #[must_use]
    pub fn start() -> TestServer {
        Self::start_with(Config::default())
    }

    /// Starts a server with one commune and these settings.
    #[must_use]
    pub fn start_with(config: Config) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let commune = OrgUnit::new("Xã Thử Nghiệm", OrgUnitKind::Commune, None);
        let store = Self::open_store(dir.path(), true);
        let rt = runtime();
        rt.block_on(store.add_org_unit(commune.clone()))
            .expect("org unit");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
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
        TestServer {
            url,
            dir,
            commune: commune.id,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn open_store(dir: &Path, create: bool) -> SqliteStore {
        let key = dir.join("server.key");
        let keys = if create {
            ServerKeys::create(&key)
        } else {
            ServerKeys::load(&key)
        }
        .expect("server key");
        SqliteStore::open(&dir.join("server.db"), keys).expect("server store")
    }

    /// A second connection to the server's database, for set-up and checks.
    #[must_use]
    pub fn store(&self) -> SqliteStore {
        Self::open_store(self.dir.path(), false)
    }

    /// Adds a user of the commune; returns their id.
    #[must_use]
    pub fn add_user(&self, username: &str, role: Role) -> Id {
        let user = User::new(username, username, role, self.commune);
        let password_hash = auth::hash_password(PASSWORD).expect("hash");
        runtime()
            .block_on(self.store().add_user(StoredUser {
                user: user.clone(),
                password_hash,
            }))
            .expect("add user");
        user.id
    }

    /// Revokes a device.
    pub fn revoke(&self, device: uuid::Uuid) {
        runtime()
            .block_on(
                self.store()
                    .revoke_device(Id::from(device), chrono::Utc::now()),
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
    }
}
