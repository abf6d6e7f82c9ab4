//! Sealed agency-to-agency messages and their signed receipts (issue 21).
//!
//! A message is an [`Envelope`]: a clear routing header (message id, from, to, type,
//! creation and expiry time, body size, the sender's signing key and the recipient
//! encryption key it was sealed to), an HPKE-sealed body, and the sender agency's
//! ed25519 signature in the `wlnode/mail/v1` context over
//! `len(header) || header || enc || ciphertext`. So:
//! - a relay verifies who sent it and that nothing was changed, from the roster alone,
//!   without being able to read the body;
//! - the header bytes are also the HPKE `info` (after a label) and AAD, so a relay
//!   that rewrote `to` (re-routing) or moved the body under another header makes the
//!   signature fail and the body not open;
//! - only the hop count is outside the signature; relays bound it.
//!
//! A [`Receipt`] is the recipient's signature in the `wlnode/receipt/v1` context over
//! {message id, recipient, sender, time}: proof of delivery the sender can keep.
//!
//! A [`MailAck`] is the next hop's answer to one hand-over, signed by its agency in
//! the `wlnode/mail-handover/v1` context over {message id, item kind and digest,
//! handing agency, answering agency, accepted, reason, time}: the handing node keeps
//! it in its audit log as proof that the neighbour took custody, or refused it (so an
//! auditor can tell a relay that sat on a message from one whose neighbours refused
//! it).
//!
//! Decoding never panics: it checks every length and limit and returns a [`MailError`]
//! naming the field. The prost types stay in this module.

use std::fmt;

use zeroize::Zeroize;

use wlnode_proto::v1 as pb;
use wlnode_proto::{Bytes, Message};

use crate::keys::{PublicKey, SecretKey, Signature, context};
use crate::model::{AgencyCode, MessageId};
use crate::roster::{Roster, RosterError};
use crate::seal::{
    self, ENC_LEN, EncryptionKeyring, EncryptionPublicKey, EncryptionSecretKey, SealError, TAG_LEN,
};
use crate::time::Timestamp;

/// Largest sealed body (ciphertext) a node sends, relays or accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest plaintext a sender may seal (one byte of the padded body is the padding
/// marker).
pub const MAX_PLAINTEXT_BYTES: usize = MAX_BODY_BYTES - TAG_LEN - 1;
/// Smallest padded body: every plaintext up to this size (less the marker) seals to
/// the same length.
pub const MIN_PADDED_BYTES: usize = 1024;
/// Largest encoded header.
pub const MAX_HEADER_BYTES: usize = 1024;
/// Largest encoded envelope or receipt frame.
pub const MAX_FRAME_BYTES: usize = MAX_BODY_BYTES + MAX_HEADER_BYTES + 512 + MAX_OFFER_BYTES;
/// Longest a message may live: its expiry is at most this far after its creation.
pub const MAX_EXPIRY_MS: u64 = 90 * 24 * 3600 * 1000;
/// How far in the future a creation time may lie (clock skew allowed).
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Longest message type name.
pub const MAX_KIND_LEN: usize = 48;

/// Why a message or receipt was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Over a size limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a valid protobuf message, or a field is malformed.
    #[error("malformed {field}: {reason}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The header's size does not match the body.
    #[error("header says the body is {declared} bytes, it is {actual}")]
    SizeMismatch {
        /// What the header says.
        declared: u64,
        /// What arrived.
        actual: usize,
    },
    /// The expiry is before creation or too far after it.
    #[error("expiry {expires_at} is not within {MAX_EXPIRY_MS} ms after creation {created_at}")]
    BadExpiry {
        /// Creation.
        created_at: Timestamp,
        /// Expiry.
        expires_at: Timestamp,
    },
    /// The message has expired.
    #[error("message expired at {expires_at}")]
    Expired {
        /// Expiry.
        expires_at: Timestamp,
    },
    /// Created in the future.
    #[error("message claims to be created at {created_at}, in the future")]
    FromTheFuture {
        /// Claimed creation.
        created_at: Timestamp,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signer is not a valid key of the claimed agency.
    #[error("signer: {0}")]
    Signer(RosterError),
    /// The body is sealed to a key this node does not hold.
    #[error("sealed to {key}, which is not this node's encryption key")]
    NotOurKey {
        /// The key named in the header.
        key: EncryptionPublicKey,
    },
    /// Sealing or opening failed.
    #[error("{0}")]
    Seal(#[from] SealError),
    /// The body is sealed in the unpadded format of an older build
    /// (`wlnode/mail-seal/v1`): refused, as every node needs the same build, but not
    /// the sender's fault (review s30-consult2, M5).
    #[error(
        "body sealed in the unpadded format of an older build (wlnode/mail-seal/v1); upgrade the sending node"
    )]
    LegacyBody,
    /// A party a receipt names is not a member agency of the roster.
    #[error("{field} {agency} is not a member agency of the roster")]
    NotAMember {
        /// `sender` or `recipient`.
        field: &'static str,
        /// The agency named.
        agency: AgencyCode,
    },
    /// A receipt's time is in the future or older than any message can live.
    #[error("receipt says it was made at {received_at}, not within the allowed window")]
    ReceiptTime {
        /// The claimed time.
        received_at: Timestamp,
    },
    /// The key is revoked in the roster: whatever time the item claims (a backdated
    /// creation time does not bring a revoked key back), mail signed with it is refused.
    #[error("key {key} of {agency} is revoked")]
    RevokedSigner {
        /// Agency.
        agency: AgencyCode,
        /// The revoked key (`ed25519:<hex>`).
        key: String,
    },
}

impl MailError {
    fn malformed(field: &'static str, reason: impl fmt::Display) -> Self {
        Self::Malformed {
            field,
            reason: reason.to_string(),
        }
    }

    /// A short, stable code for metrics and audit events.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "oversized",
            Self::Malformed { .. } | Self::SizeMismatch { .. } => "malformed",
            Self::BadExpiry { .. } | Self::FromTheFuture { .. } | Self::ReceiptTime { .. } => {
                "bad_time"
            }
            Self::Expired { .. } => "expired",
            Self::BadSignature | Self::Signer(_) | Self::RevokedSigner { .. } => "forged",
            Self::NotAMember { .. } => "unknown_agency",
            Self::LegacyBody => "legacy_body",
            Self::NotOurKey { .. } | Self::Seal(_) => "unopenable",
        }
    }
}

/// The clear routing header of a message: all a relay can read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailHeader {
    /// Message id.
    pub id: MessageId,
    /// Sender agency.
    pub from: AgencyCode,
    /// Recipient agency.
    pub to: AgencyCode,
    /// Message type (`consult.request`, ...).
    pub kind: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry time.
    pub expires_at: Timestamp,
    /// Sealed body size in bytes.
    pub size: u32,
    /// The sender's signing key.
    pub sender_key: PublicKey,
    /// The recipient encryption key the body is sealed to.
    pub recipient_key: EncryptionPublicKey,
}

fn check_kind(kind: &str) -> Result<(), MailError> {
    if kind.is_empty()
        || kind.len() > MAX_KIND_LEN
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        return Err(MailError::malformed(
            "kind",
            format!("{kind:?} must be 1 to {MAX_KIND_LEN} of a-z 0-9 . _"),
        ));
    }
    Ok(())
}

impl MailHeader {
    fn to_pb(&self) -> pb::MailHeader {
        pb::MailHeader {
            message_id: Bytes::copy_from_slice(self.id.as_bytes()),
            from: self.from.as_str().to_owned(),
            to: self.to.as_str().to_owned(),
            kind: self.kind.clone(),
            created_at: self.created_at.as_millis(),
            expires_at: self.expires_at.as_millis(),
            size: self.size,
            sender_key: Bytes::copy_from_slice(self.sender_key.as_bytes()),
            recipient_key: Bytes::copy_from_slice(self.recipient_key.as_bytes()),
        }
    }

    fn from_bytes(b: &[u8]) -> Result<Self, MailError> {
        if b.len() > MAX_HEADER_BYTES {
            return Err(MailError::TooLarge {
                what: "header",
                size: b.len(),
                limit: MAX_HEADER_BYTES,
            });
        }
        let h = pb::MailHeader::decode(b).map_err(|e| MailError::malformed("header", e))?;
        check_kind(&h.kind)?;
        let header = Self {
            id: MessageId::from_slice(&h.message_id)
                .map_err(|e| MailError::malformed("message_id", e))?,
            from: AgencyCode::new(h.from).map_err(|e| MailError::malformed("from", e))?,
            to: AgencyCode::new(h.to).map_err(|e| MailError::malformed("to", e))?,
            kind: h.kind,
            created_at: Timestamp(h.created_at),
            expires_at: Timestamp(h.expires_at),
            size: h.size,
            sender_key: PublicKey::from_bytes(&h.sender_key)
                .map_err(|e| MailError::malformed("sender_key", e))?,
            recipient_key: EncryptionPublicKey::from_bytes(&h.recipient_key)
                .map_err(|e| MailError::malformed("recipient_key", e))?,
        };
        header.check_times()?;
        Ok(header)
    }

    fn check_times(&self) -> Result<(), MailError> {
        let (c, e) = (self.created_at.as_millis(), self.expires_at.as_millis());
        if e <= c || e - c > MAX_EXPIRY_MS {
            return Err(MailError::BadExpiry {
                created_at: self.created_at,
                expires_at: self.expires_at,
            });
        }
        Ok(())
    }
}

/// The most bytes of an [`Envelope::identity`]: a header and a signature.
pub const MAX_IDENTITY_BYTES: usize = MAX_HEADER_BYTES + 64;

/// A message copy's identity read back from its bytes ([`Envelope::identity`]): the
/// routing header it carries and the digest those bytes hash to. The digest is what
/// a neighbour signs in its custody ack ([`HandoverBody::item_digest`]), so a header
/// whose digest equals a signed one is the header of the copy that neighbour took,
/// expiry included, whoever logged the bytes (a hash preimage, no signature check
/// needed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyIdentity {
    /// The copy's routing header.
    pub header: MailHeader,
    /// SHA-256 of the bytes ([`Envelope::identity_digest`]).
    pub digest: [u8; 32],
}

impl CopyIdentity {
    /// Reads identity bytes: at most [`MAX_IDENTITY_BYTES`], a header that decodes,
    /// passes the header checks and is in its canonical encoding (no extra fields:
    /// review s38 M1), then the 64 signature bytes (not verified: the digest is what
    /// binds them).
    pub fn parse(bytes: &[u8]) -> Result<Self, MailError> {
        if bytes.len() > MAX_IDENTITY_BYTES {
            return Err(MailError::TooLarge {
                what: "copy identity",
                size: bytes.len(),
                limit: MAX_IDENTITY_BYTES,
            });
        }
        let Some(split) = bytes.len().checked_sub(64) else {
            return Err(MailError::malformed(
                "copy identity",
                format!("{} bytes, shorter than a signature", bytes.len()),
            ));
        };
        let (header_bytes, _signature) = bytes.split_at(split);
        let header = MailHeader::from_bytes(header_bytes)?;
        if header.to_pb().encode_to_vec() != header_bytes {
            return Err(MailError::malformed(
                "copy identity",
                "the header is not in its canonical encoding",
            ));
        }
        Ok(Self {
            header,
            digest: crate::sha256::digest(bytes),
        })
    }
}

/// What a sender asks to seal.
#[derive(Debug)]
pub struct Draft<'a> {
    /// Message id (fresh and random).
    pub id: MessageId,
    /// Sender agency.
    pub from: AgencyCode,
    /// Recipient agency.
    pub to: AgencyCode,
    /// Message type.
    pub kind: &'a str,
    /// Creation time.
    pub created_at: Timestamp,
    /// Expiry time.
    pub expires_at: Timestamp,
    /// The clear text to seal.
    pub plaintext: &'a [u8],
}

/// A sealed message as it travels. Only [`Envelope::seal`] and [`Envelope::decode`]
/// make one.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    header: MailHeader,
    header_bytes: Bytes,
    signature: Signature,
    enc: [u8; ENC_LEN],
    ciphertext: Bytes,
    hops: u32,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .field("hops", &self.hops)
            .finish_non_exhaustive()
    }
}

/// The padded length of a plaintext of `len` bytes: the plaintext and a one-byte
/// marker, rounded up to [`MIN_PADDED_BYTES`] and then to the next power of two, at
/// most [`MAX_BODY_BYTES`] less the AEAD tag. A relay sees only the bucket: any two
/// plaintexts in one bucket seal to bodies of equal size (the header's `size` and the
/// ciphertext length).
pub fn padded_len(len: usize) -> usize {
    (len + 1)
        .max(MIN_PADDED_BYTES)
        .next_power_of_two()
        .min(MAX_BODY_BYTES - TAG_LEN)
}

/// `plaintext || 0x80 || 0x00…` up to [`padded_len`] (ISO/IEC 7816-4 padding).
fn pad(plaintext: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut v = zeroize::Zeroizing::new(Vec::with_capacity(padded_len(plaintext.len())));
    v.extend_from_slice(plaintext);
    v.push(0x80);
    v.resize(padded_len(plaintext.len()), 0);
    v
}

/// Strips [`pad`]'s padding, which must be canonical (review s30-consult2, L1): the
/// last non-zero byte is the 0x80 marker, only zeros follow it, and the whole is
/// exactly [`padded_len`] of the content before the marker.
fn unpad(mut padded: Vec<u8>) -> Result<Vec<u8>, MailError> {
    let end = padded
        .iter()
        .rposition(|b| *b != 0)
        .filter(|i| padded.get(*i) == Some(&0x80))
        .ok_or_else(|| MailError::malformed("body", "padding marker missing"))?;
    if padded.len() != padded_len(end) {
        let n = padded.len();
        padded.zeroize();
        return Err(MailError::malformed(
            "body",
            format!(
                "padded to {n} bytes, {} expected for {end} bytes of content",
                padded_len(end)
            ),
        ));
    }
    padded.truncate(end);
    Ok(padded)
}

fn signed_bytes(header: &[u8], enc: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(8 + header.len() + enc.len() + ciphertext.len());
    m.extend_from_slice(&(header.len() as u64).to_be_bytes());
    m.extend_from_slice(header);
    m.extend_from_slice(enc);
    m.extend_from_slice(ciphertext);
    m
}

/// The format of a sealed body, named by the HPKE `info` label it is sealed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `wlnode/mail-seal/v1`: the plaintext as it is (older builds). Refused on
    /// opening with [`MailError::LegacyBody`].
    Unpadded,
    /// `wlnode/mail-seal/v2`: the plaintext padded to [`padded_len`].
    Padded,
}

fn seal_info(header: &[u8], format: BodyFormat) -> Vec<u8> {
    let label = match format {
        BodyFormat::Unpadded => context::MAIL_SEAL,
        BodyFormat::Padded => context::MAIL_SEAL_PADDED,
    };
    let mut info = Vec::with_capacity(label.len() + header.len());
    info.extend_from_slice(label);
    info.extend_from_slice(header);
    info
}

impl Envelope {
    /// Seals `draft.plaintext` to `recipient_key` and signs the result with `sender`.
    pub fn seal(
        draft: &Draft<'_>,
        sender: &SecretKey,
        recipient_key: &EncryptionPublicKey,
    ) -> Result<Self, MailError> {
        if draft.plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(MailError::TooLarge {
                what: "message body",
                size: draft.plaintext.len(),
                limit: MAX_PLAINTEXT_BYTES,
            });
        }
        let padded = pad(draft.plaintext);
        Self::seal_raw(draft, sender, recipient_key, &padded, BodyFormat::Padded)
    }

    /// Decodes an envelope, checking structure and limits only (no signature: see
    /// [`Envelope::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MailError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(MailError::TooLarge {
                what: "message",
                size: bytes.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        let e = pb::MailEnvelope::decode(bytes).map_err(|e| MailError::malformed("envelope", e))?;
        Self::from_pb(e)
    }

    pub(crate) fn from_pb(e: pb::MailEnvelope) -> Result<Self, MailError> {
        if e.ciphertext.len() > MAX_BODY_BYTES {
            return Err(MailError::TooLarge {
                what: "message body",
                size: e.ciphertext.len(),
                limit: MAX_BODY_BYTES,
            });
        }
        let header = MailHeader::from_bytes(&e.header)?;
        if u64::from(header.size) != e.ciphertext.len() as u64 {
            return Err(MailError::SizeMismatch {
                declared: u64::from(header.size),
                actual: e.ciphertext.len(),
            });
        }
        let enc: [u8; ENC_LEN] = e.enc.as_ref().try_into().map_err(|_| {
            MailError::malformed(
                "enc",
                format!("must be {ENC_LEN} bytes, got {}", e.enc.len()),
            )
        })?;
        let signature = Signature::from_slice(&e.signature)
            .map_err(|err| MailError::malformed("signature", err))?;
        Ok(Self {
            header,
            header_bytes: e.header,
            signature,
            enc,
            ciphertext: e.ciphertext,
            hops: e.hops,
        })
    }

    pub(crate) fn to_pb(&self) -> pb::MailEnvelope {
        pb::MailEnvelope {
            header: self.header_bytes.clone(),
            signature: Bytes::copy_from_slice(self.signature.as_bytes()),
            enc: Bytes::copy_from_slice(&self.enc),
            ciphertext: self.ciphertext.clone(),
            hops: self.hops,
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// The routing header.
    pub fn header(&self) -> &MailHeader {
        &self.header
    }

    /// Relays passed so far.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// SHA-256 over the signed header's bytes and the signature: equal for every copy
    /// of one message whatever its hop count, different for another message under
    /// the same id (a replay).
    pub fn identity_digest(&self) -> [u8; 32] {
        crate::sha256::digest(&self.identity_bytes())
    }

    fn identity_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.header_bytes.len() + 64);
        b.extend_from_slice(&self.header_bytes);
        b.extend_from_slice(self.signature.as_bytes());
        b
    }

    /// What [`Envelope::identity_digest`] is taken over: the signed routing header's
    /// bytes and the sender's signature (64 bytes). Metadata only, what every relay
    /// reads (id, sender, recipient, type, times, size, keys), never the body. A node
    /// logs it beside a hand-over its neighbour signed custody of, so an auditor can
    /// read the copy's expiry from the very bytes the neighbour's signed digest
    /// names ([`CopyIdentity::parse`]). `None` when the header's bytes are not its
    /// canonical encoding (what every build writes): a sender's extra protobuf fields
    /// could carry anything, content included, into the logs of every node on the
    /// way (review s38 M1), so such bytes are never handed out to be logged.
    pub fn identity(&self) -> Option<Vec<u8>> {
        (self.header.to_pb().encode_to_vec() == self.header_bytes.as_ref())
            .then(|| self.identity_bytes())
    }

    /// The same envelope one hop further on.
    pub fn next_hop(&self) -> Self {
        let mut e = self.clone();
        e.hops = e.hops.saturating_add(1);
        e
    }

    /// Encoded size (for quotas).
    pub fn encoded_len(&self) -> usize {
        self.to_pb().encoded_len()
    }

    /// What a relay and the recipient check: the sender's signature over header and
    /// sealed body, that the key was the sender's signing key at creation, that the
    /// recipient key was the recipient's, and the times against `now`.
    pub fn verify(&self, roster: &Roster, now: Timestamp) -> Result<(), MailError> {
        let h = &self.header;
        if h.created_at.as_millis() > now.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) {
            return Err(MailError::FromTheFuture {
                created_at: h.created_at,
            });
        }
        if now >= h.expires_at {
            return Err(MailError::Expired {
                expires_at: h.expires_at,
            });
        }
        h.sender_key
            .verify(
                context::MAIL,
                &signed_bytes(&self.header_bytes, &self.enc, &self.ciphertext),
                &self.signature,
            )
            .map_err(|_| MailError::BadSignature)?;
        roster
            .check_signer(&h.from, &h.sender_key, h.created_at)
            .map_err(MailError::Signer)?;
        refuse_revoked(roster, &h.from, &h.sender_key)?;
        roster
            .check_encryption_key(&h.to, &h.recipient_key, h.created_at)
            .map_err(MailError::Signer)?;
        Ok(())
    }

    /// Opens the body with the recipient's key (call [`Envelope::verify`] first).
    pub fn open(&self, key: &EncryptionSecretKey) -> Result<Vec<u8>, MailError> {
        if key.public_key()? != self.header.recipient_key {
            return Err(MailError::NotOurKey {
                key: self.header.recipient_key,
            });
        }
        let info = seal_info(&self.header_bytes, BodyFormat::Padded);
        match key.open(&self.enc, &self.ciphertext, &info, &self.header_bytes) {
            Ok(padded) => unpad(padded),
            Err(SealError::Open) => {
                // Sealed by an older build, unpadded (review s30-consult2, M5)?
                let legacy = seal_info(&self.header_bytes, BodyFormat::Unpadded);
                match key.open(&self.enc, &self.ciphertext, &legacy, &self.header_bytes) {
                    Ok(mut body) => {
                        body.zeroize();
                        Err(MailError::LegacyBody)
                    }
                    Err(_) => Err(SealError::Open.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Test and hostile-peer helper: seals `body` exactly as given (no padding added)
    /// under `format`'s label and signs it, as an older build (or a sender padding
    /// wrongly) would.
    pub fn seal_raw(
        draft: &Draft<'_>,
        sender: &SecretKey,
        recipient_key: &EncryptionPublicKey,
        body: &[u8],
        format: BodyFormat,
    ) -> Result<Self, MailError> {
        check_kind(draft.kind)?;
        let size = u32::try_from(body.len() + TAG_LEN).map_err(|_| MailError::TooLarge {
            what: "message body",
            size: body.len(),
            limit: MAX_PLAINTEXT_BYTES,
        })?;
        let header = MailHeader {
            id: draft.id,
            from: draft.from.clone(),
            to: draft.to.clone(),
            kind: draft.kind.to_owned(),
            created_at: draft.created_at,
            expires_at: draft.expires_at,
            size,
            sender_key: sender.public_key(),
            recipient_key: *recipient_key,
        };
        header.check_times()?;
        let header_bytes = Bytes::from(header.to_pb().encode_to_vec());
        let (enc, ct) = seal::seal(
            recipient_key,
            &seal_info(&header_bytes, format),
            &header_bytes,
            body,
        )?;
        let signature = sender.sign(context::MAIL, &signed_bytes(&header_bytes, &enc, &ct));
        Ok(Self {
            header,
            header_bytes,
            signature,
            enc,
            ciphertext: Bytes::from(ct),
            hops: 0,
        })
    }

    /// Opens the body with whichever of `keys` the header names (the recipient may
    /// hold its previous and next keys during a rotation); [`MailError::NotOurKey`]
    /// when it holds none of them.
    pub fn open_with(&self, keys: &EncryptionKeyring) -> Result<Vec<u8>, MailError> {
        let key = keys
            .get(&self.header.recipient_key)
            .ok_or(MailError::NotOurKey {
                key: self.header.recipient_key,
            })?;
        self.open(key)
    }

    /// Test and hostile-peer helper: the same envelope with the header's `to`
    /// rewritten and re-encoded, keeping the signature (what a re-routing relay would
    /// send).
    pub fn rerouted(&self, to: AgencyCode) -> Self {
        let mut e = self.clone();
        e.header.to = to;
        e.header_bytes = Bytes::from(e.header.to_pb().encode_to_vec());
        e
    }
}

/// Refuses `key` of `agency` if the roster lists it as revoked at all: unlike records
/// (which the revocation may keep), mail carries only its own claimed time, which the
/// signer chooses.
fn refuse_revoked(roster: &Roster, agency: &AgencyCode, key: &PublicKey) -> Result<(), MailError> {
    if roster
        .member(agency)
        .is_some_and(|m| m.revoked.iter().any(|r| r.key == *key))
    {
        return Err(MailError::RevokedSigner {
            agency: agency.clone(),
            key: key.to_string(),
        });
    }
    Ok(())
}

/// What a receipt says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptBody {
    /// The message received.
    pub message_id: MessageId,
    /// Who received it (and signs).
    pub recipient: AgencyCode,
    /// Who sent it (where the receipt goes).
    pub sender: AgencyCode,
    /// When.
    pub received_at: Timestamp,
    /// The recipient's signing key.
    pub signer_key: PublicKey,
}

/// A signed receipt as it travels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    body: ReceiptBody,
    body_bytes: Bytes,
    signature: Signature,
    hops: u32,
}

impl Receipt {
    /// The recipient signs a receipt for `header`.
    pub fn sign(header: &MailHeader, recipient: &SecretKey, at: Timestamp) -> Self {
        let body = ReceiptBody {
            message_id: header.id,
            recipient: header.to.clone(),
            sender: header.from.clone(),
            received_at: at,
            signer_key: recipient.public_key(),
        };
        let body_bytes = Bytes::from(
            pb::ReceiptBody {
                message_id: Bytes::copy_from_slice(body.message_id.as_bytes()),
                recipient: body.recipient.as_str().to_owned(),
                sender: body.sender.as_str().to_owned(),
                received_at: at.as_millis(),
                signer_key: Bytes::copy_from_slice(body.signer_key.as_bytes()),
            }
            .encode_to_vec(),
        );
        let signature = recipient.sign(context::RECEIPT, &body_bytes);
        Self {
            body,
            body_bytes,
            signature,
            hops: 0,
        }
    }

    /// Decodes a receipt (structure only; see [`Receipt::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MailError> {
        if bytes.len() > MAX_HEADER_BYTES {
            return Err(MailError::TooLarge {
                what: "receipt",
                size: bytes.len(),
                limit: MAX_HEADER_BYTES,
            });
        }
        let r = pb::MailReceipt::decode(bytes).map_err(|e| MailError::malformed("receipt", e))?;
        Self::from_pb(r)
    }

    pub(crate) fn from_pb(r: pb::MailReceipt) -> Result<Self, MailError> {
        if r.body.len() > MAX_HEADER_BYTES {
            return Err(MailError::TooLarge {
                what: "receipt",
                size: r.body.len(),
                limit: MAX_HEADER_BYTES,
            });
        }
        let b = pb::ReceiptBody::decode(r.body.as_ref())
            .map_err(|e| MailError::malformed("receipt body", e))?;
        let body = ReceiptBody {
            message_id: MessageId::from_slice(&b.message_id)
                .map_err(|e| MailError::malformed("message_id", e))?,
            recipient: AgencyCode::new(b.recipient)
                .map_err(|e| MailError::malformed("recipient", e))?,
            sender: AgencyCode::new(b.sender).map_err(|e| MailError::malformed("sender", e))?,
            received_at: Timestamp(b.received_at),
            signer_key: PublicKey::from_bytes(&b.signer_key)
                .map_err(|e| MailError::malformed("signer_key", e))?,
        };
        let signature = Signature::from_slice(&r.signature)
            .map_err(|e| MailError::malformed("signature", e))?;
        Ok(Self {
            body,
            body_bytes: r.body,
            signature,
            hops: r.hops,
        })
    }

    pub(crate) fn to_pb(&self) -> pb::MailReceipt {
        pb::MailReceipt {
            body: self.body_bytes.clone(),
            signature: Bytes::copy_from_slice(self.signature.as_bytes()),
            hops: self.hops,
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// What it says.
    pub fn body(&self) -> &ReceiptBody {
        &self.body
    }

    /// Relays passed so far.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// The same receipt one hop further on.
    pub fn next_hop(&self) -> Self {
        let mut r = self.clone();
        r.hops = r.hops.saturating_add(1);
        r
    }

    /// Checks the signature, that the key was the recipient's signing key then and is
    /// not revoked since, that sender and recipient are member agencies, and that the
    /// receipt's time lies between `now` minus the longest message life and `now` plus
    /// the clock skew (a receipt cannot name a time that keeps it alive for ever).
    ///
    /// That the receipt is for a message we hold (signed by that message's recipient,
    /// naming its sender) is checked by whoever holds it: see [`Receipt::is_for`].
    pub fn verify(&self, roster: &Roster, now: Timestamp) -> Result<(), MailError> {
        let b = &self.body;
        let at = b.received_at.as_millis();
        if at > now.as_millis().saturating_add(MAX_CLOCK_SKEW_MS)
            || at.saturating_add(MAX_EXPIRY_MS) < now.as_millis()
        {
            return Err(MailError::ReceiptTime {
                received_at: b.received_at,
            });
        }
        b.signer_key
            .verify(context::RECEIPT, &self.body_bytes, &self.signature)
            .map_err(|_| MailError::BadSignature)?;
        roster
            .check_signer(&b.recipient, &b.signer_key, b.received_at)
            .map_err(MailError::Signer)?;
        refuse_revoked(roster, &b.recipient, &b.signer_key)?;
        if roster.member(&b.sender).is_none() {
            return Err(MailError::NotAMember {
                field: "sender",
                agency: b.sender.clone(),
            });
        }
        Ok(())
    }

    /// Whether this receipt is the one for the message under `header`: same id, signed
    /// for its recipient (`header.to`), naming its sender (`header.from`). Anything
    /// else is another member's claim about a message it did not receive.
    pub fn is_for(&self, header: &MailHeader) -> bool {
        self.body.message_id == header.id
            && self.body.recipient == header.to
            && self.body.sender == header.from
    }
}

/// One item handed to the next hop over `/wlnode/mail/5`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailItem {
    /// A sealed message.
    Envelope(Envelope),
    /// A receipt on its way back to the sender.
    Receipt(Receipt),
}

impl MailItem {
    /// The `MailRequest` frame bytes (no offer).
    pub fn encode(&self) -> Vec<u8> {
        self.to_request(None).encode_to_vec()
    }

    /// The `MailRequest` frame bytes with the handing agency's signed `offer`
    /// (`/wlnode/mail/5`).
    pub fn encode_offered(&self, offer: &HandoverOffer) -> Vec<u8> {
        self.to_request(Some(offer)).encode_to_vec()
    }

    fn to_request(&self, offer: Option<&HandoverOffer>) -> pb::MailRequest {
        let item = match self {
            Self::Envelope(e) => pb::mail_request::Item::Envelope(e.to_pb()),
            Self::Receipt(r) => pb::mail_request::Item::Receipt(r.to_pb()),
        };
        pb::MailRequest {
            item: Some(item),
            offer: offer.map(HandoverOffer::to_pb),
        }
    }

    /// Decodes a `MailRequest` frame (structure and limits; no signatures); an offer
    /// in it is ignored (see [`MailItem::decode_offered`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MailError> {
        Self::decode_offered(bytes).map(|(item, _)| item)
    }

    /// Decodes a `MailRequest` frame and the offer it carries: `None` when there is
    /// none (a `/wlnode/mail/4` frame), `Some(Err)` when it does not decode (the item
    /// still does; structure and limits only, no signatures).
    #[allow(clippy::type_complexity)]
    pub fn decode_offered(
        bytes: &[u8],
    ) -> Result<(Self, Option<Result<HandoverOffer, MailError>>), MailError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(MailError::TooLarge {
                what: "mail frame",
                size: bytes.len(),
                limit: MAX_FRAME_BYTES,
            });
        }
        let r =
            pb::MailRequest::decode(bytes).map_err(|e| MailError::malformed("mail frame", e))?;
        let item = match r.item {
            Some(pb::mail_request::Item::Envelope(e)) => Envelope::from_pb(e).map(Self::Envelope),
            Some(pb::mail_request::Item::Receipt(r)) => Receipt::from_pb(r).map(Self::Receipt),
            None => Err(MailError::malformed("mail frame", "empty")),
        }?;
        Ok((item, r.offer.map(HandoverOffer::from_pb)))
    }

    /// The item's addressee: a message's recipient, a receipt's sender (where it
    /// goes).
    pub fn addressee(&self) -> &AgencyCode {
        match self {
            Self::Envelope(e) => &e.header().to,
            Self::Receipt(r) => &r.body().sender,
        }
    }
}

/// Largest encoded `MailResponse` frame (a signed hand-over answer).
pub const MAX_ACK_BYTES: usize = 1024;
/// Longest reason code in a hand-over answer.
pub const MAX_ACK_REASON_LEN: usize = 64;

/// The reasons of an addressee's valid signed refusal of a relayed copy that are its
/// final word on that copy: the one list both the relay's mailer (such a refusal is
/// no miss of the addressee, so the copy is not handed to others) and the auditor
/// (such a refusal covers the relay's links, `mail_not_relayed`) use, so they cannot
/// drift apart (review s36-int H1). Each is given only after the addressee checked
/// the item and the relay's signed offer (an honest addressee never signs `quota`,
/// `id_in_use` or `too_many_hops` for mail addressed to itself, so those come only
/// from a hostile one, which can then keep the copy to itself, but they cover the
/// relay: review of s36-fix L2), and none is the relay's doing: `replayed`
/// is bound to the copy's digest (the addressee holds that id from the same sender
/// with other content already, so relaying it elsewhere is pointless). Not
/// `expired` nor `no_offer` (a relay that held the copy back or sent no offer
/// provokes them), nor a failed verification or decoding: any other signed refusal
/// from the addressee is a miss, and the relay hands the copy to its other
/// neighbours after its misses.
pub const ADDRESSEE_FINAL_REFUSALS: &[&str] = &[
    "quota",
    "sender_quota",
    "id_in_use",
    "too_many_hops",
    "full",
    "store",
    "unopenable",
    "legacy_body",
    "replayed",
];

impl MailItem {
    /// Whether this is a message or a receipt (`message`, `receipt`).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Envelope(_) => "message",
            Self::Receipt(_) => "receipt",
        }
    }

    /// Its hop count (relays passed so far).
    pub fn hops(&self) -> u32 {
        match self {
            Self::Envelope(e) => e.hops(),
            Self::Receipt(r) => r.hops(),
        }
    }

    /// The message id the item is about.
    pub fn message_id(&self) -> MessageId {
        match self {
            Self::Envelope(e) => e.header().id,
            Self::Receipt(r) => r.body().message_id,
        }
    }

    /// SHA-256 identity of the item, the same at every hop: a message's
    /// [`Envelope::identity_digest`], or a receipt's signed body and signature.
    pub fn identity_digest(&self) -> [u8; 32] {
        match self {
            Self::Envelope(e) => e.identity_digest(),
            Self::Receipt(r) => {
                let mut b = Vec::with_capacity(r.body_bytes.len() + 64);
                b.extend_from_slice(&r.body_bytes);
                b.extend_from_slice(r.signature.as_bytes());
                crate::sha256::digest(&b)
            }
        }
    }
}

/// What the next hop signs when it answers a hand-over (the `wlnode/mail-handover/v1`
/// context): custody of one item taken from one agency, or why not, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoverBody {
    /// The item's message id (`None`: the item did not decode).
    pub message_id: Option<MessageId>,
    /// `message` or `receipt` (empty: the item did not decode).
    pub item: String,
    /// The item's [`MailItem::identity_digest`], when it decoded.
    pub item_digest: Option<[u8; 32]>,
    /// The item's hop count as handed, when it decoded (`None` in answers of
    /// `/wlnode/mail/3` builds): signed, so the count a relay took an item at is
    /// evidence (review s31-fixes X1).
    pub hops: Option<u32>,
    /// The item's addressee ([`MailItem::addressee`]) when it decoded (`None` in
    /// answers of builds before `/wlnode/mail/5`): a refusal of an item addressed to the
    /// answering agency speaks of its delivery state, any other of its relay state
    /// (review s32-mail L1).
    pub addressee: Option<AgencyCode>,
    /// The handing agency (`None`: the answering node could not tell who it was).
    pub from_hop: Option<AgencyCode>,
    /// The answering agency, which signs.
    pub to_hop: AgencyCode,
    /// Custody taken (or the item was already there).
    pub accepted: bool,
    /// A short code (`ok`, `seen`, `duplicate`, `full`, `quota`, `forged`, ...).
    pub reason: String,
    /// When it was signed.
    pub at: Timestamp,
    /// The answering agency's signing key.
    pub signer_key: PublicKey,
}

/// How a verified [`MailAck`] relates to the hand-over it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckFit {
    /// It names this item, the handing agency and the answering one: evidence.
    Exact,
    /// A refusal naming neither the item nor the handing agency (the answering node
    /// could not decode the item or did not know who handed it): a refusal, but no
    /// evidence about this item.
    Anonymous,
    /// It names another item, another agency, or claims custody without naming them
    /// all: a protocol failure of the answering node.
    Mismatch,
}

/// The next hop's answer to a `MailRequest`: its signed [`HandoverBody`]. `accepted`
/// and `reason` are what the signed body says ([`MailAck::verify`] checks that they
/// still do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailAck {
    /// It took custody.
    pub accepted: bool,
    /// Why not (a short code), or how (`ok`, `seen`, `duplicate`).
    pub reason: String,
    body: HandoverBody,
    body_bytes: Bytes,
    signature: Signature,
}

impl MailAck {
    /// The answering agency `to_hop` signs its answer to `item` (`None`: it did not
    /// decode) handed by `from_hop` (`None`: not known), at `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        item: Option<&MailItem>,
        from_hop: Option<&AgencyCode>,
        to_hop: &AgencyCode,
        accepted: bool,
        reason: &str,
        at: Timestamp,
        key: &SecretKey,
    ) -> Self {
        Self::sign_body(
            HandoverBody {
                message_id: item.map(MailItem::message_id),
                item: item.map(|i| i.kind_str().to_owned()).unwrap_or_default(),
                item_digest: item.map(MailItem::identity_digest),
                hops: item.map(MailItem::hops),
                addressee: item.map(|i| i.addressee().clone()),
                from_hop: from_hop.cloned(),
                to_hop: to_hop.clone(),
                accepted,
                reason: reason.to_owned(),
                at,
                signer_key: key.public_key(),
            },
            key,
        )
    }

    /// Signs `body` as it is (its `signer_key` set to `key`'s; a reason over
    /// [`MAX_ACK_REASON_LEN`] or not ASCII becomes `other`).
    pub fn sign_body(mut body: HandoverBody, key: &SecretKey) -> Self {
        if body.reason.len() > MAX_ACK_REASON_LEN || !body.reason.is_ascii() {
            body.reason = "other".into();
        }
        body.signer_key = key.public_key();
        let body_bytes = Bytes::from(
            pb::HandoverBody {
                message_id: body
                    .message_id
                    .map(|m| Bytes::copy_from_slice(m.as_bytes()))
                    .unwrap_or_default(),
                item: body.item.clone(),
                item_digest: body
                    .item_digest
                    .map(|d| Bytes::copy_from_slice(&d))
                    .unwrap_or_default(),
                from_hop: body
                    .from_hop
                    .as_ref()
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_default(),
                to_hop: body.to_hop.as_str().to_owned(),
                accepted: body.accepted,
                reason: body.reason.clone(),
                at: body.at.as_millis(),
                signer_key: Bytes::copy_from_slice(body.signer_key.as_bytes()),
                hops: body.hops,
                addressee: body.addressee.as_ref().map(|a| a.as_str().to_owned()),
            }
            .encode_to_vec(),
        );
        let signature = key.sign(context::HANDOVER, &body_bytes);
        Self {
            accepted: body.accepted,
            reason: body.reason.clone(),
            body,
            body_bytes,
            signature,
        }
    }

    /// The `MailResponse` frame bytes.
    pub fn encode(&self) -> Vec<u8> {
        pb::MailResponse {
            body: self.body_bytes.clone(),
            signature: Bytes::copy_from_slice(self.signature.as_bytes()),
        }
        .encode_to_vec()
    }

    /// Decodes a `MailResponse` frame (structure and limits; see [`MailAck::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MailError> {
        if bytes.len() > MAX_ACK_BYTES {
            return Err(MailError::TooLarge {
                what: "mail response",
                size: bytes.len(),
                limit: MAX_ACK_BYTES,
            });
        }
        let r = pb::MailResponse::decode(bytes)
            .map_err(|e| MailError::malformed("mail response", e))?;
        let b = pb::HandoverBody::decode(r.body.as_ref())
            .map_err(|e| MailError::malformed("hand-over body", e))?;
        if b.reason.len() > MAX_ACK_REASON_LEN || !b.reason.is_ascii() {
            return Err(MailError::malformed(
                "reason",
                format!("over {MAX_ACK_REASON_LEN} bytes or not ASCII"),
            ));
        }
        if !matches!(b.item.as_str(), "" | "message" | "receipt") {
            return Err(MailError::malformed("item", "not message or receipt"));
        }
        let message_id = if b.message_id.is_empty() {
            None
        } else {
            Some(
                MessageId::from_slice(&b.message_id)
                    .map_err(|e| MailError::malformed("message_id", e))?,
            )
        };
        let item_digest = if b.item_digest.is_empty() {
            None
        } else {
            Some(
                <[u8; 32]>::try_from(b.item_digest.as_ref())
                    .map_err(|_| MailError::malformed("item_digest", "must be 32 bytes"))?,
            )
        };
        let from_hop = if b.from_hop.is_empty() {
            None
        } else {
            Some(AgencyCode::new(b.from_hop).map_err(|e| MailError::malformed("from_hop", e))?)
        };
        let addressee = b
            .addressee
            .map(|a| AgencyCode::new(a).map_err(|e| MailError::malformed("addressee", e)))
            .transpose()?;
        let body = HandoverBody {
            message_id,
            item: b.item,
            item_digest,
            hops: b.hops,
            addressee,
            from_hop,
            to_hop: AgencyCode::new(b.to_hop).map_err(|e| MailError::malformed("to_hop", e))?,
            accepted: b.accepted,
            reason: b.reason,
            at: Timestamp(b.at),
            signer_key: PublicKey::from_bytes(&b.signer_key)
                .map_err(|e| MailError::malformed("signer_key", e))?,
        };
        let signature = Signature::from_slice(&r.signature)
            .map_err(|e| MailError::malformed("signature", e))?;
        Ok(Self {
            accepted: body.accepted,
            reason: body.reason.clone(),
            body,
            body_bytes: r.body,
            signature,
        })
    }

    /// What the answering agency signed.
    pub fn body(&self) -> &HandoverBody {
        &self.body
    }

    /// The frame as lower-case hex (the audit log's evidence).
    pub fn to_hex(&self) -> String {
        hex::encode(self.encode())
    }

    /// Decodes [`MailAck::to_hex`]'s output.
    pub fn from_hex(s: &str) -> Result<Self, MailError> {
        Self::decode(&bounded_hex(s, "mail response", MAX_ACK_BYTES)?)
    }

    /// Checks that `signer` signed it: the signature in the `wlnode/mail-handover/v1`
    /// context, `to_hop` is `signer`, the key was one of `signer`'s signing keys at the
    /// signed time and is not revoked, and `accepted`/`reason` are what was signed.
    /// Where the ack fits is [`MailAck::fit`]'s question; its time against a clock is
    /// the caller's.
    pub fn verify(&self, roster: &Roster, signer: &AgencyCode) -> Result<(), MailError> {
        let b = &self.body;
        if b.to_hop != *signer {
            return Err(MailError::malformed(
                "to_hop",
                format!("names {}, the answer came from {signer}", b.to_hop),
            ));
        }
        if self.accepted != b.accepted || self.reason != b.reason {
            return Err(MailError::BadSignature);
        }
        b.signer_key
            .verify(context::HANDOVER, &self.body_bytes, &self.signature)
            .map_err(|_| MailError::BadSignature)?;
        roster
            .check_signer(&b.to_hop, &b.signer_key, b.at)
            .map_err(MailError::Signer)?;
        refuse_revoked(roster, &b.to_hop, &b.signer_key)?;
        Ok(())
    }

    /// [`MailAck::verify`] for an auditor reading it later (review s31-mail M4): a
    /// key revoked since still verifies if the ack's signed time is before the
    /// revocation; returns the revocation time then, so the caller can ask for
    /// independent proof that the ack existed before it (a checkpoint signed before
    /// the revocation that covers the event carrying it). `Ok(None)`: not revoked.
    pub fn verify_as_evidence(
        &self,
        roster: &Roster,
        signer: &AgencyCode,
    ) -> Result<Option<Timestamp>, MailError> {
        let b = &self.body;
        if b.to_hop != *signer {
            return Err(MailError::malformed(
                "to_hop",
                format!("names {}, the answer came from {signer}", b.to_hop),
            ));
        }
        if self.accepted != b.accepted || self.reason != b.reason {
            return Err(MailError::BadSignature);
        }
        b.signer_key
            .verify(context::HANDOVER, &self.body_bytes, &self.signature)
            .map_err(|_| MailError::BadSignature)?;
        let member = roster
            .check_signer(&b.to_hop, &b.signer_key, b.at)
            .map_err(MailError::Signer)?;
        Ok(member
            .revoked
            .iter()
            .find(|r| r.key == b.signer_key)
            .map(|r| r.revoked_at))
    }

    /// How this ack relates to handing `item` from `from_hop` (see [`AckFit`]). On
    /// `/wlnode/mail/5` an answer naming the item signs its addressee: one that
    /// names another, or none, is a `Mismatch` (review s33-mail H3: a relay signed
    /// any addressee in its custody ack to steer the audit, and nobody checked it).
    pub fn fit(&self, item: &MailItem, from_hop: &AgencyCode) -> AckFit {
        match self.fit_fields(
            &item.message_id(),
            item.kind_str(),
            Some(&item.identity_digest()),
            Some(item.hops()),
            from_hop,
        ) {
            AckFit::Exact if self.body.addressee.as_ref() != Some(item.addressee()) => {
                AckFit::Mismatch
            }
            fit => fit,
        }
    }

    /// [`MailAck::fit`] from an audit event's fields (no digest or hop count there:
    /// `None` leaves them unchecked).
    pub fn fit_fields(
        &self,
        message_id: &MessageId,
        item: &str,
        digest: Option<&[u8; 32]>,
        hops: Option<u32>,
        from_hop: &AgencyCode,
    ) -> AckFit {
        let b = &self.body;
        let exact = b.message_id.as_ref() == Some(message_id)
            && b.item == item
            && b.from_hop.as_ref() == Some(from_hop)
            && match (digest, &b.item_digest) {
                (Some(d), Some(s)) => d == s,
                (Some(_), None) => false,
                (None, _) => true,
            }
            && hops.is_none_or(|h| b.hops == Some(h));
        if exact {
            AckFit::Exact
        } else if !b.accepted
            && (b.message_id.is_none() || b.from_hop.is_none())
            && b.message_id.as_ref().is_none_or(|m| m == message_id)
            && b.from_hop.as_ref().is_none_or(|f| f == from_hop)
        {
            AckFit::Anonymous
        } else {
            AckFit::Mismatch
        }
    }
}

/// Largest encoded `MailOffer` (a signed offer; the audit log keeps it as hex).
pub const MAX_OFFER_BYTES: usize = 512;

/// What the handing agency signs when it offers an item to a neighbour (the
/// `wlnode/mail-offer/v1` context, `/wlnode/mail/5`; review s32-mail H1): it held this
/// copy, at this hop count, and chose this neighbour as its route, at this time. No
/// content: the routing facts a relay may read anyway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferBody {
    /// The item's message id.
    pub message_id: MessageId,
    /// `message` or `receipt`.
    pub item: String,
    /// The item's [`MailItem::identity_digest`].
    pub item_digest: [u8; 32],
    /// The item's hop count as handed.
    pub hops: u32,
    /// The handing agency, which signs.
    pub from_hop: AgencyCode,
    /// The neighbour it is offered to.
    pub to_hop: AgencyCode,
    /// When it was signed.
    pub at: Timestamp,
    /// The handing agency's signing key.
    pub signer_key: PublicKey,
}

/// A signed [`OfferBody`]: sent with the item in the `MailRequest`, and kept by the
/// neighbour in its audit log (`offered` events) whether or not it takes the item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoverOffer {
    body: OfferBody,
    body_bytes: Bytes,
    signature: Signature,
}

impl HandoverOffer {
    /// `from_hop` offers `item` to `to_hop` at `at`, signed with `key`.
    pub fn sign(
        item: &MailItem,
        from_hop: &AgencyCode,
        to_hop: &AgencyCode,
        at: Timestamp,
        key: &SecretKey,
    ) -> Self {
        Self::sign_body(
            OfferBody {
                message_id: item.message_id(),
                item: item.kind_str().to_owned(),
                item_digest: item.identity_digest(),
                hops: item.hops(),
                from_hop: from_hop.clone(),
                to_hop: to_hop.clone(),
                at,
                signer_key: key.public_key(),
            },
            key,
        )
    }

    /// Signs `body` as it is (its `signer_key` set to `key`'s).
    pub fn sign_body(mut body: OfferBody, key: &SecretKey) -> Self {
        body.signer_key = key.public_key();
        let body_bytes = Bytes::from(
            pb::OfferBody {
                message_id: Bytes::copy_from_slice(body.message_id.as_bytes()),
                item: body.item.clone(),
                item_digest: Bytes::copy_from_slice(&body.item_digest),
                hops: body.hops,
                from_hop: body.from_hop.as_str().to_owned(),
                to_hop: body.to_hop.as_str().to_owned(),
                at: body.at.as_millis(),
                signer_key: Bytes::copy_from_slice(body.signer_key.as_bytes()),
            }
            .encode_to_vec(),
        );
        let signature = key.sign(context::HANDOVER_OFFER, &body_bytes);
        Self {
            body,
            body_bytes,
            signature,
        }
    }

    fn to_pb(&self) -> pb::MailOffer {
        pb::MailOffer {
            body: self.body_bytes.clone(),
            signature: Bytes::copy_from_slice(self.signature.as_bytes()),
        }
    }

    fn from_pb(o: pb::MailOffer) -> Result<Self, MailError> {
        if o.body.len() + o.signature.len() > MAX_OFFER_BYTES {
            return Err(MailError::TooLarge {
                what: "mail offer",
                size: o.body.len() + o.signature.len(),
                limit: MAX_OFFER_BYTES,
            });
        }
        let b = pb::OfferBody::decode(o.body.as_ref())
            .map_err(|e| MailError::malformed("offer body", e))?;
        if !matches!(b.item.as_str(), "message" | "receipt") {
            return Err(MailError::malformed("item", "not message or receipt"));
        }
        let body = OfferBody {
            message_id: MessageId::from_slice(&b.message_id)
                .map_err(|e| MailError::malformed("message_id", e))?,
            item: b.item,
            item_digest: <[u8; 32]>::try_from(b.item_digest.as_ref())
                .map_err(|_| MailError::malformed("item_digest", "must be 32 bytes"))?,
            hops: b.hops,
            from_hop: AgencyCode::new(b.from_hop)
                .map_err(|e| MailError::malformed("from_hop", e))?,
            to_hop: AgencyCode::new(b.to_hop).map_err(|e| MailError::malformed("to_hop", e))?,
            at: Timestamp(b.at),
            signer_key: PublicKey::from_bytes(&b.signer_key)
                .map_err(|e| MailError::malformed("signer_key", e))?,
        };
        let signature = Signature::from_slice(&o.signature)
            .map_err(|e| MailError::malformed("signature", e))?;
        Ok(Self {
            body,
            body_bytes: o.body,
            signature,
        })
    }

    /// The `MailOffer` bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// Decodes [`HandoverOffer::encode`]'s output (structure and limits).
    pub fn decode(bytes: &[u8]) -> Result<Self, MailError> {
        if bytes.len() > MAX_OFFER_BYTES {
            return Err(MailError::TooLarge {
                what: "mail offer",
                size: bytes.len(),
                limit: MAX_OFFER_BYTES,
            });
        }
        let o = pb::MailOffer::decode(bytes).map_err(|e| MailError::malformed("mail offer", e))?;
        Self::from_pb(o)
    }

    /// What the handing agency signed.
    pub fn body(&self) -> &OfferBody {
        &self.body
    }

    /// The offer as lower-case hex (the audit log's evidence).
    pub fn to_hex(&self) -> String {
        hex::encode(self.encode())
    }

    /// Decodes [`HandoverOffer::to_hex`]'s output.
    pub fn from_hex(s: &str) -> Result<Self, MailError> {
        Self::decode(&bounded_hex(s, "mail offer", MAX_OFFER_BYTES)?)
    }

    fn check_signature(&self, signer: &AgencyCode) -> Result<(), MailError> {
        let b = &self.body;
        if b.from_hop != *signer {
            return Err(MailError::malformed(
                "from_hop",
                format!("names {}, the offer came from {signer}", b.from_hop),
            ));
        }
        b.signer_key
            .verify(context::HANDOVER_OFFER, &self.body_bytes, &self.signature)
            .map_err(|_| MailError::BadSignature)
    }

    /// Checks that `signer` signed it: the signature in the `wlnode/mail-offer/v1`
    /// context, `from_hop` is `signer`, the key was one of `signer`'s signing keys at
    /// the signed time and is not revoked. Whether it offers this item to us is
    /// [`HandoverOffer::fits`]'s question; its time against a clock is the caller's.
    pub fn verify(&self, roster: &Roster, signer: &AgencyCode) -> Result<(), MailError> {
        self.check_signature(signer)?;
        let b = &self.body;
        roster
            .check_signer(&b.from_hop, &b.signer_key, b.at)
            .map_err(MailError::Signer)?;
        refuse_revoked(roster, &b.from_hop, &b.signer_key)?;
        Ok(())
    }

    /// [`HandoverOffer::verify`] for an auditor reading it later: a key revoked since
    /// still verifies if the signed time is before the revocation, and the revocation
    /// time is returned so the caller can ask for independent proof of its age
    /// (`Ok(None)`: not revoked).
    pub fn verify_as_evidence(
        &self,
        roster: &Roster,
        signer: &AgencyCode,
    ) -> Result<Option<Timestamp>, MailError> {
        self.check_signature(signer)?;
        let b = &self.body;
        let member = roster
            .check_signer(&b.from_hop, &b.signer_key, b.at)
            .map_err(MailError::Signer)?;
        Ok(member
            .revoked
            .iter()
            .find(|r| r.key == b.signer_key)
            .map(|r| r.revoked_at))
    }

    /// Whether it offers exactly `item` (id, kind, digest and hop count) to `to_hop`.
    pub fn fits(&self, item: &MailItem, to_hop: &AgencyCode) -> bool {
        let b = &self.body;
        b.message_id == item.message_id()
            && b.item == item.kind_str()
            && b.item_digest == item.identity_digest()
            && b.hops == item.hops()
            && b.to_hop == *to_hop
    }
}

/// Decodes audit-log hex evidence of at most `limit` bytes, refusing a longer string
/// before decoding it (the hex form of a signed ack or offer).
fn bounded_hex(s: &str, what: &'static str, limit: usize) -> Result<Vec<u8>, MailError> {
    if s.len() > 2 * limit {
        return Err(MailError::TooLarge {
            what,
            size: s.len() / 2,
            limit,
        });
    }
    hex::decode(s).map_err(|e| MailError::malformed(what, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Review s38 M1: a sender may write its signed header with extra protobuf
    /// fields (decoders skip them; the envelope verifies and opens, as before). Such
    /// header bytes carry anything the sender chose, so they are never handed out to
    /// be logged (`identity` is `None`) and an auditor refuses them as a copy's
    /// identity; a canonical header's bytes are handed out and read back.
    #[test]
    fn a_header_with_extra_fields_is_never_handed_out_to_be_logged() {
        let sender = SecretKey::from_seed(&[1; 32]);
        let rk = crate::seal::EncryptionSecretKey::generate().unwrap();
        let body = pad(b"hello");
        let header = MailHeader {
            id: MessageId([7; 16]),
            from: AgencyCode::new("AA-X").unwrap(),
            to: AgencyCode::new("BB-X").unwrap(),
            kind: "consult.request".into(),
            created_at: Timestamp(1_780_000_000_000),
            expires_at: Timestamp(1_780_000_000_000 + 86_400_000),
            size: (body.len() + TAG_LEN) as u32,
            sender_key: sender.public_key(),
            recipient_key: rk.public_key().unwrap(),
        };
        let seal_with = |hb: Vec<u8>| {
            let (enc, ct) = crate::seal::seal(
                &rk.public_key().unwrap(),
                &seal_info(&hb, BodyFormat::Padded),
                &hb,
                &body,
            )
            .unwrap();
            let sig = sender.sign(context::MAIL, &signed_bytes(&hb, &enc, &ct));
            let wire = pb::MailEnvelope {
                header: Bytes::from(hb),
                signature: Bytes::copy_from_slice(sig.as_bytes()),
                enc: Bytes::copy_from_slice(&enc),
                ciphertext: Bytes::from(ct),
                hops: 0,
            }
            .encode_to_vec();
            Envelope::decode(&wire).unwrap()
        };
        let canonical = seal_with(header.to_pb().encode_to_vec());
        let bytes = canonical
            .identity()
            .expect("a canonical header is handed out");
        assert_eq!(CopyIdentity::parse(&bytes).unwrap().header, header);
        let mut stuffed = header.to_pb().encode_to_vec();
        let secret = b"SECRET-PLAINTEXT: the transaction details in clear";
        stuffed.push((15 << 3) | 2);
        stuffed.push(secret.len() as u8);
        stuffed.extend_from_slice(secret);
        let env = seal_with(stuffed);
        assert_eq!(env.header(), &header, "the extra field is skipped");
        assert_eq!(env.open(&rk).unwrap(), b"hello");
        assert_eq!(env.identity(), None);
        let raw = env.identity_bytes();
        assert!(raw.windows(16).any(|w| w == b"SECRET-PLAINTEXT"));
        assert!(matches!(
            CopyIdentity::parse(&raw),
            Err(MailError::Malformed { .. })
        ));
    }
}
