//! Four-eyes release of imports over the API (see `wlnode_runtime::import_batches`).
//! While `[release] require_approval` is on, `POST /v1/import` is refused and a list is
//! imported as a batch instead:
//!
//! 1. `POST /v1/import-batches` `{source_list, withdraw_missing}` opens one (`editor`);
//! 2. `POST /v1/import-batches/{id}/rows` `{items}` uploads rows, checked as `/v1/import`
//!    checks them (refused rows are answered and not kept);
//! 3. `POST /v1/import-batches/{id}/submit` computes the summary of what release would
//!    change, with its plan digest;
//! 4. another user, an `approver`, releases it with `POST /v1/import-batches/{id}/approve`
//!    `{plan_digest}` or refuses it with `.../reject` `{reason}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::InvalidValue;
use wlnode_runtime::entries::LifecycleError;
use wlnode_runtime::import_batches::{BatchError, BatchRow, BatchState, ImportBatch};
use wlnode_runtime::users::Actor;

use super::entries::ImportRows;
use super::{ApiError, ApiState, parse_json};

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::Unknown(_) => Self::not_found(e.to_string()),
            BatchError::State { .. } => {
                Self::with_status(StatusCode::CONFLICT, "state", e.to_string())
            }
            BatchError::NotAuthor(_) => {
                Self::with_status(StatusCode::FORBIDDEN, "not_author", e.to_string())
            }
            BatchError::OwnBatch(_) => {
                Self::with_status(StatusCode::FORBIDDEN, "own_batch", e.to_string())
            }
            BatchError::Bootstrap => Self::with_status(
                StatusCode::FORBIDDEN,
                "bootstrap_cannot_approve",
                e.to_string(),
            ),
            BatchError::Stale { .. } => {
                Self::with_status(StatusCode::CONFLICT, "stale", e.to_string())
            }
            BatchError::Limit(_) => Self::with_status(StatusCode::CONFLICT, "limit", e.to_string()),
            BatchError::Write(w) => w.into(),
            BatchError::Store(s) => s.into(),
            BatchError::Internal(_) => {
                Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// Opening a batch.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenBody {
    source_list: String,
    /// The rows will be the full list: own entries of the list not in it are withdrawn
    /// at release.
    #[serde(default)]
    withdraw_missing: bool,
}

#[utoipa::path(post, path = "/v1/import-batches", tag = "import batches", request_body = OpenBody,
    responses((status = 201, body = ImportBatch), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn open(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportBatch>), ApiError> {
    let b: OpenBody = parse_json(&body)?;
    super::entries::check_source_list(&b.source_list)?;
    let batch = state
        .node
        .import_batches
        .open(&actor, &b.source_list, b.withdraw_missing)
        .await?;
    Ok((StatusCode::CREATED, Json(batch)))
}

/// Rows to upload.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RowsBody {
    #[schema(value_type = Vec<super::entries::ImportRowBody>)]
    items: Vec<serde_json::Value>,
}

/// [`RowsBody`] read in one pass straight into typed rows, as `POST /v1/import` reads
/// its body: any parse error falls back to [`RowsBody`] and the row-by-row parse, so
/// every body and per-row error stays word for word what it was.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedRowsBody {
    items: Vec<super::entries::ImportRowBody>,
}

/// Reads an upload: one typed pass, else the row-by-row parse and its errors.
fn parse_rows_body(body: &[u8]) -> Result<ImportRows, ApiError> {
    match serde_json::from_slice::<TypedRowsBody>(body) {
        Ok(b) => Ok(ImportRows::Typed(b.items)),
        Err(_) => {
            let b: RowsBody = parse_json(body)?;
            Ok(ImportRows::Values(b.items))
        }
    }
}

/// A refused row.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RowFailure {
    /// Position in this upload.
    index: usize,
    /// Why, naming `items[i]` and the field.
    error: String,
}

/// What an upload kept.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RowsResponse {
    /// Rows kept from this upload.
    accepted: usize,
    /// Rows refused (not kept).
    failed: Vec<RowFailure>,
    /// The batch now.
    batch: ImportBatch,
}

#[utoipa::path(post, path = "/v1/import-batches/{id}/rows", tag = "import batches", request_body = RowsBody,
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = RowsResponse), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn rows(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RowsResponse>, ApiError> {
    let rows = parse_rows_body(&body)?;
    let max = wlnode_runtime::import_batches::MAX_CHUNK_ROWS;
    if rows.len() > max {
        return Err(ApiError::invalid(InvalidValue::new(
            "items",
            format!("at most {max} items per upload, got {}", rows.len()),
        )));
    }
    let mut failed = Vec::new();
    let (_, items) = super::entries::check_import_rows(&state, rows, |index, error| {
        failed.push(RowFailure { index, error });
    });
    let accepted = items.len();
    let rows: Vec<BatchRow> = items
        .into_iter()
        .map(|it| BatchRow {
            source_id: it.source_id,
            entry: it.draft,
        })
        .collect();
    // Nothing kept, nothing stored (an empty chunk would only cost the store).
    let batch = if rows.is_empty() {
        state.node.import_batches.get(&id).await?
    } else {
        state.node.import_batches.append(&actor, &id, rows).await?
    };
    Ok(Json(RowsResponse {
        accepted,
        failed,
        batch,
    }))
}

#[utoipa::path(post, path = "/v1/import-batches/{id}/submit", tag = "import batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = ImportBatch, description = "Awaiting approval, with its summary"), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn submit(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ImportBatch>, ApiError> {
    // Detached: a request that times out or hangs up does not stop the summary half-way.
    let node = state.node.clone();
    let job = tokio::spawn(async move {
        let roster = node.trust.roster();
        node.import_batches
            .submit(&actor, &id, &node.lifecycle, &roster)
            .await
    });
    match job.await {
        Ok(r) => Ok(Json(r?)),
        Err(e) => Err(BatchError::Internal(e.to_string()).into()),
    }
}

/// `?state=open|awaiting_approval|releasing|approved|rejected`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    state: Option<BatchState>,
}

#[utoipa::path(get, path = "/v1/import-batches", tag = "import batches", params(ListParams),
    responses((status = 200, body = Vec<ImportBatch>), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<ImportBatch>>, ApiError> {
    let Query(p) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(state.node.import_batches.list(p.state).await?))
}

#[utoipa::path(get, path = "/v1/import-batches/{id}", tag = "import batches",
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = ImportBatch), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ImportBatch>, ApiError> {
    Ok(Json(state.node.import_batches.get(&id).await?))
}

/// Approving a batch: the plan digest of the summary the approver reviewed.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApproveBody {
    plan_digest: String,
}

#[utoipa::path(post, path = "/v1/import-batches/{id}/approve", tag = "import batches", request_body = ApproveBody,
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = ImportBatch, description = "Released: signed and sent on"), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc, description = "forbidden (not an approver), own_batch or bootstrap_cannot_approve"), (status = 404, body = super::openapi::ErrorDoc),
        (status = 409, body = super::openapi::ErrorDoc, description = "stale: the plan changed; the batch holds the new summary")))]
pub(super) async fn approve(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ImportBatch>, ApiError> {
    let b: ApproveBody = parse_json(&body)?;
    // The release runs detached from the request: a timeout or a client that hangs up
    // never stops it between chunks, and what it wrote is always passed on.
    let node = state.node.clone();
    let job = tokio::spawn(async move {
        let roster = node.trust.roster();
        let r = node
            .import_batches
            .approve(&actor, &id, &b.plan_digest, &node.lifecycle, &roster)
            .await;
        let reports = match &r {
            Ok((_, reports)) | Err((_, reports)) => reports,
        };
        for report in reports {
            node.ingested.after_ingest(report, "local");
        }
        r.map(|(batch, _)| batch).map_err(|(e, _)| e)
    });
    match job.await {
        Ok(Ok(batch)) => Ok(Json(batch)),
        Ok(Err(BatchError::Write(LifecycleError::Store(e)))) => {
            state.node.ingested.write_failed(&e);
            Err(e.into())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(BatchError::Internal(e.to_string()).into()),
    }
}

/// `?offset=N&limit=M` (limit 1 to 500, default 100).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct RowsParams {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// A page of a batch's rows.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct RowsPage {
    /// Position of the first row.
    offset: usize,
    /// Rows in the batch.
    total: usize,
    /// The rows, as uploaded (empty once the batch is decided: its rows are gone).
    #[schema(value_type = Vec<Object>)]
    rows: Vec<BatchRow>,
}

#[utoipa::path(get, path = "/v1/import-batches/{id}/rows", tag = "import batches",
    params(("id" = String, Path, description = "Batch id"), RowsParams),
    responses((status = 200, body = RowsPage), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn rows_page(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<RowsParams>, QueryRejection>,
) -> Result<Json<RowsPage>, ApiError> {
    let Query(p) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(InvalidValue::new(
            "limit",
            format!("must be 1 to 500, got {limit}"),
        )));
    }
    let (batch, rows) = state
        .node
        .import_batches
        .rows_page(&id, p.offset, limit)
        .await?;
    Ok(Json(RowsPage {
        offset: p.offset,
        total: batch.rows,
        rows,
    }))
}

#[utoipa::path(post, path = "/v1/import-batches/{id}/reject", tag = "import batches", request_body = super::drafts::RejectBody,
    params(("id" = String, Path, description = "Batch id")),
    responses((status = 200, body = ImportBatch), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn reject(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ImportBatch>, ApiError> {
    let reason = super::drafts::reject_reason(&body)?;
    Ok(Json(
        state
            .node
            .import_batches
            .reject(&actor, &id, reason)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str) -> serde_json::Value {
        serde_json::json!({
            "subject": {"kind": "organization", "name": name, "country": "AE"},
            "reason": "diversion-risk",
            "categories": ["3A001"]
        })
    }

    fn body(items: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap()
    }

    /// The row-by-row parse of an upload: the reference the one-pass parse agrees with.
    fn by_value(body: &[u8]) -> Vec<Result<super::super::entries::ImportRowBody, String>> {
        let b: RowsBody = parse_json(body).unwrap();
        b.items
            .into_iter()
            .map(super::super::entries::row_from_value)
            .collect()
    }

    #[test]
    fn good_upload_rows_are_parsed_once_into_the_same_typed_rows() {
        let b = body(
            (0..3)
                .map(|i| serde_json::json!({"source_id": i.to_string(), "entry": draft(&format!("Co {i}"))}))
                .collect(),
        );
        let ImportRows::Typed(rows) = parse_rows_body(&b).unwrap() else {
            panic!("a good upload takes the one-pass parse")
        };
        let reference = by_value(&b);
        assert_eq!(rows.len(), reference.len());
        for (row, r) in rows.iter().zip(reference) {
            let r = r.unwrap();
            assert_eq!((&row.source_id, &row.entry), (&r.source_id, &r.entry));
        }
    }

    #[test]
    fn a_bad_upload_row_keeps_its_own_error_and_the_good_rows_parse() {
        let good = serde_json::json!({"source_id": "ok", "entry": draft("Good Co")});
        let mut wrong_type = draft("X");
        wrong_type["subject"]["name"] = 7.into();
        for (bad, want) in [
            (
                serde_json::json!({"source_id": "1", "entry": wrong_type}),
                "entry.subject.name: invalid type: integer `7`",
            ),
            (
                serde_json::json!({"entry": draft("Z")}),
                ".: missing field `source_id`",
            ),
        ] {
            let b = body(vec![good.clone(), bad]);
            let ImportRows::Values(values) = parse_rows_body(&b).unwrap() else {
                panic!("an upload with a bad row is parsed row by row")
            };
            let rows: Vec<_> = values
                .into_iter()
                .map(super::super::entries::row_from_value)
                .collect();
            assert!(rows[0].is_ok());
            let err = rows[1].as_ref().err().expect("the bad row fails");
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn upload_body_errors_are_unchanged() {
        let bodies: [&[u8]; 4] = [
            b"{}",
            b"{\"items\": {}}",
            b"{\"items\": [",
            b"{\"items\": [], \"extra\": 1}",
        ];
        for b in bodies {
            let got = parse_rows_body(b).err().expect("refused");
            let want = parse_json::<RowsBody>(b).err().expect("refused");
            assert_eq!(
                (got.code, &got.field, &got.message),
                (want.code, &want.field, &want.message)
            );
        }
    }
}
