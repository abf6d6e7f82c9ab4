//! Backup and restore of the store: `wlnode backup` and `wlnode restore`.
//!
//! A backup is every tree of the store, key by key, in one file, whatever the engine:
//! a backup taken on sled restores onto fjall and back. The store actor writes it as
//! one job: every write to the store goes through that actor, so nothing changes while
//! the snapshot is taken and the file is consistent even while the node runs.
//!
//! File format (all integers big-endian):
//!
//! ```text
//! "WLNODE-BACKUP-1\n"                      16-byte magic
//! 'T' u32 len, tree name                   starts a tree
//! 'K' u32 len, key, u32 len, value         one pair of the current tree
//! 'E' u64 trees, u64 pairs, [32] SHA-256   end: counts, then the hash of every byte before it
//! ```
//!
//! A restore validates the whole file (magic, framing, counts, hash, schema version)
//! before it touches the data dir, writes into an empty (or, with `force`, emptied)
//! data dir, and gives the restored store a new arrival-log epoch, so that peers reset
//! their cursors into its log and re-read it from the start. The restored node also
//! re-syncs from its peers: anything stored after the backup comes back by
//! reconciliation.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use wlnode_crypto::sha256::Hasher;

use super::schema::{SCHEMA_VERSION, meta, trees};
use super::{Store, StoreError, lock_dir};
use crate::engine::{Batch, Tree};
use crate::{Engine as _, EngineKind};

/// First bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"WLNODE-BACKUP-1\n";
/// Largest key or value a valid backup holds (a corrupt length fails early).
const MAX_ITEM: u32 = 256 * 1024 * 1024;
/// Largest tree name.
const MAX_NAME: u32 = 1024;

/// What a backup holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BackupSummary {
    /// Trees.
    pub trees: u64,
    /// Key/value pairs in all trees.
    pub pairs: u64,
    /// Records (pairs of the `records` tree).
    pub records: u64,
    /// Entries (pairs of the `entries` tree).
    pub entries: u64,
    /// File size in bytes.
    pub bytes: u64,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid backup.
    #[error("{path} is not a valid wlnode backup: {reason} (at byte {offset})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Byte offset where it went wrong.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The backup was taken from a store with another layout version.
    #[error(
        "{path} holds store schema version {found}; this wlnode restores versions 1 to {SCHEMA_VERSION}"
    )]
    Schema {
        /// The file.
        path: PathBuf,
        /// Version in the backup.
        found: u32,
    },
    /// The target data dir already holds something.
    #[error(
        "data dir {path} is not empty; restore into a new folder, or pass --force to replace its store"
    )]
    NotEmpty {
        /// The data dir.
        path: PathBuf,
    },
    /// `force` was given for a folder that is not a wlnode data dir.
    #[error(
        "{path} does not look like a wlnode data dir (no LOCK or db inside); refusing to empty it"
    )]
    NotADataDir {
        /// The folder.
        path: PathBuf,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A writer that hashes what it writes and counts the bytes.
struct HashWriter<W> {
    inner: W,
    hash: Hasher,
    bytes: u64,
}

impl<W: Write> HashWriter<W> {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.bytes = self.bytes.saturating_add(b.len() as u64);
        self.inner.write_all(b)
    }

    fn put_bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        let len =
            u32::try_from(b.len()).map_err(|_| std::io::Error::other("item longer than 4 GiB"))?;
        self.put(&len.to_be_bytes())?;
        self.put(b)
    }
}

impl Store {
    /// Writes a backup of every tree to `w`. Run it on the store actor (as one job),
    /// so that no write interleaves.
    pub fn write_backup(&self, w: impl Write, path: &Path) -> Result<BackupSummary, BackupError> {
        let e = io_err(path);
        let mut out = HashWriter {
            inner: w,
            hash: Hasher::new(),
            bytes: 0,
        };
        let mut sum = BackupSummary::default();
        out.put(MAGIC).map_err(&e)?;
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            let tree = Tree::open(&self.db, &name).io()?;
            out.put(b"T").map_err(&e)?;
            out.put_bytes(name.as_bytes()).map_err(&e)?;
            sum.trees += 1;
            for kv in tree.iter() {
                let (k, v) = kv.io()?;
                out.put(b"K").map_err(&e)?;
                out.put_bytes(&k).map_err(&e)?;
                out.put_bytes(&v).map_err(&e)?;
                sum.pairs += 1;
                match name.as_str() {
                    trees::RECORDS => sum.records += 1,
                    trees::ENTRIES => sum.entries += 1,
                    _ => {}
                }
            }
        }
        out.put(b"E").map_err(&e)?;
        out.put(&sum.trees.to_be_bytes()).map_err(&e)?;
        out.put(&sum.pairs.to_be_bytes()).map_err(&e)?;
        let digest = out.hash.finish();
        out.inner.write_all(digest.as_ref()).map_err(&e)?;
        out.inner.flush().map_err(&e)?;
        sum.bytes = out.bytes + 32;
        Ok(sum)
    }

    /// Writes a backup to a new file at `path` (fsynced). See [`Self::write_backup`].
    pub fn backup_to_file(&self, path: &Path) -> Result<BackupSummary, BackupError> {
        let e = io_err(path);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(&e)?;
        let mut w = BufWriter::new(file);
        let sum = self.write_backup(&mut w, path)?;
        let file = w.into_inner().map_err(|err| e(err.into_error()))?;
        file.sync_all().map_err(&e)?;
        Ok(sum)
    }
}

/// One item of a backup file.
enum Item<'a> {
    Tree(&'a [u8]),
    Pair(&'a [u8], &'a [u8]),
}

struct Reader<'p, R> {
    inner: R,
    path: &'p Path,
    hash: Hasher,
    offset: u64,
}

impl<R: Read> Reader<'_, R> {
    fn invalid(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Invalid {
            path: self.path.to_owned(),
            offset: self.offset,
            reason: reason.into(),
        }
    }

    fn read(&mut self, buf: &mut [u8], what: &str) -> Result<(), BackupError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(self.invalid(format!("the file ends inside {what} (truncated?)")));
            }
            Err(e) => return Err(io_err(self.path)(e)),
        }
        self.hash.update(buf);
        self.offset = self.offset.saturating_add(buf.len() as u64);
        Ok(())
    }

    fn read_u32(&mut self, what: &str) -> Result<u32, BackupError> {
        let mut b = [0u8; 4];
        self.read(&mut b, what)?;
        Ok(u32::from_be_bytes(b))
    }

    fn read_u64(&mut self, what: &str) -> Result<u64, BackupError> {
        let mut b = [0u8; 8];
        self.read(&mut b, what)?;
        Ok(u64::from_be_bytes(b))
    }

    fn read_item(&mut self, buf: &mut Vec<u8>, max: u32, what: &str) -> Result<(), BackupError> {
        let len = self.read_u32(what)?;
        if len > max {
            return Err(self.invalid(format!("{what} of {len} bytes is longer than {max}")));
        }
        buf.clear();
        buf.resize(len as usize, 0);
        self.read(buf, what)
    }
}

/// Reads and checks a backup file, calling `visit` for every item in order. Items
/// reach `visit` before the final hash is checked: a caller that writes them must
/// treat an error as "discard what was written".
fn read_backup(
    path: &Path,
    mut visit: impl FnMut(Item<'_>) -> Result<(), BackupError>,
) -> Result<BackupSummary, BackupError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut r = Reader {
        inner: BufReader::with_capacity(1 << 20, file),
        path,
        hash: Hasher::new(),
        offset: 0,
    };
    let mut magic = [0u8; 16];
    r.read(&mut magic, "the file header")?;
    if &magic != MAGIC {
        r.offset = 0;
        return Err(r.invalid("wrong file header (not made by `wlnode backup`)"));
    }
    let mut sum = BackupSummary::default();
    let mut name = Vec::new();
    let mut key = Vec::new();
    let mut value = Vec::new();
    let mut tree: Option<Vec<u8>> = None;
    let mut schema: Option<u32> = None;
    loop {
        let mut tag = [0u8; 1];
        r.read(&mut tag, "a frame tag")?;
        match &tag {
            b"T" => {
                r.read_item(&mut name, MAX_NAME, "a tree name")?;
                if tree.as_ref().is_some_and(|t| *t >= name) {
                    return Err(r.invalid("trees out of order or repeated"));
                }
                visit(Item::Tree(&name))?;
                tree = Some(name.clone());
                sum.trees += 1;
            }
            b"K" => {
                let Some(t) = &tree else {
                    return Err(r.invalid("a key before any tree"));
                };
                r.read_item(&mut key, MAX_ITEM, "a key")?;
                r.read_item(&mut value, MAX_ITEM, "a value")?;
                if t == trees::META.as_bytes() && key == meta::SCHEMA_VERSION {
                    let v = <[u8; 4]>::try_from(value.as_slice())
                        .map_err(|_| r.invalid("meta/schema_version is not 4 bytes"))?;
                    schema = Some(u32::from_be_bytes(v));
                }
                match t.as_slice() {
                    n if n == trees::RECORDS.as_bytes() => sum.records += 1,
                    n if n == trees::ENTRIES.as_bytes() => sum.entries += 1,
                    _ => {}
                }
                visit(Item::Pair(&key, &value))?;
                sum.pairs += 1;
            }
            b"E" => {
                let trees_n = r.read_u64("the end frame")?;
                let pairs_n = r.read_u64("the end frame")?;
                if (trees_n, pairs_n) != (sum.trees, sum.pairs) {
                    return Err(r.invalid(format!(
                        "the end frame counts {trees_n} trees and {pairs_n} pairs, the file holds {} and {}",
                        sum.trees, sum.pairs
                    )));
                }
                let want = std::mem::replace(&mut r.hash, Hasher::new()).finish();
                let mut got = [0u8; 32];
                r.read(&mut got, "the final hash")?;
                if want.as_ref() != got.as_slice() {
                    return Err(r.invalid("SHA-256 mismatch: the file is corrupt"));
                }
                let mut extra = [0u8; 1];
                match r.inner.read(&mut extra) {
                    Ok(0) => {}
                    Ok(_) => return Err(r.invalid("bytes after the end frame")),
                    Err(e) => return Err(io_err(path)(e)),
                }
                sum.bytes = r.offset;
                break;
            }
            other => {
                return Err(r.invalid(format!("unknown frame tag {:#04x}", other[0])));
            }
        }
    }
    match schema {
        Some(v) if super::schema::READABLE_SCHEMA_VERSIONS.contains(&v) => Ok(sum),
        Some(found) => Err(BackupError::Schema {
            path: path.to_owned(),
            found,
        }),
        None => Err(BackupError::Invalid {
            path: path.to_owned(),
            offset: sum.bytes,
            reason: "no meta/schema_version: not a backup of a wlnode store".into(),
        }),
    }
}

/// Checks a backup file end to end without writing anything.
pub fn verify_backup(path: &Path) -> Result<BackupSummary, BackupError> {
    read_backup(path, |_| Ok(()))
}

/// Restores the backup at `from` into the data dir `dir`.
///
/// `dir` must be missing or empty; with `force`, an existing data dir (one holding
/// `LOCK` or `db`) is emptied first, which fails while a node runs on it. The file is
/// validated completely before `dir` is touched.
pub fn restore(from: &Path, dir: &Path, force: bool) -> Result<BackupSummary, BackupError> {
    restore_with(from, dir, force, None)
}

/// [`restore`] onto engine `engine`; `None`: the engine of the store it replaces, or
/// the default one for an empty dir. Backups do not depend on the engine.
pub fn restore_with(
    from: &Path,
    dir: &Path,
    force: bool,
    engine: Option<EngineKind>,
) -> Result<BackupSummary, BackupError> {
    verify_backup(from)?;
    let e = io_err(dir);
    let existing: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|x| x.map(|x| x.path()))
            .collect::<Result<_, _>>()
            .map_err(&e)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(e(err)),
    };
    // What the store being replaced holds that a backup must not roll back.
    let mut kept = Kept::default();
    if !existing.is_empty() {
        if !force {
            return Err(BackupError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        if !dir.join("LOCK").exists()
            && !dir.join(crate::ENGINE_FILE).exists()
            && !EngineKind::ALL
                .iter()
                .any(|k| dir.join(k.subdir()).exists())
        {
            return Err(BackupError::NotADataDir {
                path: dir.to_owned(),
            });
        }
        kept = Kept::read(dir);
        // Holding the lock proves no node runs here while we empty the folder.
        let _lock = lock_dir(dir)?;
        for p in existing {
            if p.file_name().is_some_and(|n| n == "LOCK") {
                continue;
            }
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(io_err(&p))?;
        }
    }
    // Opening the empty folder writes (and flushes) a new arrival-log epoch before any
    // restored data: peers' cursors into the old log must not skip the restored one,
    // even if the restore stops halfway. The backup's epoch is never written.
    let kind = match engine {
        Some(k) => k,
        None => crate::recorded_engine(dir)
            .ok()
            .flatten()
            .or(kept.engine)
            .unwrap_or_else(crate::default_engine),
    };
    let store = Store::open_with(dir, kind)?;
    // Before any restored data too: the hold (the backup is older than what this node
    // signed and served since: amending before peers' copies return could sign a
    // second record for a version they hold; see `hold`), and what the replaced store
    // kept (a backup with a newer anchor overwrites it below).
    store.hold_local_writes(wlnode_crypto::time::Timestamp::now().as_millis())?;
    for (k, v) in &kept.values {
        store.t.meta.insert(*k, v.as_slice()).io()?;
    }
    store.flush()?;
    let mut current: Option<Tree> = None;
    let mut in_meta = false;
    let mut batch = Batch::default();
    let mut in_batch = 0usize;
    let sum = read_backup(from, |item| {
        match item {
            Item::Tree(name) => {
                if let Some(t) = &current {
                    t.apply_batch(std::mem::take(&mut batch)).io()?;
                }
                in_batch = 0;
                in_meta = name == trees::META.as_bytes();
                let name = std::str::from_utf8(name).map_err(|e| StoreError::Corrupt {
                    tree: "backup",
                    reason: format!("tree name: {e}"),
                })?;
                current = Some(Tree::open(&store.db, name).io()?);
            }
            Item::Pair(k, v) => {
                if in_meta && !kept.take_from_backup(k, v) {
                    return Ok(());
                }
                batch.insert(k, v);
                in_batch += 1;
                if in_batch >= 10_000
                    && let Some(t) = &current
                {
                    t.apply_batch(std::mem::take(&mut batch)).io()?;
                    in_batch = 0;
                }
            }
        }
        Ok(())
    })?;
    if let Some(t) = &current {
        t.apply_batch(batch).io()?;
    }
    store.flush()?;
    Ok(sum)
}

/// The operator's peer blocks and the roster anchor of the store a restore replaces:
/// a backup must not unblock a peer blocked since, nor roll the roster back.
#[derive(Default)]
struct Kept {
    values: Vec<(&'static [u8], Vec<u8>)>,
    /// The engine the replaced store ran on.
    engine: Option<EngineKind>,
}

impl Kept {
    /// Reads them from the store in `dir`. A store that does not open (the reason a
    /// restore may be forced) keeps nothing.
    fn read(dir: &Path) -> Self {
        let mut out = Self::default();
        match Store::open(dir) {
            Ok(s) => {
                out.engine = Some(s.engine());
                for k in [meta::BLOCKED_PEERS, meta::ROSTER_ANCHOR] {
                    match s.meta_get(k) {
                        Ok(Some(v)) => out.values.push((k, v)),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "restore: cannot read the replaced store's {}", String::from_utf8_lossy(k))
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "restore: the replaced store does not open; its peer blocks and roster anchor are not kept");
            }
        }
        out
    }

    /// Whether the backup's `meta` pair `k` is restored. Never the epoch (a new one
    /// was written first) or a write hold (the restore sets its own); not blocks the
    /// replaced store had; the anchor of whichever roster is newer.
    fn take_from_backup(&mut self, k: &[u8], v: &[u8]) -> bool {
        if k == meta::LOG_EPOCH || k == meta::LOCAL_WRITES_HELD {
            return false;
        }
        let Some(pos) = self.values.iter().position(|(key, _)| *key == k) else {
            return true;
        };
        if k == meta::ROSTER_ANCHOR {
            let ours = self
                .values
                .get(pos)
                .and_then(|(_, v)| crate::anchor::anchor_version(v));
            if crate::anchor::anchor_version(v) > ours {
                self.values.remove(pos);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor(version: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "authorities": [], "federation": "f", "version": version,
            "hash": "00".repeat(32)
        }))
        .unwrap()
    }

    /// Issue 19 item 4: a restore rolled back the operator's peer blocks and the
    /// roster anchor to the backup's, and wrote its new epoch last (a restore stopped
    /// halfway left the backup's epoch). Now blocks and the newer anchor are kept, the
    /// backup's epoch is never written, and local writes are held.
    #[test]
    fn a_restore_keeps_blocks_and_the_newer_anchor_and_never_writes_the_old_epoch() {
        let tmp = tempfile::tempdir().unwrap();
        let aa: wlnode_crypto::model::AgencyCode = "AA-EXPORT".parse().unwrap();
        let bb: wlnode_crypto::model::AgencyCode = "BB-CUSTOMS".parse().unwrap();
        let file = tmp.path().join("b.wlbackup");
        let src_epoch = {
            let s = Store::open(&tmp.path().join("src")).unwrap();
            s.set_peer_blocked(&aa, true, 1).unwrap();
            s.meta_set(meta::ROSTER_ANCHOR, &anchor(3)).unwrap();
            s.backup_to_file(&file).unwrap();
            s.epoch()
        };
        // The store being replaced: BB blocked since, roster 5.
        let dst = tmp.path().join("dst");
        let old_epoch = {
            let s = Store::open(&dst).unwrap();
            s.set_peer_blocked(&bb, true, 2).unwrap();
            s.meta_set(meta::ROSTER_ANCHOR, &anchor(5)).unwrap();
            s.epoch()
        };
        restore(&file, &dst, true).unwrap();
        let s = Store::open(&dst).unwrap();
        assert_eq!(
            s.blocked_peers().unwrap().into_iter().collect::<Vec<_>>(),
            [bb]
        );
        assert_eq!(s.roster_anchor().unwrap().unwrap().accepted.unwrap().1, 5);
        assert_ne!(s.epoch(), src_epoch, "never the backup's epoch");
        assert_ne!(s.epoch(), old_epoch);
        assert!(s.local_writes_held().unwrap().is_some());
        drop(s);
        // Into an empty folder: the backup's blocks and anchor; a newer backup anchor
        // wins over an older current one.
        let fresh = tmp.path().join("fresh");
        restore(&file, &fresh, false).unwrap();
        let s = Store::open(&fresh).unwrap();
        assert_eq!(
            s.blocked_peers().unwrap().into_iter().collect::<Vec<_>>(),
            [aa]
        );
        assert_eq!(s.roster_anchor().unwrap().unwrap().accepted.unwrap().1, 3);
        drop(s);
        let older = tmp.path().join("older");
        {
            let s = Store::open(&older).unwrap();
            s.meta_set(meta::ROSTER_ANCHOR, &anchor(2)).unwrap();
        }
        restore(&file, &older, true).unwrap();
        let s = Store::open(&older).unwrap();
        assert_eq!(s.roster_anchor().unwrap().unwrap().accepted.unwrap().1, 3);
    }

    fn backup_of_fresh_store(dir: &Path) -> (PathBuf, BackupSummary) {
        let store = Store::open(&dir.join("src")).unwrap();
        store.meta_set(b"test_key", b"test_value").unwrap();
        let file = dir.join("b.wlbackup");
        let sum = store.backup_to_file(&file).unwrap();
        (file, sum)
    }

    #[test]
    fn round_trip_counts_and_refusals() {
        let tmp = tempfile::tempdir().unwrap();
        let (file, sum) = backup_of_fresh_store(tmp.path());
        assert_eq!(verify_backup(&file).unwrap(), sum);
        assert_eq!(sum.bytes, std::fs::metadata(&file).unwrap().len());
        assert!(sum.trees >= 8, "{sum:?}");
        // Restore into a new dir, then not again without --force.
        let dst = tmp.path().join("dst");
        assert_eq!(restore(&file, &dst, false).unwrap(), sum);
        assert!(matches!(
            restore(&file, &dst, false),
            Err(BackupError::NotEmpty { .. })
        ));
        // --force refuses a folder that is not a data dir.
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("precious.txt"), "x").unwrap();
        assert!(matches!(
            restore(&file, &other, true),
            Err(BackupError::NotADataDir { .. })
        ));
        assert!(other.join("precious.txt").exists());
    }

    #[test]
    fn every_single_byte_flip_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let (file, _) = backup_of_fresh_store(tmp.path());
        let good = std::fs::read(&file).unwrap();
        let bad = tmp.path().join("bad");
        for i in (0..good.len()).step_by(7) {
            let mut b = good.clone();
            b[i] ^= 0x01;
            std::fs::write(&bad, &b).unwrap();
            assert!(
                verify_backup(&bad).is_err(),
                "flip at byte {i} not detected"
            );
        }
        // Truncated at any point, or with bytes appended.
        for cut in [0, 10, 16, 17, good.len() / 2, good.len() - 1] {
            std::fs::write(&bad, &good[..cut]).unwrap();
            assert!(verify_backup(&bad).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        std::fs::write(&bad, &longer).unwrap();
        let e = verify_backup(&bad).unwrap_err().to_string();
        assert!(e.contains("after the end frame"), "{e}");
    }
}
