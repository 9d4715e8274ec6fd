//! The conformance suite every [`SyncStore`] backend must pass (STYLE.md point 7).
//!
//! Each backend's tests call [`run_all`] on a fresh, empty store. The checks are behaviour, not
//! implementation: what a caller of the trait may rely on.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDate, Utc};
use donghanh_core::domain::{
    Device, DomainError, FollowUpTask, Id, OrgUnit, OrgUnitKind, Person, Role, Scope, Sex,
    SupervisionNote, User,
};
use donghanh_protocol::{Mutation, MutationOp, Outcome, ScopeAck, ScopeEventKind};
use serde_json::Value;

use super::{AccessGrant, PushCaller, StoreError, StoredUser, SyncStore};

/// Runs every check on an empty store.
pub async fn run_all<S: SyncStore>(store: &S) {
    let commune = org_units_form_a_checked_tree(store).await;
    let user = usernames_are_unique_and_found_exactly(store, commune).await;
    devices_tokens_and_revocation(store, user).await;
    login_failures_are_counted_per_username(store).await;
    org_scopes_follow_the_tree_and_the_case_commune(store).await;
    tombstones_outlive_every_active_cursor(store).await;
    a_push_request_is_handled_in_order(store).await;
    break_glass_grants_run_out_and_are_audited(store, commune, user).await;
}

async fn break_glass_grants_run_out_and_are_audited<S: SyncStore>(store: &S, org: Id, user: Id) {
    let now = Utc::now();
    let grant = |minutes: i64| super::GlassGrant {
        id: Id::new(),
        user,
        org,
        reason: "Kiểm tra hồ sơ theo yêu cầu của tòa án markerreason".into(),
        granted_at: now - Duration::minutes(90),
        expires_at: now - Duration::minutes(90) + Duration::minutes(minutes),
    };
    let (old, running) = (grant(60), grant(240));
    let device = Id::new();
    store.put_glass_grant(old.clone(), device).await.unwrap();
    store
        .put_glass_grant(running.clone(), device)
        .await
        .unwrap();
    // Only the grant still running is found, with its reason; another user has none.
    // Times are kept to the second (an expiry never later than asked).
    let found = store.glass_grants(user, now).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].id, found[0].org, &found[0].reason),
        (running.id, running.org, &running.reason)
    );
    assert!(found[0].expires_at <= running.expires_at);
    assert!(running.expires_at - found[0].expires_at < Duration::seconds(1));
    assert!(store.glass_grants(Id::new(), now).await.unwrap().is_empty());
    assert!(
        store
            .glass_grants(user, now + Duration::hours(3))
            .await
            .unwrap()
            .is_empty()
    );
    // Both were audited and the chain holds.
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        crate::audit::Verdict::Intact { .. }
    ));
    // Identities: people only, and only those asked for.
    assert!(store.identities(vec![Id::new()]).await.unwrap().is_empty());
}

fn mutation<T: serde::Serialize>(
    seq: u64,
    op: MutationOp,
    kind: &str,
    scope: Scope,
    id: Id,
    base: u64,
    patch: &T,
) -> Mutation<Value> {
    Mutation {
        client_seq: seq,
        record_id: id.uuid(),
        kind: kind.into(),
        scope: scope.to_string(),
        op,
        base_version: base,
        patch: serde_json::to_value(patch).unwrap(),
    }
}

async fn enrolled<S: SyncStore>(store: &S, user: &User) -> PushCaller {
    store
        .add_user(StoredUser {
            user: user.clone(),
            password_hash: "h".into(),
        })
        .await
        .unwrap();
    let device = Device::new(user.id, "Android 14", Utc::now());
    store
        .add_device(device.clone(), b"r".to_vec())
        .await
        .unwrap();
    PushCaller {
        user: user.id,
        role: user.role,
        device: device.id,
    }
}

async fn org_scopes_follow_the_tree_and_the_case_commune<S: SyncStore>(store: &S) {
    let province = OrgUnit::new("Tỉnh Phạm Vi", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Phạm Vi", OrgUnitKind::Commune, Some(province.id));
    let other = OrgUnit::new("Xã Bên Cạnh", OrgUnitKind::Commune, Some(province.id));
    let team = OrgUnit::new("Đội Phạm Vi", OrgUnitKind::Team, Some(commune.id));
    let point = OrgUnit::new(
        "Điểm Phạm Vi",
        OrgUnitKind::CommunityPoint,
        Some(commune.id),
    );
    for u in [&province, &commune, &other, &team, &point] {
        store.add_org_unit(u.clone()).await.unwrap();
    }
    let minh = enrolled(
        store,
        &User::new("gs.pv.minh", "Minh", Role::Supervisor, commune.id),
    )
    .await;
    let mut thu_user = User::new("tv.pv.thu", "Thu", Role::Counsellor, commune.id);
    thu_user.point = Some(point.id);
    let thu = enrolled(store, &thu_user).await;
    let hoa = enrolled(
        store,
        &User::new("tnv.pv.hoa", "Hoa", Role::Volunteer, team.id),
    )
    .await;
    let scopes = |u: Id| async move { store.scopes_of(u).await.unwrap() };
    let mut expected = vec![
        Scope::Point(point.id).to_string(),
        Scope::Team(team.id).to_string(),
    ];
    expected.sort();
    assert_eq!(scopes(minh.user).await, expected);
    assert_eq!(
        scopes(thu.user).await,
        vec![Scope::Point(point.id).to_string()]
    );
    assert!(scopes(hoa.user).await.is_empty());

    // A case of the commune: every supervisor of the commune holds it, one added later too;
    // a case of another commune is refused.
    let now = Utc::now();
    let mut person = Person::new(
        "Trần Văn Phạm",
        NaiveDate::from_ymd_opt(1990, 2, 3).unwrap(),
        Sex::Male,
    );
    person.commune = Some(commune.id);
    let scope = Scope::Person(person.id);
    let r = store
        .push(
            minh,
            mutation(
                1,
                MutationOp::Create,
                "person",
                scope,
                person.id,
                0,
                &person,
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    let lan = enrolled(
        store,
        &User::new("gs.pv.lan", "Lan", Role::Supervisor, team.id),
    )
    .await;
    assert!(scopes(lan.user).await.contains(&scope.to_string()));
    let mut foreign = Person::new(
        "Lê Thị Khác",
        NaiveDate::from_ymd_opt(1992, 1, 1).unwrap(),
        Sex::Female,
    );
    foreign.commune = Some(other.id);
    let r = store
        .push(
            minh,
            mutation(
                2,
                MutationOp::Create,
                "person",
                Scope::Person(foreign.id),
                foreign.id,
                0,
                &foreign,
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.reason.unwrap().code, "forbidden");

    // A team added later is held by the commune's supervisors at once.
    let team2 = OrgUnit::new("Đội Hai", OrgUnitKind::Team, Some(commune.id));
    store.add_org_unit(team2.clone()).await.unwrap();
    assert!(
        scopes(minh.user)
            .await
            .contains(&Scope::Team(team2.id).to_string())
    );
    assert!(
        scopes(lan.user)
            .await
            .contains(&Scope::Team(team2.id).to_string())
    );

    // A supervision note: by a supervisor in their own name, in the team scope, which no
    // volunteer holds.
    let today = donghanh_core::domain::vn_date(now);
    let mut note = SupervisionNote::new(team.id, minh.user, hoa.user, today);
    note.concerns = "Cần thăm thường xuyên hơn".into();
    let team_scope = Scope::Team(team.id);
    let r = store
        .push(
            hoa,
            mutation(
                1,
                MutationOp::Create,
                "supervision_note",
                team_scope,
                note.id,
                0,
                &note,
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Rejected);
    let forged = SupervisionNote::new(team.id, lan.user, hoa.user, today);
    let r = store
        .push(
            minh,
            mutation(
                3,
                MutationOp::Create,
                "supervision_note",
                team_scope,
                forged.id,
                0,
                &forged,
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Rejected);
    let r = store
        .push(
            minh,
            mutation(
                4,
                MutationOp::Create,
                "supervision_note",
                team_scope,
                note.id,
                0,
                &note,
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    let page = store
        .pull(hoa.user, hoa.device, 0, 100, 1 << 20)
        .await
        .unwrap();
    assert!(page.changes.is_empty());

    // The directory: a supervisor sees the commune's staff, a volunteer only herself.
    let names = |d: Vec<donghanh_protocol::DirectoryEntry>| {
        d.into_iter().map(|e| e.username).collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.directory(minh.user).await.unwrap()),
        vec!["gs.pv.lan", "gs.pv.minh", "tnv.pv.hoa", "tv.pv.thu"]
    );
    assert_eq!(
        names(store.directory(hoa.user).await.unwrap()),
        vec!["tnv.pv.hoa"]
    );

    // Acknowledging a scope event: only one's own, and it is audited.
    let page = store
        .pull(lan.user, lan.device, 0, 100, 1 << 20)
        .await
        .unwrap();
    let grant = page
        .scope_events
        .iter()
        .find(|e| e.scope == scope.to_string())
        .unwrap()
        .clone();
    let ack = ScopeAck {
        scope: grant.scope.clone(),
        kind: ScopeEventKind::Grant,
        op_id: grant.op_id,
    };
    assert!(matches!(
        store
            .ack_scope(hoa.user, hoa.device, ack.clone(), now)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .ack_scope(lan.user, lan.device, ack, now)
        .await
        .unwrap();
    assert!(matches!(
        store.verify_audit().await.unwrap(),
        crate::audit::Verdict::Intact { .. }
    ));
}

async fn tombstones_outlive_every_active_cursor<S: SyncStore>(store: &S) {
    let commune = OrgUnit::new("Xã Bia Mộ", OrgUnitKind::Commune, None);
    store.add_org_unit(commune.clone()).await.unwrap();
    let sup = enrolled(
        store,
        &User::new("gs.bm.an", "An", Role::Supervisor, commune.id),
    )
    .await;
    let now = Utc::now();
    let mut person = Person::new(
        "Đỗ Văn Bia",
        NaiveDate::from_ymd_opt(1988, 3, 4).unwrap(),
        Sex::Male,
    );
    person.commune = Some(commune.id);
    let scope = Scope::Person(person.id);
    store
        .push(
            sup,
            mutation(
                1,
                MutationOp::Create,
                "person",
                scope,
                person.id,
                0,
                &person,
            ),
            now,
        )
        .await
        .unwrap();
    let task = FollowUpTask::new(person.id, donghanh_core::domain::vn_date(now), "Gọi điện");
    store
        .push(
            sup,
            mutation(2, MutationOp::Create, "task", scope, task.id, 0, &task),
            now,
        )
        .await
        .unwrap();
    // A second device of the same user pulls everything, then goes quiet.
    let slow = Device::new(sup.user, "Máy cũ", now);
    store.add_device(slow.clone(), b"s".to_vec()).await.unwrap();
    let first = store
        .pull(sup.user, slow.id, 0, 1000, 1 << 20)
        .await
        .unwrap();
    store
        .pull(sup.user, slow.id, first.next_cursor, 1000, 1 << 20)
        .await
        .unwrap();
    let r = store
        .push(
            sup,
            mutation(
                3,
                MutationOp::Delete,
                "task",
                scope,
                task.id,
                1,
                &serde_json::json!({}),
            ),
            now,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Applied, "{r:?}");
    let delete_op = r.op_id.unwrap();
    // The main device pulls past the delete; the slow one has not: the tombstone stays.
    let page = store
        .pull(sup.user, sup.device, 0, 1000, 1 << 20)
        .await
        .unwrap();
    store
        .pull(sup.user, sup.device, page.next_cursor, 1000, 1 << 20)
        .await
        .unwrap();
    assert_eq!(store.compact(now, 3600).await.unwrap(), 0);
    assert_eq!(store.tombstone_horizon().await.unwrap(), 0);
    // Time alone never removes it: a day later the slow device is still within its lease.
    assert_eq!(
        store
            .compact(now + Duration::days(1), 14 * 86_400)
            .await
            .unwrap(),
        0
    );
    // Once the slow device's lease has run out, the tombstone goes and the horizon rises; the
    // slow device's old cursor must re-bootstrap, a fresh one and an up-to-date one pull.
    assert_eq!(
        store
            .compact(now + Duration::days(20), 14 * 86_400)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.tombstone_horizon().await.unwrap(), delete_op);
    assert!(matches!(
        store
            .pull(sup.user, slow.id, first.next_cursor, 1000, 1 << 20)
            .await,
        Err(StoreError::CursorExpired)
    ));
    store
        .pull(sup.user, sup.device, 0, 1000, 1 << 20)
        .await
        .unwrap();
    store
        .pull(sup.user, sup.device, delete_op, 1000, 1 << 20)
        .await
        .unwrap();
}

async fn org_units_form_a_checked_tree<S: SyncStore>(store: &S) -> Id {
    let province = OrgUnit::new("Tỉnh Thử", OrgUnitKind::Province, None);
    let commune = OrgUnit::new("Xã Thử", OrgUnitKind::Commune, Some(province.id));
    store.add_org_unit(province.clone()).await.unwrap();
    store.add_org_unit(commune.clone()).await.unwrap();
    let orphan = OrgUnit::new("Xã Lạc", OrgUnitKind::Commune, Some(Id::new()));
    assert!(matches!(
        store.add_org_unit(orphan).await,
        Err(StoreError::Invalid(_))
    ));
    let misplaced = OrgUnit::new("Tỉnh Con", OrgUnitKind::Province, Some(commune.id));
    assert!(matches!(
        store.add_org_unit(misplaced).await,
        Err(StoreError::Invalid(_))
    ));
    let mut units = store.org_units().await.unwrap();
    units.sort_by_key(|u| u.name.clone());
    assert_eq!(units, vec![province, commune.clone()]);
    commune.id
}

async fn usernames_are_unique_and_found_exactly<S: SyncStore>(store: &S, org: Id) -> Id {
    let user = User::new("tnv.hoa", "Nguyễn Thị Hoa", Role::Volunteer, org);
    store
        .add_user(StoredUser {
            user: user.clone(),
            password_hash: "h1".into(),
        })
        .await
        .unwrap();
    let twin = User::new("tnv.hoa", "Người Khác", Role::Supervisor, org);
    assert!(matches!(
        store
            .add_user(StoredUser {
                user: twin,
                password_hash: "h2".into()
            })
            .await,
        Err(StoreError::Exists { what: "username" })
    ));
    let lost = User::new("tnv.lac", "Người Lạc", Role::Volunteer, Id::new());
    assert!(matches!(
        store
            .add_user(StoredUser {
                user: lost,
                password_hash: "h".into()
            })
            .await,
        Err(StoreError::Invalid(DomainError::UnknownReference { .. }))
    ));
    let found = store.user_by_username("tnv.hoa").await.unwrap().unwrap();
    assert_eq!(found.user, user);
    assert_eq!(found.password_hash, "h1");
    assert!(store.user_by_username("TNV.HOA").await.unwrap().is_none());
    assert!(store.user_by_username("tnv.ho").await.unwrap().is_none());
    assert_eq!(store.user(user.id).await.unwrap().unwrap().user, user);
    assert!(store.user(Id::new()).await.unwrap().is_none());
    user.id
}

async fn devices_tokens_and_revocation<S: SyncStore>(store: &S, user: Id) {
    let device = Device::new(user, "Android 13", Utc::now());
    store
        .add_device(device.clone(), b"r1".to_vec())
        .await
        .unwrap();
    assert_eq!(store.device(device.id).await.unwrap(), Some(device.clone()));
    assert!(store.device(Id::new()).await.unwrap().is_none());

    // A refresh token works once.
    assert!(
        store
            .rotate_refresh(device.id, b"r1".to_vec(), b"r2".to_vec())
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh(device.id, b"r1".to_vec(), b"r3".to_vec())
            .await
            .unwrap()
    );
    // The same rotation asked again (its answer was lost) holds: the device has r2.
    assert!(
        store
            .rotate_refresh(device.id, b"r1".to_vec(), b"r2".to_vec())
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh(device.id, b"r1".to_vec(), b"r3".to_vec())
            .await
            .unwrap()
    );

    let grant = AccessGrant {
        device: device.id,
        user,
        expires_at: Utc::now() + Duration::minutes(15),
    };
    store.put_access_token(b"a1".to_vec(), grant).await.unwrap();
    let got = store.access_grant(b"a1".to_vec()).await.unwrap().unwrap();
    assert_eq!((got.device, got.user), (device.id, user));
    assert!(got.expires_at >= grant.expires_at, "expiry moved earlier");
    // Whatever precision a backend keeps, a token never dies before the time it was given.
    let short = AccessGrant {
        expires_at: Utc::now() + Duration::milliseconds(1_500),
        ..grant
    };
    store.put_access_token(b"a2".to_vec(), short).await.unwrap();
    let got = store.access_grant(b"a2".to_vec()).await.unwrap().unwrap();
    assert!(got.expires_at >= short.expires_at, "expiry moved earlier");
    assert!(
        store
            .access_grant(b"nope".to_vec())
            .await
            .unwrap()
            .is_none()
    );

    // Revocation is immediate: access and refresh stop working, and it cannot happen twice.
    store.revoke_device(device.id, Utc::now()).await.unwrap();
    assert!(store.access_grant(b"a1".to_vec()).await.unwrap().is_none());
    assert!(
        !store
            .rotate_refresh(device.id, b"r2".to_vec(), b"r4".to_vec())
            .await
            .unwrap()
    );
    assert!(store.device(device.id).await.unwrap().unwrap().is_revoked());
    assert!(matches!(
        store.revoke_device(device.id, Utc::now()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.revoke_device(Id::new(), Utc::now()).await,
        Err(StoreError::NotFound)
    ));
}

async fn login_failures_are_counted_per_username<S: SyncStore>(store: &S) {
    let t0 = Utc::now() - Duration::minutes(30);
    store
        .record_login_failure("someone.else", t0 + Duration::minutes(14))
        .await
        .unwrap();
    for i in 0..3 {
        store
            .record_login_failure("tnv.hoa", t0 + Duration::minutes(15 + i * 5))
            .await
            .unwrap();
    }
    assert_eq!(store.login_failures_since("tnv.hoa", t0).await.unwrap(), 3);
    assert_eq!(
        store
            .login_failures_since("tnv.hoa", t0 + Duration::minutes(22))
            .await
            .unwrap(),
        1
    );
    store.clear_login_failures("tnv.hoa").await.unwrap();
    assert_eq!(store.login_failures_since("tnv.hoa", t0).await.unwrap(), 0);
    assert_eq!(
        store
            .login_failures_since("someone.else", t0)
            .await
            .unwrap(),
        1
    );
    // Failures older than the lockout window are dropped at the next one recorded, whoever
    // it is for: made-up usernames cannot grow the table without bound.
    store
        .record_login_failure("made.up", t0 + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(
        store
            .login_failures_since("someone.else", t0)
            .await
            .unwrap(),
        0
    );
}

/// [`SyncStore::push_many`] answers as [`SyncStore::push`] one by one would: each mutation
/// sees the ones before it in the same request, a refused one blocks nothing, a replay (whole
/// or in part) gets the stored receipts, and the log has the changes in request order.
async fn a_push_request_is_handled_in_order<S: SyncStore>(store: &S) {
    let commune = OrgUnit::new("Xã Một Lần", OrgUnitKind::Commune, None);
    store.add_org_unit(commune.clone()).await.unwrap();
    let sup = enrolled(
        store,
        &User::new("gs.ml.binh", "Bình", Role::Supervisor, commune.id),
    )
    .await;
    let now = Utc::now();
    let mut person = Person::new(
        "Phan Văn Một",
        NaiveDate::from_ymd_opt(1988, 5, 6).unwrap(),
        Sex::Male,
    );
    person.commune = Some(commune.id);
    let scope = Scope::Person(person.id);
    let before = store
        .pull(sup.user, sup.device, 0, 1_000, 1 << 20)
        .await
        .unwrap();
    let cursor = before.next_cursor;
    let create = mutation(
        1,
        MutationOp::Create,
        "person",
        scope,
        person.id,
        0,
        &person,
    );
    // An edit of the record created just before it, in the same request, on base 1.
    let edit = mutation(
        2,
        MutationOp::Update,
        "person",
        scope,
        person.id,
        1,
        &serde_json::json!({"phone": "0912345678"}),
    );
    let unknown = mutation(
        3,
        MutationOp::Create,
        "no_such_kind",
        scope,
        Id::new(),
        0,
        &person,
    );
    let mut again = edit.clone();
    again.client_seq = 4;
    again.patch = serde_json::json!({"address": "Ấp Một"});
    let batch = vec![create, edit, unknown, again];
    let receipts = store.push_many(sup, batch.clone(), now).await.unwrap();
    let outcomes: Vec<_> = receipts
        .iter()
        .map(|r| (r.client_seq, r.outcome, r.version))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Outcome::Applied, Some(1)),
            (2, Outcome::Applied, Some(2)),
            (3, Outcome::Rejected, None),
            (4, Outcome::Merged, Some(3)),
        ]
    );
    // Acknowledgements in one call: the caller's grant is recorded, an event that never was
    // and one of another user are skipped.
    let grant = store
        .pull(sup.user, sup.device, cursor, 1_000, 1 << 20)
        .await
        .unwrap()
        .scope_events
        .into_iter()
        .find(|e| e.scope == scope.to_string())
        .unwrap();
    let ack = |op_id| ScopeAck {
        scope: scope.to_string(),
        kind: ScopeEventKind::Grant,
        op_id,
    };
    let other = enrolled(
        store,
        &User::new("gs.ml.khac", "Khác", Role::Supervisor, commune.id),
    )
    .await;
    assert_eq!(
        store
            .ack_scopes(
                sup.user,
                sup.device,
                vec![ack(grant.op_id), ack(grant.op_id + 10_000)],
                now
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .ack_scopes(other.user, other.device, vec![ack(grant.op_id)], now)
            .await
            .unwrap(),
        0
    );
    // A replay of the whole request, and of part of it with one new mutation, changes nothing
    // that was done.
    assert_eq!(
        store.push_many(sup, batch.clone(), now).await.unwrap(),
        receipts
    );
    let mut tail = batch[2..].to_vec();
    let mut last = batch[1].clone();
    last.client_seq = 5;
    last.base_version = 3;
    last.patch = serde_json::json!({"phone": "0987654321"});
    tail.push(last);
    let more = store.push_many(sup, tail, now).await.unwrap();
    assert_eq!(more[..2], receipts[2..]);
    assert_eq!(
        (more[2].outcome, more[2].version),
        (Outcome::Applied, Some(4))
    );
    // The log has the changes in request order, each op after the one before.
    let page = store
        .pull(sup.user, sup.device, cursor, 1_000, 1 << 20)
        .await
        .unwrap();
    let record = person.id.uuid();
    let ops: Vec<u64> = page
        .changes
        .iter()
        .filter(|c| c.record_id == record)
        .map(|c| c.version)
        .collect();
    assert_eq!(
        ops,
        vec![4],
        "only the latest version of a record is in the log"
    );
    let op_ids: Vec<Option<u64>> = receipts.iter().chain(&more[2..]).map(|r| r.op_id).collect();
    let applied: Vec<u64> = op_ids.into_iter().flatten().collect();
    assert!(applied.windows(2).all(|w| w[0] < w[1]), "{applied:?}");
}
