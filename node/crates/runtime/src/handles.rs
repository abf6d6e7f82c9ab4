//! The narrow handles the node's services share instead of one context: each is a
//! cheap clone that can do one thing (report store health, account for an ingest,
//! reload the policy, block a peer, read the peer table).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::watch;
use wlnode_audit::event::{Event, EventKind};
use wlnode_config::Config;
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::time::Timestamp;
use wlnode_policy::Policy;
use wlnode_store::{StoreError, StoreHandle};
use wlnode_types::{IngestReport, Outcome};

use crate::metrics::{Metrics, SourceLabel};
use crate::node::NodeError;
use crate::trust::{TrustCell, TrustError, verify_roster_file};

/// Store health as the API reports it.
#[derive(Debug, Default)]
pub struct Health {
    store_failed: AtomicBool,
    last_error: RwLock<Option<String>>,
}

impl Health {
    /// Records a store write failure.
    pub fn store_failed(&self, e: &StoreError) {
        self.store_failed.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.last_error.write() {
            *g = Some(e.to_string());
        }
    }

    /// Records a successful write.
    pub fn store_ok(&self) {
        self.store_failed.store(false, Ordering::SeqCst);
    }

    /// Whether the last write failed.
    pub fn is_degraded(&self) -> bool {
        self.store_failed.load(Ordering::SeqCst)
    }

    /// The last store error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().ok().and_then(|g| g.clone())
    }
}

/// Replication state of one neighbour, as `/v1/status` shows it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PeerInfo {
    /// Agency code.
    pub agency: String,
    /// PeerId of the connected node (or the roster's first, when not connected).
    pub peer_id: String,
    /// Whether a connection is open.
    pub connected: bool,
    /// Changes-feed lag: their log head minus our cursor.
    pub lag: Option<u64>,
    /// Our stored cursor for it jumped to its log head on first contact and a
    /// reconciliation has not yet fetched (and stored) every older record.
    pub backlog_pending: bool,
    /// When a batch or reconciliation with this peer last completed.
    pub last_sync: Option<Timestamp>,
    /// Records received from it.
    pub records_received: u64,
    /// Records sent to it.
    pub records_sent: u64,
    /// Records from it that were rejected.
    pub records_rejected: u64,
    /// Its roster version (from Hello).
    pub roster_version: Option<u64>,
    /// The peer's roster is newer than ours.
    pub our_roster_outdated: bool,
    /// The operator blocked it (`wlnode peer block`): no connection either way.
    pub blocked: bool,
    /// Banned until (RFC 3339), if banned.
    pub banned_until: Option<Timestamp>,
    /// Last error with this peer.
    pub last_error: Option<String>,
}

/// The peer-status snapshot: written by the replication service, read by the API.
pub type PeerTable = Arc<RwLock<BTreeMap<String, PeerInfo>>>;

/// Most `audit_violation` events one ingest raises.
const MAX_VIOLATION_EVENTS: usize = 100;

/// Bookkeeping after every ingest, whoever stored the records: metrics, store health,
/// and moving the arrival-log head, which wakes the replication service (which
/// notifies neighbours: that is how records relay) and the screening follower.
#[derive(Clone, Debug)]
pub struct Ingested {
    head: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    /// Where equivocations are announced (`audit_violation`).
    events: crate::events::Events,
}

impl Ingested {
    pub(crate) fn new(
        head: u64,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        events: crate::events::Events,
    ) -> Self {
        Self {
            head: Arc::new(watch::channel(head).0),
            metrics,
            health,
            events,
        }
    }

    /// The arrival-log head as last reported.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Follows the arrival-log head.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// The arrival log grew to `head_seq` without an ingest (heads re-derived after a
    /// revocation): neighbours and the screening index follow.
    pub fn log_moved(&self, head_seq: u64) {
        self.head.send_if_modified(|h| {
            if head_seq > *h {
                *h = head_seq;
                true
            } else {
                false
            }
        });
    }

    /// After any successful ingest from `source` (`local` or `peer`).
    pub fn after_ingest(&self, report: &IngestReport, source: &str) {
        if report.changed() > 0 {
            self.head.send_if_modified(|h| {
                if report.head_seq > *h {
                    *h = report.head_seq;
                    true
                } else {
                    false
                }
            });
        }
        self.health.store_ok();
        self.metrics.store_healthy.set(1);
        let stored = report
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Stored))
            .count();
        self.metrics
            .stored
            .get_or_create(&SourceLabel {
                source: source.to_owned(),
            })
            .inc_by(u64::try_from(stored).unwrap_or(0));
        self.metrics
            .equivocations
            .inc_by(u64::try_from(report.equivocations.len()).unwrap_or(0));
        for e in &report.equivocations {
            tracing::warn!(
                entry = %e.entry.entry_id,
                origin = %e.entry.origin,
                version = e.version,
                records = ?e.records,
                "equivocation: two different records for one entry version"
            );
        }
        // One event per equivocation, at most MAX_VIOLATION_EVENTS per ingest (the
        // metric counts them all).
        for e in report.equivocations.iter().take(MAX_VIOLATION_EVENTS) {
            self.events.emit(
                wlnode_config::EventType::AuditViolation,
                serde_json::json!({
                    "kind": "equivocation",
                    "origin": e.entry.origin.to_string(),
                    "entry_id": e.entry.entry_id.to_hex(),
                    "version": e.version,
                    "records": e.records.iter().take(8).map(|r| r.to_string()).collect::<Vec<_>>(),
                }),
            );
        }
    }

    /// After a failed write: not acknowledging new data until the store recovers.
    pub fn write_failed(&self, e: &StoreError) {
        self.health.store_failed(e);
        self.metrics.store_healthy.set(0);
        self.metrics.store_errors.inc();
        tracing::error!(error = %e, "store write failed; not acknowledging new data");
    }
}

/// What a reload did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadReport {
    /// SHA-256 of the policy now in force.
    pub policy_hash: String,
    /// Whether the policy changed.
    pub policy_changed: bool,
    /// Roster version now in force.
    pub roster_version: u64,
    /// Whether the roster changed.
    pub roster_changed: bool,
    /// Policy warnings.
    pub warnings: Vec<String>,
}

/// The operator's levers on a running node: reload the policy and roster, block and
/// unblock peers. Each change is audited and handed to the replication service
/// through a watch channel.
#[derive(Clone, Debug)]
pub struct Control {
    config_path: PathBuf,
    agency: AgencyCode,
    store: StoreHandle,
    trust: TrustCell,
    ingested: Ingested,
    changes: Arc<watch::Sender<u64>>,
    blocked: Arc<watch::Sender<BTreeSet<AgencyCode>>>,
    encryption_keys: crate::mail::EncryptionKeys,
    /// Held for the whole of a reload: reloads run one after the other.
    reloading: Arc<tokio::sync::Mutex<()>>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Control {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config_path: PathBuf,
        agency: AgencyCode,
        store: StoreHandle,
        trust: TrustCell,
        ingested: Ingested,
        blocked: BTreeSet<AgencyCode>,
        encryption_keys: crate::mail::EncryptionKeys,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            config_path,
            agency,
            store,
            trust,
            ingested,
            changes: Arc::new(watch::channel(0u64).0),
            blocked: Arc::new(watch::channel(blocked).0),
            encryption_keys,
            reloading: Arc::new(tokio::sync::Mutex::new(())),
            metrics,
        }
    }

    /// The encryption public keys this node opens sealed messages with now.
    pub fn encryption_keys(&self) -> Vec<wlnode_crypto::seal::EncryptionPublicKey> {
        self.encryption_keys.public_keys()
    }

    /// Follows reloads (bumped whenever the policy or roster changed).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Follows the set of blocked agencies.
    pub fn blocked(&self) -> watch::Receiver<BTreeSet<AgencyCode>> {
        self.blocked.subscribe()
    }

    /// Re-reads node.toml's rules, the roster and the encryption key files
    /// (`encryption_key`, `encryption_keys_dir`), validates them, and only then swaps
    /// them in: after a roster that rotates this agency's encryption key, the node
    /// opens messages sealed to the new key and to the previous one without a restart.
    /// A bad config, roster or `encryption_key` file leaves the old ones running and
    /// returns the error; a bad file in `encryption_keys_dir` is skipped with a logged
    /// error naming it. A roster whose current encryption key of this agency no file
    /// holds is applied all the same (its revocations take effect) and the missing
    /// key is reported loudly (error log, `encryption_key_missing` gauge, a warning in
    /// the report). The roster is anchored in the store only once every check passed.
    /// Concurrent reloads run one after the other. Other config keys need a restart.
    pub async fn reload(&self) -> Result<ReloadReport, NodeError> {
        // One reload at a time (review s30-consult2, L4): two interleaved ones could
        // swap in the older roster's keyring or policy last.
        let _one = self.reloading.lock().await;
        let cfg = Config::load(&self.config_path)?;
        // Keys are read before the roster is anchored (review s30-consult2, M3): a
        // bad `encryption_key` fails the reload with nothing changed, and a bad file
        // in `encryption_keys_dir` is skipped (logged) and never blocks revocations.
        let mut keys = crate::node::read_encryption_keys(&cfg)?;
        let roster_path = cfg.raw.roster.clone();
        let configured = cfg.raw.roster_authorities.clone();
        let roster = self
            .store
            .try_call(move |s| verify_roster_file(s, &roster_path, &configured))
            .await
            .map_err(|e| match e {
                TrustError::Store(e) => NodeError::Store(e),
                other => NodeError::Trust(other),
            })?
            .roster;
        if roster.member(&self.agency).is_none() {
            return Err(NodeError::DroppedFromRoster {
                agency: self.agency.clone(),
                roster_version: roster.version(),
            });
        }
        // The roster's live encryption keys (current, next, previous) are looked for
        // past the folder's file cap too (issue 21). If no file holds it, the roster is applied all the same
        // (its revocations must take effect) and the missing key is reported: an
        // error log naming the folder and the key, the `encryption_key_missing`
        // gauge, and a warning in this reload's report (review s31-mail M6).
        let now = Timestamp::now();
        keys = crate::node::with_live_keys(&cfg, &roster, &self.agency, keys, now)?;
        let key_warning = crate::node::report_missing_current_key(
            &cfg,
            &roster,
            &self.agency,
            &keys,
            now,
            &self.metrics,
        );
        let old_roster = self.trust.roster();
        let roster_changed = roster.hash() != old_roster.hash();
        let roster = if roster_changed {
            Arc::new(roster)
        } else {
            old_roster
        };
        let (policy, warnings) =
            Policy::from_config(&cfg, roster.clone()).map_err(NodeError::Policy)?;
        let policy_changed = policy.hash() != self.trust.policy().hash();
        // Revocations are applied (and noted as known) for the roster in force even
        // when it did not change: this reads nothing when they are the ones applied.
        // Every check passed: only now is the roster anchored (review s31-mail M6).
        let r = roster.clone();
        let me = cfg.agency().clone();
        let (applied, known, adopted) = self
            .store
            .call(move |s| {
                let (applied, known) = crate::trust::apply_revocations_and_anchor(s, &r, &me)?;
                Ok((applied, known, s.roster_adopted()?))
            })
            .await?;
        if roster_changed {
            self.ingested.log_moved(applied.head_seq);
        }
        let policy = policy.with_revocations_known(known);
        let mut report = ReloadReport {
            policy_hash: hex::encode(policy.hash()),
            policy_changed,
            roster_version: roster.version(),
            roster_changed,
            warnings: warnings
                .iter()
                .map(ToString::to_string)
                .chain(key_warning)
                .collect(),
        };
        let ring = crate::node::encryption_keyring(&roster, &self.agency, keys, Timestamp::now());
        let held_before = self.encryption_keys.public_keys();
        if ring.public_keys().copied().collect::<Vec<_>>() != held_before {
            tracing::info!(keys = ?ring, "encryption keys in force");
        }
        self.trust.note_adopted(adopted);
        // Review s35-roster L4: the gauge and the warning describe the roster in
        // force, so they are set only once it is (a reload that failed above left
        // the previous roster, and its gauge, in place).
        report
            .warnings
            .extend(crate::node::report_settings_not_understood(
                &roster,
                &self.metrics,
            ));
        let loaded = EventKind::roster_loaded(&roster);
        self.trust.replace(roster, policy);
        self.encryption_keys.replace(ring);
        let now = Timestamp::now().as_millis();
        let mut events = Vec::new();
        if roster_changed {
            events.push(Event::new(now, loaded));
        }
        if policy_changed {
            events.push(Event::new(
                now,
                EventKind::PolicyLoaded {
                    hash: report.policy_hash.clone(),
                },
            ));
        }
        if !events.is_empty() {
            self.store.call(move |s| s.audit_append(&events)).await?;
        }
        if policy_changed || roster_changed {
            // Records declined under the old rules may be acceptable now, and records
            // held back may now flow: forget refusals and reconcile with everyone.
            let n = self.store.call(|s| s.clear_declined()).await?;
            self.changes.send_modify(|g| *g += 1);
            tracing::info!(policy = %report.policy_hash, roster_version = report.roster_version, forgotten_declines = n, "policy reloaded");
        }
        Ok(report)
    }

    /// Blocks (or unblocks) `agency` at the transport level: stored with its audit
    /// event, then handed to the replication service, which has the network close its
    /// connections and refuse new ones. Returns whether anything changed.
    pub async fn set_peer_blocked(
        &self,
        agency: AgencyCode,
        blocked: bool,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now().as_millis();
        let a = agency.clone();
        let changed = self
            .store
            .call(move |s| s.set_peer_blocked(&a, blocked, now))
            .await?;
        self.blocked.send_if_modified(|set| {
            if blocked {
                set.insert(agency.clone())
            } else {
                set.remove(&agency)
            }
        });
        if changed {
            tracing::warn!(%agency, blocked, "operator changed a peer block");
        }
        Ok(changed)
    }
}
