//! `wlnode store migrate`: copies a stopped node's store onto another engine, tree by
//! tree and key by key (the same bytes; the arrival-log epoch too, so peers' cursors
//! stay valid), then checks that every tree holds as many pairs as the source. The
//! source is opened with its directory lock, so a running node's dir is refused with
//! [`StoreError::Locked`]; the target must be missing or empty.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::{Batch, Tree};
use crate::{Counts, Engine as _, EngineKind, Store, StoreError};

/// What a migration copied.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MigrateSummary {
    /// The engine of the source.
    pub from_engine: EngineKind,
    /// The engine of the target.
    pub to_engine: EngineKind,
    /// Pairs copied, by tree (the same in source and target: checked).
    pub pairs: BTreeMap<String, u64>,
    /// The target's store-wide counts (equal to the source's: checked).
    pub counts: Counts,
}

/// Why a migration failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Opening, reading or writing a store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target is not an empty folder.
    #[error("target {path} is not empty; migrate writes into a missing or empty folder")]
    NotEmpty {
        /// The target.
        path: PathBuf,
    },
    /// The source and the target are the same folder.
    #[error("source and target are the same folder ({path})")]
    SameDir {
        /// The folder.
        path: PathBuf,
    },
    /// After the copy, a tree or a count of the target differs from the source.
    #[error(
        "the copy does not match its source: {what}; the target {path} is incomplete, delete it"
    )]
    Mismatch {
        /// The target.
        path: PathBuf,
        /// What differs.
        what: String,
    },
}

/// Pairs per engine write while copying.
const COPY_BATCH: usize = 10_000;

/// Copies the store in `from` (stopped) into a new store on engine `to_engine` in `to`.
pub fn migrate(
    from: &Path,
    to: &Path,
    to_engine: EngineKind,
) -> Result<MigrateSummary, MigrateError> {
    if let (Ok(a), Ok(b)) = (from.canonicalize(), to.canonicalize())
        && a == b
    {
        return Err(MigrateError::SameDir { path: a });
    }
    // Opening takes the source's lock: a running node's dir is refused here.
    if crate::recorded_engine(from)?.is_none() {
        return Err(StoreError::Open {
            path: from.to_owned(),
            reason: "no wlnode store here (no ENGINE file and no sled db)".into(),
        }
        .into());
    }
    let src = Store::open(from)?;
    match std::fs::read_dir(to) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(MigrateError::NotEmpty {
                    path: to.to_owned(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StoreError::Open {
                path: to.to_owned(),
                reason: e.to_string(),
            }
            .into());
        }
    }
    let mut names = src.db.tree_names();
    names.sort();
    let mut pairs = BTreeMap::new();
    {
        let dst = Store::open_with(to, to_engine)?;
        for name in &names {
            let from_tree = Tree::open(&src.db, name).io()?;
            let to_tree = Tree::open(&dst.db, name).io()?;
            // The target's fresh meta (schema version, a new epoch) is overwritten by
            // the source's: the same store, on another engine.
            let mut batch = Batch::default();
            let (mut n, mut in_batch) = (0u64, 0usize);
            for kv in from_tree.iter() {
                let (k, v) = kv.io()?;
                batch.insert(k, v);
                n += 1;
                in_batch += 1;
                if in_batch == COPY_BATCH {
                    to_tree.apply_batch(std::mem::take(&mut batch)).io()?;
                    in_batch = 0;
                }
            }
            to_tree.apply_batch(batch).io()?;
            pairs.insert(name.clone(), n);
        }
        dst.flush()?;
    }
    // Reopened, so that what is checked is what reached the disk.
    let dst = Store::open_with(to, to_engine)?;
    let mismatch = |what: String| MigrateError::Mismatch {
        path: to.to_owned(),
        what,
    };
    for (name, n) in &pairs {
        let got = Tree::open(&dst.db, name).io()?.len().io()?;
        if got != *n {
            return Err(mismatch(format!("tree {name}: {got} pairs, source {n}")));
        }
    }
    let (a, b) = (src.counts()?, dst.counts()?);
    if a != b {
        return Err(mismatch(format!("counts {b:?}, source {a:?}")));
    }
    if src.epoch() != dst.epoch() {
        return Err(mismatch("arrival-log epoch".into()));
    }
    Ok(MigrateSummary {
        from_engine: src.engine(),
        to_engine,
        pairs,
        counts: b,
    })
}
