//! The node's shared domain types, below every other node crate.
//!
//! Pure: no IO, no tokio, no storage engine. Everything here is data that more than one
//! layer passes around: a record as this node holds it ([`StoredRecord`]), the derived
//! state of an entry, the changes-feed [`Cursor`], the identity of an entry
//! ([`EntryKey`]), and what an ingest takes and returns ([`Incoming`], [`IngestReport`]).

pub mod ingest;
pub mod key;
pub mod stored;

pub use ingest::{Equivocation, Incoming, IngestReport, Outcome, Source};
pub use key::EntryKey;
pub use stored::{
    Cursor, Declined, EntryState, Facts, HeldView, LocalMeta, RawRecord, StoredRecord, SyncDetail,
    SyncMeta, WireError,
};
