//! `donghanh-server`: the Đồng Hành sync server (DESIGN.md §3, §5).
//!
//! A library with two entry points, [`router`] and [`serve`] (STYLE.md point 8); the binary in
//! `main.rs` only parses its command line. Storage sits behind [`store::SyncStore`] with the
//! embedded SQLite backend as the default.
//!
//! Every `/v1` request must carry the protocol header ([`donghanh_protocol::PROTOCOL_HEADER`])
//! with this build's version; every response carries it. Bodies are limited in size, responses
//! are compressed (gzip, zstd) when the client accepts it, and every error is `{code, message}`.
//!
//! Status (issue 3, in progress): org units, users, devices, login, enrolment, tokens,
//! revocation, push with receipts and merge, pull by held scopes with grant/revoke events.
//! Snapshots, conflict endpoints, the audit log, metrics and OpenAPI follow.

pub mod api;
pub mod audit;
pub mod auth;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod secrets;
pub mod store;
pub mod sync;

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use donghanh_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

pub use error::ApiError;
use store::SyncStore;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a device may keep data without a successful sync.
    pub key_lease_seconds: u64,
    /// A pull page's size when the device asks for none (and the most it may ask for):
    /// items, and bytes of records before compression. See [`api::MAX_PAGE_ITEMS`].
    pub pull_page: (u32, u32),
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_lease_seconds: 14 * 24 * 3600,
            pull_page: (api::MAX_PAGE_ITEMS, api::MAX_PAGE_BYTES),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState<S> {
    /// The storage backend.
    pub store: Arc<S>,
    /// Settings.
    pub config: Arc<Config>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// A password hash that matches nothing, verified for unknown usernames so that they cost
    /// the same time as a wrong password.
    pub dummy_hash: String,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            metrics: Arc::clone(&self.metrics),
            dummy_hash: self.dummy_hash.clone(),
        }
    }
}

impl<S: SyncStore> AppState<S> {
    /// State over a store.
    pub fn new(store: S, config: Config) -> Result<Self, ApiError> {
        Ok(Self {
            store: Arc::new(store),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::default()),
            dummy_hash: auth::hash_password(&auth::new_token()?)?,
        })
    }
}

/// A JSON body whose rejections are `{code, message}` errors that never quote the input.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

/// Refuses `/v1` requests without this build's protocol version; stamps it on every response.
async fn protocol_version(req: Request, next: Next) -> Response {
    let needs_check = req.uri().path().starts_with("/v1/");
    let ok = req
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == PROTOCOL_VERSION.to_string());
    let mut response = if needs_check && !ok {
        ApiError::ProtocolMismatch.into_response()
    } else {
        next.run(req).await
    };
    response
        .headers_mut()
        .insert(PROTOCOL_HEADER, HeaderValue::from(PROTOCOL_VERSION));
    response
}

async fn metrics_text<S: SyncStore>(
    axum::extract::State(state): axum::extract::State<AppState<S>>,
) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Counts responses by status class.
async fn count_responses<S: SyncStore>(
    axum::extract::State(state): axum::extract::State<AppState<S>>,
    req: Request,
    next: Next,
) -> Response {
    let response = next.run(req).await;
    let m = &state.metrics;
    let counter = match response.status().as_u16() {
        200..=399 => &m.responses_2xx,
        400..=499 => &m.responses_4xx,
        _ => &m.responses_5xx,
    };
    metrics::Metrics::add(counter, 1);
    response
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> Response {
    let body = donghanh_protocol::ErrorBody::new(
        donghanh_protocol::codes::INVALID_INPUT,
        "this method is not allowed here",
    );
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

/// The application: every route, with its limits and middleware.
pub fn router<S: SyncStore>(state: AppState<S>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text::<S>))
        .route("/v1/enroll", post(auth::enroll::<S>))
        .route("/v1/token", post(auth::refresh::<S>))
        .route("/v1/push", post(api::push::<S>))
        .route("/v1/pull", get(api::pull::<S>))
        .route("/v1/scopes/{scope}/snapshot", get(api::snapshot::<S>))
        .route("/v1/conflicts", get(api::conflicts::<S>))
        .route("/v1/conflicts/{id}/resolve", post(api::resolve::<S>))
        .route(
            "/v1/admin/devices/{id}/revoke",
            post(auth::revoke_device::<S>),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(protocol_version))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses::<S>,
        ))
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .zstd(true)
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes.
pub async fn serve<S: SyncStore>(
    listener: TcpListener,
    state: AppState<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
