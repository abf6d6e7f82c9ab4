//! The values a node keeps about its records, and their store encoding: the record
//! as held ([`StoredRecord`]), derived entry state, import bookkeeping, changes-feed
//! cursors and the reconciliation metadata.
//!
//! This is the store's one wire: these prost conversions exist nowhere else (the sync
//! protocol's frames are `wlnode_sync::wire`, the audit protocol's `wlnode_audit::wire`).
//! Every decode validates and returns a typed error.

use prost::Message;
use std::collections::BTreeSet;

use wlnode_crypto::PublicKey;
use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, GroupName, Reason, RecordId, Scope, Sensitivity, Status,
    SubjectKind,
};
use wlnode_crypto::record::Record;
use wlnode_crypto::record::RecordHeader;
use wlnode_crypto::time::{Date, Timestamp};
use wlnode_crypto::{RecordError, VerifiedRecord};
use wlnode_proto::v1 as pb;

/// A stored value or a protocol frame could not be decoded (the store's wire and the
/// sync protocol's share it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not valid protobuf.
    #[error("{what}: not valid protobuf: {reason}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Valid protobuf, invalid content.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which message.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The record inside is invalid.
    #[error("record: {0}")]
    Record(#[from] RecordError),
}

impl WireError {
    /// Decodes a prost message `what`, or says why not.
    pub fn decode<M: Message + Default>(what: &'static str, b: &[u8]) -> Result<M, Self> {
        M::decode(b).map_err(|e| Self::Decode {
            what,
            reason: e.to_string(),
        })
    }

    /// A decoded `what` with invalid content.
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

fn decode<M: Message + Default>(what: &'static str, b: &[u8]) -> Result<M, WireError> {
    WireError::decode(what, b)
}

fn invalid(what: &'static str, reason: impl Into<String>) -> WireError {
    WireError::invalid(what, reason)
}

/// A record as this node holds it.
#[derive(Clone, Debug)]
pub struct StoredRecord {
    /// The copy held (verified when it was stored).
    pub record: VerifiedRecord,
    /// Hops from the origin (0 = created here).
    pub hops: u32,
    /// Who sent the first copy (`None` = created here).
    pub received_from: Option<AgencyCode>,
    /// When it was first stored here.
    pub received_at: Timestamp,
    /// Latest arrival-log sequence number for it.
    pub seq: u64,
    /// For a revoked key's record: the proof (`wlnode_audit::inclusion`, encoded) that
    /// its origin's log held it under a checkpoint an auditor witnessed before the
    /// revocation. Checked when it was stored; passed on with the record.
    pub inclusion: Option<bytes::Bytes>,
}

impl StoredRecord {
    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Self::message(
            &self.record,
            self.hops,
            self.received_from.as_ref(),
            self.received_at,
            self.seq,
        );
        m.inclusion = self.inclusion.clone().unwrap_or_default();
        m.encode_to_vec()
    }

    /// Store encoding from parts, without cloning the record.
    pub fn encode_parts(
        record: &VerifiedRecord,
        hops: u32,
        received_from: Option<&AgencyCode>,
        received_at: Timestamp,
        seq: u64,
    ) -> Vec<u8> {
        Self::message(record, hops, received_from, received_at, seq).encode_to_vec()
    }

    fn message(
        record: &VerifiedRecord,
        hops: u32,
        received_from: Option<&AgencyCode>,
        received_at: Timestamp,
        seq: u64,
    ) -> pb::StoredRecord {
        pb::StoredRecord {
            record: Some(pb::Record::from(&**record)),
            hops,
            received_from: received_from
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            received_at: received_at.as_millis(),
            seq,
            inclusion: Default::default(),
        }
    }

    /// Decodes a value read from this node's own store.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let m: pb::StoredRecord = decode("stored record", b)?;
        let record = m
            .record
            .ok_or_else(|| invalid("stored record", "missing record"))?;
        Ok(Self {
            record: VerifiedRecord::from_local_store(Record::try_from(record)?),
            hops: m.hops,
            received_from: if m.received_from.is_empty() {
                None
            } else {
                Some(
                    AgencyCode::new(m.received_from)
                        .map_err(|e| invalid("stored record", e.to_string()))?,
                )
            },
            received_at: Timestamp(m.received_at),
            seq: m.seq,
            inclusion: (!m.inclusion.is_empty()).then_some(m.inclusion),
        })
    }
}

/// A record's stored bytes, not yet decoded: what a store read hands out so that the
/// store's one thread only copies a reference, and decoding (which re-checks every
/// disclosure digest) happens on whatever thread reads it.
#[derive(Clone, Debug)]
pub struct RawRecord(bytes::Bytes);

impl RawRecord {
    /// Wraps stored bytes without copying them (`owner` is the storage engine's own
    /// reference-counted buffer).
    pub fn from_owner<T: AsRef<[u8]> + Send + 'static>(owner: T) -> Self {
        Self(bytes::Bytes::from_owner(owner))
    }

    /// Bytes stored.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is stored (never for a real record).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A held record as the serving side needs it to run the send decision and, when no
/// field must be withheld, to send the stored encoded record as it is (`record`),
/// without re-encoding it.
///
/// [`RawRecord::view`] decodes the record zero-copy and checks it as a decode does
/// (header canonical, every disclosure's index, UTF-8 and salted digest): `record` goes
/// out verbatim, so a value damaged on disk must be caught here and not by the
/// receiver, which would strike us for it (review s33-sync S1).
#[derive(Clone, Debug)]
pub struct HeldView {
    /// `SHA-256(header bytes)`.
    pub id: RecordId,
    /// The decoded signed header.
    pub header: RecordHeader,
    /// The encoded record exactly as stored (signed header, signature, disclosures):
    /// a slice of the stored value, not a copy.
    pub record: bytes::Bytes,
    /// Field indices of the disclosures this copy holds, in stored order.
    pub disclosed: Vec<u32>,
    /// Hops from the origin (0 = created here).
    pub hops: u32,
    /// Who sent the first copy (`None` = created here).
    pub received_from: Option<AgencyCode>,
    /// The inclusion proof held with it, if any.
    pub inclusion: Option<bytes::Bytes>,
}

impl HeldView {
    /// Whether this copy holds the disclosure of field `index`.
    pub fn holds(&self, index: u32) -> bool {
        self.disclosed.contains(&index)
    }
}

/// Protobuf wire types this reader meets.
const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;

/// A cursor over protobuf wire bytes for [`HeldView`]: any valid encoding is read
/// (fields in any order, unknown fields skipped), as prost would.
struct Wire<'a> {
    buf: &'a [u8],
}

impl<'a> Wire<'a> {
    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        prost::encoding::decode_varint(&mut self.buf).map_err(|e| WireError::Decode {
            what,
            reason: e.to_string(),
        })
    }

    /// The next field: (number, wire type), or `None` at the end.
    fn key(&mut self, what: &'static str) -> Result<Option<(u64, u64)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint(what)?;
        Ok(Some((k >> 3, k & 7)))
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = usize::try_from(self.varint(what)?)
            .map_err(|_| invalid(what, "length does not fit"))?;
        if len > self.buf.len() {
            return Err(invalid(what, "length past the end"));
        }
        let (b, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(b)
    }

    /// Skips a field of wire type `wt`.
    fn skip(&mut self, wt: u64, what: &'static str) -> Result<(), WireError> {
        match wt {
            WIRE_VARINT => self.varint(what).map(|_| ()),
            WIRE_LEN => self.bytes(what).map(|_| ()),
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                self.buf = self
                    .buf
                    .get(n..)
                    .ok_or_else(|| invalid(what, "fixed field past the end"))?;
                Ok(())
            }
            _ => Err(invalid(what, format!("unsupported wire type {wt}"))),
        }
    }
}

/// The fields of a stored record's envelope, borrowed from its bytes.
struct Envelope<'a> {
    record: &'a [u8],
    hops: u32,
    received_from: Option<AgencyCode>,
    received_at: u64,
    seq: u64,
    inclusion: Option<&'a [u8]>,
}

/// Reads a `StoredRecord` envelope as prost would (any field order, unknown fields
/// skipped, the last value of a field wins), without decoding the record inside.
fn envelope(b: &[u8]) -> Result<Envelope<'_>, WireError> {
    const WHAT: &str = "stored record";
    let mut w = Wire { buf: b };
    let mut e = Envelope {
        record: &[],
        hops: 0,
        received_from: None,
        received_at: 0,
        seq: 0,
        inclusion: None,
    };
    let (mut record, mut from) = (None, None);
    while let Some((field, wt)) = w.key(WHAT)? {
        match (field, wt) {
            (1, WIRE_LEN) => record = Some(w.bytes(WHAT)?),
            // prost truncates a uint32 varint the same way.
            (2, WIRE_VARINT) => e.hops = w.varint(WHAT)? as u32,
            (3, WIRE_LEN) => from = Some(w.bytes(WHAT)?),
            (4, WIRE_VARINT) => e.received_at = w.varint(WHAT)?,
            (5, WIRE_VARINT) => e.seq = w.varint(WHAT)?,
            (6, WIRE_LEN) => e.inclusion = Some(w.bytes(WHAT)?).filter(|b| !b.is_empty()),
            _ => w.skip(wt, WHAT)?,
        }
    }
    e.record = record.ok_or_else(|| invalid(WHAT, "missing record"))?;
    e.received_from = match from {
        None | Some([]) => None,
        Some(b) => Some(
            std::str::from_utf8(b)
                .map_err(|e| invalid(WHAT, e.to_string()))
                .and_then(|s| {
                    AgencyCode::new(s.to_owned()).map_err(|e| invalid(WHAT, e.to_string()))
                })?,
        ),
    };
    Ok(e)
}

impl RawRecord {
    /// Decodes the stored record (the node's own store: no signature check) with the
    /// record's header and disclosure values sliced from the stored bytes, not copied
    /// ([`Record::decode_bytes`]); every disclosure digest is checked as before.
    pub fn decode(&self) -> Result<StoredRecord, WireError> {
        let e = envelope(&self.0)?;
        if e.record.len() > wlnode_crypto::record::MAX_RECORD_BYTES {
            // Never written by this node; the old path decides it.
            return StoredRecord::decode(&self.0);
        }
        Ok(StoredRecord {
            record: VerifiedRecord::from_local_store(Record::decode_bytes(
                self.0.slice_ref(e.record),
            )?),
            hops: e.hops,
            received_from: e.received_from,
            received_at: Timestamp(e.received_at),
            seq: e.seq,
            inclusion: e.inclusion.map(|b| self.0.slice_ref(b)),
        })
    }

    /// Reads the stored record's header, hops, origin of the copy and inclusion
    /// proof, and the field indices it discloses ([`HeldView`]). The record is
    /// checked exactly as [`Self::decode`] checks it (zero-copy): every disclosure's
    /// index, UTF-8 and salted digest against the signed header. The view's `record`
    /// is sent as it is, so a value changed on disk must fail here, as corrupt, and
    /// never reach a peer (which would strike us for it).
    pub fn view(&self) -> Result<HeldView, WireError> {
        let e = envelope(&self.0)?;
        let bytes = self.0.slice_ref(e.record);
        let rec = Record::decode_bytes(bytes.clone())?;
        Ok(HeldView {
            id: rec.id(),
            header: rec.header().clone(),
            record: bytes,
            disclosed: rec.disclosures().iter().map(|d| d.index).collect(),
            hops: e.hops,
            received_from: e.received_from,
            inclusion: e.inclusion.map(|b| self.0.slice_ref(b)),
        })
    }
}

/// Derived state of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryState {
    /// Head record.
    pub head: RecordId,
    /// Head version.
    pub version: u64,
    /// Head status.
    pub status: Status,
    /// Head `issued_at`.
    pub issued_at: Timestamp,
    /// Some version has two different records (equivocation).
    pub disputed: bool,
    /// When the head last changed here.
    pub updated_at: Timestamp,
    /// Head's review date.
    pub review_by: Option<Date>,
    /// Every record held for the entry, sorted by (version, record id).
    pub history: Vec<(u64, RecordId)>,
    /// Records of `history` whose signer key was revoked since they were stored (and
    /// that the roster authority does not keep), sorted. They rank below every other
    /// record of the entry, whatever their versions.
    pub demoted: Vec<RecordId>,
}

impl EntryState {
    /// Records held for the entry.
    pub fn records(&self) -> u32 {
        u32::try_from(self.history.len()).unwrap_or(u32::MAX)
    }

    /// Whether `id` ranks below the entry's valid records (its key was revoked).
    pub fn is_demoted(&self, id: &RecordId) -> bool {
        self.demoted.binary_search(id).is_ok()
    }

    /// The highest version among records that are not demoted (0 when none is): what
    /// the origin's next version follows.
    pub fn valid_version(&self) -> u64 {
        self.history
            .iter()
            .filter(|(_, id)| !self.is_demoted(id))
            .map(|(v, _)| *v)
            .max()
            .unwrap_or(0)
    }

    /// The record that should be the head: valid records before demoted ones, then
    /// the highest version, then (for an equivocation) the smallest record id, so that
    /// every node derives the same head.
    pub fn best(&self) -> Option<(u64, RecordId)> {
        self.history.iter().copied().max_by(|(va, a), (vb, b)| {
            (!self.is_demoted(a), *va, std::cmp::Reverse(*a)).cmp(&(
                !self.is_demoted(b),
                *vb,
                std::cmp::Reverse(*b),
            ))
        })
    }

    /// Records of `version` that count for equivocation (demoted ones do not: a
    /// revoked key's record next to the origin's valid one is not a dispute).
    pub fn valid_at_version(&self, version: u64) -> Vec<RecordId> {
        self.history
            .iter()
            .filter(|(v, id)| *v == version && !self.is_demoted(id))
            .map(|(_, id)| *id)
            .collect()
    }

    /// Record ids held for one version.
    pub fn at_version(&self, version: u64) -> Vec<RecordId> {
        self.history
            .iter()
            .filter(|(v, _)| *v == version)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::EntryState {
            head: bytes::Bytes::copy_from_slice(&self.head.0),
            version: self.version,
            status: self.status.to_wire(),
            issued_at: self.issued_at.as_millis(),
            disputed: self.disputed,
            updated_at: self.updated_at.as_millis(),
            review_by: self.review_by.map(|d| d.to_string()).unwrap_or_default(),
            history: self
                .history
                .iter()
                .map(|(v, id)| pb::VersionRef {
                    version: *v,
                    record_id: bytes::Bytes::copy_from_slice(&id.0),
                })
                .collect(),
            demoted: self
                .demoted
                .iter()
                .map(|id| bytes::Bytes::copy_from_slice(&id.0))
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let m: pb::EntryState = decode("entry state", b)?;
        Ok(Self {
            head: RecordId::from_slice(&m.head)
                .map_err(|e| invalid("entry state", e.to_string()))?,
            version: m.version,
            status: Status::from_wire(m.status)
                .map_err(|e| invalid("entry state", e.to_string()))?,
            issued_at: Timestamp(m.issued_at),
            disputed: m.disputed,
            updated_at: Timestamp(m.updated_at),
            review_by: if m.review_by.is_empty() {
                None
            } else {
                Some(Date::parse(&m.review_by).map_err(|e| invalid("entry state", e.to_string()))?)
            },
            history: m
                .history
                .iter()
                .map(|h| {
                    RecordId::from_slice(&h.record_id)
                        .map(|id| (h.version, id))
                        .map_err(|e| invalid("entry state", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            demoted: {
                let mut d = m
                    .demoted
                    .iter()
                    .map(|id| {
                        RecordId::from_slice(id).map_err(|e| invalid("entry state", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                d.sort();
                d.dedup();
                d
            },
        })
    }
}

/// Where an imported entry came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalMeta {
    /// Source list, e.g. `un-sc`.
    pub source_list: String,
    /// The source's own id.
    pub source_id: String,
}

impl LocalMeta {
    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::LocalMeta {
            source_list: self.source_list.clone(),
            source_id: self.source_id.clone(),
        }
        .encode_to_vec()
    }

    /// Decodes a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let m: pb::LocalMeta = decode("local meta", b)?;
        Ok(Self {
            source_list: m.source_list,
            source_id: m.source_id,
        })
    }
}

/// A changes-feed cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Log epoch of the peer the cursor points into.
    pub epoch: [u8; 16],
    /// Last sequence number received.
    pub seq: u64,
    /// Whether every record of the peer's log up to `seq` is held (or was refused). A
    /// first-contact cursor jumps to the peer's head with this false; it turns true
    /// once a reconciliation with the peer has finished and its records are stored.
    pub backlog_complete: bool,
}

impl Cursor {
    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::Cursor {
            epoch: bytes::Bytes::copy_from_slice(&self.epoch),
            seq: self.seq,
            backlog_complete: self.backlog_complete,
        }
        .encode_to_vec()
    }

    /// Decodes a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let m: pb::Cursor = decode("cursor", b)?;
        Ok(Self {
            epoch: m
                .epoch
                .as_ref()
                .try_into()
                .map_err(|_| invalid("cursor", "epoch must be 16 bytes"))?,
            seq: m.seq,
            backlog_complete: m.backlog_complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        for len in 0..64usize {
            let b: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let _ = StoredRecord::decode(&b);
            let _ = RawRecord::from_owner(b.clone()).view();
            let _ = EntryState::decode(&b);
            let _ = Cursor::decode(&b);
            let _ = LocalMeta::decode(&b);
        }
    }
}

/// What the reconciliation predicate needs of a record, kept in the sync index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncMeta {
    /// Origin.
    pub origin: AgencyCode,
    /// Scope.
    pub scope: Scope,
    /// Groups.
    pub groups: BTreeSet<GroupName>,
    /// What the share rules read, for a held record (`None` for a declined one, and
    /// in values written before schema 5).
    pub detail: Option<SyncDetail>,
}

/// The facts of a held record beyond its distribution that the send decision reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDetail {
    /// Relay limit from the signed distribution.
    pub max_hops: u32,
    /// Hops at which this node holds its copy.
    pub hops: u32,
    /// Sensitivity label.
    pub sensitivity: Sensitivity,
    /// Control-list categories.
    pub categories: BTreeSet<Category>,
    /// Listing reason.
    pub reason: Reason,
    /// Kind of subject.
    pub subject_kind: SubjectKind,
    /// Country of the subject.
    pub subject_country: Option<CountryCode>,
    /// The key that signed it.
    pub signer_key: PublicKey,
    /// This node holds an auditor-cosigned inclusion proof for it (a revoked key's
    /// record it may send on with that proof).
    pub proven: bool,
}

/// What the policy's send decision reads of a record, borrowed from a signed header
/// ([`Facts::of`]) or from the sync index ([`SyncMeta::facts`]): one shape, so that
/// the reconciliation set and the choke point cannot judge a record differently.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    /// Origin.
    pub origin: &'a AgencyCode,
    /// Scope.
    pub scope: Scope,
    /// Groups, for `scope = groups`.
    pub groups: &'a BTreeSet<GroupName>,
    /// Relay limit; 0 means none.
    pub max_hops: u32,
    /// Sensitivity label.
    pub sensitivity: &'a Sensitivity,
    /// Control-list categories.
    pub categories: &'a BTreeSet<Category>,
    /// Listing reason.
    pub reason: Reason,
    /// Kind of subject.
    pub subject_kind: SubjectKind,
    /// Country of the subject.
    pub subject_country: Option<&'a CountryCode>,
    /// The key that signed it.
    pub signer_key: &'a PublicKey,
    /// This node holds an auditor-cosigned inclusion proof for it (which a revoked
    /// key's record needs to be sent).
    pub proven: bool,
}

impl<'a> Facts<'a> {
    /// The facts of a signed header.
    pub fn of(h: &'a RecordHeader) -> Self {
        Self {
            origin: &h.origin,
            scope: h.distribution.scope,
            groups: &h.distribution.groups,
            max_hops: h.distribution.max_hops,
            sensitivity: &h.distribution.sensitivity,
            categories: &h.categories,
            reason: h.reason,
            subject_kind: h.subject_kind,
            subject_country: h.subject_country.as_ref(),
            signer_key: &h.signer_key,
            proven: false,
        }
    }

    /// The facts of a held record read as a [`HeldView`].
    pub fn viewed(v: &'a HeldView) -> Self {
        Self {
            proven: v.inclusion.is_some(),
            ..Self::of(&v.header)
        }
    }

    /// The facts of a held record (its header, and whether a proof is held with it).
    pub fn held(r: &'a StoredRecord) -> Self {
        Self {
            proven: r.inclusion.is_some(),
            ..Self::of(r.record.header())
        }
    }
}

impl SyncMeta {
    /// The distribution of a record header, without the rest (a declined record).
    pub fn of(h: &RecordHeader) -> Self {
        Self {
            origin: h.origin.clone(),
            scope: h.distribution.scope,
            groups: h.distribution.groups.clone(),
            detail: None,
        }
    }

    /// Everything the send decision reads of a record held at `hops`.
    pub fn held(h: &RecordHeader, hops: u32) -> Self {
        Self {
            detail: Some(SyncDetail {
                max_hops: h.distribution.max_hops,
                hops,
                sensitivity: h.distribution.sensitivity.clone(),
                categories: h.categories.clone(),
                reason: h.reason,
                subject_kind: h.subject_kind,
                subject_country: h.subject_country.clone(),
                signer_key: h.signer_key,
                proven: false,
            }),
            ..Self::of(h)
        }
    }

    /// [`Self::held`] for a stored record (proven when it holds an inclusion proof).
    pub fn stored(r: &StoredRecord) -> Self {
        Self::held_proven(r.record.header(), r.hops, r.inclusion.is_some())
    }

    /// [`Self::held`] for a record held with an inclusion proof when `proven`.
    pub fn held_proven(h: &RecordHeader, hops: u32, proven: bool) -> Self {
        let mut m = Self::held(h, hops);
        if let Some(d) = &mut m.detail {
            d.proven = proven;
        }
        m
    }

    /// The facts and held hops, when this value carries them.
    pub fn facts(&self) -> Option<(Facts<'_>, u32)> {
        let d = self.detail.as_ref()?;
        Some((
            Facts {
                origin: &self.origin,
                scope: self.scope,
                groups: &self.groups,
                max_hops: d.max_hops,
                sensitivity: &d.sensitivity,
                categories: &d.categories,
                reason: d.reason,
                subject_kind: d.subject_kind,
                subject_country: d.subject_country.as_ref(),
                signer_key: &d.signer_key,
                proven: d.proven,
            },
            d.hops,
        ))
    }

    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::SyncMeta {
            origin: self.origin.as_str().to_owned(),
            scope: self.scope.to_wire(),
            groups: self.groups.iter().map(|g| g.as_str().to_owned()).collect(),
            detail: self.detail.as_ref().map(|d| pb::SyncDetail {
                max_hops: d.max_hops,
                hops: d.hops,
                sensitivity: d.sensitivity.as_str().to_owned(),
                categories: d.categories.iter().map(|c| c.as_str().to_owned()).collect(),
                reason: d.reason.to_wire(),
                subject_kind: d.subject_kind.to_wire(),
                subject_country: d
                    .subject_country
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
                signer_key: wlnode_proto::Bytes::copy_from_slice(d.signer_key.as_bytes()),
                proven: d.proven,
            }),
        }
        .encode_to_vec()
    }

    /// Decodes a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "sync meta";
        let m: pb::SyncMeta = decode(WHAT, b)?;
        let bad = |e: &dyn std::fmt::Display| invalid(WHAT, e.to_string());
        let detail = match m.detail {
            None => None,
            Some(d) => Some(SyncDetail {
                max_hops: d.max_hops,
                hops: d.hops,
                sensitivity: Sensitivity::new(d.sensitivity).map_err(|e| bad(&e))?,
                categories: d
                    .categories
                    .into_iter()
                    .map(|c| Category::new(c).map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?,
                reason: Reason::from_wire(d.reason).map_err(|e| bad(&e))?,
                subject_kind: SubjectKind::from_wire(d.subject_kind).map_err(|e| bad(&e))?,
                subject_country: if d.subject_country.is_empty() {
                    None
                } else {
                    Some(CountryCode::new(d.subject_country).map_err(|e| bad(&e))?)
                },
                signer_key: PublicKey::from_bytes(&d.signer_key).map_err(|e| bad(&e))?,
                proven: d.proven,
            }),
        };
        Ok(Self {
            origin: AgencyCode::new(m.origin).map_err(|e| bad(&e))?,
            scope: Scope::from_wire(m.scope).map_err(|e| bad(&e))?,
            groups: m
                .groups
                .into_iter()
                .map(|g| GroupName::new(g).map_err(|e| bad(&e)))
                .collect::<Result<_, _>>()?,
            detail,
        })
    }
}

/// A record counted in the reconciliation set shared with `only_for` (or with every
/// peer when `None`) although our share rules would not put it there: a record this
/// node will not store, remembered so that peers stop offering it, or (`known`) one
/// the peer gave us that we would not send back. Accept rules judge a copy and its
/// sender, so their refusals hold only for the peer that offered the copy: a copy
/// stripped by one peer must not keep the full copy of another out. A refusal about
/// the record itself (a revoked key's backdated record) holds for everyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declined {
    /// The record's `issued_at` (ms), the first half of its sync key.
    pub issued_at: u64,
    /// The record.
    pub id: wlnode_crypto::model::RecordId,
    /// What the reconciliation predicate needs of it.
    pub meta: SyncMeta,
    /// The peer whose copy was refused, when the refusal is about that copy.
    pub only_for: Option<AgencyCode>,
    /// `only_for` holds the record and gave it to us: a note of what the peer holds,
    /// not a refusal, so a policy reload keeps it. Only with `only_for`.
    pub known: bool,
}

impl Declined {
    /// `from`'s copy of the record with header `h` and id `id`: refused for `from`, or
    /// (`known`) noted as held by it.
    pub fn from_peer(
        h: &wlnode_crypto::record::RecordHeader,
        id: wlnode_crypto::model::RecordId,
        from: &AgencyCode,
        known: bool,
    ) -> Self {
        Self {
            issued_at: h.issued_at.as_millis(),
            id,
            meta: SyncMeta::of(h),
            only_for: Some(from.clone()),
            known,
        }
    }
}
