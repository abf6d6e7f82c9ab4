//! Local tables: what the node keeps for its own officers and never replicates or
//! audits as records: the screening case log (`cases`, keyed by case id, whose first
//! eight bytes are the time, so ranges by time are key ranges) and the decisions
//! officers took on hits (`decisions`, keyed by party and entry). Values are the
//! caller's bytes (JSON); this module only stores, ranges and prunes them. Backups carry
//! both trees like every other.

use super::{Store, StoreError};
use crate::Engine as _;
use crate::engine::{Batch, Tree};

/// A local table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalTable {
    /// The screening case log.
    Cases,
    /// Decisions on hits.
    Decisions,
    /// Sealed agency-to-agency messages (issue 21): outbox, relay queue, inbox,
    /// seen ids and receipts, under key prefixes the runtime's mail service chooses.
    /// Holds sealed bytes and routing headers, never clear text of others' messages.
    Mail,
    /// Consultations (Art. 16) this agency sent or received, by consultation id.
    Consultations,
    /// Watch hits the node raised (the newest, bounded by the runtime's watches
    /// service), by time ‖ event id: what the console shows after a restart.
    WatchHits,
}

/// Key/value pairs of a table.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Most pairs one range read returns.
pub const MAX_RANGE: usize = 10_000;

impl Store {
    fn table(&self, t: LocalTable) -> &Tree {
        match t {
            LocalTable::Cases => &self.t.cases,
            LocalTable::Decisions => &self.t.decisions,
            LocalTable::Mail => &self.t.mail,
            LocalTable::Consultations => &self.t.consultations,
            LocalTable::WatchHits => &self.t.watch_hits,
        }
    }

    /// Writes `pairs` into `table` in one batch; `durable` flushes before returning
    /// (officers' decisions), otherwise the next flush of the store makes them durable
    /// (screening cases, one job per screening or batch).
    pub fn table_put(
        &self,
        table: LocalTable,
        pairs: &[(Vec<u8>, Vec<u8>)],
        durable: bool,
    ) -> Result<(), StoreError> {
        self.before_write()?;
        let mut batch = Batch::default();
        for (k, v) in pairs {
            batch.insert(k, v);
        }
        self.write_result(self.table(table).apply_batch(batch))?;
        if durable {
            self.flush()?;
        }
        self.count_writes(pairs.len());
        Ok(())
    }

    /// One value.
    pub fn table_get(&self, table: LocalTable, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.table(table).get(key).io()?.map(|v| v.to_vec()))
    }

    /// Pairs with keys in `[from, to)`, in key order, at most `limit` (and
    /// [`MAX_RANGE`]).
    pub fn table_range(
        &self,
        table: LocalTable,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let mut out = Vec::new();
        for kv in self.table(table).range(from.to_vec()..to.to_vec()) {
            if out.len() >= limit.min(MAX_RANGE) {
                break;
            }
            let (k, v) = kv.io()?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Pairs with keys in `[from, to)`, last key first, at most `limit` (and
    /// [`MAX_RANGE`]).
    pub fn table_range_rev(
        &self,
        table: LocalTable,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        let mut out = Vec::new();
        for kv in self.table(table).range(from.to_vec()..to.to_vec()).rev() {
            if out.len() >= limit.min(MAX_RANGE) {
                break;
            }
            let (k, v) = kv.io()?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Removes keys in `[from, to)`, at most `limit` per call; returns how many.
    pub fn table_remove_range(
        &self,
        table: LocalTable,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.before_write()?;
        let keys: Vec<_> = self
            .table(table)
            .range(from.to_vec()..to.to_vec())
            .take(limit.min(MAX_RANGE))
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<Result<_, _>>()
            .io()?;
        let mut batch = Batch::default();
        for k in &keys {
            batch.remove(k);
        }
        self.write_result(self.table(table).apply_batch(batch))?;
        self.count_writes(keys.len());
        Ok(keys.len())
    }
}
