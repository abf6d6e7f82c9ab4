//! The serving side of `/wlnode/audit/1`: one request in, one response out, over
//! whatever holds the log ([`AuditStore`]).
//!
//! Who may ask is decided before this is called (only roster auditors are answered);
//! this function only bounds the work one request can cause: at most
//! [`MAX_EVENTS_PER_REQUEST`] events and about [`EVENTS_BUDGET`] bytes per answer, sizes
//! outside the log refused as `bad_request`, and a cosignature accepted only over one
//! of the node's own checkpoints and only if it verifies.

use std::collections::HashSet;

use wlnode_crypto::model::RecordId;

use crate::event::{Cosignature, SignedCheckpoint};
use crate::merkle::Hash;
use crate::wire::{AuditRequest, AuditResponse, MAX_EVENTS_PER_REQUEST, ProvenEvent};

/// Bytes of events, proofs and headers one `GetEvents` answer carries at most (the
/// first event always goes, so that a reader always advances).
pub const EVENTS_BUDGET: usize = 4 * 1024 * 1024;

/// A record's signed header bytes and the origin's signature.
pub type SignedHeader = (Vec<u8>, [u8; 64]);

/// What the audit server reads from (and writes cosignatures to).
pub trait AuditStore {
    /// The store's error.
    type Error;
    /// Signs a fresh checkpoint if the log grew since the last one, or if the last one
    /// is old.
    fn checkpoint_now(&self, now_ms: u64) -> Result<(), Self::Error>;
    /// The latest signed checkpoint.
    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, Self::Error>;
    /// The checkpoint signed at exactly `size`, if any.
    fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, Self::Error>;
    /// Events in the log.
    fn size(&self) -> Result<u64, Self::Error>;
    /// Consistency proof between two sizes (both within the log).
    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, Self::Error>;
    /// Canonical bytes of events `[from, to)`.
    fn events(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, Self::Error>;
    /// Inclusion proof of event `index` in the tree of `size` events.
    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Self::Error>;
    /// For a `sent` event whose record is not in `seen` yet: its record's signed header
    /// bytes and the origin's signature (and the id goes into `seen`). `None` for any
    /// other event, or a record no longer held.
    fn sent_header(
        &self,
        event: &[u8],
        seen: &mut HashSet<RecordId>,
    ) -> Result<Option<SignedHeader>, Self::Error>;
    /// Keeps a verified cosignature; returns how many are held.
    fn add_cosignature(&self, c: &Cosignature) -> Result<u64, Self::Error>;
}

/// Answers one request of the auditor whose node identity is `witness` (a PeerId).
pub fn serve<S: AuditStore>(
    s: &S,
    witness: &str,
    req: AuditRequest,
    now_ms: u64,
) -> Result<AuditResponse, S::Error> {
    Ok(match req {
        AuditRequest::GetCheckpoint => {
            // Sign a fresh checkpoint if the log grew (so the auditor sees all of it) or
            // the last one is old (so an idle node still shows it is alive).
            s.checkpoint_now(now_ms)?;
            AuditResponse::Checkpoint(s.latest_checkpoint()?)
        }
        AuditRequest::GetConsistencyProof { old_size, new_size } => {
            if old_size > new_size || new_size > s.size()? {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("sizes {old_size}..{new_size} are not within the log"),
                ));
            }
            AuditResponse::Proof(s.consistency_proof(old_size, new_size)?)
        }
        AuditRequest::GetEvents {
            start,
            count,
            tree_size,
        } => {
            if tree_size > s.size()? || start >= tree_size {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("events from {start} in a tree of {tree_size} are not within the log"),
                ));
            }
            let count = u64::from(count.clamp(1, MAX_EVENTS_PER_REQUEST));
            let end = start.saturating_add(count).min(tree_size);
            let mut out = Vec::new();
            let mut bytes = 0usize;
            // Each record's signed header goes once per reply, with its first `sent`.
            let mut seen = HashSet::new();
            for (i, event) in (start..end).zip(s.events(start, end)?) {
                let proof = s.inclusion_proof(i, tree_size)?;
                let header = s.sent_header(&event, &mut seen)?;
                bytes += event.len()
                    + 34 * proof.len()
                    + header.as_ref().map_or(0, |(h, _)| h.len() + 68)
                    + 8;
                if bytes > EVENTS_BUDGET && !out.is_empty() {
                    break;
                }
                out.push(ProvenEvent {
                    event,
                    proof,
                    header,
                });
            }
            AuditResponse::Events(out)
        }
        AuditRequest::Cosign {
            checkpoint,
            signature,
            witnessed_at,
        } => {
            let size = checkpoint.checkpoint.size;
            if s.checkpoint_at(size)?.as_ref() != Some(&checkpoint) {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("the checkpoint of size {size} is not one of ours"),
                ));
            }
            let cosig = Cosignature {
                checkpoint,
                witness: witness.to_owned(),
                signature: hex::encode(signature),
                witnessed_at,
            };
            if let Err(e) = cosig.verify() {
                return Ok(AuditResponse::error("bad_request", e.to_string()));
            }
            AuditResponse::Cosigned(s.add_cosignature(&cosig)?)
        }
    })
}
