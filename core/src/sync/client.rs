//! The sync client: enrolment and one sync round against the server (DESIGN.md §3).
//!
//! Blocking for its callers (the CLI, the FFI layer), asynchronous inside: each call runs on a
//! small current-thread tokio runtime that the core owns, with reqwest over rustls and ring (no
//! OpenSSL). One round:
//!
//! 1. trade the refresh token for fresh tokens (stored before anything else, so a crash never
//!    loses the rotated token); `device_revoked` means wipe, now;
//! 2. push the outbox in batches until it is empty, applying each batch's receipts;
//! 3. pull pages until there are no more, each applied with its cursor in one transaction;
//!    a grant bootstraps the scope from snapshot pages (unless the pull itself brings it whole,
//!    see [`PullSession`]), a revoke purges the scope (its pending mutations were pushed in
//!    step 2) and checkpoints the WAL so nothing of it lingers.
//!
//! Besides the round, two online calls of a supervisor: [`conflicts`] lists the fields the
//! server merged from two sides, with the value kept and the one that lost, and
//! [`resolve_conflict`] keeps the current value or restores the losing one. They start like a
//! round, by trading the refresh token (a revoked device is wiped there too).
//!
//! The refresh token rotates on every use, so two calls that trade the same one would lose
//! one of them (the server takes a token once). Every read-trade-store of the credentials
//! therefore holds one lock ([`TOKENS`]): a sync on one thread and a conflict list on another
//! take their turns for the trade, then run side by side on their own access tokens.
//!
//! Errors carry no personal data: server messages are value-free by protocol, and network
//! errors name the server, not a record. Conflict values may identify a person (a phone
//! number, a name): they are returned to the caller and never logged nor put in an error.

use std::sync::{Mutex, Once, PoisonError};

use chrono::Utc;
use donghanh_protocol::{
    ConflictList, Directory, EnrollRequest, EnrollResponse, ErrorBody, PROTOCOL_HEADER,
    PROTOCOL_VERSION, PullPage, PushRequest, PushResponse, RefreshRequest, ResolveConflict,
    ScopeAck, ScopeAcks, ScopeEventKind, SnapshotPage, Tokens, codes,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::{Id, Scope};
use crate::store::Store;
use crate::sync::{RawJson, ScopeTask};
use crate::{Error, Result};

/// Mutations sent per push request.
const PUSH_BATCH: usize = 200;
/// Most acknowledgements sent in one request (the server's bound).
const MAX_ACKS: usize = 4_000;
/// Records asked for per snapshot page.
const SNAPSHOT_PAGE: u32 = 500;
/// Bytes of records asked for in the first pull page of a round, doubled for each next page
/// up to [`PAGE_BYTES`]. Nothing overlaps the first page's download, so it is small; later
/// pages download while the one before is applied, and big ones amortise what a transaction
/// costs a large store (its index pages rewritten). The server may send less.
const FIRST_PAGE_BYTES: u32 = 256 * 1024;
/// The most bytes of records asked for in one pull page (the server's default bound).
const PAGE_BYTES: u32 = 2 * 1024 * 1024;

/// What the device keeps to talk to its server (sealed in the store).
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    /// The server's base address.
    pub server: String,
    /// This device's id.
    pub device_id: uuid::Uuid,
    /// The user's id.
    pub user_id: uuid::Uuid,
    /// The user's role code.
    pub role: String,
    /// The current refresh token.
    pub refresh_token: String,
    /// The key lease the server last gave, in seconds.
    #[serde(default = "default_lease")]
    pub lease_seconds: u64,
    /// The refresh token this device proposed in an exchange whose answer has not arrived:
    /// the next exchange proposes it again, so that a lost answer never locks the device out
    /// (see [`RefreshRequest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_refresh_token: Option<String>,
}

/// The lease assumed for credentials stored before leases were kept: the server's default.
fn default_lease() -> u64 {
    14 * 24 * 3600
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

/// What a user types to enrol a device.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    /// The server's base address.
    pub server: &'a str,
    /// The username.
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// What the device is called in the server's device list.
    pub label: &'a str,
}

impl std::fmt::Debug for Login<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// What one sync round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Mutations acknowledged by the server.
    pub pushed: usize,
    /// Mutations the server refused (kept for the user to see).
    pub rejected: usize,
    /// Records received (pull pages and snapshots).
    pub pulled: usize,
    /// Scopes removed from this device.
    pub purged: usize,
}

fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Another part of the process may have installed one already: that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

/// The HTTP methods the protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` with a JSON body.
    Post,
}

/// One request of the sync protocol, as the client makes it: a path (with its query) under the
/// server's base address, the access token, and a JSON body for `POST`.
#[derive(Clone)]
pub struct WireRequest {
    /// The method.
    pub method: Method,
    /// Path and query, e.g. `/v1/pull?cursor=3`.
    pub path: String,
    /// The access token, sent as `Authorization: Bearer`.
    pub bearer: Option<String>,
    /// The JSON body of a `POST`.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the token nor the body (which may carry sealed-then-opened records) is shown.
        f.debug_struct("WireRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl WireRequest {
    fn get(path: impl Into<String>, bearer: Option<&str>) -> Self {
        Self {
            method: Method::Get,
            path: path.into(),
            bearer: bearer.map(str::to_owned),
            body: None,
        }
    }

    fn post(path: impl Into<String>, bearer: Option<&str>, body: &impl Serialize) -> Result<Self> {
        let body = serde_json::to_vec(body)
            .map_err(|_| Error::Network("a request could not be encoded".into()))?;
        Ok(Self {
            method: Method::Post,
            path: path.into(),
            bearer: bearer.map(str::to_owned),
            body: Some(body),
        })
    }
}

/// The server's whole answer to one [`WireRequest`].
#[derive(Clone)]
pub struct WireResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The protocol header the server sent, if any.
    pub protocol: Option<String>,
    /// The body, decompressed.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for WireResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireResponse")
            .field("status", &self.status)
            .field("protocol", &self.protocol)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// How the sync client reaches its server: one request, one whole answer, blocking. In the
/// field this is [`Http`]; the deterministic simulation (`tests/sim`) serves the real server's
/// router in the same process and drops, duplicates, delays and cuts exchanges by a seed.
///
/// An exchange that may or may not have reached the server fails with [`Error::Network`]: the
/// protocol is built so that sending it again is always safe (DESIGN.md §3).
pub trait Transport: Send + Sync {
    /// Sends `request` to the server at `server` (the base address the device enrolled with)
    /// and waits for the whole answer.
    fn exchange(&self, server: &str, request: WireRequest) -> Result<WireResponse>;
}

/// HTTP over reqwest (rustls with ring, no OpenSSL) on a small current-thread runtime the
/// client owns.
#[derive(Debug)]
pub struct Http {
    client: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Http {
    /// A client with the protocol's timeouts.
    pub fn new() -> Result<Self> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Network(e.without_url().to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Network(format!("cannot start the sync runtime: {e}")))?;
        Ok(Self { client, rt })
    }
}

impl Transport for Http {
    fn exchange(&self, server: &str, request: WireRequest) -> Result<WireResponse> {
        let target = url(server, &request.path);
        let mut req = match request.method {
            Method::Get => self.client.get(target),
            Method::Post => self.client.post(target),
        };
        req = req.header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(bearer) = &request.bearer {
            req = req.bearer_auth(bearer);
        }
        if let Some(body) = request.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        self.rt.block_on(async {
            let resp = req
                .send()
                .await
                .map_err(|e| Error::Network(e.without_url().to_string()))?;
            let status = resp.status().as_u16();
            let protocol = resp
                .headers()
                .get(PROTOCOL_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned());
            let body = resp
                .bytes()
                .await
                .map_err(|e| Error::Network(e.without_url().to_string()))?;
            Ok(WireResponse {
                status,
                protocol,
                body: body.to_vec(),
            })
        })
    }
}

/// Sends a request and checks the server's protocol header: a server that speaks another
/// protocol version is refused before its body is read.
fn send(net: &dyn Transport, server: &str, request: WireRequest) -> Result<WireResponse> {
    let resp = net.exchange(server, request)?;
    if resp.protocol.as_deref() != Some(PROTOCOL_VERSION.to_string().as_str()) {
        return Err(Error::Network(format!(
            "the server does not speak protocol version {PROTOCOL_VERSION}"
        )));
    }
    Ok(resp)
}

/// Maps an error answer to [`Error::Server`] (or [`Error::DeviceRevoked`]).
fn refusal(resp: &WireResponse) -> Error {
    match serde_json::from_slice::<ErrorBody>(&resp.body) {
        Ok(body) if body.code == codes::DEVICE_REVOKED => Error::DeviceRevoked,
        Ok(body) => Error::Server {
            code: body.code,
            message: body.message,
        },
        Err(_) => Error::Network(format!("the server answered {}", resp.status)),
    }
}

/// Decodes an answer's body. The error names where the body broke off, never a value in it.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::Network(format!(
            "the server's answer could not be read ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// Sends a request and decodes the answer, mapping the error shape to [`Error::Server`].
fn call<T: DeserializeOwned>(net: &dyn Transport, server: &str, request: WireRequest) -> Result<T> {
    let resp = send(net, server, request)?;
    if (200..300).contains(&resp.status) {
        return decode(&resp.body);
    }
    Err(refusal(&resp))
}

/// Like [`call`] for an endpoint that answers 204 with no body.
fn call_empty(net: &dyn Transport, server: &str, request: WireRequest) -> Result<()> {
    let resp = send(net, server, request)?;
    if (200..300).contains(&resp.status) {
        return Ok(());
    }
    Err(refusal(&resp))
}

/// Enrols with the server; returns the credentials to keep.
pub(crate) fn enroll(
    net: &dyn Transport,
    server: &str,
    username: &str,
    password: &str,
    label: &str,
) -> Result<Credentials> {
    let body = EnrollRequest {
        username: username.to_owned(),
        password: password.to_owned(),
        device_label: label.to_owned(),
    };
    let e: EnrollResponse = call(net, server, WireRequest::post("/v1/enroll", None, &body)?)?;
    let role = serde_json::to_value(e.role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(Credentials {
        server: server.to_owned(),
        device_id: e.device_id,
        user_id: e.user_id,
        role,
        refresh_token: e.tokens.refresh_token,
        lease_seconds: e.key_lease_seconds,
        next_refresh_token: None,
    })
}

/// A fresh refresh token to propose: 32 random bytes in URL-safe base64, as the server makes
/// its own.
fn new_refresh_token() -> Result<String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Storage("random generator failed".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn load_credentials(store: &Store) -> Result<Credentials> {
    let raw = store.read(|r| r.credentials())?.ok_or(Error::NotEnrolled)?;
    serde_json::from_slice(&raw).map_err(|_| Error::CorruptKeys)
}

fn save_credentials(store: &Store, creds: &Credentials) -> Result<()> {
    let raw = serde_json::to_vec(creds).map_err(|_| Error::CorruptKeys)?;
    store.write(|w| w.put_credentials(&raw))
}

/// Held while the stored credentials are read, traded or rewritten (see the module notes).
static TOKENS: Mutex<()> = Mutex::new(());

/// Records the key lease the server last gave, over the credentials as they are now stored
/// (another call may have rotated the refresh token since this round read them).
fn save_lease_seconds(store: &Store, lease_seconds: u64) -> Result<()> {
    let _turn = TOKENS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut creds = load_credentials(store)?;
    creds.lease_seconds = lease_seconds;
    save_credentials(store, &creds)
}

/// Stores the credentials of a freshly enrolled device and starts its key lease.
pub(crate) fn keep_credentials(store: &Store, creds: &Credentials) -> Result<()> {
    save_credentials(store, creds)?;
    let until = Utc::now().timestamp().max(0).unsigned_abs() + creds.lease_seconds;
    store.write(|w| w.put_lease_until(until))
}

/// Where a sync round is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPhase {
    /// Sending the outbox.
    Pushing,
    /// Receiving changes.
    Pulling,
    /// Downloading a newly granted scope.
    Bootstrapping,
    /// Removing a scope taken away.
    Purging,
    /// The round finished.
    Done,
}

/// What a running sync round tells the app (DESIGN.md §6). Every method has a default that
/// does nothing; they are called on the syncing thread, between steps, never inside a write.
/// Nothing passed carries personal data: counts, scope kinds, codes.
pub trait SyncListener {
    /// The round moved on: the phase and the counts so far.
    fn progress(&self, _phase: SyncPhase, _report: &SyncReport) {}
    /// The server refused one local change (kept in the rejected list for the user).
    fn rejected(&self, _client_seq: u64, _code: &str) {}
    /// A scope was removed from this device (`person`, `point`, `team`, `user`): a case was
    /// reassigned away, for example. The app tells the user.
    fn scope_removed(&self, _scope_kind: &str) {}
    /// The device was revoked and its data wiped.
    fn wiped(&self) {}
}

/// A listener that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoListener;

impl SyncListener for NoListener {}

/// One connection's worth of what a round needs.
struct Round<'a> {
    store: &'a Store,
    net: &'a dyn Transport,
    creds: Credentials,
    bearer: String,
    listener: &'a dyn SyncListener,
    report: SyncReport,
    /// Whether the server takes acknowledgements in batches (`POST /v1/scopes/acks`).
    batch_acks: bool,
}

/// What every online call starts with: the credentials and a fresh access token.
struct Online {
    creds: Credentials,
    bearer: String,
}

impl Online {
    /// Trades the stored refresh token for fresh tokens and stores the rotated one before
    /// anything else (so a crash never loses it). A revoked device is wiped here, tells
    /// `listener`, and answers [`Error::DeviceRevoked`].
    fn connect(store: &Store, net: &dyn Transport, listener: &dyn SyncListener) -> Result<Online> {
        let turn = TOKENS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut creds = load_credentials(store)?;
        // The token to get in exchange is chosen, and kept, before anything is sent: whether
        // or not the answer arrives, the device knows the token the server may now hold.
        let next = match &creds.next_refresh_token {
            Some(next) => next.clone(),
            None => {
                let next = new_refresh_token()?;
                creds.next_refresh_token = Some(next.clone());
                save_credentials(store, &creds)?;
                next
            }
        };
        let refreshed: Result<Tokens> = call(
            net,
            &creds.server,
            WireRequest::post(
                "/v1/token",
                None,
                &RefreshRequest {
                    device_id: creds.device_id,
                    refresh_token: creds.refresh_token.clone(),
                    next_refresh_token: Some(next),
                },
            )?,
        );
        let tokens = match refreshed {
            Ok(t) => t,
            Err(Error::DeviceRevoked) => {
                store.write(|w| w.wipe())?;
                store.checkpoint()?;
                // Told outside the lock: the listener may call back into the device.
                drop(turn);
                listener.wiped();
                return Err(Error::DeviceRevoked);
            }
            Err(e) => return Err(e),
        };
        creds.refresh_token.clone_from(&tokens.refresh_token);
        creds.next_refresh_token = None;
        save_credentials(store, &creds)?;
        drop(turn);
        Ok(Online {
            creds,
            bearer: tokens.access_token,
        })
    }
}

/// One sync round (see the module notes).
pub(crate) fn sync(
    store: &Store,
    net: &dyn Transport,
    listener: &dyn SyncListener,
) -> Result<SyncReport> {
    // 1. Tokens.
    let Online { creds, bearer } = Online::connect(store, net, listener)?;
    let mut round = Round {
        store,
        net,
        creds,
        bearer,
        listener,
        report: SyncReport::default(),
        batch_acks: true,
    };
    // 2. Push; 3. finish scope work an interrupted round left; 4. pull.
    round.push_all()?;
    round.scope_work()?;
    round.pull_all()?;
    // 5. The staff directory: a supervisor's, to assign work offline; a counsellor's (their
    // own entry), for the community point their sessions are planned at.
    if round.creds.role == "supervisor" || round.creds.role == "counsellor" {
        let directory: Directory = call(
            net,
            &round.creds.server,
            WireRequest::get("/v1/directory", Some(&round.bearer)),
        )?;
        let raw = serde_json::to_vec(&directory.users).map_err(|_| Error::CorruptKeys)?;
        store.write(|w| w.put_directory(&raw))?;
    }
    // 6. The key lease runs again from this successful contact.
    let until = Utc::now().timestamp().max(0).unsigned_abs() + round.creds.lease_seconds;
    store.write(|w| w.put_lease_until(until))?;
    listener.progress(SyncPhase::Done, &round.report);
    Ok(round.report)
}

impl Round<'_> {
    /// Pushes the outbox in batches until it is empty (or the server stops taking it).
    fn push_all(&mut self) -> Result<()> {
        loop {
            let batch = self.store.read(|r| r.pending_mutations(PUSH_BATCH))?;
            if batch.is_empty() {
                return Ok(());
            }
            self.listener.progress(SyncPhase::Pushing, &self.report);
            let sent = batch.len();
            let resp: PushResponse = call(
                self.net,
                &self.creds.server,
                WireRequest::post(
                    "/v1/push",
                    Some(&self.bearer),
                    &PushRequest { mutations: batch },
                )?,
            )?;
            if resp.receipts.len() != sent {
                return Err(Error::Network(
                    "the server answered a push with the wrong receipts".into(),
                ));
            }
            if resp.key_lease_seconds != self.creds.lease_seconds {
                self.creds.lease_seconds = resp.key_lease_seconds;
                save_lease_seconds(self.store, resp.key_lease_seconds)?;
            }
            let summary = self.store.write(|w| w.apply_receipts(&resp.receipts))?;
            for r in &resp.receipts {
                if r.outcome == donghanh_protocol::Outcome::Rejected {
                    let code = r.reason.as_ref().map_or("rejected", |e| e.code.as_str());
                    self.listener.rejected(r.client_seq, code);
                }
            }
            self.report.pushed += summary.acknowledged;
            self.report.rejected += summary.rejected;
            if summary.acknowledged + summary.rejected == 0 {
                // Nothing moved: stop rather than loop on the same batch.
                return Ok(());
            }
        }
    }

    /// Pulls pages until there are no more, doing the scope work each page records. The next
    /// page is fetched while this one is applied (on a thread of its own): it starts at this
    /// page's `next_cursor`, which is what applying this page stores, and is applied only once
    /// this page has committed and its scope work is done. A cursor older than the server's
    /// tombstone horizon starts the download again from nothing (once per round).
    fn pull_all(&mut self) -> Result<()> {
        let mut restarted = false;
        let mut page = loop {
            self.listener.progress(SyncPhase::Pulling, &self.report);
            let cursor = self.store.read(|r| r.pull_cursor())?;
            match fetch_page(
                self.net,
                &self.creds.server,
                &self.bearer,
                cursor,
                FIRST_PAGE_BYTES,
            ) {
                Ok(p) => break p,
                Err(Error::Server { code, .. }) if code == codes::CURSOR_EXPIRED && !restarted => {
                    restarted = true;
                    self.store.write(|w| w.rebootstrap())?;
                    self.store.checkpoint()?;
                }
                Err(e) => return Err(e),
            }
        };
        // A pull of many pages lets the write-ahead log grow between checkpoints (one at the end).
        let bulk = page
            .has_more
            .then(|| self.store.bulk_writes())
            .transpose()?;
        let mut page_bytes = FIRST_PAGE_BYTES;
        loop {
            page_bytes = page_bytes.saturating_mul(2).min(PAGE_BYTES);
            let (applied, next) = std::thread::scope(|s| {
                let store = self.store;
                let applying = s.spawn(|| store.write(|w| w.apply_page(&page)));
                let next = page.has_more.then(|| {
                    fetch_page(
                        self.net,
                        &self.creds.server,
                        &self.bearer,
                        page.next_cursor,
                        page_bytes,
                    )
                });
                (applying.join(), next)
            });
            let summary =
                applied.map_err(|_| Error::Storage("applying a pulled page failed".into()))??;
            self.report.pulled += summary.upserted + summary.kept_local + summary.deleted;
            self.scope_work()?;
            match next {
                Some(next) => {
                    self.listener.progress(SyncPhase::Pulling, &self.report);
                    page = next?;
                }
                None => break,
            }
        }
        if let Some(bulk) = bulk {
            drop(bulk);
            self.store.checkpoint()?;
        }
        Ok(())
    }

    /// Does the recorded scope work in log order: bootstrap, purge, acknowledge. Each task is
    /// removed in the transaction that completes it, so an interrupted round resumes here.
    fn scope_work(&mut self) -> Result<()> {
        loop {
            let work = self.store.read(|r| r.pending_scope_work())?;
            let Some(task) = work.first().cloned() else {
                return Ok(());
            };
            match &task {
                ScopeTask::Bootstrap { scope, op_id } => {
                    // A scope revoked again later in the list needs no download.
                    let revoked_later = work
                        .iter()
                        .any(|t| matches!(t, ScopeTask::Purge { scope: s, .. } if s == scope));
                    if !revoked_later {
                        self.listener
                            .progress(SyncPhase::Bootstrapping, &self.report);
                        self.report.pulled += bootstrap(
                            self.store,
                            self.net,
                            &self.creds.server,
                            &self.bearer,
                            scope,
                        )?;
                    }
                    let ack = ScopeTask::Ack {
                        scope: scope.clone(),
                        kind: ScopeEventKind::Grant,
                        op_id: *op_id,
                    };
                    self.store
                        .write(|w| w.finish_scope_task(&task, Some(ack)))?;
                }
                ScopeTask::Purge { scope, op_id } => {
                    let parsed: Scope = scope
                        .parse()
                        .map_err(|_| Error::Network("the server sent an invalid scope".into()))?;
                    // What the device still holds for the scope goes to the server first.
                    self.push_all()?;
                    self.listener.progress(SyncPhase::Purging, &self.report);
                    let ack = ScopeTask::Ack {
                        scope: scope.clone(),
                        kind: ScopeEventKind::Revoke,
                        op_id: *op_id,
                    };
                    self.store.write(|w| {
                        w.purge_scope(&parsed)?;
                        w.finish_scope_task(&task, Some(ack))
                    })?;
                    // Nothing of the scope may linger in the write-ahead log.
                    self.store.checkpoint()?;
                    self.report.purged += 1;
                    self.listener.scope_removed(parsed.kind());
                }
                ScopeTask::Ack { .. } if self.batch_acks => {
                    // Every acknowledgement at the head of the list, in one request: a fresh
                    // phone has one per case its first pull brought.
                    let acks: Vec<ScopeTask> = work
                        .iter()
                        .take_while(|t| matches!(t, ScopeTask::Ack { .. }))
                        .take(MAX_ACKS)
                        .cloned()
                        .collect();
                    let body = ScopeAcks {
                        acks: acks
                            .iter()
                            .filter_map(|t| match t {
                                ScopeTask::Ack { scope, kind, op_id } => Some(ScopeAck {
                                    scope: scope.clone(),
                                    kind: *kind,
                                    op_id: *op_id,
                                }),
                                _ => None,
                            })
                            .collect(),
                    };
                    let sent: Result<()> = call_empty(
                        self.net,
                        &self.creds.server,
                        WireRequest::post("/v1/scopes/acks", Some(&self.bearer), &body)?,
                    );
                    match sent {
                        Ok(()) => self.store.write(|w| w.finish_scope_tasks(&acks))?,
                        // A server without the batch route: one request per acknowledgement.
                        Err(Error::Server { code, .. }) if code == codes::NOT_FOUND => {
                            self.batch_acks = false;
                        }
                        Err(e) => return Err(e),
                    }
                }
                ScopeTask::Ack { scope, kind, op_id } => {
                    let body = ScopeAck {
                        scope: scope.clone(),
                        kind: *kind,
                        op_id: *op_id,
                    };
                    let sent: Result<()> = call_empty(
                        self.net,
                        &self.creds.server,
                        WireRequest::post("/v1/scopes/ack", Some(&self.bearer), &body)?,
                    );
                    match sent {
                        Ok(_) => {}
                        // An event the server no longer knows for us: nothing to acknowledge.
                        Err(Error::Server { code, .. }) if code == codes::NOT_FOUND => {}
                        Err(e) => return Err(e),
                    }
                    self.store.write(|w| w.finish_scope_task(&task, None))?;
                }
            }
        }
    }
}

/// One pull page from `cursor`, its records kept as JSON text (parsed once, into their entity).
fn fetch_page(
    net: &dyn Transport,
    server: &str,
    bearer: &str,
    cursor: u64,
    max_bytes: u32,
) -> Result<PullPage<RawJson>> {
    call(
        net,
        server,
        WireRequest::get(
            format!("/v1/pull?cursor={cursor}&max_bytes={max_bytes}"),
            Some(bearer),
        ),
    )
}

/// Downloads a newly granted scope from snapshot pages.
fn bootstrap(
    store: &Store,
    net: &dyn Transport,
    server: &str,
    bearer: &str,
    scope: &str,
) -> Result<usize> {
    let mut after: Option<uuid::Uuid> = None;
    let mut stored = 0;
    loop {
        // A scope is `kind:uuid` and `after` a uuid: nothing in them needs escaping.
        let mut path = format!("/v1/scopes/{scope}/snapshot?limit={SNAPSHOT_PAGE}");
        if let Some(a) = after {
            path.push_str(&format!("&after={a}"));
        }
        let page: Result<SnapshotPage<RawJson>> =
            call(net, server, WireRequest::get(path, Some(bearer)));
        let page = match page {
            Ok(p) => p,
            // Granted then revoked again before we asked: nothing to fetch.
            Err(Error::Server { code, .. }) if code == codes::NOT_FOUND => return Ok(stored),
            Err(e) => return Err(e),
        };
        stored += store.write(|w| w.apply_snapshot(&page))?;
        match page.next_after {
            Some(a) => after = Some(a),
            None => return Ok(stored),
        }
    }
}

/// A field changed on two sides, as the supervisor sees it (DESIGN.md §3): the server kept the
/// later commit and keeps the losing value here until the supervisor keeps or restores it.
/// The values may identify a person, so `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The conflict's id (what [`resolve_conflict`] takes).
    pub id: uuid::Uuid,
    /// The record whose field conflicted.
    pub record_id: Id,
    /// The record's kind code (`person`, `episode`…).
    pub kind: String,
    /// The record's scope (`person:<id>`…).
    pub scope: String,
    /// The person the record is about, when its scope is a person's.
    pub person: Option<Id>,
    /// The field's name.
    pub field: String,
    /// The value the record has now (the later commit), as JSON.
    pub kept: serde_json::Value,
    /// The value that lost, which the supervisor may restore, as JSON.
    pub lost: serde_json::Value,
    /// The device whose value lost.
    pub lost_by_device: uuid::Uuid,
    /// The server's log position at which the conflict arose (orders conflicts in time; the
    /// server keeps no wall-clock time for it).
    pub op_id: u64,
}

impl Conflict {
    fn from_wire(c: donghanh_protocol::Conflict<serde_json::Value>) -> Self {
        let person = match c.scope.parse::<Scope>() {
            Ok(Scope::Person(p)) => Some(p),
            _ => None,
        };
        Conflict {
            id: c.id,
            record_id: Id::from(c.record_id),
            kind: c.kind,
            scope: c.scope,
            person,
            field: c.field,
            kept: c.kept,
            lost: c.lost,
            lost_by_device: c.lost_by_device,
            op_id: c.op_id,
        }
    }

    /// The kept value as a person reads it (see [`Conflict::display`]).
    #[must_use]
    pub fn kept_text(&self) -> Option<String> {
        Self::display(&self.kept)
    }

    /// The losing value as a person reads it (see [`Conflict::display`]).
    #[must_use]
    pub fn lost_text(&self) -> Option<String> {
        Self::display(&self.lost)
    }

    /// A value as a person reads it: text as it is, nothing (JSON `null`) as `None`, anything
    /// else (a number, a list, an object) as compact JSON.
    #[must_use]
    pub fn display(value: &serde_json::Value) -> Option<String> {
        match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

impl std::fmt::Debug for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conflict")
            .field("id", &self.id)
            .field("record_id", &self.record_id)
            .field("kind", &self.kind)
            .field("field", &self.field)
            .field("op_id", &self.op_id)
            .finish_non_exhaustive()
    }
}

/// What a conflict call's refusal means to the caller: the server's `forbidden` is a role that
/// may not do this, its `not_found` a conflict that is not open in the caller's cases.
fn conflict_refusal(e: Error) -> Error {
    match e {
        Error::Server { code, .. } if code == codes::FORBIDDEN => Error::SupervisorOnly,
        Error::Server { code, .. } if code == codes::NOT_FOUND => {
            Error::NotFound { kind: "conflict" }
        }
        other => other,
    }
}

/// The open conflicts in the supervisor's cases, oldest first. Online: asks the server.
pub(crate) fn conflicts(store: &Store, net: &dyn Transport) -> Result<Vec<Conflict>> {
    let online = Online::connect(store, net, &NoListener)?;
    let list: ConflictList<serde_json::Value> = call(
        net,
        &online.creds.server,
        WireRequest::get("/v1/conflicts", Some(&online.bearer)),
    )
    .map_err(conflict_refusal)?;
    Ok(list
        .conflicts
        .into_iter()
        .map(Conflict::from_wire)
        .collect())
}

/// Resolves an open conflict: `restore` puts the losing value back (as a new change that
/// reaches the devices at their next sync), otherwise the current value stays.
pub(crate) fn resolve_conflict(
    store: &Store,
    net: &dyn Transport,
    id: uuid::Uuid,
    restore: bool,
) -> Result<()> {
    let online = Online::connect(store, net, &NoListener)?;
    call_empty(
        net,
        &online.creds.server,
        WireRequest::post(
            format!("/v1/conflicts/{id}/resolve"),
            Some(&online.bearer),
            &ResolveConflict { restore },
        )?,
    )
    .map_err(conflict_refusal)
}
