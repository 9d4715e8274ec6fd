//! Access tokens die when their configured lifetime ends: refused on every authenticated
//! endpoint, changing nothing, while the refresh token still buys new ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{DateTime, Duration, Utc};
use donghanh_core::domain::{Person, Scope, Sex};
use donghanh_protocol::{ErrorBody, PROTOCOL_HEADER, Tokens, codes};
use donghanh_server::{Config, openapi, routes};
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

    // Every route the document says needs a bearer token, found through the router's own
    // list, so that a route added later is covered too. Where a request would change something
    // if the token were taken, it is a live one: a new case, the revocation of Hoa's phone.
    let person = Person::new(
        "Nguyễn Văn Hết Hạn",
        chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap(),
        Sex::Male,
    );
    let scope = Scope::Person(person.id).to_string();
    let live_push = json!({"mutations": [{"client_seq": 1, "record_id": person.id.uuid(),
        "kind": "person", "scope": scope, "op": "create", "base_version": 0, "patch": person}]});
    let doc = openapi::document();
    let before = s.db_state();
    let mut refused = Vec::new();
    for route in routes() {
        let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        if op["security"] != json!([{"bearer": []}]) {
            continue;
        }
        let admin_route = route.path.starts_with("/v1/admin/");
        let path = route.path.replace("{scope}", &scope).replace(
            "{id}",
            &if admin_route {
                hoa.device_id
            } else {
                uuid::Uuid::new_v4()
            }
            .to_string(),
        );
        let token = if admin_route { &admin } else { &minh };
        let mut req = s
            .request(route.method.clone(), &path)
            .bearer_auth(&token.tokens.access_token);
        if route.method == Method::POST {
            req = req.json(&match route.path {
                "/v1/push" => live_push.clone(),
                "/v1/conflicts/{id}/resolve" => json!({"restore": true}),
                _ => json!({}),
            });
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(resp.headers().get(PROTOCOL_HEADER).unwrap(), "1");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.code, codes::UNAUTHORISED, "{path}");
        refused.push(route.path);
    }
    for path in [
        "/v1/push",
        "/v1/pull",
        "/v1/scopes/{scope}/snapshot",
        "/v1/conflicts",
        "/v1/conflicts/{id}/resolve",
        "/v1/admin/devices/{id}/revoke",
    ] {
        assert!(refused.contains(&path), "{path} was not tried");
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
