//! Screening pages: `/ui/screen` (one party: the hits, each with its score
//! explanation, its entry's origin, reason, legal basis and fields, and the decision
//! buttons), `/ui/screen/batch` (a CSV upload, results on the page or as CSV), and the
//! case log (`/ui/cases`, searchable by reference, downloadable as CSV;
//! `/ui/cases/{id}`). Screening goes through the API's own `screen_one` and `batch`,
//! so every screening is logged as a case exactly as over the API; decisions go
//! through the API's `decide`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Serialize;
use wlnode_crypto::model::{AgencyCode, EntryId};
use wlnode_runtime::cases::{Case, Decision, DecisionState};
use wlnode_runtime::entries::EntryView;
use wlnode_screen::csv_cell::neutralize;
use wlnode_screen::score::{Explanation, MatchMethod};

use super::text::Text;
use super::{Ctx, field, form_pairs, g, html_response, page, see_other};
use crate::{ApiError, ApiState};

/// A value's serde name (`"cleared"`, `"birth_date_agrees"`), for labels of data.
pub fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn decision_label(t: &Text, s: DecisionState) -> &'static str {
    match s {
        DecisionState::Cleared => t.decision_cleared,
        DecisionState::Confirmed => t.decision_confirmed,
        DecisionState::Escalated => t.decision_escalated,
    }
}

/// The screening form, filled with `pairs`.
fn screen_form(ctx: &Ctx, pairs: &[(String, String)]) -> Markup {
    let t = ctx.t;
    let v = |n: &str| field(pairs, n).unwrap_or("").to_owned();
    let kind = v("kind");
    html! {
        form method="post" action="/ui/screen" #screen-form {
            (ctx.csrf_field())
            div.grid {
                p { label for="q" { (t.screen_name) } input #q name="q" type="text" required value=(v("q")); }
                p { label for="kind" { (t.screen_kind) }
                    select #kind name="kind" {
                        @for (val, l) in [("", t.kind_any), ("person", t.kind_person), ("organization", t.kind_organization), ("vessel", t.kind_vessel)] {
                            option value=(val) selected[kind == val] { (l) }
                        }
                    }
                }
                p { label for="country" { (t.screen_country) } input #country name="country" type="text" maxlength="2" value=(v("country")); }
                p { label for="dob" { (t.screen_dob) } input #dob name="dob" type="text" value=(v("dob")); }
                p { label for="id" { (t.screen_identifier) } input #id name="id" type="text" value=(v("id")); }
                p { label for="ref" { (t.screen_reference) } input #ref name="ref" type="text" value=(v("ref")); }
            }
            p { label for="address" { (t.screen_address) } input #address name="address" type="text" maxlength="512" value=(v("address")) aria-describedby="address-help";
                small #address-help { (t.screen_address_help) } }
            p { button #screen-submit type="submit" { (t.screen_submit) } }
        }
    }
}

fn batch_form(ctx: &Ctx) -> Markup {
    let t = ctx.t;
    html! {
        section aria-labelledby="batch-h" {
            h2 #batch-h { (t.batch_title) }
            form method="post" action="/ui/screen/batch" enctype="multipart/form-data" {
                (ctx.csrf_field())
                p {
                    label for="csv" { (t.batch_file) }
                    input #csv name="csv" type="file" accept=".csv,text/csv" required aria-describedby="csv-help";
                    small #csv-help { (t.batch_help) }
                }
                p {
                    button #batch-submit type="submit" name="format" value="html" { (t.batch_submit) }
                    " "
                    button #batch-csv type="submit" name="format" value="csv" { (t.batch_submit_csv) }
                }
            }
        }
    }
}

pub(super) async fn form_page(ctx: &Ctx, pairs: &[(String, String)], results: Markup) -> Response {
    let t = ctx.t;
    html_response(page(
        Some(ctx),
        t,
        t.screen_title,
        html! { (screen_form(ctx, pairs)) (results) (batch_form(ctx)) },
    ))
}

pub(super) async fn form(Extension(ctx): Extension<Ctx>) -> Response {
    form_page(&ctx, &[], html! {}).await
}

/// The explanation of one hit: which query token matched which listed token and how,
/// what had no counterpart, and the adjustments.
fn explanation(t: &Text, e: &Explanation) -> Markup {
    let method = |m: &MatchMethod| -> String {
        match m {
            MatchMethod::Exact => t.method_exact.to_owned(),
            MatchMethod::Transliterated => t.method_transliterated.to_owned(),
            MatchMethod::Phonetic { key } => format!("{} ({key})", t.method_phonetic),
            MatchMethod::Fuzzy {
                jaro_winkler,
                edit_distance,
            } => format!(
                "{} (Jaro-Winkler {jaro_winkler:.2}, edits {edit_distance})",
                t.method_fuzzy
            ),
            MatchMethod::Initial => t.method_initial.to_owned(),
            MatchMethod::GluedArticle { article } => {
                format!("{} ({article})", t.method_glued_article)
            }
        }
    };
    html! {
        div.explain {
            p { strong { (t.explain_pairs) } }
            ul.pairs {
                @for m in &e.token_matches {
                    li.pair {
                        q { (m.query_text) } " → " q { (m.name_text) } ": " (method(&m.method))
                        ", " (format!("{:.2}", m.similarity)) " × " (format!("{:.2}", m.weight))
                    }
                }
            }
            @if !e.unmatched.is_empty() {
                p { strong { (t.explain_unmatched) } ": "
                    (e.unmatched.iter().map(|u| format!("{} ({})", u.text, label(&u.side))).collect::<Vec<_>>().join(", ")) }
            }
            @if !e.query_stripped.is_empty() || !e.name_stripped.is_empty() {
                p { strong { (t.explain_stripped) } ": "
                    (e.query_stripped.iter().chain(&e.name_stripped).map(|s| s.text.clone()).collect::<Vec<_>>().join(", ")) }
            }
            p { (t.explain_matched_similarity) ": " (format!("{:.3}", e.matched_similarity)) }
            @if !e.adjustments.is_empty() {
                p { strong { (t.explain_adjustments) } }
                ul {
                    @for a in &e.adjustments {
                        li { (label(&a.kind)) " " (format!("{:+.3}", a.delta)) @if !a.detail.is_empty() { " (" (a.detail) ")" } }
                    }
                }
            }
        }
    }
}

/// The fields an entry view has, and the fields it withholds from this node.
fn fields(t: &Text, v: &EntryView) -> Markup {
    let s = &v.subject;
    let mut present: Vec<&str> = Vec::new();
    if s.name.is_some() {
        present.push("name");
    }
    if !s.aliases.is_empty() {
        present.push("aliases");
    }
    if s.country.is_some() {
        present.push("country");
    }
    if !s.addresses.is_empty() {
        present.push("addresses");
    }
    if !s.identifiers.is_empty() {
        present.push("identifiers");
    }
    if s.birth_date.is_some() {
        present.push("birth_date");
    }
    if s.nationality.is_some() {
        present.push("nationality");
    }
    if v.legal_basis.is_some() {
        present.push("legal_basis");
    }
    if v.items.is_some() {
        present.push("items");
    }
    if v.remarks.is_some() {
        present.push("remarks");
    }
    if v.contact.is_some() {
        present.push("contact");
    }
    let withheld: Vec<String> = v.withheld.iter().map(label).collect();
    html! {
        div.fields {
            span { (t.fields_present) ": " (present.join(", ")) }
            br;
            span.withheld { (t.fields_withheld) ": "
                @if withheld.is_empty() { (t.none) } @else { (withheld.join(", ")) } }
        }
    }
}

/// Whether a hit offers "send hit report" to the entry's origin: today every hit on
/// another agency's entry (the API takes a report on any of them). Entries that say
/// they want reports (`on_hit: notify`) are to gate it here, and only here.
/// Only where the entry asks for one (`"on_hit": "notify"` in its signed header) and
/// it is another agency's: the API refuses the rest (409 `hit_report_not_requested`).
pub(super) fn offers_hit_report(
    ours: &AgencyCode,
    v: &EntryView,
    marks: &wlnode_runtime::flags::HitMarks,
) -> bool {
    v.origin != *ours && marks.hit_report_requested
}

/// An entry's view for a hit (the head this node holds).
pub(super) async fn entry_view(
    state: &ApiState,
    origin: &AgencyCode,
    id: EntryId,
) -> Option<EntryView> {
    let found = state.node.store.entries_by_id(id).await.ok()?;
    let (key, st) = found.into_iter().find(|(k, _)| k.origin == *origin)?;
    crate::entries::view(state, key, st).await.ok()
}

/// The decision cell of a hit: the decision in force, and the buttons.
fn decision_cell(
    ctx: &Ctx,
    case_id: &str,
    origin: &str,
    entry: &str,
    d: Option<&Decision>,
) -> Markup {
    let t = ctx.t;
    html! {
        @match d {
            Some(d) => {
                p.decision data-decision=(label(&d.state)) {
                    strong { (decision_label(t, d.state)) } " " (t.decided_by) " " (d.by_name) ", " (super::time_el(t, d.at))
                    br; q { (d.reason) }
                }
            }
            None => { p.decision data-decision="none" { (t.undecided) } }
        }
        @if ctx.can("POST", "/ui/cases/{id}/decide") {
            form method="post" action=(format!("/ui/cases/{case_id}/decide")) {
                (ctx.csrf_field())
                input type="hidden" name="entry" value=(entry);
                input type="hidden" name="origin" value=(origin);
                @let rid = format!("reason-{entry}");
                label for=(rid) { (t.decision_reason) }
                input id=(rid) name="reason" type="text" required;
                div.buttons {
                    button.clear type="submit" name="decision" value="cleared" { (t.decide_clear) }
                    button.confirm type="submit" name="decision" value="confirmed" { (t.decide_confirm) }
                    button.escalate type="submit" name="decision" value="escalated" { (t.decide_escalate) }
                }
            }
        }
    }
}

pub(super) async fn run(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let t = ctx.t;
    let pairs = form_pairs(&body);
    // The address is a field of the request the API's query parser does not read
    // (`POST /v1/screen` takes it in JSON): set it here.
    let (address, rest): (Vec<_>, Vec<_>) =
        pairs.iter().cloned().partition(|(k, _)| k == "address");
    let mut req = match crate::screen::from_pairs(rest, true) {
        Ok(r) => r,
        Err(e) => return e.page(&ctx),
    };
    req.address = address.into_iter().next().map(|(_, v)| v);
    let resp = match crate::screen::screen_one(&state, &ctx.actor, req, "q").await {
        Ok(Json(r)) => r,
        Err(e) => return e.page(&ctx),
    };
    let mut rows = Vec::with_capacity(resp.results.len());
    for h in &resp.results {
        let view = entry_view(&state, &h.hit.origin, h.hit.entry_id).await;
        rows.push((h, view));
    }
    let results = html! {
        section aria-labelledby="results-h" {
            h2 #results-h { (t.screen_results) }
            p { (t.screen_case) " " a #case-link href=(format!("/ui/cases/{}", resp.case_id)) { code { (resp.case_id) } } }
            @if rows.is_empty() {
                p #no-hits { (t.screen_no_hits) }
            } @else {
                table #results {
                    thead { tr {
                        th scope="col" { (t.col_score) } th scope="col" { (t.col_matched_name) }
                        th scope="col" { (t.col_origin) } th scope="col" { (t.col_reason) }
                        th scope="col" { (t.col_explanation) } th scope="col" { (t.col_decision) }
                    } }
                    tbody {
                        @for (h, view) in &rows {
                            @let entry = h.hit.entry_id.to_hex();
                            tr.hit data-entry-id=(entry) data-decision=(h.decision.as_ref().map(|d| label(&d.state)).unwrap_or_else(|| "none".into())) {
                                td.score { (format!("{:.3}", h.hit.score)) }
                                td { a href=(format!("/ui/entries/{entry}?origin={}", h.hit.origin)) { (h.hit.matched_name) } }
                                td { (h.hit.origin.to_string()) }
                                td {
                                    @if let Some(v) = view {
                                        (label(&v.reason))
                                        @if let Some(lb) = &v.legal_basis { br; small { (t.col_legal_basis) ": " (lb) } }
                                        (fields(t, v))
                                        @if h.marks.hit_report_requested {
                                            br; small.hit-report-wanted { (t.hit_report_wanted) @if let Some(c) = &v.contact { " " (c) } }
                                        }
                                    }
                                    @if let Some(f) = &h.marks.flag {
                                        br; small.flagged { (t.hit_flagged) " " (f.reason) " (" (f.flagged_at) ")" }
                                    }
                                }
                                td { (explanation(t, &h.hit.explanation)) }
                                td {
                                    (decision_cell(&ctx, &resp.case_id, h.hit.origin.as_ref(), &entry, h.decision.as_ref()))
                                    @if let Some(v) = view && offers_hit_report(&state.node.info.agency, v, &h.marks) && ctx.can("POST", "/ui/hits") {
                                        (super::consult::hit_report_form(&ctx, &resp.case_id, h.hit.origin.as_ref(), &entry))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    form_page(&ctx, &pairs, results).await
}

pub(super) async fn decide(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = serde_json::json!({
        "entry": field(&pairs, "entry").unwrap_or(""),
        "origin": field(&pairs, "origin"),
        "decision": field(&pairs, "decision").unwrap_or(""),
        "reason": field(&pairs, "reason").unwrap_or(""),
    });
    let body = Bytes::from(json.to_string());
    match crate::cases::decide(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        body,
    )
    .await
    {
        Ok(_) => see_other(&format!("/ui/cases/{id}")),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn case(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let t = ctx.t;
    let c = match state.node.cases.get(&id).await {
        Ok(c) => c,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let body = html! {
        (party(t, &c))
        table #case-hits {
            thead { tr {
                th scope="col" { (t.col_score) } th scope="col" { (t.col_matched_name) }
                th scope="col" { (t.col_origin) } th scope="col" { (t.col_entry) } th scope="col" { (t.col_decision) }
            } }
            tbody {
                @for h in &c.hits {
                    @let entry = h.entry_id.to_hex();
                    @let d = c.decisions.iter().rev().find(|(e, _)| *e == entry).map(|(_, d)| d);
                    tr.hit data-entry-id=(entry) data-decision=(d.map(|d| label(&d.state)).unwrap_or_else(|| "none".into())) {
                        td { (format!("{:.3}", h.score)) }
                        td { (h.matched_name) }
                        td { (h.origin.to_string()) }
                        td { a href=(format!("/ui/entries/{entry}?origin={}", h.origin)) { code { (entry) } } }
                        td { (decision_cell(&ctx, &c.case_id, h.origin.as_ref(), &entry, d)) }
                    }
                }
            }
        }
    };
    html_response(page(
        Some(&ctx),
        t,
        &format!("{} {}", t.case_title, c.case_id),
        body,
    ))
}

fn party(t: &Text, c: &Case) -> Markup {
    html! {
        dl.party {
            dt { (t.col_at) } dd { (super::time_el(t, c.at)) }
            dt { (t.col_user) } dd { (c.user_name) }
            dt { (t.col_channel) } dd { (label(&c.channel)) }
            dt { (t.screen_name) } dd #party-name { (c.party.name) }
            @if let Some(r) = &c.party.reference { dt { (t.screen_reference) } dd { (r) } }
            @if let Some(x) = &c.party.country { dt { (t.screen_country) } dd { (x) } }
            @if let Some(x) = &c.party.dob { dt { (t.screen_dob) } dd { (x) } }
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct LogQuery {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

async fn read_log(state: &ApiState, q: &LogQuery) -> Result<(Vec<Case>, bool), ApiError> {
    let reference = q.reference.clone().filter(|r| !r.trim().is_empty());
    // The newest cases, newest first (the log reads oldest first from a time).
    Ok(state.node.cases.newest(reference, 200).await?)
}

pub(super) async fn log(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LogQuery>,
) -> Response {
    let t = ctx.t;
    let (cases, truncated) = match read_log(&state, &q).await {
        Ok(x) => x,
        Err(e) => return e.page(&ctx),
    };
    let reference = q.reference.clone().unwrap_or_default();
    let body = html! {
        form method="get" action="/ui/cases" role="search" {
            label for="ref" { (t.cases_search) }
            input #ref name="ref" type="search" value=(reference);
            button type="submit" { (t.filter_apply) }
        }
        p { a href=(format!("/ui/cases.csv?ref={}", form_urlencoded::byte_serialize(reference.as_bytes()).collect::<String>())) { (t.cases_download) } }
        @if truncated { p.notice { (t.cases_truncated) } }
        table #cases {
            thead { tr {
                th scope="col" { (t.col_at) } th scope="col" { (t.col_user) } th scope="col" { (t.col_channel) }
                th scope="col" { (t.screen_reference) } th scope="col" { (t.col_party) } th scope="col" { (t.col_hits) }
            } }
            tbody {
                @for c in &cases {
                    tr data-case-id=(c.case_id) {
                        td { a href=(format!("/ui/cases/{}", c.case_id)) { (super::when(c.at)) } }
                        td { (c.user_name) }
                        td { (label(&c.channel)) }
                        td { (c.party.reference.clone().unwrap_or_default()) }
                        td { (c.party.name) }
                        td { (c.hits_total.unwrap_or(c.hits.len())) }
                    }
                }
            }
        }
    };
    html_response(page(Some(&ctx), t, t.cases_title, body))
}

fn csv_response(name: &str, body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

pub(super) async fn log_csv(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LogQuery>,
) -> Response {
    match read_log(&state, &q).await {
        Ok((mut cases, _)) => {
            // The newest 200, in time order.
            cases.reverse();
            csv_response("cases.csv", crate::cases::to_csv(&cases))
        }
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn batch(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    mut mp: Multipart,
) -> Response {
    let t = ctx.t;
    let mut csv = None;
    let mut as_csv = false;
    while let Ok(Some(f)) = mp.next_field().await {
        match f.name() {
            Some("csv") => csv = f.bytes().await.ok(),
            Some("format") => as_csv = f.text().await.is_ok_and(|v| v == "csv"),
            _ => {}
        }
    }
    let Some(csv) = csv else {
        return ApiError::bad_request("csv: no file").page(&ctx);
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    let out = match crate::screen::batch(
        State(state),
        Extension(ctx.actor.clone()),
        headers,
        Ok(Query(Vec::new())),
        csv,
    )
    .await
    {
        Ok(Json(v)) => v,
        Err(e) => return e.page(&ctx),
    };
    let results = g(&out, "results").as_array().cloned().unwrap_or_default();
    let errors = g(&out, "errors").as_array().cloned().unwrap_or_default();
    let best = |r: &serde_json::Value| -> (usize, Option<serde_json::Value>) {
        let hits = g(r, "results").as_array().cloned().unwrap_or_default();
        (hits.len(), hits.first().cloned())
    };
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    if as_csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "row",
            "ref",
            "name",
            "case_id",
            "hits",
            "best_score",
            "best_origin",
            "best_entry_id",
            "best_matched_name",
            "best_decision",
        ]);
        for r in &results {
            let (n, b) = best(r);
            let b = b.unwrap_or_default();
            let row = [
                g(r, "row").to_string(),
                s(g(r, "reference")),
                s(g(r, "name")),
                s(g(r, "case_id")),
                n.to_string(),
                g(&b, "score")
                    .as_f64()
                    .map(|x| format!("{x:.4}"))
                    .unwrap_or_default(),
                s(g(&b, "origin")),
                s(g(&b, "entry_id")),
                s(g(&b, "matched_name")),
                s(g(g(&b, "decision"), "state")),
            ];
            let _ = w.write_record(row.iter().map(|c| neutralize(c).into_owned()));
        }
        for e in &errors {
            let _ = w.write_record([
                g(e, "row").to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                neutralize(&s(g(e, "message"))).into_owned(),
                String::new(),
            ]);
        }
        let body = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
        return csv_response("screening.csv", body);
    }
    let total = results.len() + errors.len();
    let body = html! {
        section aria-labelledby="batch-results-h" {
            h2 #batch-results-h { (t.batch_title) }
            p {
                label for="batch-progress" { (t.batch_progress) }
                " "
                progress #batch-progress max=(total) value=(total) { (total) }
                " " (results.len()) " / " (total)
            }
            table #batch-results {
                thead { tr {
                    th scope="col" { (t.col_row) } th scope="col" { (t.screen_reference) } th scope="col" { (t.col_party) }
                    th scope="col" { (t.col_hits) } th scope="col" { (t.col_best) } th scope="col" { (t.screen_case) }
                } }
                tbody {
                    @for r in &results {
                        @let (n, b) = best(r);
                        tr data-row=(g(r, "row").to_string()) {
                            td { (g(r, "row").to_string()) }
                            td { (s(g(r, "reference"))) }
                            td { (s(g(r, "name"))) }
                            td { (n) }
                            td { @if let Some(b) = &b {
                                (s(g(b, "matched_name"))) " (" (s(g(b, "origin"))) ", " (g(b, "score").as_f64().map(|x| format!("{x:.3}")).unwrap_or_default()) ")"
                            } }
                            td { a href=(format!("/ui/cases/{}", s(g(r, "case_id")))) { code { (s(g(r, "case_id"))) } } }
                        }
                    }
                }
            }
            @if !errors.is_empty() {
                h3 { (t.batch_row_errors) }
                table #batch-errors {
                    thead { tr { th scope="col" { (t.col_row) } th scope="col" { (t.col_message) } } }
                    tbody { @for e in &errors { tr { td { (g(e, "row").to_string()) } td { (s(g(e, "message"))) } } } }
                }
            }
        }
    };
    let resp = form_page(&ctx, &[], body).await;
    (StatusCode::OK, resp).into_response()
}
