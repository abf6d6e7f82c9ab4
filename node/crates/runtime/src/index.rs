//! The node's live screening index: the pure `wlnode_screen` engine fed from the
//! store.
//!
//! ## Ownership and freshness
//!
//! One task, the **screen follower** ([`spawn_follower`]), is the only writer. At node
//! start it reads the arrival-log head, scans every entry's head record (in pages, so
//! the store actor stays responsive), builds the index on a blocking thread and marks
//! it ready; then it follows the arrival log (the changes feed sync uses) from the head
//! it read before the scan. Every time [`crate::Ingested::after_ingest`] moves
//! the log head (local create/amend/withdraw/import and records from peers alike), it
//! reads the new log records, collects the entries they belong to, re-reads each one's
//! current head (with the disclosures merged so far) and upserts it: one entry at a
//! time, never a rebuild. It reads a page of the log per pass (bigger while it is far
//! behind, as in a cold sync), decodes it off the store thread and upserts the whole
//! page under one write lock. Re-upserting an entry already indexed is harmless, so the
//! overlap between the start scan and the log is too.
//!
//! Readers (API handlers) share the index behind an `RwLock` in [`ScreenHandle`] and
//! search on blocking threads.
//!
//! **Withdrawn entries** stay in the same index with their withdrawn flag (the engine
//! filters them out unless the query sets `include_withdrawn`), so a withdrawal or a
//! reinstatement is one upsert.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use wlnode_crypto::model::RecordId;
use wlnode_screen::request::ScreenError;
use wlnode_screen::{Match, Query, ScreenDoc, ScreenIndex, doc_of};
use wlnode_store::{EntryFilter, Store, StoreError, StoreHandle};
use wlnode_types::{EntryKey, EntryState, RawRecord, StoredRecord};

/// Entries scanned per store call while building at start.
const SCAN_PAGE: usize = 2048;
/// Arrival-log records read per store call while following.
const FOLLOW_PAGE: usize = 1024;
/// Arrival-log records read per pass while the follower is further behind than one
/// page (a cold sync ingests up to 5,000 records per batch): one pass, one lock on
/// the index for the whole page. Bounds the pass to this many records and their
/// documents, and to [`PAGE_BYTES`] of stored records.
const CATCH_UP_PAGE: usize = 4096;
/// Stored bytes of log records one pass reads (`FOLLOW_PAGE` or `CATCH_UP_PAGE`), past
/// which it stops early (after at least one record): a record may be up to 2 MiB, so a
/// page bounded only by count could pin GiBs on the store thread and in the pass
/// (review s33-sync S2). A pass reads at most this plus one record.
const PAGE_BYTES: usize = 16 << 20;

/// Shared handle on the live index: the index, whether the start build is done, and
/// the arrival-log position the index reflects.
#[derive(Clone, Debug)]
pub struct ScreenHandle {
    index: Arc<RwLock<ScreenIndex>>,
    ready: Arc<watch::Sender<bool>>,
    applied: Arc<watch::Sender<u64>>,
}

impl Default for ScreenHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl ScreenHandle {
    /// An empty, not yet ready index.
    pub fn new() -> Self {
        Self {
            index: Arc::new(RwLock::new(ScreenIndex::new())),
            ready: Arc::new(watch::channel(false).0),
            applied: Arc::new(watch::channel(0).0),
        }
    }

    /// Whether the start build is done.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits up to `timeout` for the start build.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits up to `timeout` until the index reflects the arrival log up to `seq`
    /// (read-your-writes for the API: a request sees every record stored before it).
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|a| *a >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The arrival-log sequence number the index reflects.
    pub fn applied_seq(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Entries indexed (withdrawn included).
    pub fn len(&self) -> usize {
        self.read(|i| i.len())
    }

    /// True when no entry is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&ScreenIndex) -> T) -> T {
        match self.index.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut ScreenIndex) -> T) -> T {
        match self.index.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Runs one query (blocking: call it from a blocking thread).
    pub fn search(&self, query: &Query) -> Result<Vec<Match>, ScreenError> {
        if !self.is_ready() {
            return Err(ScreenError::Building {
                entries: self.len(),
            });
        }
        Ok(self.read(|i| i.search(query))?)
    }
}

/// An entry's state and its head record as read on the store thread, still undecoded
/// (`None`: the head record is missing).
type RawHead = (EntryKey, EntryState, Option<RawRecord>);

/// Reads the head record of each entry, undecoded, unless `have` already holds it.
fn raw_heads(
    s: &Store,
    entries: Vec<(EntryKey, EntryState)>,
    have: &std::collections::BTreeMap<EntryKey, StoredRecord>,
) -> Result<Vec<RawHead>, StoreError> {
    let mut out = Vec::with_capacity(entries.len());
    for (key, state) in entries {
        let raw = match have.get(&key) {
            Some(r) if r.record.id() == state.head => None,
            _ => s.record_raw(&state.head)?,
        };
        out.push((key, state, raw));
    }
    Ok(out)
}

/// Decodes the heads read by [`raw_heads`] (off the store thread) into documents. An
/// entry whose head record is missing or undecodable is logged and skipped: one bad
/// entry must not keep the whole index from being built.
fn head_docs(
    heads: Vec<RawHead>,
    have: &std::collections::BTreeMap<EntryKey, StoredRecord>,
) -> Vec<ScreenDoc> {
    let mut docs = Vec::with_capacity(heads.len());
    for (key, state, raw) in heads {
        match raw.map(|r| r.decode()) {
            Some(Ok(head)) => docs.push(doc_of(&key, &state, &head)),
            Some(Err(e)) => {
                tracing::error!(entry = %key.entry_id, origin = %key.origin, error = %e, "screening index: head record unreadable; entry not indexed");
            }
            None => match have.get(&key).filter(|r| r.record.id() == state.head) {
                Some(head) => docs.push(doc_of(&key, &state, head)),
                None => {
                    tracing::error!(entry = %key.entry_id, origin = %key.origin, head = %state.head, "screening index: head record missing; entry not indexed");
                }
            },
        }
    }
    docs
}

/// One page of the start scan, read on the store thread: entry states with their raw
/// head records, and the key to continue after.
fn scan_page(
    s: &Store,
    after: Option<&EntryKey>,
) -> Result<(Vec<RawHead>, Option<EntryKey>), StoreError> {
    let (page, next) = s.list_entries(&EntryFilter::default(), after, SCAN_PAGE)?;
    Ok((raw_heads(s, page, &Default::default())?, next))
}

/// Runs CPU work (decoding) on a blocking thread, off the store thread and the executor.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Closed)
}

/// The current documents of the entries that the log records after `after` belong to,
/// the last sequence number read (`after` when there was nothing new), and whether
/// more may follow.
///
/// The store thread only reads bytes (two short jobs); decoding, the costly part,
/// happens here on a blocking thread so that ingest is not held up behind it.
pub(crate) async fn follow_page(
    store: &StoreHandle,
    after: u64,
) -> Result<(Vec<ScreenDoc>, Vec<NewHead>, u64, bool), StoreError> {
    follow(store, after, FOLLOW_PAGE, PAGE_BYTES, true).await
}

/// [`follow_page`] over at most `limit` log records and about `max_bytes` of them
/// ([`read_within`]); the new heads (a copy of each fresh document, for the watches)
/// only when `want_heads`.
async fn follow(
    store: &StoreHandle,
    after: u64,
    limit: usize,
    max_bytes: usize,
    want_heads: bool,
) -> Result<(Vec<ScreenDoc>, Vec<NewHead>, u64, bool), StoreError> {
    let (log, raws, more) = store
        .call(move |s| {
            let log = s.log_after(after, limit)?;
            read_within(log, limit, max_bytes, |id| s.record_raw(id))
        })
        .await?;
    let last = log.last().map_or(after, |(seq, _)| *seq);
    // entry -> the latest log record read for it (usually the new head)
    let touched = off_thread(move || {
        let mut touched: std::collections::BTreeMap<EntryKey, StoredRecord> =
            std::collections::BTreeMap::new();
        for ((_, id), raw) in log.iter().zip(raws) {
            let rec = match raw.map(|r| r.decode()) {
                Some(Ok(r)) => r,
                None => continue,
                Some(Err(e)) => {
                    tracing::error!(record = %id, error = %e, "screening index: logged record unreadable");
                    continue;
                }
            };
            let h = rec.record.header();
            let key = EntryKey {
                entry_id: h.entry_id,
                origin: h.origin.clone(),
            };
            touched.insert(key, rec);
        }
        touched
    })
    .await?;
    let touched = Arc::new(touched);
    let have = touched.clone();
    let heads = store
        .call(move |s| {
            let mut states = Vec::with_capacity(have.len());
            for key in have.keys() {
                if let Some(state) = s.entry(key)? {
                    states.push((key.clone(), state));
                }
            }
            raw_heads(s, states, &have)
        })
        .await?;
    // Entries whose head is a record this page logged: new or amended entries (a
    // record that arrived but did not become the head changes nothing to watch).
    let fresh: std::collections::BTreeMap<EntryKey, RecordId> = heads
        .iter()
        .filter(|_| want_heads)
        .filter(|(key, state, raw)| {
            raw.is_none()
                && touched
                    .get(key)
                    .is_some_and(|r| r.record.id() == state.head)
        })
        .map(|(key, state, _)| (key.clone(), state.head))
        .collect();
    let docs = off_thread(move || head_docs(heads, &touched)).await?;
    let new_heads = if fresh.is_empty() {
        Vec::new()
    } else {
        docs.iter()
            .filter_map(|d| {
                fresh.get(&d.key()).map(|id| NewHead {
                    doc: d.clone(),
                    record_id: *id,
                })
            })
            .collect()
    };
    Ok((docs, new_heads, last, more))
}

/// Log records read (sequence number, record id), their raw values, whether more may
/// follow.
type LogPage = (Vec<(u64, RecordId)>, Vec<Option<RawRecord>>, bool);

/// The raw records of `log` (one `log_after` page of at most `limit`), read in order
/// until `max_bytes` of them are read (at least one record is always read, so a pass
/// never stalls). Returns the log records read, their raws, and whether more may
/// follow (the page was full, or the byte budget cut it).
fn read_within<E>(
    mut log: Vec<(u64, RecordId)>,
    limit: usize,
    max_bytes: usize,
    mut read: impl FnMut(&RecordId) -> Result<Option<RawRecord>, E>,
) -> Result<LogPage, E> {
    let full = log.len() >= limit;
    let mut raws = Vec::with_capacity(log.len());
    let mut bytes = 0usize;
    for (_, id) in &log {
        if bytes >= max_bytes {
            break;
        }
        let raw = read(id)?;
        bytes = bytes.saturating_add(raw.as_ref().map_or(0, RawRecord::len));
        raws.push(raw);
    }
    let cut = raws.len() < log.len();
    log.truncate(raws.len());
    Ok((log, raws, full || cut))
}

/// An entry whose head record just arrived (written here, imported or replicated):
/// what watches are checked against.
#[derive(Clone, Debug)]
pub struct NewHead {
    /// The entry as the index holds it now.
    pub doc: ScreenDoc,
    /// Its head record.
    pub record_id: RecordId,
}

/// The log head, then the documents of every entry (paged store calls; decoding off
/// the store thread).
async fn scan(store: &StoreHandle) -> Result<(u64, Vec<ScreenDoc>), StoreError> {
    let start_seq = store.call(|s| s.head_seq()).await?;
    let mut docs: Vec<ScreenDoc> = Vec::new();
    let mut after: Option<EntryKey> = None;
    loop {
        let a = after.clone();
        let (page, next) = store.call(move |s| scan_page(s, a.as_ref())).await?;
        docs.extend(off_thread(move || head_docs(page, &Default::default())).await?);
        match next {
            Some(k) => after = Some(k),
            None => return Ok((start_seq, docs)),
        }
    }
}

/// Builds the index from the store, then keeps it current until `shutdown`. See the
/// module documentation.
pub fn spawn_follower(
    store: StoreHandle,
    handle: ScreenHandle,
    mut head: watch::Receiver<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        // Build.
        let (start_seq, docs) = loop {
            match scan(&store).await {
                Ok(r) => break r,
                Err(e) => {
                    // the store refuses reads (IO error): keep answering 503 and retry
                    tracing::error!(error = %e, "screening index: store scan failed; retrying in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        let n = docs.len();
        let scan_ms = started.elapsed().as_millis() as u64;
        let built = tokio::task::spawn_blocking(move || ScreenIndex::build(docs)).await;
        match built {
            Ok(index) => handle.write(|i| *i = index),
            Err(e) => {
                tracing::error!(error = %e, "screening index: build failed");
                return;
            }
        }
        handle.applied.send_replace(start_seq);
        handle.ready.send_replace(true);
        tracing::info!(
            entries = n,
            scan_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "screening index built"
        );
        // Follow.
        let mut cursor = start_seq;
        loop {
            let target = *head.borrow_and_update();
            while cursor < target {
                let from = cursor;
                // Far behind (a cold sync, a large import): bigger passes.
                let limit = if target - cursor > FOLLOW_PAGE as u64 {
                    CATCH_UP_PAGE
                } else {
                    FOLLOW_PAGE
                };
                match follow(&store, from, limit, PAGE_BYTES, false).await {
                    Ok((docs, _, last, more)) => {
                        if !docs.is_empty() {
                            let h = handle.clone();
                            let upsert = tokio::task::spawn_blocking(move || {
                                h.write(|i| {
                                    for d in docs {
                                        i.upsert(d);
                                    }
                                });
                            })
                            .await;
                            if let Err(e) = upsert {
                                tracing::error!(error = %e, "screening index: update failed");
                                return;
                            }
                        }
                        cursor = last;
                        handle.applied.send_replace(cursor);
                        if !more && last == from {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "screening index: cannot read new records; retrying on the next change");
                        break;
                    }
                }
            }
            tokio::select! {
                r = head.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u8) -> Vec<(u64, RecordId)> {
        (1..=n).map(|i| (u64::from(i), RecordId([i; 32]))).collect()
    }

    /// Review s33-sync S2: a catch-up page of large records stops at the byte budget
    /// (plus at most one record), says more follows, and the next page starts where it
    /// stopped; a page of small records is bounded by count as before.
    #[test]
    fn a_page_of_large_records_stops_at_the_byte_budget_and_resumes() {
        let big = |_: &RecordId| Ok::<_, ()>(Some(RawRecord::from_owner(vec![0u8; 1 << 20])));
        let (read, raws, more) = read_within(log(40), 4096, 16 << 20, big).unwrap();
        assert_eq!(read.len(), 16);
        assert_eq!(raws.len(), 16);
        assert!(more, "cut by bytes: more follows");
        let held: usize = raws.iter().flatten().map(RawRecord::len).sum();
        assert!(held < (16 << 20) + (1 << 20), "{held}");
        assert_eq!(read.last().map(|(s, _)| *s), Some(16));

        // One record over the budget is still read: the pass never stalls.
        let huge = |_: &RecordId| Ok::<_, ()>(Some(RawRecord::from_owner(vec![0u8; 64])));
        let (read, _, more) = read_within(log(3), 4096, 10, huge).unwrap();
        assert_eq!((read.len(), more), (1, true));

        // Small records: the count bounds the page; a short page is the end.
        let small = |_: &RecordId| Ok::<_, ()>(Some(RawRecord::from_owner(vec![0u8; 100])));
        let (read, _, more) = read_within(log(40), 40, 16 << 20, small).unwrap();
        assert_eq!((read.len(), more), (40, true));
        let (read, _, more) = read_within(log(39), 40, 16 << 20, small).unwrap();
        assert_eq!((read.len(), more), (39, false));
        // A log record whose value is gone costs nothing and is passed on.
        let gone = |_: &RecordId| Ok::<_, ()>(None);
        let (read, raws, more) = read_within(log(5), 40, 1, gone).unwrap();
        assert_eq!((read.len(), raws.len(), more), (5, 5, false));
    }
}

#[cfg(test)]
mod follow_tests {
    use super::*;
    use wlnode_crypto::model::{EntryDraft, EntryId, Status};
    use wlnode_crypto::record::{RecordMeta, build_record};
    use wlnode_crypto::{SecretKey, Timestamp, VerifiedRecord};
    use wlnode_store::IngestBatch;
    use wlnode_types::{Incoming, Source};

    fn record(key: &SecretKey, entry_id: EntryId, version: u64, name: &str) -> VerifiedRecord {
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": name},
            "reason": "denial",
            "distribution": {"scope": "federation"}
        }))
        .unwrap();
        build_record(
            RecordMeta {
                entry_id,
                origin: "CC-TRADE".parse().unwrap(),
                version,
                issued_at: Timestamp(1_790_000_000_000 + version),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            key,
        )
        .unwrap()
    }

    async fn ingest(store: &StoreHandle, records: Vec<VerifiedRecord>) {
        let items = records
            .into_iter()
            .map(|record| Incoming {
                record,
                source: Source::Peer {
                    agency: "CC-TRADE".parse().unwrap(),
                    hops: 1,
                },
                local: None,
                inclusion: None,
            })
            .collect();
        store
            .ingest(IngestBatch {
                items,
                cursor: None,
                declined: Vec::new(),
                audit: Vec::new(),
            })
            .await
            .unwrap();
    }

    /// Review s33-sync S3: catch-up passes that end between the two records of an
    /// amended entry (by count, and by the byte budget) leave the index holding every
    /// entry exactly once, the amended one as its head; each pass says whether more
    /// follows and the last one ends the catch-up.
    #[tokio::test]
    async fn catch_up_pages_split_between_an_amendments_records_index_the_head_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _actor) = StoreHandle::open(dir.path()).unwrap();
        let key = SecretKey::generate().unwrap();
        let ids: Vec<EntryId> = (0..4).map(|_| EntryId::random().unwrap()).collect();
        // Log: a, b, x (v1) | x (v2), c: a page of 3 ends between x's two records.
        let x = ids[2];
        ingest(
            &store,
            vec![
                record(&key, ids[0], 1, "Alpha One"),
                record(&key, ids[1], 1, "Bravo Two"),
                record(&key, x, 1, "Xray Before"),
            ],
        )
        .await;
        ingest(
            &store,
            vec![
                record(&key, x, 2, "Xray Renamed"),
                record(&key, ids[3], 1, "Charlie Four"),
            ],
        )
        .await;
        // (page size, byte budget): by count, then one record per pass by bytes.
        for (limit, max_bytes) in [(3, PAGE_BYTES), (CATCH_UP_PAGE, 1)] {
            let mut index = ScreenIndex::new();
            let (mut cursor, mut passes) = (0, 0);
            let mut last_doc_of_x = None;
            loop {
                let (docs, heads, last, more) = follow(&store, cursor, limit, max_bytes, false)
                    .await
                    .unwrap();
                assert!(heads.is_empty());
                passes += 1;
                for d in docs {
                    if d.entry_id == x {
                        last_doc_of_x = Some(d.names.clone());
                    }
                    index.upsert(d);
                }
                cursor = last;
                if !more {
                    break;
                }
            }
            assert_eq!(cursor, 5, "every log record was read");
            let expected_passes = if max_bytes == 1 { 5 } else { 2 };
            assert_eq!(passes, expected_passes, "limit {limit}, budget {max_bytes}");
            assert_eq!(index.len(), 4, "every entry exactly once");
            let names = last_doc_of_x.unwrap();
            assert!(
                names.iter().any(|n| n.contains("Renamed")),
                "the amended entry is indexed as its head: {names:?}"
            );
        }
    }
}
