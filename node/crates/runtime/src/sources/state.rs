//! What the node remembers of each source across restarts, in
//! `<data_dir>/sources.json`: the validators for the next conditional request, the
//! SHA-256 of the last file imported in full, the last outcome, and the withdrawal
//! guard's high-water mark of active entries. Only the sources
//! service reads and writes it (one owner), and it writes a new file and renames it
//! over the old one, so a crash leaves either version, never a torn one. A file that
//! does not read is logged and treated as empty: the cost is one full download.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wlnode_client::fetch::Validators;

/// One source's memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The origin and import settings this memory is for (a change forgets it).
    pub key: String,
    /// Validators of the last file imported in full.
    #[serde(default)]
    pub validators: Validators,
    /// SHA-256 (hex) of that file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Unix ms of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_ms: Option<u64>,
    /// Unix ms of the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_ms: Option<u64>,
    /// `updated`, `unchanged` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// The last failure's class, while the source fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_class: Option<String>,
    /// The withdrawal guard's high-water mark: the most active entries the source
    /// list had at the start or end of a successful refresh since this memory began
    /// (a settings change starts it afresh). It rises only on successful refreshes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<u64>,
}

/// The file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// By source name.
    pub sources: BTreeMap<String, Remembered>,
}

/// The state file of a data dir.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(wlnode_config::sources::SOURCES_STATE_FILE)
}

/// Reads the state file; a missing or unreadable one is empty (logged).
pub async fn load(file: &Path) -> StateFile {
    match tokio::fs::read(file).await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(file = %file.display(), error = %e, "source state does not read; starting afresh (full downloads)");
            StateFile::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile::default(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the source state; starting afresh (full downloads)");
            StateFile::default()
        }
    }
}

/// Writes the state file (new file, then rename).
pub async fn save(file: &Path, state: &StateFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
    let tmp = file.with_extension("json.tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, file).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_state_survives_a_round_trip_and_junk_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        assert_eq!(load(&file).await, StateFile::default());
        let mut s = StateFile::default();
        s.sources.insert(
            "un-sc".into(),
            Remembered {
                key: "https://x.example/l.xml".into(),
                validators: Validators {
                    etag: Some("\"v1\"".into()),
                    last_modified: None,
                },
                sha256: Some("ab".repeat(32)),
                last_success_ms: Some(5),
                high_water: Some(1000),
                ..Remembered::default()
            },
        );
        save(&file, &s).await.unwrap();
        assert_eq!(load(&file).await, s);
        tokio::fs::write(&file, b"{not json").await.unwrap();
        assert_eq!(load(&file).await, StateFile::default());
    }
}
