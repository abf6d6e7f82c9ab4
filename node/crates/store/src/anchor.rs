//! The roster trust anchor, persisted: the trusted authority keys and the last
//! accepted roster's federation, version and hash, so that a node refuses an older
//! roster even after a restart. Deciding what to trust is the node runtime's job; this
//! only keeps the anchor it decided on.

use serde::{Deserialize, Serialize};
use wlnode_crypto::PublicKey;
use wlnode_crypto::roster::{Roster, TrustAnchor};

use crate::schema::meta;
use crate::{Store, StoreError};

#[derive(Serialize, Deserialize)]
struct AnchorDoc {
    authorities: Vec<PublicKey>,
    federation: String,
    version: u64,
    hash: String,
}

/// The roster version an anchor value names (`None` if it does not parse).
pub(crate) fn anchor_version(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<AnchorDoc>(bytes)
        .ok()
        .map(|d| d.version)
}

impl Store {
    /// The stored anchor, if a roster was ever accepted here.
    pub fn roster_anchor(&self) -> Result<Option<TrustAnchor>, StoreError> {
        let Some(bytes) = self.meta_get(meta::ROSTER_ANCHOR)? else {
            return Ok(None);
        };
        let doc: AnchorDoc = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            reason: format!("roster anchor: {e}"),
        })?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&doc.hash, &mut hash).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            reason: format!("roster anchor hash: {e}"),
        })?;
        Ok(Some(TrustAnchor {
            authorities: doc.authorities,
            accepted: Some((doc.federation, doc.version, hash)),
        }))
    }

    /// Records `roster` as the accepted one.
    pub fn set_roster_anchor(&self, roster: &Roster) -> Result<(), StoreError> {
        let doc = AnchorDoc {
            authorities: roster.authorities().copied().collect(),
            federation: roster.federation().to_owned(),
            version: roster.version(),
            hash: hex::encode(roster.hash()),
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            reason: e.to_string(),
        })?;
        self.meta_set(meta::ROSTER_ANCHOR, &bytes)
    }
}
