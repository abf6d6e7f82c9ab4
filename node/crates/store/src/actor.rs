//! The store actor: one thread owns the [`Store`] (whichever engine it runs on);
//! everyone else holds a cheap, cloneable [`StoreHandle`] and sends it closures to run.
//!
//! Engine calls block (and `flush` waits for fsync), so they never run on the async
//! executor. Commands queue on a bounded channel, which also gives ingest natural
//! back-pressure.

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use wlnode_crypto::model::{AgencyCode, EntryId, RecordId};
use wlnode_crypto::time::Timestamp;

use super::{ClosedStore, Counts, EntryFilter, EntryKey, IngestBatch, Store, StoreError};
use wlnode_types::{Cursor, EntryState, IngestReport, StoredRecord};

type Call = Box<dyn FnOnce(&Store) + Send>;

/// What the actor is asked to do: run a closure, or ingest a batch. Ingests waiting in
/// the queue together are committed as one group ([`Store::ingest_group`]): each batch
/// is its own atomic transaction, and one fsync makes the whole group durable before
/// any of them is acknowledged.
enum Job {
    Call(Call),
    Ingest(
        Box<IngestBatch>,
        oneshot::Sender<Result<IngestReport, StoreError>>,
    ),
}

/// Most records in one group commit: bounds how long the first batch of a group waits
/// for its acknowledgement behind the others.
const GROUP_MAX_RECORDS: usize = 20_000;

/// How often a store whose disk failed is checked for recovery (at the next job).
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Reopen the engine after about this many writes (a record and its audit event count two;
/// see [`Store::writes_since_open`]), so that an open, even after a crash, replays at
/// most about this many plus one batch. Measured with a million records: the worst
/// open after a crash 1.2–1.3 s, each reopen 0.4–1.6 s, 7 % of fill time in all
/// (BENCHMARKS.md).
const CHECKPOINT_AFTER_WRITES: u64 = 200_000;

/// On a clean stop, reopen first if at least this many writes would be replayed, so
/// that the next start is fast. Below it the replay is cheaper than the reopen.
const CHECKPOINT_ON_STOP_AFTER_WRITES: u64 = 40_000;

/// Whether the store has taken enough writes since it was opened to be reopened.
pub fn checkpoint_due(s: &Store) -> bool {
    due(s, CHECKPOINT_AFTER_WRITES)
}

fn due(s: &Store, after: u64) -> bool {
    !s.io_failed() && s.writes_since_open() >= after
}

/// What the actor holds. The data dir stays locked in both states.
#[allow(clippy::large_enum_variant)] // one value, owned by the actor thread
enum Slot {
    Open(Store),
    /// The engine is closed (a reopen failed); the next job retries.
    Closed(Box<ClosedStore>),
}

impl Slot {
    fn needs_recovery(&self) -> bool {
        match self {
            Self::Open(s) => s.io_failed(),
            Self::Closed(_) => true,
        }
    }
}

/// After the engine reported an IO error the store refuses every later write until it
/// is opened again, even once the disk works: so, when a probe write to the data dir
/// succeeds, close the store and open it again. The engine then recovers from what
/// reached the disk,
/// which also drops a batch that was committed in memory but whose flush failed (the
/// writer got an error for it, so it must not stay visible).
/// `probe_fails`: the tests' switch that makes the probe write fail
/// ([`crate::faults::Faults::fail_probes`]).
fn recover(dir: &Path, slot: Slot, probe_fails: bool) -> Slot {
    if probe_fails || !disk_writable(dir) {
        return slot;
    }
    let closed = match slot {
        Slot::Open(s) => s.close(),
        Slot::Closed(c) => *c,
    };
    // No wait for the engine's lock here: every queued job waits on this attempt, and a
    // failed one is retried at a later job anyway.
    match closed.open(Duration::ZERO) {
        Ok(s) => {
            tracing::warn!(dir = %dir.display(), "store reopened after a disk error or a failed reopen");
            // The reopen may have dropped a batch of ours that peers already hold:
            // hold local writes to existing entries until we reconciled (see `hold`).
            if let Err(e) = s.hold_local_writes(Timestamp::now().as_millis()) {
                tracing::error!(error = %e, "cannot hold local writes after the reopen");
            }
            Slot::Open(s)
        }
        Err((c, e)) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot reopen the store; retrying at a later job");
            Slot::Closed(c)
        }
    }
}

/// Reopens a store that has taken many writes since it was opened (see
/// [`CHECKPOINT_AFTER_WRITES`]). If that fails, the store is left closed (its dir
/// still locked) and [`recover`] retries at the next job.
fn checkpoint(dir: &Path, s: Store) -> Slot {
    let writes = s.writes_since_open();
    let t = Instant::now();
    match s.reopen() {
        Ok(s) => {
            tracing::info!(
                dir = %dir.display(),
                writes,
                seconds = t.elapsed().as_secs_f64(),
                "store reopened to checkpoint the engine's recovery state"
            );
            Slot::Open(s)
        }
        Err((c, e)) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot reopen the store after a checkpoint; retrying");
            Slot::Closed(c)
        }
    }
}

/// Whether a small file can be written and synced in `dir` now.
fn disk_writable(dir: &Path) -> bool {
    use std::io::Write;
    let probe = dir.join(".write-probe");
    let ok = std::fs::File::create(&probe)
        .and_then(|mut f| {
            f.write_all(&[0u8; 4096])?;
            f.sync_all()
        })
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// A cheap handle to the store actor.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    tx: mpsc::Sender<Job>,
    epoch: [u8; 16],
    #[cfg(any(test, feature = "fault-injection"))]
    faults: std::sync::Arc<super::faults::Faults>,
}

/// A batch in the actor's queue ([`StoreHandle::queue_ingest`]). Dropping it does not
/// take the batch back: it is applied all the same, only its outcome is not heard.
#[derive(Debug)]
pub struct QueuedIngest(oneshot::Receiver<Result<IngestReport, StoreError>>);

impl QueuedIngest {
    /// Waits until the batch is durable (its group's flush returned), or failed.
    pub async fn durable(self) -> Result<IngestReport, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// The running actor thread; dropping every handle stops it.
#[derive(Debug)]
pub struct StoreActor {
    thread: Option<JoinHandle<()>>,
}

impl StoreActor {
    /// Waits for the actor thread to finish (after all handles are dropped).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl StoreHandle {
    /// Opens the store in `dir` and starts its actor thread.
    pub fn open(dir: &Path) -> Result<(Self, StoreActor), StoreError> {
        Self::open_with(dir, None)
    }

    /// [`Self::open`] on engine `engine` ([`Store::open_with`]); `None`: the engine
    /// the data dir was written by, or the default one ([`Store::open`]).
    pub fn open_with(
        dir: &Path,
        engine: Option<crate::EngineKind>,
    ) -> Result<(Self, StoreActor), StoreError> {
        Self::open_checkpointing(
            dir,
            engine,
            CHECKPOINT_AFTER_WRITES,
            CHECKPOINT_ON_STOP_AFTER_WRITES,
        )
    }

    /// [`Self::open`] with the reopen thresholds given (tests use small ones).
    pub(crate) fn open_checkpointing(
        dir: &Path,
        engine: Option<crate::EngineKind>,
        after_writes: u64,
        on_stop_after_writes: u64,
    ) -> Result<(Self, StoreActor), StoreError> {
        let store = match engine {
            Some(kind) => Store::open_with(dir, kind)?,
            None => Store::open(dir)?,
        };
        let epoch = store.epoch();
        #[cfg(any(test, feature = "fault-injection"))]
        let faults = store.faults();
        #[cfg(any(test, feature = "fault-injection"))]
        let probe_faults = faults.clone();
        let (tx, mut rx) = mpsc::channel::<Job>(256);
        let path = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let mut slot = Slot::Open(store);
                let mut last_try: Option<Instant> = None;
                // A job taken from the queue while gathering a group, run next.
                let mut next: Option<Job> = None;
                while let Some(job) = next.take().or_else(|| rx.blocking_recv()) {
                    if slot.needs_recovery() && last_try.is_none_or(|t| t.elapsed() >= REOPEN_EVERY)
                    {
                        #[cfg(any(test, feature = "fault-injection"))]
                        let probe_fails = probe_faults.probe_fails();
                        #[cfg(not(any(test, feature = "fault-injection")))]
                        let probe_fails = false;
                        slot = recover(&path, slot, probe_fails);
                        last_try = Some(Instant::now());
                    }
                    match (&slot, job) {
                        (Slot::Open(s), Job::Call(f)) => f(s),
                        (Slot::Open(s), Job::Ingest(first, reply)) => {
                            // Every ingest already queued behind this one joins its group
                            // (in queue order); the first other job ends the group and
                            // runs after it, so the order of the queue is kept.
                            let mut records = first.items.len();
                            let mut batches = vec![*first];
                            let mut replies = vec![reply];
                            while records < GROUP_MAX_RECORDS {
                                match rx.try_recv() {
                                    Ok(Job::Ingest(b, r)) => {
                                        records += b.items.len();
                                        batches.push(*b);
                                        replies.push(r);
                                    }
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            let results = s.ingest_group(&batches, Timestamp::now());
                            for (r, reply) in results.into_iter().zip(replies) {
                                let _ = reply.send(r);
                            }
                        }
                        // Dropping the job drops its reply: the caller gets `Closed`.
                        (Slot::Closed(_), job) => drop(job),
                    }
                    slot = match slot {
                        Slot::Open(s) if due(&s, after_writes) => checkpoint(&path, s),
                        other => other,
                    };
                }
                if let Slot::Open(s) = slot {
                    let s = if due(&s, on_stop_after_writes) {
                        match checkpoint(&path, s) {
                            Slot::Open(s) => s,
                            Slot::Closed(_) => return,
                        }
                    } else {
                        s
                    };
                    let _ = s.flush();
                }
            })
            .map_err(|e| StoreError::Open {
                path: dir.to_owned(),
                reason: format!("cannot start store thread: {e}"),
            })?;
        Ok((
            Self {
                tx,
                epoch,
                #[cfg(any(test, feature = "fault-injection"))]
                faults,
            },
            StoreActor {
                thread: Some(thread),
            },
        ))
    }

    /// The store's fault-injection switches (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn faults(&self) -> std::sync::Arc<super::faults::Faults> {
        self.faults.clone()
    }

    /// The store's log epoch.
    pub fn epoch(&self) -> [u8; 16] {
        self.epoch
    }

    /// Runs `f` on the store thread and returns its result.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job::Call(Box::new(move |s| {
            let _ = reply.send(f(s));
        }));
        self.tx.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Self::call`] for a job with an error type of its own, into which the store's
    /// errors convert (so that, say, a refused roster is not disguised as a store error).
    pub async fn try_call<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job::Call(Box::new(move |s| {
            let _ = reply.send(f(s));
        }));
        self.tx
            .send(job)
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Applies a batch atomically and durably. Batches queued together share one
    /// durable commit (see [`Job`]); the reply comes after it.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<IngestReport, StoreError> {
        self.queue_ingest(batch).await?.durable().await
    }

    /// The first half of [`Self::ingest`]: returns once the batch is in the actor's
    /// queue, before it is applied. Jobs run in queue order, so any job queued after
    /// this returns (a read, another batch) runs after this batch was applied and its
    /// group's flush finished, whether that succeeded or failed. The writer of own
    /// entries uses this to let the next import be judged while this one commits.
    pub async fn queue_ingest(&self, batch: IngestBatch) -> Result<QueuedIngest, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Ingest(Box::new(batch), reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(QueuedIngest(rx))
    }

    /// One record.
    pub async fn record(&self, id: RecordId) -> Result<Option<StoredRecord>, StoreError> {
        self.call(move |s| s.record(&id)).await
    }

    /// One entry's state.
    pub async fn entry(&self, key: EntryKey) -> Result<Option<EntryState>, StoreError> {
        self.call(move |s| s.entry(&key)).await
    }

    /// Entries with this id.
    pub async fn entries_by_id(
        &self,
        id: EntryId,
    ) -> Result<Vec<(EntryKey, EntryState)>, StoreError> {
        self.call(move |s| s.entries_by_id(&id)).await
    }

    /// A page of entries.
    #[allow(clippy::type_complexity)]
    pub async fn list_entries(
        &self,
        filter: EntryFilter,
        after: Option<EntryKey>,
        limit: usize,
    ) -> Result<(Vec<(EntryKey, EntryState)>, Option<EntryKey>), StoreError> {
        self.call(move |s| s.list_entries(&filter, after.as_ref(), limit))
            .await
    }

    /// Store-wide counts.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        self.call(|s| s.counts()).await
    }

    /// A peer's cursor.
    pub async fn cursor(&self, peer: AgencyCode) -> Result<Option<Cursor>, StoreError> {
        self.call(move |s| s.cursor(&peer)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handle_round_trip_and_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let (h, actor) = StoreHandle::open(dir.path()).unwrap();
        assert_eq!(h.counts().await.unwrap(), Counts::default());
        assert_eq!(h.epoch(), h.call(|s| Ok(s.epoch())).await.unwrap());
        drop(h);
        actor.join();
        // The lock is released once the actor stops.
        let (h2, _a2) = StoreHandle::open(dir.path()).unwrap();
        assert_eq!(h2.counts().await.unwrap().records, 0);
    }

    /// Recovery after a disk error (or a failed checkpoint) keeps what the node set in
    /// memory and the directory lock; before, it reopened with default audit settings
    /// and checkpoints were no longer signed.
    #[test]
    fn recovery_keeps_the_audit_signer_and_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let key = std::sync::Arc::new(wlnode_crypto::SecretKey::generate().unwrap());
        s.set_audit_settings(crate::audit::AuditSettings {
            signer: Some((AgencyCode::new("DE-BAFA").unwrap(), key)),
            every_events: 7,
            ..crate::audit::AuditSettings::default()
        });
        let epoch = s.epoch();
        let kept = |s: &Store| {
            let a = s.audit_settings();
            assert!(a.signer.is_some(), "signer kept");
            assert_eq!(a.every_events, 7);
            assert_eq!(s.epoch(), epoch);
            assert!(matches!(
                Store::open(dir.path()),
                Err(StoreError::Locked { .. })
            ));
        };
        // As the actor does: retry (at later jobs) while sled's own lock is still
        // held by the closed instance's background jobs.
        let recovered = |mut slot: Slot| {
            let start = Instant::now();
            loop {
                slot = recover(dir.path(), slot, false);
                match slot {
                    Slot::Open(s) => return s,
                    Slot::Closed(_) => {
                        assert!(start.elapsed() < Duration::from_secs(30), "never reopened");
                        std::thread::sleep(REOPEN_EVERY);
                    }
                }
            }
        };
        // From an open store whose disk failed...
        let s = recovered(Slot::Open(s));
        kept(&s);
        // ...and from one left closed by a failed reopen, whose dir stays locked.
        let closed = Slot::Closed(Box::new(s.close()));
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        kept(&recovered(closed));
    }
}
