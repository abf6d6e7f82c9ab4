//! Disk trouble (issue 9, item 3): the store's disk refuses writes, or a write fails
//! partway through a batch, simulated with the store's fault-injection switches
//! (`wlnode::store::faults`, enabled by this crate's `fault-injection` dev feature).
//! The node must report it in status and metrics, refuse new data (API writes get a
//! 503, sync ingest does not acknowledge, so peers retry), keep serving reads, make
//! nothing half-written visible, and recover by itself once the disk works again.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode::client::{Client, ClientError};
use wlnode::config::Config;
use wlnode_tests::{Cluster, agency, counter, wait_for};

const T: Duration = Duration::from_secs(60);

fn client(c: &Cluster, i: usize) -> Client {
    Client::from_config(&Config::load(&c.fed.nodes[i].config).unwrap()).unwrap()
}

fn draft(name: &str) -> serde_json::Value {
    serde_json::json!({
        "subject": {"kind": "organization", "name": name, "country": "AE",
                    "identifiers": [{"type": "registration", "value": name}]},
        "reason": "diversion-risk",
        "categories": ["3A001"]
    })
}

fn metric(c: &Cluster, i: usize, name: &str) -> f64 {
    counter(&c.metrics(i), name, "")
}

async fn writable(cl: &Client) -> (bool, Option<String>) {
    let s = cl.status().await.unwrap();
    (
        s["store"]["writable"].as_bool().unwrap(),
        s["store"]["last_error"].as_str().map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_refusing_writes_is_reported_refused_and_recovered() {
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.start_all().await;
    c.add(0, "before", 3, None).await;
    wait_for(T, "node 1 to replicate the first entries", || async {
        c.records(1).await.len() == 3
    })
    .await;
    let cl = client(&c, 1);
    assert!(writable(&cl).await.0);
    assert_eq!(metric(&c, 1, "wlnode_store_healthy"), 1.0);

    // The disk of node 1 refuses every write from now on.
    let faults = c.node(1).ctx.store.faults();
    faults.fail_writes(u64::MAX);

    // An API write gets a clear 503, and status and metrics say why.
    match cl.add(&draft("Refused Trading")).await {
        Err(ClientError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (503, "store_unavailable"));
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    let (ok, err) = writable(&cl).await;
    assert!(!ok);
    assert!(err.unwrap().contains("injected fault"));
    assert_eq!(metric(&c, 1, "wlnode_store_healthy"), 0.0);
    let errors = metric(&c, 1, "wlnode_store_errors");
    assert!(errors >= 1.0);
    assert!(matches!(
        cl.get_text("/healthz").await,
        Err(ClientError::Api { status: 503, .. })
    ));

    // Sync ingest is refused too: node 0's new entries do not land, and node 1's
    // cursor on node 0 does not move (nothing acknowledged).
    let a0 = wlnode_crypto::model::AgencyCode::new(&agency(0)).unwrap();
    let cursor_before = c.node(1).ctx.store.cursor(a0.clone()).await.unwrap();
    c.add(0, "during", 4, None).await;
    wait_for(
        T,
        "node 1 to fail ingesting node 0's new records",
        || async { metric(&c, 1, "wlnode_store_errors") >= errors + 1.0 },
    )
    .await;
    assert_eq!(c.records(1).await.len(), 3);
    assert_eq!(
        c.node(1).ctx.store.cursor(a0.clone()).await.unwrap(),
        cursor_before
    );

    // Reads are still served.
    assert_eq!(cl.list_all(&[], None).await.unwrap().len(), 3);
    let status = cl.status().await.unwrap();
    assert_eq!(status["records"], 3);

    // The disk is back: peers retry, the node catches up and says it is healthy again.
    faults.clear();
    wait_for(T, "node 1 to catch up after the disk recovers", || async {
        c.records(1).await.len() == 7
    })
    .await;
    wait_for(T, "status to say the store is writable again", || async {
        writable(&cl).await.0
    })
    .await;
    assert_eq!(metric(&c, 1, "wlnode_store_healthy"), 1.0);
    assert!(cl.get_text("/healthz").await.is_ok());
    cl.add(&draft("Accepted Again Trading")).await.unwrap();
    wait_for(T, "node 0 to get node 1's new entry", || async {
        c.records(0).await.len() == 8
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_batches_failing_partway_are_invisible_then_retried() {
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.start_all().await;
    c.add(0, "before", 2, None).await;
    wait_for(T, "node 1 to replicate the first entries", || async {
        c.records(1).await.len() == 2
    })
    .await;
    let before = c.node(1).ctx.store.counts().await.unwrap();

    // Every batch node 1 ingests now fails after its first record is written.
    let faults = c.node(1).ctx.store.faults();
    faults.fail_mid_batch(u64::MAX);
    let errors = metric(&c, 1, "wlnode_store_errors");
    c.add(0, "partway", 6, None).await;
    wait_for(T, "node 1 to fail a batch partway", || async {
        metric(&c, 1, "wlnode_store_errors") >= errors + 2.0
    })
    .await;
    // Nothing of the failed batches is visible: counts, log and entries unchanged.
    assert_eq!(c.node(1).ctx.store.counts().await.unwrap(), before);
    assert_eq!(c.records(1).await.len(), 2);
    assert_eq!(c.heads(1).await.len(), 2);
    assert!(!writable(&client(&c, 1)).await.0);

    faults.clear();
    wait_for(T, "node 1 to catch up after the fault clears", || async {
        c.records(1).await.len() == 8
    })
    .await;
    assert_eq!(c.heads(1).await, c.heads(0).await);
    let after = c.node(1).ctx.store.counts().await.unwrap();
    assert_eq!(after.records, 8);
    assert_eq!(after.entries, 8);
}
