//! The API token file: a secret, so it is refused when group or others can read it.

use std::path::{Path, PathBuf};

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
#[error("token file {path}: {reason}")]
pub struct TokenError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Reads a secret token file, refusing group/other access like key files.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |reason: String| TokenError {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(read_err(format!(
            "mode {mode:o}: group and others must have no access (run: chmod 600 {})",
            path.display()
        )));
    }
    let token = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    let token = token.trim().to_owned();
    if token.len() < 16 {
        return Err(read_err("token must be at least 16 characters".into()));
    }
    Ok(token)
}
