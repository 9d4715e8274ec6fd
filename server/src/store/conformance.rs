//! The conformance suite every [`SyncStore`] backend must pass (STYLE.md point 7).
//!
//! Each backend's tests call [`run_all`] on a fresh, empty store. The checks are behaviour, not
//! implementation: what a caller of the trait may rely on.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use donghanh_core::domain::{Device, DomainError, Id, OrgUnit, OrgUnitKind, Role, User};

use super::{AccessGrant, StoreError, StoredUser, SyncStore};

/// Runs every check on an empty store.
pub async fn run_all<S: SyncStore>(store: &S) {
    let commune = org_units_form_a_checked_tree(store).await;
    let user = usernames_are_unique_and_found_exactly(store, commune).await;
    devices_tokens_and_revocation(store, user).await;
    login_failures_are_counted_per_username(store).await;
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
    for i in 0..3 {
        store
            .record_login_failure("tnv.hoa", t0 + Duration::minutes(i * 10))
            .await
            .unwrap();
    }
    store
        .record_login_failure("someone.else", t0)
        .await
        .unwrap();
    assert_eq!(store.login_failures_since("tnv.hoa", t0).await.unwrap(), 3);
    assert_eq!(
        store
            .login_failures_since("tnv.hoa", t0 + Duration::minutes(15))
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
}
