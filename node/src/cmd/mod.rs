//! Command-line interface (clap) and dispatch. The names, flags and `--json` outputs
//! listed under "Fixed names" in DESIGN.md are a contract: operators' scripts use them.
//!
//! Every line a command prints goes through [`outln!`]/[`out!`] or [`stdout`], never
//! `println!`: `println!` panics when the reader of a pipe has gone (`wlnode ... | head`),
//! while these return the error and note that standard output is closed, so that `main`
//! exits quietly with code 0 (README "Scripting"). Lines to stderr go through
//! [`errln!`], which drops what cannot be written instead of panicking.

/// Prints one line to standard output, like `println!`, and returns early with the
/// error (`?`) when it cannot be written; a closed pipe is noted for `main`.
macro_rules! outln {
    () => {
        ::std::io::Write::write_all(&mut $crate::cmd::stdout(), b"\n")?
    };
    ($($arg:tt)*) => {
        ::std::io::Write::write_fmt(
            &mut $crate::cmd::stdout(),
            format_args!("{}\n", format_args!($($arg)*)),
        )?
    };
}

/// Prints to standard output without a newline, like `print!`; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        ::std::io::Write::write_fmt(&mut $crate::cmd::stdout(), format_args!($($arg)*))?
    };
}

/// Prints one line to standard error, like `eprintln!`, but never panics: when stderr
/// cannot be written there is nowhere left to say so.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(
            &mut ::std::io::stderr(),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}

pub(crate) use errln;

mod audit;
mod backup;
mod bench;
mod bench_fed;
mod consult;
mod demo;
mod demo_consult;
mod entry;
mod import_batch;
mod init;
mod peer;
mod policy;
mod procs;
mod roster;
mod run;
mod screen;
mod source;
mod store;
mod user;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// wlnode: share export-control end-user watchlists between agencies.
#[derive(Debug, Parser)]
#[command(name = "wlnode", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Create a node folder: node.toml, agency key, node key, encryption key and API token.
    Init(init::InitArgs),
    /// Roster authority tools: create, edit, sign and check the federation roster.
    #[command(subcommand)]
    Roster(roster::RosterCommand),
    /// Run a node until interrupted (SIGINT/SIGTERM).
    Run(run::RunArgs),
    /// Add, amend, withdraw, show and list entries on a running node.
    #[command(subcommand)]
    Entry(entry::EntryCommand),
    /// Import a source list into the running node (csv, jsonl, ftm, un-xml, ofac-xml, eu-xml, uk-xml).
    Import(entry::ImportArgs),
    /// Review, release or refuse import batches awaiting approval (four-eyes imports).
    #[command(subcommand)]
    ImportBatch(import_batch::ImportBatchCommand),
    /// Export entries from the running node.
    Export(entry::ExportArgs),
    /// Show the running node's status.
    Status(entry::StatusArgs),
    /// Check, explain and reload the data-sharing policy.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Block or unblock a neighbour agency at the transport level on the running node.
    #[command(subcommand)]
    Peer(peer::PeerCommand),
    /// List the running node's scheduled source lists, or refresh one now.
    #[command(subcommand)]
    Source(source::SourceCommand),
    /// The running node's users and roles: add, list, disable, rotate.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Watch parties on the running node: add, list, remove.
    #[command(subcommand)]
    Watch(watch::WatchCommand),
    /// Art. 16 consultations on the running node: request, list, show, respond,
    /// supply-info, decide.
    #[command(subcommand)]
    Consult(consult::ConsultCommand),
    /// Sealed messages delivered to this agency (consultations, notices, hit reports).
    Inbox(consult::InboxArgs),
    /// Report a hit on another agency's entry to its origin (sealed).
    #[command(subcommand)]
    Hit(consult::HitCommand),
    /// Flag another agency's entry "not actionable here" (its origin is told), lift
    /// the flag, or list our flags.
    #[command(subcommand)]
    Flag(consult::FlagCommand),
    /// Start a local demo federation (three agencies and an auditor) with sample data.
    Demo(demo::DemoArgs),
    /// Screen a name (or every party of a CSV file with --batch) against the merged
    /// watchlist of the running node.
    Screen(screen::ScreenArgs),
    /// Audit logs: export a node's log, verify logs as an auditor.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Benchmarks with JSON output.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Write a consistent snapshot of the node's store to a file (while it runs).
    Backup(backup::BackupArgs),
    /// Restore a backup into a data dir (the node must be stopped).
    Restore(backup::RestoreArgs),
    /// Offline store tools: migrate a stopped node's data dir to another engine.
    #[command(subcommand)]
    Store(store::StoreCommand),
}

/// The `--config` flag shared by commands that talk to a node.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// The node's config file.
    #[arg(long, env = "WLNODE_CONFIG", default_value = "node.toml")]
    pub config: PathBuf,
    /// Act as the user whose API token is in this file (commands that talk to the
    /// running node; default: the config's `api.token_file`, the bootstrap admin).
    /// `WLNODE_TOKEN` gives the token itself.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// The `--config` flag alone, for commands that read the config but never call the
/// running node's API (`audit export|verify`): they take no `--token-file`.
#[derive(Debug, clap::Args)]
pub struct ConfigFileArg {
    /// The node's config file.
    #[arg(long, env = "WLNODE_CONFIG", default_value = "node.toml")]
    pub config: PathBuf,
}

impl ConfigFileArg {
    /// Loads the config.
    pub fn load(&self) -> anyhow::Result<wlnode_config::Config> {
        Ok(wlnode_config::Config::load(&self.config)?)
    }
}

impl ConfigArg {
    /// Loads the config.
    pub fn load(&self) -> anyhow::Result<wlnode_config::Config> {
        Ok(wlnode_config::Config::load(&self.config)?)
    }

    /// Loads the config for a command that talks to the running node: the token file
    /// is `--token-file` when given.
    pub fn for_client(&self) -> anyhow::Result<wlnode_config::Config> {
        let mut cfg = self.load()?;
        if let Some(t) = &self.token_file {
            if std::env::var(wlnode_client::TOKEN_ENV).is_ok_and(|v| !v.trim().is_empty()) {
                anyhow::bail!(
                    "both --token-file and {} are given: say which user acts with one of them",
                    wlnode_client::TOKEN_ENV
                );
            }
            cfg.raw.api.token_file = t.clone();
        }
        Ok(cfg)
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Prints `v` as one JSON value.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Set when a write to standard output failed because its reader has gone (EPIPE,
/// `wlnode ... | head`): `main` then exits quietly with code 0 instead of reporting
/// the error, as a closed pipe means the reader took what it wanted.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether a write to standard output found the pipe closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Standard output (locked) for commands' output: like `std::io::stdout().lock()`,
/// but a write that finds the reader gone is noted for [`stdout_closed`].
pub struct Stdout(std::io::StdoutLock<'static>);

/// Standard output for a command's output; see [`Stdout`].
pub fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

impl Stdout {
    fn note<T>(r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Self::note(self.0.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Self::note(self.0.flush())
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(a) => init::run(a),
        Command::Roster(c) => roster::run(c),
        Command::Run(a) => run::run(a),
        Command::Entry(c) => runtime()?.block_on(entry::run(c)),
        Command::Import(a) => runtime()?.block_on(entry::import(a)),
        Command::ImportBatch(c) => runtime()?.block_on(import_batch::run(c)),
        Command::Export(a) => runtime()?.block_on(entry::export(a)),
        Command::Status(a) => runtime()?.block_on(entry::status(a)),
        Command::Policy(c) => runtime()?.block_on(policy::run(c)),
        Command::Peer(c) => runtime()?.block_on(peer::run(c)),
        Command::Source(c) => runtime()?.block_on(source::run(c)),
        Command::User(c) => runtime()?.block_on(user::run(c)),
        Command::Watch(c) => runtime()?.block_on(watch::run(c)),
        Command::Consult(c) => runtime()?.block_on(consult::run(c)),
        Command::Inbox(a) => runtime()?.block_on(consult::inbox(a)),
        Command::Hit(c) => runtime()?.block_on(consult::hit(c)),
        Command::Flag(c) => runtime()?.block_on(consult::flag(c)),
        Command::Screen(a) => runtime()?.block_on(screen::run(a)),
        Command::Audit(c) => audit::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Demo(a) => demo::run(a),
        Command::Backup(a) => runtime()?.block_on(backup::backup(a)),
        Command::Restore(a) => backup::restore(a),
        Command::Store(c) => store::run(c),
    }
}
