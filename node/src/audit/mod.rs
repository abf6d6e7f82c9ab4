//! The node's tamper-evident audit log: typed metadata-only events (`event.rs`), the
//! RFC 6962 tree over them (`merkle.rs`), and the pure verification an auditor runs
//! over exported logs (`verify.rs`, `html.rs`); the audit protocol's messages (`wire.rs`)
//! and live collection over it (`live.rs`). Storage lives in `store/audit.rs`.

pub mod event;
pub mod html;
pub mod live;
pub mod merkle;
pub mod verify;
pub mod wire;
