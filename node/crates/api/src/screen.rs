//! Screening endpoints: `GET /v1/screen?q=...`, `POST /v1/screen` (JSON body) and
//! `POST /v1/screen/batch` (a JSON list or a CSV body). Searches run on blocking
//! threads against the live index (`wlnode_runtime::screening`); each one's time goes into
//! the `wlnode_screen_latency_seconds` histogram.
//!
//! Errors: an empty name is 400 `empty_query`, a name over 512 characters is 400
//! `query_too_long`, other bad fields are 400 `invalid_field` naming the field, and
//! while the index is still being built at start (after a short wait) 503
//! `index_building`. A batch never fails for bad rows: it screens the good ones and
//! lists the bad ones with their row (CSV: line) numbers.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use wlnode_crypto::model::InvalidValue;

use super::{ApiError, ApiState, parse_json};
use wlnode_runtime::index::ScreenHandle;
use wlnode_screen::MAX_QUERY_CHARS;
use wlnode_screen::request::{
    BatchResponse, BatchRow, BatchRowError, MAX_BATCH, ScreenError, ScreenRequest, ScreenResponse,
    parse_csv, screen_rows,
};

/// How long a request waits for the start build before answering 503.
const READY_WAIT: Duration = Duration::from_secs(20);
/// How long a request waits for the index to reflect records stored before it.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

impl From<ScreenError> for ApiError {
    fn from(e: ScreenError) -> Self {
        match e {
            ScreenError::Building { .. } => Self::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "index_building",
                e.to_string(),
            ),
            ScreenError::Query(q) => {
                Self::with_status(StatusCode::BAD_REQUEST, "bad_request", q.to_string())
            }
        }
    }
}

/// The typed 400 for an empty or oversized name, or `None`.
fn name_error(name: &str, field: &str) -> Option<ApiError> {
    let chars = name.chars().count();
    let (code, message) = if name.trim().is_empty() {
        (
            "empty_query",
            format!("{field}: the name to screen is empty"),
        )
    } else if chars > MAX_QUERY_CHARS {
        (
            "query_too_long",
            format!(
                "{field}: the name to screen has {chars} characters; at most {MAX_QUERY_CHARS} are allowed"
            ),
        )
    } else {
        return None;
    };
    let mut e = ApiError::with_status(StatusCode::BAD_REQUEST, code, message);
    e.field = Some(field.to_owned());
    Some(e)
}

/// Parses query-string pairs into a request (`q` or `name`, plus the optional fields).
fn from_pairs(
    pairs: Vec<(String, String)>,
    name_required: bool,
) -> Result<ScreenRequest, ApiError> {
    let mut r = ScreenRequest::default();
    let mut have_name = false;
    let bad = |field: &str, msg: String| ApiError::invalid(InvalidValue::new(field, msg));
    for (k, v) in pairs {
        match k.as_str() {
            "q" | "name" => {
                r.name = v;
                have_name = true;
            }
            "kind" => r.kind = Some(v),
            "country" => r.country = Some(v),
            "dob" | "birth_date" => r.dob = Some(v),
            "id" | "identifier" => r.id = Some(v),
            "limit" => {
                r.limit = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| bad("limit", format!("{v:?} is not a whole number")))?,
                );
            }
            "min_score" => {
                r.min_score = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| bad("min_score", format!("{v:?} is not a number")))?,
                );
            }
            "include_withdrawn" => {
                r.include_withdrawn = Some(match v.trim() {
                    "" | "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => {
                        return Err(bad(
                            "include_withdrawn",
                            format!("{v:?} is not true or false"),
                        ));
                    }
                });
            }
            other => {
                return Err(bad(
                    other,
                    "unknown parameter (q, kind, country, dob, id, limit, min_score, include_withdrawn)".into(),
                ));
            }
        }
    }
    if name_required && !have_name {
        let mut e = ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "empty_query",
            "q: the name to screen is missing (GET /v1/screen?q=NAME)",
        );
        e.field = Some("q".into());
        return Err(e);
    }
    Ok(r)
}

/// Waits for the start build, then for the index to catch up with every record stored
/// before this request (a lagging index is searched anyway after [`CATCH_UP_WAIT`]).
pub(super) async fn ready(state: &ApiState, handle: &ScreenHandle) -> Result<(), ApiError> {
    if handle.is_ready() || handle.wait_ready(READY_WAIT).await {
        let head = state.node.ingested.head();
        handle.wait_applied(head, CATCH_UP_WAIT).await;
        Ok(())
    } else {
        Err(ScreenError::Building {
            entries: handle.len(),
        }
        .into())
    }
}

async fn screen_one(
    state: &ApiState,
    req: ScreenRequest,
    field: &str,
) -> Result<Json<ScreenResponse>, ApiError> {
    if let Some(e) = name_error(&req.name, field) {
        return Err(e);
    }
    let query = req.to_query().map_err(ApiError::invalid)?;
    let handle = state.node.screen.clone();
    ready(state, &handle).await?;
    let metrics = state.node.metrics.clone();
    let resp = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let results = handle.search(&query)?;
        let took = t.elapsed();
        metrics.screen_latency.observe(took.as_secs_f64());
        Ok::<_, ScreenError>(ScreenResponse {
            query: query.name,
            results,
            index_entries: handle.len(),
            took_ms: took.as_secs_f64() * 1000.0,
        })
    })
    .await
    .map_err(|e| {
        ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    Ok(Json(resp))
}

#[utoipa::path(get, path = "/v1/screen", tag = "screen",
    params(("q" = String, Query, description = "Name to screen (1 to 512 characters)"),
        ("kind" = Option<String>, Query, description = "person, organization or vessel"),
        ("country" = Option<String>, Query, description = "ISO country code"),
        ("dob" = Option<String>, Query, description = "YYYY, YYYY-MM or YYYY-MM-DD"),
        ("id" = Option<String>, Query, description = "Identifier TYPE:VALUE (an exact match is decisive)"),
        ("limit" = Option<usize>, Query, description = "Most results, 1 to 1000 (default 10)"),
        ("min_score" = Option<f64>, Query, description = "Least score, 0 to 1 (default 0.80)"),
        ("include_withdrawn" = Option<bool>, Query, description = "Also match withdrawn entries")),
    responses((status = 200, description = "Results with score, entry_id, origin, matched_name and explanation"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn get(
    State(state): State<ApiState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ScreenResponse>, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let req = from_pairs(pairs, true)?;
    screen_one(&state, req, "q").await
}

#[utoipa::path(post, path = "/v1/screen", tag = "screen", request_body = ScreenRequest,
    responses((status = 200, description = "Results with score, entry_id, origin, matched_name and explanation"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn post(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<ScreenResponse>, ApiError> {
    let req: ScreenRequest = parse_json(&body)?;
    screen_one(&state, req, "name").await
}

/// The parties of a JSON batch: a list of request objects; bad elements become row
/// errors (rows are 1-based positions in the list).
fn json_rows(body: &[u8]) -> Result<(Vec<BatchRow>, Vec<BatchRowError>), ApiError> {
    let list: Vec<serde_json::Value> = parse_json(body)?;
    let mut rows = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (i, v) in list.into_iter().enumerate() {
        let row = i + 1;
        let reference = v.get("ref").and_then(|r| r.as_str()).map(str::to_owned);
        let mut v = v;
        if let Some(o) = v.as_object_mut() {
            o.remove("ref");
        }
        match serde_path_to_error::deserialize::<_, ScreenRequest>(v) {
            Ok(request) => rows.push(BatchRow {
                row,
                reference,
                request,
            }),
            Err(e) => {
                let path = e.path().to_string();
                errors.push(BatchRowError {
                    row,
                    field: (path != ".").then_some(path),
                    message: e.into_inner().to_string(),
                });
            }
        }
    }
    Ok((rows, errors))
}

#[utoipa::path(post, path = "/v1/screen/batch", tag = "screen",
    request_body(content = Vec<ScreenRequest>, description = "A JSON list of requests (each may carry a `ref`), or a CSV body (Content-Type: text/csv) with a header row: ref, name, kind, country, dob, id"),
    params(("limit" = Option<usize>, Query, description = "Most results per party"),
        ("min_score" = Option<f64>, Query, description = "Least score"),
        ("include_withdrawn" = Option<bool>, Query, description = "Also match withdrawn entries")),
    responses((status = 200, description = "One result per good row and one error per bad row (with its row, or CSV line, number)"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn batch(
    State(state): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Json<BatchResponse>, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let defaults = from_pairs(pairs, false)?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv") || v.starts_with("application/csv"));
    let (rows, errors) = if csv {
        parse_csv(&body)
    } else {
        json_rows(&body)?
    };
    if rows.len() + errors.len() > MAX_BATCH {
        return Err(ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "batch_too_large",
            format!(
                "the batch has {} rows; at most {MAX_BATCH} are allowed per request",
                rows.len() + errors.len()
            ),
        ));
    }
    let handle = state.node.screen.clone();
    ready(&state, &handle).await?;
    let metrics = state.node.metrics.clone();
    let resp = tokio::task::spawn_blocking(move || {
        screen_rows(
            |q| handle.search(q),
            rows,
            &defaults,
            errors,
            |d| {
                metrics.screen_latency.observe(d.as_secs_f64());
            },
        )
    })
    .await
    .map_err(|e| {
        ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })??;
    Ok(Json(resp))
}
