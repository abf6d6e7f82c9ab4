//! The node's store: every record it holds, the derived entry states, the arrival log
//! (changes feed), per-peer cursors and equivocation evidence, on a storage engine
//! ([`engine`]: sled or fjall, chosen by `[store] engine`).
//!
//! `Store` is synchronous and owned by exactly one thread, the store actor
//! ([`actor`]); the rest of the node holds a cheap [`StoreHandle`]. Ingest takes a
//! batch of verified records and applies it in one atomic write across all trees,
//! then flushes to disk, so a batch is either wholly visible and durable or not at all.
//! Layouts are in [`schema`].

pub mod actor;
mod anchor;
pub mod audit;
pub mod backup;
pub mod blocks;
mod engine;
#[cfg(any(test, feature = "fault-injection"))]
pub mod faults;
#[cfg(feature = "floor")]
pub mod floor;
mod hold;
pub mod inclusions;
pub mod migrate;
pub mod revocations;
pub mod schema;
pub mod tables;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use engine::{Tree, TxTree};
use wlnode_crypto::model::{AgencyCode, EntryId, RecordId, Status};
use wlnode_crypto::time::Timestamp;

pub use actor::{QueuedIngest, StoreHandle, checkpoint_due};
pub use engine::{EngineKind, UnknownEngine};
pub use wlnode_types::EntryKey;

use schema::{SCHEMA_VERSION, be_u64, meta, trees, version_key};
use wlnode_audit::event::{Event, EventKind};
use wlnode_types::{
    Cursor, Declined, EntryState, Equivocation, Incoming, IngestReport, LocalMeta, Outcome,
    RawRecord, Source, StoredRecord, SyncMeta, WireError,
};

/// Most records a store keeps for one (entry, version) of an origin: two prove
/// equivocation; a few more show its extent. Records past it are refused
/// ([`Outcome::EquivocationExcess`]).
pub const MAX_EQUIVOCATION_EVIDENCE: usize = 4;

/// The rejection reason of a record refused as [`Outcome::EquivocationExcess`].
pub const EQUIVOCATION_EXCESS: &str = "equivocation_excess";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data dir.
    #[error("data dir {path} is in use by another wlnode process ({holder}); stop it first")]
    Locked {
        /// The data dir.
        path: PathBuf,
        /// What the lock file says about the holder.
        holder: String,
    },
    /// Creating or opening files failed.
    #[error("cannot open store in {path}: {reason}")]
    Open {
        /// The data dir.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The store was written by an incompatible version.
    #[error(
        "store schema version {found} is not supported; this wlnode reads versions 1 to {SCHEMA_VERSION}"
    )]
    Schema {
        /// Version on disk.
        found: u32,
    },
    /// The storage engine reported an IO or storage error.
    #[error("store IO error: {0}")]
    Io(EngineError),
    /// A stored value does not decode.
    #[error("store holds a corrupt value in tree {tree}: {reason}")]
    Corrupt {
        /// Tree name.
        tree: &'static str,
        /// Why.
        reason: String,
    },
    /// The data dir was written by another storage engine than the one asked for.
    #[error(
        "data dir {path} holds a {found} store, but the {wanted} engine was asked for; set [store] engine = \"{found}\" or convert it with `wlnode store migrate`"
    )]
    WrongEngine {
        /// The data dir.
        path: PathBuf,
        /// The engine its `ENGINE` file names.
        found: EngineKind,
        /// The engine asked for.
        wanted: EngineKind,
    },
    /// The store actor is gone.
    #[error("the store has shut down")]
    Closed,
}

/// What the storage engine reported. The engine's own error type stays inside this
/// crate, so that no caller depends on which engine runs.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The disk refused a read or write.
    #[error("IO error: {0}")]
    Io(std::io::Error),
    /// Anything else the engine reported (damaged files, an unsupported layout, a bug).
    #[error("{0}")]
    Engine(String),
}

/// `?` for the storage engine's results: its errors become [`StoreError::Io`].
pub(crate) trait Engine<T> {
    fn io(self) -> Result<T, StoreError>;
}

impl<T> Engine<T> for Result<T, EngineError> {
    fn io(self) -> Result<T, StoreError> {
        self.map_err(StoreError::Io)
    }
}

impl StoreError {
    fn corrupt(tree: &'static str, e: impl ToString) -> Self {
        Self::Corrupt {
            tree,
            reason: e.to_string(),
        }
    }
}

/// A batch to apply atomically.
#[derive(Clone, Debug, Default)]
pub struct IngestBatch {
    /// The records.
    pub items: Vec<Incoming>,
    /// A changes-feed cursor to persist with the batch (never ahead of the data).
    pub cursor: Option<(AgencyCode, Cursor)>,
    /// Records this node declined. They join the reconciliation sets shared with
    /// the peers they were declined for, so that those stop offering them; a policy
    /// reload clears them.
    pub declined: Vec<Declined>,
    /// Audit events to append in the same transaction (e.g. the batch's rejections);
    /// the store adds one per record and per equivocation itself.
    pub audit: Vec<Event>,
}

/// Store-wide counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Records held.
    pub records: u64,
    /// Entries known.
    pub entries: u64,
    /// Entries whose head is withdrawn.
    pub withdrawn: u64,
    /// Entry versions with equivocation.
    pub disputed_versions: u64,
    /// Arrival-log head.
    pub head_seq: u64,
    /// Audit log size (events).
    pub audit_events: u64,
    /// Auditor cosignatures of our audit checkpoints held.
    pub audit_cosignatures: u64,
}

/// Filter for listing entries.
#[derive(Clone, Debug, Default)]
pub struct EntryFilter {
    /// Only this origin.
    pub origin: Option<AgencyCode>,
    /// Only this head status.
    pub status: Option<Status>,
    /// Only entries whose head changed here at or after this time.
    pub updated_since: Option<Timestamp>,
}

impl EntryFilter {
    fn matches(&self, key: &EntryKey, s: &EntryState) -> bool {
        self.origin.as_ref().is_none_or(|o| *o == key.origin)
            && self.status.is_none_or(|st| st == s.status)
            && self.updated_since.is_none_or(|t| s.updated_at >= t)
    }
}

/// The values of a chunked tree (keys: u64 BE index of a value's first item) that can
/// hold items at index `from` or later, in key order: the value holding `from` (the
/// last key at or before it), then every value keyed after it. `log` and
/// `audit_events` are laid out this way.
pub(crate) fn chunks_from(
    tree: &Tree,
    from: u64,
) -> Result<impl Iterator<Item = Result<(Bytes, Bytes), EngineError>>, EngineError> {
    let first = tree.range(..=from.to_be_bytes()).next_back().transpose()?;
    let rest = tree.range((
        std::ops::Bound::Excluded(from.to_be_bytes()),
        std::ops::Bound::Unbounded,
    ));
    Ok(first.into_iter().map(Ok).chain(rest))
}

/// At most this many arrival-log ids share one `log` value (8 KiB): one engine write
/// per batch instead of one per record, while a changes-feed read decodes a bounded
/// value.
pub(crate) const LOG_CHUNK: usize = 256;

const COUNT_RECORDS: &[u8] = b"count_records";
const COUNT_ENTRIES: &[u8] = b"count_entries";
pub(crate) const COUNT_WITHDRAWN: &[u8] = b"count_withdrawn";

struct Trees {
    meta: Tree,
    records: Tree,
    entries: Tree,
    disputes: Tree,
    log: Tree,
    sync_index: Tree,
    cursors: Tree,
    local: Tree,
    declined: Tree,
    audit_events: Tree,
    audit_nodes: Tree,
    audit_checkpoints: Tree,
    audit_cosignatures: Tree,
    cases: Tree,
    decisions: Tree,
    mail: Tree,
    consultations: Tree,
    watch_hits: Tree,
}

/// The store. Owned by the store actor.
pub struct Store {
    db: std::sync::Arc<dyn engine::Kv>,
    kind: EngineKind,
    t: Trees,
    /// Held while a multi-tree batch reads and writes ([`Self::transaction`]).
    tx_lock: std::sync::Mutex<()>,
    epoch: [u8; 16],
    dir: PathBuf,
    audit: std::sync::Mutex<audit::AuditSettings>,
    _lock: File,
    #[cfg(any(test, feature = "fault-injection"))]
    faults: std::sync::Arc<faults::Faults>,
    /// The engine reported an IO error on a write; writes are refused until reopened.
    io_failed: std::sync::atomic::AtomicBool,
    /// Roughly the sled writes since sled was opened (records, their audit events,
    /// declined ids; cursors and metadata are not counted). sled 0.34 writes its
    /// recovery snapshot only when it opens, so the next open replays all of them.
    writes: std::sync::atomic::AtomicU64,
    /// This opening of the store (unique in the process): a reopen may drop a batch
    /// that was visible before, so what was read under another opening is stale.
    opening: u64,
}

/// An opened engine, its trees and the store's log epoch.
type Opened = (std::sync::Arc<dyn engine::Kv>, Trees, [u8; 16]);

/// Counts openings of stores in this process (see [`Store::opening`]).
static OPENINGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long [`Store::open`] and [`Store::reopen`] wait for sled's own file lock, held
/// for a moment by the background jobs of an instance just closed.
pub const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A store whose sled is closed while its data dir stays locked, keeping what the
/// node set in memory: what the store actor holds between closing sled and opening
/// it again (a checkpoint, or recovery after a disk error).
pub struct ClosedStore {
    dir: PathBuf,
    kind: EngineKind,
    lock: File,
    audit: audit::AuditSettings,
    #[cfg(any(test, feature = "fault-injection"))]
    faults: std::sync::Arc<faults::Faults>,
}

impl std::fmt::Debug for ClosedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ClosedStore {
    /// Opens sled again, waiting up to `lock_wait` for sled's own file lock (see
    /// [`SLED_LOCK_WAIT`]); on failure the directory stays locked in the returned
    /// value.
    pub fn open(self, lock_wait: std::time::Duration) -> Result<Store, (Box<Self>, StoreError)> {
        match Store::open_engine(&self.dir, self.kind, lock_wait) {
            Ok(parts) => {
                let Self {
                    dir,
                    kind,
                    lock,
                    audit,
                    #[cfg(any(test, feature = "fault-injection"))]
                    faults,
                } = self;
                let s = Store::assemble(parts, &dir, kind, lock, audit);
                #[cfg(any(test, feature = "fault-injection"))]
                let s = s.with_faults(faults);
                Ok(s)
            }
            Err(e) => Err((Box::new(self), e)),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The file in a data dir that names the engine its store was written by.
pub const ENGINE_FILE: &str = "ENGINE";

/// The engine the store in `dir` was written by: its `ENGINE` file, or sled for a data
/// dir written before engines were selectable (it holds sled's `db` folder), or `None`
/// for a dir that holds no store yet.
pub fn recorded_engine(dir: &Path) -> Result<Option<EngineKind>, StoreError> {
    let path = dir.join(ENGINE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: UnknownEngine| StoreError::Open {
                path: dir.to_owned(),
                reason: format!("{}: {e}", path.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(dir
            .join(EngineKind::Sled.subdir())
            .exists()
            .then_some(EngineKind::Sled)),
        Err(e) => Err(StoreError::Open {
            path: dir.to_owned(),
            reason: format!("{}: {e}", path.display()),
        }),
    }
}

/// Writes the `ENGINE` file (durably: written aside, fsynced, renamed, the dir
/// fsynced), before the engine creates any file of its own.
fn record_engine(dir: &Path, kind: EngineKind) -> Result<(), StoreError> {
    let path = dir.join(ENGINE_FILE);
    if std::fs::read_to_string(&path).is_ok_and(|s| s.trim() == kind.as_str()) {
        return Ok(());
    }
    let err = |e: std::io::Error| StoreError::Open {
        path: dir.to_owned(),
        reason: format!("{}: {e}", path.display()),
    };
    let tmp = dir.join("ENGINE.tmp");
    let mut f = File::create(&tmp).map_err(err)?;
    writeln!(f, "{kind}").map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(err)
}

/// The engine of a new store opened with [`Store::open`]: sled (see README
/// "Storage engines"). Test builds read `WLNODE_TEST_STORE_ENGINE`, so that one test
/// suite runs on each engine.
pub fn default_engine() -> EngineKind {
    #[cfg(any(test, feature = "fault-injection"))]
    if let Ok(v) = std::env::var("WLNODE_TEST_STORE_ENGINE")
        && let Ok(k) = v.parse()
    {
        return k;
    }
    EngineKind::default()
}

fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let open_err = |e: std::io::Error| StoreError::Open {
        path: dir.to_owned(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(open_err)?;
    let path = dir.join("LOCK");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(open_err)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(StoreError::Locked {
                path: dir.to_owned(),
                holder: if holder.trim().is_empty() {
                    "unknown pid".into()
                } else {
                    holder.trim().to_owned()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
    }
    file.set_len(0).map_err(open_err)?;
    write!(file, "pid {}", std::process::id()).map_err(open_err)?;
    file.sync_all().map_err(open_err)?;
    Ok(file)
}

pub(crate) fn u64_of(v: Option<Bytes>) -> u64 {
    v.and_then(|b| be_u64(&b)).unwrap_or(0)
}

/// The result of a function run inside [`Store::transaction`]: an error aborts it.
pub(crate) type TxResult<T> = Result<T, StoreError>;

pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(e)
}

/// The error of a batch that an injected fault makes fail partway.
#[cfg(any(test, feature = "fault-injection"))]
fn faults_partway() -> StoreError {
    faults::injected("the write failed partway through the batch")
}

/// Never called without fault injection (`fail_partway` is always false then).
#[cfg(not(any(test, feature = "fault-injection")))]
fn faults_partway() -> StoreError {
    StoreError::Closed
}

/// Reconciliation items that reached the arrival log after some seq, and the log head
/// they reach ([`Store::reconcile_delta`]).
pub type Delta = (Vec<(u64, RecordId)>, u64);

/// Rewrites every sync-index value from the record it indexes (schema 5: the values
/// carry what the send decision reads). One pass over the records, in batches.
fn rebuild_sync_index(t: &Trees) -> Result<(), StoreError> {
    let mut batch = engine::Batch::default();
    let mut n = 0usize;
    for kv in t.records.iter() {
        let (_, v) = kv.io()?;
        let stored =
            StoredRecord::decode(&v).map_err(|e| StoreError::corrupt(trees::RECORDS, e))?;
        let h = stored.record.header();
        let id = stored.record.id();
        batch.insert(
            &schema::sync_key(h.issued_at.as_millis(), &id.0)[..],
            SyncMeta::stored(&stored).encode(),
        );
        n += 1;
        if n.is_multiple_of(10_000) {
            t.sync_index.apply_batch(std::mem::take(&mut batch)).io()?;
        }
    }
    t.sync_index.apply_batch(batch).io()?;
    tracing::info!(records = n, "sync index rebuilt for store schema 5");
    Ok(())
}

impl Store {
    /// The fault-injection switches (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn faults(&self) -> std::sync::Arc<faults::Faults> {
        self.faults.clone()
    }

    /// Uses `faults` (kept across a reopen) instead of fresh switches.
    #[cfg(any(test, feature = "fault-injection"))]
    #[must_use]
    pub fn with_faults(mut self, faults: std::sync::Arc<faults::Faults>) -> Self {
        self.faults = faults;
        self
    }

    /// Whether the engine reported an IO error on a write (writes are then refused
    /// until the store is opened again; the store actor does that).
    pub fn io_failed(&self) -> bool {
        self.io_failed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Notes an engine write error.
    fn write_result<T>(&self, r: Result<T, EngineError>) -> Result<T, StoreError> {
        self.write_failed(r.io())
    }

    /// Notes a failed write: after an engine IO error, sled refuses every later write
    /// until it is opened again ([`Self::io_failed`]).
    fn write_failed<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Io(_)) = &r {
            self.io_failed
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        r
    }

    /// Fails if an injected fault says the disk refuses this write (tests only).
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn before_write(&self) -> Result<(), StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.before_write()?;
        Ok(())
    }

    /// Whether this ingest batch is to fail partway (tests only).
    #[allow(clippy::unused_self)]
    fn fail_mid_batch(&self) -> bool {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.faults.mid_batch() {
            return true;
        }
        false
    }

    /// Opens (or creates) the store in `dir`, taking an exclusive lock on it, on the
    /// engine its `ENGINE` file names (a new store: the default engine, see
    /// [`default_engine`]). Once the directory lock is ours no other wlnode process
    /// has the store, so an engine lock still held can only be a just-closed
    /// instance's background jobs in this process (a store reopened right after it
    /// was dropped): wait up to [`SLED_LOCK_WAIT`] for it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let kind = recorded_engine(dir)?.unwrap_or_else(default_engine);
        Self::open_with(dir, kind)
    }

    /// Opens (or creates) the store in `dir` on engine `kind`; a store written by
    /// another engine is refused ([`StoreError::WrongEngine`]), never reinterpreted.
    pub fn open_with(dir: &Path, kind: EngineKind) -> Result<Self, StoreError> {
        let lock = lock_dir(dir)?;
        if let Some(found) = recorded_engine(dir)?
            && found != kind
        {
            return Err(StoreError::WrongEngine {
                path: dir.to_owned(),
                found,
                wanted: kind,
            });
        }
        record_engine(dir, kind)?;
        Ok(Self::assemble(
            Self::open_engine(dir, kind, SLED_LOCK_WAIT)?,
            dir,
            kind,
            lock,
            audit::AuditSettings::default(),
        ))
    }

    /// The engine this store runs on.
    pub fn engine(&self) -> EngineKind {
        self.kind
    }

    /// Roughly the writes since the engine was opened (see the field): what the next
    /// open will replay.
    pub fn writes_since_open(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_writes(&self, n: usize) {
        self.writes.fetch_add(
            u64::try_from(n).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Closes the engine and opens it again, keeping the directory lock, the audit
    /// settings and (tests) the fault switches. Flushes first.
    ///
    /// sled 0.34 writes its recovery snapshot only while opening; until then, an open
    /// replays every write since the last one (a store filled with a million records
    /// in one run opened in 2.9 s here, 0.23 s once it had been reopened). The store
    /// actor reopens after many writes so that a restart, even after a crash, stays
    /// fast. On failure the directory stays locked in the returned [`ClosedStore`].
    pub fn reopen(self) -> Result<Self, (Box<ClosedStore>, StoreError)> {
        if let Err(e) = self.flush() {
            return Err((Box::new(self.close()), e));
        }
        self.db.settle();
        self.close().open(SLED_LOCK_WAIT)
    }

    /// Closes the engine (without flushing), keeping the directory lock and what the
    /// node set in memory.
    pub fn close(self) -> ClosedStore {
        let Self {
            db,
            kind,
            t,
            dir,
            audit,
            _lock: lock,
            #[cfg(any(test, feature = "fault-injection"))]
            faults,
            ..
        } = self;
        drop(t);
        drop(db);
        ClosedStore {
            dir,
            kind,
            lock,
            audit: audit
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            #[cfg(any(test, feature = "fault-injection"))]
            faults,
        }
    }

    fn assemble(
        (db, t, epoch): Opened,
        dir: &Path,
        kind: EngineKind,
        lock: File,
        audit: audit::AuditSettings,
    ) -> Self {
        Self {
            db,
            kind,
            t,
            tx_lock: std::sync::Mutex::new(()),
            epoch,
            dir: dir.to_owned(),
            audit: std::sync::Mutex::new(audit),
            _lock: lock,
            #[cfg(any(test, feature = "fault-injection"))]
            faults: std::sync::Arc::default(),
            io_failed: std::sync::atomic::AtomicBool::new(false),
            writes: std::sync::atomic::AtomicU64::new(0),
            opening: OPENINGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Which opening of the store this is: it changes at every open and reopen (after
    /// a disk error, or a periodic checkpoint), so a reader can tell that what it
    /// learned before may be gone.
    pub fn opening(&self) -> u64 {
        self.opening
    }

    /// Runs `f` over `trees` as one atomic batch: its reads see its own writes, and
    /// its writes are applied together when it returns `Ok` (all or none, also after a
    /// crash; durable once flushed). An error aborts it and nothing is written. An
    /// engine error on the write marks the store failed ([`Self::io_failed`]).
    pub(crate) fn transaction<T>(
        &self,
        trees: &[&Tree],
        f: impl FnOnce(&[TxTree<'_>]) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        let _g = self
            .tx_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = engine::Tx::default();
        let out = {
            let views: Vec<TxTree<'_>> = trees.iter().map(|t| TxTree::new(t, &tx)).collect();
            f(&views)
        };
        let out = self.write_failed(out)?;
        self.write_result(self.db.apply(tx.into_ops()))?;
        Ok(out)
    }

    /// Opens engine `kind` in `dir` (whose directory lock the caller holds) and checks
    /// or sets the schema version and log epoch.
    fn open_engine(
        dir: &Path,
        kind: EngineKind,
        lock_wait: std::time::Duration,
    ) -> Result<Opened, StoreError> {
        let db = engine::open(kind, dir, lock_wait)?;
        let open = |name: &str| Tree::open(&db, name);
        let t = Trees {
            meta: open(trees::META).io()?,
            records: open(trees::RECORDS).io()?,
            entries: open(trees::ENTRIES).io()?,
            disputes: open(trees::DISPUTES).io()?,
            log: open(trees::LOG).io()?,
            sync_index: open(trees::SYNC_INDEX).io()?,
            cursors: open(trees::CURSORS).io()?,
            local: open(trees::LOCAL).io()?,
            declined: open(trees::DECLINED).io()?,
            audit_events: open(trees::AUDIT_EVENTS).io()?,
            audit_nodes: open(trees::AUDIT_NODES).io()?,
            audit_checkpoints: open(trees::AUDIT_CHECKPOINTS).io()?,
            audit_cosignatures: open(trees::AUDIT_COSIGNATURES).io()?,
            cases: open(trees::CASES).io()?,
            decisions: open(trees::DECISIONS).io()?,
            mail: open(trees::MAIL).io()?,
            consultations: open(trees::CONSULTATIONS).io()?,
            watch_hits: open(trees::WATCH_HITS).io()?,
        };
        match t.meta.get(meta::SCHEMA_VERSION).io()? {
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::corrupt(trees::META, "schema_version"))?;
                if !schema::READABLE_SCHEMA_VERSIONS.contains(&found) {
                    return Err(StoreError::Schema { found });
                }
                if found != SCHEMA_VERSION {
                    // Its values read the same; from now on it gets chunked ones.
                    // Declined entries from before version 4 were stored unverified
                    // and for every peer: forget them (see `schema`).
                    if found < 4 {
                        t.declined.clear().io()?;
                    }
                    // Before version 5 the sync index held the distribution only:
                    // rebuild it with what the send decision reads, before the new
                    // version is written (a crash here rebuilds it again).
                    if found < 5 {
                        rebuild_sync_index(&t)?;
                        db.flush().io()?;
                    }
                    t.meta
                        .insert(meta::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes())
                        .io()?;
                }
            }
            None => {
                t.meta
                    .insert(meta::SCHEMA_VERSION, SCHEMA_VERSION.to_be_bytes())
                    .io()?;
            }
        }
        let epoch = match t.meta.get(meta::LOG_EPOCH).io()? {
            Some(e) => e
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::corrupt(trees::META, "log_epoch"))?,
            None => {
                let mut e = [0u8; 16];
                getrandom::fill(&mut e).map_err(|e| StoreError::Open {
                    path: dir.to_owned(),
                    reason: format!("random epoch: {e}"),
                })?;
                t.meta.insert(meta::LOG_EPOCH, e).io()?;
                e
            }
        };
        db.flush().io()?;
        Ok((db, t, epoch))
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This store's arrival-log epoch.
    pub fn epoch(&self) -> [u8; 16] {
        self.epoch
    }

    /// The last arrival-log sequence number (0 when empty).
    pub fn head_seq(&self) -> Result<u64, StoreError> {
        Ok(u64_of(self.t.meta.get(meta::NEXT_SEQ).io()?).saturating_sub(1))
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.write_result(self.db.flush())?;
        Ok(())
    }

    /// Applies a batch in one transaction, then flushes to disk.
    pub fn ingest(&self, batch: &IngestBatch, now: Timestamp) -> Result<IngestReport, StoreError> {
        let report = self.ingest_unflushed(batch, now)?;
        self.flush_ingest()?;
        Ok(report)
    }

    /// The flush that makes applied ingests durable (with the tests' flush faults).
    fn flush_ingest(&self) -> Result<(), StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.write_failed(self.faults.before_flush())?;
        self.write_result(self.db.flush()).map(|_| ())
    }

    /// Group commit: applies each batch in its own transaction (atomic as with
    /// [`Self::ingest`]; a batch that fails is not written and fails alone), then makes
    /// all of them durable with one flush. A batch's report is returned only after that
    /// flush, so nothing is acknowledged before it is durable; if the flush fails, every
    /// batch applied in the group gets its error (the store is then marked failed and
    /// the actor's reopen drops what did not reach the disk, as for one batch).
    pub fn ingest_group(
        &self,
        batches: &[IngestBatch],
        now: Timestamp,
    ) -> Vec<Result<IngestReport, StoreError>> {
        let mut out: Vec<Result<IngestReport, StoreError>> = batches
            .iter()
            .map(|b| self.ingest_unflushed(b, now))
            .collect();
        if out.iter().any(Result::is_ok)
            && let Err(e) = self.flush_ingest()
        {
            // One error for each batch (the engine's error is not `Clone`).
            let copy = || match &e {
                StoreError::Io(EngineError::Io(io)) => StoreError::Io(EngineError::Io(
                    std::io::Error::new(io.kind(), io.to_string()),
                )),
                StoreError::Io(EngineError::Engine(m)) => {
                    StoreError::Io(EngineError::Engine(m.clone()))
                }
                other => StoreError::Io(EngineError::Engine(other.to_string())),
            };
            for r in &mut out {
                if r.is_ok() {
                    *r = Err(copy());
                }
            }
        }
        out
    }

    /// [`Self::ingest`] without the final flush: applied and visible, not yet durable.
    fn ingest_unflushed(
        &self,
        batch: &IngestBatch,
        now: Timestamp,
    ) -> Result<IngestReport, StoreError> {
        let t = &self.t;
        let trees = [
            &t.meta,
            &t.records,
            &t.entries,
            &t.disputes,
            &t.log,
            &t.sync_index,
            &t.cursors,
            &t.local,
            &t.declined,
            &t.audit_events,
            &t.audit_nodes,
        ];
        let audit = self.audit_enabled();
        self.before_write()?;
        let fail_partway = self.fail_mid_batch();
        let report = self.transaction(&trees, |tx| {
            Self::ingest_tx(tx, batch, now, audit, fail_partway)
        })?;
        // Each record also gets an audit event when the log is kept.
        let per_record = if audit { 2 } else { 1 };
        self.count_writes(
            batch.items.len() * per_record + batch.audit.len() + batch.declined.len(),
        );
        if audit {
            self.audit_maybe_checkpoint(now.as_millis())?;
        }
        Ok(report)
    }

    #[allow(clippy::indexing_slicing)] // fixed-size tree list built in `ingest`
    fn ingest_tx(
        tx: &[TxTree<'_>],
        batch: &IngestBatch,
        now: Timestamp,
        audit: bool,
        fail_partway: bool,
    ) -> TxResult<IngestReport> {
        let (meta_t, records, entries, disputes, log, sync_index, cursors, local, declined) = (
            &tx[0], &tx[1], &tx[2], &tx[3], &tx[4], &tx[5], &tx[6], &tx[7], &tx[8],
        );
        let (audit_events, audit_nodes) = (&tx[9], &tx[10]);
        let mut declined_new = 0usize;
        for d in &batch.declined {
            if declined
                .replace(schema::declined_key(d), d.meta.encode())?
                .is_none()
            {
                declined_new += 1;
            }
        }
        let mut next_seq = u64_of(meta_t.get(meta::NEXT_SEQ)?).max(1);
        // This batch's arrival-log ids, in seq order from `first_seq`: written as chunks.
        let first_seq = next_seq;
        let mut new_log: Vec<u8> = Vec::new();
        let mut n_records = u64_of(meta_t.get(COUNT_RECORDS)?);
        let mut n_entries = u64_of(meta_t.get(COUNT_ENTRIES)?);
        let mut n_withdrawn = u64_of(meta_t.get(COUNT_WITHDRAWN)?);
        let mut report = IngestReport {
            declined_new,
            ..IngestReport::default()
        };

        for (i, item) in batch.items.iter().enumerate() {
            // Injected fault (tests): the write fails after part of the batch is in.
            if fail_partway && i == 1 {
                return abort(faults_partway());
            }
            let rec = &item.record;
            let id = rec.id();
            let (hops, from) = match &item.source {
                Source::Local => (0, None),
                Source::Peer { agency, hops } => (*hops, Some(agency.clone())),
            };
            let h = rec.header();
            let key = EntryKey {
                entry_id: h.entry_id,
                origin: h.origin.clone(),
            };
            if let Some(local_meta) = &item.local {
                local.insert(key.to_bytes(), local_meta.encode())?;
            }
            if let Some(existing) = records.get(id.0)? {
                let mut stored = match StoredRecord::decode(&existing) {
                    Ok(s) => s,
                    Err(e) => return abort(StoreError::corrupt(trees::RECORDS, e)),
                };
                let added = match stored.record.merge(rec) {
                    Ok(n) => n,
                    Err(e) => return abort(StoreError::corrupt(trees::RECORDS, e)),
                };
                let fewer_hops = hops < stored.hops;
                // A proof for a revoked key's record held without one: kept, and the
                // record goes on the arrival log again (it may now be sent on).
                let proof_added = stored.inclusion.is_none() && item.inclusion.is_some();
                if proof_added {
                    stored.inclusion.clone_from(&item.inclusion);
                }
                if added > 0 || proof_added {
                    stored.seq = next_seq;
                    new_log.extend_from_slice(&id.0);
                    next_seq += 1;
                }
                if added > 0 || fewer_hops || proof_added {
                    stored.hops = stored.hops.min(hops);
                    records.insert(id.0, stored.encode())?;
                }
                if fewer_hops || proof_added {
                    // The send decision reads the hops we hold it at, and the proof.
                    sync_index.insert(
                        &schema::sync_key(h.issued_at.as_millis(), &id.0)[..],
                        SyncMeta::stored(&stored).encode(),
                    )?;
                }
                report.outcomes.push(if added > 0 {
                    Outcome::Merged { added }
                } else {
                    Outcome::Duplicate
                });
                continue;
            }

            // A new record.
            let kbytes = key.to_bytes();
            let prev = match entries.get(&kbytes)? {
                Some(v) => match EntryState::decode(&v) {
                    Ok(s) => Some(s),
                    Err(e) => return abort(StoreError::corrupt(trees::ENTRIES, e)),
                },
                None => None,
            };
            // Bounded evidence: past a few records for one (entry, version), more
            // prove nothing new, and each would grow the entry state and the audit
            // event that lists them (quadratic work for one signer's flood).
            if let Some(p) = &prev {
                let held = p
                    .history
                    .iter()
                    .filter(|(v, r)| *v == h.version && p.demoted.binary_search(r).is_err())
                    .count();
                if held >= MAX_EQUIVOCATION_EVIDENCE {
                    // Declined for every peer, so that none keeps offering it (each
                    // offer would cost a signature check and an audit event).
                    if declined
                        .replace(
                            &schema::sync_key(h.issued_at.as_millis(), &id.0)[..],
                            SyncMeta::of(h).encode(),
                        )?
                        .is_none()
                    {
                        report.declined_new += 1;
                    }
                    report.outcomes.push(Outcome::EquivocationExcess);
                    continue;
                }
            }
            let proven = item.inclusion.is_some();
            records.insert(
                id.0,
                if proven {
                    StoredRecord {
                        record: rec.clone(),
                        hops,
                        received_from: from.clone(),
                        received_at: now,
                        seq: next_seq,
                        inclusion: item.inclusion.clone(),
                    }
                    .encode()
                } else {
                    StoredRecord::encode_parts(rec, hops, from.as_ref(), now, next_seq)
                },
            )?;
            new_log.extend_from_slice(&id.0);
            next_seq += 1;
            n_records += 1;
            sync_index.insert(
                &schema::sync_key(h.issued_at.as_millis(), &id.0)[..],
                SyncMeta::held_proven(h, hops, proven).encode(),
            )?;

            // Every record of the entry, idempotently (a redo after a crash adds nothing).
            let mut history = prev.as_ref().map(|p| p.history.clone()).unwrap_or_default();
            if let Err(pos) = history.binary_search(&(h.version, id)) {
                history.insert(pos, (h.version, id));
            }
            // A new record is demoted only when it is a revoked key's, taken with an
            // inclusion proof (otherwise such a record is only taken when the store
            // already holds it, as a duplicate); demoted ones of the entry do not count
            // towards an equivocation.
            let mut demoted = prev.as_ref().map(|p| p.demoted.clone()).unwrap_or_default();
            if proven && let Err(pos) = demoted.binary_search(&id) {
                demoted.insert(pos, id);
            }
            let same_version: Vec<RecordId> = history
                .iter()
                .filter(|(v, r)| *v == h.version && demoted.binary_search(r).is_err())
                .map(|(_, r)| *r)
                .collect();
            let equivocation = same_version.len() > 1;
            if equivocation {
                disputes.insert(version_key(&key, h.version), [])?;
                report.equivocations.push(Equivocation {
                    entry: key.clone(),
                    version: h.version,
                    records: same_version,
                });
            }
            let new_head = |disputed: bool, history: Vec<(u64, RecordId)>, demoted| EntryState {
                head: id,
                version: h.version,
                status: h.status,
                issued_at: h.issued_at,
                disputed,
                updated_at: now,
                review_by: h.review_by,
                history,
                demoted,
            };
            let state = match prev {
                None => {
                    n_entries += 1;
                    if h.status == Status::Withdrawn {
                        n_withdrawn += 1;
                    }
                    let s = new_head(equivocation, history, demoted);
                    report.head_changes.push((key.clone(), s.clone()));
                    s
                }
                Some(mut s) => {
                    s.history = history;
                    s.demoted = demoted;
                    s.disputed |= equivocation;
                    // A valid record beats a demoted head whatever the versions (and a
                    // demoted one never beats a valid head); then the highest version
                    // wins, and for equal versions (equivocation) the smallest record
                    // id, so every node derives the same head.
                    let head_demoted = s.is_demoted(&s.head);
                    let wins = if proven != head_demoted {
                        head_demoted
                    } else {
                        h.version > s.version || (h.version == s.version && id < s.head)
                    };
                    if wins {
                        if s.status == Status::Withdrawn {
                            n_withdrawn = n_withdrawn.saturating_sub(1);
                        }
                        if h.status == Status::Withdrawn {
                            n_withdrawn += 1;
                        }
                        s = new_head(
                            s.disputed,
                            std::mem::take(&mut s.history),
                            std::mem::take(&mut s.demoted),
                        );
                        report.head_changes.push((key.clone(), s.clone()));
                    } else if equivocation {
                        report.head_changes.push((key.clone(), s.clone()));
                    }
                    s
                }
            };
            entries.insert(kbytes, state.encode())?;
            report.outcomes.push(Outcome::Stored);
        }
        for (seq, ids) in (first_seq..)
            .step_by(LOG_CHUNK)
            .zip(new_log.chunks(LOG_CHUNK * 32))
        {
            log.insert(seq.to_be_bytes(), ids)?;
        }
        if let Some((peer, cursor)) = &batch.cursor {
            cursors.insert(peer.as_str().as_bytes(), cursor.encode())?;
        }
        if fail_partway {
            return abort(faults_partway());
        }
        meta_t.insert(meta::NEXT_SEQ, next_seq.to_be_bytes())?;
        meta_t.insert(COUNT_RECORDS, n_records.to_be_bytes())?;
        meta_t.insert(COUNT_ENTRIES, n_entries.to_be_bytes())?;
        meta_t.insert(COUNT_WITHDRAWN, n_withdrawn.to_be_bytes())?;
        report.head_seq = next_seq - 1;
        if audit {
            let events = audit_events_of(batch, &report, now);
            audit::append_tx(meta_t, audit_events, audit_nodes, &events)?;
        }
        Ok(report)
    }

    /// One record by id.
    pub fn record(&self, id: &RecordId) -> Result<Option<StoredRecord>, StoreError> {
        self.record_raw(id)?
            .map(|r| {
                r.decode()
                    .map_err(|e| StoreError::corrupt(trees::RECORDS, e))
            })
            .transpose()
    }

    /// One record's stored bytes, undecoded: the store thread only copies a reference,
    /// and the caller decodes (and validates) them on its own thread.
    pub fn record_raw(&self, id: &RecordId) -> Result<Option<RawRecord>, StoreError> {
        Ok(self.t.records.get(id.0).io()?.map(RawRecord::from_owner))
    }

    /// Whether a record is held.
    pub fn has_record(&self, id: &RecordId) -> Result<bool, StoreError> {
        self.t.records.contains_key(id.0).io()
    }

    /// One entry's state.
    pub fn entry(&self, key: &EntryKey) -> Result<Option<EntryState>, StoreError> {
        self.t
            .entries
            .get(key.to_bytes())
            .io()?
            .map(|v| decode_state(&v))
            .transpose()
    }

    /// Every entry with this id (normally one; several origins may reuse an id).
    pub fn entries_by_id(&self, id: &EntryId) -> Result<Vec<(EntryKey, EntryState)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.entries.scan_prefix(id.0) {
            let (k, v) = kv.io()?;
            let key = EntryKey::from_bytes(&k)
                .ok_or_else(|| StoreError::corrupt(trees::ENTRIES, "bad key"))?;
            out.push((key, decode_state(&v)?));
        }
        Ok(out)
    }

    /// Entries in key order after `after` (exclusive) that match `filter`, at most
    /// `limit`; also returns the key to continue after, if there may be more.
    #[allow(clippy::type_complexity)]
    pub fn list_entries(
        &self,
        filter: &EntryFilter,
        after: Option<&EntryKey>,
        limit: usize,
    ) -> Result<(Vec<(EntryKey, EntryState)>, Option<EntryKey>), StoreError> {
        let iter = match after {
            Some(a) => {
                let mut start = a.to_bytes();
                start.push(0);
                self.t.entries.range(start..)
            }
            None => self.t.entries.iter(),
        };
        let mut out = Vec::new();
        for kv in iter {
            let (k, v) = kv.io()?;
            let key = EntryKey::from_bytes(&k)
                .ok_or_else(|| StoreError::corrupt(trees::ENTRIES, "bad key"))?;
            let state = decode_state(&v)?;
            if filter.matches(&key, &state) {
                if out.len() == limit {
                    let next = out.last().map(|(k, _): &(EntryKey, EntryState)| k.clone());
                    return Ok((out, next));
                }
                out.push((key, state));
            }
        }
        Ok((out, None))
    }

    /// Every record id held for an entry, by version.
    pub fn entry_versions(&self, key: &EntryKey) -> Result<Vec<(u64, Vec<RecordId>)>, StoreError> {
        let Some(state) = self.entry(key)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(u64, Vec<RecordId>)> = Vec::new();
        for (v, id) in state.history {
            match out.last_mut() {
                Some((last, ids)) if *last == v => ids.push(id),
                _ => out.push((v, vec![id])),
            }
        }
        Ok(out)
    }

    /// Every equivocating entry version.
    pub fn disputes(&self) -> Result<Vec<Equivocation>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.disputes.iter() {
            let (k, _) = kv.io()?;
            let (entry, version) = schema::parse_version_key(&k)
                .ok_or_else(|| StoreError::corrupt(trees::DISPUTES, "bad key"))?;
            let records = self
                .entry(&entry)?
                .map(|s| s.at_version(version))
                .unwrap_or_default();
            out.push(Equivocation {
                entry,
                version,
                records,
            });
        }
        Ok(out)
    }

    /// Arrival-log entries after `after_seq`, at most `limit`.
    pub fn log_after(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, RecordId)>, StoreError> {
        let Some(from) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        for kv in chunks_from(&self.t.log, from).io()? {
            let (k, v) = kv.io()?;
            let start = be_u64(&k).ok_or_else(|| StoreError::corrupt(trees::LOG, "bad key"))?;
            if v.len() % 32 != 0 || v.is_empty() {
                return Err(StoreError::corrupt(trees::LOG, "bad value length"));
            }
            for (seq, id) in (start..).zip(v.chunks_exact(32)) {
                if out.len() >= limit {
                    return Ok(out);
                }
                if seq >= from {
                    let id =
                        RecordId::from_slice(id).map_err(|e| StoreError::corrupt(trees::LOG, e))?;
                    out.push((seq, id));
                }
            }
        }
        Ok(out)
    }

    /// The reconciliation set shared with `peer`, as `(issued_at, record_id)`, each id
    /// once, unsorted: held records that pass `held` (given the id and its sync
    /// metadata: this node would send it to `peer`), and records declined for `peer`
    /// or for everyone that pass `declined` (see [`Declined`]).
    pub fn reconcile_items(
        &self,
        peer: &AgencyCode,
        mut held: impl FnMut(&RecordId, &SyncMeta) -> bool,
        mut declined: impl FnMut(&SyncMeta) -> bool,
    ) -> Result<Vec<(u64, RecordId)>, StoreError> {
        let mut out = Vec::new();
        let item = |tree: &'static str, k: &[u8]| -> Result<(u64, RecordId), StoreError> {
            let (t, rest) = k
                .split_at_checked(8)
                .ok_or_else(|| StoreError::corrupt(tree, "bad key"))?;
            let id = rest
                .get(..32)
                .ok_or_else(|| StoreError::corrupt(tree, "bad key"))?;
            Ok((
                be_u64(t).ok_or_else(|| StoreError::corrupt(tree, "bad key"))?,
                RecordId::from_slice(id).map_err(|e| StoreError::corrupt(tree, e))?,
            ))
        };
        for kv in self.t.sync_index.iter() {
            let (k, v) = kv.io()?;
            let meta =
                SyncMeta::decode(&v).map_err(|e| StoreError::corrupt(trees::SYNC_INDEX, e))?;
            let it = item(trees::SYNC_INDEX, &k)?;
            if held(&it.1, &meta) {
                out.push(it);
            }
        }
        let n_held = out.len();
        let mut last: Option<[u8; 40]> = None;
        for kv in self.t.declined.iter() {
            let (k, v) = kv.io()?;
            let (base, only_for) = k
                .split_at_checked(40)
                .ok_or_else(|| StoreError::corrupt(trees::DECLINED, "bad key"))?;
            let agency = only_for
                .strip_suffix(&[schema::KNOWN_MARK])
                .unwrap_or(only_for);
            if !agency.is_empty() && agency != peer.as_str().as_bytes() {
                continue;
            }
            // Declined for everyone and for this peer: once. A refusal for everyone
            // of a record held since is judged as held (by `held`): the peer did not
            // give it to us, so only our rules may list it.
            if last.is_some_and(|l| l[..] == *base)
                || (agency.is_empty() && self.t.sync_index.contains_key(base).io()?)
            {
                continue;
            }
            last = base.try_into().ok();
            let meta = SyncMeta::decode(&v).map_err(|e| StoreError::corrupt(trees::DECLINED, e))?;
            if declined(&meta) {
                out.push(item(trees::DECLINED, base)?);
            }
        }
        // A record both held and sendable and declined (held since, or taken from
        // this peer) counts once.
        if out.len() > n_held {
            out.sort_unstable();
            out.dedup();
        }
        Ok(out)
    }

    /// The records that reached the arrival log after `after_seq` and pass `held`, as
    /// `(issued_at, record_id)`, with the log head they reach: what a reconciliation
    /// set built at `after_seq` under store opening `opening` lacks (see
    /// [`Self::reconcile_items`]). `None` when that set cannot be trusted (another
    /// opening, a head below `after_seq`, an IO failure) or more than `max` records
    /// arrived since (a full build is cheaper then).
    pub fn reconcile_delta(
        &self,
        opening: u64,
        after_seq: u64,
        max: usize,
        mut held: impl FnMut(&RecordId, &SyncMeta) -> bool,
    ) -> Result<Option<Delta>, StoreError> {
        // Built under another opening, or past our head (a reopen dropped records it
        // listed), or while sled refuses writes (what it shows may not survive): the
        // base may list records the store no longer holds.
        if opening != self.opening || self.io_failed() {
            return Ok(None);
        }
        let head = self.head_seq()?;
        if after_seq > head
            || head.saturating_sub(after_seq) > u64::try_from(max).unwrap_or(u64::MAX)
        {
            return Ok(None);
        }
        let mut out = Vec::new();
        for (_, id) in self.log_after(after_seq, max)? {
            let Some(stored) = self.record(&id)? else {
                continue;
            };
            let h = stored.record.header();
            let meta = SyncMeta::stored(&stored);
            if held(&id, &meta) {
                out.push((h.issued_at.as_millis(), id));
            }
        }
        Ok(Some((out, head)))
    }

    /// `(issued_at, record_id)` of every record, in order (for reconciliation).
    pub fn sync_items(&self) -> Result<Vec<(u64, RecordId)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.sync_index.iter() {
            let (k, _) = kv.io()?;
            let (t, id) = k
                .split_at_checked(8)
                .ok_or_else(|| StoreError::corrupt(trees::SYNC_INDEX, "bad key"))?;
            out.push((
                be_u64(t).ok_or_else(|| StoreError::corrupt(trees::SYNC_INDEX, "bad key"))?,
                RecordId::from_slice(id).map_err(|e| StoreError::corrupt(trees::SYNC_INDEX, e))?,
            ));
        }
        Ok(out)
    }

    /// A peer's changes-feed cursor.
    pub fn cursor(&self, peer: &AgencyCode) -> Result<Option<Cursor>, StoreError> {
        self.t
            .cursors
            .get(peer.as_str().as_bytes())
            .io()?
            .map(|v| Cursor::decode(&v).map_err(|e| StoreError::corrupt(trees::CURSORS, e)))
            .transpose()
    }

    /// Sets (or with `None`, clears) a peer's cursor, durably.
    pub fn set_cursor(&self, peer: &AgencyCode, cursor: Option<Cursor>) -> Result<(), StoreError> {
        self.before_write()?;
        match cursor {
            Some(c) => self
                .t
                .cursors
                .insert(peer.as_str().as_bytes(), c.encode())
                .io()?,
            None => self.t.cursors.remove(peer.as_str().as_bytes()).io()?,
        };
        self.write_result(self.db.flush())?;
        Ok(())
    }

    /// Forgets every record declined by a refusal (after a policy reload, so that
    /// newly accepted records flow); notes of what a peer gave us stay, since what
    /// the peer holds does not depend on our rules. Returns how many were forgotten.
    pub fn clear_declined(&self) -> Result<usize, StoreError> {
        self.before_write()?;
        let mut batch = engine::Batch::default();
        let mut n = 0usize;
        for kv in self.t.declined.iter() {
            let (k, _) = kv.io()?;
            if k.len() > 40 && k.last() == Some(&schema::KNOWN_MARK) {
                continue;
            }
            batch.remove(k);
            n += 1;
        }
        self.write_result(self.t.declined.apply_batch(batch))?;
        self.write_result(self.db.flush())?;
        Ok(n)
    }

    /// Import bookkeeping of an entry.
    pub fn local_meta(&self, key: &EntryKey) -> Result<Option<LocalMeta>, StoreError> {
        self.t
            .local
            .get(key.to_bytes())
            .io()?
            .map(|v| LocalMeta::decode(&v).map_err(|e| StoreError::corrupt(trees::LOCAL, e)))
            .transpose()
    }

    /// Every local entry imported from `source_list`.
    pub fn local_entries_of(
        &self,
        source_list: &str,
    ) -> Result<Vec<(EntryKey, LocalMeta)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.t.local.iter() {
            let (k, v) = kv.io()?;
            let m = LocalMeta::decode(&v).map_err(|e| StoreError::corrupt(trees::LOCAL, e))?;
            if m.source_list == source_list {
                let key = EntryKey::from_bytes(&k)
                    .ok_or_else(|| StoreError::corrupt(trees::LOCAL, "bad key"))?;
                out.push((key, m));
            }
        }
        Ok(out)
    }

    /// Store-wide counts.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            records: u64_of(self.t.meta.get(COUNT_RECORDS).io()?),
            entries: u64_of(self.t.meta.get(COUNT_ENTRIES).io()?),
            withdrawn: u64_of(self.t.meta.get(COUNT_WITHDRAWN).io()?),
            disputed_versions: self.t.disputes.len().io()?,
            head_seq: self.head_seq()?,
            audit_events: self.audit_size()?,
            audit_cosignatures: self.t.audit_cosignatures.len().io()?,
        })
    }

    /// A metadata value.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.t.meta.get(key).io()?.map(|v| v.to_vec()))
    }

    /// Sets a metadata value, durably.
    pub fn meta_set(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.before_write()?;
        self.write_result(self.t.meta.insert(key, value))?;
        self.write_result(self.db.flush())?;
        Ok(())
    }

    /// Removes metadata values, durably, with one flush.
    pub fn meta_remove_all(&self, keys: &[Vec<u8>]) -> Result<(), StoreError> {
        self.before_write()?;
        let mut batch = engine::Batch::default();
        for k in keys {
            batch.remove(k.as_slice());
        }
        self.write_result(self.t.meta.apply_batch(batch))?;
        self.write_result(self.db.flush())?;
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().io()
    }
}

/// The audit events of one ingest: the batch's own (rejections), one per record
/// (created, or accepted with its outcome), and one per equivocation found.
fn audit_events_of(batch: &IngestBatch, report: &IngestReport, now: Timestamp) -> Vec<Event> {
    let at = now.as_millis();
    let mut out = Vec::with_capacity(batch.audit.len() + batch.items.len());
    out.extend(batch.audit.iter().cloned());
    for (item, outcome) in batch.items.iter().zip(&report.outcomes) {
        let record_id = item.record.id();
        let kind = match (&item.source, outcome) {
            (_, Outcome::EquivocationExcess) => EventKind::Rejected {
                record_id: Some(record_id),
                from: match &item.source {
                    Source::Local => item.record.header().origin.clone(),
                    Source::Peer { agency, .. } => agency.clone(),
                },
                reason: EQUIVOCATION_EXCESS.into(),
            },
            (Source::Local, Outcome::Duplicate) => continue,
            (Source::Local, _) => EventKind::Created { record_id },
            (Source::Peer { agency, hops }, _) => EventKind::Accepted {
                record_id,
                from: agency.clone(),
                hops: *hops,
                outcome: match outcome {
                    Outcome::Merged { .. } => "merged",
                    Outcome::Duplicate => "duplicate",
                    Outcome::Stored | Outcome::EquivocationExcess => "stored",
                }
                .into(),
            },
        };
        out.push(Event::new(at, kind));
    }
    for e in &report.equivocations {
        out.push(Event::new(
            at,
            EventKind::Equivocation {
                origin: e.entry.origin.clone(),
                version: e.version,
                records: e.records.clone(),
            },
        ));
    }
    out
}

pub(crate) fn decode_state(v: &[u8]) -> Result<EntryState, StoreError> {
    EntryState::decode(v).map_err(|e: WireError| StoreError::corrupt(trees::ENTRIES, e))
}

#[cfg(test)]
mod tests;
