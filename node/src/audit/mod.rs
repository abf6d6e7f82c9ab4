//! The node's tamper-evident audit log; see merkle.rs for the tree.

pub mod merkle;
