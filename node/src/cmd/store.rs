//! `wlnode store`: offline tools on a stopped node's data dir. `migrate` copies the
//! store onto another storage engine (see README "Storage engines").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use wlnode_store::EngineKind;
use wlnode_store::migrate::migrate;

use super::print_json;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy a stopped node's store into a new data dir on another engine, then check
    /// that every tree and count matches.
    Migrate(MigrateArgs),
}

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The stopped node's data dir.
    #[arg(long)]
    from: PathBuf,
    /// The new data dir (missing or empty).
    #[arg(long)]
    to: PathBuf,
    /// The engine of the new store: sled or fjall.
    #[arg(long)]
    engine: EngineKind,
    #[arg(long)]
    json: bool,
}

pub fn run(c: StoreCommand) -> anyhow::Result<ExitCode> {
    match c {
        StoreCommand::Migrate(a) => {
            let s = migrate(&a.from, &a.to, a.engine)?;
            if a.json {
                print_json(&s)?;
            } else {
                outln!(
                    "copied {} records and {} entries ({} pairs in {} trees) from {} ({}) to {} ({}); counts checked. Set [store] engine = \"{}\" and data_dir = {:?} in node.toml before starting the node",
                    s.counts.records,
                    s.counts.entries,
                    s.pairs.values().sum::<u64>(),
                    s.pairs.len(),
                    a.from.display(),
                    s.from_engine,
                    a.to.display(),
                    s.to_engine,
                    s.to_engine,
                    a.to.display().to_string(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
