//! The store's on-disk layout in one place: tree names, key encodings and the schema
//! version. Swapping the backend means reimplementing `Store` against these layouts.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `schema_version`, `log_epoch`, `next_seq`, `roster_anchor`, `revocations_applied`, `inclusions_applied` | u32 BE, 16 bytes, u64 BE, anchor, SHA-256, SHA-256 |
//! | `records` | record_id (32) | `StoredRecord` (protobuf; for a revoked key's record, with its inclusion proof when one is held) |
//! | `entries` | entry key | `EntryState` (protobuf, with every (version, record id) held) |
//! | `disputes` | entry key ‖ version (u64 BE) | empty: versions with equivocation |
//! | `log` | seq of its first id (u64 BE) | record ids (32 bytes each) of up to 256 consecutive seqs: the arrival log, written per ingest batch (one value per 256 records) rather than per record. A store written before chunking holds one id per key, which reads the same |
//! | `sync_index` | issued_at (u64 BE) ‖ record_id | `SyncMeta` (distribution, and the facts the send decision reads: `SyncDetail`): reconciliation sets |
//! | `cursors` | peer agency | `Cursor` (protobuf) |
//! | `local` | entry key | `LocalMeta` (protobuf) |
//! | `declined` | issued_at (u64 BE) ‖ record_id ‖ agency (UTF-8, empty when the refusal holds for every peer) | `SyncMeta`: records that agency holds and would offer, counted in the sets shared with it though we hold none or would not send ours back: copies this node refused to store, and (key ending in 0x01, `Declined::known`) records it took from that agency that its share rules keep from it. A reload clears the refusals, not the notes |
//! | `audit_events` | index of its first event (u64 BE) | up to 64 consecutive events' canonical bytes (compact JSON, which has no raw newline), newline-separated: the audit log's leaves. A store written before chunking holds one event per key, which reads the same |
//! | `audit_nodes` | level (u8) ‖ index (u64 BE) | SHA-256: complete subtrees of the audit tree of 16 leaves or more (smaller ones are recomputed from `audit_events`) |
//! | `audit_checkpoints` | tree size (u64 BE) | `SignedCheckpoint` (JSON) |
//! | `audit_cosignatures` | tree size (u64 BE) ‖ auditor PeerId (UTF-8) | `Cosignature` (JSON): witness signatures from auditors |
//!
//! `meta/audit_size` (u64 BE) is the audit log's size, written in the same transaction
//! as its events and tree nodes, and so is `meta/audit_edge`: that size, then (level
//! u8, index u64 BE, SHA-256) for each complete subtree of fewer than 16 leaves on the
//! tree's right edge, the only unstored nodes the next append needs.
//!
//! `meta/blocked_peers` holds the agencies an operator blocked (`wlnode peer block`):
//! agency codes, sorted, one per line; written with its audit event in one transaction.
//!
//! A `Cursor` carries `backlog_complete`: false from a first-contact jump to the peer's
//! head until a finished reconciliation has stored the records below it. Cursors
//! written before the field existed read as false (one extra reconciliation).
//!
//! Entry key: entry_id (16) ‖ origin (UTF-8). Entries are keyed by origin as well as
//! id, so that no agency can take over another agency's entry by reusing its id.

pub use wlnode_types::EntryKey;

/// Layout version written to `meta/schema_version`.
/// - Version 2 chunks `log` and `audit_events` values and adds `meta/audit_edge`.
/// - Version 3 adds `demoted` to entry states (records of revoked keys that rank below
///   the entry's valid ones) and `meta/revocations_applied`. An older wlnode would
///   ignore the demotions and pick other heads, so it must refuse such a store.
///
/// - Version 4 keys `declined` by the agency a refusal holds for (an older wlnode
///   would read such a key as corrupt).
///
/// - Version 5 puts the facts the send decision reads (`SyncDetail`: categories,
///   reason, subject, sensitivity, relay limit, held hops, signer) in `sync_index`
///   values, so that a reconciliation set holds only what this node would send. An
///   older wlnode reads such values (it ignores the new field), but it would not
///   keep the hops in them current, so it must refuse such a store.
///
/// - Version 6 keeps inclusion proofs with records of revoked keys (`StoredRecord`
///   field `inclusion`, `SyncDetail` field `proven`, `meta/inclusions_applied`). An
///   older wlnode would read such values but drop the proofs when it rewrites a
///   record, so it must refuse such a store. A version 5 store holds no proofs and
///   reads as it is; its proofs are built at the next start against the roster.
///
/// Version 1 to 4 stores have their sync index rebuilt from their records when
/// opened, before the version is written. Version 1 to 3 stores read the same (one item per value; no demotions, computed at
/// the next start against the roster) and are marked 5 when opened. Their `declined`
/// tree is cleared then: it is a cache, and its entries were stored before their
/// signatures were checked and held for every peer. Peers offer those records again
/// and they are judged anew.
pub const SCHEMA_VERSION: u32 = 6;

/// Older layout versions this wlnode opens (and marks [`SCHEMA_VERSION`]).
pub const READABLE_SCHEMA_VERSIONS: &[u32] = &[1, 2, 3, 4, 5, SCHEMA_VERSION];

/// Tree names.
pub mod trees {
    /// Metadata.
    pub const META: &str = "meta";
    /// Records by id.
    pub const RECORDS: &str = "records";
    /// Entry states.
    pub const ENTRIES: &str = "entries";
    /// Equivocating versions.
    pub const DISPUTES: &str = "disputes";
    /// Arrival log.
    pub const LOG: &str = "log";
    /// Reconciliation index.
    pub const SYNC_INDEX: &str = "sync_index";
    /// Per-peer cursors.
    pub const CURSORS: &str = "cursors";
    /// Import bookkeeping.
    pub const LOCAL: &str = "local";
    /// Records declined by accept rules.
    pub const DECLINED: &str = "declined";
    /// Audit events by index.
    pub const AUDIT_EVENTS: &str = "audit_events";
    /// Audit tree complete subtrees.
    pub const AUDIT_NODES: &str = "audit_nodes";
    /// Signed audit checkpoints.
    pub const AUDIT_CHECKPOINTS: &str = "audit_checkpoints";
    /// Auditors' cosignatures of our checkpoints.
    pub const AUDIT_COSIGNATURES: &str = "audit_cosignatures";
    /// The screening case log (local only), by case id (time first).
    pub const CASES: &str = "cases";
    /// Screening decisions (local only), by party and entry.
    pub const DECISIONS: &str = "decisions";
    /// Sealed messages (local only): outbox, relay queue, inbox, seen ids.
    pub const MAIL: &str = "mail";
    /// Consultations (local only), by consultation id.
    pub const CONSULTATIONS: &str = "consultations";
    /// Watch hits raised (local only), by time ‖ event id.
    pub const WATCH_HITS: &str = "watch_hits";
}

/// Keys of the `meta` tree.
pub mod meta {
    /// Schema version.
    pub const SCHEMA_VERSION: &[u8] = b"schema_version";
    /// Arrival-log epoch.
    pub const LOG_EPOCH: &[u8] = b"log_epoch";
    /// Next arrival-log sequence number.
    pub const NEXT_SEQ: &[u8] = b"next_seq";
    /// Accepted roster (trust anchor).
    pub const ROSTER_ANCHOR: &[u8] = b"roster_anchor";
    /// Audit log size.
    pub const AUDIT_SIZE: &[u8] = b"audit_size";
    /// The audit tree's small right-edge subtrees, for the next append.
    pub const AUDIT_EDGE: &[u8] = b"audit_edge";
    /// Agencies blocked by the operator.
    pub const BLOCKED_PEERS: &[u8] = b"blocked_peers";
    /// SHA-256 of the revocations (keys and kept records) the entry states reflect.
    pub const REVOCATIONS_APPLIED: &[u8] = b"revocations_applied";
    /// SHA-256 of the roster (and agency) the held inclusion proofs were last built
    /// and checked against (see `inclusions`).
    pub const INCLUSIONS_APPLIED: &[u8] = b"inclusions_applied";
    /// When this node first learned of each revocation: JSON `[[agency, key hex,
    /// Unix ms], ...]` (see `inclusions`).
    pub const REVOCATIONS_KNOWN: &[u8] = b"revocations_known";
    /// Since when local writes to existing entries are held (u64 BE ms; see `hold`).
    pub const LOCAL_WRITES_HELD: &[u8] = b"local_writes_held";
}

/// `audit_nodes` key: level ‖ index BE.
pub fn audit_node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [level; 9];
    let (_, b) = k.split_at_mut(1);
    b.copy_from_slice(&index.to_be_bytes());
    k
}

/// `disputes` key: len(entry key) ‖ entry key ‖ version BE. The length
/// prefix keeps keys of different origins from colliding.
pub fn version_key(entry: &EntryKey, version: u64) -> Vec<u8> {
    let ek = entry.to_bytes();
    let mut k = Vec::with_capacity(1 + ek.len() + 8);
    k.push(u8::try_from(ek.len()).unwrap_or(u8::MAX));
    k.extend_from_slice(&ek);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// Parses a `disputes` key.
pub fn parse_version_key(b: &[u8]) -> Option<(EntryKey, u64)> {
    let (len, rest) = b.split_first()?;
    let (ek, v) = rest.split_at_checked(usize::from(*len))?;
    let v: [u8; 8] = v.try_into().ok()?;
    Some((EntryKey::from_bytes(ek)?, u64::from_be_bytes(v)))
}

/// `declined` key: the sync key, then the agency the refusal holds for, if any.
pub fn declined_key(d: &wlnode_types::Declined) -> Vec<u8> {
    let mut k = sync_key(d.issued_at, &d.id.0).to_vec();
    if let Some(a) = &d.only_for {
        k.extend_from_slice(a.as_str().as_bytes());
        if d.known {
            k.push(KNOWN_MARK);
        }
    }
    k
}

/// Last byte of a `declined` key that notes a record the agency gave us
/// (`Declined::known`); agency codes are printable ASCII, so it never ends one.
pub const KNOWN_MARK: u8 = 0x01;

/// Sync-index key: issued_at (u64 BE) ‖ record_id.
pub fn sync_key(issued_at: u64, record_id: &[u8; 32]) -> [u8; 40] {
    let mut k = [0u8; 40];
    let (a, b) = k.split_at_mut(8);
    a.copy_from_slice(&issued_at.to_be_bytes());
    b.copy_from_slice(record_id);
    k
}

/// Big-endian u64 from a stored value.
pub fn be_u64(b: &[u8]) -> Option<u64> {
    b.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wlnode_crypto::model::{AgencyCode, EntryId};

    #[test]
    fn keys_round_trip() {
        let k = EntryKey {
            entry_id: EntryId([7; 16]),
            origin: AgencyCode::new("DE-BAFA").unwrap(),
        };
        assert_eq!(EntryKey::from_bytes(&k.to_bytes()), Some(k.clone()));
        assert_eq!(parse_version_key(&version_key(&k, 42)), Some((k, 42)));
        assert_eq!(parse_version_key(&[200, 1, 2]), None);
    }
}
