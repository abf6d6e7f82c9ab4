//! The `wlnode` binary: parses the command line, runs one command, and turns any
//! error into a one-line message on stderr and a non-zero exit code.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the store and the screening index allocate many
/// small short-lived buffers, and glibc malloc took about a quarter of import CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error and its causes joined, newlines flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
