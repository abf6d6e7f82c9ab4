//! Loading the roster at startup against the node's trust anchor.
//!
//! The anchor (trusted authority keys and the last accepted roster's federation,
//! version and hash) is persisted in the store, so a node refuses an older roster even
//! after a restart. Keys listed in `roster_authorities` in node.toml override the
//! pinned set; with neither, the first roster's authorities are pinned (trust on first
//! use) and the node logs a warning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wlnode_crypto::PublicKey;
use wlnode_crypto::roster::{Roster, RosterError, RosterSignature, TrustAnchor, verify_roster};

use crate::store::schema::meta;
use crate::store::{Store, StoreError};

/// Why the roster could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A roster file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The roster was refused.
    #[error("roster {path} refused: {source}")]
    Refused {
        /// The roster file.
        path: PathBuf,
        /// Why.
        source: RosterError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize, Deserialize)]
struct AnchorDoc {
    authorities: Vec<PublicKey>,
    federation: String,
    version: u64,
    hash: String,
}

/// Reads the stored anchor.
pub fn stored_anchor(store: &Store) -> Result<Option<TrustAnchor>, StoreError> {
    let Some(bytes) = store.meta_get(meta::ROSTER_ANCHOR)? else {
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

/// Reads a roster and its `.sig` from disk.
pub fn read_signed(path: &Path) -> Result<(Vec<u8>, RosterSignature), TrustError> {
    let bytes = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    let sig_path = PathBuf::from(sig_path);
    let sig_text = std::fs::read_to_string(&sig_path).map_err(|source| TrustError::Read {
        path: sig_path.clone(),
        source,
    })?;
    let sig = RosterSignature::parse(&sig_text).map_err(|source| TrustError::Refused {
        path: path.to_owned(),
        source,
    })?;
    Ok((bytes, sig))
}

/// The outcome of loading the roster.
#[derive(Debug)]
pub struct Loaded {
    /// The verified roster.
    pub roster: Roster,
    /// The authorities were pinned now, on first use.
    pub trust_on_first_use: bool,
}

/// Verifies the roster at `path` against the stored anchor and `configured` authority
/// keys, and persists the new anchor.
pub fn load_roster(
    store: &Store,
    path: &Path,
    configured: &[PublicKey],
) -> Result<Loaded, TrustError> {
    let (bytes, sig) = read_signed(path)?;
    let mut anchor = stored_anchor(store)?.unwrap_or_default();
    if !configured.is_empty() {
        anchor.authorities = configured.to_vec();
    }
    let trust_on_first_use = anchor.authorities.is_empty();
    let roster = verify_roster(&bytes, &sig, &anchor).map_err(|source| TrustError::Refused {
        path: path.to_owned(),
        source,
    })?;
    persist(store, &roster)?;
    Ok(Loaded {
        roster,
        trust_on_first_use,
    })
}

/// Records `roster` as the accepted one.
pub fn persist(store: &Store, roster: &Roster) -> Result<(), StoreError> {
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
    store.meta_set(meta::ROSTER_ANCHOR, &bytes)
}
