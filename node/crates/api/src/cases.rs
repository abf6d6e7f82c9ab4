//! The screening case log over the API: every screening through `/v1/screen`,
//! `/v1/screen/batch` and `/match` is logged (`wlnode_runtime::cases`) and answers with
//! its `case_id`, each hit carrying the `decision` in force for that party and entry
//! version (or `null`). `POST /v1/cases/{id}/decisions` records a decision (screener);
//! `GET /v1/cases` (`?ref=`, `?since=`, `?limit=`, `?format=csv`) and
//! `GET /v1/cases/{id}` read the log (any role).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryId, InvalidValue};
use wlnode_crypto::time::Timestamp;
use wlnode_runtime::cases::{Case, CaseError, Decision, DecisionState, MAX_LOG};
use wlnode_runtime::users::Actor;
use wlnode_screen::csv_cell::neutralize;

use super::{ApiError, ApiState, parse_json};

impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Unknown(_) => Self::not_found(e.to_string()),
            CaseError::NotAHit { .. } => {
                let mut err =
                    Self::with_status(StatusCode::BAD_REQUEST, "not_a_hit", e.to_string());
                err.field = Some("entry".into());
                err
            }
            CaseError::Store(s) => s.into(),
            CaseError::Internal(_) => {
                Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// Body of `POST /v1/cases/{id}/decisions`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideBody {
    /// The hit's entry id.
    entry: String,
    /// Its origin, when two origins' entries share the id.
    #[serde(default)]
    origin: Option<String>,
    /// `cleared`, `confirmed` or `escalated`.
    decision: DecisionState,
    /// Why (required).
    reason: String,
}

#[utoipa::path(post, path = "/v1/cases/{id}/decisions", tag = "cases", request_body = DecideBody,
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = Decision), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn decide(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Decision>, ApiError> {
    let b: DecideBody = parse_json(&body)?;
    let entry = EntryId::from_hex(b.entry.trim()).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "entry",
            format!("{:?} is not an entry id (32 hex characters)", b.entry),
        ))
    })?;
    let origin = b
        .origin
        .map(|o| AgencyCode::new(o).map_err(|e| ApiError::invalid(e.within("origin"))))
        .transpose()?;
    if b.reason.trim().is_empty() {
        return Err(ApiError::invalid(InvalidValue::new(
            "reason",
            "a decision needs a reason",
        )));
    }
    wlnode_crypto::model::check_text(&b.reason, wlnode_crypto::model::MAX_LONG_TEXT)
        .map_err(|e| ApiError::invalid(e.within("reason")))?;
    Ok(Json(
        state
            .node
            .cases
            .decide(&actor, &id, origin, entry, b.decision, b.reason)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = Case), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Case>, ApiError> {
    Ok(Json(state.node.cases.get(&id).await?))
}

/// `GET /v1/cases` parameters.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct LogParams {
    /// Only cases with this reference.
    #[serde(rename = "ref")]
    reference: Option<String>,
    /// Only cases since (RFC 3339).
    since: Option<String>,
    /// Most cases (1 to 1000, default 100).
    limit: Option<usize>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// The log as JSON.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Log {
    cases: Vec<Case>,
    /// The read stopped at its bound before `limit` matching cases were found: ask
    /// again with `since` after the last case.
    truncated: bool,
}

#[utoipa::path(get, path = "/v1/cases", tag = "cases", params(LogParams),
    responses((status = 200, body = Log, description = "The cases, oldest first (or CSV with format=csv)"), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn log(
    State(state): State<ApiState>,
    q: Result<Query<LogParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let since = p
        .since
        .filter(|s| !s.is_empty())
        .map(|s| {
            Timestamp::parse_rfc3339(&s)
                .map_err(|e| ApiError::invalid(InvalidValue::new("since", e.to_string())))
        })
        .transpose()?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LOG).contains(&limit) {
        return Err(ApiError::invalid(InvalidValue::new(
            "limit",
            format!("must be from 1 to {MAX_LOG}"),
        )));
    }
    let (cases, truncated) = state.node.cases.log(p.reference, since, limit).await?;
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(Log { cases, truncated }).into_response()),
        Some("csv") => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            to_csv(&cases),
        )
            .into_response()),
        Some(other) => Err(ApiError::invalid(InvalidValue::new(
            "format",
            format!("{other:?} is not json or csv"),
        ))),
    }
}

/// One CSV row per hit (a case without hits gets one row), cells neutralised against
/// spreadsheet formulas.
pub fn to_csv(cases: &[Case]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "case_id",
        "at",
        "user",
        "channel",
        "ref",
        "name",
        "country",
        "dob",
        "origin",
        "entry_id",
        "record_id",
        "score",
        "matched_name",
        "decision",
        "decided_by",
        "reason",
    ]);
    for c in cases {
        let base = [
            c.case_id.clone(),
            c.at.to_rfc3339(),
            c.user_name.clone(),
            serde_json::to_value(c.channel)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            c.party.reference.clone().unwrap_or_default(),
            c.party.name.clone(),
            c.party.country.clone().unwrap_or_default(),
            c.party.dob.clone().unwrap_or_default(),
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for h in &c.hits {
            let d = c
                .decisions
                .iter()
                .rev()
                .find(|(e, _)| *e == h.entry_id.to_hex())
                .map(|(_, d)| d);
            let mut row = base.to_vec();
            row.extend([
                h.origin.to_string(),
                h.entry_id.to_hex(),
                h.record_id.map(|r| r.to_string()).unwrap_or_default(),
                format!("{:.4}", h.score),
                h.matched_name.clone(),
                d.map(|d| format!("{:?}", d.state).to_lowercase())
                    .unwrap_or_default(),
                d.map(|d| d.by_name.clone()).unwrap_or_default(),
                d.map(|d| d.reason.clone()).unwrap_or_default(),
            ]);
            rows.push(row);
        }
        if rows.is_empty() {
            let mut row = base.to_vec();
            row.extend(std::iter::repeat_n(String::new(), 8));
            rows.push(row);
        }
        for r in rows {
            let _ = w.write_record(r.iter().map(|s| neutralize(s).into_owned()));
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}
