//! The consultation trail and its auditor.
//!
//! A [`TrailEvent`] is what a node's audit log keeps of a consultation step: the
//! consultation id, what happened, when, from whom to whom — metadata only, never a
//! reason, a detail or a file number. [`audit_trail`] replays a sequence of them (one
//! node's log, or several merged in log order) and reports every [`Violation`]:
//! - a decision recorded while the consultation was open before its deadline (no
//!   answer yet), or a grant while the origin's request for information was
//!   outstanding ([`ViolationKind::PrematureDecision`]);
//! - an answer at or after the deadline ([`ViolationKind::AnswerAfterDeadline`]),
//!   unless it is an `answered_late` step whose signed time was before the deadline
//!   (within [`crate::TIMING_SKEW`]), not before the round opened, and which arrived
//!   within [`crate::LATE_ANSWER_WINDOW`] of it. Such a late answer after a decision
//!   taken on silence is recorded beside it: the decision is not reported as taken
//!   before the answer;
//! - a grant despite an objection or an expired denial followed by no
//!   `notice_sent` at all ([`ViolationKind::GrantWithoutNotice`]). The auditor
//!   works out "despite" from the trail itself, not from what the decision claims;
//! - a step by the wrong party ([`ViolationKind::WrongParty`]);
//! - anything else out of order: time going backwards within a consultation, a step
//!   before the request, a second request, answer or decision, information nobody
//!   asked for, an expiry before the deadline, a notice before the decision, an
//!   answer after the origin refused, a refusal taken after the deadline or whose
//!   reason the trail contradicts (`not_our_entry`; `deadline_too_long` for a
//!   deadline within 365 days) ([`ViolationKind::OutOfOrder`]). A decision after
//!   the origin's refusal is premature before the deadline; after it, a grant is
//!   despite an expired denial and needs a notice.
//!
//! A consultation is its requester's and its id's (review s33/s34-consult L1): two
//! members may use one id with the same origin, and each is its own consultation
//! here as at the origin ([`TrailEvent::requester`]).
//!
//! An honest trail, as [`crate::Consultation`]'s transitions produce it, passes.
//! [`summarize`] gives the timings the HTML report shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wlnode_crypto::{AgencyCode, Timestamp};

use crate::consultation::{LATE_ANSWER_WINDOW, State, TIMING_SKEW};
use crate::payload::{Answer, ConsultationId, Decision, Despite, RefusalReason};

/// What happened, with the metadata the auditor needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TrailKind {
    /// The requester sent the request (`from` requester, `to` origin).
    Requested {
        /// The first round's deadline.
        deadline: Timestamp,
        /// At the origin: the requester's signed receipt of its request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<crate::evidence::SignedReceipt>,
    },
    /// A message of the consultation was delivered (receipt came back).
    Delivered,
    /// The origin answered (`from` origin).
    Answered {
        /// The answer.
        answer: Answer,
        /// At the requester: the origin's signed receipt of its answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<crate::evidence::SignedReceipt>,
    },
    /// The requester supplied further information, opening a round (`from`
    /// requester).
    InfoSupplied {
        /// The new round's deadline.
        deadline: Timestamp,
    },
    /// At the requester: the origin's answer arrived after the deadline, signed
    /// before it (within the clock skew); `at` is its arrival, `from` the origin.
    /// It counts if the requester had not decided; after a decision on silence it is
    /// recorded beside the decision, which stands (review of issue 21, finding 13).
    AnsweredLate {
        /// The answer.
        answer: Answer,
        /// The creation time the origin signed into the message.
        signed_at: Timestamp,
        /// When the message arrived at the requester, if before `at` (it was applied
        /// later: review s31-consult L1); the late window is judged by it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        arrived_at: Option<Timestamp>,
        /// The origin's signed receipt of its answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<crate::evidence::SignedReceipt>,
    },
    /// At the requester: the origin refused the request or the current round with
    /// a signed refusal (`from` origin), before the deadline: no answer will come;
    /// after the deadline the requester may decide as on silence.
    RefusedByOrigin {
        /// Why.
        reason: RefusalReason,
        /// The origin's signed receipt of its refusal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        evidence: Option<crate::evidence::SignedReceipt>,
    },
    /// The deadline passed unanswered.
    Expired,
    /// The requester decided (`from` requester).
    Decided {
        /// The decision.
        decision: Decision,
        /// What the requester said the grant went against.
        despite: Despite,
    },
    /// The decision notice went to one member (`from` requester, `to` the member).
    NoticeSent,
    /// At the origin: a decision arrived before the deadline by this node's clock,
    /// within the clock skew, and is held until the deadline passes (`at` is its
    /// real arrival; `from` requester). Review s30-consult H1: the early arrival is
    /// in the log, not only in tracing.
    DecisionHeld,
    /// At the origin: a held decision refused when its deadline passed, because an
    /// answer or information was recorded after it arrived (`at` now, `from`
    /// requester): it was taken before the state it would be applied to.
    HeldDecisionRefused,
}

impl TrailKind {
    /// The signed receipt the step keeps, if any.
    pub fn evidence(&self) -> Option<&crate::evidence::SignedReceipt> {
        match self {
            Self::Requested { evidence, .. }
            | Self::Answered { evidence, .. }
            | Self::AnsweredLate { evidence, .. }
            | Self::RefusedByOrigin { evidence, .. } => evidence.as_ref(),
            _ => None,
        }
    }

    /// The name used in reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Requested { .. } => "requested",
            Self::Delivered => "delivered",
            Self::Answered { .. } => "answered",
            Self::AnsweredLate { .. } => "answered_late",
            Self::RefusedByOrigin { .. } => "refused_by_origin",
            Self::InfoSupplied { .. } => "info_supplied",
            Self::Expired => "expired",
            Self::Decided { .. } => "decided",
            Self::NoticeSent => "notice_sent",
            Self::DecisionHeld => "decision_held",
            Self::HeldDecisionRefused => "held_decision_refused",
        }
    }
}

/// One step of a consultation, as an audit log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrailEvent {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// What happened.
    pub kind: TrailKind,
    /// When (the logging node's clock).
    pub at: Timestamp,
    /// The agency that acted.
    pub from: AgencyCode,
    /// The agency it addressed.
    pub to: AgencyCode,
}

impl TrailEvent {
    /// The consultation's requester, as the step names it: `from` for the
    /// requester's steps, `to` for the origin's (answers, refusals) and for
    /// `expired`, which either side logs and every node writes from the origin to
    /// the requester (`runtime/src/consultations.rs`; review s35-key M2: the
    /// auditor filed it under `from`, the replay under `to`). `None` for
    /// `delivered`, which the node that sent the delivered message logs (`from` that
    /// node: either party, or the requester for a notice): placed on the
    /// consultation between its two parties by `Replay::key_of` (the auditor's
    /// rounds leave it out: no rule of theirs reads it).
    pub fn requester(&self) -> Option<&AgencyCode> {
        match self.kind {
            TrailKind::Requested { .. }
            | TrailKind::InfoSupplied { .. }
            | TrailKind::Decided { .. }
            | TrailKind::NoticeSent
            | TrailKind::DecisionHeld
            | TrailKind::HeldDecisionRefused => Some(&self.from),
            TrailKind::Answered { .. }
            | TrailKind::AnsweredLate { .. }
            | TrailKind::RefusedByOrigin { .. }
            | TrailKind::Expired => Some(&self.to),
            TrailKind::Delivered => None,
        }
    }
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ViolationKind {
    /// A decision before both the answer and the deadline, or a grant while
    /// information was outstanding.
    PrematureDecision {
        /// The deadline then in force.
        deadline: Timestamp,
    },
    /// An answer at or after the deadline.
    AnswerAfterDeadline {
        /// The deadline.
        deadline: Timestamp,
    },
    /// A grant despite an objection or an expired denial that notified nobody.
    GrantWithoutNotice {
        /// What it went against (worked out from the trail).
        despite: Despite,
    },
    /// A step by an agency that is not the party for it.
    WrongParty {
        /// The party expected.
        expected: AgencyCode,
        /// The agency named.
        got: AgencyCode,
    },
    /// A step out of order.
    OutOfOrder {
        /// What is out of order.
        reason: &'static str,
    },
}

/// One finding of [`audit_trail`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// Its requester (the consultation is the requester's and the id's).
    pub requester: AgencyCode,
    /// Position of the offending event in the trail (for a missing notice: the
    /// decision).
    pub index: usize,
    /// The offending event's time.
    pub at: Timestamp,
    /// What is wrong.
    pub kind: ViolationKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    Answered(Answer),
    Expired,
    Decided,
    Refused,
}

#[derive(Debug)]
struct Track {
    requester: AgencyCode,
    origin: AgencyCode,
    requested_at: Timestamp,
    /// When the current round was opened (the request, or the information).
    opened_at: Timestamp,
    /// Whether the decision was taken on an unanswered, expired round.
    decided_on_silence: bool,
    deadline: Timestamp,
    last_at: Timestamp,
    phase: Phase,
    first_answer_at: Option<Timestamp>,
    decided: Option<(usize, Timestamp, Decision)>,
    /// What a recorded grant went against, per the trail.
    despite: Despite,
    notices: u32,
}

/// A consultation: its id and requester.
type TrackKey = (ConsultationId, AgencyCode);

struct Replay {
    tracks: BTreeMap<TrackKey, Track>,
    /// The requester of the first consultation under each (id, origin), to place a
    /// step by a third party (see `key_of`): looked up directly, so no number of
    /// other requesters under the id can push a consultation out of reach (review
    /// s35-key L7: the first 8 were looked through, and a keeper could pad the id
    /// with 8 requests of its own to turn a third party's step from a wrong party
    /// into a step before the request).
    first_by_origin: std::collections::HashMap<(ConsultationId, AgencyCode), AgencyCode>,
    violations: Vec<Violation>,
}

impl Replay {
    /// The consultation `e` belongs to: the one of the requester it names
    /// ([`TrailEvent::requester`]) when there is one. Otherwise (a step that names
    /// no role, or a step by the wrong party, e.g. an answer from the requester)
    /// the consultation `to` requested of `from` if there is one, else the one
    /// `from` requested of `to`, so that a wrong party is reported as such; else
    /// (reported as a step before the request) the requester it names, or `from`
    /// for `delivered` (its own request, or a notice of its decision).
    fn key_of(&self, e: &TrailEvent) -> TrackKey {
        let id = e.consultation_id;
        let named = e.requester();
        // A request opens its requester's consultation, whatever else is held.
        if let Some(r) = named
            && (matches!(e.kind, TrailKind::Requested { .. })
                || self.tracks.contains_key(&(id, r.clone())))
        {
            return (id, r.clone());
        }
        let of = |r: &AgencyCode, o: &AgencyCode| {
            self.tracks
                .get(&(id, r.clone()))
                .is_some_and(|t| &t.origin == o)
        };
        // A third party's step on a consultation of this id between the other
        // party and the origin (a decision by a member that is no party): reported
        // as a wrong party, as before consultations were keyed by requester.
        // The consultation whose origin the step is addressed to comes first (a
        // requester's step by a third party, sent to the origin), then one whose
        // origin sent it: a request the keeper invents under the id of the third
        // party as origin cannot take the step over (review s36-qa L1).
        let third = || {
            self.first_by_origin
                .get(&(id, e.to.clone()))
                .or_else(|| self.first_by_origin.get(&(id, e.from.clone())))
        };
        let requester = if of(&e.to, &e.from) {
            &e.to
        } else if of(&e.from, &e.to) {
            &e.from
        } else if let Some(r) = third() {
            r
        } else {
            named.unwrap_or(&e.from)
        };
        (id, requester.clone())
    }

    fn flag(&mut self, e: &TrailEvent, index: usize, kind: ViolationKind) {
        let (_, requester) = self.key_of(e);
        self.violations.push(Violation {
            consultation_id: e.consultation_id,
            requester,
            index,
            at: e.at,
            kind,
        });
    }

    fn out_of_order(&mut self, e: &TrailEvent, index: usize, reason: &'static str) {
        self.flag(e, index, ViolationKind::OutOfOrder { reason });
    }

    /// Whether `e` is by the `expected` party; if not, it is flagged `WrongParty`,
    /// and the caller lets it change nothing of the consultation (found by the
    /// property test at s38: the requester's own "answer" moved the consultation to
    /// answered, so its decision before the origin's answer and the deadline went
    /// unreported; a third party's notice likewise counted as the requester's).
    fn party(&mut self, e: &TrailEvent, index: usize, expected: &AgencyCode) -> bool {
        if &e.from == expected {
            return true;
        }
        self.flag(
            e,
            index,
            ViolationKind::WrongParty {
                expected: expected.clone(),
                got: e.from.clone(),
            },
        );
        false
    }

    fn step(&mut self, index: usize, e: &TrailEvent) {
        let key = self.key_of(e);
        if let TrailKind::Requested { deadline, .. } = e.kind {
            if self.tracks.contains_key(&key) {
                self.out_of_order(e, index, "a second request");
                return;
            }
            if deadline <= e.at {
                self.out_of_order(e, index, "a deadline not after the request");
            }
            self.first_by_origin
                .entry((key.0, e.to.clone()))
                .or_insert_with(|| key.1.clone());
            self.tracks.insert(
                key,
                Track {
                    requester: e.from.clone(),
                    origin: e.to.clone(),
                    requested_at: e.at,
                    opened_at: e.at,
                    decided_on_silence: false,
                    deadline,
                    last_at: e.at,
                    phase: Phase::Open,
                    first_answer_at: None,
                    decided: None,
                    despite: Despite::None,
                    notices: 0,
                },
            );
            return;
        }
        let Some(t) = self.tracks.get(&key) else {
            self.out_of_order(e, index, "a step before the request");
            return;
        };
        let (requester, origin, deadline, phase) =
            (t.requester.clone(), t.origin.clone(), t.deadline, t.phase);
        let (opened_at, decided_on_silence) = (t.opened_at, t.decided_on_silence);
        if e.at < t.last_at {
            self.out_of_order(e, index, "time goes backwards");
        }
        // A party's step addressed to someone who is not the other party (an
        // answer to a third agency placed here, where the origin answers: found by
        // the property test once consultations were keyed by requester) changes
        // nothing of this consultation: otherwise it hid a decision before its
        // answer and deadline.
        let addressed = matches!(
            e.kind,
            TrailKind::Answered { .. }
                | TrailKind::AnsweredLate { .. }
                | TrailKind::RefusedByOrigin { .. }
                | TrailKind::InfoSupplied { .. }
                | TrailKind::Decided { .. }
        );
        if addressed
            && ((e.from == origin && e.to != requester) || (e.from == requester && e.to != origin))
        {
            self.out_of_order(e, index, "a step addressed to another party");
            return;
        }
        let mut next = phase;
        match &e.kind {
            TrailKind::Requested { .. } | TrailKind::Delivered => {}
            // Neither changes the consultation: the decision is recorded (as
            // `decided`, after the deadline) only if it is applied.
            TrailKind::DecisionHeld | TrailKind::HeldDecisionRefused => {
                if !self.party(e, index, &requester) {
                    return;
                }
            }
            TrailKind::Answered { answer, .. } => {
                if !self.party(e, index, &origin) {
                    return;
                }
                match phase {
                    Phase::Open if e.at >= deadline => {
                        self.flag(e, index, ViolationKind::AnswerAfterDeadline { deadline });
                        next = Phase::Expired;
                    }
                    Phase::Open => next = Phase::Answered(*answer),
                    Phase::Expired => {
                        self.flag(e, index, ViolationKind::AnswerAfterDeadline { deadline });
                    }
                    Phase::Answered(_) => self.out_of_order(e, index, "a second answer"),
                    Phase::Decided => self.out_of_order(e, index, "an answer after the decision"),
                    Phase::Refused => self.out_of_order(e, index, "an answer after the refusal"),
                }
            }
            TrailKind::AnsweredLate {
                answer,
                signed_at,
                arrived_at,
                ..
            } => {
                if !self.party(e, index, &origin) {
                    return;
                }
                // Signed before the deadline (within the skew), not before the round
                // was opened, and arrived within the late window: as
                // `Consultation::receive_answer` takes it.
                let skew = ms(TIMING_SKEW);
                // Arrived no later than it was applied.
                let arrived = arrived_at.unwrap_or(e.at).min(e.at);
                let timely = signed_at.as_millis() < deadline.as_millis().saturating_add(skew)
                    && signed_at.as_millis() >= opened_at.as_millis().saturating_sub(skew)
                    && arrived.as_millis()
                        <= deadline
                            .as_millis()
                            .saturating_add(ms(LATE_ANSWER_WINDOW))
                            .saturating_add(skew);
                if !timely {
                    self.flag(e, index, ViolationKind::AnswerAfterDeadline { deadline });
                }
                // The machine records a late answer only once the round expired, never
                // before the deadline (review s31-consult M2).
                if e.at < deadline {
                    self.out_of_order(e, index, "a late answer recorded before the deadline");
                }
                match phase {
                    Phase::Open | Phase::Expired => next = Phase::Answered(*answer),
                    // Recorded beside a decision taken on silence, which stands: the
                    // decision came after the deadline, not before the answer.
                    Phase::Decided if decided_on_silence => {
                        if let Some(t) = self.tracks.get_mut(&key) {
                            t.decided_on_silence = false;
                        }
                    }
                    Phase::Answered(_) => self.out_of_order(e, index, "a second answer"),
                    Phase::Decided => self.out_of_order(e, index, "an answer after the decision"),
                    Phase::Refused => self.out_of_order(e, index, "an answer after the refusal"),
                }
            }
            TrailKind::RefusedByOrigin { reason, .. } => {
                if !self.party(e, index, &origin) {
                    return;
                }
                // Taken only while open, before the deadline, with a reason that does
                // not contradict the trail (review s31-consult M1), as
                // `Consultation::receive_refusal` takes it.
                match phase {
                    Phase::Open if e.at < deadline => next = Phase::Refused,
                    Phase::Open | Phase::Expired => {
                        self.out_of_order(e, index, "a refusal taken after the deadline");
                    }
                    _ => self.out_of_order(e, index, "a refusal of a consultation not open"),
                }
                let implausible = match reason {
                    RefusalReason::NotOurEntry => true,
                    RefusalReason::DeadlineTooLong => {
                        deadline.as_millis()
                            <= opened_at
                                .as_millis()
                                .saturating_add(ms(crate::consultation::MAX_DEADLINE))
                    }
                    _ => false,
                };
                if implausible {
                    self.out_of_order(e, index, "a refusal whose reason the trail contradicts");
                }
            }
            TrailKind::InfoSupplied { deadline: new } => {
                if !self.party(e, index, &requester) {
                    return;
                }
                if phase == Phase::Answered(Answer::InfoRequested) {
                    next = Phase::Open;
                    if let Some(t) = self.tracks.get_mut(&key) {
                        t.deadline = *new;
                        t.opened_at = e.at;
                    }
                    if *new <= e.at {
                        self.out_of_order(e, index, "a deadline not after the information");
                    }
                } else {
                    self.out_of_order(e, index, "information nobody asked for");
                }
            }
            TrailKind::Expired => match phase {
                Phase::Open => {
                    if e.at < deadline {
                        self.out_of_order(e, index, "an expiry before the deadline");
                    }
                    next = Phase::Expired;
                }
                _ => self.out_of_order(e, index, "an expiry of a consultation not open"),
            },
            TrailKind::Decided { decision, .. } => {
                if !self.party(e, index, &requester) {
                    return;
                }
                let granted = *decision == Decision::Granted;
                let mut despite = Despite::None;
                match phase {
                    Phase::Open if e.at < deadline => {
                        self.flag(e, index, ViolationKind::PrematureDecision { deadline });
                    }
                    // An expiry logged before the deadline does not make an early
                    // decision any less premature.
                    Phase::Expired if e.at < deadline => {
                        self.flag(e, index, ViolationKind::PrematureDecision { deadline });
                    }
                    // Past the deadline unanswered: expired, whether or not logged.
                    Phase::Open | Phase::Expired => {
                        if granted {
                            despite = Despite::ExpiredDenial;
                        }
                    }
                    Phase::Answered(Answer::InfoRequested) => {
                        if granted {
                            self.flag(e, index, ViolationKind::PrematureDecision { deadline });
                        }
                    }
                    Phase::Answered(Answer::Objection) => {
                        if granted {
                            despite = Despite::Objection;
                        }
                    }
                    Phase::Answered(Answer::NoObjection) => {}
                    Phase::Decided => self.out_of_order(e, index, "a second decision"),
                    // The origin refused: no answer came. Before the deadline a
                    // decision is premature; after it, as on silence.
                    Phase::Refused if e.at < deadline => {
                        self.flag(e, index, ViolationKind::PrematureDecision { deadline });
                    }
                    Phase::Refused => {
                        if granted {
                            despite = Despite::ExpiredDenial;
                        }
                    }
                }
                if phase != Phase::Decided {
                    next = Phase::Decided;
                    let on_silence =
                        matches!(phase, Phase::Open | Phase::Expired) && e.at >= deadline;
                    if let Some(t) = self.tracks.get_mut(&key) {
                        t.decided = Some((index, e.at, *decision));
                        t.despite = despite;
                        t.decided_on_silence = on_silence;
                    }
                }
            }
            TrailKind::NoticeSent => {
                if !self.party(e, index, &requester) {
                    return;
                }
                if phase == Phase::Decided {
                    if let Some(t) = self.tracks.get_mut(&key) {
                        t.notices = t.notices.saturating_add(1);
                    }
                } else {
                    self.out_of_order(e, index, "a notice before the decision");
                }
            }
        }
        if let Some(t) = self.tracks.get_mut(&key) {
            t.last_at = t.last_at.max(e.at);
            if let (Phase::Answered(_), None) = (next, t.first_answer_at) {
                t.first_answer_at = Some(e.at);
            }
            t.phase = next;
        }
    }

    fn run(events: &[TrailEvent]) -> Self {
        let mut r = Self {
            tracks: BTreeMap::new(),
            first_by_origin: std::collections::HashMap::new(),
            violations: Vec::new(),
        };
        for (i, e) in events.iter().enumerate() {
            r.step(i, e);
        }
        let missing: Vec<Violation> = r
            .tracks
            .iter()
            .filter_map(|((id, requester), t)| match t.decided {
                Some((index, at, Decision::Granted))
                    if t.despite != Despite::None && t.notices == 0 =>
                {
                    Some(Violation {
                        consultation_id: *id,
                        requester: requester.clone(),
                        index,
                        at,
                        kind: ViolationKind::GrantWithoutNotice { despite: t.despite },
                    })
                }
                _ => None,
            })
            .collect();
        r.violations.extend(missing);
        r.violations.sort_by_key(|v| v.index);
        r
    }
}

/// Every violation in `events` (in trail order), empty for an honest trail.
pub fn audit_trail(events: &[TrailEvent]) -> Vec<Violation> {
    Replay::run(events).violations
}

/// One consultation's timings, for the report.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsultationTiming {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// Its requester.
    pub requester: AgencyCode,
    /// Where it stands at the end of the trail.
    pub state: State,
    /// From the request to the first answer, in milliseconds.
    pub time_to_answer_ms: Option<u64>,
    /// From the request to the decision, in milliseconds.
    pub time_to_decision_ms: Option<u64>,
    /// Whether it was granted despite an objection or an expired denial.
    pub granted_despite: bool,
    /// How many decision notices went out.
    pub notices: u32,
}

/// The consultations section of the HTML report: counts and timings, no content.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrailSummary {
    /// Consultations in the trail.
    pub consultations: usize,
    /// Still open.
    pub open: usize,
    /// Answered, not yet decided.
    pub answered: usize,
    /// Expired, not yet decided.
    pub expired: usize,
    /// Decided.
    pub decided: usize,
    /// Refused by the origin (a signed refusal of the request or a round).
    pub refused_by_origin: usize,
    /// Granted despite an objection or an expired denial.
    pub granted_despite: usize,
    /// Median time to the first answer, in milliseconds.
    pub median_time_to_answer_ms: Option<u64>,
    /// Median time to the decision, in milliseconds.
    pub median_time_to_decision_ms: Option<u64>,
    /// Violations [`audit_trail`] finds.
    pub violations: usize,
    /// Per consultation, in id then requester order.
    pub timings: Vec<ConsultationTiming>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Counts and timings of every consultation in `events`.
pub fn summarize(events: &[TrailEvent]) -> TrailSummary {
    let r = Replay::run(events);
    let timings: Vec<ConsultationTiming> = r
        .tracks
        .iter()
        .map(|((id, requester), t)| {
            let since = |at: Timestamp| at.as_millis().saturating_sub(t.requested_at.as_millis());
            ConsultationTiming {
                consultation_id: *id,
                requester: requester.clone(),
                state: match t.phase {
                    Phase::Open => State::Open,
                    Phase::Answered(_) => State::Answered,
                    Phase::Expired => State::Expired,
                    Phase::Decided => State::Decided,
                    Phase::Refused => State::RefusedByOrigin,
                },
                time_to_answer_ms: t.first_answer_at.map(since),
                time_to_decision_ms: t.decided.map(|(_, at, _)| since(at)),
                granted_despite: matches!(t.decided, Some((_, _, Decision::Granted)))
                    && t.despite != Despite::None,
                notices: t.notices,
            }
        })
        .collect();
    let count = |s: State| timings.iter().filter(|t| t.state == s).count();
    TrailSummary {
        consultations: timings.len(),
        open: count(State::Open),
        answered: count(State::Answered),
        expired: count(State::Expired),
        decided: count(State::Decided),
        refused_by_origin: count(State::RefusedByOrigin),
        granted_despite: timings.iter().filter(|t| t.granted_despite).count(),
        median_time_to_answer_ms: median(
            timings.iter().filter_map(|t| t.time_to_answer_ms).collect(),
        ),
        median_time_to_decision_ms: median(
            timings
                .iter()
                .filter_map(|t| t.time_to_decision_ms)
                .collect(),
        ),
        violations: r.violations.len(),
        timings,
    }
}
