//! The network: libp2p with TCP + Noise + Yamux (and QUIC), identify, ping, connection
//! gating and limits, the `/wlnode/sync/1` request-response protocol, and the
//! `/wlnode/audit/1` protocol (served to roster auditors; [`audit_client`] is the
//! auditor's side).
//!
//! Only this module imports libp2p. One event loop ([`event_loop`]) owns the Swarm;
//! the rest of the node sees the network through the shared peer-status snapshot and
//! the log-head watch channel it listens to.

pub mod audit_client;
pub mod codec;
mod event_loop;
pub mod gate;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Multiaddr, PeerId, SwarmBuilder, connection_limits, identify, memory_connection_limits, noise,
    ping, request_response, tcp, yamux,
};
use serde::Serialize;
use tokio::sync::watch;
use wlnode_crypto::SecretKey;
use wlnode_crypto::time::Timestamp;

use crate::node::{NodeContext, NodeError};

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

/// Shared peer-status snapshot, written by the event loop.
pub type PeerTable = Arc<RwLock<BTreeMap<String, PeerInfo>>>;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    gate: gate::Gate,
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    sync: request_response::Behaviour<codec::FrameCodec>,
    audit: request_response::Behaviour<codec::FrameCodec>,
}

/// The running network.
#[derive(Debug)]
pub struct Network {
    /// The event loop task.
    pub task: tokio::task::JoinHandle<()>,
    /// Addresses we listen on (with `/p2p/<peer id>`).
    pub listen_addrs: Vec<Multiaddr>,
}

/// The file a node writes its listen addresses to, one per line.
pub const LISTEN_ADDRS_FILE: &str = "listen.addrs";

fn net_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Net(e.to_string())
}

/// Builds the swarm, starts listening and dialing, and spawns the event loop.
pub async fn start(
    ctx: NodeContext,
    node_key: &SecretKey,
    shutdown: watch::Receiver<bool>,
) -> Result<Network, NodeError> {
    let mut seed = node_key.seed();
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(seed.as_mut()).map_err(net_err)?;
    let cfg = ctx.config.raw.sync.clone();
    let codec = codec::FrameCodec {
        max_request: cfg.max_request_bytes,
        max_response: cfg.max_batch_bytes,
    };
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(net_err)?
        .with_quic()
        .with_behaviour(|key| {
            let rr_cfg = request_response::Config::default()
                .with_request_timeout(Duration::from_secs(120))
                .with_max_concurrent_streams(64);
            Behaviour {
                gate: gate::Gate::default(),
                limits: connection_limits::Behaviour::new(
                    connection_limits::ConnectionLimits::default()
                        .with_max_established_per_peer(Some(4))
                        .with_max_established(Some(512))
                        .with_max_pending_incoming(Some(64)),
                ),
                memory: memory_connection_limits::Behaviour::with_max_percentage(0.9),
                identify: identify::Behaviour::new(
                    identify::Config::new("/wlnode/id/1".into(), key.public())
                        .with_agent_version(format!("wlnode/{}", env!("CARGO_PKG_VERSION"))),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_secs(15)),
                ),
                sync: request_response::Behaviour::with_codec(
                    codec,
                    [(
                        codec::SYNC_PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    rr_cfg.clone(),
                ),
                audit: request_response::Behaviour::with_codec(
                    codec::FrameCodec {
                        max_request: codec::AUDIT_MAX_REQUEST,
                        max_response: codec::AUDIT_MAX_RESPONSE,
                    },
                    [(
                        codec::AUDIT_PROTOCOL,
                        request_response::ProtocolSupport::Inbound,
                    )],
                    rr_cfg,
                ),
            }
        })
        .map_err(net_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    let roster = ctx.roster();
    let allowed: Vec<PeerId> = roster
        .members()
        .flat_map(|m| m.node_ids.iter())
        .filter_map(|p| p.parse::<PeerId>().ok())
        .collect();
    swarm.behaviour_mut().gate.set_allowed(allowed);
    for a in &ctx.config.raw.listen {
        swarm
            .listen_on(a.0.clone())
            .map_err(|e| NodeError::Net(format!("cannot listen on {}: {e}", a.0)))?;
    }
    let event_loop = event_loop::EventLoop::new(swarm, ctx, shutdown).await?;
    let (event_loop, listen_addrs) = event_loop.wait_for_listeners().await;
    let task = tokio::spawn(event_loop.run());
    Ok(Network { task, listen_addrs })
}
