//! The network: libp2p with TCP + Noise + Yamux (and QUIC), identify, ping, connection
//! gating and limits, and three request-response protocols (`/wlnode/sync/1` both ways,
//! `/wlnode/audit/1` inbound only, `/wlnode/mail/5` both ways: sealed messages handed
//! from neighbour to neighbour), carrying opaque length-prefixed frames.
//!
//! This crate is a transport adaptor and the only libp2p user. One event loop
//! ([`event_loop`]) owns the Swarm, in the style of rust-libp2p's file-sharing example:
//! [`Command`]s come in through a [`NetHandle`], [`NetEvent`]s go out on a channel, and
//! the pending maps are keyed by request id. It makes no policy and no store decision:
//! which peers are allowed, blocked or banned, whom to dial, what a frame means and
//! what to answer all come from the node runtime above. Peers appear outside as
//! [`PeerRef`], whose libp2p type stays private. [`client`] is the small client-only
//! swarm an auditor uses.

pub mod client;
pub mod codec;
mod event_loop;
pub mod gate;

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    Multiaddr, PeerId, SwarmBuilder, connection_limits, identify, memory_connection_limits, noise,
    ping, request_response, tcp, yamux,
};
use tokio::sync::{mpsc, watch};
use wlnode_crypto::SecretKey;

pub use codec::{Frame, FrameCodec};

/// A remote node, by its libp2p PeerId (ordered as libp2p orders PeerIds).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerRef(PeerId);

impl PeerRef {
    /// The PeerId in its usual base58 text form (as the roster lists it).
    pub fn to_base58(&self) -> String {
        self.0.to_base58()
    }

    /// Parses a base58 PeerId.
    pub fn parse(s: &str) -> Result<Self, NetError> {
        s.parse::<PeerId>().map(Self).map_err(|e| NetError::PeerId {
            text: s.to_owned(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why the network could not start or a value was refused.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The identity key or the transport could not be set up.
    #[error("network setup: {0}")]
    Setup(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A PeerId does not parse.
    #[error("invalid PeerId {text:?}: {reason}")]
    PeerId {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
}

/// The protocols a node serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `/wlnode/sync/1`: replication, both ways.
    Sync,
    /// `/wlnode/audit/1`: the audit protocol, inbound only.
    Audit,
    /// `/wlnode/mail/5`: sealed messages and receipts, both ways.
    Mail,
}

/// Frame size limits of one protocol.
#[derive(Clone, Copy, Debug)]
pub struct FrameLimits {
    /// Largest request frame accepted and sent.
    pub max_request: usize,
    /// Largest response frame accepted and sent.
    pub max_response: usize,
}

/// An inbound request waiting for its answer ([`NetHandle::respond`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InboundId(u64);

/// What the network is started with.
#[derive(Debug)]
pub struct NetConfig<'a> {
    /// This node's libp2p identity.
    pub key: &'a SecretKey,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Frame limits of the sync protocol.
    pub sync: FrameLimits,
    /// Frame limits of the audit protocol.
    pub audit: FrameLimits,
    /// Frame limits of the mail protocol.
    pub mail: FrameLimits,
    /// The PeerIds that may connect (the roster's), from the start.
    pub allowed: Vec<PeerRef>,
    /// PeerIds refused both ways until unblocked, from the start (before the swarm is
    /// first polled, so that no blocked peer gets in at start).
    pub blocked: Vec<PeerRef>,
    /// The agent version identify announces.
    pub agent: String,
}

/// What the runtime asks the network to do.
#[derive(Debug)]
pub enum Command {
    /// Dial these addresses (PeerId unknown until the handshake); `dial` comes back on
    /// [`NetEvent::Connected`] or [`NetEvent::DialFailed`].
    Dial {
        /// The caller's token for this dial.
        dial: u64,
        /// Addresses, each dialled at once.
        addrs: Vec<Multiaddr>,
    },
    /// Send a sync request; `token` comes back with the answer.
    Request {
        /// The peer.
        peer: PeerRef,
        /// The caller's token.
        token: u64,
        /// The frame.
        frame: Bytes,
    },
    /// Send a mail request (one sealed message or receipt); `token` comes back with
    /// the answer, like [`Command::Request`]'s.
    MailRequest {
        /// The peer.
        peer: PeerRef,
        /// The caller's token.
        token: u64,
        /// The frame.
        frame: Bytes,
    },
    /// Answer an inbound request.
    Respond {
        /// Which request.
        id: InboundId,
        /// The frame.
        frame: Bytes,
    },
    /// Close every connection to a peer.
    Disconnect(PeerRef),
    /// Replace the set of PeerIds that may connect; connected peers outside it are
    /// disconnected.
    SetAllowed(Vec<PeerRef>),
    /// Replace the set of blocked PeerIds; connected ones are disconnected.
    SetBlocked(Vec<PeerRef>),
    /// Refuse these PeerIds until `until`, and disconnect them.
    Ban {
        /// The peers.
        peers: Vec<PeerRef>,
        /// Until when.
        until: Instant,
    },
}

/// What happened on the network.
#[derive(Debug)]
pub enum NetEvent {
    /// A new listen address (with `/p2p/<peer id>`).
    Listening(Multiaddr),
    /// A connection to `peer` is established (the `established`-th one).
    Connected {
        /// The peer.
        peer: PeerRef,
        /// How many connections to it are open now.
        established: u32,
        /// The dial it answers, if we dialled.
        dial: Option<u64>,
    },
    /// The last connection to `peer` closed.
    Disconnected {
        /// The peer.
        peer: PeerRef,
        /// Why, when known.
        cause: Option<String>,
    },
    /// One address of a dial failed.
    DialFailed {
        /// The dial's token.
        dial: u64,
        /// Why.
        error: String,
    },
    /// The gate refused a connection (`code`: `not_in_roster`, `banned`, `blocked`).
    Refused {
        /// The PeerId (base58).
        peer: String,
        /// Machine-readable reason.
        code: &'static str,
    },
    /// A request arrived; answer it with [`NetHandle::respond`] and `id`.
    Request {
        /// From whom.
        peer: PeerRef,
        /// On which protocol.
        protocol: Protocol,
        /// Where the answer goes.
        id: InboundId,
        /// The frame.
        frame: Frame,
    },
    /// The answer to our request `token`.
    Response {
        /// From whom.
        peer: PeerRef,
        /// Our token.
        token: u64,
        /// The frame.
        frame: Frame,
    },
    /// Our request `token` failed (timeout, connection closed, refused stream, no
    /// room for another stream).
    RequestFailed {
        /// The peer.
        peer: PeerRef,
        /// Our token.
        token: u64,
        /// Why.
        error: String,
        /// What kind of failure (review s34-mail M1: a neighbour that was reached
        /// but never answered is told from one that could not be reached).
        failure: RequestFailure,
    },
    /// An inbound stream failed; `violation` when its frame was malformed or cut.
    InboundFailed {
        /// The peer.
        peer: PeerRef,
        /// On which protocol.
        protocol: Protocol,
        /// The frame was malformed or truncated (the peer's fault); not a stream that
        /// ended before any byte of it (one the peer dropped unused).
        violation: bool,
    },
}

/// Why one of our requests failed ([`NetEvent::RequestFailed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFailure {
    /// The peer could not be dialled: it was not reachable.
    Dial,
    /// The peer does not speak the protocol (another version).
    Unsupported,
    /// The peer took the request and sent no answer in time.
    Timeout,
    /// The connection closed before the answer came.
    ConnectionClosed,
    /// The stream failed (reset, bad frame) before the answer came.
    Stream,
    /// Our own side had no room for the request: the connection's request-response
    /// handler already runs its most concurrent streams ([`MAX_STREAMS`], inbound
    /// and outbound together), so the request was never written: the peer saw at
    /// most a stream that ended before its first byte, which is no violation there
    /// (s37 final review L2; review s37-order H1). A local-capacity failure, not the peer's
    /// answer: the caller may offer the request again soon without counting it
    /// against the item's backoff.
    Busy,
}

/// The most concurrent streams of each request-response protocol (sync, audit, mail)
/// on one connection, inbound and outbound together (libp2p request-response's
/// `max_concurrent_streams`): past it an outbound request fails
/// [`RequestFailure::Busy`] and an inbound one is dropped.
pub const MAX_STREAMS: usize = 64;

/// How long a request of ours (sync, audit or mail) may wait for its answer before
/// libp2p ends it with a timeout: every request ends, with an answer or a failure,
/// within it (the mailer's sweep of hand-overs whose end never came is set well past
/// it: `wlnode_sync::mail::MailLimits::stale_request_ms`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The runtime's handle on the network: commands in.
#[derive(Clone, Debug)]
pub struct NetHandle {
    tx: mpsc::UnboundedSender<Command>,
    local: PeerRef,
}

impl NetHandle {
    /// This node's PeerId.
    pub fn local_peer(&self) -> PeerRef {
        self.local
    }

    /// Sends a command (ignored once the network has stopped).
    pub fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }

    /// Whether the network has stopped (nothing sent now would go out).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Dials `addrs`; see [`Command::Dial`].
    pub fn dial(&self, dial: u64, addrs: Vec<Multiaddr>) {
        self.send(Command::Dial { dial, addrs });
    }

    /// Sends a sync request; see [`Command::Request`].
    pub fn request(&self, peer: PeerRef, token: u64, frame: Bytes) {
        self.send(Command::Request { peer, token, frame });
    }

    /// Sends a mail request (see [`Command::MailRequest`]).
    pub fn mail_request(&self, peer: PeerRef, token: u64, frame: Bytes) {
        self.send(Command::MailRequest { peer, token, frame });
    }

    /// Answers an inbound request.
    pub fn respond(&self, id: InboundId, frame: Bytes) {
        self.send(Command::Respond { id, frame });
    }

    /// Closes every connection to `peer`.
    pub fn disconnect(&self, peer: PeerRef) {
        self.send(Command::Disconnect(peer));
    }
}

/// The running network.
#[derive(Debug)]
pub struct Network {
    /// Commands in.
    pub handle: NetHandle,
    /// Events out. The channel is bounded: while the runtime is behind, the event
    /// loop stops polling the swarm, so a flood of frames waits in the transport
    /// instead of in memory here.
    pub events: mpsc::Receiver<NetEvent>,
    /// Addresses we listen on (with `/p2p/<peer id>`), once every listener is up.
    pub listen_addrs: Vec<Multiaddr>,
    /// The event loop task.
    pub task: tokio::task::JoinHandle<()>,
}

/// Network events queued for the runtime before the event loop stops reading from the
/// swarm.
pub const EVENT_QUEUE: usize = 1024;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    gate: gate::Gate,
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    sync: request_response::Behaviour<codec::FrameCodec>,
    audit: request_response::Behaviour<codec::FrameCodec>,
    mail: request_response::Behaviour<codec::FrameCodec>,
}

fn setup(e: impl fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

/// The libp2p identity of `key`.
pub(crate) fn keypair(key: &SecretKey) -> Result<libp2p::identity::Keypair, NetError> {
    let mut seed = key.seed();
    libp2p::identity::Keypair::ed25519_from_bytes(seed.as_mut()).map_err(setup)
}

/// Builds the swarm, starts listening, waits until every listener has an address, and
/// spawns the event loop, which runs until `shutdown`.
pub async fn start(
    cfg: NetConfig<'_>,
    shutdown: watch::Receiver<bool>,
) -> Result<Network, NetError> {
    let keypair = keypair(cfg.key)?;
    let sync_codec = codec::FrameCodec {
        max_request: cfg.sync.max_request,
        max_response: cfg.sync.max_response,
    };
    let audit_codec = codec::FrameCodec {
        max_request: cfg.audit.max_request,
        max_response: cfg.audit.max_response,
    };
    let mail_codec = codec::FrameCodec {
        max_request: cfg.mail.max_request,
        max_response: cfg.mail.max_response,
    };
    let agent = cfg.agent.clone();
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(setup)?
        .with_quic()
        .with_behaviour(|key| {
            let rr_cfg = request_response::Config::default()
                .with_request_timeout(REQUEST_TIMEOUT)
                .with_max_concurrent_streams(MAX_STREAMS);
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
                        .with_agent_version(agent),
                ),
                ping: ping::Behaviour::new(
                    ping::Config::new().with_interval(Duration::from_secs(15)),
                ),
                sync: request_response::Behaviour::with_codec(
                    sync_codec,
                    [(
                        codec::SYNC_PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    rr_cfg.clone(),
                ),
                audit: request_response::Behaviour::with_codec(
                    audit_codec,
                    [(
                        codec::AUDIT_PROTOCOL,
                        request_response::ProtocolSupport::Inbound,
                    )],
                    rr_cfg.clone(),
                ),
                mail: request_response::Behaviour::with_codec(
                    mail_codec,
                    [(
                        codec::MAIL_PROTOCOL,
                        request_response::ProtocolSupport::Full,
                    )],
                    rr_cfg,
                ),
            }
        })
        .map_err(setup)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    swarm
        .behaviour_mut()
        .gate
        .set_allowed(cfg.allowed.iter().map(|p| p.0));
    swarm
        .behaviour_mut()
        .gate
        .set_blocked(cfg.blocked.iter().map(|p| p.0));
    for a in &cfg.listen {
        swarm.listen_on(a.clone()).map_err(|e| NetError::Listen {
            addr: a.clone(),
            reason: e.to_string(),
        })?;
    }
    let local = PeerRef(*swarm.local_peer_id());
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, events) = mpsc::channel(EVENT_QUEUE);
    let mut event_loop = event_loop::EventLoop::new(swarm, cmd_rx, ev_tx, shutdown);
    let listen_addrs = event_loop.wait_for_listeners(cfg.listen.len()).await;
    let task = tokio::spawn(event_loop.run());
    Ok(Network {
        handle: NetHandle { tx: cmd_tx, local },
        events,
        listen_addrs,
        task,
    })
}
