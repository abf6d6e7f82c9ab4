//! What an ingest takes (verified records and where they came from) and what it
//! reports back (one outcome per record, equivocations, head changes).
//!
//! The sync crate's receive check produces [`Incoming`] records, the entry lifecycle
//! signs them, the store applies them and returns an [`IngestReport`]; none of those
//! needs to know the others, only these types.

use wlnode_crypto::VerifiedRecord;
use wlnode_crypto::model::{AgencyCode, RecordId};

use crate::key::EntryKey;
use crate::stored::{EntryState, LocalMeta};

/// Where a record came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Created by this node.
    Local,
    /// Received from a peer, at this hop count from the origin.
    Peer {
        /// The sending agency.
        agency: AgencyCode,
        /// Hops from the origin to this node.
        hops: u32,
    },
}

/// One record to ingest.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The verified (signature and roster checked) record.
    pub record: VerifiedRecord,
    /// Where it came from.
    pub source: Source,
    /// Import bookkeeping for local entries.
    pub local: Option<LocalMeta>,
    /// For a revoked key's record taken on the strength of a proof (checked): the
    /// encoded inclusion proof, kept with the record. Such a record is demoted (any
    /// record of its entry signed by a valid key ranks above it).
    pub inclusion: Option<bytes::Bytes>,
}

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new record.
    Stored,
    /// A known record; this copy added disclosures.
    Merged {
        /// Fields added.
        added: usize,
    },
    /// A known record; nothing new.
    Duplicate,
    /// Not stored: the store already holds the most evidence it keeps of
    /// equivocation for this (entry, version) (see `MAX_EQUIVOCATION_EVIDENCE` in the
    /// store). Evidence beyond that proves nothing more, and each one would grow the
    /// entry's state and the audit log.
    EquivocationExcess,
}

/// Two or more valid records for the same entry version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The entry.
    pub entry: EntryKey,
    /// The version.
    pub version: u64,
    /// Every record id held for that version.
    pub records: Vec<RecordId>,
}

/// The result of one ingest.
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    /// One outcome per input record, in order.
    pub outcomes: Vec<Outcome>,
    /// Equivocations this batch revealed.
    pub equivocations: Vec<Equivocation>,
    /// Entries whose head changed, with their new state.
    pub head_changes: Vec<(EntryKey, EntryState)>,
    /// The arrival-log head after the batch.
    pub head_seq: u64,
    /// Declined entries this batch added (ones already there do not count): whether
    /// reconciliation sets changed.
    pub declined_new: usize,
}

impl IngestReport {
    /// Number of records stored new or merged (anything a peer might want).
    pub fn changed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Stored | Outcome::Merged { .. }))
            .count()
    }

    /// Number of records stored new.
    pub fn stored(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Stored))
            .count()
    }
}
