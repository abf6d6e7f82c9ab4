//! Reconciliation sets kept per agency and brought up to date from the arrival log,
//! so that a new session after a store change reads only what arrived since, not the
//! whole sync index (issue 19 item 3: a member can ask for new sessions, and each
//! used to cost a pass over every record on the store thread).
//!
//! A kept set is valid for the policy it was built under, the declined entries it
//! saw and the store opening it read: a new policy (or roster), a new declined entry
//! for its agency (or for all), or a store reopen (which may drop records the set
//! listed) means a full build. Otherwise stored records only ever join sets (records
//! are never removed while the store stays open), so an update is the set plus the
//! log's new records that pass [`Policy::in_reconcile_set`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use negentropy::{NegentropyStorageBase, NegentropyStorageVector};
use wlnode_crypto::model::AgencyCode;
use wlnode_policy::{DistRef, Policy};
use wlnode_store::StoreHandle;
use wlnode_sync::reconcile;

use super::serve::StepError;
use crate::metrics::{Metrics, SetBuildLabel};

/// Past this many new records since a kept set (or past an eighth of its size), a
/// full build is cheaper than reading each new record.
pub(super) const MAX_DELTA: usize = 20_000;

/// What a kept set saw of the declined entries: every agency's (bumped for a refusal
/// for everyone, and on a reload) and its own (a refusal or a note for it alone).
type Seen = (u64, u64);

#[derive(Debug)]
struct Kept {
    storage: Arc<NegentropyStorageVector>,
    /// The store opening and arrival-log head the set reflects.
    opening: u64,
    log_seq: u64,
    declined: Seen,
    policy: Arc<Policy>,
}

#[derive(Debug, Default)]
struct Inner {
    kept: HashMap<AgencyCode, Kept>,
    /// Declined generation for every agency.
    all: u64,
    /// Declined generation per agency (bounded by the roster).
    per: HashMap<AgencyCode, u64>,
}

impl Inner {
    fn seen(&self, agency: &AgencyCode) -> Seen {
        (self.all, self.per.get(agency).copied().unwrap_or(0))
    }
}

/// The sets kept for each agency (bounded by the roster; dropped when the agency
/// disconnects).
#[derive(Debug, Default)]
pub(super) struct SetCache {
    inner: Mutex<Inner>,
}

impl SetCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// New declined entries were written: for `agency` alone, or (`None`) for every
    /// agency. Sets that missed them are not brought up to date but built again.
    pub(super) fn on_declined(&self, agency: Option<&AgencyCode>) {
        let mut g = self.lock();
        match agency {
            Some(a) => *g.per.entry(a.clone()).or_default() += 1,
            None => g.all += 1,
        }
    }

    /// The policy or roster changed (and declined refusals were cleared): no kept set
    /// is valid, nor one whose build is under way.
    pub(super) fn clear(&self) {
        let mut g = self.lock();
        g.kept.clear();
        g.all += 1;
    }

    /// `agency`'s last connection closed: its set goes.
    pub(super) fn forget(&self, agency: &AgencyCode) {
        self.lock().kept.remove(agency);
    }

    fn base(
        &self,
        agency: &AgencyCode,
        policy: &Arc<Policy>,
    ) -> (Option<(Arc<NegentropyStorageVector>, u64, u64)>, Seen) {
        let g = self.lock();
        let seen = g.seen(agency);
        let base = g.kept.get(agency).and_then(|k| {
            (Arc::ptr_eq(&k.policy, policy) && k.declined == seen)
                .then(|| (k.storage.clone(), k.opening, k.log_seq))
        });
        (base, seen)
    }

    fn keep(&self, agency: AgencyCode, kept: Kept) {
        let mut g = self.lock();
        // Only a set built on what is current: not one whose build began before a
        // reload or a new declined entry (it may list what was cleared since).
        if kept.declined != g.seen(&agency) {
            return;
        }
        let newer = g.kept.get(&agency).is_none_or(|old| {
            !Arc::ptr_eq(&old.policy, &kept.policy)
                || (old.opening, old.log_seq) <= (kept.opening, kept.log_seq)
        });
        if newer {
            g.kept.insert(agency, kept);
        }
    }
}

/// Builds the reconciliation set this node shares with `agency` under `policy`: from
/// the set kept for it plus what the arrival log gained since, or in full. A held
/// record is in it only if it is `agency`'s own or the policy would send it to
/// `agency` ([`Policy::in_reconcile_set`]: the peer learns the ids, times and count
/// of nothing our share rules keep from it); a declined one, if its distribution
/// admits both.
pub(super) async fn reconcile_set(
    store: StoreHandle,
    policy: Arc<Policy>,
    agency: AgencyCode,
    cache: Arc<SetCache>,
    metrics: Arc<Metrics>,
) -> Result<Arc<NegentropyStorageVector>, StepError> {
    // Read before the store: a declined entry written meanwhile makes the kept set
    // look stale next time (a full build), never fresh.
    let (base, seen) = cache.base(&agency, &policy);
    let (p, a) = (policy.clone(), agency.clone());
    let since = base.as_ref().map(|(storage, opening, seq)| {
        let size = storage.size().unwrap_or(0);
        // Each new record is one read and a full decode, about four times what a
        // full build spends on an index entry: past an eighth of the set, a full
        // build is cheaper (as in a cold sync).
        (*opening, *seq, (size / 8).clamp(64, MAX_DELTA))
    });
    let read = store
        .call(move |s| {
            let in_set = |id: &wlnode_crypto::model::RecordId, m: &wlnode_types::SyncMeta| {
                // A value without the facts (it cannot be, after the schema-5
                // rebuild) stays out: a missing record costs a transfer, a listed
                // one could disclose.
                m.facts()
                    .is_some_and(|(f, hops)| p.in_reconcile_set(id, &f, hops, &a))
            };
            let opening = s.opening();
            if let Some((built_in, seq, max)) = since
                && let Some((delta, head)) = s.reconcile_delta(built_in, seq, max, in_set)?
            {
                return Ok((delta, opening, head, true));
            }
            let head = s.head_seq()?;
            let items = s.reconcile_items(&a, in_set, |m| {
                p.reconcile_member(
                    DistRef {
                        origin: &m.origin,
                        scope: m.scope,
                        groups: &m.groups,
                    },
                    &a,
                )
            })?;
            Ok((items, opening, head, false))
        })
        .await?;
    let (items, opening, head, delta) = read;
    let storage = match (delta, base) {
        (true, Some((base, _, _))) if items.is_empty() => base,
        (true, Some((base, _, _))) => {
            Arc::new(tokio::task::spawn_blocking(move || reconcile::extend(&base, &items)).await??)
        }
        _ => Arc::new(tokio::task::spawn_blocking(move || reconcile::storage(&items)).await??),
    };
    metrics
        .reconcile_set_builds
        .get_or_create(&SetBuildLabel {
            kind: if delta { "delta" } else { "full" }.into(),
        })
        .inc();
    cache.keep(
        agency,
        Kept {
            storage: storage.clone(),
            opening,
            log_seq: head,
            declined: seen,
            policy,
        },
    );
    Ok(storage)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use negentropy::NegentropyStorageBase;
    use wlnode_config::Config;
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::model::{EntryDraft, EntryId, Status};
    use wlnode_crypto::record::{RecordMeta, build_record};
    use wlnode_crypto::roster::Role;
    use wlnode_crypto::{SecretKey, Timestamp, VerifiedRecord};
    use wlnode_store::IngestBatch;
    use wlnode_types::{Declined, Incoming, Source, SyncMeta};

    use super::*;

    /// BB (this node) shares with AA only what CC originates.
    fn share_ccs_records_with_aa() -> Arc<Policy> {
        let authority = SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        for agency in ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE"] {
            text = roster_edit::add_member(
                &text,
                &NewMember::coded(
                    agency,
                    Role::Member,
                    SecretKey::generate().unwrap().public_key(),
                    vec![SecretKey::generate().unwrap().public_key().peer_id()],
                    &["eu"],
                    Timestamp(1),
                )
                .unwrap(),
            )
            .unwrap();
        }
        let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
        let cfg = Config::parse(
            Path::new("/x/node.toml"),
            "agency = \"BB-CUSTOMS\"\nroster = \"r\"\nagency_key = \"a\"\nnode_key = \"n\"\n\
             [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"t\"\n\
             [[share]]\nto = [\"AA-EXPORT\"]\norigins = [\"CC-TRADE\"]\nrelay = true\n",
        )
        .unwrap();
        Arc::new(Policy::from_config(&cfg, Arc::new(roster)).unwrap().0)
    }

    fn record(origin: &str, n: u64) -> VerifiedRecord {
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": format!("Someone {n}")},
            "reason": "denial",
            "distribution": {"scope": "federation"}
        }))
        .unwrap();
        build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: origin.parse().unwrap(),
                version: 1,
                issued_at: Timestamp(1_790_000_000_000 + n),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            &SecretKey::generate().unwrap(),
        )
        .unwrap()
    }

    async fn ingest(store: &StoreHandle, records: &[VerifiedRecord], declined: Vec<Declined>) {
        let items = records
            .iter()
            .map(|r| Incoming {
                record: r.clone(),
                source: Source::Peer {
                    agency: "CC-TRADE".parse().unwrap(),
                    hops: 1,
                },
                local: None,
                inclusion: None,
            })
            .collect();
        store
            .ingest(IngestBatch {
                items,
                cursor: None,
                declined,
                audit: Vec::new(),
            })
            .await
            .unwrap();
    }

    fn builds(m: &Metrics, kind: &str) -> u64 {
        m.reconcile_set_builds
            .get_or_create(&SetBuildLabel { kind: kind.into() })
            .get()
    }

    /// Issue 19 item 3: after a store change, a set is the kept one plus the new
    /// records (no pass over the sync index), and equals the set built in full.
    #[tokio::test]
    async fn a_kept_set_brought_up_to_date_equals_a_full_build() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _actor) = StoreHandle::open(dir.path()).unwrap();
        let policy = share_ccs_records_with_aa();
        let aa: AgencyCode = "AA-EXPORT".parse().unwrap();
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(SetCache::default());
        let build = |cache: &Arc<SetCache>| {
            reconcile_set(
                store.clone(),
                policy.clone(),
                aa.clone(),
                cache.clone(),
                metrics.clone(),
            )
        };
        // CC's records go to AA, BB's own do not.
        let first: Vec<_> = (0..6)
            .map(|n| record(if n % 2 == 0 { "CC-TRADE" } else { "BB-CUSTOMS" }, n))
            .collect();
        ingest(&store, &first, Vec::new()).await;
        let s1 = build(&cache).await.unwrap();
        assert_eq!(s1.size().unwrap(), 3);
        assert_eq!(
            (builds(&metrics, "full"), builds(&metrics, "delta")),
            (1, 0)
        );

        let more: Vec<_> = (10..16)
            .map(|n| record(if n % 2 == 0 { "CC-TRADE" } else { "BB-CUSTOMS" }, n))
            .collect();
        ingest(&store, &more, Vec::new()).await;
        let s2 = build(&cache).await.unwrap();
        assert_eq!(
            (builds(&metrics, "full"), builds(&metrics, "delta")),
            (1, 1)
        );
        let whole = build(&Arc::new(SetCache::default())).await.unwrap();
        assert_eq!(*s2, *whole, "kept and brought up to date = built in full");
        assert_eq!(s2.size().unwrap(), 6);

        // Nothing new: the kept set itself.
        let s3 = build(&cache).await.unwrap();
        assert!(Arc::ptr_eq(&s2, &s3));

        // A declined entry for another agency: AA's set is still brought up to date.
        cache.on_declined(Some(&"CC-TRADE".parse().unwrap()));
        build(&cache).await.unwrap();
        // (The second full build is the fresh cache's above.)
        assert_eq!(
            (builds(&metrics, "full"), builds(&metrics, "delta")),
            (2, 3)
        );

        // A declined entry for AA: the next build reads everything.
        let refused = record("CC-TRADE", 99);
        ingest(
            &store,
            &[],
            vec![Declined {
                issued_at: refused.header().issued_at.as_millis(),
                id: refused.id(),
                meta: SyncMeta::of(refused.header()),
                only_for: Some(aa.clone()),
                known: false,
            }],
        )
        .await;
        cache.on_declined(Some(&aa));
        let s4 = build(&cache).await.unwrap();
        assert_eq!(s4.size().unwrap(), 7);
        assert_eq!(builds(&metrics, "full"), 3);

        // A build that began before a reload (or a new declined entry) is not kept:
        // it may list refusals the reload cleared (review).
        let (_, seen) = cache.base(&aa, &policy);
        cache.clear();
        cache.keep(
            aa.clone(),
            Kept {
                storage: s4.clone(),
                opening: 0,
                log_seq: u64::MAX,
                declined: seen,
                policy: policy.clone(),
            },
        );
        assert!(cache.base(&aa, &policy).0.is_none());
        build(&cache).await.unwrap();
        assert!(
            cache.base(&aa, &policy).0.is_some(),
            "a build after it is kept"
        );
        // A disconnected agency's set goes.
        cache.forget(&aa);
        assert!(cache.base(&aa, &policy).0.is_none());

        // A new policy: the kept set is not used.
        let before = builds(&metrics, "full");
        let other = share_ccs_records_with_aa();
        reconcile_set(
            store.clone(),
            other,
            aa.clone(),
            cache.clone(),
            metrics.clone(),
        )
        .await
        .unwrap();
        assert_eq!(builds(&metrics, "full"), before + 1);
    }
}
