//! A running node: loads config, keys and roster, opens the store, starts the API (and
//! the network), and shuts everything down cleanly on request.
//!
//! [`NodeContext`] is the shared, cheaply clonable view of the node that the API and
//! other components use; it holds handles, never the resources themselves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::watch;
use wlnode_crypto::keyfile::{KeyFileError, KeyKind, read_secret_key};
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::Roster;
use wlnode_crypto::{PublicKey, SecretKey};

use crate::audit::event::{Event, EventKind};
use crate::config::Config;
use crate::entries::Lifecycle;
use crate::metrics::{Metrics, SourceLabel};
use crate::store::{IngestReport, StoreError, StoreHandle};
use crate::trust::TrustError;

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A key file was refused.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The roster was refused.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agency in node.toml is not in the roster, or the keys do not match it.
    #[error("{0}")]
    Identity(String),
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The API could not bind.
    #[error("cannot listen for the API on {addr}: {reason}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// The network failed.
    #[error("network: {0}")]
    Net(String),
    /// The data-sharing policy is invalid (every problem, one per line).
    #[error("invalid policy:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Policy(Vec<crate::config::ConfigError>),
    /// The config file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

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

/// What every component of a running node shares.
#[derive(Clone, Debug)]
pub struct NodeContext {
    /// This node's agency.
    pub agency: AgencyCode,
    /// This node's libp2p PeerId.
    pub peer_id: String,
    /// The agency's public signing key.
    pub signing_key: PublicKey,
    /// The config.
    pub config: Arc<Config>,
    /// The current roster.
    pub roster: Arc<RwLock<Arc<Roster>>>,
    /// The store.
    pub store: StoreHandle,
    /// The writer of own entries.
    pub lifecycle: Lifecycle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Store health.
    pub health: Arc<Health>,
    /// Start time.
    pub started: Instant,
    /// The roster's authorities were pinned on first use at this start.
    pub trust_on_first_use: bool,
    /// The policy in force (swapped on reload).
    pub policy_cell: Arc<RwLock<Arc<crate::policy::Policy>>>,
    /// The arrival-log head; the network notifies peers when it moves.
    pub head: Arc<watch::Sender<u64>>,
    /// Peer status, maintained by the network event loop.
    pub peers: crate::net::PeerTable,
    /// Bumped when the policy or roster is reloaded; the network re-reconciles.
    pub changes: Arc<watch::Sender<u64>>,
    /// Agencies the operator blocked; the network enforces the set at its gate.
    pub blocked: Arc<watch::Sender<std::collections::BTreeSet<AgencyCode>>>,
    /// The live screening index (kept current by [`crate::screening::spawn_follower`]).
    pub screen: crate::screening::ScreenHandle,
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

impl NodeContext {
    /// The current roster.
    pub fn roster(&self) -> Arc<Roster> {
        match self.roster.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<crate::policy::Policy> {
        match self.policy_cell.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Bookkeeping after any successful ingest: metrics, and moving the log head so
    /// the network notifies neighbours (which is how records relay).
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
            .filter(|o| matches!(o, crate::store::Outcome::Stored))
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
    }

    /// Re-reads node.toml's rules and the roster, validates them, and only then swaps
    /// them in. A bad config or roster leaves the old ones running and returns the
    /// error. Other config keys need a restart.
    pub async fn reload(&self) -> Result<ReloadReport, NodeError> {
        let cfg = Config::load(&self.config.path)?;
        let roster_path = cfg.raw.roster.clone();
        let configured = cfg.raw.roster_authorities.clone();
        let roster = self
            .store
            .call(move |s| {
                crate::trust::load_roster(s, &roster_path, &configured).map_err(|e| match e {
                    TrustError::Store(e) => e,
                    other => StoreError::Open {
                        path: PathBuf::new(),
                        reason: other.to_string(),
                    },
                })
            })
            .await
            .map_err(|e| match e {
                StoreError::Open { path, reason } if path.as_os_str().is_empty() => {
                    NodeError::Identity(reason)
                }
                other => NodeError::Store(other),
            })?
            .roster;
        if roster.member(&self.agency).is_none() {
            return Err(NodeError::Identity(format!(
                "the new roster (version {}) no longer lists {}; keeping the old one",
                roster.version(),
                self.agency
            )));
        }
        let old_roster = self.roster();
        let roster_changed = roster.hash() != old_roster.hash();
        let roster = if roster_changed {
            Arc::new(roster)
        } else {
            old_roster
        };
        let (policy, warnings) =
            crate::policy::Policy::from_config(&cfg, roster.clone()).map_err(NodeError::Policy)?;
        let policy_changed = policy.hash() != self.policy().hash();
        let report = ReloadReport {
            policy_hash: hex::encode(policy.hash()),
            policy_changed,
            roster_version: roster.version(),
            roster_changed,
            warnings: warnings.iter().map(ToString::to_string).collect(),
        };
        if let Ok(mut g) = self.roster.write() {
            *g = roster;
        }
        if let Ok(mut g) = self.policy_cell.write() {
            *g = Arc::new(policy);
        }
        let now = wlnode_crypto::Timestamp::now().as_millis();
        let mut events = Vec::new();
        if roster_changed {
            events.push(Event::new(
                now,
                EventKind::RosterLoaded {
                    version: report.roster_version,
                },
            ));
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
    /// event, then handed to the network, which closes its connections and refuses new
    /// ones. Returns whether anything changed.
    pub async fn set_peer_blocked(
        &self,
        agency: AgencyCode,
        blocked: bool,
    ) -> Result<bool, StoreError> {
        let now = wlnode_crypto::Timestamp::now().as_millis();
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

    /// Bookkeeping after a failed write.
    pub fn write_failed(&self, e: &StoreError) {
        self.health.store_failed(e);
        self.metrics.store_healthy.set(0);
        self.metrics.store_errors.inc();
        tracing::error!(error = %e, "store write failed; not acknowledging new data");
    }
}

/// Signs a checkpoint every `period` when events arrived since the last one (the
/// "T seconds" half of the checkpoint rule; appends handle the "N events" half).
async fn checkpoint_timer(
    store: StoreHandle,
    period: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let r = store
            .call(|s| {
                s.audit_maybe_checkpoint(wlnode_crypto::Timestamp::now().as_millis())?;
                s.flush()
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "audit checkpoint failed");
        }
    }
}

/// Reads a secret token file, refusing group/other access like key files.
pub fn read_token(path: &std::path::Path) -> Result<String, NodeError> {
    use std::os::unix::fs::PermissionsExt;
    let read_err = |reason: String| NodeError::Read {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(read_err(format!(
            "mode {mode:o}: group and others must have no access (run: chmod 600 {})",
            path.display()
        )));
    }
    let token = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
    let token = token.trim().to_owned();
    if token.len() < 16 {
        return Err(read_err("token must be at least 16 characters".into()));
    }
    Ok(token)
}

/// The loaded identity and trust material of a node.
#[derive(Debug)]
pub struct Identity {
    /// Agency signing key.
    pub agency_key: Arc<SecretKey>,
    /// libp2p identity key.
    pub node_key: SecretKey,
    /// API token.
    pub api_token: String,
}

/// Loads the keys and the API token named in the config.
pub fn load_identity(cfg: &Config) -> Result<Identity, NodeError> {
    Ok(Identity {
        agency_key: Arc::new(read_secret_key(&cfg.raw.agency_key, KeyKind::Agency)?),
        node_key: read_secret_key(&cfg.raw.node_key, KeyKind::Node)?,
        api_token: read_token(&cfg.raw.api.token_file)?,
    })
}

/// Checks that the roster lists this agency with this node's PeerId and a currently
/// valid signing key matching the agency key.
pub fn check_membership(roster: &Roster, cfg: &Config, id: &Identity) -> Result<(), NodeError> {
    let agency = cfg.agency();
    let member = roster.member(agency).ok_or_else(|| {
        NodeError::Identity(format!(
            "agency {agency} (from {}) is not in the roster {} (federation {:?}, version {})",
            cfg.path.display(),
            cfg.raw.roster.display(),
            roster.federation(),
            roster.version()
        ))
    })?;
    let pid = id.node_key.public_key().peer_id();
    if !member.node_ids.contains(&pid) {
        return Err(NodeError::Identity(format!(
            "this node's PeerId {pid} is not listed under {agency} in the roster; ask the roster authority to add it"
        )));
    }
    if member.role == wlnode_crypto::roster::Role::Member {
        roster
            .check_signer(
                agency,
                &id.agency_key.public_key(),
                wlnode_crypto::Timestamp::now(),
            )
            .map_err(|e| {
                NodeError::Identity(format!(
                    "the agency key in {} cannot sign now: {e}",
                    cfg.raw.agency_key.display()
                ))
            })?;
    }
    Ok(())
}

/// The file in the data dir where a started node lists its libp2p listen addresses,
/// one multiaddr (with `/p2p/<peer id>`) per line.
pub const LISTEN_ADDRS_FILE: &str = "listen.addrs";

/// A started node.
#[derive(Debug)]
pub struct RunningNode {
    /// Shared context.
    pub ctx: NodeContext,
    /// The API's bound address.
    pub api_addr: SocketAddr,
    /// libp2p listen addresses (with `/p2p/<peer id>`).
    pub listen_addrs: Vec<multiaddr::Multiaddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    store_actor: Option<crate::store::actor::StoreActor>,
}

impl RunningNode {
    /// Starts a node from its config.
    pub async fn start(cfg: Config) -> Result<Self, NodeError> {
        let id = load_identity(&cfg)?;
        let (store, store_actor) = StoreHandle::open(&cfg.raw.data_dir)?;
        let roster_path = cfg.raw.roster.clone();
        let configured = cfg.raw.roster_authorities.clone();
        let loaded = store
            .call(move |s| {
                crate::trust::load_roster(s, &roster_path, &configured).map_err(|e| match e {
                    TrustError::Store(e) => e,
                    other => StoreError::Open {
                        path: PathBuf::new(),
                        reason: other.to_string(),
                    },
                })
            })
            .await
            .map_err(|e| match e {
                StoreError::Open { path, reason } if path.as_os_str().is_empty() => {
                    NodeError::Identity(reason)
                }
                other => NodeError::Store(other),
            })?;
        if loaded.trust_on_first_use {
            tracing::warn!(
                roster = %cfg.raw.roster.display(),
                authorities = ?loaded.roster.authorities().map(|k| k.to_string()).collect::<Vec<_>>(),
                "no roster_authorities configured: trusting this roster's authorities from now on (trust on first use)"
            );
        }
        check_membership(&loaded.roster, &cfg, &id)?;
        let metrics = Arc::new(Metrics::new());
        metrics.store_healthy.set(1);
        let agency = cfg.agency().clone();
        let roster = Arc::new(loaded.roster);
        let (policy, warnings) =
            crate::policy::Policy::from_config(&cfg, roster.clone()).map_err(NodeError::Policy)?;
        for w in &warnings {
            tracing::warn!(%w, "policy warning");
        }
        tracing::info!(policy = %hex::encode(policy.hash()), share_rules = cfg.raw.share.len(), accept_rules = cfg.raw.accept.len(), "policy loaded");
        let head_seq = store.call(|s| s.head_seq()).await?;
        let audit_cfg = cfg.raw.audit.clone();
        let settings = crate::store::audit::AuditSettings {
            enabled: audit_cfg.enabled,
            signer: Some((
                agency.clone(),
                Arc::new(SecretKey::from_seed(&id.node_key.seed())),
            )),
            every_events: audit_cfg.checkpoint_every_events.max(1),
            interval_ms: audit_cfg
                .checkpoint_interval_secs
                .max(1)
                .saturating_mul(1000),
        };
        let now = wlnode_crypto::Timestamp::now().as_millis();
        let start_events = vec![
            Event::new(
                now,
                EventKind::NodeStarted {
                    version: env!("CARGO_PKG_VERSION").into(),
                },
            ),
            Event::new(
                now,
                EventKind::RosterLoaded {
                    version: roster.version(),
                },
            ),
            Event::new(
                now,
                EventKind::PolicyLoaded {
                    hash: hex::encode(policy.hash()),
                },
            ),
        ];
        store
            .call(move |s| {
                s.set_audit_settings(settings);
                s.audit_append(&start_events)
            })
            .await?;
        let blocked = store.call(|s| s.blocked_peers()).await?;
        if !blocked.is_empty() {
            tracing::warn!(agencies = ?blocked, "peers blocked by the operator stay blocked");
        }
        let ctx = NodeContext {
            blocked: Arc::new(watch::channel(blocked).0),
            policy_cell: Arc::new(RwLock::new(Arc::new(policy))),
            changes: Arc::new(watch::channel(0u64).0),
            head: Arc::new(watch::channel(head_seq).0),
            peers: Arc::default(),
            agency: agency.clone(),
            peer_id: id.node_key.public_key().peer_id(),
            signing_key: id.agency_key.public_key(),
            lifecycle: Lifecycle::new(agency.clone(), id.agency_key.clone(), store.clone()),
            config: Arc::new(cfg),
            roster: Arc::new(RwLock::new(roster)),
            store,
            metrics,
            health: Arc::new(Health::default()),
            started: Instant::now(),
            trust_on_first_use: loaded.trust_on_first_use,
            screen: crate::screening::ScreenHandle::new(),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (api_addr, api_task) =
            crate::api::serve(ctx.clone(), id.api_token, shutdown_rx).await?;
        let addr_file = ctx.config.raw.data_dir.join(crate::client::API_ADDR_FILE);
        std::fs::write(&addr_file, format!("{api_addr}\n")).map_err(|e| NodeError::Read {
            path: addr_file.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        let network = crate::net::start(ctx.clone(), &id.node_key, shutdown.subscribe()).await?;
        // Operators and `wlnode demo` read the bound libp2p addresses from here when the
        // config listens on port 0.
        let listen_file = ctx.config.raw.data_dir.join(LISTEN_ADDRS_FILE);
        let text: String = network
            .listen_addrs
            .iter()
            .map(|a| format!("{a}\n"))
            .collect();
        std::fs::write(&listen_file, text).map_err(|e| NodeError::Read {
            path: listen_file.clone(),
            reason: format!("cannot write: {e}"),
        })?;

        let screen_task = crate::screening::spawn_follower(ctx.clone(), shutdown.subscribe());
        let checkpoints = tokio::spawn(checkpoint_timer(
            ctx.store.clone(),
            std::time::Duration::from_secs(audit_cfg.checkpoint_interval_secs.max(1)),
            shutdown.subscribe(),
        ));
        tracing::info!(
            agency = %ctx.agency,
            peer_id = %ctx.peer_id,
            api = %api_addr,
            roster_version = ctx.roster().version(),
            "node started"
        );
        Ok(Self {
            ctx,
            api_addr,
            shutdown,
            listen_addrs: network.listen_addrs,
            tasks: vec![api_task, network.task, screen_task, checkpoints],
            store_actor: Some(store_actor),
        })
    }

    /// Stops every task, flushes the store and waits for the store thread.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let _ = self
            .ctx
            .store
            .call(|s| {
                let now = wlnode_crypto::Timestamp::now().as_millis();
                s.audit_append(&[Event::new(now, EventKind::NodeStopped)])?;
                s.audit_checkpoint(now, true)?;
                s.flush()
            })
            .await;
        let actor = self.store_actor.take();
        drop(self.ctx);
        if let Some(a) = actor {
            let _ = tokio::task::spawn_blocking(move || a.join()).await;
        }
        tracing::info!("node stopped");
    }
}
