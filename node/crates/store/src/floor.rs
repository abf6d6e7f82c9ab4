//! The storage floor: how fast an engine alone writes again exactly the bytes an
//! ingest wrote, with none of our logic (no reads, dedup, entry heads, encoding or
//! audit hashing). Benchmarks report it next to the ingest and sync rates, measured in
//! the same run, so that a figure can be read as "how far above what the engine itself
//! costs on this machine": no ingest can beat its engine's floor. The replay can target
//! any engine ([`EngineKind`]), so one run reports each engine's floor for the same
//! bytes.
//!
//! The replay walks the arrival log in groups of `batch` records. Each group is one
//! atomic multi-tree write ([`crate::engine::Kv::apply`]), then a flush, as ingest does. It writes each record's `records`,
//! `entries`, `sync_index` and `local` values as found in the store, the group's
//! share of the chunked trees (`log`, `audit_events`, `audit_nodes`: each tree's
//! key/values split evenly over the groups, in key order) and the four `meta` keys
//! ingest updates. Reading what to write is not timed.
//!
//! It is a lower bound, slightly optimistic even for the engine's part: ingest batches
//! vary in size (a Pull batch is cut by bytes as well as `pull_limit`), ingest
//! rewrites a partly filled log or audit chunk where the replay writes each chunk
//! once, and several versions of one entry are replayed with its final state.

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;

use super::schema::{self, EntryKey, meta, trees};
use super::{COUNT_ENTRIES, COUNT_RECORDS, COUNT_WITHDRAWN, Store, StoreError};
use crate::Engine as _;
use crate::engine::{self, EngineKind, Op};

/// What an engine alone took to write an ingest's bytes again.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Floor {
    /// The engine written to.
    pub engine: EngineKind,
    /// Records replayed (every record of the arrival log still held).
    pub records: u64,
    /// Transactions (one per group of `batch` records), each followed by a flush.
    pub transactions: u64,
    /// Key and value bytes written.
    pub bytes: u64,
    /// Wall time of the transactions and flushes.
    pub seconds: f64,
    /// Records per second.
    pub records_per_second: f64,
    /// CPU time of the writing thread per record, in microseconds (the engine's
    /// background threads not included).
    pub cpu_us_per_record: f64,
}

/// Tree order in a group's write set.
const TREES: [&str; 8] = [
    trees::META,
    trees::RECORDS,
    trees::ENTRIES,
    trees::SYNC_INDEX,
    trees::LOCAL,
    trees::LOG,
    trees::AUDIT_EVENTS,
    trees::AUDIT_NODES,
];
const RECORDS: usize = 1;
const ENTRIES: usize = 2;
const SYNC_INDEX: usize = 3;
const LOCAL: usize = 4;
const LOG: usize = 5;
const AUDIT_EVENTS: usize = 6;
const AUDIT_NODES: usize = 7;

type Write = (usize, Bytes, Bytes);

impl Store {
    /// Writes this store's records again into a fresh database of engine `kind` at
    /// `target`, in atomic writes of `batch` records, and times it (see the module
    /// header). `thread_cpu` reads the calling thread's CPU clock in seconds.
    pub fn replay_floor(
        &self,
        kind: EngineKind,
        target: &Path,
        batch: usize,
        thread_cpu: fn() -> f64,
    ) -> Result<Floor, StoreError> {
        let ids = self.log_after(0, usize::MAX)?;
        let batch = batch.max(1);
        let groups = ids.len().div_ceil(batch).max(1);
        // The chunked trees, split evenly over the groups.
        let mut chunked: Vec<(usize, Vec<(Bytes, Bytes)>)> = Vec::new();
        for (i, tree) in [
            (LOG, &self.t.log),
            (AUDIT_EVENTS, &self.t.audit_events),
            (AUDIT_NODES, &self.t.audit_nodes),
        ] {
            chunked.push((i, tree.iter().collect::<Result<Vec<_>, _>>().io()?));
        }
        let db = engine::open(kind, target, std::time::Duration::ZERO)?;
        let out: Vec<engine::TreeId> = TREES
            .iter()
            .map(|n| db.open_tree(n))
            .collect::<Result<_, _>>()
            .io()?;
        let mut floor = Floor {
            engine: kind,
            records: 0,
            transactions: 0,
            bytes: 0,
            seconds: 0.0,
            records_per_second: 0.0,
            cpu_us_per_record: 0.0,
        };
        let mut cpu = 0.0;
        for (g, group) in ids.chunks(batch).enumerate() {
            let (writes, held) = self.group_writes(g, groups, group, &chunked)?;
            floor.records += held;
            floor.bytes += writes
                .iter()
                .map(|(_, k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
            let t = Instant::now();
            let c = thread_cpu();
            // Building the write set is part of what an engine's batch costs.
            let ops: Vec<Op> = writes
                .iter()
                .filter_map(|(i, k, v)| Some((*out.get(*i)?, k.to_vec(), Some(v.to_vec()))))
                .collect();
            db.apply(ops).io()?;
            db.flush().io()?;
            cpu += thread_cpu() - c;
            floor.seconds += t.elapsed().as_secs_f64();
            floor.transactions += 1;
        }
        let n = floor.records.max(1) as f64;
        floor.records_per_second = floor.records as f64 / floor.seconds.max(f64::MIN_POSITIVE);
        floor.cpu_us_per_record = cpu / n * 1e6;
        Ok(floor)
    }

    /// The writes of group `g` of `groups`: its records' own values, its share of
    /// each chunked tree, and the `meta` keys ingest updates; and how many of its
    /// records the store holds.
    fn group_writes(
        &self,
        g: usize,
        groups: usize,
        group: &[(u64, wlnode_crypto::model::RecordId)],
        chunked: &[(usize, Vec<(Bytes, Bytes)>)],
    ) -> Result<(Vec<Write>, u64), StoreError> {
        let mut w: Vec<Write> = Vec::with_capacity(group.len() * 4 + 16);
        let mut held = 0;
        for (_, id) in group {
            let Some(raw) = self.t.records.get(id.0).io()? else {
                continue;
            };
            held += 1;
            let stored = wlnode_types::RawRecord::from_owner(raw.clone())
                .decode()
                .map_err(|e| StoreError::corrupt(trees::RECORDS, e))?;
            let h = stored.record.header();
            let ek = EntryKey {
                entry_id: h.entry_id,
                origin: h.origin.clone(),
            }
            .to_bytes();
            let sk = schema::sync_key(h.issued_at.0, &id.0);
            w.push((RECORDS, Bytes::copy_from_slice(&id.0), raw));
            if let Some(v) = self.t.entries.get(&ek).io()? {
                w.push((ENTRIES, Bytes::copy_from_slice(&ek), v));
            }
            if let Some(v) = self.t.sync_index.get(sk).io()? {
                w.push((SYNC_INDEX, Bytes::copy_from_slice(&sk), v));
            }
            if let Some(v) = self.t.local.get(&ek).io()? {
                w.push((LOCAL, Bytes::copy_from_slice(&ek), v));
            }
        }
        for (i, kvs) in chunked {
            let from = kvs.len() * g / groups;
            let to = kvs.len() * (g + 1) / groups;
            for (k, v) in kvs.get(from..to).unwrap_or_default() {
                w.push((*i, k.clone(), v.clone()));
            }
        }
        let last = group.last().map_or(0, |(s, _)| *s);
        for key in [
            meta::NEXT_SEQ,
            COUNT_RECORDS,
            COUNT_ENTRIES,
            COUNT_WITHDRAWN,
        ] {
            w.push((
                0,
                Bytes::copy_from_slice(key),
                Bytes::copy_from_slice(&last.to_be_bytes()),
            ));
        }
        Ok((w, held))
    }
}

impl Floor {
    /// `rate` divided by the floor's records/s; `None` when nothing was replayed.
    pub fn ratio(&self, rate: f64) -> Option<f64> {
        (self.records > 0 && self.records_per_second > 0.0).then(|| rate / self.records_per_second)
    }
}
