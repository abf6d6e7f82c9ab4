//! Art. 16 consultations and the sealed-message inbox over the API (issue 21), for the
//! `consultant` role: `POST /v1/consultations` (request one of an entry's origin),
//! `GET /v1/consultations` (`?state=`, `?role=sent|received`),
//! `GET /v1/consultations/{id}`, `POST /v1/consultations/{id}/respond` (at the origin),
//! `POST /v1/consultations/{id}/supply-info` (at the requester, after
//! `info_requested`), `POST /v1/consultations/{id}/decide` (at the requester),
//! `GET /v1/inbox`, and
//! `POST /v1/hits` (a sealed hit report to an entry's origin; `screener` or
//! `consultant`).
//! Every write is attributed to the user (`acted` audit event, written by
//! `wlnode_runtime::consultations`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use wlnode_consult::{
    Answer, ConsultError, DeadlineBounds, Decision, Role as ConsultRole, TransactionDetails,
    parse_deadline,
};
use wlnode_crypto::model::{AgencyCode, EntryId, InvalidValue};
use wlnode_runtime::consultations::{ConsultServiceError, ConsultationRef, Held};
use wlnode_runtime::mail::MailSendError;
use wlnode_runtime::users::Actor;

use super::{ApiError, ApiState, parse_json};

impl From<ConsultServiceError> for ApiError {
    fn from(e: ConsultServiceError) -> Self {
        match e {
            ConsultServiceError::NotFound(_) => Self::not_found(e.to_string()),
            ConsultServiceError::Invalid(_) | ConsultServiceError::BadRef(_) => {
                Self::with_status(StatusCode::BAD_REQUEST, "invalid", e.to_string())
            }
            ConsultServiceError::Consult(ConsultError::Invalid(_)) => {
                Self::with_status(StatusCode::BAD_REQUEST, "invalid_field", e.to_string())
            }
            ConsultServiceError::Consult(_) => {
                Self::with_status(StatusCode::CONFLICT, "refused", e.to_string())
            }
            ConsultServiceError::HitReportNotRequested { .. } => Self::with_status(
                StatusCode::CONFLICT,
                "hit_report_not_requested",
                e.to_string(),
            ),
            ConsultServiceError::AmbiguousEntry { .. } => {
                Self::with_status(StatusCode::CONFLICT, "ambiguous_entry", e.to_string())
            }
            ConsultServiceError::AmbiguousConsultation { .. } => Self::with_status(
                StatusCode::CONFLICT,
                "ambiguous_consultation",
                e.to_string(),
            ),
            ConsultServiceError::Mail(MailSendError::Recipient(_)) => {
                Self::with_status(StatusCode::CONFLICT, "no_encryption_key", e.to_string())
            }
            ConsultServiceError::Mail(MailSendError::Store(s)) | ConsultServiceError::Store(s) => {
                s.into()
            }
            ConsultServiceError::Mail(_) | ConsultServiceError::Corrupt(_) => Self::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
        }
    }
}

/// One message sent for a consultation.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct MessageView {
    message_id: String,
    kind: String,
    to: String,
    /// `pending`, `delivered` (the recipient's signed receipt came back) or `expired`.
    delivery: String,
    /// A "granted despite denial" decision notice.
    notice: bool,
}

/// A consultation as listed and shown.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ConsultationView {
    consultation_id: String,
    /// `REQUESTER:ID`: names this consultation wherever an id does, also when
    /// several requesters used its id with us (the id alone is then ambiguous).
    key: String,
    entry_id: String,
    origin: String,
    requester: String,
    reference: String,
    /// `sent` (we asked) or `received` (our entry).
    role: String,
    /// `open`, `answered`, `expired`, `decided` or `refused_by_origin` (the origin
    /// sent a signed refusal of the request or the current round).
    state: String,
    /// RFC 3339.
    deadline: String,
    /// RFC 3339: when the requester sent the request (at the requester), when it
    /// arrived here (at the origin).
    requested_at: String,
    /// What silence means here: `no_objection` or `objection`.
    silence: String,
    /// The origin's answer: `objection`, `no_objection` or `info_requested`.
    answer: Option<String>,
    answer_reason: Option<String>,
    /// Whether the answer arrived after the deadline, signed by the origin before it
    /// (within five minutes): it counts unless the decision was already taken on
    /// silence, which then stands.
    answer_late: bool,
    /// RFC 3339: when the origin signed a late answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_signed_at: Option<String>,
    /// Why the origin refused, for `refused_by_origin`: `deadline_too_short`,
    /// `deadline_too_long`, `not_our_entry`, `unknown_consultation`, `too_many_open`,
    /// `wrong_round` or `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    /// The answer a decision is judged against: the origin's current answer, or,
    /// once expired unanswered, what the roster's silence rule counts silence as.
    deemed_answer: Option<String>,
    /// `granted` or `refused`.
    decision: Option<String>,
    decision_reason: Option<String>,
    /// `objection`, `expired_denial` or `none`, for a decision.
    despite: Option<String>,
    /// Delivery of the request (requester's side): `pending`, `delivered`, `expired`;
    /// `received` at the origin.
    delivery: String,
    messages: Vec<MessageView>,
    /// The intended transaction (in `show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

/// The order of consultation lists, in the API and the console: the newest request
/// first, by the minute the lists show; among those, the earliest deadline by the
/// minute, then the reference, then the id (closing note s32: rows of the same
/// minute came in id order, not by reference).
pub(crate) fn list_order(
    a: &wlnode_consult::Consultation,
    b: &wlnode_consult::Consultation,
) -> std::cmp::Ordering {
    let minute = |t: wlnode_crypto::Timestamp| t.as_millis() / 60_000;
    minute(b.requested_at())
        .cmp(&minute(a.requested_at()))
        .then(minute(a.deadline()).cmp(&minute(b.deadline())))
        .then_with(|| a.reference().cmp(b.reference()))
        .then_with(|| a.id().0.cmp(&b.id().0))
}

fn view(h: &Held, with_details: bool) -> ConsultationView {
    let c = &h.consultation;
    let last = c.answers().last();
    let role = match c.role() {
        ConsultRole::Requester => "sent",
        ConsultRole::Origin => "received",
    };
    let delivery = match c.role() {
        ConsultRole::Requester => h
            .messages
            .iter()
            .find(|m| m.kind == "consult_request")
            .map_or_else(|| "pending".into(), |m| m.delivery.clone()),
        ConsultRole::Origin => "received".into(),
    };
    ConsultationView {
        consultation_id: c.id().to_hex(),
        key: ConsultationRef::of(c.requester().clone(), c.id()).to_string(),
        entry_id: c.entry_id().to_hex(),
        origin: c.origin().to_string(),
        requester: c.requester().to_string(),
        reference: c.reference().to_owned(),
        role: role.into(),
        state: c.state().as_str().into(),
        deadline: c.deadline().to_rfc3339(),
        requested_at: c.requested_at().to_rfc3339(),
        silence: c.silence().as_str().into(),
        answer: last.map(|a| a.answer.as_str().to_owned()),
        answer_reason: last.and_then(|a| a.reason.clone()),
        answer_late: last.is_some_and(|a| a.late()),
        answer_signed_at: last.and_then(|a| a.signed_at).map(|t| t.to_rfc3339()),
        refusal: c.refusal().map(|r| r.reason.as_str().to_owned()),
        deemed_answer: c.deemed_answer().map(|a| a.as_str().to_owned()),
        decision: c.decision().map(|d| d.decision.as_str().to_owned()),
        decision_reason: c.decision().and_then(|d| d.reason.clone()),
        despite: c.decision().map(|d| d.despite.as_str().to_owned()),
        delivery,
        messages: h
            .messages
            .iter()
            .map(|m| MessageView {
                message_id: m.message_id.to_hex(),
                kind: m.kind.clone(),
                to: m.to.to_string(),
                delivery: m.delivery.clone(),
                notice: m.notice,
            })
            .collect(),
        details: with_details.then(|| serde_json::to_value(c.details()).unwrap_or_default()),
    }
}

/// Body of `POST /v1/consultations`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestBody {
    /// The entry (of another agency) the intended transaction resembles.
    entry_id: String,
    /// The licence application's reference.
    reference: String,
    /// The intended transaction: items (description, category), end_user, consignee,
    /// destination_country, value (amount, currency), free_text.
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// How long the origin has to answer, e.g. `30d` (default 30d).
    #[serde(default)]
    deadline: Option<String>,
    /// The entry's origin agency: required when several agencies hold an entry with
    /// this id (else 409 `ambiguous_entry`).
    #[serde(default)]
    origin: Option<String>,
}

/// The optional `origin` field as an agency code.
fn origin_field(origin: Option<&str>) -> Result<Option<AgencyCode>, ApiError> {
    origin
        .map(|o| {
            AgencyCode::new(o.trim())
                .map_err(|e| ApiError::invalid(InvalidValue::new("origin", format!("{o:?}: {e}"))))
        })
        .transpose()
}

/// Answer of `POST /v1/consultations`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Requested {
    consultation_id: String,
    origin: String,
    /// RFC 3339.
    deadline: String,
}

/// A consultation named in a path: `ID` (32 hex characters), or `REQUESTER:ID`
/// when several requesters used the id with us (the id alone then answers 409
/// `ambiguous_consultation`, naming them).
pub(crate) fn consultation_id(s: &str) -> Result<ConsultationRef, ApiError> {
    ConsultationRef::parse(s).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "id",
            format!(
                "{:?} is not a consultation id (32 hex characters, or REQUESTER:ID)",
                s.chars().take(80).collect::<String>()
            ),
        ))
    })
}

#[utoipa::path(post, path = "/v1/consultations", tag = "consultations", request_body = RequestBody,
    responses((status = 200, body = Requested), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn request(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<Requested>, ApiError> {
    let b: RequestBody = parse_json(&body)?;
    let origin = origin_field(b.origin.as_deref())?;
    let entry = EntryId::from_hex(b.entry_id.trim()).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "entry_id",
            format!("{:?} is not an entry id (32 hex characters)", b.entry_id),
        ))
    })?;
    let details_bytes = serde_json::to_vec(&b.details).unwrap_or_default();
    let details = TransactionDetails::from_json(&details_bytes).map_err(|e| {
        ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            format!("details: {e}"),
        )
    })?;
    // The roster may lower the shortest deadline (a demonstration federation does).
    let bounds = DeadlineBounds {
        min: std::time::Duration::from_secs(
            state.node.trust.roster().consultation_min_deadline_secs(),
        ),
        ..DeadlineBounds::DEFAULT
    };
    let deadline = parse_deadline(b.deadline.as_deref().unwrap_or("30d"), bounds)
        .map_err(|e| ApiError::invalid(InvalidValue::new("deadline", e.to_string())))?;
    let held = state
        .node
        .consultations
        .request(&actor.id, entry, origin, b.reference, details, deadline)
        .await?;
    let c = &held.consultation;
    Ok(Json(Requested {
        consultation_id: c.id().to_hex(),
        origin: c.origin().to_string(),
        deadline: c.deadline().to_rfc3339(),
    }))
}

#[derive(Deserialize)]
pub(super) struct ListParams {
    state: Option<String>,
    role: Option<String>,
}

#[utoipa::path(get, path = "/v1/consultations", tag = "consultations",
    params(("state" = Option<String>, Query, description = "open, answered, expired, decided or refused_by_origin"),
        ("role" = Option<String>, Query, description = "sent or received")),
    responses((status = 200, body = [ConsultationView]), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc)))]
pub(super) async fn list(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<ConsultationView>>, ApiError> {
    if let Some(s) = &p.state
        && ![
            "open",
            "answered",
            "expired",
            "decided",
            "refused_by_origin",
        ]
        .contains(&s.as_str())
    {
        return Err(ApiError::invalid(InvalidValue::new(
            "state",
            format!("{s:?} is not open, answered, expired, decided or refused_by_origin"),
        )));
    }
    if let Some(r) = &p.role
        && !["sent", "received"].contains(&r.as_str())
    {
        return Err(ApiError::invalid(InvalidValue::new(
            "role",
            format!("{r:?} is not sent or received"),
        )));
    }
    let mut all = state.node.consultations.list().await?;
    all.sort_by(|a, b| list_order(&a.consultation, &b.consultation));
    let out: Vec<ConsultationView> = all
        .iter()
        .map(|h| view(h, false))
        .filter(|v| p.state.as_ref().is_none_or(|s| *s == v.state))
        .filter(|v| p.role.as_ref().is_none_or(|r| *r == v.role))
        .collect();
    Ok(Json(out))
}

#[utoipa::path(get, path = "/v1/consultations/{id}", tag = "consultations",
    params(("id" = String, Path, description = "Consultation id, or REQUESTER:ID when several requesters used it (409 ambiguous_consultation otherwise)")),
    responses((status = 200, body = ConsultationView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<ConsultationView>, ApiError> {
    let id = consultation_id(&id)?;
    let held = state.node.consultations.get(id).await?;
    Ok(Json(view(&held, true)))
}

/// Body of `POST /v1/consultations/{id}/respond`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RespondBody {
    /// `objection`, `no_objection` or `info_requested`.
    answer: String,
    /// Why (required for `objection` and `info_requested`).
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/consultations/{id}/respond", tag = "consultations", request_body = RespondBody,
    params(("id" = String, Path, description = "Consultation id, or REQUESTER:ID when several requesters used it (409 ambiguous_consultation otherwise)")),
    responses((status = 200, body = ConsultationView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn respond(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ConsultationView>, ApiError> {
    let id = consultation_id(&id)?;
    let b: RespondBody = parse_json(&body)?;
    let answer = match b.answer.as_str() {
        "objection" => Answer::Objection,
        "no_objection" => Answer::NoObjection,
        "info_requested" => Answer::InfoRequested,
        other => {
            return Err(ApiError::invalid(InvalidValue::new(
                "answer",
                format!("{other:?} is not objection, no_objection or info_requested"),
            )));
        }
    };
    // Checked here too, to name the CLI's flag (the payload check names the field).
    if answer.needs_reason() && b.reason.is_none() {
        return Err(ApiError::invalid(InvalidValue::new(
            "reason",
            format!(
                "is required with {} (`wlnode consult respond --reason TEXT`)",
                b.answer
            ),
        )));
    }
    let held = state
        .node
        .consultations
        .respond(&actor.id, id, answer, b.reason)
        .await?;
    Ok(Json(view(&held, false)))
}

/// Body of `POST /v1/consultations/{id}/supply-info`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SupplyInfoBody {
    /// The information the origin asked for (at most 4 KiB).
    text: String,
    /// Corrected transaction details, when they changed (as for a request).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
    /// How long the origin has to answer the new round, e.g. `30d` (default 30d).
    #[serde(default)]
    deadline: Option<String>,
}

#[utoipa::path(post, path = "/v1/consultations/{id}/supply-info", tag = "consultations", request_body = SupplyInfoBody,
    params(("id" = String, Path, description = "Consultation id, or REQUESTER:ID when several requesters used it (409 ambiguous_consultation otherwise)")),
    responses((status = 200, body = ConsultationView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn supply_info(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ConsultationView>, ApiError> {
    let id = consultation_id(&id)?;
    let b: SupplyInfoBody = parse_json(&body)?;
    let details = b
        .details
        .map(|d| {
            TransactionDetails::from_json(&serde_json::to_vec(&d).unwrap_or_default()).map_err(
                |e| {
                    ApiError::with_status(
                        StatusCode::BAD_REQUEST,
                        "invalid_field",
                        format!("details: {e}"),
                    )
                },
            )
        })
        .transpose()?;
    let deadline = parse_deadline(
        b.deadline.as_deref().unwrap_or("30d"),
        DeadlineBounds::DEFAULT,
    )
    .map_err(|e| ApiError::invalid(InvalidValue::new("deadline", e.to_string())))?;
    let held = state
        .node
        .consultations
        .supply_info(&actor.id, id, b.text, details, deadline)
        .await?;
    Ok(Json(view(&held, false)))
}

/// Body of `POST /v1/consultations/{id}/decide`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideBody {
    /// `granted` or `refused`.
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/consultations/{id}/decide", tag = "consultations", request_body = DecideBody,
    params(("id" = String, Path, description = "Consultation id, or REQUESTER:ID when several requesters used it (409 ambiguous_consultation otherwise)")),
    responses((status = 200, body = ConsultationView), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn decide(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ConsultationView>, ApiError> {
    let id = consultation_id(&id)?;
    let b: DecideBody = parse_json(&body)?;
    let decision = match b.decision.as_str() {
        "granted" => Decision::Granted,
        "refused" => Decision::Refused,
        other => {
            return Err(ApiError::invalid(InvalidValue::new(
                "decision",
                format!("{other:?} is not granted or refused"),
            )));
        }
    };
    let held = state
        .node
        .consultations
        .decide(&actor.id, id, decision, b.reason)
        .await?;
    Ok(Json(view(&held, false)))
}

/// A message delivered to this agency.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct InboxView {
    message_id: String,
    from: String,
    /// `consult_request`, `consult_answer`, `consult_decision` (also the "granted
    /// despite denial" notice), `hit_report`, `flag`, ...
    kind: String,
    /// RFC 3339, the sender's clock.
    created_at: String,
    /// RFC 3339.
    received_at: String,
    /// The opened body (JSON).
    #[schema(value_type = Object)]
    body: serde_json::Value,
}

#[utoipa::path(get, path = "/v1/inbox", tag = "consultations",
    responses((status = 200, body = [InboxView]), (status = 401, body = super::openapi::ErrorDoc), (status = 403, body = super::openapi::ErrorDoc)))]
pub(super) async fn inbox(State(state): State<ApiState>) -> Result<Json<Vec<InboxView>>, ApiError> {
    let items = state
        .node
        .mail
        .inbox(1000)
        .await
        .map_err(|e| ApiError::from(ConsultServiceError::Mail(e)))?;
    Ok(Json(
        items
            .into_iter()
            .map(|m| InboxView {
                message_id: m.message_id.to_hex(),
                from: m.from.to_string(),
                kind: m.kind,
                created_at: wlnode_crypto::Timestamp(m.created_at).to_rfc3339(),
                received_at: wlnode_crypto::Timestamp(m.received_at).to_rfc3339(),
                body: serde_json::from_str(&m.body).unwrap_or(serde_json::Value::String(m.body)),
            })
            .collect(),
    ))
}

/// Body of `POST /v1/hits`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HitBody {
    /// The entry (of another agency) that was hit.
    entry_id: String,
    /// `customs`, `licensing` or `other`.
    context: String,
    /// What happened (free text, at most 4 KiB).
    details: String,
    /// The entry's origin agency: required when several agencies hold an entry with
    /// this id (else 409 `ambiguous_entry`).
    #[serde(default)]
    origin: Option<String>,
}

/// Answer of `POST /v1/hits`.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct HitSent {
    message_id: String,
    origin: String,
}

#[utoipa::path(post, path = "/v1/hits", tag = "consultations", request_body = HitBody,
    responses((status = 200, body = HitSent), (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc),
        (status = 403, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 409, body = super::openapi::ErrorDoc)))]
pub(super) async fn hit(
    State(state): State<ApiState>,
    Extension(actor): Extension<Actor>,
    body: Bytes,
) -> Result<Json<HitSent>, ApiError> {
    let b: HitBody = parse_json(&body)?;
    let origin = origin_field(b.origin.as_deref())?;
    let entry = EntryId::from_hex(b.entry_id.trim()).map_err(|_| {
        ApiError::invalid(InvalidValue::new(
            "entry_id",
            format!("{:?} is not an entry id (32 hex characters)", b.entry_id),
        ))
    })?;
    let context = match b.context.as_str() {
        "customs" => wlnode_consult::HitContext::Customs,
        "licensing" => wlnode_consult::HitContext::Licensing,
        "other" => wlnode_consult::HitContext::Other,
        other => {
            return Err(ApiError::invalid(InvalidValue::new(
                "context",
                format!("{other:?} is not customs, licensing or other"),
            )));
        }
    };
    let (id, origin) = state
        .node
        .consultations
        .hit_report(&actor.id, entry, origin, context, b.details)
        .await?;
    Ok(Json(HitSent {
        message_id: id.to_hex(),
        origin: origin.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::list_order;
    use wlnode_consult::{Consultation, ConsultationId, SilenceMeans, TransactionDetails};
    use wlnode_crypto::Timestamp;

    fn received(id: u8, reference: &str, at: u64, deadline: u64) -> Consultation {
        let req = wlnode_consult::ConsultRequest {
            receipt: None,
            consultation_id: ConsultationId([id; 16]),
            entry_id: wlnode_crypto::model::EntryId([4; 16]),
            record_id: wlnode_crypto::model::RecordId([5; 32]),
            version: 1,
            reference: reference.into(),
            deadline: Timestamp(deadline),
            details: TransactionDetails {
                items: vec![wlnode_consult::Item {
                    description: "valves".into(),
                    category: None,
                }],
                end_user: "End user".into(),
                consignee: "Consignee".into(),
                destination_country: "AE".parse().unwrap(),
                value: wlnode_consult::Money {
                    amount: "10.00".into(),
                    currency: "EUR".into(),
                },
                free_text: None,
            },
        };
        Consultation::receive_request(
            &"AA-X".parse().unwrap(),
            &"BB-Y".parse().unwrap(),
            req,
            SilenceMeans::NoObjection,
            std::time::Duration::from_secs(60),
            Timestamp(at),
        )
        .unwrap()
    }

    /// Rows of the same minute and deadline sort by reference, then id; a newer
    /// minute still comes first.
    #[test]
    fn ties_sort_by_reference_then_id() {
        let day = 86_400_000;
        let t = 100 * 60_000;
        let mut all = [
            received(1, "PG-05", t + 10, t + 30 * day + 10),
            received(2, "PG-01", t + 900, t + 30 * day + 900),
            received(3, "PG-06", t + 5, t + 30 * day + 5),
            received(9, "PG-02", t + 50, t + 30 * day + 50),
            received(4, "PG-02", t + 40, t + 30 * day + 40),
            received(5, "PG-00", t - 60_000, t + 30 * day),
        ];
        all.sort_by(list_order);
        let order: Vec<(&str, u8)> = all.iter().map(|c| (c.reference(), c.id().0[0])).collect();
        assert_eq!(
            order,
            [
                ("PG-01", 2),
                ("PG-02", 4),
                ("PG-02", 9),
                ("PG-05", 1),
                ("PG-06", 3),
                ("PG-00", 5)
            ]
        );
    }
}
