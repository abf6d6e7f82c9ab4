//! The bodies that travel inside sealed agency-to-agency messages, and their one
//! encoding.
//!
//! A [`Payload`] is what the sender signs and seals: a consultation request, answer,
//! further information, decision (or decision notice), a hit report or a flag. Every
//! string and list is bounded and checked here, so a value that passed
//! [`Payload::validate`] (which both [`encode`] and [`decode`] run) is well formed and
//! small; a bad one gives a [`PayloadError`] naming the field.
//!
//! **Encoding: JSON, canonical.** `{"v":1,"payload":{"kind":KIND,"body":{...}}}`,
//! compact, fields in declaration order, no maps, absent optional fields omitted (the
//! form serde_json writes for these types). [`decode`] re-encodes and compares, so one
//! payload has exactly one byte string, which is what gets signed, and a replay
//! cache or a dedupe by digest sees every copy of it alike. JSON rather than prost
//! because: only `proto/` may define prost messages (ARCHITECTURE.md, invariants),
//! and these bodies are never read by relays (which see only the routing header), so
//! they gain nothing from a compact binary form; the entry JSON, the CLI's
//! `details.json` and the API speak JSON already, and the audit log's canonical
//! events use the same re-encode-and-compare rule. The size limit
//! ([`MAX_PAYLOAD_BYTES`]) is checked before parsing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wlnode_crypto::model::MessageId;
use wlnode_crypto::model::{Category, CountryCode, InvalidValue, MAX_LONG_TEXT, check_text};
use wlnode_crypto::{EntryId, RecordId, Timestamp};

/// Largest encoded payload, in bytes. Every payload that passes validation fits (the
/// bounds below are chosen so); [`decode`] refuses anything larger before parsing.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The payload format version this crate writes and reads.
pub const PAYLOAD_VERSION: u32 = 1;
/// Most items in one transaction.
pub const MAX_ITEMS: usize = 32;
/// Longest item description, in bytes.
pub const MAX_ITEM_DESCRIPTION: usize = 256;
/// Longest end-user or consignee text, in bytes.
pub const MAX_PARTY: usize = 512;
/// Longest free text of a transaction or hit report, in bytes.
pub const MAX_FREE_TEXT: usize = MAX_LONG_TEXT;
/// Longest reference (the requester's file number), in bytes.
pub const MAX_REFERENCE: usize = 128;
/// Longest reason of an answer, decision or flag, and text of further information, in
/// bytes.
pub const MAX_REASON: usize = 4096;
/// Longest amount, in characters (digits and at most one `.`).
pub const MAX_AMOUNT: usize = 24;
/// The latest time a payload may carry: 9999-12-31T23:59:59.999Z (RFC 3339 has four
/// year digits, and times are written as RFC 3339).
pub const MAX_TIME: Timestamp = Timestamp(253_402_300_799_999);

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Over [`MAX_PAYLOAD_BYTES`].
    #[error("payload is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON of the expected shape (the message says where).
    #[error("payload does not parse: {0}")]
    Malformed(String),
    /// A format version this node does not read.
    #[error("payload version {0} is not supported (this node reads version {PAYLOAD_VERSION})")]
    UnsupportedVersion(u32),
    /// Parses, but is not the one canonical encoding of its value.
    #[error("payload is not in canonical form")]
    NonCanonical,
    /// A field out of bounds or malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `details.items[3].description`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl PayloadError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<InvalidValue> for PayloadError {
    fn from(e: InvalidValue) -> Self {
        Self::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Checks a text field: non-empty, no control characters but newline and tab, at
/// most `max` bytes.
fn text(field: &str, s: &str, max: usize) -> Result<(), PayloadError> {
    check_text(s, max).map_err(|e| e.within(field).into())
}

fn opt_text(field: &str, s: Option<&String>, max: usize) -> Result<(), PayloadError> {
    s.map_or(Ok(()), |s| text(field, s, max))
}

fn time(field: &str, t: Timestamp) -> Result<(), PayloadError> {
    if t > MAX_TIME {
        return Err(PayloadError::invalid(
            field,
            format!("{} ms is after the year 9999", t.as_millis()),
        ));
    }
    Ok(())
}

/// 16 random bytes naming one consultation on both sides (lower-case hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConsultationId(pub [u8; 16]);

impl ConsultationId {
    /// A fresh random id.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b)?;
        Ok(Self(b))
    }

    /// Parses 32 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, PayloadError> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).map_err(|_| {
            PayloadError::invalid(
                "consultation_id",
                format!(
                    "{:?} is not 32 hex characters",
                    s.chars().take(40).collect::<String>()
                ),
            )
        })?;
        Ok(Self(out))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ConsultationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ConsultationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConsultationId({})", self.to_hex())
    }
}

impl FromStr for ConsultationId {
    type Err = PayloadError;
    fn from_str(s: &str) -> Result<Self, PayloadError> {
        Self::from_hex(s)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ConsultationId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        wlnode_crypto::openapi::string_schema("16 bytes in lower-case hex")
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ConsultationId {}

impl Serialize for ConsultationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ConsultationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            // Upper-case hex would decode but not re-encode to the same bytes.
            return Err(serde::de::Error::custom(
                "consultation_id must be lower-case hex",
            ));
        }
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// One item of an intended transaction.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// What it is (at most [`MAX_ITEM_DESCRIPTION`] bytes).
    pub description: String,
    /// Its control-list category, when listed (e.g. `3A001`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
}

/// A value and its currency. The amount is a decimal string (`"1250000.00"`), never a
/// JSON number, so that it has one exact form.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Digits, optionally `.` and one to four more digits; no sign, no exponent, no
    /// leading zero except `0` itself.
    pub amount: String,
    /// ISO 4217 code, three upper-case letters (`EUR`).
    pub currency: String,
}

impl Money {
    fn validate(&self, field: &str) -> Result<(), PayloadError> {
        let a = &self.amount;
        let (whole, frac) = match a.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (a.as_str(), None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = a.len() <= MAX_AMOUNT
            && digits(whole)
            && (whole == "0" || !whole.starts_with('0'))
            && frac.is_none_or(|f| digits(f) && f.len() <= 4);
        if !ok {
            return Err(PayloadError::invalid(
                format!("{field}.amount"),
                format!(
                    "{:?} is not a decimal amount such as \"1250000.00\" (digits, at most 4 after the point, at most {MAX_AMOUNT} characters)",
                    a.chars().take(32).collect::<String>()
                ),
            ));
        }
        let c = &self.currency;
        if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(PayloadError::invalid(
                format!("{field}.currency"),
                format!(
                    "{:?} is not an ISO 4217 code such as EUR",
                    c.chars().take(8).collect::<String>()
                ),
            ));
        }
        Ok(())
    }
}

/// The intended transaction a consultation is about (the CLI's `details.json`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionDetails {
    /// The goods: 1 to [`MAX_ITEMS`].
    pub items: Vec<Item>,
    /// The end user.
    pub end_user: String,
    /// The consignee.
    pub consignee: String,
    /// Country of destination, ISO 3166-1 alpha-2.
    pub destination_country: CountryCode,
    /// The value of the transaction.
    pub value: Money,
    /// Anything else the requester wants the origin to know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_text: Option<String>,
}

impl TransactionDetails {
    /// Reads `details.json` (at most [`MAX_PAYLOAD_BYTES`]) and validates it. Errors
    /// name the line and column (JSON syntax, unknown field) or the field (bounds).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge {
                size: bytes.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let d: Self =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        d.validate("details")?;
        Ok(d)
    }

    /// Checks every bound; `field` prefixes the paths in errors.
    pub fn validate(&self, field: &str) -> Result<(), PayloadError> {
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Err(PayloadError::invalid(
                format!("{field}.items"),
                format!("must list 1 to {MAX_ITEMS} items, got {}", self.items.len()),
            ));
        }
        for (i, item) in self.items.iter().enumerate() {
            text(
                &format!("{field}.items[{i}].description"),
                &item.description,
                MAX_ITEM_DESCRIPTION,
            )?;
        }
        text(&format!("{field}.end_user"), &self.end_user, MAX_PARTY)?;
        text(&format!("{field}.consignee"), &self.consignee, MAX_PARTY)?;
        self.value.validate(&format!("{field}.value"))?;
        opt_text(
            &format!("{field}.free_text"),
            self.free_text.as_ref(),
            MAX_FREE_TEXT,
        )
    }
}

/// Requester → origin: "we are about to decide on a transaction like the one your
/// entry denied; do you object?"
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultRequest {
    /// Names the consultation on both sides.
    pub consultation_id: ConsultationId,
    /// The entry (denial) consulted on.
    pub entry_id: EntryId,
    /// The record of the entry the requester holds.
    pub record_id: RecordId,
    /// That record's version.
    pub version: u32,
    /// The requester's own file number (at most [`MAX_REFERENCE`] bytes).
    pub reference: String,
    /// When silence starts to count.
    pub deadline: Timestamp,
    /// The intended transaction.
    pub details: TransactionDetails,
    /// The sender's signed, content-free receipt of this step and the salt of its
    /// digest ([`crate::evidence`], s33): the receiver logs the receipt as evidence.
    /// Absent from an older node (the step is then logged without evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::evidence::ReceiptSeal>,
}

/// What the origin says.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The origin objects to the grant.
    Objection,
    /// The origin does not object.
    NoObjection,
    /// The origin needs more information before it answers.
    InfoRequested,
}

impl Answer {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Objection => "objection",
            Self::NoObjection => "no_objection",
            Self::InfoRequested => "info_requested",
        }
    }

    /// Whether an answer of this kind must give a reason: every one but
    /// `no_objection`. The payload check and the API (which names the CLI's flag)
    /// ask this one rule (final read of s36: the API repeated it).
    pub fn needs_reason(self) -> bool {
        self != Self::NoObjection
    }
}

/// Origin → requester: the answer to one round of a consultation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultAnswer {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The round answered: 1 for the request, one more for each [`ConsultInfo`]. An
    /// answer to an earlier round is refused as stale.
    pub round: u32,
    /// The answer.
    pub answer: Answer,
    /// Why (required for `objection` and `info_requested`: what is needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the origin recorded the answer (its clock), signed with the message.
    /// The requester judges a late answer by it, not by when the message was sealed:
    /// a send retried after a crash or a full outbox is sealed later (review
    /// s31-consult M3). Absent from an older origin: the seal time counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    /// The sender's signed, content-free receipt of this step and the salt of its
    /// digest ([`crate::evidence`], s33): the receiver logs the receipt as evidence.
    /// Absent from an older node (the step is then logged without evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::evidence::ReceiptSeal>,
}

/// Requester → origin: the information asked for by an `info_requested` answer. It
/// opens the next round with a new deadline.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultInfo {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The round this opens (the answered round + 1).
    pub round: u32,
    /// The new deadline for the origin's answer.
    pub deadline: Timestamp,
    /// The information.
    pub text: String,
    /// Corrected transaction details, when they changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<TransactionDetails>,
}

/// What `wlnode consult supply-info --file` reads: the information, and corrected
/// transaction details when they changed. Checked on the officer's machine with the
/// bounds the node applies, so an error names a line and column of the officer's own
/// file (s35 QA: the file went to the API unchecked).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InformationFile {
    /// The information the origin asked for.
    pub text: String,
    /// Corrected transaction details, when they changed.
    #[serde(default)]
    pub details: Option<TransactionDetails>,
}

impl InformationFile {
    /// Reads the file (at most [`MAX_PAYLOAD_BYTES`]) and checks every bound. The
    /// deadline is not in the file: it is a flag.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge {
                size: bytes.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        let f: Self =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        text("text", &f.text, MAX_REASON)?;
        if let Some(d) = &f.details {
            d.validate("details")?;
        }
        Ok(f)
    }
}

/// The requester's decision on the licence.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Licence granted.
    Granted,
    /// Licence refused.
    Refused,
}

impl Decision {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Refused => "refused",
        }
    }
}

/// What a grant went against, if anything (the Art. 16 "granted despite denial").
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Despite {
    /// The origin objected.
    Objection,
    /// The consultation expired unanswered, so the denial stands.
    ExpiredDenial,
    /// Nothing: a refusal, or a grant after `no_objection`.
    None,
}

impl Despite {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Objection => "objection",
            Self::ExpiredDenial => "expired_denial",
            Self::None => "none",
        }
    }
}

/// Requester → origin (the decision) and, for a grant despite a denial, requester →
/// every member the entry's distribution admits (the decision notice). One body for
/// both: a node holding the consultation as origin records it, any other node files
/// it in its inbox as a notice.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultDecision {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The entry (denial) consulted on.
    pub entry_id: EntryId,
    /// The decision.
    pub decision: Decision,
    /// Why, if the requester says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What a grant went against.
    pub despite: Despite,
}

/// Why the origin refused a consultation request or a round of further
/// information ([`ConsultRefusal`]): a code, never free text, so a refusal carries
/// nothing an officer wrote.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The deadline leaves less than the roster's shortest deadline
    /// (`consultation_min_deadline_secs`) after the message arrived, or had passed.
    DeadlineTooShort,
    /// The deadline is more than 365 days ahead.
    DeadlineTooLong,
    /// The entry is not the origin's own (or not held there at all).
    NotOurEntry,
    /// The consultation id is not known to the origin (further information for a
    /// consultation it never opened).
    UnknownConsultation,
    /// The requester already has the most open consultations the origin takes from
    /// one member.
    TooManyOpen,
    /// A round the consultation is not at, more rounds than allowed, or information
    /// nobody asked for.
    WrongRound,
    /// Anything else the origin's rules refused.
    Invalid,
}

impl RefusalReason {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadlineTooShort => "deadline_too_short",
            Self::DeadlineTooLong => "deadline_too_long",
            Self::NotOurEntry => "not_our_entry",
            Self::UnknownConsultation => "unknown_consultation",
            Self::TooManyOpen => "too_many_open",
            Self::WrongRound => "wrong_round",
            Self::Invalid => "invalid",
        }
    }
}

/// Origin → requester: "your request (round 1) or your further information (round
/// *n*) was refused", so that the requester's consultation does not read as expiry by
/// silence. Sent at most once per consultation id and round, only in reply to a
/// request or information, never in reply to a refusal.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultRefusal {
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The round refused: 1 for the request, *n* for the information opening round
    /// *n*.
    pub round: u32,
    /// Why.
    pub reason: RefusalReason,
    /// The id of the sealed message refused (the request, or the information opening
    /// `round`), signed with the rest (review s31 issue 21: a refusal was not bound to
    /// the message it answered). The requester takes a refusal only if it names the
    /// message it sent for that round; one without it (from a node before this field)
    /// is refused explicitly and the round reads as silence, as before refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// The sender's signed, content-free receipt of this step and the salt of its
    /// digest ([`crate::evidence`], s33): the receiver logs the receipt as evidence.
    /// Absent from an older node (the step is then logged without evidence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<crate::evidence::ReceiptSeal>,
}

/// Where a hit was made.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HitContext {
    /// At customs.
    Customs,
    /// In licensing.
    Licensing,
    /// Elsewhere.
    Other,
}

/// Any member → an entry's origin: "we hit your entry" (for entries with
/// `"on_hit": "notify"`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HitReport {
    /// The entry hit.
    pub entry_id: EntryId,
    /// The record of it the reporter holds.
    pub record_id: RecordId,
    /// Where.
    pub context: HitContext,
    /// What (at most [`MAX_FREE_TEXT`] bytes).
    pub details: String,
    /// When the reporter made the report.
    pub reported_at: Timestamp,
}

/// Whether a flag is set or lifted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagAction {
    /// The entry is not actionable at the flagging agency.
    Set,
    /// The flag is lifted.
    Unset,
}

/// Flagging agency → origin: "your entry is not actionable here" (SIS-style), or
/// that flag lifted.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    /// The entry flagged.
    pub entry_id: EntryId,
    /// Set or lifted.
    pub action: FlagAction,
    /// Why (required when setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every body a sealed message carries. `kind` is the routing type string the
/// message's clear header names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    content = "body",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Payload {
    /// `consult_request`.
    ConsultRequest(ConsultRequest),
    /// `consult_answer`.
    ConsultAnswer(ConsultAnswer),
    /// `consult_info`.
    ConsultInfo(ConsultInfo),
    /// `consult_decision` (the decision to the origin, and the decision notice).
    ConsultDecision(ConsultDecision),
    /// `consult_refusal` (the origin refused a request or a round).
    ConsultRefusal(ConsultRefusal),
    /// `hit_report`.
    HitReport(HitReport),
    /// `flag`.
    Flag(Flag),
}

/// Every routing type string, as [`Payload::kind`] gives them.
pub const KINDS: [&str; 7] = [
    "consult_request",
    "consult_answer",
    "consult_info",
    "consult_decision",
    "consult_refusal",
    "hit_report",
    "flag",
];

impl Payload {
    /// The routing type string (one of [`KINDS`]); the same as the `kind` in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ConsultRequest(_) => "consult_request",
            Self::ConsultAnswer(_) => "consult_answer",
            Self::ConsultInfo(_) => "consult_info",
            Self::ConsultDecision(_) => "consult_decision",
            Self::ConsultRefusal(_) => "consult_refusal",
            Self::HitReport(_) => "hit_report",
            Self::Flag(_) => "flag",
        }
    }

    /// The consultation a consultation payload belongs to.
    pub fn consultation_id(&self) -> Option<ConsultationId> {
        match self {
            Self::ConsultRequest(p) => Some(p.consultation_id),
            Self::ConsultAnswer(p) => Some(p.consultation_id),
            Self::ConsultInfo(p) => Some(p.consultation_id),
            Self::ConsultDecision(p) => Some(p.consultation_id),
            Self::ConsultRefusal(p) => Some(p.consultation_id),
            Self::HitReport(_) | Self::Flag(_) => None,
        }
    }

    /// Checks every bound. [`encode`] and [`decode`] call it.
    pub fn validate(&self) -> Result<(), PayloadError> {
        match self {
            Self::ConsultRequest(r) => {
                if r.version == 0 {
                    return Err(PayloadError::invalid("version", "must be at least 1"));
                }
                text("reference", &r.reference, MAX_REFERENCE)?;
                time("deadline", r.deadline)?;
                crate::evidence::validate_seal(r.receipt.as_ref())?;
                r.details.validate("details")
            }
            Self::ConsultAnswer(a) => {
                if a.round == 0 {
                    return Err(PayloadError::invalid("round", "must be at least 1"));
                }
                if let Some(t) = a.answered_at {
                    time("answered_at", t)?;
                }
                crate::evidence::validate_seal(a.receipt.as_ref())?;
                if a.reason.is_none() && a.answer.needs_reason() {
                    return Err(PayloadError::invalid(
                        "reason",
                        format!("is required with {}", a.answer.as_str()),
                    ));
                }
                opt_text("reason", a.reason.as_ref(), MAX_REASON)
            }
            Self::ConsultInfo(i) => {
                if i.round < 2 {
                    return Err(PayloadError::invalid(
                        "round",
                        "must be at least 2 (round 1 is the request)",
                    ));
                }
                time("deadline", i.deadline)?;
                text("text", &i.text, MAX_REASON)?;
                i.details.as_ref().map_or(Ok(()), |d| d.validate("details"))
            }
            Self::ConsultDecision(d) => {
                if d.decision == Decision::Refused && d.despite != Despite::None {
                    return Err(PayloadError::invalid(
                        "despite",
                        "a refusal goes against nothing; must be none",
                    ));
                }
                opt_text("reason", d.reason.as_ref(), MAX_REASON)
            }
            Self::ConsultRefusal(r) => {
                if r.round == 0 || r.round > crate::consultation::MAX_ROUNDS {
                    return Err(PayloadError::invalid(
                        "round",
                        format!("must be 1 to {}", crate::consultation::MAX_ROUNDS),
                    ));
                }
                crate::evidence::validate_seal(r.receipt.as_ref())
            }
            Self::HitReport(h) => {
                text("details", &h.details, MAX_FREE_TEXT)?;
                time("reported_at", h.reported_at)
            }
            Self::Flag(f) => {
                if f.action == FlagAction::Set && f.reason.is_none() {
                    return Err(PayloadError::invalid("reason", "is required to set a flag"));
                }
                opt_text("reason", f.reason.as_ref(), MAX_REASON)
            }
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u32,
    payload: &'a Payload,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    v: u32,
    payload: serde_json::Value,
}

/// The canonical bytes of `p` (validated first; at most [`MAX_PAYLOAD_BYTES`]).
pub fn encode(p: &Payload) -> Result<Vec<u8>, PayloadError> {
    p.validate()?;
    let bytes = serde_json::to_vec(&WireOut {
        v: PAYLOAD_VERSION,
        payload: p,
    })
    .map_err(|e| PayloadError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(bytes)
}

/// Decodes and validates a payload: refuses one over [`MAX_PAYLOAD_BYTES`] before
/// parsing, an unknown version, an unknown kind or field, a value out of bounds, and
/// any encoding but the canonical one.
pub fn decode(bytes: &[u8]) -> Result<Payload, PayloadError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(PayloadError::TooLarge {
            size: bytes.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let wire: WireIn =
        serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    if wire.v != PAYLOAD_VERSION {
        return Err(PayloadError::UnsupportedVersion(wire.v));
    }
    let p: Payload =
        serde_json::from_value(wire.payload).map_err(|e| PayloadError::Malformed(e.to_string()))?;
    p.validate()?;
    if encode(&p)? != bytes {
        return Err(PayloadError::NonCanonical);
    }
    Ok(p)
}
