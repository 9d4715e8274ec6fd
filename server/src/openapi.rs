//! `GET /openapi.json`: the HTTP API described for client authors and reviewers (OpenAPI 3.1).
//!
//! Built in code, once, from the constants it describes (the protocol header and version, the
//! body limit, page caps, the crate version), so that it cannot drift from them; this function
//! is the one source. `tests/openapi.rs` keeps it honest: it documents exactly the routes that
//! [`crate::routes`] registers (and any the test lists as pending), each protocol fixture
//! validates against its schema, and the schemas accept exactly what serde accepts.
//!
//! Each component schema mirrors a `donghanh-protocol` type. Requests refuse unknown fields
//! (`additionalProperties: false`, as their `deny_unknown_fields`); responses allow them, as an
//! older client must ignore what a newer server adds. A field that is an `Option` may be left
//! out or be `null`; every other field is required. Record content (`patch`, `record`, the
//! values of a conflict) is any JSON here: the server checks it per mutation and answers with a
//! rejected receipt, not an HTTP error.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use donghanh_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION, codes};
use serde_json::{Value, json};

use crate::MAX_BODY_BYTES;
use crate::api::{
    MAX_ACKS, MAX_COUNTER, MAX_MUTATIONS, MAX_PAGE_BYTES, MAX_PAGE_ITEMS, MAX_SNAPSHOT_ITEMS,
};

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    static TEXT: LazyLock<String> = LazyLock::new(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], TEXT.as_str())
}

/// The OpenAPI document.
#[must_use]
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Đồng Hành sync API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": info_description(),
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "responses": error_responses(),
            "parameters": {
                "Protocol": {
                    "name": PROTOCOL_HEADER,
                    "in": "header",
                    "required": true,
                    "description": "The protocol version this client speaks; any other value, \
                        or none, is refused with 400 `protocol_mismatch`.",
                    "schema": {"type": "string", "enum": [PROTOCOL_VERSION.to_string()]},
                },
            },
            "headers": {
                "Protocol": {
                    "description": "The protocol version the server speaks (on every response).",
                    "schema": {"type": "string"},
                },
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token from `/v1/enroll` or `/v1/token`. It names \
                        the device and its user: the server never trusts a device or scope \
                        named in a body. It expires (`access_expires_in`) and dies with the \
                        device's revocation.",
                },
            },
        },
    })
}

fn info_description() -> String {
    format!(
        "Sync between field devices and the server (DESIGN.md §3). Every `/v1` request carries \
         `{PROTOCOL_HEADER}: {PROTOCOL_VERSION}` and every response carries the server's. \
         Request bodies are JSON of at most {MAX_BODY_BYTES} bytes; responses are compressed \
         (gzip, zstd) when the client accepts it. Every error, on every route, is an \
         `ErrorBody` `{{code, message}}` whose message never quotes the request: an unknown \
         path answers 404 `not_found`, a known path with another method 405 `invalid_input`. \
         A refused request changes nothing, except that a failed login is counted for the \
         login rate limit."
    )
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// What `Period::parse` accepts: `2026`, `2026-10`, `2026-Q4`, `2026-H2`.
const PERIOD_PATTERN: &str = "^[0-9]{4}(-([0-9]{2}|[Qq][1-4]|[Hh][12]))?$";

/// A report period parameter.
fn period_param(description: &str) -> Value {
    json!({"type": "string", "pattern": PERIOD_PATTERN, "description": description})
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn uuid(description: &str) -> Value {
    json!({"type": "string", "format": "uuid", "description": description})
}

fn optional_uuid(description: &str) -> Value {
    json!({"type": ["string", "null"], "format": "uuid", "description": description})
}

/// A `u64` the server sends.
fn count(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "description": description})
}

fn optional_count(description: &str) -> Value {
    json!({
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": u64::MAX,
        "description": description,
    })
}

/// A `u64` counter a client sends: the server keeps 63 bits.
fn counter(description: &str) -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": MAX_COUNTER, "description": description})
}

fn optional_u32(description: &str) -> Value {
    json!({
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": u32::MAX,
        "description": description,
    })
}

fn any(description: &str) -> Value {
    json!({"description": description})
}

fn list(items: Value, description: &str) -> Value {
    json!({"type": "array", "items": items, "description": description})
}

fn enumeration(description: &str, values: &[&str]) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

/// An object: `request` refuses unknown fields; `required` lists the fields that are not an
/// `Option`.
fn object(request: bool, description: &str, required: &[&str], properties: Value) -> Value {
    let mut o = json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    });
    if request {
        o["additionalProperties"] = json!(false);
    }
    o
}

const REQUEST: bool = true;
const RESPONSE: bool = false;

fn schemas() -> Value {
    let code_list = [
        codes::INVALID_INPUT,
        codes::UNAUTHORISED,
        codes::FORBIDDEN,
        codes::NOT_FOUND,
        codes::DEVICE_REVOKED,
        codes::PROTOCOL_MISMATCH,
        codes::RATE_LIMITED,
        codes::PAYLOAD_TOO_LARGE,
        codes::INTERNAL,
        codes::CURSOR_EXPIRED,
        codes::STORAGE_FULL,
    ]
    .map(|c| format!("`{c}`"))
    .join(", ");
    json!({
        "ErrorBody": object(
            REQUEST,
            "The one error shape of every route. Messages carry no personal data and never \
             quote the request.",
            &["code", "message"],
            json!({
                "code": string(&format!("Stable code a client acts on: one of {code_list}.")),
                "message": string("For people; says what was wrong, never with the value."),
            }),
        ),
        "Health": object(RESPONSE, "The server is up.", &["status"], json!({
            "status": {"type": "string", "const": "ok"},
        })),
        "Role": enumeration(
            "What a user is, and so what they see (DESIGN.md §2).",
            &["volunteer", "counsellor", "supervisor", "officer", "admin"],
        ),
        "EnrollRequest": object(
            REQUEST,
            "A user's login enrols a new device. Usernames and passwords over 1024 bytes are \
             refused as a failed login.",
            &["username", "password", "device_label"],
            json!({
                "username": string("The user's login name."),
                "password": string("The user's password (never stored by the device)."),
                "device_label": string(
                    "A label that identifies no person (\"Android 13, Redmi 12\"): 1 to 200 \
                     bytes once trimmed.",
                ),
            }),
        ),
        "EnrollResponse": object(
            RESPONSE,
            "A freshly enrolled device: its identity and its first tokens.",
            &["device_id", "user_id", "role", "tokens", "key_lease_seconds"],
            json!({
                "device_id": uuid("The device's own id."),
                "user_id": uuid("The user the device belongs to."),
                "role": schema("Role"),
                "tokens": schema("Tokens"),
                "key_lease_seconds": count(
                    "How long the device may keep its data without a successful sync.",
                ),
            }),
        ),
        "Tokens": object(
            RESPONSE,
            "A device's tokens. The refresh token is rotated on every use.",
            &["access_token", "access_expires_in", "refresh_token"],
            json!({
                "access_token": string("Short-lived bearer token."),
                "access_expires_in": count("Seconds until the access token expires."),
                "refresh_token": string("Buys new tokens once; dies with the device's revocation."),
            }),
        ),
        "RefreshRequest": object(
            REQUEST,
            "Exchange of a refresh token for new tokens.",
            &["device_id", "refresh_token"],
            json!({
                "device_id": uuid("The device the refresh token was issued to."),
                "refresh_token": string("The current refresh token."),
                "next_refresh_token": {
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{43}$",
                    "description": "The refresh token the device proposes to get in exchange \
                        (32 random bytes, URL-safe base64 without padding), kept on the device \
                        before it asks: a lost answer is then asked again with the same pair \
                        and answered again. Without it the server makes the new token.",
                },
            }),
        ),
        "MutationOp": enumeration(
            "What a mutation does to its record.",
            &["create", "update", "delete"],
        ),
        "Mutation": object(
            REQUEST,
            "One local change, as the device's outbox recorded it. `(device, client_seq)` is \
             its idempotency key: a replay returns the stored receipt.",
            &["client_seq", "record_id", "kind", "scope", "op", "base_version", "patch"],
            json!({
                "client_seq": counter("The device's sequence number."),
                "record_id": uuid("The record changed."),
                "kind": string("The record's kind code (`person`, `visit`, `task`, …); an \
                    unknown kind is a rejected receipt."),
                "scope": string("The record's scope, `person:<id>`, `point:<id>`, `team:<id>` \
                    or `user:<id>`; one the caller does not hold is a rejected receipt."),
                "op": schema("MutationOp"),
                "base_version": counter("The server version the device changed (0 for a create)."),
                "patch": any("The whole record (create), the changed fields (update) or `{}` \
                    (delete): a JSON object, else a rejected receipt."),
            }),
        ),
        "PushRequest": object(
            REQUEST,
            &format!("A batch of at most {MAX_MUTATIONS} mutations, oldest first."),
            &["mutations"],
            json!({"mutations": list(schema("Mutation"), "In `client_seq` order.")}),
        ),
        "Outcome": enumeration(
            "What became of one mutation.",
            &["applied", "merged", "conflict", "rejected"],
        ),
        "Receipt": object(
            RESPONSE,
            "The receipt of one mutation.",
            &["client_seq", "record_id", "outcome"],
            json!({
                "client_seq": count("The mutation's sequence number."),
                "record_id": uuid("The record it changed."),
                "outcome": schema("Outcome"),
                "version": optional_count("The record's version after it (none when rejected)."),
                "op_id": optional_count("Its op in the server's log (none when rejected)."),
                "reason": {
                    "description": "Why it was rejected (rejections only).",
                    "oneOf": [schema("ErrorBody"), {"type": "null"}],
                },
            }),
        ),
        "PushResponse": object(
            RESPONSE,
            "One receipt per mutation, in the request's order.",
            &["receipts", "key_lease_seconds"],
            json!({
                "receipts": list(schema("Receipt"), "One per mutation."),
                "key_lease_seconds": count("The key lease, renewed by this contact."),
            }),
        ),
        "PullQuery": object(
            REQUEST,
            "The query of `GET /v1/pull`.",
            &["cursor"],
            json!({
                "cursor": counter("The last `op_id` the device has applied (0 for none)."),
                "limit": optional_u32(&format!(
                    "The most items wanted (the server sends at most {MAX_PAGE_ITEMS})."
                )),
                "max_bytes": optional_u32(&format!(
                    "The most record bytes wanted (the server sends about {MAX_PAGE_BYTES} at \
                     most)."
                )),
            }),
        ),
        "ChangeOp": enumeration("What a change does.", &["upsert", "delete"]),
        "Change": object(
            RESPONSE,
            "One change from the server's log, or one record of a snapshot.",
            &["op_id", "record_id", "kind", "scope", "version", "op"],
            json!({
                "op_id": count("Position in the server's log, in commit order."),
                "record_id": uuid("The record."),
                "kind": string("Its kind code."),
                "scope": string("Its scope."),
                "version": count("Its server version after this change."),
                "op": schema("ChangeOp"),
                "record": any("The whole record (upserts), `null` for a delete."),
            }),
        ),
        "ScopeEventKind": enumeration(
            "A scope given to or taken from the device.",
            &["grant", "revoke"],
        ),
        "ScopeEvent": object(
            RESPONSE,
            "A grant or revoke, ordered in the log with the changes.",
            &["op_id", "scope", "kind"],
            json!({
                "op_id": count("Position in the server's log."),
                "scope": string("The scope."),
                "kind": schema("ScopeEventKind"),
            }),
        ),
        "PullPage": object(
            RESPONSE,
            "One page of the log after a cursor, for the scopes the device holds.",
            &["changes", "scope_events", "next_cursor", "has_more"],
            json!({
                "changes": list(schema("Change"), "In `op_id` order."),
                "scope_events": list(schema("ScopeEvent"), "In `op_id` order."),
                "next_cursor": count("Store with this page, in the same transaction; send next."),
                "has_more": {"type": "boolean", "description": "Whether more pages follow now."},
                "as_of": count("The log position the page was read at (0 or absent: unknown); a pull from cursor 0 needs no snapshot for scopes granted at or before the first page's."),
            }),
        ),
        "SnapshotQuery": object(
            REQUEST,
            "The query of `GET /v1/scopes/{scope}/snapshot`.",
            &[],
            json!({
                "after": optional_uuid("The last record id received; none for the first page."),
                "limit": optional_u32(&format!(
                    "The most records wanted (the server sends at most {MAX_SNAPSHOT_ITEMS})."
                )),
            }),
        ),
        "SnapshotPage": object(
            RESPONSE,
            "One page of a scope's live records, in record-id order.",
            &["scope", "records", "as_of"],
            json!({
                "scope": string("The scope."),
                "records": list(schema("Change"), "In record-id order."),
                "as_of": count("The log position the snapshot is consistent with."),
                "next_after": optional_uuid(
                    "Send as `after` for the next page; none when complete.",
                ),
            }),
        ),
        "ScopeAck": object(
            REQUEST,
            "A device's acknowledgement that it bootstrapped or purged a scope up to a log \
             position. Purge acknowledgements are audited.",
            &["scope", "kind", "op_id"],
            json!({
                "scope": string("The scope."),
                "kind": schema("ScopeEventKind"),
                "op_id": count("The log position of the event acknowledged."),
            }),
        ),
        "ScopeAcks": object(
            REQUEST,
            &format!(
                "At most {MAX_ACKS} acknowledgements, each recorded as `POST /v1/scopes/ack` \
                 would, in one transaction; an event that is not the caller's is skipped."
            ),
            &["acks"],
            json!({"acks": list(schema("ScopeAck"), "In log order.")}),
        ),
        "Conflict": object(
            RESPONSE,
            "A field changed on two sides: the value kept and the value that lost.",
            &[
                "id", "record_id", "kind", "scope", "field", "kept", "lost", "lost_by_device",
                "op_id",
            ],
            json!({
                "id": uuid("The conflict's id."),
                "record_id": uuid("The record."),
                "kind": string("Its kind code."),
                "scope": string("Its scope."),
                "field": string("The field."),
                "kept": any("The value kept (the later commit)."),
                "lost": any("The value that lost, which the supervisor may restore."),
                "lost_by_device": uuid("The device whose value lost."),
                "op_id": count("The op at which the conflict arose."),
            }),
        ),
        "ConflictList": object(
            RESPONSE,
            "The open conflicts a supervisor may resolve, oldest first.",
            &["conflicts"],
            json!({"conflicts": list(schema("Conflict"), "Oldest first.")}),
        ),
        "ResolveConflict": object(
            REQUEST,
            "A supervisor's decision on a conflict.",
            &["restore"],
            json!({"restore": {
                "type": "boolean",
                "description": "`true` restores the losing value (as a new change); `false` \
                    keeps the current one.",
            }}),
        ),
        "DirectoryEntry": object(
            RESPONSE,
            "A colleague as the directory shows them: enough to pick an assignee.",
            &["id", "username", "display_name", "role", "org_unit"],
            json!({
                "id": uuid("The user's id."),
                "username": string("Their login name."),
                "display_name": string("The name colleagues know them by."),
                "role": schema("Role"),
                "org_unit": uuid("The org unit they belong to."),
                "point": optional_uuid("Their community point (counsellors)."),
            }),
        ),
        "Report": object(
            RESPONSE,
            "A computed report: the template's sections and rows, each with its value \
             (`count`, `amount_vnd`, or `percent` with numerator and denominator) and, for \
             counts and amounts, a breakdown by commune, sex, age band and episode kind.",
            &[
                "template",
                "title_vi",
                "title_en",
                "basis",
                "period",
                "start",
                "end",
                "definitions_version",
                "sections",
            ],
            json!({
                "template": string("The template's code."),
                "title_vi": string("Title in Vietnamese."),
                "title_en": string("Title in English."),
                "basis": string("The legal form followed and when it is due."),
                "period": string("The period."),
                "start": json!({"type": "string", "format": "date", "description": "First day."}),
                "end": json!({"type": "string", "format": "date", "description": "Last day."}),
                "definitions_version": string("The indicator definitions' version."),
                "sections": list(any("A section: titles and rows."), "In the form's order."),
            }),
        ),
        "ReportRecords": object(
            RESPONSE,
            "The records behind a number.",
            &["records"],
            json!({
                "records": list(any("`{id, kind, person}`"), "Sorted by id."),
                "people": list(
                    any("`{id, full_name, birth_date}`"),
                    "Under break-the-glass only: who the people of the records are.",
                ),
            }),
        ),
        "BreakGlass": object(
            REQUEST,
            "A break-the-glass request.",
            &["org", "reason"],
            json!({
                "org": uuid("The unit (within the officer's)."),
                "reason": {"type": "string", "minLength": 20, "maxLength": 1000,
                           "description": "Why: a written sentence of 20 to 1000 characters \
                                           (surrounding spaces not counted)."},
                "minutes": {"type": "integer", "minimum": 1, "maximum": 240,
                            "description": "How long (default 60)."},
            }),
        ),
        "BreakGlassGrant": object(
            RESPONSE,
            "A running break-the-glass grant.",
            &["id", "org", "expires_at"],
            json!({
                "id": uuid("The grant."),
                "org": uuid("The unit."),
                "expires_at": string("When it stops (RFC 3339)."),
            }),
        ),
        "Plan": object(
            REQUEST,
            "A plan: an org unit, a period, and targets on named indicators.",
            &["org", "period", "targets"],
            json!({
                "org": uuid("The org unit."),
                "period": {"type": "string", "pattern": PERIOD_PATTERN,
                           "description": "`2026`, `2026-H1`, `2026-Q3` or `2026-10`."},
                "title": string("Public title, one line, at most 200 characters."),
                "targets": list(
                    json!({
                        "type": "object",
                        "additionalProperties": false,
                        "required": ["indicator", "goal"],
                        "properties": {
                            "indicator": string("An indicator code."),
                            "goal": any("`{\"at_least\": N}` or `{\"at_most\": N}`: a whole \
                                         count, or a percentage from 0 to 100 for a ratio."),
                        },
                    }),
                    "1 to 100 targets, each indicator once.",
                ),
            }),
        ),
        "PlanProgress": object(
            RESPONSE,
            "A plan's progress: each target's value from the plan's first day to `as_of`, \
             its status (`met`, `not_yet`, `on_track`, `off_track`, `not_met`) and its \
             difference from the goal.",
            &["plan", "as_of", "final_result", "targets"],
            json!({
                "plan": schema("Plan"),
                "as_of": json!({"type": "string", "format": "date", "description": "Counted to."}),
                "final_result": json!({"type": "boolean", "description": "`as_of` is the plan's last day."}),
                "targets": list(any("One target's progress."), "In the plan's order."),
            }),
        ),
        "Directory": object(
            RESPONSE,
            "The users the caller may assign work to: a supervisor sees the staff of their \
             commune; everyone else sees only themselves.",
            &["users"],
            json!({"users": list(schema("DirectoryEntry"), "By username.")}),
        ),
    })
}

/// The error responses: status, component name, description.
const ERRORS: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadRequest",
        "`invalid_input`: malformed or truncated JSON, wrong types, missing or unknown fields, \
         out-of-range numbers, a bad query string or path parameter, the wrong content type, \
         or a broken domain rule. `protocol_mismatch`: the protocol header is missing or names \
         another version.",
    ),
    (
        "401",
        "Unauthorised",
        "`unauthorised`: no token, or one that is unknown, expired or of a revoked device; a \
         wrong login. `device_revoked` (refresh only): the device was revoked and must wipe \
         its data.",
    ),
    (
        "403",
        "Forbidden",
        "`forbidden`: this user's role may not do this.",
    ),
    (
        "404",
        "NotFound",
        "`not_found`: no such thing, or one the caller may not know exists.",
    ),
    (
        "410",
        "CursorExpired",
        "`cursor_expired`: the cursor is older than the tombstone horizon; re-bootstrap every \
         scope from snapshots.",
    ),
    (
        "413",
        "PayloadTooLarge",
        "`payload_too_large`: the body is larger than the server accepts.",
    ),
    (
        "429",
        "RateLimited",
        "`rate_limited`: too many failed logins for this username; try again later.",
    ),
    (
        "500",
        "Internal",
        "`internal`: the server failed and changed nothing; the message says no more.",
    ),
    (
        "507",
        "StorageFull",
        "`storage_full`: the server's disk is full; nothing was saved. Send the same request \
         again later (a push is replayed safely).",
    ),
];

fn protocol_header() -> Value {
    json!({PROTOCOL_HEADER: {"$ref": "#/components/headers/Protocol"}})
}

fn error_responses() -> Value {
    let mut out = serde_json::Map::new();
    for (_, name, description) in ERRORS {
        out.insert(
            name.into(),
            json!({
                "description": description,
                "headers": protocol_header(),
                "content": {"application/json": {"schema": schema("ErrorBody")}},
            }),
        );
    }
    Value::Object(out)
}

/// What a route answers when it succeeds.
enum Success {
    /// 200 with a JSON body of this schema.
    Json(&'static str),
    /// 200 with another body: media type and schema.
    Other(&'static str, Value),
    /// 204, no body.
    NoContent,
    /// 201 with a JSON body of this schema.
    Created(&'static str),
    /// 200 with a JSON body of this schema, or the same as a CSV or XLSX file (`format=`).
    JsonOrFile(&'static str),
}

/// One operation.
struct Op {
    id: &'static str,
    summary: &'static str,
    bearer: bool,
    parameters: Vec<Value>,
    body: Option<&'static str>,
    success: Success,
    errors: &'static [&'static str],
}

fn operation(path: &str, op: Op) -> Value {
    let mut responses = serde_json::Map::new();
    let ok = match op.success {
        Success::Json(name) => (
            "200",
            json!({
                "description": "Done.",
                "headers": protocol_header(),
                "content": {"application/json": {"schema": schema(name)}},
            }),
        ),
        Success::Other(media, body) => (
            "200",
            json!({
                "description": "Done.",
                "headers": protocol_header(),
                "content": {media: {"schema": body}},
            }),
        ),
        Success::NoContent => (
            "204",
            json!({"description": "Done; no body.", "headers": protocol_header()}),
        ),
        Success::Created(name) => (
            "201",
            json!({
                "description": "Created.",
                "headers": protocol_header(),
                "content": {"application/json": {"schema": schema(name)}},
            }),
        ),
        Success::JsonOrFile(name) => (
            "200",
            json!({
                "description": "Done: JSON, or with `format=csv` a CSV file (UTF-8 with a \
                                byte-order mark), with `format=xlsx` a spreadsheet laid out as \
                                the paper form.",
                "headers": protocol_header(),
                "content": {
                    "application/json": {"schema": schema(name)},
                    "text/csv; charset=utf-8": {"schema": {"type": "string"}},
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                        {"schema": {"type": "string", "format": "binary"}},
                },
            }),
        ),
    };
    responses.insert(ok.0.into(), ok.1);
    // Any route that can fail inside the server can meet a full disk too.
    let storage_full: &[&str] = if op.errors.contains(&"500") {
        &["507"]
    } else {
        &[]
    };
    for status in op.errors.iter().chain(storage_full) {
        // A status without a component becomes a reference to nothing, which the tests refuse.
        let name = ERRORS
            .iter()
            .find(|(s, _, _)| s == status)
            .map_or(*status, |(_, name, _)| name);
        responses.insert(
            (*status).into(),
            json!({"$ref": format!("#/components/responses/{name}")}),
        );
    }
    let mut parameters = Vec::new();
    if path.starts_with("/v1/") {
        parameters.push(json!({"$ref": "#/components/parameters/Protocol"}));
    }
    parameters.extend(op.parameters);
    let mut o = json!({
        "operationId": op.id,
        "summary": op.summary,
        "security": if op.bearer { json!([{"bearer": []}]) } else { json!([]) },
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(name) = op.body {
        o["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": schema(name)}},
        });
    }
    o
}

fn query(name: &str, required: bool, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema})
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn paths() -> Value {
    let limit = |what: &str, most: u32| {
        optional_u32(&format!("The most {what} wanted: clamped to 1..={most}."))
    };
    let scope_pattern = concat!(
        "^(person|point|team|user):",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    );
    let ops: Vec<(&str, &str, Op)> = vec![
        (
            "/healthz",
            "get",
            Op {
                id: "healthz",
                summary: "Whether the server is up (no protocol header, no token).",
                bearer: false,
                parameters: vec![],
                body: None,
                success: Success::Json("Health"),
                errors: &[],
            },
        ),
        (
            "/metrics",
            "get",
            Op {
                id: "metrics",
                summary: "Prometheus counters: counts only, never names or ids.",
                bearer: false,
                parameters: vec![],
                body: None,
                success: Success::Other("text/plain", json!({"type": "string"})),
                errors: &[],
            },
        ),
        (
            "/openapi.json",
            "get",
            Op {
                id: "openapi",
                summary: "This document.",
                bearer: false,
                parameters: vec![],
                body: None,
                success: Success::Other("application/json", json!({"type": "object"})),
                errors: &[],
            },
        ),
        (
            "/v1/enroll",
            "post",
            Op {
                id: "enroll",
                summary: "A user's login enrols a new device. Failed logins are counted per \
                    username and per client address; after too many, even the right password is \
                    refused (`rate_limited`) for a while.",
                bearer: false,
                parameters: vec![],
                body: Some("EnrollRequest"),
                success: Success::Json("EnrollResponse"),
                errors: &["400", "401", "413", "429", "500"],
            },
        ),
        (
            "/v1/token",
            "post",
            Op {
                id: "refreshTokens",
                summary: "A refresh token buys new tokens, once.",
                bearer: false,
                parameters: vec![],
                body: Some("RefreshRequest"),
                success: Success::Json("Tokens"),
                errors: &["400", "401", "413", "500"],
            },
        ),
        (
            "/v1/push",
            "post",
            Op {
                id: "push",
                summary: "Mutations from the device's outbox, each with its own receipt. A \
                    mutation that breaks a rule is a rejected receipt, never an HTTP error; an \
                    invalid request applies none of them.",
                bearer: true,
                parameters: vec![],
                body: Some("PushRequest"),
                success: Success::Json("PushResponse"),
                errors: &["400", "401", "413", "500"],
            },
        ),
        (
            "/v1/pull",
            "get",
            Op {
                id: "pull",
                summary: "One page of the log after a cursor, for the scopes the device holds \
                (see PullQuery). Unknown or repeated query parameters are refused.",
                bearer: true,
                parameters: vec![
                    query(
                        "cursor",
                        true,
                        counter("The last `op_id` applied (0 for none)."),
                    ),
                    query(
                        "limit",
                        false,
                        limit("changes and scope events", MAX_PAGE_ITEMS),
                    ),
                    query(
                        "max_bytes",
                        false,
                        optional_u32(&format!(
                            "The most record bytes wanted: clamped to 1..={MAX_PAGE_BYTES}."
                        )),
                    ),
                ],
                body: None,
                success: Success::Json("PullPage"),
                errors: &["400", "401", "410", "500"],
            },
        ),
        (
            "/v1/scopes/{scope}/snapshot",
            "get",
            Op {
                id: "snapshot",
                summary: "One page of a scope's live records, for a device bootstrapping a scope \
                    it was granted (see SnapshotQuery). A scope the caller does not hold is not \
                    found.",
                bearer: true,
                parameters: vec![
                    path_param("scope", json!({"type": "string", "pattern": scope_pattern})),
                    query(
                        "after",
                        false,
                        optional_uuid("The last record id received."),
                    ),
                    query("limit", false, limit("records", MAX_SNAPSHOT_ITEMS)),
                ],
                body: None,
                success: Success::Json("SnapshotPage"),
                errors: &["400", "401", "404", "500"],
            },
        ),
        (
            "/v1/scopes/ack",
            "post",
            Op {
                id: "ackScope",
                summary: "The device bootstrapped or purged a scope up to a log position \
                    (audited). An event that is not the caller's is not found.",
                bearer: true,
                parameters: vec![],
                body: Some("ScopeAck"),
                success: Success::NoContent,
                errors: &["400", "401", "404", "413", "500"],
            },
        ),
        (
            "/v1/scopes/acks",
            "post",
            Op {
                id: "ackScopes",
                summary: "Several acknowledgements in one request (a fresh phone acknowledges \
                    every scope its first pull brought). Events that are not the caller's are \
                    skipped; an invalid scope refuses the whole request.",
                bearer: true,
                parameters: vec![],
                body: Some("ScopeAcks"),
                success: Success::NoContent,
                errors: &["400", "401", "413", "500"],
            },
        ),
        (
            "/v1/directory",
            "get",
            Op {
                id: "directory",
                summary: "The users the caller may assign work to.",
                bearer: true,
                parameters: vec![],
                body: None,
                success: Success::Json("Directory"),
                errors: &["400", "401", "500"],
            },
        ),
        (
            "/v1/reports/{template}",
            "get",
            Op {
                id: "report",
                summary: "A report template (`01-BCN`, `PROVINCE-H`, `PROVINCE-Y`) computed for an \
                          org unit and everything below it, for a period (supervisors: their \
                          commune; officers: their own unit's subtree).",
                bearer: true,
                parameters: vec![
                    path_param(
                        "template",
                        json!({"type": "string", "description": "The template's code."}),
                    ),
                    query("org", true, uuid("The org unit reported on.")),
                    query(
                        "period",
                        true,
                        json!({
                            "type": "string",
                            "pattern": PERIOD_PATTERN,
                            "description": "`2026-10`, `2026-Q4`, `2026-H2` or `2026`; the \
                                            template names which kind.",
                        }),
                    ),
                    query(
                        "format",
                        false,
                        json!({"type": "string", "enum": ["json", "csv", "xlsx"],
                               "description": "`json` (the default), `csv` or `xlsx`."}),
                    ),
                ],
                body: None,
                success: Success::JsonOrFile("Report"),
                errors: &["400", "401", "403", "404", "500"],
            },
        ),
        (
            "/v1/reports/records",
            "get",
            Op {
                id: "reportRecords",
                summary: "The records behind one indicator's number, for a supervisor of the \
                          commune (ids and kinds) or an officer under a running break-the-glass \
                          grant (ids, kinds and who the people are); audited.",
                bearer: true,
                parameters: vec![
                    query("org", true, uuid("The org unit reported on.")),
                    query("period", true, period_param("The period.")),
                    query("indicator", true, string("The indicator's code.")),
                ],
                body: None,
                success: Success::Json("ReportRecords"),
                errors: &["400", "401", "403", "404", "500"],
            },
        ),
        (
            "/v1/break-glass",
            "post",
            Op {
                id: "breakGlass",
                summary: "An officer asks to see the named records behind the numbers of one \
                          unit within theirs, for a written reason, for a limited time \
                          (DESIGN.md §2); the grant is audited, its reason kept sealed.",
                bearer: true,
                parameters: vec![],
                body: Some("BreakGlass"),
                success: Success::Created("BreakGlassGrant"),
                errors: &["400", "401", "403", "404", "413", "500"],
            },
        ),
        (
            "/v1/reports/{template}/close",
            "post",
            Op {
                id: "closeReport",
                summary: "Close a period that is over: its report is kept as it is now and \
                          answers from then on; records that arrive later show as notes on \
                          the next open period's report (same access as the report).",
                bearer: true,
                parameters: vec![
                    path_param(
                        "template",
                        json!({"type": "string", "description": "The template's code."}),
                    ),
                    query("org", true, uuid("The org unit reported on.")),
                    query(
                        "period",
                        true,
                        string("The period to close (over already)."),
                    ),
                ],
                body: None,
                success: Success::Json("Report"),
                errors: &["400", "401", "403", "404", "500"],
            },
        ),
        (
            "/v1/plans",
            "put",
            Op {
                id: "setPlan",
                summary: "Set the plan of an org unit for a period: targets on indicators, as \
                          whole counts or percentages (replaces the plan of the same unit and \
                          period; supervisors: their commune; officers: their unit's subtree).",
                bearer: true,
                parameters: vec![],
                body: Some("Plan"),
                success: Success::NoContent,
                errors: &["400", "401", "403", "404", "413", "500"],
            },
        ),
        (
            "/v1/plans",
            "get",
            Op {
                id: "planProgress",
                summary: "A plan's progress from its first day to `as_of` (default today), \
                          and its result once `as_of` reaches its last day.",
                bearer: true,
                parameters: vec![
                    query("org", true, uuid("The org unit.")),
                    query("period", true, period_param("The plan's period (`2026`).")),
                    query(
                        "as_of",
                        false,
                        json!({"type": "string", "format": "date", "description": "Count to this day."}),
                    ),
                ],
                body: None,
                success: Success::Json("PlanProgress"),
                errors: &["400", "401", "403", "404", "500"],
            },
        ),
        (
            "/v1/conflicts",
            "get",
            Op {
                id: "listConflicts",
                summary: "Open conflicts in the supervisor's cases (supervisors only).",
                bearer: true,
                parameters: vec![],
                body: None,
                success: Success::Json("ConflictList"),
                errors: &["400", "401", "403", "500"],
            },
        ),
        (
            "/v1/conflicts/{id}/resolve",
            "post",
            Op {
                id: "resolveConflict",
                summary: "Keep the current value, or restore the one that lost (supervisors only).",
                bearer: true,
                parameters: vec![path_param(
                    "id",
                    json!({"type": "string", "format": "uuid"}),
                )],
                body: Some("ResolveConflict"),
                success: Success::NoContent,
                errors: &["400", "401", "403", "404", "413", "500"],
            },
        ),
        (
            "/v1/admin/devices/{id}/revoke",
            "post",
            Op {
                id: "revokeDevice",
                summary: "Revoke a device (a lost phone): its tokens stop working at once and its \
                next refresh is told to wipe (admins only, for the devices of users within their own org \
                unit; any other device is `not_found`). Revoking twice is `invalid_input`.",
                bearer: true,
                parameters: vec![path_param(
                    "id",
                    json!({"type": "string", "format": "uuid"}),
                )],
                body: None,
                success: Success::NoContent,
                errors: &["400", "401", "403", "404", "500"],
            },
        ),
    ];
    let mut out = serde_json::Map::new();
    for (path, method, op) in ops {
        let entry = out.entry(path).or_insert_with(|| json!({}));
        entry[method] = operation(path, op);
    }
    Value::Object(out)
}
