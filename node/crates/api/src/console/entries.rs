//! Entry pages: the list (filters and paging), an entry's detail (every version with
//! its signer and time, the distribution and field scopes, disputes), the forms to add,
//! amend and withdraw (through the API's own handlers, so four-eyes makes drafts
//! exactly as over the API), and the approvals queue (`/ui/drafts`).

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use wlnode_crypto::model::{AgencyCode, EntryId};
use wlnode_runtime::drafts::{Draft, DraftOp, DraftState};
use wlnode_runtime::entries::EntryView;
use wlnode_runtime::import_batches::{BatchState, BatchSummary, ImportBatch};
use wlnode_runtime::users::Role;

use super::screen::label;
use super::text::Text;
use super::{Ctx, field, form_pairs, g, html_response, json_of, page, see_other, when};
use crate::{ApiError, ApiState};

#[derive(serde::Deserialize, Default)]
pub(super) struct ListQuery {
    origin: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    category: Option<String>,
    review_due: Option<String>,
    disputed: Option<String>,
    cursor: Option<String>,
    /// A notice after a write (`written` or `drafted`).
    done: Option<String>,
}

const PAGE: usize = 50;

fn opt(s: &Option<String>) -> Option<String> {
    s.clone().filter(|v| !v.trim().is_empty())
}

pub(super) async fn list(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = ctx.t;
    let params = crate::entries::ListParams {
        origin: opt(&q.origin),
        status: opt(&q.status),
        updated_since: None,
        limit: Some(PAGE.to_string()),
        cursor: opt(&q.cursor),
    };
    let page_of = match crate::entries::list(State(state), Query(params)).await {
        Ok(axum::Json(p)) => p,
        Err(e) => return e.page(&ctx),
    };
    let reason = opt(&q.reason);
    let category = opt(&q.category);
    let entries: Vec<&EntryView> = page_of
        .entries
        .iter()
        .filter(|v| reason.as_ref().is_none_or(|r| label(&v.reason) == *r))
        .filter(|v| {
            category
                .as_ref()
                .is_none_or(|c| v.categories.iter().any(|x| label(x) == *c))
        })
        .filter(|v| q.review_due.is_none() || v.review_due)
        .filter(|v| q.disputed.is_none() || v.disputed)
        .collect();
    let mut next = None;
    if let Some(c) = &page_of.next_cursor {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("origin", &q.origin),
            ("status", &q.status),
            ("reason", &q.reason),
            ("category", &q.category),
            ("review_due", &q.review_due),
            ("disputed", &q.disputed),
        ] {
            if let Some(v) = opt(v) {
                pairs.push((k, v));
            }
        }
        pairs.push(("cursor", c.clone()));
        next = Some(format!(
            "/ui/entries?{}",
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        ));
    }
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    let status = v(&q.status);
    let body = html! {
        @match q.done.as_deref() {
            Some("written") => p.notice role="status" #notice { (t.written) },
            Some("drafted") => p.notice role="status" #notice { (t.drafted) },
            _ => {}
        }
        @if ctx.can("GET", "/ui/entries/new") {
            p { a.button #new-entry href="/ui/entries/new" { (t.entry_new) } }
        }
        form method="get" action="/ui/entries" role="search" {
            div.grid {
                p { label for="f-origin" { (t.filter_origin) } input #f-origin name="origin" type="text" value=(v(&q.origin)); }
                p { label for="f-status" { (t.filter_status) }
                    select #f-status name="status" {
                        @for (val, l) in [("", t.status_any), ("active", t.status_active), ("withdrawn", t.status_withdrawn)] {
                            option value=(val) selected[status == val] { (l) }
                        }
                    }
                }
                p { label for="f-reason" { (t.filter_reason) } input #f-reason name="reason" type="text" value=(v(&q.reason)); }
                p { label for="f-category" { (t.filter_category) } input #f-category name="category" type="text" value=(v(&q.category)); }
                p { input #f-review name="review_due" type="checkbox" value="1" checked[q.review_due.is_some()]; label for="f-review" { (t.filter_review_due) } }
                p { input #f-disputed name="disputed" type="checkbox" value="1" checked[q.disputed.is_some()]; label for="f-disputed" { (t.filter_disputed) } }
            }
            p { button type="submit" { (t.filter_apply) } " " small { (t.filter_page_note) } }
        }
        table #entries {
            thead { tr {
                th scope="col" { (t.col_name) } th scope="col" { (t.col_origin) } th scope="col" { (t.col_status) }
                th scope="col" { (t.col_reason) } th scope="col" { (t.col_version) } th scope="col" { (t.col_updated) }
                th scope="col" { (t.filter_review_due) } th scope="col" { (t.filter_disputed) }
            } }
            tbody {
                @for e in &entries {
                    tr data-entry-id=(e.entry_id.to_hex()) {
                        td { a href=(format!("/ui/entries/{}?origin={}", e.entry_id.to_hex(), e.origin)) { (e.subject.name.clone().unwrap_or_else(|| e.entry_id.to_hex())) } }
                        td { (e.origin.to_string()) }
                        td { (label(&e.status)) }
                        td { (label(&e.reason)) }
                        td { (e.version) }
                        td { (super::time_el(t, e.updated_at)) }
                        td { (if e.review_due { t.yes } else { t.no }) }
                        td { (if e.disputed { t.yes } else { t.no }) }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a #next-page href=(n) { (t.next_page) } } }
    };
    html_response(page(Some(&ctx), t, t.entries_title, body))
}

#[derive(serde::Deserialize)]
pub(super) struct ShowQuery {
    origin: Option<String>,
    done: Option<String>,
}

async fn find(
    state: &ApiState,
    id: &str,
    origin: Option<String>,
) -> Result<(wlnode_types::EntryKey, wlnode_types::EntryState), ApiError> {
    let id = EntryId::from_hex(id)
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not an entry id")))?;
    let mut found = state.node.store.entries_by_id(id).await?;
    if let Some(o) = origin.filter(|o| !o.is_empty()) {
        let o = AgencyCode::new(o).map_err(|e| ApiError::invalid(e.within("origin")))?;
        found.retain(|(k, _)| k.origin == o);
    }
    found.sort_by_key(|(k, _)| k.origin != state.node.info.agency);
    found
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("entry {} not found", id.to_hex())))
}

pub(super) async fn show(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    match show_inner(&state, &ctx, &id, q).await {
        Ok(r) => r,
        Err(e) => e.page(&ctx),
    }
}

async fn show_inner(
    state: &ApiState,
    ctx: &Ctx,
    id: &str,
    q: ShowQuery,
) -> Result<Response, ApiError> {
    let t = ctx.t;
    let (key, st) = find(state, id, q.origin).await?;
    let view = crate::entries::view(state, key.clone(), st).await?;
    let k = key.clone();
    let versions = state.node.store.call(move |s| s.entry_versions(&k)).await?;
    let mut rows = Vec::new();
    for (version, ids) in &versions {
        for rid in ids {
            if let Some(rec) = state.node.store.record(*rid).await? {
                rows.push((*version, *rid, ids.len() > 1, rec));
            }
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let record_versions: Vec<(String, u64)> = rows.iter().map(|r| (r.1.to_hex(), r.0)).collect();
    let (sent, scanned_all) = sends(state, &record_versions).await?;
    let own = view.origin == state.node.info.agency;
    let eid = view.entry_id.to_hex();
    let d = &view.distribution;
    let s = &view.subject;
    let body = html! {
        @match q.done.as_deref() {
            Some("written") => p.notice role="status" #notice { (t.written) },
            Some("drafted") => p.notice role="status" #notice { (t.drafted) },
            _ => {}
        }
        dl.entry #entry data-entry-id=(eid) {
            dt { (t.col_origin) } dd { (view.origin.to_string()) }
            dt { (t.col_status) } dd #entry-status { (label(&view.status)) }
            dt { (t.col_version) } dd { (view.version) }
            dt { (t.entry_subject) } dd { (label(&s.kind)) ": " (s.name.clone().unwrap_or_default())
                @if let Some(c) = &s.country { " (" (label(c)) ")" } }
            @if !s.aliases.is_empty() { dt { (t.entry_aliases) } dd { (s.aliases.join("; ")) } }
            @if !s.identifiers.is_empty() { dt { (t.entry_identifiers) } dd {
                (s.identifiers.iter().map(identifier).collect::<Vec<_>>().join("; ")) } }
            dt { (t.col_reason) } dd { (label(&view.reason)) }
            dt { (t.entry_categories) } dd { (view.categories.iter().map(label).collect::<Vec<_>>().join(", ")) }
            @if let Some(lb) = &view.legal_basis { dt { (t.col_legal_basis) } dd { (lb) } }
            @if let Some(r) = &view.remarks { dt { (t.entry_remarks) } dd { (r) } }
            @if let Some(r) = &view.review_by { dt { (t.entry_review_by) } dd { (r.to_string()) } }
            @if !view.withheld.is_empty() { dt { (t.entry_withheld_here) } dd { (view.withheld.iter().map(label).collect::<Vec<_>>().join(", ")) } }
        }
        h2 { (t.entry_distribution) }
        dl {
            dt { (t.dist_scope) } dd { (label(&d.scope)) }
            @if !d.groups.is_empty() { dt { (t.dist_groups) } dd { (d.groups.iter().map(label).collect::<Vec<_>>().join(", ")) } }
            dt { (t.dist_sensitivity) } dd { (label(&d.sensitivity)) }
            dt { (t.dist_max_hops) } dd { (d.max_hops) }
            dt { (t.dist_field_scopes) } dd { code { (serde_json::to_string(&d.fields).unwrap_or_default()) } }
        }
        p { a href=(format!("/ui/policy?entry={eid}&origin={}", view.origin)) { (t.entry_explain_link) } }
        h2 { (t.entry_versions) }
        table #versions {
            thead { tr {
                th scope="col" { (t.col_version) } th scope="col" { (t.col_record) } th scope="col" { (t.col_status) }
                th scope="col" { (t.col_issued) } th scope="col" { (t.col_signed_by) } th scope="col" { (t.col_received_from) }
            } }
            tbody {
                @for (v, rid, disputed, rec) in &rows {
                    @let h = rec.record.header();
                    tr.disputed[*disputed] {
                        td { (v) } td { code { (rid.to_hex()) } } td { (label(&h.status)) }
                        td { (super::time_el(t, h.issued_at)) }
                        td { code { (h.signer_key.to_string()) } }
                        td { (rec.received_from.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "-".into())) " (" (rec.hops) ")" }
                    }
                }
            }
        }
        h2 { (t.entry_disputes) }
        @if rows.iter().any(|r| r.2) { p.error { (t.entry_dispute_note) } } @else { p { (t.entry_no_disputes) } }
        h2 #sent-h { (t.entry_sent_to) }
        p { small { (t.entry_sent_help) @if !scanned_all { " " (t.entry_sent_scan_note) } } }
        @if sent.is_empty() { p #not-sent { (t.entry_not_sent) } } @else {
            table #sent aria-labelledby="sent-h" {
                thead { tr {
                    th scope="col" { (t.col_peer) } th scope="col" { (t.col_version) } th scope="col" { (t.col_at) }
                    th scope="col" { (t.col_hops) } th scope="col" { (t.col_withheld) }
                } }
                tbody {
                    @for x in &sent {
                        tr data-peer=(x.to) data-version=(x.version) {
                            td { (x.to) } td { (x.version) } td { (x.at) } td { (x.hops) }
                            td.withheld { @if x.withheld.is_empty() { (t.none) } @else { (x.withheld.join(", ")) } }
                        }
                    }
                }
            }
        }
        @if !own && ctx.can("GET", "/ui/consultations/new") {
            p { a.button #request-consultation href=(format!("/ui/consultations/new?entry={eid}&origin={}", view.origin)) { (t.consult_new) } }
        }
        @if !own && ctx.can("POST", "/ui/flags") {
            (super::flags::set_form(ctx, &eid, view.origin.as_str()))
        }
        @if own && view.status == wlnode_crypto::model::Status::Active {
            @if ctx.can("GET", "/ui/entries/{id}/amend") {
                p { a.button #amend href=(format!("/ui/entries/{eid}/amend")) { (t.entry_amend) } }
            }
            @if ctx.can("POST", "/ui/entries/{id}/withdraw") {
                form method="post" action=(format!("/ui/entries/{eid}/withdraw")) #withdraw-form {
                    (ctx.csrf_field())
                    label for="withdraw-reason" { (t.entry_withdraw_reason) }
                    input #withdraw-reason name="reason" type="text" required;
                    button #withdraw type="submit" { (t.entry_withdraw) }
                }
            }
        }
    };
    Ok(html_response(page(
        Some(ctx),
        t,
        &format!(
            "{} {}",
            t.entry_title,
            view.subject.name.clone().unwrap_or(eid.clone())
        ),
        body,
    )))
}

/// Audit events read for an entry's sends: the newest this many.
const SENT_SCAN: u64 = 20_000;

/// One copy of an entry this node sent, from its `sent` audit event.
struct SentCopy {
    to: String,
    version: u64,
    at: String,
    hops: u64,
    withheld: Vec<String>,
}

/// Which peers this node sent the records `versions` (record id hex, version) to,
/// with the fields each copy lacked, newest first, one row per peer and version;
/// and whether the whole audit log was read (else the newest [`SENT_SCAN`] events).
/// The audit log has no index by record, so this reads the log's tail; only `sent`
/// events are decoded.
async fn sends(
    state: &ApiState,
    versions: &[(String, u64)],
) -> Result<(Vec<SentCopy>, bool), ApiError> {
    let (events, all) = state
        .node
        .store
        .call(|s| {
            let n = s.audit_size()?;
            let from = n.saturating_sub(SENT_SCAN);
            Ok((s.audit_events(from, n)?, from == 0))
        })
        .await?;
    let mut out: Vec<SentCopy> = Vec::new();
    for b in events.iter().rev() {
        let Ok(text) = std::str::from_utf8(b) else {
            continue;
        };
        if !text.contains("\"type\":\"sent\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            continue;
        };
        let k = g(&v, "kind");
        let rid = g(k, "record_id").as_str().unwrap_or("");
        let Some((_, version)) = versions.iter().find(|(r, _)| r == rid) else {
            continue;
        };
        let to = g(k, "to").as_str().unwrap_or("").to_owned();
        if out.iter().any(|x| x.to == to && x.version == *version) {
            continue;
        }
        out.push(SentCopy {
            to,
            version: *version,
            at: g(&v, "at")
                .as_u64()
                .map(|ms| when(wlnode_crypto::time::Timestamp(ms)))
                .unwrap_or_default(),
            hops: g(k, "hops").as_u64().unwrap_or(0),
            withheld: g(k, "withheld")
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    Ok((out, all))
}

/// An identifier as `TYPE:VALUE`.
fn identifier<T: serde::Serialize>(i: &T) -> String {
    let j = serde_json::to_value(i).unwrap_or_default();
    format!(
        "{}:{}",
        g(&j, "type").as_str().unwrap_or(""),
        g(&j, "value").as_str().unwrap_or("")
    )
}

/// The add / amend form, filled from `v` (amend) or empty (add).
fn entry_form(ctx: &Ctx, action: &str, v: Option<&EntryView>) -> Markup {
    let t = ctx.t;
    let s = v.map(|v| &v.subject);
    let name = s.and_then(|s| s.name.clone()).unwrap_or_default();
    let kind = s.map(|s| label(&s.kind)).unwrap_or_default();
    let aliases = s.map(|s| s.aliases.join("\n")).unwrap_or_default();
    let country = s
        .and_then(|s| s.country.as_ref().map(label))
        .unwrap_or_default();
    let idents = s
        .map(|s| {
            s.identifiers
                .iter()
                .map(identifier)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let reason = v.map(|v| label(&v.reason)).unwrap_or_default();
    let cats = v
        .map(|v| v.categories.iter().map(label).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let lb = v.and_then(|v| v.legal_basis.clone()).unwrap_or_default();
    let remarks = v.and_then(|v| v.remarks.clone()).unwrap_or_default();
    let scope = v
        .map(|v| label(&v.distribution.scope))
        .unwrap_or_else(|| "federation".into());
    let sens = v
        .map(|v| label(&v.distribution.sensitivity))
        .unwrap_or_else(|| "restricted".into());
    html! {
        form method="post" action=(action) #entry-form {
            (ctx.csrf_field())
            div.grid {
                p { label for="e-kind" { (t.screen_kind) }
                    select #e-kind name="kind" {
                        @for (val, l) in [("organization", t.kind_organization), ("person", t.kind_person), ("vessel", t.kind_vessel)] {
                            option value=(val) selected[kind == val] { (l) }
                        }
                    }
                }
                p { label for="e-name" { (t.form_name) } input #e-name name="name" type="text" required value=(name); }
                p { label for="e-country" { (t.screen_country) } input #e-country name="country" type="text" maxlength="2" value=(country); }
                p { label for="e-reason" { (t.form_reason) } input #e-reason name="reason" type="text" required value=(reason) aria-describedby="e-reason-help"; small #e-reason-help { (t.form_reason_help) } }
                p { label for="e-categories" { (t.form_categories) } input #e-categories name="categories" type="text" value=(cats) aria-describedby="e-cat-help"; small #e-cat-help { (t.form_categories_help) } }
                p { label for="e-legal" { (t.form_legal_basis) } input #e-legal name="legal_basis" type="text" value=(lb); }
                p { label for="e-scope" { (t.form_scope) }
                    select #e-scope name="scope" {
                        @for val in ["federation", "groups", "neighbors", "origin"] { option value=(val) selected[scope == val] { (val) } }
                    }
                }
                p { label for="e-sens" { (t.form_sensitivity) } input #e-sens name="sensitivity" type="text" value=(sens); }
            }
            p { label for="e-aliases" { (t.form_aliases) } textarea #e-aliases name="aliases" rows="3" aria-describedby="e-aliases-help" { (aliases) } small #e-aliases-help { (t.form_aliases_help) } }
            p { label for="e-idents" { (t.form_identifiers) } textarea #e-idents name="identifiers" rows="3" aria-describedby="e-idents-help" { (idents) } small #e-idents-help { (t.form_identifiers_help) } }
            p { label for="e-remarks" { (t.form_remarks) } textarea #e-remarks name="remarks" rows="3" { (remarks) } }
            p { button #entry-submit type="submit" { (t.form_submit) } }
        }
    }
}

/// The entry JSON of a submitted form (the API's `EntryDraft` body).
fn draft_json(pairs: &[(String, String)]) -> serde_json::Value {
    let lines = |n: &str| -> Vec<String> {
        field(pairs, n)
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let identifiers: Vec<serde_json::Value> = lines("identifiers")
        .iter()
        .map(|l| match l.split_once(':') {
            Some((k, v)) => serde_json::json!({"type": k.trim(), "value": v.trim()}),
            None => serde_json::json!({"type": "other", "value": l}),
        })
        .collect();
    let mut subject = serde_json::json!({
        "kind": field(pairs, "kind").unwrap_or("organization"),
        "name": field(pairs, "name").unwrap_or(""),
        "aliases": lines("aliases"),
        "identifiers": identifiers,
    });
    if let (Some(c), Some(o)) = (field(pairs, "country"), subject.as_object_mut()) {
        o.insert("country".into(), c.trim().to_ascii_uppercase().into());
    }
    let categories: Vec<&str> = field(pairs, "categories")
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .collect();
    let mut d = serde_json::json!({
        "subject": subject,
        "reason": field(pairs, "reason").unwrap_or(""),
        "categories": categories,
        "distribution": {
            "scope": field(pairs, "scope").unwrap_or("federation"),
            "sensitivity": field(pairs, "sensitivity").unwrap_or("restricted"),
        },
    });
    for k in ["legal_basis", "remarks"] {
        if let (Some(v), Some(o)) = (field(pairs, k), d.as_object_mut()) {
            o.insert(k.into(), v.trim().into());
        }
    }
    d
}

/// This agency's entry `id` as its head says it, as entry JSON (all of it).
async fn current_draft(state: &ApiState, id: &str) -> Result<serde_json::Value, ApiError> {
    let (_, st) = find(state, id, Some(state.node.info.agency.to_string())).await?;
    let head = state
        .node
        .store
        .record(st.head)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("head record {} is missing", st.head)))?;
    let draft = wlnode_runtime::entries::draft_of(&head.record).map_err(ApiError::invalid)?;
    serde_json::to_value(draft).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `base` (an entry's whole JSON) with what the form edits replaced by the form's
/// values: subject kind, name, aliases, identifiers and country; reason; categories;
/// legal basis; remarks; distribution scope and sensitivity. Everything else stays.
fn overlay(mut base: serde_json::Value, form: serde_json::Value) -> serde_json::Value {
    let set = |to: &mut serde_json::Value, key: &str, v: Option<&serde_json::Value>| {
        if let Some(o) = to.as_object_mut() {
            match v {
                Some(v) if !(v.is_string() && v.as_str() == Some("")) => {
                    o.insert(key.to_owned(), v.clone());
                }
                _ => {
                    o.remove(key);
                }
            }
        }
    };
    for k in ["kind", "name", "aliases", "identifiers", "country"] {
        let v = form.get("subject").and_then(|s| s.get(k));
        if let Some(subject) = base.get_mut("subject") {
            set(subject, k, v);
        }
    }
    for k in ["reason", "categories", "legal_basis", "remarks"] {
        set(&mut base, k, form.get(k));
    }
    for k in ["scope", "sensitivity"] {
        let v = form.get("distribution").and_then(|d| d.get(k));
        if let Some(d) = base.get_mut("distribution") {
            set(d, k, v);
        }
    }
    base
}

/// Where a write lands: 202 is a draft (four-eyes), else the written record.
fn after_write(resp_status: StatusCode, to: &str) -> Response {
    let done = if resp_status == StatusCode::ACCEPTED {
        "drafted"
    } else {
        "written"
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    see_other(&format!("{to}{sep}done={done}"))
}

pub(super) async fn new_form(Extension(ctx): Extension<Ctx>) -> Response {
    let t = ctx.t;
    html_response(page(
        Some(&ctx),
        t,
        t.entry_new,
        entry_form(&ctx, "/ui/entries", None),
    ))
}

pub(super) async fn add(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = Bytes::from(draft_json(&pairs).to_string());
    match crate::entries::add(State(state), Extension(ctx.actor.clone()), json).await {
        Ok(resp) => {
            let (status, v) = json_of(resp).await;
            match g(&v, "entry_id").as_str() {
                Some(id) if status != StatusCode::ACCEPTED => {
                    after_write(status, &format!("/ui/entries/{id}"))
                }
                _ => after_write(status, "/ui/entries"),
            }
        }
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn amend_form(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let t = ctx.t;
    let r = async {
        let (key, st) = find(&state, &id, Some(state.node.info.agency.to_string())).await?;
        crate::entries::view(&state, key, st).await
    }
    .await;
    match r {
        Ok(v) => html_response(page(
            Some(&ctx),
            t,
            t.entry_amend,
            entry_form(&ctx, &format!("/ui/entries/{id}/amend"), Some(&v)),
        )),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn amend(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    // The form shows only part of an entry: the rest (addresses, dates, contact,
    // review date, groups, hop limit, field scopes...) is kept from the current head,
    // never dropped by an amendment made here.
    let base = match current_draft(&state, &id).await {
        Ok(b) => b,
        Err(e) => return e.page(&ctx),
    };
    let json = Bytes::from(overlay(base, draft_json(&pairs)).to_string());
    let r = crate::entries::amend(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        Ok(Query(crate::entries::ForceParams { force: false })),
        json,
    )
    .await;
    match r {
        Ok(resp) => after_write(resp.status(), &format!("/ui/entries/{id}")),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn withdraw(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = serde_json::json!({"reason": field(&pairs, "reason").unwrap_or("")});
    let r = crate::entries::withdraw(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        Ok(Query(crate::entries::ForceParams { force: false })),
        Bytes::from(json.to_string()),
    )
    .await;
    match r {
        Ok(resp) => after_write(resp.status(), &format!("/ui/entries/{id}")),
        Err(e) => e.page(&ctx),
    }
}

fn op_summary(t: &Text, op: &DraftOp) -> Markup {
    match op {
        DraftOp::Add { entry } => html! {
            (t.entry_new) ": " strong { (entry.subject.name) } " (" (label(&entry.reason)) ", " (label(&entry.distribution.sensitivity)) ")"
        },
        DraftOp::Amend {
            entry_id, entry, ..
        } => html! {
            (t.entry_amend) " " a href=(format!("/ui/entries/{}", entry_id.to_hex())) { code { (entry_id.to_hex()) } } ": " strong { (entry.subject.name) }
        },
        DraftOp::Withdraw {
            entry_id, reason, ..
        } => html! {
            (t.entry_withdraw) " " a href=(format!("/ui/entries/{}", entry_id.to_hex())) { code { (entry_id.to_hex()) } } ": " q { (reason) }
        },
    }
}

#[derive(serde::Deserialize)]
pub(super) struct DraftsQuery {
    done: Option<String>,
}

pub(super) async fn drafts(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DraftsQuery>,
) -> Response {
    let t = ctx.t;
    let list: Vec<Draft> = match state
        .node
        .drafts
        .list(Some(DraftState::AwaitingApproval))
        .await
    {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let can_decide = ctx.can("POST", "/ui/drafts/{id}/approve");
    let batches = match state
        .node
        .import_batches
        .list(Some(BatchState::AwaitingApproval))
        .await
    {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let body = html! {
        @match q.done.as_deref() {
            Some("approved") => p.notice role="status" #notice { (t.draft_approved) },
            Some("rejected") => p.notice role="status" #notice { (t.draft_rejected) },
            Some("batch-approved") => p.notice role="status" #notice { (t.batch_approved) },
            Some("batch-rejected") => p.notice role="status" #notice { (t.batch_rejected) },
            _ => {}
        }
        h2 { (t.drafts_entries) }
        @if list.is_empty() { p #no-drafts { (t.drafts_none) } }
        @else {
            table #drafts {
                thead { tr {
                    th scope="col" { (t.col_draft) } th scope="col" { (t.col_op) } th scope="col" { (t.col_author) }
                    th scope="col" { (t.col_created) } th scope="col" { (t.col_decision) }
                } }
                tbody {
                    @for d in &list {
                        tr data-draft-id=(d.draft_id) {
                            td { code { (d.draft_id) } }
                            td { (op_summary(t, &d.op)) }
                            td { (d.author_name) }
                            td { (when(d.created_at)) }
                            td {
                                @if d.author == ctx.actor.id { small { (t.draft_own) } }
                                @else if can_decide {
                                    form.inline method="post" action=(format!("/ui/drafts/{}/approve", d.draft_id)) {
                                        (ctx.csrf_field())
                                        button.approve type="submit" { (t.draft_approve) }
                                    }
                                    form method="post" action=(format!("/ui/drafts/{}/reject", d.draft_id)) {
                                        (ctx.csrf_field())
                                        @let rid = format!("reject-{}", d.draft_id);
                                        label for=(rid) { (t.draft_reject_reason) }
                                        input id=(rid) name="reason" type="text" required;
                                        button.reject type="submit" { (t.draft_reject) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (t.batches_title) }
        @if batches.is_empty() { p #no-batches { (t.batches_none) } } @else {
            table #batches {
                thead { tr {
                    th scope="col" { (t.col_batch) } th scope="col" { (t.col_source_list) } th scope="col" { (t.col_author) }
                    th scope="col" { (t.col_created) } th scope="col" { (t.col_changes) } th scope="col" { (t.col_decision) }
                } }
                tbody {
                    @for b in &batches {
                        tr data-batch-id=(b.batch_id) {
                            td { a href=(format!("/ui/import-batches/{}", b.batch_id)) { code { (b.batch_id) } } }
                            td { (b.source_list) @if b.withdraw_missing { br; small { (t.batch_withdraw_missing) } } }
                            td { (b.author_name) }
                            td { (when(b.created_at)) }
                            td { @if let Some(sum) = &b.summary { (summary_line(t, sum)) } }
                            td { (batch_buttons(&ctx, b)) }
                        }
                    }
                }
            }
        }
    };
    html_response(page(Some(&ctx), t, t.drafts_title, body))
}

/// A batch summary in one line: what release would change.
fn summary_line(t: &Text, s: &BatchSummary) -> String {
    format!(
        "{} {} · {} {} · {} {} · {} {} · {} {} · {} {}",
        s.new,
        t.batch_new,
        s.amended,
        t.batch_amended,
        s.withdrawn,
        t.batch_withdrawn,
        s.distribution_changed,
        t.batch_distribution_changed,
        s.unchanged,
        t.batch_unchanged,
        s.failed,
        t.batch_failed
    )
}

/// The approve (with the plan digest of the summary shown, as `wlnode import-batch
/// approve` sends it) and reject forms of a batch awaiting approval.
fn batch_buttons(ctx: &Ctx, b: &ImportBatch) -> Markup {
    let t = ctx.t;
    let id = &b.batch_id;
    html! {
        @if b.author == ctx.actor.id { small { (t.batch_own) } }
        @if let Some(sum) = &b.summary {
            @if b.author != ctx.actor.id && ctx.can("POST", "/ui/import-batches/{id}/approve") {
                form.inline method="post" action=(format!("/ui/import-batches/{id}/approve")) {
                    (ctx.csrf_field())
                    input type="hidden" name="plan_digest" value=(sum.plan_digest);
                    button.approve-batch type="submit" { (t.batch_approve) }
                    " " small { (t.batch_plan) " " code { (sum.plan_digest.chars().take(16).collect::<String>()) } }
                }
            }
        }
        @if ctx.can("POST", "/ui/import-batches/{id}/reject") && (b.author == ctx.actor.id || ctx.actor.has(Role::Approver)) {
            form method="post" action=(format!("/ui/import-batches/{id}/reject")) {
                (ctx.csrf_field())
                @let rid = format!("batch-reject-{id}");
                label for=(rid) { (t.draft_reject_reason) }
                input id=(rid) name="reason" type="text" required;
                button.reject type="submit" { (t.draft_reject) }
            }
        }
    }
}

/// One import batch: its summary, samples and distribution changes, and the forms.
pub(super) async fn batch(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let t = ctx.t;
    let b = match state.node.import_batches.get(&id).await {
        Ok(b) => b,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let samples = |title: &str, rows: &[wlnode_runtime::import_batches::SampleRow]| {
        html! {
            @if !rows.is_empty() {
                h3 { (title) }
                ul { @for r in rows { li {
                    (r.source_id) " · " (if r.name.is_empty() { r.entry_id.as_str() } else { r.name.as_str() })
                    @if !r.changes.is_empty() { " (" (r.changes.join(", ")) ")" }
                    @if let Some(e) = &r.error { " " span.error { (e) } }
                } } }
            }
        }
    };
    let body = html! {
        dl #batch data-batch-id=(b.batch_id) data-state=(label(&b.state)) {
            dt { (t.col_status) } dd { (label(&b.state).replace('_', " ")) }
            dt { (t.col_source_list) } dd { (b.source_list) }
            dt { (t.col_author) } dd { (b.author_name) }
            dt { (t.col_created) } dd { (when(b.created_at)) }
            dt { (t.batch_rows) } dd { (b.rows) }
            @if let Some(r) = &b.reject_reason { dt { (t.draft_reject_reason) } dd { (r) } }
            @if let Some(e) = &b.last_error { dt { (t.col_errors) } dd.error { (e) } }
        }
        @if let Some(sum) = &b.summary {
            h2 { (t.batch_summary) }
            p #batch-summary { (summary_line(t, sum)) }
            p { small { (t.batch_plan) " " code { (sum.plan_digest) } } }
            (samples(t.batch_h_new, &sum.sample_new))
            (samples(t.batch_h_amended, &sum.sample_amended))
            (samples(t.batch_h_withdrawn, &sum.sample_withdrawn))
            (samples(t.batch_h_failed, &sum.sample_failed))
            @if !sum.distribution_changes.is_empty() {
                h3 { (t.batch_h_distribution) }
                ul { @for c in &sum.distribution_changes {
                    li { (c.name) " (" code { (c.entry_id) } "): " code { (serde_json::to_string(&c.before).unwrap_or_default()) } " → " code { (serde_json::to_string(&c.after).unwrap_or_default()) } }
                } }
            }
        }
        @if b.state == BatchState::AwaitingApproval { (batch_buttons(&ctx, &b)) }
    };
    html_response(page(
        Some(&ctx),
        t,
        &format!("{} {}", t.col_batch, b.batch_id),
        body,
    ))
}

pub(super) async fn approve_batch(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = serde_json::json!({"plan_digest": field(&pairs, "plan_digest").unwrap_or("")});
    match crate::import_batches::approve(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id),
        Bytes::from(json.to_string()),
    )
    .await
    {
        Ok(_) => see_other("/ui/drafts?done=batch-approved"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn reject_batch(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = serde_json::json!({"reason": field(&pairs, "reason").unwrap_or("")});
    match crate::import_batches::reject(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id),
        Bytes::from(json.to_string()),
    )
    .await
    {
        Ok(_) => see_other("/ui/drafts?done=batch-rejected"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn approve(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    match crate::drafts::approve(State(state), Extension(ctx.actor.clone()), Path(id)).await {
        Ok(_) => see_other("/ui/drafts?done=approved"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn reject(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = serde_json::json!({"reason": field(&pairs, "reason").unwrap_or("")});
    match crate::drafts::reject(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id),
        Bytes::from(json.to_string()),
    )
    .await
    {
        Ok(_) => see_other("/ui/drafts?done=rejected"),
        Err(e) => e.page(&ctx),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Review of the console: an amendment made in the form kept only what the form
    /// shows, so it dropped addresses, dates, contact, groups, the hop limit and the
    /// field scopes (identifiers withheld from peers went out to every one).
    #[test]
    fn an_amendment_keeps_what_the_form_does_not_show() {
        let base = serde_json::json!({
            "subject": {"kind": "person", "name": "Old Name", "aliases": ["A"],
                "identifiers": [{"type": "passport", "value": "X1"}], "country": "AE",
                "birth_date": "1970-05-02", "addresses": ["Plot 7, Dubai"], "nationality": "AE"},
            "reason": "denial", "categories": ["3A001"], "contact": "desk@example.org",
            "review_by": "2027-01-01", "remarks": "old",
            "distribution": {"scope": "groups", "groups": ["eu"], "sensitivity": "restricted",
                "max_hops": 1, "fields": [{"field": "identifiers", "to": []}]}
        });
        let pairs: Vec<(String, String)> = [
            ("kind", "person"),
            ("name", "New Name"),
            ("country", "ae"),
            ("reason", "denial"),
            ("categories", "3A001 5A002"),
            ("scope", "groups"),
            ("sensitivity", "restricted"),
            ("aliases", "A\nB"),
            ("identifiers", "passport:X1"),
            ("remarks", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let out = overlay(base.clone(), draft_json(&pairs));
        assert_eq!(out["subject"]["name"], "New Name");
        assert_eq!(out["subject"]["aliases"], serde_json::json!(["A", "B"]));
        assert_eq!(out["categories"], serde_json::json!(["3A001", "5A002"]));
        assert!(out.get("remarks").is_none(), "emptied in the form: {out}");
        for (path, v) in [
            ("/subject/birth_date", &base["subject"]["birth_date"]),
            ("/subject/addresses", &base["subject"]["addresses"]),
            ("/subject/nationality", &base["subject"]["nationality"]),
            ("/contact", &base["contact"]),
            ("/review_by", &base["review_by"]),
            ("/distribution/groups", &base["distribution"]["groups"]),
            ("/distribution/max_hops", &base["distribution"]["max_hops"]),
            ("/distribution/fields", &base["distribution"]["fields"]),
        ] {
            assert_eq!(out.pointer(path), Some(v), "{path} kept: {out}");
        }
    }
}
