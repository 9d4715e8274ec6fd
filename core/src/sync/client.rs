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
//! Errors carry no personal data: server messages are value-free by protocol, and network
//! errors name the server, not a record.

use std::sync::Once;

use super::RawJson;
use donghanh_protocol::{
    EnrollRequest, EnrollResponse, ErrorBody, PROTOCOL_HEADER, PROTOCOL_VERSION, PullPage,
    PushRequest, PushResponse, RefreshRequest, ScopeEvent, SnapshotPage, Tokens, codes,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::Scope;
use crate::store::Store;
use crate::{Error, Result};

/// Mutations sent per push request.
const PUSH_BATCH: usize = 200;
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
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("device_id", &self.device_id)
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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Network(format!("cannot start the sync runtime: {e}")))
}

fn http() -> Result<reqwest::Client> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Network(e.without_url().to_string()))
}

fn url(server: &str, path: &str) -> String {
    format!("{}{path}", server.trim_end_matches('/'))
}

/// Sends a request and decodes the answer, mapping the error shape to [`Error::Server`].
async fn call<T: DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T> {
    let resp = req
        .header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string())
        .send()
        .await
        .map_err(|e| Error::Network(e.without_url().to_string()))?;
    if resp.status().is_success() {
        return resp
            .json::<T>()
            .await
            .map_err(|e| Error::Network(e.without_url().to_string()));
    }
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(body) if body.code == codes::DEVICE_REVOKED => Err(Error::DeviceRevoked),
        Ok(body) => Err(Error::Server {
            code: body.code,
            message: body.message,
        }),
        Err(_) => Err(Error::Network(format!("the server answered {status}"))),
    }
}

/// Enrols with the server; returns the credentials to keep.
pub(crate) fn enroll(
    server: &str,
    username: &str,
    password: &str,
    label: &str,
) -> Result<Credentials> {
    let client = http()?;
    runtime()?.block_on(async {
        let body = EnrollRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            device_label: label.to_owned(),
        };
        let e: EnrollResponse = call(client.post(url(server, "/v1/enroll")).json(&body)).await?;
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
        })
    })
}

fn load_credentials(store: &Store) -> Result<Credentials> {
    let raw = store.read(|r| r.credentials())?.ok_or(Error::NotEnrolled)?;
    serde_json::from_slice(&raw).map_err(|_| Error::CorruptKeys)
}

fn save_credentials(store: &Store, creds: &Credentials) -> Result<()> {
    let raw = serde_json::to_vec(creds).map_err(|_| Error::CorruptKeys)?;
    store.write(|w| w.put_credentials(&raw))
}

/// Stores the credentials of a freshly enrolled device.
pub(crate) fn keep_credentials(store: &Store, creds: &Credentials) -> Result<()> {
    save_credentials(store, creds)
}

/// One sync round (see the module notes).
pub(crate) fn sync(store: &Store) -> Result<SyncReport> {
    let mut creds = load_credentials(store)?;
    let client = http()?;
    let rt = runtime()?;
    let mut report = SyncReport::default();
    // 1. Tokens.
    let refreshed: Result<Tokens> =
        rt.block_on(call(client.post(url(&creds.server, "/v1/token")).json(
            &RefreshRequest {
                device_id: creds.device_id,
                refresh_token: creds.refresh_token.clone(),
            },
        )));
    let tokens = match refreshed {
        Ok(t) => t,
        Err(Error::DeviceRevoked) => {
            store.write(|w| w.wipe())?;
            store.checkpoint()?;
            return Err(Error::DeviceRevoked);
        }
        Err(e) => return Err(e),
    };
    creds.refresh_token.clone_from(&tokens.refresh_token);
    save_credentials(store, &creds)?;
    let bearer = tokens.access_token;
    // 2. Push until the outbox is empty.
    loop {
        let batch = store.read(|r| r.pending_mutations(PUSH_BATCH))?;
        if batch.is_empty() {
            break;
        }
        let sent = batch.len();
        let resp: PushResponse = rt.block_on(call(
            client
                .post(url(&creds.server, "/v1/push"))
                .bearer_auth(&bearer)
                .json(&PushRequest { mutations: batch }),
        ))?;
        if resp.receipts.len() != sent {
            return Err(Error::Network(
                "the server answered a push with the wrong receipts".into(),
            ));
        }
        let summary = store.write(|w| w.apply_receipts(&resp.receipts))?;
        report.pushed += summary.acknowledged;
        report.rejected += summary.rejected;
        if summary.acknowledged + summary.rejected == 0 {
            // Nothing moved: stop rather than loop on the same batch.
            break;
        }
    }
    // 3. Pull until there is nothing more. The next page is fetched while this one is
    //    applied (on a thread of its own): it starts at this page's `next_cursor`, which is
    //    what applying this page stores, and is applied only once this page has committed.
    let start = store.read(|r| r.pull_cursor())?;
    let mut session = PullSession::new(start);
    let fetch = |cursor: u64, max_bytes: u32| -> Result<PullPage<RawJson>> {
        rt.block_on(call(
            client
                .get(url(
                    &creds.server,
                    &format!("/v1/pull?cursor={cursor}&max_bytes={max_bytes}"),
                ))
                .bearer_auth(&bearer),
        ))
    };
    let mut page_bytes = FIRST_PAGE_BYTES;
    let mut page = fetch(start, page_bytes)?;
    let bulk = page.has_more.then(|| store.bulk_writes()).transpose()?;
    loop {
        page_bytes = (page_bytes * 2).min(PAGE_BYTES);
        let (applied, next) = std::thread::scope(|s| {
            let applying = s.spawn(|| store.write(|w| w.apply_page(&page)));
            let next = page.has_more.then(|| fetch(page.next_cursor, page_bytes));
            (applying.join(), next)
        });
        let summary =
            applied.map_err(|_| Error::Storage("applying a pulled page failed".into()))??;
        session.read_at(page.as_of);
        report.pulled += summary.upserted + summary.kept_local + summary.deleted;
        for grant in summary.grants.iter().filter(|g| session.needs_snapshot(g)) {
            report.pulled += bootstrap(store, &client, &rt, &creds.server, &bearer, &grant.scope)?;
        }
        for revoke in &summary.revokes {
            session.purged.insert(revoke.scope.clone());
            let scope: Scope = revoke
                .scope
                .parse()
                .map_err(|_| Error::Network("the server sent an invalid scope".into()))?;
            store.write(|w| w.purge_scope(&scope))?;
            report.purged += 1;
        }
        if !summary.revokes.is_empty() {
            store.checkpoint()?;
        }
        match next {
            Some(next) => page = next?,
            None => break,
        }
    }
    if let Some(bulk) = bulk {
        drop(bulk);
        store.checkpoint()?;
    }
    Ok(report)
}

/// What one round's pull has seen, to tell which grants need a snapshot.
///
/// A grant normally does: the scope's older records were served while this device did not
/// hold it. A pull from cursor 0 is the exception. Each of its pages is chosen by the scopes
/// held when the server answers, so a scope granted at or before the log position the first
/// page was read at (`as_of`) is held for every page of the pull and arrives whole through
/// the pull itself, unless this pull purged it on the way (its later grant then needs the
/// snapshot). Without the exception a fresh phone would download everything twice.
#[derive(Debug)]
struct PullSession {
    /// The cursor the pull started from.
    start: u64,
    /// `as_of` of the first page (0: unknown, as from an older server).
    first_as_of: Option<u64>,
    /// Scopes purged during this pull.
    purged: std::collections::HashSet<String>,
}

impl PullSession {
    fn new(start: u64) -> Self {
        Self {
            start,
            first_as_of: None,
            purged: std::collections::HashSet::new(),
        }
    }

    /// Notes where a page was read; only the first page's position counts.
    fn read_at(&mut self, as_of: u64) {
        self.first_as_of.get_or_insert(as_of);
    }

    fn needs_snapshot(&self, grant: &ScopeEvent) -> bool {
        let whole_in_pull = self.start == 0
            && self.first_as_of.is_some_and(|a| grant.op_id <= a)
            && !self.purged.contains(&grant.scope);
        !whole_in_pull
    }
}

/// Downloads a newly granted scope from snapshot pages.
fn bootstrap(
    store: &Store,
    client: &reqwest::Client,
    rt: &tokio::runtime::Runtime,
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
            rt.block_on(call(client.get(url(server, &path)).bearer_auth(bearer)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use donghanh_protocol::ScopeEventKind;

    fn grant(op_id: u64, scope: &str) -> ScopeEvent {
        ScopeEvent {
            op_id,
            scope: scope.into(),
            kind: ScopeEventKind::Grant,
        }
    }

    #[test]
    fn a_fresh_pull_takes_scopes_granted_before_it_began_from_the_log() {
        let mut s = PullSession::new(0);
        s.read_at(100);
        s.read_at(250); // later pages do not move the bound
        assert!(!s.needs_snapshot(&grant(40, "person:a")));
        assert!(!s.needs_snapshot(&grant(100, "person:a")));
        // Granted while the pull ran: earlier pages were served without it.
        assert!(s.needs_snapshot(&grant(101, "person:b")));
        // Purged on the way and granted again: what the pull brought is gone.
        s.purged.insert("person:a".into());
        assert!(s.needs_snapshot(&grant(90, "person:a")));
    }

    #[test]
    fn a_pull_from_a_cursor_or_from_an_older_server_snapshots_every_grant() {
        let mut resumed = PullSession::new(7);
        resumed.read_at(100);
        assert!(resumed.needs_snapshot(&grant(40, "person:a")));
        let mut older = PullSession::new(0);
        older.read_at(0);
        assert!(older.needs_snapshot(&grant(40, "person:a")));
    }
}
