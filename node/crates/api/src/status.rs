//! `GET /v1/status`: what this node holds and how its peers are doing.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::{ApiError, ApiState};
use wlnode_crypto::time::Timestamp;
use wlnode_store::Counts;

use wlnode_runtime::PeerInfo;

/// The status document.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    /// This node's agency.
    pub agency: String,
    /// This node's PeerId.
    pub peer_id: String,
    /// The agency's signing key.
    pub signing_key: String,
    /// Federation name.
    pub federation: String,
    /// Roster version in use.
    pub roster_version: u64,
    /// Records held.
    pub records: u64,
    /// Entries known.
    pub entries: u64,
    /// Entries withdrawn.
    pub withdrawn: u64,
    /// Equivocating entry versions.
    pub disputed_versions: u64,
    /// Store details.
    pub store: StoreStatus,
    /// Neighbours: configured peers and any roster member connected to us.
    pub peers: Vec<PeerInfo>,
    /// Some neighbour runs a newer roster than ours.
    pub roster_outdated: bool,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// wlnode version.
    pub version: &'static str,
}

/// Store part of the status.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct StoreStatus {
    /// False after a write error, until a write succeeds again.
    pub writable: bool,
    /// The last write error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Arrival-log epoch (hex).
    pub log_epoch: String,
    /// Arrival-log head.
    pub head_seq: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Audit log size (events).
    pub audit_events: u64,
    /// Auditor cosignatures (witness signatures) of our audit checkpoints held.
    pub audit_cosignatures: u64,
    /// Since when (RFC 3339) local writes to existing entries are held after a
    /// restore or a store reopen, until this node has reconciled with every
    /// configured peer (writes get 409 `awaiting_reconcile` unless forced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_writes_held_since: Option<String>,
}

#[utoipa::path(get, path = "/v1/status", tag = "node",
    responses((status = 200, description = "Node status", body = Status), (status = 401, body = super::openapi::ErrorDoc)))]
pub(super) async fn status(State(state): State<ApiState>) -> Result<Json<Status>, ApiError> {
    let ctx = &state.node;
    let counts: Counts = ctx.store.counts().await?;
    let size = ctx.store.call(|s| s.size_on_disk()).await.unwrap_or(0);
    let held = ctx.store.call(|s| s.local_writes_held()).await?;
    let roster = ctx.trust.roster();
    let mut peers: Vec<PeerInfo> = ctx
        .peers
        .read()
        .map(|t| t.values().cloned().collect())
        .unwrap_or_default();
    for p in &ctx.config.raw.peers {
        let agency = p.agency.get_ref().to_string();
        if !peers.iter().any(|i| i.agency == agency) {
            peers.push(PeerInfo {
                peer_id: roster
                    .member(p.agency.get_ref())
                    .and_then(|m| m.node_ids.first().cloned())
                    .unwrap_or_default(),
                agency,
                ..PeerInfo::default()
            });
        }
    }
    let roster_outdated = peers.iter().any(|p| p.our_roster_outdated);
    Ok(Json(Status {
        agency: ctx.info.agency.to_string(),
        peer_id: ctx.info.peer_id.clone(),
        signing_key: ctx.info.signing_key.to_string(),
        federation: roster.federation().to_owned(),
        roster_version: roster.version(),
        records: counts.records,
        entries: counts.entries,
        withdrawn: counts.withdrawn,
        disputed_versions: counts.disputed_versions,
        store: StoreStatus {
            writable: !ctx.health.is_degraded(),
            last_error: ctx.health.last_error(),
            log_epoch: hex::encode(ctx.store.epoch()),
            head_seq: counts.head_seq,
            size_bytes: size,
            audit_events: counts.audit_events,
            audit_cosignatures: counts.audit_cosignatures,
            local_writes_held_since: held.map(|ms| Timestamp(ms).to_string()),
        },
        peers,
        roster_outdated,
        uptime_seconds: ctx.info.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}
