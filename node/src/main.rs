//! The `wlnode` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let _cli = wlnode::cli::Cli::parse();
    Ok(())
}
