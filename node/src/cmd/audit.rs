//! `wlnode audit export|verify`: export a node's audit log; verify logs as an auditor
//! (exported files with `--logs`, or collected live over `/wlnode/audit/1` from the
//! auditor config's `[[peers]]`), with a JSON and an HTML report and a non-zero exit
//! code on any violation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use wlnode_audit::event::{ExportedLog, READABLE_EXPORT_FORMATS};
use wlnode_audit::verify::{AuditorState, Options, verify};
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_runtime::auditor::verify_live;
use wlnode_store::Store;

use super::{ConfigFileArg, print_json};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write this node's audit log, checkpoints and identity to a JSON file (the node
    /// must be stopped: the store is opened directly).
    Export {
        #[command(flatten)]
        config: ConfigFileArg,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the map from the log's pseudonymous user ids to this node's user
        /// names here, for the agency's own inspectors (a separate file: the log itself
        /// never carries names).
        #[arg(long)]
        user_names: Option<PathBuf>,
        /// Replace `--out` (and `--user-names`) when they exist. Without it an existing
        /// file is refused: an export kept as evidence is never overwritten by mistake.
        #[arg(long)]
        force: bool,
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
        config: ConfigFileArg,
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
        /// Do not exit: serve the report as a read-only page at this address (e.g.
        /// `127.0.0.1:8090`; reach it over SSH or behind an authenticating proxy, as
        /// the page has no log-in) and verify again every `--every`, or at once when
        /// "re-verify now" is pressed. Each run writes the state, `--out` and `--html`
        /// as a single run does.
        #[arg(long, value_name = "ADDR")]
        serve: Option<std::net::SocketAddr>,
        /// With `--serve`: the time between verifications (e.g. `60s`, `10m`).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "serve")]
        every: std::time::Duration,
        /// With `--serve`: a host name the page answers to besides IP addresses and
        /// `localhost` (a proxy's public name); others get 421 (against DNS
        /// rebinding). Repeatable.
        #[arg(long, value_name = "NAME", requires = "serve")]
        host_name: Vec<String>,
    },
}

/// What one verification reads and writes (the inputs of `audit verify`).
struct VerifyJob {
    cfg: wlnode_config::Config,
    logs: Vec<PathBuf>,
    out: Option<PathBuf>,
    html: Option<PathBuf>,
    state_path: PathBuf,
    tolerance_secs: u64,
    max_checkpoint_age_secs: Option<u64>,
    limits: wlnode_runtime::auditor::LiveLimits,
    /// Print progress lines (not with `--json`).
    chatty: bool,
}

impl VerifyJob {
    /// Runs one verification: reads the roster and the auditor state, verifies the
    /// exported logs (or collects them live), writes the state, the JSON and HTML
    /// reports.
    async fn run(&self) -> anyhow::Result<wlnode_audit::verify::Report> {
        let cfg = &self.cfg;
        let roster = super::policy::load_roster(cfg, None)?;
        wlnode_audit::verify::auditor_may_use(&roster)?;
        let state_path = &self.state_path;
        let prev: AuditorState = match std::fs::read(state_path) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("auditor state {}", state_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AuditorState::default(),
            Err(e) => return Err(e).context(format!("cannot read {}", state_path.display())),
        };
        let logs = &self.logs;
        let live_default = if logs.is_empty() { 600 } else { 86_400 };
        let opts = Options {
            tolerance_ms: self.tolerance_secs.saturating_mul(1000),
            now_ms: Some(wlnode_crypto::Timestamp::now().as_millis()),
            max_checkpoint_age_ms: self
                .max_checkpoint_age_secs
                .unwrap_or(live_default)
                .saturating_mul(1000),
        };
        let report = if logs.is_empty() {
            let key = read_secret_key(&cfg.raw.node_key, KeyKind::Node)?;
            if cfg.raw.peers.is_empty() {
                bail!(
                    "no [[peers]] in {}: list every member node to audit live, or pass exported logs with --logs FILE...",
                    cfg.path.display()
                );
            }
            let live = verify_live(cfg, &key, &roster, &prev, opts, self.limits).await?;
            let dir = cfg.raw.data_dir.join("audit");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for log in &live.logs {
                let p = dir.join(format!("{}.json", log.agency));
                std::fs::write(&p, serde_json::to_vec_pretty(log)?)
                    .with_context(|| format!("cannot write {}", p.display()))?;
            }
            if self.chatty {
                for (a, n) in &live.cosigned {
                    outln!("{a}: checkpoint cosigned ({n} cosignature(s) held)");
                }
            }
            live.report
        } else {
            let mut exported = Vec::new();
            for p in logs {
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
        std::fs::write(state_path, serde_json::to_vec_pretty(&report.state)?)
            .with_context(|| format!("cannot write {}", state_path.display()))?;
        if let Some(p) = &self.out {
            std::fs::write(p, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
        }
        if let Some(p) = &self.html {
            let now = wlnode_crypto::Timestamp::now();
            let page = wlnode_audit::html::render(
                &report,
                &format!("{} (Unix ms)", now.as_millis()),
                // The console's catalogue holds the report's words (English).
                &wlnode_api::console::text::EN.report,
            );
            std::fs::write(p, page).with_context(|| format!("cannot write {}", p.display()))?;
        }
        Ok(report)
    }
}

/// `audit verify --serve`: the auditor's page at `addr`, verified by one task every
/// `every` (see `wlnode_api::console::auditor`), until Ctrl-C or SIGTERM.
fn serve(
    job: VerifyJob,
    addr: std::net::SocketAddr,
    every: std::time::Duration,
    host_names: Vec<String>,
) -> anyhow::Result<ExitCode> {
    use wlnode_api::console::auditor::{AuditorPage, Verification, VerificationFailed};
    let job = std::sync::Arc::new(job);
    super::runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        if !bound.ip().is_loopback() {
            errln!(
                "warning: the auditor's page has no log-in and {bound} is not a loopback address: anyone who reaches it reads the report"
            );
        }
        let page = AuditorPage::new(every, host_names)?;
        // The line a script (and the test) reads the address from.
        outln!("auditor page at http://{bound}/ (verifying every {})", humantime::format_duration(every));
        let verifier = Box::new(move || -> Verification {
            let job = job.clone();
            Box::pin(async move {
                // Exported logs are parsed and verified on a blocking thread.
                let j = job.clone();
                let r = if job.logs.is_empty() {
                    job.run().await
                } else {
                    tokio::task::spawn_blocking(move || {
                        futures::executor::block_on(j.run())
                    })
                    .await?
                };
                r.map_err(|e| VerificationFailed::Verify(e.into()))
            })
        });
        let verifying = tokio::spawn(page.clone().run(verifier, |r| match r {
            // The page keeps serving when nobody reads our output any more.
            Ok(rep) => drop(std::io::Write::write_fmt(
                &mut super::stdout(),
                format_args!(
                "{}: {}, {} violation(s)\n",
                wlnode_crypto::Timestamp::now().to_rfc3339(),
                if rep.ok { "audit passed" } else { "audit FAILED" },
                    rep.violations.len()
                ),
            )),
            Err(e) => errln!("verification could not run: {}", e.chain()),
        }));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(async move { page.serve(listener, stop_rx).await });
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
        verifying.abort();
        let _ = serving.await;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn run(c: AuditCommand) -> anyhow::Result<ExitCode> {
    match c {
        AuditCommand::Export {
            config,
            out,
            user_names,
            force,
            json,
        } => {
            // The private names map must never land on the log handed to the
            // auditor (review s36-qa L3).
            if user_names.as_deref().is_some_and(|n| same_path(n, &out)) {
                bail!(
                    "--user-names and --out name one file ({}): the names map is kept apart from the log",
                    out.display()
                );
            }
            // Refused before the store is opened: nothing is read for a file that
            // would not be written (s35 QA B5: an existing export was overwritten).
            for p in std::iter::once(&out).chain(user_names.as_ref()) {
                if !force && p.symlink_metadata().is_ok() {
                    bail!(
                        "{} exists: give another path, or --force to replace it",
                        p.display()
                    );
                }
            }
            let cfg = config.load()?;
            let key = read_secret_key(&cfg.raw.node_key, KeyKind::Node)?;
            let store = Store::open(&cfg.raw.data_dir)?;
            let log = store.audit_export(cfg.agency(), &key.public_key().peer_id())?;
            write_whole(&out, &serde_json::to_vec_pretty(&log)?, 0o644, force)?;
            if let Some(p) = &user_names {
                let names = wlnode_runtime::users::names_in(&store)?;
                // Names are the agency's own: readable by the owner only.
                write_whole(p, &serde_json::to_vec_pretty(&names)?, 0o600, force)?;
            }
            let summary = serde_json::json!({
                "agency": log.agency, "peer_id": log.peer_id, "events": log.events.len(),
                "checkpoints": log.checkpoints.len(), "out": out,
            });
            if json {
                print_json(&summary)?;
            } else {
                outln!(
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
            serve: serve_at,
            every,
            host_name,
        } => {
            let cfg = config.load()?;
            let state_path = state.unwrap_or_else(|| cfg.raw.data_dir.join("audit-state.json"));
            let job = VerifyJob {
                cfg,
                logs,
                out,
                html,
                state_path,
                tolerance_secs,
                max_checkpoint_age_secs,
                limits: wlnode_runtime::auditor::LiveLimits {
                    per_node: std::time::Duration::from_secs(node_timeout_secs),
                    max_events,
                },
                chatty: !json,
            };
            if let Some(addr) = serve_at {
                // Review s35-roster M1: refused before the page comes up, not only on
                // every verification it runs.
                let roster = super::policy::load_roster(&job.cfg, None)?;
                wlnode_audit::verify::auditor_may_use(&roster)?;
                return serve(job, addr, every, host_name);
            }
            let report = super::runtime()?.block_on(job.run())?;
            if json {
                print_json(&report)?;
            } else {
                for n in &report.nodes {
                    outln!(
                        "{}: {} events, {}/{} checkpoints verified, {} violation(s)",
                        n.agency,
                        n.events,
                        n.checkpoints_verified,
                        n.checkpoints,
                        n.violations
                    );
                }
                for v in &report.violations {
                    outln!("VIOLATION {} at {}: {}", v.kind, v.node, v.detail);
                }
                outln!(
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

/// Writes `bytes` to `path` whole or not at all: into `path.partial` (created new,
/// with `mode`; with `replace`, a stale one an interrupted export left is removed
/// first), synced, then renamed over `path`. Without `replace`, a `path` that
/// appeared meanwhile is not replaced: the partial file is hard-linked to `path`, or,
/// on a filesystem without hard links (vfat, many SMB mounts; review s36-qa M1),
/// renamed after checking `path` is still absent.
fn write_whole(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = super::backup::partial_path(path);
    if replace {
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", tmp.display()));
            }
            _ => {}
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| {
            format!(
                "cannot create {} (left by an interrupted export? remove it, or give --force)",
                tmp.display()
            )
        })?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    let placed = written.and_then(|()| {
        if replace {
            return std::fs::rename(&tmp, path);
        }
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => std::fs::remove_file(&tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
            Err(_) if path.symlink_metadata().is_ok() => {
                Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
            }
            Err(_) => std::fs::rename(&tmp, path),
        }
    });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "{} exists: give another path, or --force to replace it",
                path.display()
            );
        }
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Whether `a` and `b` name one file: the same file name in the same directory
/// (canonicalised; a directory that does not exist compares as written).
fn same_path(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        dir.canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .join(p.file_name().unwrap_or_default())
    };
    a == b || norm(a) == norm(b)
}
