//! Name screening: an in-memory index of listed names and aliases that officers query
//! with the name of a shipment party, with a ranked, explained answer.
//!
//! This crate is pure: no store, no IO, no HTTP. The node feeds it from its store at
//! start ([`ScreenIndex::build`]) and on every new record version
//! ([`ScreenIndex::upsert`], [`ScreenIndex::remove`]); the CLI and the HTTP API call
//! [`ScreenIndex::search`]. The index is `Send + Sync`; readers share it behind an
//! `RwLock` (searching takes `&self`).
//!
//! - [`normalize`]: how a name in any script becomes comparable Latin tokens, and what
//!   was stripped on the way (legal forms, honorifics, particles).
//! - [`score`]: the token alignment, the score formula and the explanation types.
//! - [`index`]: the incremental index (token vocabulary, trigram and phonetic indexes
//!   over the vocabulary, postings lists) and candidate retrieval.
//! - [`request`]: the request and batch shapes the API and the CLI share (JSON and CSV),
//!   checked field by field, and batch screening over any search function.
//! - [`doc_of`]: the index document of an entry, from its state and head record.
//!
//! The synthetic watchlist and the benchmark behind `wlnode bench screen` are in
//! `wlnode-devtools`.
//!
//! The default threshold is [`DEFAULT_MIN_SCORE`] = 0.80: on the synthetic benchmark
//! it keeps the variant classes (typos, transliterations, reordered tokens, one dropped
//! middle name, changed legal forms, added honorifics) above it while a different
//! surname or given name (one of two tokens unmatched scores 0.5) stays below it.
//!
//! On a real list (OFAC's SDN list, `wlnode bench screen --list DIR`; see
//! `BENCHMARKS.md`) the same threshold keeps 0.99 of the Latin variants; the negatives
//! that reach it are mostly spelling variants of listed names (`Mohammad Omar` /
//! `OMAR, Mohammed`) or listed names with a middle name left out, which no name-only
//! score can tell from the listed person.

pub mod csv_cell;
mod distance;
pub mod index;
mod lexicon;
pub mod normalize;
pub mod request;
pub mod score;

use serde::Serialize;
use std::collections::BTreeSet;

use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, EntryId, Identifier, Reason, Status, SubjectKind,
};
use wlnode_crypto::time::PartialDate;
use wlnode_types::{EntryState, StoredRecord};

pub use index::ScreenIndex;
pub use score::Explanation;
pub use wlnode_types::EntryKey;

/// Results scoring below this are not returned unless the query sets another floor.
pub const DEFAULT_MIN_SCORE: f64 = 0.80;
/// Results returned when the query does not say.
pub const DEFAULT_LIMIT: usize = 10;
/// Most results a query may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Longest query name, in characters.
pub const MAX_QUERY_CHARS: usize = 512;

/// What the index needs of one entry version. The node builds it from a verified
/// record's header and disclosed fields; withheld fields are simply absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenDoc {
    /// The entry's id.
    pub entry_id: EntryId,
    /// The agency that issued it.
    pub origin: AgencyCode,
    /// Person, organisation or vessel.
    pub kind: SubjectKind,
    /// Primary name first, then aliases. Empty names are ignored.
    pub names: Vec<String>,
    /// Country from the header.
    pub country: Option<CountryCode>,
    /// Nationality, if disclosed.
    pub nationality: Option<CountryCode>,
    /// Birth or incorporation date, if disclosed.
    pub birth_date: Option<PartialDate>,
    /// Identifiers, if disclosed.
    pub identifiers: Vec<Identifier>,
    /// Addresses, if disclosed.
    pub addresses: Vec<String>,
    /// The latest version withdraws the entry.
    pub withdrawn: bool,
    /// Why it is listed (from the header), for officers' filters.
    pub reason: Option<Reason>,
    /// Its control-list categories (from the header), for officers' filters.
    pub categories: Vec<Category>,
}

impl ScreenDoc {
    /// The key [`ScreenIndex::upsert`] replaces and [`ScreenIndex::remove`] removes.
    pub fn key(&self) -> EntryKey {
        EntryKey {
            origin: self.origin.clone(),
            entry_id: self.entry_id,
        }
    }
}

/// The index document of an entry, from its state and head record (withheld fields
/// are simply absent).
pub fn doc_of(key: &EntryKey, state: &EntryState, head: &StoredRecord) -> ScreenDoc {
    let h = head.record.header();
    let c = head.record.content();
    let mut names = Vec::with_capacity(1 + c.aliases.len());
    names.extend(c.name);
    names.extend(c.aliases);
    ScreenDoc {
        entry_id: key.entry_id,
        origin: key.origin.clone(),
        kind: h.subject_kind,
        names,
        country: h.subject_country.clone(),
        nationality: c.nationality,
        birth_date: c.birth_date,
        identifiers: c.identifiers,
        addresses: c.addresses,
        withdrawn: state.status == Status::Withdrawn,
        reason: Some(h.reason),
        categories: h.categories.iter().cloned().collect(),
    }
}

/// What an officer narrows a screening to: one origin, one listing reason, one
/// control-list category, and entries already decided to leave out. Applied while
/// candidates are chosen, so a filtered query still finds its best admitted entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HitFilter {
    /// Only entries of this origin agency.
    pub origin: Option<AgencyCode>,
    /// Only entries listed for this reason.
    pub reason: Option<Reason>,
    /// Only entries with this control-list category.
    pub category: Option<Category>,
    /// Never these entries (any origin).
    pub exclude: BTreeSet<EntryId>,
}

/// Most entries one query may exclude.
pub const MAX_EXCLUDE: usize = 100;

impl HitFilter {
    /// Whether it admits everything.
    pub fn is_empty(&self) -> bool {
        self.origin.is_none()
            && self.reason.is_none()
            && self.category.is_none()
            && self.exclude.is_empty()
    }

    /// Whether an entry passes.
    pub fn admits(
        &self,
        origin: &AgencyCode,
        entry_id: &EntryId,
        reason: Option<Reason>,
        categories: &[Category],
    ) -> bool {
        self.origin.as_ref().is_none_or(|o| o == origin)
            && self.reason.is_none_or(|r| reason == Some(r))
            && self
                .category
                .as_ref()
                .is_none_or(|c| categories.contains(c))
            && !self.exclude.contains(entry_id)
    }
}

/// A screening query. Build it with [`Query::new`] and set the optional fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The name to screen (required; at most [`MAX_QUERY_CHARS`] characters).
    pub name: String,
    /// Only entries of this kind.
    pub kind: Option<SubjectKind>,
    /// Raises entries of this country or nationality, lowers entries of another.
    pub country: Option<CountryCode>,
    /// Raises entries with a compatible birth date, lowers entries with another.
    pub birth_date: Option<PartialDate>,
    /// An identifier (`type:value`); an exact match is decisive.
    pub identifier: Option<Identifier>,
    /// An address (at most [`MAX_QUERY_CHARS`] characters); raises entries with an
    /// address that holds most of its words.
    pub address: Option<String>,
    /// Most results (1..=[`MAX_LIMIT`], default [`DEFAULT_LIMIT`]).
    pub limit: usize,
    /// Least score returned (0..=1, default [`DEFAULT_MIN_SCORE`]).
    pub min_score: f64,
    /// Also return withdrawn entries.
    pub include_withdrawn: bool,
    /// Origin, reason, category and excluded entries.
    pub filter: HitFilter,
}

impl Query {
    /// A query for `name` with the defaults.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: None,
            country: None,
            birth_date: None,
            identifier: None,
            address: None,
            limit: DEFAULT_LIMIT,
            min_score: DEFAULT_MIN_SCORE,
            include_withdrawn: false,
            filter: HitFilter::default(),
        }
    }
}

/// Why a query was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The name is empty or only white space.
    #[error("the query name is empty")]
    EmptyName,
    /// The name is longer than [`MAX_QUERY_CHARS`].
    #[error("the query name has {chars} characters; at most {max} are allowed")]
    NameTooLong {
        /// Characters in the name.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// The address is longer than [`MAX_QUERY_CHARS`].
    #[error("the query address has {chars} characters; at most {max} are allowed")]
    AddressTooLong {
        /// Characters in the address.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// Nothing is left of the name after normalisation (no letters or digits).
    #[error("the query name {name:?} has no letters or digits to match")]
    NothingToMatch {
        /// The name as given (truncated to 64 characters).
        name: String,
    },
    /// `limit` is 0 or above [`MAX_LIMIT`].
    #[error("limit must be between 1 and {max}, got {limit}")]
    InvalidLimit {
        /// The limit given.
        limit: usize,
        /// The largest allowed.
        max: usize,
    },
    /// `min_score` is not a number in [0, 1].
    #[error("min_score must be between 0 and 1, got {0}")]
    InvalidMinScore(f64),
    /// The identifier has an empty type or value.
    #[error("the query identifier needs a type and a value (type:value)")]
    InvalidIdentifier,
}

/// One screening result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Match {
    /// The listed entry.
    pub entry_id: EntryId,
    /// Its origin agency.
    pub origin: AgencyCode,
    /// Its kind.
    pub kind: SubjectKind,
    /// Whether it is withdrawn (only with `include_withdrawn`).
    pub withdrawn: bool,
    /// Score in [0, 1]; equal to `explanation.score`.
    pub score: f64,
    /// The name or alias that matched best, as listed.
    pub matched_name: String,
    /// Why it scored what it scored.
    pub explanation: Explanation,
}
