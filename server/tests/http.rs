//! The server over real HTTP on loopback (port 0, temporary directory), driven by reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Once;

use donghanh_core::domain::{OrgUnit, OrgUnitKind, Role, User};
use donghanh_protocol::{EnrollResponse, ErrorBody, PROTOCOL_HEADER, Tokens};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{StoredUser, SyncStore, conformance};
use donghanh_server::{AppState, Config, auth, serve};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn new_store(dir: &std::path::Path) -> SqliteStore {
    let keys = ServerKeys::create(&dir.join("server.key")).unwrap();
    SqliteStore::open(&dir.join("server.db"), keys).unwrap()
}

#[tokio::test]
async fn sqlite_backend_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&new_store(dir.path())).await;
}

struct Server {
    base: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

const VOLUNTEER_PW: &str = "mật-khẩu-tình-nguyện";
const ADMIN_PW: &str = "mật-khẩu-quản-trị";

impl Server {
    async fn start() -> Server {
        crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store = new_store(dir.path());
        let commune = OrgUnit::new("Xã Tân Hòa", OrgUnitKind::Commune, None);
        store.add_org_unit(commune.clone()).await.unwrap();
        for (name, display, role, pw) in [
            ("tnv.hoa", "Nguyễn Thị Hoa", Role::Volunteer, VOLUNTEER_PW),
            ("quantri", "Trần Quản Trị", Role::Admin, ADMIN_PW),
        ] {
            let user = User::new(name, display, role, commune.id);
            let password_hash = auth::hash_password(pw).unwrap();
            store
                .add_user(StoredUser {
                    user,
                    password_hash,
                })
                .await
                .unwrap();
        }
        let state = AppState::new(store, Config::default()).unwrap();
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
        Server {
            base,
            http: reqwest::Client::new(),
            dir,
            stop: Some(tx),
            task,
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, "1")
    }

    async fn enroll(&self, username: &str, password: &str) -> reqwest::Response {
        self.post("/v1/enroll")
            .json(&json!({"username": username, "password": password, "device_label": "Redmi 12 của chị Hoa"}))
            .send()
            .await
            .unwrap()
    }

    /// Stops the server; returns its data directory (deleted when dropped).
    async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
        self.dir
    }
}

/// A `{code, message}` error with this status, whose message does not contain `secret`.
async fn error(resp: reqwest::Response, status: StatusCode, code: &str, secret: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers().get(PROTOCOL_HEADER).unwrap(), "1");
    let body: ErrorBody = resp.json().await.unwrap();
    assert_eq!(body.code, code, "{body:?}");
    if !secret.is_empty() {
        assert!(!body.message.contains(secret), "echoed input: {body:?}");
    }
}

#[tokio::test]
async fn volunteer_enrolls_a_device_and_rotates_tokens() {
    let s = Server::start().await;
    let resp = s.enroll("tnv.hoa", VOLUNTEER_PW).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get(PROTOCOL_HEADER).unwrap(), "1");
    let e: EnrollResponse = resp.json().await.unwrap();
    assert_eq!(e.role, donghanh_protocol::Role::Volunteer);
    assert_eq!(e.tokens.access_expires_in, 900);
    assert!(e.key_lease_seconds > 0);

    let refresh = |token: String| {
        s.post("/v1/token")
            .json(&json!({"device_id": e.device_id, "refresh_token": token}))
            .send()
    };
    let resp = refresh(e.tokens.refresh_token.clone()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let t: Tokens = resp.json().await.unwrap();
    assert_ne!(t.refresh_token, e.tokens.refresh_token);
    // A refresh token works once.
    error(
        refresh(e.tokens.refresh_token.clone()).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        "",
    )
    .await;
    assert_eq!(
        refresh(t.refresh_token).await.unwrap().status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_rate_limited() {
    let s = Server::start().await;
    error(
        s.enroll("tnv.hoa", "sai").await,
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        "sai",
    )
    .await;
    error(
        s.enroll("khong.co", "x").await,
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        "khong.co",
    )
    .await;
    for _ in 0..4 {
        error(
            s.enroll("tnv.hoa", "sai").await,
            StatusCode::UNAUTHORIZED,
            "unauthorised",
            "",
        )
        .await;
    }
    // Five failures: even the right password is refused for a while.
    error(
        s.enroll("tnv.hoa", VOLUNTEER_PW).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "",
    )
    .await;
    // Another user is not affected.
    assert_eq!(s.enroll("quantri", ADMIN_PW).await.status(), StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn revoked_device_is_refused_at_once_and_told_to_wipe() {
    let s = Server::start().await;
    let phone: EnrollResponse = s
        .enroll("tnv.hoa", VOLUNTEER_PW)
        .await
        .json()
        .await
        .unwrap();
    let admin: EnrollResponse = s.enroll("quantri", ADMIN_PW).await.json().await.unwrap();
    let revoke = |token: &str| {
        s.post(&format!("/v1/admin/devices/{}/revoke", phone.device_id))
            .bearer_auth(token.to_owned())
            .send()
    };
    // Only an admin may revoke; a missing or bad token is unauthorised.
    error(
        revoke(&phone.tokens.access_token).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
        "",
    )
    .await;
    error(
        revoke("not-a-token").await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        "",
    )
    .await;
    let resp = s
        .post(&format!("/v1/admin/devices/{}/revoke", phone.device_id))
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::UNAUTHORIZED, "unauthorised", "").await;
    assert_eq!(
        revoke(&admin.tokens.access_token).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    // The phone's access token is dead, and its refresh says: wipe.
    error(
        revoke(&phone.tokens.access_token).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        "",
    )
    .await;
    let resp = s
        .post("/v1/token")
        .json(&json!({"device_id": phone.device_id, "refresh_token": phone.tokens.refresh_token}))
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::UNAUTHORIZED, "device_revoked", "").await;
    // Revoking twice is a clear error.
    error(
        revoke(&admin.tokens.access_token).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        "",
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_a_clear_error_and_never_an_echo() {
    let s = Server::start().await;
    let name = "Nguyễn Văn Bí Mật";
    // No protocol header.
    let resp = s
        .http
        .post(format!("{}/v1/enroll", s.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::BAD_REQUEST, "protocol_mismatch", "").await;
    let resp = s
        .http
        .post(format!("{}/v1/enroll", s.base))
        .header(PROTOCOL_HEADER, "2")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::BAD_REQUEST, "protocol_mismatch", "").await;
    // Malformed JSON, wrong types, unknown fields, missing fields, wrong content type.
    for body in [
        "{".to_owned(),
        json!({"username": name, "password": 5, "device_label": "x"}).to_string(),
        json!({"username": "a", "password": "b", "device_label": "c", "role": name}).to_string(),
        json!({"username": name}).to_string(),
        "[]".to_owned(),
    ] {
        let resp = s
            .post("/v1/enroll")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        error(resp, StatusCode::BAD_REQUEST, "invalid_input", "Bí Mật").await;
    }
    let resp = s
        .post("/v1/enroll")
        .body("username=x")
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::BAD_REQUEST, "invalid_input", "").await;
    // Oversized body.
    let big =
        json!({"username": "x".repeat(2 * 1024 * 1024), "password": "p", "device_label": "d"});
    let resp = s.post("/v1/enroll").json(&big).send().await.unwrap();
    error(resp, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "").await;
    // Unknown route, wrong method, malformed id.
    error(
        s.post("/v1/nothing").send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
        "",
    )
    .await;
    let resp = s
        .http
        .get(format!("{}/v1/enroll", s.base))
        .header(PROTOCOL_HEADER, "1")
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::METHOD_NOT_ALLOWED, "invalid_input", "").await;
    let admin: EnrollResponse = s.enroll("quantri", ADMIN_PW).await.json().await.unwrap();
    let resp = s
        .post(&format!("/v1/admin/devices/{name}/revoke"))
        .bearer_auth(admin.tokens.access_token)
        .send()
        .await
        .unwrap();
    error(resp, StatusCode::BAD_REQUEST, "invalid_input", "Bí Mật").await;
    // Health needs no header.
    let health: Value = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    s.stop().await;
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let s = Server::start().await;
    // A client that does not decompress, to see what travels on the wire.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .no_zstd()
        .build()
        .unwrap();
    for encoding in ["gzip", "zstd"] {
        let resp = raw
            .get(format!("{}/v1/nothing-here", s.base))
            .header(PROTOCOL_HEADER, "1")
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers().get("content-encoding").unwrap(), encoding);
    }
    s.stop().await;
}

#[tokio::test]
async fn the_server_database_holds_no_name_username_or_device_label_in_clear() {
    let s = Server::start().await;
    assert_eq!(
        s.enroll("tnv.hoa", VOLUNTEER_PW).await.status(),
        StatusCode::OK
    );
    let dir = s.stop().await;
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        files += 1;
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for marker in [
            "Nguyễn Thị Hoa",
            "tnv.hoa",
            "Redmi 12 của chị Hoa",
            "chị Hoa",
            "Trần Quản Trị",
            "quantri",
        ] {
            assert!(
                !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "{marker} in {}",
                path.display()
            );
        }
    }
    assert!(files >= 2, "the database and key files were scanned");
}
