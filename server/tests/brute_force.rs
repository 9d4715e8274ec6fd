//! Scripted brute force against `POST /v1/enroll` (DESIGN.md §5: login attempts rate-limited),
//! over real HTTP on 127.0.0.1:
//!
//! - many passwords against one username: the first failures are `unauthorised`, then every
//!   attempt, the right password included, is `rate_limited` for the window; other usernames
//!   still log in; once the window has passed the right password works again;
//! - credential stuffing, a few passwords against each of many usernames (real and unknown)
//!   from one address: the per-address limit stops it though no username reaches its own
//!   limit, and holds the right password of a user nobody tried too;
//! - every refusal is counted in `/metrics` and logged, the log holding no username and no
//!   password; no password tried is in the database, and no refusal message repeats a
//!   username or a password.
//!
//! The attacks run under a long window, so that no count expires while a slow machine hashes
//! the guesses. "After the window" restarts the server on the same database with a one-second
//! window ([`Config::login_window_seconds`]): the stored failures are then past it after one
//! short wait, not fifteen minutes. The per-address window (counted in memory) is checked with
//! explicit times in `auth`'s unit tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use donghanh_protocol::{ErrorBody, codes};
use donghanh_server::Config;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{PASSWORD, Server};

async fn login(s: &Server, username: &str, password: &str) -> (StatusCode, Option<ErrorBody>) {
    let resp = s
        .request(Method::POST, "/v1/enroll")
        .json(&json!({"username": username, "password": password, "device_label": "Redmi"}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.json::<ErrorBody>().await.ok();
    (status, body)
}

/// The value of one sample line of `/metrics`.
async fn metric(s: &Server, sample: &str) -> u64 {
    let text = s
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {sample} in {text}"))
}

/// The server's log, captured for the whole test binary (a global subscriber: one scoped to
/// a thread can miss events whose call sites another test's thread registered first).
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOG: std::sync::OnceLock<Log> = std::sync::OnceLock::new();

/// The tests that log refusals run one at a time, so that each reads only its own lines.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Log {
    /// The binary's log, emptied.
    fn capture() -> Log {
        let log = LOG.get_or_init(|| {
            let log = Log::default();
            let writer = log.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            log
        });
        log.0.lock().unwrap().clear();
        log.clone()
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

const WRONG: &str = "donghanh_login_refusals_total{reason=\"wrong_credentials\"}";
const LIMITED: &str = "donghanh_login_refusals_total{reason=\"rate_limited\"}";

/// The password guesses of the script: a dictionary's head, and the right one in the middle.
fn guesses(n: usize, right_at: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == right_at {
                PASSWORD.to_owned()
            } else {
                format!("doan-mat-khau-{i:03}")
            }
        })
        .collect()
}

/// No file of the server's data directory holds any of `secrets`.
fn nowhere_on_disk(s: &Server, secrets: &[String]) {
    for entry in std::fs::read_dir(s.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a password tried",
                path.display()
            );
        }
    }
}

#[tokio::test]
async fn many_passwords_against_one_username_lock_it_for_the_window_and_only_it() {
    let _serial = SERIAL.lock().await;
    let long = Config {
        login_window_seconds: 600,
        // Only the per-username limit here.
        login_address_max_failures: 0,
        ..Config::default()
    };
    let s = Server::start(long).await;
    let script = guesses(40, 17);
    let mut answers = Vec::new();
    for password in &script {
        let (status, body) = login(&s, "tnv.hoa", password).await;
        let body = body.expect("an error body");
        assert!(
            !body.message.contains(password.as_str()) && !body.message.contains("tnv.hoa"),
            "{body:?}"
        );
        answers.push((status, body.code));
    }
    // Five failures, then refusals, the right password (attempt 18) among them.
    let unauthorised = (StatusCode::UNAUTHORIZED, codes::UNAUTHORISED.to_owned());
    let limited = (
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMITED.to_owned(),
    );
    assert_eq!(answers[..5], vec![unauthorised; 5][..]);
    assert_eq!(answers[5..], vec![limited.clone(); 35][..]);
    assert_eq!(metric(&s, WRONG).await, 5);
    assert_eq!(metric(&s, LIMITED).await, 35);
    // The lockout is the username's: another user of the same address logs in.
    assert_eq!(login(&s, "tnv.lan", PASSWORD).await.0, StatusCode::OK);
    // It lasts: still refused, and it survives a restart (the failures are stored).
    assert_eq!(
        login(&s, "tnv.hoa", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let tried: Vec<String> = script
        .iter()
        .filter(|p| p.as_str() != PASSWORD)
        .cloned()
        .collect();
    nowhere_on_disk(&s, &tried);
    let s = s
        .restart(Config {
            login_window_seconds: 600,
            login_address_max_failures: 0,
            ..Config::default()
        })
        .await;
    assert_eq!(
        login(&s, "tnv.hoa", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Once the window has passed since the failures, the right password works, and clears
    // the count: four new failures are under the limit again.
    let s = s
        .restart(Config {
            login_window_seconds: 1,
            login_address_max_failures: 0,
            ..Config::default()
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(login(&s, "tnv.hoa", PASSWORD).await.0, StatusCode::OK);
    let s = s
        .restart(Config {
            login_window_seconds: 600,
            login_address_max_failures: 0,
            ..Config::default()
        })
        .await;
    for _ in 0..4 {
        assert_eq!(
            login(&s, "tnv.hoa", "lai-sai").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(login(&s, "tnv.hoa", PASSWORD).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn credential_stuffing_across_usernames_is_stopped_by_the_address_limit() {
    let per_address = 20;
    let _serial = SERIAL.lock().await;
    let log = Log::capture();
    let s = Server::start(Config {
        login_window_seconds: 600,
        login_address_max_failures: per_address,
        ..Config::default()
    })
    .await;
    // Three guesses for each of 30 usernames: the five real ones, 25 that do not exist. No
    // username reaches its own limit of five.
    let mut usernames: Vec<String> = ["tnv.hoa", "tnv.lan", "gs.minh", "quantri", "bi.khoa"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    usernames.extend((0..25).map(|i| format!("nguoi.dung.{i:02}")));
    let mut tried = Vec::new();
    let mut statuses = Vec::new();
    for round in 0..3 {
        for username in &usernames {
            let password = format!("mat-khau-ro-ri-{round}-{username}");
            let (status, body) = login(&s, username, &password).await;
            let body = body.expect("an error body");
            assert!(!body.message.contains(&password) && !body.message.contains(username));
            statuses.push(status);
            tried.push(password);
        }
    }
    let failures = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(failures, per_address as usize);
    assert_eq!(limited, 90 - per_address as usize);
    assert!(
        statuses[..per_address as usize]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "the first {per_address} attempts are checked, the rest refused: {statuses:?}"
    );
    // A user nobody tried, with the right password, from the same address: refused too.
    let (status, body) = login(&s, "bi.khoa", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body.unwrap().code, codes::RATE_LIMITED);
    assert_eq!(metric(&s, WRONG).await, u64::from(per_address));
    assert_eq!(metric(&s, LIMITED).await, 90 - u64::from(per_address) + 1);
    nowhere_on_disk(&s, &tried);
    // Every refusal is logged, with neither the username nor the password.
    let text = log.text();
    let lines = |what: &str| text.lines().filter(|l| l.contains(what)).count();
    assert_eq!(
        lines("login refused: wrong username or password"),
        per_address as usize
    );
    assert_eq!(
        lines("login refused: too many failures"),
        90 - per_address as usize + 1
    );
    for secret in tried.iter().chain(&usernames) {
        assert!(
            !text.contains(secret.as_str()),
            "the log holds a username or password"
        );
    }
    assert!(!text.contains(PASSWORD));
    // Another address is not held back: the per-username counts stay under their limit, so
    // with the address limit off the right password works.
    let s = s
        .restart(Config {
            login_window_seconds: 600,
            login_address_max_failures: 0,
            ..Config::default()
        })
        .await;
    assert_eq!(login(&s, "bi.khoa", PASSWORD).await.0, StatusCode::OK);
    s.stop().await;
}

#[test]
fn the_default_limits_are_five_per_username_and_a_hundred_per_address_in_fifteen_minutes() {
    let c = Config::default();
    assert_eq!(c.login_max_failures, 5);
    assert_eq!(c.login_window_seconds, 15 * 60);
    assert_eq!(c.login_address_max_failures, 100);
}
