//! One consultation, as a state machine that both sides run: the requester (the
//! agency about to decide on a licence) and the origin (the agency whose entry denied
//! a like transaction).
//!
//! Every transition takes `now` and either returns the messages to send
//! ([`Action`]s, which the caller signs, seals and hands to the transport) or a
//! [`ConsultError`] and leaves the consultation unchanged (except that an answer
//! refused as past the deadline leaves it expired). The caller persists the
//! [`Consultation`] (it is `Serialize`) after every successful transition and writes
//! the audit event. See the crate documentation for the states and the order of
//! calls.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wlnode_crypto::{AgencyCode, EntryId, RecordId, Timestamp};

use crate::payload::{
    Answer, ConsultAnswer, ConsultDecision, ConsultInfo, ConsultRefusal, ConsultRequest,
    ConsultationId, Decision, Despite, MAX_REASON, MAX_TIME, Payload, PayloadError, RefusalReason,
    TransactionDetails,
};

/// The longest deadline a consultation may have, from the moment it is requested (or
/// reopened by further information): 365 days.
pub const MAX_DEADLINE: Duration = Duration::from_secs(365 * 86_400);
/// How far ahead of the origin's clock a received deadline may lie beyond
/// [`MAX_DEADLINE`]: one hour of clock difference between the two nodes.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(3600);
/// The clock difference allowed between requester and origin when the origin
/// judges the *timing* of a message: a round's shortest deadline, and whether a
/// decision came before the deadline. The mail layer's five minutes
/// (`wlnode_crypto::mail::MAX_CLOCK_SKEW_MS`), not [`MAX_CLOCK_SKEW`]'s hour: with an
/// hour a requester could decide an hour before the deadline and so overtake the
/// origin's objection (review s30-consult2, H2).
pub const TIMING_SKEW: Duration = Duration::from_millis(wlnode_crypto::mail::MAX_CLOCK_SKEW_MS);
/// How long after the deadline an answer the origin signed in time may still arrive
/// at the requester and count ([`Consultation::receive_answer`]): one day, the
/// lifetime the node gives a consultation message past its deadline (so an honest
/// answer held by a relay or a partition can never arrive later), and so also the
/// most a backdating origin gains.
pub const LATE_ANSWER_WINDOW: Duration = Duration::from_secs(86_400);
/// Most rounds of one consultation: the request, then at most four rounds of further
/// information after `info_requested`.
pub const MAX_ROUNDS: u32 = 5;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the origin's silence until the deadline means: the roster's federation
/// setting, copied onto every consultation when it is opened and shown with it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceMeans {
    /// An expired consultation counts as "no objection".
    NoObjection,
    /// An expired consultation counts as an objection.
    Objection,
}

impl SilenceMeans {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoObjection => "no_objection",
            Self::Objection => "objection",
        }
    }

    /// The answer silence stands for.
    pub fn as_answer(self) -> Answer {
        match self {
            Self::NoObjection => Answer::NoObjection,
            Self::Objection => Answer::Objection,
        }
    }
}

/// Which side of a consultation this node holds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// This node asked (`consult list --role sent`).
    Requester,
    /// This node was asked (`consult list --role received`).
    Origin,
}

impl Role {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "requester",
            Self::Origin => "origin",
        }
    }
}

/// Where a consultation stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for the origin's answer to the current round.
    Open,
    /// The origin answered the current round ([`Consultation::current_answer`] says how).
    Answered,
    /// The deadline passed without an answer; the silence rule says what that means.
    Expired,
    /// The requester decided on the licence.
    Decided,
    /// The origin refused the request or the current round with a signed
    /// `consult_refusal` (deadline too short, not its entry, ...) before the
    /// deadline. No answer will come; once the deadline has passed the requester
    /// may still decide, as on silence (a grant is despite an expired denial).
    RefusedByOrigin,
}

impl State {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Answered => "answered",
            Self::Expired => "expired",
            Self::Decided => "decided",
            Self::RefusedByOrigin => "refused_by_origin",
        }
    }
}

/// One answer of the origin.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerRecord {
    /// The round answered.
    pub round: u32,
    /// The answer.
    pub answer: Answer,
    /// Why.
    pub reason: Option<String>,
    /// When this node recorded it (at the requester: when it arrived).
    pub at: Timestamp,
    /// At the requester, for an answer that arrived after the deadline: the message's
    /// signed creation time at the origin, before the deadline within
    /// [`TIMING_SKEW`]. Absent for an answer that arrived in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<Timestamp>,
    /// At the requester, for a late answer: when its message arrived here (`at` is
    /// when it was applied, which a catch-up may make later; review s31-consult L1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived_at: Option<Timestamp>,
}

impl AnswerRecord {
    /// Whether it arrived after the deadline (signed in time, held on the way).
    pub fn late(&self) -> bool {
        self.signed_at.is_some()
    }
}

/// The origin's signed refusal of a round, at the requester.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// The round refused (1: the request).
    pub round: u32,
    /// Why.
    pub reason: RefusalReason,
    /// When it arrived here.
    pub at: Timestamp,
}

/// Further information the requester supplied, opening a round.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoRecord {
    /// The round it opened.
    pub round: u32,
    /// The information.
    pub text: String,
    /// When this node recorded it.
    pub at: Timestamp,
}

/// The requester's decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Granted or refused.
    pub decision: Decision,
    /// Why, if given.
    pub reason: Option<String>,
    /// What a grant went against. At the origin, by its own view of the
    /// consultation (its answer, or the expiry), not the requester's claim.
    pub despite: Despite,
    /// At the origin, when the requester claimed otherwise: what the requester's
    /// decision said it went against (review of issue 21, finding 18). A requester that
    /// calls a grant against an objection `none` notifies nobody; the origin's record
    /// and its trail keep the grant despite the objection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_despite: Option<Despite>,
    /// When this node recorded it.
    pub at: Timestamp,
    /// At the origin, for a decision that arrived before the deadline by this
    /// node's clock (within [`TIMING_SKEW`]) and was held until it passed: when it
    /// really arrived ("early within skew"; review s30-consult2 M1). `at` is when
    /// it was applied, never back-dated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
}

/// A message to send: the caller signs and seals `payload` to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A consultation message to the other party.
    Send {
        /// The recipient agency.
        to: AgencyCode,
        /// The body.
        payload: Payload,
    },
    /// The Art. 16 decision notice ("granted despite denial") to one member the
    /// entry's distribution admits (the origin among them). Audited as `notice_sent`.
    SendNotice {
        /// The recipient agency.
        to: AgencyCode,
        /// The body (a [`Payload::ConsultDecision`]).
        payload: Payload,
    },
}

impl Action {
    /// The recipient.
    pub fn to(&self) -> &AgencyCode {
        match self {
            Self::Send { to, .. } | Self::SendNotice { to, .. } => to,
        }
    }

    /// The body.
    pub fn payload(&self) -> &Payload {
        match self {
            Self::Send { payload, .. } | Self::SendNotice { payload, .. } => payload,
        }
    }
}

/// Why a transition was refused. The consultation is unchanged, with one exception:
/// an answer refused as [`ConsultError::AnswerAfterDeadline`] leaves the consultation
/// expired (the deadline had passed), so the caller persists it after that error too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsultError {
    /// A payload or value out of bounds.
    #[error(transparent)]
    Invalid(#[from] PayloadError),
    /// The step belongs to the other side (e.g. answering at the requester).
    #[error("{action} is done by the {needs}, and this node is the {is} of this consultation")]
    WrongSide {
        /// The step tried.
        action: &'static str,
        /// The side that does it.
        needs: &'static str,
        /// This node's side.
        is: &'static str,
    },
    /// An agency consulting itself.
    #[error("{0} cannot consult itself")]
    SelfConsultation(AgencyCode),
    /// A message from an agency that is not the origin (answers come only from it).
    #[error("{from} is not the origin {origin} of this consultation")]
    NotOrigin {
        /// The sender.
        from: AgencyCode,
        /// The origin.
        origin: AgencyCode,
    },
    /// A message from an agency that is not the requester (information and
    /// decisions come only from it).
    #[error("{from} is not the requester {requester} of this consultation")]
    NotRequester {
        /// The sender.
        from: AgencyCode,
        /// The requester.
        requester: AgencyCode,
    },
    /// A message about another consultation or entry.
    #[error("the message is about {got}, this consultation is {expected}")]
    Mismatch {
        /// This consultation's id (or entry).
        expected: String,
        /// What the message named.
        got: String,
    },
    /// The step is not possible in the current state (answering twice, deciding
    /// twice, supplying information nobody asked for, ...).
    #[error("cannot {action} a consultation that is {state}")]
    IllegalMove {
        /// The step tried.
        action: &'static str,
        /// The state it was in.
        state: &'static str,
    },
    /// An answer at or after the deadline: the consultation has expired.
    #[error("the deadline {deadline} has passed; the consultation expired")]
    AnswerAfterDeadline {
        /// The deadline.
        deadline: Timestamp,
    },
    /// An answer signed before the round it answers was opened here (less the
    /// skew).
    #[error("the answer was signed at {signed_at}, before its round was opened at {opened}")]
    AnswerBeforeRound {
        /// When the origin signed it.
        signed_at: Timestamp,
        /// When the round was opened here.
        opened: Timestamp,
    },
    /// A decision while the consultation is open and before its deadline.
    #[error("no decision before the origin answers or the deadline {deadline} passes")]
    PrematureDecision {
        /// The deadline.
        deadline: Timestamp,
    },
    /// A grant while the origin's request for information is unanswered.
    #[error(
        "the origin asked for information: supply it (consult info) or refuse; a grant must wait"
    )]
    InfoOutstanding,
    /// A message for another round than the current one.
    #[error("the message is for round {got}, the consultation expects round {expected}")]
    StaleRound {
        /// The round expected.
        expected: u32,
        /// The round named.
        got: u32,
    },
    /// More rounds of information than [`MAX_ROUNDS`].
    #[error("a consultation has at most {max} rounds")]
    TooManyRounds {
        /// [`MAX_ROUNDS`].
        max: u32,
    },
    /// The origin's signed refusal contradicts what this node knows (its reason, or
    /// when it was signed): refused and audited, never taken (review s31-consult M1).
    #[error("the origin's refusal ({}) contradicts what this node knows: {why}", .reason.as_str())]
    ImplausibleRefusal {
        /// The reason the refusal gave.
        reason: RefusalReason,
        /// What contradicts it.
        why: &'static str,
    },
    /// A deadline not after now, or too far ahead.
    #[error("deadline {deadline}: {why}")]
    BadDeadline {
        /// The deadline given.
        deadline: Timestamp,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// What the requester fills in to open a consultation ([`Consultation::request`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRequest {
    /// A fresh id ([`ConsultationId::random`]).
    pub id: ConsultationId,
    /// This node's agency.
    pub requester: AgencyCode,
    /// The entry's origin.
    pub origin: AgencyCode,
    /// The entry consulted on.
    pub entry_id: EntryId,
    /// The record of it held here.
    pub record_id: RecordId,
    /// That record's version.
    pub version: u32,
    /// The requester's file number.
    pub reference: String,
    /// The deadline (from [`crate::parse_deadline`] added to `now`).
    pub deadline: Timestamp,
    /// The intended transaction.
    pub details: TransactionDetails,
    /// The roster's silence rule.
    pub silence: SilenceMeans,
}

/// What a requester's roster says of a signed `deadline_too_short` refusal
/// ([`Consultation::receive_refusal_under`]; s35, review s33-consult L1 and
/// s35-deadline H1/L2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RosterTerms {
    /// The roster's version.
    pub version: u64,
    /// Its `consultation_min_deadline_secs` as the authority wrote it (`None`: left
    /// to the build's default).
    pub explicit_min_deadline_secs: Option<u64>,
    /// Its `consult_refusal_terms_required_since`.
    pub terms_required_since: Option<Timestamp>,
}

/// One consultation as one side holds it. Fields are read through methods; only the
/// transitions change them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultation {
    #[serde(rename = "consultation_id")]
    id: ConsultationId,
    role: Role,
    requester: AgencyCode,
    origin: AgencyCode,
    entry_id: EntryId,
    record_id: RecordId,
    version: u32,
    reference: String,
    silence: SilenceMeans,
    requested_at: Timestamp,
    deadline: Timestamp,
    round: u32,
    details: TransactionDetails,
    answers: Vec<AnswerRecord>,
    infos: Vec<InfoRecord>,
    expired_at: Option<Timestamp>,
    decision: Option<DecisionRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refusal: Option<RefusalRecord>,
    /// The roster's shortest deadline (`consultation_min_deadline_secs`) this node
    /// held the current round to when it opened: at the origin the one it judged the
    /// arrival with, at the requester the one in force when it sent the request or
    /// information ([`Self::set_round_min_deadline`]). A refusal `deadline_too_short`
    /// is judged against the larger of it and the minimum in force when the refusal
    /// arrives, so a roster change between the two does not make an honest refusal
    /// implausible (review s31-fixes C4). Absent in a consultation stored before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    round_min_deadline_secs: Option<u64>,
    /// The other party's signed receipts of its steps, as the receiving node checked
    /// them ([`crate::evidence::check`]): at the origin the request's, at the
    /// requester each answer's and the refusal's, by step and round. Written into the
    /// trail steps; at most one per step and round, [`MAX_ROUNDS`] + 2 in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    evidence: Vec<(
        crate::evidence::ReceiptStep,
        u32,
        crate::evidence::SignedReceipt,
    )>,
}

/// [`ConsultError::BadDeadline`]'s `why` for a deadline too far ahead (what
/// [`refusal_reason`] tells apart from one too short).
const TOO_FAR: &str = "more than 365 days ahead";

/// Checks a deadline for a round opened at `now` (with `slack` for another node's
/// clock).
fn check_deadline(
    deadline: Timestamp,
    now: Timestamp,
    slack: Duration,
) -> Result<(), ConsultError> {
    let latest = now
        .as_millis()
        .saturating_add(ms(MAX_DEADLINE))
        .saturating_add(ms(slack))
        .min(MAX_TIME.as_millis());
    if deadline.as_millis() > latest {
        return Err(ConsultError::BadDeadline {
            deadline,
            why: TOO_FAR,
        });
    }
    Ok(())
}

/// At the origin: checks that a round opened at `now` (the request or further
/// information arriving here) leaves at least `min` (the roster's
/// `consultation_min_deadline_secs`) before its deadline, less [`TIMING_SKEW`]. The
/// requester's own API enforces the minimum too, but only the origin's check binds a
/// requester that skips it (review s30-consult2 H2, s30-consult M4): a deadline of
/// one millisecond would otherwise expire the round before any officer saw it.
fn check_min_deadline(
    deadline: Timestamp,
    now: Timestamp,
    min: Duration,
) -> Result<(), ConsultError> {
    // Never a deadline already past (review of the fixes, M1: with a roster minimum
    // under the skew, `now + min - skew` lies in the past).
    let earliest = now
        .as_millis()
        .saturating_add(ms(min))
        .saturating_sub(ms(TIMING_SKEW))
        .max(now.as_millis().saturating_add(1));
    if deadline.as_millis() < earliest {
        return Err(ConsultError::BadDeadline {
            deadline,
            why: "earlier than the federation's shortest deadline from its arrival",
        });
    }
    Ok(())
}

fn check_reason(reason: Option<&String>) -> Result<(), ConsultError> {
    if let Some(r) = reason {
        wlnode_crypto::model::check_text(r, MAX_REASON)
            .map_err(|e| ConsultError::Invalid(e.within("reason").into()))?;
    }
    Ok(())
}

/// The members a "granted despite denial" notice goes to: every agency in `admitted`
/// (the members the entry's distribution admits, as the caller computed them from the
/// roster) and the origin (the consulted party, which always holds its own entry),
/// without the requester, each once, sorted. Nobody outside `admitted` but the
/// origin.
pub fn notice_recipients(
    requester: &AgencyCode,
    origin: &AgencyCode,
    admitted: &[AgencyCode],
) -> Vec<AgencyCode> {
    let mut set: BTreeSet<AgencyCode> = admitted.iter().cloned().collect();
    set.insert(origin.clone());
    set.remove(requester);
    set.into_iter().collect()
}

impl Consultation {
    /// Requester: opens a consultation and returns the request to send to the origin.
    /// The deadline must be after `now` and at most [`MAX_DEADLINE`] ahead.
    pub fn request(new: NewRequest, now: Timestamp) -> Result<(Self, Vec<Action>), ConsultError> {
        if new.requester == new.origin {
            return Err(ConsultError::SelfConsultation(new.requester));
        }
        if new.deadline <= now {
            return Err(ConsultError::BadDeadline {
                deadline: new.deadline,
                why: "must be after now",
            });
        }
        check_deadline(new.deadline, now, Duration::ZERO)?;
        let c = Self {
            id: new.id,
            role: Role::Requester,
            requester: new.requester,
            origin: new.origin,
            entry_id: new.entry_id,
            record_id: new.record_id,
            version: new.version,
            reference: new.reference,
            silence: new.silence,
            requested_at: now,
            deadline: new.deadline,
            round: 1,
            details: new.details,
            answers: Vec::new(),
            infos: Vec::new(),
            expired_at: None,
            decision: None,
            refusal: None,
            evidence: Vec::new(),
            round_min_deadline_secs: None,
        };
        let payload = Payload::ConsultRequest(c.request_payload());
        payload.validate()?;
        let action = Action::Send {
            to: c.origin.clone(),
            payload,
        };
        Ok((c, vec![action]))
    }

    /// Origin: takes a request `from` another agency, addressed to `me` (whose entry
    /// it is: the caller checks that the entry's origin is `me`). A deadline earlier
    /// than `min_deadline` (the roster's shortest) after its arrival, less
    /// [`TIMING_SKEW`], is [`ConsultError::BadDeadline`]: so is one that passed
    /// before it arrived.
    pub fn receive_request(
        me: &AgencyCode,
        from: &AgencyCode,
        req: ConsultRequest,
        silence: SilenceMeans,
        min_deadline: Duration,
        now: Timestamp,
    ) -> Result<Self, ConsultError> {
        if me == from {
            return Err(ConsultError::SelfConsultation(me.clone()));
        }
        Payload::ConsultRequest(req.clone()).validate()?;
        check_deadline(req.deadline, now, MAX_CLOCK_SKEW)?;
        check_min_deadline(req.deadline, now, min_deadline)?;
        let mut c = Self {
            id: req.consultation_id,
            role: Role::Origin,
            requester: from.clone(),
            origin: me.clone(),
            entry_id: req.entry_id,
            record_id: req.record_id,
            version: req.version,
            reference: req.reference,
            silence,
            requested_at: now,
            deadline: req.deadline,
            round: 1,
            details: req.details,
            answers: Vec::new(),
            infos: Vec::new(),
            expired_at: None,
            decision: None,
            refusal: None,
            evidence: Vec::new(),
            round_min_deadline_secs: Some(min_deadline.as_secs()),
        };
        c.tick(now);
        Ok(c)
    }

    /// Keeps the other party's checked receipt of step `step` of round `round` (the
    /// first one kept for a step and round stays).
    pub fn record_evidence(
        &mut self,
        step: crate::evidence::ReceiptStep,
        round: u32,
        receipt: crate::evidence::SignedReceipt,
    ) {
        let cap = usize::try_from(MAX_ROUNDS)
            .unwrap_or(usize::MAX)
            .saturating_add(2);
        if self.evidence.len() < cap && self.evidence(step, round).is_none() {
            self.evidence.push((step, round, receipt));
        }
    }

    /// The other party's receipt of step `step` of round `round`, if kept.
    pub fn evidence(
        &self,
        step: crate::evidence::ReceiptStep,
        round: u32,
    ) -> Option<&crate::evidence::SignedReceipt> {
        self.evidence
            .iter()
            .find(|(s, r, _)| *s == step && *r == round)
            .map(|(_, _, e)| e)
    }

    /// The request body as sent (requester) or received (origin), with the details
    /// as they stand now.
    pub fn request_payload(&self) -> ConsultRequest {
        ConsultRequest {
            consultation_id: self.id,
            entry_id: self.entry_id,
            record_id: self.record_id,
            version: self.version,
            reference: self.reference.clone(),
            deadline: self.deadline,
            details: self.details.clone(),
            receipt: None,
        }
    }

    fn side(&self, action: &'static str, needs: Role) -> Result<(), ConsultError> {
        if self.role == needs {
            Ok(())
        } else {
            Err(ConsultError::WrongSide {
                action,
                needs: needs.as_str(),
                is: self.role.as_str(),
            })
        }
    }

    fn same_id(&self, id: ConsultationId) -> Result<(), ConsultError> {
        if id == self.id {
            Ok(())
        } else {
            Err(ConsultError::Mismatch {
                expected: self.id.to_hex(),
                got: id.to_hex(),
            })
        }
    }

    fn illegal(&self, action: &'static str) -> ConsultError {
        ConsultError::IllegalMove {
            action,
            state: self.state().as_str(),
        }
    }

    /// Expires an open consultation whose deadline is at or before `now`. Returns
    /// whether it expired now. A consultation waiting for the requester's information
    /// (`answered`, `info_requested`) does not expire: the origin is not silent.
    pub fn tick(&mut self, now: Timestamp) -> bool {
        if self.state() == State::Open && now >= self.deadline {
            self.expired_at = Some(now);
            true
        } else {
            false
        }
    }

    /// Checks that an answer may be recorded now (the consultation is open, the
    /// deadline has not passed), expiring it when the deadline has passed.
    fn answerable(&mut self, now: Timestamp) -> Result<(), ConsultError> {
        self.tick(now);
        match self.state() {
            State::Open => Ok(()),
            State::Expired => Err(ConsultError::AnswerAfterDeadline {
                deadline: self.deadline,
            }),
            _ => Err(self.illegal("answer")),
        }
    }

    fn record_answer(&mut self, answer: Answer, reason: Option<String>, now: Timestamp) {
        self.answers.push(AnswerRecord {
            round: self.round,
            answer,
            reason,
            at: now,
            signed_at: None,
            arrived_at: None,
        });
    }

    /// Origin: answers the current round. Refused after the deadline
    /// ([`ConsultError::AnswerAfterDeadline`]; the consultation is then expired) and
    /// when already answered. `reason` is required for `objection` and
    /// `info_requested`.
    pub fn answer(
        &mut self,
        answer: Answer,
        reason: Option<String>,
        now: Timestamp,
    ) -> Result<Vec<Action>, ConsultError> {
        self.side("answer", Role::Origin)?;
        let body = ConsultAnswer {
            receipt: None,
            consultation_id: self.id,
            round: self.round,
            answer,
            reason: reason.clone(),
            answered_at: Some(now),
        };
        let payload = Payload::ConsultAnswer(body);
        payload.validate()?;
        self.answerable(now)?;
        self.record_answer(answer, reason, now);
        Ok(vec![Action::Send {
            to: self.requester.clone(),
            payload,
        }])
    }

    /// Requester: records the origin's answer `from` the sender, `signed_at` being the
    /// creation time the origin signed into the message's header. The time the
    /// answer was recorded at the origin, signed in its body
    /// ([`ConsultAnswer::answered_at`]), counts instead when earlier: the message may
    /// have been sealed later, on a retried send (review s31-consult M3); the origin
    /// signs both, so neither is more trusted than the other. Refused from anyone
    /// but the origin, for another round, and when already answered.
    ///
    /// An answer that arrives after the deadline (by this node's clock) is judged by
    /// when the origin signed it, not when it arrived (review of issue 21, finding 13:
    /// a relay or a partition may hold an answer given in time). It counts when
    /// - it was signed before the deadline, within [`TIMING_SKEW`] (the origin itself
    ///   refuses to answer after the deadline by its clock; the skew covers two
    ///   clocks and the moment between recording and sending),
    /// - it was signed no earlier than the round was opened here, less
    ///   [`TIMING_SKEW`] (nobody answers a request before it was made), and
    /// - it arrives within [`LATE_ANSWER_WINDOW`] (and the skew) of the deadline, the
    ///   lifetime an honest answer's message has past it.
    ///
    /// Then an expired consultation not yet decided becomes `answered` (the expiry
    /// is kept in the trail), and one the requester already decided on silence keeps
    /// its decision and records the answer beside it. [`AnswerRecord::signed_at`]
    /// marks it late. Otherwise it is [`ConsultError::AnswerAfterDeadline`], and the
    /// consultation is left expired.
    ///
    /// The origin holds the signing key, so it can backdate: what it gains is an
    /// answer counted up to [`LATE_ANSWER_WINDOW`] after the deadline, and only
    /// while the requester has not decided. It cannot undo or reorder a decision, and
    /// the requester's trail shows when the answer really arrived.
    pub fn receive_answer(
        &mut self,
        from: &AgencyCode,
        a: &ConsultAnswer,
        signed_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.receive_answer_arrived(from, a, signed_at, now, now)
    }

    /// [`Self::receive_answer`] applied at `now` for an answer that arrived here at
    /// `arrived` (a catch-up after a restart, a retried store write): a late answer's
    /// window is judged at its arrival (review s31-consult L1), kept in
    /// [`AnswerRecord::arrived_at`]; the step is recorded at `now`, so it never goes
    /// back before a step logged meanwhile (an expiry, a receipt).
    pub fn receive_answer_arrived(
        &mut self,
        from: &AgencyCode,
        a: &ConsultAnswer,
        signed_at: Timestamp,
        arrived: Timestamp,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        let arrived = arrived.min(now);
        self.side("receive an answer", Role::Requester)?;
        if from != &self.origin {
            return Err(ConsultError::NotOrigin {
                from: from.clone(),
                origin: self.origin.clone(),
            });
        }
        self.same_id(a.consultation_id)?;
        Payload::ConsultAnswer(a.clone()).validate()?;
        if a.round != self.round {
            return Err(ConsultError::StaleRound {
                expected: self.round,
                got: a.round,
            });
        }
        let signed_at = a.answered_at.map_or(signed_at, |t| t.min(signed_at));
        self.tick(now);
        let on_silence = self.expired_at.is_some();
        match self.state() {
            State::Open => {
                // Review s33-consult M1/L4: nobody answers a round before it was
                // opened, in time or late; an answer signed earlier (a backdated
                // receipt, placing the answer before the origin's current log began
                // so that its omission there proves nothing) is refused.
                let opened = self.round_opened_at();
                if signed_at.as_millis() < opened.as_millis().saturating_sub(ms(TIMING_SKEW)) {
                    return Err(ConsultError::AnswerBeforeRound { signed_at, opened });
                }
                self.record_answer(a.answer, a.reason.clone(), now);
                Ok(())
            }
            State::Expired => {
                self.check_late_answer(signed_at, arrived)?;
                self.expired_at = None;
                self.record_late_answer(a, signed_at, arrived, now);
                Ok(())
            }
            State::Decided if on_silence && self.current_answer().is_none() => {
                self.check_late_answer(signed_at, arrived)?;
                self.record_late_answer(a, signed_at, arrived, now);
                Ok(())
            }
            _ => Err(self.illegal("answer")),
        }
    }

    /// When the current round was opened here.
    fn round_opened_at(&self) -> Timestamp {
        self.infos
            .iter()
            .rev()
            .find(|i| i.round == self.round)
            .map_or(self.requested_at, |i| i.at)
    }

    /// See [`Self::receive_answer`].
    fn check_late_answer(
        &self,
        signed_at: Timestamp,
        arrived: Timestamp,
    ) -> Result<(), ConsultError> {
        let skew = ms(TIMING_SKEW);
        let deadline = self.deadline.as_millis();
        let signed = signed_at.as_millis();
        let in_time = signed < deadline.saturating_add(skew)
            && signed >= self.round_opened_at().as_millis().saturating_sub(skew)
            && arrived.as_millis()
                <= deadline
                    .saturating_add(ms(LATE_ANSWER_WINDOW))
                    .saturating_add(skew);
        if in_time {
            Ok(())
        } else {
            Err(ConsultError::AnswerAfterDeadline {
                deadline: self.deadline,
            })
        }
    }

    fn record_late_answer(
        &mut self,
        a: &ConsultAnswer,
        signed_at: Timestamp,
        arrived: Timestamp,
        now: Timestamp,
    ) {
        self.answers.push(AnswerRecord {
            round: self.round,
            answer: a.answer,
            reason: a.reason.clone(),
            at: now,
            signed_at: Some(signed_at),
            arrived_at: Some(arrived),
        });
    }

    /// Requester: records the origin's signed refusal `from` it of the current round
    /// (the request, or the information that opened it), `signed_at` being the
    /// creation time the origin signed into the message's header and `now` when it
    /// is applied here: the consultation becomes [`State::RefusedByOrigin`]. A refusal
    /// is information, not a veto (review s31-consult M1): it is taken only
    /// - from the origin, for this consultation and its current round;
    /// - while the round is open: before the deadline by this node's clock (after it
    ///   the consultation expired and the officer may decide on silence; a refusal
    ///   cannot take that away), signed before the deadline (within [`TIMING_SKEW`])
    ///   and not before the round was opened here, less the skew;
    /// - with a reason that does not contradict what this node knows
    ///   ([`ConsultError::ImplausibleRefusal`]): `not_our_entry` from the entry's
    ///   signed origin (this consultation went to it because the entry's record
    ///   names it), `unknown_consultation` for the request itself,
    ///   `deadline_too_short` although the deadline is at least the roster's
    ///   minimum after the origin signed the refusal, the minimum being the larger
    ///   of `min_deadline` (in force now) and the one the round was opened under
    ///   ([`Self::set_round_min_deadline`]; review s31-fixes C4) (it judged the
    ///   request at its arrival, before that, so the deadline was long enough then),
    ///   unless the refusal carries the origin's receipt, which the caller checked
    ///   (review s32-consult L2: the origin may run a roster with a larger minimum;
    ///   the auditor judges a signed refusal under the origin's roster),
    ///   and `deadline_too_long` for a deadline within [`MAX_DEADLINE`] of the
    ///   round's opening.
    ///
    /// Once the original deadline has passed the requester may still decide
    /// ([`Self::decide`]): a grant then counts as despite an expired denial.
    ///
    /// The roster this node runs is not given here: see
    /// [`Self::receive_refusal_under`], which also holds a signed
    /// `deadline_too_short` to the version of it.
    pub fn receive_refusal(
        &mut self,
        from: &AgencyCode,
        r: &ConsultRefusal,
        signed_at: Timestamp,
        min_deadline: Duration,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.receive_refusal_under(from, r, signed_at, min_deadline, None, now)
    }

    /// [`Self::receive_refusal`], with what this node's roster says of a signed
    /// `deadline_too_short` (`roster`; `min_deadline` is its minimum). Such a
    /// refusal is also refused ([`ConsultError::ImplausibleRefusal`], so the round
    /// reads as silence or expiry, and the caller audits the message):
    /// - (s35, review s35-deadline H1) from the roster's
    ///   `consult_refusal_terms_required_since` on (judged at `now`, as the s34
    ///   receipt cut-over is), when it comes without a receipt signing the minimum
    ///   and roster version the origin applied: an origin whose roster carries the
    ///   setting signs them, and one leaving them out would escape every proof;
    /// - when its receipt contradicts itself: its signed deadline leaves at least
    ///   the signed minimum plus [`TIMING_SKEW`] after its signed time
    ///   ([`crate::StepReceipt::contradicts_itself`]);
    /// - when its receipt names our roster version with another minimum than the
    ///   one our roster writes explicitly: the authority signs one content per
    ///   version, so the origin did not apply what it signed. Not when our roster
    ///   leaves the minimum to the build's default (review s35-deadline L2: another
    ///   build may have another default).
    ///
    /// A signed version we do not run (the origin's reload is ahead of or behind
    /// ours) is taken: the auditor judges it against the origin's logs, or against
    /// the roster's signed `issued_at` when it is above the auditor's.
    pub fn receive_refusal_under(
        &mut self,
        from: &AgencyCode,
        r: &ConsultRefusal,
        signed_at: Timestamp,
        min_deadline: Duration,
        roster: Option<&RosterTerms>,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.side("receive a refusal", Role::Requester)?;
        if from != &self.origin {
            return Err(ConsultError::NotOrigin {
                from: from.clone(),
                origin: self.origin.clone(),
            });
        }
        self.same_id(r.consultation_id)?;
        Payload::ConsultRefusal(r.clone()).validate()?;
        if r.round != self.round {
            return Err(ConsultError::StaleRound {
                expected: self.round,
                got: r.round,
            });
        }
        let mut probe = self.clone();
        probe.tick(now);
        if probe.state() != State::Open {
            return Err(probe.illegal("take a refusal of"));
        }
        let skew = ms(TIMING_SKEW);
        let deadline = self.deadline.as_millis();
        let signed = signed_at.as_millis();
        let opened = self.round_opened_at().as_millis();
        let implausible = |why| {
            Err(ConsultError::ImplausibleRefusal {
                reason: r.reason,
                why,
            })
        };
        if signed >= deadline.saturating_add(skew) {
            return implausible("signed after the deadline");
        }
        if signed < opened.saturating_sub(skew) {
            return implausible("signed before the round was opened");
        }
        match r.reason {
            RefusalReason::NotOurEntry => {
                return implausible("the entry's signed record names the origin");
            }
            RefusalReason::UnknownConsultation if r.round == 1 => {
                return implausible("a request cannot name an unknown consultation");
            }
            // Review s32-consult L2: with the origin's signed receipt (checked by the
            // caller, `crate::evidence::check`) the refusal is taken whatever our
            // minimum says: the origin may run a roster with another minimum, and
            // the auditor judges the signed refusal under the origin's roster and
            // proves an implausible one against it. Without a receipt, as before.
            RefusalReason::DeadlineTooShort
                if r.receipt.is_none()
                    && deadline
                        >= signed
                            .saturating_add(ms(self.refusal_min_deadline(min_deadline)))
                            .saturating_add(skew) =>
            {
                return implausible(
                    "the deadline is at least the roster's minimum after the refusal was signed",
                );
            }
            // s35: what the origin signed it applied must be there from the
            // roster's cut-over on, and hold together, and with our roster when it
            // names ours.
            RefusalReason::DeadlineTooShort => {
                let body = match &r.receipt {
                    Some(seal) => match seal.receipt.open() {
                        Ok(b) => Some(b),
                        Err(_) => return implausible("its receipt does not read"),
                    },
                    None => None,
                };
                let applied = body.as_ref().and_then(crate::StepReceipt::applied);
                if applied.is_none()
                    && roster
                        .and_then(|t| t.terms_required_since)
                        .is_some_and(|since| now >= since)
                {
                    return implausible(
                        "its receipt signs no minimum and roster version, which our roster requires",
                    );
                }
                if body.as_ref().is_some_and(|b| b.contradicts_itself(skew)) {
                    return implausible(
                        "its receipt signs a deadline at least the signed minimum after the signed time",
                    );
                }
                if let (Some(a), Some(t)) = (applied, roster)
                    && a.roster_version == t.version
                    && t.explicit_min_deadline_secs
                        .is_some_and(|m| m != a.min_deadline_secs)
                {
                    return implausible(
                        "its receipt signs another minimum than our roster's for our roster version",
                    );
                }
            }
            RefusalReason::DeadlineTooLong
                if deadline <= opened.saturating_add(ms(MAX_DEADLINE)) =>
            {
                return implausible("the deadline is within 365 days of the round's opening");
            }
            _ => {}
        }
        self.refusal = Some(RefusalRecord {
            round: r.round,
            reason: r.reason,
            at: now,
        });
        Ok(())
    }

    /// Requester: answers an `info_requested` with further information. This opens
    /// the next round: the consultation is `open` again, with `deadline` (after now,
    /// at most [`MAX_DEADLINE`] ahead), and the origin answers again. `details`
    /// replaces the transaction details when given.
    pub fn supply_info(
        &mut self,
        text: String,
        details: Option<TransactionDetails>,
        deadline: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<Action>, ConsultError> {
        self.side("supply information", Role::Requester)?;
        self.info_allowed()?;
        if deadline <= now {
            return Err(ConsultError::BadDeadline {
                deadline,
                why: "must be after now",
            });
        }
        check_deadline(deadline, now, Duration::ZERO)?;
        let body = ConsultInfo {
            consultation_id: self.id,
            round: self.round + 1,
            deadline,
            text,
            details,
        };
        let payload = Payload::ConsultInfo(body.clone());
        payload.validate()?;
        self.open_round(body, now);
        Ok(vec![Action::Send {
            to: self.origin.clone(),
            payload,
        }])
    }

    /// Origin: records the requester's further information, opening the next round.
    /// Its deadline is held to `min_deadline` as in [`Self::receive_request`].
    pub fn receive_info(
        &mut self,
        from: &AgencyCode,
        info: &ConsultInfo,
        min_deadline: Duration,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.side("receive information", Role::Origin)?;
        if from != &self.requester {
            return Err(ConsultError::NotRequester {
                from: from.clone(),
                requester: self.requester.clone(),
            });
        }
        self.same_id(info.consultation_id)?;
        Payload::ConsultInfo(info.clone()).validate()?;
        self.info_allowed()?;
        if info.round != self.round + 1 {
            return Err(ConsultError::StaleRound {
                expected: self.round + 1,
                got: info.round,
            });
        }
        check_deadline(info.deadline, now, MAX_CLOCK_SKEW)?;
        check_min_deadline(info.deadline, now, min_deadline)?;
        self.open_round(info.clone(), now);
        self.round_min_deadline_secs = Some(min_deadline.as_secs());
        self.tick(now);
        Ok(())
    }

    fn info_allowed(&self) -> Result<(), ConsultError> {
        if self.state() != State::Answered || self.current_answer() != Some(Answer::InfoRequested) {
            return Err(self.illegal("supply information to"));
        }
        if self.round >= MAX_ROUNDS {
            return Err(ConsultError::TooManyRounds { max: MAX_ROUNDS });
        }
        Ok(())
    }

    fn open_round(&mut self, info: ConsultInfo, now: Timestamp) {
        self.round_min_deadline_secs = None;
        self.round = info.round;
        self.deadline = info.deadline;
        if let Some(d) = info.details {
            self.details = d;
        }
        self.infos.push(InfoRecord {
            round: info.round,
            text: info.text,
            at: now,
        });
    }

    /// What a grant now would go against: the objection, or the denial of an expired
    /// consultation. Any grant on an expired consultation is a grant despite the
    /// denial, whatever the silence rule: silence did not lift the denial, and the
    /// partners are told (the silence rule is shown, see [`Self::deemed_answer`]).
    fn despite_if_granted(&self) -> Despite {
        match self.state() {
            // Refused by the origin and past the deadline: no answer came, as on
            // silence (review s31-consult M1).
            State::Expired | State::RefusedByOrigin => Despite::ExpiredDenial,
            State::Answered if self.current_answer() == Some(Answer::Objection) => {
                Despite::Objection
            }
            _ => Despite::None,
        }
    }

    /// Requester: decides on the licence. Allowed once the origin answered or the
    /// deadline passed (an open consultation past its deadline expires first); a
    /// grant while the origin's request for information is outstanding is refused. A
    /// grant despite an objection or an expired denial returns a
    /// [`Action::SendNotice`] for each of [`notice_recipients`] (the origin among
    /// them); any other decision a [`Action::Send`] to the origin.
    pub fn decide(
        &mut self,
        decision: Decision,
        reason: Option<String>,
        admitted: &[AgencyCode],
        now: Timestamp,
    ) -> Result<Vec<Action>, ConsultError> {
        self.side("decide", Role::Requester)?;
        check_reason(reason.as_ref())?;
        let mut probe = self.clone();
        probe.tick(now);
        match probe.state() {
            State::Open => {
                return Err(ConsultError::PrematureDecision {
                    deadline: self.deadline,
                });
            }
            State::Decided => return Err(probe.illegal("decide")),
            // The origin refused: information, not a veto (review s31-consult M1). Once
            // the original deadline has passed the requester decides as on silence.
            State::RefusedByOrigin if now < self.deadline => {
                return Err(ConsultError::PrematureDecision {
                    deadline: self.deadline,
                });
            }
            State::RefusedByOrigin => {}
            State::Answered
                if probe.current_answer() == Some(Answer::InfoRequested)
                    && decision == Decision::Granted =>
            {
                return Err(ConsultError::InfoOutstanding);
            }
            State::Answered | State::Expired => {}
        }
        let despite = match decision {
            Decision::Granted => probe.despite_if_granted(),
            Decision::Refused => Despite::None,
        };
        let payload = Payload::ConsultDecision(ConsultDecision {
            consultation_id: self.id,
            entry_id: self.entry_id,
            decision,
            reason: reason.clone(),
            despite,
        });
        payload.validate()?;
        *self = probe;
        self.decision = Some(DecisionRecord {
            decision,
            reason,
            despite,
            claimed_despite: None,
            at: now,
            received_at: None,
        });
        let actions = if despite == Despite::None {
            vec![Action::Send {
                to: self.origin.clone(),
                payload,
            }]
        } else {
            notice_recipients(&self.requester, &self.origin, admitted)
                .into_iter()
                .map(|to| Action::SendNotice {
                    to,
                    payload: payload.clone(),
                })
                .collect()
        };
        Ok(actions)
    }

    /// Origin: records the requester's decision. Refused from anyone but the
    /// requester, for another entry, twice, and while the consultation is open
    /// before its deadline by this node's clock ([`ConsultError::PrematureDecision`]).
    /// One that came less than [`TIMING_SKEW`] early (the requester's clock a little
    /// ahead) the caller holds and applies after the deadline with
    /// [`Self::receive_held_decision`]; an earlier one it audits as refused.
    pub fn receive_decision(
        &mut self,
        from: &AgencyCode,
        d: &ConsultDecision,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.side("receive a decision", Role::Origin)?;
        if from != &self.requester {
            return Err(ConsultError::NotRequester {
                from: from.clone(),
                requester: self.requester.clone(),
            });
        }
        self.same_id(d.consultation_id)?;
        if d.entry_id != self.entry_id {
            return Err(ConsultError::Mismatch {
                expected: self.entry_id.to_hex(),
                got: d.entry_id.to_hex(),
            });
        }
        Payload::ConsultDecision(d.clone()).validate()?;
        let mut probe = self.clone();
        let at = now;
        probe.tick(now);
        match probe.state() {
            State::Open => {
                return Err(ConsultError::PrematureDecision {
                    deadline: self.deadline,
                });
            }
            State::Decided | State::RefusedByOrigin => return Err(probe.illegal("decide")),
            State::Answered | State::Expired => {}
        }
        // What the grant went against by this node's own view: the requester's claim
        // is kept beside it when it differs, never taken instead.
        let despite = match d.decision {
            Decision::Granted => probe.despite_if_granted(),
            Decision::Refused => Despite::None,
        };
        *self = probe;
        self.decision = Some(DecisionRecord {
            decision: d.decision,
            reason: d.reason.clone(),
            despite,
            claimed_despite: (d.despite != despite).then_some(d.despite),
            at,
            received_at: None,
        });
        Ok(())
    }

    /// Origin: [`Self::receive_decision`] at `now` for a decision that arrived at
    /// `received_at`, before the deadline within the clock skew, and was held until
    /// the deadline passed; the record keeps `received_at`. The caller refuses it
    /// instead if an answer or information was recorded after it arrived.
    pub fn receive_held_decision(
        &mut self,
        from: &AgencyCode,
        d: &ConsultDecision,
        received_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), ConsultError> {
        self.receive_decision(from, d, now)?;
        if let Some(rec) = self.decision.as_mut() {
            rec.received_at = Some(received_at);
        }
        Ok(())
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        if self.decision.is_some() {
            State::Decided
        } else if self.refusal.is_some() {
            State::RefusedByOrigin
        } else if self.expired_at.is_some() {
            State::Expired
        } else if self.answers.last().is_some_and(|a| a.round == self.round) {
            State::Answered
        } else {
            State::Open
        }
    }

    /// The origin's answer to the current round, if any (also once decided).
    pub fn current_answer(&self) -> Option<Answer> {
        self.answers
            .last()
            .filter(|a| a.round == self.round)
            .map(|a| a.answer)
    }

    /// The answer to show: the origin's, or for an expired consultation the one the
    /// silence rule gives it.
    pub fn deemed_answer(&self) -> Option<Answer> {
        match self.expired_at {
            Some(_) => Some(self.silence.as_answer()),
            None => self.current_answer(),
        }
    }

    /// The id.
    pub fn id(&self) -> ConsultationId {
        self.id
    }
    /// This node's side.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The agency that asked.
    pub fn requester(&self) -> &AgencyCode {
        &self.requester
    }
    /// The entry's origin, which was asked.
    pub fn origin(&self) -> &AgencyCode {
        &self.origin
    }
    /// The entry consulted on.
    pub fn entry_id(&self) -> EntryId {
        self.entry_id
    }
    /// The record of the entry the requester held.
    pub fn record_id(&self) -> RecordId {
        self.record_id
    }
    /// That record's version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The requester's file number.
    pub fn reference(&self) -> &str {
        &self.reference
    }
    /// The silence rule in force for this consultation.
    pub fn silence(&self) -> SilenceMeans {
        self.silence
    }
    /// When this node opened it (requester) or received the request (origin).
    pub fn requested_at(&self) -> Timestamp {
        self.requested_at
    }
    /// The current round's deadline.
    pub fn deadline(&self) -> Timestamp {
        self.deadline
    }
    /// The current round (1 for the request).
    pub fn round(&self) -> u32 {
        self.round
    }
    /// The transaction, as last supplied.
    pub fn details(&self) -> &TransactionDetails {
        &self.details
    }
    /// Every answer, oldest first.
    pub fn answers(&self) -> &[AnswerRecord] {
        &self.answers
    }
    /// Every round of further information, oldest first.
    pub fn infos(&self) -> &[InfoRecord] {
        &self.infos
    }
    /// When it expired, if it did.
    pub fn expired_at(&self) -> Option<Timestamp> {
        self.expired_at
    }
    /// The decision, if made.
    pub fn decision(&self) -> Option<&DecisionRecord> {
        self.decision.as_ref()
    }
    /// The origin's refusal, if it refused.
    pub fn refusal(&self) -> Option<&RefusalRecord> {
        self.refusal.as_ref()
    }

    /// Requester: records the roster's shortest deadline in force when this node
    /// sent the request or the information opening the current round (call after
    /// [`Self::request`] and [`Self::supply_info`]; see [`Self::receive_refusal`]).
    pub fn set_round_min_deadline(&mut self, min_deadline: Duration) {
        self.round_min_deadline_secs = Some(min_deadline.as_secs());
    }

    /// The roster minimum the current round was opened under, if recorded.
    pub fn round_min_deadline(&self) -> Option<Duration> {
        self.round_min_deadline_secs.map(Duration::from_secs)
    }

    /// The minimum a `deadline_too_short` refusal is judged against: the larger of
    /// the one in force now (`now_min`) and the one the round was opened under.
    fn refusal_min_deadline(&self, now_min: Duration) -> Duration {
        self.round_min_deadline()
            .map_or(now_min, |m| m.max(now_min))
    }
}

/// The reason code a refusal sent back for `e` carries (the origin refusing a request
/// or a round with one of [`Consultation::receive_request`]'s or
/// [`Consultation::receive_info`]'s errors).
pub fn refusal_reason(e: &ConsultError) -> RefusalReason {
    match e {
        ConsultError::BadDeadline { why, .. } if *why == TOO_FAR => RefusalReason::DeadlineTooLong,
        ConsultError::BadDeadline { .. } => RefusalReason::DeadlineTooShort,
        ConsultError::StaleRound { .. }
        | ConsultError::TooManyRounds { .. }
        | ConsultError::IllegalMove { .. } => RefusalReason::WrongRound,
        _ => RefusalReason::Invalid,
    }
}

/// One line of `wlnode consult list --json` (and the head of `show`): what an
/// officer sees of a consultation, with the silence rule and the answer it deems.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsultationView {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The entry consulted on.
    pub entry_id: EntryId,
    /// The entry's origin, which was asked.
    pub origin: AgencyCode,
    /// The agency that asked.
    pub requester: AgencyCode,
    /// This node's side.
    pub role: Role,
    /// The requester's file number.
    pub reference: String,
    /// Where it stands.
    pub state: State,
    /// The current round (1 for the request).
    pub round: u32,
    /// The current round's deadline.
    pub deadline: Timestamp,
    /// What silence until the deadline means here.
    pub silence: SilenceMeans,
    /// The origin's answer to the current round, or for an expired consultation the
    /// one the silence rule gives it ([`Consultation::deemed_answer`]).
    pub answer: Option<Answer>,
    /// Whether `answer` comes from the silence rule rather than the origin.
    pub answer_by_silence: bool,
    /// The decision, if made.
    pub decision: Option<Decision>,
    /// What a grant went against (`none` until decided).
    pub despite: Despite,
    /// Whether the origin's answer to the current round arrived after the deadline
    /// (signed in time; see [`Consultation::receive_answer`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub answer_late: bool,
    /// Why the origin refused, for [`State::RefusedByOrigin`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalReason>,
}

impl Consultation {
    /// What an officer sees of it.
    pub fn view(&self) -> ConsultationView {
        ConsultationView {
            consultation_id: self.id,
            entry_id: self.entry_id,
            origin: self.origin.clone(),
            requester: self.requester.clone(),
            role: self.role,
            reference: self.reference.clone(),
            state: self.state(),
            round: self.round,
            deadline: self.deadline,
            silence: self.silence,
            answer: self.deemed_answer(),
            answer_by_silence: self.expired_at.is_some(),
            decision: self.decision.as_ref().map(|d| d.decision),
            despite: self.decision.as_ref().map_or(Despite::None, |d| d.despite),
            answer_late: self
                .answers
                .last()
                .is_some_and(|a| a.round == self.round && a.late()),
            refusal: self.refusal.as_ref().map(|r| r.reason),
        }
    }
}

/// [`Consultation::tick`] over many: expires every open consultation past its
/// deadline and returns their ids.
pub fn tick_all<'a>(
    consultations: impl IntoIterator<Item = &'a mut Consultation>,
    now: Timestamp,
) -> Vec<ConsultationId> {
    consultations
        .into_iter()
        .filter_map(|c| c.tick(now).then_some(c.id))
        .collect()
}

/// The bounds a `--deadline` may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineBounds {
    /// Shortest.
    pub min: Duration,
    /// Longest (never above [`MAX_DEADLINE`]).
    pub max: Duration,
}

impl DeadlineBounds {
    /// One day to 365 days: a shorter deadline leaves the origin no working day to
    /// answer, a longer one is no deadline. (Art. 16 itself names 30 working days;
    /// `30d` is the usual choice.) A test federation may pass a smaller `min`.
    pub const DEFAULT: Self = Self {
        min: Duration::from_secs(86_400),
        max: MAX_DEADLINE,
    };
}

/// Why a `--deadline` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    /// Not `<number><unit>`.
    #[error("deadline {0:?}: expected a number and a unit s, m, h, d or w, e.g. 30d")]
    Syntax(String),
    /// Out of bounds.
    #[error("deadline {given:?} is outside {min_s} s to {max_s} s")]
    OutOfBounds {
        /// The input.
        given: String,
        /// The shortest allowed, in seconds.
        min_s: u64,
        /// The longest allowed, in seconds.
        max_s: u64,
    },
}

/// Parses a deadline such as `30d` (also `s`, `m`, `h`, `w`) within `bounds` (the CLI
/// passes [`DeadlineBounds::DEFAULT`]); the caller adds it to `now`.
pub fn parse_deadline(s: &str, bounds: DeadlineBounds) -> Result<Duration, DeadlineError> {
    let syntax = || DeadlineError::Syntax(s.chars().take(32).collect());
    let t = s.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(syntax)?;
    let (num, unit) = t.split_at(unit_at);
    if num.is_empty() || num.len() > 9 {
        return Err(syntax());
    }
    let n: u64 = num.parse().map_err(|_| syntax())?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(syntax()),
    };
    let d = Duration::from_secs(n.saturating_mul(secs));
    let max = bounds.max.min(MAX_DEADLINE);
    if d < bounds.min || d > max {
        return Err(DeadlineError::OutOfBounds {
            given: s.chars().take(32).collect(),
            min_s: bounds.min.as_secs(),
            max_s: max.as_secs(),
        });
    }
    Ok(d)
}

/// `now + d` as a deadline.
pub fn deadline_after(now: Timestamp, d: Duration) -> Timestamp {
    Timestamp(now.as_millis().saturating_add(ms(d)))
}
