//! The `wlnode` binary starts, prints help and its version, and fails cleanly on
//! unknown arguments.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

fn wlnode() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wlnode"))
}

#[test]
fn help_and_version() {
    let out = wlnode().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: wlnode"));
    let out = wlnode().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("wlnode {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_argument_fails_with_one_line() {
    let out = wlnode().arg("--no-such-flag").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag"), "{err}");
}
