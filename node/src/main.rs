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
        Err(e) if reader_gone(cmd::stdout_closed(), &e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes joined, newlines flattened.
            let msg = format!("{e:#}").replace('\n', " ");
            cmd::errln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the command's error `e` only says that the reader of our output has gone:
/// our standard output found its pipe closed (`stdout_closed`), and `e` is, or was
/// caused by, a write that found its reader gone (EPIPE), also one a JSON writer
/// wrapped (`serde_json::Error` names its I/O error's kind but does not chain it:
/// review s38 L4). Any other error, also one after the output closed, is reported.
/// (A broken pipe to another sink after our output closed also ends quietly: the
/// command's reader took what it wanted.)
fn reader_gone(stdout_closed: bool, e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    stdout_closed
        && e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == BrokenPipe)
                || c.downcast_ref::<serde_json::Error>()
                    .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
        })
}

#[cfg(test)]
mod tests {
    use super::reader_gone;
    use std::io::{Error, ErrorKind};

    /// Only a broken pipe on a closed standard output exits quietly (final read of
    /// s36): a later failure of a command still running after its output closed
    /// (`audit serve`), or a broken pipe to something else (a peer, a webhook), is
    /// reported.
    #[test]
    fn only_a_closed_output_pipe_exits_quietly() {
        let pipe = || anyhow::Error::new(Error::from(ErrorKind::BrokenPipe));
        let wrapped = pipe().context("writing the roster").context("roster show");
        let other = anyhow::Error::new(Error::from(ErrorKind::PermissionDenied))
            .context("opening the store");
        assert!(reader_gone(true, &pipe()));
        assert!(reader_gone(true, &wrapped), "a cause deep in the chain");
        let json = anyhow::Error::new(serde_json::Error::io(Error::from(ErrorKind::BrokenPipe)))
            .context("writing the entries");
        assert!(reader_gone(true, &json), "a JSON writer's broken pipe");
        assert!(!reader_gone(true, &other), "a later failure is reported");
        assert!(!reader_gone(true, &anyhow::anyhow!("store locked")));
        assert!(
            !reader_gone(false, &wrapped),
            "a broken pipe elsewhere, our output still open"
        );
    }
}
