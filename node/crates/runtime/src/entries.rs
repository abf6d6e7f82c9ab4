//! The entry lifecycle of this agency's own watchlist (add, amend, withdraw, import)
//! and the JSON view of any entry.
//!
//! Only the origin may write an entry, so every write here is for this node's agency.
//! Writes are serialised by one lock: reading the head, choosing the next version,
//! signing and queueing the commit happen as one step, so two concurrent amendments can
//! never sign the same version twice (which peers would see as equivocation).
//!
//! Imports are pipelined: an import releases the lock once its commit is queued to the
//! store actor, and waits for that commit's fsync outside the lock, so the next import
//! is judged while this one commits. That is sound because the actor runs jobs in
//! queue order: the next import's reads run after this batch was applied and its flush
//! returned, so they see it. The rules (ARCHITECTURE.md, "Pipelined imports"):
//! - no reply before the batch's own commit is durable;
//! - commits reach the store in the order they were judged (the lock);
//! - an import judged while the one before it was still pending waits for that one's
//!   outcome before queueing, and if it failed, fails too and writes nothing
//!   ([`LifecycleError::EarlierCommitFailed`]): it may have been judged against rows
//!   that are not stored. An import judged after the failure was seen judges against
//!   the store again (the failed batch is forgotten), and never against a store whose
//!   disk failed and has not been reopened;
//! - every other writer (add, amend, withdraw, the withdrawals of missing rows, the
//!   four-eyes `import_expecting`) takes the lock and then waits until the last queued
//!   import is settled, so it judges against a store with nothing pending.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryDraft, EntryId, FieldTag, Identifier,
    InvalidValue, Reason, RecordId, Status, SubjectKind,
};
use wlnode_crypto::record::{DisclosedContent, Record, RecordMeta, build_record, draft_fields};
use wlnode_crypto::roster::Roster;
use wlnode_crypto::time::{Date, PartialDate, Timestamp};

use wlnode_store::{IngestBatch, StoreError, StoreHandle};
use wlnode_types::{EntryKey, EntryState, Incoming, IngestReport, LocalMeta, Source, StoredRecord};

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The entry JSON or a value is invalid.
    #[error("{0}")]
    Invalid(InvalidValue),
    /// No such entry.
    #[error("entry {0} not found")]
    NotFound(String),
    /// The entry belongs to another agency.
    #[error("entry {entry} belongs to {origin}; only the origin agency may change it")]
    NotOrigin {
        /// Entry id.
        entry: String,
        /// Its origin.
        origin: AgencyCode,
    },
    /// The entry is already withdrawn.
    #[error("entry {0} is already withdrawn")]
    AlreadyWithdrawn(String),
    /// The entry's versions are used up (a record may carry at most
    /// `wlnode_crypto::record::MAX_VERSION`).
    #[error("entry {entry} is at version {version}, the highest a record may carry")]
    VersionLimit {
        /// Entry id.
        entry: String,
        /// Its highest valid version.
        version: u64,
    },
    /// Local writes to existing entries are held after a restore or a store reopen
    /// until this node has reconciled with its peers: peers may hold versions this
    /// store lost, and writing now could sign a second record for one of them.
    #[error(
        "local writes to existing entries are held since {since} (a restore or a store reopen) until this node has reconciled with every configured peer; retry then, or force the write if no peer can hold a newer version of this entry"
    )]
    AwaitingReconcile {
        /// When the hold began.
        since: Timestamp,
    },
    /// An approved plan no longer holds: the entry changed since it was reviewed.
    #[error(
        "entry {entry} changed since the plan was approved ({what}); nothing more of it was written"
    )]
    PlanChanged {
        /// Entry id.
        entry: String,
        /// What differs.
        what: String,
    },
    /// The import before this one was still committing while this one was judged, and
    /// that commit failed: this batch may have been judged against rows that are not
    /// stored, so nothing of it was written. Retrying judges it against the store again.
    #[error(
        "nothing of this import batch was written: it was judged while the import batch before it was still committing, and that commit failed ({earlier}); retry it"
    )]
    EarlierCommitFailed {
        /// Why the earlier batch failed.
        earlier: String,
    },
    /// Signing failed.
    #[error("cannot build record: {0}")]
    Build(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The result of one write.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Written {
    /// Entry id.
    pub entry_id: EntryId,
    /// New record id.
    pub record_id: RecordId,
    /// New version.
    pub version: u64,
}

/// One row of an import batch.
#[derive(Clone, Debug)]
pub struct ImportItem {
    /// The source's own id.
    pub source_id: String,
    /// The entry content.
    pub draft: EntryDraft,
}

/// What happened to one import row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ImportOutcome {
    /// A new entry.
    Imported {
        /// The write.
        #[serde(flatten)]
        written: Written,
    },
    /// An existing entry changed.
    Amended {
        /// The write.
        #[serde(flatten)]
        written: Written,
    },
    /// Nothing changed; nothing written.
    Unchanged {
        /// Entry id.
        entry_id: EntryId,
    },
    /// The row was refused.
    Failed {
        /// Why.
        error: String,
    },
}

/// What an import would do with one row, judged against the store as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A new entry (version 1).
    New,
    /// A new version of the entry whose head is `base`.
    Amend {
        /// The head now.
        base: RecordId,
        /// The version the import would sign.
        version: u64,
        /// The entry is withdrawn (or its head's key revoked): the row lists it again.
        reinstates: bool,
        /// What the row changes of the head: `reason`, `kind`, `country`,
        /// `categories`, `distribution`, `review_by`, `content` (names, identifiers,
        /// addresses, ...), `status`.
        changes: Vec<&'static str>,
        /// The head's distribution, when the row changes it (who may receive it).
        distribution_before: Option<Box<wlnode_crypto::model::Distribution>>,
    },
    /// The entry already holds exactly this; nothing would be written.
    Unchanged,
    /// The row would be refused, with why.
    Failed(String),
}

impl Planned {
    /// One word for what the row would do: `new`, `amend`, `reinstate`, `unchanged` or
    /// `failed`.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Amend {
                reinstates: true, ..
            } => "reinstate",
            Self::Amend { .. } => "amend",
            Self::Unchanged => "unchanged",
            Self::Failed(_) => "failed",
        }
    }
}

/// The node's writer of its own entries.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    agency: AgencyCode,
    key: Arc<SecretKey>,
    store: StoreHandle,
    lock: Arc<Mutex<()>>,
    /// The last import queued to the store and the outcome of its commit, once known
    /// (see the module header). Shared by every clone, as the lock is.
    last_import: Arc<std::sync::Mutex<Option<Settled>>>,
    /// Writes past a hold on local writes (see [`Lifecycle::forcing`]).
    force: bool,
    /// The user the writes are attributed to (see [`Lifecycle::acting_as`]).
    actor: Option<String>,
}

/// The outcome of a queued import's commit: `None` until it is known, then `Ok` or
/// why it failed.
type Settled = tokio::sync::watch::Receiver<Option<Result<(), Arc<str>>>>;

/// Waits for a queued import's outcome. A lost outcome (the task that waited for it
/// ended without one, at shutdown) counts as a failure.
async fn outcome_of(mut settled: Settled) -> Result<(), Arc<str>> {
    match settled.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or(Ok(())),
        Err(_) => Err(Arc::from("the commit's outcome was lost (node stopping)")),
    }
}

/// Checks the parts of a draft that need the roster: groups, sensitivity and the
/// recipients of field scopes exist.
pub fn check_against_roster(draft: &EntryDraft, roster: &Roster) -> Result<(), InvalidValue> {
    let d = &draft.distribution;
    for scope in d.fields.iter() {
        for r in &scope.to {
            let known = match r {
                wlnode_crypto::model::Recipient::Agency(a) => roster.member(a).is_some(),
                wlnode_crypto::model::Recipient::Group(g) => roster.groups().contains(g),
            };
            if !known {
                return Err(InvalidValue::new(
                    format!("distribution.fields.{}", scope.field),
                    format!("{r} is not a member or sharing group in the roster"),
                ));
            }
        }
    }
    for (i, g) in d.groups.iter().enumerate() {
        if !roster.groups().contains(g) {
            return Err(InvalidValue::new(
                format!("distribution.groups[{i}]"),
                format!("group {g:?} is not a sharing group in the roster"),
            ));
        }
    }
    if roster.sensitivity_rank(&d.sensitivity).is_none() {
        return Err(InvalidValue::new(
            "distribution.sensitivity",
            format!(
                "{:?} is not a sensitivity in the roster ({})",
                d.sensitivity.as_str(),
                roster
                    .sensitivities()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" < ")
            ),
        ));
    }
    Ok(())
}

/// Whether a record of ours already carries exactly this draft's content.
pub fn same_content(record: &Record, draft: &EntryDraft) -> bool {
    let h = record.header();
    if h.reason != draft.reason
        || h.subject_kind != draft.subject.kind
        || h.subject_country != draft.subject.country
        || h.categories != draft.categories
        || h.distribution != draft.distribution
        || h.review_by != draft.review_by
        || h.on_hit != draft.on_hit
        || h.status != Status::Active
    {
        return false;
    }
    let fields = draft_fields(draft, None);
    if fields.len() != h.fields.len() || !record.is_complete() {
        return false;
    }
    fields
        .iter()
        .zip(record.disclosures())
        .zip(&h.fields)
        .all(|(((tag, value), d), c)| *tag == c.tag && d.value == value)
}

/// What `draft` changes of `record` (named as in [`Planned::Amend`]), and the
/// record's distribution when the draft changes it.
pub fn changes_of(
    record: &Record,
    draft: &EntryDraft,
) -> (
    Vec<&'static str>,
    Option<Box<wlnode_crypto::model::Distribution>>,
) {
    let h = record.header();
    let mut out = Vec::new();
    if h.status != Status::Active {
        out.push("status");
    }
    if h.reason != draft.reason {
        out.push("reason");
    }
    if h.subject_kind != draft.subject.kind {
        out.push("kind");
    }
    if h.subject_country != draft.subject.country {
        out.push("country");
    }
    if h.categories != draft.categories {
        out.push("categories");
    }
    let distribution = (h.distribution != draft.distribution).then(|| {
        out.push("distribution");
        Box::new(h.distribution.clone())
    });
    if h.review_by != draft.review_by {
        out.push("review_by");
    }
    // Review s30-consult M6: a re-import that only asks for hit reports is a change.
    if h.on_hit != draft.on_hit {
        out.push("on_hit");
    }
    let fields = draft_fields(draft, None);
    let same_fields = record.is_complete()
        && fields.len() == h.fields.len()
        && fields
            .iter()
            .zip(record.disclosures())
            .zip(&h.fields)
            .all(|(((tag, value), d), c)| *tag == c.tag && d.value == value);
    if !same_fields {
        out.push("content");
    }
    (out, distribution)
}

/// The version the origin's next record of an entry carries: one above its highest
/// valid version. Records of a revoked key (demoted) do not count, so a thief's
/// `MAX_VERSION` cannot block the rightful agency; at the limit this is an error, never
/// an overflow.
pub fn next_version(entry_id: EntryId, state: &EntryState) -> Result<u64, LifecycleError> {
    let v = state.valid_version();
    v.checked_add(1)
        .filter(|n| *n <= wlnode_crypto::record::MAX_VERSION)
        .ok_or_else(|| LifecycleError::VersionLimit {
            entry: entry_id.to_hex(),
            version: v,
        })
}

impl Lifecycle {
    /// A writer for `agency`, signing with `key`.
    pub fn new(agency: AgencyCode, key: Arc<SecretKey>, store: StoreHandle) -> Self {
        Self {
            agency,
            key,
            store,
            lock: Arc::new(Mutex::new(())),
            last_import: Arc::default(),
            force: false,
            actor: None,
        }
    }

    /// The same writer, attributing its writes to `user` (a pseudonymous id): each
    /// commit then writes an `acted` audit event in the same transaction as its
    /// records.
    pub fn acting_as(&self, user: &str) -> Self {
        Self {
            actor: Some(user.to_owned()),
            ..self.clone()
        }
    }

    /// The same writer, writing even while local writes are held after a restore or a
    /// store reopen ([`LifecycleError::AwaitingReconcile`]): for an officer who knows
    /// that no peer holds a newer version of the entries written.
    pub fn forcing(&self) -> Self {
        Self {
            force: true,
            ..self.clone()
        }
    }

    /// Refuses a write to an existing entry (or one whose id is derived, as import's
    /// are) while local writes are held, unless forced.
    /// Also refuses, forced or not, while the store has a failed write and has not
    /// been reopened ([`refuse_if_failed`]).
    async fn check_hold(&self) -> Result<(), LifecycleError> {
        let held = self
            .store
            .call(|s| {
                refuse_if_failed(s)?;
                s.local_writes_held()
            })
            .await?;
        self.judge_hold(held)
    }

    /// [`Self::check_hold`] on the hold read already.
    fn judge_hold(&self, held: Option<u64>) -> Result<(), LifecycleError> {
        match held {
            Some(since) if !self.force => Err(LifecycleError::AwaitingReconcile {
                since: Timestamp(since),
            }),
            Some(_) => {
                tracing::warn!(agency = %self.agency, "local write forced while writes are held after a restore or store reopen");
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The last queued import, while its commit's outcome is not known yet.
    fn pending_import(&self) -> Option<Settled> {
        self.last_import
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .filter(|s| s.borrow().is_none())
    }

    /// Waits until the last queued import is settled (committed or failed). Called by
    /// every writer but the pipelined import, with the writer's lock held, so nothing
    /// is pending once it returns and they judge against the store alone.
    async fn settle(&self) {
        if let Some(pending) = self.pending_import() {
            // Its failure is its own request's to report; the store holds the truth.
            let _ = outcome_of(pending).await;
        }
    }

    /// Whether an import's commit is queued and not yet settled (tests wait on it).
    #[cfg(test)]
    fn import_pending(&self) -> bool {
        self.pending_import().is_some()
    }

    /// This node's agency.
    pub fn agency(&self) -> &AgencyCode {
        &self.agency
    }

    fn own_key(&self, entry_id: EntryId) -> EntryKey {
        EntryKey {
            entry_id,
            origin: self.agency.clone(),
        }
    }

    async fn own_head(
        &self,
        entry_id: EntryId,
    ) -> Result<(EntryState, StoredRecord), LifecycleError> {
        // One round trip, which refuses while the store has a failed write that is not
        // reopened yet: its memory may then hold a version the reopen drops (an import
        // whose flush failed), and a writer must not sign on top of that.
        let agency = self.agency.clone();
        let (all, head) = self
            .store
            .call(move |s| {
                refuse_if_failed(s)?;
                let all = s.entries_by_id(&entry_id)?;
                let head = match all.iter().find(|(k, _)| k.origin == agency) {
                    Some((_, state)) => s.record(&state.head)?,
                    None => None,
                };
                Ok::<_, StoreError>((all, head))
            })
            .await?;
        let Some((key, state)) = all.iter().find(|(k, _)| k.origin == self.agency).cloned() else {
            return Err(match all.first() {
                Some((k, _)) => LifecycleError::NotOrigin {
                    entry: entry_id.to_hex(),
                    origin: k.origin.clone(),
                },
                None => LifecycleError::NotFound(entry_id.to_hex()),
            });
        };
        let head = head.ok_or_else(|| StoreError::Corrupt {
            tree: "records",
            reason: format!("head {} of entry {} is missing", state.head, key.entry_id),
        })?;
        Ok((state, head))
    }

    fn sign(
        &self,
        meta: RecordMeta,
        draft: &EntryDraft,
    ) -> Result<wlnode_crypto::VerifiedRecord, LifecycleError> {
        build_record(meta, draft, &self.key).map_err(|e| match e {
            wlnode_crypto::RecordError::Draft(v) => LifecycleError::Invalid(v),
            other => LifecycleError::Build(other.to_string()),
        })
    }

    /// Stores `items` in one transaction, with the `acted` event of the user behind
    /// them. `bulk` names the action of a batch (`import`, `withdraw_missing`); a single
    /// record's action follows from its version and status.
    async fn commit(
        &self,
        items: Vec<Incoming>,
        bulk: Option<&'static str>,
    ) -> Result<IngestReport, LifecycleError> {
        Ok(self.store.ingest(self.batch_of(items, bulk)).await?)
    }

    /// The store batch of `items` (see [`Self::commit`]).
    fn batch_of(&self, items: Vec<Incoming>, bulk: Option<&'static str>) -> IngestBatch {
        let audit = match &self.actor {
            None => Vec::new(),
            Some(user) => {
                let (action, target, records) = match (bulk, items.as_slice()) {
                    (None, [one]) => {
                        let h = one.record.header();
                        let action = match (h.version, h.status) {
                            (_, Status::Withdrawn) => "entry_withdraw",
                            (1, _) => "entry_add",
                            _ => "entry_amend",
                        };
                        (action, Some(one.record.id().to_string()), None)
                    }
                    (b, _) => (
                        b.unwrap_or("import"),
                        None,
                        Some(u64::try_from(items.len()).unwrap_or(u64::MAX)),
                    ),
                };
                vec![wlnode_audit::event::Event::new(
                    Timestamp::now().as_millis(),
                    wlnode_audit::event::EventKind::Acted {
                        user: user.clone(),
                        action: action.to_owned(),
                        target,
                        records,
                    },
                )]
            }
        };
        IngestBatch {
            items,
            cursor: None,
            declined: Vec::new(),
            audit,
        }
    }

    /// Adds a new entry (version 1).
    pub async fn add(&self, draft: EntryDraft) -> Result<(Written, IngestReport), LifecycleError> {
        draft.validate().map_err(LifecycleError::Invalid)?;
        let _guard = self.lock.lock().await;
        self.settle().await;
        let entry_id = EntryId::random().map_err(|e| LifecycleError::Build(e.to_string()))?;
        self.write(entry_id, 1, Status::Active, None, &draft, None)
            .await
    }

    /// Amends an own entry: version + 1 with the full new content.
    pub async fn amend(
        &self,
        entry_id: EntryId,
        draft: EntryDraft,
    ) -> Result<(Written, IngestReport), LifecycleError> {
        draft.validate().map_err(LifecycleError::Invalid)?;
        let _guard = self.lock.lock().await;
        self.settle().await;
        let (state, _) = self.own_head(entry_id).await?;
        self.check_hold().await?;
        self.write(
            entry_id,
            next_version(entry_id, &state)?,
            Status::Active,
            None,
            &draft,
            None,
        )
        .await
    }

    /// Withdraws an own entry: version + 1, status withdrawn, with a reason. The
    /// content of the last version is kept.
    pub async fn withdraw(
        &self,
        entry_id: EntryId,
        reason: String,
    ) -> Result<(Written, IngestReport), LifecycleError> {
        let _guard = self.lock.lock().await;
        self.settle().await;
        let (state, head) = self.own_head(entry_id).await?;
        if state.status == Status::Withdrawn {
            return Err(LifecycleError::AlreadyWithdrawn(entry_id.to_hex()));
        }
        self.check_hold().await?;
        let draft = draft_of(&head.record).map_err(LifecycleError::Invalid)?;
        self.write(
            entry_id,
            next_version(entry_id, &state)?,
            Status::Withdrawn,
            Some(reason),
            &draft,
            None,
        )
        .await
    }

    async fn write(
        &self,
        entry_id: EntryId,
        version: u64,
        status: Status,
        withdrawal_reason: Option<String>,
        draft: &EntryDraft,
        local: Option<LocalMeta>,
    ) -> Result<(Written, IngestReport), LifecycleError> {
        let meta = RecordMeta {
            entry_id,
            origin: self.agency.clone(),
            version,
            issued_at: Timestamp::now(),
            status,
            withdrawal_reason,
        };
        let record = self.sign(meta, draft)?;
        let written = Written {
            entry_id,
            record_id: record.id(),
            version,
        };
        let report = self
            .commit(
                vec![Incoming {
                    record,
                    source: Source::Local,
                    local,
                    inclusion: None,
                }],
                None,
            )
            .await?;
        Ok((written, report))
    }

    /// Imports a batch from `source_list`: new rows are added, changed rows amend
    /// their entry, unchanged rows write nothing. Entry ids are derived from the
    /// source list and the source's own id, so re-importing is idempotent.
    pub async fn import(
        &self,
        source_list: &str,
        items: Vec<ImportItem>,
    ) -> Result<(Vec<ImportOutcome>, Option<IngestReport>), LifecycleError> {
        self.import_inner(source_list, items, None).await
    }

    /// As [`Lifecycle::import`], but only if every row would still do exactly what
    /// `expected` says (an approved plan, one per item): judged under the writer's
    /// lock, so no write slips in between; otherwise nothing of the batch is written
    /// ([`LifecycleError::PlanChanged`]).
    pub async fn import_expecting(
        &self,
        source_list: &str,
        items: Vec<ImportItem>,
        expected: &[Planned],
    ) -> Result<(Vec<ImportOutcome>, Option<IngestReport>), LifecycleError> {
        self.import_inner(source_list, items, Some(expected)).await
    }

    async fn import_inner(
        &self,
        source_list: &str,
        items: Vec<ImportItem>,
        expected: Option<&[Planned]>,
    ) -> Result<(Vec<ImportOutcome>, Option<IngestReport>), LifecycleError> {
        let guard = self.lock.lock().await;
        // The import still committing as this one starts to be judged: this one is
        // judged against its rows (the store applies it before our reads run), so it
        // may be written only if that commit succeeds. A four-eyes import waits for it
        // instead and is judged against the store alone, as every other writer is.
        let before = if expected.is_some() {
            self.settle().await;
            None
        } else {
            self.pending_import()
        };
        let judged = self.judge_and_sign(source_list, items, expected).await;
        // Its rows (unchanged ones too) were judged against the batch before, whose
        // outcome is known by now (our reads ran after its flush). If that failed, it
        // is the cause to report, whatever this batch's own result (an error reading
        // the store reopened after that failure, say).
        if let Some(before) = before
            && let Err(earlier) = outcome_of(before).await
        {
            return Err(LifecycleError::EarlierCommitFailed {
                earlier: earlier.to_string(),
            });
        }
        let (outcomes, incoming) = judged?;
        if incoming.is_empty() {
            return Ok((outcomes, None));
        }
        let queued = self
            .store
            .queue_ingest(self.batch_of(incoming, Some("import")))
            .await?;
        let (settled, settled_rx) = tokio::sync::watch::channel(None);
        *self
            .last_import
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settled_rx);
        // The outcome is heard by its own task, so that it is recorded for the next
        // import even if this request is dropped while it waits.
        let waiter = tokio::spawn(async move {
            let r = queued.durable().await;
            let _ = settled.send(Some(
                r.as_ref()
                    .map(|_| ())
                    .map_err(|e| Arc::<str>::from(e.to_string())),
            ));
            r
        });
        drop(guard);
        // No reply before this batch's own commit is durable.
        let report = waiter.await.map_err(|_| StoreError::Closed)??;
        Ok((outcomes, Some(report)))
    }

    /// Judges `items` (against `expected`, a four-eyes plan, if given) and signs the
    /// rows to write: each row's outcome, and the records to commit.
    async fn judge_and_sign(
        &self,
        source_list: &str,
        items: Vec<ImportItem>,
        expected: Option<&[Planned]>,
    ) -> Result<(Vec<ImportOutcome>, Vec<Incoming>), LifecycleError> {
        // Import derives entry ids from the source ids: even a "new" row may be an
        // entry peers hold and this store lost, so the hold applies.
        let plan = self.classify(source_list, &items, true).await?;
        if let Some(expected) = expected {
            if expected.len() != plan.len() {
                return Err(LifecycleError::PlanChanged {
                    entry: String::new(),
                    what: format!("{} rows planned, {} given", expected.len(), plan.len()),
                });
            }
            if let Some(((id, now), _)) = plan
                .iter()
                .zip(expected)
                .find(|((_, now), then)| now != *then)
            {
                return Err(LifecycleError::PlanChanged {
                    entry: id.to_hex(),
                    what: format!("now {}", now.describe()),
                });
            }
        }
        let mut outcomes = vec![None; items.len()];
        let mut to_sign: Vec<(usize, RecordMeta, EntryDraft, LocalMeta, bool)> = Vec::new();
        let now = Timestamp::now();
        for (i, (item, (entry_id, planned))) in items.into_iter().zip(plan).enumerate() {
            let slot = outcomes.get_mut(i);
            let (version, amend) = match planned {
                Planned::New => (1, false),
                Planned::Amend { version, .. } => (version, true),
                Planned::Unchanged => {
                    if let Some(s) = slot {
                        *s = Some(ImportOutcome::Unchanged { entry_id });
                    }
                    continue;
                }
                Planned::Failed(error) => {
                    if let Some(s) = slot {
                        *s = Some(ImportOutcome::Failed { error });
                    }
                    continue;
                }
            };
            let meta = RecordMeta {
                entry_id,
                origin: self.agency.clone(),
                version,
                issued_at: now,
                status: Status::Active,
                withdrawal_reason: None,
            };
            let local = LocalMeta {
                source_list: source_list.to_owned(),
                source_id: item.source_id,
            };
            to_sign.push((i, meta, item.draft, local, amend));
        }
        // Sign in parallel: signing dominates import cost.
        let key = self.key.clone();
        let signed = tokio::task::spawn_blocking(move || sign_parallel(&key, to_sign))
            .await
            .map_err(|e| LifecycleError::Build(e.to_string()))?;
        let mut incoming = Vec::new();
        for (i, res, local, amend) in signed {
            let slot = outcomes.get_mut(i);
            match res {
                Ok(record) => {
                    let written = Written {
                        entry_id: record.header().entry_id,
                        record_id: record.id(),
                        version: record.header().version,
                    };
                    if let Some(s) = slot {
                        *s = Some(if amend {
                            ImportOutcome::Amended { written }
                        } else {
                            ImportOutcome::Imported { written }
                        });
                    }
                    incoming.push(Incoming {
                        record,
                        source: Source::Local,
                        local: Some(local),
                        inclusion: None,
                    });
                }
                Err(e) => {
                    if let Some(s) = slot {
                        *s = Some(ImportOutcome::Failed {
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
        let outcomes = outcomes
            .into_iter()
            .map(|o| {
                o.unwrap_or(ImportOutcome::Failed {
                    error: "not processed".into(),
                })
            })
            .collect();
        Ok((outcomes, incoming))
    }

    /// What importing `items` from `source_list` would do now, row by row, without
    /// writing anything: the summary an approver reads before a batch is released
    /// (four-eyes), judged exactly as [`Lifecycle::import`] judges.
    pub async fn plan_import(
        &self,
        source_list: &str,
        items: &[ImportItem],
    ) -> Result<Vec<(EntryId, Planned)>, LifecycleError> {
        self.classify(source_list, items, false).await
    }

    /// The active own entries of `source_list` whose source id is not in `keep`
    /// (what [`Lifecycle::withdraw_missing`] would withdraw now), with their heads and
    /// source ids.
    pub async fn plan_withdraw_missing(
        &self,
        source_list: &str,
        keep: &HashSet<String>,
    ) -> Result<Vec<(EntryId, RecordId, String)>, LifecycleError> {
        Ok(self
            .active_of(source_list)
            .await?
            .into_iter()
            .filter(|(_, m, _)| !keep.contains(&m.source_id))
            .map(|(k, m, st)| (k.entry_id, st.head, m.source_id))
            .collect())
    }

    /// Judges each row against the store: one round trip for every row's entry state
    /// and head. `writing`: for an import that writes, which the same round trip
    /// refuses while local writes are held ([`Self::check_hold`]) or while the store
    /// has a failed write and has not been reopened (its memory may then hold a batch
    /// the disk does not, which the reopen drops).
    async fn classify(
        &self,
        source_list: &str,
        items: &[ImportItem],
        writing: bool,
    ) -> Result<Vec<(EntryId, Planned)>, LifecycleError> {
        let ids: Vec<EntryId> = items
            .iter()
            .map(|it| wlnode_import::entry_id_for(&self.agency, source_list, &it.source_id))
            .collect();
        let keys: Vec<EntryKey> = ids.iter().map(|id| self.own_key(*id)).collect();
        let (held, current) = self
            .store
            .call(move |s| {
                let held = if writing {
                    refuse_if_failed(s)?;
                    s.local_writes_held()?
                } else {
                    None
                };
                let current = keys
                    .iter()
                    .map(|k| {
                        Ok(match s.entry(k)? {
                            Some(st) => {
                                let head = s.record(&st.head)?;
                                Some((st, head))
                            }
                            None => None,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?;
                Ok((held, current))
            })
            .await?;
        self.judge_hold(held)?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(items.len());
        for ((item, entry_id), known) in items.iter().zip(ids).zip(current) {
            let planned = if let Err(e) = item.draft.validate() {
                Planned::Failed(e.to_string())
            } else if !seen.insert(entry_id) {
                Planned::Failed(format!(
                    "source id {:?} appears twice in this batch",
                    item.source_id
                ))
            } else {
                match &known {
                    None => Planned::New,
                    // A demoted head (its key was revoked) is re-signed even when the
                    // content matches.
                    Some((st, head))
                        if st.status == Status::Active
                            && !st.is_demoted(&st.head)
                            && head
                                .as_ref()
                                .is_some_and(|h| same_content(&h.record, &item.draft)) =>
                    {
                        Planned::Unchanged
                    }
                    Some((st, head)) => match next_version(entry_id, st) {
                        Ok(version) => {
                            let (changes, distribution_before) = match head {
                                Some(h) => changes_of(&h.record, &item.draft),
                                None => (vec!["content"], None),
                            };
                            Planned::Amend {
                                base: st.head,
                                version,
                                reinstates: st.status != Status::Active || st.is_demoted(&st.head),
                                changes,
                                distribution_before,
                            }
                        }
                        Err(e) => Planned::Failed(e.to_string()),
                    },
                }
            };
            out.push((entry_id, planned));
        }
        Ok(out)
    }

    /// Withdraws every active own entry imported from `source_list` whose source id
    /// is not in `keep` (a full-list re-import where rows vanished).
    pub async fn withdraw_missing(
        &self,
        source_list: &str,
        keep: &HashSet<String>,
        reason: &str,
    ) -> Result<(Vec<Written>, Option<IngestReport>), LifecycleError> {
        match self
            .withdraw_missing_at_most(source_list, keep, reason, &WithdrawGuard::NONE)
            .await?
        {
            MissingOutcome::Withdrawn {
                written, report, ..
            } => Ok((written, report)),
            // No guard never refuses.
            MissingOutcome::Refused { .. } => Ok((Vec::new(), None)),
        }
    }

    /// The active own entries imported from `source_list` (the withdrawal guard's
    /// baseline, counted before a refresh imports anything).
    pub async fn active_count(&self, source_list: &str) -> Result<usize, LifecycleError> {
        Ok(self.active_of(source_list).await?.len())
    }

    /// Every active own entry of `source_list`, with its local metadata and state.
    async fn active_of(
        &self,
        source_list: &str,
    ) -> Result<Vec<(EntryKey, LocalMeta, EntryState)>, LifecycleError> {
        let list = source_list.to_owned();
        let agency = self.agency.clone();
        // One store round trip: every own entry of the list with its state.
        let locals = self
            .store
            .call(move |s| {
                s.local_entries_of(&list)?
                    .into_iter()
                    .filter(|(k, _)| k.origin == agency)
                    .map(|(k, m)| {
                        let st = s.entry(&k)?;
                        Ok((k, m, st))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(locals
            .into_iter()
            .filter_map(|(k, m, st)| {
                st.filter(|st| st.status == Status::Active)
                    .map(|st| (k, m, st))
            })
            .collect())
    }

    /// As [`Lifecycle::withdraw_missing`], but withdraws nothing when `guard`
    /// refuses: when the withdrawal is more than `guard.max_fraction` of the list's
    /// active entries *before* this refresh imported anything (rows the file added
    /// do not dilute the count), or would leave fewer than `guard.floor` active (the
    /// cumulative guard against a list shrunk a little per refresh). A list that
    /// lost that much is taken to be truncated or hostile (the guard of scheduled
    /// sources). The count and the withdrawal happen under the writer's lock, so no
    /// write slips in between.
    pub async fn withdraw_missing_at_most(
        &self,
        source_list: &str,
        keep: &HashSet<String>,
        reason: &str,
        guard: &WithdrawGuard,
    ) -> Result<MissingOutcome, LifecycleError> {
        let _guard = self.lock.lock().await;
        self.settle().await;
        self.check_hold().await?;
        let active = self.active_of(source_list).await?;
        let total_active = active.len();
        let missing: Vec<_> = active
            .into_iter()
            .filter(|(_, m, _)| !keep.contains(&m.source_id))
            .collect();
        let base = guard.active_before.unwrap_or(total_active);
        let remaining = total_active.saturating_sub(missing.len());
        if missing.len() as f64 > guard.max_fraction * base as f64 || remaining < guard.floor {
            return Ok(MissingOutcome::Refused {
                would_withdraw: missing.len(),
                active: total_active,
                base,
                remaining,
                floor: guard.floor,
            });
        }
        let (written, report) = self.sign_withdrawals(missing, reason).await?;
        Ok(MissingOutcome::Withdrawn {
            written,
            report,
            active: total_active,
        })
    }

    /// Withdraws exactly the own entries of `source_list` in `expected` (entry id and
    /// the head an approved plan saw), under the writer's lock: if any of them is no
    /// longer active at that head, nothing is withdrawn ([`LifecycleError::PlanChanged`]).
    /// Entries missing from the list that the plan did not name stay as they are.
    pub async fn withdraw_exact(
        &self,
        source_list: &str,
        expected: &[(EntryId, RecordId)],
        reason: &str,
    ) -> Result<(Vec<Written>, Option<IngestReport>), LifecycleError> {
        let _guard = self.lock.lock().await;
        self.settle().await;
        self.check_hold().await?;
        let want: std::collections::HashMap<EntryId, RecordId> = expected.iter().copied().collect();
        let chosen: Vec<_> = self
            .active_of(source_list)
            .await?
            .into_iter()
            .filter(|(k, _, _)| want.contains_key(&k.entry_id))
            .collect();
        for (id, head) in expected {
            let still = chosen
                .iter()
                .any(|(k, _, st)| k.entry_id == *id && st.head == *head);
            if !still {
                return Err(LifecycleError::PlanChanged {
                    entry: id.to_hex(),
                    what: "no longer active at the head the plan saw".into(),
                });
            }
        }
        self.sign_withdrawals(chosen, reason).await
    }

    /// Signs and stores a withdrawal of each entry (its content kept).
    async fn sign_withdrawals(
        &self,
        missing: Vec<(EntryKey, LocalMeta, EntryState)>,
        reason: &str,
    ) -> Result<(Vec<Written>, Option<IngestReport>), LifecycleError> {
        let mut to_sign = Vec::new();
        let now = Timestamp::now();
        for (key, meta, state) in missing {
            let Some(head) = self.store.record(state.head).await? else {
                continue;
            };
            let draft = draft_of(&head.record).map_err(LifecycleError::Invalid)?;
            let m = RecordMeta {
                entry_id: key.entry_id,
                origin: self.agency.clone(),
                version: next_version(key.entry_id, &state)?,
                issued_at: now,
                status: Status::Withdrawn,
                withdrawal_reason: Some(reason.to_owned()),
            };
            to_sign.push((to_sign.len(), m, draft, meta, true));
        }
        let key = self.key.clone();
        let signed = tokio::task::spawn_blocking(move || sign_parallel(&key, to_sign))
            .await
            .map_err(|e| LifecycleError::Build(e.to_string()))?;
        let mut written = Vec::new();
        let mut incoming = Vec::new();
        for (_, res, local, _) in signed {
            let record = res.map_err(|e| LifecycleError::Build(e.to_string()))?;
            written.push(Written {
                entry_id: record.header().entry_id,
                record_id: record.id(),
                version: record.header().version,
            });
            incoming.push(Incoming {
                record,
                source: Source::Local,
                local: Some(local),
                inclusion: None,
            });
        }
        let report = if incoming.is_empty() {
            None
        } else {
            Some(self.commit(incoming, Some("withdraw_missing")).await?)
        };
        Ok((written, report))
    }
}

/// When [`Lifecycle::withdraw_missing_at_most`] refuses to withdraw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WithdrawGuard {
    /// Most of `active_before` that may be withdrawn at once (1: no limit).
    pub max_fraction: f64,
    /// The list's active entries before this refresh imported anything; `None`:
    /// those active when withdrawing.
    pub active_before: Option<usize>,
    /// The fewest active entries that may remain (0: no floor).
    pub floor: usize,
}

impl WithdrawGuard {
    /// No guard: everything missing is withdrawn.
    pub const NONE: Self = Self {
        max_fraction: 1.0,
        active_before: None,
        floor: 0,
    };
}

/// What [`Lifecycle::withdraw_missing_at_most`] did.
#[derive(Debug)]
pub enum MissingOutcome {
    /// The vanished entries were withdrawn (possibly none).
    Withdrawn {
        /// The withdrawals.
        written: Vec<Written>,
        /// The store's report, when anything was written.
        report: Option<IngestReport>,
        /// Active own entries of the list before.
        active: usize,
    },
    /// Nothing was withdrawn: that would have withdrawn more than the fraction allowed.
    Refused {
        /// Entries the list no longer holds.
        would_withdraw: usize,
        /// Active own entries of the list.
        active: usize,
        /// What the fraction was of (active entries before the refresh).
        base: usize,
        /// Active entries the withdrawal would have left.
        remaining: usize,
        /// The fewest the guard allowed.
        floor: usize,
    },
}

type SignJob = (usize, RecordMeta, EntryDraft, LocalMeta, bool);
type SignResult = (
    usize,
    Result<wlnode_crypto::VerifiedRecord, wlnode_crypto::RecordError>,
    LocalMeta,
    bool,
);

fn sign_parallel(key: &SecretKey, jobs: Vec<SignJob>) -> Vec<SignResult> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if jobs.len() < 64 || threads == 1 {
        return jobs
            .into_iter()
            .map(|(i, m, d, l, a)| (i, build_record(m, &d, key), l, a))
            .collect();
    }
    let chunk = jobs.len().div_ceil(threads);
    let mut chunks: Vec<Vec<SignJob>> = Vec::new();
    let mut it = jobs.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                s.spawn(move || {
                    c.into_iter()
                        .map(|(i, m, d, l, a)| (i, build_record(m, &d, key), l, a))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// Rebuilds the draft that a complete own record was made from (for withdrawal,
/// which keeps the content).
pub fn draft_of(record: &Record) -> Result<EntryDraft, InvalidValue> {
    let h = record.header();
    let c = record.content();
    Ok(EntryDraft {
        subject: wlnode_crypto::model::Subject {
            kind: h.subject_kind,
            name: c
                .name
                .ok_or_else(|| InvalidValue::new("subject.name", "withheld in this copy"))?,
            aliases: c.aliases,
            country: h.subject_country.clone(),
            addresses: c.addresses,
            identifiers: c.identifiers,
            birth_date: c.birth_date,
            nationality: c.nationality,
        },
        reason: h.reason,
        categories: h.categories.clone(),
        legal_basis: c.legal_basis,
        items: c.items,
        remarks: c.remarks,
        contact: c.contact,
        distribution: h.distribution.clone(),
        review_by: h.review_by,
        on_hit: h.on_hit,
    })
}

/// The subject as a copy discloses it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SubjectView {
    /// Kind.
    pub kind: SubjectKind,
    /// Primary name (absent when withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Country.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<CountryCode>,
    /// Addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// Birth or incorporation date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<PartialDate>,
    /// Nationality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nationality: Option<CountryCode>,
}

/// An entry as the API and CLI show it: its head record, with withheld fields absent.
/// It reads back from its JSON (`export --format ftm` maps the API's pages).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct EntryView {
    /// Entry id.
    pub entry_id: EntryId,
    /// Origin agency.
    pub origin: AgencyCode,
    /// Head version.
    pub version: u64,
    /// `active` or `withdrawn` (a delisting).
    pub status: Status,
    /// Head record id.
    pub record_id: RecordId,
    /// When the origin issued the head.
    pub issued_at: Timestamp,
    /// When the head last changed on this node.
    pub updated_at: Timestamp,
    /// Two different records exist for one version (equivocation).
    pub disputed: bool,
    /// `review_by` has passed.
    pub review_due: bool,
    /// Records held for this entry (all versions).
    pub records: u32,
    /// The subject.
    pub subject: SubjectView,
    /// Listing reason.
    pub reason: Reason,
    /// Categories.
    pub categories: BTreeSet<Category>,
    /// Legal basis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// Items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    /// Remarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
    /// Contact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Why it was withdrawn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_reason: Option<String>,
    /// Distribution set by the origin.
    pub distribution: Distribution,
    /// Review date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_by: Option<Date>,
    /// What the origin asks on a hit (`notify`: send it a hit report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_hit: Option<wlnode_crypto::model::OnHit>,
    /// Fields this copy does not disclose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<FieldTag>,
    /// Hops from the origin to this node.
    pub hops: u32,
    /// Agency this node received the first copy from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_from: Option<AgencyCode>,
}

impl EntryView {
    /// Builds the view from an entry's state and its head record.
    pub fn new(key: &EntryKey, state: &EntryState, head: &StoredRecord, today: Date) -> Self {
        let h = head.record.header();
        let DisclosedContent {
            name,
            aliases,
            addresses,
            identifiers,
            birth_date,
            nationality,
            legal_basis,
            items,
            remarks,
            contact,
            withdrawal_reason,
            mut withheld,
        } = head.record.content();
        withheld.dedup();
        Self {
            entry_id: key.entry_id,
            origin: key.origin.clone(),
            version: state.version,
            status: state.status,
            record_id: state.head,
            issued_at: state.issued_at,
            updated_at: state.updated_at,
            disputed: state.disputed,
            review_due: state.review_by.is_some_and(|d| d < today),
            records: state.records(),
            subject: SubjectView {
                kind: h.subject_kind,
                name,
                aliases,
                country: h.subject_country.clone(),
                addresses,
                identifiers,
                birth_date,
                nationality,
            },
            reason: h.reason,
            categories: h.categories.clone(),
            legal_basis,
            items,
            remarks,
            contact,
            withdrawal_reason,
            distribution: h.distribution.clone(),
            review_by: h.review_by,
            on_hit: h.on_hit,
            withheld,
            hops: head.hops,
            received_from: head.received_from.clone(),
        }
    }
}

#[cfg(test)]
mod on_hit_tests {
    use super::*;

    /// Review s30-consult M6: a re-import that only adds `on_hit: notify` is an
    /// amendment naming `on_hit`, not "unchanged".
    #[test]
    fn a_changed_on_hit_is_a_change() {
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "organization", "name": "Kite Trading", "country": "AE"},
            "reason": "diversion-risk",
            "categories": ["3A001"]
        }))
        .unwrap();
        let rec = wlnode_crypto::record::build_record(
            wlnode_crypto::record::RecordMeta {
                entry_id: EntryId([9; 16]),
                origin: "AA-X".parse().unwrap(),
                version: 1,
                issued_at: Timestamp(1_800_000_000_000),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            &wlnode_crypto::SecretKey::generate().unwrap(),
        )
        .unwrap();
        assert!(same_content(&rec, &draft));
        let mut asks = draft.clone();
        asks.on_hit = Some(wlnode_crypto::model::OnHit::Notify);
        assert!(!same_content(&rec, &asks));
        assert_eq!(changes_of(&rec, &asks).0, vec!["on_hit"]);
    }
}

/// Refuses a write while the store has a failed write and has not been reopened: its
/// memory may then hold a batch the disk does not (a flush that failed), which the
/// reopen drops, so nothing may be judged or signed against it. Every writer of own
/// entries checks this in the round trip it judges on ([`Lifecycle::check_hold`],
/// `own_head`, `classify`).
fn refuse_if_failed(s: &wlnode_store::Store) -> Result<(), StoreError> {
    if s.io_failed() {
        return Err(StoreError::Io(wlnode_store::EngineError::Engine(
            "the store failed a write and has not been reopened yet; nothing was written, retry"
                .into(),
        )));
    }
    Ok(())
}

/// Pipelined imports (see the module header) on a real store on disk, driven without
/// HTTP. The store's flush faults hold a batch queued but not durable, or fail it.
#[cfg(test)]
mod pipeline_tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    fn draft(name: &str) -> EntryDraft {
        serde_json::from_value(serde_json::json!({
            "subject": {"kind": "organization", "name": name, "country": "AE"},
            "reason": "diversion-risk",
            "categories": ["3A001"]
        }))
        .unwrap()
    }

    fn row(id: &str, name: &str) -> ImportItem {
        ImportItem {
            source_id: id.into(),
            draft: draft(name),
        }
    }

    fn open(dir: &std::path::Path) -> (Lifecycle, StoreHandle) {
        let (store, actor) = StoreHandle::open(dir).unwrap();
        // The actor stops once every handle is gone (at the end of the test).
        std::mem::forget(actor);
        let agency: AgencyCode = "AA-X".parse().unwrap();
        let key = Arc::new(SecretKey::generate().unwrap());
        (Lifecycle::new(agency, key, store.clone()), store)
    }

    /// Polls `f` once: whether it finished.
    async fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> bool {
        let mut f = Some(f);
        std::future::poll_fn(|cx| {
            Poll::Ready(
                f.take()
                    .is_some_and(|f| matches!(f.poll(cx), Poll::Ready(_))),
            )
        })
        .await
    }

    /// Waits (event-driven, generous limit) until an import's commit is queued.
    async fn until_queued(lc: &Lifecycle) {
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while !lc.import_pending() {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the first import was queued");
    }

    /// Waits (event-driven, generous limit) until the writer's lock is free.
    async fn until_lock_free(lc: &Lifecycle) {
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            while lc.lock.try_lock().is_err() {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the writer's lock is released while the import is pending");
    }

    async fn version_of(lc: &Lifecycle, store: &StoreHandle, id: &str) -> Option<u64> {
        let entry_id = wlnode_import::entry_id_for(lc.agency(), "list", id);
        store
            .entry(lc.own_key(entry_id))
            .await
            .unwrap()
            .map(|s| s.version)
    }

    fn kinds(outcomes: &[ImportOutcome]) -> Vec<(&'static str, Option<u64>)> {
        outcomes
            .iter()
            .map(|o| match o {
                ImportOutcome::Imported { written } => ("imported", Some(written.version)),
                ImportOutcome::Amended { written } => ("amended", Some(written.version)),
                ImportOutcome::Unchanged { .. } => ("unchanged", None),
                ImportOutcome::Failed { .. } => ("failed", None),
            })
            .collect()
    }

    /// The next import is judged while the one before is queued and not durable, and
    /// sees its rows: the same row again is unchanged, a changed row amends at version
    /// 2. Neither reply comes before its own batch is durable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_import_is_judged_against_the_pending_one() {
        let dir = tempfile::tempdir().unwrap();
        let (lc, store) = open(dir.path());
        let faults = store.faults();
        faults.pause_flushes();
        let first = tokio::spawn({
            let lc = lc.clone();
            async move {
                lc.import("list", vec![row("1", "Kite Trading"), row("2", "Owl Ltd")])
                    .await
            }
        });
        until_queued(&lc).await;
        // The writer's lock is released while the first still waits for its flush
        // (serial imports would hold it until the flush, and this would time out).
        until_lock_free(&lc).await;
        assert!(!first.is_finished(), "no reply before the flush");
        let mut second = Box::pin(lc.import(
            "list",
            vec![row("1", "Kite Trading"), row("2", "Owl Holdings Ltd")],
        ));
        assert!(
            !poll_once(second.as_mut()).await,
            "no reply before the flush"
        );
        // The second took the lock and is being judged (its reads queue behind the
        // first batch) while the first's flush is still held.
        assert!(
            lc.lock.try_lock().is_err(),
            "the second import is judged while the first is pending"
        );
        assert!(!first.is_finished(), "no reply before the flush");
        faults.resume_flushes();
        let (a, ra) = first.await.unwrap().unwrap();
        assert_eq!(
            kinds(&a),
            vec![("imported", Some(1)), ("imported", Some(1))]
        );
        assert!(ra.is_some());
        let (b, rb) = second.await.unwrap();
        assert_eq!(kinds(&b), vec![("unchanged", None), ("amended", Some(2))]);
        assert!(rb.is_some());
        assert_eq!(version_of(&lc, &store, "1").await, Some(1));
        assert_eq!(version_of(&lc, &store, "2").await, Some(2));
    }

    /// A batch whose flush fails reports an error, never success; the batch judged
    /// while it was pending fails too, naming that failure, and writes nothing; the
    /// next one is judged against the store again and skips no version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_poisons_the_batch_judged_against_it() {
        let dir = tempfile::tempdir().unwrap();
        let (lc, store) = open(dir.path());
        // Version 1 of row 1, durable.
        lc.import("list", vec![row("1", "Kite Trading")])
            .await
            .unwrap();
        let faults = store.faults();
        faults.pause_flushes();
        faults.fail_flushes(1);
        let first = tokio::spawn({
            let lc = lc.clone();
            async move {
                lc.import(
                    "list",
                    vec![row("1", "Kite Trading FZE"), row("2", "Owl Ltd")],
                )
                .await
            }
        });
        until_queued(&lc).await;
        let mut second = Box::pin(lc.import(
            "list",
            vec![row("1", "Kite Trading FZE LLC"), row("3", "Heron Co")],
        ));
        assert!(!poll_once(second.as_mut()).await);
        faults.resume_flushes();
        let err = first.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, LifecycleError::Store(StoreError::Io(_))),
            "the failed flush is reported: {err}"
        );
        let err = second.await.unwrap_err();
        let LifecycleError::EarlierCommitFailed { earlier } = &err else {
            panic!("the second batch is poisoned: {err}");
        };
        assert!(earlier.contains("flush to disk failed"), "{earlier}");
        assert!(
            err.to_string()
                .contains("nothing of this import batch was written")
        );
        // Nothing of the second batch is stored; row 1 is at version 1 or (if the
        // engine made the failed batch durable after all) 2, never 3.
        assert_eq!(version_of(&lc, &store, "3").await, None);
        let v1 = version_of(&lc, &store, "1").await.unwrap();
        assert!(v1 == 1 || v1 == 2, "row 1 at version {v1}");
        // The store was reopened after the failed flush, which holds local writes:
        // an officer's forced import is judged against the store again.
        let (c, _) = lc
            .forcing()
            .import(
                "list",
                vec![row("1", "Kite Trading FZE LLC"), row("3", "Heron Co")],
            )
            .await
            .unwrap();
        assert_eq!(
            kinds(&c),
            vec![("amended", Some(v1 + 1)), ("imported", Some(1))]
        );
        assert_eq!(version_of(&lc, &store, "1").await, Some(v1 + 1));
        assert_eq!(version_of(&lc, &store, "3").await, Some(1));
    }

    /// Every other writer waits for the pending import: an amendment started while an
    /// import is queued signs the version after the import's. This checks the outcome
    /// only: the store runs jobs in order, so the amendment's reads would queue behind
    /// the held flush even without `settle`. The failure case, where the order alone is
    /// not enough, is `a_writer_waiting_on_a_failed_import_does_not_sign_on_top_of_it`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_writers_wait_for_the_pending_import() {
        let dir = tempfile::tempdir().unwrap();
        let (lc, store) = open(dir.path());
        lc.import("list", vec![row("1", "Kite Trading")])
            .await
            .unwrap();
        let entry_id = wlnode_import::entry_id_for(lc.agency(), "list", "1");
        let faults = store.faults();
        faults.pause_flushes();
        let first = tokio::spawn({
            let lc = lc.clone();
            async move { lc.import("list", vec![row("1", "Kite Trading FZE")]).await }
        });
        until_queued(&lc).await;
        let mut amend = Box::pin(lc.amend(entry_id, draft("Kite Trading FZE LLC")));
        assert!(!poll_once(amend.as_mut()).await);
        faults.resume_flushes();
        let (a, _) = first.await.unwrap().unwrap();
        assert_eq!(kinds(&a), vec![("amended", Some(2))]);
        let (w, _) = amend.await.unwrap();
        assert_eq!(w.version, 3);
        assert_eq!(version_of(&lc, &store, "1").await, Some(3));
    }

    /// A writer started while an import is pending, whose flush then fails, does not
    /// sign on top of the failed version: while the store is not reopened yet (the
    /// probe write before the reopen fails here), its memory still holds that version,
    /// and amend, withdraw and withdraw_missing refuse; once reopened, the store drops
    /// it and a forced amend signs the version after the durable one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_waiting_on_a_failed_import_does_not_sign_on_top_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let (lc, store) = open(dir.path());
        lc.import("list", vec![row("1", "Kite Trading")])
            .await
            .unwrap();
        let entry_id = wlnode_import::entry_id_for(lc.agency(), "list", "1");
        let faults = store.faults();
        faults.fail_probes(true);
        faults.pause_flushes();
        faults.fail_flushes(1);
        let first = tokio::spawn({
            let lc = lc.clone();
            async move { lc.import("list", vec![row("1", "Kite Trading FZE")]).await }
        });
        until_queued(&lc).await;
        let mut amend = Box::pin(lc.amend(entry_id, draft("Kite Trading FZE LLC")));
        assert!(!poll_once(amend.as_mut()).await);
        faults.resume_flushes();
        let err = first.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, LifecycleError::Store(StoreError::Io(_))),
            "the failed flush is reported: {err}"
        );
        let refused = |r: Result<(Written, IngestReport), LifecycleError>| match r {
            Ok((w, _)) => panic!("signed version {} on top of a failed write", w.version),
            Err(e) => assert!(
                matches!(&e, LifecycleError::Store(StoreError::Io(_))),
                "refused for the failed write: {e}"
            ),
        };
        refused(amend.await);
        refused(lc.withdraw(entry_id, "gone".into()).await);
        let missing = lc
            .withdraw_missing("list", &HashSet::new(), "gone")
            .await
            .map(|(w, _)| w.len());
        assert!(
            matches!(missing, Err(LifecycleError::Store(StoreError::Io(_)))),
            "withdraw_missing refused: {missing:?}"
        );
        // The disk works again: the next job reopens the store, which drops the failed
        // version (or, had the engine made it durable after all, keeps it) and holds
        // local writes; an officer's forced amend signs the version after it.
        faults.fail_probes(false);
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            // Each job retries the reopen at most once a second.
            while store.call(|s| Ok(s.io_failed())).await.unwrap() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the store is reopened once the disk works");
        let v = version_of(&lc, &store, "1").await.unwrap();
        assert!(v == 1 || v == 2, "row 1 at version {v}");
        let (w, _) = lc
            .forcing()
            .amend(entry_id, draft("Kite Trading FZE LLC"))
            .await
            .unwrap();
        assert_eq!(w.version, v + 1);
        assert_eq!(version_of(&lc, &store, "1").await, Some(v + 1));
    }
}
