//! The `wlnode` binary: parses the command line, runs one command, and turns any
//! error into a one-line message on stderr and a non-zero exit code.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc malloc: the store and the screening index allocate many
/// small short-lived buffers, and glibc malloc took about a quarter of import CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (what mimalloc's
/// `MIMALLOC_ALLOW_THP=0` does, set before any thread starts). mimalloc asks for huge
/// pages on its regions, and the kernel then zeroes 2 MiB at each first touch: 15 % of
/// import CPU went to zeroing fresh pages. Without them, import took 4-12 % less CPU per
/// entry and 5-12 % less peak memory (BENCHMARKS.md "Storage engines, third pass"). If the
/// kernel refuses, the node runs as before.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => code,
        // The reader of our output has gone (`wlnode ... | head`): it took what it
        // wanted, so this is no error (README "Scripting"). Only that very error: a
        // command that keeps running after its output closed (`audit serve`) still
        // reports a later failure (final read of s36).
        Err(e) if cmd::stdout_closed() && is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes joined, newlines flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            cmd::errln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `e` is, or was caused by, a write that found its reader gone (EPIPE).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
