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
    /// When this node first accepted this roster (Unix ms): the start of the grace
    /// it gives neighbours for acks by keys this roster revokes (review s32-mail L6:
    /// kept in memory, the grace restarted at every restart). Absent in anchors
    /// written before; such an anchor reads as adopted at the first write after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    adopted_at: Option<u64>,
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

    /// The accepted roster's version and when this node first accepted it (Unix ms),
    /// if the anchor records it.
    pub fn roster_adopted(&self) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(bytes) = self.meta_get(meta::ROSTER_ANCHOR)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<AnchorDoc>(&bytes)
            .ok()
            .and_then(|d| Some((d.version, d.adopted_at?))))
    }

    /// Records `roster` as the accepted one. Accepting the same roster again (a
    /// restart, a reload of an unchanged file) keeps the time it was first accepted.
    pub fn set_roster_anchor(&self, roster: &Roster) -> Result<(), StoreError> {
        let hash = hex::encode(roster.hash());
        let kept = self
            .meta_get(meta::ROSTER_ANCHOR)?
            .and_then(|b| serde_json::from_slice::<AnchorDoc>(&b).ok())
            .filter(|d| d.version == roster.version() && d.hash == hash)
            .and_then(|d| d.adopted_at);
        let doc = AnchorDoc {
            authorities: roster.authorities().copied().collect(),
            federation: roster.federation().to_owned(),
            version: roster.version(),
            hash,
            adopted_at: Some(kept.unwrap_or_else(|| wlnode_crypto::Timestamp::now().as_millis())),
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| StoreError::Corrupt {
            tree: "meta",
            reason: e.to_string(),
        })?;
        self.meta_set(meta::ROSTER_ANCHOR, &bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// Review s32-mail L6: accepting the same roster again (as every start does)
    /// keeps the time it was first accepted; a new roster gets a new time.
    #[test]
    fn the_adoption_time_survives_accepting_the_same_roster_again() {
        use wlnode_crypto::{Roster, SecretKey};
        let roster = |version: u64| {
            Roster::parse(
                format!(
                    "federation = \"t\"\nversion = {version}\nissued_at = 2026-01-01T00:00:00Z\n\
                     [[authorities]]\nkey = \"{auth}\"\n",
                    auth = SecretKey::from_seed(&[1; 32]).public_key(),
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let store = crate::Store::open(dir.path()).unwrap();
        let v1 = roster(1);
        assert_eq!(store.roster_adopted().unwrap(), None);
        store.set_roster_anchor(&v1).unwrap();
        let (version, first) = store.roster_adopted().unwrap().unwrap();
        assert_eq!(version, 1);
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.set_roster_anchor(&v1).unwrap();
        drop(store);
        let store = crate::Store::open(dir.path()).unwrap();
        assert_eq!(store.roster_adopted().unwrap(), Some((1, first)));
        store.set_roster_anchor(&roster(2)).unwrap();
        let (version, second) = store.roster_adopted().unwrap().unwrap();
        assert_eq!(version, 2);
        assert!(second > first);
    }
}
