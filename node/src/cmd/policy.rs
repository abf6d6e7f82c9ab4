//! `wlnode policy check|explain|reload`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;
use wlnode_client::{Client, ClientError};
use wlnode_config::{Config, ConfigError};
use wlnode_crypto::model::{AgencyCode, EntryId};
use wlnode_crypto::roster::{Roster, TrustAnchor, verify_roster};
use wlnode_policy::{Policy, check};
use wlnode_store::Store;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a config's rules against the roster, with file:line errors and warnings.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Roster to check against (default: the config's roster).
        #[arg(long)]
        roster: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Explain whether an entry's head record would be sent to an agency, and how.
    Explain {
        #[command(flatten)]
        config: ConfigArg,
        /// Entry id.
        #[arg(long)]
        entry: String,
        /// Receiving agency.
        #[arg(long)]
        to: AgencyCode,
        /// Origin, when several agencies use the entry id.
        #[arg(long)]
        origin: Option<AgencyCode>,
        #[arg(long)]
        json: bool,
    },
    /// Ask the running node to reload its policy and roster (like SIGHUP).
    Reload {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn load_roster(cfg: &Config, path: Option<&PathBuf>) -> anyhow::Result<Roster> {
    let path = path.cloned().unwrap_or_else(|| cfg.raw.roster.clone());
    let (bytes, sig) = wlnode_config::roster_file::read_signed(&path)?;
    let anchor = TrustAnchor {
        authorities: cfg.raw.roster_authorities.clone(),
        accepted: None,
    };
    verify_roster(&bytes, &sig, &anchor).with_context(|| format!("roster {}", path.display()))
}

#[derive(Serialize)]
struct CheckOutput {
    valid: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
}

fn print_explanation(v: &serde_json::Value) -> anyhow::Result<()> {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    outln!(
        "entry {} (origin {}, version {}) to {}: {}",
        s("entry_id"),
        s("origin"),
        v.get("version").cloned().unwrap_or_default(),
        s("to"),
        s("decision").to_uppercase()
    );
    if let Some(d) = v.get("distribution") {
        outln!(
            "  distribution: {} ({})",
            if d.get("allowed").and_then(|a| a.as_bool()) == Some(true) {
                "allows"
            } else {
                "DENIES"
            },
            d.get("detail").and_then(|x| x.as_str()).unwrap_or("")
        );
    }
    outln!("  reason: {}", s("reason"));
    if let Some(w) = v.get("withheld_fields").and_then(|w| w.as_array())
        && !w.is_empty()
    {
        outln!(
            "  withheld: {}",
            w.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(f) = v.get("field_scopes").and_then(|f| f.as_array()) {
        for scope in f {
            let to: Vec<&str> = scope
                .get("to")
                .and_then(|t| t.as_array())
                .map(|t| t.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            outln!(
                "  field scope (signed by the origin): {} only to [{}]: {}",
                scope.get("field").and_then(|x| x.as_str()).unwrap_or(""),
                to.join(", "),
                if scope.get("admitted").and_then(serde_json::Value::as_bool) == Some(true) {
                    "admitted"
                } else {
                    "WITHHELD"
                }
            );
        }
    }
    if let Some(m) = v.get("unmatched_rules").and_then(|m| m.as_array()) {
        for r in m {
            outln!(
                "  share rule #{} did not match: {}",
                r.get("rule").cloned().unwrap_or_default(),
                r.get("condition").and_then(|c| c.as_str()).unwrap_or("")
            );
        }
    }
    Ok(())
}

async fn explain_offline(
    cfg: &Config,
    entry: &str,
    to: &AgencyCode,
    origin: Option<&AgencyCode>,
) -> anyhow::Result<serde_json::Value> {
    let roster = Arc::new(load_roster(cfg, None)?);
    let (policy, _) = Policy::from_config(cfg, roster.clone()).map_err(|errs| {
        anyhow::anyhow!(
            "invalid policy: {}",
            errs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    if roster.member(to).is_none() {
        bail!("{to} is not in the roster");
    }
    let id = EntryId::from_hex(entry).map_err(|e| anyhow::anyhow!("--entry: {e}"))?;
    let store = Store::open(&cfg.raw.data_dir)
        .context("offline explain needs the node stopped (its store is locked)")?;
    let mut found = store.entries_by_id(&id)?;
    if let Some(o) = origin {
        found.retain(|(k, _)| k.origin == *o);
    }
    found.sort_by_key(|(k, _)| k.origin != *cfg.agency());
    let (key, st) = found
        .into_iter()
        .next()
        .with_context(|| format!("entry {entry} not found"))?;
    let rec = store.record(&st.head)?.context("head record missing")?;
    let e = policy.explain(&rec, to);
    let mut v = serde_json::to_value(&e)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("entry_id".into(), key.entry_id.to_hex().into());
        o.insert("origin".into(), key.origin.to_string().into());
        o.insert("record_id".into(), st.head.to_hex().into());
        o.insert("version".into(), st.version.into());
        o.insert("to".into(), to.to_string().into());
        o.insert("offline".into(), true.into());
    }
    Ok(v)
}

pub async fn run(c: PolicyCommand) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Check {
            config,
            roster,
            json,
        } => {
            let cfg = match config.load() {
                Ok(c) => c,
                Err(e) => {
                    if json {
                        print_json(&CheckOutput {
                            valid: false,
                            errors: vec![e.to_string()],
                            warnings: vec![],
                        })?;
                        return Ok(ExitCode::FAILURE);
                    }
                    return Err(e);
                }
            };
            let roster = load_roster(&cfg, roster.as_ref())?;
            let report = check::check(&cfg, &roster);
            let out = CheckOutput {
                valid: report.errors.is_empty(),
                errors: report.errors.iter().map(ConfigError::to_string).collect(),
                warnings: report.warnings.iter().map(ConfigError::to_string).collect(),
            };
            if json {
                print_json(&out)?;
            } else {
                for e in &out.errors {
                    outln!("error: {e}");
                }
                for w in &out.warnings {
                    outln!("warning: {w}");
                }
                outln!(
                    "{}: {} error(s), {} warning(s)",
                    cfg.path.display(),
                    out.errors.len(),
                    out.warnings.len()
                );
            }
            Ok(if out.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCommand::Explain {
            config,
            entry,
            to,
            origin,
            json,
        } => {
            let cfg = config.for_client()?;
            let online = match Client::from_config(&cfg) {
                Ok(client) => {
                    let mut path = format!("/v1/policy/explain?entry={entry}&to={to}");
                    if let Some(o) = &origin {
                        path.push_str(&format!("&origin={o}"));
                    }
                    match client.get_json::<serde_json::Value>(&path).await {
                        Ok(v) => Some(v),
                        Err(ClientError::Connect { .. }) => None,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(_) => None,
            };
            let v = match online {
                Some(v) => v,
                None => explain_offline(&cfg, &entry, &to, origin.as_ref()).await?,
            };
            if json {
                print_json(&v)?;
            } else {
                print_explanation(&v)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Reload { config, json } => {
            let client = Client::from_config(&config.for_client()?)?;
            let v: serde_json::Value = client
                .post_json("/v1/policy/reload", &serde_json::json!({}))
                .await?;
            if json {
                print_json(&v)?;
            } else {
                outln!(
                    "reloaded: policy {} ({}), roster version {} ({})",
                    v.get("policy_hash").and_then(|x| x.as_str()).unwrap_or(""),
                    if v.get("policy_changed").and_then(|x| x.as_bool()) == Some(true) {
                        "changed"
                    } else {
                        "unchanged"
                    },
                    v.get("roster_version").cloned().unwrap_or_default(),
                    if v.get("roster_changed").and_then(|x| x.as_bool()) == Some(true) {
                        "changed"
                    } else {
                        "unchanged"
                    },
                );
                for w in v
                    .get("warnings")
                    .and_then(|w| w.as_array())
                    .into_iter()
                    .flatten()
                {
                    outln!("warning: {}", w.as_str().unwrap_or(""));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
