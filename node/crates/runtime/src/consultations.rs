//! Art. 16 consultations in the running node (issue 21): the store of consultations
//! this agency sent or received, and the task that applies incoming consultation
//! messages and deadlines to them.
//!
//! Every decision about a consultation is the pure `wlnode_consult::Consultation`'s;
//! this module looks up the entry (origin, head record, distribution), turns the
//! machine's actions into sealed messages through [`Mail`], persists each
//! consultation in `LocalTable::Consultations`, audits each officer's write as an
//! `acted` event, and keeps per consultation which of its messages were delivered
//! (from the recipients' signed receipts). A grant despite a denial computes the
//! members the entry's distribution admits with the policy crate's `admits`, so the
//! notice reaches every admitted member and nobody else.
//!
//! Table layout: `k` + consultation id (16 bytes) + requester → [`Held`] (JSON):
//! a consultation is keyed by its requester and id, never by the id alone (review
//! s33/s34-consult L1: a member's request under another member's id, then
//! information for it, told it whether the id was held; now a member's messages
//! only ever reach its own consultations, and another member's request under the
//! same id opens a consultation of its own, from the roster's
//! `consult_keyed_by_requester_since`: before it, it is refused as before s35, so an
//! older auditor never sees two requesters under one id; review s35-key H1). Our own consultations as requester are
//! (us, id). `c` + consultation id → [`Held`] is the layout before (one row per
//! id), moved to `k` once per start ([`Consultations::migration`]).
//! `m` + message id → consultation id + requester (before: the id alone); `p` + message id + sender → (empty): an inbox message already
//! applied; `d` + the same → `HeldDecision` (JSON): a decision that arrived before
//! the deadline by our clock but within the clock skew, with the consultation's
//! state then, applied once the deadline has passed (an empty value: applied or
//! refused, written in the same batch as the applied mark, removed later); `r` +
//! member + 0 + consultation id + round (big-endian) → the refusal's message id and
//! the time (Unix ms, big-endian) the row is kept until: the one signed refusal sent
//! for that request or round; `q` + member + 0 + UTC day → refusals sent to that
//! member that day (see [`MAX_REFUSALS_PER_MEMBER_PER_DAY`]). Both are pruned once an
//! hour ([`Consultations::prune_refusals`]): a mark after the refused message's
//! deadline plus [`REFUSAL_ROW_MARGIN_MS`], never more than
//! [`REFUSAL_ROW_MAX_KEEP_MS`] after it was written; a count after its day. Each pass
//! scans a page of each kind and the next resumes after it, wrapping around, so rows
//! of members that sort first cannot hide the others' (review s32-consult L3).
//!
//! **Refusals go back signed.** A request or a round of information the origin
//! refuses (deadline shorter than the roster's minimum, not its entry, too many open,
//! unknown consultation, wrong round) is audited as refused as before, and the
//! requester is sent a sealed `consult_refusal` with the consultation id, the round
//! a reason code and the id of the message it refuses (signed; the requester takes
//! a refusal only if it names the message it sent for that round), so its
//! consultation ends `refused_by_origin` instead of reading as expiry by silence. At
//! most one per member, consultation and round, at most
//! [`MAX_REFUSALS_PER_MEMBER_PER_DAY`], never to ourselves, and only in reply to a
//! request or information: a refusal is never answered with one. A member's
//! messages are looked up among its own consultations only (review s31-fixes C3,
//! s33/s34-consult L1), so what it is answered never depends on another member's
//! consultations under the same id. It is sent at most
//! once (the mark is written first; a crash in between loses it, and the requester's
//! consultation then expires as before).
//!
//! **Save, then send** (review of issue 21, finding 14). A transition's messages get
//! their ids first and are saved with the new state ([`Held::outgoing`]) in one
//! durable write, with its audit events; only then do they go to the mail service,
//! which is idempotent by id ([`Mail::send_as`]). A crash in between leaves the
//! consultation in its new state with its messages `unsent`; the task sends them at
//! its next start (and on every tick until they are out), never twice.
//!
//! **Nothing is lost to a crash or a lagging subscriber** (finding 17): receipts and
//! expiries reach us as notices, which a crash or a full notice queue can lose; at
//! start and after a lag every `pending` message is looked up in the outbox, whose
//! state the mail service keeps durably.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast, watch};
use wlnode_consult::evidence::ReceiptStep;
use wlnode_consult::{
    Action, Answer, ConsultError, ConsultRefusal, Consultation, ConsultationId, Decision,
    NewRequest, Payload, RefusalReason, Role as ConsultRole, SilenceMeans, State,
    TransactionDetails, deadline_after,
};
use wlnode_crypto::mail::MAX_EXPIRY_MS;
use wlnode_crypto::model::{AgencyCode, EntryId, MessageId};
use wlnode_crypto::roster::SilenceRule;
use wlnode_crypto::time::Timestamp;
use wlnode_store::tables::{LocalTable, MAX_RANGE};
use wlnode_store::{StoreError, StoreHandle};

use crate::mail::{InboxItem, Mail, MailNotice, MailSendError};
use crate::trust::TrustCell;
use crate::users::acted;

/// The layout before consultations were keyed by requester: `c` + id.
const LEGACY_CONSULT: u8 = b'c';
/// `k` + id + requester.
const CONSULT: u8 = b'k';
const MESSAGE: u8 = b'm';
const APPLIED: u8 = b'p';
const DEFERRED: u8 = b'd';
const REFUSED: u8 = b'r';
const REFUSAL_QUOTA: u8 = b'q';

/// Signed refusals (`consult_refusal`) this node sends one member in one UTC day, at
/// most: each answers a request or a round of information we refused, so a member
/// sending bad requests by the thousand gets at most this many messages back (and our
/// outbox keeps at most this many a day per member, for two days).
pub const MAX_REFUSALS_PER_MEMBER_PER_DAY: u32 = 100;
/// How long a refusal message lives.
const REFUSAL_TTL_MS: u64 = 2 * 86_400_000;
/// The once-per-round mark of a refusal is kept past the refused message's deadline
/// by this much (one day), then pruned.
pub const REFUSAL_ROW_MARGIN_MS: u64 = 86_400_000;
/// ... and never longer than this (30 days) past when it was written, whatever the
/// deadline asked for: with [`MAX_REFUSALS_PER_MEMBER_PER_DAY`] a member can make us
/// keep at most 100 x 31 such rows.
pub const REFUSAL_ROW_MAX_KEEP_MS: u64 = 30 * 86_400_000;

/// Why a consultation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsultServiceError {
    /// No such consultation or entry.
    #[error("{0}")]
    NotFound(String),
    /// The request is not valid here (own entry, unknown origin, bad version).
    #[error("{0}")]
    Invalid(String),
    /// The consultation's rules refused it.
    #[error("{0}")]
    Consult(#[from] ConsultError),
    /// Sending failed.
    #[error("{0}")]
    Mail(#[from] MailSendError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored consultation does not decode.
    #[error("consultation table is corrupt: {0}")]
    Corrupt(String),
    /// A consultation named by an officer (`ID` or `REQUESTER:ID`) does not parse.
    #[error(transparent)]
    BadRef(#[from] ConsultationRefError),
    /// Several requesters' consultations share this id here and none was named.
    #[error(
        "consultation {id} is held from several requesters ({}): name one as REQUESTER:ID",
        .requesters.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousConsultation {
        /// The consultation id.
        id: ConsultationId,
        /// The requesters holding one under it.
        requesters: Vec<AgencyCode>,
    },
    /// The entry's origin did not ask to be told of hits.
    #[error(
        "entry {entry} of {origin} does not ask for hit reports (its origin set no \"on_hit\": \"notify\")"
    )]
    HitReportNotRequested {
        /// The entry.
        entry: EntryId,
        /// Its origin.
        origin: AgencyCode,
    },
    /// Several agencies hold an entry with this id and none was named: asking the
    /// wrong one would disclose the transaction to it.
    #[error(
        "entry {entry} is held from several origins ({}): name one with origin",
        .origins.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousEntry {
        /// The entry id.
        entry: EntryId,
        /// The origins holding it.
        origins: Vec<AgencyCode>,
    },
}

/// One of a consultation's messages and whether it arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    /// The sealed message.
    pub message_id: MessageId,
    /// Its type (`consult_request`, ...).
    pub kind: String,
    /// Its recipient.
    pub to: AgencyCode,
    /// `unsent` (saved, not yet handed to the mail service), `pending`, `delivered`
    /// (signed receipt back), `expired`, or `undeliverable` (a member without an
    /// encryption key: a notice found so when planned has an all-zero id).
    pub delivery: String,
    /// Whether it was a decision notice ("granted despite denial").
    #[serde(default)]
    pub notice: bool,
}

/// A consultation as this node keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The state machine.
    pub consultation: Consultation,
    /// Messages this node sent for it.
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    /// Messages saved with the state that produced them and not yet handed to the
    /// mail service (sent by id, so at most once, after a crash too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing: Vec<Outgoing>,
}

/// A message of a consultation saved before it is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The id it will carry (chosen before saving).
    pub message_id: MessageId,
    /// The recipient.
    pub to: AgencyCode,
    /// Its type.
    pub kind: String,
    /// The canonical payload (JSON, at most 64 KiB).
    pub body: String,
    /// How long it lives.
    pub ttl_ms: u64,
}

fn silence_of(r: SilenceRule) -> SilenceMeans {
    match r {
        SilenceRule::NoObjection => SilenceMeans::NoObjection,
        SilenceRule::Objection => SilenceMeans::Objection,
    }
}

/// The trail steps (audit events, metadata only) between two states of one
/// consultation, with a `notice_sent` step for each notice in `notices`.
fn trail(
    before: Option<&Consultation>,
    after: &Consultation,
    notices: &[MessageRef],
) -> Vec<wlnode_audit::event::Event> {
    use wlnode_consult::{TrailEvent, TrailKind};
    let (requester, origin) = (after.requester().clone(), after.origin().clone());
    let step = |kind: TrailKind, at: Timestamp, from: &AgencyCode, to: &AgencyCode| {
        wlnode_audit::event::Event::new(
            Timestamp::now().as_millis(),
            wlnode_audit::event::EventKind::Consultation {
                step: TrailEvent {
                    consultation_id: after.id(),
                    kind,
                    at,
                    from: from.clone(),
                    to: to.clone(),
                },
            },
        )
    };
    let mut out = Vec::new();
    if before.is_none() {
        out.push(step(
            TrailKind::Requested {
                evidence: after.evidence(ReceiptStep::Request, 1).cloned(),
                deadline: after.deadline(),
            },
            after.requested_at(),
            &requester,
            &origin,
        ));
    }
    let (answers, infos, expired, decided) = before.map_or((0, 0, false, false), |b| {
        (
            b.answers().len(),
            b.infos().len(),
            b.expired_at().is_some(),
            b.decision().is_some(),
        )
    });
    // In the order they happened.
    let mut steps: Vec<(Timestamp, wlnode_audit::event::Event)> = Vec::new();
    for a in after.answers().iter().skip(answers) {
        // An answer that arrived after the deadline, signed before it (finding 13,
        // requester side): its own step, with the signed time, so that the auditor
        // neither reports it as after the deadline nor a decision taken on silence
        // before it as premature. At the requester, with the origin's signed
        // receipt of the answer when it sent one (s33).
        let evidence = after.evidence(ReceiptStep::Answer, a.round).cloned();
        let kind = match a.signed_at {
            Some(signed_at) => TrailKind::AnsweredLate {
                evidence,
                answer: a.answer,
                signed_at,
                arrived_at: a.arrived_at.filter(|t| *t < a.at),
            },
            None => TrailKind::Answered {
                evidence,
                answer: a.answer,
            },
        };
        steps.push((a.at, step(kind, a.at, &origin, &requester)));
    }
    if let (true, Some(r)) = (
        before.is_none_or(|b| b.refusal().is_none()),
        after.refusal(),
    ) {
        steps.push((
            r.at,
            step(
                TrailKind::RefusedByOrigin {
                    evidence: after.evidence(ReceiptStep::Refusal, r.round).cloned(),
                    reason: r.reason,
                },
                r.at,
                &origin,
                &requester,
            ),
        ));
    }
    for i in after.infos().iter().skip(infos) {
        steps.push((
            i.at,
            step(
                TrailKind::InfoSupplied {
                    deadline: after.deadline(),
                },
                i.at,
                &requester,
                &origin,
            ),
        ));
    }
    if let (false, Some(at)) = (expired, after.expired_at()) {
        steps.push((at, step(TrailKind::Expired, at, &origin, &requester)));
    }
    if let (false, Some(d)) = (decided, after.decision()) {
        steps.push((
            d.at,
            step(
                TrailKind::Decided {
                    decision: d.decision,
                    despite: d.despite,
                },
                d.at,
                &requester,
                &origin,
            ),
        ));
        // Only notices handed to the mail service (review s30-consult M3): one
        // saved but not sent is logged when `flush` hands it over.
        for n in notices
            .iter()
            .filter(|n| n.notice && n.delivery != "undeliverable" && n.delivery != "unsent")
        {
            steps.push((d.at, step(TrailKind::NoticeSent, d.at, &requester, &n.to)));
        }
        // At the origin, a decision "despite" arrives as the notice itself, whenever
        // the requester's decision says notices went out: its machine sent one to
        // every admitted member, us included, for any grant it called despite
        // something. A requester that called a grant against our objection (or an
        // expired denial) `none` sent no notice to anyone, and our trail must not
        // show one, so that the auditor reports `grant_without_notice` (review
        // s30-consult2, H1). Its claim may differ from our view without that: it
        // granted on silence (`expired_denial`) before our in-time objection reached
        // it, and notified everyone (review s31-consult, H1).
        let claimed = d.claimed_despite.unwrap_or(d.despite);
        if after.role() == ConsultRole::Origin
            && d.decision == Decision::Granted
            && claimed != wlnode_consult::Despite::None
        {
            steps.push((d.at, step(TrailKind::NoticeSent, d.at, &requester, &origin)));
        }
    }
    steps.sort_by_key(|(at, _)| *at);
    out.extend(steps.into_iter().map(|(_, e)| e));
    out
}

/// The members a decision notice on the entry whose head record here is `rec` goes
/// to (see `Consultations::admitted`): with no hop limit every member the
/// distribution admits; with one, the origin, the member the record came from, and
/// those of `neighbours` to which replication would pass the record from this node.
pub fn admitted_members(
    roster: &wlnode_crypto::roster::Roster,
    rec: &wlnode_types::StoredRecord,
    neighbours: &[AgencyCode],
) -> Vec<AgencyCode> {
    let h = rec.record.header();
    let d = wlnode_policy::DistRef {
        origin: &h.origin,
        scope: h.distribution.scope,
        groups: &h.distribution.groups,
    };
    let limited = h.distribution.scope == wlnode_crypto::model::Scope::Neighbors
        || h.distribution.max_hops > 0;
    if !limited {
        return roster
            .members()
            .filter(|m| wlnode_policy::admits(roster, d, &m.agency))
            .map(|m| m.agency.clone())
            .collect();
    }
    let facts = wlnode_types::Facts::held(rec);
    let mut out = vec![h.origin.clone()];
    // The member this node got the record from holds it.
    if let Some(from) = &rec.received_from
        && wlnode_policy::admits(roster, d, from)
        && !out.contains(from)
    {
        out.push(from.clone());
    }
    for n in neighbours {
        if !out.contains(n) && wlnode_policy::distribution_send(roster, &facts, rec.hops, n).is_ok()
        {
            out.push(n.clone());
        }
    }
    out
}

fn key(prefix: u8, b: &[u8]) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(b);
    k
}

/// The row of `requester`'s consultation `id`.
fn consult_key(requester: &AgencyCode, id: ConsultationId) -> Vec<u8> {
    let mut k = key(CONSULT, &id.0);
    k.extend_from_slice(requester.as_str().as_bytes());
    k
}

/// What a `m` row holds: the consultation id and its requester.
fn message_row(c: &Consultation) -> Vec<u8> {
    let mut v = c.id().0.to_vec();
    v.extend_from_slice(c.requester().as_str().as_bytes());
    v
}

/// The `m` rows of a held consultation: one per message of it that may still be
/// answered (not `undeliverable`). `save` and the layout migration write the same
/// rows (final read of s36: each built them itself).
fn message_rows(h: &Held) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    h.messages
        .iter()
        .filter(|m| m.delivery != "undeliverable")
        .map(|m| {
            (
                key(MESSAGE, m.message_id.as_bytes()),
                message_row(&h.consultation),
            )
        })
}

/// How an officer names a consultation: its id alone when one requester's
/// consultation holds it here, `REQUESTER:ID` otherwise (two members may use one
/// id with us as origin; each is its own consultation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsultationRef {
    /// The consultation id.
    pub id: ConsultationId,
    /// Its requester, when named.
    pub requester: Option<AgencyCode>,
}

impl From<ConsultationId> for ConsultationRef {
    fn from(id: ConsultationId) -> Self {
        Self {
            id,
            requester: None,
        }
    }
}

impl ConsultationRef {
    /// `requester`'s consultation `id`.
    pub fn of(requester: AgencyCode, id: ConsultationId) -> Self {
        Self {
            id,
            requester: Some(requester),
        }
    }

    /// Parses `ID` (32 hex characters) or `REQUESTER:ID`, exactly: the requester
    /// must be an agency code by the roster's rules (upper-case letters, digits, `.`
    /// and `-`), so nothing else (`/`, `..`, `?`, white space, control characters)
    /// gets through (review s35-key L4: a CLI argument went into an API path as
    /// given; L9: the console redirected to a segment holding CR LF).
    pub fn parse(s: &str) -> Result<Self, ConsultationRefError> {
        let (requester, id) = match s.rsplit_once(':') {
            Some((r, id)) => (
                Some(AgencyCode::new(r).map_err(ConsultationRefError::Requester)?),
                id,
            ),
            None => (None, s),
        };
        let id = ConsultationId::from_hex(id).map_err(|_| ConsultationRefError::Id {
            given: id.chars().take(40).collect(),
        })?;
        Ok(Self { id, requester })
    }
}

/// Why a consultation's name (`ID` or `REQUESTER:ID`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsultationRefError {
    /// The part before `:` is not an agency code.
    #[error("consultation requester: {0}")]
    Requester(wlnode_crypto::model::InvalidValue),
    /// The id (after `:`, or the whole) is not 32 hex characters.
    #[error("consultation id: {given:?} is not 32 hex characters")]
    Id {
        /// What was given (its first 40 characters).
        given: String,
    },
}

impl std::fmt::Display for ConsultationRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.requester {
            Some(r) => write!(f, "{r}:{}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// Open consultations (awaiting our answer) one requester may have with us as origin
/// at once; more requests are refused (review of issue 21, finding 16: each is work
/// for our officers, a stored row, and a row every tick re-reads).
pub const MAX_OPEN_PER_REQUESTER: usize = 100;

/// The audit event of a consultation-layer message we refused: metadata only (the
/// message's id, sender, type and size, and why), never its content.
fn refusal_event(
    me: &AgencyCode,
    item: &InboxItem,
    now: Timestamp,
    why: String,
) -> wlnode_audit::event::Event {
    wlnode_audit::event::Event::new(
        now.as_millis(),
        wlnode_audit::event::EventKind::Mail {
            action: "rejected".into(),
            message_id: item.message_id.to_hex(),
            item: "message".into(),
            from: item.from.clone(),
            to: me.clone(),
            kind: item.kind.clone(),
            size: item.body.len() as u64,
            peer: None,
            reason: Some(why),
            expires_at: None,
            ack: None,
            copy: None,
        },
    )
}

/// A refusal reason cut to at most 200 bytes on a character boundary: the reason may
/// quote a peer's text, and our audit log keeps metadata, not what a peer wrote.
fn clip_reason(mut why: String) -> String {
    if why.len() > 200 {
        let mut cut = 200;
        while !why.is_char_boundary(cut) {
            cut -= 1;
        }
        why.truncate(cut);
    }
    why
}

/// `prefix` + member + 0: the start of a member's refusal rows.
fn refusal_key(prefix: u8, member: &AgencyCode) -> Vec<u8> {
    let mut k = key(prefix, member.as_str().as_bytes());
    k.push(0);
    k
}

/// When an inbox message is judged: its arrival here, never later than `now` (review
/// of the fixes, H1: a request held by a relay while we were offline, or applied by
/// a catch-up after a restart, is judged as it arrived, not when it is applied).
fn judged_at(item: &InboxItem, now: Timestamp) -> Timestamp {
    Timestamp(item.received_at).min(now)
}

/// Review s33-consult M2 part 2: the earliest signed time we take on a request's
/// receipt (Unix ms), for `item` judged at `now`: its arrival less the longest
/// lifetime a message may have ([`MAX_EXPIRY_MS`], 90 days) and the clock skew. An
/// honest requester signs its receipt when it sends the request, and the mail layer
/// delivers nothing past its expiry, so a request delayed by store-and-forward
/// relaying for its whole lifetime still passes; a receipt backdated further (to
/// before the requester's current log began, so that the auditor finds no log of it
/// to judge) is refused.
fn request_signed_since(item: &InboxItem, now: Timestamp, skew_ms: u64) -> u64 {
    judged_at(item, now)
        .as_millis()
        .saturating_sub(MAX_EXPIRY_MS)
        .saturating_sub(skew_ms)
}

/// Review s34-consult L1: a saved request's `body` with its receipt signed again
/// at `now` (new signed time, new salt) when the one it carries was signed more
/// than the skew before `now`: its send was deferred (a stop between saving and
/// sending, a mail service that failed for a while), and a relay may then hold it
/// for its whole lifetime, which would take it past the origin's lower bound
/// ([`request_signed_since`]: its arrival less the lifetime and an hour). `None`
/// when it needs no new receipt (not a request, none carried, a fresh one).
fn resealed_request(
    body: &str,
    from: &AgencyCode,
    to: &AgencyCode,
    key: &wlnode_crypto::SecretKey,
    now: Timestamp,
) -> Option<String> {
    let mut p = wlnode_consult::decode(body.as_bytes()).ok()?;
    let Payload::ConsultRequest(r) = &p else {
        return None;
    };
    let signed = r.receipt.as_ref()?.receipt.open().ok()?.signed_at;
    if signed
        .as_millis()
        .saturating_add(wlnode_crypto::mail::MAX_CLOCK_SKEW_MS)
        >= now.as_millis()
    {
        return None;
    }
    wlnode_consult::evidence::seal(&mut p, from, to, key, now, None).ok()?;
    String::from_utf8(wlnode_consult::encode(&p).ok()?).ok()
}

/// Issue 21, s34: the roster's receipt cut-over `since`, if a `payload` that takes
/// a receipt (a request, an answer, a refusal) is applied at or after it (`now`).
/// An answer or refusal is logged at `now` (its `answered`, `answered_late` or
/// `refused_by_origin` step's time). A request is logged at its arrival, but is
/// judged here when applied too (review s34-consult M1): the auditor judges a step
/// no earlier than the checkpoints signed before it was appended, so a receipt-less
/// request that arrived before the cut-over and is applied long after it would be
/// proven against us. After the cut-over every honest sender sends receipts, so
/// refusing it harms nobody who complies.
fn receipt_required_since(
    since: Option<Timestamp>,
    payload: &Payload,
    now: Timestamp,
) -> Option<Timestamp> {
    let since = since?;
    match payload {
        Payload::ConsultRequest(_) | Payload::ConsultAnswer(_) | Payload::ConsultRefusal(_) => {}
        _ => return None,
    }
    (now >= since).then_some(since)
}

/// The consultations stored in `pairs` (rows of prefix `k`), decoded.
fn decode_held(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<Held>, ConsultServiceError> {
    pairs
        .iter()
        .map(|(_, v)| {
            serde_json::from_slice(v).map_err(|e| ConsultServiceError::Corrupt(e.to_string()))
        })
        .collect()
}

/// Whether an origin opens a request under an id another requester holds here as the
/// sender's own consultation at `now`: from the roster's
/// `consult_keyed_by_requester_since` on (review s35-key H1). Before it, or without
/// it, such a request is refused as before s35.
fn keyed_by_requester(since: Option<Timestamp>, now: Timestamp) -> bool {
    since.is_some_and(|since| now >= since)
}

/// A request or round of information we may refuse: what the signed refusal names.
#[derive(Clone, Copy, Debug)]
struct Refusable {
    id: ConsultationId,
    round: u32,
    /// The refused message (bound into the refusal).
    message_id: MessageId,
    /// The deadline it asked for.
    deadline: Timestamp,
    /// Information (a later round), not a request: from the decoded payload, never
    /// the envelope's kind, which the sender picks (review s32-consult L1).
    is_info: bool,
}

/// The id of the message this node sent that opened `round` of `h` (the request for
/// round 1, the information for a later round), if it still holds it.
fn refused_message(h: &Held, round: u32) -> Option<MessageId> {
    let kind = if round == 1 {
        "consult_request"
    } else {
        "consult_info"
    };
    let nth = if round == 1 { 0 } else { round as usize - 2 };
    h.messages
        .iter()
        .filter(|m| m.kind == kind && !m.notice)
        .nth(nth)
        .map(|m| m.message_id)
}

/// Until when the once-per-round mark of a refusal is kept (Unix ms): the refused
/// message's deadline (at most [`REFUSAL_ROW_MAX_KEEP_MS`] ahead) plus
/// [`REFUSAL_ROW_MARGIN_MS`]. After that a repeat of the same request or round gets
/// a refusal again, within the daily quota.
fn refusal_row_until(deadline: Timestamp, now: Timestamp) -> u64 {
    deadline
        .as_millis()
        .min(now.as_millis().saturating_add(REFUSAL_ROW_MAX_KEEP_MS))
        .saturating_add(REFUSAL_ROW_MARGIN_MS)
}

/// The mark that an inbox message was applied: by message id *and* sender, as the
/// mail layer keys them, so a message of another member under the same id (review of
/// issue 21, HIGH 2) is not taken for one already applied.
fn applied_key(item: &InboxItem) -> Vec<u8> {
    let mut k = key(APPLIED, item.message_id.as_bytes());
    k.extend_from_slice(item.from.as_str().as_bytes());
    k
}

/// Where a decision that came early (within the clock skew) waits for our deadline.
fn deferred_key(item: &InboxItem) -> Vec<u8> {
    let mut k = key(DEFERRED, item.message_id.as_bytes());
    k.extend_from_slice(item.from.as_str().as_bytes());
    k
}

/// A decision held until our deadline (see `Consultations::apply`), with what the
/// consultation looked like when it arrived: applied at the deadline only if no
/// answer or information was recorded since (review s30-consult H1: otherwise a
/// grant sent before the origin's objection would be applied after it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct HeldDecision {
    item: InboxItem,
    /// When it arrived here (our clock).
    received_at: Timestamp,
    round: u32,
    answers: usize,
    infos: usize,
}

impl HeldDecision {
    fn new(item: &InboxItem, received_at: Timestamp, c: &Consultation) -> Self {
        Self {
            item: item.clone(),
            received_at,
            round: c.round(),
            answers: c.answers().len(),
            infos: c.infos().len(),
        }
    }

    /// Whether an answer or information was recorded since it arrived.
    fn overtaken(&self, c: &Consultation) -> bool {
        c.round() != self.round
            || c.answers().len() != self.answers
            || c.infos().len() != self.infos
    }
}

/// Whether a decision that arrived at `arrived`, before `deadline`, is held until the
/// deadline passes (it is less than the mail layer's clock skew early: the
/// requester's clock may be a little ahead) rather than refused as premature. Five
/// minutes, not the consult crate's hour (review s30-consult2 H2).
fn held_until_deadline(deadline: Timestamp, arrived: Timestamp) -> bool {
    deadline.as_millis()
        <= arrived
            .as_millis()
            .saturating_add(u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(0))
}

/// A `consultation` audit event of `kind` about `c` from its requester.
fn step_event(
    c: &Consultation,
    kind: wlnode_consult::TrailKind,
    at: Timestamp,
) -> wlnode_audit::event::Event {
    wlnode_audit::event::Event::new(
        Timestamp::now().as_millis(),
        wlnode_audit::event::EventKind::Consultation {
            step: wlnode_consult::TrailEvent {
                consultation_id: c.id(),
                kind,
                at,
                from: c.requester().clone(),
                to: c.origin().clone(),
            },
        },
    )
}

/// Whether an inbox message of type `kind` is applied here (consultations, and hit
/// reports and flags, which raise an event).
fn applies(kind: &str) -> bool {
    kind.starts_with("consult_") || kind == "hit_report" || kind == "flag"
}

/// The node's consultations. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Consultations {
    agency: AgencyCode,
    store: StoreHandle,
    mail: Mail,
    trust: TrustCell,
    /// One change at a time (API writes, incoming messages, ticks).
    lock: Arc<Mutex<()>>,
    /// Where arrivals, answers, decisions, near deadlines and hit reports are announced.
    events: Option<crate::events::Events>,
    /// Consultations already announced as near their deadline (since start).
    warned: Arc<std::sync::Mutex<std::collections::HashSet<(AgencyCode, ConsultationId)>>>,
    /// Set once the consultations stored in the layout before (`c` + id) were moved
    /// to `k` + id + requester, or the attempt failed ([`Self::migration`]); every
    /// read waits for it, and it runs once per start.
    migrated: Arc<tokio::sync::OnceCell<Migration>>,
    /// This node's configured neighbours (for the hop rule of decision notices).
    neighbours: Arc<Vec<AgencyCode>>,
    /// Test hook: saved messages are not handed to the mail service (as if the node
    /// stopped between saving and sending).
    hold_sends: Arc<std::sync::atomic::AtomicBool>,
    /// Flags whose messages this task retries.
    flags: Option<crate::flags::Flags>,
    /// Hit reports refused (see [`Self::refused_hit_reports`]).
    refused_hits: Arc<std::sync::atomic::AtomicU64>,
    /// Consultation messages refused (see [`Self::refused_messages`]).
    refused_messages: Arc<std::sync::atomic::AtomicU64>,
    /// The hour (Unix ms / 3,600,000) refusal rows were last pruned in.
    pruned_hour: Arc<std::sync::atomic::AtomicU64>,
    /// Where the next pruning pass resumes, per kind of refusal row (marks, daily
    /// counts): the key after the last one seen, wrapping around at the end.
    prune_from: Arc<std::sync::Mutex<[Vec<u8>; 2]>>,
    /// The agency's signing key, for the receipts of our requests, answers and
    /// refusals (`wlnode_consult::evidence`); without it none is sent.
    key: Option<Arc<wlnode_crypto::SecretKey>>,
}

/// What moving the consultations stored in the layout before s35 (`c` + id) to the
/// layout keyed by requester and id did at this start (test hook: see
/// [`Consultations::migration`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migration {
    /// Rows moved.
    pub moved: usize,
    /// Old rows left because their new row holds something else (the new one kept).
    pub kept: usize,
    /// Old rows left because they do not decode or are under another id.
    pub left: usize,
    /// A store error stopped it (retried at the next start).
    pub failed: bool,
}

/// How long before its deadline an open consultation is announced (`expiring`).
pub const EXPIRING_WITHIN: Duration = Duration::from_secs(24 * 3600);

impl Consultations {
    /// The service over `mail`.
    pub fn new(agency: AgencyCode, store: StoreHandle, mail: Mail, trust: TrustCell) -> Self {
        Self {
            agency,
            store,
            mail,
            trust,
            lock: Arc::new(Mutex::new(())),
            events: None,
            warned: Arc::default(),
            migrated: Arc::default(),
            neighbours: Arc::default(),
            hold_sends: Arc::default(),
            flags: None,
            refused_hits: Arc::default(),
            refused_messages: Arc::default(),
            pruned_hour: Arc::default(),
            prune_from: Arc::default(),
            key: None,
        }
    }

    /// Signs a receipt of each request, answer and refusal we send with `key` (the
    /// agency's signing key; issue 21, s33).
    pub fn with_signing_key(mut self, key: Arc<wlnode_crypto::SecretKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// `payload` with our signed receipt attached (a request, answer or refusal to
    /// `to`; anything else, or no key, unchanged).
    fn sealed(
        &self,
        payload: &Payload,
        to: &AgencyCode,
        refused: Option<wlnode_consult::evidence::Refused>,
    ) -> Result<Payload, ConsultServiceError> {
        let mut p = payload.clone();
        if let Some(key) = &self.key {
            wlnode_consult::evidence::seal(
                &mut p,
                &self.agency,
                to,
                key,
                Timestamp::now(),
                refused,
            )
            .map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
        }
        Ok(p)
    }

    /// Retries the flags' unsent messages from this task (at start, then every 10 s).
    pub fn with_flags(mut self, flags: crate::flags::Flags) -> Self {
        self.flags = Some(flags);
        self
    }

    /// This node's configured neighbours (`[[peers]]`).
    pub fn with_neighbours(mut self, neighbours: Vec<AgencyCode>) -> Self {
        self.neighbours = Arc::new(neighbours);
        self
    }

    /// Test hook: while on, messages are saved but not handed to the mail service, as
    /// if the node stopped between the two (review of issue 21, finding 14).
    #[doc(hidden)]
    pub fn hold_sends(&self, on: bool) {
        self.hold_sends
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Announces consultations on `events` (type `consultation`).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = Some(events);
        self
    }

    /// The shortest deadline the roster allows a round (what the origin holds an
    /// arriving request or round of information to).
    fn min_deadline(&self) -> Duration {
        Duration::from_secs(self.trust.roster().consultation_min_deadline_secs())
    }

    /// Hit reports refused since start: on an entry that is not ours, naming a
    /// record of another entry, or on an entry whose head record does not ask for
    /// them (`on_hit: notify`). Each is also audited (`mail` event, `rejected`).
    pub fn refused_hit_reports(&self) -> u64 {
        self.refused_hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Consultation messages (requests, answers, information, decisions, refusals)
    /// refused since start: forged, mismatched, for an unknown consultation, or
    /// breaking the consultation's rules. Each is also audited (`mail` event,
    /// `rejected`, `consultation_refused: ...`).
    pub fn refused_messages(&self) -> u64 {
        self.refused_messages
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends the requester `to` our signed refusal of round `round` of consultation
    /// `id` (see the module documentation): once per member, consultation and round,
    /// at most [`MAX_REFUSALS_PER_MEMBER_PER_DAY`], `judged` being the roster the
    /// refused message was judged under. Call with the lock held.
    async fn send_refusal(
        &self,
        to: &AgencyCode,
        refused: &Refusable,
        reason: RefusalReason,
        now: Timestamp,
        judged: &wlnode_crypto::roster::Roster,
    ) -> Result<(), ConsultServiceError> {
        let (id, round) = (refused.id, refused.round);
        if to == &self.agency {
            return Ok(());
        }
        let mut once = refusal_key(REFUSED, to);
        once.extend_from_slice(&id.0);
        once.extend_from_slice(&round.to_be_bytes());
        let mut quota = refusal_key(REFUSAL_QUOTA, to);
        quota.extend_from_slice(&(now.as_millis() / 86_400_000).to_be_bytes());
        let (o, q) = (once.clone(), quota.clone());
        let (sent, today) = self
            .store
            .call(move |s| {
                Ok((
                    s.table_get(LocalTable::Consultations, &o)?,
                    s.table_get(LocalTable::Consultations, &q)?,
                ))
            })
            .await?;
        if sent.is_some() {
            return Ok(());
        }
        let today = today
            .and_then(|v| <[u8; 4]>::try_from(v.as_slice()).ok())
            .map_or(0, u32::from_be_bytes);
        if today >= MAX_REFUSALS_PER_MEMBER_PER_DAY {
            tracing::warn!(member = %to, consultation = %id, "refusal not sent: {MAX_REFUSALS_PER_MEMBER_PER_DAY} sent to this member today");
            return Ok(());
        }
        let payload = Payload::ConsultRefusal(ConsultRefusal {
            receipt: None,
            consultation_id: id,
            round,
            reason,
            message_id: Some(refused.message_id),
        });
        // The receipt names the refused message's deadline and the kind we decoded
        // it as (s34: the auditor's round-1 rule reads the signed kind).
        let kind = if refused.is_info {
            wlnode_consult::RefusedKind::ConsultInfo
        } else {
            wlnode_consult::RefusedKind::ConsultRequest
        };
        // s35 (review s33-consult L1): a `deadline_too_short` signs the minimum we
        // held the message to and the version of the roster it is from (`judged`,
        // the one the message was judged under), so that the requester and the
        // auditor can judge the refusal without our log (`seal` ignores it for any
        // other reason). Only while that roster carries
        // `consult_refusal_terms_required_since` (review s35-deadline L4: a
        // requester of s34 cannot read a receipt with them, and would take our
        // honest refusal for silence during a rollout).
        let signed = wlnode_consult::evidence::Refused {
            deadline: refused.deadline,
            kind: Some(kind),
            applied: judged.consult_refusal_terms_required_since().map(|_| {
                wlnode_consult::evidence::Applied {
                    min_deadline_secs: judged.consultation_min_deadline_secs(),
                    roster_version: judged.version(),
                }
            }),
        };
        let payload = self.sealed(&payload, to, Some(signed))?;
        let body = wlnode_consult::encode(&payload)
            .map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
        let message_id =
            MessageId::random().map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
        let mut row = message_id.as_bytes().to_vec();
        row.extend_from_slice(&refusal_row_until(refused.deadline, now).to_be_bytes());
        let pairs = vec![(once, row), (quota, (today + 1).to_be_bytes().to_vec())];
        self.mark(pairs).await?;
        if let Err(e) = self
            .mail
            .send_as(message_id, to, payload.kind(), &body, REFUSAL_TTL_MS)
            .await
        {
            tracing::warn!(member = %to, consultation = %id, error = %e, "refusal not sent");
        }
        Ok(())
    }

    /// Open consultations `member` has with us as origin.
    async fn open_with(&self, member: &AgencyCode) -> Result<usize, ConsultServiceError> {
        Ok(self
            .list()
            .await?
            .iter()
            .filter(|h| {
                h.consultation.role() == wlnode_consult::Role::Origin
                    && h.consultation.requester() == member
                    && h.consultation.state() == State::Open
            })
            .count())
    }

    /// What moving the consultations stored in the layout before did at this start
    /// (run by the first caller: the service's task calls it before anything else,
    /// and every read waits for it). Shown in the start log. Test hook, not API
    /// (review s35-key L9): public only because the integration tests in the
    /// `wlnode-tests` crate, another crate, read its counts; `cfg(test)` does not
    /// reach them.
    #[doc(hidden)]
    pub async fn migration(&self) -> Migration {
        *self.migrated.get_or_init(|| self.migrate()).await
    }

    /// Moves consultations stored in the layout before (`c` + id, one per id) to
    /// `k` + id + requester, and their `m` rows to name the requester. Runs once per
    /// start (review s35-key L3: a failed pass is logged and retried at the next
    /// start, not at every read), page by page ([`MAX_RANGE`] rows). Idempotent: a
    /// crash between writing the new rows and removing the old leaves an old row
    /// whose new row holds the same bytes, removed at the next start. A new row that
    /// holds something else is kept (review s35-key L1: an older build ran in
    /// between and wrote the old row again, or the store was rolled back): the old
    /// row is left, logged and counted. A row that does not decode, or whose key is
    /// not its own id, is left in place, logged by key and counted (review s35-key
    /// L2: it left the node's view silently).
    async fn migrate(&self) -> Migration {
        let mut done = Migration::default();
        let mut from = vec![LEGACY_CONSULT];
        loop {
            let start = from.clone();
            let rows = match self
                .store
                .call(move |s| {
                    s.table_range(
                        LocalTable::Consultations,
                        &start,
                        &[LEGACY_CONSULT + 1],
                        MAX_RANGE,
                    )
                })
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "consultations in the old layout not moved (retried at the next start)");
                    done.failed = true;
                    break;
                }
            };
            let Some((last, _)) = rows.last() else {
                break;
            };
            from = last.clone();
            from.push(0);
            // (old key, its bytes, new key, the consultation's `m` rows)
            let mut moves = Vec::new();
            for (k, v) in rows {
                match serde_json::from_slice::<Held>(&v) {
                    Ok(h) if k.get(1..) == Some(&h.consultation.id().0[..]) => {
                        let c = &h.consultation;
                        let m: Vec<_> = message_rows(&h).collect();
                        moves.push((k, v, consult_key(c.requester(), c.id()), m));
                    }
                    Ok(_) => {
                        done.left += 1;
                        tracing::warn!(key = %hex::encode(&k), "consultation row in the old layout under another id: left in place");
                    }
                    Err(e) => {
                        done.left += 1;
                        tracing::warn!(key = %hex::encode(&k), error = %e, "consultation row in the old layout does not decode: left in place");
                    }
                }
            }
            let r = self
                .store
                .call(move |s| {
                    let (mut moved, mut kept) = (0, Vec::new());
                    for (old, v, new, m) in moves {
                        let mut pairs = m;
                        match s.table_get(LocalTable::Consultations, &new)? {
                            // A crash after the move, before the old row went: its
                            // `m` rows are written again, the old row removed.
                            Some(x) if x == v => {}
                            Some(_) => {
                                kept.push(old);
                                continue;
                            }
                            None => pairs.push((new, v)),
                        }
                        s.table_put(LocalTable::Consultations, &pairs, true)?;
                        moved += 1;
                        let mut end = old.clone();
                        end.push(0);
                        s.table_remove_range(LocalTable::Consultations, &old, &end, 1)?;
                    }
                    Ok((moved, kept))
                })
                .await;
            match r {
                Ok((moved, kept)) => {
                    done.moved += moved;
                    done.kept += kept.len();
                    for k in kept {
                        tracing::warn!(key = %hex::encode(&k), "consultation row in the old layout whose row in the new layout holds something else: the new one kept, the old left in place");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "consultations in the old layout not moved (retried at the next start)");
                    done.failed = true;
                    break;
                }
            }
        }
        if done != Migration::default() {
            tracing::info!(
                moved = done.moved,
                kept_newer = done.kept,
                left_undecodable = done.left,
                failed = done.failed,
                "consultations in the layout before s35 (c + id) moved to the layout keyed by requester and id"
            );
        }
        done
    }

    /// Removes refusal bookkeeping past its time (at most [`MAX_RANGE`] rows of each
    /// kind a call; `tick` calls it): once-per-round marks whose keep-until
    /// ([`refusal_row_until`]) is before `now`, and those written before it kept one
    /// (value: the message id alone); daily counts of days before yesterday. Returns
    /// how many rows went. Test hook: `now` is injected.
    #[doc(hidden)]
    pub async fn prune_refusals(&self, now: Timestamp) -> Result<usize, ConsultServiceError> {
        self.prune_refusals_paged(now, MAX_RANGE).await
    }

    /// [`Self::prune_refusals`], scanning at most `page` rows of each kind. Each pass
    /// resumes after the last row the previous one scanned and wraps around at the
    /// end (review s32-consult L3: every pass scanned the first rows in key order,
    /// and keys sort by member, so members whose codes sort first and that kept more
    /// than a page of marks alive stalled pruning for every other member). Test hook.
    #[doc(hidden)]
    pub async fn prune_refusals_paged(
        &self,
        now: Timestamp,
        page: usize,
    ) -> Result<usize, ConsultServiceError> {
        let today = now.as_millis() / 86_400_000;
        let from = match self.prune_from.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let page = page.max(1);
        let (gone, next) = self
            .store
            .call(move |s| {
                // One page of the rows of `prefix` from `from` on, and where the next
                // pass starts (the start again once the end is reached).
                let scan = |prefix: u8, from: &[u8]| {
                    let start = if from.first() == Some(&prefix) {
                        from.to_vec()
                    } else {
                        vec![prefix]
                    };
                    s.table_range(LocalTable::Consultations, &start, &[prefix + 1], page)
                        .map(|rows| {
                            let next = match rows.last() {
                                Some((k, _)) if rows.len() >= page => {
                                    let mut n = k.clone();
                                    n.push(0);
                                    n
                                }
                                _ => vec![prefix],
                            };
                            (rows, next)
                        })
                };
                let mut gone = Vec::new();
                let (marks, next_mark) = scan(REFUSED, &from[0])?;
                for (k, v) in marks {
                    let until = v
                        .get(16..24)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes);
                    if until.is_none_or(|u| u < now.as_millis()) {
                        gone.push(k);
                    }
                }
                let (counts, next_count) = scan(REFUSAL_QUOTA, &from[1])?;
                for (k, _) in counts {
                    let day = k
                        .len()
                        .checked_sub(8)
                        .and_then(|at| k.get(at..))
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes);
                    if day.is_none_or(|d| d.saturating_add(1) < today) {
                        gone.push(k);
                    }
                }
                for k in &gone {
                    let mut end = k.clone();
                    end.push(0);
                    s.table_remove_range(LocalTable::Consultations, k, &end, 1)?;
                }
                Ok((gone.len(), [next_mark, next_count]))
            })
            .await?;
        match self.prune_from.lock() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
        Ok(gone)
    }

    /// Refusal bookkeeping rows held (once-per-round marks and daily counts). Test
    /// hook.
    #[doc(hidden)]
    pub async fn refusal_rows(&self) -> Result<usize, ConsultServiceError> {
        Ok(self
            .store
            .call(|s| {
                Ok(s.table_range(
                    LocalTable::Consultations,
                    &[REFUSED],
                    &[REFUSED + 1],
                    MAX_RANGE,
                )?
                .len()
                    + s.table_range(
                        LocalTable::Consultations,
                        &[REFUSAL_QUOTA],
                        &[REFUSAL_QUOTA + 1],
                        MAX_RANGE,
                    )?
                    .len())
            })
            .await?)
    }

    /// Why a hit report on `r` is refused here, if it is (review s30-consult M1:
    /// any member could raise an event and webhook per report on any entry).
    async fn hit_report_refusal(
        &self,
        r: &wlnode_consult::HitReport,
    ) -> Result<Option<&'static str>, ConsultServiceError> {
        let Some((_, st)) = self
            .store
            .entries_by_id(r.entry_id)
            .await?
            .into_iter()
            .find(|(k, _)| k.origin == self.agency)
        else {
            return Ok(Some("hit_report_not_our_entry"));
        };
        let ours = |rec: &wlnode_types::StoredRecord| {
            let h = rec.record.header();
            h.entry_id == r.entry_id && h.origin == self.agency
        };
        if !self
            .store
            .record(r.record_id)
            .await?
            .is_some_and(|x| ours(&x))
        {
            return Ok(Some("hit_report_record_mismatch"));
        }
        let asked = self.store.record(st.head).await?.is_some_and(|x| {
            ours(&x) && x.record.header().on_hit == Some(wlnode_crypto::model::OnHit::Notify)
        });
        Ok((!asked).then_some("hit_report_not_requested"))
    }

    /// Emits a `consultation` event of `kind` about `c` (metadata only, never the
    /// transaction's details).
    fn announce(&self, kind: &str, c: &Consultation) {
        if let Some(ev) = &self.events {
            let mut v = serde_json::to_value(c.view()).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("kind".into(), kind.into());
            }
            ev.emit(wlnode_config::EventType::Consultation, v);
        }
    }

    /// `requester`'s consultation `id`.
    async fn load(
        &self,
        requester: &AgencyCode,
        id: ConsultationId,
    ) -> Result<Option<Held>, ConsultServiceError> {
        self.migration().await;
        let k = consult_key(requester, id);
        let v = self
            .store
            .call(move |s| s.table_get(LocalTable::Consultations, &k))
            .await?;
        v.map(|v| {
            serde_json::from_slice(&v).map_err(|e| ConsultServiceError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    async fn save(
        &self,
        held: &Held,
        extra: Vec<(Vec<u8>, Vec<u8>)>,
        events: Vec<wlnode_audit::event::Event>,
    ) -> Result<(), ConsultServiceError> {
        let c = &held.consultation;
        let mut pairs = vec![(
            consult_key(c.requester(), c.id()),
            serde_json::to_vec(held).map_err(|e| ConsultServiceError::Corrupt(e.to_string()))?,
        )];
        pairs.extend(message_rows(held));
        pairs.extend(extra);
        self.store
            .call(move |s| {
                s.table_put(LocalTable::Consultations, &pairs, true)?;
                if !events.is_empty() {
                    s.audit_append(&events)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Every consultation held (at most [`MAX_RANGE`]).
    pub async fn list(&self) -> Result<Vec<Held>, ConsultServiceError> {
        self.migration().await;
        let pairs = self
            .store
            .call(|s| {
                s.table_range(
                    LocalTable::Consultations,
                    &[CONSULT],
                    &[CONSULT + 1],
                    MAX_RANGE,
                )
            })
            .await?;
        decode_held(&pairs)
    }

    /// Every consultation held under `id`, one per requester (at most
    /// [`MAX_RANGE`]).
    async fn under_id(&self, id: ConsultationId) -> Result<Vec<Held>, ConsultServiceError> {
        decode_held(&self.rows_under(id, MAX_RANGE).await?)
    }

    /// Whether any requester's consultation is held here under `id` (one row read).
    async fn held_under(&self, id: ConsultationId) -> Result<bool, ConsultServiceError> {
        Ok(!self.rows_under(id, 1).await?.is_empty())
    }

    /// The rows of the consultations held under `id`, at most `limit`.
    async fn rows_under(
        &self,
        id: ConsultationId,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ConsultServiceError> {
        self.migration().await;
        let from = key(CONSULT, &id.0);
        let mut to = from.clone();
        to.push(0xff);
        Ok(self
            .store
            .call(move |s| s.table_range(LocalTable::Consultations, &from, &to, limit))
            .await?)
    }

    /// One consultation: `REQUESTER:ID`, or the id alone when one requester's
    /// consultation holds it here (several: [`ConsultServiceError::AmbiguousConsultation`]).
    pub async fn get(&self, at: impl Into<ConsultationRef>) -> Result<Held, ConsultServiceError> {
        let at = at.into();
        let not_found = || ConsultServiceError::NotFound(format!("consultation {at} not found"));
        if let Some(r) = &at.requester {
            return self.load(r, at.id).await?.ok_or_else(not_found);
        }
        let mut all = self.under_id(at.id).await?;
        match all.len() {
            0 => Err(not_found()),
            1 => all.pop().ok_or_else(not_found),
            _ => Err(ConsultServiceError::AmbiguousConsultation {
                id: at.id,
                requesters: all
                    .into_iter()
                    .map(|h| h.consultation.requester().clone())
                    .collect(),
            }),
        }
    }

    /// Gives the machine's actions their message ids: the references the consultation
    /// keeps and the messages to send once it is saved. A recipient of a request,
    /// answer, information or decision without an encryption key is an error here,
    /// before anything is saved; a notice to one is recorded `undeliverable` while the
    /// other members still get theirs.
    fn plan(
        &self,
        actions: Vec<Action>,
        deadline: Timestamp,
    ) -> Result<(Vec<MessageRef>, Vec<Outgoing>), ConsultServiceError> {
        let now = Timestamp::now().as_millis();
        // Live until a day after the deadline (`LATE_ANSWER_WINDOW`: an answer held on
        // the way still counts at the requester until then), within the message limit.
        let ttl_ms = deadline
            .as_millis()
            .saturating_sub(now)
            .saturating_add(
                u64::try_from(wlnode_consult::LATE_ANSWER_WINDOW.as_millis()).unwrap_or(0),
            )
            .clamp(3_600_000, MAX_EXPIRY_MS);
        let mut refs = Vec::new();
        let mut out = Vec::new();
        let roster = self.trust.roster();
        for a in actions {
            let notice = matches!(a, Action::SendNotice { .. });
            let body = wlnode_consult::encode(&self.sealed(a.payload(), a.to(), None)?)
                .map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
            let body =
                String::from_utf8(body).map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
            let kind = a.payload().kind();
            if let Err(e) = roster.encryption_key(a.to(), Timestamp(now)) {
                if !notice {
                    return Err(MailSendError::Recipient(e.to_string()).into());
                }
                tracing::warn!(member = %a.to(), "no encryption key: decision notice undeliverable");
                refs.push(MessageRef {
                    message_id: MessageId([0; 16]),
                    kind: kind.to_owned(),
                    to: a.to().clone(),
                    delivery: "undeliverable".into(),
                    notice,
                });
                continue;
            }
            let message_id =
                MessageId::random().map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
            refs.push(MessageRef {
                message_id,
                kind: kind.to_owned(),
                to: a.to().clone(),
                delivery: "unsent".into(),
                notice,
            });
            out.push(Outgoing {
                message_id,
                to: a.to().clone(),
                kind: kind.to_owned(),
                body,
                ttl_ms,
            });
        }
        Ok((refs, out))
    }

    /// Hands `held`'s saved messages to the mail service (idempotent by id), in
    /// order. One that fails is kept for the next tick and the others still go; one
    /// whose recipient the roster gives no encryption key is marked `undeliverable`
    /// and dropped (review s30-consult M3). A decision notice is logged
    /// (`notice_sent`) when it is handed over, not before. Saves what changed. Call
    /// with the lock held.
    async fn flush(&self, held: &mut Held) -> Result<(), ConsultServiceError> {
        if self.hold_sends.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let mut changed = false;
        let mut events = Vec::new();
        let mut keep = Vec::new();
        for o in std::mem::take(&mut held.outgoing) {
            let fresh = self
                .key
                .as_ref()
                .and_then(|k| resealed_request(&o.body, &self.agency, &o.to, k, Timestamp::now()));
            let body = fresh.as_deref().unwrap_or(&o.body);
            let sent = self
                .mail
                .send_as(o.message_id, &o.to, &o.kind, body.as_bytes(), o.ttl_ms)
                .await;
            let delivery = match &sent {
                Ok(()) => "pending",
                Err(MailSendError::Recipient(e)) => {
                    tracing::warn!(consultation = %held.consultation.id(), to = %o.to, error = %e, "consultation message undeliverable");
                    "undeliverable"
                }
                Err(e) => {
                    tracing::warn!(consultation = %held.consultation.id(), to = %o.to, error = %e, "consultation message not sent yet; retried");
                    keep.push(o);
                    continue;
                }
            };
            changed = true;
            for m in &mut held.messages {
                if m.message_id == o.message_id && m.delivery == "unsent" {
                    m.delivery = delivery.into();
                    if m.notice && delivery == "pending" {
                        let c = &held.consultation;
                        let at = Timestamp::now();
                        events.push(wlnode_audit::event::Event::new(
                            at.as_millis(),
                            wlnode_audit::event::EventKind::Consultation {
                                step: wlnode_consult::TrailEvent {
                                    consultation_id: c.id(),
                                    kind: wlnode_consult::TrailKind::NoticeSent,
                                    at,
                                    from: c.requester().clone(),
                                    to: m.to.clone(),
                                },
                            },
                        ));
                    }
                }
            }
        }
        held.outgoing = keep;
        if changed {
            self.save(held, Vec::new(), events).await?;
        }
        Ok(())
    }

    /// Another agency's entry `entry_id`: of `origin` when given, else of its only
    /// origin; several origins without one named is [`ConsultServiceError::AmbiguousEntry`].
    async fn entry_of_other(
        &self,
        entry_id: EntryId,
        origin: Option<&AgencyCode>,
    ) -> Result<(wlnode_types::EntryKey, wlnode_types::EntryState), ConsultServiceError> {
        let mut found = self.store.entries_by_id(entry_id).await?;
        // Our own entry (named, or the only one with this id): say so, not "not held".
        if origin == Some(&self.agency)
            || (origin.is_none()
                && !found.is_empty()
                && found.iter().all(|(k, _)| k.origin == self.agency))
        {
            return Err(ConsultServiceError::Invalid(format!(
                "entry {entry_id} is our own entry: consultations and hit reports are about another agency's entry"
            )));
        }
        found.retain(|(k, _)| k.origin != self.agency && origin.is_none_or(|o| k.origin == *o));
        if found.len() > 1 {
            return Err(ConsultServiceError::AmbiguousEntry {
                entry: entry_id,
                origins: found.into_iter().map(|(k, _)| k.origin).collect(),
            });
        }
        found.into_iter().next().ok_or_else(|| {
            ConsultServiceError::NotFound(match origin {
                Some(o) => format!("entry {entry_id} of {o} is not held here"),
                None => format!("entry {entry_id} of another agency is not held here"),
            })
        })
    }

    /// Requester: opens a consultation of the origin of entry `entry_id` (`origin`
    /// when several agencies hold that id) and sends the request. `user` is the
    /// officer's pseudonymous id.
    pub async fn request(
        &self,
        user: &str,
        entry_id: EntryId,
        origin: Option<AgencyCode>,
        reference: String,
        details: TransactionDetails,
        deadline: Duration,
    ) -> Result<Held, ConsultServiceError> {
        let _g = self.lock.lock().await;
        let (k, st) = self.entry_of_other(entry_id, origin.as_ref()).await?;
        let version = u32::try_from(st.version)
            .map_err(|_| ConsultServiceError::Invalid("entry version too large".into()))?;
        let now = Timestamp::now();
        let roster = self.trust.roster();
        let (c, actions) = Consultation::request(
            NewRequest {
                id: ConsultationId::random()
                    .map_err(|e| ConsultServiceError::Invalid(e.to_string()))?,
                requester: self.agency.clone(),
                origin: k.origin.clone(),
                entry_id,
                record_id: st.head,
                version,
                reference,
                deadline: deadline_after(now, deadline),
                details,
                silence: silence_of(roster.silence_rule()),
            },
            now,
        )?;
        let mut c = c;
        c.set_round_min_deadline(Duration::from_secs(roster.consultation_min_deadline_secs()));
        let (messages, outgoing) = self.plan(actions, c.deadline())?;
        let mut held = Held {
            consultation: c,
            messages,
            outgoing,
        };
        let mut events = vec![acted(
            now,
            user,
            "consult_request",
            Some(held.consultation.id().to_hex()),
        )];
        events.extend(trail(None, &held.consultation, &[]));
        self.save(&held, Vec::new(), events).await?;
        self.flush(&mut held).await?;
        Ok(held)
    }

    /// Sends a sealed hit report on another agency's entry to its origin; returns the
    /// message id and the origin. Only for entries whose head record here carries
    /// `"on_hit": "notify"` (DESIGN: hit reports are for such entries); others are
    /// [`ConsultServiceError::HitReportNotRequested`], and nothing is sent.
    pub async fn hit_report(
        &self,
        user: &str,
        entry_id: EntryId,
        origin: Option<AgencyCode>,
        context: wlnode_consult::HitContext,
        details: String,
    ) -> Result<(MessageId, AgencyCode), ConsultServiceError> {
        let (k, st) = self.entry_of_other(entry_id, origin.as_ref()).await?;
        let asked =
            self.store.record(st.head).await?.is_some_and(|r| {
                r.record.header().on_hit == Some(wlnode_crypto::model::OnHit::Notify)
            });
        if !asked {
            return Err(ConsultServiceError::HitReportNotRequested {
                entry: entry_id,
                origin: k.origin,
            });
        }
        let now = Timestamp::now();
        let payload = Payload::HitReport(wlnode_consult::HitReport {
            entry_id,
            record_id: st.head,
            context,
            details,
            reported_at: now,
        });
        let body = wlnode_consult::encode(&payload)
            .map_err(|e| ConsultServiceError::Invalid(e.to_string()))?;
        let id = self
            .mail
            .send(&k.origin, payload.kind(), &body, 30 * 86_400_000)
            .await?;
        let ev = acted(now, user, "hit_report", Some(entry_id.to_hex()));
        self.store.call(move |s| s.audit_append(&[ev])).await?;
        Ok((id, k.origin))
    }

    /// Origin: answers a consultation.
    pub async fn respond(
        &self,
        user: &str,
        at: impl Into<ConsultationRef>,
        answer: Answer,
        reason: Option<String>,
    ) -> Result<Held, ConsultServiceError> {
        let _g = self.lock.lock().await;
        let mut held = self.get(at).await?;
        // Named with its requester in our log: two members' consultations may
        // share an id here.
        let id = ConsultationRef::of(
            held.consultation.requester().clone(),
            held.consultation.id(),
        );
        let before = held.consultation.clone();
        let actions = held.consultation.answer(answer, reason, Timestamp::now())?;
        let (sent, outgoing) = self.plan(actions, held.consultation.deadline())?;
        held.messages.extend(sent);
        held.outgoing.extend(outgoing);
        let mut events = vec![acted(
            Timestamp::now(),
            user,
            "consult_respond",
            Some(id.to_string()),
        )];
        events.extend(trail(Some(&before), &held.consultation, &[]));
        self.save(&held, Vec::new(), events).await?;
        self.flush(&mut held).await?;
        Ok(held)
    }

    /// Requester: answers the origin's `info_requested` with further information
    /// (`details` replacing the transaction's when given), opening the next round
    /// with a deadline `deadline` from now.
    pub async fn supply_info(
        &self,
        user: &str,
        at: impl Into<ConsultationRef>,
        text: String,
        details: Option<TransactionDetails>,
        deadline: Duration,
    ) -> Result<Held, ConsultServiceError> {
        let _g = self.lock.lock().await;
        let mut held = self.get(at).await?;
        // Named with its requester in our log: two members' consultations may
        // share an id here.
        let id = ConsultationRef::of(
            held.consultation.requester().clone(),
            held.consultation.id(),
        );
        let before = held.consultation.clone();
        let now = Timestamp::now();
        let actions =
            held.consultation
                .supply_info(text, details, deadline_after(now, deadline), now)?;
        held.consultation
            .set_round_min_deadline(self.min_deadline());
        let (sent, outgoing) = self.plan(actions, held.consultation.deadline())?;
        held.messages.extend(sent);
        held.outgoing.extend(outgoing);
        let mut events = vec![acted(
            now,
            user,
            "consult_supply_info",
            Some(id.to_string()),
        )];
        events.extend(trail(Some(&before), &held.consultation, &[]));
        self.save(&held, Vec::new(), events).await?;
        self.flush(&mut held).await?;
        Ok(held)
    }

    /// The members the entry's distribution admits, judged on the entry's head
    /// record held here now (not the record consulted on: an amendment may have
    /// narrowed it) and with its hop rule as replication applies it (review of issue
    /// 21, finding 15). Without a hop limit (`groups` or `federation`, `max_hops = 0`)
    /// that is every member `wlnode_policy::admits` lets hold it. With one
    /// (`neighbors`, or `max_hops > 0`) a member's distance from the origin depends
    /// on links this node cannot see, so only members it can place within the limit
    /// are told: the origin, the member this node got the record from, and this
    /// node's configured neighbours to which `wlnode_policy::distribution_send`
    /// would pass the record from here. A member
    /// that may sit beyond the limit is never told (that would reveal the entry to a
    /// member that cannot hold it). Our own share rules do not filter the notice
    /// (DESIGN.md: it goes to every member the entry's distribution admits; it
    /// reveals only our decision on an entry its origin admitted them to; review
    /// s31-consult M4).
    async fn admitted(&self, held: &Held) -> Result<Vec<AgencyCode>, ConsultServiceError> {
        let c = &held.consultation;
        let head = self
            .store
            .entries_by_id(c.entry_id())
            .await?
            .into_iter()
            .find(|(k, _)| k.origin == *c.origin())
            .map_or_else(|| c.record_id(), |(_, st)| st.head);
        let record = self.store.record(head).await?.ok_or_else(|| {
            ConsultServiceError::NotFound(format!(
                "record {head} of the consulted entry is not held here"
            ))
        })?;
        let roster = self.trust.roster();
        Ok(admitted_members(&roster, &record, &self.neighbours))
    }

    /// Requester: decides on the licence. A grant despite an objection or an expired
    /// denial sends the decision notice to every member the entry's distribution
    /// admits.
    pub async fn decide(
        &self,
        user: &str,
        at: impl Into<ConsultationRef>,
        decision: Decision,
        reason: Option<String>,
    ) -> Result<Held, ConsultServiceError> {
        let _g = self.lock.lock().await;
        let mut held = self.get(at).await?;
        // Named with its requester in our log: two members' consultations may
        // share an id here.
        let id = ConsultationRef::of(
            held.consultation.requester().clone(),
            held.consultation.id(),
        );
        let admitted = self.admitted(&held).await?;
        let before = held.consultation.clone();
        let actions = held
            .consultation
            .decide(decision, reason, &admitted, Timestamp::now())?;
        let (sent, outgoing) = self.plan(actions, held.consultation.deadline())?;
        let mut events = vec![acted(
            Timestamp::now(),
            user,
            "consult_decide",
            Some(id.to_string()),
        )];
        events.extend(trail(Some(&before), &held.consultation, &sent));
        held.messages.extend(sent);
        held.outgoing.extend(outgoing);
        self.save(&held, Vec::new(), events).await?;
        self.flush(&mut held).await?;
        Ok(held)
    }

    /// Applies one message delivered to us; messages that are not consultations (hit
    /// reports, flags, notices of others' consultations) stay in the inbox only.
    async fn apply(&self, item: &InboxItem) -> Result<(), ConsultServiceError> {
        self.apply_at(item, Timestamp::now()).await
    }

    /// [`Self::apply`] with the clock at `now`. Test hook (review s31-consult L2): an
    /// item that arrived well before `now` (a catch-up after a restart) is judged at
    /// its arrival.
    #[doc(hidden)]
    pub async fn apply_at(
        &self,
        item: &InboxItem,
        now: Timestamp,
    ) -> Result<(), ConsultServiceError> {
        let _g = self.lock.lock().await;
        let applied = applied_key(item);
        let k = applied.clone();
        if self
            .store
            .call(move |s| s.table_get(LocalTable::Consultations, &k))
            .await?
            .is_some()
        {
            return Ok(());
        }
        let mark = vec![(applied, Vec::new())];
        // The roster this message is judged under, taken once (s35): every
        // minimum applied to the message and the fields a `deadline_too_short`
        // refusal's receipt signs come from it, so the minimum signed is the one
        // applied, from the version signed, even if a reload swaps the roster
        // meanwhile. (The signer check and the receipt cut-over below read the
        // roster again: a reload in between changes neither signed field.)
        let judged = self.trust.roster();
        let payload = match wlnode_consult::decode(item.body.as_bytes()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(from = %item.from, error = %e, "undecodable message body");
                return self.mark(mark).await;
            }
        };
        // An envelope whose kind is not its payload's (review s32-consult L1: the
        // refusal depended on the kind the sender picked, so one message told a
        // member whether we hold an id) is refused and audited, and never answered,
        // whatever the id.
        if item.kind != payload.kind() {
            tracing::warn!(from = %item.from, kind = %item.kind, payload = payload.kind(), "consultation message refused: its envelope kind is not its payload's");
            self.refused_messages
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ev = refusal_event(
                &self.agency,
                item,
                now,
                format!(
                    "consultation_refused: envelope kind {} carries a {} payload",
                    item.kind,
                    payload.kind()
                ),
            );
            self.mark_refused(mark, ev).await?;
            return Ok(());
        }
        // The sender's signed receipt of a request, answer or refusal (issue 21,
        // s33): checked before anything else and kept as evidence in the trail
        // step. One that does not check (another signer, another step, another
        // content) is refused with the message, so that our log never holds a
        // receipt the auditor would read as invented by us.
        let receipt = {
            let roster = self.trust.roster();
            match wlnode_consult::evidence::check(&payload, &item.from, &self.agency, |k, t| {
                roster
                    .check_signer(&item.from, k, t)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .and_then(|r| {
                // Nor one dated ahead of our clock by more than the skew: the
                // auditor dates the step by it.
                let skew = u64::try_from(wlnode_consult::MAX_CLOCK_SKEW.as_millis()).unwrap_or(0);
                let ahead = now.as_millis().saturating_add(skew);
                match r
                    .as_ref()
                    .map(wlnode_consult::SignedReceipt::open)
                    .transpose()?
                {
                    Some(b) if b.signed_at.as_millis() > ahead => Err(
                        wlnode_consult::ReceiptError::Mismatch("signed_at ahead of our clock"),
                    ),
                    Some(b)
                        if b.step == ReceiptStep::Request
                            && b.signed_at.as_millis() < request_signed_since(item, now, skew) =>
                    {
                        Err(wlnode_consult::ReceiptError::Mismatch(
                            "signed_at earlier than the message's lifetime allows",
                        ))
                    }
                    b => Ok(r.map(|r| (r, b))),
                }
            }) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(from = %item.from, kind = payload.kind(), error = %e, "consultation message refused: its receipt does not check");
                    self.refused_messages
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Audited with the mark like every other refusal (review
                    // s33-consult L5: our log held nothing showing that a malformed
                    // answer came, so we could not rebut an origin whose own log
                    // shows it answered).
                    let why = clip_reason(format!("consultation_refused: receipt: {e}"));
                    let ev = refusal_event(&self.agency, item, now, why);
                    self.mark_refused(mark, ev).await?;
                    return Ok(());
                }
            }
        };
        // Issue 21, s34 (review s33-consult M1 part 3: a guilty sender left its
        // receipt out and fell back to the pair rule): from the roster's
        // `consult_receipts_required_since`, a request, answer or refusal without
        // its sender's receipt is refused and audited like one whose receipt does not
        // check, and a request gets our signed refusal (`invalid`, whatever the id, so
        // it tells nothing of the ids we hold). Judged when applied, never before
        // the time the auditor reads for its step (review s34-consult M1). No strike: the consultation layer
        // strikes nobody, and a sender still on a node before receipts is late, not
        // hostile (its mail is signed, so no relay stripped the receipt).
        if let (None, Some(since)) = (
            &receipt,
            receipt_required_since(
                self.trust.roster().consult_receipts_required_since(),
                &payload,
                now,
            ),
        ) {
            tracing::warn!(from = %item.from, kind = payload.kind(), %since, "consultation message refused: no receipt, required since the roster's cut-over");
            self.refused_messages
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ev = refusal_event(
                &self.agency,
                item,
                now,
                format!(
                    "consultation_refused: no receipt; the roster requires one since {}",
                    since.as_millis()
                ),
            );
            self.mark_refused(mark, ev).await?;
            if let Payload::ConsultRequest(r) = &payload {
                let refused = Refusable {
                    id: r.consultation_id,
                    round: 1,
                    message_id: item.message_id,
                    deadline: r.deadline,
                    is_info: false,
                };
                self.send_refusal(&item.from, &refused, RefusalReason::Invalid, now, &judged)
                    .await?;
            }
            return Ok(());
        }
        // The deadline a refusal's receipt says the origin judged.
        let receipt_deadline = receipt.as_ref().and_then(|(_, b)| b.as_ref()?.deadline);
        let receipt = receipt.map(|(r, _)| r);
        let held_id = match &payload {
            Payload::ConsultDecision(d) => Some(d.consultation_id),
            _ => None,
        };
        // A request or a round of information we refuse is answered with a signed
        // refusal; nothing else ever is (a refusal is never answered with one).
        let refusable = match &payload {
            Payload::ConsultRequest(r) => Some(Refusable {
                id: r.consultation_id,
                round: 1,
                message_id: item.message_id,
                deadline: r.deadline,
                is_info: false,
            }),
            Payload::ConsultInfo(i) => Some(Refusable {
                id: i.consultation_id,
                round: i.round,
                message_id: item.message_id,
                deadline: i.deadline,
                is_info: true,
            }),
            _ => None,
        };
        let mut hint: Option<RefusalReason> = None;
        // A request under an id another requester holds, before the cut-over to one
        // consultation per requester and id: refused without a signed refusal when a
        // new request would have been taken (as before s35).
        let mut quiet = false;
        let result = match payload {
            Payload::ConsultRequest(req) => {
                // Only for our own entries.
                let ours = self
                    .store
                    .entries_by_id(req.entry_id)
                    .await?
                    .iter()
                    .any(|(k, _)| k.origin == self.agency);
                if !ours {
                    hint = Some(RefusalReason::NotOurEntry);
                    Err(ConsultServiceError::Invalid(format!(
                        "request for entry {} which is not ours",
                        req.entry_id
                    )))
                } else if self.load(&item.from, req.consultation_id).await?.is_some() {
                    // The requester's own request again: nothing new. From the
                    // roster's `consult_keyed_by_requester_since` on, another
                    // member's consultation under the same id is not this one
                    // (review s33/s34-consult L1): the request opens the sender's
                    // own, as if the id were not held.
                    Ok(None)
                } else if !keyed_by_requester(
                    // The roster this message is judged under, at its arrival
                    // (review of s35-int, H1/L1: one roster read per message, so
                    // what a refusal signs is what was applied).
                    judged.consult_keyed_by_requester_since(),
                    judged_at(item, now),
                ) && self.held_under(req.consultation_id).await?
                {
                    // Before that cut-over (or without it), as before s35 (review
                    // s31-fixes C3): the id is held here by another requester (or by
                    // us, as a requester), so no second requester's consultation is
                    // opened under it, and an auditor before s35, which replays one
                    // track per id, never sees two (review s35-key H1). Judged as a
                    // new request would be (the same refusal, or none), so the sender
                    // cannot tell the id is in use from this message alone.
                    let roster = &judged;
                    let min = Duration::from_secs(roster.consultation_min_deadline_secs());
                    if self.open_with(&item.from).await? >= MAX_OPEN_PER_REQUESTER {
                        hint = Some(RefusalReason::TooManyOpen);
                    } else if let Err(e) = Consultation::receive_request(
                        &self.agency,
                        &item.from,
                        req.clone(),
                        silence_of(roster.silence_rule()),
                        min,
                        judged_at(item, now),
                    ) {
                        hint = Some(wlnode_consult::refusal_reason(&e));
                    } else {
                        quiet = true;
                    }
                    Err(ConsultServiceError::Invalid(format!(
                        "request from {} for consultation {} which another requester holds here",
                        item.from, req.consultation_id
                    )))
                } else if self.open_with(&item.from).await? >= MAX_OPEN_PER_REQUESTER {
                    hint = Some(RefusalReason::TooManyOpen);
                    Err(ConsultServiceError::Invalid(format!(
                        "{} has {MAX_OPEN_PER_REQUESTER} open consultations with us already",
                        item.from
                    )))
                } else {
                    let roster = &judged;
                    let silence = silence_of(roster.silence_rule());
                    let min = Duration::from_secs(roster.consultation_min_deadline_secs());
                    // Judged at its arrival here, not when it is applied (review of the
                    // fixes, H1: a request held by a relay while we were offline, or
                    // applied by a catch-up after a restart, was refused as too short).
                    let arrived = judged_at(item, now);
                    Consultation::receive_request(
                        &self.agency,
                        &item.from,
                        req,
                        silence,
                        min,
                        arrived,
                    )
                    .map(|mut c| {
                        if let Some(r) = receipt.clone() {
                            c.record_evidence(ReceiptStep::Request, 1, r);
                        }
                        Some((
                            None,
                            Held {
                                consultation: c,
                                messages: Vec::new(),
                                outgoing: Vec::new(),
                            },
                        ))
                    })
                    .map_err(Into::into)
                }
            }
            // Judged by the time the origin signed into the message when it arrives
            // after the deadline (finding 13, requester side), and the late window
            // at its arrival here, not when it is applied (review s31-consult L1).
            Payload::ConsultAnswer(a) => match self.load(&self.agency, a.consultation_id).await? {
                Some(mut h) => {
                    let before = h.consultation.clone();
                    h.consultation
                        .receive_answer_arrived(
                            &item.from,
                            &a,
                            Timestamp(item.created_at),
                            judged_at(item, now),
                            now,
                        )
                        .map(|()| {
                            if let Some(r) = receipt.clone() {
                                h.consultation
                                    .record_evidence(ReceiptStep::Answer, a.round, r);
                            }
                            Some((Some(before), h))
                        })
                        .map_err(Into::into)
                }
                None => Ok(None),
            },
            Payload::ConsultRefusal(r) => match self.load(&self.agency, r.consultation_id).await? {
                Some(h)
                    if refused_message(&h, r.round) != r.message_id || r.message_id.is_none() =>
                {
                    // A refusal names the message it refuses (signed): ours for that
                    // round. One without it is from a node before the field and is
                    // not taken: the round reads as silence, as before refusals.
                    Err(ConsultServiceError::Invalid(match r.message_id {
                        None => format!(
                            "refusal of consultation {} round {} names no refused message (an older node): not taken",
                            r.consultation_id, r.round
                        ),
                        Some(m) => format!(
                            "refusal of consultation {} round {} names message {m}, which is not the one we sent for that round",
                            r.consultation_id, r.round
                        ),
                    }))
                }
                Some(h) if receipt_deadline.is_some_and(|d| d != h.consultation.deadline()) => {
                    // Its receipt must name the deadline we set for the round, or
                    // the auditor would judge the refusal on another one (s33).
                    Err(ConsultServiceError::Invalid(format!(
                        "refusal of consultation {} round {}: its receipt names another deadline",
                        r.consultation_id, r.round
                    )))
                }
                Some(mut h) => {
                    let before = h.consultation.clone();
                    // Judged by its signed time, like an answer, and taken only while
                    // open when applied (review s31-consult M1; applied after the
                    // deadline it is refused: the officer may decide on silence).
                    // s35: a signed `deadline_too_short` is held to our roster
                    // when it names our version, and must sign its terms from
                    // our roster's cut-over on (review s35-deadline H1).
                    h.consultation
                        .receive_refusal_under(
                            &item.from,
                            &r,
                            Timestamp(item.created_at),
                            Duration::from_secs(judged.consultation_min_deadline_secs()),
                            Some(&wlnode_consult::RosterTerms {
                                version: judged.version(),
                                explicit_min_deadline_secs: judged
                                    .explicit_consultation_min_deadline_secs(),
                                terms_required_since: judged.consult_refusal_terms_required_since(),
                            }),
                            now,
                        )
                        .map(|()| {
                            if let Some(rc) = receipt.clone() {
                                h.consultation
                                    .record_evidence(ReceiptStep::Refusal, r.round, rc);
                            }
                            Some((Some(before), h))
                        })
                        .map_err(Into::into)
                }
                None => Err(ConsultServiceError::NotFound(format!(
                    "refusal of consultation {} which is not ours",
                    r.consultation_id
                ))),
            },
            // Only the sender's own consultation (we are its origin).
            Payload::ConsultInfo(i) => match self.load(&item.from, i.consultation_id).await? {
                Some(mut h) => {
                    let before = h.consultation.clone();
                    h.consultation
                        .receive_info(
                            &item.from,
                            &i,
                            Duration::from_secs(judged.consultation_min_deadline_secs()),
                            judged_at(item, now),
                        )
                        .map(|()| Some((Some(before), h)))
                        .map_err(Into::into)
                }
                None => {
                    hint = Some(RefusalReason::UnknownConsultation);
                    Err(ConsultServiceError::NotFound(format!(
                        "information for consultation {} which is not ours",
                        i.consultation_id
                    )))
                }
            },
            Payload::ConsultDecision(d) => match self.load(&item.from, d.consultation_id).await? {
                // Already held: only `retry_deferred` applies it (a catch-up after a
                // restart must not apply it against a later state).
                Some(_) if self.is_held(item).await? => return Ok(()),
                Some(mut h) if h.consultation.role() == ConsultRole::Origin => {
                    let before = h.consultation.clone();
                    // Judged on when it arrived here, not when it is applied (after a
                    // restart, catch-up applies it later).
                    let arrived = Timestamp(item.received_at).min(now);
                    // Only the requester's decision on this consultation's entry may
                    // be held (review of the fixes, L1: anyone's was held and audited
                    // under the requester's name): the look-up above is of the
                    // sender's own consultation, so the sender is its requester.
                    if d.entry_id != before.entry_id() {
                        Err(ConsultError::Mismatch {
                            expected: before.entry_id().to_hex(),
                            got: d.entry_id.to_hex(),
                        }
                        .into())
                    } else if before.state() == State::Open && arrived < before.deadline() {
                        Err(ConsultError::PrematureDecision {
                            deadline: before.deadline(),
                        }
                        .into())
                    } else {
                        h.consultation
                            .receive_decision(&item.from, &d, now)
                            .map(|()| Some((Some(before), h)))
                            .map_err(Into::into)
                    }
                }
                // A notice of another agency's consultation: the inbox shows it. A
                // member's decision under an id where it holds no consultation with
                // us reads the same (it cannot be told from a notice), and reaches no
                // other member's consultation under that id (review s35-key L6).
                _ => Ok(None),
            },
            Payload::HitReport(r) => {
                if let Some(why) = self.hit_report_refusal(&r).await? {
                    self.refused_hits
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(from = %item.from, entry = %r.entry_id, reason = why, "hit report refused");
                    let ev = refusal_event(&self.agency, item, now, why.into());
                    self.mark_refused(mark, ev).await?;
                    return Ok(());
                }
                if let Some(ev) = &self.events {
                    ev.emit(
                        wlnode_config::EventType::Consultation,
                        serde_json::json!({
                            "kind": "hit_report",
                            "entry_id": r.entry_id.to_string(),
                            "from": item.from.to_string(),
                        }),
                    );
                }
                Ok(None)
            }
            Payload::Flag(f) => {
                // Only for our own entries; metadata only (the reason stays in the
                // inbox).
                let ours = self
                    .store
                    .entries_by_id(f.entry_id)
                    .await?
                    .iter()
                    .any(|(k, _)| k.origin == self.agency);
                if let (true, Some(ev)) = (ours, &self.events) {
                    ev.emit(
                        wlnode_config::EventType::FlaggedEntry,
                        serde_json::json!({
                            "kind": match f.action {
                                wlnode_consult::FlagAction::Set => "set",
                                wlnode_consult::FlagAction::Unset => "lifted",
                            },
                            "entry_id": f.entry_id.to_string(),
                            "from": item.from.to_string(),
                            "message_id": item.message_id.to_hex(),
                        }),
                    );
                }
                Ok(None)
            }
        };
        match result {
            Ok(Some((before, h))) => {
                let events = trail(before.as_ref(), &h.consultation, &[]);
                self.save(&h, mark, events).await?;
                let kind = match (
                    before.as_ref().map(Consultation::state),
                    h.consultation.state(),
                ) {
                    (None, _) => "received",
                    // A late answer recorded beside a decision taken on silence.
                    (Some(State::Decided), State::Decided) => "answered_late",
                    (_, State::Decided) => "decided",
                    (_, State::Answered) => "answered",
                    (_, State::RefusedByOrigin) => "refused_by_origin",
                    _ => "updated",
                };
                self.announce(kind, &h.consultation);
                Ok(())
            }
            Ok(None) => self.mark(mark).await,
            // A decision that came before the deadline by our clock, but within the
            // clock skew two honest nodes may have: kept with the consultation's
            // state then, audited (`decision_held`, at its real arrival), and applied
            // once the deadline has passed unless an answer or information was
            // recorded meanwhile (review of issue 21, finding 13; s30-consult H1).
            Err(ConsultServiceError::Consult(ConsultError::PrematureDecision { deadline }))
                if held_until_deadline(deadline, Timestamp(item.received_at).min(now)) =>
            {
                let arrived = Timestamp(item.received_at).min(now);
                tracing::info!(from = %item.from, %deadline, "decision before our deadline, within the clock skew: held until it passes");
                let Some(h) = (match held_id {
                    Some(id) => self.load(&item.from, id).await?,
                    None => None,
                }) else {
                    return self.mark(mark).await;
                };
                let row = HeldDecision::new(item, arrived, &h.consultation);
                let v = serde_json::to_vec(&row)
                    .map_err(|e| ConsultServiceError::Corrupt(e.to_string()))?;
                let ev = step_event(
                    &h.consultation,
                    wlnode_consult::TrailKind::DecisionHeld,
                    arrived,
                );
                self.put_audited(vec![(deferred_key(item), v)], ev).await
            }
            Err(e) => {
                // Audited with the applied mark (review of the fixes, H1: a refused
                // request left only a log line, and the origin's audit no trace).
                tracing::warn!(from = %item.from, kind = %item.kind, error = %e, "consultation message refused");
                let why = clip_reason(format!("consultation_refused: {e}"));
                self.refused_messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ev = refusal_event(&self.agency, item, now, why);
                self.mark_refused(mark, ev).await?;
                // Every lookup above was of the sender's own consultations (review
                // s31-fixes C3, s33/s34-consult L1): the refusal depends on nothing
                // another member holds, except a request under an id held here before
                // the cut-over to one consultation per requester and id (review s35-key
                // H1: refused, or dropped quietly, as a new request would be, as before
                // s35). Same per-round mark and daily quota.
                if let (false, Some(refused)) = (quiet, refusable) {
                    let reason = hint.unwrap_or(match &e {
                        ConsultServiceError::Consult(c) => wlnode_consult::refusal_reason(c),
                        _ => RefusalReason::Invalid,
                    });
                    self.send_refusal(&item.from, &refused, reason, now, &judged)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Whether `item` is a decision held until our deadline.
    async fn is_held(&self, item: &InboxItem) -> Result<bool, ConsultServiceError> {
        let k = deferred_key(item);
        Ok(self
            .store
            .call(move |s| s.table_get(LocalTable::Consultations, &k))
            .await?
            .is_some_and(|v| !v.is_empty()))
    }

    /// Decisions held until our deadline passed (see `apply`): applies those now due,
    /// or refuses (and audits) one an answer or information overtook. The held row is
    /// emptied in the same write as the applied mark, so a crash between the two
    /// loses nothing (review s30-consult L4); emptied rows are removed after.
    async fn retry_deferred(&self) -> Result<(), ConsultServiceError> {
        let pairs = self
            .store
            .call(|s| {
                s.table_range(
                    LocalTable::Consultations,
                    &[DEFERRED],
                    &[DEFERRED + 1],
                    MAX_RANGE,
                )
            })
            .await?;
        for (k, v) in pairs {
            if v.is_empty() {
                self.store
                    .call(move |s| {
                        let mut end = k.clone();
                        end.push(0);
                        s.table_remove_range(LocalTable::Consultations, &k, &end, 1)
                    })
                    .await?;
                continue;
            }
            let row: HeldDecision = match serde_json::from_slice(&v) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "held decision does not decode; dropped");
                    self.mark(vec![(k, Vec::new())]).await?;
                    continue;
                }
            };
            if let Err(e) = self.apply_held(k, row).await {
                tracing::warn!(error = %e, "held decision not applied yet; retried");
            }
        }
        Ok(())
    }

    /// One held decision (see `retry_deferred`), if its deadline has passed.
    async fn apply_held(&self, k: Vec<u8>, row: HeldDecision) -> Result<(), ConsultServiceError> {
        let _g = self.lock.lock().await;
        let done = vec![(applied_key(&row.item), Vec::new()), (k, Vec::new())];
        let d = match wlnode_consult::decode(row.item.body.as_bytes()) {
            Ok(Payload::ConsultDecision(d)) => d,
            _ => return self.mark(done).await,
        };
        let Some(mut h) = self.load(&row.item.from, d.consultation_id).await? else {
            return self.mark(done).await;
        };
        let now = Timestamp::now();
        if h.consultation.deadline() > now {
            return Ok(());
        }
        let before = h.consultation.clone();
        if row.overtaken(&before) {
            tracing::warn!(consultation = %before.id(), from = %row.item.from, "held decision refused: the consultation was answered or reopened after it arrived");
            let ev = step_event(&before, wlnode_consult::TrailKind::HeldDecisionRefused, now);
            return self.put_audited(done, ev).await;
        }
        match h
            .consultation
            .receive_held_decision(&row.item.from, &d, row.received_at, now)
        {
            Ok(()) => {
                let events = trail(Some(&before), &h.consultation, &[]);
                self.save(&h, done, events).await?;
                self.announce("decided", &h.consultation);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(from = %row.item.from, error = %e, "held decision refused");
                self.mark(done).await
            }
        }
    }

    /// Marks a refused message handled and audits the refusal in one store call, so
    /// a message is never marked without its refusal in our log (or logged twice).
    async fn mark_refused(
        &self,
        mark: Vec<(Vec<u8>, Vec<u8>)>,
        ev: wlnode_audit::event::Event,
    ) -> Result<(), ConsultServiceError> {
        self.put_audited(mark, ev).await
    }

    /// Writes `pairs` and appends `ev` to the audit log in one store call: a row and
    /// the event that explains it land together or not at all.
    async fn put_audited(
        &self,
        pairs: Vec<(Vec<u8>, Vec<u8>)>,
        ev: wlnode_audit::event::Event,
    ) -> Result<(), ConsultServiceError> {
        self.store
            .call(move |s| {
                s.table_put(LocalTable::Consultations, &pairs, true)?;
                s.audit_append(&[ev])?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn mark(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), ConsultServiceError> {
        self.store
            .call(move |s| s.table_put(LocalTable::Consultations, &pairs, true))
            .await?;
        Ok(())
    }

    /// A receipt or an expiry of one of our messages.
    async fn on_delivery(
        &self,
        message_id: MessageId,
        state: &str,
    ) -> Result<(), ConsultServiceError> {
        let _g = self.lock.lock().await;
        let k = key(MESSAGE, message_id.as_bytes());
        let Some(cid) = self
            .store
            .call(move |s| s.table_get(LocalTable::Consultations, &k))
            .await?
        else {
            return Ok(());
        };
        // Id and requester (a row of the layout before names the id alone; it is
        // rewritten by `migrate`, so the id is then unique or the row stale).
        let Some(id) = cid
            .get(..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(ConsultationId)
        else {
            return Ok(());
        };
        let requester = cid
            .get(16..)
            .and_then(|b| std::str::from_utf8(b).ok())
            .filter(|r| !r.is_empty())
            .and_then(|r| AgencyCode::new(r).ok());
        let at = ConsultationRef { id, requester };
        let mut held = match self.get(at).await {
            Ok(h) => h,
            Err(
                ConsultServiceError::NotFound(_)
                | ConsultServiceError::AmbiguousConsultation { .. },
            ) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if !held.messages.iter().any(|m| m.message_id == message_id) {
            return Ok(());
        }
        let mut events = Vec::new();
        for m in &mut held.messages {
            if m.message_id == message_id && m.delivery == "pending" {
                m.delivery = state.to_owned();
                if state == "delivered" {
                    events.push(wlnode_audit::event::Event::new(
                        Timestamp::now().as_millis(),
                        wlnode_audit::event::EventKind::Consultation {
                            step: wlnode_consult::TrailEvent {
                                consultation_id: held.consultation.id(),
                                kind: wlnode_consult::TrailKind::Delivered,
                                at: Timestamp::now(),
                                from: self.agency.clone(),
                                to: m.to.clone(),
                            },
                        },
                    ));
                }
            }
        }
        self.save(&held, Vec::new(), events).await
    }

    /// Expires open consultations whose deadline passed.
    async fn tick(&self) -> Result<(), ConsultServiceError> {
        let now = Timestamp::now();
        let all = self.list().await?;
        for h in all {
            let open = h.consultation.state() == State::Open;
            let deadline = h.consultation.deadline();
            if open && deadline > now {
                let soon = deadline.as_millis().saturating_sub(now.as_millis())
                    <= EXPIRING_WITHIN.as_millis() as u64;
                let first = soon
                    && self
                        .warned
                        .lock()
                        .map(|mut w| {
                            w.insert((h.consultation.requester().clone(), h.consultation.id()))
                        })
                        .unwrap_or(false);
                if first {
                    self.announce("expiring", &h.consultation);
                }
            }
            if open && deadline <= now {
                let _g = self.lock.lock().await;
                // Re-read under the lock: an answer may have come meanwhile.
                let Some(mut fresh) = self
                    .load(h.consultation.requester(), h.consultation.id())
                    .await?
                else {
                    continue;
                };
                let before = fresh.consultation.clone();
                if fresh.consultation.tick(now) {
                    let events = trail(Some(&before), &fresh.consultation, &[]);
                    self.save(&fresh, Vec::new(), events).await?;
                }
            }
            if !h.outgoing.is_empty() {
                let _g = self.lock.lock().await;
                if let Some(mut fresh) = self
                    .load(h.consultation.requester(), h.consultation.id())
                    .await?
                {
                    self.flush(&mut fresh).await?;
                }
            }
        }
        // Once an hour.
        let hour = now.as_millis() / 3_600_000;
        if self
            .pruned_hour
            .swap(hour, std::sync::atomic::Ordering::Relaxed)
            != hour
        {
            self.prune_refusals(now).await?;
        }
        self.retry_deferred().await
    }

    /// Every `pending` message whose receipt or expiry the outbox already holds:
    /// notices a crash or a lagging subscription lost (finding 17).
    async fn catch_up_deliveries(&self) -> Result<(), ConsultServiceError> {
        for h in self.list().await? {
            for m in h.messages.iter().filter(|m| m.delivery == "pending") {
                match self.mail.outbox_item(m.message_id).await? {
                    Some(o) if o.state == "delivered" || o.state == "expired" => {
                        self.on_delivery(m.message_id, &o.state).await?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Messages in the inbox not applied yet (after a restart between delivery and
    /// application).
    async fn catch_up(&self) -> Result<(), ConsultServiceError> {
        // Page by page: the inbox may hold many large messages.
        let mut cursor = None;
        loop {
            let (items, next) = self
                .mail
                .inbox_page(cursor, crate::mail::INBOX_PAGE)
                .await?;
            for item in items {
                if applies(&item.kind) {
                    self.apply(&item).await?;
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        self.catch_up_deliveries().await
    }

    /// Starts the task that applies incoming messages, receipts and deadlines.
    pub fn spawn(&self, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut rx = self.mail.subscribe();
        tokio::spawn(async move {
            // Before anything reads consultations (review s35-key L3: once per start).
            me.migration().await;
            if let Err(e) = me.catch_up().await {
                tracing::warn!(error = %e, "consultations: catching up with the inbox failed");
            }
            // Messages saved before a stop but not sent (finding 14).
            if let Err(e) = me.tick().await {
                tracing::warn!(error = %e, "consultations: sending saved messages failed");
            }
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut flag_tick = tokio::time::interval(Duration::from_secs(10));
            flag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let r = tokio::select! {
                    n = rx.recv() => match n {
                        Ok(MailNotice::Delivered(item)) if applies(&item.kind) => {
                            me.apply(&item).await
                        }
                        Ok(MailNotice::Delivered(_)) => Ok(()),
                        Ok(MailNotice::Receipt { message_id, .. }) => {
                            me.on_delivery(message_id, "delivered").await
                        }
                        Ok(MailNotice::Expired { message_id }) => {
                            me.on_delivery(message_id, "expired").await
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => me.catch_up().await,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tick.tick() => me.tick().await,
                    _ = flag_tick.tick() => match &me.flags {
                        Some(f) => f.retry().await.map_err(|e| {
                            ConsultServiceError::Invalid(format!("flags: {e}"))
                        }),
                        None => Ok(()),
                    },
                    _ = shutdown.changed() => break,
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, "consultations");
                }
            }
        })
    }
}

#[cfg(test)]
mod applied_tests {
    use super::*;

    /// Review s30-consult2 H2: only a decision less than the mail layer's five
    /// minutes early is held until the deadline; half an hour early is refused.
    #[test]
    fn only_a_decision_within_five_minutes_of_the_deadline_is_held() {
        let deadline = Timestamp(10 * 3_600_000);
        assert!(held_until_deadline(
            deadline,
            Timestamp(deadline.0 - 60_000)
        ));
        assert!(held_until_deadline(
            deadline,
            Timestamp(deadline.0 - 300_000)
        ));
        assert!(!held_until_deadline(
            deadline,
            Timestamp(deadline.0 - 300_001)
        ));
        assert!(!held_until_deadline(
            deadline,
            Timestamp(deadline.0 - 1_800_000)
        ));
    }

    /// Review s30-consult H1: a held decision is refused once an answer (or a round
    /// of information) was recorded after it arrived.
    #[test]
    fn a_held_decision_is_overtaken_by_a_later_answer() {
        let mut c = origin_after_objection();
        let item = InboxItem {
            message_id: MessageId([1; 16]),
            from: "BB-Y".parse().unwrap(),
            kind: "consult_decision".into(),
            created_at: 0,
            received_at: 1500,
            body: String::new(),
        };
        // Held while open (before the objection).
        let open = {
            let mut o = c.clone();
            o = serde_json::from_value({
                let mut v = serde_json::to_value(&o).unwrap();
                v["answers"] = serde_json::json!([]);
                v
            })
            .unwrap();
            o
        };
        let row = HeldDecision::new(&item, Timestamp(1500), &open);
        assert!(row.overtaken(&c), "the objection came after it arrived");
        let same = HeldDecision::new(&item, Timestamp(1500), &c);
        assert!(!same.overtaken(&c));
        c.tick(Timestamp(20 * 86_400_000));
        assert!(!same.overtaken(&c), "an expiry is no answer");
    }

    fn origin_after_objection() -> Consultation {
        let req = wlnode_consult::ConsultRequest {
            receipt: None,
            consultation_id: ConsultationId([3; 16]),
            entry_id: EntryId([4; 16]),
            record_id: wlnode_crypto::model::RecordId([5; 32]),
            version: 1,
            reference: "LIC-1".into(),
            deadline: Timestamp(10 * 86_400_000),
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
        let mut c = Consultation::receive_request(
            &"AA-X".parse().unwrap(),
            &"BB-Y".parse().unwrap(),
            req,
            SilenceMeans::NoObjection,
            Duration::from_secs(86_400),
            Timestamp(1000),
        )
        .unwrap();
        c.answer(Answer::Objection, Some("no".into()), Timestamp(2000))
            .unwrap();
        c
    }

    fn steps(events: &[wlnode_audit::event::Event]) -> Vec<wlnode_consult::TrailEvent> {
        events
            .iter()
            .filter_map(|e| match &e.kind {
                wlnode_audit::event::EventKind::Consultation { step } => Some(step.clone()),
                _ => None,
            })
            .collect()
    }

    /// Review s30-consult2 H1: a grant against our objection that the requester
    /// called `despite: none` notified nobody; the origin's trail must not show a
    /// notice, so the auditor (as `check_consultations` runs it on the origin's log)
    /// reports `grant_without_notice`.
    #[test]
    fn a_grant_misclaimed_as_despite_none_shows_no_notice_and_is_reported() {
        let b: AgencyCode = "BB-Y".parse().unwrap();
        for (claim, notified) in [
            (wlnode_consult::Despite::None, false),
            (wlnode_consult::Despite::Objection, true),
        ] {
            let mut c = origin_after_objection();
            let mut events = trail(None, &c, &[]);
            let before = c.clone();
            let d = wlnode_consult::ConsultDecision {
                consultation_id: c.id(),
                entry_id: c.entry_id(),
                decision: Decision::Granted,
                reason: None,
                despite: claim,
            };
            c.receive_decision(&b, &d, Timestamp(3000)).unwrap();
            events.extend(trail(Some(&before), &c, &[]));
            let violations = wlnode_consult::audit_trail(&steps(&events));
            let without_notice = violations.iter().any(|v| {
                matches!(
                    v.kind,
                    wlnode_consult::ViolationKind::GrantWithoutNotice { .. }
                )
            });
            assert_eq!(without_notice, !notified, "claim {claim:?}: {violations:?}");
        }
    }

    /// Review s31-consult H1: the requester granted on silence (`expired_denial`,
    /// notices to everyone, us included) before our in-time objection reached it. Our
    /// trail shows the notice, so the auditor does not blame us, the honest origin,
    /// for a grant without notice. Failed before the fix (no `notice_sent` when the
    /// claim differed from our view).
    #[test]
    fn a_grant_on_silence_before_our_objection_arrived_shows_the_notice() {
        let b: AgencyCode = "BB-Y".parse().unwrap();
        let mut c = origin_after_objection();
        let mut events = trail(None, &c, &[]);
        let before = c.clone();
        let d = wlnode_consult::ConsultDecision {
            consultation_id: c.id(),
            entry_id: c.entry_id(),
            decision: Decision::Granted,
            reason: None,
            despite: wlnode_consult::Despite::ExpiredDenial,
        };
        let after_deadline = Timestamp(c.deadline().0 + 600_000);
        c.receive_decision(&b, &d, after_deadline).unwrap();
        let rec = c.decision().unwrap();
        assert_eq!(rec.despite, wlnode_consult::Despite::Objection);
        assert_eq!(
            rec.claimed_despite,
            Some(wlnode_consult::Despite::ExpiredDenial)
        );
        events.extend(trail(Some(&before), &c, &[]));
        let s = steps(&events);
        assert!(
            s.iter()
                .any(|e| e.kind == wlnode_consult::TrailKind::NoticeSent),
            "{s:?}"
        );
        let violations = wlnode_consult::audit_trail(&s);
        assert!(violations.is_empty(), "{violations:?}");
    }

    /// Injected clock (review of the fixes, H1): a request that arrived in time and
    /// is applied ten minutes later (a catch-up after a restart) is judged at its
    /// arrival, and passes; judged when applied, as before the fix, it would be
    /// refused as too short.
    #[test]
    fn a_request_applied_long_after_it_arrived_is_judged_at_its_arrival() {
        let arrived = Timestamp(1_800_000_000_000);
        let applied = Timestamp(arrived.0 + 10 * 60_000);
        let item = InboxItem {
            message_id: MessageId([2; 16]),
            from: "BB-Y".parse().unwrap(),
            kind: "consult_request".into(),
            created_at: arrived.0 - 1000,
            received_at: arrived.0,
            body: String::new(),
        };
        assert_eq!(judged_at(&item, applied), arrived);
        assert_eq!(
            judged_at(&item, Timestamp(arrived.0 - 5)),
            Timestamp(arrived.0 - 5),
            "never later than now"
        );
        let min = Duration::from_secs(86_400);
        let mut req = origin_after_objection().request_payload();
        req.consultation_id = ConsultationId([9; 16]);
        // The roster's minimum, less four minutes: within the five-minute skew.
        req.deadline = Timestamp(arrived.0 + 86_400_000 - 4 * 60_000);
        let (me, from): (AgencyCode, AgencyCode) = ("AA-X".parse().unwrap(), item.from.clone());
        let silence = SilenceMeans::NoObjection;
        Consultation::receive_request(
            &me,
            &from,
            req.clone(),
            silence,
            min,
            judged_at(&item, applied),
        )
        .unwrap();
        assert!(matches!(
            Consultation::receive_request(&me, &from, req, silence, min, applied),
            Err(ConsultError::BadDeadline { .. })
        ));
    }

    #[test]
    fn the_applied_mark_names_the_sender() {
        let item = |from: &str| InboxItem {
            message_id: MessageId([7; 16]),
            from: from.parse().unwrap(),
            kind: "consult_request".into(),
            created_at: 0,
            received_at: 0,
            body: String::new(),
        };
        assert_ne!(applied_key(&item("AA-X")), applied_key(&item("MM-X")));
        assert_eq!(applied_key(&item("AA-X")), applied_key(&item("AA-X")));
    }

    /// Review s33/s34-consult L1: an officer names a consultation by its id, or by
    /// `REQUESTER:ID`; the key of a row holds the id first, so every requester's
    /// consultation under one id is one range, and the `m` row names both.
    #[test]
    fn a_consultation_is_named_by_id_or_requester_and_id() {
        let id = ConsultationId([0xab; 16]);
        let hex = id.to_hex();
        assert_eq!(
            ConsultationRef::parse(&hex).unwrap(),
            ConsultationRef::from(id)
        );
        let bb: AgencyCode = "BB-CUSTOMS".parse().unwrap();
        let named = ConsultationRef::parse(&format!("BB-CUSTOMS:{hex}")).unwrap();
        assert_eq!(named, ConsultationRef::of(bb.clone(), id));
        assert_eq!(named.to_string(), format!("BB-CUSTOMS:{hex}"));
        for bad in [
            "",
            "xyz",
            "BB-CUSTOMS:",
            " {hex}",
            "{hex}\r\n",
            "BB-CUSTOMS:{hex}?x",
        ] {
            assert!(
                matches!(
                    ConsultationRef::parse(&bad.replace("{hex}", &hex)),
                    Err(ConsultationRefError::Id { .. })
                ),
                "{bad}"
            );
        }
        // Review s35-key L4: the requester part is an agency code, nothing else.
        for bad in [
            ":{hex}",
            "bb-customs:{hex}",
            "../../users/x:{hex}",
            "BB/CUSTOMS:{hex}",
            "\r\nBB-CUSTOMS:{hex}",
            "BB-CUSTOMS :{hex}",
        ] {
            assert!(
                matches!(
                    ConsultationRef::parse(&bad.replace("{hex}", &hex)),
                    Err(ConsultationRefError::Requester(_))
                ),
                "{bad}"
            );
        }
        let k = consult_key(&bb, id);
        assert_eq!(k[0], CONSULT);
        assert_eq!(&k[1..17], &id.0);
        assert_eq!(&k[17..], b"BB-CUSTOMS");
    }

    #[test]
    fn refusal_reasons_are_cut_on_a_character_boundary() {
        assert_eq!(clip_reason("short".into()), "short");
        // 199 ASCII bytes and then two-byte characters: byte 200 falls inside one.
        let long = format!("{}{}", "a".repeat(199), "é".repeat(60));
        let cut = clip_reason(long.clone());
        assert_eq!(cut.len(), 199);
        assert!(long.starts_with(&cut));
        let exact = "b".repeat(300);
        assert_eq!(clip_reason(exact).len(), 200);
    }

    /// Issue 21, s34: the receipt cut-over is judged when the message is applied (a
    /// request too, review s34-consult M1); nothing without the roster setting, nor
    /// for a message that takes no receipt.
    #[test]
    fn the_receipt_cut_over_is_judged_when_the_message_is_applied() {
        use wlnode_consult::{ConsultAnswer, ConsultDecision};
        let cut = Timestamp(10 * 86_400_000);
        let request = Payload::ConsultRequest(origin_after_objection().request_payload());
        let answer = Payload::ConsultAnswer(ConsultAnswer {
            consultation_id: ConsultationId([0; 16]),
            round: 1,
            answer: Answer::Objection,
            reason: None,
            answered_at: None,
            receipt: None,
        });
        let (before, after) = (Timestamp(cut.0 - 1), Timestamp(cut.0 + 60_000));
        // A request: when it is applied, even if it arrived before (review
        // s34-consult M1: the auditor judges it no earlier than the checkpoints
        // signed before it was logged).
        assert_eq!(receipt_required_since(Some(cut), &request, cut), Some(cut));
        assert_eq!(
            receipt_required_since(Some(cut), &request, after),
            Some(cut),
            "arrived before the cut-over, applied after it"
        );
        assert_eq!(receipt_required_since(Some(cut), &request, before), None);
        // An answer: when it is applied (its step's time).
        assert_eq!(receipt_required_since(Some(cut), &answer, after), Some(cut));
        assert_eq!(receipt_required_since(Some(cut), &answer, before), None);
        // No setting: never.
        assert_eq!(receipt_required_since(None, &answer, after), None);
        // A decision takes no receipt.
        let decision = ConsultDecision {
            consultation_id: ConsultationId([0; 16]),
            entry_id: EntryId([4; 16]),
            decision: Decision::Granted,
            reason: None,
            despite: wlnode_consult::Despite::None,
        };
        assert_eq!(
            receipt_required_since(Some(cut), &Payload::ConsultDecision(decision), after),
            None
        );
    }

    /// Review s34-consult L1: a saved request whose receipt was signed more than the
    /// skew ago (its send deferred) gets a fresh receipt when it is sent, which
    /// checks and is signed then; a fresh one, or another kind, is sent as saved.
    #[test]
    fn a_deferred_request_is_sent_with_a_fresh_receipt() {
        use wlnode_consult::evidence;
        let key = wlnode_crypto::SecretKey::generate().unwrap();
        let (from, to): (AgencyCode, AgencyCode) =
            ("BB-Y".parse().unwrap(), "AA-X".parse().unwrap());
        let now = Timestamp(200 * 86_400_000);
        let saved = |signed: Timestamp| {
            let mut p = Payload::ConsultRequest(origin_after_objection().request_payload());
            evidence::seal(&mut p, &from, &to, &key, signed, None).unwrap();
            String::from_utf8(wlnode_consult::encode(&p).unwrap()).unwrap()
        };
        let deferred = saved(Timestamp(now.0 - 2 * 3_600_000));
        let fresh = resealed_request(&deferred, &from, &to, &key, now).expect("resealed");
        let p = wlnode_consult::decode(fresh.as_bytes()).unwrap();
        let signed = evidence::check(&p, &from, &to, |k, _| {
            (*k == key.public_key())
                .then_some(())
                .ok_or_else(|| "another key".to_owned())
        })
        .unwrap()
        .unwrap();
        assert_eq!(signed.open().unwrap().signed_at, now);
        // Signed within the skew: sent as saved.
        let recent = saved(Timestamp(now.0 - 60_000));
        assert_eq!(resealed_request(&recent, &from, &to, &key, now), None);
        // Not a request: sent as saved.
        let answer = Payload::ConsultAnswer(wlnode_consult::ConsultAnswer {
            consultation_id: ConsultationId([0; 16]),
            round: 1,
            answer: Answer::NoObjection,
            reason: None,
            answered_at: None,
            receipt: None,
        });
        let answer = String::from_utf8(wlnode_consult::encode(&answer).unwrap()).unwrap();
        assert_eq!(resealed_request(&answer, &from, &to, &key, now), None);
    }

    /// Review s33-consult M2 part 2: a request's receipt may be signed as early as
    /// its arrival less the longest message lifetime and the skew (an honest request
    /// relayed for its whole lifetime), no earlier.
    #[test]
    fn a_request_receipt_may_be_signed_a_message_lifetime_before_its_arrival() {
        let arrived = 200 * 86_400_000;
        let item = InboxItem {
            message_id: MessageId([7; 16]),
            from: "BB-Y".parse().unwrap(),
            kind: "consult_request".into(),
            created_at: 0,
            received_at: arrived,
            body: String::new(),
        };
        let skew = 3_600_000;
        let since = request_signed_since(&item, Timestamp(arrived + 86_400_000), skew);
        assert_eq!(since, arrived - MAX_EXPIRY_MS - skew);
        // Judged at the arrival, not when applied.
        assert_eq!(request_signed_since(&item, Timestamp(arrived), skew), since);
    }
}
