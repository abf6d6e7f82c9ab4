//! `wlnode source list|run`: the running node's scheduled source lists
//! (`[[source]]` in node.toml), through the local API. The node does the fetching
//! and importing; these commands only ask and print.

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;
use wlnode_client::Client;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum SourceCommand {
    /// List the sources: origin, format, period, last success and outcome, next run.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Refresh one source now and print what happened (exit code 1 if it failed).
    Run {
        /// The source's name in node.toml.
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs a `source` subcommand.
pub async fn run(c: SourceCommand) -> anyhow::Result<ExitCode> {
    match c {
        SourceCommand::List { config, json } => {
            let v = Client::from_config(&config.for_client()?)?
                .sources()
                .await?;
            if json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            let list = v["sources"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                outln!("no [[source]] in the config");
            }
            for s in &list {
                outln!(
                    "{}  {} ({}, every {})\n  last success {}  last outcome {}{}  next run {}",
                    text(&s["name"]),
                    text(&s["origin"]),
                    text(&s["format"]),
                    text(&s["every"]),
                    text(&s["last_success"]),
                    text(&s["last_outcome"]),
                    s["last_error_class"]
                        .as_str()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    text(&s["next_run"]),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SourceCommand::Run { name, config, json } => {
            let r = Client::from_config(&config.for_client()?)?
                .source_run(&name)
                .await?;
            let failed = r["outcome"] == "failed";
            if json {
                print_json(&r)?;
            } else {
                let how = if r["not_modified"] == true {
                    " (not modified)"
                } else if r["same_file"] == true {
                    " (same file)"
                } else {
                    ""
                };
                outln!(
                    "{}: {}{how}: {} rows: {} added, {} amended, {} unchanged, {} failed, {} withdrawn",
                    text(&r["source"]),
                    text(&r["outcome"]),
                    text(&r["rows"]),
                    text(&r["added"]),
                    text(&r["amended"]),
                    text(&r["unchanged"]),
                    text(&r["failed"]),
                    text(&r["withdrawn"]),
                );
                if failed {
                    outln!("  {}: {}", text(&r["error_class"]), text(&r["error"]));
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
