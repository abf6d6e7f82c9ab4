//! The hold on local writes after a restore or a recovery reopen.
//!
//! A restored store, or one reopened after a disk error, may lack records this node
//! signed and already served: the backup is older, or sled dropped a batch whose flush
//! failed. Peers hold those records. Amending an entry before they come back would
//! sign a second record for a version that peers already hold: equivocation by an
//! honest node. So the store remembers since when local writes to existing entries
//! are held (`meta/local_writes_held`, ms since the epoch); the runtime releases the
//! hold once it has reconciled with every configured peer, and an officer may force a
//! write before that.

use crate::schema::meta;
use crate::{Store, StoreError};

impl Store {
    /// Holds local writes to existing entries from `since_ms` on. A hold already in
    /// force starts again then: a session that began before this loss may not have
    /// brought back what it lost.
    pub fn hold_local_writes(&self, since_ms: u64) -> Result<(), StoreError> {
        let since = self
            .local_writes_held()?
            .map_or(since_ms, |s| s.max(since_ms));
        self.meta_set(meta::LOCAL_WRITES_HELD, &since.to_be_bytes())
    }

    /// Since when local writes are held, if they are.
    pub fn local_writes_held(&self) -> Result<Option<u64>, StoreError> {
        match self.meta_get(meta::LOCAL_WRITES_HELD)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] = v.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "meta",
                    reason: "local_writes_held is not 8 bytes".into(),
                })?;
                Ok(Some(u64::from_be_bytes(b)))
            }
        }
    }

    /// Releases the hold that began at `since_ms` (a hold begun later, by another
    /// restore or reopen, stays). Returns whether it was released.
    pub fn release_local_writes(&self, since_ms: u64) -> Result<bool, StoreError> {
        if self.local_writes_held()? != Some(since_ms) {
            return Ok(false);
        }
        self.before_write()?;
        self.write_result(self.t.meta.remove(meta::LOCAL_WRITES_HELD).map(|_| ()))?;
        self.write_result(self.db.flush().map(|_| ()))?;
        Ok(true)
    }
}
