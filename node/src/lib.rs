//! The wlnode node: store, sync, network, policy, audit, screening, API and CLI.
//!
//! The binary in `main.rs` only parses arguments and calls into this library, so that
//! integration tests can run whole nodes in-process as well as via the binary.

pub mod api;
pub mod audit;
pub mod bench;
pub mod client;
pub mod config;
pub mod entries;
pub mod fuzz_targets;
pub mod import;
pub mod metrics;
pub mod net;
pub mod node;
pub mod policy;
pub mod roster_edit;
pub mod scaffold;
pub mod screen;
pub mod screening;
pub mod store;
pub mod sync;
pub mod trust;
pub mod wire;
