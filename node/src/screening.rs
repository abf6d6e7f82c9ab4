//! The node's live screening index: the pure [`crate::screen`] engine fed from the
//! store, plus the request parsing the API and CLI share.
//!
//! ## Ownership and freshness
//!
//! One task, the **screen follower** ([`spawn_follower`]), is the only writer. At node
//! start it reads the arrival-log head, scans every entry's head record (in pages, so
//! the store actor stays responsive), builds the index on a blocking thread and marks
//! it ready; then it follows the arrival log (the changes feed sync uses) from the head
//! it read before the scan. Every time [`crate::node::NodeContext::after_ingest`] moves
//! the log head (local create/amend/withdraw/import and records from peers alike), it
//! reads the new log records, collects the entries they belong to, re-reads each one's
//! current head (with the disclosures merged so far) and upserts it: one entry at a
//! time, never a rebuild. Re-upserting an entry already indexed is harmless, so the
//! overlap between the start scan and the log is too.
//!
//! Readers (API handlers) share the index behind an `RwLock` in [`ScreenHandle`] and
//! search on blocking threads.
//!
//! **Withdrawn entries** stay in the same index with their withdrawn flag (the engine
//! filters them out unless the query sets `include_withdrawn`), so a withdrawal or a
//! reinstatement is one upsert.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use wlnode_crypto::model::{CountryCode, Identifier, InvalidValue, Status, SubjectKind};
use wlnode_crypto::time::PartialDate;

use crate::screen::{
    DEFAULT_LIMIT, DEFAULT_MIN_SCORE, Match, Query, QueryError, ScreenDoc, ScreenIndex,
};
use crate::store::{EntryFilter, EntryKey, RawRecord, Store, StoreError};
use crate::wire::{EntryState, StoredRecord};

/// Entries scanned per store call while building at start.
const SCAN_PAGE: usize = 2048;
/// Arrival-log records read per store call while following.
const FOLLOW_PAGE: usize = 1024;
/// Most parties in one `POST /v1/screen/batch` request.
pub const MAX_BATCH: usize = 10_000;

/// Shared handle on the live index: the index, whether the start build is done, and
/// the arrival-log position the index reflects.
#[derive(Clone, Debug)]
pub struct ScreenHandle {
    index: Arc<RwLock<ScreenIndex>>,
    ready: Arc<watch::Sender<bool>>,
    applied: Arc<watch::Sender<u64>>,
}

impl Default for ScreenHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a screening request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The query was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The index is still being built at node start.
    #[error("the screening index is still being built ({entries} entries so far); retry shortly")]
    Building {
        /// Entries indexed so far.
        entries: usize,
    },
}

impl ScreenHandle {
    /// An empty, not yet ready index.
    pub fn new() -> Self {
        Self {
            index: Arc::new(RwLock::new(ScreenIndex::new())),
            ready: Arc::new(watch::channel(false).0),
            applied: Arc::new(watch::channel(0).0),
        }
    }

    /// Whether the start build is done.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits up to `timeout` for the start build.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.ready.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits up to `timeout` until the index reflects the arrival log up to `seq`
    /// (read-your-writes for the API: a request sees every record stored before it).
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|a| *a >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The arrival-log sequence number the index reflects.
    pub fn applied_seq(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Entries indexed (withdrawn included).
    pub fn len(&self) -> usize {
        self.read(|i| i.len())
    }

    /// True when no entry is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read<T>(&self, f: impl FnOnce(&ScreenIndex) -> T) -> T {
        match self.index.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut ScreenIndex) -> T) -> T {
        match self.index.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Runs one query (blocking: call it from a blocking thread).
    pub fn search(&self, query: &Query) -> Result<Vec<Match>, ScreenError> {
        if !self.is_ready() {
            return Err(ScreenError::Building {
                entries: self.len(),
            });
        }
        Ok(self.read(|i| i.search(query))?)
    }
}

/// The index document of an entry, from its state and head record.
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
        withdrawn: state.status == Status::Withdrawn,
    }
}

/// An entry's state and its head record as read on the store thread, still undecoded
/// (`None`: the head record is missing).
type RawHead = (EntryKey, EntryState, Option<RawRecord>);

/// Reads the head record of each entry, undecoded, unless `have` already holds it.
fn raw_heads(
    s: &Store,
    entries: Vec<(EntryKey, EntryState)>,
    have: &std::collections::BTreeMap<EntryKey, StoredRecord>,
) -> Result<Vec<RawHead>, StoreError> {
    let mut out = Vec::with_capacity(entries.len());
    for (key, state) in entries {
        let raw = match have.get(&key) {
            Some(r) if r.record.id() == state.head => None,
            _ => s.record_raw(&state.head)?,
        };
        out.push((key, state, raw));
    }
    Ok(out)
}

/// Decodes the heads read by [`raw_heads`] (off the store thread) into documents. An
/// entry whose head record is missing or undecodable is logged and skipped: one bad
/// entry must not keep the whole index from being built.
fn head_docs(
    heads: Vec<RawHead>,
    have: &std::collections::BTreeMap<EntryKey, StoredRecord>,
) -> Vec<ScreenDoc> {
    let mut docs = Vec::with_capacity(heads.len());
    for (key, state, raw) in heads {
        match raw.map(|r| r.decode()) {
            Some(Ok(head)) => docs.push(doc_of(&key, &state, &head)),
            Some(Err(e)) => {
                tracing::error!(entry = %key.entry_id, origin = %key.origin, error = %e, "screening index: head record unreadable; entry not indexed");
            }
            None => match have.get(&key).filter(|r| r.record.id() == state.head) {
                Some(head) => docs.push(doc_of(&key, &state, head)),
                None => {
                    tracing::error!(entry = %key.entry_id, origin = %key.origin, head = %state.head, "screening index: head record missing; entry not indexed");
                }
            },
        }
    }
    docs
}

/// One page of the start scan, read on the store thread: entry states with their raw
/// head records, and the key to continue after.
fn scan_page(
    s: &Store,
    after: Option<&EntryKey>,
) -> Result<(Vec<RawHead>, Option<EntryKey>), StoreError> {
    let (page, next) = s.list_entries(&EntryFilter::default(), after, SCAN_PAGE)?;
    Ok((raw_heads(s, page, &Default::default())?, next))
}

/// Runs CPU work (decoding) on a blocking thread, off the store thread and the executor.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StoreError::Closed)
}

/// The current documents of the entries that the log records after `after` belong to,
/// the last sequence number read (`after` when there was nothing new), and whether
/// more may follow.
///
/// The store thread only reads bytes (two short jobs); decoding, the costly part,
/// happens here on a blocking thread so that ingest is not held up behind it.
async fn follow_page(
    store: &crate::store::StoreHandle,
    after: u64,
) -> Result<(Vec<ScreenDoc>, u64, bool), StoreError> {
    let (log, raws) = store
        .call(move |s| {
            let log = s.log_after(after, FOLLOW_PAGE)?;
            let raws = log
                .iter()
                .map(|(_, id)| s.record_raw(id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((log, raws))
        })
        .await?;
    let more = log.len() == FOLLOW_PAGE;
    let last = log.last().map_or(after, |(seq, _)| *seq);
    // entry -> the latest log record read for it (usually the new head)
    let touched = off_thread(move || {
        let mut touched: std::collections::BTreeMap<EntryKey, StoredRecord> =
            std::collections::BTreeMap::new();
        for ((_, id), raw) in log.iter().zip(raws) {
            let rec = match raw.map(|r| r.decode()) {
                Some(Ok(r)) => r,
                None => continue,
                Some(Err(e)) => {
                    tracing::error!(record = %id, error = %e, "screening index: logged record unreadable");
                    continue;
                }
            };
            let h = rec.record.header();
            let key = EntryKey {
                entry_id: h.entry_id,
                origin: h.origin.clone(),
            };
            touched.insert(key, rec);
        }
        touched
    })
    .await?;
    let touched = Arc::new(touched);
    let have = touched.clone();
    let heads = store
        .call(move |s| {
            let mut states = Vec::with_capacity(have.len());
            for key in have.keys() {
                if let Some(state) = s.entry(key)? {
                    states.push((key.clone(), state));
                }
            }
            raw_heads(s, states, &have)
        })
        .await?;
    let docs = off_thread(move || head_docs(heads, &touched)).await?;
    Ok((docs, last, more))
}

/// The log head, then the documents of every entry (paged store calls; decoding off
/// the store thread).
async fn scan(ctx: &crate::node::NodeContext) -> Result<(u64, Vec<ScreenDoc>), StoreError> {
    let start_seq = ctx.store.call(|s| s.head_seq()).await?;
    let mut docs: Vec<ScreenDoc> = Vec::new();
    let mut after: Option<EntryKey> = None;
    loop {
        let a = after.clone();
        let (page, next) = ctx.store.call(move |s| scan_page(s, a.as_ref())).await?;
        docs.extend(off_thread(move || head_docs(page, &Default::default())).await?);
        match next {
            Some(k) => after = Some(k),
            None => return Ok((start_seq, docs)),
        }
    }
}

/// Builds the index from the store, then keeps it current until `shutdown`. See the
/// module documentation.
pub fn spawn_follower(
    ctx: crate::node::NodeContext,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let handle = ctx.screen.clone();
        let mut head = ctx.head.subscribe();
        let started = Instant::now();
        // Build.
        let (start_seq, docs) = loop {
            match scan(&ctx).await {
                Ok(r) => break r,
                Err(e) => {
                    // the store refuses reads (IO error): keep answering 503 and retry
                    tracing::error!(error = %e, "screening index: store scan failed; retrying in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        let n = docs.len();
        let scan_ms = started.elapsed().as_millis() as u64;
        let built = tokio::task::spawn_blocking(move || ScreenIndex::build(docs)).await;
        match built {
            Ok(index) => handle.write(|i| *i = index),
            Err(e) => {
                tracing::error!(error = %e, "screening index: build failed");
                return;
            }
        }
        handle.applied.send_replace(start_seq);
        handle.ready.send_replace(true);
        tracing::info!(
            entries = n,
            scan_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "screening index built"
        );
        // Follow.
        let mut cursor = start_seq;
        loop {
            let target = *head.borrow_and_update();
            while cursor < target {
                let from = cursor;
                match follow_page(&ctx.store, from).await {
                    Ok((docs, last, more)) => {
                        if !docs.is_empty() {
                            let h = handle.clone();
                            let upsert = tokio::task::spawn_blocking(move || {
                                h.write(|i| {
                                    for d in docs {
                                        i.upsert(d);
                                    }
                                });
                            })
                            .await;
                            if let Err(e) = upsert {
                                tracing::error!(error = %e, "screening index: update failed");
                                return;
                            }
                        }
                        cursor = last;
                        handle.applied.send_replace(cursor);
                        if !more && last == from {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "screening index: cannot read new records; retrying on the next change");
                        break;
                    }
                }
            }
            tokio::select! {
                r = head.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// A screening request as the API takes it (query string or JSON body) and the CLI
/// sends it. Every field but `name` is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenRequest {
    /// The name to screen (1 to 512 characters).
    #[serde(alias = "q")]
    pub name: String,
    /// `person`, `organization` or `vessel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// ISO country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Birth or incorporation date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "birth_date")]
    pub dob: Option<String>,
    /// An identifier, `TYPE:VALUE`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "identifier")]
    pub id: Option<String>,
    /// Most results (1 to 1000, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Least score returned (0 to 1, default 0.80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Also return withdrawn entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_withdrawn: Option<bool>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ScreenRequest {
    /// Checks the fields and builds the engine query. Errors name the field.
    pub fn to_query(&self) -> Result<Query, InvalidValue> {
        let mut q = Query::new(self.name.clone());
        if let Some(k) = blank(&self.kind) {
            q.kind = Some(k.to_ascii_lowercase().parse::<SubjectKind>().map_err(|_| {
                InvalidValue::new(
                    "kind",
                    format!("{k:?} is not person, organization or vessel"),
                )
            })?);
        }
        if let Some(c) = blank(&self.country) {
            q.country = Some(
                CountryCode::new(c.to_ascii_uppercase())
                    .map_err(|e| InvalidValue::new("country", e.message))?,
            );
        }
        if let Some(d) = blank(&self.dob) {
            q.birth_date =
                Some(PartialDate::parse(d).map_err(|e| InvalidValue::new("dob", e.to_string()))?);
        }
        if let Some(i) = blank(&self.id) {
            q.identifier = Some(
                Identifier::parse_canonical(i)
                    .map_err(|e| InvalidValue::new("id", format!("{i:?}: {}", e.message)))?,
            );
        }
        q.limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        q.min_score = self.min_score.unwrap_or(DEFAULT_MIN_SCORE);
        q.include_withdrawn = self.include_withdrawn.unwrap_or(false);
        check_query(&q)?;
        Ok(q)
    }
}

/// The checks the engine makes before searching, as a field error (so that a batch can
/// report a bad row without touching the index).
pub fn check_query(q: &Query) -> Result<(), InvalidValue> {
    let field = |e: QueryError| {
        let f = match e {
            QueryError::InvalidLimit { .. } => "limit",
            QueryError::InvalidMinScore(_) => "min_score",
            QueryError::InvalidIdentifier => "id",
            _ => "name",
        };
        InvalidValue::new(f, e.to_string())
    };
    if q.name.trim().is_empty() {
        return Err(field(QueryError::EmptyName));
    }
    let chars = q.name.chars().count();
    if chars > crate::screen::MAX_QUERY_CHARS {
        return Err(field(QueryError::NameTooLong {
            chars,
            max: crate::screen::MAX_QUERY_CHARS,
        }));
    }
    if q.limit == 0 || q.limit > crate::screen::MAX_LIMIT {
        return Err(field(QueryError::InvalidLimit {
            limit: q.limit,
            max: crate::screen::MAX_LIMIT,
        }));
    }
    if !(0.0..=1.0).contains(&q.min_score) {
        return Err(field(QueryError::InvalidMinScore(q.min_score)));
    }
    Ok(())
}

/// A screening answer.
#[derive(Clone, Debug, Serialize)]
pub struct ScreenResponse {
    /// The name screened.
    pub query: String,
    /// Results, best first.
    pub results: Vec<Match>,
    /// Entries in the index (withdrawn included).
    pub index_entries: usize,
    /// Search time in milliseconds.
    pub took_ms: f64,
}

/// One party of a batch: its row number and request.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// 1-based data row (for CSV: the line number in the file, header = line 1).
    pub row: usize,
    /// The party's own reference (CSV column `ref`), if any.
    pub reference: Option<String>,
    /// The request.
    pub request: ScreenRequest,
}

/// A batch row that could not be screened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RowError {
    /// 1-based data row (CSV: line number in the file).
    pub row: usize,
    /// The offending field, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Columns a batch CSV may have (`name` is required; others optional, any order).
pub const CSV_COLUMNS: [&str; 6] = ["ref", "name", "kind", "country", "dob", "id"];

/// Parses a batch CSV: a header row naming columns from [`CSV_COLUMNS`] (`q` is
/// accepted for `name`, `birth_date` for `dob`, `identifier` for `id`), then one party
/// per row. Malformed rows are returned as errors with their line numbers; the rest
/// parse. An unusable header is one error for line 1.
pub fn parse_csv(body: &[u8]) -> (Vec<BatchRow>, Vec<RowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let header_err = |message: String| RowError {
        row: 1,
        field: None,
        message,
    };
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return (
                rows,
                vec![header_err(format!("cannot read the header row: {e}"))],
            );
        }
    };
    let col = |names: &[&str]| {
        headers.iter().position(|h| {
            names
                .iter()
                .any(|n| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(n))
        })
    };
    let name_col = col(&["name", "q"]);
    let ref_col = col(&["ref", "reference", "party_id"]);
    let kind_col = col(&["kind"]);
    let country_col = col(&["country"]);
    let dob_col = col(&["dob", "birth_date"]);
    let id_col = col(&["id", "identifier"]);
    let Some(name_col) = name_col else {
        return (
            rows,
            vec![header_err(format!(
                "the header row has no `name` column (columns: {})",
                CSV_COLUMNS.join(", ")
            ))],
        );
    };
    let width = headers.len();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let row = e
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                errors.push(RowError {
                    row,
                    field: None,
                    message: format!("malformed CSV: {e}"),
                });
                continue;
            }
        };
        let row = rec
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        if rec.len() != width {
            errors.push(RowError {
                row,
                field: None,
                message: format!(
                    "expected {width} fields as in the header, found {}",
                    rec.len()
                ),
            });
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let request = ScreenRequest {
            name: get(Some(name_col)).unwrap_or_default(),
            kind: get(kind_col),
            country: get(country_col),
            dob: get(dob_col),
            id: get(id_col),
            ..ScreenRequest::default()
        };
        rows.push(BatchRow {
            row,
            reference: get(ref_col),
            request,
        });
    }
    (rows, errors)
}

/// One screened party of a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResult {
    /// Row number as in [`BatchRow::row`].
    pub row: usize,
    /// The party's reference, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The name screened.
    pub name: String,
    /// Results, best first.
    pub results: Vec<serde_json::Value>,
}

/// A batch answer: one result per good row, one error per bad row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Screened parties, in row order.
    pub results: Vec<BatchResult>,
    /// Rows that could not be screened, in row order.
    pub errors: Vec<RowError>,
    /// Parties screened.
    pub screened: usize,
    /// Rows refused.
    pub failed: usize,
}

/// Screens checked rows; rows whose request is invalid become errors. Blocking.
pub fn screen_rows(
    handle: &ScreenHandle,
    rows: Vec<BatchRow>,
    defaults: &ScreenRequest,
    mut errors: Vec<RowError>,
    mut observe: impl FnMut(Duration),
) -> Result<BatchResponse, ScreenError> {
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        let mut req = r.request;
        req.limit = req.limit.or(defaults.limit);
        req.min_score = req.min_score.or(defaults.min_score);
        req.include_withdrawn = req.include_withdrawn.or(defaults.include_withdrawn);
        let q = match req.to_query() {
            Ok(q) => q,
            Err(e) => {
                errors.push(RowError {
                    row: r.row,
                    field: (!e.field.is_empty()).then(|| e.field.clone()),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let t = Instant::now();
        match handle.search(&q) {
            Ok(found) => {
                observe(t.elapsed());
                results.push(BatchResult {
                    row: r.row,
                    reference: r.reference,
                    name: q.name,
                    results: found
                        .iter()
                        .filter_map(|m| serde_json::to_value(m).ok())
                        .collect(),
                });
            }
            Err(ScreenError::Query(e)) => errors.push(RowError {
                row: r.row,
                field: Some("name".into()),
                message: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    errors.sort_by_key(|e| e.row);
    Ok(BatchResponse {
        screened: results.len(),
        failed: errors.len(),
        results,
        errors,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn csv_reports_bad_rows_by_line_and_keeps_the_rest() {
        let body = b"ref,name,country,dob\nP1,Acme Trading,AE,\nP2,too,many,fields,here\nP3,Ivan Petrov,RU,1970\n";
        let (rows, errors) = parse_csv(body);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, 2);
        assert_eq!(rows[1].row, 4);
        assert_eq!(rows[1].request.dob.as_deref(), Some("1970"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row, 3);
    }

    #[test]
    fn csv_without_a_name_column_is_one_error() {
        let (rows, errors) = parse_csv(b"who,country\nx,AE\n");
        assert!(rows.is_empty());
        assert_eq!(errors[0].row, 1);
        assert!(errors[0].message.contains("name"));
    }

    #[test]
    fn request_errors_name_the_field() {
        let r = |f: fn(&mut ScreenRequest)| {
            let mut r = ScreenRequest {
                name: "Acme".into(),
                ..ScreenRequest::default()
            };
            f(&mut r);
            r.to_query().map(|_| ()).map_err(|e| e.field)
        };
        assert_eq!(r(|_| {}), Ok(()));
        assert_eq!(r(|r| r.name = "  ".into()), Err("name".into()));
        assert_eq!(r(|r| r.name = "x".repeat(513)), Err("name".into()));
        assert_eq!(r(|r| r.kind = Some("ship".into())), Err("kind".into()));
        assert_eq!(
            r(|r| r.country = Some("Ruritania".into())),
            Err("country".into())
        );
        assert_eq!(r(|r| r.dob = Some("19x0".into())), Err("dob".into()));
        assert_eq!(r(|r| r.id = Some("passport".into())), Err("id".into()));
        assert_eq!(r(|r| r.limit = Some(0)), Err("limit".into()));
        assert_eq!(r(|r| r.min_score = Some(1.5)), Err("min_score".into()));
        assert_eq!(r(|r| r.kind = Some("Person".into())), Ok(()));
        assert_eq!(r(|r| r.country = Some("ae".into())), Ok(()));
    }
}
