//! Fault injection for tests: switches that make the store's writes fail as a full,
//! read-only or failing disk would, so that tests can check what the node does then
//! (report it, refuse new data, keep serving reads, recover). Compiled only for unit
//! tests and with the `fault-injection` feature, which only the test crates enable;
//! a release build has no such switch.

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

/// Write-failure switches of one store. Counters count down; `u64::MAX` means "until
/// cleared".
#[derive(Debug, Default)]
pub struct Faults {
    /// The next N write operations fail before they touch sled (the disk refuses
    /// writes).
    fail_writes: AtomicU64,
    /// The next N ingest batches fail inside their transaction, after the first record
    /// of the batch has been written (a write that fails partway).
    fail_mid_batch: AtomicU64,
}

impl Faults {
    /// Makes the next `n` writes fail (`u64::MAX`: until [`Faults::clear`]).
    pub fn fail_writes(&self, n: u64) {
        self.fail_writes.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` ingest batches fail partway (`u64::MAX`: until cleared).
    pub fn fail_mid_batch(&self, n: u64) {
        self.fail_mid_batch.store(n, Ordering::SeqCst);
    }

    /// The disk works again.
    pub fn clear(&self) {
        self.fail_writes.store(0, Ordering::SeqCst);
        self.fail_mid_batch.store(0, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU64) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                0 => None,
                u64::MAX => Some(u64::MAX),
                n => Some(n - 1),
            })
            .is_ok()
    }

    /// Called before every write: an error if the disk "refuses" it.
    pub(super) fn before_write(&self) -> Result<(), StoreError> {
        if Self::take(&self.fail_writes) {
            return Err(injected("the disk refuses writes (read-only file system)"));
        }
        Ok(())
    }

    /// Called at the start of an ingest: whether this batch fails partway.
    pub(super) fn mid_batch(&self) -> bool {
        Self::take(&self.fail_mid_batch)
    }
}

/// The error an injected fault produces: an IO error, as sled reports a real one.
pub(super) fn injected(what: &str) -> StoreError {
    StoreError::Io(crate::EngineError::Io(std::io::Error::new(
        std::io::ErrorKind::ReadOnlyFilesystem,
        format!("injected fault: {what}"),
    )))
}
