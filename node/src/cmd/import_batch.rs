//! `wlnode import-batch list|show|approve|reject`: the approver's side of four-eyes
//! imports. `wlnode import` uploads a list as a batch when the node holds imports for
//! approval; these commands read its summary and release or refuse it.

use std::process::ExitCode;

use anyhow::bail;
use wlnode_client::Client;

use super::{ConfigArg, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum ImportBatchCommand {
    /// List import batches (default: those awaiting approval; --all for every kept one).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show a batch with the summary of what releasing it would change.
    Show {
        batch_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Approve and release a batch as you (not its author). Names the plan digest of the
    /// summary you reviewed (`show` prints it); the node refuses if the plan changed.
    Approve {
        batch_id: String,
        #[command(flatten)]
        config: ConfigArg,
        /// The summary's plan digest, as `show` printed it.
        #[arg(long)]
        plan: String,
        #[arg(long)]
        json: bool,
    },
    /// Refuse a batch: nothing is written and its rows are dropped.
    Reject {
        batch_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
}

/// A batch id, checked before it goes into a URL path.
fn batch_id(id: &str) -> anyhow::Result<&str> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        bail!("{id:?} is not an import batch id (32 hex digits)")
    }
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

/// A batch's summary as an approver reads it.
pub fn describe(b: &serde_json::Value) -> String {
    let mut out = format!(
        "{} ({} rows, by {}, {}){}",
        b["source_list"].as_str().unwrap_or("?"),
        b["rows"],
        b["author_name"].as_str().unwrap_or("?"),
        b["state"].as_str().unwrap_or("?"),
        if b["withdraw_missing"].as_bool() == Some(true) {
            ", full list: entries missing from it are withdrawn"
        } else {
            ""
        }
    );
    let s = &b["summary"];
    if s.is_object() {
        out.push_str(&format!(
            "\n  would write: {} new, {} amended, {} withdrawn; {} unchanged, {} refused\n  plan {}\n  content sha256 {}",
            s["new"], s["amended"], s["withdrawn"], s["unchanged"], s["failed"],
            s["plan_digest"].as_str().unwrap_or("?"),
            s["content_digest"].as_str().unwrap_or("?"),
        ));
        for (key, label) in [
            ("sample_new", "new"),
            ("sample_amended", "amended"),
            ("sample_withdrawn", "withdrawn"),
            ("sample_failed", "refused"),
        ] {
            for r in s[key].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n    {label:9} {} {} {}{}",
                    r["entry_id"].as_str().unwrap_or(""),
                    r["source_id"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    r["error"]
                        .as_str()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if let Some(e) = b["last_error"].as_str() {
        out.push_str(&format!("\n  last release attempt stopped: {e}"));
    }
    if let Some(r) = b["result"].as_object() {
        out.push_str(&format!(
            "\n  released: {} imported, {} amended, {} withdrawn, {} unchanged, {} refused",
            r["imported"], r["amended"], r["withdrawn"], r["unchanged"], r["failed"]
        ));
    }
    out
}

pub async fn run(c: ImportBatchCommand) -> anyhow::Result<ExitCode> {
    match c {
        ImportBatchCommand::List { config, all, json } => {
            let path = if all {
                "/v1/import-batches".to_owned()
            } else {
                "/v1/import-batches?state=awaiting_approval".to_owned()
            };
            let v: serde_json::Value = client(&config)?.get_json(&path).await?;
            if json {
                print_json(&v)?;
            } else {
                for b in v.as_array().into_iter().flatten() {
                    println!("{}  {}", b["batch_id"].as_str().unwrap_or("?"), describe(b));
                }
            }
        }
        ImportBatchCommand::Show {
            batch_id: id,
            config,
            json,
        } => {
            let v: serde_json::Value = client(&config)?
                .get_json(&format!("/v1/import-batches/{}", batch_id(&id)?))
                .await?;
            if json {
                print_json(&v)?;
            } else {
                println!("{}  {}", id, describe(&v));
            }
        }
        ImportBatchCommand::Approve {
            batch_id: id,
            config,
            plan,
            json,
        } => {
            let v: serde_json::Value = client(&config)?
                .post_json(
                    &format!("/v1/import-batches/{}/approve", batch_id(&id)?),
                    &serde_json::json!({ "plan_digest": plan }),
                )
                .await?;
            if json {
                print_json(&v)?;
            } else {
                println!("{}  {}", id, describe(&v));
            }
        }
        ImportBatchCommand::Reject {
            batch_id: id,
            config,
            reason,
            json,
        } => {
            let v: serde_json::Value = client(&config)?
                .post_json(
                    &format!("/v1/import-batches/{}/reject", batch_id(&id)?),
                    &serde_json::json!({ "reason": reason }),
                )
                .await?;
            if json {
                print_json(&v)?;
            } else {
                println!("rejected import batch {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
