//! Signed records with selective disclosure.
//!
//! A record is one version of one watchlist entry. The origin signs the canonical bytes
//! of a [`RecordHeader`]; the header holds clear metadata that policies need and one
//! salted SHA-256 commitment per content field. Fields travel as [`Disclosure`]s, so a
//! relay can withhold some of them and every receiver can still check the origin's
//! signature over everything it did receive. `record_id = SHA-256(header bytes)` is
//! the same for every copy, whatever it discloses.
//!
//! Type states: a [`Record`] has a canonical header and disclosures that match their
//! digests; a [`VerifiedRecord`] additionally has a signature that verifies under the
//! header's signer key. Whether that key was valid for the origin is the roster's
//! question (`crate::roster`), not this module's.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

pub use bytestring::ByteString;
use prost::Message;
use unicode_normalization::{UnicodeNormalization, is_nfc};
use wlnode_proto::Bytes;
use wlnode_proto::v1 as pb;

use crate::keys::{PublicKey, SecretKey, Signature, context};
use crate::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryDraft, EntryId, FieldTag, Identifier,
    InvalidValue, MAX_FIELDS, MAX_LONG_TEXT, MAX_SHORT_TEXT, Reason, RecordId, Status, SubjectKind,
    check_text,
};
use crate::time::{Date, PartialDate, Timestamp};

/// The highest version a record may carry. Versions are per entry and grow by one per
/// amendment, so this leaves room for four billion; a record above it is refused on
/// receipt, and amending at it is an error, never an overflow.
pub const MAX_VERSION: u64 = u32::MAX as u64;

/// Header format of a record without field scopes (every wlnode reads it).
pub const HEADER_FORMAT: u32 = 1;
/// Header format of a record with field scopes: a wlnode that cannot enforce them
/// refuses the record (as an unknown format) rather than pass scoped fields on.
pub const HEADER_FORMAT_SCOPED: u32 = 2;

/// The format a header with `distribution` is written in.
pub fn header_format(distribution: &Distribution) -> u32 {
    if distribution.fields.is_empty() {
        HEADER_FORMAT
    } else {
        HEADER_FORMAT_SCOPED
    }
}
/// Length of each field's salt.
pub const SALT_LEN: usize = 16;
/// Largest canonical header accepted.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest encoded record (header, signature and all disclosures) accepted.
pub const MAX_RECORD_BYTES: usize = 2 * 1024 * 1024;

/// Why a record or one of its parts was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Bytes are not valid protobuf for the expected message.
    #[error("not a valid {what}: {reason}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Input larger than the hard limit.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header decodes but is not in canonical form (re-encoding differs).
    #[error("header bytes are not canonical")]
    NonCanonical,
    /// A header value breaks the schema rules.
    #[error("header field {0}")]
    Invalid(InvalidValue),
    /// Unsupported header format number.
    #[error("unsupported header format {0}")]
    Format(u32),
    /// A disclosure is structurally bad.
    #[error("disclosure {index}: {reason}")]
    Disclosure {
        /// Field index.
        index: u32,
        /// What is wrong.
        reason: String,
    },
    /// A disclosure does not match the signed digest.
    #[error("disclosure {index} does not match its signed digest")]
    DigestMismatch {
        /// Field index.
        index: u32,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// Two copies that should be of the same record are not.
    #[error("cannot merge copies of different records {0} and {1}")]
    DifferentRecords(RecordId, RecordId),
    /// The entry draft is invalid.
    #[error("{0}")]
    Draft(InvalidValue),
    /// The system RNG failed while making salts.
    #[error("random number generator failed: {0}")]
    Rng(String),
}

impl From<InvalidValue> for RecordError {
    fn from(v: InvalidValue) -> Self {
        Self::Invalid(v)
    }
}

/// One salted commitment in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldCommitment {
    /// What kind of field.
    pub tag: FieldTag,
    /// `SHA-256(salt || tag byte || canonical value)`.
    pub digest: [u8; 32],
}

/// The signed part of a record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// Entry this record is a version of.
    pub entry_id: EntryId,
    /// Agency that signed it.
    pub origin: AgencyCode,
    /// Version number, from 1, strictly increasing per entry.
    pub version: u64,
    /// When the origin issued it.
    pub issued_at: Timestamp,
    /// Listed or delisted.
    pub status: Status,
    /// Who may receive it.
    pub distribution: Distribution,
    /// Review date.
    pub review_by: Option<Date>,
    /// Control-list categories.
    pub categories: BTreeSet<Category>,
    /// Listing reason.
    pub reason: Reason,
    /// Kind of subject.
    pub subject_kind: SubjectKind,
    /// Country of the subject.
    pub subject_country: Option<CountryCode>,
    /// One commitment per content field; the first is the primary name.
    pub fields: Vec<FieldCommitment>,
    /// The origin key that signed it.
    pub signer_key: PublicKey,
    /// What the origin asks of an agency that hits the entry (`None`: nothing; the
    /// field is then absent from the bytes, as in every record made before it).
    pub on_hit: Option<crate::model::OnHit>,
}

impl RecordHeader {
    /// Checks the rules that the protobuf schema cannot express.
    pub fn validate(&self) -> Result<(), RecordError> {
        if self.version == 0 {
            return Err(InvalidValue::new("version", "must be at least 1").into());
        }
        if self.issued_at.as_millis() == 0 {
            return Err(InvalidValue::new("issued_at", "must be set").into());
        }
        self.distribution.validate().map_err(RecordError::Invalid)?;
        if self.fields.is_empty() || self.fields.len() > MAX_FIELDS {
            return Err(InvalidValue::new(
                "fields",
                format!(
                    "must hold 1 to {MAX_FIELDS} commitments, got {}",
                    self.fields.len()
                ),
            )
            .into());
        }
        let mut counts = [0usize; 256];
        for f in &self.fields {
            if let Some(c) = counts.get_mut(usize::from(f.tag.tag_byte())) {
                *c += 1;
            }
        }
        let count = |t: FieldTag| counts.get(usize::from(t.tag_byte())).copied().unwrap_or(0);
        if self.fields.first().map(|f| f.tag) != Some(FieldTag::Name) || count(FieldTag::Name) != 1
        {
            return Err(InvalidValue::new(
                "fields",
                "the first and only name field must come first",
            )
            .into());
        }
        for tag in FieldTag::ALL {
            if count(*tag) > 1 && !tag.repeatable() {
                return Err(
                    InvalidValue::new("fields", format!("{tag} may appear only once")).into(),
                );
            }
        }
        if count(FieldTag::WithdrawalReason) > 0 && self.status != Status::Withdrawn {
            return Err(InvalidValue::new(
                "fields",
                "withdrawal_reason is only allowed on withdrawn records",
            )
            .into());
        }
        Ok(())
    }

    /// The canonical encoding: the protobuf encoding of a validated header, fields in
    /// number order, defaults omitted, sets sorted.
    pub fn encode(&self) -> Vec<u8> {
        pb::RecordHeader::from(self).encode_to_vec()
    }

    /// Decodes header bytes, refusing anything that is not exactly the canonical
    /// encoding of a valid header (unknown fields, reordering, explicit defaults,
    /// non-minimal varints, unsorted sets). One pass, no re-encoding: see
    /// `crate::canonical`.
    pub fn decode_canonical(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_HEADER_BYTES {
            return Err(RecordError::TooLarge {
                what: "header",
                len: bytes.len(),
                max: MAX_HEADER_BYTES,
            });
        }
        crate::canonical::decode_header(bytes)
    }

    /// The previous decoder, kept as the oracle for [`Self::decode_canonical`]:
    /// prost decode, `TryFrom`, `validate`, then re-encode and compare the bytes. It
    /// accepts exactly the same byte strings, about three times slower. Not for use
    /// outside tests and fuzzing.
    #[doc(hidden)]
    pub fn decode_canonical_reference(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > MAX_HEADER_BYTES {
            return Err(RecordError::TooLarge {
                what: "header",
                len: bytes.len(),
                max: MAX_HEADER_BYTES,
            });
        }
        let msg = pb::RecordHeader::decode(bytes).map_err(|e| RecordError::Decode {
            what: "record header",
            reason: e.to_string(),
        })?;
        let header = Self::try_from(msg)?;
        header.validate()?;
        if header.encode() != bytes {
            return Err(RecordError::NonCanonical);
        }
        Ok(header)
    }
}

/// A revealed content field.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Disclosure {
    /// Index into the header's `fields`.
    pub index: u32,
    /// The field's salt.
    pub salt: [u8; SALT_LEN],
    /// Canonical value (NFC, trimmed). Decoded records share it with the buffer they
    /// were decoded from, so a disclosure costs no allocation or copy.
    pub value: ByteString,
}

impl fmt::Debug for Disclosure {
    // Values are watchlist content: keep them out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Disclosure({}, {} bytes)", self.index, self.value.len())
    }
}

/// `SHA-256(salt || tag byte || value)`.
pub fn field_digest(salt: &[u8; SALT_LEN], tag: FieldTag, value: &[u8]) -> [u8; 32] {
    // One buffer, one call: field values are short, and a single-shot digest avoids
    // the incremental context's bookkeeping (`ring`), or fits one padded block
    // (`sha2`, up to 55 bytes).
    let mut buf = [0u8; 128];
    let len = SALT_LEN + 1 + value.len();
    if let Some(dst) = buf.get_mut(..len) {
        let (s, rest) = dst.split_at_mut(SALT_LEN);
        s.copy_from_slice(salt);
        if let Some((t, v)) = rest.split_first_mut() {
            *t = tag.tag_byte();
            v.copy_from_slice(value);
        }
        return crate::sha256::digest(dst);
    }
    let mut h = crate::sha256::Hasher::new();
    h.update(salt).update(&[tag.tag_byte()]).update(value);
    h.finish()
}

/// Canonical form of a text value: NFC, trimmed.
pub fn canonical_text(s: &str) -> String {
    let t = s.trim();
    // Most values are already NFC (ASCII always is); skip the rewrite then.
    if unicode_normalization::is_nfc_quick(t.chars()) == unicode_normalization::IsNormalized::Yes {
        t.to_owned()
    } else {
        t.nfc().collect()
    }
}

/// Checks that `value` is a canonical, valid value for `tag`.
fn check_value(tag: FieldTag, value: &str) -> Result<(), String> {
    // ASCII text is always NFC; the byte check is much cheaper than the NFC scan.
    if value.trim() != value || !(value.is_ascii() || is_nfc(value)) {
        return Err("value is not canonical (NFC, trimmed)".into());
    }
    let r = match tag {
        FieldTag::Name | FieldTag::Alias => check_text(value, MAX_SHORT_TEXT),
        FieldTag::Identifier => Identifier::check_canonical(value),
        FieldTag::BirthDate => PartialDate::parse(value)
            .map(|_| ())
            .map_err(|e| InvalidValue::new("", e.to_string())),
        FieldTag::Nationality => CountryCode::check(value),
        FieldTag::Address
        | FieldTag::LegalBasis
        | FieldTag::Items
        | FieldTag::Remarks
        | FieldTag::Contact
        | FieldTag::WithdrawalReason => check_text(value, MAX_LONG_TEXT),
    };
    r.map_err(|e| format!("invalid {tag} value: {}", e.message))
}

/// A record whose header is canonical and whose disclosures match their digests; the
/// signature is not yet checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    id: RecordId,
    header_bytes: Bytes,
    header: RecordHeader,
    signature: Signature,
    /// Sorted by index, unique.
    disclosures: Vec<Disclosure>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("origin", &self.header.origin)
            .field("entry_id", &self.header.entry_id)
            .field("version", &self.header.version)
            .field("disclosed", &self.disclosures.len())
            .field("fields", &self.header.fields.len())
            .finish()
    }
}

impl Record {
    /// Assembles a record from its parts, checking the header's canonical form, each
    /// disclosure against its digest, and that disclosure indices are unique.
    pub fn from_parts(
        header_bytes: impl Into<Bytes>,
        signature: Signature,
        disclosures: Vec<Disclosure>,
    ) -> Result<Self, RecordError> {
        let header_bytes: Bytes = header_bytes.into();
        let header = RecordHeader::decode_canonical(&header_bytes)?;
        let id = RecordId(crate::sha256::digest(&header_bytes));
        let mut sorted = disclosures;
        if !sorted.is_sorted_by_key(|d| d.index) {
            sorted.sort_by_key(|d| d.index);
        }
        let mut last = None;
        for d in &sorted {
            let index = d.index;
            if last == Some(index) {
                return Err(RecordError::Disclosure {
                    index,
                    reason: "disclosed twice".into(),
                });
            }
            last = Some(index);
            let commitment = usize::try_from(index)
                .ok()
                .and_then(|i| header.fields.get(i))
                .ok_or_else(|| RecordError::Disclosure {
                    index,
                    reason: format!("no such field (the header has {})", header.fields.len()),
                })?;
            check_value(commitment.tag, &d.value)
                .map_err(|reason| RecordError::Disclosure { index, reason })?;
            if field_digest(&d.salt, commitment.tag, d.value.as_bytes()) != commitment.digest {
                return Err(RecordError::DigestMismatch { index });
            }
        }
        Ok(Self {
            id,
            header_bytes,
            header,
            signature,
            disclosures: sorted,
        })
    }

    /// `SHA-256(header bytes)`.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The decoded header.
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The header exactly as signed.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The header bytes as a cheaply clonable buffer.
    pub fn header_bytes_shared(&self) -> Bytes {
        self.header_bytes.clone()
    }

    /// The origin's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Disclosures held, sorted by field index.
    pub fn disclosures(&self) -> &[Disclosure] {
        &self.disclosures
    }

    /// The disclosure of field `index`, if this copy holds it.
    pub fn disclosure(&self, index: u32) -> Option<&Disclosure> {
        self.disclosures
            .binary_search_by_key(&index, |d| d.index)
            .ok()
            .and_then(|i| self.disclosures.get(i))
    }

    /// True when every committed field is disclosed.
    pub fn is_complete(&self) -> bool {
        self.disclosures.len() == self.header.fields.len()
    }

    /// Verifies the signature with `verify_strict`.
    pub fn verify(self) -> Result<VerifiedRecord, (Box<Self>, RecordError)> {
        match self
            .header
            .signer_key
            .verify(context::RECORD, &self.header_bytes, &self.signature)
        {
            Ok(()) => Ok(VerifiedRecord(self)),
            Err(_) => Err((Box::new(self), RecordError::BadSignature)),
        }
    }

    /// Encodes the record (header, signature, disclosures in index order).
    pub fn encode(&self) -> Vec<u8> {
        pb::Record::from(self).encode_to_vec()
    }

    /// Decodes and checks an encoded record (signature not checked).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode_bytes(Bytes::copy_from_slice(bytes))
    }

    /// [`Self::decode`] from a shared buffer: the header and the disclosure values are
    /// sliced from it without copying (salts are copied, 16 bytes each).
    pub fn decode_bytes(bytes: Bytes) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                what: "record",
                len: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        // The shape `encode` writes is parsed by hand; any other protobuf encoding of
        // the envelope goes through prost exactly as before.
        if let Some(env) = crate::canonical::record_envelope(&bytes) {
            let signature = Signature::from_slice(env.signature)
                .map_err(|e| RecordError::Invalid(InvalidValue::new("signature", e.to_string())))?;
            // `env.header` borrows from `bytes`, so `slice_ref` (zero-copy) cannot fail.
            return Self::from_parts(bytes.slice_ref(env.header), signature, env.disclosures);
        }
        Self::decode_bytes_reference(bytes)
    }

    /// The prost path of [`Self::decode_bytes`], kept as the oracle for its fast path.
    /// Not for use outside tests and fuzzing.
    #[doc(hidden)]
    pub fn decode_bytes_reference(bytes: Bytes) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge {
                what: "record",
                len: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let msg = pb::Record::decode(bytes).map_err(|e| RecordError::Decode {
            what: "record",
            reason: e.to_string(),
        })?;
        Self::try_from(msg)
    }

    /// Approximate encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.header_bytes.len()
            + 64
            + self
                .disclosures
                .iter()
                .map(|d| d.value.len() + SALT_LEN + 8)
                .sum::<usize>()
            + 8
    }

    /// The content this copy discloses; withheld fields are absent and listed.
    pub fn content(&self) -> DisclosedContent {
        let mut c = DisclosedContent::default();
        for (i, f) in self.header.fields.iter().enumerate() {
            let Some(d) = u32::try_from(i).ok().and_then(|i| self.disclosure(i)) else {
                c.withheld.push(f.tag);
                continue;
            };
            let v = String::from(&*d.value);
            match f.tag {
                FieldTag::Name => c.name = Some(v),
                FieldTag::Alias => c.aliases.push(v),
                FieldTag::Address => c.addresses.push(v),
                FieldTag::Identifier => {
                    if let Ok(id) = Identifier::parse_canonical(&v) {
                        c.identifiers.push(id);
                    }
                }
                FieldTag::BirthDate => c.birth_date = PartialDate::parse(&v).ok(),
                FieldTag::Nationality => c.nationality = CountryCode::new(v).ok(),
                FieldTag::LegalBasis => c.legal_basis = Some(v),
                FieldTag::Items => c.items = Some(v),
                FieldTag::Remarks => c.remarks = Some(v),
                FieldTag::Contact => c.contact = Some(v),
                FieldTag::WithdrawalReason => c.withdrawal_reason = Some(v),
            }
        }
        c
    }

    fn redacted(&self, withhold: &[FieldSelector]) -> (Self, Vec<u32>) {
        let mut out = self.clone();
        let mut removed = Vec::new();
        out.disclosures.retain(|d| {
            let index = &d.index;
            let Some(tag) = usize::try_from(*index)
                .ok()
                .and_then(|i| self.header.fields.get(i))
                .map(|f| f.tag)
            else {
                return false;
            };
            let drop = withhold.iter().any(|sel| sel.matches(tag, &d.value));
            if drop {
                removed.push(*index);
            }
            !drop
        });
        (out, removed)
    }
}

/// What a copy of a record discloses.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DisclosedContent {
    /// Primary name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Aliases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Identifiers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// Birth or incorporation date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<PartialDate>,
    /// Nationality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nationality: Option<CountryCode>,
    /// Legal basis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// Items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// Remarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    /// Contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Why the entry was withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// Tags of fields this copy does not disclose.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<FieldTag>,
}

/// A record whose signature verified under its header's signer key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedRecord(Record);

impl fmt::Debug for VerifiedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verified{:?}", self.0)
    }
}

impl Deref for VerifiedRecord {
    type Target = Record;
    fn deref(&self) -> &Record {
        &self.0
    }
}

impl VerifiedRecord {
    /// Re-wraps a record read back from this node's own store, where only verified
    /// records are ever written. Never use it on bytes from the network or a file.
    pub fn from_local_store(record: Record) -> Self {
        Self(record)
    }

    /// The inner record.
    pub fn into_inner(self) -> Record {
        self.0
    }

    /// A copy that withholds every field matching `withhold`; it verifies and keeps the
    /// `record_id`. Returns the indices removed.
    pub fn redact(&self, withhold: &[FieldSelector]) -> (Self, Vec<u32>) {
        let (r, removed) = self.0.redacted(withhold);
        (Self(r), removed)
    }

    /// Merges the disclosures of another copy of the same record (union). Returns how
    /// many fields were added.
    pub fn merge(&mut self, other: &Record) -> Result<usize, RecordError> {
        if other.id != self.0.id {
            return Err(RecordError::DifferentRecords(self.0.id, other.id));
        }
        let mut added = 0;
        for d in &other.disclosures {
            if let Err(pos) = self
                .0
                .disclosures
                .binary_search_by_key(&d.index, |x| x.index)
            {
                self.0.disclosures.insert(pos, d.clone());
                added += 1;
            }
        }
        Ok(added)
    }
}

/// Names a field, or a kind of identifier, to withhold: `identifiers`,
/// `identifiers.passport`, `addresses`, `birth_date`, `remarks`, ...
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldSelector {
    /// Every field with this tag.
    Tag(FieldTag),
    /// Identifiers of one type, e.g. `passport`.
    IdentifierType(String),
}

impl FieldSelector {
    /// Whether a field with `tag` and `value` is selected.
    pub fn matches(&self, tag: FieldTag, value: &str) -> bool {
        match self {
            Self::Tag(t) => *t == tag,
            Self::IdentifierType(kind) => {
                tag == FieldTag::Identifier && value.split_once(':').is_some_and(|(k, _)| k == kind)
            }
        }
    }

    /// Whether this selector withholds everything `other` does.
    pub fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (a, b) if a == b => true,
            (Self::Tag(FieldTag::Identifier), Self::IdentifierType(_)) => true,
            _ => false,
        }
    }
}

impl FromStr for FieldSelector {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if let Some(kind) = s.strip_prefix("identifiers.") {
            let id = Identifier {
                kind: kind.to_owned(),
                value: "x".into(),
            };
            id.validate().map_err(|_| {
                InvalidValue::new("withhold", format!("{s:?}: bad identifier type"))
            })?;
            return Ok(Self::IdentifierType(kind.to_owned()));
        }
        s.parse::<FieldTag>().map(Self::Tag).map_err(|_| {
            InvalidValue::new(
                "withhold",
                format!(
                    "{s:?} is not a field name; use one of: {}, or identifiers.TYPE",
                    FieldTag::ALL
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => f.write_str(t.as_str()),
            Self::IdentifierType(k) => write!(f, "identifiers.{k}"),
        }
    }
}

impl serde::Serialize for FieldSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for FieldSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|e: InvalidValue| serde::de::Error::custom(e.message))
    }
}

/// The non-content part of a new record, chosen by the origin node.
#[derive(Clone, Debug)]
pub struct RecordMeta {
    /// Entry this is a version of.
    pub entry_id: EntryId,
    /// This agency.
    pub origin: AgencyCode,
    /// 1 for a new entry, previous + 1 for an amendment or withdrawal.
    pub version: u64,
    /// Now.
    pub issued_at: Timestamp,
    /// Active, or withdrawn.
    pub status: Status,
    /// For a withdrawal: why.
    pub withdrawal_reason: Option<String>,
}

/// The content fields of a draft in canonical order and form.
pub fn draft_fields(
    draft: &EntryDraft,
    withdrawal_reason: Option<&str>,
) -> Vec<(FieldTag, String)> {
    let s = &draft.subject;
    let mut out = vec![(FieldTag::Name, canonical_text(&s.name))];
    out.extend(
        s.aliases
            .iter()
            .map(|a| (FieldTag::Alias, canonical_text(a))),
    );
    out.extend(
        s.addresses
            .iter()
            .map(|a| (FieldTag::Address, canonical_text(a))),
    );
    out.extend(s.identifiers.iter().map(|i| {
        (
            FieldTag::Identifier,
            canonical_text(&format!("{}:{}", i.kind, i.value.trim())),
        )
    }));
    if let Some(d) = s.birth_date {
        out.push((FieldTag::BirthDate, d.to_string()));
    }
    if let Some(n) = &s.nationality {
        out.push((FieldTag::Nationality, n.to_string()));
    }
    for (tag, v) in [
        (FieldTag::LegalBasis, &draft.legal_basis),
        (FieldTag::Items, &draft.items),
        (FieldTag::Remarks, &draft.remarks),
        (FieldTag::Contact, &draft.contact),
    ] {
        if let Some(v) = v {
            out.push((tag, canonical_text(v)));
        }
    }
    if let Some(r) = withdrawal_reason {
        out.push((FieldTag::WithdrawalReason, canonical_text(r)));
    }
    out
}

/// Builds and signs a record: a fresh 16-byte salt per field, the commitments in the
/// header, the header signed by `key`, every field disclosed.
pub fn build_record(
    meta: RecordMeta,
    draft: &EntryDraft,
    key: &SecretKey,
) -> Result<VerifiedRecord, RecordError> {
    draft.validate().map_err(RecordError::Draft)?;
    if meta.version == 0 || meta.version > MAX_VERSION {
        return Err(RecordError::Invalid(InvalidValue::new(
            "version",
            format!("must be 1 to {MAX_VERSION}, got {}", meta.version),
        )));
    }
    if meta.status == Status::Withdrawn {
        if let Some(r) = &meta.withdrawal_reason {
            check_text(r, MAX_LONG_TEXT).map_err(|e| RecordError::Draft(e.within("reason")))?;
        }
    } else if meta.withdrawal_reason.is_some() {
        return Err(RecordError::Draft(InvalidValue::new(
            "reason",
            "a withdrawal reason needs status withdrawn",
        )));
    }
    let fields = draft_fields(draft, meta.withdrawal_reason.as_deref());
    for (i, (tag, v)) in fields.iter().enumerate() {
        check_value(*tag, v).map_err(|reason| {
            RecordError::Draft(InvalidValue::new(format!("field[{i}]"), reason))
        })?;
    }
    let mut salts = vec![0u8; SALT_LEN * fields.len()];
    getrandom::fill(&mut salts).map_err(|e| RecordError::Rng(e.to_string()))?;
    let mut commitments = Vec::with_capacity(fields.len());
    let mut disclosures = Vec::with_capacity(fields.len());
    for ((i, (tag, value)), salt) in fields
        .into_iter()
        .enumerate()
        .zip(salts.chunks_exact(SALT_LEN))
    {
        let salt: [u8; SALT_LEN] = salt
            .try_into()
            .map_err(|_| RecordError::Rng("salt length".into()))?;
        commitments.push(FieldCommitment {
            tag,
            digest: field_digest(&salt, tag, value.as_bytes()),
        });
        disclosures.push(Disclosure {
            index: u32::try_from(i)
                .map_err(|_| RecordError::Draft(InvalidValue::new("fields", "too many")))?,
            salt,
            value: value.into(),
        });
    }
    let header = RecordHeader {
        entry_id: meta.entry_id,
        origin: meta.origin,
        version: meta.version,
        issued_at: meta.issued_at,
        status: meta.status,
        distribution: draft.distribution.clone(),
        review_by: draft.review_by,
        on_hit: draft.on_hit,
        categories: draft.categories.clone(),
        reason: draft.reason,
        subject_kind: draft.subject.kind,
        subject_country: draft.subject.country.clone(),
        fields: commitments,
        signer_key: key.public_key(),
    };
    header.validate()?;
    let header_bytes = Bytes::from(header.encode());
    if header_bytes.len() > MAX_HEADER_BYTES {
        return Err(RecordError::TooLarge {
            what: "header",
            len: header_bytes.len(),
            max: MAX_HEADER_BYTES,
        });
    }
    let signature = key.sign(context::RECORD, &header_bytes);
    let record = Record {
        id: RecordId(crate::sha256::digest(&header_bytes)),
        header_bytes,
        header,
        signature,
        disclosures,
    };
    Ok(VerifiedRecord(record))
}

/// A record that failed verification, with the reason.
#[derive(Debug)]
pub struct Rejected {
    /// The record as received.
    pub record: Box<Record>,
    /// Why it was refused.
    pub error: RecordError,
}

/// Below this many records the batch path is not worth its setup.
const MIN_BATCH: usize = 4;

/// Verifies many records at once with `ed25519_dalek::verify_batch`, falling back to
/// bisection and `verify_strict` to find the bad ones when a batch fails. Returns one
/// result per input, in input order.
///
/// Before batching, each signature is checked for what `verify_strict` would refuse
/// but the batch equation might not: a weak (small-order) signer key, and a signature
/// `R` that is not a canonical encoding of a point of large order. Residual gap: an `R`
/// with a torsion component passes the batch equation with probability 1/8; only the
/// holder of a valid signing key can produce one (see ARCHITECTURE.md).
pub fn verify_batch(records: Vec<Record>) -> Vec<Result<VerifiedRecord, Rejected>> {
    let mut out: Vec<Option<Result<VerifiedRecord, Rejected>>> = Vec::with_capacity(records.len());
    let mut pending: Vec<(usize, Record)> = Vec::with_capacity(records.len());
    for (i, r) in records.into_iter().enumerate() {
        out.push(None);
        if r.header.signer_key.dalek().is_weak() || !strict_r(&r.signature) {
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(Err(Rejected {
                    record: Box::new(r),
                    error: RecordError::BadSignature,
                }));
            }
        } else {
            pending.push((i, r));
        }
    }
    let mut verified = vec![false; pending.len()];
    bisect(&pending, 0, pending.len(), &mut verified);
    for ((i, r), ok) in pending.into_iter().zip(verified) {
        let res = if ok {
            Ok(VerifiedRecord(r))
        } else {
            Err(Rejected {
                record: Box::new(r),
                error: RecordError::BadSignature,
            })
        };
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(res);
        }
    }
    out.into_iter().flatten().collect()
}

/// The y-coordinates (little-endian, sign bit cleared) of the eight small-order points
/// of edwards25519: y = 0, 1, p - 1 and the two order-8 values. Same list as
/// libsodium's blacklist; the test below checks it against curve25519-dalek.
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Cheap pre-check of a signature's `R` for what `verify_strict` refuses and the batch
/// equation might let through: a non-canonical encoding (y >= p) or a small-order point.
/// Compares bytes only; no point decompression.
fn strict_r(sig: &Signature) -> bool {
    let Some(r) = sig.0.first_chunk::<32>() else {
        return false;
    };
    let mut y = *r;
    if let Some(last) = y.last_mut() {
        *last &= 0x7f;
    }
    // p = 2^255 - 19, little-endian; y must be < p.
    let y_ge_p = y.first().is_some_and(|b| *b >= 0xed)
        && y.get(1..31).is_some_and(|m| m.iter().all(|b| *b == 0xff))
        && y.last() == Some(&0x7f);
    !y_ge_p && !SMALL_ORDER_Y.contains(&y)
}

fn bisect(items: &[(usize, Record)], lo: usize, hi: usize, ok: &mut [bool]) {
    let Some(slice) = items.get(lo..hi) else {
        return;
    };
    if slice.is_empty() {
        return;
    }
    if slice.len() < MIN_BATCH {
        for (k, (_, r)) in slice.iter().enumerate() {
            if let Some(slot) = ok.get_mut(lo + k) {
                *slot = r
                    .header
                    .signer_key
                    .verify(context::RECORD, &r.header_bytes, &r.signature)
                    .is_ok();
            }
        }
        return;
    }
    let messages: Vec<Vec<u8>> = slice
        .iter()
        .map(|(_, r)| {
            let mut m = Vec::with_capacity(context::RECORD.len() + r.header_bytes.len());
            m.extend_from_slice(context::RECORD);
            m.extend_from_slice(&r.header_bytes);
            m
        })
        .collect();
    let msg_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let sigs: Vec<ed25519_dalek::Signature> = slice
        .iter()
        .map(|(_, r)| ed25519_dalek::Signature::from_bytes(&r.signature.0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = slice
        .iter()
        .map(|(_, r)| *r.header.signer_key.dalek())
        .collect();
    if ed25519_dalek::verify_batch(&msg_refs, &sigs, &keys).is_ok() {
        for slot in ok.get_mut(lo..hi).into_iter().flatten() {
            *slot = true;
        }
        return;
    }
    let mid = lo + slice.len() / 2;
    bisect(items, lo, mid, ok);
    bisect(items, mid, hi, ok);
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    fn slow_strict_r(r: [u8; 32]) -> bool {
        let c = CompressedEdwardsY(r);
        match c.decompress() {
            Some(p) => !p.is_small_order() && p.compress() == c,
            None => true, // not a point: the batch equation refuses it anyway
        }
    }

    /// Every value length, across the one-block limit of the `sha2` backend and the
    /// 128-byte buffer: `SHA-256(salt || tag || value)` as `ring` computes it.
    #[test]
    fn field_digest_is_sha256_of_salt_tag_value_at_every_length() {
        let salt = [0x5a; SALT_LEN];
        let value: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in 0..=value.len() {
            let v = value.get(..len).unwrap_or_default();
            let whole = [&salt[..], &[FieldTag::Alias.tag_byte()], v].concat();
            let want = crate::sha256::digest_with(crate::sha256::Backend::Ring, &whole);
            assert_eq!(field_digest(&salt, FieldTag::Alias, v), want, "len {len}");
        }
    }

    #[test]
    fn small_order_list_matches_dalek() {
        for y in SMALL_ORDER_Y {
            for sign in [0u8, 0x80] {
                let mut r = y;
                r[31] |= sign;
                if let Some(p) = CompressedEdwardsY(r).decompress() {
                    assert!(p.is_small_order(), "{}", hex::encode(r));
                }
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&r);
                assert!(!strict_r(&Signature(sig)));
            }
        }
    }

    #[test]
    fn cheap_check_agrees_with_decompression() {
        let key = SecretKey::from_seed(&[5; 32]);
        for i in 0u32..300 {
            let sig = key.sign(b"t", &i.to_le_bytes());
            let r: [u8; 32] = sig.0[..32].try_into().unwrap();
            assert!(strict_r(&sig));
            assert!(slow_strict_r(r));
        }
        // Every non-canonical y (p..2^255-1) is refused.
        for low in 0xedu8..=0xff {
            let mut r = [0xffu8; 32];
            r[0] = low;
            r[31] = 0x7f;
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            assert!(!strict_r(&Signature(sig)));
        }
    }
}
