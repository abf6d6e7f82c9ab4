//! Flags over the API (issue 21 item 3): `GET /v1/flags` (our flags in force),
//! `POST /v1/flags` (flag another agency's entry "not actionable here", telling its
//! origin), `DELETE /v1/flags?entry_id=ID[&origin=O]` (lift it, telling the origin).
//! Writes need `consultant` (they send a sealed message to another agency, as
//! consultations do); reading also `screener` and `admin`. Each write is an `acted`
//! audit event (`flag_set`, `flag_lift`), written by `wlnode_runtime::flags`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryId, InvalidValue};
use wlnode_runtime::flags::{FlagError, FlagRecord};
use wlnode_runtime::mail::MailSendError;
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState, parse_json};

impl From<FlagError> for ApiError {
    fn from(e: FlagError) -> Self {
        match e {
            FlagError::NotFound(_) => Self::not_found(e.to_string()),
            FlagError::Invalid { ref field, .. } => {
                let mut out =
                    Self::with_status(StatusCode::BAD_REQUEST, "invalid_field", e.to_string());
                out.field = Some(field.clone());
                out
            }
            FlagError::OwnEntry(_) => {
                Self::with_status(StatusCode::CONFLICT, "own_entry", e.to_string())
            }
            FlagError::AmbiguousEntry { .. } => {
                Self::with_status(StatusCode::CONFLICT, "ambiguous_entry", e.to_string())
            }
            FlagError::Full => {
                Self::with_status(StatusCode::CONFLICT, "too_many_flags", e.to_string())
            }
            FlagError::RateLimited { .. } => Self::with_status(
                StatusCode::TOO_MANY_REQUESTS,
                "flag_rate_limited",
                e.to_string(),
            ),
            FlagError::Mail(MailSendError::Store(s)) | FlagError::Store(s) => s.into(),
            FlagError::Mail(_) | FlagError::Corrupt(_) => Self::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

/// One flag.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct FlagView {
    entry_id: String,
    origin: String,
    /// Why the entry is not actionable here.
    reason: String,
    /// RFC 3339.
    flagged_at: String,
    /// The sealed message that told the origin.
    message_id: String,
}

fn view(f: &FlagRecord) -> FlagView {
    FlagView {
        entry_id: f.entry_id.to_hex(),
        origin: f.origin.to_string(),
        reason: f.reason.clone(),
        flagged_at: wlnode_crypto::Timestamp(f.flagged_at).to_rfc3339(),
        message_id: f.message_id.to_hex(),
    }
}

fn entry_field(s: &str) -> Result<EntryId, ApiError> {
    EntryId::from_hex(s.trim()).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "entry_id",
            format!("{s:?} is not an entry id (32 hex characters)"),
        ))
    })
}

fn origin_field(origin: Option<&str>) -> Result<Option<AgencyCode>, ApiError> {
    origin
        .map(|o| {
            AgencyCode::new(o.trim())
                .map_err(|e| ApiError::invalid(InvalidValue::new("origin", format!("{o:?}: {e}"))))
        })
        .transpose()
}

/// Body of `POST /v1/flags`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagBody {
    /// Another agency's entry.
    entry_id: String,
    /// Its origin: required when several agencies hold an entry with this id.
    #[serde(default)]
    origin: Option<String>,
    /// Why it is not actionable here (at most 4 KiB; sent to the origin).
    reason: String,
}

#[utoipa::path(get, path = "/v1/flags", tag = "consultations",
    responses((status = 200, body = [FlagView]), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<Vec<FlagView>>, ApiError> {
    Ok(Json(
        state.node.flags.list().await?.iter().map(view).collect(),
    ))
}

#[utoipa::path(post, path = "/v1/flags", tag = "consultations", request_body = FlagBody,
    responses((status = 200, body = FlagView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc), (status = 429, body = super::openapi::ErrorDoc)))]
pub(super) async fn set(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<FlagView>, ApiError> {
    let b: FlagBody = parse_json(&body)?;
    let entry = entry_field(&b.entry_id)?;
    let origin = origin_field(b.origin.as_deref())?;
    let f = state
        .node
        .flags
        .set(&actor.id, entry, origin, b.reason)
        .await?;
    Ok(Json(view(&f)))
}

#[derive(Deserialize)]
pub(super) struct LiftParams {
    pub(super) entry_id: String,
    pub(super) origin: Option<String>,
}

#[utoipa::path(delete, path = "/v1/flags", tag = "consultations",
    params(("entry_id" = String, Query, description = "The flagged entry"),
        ("origin" = Option<String>, Query, description = "Its origin, when several agencies hold an entry with this id")),
    responses((status = 200, body = FlagView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc), (status = 429, body = super::openapi::ErrorDoc)))]
pub(super) async fn lift(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Query(p): Query<LiftParams>,
) -> Result<Json<FlagView>, ApiError> {
    let entry = entry_field(&p.entry_id)?;
    let origin = origin_field(p.origin.as_deref())?;
    let f = state.node.flags.lift(&actor.id, entry, origin).await?;
    Ok(Json(view(&f)))
}
