//! The network event loop: the one owner of the Swarm.
//!
//! `select!` only turns sources (swarm events, finished tasks, the local log head, a
//! timer, shutdown) into [`Event`]s; a plain `match` handles them. Protocol decisions
//! come from the sans-IO [`PeerSync`] machines; store access, policy filtering and
//! signature checks run in spawned tasks that report back as [`TaskDone`]s, so the
//! loop itself never blocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use negentropy::NegentropyStorageVector;
use tokio::sync::{mpsc, watch};
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::roster::Role;
use wlnode_crypto::time::Timestamp;

use super::codec::Frame;
use super::gate::Refused;
use super::{Behaviour, BehaviourEvent, LISTEN_ADDRS_FILE, PeerInfo};
use crate::audit::event::{Cosignature, Event as AuditEvent, EventKind};
use crate::audit::wire::{self as audit_wire, AuditRequest, AuditResponse, ProvenEvent};
use crate::config::SyncConfig;
use crate::metrics::{PeerLabel, PeerReason};
use crate::node::{NodeContext, NodeError};
use crate::policy::{DistRef, Policy};
use crate::store::{IngestBatch, RawRecord, StoreError};
use crate::sync::ingest::{Rejected, check};
use crate::sync::msg::{
    Batch, Hello, Notify, Pull, Reconcile, ReconcileReply, Request, Response, Transfer,
};
use crate::sync::reconcile::{self, Initiator, Step};
use crate::sync::{Action, Backoff, Bans, PeerSync, SentCache};
use crate::wire::{Cursor, decode_request, decode_response, encode_request, encode_response};

/// Most records a Pull batch may carry.
const MAX_PULL_LIMIT: u32 = 5000;
/// Most `need` ids per reconcile request (also bounded by the batch byte limit).
const MAX_NEED: usize = 4000;
/// Responder sessions expire after this long without use.
const RESPONDER_TTL: Duration = Duration::from_secs(120);
/// How long a copy sent to a peer is not sent again.
const SENT_TTL: Duration = Duration::from_secs(300);
/// Most copies remembered per peer.
const SENT_CAP: usize = 200_000;
/// Room left in each frame for the message envelope.
const FRAME_SLACK: usize = 16 * 1024;

enum Pending {
    Hello,
    Notify,
    Pull,
    /// A request of our session, naming `asked` record ids we lack.
    Reconcile {
        session: [u8; 16],
        asked: usize,
    },
}

/// Results of spawned work, fed back into the loop.
enum TaskDone {
    Respond {
        peer: PeerId,
        channel: ResponseChannel<Frame>,
        response: Response,
    },
    Applied {
        peer: PeerId,
        agency: AgencyCode,
        batch: Option<(Batch, Cursor)>,
        /// Records returned in our reconciliation session with this id.
        session: Option<[u8; 16]>,
        outcome: IngestOutcome,
    },
    Sent {
        agency: AgencyCode,
        records: u64,
        withheld_fields: u64,
        denied: u64,
        /// For Pull batches: whether the batch reached our head.
        at_head: Option<bool>,
    },
    ReconcileReady {
        peer: PeerId,
        result: Result<(Initiator, Step), String>,
    },
    ReconcileHave {
        peer: PeerId,
        step: Step,
        transfers: Vec<Transfer>,
        leftover: Vec<RecordId>,
    },
    ResponderStorage {
        peer: PeerId,
        session: [u8; 16],
        storage: Arc<NegentropyStorageVector>,
    },
    CursorPersisted,
    AuditRespond {
        channel: ResponseChannel<Frame>,
        response: AuditResponse,
    },
}

#[derive(Default)]
struct IngestOutcome {
    received: u64,
    stored: u64,
    rejected: Vec<Rejected>,
    error: Option<String>,
}

#[allow(clippy::large_enum_variant)] // one event at a time, never stored
enum Event {
    Swarm(SwarmEvent<BehaviourEvent>),
    Task(TaskDone),
    Head(u64),
    Reloaded,
    Blocked,
    Tick,
    Shutdown,
}

struct DialTarget {
    agency: AgencyCode,
    addrs: Vec<Multiaddr>,
    backoff: Backoff,
    next_at: Option<Instant>,
    dialing: usize,
}

#[derive(Default, Clone)]
struct Counters {
    received: u64,
    sent: u64,
    rejected: u64,
}

pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    ctx: NodeContext,
    cfg: SyncConfig,
    epoch: [u8; 16],
    tasks_tx: mpsc::UnboundedSender<TaskDone>,
    tasks_rx: mpsc::UnboundedReceiver<TaskDone>,
    head_rx: watch::Receiver<u64>,
    changes_rx: watch::Receiver<u64>,
    blocked_rx: watch::Receiver<std::collections::BTreeSet<AgencyCode>>,
    /// Agencies the operator blocked (enforced by the gate).
    blocked: std::collections::BTreeSet<AgencyCode>,
    shutdown: watch::Receiver<bool>,
    local_head: u64,
    peers: HashMap<PeerId, PeerSync>,
    agencies: HashMap<PeerId, (AgencyCode, Role)>,
    pending: HashMap<OutboundRequestId, (PeerId, Pending)>,
    initiators: HashMap<PeerId, Initiator>,
    responders: HashMap<PeerId, ([u8; 16], Arc<NegentropyStorageVector>, Instant)>,
    cursors: HashMap<AgencyCode, Cursor>,
    targets: Vec<DialTarget>,
    dialing: HashMap<ConnectionId, usize>,
    bans: Bans,
    counters: HashMap<AgencyCode, Counters>,
    sent: Arc<std::sync::Mutex<HashMap<AgencyCode, SentCache>>>,
    listen_addrs: Vec<Multiaddr>,
    addr_file: PathBuf,
}

/// The span of one reconciliation round with a peer (first bytes of its session id).
fn round_span(session: &[u8; 16]) -> tracing::Span {
    let round = hex::encode(session.get(..4).unwrap_or_default());
    tracing::info_span!("sync_round", %round)
}

fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / f64::from(u32::MAX))
}

fn random_session() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        s = Timestamp::now()
            .as_millis()
            .to_le_bytes()
            .repeat(2)
            .try_into()
            .unwrap_or([0; 16]);
    }
    s
}

impl EventLoop {
    pub(crate) async fn new(
        swarm: Swarm<Behaviour>,
        ctx: NodeContext,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, NodeError> {
        let cfg = ctx.config.raw.sync.clone();
        let roster = ctx.roster();
        let agencies: Vec<AgencyCode> = roster.members().map(|m| m.agency.clone()).collect();
        let cursors = ctx
            .store
            .call(move |s| {
                let mut out = HashMap::new();
                for a in agencies {
                    if let Some(c) = s.cursor(&a)? {
                        out.insert(a, c);
                    }
                }
                Ok(out)
            })
            .await?;
        let targets = ctx
            .config
            .raw
            .peers
            .iter()
            .filter(|p| !p.addrs.is_empty())
            .map(|p| DialTarget {
                agency: p.agency.get_ref().clone(),
                addrs: p.addrs.iter().map(|a| a.0.clone()).collect(),
                backoff: Backoff::new(cfg.reconnect_min.0, cfg.reconnect_max.0),
                next_at: Some(Instant::now()),
                dialing: 0,
            })
            .collect();
        let (tasks_tx, tasks_rx) = mpsc::unbounded_channel();
        let head_rx = ctx.head.subscribe();
        let changes_rx = ctx.changes.subscribe();
        let mut blocked_rx = ctx.blocked.subscribe();
        let blocked = blocked_rx.borrow_and_update().clone();
        let local_head = *head_rx.borrow();
        let mut el = Self {
            swarm,
            epoch: ctx.store.epoch(),
            addr_file: ctx.config.raw.data_dir.join(LISTEN_ADDRS_FILE),
            bans: Bans::new(cfg.ban_threshold, cfg.ban_window.0, cfg.ban_duration.0),
            cfg,
            ctx,
            tasks_tx,
            tasks_rx,
            head_rx,
            changes_rx,
            blocked_rx,
            blocked,
            shutdown,
            local_head,
            peers: HashMap::new(),
            agencies: HashMap::new(),
            pending: HashMap::new(),
            initiators: HashMap::new(),
            responders: HashMap::new(),
            cursors,
            targets,
            dialing: HashMap::new(),
            counters: HashMap::new(),
            sent: Arc::default(),
            listen_addrs: Vec::new(),
        };
        // Before the swarm is first polled, so no blocked peer gets in at start.
        el.apply_blocks();
        Ok(el)
    }

    /// Polls the swarm until every configured listener has an address (so that tests
    /// and scripts can read them from `listen.addrs` as soon as the node is up).
    pub(crate) async fn wait_for_listeners(mut self) -> (Self, Vec<Multiaddr>) {
        let want = self.ctx.config.raw.listen.len();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.listen_addrs.len() < want {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(ev) => self.on_swarm(ev),
                Err(_) => break,
            }
        }
        let addrs = self.listen_addrs.clone();
        (self, addrs)
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                ev = self.swarm.select_next_some() => Event::Swarm(ev),
                Some(t) = self.tasks_rx.recv() => Event::Task(t),
                                Ok(()) = self.head_rx.changed() => Event::Head(*self.head_rx.borrow_and_update()),
                Ok(()) = self.changes_rx.changed() => Event::Reloaded,
                Ok(()) = self.blocked_rx.changed() => Event::Blocked,
                _ = tick.tick() => Event::Tick,
                _ = self.shutdown.changed() => Event::Shutdown,
            };
            match event {
                Event::Swarm(ev) => self.on_swarm(ev),
                Event::Task(t) => self.on_task(t),
                Event::Head(h) => self.on_local_head(h),
                Event::Reloaded => self.on_reloaded(),
                Event::Blocked => {
                    let new = self.blocked_rx.borrow_and_update().clone();
                    let old = std::mem::replace(&mut self.blocked, new);
                    // Dial the unblocked ones again at once.
                    for t in self.targets.iter_mut() {
                        if old.contains(&t.agency) && !self.blocked.contains(&t.agency) {
                            t.backoff.reset();
                            t.next_at = Some(Instant::now());
                        }
                    }
                    self.apply_blocks();
                }
                Event::Tick => self.on_tick(),
                Event::Shutdown => break,
            }
        }
        tracing::info!("network stopped");
    }

    fn policy(&self) -> Arc<Policy> {
        self.ctx.policy()
    }

    /// The tracing span every log line about `peer` runs in, so logs can be filtered
    /// per neighbour (`agency` and `peer` fields, also in JSON logs).
    fn peer_span(&self, peer: &PeerId) -> tracing::Span {
        let agency = self
            .agency_of(peer)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| "?".into());
        tracing::info_span!("peer", %agency, %peer)
    }

    fn agency_of(&self, peer: &PeerId) -> Option<(AgencyCode, Role)> {
        if let Some(a) = self.agencies.get(peer) {
            return Some(a.clone());
        }
        let roster = self.ctx.roster();
        roster
            .agency_of_peer(&peer.to_base58())
            .map(|m| (m.agency.clone(), m.role))
    }

    // ---------------------------------------------------------------- swarm events

    fn on_swarm(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .with_p2p(*self.swarm.local_peer_id())
                    .unwrap_or_else(|a| a);
                tracing::info!(address = %full, "listening");
                self.listen_addrs.push(full);
                let text: String = self.listen_addrs.iter().map(|a| format!("{a}\n")).collect();
                if let Err(e) = std::fs::write(&self.addr_file, text) {
                    tracing::warn!(error = %e, file = %self.addr_file.display(), "cannot write listen addresses");
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => self.on_connected(peer_id, connection_id, num_established.get()),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                self.on_disconnected(peer_id, cause.map(|c| c.to_string()));
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                if let DialError::Denied { .. } = &error {
                    self.drain_refusals();
                }
                if let Some(i) = self.dialing.remove(&connection_id)
                    && let Some(t) = self.targets.get_mut(i)
                {
                    t.dialing = t.dialing.saturating_sub(1);
                    tracing::debug!(agency = %t.agency, error = %error, "dial failed");
                    if t.dialing == 0 && t.next_at.is_none() {
                        let connected = self.agencies.values().any(|(a, _)| *a == t.agency);
                        if !connected {
                            t.next_at = Some(Instant::now() + t.backoff.next_delay(jitter()));
                        }
                    }
                }
            }
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => match &error {
                ListenError::Denied { .. } => {
                    tracing::debug!(from = %send_back_addr, "incoming connection denied");
                    self.drain_refusals();
                }
                other => {
                    tracing::debug!(from = %send_back_addr, error = %other, "incoming connection failed")
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(ev)) => self.on_sync_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Audit(ev)) => self.on_audit_event(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_) | BehaviourEvent::Ping(_)) => {}
            _ => {}
        }
    }

    /// Logs and counts the connections the gate refused since the last call.
    fn drain_refusals(&mut self) {
        for r in self.swarm.behaviour_mut().gate.take_refusals() {
            let peer = match &r {
                Refused::NotInRoster(p) | Refused::Banned(p) | Refused::Blocked(p) => p.to_base58(),
            };
            tracing::warn!(%peer, reason = r.code(), "connection refused by the roster gate");
            self.ctx
                .metrics
                .connections_refused
                .get_or_create(&PeerReason {
                    peer,
                    reason: r.code().to_owned(),
                })
                .inc();
        }
    }

    fn on_connected(&mut self, peer: PeerId, connection: ConnectionId, n: u32) {
        let Some((agency, role)) = self.agency_of(&peer) else {
            // The gate only admits roster peers; a roster change may have raced.
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        if let Some(i) = self.dialing.remove(&connection)
            && let Some(t) = self.targets.get_mut(i)
        {
            t.dialing = t.dialing.saturating_sub(1);
        }
        for t in self.targets.iter_mut().filter(|t| t.agency == agency) {
            t.backoff.reset();
            t.next_at = None;
        }
        if n > 1 {
            return;
        }
        self.agencies.insert(peer, (agency.clone(), role));
        // A new connection: the peer may have restarted or lost data, so what we sent
        // it before counts for nothing now.
        if let Ok(mut m) = self.sent.lock() {
            m.remove(&agency);
        }
        self.ctx.metrics.peers_connected.inc();
        tracing::info!(%agency, %peer, role = %role, "peer connected");
        if role != Role::Member {
            return;
        }
        let initiator = *self.swarm.local_peer_id() < peer;
        let mut ps = PeerSync::new(
            agency.clone(),
            initiator,
            self.cursors.get(&agency).copied(),
            self.cfg.anti_entropy_interval.0,
            self.cfg.pull_limit.min(MAX_PULL_LIMIT),
            u64::try_from(self.cfg.max_batch_bytes).unwrap_or(u64::MAX),
            Instant::now(),
        );
        let actions = ps.on_connected();
        self.peers.insert(peer, ps);
        self.run_actions(peer, actions);
        self.refresh_status();
    }

    fn on_disconnected(&mut self, peer: PeerId, cause: Option<String>) {
        let Some((agency, _)) = self.agencies.remove(&peer) else {
            return;
        };
        self.ctx.metrics.peers_connected.dec();
        tracing::info!(%agency, %peer, cause = cause.as_deref().unwrap_or("closed"), "peer disconnected");
        self.peers.remove(&peer);
        self.initiators.remove(&peer);
        self.responders.remove(&peer);
        self.pending.retain(|_, (p, _)| *p != peer);
        let still = self.agencies.values().any(|(a, _)| *a == agency);
        if !still {
            for t in self.targets.iter_mut().filter(|t| t.agency == agency) {
                t.next_at = Some(Instant::now() + t.backoff.next_delay(jitter()));
            }
        }
        if let Some(c) = cause {
            self.set_error(&agency, c);
        }
        self.refresh_status();
    }

    // ------------------------------------------------------------ request-response

    fn on_sync_event(&mut self, ev: request_response::Event<Frame, Frame>) {
        match ev {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => match request {
                    Frame::Data(b) => self.on_request(peer, b, channel),
                    Frame::Oversized { len, max } => {
                        tracing::warn!(%peer, len, max, "oversized request frame refused");
                        self.respond(
                            peer,
                            channel,
                            &Response::error(
                                "frame_too_large",
                                format!("frame of {len} bytes is over the limit of {max}"),
                            ),
                        );
                        self.protocol_violation(peer, "frame_too_large");
                    }
                },
                request_response::Message::Response {
                    request_id,
                    response,
                } => match response {
                    Frame::Data(b) => self.on_response(peer, request_id, b),
                    Frame::Oversized { len, max } => {
                        tracing::warn!(%peer, len, max, "oversized response frame refused");
                        self.protocol_violation(peer, "frame_too_large");
                        if let Some((_, pending)) = self.pending.remove(&request_id) {
                            self.request_failed(
                                peer,
                                pending,
                                format!("response of {len} bytes over the limit of {max}"),
                            );
                        }
                    }
                },
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some((_, pending)) = self.pending.remove(&request_id) else {
                    return;
                };
                let msg = error.to_string();
                tracing::debug!(%peer, error = %msg, "sync request failed");
                self.request_failed(peer, pending, msg);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                let violation = matches!(&error, request_response::InboundFailure::Io(e)
                    if e.kind() == std::io::ErrorKind::InvalidData || e.kind() == std::io::ErrorKind::UnexpectedEof);
                tracing::debug!(%peer, error = %error, "inbound sync stream failed");
                if violation {
                    self.protocol_violation(peer, "bad_frame");
                }
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn respond(&mut self, peer: PeerId, channel: ResponseChannel<Frame>, response: &Response) {
        let encoded = Bytes::from(encode_response(response));
        self.count_bytes(&peer, encoded.len());
        let bytes = Frame::Data(encoded);
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, bytes)
            .is_err()
        {
            tracing::debug!("response channel closed before the response was ready");
        }
    }

    fn send(&mut self, peer: PeerId, request: &Request, pending: Pending) {
        let bytes = Bytes::from(encode_request(request));
        if let Some((agency, _)) = self.agencies.get(&peer) {
            self.ctx
                .metrics
                .sync_bytes
                .get_or_create(&PeerLabel {
                    peer: agency.to_string(),
                })
                .inc_by(bytes.len() as u64);
        }
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, Frame::Data(bytes));
        self.pending.insert(id, (peer, pending));
    }

    fn protocol_violation(&mut self, peer: PeerId, reason: &str) {
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        self.ctx.metrics.reject(agency.as_str(), reason);
        self.set_error(&agency, format!("protocol violation: {reason}"));
        self.record_invalid(&agency, 1);
    }

    fn record_invalid(&mut self, agency: &AgencyCode, n: u32) {
        if let Some(until) = self.bans.record(agency, n, Instant::now()) {
            tracing::warn!(%agency, ban_seconds = self.cfg.ban_duration.0.as_secs(), "peer banned: too many invalid records or frames");
            let ev = AuditEvent::new(
                Timestamp::now().as_millis(),
                EventKind::PeerBanned {
                    agency: agency.clone(),
                    seconds: self.cfg.ban_duration.0.as_secs(),
                },
            );
            let store = self.ctx.store.clone();
            tokio::spawn(async move {
                let _ = store.call(move |s| s.audit_append(&[ev])).await;
            });
            self.ctx.metrics.reject(agency.as_str(), "banned");
            let peers: Vec<PeerId> = self
                .agencies
                .iter()
                .filter(|(_, (a, _))| a == agency)
                .map(|(p, _)| *p)
                .collect();
            let roster_peers: Vec<PeerId> = self
                .ctx
                .roster()
                .member(agency)
                .map(|m| m.node_ids.iter().filter_map(|p| p.parse().ok()).collect())
                .unwrap_or_default();
            for p in roster_peers.iter().chain(&peers) {
                self.swarm.behaviour_mut().gate.ban(*p, until);
            }
            for p in peers {
                let _ = self.swarm.disconnect_peer_id(p);
            }
        }
    }

    fn count_bytes(&self, peer: &PeerId, n: usize) {
        if let Some((agency, _)) = self.agencies.get(peer) {
            self.ctx
                .metrics
                .sync_bytes
                .get_or_create(&PeerLabel {
                    peer: agency.to_string(),
                })
                .inc_by(n as u64);
        }
    }

    fn on_request(&mut self, peer: PeerId, bytes: Bytes, channel: ResponseChannel<Frame>) {
        let _span = self.peer_span(&peer).entered();
        self.count_bytes(&peer, bytes.len());
        let Some((agency, role)) = self.agency_of(&peer) else {
            self.respond(
                peer,
                channel,
                &Response::error("forbidden", "not in the roster"),
            );
            return;
        };
        if role != Role::Member {
            self.respond(
                peer,
                channel,
                &Response::error("forbidden", "auditors may only use the audit protocol"),
            );
            return;
        }
        // Blocked, but its connection not yet closed: serve nothing in between.
        if self.blocked.contains(&agency) {
            self.respond(
                peer,
                channel,
                &Response::error("forbidden", "blocked by the operator"),
            );
            return;
        }
        let req = match decode_request(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.respond(
                    peer,
                    channel,
                    &Response::error("bad_request", e.to_string()),
                );
                self.protocol_violation(peer, "bad_request");
                return;
            }
        };
        let now = Instant::now();
        match req {
            Request::Hello(h) => {
                if h.agency != agency {
                    self.respond(
                        peer,
                        channel,
                        &Response::error("bad_request", "Hello names another agency"),
                    );
                    self.protocol_violation(peer, "hello_agency_mismatch");
                    return;
                }
                let ours = self.hello(&agency);
                self.respond(peer, channel, &Response::Hello(ours));
                self.note_roster_version(&agency, h.roster_version);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_hello(&h, now);
                    self.run_actions(peer, actions);
                }
            }
            Request::Notify(n) => {
                self.respond(peer, channel, &Response::Ack);
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|ps| ps.notify_epoch_mismatch(&n))
                {
                    self.protocol_violation(peer, "notify_epoch_mismatch");
                    return;
                }
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify(&n, now);
                    self.run_actions(peer, actions);
                }
            }
            Request::Pull(p) => self.serve_pull(peer, agency, p, channel),
            Request::Reconcile(r) => self.serve_reconcile(peer, agency, r, channel),
        }
    }

    // ----------------------------------------------------------- audit protocol

    fn on_audit_event(&mut self, ev: request_response::Event<Frame, Frame>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => match request {
                Frame::Data(b) => self.on_audit_request(peer, b, channel),
                Frame::Oversized { len, max } => {
                    self.audit_respond(
                        channel,
                        &AuditResponse::error(
                            "bad_request",
                            format!("frame of {len} bytes is over the limit of {max}"),
                        ),
                    );
                    self.protocol_violation(peer, "frame_too_large");
                }
            },
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, error = %error, "inbound audit stream failed");
            }
            _ => {}
        }
    }

    fn audit_respond(&mut self, channel: ResponseChannel<Frame>, response: &AuditResponse) {
        let bytes = Frame::Data(Bytes::from(audit_wire::encode_response(response)));
        if self
            .swarm
            .behaviour_mut()
            .audit
            .send_response(channel, bytes)
            .is_err()
        {
            tracing::debug!("audit response channel closed before the response was ready");
        }
    }

    /// Serves one audit request: only roster auditors are answered; anyone else gets
    /// `forbidden`, and the refusal goes into our audit log and metrics.
    fn on_audit_request(&mut self, peer: PeerId, bytes: Bytes, channel: ResponseChannel<Frame>) {
        let who = self.agency_of(&peer);
        let allowed = matches!(&who, Some((_, Role::Auditor)));
        if !allowed {
            let label = who
                .as_ref()
                .map_or_else(|| peer.to_base58(), |(a, _)| a.to_string());
            tracing::warn!(peer = %label, "audit request refused: not an auditor");
            self.ctx
                .metrics
                .audit_refused
                .get_or_create(&PeerLabel {
                    peer: label.clone(),
                })
                .inc();
            let ev = AuditEvent::new(
                Timestamp::now().as_millis(),
                EventKind::AuditRefused { peer: label },
            );
            let store = self.ctx.store.clone();
            let tx = self.tasks_tx.clone();
            // The refusal is durable before the peer hears of it.
            tokio::spawn(async move {
                let _ = store.call(move |s| s.audit_append(&[ev])).await;
                let _ = tx.send(TaskDone::AuditRespond {
                    channel,
                    response: AuditResponse::error(
                        "forbidden",
                        "only roster auditors may use the audit protocol",
                    ),
                });
            });
            return;
        }
        let req = match audit_wire::decode_request(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.audit_respond(channel, &AuditResponse::error("bad_request", e.to_string()));
                self.protocol_violation(peer, "bad_request");
                return;
            }
        };
        let store = self.ctx.store.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(async move {
            let response = match store.call(move |s| serve_audit(s, peer, req)).await {
                Ok(r) => r,
                Err(e) => AuditResponse::error("unavailable", e.to_string()),
            };
            let _ = tx.send(TaskDone::AuditRespond { channel, response });
        });
    }

    /// Our Hello to `to`.
    fn hello(&self, to: &AgencyCode) -> Hello {
        Hello {
            agency: self.ctx.agency.clone(),
            roster_version: self.ctx.roster().version(),
            log_epoch: self.epoch,
            head_seq: self.local_head,
            backlog_pending: self.peers.values().find(|p| p.agency == *to).map_or_else(
                || self.cursors.get(to).is_some_and(|c| !c.backlog_complete),
                PeerSync::declares_pending,
            ),
        }
    }

    fn note_roster_version(&mut self, agency: &AgencyCode, theirs: u64) {
        let ours = self.ctx.roster().version();
        if theirs != ours {
            tracing::warn!(
                %agency,
                ours,
                theirs,
                "roster versions differ; the node with the older roster should load the newer one"
            );
        }
    }

    fn on_response(&mut self, peer: PeerId, id: OutboundRequestId, bytes: Bytes) {
        let _span = self.peer_span(&peer).entered();
        let Some((_, pending)) = self.pending.remove(&id) else {
            return;
        };
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        // Blocked while this request was in flight: take nothing from it.
        if self.blocked.contains(&agency) {
            self.request_failed(peer, pending, "peer blocked by the operator".into());
            return;
        }
        self.ctx
            .metrics
            .sync_bytes
            .get_or_create(&PeerLabel {
                peer: agency.to_string(),
            })
            .inc_by(bytes.len() as u64);
        let resp = match decode_response(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.protocol_violation(peer, "bad_response");
                self.request_failed(peer, pending, e.to_string());
                return;
            }
        };
        let now = Instant::now();
        match (pending, resp) {
            (Pending::Hello, Response::Hello(h)) => {
                if h.agency != agency {
                    self.protocol_violation(peer, "hello_agency_mismatch");
                    return;
                }
                self.note_roster_version(&agency, h.roster_version);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_hello(&h, now);
                    self.run_actions(peer, actions);
                }
            }
            (Pending::Notify, Response::Ack) => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify_done();
                    self.run_actions(peer, actions);
                }
            }
            (Pending::Pull, Response::Batch(b)) => self.apply_batch(peer, agency, b),
            (Pending::Reconcile { session, asked }, Response::Reconcile(r)) => {
                self.on_reconcile_reply(peer, agency, session, asked, r)
            }
            (pending, Response::Error { code, message }) => {
                self.request_failed(peer, pending, format!("{code}: {message}"));
            }
            (pending, _) => {
                self.protocol_violation(peer, "unexpected_response");
                self.request_failed(peer, pending, "unexpected response type".into());
            }
        }
    }

    fn request_failed(&mut self, peer: PeerId, pending: Pending, error: String) {
        let _span = self.peer_span(&peer).entered();
        let now = Instant::now();
        if let Some((agency, _)) = self.agency_of(&peer) {
            self.set_error(&agency, error.clone());
        }
        match pending {
            Pending::Hello => {}
            Pending::Notify => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify_done();
                    self.run_actions(peer, actions);
                }
            }
            Pending::Pull => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.on_pull_failed(error, now);
                }
            }
            Pending::Reconcile { .. } => {
                self.initiators.remove(&peer);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_reconcile_done(Err(error), now);
                    self.run_actions(peer, actions);
                }
            }
        }
    }

    // --------------------------------------------------------------------- actions

    fn run_actions(&mut self, peer: PeerId, actions: Vec<Action>) {
        let _span = self.peer_span(&peer).entered();
        for a in actions {
            match a {
                Action::SendHello => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    let h = self.hello(&agency);
                    self.send(peer, &Request::Hello(h), Pending::Hello);
                }
                Action::SendNotify => {
                    let n = Notify {
                        log_epoch: self.epoch,
                        head_seq: self.local_head,
                    };
                    self.send(peer, &Request::Notify(n), Pending::Notify);
                }
                Action::SendPull(p) => self.send(peer, &Request::Pull(p), Pending::Pull),
                Action::ResetCursor(c) => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    if let Ok(mut m) = self.sent.lock() {
                        m.remove(&agency);
                    }
                    self.persist_cursor(agency, c);
                }
                Action::StartReconcile => self.start_reconcile(peer),
                Action::BacklogComplete(c) => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    tracing::info!(%agency, seq = c.seq, "backlog below the cursor complete");
                    self.persist_cursor(agency, c);
                }
            }
        }
    }

    /// Remembers and durably stores a peer's cursor.
    fn persist_cursor(&mut self, agency: AgencyCode, c: Cursor) {
        self.cursors.insert(agency.clone(), c);
        let store = self.ctx.store.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = store.call(move |s| s.set_cursor(&agency, Some(c))).await {
                tracing::warn!(error = %e, "cannot persist cursor");
            }
            let _ = tx.send(TaskDone::CursorPersisted);
        });
    }

    // ------------------------------------------------------------------ changes feed

    fn serve_pull(
        &mut self,
        peer: PeerId,
        agency: AgencyCode,
        p: Pull,
        channel: ResponseChannel<Frame>,
    ) {
        let ctx = self.ctx.clone();
        let tx = self.tasks_tx.clone();
        let epoch = self.epoch;
        let budget = usize::try_from(p.max_bytes)
            .unwrap_or(usize::MAX)
            .min(self.cfg.max_batch_bytes)
            .saturating_sub(FRAME_SLACK)
            .max(1024);
        let limit = usize::try_from(p.limit.clamp(1, MAX_PULL_LIMIT)).unwrap_or(1);
        let policy = self.policy();
        let sent = self.sent.clone();
        tokio::spawn(async move {
            let result = if p.log_epoch != epoch {
                // Their cursor belongs to a log we no longer have: restart from 0.
                ctx.store
                    .call(|s| s.head_seq())
                    .await
                    .map(|head| {
                        (
                            Batch {
                                log_epoch: epoch,
                                records: Vec::new(),
                                next_seq: 0,
                                head_seq: head,
                                complete: false,
                            },
                            0,
                            0,
                            0,
                        )
                    })
                    .map_err(|e| e.to_string())
            } else {
                let to = agency.clone();
                let after = p.after_seq;
                async {
                    // The store thread only reads; decoding and preparing happen here.
                    let (head, raws, truncated, audit) = ctx
                        .store
                        .call(move |s| {
                            let head = s.head_seq()?;
                            let mut raws: RawBatch = Vec::new();
                            // Stored copies are at least as large as what is sent, so
                            // reading past twice the budget is wasted store time.
                            let (mut read_bytes, mut truncated) = (0usize, false);
                            for (seq, id) in s.log_after(after, limit)? {
                                if read_bytes > budget.saturating_mul(2) {
                                    truncated = true;
                                    break;
                                }
                                let raw = s.record_raw(&id)?;
                                read_bytes += raw.as_ref().map_or(0, RawRecord::len);
                                raws.push((seq, id, raw));
                            }
                            Ok((head, raws, truncated, s.audit_enabled()))
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    let read = raws.len();
                    let outgoing = Outgoing::pull(to, budget, audit);
                    let out = prepare_and_commit(&ctx, &tx, &sent, policy, outgoing, raws).await?;
                    let complete = !out.cut && !truncated && read < limit;
                    let next = out.last_seq.unwrap_or(after).max(after.min(head));
                    Ok::<_, String>((
                        Batch {
                            log_epoch: epoch,
                            records: out.transfers,
                            next_seq: next,
                            head_seq: head,
                            complete,
                        },
                        out.withheld,
                        out.denied,
                        out.bytes,
                    ))
                }
                .await
            };
            match result {
                Ok((batch, withheld, denied, _)) => {
                    let _ = tx.send(TaskDone::Sent {
                        agency,
                        records: batch.records.len() as u64,
                        withheld_fields: withheld,
                        denied,
                        at_head: Some(batch.complete && batch.next_seq >= batch.head_seq),
                    });
                    let _ = tx.send(TaskDone::Respond {
                        peer,
                        channel,
                        response: Response::Batch(batch),
                    });
                }
                Err(e) => {
                    let _ = tx.send(TaskDone::Respond {
                        peer,
                        channel,
                        response: Response::error("unavailable", e),
                    });
                }
            }
        });
    }

    fn apply_batch(&mut self, peer: PeerId, agency: AgencyCode, b: Batch) {
        // The batch advances the cursor; the backlog mark stays as it is.
        let cursor = Cursor {
            epoch: b.log_epoch,
            seq: b.next_seq,
            backlog_complete: self.peers.get(&peer).is_some_and(|ps| {
                !ps.backlog_pending() && ps.cursor().is_some_and(|c| c.epoch == b.log_epoch)
            }),
        };
        let transfers = b.records.clone();
        let batch_meta = Batch {
            records: Vec::new(),
            ..b
        };
        let ctx = self.ctx.clone();
        let tx = self.tasks_tx.clone();
        let skew = self.cfg.max_clock_skew.0;
        tokio::spawn(async move {
            let outcome = ingest(&ctx, &agency, transfers, Some(cursor), skew).await;
            let _ = tx.send(TaskDone::Applied {
                peer,
                agency,
                batch: Some((batch_meta, cursor)),
                session: None,
                outcome,
            });
        });
    }

    /// The policy or roster was reloaded: admit exactly the new roster's peers, drop
    /// connections it no longer lists, and reconcile with every neighbour so that
    /// records a widened policy now allows flow without waiting.
    fn on_reloaded(&mut self) {
        let roster = self.ctx.roster();
        let allowed: Vec<PeerId> = roster
            .members()
            .flat_map(|m| m.node_ids.iter())
            .filter_map(|p| p.parse::<PeerId>().ok())
            .collect();
        self.swarm.behaviour_mut().gate.set_allowed(allowed);
        self.apply_blocks();
        let gone: Vec<PeerId> = self
            .agencies
            .keys()
            .filter(|p| roster.agency_of_peer(&p.to_base58()).is_none())
            .copied()
            .collect();
        for p in gone {
            tracing::warn!(peer = %p, "peer no longer in the roster: disconnecting");
            let _ = self.swarm.disconnect_peer_id(p);
        }
        let now = Instant::now();
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.request_reconcile(now);
                self.run_actions(p, actions);
            }
        }
    }

    /// Enforces the operator's blocks: the gate refuses the blocked agencies' PeerIds
    /// (as the current roster lists them) both ways, their open connections close, and
    /// nobody dials them.
    fn apply_blocks(&mut self) {
        let roster = self.ctx.roster();
        let ids: Vec<PeerId> = self
            .blocked
            .iter()
            .filter_map(|a| roster.member(a))
            .flat_map(|m| m.node_ids.iter())
            .filter_map(|p| p.parse::<PeerId>().ok())
            .collect();
        self.swarm.behaviour_mut().gate.set_blocked(ids);
        let cut: Vec<PeerId> = self
            .swarm
            .connected_peers()
            .filter(|p| {
                roster
                    .agency_of_peer(&p.to_base58())
                    .is_some_and(|m| self.blocked.contains(&m.agency))
            })
            .copied()
            .collect();
        for p in cut {
            tracing::warn!(peer = %p, "peer blocked by the operator: disconnecting");
            let _ = self.swarm.disconnect_peer_id(p);
        }
        for a in roster.members().map(|m| &m.agency) {
            self.ctx
                .metrics
                .peer_blocked
                .get_or_create(&PeerLabel {
                    peer: a.to_string(),
                })
                .set(i64::from(self.blocked.contains(a)));
        }
        self.refresh_status();
    }

    fn on_local_head(&mut self, head: u64) {
        if head <= self.local_head {
            return;
        }
        self.local_head = head;
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.on_local_change();
                self.run_actions(p, actions);
            }
        }
    }

    // ---------------------------------------------------------------- reconciliation

    fn reconcile_items_task(
        ctx: &NodeContext,
        policy: Arc<Policy>,
        agency: AgencyCode,
    ) -> impl std::future::Future<Output = Result<NegentropyStorageVector, String>> + Send + 'static
    {
        let store = ctx.store.clone();
        async move {
            let items = store
                .call(move |s| {
                    s.reconcile_items(|m| {
                        policy.reconcile_member(
                            DistRef {
                                origin: &m.origin,
                                scope: m.scope,
                                groups: &m.groups,
                            },
                            &agency,
                        )
                    })
                })
                .await
                .map_err(|e| e.to_string())?;
            tokio::task::spawn_blocking(move || {
                reconcile::storage(&items).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        }
    }

    fn start_reconcile(&mut self, peer: PeerId) {
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        let fut = Self::reconcile_items_task(&self.ctx, self.policy(), agency);
        let tx = self.tasks_tx.clone();
        let span = self.peer_span(&peer);
        tokio::spawn(
            async move {
                let result = match fut.await {
                    Ok(storage) => {
                        Initiator::start(storage, random_session()).map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e),
                };
                let _ = tx.send(TaskDone::ReconcileReady { peer, result });
            }
            .instrument(span),
        );
    }

    fn max_need(&self) -> usize {
        (self.cfg.max_batch_bytes / 2048).clamp(1, MAX_NEED)
    }

    fn max_have(&self) -> usize {
        (self.cfg.max_request_bytes / 2048).clamp(1, 2000)
    }

    fn send_step(&mut self, peer: PeerId, step: Step) {
        let Some(session) = self.initiators.get(&peer).map(|i| i.session) else {
            return;
        };
        let _peer_span = self.peer_span(&peer).entered();
        let _round = round_span(&session).entered();
        if step.have.is_empty() {
            let req = Reconcile {
                session,
                message: step.message.map(Bytes::from).unwrap_or_default(),
                have: Vec::new(),
                need: step.need,
            };
            let asked = req.need.len();
            self.send(
                peer,
                &Request::Reconcile(req),
                Pending::Reconcile { session, asked },
            );
            return;
        }
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        let policy = self.policy();
        let sent = self.sent.clone();
        let ctx = self.ctx.clone();
        let tx = self.tasks_tx.clone();
        let budget = self
            .cfg
            .max_request_bytes
            .saturating_sub(FRAME_SLACK + step.need.len() * 40 + 70_000);
        tokio::spawn(async move {
            let ids = step.have.clone();
            let to = agency.clone();
            let res = serve_ids(&ctx, &tx, &sent, policy, ids, |audit| {
                Outgoing::push(to, budget, audit)
            })
            .await
            .map(|out| (out.transfers, out.leftover, out.withheld, out.denied));
            let (transfers, leftover, withheld, denied) = res.unwrap_or_default();
            let _ = tx.send(TaskDone::Sent {
                agency,
                records: transfers.len() as u64,
                withheld_fields: withheld,
                denied,
                at_head: None,
            });
            let _ = tx.send(TaskDone::ReconcileHave {
                peer,
                step,
                transfers,
                leftover,
            });
        });
    }

    fn on_reconcile_reply(
        &mut self,
        peer: PeerId,
        agency: AgencyCode,
        session: [u8; 16],
        asked: usize,
        r: ReconcileReply,
    ) {
        let _round = round_span(&session).entered();
        let now = Instant::now();
        if r.session != session {
            self.protocol_violation(peer, "reconcile_session_mismatch");
            return;
        }
        let label = PeerLabel {
            peer: agency.to_string(),
        };
        self.ctx
            .metrics
            .reconcile_bytes
            .get_or_create(&label)
            .inc_by(
                (r.message.len() + r.records.iter().map(|t| t.record.len()).sum::<usize>()) as u64,
            );
        if let Some(ps) = self.peers.get_mut(&peer) {
            ps.on_session_reply(session, asked, r.records.len());
        }
        if !r.records.is_empty() {
            self.spawn_ingest(peer, agency.clone(), r.records, Some(session));
        }
        let max_have = self.max_have();
        let max_need = self.max_need();
        let Some(init) = self.initiators.get_mut(&peer) else {
            return;
        };
        if let Err(e) = init.on_reply(&r.message) {
            self.initiators.remove(&peer);
            self.protocol_violation(peer, "bad_reconcile_message");
            if let Some(ps) = self.peers.get_mut(&peer) {
                let actions = ps.on_reconcile_done(Err(e.to_string()), now);
                self.run_actions(peer, actions);
            }
            return;
        }
        match init.next_step(max_have, max_need) {
            Some(step) => self.send_step(peer, step),
            None => {
                if let Some(done) = self.initiators.remove(&peer) {
                    self.ctx
                        .metrics
                        .reconcile_rounds
                        .get_or_create(&label)
                        .inc_by(u64::from(done.rounds));
                    tracing::debug!(
                        %agency,
                        rounds = done.rounds,
                        pushed = done.found_have,
                        pulled = done.found_need,
                        "reconciliation finished"
                    );
                }
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_reconcile_done(Ok(()), now);
                    self.run_actions(peer, actions);
                }
            }
        }
    }

    fn serve_reconcile(
        &mut self,
        peer: PeerId,
        agency: AgencyCode,
        r: Reconcile,
        channel: ResponseChannel<Frame>,
    ) {
        let cached = self
            .responders
            .get(&peer)
            .filter(|(s, _, _)| *s == r.session)
            .map(|(_, st, _)| st.clone());
        if let Some(ps) = self.peers.get_mut(&peer) {
            ps.on_reconcile_served(Instant::now());
        }
        let ctx = self.ctx.clone();
        let tx = self.tasks_tx.clone();
        let policy = self.policy();
        let sent = self.sent.clone();
        let skew = self.cfg.max_clock_skew.0;
        let budget = self
            .cfg
            .max_batch_bytes
            .saturating_sub(FRAME_SLACK + 70_000);
        self.ctx
            .metrics
            .reconcile_bytes
            .get_or_create(&PeerLabel {
                peer: agency.to_string(),
            })
            .inc_by(
                (r.message.len() + r.have.iter().map(|t| t.record.len()).sum::<usize>()) as u64,
            );
        tokio::spawn(async move {
            let session = r.session;
            if !r.have.is_empty() {
                let outcome = ingest(&ctx, &agency, r.have, None, skew).await;
                let _ = tx.send(TaskDone::Applied {
                    peer,
                    agency: agency.clone(),
                    batch: None,
                    session: None,
                    outcome,
                });
            }
            let mut message = Bytes::new();
            if !r.message.is_empty() {
                let storage = match cached {
                    Some(s) => Ok(s),
                    None => Self::reconcile_items_task(&ctx, policy.clone(), agency.clone())
                        .await
                        .map(Arc::new),
                };
                let storage = match storage {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(TaskDone::Respond {
                            peer,
                            channel,
                            response: Response::error("unavailable", e),
                        });
                        return;
                    }
                };
                let msg = r.message.clone();
                let st = storage.clone();
                match tokio::task::spawn_blocking(move || reconcile::respond(&st, &msg)).await {
                    Ok(Ok(m)) => message = Bytes::from(m),
                    Ok(Err(e)) => {
                        let _ = tx.send(TaskDone::Respond {
                            peer,
                            channel,
                            response: Response::error("bad_request", e.to_string()),
                        });
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(TaskDone::Respond {
                            peer,
                            channel,
                            response: Response::error("unavailable", e.to_string()),
                        });
                        return;
                    }
                }
                let _ = tx.send(TaskDone::ResponderStorage {
                    peer,
                    session,
                    storage,
                });
            }
            let need: Vec<RecordId> = r.need.into_iter().take(MAX_NEED).collect();
            let to = agency.clone();
            let res = serve_ids(&ctx, &tx, &sent, policy, need, |audit| {
                Outgoing::reconcile(to, budget, audit)
            })
            .await
            .map(|out| (out.transfers, out.withheld, out.denied));
            let (records, withheld, denied) = res.unwrap_or_default();
            let _ = tx.send(TaskDone::Sent {
                agency,
                records: records.len() as u64,
                withheld_fields: withheld,
                denied,
                at_head: None,
            });
            let _ = tx.send(TaskDone::Respond {
                peer,
                channel,
                response: Response::Reconcile(ReconcileReply {
                    session,
                    message,
                    records,
                }),
            });
        });
    }

    fn spawn_ingest(
        &mut self,
        peer: PeerId,
        agency: AgencyCode,
        transfers: Vec<Transfer>,
        session: Option<[u8; 16]>,
    ) {
        let ctx = self.ctx.clone();
        let tx = self.tasks_tx.clone();
        let skew = self.cfg.max_clock_skew.0;
        let span = self.peer_span(&peer);
        tokio::spawn(
            async move {
                let outcome = ingest(&ctx, &agency, transfers, None, skew).await;
                let _ = tx.send(TaskDone::Applied {
                    peer,
                    agency,
                    batch: None,
                    session,
                    outcome,
                });
            }
            .instrument(span),
        );
    }

    // ------------------------------------------------------------------ task results

    fn on_task(&mut self, t: TaskDone) {
        let now = Instant::now();
        match t {
            TaskDone::Respond {
                peer,
                channel,
                response,
            } => self.respond(peer, channel, &response),
            TaskDone::AuditRespond { channel, response } => {
                if let AuditResponse::Cosigned(n) = &response {
                    self.ctx
                        .metrics
                        .audit_cosignatures
                        .set(i64::try_from(*n).unwrap_or(i64::MAX));
                }
                self.audit_respond(channel, &response);
            }
            TaskDone::Applied {
                peer,
                agency,
                batch,
                session,
                outcome,
            } => {
                let label = PeerLabel {
                    peer: agency.to_string(),
                };
                self.ctx
                    .metrics
                    .received
                    .get_or_create(&label)
                    .inc_by(outcome.received);
                let c = self.counters.entry(agency.clone()).or_default();
                c.received += outcome.received;
                c.rejected += outcome.rejected.len() as u64;
                let mut against = 0u32;
                for r in &outcome.rejected {
                    self.ctx.metrics.reject(agency.as_str(), &r.reason.code());
                    if r.reason.counts_against_sender() {
                        against += 1;
                    }
                    tracing::warn!(
                        %agency,
                        record = ?r.record_id.map(|i| i.to_hex()),
                        origin = ?r.origin.as_ref().map(|o| o.to_string()),
                        reason = %r.reason.code(),
                        "record rejected"
                    );
                }
                if !outcome.rejected.is_empty() {
                    self.set_error(
                        &agency,
                        format!(
                            "{} record(s) rejected, last: {}",
                            outcome.rejected.len(),
                            outcome
                                .rejected
                                .last()
                                .map(|r| r.reason.code())
                                .unwrap_or_default()
                        ),
                    );
                }
                self.record_invalid(&agency, against);
                if let Some(s) = session
                    && let Some(ps) = self.peers.get_mut(&peer)
                {
                    let actions = ps.on_session_stored(s, outcome.error.is_none(), now);
                    self.run_actions(peer, actions);
                } else if batch.is_none()
                    && let Some(ps) = self.peers.get_mut(&peer)
                {
                    ps.on_push_stored(now);
                }
                match (batch, outcome.error) {
                    (Some((b, cursor)), None) => {
                        self.cursors.insert(agency.clone(), cursor);
                        if let Some(ps) = self.peers.get_mut(&peer) {
                            let actions =
                                ps.on_batch_applied(b.log_epoch, cursor.seq, b.head_seq, now);
                            let latest = ps.cursor();
                            self.run_actions(peer, actions);
                            // The backlog was settled while this batch was in flight
                            // with the older mark: store the mark again.
                            if let Some(c) = latest
                                && c.epoch == cursor.epoch
                                && c.backlog_complete
                                && !cursor.backlog_complete
                            {
                                self.persist_cursor(agency.clone(), c);
                            }
                        }
                    }
                    (Some(_), Some(e)) => {
                        self.set_error(&agency, e.clone());
                        if let Some(ps) = self.peers.get_mut(&peer) {
                            ps.on_pull_failed(e, now);
                        }
                    }
                    (None, Some(e)) => self.set_error(&agency, e),
                    (None, None) => {}
                }
                tracing::debug!(%agency, stored = outcome.stored, "records applied");
            }
            TaskDone::Sent {
                agency,
                records,
                withheld_fields,
                denied,
                at_head,
            } => {
                if let Some(at_head) = at_head {
                    let peers: Vec<PeerId> = self
                        .peers
                        .iter()
                        .filter(|(_, p)| p.agency == agency)
                        .map(|(id, _)| *id)
                        .collect();
                    for p in peers {
                        if let Some(ps) = self.peers.get_mut(&p) {
                            let actions = ps.on_pull_served(at_head, now);
                            self.run_actions(p, actions);
                        }
                    }
                }
                let label = PeerLabel {
                    peer: agency.to_string(),
                };
                if records > 0 {
                    tracing::debug!(%agency, records, withheld_fields, denied, "records sent");
                }
                self.ctx.metrics.sent.get_or_create(&label).inc_by(records);
                self.ctx
                    .metrics
                    .fields_withheld
                    .get_or_create(&label)
                    .inc_by(withheld_fields);
                self.ctx
                    .metrics
                    .withheld_by_policy
                    .get_or_create(&label)
                    .inc_by(denied);
                self.counters.entry(agency).or_default().sent += records;
            }
            TaskDone::ReconcileReady { peer, result } => match result {
                Ok((init, step)) => {
                    if let Some(ps) = self.peers.get_mut(&peer) {
                        ps.on_reconcile_started(init.session);
                        self.initiators.insert(peer, init);
                        self.send_step(peer, step);
                    }
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "cannot start reconciliation");
                    if let Some(ps) = self.peers.get_mut(&peer) {
                        let actions = ps.on_reconcile_done(Err(e), now);
                        self.run_actions(peer, actions);
                    }
                }
            },
            TaskDone::ReconcileHave {
                peer,
                step,
                transfers,
                leftover,
            } => {
                let Some(init) = self.initiators.get_mut(&peer) else {
                    return;
                };
                init.requeue_have(leftover);
                let session = init.session;
                let req = Reconcile {
                    session,
                    message: step.message.map(Bytes::from).unwrap_or_default(),
                    have: transfers,
                    need: step.need,
                };
                let asked = req.need.len();
                self.send(
                    peer,
                    &Request::Reconcile(req),
                    Pending::Reconcile { session, asked },
                );
            }
            TaskDone::ResponderStorage {
                peer,
                session,
                storage,
            } => {
                if self.agencies.contains_key(&peer) {
                    self.responders.insert(peer, (session, storage, now));
                }
            }
            TaskDone::CursorPersisted => {}
        }
    }

    // ---------------------------------------------------------------------- timers

    fn on_tick(&mut self) {
        let now = Instant::now();
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.on_tick(now);
                self.run_actions(p, actions);
            }
        }
        self.responders
            .retain(|_, (_, _, t)| now.duration_since(*t) < RESPONDER_TTL);
        for i in 0..self.targets.len() {
            let Some(t) = self.targets.get_mut(i) else {
                continue;
            };
            let due = t.next_at.is_some_and(|at| now >= at) && t.dialing == 0;
            if !due || self.bans.is_banned(&t.agency, now) || self.blocked.contains(&t.agency) {
                continue;
            }
            t.next_at = None;
            let addrs = t.addrs.clone();
            for a in addrs {
                let opts = DialOpts::unknown_peer_id().address(a.clone()).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dialing.insert(id, i);
                        if let Some(t) = self.targets.get_mut(i) {
                            t.dialing += 1;
                        }
                    }
                    Err(e) => tracing::debug!(address = %a, error = %e, "dial refused"),
                }
            }
            if let Some(t) = self.targets.get_mut(i)
                && t.dialing == 0
            {
                t.next_at = Some(now + t.backoff.next_delay(jitter()));
            }
        }
        self.refresh_status();
    }

    fn set_error(&mut self, agency: &AgencyCode, e: String) {
        for ps in self.peers.values_mut().filter(|p| p.agency == *agency) {
            ps.last_error = Some(e.clone());
        }
        if let Ok(mut t) = self.ctx.peers.write()
            && let Some(info) = t.get_mut(agency.as_str())
        {
            info.last_error = Some(e);
        }
    }

    fn refresh_status(&mut self) {
        let roster = self.ctx.roster();
        let ours = roster.version();
        let now = Instant::now();
        let wall = Timestamp::now();
        let banned: HashMap<AgencyCode, Instant> = self.bans.active(now).into_iter().collect();
        let mut table = std::collections::BTreeMap::new();
        let neighbours: Vec<AgencyCode> = self
            .ctx
            .config
            .raw
            .peers
            .iter()
            .map(|p| p.agency.get_ref().clone())
            .chain(
                self.agencies
                    .values()
                    .filter(|(_, r)| *r == Role::Member)
                    .map(|(a, _)| a.clone()),
            )
            .collect();
        for agency in neighbours {
            let connected: Vec<(&PeerId, &PeerSync)> = self
                .peers
                .iter()
                .filter(|(_, p)| p.agency == agency)
                .collect();
            let c = self.counters.get(&agency).cloned().unwrap_or_default();
            let ps = connected.first().map(|(_, p)| *p);
            let to_wall =
                |t: Instant| {
                    Timestamp(wall.as_millis().saturating_sub(
                        u64::try_from(now.duration_since(t).as_millis()).unwrap_or(0),
                    ))
                };
            let info = PeerInfo {
                agency: agency.to_string(),
                peer_id: connected
                    .first()
                    .map(|(p, _)| p.to_base58())
                    .or_else(|| {
                        roster
                            .member(&agency)
                            .and_then(|m| m.node_ids.first().cloned())
                    })
                    .unwrap_or_default(),
                connected: !connected.is_empty(),
                lag: ps.and_then(|p| p.lag()),
                backlog_pending: self
                    .cursors
                    .get(&agency)
                    .is_some_and(|c| !c.backlog_complete),
                last_sync: ps.and_then(|p| p.last_sync).map(to_wall),
                records_received: c.received,
                records_sent: c.sent,
                records_rejected: c.rejected,
                roster_version: ps.and_then(|p| p.roster_version),
                our_roster_outdated: ps.and_then(|p| p.roster_version).is_some_and(|v| v > ours),
                blocked: self.blocked.contains(&agency),
                banned_until: banned.get(&agency).map(|u| {
                    Timestamp(
                        wall.as_millis()
                            + u64::try_from(u.duration_since(now).as_millis()).unwrap_or(0),
                    )
                }),
                last_error: ps.and_then(|p| p.last_error.clone()).or_else(|| {
                    self.ctx
                        .peers
                        .read()
                        .ok()
                        .and_then(|t| t.get(agency.as_str()).and_then(|i| i.last_error.clone()))
                }),
            };
            self.ctx
                .metrics
                .sync_backlog_pending
                .get_or_create(&PeerLabel {
                    peer: agency.to_string(),
                })
                .set(i64::from(info.backlog_pending));
            if let Some(lag) = info.lag {
                self.ctx
                    .metrics
                    .sync_lag
                    .get_or_create(&PeerLabel {
                        peer: agency.to_string(),
                    })
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            table.insert(agency.to_string(), info);
        }
        if let Ok(mut t) = self.ctx.peers.write() {
            *t = table;
        }
    }
}

/// Checks and stores records from `agency`, with an optional cursor to persist.
async fn ingest(
    ctx: &NodeContext,
    agency: &AgencyCode,
    transfers: Vec<Transfer>,
    cursor: Option<Cursor>,
    skew: Duration,
) -> IngestOutcome {
    let received = transfers.len() as u64;
    let policy = ctx.policy();
    let from = agency.clone();
    let checked = match tokio::task::spawn_blocking(move || {
        check(&policy, &from, transfers, Timestamp::now(), skew)
    })
    .await
    {
        Ok(c) => c,
        Err(e) => {
            return IngestOutcome {
                received,
                error: Some(format!("verification task failed: {e}")),
                ..Default::default()
            };
        }
    };
    let at = Timestamp::now().as_millis();
    let audit: Vec<AuditEvent> = checked
        .rejected
        .iter()
        .map(|r| {
            AuditEvent::new(
                at,
                EventKind::Rejected {
                    record_id: r.record_id,
                    from: agency.clone(),
                    reason: r.reason.code(),
                },
            )
        })
        .collect();
    let mut outcome = IngestOutcome {
        received,
        rejected: checked.rejected,
        ..Default::default()
    };
    if checked.accepted.is_empty() && cursor.is_none() && checked.declined.is_empty() {
        if !audit.is_empty()
            && let Err(e) = ctx.store.call(move |s| s.audit_append(&audit)).await
        {
            ctx.write_failed(&e);
        }
        return outcome;
    }
    let batch = IngestBatch {
        items: checked.accepted,
        cursor: cursor.map(|c| (agency.clone(), c)),
        declined: checked.declined,
        audit,
    };
    match ctx.store.ingest(batch).await {
        Ok(report) => {
            outcome.stored = report
                .outcomes
                .iter()
                .filter(|o| !matches!(o, crate::store::Outcome::Duplicate))
                .count() as u64;
            ctx.after_ingest(&report, "peer");
        }
        Err(e) => {
            ctx.write_failed(&e);
            outcome.error = Some(match e {
                StoreError::Closed => "store closed".into(),
                other => other.to_string(),
            });
        }
    }
    outcome
}

/// The audit event for a copy of `rec` that passed the choke point for `to`.
fn sent_event(
    rec: &crate::wire::StoredRecord,
    to: &AgencyCode,
    prep: &crate::policy::Prepared,
) -> AuditEvent {
    let r = &rec.record;
    let fields = &r.header().fields;
    AuditEvent::new(
        Timestamp::now().as_millis(),
        EventKind::Sent {
            record_id: r.id(),
            to: to.clone(),
            hops: prep.hops,
            withheld: prep
                .withheld_indices
                .iter()
                .map(|i| {
                    usize::try_from(*i)
                        .ok()
                        .and_then(|i| fields.get(i))
                        .map_or("unknown", |f| f.tag.as_str())
                        .to_owned()
                })
                .collect(),
            // The signed header travels beside the event (export, GetEvents): the
            // record id already commits to it.
            header: None,
            signature: None,
        },
    )
}

/// How stored records are chosen for one response to a peer: a Pull batch, or the
/// records a Reconcile exchange found the peer lacking.
struct Outgoing {
    /// The peer.
    to: AgencyCode,
    /// Bytes of encoded records the response may carry.
    budget: usize,
    /// The first record goes even over `budget`, so that a Pull always advances.
    first_over_budget: bool,
    /// The peer said it lacks these (Reconcile): send even if recently sent.
    lacking: bool,
    /// Skip records that the peer itself sent us (Pull: it has them).
    skip_theirs: bool,
    /// Once the budget is reached, set the remaining ids aside for a later request
    /// instead of stopping (our own Reconcile request pushing records).
    defer_over_budget: bool,
    /// Collect `sent` audit events.
    audit: bool,
}

/// Records prepared for a peer, with their audit events (not yet appended).
#[derive(Default)]
struct Outbound {
    /// The peer.
    to: Option<AgencyCode>,
    transfers: Vec<Transfer>,
    /// The sent-cache entries (id, disclosures) of `transfers`.
    cached: Vec<(RecordId, usize)>,
    events: Vec<AuditEvent>,
    bytes: usize,
    withheld: u64,
    denied: u64,
    /// The last log position consumed (Pull), if any.
    last_seq: Option<u64>,
    /// Stopped at the byte budget before the end of the input.
    cut: bool,
    /// Ids set aside at the budget (`defer_over_budget`).
    leftover: Vec<RecordId>,
}

impl Outgoing {
    fn pull(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: true,
            lacking: false,
            skip_theirs: true,
            defer_over_budget: false,
            audit,
        }
    }

    fn reconcile(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: false,
            lacking: true,
            skip_theirs: false,
            defer_over_budget: false,
            audit,
        }
    }

    fn push(to: AgencyCode, budget: usize, audit: bool) -> Self {
        Self {
            to,
            budget,
            first_over_budget: false,
            lacking: true,
            skip_theirs: false,
            defer_over_budget: true,
            audit,
        }
    }

    /// Decodes `raws` (log position, id, stored bytes as read on the store thread)
    /// and prepares each for the peer through the policy, in order, until the budget.
    /// This is the CPU-heavy part of serving a peer (decoding re-checks every
    /// digest, preparing re-encodes), kept off the store thread so that serving
    /// peers does not hold up ingest.
    fn prepare(
        &self,
        policy: &Policy,
        sent: &std::sync::Mutex<HashMap<AgencyCode, SentCache>>,
        raws: RawBatch,
    ) -> Result<Outbound, StoreError> {
        let mut out = Outbound {
            to: Some(self.to.clone()),
            ..Outbound::default()
        };
        for (seq, id, raw) in raws {
            if self.defer_over_budget && out.bytes >= self.budget {
                out.leftover.push(id);
                continue;
            }
            let Some(raw) = raw else {
                out.last_seq = Some(seq);
                continue;
            };
            let rec = raw.decode()?;
            if self.skip_theirs && rec.received_from.as_ref() == Some(&self.to) {
                out.last_seq = Some(seq);
                continue;
            }
            match prepare_once(policy, sent, &rec, &self.to, self.lacking) {
                Ok(p) => {
                    let copy = (
                        rec.record.id(),
                        rec.record.disclosures().len().saturating_sub(p.withheld),
                    );
                    let first = out.transfers.is_empty() && self.first_over_budget;
                    if !self.defer_over_budget && out.bytes + p.bytes.len() > self.budget && !first
                    {
                        // Not sent after all: a later response must not skip it.
                        forget_sent(sent, &self.to, &[copy]);
                        out.cut = true;
                        break;
                    }
                    out.cached.push(copy);
                    out.bytes += p.bytes.len();
                    out.withheld += p.withheld as u64;
                    if self.audit {
                        out.events.push(sent_event(&rec, &self.to, &p));
                    }
                    out.transfers.push(Transfer {
                        record: p.bytes,
                        hops: p.hops,
                    });
                }
                Err(crate::policy::Deny::RecentlySent) => {}
                Err(_) => out.denied += 1,
            }
            out.last_seq = Some(seq);
        }
        Ok(out)
    }
}

/// Raw stored records to send: (log position, id, bytes if held).
type RawBatch = Vec<(u64, RecordId, Option<RawRecord>)>;

/// Serves the records `ids` to a peer: one store job reads them raw (the store
/// thread only reads), then [`prepare_and_commit`]. `outgoing` gets whether the
/// audit log is on.
async fn serve_ids(
    ctx: &NodeContext,
    tx: &mpsc::UnboundedSender<TaskDone>,
    sent: &Arc<std::sync::Mutex<HashMap<AgencyCode, SentCache>>>,
    policy: Arc<Policy>,
    ids: Vec<RecordId>,
    outgoing: impl FnOnce(bool) -> Outgoing,
) -> Result<Outbound, String> {
    let (raws, audit) = ctx
        .store
        .call(move |s| {
            let mut raws: RawBatch = Vec::with_capacity(ids.len());
            for id in ids {
                let raw = s.record_raw(&id)?;
                raws.push((0, id, raw));
            }
            Ok((raws, s.audit_enabled()))
        })
        .await
        .map_err(|e| e.to_string())?;
    prepare_and_commit(ctx, tx, sent, policy, outgoing(audit), raws).await
}

/// Decodes and prepares `raws` on a blocking thread ([`Outgoing::prepare`]), then
/// appends their `sent` events ([`commit_outbound`]): what every response carrying
/// records does after reading them.
async fn prepare_and_commit(
    ctx: &NodeContext,
    tx: &mpsc::UnboundedSender<TaskDone>,
    sent: &Arc<std::sync::Mutex<HashMap<AgencyCode, SentCache>>>,
    policy: Arc<Policy>,
    outgoing: Outgoing,
    raws: RawBatch,
) -> Result<Outbound, String> {
    let cache = sent.clone();
    let mut out = tokio::task::spawn_blocking(move || outgoing.prepare(&policy, &cache, raws))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    commit_outbound(ctx, tx, sent, &mut out).await?;
    Ok(out)
}

/// Appends the `sent` events of a prepared response, before it goes out. A response
/// that cannot go out (the event loop has stopped, or the append failed) is not
/// audited as sent, and its copies leave the sent-cache so that a later response
/// sends them.
async fn commit_outbound(
    ctx: &NodeContext,
    tx: &mpsc::UnboundedSender<TaskDone>,
    sent: &std::sync::Mutex<HashMap<AgencyCode, SentCache>>,
    out: &mut Outbound,
) -> Result<(), String> {
    let events = std::mem::take(&mut out.events);
    let result = if tx.is_closed() {
        Err("the node is stopping".to_owned())
    } else if events.is_empty() {
        Ok(())
    } else {
        ctx.store
            .call(move |s| s.audit_append(&events))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    if result.is_err()
        && let Some(to) = &out.to
    {
        forget_sent(sent, to, &out.cached);
    }
    result
}

/// Removes copies that were not sent after all from `to`'s sent-cache.
fn forget_sent(
    sent: &std::sync::Mutex<HashMap<AgencyCode, SentCache>>,
    to: &AgencyCode,
    copies: &[(RecordId, usize)],
) {
    if let Ok(mut m) = sent.lock()
        && let Some(c) = m.get_mut(to)
    {
        for (id, disclosed) in copies {
            c.forget(*id, *disclosed);
        }
    }
}

/// The choke point plus the per-peer "recently sent" cache: `None` when this copy
/// already went to `to` within the cache's TTL. With `lacking` (reconciliation has
/// just shown that `to` does not hold the record, e.g. because its store failed to
/// write what we sent) the copy goes out regardless, and is remembered.
fn prepare_once(
    policy: &Policy,
    sent: &std::sync::Mutex<HashMap<AgencyCode, SentCache>>,
    rec: &crate::wire::StoredRecord,
    to: &AgencyCode,
    lacking: bool,
) -> Result<crate::policy::Prepared, crate::policy::Deny> {
    let prep = policy.prepare(rec, to)?;
    let disclosed = rec.record.disclosures().len().saturating_sub(prep.withheld);
    let dup = match sent.lock() {
        Ok(mut m) => m
            .entry(to.clone())
            .or_insert_with(|| SentCache::new(SENT_TTL, SENT_CAP))
            .check_and_insert(rec.record.id(), disclosed, Instant::now()),
        Err(_) => false,
    };
    if dup && !lacking {
        Err(crate::policy::Deny::RecentlySent)
    } else {
        Ok(prep)
    }
}

/// Answers an auditor's request on the store thread.
fn serve_audit(
    s: &crate::store::Store,
    peer: PeerId,
    req: AuditRequest,
) -> Result<AuditResponse, StoreError> {
    Ok(match req {
        AuditRequest::GetCheckpoint => {
            // Sign a fresh checkpoint if the log grew, so the auditor sees all of it.
            s.audit_checkpoint(Timestamp::now().as_millis(), true)?;
            AuditResponse::Checkpoint(s.audit_latest_checkpoint()?)
        }
        AuditRequest::GetConsistencyProof { old_size, new_size } => {
            if old_size > new_size || new_size > s.audit_size()? {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("sizes {old_size}..{new_size} are not within the log"),
                ));
            }
            AuditResponse::Proof(s.audit_consistency_proof(old_size, new_size)?)
        }
        AuditRequest::GetEvents {
            start,
            count,
            tree_size,
        } => {
            if tree_size > s.audit_size()? || start >= tree_size {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("events from {start} in a tree of {tree_size} are not within the log"),
                ));
            }
            let count = u64::from(count.clamp(1, audit_wire::MAX_EVENTS_PER_REQUEST));
            let end = start.saturating_add(count).min(tree_size);
            let mut out = Vec::new();
            let mut bytes = 0usize;
            // Each record's signed header goes once per reply, with its first `sent`.
            let mut seen = std::collections::HashSet::new();
            for (i, event) in (start..end).zip(s.audit_events(start, end)?) {
                let proof = s.audit_inclusion_proof(i, tree_size)?;
                let header = s
                    .sent_header_for(&event, &mut seen)?
                    .map(|(_, h, sig)| (h, sig));
                bytes += event.len()
                    + 34 * proof.len()
                    + header.as_ref().map_or(0, |(h, _)| h.len() + 68)
                    + 8;
                if bytes > super::codec::AUDIT_EVENTS_BUDGET && !out.is_empty() {
                    break;
                }
                out.push(ProvenEvent {
                    event,
                    proof,
                    header,
                });
            }
            AuditResponse::Events(out)
        }
        AuditRequest::Cosign {
            checkpoint,
            signature,
        } => {
            let size = checkpoint.checkpoint.size;
            if s.audit_checkpoint_at(size)?.as_ref() != Some(&checkpoint) {
                return Ok(AuditResponse::error(
                    "bad_request",
                    format!("the checkpoint of size {size} is not one of ours"),
                ));
            }
            let cosig = Cosignature {
                checkpoint,
                witness: peer.to_base58(),
                signature: hex::encode(signature),
            };
            if let Err(e) = cosig.verify() {
                return Ok(AuditResponse::error("bad_request", e.to_string()));
            }
            AuditResponse::Cosigned(s.audit_add_cosignature(&cosig)?)
        }
    })
}
