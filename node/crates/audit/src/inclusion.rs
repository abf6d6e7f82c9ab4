//! Proof that a record was in its origin's audit log before its signing key was
//! revoked: the `created` event, its audit path, and an auditor's dated cosignature of
//! a checkpoint that covers it.
//!
//! A revoked key's records are suspect whatever their `issued_at` says, since the
//! thief chooses it. A node takes one only if it held it before it learned of the
//! revocation, if the roster authority lists it under `keep`, or if it comes with one
//! of these proofs: an auditor (a roster member with role `auditor`) witnessed, at a
//! time before the key's `revoked_at`, a checkpoint of one of the origin's own nodes
//! whose log already said "created this record". A thief holding only the signing key
//! cannot put a record into the origin's log; one holding the origin node's identity
//! key too cannot get a rewritten log cosigned (the auditor adopts only append-only
//! histories), and could at most get records in before the revocation date, which is
//! when the authority says the key stopped being trusted.
//!
//! The origin builds these from its own log when a revocation of one of its keys comes
//! into force; nodes that accept a record with one keep it beside the record and pass it
//! on, so that nodes with no link to the origin can check it too.

use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::roster::{Role, Roster};
use wlnode_crypto::time::Timestamp;

use crate::event::{CheckpointError, Cosignature, Event, EventError, EventKind};
use crate::merkle::{self, Hash, ProofError};

/// Largest encoded proof accepted (a path is at most 64 hashes; the rest is a few
/// hundred bytes of JSON).
pub const MAX_INCLUSION_BYTES: usize = 16 * 1024;

/// A record's `created` event in its origin's log, proven under a cosigned checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInclusion {
    /// The event's leaf index in the origin node's log.
    pub index: u64,
    /// The event's canonical bytes (JSON text).
    pub event: String,
    /// The audit path from the leaf to the checkpoint's root (hex hashes, leaf first).
    pub path: Vec<String>,
    /// The auditor's dated cosignature of the origin node's signed checkpoint.
    pub cosignature: Cosignature,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// Larger than [`MAX_INCLUSION_BYTES`].
    #[error("inclusion proof of {0} bytes (at most {MAX_INCLUSION_BYTES})")]
    TooLarge(usize),
    /// Not a proof.
    #[error("not an inclusion proof: {0}")]
    Decode(String),
    /// The event bytes are not a canonical audit event.
    #[error("inclusion proof event: {0}")]
    Event(#[from] EventError),
    /// The event is not the creation of this record.
    #[error("the proven event is not the creation of record {0}")]
    WrongEvent(RecordId),
    /// A path element is not 64 hex characters.
    #[error("inclusion proof path element {0} is not a hash")]
    BadHash(usize),
    /// The checkpoint's root is not 64 hex characters.
    #[error("checkpoint root is not a hash")]
    BadRoot,
    /// The path does not lead to the checkpoint's root.
    #[error("inclusion proof: {0}")]
    Path(#[from] ProofError),
    /// The origin node's signature over the checkpoint does not verify.
    #[error("checkpoint: {0}")]
    Checkpoint(CheckpointError),
    /// The auditor's signature does not verify.
    #[error("cosignature: {0}")]
    Cosignature(CheckpointError),
    /// The checkpoint is not one of the origin's nodes' (by our roster).
    #[error("checkpoint of {peer_id} ({agency}) is not a node of {origin} in our roster")]
    NotOriginNode {
        /// The checkpoint's PeerId.
        peer_id: String,
        /// The agency the checkpoint names.
        agency: AgencyCode,
        /// The record's origin.
        origin: AgencyCode,
    },
    /// The witness is not a node of an auditor in our roster.
    #[error("witness {0} is not a node of an auditor in our roster")]
    NotAnAuditor(String),
    /// An undated (v1) cosignature proves nothing about when.
    #[error("the cosignature is undated")]
    Undated,
    /// The auditor witnessed the checkpoint at or after the key's revocation.
    #[error("witnessed at {witnessed_at}, not before the revocation at {revoked_at}")]
    AfterRevocation {
        /// The auditor's date (Unix ms).
        witnessed_at: u64,
        /// The revocation's date (Unix ms).
        revoked_at: u64,
    },
}

impl InclusionError {
    /// Whether the proof is forged or corrupt (a signature, hash or encoding that no
    /// honest node produces: a strike), as opposed to one that does not hold under our
    /// roster (which an honest node with another roster version may forward).
    pub fn is_forgery(&self) -> bool {
        !matches!(
            self,
            Self::NotOriginNode { .. }
                | Self::NotAnAuditor(_)
                | Self::Undated
                | Self::AfterRevocation { .. }
        )
    }

    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        if self.is_forgery() {
            "bad_inclusion"
        } else {
            "inclusion_not_before_revocation"
        }
    }
}

impl RecordInclusion {
    /// A proof from its parts.
    pub fn new(index: u64, event: &[u8], path: &[Hash], cosignature: Cosignature) -> Self {
        Self {
            index,
            event: String::from_utf8_lossy(event).into_owned(),
            path: path.iter().map(hex::encode).collect(),
            cosignature,
        }
    }

    /// The proof of event `index` (whose canonical bytes are `event`) in the log `s`
    /// holds, under the checkpoint `cosignature` witnessed.
    pub fn build<S: merkle::NodeStore>(
        s: &S,
        index: u64,
        event: &[u8],
        cosignature: Cosignature,
    ) -> Result<Self, merkle::MerkleError<S::Error>> {
        let path = merkle::inclusion_proof(s, index, cosignature.checkpoint.checkpoint.size)?;
        Ok(Self::new(index, event, &path, cosignature))
    }

    /// The encoding that travels beside a record and is kept with it (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes at most [`MAX_INCLUSION_BYTES`].
    pub fn decode(b: &[u8]) -> Result<Self, InclusionError> {
        if b.len() > MAX_INCLUSION_BYTES {
            return Err(InclusionError::TooLarge(b.len()));
        }
        serde_json::from_slice(b).map_err(|e| InclusionError::Decode(e.to_string()))
    }

    /// When the auditor witnessed the checkpoint, if dated.
    pub fn witnessed_at(&self) -> Option<u64> {
        self.cosignature.witnessed_at
    }

    /// Checks that this proves record `id` of `origin` was in one of `origin`'s node
    /// logs under a checkpoint a roster auditor witnessed before `revoked_at` (the
    /// caller passes the earlier of the revocation's date and when it learned of it).
    /// Returns the witness date. The event and path come first, so junk costs no
    /// signature check; the signatures come before the roster's questions, so a
    /// proof refused only by our roster is genuine.
    pub fn verify(
        &self,
        roster: &Roster,
        id: &RecordId,
        origin: &AgencyCode,
        revoked_at: Timestamp,
    ) -> Result<u64, InclusionError> {
        let event = Event::decode(self.event.as_bytes())?;
        if !matches!(event.kind, EventKind::Created { record_id } if record_id == *id) {
            return Err(InclusionError::WrongEvent(*id));
        }
        let mut path = Vec::with_capacity(self.path.len().min(64));
        for (i, p) in self.path.iter().enumerate() {
            let mut h = [0u8; 32];
            hex::decode_to_slice(p, &mut h).map_err(|_| InclusionError::BadHash(i))?;
            path.push(h);
        }
        let signed = &self.cosignature.checkpoint;
        let cp = &signed.checkpoint;
        let root = cp.root_hash().ok_or(InclusionError::BadRoot)?;
        merkle::verify_inclusion(
            &merkle::leaf_hash(self.event.as_bytes()),
            self.index,
            cp.size,
            &path,
            &root,
        )?;
        // Both signatures before any roster question: a proof that fails only under
        // our roster must be genuine, or it could claim the roster-lag allowance.
        signed.verify().map_err(InclusionError::Checkpoint)?;
        self.cosignature
            .verify()
            .map_err(InclusionError::Cosignature)?;
        if cp.agency != *origin
            || roster
                .agency_of_peer(&cp.peer_id)
                .is_none_or(|m| m.agency != *origin)
        {
            return Err(InclusionError::NotOriginNode {
                peer_id: cp.peer_id.clone(),
                agency: cp.agency.clone(),
                origin: origin.clone(),
            });
        }
        if roster
            .agency_of_peer(&self.cosignature.witness)
            .is_none_or(|m| m.role != Role::Auditor)
        {
            return Err(InclusionError::NotAnAuditor(
                self.cosignature.witness.clone(),
            ));
        }
        let witnessed_at = self.witnessed_at().ok_or(InclusionError::Undated)?;
        if witnessed_at >= revoked_at.as_millis() {
            return Err(InclusionError::AfterRevocation {
                witnessed_at,
                revoked_at: revoked_at.as_millis(),
            });
        }
        Ok(witnessed_at)
    }
}

#[cfg(test)]
mod tests {
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::SecretKey;
    use wlnode_crypto::roster::Role;

    use super::*;
    use crate::event::{Checkpoint, SignedCheckpoint};
    use crate::merkle::MemStore;

    const DAY: u64 = 86_400_000;

    struct Fx {
        roster: Roster,
        aa_node: SecretKey,
        auditor_node: SecretKey,
        revoked_at: Timestamp,
    }

    /// AA-EXPORT (member) and AU-AUDIT (auditor); AA's key revoked at `revoked_at`.
    fn fixture() -> Fx {
        let authority = SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        let aa_key = SecretKey::generate().unwrap();
        let aa_node = SecretKey::generate().unwrap();
        let auditor_node = SecretKey::generate().unwrap();
        let now = Timestamp::now().as_millis();
        for (agency, role, key, node) in [
            ("AA-EXPORT", Role::Member, &aa_key, &aa_node),
            (
                "AU-AUDIT",
                Role::Auditor,
                &SecretKey::generate().unwrap(),
                &auditor_node,
            ),
        ] {
            text = roster_edit::add_member(
                &text,
                &NewMember::coded(
                    agency,
                    role,
                    key.public_key(),
                    vec![node.public_key().peer_id()],
                    &[],
                    Timestamp(now - 10 * DAY),
                )
                .unwrap(),
            )
            .unwrap();
        }
        let revoked_at = Timestamp(now - DAY);
        text = roster_edit::revoke_key(
            &text,
            &"AA-EXPORT".parse().unwrap(),
            &aa_key.public_key(),
            revoked_at,
            "compromised",
            &[],
        )
        .unwrap();
        let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
        Fx {
            roster,
            aa_node,
            auditor_node,
            revoked_at,
        }
    }

    fn aa() -> AgencyCode {
        "AA-EXPORT".parse().unwrap()
    }

    /// A log of `n` events of AA's node whose event 2 is the creation of `id`, its
    /// checkpoint, and a proof of event 2 witnessed at `witnessed_at`.
    fn proof(fx: &Fx, id: RecordId, witnessed_at: u64) -> RecordInclusion {
        let mut tree = MemStore::new();
        let mut events = Vec::new();
        for i in 0..5u64 {
            let kind = if i == 2 {
                EventKind::Created { record_id: id }
            } else {
                EventKind::Created {
                    record_id: RecordId([i as u8; 32]),
                }
            };
            let e = Event::new(1_000 + i, kind).encode();
            merkle::append(&mut tree, i, merkle::leaf_hash(&e)).unwrap();
            events.push(e);
        }
        let cp: SignedCheckpoint = Checkpoint {
            agency: aa(),
            peer_id: fx.aa_node.public_key().peer_id(),
            size: 5,
            root: hex::encode(merkle::root(&tree, 5).unwrap()),
            timestamp: witnessed_at,
        }
        .sign(&fx.aa_node);
        let path = merkle::inclusion_proof(&tree, 2, 5).unwrap();
        RecordInclusion::new(
            2,
            &events[2],
            &path,
            Cosignature::sign(cp, witnessed_at, &fx.auditor_node),
        )
    }

    #[test]
    fn a_proof_witnessed_before_the_revocation_verifies_and_round_trips() {
        let fx = fixture();
        let id = RecordId([9; 32]);
        let p = proof(&fx, id, fx.revoked_at.as_millis() - DAY);
        let back = RecordInclusion::decode(&p.encode()).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            back.verify(&fx.roster, &id, &aa(), fx.revoked_at),
            Ok(fx.revoked_at.as_millis() - DAY)
        );
    }

    #[test]
    fn a_proof_witnessed_at_or_after_the_revocation_proves_nothing() {
        let fx = fixture();
        let id = RecordId([9; 32]);
        let p = proof(&fx, id, fx.revoked_at.as_millis());
        let e = p.verify(&fx.roster, &id, &aa(), fx.revoked_at).unwrap_err();
        assert!(matches!(e, InclusionError::AfterRevocation { .. }), "{e}");
        assert!(!e.is_forgery());
    }

    #[test]
    fn forged_or_misapplied_proofs_are_refused_with_their_reason() {
        let fx = fixture();
        let id = RecordId([9; 32]);
        let before = fx.revoked_at.as_millis() - DAY;
        let good = proof(&fx, id, before);
        let check = |p: &RecordInclusion, id: &RecordId| {
            p.verify(&fx.roster, id, &aa(), fx.revoked_at).unwrap_err()
        };
        // Another record's proof.
        let e = check(&good, &RecordId([8; 32]));
        assert!(matches!(e, InclusionError::WrongEvent(_)) && e.is_forgery());
        // A path that leads elsewhere.
        let mut p = good.clone();
        p.path[0] = hex::encode([0u8; 32]);
        assert!(matches!(check(&p, &id), InclusionError::Path(_)));
        // Another leaf index.
        let mut p = good.clone();
        p.index = 3;
        assert!(matches!(check(&p, &id), InclusionError::Path(_)));
        // The auditor's date changed after signing: the cosignature fails.
        let mut p = good.clone();
        p.cosignature.witnessed_at = Some(before - 1);
        let e = check(&p, &id);
        assert!(matches!(e, InclusionError::Cosignature(_)) && e.is_forgery());
        // Dropping the date breaks the signature too: an undated proof must be a
        // genuine v1 cosignature to be "undated" rather than forged.
        let mut p = good.clone();
        p.cosignature.witnessed_at = None;
        assert!(check(&p, &id).is_forgery());
        let cp = good.cosignature.checkpoint.clone();
        let (ctx, msg) = Cosignature::message(&cp.checkpoint, None);
        let p = RecordInclusion {
            cosignature: Cosignature {
                signature: hex::encode(fx.auditor_node.sign(ctx, &msg).0),
                witnessed_at: None,
                ..good.cosignature.clone()
            },
            ..good.clone()
        };
        assert_eq!(check(&p, &id), InclusionError::Undated);
        // Cosigned by a member's node, not an auditor's.
        let p = RecordInclusion {
            cosignature: Cosignature::sign(
                good.cosignature.checkpoint.clone(),
                before,
                &fx.aa_node,
            ),
            ..good.clone()
        };
        assert!(matches!(check(&p, &id), InclusionError::NotAnAuditor(_)));
        // A checkpoint signed by the auditor's node in AA's name.
        let mut cp = good.cosignature.checkpoint.checkpoint.clone();
        cp.peer_id = fx.auditor_node.public_key().peer_id();
        let p = RecordInclusion {
            cosignature: Cosignature::sign(cp.sign(&fx.auditor_node), before, &fx.auditor_node),
            ..good.clone()
        };
        assert!(matches!(
            check(&p, &id),
            InclusionError::NotOriginNode { .. }
        ));
        // Too large, and not JSON.
        assert!(matches!(
            RecordInclusion::decode(&vec![b' '; MAX_INCLUSION_BYTES + 1]),
            Err(InclusionError::TooLarge(_))
        ));
        assert!(matches!(
            RecordInclusion::decode(b"{"),
            Err(InclusionError::Decode(_))
        ));
    }
}
