//! The identity of an entry: its origin and its origin-chosen id.

use serde::Serialize;
use wlnode_crypto::model::{AgencyCode, EntryId};

/// `(origin, entry_id)`: the identity of an entry. An entry id alone is random, but a
/// member could reuse another's, so the store, the screening index and the API all key
/// entries by the pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EntryKey {
    /// The origin-chosen id.
    pub entry_id: EntryId,
    /// The origin agency.
    pub origin: AgencyCode,
}

impl EntryKey {
    /// Key bytes: entry_id ‖ origin.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(16 + self.origin.as_str().len());
        k.extend_from_slice(&self.entry_id.0);
        k.extend_from_slice(self.origin.as_str().as_bytes());
        k
    }

    /// Parses key bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let (id, origin) = b.split_at_checked(16)?;
        Some(Self {
            entry_id: EntryId::from_slice(id).ok()?,
            origin: AgencyCode::new(std::str::from_utf8(origin).ok()?).ok()?,
        })
    }
}
