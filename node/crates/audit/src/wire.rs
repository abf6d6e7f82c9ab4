//! The `/wlnode/audit/1` messages as typed values, and their protobuf encoding.
//!
//! Only this module knows the audit protocol's prost types: the node runtime
//! and the auditor's client see [`AuditRequest`] / [`AuditResponse`]. Decoding checks
//! every hash length and the checkpoint JSON, so bad frames become typed errors.

use wlnode_proto::Message;
use wlnode_proto::v1 as pb;

use super::event::SignedCheckpoint;
use super::merkle::Hash;

/// Most events one `GetEvents` returns (the server caps `count` at this).
pub const MAX_EVENTS_PER_REQUEST: u32 = 1000;

/// A request of the audit protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditRequest {
    /// The latest signed checkpoint.
    GetCheckpoint,
    /// Consistency proof between two sizes.
    GetConsistencyProof {
        /// Older size.
        old_size: u64,
        /// Newer size.
        new_size: u64,
    },
    /// Events `[start, start + count)` with inclusion proofs against `tree_size`.
    GetEvents {
        /// First index.
        start: u64,
        /// How many.
        count: u32,
        /// Tree size the proofs are for.
        tree_size: u64,
    },
    /// A witness cosignature over one of the node's checkpoints.
    Cosign {
        /// The node's checkpoint.
        checkpoint: SignedCheckpoint,
        /// The auditor's signature ([`crate::event::Cosignature::message`]).
        signature: [u8; 64],
        /// When the auditor witnessed it (its clock, Unix ms); `None` from auditors
        /// that do not date their cosignatures.
        witnessed_at: Option<u64>,
    },
}

/// One event with its inclusion proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenEvent {
    /// Canonical event bytes.
    pub event: Vec<u8>,
    /// Inclusion proof.
    pub proof: Vec<Hash>,
    /// For a `sent` event without an inline header, the first time its record appears
    /// in a reply: the signed header bytes and the origin's signature (unverified here;
    /// the auditor checks the hash against the event's record id, and the signature).
    pub header: Option<(Vec<u8>, [u8; 64])>,
}

/// A response of the audit protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditResponse {
    /// The latest checkpoint, if any.
    Checkpoint(Option<SignedCheckpoint>),
    /// A consistency proof.
    Proof(Vec<Hash>),
    /// Events with proofs.
    Events(Vec<ProvenEvent>),
    /// The cosignature was stored; how many the node holds.
    Cosigned(u64),
    /// Refused or failed.
    Error {
        /// `forbidden`, `bad_request`, `unavailable`, `internal`.
        code: String,
        /// Human-readable detail.
        message: String,
    },
}

impl AuditResponse {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Why an audit frame did not decode.
#[derive(Debug, thiserror::Error)]
pub enum AuditWireError {
    /// Not protobuf.
    #[error("audit frame: {0}")]
    Decode(#[from] wlnode_proto::DecodeError),
    /// No message in the oneof.
    #[error("audit frame: empty message")]
    Empty,
    /// A field is malformed.
    #[error("audit frame: field {field}: {detail}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}

fn field(field: &'static str, detail: impl std::fmt::Display) -> AuditWireError {
    AuditWireError::Field {
        field,
        detail: detail.to_string(),
    }
}

fn hashes(
    field_name: &'static str,
    v: &[wlnode_proto::Bytes],
) -> Result<Vec<Hash>, AuditWireError> {
    v.iter()
        .map(|b| {
            Hash::try_from(b.as_ref())
                .map_err(|_| field(field_name, format!("hash of {} bytes", b.len())))
        })
        .collect()
}

fn checkpoint_json(cp: &SignedCheckpoint) -> Vec<u8> {
    serde_json::to_vec(cp).unwrap_or_default()
}

fn parse_checkpoint(name: &'static str, b: &[u8]) -> Result<SignedCheckpoint, AuditWireError> {
    serde_json::from_slice(b).map_err(|e| field(name, e))
}

/// Encodes a request.
pub fn encode_request(r: &AuditRequest) -> Vec<u8> {
    use pb::audit_request::Kind;
    let kind = match r {
        AuditRequest::GetCheckpoint => Kind::GetCheckpoint(pb::GetCheckpoint {}),
        AuditRequest::GetConsistencyProof { old_size, new_size } => {
            Kind::GetConsistencyProof(pb::GetConsistencyProof {
                old_size: *old_size,
                new_size: *new_size,
            })
        }
        AuditRequest::GetEvents {
            start,
            count,
            tree_size,
        } => Kind::GetEvents(pb::GetEvents {
            start: *start,
            count: *count,
            tree_size: *tree_size,
        }),
        AuditRequest::Cosign {
            checkpoint,
            signature,
            witnessed_at,
        } => Kind::Cosign(pb::Cosign {
            checkpoint: checkpoint_json(checkpoint).into(),
            signature: signature.to_vec().into(),
            witnessed_at: witnessed_at.unwrap_or(0),
        }),
    };
    pb::AuditRequest { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a request.
pub fn decode_request(b: &[u8]) -> Result<AuditRequest, AuditWireError> {
    use pb::audit_request::Kind;
    let m = pb::AuditRequest::decode(b)?;
    Ok(match m.kind.ok_or(AuditWireError::Empty)? {
        Kind::GetCheckpoint(_) => AuditRequest::GetCheckpoint,
        Kind::GetConsistencyProof(p) => AuditRequest::GetConsistencyProof {
            old_size: p.old_size,
            new_size: p.new_size,
        },
        Kind::GetEvents(e) => AuditRequest::GetEvents {
            start: e.start,
            count: e.count,
            tree_size: e.tree_size,
        },
        Kind::Cosign(c) => AuditRequest::Cosign {
            checkpoint: parse_checkpoint("cosign.checkpoint", &c.checkpoint)?,
            signature: <[u8; 64]>::try_from(c.signature.as_ref())
                .map_err(|_| field("cosign.signature", "not 64 bytes"))?,
            witnessed_at: (c.witnessed_at != 0).then_some(c.witnessed_at),
        },
    })
}

/// Encodes a response.
pub fn encode_response(r: &AuditResponse) -> Vec<u8> {
    use pb::audit_response::Kind;
    let kind = match r {
        AuditResponse::Checkpoint(cp) => Kind::Checkpoint(pb::CheckpointReply {
            signed_checkpoint: cp.as_ref().map(checkpoint_json).unwrap_or_default().into(),
        }),
        AuditResponse::Proof(p) => Kind::Proof(pb::ProofReply {
            hashes: p.iter().map(|h| h.to_vec().into()).collect(),
        }),
        AuditResponse::Events(evs) => Kind::Events(pb::EventsReply {
            events: evs
                .iter()
                .map(|e| pb::EventWithProof {
                    event: e.event.clone().into(),
                    proof: e.proof.iter().map(|h| h.to_vec().into()).collect(),
                    header: e
                        .header
                        .as_ref()
                        .map(|(h, _)| h.clone())
                        .unwrap_or_default()
                        .into(),
                    signature: e
                        .header
                        .as_ref()
                        .map(|(_, s)| s.to_vec())
                        .unwrap_or_default()
                        .into(),
                })
                .collect(),
        }),
        AuditResponse::Cosigned(n) => Kind::Cosigned(pb::CosignAck { cosignatures: *n }),
        AuditResponse::Error { code, message } => Kind::Error(pb::AuditError {
            code: code.clone(),
            message: message.clone(),
        }),
    };
    pb::AuditResponse { kind: Some(kind) }.encode_to_vec()
}

/// Decodes a response.
pub fn decode_response(b: &[u8]) -> Result<AuditResponse, AuditWireError> {
    use pb::audit_response::Kind;
    let m = pb::AuditResponse::decode(b)?;
    Ok(match m.kind.ok_or(AuditWireError::Empty)? {
        Kind::Checkpoint(c) => AuditResponse::Checkpoint(if c.signed_checkpoint.is_empty() {
            None
        } else {
            Some(parse_checkpoint(
                "checkpoint.signed_checkpoint",
                &c.signed_checkpoint,
            )?)
        }),
        Kind::Proof(p) => AuditResponse::Proof(hashes("proof.hashes", &p.hashes)?),
        Kind::Events(e) => AuditResponse::Events(
            e.events
                .into_iter()
                .map(|e| {
                    let header = if e.header.is_empty() && e.signature.is_empty() {
                        None
                    } else {
                        let sig = <[u8; 64]>::try_from(e.signature.as_ref()).map_err(|_| {
                            field(
                                "events.signature",
                                format!("{} bytes, expected 64", e.signature.len()),
                            )
                        })?;
                        if e.header.is_empty() {
                            return Err(field("events.header", "a signature without a header"));
                        }
                        Some((e.header.to_vec(), sig))
                    };
                    Ok(ProvenEvent {
                        proof: hashes("events.proof", &e.proof)?,
                        event: e.event.to_vec(),
                        header,
                    })
                })
                .collect::<Result<_, AuditWireError>>()?,
        ),
        Kind::Cosigned(a) => AuditResponse::Cosigned(a.cosignatures),
        Kind::Error(e) => AuditResponse::Error {
            code: e.code,
            message: e.message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Checkpoint;

    #[test]
    fn round_trips_and_refuses_bad_hashes() {
        let key = wlnode_crypto::SecretKey::from_seed(&[9; 32]);
        let cp = Checkpoint {
            agency: "AA".parse().unwrap(),
            peer_id: key.public_key().peer_id(),
            size: 3,
            root: hex::encode([7u8; 32]),
            timestamp: 5,
        }
        .sign(&key);
        for r in [
            AuditRequest::GetCheckpoint,
            AuditRequest::GetConsistencyProof {
                old_size: 1,
                new_size: 3,
            },
            AuditRequest::GetEvents {
                start: 0,
                count: 2,
                tree_size: 3,
            },
            AuditRequest::Cosign {
                checkpoint: cp.clone(),
                signature: [1; 64],
                witnessed_at: Some(5),
            },
            AuditRequest::Cosign {
                checkpoint: cp.clone(),
                signature: [1; 64],
                witnessed_at: None,
            },
        ] {
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
        }
        for r in [
            AuditResponse::Checkpoint(None),
            AuditResponse::Checkpoint(Some(cp)),
            AuditResponse::Proof(vec![[1; 32], [2; 32]]),
            AuditResponse::Events(vec![
                ProvenEvent {
                    event: b"{}".to_vec(),
                    proof: vec![[3; 32]],
                    header: None,
                },
                ProvenEvent {
                    event: b"{}".to_vec(),
                    proof: vec![],
                    header: Some((vec![7; 40], [9; 64])),
                },
            ]),
            AuditResponse::Cosigned(2),
            AuditResponse::error("forbidden", "no"),
        ] {
            assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
        }
        let bad = pb::AuditResponse {
            kind: Some(pb::audit_response::Kind::Proof(pb::ProofReply {
                hashes: vec![vec![0u8; 31].into()],
            })),
        }
        .encode_to_vec();
        assert!(matches!(
            decode_response(&bad),
            Err(AuditWireError::Field { .. })
        ));
        // A header beside an event needs a 64-byte signature, and a signature a header.
        for (header, signature) in [(vec![1u8; 10], vec![2u8; 63]), (vec![], vec![2u8; 64])] {
            let bad = pb::AuditResponse {
                kind: Some(pb::audit_response::Kind::Events(pb::EventsReply {
                    events: vec![pb::EventWithProof {
                        event: b"{}".to_vec().into(),
                        proof: vec![],
                        header: header.into(),
                        signature: signature.into(),
                    }],
                })),
            }
            .encode_to_vec();
            assert!(matches!(
                decode_response(&bad),
                Err(AuditWireError::Field { .. })
            ));
        }
    }
}
