//! `POST /v1/peers/{agency}/block` and `/unblock`: the operator's transport-level
//! quarantine of a neighbour. The block is stored (with an audit event) and enforced by
//! the network's connection gate; `/v1/status` shows it per peer.

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde::Serialize;
use wlnode_crypto::model::{AgencyCode, InvalidValue};
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState};

/// The answer to a block or unblock.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BlockResponse {
    /// The agency.
    pub agency: String,
    /// Whether it is blocked now.
    pub blocked: bool,
    /// Whether this request changed anything (false when it was already so).
    pub changed: bool,
}

async fn set(
    state: &ApiState,
    agency: &str,
    blocked: bool,
) -> Result<Json<BlockResponse>, ApiError> {
    let agency = AgencyCode::new(agency).map_err(|e| ApiError::invalid(e.within("agency")))?;
    if agency == state.node.info.agency {
        return Err(ApiError::invalid(InvalidValue::new(
            "agency",
            format!("{agency} is this node's own agency"),
        )));
    }
    // Unblocking an agency that has left the roster is allowed, so that stale blocks
    // can be cleared.
    if blocked && state.node.trust.roster().member(&agency).is_none() {
        return Err(ApiError::invalid(InvalidValue::new(
            "agency",
            format!("{agency} is not in the roster"),
        )));
    }
    let changed = state
        .node
        .control
        .set_peer_blocked(agency.clone(), blocked)
        .await?;
    Ok(Json(BlockResponse {
        agency: agency.to_string(),
        blocked,
        changed,
    }))
}

#[utoipa::path(post, path = "/v1/peers/{agency}/block", tag = "peers",
    params(("agency" = String, Path, description = "Agency code of a roster member")),
    responses((status = 200, description = "Blocked: no connection to or from its nodes until unblocked; survives restart", body = BlockResponse),
              (status = 400, description = "Not an agency code, our own agency, or not in the roster", body = super::openapi::ErrorDoc),
              (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn block(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(agency): Path<String>,
) -> Result<Json<BlockResponse>, ApiError> {
    let r = set(&state, &agency, true).await?;
    super::users::record(&state, &actor, "peer_block", Some(agency)).await;
    Ok(r)
}

#[utoipa::path(post, path = "/v1/peers/{agency}/unblock", tag = "peers",
    params(("agency" = String, Path, description = "Agency code")),
    responses((status = 200, description = "Unblocked: the node may connect to it again", body = BlockResponse),
              (status = 400, description = "Not an agency code, or our own agency", body = super::openapi::ErrorDoc),
              (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn unblock(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(agency): Path<String>,
) -> Result<Json<BlockResponse>, ApiError> {
    let r = set(&state, &agency, false).await?;
    super::users::record(&state, &actor, "peer_unblock", Some(agency)).await;
    Ok(r)
}
