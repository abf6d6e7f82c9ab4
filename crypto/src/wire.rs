//! Conversions between prost wire types and the validated domain types.
//!
//! This is the only module of the crate that touches `wlnode_proto` types. Every
//! `TryFrom` validates lengths of ids, keys, salts and signatures, enum values and
//! string syntax, so nothing unvalidated crosses into the domain.

use std::collections::BTreeSet;

use wlnode_proto::Bytes;
use wlnode_proto::v1 as pb;

use crate::keys::{PublicKey, Signature};
use crate::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryId, FieldScope, FieldScopes, FieldTag,
    GroupName, InvalidValue, Reason, Recipient, Scope, Sensitivity, Status, SubjectKind,
};
use crate::record::{
    ByteString, Disclosure, FieldCommitment, FieldSelector, Record, RecordError, RecordHeader,
    SALT_LEN,
};
use crate::time::{Date, Timestamp};

fn sorted_set<T: Ord + Clone>(
    field: &str,
    items: Vec<String>,
    parse: impl Fn(String) -> Result<T, InvalidValue>,
) -> Result<BTreeSet<T>, InvalidValue> {
    let mut out = BTreeSet::new();
    let mut last: Option<T> = None;
    for (i, s) in items.into_iter().enumerate() {
        let v = parse(s).map_err(|e| e.within(&format!("{field}[{i}]")))?;
        if last.as_ref().is_some_and(|l| *l >= v) {
            return Err(InvalidValue::new(field, "must be sorted and unique"));
        }
        last = Some(v.clone());
        out.insert(v);
    }
    Ok(out)
}

fn opt_string<T>(
    s: String,
    parse: impl Fn(String) -> Result<T, InvalidValue>,
) -> Result<Option<T>, InvalidValue> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse(s).map(Some)
    }
}

impl From<&Distribution> for pb::Distribution {
    fn from(d: &Distribution) -> Self {
        Self {
            scope: d.scope.to_wire(),
            groups: d.groups.iter().map(|g| g.as_str().to_owned()).collect(),
            max_hops: d.max_hops,
            sensitivity: d.sensitivity.as_str().to_owned(),
            fields: d
                .fields
                .iter()
                .map(|s| pb::FieldScope {
                    selector: s.field.to_string(),
                    to: s.to.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }
    }
}

impl TryFrom<pb::Distribution> for Distribution {
    type Error = InvalidValue;
    fn try_from(d: pb::Distribution) -> Result<Self, InvalidValue> {
        let fields = d
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let at = format!("distribution.fields[{i}]");
                Ok(FieldScope {
                    field: s
                        .selector
                        .parse::<FieldSelector>()
                        .map_err(|e| e.within(&at))?,
                    to: sorted_set(&format!("{at}.to"), s.to, |r| r.parse::<Recipient>())?,
                })
            })
            .collect::<Result<Vec<_>, InvalidValue>>()?;
        let out = Self {
            scope: Scope::from_wire(d.scope).map_err(|e| e.within("distribution.scope"))?,
            groups: sorted_set("distribution.groups", d.groups, GroupName::new)?,
            max_hops: d.max_hops,
            sensitivity: Sensitivity::new(d.sensitivity).map_err(|e| e.within("distribution"))?,
            fields: FieldScopes::from_sorted(fields)?,
        };
        out.validate()?;
        Ok(out)
    }
}

impl From<&RecordHeader> for pb::RecordHeader {
    fn from(h: &RecordHeader) -> Self {
        Self {
            format: crate::record::header_format(&h.distribution),
            entry_id: Bytes::copy_from_slice(&h.entry_id.0),
            origin: h.origin.as_str().to_owned(),
            version: h.version,
            issued_at: h.issued_at.as_millis(),
            status: h.status.to_wire(),
            distribution: Some(pb::Distribution::from(&h.distribution)),
            review_by: h.review_by.map(|d| d.to_string()).unwrap_or_default(),
            categories: h.categories.iter().map(|c| c.as_str().to_owned()).collect(),
            reason: h.reason.to_wire(),
            subject_kind: h.subject_kind.to_wire(),
            subject_country: h
                .subject_country
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            fields: h
                .fields
                .iter()
                .map(|f| pb::FieldCommitment {
                    tag: f.tag.to_wire(),
                    digest: Bytes::copy_from_slice(&f.digest),
                })
                .collect(),
            signer_key: Bytes::copy_from_slice(h.signer_key.as_bytes()),
            on_hit: h.on_hit.map_or(0, |o| o.to_wire()),
        }
    }
}

impl TryFrom<pb::RecordHeader> for RecordHeader {
    type Error = RecordError;
    fn try_from(h: pb::RecordHeader) -> Result<Self, RecordError> {
        if h.format != crate::record::HEADER_FORMAT
            && h.format != crate::record::HEADER_FORMAT_SCOPED
        {
            return Err(RecordError::Format(h.format));
        }
        let format = h.format;
        let fields = h
            .fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let tag = FieldTag::from_wire(f.tag)
                    .map_err(|e| e.within(&format!("fields[{i}].tag")))?;
                let digest: [u8; 32] = f.digest.as_ref().try_into().map_err(|_| {
                    InvalidValue::new(
                        format!("fields[{i}].digest"),
                        format!("must be 32 bytes, got {}", f.digest.len()),
                    )
                })?;
                Ok(FieldCommitment { tag, digest })
            })
            .collect::<Result<Vec<_>, InvalidValue>>()?;
        Ok(Self {
            entry_id: EntryId::from_slice(&h.entry_id)
                .map_err(|e| InvalidValue::new("entry_id", e.message))?,
            origin: AgencyCode::new(h.origin).map_err(|e| e.within("origin"))?,
            version: h.version,
            issued_at: Timestamp(h.issued_at),
            status: Status::from_wire(h.status)
                .map_err(|e| InvalidValue::new("status", e.message))?,
            distribution: h
                .distribution
                .ok_or_else(|| InvalidValue::new("distribution", "missing"))?
                .try_into()?,
            review_by: opt_string(h.review_by, |s| {
                Date::parse(&s).map_err(|e| InvalidValue::new("review_by", e.to_string()))
            })?,
            categories: sorted_set("categories", h.categories, Category::new)?,
            reason: Reason::from_wire(h.reason)
                .map_err(|e| InvalidValue::new("reason", e.message))?,
            subject_kind: SubjectKind::from_wire(h.subject_kind)
                .map_err(|e| InvalidValue::new("subject_kind", e.message))?,
            subject_country: opt_string(h.subject_country, |s| {
                CountryCode::new(s).map_err(|e| e.within("subject_country"))
            })?,
            fields,
            signer_key: PublicKey::from_bytes(&h.signer_key)
                .map_err(|e| InvalidValue::new("signer_key", e.to_string()))?,
            on_hit: match h.on_hit {
                0 => None,
                n => Some(
                    crate::model::OnHit::from_wire(n)
                        .map_err(|e| InvalidValue::new("on_hit", e.message))?,
                ),
            },
        })
        .and_then(|h: RecordHeader| {
            if crate::record::header_format(&h.distribution) == format {
                Ok(h)
            } else {
                Err(RecordError::NonCanonical)
            }
        })
    }
}

impl From<&Disclosure> for pb::Disclosure {
    fn from(d: &Disclosure) -> Self {
        Self {
            index: d.index,
            salt: Bytes::copy_from_slice(&d.salt),
            value: d.value.as_bytes().clone(),
        }
    }
}

impl TryFrom<pb::Disclosure> for Disclosure {
    type Error = RecordError;
    fn try_from(d: pb::Disclosure) -> Result<Self, RecordError> {
        let index = d.index;
        let salt: [u8; SALT_LEN] =
            d.salt
                .as_ref()
                .try_into()
                .map_err(|_| RecordError::Disclosure {
                    index,
                    reason: format!("salt must be {SALT_LEN} bytes, got {}", d.salt.len()),
                })?;
        let value = ByteString::try_from(d.value).map_err(|_| RecordError::Disclosure {
            index,
            reason: "value is not UTF-8".into(),
        })?;
        Ok(Self { index, salt, value })
    }
}

impl From<&Record> for pb::Record {
    fn from(r: &Record) -> Self {
        Self {
            signed: Some(pb::SignedHeader {
                header: r.header_bytes_shared(),
                signature: Bytes::copy_from_slice(&r.signature().0),
            }),
            disclosures: r.disclosures().iter().map(pb::Disclosure::from).collect(),
        }
    }
}

impl TryFrom<pb::Record> for Record {
    type Error = RecordError;
    fn try_from(r: pb::Record) -> Result<Self, RecordError> {
        let signed = r
            .signed
            .ok_or(RecordError::Invalid(InvalidValue::new("signed", "missing")))?;
        let signature = Signature::from_slice(&signed.signature)
            .map_err(|e| RecordError::Invalid(InvalidValue::new("signature", e.to_string())))?;
        let mut last = None;
        let mut disclosures = Vec::with_capacity(r.disclosures.len());
        for d in r.disclosures {
            if last.is_some_and(|l| l >= d.index) {
                return Err(RecordError::Disclosure {
                    index: d.index,
                    reason: "disclosures must be sorted by index and unique".into(),
                });
            }
            last = Some(d.index);
            disclosures.push(Disclosure::try_from(d)?);
        }
        Record::from_parts(signed.header, signature, disclosures)
    }
}
