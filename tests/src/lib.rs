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

use wlnode::config::Config;
use wlnode::entries::{ImportItem, ImportOutcome, Written};
use wlnode::node::RunningNode;
use wlnode::scaffold::{self, AgencySpec, Federation, NodeOptions};
use wlnode::store::EntryKey;
use wlnode_crypto::model::{EntryDraft, RecordId, Status};

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
        let node = RunningNode::start(cfg).await.unwrap();
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
            .ctx
            .store
            .call(|s| Ok(s.sync_items()?.into_iter().map(|(_, id)| id).collect()))
            .await
            .unwrap()
    }

    /// Entry heads node `i` derives: key -> (version, head record, status, disputed).
    pub async fn heads(&self, i: usize) -> BTreeMap<EntryKey, (u64, RecordId, Status, bool)> {
        self.node(i)
            .ctx
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
        let items: Vec<ImportItem> = (0..n)
            .map(|k| ImportItem {
                source_id: format!("{prefix}-{k}"),
                draft: draft(&format!("{prefix} entity {k}"), distribution),
            })
            .collect();
        let ctx = &self.node(i).ctx;
        let (outcomes, report) = ctx.lifecycle.import(prefix, items).await.unwrap();
        if let Some(r) = &report {
            ctx.after_ingest(r, "local");
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
        let ctx = &self.node(i).ctx;
        let (w, r) = ctx
            .lifecycle
            .amend(w.entry_id, draft(name, None))
            .await
            .unwrap();
        ctx.after_ingest(&r, "local");
        w
    }

    /// Withdraws an own entry at node `i`.
    pub async fn withdraw(&self, i: usize, w: &Written) -> Written {
        let ctx = &self.node(i).ctx;
        let (w, r) = ctx
            .lifecycle
            .withdraw(w.entry_id, "test withdrawal".into())
            .await
            .unwrap();
        ctx.after_ingest(&r, "local");
        w
    }

    /// Prometheus text of node `i`.
    pub fn metrics(&self, i: usize) -> String {
        self.node(i).ctx.metrics.encode()
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
