//! `wlnode peer block|unblock`: quarantine a neighbour at the transport level on the
//! running node (through the local API), e.g. while its operator investigates a
//! compromise. The block is stored and survives a restart.

use std::process::ExitCode;

use clap::Subcommand;
use wlnode_client::Client;
use wlnode_crypto::model::AgencyCode;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum PeerCommand {
    /// Refuse every connection to and from an agency's nodes and close the open ones.
    Block {
        /// The agency to block.
        agency: AgencyCode,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Lift a block; the node dials the agency again (if configured) and reconciles.
    Unblock {
        /// The agency to unblock.
        agency: AgencyCode,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `peer` subcommand.
pub async fn run(c: PeerCommand) -> anyhow::Result<ExitCode> {
    let (agency, config, json, block) = match c {
        PeerCommand::Block {
            agency,
            config,
            json,
        } => (agency, config, json, true),
        PeerCommand::Unblock {
            agency,
            config,
            json,
        } => (agency, config, json, false),
    };
    let client = Client::from_config(&config.for_client()?)?;
    let v = client.peer_block(&agency, block).await?;
    if json {
        print_json(&v)?;
    } else {
        let changed = v.get("changed").and_then(serde_json::Value::as_bool) == Some(true);
        let state = if block { "blocked" } else { "not blocked" };
        if changed {
            outln!("{agency}: {state}");
        } else {
            outln!("{agency}: already {state}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
