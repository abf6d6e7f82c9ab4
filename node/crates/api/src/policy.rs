//! Policy endpoints: `POST /v1/policy/reload` and `GET /v1/policy/explain`.

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryId, InvalidValue};
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState};
use wlnode_policy::Explanation;
use wlnode_runtime::{NodeError, ReloadReport};

/// Explain query.
#[derive(Deserialize)]
pub(super) struct ExplainParams {
    entry: String,
    to: String,
    origin: Option<String>,
}

/// An explanation with what it is about.
#[derive(Serialize)]
pub struct ExplainResponse {
    /// Entry id.
    pub entry_id: EntryId,
    /// Entry origin.
    pub origin: AgencyCode,
    /// Head record explained.
    pub record_id: String,
    /// Version of that record.
    pub version: u64,
    /// Peer.
    pub to: AgencyCode,
    /// The explanation.
    #[serde(flatten)]
    pub explanation: Explanation,
}

pub(super) async fn explain(
    State(state): State<ApiState>,
    Query(p): Query<ExplainParams>,
) -> Result<Json<ExplainResponse>, ApiError> {
    let id = EntryId::from_hex(&p.entry).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "entry",
            "not an entry id (32 hex characters)",
        ))
    })?;
    let to = AgencyCode::new(p.to).map_err(|e| ApiError::invalid(e.within("to")))?;
    if state.node.trust.roster().member(&to).is_none() {
        return Err(ApiError::invalid(InvalidValue::new(
            "to",
            format!("{to} is not in the roster"),
        )));
    }
    let origin = p
        .origin
        .map(|o| AgencyCode::new(o).map_err(|e| ApiError::invalid(e.within("origin"))))
        .transpose()?;
    let mut found = state.node.store.entries_by_id(id).await?;
    if let Some(o) = &origin {
        found.retain(|(k, _)| k.origin == *o);
    }
    found.sort_by_key(|(k, _)| k.origin != state.node.info.agency);
    let (key, st) = found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("entry {id} not found")))?;
    let rec = state
        .node
        .store
        .record(st.head)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("head record {} is missing", st.head)))?;
    let explanation = state.node.trust.policy().explain(&rec, &to);
    Ok(Json(ExplainResponse {
        entry_id: key.entry_id,
        origin: key.origin,
        record_id: st.head.to_hex(),
        version: st.version,
        to,
        explanation,
    }))
}

pub(super) async fn reload(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<ReloadReport>, ApiError> {
    match state.node.control.reload().await {
        Ok(r) => {
            super::users::record(&state, &actor, "policy_reload", None).await;
            Ok(Json(r))
        }
        Err(NodeError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "reload_refused",
            e.to_string(),
        )),
    }
}
