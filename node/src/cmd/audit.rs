//! `wlnode audit export|verify`: export a node's audit log; verify logs as an auditor
//! (exported files with `--logs`, or collected live over `/wlnode/audit/1` from the
//! auditor config's `[[peers]]`), with a JSON and an HTML report and a non-zero exit
//! code on any violation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use wlnode_audit::event::{ExportedLog, READABLE_EXPORT_FORMATS};
use wlnode_audit::verify::{AuditorState, Options, verify};
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_runtime::auditor::verify_live;
use wlnode_store::Store;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write this node's audit log, checkpoints and identity to a JSON file (the node
    /// must be stopped: the store is opened directly).
    Export {
        #[command(flatten)]
        config: ConfigArg,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the map from the log's pseudonymous user ids to this node's user
        /// names here, for the agency's own inspectors (a separate file: the log itself
        /// never carries names).
        #[arg(long)]
        user_names: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Verify logs against the roster and the auditor's previous state: the exported
    /// files given with `--logs`, or (without `--logs`) collected live from every
    /// `[[peers]]` node of the auditor config over the audit protocol, as the auditor's
    /// node identity; verified checkpoints are then cosigned.
    Verify {
        /// The auditor's node.toml (its roster, and its data dir for the auditor state).
        #[command(flatten)]
        config: ConfigArg,
        /// Exported logs (`wlnode audit export`), one per node. Without it, the logs are
        /// collected live (and saved under `<data_dir>/audit/<agency>.json`).
        #[arg(long, num_args = 1..)]
        logs: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Write the JSON report here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Seconds a send may stay without a receipt (in flight).
        #[arg(long, default_value_t = 120)]
        tolerance_secs: u64,
        /// Auditor state file (default: `<data_dir>/audit-state.json`).
        #[arg(long)]
        state: Option<PathBuf>,
        /// A node's latest signed checkpoint older than this (seconds, by this
        /// machine's clock) is reported stale. Default: 600 live (nodes sign a fresh
        /// one when asked), 86,400 for exported logs.
        #[arg(long)]
        max_checkpoint_age_secs: Option<u64>,
        /// Live: seconds one node's collection may take (each node is collected on its
        /// own connection, all at once).
        #[arg(long, default_value_t = 600)]
        node_timeout_secs: u64,
        /// Live: most events collected from one node in one run (held in memory).
        #[arg(long, default_value_t = 2_000_000)]
        max_events: u64,
    },
}

pub fn run(c: AuditCommand) -> anyhow::Result<ExitCode> {
    match c {
        AuditCommand::Export {
            config,
            out,
            user_names,
            json,
        } => {
            let cfg = config.load()?;
            let key = read_secret_key(&cfg.raw.node_key, KeyKind::Node)?;
            let store = Store::open(&cfg.raw.data_dir)?;
            let log = store.audit_export(cfg.agency(), &key.public_key().peer_id())?;
            std::fs::write(&out, serde_json::to_vec_pretty(&log)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            if let Some(p) = &user_names {
                use std::io::Write as _;
                use std::os::unix::fs::OpenOptionsExt as _;
                let names = wlnode_runtime::users::names_in(&store)?;
                // Names are the agency's own: readable by the owner only.
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(p)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                f.write_all(&serde_json::to_vec_pretty(&names)?)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            let summary = serde_json::json!({
                "agency": log.agency, "peer_id": log.peer_id, "events": log.events.len(),
                "checkpoints": log.checkpoints.len(), "out": out,
            });
            if json {
                print_json(&summary)?;
            } else {
                println!(
                    "exported {} events and {} checkpoints of {} to {}",
                    log.events.len(),
                    log.checkpoints.len(),
                    log.agency,
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            config,
            logs,
            json,
            out,
            html,
            tolerance_secs,
            state,
            max_checkpoint_age_secs,
            node_timeout_secs,
            max_events,
        } => {
            let cfg = config.load()?;
            let roster = super::policy::load_roster(&cfg, None)?;
            let state_path = state.unwrap_or_else(|| cfg.raw.data_dir.join("audit-state.json"));
            let prev: AuditorState = match std::fs::read(&state_path) {
                Ok(b) => serde_json::from_slice(&b)
                    .with_context(|| format!("auditor state {}", state_path.display()))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => AuditorState::default(),
                Err(e) => return Err(e).context(format!("cannot read {}", state_path.display())),
            };
            let live_default = if logs.is_empty() { 600 } else { 86_400 };
            let opts = Options {
                tolerance_ms: tolerance_secs.saturating_mul(1000),
                now_ms: Some(wlnode_crypto::Timestamp::now().as_millis()),
                max_checkpoint_age_ms: max_checkpoint_age_secs
                    .unwrap_or(live_default)
                    .saturating_mul(1000),
            };
            let limits = wlnode_runtime::auditor::LiveLimits {
                per_node: std::time::Duration::from_secs(node_timeout_secs),
                max_events,
            };
            let report = if logs.is_empty() {
                let key = read_secret_key(&cfg.raw.node_key, KeyKind::Node)?;
                if cfg.raw.peers.is_empty() {
                    bail!(
                        "no [[peers]] in {}: list every member node to audit live, or pass exported logs with --logs FILE...",
                        cfg.path.display()
                    );
                }
                let live = super::runtime()?
                    .block_on(verify_live(&cfg, &key, &roster, &prev, opts, limits))?;
                let dir = cfg.raw.data_dir.join("audit");
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                for log in &live.logs {
                    let p = dir.join(format!("{}.json", log.agency));
                    std::fs::write(&p, serde_json::to_vec_pretty(log)?)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                }
                if !json {
                    for (a, n) in &live.cosigned {
                        println!("{a}: checkpoint cosigned ({n} cosignature(s) held)");
                    }
                }
                live.report
            } else {
                let mut exported = Vec::new();
                for p in &logs {
                    let bytes =
                        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
                    let log: ExportedLog = serde_json::from_slice(&bytes)
                        .with_context(|| format!("{} is not an audit export", p.display()))?;
                    if !READABLE_EXPORT_FORMATS.contains(&log.format.as_str()) {
                        anyhow::bail!(
                            "{}: audit export format {:?} is not one this wlnode reads ({})",
                            p.display(),
                            log.format,
                            READABLE_EXPORT_FORMATS.join(", ")
                        );
                    }
                    exported.push(log);
                }
                verify(&roster, &exported, &prev, opts)
            };
            if let Some(dir) = state_path.parent() {
                std::fs::create_dir_all(dir).ok();
            }
            std::fs::write(&state_path, serde_json::to_vec_pretty(&report.state)?)
                .with_context(|| format!("cannot write {}", state_path.display()))?;
            if let Some(p) = &out {
                std::fs::write(p, serde_json::to_vec_pretty(&report)?)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            if let Some(p) = &html {
                let now = wlnode_crypto::Timestamp::now();
                let page =
                    wlnode_audit::html::render(&report, &format!("{} (Unix ms)", now.as_millis()));
                std::fs::write(p, page).with_context(|| format!("cannot write {}", p.display()))?;
            }
            if json {
                print_json(&report)?;
            } else {
                for n in &report.nodes {
                    println!(
                        "{}: {} events, {}/{} checkpoints verified, {} violation(s)",
                        n.agency, n.events, n.checkpoints_verified, n.checkpoints, n.violations
                    );
                }
                for v in &report.violations {
                    println!("VIOLATION {} at {}: {}", v.kind, v.node, v.detail);
                }
                println!(
                    "{}",
                    if report.ok {
                        "audit passed"
                    } else {
                        "audit FAILED"
                    }
                );
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
