//! `donghanh-protocol`: the wire types shared by the sync client and the server.
//!
//! Serde types only: no I/O, no storage, no crypto, and no JSON library (DESIGN.md §1). Where a
//! message carries record content (a patch, a record, a conflicting value) the type is generic
//! over `P`, the JSON value type of the side that uses it (`serde_json::Value` in both the core
//! and the server), so this crate depends on serde and uuid alone.
//!
//! The JSON shape of every type is frozen by fixture tests in `tests/fixtures.rs`: changing a
//! fixture is a protocol change and needs a new [`PROTOCOL_VERSION`]. Requests refuse unknown
//! fields (a typo must not be silently ignored by the server); responses accept them, so that an
//! older client keeps working against a server that adds a field within the same version.
//!
//! Endpoints (all under `/v1`, JSON bodies, the [`PROTOCOL_HEADER`] on every request and
//! response, errors always as [`ErrorBody`]):
//!
//! | method and path | request | response |
//! |---|---|---|
//! | `POST /v1/enroll` | [`EnrollRequest`] | [`EnrollResponse`] |
//! | `POST /v1/token` | [`RefreshRequest`] | [`Tokens`] |
//! | `POST /v1/push` | [`PushRequest`] | [`PushResponse`] |
//! | `GET /v1/pull?cursor=&limit=&max_bytes=` | [`PullQuery`] | [`PullPage`] |
//! | `GET /v1/scopes/{scope}/snapshot?after=&limit=` | [`SnapshotQuery`] | [`SnapshotPage`] |
//! | `POST /v1/scopes/ack` | [`ScopeAck`] | empty (204) |
//! | `POST /v1/scopes/acks` | [`ScopeAcks`] | empty (204) |
//! | `GET /v1/directory` | – | [`Directory`] |
//! | `GET /v1/conflicts` | – | [`ConflictList`] |
//! | `POST /v1/conflicts/{id}/resolve` | [`ResolveConflict`] | empty (204) |
//!
//! Access tokens travel as `Authorization: Bearer …`; the device is the one the token was issued
//! to, never one named in a body.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version this build speaks. Both sides check it on every request.
pub const PROTOCOL_VERSION: u32 = 1;

/// The header that carries [`PROTOCOL_VERSION`].
pub const PROTOCOL_HEADER: &str = "x-donghanh-protocol";

/// The one error shape of every endpoint: a stable machine code and a message for people.
/// Messages never carry personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Stable code a client acts on: one of [`codes`].
    pub code: String,
    /// A human-readable explanation without personal data.
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The stable error codes of [`ErrorBody::code`].
pub mod codes {
    /// The body or query is malformed, of the wrong type, out of range, or breaks a domain rule.
    pub const INVALID_INPUT: &str = "invalid_input";
    /// No valid credentials (missing, wrong or expired token; wrong password).
    pub const UNAUTHORISED: &str = "unauthorised";
    /// Authenticated, but this user may not do this or see this.
    pub const FORBIDDEN: &str = "forbidden";
    /// No such resource (or one the caller may not know exists).
    pub const NOT_FOUND: &str = "not_found";
    /// The device was revoked: it must wipe its data and stop.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The protocol header is missing or names another version.
    pub const PROTOCOL_MISMATCH: &str = "protocol_mismatch";
    /// Too many attempts: try again later.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The body is larger than the endpoint accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The server failed; nothing was changed. The message says no more.
    pub const INTERNAL: &str = "internal";
    /// The server's storage is full: nothing was saved; the device keeps its changes and
    /// sends them again later (HTTP 507).
    pub const STORAGE_FULL: &str = "storage_full";
    /// The pull cursor is older than the server's tombstone horizon: the device must
    /// re-bootstrap every scope it holds from snapshots instead of pulling (HTTP 410).
    pub const CURSOR_EXPIRED: &str = "cursor_expired";
}

/// What a user is, and so what they see (DESIGN.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees the people actively assigned to them and their own tasks.
    Volunteer,
    /// Sees the sessions of their community point and its attendees' minimal identity.
    Counsellor,
    /// Sees every case of their commune.
    Supervisor,
    /// Sees aggregates of their subtree; names only by audited break-the-glass.
    Officer,
    /// Manages org units, users and devices; no case content.
    Admin,
}

/// Enrolment of a device by a user's login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The user's login name.
    pub username: String,
    /// The user's password (sent once, over TLS; never stored by the device).
    pub password: String,
    /// A label for the device that identifies no person ("Android 13, Redmi 12").
    pub device_label: String,
}

/// A freshly enrolled device: its identity and its first tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The device's own id, used in every mutation's idempotency key.
    pub device_id: Uuid,
    /// The user the device belongs to.
    pub user_id: Uuid,
    /// The user's role.
    pub role: Role,
    /// The first access and refresh tokens.
    pub tokens: Tokens,
    /// How long the device may keep its data without a successful sync (the key lease).
    pub key_lease_seconds: u64,
}

/// A device's tokens. The refresh token is rotated on every use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Short-lived bearer token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub access_expires_in: u64,
    /// Long-lived, revocable token that buys new access tokens; stored hashed by the server.
    pub refresh_token: String,
}

/// Exchange of a refresh token for new tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The device the refresh token was issued to.
    pub device_id: Uuid,
    /// The current refresh token.
    pub refresh_token: String,
    /// The refresh token the device proposes to get in exchange, kept on the device before it
    /// asks. It makes the exchange idempotent: if the answer is lost, the device asks again
    /// with the same pair and the server, which already holds the proposed token, answers
    /// again, where a token the server made would be lost with its answer and lock the device
    /// out. 43 characters of URL-safe base64 (32 random bytes). Without it the server makes
    /// the new token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_refresh_token: Option<String>,
}

/// What a mutation does to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationOp {
    /// A new record; the patch is the whole record.
    Create,
    /// Changed fields of an existing record; the patch holds only those fields.
    Update,
    /// The record is deleted (kept as a tombstone until every device has seen it).
    Delete,
}

/// One local change, as the device's outbox recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation<P> {
    /// The device's sequence number: with the device id, the idempotency key.
    pub client_seq: u64,
    /// The record changed.
    pub record_id: Uuid,
    /// The record's kind code (`visit`, `task`, …).
    pub kind: String,
    /// The record's scope (`person:<id>`, …).
    pub scope: String,
    /// What the change does.
    pub op: MutationOp,
    /// The server version the device changed (0 for a create).
    pub base_version: u64,
    /// The whole record (create), the changed fields (update) or an empty object (delete).
    pub patch: P,
}

/// A batch of mutations, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest<P> {
    /// The mutations, in `client_seq` order.
    pub mutations: Vec<Mutation<P>>,
}

/// What became of one mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Applied as sent.
    Applied,
    /// Applied, merged field by field with changes the device had not seen.
    Merged,
    /// Applied, but a field changed on both sides: the server's order decided and the losing
    /// value is kept in a conflict record for the supervisor.
    Conflict,
    /// Not applied (invalid, or not allowed); the reason says why. Never blocks later ones.
    Rejected,
}

/// The receipt of one mutation. Replaying a mutation returns its original receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The mutation's sequence number.
    pub client_seq: u64,
    /// The record it changed.
    pub record_id: Uuid,
    /// What became of it.
    pub outcome: Outcome,
    /// The record's server version after the mutation (none when rejected).
    pub version: Option<u64>,
    /// The op the mutation became in the server's log (none when rejected).
    pub op_id: Option<u64>,
    /// Why it was rejected (rejections only).
    pub reason: Option<ErrorBody>,
}

/// The receipts of a push, one per mutation, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One receipt per mutation.
    pub receipts: Vec<Receipt>,
    /// The key lease, renewed by this contact.
    pub key_lease_seconds: u64,
}

/// Where a pull starts and how much it may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullQuery {
    /// The last `op_id` the device has applied (0 for none).
    pub cursor: u64,
    /// The most changes wanted in the page (the server may send fewer).
    pub limit: Option<u32>,
    /// The most bytes wanted in the page (the server may send fewer).
    pub max_bytes: Option<u32>,
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// The record as it now is.
    Upsert,
    /// The record is gone (a tombstone).
    Delete,
}

/// One change from the server's log, or one record of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<P> {
    /// Position in the server's log, in commit order.
    pub op_id: u64,
    /// The record.
    pub record_id: Uuid,
    /// Its kind code.
    pub kind: String,
    /// Its scope.
    pub scope: String,
    /// Its server version after this change.
    pub version: u64,
    /// Upsert or delete.
    pub op: ChangeOp,
    /// The whole record (upserts only).
    pub record: Option<P>,
}

/// A scope given to or taken from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeEventKind {
    /// The device may now hold the scope: bootstrap it from a snapshot.
    Grant,
    /// The device may no longer hold the scope: push what it holds, purge, acknowledge.
    Revoke,
}

/// A grant or revoke, ordered in the log with the changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeEvent {
    /// Position in the server's log.
    pub op_id: u64,
    /// The scope.
    pub scope: String,
    /// Grant or revoke.
    pub kind: ScopeEventKind,
}

/// One page of the log after a cursor, for the scopes the device holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullPage<P> {
    /// Changes, in `op_id` order.
    pub changes: Vec<Change<P>>,
    /// Scope events in this page's range, in `op_id` order.
    pub scope_events: Vec<ScopeEvent>,
    /// The cursor to store with this page (in the same transaction) and send next.
    pub next_cursor: u64,
    /// Whether more pages follow now.
    pub has_more: bool,
    /// The log position the page was read at: every change and scope event up to it had
    /// committed, and the page's changes were chosen by the scopes held then. A device pulling
    /// from cursor 0 needs no snapshot for a scope granted at or before the first page's
    /// `as_of`: the pull itself brings the whole scope. 0 (absent) means unknown.
    #[serde(default)]
    pub as_of: u64,
}

/// Where a snapshot page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotQuery {
    /// The last record id received (records come in id order), none for the first page.
    pub after: Option<Uuid>,
    /// The most records wanted.
    pub limit: Option<u32>,
}

/// One page of a scope's records, for a bootstrap after a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPage<P> {
    /// The scope.
    pub scope: String,
    /// Records, in record-id order.
    pub records: Vec<Change<P>>,
    /// The log position the snapshot is consistent with.
    pub as_of: u64,
    /// The id to send as `after` for the next page; none when complete.
    pub next_after: Option<Uuid>,
}

/// A device's acknowledgement that it bootstrapped or purged a scope up to a log position.
/// Purge acknowledgements are audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeAck {
    /// The scope.
    pub scope: String,
    /// What the device did.
    pub kind: ScopeEventKind,
    /// The log position of the event acknowledged.
    pub op_id: u64,
}

/// Several acknowledgements in one request, each handled as `POST /v1/scopes/ack` would, in
/// one transaction; an event that is not the caller's is skipped rather than refused. A fresh
/// phone acknowledges every scope its first pull brought (one per case), so one request per
/// pulled page replaces thousands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeAcks {
    /// The acknowledgements, in log order.
    pub acks: Vec<ScopeAck>,
}

/// A field changed on two sides: the value kept and the value that lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict<P> {
    /// The conflict's id.
    pub id: Uuid,
    /// The record.
    pub record_id: Uuid,
    /// Its kind code.
    pub kind: String,
    /// Its scope.
    pub scope: String,
    /// The field.
    pub field: String,
    /// The value kept (the later commit).
    pub kept: P,
    /// The value that lost, which the supervisor may restore.
    pub lost: P,
    /// The device whose value lost: the one that last changed the field before the mutation
    /// that conflicted (the nil id when the record does not say).
    pub lost_by_device: Uuid,
    /// The op at which the conflict arose.
    pub op_id: u64,
}

/// The open conflicts a supervisor may resolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictList<P> {
    /// Open conflicts, oldest first.
    pub conflicts: Vec<Conflict<P>>,
}

/// A supervisor's decision on a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveConflict {
    /// `true` restores the losing value (as a new change); `false` keeps the current one.
    pub restore: bool,
}

/// A colleague as the directory shows them: enough to pick an assignee, nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The user's id.
    pub id: Uuid,
    /// Their login name.
    pub username: String,
    /// The name colleagues know them by.
    pub display_name: String,
    /// Their role.
    pub role: Role,
    /// The org unit they belong to.
    pub org_unit: Uuid,
    /// Their community point (counsellors).
    pub point: Option<Uuid>,
}

/// The users the caller may assign work to: a supervisor sees the staff of their commune;
/// everyone else sees only themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The users, by username.
    pub users: Vec<DirectoryEntry>,
}
