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

/// The write-ahead log is copied into the database file by the store's own checkpointer, not
/// only when a commit crosses SQLite's interval (which requests would wait for).
#[tokio::test]
async fn the_store_checkpoints_its_log_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let db = dir.path().join("server.db");
    let size = || std::fs::metadata(&db).unwrap().len();
    // Let the checkpointer catch up with the schema, then write well under the backstop.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let before = size();
    let commune = OrgUnit::new("Xã Nhật Ký", OrgUnitKind::Commune, None);
    store.add_org_unit(commune.clone()).await.unwrap();
    for k in 0..300 {
        let user = User::new(
            format!("tnv.nk.{k}"),
            "Nhật Ký",
            Role::Volunteer,
            commune.id,
        );
        store
            .add_user(StoredUser {
                user,
                password_hash: "h".repeat(200),
            })
            .await
            .unwrap();
    }
    assert_eq!(size(), before, "no commit checkpointed");
    let mut waited = 0;
    while size() == before && waited < 5_000 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 100;
    }
    assert!(size() > before, "the log was never checkpointed");
    drop(store);
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
    // The bearer scheme is case-insensitive; another scheme is not a bearer token.
    let directory = |auth: String| {
        s.http
            .get(format!("{}/v1/directory", s.base))
            .header(PROTOCOL_HEADER, "1")
            .header("authorization", auth)
            .send()
    };
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = directory(format!("{scheme} {}", t.access_token))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{scheme}");
    }
    for bad in [
        format!("Basic {}", t.access_token),
        format!("Bearer{}", t.access_token),
        "Bearer".to_owned(),
    ] {
        error(
            directory(bad).await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthorised",
            "",
        )
        .await;
    }
    s.stop().await;
}

/// Found by the simulation (issue 6): a token exchange whose answer was lost used to lock the
/// device out for good (the server had rotated to a token nobody kept). The device now proposes
/// the next token and keeps it before asking; asking again with the same pair is answered.
#[tokio::test]
async fn a_token_exchange_whose_answer_was_lost_is_answered_again() {
    let s = Server::start().await;
    let e: EnrollResponse = s
        .enroll("tnv.hoa", VOLUNTEER_PW)
        .await
        .json()
        .await
        .unwrap();
    let exchange = |old: &str, next: Option<&str>| {
        let mut body = json!({"device_id": e.device_id, "refresh_token": old});
        if let Some(next) = next {
            body["next_refresh_token"] = json!(next);
        }
        s.post("/v1/token").json(&body).send()
    };
    let next = "q".repeat(42) + "A";
    for _ in 0..2 {
        let resp = exchange(&e.tokens.refresh_token, Some(&next))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let t: Tokens = resp.json().await.unwrap();
        assert_eq!(t.refresh_token, next);
    }
    // The old token with another proposal is a second use: refused.
    let other = "w".repeat(42) + "A";
    error(
        exchange(&e.tokens.refresh_token, Some(&other))
            .await
            .unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorised",
        &other,
    )
    .await;
    // A proposal that is not a token's shape is refused before anything changes.
    for bad in ["", "short", &"q".repeat(44), &("q".repeat(42) + "!")] {
        error(
            exchange(&next, Some(bad)).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            bad,
        )
        .await;
    }
    let resp = exchange(&next, None).await.unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the refused proposals changed nothing"
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

mod sync_flow {
    use super::*;
    use chrono::{Duration, Utc};
    use donghanh_core::domain::{Assignment, Episode, EpisodeKind, Id, Person, Scope, Sex, Visit};
    use donghanh_protocol::{
        ChangeOp, Mutation, MutationOp, Outcome, PullPage, PushResponse, ScopeEventKind,
    };

    struct Phone {
        tokens: Tokens,
        user: Id,
        seq: u64,
        cursor: u64,
    }

    async fn phone(s: &Server, username: &str, pw: &str) -> Phone {
        let e: EnrollResponse = s.enroll(username, pw).await.json().await.unwrap();
        Phone {
            tokens: e.tokens,
            user: Id::from(e.user_id),
            seq: 0,
            cursor: 0,
        }
    }

    async fn add_user(s: &Server, username: &str, role: Role) {
        // Users are added through the store the server runs on (as the admin CLI does).
        let keys = ServerKeys::load(&s.dir.path().join("server.key")).unwrap();
        let store = SqliteStore::open(&s.dir.path().join("server.db"), keys).unwrap();
        let org = store.org_units().await.unwrap()[0].id;
        let user = User::new(username, username, role, org);
        let password_hash = auth::hash_password(VOLUNTEER_PW).unwrap();
        store
            .add_user(StoredUser {
                user,
                password_hash,
            })
            .await
            .unwrap();
    }

    fn mutation<T: serde::Serialize>(
        p: &mut Phone,
        op: MutationOp,
        kind: &str,
        scope: Scope,
        id: Id,
        base: u64,
        patch: &T,
    ) -> Mutation<Value> {
        p.seq += 1;
        Mutation {
            client_seq: p.seq,
            record_id: id.uuid(),
            kind: kind.into(),
            scope: scope.to_string(),
            op,
            base_version: base,
            patch: serde_json::to_value(patch).unwrap(),
        }
    }

    impl Phone {
        fn token(&self) -> String {
            self.tokens.access_token.clone()
        }
    }

    /// A case the supervisor's phone opens and assigns to `helper`: person, episode, assignment.
    struct Case {
        person: Person,
        scope: Scope,
        episode: Episode,
        assignment: Assignment,
    }

    async fn open_case(s: &Server, sup: &mut Phone, name: &str, helper: Id) -> Case {
        let today = donghanh_core::domain::vn_date(Utc::now());
        let person = Person::new(
            name,
            chrono::NaiveDate::from_ymd_opt(1985, 7, 8).unwrap(),
            Sex::Male,
        );
        let scope = Scope::Person(person.id);
        let episode = Episode::new(
            person.id,
            EpisodeKind::PostRehab,
            today - Duration::days(10),
        );
        let assignment = Assignment::new(person.id, episode.id, helper, today);
        let batch = vec![
            mutation(
                sup,
                MutationOp::Create,
                "person",
                scope,
                person.id,
                0,
                &person,
            ),
            mutation(
                sup,
                MutationOp::Create,
                "episode",
                scope,
                episode.id,
                0,
                &episode,
            ),
            mutation(
                sup,
                MutationOp::Create,
                "assignment",
                scope,
                assignment.id,
                0,
                &assignment,
            ),
        ];
        let r = push(s, sup.token(), batch).await;
        assert!(
            r.receipts.iter().all(|r| r.outcome == Outcome::Applied),
            "{r:?}"
        );
        Case {
            person,
            scope,
            episode,
            assignment,
        }
    }

    /// A person the supervisor's phone opens (and so holds), checked applied.
    async fn open_person(s: &Server, sup: &mut Phone, name: &str) -> Person {
        let person = Person::new(
            name,
            chrono::NaiveDate::from_ymd_opt(1991, 1, 1).unwrap(),
            Sex::Male,
        );
        let m = mutation(
            sup,
            MutationOp::Create,
            "person",
            Scope::Person(person.id),
            person.id,
            0,
            &person,
        );
        let r = push(s, sup.token(), vec![m]).await;
        assert_eq!(r.receipts[0].outcome, Outcome::Applied);
        person
    }

    async fn push(s: &Server, token: String, mutations: Vec<Mutation<Value>>) -> PushResponse {
        let resp = s
            .post("/v1/push")
            .bearer_auth(token)
            .json(&json!({ "mutations": mutations }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    async fn pull_page(s: &Server, p: &Phone, cursor: u64, limit: u32) -> PullPage<Value> {
        let resp = s
            .http
            .get(format!("{}/v1/pull?cursor={cursor}&limit={limit}", s.base))
            .header(PROTOCOL_HEADER, "1")
            .bearer_auth(&p.tokens.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// Pulls everything after the phone's cursor, page by page; returns the pages.
    async fn pull_all(s: &Server, p: &mut Phone, limit: u32) -> Vec<PullPage<Value>> {
        let mut pages = Vec::new();
        loop {
            let page = pull_page(s, p, p.cursor, limit).await;
            // A page is read at a log position at least as far as anything it carries.
            let highest = page
                .changes
                .iter()
                .map(|c| c.op_id)
                .chain(page.scope_events.iter().map(|e| e.op_id))
                .fold(page.next_cursor, u64::max);
            assert!(page.as_of >= highest, "as_of {} < {highest}", page.as_of);
            p.cursor = page.next_cursor;
            let more = page.has_more;
            pages.push(page);
            if !more {
                return pages;
            }
        }
    }

    fn record_ids(pages: &[PullPage<Value>]) -> Vec<uuid::Uuid> {
        pages
            .iter()
            .flat_map(|p| p.changes.iter().map(|c| c.record_id))
            .collect()
    }

    #[tokio::test]
    async fn a_case_travels_from_supervisor_to_volunteer_and_a_visit_back() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        add_user(&s, "tnv.lan", Role::Volunteer).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let mut hoa = phone(&s, "tnv.hoa", VOLUNTEER_PW).await;
        let mut lan = phone(&s, "tnv.lan", VOLUNTEER_PW).await;

        // The supervisor opens a case, its episode, and assigns it to Hoa; a second case stays
        // unassigned.
        let today = donghanh_core::domain::vn_date(Utc::now());
        let person = Person::new(
            "Lê Văn Được",
            chrono::NaiveDate::from_ymd_opt(1988, 3, 4).unwrap(),
            Sex::Male,
        );
        let other = Person::new(
            "Phạm Thị Kín",
            chrono::NaiveDate::from_ymd_opt(1990, 5, 6).unwrap(),
            Sex::Female,
        );
        let scope = Scope::Person(person.id);
        let episode = Episode::new(
            person.id,
            EpisodeKind::PostRehab,
            today - Duration::days(30),
        );
        let assignment = Assignment::new(person.id, episode.id, hoa.user, today);
        let batch = vec![
            mutation(
                &mut sup,
                MutationOp::Create,
                "person",
                scope,
                person.id,
                0,
                &person,
            ),
            mutation(
                &mut sup,
                MutationOp::Create,
                "episode",
                scope,
                episode.id,
                0,
                &episode,
            ),
            mutation(
                &mut sup,
                MutationOp::Create,
                "assignment",
                scope,
                assignment.id,
                0,
                &assignment,
            ),
            mutation(
                &mut sup,
                MutationOp::Create,
                "person",
                Scope::Person(other.id),
                other.id,
                0,
                &other,
            ),
        ];
        let r = push(&s, sup.token(), batch.clone()).await;
        assert!(
            r.receipts.iter().all(|r| r.outcome == Outcome::Applied),
            "{r:?}"
        );
        // The same push again (a retry after a lost response) creates nothing twice.
        let again = push(&s, sup.token(), batch).await;
        assert_eq!(again.receipts, r.receipts);

        // Hoa's phone learns of the grant and receives the case, and only it.
        let pages = pull_all(&s, &mut hoa, 1000).await;
        let events: Vec<_> = pages.iter().flat_map(|p| p.scope_events.clone()).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind, events[0].scope.clone()),
            (ScopeEventKind::Grant, scope.to_string())
        );
        let ids = record_ids(&pages);
        assert_eq!(ids.len(), 3);
        assert!(
            !ids.contains(&other.id.uuid()),
            "an unassigned case reached a volunteer"
        );
        assert!(record_ids(&pull_all(&s, &mut lan, 1000).await).is_empty());

        // Hoa records a visit; the supervisor sees it.
        let visit = Visit::new(
            person.id,
            Utc::now() - Duration::hours(1),
            "Gia đình hợp tác",
        );
        let r = push(
            &s,
            hoa.token(),
            vec![mutation(
                &mut hoa,
                MutationOp::Create,
                "visit",
                scope,
                visit.id,
                0,
                &visit,
            )],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Applied);
        let pages = pull_all(&s, &mut sup, 1000).await;
        let seen = pages
            .iter()
            .flat_map(|p| p.changes.iter())
            .find(|c| c.record_id == visit.id.uuid())
            .unwrap();
        assert_eq!(
            seen.record.as_ref().unwrap()["observations"],
            "Gia đình hợp tác"
        );

        // A record Hoa may not touch is rejected with a reason, and does not block the next one.
        let foreign = Visit::new(other.id, Utc::now(), "x");
        let ok = Visit::new(person.id, Utc::now(), "y");
        let r = push(
            &s,
            hoa.token(),
            vec![
                mutation(
                    &mut hoa,
                    MutationOp::Create,
                    "visit",
                    Scope::Person(other.id),
                    foreign.id,
                    0,
                    &foreign,
                ),
                mutation(&mut hoa, MutationOp::Create, "visit", scope, ok.id, 0, &ok),
            ],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Rejected);
        assert_eq!(r.receipts[0].reason.as_ref().unwrap().code, "forbidden");
        assert_eq!(r.receipts[1].outcome, Outcome::Applied);

        // Both edit the person's phone from version 1: the later commit wins, the other is a
        // conflict the supervisor can see (recorded server-side).
        let r1 = push(
            &s,
            sup.token(),
            vec![mutation(
                &mut sup,
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                &json!({"phone": "0911111111"}),
            )],
        )
        .await;
        assert_eq!(r1.receipts[0].outcome, Outcome::Applied);
        let r2 = push(
            &s,
            hoa.token(),
            vec![mutation(
                &mut hoa,
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                &json!({"phone": "0922222222"}),
            )],
        )
        .await;
        assert_eq!(r2.receipts[0].outcome, Outcome::Conflict);
        assert_eq!(r2.receipts[0].version, Some(3));

        // A visit Hoa records offline, before she can know of the reassignment below.
        let offline = Visit::new(person.id, Utc::now(), "offline");
        let offline = mutation(
            &mut hoa,
            MutationOp::Create,
            "visit",
            scope,
            offline.id,
            0,
            &offline,
        );

        // Reassigned to Lan: Hoa is told to let go, Lan receives the case; Hoa can no longer write.
        let r = push(
            &s,
            sup.token(),
            vec![mutation(
                &mut sup,
                MutationOp::Update,
                "assignment",
                scope,
                assignment.id,
                1,
                &json!({"helper": lan.user}),
            )],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Applied);
        // Her phone pushes before it pulls: the offline visit is still accepted.
        let r = push(&s, hoa.token(), vec![offline]).await;
        assert_eq!(r.receipts[0].outcome, Outcome::Applied, "{r:?}");
        let pages = pull_all(&s, &mut hoa, 1000).await;
        let events: Vec<_> = pages.iter().flat_map(|p| p.scope_events.clone()).collect();
        assert_eq!(
            events.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![ScopeEventKind::Revoke]
        );
        // The phone purges and acknowledges; someone else's event is not hers to acknowledge.
        let ack =
            |kind: &str, op: u64| json!({"scope": scope.to_string(), "kind": kind, "op_id": op});
        let resp = s
            .post("/v1/scopes/ack")
            .bearer_auth(hoa.token())
            .json(&ack("grant", events[0].op_id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let resp = s
            .post("/v1/scopes/ack")
            .bearer_auth(hoa.token())
            .json(&ack("revoke", events[0].op_id))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let late = Visit::new(person.id, Utc::now(), "z");
        let r = push(
            &s,
            hoa.token(),
            vec![mutation(
                &mut hoa,
                MutationOp::Create,
                "visit",
                scope,
                late.id,
                0,
                &late,
            )],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Rejected);
        let lan_pages = pull_all(&s, &mut lan, 1000).await;
        assert!(record_ids(&lan_pages).contains(&person.id.uuid()));
        assert!(
            lan_pages
                .iter()
                .flat_map(|p| p.scope_events.iter())
                .any(|e| e.kind == ScopeEventKind::Grant)
        );

        // A delete reaches the holder as a tombstone.
        let r = push(
            &s,
            sup.token(),
            vec![mutation(
                &mut sup,
                MutationOp::Delete,
                "visit",
                scope,
                ok.id,
                1,
                &json!({}),
            )],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Applied);
        let pages = pull_all(&s, &mut lan, 1000).await;
        let tomb = pages
            .iter()
            .flat_map(|p| p.changes.iter())
            .find(|c| c.record_id == ok.id.uuid())
            .unwrap();
        assert_eq!((tomb.op, tomb.record.is_none()), (ChangeOp::Delete, true));
        s.stop().await;
    }

    #[tokio::test]
    async fn a_pull_resumed_at_every_page_boundary_equals_one_full_pull() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let mut batch = Vec::new();
        for i in 0..12 {
            let p = Person::new(
                format!("Người Số {i}"),
                chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
                Sex::Male,
            );
            batch.push(mutation(
                &mut sup,
                MutationOp::Create,
                "person",
                Scope::Person(p.id),
                p.id,
                0,
                &p,
            ));
        }
        push(&s, sup.token(), batch).await;
        sup.cursor = 0;
        let full = pull_all(&s, &mut sup, 1000).await;
        let full_ids = record_ids(&full);
        let full_events: usize = full.iter().map(|p| p.scope_events.len()).sum();
        assert_eq!((full_ids.len(), full_events), (12, 12));
        for limit in 1..=7 {
            sup.cursor = 0;
            let pages = pull_all(&s, &mut sup, limit).await;
            assert!(
                pages
                    .iter()
                    .all(|p| p.changes.len() + p.scope_events.len() <= limit as usize)
            );
            assert_eq!(record_ids(&pages), full_ids, "limit {limit}");
            let events: usize = pages.iter().map(|p| p.scope_events.len()).sum();
            assert_eq!(events, full_events);
            assert_eq!(sup.cursor, full.last().unwrap().next_cursor);
        }
        // Bad queries are answered, not crashed on.
        for q in ["cursor=-1", "cursor=abc", "", "cursor=1&limit=x"] {
            let resp = s
                .http
                .get(format!("{}/v1/pull?{q}", s.base))
                .header(PROTOCOL_HEADER, "1")
                .bearer_auth(&sup.tokens.access_token)
                .send()
                .await
                .unwrap();
            error(resp, StatusCode::BAD_REQUEST, "invalid_input", "").await;
        }
        s.stop().await;
    }

    #[tokio::test]
    async fn a_scope_granted_late_is_bootstrapped_from_a_snapshot() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        add_user(&s, "tnv.lan", Role::Volunteer).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let hoa = phone(&s, "tnv.hoa", VOLUNTEER_PW).await;
        let mut lan = phone(&s, "tnv.lan", VOLUNTEER_PW).await;
        let Case {
            person,
            scope,
            episode,
            assignment,
        } = open_case(&s, &mut sup, "Đỗ Văn Sau", hoa.user).await;

        // Lan's phone is up to date before the case is given to her ...
        pull_all(&s, &mut lan, 1000).await;
        push(
            &s,
            sup.token(),
            vec![mutation(
                &mut sup,
                MutationOp::Update,
                "assignment",
                scope,
                assignment.id,
                1,
                &json!({"helper": lan.user}),
            )],
        )
        .await;
        // ... so the pull brings the grant and only what changed since; the snapshot brings the rest.
        let pages = pull_all(&s, &mut lan, 1000).await;
        assert!(
            pages
                .iter()
                .flat_map(|p| p.scope_events.iter())
                .any(|e| e.kind == ScopeEventKind::Grant)
        );
        assert!(!record_ids(&pages).contains(&episode.id.uuid()));
        let snap = |after: Option<uuid::Uuid>, token: String| {
            let mut url = format!("{}/v1/scopes/{scope}/snapshot?limit=1", s.base);
            if let Some(a) = after {
                url.push_str(&format!("&after={a}"));
            }
            s.http
                .get(url)
                .header(PROTOCOL_HEADER, "1")
                .bearer_auth(token)
                .send()
        };
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let page: donghanh_protocol::SnapshotPage<Value> = snap(after, lan.token())
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(page.records.len() <= 1);
            got.extend(page.records.iter().map(|r| r.record_id));
            after = page.next_after;
            if after.is_none() {
                break;
            }
        }
        got.sort();
        let mut want = vec![person.id.uuid(), episode.id.uuid(), assignment.id.uuid()];
        want.sort();
        assert_eq!(got, want);
        // Hoa no longer holds it: for her the scope does not exist.
        error(
            snap(None, hoa.token()).await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
            "",
        )
        .await;
        s.stop().await;
    }

    #[tokio::test]
    async fn the_audit_chain_records_access_and_detects_an_edited_or_deleted_row() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let _person = open_person(&s, &mut sup, "Vương Thị Sổ").await;
        pull_all(&s, &mut sup, 1000).await;
        let dir = s.stop().await;
        let open = || {
            let keys = ServerKeys::load(&dir.path().join("server.key")).unwrap();
            SqliteStore::open(&dir.path().join("server.db"), keys).unwrap()
        };
        // One edit and one sync-down, chained.
        assert_eq!(
            open().verify_audit().await.unwrap(),
            donghanh_server::audit::Verdict::Intact { entries: 2 }
        );
        let raw = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
        let actions: Vec<String> = raw
            .prepare("SELECT action FROM audit_log ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(actions, vec!["edit", "sync_down"]);
        raw.execute("UPDATE audit_log SET count = 0 WHERE seq = 2", [])
            .unwrap();
        assert_eq!(
            open().verify_audit().await.unwrap(),
            donghanh_server::audit::Verdict::BrokenAt { seq: 2 }
        );
        raw.execute("UPDATE audit_log SET count = 1 WHERE seq = 2", [])
            .unwrap();
        raw.execute("DELETE FROM audit_log WHERE seq = 1", [])
            .unwrap();
        assert_eq!(
            open().verify_audit().await.unwrap(),
            donghanh_server::audit::Verdict::BrokenAt { seq: 2 }
        );
    }

    #[tokio::test]
    async fn the_supervisor_sees_a_conflict_and_can_restore_the_losing_value() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let mut hoa = phone(&s, "tnv.hoa", VOLUNTEER_PW).await;
        let Case { person, scope, .. } = open_case(&s, &mut sup, "Hồ Văn Tranh", hoa.user).await;

        push(
            &s,
            sup.token(),
            vec![mutation(
                &mut sup,
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                &json!({"phone": "0911111111"}),
            )],
        )
        .await;
        let r = push(
            &s,
            hoa.token(),
            vec![mutation(
                &mut hoa,
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                &json!({"phone": "0922222222"}),
            )],
        )
        .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Conflict);

        let get = |token: String| {
            s.http
                .get(format!("{}/v1/conflicts", s.base))
                .header(PROTOCOL_HEADER, "1")
                .bearer_auth(token)
                .send()
        };
        error(
            get(hoa.token()).await.unwrap(),
            StatusCode::FORBIDDEN,
            "forbidden",
            "",
        )
        .await;
        let list: donghanh_protocol::ConflictList<Value> =
            get(sup.token()).await.unwrap().json().await.unwrap();
        assert_eq!(list.conflicts.len(), 1);
        let c = &list.conflicts[0];
        assert_eq!(
            (c.field.as_str(), &c.kept, &c.lost),
            ("phone", &json!("0922222222"), &json!("0911111111"))
        );

        let resolve = |id: uuid::Uuid, token: String| {
            s.post(&format!("/v1/conflicts/{id}/resolve"))
                .bearer_auth(token)
                .json(&json!({"restore": true}))
                .send()
        };
        assert_eq!(
            resolve(c.id, sup.token()).await.unwrap().status(),
            StatusCode::NO_CONTENT
        );
        let list: donghanh_protocol::ConflictList<Value> =
            get(sup.token()).await.unwrap().json().await.unwrap();
        assert!(list.conflicts.is_empty());
        error(
            resolve(c.id, sup.token()).await.unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
            "",
        )
        .await;
        // The restored value reaches the volunteer's phone as a new change.
        let pages = pull_all(&s, &mut hoa, 1000).await;
        let latest = pages
            .iter()
            .flat_map(|p| p.changes.iter())
            .rfind(|ch| ch.record_id == person.id.uuid())
            .unwrap();
        assert_eq!(latest.record.as_ref().unwrap()["phone"], "0911111111");
        assert_eq!(latest.version, 4);
        s.stop().await;
    }

    #[tokio::test]
    async fn metrics_count_without_naming_anyone() {
        let s = Server::start().await;
        add_user(&s, "gs.minh", Role::Supervisor).await;
        let mut sup = phone(&s, "gs.minh", VOLUNTEER_PW).await;
        let person = open_person(&s, &mut sup, "Mạc Văn Đếm").await;
        pull_all(&s, &mut sup, 1000).await;
        let text = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("donghanh_mutations_total{outcome=\"received\"} 1"),
            "{text}"
        );
        assert!(text.contains("donghanh_pull_pages_total 1"), "{text}");
        assert!(text.contains("donghanh_changes_served_total 1"), "{text}");
        assert!(
            !text.contains("Đếm") && !text.contains(&person.id.to_string()),
            "{text}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn the_demo_commune_loads_through_the_real_rules_and_each_sees_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path());
    let accounts = donghanh_server::demo::load(&store).await.unwrap();
    assert_eq!(accounts.len(), 5);
    let id_of = |name: &'static str| {
        let store = &store;
        async move { store.user_by_username(name).await.unwrap().unwrap().user.id }
    };
    let sup = store.scopes_of(id_of("gs.minh").await).await.unwrap();
    // Every case of the commune, its team and its community point.
    assert_eq!(sup.iter().filter(|s| s.starts_with("person:")).count(), 12);
    assert_eq!(sup.iter().filter(|s| s.starts_with("team:")).count(), 1);
    assert_eq!(sup.iter().filter(|s| s.starts_with("point:")).count(), 1);
    assert_eq!(sup.len(), 14);
    let counsellor = store.scopes_of(id_of("tv.thu").await).await.unwrap();
    assert_eq!(counsellor.len(), 1);
    assert!(counsellor[0].starts_with("point:"));
    let mut seen = std::collections::BTreeSet::new();
    for v in ["tnv.hoa", "tnv.lan", "tnv.binh"] {
        let scopes = store.scopes_of(id_of(v).await).await.unwrap();
        assert_eq!(scopes.len(), 4, "{v}");
        for s in scopes {
            assert!(seen.insert(s), "a case is assigned twice");
        }
    }
    // Every record was written once, through a push, and audited once.
    let raw = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
    let records: i64 = raw
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert!(records > 100, "{records}");
    assert_eq!(
        store.verify_audit().await.unwrap(),
        donghanh_server::audit::Verdict::Intact {
            entries: u64::try_from(records).unwrap()
        }
    );
}
