//! The dashboard (`/ui/`: the node, peers, roster, store health, audit checkpoint, what
//! waits for me, and live events through `/ui/events`, the API's own event stream
//! behind the session), the policy page (`/ui/policy`: the share and accept rules the
//! node reads, and an interactive explain over every roster member) and the audit page
//! (`/ui/audit`).

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use wlnode_crypto::model::{AgencyCode, EntryId};
use wlnode_runtime::drafts::DraftState;

use maud::Markup;
use wlnode_runtime::import_batches::BatchState;

use super::text::Text;
use super::{Ctx, consult, g, html_response, page, time_el, when};
use crate::{ApiError, ApiState};

pub(super) async fn dashboard(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let t = ctx.t;
    let s = match crate::status::status(State(state.clone())).await {
        Ok(Json(s)) => s,
        Err(e) => return e.page(&ctx),
    };
    let checkpoint = state
        .node
        .store
        .call(|s| s.audit_latest_checkpoint())
        .await
        .ok()
        .flatten();
    let waiting = if ctx.can("GET", "/ui/drafts") {
        state
            .node
            .drafts
            .list(Some(DraftState::AwaitingApproval))
            .await
            .ok()
            .map(|l| l.iter().filter(|d| d.author != ctx.actor.id).count())
    } else {
        None
    };
    let batches = if ctx.can("GET", "/ui/drafts") {
        state
            .node
            .import_batches
            .list(Some(BatchState::AwaitingApproval))
            .await
            .ok()
            .map(|l| l.iter().filter(|b| b.author != ctx.actor.id).count())
    } else {
        None
    };
    // Consultations: ours to answer (and how many of those near their deadline), and
    // ours to decide.
    let consults = if ctx.can("GET", "/ui/consultations") {
        state.node.consultations.list().await.ok().map(|l| {
            let now = wlnode_crypto::time::Timestamp::now().0;
            let to_answer: Vec<_> = l.iter().filter(|h| consult::awaits_answer(h)).collect();
            let near = to_answer
                .iter()
                .filter(|h| {
                    h.consultation.deadline().0.saturating_sub(now) <= consult::NEAR_DEADLINE_MS
                })
                .count();
            let to_decide = l.iter().filter(|h| consult::awaits_decision(h)).count();
            (to_answer.len(), near, to_decide)
        })
    } else {
        None
    };
    let hits = if ctx.can("GET", "/ui/watches") {
        match state.node.watches.recent_hits(SHOWN_HITS).await {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "console: cannot read the stored watch hits");
                Some(Vec::new())
            }
        }
    } else {
        None
    };
    let live = ctx.can("GET", "/ui/events");
    let body = html! {
        div.cards {
            section.card aria-labelledby="node-h" {
                h2 #node-h { (t.dash_node) }
                dl {
                    dt { (t.dash_agency) } dd #agency { (s.agency) }
                    dt { (t.dash_federation) } dd { (s.federation) }
                    dt { (t.dash_roster_version) } dd #roster-version { (s.roster_version) }
                    dt { (t.dash_version) } dd { (s.version) }
                    dt { (t.dash_uptime) } dd { (s.uptime_seconds) }
                }
                @if s.roster_outdated { p.error { (t.dash_roster_outdated) } }
            }
            section.card aria-labelledby="store-h" {
                h2 #store-h { (t.dash_store) }
                dl {
                    dt { (t.dash_store) } dd #store-health {
                        @if s.store.writable { (t.dash_store_ok) } @else { span.error { (t.dash_store_degraded) } " " (s.store.last_error.clone().unwrap_or_default()) }
                    }
                    dt { (t.dash_entries) } dd { (s.entries) }
                    dt { (t.dash_records) } dd { (s.records) }
                    dt { (t.dash_disputed) } dd { (s.disputed_versions) }
                    dt { (t.dash_size) } dd { (s.store.size_bytes) }
                }
            }
            section.card aria-labelledby="audit-h" {
                h2 #audit-h { (t.dash_audit) }
                dl {
                    dt { (t.dash_audit_events) } dd { (s.store.audit_events) }
                    dt { (t.dash_audit_cosignatures) } dd { (s.store.audit_cosignatures) }
                    dt { (t.dash_checkpoint) } dd {
                        @match &checkpoint {
                            Some(c) => { (c.checkpoint.size) " · " code { (c.checkpoint.root.chars().take(16).collect::<String>()) } " · " span #checkpoint-time { (time_el(t, wlnode_crypto::time::Timestamp(c.checkpoint.timestamp))) } }
                            None => { (t.dash_no_checkpoint) }
                        }
                    }
                }
            }
            @if waiting.is_some() || consults.is_some() || hits.is_some() {
                section.card aria-labelledby="wait-h" {
                    h2 #wait-h { (t.dash_waiting) }
                    ul.waiting {
                        @if let Some(n) = waiting {
                            li { a #drafts-waiting href="/ui/drafts" { (t.dash_drafts_waiting) ": " strong { (n) } } }
                        }
                        @if let Some(n) = batches {
                            li { a #batches-waiting href="/ui/drafts" { (t.dash_batches_waiting) ": " strong { (n) } } }
                        }
                        @if let Some((answer, near, decide)) = consults {
                            li { a #consult-answer href="/ui/consultations?box=received" { (t.dash_consult_answer) ": " strong { (answer) } }
                                @if near > 0 { " " span.error #consult-near { "(" (near) " " (t.dash_consult_near) ")" } } }
                            li { a #consult-decide href="/ui/consultations?box=sent" { (t.dash_consult_decide) ": " strong { (decide) } } }
                        }
                        @if let Some(h) = &hits {
                            li { a #watch-hits-link href="/ui/watches" { (t.dash_watch_hits) ": " strong { (h.len()) } } }
                        }
                    }
                }
            }
        }
        @if let Some(h) = &hits {
            @if !h.is_empty() {
                section aria-labelledby="hits-h" {
                    h2 #hits-h { (t.dash_recent_hits) }
                    (watch_hits_table(t, h.get(..h.len().min(DASH_HITS)).unwrap_or_default()))
                }
            }
        }
        section aria-labelledby="peers-h" {
            h2 #peers-h { (t.dash_peers) }
            @if s.peers.is_empty() { p { (t.dash_no_peers) } }
            table #peers {
                    thead { tr {
                        th scope="col" { (t.col_agency) } th scope="col" { (t.col_connected) } th scope="col" { (t.col_lag) }
                        th scope="col" { (t.col_last_sync) } th scope="col" { (t.col_received) } th scope="col" { (t.col_sent) }
                        th scope="col" { (t.col_rejected) } th scope="col" { (t.col_blocked) } th scope="col" { (t.col_errors) }
                    } }
                    tbody {
                        @for p in &s.peers {
                            tr data-agency=(p.agency) {
                                td { (p.agency) }
                                td { (if p.connected { t.yes } else { t.no }) }
                                td { (p.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into())) }
                                td.last-sync { @match p.last_sync { Some(x) => (time_el(t, x)), None => (t.never) } }
                                td { (p.records_received) } td { (p.records_sent) } td { (p.records_rejected) }
                                td { (if p.blocked { t.yes } else { t.no }) }
                                td { (p.last_error.clone().unwrap_or_default()) }
                            }
                        }
                    }
            }
        }
        @if live {
            section aria-labelledby="live-h" {
                h2 #live-h { (t.dash_live) }
                p { small { (t.dash_live_help) } }
                (live_labels(t))
                ul #live-events data-source="/ui/events" aria-live="polite" {}
            }
        }
    };
    html_response(page(Some(&ctx), t, t.dash_title, body))
}

/// Watch hits shown on the dashboard (the newest).
const DASH_HITS: usize = 10;
/// Watch hits counted on the dashboard and listed on the watches page (the newest of
/// those the store keeps, `wlnode_runtime::watches::MAX_STORED_HITS`).
const SHOWN_HITS: usize = 200;

/// The words the live events script shows, from the catalogue (a hidden list the
/// script reads: the script itself holds no user-visible string).
fn live_labels(t: &Text) -> Markup {
    let kinds = [
        ("k:watch_hit", t.ev_watch_hit),
        ("k:draft_awaiting_approval", t.ev_draft),
        ("k:peer_down", t.ev_peer_down),
        ("k:source_failed", t.ev_source_failed),
        ("k:audit_violation", t.ev_audit_violation),
        ("k:consultation", t.ev_consultation),
        ("k:lagged", t.ev_lagged),
        ("f:watch_name", t.ev_f_watch),
        ("f:ref", t.screen_reference),
        ("f:matched_name", t.col_matched_name),
        ("f:origin", t.col_origin),
        ("f:score", t.col_score),
        ("f:op", t.col_op),
        ("f:source_list", t.col_source_list),
        ("f:rows", t.batch_rows),
        ("f:new", t.batch_new),
        ("f:amended", t.batch_amended),
        ("f:withdrawn", t.batch_withdrawn),
        ("f:agency", t.col_agency),
        ("f:cause", t.ev_f_cause),
        ("f:source", t.ev_f_source),
        ("f:class", t.ev_f_class),
        ("f:error", t.col_errors),
        ("f:kind", t.ev_f_kind),
        ("f:version", t.col_version),
        ("f:reference", t.consult_reference),
        ("f:requester", t.consult_requester),
        ("f:state", t.col_status),
        ("f:deadline", t.consult_deadline),
        ("f:from", t.ev_f_from),
        ("open", t.ev_open),
    ];
    html! {
        ul #live-labels hidden {
            @for (k, v) in kinds { li data-key=(k) { (v) } }
        }
    }
}

/// Watch hits as a table.
fn watch_hits_table(t: &Text, hits: &[wlnode_runtime::events::NodeEvent]) -> Markup {
    html! {
        table #watch-hits {
            thead { tr {
                th scope="col" { (t.col_at) } th scope="col" { (t.ev_f_watch) } th scope="col" { (t.screen_reference) }
                th scope="col" { (t.col_matched_name) } th scope="col" { (t.col_origin) } th scope="col" { (t.col_score) }
            } }
            tbody {
                @for e in hits {
                    @let v: serde_json::Value = serde_json::from_str(&e.json).unwrap_or_default();
                    @let s = |k: &str| g(&v, k).as_str().unwrap_or("").to_owned();
                    tr data-entry-id=(s("entry_id")) data-event-id=(e.id) {
                        td { (time_el(t, e.at)) }
                        td { (s("watch_name")) }
                        td { (s("ref")) }
                        td { a href=(format!("/ui/entries/{}?origin={}", s("entry_id"), s("origin"))) { (s("matched_name")) } }
                        td { (s("origin")) }
                        td { (g(&v, "score").as_f64().map(|x| format!("{x:.3}")).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// The watches and the newest watch hits (stored: they survive a restart).
pub(super) async fn watches(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let t = ctx.t;
    let list = state.node.watches.list();
    let hits = match state.node.watches.recent_hits(SHOWN_HITS).await {
        Ok(h) => h,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let body = html! {
        h2 #recent-h { (t.dash_recent_hits) }
        p { small { (t.watch_hits_help) } }
        @if hits.is_empty() { p #no-watch-hits { (t.watch_hits_none) } } @else { (watch_hits_table(t, &hits)) }
        h2 { (t.watches_title) }
        @if list.is_empty() { p { (t.watches_none) } } @else {
            table #watches {
                thead { tr { th scope="col" { (t.ev_f_watch) } th scope="col" { (t.screen_reference) } th scope="col" { (t.col_author) } th scope="col" { (t.col_created) } } }
                tbody { @for w in &list {
                    tr data-watch-id=(w.watch_id) { td { (w.name) } td { (w.reference.clone().unwrap_or_default()) } td { (w.created_by_name) } td { (when(w.created_at)) } }
                } }
            }
        }
    };
    html_response(page(Some(&ctx), t, t.watches_title, body))
}

/// The event stream for the dashboard's script: the API's `GET /v1/events`, behind
/// the session (an `EventSource` cannot send a bearer token). It ends as soon as the
/// session does (logout, idle or absolute timeout: the stream does not keep it alive)
/// or its user may no longer read events (disabled, rotated, roles changed).
pub(super) async fn events(
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let name = super::session_cookie(&state.node.info.peer_id);
    let Some(sid) = super::cookie(&headers, &name).map(str::to_owned) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let (sessions, users) = (state.console.clone(), state.node.users.clone());
    crate::events::open(
        &state,
        &ctx.actor.id,
        Box::new(move || {
            sessions
                .peek(&sid)
                .is_some_and(|l| crate::events::allowed(&users, &l.token).is_some())
        }),
    )
}

#[derive(serde::Deserialize)]
pub(super) struct PolicyQuery {
    entry: Option<String>,
    origin: Option<String>,
}

pub(super) async fn policy(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<PolicyQuery>,
) -> Response {
    match policy_inner(&state, &ctx, q).await {
        Ok(r) => r,
        Err(e) => e.page(&ctx),
    }
}

async fn policy_inner(state: &ApiState, ctx: &Ctx, q: PolicyQuery) -> Result<Response, ApiError> {
    let t = ctx.t;
    let policy = state.node.trust.policy();
    let entry = q.entry.clone().filter(|e| !e.trim().is_empty());
    let mut explained = Vec::new();
    if let Some(e) = &entry {
        let id = EntryId::from_hex(e.trim())
            .map_err(|_| ApiError::bad_request(format!("{e:?} is not an entry id")))?;
        let mut found = state.node.store.entries_by_id(id).await?;
        if let Some(o) = q.origin.clone().filter(|o| !o.is_empty()) {
            let o = AgencyCode::new(o).map_err(|e| ApiError::invalid(e.within("origin")))?;
            found.retain(|(k, _)| k.origin == o);
        }
        found.sort_by_key(|(k, _)| k.origin != state.node.info.agency);
        let (_, st) = found
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found(format!("entry {} not found", id.to_hex())))?;
        let rec =
            state.node.store.record(st.head).await?.ok_or_else(|| {
                ApiError::not_found(format!("head record {} is missing", st.head))
            })?;
        let roster = state.node.trust.roster();
        for m in roster.members() {
            if m.agency == state.node.info.agency {
                continue;
            }
            explained.push((m.agency.clone(), policy.explain(&rec, &m.agency)));
        }
    }
    let body = html! {
        dl {
            dt { (t.policy_hash) } dd { code { (hex::encode(policy.hash())) } }
            dt { (t.policy_four_eyes) } dd { (if policy.four_eyes() { t.yes } else { t.no }) }
        }
        @if ctx.can("GET", "/ui/policy/rules") {
            p { a #policy-rules href="/ui/policy/rules" { (t.policy_rules_link) } }
        }
        h2 #explain-h { (t.policy_explain) }
        form method="get" action="/ui/policy" {
            label for="p-entry" { (t.policy_entry) }
            input #p-entry name="entry" type="text" value=(entry.clone().unwrap_or_default());
            @if let Some(o) = &q.origin { input type="hidden" name="origin" value=(o); }
            button type="submit" { (t.policy_explain_submit) }
        }
        @if entry.is_some() {
            @if explained.is_empty() { p { (t.policy_no_members) } } @else {
                table #explain {
                    thead { tr {
                        th scope="col" { (t.col_peer) } th scope="col" { (t.col_sent_or_not) } th scope="col" { (t.col_rule) }
                        th scope="col" { (t.col_withheld) } th scope="col" { (t.col_why) }
                    } }
                    tbody {
                        @for (to, e) in &explained {
                            tr data-peer=(to.to_string()) data-decision=(e.decision) {
                                td { (to.to_string()) }
                                td { (e.decision) }
                                td { (e.matched_rules.iter().map(|r| format!("#{} (line {})", r.rule, r.line)).collect::<Vec<_>>().join(", ")) }
                                td { (if e.withheld_fields.is_empty() { t.none.to_owned() } else { e.withheld_fields.join(", ") }) }
                                td { (e.reason) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(page(Some(ctx), t, t.policy_title, body)))
}

/// A rule as `key = value` pairs, as written in the config (unset keys left out).
fn rule_text<T: serde::Serialize>(r: &T) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(o)) => o
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(" · "),
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// What the config file on disk holds now, next to the policy in force.
enum OnDisk {
    /// The same rules (same policy hash).
    Same,
    /// Other rules, which pass the check: the next reload puts them in force.
    Differs,
    /// Rules a reload would refuse (the first error).
    Invalid(String),
    /// The file does not load.
    Unreadable,
}

/// The share and accept rules in force (the running policy: the config as read at
/// start or at the last reload), with the policy hash the audit log records; and
/// whether the file on disk now differs. For whoever may reload them (see `ROUTES`).
pub(super) async fn policy_rules(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let t = ctx.t;
    let policy = state.node.trust.policy();
    let roster = state.node.trust.roster();
    let path = state.node.config.path.clone();
    let running = policy.hash();
    // Loading and checking the file reads it: off the async threads.
    let on_disk = tokio::task::spawn_blocking(move || match wlnode_config::Config::load(&path) {
        Err(_) => OnDisk::Unreadable,
        Ok(c) => match wlnode_policy::Policy::from_config(&c, roster) {
            Ok((p, _)) if p.hash() == running => OnDisk::Same,
            Ok(_) => OnDisk::Differs,
            Err(errors) => {
                OnDisk::Invalid(errors.first().map(|e| e.to_string()).unwrap_or_default())
            }
        },
    })
    .await
    .unwrap_or(OnDisk::Unreadable);
    let rules = policy.rules();
    let body = html! {
        h2 { (t.policy_in_force) }
        p { small { (t.policy_in_force_help) } }
        dl { dt { (t.policy_hash) } dd { code #policy-hash { (hex::encode(running)) } } }
        @match &on_disk {
            OnDisk::Same => {}
            OnDisk::Differs => p.notice role="status" #file-differs { (t.policy_file_differs) },
            OnDisk::Invalid(e) => p.error #file-invalid { (t.policy_file_invalid) " " (e) },
            OnDisk::Unreadable => p.error #file-unreadable { (t.policy_unreadable) },
        }
        h3 { "[[share]]" }
        ol.rules #share-rules { @for (line, r) in &rules.share {
            li data-line=(line) { code { (rule_text(r)) } " " small { "(" (t.policy_line) " " (line) ")" } }
        } }
        h3 { "[[accept]]" }
        ol.rules #accept-rules { @for (line, r) in &rules.accept {
            li data-line=(line) { code { (rule_text(r)) } " " small { "(" (t.policy_line) " " (line) ")" } }
        } }
        h3 { "[release]" }
        p #release-rule { code { (rule_text(&wlnode_config::ReleaseConfig { require_approval: policy.release().clone() })) } }
    };
    html_response(page(Some(&ctx), t, t.policy_rules_title, body))
}

pub(super) async fn audit(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let t = ctx.t;
    // The live check this node can make of its own log: recompute the tree root at
    // each recent checkpoint's size and compare it with the root that was signed.
    let r = state
        .node
        .store
        .call(|s| {
            let counts = s.counts()?;
            let mut cps = s.audit_checkpoints()?;
            let keep = cps.len().saturating_sub(AUDIT_ROWS);
            let cps = cps.split_off(keep);
            let mut rows = Vec::with_capacity(cps.len());
            for c in cps.into_iter().rev() {
                let root = hex::encode(s.audit_root(c.checkpoint.size)?);
                rows.push((c, root));
            }
            Ok((counts, rows, s.audit_cosignatures()?))
        })
        .await;
    let (counts, rows, cosigs) = match r {
        Ok(x) => x,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let all_ok = rows.iter().all(|(c, root)| c.checkpoint.root == *root);
    let body = html! {
        dl {
            dt { (t.dash_audit_events) } dd { (counts.audit_events) }
            dt { (t.dash_audit_cosignatures) } dd { (counts.audit_cosignatures) }
            dt { (t.audit_verdict) } dd #audit-verdict data-ok=(if all_ok { "true" } else { "false" }) {
                @if rows.is_empty() { (t.dash_no_checkpoint) }
                @else if all_ok { (t.audit_roots_match) }
                @else { span.error { (t.audit_roots_differ) } }
            }
        }
        h2 { (t.audit_checkpoints) }
        table #checkpoints {
            thead { tr {
                th scope="col" { (t.col_at) } th scope="col" { (t.audit_size) }
                th scope="col" { (t.audit_root) } th scope="col" { (t.audit_recomputed) }
                th scope="col" { (t.audit_cosigned_by) }
            } }
            tbody {
                @for (c, root) in &rows {
                    @let cp = &c.checkpoint;
                    tr data-size=(cp.size) data-ok=(if cp.root == *root { "true" } else { "false" }) {
                        td { (time_el(t, wlnode_crypto::time::Timestamp(cp.timestamp))) }
                        td { (cp.size) }
                        td { code { (cp.root) } }
                        td { @if cp.root == *root { (t.yes) } @else { span.error { (t.no) " " code { (root) } } } }
                        td { (cosigs.iter().filter(|w| w.checkpoint.checkpoint.size == cp.size && w.checkpoint.checkpoint.root == cp.root).map(|w| w.witness.clone()).collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
        }
        p #auditor-page { (t.audit_auditor_page) " " code { "wlnode audit verify --serve 127.0.0.1:8090" } " " (t.audit_auditor_page_after) }
    };
    html_response(page(Some(&ctx), t, t.audit_title, body))
}

/// Checkpoints the audit page verifies and lists (the newest).
const AUDIT_ROWS: usize = 20;
