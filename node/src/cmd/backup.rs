//! `wlnode backup` and `wlnode restore`.
//!
//! Backup asks the running node for a snapshot over the API (the store actor takes it
//! consistently while the node keeps running); when no node answers, it opens the
//! store itself. The file is written next to `--out`, checked end to end, and only
//! then renamed into place. Restore validates the file before it touches the data dir.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use wlnode_client::{Client, ClientError};
use wlnode_store::backup::{self, BackupSummary};
use wlnode_store::{Store, StoreError};

use super::{ConfigArg, print_json};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The backup file to write (must not exist).
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long)]
    from: PathBuf,
    /// The data dir to restore into: missing or empty, unless --force.
    #[arg(long)]
    data_dir: PathBuf,
    /// Replace the store in an existing data dir (the node must be stopped).
    #[arg(long)]
    force: bool,
    /// The engine of the restored store, sled or fjall (default: the replaced store's,
    /// or sled). Backups do not depend on the engine.
    #[arg(long)]
    engine: Option<wlnode_store::EngineKind>,
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Output<'a> {
    file: &'a Path,
    /// `api` (taken by the running node) or `offline` (store opened directly).
    via: &'a str,
    #[serde(flatten)]
    summary: BackupSummary,
}

pub(super) fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

async fn via_api(cfg: &wlnode_config::Config, tmp: &Path) -> Result<(), ClientError> {
    let client = Client::from_config(cfg)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| ClientError::Setup(format!("cannot create {}: {e}", tmp.display())))?;
    let mut w = std::io::BufWriter::new(file);
    client.backup_to(&mut w).await?;
    let file = w
        .into_inner()
        .map_err(|e| ClientError::Setup(format!("cannot write {}: {e}", tmp.display())))?;
    file.sync_all()
        .map_err(|e| ClientError::Setup(format!("cannot write {}: {e}", tmp.display())))?;
    Ok(())
}

pub async fn backup(a: BackupArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.config.for_client()?;
    if a.out.exists() {
        bail!("{} exists already; choose a new file", a.out.display());
    }
    let tmp = partial_path(&a.out);
    let _ = std::fs::remove_file(&tmp);
    let via = match via_api(&cfg, &tmp).await {
        Ok(()) => "api",
        Err(api_err @ (ClientError::Connect { .. } | ClientError::Setup(_))) => {
            let _ = std::fs::remove_file(&tmp);
            // No node answers: take the backup from the store directly.
            let store = match Store::open(&cfg.raw.data_dir) {
                Ok(s) => s,
                Err(e @ StoreError::Locked { .. }) => {
                    bail!("{e}; but its API did not answer either: {api_err}")
                }
                Err(e) => return Err(e).context("no node answered and the store cannot be opened"),
            };
            store.backup_to_file(&tmp)?;
            "offline"
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).context("the node refused the backup");
        }
    };
    let summary = match backup::verify_backup(&tmp) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).context("the backup just written does not verify");
        }
    };
    std::fs::rename(&tmp, &a.out)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), a.out.display()))?;
    if a.json {
        print_json(&Output {
            file: &a.out,
            via,
            summary,
        })?;
    } else {
        outln!(
            "backup of {} written to {} ({} records, {} entries, {} bytes, via {via})",
            cfg.agency(),
            a.out.display(),
            summary.records,
            summary.entries,
            summary.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let summary = backup::restore_with(&a.from, &a.data_dir, a.force, a.engine)?;
    if a.json {
        print_json(&Output {
            file: &a.from,
            via: "restore",
            summary,
        })?;
    } else {
        outln!(
            "restored {} records and {} entries into {}; the node re-syncs from its peers when it starts",
            summary.records,
            summary.entries,
            a.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
