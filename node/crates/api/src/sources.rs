//! `GET /v1/sources` and `POST /v1/sources/{name}/run`: the scheduled source lists
//! (`[[source]]`) of the running node, and refreshing one now. The refresh itself is
//! the runtime's (`wlnode_runtime::sources`); these only ask and show.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use wlnode_runtime::sources::{RefreshReport, SourceError, SourceStatus};
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState};

/// Every configured source.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SourcesResponse {
    /// In config order.
    pub sources: Vec<SourceStatus>,
}

#[utoipa::path(get, path = "/v1/sources", tag = "sources",
    responses((status = 200, description = "Every [[source]] of node.toml: origin, format, period, last success and outcome, next run", body = SourcesResponse),
              (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<SourcesResponse> {
    Json(SourcesResponse {
        sources: state.node.sources.list(),
    })
}

#[utoipa::path(post, path = "/v1/sources/{name}/run", tag = "sources",
    params(("name" = String, Path, description = "The source's name in node.toml")),
    responses((status = 200, description = "The refresh ran (after any already running); `outcome` says how it ended, `failed` included", body = RefreshReport),
              (status = 404, description = "No such source", body = super::openapi::ErrorDoc),
              (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn run(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<RefreshReport>, ApiError> {
    let result = state.node.sources.run(&name).await;
    if !matches!(result, Err(SourceError::Unknown(_))) {
        super::users::record(&state, &actor, "source_run", Some(name.clone())).await;
    }
    match result {
        Ok(r) => Ok(Json(r)),
        Err(e @ SourceError::Unknown(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ SourceError::Stopped) => Err(ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopping",
            e.to_string(),
        )),
    }
}
