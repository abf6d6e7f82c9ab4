//! The storage engine seam: the few operations the store needs from a key/value
//! engine, so that records, entries, the arrival log, the audit tree, cursors and the
//! local tables are written once and run on sled or fjall (issue 20). Only this crate
//! knows engines; callers pick one by [`EngineKind`], never by an engine type.
//!
//! What an engine provides ([`Kv`]):
//! - named trees ([`Kv::open_tree`]) and point reads;
//! - ordered ranges, forward and reverse (the iterators are double-ended);
//! - one atomic write over several trees ([`Kv::apply`]): all of it is visible, or
//!   none of it, even after a crash;
//! - a durable commit ([`Kv::flush`]: fsync): the store calls it before it
//!   acknowledges anything;
//! - a consistent iteration for backup: backups run as one job on the store actor, the
//!   only writer, so no write interleaves with the iteration.
//!
//! Read-your-writes inside a batch is built here once, over any engine: a [`Tx`] keeps
//! the batch's writes in memory, answers its own reads from them first, and hands the
//! whole set to [`Kv::apply`] at the end. An abort drops the set; nothing was written.
//! The store has one writer (its actor thread), and [`crate::Store`] also serialises
//! its transactions, so a read inside a batch cannot be invalidated by another writer.

pub(crate) mod fjall_engine;
pub(crate) mod sled_engine;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::{EngineError, StoreError};

/// Which storage engine a store runs on (`[store] engine` in node.toml).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// sled 0.34: the original engine.
    #[default]
    Sled,
    /// fjall 2: an LSM tree with a journal (see ARCHITECTURE.md "Storage engines").
    Fjall,
}

impl EngineKind {
    /// Every engine, for tests and benchmarks that cover them all.
    pub const ALL: [Self; 2] = [Self::Sled, Self::Fjall];

    /// The name used in node.toml and in the data dir's `ENGINE` file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Fjall => "fjall",
        }
    }

    /// The engine's files inside a data dir.
    pub(crate) fn subdir(self) -> &'static str {
        match self {
            Self::Sled => "db",
            Self::Fjall => "fjall",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An engine name that is not one of [`EngineKind::ALL`].
#[derive(Debug, thiserror::Error)]
#[error("unknown storage engine {0:?} (expected \"sled\" or \"fjall\")")]
pub struct UnknownEngine(pub String);

impl std::str::FromStr for EngineKind {
    type Err = UnknownEngine;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sled" => Ok(Self::Sled),
            "fjall" => Ok(Self::Fjall),
            other => Err(UnknownEngine(other.to_owned())),
        }
    }
}

/// A tree's number within its engine (from [`Kv::open_tree`]).
pub(crate) type TreeId = usize;

/// One write of a batch: a value, or `None` to remove the key.
pub(crate) type Op = (TreeId, Vec<u8>, Option<Vec<u8>>);

/// Key/value pairs in key order, either way.
pub(crate) type KvIter = Box<dyn DoubleEndedIterator<Item = Result<(Bytes, Bytes), EngineError>>>;

/// What the store needs from an engine (see the module header).
pub(crate) trait Kv: Send + Sync {
    /// Opens (or creates) a tree by name.
    fn open_tree(&self, name: &str) -> Result<TreeId, EngineError>;
    /// Names of the trees held.
    fn tree_names(&self) -> Vec<String>;
    /// One value.
    fn get(&self, tree: TreeId, key: &[u8]) -> Result<Option<Bytes>, EngineError>;
    /// Pairs with keys within the bounds, in key order.
    fn range(&self, tree: TreeId, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> KvIter;
    /// Applies every write atomically (all or none, across trees, also after a crash).
    /// Not yet durable: see [`Kv::flush`].
    fn apply(&self, ops: Vec<Op>) -> Result<(), EngineError>;
    /// Makes everything applied so far durable (fsync).
    fn flush(&self) -> Result<(), EngineError>;
    /// Before a clean close (the store's periodic checkpoint, a clean stop): leaves
    /// as little as possible for the next open to replay. Nothing is written that
    /// [`Kv::flush`] had not made durable already. sled has nothing to do here (it
    /// writes its recovery snapshot while opening).
    fn settle(&self) {}
    /// Bytes on disk.
    fn size_on_disk(&self) -> Result<u64, EngineError>;
}

/// Opens the engine `kind` in `dir/<subdir>`, retrying for up to `lock_wait` while an
/// engine lock of a store just closed in this process is still held.
pub(crate) fn open(
    kind: EngineKind,
    dir: &Path,
    lock_wait: std::time::Duration,
) -> Result<Arc<dyn Kv>, StoreError> {
    let path = dir.join(kind.subdir());
    let open_err = |reason: String| StoreError::Open {
        path: dir.to_owned(),
        reason,
    };
    match kind {
        EngineKind::Sled => sled_engine::SledKv::open(&path, lock_wait)
            .map(|k| Arc::new(k) as Arc<dyn Kv>)
            .map_err(open_err),
        EngineKind::Fjall => fjall_engine::FjallKv::open(&path, lock_wait)
            .map(|k| Arc::new(k) as Arc<dyn Kv>)
            .map_err(open_err),
    }
}

/// A tree of an open engine, with the handful of calls the store makes.
#[derive(Clone)]
pub(crate) struct Tree {
    db: Arc<dyn Kv>,
    id: TreeId,
}

fn bound(b: Bound<&impl AsRef<[u8]>>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Tree {
    pub(crate) fn open(db: &Arc<dyn Kv>, name: &str) -> Result<Self, EngineError> {
        Ok(Self {
            db: db.clone(),
            id: db.open_tree(name)?,
        })
    }

    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, EngineError> {
        self.db.get(self.id, key.as_ref())
    }

    pub(crate) fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, EngineError> {
        Ok(self.get(key)?.is_some())
    }

    /// One write, atomically (not yet durable).
    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), EngineError> {
        self.db.apply(vec![(
            self.id,
            key.as_ref().to_vec(),
            Some(value.as_ref().to_vec()),
        )])
    }

    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), EngineError> {
        self.db.apply(vec![(self.id, key.as_ref().to_vec(), None)])
    }

    pub(crate) fn range<K: AsRef<[u8]>>(&self, r: impl RangeBounds<K>) -> KvIter {
        self.db
            .range(self.id, bound(r.start_bound()), bound(r.end_bound()))
    }

    pub(crate) fn iter(&self) -> KvIter {
        self.db.range(self.id, Bound::Unbounded, Bound::Unbounded)
    }

    /// Keys starting with `prefix`.
    pub(crate) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> KvIter {
        let p = prefix.as_ref().to_vec();
        let hi = prefix_end(&p).map_or(Bound::Unbounded, Bound::Excluded);
        self.db.range(self.id, Bound::Included(p), hi)
    }

    pub(crate) fn last(&self) -> Result<Option<(Bytes, Bytes)>, EngineError> {
        self.iter().next_back().transpose()
    }

    /// Counts the pairs (a scan).
    pub(crate) fn len(&self) -> Result<u64, EngineError> {
        let mut n = 0u64;
        for kv in self.iter() {
            kv?;
            n += 1;
        }
        Ok(n)
    }

    /// Removes every pair, in one atomic write.
    pub(crate) fn clear(&self) -> Result<(), EngineError> {
        let mut b = Batch::default();
        for kv in self.iter() {
            b.remove(kv?.0);
        }
        self.apply_batch(b)
    }

    /// Applies a batch of writes to this tree atomically.
    pub(crate) fn apply_batch(&self, b: Batch) -> Result<(), EngineError> {
        if b.0.is_empty() {
            return Ok(());
        }
        self.db.apply(
            b.0.into_iter()
                .map(|(k, v)| (self.id, k, v))
                .collect::<Vec<_>>(),
        )
    }
}

/// The first key after every key starting with `p` (`None`: no such key).
fn prefix_end(p: &[u8]) -> Option<Vec<u8>> {
    let mut end = p.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Writes to one tree, applied together ([`Tree::apply_batch`]).
#[derive(Default)]
pub(crate) struct Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>);

impl Batch {
    pub(crate) fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.0
            .push((key.as_ref().to_vec(), Some(value.as_ref().to_vec())));
    }

    pub(crate) fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.0.push((key.as_ref().to_vec(), None));
    }
}

/// A batch's writes by (tree, key): a value, or `None` for a removal.
type Writes = BTreeMap<(TreeId, Vec<u8>), Option<Vec<u8>>>;

/// The writes of one multi-tree batch, kept in memory until it commits (see the
/// module header).
#[derive(Default)]
pub(crate) struct Tx {
    writes: RefCell<Writes>,
}

impl Tx {
    /// The writes, in (tree, key) order, for [`Kv::apply`].
    pub(crate) fn into_ops(self) -> Vec<Op> {
        self.writes
            .into_inner()
            .into_iter()
            .map(|((t, k), v)| (t, k, v))
            .collect()
    }
}

/// A tree seen from inside a [`Tx`]: reads see the batch's own writes first.
pub(crate) struct TxTree<'a> {
    tree: &'a Tree,
    tx: &'a Tx,
}

impl<'a> TxTree<'a> {
    pub(crate) fn new(tree: &'a Tree, tx: &'a Tx) -> Self {
        Self { tree, tx }
    }

    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>, StoreError> {
        let key = key.as_ref();
        if let Some(v) = self.tx.writes.borrow().get(&(self.tree.id, key.to_vec())) {
            return Ok(v.as_deref().map(Bytes::copy_from_slice));
        }
        self.tree.get(key).map_err(StoreError::Io)
    }

    pub(crate) fn insert(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), StoreError> {
        self.tx.writes.borrow_mut().insert(
            (self.tree.id, key.as_ref().to_vec()),
            Some(value.as_ref().to_vec()),
        );
        Ok(())
    }

    /// Inserts and returns the value it replaces.
    pub(crate) fn replace(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Result<Option<Bytes>, StoreError> {
        let prev = self.get(key.as_ref())?;
        self.insert(key, value)?;
        Ok(prev)
    }

    pub(crate) fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.tx
            .writes
            .borrow_mut()
            .insert((self.tree.id, key.as_ref().to_vec()), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_reads_its_writes_ranges_and_survives_a_reopen() {
        for kind in EngineKind::ALL {
            let dir = tempfile::tempdir().unwrap();
            {
                let db = open(kind, dir.path(), std::time::Duration::ZERO).unwrap();
                let a = Tree::open(&db, "a").unwrap();
                let b = Tree::open(&db, "b").unwrap();
                let tx = Tx::default();
                let (ta, tb) = (TxTree::new(&a, &tx), TxTree::new(&b, &tx));
                ta.insert(b"k1", b"v1").unwrap();
                assert_eq!(ta.get(b"k1").unwrap().as_deref(), Some(&b"v1"[..]));
                assert_eq!(a.get(b"k1").unwrap(), None, "{kind}: not applied yet");
                tb.insert(b"x", b"y").unwrap();
                ta.remove(b"k1").unwrap();
                assert_eq!(ta.get(b"k1").unwrap(), None);
                ta.insert(b"k2", b"v2").unwrap();
                ta.insert(b"k3", b"v3").unwrap();
                db.apply(tx.into_ops()).unwrap();
                db.flush().unwrap();
                let keys: Vec<_> = a.iter().map(|kv| kv.unwrap().0.to_vec()).collect();
                assert_eq!(keys, [b"k2".to_vec(), b"k3".to_vec()], "{kind}");
                let back: Vec<_> = a
                    .range(&b"k0"[..]..&b"k3"[..])
                    .rev()
                    .map(|kv| kv.unwrap().0.to_vec())
                    .collect();
                assert_eq!(back, [b"k2".to_vec()], "{kind}");
                assert_eq!(a.scan_prefix(b"k").count(), 2, "{kind}");
                assert_eq!(a.last().unwrap().unwrap().0.as_ref(), b"k3", "{kind}");
            }
            let db = open(kind, dir.path(), std::time::Duration::from_secs(10)).unwrap();
            let b = Tree::open(&db, "b").unwrap();
            assert_eq!(b.get(b"x").unwrap().as_deref(), Some(&b"y"[..]), "{kind}");
            let mut names = db.tree_names();
            names.sort();
            assert!(names.contains(&"a".to_owned()) && names.contains(&"b".to_owned()));
        }
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
