//! Art. 16 consultations (EU Reg. 2021/821), hit reports and flags, sans IO: the
//! bodies of sealed agency-to-agency messages, the consultation state machine that
//! both sides run, and the auditor of a consultation trail. No tokio, no network, no
//! store: the node's runtime signs, seals, sends, stores and audits; this crate
//! decides.
//!
//! # Payloads ([`payload`])
//! [`Payload`] is the body a sealed message carries: [`ConsultRequest`],
//! [`ConsultAnswer`], [`ConsultInfo`], [`ConsultDecision`] (also the decision notice),
//! [`ConsultRefusal`] (the origin's signed refusal of a request or round, with a
//! [`RefusalReason`] code and the id of the message it refuses), [`HitReport`],
//! [`Flag`]. [`Payload::kind`] is the routing type string for the
//! message's clear header. [`encode`] and [`decode`] are the one canonical JSON
//! encoding, at most [`MAX_PAYLOAD_BYTES`], validated both ways; errors
//! ([`PayloadError`]) name the field.
//!
//! # A consultation ([`Consultation`])
//! ```text
//!             answer (objection | no_objection)
//!   open ───────────────────────────────────────▶ answered ──decide──▶ decided
//!    │ ▲        answer (info_requested)              │                (granted |
//!    │ └──────────── supply_info (next round) ◀──────┘                 refused)
//!    │ deadline passes unanswered (tick)                                  ▲
//!    └──────────────────────────────────▶ expired ──────decide────────────┘
//!    open ──refusal (signed, by the origin, before the deadline)──▶ refused_by_origin
//!    refused_by_origin ──decide, once the deadline has passed──▶ decided
//!    expired ──answer signed before the deadline, arriving late──▶ answered
//! ```
//! - **Requester** (the agency about to decide on a licence):
//!   [`Consultation::request`] → send the returned [`Action`]s; on the origin's
//!   answer [`Consultation::receive_answer`]; after `info_requested`
//!   [`Consultation::supply_info`] (opens round *n*+1 with a new deadline; the
//!   origin answers again); finally [`Consultation::decide`], with the list of members
//!   the entry's distribution admits.
//! - **Origin** (whose entry denied a like transaction):
//!   [`Consultation::receive_request`], then [`Consultation::answer`]; later
//!   [`Consultation::receive_info`] and [`Consultation::receive_decision`].
//! - **Both**: [`Consultation::tick`] (or [`tick_all`]) at any time expires an open
//!   consultation whose deadline has passed; every transition ticks first, so an
//!   answer at or after the deadline is [`ConsultError::AnswerAfterDeadline`] and a
//!   decision on an open consultation past its deadline decides the expired one.
//!
//! Rules (each a [`ConsultError`] when broken; the consultation is then unchanged,
//! except that an answer refused as [`ConsultError::AnswerAfterDeadline`] leaves it
//! `expired`, which the caller persists):
//! - Only the origin answers, only the requester supplies information and decides,
//!   each round is answered once, and a consultation is decided once.
//! - No decision while open before the deadline ([`ConsultError::PrematureDecision`]).
//! - `info_requested` suspends the deadline (the origin is not silent): the requester
//!   supplies information (at most [`MAX_ROUNDS`] rounds in all) or refuses; a grant
//!   must wait ([`ConsultError::InfoOutstanding`]).
//! - What silence means ([`SilenceMeans`], the roster's federation setting) is copied
//!   onto the consultation when it opens and shown ([`Consultation::deemed_answer`]).
//! - A grant against an objection, or **any** grant on an expired consultation
//!   (silence did not lift the denial, whatever the silence rule says it meant), is
//!   "granted despite denial": [`Consultation::decide`] returns an
//!   [`Action::SendNotice`] for each of [`notice_recipients`] — every member the
//!   caller says the entry's distribution admits, and the origin, never the
//!   requester, never anyone else. Every other decision goes to the origin alone.
//! - Each side judges the deadline by its own clock when it records an answer. An
//!   answer that arrives at the requester after the deadline is judged by the time
//!   the origin signed into its message ([`Consultation::receive_answer`]: before the
//!   deadline within [`TIMING_SKEW`], not before the round opened, arriving within
//!   [`LATE_ANSWER_WINDOW`]): it turns an undecided expired consultation `answered`,
//!   or is recorded beside a decision already taken on silence, which stands
//!   (review of issue 21, finding 13). Any other late answer is refused and the
//!   auditor reports one recorded anyway.
//! - The origin's refusal of the request or the current round
//!   ([`Consultation::receive_refusal`]), taken only while the round is open, signed
//!   before the deadline and with a reason that does not contradict what the
//!   requester knows, makes the requester's consultation `refused_by_origin`. It is
//!   no veto: once the deadline has passed the requester decides as on silence (a
//!   grant is despite an expired denial, with notices). [`refusal_reason`] gives the
//!   code for the origin's own errors.
//! - The machine does not deduplicate: a message delivered twice is an
//!   [`ConsultError::IllegalMove`] the second time (the transport delivers once).
//! - The caller persists the [`Consultation`] (serde) after each transition, writes a
//!   [`TrailEvent`] for each step (`requested`, `answered` or `answered_late`,
//!   `refused_by_origin`, `info_supplied`,
//!   `expired` when [`Consultation::tick`] returns true, `decided`, and a
//!   `notice_sent` per [`Action::SendNotice`]), and shows
//!   [`Consultation::view`] in `consult list` and `show`.
//!
//! Deadlines: [`parse_deadline`] reads `30d`-style durations within
//! [`DeadlineBounds`] (1 to 365 days by default); no deadline is ever more than
//! [`MAX_DEADLINE`] ahead.
//!
//! # Evidence ([`evidence`])
//! The request, each answer and each refusal carry the sender's signed, content-free
//! [`StepReceipt`] (consultation, round, parties, answer or reason code, signed time,
//! a salted digest of the content). The receiver checks it and keeps the exact signed
//! bytes ([`SignedReceipt`]) in its trail step, so the auditor can tell which side
//! of a disagreement signed what.
//!
//! # The trail ([`trail`])
//! [`TrailEvent`]s are metadata only (id, kind, time, from, to). [`audit_trail`]
//! reports [`Violation`]s: a decision before the answer and the deadline, an answer
//! after the deadline, a grant despite a denial that notified nobody, events out of
//! order. [`summarize`] gives the timings for the HTML report, never content.

pub mod consultation;
pub mod evidence;
pub mod payload;
pub mod trail;

pub use consultation::{
    Action, AnswerRecord, ConsultError, Consultation, ConsultationView, DeadlineBounds,
    DeadlineError, DecisionRecord, InfoRecord, LATE_ANSWER_WINDOW, MAX_CLOCK_SKEW, MAX_DEADLINE,
    MAX_ROUNDS, NewRequest, RefusalRecord, Role, RosterTerms, SilenceMeans, State, TIMING_SKEW,
    deadline_after, notice_recipients, parse_deadline, refusal_reason, tick_all,
};
pub use evidence::{
    ReceiptError, ReceiptSeal, ReceiptStep, RefusedKind, SignedReceipt, StepReceipt,
};
pub use payload::{
    Answer, ConsultAnswer, ConsultDecision, ConsultInfo, ConsultRefusal, ConsultRequest,
    ConsultationId, Decision, Despite, Flag, FlagAction, HitContext, HitReport, InformationFile,
    Item, MAX_PAYLOAD_BYTES, Money, Payload, PayloadError, RefusalReason, TransactionDetails,
    decode, encode,
};
pub use trail::{
    ConsultationTiming, TrailEvent, TrailKind, TrailSummary, Violation, ViolationKind, audit_trail,
    summarize,
};
