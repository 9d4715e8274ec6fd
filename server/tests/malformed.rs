//! The malformed-request sweep (DESIGN.md §7): every endpoint answers bad input with a 4xx and
//! the `{code, message}` body, never quotes what it was sent, and changes nothing.
//!
//! A real server on 127.0.0.1 (port 0, temporary directory) holds a small commune with real
//! data: a case, a conflict, a scope grant, a revoked device, a rate-limited user, an expired
//! token. Each case of the table is one request; around it, every table of the server's SQLite
//! file is read (read-only) and compared. The only change a refused request may make is the one it
//! exists for: a failed login is counted for the login rate limit (one row in
//! `login_failures`, nothing else).
//!
//! Where a body would be accepted if the server overlooked the fault (a missing protocol
//! header, a wrong content type, a bad token), the body is a live one: a valid push, a correct
//! password, the device's real refresh token, so that a hole shows up as a changed table.
//! Every injected value carries [`MARK`]; no error message may contain it, nor any password or
//! token of the commune. Each status must also be one the OpenAPI document lists for the route.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;

use chrono::Utc;
use donghanh_core::domain::{Person, Scope, Sex, Visit};
use donghanh_protocol::{ErrorBody, PROTOCOL_HEADER, codes};
use donghanh_server::{Config, MAX_BODY_BYTES, api::MAX_MUTATIONS, auth, openapi};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{PASSWORD, Server, changed_tables};

/// In every injected value: it must never come back in a message.
const MARK: &str = "MARKER-NGUYEN-0912";

/// Pieces of [`MARK`] that must not come back either (a message quoting part of a value).
const MARK_PARTS: [&str; 3] = ["MARKER", "NGUYEN", "0912"];

/// Every code a client may receive.
const CODES: [&str; 10] = [
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
];

/// One malformed request and what it must get.
#[derive(Clone)]
struct Case {
    name: String,
    method: Method,
    /// Path and query, as sent.
    path: String,
    /// Protocol header values, in order (none: left out).
    protocol: Vec<Vec<u8>>,
    /// Authorization header values, in order.
    auth: Vec<Vec<u8>>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    status: StatusCode,
    code: &'static str,
    /// A failed login, counted for the rate limit: the one change allowed.
    counts_login_failure: bool,
}

fn case(name: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
    Case {
        name: name.into(),
        method,
        path: path.into(),
        protocol: vec![b"1".to_vec()],
        auth: Vec::new(),
        content_type: None,
        body: None,
        status: StatusCode::BAD_REQUEST,
        code: codes::INVALID_INPUT,
        counts_login_failure: false,
    }
}

impl Case {
    fn json(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some("application/json".into());
        self.body = Some(body.into());
        self
    }

    fn body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = content_type.map(str::to_owned);
        self.body = Some(body.into());
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        self.auth = vec![format!("Bearer {token}").into_bytes()];
        self
    }

    fn auth(mut self, values: &[&[u8]]) -> Self {
        self.auth = values.iter().map(|v| v.to_vec()).collect();
        self
    }

    fn protocol(mut self, values: &[&[u8]]) -> Self {
        self.protocol = values.iter().map(|v| v.to_vec()).collect();
        self
    }

    fn expect(mut self, status: StatusCode, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    fn login_failure(mut self) -> Self {
        self.counts_login_failure = true;
        self
    }
}

/// A body with the value at `pointer` replaced by raw JSON text (numbers serde cannot hold,
/// broken escapes, bytes that are not UTF-8).
fn with_raw(template: &Value, pointer: &str, raw: &[u8]) -> Vec<u8> {
    let mut v = template.clone();
    *v.pointer_mut(pointer).unwrap() = json!("@@RAW@@");
    let text = v.to_string();
    let (head, tail) = text.split_once("\"@@RAW@@\"").unwrap();
    [head.as_bytes(), raw, tail.as_bytes()].concat()
}

fn with(template: &Value, pointer: &str, value: Value) -> Vec<u8> {
    let mut v = template.clone();
    *v.pointer_mut(pointer).unwrap() = value;
    v.to_string().into_bytes()
}

fn without(template: &Value, pointer: &str) -> Vec<u8> {
    let mut v = template.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    v.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    v.to_string().into_bytes()
}

/// Values of the wrong JSON type for a field that holds `v`.
fn wrong_types(v: &Value) -> Vec<Value> {
    match v {
        Value::String(_) => vec![
            json!(5),
            json!(true),
            json!(null),
            json!([MARK]),
            json!({ MARK: MARK }),
        ],
        Value::Number(_) => vec![
            json!(MARK),
            json!(true),
            json!(null),
            json!([1]),
            json!({ "n": MARK }),
            json!(-1),
            json!(1.5),
        ],
        Value::Bool(_) => vec![json!(MARK), json!(1), json!(null), json!([true])],
        Value::Array(_) => vec![json!(MARK), json!(5), json!(null), json!({ MARK: [] })],
        Value::Object(_) => vec![json!(MARK), json!(5), json!(null), json!([MARK])],
        Value::Null => vec![],
    }
}

/// The fields of `v` (pointer, value) at any depth, not descending into `skip`.
fn fields(v: &Value, at: &str, skip: &[&str], out: &mut Vec<(String, Value)>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (format!("{at}/{k}"), c)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{at}/{i}"), c))
            .collect(),
        _ => Vec::new(),
    };
    for (p, c) in children {
        out.push((p.clone(), c.clone()));
        if !skip.contains(&p.as_str()) {
            fields(c, &p, skip, out);
        }
    }
}

/// An endpoint that takes a JSON body, with a live body: one it would accept.
struct JsonEndpoint {
    name: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    live: Value,
    /// Values that are any JSON (record content): every type is accepted there.
    any: &'static [&'static str],
}

impl JsonEndpoint {
    fn case(&self, what: impl std::fmt::Display) -> Case {
        let c = case(
            format!("{} {what}", self.name),
            self.method.clone(),
            &self.path,
        );
        match &self.token {
            Some(t) => c.bearer(t),
            None => c,
        }
    }
}

/// What the setup made, for the cases to use.
struct Commune {
    hoa: donghanh_protocol::EnrollResponse,
    lan_revoked: donghanh_protocol::EnrollResponse,
    minh: donghanh_protocol::EnrollResponse,
    admin: donghanh_protocol::EnrollResponse,
    /// A case the supervisor holds.
    held_scope: String,
    person: Person,
    /// An open conflict in it.
    conflict: uuid::Uuid,
    /// The op of the supervisor's grant of it, which their device may acknowledge.
    grant_op: u64,
    /// A token of Hoa's device, stored but expired.
    expired: String,
    /// The supervisor's commune (reports, plans).
    commune: uuid::Uuid,
}

impl Commune {
    /// Every secret of the commune: none may appear in a message.
    fn secrets(&self) -> Vec<String> {
        let mut out = vec![PASSWORD.to_owned(), self.expired.clone()];
        for e in [&self.hoa, &self.lan_revoked, &self.minh, &self.admin] {
            out.push(e.tokens.access_token.clone());
            out.push(e.tokens.refresh_token.clone());
        }
        out
    }
}

async fn push(s: &Server, token: &str, mutations: Value) -> Value {
    let resp = s
        .request(Method::POST, "/v1/push")
        .bearer_auth(token)
        .json(&json!({ "mutations": mutations }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn setup(s: &Server) -> Commune {
    let hoa = s.enroll("tnv.hoa").await;
    let lan_revoked = s.enroll("tnv.lan").await;
    let minh = s.enroll("gs.minh").await;
    let minh_tablet = s.enroll("gs.minh").await;
    let admin = s.enroll("quantri").await;
    let resp = s
        .request(
            Method::POST,
            &format!("/v1/admin/devices/{}/revoke", lan_revoked.device_id),
        )
        .bearer_auth(&admin.tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    // A case, and a conflict in it: the supervisor's phone and tablet change the same field.
    let person = Person::new(
        "Nguyễn Văn Thử",
        chrono::NaiveDate::from_ymd_opt(1987, 2, 3).unwrap(),
        Sex::Male,
    );
    let held_scope = Scope::Person(person.id).to_string();
    let mutation = |seq: u64, op: &str, base: u64, patch: Value| {
        json!({"client_seq": seq, "record_id": person.id.uuid(), "kind": "person",
               "scope": held_scope, "op": op, "base_version": base, "patch": patch})
    };
    let r = push(
        s,
        &minh.tokens.access_token,
        json!([mutation(
            1,
            "create",
            0,
            serde_json::to_value(&person).unwrap()
        )]),
    )
    .await;
    assert_eq!(r["receipts"][0]["outcome"], "applied");
    let r = push(
        s,
        &minh.tokens.access_token,
        json!([mutation(2, "update", 1, json!({"phone": "0911111111"}))]),
    )
    .await;
    assert_eq!(r["receipts"][0]["outcome"], "applied");
    let r = push(
        s,
        &minh_tablet.tokens.access_token,
        json!([mutation(1, "update", 1, json!({"phone": "0922222222"}))]),
    )
    .await;
    assert_eq!(r["receipts"][0]["outcome"], "conflict");
    let list: Value = s
        .request(Method::GET, "/v1/conflicts")
        .bearer_auth(&minh.tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conflict: uuid::Uuid = serde_json::from_value(list["conflicts"][0]["id"].clone()).unwrap();

    let page: Value = s
        .request(Method::GET, "/v1/pull?cursor=0")
        .bearer_auth(&minh.tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grant_op = page["scope_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["scope"] == held_scope.as_str() && e["kind"] == "grant")
        .unwrap()["op_id"]
        .as_u64()
        .unwrap();

    // bi.khoa has failed too often: refused for a while, even with the right password.
    for _ in 0..auth::MAX_FAILURES {
        let resp = s
            .request(Method::POST, "/v1/enroll")
            .json(&json!({"username": "bi.khoa", "password": "sai", "device_label": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    // A token of Hoa's device that is stored but expired an hour ago. Written straight into
    // the table: no request can make one (the server drops expired tokens as it issues new).
    let expired = format!("expired-{MARK}");
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "INSERT INTO access_tokens(hash, device, user, expires_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            auth::token_hash(&expired),
            hoa.device_id.as_bytes().to_vec(),
            hoa.user_id.as_bytes().to_vec(),
            Utc::now().timestamp() - 3600
        ],
    )
    .unwrap();
    let directory: Value = s
        .request(Method::GET, "/v1/directory")
        .bearer_auth(&minh.tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let commune: uuid::Uuid =
        serde_json::from_value(directory["users"][0]["org_unit"].clone()).unwrap();
    Commune {
        hoa,
        lan_revoked,
        minh,
        admin,
        held_scope,
        person,
        conflict,
        grant_op,
        expired,
        commune,
    }
}

/// The cases every JSON endpoint gets: bodies that are not JSON, not whole, of the wrong types
/// or shape, of the wrong content type, too large or too deep.
fn json_body_cases(e: &JsonEndpoint, out: &mut Vec<Case>) {
    let live = e.live.to_string();
    // Where raw text goes: the first string field, else the first field.
    let all = fields_of(&e.live);
    let first_string = all
        .iter()
        .find(|(p, v)| v.is_string() && !e.any.iter().any(|a| p.starts_with(a)))
        .or(all.first())
        .map(|(p, _)| p.clone())
        .unwrap();
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("open brace", b"{".to_vec()),
        ("unterminated string", format!("{{\"{MARK}").into_bytes()),
        ("value missing", format!("{{\"{MARK}\":}}").into_bytes()),
        ("bare word", b"nul".to_vec()),
        ("single quotes", format!("{{'{MARK}': 1}}").into_bytes()),
        ("trailing comma", format!("{{\"{MARK}\": 1,}}").into_bytes()),
        ("garbage after", format!("{live} {MARK}").into_bytes()),
        ("two documents", format!("{live}{live}").into_bytes()),
        ("byte-order mark", format!("\u{feff}{live}").into_bytes()),
        ("NaN", format!("{{\"{MARK}\": NaN}}").into_bytes()),
        ("comment", format!("/* {MARK} */ {live}").into_bytes()),
        ("root array", format!("[{live}]").into_bytes()),
        ("root string", format!("\"{MARK}\"").into_bytes()),
        ("root number", b"5".to_vec()),
        ("root null", b"null".to_vec()),
        ("root true", b"true".to_vec()),
        ("empty", Vec::new()),
        ("whitespace", b" \n\t ".to_vec()),
        (
            "lone surrogate",
            with_raw(
                &e.live,
                &first_string,
                format!("\"\\ud800{MARK}\"").as_bytes(),
            ),
        ),
        (
            "invalid UTF-8",
            with_raw(
                &e.live,
                &first_string,
                &[b"\"\xff\xfe", MARK.as_bytes(), b"\xc3\x28\""].concat(),
            ),
        ),
        (
            "bad escape",
            with_raw(&e.live, &first_string, format!("\"\\x{MARK}\"").as_bytes()),
        ),
        (
            "control character",
            with_raw(
                &e.live,
                &first_string,
                format!("\"{MARK}\u{1}\"").as_bytes(),
            ),
        ),
        (
            "nested 100,000 deep",
            with_raw(
                &e.live,
                &first_string,
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
            ),
        ),
        (
            "gzip bytes",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".to_vec(),
        ),
    ];
    for (what, body) in malformed {
        out.push(e.case(what).json(body));
    }
    for cut in [
        1,
        live.len() / 4,
        live.len() / 2,
        live.len() * 3 / 4,
        live.len() - 1,
    ] {
        out.push(
            e.case(format!("truncated at {cut}"))
                .json(&live.as_bytes()[..cut]),
        );
    }
    // Wrong types, missing and unknown fields, at every depth outside record content.
    for (pointer, value) in fields_of(&e.live) {
        if e.any.iter().any(|a| pointer.starts_with(&format!("{a}/"))) {
            continue;
        }
        if !e.any.contains(&pointer.as_str()) {
            for wrong in wrong_types(&value) {
                out.push(
                    e.case(format!("{pointer} = {wrong}"))
                        .json(with(&e.live, &pointer, wrong)),
                );
            }
        }
        if pointer
            .rsplit_once('/')
            .is_some_and(|(_, k)| k.parse::<usize>().is_err())
        {
            out.push(
                e.case(format!("{pointer} missing"))
                    .json(without(&e.live, &pointer)),
            );
        }
        if value.is_object() && !e.any.contains(&pointer.as_str()) {
            let mut v = e.live.clone();
            v.pointer_mut(&pointer).unwrap()[MARK] = json!(MARK);
            out.push(
                e.case(format!("{pointer} with an unknown field"))
                    .json(v.to_string()),
            );
        }
    }
    let mut v = e.live.clone();
    v[MARK] = json!(MARK);
    out.push(e.case("unknown top-level field").json(v.to_string()));
    let (key, value) = e.live.as_object().unwrap().iter().next().unwrap();
    let mut v = e.live.clone();
    let obj = v.as_object_mut().unwrap();
    obj.remove(key);
    obj.insert(key.to_uppercase(), value.clone());
    out.push(e.case(format!("{} in capitals", key)).json(v.to_string()));
    let dup = format!("{{\"{key}\": \"{MARK}\", {}", &live[1..]);
    out.push(e.case(format!("{key} twice")).json(dup));
    // Content types: the live body, which must still not be read.
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=MARKER"),
        Some("application/xml"),
        Some("text/json"),
        Some("application/jsonMARKER"),
    ] {
        out.push(
            e.case(format!("content type {ct:?}"))
                .body(ct, live.clone().into_bytes()),
        );
    }
    // Too large: one byte over the limit, and twice the limit.
    let pad = |total: usize| {
        let mut v = e.live.clone();
        let base = with(&e.live, &first_string, json!("")).len();
        let fill = total.saturating_sub(base);
        *v.pointer_mut(&first_string).unwrap() = json!(
            format!("{MARK}{}", "x".repeat(fill))
                .chars()
                .take(fill)
                .collect::<String>()
        );
        v.to_string().into_bytes()
    };
    for total in [MAX_BODY_BYTES + 1, 2 * MAX_BODY_BYTES] {
        let body = pad(total);
        assert_eq!(body.len(), total);
        out.push(
            e.case(format!("{total} bytes"))
                .json(body)
                .expect(StatusCode::PAYLOAD_TOO_LARGE, codes::PAYLOAD_TOO_LARGE),
        );
    }
}

fn fields_of(v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    fields(v, "", &[], &mut out);
    out
}

/// The whole table.
fn cases(c: &Commune) -> Vec<Case> {
    let mut out = Vec::new();
    let hoa = c.hoa.tokens.access_token.as_str();
    let minh = c.minh.tokens.access_token.as_str();
    let admin = c.admin.tokens.access_token.as_str();
    let unknown = uuid::Uuid::new_v4();
    let visit = Visit::new(c.person.id, Utc::now(), format!("{MARK} quan sát"));
    let live_push = json!({"mutations": [{
        "client_seq": 100, "record_id": visit.id.uuid(), "kind": "visit",
        "scope": c.held_scope, "op": "create", "base_version": 0, "patch": visit,
    }]});
    let resolve_path = format!("/v1/conflicts/{}/resolve", c.conflict);
    let live_ack = json!({"scope": c.held_scope, "kind": "grant", "op_id": c.grant_op});
    let revoke_hoa = format!("/v1/admin/devices/{}/revoke", c.hoa.device_id);
    let snapshot_held = format!("/v1/scopes/{}/snapshot", c.held_scope);

    // --- Bodies.
    let endpoints = [
        JsonEndpoint {
            method: Method::POST,
            name: "enroll",
            path: "/v1/enroll".into(),
            token: None,
            live: json!({"username": "gs.minh", "password": PASSWORD,
                         "device_label": format!("{MARK} Redmi")}),
            any: &[],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "token",
            path: "/v1/token".into(),
            token: None,
            live: json!({"device_id": c.hoa.device_id,
                         "refresh_token": c.hoa.tokens.refresh_token}),
            any: &[],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "push",
            path: "/v1/push".into(),
            token: Some(minh.into()),
            live: live_push.clone(),
            any: &["/mutations/0/patch"],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "ack",
            path: "/v1/scopes/ack".into(),
            token: Some(minh.into()),
            live: live_ack.clone(),
            any: &[],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "acks",
            path: "/v1/scopes/acks".into(),
            token: Some(minh.into()),
            live: json!({"acks": [live_ack.clone()]}),
            any: &[],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "resolve",
            path: resolve_path.clone(),
            token: Some(minh.into()),
            live: json!({"restore": true}),
            any: &[],
        },
        // Optional fields are left out of these live bodies: without one, a body is valid.
        JsonEndpoint {
            method: Method::PUT,
            name: "plan",
            path: "/v1/plans".into(),
            token: Some(minh.into()),
            live: json!({"org": c.commune, "period": "2026",
                         "targets": [{"indicator": "FILE_ACTIVE_END", "goal": {"at_least": 26}}]}),
            any: &[],
        },
        JsonEndpoint {
            method: Method::POST,
            name: "break-glass",
            path: "/v1/break-glass".into(),
            token: Some(minh.into()),
            live: json!({"org": c.commune,
                         "reason": format!("{MARK} tòa án yêu cầu xác minh hồ sơ")}),
            any: &[],
        },
    ];
    for e in &endpoints {
        json_body_cases(e, &mut out);
    }

    // --- Enrolment: logins that fail, labels out of range, a rate-limited user.
    let enroll = |what: &str, username: &str, password: &str, label: &str| {
        case(format!("enroll {what}"), Method::POST, "/v1/enroll").json(
            json!({"username": username, "password": password, "device_label": label}).to_string(),
        )
    };
    let label = format!("{MARK} label");
    let wrong_pw = format!("{MARK}-wrong");
    out.extend([
        enroll("unknown user", &format!("{MARK}.user"), &wrong_pw, &label)
            .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
            .login_failure(),
        enroll("wrong password", "tnv.hoa", &wrong_pw, &label)
            .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
            .login_failure(),
        enroll("empty username", "", &wrong_pw, &label)
            .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
            .login_failure(),
        enroll(
            "NUL in username",
            &format!("tnv.hoa\u{0}{MARK}"),
            PASSWORD,
            &label,
        )
        .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
        .login_failure(),
        enroll("empty password", "tnv.hoa", "", &label)
            .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
            .login_failure(),
        enroll(
            "username over 1024 bytes",
            &MARK.repeat(60),
            PASSWORD,
            &label,
        )
        .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED),
        enroll(
            "password over 1024 bytes",
            "gs.minh",
            &MARK.repeat(60),
            &label,
        )
        .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED),
        enroll("empty label", "gs.minh", PASSWORD, ""),
        enroll("blank label", "gs.minh", PASSWORD, " \t\n "),
        enroll(
            "label of 201 bytes",
            "gs.minh",
            PASSWORD,
            &format!("{MARK}{}", "x".repeat(183)),
        ),
        enroll(
            "label of 67 three-byte letters",
            "gs.minh",
            PASSWORD,
            &"ạ".repeat(67),
        ),
        enroll("rate-limited, right password", "bi.khoa", PASSWORD, &label)
            .expect(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
        enroll("rate-limited, wrong password", "bi.khoa", &wrong_pw, &label)
            .expect(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
    ]);

    // --- Refresh: unknown, wrong, someone else's, revoked.
    let refresh = |what: &str, device: Value, token: &str| {
        case(format!("token {what}"), Method::POST, "/v1/token")
            .json(json!({"device_id": device, "refresh_token": token}).to_string())
            .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED)
    };
    let hoa_device = json!(c.hoa.device_id);
    out.extend([
        refresh("unknown device", json!(unknown), &format!("{MARK}-refresh")),
        refresh(
            "nil device",
            json!(uuid::Uuid::nil()),
            &c.hoa.tokens.refresh_token,
        ),
        refresh(
            "wrong token",
            hoa_device.clone(),
            &format!("{MARK}-refresh"),
        ),
        refresh("empty token", hoa_device.clone(), ""),
        refresh(
            "another device's token",
            hoa_device.clone(),
            &c.minh.tokens.refresh_token,
        ),
        refresh("access token as refresh", hoa_device.clone(), hoa),
        refresh(
            "500 KB token",
            hoa_device.clone(),
            &MARK.repeat(500 * 1024 / MARK.len()),
        ),
        refresh(
            "device id without hyphens",
            json!(c.minh.device_id.simple().to_string()),
            &c.hoa.tokens.refresh_token,
        ),
        refresh(
            "revoked device",
            json!(c.lan_revoked.device_id),
            &c.lan_revoked.tokens.refresh_token,
        )
        .expect(StatusCode::UNAUTHORIZED, codes::DEVICE_REVOKED),
        case("token device id not a UUID", Method::POST, "/v1/token").json(
            json!({"device_id": MARK, "refresh_token": c.hoa.tokens.refresh_token}).to_string(),
        ),
    ]);

    // --- Push: counters beyond what the server keeps, too many mutations, a bad one after a
    // good one (nothing may apply), bad enums and ids.
    let push_case = |what: &str, body: Vec<u8>| {
        case(format!("push {what}"), Method::POST, "/v1/push")
            .bearer(minh)
            .json(body)
    };
    for (field, raw) in [
        ("client_seq", "9223372036854775808"),
        ("client_seq", "18446744073709551615"),
        ("client_seq", "18446744073709551616"),
        ("client_seq", "1e400"),
        ("client_seq", "1e2"),
        ("client_seq", "1.0"),
        ("client_seq", "99999999999999999999999999999"),
        ("base_version", "9223372036854775808"),
        ("base_version", "18446744073709551615"),
        ("base_version", "-9223372036854775809"),
    ] {
        let pointer = format!("/mutations/0/{field}");
        out.push(push_case(
            &format!("{field} = {raw}"),
            with_raw(&live_push, &pointer, raw.as_bytes()),
        ));
    }
    let good = Person::new(
        format!("{MARK} Người Mới"),
        chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        Sex::Female,
    );
    let good = json!({"client_seq": 200, "record_id": good.id.uuid(), "kind": "person",
        "scope": Scope::Person(good.id).to_string(), "op": "create", "base_version": 0,
        "patch": good});
    let mut second = live_push["mutations"][0].clone();
    second["client_seq"] = json!(1u64 << 63);
    out.push(push_case(
        "a good mutation, then one beyond 2^63",
        json!({"mutations": [good, second]})
            .to_string()
            .into_bytes(),
    ));
    let mut bad_op = live_push["mutations"][0].clone();
    bad_op["op"] = json!(MARK);
    out.push(push_case(
        "a good mutation, then a bad op",
        json!({"mutations": [good, bad_op]})
            .to_string()
            .into_bytes(),
    ));
    let many: Vec<Value> = (0..=MAX_MUTATIONS as u64)
        .map(|i| {
            let mut m = good.clone();
            m["client_seq"] = json!(1000 + i);
            m
        })
        .collect();
    out.push(push_case(
        "one mutation too many",
        json!({ "mutations": many }).to_string().into_bytes(),
    ));
    for (what, pointer, value) in [
        ("op in capitals", "/mutations/0/op", json!("Create")),
        ("op unknown", "/mutations/0/op", json!(MARK)),
        (
            "record_id not a UUID",
            "/mutations/0/record_id",
            json!(MARK),
        ),
        ("record_id empty", "/mutations/0/record_id", json!("")),
        (
            "record_id with a tail",
            "/mutations/0/record_id",
            json!(format!("{}{MARK}", visit.id)),
        ),
        ("mutations an object", "/mutations", json!({ MARK: MARK })),
        ("a mutation a string", "/mutations/0", json!(MARK)),
    ] {
        out.push(push_case(what, with(&live_push, pointer, value)));
    }
    out.push(push_case(
        "patch nested 100,000 deep",
        with_raw(
            &live_push,
            "/mutations/0/patch",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
        ),
    ));

    // --- Scope acknowledgements: events that are not the caller's, or do not exist.
    let ack = |what: &str, token: &str, scope: &str, kind: &str, op: u64| {
        case(format!("ack {what}"), Method::POST, "/v1/scopes/ack")
            .bearer(token)
            .json(json!({"scope": scope, "kind": kind, "op_id": op}).to_string())
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND)
    };
    let held = c.held_scope.as_str();
    out.extend([
        ack(
            "an op that never was",
            minh,
            held,
            "grant",
            c.grant_op + 1000,
        ),
        ack("op 2^63", minh, held, "grant", 1 << 63),
        ack("op 2^64 - 1", minh, held, "grant", u64::MAX),
        ack("the wrong kind", minh, held, "revoke", c.grant_op),
        ack(
            "another scope",
            minh,
            &format!("person:{unknown}"),
            "grant",
            c.grant_op,
        ),
        ack("someone else's event", hoa, held, "grant", c.grant_op),
        ack(
            "an admin, of the supervisor's event",
            admin,
            held,
            "grant",
            c.grant_op,
        ),
        ack(
            "scope not valid",
            minh,
            &format!("person:{MARK}"),
            "grant",
            c.grant_op,
        )
        .expect(StatusCode::BAD_REQUEST, codes::INVALID_INPUT),
        ack("scope empty", minh, "", "grant", c.grant_op)
            .expect(StatusCode::BAD_REQUEST, codes::INVALID_INPUT),
    ]);

    // --- Pull: query strings.
    for q in [
        "",
        "?",
        "?cursor=",
        "?cursor=-1",
        &format!("?cursor={MARK}"),
        "?cursor=1.5",
        "?cursor=1e3",
        "?cursor=0x10",
        "?cursor=%201",
        "?cursor=9223372036854775808",
        "?cursor=18446744073709551615",
        "?cursor=18446744073709551616",
        "?cursor=99999999999999999999999999999",
        "?cursor=1&cursor=2",
        "?cursor=1&limit=-1",
        &format!("?cursor=1&limit={MARK}"),
        "?cursor=1&limit=4294967296",
        "?cursor=1&limit=1&limit=2",
        "?cursor=1&max_bytes=-5",
        "?cursor=1&max_bytes=99999999999",
        &format!("?cursor=1&{MARK}=1"),
        "?limit=10",
        "?cursor=%FF%FE",
        "?cursor=1%00",
        "?cursor[]=1",
        "?Cursor=1",
        &format!("?cursor=1&{}", format!("{MARK}=x&").repeat(400)),
    ] {
        out.push(case(format!("pull {q}"), Method::GET, format!("/v1/pull{q}")).bearer(hoa));
    }

    // --- Snapshot: scopes and query strings.
    let other = uuid::Uuid::new_v4();
    for scope in [
        format!("person:{MARK}"),
        format!("{MARK}:{other}"),
        String::new(),
        "person:".to_owned(),
        "person".to_owned(),
        format!("PERSON:{other}"),
        format!("person:{other}:{MARK}"),
        format!("person:{other}{MARK}"),
        "%FF%FE".to_owned(),
        format!("person:%FF{MARK}"),
        format!("person:{other}%00"),
        format!("person:{}", MARK.repeat(200)),
        format!("person%3A{MARK}"),
    ] {
        out.push(
            case(
                format!("snapshot of {scope}"),
                Method::GET,
                format!("/v1/scopes/{scope}/snapshot"),
            )
            .bearer(minh),
        );
    }
    for (what, token, scope) in [
        ("an unknown case", minh, format!("person:{unknown}")),
        ("a case not held", hoa, c.held_scope.clone()),
        ("a user scope", hoa, format!("user:{}", c.hoa.user_id)),
        ("a team never made", minh, format!("team:{unknown}")),
    ] {
        out.push(
            case(
                format!("snapshot of {what}"),
                Method::GET,
                format!("/v1/scopes/{scope}/snapshot"),
            )
            .bearer(token)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        );
    }
    for q in [
        format!("after={MARK}"),
        "after=".to_owned(),
        "after=%FF".to_owned(),
        format!("after={}{MARK}", c.person.id),
        format!("after={other}&after={other}"),
        "limit=-1".to_owned(),
        format!("limit={MARK}"),
        "limit=4294967296".to_owned(),
        "limit=1.5".to_owned(),
        format!("{MARK}=1"),
    ] {
        out.push(
            case(
                format!("snapshot ?{q}"),
                Method::GET,
                format!("{snapshot_held}?{q}"),
            )
            .bearer(minh),
        );
    }

    // --- Conflicts and their resolution: roles, ids.
    let resolve_body = json!({"restore": true}).to_string();
    let resolve = |what: &str, id: &str, token: &str| {
        case(
            format!("resolve {what}"),
            Method::POST,
            format!("/v1/conflicts/{id}/resolve"),
        )
        .bearer(token)
        .json(resolve_body.clone())
    };
    let conflict = c.conflict.to_string();
    out.extend([
        case("conflicts as a volunteer", Method::GET, "/v1/conflicts")
            .bearer(hoa)
            .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        case("conflicts as an admin", Method::GET, "/v1/conflicts")
            .bearer(admin)
            .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        resolve("as a volunteer", &conflict, hoa).expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        resolve("as an admin", &conflict, admin).expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        resolve("id not a UUID", MARK, minh),
        resolve("id not UTF-8", &format!("%FF%FE{MARK}"), minh),
        resolve("id with a tail", &format!("{conflict}{MARK}"), minh),
        resolve("unknown id", &unknown.to_string(), minh)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        resolve("nil id", &uuid::Uuid::nil().to_string(), minh)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
    ]);

    // --- Revocation: roles, ids, twice.
    let revoke = |what: &str, id: &str, token: &str| {
        case(
            format!("revoke {what}"),
            Method::POST,
            format!("/v1/admin/devices/{id}/revoke"),
        )
        .bearer(token)
    };
    let hoa_id = c.hoa.device_id.to_string();
    out.extend([
        revoke("as a volunteer", &hoa_id, hoa).expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        revoke("as a supervisor", &hoa_id, minh).expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        revoke("id not a UUID", MARK, admin),
        revoke("id not UTF-8", &format!("%C3%28{MARK}"), admin),
        revoke("id with a tail", &format!("{hoa_id}{MARK}"), admin),
        revoke("unknown id", &unknown.to_string(), admin)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        revoke("nil id", &uuid::Uuid::nil().to_string(), admin)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        revoke(
            "a revoked device",
            &c.lan_revoked.device_id.to_string(),
            admin,
        ),
        revoke("unknown id, with a body", &unknown.to_string(), admin)
            .json(format!("{{\"{MARK}\": 1}}"))
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
    ]);

    // --- Tokens on every authenticated endpoint, each with a live request behind it.
    let authed: Vec<(&str, Method, String, Option<String>)> = vec![
        (
            "push",
            Method::POST,
            "/v1/push".into(),
            Some(live_push.to_string()),
        ),
        ("pull", Method::GET, "/v1/pull?cursor=0".into(), None),
        ("snapshot", Method::GET, snapshot_held.clone(), None),
        ("conflicts", Method::GET, "/v1/conflicts".into(), None),
        (
            "ack",
            Method::POST,
            "/v1/scopes/ack".into(),
            Some(live_ack.to_string()),
        ),
        ("directory", Method::GET, "/v1/directory".into(), None),
        (
            "resolve",
            Method::POST,
            resolve_path.clone(),
            Some(resolve_body.clone()),
        ),
        ("revoke", Method::POST, revoke_hoa.clone(), None),
        (
            "report",
            Method::GET,
            format!("/v1/reports/01-BCN?org={}&period=2026-10", c.commune),
            None,
        ),
        (
            "records",
            Method::GET,
            format!(
                "/v1/reports/records?org={}&period=2026-10&indicator=VISITS",
                c.commune
            ),
            None,
        ),
        (
            "break-glass",
            Method::POST,
            "/v1/break-glass".into(),
            Some(
                json!({"org": c.commune, "reason": "Tòa án yêu cầu xác minh hồ sơ vay vốn"})
                    .to_string(),
            ),
        ),
    ];
    let bad_auth: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("no token", vec![]),
        ("empty bearer", vec![b"Bearer ".to_vec()]),
        (
            "garbage bearer",
            vec![format!("Bearer {MARK}").into_bytes()],
        ),
        ("basic auth", vec![format!("Basic {MARK}").into_bytes()]),
        ("bare token", vec![minh.as_bytes().to_vec()]),
        (
            "token with a tail",
            vec![format!("Bearer {minh}{MARK}").into_bytes()],
        ),
        (
            "token twice in one header",
            vec![format!("Bearer {minh} {minh}").into_bytes()],
        ),
        (
            "not UTF-8",
            vec![[b"Bearer \xff\xfe".as_slice(), MARK.as_bytes()].concat()],
        ),
        (
            "expired token",
            vec![format!("Bearer {}", c.expired).into_bytes()],
        ),
        (
            "revoked device's token",
            vec![format!("Bearer {}", c.lan_revoked.tokens.access_token).into_bytes()],
        ),
        (
            "refresh token as access",
            vec![format!("Bearer {}", c.minh.tokens.refresh_token).into_bytes()],
        ),
        (
            "garbage header, then a good one",
            vec![
                format!("Bearer {MARK}").into_bytes(),
                format!("Bearer {minh}").into_bytes(),
            ],
        ),
    ];
    for (name, method, path, body) in &authed {
        for (what, values) in &bad_auth {
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            let mut k = case(format!("{name}: {what}"), method.clone(), path.clone())
                .auth(&refs)
                .expect(StatusCode::UNAUTHORIZED, codes::UNAUTHORISED);
            if let Some(b) = body {
                k = k.json(b.clone());
            }
            out.push(k);
        }
    }

    // --- Reports, records, closing and plans: queries that are missing, malformed, of the
    // wrong kind or about nothing that exists; bodies of plans and break-the-glass that parse
    // but break a rule.
    let org = c.commune;
    let other = uuid::Uuid::new_v4();
    let long_period = "2".repeat(2000);
    let queries: Vec<(&str, String)> = vec![
        ("no query", String::new()),
        ("no period", format!("org={org}")),
        ("no org", "period=2026-10".into()),
        ("org not a UUID", format!("org={MARK}&period=2026-10")),
        ("org empty", "org=&period=2026-10".into()),
        ("period marker", format!("org={org}&period={MARK}")),
        ("period 2026-13", format!("org={org}&period=2026-13")),
        ("period 2026-00", format!("org={org}&period=2026-00")),
        ("period 2026-Q5", format!("org={org}&period=2026-Q5")),
        ("period 2026-H3", format!("org={org}&period=2026-H3")),
        ("period empty", format!("org={org}&period=")),
        (
            "period of 2000 digits",
            format!("org={org}&period={long_period}"),
        ),
        ("period 0912345678", format!("org={org}&period=0912345678")),
        (
            "period twice",
            format!("org={org}&period=2026-10&period=2026-11"),
        ),
        (
            "unknown parameter",
            format!("org={org}&period=2026-10&{MARK}=1"),
        ),
    ];
    for (what, q) in &queries {
        out.push(
            case(
                format!("report {what}"),
                Method::GET,
                format!("/v1/reports/01-BCN?{q}"),
            )
            .bearer(minh),
        );
        out.push(
            case(
                format!("close {what}"),
                Method::POST,
                format!("/v1/reports/01-BCN/close?{q}"),
            )
            .bearer(minh),
        );
        out.push(
            case(
                format!("records {what}"),
                Method::GET,
                format!("/v1/reports/records?{q}&indicator=VISITS"),
            )
            .bearer(minh),
        );
        out.push(
            case(
                format!("plan {what}"),
                Method::GET,
                format!("/v1/plans?{q}"),
            )
            .bearer(minh),
        );
    }
    let ok = format!("org={org}&period=2026-10");
    out.extend([
        case(
            "report format marker",
            Method::GET,
            format!("/v1/reports/01-BCN?{ok}&format={MARK}"),
        )
        .bearer(minh),
        case(
            "report format PDF",
            Method::GET,
            format!("/v1/reports/01-BCN?{ok}&format=pdf"),
        )
        .bearer(minh),
        case(
            "report of a half-year on the monthly form",
            Method::GET,
            format!("/v1/reports/01-BCN?org={org}&period=2026-H2"),
        )
        .bearer(minh),
        case(
            "report template marker",
            Method::GET,
            format!("/v1/reports/{MARK}?{ok}"),
        )
        .bearer(minh)
        .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        case(
            "report of an unknown unit",
            Method::GET,
            format!("/v1/reports/01-BCN?org={other}&period=2026-10"),
        )
        .bearer(minh)
        .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        case(
            "report by a volunteer",
            Method::GET,
            format!("/v1/reports/01-BCN?{ok}"),
        )
        .bearer(hoa)
        .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        case(
            "close a period not over",
            Method::POST,
            format!("/v1/reports/01-BCN/close?org={org}&period=2099-01"),
        )
        .bearer(minh),
        case(
            "close an unknown unit",
            Method::POST,
            format!("/v1/reports/01-BCN/close?org={other}&period=2026-01"),
        )
        .bearer(minh)
        .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        case(
            "close by a volunteer",
            Method::POST,
            format!("/v1/reports/01-BCN/close?org={org}&period=2026-01"),
        )
        .bearer(hoa)
        .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        case(
            "records indicator marker",
            Method::GET,
            format!("/v1/reports/records?{ok}&indicator={MARK}"),
        )
        .bearer(minh),
        case(
            "records indicator a phone number",
            Method::GET,
            format!("/v1/reports/records?{ok}&indicator=0912345678"),
        )
        .bearer(minh),
        case(
            "records without indicator",
            Method::GET,
            format!("/v1/reports/records?{ok}"),
        )
        .bearer(minh),
        case(
            "records by a volunteer",
            Method::GET,
            format!("/v1/reports/records?{ok}&indicator=VISITS"),
        )
        .bearer(hoa)
        .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        case(
            "plan as_of not a day",
            Method::GET,
            format!("/v1/plans?org={org}&period=2026&as_of={MARK}"),
        )
        .bearer(minh),
        case(
            "plan that was never set",
            Method::GET,
            format!("/v1/plans?org={org}&period=2026"),
        )
        .bearer(minh)
        .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
    ]);
    let plan = |what: &str, body: Value| {
        case(format!("plan {what}"), Method::PUT, "/v1/plans")
            .bearer(minh)
            .json(body.to_string())
    };
    let target = |indicator: &str, goal: Value| json!({"indicator": indicator, "goal": goal});
    out.extend([
        plan("with no targets", json!({"org": org, "period": "2026", "targets": []})),
        plan("on an unknown indicator", json!({"org": org, "period": "2026",
            "targets": [target(MARK, json!({"at_least": 1}))]})),
        plan("with the same indicator twice", json!({"org": org, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": 1})), target("VISITS", json!({"at_least": 2}))]})),
        plan("with a negative count", json!({"org": org, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": -1}))]})),
        plan("with a fractional count", json!({"org": org, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": 2.5}))]})),
        plan("with a percentage over 100", json!({"org": org, "period": "2026",
            "targets": [target("REACHED_PCT", json!({"at_least": 101}))]})),
        plan("with both goals", json!({"org": org, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": 1, "at_most": 2}))]})),
        plan("with a period marker", json!({"org": org, "period": MARK,
            "targets": [target("VISITS", json!({"at_least": 1}))]})),
        plan("with a title of 201 characters", json!({"org": org, "period": "2026",
            "title": format!("{MARK}{}", "x".repeat(183)),
            "targets": [target("VISITS", json!({"at_least": 1}))]})),
        plan("with a title on two lines", json!({"org": org, "period": "2026",
            "title": format!("Kế hoạch\n{MARK}"),
            "targets": [target("VISITS", json!({"at_least": 1}))]})),
        plan("for an unknown unit", json!({"org": other, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": 1}))]}))
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND),
        plan("by a volunteer", json!({"org": org, "period": "2026",
            "targets": [target("VISITS", json!({"at_least": 1}))]}))
            .bearer(hoa)
            .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
    ]);
    let glass = |what: &str, body: Value| {
        case(
            format!("break-glass {what}"),
            Method::POST,
            "/v1/break-glass",
        )
        .bearer(minh)
        .json(body.to_string())
    };
    let reason = format!("{MARK} tòa án yêu cầu xác minh hồ sơ");
    out.extend([
        glass("by a supervisor", json!({"org": org, "reason": reason}))
            .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        glass("by a volunteer", json!({"org": org, "reason": reason}))
            .bearer(hoa)
            .expect(StatusCode::FORBIDDEN, codes::FORBIDDEN),
        glass(
            "minutes 0",
            json!({"org": org, "reason": reason, "minutes": 0}),
        ),
        glass(
            "minutes -1",
            json!({"org": org, "reason": reason, "minutes": -1}),
        ),
        glass(
            "minutes 2^32",
            json!({"org": org, "reason": reason, "minutes": 4_294_967_296_u64}),
        ),
    ]);

    // --- The protocol header, on live requests to every /v1 endpoint.
    let live_enroll =
        json!({"username": "gs.minh", "password": PASSWORD, "device_label": "Redmi"}).to_string();
    let live_refresh = json!({"device_id": c.hoa.device_id,
        "refresh_token": c.hoa.tokens.refresh_token})
    .to_string();
    let mut v1 = vec![
        (
            "enroll",
            Method::POST,
            "/v1/enroll".to_owned(),
            None,
            Some(live_enroll),
        ),
        (
            "token",
            Method::POST,
            "/v1/token".to_owned(),
            None,
            Some(live_refresh),
        ),
    ];
    for (name, method, path, body) in authed {
        let token = if name == "revoke" { admin } else { minh };
        v1.push((name, method, path, Some(token), body));
    }
    let bad_protocol: [(&str, &[&[u8]]); 7] = [
        ("no protocol header", &[]),
        ("protocol 2", &[b"2".as_slice()]),
        ("protocol 0", &[b"0".as_slice()]),
        ("protocol 1.0", &[b"1.0".as_slice()]),
        ("empty protocol", &[b"".as_slice()]),
        ("protocol marker", &[MARK.as_bytes()]),
        ("protocol 2, then 1", &[b"2".as_slice(), b"1".as_slice()]),
    ];
    for (name, method, path, token, body) in &v1 {
        for (what, values) in bad_protocol {
            let mut k = case(format!("{name}: {what}"), method.clone(), path.clone())
                .protocol(values)
                .expect(StatusCode::BAD_REQUEST, codes::PROTOCOL_MISMATCH);
            if let Some(t) = token {
                k = k.bearer(t);
            }
            if let Some(b) = body {
                k = k.json(b.clone());
            }
            out.push(k);
        }
    }
    out.push(
        case("protocol not UTF-8", Method::GET, "/v1/conflicts")
            .protocol(&[b"\xff\xfe".as_slice()])
            .bearer(minh)
            .expect(StatusCode::BAD_REQUEST, codes::PROTOCOL_MISMATCH),
    );

    // --- Unknown paths and wrong methods.
    let not_found = |method: Method, path: String| {
        case(format!("{method} {path}"), method, path)
            .bearer(minh)
            .expect(StatusCode::NOT_FOUND, codes::NOT_FOUND)
    };
    for (method, path) in [
        (Method::GET, format!("/v1/{MARK}")),
        (Method::POST, format!("/v1/{MARK}")),
        (Method::GET, format!("/{MARK}")),
        (Method::POST, format!("/v1/enroll/{MARK}")),
        (Method::POST, "/v1//enroll".to_owned()),
        (Method::POST, "/V1/enroll".to_owned()),
        (Method::POST, "/v2/enroll".to_owned()),
        (Method::GET, "/v1/pull/".to_owned()),
        (Method::GET, format!("/v1/conflicts/{}", c.conflict)),
        (Method::POST, format!("/v1/admin/devices/{hoa_id}")),
        (Method::GET, format!("/v1/scopes/{}", c.held_scope)),
        (Method::GET, format!("/healthz/{MARK}")),
        (Method::GET, "/openapi.json/x".to_owned()),
        (Method::GET, format!("/v1/%FF%FE{MARK}")),
    ] {
        out.push(not_found(method, path));
    }
    out.push(
        case(
            "unknown /v1 path without the header",
            Method::GET,
            format!("/v1/{MARK}"),
        )
        .protocol(&[])
        .expect(StatusCode::BAD_REQUEST, codes::PROTOCOL_MISMATCH),
    );
    for (method, path) in [
        (Method::GET, "/v1/enroll".to_owned()),
        (Method::PUT, "/v1/enroll".to_owned()),
        (Method::PATCH, "/v1/token".to_owned()),
        (Method::GET, "/v1/push".to_owned()),
        (Method::DELETE, "/v1/push".to_owned()),
        (Method::OPTIONS, "/v1/push".to_owned()),
        (Method::POST, "/v1/pull?cursor=0".to_owned()),
        (Method::PUT, "/v1/pull".to_owned()),
        (Method::POST, snapshot_held.clone()),
        (Method::POST, "/v1/conflicts".to_owned()),
        (Method::GET, "/v1/scopes/ack".to_owned()),
        (Method::GET, "/v1/scopes/acks".to_owned()),
        (Method::POST, "/v1/directory".to_owned()),
        (Method::DELETE, "/v1/conflicts".to_owned()),
        (Method::GET, resolve_path.clone()),
        (Method::GET, revoke_hoa.clone()),
        (Method::DELETE, revoke_hoa.clone()),
        (Method::POST, "/healthz".to_owned()),
        (Method::DELETE, "/metrics".to_owned()),
        (Method::PUT, "/openapi.json".to_owned()),
    ] {
        out.push(
            case(format!("{method} {path}"), method, path)
                .bearer(minh)
                .json(live_push.to_string())
                .expect(StatusCode::METHOD_NOT_ALLOWED, codes::INVALID_INPUT),
        );
    }
    out
}

/// The documented statuses of the operation `method path` (`None`: no such operation, but a
/// documented path with another method gives `Some` of the other methods' union, empty).
fn documented_statuses(doc: &Value, method: &Method, path: &str) -> Option<BTreeSet<String>> {
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    for (template, item) in doc["paths"].as_object().unwrap() {
        let t: Vec<&str> = template.split('/').collect();
        let matches = t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
        if matches {
            let op = &item[method.as_str().to_lowercase()];
            return Some(
                op["responses"]
                    .as_object()
                    .map(|r| r.keys().cloned().collect())
                    .unwrap_or_default(),
            );
        }
    }
    None
}

async fn send(
    s: &Server,
    c: &Case,
) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut req = s
        .http
        .request(c.method.clone(), format!("{}{}", s.base, c.path));
    for p in &c.protocol {
        req = req.header(PROTOCOL_HEADER, HeaderValue::from_bytes(p).unwrap());
    }
    for a in &c.auth {
        req = req.header(AUTHORIZATION, HeaderValue::from_bytes(a).unwrap());
    }
    if let Some(ct) = &c.content_type {
        req = req.header(CONTENT_TYPE, ct.as_str());
    }
    if let Some(b) = &c.body {
        req = req.body(b.clone());
    }
    let resp = req.send().await.map_err(|e| format!("no response: {e}"))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_vec();
    Ok((status, headers, body))
}

/// What is wrong with the answer to `c`, if anything.
fn judge(
    c: &Case,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    secrets: &[String],
    doc: &Value,
) -> Vec<String> {
    let mut wrong = Vec::new();
    if !status.is_client_error() {
        wrong.push(format!("status {status}, not a 4xx"));
    }
    if status != c.status {
        wrong.push(format!("status {status}, expected {}", c.status));
    }
    if headers.get(PROTOCOL_HEADER).is_none_or(|v| v != "1") {
        wrong.push("no protocol header on the response".into());
    }
    if headers
        .get(CONTENT_TYPE)
        .is_none_or(|v| v != "application/json")
    {
        wrong.push(format!("content type {:?}", headers.get(CONTENT_TYPE)));
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Err(_) => wrong.push(format!(
            "body is not {{code, message}}: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
        Ok(e) => {
            if !CODES.contains(&e.code.as_str()) {
                wrong.push(format!("unknown code {:?}", e.code));
            }
            if e.code != c.code {
                wrong.push(format!("code {:?}, expected {:?}", e.code, c.code));
            }
            if e.message.trim().is_empty() {
                wrong.push("empty message".into());
            }
            let upper = e.message.to_uppercase();
            if MARK_PARTS.iter().any(|m| upper.contains(m)) {
                wrong.push(format!("message echoes the input: {:?}", e.message));
            }
            if secrets.iter().any(|s| e.message.contains(s.as_str())) {
                wrong.push("message carries a secret".into());
            }
        }
    }
    let documented = documented_statuses(doc, &c.method, &c.path);
    let ok = match &documented {
        Some(statuses) if !statuses.is_empty() => statuses.contains(status.as_str()),
        // A known path with another method, or an unknown path.
        Some(_) => status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::BAD_REQUEST,
        None => status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
    };
    if !ok {
        wrong.push(format!("status {status} is not in the OpenAPI document"));
    }
    wrong
}

#[tokio::test]
async fn every_malformed_request_gets_a_clear_4xx_and_changes_nothing() {
    let s = Server::start(Config::default()).await;
    let commune = setup(&s).await;
    let secrets = commune.secrets();
    let doc = openapi::document();
    let cases = cases(&commune);
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    assert!(cases.len() >= 200, "{} cases", cases.len());
    eprintln!("sending {} malformed requests", cases.len());

    let mut failures = Vec::new();
    for c in &cases {
        let before = s.db_state();
        let mut wrong = match send(&s, c).await {
            Ok((status, headers, body)) => judge(c, status, &headers, &body, &secrets, &doc),
            Err(e) => vec![e],
        };
        let after = s.db_state();
        let changed = changed_tables(&before, &after);
        let allowed = c.counts_login_failure
            && changed.len() == 1
            && before.get("login_failures").map(Vec::len).unwrap_or(0) + 1
                == after.get("login_failures").map(Vec::len).unwrap_or(0);
        if !changed.is_empty() && !allowed {
            wrong.push(format!("changed the database: {changed:?}"));
        }
        if c.counts_login_failure && changed.is_empty() {
            wrong.push("a failed login was not counted".into());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} {} [{}]: {}",
                c.method,
                short(&c.path),
                c.name,
                wrong.join("; ")
            ));
        }
    }

    // Nothing answered 5xx, by the server's own count.
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if !metrics.contains("donghanh_http_responses_total{class=\"5xx\"} 0") {
        failures.push("the server counted 5xx responses".into());
    }
    s.stop().await;
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn short(path: &str) -> String {
    if path.len() > 80 {
        format!("{}…", path.chars().take(80).collect::<String>())
    } else {
        path.to_owned()
    }
}
