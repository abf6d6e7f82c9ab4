//! The wlnode wire format: prost types generated from `proto/wlnode/v1/*.proto`.
//!
//! This crate exists so that generated protobuf types live in exactly one place. Other
//! crates convert these types into validated domain types with `TryFrom` at their wire
//! boundary (`crypto::wire`, `wlnode::wire`) and never pass prost types further in.

/// Version 1 of the wire format.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/wlnode.v1.rs"));
}

pub use bytes::Bytes;
pub use prost::DecodeError;
pub use prost::Message;
