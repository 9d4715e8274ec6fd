//! Logins, device enrolment, tokens (DESIGN.md §3 "Devices", §5).
//!
//! - Passwords: PBKDF2-HMAC-SHA256 at 600,000 iterations (OWASP), random salt, parameters in the
//!   encoded hash so they can be raised; verified in constant time by `ring`, on the blocking
//!   pool. An unknown username costs the same work as a wrong password.
//! - Attempts: after [`MAX_FAILURES`] failures for a username within [`FAILURE_WINDOW`], further
//!   logins are refused with `rate_limited` whether or not the password is right.
//! - Tokens: 256-bit random, URL-safe base64; the server stores only their SHA-256. Access tokens
//!   live [`crate::Config::access_ttl_seconds`] ([`ACCESS_TTL`] unless configured); the device's
//!   refresh token is rotated on every use and dies with the device's revocation.

use std::num::NonZeroU32;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::{Json, http};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use donghanh_core::domain::{Device, Id, Role};
use donghanh_protocol as proto;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, pbkdf2};

use crate::error::ApiError;
use crate::store::{AccessGrant, SyncStore};
use crate::{ApiJson, AppState};

/// PBKDF2 iterations for new password hashes.
pub const PASSWORD_ITERATIONS: u32 = 600_000;
/// Failed logins allowed per username within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window in which failures count.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failed logins allowed from one client address within the window, across usernames
/// ([`crate::Config::login_address_max_failures`]). High enough for the phones of a commune
/// behind one carrier-grade NAT; low enough to stop credential stuffing from one machine.
pub const MAX_ADDRESS_FAILURES: u32 = 100;
/// Most client addresses whose failures are remembered at once; past it, addresses with no
/// failure inside the window are forgotten first, then the oldest.
const MAX_TRACKED_ADDRESSES: usize = 65_536;
/// Default lifetime of an access token ([`crate::Config::access_ttl_seconds`]).
pub const ACCESS_TTL: Duration = Duration::minutes(15);
/// Longest accepted password and device label (bytes), so hashing cannot be made expensive.
const MAX_SECRET_LEN: usize = 1024;

const ALGORITHM: &str = "pbkdf2-sha256";

/// Encodes a new password hash: `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    hash_password_with(password, PASSWORD_ITERATIONS)
}

/// [`hash_password`] at a given iteration count (verification reads the count from the hash).
/// For accounts of tests and simulations, where 600,000 iterations per login would be most of
/// the run; the server itself always uses [`PASSWORD_ITERATIONS`].
pub fn hash_password_with(password: &str, iterations: u32) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| ApiError::Internal("random failed".into()))?;
    let iterations =
        NonZeroU32::new(iterations).ok_or_else(|| ApiError::Internal("iterations".into()))?;
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{ALGORITHM}${}${}${}",
        iterations,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Whether `password` matches an encoded hash (a malformed hash matches nothing).
#[must_use]
pub fn verify_password(encoded: &str, password: &str) -> bool {
    let mut parts = encoded.split('$');
    let (Some(ALGORITHM), Some(it), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(it), Ok(salt), Ok(hash)) = (
        it.parse::<u32>().ok().and_then(NonZeroU32::new),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        it,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A fresh random token.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ApiError::Internal("random failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a token proposed by a device has the shape of one [`new_token`] makes: 32 bytes in
/// URL-safe base64 without padding (so as strong, and never empty).
#[must_use]
pub fn is_token_shaped(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// What the server stores of a token.
#[must_use]
pub fn token_hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn role_to_wire(role: Role) -> proto::Role {
    match role {
        Role::Volunteer => proto::Role::Volunteer,
        Role::Counsellor => proto::Role::Counsellor,
        Role::Supervisor => proto::Role::Supervisor,
        Role::Officer => proto::Role::Officer,
        Role::Admin => proto::Role::Admin,
    }
}

/// When an access token issued now for `ttl_seconds` expires. Handlers call it once before they
/// write anything, so that a lifetime too large for a date is an error and never a half-done
/// enrolment, and again when they issue the token, so that it lives its whole lifetime.
fn access_expiry(ttl_seconds: u64) -> Result<DateTime<Utc>, ApiError> {
    i64::try_from(ttl_seconds)
        .ok()
        .and_then(Duration::try_seconds)
        .and_then(|ttl| Utc::now().checked_add_signed(ttl))
        .ok_or_else(|| ApiError::Internal("access token lifetime out of range".into()))
}

/// Issues and stores an access token for a device, alive for `ttl_seconds` from now.
async fn issue_access<S: SyncStore>(
    store: &S,
    ttl_seconds: u64,
    device: Id,
    user: Id,
) -> Result<String, ApiError> {
    let expires_at = access_expiry(ttl_seconds)?;
    let token = new_token()?;
    let grant = AccessGrant {
        device,
        user,
        expires_at,
    };
    store.put_access_token(token_hash(&token), grant).await?;
    Ok(token)
}

/// Recent failed logins by client address, in memory (each server process counts its own).
#[derive(Debug, Default)]
pub struct AddressFailures {
    by_address: std::sync::Mutex<
        std::collections::HashMap<std::net::IpAddr, std::collections::VecDeque<DateTime<Utc>>>,
    >,
}

impl AddressFailures {
    /// Failures from `addr` since `since`.
    #[must_use]
    pub fn count_since(&self, addr: std::net::IpAddr, since: DateTime<Utc>) -> usize {
        let map = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&addr)
            .map_or(0, |times| times.iter().filter(|t| **t > since).count())
    }

    /// Records a failure from `addr` at `now`, keeping at most `keep` per address (the limit:
    /// more would not change the answer) and forgetting those before `since`.
    pub fn record(
        &self,
        addr: std::net::IpAddr,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
        keep: usize,
    ) {
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(&addr) && map.len() >= MAX_TRACKED_ADDRESSES {
            map.retain(|_, times| times.back().is_some_and(|t| *t > since));
            if map.len() >= MAX_TRACKED_ADDRESSES {
                let oldest = map
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(a, _)| *a);
                if let Some(oldest) = oldest {
                    map.remove(&oldest);
                }
            }
        }
        let times = map.entry(addr).or_default();
        while times.front().is_some_and(|t| *t <= since) || times.len() >= keep.max(1) {
            times.pop_front();
        }
        times.push_back(now);
    }
}

/// The client's address, when the server was started by [`crate::serve`] (a router driven
/// without it, as in some tests, has none and no per-address limit).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// `POST /v1/enroll`: a user's login enrols a new device.
///
/// Limits (DESIGN.md §5): a username with [`crate::Config::login_max_failures`] failures in the
/// window, or a client address with [`crate::Config::login_address_max_failures`], is refused
/// with `rate_limited` before its password is looked at, right or wrong. Every refusal is
/// counted (`/metrics`) and logged without the username or the password.
pub async fn enroll<S: SyncStore>(
    State(state): State<AppState<S>>,
    ClientAddr(addr): ClientAddr,
    ApiJson(req): ApiJson<proto::EnrollRequest>,
) -> Result<Json<proto::EnrollResponse>, ApiError> {
    if req.password.len() > MAX_SECRET_LEN || req.username.len() > MAX_SECRET_LEN {
        return Err(ApiError::Unauthorised);
    }
    let label = req.device_label.trim();
    if label.is_empty() || label.len() > 200 {
        return Err(ApiError::Invalid(
            "device_label must have 1 to 200 bytes".into(),
        ));
    }
    access_expiry(state.config.access_ttl_seconds)?;
    let store = &*state.store;
    let config = &state.config;
    let window = i64::try_from(config.login_window_seconds)
        .ok()
        .and_then(Duration::try_seconds)
        .unwrap_or(FAILURE_WINDOW);
    let since = Utc::now()
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let address_limit = config.login_address_max_failures as usize;
    let limited = |why: &'static str| {
        crate::metrics::Metrics::add(&state.metrics.logins_rate_limited, 1);
        tracing::warn!(limit = why, "login refused: too many failures");
        ApiError::RateLimited
    };
    if let Some(addr) = addr.filter(|_| address_limit > 0)
        && state.login_addresses.count_since(addr, since) >= address_limit
    {
        return Err(limited("client address"));
    }
    if store.login_failures_since(&req.username, since).await? >= config.login_max_failures {
        return Err(limited("username"));
    }
    let stored = store.user_by_username(&req.username).await?;
    // The same work whether or not the user exists.
    let encoded = stored
        .as_ref()
        .map_or_else(|| state.dummy_hash.clone(), |u| u.password_hash.clone());
    let password = req.password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&encoded, &password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let Some(stored) = stored.filter(|_| ok) else {
        let now = Utc::now();
        store.record_login_failure(&req.username, now).await?;
        if let Some(addr) = addr.filter(|_| address_limit > 0) {
            state
                .login_addresses
                .record(addr, now, since, address_limit);
        }
        crate::metrics::Metrics::add(&state.metrics.login_failures, 1);
        tracing::warn!("login refused: wrong username or password");
        return Err(ApiError::Unauthorised);
    };
    store.clear_login_failures(&req.username).await?;
    let user = stored.user;
    let device = Device::new(user.id, label, Utc::now());
    let refresh = new_token()?;
    store
        .add_device(device.clone(), token_hash(&refresh))
        .await?;
    let access = issue_access(store, state.config.access_ttl_seconds, device.id, user.id).await?;
    tracing::info!(device = %device.id, user = %user.id, "device enrolled");
    Ok(Json(proto::EnrollResponse {
        device_id: device.id.uuid(),
        user_id: user.id.uuid(),
        role: role_to_wire(user.role),
        tokens: proto::Tokens {
            access_token: access,
            access_expires_in: state.config.access_ttl_seconds,
            refresh_token: refresh,
        },
        key_lease_seconds: state.config.key_lease_seconds,
    }))
}

/// `POST /v1/token`: a refresh token buys new tokens, once.
pub async fn refresh<S: SyncStore>(
    State(state): State<AppState<S>>,
    ApiJson(req): ApiJson<proto::RefreshRequest>,
) -> Result<Json<proto::Tokens>, ApiError> {
    let device_id = Id::from(req.device_id);
    access_expiry(state.config.access_ttl_seconds)?;
    let store = &*state.store;
    let new_refresh = match req.next_refresh_token {
        Some(proposed) if is_token_shaped(&proposed) => proposed,
        Some(_) => {
            return Err(ApiError::Invalid(
                "next_refresh_token must be 43 characters of URL-safe base64".into(),
            ));
        }
        None => new_token()?,
    };
    let rotated = store
        .rotate_refresh(
            device_id,
            token_hash(&req.refresh_token),
            token_hash(&new_refresh),
        )
        .await?;
    if !rotated {
        return match store.device(device_id).await? {
            Some(d) if d.is_revoked() => Err(ApiError::DeviceRevoked),
            _ => Err(ApiError::Unauthorised),
        };
    }
    let device = store
        .device(device_id)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    let access = issue_access(
        store,
        state.config.access_ttl_seconds,
        device.id,
        device.user,
    )
    .await?;
    Ok(Json(proto::Tokens {
        access_token: access,
        access_expires_in: state.config.access_ttl_seconds,
        refresh_token: new_refresh,
    }))
}

/// The device and user behind a request's bearer token.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The device the token was issued to.
    pub device: Id,
    /// Its user.
    pub user: Id,
}

impl<S: SyncStore> FromRequestParts<AppState<S>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState<S>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorised)?;
        // The scheme is case-insensitive (RFC 9110 §11.1); the token follows one space.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or(ApiError::Unauthorised)?;
        let grant = state
            .store
            .access_grant(token_hash(token.trim()))
            .await?
            .ok_or(ApiError::Unauthorised)?;
        if grant.expires_at <= Utc::now() {
            return Err(ApiError::Unauthorised);
        }
        Ok(Caller {
            device: grant.device,
            user: grant.user,
        })
    }
}

/// `POST /v1/admin/devices/{id}/revoke`: an admin revokes a device (lost phone).
pub async fn revoke_device<S: SyncStore>(
    State(state): State<AppState<S>>,
    caller: Caller,
    crate::ApiPath(id): crate::ApiPath<String>,
) -> Result<http::StatusCode, ApiError> {
    let user = state
        .store
        .user(caller.user)
        .await?
        .ok_or(ApiError::Unauthorised)?;
    if user.user.role != Role::Admin {
        return Err(ApiError::Forbidden);
    }
    let id: Id = id
        .parse()
        .map_err(|_| ApiError::Invalid("not a device id".into()))?;
    // An admin manages the devices of the users within their own org unit (a provincial admin
    // cannot revoke another province's phones); a device outside is answered as unknown
    // (DESIGN.md §2: the server decides scope from its own records). The system administrator
    // sits at a root unit of kind `other` (`donghanh-server` makes one with the first admin),
    // beside the provinces, and reaches every device (docs/adr/0004).
    let device = state.store.device(id).await?.ok_or(ApiError::NotFound)?;
    let owner = state
        .store
        .user(device.user)
        .await?
        .ok_or(ApiError::NotFound)?;
    let tree = donghanh_core::domain::OrgTree::new(state.store.org_units().await?)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let system_wide = tree.get(user.user.org_unit).is_some_and(|unit| {
        unit.parent.is_none() && unit.kind == donghanh_core::domain::OrgUnitKind::Other
    });
    if !system_wide && !tree.is_within(owner.user.org_unit, user.user.org_unit) {
        return Err(ApiError::NotFound);
    }
    state.store.revoke_device(id, Utc::now()).await?;
    tracing::info!(device = %id, by = %caller.user, "device revoked");
    Ok(http::StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_verify_and_carry_their_parameters() {
        let h = hash_password("mật khẩu đúng").unwrap();
        assert!(h.starts_with("pbkdf2-sha256$600000$"));
        assert!(verify_password(&h, "mật khẩu đúng"));
        assert!(!verify_password(&h, "mật khẩu sai"));
        assert_ne!(h, hash_password("mật khẩu đúng").unwrap(), "salted");
        for bad in [
            "",
            "x",
            "pbkdf2-sha256$0$AA$AA",
            "md5$1$AA$AA",
            &format!("{h}$extra"),
        ] {
            assert!(!verify_password(bad, "mật khẩu đúng"), "{bad}");
        }
    }

    #[test]
    fn address_failures_count_inside_their_window_only_and_stay_bounded() {
        let failures = AddressFailures::default();
        let a: std::net::IpAddr = [10, 0, 0, 1].into();
        let b: std::net::IpAddr = [10, 0, 0, 2].into();
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let window = Duration::minutes(15);
        for i in 0..8 {
            let now = t0 + Duration::seconds(i);
            failures.record(a, now, now - window, 5);
        }
        // Kept at the limit: more would not change the answer.
        assert_eq!(failures.count_since(a, t0 - window), 5);
        assert_eq!(failures.count_since(b, t0 - window), 0);
        // Inside the window they count; once it has passed since the last, none does.
        let later = t0 + Duration::seconds(7) + window;
        assert_eq!(
            failures.count_since(a, later - window - Duration::seconds(1)),
            1
        );
        assert_eq!(failures.count_since(a, later), 0);
        // A failure after the window starts a new count.
        failures.record(
            a,
            later + Duration::seconds(1),
            later + Duration::seconds(1) - window,
            5,
        );
        assert_eq!(failures.count_since(a, later), 1);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token().unwrap();
        assert_ne!(a, new_token().unwrap());
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), a.as_bytes());
    }
}
