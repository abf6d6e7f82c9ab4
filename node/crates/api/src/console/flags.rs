//! Flags in the console (issue 21 item 3): `/ui/flags` lists this agency's flags in
//! force (another agency's entry marked "not actionable here") and lifts one; an entry
//! page of another agency's entry sets one. Every write goes through the API's own
//! handlers (`crate::flags`), so the role (`consultant`), validation, the sealed
//! message to the origin and the `acted` audit event are the API's.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use maud::{Markup, html};

use super::{Ctx, field, form_pairs, html_response, page, see_other};
use crate::ApiState;

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    done: Option<String>,
}

pub(super) async fn list(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = ctx.t;
    let flags = match state.node.flags.list().await {
        Ok(f) => f,
        Err(e) => return crate::ApiError::from(e).page(&ctx),
    };
    let keys = flags
        .iter()
        .map(|f| wlnode_types::EntryKey {
            entry_id: f.entry_id,
            origin: f.origin.clone(),
        })
        .collect();
    let names = super::consult::entry_names(&state, keys).await;
    let can_lift = ctx.can("POST", "/ui/flags/lift");
    let body = html! {
        @match q.done.as_deref() {
            Some("set") => p.notice role="status" #notice { (t.flag_set_done) },
            Some("lifted") => p.notice role="status" #notice { (t.flag_lifted_done) },
            _ => {}
        }
        p { small { (t.flags_help) } }
        @if flags.is_empty() { p #no-flags { (t.flags_none) } }
        @else {
            table #flags {
                thead { tr {
                    th scope="col" { (t.col_entry) } th scope="col" { (t.col_origin) }
                    th scope="col" { (t.consult_reason) } th scope="col" { (t.col_flagged_at) }
                    @if can_lift { th scope="col" { (t.col_actions) } }
                } }
                tbody {
                    @for (f, name) in flags.iter().zip(&names) {
                        @let eid = f.entry_id.to_hex();
                        tr data-entry-id=(eid) data-origin=(f.origin) {
                            td { a href=(format!("/ui/entries/{eid}?origin={}", f.origin)) { (name.clone().unwrap_or_else(|| eid.clone())) } }
                            td { (f.origin) }
                            td { (f.reason) }
                            td { (super::time_el(t, wlnode_crypto::time::Timestamp(f.flagged_at))) }
                            @if can_lift {
                                td {
                                    form.inline method="post" action="/ui/flags/lift" {
                                        (ctx.csrf_field())
                                        input type="hidden" name="entry_id" value=(eid);
                                        input type="hidden" name="origin" value=(f.origin);
                                        button.reject.lift type="submit" { (t.flag_lift) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_response(page(Some(&ctx), t, t.flags_title, body))
}

/// The form that flags another agency's entry, for its entry page.
pub(super) fn set_form(ctx: &Ctx, entry_id: &str, origin: &str) -> Markup {
    let t = ctx.t;
    html! {
        details.hit-report #flag {
            summary { (t.flag_set) }
            form method="post" action="/ui/flags" #flag-form {
                (ctx.csrf_field())
                input type="hidden" name="entry_id" value=(entry_id);
                input type="hidden" name="origin" value=(origin);
                p { label for="flag-reason" { (t.flag_reason) }
                    textarea #flag-reason name="reason" rows="2" required aria-describedby="flag-help" {}
                    small #flag-help { (t.flag_help) } }
                p { button.reject #flag-submit type="submit" { (t.flag_set) } }
            }
        }
    }
}

pub(super) async fn set(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let mut o = serde_json::Map::new();
    for k in ["entry_id", "origin", "reason"] {
        if let Some(v) = field(&pairs, k) {
            o.insert(k.into(), v.trim().into());
        }
    }
    // A missing reason goes to the API as empty, which it refuses with its own message.
    o.entry("reason").or_insert_with(|| "".into());
    o.entry("entry_id").or_insert_with(|| "".into());
    let json = Bytes::from(serde_json::Value::Object(o).to_string());
    match crate::flags::set(State(state), Extension(ctx.actor.clone()), json).await {
        Ok(_) => see_other("/ui/flags?done=set"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn lift(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let params = crate::flags::LiftParams {
        entry_id: field(&pairs, "entry_id").unwrap_or("").to_owned(),
        origin: field(&pairs, "origin").map(str::to_owned),
    };
    match crate::flags::lift(State(state), Extension(ctx.actor.clone()), Query(params)).await {
        Ok(_) => see_other("/ui/flags?done=lifted"),
        Err(e) => e.page(&ctx),
    }
}
