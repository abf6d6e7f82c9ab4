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
    /// Print a batch's rows as uploaded (JSON), page by page.
    Rows {
        batch_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long, default_value_t = 100)]
        limit: usize,
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
    /// Refuse a batch (an approver), or abandon your own (its author): nothing is
    /// written and its rows are dropped.
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

/// A string from the node as a terminal line: control characters (escape sequences,
/// line breaks) are shown escaped, so a row cannot rewrite what the approver reads.
fn clean(v: &serde_json::Value) -> String {
    let s = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A batch's summary as an approver reads it.
pub fn describe(b: &serde_json::Value) -> String {
    let mut out = format!(
        "{} ({} rows, by {}, {}){}",
        clean(&b["source_list"]),
        b["rows"],
        clean(&b["author_name"]),
        clean(&b["state"]),
        if b["withdraw_missing"].as_bool() == Some(true) {
            ", full list: entries missing from it are withdrawn"
        } else {
            ""
        }
    );
    let s = &b["summary"];
    if s.is_object() {
        out.push_str(&format!(
            "\n  would write: {} new, {} amended ({} reinstated, {} with a new distribution), {} withdrawn; {} unchanged, {} refused\n  amended parts: {}\n  plan {}\n  content sha256 {}",
            s["new"],
            s["amended"],
            s["reinstated"],
            s["distribution_changed"],
            s["withdrawn"],
            s["unchanged"],
            s["failed"],
            clean(&s["changed_parts"]),
            clean(&s["plan_digest"]),
            clean(&s["content_digest"]),
        ));
        for c in s["distribution_changes"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "\n    DISTRIBUTION {} {} {}: {} -> {}",
                clean(&c["entry_id"]),
                clean(&c["source_id"]),
                clean(&c["name"]),
                clean(&c["before"]),
                clean(&c["after"]),
            ));
        }
        for (key, label) in [
            ("sample_new", "new"),
            ("sample_amended", "amended"),
            ("sample_withdrawn", "withdrawn"),
            ("sample_failed", "refused"),
        ] {
            for r in s[key].as_array().into_iter().flatten() {
                let mut line = format!(
                    "\n    {label:9} {} {} {}",
                    clean(&r["entry_id"]),
                    clean(&r["source_id"]),
                    clean(&r["name"]),
                );
                if let Some(c) = r["changes"].as_array() {
                    line.push_str(&format!(
                        " [{}]",
                        c.iter().map(clean).collect::<Vec<_>>().join(", ")
                    ));
                }
                if !r["error"].is_null() {
                    line.push_str(&format!(": {}", clean(&r["error"])));
                }
                out.push_str(&line);
            }
        }
        out.push_str("\n  every row: wlnode import-batch rows ID --json");
    }
    if !b["last_error"].is_null() {
        out.push_str(&format!(
            "\n  last release attempt stopped: {}",
            clean(&b["last_error"])
        ));
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
                    outln!("{}  {}", b["batch_id"].as_str().unwrap_or("?"), describe(b));
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
                outln!("{}  {}", id, describe(&v));
            }
        }
        ImportBatchCommand::Rows {
            batch_id: id,
            config,
            offset,
            limit,
        } => {
            let v: serde_json::Value = client(&config)?
                .get_json(&format!(
                    "/v1/import-batches/{}/rows?offset={offset}&limit={limit}",
                    batch_id(&id)?
                ))
                .await?;
            print_json(&v)?;
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
                outln!("{}  {}", id, describe(&v));
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
                outln!("rejected import batch {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
