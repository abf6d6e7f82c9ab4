//! `wlnode run`: starts the node and keeps it running until SIGINT or SIGTERM, then
//! shuts it down cleanly (in-flight requests finish, the store is flushed).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use wlnode_config::LogFormat;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: super::ConfigArg,
}

/// How long a clean shutdown may take before the process exits anyway.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(20);

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WLNODE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,libp2p=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in log files and journals.
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub fn run(a: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.config.load()?;
    init_logging(cfg.raw.log_format);
    super::runtime()?.block_on(async move {
        let node = wlnode_api::start_node(cfg)
            .await
            .context("node failed to start")?;
                let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    break;
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    break;
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading policy and roster");
                    match node.services.control.reload().await {
                        Ok(r) => tracing::info!(policy = %r.policy_hash, changed = r.policy_changed, roster_version = r.roster_version, "reload done"),
                        Err(e) => tracing::error!(error = %e, "reload refused; the previous policy stays in force"),
                    }
                }
            }
        }
        if tokio::time::timeout(SHUTDOWN_LIMIT, node.stop())
            .await
            .is_err()
        {
            tracing::error!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting anyway");
        }
        Ok(ExitCode::SUCCESS)
    })
}
