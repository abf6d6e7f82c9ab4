//! Hand-written decoding of record wire bytes: the strict canonical decoder of the
//! signed header, and a fast path for the record envelope.
//!
//! Why it exists: speed, and canonical-by-construction. Record verification should
//! cost little more than the signature check itself, and decoding the header with
//! prost, converting it, re-encoding it and comparing the bytes cost more than the
//! SHA-256 work. The header decoder here makes one pass over the bytes and accepts
//! only the exact layout [`RecordHeader::encode`] writes: fields in number order, each
//! at most once (repeated fields contiguous), one-byte keys, minimal varints, no
//! explicit defaults, no unknown fields, no trailing bytes, and valid values. It
//! accepts exactly the byte strings that `prost` decode + `TryFrom` + `validate` +
//! re-encode-and-compare accepted (`decode_canonical_reference`, kept as the test
//! oracle; `crypto/tests/canonical.rs` checks the two agree).
//!
//! The envelope ([`Record`](crate::record::Record)) is not canonical: any protobuf
//! encoding of it is accepted, as prost decodes it. [`record_envelope`] recognises
//! the common shape [`Record::encode`](crate::record::Record::encode) writes and
//! returns `None` for anything else, so the caller falls back to prost; for the
//! inputs it accepts, the parse is unambiguous and equals prost's.
//!
//! `wlnode_proto` stays the only place prost types are defined; this module reads
//! protobuf wire bytes by hand and never defines message types.

use std::collections::BTreeSet;

use wlnode_proto::Bytes;

use crate::keys::PublicKey;
use crate::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryId, FieldScope, FieldScopes, FieldTag,
    GroupName, InvalidValue, MAX_FIELD_SCOPES, MAX_FIELDS, Reason, Recipient, Scope, Sensitivity,
    Status, SubjectKind,
};
use crate::record::{
    ByteString, Disclosure, FieldCommitment, FieldSelector, HEADER_FORMAT, HEADER_FORMAT_SCOPED,
    RecordError, RecordHeader, SALT_LEN, header_format,
};
use crate::time::{Date, Timestamp};

/// Wire type of varints.
const VARINT: u8 = 0;
/// Wire type of length-delimited fields.
const LEN: u8 = 2;
/// Encoded size of one canonical `FieldCommitment` entry: key, length, tag (2 bytes),
/// digest key, digest length, 32 bytes.
const COMMITMENT_BYTES: usize = 38;

fn malformed(reason: &'static str) -> RecordError {
    RecordError::Decode {
        what: "record header",
        reason: reason.into(),
    }
}

/// A cursor over protobuf wire bytes that only understands the canonical form.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// A varint of at most ten bytes in its shortest form.
    #[inline]
    fn varint(&mut self) -> Result<u64, RecordError> {
        // Keys, lengths, tags and indices are almost always one byte.
        if let Some((&b, rest)) = self.buf.split_first()
            && b < 0x80
        {
            self.buf = rest;
            return Ok(u64::from(b));
        }
        self.varint_long()
    }

    /// [`Self::varint`] when it is not a single byte.
    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().take(10).enumerate() {
            if i == 9 && b > 1 {
                return Err(malformed("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i > 0 && b == 0 {
                    return Err(RecordError::NonCanonical);
                }
                self.buf = self.buf.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        Err(malformed("truncated varint"))
    }

    /// Consumes the key of `field` (1..=15) with wire type `wire` if it comes next.
    /// Anything else is left in place: a later field, or bytes that the final
    /// emptiness check refuses (unknown, out-of-order or duplicated fields, wrong wire
    /// types, multi-byte keys).
    #[inline]
    fn key(&mut self, field: u8, wire: u8) -> bool {
        match self.buf.split_first() {
            Some((&k, rest)) if k == (field << 3) | wire => {
                self.buf = rest;
                true
            }
            _ => false,
        }
    }

    /// A length-delimited payload.
    #[inline]
    fn len_delimited(&mut self) -> Result<&'a [u8], RecordError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length overflows"))?;
        let (v, rest) = self
            .buf
            .split_at_checked(len)
            .ok_or_else(|| malformed("length runs past the end"))?;
        self.buf = rest;
        Ok(v)
    }

    /// Length-delimited field `field` if it comes next.
    #[inline]
    fn bytes(&mut self, field: u8) -> Result<Option<&'a [u8]>, RecordError> {
        if self.key(field, LEN) {
            self.len_delimited().map(Some)
        } else {
            Ok(None)
        }
    }

    /// String field `field` if it comes next; `""` when absent. An explicit empty
    /// string is not canonical (proto3 omits defaults).
    fn text(&mut self, field: u8) -> Result<&'a str, RecordError> {
        match self.bytes(field)? {
            None => Ok(""),
            Some([]) => Err(RecordError::NonCanonical),
            Some(b) => utf8(b),
        }
    }

    /// Varint field `field` if it comes next; 0 when absent. An explicit 0 is not
    /// canonical.
    #[inline]
    fn uint(&mut self, field: u8) -> Result<u64, RecordError> {
        if !self.key(field, VARINT) {
            return Ok(0);
        }
        match self.varint()? {
            0 => Err(RecordError::NonCanonical),
            v => Ok(v),
        }
    }

    /// Enum field `field`; 0 (refused by every `from_wire`) when absent or out of range.
    #[inline]
    fn enumeration(&mut self, field: u8) -> Result<i32, RecordError> {
        self.uint(field).map(|v| i32::try_from(v).unwrap_or(0))
    }

    /// Fails unless every byte was consumed.
    fn finish(&self) -> Result<(), RecordError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(RecordError::NonCanonical)
        }
    }
}

fn utf8(b: &[u8]) -> Result<&str, RecordError> {
    std::str::from_utf8(b).map_err(|_| malformed("string is not UTF-8"))
}

/// Reads a repeated string field: strictly increasing, each element parsed by `parse`.
fn sorted_strings<T: Ord>(
    r: &mut Reader<'_>,
    field: u8,
    name: &str,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<BTreeSet<T>, RecordError> {
    let mut out = BTreeSet::new();
    let mut last: Option<&str> = None;
    let mut i = 0usize;
    while let Some(b) = r.bytes(field)? {
        let s = utf8(b)?;
        let v = parse(s).map_err(|e| e.within(&format!("{name}[{i}]")))?;
        if last.is_some_and(|l| l >= s) {
            return Err(InvalidValue::new(name, "must be sorted and unique").into());
        }
        last = Some(s);
        out.insert(v);
        i += 1;
    }
    Ok(out)
}

fn distribution(bytes: &[u8]) -> Result<Distribution, RecordError> {
    let mut r = Reader::new(bytes);
    let scope = Scope::from_wire(r.enumeration(1)?).map_err(|e| e.within("distribution.scope"))?;
    let groups = sorted_strings(&mut r, 2, "distribution.groups", |s| GroupName::new(s))?;
    let max_hops = u32::try_from(r.uint(3)?).map_err(|_| RecordError::NonCanonical)?;
    let sensitivity = Sensitivity::new(r.text(4)?).map_err(|e| e.within("distribution"))?;
    let mut scopes = Vec::new();
    while let Some(b) = r.bytes(5)? {
        if scopes.len() >= MAX_FIELD_SCOPES {
            return Err(InvalidValue::new(
                "distribution.fields",
                format!("at most {MAX_FIELD_SCOPES} field scopes"),
            )
            .into());
        }
        scopes.push(field_scope(b, scopes.len())?);
    }
    r.finish()?;
    let out = Distribution {
        scope,
        groups,
        max_hops,
        sensitivity,
        fields: FieldScopes::from_sorted(scopes)?,
    };
    out.validate()?;
    Ok(out)
}

fn field_scope(bytes: &[u8], i: usize) -> Result<FieldScope, RecordError> {
    let at = format!("distribution.fields[{i}]");
    let mut r = Reader::new(bytes);
    let text = r.text(1)?;
    let field: FieldSelector = text.parse().map_err(|e: InvalidValue| e.within(&at))?;
    if field.to_string() != text {
        return Err(RecordError::NonCanonical);
    }
    let to = sorted_strings(&mut r, 2, &format!("{at}.to"), |s| s.parse::<Recipient>())?;
    r.finish()?;
    Ok(FieldScope { field, to })
}

fn commitment(bytes: &[u8], i: usize) -> Result<FieldCommitment, RecordError> {
    let mut r = Reader::new(bytes);
    let tag = FieldTag::from_wire(r.enumeration(1)?)
        .map_err(|e| e.within(&format!("fields[{i}].tag")))?;
    let digest = r.bytes(2)?.unwrap_or_default();
    let digest: [u8; 32] = digest.try_into().map_err(|_| {
        InvalidValue::new(
            format!("fields[{i}].digest"),
            format!("must be 32 bytes, got {}", digest.len()),
        )
    })?;
    r.finish()?;
    Ok(FieldCommitment { tag, digest })
}

/// Decodes header bytes that must be exactly the canonical encoding of a valid header.
/// The caller checks the size limit.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<RecordHeader, RecordError> {
    let mut r = Reader::new(bytes);
    let format = if r.key(1, VARINT) { r.varint()? } else { 0 };
    if format != u64::from(HEADER_FORMAT) && format != u64::from(HEADER_FORMAT_SCOPED) {
        return Err(RecordError::Format(
            u32::try_from(format).unwrap_or(u32::MAX),
        ));
    }
    let entry_id = EntryId::from_slice(r.bytes(2)?.unwrap_or_default())
        .map_err(|e| InvalidValue::new("entry_id", e.message))?;
    let origin = AgencyCode::new(r.text(3)?).map_err(|e| e.within("origin"))?;
    let version = r.uint(4)?;
    let issued_at = Timestamp(r.uint(5)?);
    let status =
        Status::from_wire(r.enumeration(6)?).map_err(|e| InvalidValue::new("status", e.message))?;
    let distribution = distribution(
        r.bytes(7)?
            .ok_or_else(|| InvalidValue::new("distribution", "missing"))?,
    )?;
    // Format 2 exactly when the distribution carries field scopes.
    if u64::from(header_format(&distribution)) != format {
        return Err(RecordError::NonCanonical);
    }
    let review_by = match r.text(8)? {
        "" => None,
        s => {
            let d = Date::parse(s).map_err(|e| InvalidValue::new("review_by", e.to_string()))?;
            if d.to_string() != s {
                return Err(RecordError::NonCanonical);
            }
            Some(d)
        }
    };
    let categories = sorted_strings(&mut r, 9, "categories", |s| Category::new(s))?;
    let reason = Reason::from_wire(r.enumeration(10)?)
        .map_err(|e| InvalidValue::new("reason", e.message))?;
    let subject_kind = SubjectKind::from_wire(r.enumeration(11)?)
        .map_err(|e| InvalidValue::new("subject_kind", e.message))?;
    let subject_country = match r.text(12)? {
        "" => None,
        s => Some(CountryCode::new(s).map_err(|e| e.within("subject_country"))?),
    };
    let mut fields = Vec::with_capacity((r.buf.len() / COMMITMENT_BYTES).min(MAX_FIELDS) + 1);
    while let Some(b) = r.bytes(13)? {
        fields.push(commitment(b, fields.len())?);
    }
    let signer_key = PublicKey::from_bytes(r.bytes(14)?.unwrap_or_default())
        .map_err(|e| InvalidValue::new("signer_key", e.to_string()))?;
    // Absent (0) is no request; an explicit 0 is refused by `uint` as non-canonical.
    let on_hit = match r.uint(15)? {
        0 => None,
        n => Some(
            i32::try_from(n)
                .map_err(|_| RecordError::NonCanonical)
                .and_then(|n| {
                    crate::model::OnHit::from_wire(n)
                        .map_err(|e| InvalidValue::new("on_hit", e.message).into())
                })?,
        ),
    };
    r.finish()?;
    let header = RecordHeader {
        entry_id,
        origin,
        version,
        issued_at,
        status,
        distribution,
        review_by,
        categories,
        reason,
        subject_kind,
        subject_country,
        fields,
        signer_key,
        on_hit,
    };
    header.validate()?;
    Ok(header)
}

/// The parts of a record envelope in the shape `Record::encode` writes.
pub(crate) struct Envelope<'a> {
    /// The signed header bytes.
    pub header: &'a [u8],
    /// The signature bytes (any length; the caller checks).
    pub signature: &'a [u8],
    /// Disclosures, strictly increasing by index, salts of the right length, values
    /// valid UTF-8.
    pub disclosures: Vec<Disclosure>,
}

/// Parses the common envelope layout: `signed` (header, then signature) once and
/// first, then disclosures with their fields in number order, shortest-form varints,
/// no unknown fields. Returns `None` for anything else, including inputs that the
/// conversion would refuse (unsorted disclosures, bad salt length, non-UTF-8 values),
/// so that the caller's prost path decides them and reports its usual errors.
/// Disclosure values are slices of `bytes`, not copies.
pub(crate) fn record_envelope(bytes: &Bytes) -> Option<Envelope<'_>> {
    let mut r = Reader::new(bytes);
    let mut signed = Reader::new(r.bytes(1).ok()??);
    let header = signed.bytes(1).ok()??;
    let signature = signed.bytes(2).ok()??;
    if !signed.is_empty() {
        return None;
    }
    // A disclosure is at least 24 bytes on the wire (key, length, salt key, salt
    // length, 16-byte salt, value key, value length, one value byte); a valid record
    // has at most MAX_FIELDS of them.
    let mut disclosures = Vec::with_capacity((r.buf.len() / 24).min(MAX_FIELDS));
    let mut last: Option<u32> = None;
    while let Some(b) = r.bytes(2).ok()? {
        let mut d = Reader::new(b);
        let index = if d.key(1, VARINT) {
            u32::try_from(d.varint().ok()?).ok()?
        } else {
            0
        };
        if last.is_some_and(|l| l >= index) {
            return None;
        }
        last = Some(index);
        let salt: [u8; SALT_LEN] = d.bytes(2).ok()??.try_into().ok()?;
        let value = d.bytes(3).ok()??;
        if !d.is_empty() {
            return None;
        }
        // `value` borrows from `bytes`, so `slice_ref` cannot fail.
        let value = ByteString::try_from(bytes.slice_ref(value)).ok()?;
        disclosures.push(Disclosure { index, salt, value });
    }
    if !r.is_empty() {
        return None;
    }
    Some(Envelope {
        header,
        signature,
        disclosures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_must_be_shortest_and_bounded() {
        assert_eq!(Reader::new(&[0x00]).varint(), Ok(0));
        assert_eq!(Reader::new(&[0x7f]).varint(), Ok(127));
        assert_eq!(Reader::new(&[0x80, 0x01]).varint(), Ok(128));
        assert_eq!(Reader::new(&[0x96, 0x01]).varint(), Ok(150));
        assert!(Reader::new(&[]).varint().is_err());
        // Both paths consume exactly the varint and leave the rest.
        let mut r = Reader::new(&[0x05, 0x96, 0x01, 0x2a]);
        assert_eq!(r.varint(), Ok(5));
        assert_eq!(r.varint(), Ok(150));
        assert_eq!(r.buf, &[0x2a]);
        assert_eq!(
            Reader::new(&[0x80, 0x00]).varint(),
            Err(RecordError::NonCanonical)
        );
        assert!(Reader::new(&[0x80]).varint().is_err());
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).varint(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader::new(&over).varint().is_err());
        let long = [0x80; 11];
        assert!(Reader::new(&long).varint().is_err());
    }
}
