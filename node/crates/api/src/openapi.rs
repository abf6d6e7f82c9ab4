//! `GET /v1/openapi.json`: the API described as OpenAPI 3.1 (utoipa), generated from
//! the handler annotations and the entry JSON types, so it cannot drift from the code.

use axum::Json;
use serde::Serialize;
use utoipa::OpenApi;

/// The error body every endpoint returns on failure.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDoc {
    error: ErrorDetailDoc,
    /// The message again, where yente's clients read it.
    detail: String,
}

/// Error details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetailDoc {
    /// Machine-readable code: invalid_json, invalid_field, bad_request, unauthorized,
    /// forbidden (the role needed is named), not_found, not_origin, already_withdrawn, version_limit, store_unavailable, empty_query,
    /// query_too_long, batch_too_large, index_building, stopping.
    code: String,
    /// Human-readable message.
    message: String,
    /// Dotted path of the offending field, for invalid input.
    field: Option<String>,
}

/// The API document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "wlnode local API", description = "Bearer-token protected API of one wlnode node (loopback only)."),
    paths(
        super::entries::add,
        super::entries::amend,
        super::entries::withdraw,
        super::entries::show,
        super::entries::list,
        super::entries::import,
        super::entries::withdraw_missing,
        super::status::status,
        super::peers::block,
        super::peers::unblock,
        super::backup::backup,
        super::screen::get,
        super::screen::post,
        super::screen::batch,
        super::yente::match_entities,
        super::yente::search,
        super::yente::entity,
        super::yente::algorithms,
        super::sources::list,
        super::sources::run,
        super::cases::log,
        super::cases::show,
        super::cases::decide,
        super::consultations::request,
        super::consultations::list,
        super::consultations::show,
        super::consultations::respond,
        super::consultations::decide,
        super::consultations::supply_info,
        super::flags::list,
        super::flags::set,
        super::flags::lift,
        super::consultations::inbox,
        super::consultations::hit,
        super::drafts::list,
        super::drafts::approve,
        super::drafts::reject,
        super::import_batches::open,
        super::import_batches::rows,
        super::import_batches::rows_page,
        super::import_batches::submit,
        super::import_batches::list,
        super::import_batches::show,
        super::import_batches::approve,
        super::import_batches::reject,
        super::users::me,
        super::users::list,
        super::users::add,
        super::users::disable,
        super::users::rotate,
        super::watches::add,
        super::watches::list,
        super::watches::remove,
        super::events::stream,
    ),
    components(schemas(ErrorDoc, ErrorDetailDoc, wlnode_screen::request::ScreenRequest)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
