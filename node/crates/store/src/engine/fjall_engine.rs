//! fjall 2 behind [`Kv`]: an LSM tree (one partition per tree) with a write-ahead
//! journal. A batch is one fjall write batch, atomic across partitions (journalled as
//! one unit, so recovery replays all of it or none); `flush` fsyncs the journal
//! (`PersistMode::SyncAll`) before the store acknowledges anything. fjall's own
//! background fsync is off: durability is exactly the store's flushes.

use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;

use bytes::Bytes;
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use super::{Kv, KvIter, Op, TreeId};
use crate::EngineError;

impl EngineError {
    pub(crate) fn of_fjall(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Io(io) => Self::Io(io),
            other => Self::Engine(other.to_string()),
        }
    }
}

pub(crate) struct FjallKv {
    ks: Keyspace,
    trees: RwLock<Vec<(String, PartitionHandle)>>,
}

/// Characters fjall allows in a partition name (it panics on others).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.#$".contains(c))
}

impl FjallKv {
    /// Opens fjall at `path`. fjall locks its folder too; a keyspace just dropped in
    /// this process may hold it for a moment while its background threads stop, so the
    /// open is retried for up to `lock_wait` (the caller holds the data dir's lock).
    pub(crate) fn open(path: &Path, lock_wait: std::time::Duration) -> Result<Self, String> {
        let started = std::time::Instant::now();
        loop {
            match Config::new(path)
                .manual_journal_persist(true)
                .fsync_ms(None)
                .cache_size(64 * 1024 * 1024)
                .open()
            {
                Ok(ks) => {
                    return Ok(Self {
                        ks,
                        trees: RwLock::new(Vec::new()),
                    });
                }
                Err(e) if started.elapsed() < lock_wait && is_locked(&e) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn tree(&self, id: TreeId) -> Result<PartitionHandle, EngineError> {
        let g = self
            .trees
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get(id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| EngineError::Engine(format!("no tree {id}")))
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
        let mut g = self
            .trees
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = g.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        let p = self
            .ks
            .open_partition(name, PartitionCreateOptions::default())
            .map_err(EngineError::of_fjall)?;
        g.push((name.to_owned(), p));
        Ok(g.len() - 1)
    }

    fn tree_names(&self) -> Vec<String> {
        self.ks
            .list_partitions()
            .into_iter()
            .map(|n| n.to_string())
            .collect()
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(EngineError::of_fjall)?
            .map(Bytes::from_owner))
    }

    fn range(&self, tree: TreeId, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> KvIter {
        match self.tree(tree) {
            Ok(t) => Box::new(t.range::<Vec<u8>, _>((lo, hi)).map(|kv| {
                let (k, v) = kv.map_err(EngineError::of_fjall)?;
                Ok((Bytes::from_owner(k), Bytes::from_owner(v)))
            })),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let mut b = self.ks.batch();
        let trees = self
            .trees
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (t, k, v) in ops {
            let (_, p) = trees
                .get(t)
                .ok_or_else(|| EngineError::Engine(format!("no tree {t}")))?;
            match v {
                Some(v) => b.insert(p, k, v),
                None => b.remove(p, k),
            }
        }
        drop(trees);
        b.commit().map_err(EngineError::of_fjall)
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.ks
            .persist(PersistMode::SyncAll)
            .map_err(EngineError::of_fjall)
    }

    fn size_on_disk(&self) -> Result<u64, EngineError> {
        Ok(self.ks.disk_space())
    }
}
