//! Entry endpoints: add, amend, withdraw, show, list (paginated), import.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryDraft, EntryId, InvalidValue, Status};
use wlnode_crypto::time::Timestamp;
use wlnode_runtime::drafts::DraftOp;
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState, parse_json};
use wlnode_runtime::entries::{
    EntryView, ImportItem, ImportOutcome, LifecycleError, Written, check_against_roster,
};
use wlnode_store::EntryFilter;
use wlnode_types::{EntryKey, IngestReport};

fn entry_id(s: &str) -> Result<EntryId, ApiError> {
    EntryId::from_hex(s).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "id",
            format!("{s:?} is not an entry id (32 hex characters)"),
        ))
    })
}

fn finish_write(
    state: &ApiState,
    r: Result<(Written, IngestReport), LifecycleError>,
) -> Result<Written, ApiError> {
    match r {
        Ok((w, report)) => {
            state.node.ingested.after_ingest(&report, "local");
            Ok(w)
        }
        Err(LifecycleError::Store(e)) => {
            state.node.ingested.write_failed(&e);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn draft_for_roster(state: &ApiState, body: &[u8]) -> Result<EntryDraft, ApiError> {
    let draft: EntryDraft = parse_json(body)?;
    draft.validate().map_err(ApiError::invalid)?;
    check_against_roster(&draft, &state.node.trust.roster()).map_err(ApiError::invalid)?;
    Ok(draft)
}

#[utoipa::path(post, path = "/v1/entries", tag = "entries", request_body = EntryDraft,
    responses((status = 201, body = Written), (status = 202, description = "A draft awaiting approval ([release] require_approval)"), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn add(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let draft = draft_for_roster(&state, &body)?;
    if super::drafts::needs_approval(&state, &draft.distribution.sensitivity) {
        return super::drafts::create(&state, &actor, DraftOp::Add { entry: draft }).await;
    }
    let lifecycle = state.node.lifecycle.acting_as(&actor.id);
    let w = finish_write(&state, lifecycle.add(draft).await)?;
    Ok((StatusCode::CREATED, Json(w)).into_response())
}

#[utoipa::path(put, path = "/v1/entries/{id}", tag = "entries", request_body = EntryDraft,
    params(("id" = String, Path, description = "Entry id (hex)"), ForceParams),
    responses((status = 200, body = Written), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, description = "awaiting_reconcile: local writes are held after a restore or a store reopen", body = super::openapi::ErrorDoc)))]
pub(super) async fn amend(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    force: Result<Query<ForceParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = entry_id(&id)?;
    let draft = draft_for_roster(&state, &body)?;
    let lifecycle = writer(&state, &actor, force)?;
    // Both the current and the new label count: lowering a label skips nothing.
    let (current, base) = super::drafts::own_head(&state, id).await?;
    if super::drafts::needs_approval(&state, &draft.distribution.sensitivity)
        || super::drafts::needs_approval(&state, &current)
    {
        let op = DraftOp::Amend {
            entry_id: id,
            entry: draft,
            base,
        };
        return super::drafts::create(&state, &actor, op).await;
    }
    finish_write(&state, lifecycle.amend(id, draft).await).map(|w| Json(w).into_response())
}

/// `?force=true`: write even while local writes are held after a restore or a store
/// reopen (409 `awaiting_reconcile` otherwise).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ForceParams {
    /// Write even while local writes are held.
    #[serde(default)]
    pub(super) force: bool,
}

/// The writer a request asks for: attributed to its caller, and forcing past a hold on
/// local writes, or not.
fn writer(
    state: &ApiState,
    actor: &Actor,
    force: Result<Query<ForceParams>, QueryRejection>,
) -> Result<wlnode_runtime::entries::Lifecycle, ApiError> {
    let Query(p) = force.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let lifecycle = state.node.lifecycle.acting_as(&actor.id);
    Ok(if p.force {
        lifecycle.forcing()
    } else {
        lifecycle
    })
}

/// Body of a withdrawal.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WithdrawBody {
    reason: String,
}

#[utoipa::path(post, path = "/v1/entries/{id}/withdraw", tag = "entries", request_body = WithdrawBody,
    params(("id" = String, Path, description = "Entry id (hex)"), ForceParams),
    responses((status = 200, body = Written), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn withdraw(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    force: Result<Query<ForceParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = entry_id(&id)?;
    let body: WithdrawBody = parse_json(&body)?;
    wlnode_crypto::model::check_text(&body.reason, wlnode_crypto::model::MAX_LONG_TEXT)
        .map_err(|e| ApiError::invalid(e.within("reason")))?;
    let lifecycle = writer(&state, &actor, force)?;
    let (current, base) = super::drafts::own_head(&state, id).await?;
    if super::drafts::needs_approval(&state, &current) {
        let op = DraftOp::Withdraw {
            entry_id: id,
            reason: body.reason,
            base,
        };
        return super::drafts::create(&state, &actor, op).await;
    }
    finish_write(&state, lifecycle.withdraw(id, body.reason).await).map(|w| Json(w).into_response())
}

#[derive(Deserialize)]
pub(super) struct ShowParams {
    origin: Option<String>,
}

pub(super) async fn view(
    state: &ApiState,
    key: EntryKey,
    st: wlnode_types::EntryState,
) -> Result<EntryView, ApiError> {
    let head = state
        .node
        .store
        .record(st.head)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("head record {} is missing", st.head)))?;
    Ok(EntryView::new(&key, &st, &head, Timestamp::now().date()))
}

#[utoipa::path(get, path = "/v1/entries/{id}", tag = "entries",
    params(("id" = String, Path, description = "Entry id (hex)"), ("origin" = Option<String>, Query, description = "Origin agency, when several origins use one id")),
    responses((status = 200, body = EntryView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(p): Query<ShowParams>,
) -> Result<Json<EntryView>, ApiError> {
    let id = entry_id(&id)?;
    let origin = p
        .origin
        .map(|o| AgencyCode::new(o).map_err(|e| ApiError::invalid(e.within("origin"))))
        .transpose()?;
    let mut found = state.node.store.entries_by_id(id).await?;
    if let Some(o) = &origin {
        found.retain(|(k, _)| k.origin == *o);
    }
    // Prefer this agency's own entry when several origins used the same id.
    found.sort_by_key(|(k, _)| k.origin != state.node.info.agency);
    let (key, st) = found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("entry {id} not found")))?;
    Ok(Json(view(&state, key, st).await?))
}

#[derive(Deserialize)]
pub(super) struct ListParams {
    pub(super) origin: Option<String>,
    pub(super) status: Option<String>,
    pub(super) updated_since: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) cursor: Option<String>,
}

/// A page of entries.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Page {
    pub(super) entries: Vec<EntryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) next_cursor: Option<String>,
}

/// Default and maximum page sizes.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page.
pub const MAX_LIMIT: usize = 1000;

#[utoipa::path(get, path = "/v1/entries", tag = "entries",
    params(("origin" = Option<String>, Query), ("status" = Option<String>, Query, description = "active or withdrawn"),
        ("updated_since" = Option<String>, Query, description = "RFC 3339"), ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Page>, ApiError> {
    let bad = |field: &str, e: String| ApiError::invalid(InvalidValue::new(field, e));
    let filter = EntryFilter {
        origin: p
            .origin
            .filter(|s| !s.is_empty())
            .map(|o| AgencyCode::new(o).map_err(|e| bad("origin", e.message)))
            .transpose()?,
        status: p
            .status
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Status>().map_err(|e| bad("status", e.message)))
            .transpose()?,
        updated_since: p
            .updated_since
            .filter(|s| !s.is_empty())
            .map(|s| Timestamp::parse_rfc3339(&s).map_err(|e| bad("updated_since", e.to_string())))
            .transpose()?,
    };
    let limit = match p.limit.filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(
                    "limit",
                    format!("{l:?} is not a number from 1 to {MAX_LIMIT}"),
                ));
            }
        },
    };
    let after = p
        .cursor
        .filter(|s| !s.is_empty())
        .map(|c| {
            hex::decode(&c)
                .ok()
                .and_then(|b| EntryKey::from_bytes(&b))
                .ok_or_else(|| bad("cursor", "not a cursor returned by this API".into()))
        })
        .transpose()?;
    let (page, next) = state.node.store.list_entries(filter, after, limit).await?;
    let mut entries = Vec::with_capacity(page.len());
    for (k, st) in page {
        entries.push(view(&state, k, st).await?);
    }
    Ok(Json(Page {
        entries,
        next_cursor: next.map(|k| hex::encode(k.to_bytes())),
    }))
}

/// An import batch.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportBody {
    source_list: String,
    #[schema(value_type = Vec<ImportRowBody>)]
    items: Vec<serde_json::Value>,
}

/// One import row.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportRowBody {
    pub(super) source_id: String,
    pub(super) entry: EntryDraft,
}

/// An import batch read in one pass straight into typed rows: the common case, a body
/// whose every row parses. Any parse error sends the handler back to [`ImportBody`]
/// (rows as JSON values, each row parsed on its own), so a bad row still gets the same
/// per-row error naming `items[i]` and the field, and the good rows are still imported.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedImportBody {
    source_list: String,
    items: Vec<ImportRowBody>,
}

/// The rows of an import body: typed when the whole body parsed in one pass, else JSON
/// values to be parsed row by row.
pub(super) enum ImportRows {
    Typed(Vec<ImportRowBody>),
    Values(Vec<serde_json::Value>),
}

impl ImportRows {
    pub(super) fn len(&self) -> usize {
        match self {
            ImportRows::Typed(v) => v.len(),
            ImportRows::Values(v) => v.len(),
        }
    }
}

/// Reads an import body: one typed pass, falling back to the row-by-row parse (and its
/// errors, unchanged) when that pass fails anywhere.
fn parse_import_body(body: &[u8]) -> Result<(String, ImportRows), ApiError> {
    match serde_json::from_slice::<TypedImportBody>(body) {
        Ok(b) => Ok((b.source_list, ImportRows::Typed(b.items))),
        Err(_) => {
            let b: ImportBody = parse_json(body)?;
            Ok((b.source_list, ImportRows::Values(b.items)))
        }
    }
}

/// Parses one import row held as a JSON value; the error names the field path.
pub(super) fn row_from_value(v: serde_json::Value) -> Result<ImportRowBody, String> {
    serde_path_to_error::deserialize::<_, ImportRowBody>(v)
        .map_err(|e| format!("{}: {}", e.path(), e.inner()))
}

/// Counts per outcome.
#[derive(Serialize, Default, utoipa::ToSchema)]
pub(super) struct ImportSummary {
    imported: usize,
    amended: usize,
    unchanged: usize,
    failed: usize,
}

/// Result of an import batch.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ImportResponse {
    results: Vec<ImportOutcome>,
    summary: ImportSummary,
}

pub(super) fn check_source_list(s: &str) -> Result<(), ApiError> {
    wlnode_crypto::model::check_text(s, 128).map_err(|e| ApiError::invalid(e.within("source_list")))
}

/// Most bytes of a row's source id.
pub const MAX_SOURCE_ID_BYTES: usize = 128;

/// A source id is 1 to [`MAX_SOURCE_ID_BYTES`] bytes without control characters: it
/// names the row in summaries approvers read on a terminal.
fn check_source_id(id: &str) -> Result<(), String> {
    if id.trim().is_empty() || id.len() > MAX_SOURCE_ID_BYTES {
        return Err(format!(
            "source_id: must be 1 to {MAX_SOURCE_ID_BYTES} bytes, got {}",
            id.len()
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("source_id: control characters are not allowed".into());
    }
    Ok(())
}

/// Parses and checks import rows against the entry rules and the roster: the rows that
/// pass with their positions, and `failed(position, error)` for the others (the error
/// names `items[i]` and the field).
fn check_rows(
    state: &ApiState,
    rows: Vec<serde_json::Value>,
    failed: impl FnMut(usize, String),
) -> (Vec<usize>, Vec<ImportItem>) {
    check_parsed_rows(state, rows.into_iter().map(row_from_value), failed)
}

/// [`check_rows`] over the rows of an import body, typed or not: the one check of
/// `POST /v1/import` and of import-batch uploads.
pub(super) fn check_import_rows(
    state: &ApiState,
    rows: ImportRows,
    failed: impl FnMut(usize, String),
) -> (Vec<usize>, Vec<ImportItem>) {
    match rows {
        ImportRows::Typed(rows) => check_parsed_rows(state, rows.into_iter().map(Ok), failed),
        ImportRows::Values(rows) => check_rows(state, rows, failed),
    }
}

/// [`check_rows`] over rows already parsed (or refused by the parser with an error
/// naming the field).
fn check_parsed_rows(
    state: &ApiState,
    rows: impl Iterator<Item = Result<ImportRowBody, String>>,
    mut failed: impl FnMut(usize, String),
) -> (Vec<usize>, Vec<ImportItem>) {
    let roster = state.node.trust.roster();
    let mut items = Vec::with_capacity(rows.size_hint().0);
    let mut positions = Vec::with_capacity(rows.size_hint().0);
    for (i, parsed) in rows.enumerate() {
        let parsed = parsed.and_then(|row| {
            check_source_id(&row.source_id)?;
            row.entry.validate().map_err(|e| e.to_string())?;
            check_against_roster(&row.entry, &roster).map_err(|e| e.to_string())?;
            Ok(row)
        });
        match parsed {
            Ok(row) => {
                positions.push(i);
                items.push(ImportItem {
                    source_id: row.source_id,
                    draft: row.entry,
                });
            }
            Err(error) => failed(i, format!("items[{i}].{error}")),
        }
    }
    (positions, items)
}

/// Most rows in one import request.
pub const MAX_IMPORT_ITEMS: usize = 5000;

#[utoipa::path(post, path = "/v1/import", tag = "entries", request_body = ImportBody, params(ForceParams),
    responses((status = 200, body = ImportResponse), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 409, description = "awaiting_reconcile: local writes are held after a restore or a store reopen", body = super::openapi::ErrorDoc), (status = 503, description = "store_unavailable, or earlier_commit_failed: the batch was judged while the import before it was committing, and that commit failed; nothing of this batch was written", body = super::openapi::ErrorDoc)))]
pub(super) async fn import(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    force: Result<Query<ForceParams>, QueryRejection>,
    body: Bytes,
) -> Result<Json<ImportResponse>, ApiError> {
    super::drafts::refuse_bulk(&state, "an import")?;
    let lifecycle = writer(&state, &actor, force)?;
    let (source_list, rows) = parse_import_body(&body)?;
    check_source_list(&source_list)?;
    if rows.len() > MAX_IMPORT_ITEMS {
        return Err(ApiError::invalid(InvalidValue::new(
            "items",
            format!(
                "at most {MAX_IMPORT_ITEMS} items per request, got {}",
                rows.len()
            ),
        )));
    }
    let mut results: Vec<Option<ImportOutcome>> = vec![None; rows.len()];
    let record_failure = |i: usize, error: String| {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(ImportOutcome::Failed { error });
        }
    };
    let (positions, items) = check_import_rows(&state, rows, record_failure);
    let (outcomes, report) = match lifecycle.import(&source_list, items).await {
        Ok(r) => r,
        Err(LifecycleError::Store(e)) => {
            state.node.ingested.write_failed(&e);
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(r) = &report {
        state.node.ingested.after_ingest(r, "local");
    }
    for (pos, o) in positions.into_iter().zip(outcomes) {
        if let Some(slot) = results.get_mut(pos) {
            *slot = Some(o);
        }
    }
    let results: Vec<ImportOutcome> = results
        .into_iter()
        .map(|o| {
            o.unwrap_or(ImportOutcome::Failed {
                error: "not processed".into(),
            })
        })
        .collect();
    let mut summary = ImportSummary::default();
    for r in &results {
        match r {
            ImportOutcome::Imported { .. } => summary.imported += 1,
            ImportOutcome::Amended { .. } => summary.amended += 1,
            ImportOutcome::Unchanged { .. } => summary.unchanged += 1,
            ImportOutcome::Failed { .. } => summary.failed += 1,
        }
    }
    Ok(Json(ImportResponse { results, summary }))
}

/// Withdraw entries of a source list that vanished from it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WithdrawMissingBody {
    source_list: String,
    keep: Vec<String>,
    #[serde(default = "default_missing_reason")]
    reason: String,
}

fn default_missing_reason() -> String {
    "no longer in the source list".into()
}

/// Entries withdrawn.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct WithdrawMissingResponse {
    withdrawn: Vec<Written>,
}

#[utoipa::path(post, path = "/v1/import/withdraw-missing", tag = "entries", request_body = WithdrawMissingBody, params(ForceParams),
    responses((status = 200, body = WithdrawMissingResponse), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 409, description = "awaiting_reconcile: local writes are held after a restore or a store reopen", body = super::openapi::ErrorDoc)))]
pub(super) async fn withdraw_missing(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    force: Result<Query<ForceParams>, QueryRejection>,
    body: Bytes,
) -> Result<Json<WithdrawMissingResponse>, ApiError> {
    super::drafts::refuse_bulk(&state, "withdraw-missing")?;
    let lifecycle = writer(&state, &actor, force)?;
    let body: WithdrawMissingBody = parse_json(&body)?;
    check_source_list(&body.source_list)?;
    let keep: HashSet<String> = body.keep.into_iter().collect();
    match lifecycle
        .withdraw_missing(&body.source_list, &keep, &body.reason)
        .await
    {
        Ok((withdrawn, report)) => {
            if let Some(r) = &report {
                state.node.ingested.after_ingest(r, "local");
            }
            Ok(Json(WithdrawMissingResponse { withdrawn }))
        }
        Err(LifecycleError::Store(e)) => {
            state.node.ingested.write_failed(&e);
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(name: &str) -> serde_json::Value {
        serde_json::json!({
            "subject": {"kind": "organization", "name": name, "country": "AE"},
            "reason": "diversion-risk",
            "categories": ["3A001"],
            "distribution": {"scope": "federation", "sensitivity": "restricted"}
        })
    }

    fn body(items: Vec<serde_json::Value>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"source_list": "list", "items": items})).unwrap()
    }

    /// What the row-by-row parse gives for each row: the reference the one-pass parse
    /// must agree with.
    fn by_value(body: &[u8]) -> Vec<Result<ImportRowBody, String>> {
        let b: ImportBody = parse_json(body).unwrap();
        b.items.into_iter().map(row_from_value).collect()
    }

    #[test]
    fn good_rows_are_parsed_once_into_the_same_typed_rows() {
        let b = body(
            (0..3)
                .map(|i| serde_json::json!({"source_id": i.to_string(), "entry": draft(&format!("Co {i}"))}))
                .collect(),
        );
        let (list, rows) = parse_import_body(&b).unwrap();
        assert_eq!(list, "list");
        let ImportRows::Typed(rows) = rows else {
            panic!("a good body takes the one-pass parse")
        };
        let reference = by_value(&b);
        assert_eq!(rows.len(), reference.len());
        for (row, r) in rows.iter().zip(reference) {
            let r = r.unwrap();
            assert_eq!((&row.source_id, &row.entry), (&r.source_id, &r.entry));
        }
    }

    #[test]
    fn a_bad_row_still_gets_its_own_error_and_the_good_rows_parse() {
        let good = serde_json::json!({"source_id": "ok", "entry": draft("Good Co")});
        let mut wrong_type = draft("X");
        wrong_type["subject"]["name"] = 7.into();
        let mut unknown = draft("Y");
        unknown["subject"]["nmae"] = "Y".into();
        let cases = [
            (
                serde_json::json!({"source_id": "1", "entry": wrong_type}),
                "entry.subject.name: invalid type: integer `7`",
            ),
            (
                serde_json::json!({"source_id": "2", "entry": unknown}),
                "entry.subject.nmae: unknown field `nmae`",
            ),
            (
                serde_json::json!({"entry": draft("Z")}),
                ".: missing field `source_id`",
            ),
            (serde_json::json!("not a row"), ".: invalid type: string"),
        ];
        for (bad, want) in cases {
            let b = body(vec![good.clone(), bad]);
            let (_, rows) = parse_import_body(&b).unwrap();
            let ImportRows::Values(values) = rows else {
                panic!("a body with a bad row is parsed row by row")
            };
            let rows: Vec<_> = values.into_iter().map(row_from_value).collect();
            assert!(rows[0].is_ok());
            let err = rows[1].as_ref().err().expect("the bad row fails");
            assert!(err.starts_with(want), "{err:?} should start with {want:?}");
        }
    }

    #[test]
    fn body_level_errors_are_unchanged() {
        let bodies: [&[u8]; 4] = [
            b"{\"items\": []}",
            b"{\"source_list\": \"l\", \"items\": {}}",
            b"{\"source_list\": \"l\", \"items\": [",
            b"{\"source_list\": \"l\", \"items\": [], \"extra\": 1}",
        ];
        for b in bodies {
            let got = parse_import_body(b).err().expect("refused");
            let want = parse_json::<ImportBody>(b).err().expect("refused");
            assert_eq!(
                (got.code, &got.field, &got.message),
                (want.code, &want.field, &want.message)
            );
        }
    }
}
