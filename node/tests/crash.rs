//! Crash safety: `wlnode run` as a child process, 20k entries imported through the
//! API, SIGKILL in the middle of the stream, restart. Every entry the node
//! acknowledged before the kill is present, the store opens, and ingest continues.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use wlnode_client::{Client, ImportRow};
use wlnode_config::Config;
use wlnode_crypto::model::EntryDraft;
use wlnode_devtools::scaffold::{self, AgencySpec, NodeOptions};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path, data: &Path) -> (Node, Client) {
    let _ = std::fs::remove_file(data.join("api.addr"));
    let child = Command::cargo_bin("wlnode")
        .unwrap()
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut node = Node(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = node.0.try_wait().unwrap() {
            panic!("node exited: {s}");
        }
        if std::fs::read_to_string(data.join("api.addr"))
            .ok()
            .is_some_and(|a| std::net::TcpStream::connect(a.trim()).is_ok())
        {
            break;
        }
        assert!(Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = Client::from_config(&Config::load(config).unwrap()).unwrap();
    (node, client)
}

fn draft(i: usize) -> EntryDraft {
    serde_json::from_value(serde_json::json!({
        "subject": {
            "kind": if i.is_multiple_of(3) { "person" } else { "organization" },
            "name": format!("Crash Test Entity {i}"),
            "aliases": [format!("CTE {i}"), format!("Entity {i} Trading")],
            "country": "AE",
            "addresses": [format!("{i} Free Zone Road, Dubai")],
            "identifiers": [{"type": "registration", "value": format!("R-{i:06}")}],
            "birth_date": "1999-01"
        },
        "reason": "diversion-risk",
        "categories": ["3A001"],
        "remarks": "synthetic"
    }))
    .unwrap()
}

/// `[store] engine = ENGINE`: each crash test runs on every storage engine.
fn engine_toml(engine: &str) -> String {
    format!("\n[store]\nengine = \"{engine}\"\n")
}

#[test]
fn sigkill_during_import_loses_nothing_acknowledged_on_sled() {
    sigkill_during_import("sled");
}

#[test]
fn sigkill_during_import_loses_nothing_acknowledged_on_fjall() {
    sigkill_during_import("fjall");
}

#[test]
fn sigkill_during_cold_sync_converges_without_duplicates_on_sled() {
    sigkill_during_cold_sync("sled");
}

#[test]
fn sigkill_during_cold_sync_converges_without_duplicates_on_fjall() {
    sigkill_during_cold_sync("fjall");
}

fn sigkill_during_import(engine: &str) {
    const TOTAL: usize = 20_000;
    const BATCH: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let fed = scaffold::create(
        dir.path(),
        "crash",
        &[AgencySpec::member("AA-EXPORT", &["eu"]).unwrap()],
    )
    .unwrap();
    let n = &fed.nodes[0];
    scaffold::write_config(
        &fed,
        n,
        &NodeOptions {
            extra: engine_toml(engine),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let data = n.dir.join("data");
    let (mut node, client) = start(&n.config, &data);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let drafts: Vec<EntryDraft> = (0..TOTAL).map(draft).collect();
    let (acked_tx, acked_rx) = mpsc::channel::<Vec<String>>();
    let importer = {
        let client = client.clone();
        std::thread::spawn(move || {
            rt.block_on(async move {
                for (b, chunk) in drafts.chunks(BATCH).enumerate() {
                    let ids: Vec<String> = (0..chunk.len())
                        .map(|k| (b * BATCH + k).to_string())
                        .collect();
                    let rows: Vec<ImportRow<'_>> = chunk
                        .iter()
                        .zip(&ids)
                        .map(|(d, id)| ImportRow {
                            source_id: id,
                            entry: d,
                        })
                        .collect();
                    match client.import_batch("crash-list", &rows).await {
                        Ok(reply) => {
                            let acked: Vec<String> = reply
                                .results
                                .iter()
                                .filter_map(|r| r.entry_id.map(|e| e.to_hex()))
                                .collect();
                            assert_eq!(acked.len(), chunk.len(), "every row is valid");
                            if acked_tx.send(acked).is_err() {
                                return;
                            }
                        }
                        Err(_) => return, // the node was killed
                    }
                }
            })
        })
    };
    // Kill as soon as half the entries are acknowledged, while the next batch is in
    // flight.
    let mut acked: Vec<String> = Vec::new();
    while acked.len() < TOTAL / 2 {
        let batch = acked_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("import stalled");
        acked.extend(batch);
    }
    node.0.kill().unwrap(); // SIGKILL
    node.0.wait().unwrap();
    importer.join().unwrap();
    // Batches acknowledged between our last receive and the kill count too.
    acked.extend(acked_rx.try_iter().flatten());
    assert!(acked.len() < TOTAL, "the kill must land mid-stream");

    let (node2, client) = start(&n.config, &data);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let all = client.list_all(&[], None).await.unwrap();
        let held: std::collections::HashSet<String> = all
            .iter()
            .map(|e| e["entry_id"].as_str().unwrap().to_owned())
            .collect();
        let missing: Vec<&String> = acked.iter().filter(|id| !held.contains(*id)).collect();
        assert!(
            missing.is_empty(),
            "{} acknowledged entries lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(3)]
        );
        let status = client.status().await.unwrap();
        assert_eq!(
            status["records"].as_u64().unwrap() as usize,
            held.len(),
            "no half-written records"
        );
        // Ingest continues, and re-importing everything is idempotent for what landed.
        let w = client
            .add(&serde_json::to_value(draft(TOTAL + 1)).unwrap())
            .await
            .unwrap();
        assert_eq!(w["version"], 1);
    });
    drop(node2);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn records_of(rt: &tokio::runtime::Runtime, client: &Client) -> usize {
    rt.block_on(client.status())
        .ok()
        .and_then(|s| s["records"].as_u64())
        .unwrap_or(0) as usize
}

/// Log entries of a stopped node's store: (seq, record id) in order.
fn log_of(data: &Path) -> Vec<(u64, wlnode_crypto::model::RecordId)> {
    let s = wlnode_store::Store::open(data).unwrap();
    s.log_after(0, usize::MAX).unwrap()
}

/// Records in B's log are unique and match its record count and sync index, and no
/// stored cursor claims more than B holds: a cursor is either marked pending (its
/// first-contact backlog not yet fetched) or complete with every record of A's log up
/// to it held. Returns (records held, cursor seq, backlog complete).
fn check_receiver(a_data: &Path, b_data: &Path) -> (usize, u64, bool) {
    let a_log = log_of(a_data);
    let b = wlnode_store::Store::open(b_data).unwrap();
    let b_log = b.log_after(0, usize::MAX).unwrap();
    let ids: std::collections::HashSet<_> = b_log.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), b_log.len(), "a record appears twice in B's log");
    let items = b.sync_items().unwrap();
    assert_eq!(items.len(), ids.len(), "sync index and log disagree");
    assert_eq!(
        b.counts().unwrap().records as usize,
        ids.len(),
        "record count and log disagree"
    );
    let stored = b.cursor(&"AA-EXPORT".parse().unwrap()).unwrap();
    let (cursor, complete) = stored.map_or((0, true), |c| (c.seq, c.backlog_complete));
    let a_head = a_log.last().map_or(0, |(seq, _)| *seq);
    assert!(
        cursor <= a_head,
        "B's cursor {cursor} is past A's head {a_head}"
    );
    let behind = a_log
        .iter()
        .filter(|(seq, id)| *seq <= cursor && !ids.contains(id))
        .count();
    // The invariant: a cursor marked complete never runs ahead of the data.
    assert!(
        !complete || behind == 0,
        "B's cursor {cursor} is marked complete but {behind} of A's records below it are missing"
    );
    eprintln!(
        "B holds {}, cursor {cursor} (backlog {}), {behind} of A's records below it not yet held",
        ids.len(),
        if complete { "complete" } else { "pending" }
    );
    (ids.len(), cursor, complete)
}

/// A counter of `client`'s node from /metrics (0 when absent).
fn metric(rt: &tokio::runtime::Runtime, client: &Client, line_start: &str) -> f64 {
    let text = rt.block_on(client.get_text("/metrics")).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// SIGKILL the receiving node in the middle of a cold sync. The size is
/// `WLNODE_CRASH_SYNC_RECORDS` (default 10,000, which keeps the debug-build test
/// under a minute; the 50,000 runs with the variable set).
///
/// B is the dialled side and not the reconciliation initiator (its PeerId is the
/// larger), and anti-entropy runs only hourly: after the restart only B's own
/// on-connect reconciliation, forced by its stored "backlog pending" mark, settles
/// its cursor (A's on-connect session may deliver records too, but only B's own
/// session can clear B's mark).
fn sigkill_during_cold_sync(engine: &str) {
    let total: usize = std::env::var("WLNODE_CRASH_SYNC_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    const BATCH: usize = 1000;
    // Keys until B's PeerId is the larger one: A is then the initiator, and B runs a
    // session of its own only because its backlog is pending.
    let (_dir, fed) = loop {
        let dir = tempfile::tempdir().unwrap();
        let fed = scaffold::create(
            dir.path(),
            "crash-sync",
            &[
                AgencySpec::member("AA-EXPORT", &["eu"]).unwrap(),
                AgencySpec::member("BB-CUSTOMS", &["eu"]).unwrap(),
            ],
        )
        .unwrap();
        let id = |i: usize| wlnode_net::PeerRef::parse(&fed.nodes[i].peer_id).unwrap();
        if id(0) < id(1) {
            break (dir, fed);
        }
    };
    let extra = format!(
        "{}\n[sync]\nanti_entropy_interval = \"1h\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n{}",
        scaffold::OPEN_POLICY,
        engine_toml(engine)
    );
    let port_b = free_port();
    let (a, b) = (&fed.nodes[0], &fed.nodes[1]);
    // A dials B: B is the dialled side.
    scaffold::write_config(
        &fed,
        a,
        &NodeOptions {
            peers: vec![(
                b.agency.clone(),
                vec![format!("/ip4/127.0.0.1/tcp/{port_b}")],
            )],
            extra: extra.clone(),
            ..NodeOptions::default()
        },
    )
    .unwrap();
    scaffold::write_config(
        &fed,
        b,
        &NodeOptions {
            listen: format!("/ip4/127.0.0.1/tcp/{port_b}"),
            peers: vec![(a.agency.clone(), vec![])],
            extra,
            ..NodeOptions::default()
        },
    )
    .unwrap();
    let a_data = Config::load(&a.config).unwrap().raw.data_dir;
    let b_data = Config::load(&b.config).unwrap().raw.data_dir;
    let rt = tokio::runtime::Runtime::new().unwrap();

    let started = Instant::now();
    let (mut node_a, client_a) = start(&a.config, &a_data);
    let drafts: Vec<EntryDraft> = (0..total).map(draft).collect();
    rt.block_on(async {
        for (k, chunk) in drafts.chunks(BATCH).enumerate() {
            let ids: Vec<String> = (0..chunk.len())
                .map(|j| (k * BATCH + j).to_string())
                .collect();
            let rows: Vec<ImportRow<'_>> = chunk
                .iter()
                .zip(&ids)
                .map(|(d, id)| ImportRow {
                    source_id: id,
                    entry: d,
                })
                .collect();
            client_a.import_batch("sync-list", &rows).await.unwrap();
        }
    });
    let imported = started.elapsed();
    assert_eq!(records_of(&rt, &client_a), total);

    // Cold sync; kill B once it holds a fifth.
    let (mut node_b, client_b) = start(&b.config, &b_data);
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut at_kill = 0;
    while at_kill < total / 5 {
        assert!(Instant::now() < deadline, "sync stalled at {at_kill}");
        std::thread::sleep(Duration::from_millis(20));
        at_kill = records_of(&rt, &client_b);
    }
    node_b.0.kill().unwrap(); // SIGKILL
    node_b.0.wait().unwrap();
    // Stop A too, to read both stores.
    node_a.0.kill().unwrap();
    node_a.0.wait().unwrap();
    let (held, cursor, complete) = check_receiver(&a_data, &b_data);
    assert!(
        held < total,
        "the kill must land mid-sync (held {held} of {total})"
    );
    assert!(
        !complete,
        "killed mid backlog: the stored cursor must say so"
    );
    eprintln!(
        "cold sync of {total}: import {imported:?}; killed B at >= {at_kill} records (store: {held}, cursor {cursor}, pending)"
    );

    // B first, so that A (which dials) finds it listening.
    let restarted = Instant::now();
    let (node_b, client_b) = start(&b.config, &b_data);
    let (node_a, _client_a) = start(&a.config, &a_data);
    let pending = |rt: &tokio::runtime::Runtime| {
        rt.block_on(client_b.status()).ok().and_then(|s| {
            s["peers"]
                .as_array()?
                .iter()
                .find(|p| p["agency"] == "AA-EXPORT")
                .and_then(|p| p["backlog_pending"].as_bool())
        })
    };
    // Well under the 1 h anti-entropy interval (and its 2 h backstop for B).
    let deadline = Instant::now() + Duration::from_secs(600);
    while records_of(&rt, &client_b) < total || pending(&rt) != Some(false) {
        assert!(
            Instant::now() < deadline,
            "B did not converge after restart (backlog pending: {:?})",
            pending(&rt)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let converged = restarted.elapsed();
    // B (not the initiator) ran a session itself: only its pending mark explains that.
    let rounds = metric(
        &rt,
        &client_b,
        "wlnode_reconcile_rounds_total{peer=\"AA-EXPORT\"}",
    );
    assert!(rounds > 0.0, "B never reconciled on its own");
    drop(node_b);
    drop(node_a);
    let (held, _, complete) = check_receiver(&a_data, &b_data);
    assert_eq!(held, total, "B holds every record exactly once");
    assert!(complete, "B's backlog is marked complete");
    eprintln!(
        "cold sync of {total}: converged {converged:?} after restart; total {:?}",
        started.elapsed()
    );
}
