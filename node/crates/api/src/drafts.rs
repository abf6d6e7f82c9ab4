//! Four-eyes release over the API: with `[release] require_approval` on, `POST
//! /v1/entries`, `PUT /v1/entries/{id}` and `POST /v1/entries/{id}/withdraw` answer 202
//! `{"draft_id", "state": "awaiting_approval"}` and sign nothing; `GET /v1/drafts`
//! lists drafts; an `approver` other than the author releases one with
//! `POST /v1/drafts/{id}/approve` (the written record, as a direct write answers) or
//! refuses it with `POST /v1/drafts/{id}/reject`. Direct imports are refused (409
//! `approval_required`) while four-eyes is on: a list goes up as an import batch
//! instead (`import_batches`), released as a whole by an approver.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{EntryId, Sensitivity};
use wlnode_runtime::drafts::{Draft, DraftError, DraftOp, DraftState};
use wlnode_runtime::entries::Written;
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState, parse_json};

impl From<DraftError> for ApiError {
    fn from(e: DraftError) -> Self {
        match e {
            DraftError::Unknown(_) => Self::not_found(e.to_string()),
            DraftError::Decided { .. } => {
                Self::with_status(StatusCode::CONFLICT, "decided", e.to_string())
            }
            DraftError::OwnDraft(_) => {
                Self::with_status(StatusCode::FORBIDDEN, "own_draft", e.to_string())
            }
            DraftError::Full | DraftError::Limit(_) => {
                Self::with_status(StatusCode::CONFLICT, "limit", e.to_string())
            }
            DraftError::Bootstrap => Self::with_status(
                StatusCode::FORBIDDEN,
                "bootstrap_cannot_approve",
                e.to_string(),
            ),
            DraftError::Stale { .. } => {
                Self::with_status(StatusCode::CONFLICT, "stale", e.to_string())
            }
            DraftError::Write(w) => w.into(),
            DraftError::Store(s) => s.into(),
            DraftError::Internal(_) => {
                Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// Whether a write at `sensitivity` must wait for approval under the policy in force.
pub(super) fn needs_approval(state: &ApiState, sensitivity: &Sensitivity) -> bool {
    state.node.trust.policy().needs_approval(sensitivity)
}

/// 409 for writes that cannot go through drafts yet while four-eyes is on.
pub(super) fn refuse_bulk(state: &ApiState, what: &str) -> Result<(), ApiError> {
    if state.node.trust.policy().four_eyes() {
        return Err(ApiError::with_status(
            StatusCode::CONFLICT,
            "approval_required",
            format!(
                "{what} is refused while [release] require_approval is on: upload the list as an import batch (POST /v1/import-batches; `wlnode import` does so) for an approver to release"
            ),
        ));
    }
    Ok(())
}

/// The answer to a write that became a draft.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Drafted {
    draft_id: String,
    state: DraftState,
}

/// Records `op` as a draft of `actor`: 202.
pub(super) async fn create(
    state: &ApiState,
    actor: &Actor,
    op: DraftOp,
) -> Result<Response, ApiError> {
    let d = state.node.drafts.create(actor, op).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Drafted {
            draft_id: d.draft_id,
            state: d.state,
        }),
    )
        .into_response())
}

/// The sensitivity of this agency's entry `id` (its head's distribution) and its head
/// record, checking that it exists and is ours, as the write itself would.
pub(super) async fn own_head(
    state: &ApiState,
    id: EntryId,
) -> Result<(Sensitivity, wlnode_crypto::model::RecordId), ApiError> {
    let me = state.node.info.agency.clone();
    let found = state.node.store.entries_by_id(id).await?;
    let Some((_, st)) = found.iter().find(|(k, _)| k.origin == me) else {
        return Err(match found.first() {
            Some((k, _)) => ApiError::with_status(
                StatusCode::FORBIDDEN,
                "not_origin",
                format!(
                    "entry {} belongs to {}; only the origin agency may change it",
                    id.to_hex(),
                    k.origin
                ),
            ),
            None => ApiError::not_found(format!("entry {} not found", id.to_hex())),
        });
    };
    let head = state
        .node
        .store
        .record(st.head)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("head record {} is missing", st.head)))?;
    Ok((
        head.record.header().distribution.sensitivity.clone(),
        st.head,
    ))
}

/// `?state=awaiting_approval|approved|rejected`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    state: Option<DraftState>,
}

#[utoipa::path(get, path = "/v1/drafts", tag = "drafts", params(ListParams),
    responses((status = 200, body = Vec<Draft>), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<Draft>>, ApiError> {
    let Query(p) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(state.node.drafts.list(p.state).await?))
}

#[utoipa::path(post, path = "/v1/drafts/{id}/approve", tag = "drafts",
    params(("id" = String, Path, description = "Draft id")),
    responses((status = 200, body = Written, description = "Signed and released"), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc, description = "forbidden (not an approver) or own_draft"), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn approve(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Written>, ApiError> {
    let r = state
        .node
        .drafts
        .approve(&actor, &id, &state.node.lifecycle)
        .await;
    match r {
        Ok((w, report)) => {
            state.node.ingested.after_ingest(&report, "local");
            Ok(Json(w))
        }
        Err(DraftError::Write(wlnode_runtime::entries::LifecycleError::Store(e))) => {
            state.node.ingested.write_failed(&e);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Body of a rejection (of a draft or an import batch).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RejectBody {
    reason: String,
}

/// The reason of a rejection body, checked (at most `MAX_LONG_TEXT`, no control
/// characters but line breaks).
pub(super) fn reject_reason(body: &Bytes) -> Result<String, ApiError> {
    let b: RejectBody = parse_json(body)?;
    wlnode_crypto::model::check_text(&b.reason, wlnode_crypto::model::MAX_LONG_TEXT)
        .map_err(|e| ApiError::invalid(e.within("reason")))?;
    Ok(b.reason)
}

#[utoipa::path(post, path = "/v1/drafts/{id}/reject", tag = "drafts", request_body = RejectBody,
    params(("id" = String, Path, description = "Draft id")),
    responses((status = 200, body = Draft), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn reject(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Draft>, ApiError> {
    let reason = reject_reason(&body)?;
    Ok(Json(state.node.drafts.reject(&actor, &id, reason).await?))
}
