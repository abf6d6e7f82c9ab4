//! The local HTTP JSON API (axum), bearer-token protected, on the loopback address
//! from the config. The CLI and agency systems use it while the node runs.
//!
//! Errors are JSON `{"error": {"code", "message", "field"?}, "detail"}` (`detail` repeats
//! the message where yente's clients look for it): 400 for invalid input
//! (naming the field), 401 for a missing or wrong token, 404 for unknown ids, 403 for
//! writes to another agency's entry, 503 while the store refuses writes (and while the
//! screening index is still being built at start). Bad input never produces a 500.
//! The token goes in `Authorization: Bearer <token>`, or `ApiKey <token>` as yente's
//! clients send it.

mod backup;
mod cases;
pub mod console;
mod consultations;
mod drafts;
mod entries;
mod events;
mod flags;
pub mod ftm;
mod import_batches;
pub mod limits;
pub mod openapi;
mod peers;
mod policy;
mod screen;
mod sources;
mod status;
pub mod users;
mod watches;
pub mod yente;

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use tokio::sync::watch;
use wlnode_crypto::model::InvalidValue;

use wlnode_runtime::entries::LifecycleError;
use wlnode_runtime::metrics::RouteLabel;
use wlnode_runtime::{NodeError, RunningNode, Services};
use wlnode_store::StoreError;

/// Shared state of the API handlers.
#[derive(Clone, Debug)]
pub struct ApiState {
    node: Services,
    /// The web console's sessions.
    console: std::sync::Arc<console::session::Sessions>,
}

/// An API error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    field: Option<String>,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    /// The message again, where yente's clients read it (`{"detail": ...}`).
    detail: &'a str,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A 400 naming a field.
    pub fn invalid(v: InvalidValue) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            field: (!v.field.is_empty()).then(|| v.field.clone()),
            message: v.to_string(),
        }
    }

    /// A 400 without a field.
    /// 503 `timeout`: the request took longer than `api.request_timeout`.
    pub fn timeout(limit: std::time::Duration) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "timeout",
            field: None,
            message: format!(
                "the request took longer than api.request_timeout ({} s)",
                limit.as_secs()
            ),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            field: None,
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            field: None,
            message: message.into(),
        }
    }

    /// An error with any status and code.
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            field: None,
            message: message.into(),
        }
    }

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            field: None,
            message:
                "missing or wrong bearer token (Authorization: Bearer <token from api.token_file>)"
                    .into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
            detail: &self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "store_unavailable",
            field: None,
            message: e.to_string(),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Invalid(v) => Self::invalid(v),
            LifecycleError::NotFound(_) => Self::not_found(e.to_string()),
            LifecycleError::NotOrigin { .. } => Self {
                status: StatusCode::FORBIDDEN,
                code: "not_origin",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::AlreadyWithdrawn(_) => Self {
                status: StatusCode::CONFLICT,
                code: "already_withdrawn",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::VersionLimit { .. } => Self {
                status: StatusCode::CONFLICT,
                code: "version_limit",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::AwaitingReconcile { .. } => Self {
                status: StatusCode::CONFLICT,
                code: "awaiting_reconcile",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::PlanChanged { .. } => Self {
                status: StatusCode::CONFLICT,
                code: "stale",
                field: None,
                message: e.to_string(),
            },
            // Nothing of the batch was written; a retry is judged against the store.
            LifecycleError::EarlierCommitFailed { .. } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "earlier_commit_failed",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::Build(_) => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal",
                field: None,
                message: e.to_string(),
            },
            LifecycleError::Store(s) => s.into(),
        }
    }
}

/// Parses a JSON body, naming the offending field on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: if inner.is_syntax() || inner.is_eof() {
                "invalid_json"
            } else {
                "invalid_field"
            },
            field: (path != ".").then_some(path),
            message: inner.to_string(),
        }
    })
}

/// The token of `Authorization: Bearer <token>` (or `ApiKey <token>`, as yente's
/// clients send it; any case), when there is a non-blank one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            ["bearer", "apikey"]
                .contains(&scheme.to_ascii_lowercase().as_str())
                .then_some(token)
        })
        .filter(|t| !t.trim().is_empty())
}

/// Authenticates the caller (their token names a user, see `wlnode_runtime::users`),
/// checks the role the route needs ([`users::required_role`]), and hands the handler
/// the [`wlnode_runtime::users::Actor`].
async fn auth(
    State(state): State<ApiState>,
    headers: HeaderMap,
    mut req: Request,
    next: Next,
) -> Response {
    let actor = bearer_token(&headers).and_then(|t| state.node.users.authenticate(t));
    let Some(actor) = actor else {
        return ApiError::unauthorized().into_response();
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let need = users::required_role(req.method(), &path);
    if !need.met_by(&actor) {
        return users::forbidden(&actor, need, req.method(), &path).into_response();
    }
    req.extensions_mut().insert(actor);
    next.run(req).await
}

async fn count_requests(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .node
        .metrics
        .api_requests
        .get_or_create(&RouteLabel {
            route: route.clone(),
            status: resp.status().as_u16().to_string(),
        })
        .inc();
    tracing::debug!(
        route,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "api"
    );
    resp
}

async fn healthz(State(state): State<ApiState>) -> Response {
    if state.node.health.is_degraded() {
        (StatusCode::SERVICE_UNAVAILABLE, "store degraded\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    if let Ok(c) = state.node.store.counts().await {
        state.node.metrics.set_counts(&c);
    }
    // One store-actor job for the rest, so a scrape waits behind replication writes
    // at most twice. (The audit log's size comes with the counts above.)
    let extra = state
        .node
        .store
        .call(|s| {
            Ok((
                s.size_on_disk()?,
                s.audit_latest_checkpoint().ok().flatten(),
            ))
        })
        .await;
    if let Ok((bytes, checkpoint)) = extra {
        let m = &state.node.metrics;
        m.store_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        if let Some(c) = checkpoint {
            m.audit_checkpoint_time
                .set(i64::try_from(c.checkpoint.timestamp / 1000).unwrap_or(i64::MAX));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.node.metrics.encode(),
    )
        .into_response()
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such endpoint; see GET /v1/openapi.json")
}

/// The API router.
pub fn router(node: Services) -> Router {
    let max_body = node.config.raw.api.max_body_bytes;
    let request_timeout = node.config.raw.api.request_timeout.0;
    let state = ApiState {
        node,
        console: std::sync::Arc::default(),
    };
    let protected = Router::new()
        .route("/v1/entries", post(entries::add).get(entries::list))
        .route("/v1/entries/{id}", get(entries::show).put(entries::amend))
        .route("/v1/entries/{id}/withdraw", post(entries::withdraw))
        .route("/v1/import", post(entries::import))
        .route(
            "/v1/import/withdraw-missing",
            post(entries::withdraw_missing),
        )
        .route("/v1/screen", get(screen::get).post(screen::post))
        .route("/v1/screen/batch", post(screen::batch))
        .route("/v1/status", get(status::status))
        .route("/v1/peers/{agency}/block", post(peers::block))
        .route("/v1/peers/{agency}/unblock", post(peers::unblock))
        .route("/v1/policy/explain", get(policy::explain))
        .route("/v1/policy/reload", post(policy::reload))
        .route("/v1/sources", get(sources::list))
        .route("/v1/sources/{name}/run", post(sources::run))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/cases", get(cases::log))
        .route("/v1/cases/{id}", get(cases::show))
        .route("/v1/cases/{id}/decisions", post(cases::decide))
        .route(
            "/v1/consultations",
            get(consultations::list).post(consultations::request),
        )
        .route("/v1/consultations/{id}", get(consultations::show))
        .route(
            "/v1/consultations/{id}/respond",
            post(consultations::respond),
        )
        .route("/v1/consultations/{id}/decide", post(consultations::decide))
        .route(
            "/v1/consultations/{id}/supply-info",
            post(consultations::supply_info),
        )
        .route("/v1/inbox", get(consultations::inbox))
        .route(
            "/v1/flags",
            get(flags::list).post(flags::set).delete(flags::lift),
        )
        .route("/v1/hits", post(consultations::hit))
        .route("/v1/drafts", get(drafts::list))
        .route("/v1/drafts/{id}/approve", post(drafts::approve))
        .route("/v1/drafts/{id}/reject", post(drafts::reject))
        .route(
            "/v1/import-batches",
            get(import_batches::list).post(import_batches::open),
        )
        .route("/v1/import-batches/{id}", get(import_batches::show))
        .route(
            "/v1/import-batches/{id}/rows",
            get(import_batches::rows_page).post(import_batches::rows),
        )
        .route(
            "/v1/import-batches/{id}/submit",
            post(import_batches::submit),
        )
        .route(
            "/v1/import-batches/{id}/approve",
            post(import_batches::approve),
        )
        .route(
            "/v1/import-batches/{id}/reject",
            post(import_batches::reject),
        )
        .route("/v1/users/me", get(users::me))
        .route("/v1/users", get(users::list).post(users::add))
        .route("/v1/users/{name}/disable", post(users::disable))
        .route("/v1/users/{name}/rotate", post(users::rotate))
        .route("/v1/watches", get(watches::list).post(watches::add))
        .route("/v1/watches/{id}", delete(watches::remove))
        // yente-compatible screening (see `yente`).
        .route(
            "/match/{dataset}",
            post(yente::match_entities).layer(DefaultBodyLimit::max(yente::MAX_MATCH_BODY)),
        )
        .route("/search/{dataset}", get(yente::search))
        .route("/entities/{id}", get(yente::entity))
        .route("/algorithms", get(yente::algorithms))
        .route_layer(middleware::from_fn_with_state(
            request_timeout,
            limits::request_timeout,
        ))
        // A backup snapshots the whole store before it streams: no time limit.
        .route("/v1/backup", post(backup::backup))
        // An event stream lasts as long as its client listens: no time limit.
        .route("/v1/events", get(events::stream))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .merge(console::router(state.clone()))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Binds the API and serves it until `shutdown` turns true.
pub async fn serve(
    node: Services,
    token: String,
    shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), NodeError> {
    let addr = *node.config.raw.api.listen.get_ref();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| NodeError::Bind { addr, source })?;
    let api = &node.config.raw.api;
    let limits = limits::ServeLimits {
        max_connections: api.max_connections,
        header_timeout: api.idle_timeout.0,
        drain: api.request_timeout.0,
    };
    // The token file's token is the bootstrap admin's (`node.users`), not checked here.
    drop(token);
    let app = router(node);
    let task = tokio::spawn(limits::serve(listener, app, limits, shutdown));
    Ok((bound, task))
}

/// Starts a node from its config with this HTTP API: what `wlnode run`, the
/// integration tests and the benchmarks call.
pub async fn start_node(cfg: wlnode_config::Config) -> Result<RunningNode, NodeError> {
    RunningNode::start(
        cfg,
        Box::new(|node, token, shutdown| Box::pin(serve(node, token, shutdown))),
    )
    .await
}
