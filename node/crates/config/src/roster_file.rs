//! Reading a roster file and its detached signature (`roster.toml.sig`) from disk.
//! Verifying them against a trust anchor is `wlnode_crypto::roster`'s job; pinning the
//! anchor is the node runtime's.

use std::path::{Path, PathBuf};

use wlnode_crypto::roster::{RosterError, RosterSignature};

/// Why a roster file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RosterFileError {
    /// A roster file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The signature file does not parse.
    #[error("roster {path} refused: {source}")]
    Refused {
        /// The roster file.
        path: PathBuf,
        /// Why.
        source: RosterError,
    },
}

/// The `.sig` file next to a roster.
pub fn sig_path(path: &Path) -> PathBuf {
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".sig");
    PathBuf::from(sig_path)
}

/// Reads a roster and its `.sig` from disk.
pub fn read_signed(path: &Path) -> Result<(Vec<u8>, RosterSignature), RosterFileError> {
    let bytes = std::fs::read(path).map_err(|source| RosterFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    let sig_path = sig_path(path);
    let sig_text = std::fs::read_to_string(&sig_path).map_err(|source| RosterFileError::Read {
        path: sig_path.clone(),
        source,
    })?;
    let sig = RosterSignature::parse(&sig_text).map_err(|source| RosterFileError::Refused {
        path: path.to_owned(),
        source,
    })?;
    Ok((bytes, sig))
}
