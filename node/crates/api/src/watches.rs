//! Watches over the API (issue 22 item 4): `POST /v1/watches` registers a party
//! (`screener`), `GET /v1/watches` lists them (any role), `DELETE /v1/watches/{id}`
//! removes one (`screener`). A new or amended entry that matches a watch raises a
//! `watch_hit` event (`GET /v1/events`, webhooks); see `wlnode_runtime::watches`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wlnode_runtime::users::Actor;
use wlnode_runtime::watches::{Watch, WatchError, WatchRequest};

use super::{ApiError, ApiState, parse_json};

impl From<WatchError> for ApiError {
    fn from(e: WatchError) -> Self {
        match e {
            WatchError::Invalid(v) => Self::invalid(v),
            WatchError::Unknown(_) => Self::not_found(e.to_string()),
            WatchError::Full(_) | WatchError::Duplicate(_) => {
                Self::with_status(StatusCode::CONFLICT, "refused", e.to_string())
            }
            WatchError::NotYours(_) => {
                Self::with_status(StatusCode::FORBIDDEN, "not_yours", e.to_string())
            }
            WatchError::Store(s) => s.into(),
            WatchError::Internal(_) => {
                Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// The answer to `POST /v1/watches`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Added {
    watch_id: String,
    watch: Watch,
}

#[utoipa::path(post, path = "/v1/watches", tag = "watches", request_body = WatchRequest,
    responses((status = 201, body = Added), (status = 400, body = super::openapi::ErrorDoc),
        (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn add(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: WatchRequest = parse_json(&body)?;
    let w = state.node.watches.add(&actor, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(Added {
            watch_id: w.watch_id.clone(),
            watch: w,
        }),
    )
        .into_response())
}

#[utoipa::path(get, path = "/v1/watches", tag = "watches",
    responses((status = 200, body = Vec<Watch>), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<Watch>> {
    Json(state.node.watches.list())
}

#[utoipa::path(delete, path = "/v1/watches/{id}", tag = "watches",
    params(("id" = String, Path, description = "Watch id")),
    responses((status = 200, body = Watch, description = "The removed watch"), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn remove(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Watch>, ApiError> {
    Ok(Json(state.node.watches.remove(&actor, &id).await?))
}
