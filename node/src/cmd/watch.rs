//! `wlnode watch add|list|remove`: watched parties on the running node, through the
//! local API (a `screener`'s token to add or remove). When a new or amended entry
//! matches a watch, the node raises a `watch_hit` event (`GET /v1/events`, webhooks).

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::{Value, json};
use wlnode_client::Client;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Watch a party: raise a notification when a new or amended entry matches it.
    Add {
        /// The party's name.
        #[arg(long)]
        name: String,
        /// ISO country code.
        #[arg(long)]
        country: Option<String>,
        /// Birth or incorporation date (YYYY, YYYY-MM or YYYY-MM-DD).
        #[arg(long)]
        dob: Option<String>,
        /// Your reference (licence file, shipment).
        #[arg(long = "ref")]
        reference: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// List the watches.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Remove a watch.
    Remove {
        /// The watch id.
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

/// Runs a `watch` subcommand.
pub async fn run(c: WatchCommand) -> anyhow::Result<ExitCode> {
    match c {
        WatchCommand::Add {
            name,
            country,
            dob,
            reference,
            config,
            json,
        } => {
            let v: Value = client(&config)?
                .post_json(
                    "/v1/watches",
                    &json!({"name": name, "country": country, "dob": dob, "ref": reference}),
                )
                .await?;
            if json {
                print_json(&json!({"watch_id": v["watch_id"]}))?;
            } else {
                outln!("watch {}", v["watch_id"].as_str().unwrap_or("?"));
            }
        }
        WatchCommand::List { config, json } => {
            let v: Value = client(&config)?.get_json("/v1/watches").await?;
            if json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            for w in v.as_array().cloned().unwrap_or_default() {
                outln!(
                    "{}  {}{}{}{}  by {}",
                    w["watch_id"].as_str().unwrap_or("?"),
                    w["name"].as_str().unwrap_or("?"),
                    w["country"]
                        .as_str()
                        .map(|c| format!("  country {c}"))
                        .unwrap_or_default(),
                    w["dob"]
                        .as_str()
                        .map(|d| format!("  dob {d}"))
                        .unwrap_or_default(),
                    w["ref"]
                        .as_str()
                        .map(|r| format!("  ref {r}"))
                        .unwrap_or_default(),
                    w["created_by_name"].as_str().unwrap_or("?"),
                );
            }
        }
        WatchCommand::Remove { id, config, json } => {
            anyhow::ensure!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id:?} is not a watch id (32 hex digits)"
            );
            let v: Value = client(&config)?
                .delete_json(&format!("/v1/watches/{id}"))
                .await?;
            if json {
                print_json(&v)?;
            } else {
                outln!("watch {} removed", v["watch_id"].as_str().unwrap_or("?"));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
