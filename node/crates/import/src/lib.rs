//! Turns watchlist source files into entry drafts, so that `wlnode import` can add
//! thousands of entries from an agency's own spreadsheet or from a published sanctions
//! list in one go.
//!
//! This crate is pure: it reads bytes and returns [`EntryDraft`]s, each with the
//! source's own id for the row, plus per-row errors. It does no IO, talks to no node and
//! never panics on any input; a later step sends the drafts to the node's HTTP API in
//! batches, using [`entry_id_for`] so that re-importing the same list amends the same
//! entries instead of adding new ones.
//!
//! # Formats
//!
//! | [`Format`] | what | source id | default source list |
//! |---|---|---|---|
//! | `csv` | wlnode's own spreadsheet layout (columns below) | `source_id` column | `csv` |
//! | `jsonl` | one entry JSON object per line, plus `source_id` | `source_id`, else `entry_id` | `jsonl` |
//! | `ftm` | OpenSanctions FollowTheMoney entities, one JSON object per line | `id` | the `datasets` value, else `ftm` |
//! | `un-xml` | the UN Security Council consolidated list | `DATAID`, else `REFERENCE_NUMBER` | `un-sc` |
//! | `ofac-xml` | the OFAC SDN list | `uid` | `ofac-sdn` |
//! | `eu-xml` | the EU consolidated financial sanctions list (FSF XML) | `logicalId`, else `euReferenceNumber` | `eu-fsf` |
//! | `uk-xml` | the UK Sanctions List (FCDO XML) | `UniqueID` | `uk-sanctions` |
//!
//! ## CSV columns
//!
//! A header row is required. Column names are matched case-insensitively and may come
//! in any order; `source_id`, `kind` and `name` are required, every other column is
//! optional, and an unknown column fails the whole file. List cells are
//! `;`-separated. An empty optional cell falls back to [`ImportDefaults`].
//!
//! | column | value |
//! |---|---|
//! | `source_id` | the row's id in the source; unique within the file |
//! | `kind` | `person`, `organization` (or `organisation`), `vessel` |
//! | `name` | primary name |
//! | `aliases` | `;`-separated other names |
//! | `country` | ISO alpha-2 code in any case, or a common country name |
//! | `addresses` | `;`-separated addresses |
//! | `identifiers` | `type:value;type:value`, types such as `passport`, `national_id`, `registration`, `imo`, `lei`, `tax_id`, `other` |
//! | `birth_date` | birth or incorporation date: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `12 Jan 1970`, `Jan 1970` |
//! | `nationality` | like `country` |
//! | `reason` | `denial`, `diversion-risk`, `sanctions`, `wmd-end-use`, `other` |
//! | `categories` | `;`-separated control-list categories such as `3A001;ML1` |
//! | `legal_basis`, `items`, `remarks`, `contact` | free text |
//! | `scope` | `origin`, `neighbors`, `groups`, `federation` |
//! | `groups` | `;`-separated sharing groups (with `scope` `groups`) |
//! | `max_hops` | relay limit, `0` = none |
//! | `sensitivity` | sensitivity label such as `restricted` |
//! | `review_by` | `YYYY-MM-DD` |
//!
//! # Rules shared by every format
//!
//! - A bad row never stops the good ones: it becomes a [`RowError`] with its line (CSV,
//!   JSONL, FtM) or record number (XML) and parsing goes on. Only failures of the whole
//!   file (not UTF-8, not XML, wrong root element, bad CSV header) are an
//!   [`ImportError`]. Every produced draft has passed [`EntryDraft::validate`].
//! - A second row with the same source id is a [`RowError`].
//! - Names are trimmed with inner whitespace collapsed; empty aliases, repeated aliases
//!   and aliases equal to the primary name are dropped.
//! - Countries are ISO 3166-1 alpha-2 or alpha-3 codes (any case), country names in
//!   their short, long, unofficial and inverted ("Korea, Republic of") forms, or
//!   nationality adjectives ("Afghan"), from the `keshvar` data set and a table of the
//!   forms official lists use (the `countries` module). A value that maps to no code never fails
//!   the row: it is kept in the entry's remarks as written, with a warning.
//! - Dates are read in the forms lists use, `xsd:date` with a time zone and
//!   approximate dates ("circa 1970") included. An entry holds one date: from the
//!   published lists, the first readable one is taken and every value is kept in the
//!   remarks when there were several, when the one taken was approximate, or when none
//!   reads (then with a warning). In the `birth_date` of `csv` and `jsonl` an
//!   unreadable date fails the row.
//! - Values from published lists that are too long for a record (remarks, legal basis)
//!   are cut at a character boundary with a warning rather than failing the row.

mod countries;
mod csv_format;
mod eu_xml;
mod ftm;
mod jsonl;
mod normalize;
mod ofac_xml;
mod uk_xml;
mod un_xml;
mod xml;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use wlnode_crypto::model::{AgencyCode, Category, Distribution, EntryDraft, EntryId, Reason};
use wlnode_crypto::sha256;

pub use countries::country_code;
pub use normalize::parse_partial_date;

/// A source file layout that [`parse`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// wlnode's own CSV layout (see the module docs for the columns).
    Csv,
    /// One entry JSON object per line, plus a `source_id` string.
    Jsonl,
    /// OpenSanctions FollowTheMoney entities as JSON lines.
    Ftm,
    /// The UN Security Council consolidated list XML.
    UnXml,
    /// The OFAC SDN list XML.
    OfacXml,
    /// The EU consolidated financial sanctions list XML (Financial Sanctions Files).
    EuXml,
    /// The UK Sanctions List XML published by the FCDO.
    UkXml,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: &'static [Self] = &[
        Self::Csv,
        Self::Jsonl,
        Self::Ftm,
        Self::UnXml,
        Self::OfacXml,
        Self::EuXml,
        Self::UkXml,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
            Self::UnXml => "un-xml",
            Self::OfacXml => "ofac-xml",
            Self::EuXml => "eu-xml",
            Self::UkXml => "uk-xml",
        }
    }

    /// The source list name used for entry ids when [`ImportDefaults::source_list`] is
    /// not given (FtM may use its `datasets` value instead).
    pub fn default_source_list(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
            Self::UnXml => "un-sc",
            Self::OfacXml => "ofac-sdn",
            Self::EuXml => "eu-fsf",
            Self::UkXml => "uk-sanctions",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that [`Format::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown import format {0:?}: expected one of csv, jsonl, ftm, un-xml, ofac-xml, eu-xml, uk-xml"
)]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// What a row gets when the source does not say: who may receive it, why it is listed,
/// its control-list categories, and the list name used for its entry id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportDefaults {
    /// Distribution of every entry whose row gives none.
    pub distribution: Distribution,
    /// Reason of every entry whose row gives none. Published sanctions lists (FtM, UN,
    /// OFAC, EU, UK) use `sanctions` when this is `None`; CSV and JSONL rows without a reason
    /// fail when this is `None`.
    pub reason: Option<Reason>,
    /// Categories of every entry whose row gives none.
    pub categories: BTreeSet<Category>,
    /// Source list name for [`entry_id_for`]; `None` uses the format's default.
    pub source_list: Option<String>,
}

impl Default for ImportDefaults {
    fn default() -> Self {
        Self {
            distribution: Distribution::federation(),
            reason: None,
            categories: BTreeSet::new(),
            source_list: None,
        }
    }
}

/// Where in the source file a row or record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    /// 1-based line number (CSV: the line the record starts on).
    Line(usize),
    /// 1-based record number: the n-th `INDIVIDUAL`/`ENTITY` (UN, counted together in
    /// document order), `sdnEntry` (OFAC), `sanctionEntity` (EU) or `Designation` (UK).
    Record(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One good row: where it was, its id in the source, and the validated draft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// Where the row was.
    pub location: Location,
    /// The source's own id for the row (unique within the file).
    pub source_id: String,
    /// The entry content, already validated.
    pub draft: EntryDraft,
}

/// A row that produced no draft, or a note about a value left out of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// Where the row was.
    pub location: Location,
    /// The row's source id, when it could be read.
    pub source_id: Option<String>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source_id {
            Some(id) => write!(f, "{} ({id}): {}", self.location, self.message),
            None => write!(f, "{}: {}", self.location, self.message),
        }
    }
}

impl std::error::Error for RowError {}

/// The result of reading one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The list name to use with [`entry_id_for`].
    pub source_list: String,
    /// Good rows, in file order.
    pub rows: Vec<ImportRow>,
    /// Rows that produced no draft, in file order.
    pub errors: Vec<RowError>,
    /// Values left out of good rows (unmappable countries, unreadable dates, cut
    /// texts), in file order. They do not stop the row.
    pub warnings: Vec<RowError>,
    /// Records that are not subjects and were skipped on purpose (FtM schemas such as
    /// `Address` or `Sanction`, OFAC aircraft).
    pub skipped: usize,
    /// Per field of the good rows (`country`, `nationality`, `birth_date`, `aliases`,
    /// `addresses`, `identifiers`, and any field that was cut): what was mapped, what
    /// was kept in the remarks as the source wrote it, what was dropped. `details`
    /// counts the rows (EU, UK) whose remarks also keep list details that no entry
    /// field carries (positions, titles, places of birth, ship particulars, ...).
    pub summary: BTreeMap<String, FieldSummary>,
}

/// What happened to one field across a file's good rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FieldSummary {
    /// Rows whose entry carries the field (for lists: values carried).
    pub mapped: usize,
    /// Rows where values of the field were kept in the remarks, as written, because
    /// the field could not carry them (unmappable, several, approximate).
    pub kept_in_remarks: usize,
    /// Values dropped (aliases and addresses past the record's field limit).
    pub dropped: usize,
    /// Rows where the field's text was cut to the longest a record carries.
    pub cut: usize,
}

impl Parsed {
    /// The deterministic entry id of `row` for entries issued by `origin`.
    pub fn entry_id(&self, origin: &AgencyCode, row: &ImportRow) -> EntryId {
        entry_id_for(origin, &self.source_list, &row.source_id)
    }
}

/// A failure of the whole file: nothing in it could be read as rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not UTF-8 text.
    #[error("the file is not UTF-8 text: invalid byte at line {line}, byte offset {offset}")]
    NotUtf8 {
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 0-based byte offset of the first invalid byte.
        offset: usize,
    },
    /// A CSV file without even a header row.
    #[error("the CSV file is empty: it needs a header row naming its columns")]
    EmptyCsv,
    /// The CSV header row could not be read.
    #[error("the CSV header row cannot be read: {0}")]
    CsvHeader(String),
    /// Required CSV columns are missing from the header.
    #[error("the CSV header lacks the required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// A CSV header names a column this importer does not know.
    #[error(
        "unknown CSV column {column:?} (column {position}); known columns: {}",
        csv_format::COLUMNS.join(", ")
    )]
    UnknownColumn {
        /// The header cell as written.
        column: String,
        /// 1-based column number.
        position: usize,
    },
    /// A CSV header names a column twice.
    #[error("the CSV header names column {0:?} twice")]
    DuplicateColumn(String),
    /// The file holds no XML element at all.
    #[error("not an XML document: {0}")]
    NotXml(String),
    /// The XML root element is not the one of the chosen list format.
    #[error("the XML root element is <{found}>, but the {format} format expects <{expected}>")]
    WrongRoot {
        /// The format asked for.
        format: Format,
        /// The root element it expects.
        expected: &'static str,
        /// The root element found.
        found: String,
    },
    /// One record of an XML list is larger than any real one (too many elements or
    /// too much text): the file is hostile or broken, and nothing of it is imported.
    #[error("XML record {record} (at line {line}) is too large: {what}")]
    RecordTooLarge {
        /// 1-based line where the limit was crossed.
        line: usize,
        /// The record (1-based, in document order).
        record: usize,
        /// Which limit, in words.
        what: String,
    },
    /// The XML is not well formed; nothing after this point can be told apart reliably.
    #[error("XML syntax error at line {line}{}: {message}", in_record(.record))]
    Xml {
        /// 1-based line of the error.
        line: usize,
        /// The record being read when the error occurred, if any.
        record: Option<usize>,
        /// What the XML parser found wrong.
        message: String,
    },
}

fn in_record(record: &Option<usize>) -> String {
    match record {
        Some(n) => format!(" (in record {n})"),
        None => String::new(),
    }
}

/// Reads `input` in `format`, filling in what the rows do not say from `defaults`.
///
/// Bad rows end up in [`Parsed::errors`]; only failures of the whole file are an
/// [`ImportError`].
pub fn parse(
    format: Format,
    input: &[u8],
    defaults: &ImportDefaults,
) -> Result<Parsed, ImportError> {
    let text = decode(input)?;
    match format {
        Format::Csv => csv_format::parse(text, defaults),
        Format::Jsonl => jsonl::parse(text, defaults),
        Format::Ftm => ftm::parse(text, defaults),
        Format::UnXml => un_xml::parse(text, defaults),
        Format::OfacXml => ofac_xml::parse(text, defaults),
        Format::EuXml => eu_xml::parse(text, defaults),
        Format::UkXml => uk_xml::parse(text, defaults),
    }
}

/// The deterministic entry id of a row: the first 16 bytes of
/// `SHA-256("wlnode/import/v1\0" || origin || "\0" || source_list || "\0" || source_id)`.
///
/// Re-importing the same list therefore amends the same entries; the same source id in
/// another list, or imported by another agency, names another entry.
pub fn entry_id_for(origin: &AgencyCode, source_list: &str, source_id: &str) -> EntryId {
    let mut pre =
        Vec::with_capacity(17 + origin.as_str().len() + source_list.len() + source_id.len() + 2);
    pre.extend_from_slice(b"wlnode/import/v1\0");
    pre.extend_from_slice(origin.as_str().as_bytes());
    pre.push(0);
    pre.extend_from_slice(source_list.as_bytes());
    pre.push(0);
    pre.extend_from_slice(source_id.as_bytes());
    let digest = sha256::digest(&pre);
    let mut id = [0u8; EntryId::LEN];
    for (out, byte) in id.iter_mut().zip(digest.iter()) {
        *out = *byte;
    }
    EntryId(id)
}

/// Checks that `input` is UTF-8 and drops a leading byte-order mark.
fn decode(input: &[u8]) -> Result<&str, ImportError> {
    match std::str::from_utf8(input) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').unwrap_or(text)),
        Err(e) => {
            let offset = e.valid_up_to();
            let line = input
                .get(..offset)
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
                + 1;
            Err(ImportError::NotUtf8 { line, offset })
        }
    }
}

/// Gathers rows, errors and warnings while a format reads its file, and enforces the
/// rules every format shares (unique source ids, validated drafts).
#[derive(Debug, Default)]
struct Collector {
    rows: Vec<ImportRow>,
    errors: Vec<RowError>,
    warnings: Vec<RowError>,
    skipped: usize,
    seen: HashMap<String, Location>,
    summary: BTreeMap<String, FieldSummary>,
}

impl Collector {
    /// Records a row that produced no draft.
    fn error(&mut self, location: Location, source_id: Option<&str>, message: impl Into<String>) {
        self.errors.push(RowError {
            location,
            source_id: source_id.map(str::to_owned),
            message: message.into(),
        });
    }

    /// Claims `source_id` for the row at `location`; a second claim of the same id is a
    /// row error and returns false.
    fn claim(&mut self, location: Location, source_id: &str) -> bool {
        if let Some(first) = self.seen.get(source_id) {
            let message = format!("duplicate source_id {source_id:?}: first seen at {first}");
            self.error(location, Some(source_id), message);
            return false;
        }
        self.seen.insert(source_id.to_owned(), location);
        true
    }

    /// One source row: claims its id, builds its draft with fresh notes, and keeps it
    /// or records why not (what every format does with a row once it is read).
    fn row<E: Into<String>>(
        &mut self,
        location: Location,
        source_id: String,
        build: impl FnOnce(&mut normalize::RowNotes) -> Result<EntryDraft, E>,
    ) {
        if !self.claim(location, &source_id) {
            return;
        }
        let mut notes = normalize::RowNotes::default();
        match build(&mut notes) {
            Ok(draft) => self.accept(location, source_id, draft, notes),
            Err(message) => self.error(location, Some(&source_id), message),
        }
    }

    /// Validates `draft` and keeps it, or records why it is refused. `notes` are values
    /// that were left out of the row; they become warnings when the row is kept.
    fn accept(
        &mut self,
        location: Location,
        source_id: String,
        draft: EntryDraft,
        notes: normalize::RowNotes,
    ) {
        match draft.validate() {
            Ok(()) => {
                let s = &draft.subject;
                for (field, n) in [
                    ("country", usize::from(s.country.is_some())),
                    ("nationality", usize::from(s.nationality.is_some())),
                    ("birth_date", usize::from(s.birth_date.is_some())),
                    ("aliases", s.aliases.len()),
                    ("addresses", s.addresses.len()),
                    ("identifiers", s.identifiers.len()),
                ] {
                    self.summary.entry(field.to_owned()).or_default().mapped += n;
                }
                for field in notes.kept {
                    self.summary
                        .entry(field.to_owned())
                        .or_default()
                        .kept_in_remarks += 1;
                }
                for (field, n) in notes.dropped {
                    self.summary.entry(field.to_owned()).or_default().dropped += n;
                }
                for field in notes.cut {
                    self.summary.entry(field.to_owned()).or_default().cut += 1;
                }
                for message in notes.warnings {
                    self.warnings.push(RowError {
                        location,
                        source_id: Some(source_id.clone()),
                        message,
                    });
                }
                self.rows.push(ImportRow {
                    location,
                    source_id,
                    draft,
                });
            }
            Err(e) => {
                let message = format!("invalid {}: {}", e.field, e.message);
                self.error(location, Some(&source_id), message);
            }
        }
    }

    fn finish(self, source_list: String) -> Parsed {
        Parsed {
            source_list,
            rows: self.rows,
            errors: self.errors,
            warnings: self.warnings,
            skipped: self.skipped,
            summary: self.summary,
        }
    }
}

/// The source list name: the caller's, else the format's default.
fn source_list(defaults: &ImportDefaults, format: Format) -> String {
    defaults
        .source_list
        .clone()
        .unwrap_or_else(|| format.default_source_list().to_owned())
}
