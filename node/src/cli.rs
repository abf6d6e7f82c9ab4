//! Command-line interface definition (clap).
//!
//! Subcommands are added as the node grows; their names and `--json` outputs are the
//! contract fixed in DESIGN.md ("Fixed names").

use clap::Parser;

/// wlnode: share export-control end-user watchlists between agencies.
#[derive(Debug, Parser)]
#[command(name = "wlnode", version, about, long_about = None)]
pub struct Cli {}
