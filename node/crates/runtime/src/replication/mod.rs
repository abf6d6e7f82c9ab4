//! The replication service: the layer between the transport (`wlnode_net`) and the
//! sans-IO protocol (`wlnode_sync`). It owns the per-peer state machines
//! ([`PeerSync`], the initiator sessions, the [`Responder`]), turns network events into
//! their inputs, and turns their actions into store jobs, blocking-pool work and
//! network commands. Results come back to its loop as [`Done`] messages, so the loop
//! itself never blocks.
//!
//! - [`peers`]: connections, dialing with backoff, blocks, bans, reloads, the status
//!   table;
//! - [`inbound`]: requests from peers (sync and audit);
//! - [`outbound`]: our requests, their answers, the initiator's sessions;
//! - [`serve`]: carrying out the responder's actions;
//! - [`ingest`]: checking and storing what peers sent;
//! - [`mail`]: sealed agency-to-agency mail over `/wlnode/mail/5`.

mod hold;
mod inbound;
mod ingest;
pub(crate) mod mail;
mod outbound;
mod peers;
mod serve;
mod sets;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use multiaddr::Multiaddr;
use tokio::sync::{mpsc, watch};
use wlnode_audit::event::{Event as AuditEvent, EventKind};
use wlnode_config::{LISTEN_ADDRS_FILE, SyncConfig};
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::{Role, Roster};
use wlnode_crypto::time::Timestamp;
use wlnode_net::{FrameLimits, InboundId, NetConfig, NetEvent, NetHandle, PeerRef, Protocol};
use wlnode_store::StoreHandle;
use wlnode_sync::msg::{Request, Response};
use wlnode_sync::reconcile::Initiator;
use wlnode_sync::responder::Limits;
use wlnode_sync::wire::{encode_request, encode_response};
use wlnode_sync::{Bans, Dialer, PeerSync, Responder};
use wlnode_types::Cursor;

use crate::handles::{Ingested, PeerTable};
use crate::metrics::{Metrics, PeerLabel, PeerReason};
use crate::node::{NodeError, Services, write_file};
use crate::trust::TrustCell;

/// Frame limits of the audit protocol: requests are small, answers carry up to
/// `wlnode_audit::serve::EVENTS_BUDGET` of events and proofs.
pub const AUDIT_LIMITS: FrameLimits = FrameLimits {
    max_request: 64 * 1024,
    max_response: 8 * 1024 * 1024,
};

/// Frame limits of the mail protocol: one sealed message (or receipt) per request, a
/// short answer.
pub const MAIL_LIMITS: FrameLimits = FrameLimits {
    max_request: wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
    max_response: 1024,
};

/// A member's refused audit requests go into the audit log at most this often (the
/// metric counts every one).
pub const AUDIT_REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// How often the service checks whether a hold on local writes can end.
pub const HOLD_CHECK_EVERY: Duration = Duration::from_secs(10);

/// The `peer` label of refused connections from nodes outside the roster.
pub const UNKNOWN_PEER: &str = "not_in_roster";

/// What the service's loop is waiting on for one of our requests.
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

/// Where a response goes: the peer (for accounting) and the request it answers.
type Reply = (PeerRef, InboundId);

/// Results of spawned work, fed back into the loop.
enum Done {
    /// Records a peer sent were checked and stored.
    Applied(ingest::Applied),
    /// A step of the responder finished.
    Serve(serve::ServeDone),
    /// Our reconciliation set is built (or not), and the session's first step.
    ReconcileReady {
        peer: PeerRef,
        result: Result<(Initiator, wlnode_sync::reconcile::Step), String>,
    },
    /// An audit request was answered.
    AuditRespond {
        reply: Reply,
        response: wlnode_audit::wire::AuditResponse,
    },
    /// Local writes are held until these agencies have reconciled with us (none: no
    /// hold, or it just ended).
    HoldWaiting(Vec<AgencyCode>),
}

#[allow(clippy::large_enum_variant)] // one event at a time, never stored
enum Wake {
    Net(NetEvent),
    Task(Done),
    Mail(crate::mail::MailCmd),
    Head(u64),
    Reloaded,
    Blocked,
    Tick,
    Shutdown,
}

#[derive(Default, Clone)]
struct Counters {
    received: u64,
    sent: u64,
    rejected: u64,
}

/// The running service's tasks and the addresses the network listens on.
pub(crate) struct Started {
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
    pub(crate) listen_addrs: Vec<Multiaddr>,
}

/// The roster's node PeerIds (the ones the gate admits).
fn roster_peers(roster: &Roster) -> Vec<PeerRef> {
    roster
        .members()
        .flat_map(|m| m.node_ids.iter())
        .filter_map(|p| PeerRef::parse(p).ok())
        .collect()
}

/// The node PeerIds of `agencies` in `roster`.
fn peers_of<'a>(
    roster: &Roster,
    agencies: impl IntoIterator<Item = &'a AgencyCode>,
) -> Vec<PeerRef> {
    agencies
        .into_iter()
        .filter_map(|a| roster.member(a))
        .flat_map(|m| m.node_ids.iter())
        .filter_map(|p| PeerRef::parse(p).ok())
        .collect()
}

/// Starts the network and the replication service over it.
pub(crate) async fn start(
    services: &Services,
    node_key: &SecretKey,
    shutdown: &watch::Sender<bool>,
    mail_port: crate::mail::MailPort,
    mail_keys: mail::MailKeys,
) -> Result<Started, NodeError> {
    let cfg = services.config.raw.sync.clone();
    let roster = services.trust.roster();
    let mut blocked_rx = services.control.blocked();
    let blocked = blocked_rx.borrow_and_update().clone();
    let network = wlnode_net::start(
        NetConfig {
            key: node_key,
            listen: services
                .config
                .raw
                .listen
                .iter()
                .map(|a| a.0.clone())
                .collect(),
            sync: FrameLimits {
                max_request: cfg.max_request_bytes,
                max_response: cfg.max_batch_bytes,
            },
            audit: AUDIT_LIMITS,
            mail: MAIL_LIMITS,
            allowed: roster_peers(&roster),
            blocked: peers_of(&roster, &blocked),
            agent: format!("wlnode/{}", env!("CARGO_PKG_VERSION")),
        },
        shutdown.subscribe(),
    )
    .await?;
    // Operators and `wlnode demo` read the bound libp2p addresses from here when the
    // config listens on port 0.
    let addr_file = services.config.raw.data_dir.join(LISTEN_ADDRS_FILE);
    write_file(addr_file.clone(), addrs_text(&network.listen_addrs))?;
    let agencies: Vec<AgencyCode> = roster.members().map(|m| m.agency.clone()).collect();
    let cursors = services
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
    let writes_held = services
        .store
        .call(|s| s.local_writes_held())
        .await?
        .is_some();
    let dialer = Dialer::new(
        services
            .config
            .raw
            .peers
            .iter()
            .filter(|p| !p.addrs.is_empty())
            .map(|p| {
                (
                    p.agency.get_ref().clone(),
                    p.addrs.iter().map(|a| a.0.clone()).collect(),
                )
            }),
        cfg.reconnect_min.0,
        cfg.reconnect_max.0,
        Instant::now(),
    );
    let (tasks_tx, tasks_rx) = mpsc::unbounded_channel();
    let head_rx = services.ingested.subscribe();
    let local_head = *head_rx.borrow();
    let epoch = services.store.epoch();
    let mailer = mail::load_mailer(
        &services.store,
        wlnode_sync::mail::Mailer::new(
            services.info.agency.clone(),
            wlnode_sync::mail::MailLimits {
                // One source for the stream limit (s37 final review L1).
                full_streams_batch: wlnode_net::MAX_STREAMS,
                ..wlnode_sync::mail::MailLimits::default()
            },
        ),
    )
    .await?;
    // When this node first accepted the roster in force, from the anchor (review
    // s32-mail L6: the revocation grace no longer restarts at every restart).
    let roster_seen = services
        .store
        .call(|s| s.roster_adopted())
        .await
        .ok()
        .flatten();
    let (mail_writer, mail_task) = mail::spawn_writer(
        services.store.clone(),
        network.handle.clone(),
        mail_port.notices.clone(),
        services.metrics.clone(),
    );
    let service = Service {
        mail: mail::MailState {
            mailer,
            rx: mail_port.rx,
            keys: mail_keys,
            writer: mail_writer,
            pending: HashMap::new(),
            connected: BTreeSet::new(),
            refusals_logged: HashMap::new(),
            refusals_evidenced: mail::EvidenceSlots::default(),
            refusals_evidenced_per_peer: HashMap::new(),
            roster_seen,
            offers_logged: mail::EvidenceSlots::default(),
            offers_logged_per_peer: HashMap::new(),
            failures: mail::HandFailures::default(),
        },
        me: network.handle.local_peer(),
        net: network.handle,
        events: network.events,
        agency: services.info.agency.clone(),
        bans: Bans::new(cfg.ban_threshold, cfg.ban_window.0, cfg.ban_duration.0),
        sets: Arc::default(),
        responder: Responder::new(
            epoch,
            Limits {
                max_batch_bytes: cfg.max_batch_bytes,
                max_request_bytes: cfg.max_request_bytes,
            },
        ),
        cfg,
        epoch,
        store: services.store.clone(),
        trust: services.trust.clone(),
        ingested: services.ingested.clone(),
        metrics: services.metrics.clone(),
        table: services.peers.clone(),
        node_events: services.events.clone(),
        tasks_tx,
        tasks_rx,
        head_rx,
        changes_rx: services.control.changes(),
        blocked_rx,
        blocked,
        shutdown: shutdown.subscribe(),
        local_head,
        peers: HashMap::new(),
        agencies: HashMap::new(),
        pending: HashMap::new(),
        next_token: 0,
        initiators: HashMap::new(),
        audit_refusals_logged: HashMap::new(),
        session_started: HashMap::new(),
        reconciled: HashMap::new(),
        writes_held,
        hold_checked: Instant::now(),
        cursors,
        configured: services
            .config
            .raw
            .peers
            .iter()
            .map(|p| p.agency.get_ref().clone())
            .collect(),
        dialer,
        counters: HashMap::new(),
        listen_addrs: network.listen_addrs.clone(),
        addr_file,
    };
    let task = tokio::spawn(service.run());
    Ok(Started {
        tasks: vec![task, network.task, mail_task],
        listen_addrs: network.listen_addrs,
    })
}

fn addrs_text(addrs: &[Multiaddr]) -> String {
    addrs.iter().map(|a| format!("{a}\n")).collect()
}

/// The span of one reconciliation round with a peer (first bytes of its session id).
fn round_span(session: &[u8; 16]) -> tracing::Span {
    let round = hex::encode(session.get(..4).unwrap_or_default());
    tracing::info_span!("sync_round", %round)
}

fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / f64::from(u32::MAX))
}

/// The replication service; see the module documentation.
struct Service {
    /// Sealed mail (see `mail`).
    mail: mail::MailState,
    net: NetHandle,
    events: mpsc::Receiver<NetEvent>,
    me: PeerRef,
    agency: AgencyCode,
    cfg: SyncConfig,
    epoch: [u8; 16],
    store: StoreHandle,
    trust: TrustCell,
    ingested: Ingested,
    metrics: Arc<Metrics>,
    table: PeerTable,
    /// Where `peer_down` is announced.
    node_events: crate::events::Events,
    tasks_tx: mpsc::UnboundedSender<Done>,
    tasks_rx: mpsc::UnboundedReceiver<Done>,
    head_rx: watch::Receiver<u64>,
    changes_rx: watch::Receiver<u64>,
    blocked_rx: watch::Receiver<BTreeSet<AgencyCode>>,
    /// Agencies the operator blocked (enforced by the network's gate).
    blocked: BTreeSet<AgencyCode>,
    shutdown: watch::Receiver<bool>,
    local_head: u64,
    peers: HashMap<PeerRef, PeerSync>,
    agencies: HashMap<PeerRef, (AgencyCode, Role)>,
    pending: HashMap<u64, (PeerRef, Pending)>,
    next_token: u64,
    initiators: HashMap<PeerRef, Initiator>,
    responder: Responder<PeerRef, Reply>,
    /// Reconciliation sets kept per agency (see `sets`).
    sets: Arc<sets::SetCache>,
    cursors: HashMap<AgencyCode, Cursor>,
    /// Every `[[peers]]` agency (shown in the status table even when not connected).
    configured: Vec<AgencyCode>,
    dialer: Dialer<Multiaddr>,
    bans: Bans,
    counters: HashMap<AgencyCode, Counters>,
    listen_addrs: Vec<Multiaddr>,
    addr_file: PathBuf,
    /// When each agency's last refused audit request was written to the audit log
    /// (at most one a minute each; bounded by the roster).
    audit_refusals_logged: HashMap<String, Instant>,
    /// Start (ms) of our own session with each peer, while it runs.
    session_started: HashMap<PeerRef, u64>,
    /// Start (ms) of the last completed own session with each agency.
    reconciled: HashMap<AgencyCode, u64>,
    /// Local writes were held when the service started (every new connection then
    /// reconciles at once; see `hold`).
    writes_held: bool,
    /// When the hold on local writes was last checked.
    hold_checked: Instant,
}

impl Service {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Before any connection is handled, so no blocked peer gets in at start.
        self.apply_blocks();
        // A hold with no peer to wait for ends at once.
        if self.writes_held {
            self.check_hold();
        }
        loop {
            let wake = tokio::select! {
                // The network stopped (shutdown, or its task died): so do we.
                ev = self.events.recv() => ev.map_or(Wake::Shutdown, Wake::Net),
                Some(t) = self.tasks_rx.recv() => Wake::Task(t),
                Some(c) = self.mail.rx.recv() => Wake::Mail(c),
                Ok(()) = self.head_rx.changed() => Wake::Head(*self.head_rx.borrow_and_update()),
                Ok(()) = self.changes_rx.changed() => Wake::Reloaded,
                Ok(()) = self.blocked_rx.changed() => Wake::Blocked,
                _ = tick.tick() => Wake::Tick,
                _ = self.shutdown.changed() => Wake::Shutdown,
            };
            match wake {
                Wake::Net(ev) => self.on_net(ev),
                Wake::Task(t) => self.on_task(t),
                Wake::Mail(c) => self.on_mail_cmd(c),
                Wake::Head(h) => self.on_local_head(h),
                Wake::Reloaded => self.on_reloaded(),
                Wake::Blocked => self.on_blocked(),
                Wake::Tick => {
                    self.on_tick();
                    self.mail_poll();
                }
                Wake::Shutdown => break,
            }
        }
        tracing::info!("replication stopped");
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Listening(a) => {
                if !self.listen_addrs.contains(&a) {
                    self.listen_addrs.push(a);
                    if let Err(e) =
                        write_file(self.addr_file.clone(), addrs_text(&self.listen_addrs))
                    {
                        tracing::warn!(error = %e, "cannot write listen addresses");
                    }
                }
            }
            NetEvent::Connected {
                peer,
                established,
                dial,
            } => self.on_connected(peer, established, dial),
            NetEvent::Disconnected { peer, cause } => self.on_disconnected(peer, cause),
            NetEvent::DialFailed { dial, error } => self.on_dial_failed(dial, error),
            NetEvent::Refused { peer, code } => {
                // Labelled by agency: anyone who can reach the port can make fresh
                // PeerIds, and a series per PeerId would grow without bound. Nodes
                // outside the roster share one label (the log names the PeerId).
                let label = self
                    .trust
                    .roster()
                    .agency_of_peer(&peer)
                    .map_or_else(|| UNKNOWN_PEER.to_owned(), |m| m.agency.to_string());
                self.metrics
                    .connections_refused
                    .get_or_create(&PeerReason {
                        peer: label,
                        reason: code.to_owned(),
                    })
                    .inc();
            }
            NetEvent::Request {
                peer,
                protocol: Protocol::Sync,
                id,
                frame,
            } => self.on_sync_request(peer, id, frame),
            NetEvent::Request {
                peer,
                protocol: Protocol::Audit,
                id,
                frame,
            } => self.on_audit_request(peer, id, frame),
            NetEvent::Request {
                peer,
                protocol: Protocol::Mail,
                id,
                frame,
            } => self.on_mail_request(peer, id, frame),
            NetEvent::Response { token, frame, .. } if self.is_mail_token(token) => {
                self.on_mail_response(token, frame);
            }
            NetEvent::RequestFailed { token, failure, .. } if self.is_mail_token(token) => {
                self.on_mail_failed(token, failure);
            }
            NetEvent::Response { peer, token, frame } => self.on_response(peer, token, frame),
            NetEvent::RequestFailed {
                peer, token, error, ..
            } => {
                let Some((_, pending)) = self.pending.remove(&token) else {
                    return;
                };
                tracing::debug!(%peer, error = %error, "sync request failed");
                self.request_failed(peer, pending, error);
            }
            NetEvent::InboundFailed {
                peer,
                protocol,
                violation,
            } => {
                if violation && matches!(protocol, Protocol::Sync | Protocol::Mail) {
                    self.protocol_violation(peer, "bad_frame");
                }
            }
        }
    }

    fn on_task(&mut self, t: Done) {
        match t {
            Done::Applied(a) => self.on_applied(a),
            Done::Serve(d) => self.on_serve_done(d),
            Done::ReconcileReady { peer, result } => self.on_reconcile_ready(peer, result),
            Done::AuditRespond { reply, response } => {
                if let wlnode_audit::wire::AuditResponse::Cosigned(n) = &response {
                    self.metrics
                        .audit_cosignatures
                        .set(i64::try_from(*n).unwrap_or(i64::MAX));
                }
                self.audit_respond(reply, &response);
            }
            Done::HoldWaiting(w) => self.on_hold_waiting(&w),
        }
    }

    /// The tracing span every log line about `peer` runs in, so logs can be filtered
    /// per neighbour (`agency` and `peer` fields, also in JSON logs).
    fn peer_span(&self, peer: &PeerRef) -> tracing::Span {
        let agency = self
            .agency_of(peer)
            .map(|(a, _)| a.to_string())
            .unwrap_or_else(|| "?".into());
        tracing::info_span!("peer", %agency, %peer)
    }

    fn agency_of(&self, peer: &PeerRef) -> Option<(AgencyCode, Role)> {
        if let Some(a) = self.agencies.get(peer) {
            return Some(a.clone());
        }
        let roster = self.trust.roster();
        roster
            .agency_of_peer(&peer.to_base58())
            .map(|m| (m.agency.clone(), m.role))
    }

    fn count_bytes(&self, peer: &PeerRef, n: usize) {
        if let Some((agency, _)) = self.agencies.get(peer) {
            self.metrics
                .sync_bytes
                .get_or_create(&PeerLabel {
                    peer: agency.to_string(),
                })
                .inc_by(n as u64);
        }
    }

    /// Answers a sync request.
    fn respond(&mut self, reply: Reply, response: &Response) {
        let encoded = Bytes::from(encode_response(response));
        self.count_bytes(&reply.0, encoded.len());
        self.net.respond(reply.1, encoded);
    }

    /// Sends one of our sync requests.
    fn send(&mut self, peer: PeerRef, request: &Request, pending: Pending) {
        let bytes = Bytes::from(encode_request(request));
        self.count_bytes(&peer, bytes.len());
        self.next_token += 1;
        let token = self.next_token;
        self.net.request(peer, token, bytes);
        self.pending.insert(token, (peer, pending));
    }

    fn protocol_violation(&mut self, peer: PeerRef, reason: &str) {
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        self.metrics.reject(agency.as_str(), reason);
        self.set_error(&agency, format!("protocol violation: {reason}"));
        self.record_invalid(&agency, 1);
    }

    /// Counts `n` invalid items from `agency`; at the threshold it is banned: audited,
    /// counted, refused at the gate and disconnected.
    fn record_invalid(&mut self, agency: &AgencyCode, n: u32) {
        let Some(until) = self.bans.record(agency, n, Instant::now()) else {
            return;
        };
        tracing::warn!(%agency, ban_seconds = self.cfg.ban_duration.0.as_secs(), "peer banned: too many invalid records or frames");
        let ev = AuditEvent::new(
            Timestamp::now().as_millis(),
            EventKind::PeerBanned {
                agency: agency.clone(),
                seconds: self.cfg.ban_duration.0.as_secs(),
            },
        );
        let store = self.store.clone();
        tokio::spawn(async move {
            let _ = store.call(move |s| s.audit_append(&[ev])).await;
        });
        self.metrics.reject(agency.as_str(), "banned");
        self.node_events.emit(
            wlnode_config::EventType::AuditViolation,
            serde_json::json!({
                "kind": "peer_banned",
                "agency": agency.to_string(),
                "seconds": self.cfg.ban_duration.0.as_secs(),
            }),
        );
        let mut peers = peers_of(&self.trust.roster(), [agency]);
        peers.extend(
            self.agencies
                .iter()
                .filter(|(_, (a, _))| a == agency)
                .map(|(p, _)| *p),
        );
        self.net.send(wlnode_net::Command::Ban { peers, until });
    }

    fn set_error(&mut self, agency: &AgencyCode, e: String) {
        for ps in self.peers.values_mut().filter(|p| p.agency == *agency) {
            ps.last_error = Some(e.clone());
        }
        if let Ok(mut t) = self.table.write()
            && let Some(info) = t.get_mut(agency.as_str())
        {
            info.last_error = Some(e);
        }
    }
}
