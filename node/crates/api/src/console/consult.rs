//! Consultation pages (issue 21 in the console): the inbox (consultations about our
//! entries, `received`) and the outbox (ours about other agencies' entries, `sent`)
//! with deadlines, states and the roster's silence rule; a consultation's detail with
//! its trail as a timeline; the origin's answer form and the requester's decision
//! form; the request form (from an entry page); and the hit report form (from a hit).
//!
//! Reading goes through the runtime's `Consultations` service, as the API's list and
//! show do; every write goes through the API's own handler (`crate::consultations`),
//! so validation, attribution (`acted` events) and errors are the API's.

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::response::IntoResponse;
use axum::response::Response;
use maud::{Markup, html};
use wlnode_consult::{Answer, Role as ConsultRole, State as CState, TransactionDetails};
use wlnode_crypto::time::Timestamp;
use wlnode_runtime::consultations::Held;

use super::screen::label;
use super::text::Text;
use super::{Ctx, field, form_pairs, g, html_response, page, see_other, when};
use crate::{ApiError, ApiState};

/// A day in milliseconds.
const DAY_MS: u64 = 86_400_000;
/// A deadline this close is "near" (the dashboard's "waiting for me").
pub(super) const NEAR_DEADLINE_MS: u64 = 7 * DAY_MS;

fn state_label(t: &Text, s: CState) -> &'static str {
    match s {
        CState::Open => t.cs_open,
        CState::Answered => t.cs_answered,
        CState::Expired => t.cs_expired,
        CState::Decided => t.cs_decided,
        CState::RefusedByOrigin => t.cs_refused_by_origin,
    }
}

fn answer_label(t: &Text, a: Answer) -> &'static str {
    match a {
        Answer::Objection => t.answer_objection,
        Answer::NoObjection => t.answer_no_objection,
        Answer::InfoRequested => t.answer_info_requested,
    }
}

fn decision_label(t: &Text, d: wlnode_consult::Decision) -> &'static str {
    match d {
        wlnode_consult::Decision::Granted => t.consult_granted,
        wlnode_consult::Decision::Refused => t.consult_refused,
    }
}

fn silence_label(t: &Text, s: wlnode_consult::SilenceMeans) -> &'static str {
    match s {
        wlnode_consult::SilenceMeans::NoObjection => t.silence_no_objection,
        wlnode_consult::SilenceMeans::Objection => t.silence_objection,
    }
}

/// A sealed message's type as people read it.
fn message_label<'a>(t: &Text, kind: &'a str) -> std::borrow::Cow<'a, str> {
    match kind {
        "consult_request" => t.msg_request.into(),
        "consult_answer" => t.msg_answer.into(),
        "consult_info" => t.msg_info.into(),
        "consult_refusal" => t.msg_refusal.into(),
        "consult_decision" => t.msg_decision.into(),
        other => other.into(),
    }
}

/// A message's delivery as people read it.
fn delivery_label<'a>(t: &Text, d: &'a str) -> std::borrow::Cow<'a, str> {
    match d {
        "pending" => t.delivery_pending.into(),
        "delivered" => t.delivery_delivered.into(),
        "expired" => t.delivery_expired.into(),
        "undeliverable" => t.delivery_undeliverable.into(),
        other => other.into(),
    }
}

/// The name of entry `id` of `origin` as this node holds it (or its id).
async fn entry_name(
    state: &ApiState,
    origin: &wlnode_crypto::model::AgencyCode,
    id: wlnode_crypto::model::EntryId,
) -> String {
    super::screen::entry_view(state, origin, id)
        .await
        .and_then(|v| v.subject.name)
        .unwrap_or_else(|| id.to_hex())
}

/// The deadline and how far off it is ("in 3 days", "passed"), for an open one.
fn deadline_cell(t: &Text, h: &Held, now: Timestamp) -> Markup {
    let c = &h.consultation;
    let d = c.deadline();
    let open = c.state() == CState::Open;
    let near = open && d.0 > now.0 && d.0 - now.0 <= NEAR_DEADLINE_MS;
    html! {
        time datetime=(d.to_rfc3339()) { (when(d)) }
        @if open {
            br;
            @if d.0 <= now.0 { small.error { (t.deadline_passed) } }
            @else {
                small.near[near] { (t.deadline_in) " " ((d.0 - now.0).div_ceil(DAY_MS)) " " (t.days) }
            }
        }
    }
}

/// Whether a received consultation waits for this agency's answer.
pub(super) fn awaits_answer(h: &Held) -> bool {
    h.consultation.role() == ConsultRole::Origin && h.consultation.state() == CState::Open
}

/// Whether a sent consultation's origin asked this agency for more information (it
/// may supply it, opening a new round, or decide as it stands).
pub(super) fn awaits_info(h: &Held) -> bool {
    h.consultation.role() == ConsultRole::Requester
        && h.consultation.state() == CState::Answered
        && h.consultation.current_answer() == Some(Answer::InfoRequested)
}

/// Whether a sent consultation waits for this agency's decision (one the origin
/// refused, once its deadline has passed: a refusal is no veto).
pub(super) fn awaits_decision(h: &Held) -> bool {
    let c = &h.consultation;
    c.role() == ConsultRole::Requester
        && match c.state() {
            CState::Answered | CState::Expired => true,
            CState::RefusedByOrigin => c.deadline() <= Timestamp::now(),
            _ => false,
        }
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    /// `received` (the inbox, default) or `sent` (the outbox).
    #[serde(rename = "box")]
    which: Option<String>,
    /// The page, from 1.
    page: Option<usize>,
}

/// Consultations on one page of the inbox or outbox.
pub(super) const PAGE_SIZE: usize = 50;

/// The names of these entries as this node holds them (`None` for one it does not
/// hold), read in one store job rather than one round trip per row.
pub(super) async fn entry_names(
    state: &ApiState,
    keys: Vec<wlnode_types::EntryKey>,
) -> Vec<Option<String>> {
    let n = keys.len();
    let read = state
        .node
        .store
        .call(move |s| {
            Ok(keys
                .iter()
                .map(|k| {
                    let st = s.entry(k).ok().flatten()?;
                    let head = s.record(&st.head).ok().flatten()?;
                    head.record.content().name
                })
                .collect::<Vec<_>>())
        })
        .await;
    read.unwrap_or_else(|_| vec![None; n])
}

pub(super) async fn list(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = ctx.t;
    let sent = q.which.as_deref() == Some("sent");
    let mut all = match state.node.consultations.list().await {
        Ok(l) => l,
        Err(e) => return ApiError::from(e).page(&ctx),
    };
    let role = if sent {
        ConsultRole::Requester
    } else {
        ConsultRole::Origin
    };
    all.retain(|h| h.consultation.role() == role);
    // What waits for us first, then in the lists' order (newest first; ties by
    // deadline, reference, id).
    let waits = |h: &Held| {
        if sent {
            awaits_decision(h)
        } else {
            awaits_answer(h)
        }
    };
    all.sort_by(|a, b| {
        waits(b)
            .cmp(&waits(a))
            .then_with(|| crate::consultations::list_order(&a.consultation, &b.consultation))
    });
    let pages = all.len().div_ceil(PAGE_SIZE).max(1);
    let page_no = q.page.unwrap_or(1).clamp(1, pages);
    let total = all.len();
    let all: Vec<Held> = all
        .into_iter()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let keys = all
        .iter()
        .map(|h| wlnode_types::EntryKey {
            entry_id: h.consultation.entry_id(),
            origin: h.consultation.origin().clone(),
        })
        .collect();
    let names: Vec<String> = entry_names(&state, keys)
        .await
        .into_iter()
        .zip(&all)
        .map(|(n, h)| n.unwrap_or_else(|| h.consultation.entry_id().to_hex()))
        .collect();
    let which = if sent { "sent" } else { "received" };
    let now = Timestamp::now();
    let body = html! {
        nav.tabs aria-label=(t.consult_boxes) {
            a href="/ui/consultations?box=received" aria-current=[(!sent).then_some("page")] #tab-inbox { (t.consult_inbox) }
            " "
            a href="/ui/consultations?box=sent" aria-current=[sent.then_some("page")] #tab-outbox { (t.consult_outbox) }
        }
        p { small { (if sent { t.consult_outbox_help } else { t.consult_inbox_help }) } }
        @if all.is_empty() { p #no-consultations { (t.consult_none) } }
        @else {
            table #consultations {
                thead { tr {
                    th scope="col" { (t.consult_reference) }
                    th scope="col" { (if sent { t.col_origin } else { t.consult_requester }) }
                    th scope="col" { (t.col_entry) }
                    th scope="col" { (t.col_status) }
                    th scope="col" { (t.consult_deadline) }
                    th scope="col" { (t.consult_silence) }
                    th scope="col" { (t.consult_answer) }
                    th scope="col" { (t.consult_decision) }
                } }
                tbody {
                    @for (h, name) in all.iter().zip(&names) {
                        @let c = &h.consultation;
                        @let id = c.id().to_hex();
                        // Links name the requester too: two members may use one id with us.
                        @let key = wlnode_runtime::consultations::ConsultationRef::of(c.requester().clone(), c.id()).to_string();
                        @let waits = if sent { awaits_decision(h) } else { awaits_answer(h) };
                        tr.waiting[waits] data-consultation-id=(id) data-state=(c.state().as_str()) {
                            td { a href=(format!("/ui/consultations/{key}")) { (c.reference()) } }
                            td { (if sent { c.origin().to_string() } else { c.requester().to_string() }) }
                            td { a href=(format!("/ui/entries/{}?origin={}", c.entry_id().to_hex(), c.origin())) { (name) } }
                            td { (state_label(t, c.state()))
                                @if waits { br; strong { (if sent { t.consult_your_decision } else { t.consult_your_answer }) } } }
                            td { (deadline_cell(t, h, now)) }
                            td { (silence_label(t, c.silence())) }
                            td { @if let Some(a) = c.current_answer() { (answer_label(t, a)) }
                                 @else if let Some(a) = c.deemed_answer() { (answer_label(t, a)) " " small { (t.consult_by_silence) } } }
                            td { @if let Some(d) = c.decision() { (decision_label(t, d.decision)) } }
                        }
                    }
                }
            }
            @if pages > 1 {
                nav.pager aria-label=(t.pages) {
                    @if page_no > 1 {
                        a #prev-page rel="prev" href=(format!("/ui/consultations?box={which}&page={}", page_no - 1)) { (t.prev_page) }
                    }
                    " " span #page-of { (t.page) " " (page_no) " / " (pages) " (" (total) ")" } " "
                    @if page_no < pages {
                        a #next-page rel="next" href=(format!("/ui/consultations?box={which}&page={}", page_no + 1)) { (t.next_page) }
                    }
                }
            }
        }
    };
    html_response(page(
        Some(&ctx),
        t,
        if sent {
            t.consult_outbox
        } else {
            t.consult_inbox
        },
        body,
    ))
}

fn parse_id(id: &str) -> Result<wlnode_runtime::consultations::ConsultationRef, ApiError> {
    crate::consultations::consultation_id(id)
}

/// Back to the consultation's page after a successful form, named in its canonical
/// form (`REQUESTER:ID` or `ID`), never the path segment as given (before s35 a
/// segment the parser trimmed, e.g. with a leading CR LF, reached the `Location`
/// header and panicked).
fn done(id: &str, what: &str) -> Response {
    match parse_id(id) {
        Ok(r) => see_other(&format!("/ui/consultations/{r}?done={what}")),
        Err(_) => see_other("/ui/consultations"),
    }
}

/// One step of the trail.
struct Step {
    at: Timestamp,
    kind: &'static str,
    what: String,
    note: Option<String>,
}

/// The trail of a consultation as this node holds it, oldest first.
fn timeline(t: &Text, h: &Held) -> Vec<Step> {
    let c = &h.consultation;
    let mut steps = vec![Step {
        at: c.requested_at(),
        kind: "requested",
        what: format!("{} {} → {}", t.tl_requested, c.requester(), c.origin()),
        note: None,
    }];
    for i in c.infos() {
        steps.push(Step {
            at: i.at,
            kind: "info",
            what: format!("{} ({} {})", t.tl_info, t.tl_round, i.round),
            note: Some(i.text.clone()),
        });
    }
    for a in c.answers() {
        steps.push(Step {
            at: a.at,
            kind: "answer",
            what: format!(
                "{} {}: {} ({} {})",
                c.origin(),
                t.tl_answered,
                answer_label(t, a.answer),
                t.tl_round,
                a.round
            ),
            note: a.reason.clone(),
        });
    }
    if let Some(at) = c.expired_at() {
        steps.push(Step {
            at,
            kind: "expired",
            what: format!("{} {}", t.tl_expired, silence_label(t, c.silence())),
            note: None,
        });
    }
    if let Some(d) = c.decision() {
        let despite = match d.despite {
            wlnode_consult::Despite::Objection => format!(" ({})", t.tl_despite_objection),
            wlnode_consult::Despite::ExpiredDenial => format!(" ({})", t.tl_despite_denial),
            wlnode_consult::Despite::None => String::new(),
        };
        steps.push(Step {
            at: d.at,
            kind: "decision",
            what: format!(
                "{} {}: {}{despite}",
                c.requester(),
                t.tl_decided,
                decision_label(t, d.decision)
            ),
            note: d.reason.clone(),
        });
    }
    if c.state() == CState::Open {
        steps.push(Step {
            at: c.deadline(),
            kind: "deadline",
            what: format!("{} {}", t.tl_deadline, silence_label(t, c.silence())),
            note: None,
        });
    }
    steps.sort_by_key(|s| s.at.0);
    steps
}

#[derive(serde::Deserialize)]
pub(super) struct ShowQuery {
    done: Option<String>,
}

pub(super) async fn show(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    show_page(&state, &ctx, &id, q.done.as_deref(), None).await
}

/// The supply-info form as the requester filled it, with what is wrong with each
/// field (shown again, values kept, when the information was not sent).
#[derive(Debug, Default)]
pub(super) struct SupplyForm {
    values: Vec<(String, String)>,
    /// (field name, message from the catalogue).
    errors: Vec<(&'static str, &'static str)>,
}

impl SupplyForm {
    /// The form prefilled with the details the origin holds now.
    fn prefilled(d: &TransactionDetails) -> Self {
        let items = d
            .items
            .iter()
            .map(|i| match &i.category {
                Some(c) => format!("{} | {}", i.description, c.as_str()),
                None => i.description.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let values = [
            ("items", items),
            ("end_user", d.end_user.clone()),
            ("consignee", d.consignee.clone()),
            (
                "destination_country",
                d.destination_country.as_str().to_owned(),
            ),
            ("amount", d.value.amount.clone()),
            ("currency", d.value.currency.clone()),
            ("free_text", d.free_text.clone().unwrap_or_default()),
            ("deadline", "30d".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            values,
            errors: Vec::new(),
        }
    }

    fn value(&self, name: &str) -> &str {
        field(&self.values, name).unwrap_or("")
    }

    fn error(&self, name: &str) -> Option<&'static str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, m)| *m)
    }
}

/// One field of the supply-info form: its label, the control, and its error (tied
/// to the control with `aria-describedby` and `aria-invalid`).
fn supply_field(label_text: &str, name: &str, form: &SupplyForm, multiline: bool) -> Markup {
    let id = format!("supply-{}", name.replace('_', "-"));
    let err_id = format!("{id}-error");
    let err = form.error(name);
    html! {
        p.field.invalid[err.is_some()] {
            label for=(id) { (label_text) }
            @if multiline {
                textarea id=(id) name=(name) rows="3" aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| err_id.as_str())] { (form.value(name)) }
            } @else {
                input id=(id) name=(name) type="text" value=(form.value(name)) aria-invalid=[err.map(|_| "true")] aria-describedby=[err.map(|_| err_id.as_str())];
            }
            @if let Some(m) = err { small.field-error id=(err_id) data-field=(name) { (m) } }
        }
    }
}

/// The corrected transaction details of a supply-info form, each field checked by the
/// consult crate's own rules (`TransactionDetails::from_json`) on its own, against the
/// details held (which pass them), so that each error names its field. `None` when
/// the details are as held (nothing to send again).
fn supply_details(
    t: &Text,
    pairs: &[(String, String)],
    held: &TransactionDetails,
) -> Result<Option<TransactionDetails>, Vec<(&'static str, &'static str)>> {
    use serde_json::Value;
    let f = |n: &str| field(pairs, n).unwrap_or("").trim().to_owned();
    let base = serde_json::to_value(held).unwrap_or_default();
    let passes = |v: &Value| TransactionDetails::from_json(v.to_string().as_bytes()).is_ok();
    let items = items_json(&f("items"));
    let free = f("free_text");
    // (field, its place in details.json, the form's value, the message if it fails)
    let checks: [(&'static str, &[&str], Option<Value>, &'static str); 7] = [
        ("items", &["items"], Some(Value::from(items)), t.err_items),
        (
            "end_user",
            &["end_user"],
            Some(f("end_user").into()),
            t.err_party,
        ),
        (
            "consignee",
            &["consignee"],
            Some(f("consignee").into()),
            t.err_party,
        ),
        (
            "destination_country",
            &["destination_country"],
            Some(f("destination_country").to_ascii_uppercase().into()),
            t.err_country,
        ),
        (
            "amount",
            &["value", "amount"],
            Some(f("amount").into()),
            t.err_amount,
        ),
        (
            "currency",
            &["value", "currency"],
            Some(f("currency").to_ascii_uppercase().into()),
            t.err_currency,
        ),
        (
            "free_text",
            &["free_text"],
            (!free.is_empty()).then(|| free.into()),
            t.err_free_text,
        ),
    ];
    fn set(v: &mut Value, path: &[&str], x: Option<Value>) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut at = v;
        for p in parents {
            match at.get_mut(*p) {
                Some(next) => at = next,
                None => return,
            }
        }
        if let Some(o) = at.as_object_mut() {
            match x {
                Some(x) => o.insert((*last).to_owned(), x),
                None => o.remove(*last),
            };
        }
    }
    let mut out = base.clone();
    let mut errors = Vec::new();
    for (name, path, value, message) in checks {
        let mut probe = base.clone();
        set(&mut probe, path, value.clone());
        if passes(&probe) {
            set(&mut out, path, value);
        } else {
            errors.push((name, message));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    match TransactionDetails::from_json(out.to_string().as_bytes()) {
        Ok(d) if d == *held => Ok(None),
        Ok(d) => Ok(Some(d)),
        // Each field passes alone: nothing else is checked across fields today.
        Err(_) => Err(vec![("items", t.err_items)]),
    }
}

/// The consultation page; `supply` is a supply-info form to show again with its
/// errors (the answer is then 400).
async fn show_page(
    state: &ApiState,
    ctx: &Ctx,
    id: &str,
    done: Option<&str>,
    supply: Option<SupplyForm>,
) -> Response {
    let t = ctx.t;
    let rejected = supply.is_some();
    let held = match parse_id(id) {
        Ok(cid) => state
            .node
            .consultations
            .get(cid)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let h = match held {
        Ok(h) => h,
        Err(e) => return e.page(ctx),
    };
    let c = &h.consultation;
    let name = entry_name(state, c.origin(), c.entry_id()).await;
    let now = Timestamp::now();
    let d = c.details();
    let id = c.id().to_hex();
    // Forms name the requester too: two members may use one id with us.
    let key = wlnode_runtime::consultations::ConsultationRef::of(c.requester().clone(), c.id())
        .to_string();
    let supply = supply.unwrap_or_else(|| SupplyForm::prefilled(d));
    let body = html! {
        @match done {
            Some("requested") => p.notice role="status" #notice { (t.consult_requested) },
            Some("answered") => p.notice role="status" #notice { (t.consult_answer_sent) },
            Some("decided") => p.notice role="status" #notice { (t.consult_decision_sent) },
            Some("info") => p.notice role="status" #notice { (t.consult_info_sent) },
            _ => {}
        }
        dl #consultation data-consultation-id=(id) data-state=(c.state().as_str()) {
            dt { (t.consult_reference) } dd { (c.reference()) }
            dt { (t.consult_requester) } dd { (c.requester().to_string()) }
            dt { (t.col_origin) } dd { (c.origin().to_string()) }
            dt { (t.col_entry) } dd { a href=(format!("/ui/entries/{}?origin={}", c.entry_id().to_hex(), c.origin())) { (name) } " (" (t.version_lower) " " (c.version()) ")" }
            dt { (t.col_status) } dd #consultation-state { (state_label(t, c.state())) }
            dt { (t.consult_deadline) } dd { (deadline_cell(t, &h, now)) }
            dt { (t.consult_silence) } dd { (silence_label(t, c.silence())) }
        }
        h2 { (t.consult_details) }
        dl #details {
            dt { (t.cd_items) } dd { ul { @for i in &d.items { li { (i.description) @if let Some(cat) = &i.category { " (" (label(cat)) ")" } } } } }
            dt { (t.cd_end_user) } dd { (d.end_user) }
            dt { (t.cd_consignee) } dd { (d.consignee) }
            dt { (t.cd_destination) } dd { (label(&d.destination_country)) }
            dt { (t.cd_value) } dd { (d.value.amount) " " (d.value.currency) }
            @if let Some(f) = &d.free_text { dt { (t.cd_free_text) } dd { (f) } }
        }
        h2 { (t.consult_trail) }
        ol.timeline #timeline {
            @for s in timeline(t, &h) {
                li.future[s.at.0 > now.0] data-step=(s.kind) {
                    time datetime=(s.at.to_rfc3339()) { (when(s.at)) }
                    " " strong { (s.what) }
                    @if let Some(n) = &s.note { br; q { (n) } }
                }
            }
        }
        @if !h.messages.is_empty() {
            h3 { (t.consult_messages) }
            table #messages {
                thead { tr { th scope="col" { (t.col_kind) } th scope="col" { (t.col_to) } th scope="col" { (t.col_delivery) } } }
                tbody { @for m in &h.messages {
                    tr data-delivery=(m.delivery) {
                        td { (message_label(t, &m.kind)) @if m.notice { " (" (t.consult_notice) ")" } }
                        td { (m.to.to_string()) }
                        td { (delivery_label(t, &m.delivery)) }
                    }
                } }
            }
        }
        @if awaits_answer(&h) && ctx.can("POST", "/ui/consultations/{id}/respond") {
            section aria-labelledby="respond-h" {
                h2 #respond-h { (t.consult_respond) }
                form method="post" action=(format!("/ui/consultations/{key}/respond")) #respond-form {
                    (ctx.csrf_field())
                    fieldset {
                        legend { (t.consult_answer) }
                        @for (v, l) in [("no_objection", t.answer_no_objection), ("objection", t.answer_objection), ("info_requested", t.answer_info_requested)] {
                            p.radio { input type="radio" name="answer" value=(v) id=(format!("answer-{v}")) required; " " label for=(format!("answer-{v}")) { (l) } }
                        }
                    }
                    p { label for="respond-reason" { (t.consult_reason) }
                        textarea #respond-reason name="reason" rows="3" aria-describedby="respond-reason-help" {}
                        small #respond-reason-help { (t.consult_reason_help) } }
                    p { button #respond-submit type="submit" { (t.consult_send_answer) } }
                }
            }
        }
        @if awaits_info(&h) && ctx.can("POST", "/ui/consultations/{id}/supply-info") {
            section aria-labelledby="supply-h" {
                h2 #supply-h { (t.consult_supply) }
                p { small { (t.consult_supply_help) } }
                @if !supply.errors.is_empty() {
                    p.error role="alert" #supply-errors { (t.consult_form_errors) }
                }
                form method="post" action=(format!("/ui/consultations/{key}/supply-info")) #supply-form {
                    (ctx.csrf_field())
                    (supply_field(t.consult_info_text, "text", &supply, true))
                    (supply_field(t.consult_deadline, "deadline", &supply, false))
                    p { small #supply-deadline-help { (t.consult_deadline_help) } }
                    fieldset #supply-details {
                        legend { (t.consult_supply_details) }
                        p { small { (t.consult_supply_details_help) } }
                        (supply_field(t.cd_items, "items", &supply, true))
                        p { small { (t.cd_items_help) } }
                        div.grid {
                            (supply_field(t.cd_end_user, "end_user", &supply, false))
                            (supply_field(t.cd_consignee, "consignee", &supply, false))
                            (supply_field(t.cd_destination, "destination_country", &supply, false))
                            (supply_field(t.cd_amount, "amount", &supply, false))
                            (supply_field(t.cd_currency, "currency", &supply, false))
                        }
                        (supply_field(t.cd_free_text, "free_text", &supply, true))
                    }
                    p { button #supply-submit type="submit" { (t.consult_send_info) } }
                }
            }
        }
        @if awaits_decision(&h) && ctx.can("POST", "/ui/consultations/{id}/decide") {
            section aria-labelledby="decide-h" {
                h2 #decide-h { (t.consult_decide) }
                @if c.current_answer() == Some(Answer::Objection) || c.deemed_answer() == Some(Answer::Objection) {
                    p.error { (t.consult_grant_notice_warning) }
                }
                form method="post" action=(format!("/ui/consultations/{key}/decide")) #decide-form {
                    (ctx.csrf_field())
                    p { label for="decide-reason" { (t.consult_reason) }
                        textarea #decide-reason name="reason" rows="3" {} }
                    div.buttons {
                        button.clear #decide-granted type="submit" name="decision" value="granted" { (t.consult_grant) }
                        button.confirm #decide-refused type="submit" name="decision" value="refused" { (t.consult_refuse) }
                    }
                }
            }
        }
    };
    let page = html_response(page(
        Some(ctx),
        t,
        &format!("{} {}", t.consult_title, c.reference()),
        body,
    ));
    if rejected {
        (axum::http::StatusCode::BAD_REQUEST, page).into_response()
    } else {
        page
    }
}

/// The JSON body of an answer or decision form: `key` and an optional reason.
fn answer_json(pairs: &[(String, String)], key: &str) -> Bytes {
    let mut o = serde_json::Map::new();
    o.insert(key.into(), field(pairs, key).unwrap_or("").into());
    if let Some(r) = field(pairs, "reason") {
        o.insert("reason".into(), r.trim().into());
    }
    Bytes::from(serde_json::Value::Object(o).to_string())
}

pub(super) async fn respond(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    match crate::consultations::respond(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        answer_json(&pairs, "answer"),
    )
    .await
    {
        Ok(_) => done(&id, "answered"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn decide(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    match crate::consultations::decide(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        answer_json(&pairs, "decision"),
    )
    .await
    {
        Ok(_) => done(&id, "decided"),
        Err(e) => e.page(&ctx),
    }
}

pub(super) async fn supply_info(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let t = ctx.t;
    let pairs = form_pairs(&body);
    // Checked here field by field, so the form comes back with each error next to
    // its field; the API's handler checks it all again.
    let held = match parse_id(&id) {
        Ok(cid) => state
            .node
            .consultations
            .get(cid)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let held = match held {
        Ok(h) => h,
        Err(e) => return e.page(&ctx),
    };
    let text = field(&pairs, "text").unwrap_or("").trim().to_owned();
    let deadline = field(&pairs, "deadline").unwrap_or("").trim().to_owned();
    let mut errors = Vec::new();
    if wlnode_crypto::model::check_text(&text, wlnode_consult::payload::MAX_REASON).is_err() {
        errors.push(("text", t.err_info_text));
    }
    if wlnode_consult::parse_deadline(&deadline, wlnode_consult::DeadlineBounds::DEFAULT).is_err() {
        errors.push(("deadline", t.err_deadline));
    }
    let details = match supply_details(t, &pairs, held.consultation.details()) {
        Ok(d) => d,
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if !errors.is_empty() {
        let form = SupplyForm {
            values: pairs,
            errors,
        };
        return show_page(&state, &ctx, &id, None, Some(form)).await;
    }
    let mut o = serde_json::Map::new();
    o.insert("text".into(), text.into());
    o.insert("deadline".into(), deadline.into());
    if let Some(d) = details {
        o.insert(
            "details".into(),
            serde_json::to_value(&d).unwrap_or_default(),
        );
    }
    match crate::consultations::supply_info(
        State(state),
        Extension(ctx.actor.clone()),
        Path(id.clone()),
        Bytes::from(serde_json::Value::Object(o).to_string()),
    )
    .await
    {
        Ok(_) => done(&id, "info"),
        Err(e) => e.page(&ctx),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct NewQuery {
    entry: Option<String>,
    origin: Option<String>,
}

/// The request form: the entry, the licence reference, the intended transaction.
pub(super) async fn new_form(
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<NewQuery>,
) -> Response {
    let t = ctx.t;
    let entry = q.entry.unwrap_or_default();
    let origin = q.origin.unwrap_or_default();
    let body = html! {
        p { small { (t.consult_new_help) } }
        form method="post" action="/ui/consultations" #consult-form {
            (ctx.csrf_field())
            div.grid {
                p { label for="c-entry" { (t.col_entry) } input #c-entry name="entry_id" type="text" required value=(entry); }
                p { label for="c-origin" { (t.col_origin) } input #c-origin name="origin" type="text" value=(origin); }
                p { label for="c-ref" { (t.consult_reference) } input #c-ref name="reference" type="text" required aria-describedby="c-ref-help"; small #c-ref-help { (t.consult_reference_help) } }
                p { label for="c-deadline" { (t.consult_deadline) } input #c-deadline name="deadline" type="text" value="30d" aria-describedby="c-deadline-help"; small #c-deadline-help { (t.consult_deadline_help) } }
                p { label for="c-end-user" { (t.cd_end_user) } input #c-end-user name="end_user" type="text" required; }
                p { label for="c-consignee" { (t.cd_consignee) } input #c-consignee name="consignee" type="text" required; }
                p { label for="c-dest" { (t.cd_destination) } input #c-dest name="destination_country" type="text" maxlength="2" required; }
                p { label for="c-amount" { (t.cd_amount) } input #c-amount name="amount" type="text" required aria-describedby="c-amount-help"; small #c-amount-help { (t.cd_amount_help) } }
                p { label for="c-currency" { (t.cd_currency) } input #c-currency name="currency" type="text" maxlength="3" value="EUR" required; }
            }
            p { label for="c-items" { (t.cd_items) } textarea #c-items name="items" rows="3" required aria-describedby="c-items-help" {} small #c-items-help { (t.cd_items_help) } }
            p { label for="c-free" { (t.cd_free_text) } textarea #c-free name="free_text" rows="3" {} }
            p { button #consult-submit type="submit" { (t.consult_send_request) } }
        }
    };
    html_response(page(Some(&ctx), t, t.consult_new, body))
}

/// The items of a form's text area, one a line, `description | category` (the
/// category optional), as `details.json` items.
fn items_json(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.rsplit_once('|') {
            Some((d, c)) if !c.trim().is_empty() => {
                serde_json::json!({"description": d.trim(), "category": c.trim()})
            }
            _ => serde_json::json!({"description": l.trim_end_matches('|').trim()}),
        })
        .collect()
}

/// The API's request body from the form.
fn request_json(pairs: &[(String, String)]) -> serde_json::Value {
    let f = |n: &str| field(pairs, n).unwrap_or("").trim().to_owned();
    let items = items_json(&f("items"));
    let mut details = serde_json::json!({
        "items": items,
        "end_user": f("end_user"),
        "consignee": f("consignee"),
        "destination_country": f("destination_country").to_ascii_uppercase(),
        "value": {"amount": f("amount"), "currency": f("currency").to_ascii_uppercase()},
    });
    if let (Some(x), Some(o)) = (field(pairs, "free_text"), details.as_object_mut()) {
        o.insert("free_text".into(), x.trim().into());
    }
    let mut body = serde_json::json!({
        "entry_id": f("entry_id"),
        "reference": f("reference"),
        "details": details,
    });
    for k in ["deadline", "origin"] {
        if let (Some(x), Some(o)) = (field(pairs, k), body.as_object_mut()) {
            o.insert(k.into(), x.trim().into());
        }
    }
    body
}

pub(super) async fn request(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let pairs = form_pairs(&body);
    let json = Bytes::from(request_json(&pairs).to_string());
    match crate::consultations::request(State(state), Extension(ctx.actor.clone()), json).await {
        Ok(axum::Json(r)) => {
            let v = serde_json::to_value(&r).unwrap_or_default();
            match g(&v, "consultation_id").as_str() {
                Some(id) => see_other(&format!("/ui/consultations/{id}?done=requested")),
                None => see_other("/ui/consultations?box=sent"),
            }
        }
        Err(e) => e.page(&ctx),
    }
}

/// A hit report to an entry's origin (`POST /v1/hits`), from a hit on the screening
/// page or a case.
pub(super) async fn hit_report(
    State(state): State<ApiState>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> Response {
    let t = ctx.t;
    let pairs = form_pairs(&body);
    let mut json = serde_json::json!({
        "entry_id": field(&pairs, "entry").unwrap_or(""),
        "context": field(&pairs, "context").unwrap_or(""),
        "details": field(&pairs, "details").unwrap_or(""),
    });
    if let (Some(o), Some(m)) = (field(&pairs, "origin"), json.as_object_mut()) {
        m.insert("origin".into(), o.into());
    }
    match crate::consultations::hit(
        State(state),
        Extension(ctx.actor.clone()),
        Bytes::from(json.to_string()),
    )
    .await
    {
        Ok(axum::Json(r)) => {
            let v = serde_json::to_value(&r).unwrap_or_default();
            let body = html! {
                p.notice role="status" #notice { (t.hit_report_sent) " " strong { (g(&v, "origin").as_str().unwrap_or("")) } }
                p { small { (t.hit_report_message_id) ": " code #hit-message-id { (g(&v, "message_id").as_str().unwrap_or("")) } } }
                @if let Some(case) = field(&pairs, "case") {
                    p { a href=(format!("/ui/cases/{case}")) { (t.case_title) " " code { (case) } } }
                }
            };
            html_response(page(Some(&ctx), t, t.hit_report_title, body))
        }
        Err(e) => e.page(&ctx),
    }
}

/// The hit report form of one hit: context and what happened.
pub(super) fn hit_report_form(ctx: &Ctx, case_id: &str, origin: &str, entry: &str) -> Markup {
    let t = ctx.t;
    let ctx_id = format!("hr-context-{entry}");
    let det_id = format!("hr-details-{entry}");
    html! {
        details.hit-report {
            summary { (t.hit_report_send) }
            form method="post" action="/ui/hits" {
                (ctx.csrf_field())
                input type="hidden" name="entry" value=(entry);
                input type="hidden" name="origin" value=(origin);
                input type="hidden" name="case" value=(case_id);
                label for=(ctx_id) { (t.hit_report_context) }
                select id=(ctx_id) name="context" {
                    option value="customs" { (t.hit_context_customs) }
                    option value="licensing" { (t.hit_context_licensing) }
                    option value="other" { (t.hit_context_other) }
                }
                label for=(det_id) { (t.hit_report_details) }
                textarea id=(det_id) name="details" rows="2" required {}
                button.hit-report-submit type="submit" { (t.hit_report_submit) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Every consultation message type reads as words from the catalogue, never as its
    /// routing string (a refusal once showed as `consult_refusal`).
    #[test]
    fn every_consultation_message_kind_has_a_label() {
        for kind in wlnode_consult::payload::KINDS
            .iter()
            .filter(|k| k.starts_with("consult_"))
        {
            let label = message_label(&crate::console::text::EN, kind);
            assert_ne!(&*label, *kind, "{kind} has no label");
            assert!(!label.is_empty());
        }
    }

    /// The supply-info form's corrected details: each wrong field gets its own error,
    /// unchanged details are not sent again, and corrected ones replace them.
    #[test]
    fn supply_info_details_are_checked_field_by_field() {
        let t = &crate::console::text::EN;
        let held = TransactionDetails::from_json(
            br#"{"items":[{"description":"milling machine","category":"2B001"}],"end_user":"Gulf Machinery","consignee":"Gulf FZE","destination_country":"AE","value":{"amount":"1250000.00","currency":"EUR"}}"#,
        )
        .unwrap();
        let form = |over: &[(&str, &str)]| {
            let mut f = SupplyForm::prefilled(&held).values;
            for (k, v) in over {
                f.retain(|(n, _)| n != k);
                f.push(((*k).to_owned(), (*v).to_owned()));
            }
            f
        };
        assert_eq!(supply_details(t, &form(&[]), &held).unwrap(), None);
        let errs = supply_details(
            t,
            &form(&[
                ("amount", "01.5"),
                ("destination_country", "A1"),
                ("consignee", " "),
                ("items", "lathe | not a category!"),
            ]),
            &held,
        )
        .unwrap_err();
        let names: Vec<_> = errs.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["items", "consignee", "destination_country", "amount"]
        );
        assert_eq!(errs[3].1, t.err_amount);
        let d = supply_details(
            t,
            &form(&[
                ("end_user", "Gulf Machinery Trading LLC"),
                ("items", "milling machine | 2B001\nspindle"),
                ("currency", "usd"),
                ("free_text", "Second shipment"),
            ]),
            &held,
        )
        .unwrap()
        .unwrap();
        assert_eq!(d.end_user, "Gulf Machinery Trading LLC");
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.value.currency, "USD");
        assert_eq!(d.free_text.as_deref(), Some("Second shipment"));
        assert_eq!(d.consignee, held.consignee);
    }

    #[test]
    fn the_request_form_becomes_the_apis_body() {
        let pairs: Vec<(String, String)> = [
            ("entry_id", "0123"),
            ("reference", " LIC-1 "),
            ("items", "milling machine | 2B001\nspare parts\n"),
            ("end_user", "Gulf Machinery"),
            ("consignee", "Gulf FZE"),
            ("destination_country", "ae"),
            ("amount", "1250000.00"),
            ("currency", "eur"),
            ("deadline", "14d"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let v = request_json(&pairs);
        assert_eq!(v["reference"], "LIC-1");
        assert_eq!(v["deadline"], "14d");
        assert!(v.get("origin").is_none());
        let d = &v["details"];
        assert_eq!(d["destination_country"], "AE");
        assert_eq!(d["value"]["currency"], "EUR");
        assert_eq!(
            d["items"],
            serde_json::json!([
                {"description": "milling machine", "category": "2B001"},
                {"description": "spare parts"}
            ])
        );
        // The consult crate reads it.
        wlnode_consult::TransactionDetails::from_json(d.to_string().as_bytes()).unwrap();
    }
}
