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
use wlnode::client::{Client, ImportRow};
use wlnode::config::Config;
use wlnode::scaffold::{self, AgencySpec, NodeOptions};
use wlnode_crypto::model::EntryDraft;

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

#[test]
fn sigkill_during_import_loses_nothing_acknowledged() {
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
    scaffold::write_config(&fed, n, &NodeOptions::default()).unwrap();
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
