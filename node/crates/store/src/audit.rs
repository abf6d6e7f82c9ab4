//! The audit log's storage side: events by index, the Merkle tree's complete subtrees
//! ([`wlnode_audit::merkle`] over the store's trees), and signed checkpoints.
//!
//! Events are appended inside a store transaction together with the tree nodes and the
//! log size (`meta/audit_size`), so the log, its tree and its size never disagree. The
//! ingest transaction appends its events in the same transaction as the records they
//! describe. Checkpoints are signed after the append commits, on the store thread.
//!
//! Storage is chunked: one `audit_events` value holds up to [`CHUNK_EVENTS`]
//! consecutive events (keyed by the first one's index), because an engine write costs
//! far more than the bytes it writes, and one insert per event was a large part of
//! what auditing cost replication. The tree's leaves are still the single events.

use std::sync::Arc;

use crate::EngineError;
use crate::engine::{Tree, TxTree};
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{AgencyCode, RecordId};

use super::schema::{audit_node_key, meta, trees};
use super::{Store, StoreError, TxResult, u64_of};
use crate::Engine as _;
use wlnode_audit::event::{
    Checkpoint, Cosignature, EXPORT_FORMAT, Event, EventKind, ExportedLog, SentHeader,
    SignedCheckpoint,
};
use wlnode_audit::merkle::{self, Hash, MerkleError, NodeStore};

/// A sent record's id, signed header bytes and the origin's signature.
pub type SignedHeaderOf = (RecordId, Vec<u8>, [u8; 64]);

/// How the store keeps the audit log (set by the node at start).
#[derive(Clone, Debug)]
pub struct AuditSettings {
    /// Whether events are logged at all (`[audit] enabled`).
    pub enabled: bool,
    /// Who signs checkpoints: the agency and the node identity key.
    pub signer: Option<(AgencyCode, Arc<SecretKey>)>,
    /// Sign a checkpoint after this many new events.
    pub every_events: u64,
    /// ... or when events are pending and this much time passed (ms).
    pub interval_ms: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            signer: None,
            every_events: 1000,
            interval_ms: 60_000,
        }
    }
}

/// Subtrees below this level (fewer than 16 leaves) are not stored: they are
/// recomputed from their events when needed (at most 15 leaf reads and hashes), which
/// saves about two sled writes per event. Larger subtrees are stored as they complete.
pub(super) const STORED_LEVEL: u8 = 4;

/// At most this many events share one `audit_events` value: few sled inserts per
/// append, while reading one event (a proof, a small subtree) decodes a bounded value.
pub(super) const CHUNK_EVENTS: usize = 64;

/// The events of one stored chunk, in order. Canonical event bytes are compact JSON,
/// which never holds a raw newline (JSON escapes control characters in strings), so
/// a newline separates events; a value written before chunking is one event.
fn chunk_events(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b'\n')
}

/// Calls `f(index, bytes)` for each stored event in `[from, to)`, in index order.
fn for_each_event(
    events: &Tree,
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<(), EngineError> {
    if from >= to {
        return Ok(());
    }
    for kv in super::chunks_from(events, from)? {
        let (k, v) = kv?;
        let Ok(start) = <[u8; 8]>::try_from(k.as_ref()).map(u64::from_be_bytes) else {
            continue;
        };
        if start >= to {
            break;
        }
        for (i, e) in (start..).zip(chunk_events(&v)) {
            if i >= to {
                break;
            }
            if i >= from {
                f(i, e);
            }
        }
    }
    Ok(())
}

/// `meta/audit_edge`: the log size, then (level, index BE, hash) for each complete
/// subtree below [`STORED_LEVEL`] on the tree's right edge, which are the only small
/// subtrees the next append needs (they are not stored in `audit_nodes`, and the
/// events they cover may sit inside a chunk that a transaction cannot range over).
fn encode_edge(size: u64, edge: &[(u8, u64, Hash)]) -> Vec<u8> {
    let mut v = size.to_be_bytes().to_vec();
    for (l, i, h) in edge {
        v.push(*l);
        v.extend_from_slice(&i.to_be_bytes());
        v.extend_from_slice(h);
    }
    v
}

/// The edge for `size`, or `None` when the value is for another size or malformed
/// (the append then falls back to reading events one key at a time, which is right
/// for stores written before chunking).
fn decode_edge(v: &[u8], size: u64) -> Option<Vec<(u8, u64, Hash)>> {
    let (s, mut rest) = v.split_first_chunk::<8>()?;
    if u64::from_be_bytes(*s) != size {
        return None;
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (l, r) = rest.split_first()?;
        let (i, r) = r.split_first_chunk::<8>()?;
        let (h, r) = r.split_first_chunk::<32>()?;
        out.push((*l, u64::from_be_bytes(*i), *h));
        rest = r;
    }
    Some(out)
}

/// The root of the complete subtree of `2^level` leaves whose leaf hashes `leaf(i)`
/// yields, or `None` when a leaf is missing (the subtree is not complete).
fn subtree_from_leaves<E>(
    level: u8,
    index: u64,
    mut leaf: impl FnMut(u64) -> Result<Option<Hash>, E>,
) -> Result<Option<Hash>, E> {
    let first = index << level;
    let mut stack: Vec<(u8, Hash)> = Vec::with_capacity(usize::from(level) + 1);
    for i in first..first + (1u64 << level) {
        let Some(mut h) = leaf(i)? else {
            return Ok(None);
        };
        let mut l = 0u8;
        while let Some((top_level, top)) = stack.last().copied()
            && top_level == l
        {
            stack.pop();
            h = merkle::node_hash(&top, &h);
            l += 1;
        }
        stack.push((l, h));
    }
    Ok(stack.pop().map(|(_, h)| h))
}

/// Subtree hashes inside a transaction: nodes of this append are kept in memory (so
/// the next leaf of the batch finds its siblings without a read), larger subtrees go
/// to `audit_nodes`, and small ones that precede the batch come from `meta/audit_edge`
/// (or, in a store written before chunking, are recomputed from single-event keys).
pub(super) struct TxNodes<'a> {
    nodes: &'a TxTree<'a>,
    events: &'a TxTree<'a>,
    fresh: std::collections::HashMap<(u8, u64), Hash>,
    /// The log size when this append began: no leaf at or past it exists outside
    /// `fresh` (`append_tx` checks that once, rather than one sled read per event).
    base: u64,
}

impl NodeStore for TxNodes<'_> {
    type Error = StoreError;
    fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error> {
        if let Some(h) = self.fresh.get(&(level, index)) {
            return Ok(Some(*h));
        }
        if level == 0 && index >= self.base {
            return Ok(None);
        }
        if level >= STORED_LEVEL {
            return Ok(self
                .nodes
                .get(audit_node_key(level, index))?
                .and_then(|v| v.as_ref().try_into().ok()));
        }
        // Only a chunk that starts at `i` can be read here (a transaction cannot range);
        // its first event is event `i`.
        subtree_from_leaves(level, index, |i| {
            Ok(self
                .events
                .get(i.to_be_bytes())?
                .and_then(|b| chunk_events(&b).next().map(merkle::leaf_hash)))
        })
    }
    fn put(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), Self::Error> {
        if level >= STORED_LEVEL {
            self.nodes.insert(audit_node_key(level, index), hash)?;
        }
        self.fresh.insert((level, index), hash);
        Ok(())
    }
}

/// Subtree hashes read outside a transaction (roots, proofs).
struct TreeNodes<'a> {
    nodes: &'a Tree,
    events: &'a Tree,
}

impl NodeStore for TreeNodes<'_> {
    type Error = EngineError;
    fn get(&self, level: u8, index: u64) -> Result<Option<Hash>, EngineError> {
        if level >= STORED_LEVEL {
            return Ok(self
                .nodes
                .get(audit_node_key(level, index))?
                .and_then(|v| v.as_ref().try_into().ok()));
        }
        let first = index << level;
        let mut leaves = Vec::with_capacity(1 << level);
        for_each_event(self.events, first, first + (1u64 << level), |i, e| {
            leaves.push((i, merkle::leaf_hash(e)));
        })?;
        let mut leaves = leaves.into_iter();
        // A gap in the events (a damaged store) is a missing subtree, not a shifted one.
        subtree_from_leaves(level, index, |i| match leaves.next() {
            Some((k, h)) if k == i => Ok(Some(h)),
            _ => Ok(None),
        })
    }
    fn put(&mut self, level: u8, index: u64, hash: Hash) -> Result<(), EngineError> {
        if level >= STORED_LEVEL {
            self.nodes.insert(audit_node_key(level, index), hash)?;
        }
        Ok(())
    }
}

fn merkle_err(e: MerkleError<EngineError>) -> StoreError {
    match e {
        MerkleError::Store(e) => StoreError::Io(e),
        other => StoreError::corrupt(trees::AUDIT_NODES, other),
    }
}

/// Appends `events` inside a transaction over `meta`, `audit_events` and `audit_nodes`;
/// returns the new log size.
pub(super) fn append_tx(
    meta_t: &TxTree<'_>,
    events_t: &TxTree<'_>,
    nodes_t: &TxTree<'_>,
    events: &[Event],
) -> TxResult<u64> {
    let mut size = u64_of(meta_t.get(meta::AUDIT_SIZE)?);
    if events.is_empty() {
        return Ok(size);
    }
    // `merkle::append` refuses to overwrite a leaf; with the per-event check answered
    // from memory (`TxNodes::base`), this is the one read that backs it: nothing may
    // be stored where the new events begin.
    if events_t.get(size.to_be_bytes())?.is_some() {
        return Err(StoreError::corrupt(
            trees::AUDIT_EVENTS,
            format!("an audit event is stored at index {size}, past the log's size"),
        ));
    }
    let mut nodes = TxNodes {
        nodes: nodes_t,
        events: events_t,
        fresh: std::collections::HashMap::new(),
        base: size,
    };
    if let Some(edge) = meta_t
        .get(meta::AUDIT_EDGE)?
        .and_then(|v| decode_edge(&v, size))
    {
        nodes
            .fresh
            .extend(edge.into_iter().map(|(l, i, h)| ((l, i), h)));
    }
    let mut chunk: Vec<u8> = Vec::new();
    let (mut chunk_start, mut in_chunk) = (size, 0usize);
    for e in events {
        let bytes = e.encode();
        if bytes.contains(&b'\n') {
            // Cannot happen for compact JSON; refusing keeps chunks unambiguous.
            return Err(StoreError::corrupt(
                trees::AUDIT_EVENTS,
                "event bytes hold a newline",
            ));
        }
        let leaf = merkle::leaf_hash(&bytes);
        // The tree first: `append` refuses an index whose leaf is already there.
        let index = size;
        size = match merkle::append(&mut nodes, size, leaf) {
            Ok(s) => s,
            Err(MerkleError::Store(e)) => return Err(e),
            Err(other) => {
                return Err(StoreError::corrupt(trees::AUDIT_NODES, other));
            }
        };
        if in_chunk == CHUNK_EVENTS {
            events_t.insert(chunk_start.to_be_bytes(), std::mem::take(&mut chunk))?;
            (chunk_start, in_chunk) = (index, 0);
        }
        if in_chunk > 0 {
            chunk.push(b'\n');
        }
        chunk.extend_from_slice(&bytes);
        in_chunk += 1;
    }
    events_t.insert(chunk_start.to_be_bytes(), chunk)?;
    let mut edge = Vec::new();
    for level in 0..STORED_LEVEL {
        if (size >> level) & 1 == 1 {
            let index = (size >> level) - 1;
            let Some(h) = nodes.get(level, index)? else {
                return Err(StoreError::corrupt(
                    trees::AUDIT_EVENTS,
                    format!("audit subtree ({level}, {index}) on the tree's edge is missing"),
                ));
            };
            edge.push((level, index, h));
        }
    }
    meta_t.insert(meta::AUDIT_SIZE, size.to_be_bytes())?;
    meta_t.insert(meta::AUDIT_EDGE, encode_edge(size, &edge))?;
    Ok(size)
}

impl Store {
    /// The audit settings in force.
    pub fn audit_settings(&self) -> AuditSettings {
        match self.audit.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the audit settings (the node does this once at start).
    pub fn set_audit_settings(&self, s: AuditSettings) {
        match self.audit.lock() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    /// Whether events are logged.
    pub fn audit_enabled(&self) -> bool {
        self.audit.lock().map(|g| g.enabled).unwrap_or(true)
    }

    /// Appends events durably (one transaction, then a flush) and signs a checkpoint
    /// if one is due. Returns the log size. Does nothing when auditing is off.
    pub fn audit_append(&self, events: &[Event]) -> Result<u64, StoreError> {
        if !self.audit_enabled() || events.is_empty() {
            return self.audit_size();
        }
        let size = self.audit_append_nosync(events)?;
        self.audit_maybe_checkpoint(wlnode_crypto::Timestamp::now().as_millis())?;
        self.db.flush().io()?;
        Ok(size)
    }

    /// Appends without flushing or checkpointing (tests, tools).
    pub fn audit_append_nosync(&self, events: &[Event]) -> Result<u64, StoreError> {
        let t = &self.t;
        let trees = [&t.meta, &t.audit_events, &t.audit_nodes];
        self.transaction(&trees, |tx| {
            let [m, e, n] = tx else {
                return Err(StoreError::Closed);
            };
            append_tx(m, e, n, events)
        })
        .inspect(|_| self.count_writes(events.len()))
    }

    fn tree_nodes(&self) -> TreeNodes<'_> {
        TreeNodes {
            nodes: &self.t.audit_nodes,
            events: &self.t.audit_events,
        }
    }

    /// Number of events in the log.
    pub fn audit_size(&self) -> Result<u64, StoreError> {
        Ok(u64_of(self.t.meta.get(meta::AUDIT_SIZE).io()?))
    }

    /// The tree head of the first `size` events.
    pub fn audit_root(&self, size: u64) -> Result<Hash, StoreError> {
        merkle::root(&self.tree_nodes(), size).map_err(merkle_err)
    }

    /// Inclusion proof of event `index` in the tree of `size` events.
    pub fn audit_inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        merkle::inclusion_proof(&self.tree_nodes(), index, size).map_err(merkle_err)
    }

    /// Consistency proof between two sizes.
    pub fn audit_consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        merkle::consistency_proof(&self.tree_nodes(), old, new).map_err(merkle_err)
    }

    /// Canonical bytes of events `[from, to)` (fewer when the log ends before `to`).
    pub fn audit_events(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        let mut gap = None;
        for_each_event(&self.t.audit_events, from, to, |i, e| {
            if i != from + out.len() as u64 && gap.is_none() {
                gap = Some(from + out.len() as u64);
            }
            out.push(e.to_vec());
        })
        .io()?;
        if let Some(i) = gap {
            return Err(StoreError::corrupt(
                trees::AUDIT_EVENTS,
                format!("audit event {i} is missing"),
            ));
        }
        Ok(out)
    }

    /// Every stored checkpoint, by size.
    pub fn audit_checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.audit_checkpoints.iter() {
            let (_, v) = kv.io()?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::corrupt(trees::AUDIT_CHECKPOINTS, e))?,
            );
        }
        Ok(out)
    }

    /// The latest checkpoint.
    pub fn audit_latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        match self.t.audit_checkpoints.last().io()? {
            Some((_, v)) => {
                Ok(Some(serde_json::from_slice(&v).map_err(|e| {
                    StoreError::corrupt(trees::AUDIT_CHECKPOINTS, e)
                })?))
            }
            None => Ok(None),
        }
    }

    /// Signs and stores a checkpoint of the current tree if one is due (or `force`d and
    /// the tree grew since the last one). Returns it when one was made.
    pub fn audit_checkpoint(
        &self,
        now_ms: u64,
        force: bool,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        let s = self.audit_settings();
        let Some((agency, key)) = s.signer else {
            return Ok(None);
        };
        let size = self.audit_size()?;
        let (last_size, last_at) = match self.audit_latest_checkpoint()? {
            Some(c) => (c.checkpoint.size, c.checkpoint.timestamp),
            None => (0, 0),
        };
        if size == 0 || size <= last_size {
            return Ok(None);
        }
        let due = force
            || size - last_size >= s.every_events.max(1)
            || now_ms.saturating_sub(last_at) >= s.interval_ms;
        if !due {
            return Ok(None);
        }
        let cp = Checkpoint {
            agency,
            peer_id: key.public_key().peer_id(),
            size,
            root: hex::encode(self.audit_root(size)?),
            timestamp: now_ms,
        }
        .sign(&key);
        let bytes = serde_json::to_vec(&cp)
            .map_err(|e| StoreError::corrupt(trees::AUDIT_CHECKPOINTS, e))?;
        self.t
            .audit_checkpoints
            .insert(size.to_be_bytes(), bytes)
            .io()?;
        Ok(Some(cp))
    }

    /// A checkpoint no older than `max_age_ms`: a new one if the tree grew, else the
    /// latest one signed again with the time `now_ms` when it is older than that (same
    /// size and root, so nothing about the tree changes). What an auditor asks for, so
    /// that a node whose log is idle still shows it is alive, and a node showing an old
    /// checkpoint stands out.
    pub fn audit_checkpoint_fresh(
        &self,
        now_ms: u64,
        max_age_ms: u64,
    ) -> Result<Option<SignedCheckpoint>, StoreError> {
        if let Some(cp) = self.audit_checkpoint(now_ms, true)? {
            return Ok(Some(cp));
        }
        let Some(latest) = self.audit_latest_checkpoint()? else {
            return Ok(None);
        };
        let Some((_, key)) = self.audit_settings().signer else {
            return Ok(None);
        };
        if now_ms.saturating_sub(latest.checkpoint.timestamp) <= max_age_ms {
            return Ok(None);
        }
        let cp = Checkpoint {
            timestamp: now_ms,
            ..latest.checkpoint
        }
        .sign(&key);
        let bytes = serde_json::to_vec(&cp)
            .map_err(|e| StoreError::corrupt(trees::AUDIT_CHECKPOINTS, e))?;
        self.t
            .audit_checkpoints
            .insert(cp.checkpoint.size.to_be_bytes(), bytes)
            .io()?;
        Ok(Some(cp))
    }

    /// The stored checkpoint of exactly `size` events.
    pub fn audit_checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        match self.t.audit_checkpoints.get(size.to_be_bytes()).io()? {
            Some(v) => {
                Ok(Some(serde_json::from_slice(&v).map_err(|e| {
                    StoreError::corrupt(trees::AUDIT_CHECKPOINTS, e)
                })?))
            }
            None => Ok(None),
        }
    }

    /// Stores an auditor's cosignature (the caller verified it and that the checkpoint
    /// is ours); returns how many cosignatures are held.
    ///
    /// A cosignature of the same checkpoint by the same auditor replaces the one held
    /// only if it is dated and the held one is not dated earlier: the earliest date an
    /// auditor witnessed a checkpoint is what proves records older than a revocation
    /// (`inclusions`), and a later run of the auditor must not erase it.
    pub fn audit_add_cosignature(&self, c: &Cosignature) -> Result<u64, StoreError> {
        let mut key = c.checkpoint.checkpoint.size.to_be_bytes().to_vec();
        key.extend_from_slice(c.witness.as_bytes());
        if let Some(held) = self.t.audit_cosignatures.get(&key).io()? {
            let held: Cosignature = serde_json::from_slice(&held)
                .map_err(|e| StoreError::corrupt(trees::AUDIT_COSIGNATURES, e))?;
            let earlier = match (held.witnessed_at, c.witnessed_at) {
                (Some(h), Some(n)) => h <= n,
                (Some(_), None) => true,
                (None, _) => false,
            };
            // The same tree (size and root): a node re-signs its latest checkpoint
            // with a new timestamp while idle, and that must not erase the date.
            let same_tree = held.checkpoint.checkpoint.size == c.checkpoint.checkpoint.size
                && held.checkpoint.checkpoint.root == c.checkpoint.checkpoint.root;
            if earlier && same_tree {
                return self.t.audit_cosignatures.len().io();
            }
        }
        let bytes =
            serde_json::to_vec(c).map_err(|e| StoreError::corrupt(trees::AUDIT_COSIGNATURES, e))?;
        self.t.audit_cosignatures.insert(key, bytes).io()?;
        self.db.flush().io()?;
        self.t.audit_cosignatures.len().io()
    }

    /// Every cosignature held, by checkpoint size.
    pub fn audit_cosignatures(&self) -> Result<Vec<Cosignature>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.audit_cosignatures.iter() {
            let (_, v) = kv.io()?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::corrupt(trees::AUDIT_COSIGNATURES, e))?,
            );
        }
        Ok(out)
    }

    /// [`Self::audit_checkpoint`] without forcing.
    pub fn audit_maybe_checkpoint(&self, now_ms: u64) -> Result<(), StoreError> {
        self.audit_checkpoint(now_ms, false).map(|_| ())
    }

    /// The whole log, its checkpoints, and who keeps it, for `wlnode audit export`.
    pub fn audit_export(
        &self,
        agency: &AgencyCode,
        peer_id: &str,
    ) -> Result<ExportedLog, StoreError> {
        let size = self.audit_size()?;
        let events = self
            .audit_events(0, size)?
            .into_iter()
            .map(|b| String::from_utf8(b).map_err(|e| StoreError::corrupt(trees::AUDIT_EVENTS, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut headers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for e in &events {
            if let Some((record_id, header, signature)) =
                self.sent_header_for(e.as_bytes(), &mut seen)?
            {
                headers.push(SentHeader {
                    record_id,
                    header: hex::encode(header),
                    signature: hex::encode(signature),
                });
            }
        }
        Ok(ExportedLog {
            format: EXPORT_FORMAT.into(),
            agency: agency.clone(),
            peer_id: peer_id.to_owned(),
            events,
            checkpoints: self.audit_checkpoints()?,
            headers,
        })
    }

    /// For a `sent` event without an inline header whose record is not in `seen` yet:
    /// the record id, its signed header bytes and the origin's signature, from the
    /// records tree (which keeps every record the node ever sent). `None` for any other
    /// event, and for a record the store no longer holds or can no longer decode (the
    /// verifier then reports the missing header for that send, and the rest of the log
    /// is still served).
    pub fn sent_header_for(
        &self,
        event: &[u8],
        seen: &mut std::collections::HashSet<RecordId>,
    ) -> Result<Option<SignedHeaderOf>, StoreError> {
        let Ok(Event {
            kind:
                EventKind::Sent {
                    record_id,
                    header: None,
                    ..
                },
            ..
        }) = Event::decode(event)
        else {
            return Ok(None);
        };
        if !seen.insert(record_id) {
            return Ok(None);
        }
        match self.record(&record_id) {
            Ok(r) => Ok(r.map(|r| {
                (
                    record_id,
                    r.record.header_bytes().to_vec(),
                    r.record.signature().0,
                )
            })),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::warn!(record = %record_id, error = %e, "sent record unreadable; its audit header is left out");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Test-only surgery: overwrites the stored bytes of one event (the tree is left
    /// alone), as an attacker editing sled would. `bytes` must hold no newline.
    #[doc(hidden)]
    pub fn audit_tamper_event(&self, index: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.contains(&b'\n') {
            return Err(StoreError::corrupt(
                trees::AUDIT_EVENTS,
                "a newline would split the chunk",
            ));
        }
        let Some((k, v)) = self
            .t
            .audit_events
            .range(..=index.to_be_bytes())
            .next_back()
            .transpose()
            .io()?
        else {
            return Err(StoreError::corrupt(trees::AUDIT_EVENTS, "no such event"));
        };
        let start = <[u8; 8]>::try_from(k.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|e| StoreError::corrupt(trees::AUDIT_EVENTS, e))?;
        let mut events: Vec<&[u8]> = chunk_events(&v).collect();
        let slot = usize::try_from(index - start)
            .ok()
            .and_then(|i| events.get_mut(i))
            .ok_or_else(|| StoreError::corrupt(trees::AUDIT_EVENTS, "no such event"))?;
        *slot = bytes;
        self.t.audit_events.insert(k, events.join(&b'\n')).io()?;
        self.db.flush().io()?;
        Ok(())
    }

    /// Test-only surgery: replaces the whole log by `events`, rebuilds its tree and size
    /// and drops its checkpoints, as a node hiding an event would.
    #[doc(hidden)]
    pub fn audit_rewrite(&self, events: &[Event]) -> Result<(), StoreError> {
        self.t.audit_checkpoints.clear().io()?;
        self.t.audit_events.clear().io()?;
        self.t.audit_nodes.clear().io()?;
        self.t.meta.remove(meta::AUDIT_SIZE).io()?;
        self.t.meta.remove(meta::AUDIT_EDGE).io()?;
        self.audit_append_nosync(events)?;
        self.db.flush().io()?;
        Ok(())
    }
}

/// How old a checkpoint an auditor is shown may be before it is signed again.
const FRESH_FOR_AUDITOR_MS: u64 = 60_000;

/// The audit protocol's server reads the log through this (`wlnode_audit::serve`).
impl wlnode_audit::serve::AuditStore for Store {
    type Error = StoreError;

    fn checkpoint_now(&self, now_ms: u64) -> Result<(), StoreError> {
        self.audit_checkpoint_fresh(now_ms, FRESH_FOR_AUDITOR_MS)
            .map(|_| ())
    }

    fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.audit_latest_checkpoint()
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.audit_checkpoint_at(size)
    }

    fn size(&self) -> Result<u64, StoreError> {
        self.audit_size()
    }

    fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.audit_consistency_proof(old, new)
    }

    fn events(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        self.audit_events(from, to)
    }

    fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.audit_inclusion_proof(index, size)
    }

    fn sent_header(
        &self,
        event: &[u8],
        seen: &mut std::collections::HashSet<RecordId>,
    ) -> Result<Option<wlnode_audit::serve::SignedHeader>, StoreError> {
        Ok(self
            .sent_header_for(event, seen)?
            .map(|(_, header, signature)| (header, signature)))
    }

    fn add_cosignature(&self, c: &Cosignature) -> Result<u64, StoreError> {
        self.audit_add_cosignature(c)
    }
}
