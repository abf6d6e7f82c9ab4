//! Signed, content-free receipts of consultation steps (issue 21, s33).
//!
//! Why: the audit trail kept only what each node said happened, so an answer the
//! requester logs and the origin's log does not show could be either side's lie, and
//! the auditor could only name the pair. Now the agency that takes a step signs a
//! small [`StepReceipt`] beside the sealed message that carries it: the request (the
//! requester), an answer or a refusal (the origin). The receipt names the
//! consultation, round, parties, the answer or refusal code, when it was signed, and
//! a salted SHA-256 of the content — never the content, so the receiving node can
//! keep the exact signed bytes ([`SignedReceipt`]) in its audit log and any auditor
//! can check them with the roster's keys.
//!
//! - The sender seals ([`seal`]): a random 16-byte salt travels inside the sealed
//!   payload with the receipt, the digest is `SHA-256(salt || payload bytes without
//!   the receipt)`, so a short answer reason cannot be guessed from the digest by
//!   anyone without the salt (the auditor sees no salt).
//! - The receiver checks ([`check`]) before it acts on the message: signature by a
//!   signing key of the sender valid at the signed time, every field against the
//!   payload and the mail header, the digest. A receipt that does not check is refused
//!   with the message; a message without one (an older node) is taken as before and
//!   logged without evidence.
//! - A `deadline_too_short` refusal's receipt also signs the minimum and roster
//!   version the origin applied (s35, review s33-consult L1: the auditor could judge
//!   one only with the origin's log, under the roster it showed), so that one
//!   contradicting itself, or the roster it names, is told without that log
//!   ([`StepReceipt::contradicts_itself`]). The origin signs them while its roster
//!   carries `consult_refusal_terms_required_since`, and requesters require them
//!   from that time on (review s35-deadline H1, L4): before, an s34 requester,
//!   which cannot read them, keeps taking its refusals.
//! - The signature context is [`wlnode_crypto::keys::context::CONSULT_RECEIPT`], used
//!   for nothing else, and the body is canonical JSON with a fixed field order of at
//!   most [`MAX_RECEIPT_BYTES`], so a signature made for another purpose (a record, a
//!   mail header, a checkpoint) never reads as a receipt, nor the reverse.

use serde::{Deserialize, Serialize};
use wlnode_crypto::keys::context;
use wlnode_crypto::model::MessageId;
use wlnode_crypto::{AgencyCode, PublicKey, SecretKey, Signature, Timestamp};

use crate::payload::{Answer, ConsultationId, Payload, RefusalReason};

/// The largest receipt body accepted, in bytes (a real one is about 350).
pub const MAX_RECEIPT_BYTES: usize = 640;

/// The receipt format's version.
pub const RECEIPT_VERSION: u32 = 1;

/// Which step a receipt signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStep {
    /// The requester's request (round 1).
    Request,
    /// The origin's answer to a round.
    Answer,
    /// The origin's refusal of a request or round.
    Refusal,
}

/// Which kind of message a refusal refuses (s34; review s33-consult H1 residual: the
/// auditor's "`unknown_consultation` of the request itself" rule rested on runtime
/// behaviour, not on signed data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedKind {
    /// A `consult_request` (always round 1).
    ConsultRequest,
    /// A `consult_info` (always round 2 or later, by [`Payload::validate`]).
    ConsultInfo,
}

impl RefusedKind {
    /// The kind a refusal of round `round` refuses: the request opens round 1 and
    /// each information a later one, so the requester knows which it sent.
    pub fn of_round(round: u32) -> Self {
        if round <= 1 {
            Self::ConsultRequest
        } else {
            Self::ConsultInfo
        }
    }
}

/// What the signer says it did, without the content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReceipt {
    /// [`RECEIPT_VERSION`].
    pub v: u32,
    /// The step.
    pub step: ReceiptStep,
    /// The consultation.
    pub consultation_id: ConsultationId,
    /// The round (1 for the request).
    pub round: u32,
    /// The signer: the agency that took the step.
    pub from: AgencyCode,
    /// The agency it addressed.
    pub to: AgencyCode,
    /// For an answer: the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// For a refusal: the reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefusalReason>,
    /// For a request: its deadline. For a refusal: the deadline of the message it
    /// refuses, as the origin judged it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// For a refusal: the id of the sealed message refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_message: Option<MessageId>,
    /// For a refusal: the kind of the message refused, as the origin decoded it
    /// (s34). Optional in the body so that the receipts of s33 nodes, signed
    /// without it, still verify and read as before; a receipt signed with it cannot
    /// lose or change it without breaking the signature, and a kind that is not the
    /// refused round's is refused by the requester ([`check`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_kind: Option<RefusedKind>,
    /// For a `deadline_too_short` refusal: the shortest deadline the origin held the
    /// refused message to, in seconds (the `consultation_min_deadline_secs` of the
    /// roster it judged with; s35, review s33-consult L1). Optional in the body so
    /// that older receipts, signed without it, still verify and read as before; on
    /// no other step or reason ([`check`]). With [`Self::roster_version`], the
    /// requester and the auditor judge the refusal on what the origin signed it
    /// applied, without the origin's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_deadline_secs: Option<u64>,
    /// For a `deadline_too_short` refusal: the version of the roster the origin
    /// judged the refused message under (s35; given with
    /// [`Self::min_deadline_secs`] or not at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_version: Option<u64>,
    /// When the signer took the step (its clock; an answer's `answered_at`).
    pub signed_at: Timestamp,
    /// `SHA-256(salt || payload without the receipt)`, lower-case hex.
    pub digest: String,
}

/// A receipt as signed: the exact body bytes (canonical JSON), the signer's key and
/// the signature over `CONSULT_RECEIPT || body`. Kept in audit logs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    /// The [`StepReceipt`] as signed (canonical JSON, at most [`MAX_RECEIPT_BYTES`]).
    pub body: String,
    /// The signing key (`ed25519:<hex>`), one of the signer's in the roster.
    pub key: String,
    /// The signature, hex.
    pub signature: String,
}

/// What a payload carries: the signed receipt and the salt of its digest (content:
/// only inside the sealed payload, never in an audit log).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSeal {
    /// The signed receipt.
    pub receipt: SignedReceipt,
    /// 16 random bytes, hex.
    pub salt: String,
}

/// Why a receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Over [`MAX_RECEIPT_BYTES`].
    #[error("receipt body is {size} bytes, more than {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The key, signature or body does not parse, or the body is not canonical.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The signature does not verify with the key named.
    #[error("receipt signature does not verify")]
    BadSignature,
    /// A field disagrees with the message or step it is said to sign.
    #[error("receipt does not match: {0}")]
    Mismatch(&'static str),
    /// The key is not a signing key of the signer at the signed time.
    #[error("receipt signer: {0}")]
    Signer(String),
    /// No random bytes for the salt.
    #[error("random number generator failed: {0}")]
    Rng(String),
}

impl StepReceipt {
    /// The canonical body bytes (bounded).
    pub fn encode(&self) -> Result<String, ReceiptError> {
        let body =
            serde_json::to_string(self).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if body.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                size: body.len(),
                max: MAX_RECEIPT_BYTES,
            });
        }
        Ok(body)
    }

    /// Signs it with `key`.
    pub fn sign(&self, key: &SecretKey) -> Result<SignedReceipt, ReceiptError> {
        let body = self.encode()?;
        let sig = key.sign(context::CONSULT_RECEIPT, body.as_bytes());
        Ok(SignedReceipt {
            body,
            key: key.public_key().to_string(),
            signature: hex::encode(sig.as_bytes()),
        })
    }
}

impl SignedReceipt {
    /// Checks the size and the signature over the body (with the key it names),
    /// whatever the body says, and returns the key.
    fn verify_signature(&self) -> Result<PublicKey, ReceiptError> {
        if self.body.len() > MAX_RECEIPT_BYTES {
            return Err(ReceiptError::TooLarge {
                size: self.body.len(),
                max: MAX_RECEIPT_BYTES,
            });
        }
        let key = self.public_key()?;
        let sig = hex::decode(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| ReceiptError::Malformed("signature is not 64 bytes of hex".into()))?;
        key.verify(context::CONSULT_RECEIPT, self.body.as_bytes(), &sig)
            .map_err(|_| ReceiptError::BadSignature)?;
        Ok(key)
    }

    /// Review s34-consult L3: the key this receipt names if its signature over the
    /// body verifies under the receipt context, even when [`Self::open`] cannot read
    /// the body (a field or a version of a later build): whoever holds that key
    /// signed these bytes, so a keeper without it did not forge them.
    pub fn signed_by(&self) -> Option<PublicKey> {
        self.verify_signature().ok()
    }

    /// The signing key.
    pub fn public_key(&self) -> Result<PublicKey, ReceiptError> {
        self.key
            .parse()
            .map_err(|e: wlnode_crypto::keys::KeyError| ReceiptError::Malformed(e.to_string()))
    }

    /// Checks the size, the signature (with the key it names) and the canonical form,
    /// and returns what it says. Who the key belongs to is the caller's check
    /// ([`wlnode_crypto::Roster::check_signer`] for [`StepReceipt::from`]).
    pub fn open(&self) -> Result<StepReceipt, ReceiptError> {
        self.verify_signature()?;
        let r: StepReceipt =
            serde_json::from_str(&self.body).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        if r.v != RECEIPT_VERSION {
            return Err(ReceiptError::Malformed(format!("version {}", r.v)));
        }
        if r.encode()? != self.body {
            return Err(ReceiptError::Malformed("body is not canonical".into()));
        }
        Ok(r)
    }
}

/// The step, round and step-specific fields a payload's receipt must carry, and its
/// receipt: `None` for a payload that carries none by kind.
fn expected(p: &Payload) -> Option<(ReceiptStep, u32, Option<&ReceiptSeal>)> {
    match p {
        Payload::ConsultRequest(r) => Some((ReceiptStep::Request, 1, r.receipt.as_ref())),
        Payload::ConsultAnswer(a) => Some((ReceiptStep::Answer, a.round, a.receipt.as_ref())),
        Payload::ConsultRefusal(r) => Some((ReceiptStep::Refusal, r.round, r.receipt.as_ref())),
        _ => None,
    }
}

/// `payload` without its receipt, canonical.
fn unsealed_bytes(p: &Payload) -> Result<Vec<u8>, ReceiptError> {
    let mut p = p.clone();
    match &mut p {
        Payload::ConsultRequest(r) => r.receipt = None,
        Payload::ConsultAnswer(a) => a.receipt = None,
        Payload::ConsultRefusal(r) => r.receipt = None,
        _ => {}
    }
    crate::payload::encode(&p).map_err(|e| ReceiptError::Malformed(e.to_string()))
}

fn digest(salt: &[u8], content: &[u8]) -> String {
    let mut h = wlnode_crypto::sha256::Hasher::new();
    h.update(salt).update(content);
    hex::encode(h.finish())
}

/// The receipt `from` signs for `p` to `to`, with `salt`.
fn receipt_of(
    p: &Payload,
    from: &AgencyCode,
    to: &AgencyCode,
    signed_at: Timestamp,
    refused: Option<Refused>,
    salt: &[u8],
) -> Result<StepReceipt, ReceiptError> {
    let (step, round, _) = expected(p).ok_or(ReceiptError::Mismatch("kind"))?;
    let (answer, reason, deadline, refused_message) = match p {
        Payload::ConsultRequest(r) => (None, None, Some(r.deadline), None),
        Payload::ConsultAnswer(a) => (Some(a.answer), None, None, None),
        Payload::ConsultRefusal(r) => (
            None,
            Some(r.reason),
            refused.map(|x| x.deadline),
            r.message_id,
        ),
        _ => return Err(ReceiptError::Mismatch("kind")),
    };
    let refused_kind = match p {
        Payload::ConsultRefusal(_) => refused.and_then(|x| x.kind),
        _ => None,
    };
    // What the origin applied: only on a `deadline_too_short` refusal, so every
    // other receipt keeps the s34 shape (an s34 node reads it).
    let applied = match p {
        Payload::ConsultRefusal(r) if r.reason == RefusalReason::DeadlineTooShort => {
            refused.and_then(|x| x.applied)
        }
        _ => None,
    };
    Ok(StepReceipt {
        v: RECEIPT_VERSION,
        step,
        consultation_id: p.consultation_id().ok_or(ReceiptError::Mismatch("kind"))?,
        round,
        from: from.clone(),
        to: to.clone(),
        answer,
        reason,
        deadline,
        refused_message,
        refused_kind,
        min_deadline_secs: applied.map(|a| a.min_deadline_secs),
        roster_version: applied.map(|a| a.roster_version),
        signed_at,
        digest: digest(salt, &unsealed_bytes(p)?),
    })
}

/// What a refusal's receipt says of the message it refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The refused message's deadline, as the origin judged it.
    pub deadline: Timestamp,
    /// Its kind, as the origin decoded it (`None` only as read from an s33 receipt).
    pub kind: Option<RefusedKind>,
    /// For a `deadline_too_short`: the minimum and roster the origin judged it
    /// under (s35; `None` as read from an older receipt). Ignored for any other
    /// reason.
    pub applied: Option<Applied>,
}

/// The roster minimum an origin applied to the message it refuses as
/// `deadline_too_short`, as its receipt signs it (s35).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The `consultation_min_deadline_secs` it held the message to.
    pub min_deadline_secs: u64,
    /// The version of the roster that minimum is from.
    pub roster_version: u64,
}

impl StepReceipt {
    /// Whether the minimum and roster applied (s35) are signed both or neither, and
    /// only on a `deadline_too_short` refusal: what [`check`] requires of a receipt,
    /// and what the auditor holds a logged one to (final read of s36: each wrote the
    /// rule out).
    pub fn applied_fields_fit(&self) -> bool {
        self.min_deadline_secs.is_some() == self.roster_version.is_some()
            && (self.min_deadline_secs.is_none()
                || (self.step == ReceiptStep::Refusal
                    && self.reason == Some(RefusalReason::DeadlineTooShort)))
    }

    /// What a `deadline_too_short` refusal's receipt signs the origin applied (s35),
    /// if it signs both fields.
    pub fn applied(&self) -> Option<Applied> {
        Some(Applied {
            min_deadline_secs: self.min_deadline_secs?,
            roster_version: self.roster_version?,
        })
    }

    /// Whether this refusal receipt contradicts itself (s35): a `deadline_too_short`
    /// whose signed deadline leaves at least the signed minimum plus `skew_ms` after
    /// the signed time. The origin judges a message at its arrival, before it signs
    /// the refusal, and refuses it only when its deadline is earlier than the
    /// arrival plus the minimum less the skew, so an honest origin never signs one
    /// (its clock may step back by up to the skew between the two).
    pub fn contradicts_itself(&self, skew_ms: u64) -> bool {
        match (self.reason, self.applied(), self.deadline) {
            (Some(RefusalReason::DeadlineTooShort), Some(a), Some(deadline)) => {
                deadline.as_millis()
                    >= self
                        .signed_at
                        .as_millis()
                        .saturating_add(a.min_deadline_secs.saturating_mul(1000))
                        .saturating_add(skew_ms)
            }
            _ => false,
        }
    }
}

/// Signs and attaches `from`'s receipt to a request, answer or refusal to `to`
/// (anything else is left alone). An answer's signed time is its `answered_at`
/// when it has one, else `now`. A refusal names the deadline and kind of the
/// message it refuses (`refused`).
pub fn seal(
    p: &mut Payload,
    from: &AgencyCode,
    to: &AgencyCode,
    key: &SecretKey,
    now: Timestamp,
    refused: Option<Refused>,
) -> Result<(), ReceiptError> {
    if expected(p).is_none() {
        return Ok(());
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ReceiptError::Rng(e.to_string()))?;
    let signed_at = match p {
        Payload::ConsultAnswer(a) => a.answered_at.unwrap_or(now),
        _ => now,
    };
    let receipt = receipt_of(p, from, to, signed_at, refused, &salt)?.sign(key)?;
    let seal = Some(ReceiptSeal {
        receipt,
        salt: hex::encode(salt),
    });
    match p {
        Payload::ConsultRequest(r) => r.receipt = seal,
        Payload::ConsultAnswer(a) => a.receipt = seal,
        Payload::ConsultRefusal(r) => r.receipt = seal,
        _ => {}
    }
    Ok(())
}

/// Checks the receipt a request, answer or refusal from `from` to `to` carries:
/// `Ok(None)` when it carries none; the signed receipt (to log) when it checks:
/// signed with the context, by a key `signer_ok` accepts for `from` at the signed
/// time, naming this payload's step, consultation, round, parties, answer or reason
/// and refused message, with the digest of this payload under its salt.
pub fn check(
    p: &Payload,
    from: &AgencyCode,
    to: &AgencyCode,
    signer_ok: impl Fn(&PublicKey, Timestamp) -> Result<(), String>,
) -> Result<Option<SignedReceipt>, ReceiptError> {
    let Some((step, round, Some(seal))) = expected(p) else {
        return Ok(None);
    };
    let r = seal.receipt.open()?;
    signer_ok(&seal.receipt.public_key()?, r.signed_at).map_err(ReceiptError::Signer)?;
    let salt = hex::decode(&seal.salt)
        .ok()
        .filter(|s| s.len() == 16)
        .ok_or_else(|| ReceiptError::Malformed("salt is not 16 bytes of hex".into()))?;
    let refused = r.deadline.map(|deadline| Refused {
        deadline,
        kind: r.refused_kind,
        applied: r.applied(),
    });
    let want = receipt_of(p, from, to, r.signed_at, refused, &salt)?;
    if r.step != step {
        return Err(ReceiptError::Mismatch("step"));
    }
    if r.round != round {
        return Err(ReceiptError::Mismatch("round"));
    }
    if r.from != want.from || r.to != want.to {
        return Err(ReceiptError::Mismatch("parties"));
    }
    if Some(r.consultation_id) != p.consultation_id() {
        return Err(ReceiptError::Mismatch("consultation_id"));
    }
    if r.answer != want.answer || r.reason != want.reason {
        return Err(ReceiptError::Mismatch("answer or reason"));
    }
    if r.refused_message != want.refused_message {
        return Err(ReceiptError::Mismatch("refused_message"));
    }
    if step == ReceiptStep::Request && r.deadline != want.deadline {
        return Err(ReceiptError::Mismatch("deadline"));
    }
    if step == ReceiptStep::Refusal && r.deadline.is_none() {
        return Err(ReceiptError::Mismatch("deadline"));
    }
    // The kind refused must be the one the refused round was opened by (s34). An
    // s33 receipt names none and reads as before.
    if r.refused_kind
        .is_some_and(|k| k != RefusedKind::of_round(round))
        || (step != ReceiptStep::Refusal && r.refused_kind.is_some())
    {
        return Err(ReceiptError::Mismatch("refused_kind"));
    }
    // s35: the minimum and roster applied, both or neither, and only on a
    // `deadline_too_short` refusal.
    if !r.applied_fields_fit() {
        return Err(ReceiptError::Mismatch(
            "min_deadline_secs or roster_version",
        ));
    }
    if let Payload::ConsultAnswer(a) = p
        && a.answered_at.is_some_and(|t| t != r.signed_at)
    {
        return Err(ReceiptError::Mismatch("signed_at"));
    }
    if r.digest != want.digest {
        return Err(ReceiptError::Mismatch("digest"));
    }
    Ok(Some(seal.receipt.clone()))
}

/// Checks the size and bounds of a payload's receipt (part of
/// [`Payload::validate`]): the signature and fields are [`check`]'s.
pub(crate) fn validate_seal(seal: Option<&ReceiptSeal>) -> Result<(), crate::PayloadError> {
    let Some(s) = seal else { return Ok(()) };
    if s.receipt.body.len() > MAX_RECEIPT_BYTES {
        return Err(crate::PayloadError::invalid(
            "receipt.body",
            format!("at most {MAX_RECEIPT_BYTES} bytes"),
        ));
    }
    if s.receipt.key.len() > 80 || s.receipt.signature.len() != 128 || s.salt.len() != 32 {
        return Err(crate::PayloadError::invalid(
            "receipt",
            "key, 64-byte signature and 16-byte salt in hex",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{ConsultAnswer, ConsultRefusal};

    fn ag(s: &str) -> AgencyCode {
        s.parse().unwrap()
    }

    fn answer() -> Payload {
        Payload::ConsultAnswer(ConsultAnswer {
            consultation_id: ConsultationId([3; 16]),
            round: 2,
            answer: Answer::Objection,
            reason: Some("end user is a front company".into()),
            answered_at: Some(Timestamp(1_800_000_000_000)),
            receipt: None,
        })
    }

    fn ok(_: &PublicKey, _: Timestamp) -> Result<(), String> {
        Ok(())
    }

    /// A sealed answer checks at the addressee, its receipt names the step without
    /// the content, and any change to the content, the parties or the signer is
    /// refused.
    #[test]
    fn a_sealed_answer_checks_and_carries_no_content() {
        let key = SecretKey::generate().unwrap();
        let (aa, bb) = (ag("AA-EXPORT"), ag("BB-CUSTOMS"));
        let mut p = answer();
        seal(&mut p, &aa, &bb, &key, Timestamp(1), None).unwrap();
        let r = check(&p, &aa, &bb, ok).unwrap().unwrap();
        assert!(r.body.len() <= MAX_RECEIPT_BYTES);
        assert!(!r.body.contains("front company"), "{}", r.body);
        let body = r.open().unwrap();
        assert_eq!(body.step, ReceiptStep::Answer);
        assert_eq!(body.round, 2);
        assert_eq!(body.answer, Some(Answer::Objection));
        assert_eq!(body.signed_at, Timestamp(1_800_000_000_000));
        // The payload survives the wire with its receipt.
        let wire = crate::payload::encode(&p).unwrap();
        assert_eq!(crate::payload::decode(&wire).unwrap(), p);
        // Another content under the same receipt.
        let mut other = p.clone();
        if let Payload::ConsultAnswer(a) = &mut other {
            a.reason = Some("no concern".into());
        }
        assert_eq!(
            check(&other, &aa, &bb, ok),
            Err(ReceiptError::Mismatch("digest"))
        );
        // Another addressee or sender.
        assert!(check(&p, &aa, &ag("CC-TRADE"), ok).is_err());
        assert!(check(&p, &bb, &bb, ok).is_err());
        // A key the roster does not give the sender.
        assert!(matches!(
            check(&p, &aa, &bb, |_, _| Err("unknown key".into())),
            Err(ReceiptError::Signer(_))
        ));
        // A body changed after signing.
        let mut forged = p.clone();
        if let Payload::ConsultAnswer(a) = &mut forged {
            let s = a.receipt.as_mut().unwrap();
            s.receipt.body = s.receipt.body.replace("objection", "no_objection");
        }
        assert_eq!(
            check(&forged, &aa, &bb, ok),
            Err(ReceiptError::BadSignature)
        );
        // Unsealed: nothing to check.
        assert_eq!(check(&answer(), &aa, &bb, ok), Ok(None));
    }

    /// Cross-context replay: the same body signed for another purpose is no receipt.
    #[test]
    fn a_signature_of_another_context_is_no_receipt() {
        let key = SecretKey::generate().unwrap();
        let (aa, bb) = (ag("AA-EXPORT"), ag("BB-CUSTOMS"));
        let mut p = answer();
        seal(&mut p, &aa, &bb, &key, Timestamp(1), None).unwrap();
        let Payload::ConsultAnswer(a) = &p else {
            unreachable!()
        };
        let mut r = a.receipt.clone().unwrap().receipt;
        assert!(r.open().is_ok());
        for c in [
            context::MAIL,
            context::RECEIPT,
            context::RECORD,
            context::HANDOVER,
        ] {
            r.signature = hex::encode(key.sign(c, r.body.as_bytes()).as_bytes());
            assert_eq!(r.open(), Err(ReceiptError::BadSignature));
        }
    }

    /// A refusal's receipt names the refused message and the deadline judged.
    #[test]
    fn a_sealed_refusal_names_the_refused_message_and_deadline() {
        let key = SecretKey::generate().unwrap();
        let (aa, bb) = (ag("AA-EXPORT"), ag("BB-CUSTOMS"));
        let mut p = Payload::ConsultRefusal(ConsultRefusal {
            consultation_id: ConsultationId([4; 16]),
            round: 1,
            reason: RefusalReason::DeadlineTooShort,
            message_id: Some(MessageId([9; 16])),
            receipt: None,
        });
        let refused = Refused {
            deadline: Timestamp(77),
            kind: Some(RefusedKind::ConsultRequest),
            applied: None,
        };
        seal(&mut p, &aa, &bb, &key, Timestamp(5), Some(refused)).unwrap();
        let r = check(&p, &aa, &bb, ok).unwrap().unwrap().open().unwrap();
        assert_eq!(r.refused_message, Some(MessageId([9; 16])));
        assert_eq!(r.refused_kind, Some(RefusedKind::ConsultRequest));
        assert_eq!(r.deadline, Some(Timestamp(77)));
        assert_eq!(r.reason, Some(RefusalReason::DeadlineTooShort));
        // Pointing the refusal at another message breaks the receipt.
        if let Payload::ConsultRefusal(x) = &mut p {
            x.message_id = Some(MessageId([8; 16]));
        }
        assert!(check(&p, &aa, &bb, ok).is_err());
    }

    /// s34 (review s33-consult H1 residual): a refusal's receipt signs the kind of
    /// message refused. Stripping the kind from the signed body, or swapping it, breaks
    /// the signature; a kind the signer gives that is not the refused round's is
    /// refused; an s33 receipt, signed without the field, still checks.
    #[test]
    fn the_refused_kind_is_signed_and_cannot_be_stripped_or_swapped() {
        let key = SecretKey::generate().unwrap();
        let (aa, bb) = (ag("AA-EXPORT"), ag("BB-CUSTOMS"));
        let refusal = |round| {
            Payload::ConsultRefusal(ConsultRefusal {
                consultation_id: ConsultationId([5; 16]),
                round,
                reason: RefusalReason::UnknownConsultation,
                message_id: Some(MessageId([9; 16])),
                receipt: None,
            })
        };
        let sealed = |round, kind| {
            let mut p = refusal(round);
            let refused = Refused {
                deadline: Timestamp(77),
                kind,
                applied: None,
            };
            seal(&mut p, &aa, &bb, &key, Timestamp(5), Some(refused)).unwrap();
            p
        };
        let seal_of = |p: &Payload| -> ReceiptSeal {
            let Payload::ConsultRefusal(r) = p else {
                unreachable!()
            };
            r.receipt.clone().unwrap()
        };
        let with_body = |p: &Payload, body: String| {
            let mut p = p.clone();
            if let Payload::ConsultRefusal(r) = &mut p {
                r.receipt.as_mut().unwrap().receipt.body = body;
            }
            p
        };
        let p = sealed(2, Some(RefusedKind::ConsultInfo));
        let body = seal_of(&p).receipt.body;
        assert!(body.contains(r#""refused_kind":"consult_info""#), "{body}");
        let r = check(&p, &aa, &bb, ok).unwrap().unwrap().open().unwrap();
        assert_eq!(r.refused_kind, Some(RefusedKind::ConsultInfo));
        // Stripped from the signed body: the signature no longer verifies.
        let stripped = body.replace(r#","refused_kind":"consult_info""#, "");
        assert_ne!(stripped, body);
        assert_eq!(
            check(&with_body(&p, stripped), &aa, &bb, ok),
            Err(ReceiptError::BadSignature)
        );
        // Swapped: the same.
        let swapped = body.replace("consult_info", "consult_request");
        assert_eq!(
            check(&with_body(&p, swapped), &aa, &bb, ok),
            Err(ReceiptError::BadSignature)
        );
        // Signed, but not the kind that opens the refused round: refused.
        assert_eq!(
            check(&sealed(1, Some(RefusedKind::ConsultInfo)), &aa, &bb, ok),
            Err(ReceiptError::Mismatch("refused_kind"))
        );
        assert_eq!(
            check(&sealed(3, Some(RefusedKind::ConsultRequest)), &aa, &bb, ok),
            Err(ReceiptError::Mismatch("refused_kind"))
        );
        // An s33 receipt (no kind in its signed body) still checks and names none.
        let old = sealed(1, None);
        assert!(!seal_of(&old).receipt.body.contains("refused_kind"));
        let r = check(&old, &aa, &bb, ok).unwrap().unwrap().open().unwrap();
        assert_eq!(r.refused_kind, None);
    }

    /// s35 (review s33-consult L1): a `deadline_too_short` refusal's receipt signs the
    /// minimum and roster version the origin applied. Stripping either from the
    /// signed body, or swapping a value, breaks the signature; a receipt signing one
    /// without the other, or either on another reason, is refused; no other reason
    /// carries them (so those receipts keep the s34 shape); a receipt signed without
    /// them keeps its exact bytes and still checks.
    #[test]
    fn the_applied_minimum_and_roster_are_signed_and_cannot_be_stripped_or_swapped() {
        let key = SecretKey::generate().unwrap();
        let (aa, bb) = (ag("AA-EXPORT"), ag("BB-CUSTOMS"));
        let applied = Applied {
            min_deadline_secs: 604_800,
            roster_version: 12,
        };
        let sealed = |reason, applied| {
            let mut p = Payload::ConsultRefusal(ConsultRefusal {
                consultation_id: ConsultationId([6; 16]),
                round: 1,
                reason,
                message_id: Some(MessageId([9; 16])),
                receipt: None,
            });
            let refused = Refused {
                deadline: Timestamp(77),
                kind: Some(RefusedKind::ConsultRequest),
                applied,
            };
            seal(&mut p, &aa, &bb, &key, Timestamp(5), Some(refused)).unwrap();
            p
        };
        let body_of = |p: &Payload| -> String {
            let Payload::ConsultRefusal(r) = p else {
                unreachable!()
            };
            r.receipt.clone().unwrap().receipt.body
        };
        let with_body = |p: &Payload, body: String| {
            let mut p = p.clone();
            if let Payload::ConsultRefusal(r) = &mut p {
                r.receipt.as_mut().unwrap().receipt.body = body;
            }
            p
        };
        let p = sealed(RefusalReason::DeadlineTooShort, Some(applied));
        let body = body_of(&p);
        assert!(
            body.contains(r#""min_deadline_secs":604800,"roster_version":12"#),
            "{body}"
        );
        let r = check(&p, &aa, &bb, ok).unwrap().unwrap().open().unwrap();
        assert_eq!(r.applied(), Some(applied));
        assert_eq!(r.min_deadline_secs, Some(604_800));
        assert_eq!(r.roster_version, Some(12));
        for changed in [
            body.replace(r#","min_deadline_secs":604800"#, ""),
            body.replace(r#","roster_version":12"#, ""),
            body.replace(
                r#""min_deadline_secs":604800"#,
                r#""min_deadline_secs":86400"#,
            ),
            body.replace(r#""roster_version":12"#, r#""roster_version":13"#),
        ] {
            assert_ne!(changed, body);
            assert_eq!(
                check(&with_body(&p, changed), &aa, &bb, ok),
                Err(ReceiptError::BadSignature)
            );
        }
        // Signed with one field and not the other, or on another reason: refused.
        let resign = |r: &StepReceipt| {
            let mut q = p.clone();
            if let Payload::ConsultRefusal(x) = &mut q {
                x.receipt.as_mut().unwrap().receipt = r.sign(&key).unwrap();
            }
            q
        };
        let mut half = r.clone();
        half.roster_version = None;
        assert_eq!(
            check(&resign(&half), &aa, &bb, ok),
            Err(ReceiptError::Mismatch(
                "min_deadline_secs or roster_version"
            ))
        );
        // Another reason with the fields forced into an otherwise right receipt.
        let mut q = sealed(RefusalReason::WrongRound, None);
        if let Payload::ConsultRefusal(x) = &mut q {
            x.receipt = None;
        }
        let salt = [1u8; 16];
        let mut forced = receipt_of(
            &q,
            &aa,
            &bb,
            Timestamp(5),
            Some(Refused {
                deadline: Timestamp(77),
                kind: Some(RefusedKind::ConsultRequest),
                applied: None,
            }),
            &salt,
        )
        .unwrap();
        forced.min_deadline_secs = Some(1);
        forced.roster_version = Some(1);
        if let Payload::ConsultRefusal(x) = &mut q {
            x.receipt = Some(ReceiptSeal {
                receipt: forced.sign(&key).unwrap(),
                salt: hex::encode(salt),
            });
        }
        assert_eq!(
            check(&q, &aa, &bb, ok),
            Err(ReceiptError::Mismatch(
                "min_deadline_secs or roster_version"
            ))
        );
        // Another reason never carries them, whatever the caller passes.
        let wrong_round = sealed(RefusalReason::WrongRound, Some(applied));
        assert!(!body_of(&wrong_round).contains("roster_version"));
        let r = check(&wrong_round, &aa, &bb, ok)
            .unwrap()
            .unwrap()
            .open()
            .unwrap();
        assert_eq!(r.applied(), None);
        // An older receipt (signed without them) keeps its exact bytes and checks.
        let old = sealed(RefusalReason::DeadlineTooShort, None);
        let old_body = body_of(&old);
        assert!(!old_body.contains("min_deadline_secs"), "{old_body}");
        let r = check(&old, &aa, &bb, ok).unwrap().unwrap();
        assert_eq!(r.body, old_body);
        assert_eq!(r.open().unwrap().encode().unwrap(), old_body);
        assert_eq!(r.open().unwrap().applied(), None);
    }

    /// s35: a `deadline_too_short` receipt contradicts itself when its deadline left
    /// at least the signed minimum plus the skew after its signed time; not one
    /// a millisecond short of that, not another reason, not one without the fields.
    #[test]
    fn a_deadline_too_short_receipt_contradicting_itself_is_told() {
        let skew = 300_000;
        let receipt = |reason, deadline: u64, applied: Option<Applied>| StepReceipt {
            v: RECEIPT_VERSION,
            step: ReceiptStep::Refusal,
            consultation_id: ConsultationId([6; 16]),
            round: 1,
            from: ag("AA-EXPORT"),
            to: ag("BB-CUSTOMS"),
            answer: None,
            reason: Some(reason),
            deadline: Some(Timestamp(deadline)),
            refused_message: None,
            refused_kind: None,
            min_deadline_secs: applied.map(|a| a.min_deadline_secs),
            roster_version: applied.map(|a| a.roster_version),
            signed_at: Timestamp(1_000_000),
            digest: String::new(),
        };
        let a = Some(Applied {
            min_deadline_secs: 86_400,
            roster_version: 3,
        });
        let edge = 1_000_000 + 86_400_000 + skew;
        assert!(receipt(RefusalReason::DeadlineTooShort, edge, a).contradicts_itself(skew));
        assert!(!receipt(RefusalReason::DeadlineTooShort, edge - 1, a).contradicts_itself(skew));
        assert!(!receipt(RefusalReason::WrongRound, edge, a).contradicts_itself(skew));
        assert!(!receipt(RefusalReason::DeadlineTooShort, edge, None).contradicts_itself(skew));
    }

    /// s35: the largest refusal receipt (32-character agency codes, every optional
    /// field, the largest numbers) still fits [`MAX_RECEIPT_BYTES`].
    #[test]
    fn the_largest_refusal_receipt_fits() {
        let long = ag("ABCDEFGHIJKLMNOPQRSTUVWXYZ-12345");
        let r = StepReceipt {
            v: RECEIPT_VERSION,
            step: ReceiptStep::Refusal,
            consultation_id: ConsultationId([0xff; 16]),
            round: u32::MAX,
            from: long.clone(),
            to: long,
            answer: None,
            reason: Some(RefusalReason::UnknownConsultation),
            deadline: Some(Timestamp(u64::MAX)),
            refused_message: Some(MessageId([0xff; 16])),
            refused_kind: Some(RefusedKind::ConsultRequest),
            min_deadline_secs: Some(u64::MAX),
            roster_version: Some(u64::MAX),
            signed_at: Timestamp(u64::MAX),
            digest: hex::encode([0xffu8; 32]),
        };
        let body = r.encode().unwrap();
        assert!(body.len() <= MAX_RECEIPT_BYTES, "{}", body.len());
    }
}
