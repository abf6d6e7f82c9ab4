//! The screening case log: every screening (single, batch, or the yente-compatible
//! API) is kept with who ran it, when, the query and its reference, and the hits with
//! the entry record ids they matched; officers record a decision per (party, hit), and
//! the decision shows again the next time the same party is screened, until the entry
//! is amended.
//!
//! - A case id is 16 bytes, hex: the time (Unix ms, big-endian) then 8 random bytes, so
//!   the log is ordered by time and ranges by time are key ranges (`tables::Cases`).
//! - The **party** is the query's normalised name tokens (sorted), country and date of
//!   birth, hashed: the same party whatever the reference or the token order.
//! - A decision is keyed by (party, origin, entry) and names the record id screened. A
//!   later screening of the same party shows it on a hit whose entry head is still that
//!   record; after an amendment the hit comes back undecided. Hits are never hidden.
//! - Cases are written without a flush (sled's own follows within a second: a crash may
//!   lose the last second of cases, never a decision); decisions are flushed and leave
//!   an `acted` audit event (`screen_decide`). Cases older than `[screening] retain` are
//!   pruned by [`CaseLog::prune`], which the node runs hourly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{AgencyCode, EntryId, RecordId};
use wlnode_crypto::time::Timestamp;
use wlnode_screen::{EntryKey, Match};

/// A hit as the case log takes it (from a screening result).
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Origin agency.
    pub origin: AgencyCode,
    /// Entry id.
    pub entry_id: EntryId,
    /// Score.
    pub score: f64,
    /// The name or alias that matched.
    pub matched_name: String,
}

impl From<&Match> for Hit {
    fn from(m: &Match) -> Self {
        Self {
            origin: m.origin.clone(),
            entry_id: m.entry_id,
            score: m.score,
            matched_name: m.matched_name.clone(),
        }
    }
}
use wlnode_store::tables::LocalTable;
use wlnode_store::{StoreError, StoreHandle};

use crate::users::{Actor, acted};

/// Most cases one log query returns.
pub const MAX_LOG: usize = 1000;
/// Most cases one log query reads (filtering by reference): past it the answer says
/// `truncated`.
pub const MAX_LOG_SCAN: usize = 10_000;
/// Most hits kept per logged screening (the best first); a screening with more says
/// how many it had.
pub const MAX_HITS_LOGGED: usize = 50;
/// Parties logged per store job, so one batch request holds the store for at most
/// this many cases at a time.
pub const CASES_PER_JOB: usize = 500;
/// Longest reference kept, in characters.
pub const MAX_REFERENCE: usize = 128;

/// Where a screening came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `GET`/`POST /v1/screen` (and `wlnode screen NAME`).
    Single,
    /// `POST /v1/screen/batch` (and `wlnode screen --batch`).
    Batch,
    /// The yente-compatible `/match`.
    Match,
}

/// What was screened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Party {
    /// The name as typed.
    pub name: String,
    /// Country, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Date of birth or incorporation, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<String>,
    /// The caller's reference (a shipment or licence id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// An identifier `TYPE:VALUE`, if given (part of who the party is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The address screened with, if given: it can raise a score, so the case keeps
    /// it (not part of who the party is: parties move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Party {
    /// A reference as kept: at most [`MAX_REFERENCE`] characters, no control
    /// characters.
    pub fn clean_reference(r: &str) -> String {
        r.chars()
            .filter(|c| !c.is_control())
            .take(MAX_REFERENCE)
            .collect()
    }
}

/// An officer's decision on a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecisionState {
    /// A false positive.
    Cleared,
    /// A true match.
    Confirmed,
    /// Handed up.
    Escalated,
}

/// A decision as kept and shown on hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// The decision.
    pub state: DecisionState,
    /// Who (pseudonymous id).
    pub by: String,
    /// Their name (local).
    pub by_name: String,
    /// When.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// Why.
    pub reason: String,
    /// The entry version it applies to.
    #[schema(value_type = String)]
    pub record_id: RecordId,
    /// The case it was taken in.
    pub case_id: String,
}

/// One hit of a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseHit {
    /// Origin agency.
    #[schema(value_type = String)]
    pub origin: AgencyCode,
    /// Entry id.
    #[schema(value_type = String)]
    pub entry_id: EntryId,
    /// The entry's head record when screened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub record_id: Option<RecordId>,
    /// Score.
    pub score: f64,
    /// The name or alias that matched.
    pub matched_name: String,
}

/// One screening.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Case {
    /// Case id.
    pub case_id: String,
    /// When.
    #[schema(value_type = String)]
    pub at: Timestamp,
    /// Who (pseudonymous id).
    pub user: String,
    /// Their name (local).
    pub user_name: String,
    /// How.
    pub channel: Channel,
    /// What.
    pub party: Party,
    /// The hits (the best [`MAX_HITS_LOGGED`]).
    pub hits: Vec<CaseHit>,
    /// Hits the screening had in all, when more were found than kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits_total: Option<usize>,
    /// Decisions taken in this case.
    #[serde(default)]
    pub decisions: Vec<(String, Decision)>,
}

/// Why a case-log operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// No such case (or not a case id).
    #[error("no case {0}")]
    Unknown(String),
    /// The entry is not a hit of that case.
    #[error("entry {entry} is not a hit of case {case}")]
    NotAHit {
        /// Case id.
        case: String,
        /// Entry id.
        entry: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not decode, or no id could be made.
    #[error("case log: {0}")]
    Internal(String),
}

/// The party key: normalised name tokens (sorted), country, date and identifier,
/// hashed with this node's secret salt (so the decisions tree cannot be reversed by
/// hashing candidate names).
pub fn party_key(salt: &[u8], p: &Party) -> [u8; 32] {
    let mut tokens: Vec<String> = wlnode_screen::normalize::normalize(&p.name)
        .tokens
        .into_iter()
        .map(|t| t.text)
        .collect();
    tokens.sort();
    let text = format!(
        "{}|{}|{}|{}|{}",
        hex::encode(salt),
        tokens.join(" "),
        p.country
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase(),
        p.dob.as_deref().unwrap_or("").trim(),
        p.id.as_deref().unwrap_or("").trim().to_ascii_uppercase()
    );
    wlnode_crypto::sha256::digest(text.as_bytes())
}

fn decision_key(party: &[u8; 32], origin: &AgencyCode, entry: EntryId) -> Vec<u8> {
    let mut k = party.to_vec();
    k.extend_from_slice(origin.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(entry.as_bytes());
    k
}

/// This node's party-key salt (made once, kept in the meta tree).
fn salt(s: &wlnode_store::Store) -> Result<Vec<u8>, CaseError> {
    const KEY: &[u8] = b"case_salt";
    if let Some(v) = s.meta_get(KEY)? {
        return Ok(v);
    }
    let mut b = vec![0u8; 32];
    getrandom::fill(&mut b).map_err(|e| CaseError::Internal(e.to_string()))?;
    s.meta_set(KEY, &b)?;
    Ok(b)
}

fn case_key(id: &str) -> Option<Vec<u8>> {
    let b = hex::decode(id).ok()?;
    (b.len() == 16).then_some(b)
}

fn new_case_id(at: Timestamp) -> Result<String, CaseError> {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&at.as_millis().to_be_bytes());
    getrandom::fill(&mut b[8..]).map_err(|e| CaseError::Internal(e.to_string()))?;
    Ok(hex::encode(b))
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, CaseError> {
    serde_json::to_vec(v).map_err(|e| CaseError::Internal(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, CaseError> {
    serde_json::from_slice(b).map_err(|e| CaseError::Internal(e.to_string()))
}

/// One screened party, logged: its case id and, per hit (in the order given), the
/// decision in force for it, if any.
#[derive(Clone, Debug)]
pub struct Logged {
    /// Case id.
    pub case_id: String,
    /// Per hit.
    pub decisions: Vec<Option<Decision>>,
}

/// The case log: the API's handle.
#[derive(Clone, Debug)]
pub struct CaseLog {
    store: StoreHandle,
}

impl CaseLog {
    /// The log kept in `store`.
    pub fn new(store: StoreHandle) -> Self {
        Self { store }
    }

    /// Logs screenings of `parties` (each with its hits) by `actor`, in store jobs of
    /// [`CASES_PER_JOB`] parties, and returns each party's case id and the decisions in
    /// force on its hits (hits past the [`MAX_HITS_LOGGED`] best are neither kept nor
    /// looked up: `None`).
    pub async fn record(
        &self,
        actor: &Actor,
        channel: Channel,
        parties: Vec<(Party, Vec<Hit>)>,
    ) -> Result<Vec<Logged>, CaseError> {
        let at = Timestamp::now();
        let mut out = Vec::with_capacity(parties.len());
        let mut parties = parties.into_iter().peekable();
        while parties.peek().is_some() {
            let chunk: Vec<(Party, Vec<Hit>)> = parties.by_ref().take(CASES_PER_JOB).collect();
            let mut ids = Vec::with_capacity(chunk.len());
            for _ in &chunk {
                ids.push(new_case_id(at)?);
            }
            let (user, user_name) = (actor.id.clone(), actor.name.clone());
            let logged = self
                .store
                .try_call(move |s| {
                    let salt = salt(s)?;
                    let mut pairs = Vec::with_capacity(chunk.len());
                    let mut out = Vec::with_capacity(chunk.len());
                    for ((mut party, hits), case_id) in chunk.into_iter().zip(ids) {
                        party.reference = party
                            .reference
                            .as_deref()
                            .map(Party::clean_reference)
                            .filter(|r| !r.is_empty());
                        let pk = party_key(&salt, &party);
                        let total = hits.len();
                        let mut case_hits = Vec::with_capacity(total.min(MAX_HITS_LOGGED));
                        let mut decisions = Vec::with_capacity(total);
                        for m in hits.into_iter().take(MAX_HITS_LOGGED) {
                            let key = EntryKey {
                                origin: m.origin.clone(),
                                entry_id: m.entry_id,
                            };
                            let head = s.entry(&key)?.map(|st| st.head);
                            let decision = match s.table_get(
                                LocalTable::Decisions,
                                &decision_key(&pk, &m.origin, m.entry_id),
                            )? {
                                Some(b) => {
                                    let d: Decision = from_json(&b)?;
                                    (Some(d.record_id) == head).then_some(d)
                                }
                                None => None,
                            };
                            decisions.push(decision);
                            case_hits.push(CaseHit {
                                origin: m.origin,
                                entry_id: m.entry_id,
                                record_id: head,
                                score: m.score,
                                matched_name: m.matched_name,
                            });
                        }
                        decisions.resize(total, None);
                        let case = Case {
                            case_id: case_id.clone(),
                            at,
                            user: user.clone(),
                            user_name: user_name.clone(),
                            channel,
                            party,
                            hits: case_hits,
                            hits_total: (total > MAX_HITS_LOGGED).then_some(total),
                            decisions: Vec::new(),
                        };
                        let key = case_key(&case_id).unwrap_or_default();
                        pairs.push((key, to_json(&case)?));
                        out.push(Logged { case_id, decisions });
                    }
                    s.table_put(LocalTable::Cases, &pairs, false)?;
                    Ok::<_, CaseError>(out)
                })
                .await?;
            out.extend(logged);
        }
        Ok(out)
    }

    /// One case.
    pub async fn get(&self, case_id: &str) -> Result<Case, CaseError> {
        let unknown = || CaseError::Unknown(case_id.chars().take(64).collect());
        let key = case_key(case_id).ok_or_else(unknown)?;
        let b = self
            .store
            .try_call(move |s| Ok::<_, CaseError>(s.table_get(LocalTable::Cases, &key)?))
            .await?
            .ok_or_else(unknown)?;
        from_json(&b)
    }

    /// Records `actor`'s decision on the hit `entry` (of `origin`, if several) of a
    /// case; it applies to the entry version that case screened. Durable, audited.
    pub async fn decide(
        &self,
        actor: &Actor,
        case_id: &str,
        origin: Option<AgencyCode>,
        entry: EntryId,
        state: DecisionState,
        reason: String,
    ) -> Result<Decision, CaseError> {
        let unknown = || CaseError::Unknown(case_id.chars().take(64).collect());
        let key = case_key(case_id).ok_or_else(unknown)?;
        let (by, by_name, case_id) = (actor.id.clone(), actor.name.clone(), case_id.to_owned());
        self.store
            .try_call(move |s| {
                let b = s
                    .table_get(LocalTable::Cases, &key)?
                    .ok_or_else(|| CaseError::Unknown(case_id.clone()))?;
                let mut case: Case = from_json(&b)?;
                let hit = case
                    .hits
                    .iter()
                    .find(|h| h.entry_id == entry && origin.as_ref().is_none_or(|o| *o == h.origin))
                    .cloned()
                    .ok_or_else(|| CaseError::NotAHit {
                        case: case_id.clone(),
                        entry: entry.to_hex(),
                    })?;
                let record_id = hit.record_id.ok_or_else(|| CaseError::NotAHit {
                    case: case_id.clone(),
                    entry: entry.to_hex(),
                })?;
                let now = Timestamp::now();
                let d = Decision {
                    state,
                    by: by.clone(),
                    by_name,
                    at: now,
                    reason,
                    record_id,
                    case_id: case_id.clone(),
                };
                let pk = party_key(&salt(s)?, &case.party);
                case.decisions.push((entry.to_hex(), d.clone()));
                s.table_put(
                    LocalTable::Decisions,
                    &[(decision_key(&pk, &hit.origin, entry), to_json(&d)?)],
                    true,
                )?;
                s.table_put(LocalTable::Cases, &[(key, to_json(&case)?)], true)?;
                s.audit_append(&[acted(now, &by, "screen_decide", Some(case_id))])?;
                Ok(d)
            })
            .await
    }

    /// The newest cases (of `reference`, if given), newest first: at most `limit`,
    /// reading at most [`MAX_LOG_SCAN`] cases back. `true` when the scan stopped there.
    pub async fn newest(
        &self,
        reference: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Case>, bool), CaseError> {
        let limit = limit.clamp(1, MAX_LOG);
        self.store
            .try_call(move |s| {
                let mut out = Vec::new();
                let mut end = vec![0xff; 17];
                let mut read = 0usize;
                while read < MAX_LOG_SCAN {
                    let page = s.table_range_rev(LocalTable::Cases, &[], &end, 1000)?;
                    let Some((first, _)) = page.last() else {
                        return Ok((out, false));
                    };
                    // The next page ends before the oldest key read.
                    end = first.clone();
                    read += page.len();
                    for (_, v) in &page {
                        let c: Case = from_json(v)?;
                        if reference
                            .as_deref()
                            .is_none_or(|r| c.party.reference.as_deref() == Some(r))
                        {
                            out.push(c);
                            if out.len() >= limit {
                                return Ok((out, false));
                            }
                        }
                    }
                    if page.len() < 1000 {
                        return Ok((out, false));
                    }
                }
                Ok::<_, CaseError>((out, true))
            })
            .await
    }

    /// Cases since `since` (oldest first), with this reference if given, at most
    /// `limit` ([`MAX_LOG`]). Reads at most [`MAX_LOG_SCAN`] cases: the flag says
    /// whether it stopped there (then ask again with a later `since`).
    pub async fn log(
        &self,
        reference: Option<String>,
        since: Option<Timestamp>,
        limit: usize,
    ) -> Result<(Vec<Case>, bool), CaseError> {
        let from = since.map_or(0, |t| t.as_millis()).to_be_bytes().to_vec();
        let limit = limit.clamp(1, MAX_LOG);
        self.store
            .try_call(move |s| {
                let mut out = Vec::new();
                let mut cursor = from;
                let end = vec![0xff; 17];
                let mut read = 0usize;
                while read < MAX_LOG_SCAN {
                    let page = s.table_range(LocalTable::Cases, &cursor, &end, 1000)?;
                    let Some((last, _)) = page.last() else {
                        return Ok((out, false));
                    };
                    let mut next = last.clone();
                    next.push(0);
                    read += page.len();
                    for (_, v) in &page {
                        let c: Case = from_json(v)?;
                        if reference
                            .as_deref()
                            .is_none_or(|r| c.party.reference.as_deref() == Some(r))
                        {
                            out.push(c);
                            if out.len() >= limit {
                                return Ok((out, false));
                            }
                        }
                    }
                    if page.len() < 1000 {
                        return Ok((out, false));
                    }
                    cursor = next;
                }
                Ok::<_, CaseError>((out, true))
            })
            .await
    }

    /// Removes cases and decisions older than `retain`; returns how many.
    pub async fn prune(&self, retain: std::time::Duration) -> Result<usize, CaseError> {
        let cutoff = Timestamp::now()
            .as_millis()
            .saturating_sub(u64::try_from(retain.as_millis()).unwrap_or(u64::MAX));
        let mut total = 0;
        loop {
            let n = self
                .store
                .try_call(move |s| {
                    Ok::<_, CaseError>(s.table_remove_range(
                        LocalTable::Cases,
                        &[0u8; 8],
                        &cutoff.to_be_bytes(),
                        1000,
                    )?)
                })
                .await?;
            total += n;
            if n < 1000 {
                break;
            }
        }
        // Decisions expire with the cases they were taken in.
        let mut from: Vec<u8> = Vec::new();
        loop {
            let (n, next) = self
                .store
                .try_call(move |s| {
                    let page = s.table_range(LocalTable::Decisions, &from, &[0xff; 64], 1000)?;
                    let mut gone = Vec::new();
                    for (k, v) in &page {
                        let d: Decision = from_json(v)?;
                        if d.at.as_millis() < cutoff {
                            gone.push(k.clone());
                        }
                    }
                    for k in &gone {
                        let mut end = k.clone();
                        end.push(0);
                        s.table_remove_range(LocalTable::Decisions, k, &end, 1)?;
                    }
                    let next = page.last().map(|(k, _)| {
                        let mut n = k.clone();
                        n.push(0);
                        n
                    });
                    Ok::<_, CaseError>((gone.len(), if page.len() < 1000 { None } else { next }))
                })
                .await?;
            total += n;
            match next {
                Some(n) => from = n,
                None => return Ok(total),
            }
        }
    }
}

/// Counts of decisions by state, for a summary line.
pub fn decision_counts(cases: &[Case]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for c in cases {
        for (_, d) in &c.decisions {
            let k = match d.state {
                DecisionState::Cleared => "cleared",
                DecisionState::Confirmed => "confirmed",
                DecisionState::Escalated => "escalated",
            };
            *m.entry(k).or_insert(0) += 1;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_same_party_whatever_order_case_or_reference() {
        let p = |name: &str, reference: &str| Party {
            name: name.into(),
            country: Some("ae".into()),
            dob: Some("1970".into()),
            reference: Some(reference.into()),
            id: None,
            address: None,
        };
        assert_eq!(
            party_key(b"salt", &p("Mohammad al-Rashid", "SHIP-1")),
            party_key(b"salt", &p("AL-RASHID, Mohammad", "LIC-9"))
        );
        assert_ne!(
            party_key(b"salt", &p("Mohammad al-Rashid", "x")),
            party_key(
                b"salt",
                &Party {
                    dob: Some("1971".into()),
                    ..p("Mohammad al-Rashid", "x")
                }
            )
        );
        let id = new_case_id(Timestamp(1_700_000_000_000)).unwrap();
        assert_eq!(
            case_key(&id).unwrap()[..8],
            1_700_000_000_000u64.to_be_bytes()
        );
        assert!(case_key("zz").is_none());
    }
}
