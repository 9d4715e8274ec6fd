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
//! What it serves: enrolment and tokens, push with receipts and three-way merge, pull by the
//! scopes a user holds (assignments, case communes, the org tree) with grant/revoke events and
//! their acknowledgements, snapshots, the directory, conflicts, device revocation, the audit
//! log, metrics, the OpenAPI document. Tombstones are compacted periodically, never by time
//! alone.
//!
//! Routes are registered in one table ([`routes`] lists them); `GET /openapi.json`
//! ([`openapi`]) describes each of them, and a test keeps the two in step.

// The OpenAPI document is one large `json!` literal per part.
#![recursion_limit = "256"]

pub mod api;
pub mod audit;
pub mod auth;
pub mod demo;
pub mod error;
pub mod metrics;
pub mod openapi;
pub mod reports;
pub mod secrets;
pub mod store;
pub mod sync;

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
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
    /// How often [`serve`] removes tombstones every active device has pulled past (0: never;
    /// `donghanh-server admin compact` does it by hand).
    pub compact_interval_seconds: u64,
    /// How long an access token works after it is issued ([`auth::ACCESS_TTL`] by default);
    /// the device's refresh token buys the next one. Short, so that a leaked access token is
    /// worth little (DESIGN.md §5).
    pub access_ttl_seconds: u64,
    /// A pull page's size when the device asks for none (and the most it may ask for):
    /// items, and bytes of records before compression. See [`api::MAX_PAGE_ITEMS`].
    pub pull_page: (u32, u32),
    /// Failed logins allowed per username within [`Config::login_window_seconds`]; after them
    /// every login of that username is refused with `rate_limited`, right password or not,
    /// until the window has passed since the failures ([`auth::MAX_FAILURES`] by default).
    pub login_max_failures: u32,
    /// The window in which failed logins count, in seconds ([`auth::FAILURE_WINDOW`] by
    /// default).
    pub login_window_seconds: u64,
    /// Failed logins allowed from one client address within the window, whatever usernames
    /// they name (credential stuffing); then every login from that address is refused with
    /// `rate_limited` until the window has passed ([`auth::MAX_ADDRESS_FAILURES`] by default;
    /// 0: no per-address limit, for a server behind a proxy that hides client addresses, where
    /// the per-username limit still applies). Counted in memory by each server process.
    pub login_address_max_failures: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_lease_seconds: 14 * 24 * 3600,
            compact_interval_seconds: 3600,
            access_ttl_seconds: auth::ACCESS_TTL.num_seconds().unsigned_abs(),
            pull_page: (api::MAX_PAGE_ITEMS, api::MAX_PAGE_BYTES),
            login_max_failures: auth::MAX_FAILURES,
            login_window_seconds: auth::FAILURE_WINDOW.num_seconds().unsigned_abs(),
            login_address_max_failures: auth::MAX_ADDRESS_FAILURES,
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
    /// Recent failed logins by client address ([`Config::login_address_max_failures`]).
    pub login_addresses: Arc<auth::AddressFailures>,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            metrics: Arc::clone(&self.metrics),
            dummy_hash: self.dummy_hash.clone(),
            login_addresses: Arc::clone(&self.login_addresses),
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
            login_addresses: Arc::new(auth::AddressFailures::default()),
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

/// A path parameter whose rejections are `{code, message}` errors that never quote the input.
/// axum's own answer to a parameter that is not UTF-8 once percent-decoded is plain text that
/// names the parameter, which breaks the one error shape.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    Path<T>: FromRequestParts<S, Rejection = PathRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::Invalid("the path has a parameter that is not valid".into()))?;
        Ok(ApiPath(value))
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

/// One route the server answers: a method and a path template (`{name}` for a parameter), as
/// axum and OpenAPI both write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path template.
    pub path: &'static str,
}

/// The router being built, and every route in it as it was registered: [`router`] and
/// [`routes`] both come from [`table`], so the list that the OpenAPI test compares with the
/// document cannot miss a route.
struct Table<S> {
    router: Router<AppState<S>>,
    routes: Vec<Route>,
}

impl<S: SyncStore> Table<S> {
    fn add(mut self, method: Method, path: &'static str, to: MethodRouter<AppState<S>>) -> Self {
        self.router = self.router.route(path, to);
        self.routes.push(Route { method, path });
        self
    }

    fn get<H: Handler<T, AppState<S>>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, axum::routing::get(h))
    }

    fn post<H: Handler<T, AppState<S>>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, path, axum::routing::post(h))
    }

    fn put<H: Handler<T, AppState<S>>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PUT, path, axum::routing::put(h))
    }
}

/// Every route, once.
fn table<S: SyncStore>() -> Table<S> {
    Table {
        router: Router::new(),
        routes: Vec::new(),
    }
    .get("/healthz", healthz)
    .get("/metrics", metrics_text::<S>)
    .get("/openapi.json", openapi::serve)
    .post("/v1/enroll", auth::enroll::<S>)
    .post("/v1/token", auth::refresh::<S>)
    .post("/v1/push", api::push::<S>)
    .get("/v1/pull", api::pull::<S>)
    .get("/v1/scopes/{scope}/snapshot", api::snapshot::<S>)
    .post("/v1/scopes/ack", api::ack_scope::<S>)
    .post("/v1/scopes/acks", api::ack_scopes::<S>)
    .get("/v1/directory", api::directory::<S>)
    .get("/v1/conflicts", api::conflicts::<S>)
    .post("/v1/conflicts/{id}/resolve", api::resolve::<S>)
    .get("/v1/reports/records", api::report_records::<S>)
    .post("/v1/break-glass", api::break_glass::<S>)
    .get("/v1/reports/{template}", api::report::<S>)
    .post("/v1/reports/{template}/close", api::close_report::<S>)
    .put("/v1/plans", api::put_plan::<S>)
    .get("/v1/plans", api::plan::<S>)
    .post("/v1/admin/devices/{id}/revoke", auth::revoke_device::<S>)
}

/// Every route [`router`] answers, in the order registered (`GET` routes answer `HEAD` too).
#[must_use]
pub fn routes() -> Vec<Route> {
    table::<store::sqlite::SqliteStore>().routes
}

/// The application: every route, with its limits and middleware.
pub fn router<S: SyncStore>(state: AppState<S>) -> Router {
    table::<S>()
        .router
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
    let compactor = (state.config.compact_interval_seconds > 0).then(|| {
        let store = Arc::clone(&state.store);
        let config = Arc::clone(&state.config);
        tokio::spawn(async move {
            let every = std::time::Duration::from_secs(config.compact_interval_seconds);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store
                    .compact(chrono::Utc::now(), config.key_lease_seconds)
                    .await
                {
                    Ok(removed) => tracing::info!(removed, "tombstones compacted"),
                    Err(e) => tracing::error!(error = %e, "tombstone compaction failed"),
                }
            }
        })
    });
    // The peer's address reaches the handlers (the per-address login limit).
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = compactor {
        task.abort();
    }
    result
}
