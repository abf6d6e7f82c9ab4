//! The wlnode node: store, sync, network, policy, audit, screening, API and CLI.
//!
//! The binary in `main.rs` only parses arguments and calls into this library, so that
//! integration tests can run whole nodes in-process as well as via the binary.

pub mod cli;
pub mod screen;
