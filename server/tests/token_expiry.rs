//! Access tokens die when their configured lifetime ends: refused on every authenticated
//! endpoint, changing nothing, while the refresh token still buys new ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{DateTime, Duration, Utc};
use donghanh_protocol::{ErrorBody, PROTOCOL_HEADER, Tokens, codes};
use donghanh_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Server, changed_tables};

/// The first whole second at or after `t`: stored expiries are whole seconds, rounded up.
fn ceil_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
    DateTime::from_timestamp(secs, 0).unwrap()
}

async fn pull(s: &Server, token: &str) -> reqwest::Response {
    s.request(Method::GET, "/v1/pull?cursor=0")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[test]
fn the_default_access_lifetime_is_fifteen_minutes() {
    assert_eq!(Config::default().access_ttl_seconds, 15 * 60);
}

#[tokio::test]
async fn an_expired_access_token_is_refused_everywhere_and_the_refresh_token_still_works() {
    let s = Server::start(Config {
        access_ttl_seconds: 1,
        ..Config::default()
    })
    .await;
    let hoa = s.enroll("tnv.hoa").await;
    assert_eq!(hoa.tokens.access_expires_in, 1);
    // Alive when issued ...
    assert_eq!(
        pull(&s, &hoa.tokens.access_token).await.status(),
        StatusCode::OK
    );
    let minh = s.enroll("gs.minh").await;
    let admin = s.enroll("quantri").await;
    // ... and dead once a second has passed since the last one was issued (at most two: the
    // stored expiry is rounded up to a whole second). One wait, no longer than that.
    let dead_at = ceil_second(Utc::now() + Duration::seconds(1)) + Duration::milliseconds(10);
    tokio::time::sleep((dead_at - Utc::now()).to_std().unwrap_or_default()).await;

    let before = s.db_state();
    let scope = format!("person:{}", uuid::Uuid::new_v4());
    let conflict = uuid::Uuid::new_v4();
    let calls = [
        (
            Method::POST,
            "/v1/push".to_owned(),
            json!({"mutations": []}),
            &hoa,
        ),
        (
            Method::GET,
            "/v1/pull?cursor=0".to_owned(),
            json!(null),
            &hoa,
        ),
        (
            Method::GET,
            format!("/v1/scopes/{scope}/snapshot"),
            json!(null),
            &hoa,
        ),
        (Method::GET, "/v1/conflicts".to_owned(), json!(null), &minh),
        (
            Method::POST,
            format!("/v1/conflicts/{conflict}/resolve"),
            json!({"restore": true}),
            &minh,
        ),
        (
            Method::POST,
            format!("/v1/admin/devices/{}/revoke", hoa.device_id),
            json!(null),
            &admin,
        ),
    ];
    for (method, path, body, who) in calls {
        let mut req = s
            .request(method.clone(), &path)
            .bearer_auth(&who.tokens.access_token);
        if !body.is_null() {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(resp.headers().get(PROTOCOL_HEADER).unwrap(), "1");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.code, codes::UNAUTHORISED, "{method} {path}");
    }
    let after = s.db_state();
    assert!(
        before == after,
        "changed: {:?}",
        changed_tables(&before, &after)
    );

    // The refresh token buys a new access token that works at once; the old one stays dead.
    let resp = s
        .request(Method::POST, "/v1/token")
        .json(&json!({"device_id": hoa.device_id, "refresh_token": hoa.tokens.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh: Tokens = resp.json().await.unwrap();
    assert_eq!(fresh.access_expires_in, 1);
    assert_eq!(pull(&s, &fresh.access_token).await.status(), StatusCode::OK);
    assert_eq!(
        pull(&s, &hoa.tokens.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    s.stop().await;
}
