//! Conversions between prost types and the node's domain types: the store's values
//! (and, with replication, the sync messages).
//!
//! Outside `proto/` and `crypto/src/wire.rs`, this is the only module that touches
//! prost types. Every decode validates and returns a typed error.

use prost::Message;
use wlnode_crypto::model::{AgencyCode, RecordId, Status};
use wlnode_crypto::record::Record;
use wlnode_crypto::time::{Date, Timestamp};
use wlnode_crypto::{RecordError, VerifiedRecord};
use wlnode_proto::v1 as pb;

/// A stored value or message could not be decoded.
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

fn decode<M: Message + Default>(what: &'static str, b: &[u8]) -> Result<M, WireError> {
    M::decode(b).map_err(|e| WireError::Decode {
        what,
        reason: e.to_string(),
    })
}

fn invalid(what: &'static str, reason: impl Into<String>) -> WireError {
    WireError::Invalid {
        what,
        reason: reason.into(),
    }
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
}

impl StoredRecord {
    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        Self::encode_parts(
            &self.record,
            self.hops,
            self.received_from.as_ref(),
            self.received_at,
            self.seq,
        )
    }

    /// Store encoding from parts, without cloning the record.
    pub fn encode_parts(
        record: &VerifiedRecord,
        hops: u32,
        received_from: Option<&AgencyCode>,
        received_at: Timestamp,
        seq: u64,
    ) -> Vec<u8> {
        pb::StoredRecord {
            record: Some(pb::Record::from(&**record)),
            hops,
            received_from: received_from
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            received_at: received_at.as_millis(),
            seq,
        }
        .encode_to_vec()
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
}

impl EntryState {
    /// Records held for the entry.
    pub fn records(&self) -> u32 {
        u32::try_from(self.history.len()).unwrap_or(u32::MAX)
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
            let _ = EntryState::decode(&b);
            let _ = Cursor::decode(&b);
            let _ = LocalMeta::decode(&b);
        }
    }
}

pub use sync_codec::{decode_request, decode_response, encode_request, encode_response};

/// Encoding of the sync protocol's messages.
mod sync_codec {
    use bytes::Bytes;
    use prost::Message;
    use wlnode_crypto::model::{AgencyCode, RecordId};
    use wlnode_proto::v1 as pb;

    use super::{WireError, decode, invalid};
    use crate::sync::msg::{
        Batch, Hello, Notify, Pull, Reconcile, ReconcileReply, Request, Response, Transfer,
    };

    fn epoch(what: &'static str, b: &[u8]) -> Result<[u8; 16], WireError> {
        b.try_into()
            .map_err(|_| invalid(what, format!("log epoch must be 16 bytes, got {}", b.len())))
    }

    fn session(b: &[u8]) -> Result<[u8; 16], WireError> {
        b.try_into().map_err(|_| {
            invalid(
                "reconcile",
                format!("session must be 16 bytes, got {}", b.len()),
            )
        })
    }

    fn hello_to(h: &Hello) -> pb::Hello {
        pb::Hello {
            agency: h.agency.as_str().to_owned(),
            roster_version: h.roster_version,
            log_epoch: Bytes::copy_from_slice(&h.log_epoch),
            head_seq: h.head_seq,
            backlog_pending: h.backlog_pending,
        }
    }

    fn hello_from(h: pb::Hello) -> Result<Hello, WireError> {
        Ok(Hello {
            agency: AgencyCode::new(h.agency).map_err(|e| invalid("hello", e.to_string()))?,
            roster_version: h.roster_version,
            log_epoch: epoch("hello", &h.log_epoch)?,
            head_seq: h.head_seq,
            backlog_pending: h.backlog_pending,
        })
    }

    fn transfers_to(t: &[Transfer]) -> Vec<pb::Transfer> {
        t.iter()
            .map(|t| pb::Transfer {
                record: t.record.clone(),
                hops: t.hops,
            })
            .collect()
    }

    fn transfers_from(t: Vec<pb::Transfer>) -> Vec<Transfer> {
        t.into_iter()
            .map(|t| Transfer {
                record: t.record,
                hops: t.hops,
            })
            .collect()
    }

    /// Encodes a request frame.
    pub fn encode_request(r: &Request) -> Vec<u8> {
        use pb::sync_request::Kind;
        let kind = match r {
            Request::Hello(h) => Kind::Hello(hello_to(h)),
            Request::Notify(n) => Kind::Notify(pb::Notify {
                log_epoch: Bytes::copy_from_slice(&n.log_epoch),
                head_seq: n.head_seq,
            }),
            Request::Pull(p) => Kind::Pull(pb::Pull {
                log_epoch: Bytes::copy_from_slice(&p.log_epoch),
                after_seq: p.after_seq,
                limit: p.limit,
                max_bytes: p.max_bytes,
            }),
            Request::Reconcile(r) => Kind::Reconcile(pb::Reconcile {
                session: Bytes::copy_from_slice(&r.session),
                message: r.message.clone(),
                have: transfers_to(&r.have),
                need: r
                    .need
                    .iter()
                    .map(|id| Bytes::copy_from_slice(&id.0))
                    .collect(),
            }),
        };
        pb::SyncRequest { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes a request frame.
    pub fn decode_request(b: &[u8]) -> Result<Request, WireError> {
        use pb::sync_request::Kind;
        let m: pb::SyncRequest = decode("sync request", b)?;
        Ok(
            match m.kind.ok_or_else(|| invalid("sync request", "empty"))? {
                Kind::Hello(h) => Request::Hello(hello_from(h)?),
                Kind::Notify(n) => Request::Notify(Notify {
                    log_epoch: epoch("notify", &n.log_epoch)?,
                    head_seq: n.head_seq,
                }),
                Kind::Pull(p) => Request::Pull(Pull {
                    log_epoch: epoch("pull", &p.log_epoch)?,
                    after_seq: p.after_seq,
                    limit: p.limit,
                    max_bytes: p.max_bytes,
                }),
                Kind::Reconcile(r) => Request::Reconcile(Reconcile {
                    session: session(&r.session)?,
                    message: r.message,
                    have: transfers_from(r.have),
                    need: r
                        .need
                        .iter()
                        .map(|id| {
                            RecordId::from_slice(id)
                                .map_err(|e| invalid("reconcile", e.to_string()))
                        })
                        .collect::<Result<_, _>>()?,
                }),
                Kind::Roster(_) => {
                    return Err(invalid(
                        "sync request",
                        "roster offers are not accepted over sync; rosters are distributed by the roster authority",
                    ));
                }
            },
        )
    }

    /// Encodes a response frame.
    pub fn encode_response(r: &Response) -> Vec<u8> {
        use pb::sync_response::Kind;
        let kind = match r {
            Response::Hello(h) => Kind::Hello(hello_to(h)),
            Response::Ack => Kind::Ack(pb::Ack {}),
            Response::Batch(b) => Kind::Batch(pb::Batch {
                log_epoch: Bytes::copy_from_slice(&b.log_epoch),
                records: transfers_to(&b.records),
                next_seq: b.next_seq,
                head_seq: b.head_seq,
                complete: b.complete,
            }),
            Response::Reconcile(r) => Kind::Reconcile(pb::ReconcileReply {
                session: Bytes::copy_from_slice(&r.session),
                message: r.message.clone(),
                records: transfers_to(&r.records),
            }),
            Response::Error { code, message } => Kind::Error(pb::SyncError {
                code: code.clone(),
                message: message.clone(),
            }),
        };
        pb::SyncResponse { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes a response frame.
    pub fn decode_response(b: &[u8]) -> Result<Response, WireError> {
        use pb::sync_response::Kind;
        let m: pb::SyncResponse = decode("sync response", b)?;
        Ok(
            match m.kind.ok_or_else(|| invalid("sync response", "empty"))? {
                Kind::Hello(h) => Response::Hello(hello_from(h)?),
                Kind::Ack(_) => Response::Ack,
                Kind::Batch(b) => Response::Batch(Batch {
                    log_epoch: epoch("batch", &b.log_epoch)?,
                    records: transfers_from(b.records),
                    next_seq: b.next_seq,
                    head_seq: b.head_seq,
                    complete: b.complete,
                }),
                Kind::Reconcile(r) => Response::Reconcile(ReconcileReply {
                    session: session(&r.session)?,
                    message: r.message,
                    records: transfers_from(r.records),
                }),
                Kind::Error(e) => Response::Error {
                    code: e.code.chars().take(64).collect(),
                    message: e.message.chars().take(1024).collect(),
                },
            },
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trips() {
            let h = Hello {
                agency: "AA-EXPORT".parse().unwrap(),
                roster_version: 3,
                log_epoch: [9; 16],
                head_seq: 77,
                backlog_pending: true,
            };
            let reqs = vec![
                Request::Hello(h.clone()),
                Request::Notify(Notify {
                    log_epoch: [1; 16],
                    head_seq: 5,
                }),
                Request::Pull(Pull {
                    log_epoch: [1; 16],
                    after_seq: 5,
                    limit: 10,
                    max_bytes: 1000,
                }),
                Request::Reconcile(Reconcile {
                    session: [2; 16],
                    message: Bytes::from_static(b"neg"),
                    have: vec![Transfer {
                        record: Bytes::from_static(b"rec"),
                        hops: 2,
                    }],
                    need: vec![RecordId([3; 32])],
                }),
            ];
            for r in reqs {
                assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
            }
            let resps = vec![
                Response::Hello(h),
                Response::Ack,
                Response::error("banned", "go away"),
                Response::Batch(Batch {
                    log_epoch: [4; 16],
                    records: vec![],
                    next_seq: 9,
                    head_seq: 10,
                    complete: false,
                }),
            ];
            for r in resps {
                assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
            }
        }

        #[test]
        fn garbage_is_an_error() {
            for len in 0..200usize {
                let b: Vec<u8> = (0..len).map(|i| (i * 131 + 7) as u8).collect();
                let _ = decode_request(&b);
                let _ = decode_response(&b);
            }
            assert!(decode_request(&[]).is_err());
        }
    }
}

/// What the reconciliation predicate needs of a record, kept in the sync index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncMeta {
    /// Origin.
    pub origin: AgencyCode,
    /// Scope.
    pub scope: wlnode_crypto::model::Scope,
    /// Groups.
    pub groups: Vec<wlnode_crypto::model::GroupName>,
}

impl SyncMeta {
    /// From a record header.
    pub fn of(h: &wlnode_crypto::record::RecordHeader) -> Self {
        Self {
            origin: h.origin.clone(),
            scope: h.distribution.scope,
            groups: h.distribution.groups.iter().cloned().collect(),
        }
    }

    /// Store encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::SyncMeta {
            origin: self.origin.as_str().to_owned(),
            scope: self.scope.to_wire(),
            groups: self.groups.iter().map(|g| g.as_str().to_owned()).collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a stored value.
    pub fn decode(b: &[u8]) -> Result<Self, WireError> {
        let m: pb::SyncMeta = decode("sync meta", b)?;
        Ok(Self {
            origin: AgencyCode::new(m.origin).map_err(|e| invalid("sync meta", e.to_string()))?,
            scope: wlnode_crypto::model::Scope::from_wire(m.scope)
                .map_err(|e| invalid("sync meta", e.to_string()))?,
            groups: m
                .groups
                .into_iter()
                .map(|g| {
                    wlnode_crypto::model::GroupName::new(g)
                        .map_err(|e| invalid("sync meta", e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        })
    }
}
