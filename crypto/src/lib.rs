//! wlnode's trust core: keys, canonical signed records with selective disclosure, and
//! the federation roster.
//!
//! This crate does no IO except reading and writing key files (`keyfile`), and never
//! uses tokio, so every rule here can be tested and fuzzed as a pure function.

mod canonical;
pub mod keyfile;
pub mod keys;
pub mod mail;
pub mod model;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod record;
pub mod roster;
pub mod seal;
pub mod sha256;
pub mod time;
pub mod wire;

pub use keys::{PublicKey, SecretKey, Signature};
pub use model::{AgencyCode, EntryId, RecordId};
pub use record::{Record, RecordError, VerifiedRecord};
pub use roster::{Roster, RosterError};
pub use time::Timestamp;
