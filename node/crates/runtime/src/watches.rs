//! Watches: parties an officer registers (`wlnode watch add`) so that the node tells
//! them when a partner later lists the party (issue 22 item 4).
//!
//! - A watch is a screening query (name, optional country and birth date) and an
//!   optional reference (a licence file, a shipment). It is attributed to the user who
//!   made it (pseudonymous id; the local name too, for the node's own users).
//! - The table lives in the store's meta tree (`watches`, JSON), as the user table
//!   does: local only, never replicated, carried by backups. At most [`MAX_WATCHES`].
//!   Adding and removing one writes an `acted` audit event (`watch_add`,
//!   `watch_remove`, target the watch id) in the same store job as the table.
//! - **Evaluation** is its own follower of the arrival log ([`spawn_follower`]), with its
//!   own cursor kept in the store (`meta/watch_cursor`): for every page of the log,
//!   each entry whose head record is one of the records just logged (a local write, an
//!   import, a draft released, or a record from a peer: they all arrive the same way)
//!   is put in a small index of that page's new heads, and every watch's query is run
//!   once against it. Scores do not depend on index contents, so the score is the one
//!   `/v1/screen` gives for that query and entry. Nothing is ever rescanned: the cost
//!   is one search per watch and page (each O(new heads) at most), on a blocking
//!   thread, beside the screening follower (neither waits for the other). With no
//!   watches the pages are not read at all and the cursor follows the head in memory;
//!   it is stored again once a watch exists.
//! - **Restarts:** the cursor moves only after a page's hits were emitted, so records
//!   stored before a stop or a crash that were not yet evaluated are evaluated at the
//!   next start, and their hits emitted then (at least once: a page evaluated just
//!   before a crash may raise its hits again).
//! - A match at or above the query's threshold (`wlnode_screen::DEFAULT_MIN_SCORE`)
//!   emits a `watch_hit` event (`crate::events`) with the watch, the entry, its
//!   record id, the score and the matched name. Withdrawn heads raise nothing.
//! - **Kept hits:** each page's hit events are also stored, as emitted (the event's
//!   JSON), in the store's `watch_hits` table (`LocalTable::WatchHits`, key: time ms
//!   BE ‖ sequence ‖ event id), before the cursor moves; the newest [`MAX_STORED_HITS`] are kept,
//!   the oldest pruned in the same store job. The console's dashboard and watch page
//!   read them there ([`Watches::recent_hits`]), so they survive a restart. A page
//!   evaluated again after a crash stores its hits again (under new event ids).
//! - What is not covered: a head re-derived by a roster revocation is logged again and
//!   may hit again; events queued for webhooks are in memory, so a hit emitted but not
//!   yet delivered when the node stops is not sent after the restart.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use wlnode_config::EventType;
use wlnode_crypto::model::InvalidValue;
use wlnode_crypto::time::Timestamp;
use wlnode_screen::request::ScreenRequest;
use wlnode_screen::{Query, ScreenIndex};
use wlnode_store::{StoreError, StoreHandle};

use crate::events::{Events, NodeEvent};
use crate::index::NewHead;
use crate::users::{Actor, acted};
use wlnode_store::tables::{LocalTable, MAX_RANGE};

/// Most watches one node keeps.
pub const MAX_WATCHES: usize = 10_000;
/// Most watches one user may hold.
pub const MAX_WATCHES_PER_USER: usize = 1_000;
/// Most `watch_hit` events one page of new heads raises (the rest are counted in the
/// log line, not emitted), so one page cannot flood the event bus.
pub const MAX_HITS_PER_PAGE: usize = 500;
/// Longest reference kept with a watch.
pub const MAX_REF_CHARS: usize = 256;
/// Watch hits kept in the store (the newest; older ones are pruned).
pub const MAX_STORED_HITS: usize = 1_000;
const META_KEY: &[u8] = b"watches";
/// The arrival-log position up to which watches were evaluated.
const CURSOR_KEY: &[u8] = b"watch_cursor";

/// What `POST /v1/watches` takes.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchRequest {
    /// The party's name (1 to 512 characters).
    pub name: String,
    /// ISO country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Birth or incorporation date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    /// A reference of the agency's own (licence file, shipment).
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl WatchRequest {
    /// The screening query, checked as `/v1/screen` checks it (errors name the field).
    pub fn to_query(&self) -> Result<Query, InvalidValue> {
        if self.name.chars().any(char::is_control) {
            return Err(InvalidValue::new(
                "name",
                "must not hold control characters",
            ));
        }
        if let Some(r) = &self.reference
            && (r.chars().count() > MAX_REF_CHARS || r.chars().any(char::is_control))
        {
            return Err(InvalidValue::new(
                "ref",
                format!("must be at most {MAX_REF_CHARS} characters without control characters"),
            ));
        }
        ScreenRequest {
            name: self.name.clone(),
            country: self.country.clone(),
            dob: self.dob.clone(),
            ..ScreenRequest::default()
        }
        .to_query()
    }
}

/// One watch as stored and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// Watch id (32 hex digits).
    pub watch_id: String,
    /// The party's name.
    pub name: String,
    /// ISO country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Birth or incorporation date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    /// The agency's reference.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who made it (pseudonymous id).
    pub created_by: String,
    /// Their name (local).
    pub created_by_name: String,
    /// When.
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl Watch {
    fn request(&self) -> WatchRequest {
        WatchRequest {
            name: self.name.clone(),
            country: self.country.clone(),
            dob: self.dob.clone(),
            reference: self.reference.clone(),
        }
    }
}

/// Why a watch operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(InvalidValue),
    /// No such watch.
    #[error("no watch {0}")]
    Unknown(String),
    /// Too many watches (on the node, or of this user).
    #[error("{0}")]
    Full(String),
    /// The user already watches this party.
    #[error("you already watch this party (watch {0})")]
    Duplicate(String),
    /// Only the watch's creator or an admin may remove it.
    #[error("watch {0} is another user's; only its creator or an admin may remove it")]
    NotYours(String),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored table does not decode, or no id could be made.
    #[error("watches: {0}")]
    Internal(String),
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    watches: BTreeMap<String, Watch>,
}

/// The watches with their compiled queries (what evaluation reads).
#[derive(Default)]
struct Compiled {
    watches: Vec<(Watch, Query)>,
}

impl Compiled {
    fn new(t: &Table) -> Self {
        let watches = t
            .watches
            .values()
            .filter_map(|w| match w.request().to_query() {
                Ok(q) => Some((w.clone(), q)),
                Err(e) => {
                    tracing::error!(watch = %w.watch_id, error = %e, "stored watch no longer parses; it is skipped");
                    None
                }
            })
            .collect();
        Self { watches }
    }
}

fn read(s: &wlnode_store::Store) -> Result<Table, WatchError> {
    match s.meta_get(META_KEY)? {
        Some(b) => serde_json::from_slice(&b).map_err(|e| WatchError::Internal(e.to_string())),
        None => Ok(Table::default()),
    }
}

fn write(s: &wlnode_store::Store, t: &Table) -> Result<(), WatchError> {
    let b = serde_json::to_vec(t).map_err(|e| WatchError::Internal(e.to_string()))?;
    s.meta_set(META_KEY, &b)?;
    Ok(())
}

/// One watch that matched a new head.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchHit {
    /// The watch.
    pub watch_id: String,
    /// Its reference.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The watched name.
    pub watch_name: String,
    /// The entry.
    pub entry_id: String,
    /// Its origin agency.
    pub origin: String,
    /// The head record that matched.
    pub record_id: String,
    /// The score `/v1/screen` gives.
    pub score: f64,
    /// The listed name that matched best.
    pub matched_name: String,
}

/// The node's watches: the API's handle, and the follower's.
#[derive(Clone)]
pub struct Watches {
    store: StoreHandle,
    /// The compiled watches, swapped whole on a change: evaluation reads a snapshot
    /// and holds no lock while it runs, so a change never waits behind it.
    compiled: Arc<RwLock<Arc<Compiled>>>,
    /// One change at a time (the table is read, changed and written in one job, but
    /// the compiled copy is replaced after it).
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watches({})", self.len())
    }
}

impl Watches {
    /// Loads the table from the store.
    pub async fn load(store: StoreHandle) -> Result<Self, WatchError> {
        let t = store.try_call(read).await?;
        Ok(Self {
            store,
            compiled: Arc::new(RwLock::new(Arc::new(Compiled::new(&t)))),
            lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Watches now.
    pub fn len(&self) -> usize {
        self.compiled.read().map_or(0, |c| c.watches.len())
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every watch, oldest first.
    pub fn list(&self) -> Vec<Watch> {
        let mut out: Vec<Watch> = self
            .compiled
            .read()
            .map(|c| c.watches.iter().map(|(w, _)| w.clone()).collect())
            .unwrap_or_default();
        out.sort_by(|a, b| (a.created_at, &a.watch_id).cmp(&(b.created_at, &b.watch_id)));
        out
    }

    async fn change(
        &self,
        f: impl FnOnce(&mut Table) -> Result<(Watch, wlnode_audit::event::Event), WatchError>
        + Send
        + 'static,
    ) -> Result<Watch, WatchError> {
        let _g = self.lock.lock().await;
        let (w, t) = self
            .store
            .try_call(move |s| {
                let mut t = read(s)?;
                let (w, event) = f(&mut t)?;
                write(s, &t)?;
                s.audit_append(&[event])?;
                Ok::<_, WatchError>((w, t))
            })
            .await?;
        // Compiling up to 10,000 queries is CPU work: off the async workers.
        let c = tokio::task::spawn_blocking(move || Arc::new(Compiled::new(&t)))
            .await
            .map_err(|e| WatchError::Internal(e.to_string()))?;
        if let Ok(mut g) = self.compiled.write() {
            *g = c;
        }
        Ok(w)
    }

    /// Registers a watch by `by`.
    pub async fn add(&self, by: &Actor, req: WatchRequest) -> Result<Watch, WatchError> {
        req.to_query().map_err(WatchError::Invalid)?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| WatchError::Internal(e.to_string()))?;
        let blank = |s: Option<String>| s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let w = Watch {
            watch_id: hex::encode(id),
            name: req.name.trim().to_owned(),
            country: blank(req.country).map(|c| c.to_ascii_uppercase()),
            dob: blank(req.dob),
            reference: blank(req.reference),
            created_by: by.id.clone(),
            created_by_name: by.name.clone(),
            created_at: Timestamp::now(),
        };
        self.change(move |t| {
            if t.watches.len() >= MAX_WATCHES {
                return Err(WatchError::Full(format!(
                    "this node already has {MAX_WATCHES} watches"
                )));
            }
            let mine: Vec<&Watch> = t
                .watches
                .values()
                .filter(|x| x.created_by == w.created_by)
                .collect();
            if mine.len() >= MAX_WATCHES_PER_USER {
                return Err(WatchError::Full(format!(
                    "you already have {MAX_WATCHES_PER_USER} watches"
                )));
            }
            if let Some(same) = mine.iter().find(|x| {
                x.name.to_lowercase() == w.name.to_lowercase()
                    && x.country == w.country
                    && x.dob == w.dob
            }) {
                return Err(WatchError::Duplicate(same.watch_id.clone()));
            }
            let event = acted(
                w.created_at,
                &w.created_by,
                "watch_add",
                Some(w.watch_id.clone()),
            );
            t.watches.insert(w.watch_id.clone(), w.clone());
            Ok((w, event))
        })
        .await
    }

    /// Removes a watch; returns it.
    pub async fn remove(&self, by: &Actor, id: &str) -> Result<Watch, WatchError> {
        let admin = by.has(crate::users::Role::Admin);
        let (id, by) = (id.to_owned(), by.id.clone());
        self.change(move |t| {
            let owner = t
                .watches
                .get(&id)
                .map(|w| w.created_by.clone())
                .ok_or_else(|| WatchError::Unknown(id.chars().take(64).collect()))?;
            if owner != by && !admin {
                return Err(WatchError::NotYours(id));
            }
            let w = t
                .watches
                .remove(&id)
                .ok_or_else(|| WatchError::Unknown(id.chars().take(64).collect()))?;
            let event = acted(Timestamp::now(), &by, "watch_remove", Some(id));
            Ok((w, event))
        })
        .await
    }

    /// The watches that `heads` match (blocking: call it from a blocking thread).
    pub fn evaluate(&self, heads: &[NewHead]) -> Vec<WatchHit> {
        let snapshot = self.compiled.read().map(|c| Arc::clone(&c));
        match snapshot {
            Ok(c) => evaluate(&c, heads),
            Err(_) => Vec::new(),
        }
    }

    /// The newest stored watch hits (at most `limit` and [`MAX_STORED_HITS`]), newest
    /// first, as they were emitted.
    pub async fn recent_hits(&self, limit: usize) -> Result<Vec<NodeEvent>, WatchError> {
        let limit = limit.min(MAX_STORED_HITS);
        let pairs = self
            .store
            .call(move |s| s.table_range_rev(LocalTable::WatchHits, &[], &[0xff; 9], limit))
            .await?;
        Ok(pairs
            .into_iter()
            .filter_map(|(k, v)| {
                let at = k.get(..8)?.try_into().ok().map(u64::from_be_bytes)?;
                let json = String::from_utf8(v).ok()?;
                Some(NodeEvent {
                    kind: EventType::WatchHit,
                    id: hex::encode(k.get(16..)?),
                    at: Timestamp(at),
                    json: json.into(),
                })
            })
            .collect())
    }

    /// Evaluates `heads` and emits a `watch_hit` event for each hit; returns the events
    /// emitted (for [`store_hits`]).
    pub fn evaluate_and_emit(&self, heads: &[NewHead], events: &Events) -> Vec<NodeEvent> {
        let started = std::time::Instant::now();
        let mut hits = self.evaluate(heads);
        let n = hits.len();
        if n > MAX_HITS_PER_PAGE {
            tracing::warn!(
                hits = n,
                emitted = MAX_HITS_PER_PAGE,
                "watches: one page matched more watches than are emitted; the rest are dropped"
            );
            hits.truncate(MAX_HITS_PER_PAGE);
        }
        let mut emitted = Vec::with_capacity(hits.len());
        for hit in hits {
            match serde_json::to_value(&hit) {
                Ok(v) => emitted.push(events.emit(EventType::WatchHit, v)),
                Err(e) => tracing::error!(error = %e, "watch hit not serialisable"),
            }
        }
        tracing::debug!(
            heads = heads.len(),
            watches = self.len(),
            hits = n,
            us = started.elapsed().as_micros() as u64,
            "watches evaluated"
        );
        emitted
    }
}

/// Orders hits stored within one millisecond (emission order).
static HIT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `watch_hits` key: time (ms, BE) ‖ a sequence number (BE; emission order within a
/// millisecond) ‖ the event id's 16 bytes.
fn hit_key(e: &NodeEvent) -> Vec<u8> {
    let mut k = e.at.0.to_be_bytes().to_vec();
    let seq = HIT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&hex::decode(&e.id).unwrap_or_else(|_| e.id.as_bytes().to_vec()));
    k
}

/// Stores `hits` (as emitted) and prunes the table to its newest [`MAX_STORED_HITS`],
/// in one store job.
pub fn store_hits(s: &wlnode_store::Store, hits: &[NodeEvent]) -> Result<(), StoreError> {
    if hits.is_empty() {
        return Ok(());
    }
    let pairs: Vec<_> = hits
        .iter()
        .map(|e| (hit_key(e), e.json.as_bytes().to_vec()))
        .collect();
    s.table_put(LocalTable::WatchHits, &pairs, false)?;
    // The key of the newest hit past the bound, if any: it and every older one go.
    let newest = s.table_range_rev(LocalTable::WatchHits, &[], &[0xff; 9], MAX_STORED_HITS + 1)?;
    if let Some((oldest_kept_out, _)) = newest.get(MAX_STORED_HITS) {
        let mut end = oldest_kept_out.clone();
        end.push(0);
        s.table_remove_range(LocalTable::WatchHits, &[], &end, MAX_RANGE)?;
    }
    Ok(())
}

/// The hits of `heads` against the compiled watches: the page's live heads go into
/// one small index, and each watch's query runs once against it (one search per
/// watch and page, whatever the page's size). Scores do not depend on the index's
/// contents, so each equals what `/v1/screen` gives. A watch's query returns at most
/// `wlnode_screen::MAX_LIMIT` entries of one page, from the engine's best
/// candidates.
fn evaluate(c: &Compiled, heads: &[NewHead]) -> Vec<WatchHit> {
    if c.watches.is_empty() {
        return Vec::new();
    }
    let live: BTreeMap<wlnode_types::EntryKey, &NewHead> = heads
        .iter()
        .filter(|h| !h.doc.withdrawn)
        .map(|h| (h.doc.key(), h))
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    let page = ScreenIndex::build(live.values().map(|h| h.doc.clone()));
    let mut hits = Vec::new();
    for (w, q) in &c.watches {
        let mut q = q.clone();
        q.limit = wlnode_screen::MAX_LIMIT;
        let Ok(found) = page.search(&q) else { continue };
        // At or above the query's threshold (the search keeps nothing below it).
        for m in found.into_iter().filter(|m| m.score >= q.min_score) {
            let key = wlnode_types::EntryKey {
                origin: m.origin.clone(),
                entry_id: m.entry_id,
            };
            let Some(h) = live.get(&key) else { continue };
            hits.push(WatchHit {
                watch_id: w.watch_id.clone(),
                reference: w.reference.clone(),
                watch_name: w.name.clone(),
                entry_id: m.entry_id.to_string(),
                origin: m.origin.to_string(),
                record_id: h.record_id.to_string(),
                score: m.score,
                matched_name: m.matched_name,
            });
        }
    }
    hits
}

async fn read_cursor(store: &StoreHandle) -> Result<u64, StoreError> {
    store
        .call(|s| {
            Ok(match s.meta_get(CURSOR_KEY)? {
                Some(b) => b.as_slice().try_into().map(u64::from_be_bytes).unwrap_or(0),
                // First start with watches: from the head on (no look back).
                None => {
                    let head = s.head_seq()?;
                    s.meta_set(CURSOR_KEY, &head.to_be_bytes())?;
                    head
                }
            })
        })
        .await
}

async fn write_cursor(store: &StoreHandle, seq: u64) -> Result<(), StoreError> {
    store
        .call(move |s| s.meta_set(CURSOR_KEY, &seq.to_be_bytes()))
        .await
}

/// Evaluates the watches on every page of the arrival log from the stored cursor on,
/// emits the hits, then moves the cursor (see the module documentation). Runs until
/// `shutdown`.
pub fn spawn_follower(
    store: StoreHandle,
    watches: Watches,
    events: Events,
    metrics: Arc<crate::metrics::Metrics>,
    mut head: tokio::sync::watch::Receiver<u64>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut cursor = loop {
            match read_cursor(&store).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::error!(error = %e, "watches: cannot read the evaluation cursor; retrying in 5 s");
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        let mut stored_cursor = true;
        loop {
            // The head as stored (the head channel starts at the head at open).
            let announced = *head.borrow_and_update();
            let stored = store.call(|s| s.head_seq()).await.unwrap_or(cursor);
            let target = announced.max(stored);
            if watches.is_empty() {
                // Nothing to evaluate: the cursor follows the head in memory only (no
                // write per ingest); it is stored again once a watch exists.
                cursor = cursor.max(target);
                stored_cursor = false;
            } else if !stored_cursor && write_cursor(&store, cursor).await.is_ok() {
                stored_cursor = true;
            }
            while cursor < target {
                let next = {
                    match crate::index::follow_page(&store, cursor).await {
                        Ok((_, new_heads, last, _)) => {
                            if !new_heads.is_empty() {
                                let (w, ev, m) = (watches.clone(), events.clone(), metrics.clone());
                                let done = tokio::task::spawn_blocking(move || {
                                    let hits = w.evaluate_and_emit(&new_heads, &ev);
                                    m.watch_hits.inc_by(hits.len() as u64);
                                    hits
                                })
                                .await;
                                match done {
                                    Ok(hits) if !hits.is_empty() => {
                                        // Kept before the cursor moves (see the module
                                        // documentation).
                                        if let Err(e) =
                                            store.call(move |s| store_hits(s, &hits)).await
                                        {
                                            tracing::warn!(error = %e, "watches: cannot store the page's hits");
                                        }
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        tracing::error!(error = %e, "watches: evaluation failed")
                                    }
                                }
                            }
                            if last == cursor {
                                break;
                            }
                            last
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "watches: cannot read new records; retrying on the next change");
                            break;
                        }
                    }
                };
                if let Err(e) = write_cursor(&store, next).await {
                    tracing::warn!(error = %e, "watches: cannot store the evaluation cursor");
                    break;
                }
                cursor = next;
            }
            tokio::select! {
                r = head.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    use wlnode_crypto::model::{AgencyCode, EntryId, RecordId, SubjectKind};
    use wlnode_screen::ScreenDoc;

    fn head(n: u8, names: &[&str]) -> NewHead {
        NewHead {
            doc: ScreenDoc {
                entry_id: EntryId([n; 16]),
                origin: AgencyCode::new("BB-CUSTOMS").unwrap(),
                kind: SubjectKind::Person,
                names: names.iter().map(|s| s.to_string()).collect(),
                country: None,
                nationality: None,
                birth_date: None,
                identifiers: Vec::new(),
                addresses: Vec::new(),
                withdrawn: false,
                reason: None,
                categories: Vec::new(),
            },
            record_id: RecordId([n; 32]),
        }
    }

    /// Hits are kept in the store, newest first, bounded, the oldest pruned, and read
    /// back as emitted by a node opened again on the same directory (issue 23).
    #[tokio::test]
    async fn hits_are_stored_bounded_oldest_pruned_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let bus = Events::new();
        let emitted: Vec<NodeEvent> = (0..MAX_STORED_HITS + 5)
            .map(|i| bus.emit(EventType::WatchHit, serde_json::json!({"n": i})))
            .collect();
        {
            let (store, actor) = StoreHandle::open(dir.path()).unwrap();
            // In pages, as the follower stores them.
            for page in emitted.chunks(100) {
                let page = page.to_vec();
                store.call(move |s| store_hits(s, &page)).await.unwrap();
            }
            drop(store);
            // The actor ends once no handle is left, and closes the store.
            actor.join();
        }
        let (store, _actor) = StoreHandle::open(dir.path()).unwrap();
        let w = Watches::load(store.clone()).await.unwrap();
        let hits = w.recent_hits(usize::MAX).await.unwrap();
        assert_eq!(hits.len(), MAX_STORED_HITS);
        let n = |e: &NodeEvent| {
            serde_json::from_str::<serde_json::Value>(&e.json).unwrap()["n"].clone()
        };
        assert_eq!(n(&hits[0]), MAX_STORED_HITS + 4, "newest first");
        assert_eq!(n(&hits[MAX_STORED_HITS - 1]), 5, "the oldest five pruned");
        let newest = emitted.last().unwrap();
        assert_eq!(
            (&hits[0].id, hits[0].at, &hits[0].json, hits[0].kind),
            (&newest.id, newest.at, &newest.json, EventType::WatchHit)
        );
        assert_eq!(w.recent_hits(3).await.unwrap().len(), 3);
    }

    fn compiled(names: &[String]) -> Compiled {
        let mut t = Table::default();
        for (i, n) in names.iter().enumerate() {
            let id = format!("{i:032x}");
            t.watches.insert(
                id.clone(),
                Watch {
                    watch_id: id,
                    name: n.clone(),
                    country: None,
                    dob: None,
                    reference: None,
                    created_by: "u".into(),
                    created_by_name: "u".into(),
                    created_at: Timestamp::now(),
                },
            );
        }
        Compiled::new(&t)
    }

    #[test]
    fn hits_score_as_screening_and_non_matches_raise_nothing() {
        let c = compiled(&["Ivan Petrov".into(), "Acme Trading".into()]);
        let heads = [
            head(1, &["Ivan PETROV", "I. Petrov"]),
            head(2, &["Maria Gonzalez"]),
        ];
        let hits = evaluate(&c, &heads);
        assert_eq!(hits.len(), 1, "{hits:?}");
        let h = &hits[0];
        assert_eq!(h.watch_name, "Ivan Petrov");
        assert_eq!(h.record_id, RecordId([1; 32]).to_string());
        // The score of the same query against an index of many entries.
        let big = ScreenIndex::build(heads.iter().map(|h| h.doc.clone()));
        let q = Query::new("Ivan Petrov");
        let m = big.search(&q).unwrap();
        assert_eq!(m[0].score, h.score);
        assert!(h.score >= wlnode_screen::DEFAULT_MIN_SCORE);
        let mut withdrawn = head(3, &["Ivan Petrov"]);
        withdrawn.doc.withdrawn = true;
        assert!(evaluate(&compiled(&["Ivan Petrov".into()]), &[withdrawn]).is_empty());
    }

    /// A rough measure of the follower's extra cost: 1,000 watches against a page of
    /// 100 new heads (printed; run with `--nocapture`). Not a time bound.
    #[test]
    fn evaluation_cost_is_watches_times_heads() {
        let names: Vec<String> = (0..1000)
            .map(|i| format!("Party{i} Holding{} Trading", i % 37))
            .collect();
        let heads: Vec<NewHead> = (0..100u8)
            .map(|i| head(i, &[&format!("Someone{i} Listed{}", i % 11)]))
            .collect();
        let t = std::time::Instant::now();
        let hits = evaluate(&compiled(&names), &heads);
        let el = t.elapsed();
        // None of these parties is listed: a measurement, and a check that unrelated
        // names raise nothing.
        assert!(hits.is_empty(), "{} unexpected hits", hits.len());
        println!(
            "watch evaluation: 1000 watches x a page of 100 heads in {el:?} ({:.1} us per watch), {} hits",
            el.as_secs_f64() * 1e6 / 1000.0,
            hits.len()
        );
    }

    #[test]
    fn a_watch_request_is_checked_like_a_screening() {
        let ok = WatchRequest {
            name: "Ivan Petrov".into(),
            country: Some("ru".into()),
            dob: Some("1970".into()),
            reference: Some("LIC-2026-001".into()),
        };
        ok.to_query().unwrap();
        let bad_dob = WatchRequest {
            dob: Some("yesterday".into()),
            ..ok.clone()
        };
        assert_eq!(bad_dob.to_query().unwrap_err().field, "dob");
        let empty = WatchRequest {
            name: " ".into(),
            ..ok.clone()
        };
        assert_eq!(empty.to_query().unwrap_err().field, "name");
        let long_ref = WatchRequest {
            reference: Some("x".repeat(MAX_REF_CHARS + 1)),
            ..ok
        };
        assert_eq!(long_ref.to_query().unwrap_err().field, "ref");
    }
}
