//! fjall 2 behind [`Kv`]: an LSM tree (one partition per tree) with a write-ahead
//! journal. A batch is one fjall write batch, atomic across partitions (journalled as
//! one unit, so recovery replays all of it or none); `flush` fsyncs the journal
//! (`PersistMode::SyncAll`) before the store acknowledges anything. fjall's own
//! background fsync is off: durability is exactly the store's flushes.
//!
//! A failed flush closes the keyspace at once and opens it again from what reached
//! the disk. fjall 2.11 ignores a failed journal write inside `Batch::commit` (the
//! batch stays in the journal's buffer and in the memtables), reports the failed
//! fsync only as `Poisoned`, and its `Drop` writes the buffer out again: a batch the
//! store refused (its writer got an error) became durable as soon as the disk had
//! room, found by the full-disk test. Dropping the keyspace while the disk still fails
//! loses the buffer, as it must; reads go on from the reopened keyspace, and the store
//! refuses writes until its own recovery reopens it ([`crate::Store::io_failed`]).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::{Kv, KvIter, Op, TreeId};
use crate::EngineError;

/// An open keyspace and its partitions, by [`TreeId`].
struct State {
    ks: Keyspace,
    trees: Vec<(String, PartitionHandle)>,
}

pub(crate) struct FjallKv {
    path: PathBuf,
    tuning: Tuning,
    /// `None` after a failed flush whose reopen failed too.
    state: RwLock<Option<State>>,
    /// The first IO error seen. After a failed journal write fjall answers every later
    /// write with `Poisoned` only; the store reports the cause instead (found by the
    /// full-disk test: the status said "Poisoned", not "No space left").
    first_io: Mutex<Option<(std::io::ErrorKind, String)>>,
}

/// Characters fjall allows in a partition name (it panics on others).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.#$".contains(c))
}

/// fjall's buffer and journal sizes: the store's are [`Tuning::default`]; tests use
/// small ones so that they cross every limit many times in little time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Memtables of every partition together (fjall's `max_write_buffer_size`):
    /// past it, a write waits until flushes bring it down.
    pub(crate) write_buffer: u64,
    /// Sealed journals kept before writes wait (`max_journaling_size`).
    pub(crate) journal: u64,
    /// One partition's memtable before it is sealed and flushed.
    pub(crate) memtable: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            write_buffer: 64 * 1024 * 1024,
            journal: 512 * 1024 * 1024,
            memtable: 16 * 1024 * 1024,
        }
    }
}

/// Sealed memtables fjall's flusher writes out each time it is woken (its
/// `flush_workers`; each runs on a thread of its own).
///
/// fjall 2.11 wakes the flusher once per memtable it seals, but after opening only once
/// per partition holding recovered memtables, while a reopen recovers one sealed
/// memtable per partition *and per sealed journal*. Its default here is one task per
/// wake-up (cores − 1 on two cores), so the tasks recovered beyond the first of each
/// partition never left the queue: each reopen added some, they held the write buffer
/// and pinned their journals, and once they filled the write buffer the writer slept
/// in `check_write_buffer_size` for good, with the flusher idle (the stall at about
/// 300k records of `wlnode bench store --records 1000000 --engine fjall`). With several
/// tasks per wake-up every wake-up drains more than it adds, so no backlog survives.
const FLUSH_TASKS_PER_WAKE: usize = 8;

/// How long [`Kv::settle`] waits for the flusher before a clean close.
const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn open_keyspace(path: &Path, tuning: Tuning) -> fjall::Result<Keyspace> {
    Config::new(path)
        .flush_workers(FLUSH_TASKS_PER_WAKE)
        .manual_journal_persist(true)
        .fsync_ms(None)
        .cache_size(64 * 1024 * 1024)
        .max_write_buffer_size(tuning.write_buffer)
        .max_journaling_size(tuning.journal)
        .open()
}

fn partition_options(tuning: Tuning) -> PartitionCreateOptions {
    PartitionCreateOptions::default().max_memtable_size(tuning.memtable)
}

fn plain(e: fjall::Error) -> EngineError {
    match e {
        fjall::Error::Io(io) => EngineError::Io(io),
        other => EngineError::Engine(other.to_string()),
    }
}

impl FjallKv {
    /// Opens fjall at `path`, retrying for up to `lock_wait` while a keyspace just
    /// dropped in this process still holds its files (the caller holds the data dir's
    /// lock, so no other process can).
    pub(crate) fn open(path: &Path, lock_wait: std::time::Duration) -> Result<Self, String> {
        Self::open_tuned(path, lock_wait, Tuning::default())
    }

    /// [`Self::open`] with the sizes given.
    pub(crate) fn open_tuned(
        path: &Path,
        lock_wait: std::time::Duration,
        tuning: Tuning,
    ) -> Result<Self, String> {
        let started = std::time::Instant::now();
        loop {
            match open_keyspace(path, tuning) {
                Ok(ks) => {
                    return Ok(Self {
                        path: path.to_owned(),
                        tuning,
                        state: RwLock::new(Some(State {
                            ks,
                            trees: Vec::new(),
                        })),
                        first_io: Mutex::new(None),
                    });
                }
                Err(e) if started.elapsed() < lock_wait && is_locked(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<State>> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<State>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The error the store reports for fjall's `e` (see [`Self::first_io`]).
    fn err(&self, e: fjall::Error) -> EngineError {
        let mut first = self
            .first_io
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match e {
            fjall::Error::Io(io) => {
                first.get_or_insert_with(|| (io.kind(), io.to_string()));
                EngineError::Io(io)
            }
            fjall::Error::Poisoned => match first.as_ref() {
                Some((kind, msg)) => EngineError::Io(std::io::Error::new(*kind, msg.clone())),
                None => EngineError::Engine(fjall::Error::Poisoned.to_string()),
            },
            other => EngineError::Engine(other.to_string()),
        }
    }

    fn closed() -> EngineError {
        EngineError::Engine("fjall is closed after a failed write".into())
    }

    fn tree(&self, id: TreeId) -> Result<PartitionHandle, EngineError> {
        self.read()
            .as_ref()
            .ok_or_else(Self::closed)?
            .trees
            .get(id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| EngineError::Engine(format!("no tree {id}")))
    }

    /// After a failed flush: drops the keyspace now, while the disk still fails (so
    /// its buffered journal tail is lost, see the module header), and opens it again
    /// with the same trees in the same order.
    fn drop_and_reopen(&self) {
        let mut g = self.write();
        let names: Vec<String> = g
            .as_ref()
            .map(|s| s.trees.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        drop(g.take());
        let reopened = open_keyspace(&self.path, self.tuning).and_then(|ks| {
            let trees = names
                .into_iter()
                .map(|n| {
                    let p = ks.open_partition(&n, partition_options(self.tuning))?;
                    Ok((n, p))
                })
                .collect::<fjall::Result<Vec<_>>>()?;
            Ok(State { ks, trees })
        });
        match reopened {
            Ok(s) => *g = Some(s),
            Err(e) => {
                tracing::error!(error = %e, "fjall does not reopen after a failed write; the store recovers later");
            }
        }
    }
}

#[cfg(test)]
impl FjallKv {
    /// fjall's write buffer bytes, journal count and journal bytes (tests).
    fn stats(&self) -> (u64, usize, u64) {
        self.read().as_ref().map_or((0, 0, 0), |s| {
            (
                s.ks.write_buffer_size(),
                s.ks.journal_count(),
                s.ks.journal_disk_space(),
            )
        })
    }
}

fn is_locked(e: &fjall::Error) -> bool {
    matches!(e, fjall::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
        || e.to_string().contains("lock")
}

impl Kv for FjallKv {
    fn open_tree(&self, name: &str) -> Result<TreeId, EngineError> {
        if !valid_name(name) {
            return Err(EngineError::Engine(format!(
                "tree name {name:?} is not a valid fjall partition name"
            )));
        }
        let mut g = self.write();
        let s = g.as_mut().ok_or_else(Self::closed)?;
        if let Some(i) = s.trees.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        let p =
            s.ks.open_partition(name, partition_options(self.tuning))
                .map_err(plain)?;
        s.trees.push((name.to_owned(), p));
        Ok(s.trees.len() - 1)
    }

    fn tree_names(&self) -> Vec<String> {
        self.read()
            .as_ref()
            .map(|s| {
                s.ks.list_partitions()
                    .into_iter()
                    .map(|n| n.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(plain)?
            .map(Bytes::from_owner))
    }

    fn range(&self, tree: TreeId, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> KvIter {
        match self.tree(tree) {
            Ok(t) => Box::new(t.range::<Vec<u8>, _>((lo, hi)).map(|kv| {
                let (k, v) = kv.map_err(plain)?;
                Ok((Bytes::from_owner(k), Bytes::from_owner(v)))
            })),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let g = self.read();
        let s = g.as_ref().ok_or_else(Self::closed)?;
        let mut b = s.ks.batch();
        for (t, k, v) in ops {
            let (_, p) = s
                .trees
                .get(t)
                .ok_or_else(|| EngineError::Engine(format!("no tree {t}")))?;
            match v {
                Some(v) => b.insert(p, k, v),
                None => b.remove(p, k),
            }
        }
        let r = b.commit();
        drop(g);
        r.map_err(|e| self.err(e))
    }

    fn flush(&self) -> Result<(), EngineError> {
        let r = match self.read().as_ref() {
            Some(s) => s.ks.persist(PersistMode::SyncAll),
            None => return Err(Self::closed()),
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                // fjall logs why its journal write failed and returns only `Poisoned`:
                // a probe write next to the journal finds the cause (a full or
                // read-only disk) for the status and the operator.
                {
                    let mut first = self
                        .first_io
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if first.is_none() {
                        let (kind, why) = match (&e, probe(&self.path)) {
                            (fjall::Error::Io(io), _) => (io.kind(), io.to_string()),
                            (_, Err(p)) => (p.kind(), p.to_string()),
                            (_, Ok(())) => (std::io::ErrorKind::Other, e.to_string()),
                        };
                        *first = Some((kind, format!("fjall could not write its journal: {why}")));
                    }
                }
                let out = self.err(fjall::Error::Poisoned);
                self.drop_and_reopen();
                Err(out)
            }
        }
    }

    /// Seals every partition's memtable and waits (at most [`SETTLE_WAIT`]) until the
    /// flusher wrote them all out: fjall's journals are then released, and the next
    /// open replays nothing, instead of every write since the last flush of the least
    /// written partition. Past the wait the close goes on; the open replays the rest.
    fn settle(&self) {
        let g = self.read();
        let Some(s) = g.as_ref() else { return };
        for (name, p) in &s.trees {
            // `rotate_memtable` is public but hidden in fjall 2.11 (pinned in
            // Cargo.lock): the one way to ask for a flush of a partition.
            if let Err(e) = p.rotate_memtable() {
                tracing::warn!(tree = %name, error = %e, "fjall could not seal a memtable before closing");
                return;
            }
        }
        let started = std::time::Instant::now();
        while s.ks.write_buffer_size() > 0 && started.elapsed() < SETTLE_WAIT {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn size_on_disk(&self) -> Result<u64, EngineError> {
        Ok(self.read().as_ref().map_or(0, |s| s.ks.disk_space()))
    }
}

/// Writes and syncs a small file in `dir`, then removes it.
fn probe(dir: &Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let p = dir.join(".write-probe");
    let r = std::fs::File::create(&p).and_then(|mut f| {
        f.write_all(&[0u8; 64 * 1024])?;
        f.sync_all()
    });
    let _ = std::fs::remove_file(&p);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node's ingest at small sizes: every batch writes the store's trees with
    /// their own shapes (`meta` a few keys rewritten each time, `records` about 700 B a
    /// record, the log one chunk, the audit trees an event and two nodes a record),
    /// one flush a batch, and the store's periodic reopen (a checkpoint) every so many
    /// batches, until far more than the write buffer and the journal limit were
    /// written. The write buffer is 1 MiB and a memtable 256 KiB (a quarter of it, as
    /// with fjall's defaults of 64 and 16 MiB). Odd rounds end as a crash does (the
    /// keyspace dropped with its memtables unflushed), even ones with [`Kv::settle`],
    /// after which the open replays nothing. A stall shows as a writer that never
    /// returns; the watchdog turns it into a failure. Before `FLUSH_TASKS_PER_WAKE`
    /// the writer stalled for good in the second round.
    #[test]
    fn writing_far_past_the_write_buffer_across_reopens_never_stalls() {
        // (tree, keys per batch, value bytes)
        const TREES: [(&str, usize, usize); 8] = [
            ("meta", 4, 8),
            ("records", 50, 700),
            ("entries", 50, 150),
            ("log", 1, 1600),
            ("sync_index", 50, 40),
            ("local", 50, 20),
            ("audit_events", 50, 200),
            ("audit_nodes", 100, 40),
        ];
        const REOPENS: usize = 12;
        const BATCHES: usize = 100;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fjall");
        let tuning = Tuning {
            write_buffer: 1024 * 1024,
            journal: Tuning::default().journal,
            memtable: 256 * 1024,
        };
        let (done, finished) = std::sync::mpsc::channel();
        let writer_path = path.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            for round in 0..REOPENS {
                let kv =
                    FjallKv::open_tuned(&writer_path, std::time::Duration::from_secs(5), tuning)
                        .expect("open");
                if round % 2 == 1 {
                    // Opened after a settled close: nothing to replay.
                    assert_eq!(kv.stats().0, 0, "round {round}: memtables recovered");
                }
                let ids: Vec<TreeId> = TREES
                    .iter()
                    .map(|(t, _, _)| kv.open_tree(t).expect("tree"))
                    .collect();
                for b in 0..BATCHES {
                    let mut ops: Vec<Op> = Vec::new();
                    for (&id, &(name, keys, len)) in ids.iter().zip(&TREES) {
                        for k in 0..keys {
                            let key = if name == "meta" {
                                format!("m{k}").into_bytes()
                            } else {
                                format!("{round:03}-{b:04}-{k:03}").into_bytes()
                            };
                            ops.push((id, key, Some(vec![0x5a; len])));
                        }
                    }
                    kv.apply(ops).expect("apply");
                    kv.flush().expect("flush");
                    n += 1;
                }
                if round % 2 == 0 {
                    kv.settle();
                }
            }
            let _ = done.send(n);
        });
        // Generous: the whole run takes seconds; a stalled writer never answers.
        let batches = finished
            .recv_timeout(std::time::Duration::from_secs(300))
            .expect("fjall's writer stalled (no answer within 5 minutes)");
        assert_eq!(batches, (REOPENS * BATCHES) as u64);
        let kv =
            FjallKv::open_tuned(&path, std::time::Duration::from_secs(5), tuning).expect("open");
        for (t, keys, _) in TREES {
            let id = kv.open_tree(t).expect("tree");
            let held = kv.range(id, Bound::Unbounded, Bound::Unbounded).count();
            let want = if t == "meta" {
                keys
            } else {
                REOPENS * BATCHES * keys
            };
            assert_eq!(held, want, "tree {t}");
        }
    }
}
