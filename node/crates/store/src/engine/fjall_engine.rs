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

fn open_keyspace(path: &Path) -> fjall::Result<Keyspace> {
    Config::new(path)
        .manual_journal_persist(true)
        .fsync_ms(None)
        .cache_size(64 * 1024 * 1024)
        .max_journaling_size(128 * 1024 * 1024)
        .open()
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
        let started = std::time::Instant::now();
        loop {
            match open_keyspace(path) {
                Ok(ks) => {
                    return Ok(Self {
                        path: path.to_owned(),
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
        let reopened = open_keyspace(&self.path).and_then(|ks| {
            let trees = names
                .into_iter()
                .map(|n| {
                    let p = ks.open_partition(&n, PartitionCreateOptions::default())?;
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
            s.ks.open_partition(name, PartitionCreateOptions::default())
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
