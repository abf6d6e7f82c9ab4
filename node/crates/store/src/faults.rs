//! Fault injection for tests: switches that make the store's writes fail as a full,
//! read-only or failing disk would, so that tests can check what the node does then
//! (report it, refuse new data, keep serving reads, recover). Compiled only for unit
//! tests and with the `fault-injection` feature, which only the test crates enable;
//! a release build has no such switch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

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
    /// The next N ingest flushes (the fsync that makes a batch or group durable) fail
    /// after the batch was applied in memory: a disk that takes the writes but cannot
    /// make them durable.
    fail_flushes: AtomicU64,
    /// While true, an ingest flush waits (the store thread blocks) until
    /// [`Faults::resume_flushes`]: lets a test hold a batch queued but not yet durable.
    paused: Mutex<bool>,
    resumed: Condvar,
    /// While true, the store actor's probe write before a recovery reopen fails (the
    /// disk still refuses writes), so a store with a failed write stays failed and is
    /// not reopened: lets a test act in that window, which otherwise lasts until the
    /// next job after a failure.
    fail_probes: std::sync::atomic::AtomicBool,
    /// Counts down to one write that fails: N lets N - 1 writes through, fails the
    /// N-th, and then lets every write through (0: off). Review s32-consult L7: a test
    /// of a write order needs the failure at one step, not at the first write.
    fail_nth_write: AtomicU64,
}

impl Faults {
    /// Makes the next `n` writes fail (`u64::MAX`: until [`Faults::clear`]).
    pub fn fail_writes(&self, n: u64) {
        self.fail_writes.store(n, Ordering::SeqCst);
    }

    /// Lets `n - 1` writes through, fails the `n`-th, then lets writes through again
    /// (`n` = 0: off).
    pub fn fail_nth_write(&self, n: u64) {
        self.fail_nth_write.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` ingest batches fail partway (`u64::MAX`: until cleared).
    pub fn fail_mid_batch(&self, n: u64) {
        self.fail_mid_batch.store(n, Ordering::SeqCst);
    }

    /// Makes the next `n` ingest flushes fail (`u64::MAX`: until cleared).
    pub fn fail_flushes(&self, n: u64) {
        self.fail_flushes.store(n, Ordering::SeqCst);
    }

    /// Holds every ingest flush (the store thread waits in it) until
    /// [`Faults::resume_flushes`]. Whether a held flush then fails is decided when it
    /// resumes ([`Faults::fail_flushes`]).
    pub fn pause_flushes(&self) {
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = true;
    }

    /// Lets held flushes go on.
    pub fn resume_flushes(&self) {
        *self.paused.lock().unwrap_or_else(PoisonError::into_inner) = false;
        self.resumed.notify_all();
    }

    /// Makes the actor's probe write before a recovery reopen fail (`true`) or
    /// succeed again (`false`).
    pub fn fail_probes(&self, on: bool) {
        self.fail_probes.store(on, Ordering::SeqCst);
    }

    /// Whether the recovery probe is to fail (see [`Faults::fail_probes`]).
    pub(super) fn probe_fails(&self) -> bool {
        self.fail_probes.load(Ordering::SeqCst)
    }

    /// The disk works again.
    pub fn clear(&self) {
        self.fail_writes.store(0, Ordering::SeqCst);
        self.fail_mid_batch.store(0, Ordering::SeqCst);
        self.fail_flushes.store(0, Ordering::SeqCst);
        self.fail_probes(false);
        self.resume_flushes();
        self.fail_nth_write.store(0, Ordering::SeqCst);
    }

    /// Counts one write down towards the N-th; true for the N-th itself.
    fn nth(counter: &AtomicU64) -> bool {
        matches!(
            counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)),
            Ok(1)
        )
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
        if Self::nth(&self.fail_nth_write) {
            return Err(injected("the disk refused this one write"));
        }
        Ok(())
    }

    /// Called before an ingest's flush: waits while flushes are paused, then an error
    /// if this flush is to fail.
    pub(super) fn before_flush(&self) -> Result<(), StoreError> {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        while *paused {
            paused = self
                .resumed
                .wait(paused)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(paused);
        if Self::take(&self.fail_flushes) {
            return Err(injected("the flush to disk failed (fsync error)"));
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

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn the_nth_write_fails_alone() {
        let f = Faults::default();
        f.fail_nth_write(3);
        let results: Vec<bool> = (0..5).map(|_| f.before_write().is_ok()).collect();
        assert_eq!(results, [true, true, false, true, true]);
        f.fail_nth_write(1);
        f.clear();
        assert!(f.before_write().is_ok(), "cleared");
    }
}
