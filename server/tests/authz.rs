//! The authorisation matrix (DESIGN.md §2): every caller (each role, and no token) × every
//! route the server registers × a target of the caller's own scope, a neighbour's (a
//! colleague's case, another point of the commune, another commune of the province) and
//! another province's, each asserted allowed or denied.
//!
//! The expectations come from [`policy`], written from DESIGN.md §2 ("who sees what, who does
//! what") and §3, not from the server's code. A route the server registers that the policy does
//! not know fails the test ([`every_route_has_a_policy`]), so a new route cannot slip through
//! unreviewed.
//!
//! A real server on 127.0.0.1 holds two provinces, each with a commune, a team and a community
//! point, one user of each role, a case assigned to the volunteer, a visit, a session, two
//! conflicts, a plan and a spare device; beside the first one's callers, a colleague's case
//! with its visit and conflicts, a second point with a session, a second commune with a plan
//! and a user's device. Every request is made over HTTP by a real enrolled
//! device. Around every denied request, every table of the server's SQLite file is read
//! (read-only) and compared: a denial changes nothing (a refused login is counted for the
//! login rate limit and a refused push keeps its receipt for replay, nothing else).
//!
//! Break-the-glass gets its own checks ([`break_the_glass_needs_a_reason_is_time_limited_audited_and_for_officers_only`]):
//! the reason's bounds, the grant's end (an expired grant put in the store denies), the audit
//! entries, the officer-only rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{Duration, Utc};
use donghanh_core::domain::{
    Assignment, Episode, EpisodeKind, FollowUpTask, Id, OrgUnit, OrgUnitKind, Person, Role, Scope,
    Session, SessionKind, Sex, User, Visit,
};
use donghanh_protocol::{
    EnrollResponse, ErrorBody, Mutation, MutationOp, Outcome, PROTOCOL_HEADER, PushResponse, codes,
};
use donghanh_server::secrets::ServerKeys;
use donghanh_server::store::sqlite::SqliteStore;
use donghanh_server::store::{GlassGrant, StoredUser, SyncStore};
use donghanh_server::{AppState, Config, Route, auth, routes, serve};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{DbState, changed_tables, db_state};

const PASSWORD: &str = "mật-khẩu-ma-trận-quyền";
const REASON: &str = "Tòa án nhân dân tỉnh yêu cầu xác minh hồ sơ theo công văn số 12";

/// Who calls: a role, or nobody (no token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Anonymous,
    Volunteer,
    Counsellor,
    Supervisor,
    Officer,
    Admin,
}

const CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Volunteer,
    Caller::Counsellor,
    Caller::Supervisor,
    Caller::Officer,
    Caller::Admin,
];

/// Whose the target is: the caller's own (their case, point, commune, province, device); a
/// neighbour's (another user's case or another point in the caller's commune; another commune
/// of the caller's province); or another province's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    Own,
    Neighbour,
    Foreign,
}

const REACHES: [Reach; 3] = [Reach::Own, Reach::Neighbour, Reach::Foreign];

/// What a request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Done: this status; a listing holds the target; a write is in the database.
    Allow(u16),
    /// Refused with this status and code, nothing changed.
    Deny(u16, &'static str),
    /// A listing answers 200 without the target (the server filters by scope), nothing changed
    /// but the device's own bookkeeping.
    Hidden,
    /// A push answers 200 with the mutation's receipt `rejected`/`forbidden`; no record written.
    Rejected,
    /// Accepted with this status and nothing recorded (an acknowledgement that is not the
    /// caller's is skipped).
    Ignored(u16),
}

use Expect::{Allow, Deny, Hidden, Ignored, Rejected};

const UNAUTH: Expect = Deny(401, codes::UNAUTHORISED);
const FORBID: Expect = Deny(403, codes::FORBIDDEN);
const NOT_FOUND: Expect = Deny(404, codes::NOT_FOUND);

/// The policy, from DESIGN.md §2 and §3 (and §5 for the public operational routes):
///
/// | role | sees / does |
/// |---|---|
/// | volunteer | the cases actively assigned to them (not a colleague's); logs visits in them |
/// | counsellor | the sessions of their own community point (not another point's) |
/// | supervisor | every case and point of their commune (not another commune's); assigns, resolves conflicts, sees the commune report (not a neighbour commune's), sets its plans |
/// | officer | aggregates (reports, plans) for their subtree (every commune of their province); named records only by break-the-glass, for a unit in their subtree |
/// | admin | no case content, no reports; revokes the devices of users within their own unit |
///
/// A scope one may not hold is answered as if it did not exist (404) where the caller names a
/// scope-held thing (a snapshot, a conflict, a device); org-unit names are public, so a report
/// of another unit is 403. Listings (pull, directory, conflicts) filter: 200 without the target.
fn policy(route: &Route, caller: Caller, reach: Reach) -> Expect {
    use Caller::{Admin, Anonymous, Counsellor, Officer, Supervisor, Volunteer};
    use Reach::{Foreign, Neighbour, Own};
    let path = route.path;
    let method = route.method.as_str();
    // Public: operations (§5) and the logins themselves.
    match (method, path) {
        ("GET", "/healthz" | "/metrics" | "/openapi.json") => return Allow(200),
        // Own: the caller's own credentials (anonymous: a user's password); otherwise another
        // user's name with a wrong password, another user's device's refresh token.
        ("POST", "/v1/enroll" | "/v1/token") => {
            return if reach == Own { Allow(200) } else { UNAUTH };
        }
        _ => {}
    }
    if caller == Anonymous {
        return UNAUTH;
    }
    // Whether the caller holds the target's case or point scope.
    let holds = match reach {
        Own => matches!(caller, Volunteer | Counsellor | Supervisor),
        Neighbour => caller == Supervisor,
        Foreign => false,
    };
    // Whether the caller may see the target unit's reports and plans.
    let reports = match reach {
        Own => matches!(caller, Supervisor | Officer),
        Neighbour => caller == Officer,
        Foreign => false,
    };
    // A supervisor's commune: their own case and their colleague's.
    let commune = caller == Supervisor && reach != Foreign;
    let within_unit = reach != Foreign;
    match (method, path) {
        ("POST", "/v1/push") => {
            if holds {
                Allow(200)
            } else {
                Rejected
            }
        }
        ("GET", "/v1/pull") => {
            if holds {
                Allow(200)
            } else {
                Hidden
            }
        }
        ("GET", "/v1/scopes/{scope}/snapshot") => {
            if holds {
                Allow(200)
            } else {
                NOT_FOUND
            }
        }
        // A device acknowledges the scope events sent to its user, nobody else's.
        ("POST", "/v1/scopes/ack") => {
            if holds {
                Allow(204)
            } else {
                NOT_FOUND
            }
        }
        ("POST", "/v1/scopes/acks") => {
            if holds {
                Allow(204)
            } else {
                Ignored(204)
            }
        }
        // Whom one may assign work to: a supervisor sees their own commune's staff.
        ("GET", "/v1/directory") => {
            if reach == Own && caller == Supervisor {
                Allow(200)
            } else {
                Hidden
            }
        }
        ("GET", "/v1/conflicts") => match (caller, commune) {
            (Supervisor, true) => Allow(200),
            (Supervisor, false) => Hidden,
            _ => FORBID,
        },
        ("POST", "/v1/conflicts/{id}/resolve") => match (caller, commune) {
            (Supervisor, true) => Allow(204),
            (Supervisor, false) => NOT_FOUND,
            _ => FORBID,
        },
        // The records behind a number: the commune's supervisor; an officer only under a
        // running break-the-glass grant (none in the matrix; see the break-the-glass test).
        ("GET", "/v1/reports/records") => {
            if reach == Own && caller == Supervisor {
                Allow(200)
            } else {
                FORBID
            }
        }
        ("POST", "/v1/break-glass") => {
            if caller == Officer && within_unit {
                Allow(201)
            } else {
                FORBID
            }
        }
        ("GET", "/v1/reports/{template}" | "/v1/plans")
        | ("POST", "/v1/reports/{template}/close") => {
            if reports {
                Allow(200)
            } else {
                FORBID
            }
        }
        ("PUT", "/v1/plans") => {
            if reports {
                Allow(204)
            } else {
                FORBID
            }
        }
        ("POST", "/v1/admin/devices/{id}/revoke") => match (caller, within_unit) {
            (Admin, true) => Allow(204),
            (Admin, false) => NOT_FOUND,
            _ => FORBID,
        },
        _ => panic!("no policy for {method} {path}: add it to the table from DESIGN.md §2"),
    }
}

/// Every route the policy knows, as written above.
const POLICY_ROUTES: [(&str, &str); 20] = [
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/enroll"),
    ("POST", "/v1/token"),
    ("POST", "/v1/push"),
    ("GET", "/v1/pull"),
    ("GET", "/v1/scopes/{scope}/snapshot"),
    ("POST", "/v1/scopes/ack"),
    ("POST", "/v1/scopes/acks"),
    ("GET", "/v1/directory"),
    ("GET", "/v1/conflicts"),
    ("POST", "/v1/conflicts/{id}/resolve"),
    ("GET", "/v1/reports/records"),
    ("POST", "/v1/break-glass"),
    ("GET", "/v1/reports/{template}"),
    ("POST", "/v1/reports/{template}/close"),
    ("PUT", "/v1/plans"),
    ("GET", "/v1/plans"),
    ("POST", "/v1/admin/devices/{id}/revoke"),
];

#[test]
fn every_route_has_a_policy() {
    let registered: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let known: BTreeSet<(String, String)> = POLICY_ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let unknown: Vec<_> = registered.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "routes without an authorisation policy: {unknown:?}"
    );
    let stale: Vec<_> = known.difference(&registered).collect();
    assert!(
        stale.is_empty(),
        "policy for routes that are gone: {stale:?}"
    );
    // The policy answers for every route, caller and reach (it panics on a route it lacks).
    for route in routes() {
        for caller in CALLERS {
            for reach in REACHES {
                let _ = policy(&route, caller, reach);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The world: two provinces.

/// A device of a user, enrolled over HTTP.
#[derive(Debug, Clone)]
struct Phone {
    user: Id,
    device: Id,
    access: String,
    refresh: String,
    seq: u64,
}

/// One province's units, users, devices and records.
struct Side {
    commune: Id,
    point: Id,
    users: BTreeMap<Caller, (String, Id)>,
    phones: BTreeMap<Caller, Phone>,
    /// A second volunteer of the commune (the directory's target).
    colleague: Id,
    /// A second device of the volunteer, for revocation.
    spare_device: Id,
    /// Its refresh token (the foreign token of the other side).
    spare_refresh: String,
    case: Person,
    visit: Id,
    session: Id,
    /// Conflicts: one to list, one to resolve.
    conflict_listed: uuid::Uuid,
    conflict_resolved: uuid::Uuid,
    /// A username with no failures yet: the foreign target of the login.
    login_target: BTreeMap<Caller, String>,
}

struct World {
    base: String,
    http: reqwest::Client,
    db: std::path::PathBuf,
    store: Arc<SqliteStore>,
    /// Side 0 is the callers' province, 1 another province, 2 the neighbours of side 0 (a
    /// colleague's case and another point of its commune, another commune of its province).
    sides: [Side; 3],
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn role_of(c: Caller) -> Option<Role> {
    match c {
        Caller::Anonymous => None,
        Caller::Volunteer => Some(Role::Volunteer),
        Caller::Counsellor => Some(Role::Counsellor),
        Caller::Supervisor => Some(Role::Supervisor),
        Caller::Officer => Some(Role::Officer),
        Caller::Admin => Some(Role::Admin),
    }
}

impl World {
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(PROTOCOL_HEADER, "1")
    }

    async fn enroll(&self, username: &str) -> Phone {
        let resp = self
            .request(Method::POST, "/v1/enroll")
            .json(&json!({"username": username, "password": PASSWORD, "device_label": "Redmi"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "enrol {username}");
        let e: EnrollResponse = resp.json().await.unwrap();
        Phone {
            user: Id::from(e.user_id),
            device: Id::from(e.device_id),
            access: e.tokens.access_token,
            refresh: e.tokens.refresh_token,
            seq: 0,
        }
    }

    async fn push(
        &self,
        phone: &mut Phone,
        mutations: Vec<(MutationOp, &str, Scope, Id, u64, Value)>,
    ) -> PushResponse {
        let mutations: Vec<Mutation<Value>> = mutations
            .into_iter()
            .map(|(op, kind, scope, id, base, patch)| {
                phone.seq += 1;
                Mutation {
                    client_seq: phone.seq,
                    record_id: id.uuid(),
                    kind: kind.into(),
                    scope: scope.to_string(),
                    op,
                    base_version: base,
                    patch,
                }
            })
            .collect();
        let resp = self
            .request(Method::POST, "/v1/push")
            .bearer_auth(&phone.access)
            .json(&json!({ "mutations": mutations }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    async fn get_json(&self, phone: &Phone, path: &str) -> Value {
        let resp = self
            .request(Method::GET, path)
            .bearer_auth(&phone.access)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        resp.json().await.unwrap()
    }

    fn db_state(&self) -> DbState {
        db_state(&self.db)
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap();
    }
}

fn applied(r: &PushResponse) {
    assert!(
        r.receipts.iter().all(|r| r.outcome == Outcome::Applied),
        "{r:?}"
    );
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

async fn build_world() -> World {
    crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let keys = ServerKeys::create(&dir.path().join("server.key")).unwrap();
    let db = dir.path().join("server.db");
    let store = SqliteStore::open(&db, keys).unwrap();
    let hash = auth::hash_password(PASSWORD).unwrap();
    let mut units = Vec::new();
    let mut users_by_side = Vec::new();
    // The first province's neighbour units: another commune, another point of the commune.
    let mut beside = None;
    for (i, name) in ["Tỉnh Một", "Tỉnh Hai"].into_iter().enumerate() {
        let province = OrgUnit::new(name, OrgUnitKind::Province, None);
        let commune = OrgUnit::new(format!("Xã {i}"), OrgUnitKind::Commune, Some(province.id));
        let team = OrgUnit::new(format!("Đội {i}"), OrgUnitKind::Team, Some(commune.id));
        let point = OrgUnit::new(
            format!("Điểm {i}"),
            OrgUnitKind::CommunityPoint,
            Some(commune.id),
        );
        for u in [&province, &commune, &team, &point] {
            store.add_org_unit(u.clone()).await.unwrap();
        }
        if i == 0 {
            let commune_b = OrgUnit::new("Xã Bên", OrgUnitKind::Commune, Some(province.id));
            let point_b = OrgUnit::new("Điểm Bên", OrgUnitKind::CommunityPoint, Some(commune.id));
            store.add_org_unit(commune_b.clone()).await.unwrap();
            store.add_org_unit(point_b.clone()).await.unwrap();
            let ben = User::new("tnv.ben", "Bên", Role::Volunteer, commune_b.id);
            let ben_id = ben.id;
            store
                .add_user(StoredUser {
                    user: ben,
                    password_hash: hash.clone(),
                })
                .await
                .unwrap();
            for name in ["n.vol", "n.tv", "n.gs", "n.cb", "n.qt", "n.none"] {
                let user = User::new(name, "Hàng xóm", Role::Volunteer, commune.id);
                store
                    .add_user(StoredUser {
                        user,
                        password_hash: hash.clone(),
                    })
                    .await
                    .unwrap();
            }
            beside = Some((commune_b.id, point_b.id, ben_id));
        }
        let mut users = BTreeMap::new();
        let mut add = |caller: Caller, username: String, org: Id, point_of: Option<Id>| {
            let mut user = User::new(&username, &username, role_of(caller).unwrap(), org);
            user.point = point_of;
            let id = user.id;
            users.insert(caller, (username, id));
            StoredUser {
                user,
                password_hash: hash.clone(),
            }
        };
        let seeded = vec![
            add(Caller::Volunteer, format!("tnv.{i}"), commune.id, None),
            add(
                Caller::Counsellor,
                format!("tv.{i}"),
                commune.id,
                Some(point.id),
            ),
            add(Caller::Supervisor, format!("gs.{i}"), commune.id, None),
            add(Caller::Officer, format!("cb.{i}"), province.id, None),
            add(Caller::Admin, format!("qt.{i}"), province.id, None),
        ];
        for u in seeded {
            store.add_user(u).await.unwrap();
        }
        let mut extra = Vec::new();
        for name in [
            "tnv.b", "x.vol", "x.tv", "x.gs", "x.cb", "x.qt", "x.none", "anon",
        ] {
            let user = User::new(
                format!("{name}.{i}"),
                "Đồng nghiệp",
                Role::Volunteer,
                commune.id,
            );
            extra.push(user.id);
            store
                .add_user(StoredUser {
                    user,
                    password_hash: hash.clone(),
                })
                .await
                .unwrap();
        }
        units.push((commune.id, point.id, team.id));
        users_by_side.push((users, extra));
    }
    let state = AppState::new(store, Config::default()).unwrap();
    let store = Arc::clone(&state.store);
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut world = World {
        base,
        http,
        db,
        store,
        sides: [placeholder(), placeholder(), placeholder()],
        stop: Some(tx),
        task,
        _dir: dir,
    };
    let today = donghanh_core::domain::vn_date(Utc::now());
    for (i, ((commune, point, _team), (users, extra))) in
        units.into_iter().zip(users_by_side).enumerate()
    {
        let mut phones = BTreeMap::new();
        for (caller, (username, _)) in &users {
            phones.insert(*caller, world.enroll(username).await);
        }
        let spare = world.enroll(&format!("tnv.{i}")).await;
        // The supervisor opens a case of the commune and assigns it to the volunteer, who
        // logs a visit; the counsellor plans a session at the point.
        let mut person = Person::new(
            "Nguyễn Văn Ma Trận",
            chrono::NaiveDate::from_ymd_opt(1988, 3, 4).unwrap(),
            Sex::Male,
        );
        person.commune = Some(commune);
        let scope = Scope::Person(person.id);
        let episode = Episode::new(
            person.id,
            EpisodeKind::PostRehab,
            today - Duration::days(10),
        );
        let volunteer = users[&Caller::Volunteer].1;
        let assignment = Assignment::new(person.id, episode.id, volunteer, today);
        let sup = phones.get_mut(&Caller::Supervisor).unwrap();
        let r = world
            .push(
                sup,
                vec![
                    (
                        MutationOp::Create,
                        "person",
                        scope,
                        person.id,
                        0,
                        to_json(&person),
                    ),
                    (
                        MutationOp::Create,
                        "episode",
                        scope,
                        episode.id,
                        0,
                        to_json(&episode),
                    ),
                    (
                        MutationOp::Create,
                        "assignment",
                        scope,
                        assignment.id,
                        0,
                        to_json(&assignment),
                    ),
                ],
            )
            .await;
        applied(&r);
        let visit = Visit::new(person.id, Utc::now() - Duration::hours(1), "Thăm nhà");
        let vol = phones.get_mut(&Caller::Volunteer).unwrap();
        let r = world
            .push(
                vol,
                vec![(
                    MutationOp::Create,
                    "visit",
                    scope,
                    visit.id,
                    0,
                    to_json(&visit),
                )],
            )
            .await;
        applied(&r);
        let session = Session::new(
            point,
            SessionKind::Group,
            "Sinh hoạt nhóm",
            Utc::now() + Duration::days(2),
        );
        let tv = phones.get_mut(&Caller::Counsellor).unwrap();
        let r = world
            .push(
                tv,
                vec![(
                    MutationOp::Create,
                    "session",
                    Scope::Point(point),
                    session.id,
                    0,
                    to_json(&session),
                )],
            )
            .await;
        applied(&r);
        // Two conflicts on the case: the supervisor's second phone edits fields the first
        // phone changed since their common base.
        let mut sup2 = world.enroll(&format!("gs.{i}")).await;
        let sup = phones.get_mut(&Caller::Supervisor).unwrap();
        let r = world
            .push(
                sup,
                vec![(
                    MutationOp::Update,
                    "person",
                    scope,
                    person.id,
                    1,
                    json!({"address": "Thôn Một", "family_contact": "Anh Một"}),
                )],
            )
            .await;
        applied(&r);
        let r = world
            .push(
                &mut sup2,
                vec![(
                    MutationOp::Update,
                    "person",
                    scope,
                    person.id,
                    1,
                    json!({"address": "Thôn Hai", "family_contact": "Anh Hai"}),
                )],
            )
            .await;
        assert_eq!(r.receipts[0].outcome, Outcome::Conflict, "{r:?}");
        let sup = &phones[&Caller::Supervisor];
        let list = world.get_json(sup, "/v1/conflicts").await;
        let by_field: BTreeMap<String, uuid::Uuid> = list["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["field"].as_str().unwrap().to_owned(),
                    c["id"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(by_field.len(), 2, "{list}");
        // A plan for the commune, to read back.
        let resp = world
            .request(Method::PUT, "/v1/plans")
            .bearer_auth(&sup.access)
            .json(
                &json!({"org": commune, "period": "2026", "title": "Kế hoạch",
                          "targets": [{"indicator": "VISITS", "goal": {"at_least": 10}}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let login_target = [
            Caller::Volunteer,
            Caller::Counsellor,
            Caller::Supervisor,
            Caller::Officer,
            Caller::Admin,
            Caller::Anonymous,
        ]
        .into_iter()
        .zip(["x.vol", "x.tv", "x.gs", "x.cb", "x.qt", "x.none"])
        .map(|(c, n)| (c, format!("{n}.{i}")))
        .collect();
        world.sides[i] = Side {
            commune,
            point,
            users,
            phones,
            colleague: extra[0],
            spare_device: spare.device,
            spare_refresh: spare.refresh,
            case: person,
            visit: visit.id,
            session: session.id,
            conflict_listed: by_field["address"],
            conflict_resolved: by_field["family_contact"],
            login_target,
        };
    }
    let (commune_b, point_b, ben) = beside.unwrap();
    neighbours(&mut world, commune_b, point_b, ben).await;
    world
}

/// Side 2: beside the callers of side 0. A case of their commune assigned to a colleague, with
/// the colleague's visit and two conflicts; a session at another point of the commune; another
/// commune of the province with a plan, a user (the directory's target) and their device.
async fn neighbours(world: &mut World, commune_b: Id, point_b: Id, ben: Id) {
    let today = donghanh_core::domain::vn_date(Utc::now());
    let me = &world.sides[0];
    let commune = me.commune;
    let colleague_id = me.colleague;
    let mut sup = me.phones[&Caller::Supervisor].clone();
    let officer = me.phones[&Caller::Officer].clone();
    let spare = world.enroll("tnv.ben").await;
    let mut colleague = world.enroll("tnv.b.0").await;
    let mut person = Person::new(
        "Đỗ Thị Hàng Xóm",
        chrono::NaiveDate::from_ymd_opt(1992, 8, 9).unwrap(),
        Sex::Female,
    );
    person.commune = Some(commune);
    let scope = Scope::Person(person.id);
    let episode = Episode::new(
        person.id,
        EpisodeKind::PostRehab,
        today - Duration::days(20),
    );
    let assignment = Assignment::new(person.id, episode.id, colleague_id, today);
    let r = world
        .push(
            &mut sup,
            vec![
                (
                    MutationOp::Create,
                    "person",
                    scope,
                    person.id,
                    0,
                    to_json(&person),
                ),
                (
                    MutationOp::Create,
                    "episode",
                    scope,
                    episode.id,
                    0,
                    to_json(&episode),
                ),
                (
                    MutationOp::Create,
                    "assignment",
                    scope,
                    assignment.id,
                    0,
                    to_json(&assignment),
                ),
            ],
        )
        .await;
    applied(&r);
    let visit = Visit::new(person.id, Utc::now() - Duration::hours(2), "Thăm nhà");
    let r = world
        .push(
            &mut colleague,
            vec![(
                MutationOp::Create,
                "visit",
                scope,
                visit.id,
                0,
                to_json(&visit),
            )],
        )
        .await;
    applied(&r);
    let session = Session::new(
        point_b,
        SessionKind::Club,
        "Câu lạc bộ",
        Utc::now() + Duration::days(3),
    );
    let r = world
        .push(
            &mut sup,
            vec![(
                MutationOp::Create,
                "session",
                Scope::Point(point_b),
                session.id,
                0,
                to_json(&session),
            )],
        )
        .await;
    applied(&r);
    let mut sup2 = world.enroll("gs.0").await;
    let r = world
        .push(
            &mut sup,
            vec![(
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                json!({"address": "Xóm Một", "family_contact": "Chị Một"}),
            )],
        )
        .await;
    applied(&r);
    let r = world
        .push(
            &mut sup2,
            vec![(
                MutationOp::Update,
                "person",
                scope,
                person.id,
                1,
                json!({"address": "Xóm Hai", "family_contact": "Chị Hai"}),
            )],
        )
        .await;
    assert_eq!(r.receipts[0].outcome, Outcome::Conflict, "{r:?}");
    let list = world.get_json(&sup, "/v1/conflicts").await;
    let by_field: BTreeMap<String, uuid::Uuid> = list["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["record_id"] == json!(person.id))
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_field.len(), 2, "{list}");
    let resp = world
        .request(Method::PUT, "/v1/plans")
        .bearer_auth(&officer.access)
        .json(
            &json!({"org": commune_b, "period": "2026", "title": "Kế hoạch xã bên",
                      "targets": [{"indicator": "VISITS", "goal": {"at_least": 5}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The supervisor's phone moved on: keep its counter.
    world.sides[0].phones.insert(Caller::Supervisor, sup);
    let login_target = [
        Caller::Volunteer,
        Caller::Counsellor,
        Caller::Supervisor,
        Caller::Officer,
        Caller::Admin,
        Caller::Anonymous,
    ]
    .into_iter()
    .zip(["n.vol", "n.tv", "n.gs", "n.cb", "n.qt", "n.none"])
    .map(|(c, n)| (c, n.to_owned()))
    .collect();
    world.sides[2] = Side {
        commune: commune_b,
        point: point_b,
        users: BTreeMap::new(),
        phones: BTreeMap::new(),
        colleague: ben,
        spare_device: spare.device,
        spare_refresh: spare.refresh,
        case: person,
        visit: visit.id,
        session: session.id,
        conflict_listed: by_field["address"],
        conflict_resolved: by_field["family_contact"],
        login_target,
    };
}

fn placeholder() -> Side {
    Side {
        commune: Id::new(),
        point: Id::new(),
        users: BTreeMap::new(),
        phones: BTreeMap::new(),
        colleague: Id::new(),
        spare_device: Id::new(),
        spare_refresh: String::new(),
        case: Person::new(
            "-",
            chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
            Sex::Male,
        ),
        visit: Id::new(),
        session: Id::new(),
        conflict_listed: uuid::Uuid::nil(),
        conflict_resolved: uuid::Uuid::nil(),
        login_target: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The requests.

/// One request of the matrix, and how to tell whether it reached its target.
struct Probe {
    method: Method,
    path: String,
    body: Option<Value>,
    bearer: Option<String>,
    /// For a listing: the id that must be there (allowed) or absent (hidden).
    target: Option<String>,
    /// For a push: the record it writes.
    writes: Option<Id>,
}

/// The grant event a user (`None`: anyone) was sent for a scope, from the server's file
/// (read-only).
fn grant_event(db: &std::path::Path, user: Option<Id>, scope: &str) -> Option<u64> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    conn.query_row(
        "SELECT op_id FROM scope_events
         WHERE (?1 IS NULL OR user = ?1) AND scope = ?2 AND kind = 'grant'
         ORDER BY op_id DESC LIMIT 1",
        rusqlite::params![user.map(|u| u.as_bytes().to_vec()), scope],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .map(|v| u64::try_from(v).unwrap())
}

/// The scope a role works in on a side: the case (volunteer, supervisor, and those who hold
/// none), or the community point (counsellor).
fn work_scope(side: &Side, caller: Caller) -> Scope {
    if caller == Caller::Counsellor {
        Scope::Point(side.point)
    } else {
        Scope::Person(side.case.id)
    }
}

/// The record a role would find in a pull of a side.
fn work_record(side: &Side, caller: Caller) -> Id {
    match caller {
        Caller::Counsellor => side.session,
        Caller::Volunteer => side.visit,
        _ => side.case.id,
    }
}

fn probe(w: &World, route: &Route, caller: Caller, reach: Reach, n: usize) -> Probe {
    let me = &w.sides[0];
    let target = match reach {
        Reach::Own => &w.sides[0],
        Reach::Foreign => &w.sides[1],
        Reach::Neighbour => &w.sides[2],
    };
    let phone = me.phones.get(&caller);
    let bearer = phone.map(|p| p.access.clone());
    let mut p = Probe {
        method: route.method.clone(),
        path: route.path.to_owned(),
        body: None,
        bearer,
        target: None,
        writes: None,
    };
    let month = "2026-10";
    match route.path {
        "/healthz" | "/metrics" | "/openapi.json" => {}
        "/v1/enroll" => {
            let username = match reach {
                Reach::Own => me
                    .users
                    .get(&caller)
                    .map_or_else(|| "anon.0".to_owned(), |(u, _)| u.clone()),
                _ => target.login_target[&caller].clone(),
            };
            let password = match reach {
                Reach::Own => PASSWORD.to_owned(),
                _ => format!("{PASSWORD}-sai"),
            };
            p.body =
                Some(json!({"username": username, "password": password, "device_label": "Redmi"}));
        }
        "/v1/token" => {
            // Anonymous: the spare device's own token.
            let (device, refresh) = match phone {
                Some(ph) => (ph.device, ph.refresh.clone()),
                None => (me.spare_device, me.spare_refresh.clone()),
            };
            let refresh = match reach {
                Reach::Own => refresh,
                _ => target.spare_refresh.clone(),
            };
            p.body = Some(json!({"device_id": device, "refresh_token": refresh}));
        }
        "/v1/push" => {
            let scope = work_scope(target, caller);
            let (kind, id, record) = match caller {
                Caller::Counsellor => {
                    let s = Session::new(
                        target.point,
                        SessionKind::Individual,
                        format!("Tư vấn {n}"),
                        Utc::now() + Duration::days(1),
                    );
                    ("session", s.id, to_json(&s))
                }
                Caller::Supervisor => {
                    let today = donghanh_core::domain::vn_date(Utc::now());
                    let t =
                        FollowUpTask::new(target.case.id, today + Duration::days(3), "Gọi điện");
                    ("task", t.id, to_json(&t))
                }
                _ => {
                    let v = Visit::new(target.case.id, Utc::now(), format!("Thăm {n}"));
                    ("visit", v.id, to_json(&v))
                }
            };
            let seq = 1_000_000 + n as u64;
            p.body = Some(json!({"mutations": [{
                "client_seq": seq, "record_id": id, "kind": kind, "scope": scope.to_string(),
                "op": "create", "base_version": 0, "patch": record}]}));
            p.writes = Some(id);
        }
        "/v1/pull" => {
            p.path = "/v1/pull?cursor=0".into();
            p.target = Some(work_record(target, caller).to_string());
        }
        "/v1/scopes/{scope}/snapshot" => {
            p.path = format!("/v1/scopes/{}/snapshot", work_scope(target, caller));
            p.target = Some(work_record(target, caller).to_string());
            if caller == Caller::Counsellor {
                p.target = Some(target.session.to_string());
            }
        }
        "/v1/scopes/ack" | "/v1/scopes/acks" => {
            // The grant of the role's work scope sent to the same role on the target side
            // (own: the caller's own; foreign: the other province's), or a colleague's.
            let scope = work_scope(target, caller).to_string();
            let whose = target
                .users
                .get(&caller)
                .or_else(|| target.users.get(&Caller::Volunteer))
                .map_or_else(Id::new, |u| u.1);
            let mine = me.users.get(&caller).map(|u| u.1);
            let op = match reach {
                // Beside the caller: their own grant if they hold the scope, else anyone's.
                Reach::Neighbour => mine.and_then(|m| grant_event(&w.db, Some(m), &scope)),
                _ => grant_event(&w.db, Some(whose), &scope),
            }
            .or_else(|| grant_event(&w.db, None, &scope))
            .unwrap_or_else(|| panic!("no grant event for {scope}"));
            let ack = json!({"scope": scope, "kind": "grant", "op_id": op});
            p.body = Some(if route.path == "/v1/scopes/ack" {
                ack
            } else {
                json!({"acks": [ack]})
            });
        }
        "/v1/directory" => p.target = Some(target.colleague.to_string()),
        "/v1/conflicts" => p.target = Some(target.conflict_listed.to_string()),
        "/v1/conflicts/{id}/resolve" => {
            p.path = format!("/v1/conflicts/{}/resolve", target.conflict_resolved);
            p.body = Some(json!({"restore": true}));
        }
        "/v1/reports/records" => {
            p.path = format!(
                "/v1/reports/records?org={}&period={month}&indicator=VISITS",
                target.commune
            );
        }
        "/v1/break-glass" => {
            // A unit below the commune: the grant must not open the commune's records to the
            // officer for the rest of the matrix.
            p.body = Some(json!({"org": target.point, "reason": REASON, "minutes": 5}));
        }
        "/v1/reports/{template}" => {
            p.path = format!("/v1/reports/01-BCN?org={}&period={month}", target.commune);
        }
        "/v1/reports/{template}/close" => {
            // Each caller closes its own past month, so that an allowed close never makes
            // another caller's answer "closed already".
            let period = format!("2025-{:02}", (n % 12) + 1);
            p.path = format!(
                "/v1/reports/01-BCN/close?org={}&period={period}",
                target.commune
            );
        }
        "/v1/plans" if route.method == Method::PUT => {
            p.body = Some(
                json!({"org": target.commune, "period": "2026", "title": format!("Kế hoạch {n}"),
                          "targets": [{"indicator": "VISITS", "goal": {"at_least": 12}}]}),
            );
        }
        "/v1/plans" => {
            p.path = format!(
                "/v1/plans?org={}&period=2026&as_of=2026-06-30",
                target.commune
            );
        }
        "/v1/admin/devices/{id}/revoke" => {
            p.path = format!("/v1/admin/devices/{}/revoke", target.spare_device);
        }
        other => panic!("no request for {other}"),
    }
    p
}

/// Every id string anywhere in a JSON value (listing checks).
fn ids_in(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(a) => a.iter().for_each(|x| ids_in(x, out)),
        Value::Object(m) => m.values().for_each(|x| ids_in(x, out)),
        _ => {}
    }
}

/// Tables a request may change while it is denied or hidden: a refused login is counted; a
/// refused push keeps its receipt (a replay answers the same); a pull moves the device's
/// own cursor and last-seen time.
fn may_change(route: &Route, expect: Expect) -> &'static [&'static str] {
    match (route.path, expect) {
        ("/v1/enroll", Deny(..)) => &["login_failures"],
        ("/v1/push", Rejected) => &["receipts", "devices"],
        // The caller's own records it serves are audited (checked: not the target's).
        ("/v1/pull", Hidden) => &["devices", "audit_log"],
        _ => &[],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_on_every_route_on_own_neighbour_and_foreign_scope_gets_what_the_policy_says() {
    let mut w = build_world().await;
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut n = 0;
    for route in routes() {
        for caller in CALLERS {
            for reach in REACHES {
                n += 1;
                let expect = policy(&route, caller, reach);
                let p = probe(&w, &route, caller, reach, n);
                let before = w.db_state();
                let mut req = w.request(p.method.clone(), &p.path);
                if let Some(token) = &p.bearer {
                    req = req.bearer_auth(token);
                }
                if let Some(body) = &p.body {
                    req = req.json(body);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let bytes = resp.bytes().await.unwrap();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let after = w.db_state();
                let changed = changed_tables(&before, &after);
                let label = format!("{} {} as {caller:?} on {reach:?}", route.method, route.path);
                let mut fail = |why: String| failures.push(format!("{label}: {why}"));
                match expect {
                    Allow(want) => {
                        *counts.entry("allowed").or_default() += 1;
                        if status != want {
                            fail(format!("expected {want}, got {status}: {body}"));
                        } else if let Some(target) = &p.target {
                            let mut ids = BTreeSet::new();
                            ids_in(&body, &mut ids);
                            if !ids.contains(target) {
                                fail(format!("the answer lacks its target {target}"));
                            }
                        } else if p.writes.is_some() {
                            let receipt = &body["receipts"][0];
                            let count = |s: &DbState| s.get("records").map_or(0, Vec::len);
                            if receipt["outcome"] != "applied" {
                                fail(format!("not applied: {receipt}"));
                            } else if count(&after) != count(&before) + 1 {
                                fail("an applied push wrote no record".into());
                            }
                        }
                    }
                    Deny(want, code) => {
                        *counts.entry("denied").or_default() += 1;
                        let err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
                        match err {
                            Some(e)
                                if status == want && e.code == code && !e.message.is_empty() => {}
                            _ => fail(format!(
                                "expected {want} {code}, got {status}: {}",
                                String::from_utf8_lossy(&bytes)
                            )),
                        }
                    }
                    Hidden => {
                        *counts.entry("hidden").or_default() += 1;
                        let mut ids = BTreeSet::new();
                        ids_in(&body, &mut ids);
                        if status != 200 {
                            fail(format!(
                                "expected 200 without the target, got {status}: {body}"
                            ));
                        } else if ids.contains(p.target.as_ref().unwrap()) {
                            fail("the answer shows a target out of scope".into());
                        }
                    }
                    Rejected => {
                        *counts.entry("rejected").or_default() += 1;
                        let receipt = &body["receipts"][0];
                        if status != 200
                            || receipt["outcome"] != "rejected"
                            || receipt["reason"]["code"] != codes::FORBIDDEN
                        {
                            fail(format!("expected a rejected receipt, got {status}: {body}"));
                        }
                    }
                    Ignored(want) => {
                        *counts.entry("ignored").or_default() += 1;
                        if status != want {
                            fail(format!("expected {want}, got {status}: {body}"));
                        }
                    }
                }
                if !matches!(expect, Allow(_)) {
                    let allowed = may_change(&route, expect);
                    let extra: Vec<&String> = changed
                        .iter()
                        .filter(|t| !allowed.iter().any(|a| t.starts_with(&format!("{a} "))))
                        .collect();
                    if !extra.is_empty() {
                        fail(format!("a refusal changed the database: {extra:?}"));
                    }
                    // No audit entry names the target out of reach.
                    let new_audit: Vec<&String> = after
                        .get("audit_log")
                        .into_iter()
                        .flatten()
                        .filter(|row| !before.get("audit_log").is_some_and(|b| b.contains(row)))
                        .collect();
                    if reach == Reach::Foreign {
                        let other = &w.sides[1];
                        for id in [other.case.id, other.point, other.commune] {
                            if new_audit.iter().any(|row| row.contains(&id.to_string())) {
                                fail("an audit entry names a scope out of reach".into());
                            }
                        }
                    }
                }
                // Allowed token refreshes rotate the token: keep the new one.
                if route.path == "/v1/token" && status == 200 {
                    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
                    let side = &mut w.sides[0];
                    match side.phones.get_mut(&caller) {
                        Some(ph) => ph.refresh = refresh,
                        None => side.spare_refresh = refresh,
                    }
                }
            }
        }
    }
    let total = n;
    eprintln!("authorisation matrix: {total} cases, {counts:?}");
    assert_eq!(total, routes().len() * CALLERS.len() * REACHES.len());
    assert!(
        failures.is_empty(),
        "{} of {total} cases disagree with the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_admin_beside_the_provinces_revokes_any_device_a_province_admin_only_theirs() {
    let w = build_world().await;
    // As the server's first start makes it: a root unit of kind `other`, beside the provinces.
    let system = OrgUnit::new("Quản trị hệ thống / System", OrgUnitKind::Other, None);
    w.store.add_org_unit(system.clone()).await.unwrap();
    let root = User::new("admin", "Administrator", Role::Admin, system.id);
    w.store
        .add_user(StoredUser {
            user: root,
            password_hash: auth::hash_password(PASSWORD).unwrap(),
        })
        .await
        .unwrap();
    // Another unit of kind `other` below a province is no system unit.
    let below = OrgUnit::new("Công an tỉnh", OrgUnitKind::Other, Some(w.sides[1].commune));
    w.store.add_org_unit(below.clone()).await.unwrap();
    let local = User::new("qt.ca", "Quản trị công an", Role::Admin, below.id);
    w.store
        .add_user(StoredUser {
            user: local,
            password_hash: auth::hash_password(PASSWORD).unwrap(),
        })
        .await
        .unwrap();
    let admin = w.enroll("admin").await;
    let local = w.enroll("qt.ca").await;
    let revoke = |who: &Phone, device: Id| {
        w.request(Method::POST, &format!("/v1/admin/devices/{device}/revoke"))
            .bearer_auth(&who.access)
            .send()
    };
    let before = w.db_state();
    let resp = revoke(&local, w.sides[0].spare_device).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(changed_tables(&before, &w.db_state()).is_empty());
    for side in [&w.sides[0], &w.sides[1], &w.sides[2]] {
        let resp = revoke(&admin, side.spare_device).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_one_may_not_see_reveals_nothing_of_its_plans_not_even_their_absence() {
    let w = build_world().await;
    let me = &w.sides[0];
    let plans = |who: &Phone, org: Id, period: &str| {
        w.request(
            Method::GET,
            &format!("/v1/plans?org={org}&period={period}&as_of=2025-06-30"),
        )
        .bearer_auth(&who.access)
        .send()
    };
    // 2025 has no plan anywhere; 2026 has one for each commune.
    for caller in [Caller::Volunteer, Caller::Counsellor, Caller::Admin] {
        for period in ["2025", "2026"] {
            let resp = plans(&me.phones[&caller], me.commune, period)
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{caller:?} {period}");
        }
    }
    let supervisor = &me.phones[&Caller::Supervisor];
    for period in ["2025", "2026"] {
        let resp = plans(supervisor, w.sides[1].commune, period).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{period}");
    }
    // Where one may look, no plan is not_found.
    let resp = plans(supervisor, me.commune, "2025").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Break-the-glass.

/// The audit entries of an action, as (user, scope, purpose) rows.
fn audit_rows(db: &std::path::Path, action: &str) -> Vec<(Vec<u8>, String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let mut stmt = conn
        .prepare("SELECT user, scope, purpose FROM audit_log WHERE action = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([action], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_the_glass_needs_a_reason_is_time_limited_audited_and_for_officers_only() {
    let w = build_world().await;
    let me = &w.sides[0];
    let officer = &me.phones[&Caller::Officer];
    let glass = |who: &Phone, body: Value| {
        w.request(Method::POST, "/v1/break-glass")
            .bearer_auth(&who.access)
            .json(&body)
            .send()
    };
    let records = |org: Id| {
        w.request(
            Method::GET,
            &format!("/v1/reports/records?org={org}&period=2026-10&indicator=VISITS"),
        )
        .bearer_auth(&officer.access)
        .send()
    };
    let mut cases = 0;

    // The reason: 20 to 1000 characters once trimmed (characters, not bytes), no NUL;
    // minutes 1 to 240. Every refusal changes nothing and grants nothing.
    let short = "Xác minh hồ sơ vay.";
    assert_eq!(short.chars().count(), 19);
    let refused: Vec<(String, Value)> = vec![
        ("no reason".into(), json!({"org": me.commune})),
        ("empty".into(), json!({"org": me.commune, "reason": ""})),
        (
            "19 characters".into(),
            json!({"org": me.commune, "reason": short}),
        ),
        (
            "19 characters padded with spaces".into(),
            json!({"org": me.commune, "reason": format!("     {short}      ")}),
        ),
        (
            "1001 characters".into(),
            json!({"org": me.commune, "reason": "ạ".repeat(1001)}),
        ),
        (
            "a NUL".into(),
            json!({"org": me.commune, "reason": format!("{REASON}\u{0}")}),
        ),
        (
            "0 minutes".into(),
            json!({"org": me.commune, "reason": REASON, "minutes": 0}),
        ),
        (
            "241 minutes".into(),
            json!({"org": me.commune, "reason": REASON, "minutes": 241}),
        ),
        (
            "a day".into(),
            json!({"org": me.commune, "reason": REASON, "minutes": 1440}),
        ),
    ];
    for (what, body) in refused {
        cases += 1;
        let before = w.db_state();
        let resp = glass(officer, body).await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        let e: ErrorBody = resp.json().await.unwrap();
        assert_eq!(e.code, codes::INVALID_INPUT, "{what}");
        assert!(
            changed_tables(&before, &w.db_state()).is_empty(),
            "{what} changed the database"
        );
    }
    cases += 1;
    assert_eq!(
        records(me.commune).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // Only officers; a valid request from anyone else changes nothing.
    for caller in [
        Caller::Volunteer,
        Caller::Counsellor,
        Caller::Supervisor,
        Caller::Admin,
    ] {
        cases += 1;
        let before = w.db_state();
        let resp = glass(
            &me.phones[&caller],
            json!({"org": me.commune, "reason": REASON, "minutes": 30}),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{caller:?}");
        assert!(changed_tables(&before, &w.db_state()).is_empty());
    }
    // An officer of the other province cannot break the glass here.
    cases += 1;
    let other = &w.sides[1].phones[&Caller::Officer];
    let before = w.db_state();
    let resp = glass(other, json!({"org": me.commune, "reason": REASON}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(changed_tables(&before, &w.db_state()).is_empty());

    // An expired grant (put in the store as it would be two hours later) opens nothing.
    cases += 1;
    let now = Utc::now();
    w.store
        .put_glass_grant(
            GlassGrant {
                id: Id::new(),
                user: officer.user,
                org: me.commune,
                reason: REASON.into(),
                granted_at: now - Duration::hours(3),
                expires_at: now - Duration::hours(1),
            },
            officer.device,
        )
        .await
        .unwrap();
    assert_eq!(
        records(me.commune).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // A grant ending this very second is over too.
    cases += 1;
    w.store
        .put_glass_grant(
            GlassGrant {
                id: Id::new(),
                user: officer.user,
                org: me.commune,
                reason: REASON.into(),
                granted_at: now - Duration::minutes(60),
                expires_at: Utc::now(),
            },
            officer.device,
        )
        .await
        .unwrap();
    assert_eq!(
        records(me.commune).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // The bounds themselves are accepted: exactly 20 and 1000 characters, 1 and 240 minutes.
    let audited_before = audit_rows(&w.db, "break_glass").len();
    let twenty = "Xác minh hồ sơ vay ạ";
    assert_eq!(twenty.chars().count(), 20);
    for (reason, minutes) in [
        (twenty.to_owned(), 1),
        ("ạ".repeat(1000), 240),
        (REASON.to_owned(), 30),
    ] {
        cases += 1;
        let resp = glass(
            officer,
            json!({"org": me.point, "reason": reason, "minutes": minutes}),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.unwrap();
        let expires: chrono::DateTime<Utc> =
            serde_json::from_value(body["expires_at"].clone()).unwrap();
        let left = expires - Utc::now();
        assert!(
            left <= Duration::minutes(minutes)
                && left > Duration::minutes(minutes) - Duration::minutes(2),
            "a {minutes}-minute grant ends in {left}"
        );
    }
    // Every grant is audited: the officer, the unit, never the reason in clear.
    let audited = audit_rows(&w.db, "break_glass");
    assert_eq!(audited.len(), audited_before + 3, "one entry per grant");
    for (user, scope, purpose) in &audited[audited_before..] {
        assert_eq!(user, &officer.user.as_bytes().to_vec());
        assert!(
            scope.contains(&me.point.to_string()) || scope.contains(&me.commune.to_string()),
            "{scope}"
        );
        assert!(
            !purpose.contains("Tòa án"),
            "the reason is sealed, not in the audit log"
        );
    }
    // A grant on the point opens the point's records, not the commune's.
    cases += 1;
    assert_eq!(records(me.point).await.unwrap().status(), StatusCode::OK);
    cases += 1;
    assert_eq!(
        records(me.commune).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // A running grant on the commune opens it; the access is audited with the grant.
    cases += 1;
    let resp = glass(
        officer,
        json!({"org": me.commune, "reason": REASON, "minutes": 5}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let grant: Value = resp.json().await.unwrap();
    let seen_before = audit_rows(&w.db, "break_glass_records").len();
    let resp = records(me.commune).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = audit_rows(&w.db, "break_glass_records");
    assert_eq!(seen.len(), seen_before + 1);
    let (user, scope, purpose) = seen.last().unwrap();
    assert_eq!(user, &officer.user.as_bytes().to_vec());
    assert_eq!(scope, &format!("org:{}", me.commune));
    assert!(purpose.contains(grant["id"].as_str().unwrap()), "{purpose}");
    // ...but not the other province's commune.
    cases += 1;
    assert_eq!(
        records(w.sides[1].commune).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    // The audit chain still verifies.
    assert!(matches!(
        w.store.verify_audit().await.unwrap(),
        donghanh_server::audit::Verdict::Intact { .. }
    ));
    eprintln!("break-the-glass: {cases} cases");
    w.stop().await;
}
