//! Who may call what: the role every route needs ([`required_role`], one table, deny by
//! default), and the user endpoints (`GET /v1/users/me`, `GET /v1/users`,
//! `POST /v1/users`, `POST /v1/users/{name}/disable`, `POST /v1/users/{name}/rotate`).
//!
//! Reading (entries, status, policy explanations, sources, metrics, the OpenAPI
//! document, `/entities`) needs any role; the screening case log `screener`, `admin`
//! or `viewer`; drafts `editor`, `approver` or `admin`. Screening (`/v1/screen*`, `/match`,
//! `/search`) and recording decisions on hits need `screener`; writing entries and imports `editor`; approving or
//! rejecting drafts (four-eyes release) `approver`; policy reloads,
//! peer blocks, backups, running a source and managing users `admin`.
//! Watches: listing them and the event stream (`GET /v1/watches`, `GET /v1/events`)
//! need any role; adding and removing one `screener`. Consultations and the inbox
//! (`/v1/consultations*`, `/v1/inbox`) need `consultant`. A request outside
//! the caller's roles gets 403 `forbidden` naming the role it needs.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wlnode_runtime::users::{Actor, Issued, Role, UserInfo, UsersError};

use super::{ApiError, ApiState, parse_json};

/// What a route needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated user (every role may read).
    AnyRole,
    /// This role.
    Role(Role),
    /// One of these roles.
    AnyOf(&'static [Role]),
}

impl Need {
    /// Whether `actor` meets it.
    pub fn met_by(self, actor: &Actor) -> bool {
        match self {
            Need::AnyRole => true,
            Need::Role(r) => actor.has(r),
            Need::AnyOf(rs) => rs.iter().any(|r| actor.has(*r)),
        }
    }

    /// The role(s) it names, for a 403.
    pub fn names(self) -> String {
        match self {
            Need::AnyRole => "any".into(),
            Need::Role(r) => r.as_str().into(),
            Need::AnyOf(rs) => rs
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

/// Who may read the screening case log (officers' queries and references).
const CASE_READERS: &[Role] = &[Role::Screener, Role::Admin, Role::Viewer];
/// Who may read drafts (unreleased entry content).
const DRAFT_READERS: &[Role] = &[Role::Editor, Role::Approver, Role::Admin];

/// The role `method path` needs (`path` as routed, e.g. `/v1/entries/{id}`). Routes not
/// in this table need `admin`, so a route added without a decision here is closed, and a
/// test checks every documented route against it.
pub fn required_role(method: &Method, path: &str) -> Need {
    use Need::{AnyRole, Role as R};
    let get = method == Method::GET || method == Method::HEAD;
    match path {
        "/v1/entries" | "/v1/entries/{id}" if get => AnyRole,
        "/v1/drafts"
        | "/v1/import-batches"
        | "/v1/import-batches/{id}"
        | "/v1/import-batches/{id}/rows"
            if get =>
        {
            Need::AnyOf(DRAFT_READERS)
        }
        "/v1/cases" | "/v1/cases/{id}" if get => Need::AnyOf(CASE_READERS),
        "/v1/cases/{id}/decisions" => R(Role::Screener),
        "/v1/drafts/{id}/approve"
        | "/v1/drafts/{id}/reject"
        | "/v1/import-batches/{id}/approve" => R(Role::Approver),
        // An approver refuses a batch; its author abandons their own.
        "/v1/import-batches/{id}/reject" => Need::AnyOf(&[Role::Approver, Role::Editor]),
        "/v1/status" | "/v1/policy/explain" | "/v1/sources" | "/metrics" | "/v1/openapi.json"
        | "/v1/users/me" | "/entities/{id}" | "/algorithms"
            if get =>
        {
            AnyRole
        }
        "/v1/screen" | "/v1/screen/batch" | "/match/{dataset}" | "/search/{dataset}" => {
            R(Role::Screener)
        }
        // Watches name parties under investigation; events carry watch hits and
        // drafts: the officers' roles only.
        "/v1/watches" if get => Need::AnyOf(CASE_READERS),
        "/v1/events" if get => Need::AnyOf(&[Role::Screener, Role::Admin]),
        "/v1/watches" | "/v1/watches/{id}" => R(Role::Screener),
        // Consultations and the sealed-message inbox carry intended transactions
        // and other agencies' answers: the consultant role only.
        "/v1/consultations"
        | "/v1/consultations/{id}"
        | "/v1/consultations/{id}/respond"
        | "/v1/consultations/{id}/decide"
        | "/v1/consultations/{id}/supply-info"
        | "/v1/inbox" => R(Role::Consultant),
        // Flags (issue 21 item 3): officers who screen see them on hits anyway; setting
        // or lifting one sends a sealed message to the entry's origin, which is the
        // consultant's office (as for consultations), not the screener's.
        "/v1/flags" if get => Need::AnyOf(&[Role::Consultant, Role::Screener, Role::Admin]),
        "/v1/flags" => R(Role::Consultant),
        // Whoever made the hit reports it.
        "/v1/hits" => Need::AnyOf(&[Role::Screener, Role::Consultant]),
        "/v1/entries"
        | "/v1/entries/{id}"
        | "/v1/entries/{id}/withdraw"
        | "/v1/import"
        | "/v1/import/withdraw-missing"
        | "/v1/import-batches"
        | "/v1/import-batches/{id}/rows"
        | "/v1/import-batches/{id}/submit" => R(Role::Editor),
        _ => R(Role::Admin),
    }
}

/// 403 naming the role a request needs.
pub fn forbidden(actor: &Actor, need: Need, method: &Method, path: &str) -> ApiError {
    let role = need.names();
    ApiError::with_status(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{method} {path} needs the {role} role; user {:?} has {}",
            actor.name,
            actor
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

impl From<UsersError> for ApiError {
    fn from(e: UsersError) -> Self {
        match e {
            UsersError::InvalidName(_) | UsersError::UnknownRole(_) | UsersError::NoRoles => {
                Self::with_status(StatusCode::BAD_REQUEST, "invalid_field", e.to_string())
            }
            UsersError::Exists(_) => {
                Self::with_status(StatusCode::CONFLICT, "exists", e.to_string())
            }
            UsersError::Unknown(_) => Self::not_found(e.to_string()),
            UsersError::Bootstrap | UsersError::Full => {
                Self::with_status(StatusCode::CONFLICT, "refused", e.to_string())
            }
            UsersError::Store(s) => s.into(),
            UsersError::Random(_) | UsersError::Corrupt(_) => {
                Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// The caller, as `GET /v1/users/me` shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Me {
    user: String,
    id: String,
    #[schema(value_type = Vec<String>)]
    roles: BTreeSet<Role>,
}

#[utoipa::path(get, path = "/v1/users/me", tag = "users",
    responses((status = 200, body = Me), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn me(Extension(actor): Extension<Actor>) -> Json<Me> {
    Json(Me {
        user: actor.name,
        id: actor.id,
        roles: actor.roles,
    })
}

#[utoipa::path(get, path = "/v1/users", tag = "users",
    responses((status = 200, body = Vec<UserInfo>), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(State(state): State<ApiState>) -> Json<Vec<UserInfo>> {
    Json(state.node.users.list())
}

/// Body of `POST /v1/users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    user: String,
    roles: Vec<String>,
}

#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = Issued, description = "The new user's token, shown once"), (status = 400, body = super::openapi::ErrorDoc),
        (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn add(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: NewUser = parse_json(&body)?;
    let mut roles = BTreeSet::new();
    for (i, r) in b.roles.iter().enumerate() {
        roles.insert(r.parse::<Role>().map_err(|e| {
            let mut err = ApiError::from(e);
            err.field = Some(format!("roles[{i}]"));
            err
        })?);
    }
    let issued = state.node.users.add(&actor, &b.user, roles).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

#[utoipa::path(post, path = "/v1/users/{name}/disable", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = UserInfo), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn disable(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(state.node.users.disable(&actor, &name).await?))
}

#[utoipa::path(post, path = "/v1/users/{name}/rotate", tag = "users",
    params(("name" = String, Path)),
    responses((status = 200, body = Issued, description = "The new token, shown once"), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn rotate(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<Issued>, ApiError> {
    Ok(Json(state.node.users.rotate(&actor, &name).await?))
}

/// Records that `actor` did `action` (policy reloads, blocks, backups, source runs):
/// an `acted` event after the action's own events. A failure to record is logged, not
/// returned: the action already happened.
pub(super) async fn record(state: &ApiState, actor: &Actor, action: &str, target: Option<String>) {
    let event = wlnode_runtime::users::acted(
        wlnode_crypto::time::Timestamp::now(),
        &actor.id,
        action,
        target,
    );
    if let Err(e) = state
        .node
        .store
        .call(move |s| s.audit_append(&[event]))
        .await
    {
        tracing::warn!(error = %e, action, "could not record who acted in the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_by_route() {
        let g = Method::GET;
        let p = Method::POST;
        assert_eq!(required_role(&g, "/v1/entries"), Need::AnyRole);
        assert_eq!(required_role(&p, "/v1/entries"), Need::Role(Role::Editor));
        assert_eq!(
            required_role(&Method::PUT, "/v1/entries/{id}"),
            Need::Role(Role::Editor)
        );
        assert_eq!(required_role(&g, "/v1/screen"), Need::Role(Role::Screener));
        assert_eq!(
            required_role(&p, "/match/{dataset}"),
            Need::Role(Role::Screener)
        );
        assert_eq!(
            required_role(&p, "/v1/policy/reload"),
            Need::Role(Role::Admin)
        );
        assert_eq!(required_role(&g, "/v1/users"), Need::Role(Role::Admin));
        assert_eq!(required_role(&g, "/v1/users/me"), Need::AnyRole);
        assert_eq!(
            required_role(&p, "/v1/drafts/{id}/approve"),
            Need::Role(Role::Approver)
        );
        assert_eq!(required_role(&g, "/v1/drafts"), Need::AnyOf(DRAFT_READERS));
        assert_eq!(required_role(&g, "/v1/cases"), Need::AnyOf(CASE_READERS));
        // not in the table: closed
        assert_eq!(required_role(&g, "/v1/new-thing"), Need::Role(Role::Admin));
        assert_eq!(required_role(&p, "/v1/status"), Need::Role(Role::Admin));
    }
}
