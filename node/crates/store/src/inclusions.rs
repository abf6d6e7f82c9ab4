//! Inclusion proofs kept with records of revoked keys: the origin builds them from its
//! own audit log, and every node checks the ones it holds again when the roster
//! changes.
//!
//! A revoked key's record travels only with a proof that an auditor witnessed it in
//! its origin's log before the revocation (`wlnode_audit::inclusion`). The origin is
//! the one node that can make such a proof: it holds the log, the `created` event and
//! the auditors' dated cosignatures. When a revocation of one of its own keys comes
//! into force, [`Store::refresh_inclusions`] finds its records of that key, their
//! events and a cosignature dated before the revocation, and stores each proof with
//! its record; the record goes on the arrival log again, so that the replication sets
//! see that it may now be sent. Proofs this node was sent are kept the same way (by
//! ingest) and dropped here once a new roster no longer supports them (an auditor
//! removed, a revocation moved earlier).

use std::collections::{BTreeMap, HashMap};

use wlnode_audit::event::{Event, EventKind};
use wlnode_audit::inclusion::RecordInclusion;
use wlnode_crypto::PublicKey;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::roster::{KeyStanding, Role, Roster};
use wlnode_crypto::time::Timestamp;
use wlnode_types::{StoredRecord, SyncMeta};

use crate::Engine as _;
use crate::schema::{meta, trees};
use crate::{LOG_CHUNK, Store, StoreError, TxResult, abort, u64_of};

/// Records rewritten per transaction.
const BATCH: usize = 512;

/// Audit events read per store call while looking for `created` events.
const EVENT_CHUNK: u64 = 8_192;

/// What [`Store::refresh_inclusions`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InclusionReport {
    /// Whether the roster had changed since the last run (else nothing was read).
    pub applied: bool,
    /// Own records of revoked keys given a proof.
    pub proven: u64,
    /// Own records of revoked keys for which the log holds no `created` event under a
    /// cosignature dated before the revocation: they stay demoted and unsent.
    pub unprovable: u64,
    /// Held proofs that no longer hold under the roster, dropped.
    pub dropped: u64,
}

/// When this node first learned of each revocation: (agency, key) → Unix ms.
pub type RevocationsKnown = BTreeMap<(AgencyCode, PublicKey), u64>;

impl Store {
    /// When this node first learned of each of `roster`'s revocations: the ones it
    /// had not seen before are noted at `now` (and kept, so a restart does not move
    /// them later). A proof of a revoked key's record must predate the earlier of the
    /// revocation's date and this.
    pub fn revocations_known(
        &self,
        roster: &Roster,
        now: Timestamp,
    ) -> Result<RevocationsKnown, StoreError> {
        let mut held: Vec<(String, String, u64)> = match self.meta_get(meta::REVOCATIONS_KNOWN)? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| StoreError::corrupt(trees::META, format!("revocations_known: {e}")))?,
            None => Vec::new(),
        };
        let mut out = RevocationsKnown::new();
        let mut added = false;
        for (agency, r) in roster.revocations() {
            let key_hex = hex::encode(r.key.as_bytes());
            let at = match held
                .iter()
                .find(|(a, k, _)| a == agency.as_str() && *k == key_hex)
            {
                Some((_, _, at)) => *at,
                None => {
                    held.push((agency.to_string(), key_hex, now.as_millis()));
                    added = true;
                    now.as_millis()
                }
            };
            out.insert((agency.clone(), r.key), at);
        }
        if added {
            let bytes = serde_json::to_vec(&held)
                .map_err(|e| StoreError::corrupt(trees::META, format!("revocations_known: {e}")))?;
            self.meta_set(meta::REVOCATIONS_KNOWN, &bytes)?;
            self.write_result(self.db.flush())?;
        }
        Ok(out)
    }

    /// Builds proofs for this node's own records (`me`'s, created here) of keys that
    /// `roster` revokes, and drops held proofs that `roster` no longer supports; once
    /// per roster (nothing is read when `roster` is the one applied last).
    ///
    /// `known` says when this node learned of each revocation
    /// ([`Self::revocations_known`]); a proof's cosignature must predate the earlier
    /// of that and the revocation's date.
    pub fn refresh_inclusions(
        &self,
        roster: &Roster,
        me: &AgencyCode,
        known: &RevocationsKnown,
    ) -> Result<InclusionReport, StoreError> {
        // What a proof's validity depends on: the revocations (keys, dates, kept
        // records) and who runs which nodes in which role. Other roster edits (groups,
        // names, key windows) cost no scan.
        let digest = {
            let mut h = wlnode_crypto::sha256::Hasher::new();
            h.update(&roster.revocations_digest());
            for (_, r) in roster.revocations() {
                h.update(&r.revoked_at.as_millis().to_be_bytes());
            }
            for m in roster.members() {
                h.update(m.agency.as_str().as_bytes());
                h.update(m.role.to_string().as_bytes());
                for n in &m.node_ids {
                    h.update(b"\0");
                    h.update(n.as_bytes());
                }
                h.update(b"\n");
            }
            for ((a, k), at) in known {
                h.update(a.as_str().as_bytes());
                h.update(k.as_bytes());
                h.update(&at.to_be_bytes());
            }
            h.update(me.as_str().as_bytes());
            h.finish()
        };
        let mut report = InclusionReport::default();
        if self
            .meta_get(meta::INCLUSIONS_APPLIED)?
            .is_some_and(|d| d == digest)
        {
            return Ok(report);
        }
        // No key revoked: no record can need, or hold a useful, proof. Nothing to read.
        if roster.revocations().next().is_none() {
            self.meta_set(meta::INCLUSIONS_APPLIED, &digest)?;
            return Ok(report);
        }
        report.applied = true;
        let revoked_at = |origin: &AgencyCode, key: PublicKey| {
            roster
                .member(origin)
                .and_then(|m| m.revoked.iter().find(|r| r.key == key))
                .map(|r| {
                    let learned = known
                        .get(&(origin.clone(), key))
                        .copied()
                        .unwrap_or(u64::MAX);
                    Timestamp(r.revoked_at.as_millis().min(learned))
                })
        };
        // Own records that need a proof (id → revocation date), and held proofs that
        // no longer hold.
        let mut want: HashMap<RecordId, Timestamp> = HashMap::new();
        let mut changes: HashMap<RecordId, Option<bytes::Bytes>> = HashMap::new();
        for kv in self.t.records.iter() {
            let (_, v) = kv.io()?;
            let stored =
                StoredRecord::decode(&v).map_err(|e| StoreError::corrupt(trees::RECORDS, e))?;
            let h = stored.record.header();
            let id = stored.record.id();
            if roster.key_standing(&h.origin, &h.signer_key, &id) != KeyStanding::Revoked {
                continue;
            }
            let Some(at) = revoked_at(&h.origin, h.signer_key) else {
                continue;
            };
            let holds = stored.inclusion.as_ref().is_some_and(|b| {
                RecordInclusion::decode(b)
                    .and_then(|p| p.verify(roster, &id, &h.origin, at))
                    .is_ok()
            });
            if holds {
                continue;
            }
            if stored.inclusion.is_some() {
                report.dropped += 1;
                changes.insert(id, None);
            }
            if h.origin == *me && stored.hops == 0 {
                want.insert(id, at);
            }
        }
        if !want.is_empty() {
            let proofs = self.own_proofs(roster, me, &want)?;
            report.proven = proofs.len() as u64;
            report.unprovable = (want.len() - proofs.len()) as u64;
            for (id, proof) in proofs {
                changes.insert(id, Some(proof));
            }
        }
        let t = &self.t;
        let trees = [&t.meta, &t.records, &t.log, &t.sync_index];
        let changes: Vec<(RecordId, Option<bytes::Bytes>)> = changes.into_iter().collect();
        for chunk in changes.chunks(BATCH) {
            self.transaction(&trees, |tx| rewrite_tx(tx, chunk))?;
            self.count_writes(chunk.len() * 3);
            self.write_result(self.db.flush())?;
        }
        self.meta_set(meta::INCLUSIONS_APPLIED, &digest)?;
        Ok(report)
    }

    /// Proofs for the records in `want` from this node's audit log: each record's
    /// `created` event under the smallest checkpoint a roster auditor cosigned, dated
    /// before the record's revocation, that covers it.
    fn own_proofs(
        &self,
        roster: &Roster,
        me: &AgencyCode,
        want: &HashMap<RecordId, Timestamp>,
    ) -> Result<Vec<(RecordId, bytes::Bytes)>, StoreError> {
        // Dated cosignatures, before the latest cutoff, by auditors of this roster over
        // our own checkpoints, smallest tree first. The date and roster filters run
        // before the two signature checks.
        let latest = want.values().map(|t| t.as_millis()).max().unwrap_or(0);
        let mut cosigs: Vec<_> = self
            .audit_cosignatures()?
            .into_iter()
            .filter(|c| {
                c.witnessed_at.is_some_and(|w| w < latest)
                    && c.checkpoint.checkpoint.agency == *me
                    && roster
                        .agency_of_peer(&c.checkpoint.checkpoint.peer_id)
                        .is_some_and(|m| m.agency == *me)
                    && roster
                        .agency_of_peer(&c.witness)
                        .is_some_and(|m| m.role == Role::Auditor)
                    && c.verify().is_ok()
                    && c.checkpoint.verify().is_ok()
            })
            .collect();
        if cosigs.is_empty() {
            return Ok(Vec::new());
        }
        cosigs.sort_by_key(|c| c.checkpoint.checkpoint.size);
        let largest = cosigs
            .last()
            .map_or(0, |c| c.checkpoint.checkpoint.size)
            .min(self.audit_size()?);
        let mut out = Vec::new();
        // Each record once (a record can have more than one `created` event: an import
        // that merged disclosures into it logs another).
        let mut remaining: std::collections::HashSet<RecordId> = want.keys().copied().collect();
        let mut from = 0u64;
        while from < largest && !remaining.is_empty() {
            let to = from.saturating_add(EVENT_CHUNK).min(largest);
            for (index, bytes) in (from..).zip(self.audit_events(from, to)?) {
                // Most events are not creations; skip them without parsing.
                if !bytes
                    .windows(b"\"created\"".len())
                    .any(|w| w == b"\"created\"")
                {
                    continue;
                }
                let Ok(Event {
                    kind: EventKind::Created { record_id },
                    ..
                }) = Event::decode(&bytes)
                else {
                    continue;
                };
                let Some(at) = want
                    .get(&record_id)
                    .filter(|_| remaining.contains(&record_id))
                else {
                    continue;
                };
                // The smallest covering tree first (its path is the shortest); the
                // next one if a proof does not hold.
                let first = cosigs.partition_point(|c| c.checkpoint.checkpoint.size <= index);
                for cosig in cosigs
                    .get(first..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| c.witnessed_at.is_some_and(|w| w < at.as_millis()))
                {
                    let path =
                        self.audit_inclusion_proof(index, cosig.checkpoint.checkpoint.size)?;
                    let proof = RecordInclusion::new(index, &bytes, &path, cosig.clone());
                    // Only a proof that holds is kept (a corrupt log must not hand out
                    // proofs its peers would strike us for).
                    match proof.verify(roster, &record_id, me, *at) {
                        Ok(_) => {
                            remaining.remove(&record_id);
                            out.push((record_id, bytes::Bytes::from(proof.encode())));
                            break;
                        }
                        Err(e) => tracing::warn!(
                            record = %record_id,
                            error = %e,
                            "an inclusion proof built from our own log does not hold"
                        ),
                    }
                }
            }
            from = to;
        }
        Ok(out)
    }
}

/// Stores each record's new proof (or none), puts it on the arrival log again and
/// updates its sync-index facts.
#[allow(clippy::indexing_slicing)] // fixed-size tree list built by the caller
fn rewrite_tx(
    tx: &[crate::engine::TxTree<'_>],
    chunk: &[(RecordId, Option<bytes::Bytes>)],
) -> TxResult<()> {
    let (meta_t, records, log, sync_index) = (&tx[0], &tx[1], &tx[2], &tx[3]);
    let mut next_seq = u64_of(meta_t.get(meta::NEXT_SEQ)?).max(1);
    let first_seq = next_seq;
    let mut new_log: Vec<u8> = Vec::new();
    for (id, proof) in chunk {
        let Some(raw) = records.get(id.0)? else {
            continue;
        };
        let mut stored = match StoredRecord::decode(&raw) {
            Ok(r) => r,
            Err(e) => return abort(StoreError::corrupt(trees::RECORDS, e)),
        };
        stored.inclusion.clone_from(proof);
        stored.seq = next_seq;
        records.insert(id.0, stored.encode())?;
        let h = stored.record.header();
        sync_index.insert(
            &crate::schema::sync_key(h.issued_at.as_millis(), &id.0)[..],
            SyncMeta::stored(&stored).encode(),
        )?;
        new_log.extend_from_slice(&id.0);
        next_seq += 1;
    }
    for (seq, ids) in (first_seq..)
        .step_by(LOG_CHUNK)
        .zip(new_log.chunks(LOG_CHUNK * 32))
    {
        log.insert(seq.to_be_bytes(), ids)?;
    }
    meta_t.insert(meta::NEXT_SEQ, next_seq.to_be_bytes())?;
    Ok(())
}
