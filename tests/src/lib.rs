//! Shared harness for the workspace integration tests: real federations of in-process
//! nodes on 127.0.0.1 with port-0 listeners, a temp dir per node, and event-driven
//! waits with generous timeouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_debug_implementations
)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use wlnode_config::Config;
use wlnode_crypto::model::{EntryDraft, RecordId, Status};
use wlnode_devtools::scaffold::{self, AgencySpec, Federation, NodeOptions};
use wlnode_runtime::RunningNode;
use wlnode_runtime::entries::{ImportItem, ImportOutcome, Written};
use wlnode_types::EntryKey;

/// Sync settings that make tests converge quickly.
pub const FAST_SYNC: &str = r#"
[sync]
anti_entropy_interval = "3s"
reconnect_min = "100ms"
reconnect_max = "2s"
"#;

/// A federation of nodes under test.
pub struct Cluster {
    /// Keeps the files alive.
    pub dir: tempfile::TempDir,
    /// The generated federation.
    pub fed: Federation,
    /// Links (i, j): the later-started node dials the earlier one.
    pub edges: Vec<(usize, usize)>,
    /// Extra config per node (policy, sync).
    pub extra: Vec<String>,
    /// Running nodes.
    pub nodes: Vec<Option<RunningNode>>,
    /// Listen port of each node after its first start (reused on restart).
    pub ports: Vec<Option<u16>>,
}

impl Cluster {
    /// Generates keys, roster and folders for `specs` with links `edges`.
    pub fn new(specs: &[AgencySpec], edges: &[(usize, usize)], extra: Vec<String>) -> Self {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let fed = scaffold::create(dir.path(), "test-federation", specs).unwrap();
        let n = specs.len();
        Self {
            dir,
            fed,
            edges: edges.to_vec(),
            extra,
            nodes: (0..n).map(|_| None).collect(),
            ports: vec![None; n],
        }
    }

    /// Members `AA-EXPORT`, `BB-CUSTOMS`, ... all in group `eu`, open policies.
    pub fn simple(n: usize, edges: &[(usize, usize)]) -> Self {
        let specs: Vec<AgencySpec> = (0..n)
            .map(|i| AgencySpec::member(&agency(i), &["eu"]).unwrap())
            .collect();
        let extra = (0..n)
            .map(|_| format!("{}{}", scaffold::OPEN_POLICY, FAST_SYNC))
            .collect();
        Self::new(&specs, edges, extra)
    }

    fn addr_of(&self, j: usize) -> Option<String> {
        let port = self.ports[j]?;
        Some(format!("/ip4/127.0.0.1/tcp/{port}"))
    }

    /// Rewrites node `i`'s config from `extra` (e.g. before a reload).
    pub fn write_config(&self, i: usize) {
        let mut peers = Vec::new();
        for &(a, b) in &self.edges {
            let other = if a == i {
                b
            } else if b == i {
                a
            } else {
                continue;
            };
            let addrs = self.addr_of(other).map(|a| vec![a]).unwrap_or_default();
            peers.push((self.fed.nodes[other].agency.clone(), addrs));
        }
        let opts = NodeOptions {
            listen: match self.ports[i] {
                Some(p) => format!("/ip4/127.0.0.1/tcp/{p}"),
                None => "/ip4/127.0.0.1/tcp/0".into(),
            },
            peers,
            extra: self.extra[i].clone(),
            ..NodeOptions::default()
        };
        scaffold::write_config(&self.fed, &self.fed.nodes[i], &opts).unwrap();
    }

    /// Writes node `i`'s config and starts it.
    pub async fn start(&mut self, i: usize) {
        let mut peers = Vec::new();
        for &(a, b) in &self.edges {
            let other = if a == i {
                b
            } else if b == i {
                a
            } else {
                continue;
            };
            let addrs = match (&self.nodes[other], self.addr_of(other)) {
                (Some(_), Some(addr)) => vec![addr],
                _ => Vec::new(),
            };
            peers.push((self.fed.nodes[other].agency.clone(), addrs));
        }
        let opts = NodeOptions {
            listen: match self.ports[i] {
                Some(p) => format!("/ip4/127.0.0.1/tcp/{p}"),
                None => "/ip4/127.0.0.1/tcp/0".into(),
            },
            peers,
            extra: self.extra[i].clone(),
            ..NodeOptions::default()
        };
        scaffold::write_config(&self.fed, &self.fed.nodes[i], &opts).unwrap();
        let cfg = Config::load(&self.fed.nodes[i].config).unwrap();
        let node = wlnode_api::start_node(cfg).await.unwrap();
        let port = node
            .listen_addrs
            .iter()
            .find_map(|a| {
                a.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                    _ => None,
                })
            })
            .expect("a TCP listen address");
        self.ports[i] = Some(port);
        self.nodes[i] = Some(node);
    }

    /// Starts every node in order.
    pub async fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i).await;
        }
    }

    /// Stops node `i` cleanly.
    pub async fn stop(&mut self, i: usize) {
        if let Some(n) = self.nodes[i].take() {
            n.stop().await;
        }
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> &RunningNode {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Record ids node `i` holds.
    pub async fn records(&self, i: usize) -> BTreeSet<RecordId> {
        self.node(i)
            .services
            .store
            .call(|s| Ok(s.sync_items()?.into_iter().map(|(_, id)| id).collect()))
            .await
            .unwrap()
    }

    /// Entry heads node `i` derives: key -> (version, head record, status, disputed).
    pub async fn heads(&self, i: usize) -> BTreeMap<EntryKey, (u64, RecordId, Status, bool)> {
        self.node(i)
            .services
            .store
            .call(|s| {
                let (all, _) = s.list_entries(&Default::default(), None, usize::MAX)?;
                Ok(all
                    .into_iter()
                    .map(|(k, st)| (k, (st.version, st.head, st.status, st.disputed)))
                    .collect())
            })
            .await
            .unwrap()
    }

    /// Adds `n` entries at node `i` (one import batch); returns what was written.
    pub async fn add(
        &self,
        i: usize,
        prefix: &str,
        n: usize,
        distribution: Option<&str>,
    ) -> Vec<Written> {
        let drafts = (0..n)
            .map(|k| draft(&format!("{prefix} entity {k}"), distribution))
            .collect();
        self.add_drafts(i, prefix, drafts).await
    }

    /// Imports `drafts` at node `i` (source ids `prefix-0`, `prefix-1`, ...).
    pub async fn add_drafts(
        &self,
        i: usize,
        prefix: &str,
        drafts: Vec<EntryDraft>,
    ) -> Vec<Written> {
        let items: Vec<ImportItem> = drafts
            .into_iter()
            .enumerate()
            .map(|(k, draft)| ImportItem {
                source_id: format!("{prefix}-{k}"),
                draft,
            })
            .collect();
        let ctx = &self.node(i).services;
        let (outcomes, report) = ctx.lifecycle.import(prefix, items).await.unwrap();
        if let Some(r) = &report {
            ctx.ingested.after_ingest(r, "local");
        }
        outcomes
            .into_iter()
            .map(|o| match o {
                ImportOutcome::Imported { written } | ImportOutcome::Amended { written } => written,
                other => panic!("unexpected import outcome {other:?}"),
            })
            .collect()
    }

    /// Amends an own entry at node `i`.
    pub async fn amend(&self, i: usize, w: &Written, name: &str) -> Written {
        let ctx = &self.node(i).services;
        let (w, r) = ctx
            .lifecycle
            .amend(w.entry_id, draft(name, None))
            .await
            .unwrap();
        ctx.ingested.after_ingest(&r, "local");
        w
    }

    /// Withdraws an own entry at node `i`.
    pub async fn withdraw(&self, i: usize, w: &Written) -> Written {
        let ctx = &self.node(i).services;
        let (w, r) = ctx
            .lifecycle
            .withdraw(w.entry_id, "test withdrawal".into())
            .await
            .unwrap();
        ctx.ingested.after_ingest(&r, "local");
        w
    }

    /// Prometheus text of node `i`.
    pub fn metrics(&self, i: usize) -> String {
        self.node(i).services.metrics.encode()
    }
}

/// Agency code of node `i` in [`Cluster::simple`].
pub fn agency(i: usize) -> String {
    const NAMES: [&str; 10] = [
        "AA-EXPORT",
        "BB-CUSTOMS",
        "CC-TRADE",
        "DD-EXPORT",
        "EE-CUSTOMS",
        "FF-TRADE",
        "GG-EXPORT",
        "HH-CUSTOMS",
        "II-TRADE",
        "JJ-EXPORT",
    ];
    NAMES[i].to_owned()
}

/// A test entry.
pub fn draft(name: &str, distribution: Option<&str>) -> EntryDraft {
    let mut v = serde_json::json!({
        "subject": {"kind": "organization", "name": name, "aliases": [format!("{name} alias")],
                    "country": "AE", "identifiers": [{"type": "registration", "value": "R-1"}],
                    "birth_date": "2001-02"},
        "reason": "diversion-risk",
        "categories": ["3A001"],
        "remarks": "integration test"
    });
    if let Some(d) = distribution {
        v["distribution"] = serde_json::from_str(d).unwrap();
    }
    serde_json::from_value(v).unwrap()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes; panics with `what`.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sum of a Prometheus counter over all label sets whose labels contain `filter`.
pub fn counter(metrics: &str, name: &str, filter: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Logs to stderr when `WLNODE_TEST_LOG` is set (e.g. `WLNODE_TEST_LOG=debug`).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("WLNODE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// A bare libp2p peer speaking the sync protocol's framing, for tests that need to
/// send what an honest node never would: garbage, oversized frames, or requests from
/// an identity outside the roster.
pub struct RawPeer {
    swarm: libp2p::Swarm<libp2p::request_response::Behaviour<wlnode_net::codec::FrameCodec>>,
}

/// The outcome of one raw request.
#[derive(Debug)]
pub enum RawOutcome {
    /// A response frame.
    Response(bytes::Bytes),
    /// The request failed (denied connection, reset stream, timeout).
    Failed(String),
}

impl RawPeer {
    /// A peer with the given ed25519 seed (or a random identity) and frame limits,
    /// speaking the sync protocol.
    pub fn new(seed: Option<[u8; 32]>, max_request: usize, max_response: usize) -> Self {
        Self::speaking(
            wlnode_net::codec::SYNC_PROTOCOL,
            seed,
            max_request,
            max_response,
        )
    }

    /// The same, speaking `protocol` (e.g. the audit protocol).
    pub fn speaking(
        protocol: libp2p::StreamProtocol,
        seed: Option<[u8; 32]>,
        max_request: usize,
        max_response: usize,
    ) -> Self {
        use libp2p::{noise, request_response, tcp, yamux};
        let keypair = match seed {
            Some(mut s) => libp2p::identity::Keypair::ed25519_from_bytes(&mut s).unwrap(),
            None => libp2p::identity::Keypair::generate_ed25519(),
        };
        let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    wlnode_net::codec::FrameCodec {
                        max_request,
                        max_response,
                    },
                    [(protocol, request_response::ProtocolSupport::Full)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(20)),
                )
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        Self { swarm }
    }

    /// The node key of a generated node folder, as a seed.
    pub fn seed_of(node_dir: &std::path::Path) -> [u8; 32] {
        let key = wlnode_crypto::keyfile::read_secret_key(
            &node_dir.join("node.key"),
            wlnode_crypto::keyfile::KeyKind::Node,
        )
        .unwrap();
        *key.seed()
    }

    /// Sends `frame` as a sync request to the node at `addr` (with `/p2p/`).
    pub async fn request(&mut self, addr: &libp2p::Multiaddr, frame: bytes::Bytes) -> RawOutcome {
        use futures::StreamExt;
        use libp2p::request_response::{Event, Message};
        use libp2p::swarm::SwarmEvent;
        let peer = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .expect("address with /p2p/");
        self.swarm.add_peer_address(peer, addr.clone());
        let id = self
            .swarm
            .behaviour_mut()
            .send_request(&peer, wlnode_net::codec::Frame::Data(frame));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(ev) => ev,
                Err(_) => return RawOutcome::Failed("timeout".into()),
            };
            match ev {
                SwarmEvent::Behaviour(Event::Message {
                    message:
                        Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => {
                    return match response {
                        wlnode_net::codec::Frame::Data(b) => RawOutcome::Response(b),
                        wlnode_net::codec::Frame::Oversized { len, .. } => {
                            RawOutcome::Failed(format!("oversized response {len}"))
                        }
                    };
                }
                SwarmEvent::Behaviour(Event::OutboundFailure {
                    request_id, error, ..
                }) if request_id == id => {
                    return RawOutcome::Failed(error.to_string());
                }
                _ => {}
            }
        }
    }
}

impl RawPeer {
    /// Sends `frame` as [`RawPeer::request`] does and waits, as [`wait_for`] does, until
    /// `done` holds, without waiting for the request's own outcome once it does: for a
    /// frame over the node's limit, which the node refuses (and answers) having read its
    /// length alone, while this side is still writing the body nobody reads, so that its
    /// request ends only at the 20 s request timeout, which tells the test nothing.
    /// Returns the outcome if it came first (`done` is then still waited for), `None` if
    /// `done` held first. An unfinished request stays with the swarm until it fails;
    /// later requests on this peer ignore its outcome.
    pub async fn request_until<F, Fut>(
        &mut self,
        addr: &libp2p::Multiaddr,
        frame: bytes::Bytes,
        timeout: Duration,
        what: &str,
        mut done: F,
    ) -> Option<RawOutcome>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let outcome = tokio::select! {
            out = self.request(addr, frame) => Some(out),
            () = wait_for(timeout, what, &mut done) => None,
        };
        if outcome.is_some() {
            wait_for(timeout, what, &mut done).await;
        }
        outcome
    }

    /// Sends every frame of `frames` to the node at `addr`, at most `per_sec` a second,
    /// and drives the connection until each has a response or has failed (or `limit`
    /// passes). Returns (responses, failures). Inbound requests are left unanswered.
    pub async fn flood(
        &mut self,
        addr: &libp2p::Multiaddr,
        frames: impl IntoIterator<Item = bytes::Bytes>,
        per_sec: u32,
        limit: Duration,
    ) -> (usize, usize) {
        use futures::StreamExt;
        use libp2p::request_response::{Event, Message};
        use libp2p::swarm::SwarmEvent;
        let peer = addr
            .iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .expect("address with /p2p/");
        self.swarm.add_peer_address(peer, addr.clone());
        let mut frames = frames.into_iter().peekable();
        let mut outstanding = std::collections::HashSet::new();
        let (mut ok, mut failed) = (0usize, 0usize);
        let per_tick = (per_sec / 100).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if frames.peek().is_none() && outstanding.is_empty() {
                break;
            }
            tokio::select! {
                _ = tick.tick(), if frames.peek().is_some() => {
                    for _ in 0..per_tick {
                        let Some(f) = frames.next() else { break };
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .send_request(&peer, wlnode_net::codec::Frame::Data(f));
                        outstanding.insert(id);
                    }
                }
                ev = self.swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(Event::Message {
                        message: Message::Response { request_id, .. },
                        ..
                    }) if outstanding.remove(&request_id) => ok += 1,
                    SwarmEvent::Behaviour(Event::OutboundFailure { request_id, .. })
                        if outstanding.remove(&request_id) => failed += 1,
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => {
                    failed += outstanding.len() + frames.count();
                    break;
                }
            }
        }
        (ok, failed)
    }
}

impl RawPeer {
    /// Dials the node at `addr` and answers every request it makes with `answer`'s
    /// frame, until `until` says stop (checked after each answer) or `limit` passes.
    /// Returns how many requests were answered.
    pub async fn serve(
        &mut self,
        addr: &libp2p::Multiaddr,
        limit: Duration,
        mut answer: impl FnMut(&bytes::Bytes) -> bytes::Bytes,
        mut until: impl FnMut(usize) -> bool,
    ) -> usize {
        use futures::StreamExt;
        use libp2p::request_response::{Event, Message};
        use libp2p::swarm::SwarmEvent;
        self.swarm.dial(addr.clone()).unwrap();
        let deadline = tokio::time::Instant::now() + limit;
        let mut answered = 0usize;
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(ev) => ev,
                Err(_) => return answered,
            };
            if let SwarmEvent::Behaviour(Event::Message {
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            }) = ev
            {
                let frame = match request {
                    wlnode_net::codec::Frame::Data(b) => b,
                    wlnode_net::codec::Frame::Oversized { .. } => bytes::Bytes::new(),
                };
                let out = answer(&frame);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .send_response(channel, wlnode_net::codec::Frame::Data(out));
                answered += 1;
                if until(answered) {
                    return answered;
                }
            }
        }
    }
}

impl RawPeer {
    /// Dials the node at `addr` and takes every request it makes without ever
    /// answering (the answer channel is dropped, so the stream ends unanswered),
    /// until `until` says stop (checked after each request, with the count so far)
    /// or `limit` passes. Returns how many requests came.
    pub async fn ignore(
        &mut self,
        addr: &libp2p::Multiaddr,
        limit: Duration,
        until: impl FnMut(usize) -> bool,
    ) -> usize {
        self.take_requests(addr, limit, until, false).await
    }

    /// Dials the node at `addr` and takes every request it makes without answering,
    /// holding each open (its answer channel kept) until this peer's own request
    /// timeout (20 s) ends it: the node's streams to this peer stay full while its
    /// requests keep coming (review s37-order H1). `until` is checked after each
    /// request with the count so far; returns that count when it says stop or
    /// `limit` passes.
    pub async fn hold(
        &mut self,
        addr: &libp2p::Multiaddr,
        limit: Duration,
        until: impl FnMut(usize) -> bool,
    ) -> usize {
        self.take_requests(addr, limit, until, true).await
    }

    /// [`RawPeer::ignore`] (`keep` false: each answer channel dropped at once) and
    /// [`RawPeer::hold`] (`keep` true: kept while open).
    async fn take_requests(
        &mut self,
        addr: &libp2p::Multiaddr,
        limit: Duration,
        mut until: impl FnMut(usize) -> bool,
        keep: bool,
    ) -> usize {
        use futures::StreamExt;
        use libp2p::request_response::{Event, Message};
        use libp2p::swarm::SwarmEvent;
        self.swarm.dial(addr.clone()).unwrap();
        let deadline = tokio::time::Instant::now() + limit;
        let mut taken = 0usize;
        let mut open = Vec::new();
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(ev) => ev,
                Err(_) => return taken,
            };
            if let SwarmEvent::Behaviour(Event::Message {
                message: Message::Request { channel, .. },
                ..
            }) = ev
            {
                if keep {
                    open.retain(|c: &libp2p::request_response::ResponseChannel<_>| c.is_open());
                    open.push(channel);
                } else {
                    drop(channel);
                }
                taken += 1;
                if until(taken) {
                    return taken;
                }
            }
        }
    }
}

/// Peak resident memory of this process (`VmHWM` from /proc/self/status), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The listen address of a running node, with `/p2p/`.
pub fn addr(c: &Cluster, i: usize) -> libp2p::Multiaddr {
    c.node(i).listen_addrs[0].clone()
}
