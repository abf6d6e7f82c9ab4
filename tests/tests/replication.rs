//! Replication over real libp2p connections on loopback: convergence along a line,
//! catching up after a stop, recovery after data loss, distribution rules, trust and
//! hostile frames, and a ring of five nodes writing concurrently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode_tests::{Cluster, counter, wait_for};

const T: Duration = Duration::from_secs(120);

async fn converged(c: &Cluster, nodes: &[usize]) -> bool {
    let first = c.records(nodes[0]).await;
    for &i in &nodes[1..] {
        if c.records(i).await != first {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_of_three_converges_with_amendments_and_withdrawals() {
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start_all().await;
    let written = c.add(0, "line", 1000, None).await;
    for w in &written[..10] {
        c.amend(0, w, "amended name").await;
    }
    for w in &written[10..20] {
        c.withdraw(0, w).await;
    }
    wait_for(T, "1020 records on all three nodes", || async {
        c.records(2).await.len() == 1020 && converged(&c, &[0, 1, 2]).await
    })
    .await;
    let heads = c.heads(0).await;
    assert_eq!(heads.len(), 1000);
    assert_eq!(c.heads(1).await, heads);
    assert_eq!(c.heads(2).await, heads);
    let withdrawn = heads
        .values()
        .filter(|h| h.2 == wlnode_crypto::model::Status::Withdrawn)
        .count();
    assert_eq!(withdrawn, 10);
    assert_eq!(heads.values().filter(|h| h.0 == 2).count(), 20);
    for i in 0..3 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_catches_up_on_restart() {
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start_all().await;
    c.add(0, "before", 100, None).await;
    wait_for(T, "first 100 at C", || async {
        c.records(2).await.len() == 100
    })
    .await;
    c.stop(2).await;
    c.add(0, "during", 200, None).await;
    wait_for(T, "300 at B", || async { c.records(1).await.len() == 300 }).await;
    c.start(2).await;
    wait_for(T, "C catches up", || async {
        converged(&c, &[0, 1, 2]).await
    })
    .await;
    assert_eq!(c.records(2).await.len(), 300);
    for i in 0..3 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_is_restored_without_resending_everything() {
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start_all().await;
    c.add(0, "keep", 500, None).await;
    wait_for(T, "500 at C", || async {
        converged(&c, &[0, 1, 2]).await && c.records(2).await.len() == 500
    })
    .await;
    c.stop(2).await;
    std::fs::remove_dir_all(c.fed.nodes[2].dir.join("data")).unwrap();
    let sent_before = counter(&c.metrics(1), "wlnode_records_sent_total", "CC-TRADE");

    c.start(2).await;
    wait_for(T, "C restored", || async {
        c.records(2).await.len() == 500
    })
    .await;
    // Let any duplicate session finish before counting.
    wait_for(T, "B idle towards C", || async {
        let m = c.metrics(1);
        let sent = counter(&m, "wlnode_records_sent_total", "CC-TRADE") - sent_before;
        sent >= 500.0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // settle; the bound below is what is asserted
    let sent = counter(&c.metrics(1), "wlnode_records_sent_total", "CC-TRADE") - sent_before;
    assert!(
        sent <= 500.0 + 10.0,
        "B re-sent {sent} records to restore 500 missing ones"
    );
    for i in 0..3 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbors_scope_stops_at_the_first_hop() {
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start_all().await;
    let near = c
        .add(
            0,
            "near",
            3,
            Some(r#"{"scope":"neighbors","sensitivity":"restricted"}"#),
        )
        .await;
    let far = c.add(0, "far", 3, None).await;
    wait_for(T, "federation entries at C", || async {
        let r = c.records(2).await;
        far.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    let b = c.records(1).await;
    let cc = c.records(2).await;
    for w in &near {
        assert!(b.contains(&w.record_id), "B is the origin's neighbour");
        assert!(!cc.contains(&w.record_id), "C is two hops away");
    }
    for i in 0..3 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_records_never_cross_a_non_member() {
    use wlnode_devtools::scaffold::{AgencySpec, OPEN_POLICY};
    // A(eu) - B(asean) - C(eu), and A - D(eu) - C: C gets eu records only through D.
    let specs = [
        AgencySpec::member("AA-EXPORT", &["eu"]).unwrap(),
        AgencySpec::member("BB-CUSTOMS", &["asean"]).unwrap(),
        AgencySpec::member("CC-TRADE", &["eu"]).unwrap(),
        AgencySpec::member("DD-EXPORT", &["eu"]).unwrap(),
    ];
    let extra = (0..4)
        .map(|_| format!("{OPEN_POLICY}{}", wlnode_tests::FAST_SYNC))
        .collect();
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    c.start(0).await;
    c.start(1).await;
    c.start(2).await;
    let eu = c
        .add(
            0,
            "eu",
            5,
            Some(r#"{"scope":"groups","groups":["eu"],"sensitivity":"restricted"}"#),
        )
        .await;
    let all = c.add(0, "all", 5, None).await;
    wait_for(T, "federation entries at C via B", || async {
        let r = c.records(2).await;
        all.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    for i in [1, 2] {
        let r = c.records(i).await;
        assert!(
            eu.iter().all(|w| !r.contains(&w.record_id)),
            "node {i} must not hold eu records yet"
        );
    }
    // Another path through an eu member.
    c.edges.push((0, 3));
    c.edges.push((3, 2));
    c.start(3).await;
    wait_for(T, "eu entries at C via D", || async {
        let r = c.records(2).await;
        eu.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    let b = c.records(1).await;
    assert!(
        eu.iter().all(|w| !b.contains(&w.record_id)),
        "B never holds eu records"
    );
    for i in 0..4 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_in_a_ring_converge() {
    let mut c = Cluster::simple(5, &[(0, 1), (1, 2), (2, 3), (3, 4), (4, 0)]);
    c.start_all().await;
    let cref = &c;
    futures::future::join_all(
        (0..5).map(|i| async move { cref.add(i, &format!("ring{i}"), 60, None).await }),
    )
    .await;
    wait_for(T, "300 records everywhere", || async {
        c.records(0).await.len() == 300 && converged(&c, &[0, 1, 2, 3, 4]).await
    })
    .await;
    let heads = c.heads(0).await;
    for i in 1..5 {
        assert_eq!(c.heads(i).await, heads);
    }
    for i in 0..5 {
        c.stop(i).await;
    }
}
