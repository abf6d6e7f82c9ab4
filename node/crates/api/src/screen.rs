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
use axum::extract::Extension;
use wlnode_crypto::model::{AgencyCode, EntryId};
use wlnode_runtime::cases::{Channel, Decision, Hit, Party};
use wlnode_runtime::index::ScreenHandle;
use wlnode_runtime::users::Actor;
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
pub(super) fn from_pairs(
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
            "ref" | "reference" => r.reference = Some(v),
            "origin" => r.origin = Some(v),
            "reason" => r.reason = Some(v),
            "category" => r.category = Some(v),
            "exclude" => r.exclude.get_or_insert_with(Vec::new).extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
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
                    "unknown parameter (q, kind, country, dob, id, ref, origin, reason, category, exclude, limit, min_score, include_withdrawn)".into(),
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

/// A hit as the API answers it: the result, the decision in force for this party
/// and entry version (`null` when none), and (issue 21 item 3) whether the origin
/// asks for a hit report (`on_hit`, `hit_report_requested`) and our own flag on the
/// entry (`flag`: reason and time).
#[derive(serde::Serialize)]
pub(super) struct DecidedHit {
    #[serde(flatten)]
    pub(super) hit: wlnode_screen::Match,
    pub(super) decision: Option<Decision>,
    #[serde(flatten)]
    pub(super) marks: wlnode_runtime::flags::HitMarks,
}

/// The hit marks of every hit in `keys`.
async fn marks_of(
    state: &ApiState,
    keys: &[(AgencyCode, EntryId)],
) -> Result<
    std::collections::HashMap<(AgencyCode, EntryId), wlnode_runtime::flags::HitMarks>,
    ApiError,
> {
    state.node.flags.marks(keys).await.map_err(ApiError::from)
}

/// A single screening's answer: the engine's, with the case it was logged as.
#[derive(serde::Serialize)]
pub(super) struct LoggedResponse {
    pub(super) case_id: String,
    query: String,
    pub(super) results: Vec<DecidedHit>,
    index_entries: usize,
    took_ms: f64,
}

/// The case-log party of a request.
pub(super) fn party_of(r: &ScreenRequest, reference: Option<String>) -> Party {
    Party {
        name: r.name.clone(),
        country: r.country.clone().filter(|s| !s.trim().is_empty()),
        dob: r.dob.clone().filter(|s| !s.trim().is_empty()),
        reference: reference
            .or_else(|| r.reference.clone())
            .filter(|s| !s.trim().is_empty()),
        id: r.id.clone().filter(|s| !s.trim().is_empty()),
        address: r.address.clone().filter(|s| !s.trim().is_empty()),
    }
}

pub(super) async fn screen_one(
    state: &ApiState,
    actor: &Actor,
    req: ScreenRequest,
    field: &str,
) -> Result<Json<LoggedResponse>, ApiError> {
    if let Some(e) = name_error(&req.name, field) {
        return Err(e);
    }
    let query = req.to_query().map_err(ApiError::invalid)?;
    let party = party_of(&req, None);
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
    let hits = resp.results.iter().map(Hit::from).collect();
    let logged = state
        .node
        .cases
        .record(actor, Channel::Single, vec![(party, hits)])
        .await?
        .pop()
        .ok_or_else(|| {
            ApiError::with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "case not logged",
            )
        })?;
    let keys: Vec<(AgencyCode, EntryId)> = resp
        .results
        .iter()
        .map(|m| (m.origin.clone(), m.entry_id))
        .collect();
    let mut marks = marks_of(state, &keys).await?;
    Ok(Json(LoggedResponse {
        case_id: logged.case_id,
        query: resp.query,
        results: resp
            .results
            .into_iter()
            .zip(logged.decisions)
            .map(|(hit, decision)| {
                let marks = marks
                    .remove(&(hit.origin.clone(), hit.entry_id))
                    .unwrap_or_default();
                DecidedHit {
                    hit,
                    decision,
                    marks,
                }
            })
            .collect(),
        index_entries: resp.index_entries,
        took_ms: resp.took_ms,
    }))
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
    Extension(actor): Extension<Actor>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<LoggedResponse>, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let req = from_pairs(pairs, true)?;
    screen_one(&state, &actor, req, "q").await
}

#[utoipa::path(post, path = "/v1/screen", tag = "screen", request_body = ScreenRequest,
    responses((status = 200, description = "Results with score, entry_id, origin, matched_name and explanation"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn post(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<LoggedResponse>, ApiError> {
    let req: ScreenRequest = parse_json(&body)?;
    screen_one(&state, &actor, req, "name").await
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
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let parties: std::collections::HashMap<usize, Party> = rows
        .iter()
        .map(|r| (r.row, party_of(&r.request, r.reference.clone())))
        .collect();
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
    log_batch(&state, &actor, resp, parties).await.map(Json)
}

/// Logs each screened party of a batch as a case and answers the batch with each
/// result's `case_id` and each hit's `decision`.
async fn log_batch(
    state: &ApiState,
    actor: &Actor,
    resp: BatchResponse,
    mut parties: std::collections::HashMap<usize, Party>,
) -> Result<serde_json::Value, ApiError> {
    let hit_of = |v: &serde_json::Value| -> Option<Hit> {
        Some(Hit {
            origin: AgencyCode::new(v.get("origin")?.as_str()?.to_owned()).ok()?,
            entry_id: EntryId::from_hex(v.get("entry_id")?.as_str()?).ok()?,
            score: v.get("score")?.as_f64()?,
            matched_name: v.get("matched_name")?.as_str()?.to_owned(),
        })
    };
    // Every result row has its party and every hit reads back: the decisions below
    // are zipped onto hits by position, so a gap would shift them.
    let internal = |what: &str| {
        ApiError::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("batch result {what}"),
        )
    };
    let mut to_log: Vec<(Party, Vec<Hit>)> = Vec::with_capacity(resp.results.len());
    for r in &resp.results {
        let party = parties
            .remove(&r.row)
            .ok_or_else(|| internal("without its party"))?;
        let hits = r
            .results
            .iter()
            .map(hit_of)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| internal("with an unreadable hit"))?;
        to_log.push((party, hits));
    }
    let to_log_keys: Vec<(AgencyCode, EntryId)> = to_log
        .iter()
        .flat_map(|(_, hits)| hits.iter().map(|h| (h.origin.clone(), h.entry_id)))
        .collect();
    let logged = state
        .node
        .cases
        .record(actor, Channel::Batch, to_log)
        .await?;
    let mut out = serde_json::to_value(&resp).map_err(|e| {
        ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?;
    let keys: Vec<(AgencyCode, EntryId)> = to_log_keys;
    let marks = marks_of(state, &keys).await?;
    if let Some(results) = out.get_mut("results").and_then(|r| r.as_array_mut()) {
        for (r, l) in results.iter_mut().zip(logged) {
            r["case_id"] = serde_json::Value::String(l.case_id);
            if let Some(hits) = r.get_mut("results").and_then(|h| h.as_array_mut()) {
                for (h, d) in hits.iter_mut().zip(l.decisions) {
                    let key = hit_of(h).map(|x| (x.origin, x.entry_id));
                    h["decision"] = serde_json::to_value(d).unwrap_or_default();
                    let m = key.and_then(|k| marks.get(&k)).cloned().unwrap_or_default();
                    if let (Some(o), Ok(serde_json::Value::Object(extra))) =
                        (h.as_object_mut(), serde_json::to_value(m))
                    {
                        o.extend(extra);
                    }
                }
            }
        }
    }
    Ok(out)
}
