//! Preparing stored records for one peer: every record on its way out passes the
//! policy choke point here ([`Policy::prepare`]), is checked against the per-peer
//! sent-cache, is cut to the response's byte budget, and gets its `sent` audit event.
//!
//! [`PrepareJob::run`] is the CPU step: it reads each stored record as a view
//! ([`wlnode_types::HeldView`], decoded zero-copy, every digest checked) and, when the
//! choke point sends the copy whole, sends the stored encoded record as it is; only a
//! copy with fields to withhold is redacted and re-encoded. It is pure and `Send`, so the
//! service runs it on a blocking thread, off the store thread and the event loops. The
//! sent-cache is shared by those jobs ([`SentCaches`]), so that overlapping paths (a
//! Pull batch and a reconciliation, or two sessions) do not send the same copy twice
//! within [`SENT_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wlnode_audit::event::{Event, EventKind};
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::record::RecordHeader;
use wlnode_crypto::time::Timestamp;
use wlnode_policy::{Deny, Policy, Prepared};
use wlnode_types::{RawRecord, StoredRecord};

use crate::msg::Transfer;
use crate::responder::JobId;
use crate::sent::SentCache;

/// How long a copy sent to a peer is not sent again.
pub const SENT_TTL: Duration = Duration::from_secs(300);
/// Most copies remembered per peer.
pub const SENT_CAP: usize = 200_000;

/// Stored records to send, as read on the store thread: (log position, id, bytes if
/// held).
pub type RawBatch = Vec<(u64, RecordId, Option<RawRecord>)>;

/// The sent-caches of every peer, shared by the prepare jobs running at one time.
#[derive(Clone, Debug, Default)]
pub struct SentCaches(Arc<Mutex<HashMap<AgencyCode, SentCache>>>);

impl SentCaches {
    /// Forgets everything sent to `to` (a new connection, or its log was reset: what
    /// we sent before counts for nothing now).
    pub fn forget_peer(&self, to: &AgencyCode) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(to);
        }
    }

    /// Removes copies that were not sent after all from `to`'s cache.
    pub fn forget(&self, to: &AgencyCode, copies: &[(RecordId, usize)]) {
        if let Ok(mut m) = self.0.lock()
            && let Some(c) = m.get_mut(to)
        {
            for (id, disclosed) in copies {
                c.forget(*id, *disclosed);
            }
        }
    }

    /// Whether this copy went to `to` within the TTL; if not, it is remembered as sent
    /// at `now`.
    fn check_and_insert(
        &self,
        to: &AgencyCode,
        id: RecordId,
        disclosed: usize,
        now: Instant,
    ) -> bool {
        match self.0.lock() {
            Ok(mut m) => m
                .entry(to.clone())
                .or_insert_with(|| SentCache::new(SENT_TTL, SENT_CAP))
                .check_and_insert(id, disclosed, now),
            Err(_) => false,
        }
    }
}

/// Why a batch could not be prepared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// A stored record does not decode.
    #[error("store holds a corrupt value in tree records: {reason}")]
    Corrupt {
        /// Which record.
        record: RecordId,
        /// Why.
        reason: String,
    },
    /// The thread running the job failed.
    #[error("{0}")]
    Failed(String),
}

/// How stored records are chosen for one response or request to a peer: a Pull
/// batch, the records a Reconcile exchange found the peer lacking, or the records our
/// own session pushes.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The peer.
    to: AgencyCode,
    /// Bytes of encoded records the message may carry.
    budget: usize,
    /// The first record goes even over `budget`, so that a Pull always advances.
    first_over_budget: bool,
    /// The peer said it lacks these (Reconcile): send even if recently sent.
    lacking: bool,
    /// Skip records that the peer itself sent us (Pull: it has them).
    skip_theirs: bool,
    /// Once the budget is reached, set the remaining ids aside for a later request
    /// instead of stopping (our own Reconcile request pushing records).
    defer_over_budget: bool,
    /// Collect `sent` audit events.
    audit: bool,
}

impl Outgoing {
    /// A Pull batch.
    pub fn pull(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: true,
            lacking: false,
            skip_theirs: true,
            defer_over_budget: false,
            audit,
        }
    }

    /// The records a peer's reconciliation asked for.
    pub fn reconcile(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: false,
            lacking: true,
            skip_theirs: false,
            defer_over_budget: false,
            audit,
        }
    }

    /// The records our own session pushes.
    pub fn push(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: false,
            lacking: true,
            skip_theirs: false,
            defer_over_budget: true,
            audit,
        }
    }

    /// The peer.
    pub fn to(&self) -> &AgencyCode {
        &self.to
    }
}

/// Records prepared for a peer, with their audit events (not yet appended).
#[derive(Debug, Default)]
pub struct Outbound {
    /// The peer.
    pub to: Option<AgencyCode>,
    /// The copies, in order.
    pub transfers: Vec<Transfer>,
    /// The sent-cache entries (id, disclosures) of `transfers`.
    pub cached: Vec<(RecordId, usize)>,
    /// Their `sent` events (empty when the audit log is off).
    pub events: Vec<Event>,
    /// Bytes of encoded copies.
    pub bytes: usize,
    /// Disclosures withheld, over all copies.
    pub withheld: u64,
    /// Records the policy did not let go to this peer.
    pub denied: u64,
    /// The last log position consumed (Pull), if any.
    pub last_seq: Option<u64>,
    /// Stopped at the byte budget before the end of the input.
    pub cut: bool,
    /// Ids set aside at the budget (`defer_over_budget`).
    pub leftover: Vec<RecordId>,
}

/// The audit event for a copy of `rec` that passed the choke point.
fn sent_event(rec: &StoredRecord, prep: &Prepared, at: Timestamp) -> Event {
    let r = &rec.record;
    sent_event_of(r.id(), r.header(), |i| r.disclosure(i).is_some(), prep, at)
}

/// The audit event for a copy of record `id` (header `h`; `holds(i)`: the copy we
/// hold discloses field `i`) that passed the choke point.
fn sent_event_of(
    id: RecordId,
    h: &RecordHeader,
    holds: impl Fn(u32) -> bool,
    prep: &Prepared,
    at: Timestamp,
) -> Event {
    let fields = &h.fields;
    // Every field the copy lacks: withheld here, or already missing from the copy we
    // hold (withheld by an earlier hop). The auditor checks field scopes against it.
    let removed = prep.withheld_indices();
    let lacking = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| u32::try_from(*i).is_ok_and(|i| !holds(i) || removed.contains(&i)));
    Event::new(
        at.as_millis(),
        EventKind::Sent {
            record_id: id,
            to: prep.to().clone(),
            hops: prep.hops(),
            withheld: lacking.map(|(_, f)| f.tag.as_str().to_owned()).collect(),
            // The signed header travels beside the event (export, GetEvents): the
            // record id already commits to it.
            header: None,
            signature: None,
        },
    )
}

/// The choke point plus the sent-cache: `Ok(None)` when this copy already went to
/// `to` within the cache's TTL. With `lacking` (reconciliation has just shown that `to`
/// does not hold the record, e.g. because its store failed to write what we sent) the
/// copy goes out regardless, and is remembered.
fn prepare_once(
    policy: &Policy,
    sent: &SentCaches,
    rec: &StoredRecord,
    to: &AgencyCode,
    lacking: bool,
    now: Instant,
) -> Result<Option<Prepared>, Deny> {
    let prep = policy.prepare(rec, to)?;
    let disclosed = rec
        .record
        .disclosures()
        .len()
        .saturating_sub(prep.withheld());
    let dup = sent.check_and_insert(to, rec.record.id(), disclosed, now);
    Ok(if dup && !lacking { None } else { Some(prep) })
}

/// One batch of stored records to prepare for one peer: everything the step needs,
/// so that it can run on any thread.
#[derive(Debug)]
pub struct PrepareJob {
    pub(crate) job: JobId,
    pub(crate) outgoing: Outgoing,
    pub(crate) policy: Arc<Policy>,
    pub(crate) sent: SentCaches,
    pub(crate) raws: RawBatch,
}

/// What [`PrepareJob::run`] returns, to hand back to the responder.
#[derive(Debug)]
pub struct PrepareDone {
    pub(crate) job: JobId,
    pub(crate) result: Result<Outbound, PrepareError>,
}

impl PrepareDone {
    /// The job could not run (its thread failed).
    pub fn failed(job: JobId, why: String) -> Self {
        Self {
            job,
            result: Err(PrepareError::Failed(why)),
        }
    }
}

impl PrepareJob {
    /// The job this step belongs to.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Decodes the raw records and prepares each for the peer through the policy, in
    /// order, until the budget. `now` and `wall` stamp the sent-cache and the events.
    pub fn run(self, now: Instant, wall: Timestamp) -> PrepareDone {
        PrepareDone {
            job: self.job,
            result: prepare(
                &self.outgoing,
                &self.policy,
                &self.sent,
                self.raws,
                now,
                wall,
            ),
        }
    }
}

fn prepare(
    o: &Outgoing,
    policy: &Policy,
    sent: &SentCaches,
    raws: RawBatch,
    now: Instant,
    wall: Timestamp,
) -> Result<Outbound, PrepareError> {
    let mut out = Outbound {
        to: Some(o.to.clone()),
        ..Outbound::default()
    };
    for (seq, id, raw) in raws {
        if o.defer_over_budget && out.bytes >= o.budget {
            out.leftover.push(id);
            continue;
        }
        let Some(raw) = raw else {
            out.last_seq = Some(seq);
            continue;
        };
        // Read the record as a view first (checked as a decode checks it, digests
        // included: review s33-sync S1): a copy that goes whole (nothing withheld, the
        // common case) is the stored encoded record as it is, not re-encoded. The
        // choke point decides on the same facts either way.
        let view = match raw.view() {
            Ok(v) if v.id == id => v,
            Ok(v) => {
                sent.forget(&o.to, &out.cached);
                return Err(PrepareError::Corrupt {
                    record: id,
                    reason: format!("the stored record's header is that of {}", v.id),
                });
            }
            Err(e) => {
                sent.forget(&o.to, &out.cached);
                return Err(PrepareError::Corrupt {
                    record: id,
                    reason: e.to_string(),
                });
            }
        };
        if o.skip_theirs && view.received_from.as_ref() == Some(&o.to) {
            out.last_seq = Some(seq);
            continue;
        }
        match policy.prepare_held(&view, &o.to) {
            Ok(Some(p)) => {
                let dup = sent.check_and_insert(&o.to, id, view.disclosed.len(), now);
                if !dup || o.lacking {
                    let copy = (id, view.disclosed.len());
                    let first = out.transfers.is_empty() && o.first_over_budget;
                    let len = p.bytes().len() + p.inclusion().map_or(0, |b| b.len());
                    if !o.defer_over_budget && out.bytes + len > o.budget && !first {
                        sent.forget(&o.to, &[copy]);
                        out.cut = true;
                        break;
                    }
                    out.cached.push(copy);
                    out.bytes += len;
                    if o.audit {
                        out.events.push(sent_event_of(
                            id,
                            &view.header,
                            |i| view.holds(i),
                            &p,
                            wall,
                        ));
                    }
                    out.transfers.push(Transfer::from(p));
                }
                out.last_seq = Some(seq);
                continue;
            }
            Err(_) => {
                out.denied += 1;
                out.last_seq = Some(seq);
                continue;
            }
            // Some field is withheld from this peer: decode the record and redact it.
            Ok(None) => {}
        }
        let rec = match raw.decode() {
            Ok(r) => r,
            Err(e) => {
                // Nothing of this batch goes out: what it put in the sent-cache leaves.
                sent.forget(&o.to, &out.cached);
                return Err(PrepareError::Corrupt {
                    record: id,
                    reason: e.to_string(),
                });
            }
        };
        if o.skip_theirs && rec.received_from.as_ref() == Some(&o.to) {
            out.last_seq = Some(seq);
            continue;
        }
        match prepare_once(policy, sent, &rec, &o.to, o.lacking, now) {
            Ok(Some(p)) => {
                let copy = (
                    rec.record.id(),
                    rec.record.disclosures().len().saturating_sub(p.withheld()),
                );
                let first = out.transfers.is_empty() && o.first_over_budget;
                // A revoked key's record's proof travels in the same frame.
                let len = p.bytes().len() + p.inclusion().map_or(0, |b| b.len());
                if !o.defer_over_budget && out.bytes + len > o.budget && !first {
                    // Not sent after all: a later response must not skip it.
                    sent.forget(&o.to, &[copy]);
                    out.cut = true;
                    break;
                }
                out.cached.push(copy);
                out.bytes += len;
                out.withheld += p.withheld() as u64;
                if o.audit {
                    out.events.push(sent_event(&rec, &p, wall));
                }
                out.transfers.push(Transfer::from(p));
            }
            // Recently sent: not a policy decision, it keeps overlapping sync paths
            // from sending the same copy twice.
            Ok(None) => {}
            Err(_) => out.denied += 1,
        }
        out.last_seq = Some(seq);
    }
    Ok(out)
}
