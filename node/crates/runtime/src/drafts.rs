//! Four-eyes release: with `[release] require_approval` on, an entry write becomes a
//! **draft** that nothing signs or sends until a different user with the `approver`
//! role releases it. Records that have been sent cannot be recalled, so the second pair
//! of eyes comes before the signature.
//!
//! - A draft holds the write (add, amend or withdraw, with the entry JSON), its author
//!   (pseudonymous id, and the local name for the node's own users), and its state:
//!   `awaiting_approval`, then `approved` (with the written record) or `rejected` (with
//!   a reason).
//! - The table lives in the store's meta tree (`drafts`, JSON): local only, never
//!   replicated, carried by backups. At most [`MAX_PENDING`] drafts wait at once; the
//!   newest [`MAX_DECIDED`] decided ones are kept for the record.
//! - Approval signs through the entry lifecycle acting as the approver, so the audit
//!   log's `acted` event for the write carries the approver; `draft_create`,
//!   `draft_approve` and `draft_reject` events carry author and approver. A rejected
//!   draft leaves no record anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use wlnode_crypto::model::{EntryDraft, EntryId, RecordId};
use wlnode_crypto::time::Timestamp;
use wlnode_store::{StoreError, StoreHandle};
use wlnode_types::IngestReport;

use crate::entries::{Lifecycle, LifecycleError, Written};
use crate::users::{Actor, acted};

/// Most drafts waiting at once.
pub const MAX_PENDING: usize = 1000;
/// Most drafts one author may have waiting.
pub const MAX_PENDING_PER_AUTHOR: usize = 100;
/// Largest draft (its JSON), so the table stays small enough to rewrite per change.
pub const MAX_DRAFT_BYTES: usize = 64 * 1024;
/// Decided drafts kept.
pub const MAX_DECIDED: usize = 1000;
const META_KEY: &[u8] = b"drafts";

/// What a draft would write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum DraftOp {
    /// A new entry.
    Add {
        /// The entry.
        #[schema(value_type = Object)]
        entry: EntryDraft,
    },
    /// A new version of an own entry.
    Amend {
        /// Entry id.
        #[schema(value_type = String)]
        entry_id: EntryId,
        /// The new content.
        #[schema(value_type = Object)]
        entry: EntryDraft,
        /// The head record the draft was written against: approval refuses if the
        /// entry changed since.
        #[schema(value_type = String)]
        base: RecordId,
    },
    /// Withdrawing an own entry.
    Withdraw {
        /// Entry id.
        #[schema(value_type = String)]
        entry_id: EntryId,
        /// Why.
        reason: String,
        /// The head record the draft was written against.
        #[schema(value_type = String)]
        base: RecordId,
    },
}

/// Where a draft stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DraftState {
    /// Nothing signed or sent yet.
    AwaitingApproval,
    /// Approved and being signed; if the node stopped here, the write may or may not
    /// have happened: an approver checks the entry and rejects the draft, never
    /// releasing it twice.
    Releasing,
    /// Signed and released.
    Approved,
    /// Refused; nothing was written.
    Rejected,
}

/// One draft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Draft id (32 hex digits).
    pub draft_id: String,
    /// The write.
    #[serde(rename = "write")]
    pub op: DraftOp,
    /// State.
    pub state: DraftState,
    /// Author's pseudonymous id.
    pub author: String,
    /// Author's name (local).
    pub author_name: String,
    /// When it was drafted.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
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
    /// What approval wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<Written>,
}

/// Why a draft operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    /// No such draft.
    #[error("no draft {0}")]
    Unknown(String),
    /// The draft was decided already.
    #[error("draft {id} is {state:?} already")]
    Decided {
        /// Draft id.
        id: String,
        /// Its state.
        state: DraftState,
    },
    /// Four eyes: the author cannot approve their own draft.
    #[error("draft {0} was written by you: another user with the approver role must approve it")]
    OwnDraft(String),
    /// The token file's admin is no person: it cannot be the second pair of eyes.
    #[error(
        "the bootstrap admin (api.token_file) cannot approve drafts: approve as a named user with the approver role"
    )]
    Bootstrap,
    /// The entry changed since the draft was written.
    #[error(
        "entry {entry} changed since draft {draft} was written (head {head}, draft written against {base}); reject it and draft again"
    )]
    Stale {
        /// Draft id.
        draft: String,
        /// Entry id.
        entry: String,
        /// The head now.
        head: String,
        /// The head the draft was written against.
        base: String,
    },
    /// One author has too many drafts waiting, or the draft is too large.
    #[error("{0}")]
    Limit(String),
    /// Too many drafts wait.
    #[error("{MAX_PENDING} drafts already await approval")]
    Full,
    /// The write failed at approval (the draft stays awaiting approval).
    #[error(transparent)]
    Write(#[from] LifecycleError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored table does not decode, or no id could be made.
    #[error("drafts: {0}")]
    Internal(String),
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    drafts: BTreeMap<String, Draft>,
}

fn read(s: &wlnode_store::Store) -> Result<Table, DraftError> {
    match s.meta_get(META_KEY)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| DraftError::Internal(e.to_string())),
        None => Ok(Table::default()),
    }
}

fn write(s: &wlnode_store::Store, t: &Table) -> Result<(), DraftError> {
    let b = serde_json::to_vec(t).map_err(|e| DraftError::Internal(e.to_string()))?;
    s.meta_set(META_KEY, &b)?;
    Ok(())
}

/// Keeps the newest [`MAX_DECIDED`] decided drafts.
fn prune(t: &mut Table) {
    let mut decided: Vec<(Timestamp, String)> = t
        .drafts
        .values()
        .filter(|d| matches!(d.state, DraftState::Approved | DraftState::Rejected))
        .map(|d| (d.decided_at.unwrap_or(d.created_at), d.draft_id.clone()))
        .collect();
    if decided.len() > MAX_DECIDED {
        decided.sort();
        for (_, id) in decided.iter().take(decided.len() - MAX_DECIDED) {
            t.drafts.remove(id);
        }
    }
}

/// The drafts: the API's handle.
#[derive(Clone, Debug)]
pub struct Drafts {
    store: StoreHandle,
    /// Where `draft_awaiting_approval` is announced.
    events: Option<crate::events::Events>,
    /// One decision at a time, so a draft is never released twice.
    lock: Arc<Mutex<()>>,
}

impl Drafts {
    /// The drafts kept in `store`.
    pub fn new(store: StoreHandle) -> Self {
        Self {
            store,
            events: None,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Announces every new draft on `events` (`draft_awaiting_approval`).
    pub fn with_events(mut self, events: crate::events::Events) -> Self {
        self.events = Some(events);
        self
    }

    /// Records a draft by `author`; nothing is signed.
    pub async fn create(&self, author: &Actor, op: DraftOp) -> Result<Draft, DraftError> {
        let size = serde_json::to_vec(&op).map_or(usize::MAX, |b| b.len());
        if size > MAX_DRAFT_BYTES {
            return Err(DraftError::Limit(format!(
                "the draft is {size} bytes; at most {MAX_DRAFT_BYTES} are kept awaiting approval"
            )));
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| DraftError::Internal(e.to_string()))?;
        let draft = Draft {
            draft_id: hex::encode(id),
            op,
            state: DraftState::AwaitingApproval,
            author: author.id.clone(),
            author_name: author.name.clone(),
            created_at: Timestamp::now(),
            decided_by: None,
            decided_by_name: None,
            decided_at: None,
            reject_reason: None,
            written: None,
        };
        let _g = self.lock.lock().await;
        let d = draft.clone();
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                let pending = t
                    .drafts
                    .values()
                    .filter(|d| d.state == DraftState::AwaitingApproval)
                    .count();
                if pending >= MAX_PENDING {
                    return Err(DraftError::Full);
                }
                let mine = t
                    .drafts
                    .values()
                    .filter(|x| x.state == DraftState::AwaitingApproval && x.author == d.author)
                    .count();
                if mine >= MAX_PENDING_PER_AUTHOR {
                    return Err(DraftError::Limit(format!(
                        "you already have {MAX_PENDING_PER_AUTHOR} drafts awaiting approval"
                    )));
                }
                let event = acted(
                    d.created_at,
                    &d.author,
                    "draft_create",
                    Some(d.draft_id.clone()),
                );
                t.drafts.insert(d.draft_id.clone(), d);
                write(s, &t)?;
                s.audit_append(&[event])?;
                Ok(())
            })
            .await?;
        if let Some(ev) = &self.events {
            let (op, entry_id) = match &draft.op {
                DraftOp::Add { .. } => ("add", None),
                DraftOp::Amend { entry_id, .. } => ("amend", Some(entry_id.to_string())),
                DraftOp::Withdraw { entry_id, .. } => ("withdraw", Some(entry_id.to_string())),
            };
            ev.emit(
                wlnode_config::EventType::DraftAwaitingApproval,
                serde_json::json!({
                    "draft_id": draft.draft_id,
                    "op": op,
                    "entry_id": entry_id,
                    "author": draft.author,
                }),
            );
        }
        Ok(draft)
    }

    /// Every draft, or those in `state`, oldest first.
    pub async fn list(&self, state: Option<DraftState>) -> Result<Vec<Draft>, DraftError> {
        let t = self.store.try_call(read).await?;
        let mut out: Vec<Draft> = t
            .drafts
            .into_values()
            .filter(|d| state.is_none_or(|s| d.state == s))
            .collect();
        out.sort_by_key(|d| d.created_at);
        Ok(out)
    }

    async fn pending(&self, id: &str) -> Result<Draft, DraftError> {
        self.undecided(id, false).await
    }

    /// The draft `id` while undecided: awaiting approval, or (`releasing_too`) stuck
    /// releasing after a crash.
    async fn undecided(&self, id: &str, releasing_too: bool) -> Result<Draft, DraftError> {
        let t = self.store.try_call(read).await?;
        let d = t
            .drafts
            .get(id)
            .cloned()
            .ok_or_else(|| DraftError::Unknown(id.chars().take(64).collect()))?;
        let open = d.state == DraftState::AwaitingApproval
            || (releasing_too && d.state == DraftState::Releasing);
        if !open {
            return Err(DraftError::Decided {
                id: d.draft_id,
                state: d.state,
            });
        }
        Ok(d)
    }

    /// Stores one draft as it is now (no audit event).
    async fn save(&self, d: Draft) -> Result<(), DraftError> {
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                t.drafts.insert(d.draft_id.clone(), d);
                write(s, &t)?;
                s.flush()?;
                Ok(())
            })
            .await
    }

    async fn decide(&self, d: Draft, action: &'static str) -> Result<(), DraftError> {
        let by = d.decided_by.clone().unwrap_or_default();
        self.store
            .try_call(move |s| {
                let mut t = read(s)?;
                let event = acted(
                    d.decided_at.unwrap_or(Timestamp::now()),
                    &by,
                    action,
                    Some(d.draft_id.clone()),
                );
                t.drafts.insert(d.draft_id.clone(), d);
                prune(&mut t);
                write(s, &t)?;
                s.audit_append(&[event])?;
                Ok(())
            })
            .await
    }

    /// Approves a draft: signs and stores the write as `approver` (never its author),
    /// then marks it approved. If the write fails, the draft stays awaiting approval.
    pub async fn approve(
        &self,
        approver: &Actor,
        id: &str,
        lifecycle: &Lifecycle,
    ) -> Result<(Written, IngestReport), DraftError> {
        let _g = self.lock.lock().await;
        let mut d = self.pending(id).await?;
        if d.author == approver.id {
            return Err(DraftError::OwnDraft(d.draft_id));
        }
        if approver.name == crate::users::BOOTSTRAP {
            return Err(DraftError::Bootstrap);
        }
        // The entry must still be what the draft was written against.
        if let DraftOp::Amend { entry_id, base, .. } | DraftOp::Withdraw { entry_id, base, .. } =
            &d.op
        {
            let me = lifecycle.agency().clone();
            let head = self
                .store
                .entries_by_id(*entry_id)
                .await?
                .into_iter()
                .find(|(k, _)| k.origin == me)
                .map(|(_, st)| st.head);
            if head != Some(*base) {
                return Err(DraftError::Stale {
                    draft: d.draft_id.clone(),
                    entry: entry_id.to_hex(),
                    head: head.map_or_else(|| "none".into(), |h| h.to_string()),
                    base: base.to_string(),
                });
            }
        }
        // Durably "releasing" before anything is signed: a crash or a failed
        // bookkeeping step can never lead to a second release.
        d.state = DraftState::Releasing;
        d.decided_by = Some(approver.id.clone());
        d.decided_by_name = Some(approver.name.clone());
        d.decided_at = Some(Timestamp::now());
        self.save(d.clone()).await?;
        let writer = lifecycle.acting_as(&approver.id);
        let result = match d.op.clone() {
            DraftOp::Add { entry } => writer.add(entry).await,
            DraftOp::Amend {
                entry_id, entry, ..
            } => writer.amend(entry_id, entry).await,
            DraftOp::Withdraw {
                entry_id, reason, ..
            } => writer.withdraw(entry_id, reason).await,
        };
        let (written, report) = match result {
            Ok(r) => r,
            Err(e) => {
                // Nothing was signed: the draft waits again.
                d.state = DraftState::AwaitingApproval;
                d.decided_by = None;
                d.decided_by_name = None;
                d.decided_at = None;
                self.save(d).await?;
                return Err(e.into());
            }
        };
        d.state = DraftState::Approved;
        d.decided_by = Some(approver.id.clone());
        d.decided_by_name = Some(approver.name.clone());
        d.decided_at = Some(Timestamp::now());
        d.written = Some(written.clone());
        self.decide(d, "draft_approve").await?;
        Ok((written, report))
    }

    /// Rejects a draft: nothing is written (a draft stuck `releasing` after a crash is
    /// closed this way once an approver has checked the entry).
    pub async fn reject(&self, by: &Actor, id: &str, reason: String) -> Result<Draft, DraftError> {
        let _g = self.lock.lock().await;
        let mut d = self.undecided(id, true).await?;
        d.state = DraftState::Rejected;
        d.decided_by = Some(by.id.clone());
        d.decided_by_name = Some(by.name.clone());
        d.decided_at = Some(Timestamp::now());
        d.reject_reason = Some(reason);
        self.decide(d.clone(), "draft_reject").await?;
        Ok(d)
    }
}
