//! sled 0.34 behind [`Kv`]: the engine the store was first written for. A write that
//! touches one tree is a sled batch; one that touches several is a sled transaction
//! over those trees (writes only: the batch's reads were answered before, see
//! [`super::Tx`]). `flush` is sled's own, which fsyncs.

use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;

use bytes::Bytes;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{Kv, KvIter, Op, TreeId};
use crate::EngineError;

impl EngineError {
    pub(crate) fn of_sled(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => Self::Io(io),
            other => Self::Engine(other.to_string()),
        }
    }
}

pub(crate) struct SledKv {
    db: sled::Db,
    trees: RwLock<Vec<(String, sled::Tree)>>,
}

/// sled's own default tree, which the store does not use.
const SLED_DEFAULT_TREE: &[u8] = b"__sled__default";

impl SledKv {
    /// Opens sled at `path`. sled takes its own non-blocking lock on its data file;
    /// after a store in this process closed, that lock can stay held for a moment
    /// (sled's background jobs keep the file open after `flush` returns). The caller
    /// holds the data dir's lock, so no other process can hold sled's: the open is
    /// retried for up to `lock_wait`.
    pub(crate) fn open(path: &Path, lock_wait: std::time::Duration) -> Result<Self, String> {
        let started = std::time::Instant::now();
        loop {
            match sled::Config::new()
                .path(path)
                .cache_capacity(256 * 1024 * 1024)
                .open()
            {
                Ok(db) => {
                    return Ok(Self {
                        db,
                        trees: RwLock::new(Vec::new()),
                    });
                }
                Err(e)
                    if e.to_string().contains("could not acquire lock")
                        && started.elapsed() < lock_wait =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn tree(&self, id: TreeId) -> Result<sled::Tree, EngineError> {
        let g = self
            .trees
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.get(id)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| EngineError::Engine(format!("no tree {id}")))
    }
}

fn pair(kv: sled::Result<(sled::IVec, sled::IVec)>) -> Result<(Bytes, Bytes), EngineError> {
    let (k, v) = kv.map_err(EngineError::of_sled)?;
    Ok((Bytes::from_owner(k), Bytes::from_owner(v)))
}

impl Kv for SledKv {
    fn open_tree(&self, name: &str) -> Result<TreeId, EngineError> {
        let mut g = self
            .trees
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = g.iter().position(|(n, _)| n == name) {
            return Ok(i);
        }
        let t = self.db.open_tree(name).map_err(EngineError::of_sled)?;
        g.push((name.to_owned(), t));
        Ok(g.len() - 1)
    }

    fn tree_names(&self) -> Vec<String> {
        self.db
            .tree_names()
            .into_iter()
            .filter(|n| n.as_ref() != SLED_DEFAULT_TREE)
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect()
    }

    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Bytes>, EngineError> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(EngineError::of_sled)?
            .map(Bytes::from_owner))
    }

    fn range(&self, tree: TreeId, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> KvIter {
        match self.tree(tree) {
            Ok(t) => Box::new(t.range::<Vec<u8>, _>((lo, hi)).map(pair)),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError> {
        let mut ids: Vec<TreeId> = ops.iter().map(|(t, _, _)| *t).collect();
        ids.sort_unstable();
        ids.dedup();
        if let [only] = ids.as_slice() {
            let mut b = sled::Batch::default();
            for (_, k, v) in ops {
                match v {
                    Some(v) => b.insert(k, v),
                    None => b.remove(k),
                }
            }
            return self
                .tree(*only)?
                .apply_batch(b)
                .map_err(EngineError::of_sled);
        }
        let trees: Vec<sled::Tree> = ids
            .iter()
            .map(|i| self.tree(*i))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&sled::Tree> = trees.iter().collect();
        refs.as_slice()
            .transaction(|tx| {
                for (t, k, v) in &ops {
                    let Some(tx) = ids.binary_search(t).ok().and_then(|i| tx.get(i)) else {
                        continue;
                    };
                    match v {
                        Some(v) => tx.insert(k.as_slice(), v.as_slice())?,
                        None => tx.remove(k.as_slice())?,
                    };
                }
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => EngineError::of_sled(e),
                sled::transaction::TransactionError::Abort(()) => {
                    EngineError::Engine("sled transaction aborted".into())
                }
            })
    }

    fn flush(&self) -> Result<(), EngineError> {
        self.db.flush().map(|_| ()).map_err(EngineError::of_sled)
    }

    fn size_on_disk(&self) -> Result<u64, EngineError> {
        self.db.size_on_disk().map_err(EngineError::of_sled)
    }
}
