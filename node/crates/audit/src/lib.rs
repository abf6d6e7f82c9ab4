//! The node's tamper-evident audit log and its auditor, as pure code.
//!
//! - [`event`]: typed metadata-only events and their canonical bytes (the leaves),
//!   signed checkpoints, cosignatures, the export format;
//! - [`inclusion`]: proof that a record's creation was in its origin's log under a
//!   checkpoint an auditor witnessed before a date (for records of revoked keys);
//! - [`merkle`]: the RFC 6962/9162 tree over them, over a [`merkle::NodeStore`];
//! - [`verify`] and [`html`]: what an auditor runs over exported or collected logs;
//! - [`wire`]: the `/wlnode/audit/1` messages and their protobuf encoding;
//! - [`serve`]: the node's side of that protocol, a pure function over an
//!   [`serve::AuditStore`].
//!
//! No IO, no tokio: the store crate implements the storage traits, the node runtime
//! carries the protocol over the network.

pub mod event;
pub mod html;
pub mod inclusion;
pub mod merkle;
pub mod serve;
pub mod verify;
pub mod wire;
