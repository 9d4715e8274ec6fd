//! The device-side data layer of sync (DESIGN.md §3, docs/adr/0002): what a push sends, what a
//! receipt and a pulled page do to the store. No network here; the HTTP client calls these
//! inside [`Store::write`](crate::store::Store::write) / [`Store::read`](crate::store::Store::read).
//!
//! Decisions:
//!
//! - **Push.** [`Reader::pending_mutations`] reads the outbox oldest first and opens each sealed
//!   patch. `base_version` is the record's *server* version at the time of the local change
//!   (0 for a record the server has never confirmed), not the local write counter: the server
//!   merges three-way against the versions it issued.
//! - **Receipts.** `applied`, `merged` and `conflict` acknowledge the mutation: its outbox row
//!   goes and the record's server version is raised to the receipt's (never lowered: a pulled
//!   change may already have carried it further). `rejected` moves the row, with its sealed
//!   patch and the server's code and message, to the `rejected` table, where it stays visible
//!   until the user dismisses it ([`Writer::dismiss_rejected`]): a refused mutation is never
//!   dropped silently and never blocks the ones behind it. Either way the client_seq floor is
//!   raised in the same transaction, so a number is never handed out twice. A receipt for a
//!   client_seq no longer pending (a replayed response) or naming another record is ignored and
//!   counted.
//! - **Pull.** [`Writer::apply_page`] applies one page and stores its cursor in the same
//!   transaction; any error (propagate it out of the write closure) leaves records, outbox and
//!   cursor as they were. Changes are taken in `op_id` order; those at or below the stored
//!   cursor were applied before (a repeated page) and are skipped, and the cursor never moves
//!   back. An upsert whose version is below the record's server version is stale (a receipt
//!   already confirmed a later one, whose change follows in the log) and is skipped, so
//!   versions only move forward.
//! - **Remote records** are decoded by kind (one `match` over [`RecordKind`] calling a generic
//!   helper; the client reads pages with each record as raw JSON text, [`RawJson`], so a
//!   record is parsed once, straight into its entity), must carry the id and scope their
//!   change names, and must pass their entity's
//!   structural validation. "Not in the future" is not checked against this device's clock: the
//!   server validated the record on its own clock, and a phone whose clock runs late must not
//!   refuse a colleague's visit. A refused record is an [`Error::RemoteRecord`] naming the kind,
//!   never a value, and fails the whole page. Remote records are sealed like local ones
//!   (re-sealed at local version + 1) and never create an outbox mutation.
//! - **Local edits win until acknowledged.** When a pulled record has pending mutations, the
//!   server's record is stored with the pending patches' fields re-applied on top, oldest
//!   first, so what the user typed stays on screen until its receipt arrives; the server then
//!   merges it and a later change brings the merged record. If the overlay would not be a valid
//!   record, the local record is kept as it was (the patch is still in the outbox, nothing is
//!   lost). A record with a pending local delete is not brought back. A remote delete removes
//!   the record and its index entries but leaves its pending mutations in the outbox: they are
//!   the user's work, and the server answers them with a receipt.
//! - **Scope events** are recorded as [`ScopeTask`]s in the same transaction as the page that
//!   carried them, so a crash between the page and the work never loses a grant or a revoke:
//!   the client does the recorded work (bootstrap a granted scope from a snapshot; purge a
//!   revoked one after pushing what it still holds for it) and then acknowledges it to the
//!   server; each step removes its task in the transaction that completes it.
//!   A page counts only the last event of each scope: the server serves a page by the scopes
//!   held when it answers, so the last event is the state its changes were chosen by. A grant
//!   needs no snapshot when the pull from cursor 0 that served it was read after the grant
//!   committed (the page's `as_of`, kept as `zero_as_of` until a revoke is met): the pull
//!   itself brings the whole scope, so a fresh phone does not download everything twice.

#[cfg(feature = "sync")]
pub mod client;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{DateTime, Utc};
use donghanh_protocol::{
    Change, ChangeOp, Mutation, MutationOp, Outcome, PullPage, Receipt, ScopeEvent, ScopeEventKind,
    SnapshotPage,
};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::domain::{
    AbsenceReport, AccessLog, Assignment, Attendance, ConsentRecord, DrugTest, Episode,
    FollowUpTask, Id, Person, Record, RecordKind, Referral, RelapseEvent, Session, SupervisionNote,
    SupportBenefit, Transfer, ValidationContext, Visit,
};
use crate::error::RemoteProblem;
use crate::store::sync_state::{PULL_CURSOR, ZERO_AS_OF};
use crate::store::{OutboxFilter, OutboxRemoval, Reader, Writer};
use crate::{Error, Result};

/// Longest reason message kept from the server, in characters (a bound, not a format).
const MESSAGE_MAX: usize = 500;

/// What [`Writer::apply_receipts`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptSummary {
    /// Mutations the server applied (`applied`, `merged` or `conflict`), removed from the outbox.
    pub acknowledged: usize,
    /// Mutations the server refused, moved to the rejected list.
    pub rejected: usize,
    /// Receipts for mutations no longer pending (a replayed response) or for another record.
    pub ignored: usize,
}

/// Scope work a pulled page left to do, kept in the store until done (see the module notes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum ScopeTask {
    /// Download the granted scope from snapshot pages.
    Bootstrap {
        /// The scope.
        scope: String,
        /// The grant's op id.
        op_id: u64,
    },
    /// Remove the revoked scope (its pending mutations are pushed first).
    Purge {
        /// The scope.
        scope: String,
        /// The revoke's op id.
        op_id: u64,
    },
    /// Tell the server the bootstrap or purge is done.
    Ack {
        /// The scope.
        scope: String,
        /// What was done.
        kind: ScopeEventKind,
        /// The event's op id.
        op_id: u64,
    },
}

/// What [`Writer::apply_page`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageSummary {
    /// Records stored from the server as sent.
    pub upserted: usize,
    /// Records stored from the server with pending local fields re-applied on top.
    pub kept_local: usize,
    /// Records removed.
    pub deleted: usize,
    /// Changes skipped: already applied (at or below the cursor), stale, or a delete of a
    /// record this device does not hold.
    pub skipped: usize,
    /// Scopes granted: bootstrap each from a snapshot.
    pub grants: Vec<ScopeEvent>,
    /// Scopes revoked: push what remains for each, then purge it.
    pub revokes: Vec<ScopeEvent>,
    /// The cursor stored with the page.
    pub cursor: u64,
    /// Whether the server has more pages now.
    pub has_more: bool,
}

/// A mutation the server refused, kept for the user until dismissed. The patch stays sealed
/// ([`Reader::rejected_patch`]); the reason comes from the server, whose messages never carry
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMutation {
    /// The mutation's sequence number (never reused).
    pub client_seq: u64,
    /// The record it changed.
    pub record_id: Id,
    /// The record's kind code.
    pub kind: String,
    /// The record's scope.
    pub scope: String,
    /// What the mutation did.
    pub op: MutationOp,
    /// The server's stable reason code.
    pub code: String,
    /// The server's explanation.
    pub message: String,
    /// When the rejection arrived (device clock, Unix seconds; display only).
    pub at: i64,
}

/// The op of an outbox code (`create`, `update`, `delete`).
pub(crate) fn op_from_code(code: &str) -> Option<MutationOp> {
    match code {
        "create" => Some(MutationOp::Create),
        "update" => Some(MutationOp::Update),
        "delete" => Some(MutationOp::Delete),
        _ => None,
    }
}

/// Validation of remote records: structure and domain rules, but no "not in the future" check
/// against this device's clock (the server checked the record on its own).
fn remote_context() -> ValidationContext {
    ValidationContext {
        now: DateTime::<Utc>::MAX_UTC,
    }
}

fn remote_error(kind: &str, problem: RemoteProblem) -> Error {
    // The kind code comes from the server; keep it short and printable whatever it is.
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    Error::RemoteRecord { kind, problem }
}

impl Reader<'_> {
    /// Up to `limit` pending mutations, oldest first, with their patches opened: what the next
    /// push sends.
    pub fn pending_mutations(&self, limit: usize) -> Result<Vec<Mutation<Value>>> {
        self.outbox_entries(OutboxFilter::Oldest(limit))?
            .into_iter()
            .map(|e| {
                let op = op_from_code(&e.op).ok_or(Error::Tampered {
                    kind: "outbox".into(),
                })?;
                Ok(Mutation {
                    patch: self.outbox_patch(e.client_seq)?,
                    client_seq: e.client_seq,
                    record_id: e.record_id.uuid(),
                    kind: e.kind,
                    scope: e.scope,
                    op,
                    base_version: e.base_version,
                })
            })
            .collect()
    }

    /// The mutations the server refused, oldest first.
    pub fn rejected(&self) -> Result<Vec<RejectedMutation>> {
        self.rejected_rows()
    }

    /// The patch of a refused mutation (to show the user what was not accepted).
    pub fn rejected_patch(&self, client_seq: u64) -> Result<Value> {
        self.rejected_patch_of(client_seq)
    }

    /// The last server `op_id` applied (0 before the first pull).
    pub fn pull_cursor(&self) -> Result<u64> {
        Ok(self.meta_u64(PULL_CURSOR)?.unwrap_or(0))
    }

    /// Scope work recorded by pulled pages and not yet done, in log order.
    pub fn pending_scope_work(&self) -> Result<Vec<ScopeTask>> {
        self.scope_work()
    }
}

/// A record's JSON as it arrives in a page: a parsed tree ([`Value`]), or the raw text
/// ([`RawJson`]), which the sync client reads pages into so that each record is parsed once,
/// straight into its entity.
pub trait RemoteJson {
    /// The record as its entity type.
    fn decode<R: DeserializeOwned>(&self) -> serde_json::Result<R>;
    /// Its fields, to re-apply pending local edits over (rare: may parse again).
    fn fields(&self) -> Option<Map<String, Value>>;
    /// The JSON text it came as, if kept: stored (sealed) as it is rather than serialised
    /// again from the entity decoded from it.
    fn text(&self) -> Option<&str>;
}

/// A record's JSON text, unparsed.
pub type RawJson = Box<RawValue>;

impl RemoteJson for Value {
    fn decode<R: DeserializeOwned>(&self) -> serde_json::Result<R> {
        R::deserialize(self)
    }

    fn fields(&self) -> Option<Map<String, Value>> {
        self.as_object().cloned()
    }

    fn text(&self) -> Option<&str> {
        None
    }
}

impl RemoteJson for RawJson {
    fn decode<R: DeserializeOwned>(&self) -> serde_json::Result<R> {
        serde_json::from_str(self.get())
    }

    fn fields(&self) -> Option<Map<String, Value>> {
        serde_json::from_str(self.get()).ok()
    }

    fn text(&self) -> Option<&str> {
        Some(self.get())
    }
}

/// How one pulled upsert landed.
#[derive(PartialEq, Eq)]
enum Upserted {
    Stored,
    KeptLocal,
    Skipped,
}

impl Writer<'_> {
    /// Applies the receipts of a push (see the module notes). One transaction with the caller's
    /// closure: either every receipt is recorded or none.
    pub fn apply_receipts(&mut self, receipts: &[Receipt]) -> Result<ReceiptSummary> {
        let mut summary = ReceiptSummary::default();
        let now = Utc::now().timestamp();
        for receipt in receipts {
            let pending = self
                .reader()
                .outbox_entries(OutboxFilter::Seq(receipt.client_seq))?;
            let Some(entry) = pending.first() else {
                summary.ignored += 1;
                continue;
            };
            if entry.record_id.uuid() != receipt.record_id {
                summary.ignored += 1;
                continue;
            }
            match receipt.outcome {
                Outcome::Applied | Outcome::Merged | Outcome::Conflict => {
                    self.delete_outbox(OutboxRemoval::Seq(receipt.client_seq))?;
                    if let Some(version) = receipt.version {
                        self.raise_server_version(entry.record_id, version)?;
                    }
                    summary.acknowledged += 1;
                }
                Outcome::Rejected => {
                    let (code, message) = receipt
                        .reason
                        .as_ref()
                        .map_or(("rejected", "the server gave no reason"), |r| {
                            (r.code.as_str(), r.message.as_str())
                        });
                    let message: String = message.chars().take(MESSAGE_MAX).collect();
                    self.reject_outbox(receipt.client_seq, code, &message, now)?;
                    summary.rejected += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Marks the first recorded scope task done, replacing it with `then` (an acknowledgement
    /// to send) if given. The caller does the task's work in this same transaction.
    pub fn finish_scope_task(&mut self, done: &ScopeTask, then: Option<ScopeTask>) -> Result<()> {
        let mut work = self.reader().scope_work()?;
        if let Some(at) = work.iter().position(|t| t == done) {
            match then {
                Some(next) => work[at] = next,
                None => {
                    work.remove(at);
                }
            }
            self.put_scope_work(&work)?;
        }
        Ok(())
    }

    /// Marks several recorded scope tasks done (acknowledgements sent together), in one
    /// rewrite of the list.
    pub fn finish_scope_tasks(&mut self, done: &[ScopeTask]) -> Result<()> {
        let mut work = self.reader().scope_work()?;
        if work.starts_with(done) {
            work.drain(..done.len());
        } else {
            for task in done {
                if let Some(at) = work.iter().position(|t| t == task) {
                    work.remove(at);
                }
            }
        }
        self.put_scope_work(&work)
    }

    /// See [`Writer::reset_for_rebootstrap`](crate::store::Writer): forget held records (not
    /// pending ones) and the cursor, to download everything again.
    pub fn rebootstrap(&mut self) -> Result<usize> {
        self.reset_for_rebootstrap()
    }

    /// Forgets a refused mutation once the user has seen it. Returns whether it existed.
    pub fn dismiss_rejected(&mut self, client_seq: u64) -> Result<bool> {
        self.delete_rejected(client_seq)
    }

    /// Applies one pulled page and stores its cursor, in this transaction (see the module
    /// notes). On error nothing of the page may be kept: return the error from the write
    /// closure so the transaction rolls back.
    pub fn apply_page<P: RemoteJson>(&mut self, page: &PullPage<P>) -> Result<PageSummary> {
        let cursor = self.reader().pull_cursor()?;
        let pending = self.reader().pending_record_ids()?;
        let mut summary = PageSummary {
            has_more: page.has_more,
            ..PageSummary::default()
        };
        let mut changes: Vec<&Change<P>> = page.changes.iter().collect();
        changes.sort_by_key(|c| c.op_id);
        for change in changes {
            if change.op_id <= cursor {
                summary.skipped += 1;
                continue;
            }
            let kind = RecordKind::from_code(&change.kind)
                .ok_or_else(|| remote_error(&change.kind, RemoteProblem::UnknownKind))?;
            match change.op {
                ChangeOp::Upsert => {
                    let has_pending = pending.contains(&Id::from(change.record_id));
                    match upsert(self, kind, change, has_pending)? {
                        Upserted::Stored => summary.upserted += 1,
                        Upserted::KeptLocal => summary.kept_local += 1,
                        Upserted::Skipped => summary.skipped += 1,
                    }
                }
                ChangeOp::Delete => {
                    if self.apply_delete(kind, change)? {
                        summary.deleted += 1;
                    } else {
                        summary.skipped += 1;
                    }
                }
            }
        }
        // Only the last event of each scope counts: a case reassigned away and back between
        // two syncs is held now and must not be purged, and one granted then revoked again
        // needs no bootstrap.
        let mut last: HashMap<&str, &ScopeEvent> = HashMap::new();
        for event in page.scope_events.iter().filter(|e| e.op_id > cursor) {
            match last.entry(event.scope.as_str()) {
                Entry::Occupied(mut e) if e.get().op_id < event.op_id => {
                    e.insert(event);
                }
                Entry::Occupied(_) => {}
                Entry::Vacant(e) => {
                    e.insert(event);
                }
            }
        }
        let mut events: Vec<&ScopeEvent> = last.into_values().collect();
        events.sort_by_key(|e| e.op_id);
        let mut work = self.reader().scope_work()?;
        // A grant served to a pull from cursor 0 was committed before that request, and so
        // was every grant at or below the first page's `as_of`: the pull brings those scopes
        // whole, no snapshot needed, only the acknowledgement. Once a revoke is met the
        // shortcut ends (a scope purged on the way lost what the pull had brought).
        let mut zero_as_of = if cursor == 0 {
            self.put_meta_u64(ZERO_AS_OF, page.as_of)?;
            page.as_of
        } else {
            self.reader().meta_u64(ZERO_AS_OF)?.unwrap_or(0)
        };
        for event in events {
            if event.kind == ScopeEventKind::Revoke && zero_as_of > 0 {
                zero_as_of = 0;
                self.put_meta_u64(ZERO_AS_OF, 0)?;
            }
            match event.kind {
                ScopeEventKind::Grant if cursor == 0 || event.op_id <= zero_as_of => {
                    work.push(ScopeTask::Ack {
                        scope: event.scope.clone(),
                        kind: ScopeEventKind::Grant,
                        op_id: event.op_id,
                    });
                    summary.grants.push(event.clone());
                }
                ScopeEventKind::Grant => {
                    work.push(ScopeTask::Bootstrap {
                        scope: event.scope.clone(),
                        op_id: event.op_id,
                    });
                    summary.grants.push(event.clone());
                }
                ScopeEventKind::Revoke => {
                    work.push(ScopeTask::Purge {
                        scope: event.scope.clone(),
                        op_id: event.op_id,
                    });
                    summary.revokes.push(event.clone());
                }
            }
        }
        if !summary.grants.is_empty() || !summary.revokes.is_empty() {
            self.put_scope_work(&work)?;
        }
        summary.cursor = cursor.max(page.next_cursor);
        self.put_meta_u64(PULL_CURSOR, summary.cursor)?;
        Ok(summary)
    }

    /// Applies one page of a scope snapshot (the bootstrap after a grant): each record is
    /// stored like a pulled upsert, with the same checks and the same care for pending local
    /// edits, but the pull cursor is not touched (a snapshot is not a log range). Returns the
    /// number of records stored.
    pub fn apply_snapshot<P: RemoteJson>(&mut self, page: &SnapshotPage<P>) -> Result<usize> {
        let pending = self.reader().pending_record_ids()?;
        let mut stored = 0;
        for change in &page.records {
            if change.scope != page.scope || change.op != ChangeOp::Upsert {
                return Err(remote_error(&change.kind, RemoteProblem::Mismatch));
            }
            let kind = RecordKind::from_code(&change.kind)
                .ok_or_else(|| remote_error(&change.kind, RemoteProblem::UnknownKind))?;
            let has_pending = pending.contains(&Id::from(change.record_id));
            if upsert(self, kind, change, has_pending)? != Upserted::Skipped {
                stored += 1;
            }
        }
        Ok(stored)
    }

    /// A remote delete. Returns whether a record was removed.
    fn apply_delete<P>(&mut self, kind: RecordKind, change: &Change<P>) -> Result<bool> {
        let id = Id::from(change.record_id);
        let Some(stored) = self.reader().stored_identity(id)? else {
            return Ok(false);
        };
        if stored.kind != kind.code() || stored.scope != change.scope {
            return Err(remote_error(kind.code(), RemoteProblem::Mismatch));
        }
        if stored.server_version > change.version {
            return Ok(false);
        }
        self.delete_record(id)
    }
}

/// The one dispatch from a kind code to its entity type.
fn upsert<P: RemoteJson>(
    w: &mut Writer<'_>,
    kind: RecordKind,
    change: &Change<P>,
    has_pending: bool,
) -> Result<Upserted> {
    match kind {
        RecordKind::Person => upsert_as::<Person, P>(w, change, has_pending),
        RecordKind::Episode => upsert_as::<Episode, P>(w, change, has_pending),
        RecordKind::Assignment => upsert_as::<Assignment, P>(w, change, has_pending),
        RecordKind::Visit => upsert_as::<Visit, P>(w, change, has_pending),
        RecordKind::DrugTest => upsert_as::<DrugTest, P>(w, change, has_pending),
        RecordKind::FollowUpTask => upsert_as::<FollowUpTask, P>(w, change, has_pending),
        RecordKind::Session => upsert_as::<Session, P>(w, change, has_pending),
        RecordKind::Attendance => upsert_as::<Attendance, P>(w, change, has_pending),
        RecordKind::SupervisionNote => upsert_as::<SupervisionNote, P>(w, change, has_pending),
        RecordKind::Referral => upsert_as::<Referral, P>(w, change, has_pending),
        RecordKind::SupportBenefit => upsert_as::<SupportBenefit, P>(w, change, has_pending),
        RecordKind::RelapseEvent => upsert_as::<RelapseEvent, P>(w, change, has_pending),
        RecordKind::AbsenceReport => upsert_as::<AbsenceReport, P>(w, change, has_pending),
        RecordKind::Transfer => upsert_as::<Transfer, P>(w, change, has_pending),
        RecordKind::Consent => upsert_as::<ConsentRecord, P>(w, change, has_pending),
        RecordKind::AccessLog => upsert_as::<AccessLog, P>(w, change, has_pending),
    }
}

/// Whether a record is the one its change names and passes its rules (remote context).
fn check_remote<R: Record, P>(record: &R, change: &Change<P>) -> Result<()> {
    let kind = R::KIND.code();
    if record.id().uuid() != change.record_id || record.scope().to_string() != change.scope {
        return Err(remote_error(kind, RemoteProblem::Mismatch));
    }
    record
        .validate(&remote_context())
        .map_err(|e| remote_error(kind, RemoteProblem::Invalid(e)))
}

fn upsert_as<R: Record, P: RemoteJson>(
    w: &mut Writer<'_>,
    change: &Change<P>,
    has_pending: bool,
) -> Result<Upserted> {
    let kind = R::KIND.code();
    let json = change
        .record
        .as_ref()
        .ok_or_else(|| remote_error(kind, RemoteProblem::Missing))?;
    let server: R = json
        .decode()
        .map_err(|_| remote_error(kind, RemoteProblem::Malformed))?;
    check_remote(&server, change)?;
    let id = server.id();
    let plain = json.text().map(str::as_bytes);
    if !has_pending && w.insert_remote(&server, change.version, plain)? {
        return Ok(Upserted::Stored);
    }
    let stored = w.reader().stored_identity(id)?;
    if let Some(stored) = &stored {
        if stored.kind != kind || stored.scope != change.scope {
            return Err(remote_error(kind, RemoteProblem::Mismatch));
        }
        if stored.server_version > change.version {
            return Ok(Upserted::Skipped);
        }
    }
    let stored_version = stored.map(|s| s.version);
    if !has_pending {
        w.put_remote(&server, change.version, stored_version, plain)?;
        return Ok(Upserted::Stored);
    }
    let entries = w.reader().outbox_entries(OutboxFilter::Record(id))?;
    if entries.iter().any(|e| e.op == "delete") {
        // Deleted here, not yet acknowledged: do not bring it back.
        return Ok(Upserted::KeptLocal);
    }
    let overlaid = match json.fields() {
        Some(fields) => {
            let mut merged = fields;
            for entry in &entries {
                if let Value::Object(patch) = w.reader().outbox_patch(entry.client_seq)? {
                    merged.extend(patch);
                }
            }
            serde_json::from_value::<R>(Value::Object(merged))
                .ok()
                .filter(|r| check_remote(r, change).is_ok())
        }
        None => None,
    };
    let record = match overlaid {
        Some(record) => record,
        None => w.reader().get::<R>(id)?.unwrap_or(server),
    };
    w.put_remote(&record, change.version, stored_version, None)?;
    Ok(Upserted::KeptLocal)
}
