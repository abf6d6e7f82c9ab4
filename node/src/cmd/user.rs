//! `wlnode user add|list|disable|rotate`: the running node's users and roles, through
//! the local API (an admin's token). A new token is printed once; the node keeps only
//! its hash.

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use wlnode_client::Client;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user and print their API token (once).
    Add {
        /// The user's name (lower-case letters, digits, '.', '-', '_').
        name: String,
        /// A role: screener, editor, approver, consultant, admin or viewer (repeat for
        /// several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// List the users: name, pseudonymous id, roles, disabled.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their token is refused from now on.
    Disable {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Give a user a new token (printed once); the old one is refused from now on.
    Rotate {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

/// A user name, checked before it goes into a URL path.
fn name_arg(name: &str) -> anyhow::Result<&str> {
    wlnode_runtime::users::check_name(name).context("user name")?;
    Ok(name)
}

fn print_token(v: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(v);
    }
    outln!(
        "user {}  roles {}\ntoken {}\n(shown once: store it now; the node keeps only its hash)",
        v["user"].as_str().unwrap_or("?"),
        v["roles"],
        v["token"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// Runs a `user` subcommand.
pub async fn run(c: UserCommand) -> anyhow::Result<ExitCode> {
    match c {
        UserCommand::Add {
            name,
            roles,
            config,
            json,
        } => {
            let v: Value = client(&config)?
                .post_json(
                    "/v1/users",
                    &json!({"user": name_arg(&name)?, "roles": roles}),
                )
                .await?;
            print_token(&v, json)?;
        }
        UserCommand::List { config, json } => {
            let v: Value = client(&config)?.get_json("/v1/users").await?;
            if json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            for u in v.as_array().cloned().unwrap_or_default() {
                outln!(
                    "{}  {}  {}{}{}",
                    u["user"].as_str().unwrap_or("?"),
                    u["id"].as_str().unwrap_or("?"),
                    u["roles"],
                    if u["disabled"] == true {
                        "  DISABLED"
                    } else {
                        ""
                    },
                    if u["bootstrap"] == true {
                        "  (api.token_file)"
                    } else {
                        ""
                    }
                );
            }
        }
        UserCommand::Disable { name, config, json } => {
            let v: Value = client(&config)?
                .post_json(
                    &format!("/v1/users/{}/disable", name_arg(&name)?),
                    &json!({}),
                )
                .await?;
            if json {
                print_json(&v)?;
            } else {
                outln!("user {} disabled", v["user"].as_str().unwrap_or("?"));
            }
        }
        UserCommand::Rotate { name, config, json } => {
            let v: Value = client(&config)?
                .post_json(
                    &format!("/v1/users/{}/rotate", name_arg(&name)?),
                    &json!({}),
                )
                .await?;
            print_token(&v, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
