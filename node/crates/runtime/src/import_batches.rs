//! Four-eyes release of imports: with `[release] require_approval` on, a list import
//! is not signed row by row as it arrives. The editor uploads it as an **import batch**
//! (rows in chunks, as the CLI sends them), submits it, and the node works out what it
//! would change: entries new, amended, unchanged, refused, and (for a full list)
//! withdrawn, with samples of each and a digest of the plan. A different user with the
//! `approver` role approves that plan by its digest; only then is anything signed.
//!
//! - The approver approves what they saw: approval recomputes the plan against the store
//!   and refuses (`stale`, with the new summary saved) when it differs from the digest
//!   the approver names, so a write that slipped in between is never released unseen.
//! - Release is the ordinary import, acting as the approver, so every record's `acted`
//!   event carries the approver. Import is idempotent (unchanged rows write nothing),
//!   so a release that failed part-way, or stopped with the node, is approved again
//!   after a fresh look at what is left; it never writes a row twice.
//! - Headers live in the store's meta tree (`import_batches`, JSON) and rows in chunks
//!   beside them (`import_batch/<id>/<chunk>`): local only, never replicated, carried by
//!   backups. Rows go when a batch is decided. Bounded: [`MAX_OPEN`] undecided batches
//!   ([`MAX_OPEN_PER_AUTHOR`] per author), [`MAX_ROWS`] rows and [`MAX_BATCH_BYTES`]
//!   bytes per batch, [`MAX_CHUNK_ROWS`] rows per upload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use wlnode_crypto::model::{EntryDraft, EntryId, RecordId};
use wlnode_crypto::roster::Roster;
use wlnode_crypto::time::Timestamp;
use wlnode_store::{StoreError, StoreHandle};
use wlnode_types::IngestReport;

use crate::entries::{
    ImportItem, ImportOutcome, Lifecycle, LifecycleError, Planned, check_against_roster,
};
use crate::users::{Actor, acted};

/// Most batches not yet decided (open or awaiting approval).
pub const MAX_OPEN: usize = 8;
/// Most undecided batches of one author.
pub const MAX_OPEN_PER_AUTHOR: usize = 2;
/// Most rows in one batch.
pub const MAX_ROWS: usize = 200_000;
/// Most bytes of rows (their JSON) in one batch.
pub const MAX_BATCH_BYTES: u64 = 256 * 1024 * 1024;
/// Most rows in one upload.
pub const MAX_CHUNK_ROWS: usize = 5000;
/// Most uploads to one batch (each is one stored chunk, read at submit and approval).
pub const MAX_CHUNKS: u32 = 2000;
/// Decided batches kept for the record.
pub const MAX_DECIDED: usize = 200;
/// Rows of each kind shown in a summary.
pub const SAMPLES: usize = 20;
/// Rows the import writes per store commit at release.
const RELEASE_CHUNK: usize = 5000;
const META_KEY: &[u8] = b"import_batches";

/// One uploaded row.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRow {
    /// The source's own id.
    pub source_id: String,
    /// The entry content.
    pub entry: EntryDraft,
}

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Rows are being uploaded by the author.
    Open,
    /// Submitted with its summary; nothing signed.
    AwaitingApproval,
    /// Approved and being written; a node that stopped here leaves it so, and an
    /// approver approves it again after reviewing the fresh summary (idempotent).
    Releasing,
    /// Written.
    Approved,
    /// Refused; nothing was written and the rows are gone.
    Rejected,
}

/// One row of a summary's samples.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleRow {
    /// The source's own id.
    pub source_id: String,
    /// Entry id.
    pub entry_id: String,
    /// The subject's name (as uploaded; for withdrawals, empty: the entry's own name is
    /// in its record).
    pub name: String,
    /// Why the row would be refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What an amendment changes (`distribution`, `content`, `reason`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// An amendment that changes who may receive an entry: shown to the approver in full.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistributionChange {
    /// The source's own id.
    pub source_id: String,
    /// Entry id.
    pub entry_id: String,
    /// The subject's name as uploaded.
    pub name: String,
    /// The distribution now.
    #[schema(value_type = Object)]
    pub before: wlnode_crypto::model::Distribution,
    /// The distribution the row would give it.
    #[schema(value_type = Object)]
    pub after: wlnode_crypto::model::Distribution,
}

/// What releasing a batch would change, judged against the store when computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSummary {
    /// Rows in the batch.
    pub rows: usize,
    /// New entries.
    pub new: usize,
    /// Entries that get a new version (reinstated ones included).
    pub amended: usize,
    /// Of those, withdrawn entries the rows list again.
    pub reinstated: usize,
    /// Of those, amendments that change who may receive the entry (every one is in
    /// `distribution_changes`).
    pub distribution_changed: usize,
    /// Amendments per changed part (`content`, `distribution`, `reason`, ...).
    pub changed_parts: BTreeMap<String, usize>,
    /// Rows that change nothing.
    pub unchanged: usize,
    /// Rows that would be refused.
    pub failed: usize,
    /// Own entries of the list that would be withdrawn (full list only).
    pub withdrawn: usize,
    /// Up to [`SAMPLES`] new rows.
    pub sample_new: Vec<SampleRow>,
    /// Up to [`SAMPLES`] amended rows.
    pub sample_amended: Vec<SampleRow>,
    /// Up to [`SAMPLES`] refused rows, with why.
    pub sample_failed: Vec<SampleRow>,
    /// Up to [`SAMPLES`] withdrawals.
    pub sample_withdrawn: Vec<SampleRow>,
    /// Every amendment that changes an entry's distribution, before and after (the
    /// rows themselves are at `GET /v1/import-batches/{id}/rows`).
    pub distribution_changes: Vec<DistributionChange>,
    /// SHA-256 (hex) of the rows as uploaded.
    pub content_digest: String,
    /// SHA-256 (hex) of the plan: every row's entry, action and base head, and every
    /// withdrawal. Approval names it.
    pub plan_digest: String,
    /// When it was computed.
    #[schema(value_type = String)]
    pub computed_at: Timestamp,
}

/// What a release wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchResult {
    /// New entries written.
    pub imported: usize,
    /// New versions written.
    pub amended: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Rows refused at release.
    pub failed: usize,
    /// Entries withdrawn.
    pub withdrawn: usize,
}

/// One import batch (its header; the rows are stored beside it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBatch {
    /// Batch id (32 hex digits).
    pub batch_id: String,
    /// The source list the rows belong to.
    pub source_list: String,
    /// The rows are the full list: own entries of the list not in it are withdrawn.
    pub withdraw_missing: bool,
    /// State.
    pub state: BatchState,
    /// Author's pseudonymous id.
    pub author: String,
    /// Author's name (local).
    pub author_name: String,
    /// When it was opened.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// Rows uploaded.
    pub rows: usize,
    /// Bytes of rows uploaded.
    pub bytes: u64,
    /// Uploaded chunks.
    pub chunks: u32,
    /// What releasing it would change (once submitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<BatchSummary>,
    /// Who decided (pseudonymous id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Their name (local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by_name: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub decided_at: Option<Timestamp>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    /// Why the last release attempt stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What release wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<BatchResult>,
}

/// Why a batch operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// No such batch.
    #[error("no import batch {0}")]
    Unknown(String),
    /// The batch is not in a state that allows this.
    #[error("import batch {id} is {state:?}: {what}")]
    State {
        /// Batch id.
        id: String,
        /// Its state.
        state: BatchState,
        /// What was refused.
        what: &'static str,
    },
    /// Only the author uploads to and submits their batch.
    #[error("import batch {0} belongs to another user")]
    NotAuthor(String),
    /// Four eyes: the author cannot approve their own batch.
    #[error(
        "import batch {0} was uploaded by you: another user with the approver role must approve it"
    )]
    OwnBatch(String),
    /// The token file's admin is no person.
    #[error(
        "the bootstrap admin (api.token_file) cannot approve imports: approve as a named user with the approver role"
    )]
    Bootstrap,
    /// The plan changed since the summary the approver named.
    #[error(
        "import batch {id} would now change something else than plan {expected}: the summary was recomputed (plan {now}); review it and approve that"
    )]
    Stale {
        /// Batch id.
        id: String,
        /// The plan the approver named.
        expected: String,
        /// The plan now.
        now: String,
    },
    /// A bound was hit.
    #[error("{0}")]
    Limit(String),
    /// The write failed at release (the batch waits again).
    #[error(transparent)]
    Write(#[from] LifecycleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored table does not decode, or no id could be made.
    #[error("import batches: {0}")]
    Internal(String),
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    batches: BTreeMap<String, ImportBatch>,
}

fn read(s: &wlnode_store::Store) -> Result<Table, BatchError> {
    match s.meta_get(META_KEY)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| BatchError::Internal(e.to_string())),
        None => Ok(Table::default()),
    }
}

fn write(s: &wlnode_store::Store, t: &Table) -> Result<(), BatchError> {
    let b = serde_json::to_vec(t).map_err(|e| BatchError::Internal(e.to_string()))?;
    s.meta_set(META_KEY, &b)?;
    Ok(())
}

fn chunk_key(id: &str, n: u32) -> Vec<u8> {
    format!("import_batch/{id}/{n:08}").into_bytes()
}

fn undecided(b: &ImportBatch) -> bool {
    matches!(
        b.state,
        BatchState::Open | BatchState::AwaitingApproval | BatchState::Releasing
    )
}

/// Keeps the newest [`MAX_DECIDED`] decided batches.
fn prune(t: &mut Table) {
    let mut decided: Vec<(Timestamp, String)> = t
        .batches
        .values()
        .filter(|b| !undecided(b))
        .map(|b| (b.decided_at.unwrap_or(b.created_at), b.batch_id.clone()))
        .collect();
    if decided.len() > MAX_DECIDED {
        decided.sort();
        for (_, id) in decided.iter().take(decided.len() - MAX_DECIDED) {
            t.batches.remove(id);
        }
    }
}

fn sample(source_id: &str, entry_id: EntryId, name: &str, error: Option<String>) -> SampleRow {
    SampleRow {
        source_id: source_id.to_owned(),
        entry_id: entry_id.to_hex(),
        name: name.to_owned(),
        error,
        changes: Vec::new(),
    }
}

/// What releasing a batch would do, row by row: the summary, the plan of each row that
/// is released (`None` for rows refused before the store is asked: a source id seen
/// earlier in the batch, or an entry the roster no longer admits), and the withdrawals.
struct Plan {
    summary: BatchSummary,
    rows: Vec<Option<Planned>>,
    withdrawals: Vec<(EntryId, RecordId)>,
}

/// Why each row is refused before the store is asked, if it is: its source id came
/// earlier in the batch (the first one counts, as a release in chunks would otherwise
/// write it twice), or the roster no longer admits its groups or sensitivity.
fn refusals(rows: &[BatchRow], roster: &Roster) -> Vec<Option<String>> {
    let mut first: HashMap<&str, usize> = HashMap::new();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            if let Some(j) = first.get(r.source_id.as_str()) {
                return Some(format!(
                    "source id {:?} appears twice in this batch (first in row {})",
                    r.source_id,
                    j + 1
                ));
            }
            first.insert(&r.source_id, i);
            check_against_roster(&r.entry, roster)
                .err()
                .map(|e| e.to_string())
        })
        .collect()
}

/// Works out what releasing `rows` would do now.
async fn plan(
    batch: &ImportBatch,
    rows: &[BatchRow],
    lifecycle: &Lifecycle,
    roster: &Roster,
) -> Result<Plan, BatchError> {
    let mut content = Sha256::new();
    let mut digest = Sha256::new();
    digest.update(batch.source_list.as_bytes());
    digest.update([u8::from(batch.withdraw_missing)]);
    let mut s = BatchSummary {
        rows: rows.len(),
        new: 0,
        amended: 0,
        reinstated: 0,
        distribution_changed: 0,
        changed_parts: BTreeMap::new(),
        unchanged: 0,
        failed: 0,
        withdrawn: 0,
        sample_new: Vec::new(),
        sample_amended: Vec::new(),
        sample_failed: Vec::new(),
        sample_withdrawn: Vec::new(),
        distribution_changes: Vec::new(),
        content_digest: String::new(),
        plan_digest: String::new(),
        computed_at: Timestamp::now(),
    };
    for r in rows {
        let b = serde_json::to_vec(r).map_err(|e| BatchError::Internal(e.to_string()))?;
        content.update((b.len() as u64).to_be_bytes());
        content.update(&b);
    }
    let refused = refusals(rows, roster);
    let released: Vec<usize> = (0..rows.len())
        .filter(|i| refused.get(*i).is_some_and(Option::is_none))
        .collect();
    let mut plans: Vec<Option<Planned>> = vec![None; rows.len()];
    for chunk in released.chunks(RELEASE_CHUNK) {
        let items: Vec<ImportItem> = chunk
            .iter()
            .filter_map(|i| rows.get(*i))
            .map(|r| ImportItem {
                source_id: r.source_id.clone(),
                draft: r.entry.clone(),
            })
            .collect();
        let planned = lifecycle.plan_import(&batch.source_list, &items).await?;
        for (i, (_, p)) in chunk.iter().zip(planned) {
            if let Some(slot) = plans.get_mut(*i) {
                *slot = Some(p);
            }
        }
    }
    for (i, row) in rows.iter().enumerate() {
        let entry_id =
            wlnode_import::entry_id_for(lifecycle.agency(), &batch.source_list, &row.source_id);
        digest.update(entry_id.as_bytes());
        let name = row.entry.subject.name.as_str();
        let p = match (
            plans.get(i).cloned().flatten(),
            refused.get(i).cloned().flatten(),
        ) {
            (Some(p), _) => p,
            (None, Some(why)) => Planned::Failed(why),
            (None, None) => Planned::Failed("not planned".into()),
        };
        match p {
            Planned::New => {
                digest.update(b"N");
                s.new += 1;
                if s.sample_new.len() < SAMPLES {
                    s.sample_new
                        .push(sample(&row.source_id, entry_id, name, None));
                }
            }
            Planned::Amend {
                base,
                version,
                reinstates,
                changes,
                distribution_before,
            } => {
                digest.update(b"A");
                digest.update(base.as_bytes());
                digest.update(version.to_be_bytes());
                digest.update([u8::from(reinstates)]);
                // What the row would say, not only that it changes.
                let b = serde_json::to_vec(&row.entry)
                    .map_err(|e| BatchError::Internal(e.to_string()))?;
                digest.update(Sha256::digest(&b));
                s.amended += 1;
                if reinstates {
                    s.reinstated += 1;
                }
                for c in &changes {
                    *s.changed_parts.entry((*c).to_owned()).or_default() += 1;
                }
                if let Some(before) = distribution_before {
                    s.distribution_changed += 1;
                    s.distribution_changes.push(DistributionChange {
                        source_id: row.source_id.clone(),
                        entry_id: entry_id.to_hex(),
                        name: name.to_owned(),
                        before: *before,
                        after: row.entry.distribution.clone(),
                    });
                }
                if s.sample_amended.len() < SAMPLES {
                    let mut r = sample(&row.source_id, entry_id, name, None);
                    r.changes = changes.iter().map(|c| (*c).to_owned()).collect();
                    s.sample_amended.push(r);
                }
            }
            Planned::Unchanged => {
                digest.update(b"U");
                s.unchanged += 1;
            }
            Planned::Failed(e) => {
                digest.update(b"F");
                s.failed += 1;
                if s.sample_failed.len() < SAMPLES {
                    s.sample_failed
                        .push(sample(&row.source_id, entry_id, name, Some(e)));
                }
            }
        }
    }
    let mut withdrawals = Vec::new();
    if batch.withdraw_missing {
        let keep: HashSet<String> = rows.iter().map(|r| r.source_id.clone()).collect();
        let mut gone = lifecycle
            .plan_withdraw_missing(&batch.source_list, &keep)
            .await?;
        gone.sort_by_key(|(id, _, _)| *id);
        for (entry_id, head, source_id) in gone {
            digest.update(b"W");
            digest.update(entry_id.as_bytes());
            digest.update(head.as_bytes());
            s.withdrawn += 1;
            if s.sample_withdrawn.len() < SAMPLES {
                s.sample_withdrawn
                    .push(sample(&source_id, entry_id, "", None));
            }
            withdrawals.push((entry_id, head));
        }
    }
    // New rows are planned by content too: the digest covers every row's bytes.
    let content = content.finalize();
    digest.update(content);
    s.content_digest = hex::encode(content);
    s.plan_digest = hex::encode(digest.finalize());
    Ok(Plan {
        summary: s,
        rows: plans,
        withdrawals,
    })
}

/// The import batches: the API's handle.
#[derive(Clone, Debug)]
pub struct ImportBatches {
    store: StoreHandle,
    events: Option<crate::events::Events>,
    /// One change at a time, so a batch is never released twice at once.
    lock: Arc<Mutex<()>>,
}

impl ImportBatches {
    /// The batches kept in `store`.
    pub fn new(store: StoreHandle) -> Self {
        Self {
            store,
            events: None,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Announces every submitted batch on `events` (`draft_awaiting_approval`).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = Some(events);
        self
    }

    /// Opens a batch of `source_list` for `author` to upload rows to.
    pub async fn open(
        &self,
        author: &Actor,
        source_list: &str,
        withdraw_missing: bool,
    ) -> Result<ImportBatch, BatchError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| BatchError::Internal(e.to_string()))?;
        let batch = ImportBatch {
            batch_id: hex::encode(id),
            source_list: source_list.to_owned(),
            withdraw_missing,
            state: BatchState::Open,
            author: author.id.clone(),
            author_name: author.name.clone(),
            created_at: Timestamp::now(),
            rows: 0,
            bytes: 0,
            chunks: 0,
            summary: None,
            decided_by: None,
            decided_by_name: None,
            decided_at: None,
            reject_reason: None,
            last_error: None,
            result: None,
        };
        let _g = self.lock.lock().await;
        let b = batch.clone();
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                let open = t.batches.values().filter(|x| undecided(x)).count();
                if open >= MAX_OPEN {
                    return Err(BatchError::Limit(format!(
                        "{MAX_OPEN} import batches are already open or awaiting approval"
                    )));
                }
                let mine = t
                    .batches
                    .values()
                    .filter(|x| undecided(x) && x.author == b.author)
                    .count();
                if mine >= MAX_OPEN_PER_AUTHOR {
                    return Err(BatchError::Limit(format!(
                        "you already have {MAX_OPEN_PER_AUTHOR} import batches open or awaiting approval: submit or reject them first"
                    )));
                }
                let event = acted(
                    b.created_at,
                    &b.author,
                    "import_batch_open",
                    Some(b.batch_id.clone()),
                );
                t.batches.insert(b.batch_id.clone(), b);
                write(s, &t)?;
                s.audit_append(&[event])?;
                Ok(())
            })
            .await?;
        Ok(batch)
    }

    /// Appends rows (already checked by the caller) to an open batch of `author`.
    pub async fn append(
        &self,
        author: &Actor,
        id: &str,
        rows: Vec<BatchRow>,
    ) -> Result<ImportBatch, BatchError> {
        if rows.is_empty() || rows.len() > MAX_CHUNK_ROWS {
            return Err(BatchError::Limit(format!(
                "an upload holds 1 to {MAX_CHUNK_ROWS} rows, got {}",
                rows.len()
            )));
        }
        let bytes = serde_json::to_vec(&rows).map_err(|e| BatchError::Internal(e.to_string()))?;
        let _g = self.lock.lock().await;
        let mut b = self.get_locked(id).await?;
        if b.author != author.id {
            return Err(BatchError::NotAuthor(b.batch_id));
        }
        if b.state != BatchState::Open {
            return Err(BatchError::State {
                id: b.batch_id,
                state: b.state,
                what: "rows are uploaded only while it is open",
            });
        }
        if b.chunks >= MAX_CHUNKS {
            return Err(BatchError::Limit(format!(
                "an import batch holds at most {MAX_CHUNKS} uploads: send larger ones"
            )));
        }
        if b.rows + rows.len() > MAX_ROWS {
            return Err(BatchError::Limit(format!(
                "an import batch holds at most {MAX_ROWS} rows"
            )));
        }
        if b.bytes + bytes.len() as u64 > MAX_BATCH_BYTES {
            return Err(BatchError::Limit(format!(
                "an import batch holds at most {MAX_BATCH_BYTES} bytes of rows"
            )));
        }
        let n = b.chunks;
        b.chunks += 1;
        b.rows += rows.len();
        b.bytes += bytes.len() as u64;
        let out = b.clone();
        self.store
            .try_call(move |s| {
                // The chunk first: a header never counts rows that are not stored.
                s.meta_set(&chunk_key(&b.batch_id, n), &bytes)?;
                let mut t = read(s)?;
                t.batches.insert(b.batch_id.clone(), b);
                write(s, &t)
            })
            .await?;
        Ok(out)
    }

    /// Submits an open batch of `author`: computes its summary and waits for approval.
    pub async fn submit(
        &self,
        author: &Actor,
        id: &str,
        lifecycle: &Lifecycle,
        roster: &Roster,
    ) -> Result<ImportBatch, BatchError> {
        let _g = self.lock.lock().await;
        let mut b = self.get_locked(id).await?;
        if b.author != author.id {
            return Err(BatchError::NotAuthor(b.batch_id));
        }
        if b.state != BatchState::Open {
            return Err(BatchError::State {
                id: b.batch_id,
                state: b.state,
                what: "only an open batch is submitted",
            });
        }
        let rows = self.rows(&b).await?;
        b.summary = Some(plan(&b, &rows, lifecycle, roster).await?.summary);
        b.state = BatchState::AwaitingApproval;
        let out = b.clone();
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                let event = acted(
                    Timestamp::now(),
                    &b.author,
                    "import_batch_submit",
                    Some(b.batch_id.clone()),
                );
                t.batches.insert(b.batch_id.clone(), b);
                write(s, &t)?;
                s.audit_append(&[event])?;
                Ok::<_, BatchError>(())
            })
            .await?;
        if let (Some(ev), Some(sum)) = (&self.events, &out.summary) {
            ev.emit(
                wlnode_config::EventType::DraftAwaitingApproval,
                serde_json::json!({
                    "batch_id": out.batch_id,
                    "op": "import",
                    "source_list": out.source_list,
                    "rows": out.rows,
                    "new": sum.new,
                    "amended": sum.amended,
                    "withdrawn": sum.withdrawn,
                    "author": out.author,
                }),
            );
        }
        Ok(out)
    }

    /// Every batch, or those in `state`, oldest first.
    pub async fn list(&self, state: Option<BatchState>) -> Result<Vec<ImportBatch>, BatchError> {
        let t = self.store.try_call(read).await?;
        let mut out: Vec<ImportBatch> = t
            .batches
            .into_values()
            .filter(|b| state.is_none_or(|s| b.state == s))
            .collect();
        out.sort_by_key(|b| b.created_at);
        Ok(out)
    }

    /// One batch.
    pub async fn get(&self, id: &str) -> Result<ImportBatch, BatchError> {
        self.get_locked(id).await
    }

    async fn get_locked(&self, id: &str) -> Result<ImportBatch, BatchError> {
        let t = self.store.try_call(read).await?;
        t.batches
            .get(id)
            .cloned()
            .ok_or_else(|| BatchError::Unknown(id.chars().take(64).collect()))
    }

    /// Up to `limit` rows of batch `id` from position `offset`, in upload order: what
    /// an approver reads beyond the summary's samples.
    pub async fn rows_page(
        &self,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(ImportBatch, Vec<BatchRow>), BatchError> {
        let b = self.get_locked(id).await?;
        if !undecided(&b) {
            return Ok((b, Vec::new()));
        }
        let rows = self.rows(&b).await?;
        let page = rows.into_iter().skip(offset).take(limit).collect();
        Ok((b, page))
    }

    /// Every row of `b`, in upload order.
    async fn rows(&self, b: &ImportBatch) -> Result<Vec<BatchRow>, BatchError> {
        let id = b.batch_id.clone();
        let chunks = b.chunks;
        self.store
            .try_call(move |s| {
                let mut rows = Vec::new();
                for n in 0..chunks {
                    let Some(bytes) = s.meta_get(&chunk_key(&id, n))? else {
                        return Err(BatchError::Internal(format!(
                            "batch {id}: chunk {n} is missing"
                        )));
                    };
                    let chunk: Vec<BatchRow> = serde_json::from_slice(&bytes)
                        .map_err(|e| BatchError::Internal(format!("batch {id}: chunk {n}: {e}")))?;
                    rows.extend(chunk);
                }
                Ok(rows)
            })
            .await
    }

    /// Saves `b` and, when it is decided, drops its rows and old decided batches. The
    /// header is written first: a crash between the two leaves rows nobody reads (they
    /// go with the next decision's sweep), never a header whose rows are gone.
    async fn save(&self, b: ImportBatch, action: Option<&'static str>) -> Result<(), BatchError> {
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                let event = action.map(|a| {
                    acted(
                        b.decided_at.unwrap_or(Timestamp::now()),
                        b.decided_by.as_deref().unwrap_or_default(),
                        a,
                        Some(b.batch_id.clone()),
                    )
                });
                let drop_rows = (!undecided(&b)).then(|| (b.batch_id.clone(), b.chunks));
                t.batches.insert(b.batch_id.clone(), b);
                prune(&mut t);
                write(s, &t)?;
                if let Some(e) = event {
                    s.audit_append(&[e])?;
                }
                if let Some((id, chunks)) = drop_rows {
                    // One more key than counted: a crash inside `append` may have
                    // stored a chunk before its header counted it.
                    let keys: Vec<Vec<u8>> = (0..=chunks).map(|n| chunk_key(&id, n)).collect();
                    s.meta_remove_all(&keys)?;
                }
                s.flush()?;
                Ok(())
            })
            .await
    }

    /// Approves the batch's plan `plan_digest` and releases it: the rows are imported
    /// (and, for a full list, the entries the plan names withdrawn) as `approver`,
    /// never its author, each chunk only if its rows still do what the plan says.
    /// Returns the batch and the store's reports, for the caller to pass on to
    /// replication and screening (also when the release stopped part-way: what was
    /// written is written).
    pub async fn approve(
        &self,
        approver: &Actor,
        id: &str,
        plan_digest: &str,
        lifecycle: &Lifecycle,
        roster: &Roster,
    ) -> Result<(ImportBatch, Vec<IngestReport>), (BatchError, Vec<IngestReport>)> {
        let _g = self.lock.lock().await;
        let none = |e: BatchError| (e, Vec::new());
        let mut b = self.get_locked(id).await.map_err(none)?;
        if !matches!(
            b.state,
            BatchState::AwaitingApproval | BatchState::Releasing
        ) {
            return Err(none(BatchError::State {
                id: b.batch_id,
                state: b.state,
                what: "only a submitted batch is approved",
            }));
        }
        if b.author == approver.id {
            return Err(none(BatchError::OwnBatch(b.batch_id)));
        }
        if approver.name == crate::users::BOOTSTRAP {
            return Err(none(BatchError::Bootstrap));
        }
        // Not the plan the summary shows: refused before any work.
        let seen = b
            .summary
            .as_ref()
            .map(|s| s.plan_digest.clone())
            .unwrap_or_default();
        if seen != plan_digest {
            return Err(none(BatchError::Stale {
                id: b.batch_id,
                expected: plan_digest.chars().take(64).collect(),
                now: seen,
            }));
        }
        let rows = self.rows(&b).await.map_err(none)?;
        // The approver approves what they saw: the plan now must be the one named.
        let now = plan(&b, &rows, lifecycle, roster).await.map_err(none)?;
        if now.summary.plan_digest != plan_digest {
            let err = BatchError::Stale {
                id: b.batch_id.clone(),
                expected: plan_digest.chars().take(64).collect(),
                now: now.summary.plan_digest.clone(),
            };
            b.summary = Some(now.summary);
            b.state = BatchState::AwaitingApproval;
            b.decided_by = None;
            b.decided_by_name = None;
            b.decided_at = None;
            self.save(b, None).await.map_err(none)?;
            return Err(none(err));
        }
        // Durably "releasing" before anything is signed.
        b.state = BatchState::Releasing;
        b.decided_by = Some(approver.id.clone());
        b.decided_by_name = Some(approver.name.clone());
        b.decided_at = Some(Timestamp::now());
        b.last_error = None;
        self.save(b.clone(), Some("import_batch_approve"))
            .await
            .map_err(none)?;
        let writer = lifecycle.acting_as(&approver.id);
        let mut result = BatchResult {
            failed: now.rows.iter().filter(|p| p.is_none()).count(),
            ..BatchResult::default()
        };
        let mut reports = Vec::new();
        let chosen: Vec<(usize, Planned)> = now
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.clone().map(|p| (i, p)))
            .collect();
        let released = async {
            for chunk in chosen.chunks(RELEASE_CHUNK) {
                let items = chunk
                    .iter()
                    .filter_map(|(i, _)| rows.get(*i))
                    .map(|r| ImportItem {
                        source_id: r.source_id.clone(),
                        draft: r.entry.clone(),
                    })
                    .collect();
                let expected: Vec<Planned> = chunk.iter().map(|(_, p)| p.clone()).collect();
                let (outcomes, report) = writer
                    .import_expecting(&b.source_list, items, &expected)
                    .await?;
                reports.extend(report);
                for o in outcomes {
                    match o {
                        ImportOutcome::Imported { .. } => result.imported += 1,
                        ImportOutcome::Amended { .. } => result.amended += 1,
                        ImportOutcome::Unchanged { .. } => result.unchanged += 1,
                        ImportOutcome::Failed { .. } => result.failed += 1,
                    }
                }
            }
            if !now.withdrawals.is_empty() {
                let (written, report) = writer
                    .withdraw_exact(
                        &b.source_list,
                        &now.withdrawals,
                        "no longer in the source list",
                    )
                    .await?;
                result.withdrawn = written.len();
                reports.extend(report);
            }
            Ok::<_, LifecycleError>(())
        }
        .await;
        if let Err(e) = released {
            // What was written stays written (and is passed on); the rest waits for
            // another approval of a fresh summary.
            b.state = BatchState::AwaitingApproval;
            b.decided_by = None;
            b.decided_by_name = None;
            b.decided_at = None;
            b.last_error = Some(e.to_string());
            if let Err(s) = self.save(b, None).await {
                return Err((s, reports));
            }
            return Err((BatchError::Write(e), reports));
        }
        b.state = BatchState::Approved;
        b.result = Some(result);
        if let Err(s) = self.save(b.clone(), Some("import_batch_released")).await {
            return Err((s, reports));
        }
        Ok((b, reports))
    }

    /// Rejects an undecided batch: nothing more is written and its rows are dropped.
    /// An approver rejects any; the author (an editor) abandons their own. A batch
    /// whose release stopped part-way (`releasing` after a crash) keeps that on
    /// record: what was written is in the audit log under `import_batch_approve`.
    pub async fn reject(
        &self,
        by: &Actor,
        id: &str,
        reason: String,
    ) -> Result<ImportBatch, BatchError> {
        let _g = self.lock.lock().await;
        let mut b = self.get_locked(id).await?;
        if !undecided(&b) {
            return Err(BatchError::State {
                id: b.batch_id,
                state: b.state,
                what: "it was decided already",
            });
        }
        if b.author != by.id && !by.has(crate::users::Role::Approver) {
            return Err(BatchError::NotAuthor(b.batch_id));
        }
        if b.state == BatchState::Releasing {
            b.last_error = Some(
                "rejected after a release that stopped part-way: rows may have been written (see the audit log)"
                    .into(),
            );
        }
        b.state = BatchState::Rejected;
        b.decided_by = Some(by.id.clone());
        b.decided_by_name = Some(by.name.clone());
        b.decided_at = Some(Timestamp::now());
        b.reject_reason = Some(reason);
        self.save(b.clone(), Some("import_batch_reject")).await?;
        Ok(b)
    }
}
