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

use super::{Ctx, html_response, page};
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
                            Some(c) => { (c.checkpoint.size) " · " code { (c.checkpoint.root.chars().take(16).collect::<String>()) } " · " (wlnode_crypto::time::Timestamp(c.checkpoint.timestamp).to_rfc3339()) }
                            None => { (t.dash_no_checkpoint) }
                        }
                    }
                }
            }
            @if let Some(n) = waiting {
                section.card aria-labelledby="wait-h" {
                    h2 #wait-h { (t.dash_waiting) }
                    p { a #drafts-waiting href="/ui/drafts" { (t.dash_drafts_waiting) ": " strong { (n) } } }
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
                                td { (p.last_sync.map(|x| x.to_rfc3339()).unwrap_or_else(|| t.never.into())) }
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
                ul #live-events data-source="/ui/events" aria-live="polite" {}
            }
        }
    };
    html_response(page(Some(&ctx), t, t.dash_title, body))
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
    let Some(sid) = super::cookie(&headers, super::SESSION_COOKIE).map(str::to_owned) else {
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
    // The rules as the node reads them: the config file, parsed as a reload would.
    let read = wlnode_config::Config::load(&state.node.config.path).ok();
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
        h2 { (t.policy_file) }
        @match &read {
            Some(c) => {
                h3 { "[[share]]" }
                ol.rules { @for r in &c.raw.share { li { code { (serde_json::to_string(r).unwrap_or_default()) } } } }
                h3 { "[[accept]]" }
                ol.rules { @for r in &c.raw.accept { li { code { (serde_json::to_string(r).unwrap_or_default()) } } } }
                h3 { "[release]" }
                p { code { (serde_json::to_string(&c.raw.release).unwrap_or_default()) } }
            }
            None => { p.error { (t.policy_unreadable) } }
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
                        td { (wlnode_crypto::time::Timestamp(cp.timestamp).to_rfc3339()) }
                        td { (cp.size) }
                        td { code { (cp.root) } }
                        td { @if cp.root == *root { (t.yes) } @else { span.error { (t.no) " " code { (root) } } } }
                        td { (cosigs.iter().filter(|w| w.checkpoint.checkpoint.size == cp.size && w.checkpoint.checkpoint.root == cp.root).map(|w| w.witness.clone()).collect::<Vec<_>>().join(", ")) }
                    }
                }
            }
        }
        p { (t.audit_report_cli) }
    };
    html_response(page(Some(&ctx), t, t.audit_title, body))
}

/// Checkpoints the audit page verifies and lists (the newest).
const AUDIT_ROWS: usize = 20;
