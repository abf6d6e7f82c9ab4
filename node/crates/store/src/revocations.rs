//! Bringing entry states in line with the revocations in force.
//!
//! A key revoked after its records were stored does not make them go away (they were
//! valid when this node took them, and are evidence), but they must no longer decide
//! an entry: its records signed by a valid key rank above them whatever the versions,
//! and they do not count towards an equivocation. When the roster's revocations change
//! (and once for stores written before schema 3), [`Store::apply_revocations`] scans the
//! records, marks the demoted ones in their entries' states, and re-derives each
//! changed entry's head and disputes. A head that changes goes on the arrival log again,
//! so the screening index and the neighbours see it.

use std::collections::BTreeMap;

use wlnode_crypto::model::{RecordId, Status};
use wlnode_crypto::record::RecordHeader;
use wlnode_crypto::time::Timestamp;
use wlnode_types::{EntryKey, EntryState, StoredRecord};

use crate::Engine as _;
use crate::schema::{meta, trees, version_key};
use crate::{COUNT_WITHDRAWN, LOG_CHUNK, Store, StoreError, TxResult, abort, decode_state, u64_of};

/// Entry states rewritten per transaction.
const BATCH: usize = 512;

/// What [`Store::apply_revocations`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationReport {
    /// Whether the revocations had changed since the last run (else nothing was read).
    pub applied: bool,
    /// Records found demoted.
    pub demoted_records: u64,
    /// Entries whose demoted records changed.
    pub entries_changed: u64,
    /// Entries whose head changed (their new heads went on the arrival log).
    pub heads_changed: u64,
    /// The arrival-log head afterwards.
    pub head_seq: u64,
}

impl Store {
    /// Marks the records `demoted` says are demoted (a revoked key's, not kept), in
    /// every entry, unless the revocations whose SHA-256 is `digest` are already the
    /// ones applied. `demoted` sees each record's header and id.
    pub fn apply_revocations(
        &self,
        digest: [u8; 32],
        demoted: impl Fn(&RecordHeader, &RecordId) -> bool,
        now: Timestamp,
    ) -> Result<RevocationReport, StoreError> {
        let mut report = RevocationReport {
            head_seq: self.head_seq()?,
            ..RevocationReport::default()
        };
        if self
            .meta_get(meta::REVOCATIONS_APPLIED)?
            .is_some_and(|d| d == digest)
        {
            return Ok(report);
        }
        report.applied = true;
        // Every demoted record, by entry.
        let mut by_entry: BTreeMap<EntryKey, Vec<RecordId>> = BTreeMap::new();
        for kv in self.t.records.iter() {
            let (k, v) = kv.io()?;
            let stored =
                StoredRecord::decode(&v).map_err(|e| StoreError::corrupt(trees::RECORDS, e))?;
            let id =
                RecordId::from_slice(&k).map_err(|e| StoreError::corrupt(trees::RECORDS, e))?;
            let h = stored.record.header();
            if demoted(h, &id) {
                report.demoted_records += 1;
                by_entry
                    .entry(EntryKey {
                        entry_id: h.entry_id,
                        origin: h.origin.clone(),
                    })
                    .or_default()
                    .push(id);
            }
        }
        // The entries whose demoted set differs.
        let mut changes: Vec<(EntryKey, EntryState, Vec<RecordId>)> = Vec::new();
        for kv in self.t.entries.iter() {
            let (k, v) = kv.io()?;
            let key = EntryKey::from_bytes(&k)
                .ok_or_else(|| StoreError::corrupt(trees::ENTRIES, "bad key"))?;
            let state = decode_state(&v)?;
            let mut now_demoted = by_entry.remove(&key).unwrap_or_default();
            now_demoted.sort();
            now_demoted.dedup();
            if now_demoted != state.demoted {
                changes.push((key, state, now_demoted));
            }
        }
        report.entries_changed = changes.len() as u64;
        let t = &self.t;
        let trees = [&t.meta, &t.entries, &t.disputes, &t.log, &t.records];
        for chunk in changes.chunks(BATCH) {
            let heads = self.transaction(&trees, |tx| apply_tx(tx, chunk, now))?;
            report.heads_changed += heads;
            self.count_writes(chunk.len());
            self.write_result(self.db.flush())?;
        }
        self.meta_set(meta::REVOCATIONS_APPLIED, &digest)?;
        report.head_seq = self.head_seq()?;
        Ok(report)
    }
}

/// Rewrites one batch of entries with their new demoted sets; returns how many heads
/// changed.
#[allow(clippy::indexing_slicing)] // fixed-size tree list built by the caller
fn apply_tx(
    tx: &[crate::engine::TxTree<'_>],
    chunk: &[(EntryKey, EntryState, Vec<RecordId>)],
    now: Timestamp,
) -> TxResult<u64> {
    let (meta_t, entries, disputes, log, records) = (&tx[0], &tx[1], &tx[2], &tx[3], &tx[4]);
    let mut next_seq = u64_of(meta_t.get(meta::NEXT_SEQ)?).max(1);
    let first_seq = next_seq;
    let mut new_log: Vec<u8> = Vec::new();
    let mut n_withdrawn = u64_of(meta_t.get(COUNT_WITHDRAWN)?);
    let mut heads = 0;
    for (key, state, demoted) in chunk {
        let mut s = state.clone();
        s.demoted = demoted.clone();
        // Disputes count only records that are not demoted.
        let mut versions: Vec<u64> = s.history.iter().map(|(v, _)| *v).collect();
        versions.dedup();
        s.disputed = false;
        for v in versions {
            if s.valid_at_version(v).len() > 1 {
                s.disputed = true;
                disputes.insert(version_key(key, v), &[] as &[u8])?;
            } else {
                disputes.remove(version_key(key, v))?;
            }
        }
        if let Some((version, id)) = s.best()
            && id != s.head
        {
            let Some(raw) = records.get(id.0)? else {
                return abort(StoreError::corrupt(
                    trees::RECORDS,
                    format!("record {id} of entry {} is missing", key.entry_id),
                ));
            };
            let mut head = match StoredRecord::decode(&raw) {
                Ok(r) => r,
                Err(e) => return abort(StoreError::corrupt(trees::RECORDS, e)),
            };
            // The head goes on the arrival log again, at its new position.
            head.seq = next_seq;
            records.insert(id.0, head.encode())?;
            let h = head.record.header();
            if s.status == Status::Withdrawn {
                n_withdrawn = n_withdrawn.saturating_sub(1);
            }
            if h.status == Status::Withdrawn {
                n_withdrawn += 1;
            }
            s.head = id;
            s.version = version;
            s.status = h.status;
            s.issued_at = h.issued_at;
            s.review_by = h.review_by;
            s.updated_at = now;
            new_log.extend_from_slice(&id.0);
            next_seq += 1;
            heads += 1;
        }
        entries.insert(key.to_bytes(), s.encode())?;
    }
    for (seq, ids) in (first_seq..)
        .step_by(LOG_CHUNK)
        .zip(new_log.chunks(LOG_CHUNK * 32))
    {
        log.insert(seq.to_be_bytes(), ids)?;
    }
    meta_t.insert(meta::NEXT_SEQ, next_seq.to_be_bytes())?;
    meta_t.insert(COUNT_WITHDRAWN, n_withdrawn.to_be_bytes())?;
    Ok(heads)
}
