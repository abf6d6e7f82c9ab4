//! Checking records received from a peer before they are stored: decode (with
//! disclosure digests), the distribution as seen from the receiving side, the signer
//! key's validity in the roster, the clock, and finally the signatures, in one batch.
//!
//! Pure and CPU-bound: the replication service runs it on the blocking pool and stores what
//! passes. Every rejection keeps its reason for metrics, audit and bans.

use std::time::Duration;

use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::record::{Record, verify_batch};
use wlnode_crypto::roster::RosterError;
use wlnode_crypto::time::Timestamp;

use crate::msg::Received;
use wlnode_policy::{Deny, Policy, check_receive};
use wlnode_types::{Incoming, Source, SyncMeta};

/// Why a received record was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Not a well-formed record, or a disclosure does not match its digest.
    Malformed(String),
    /// Its distribution does not admit this node (or the sender, or the path).
    Distribution(Deny),
    /// Its signer key was not valid for its origin at `issued_at`.
    Roster(&'static str),
    /// Issued in the future beyond the allowed clock skew.
    FromFuture,
    /// The signature does not verify.
    BadSignature,
    /// A local accept rule refused it.
    Policy(String),
}

impl RejectReason {
    /// Machine-readable reason.
    pub fn code(&self) -> String {
        match self {
            Self::Malformed(_) => "malformed".into(),
            Self::Distribution(d) => format!("distribution_{}", d.code()),
            Self::Roster(c) => (*c).to_owned(),
            Self::FromFuture => "from_future".into(),
            Self::BadSignature => "bad_signature".into(),
            Self::Policy(_) => "declined_by_policy".into(),
        }
    }

    /// Whether this counts as invalid input from the sender (towards a ban). Clock
    /// skew and our own accept rules do not.
    pub fn counts_against_sender(&self) -> bool {
        !matches!(self, Self::FromFuture | Self::Policy(_))
    }
}

fn roster_code(e: &RosterError) -> &'static str {
    match e {
        RosterError::UnknownAgency(_) => "unknown_agency",
        RosterError::UnknownKey { .. } => "unknown_key",
        RosterError::KeyNotYetValid { .. } => "key_not_yet_valid",
        RosterError::ExpiredKey { .. } => "expired_key",
        RosterError::RevokedKey { .. } => "revoked_key",
        RosterError::WrongRole { .. } => "wrong_role",
        _ => "roster",
    }
}

/// One refused record.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Its id, when it decoded.
    pub record_id: Option<RecordId>,
    /// Its origin, when it decoded.
    pub origin: Option<AgencyCode>,
    /// Why.
    pub reason: RejectReason,
}

/// The outcome of checking a batch.
#[derive(Debug, Default)]
pub struct Checked {
    /// Records to store.
    pub accepted: Vec<Incoming>,
    /// Records refused.
    pub rejected: Vec<Rejected>,
    /// Records our accept rules declined (remembered so peers stop offering them).
    pub declined: Vec<(u64, RecordId, SyncMeta)>,
}

/// Checks records `from` sent us.
pub fn check(
    policy: &Policy,
    from: &AgencyCode,
    transfers: Vec<Received>,
    now: Timestamp,
    max_skew: Duration,
) -> Checked {
    let roster = policy.roster();
    let me = policy.me();
    let mut out = Checked::default();
    let mut pending: Vec<(Record, u32)> = Vec::with_capacity(transfers.len());
    let limit = now
        .as_millis()
        .saturating_add(u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX));
    for t in transfers {
        let record = match Record::decode_bytes(t.record) {
            Ok(r) => r,
            Err(e) => {
                out.rejected.push(Rejected {
                    record_id: None,
                    origin: None,
                    reason: RejectReason::Malformed(e.to_string()),
                });
                continue;
            }
        };
        let h = record.header();
        let reject = |reason| Rejected {
            record_id: Some(record.id()),
            origin: Some(h.origin.clone()),
            reason,
        };
        if let Err(d) = check_receive(roster, h, me, from, t.hops) {
            out.rejected.push(reject(RejectReason::Distribution(d)));
            continue;
        }
        if let Err(e) = roster.check_record_signer(&h.origin, &h.signer_key, h.issued_at) {
            out.rejected
                .push(reject(RejectReason::Roster(roster_code(&e))));
            continue;
        }
        if h.issued_at.as_millis() > limit {
            out.rejected.push(reject(RejectReason::FromFuture));
            continue;
        }
        if let Err(why) = policy.accept(&record, from) {
            out.declined
                .push((h.issued_at.as_millis(), record.id(), SyncMeta::of(h)));
            out.rejected.push(reject(RejectReason::Policy(why)));
            continue;
        }
        pending.push((record, t.hops));
    }
    let hops: Vec<u32> = pending.iter().map(|(_, h)| *h).collect();
    let records: Vec<Record> = pending.into_iter().map(|(r, _)| r).collect();
    for (res, hops) in verify_batch(records).into_iter().zip(hops) {
        match res {
            Ok(record) => out.accepted.push(Incoming {
                record,
                source: Source::Peer {
                    agency: from.clone(),
                    hops,
                },
                local: None,
            }),
            Err(rej) => out.rejected.push(Rejected {
                record_id: Some(rej.record.id()),
                origin: Some(rej.record.header().origin.clone()),
                reason: RejectReason::BadSignature,
            }),
        }
    }
    out
}
