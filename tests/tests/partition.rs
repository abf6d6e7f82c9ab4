//! Partition and heal: five nodes in a full mesh split into {A, B} and {C, D, E}.
//! Entries are added, amended and withdrawn on both sides of the cut; after the heal
//! every node holds the same record ids and derives the same state for every entry.
//!
//! Two ways to cut: with the data-sharing policy (each side shares with and accepts
//! from its own side only, loaded with a live policy reload: connections stay up but
//! no record crosses), and at the transport, with the operator's peer blocks
//! (`POST /v1/peers/{agency}/block` on both sides of every cross link: the connection
//! gate closes the links and refuses new ones). Network namespaces would need root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode_client::Client;
use wlnode_config::Config;
use wlnode_crypto::model::AgencyCode;
use wlnode_devtools::scaffold::OPEN_POLICY;
use wlnode_tests::{Cluster, FAST_SYNC, agency, counter, wait_for};

const T: Duration = Duration::from_secs(180);

fn side_policy(side: &[usize]) -> String {
    let names: Vec<String> = side.iter().map(|&i| format!("\"{}\"", agency(i))).collect();
    let list = names.join(", ");
    format!(
        "\n[[share]]\nto = [{list}]\norigins = [\"*\"]\nrelay = true\n\n[[accept]]\nfrom = [{list}]\norigins = [\"*\"]\n{FAST_SYNC}"
    )
}

async fn same_records(c: &Cluster, nodes: &[usize]) -> bool {
    let first = c.records(nodes[0]).await;
    for &i in &nodes[1..] {
        if c.records(i).await != first {
            return false;
        }
    }
    true
}

/// Every node derives the same state for every entry (and holds the same records).
async fn same_heads(c: &Cluster, nodes: &[usize]) -> bool {
    if !same_records(c, nodes).await {
        return false;
    }
    let first = c.heads(nodes[0]).await;
    for &i in &nodes[1..] {
        if c.heads(i).await != first {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_mesh_partitioned_and_healed_converges_to_the_same_heads() {
    let mut edges = Vec::new();
    for i in 0..5 {
        for j in 0..i {
            edges.push((i, j));
        }
    }
    let mut c = Cluster::simple(5, &edges);
    c.start_all().await;
    let all = [0, 1, 2, 3, 4];
    let left = [0usize, 1];
    let right = [2usize, 3, 4];
    let base_l = c.add(0, "base-left", 10, None).await;
    let base_r = c.add(3, "base-right", 10, None).await;
    wait_for(T, "initial convergence", || same_records(&c, &all)).await;

    // Cut.
    for i in all {
        let side: &[usize] = if left.contains(&i) { &left } else { &right };
        c.extra[i] = side_policy(side);
        c.write_config(i);
        c.node(i).services.control.reload().await.unwrap();
    }
    // Both sides write: new entries, amendments and withdrawals of shared entries.
    let new_l = c.add(1, "cut-left", 15, None).await;
    let new_r = c.add(4, "cut-right", 15, None).await;
    let mut changed_l = Vec::new();
    let mut changed_r = Vec::new();
    for k in 0..3 {
        changed_l.push(c.amend(0, &base_l[k], &format!("left amended {k}")).await);
        changed_r.push(c.amend(3, &base_r[k], &format!("right amended {k}")).await);
    }
    for k in 3..5 {
        changed_l.push(c.withdraw(0, &base_l[k]).await);
        changed_r.push(c.withdraw(3, &base_r[k]).await);
    }
    wait_for(T, "each side converges on its own", || async {
        same_records(&c, &left).await && same_records(&c, &right).await
    })
    .await;
    // Nothing written during the cut crossed it.
    let l = c.records(0).await;
    let r = c.records(2).await;
    for w in new_r.iter().chain(&changed_r) {
        assert!(
            !l.contains(&w.record_id),
            "right-side record crossed the cut"
        );
    }
    for w in new_l.iter().chain(&changed_l) {
        assert!(
            !r.contains(&w.record_id),
            "left-side record crossed the cut"
        );
    }

    // Heal.
    for i in all {
        c.extra[i] = format!("{OPEN_POLICY}{FAST_SYNC}");
        c.write_config(i);
        c.node(i).services.control.reload().await.unwrap();
    }
    wait_for(T, "all five converge after the heal", || async {
        if !same_records(&c, &all).await {
            return false;
        }
        let first = c.heads(0).await;
        for i in 1..5 {
            if c.heads(i).await != first {
                return false;
            }
        }
        true
    })
    .await;
    let records = c.records(0).await;
    for w in new_l
        .iter()
        .chain(&new_r)
        .chain(&changed_l)
        .chain(&changed_r)
    {
        assert!(records.contains(&w.record_id));
    }
    let heads = c.heads(2).await;
    assert_eq!(heads.len(), 50, "10 + 10 + 15 + 15 entries");
    let withdrawn = heads
        .values()
        .filter(|(_, _, s, _)| *s == wlnode_crypto::model::Status::Withdrawn)
        .count();
    assert_eq!(withdrawn, 4);
    assert!(heads.values().all(|(_, _, _, disputed)| !disputed));
    for i in all {
        c.stop(i).await;
    }
}

fn client(c: &Cluster, i: usize) -> Client {
    Client::from_config(&Config::load(&c.fed.nodes[i].config).unwrap()).unwrap()
}

/// `(connected, blocked)` of every neighbour in node `i`'s `/v1/status`.
async fn links(c: &Cluster, i: usize) -> Vec<(String, bool, bool)> {
    let s = client(c, i).status().await.unwrap();
    s["peers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["agency"].as_str().unwrap().to_owned(),
                p["connected"].as_bool().unwrap(),
                p["blocked"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Whether node `i`'s status shows every link to `same` up and every link to `other`
/// down and (when `blocked`) blocked.
async fn links_are(c: &Cluster, i: usize, same: &[usize], other: &[usize], blocked: bool) -> bool {
    let l = links(c, i).await;
    let get = |j: usize| l.iter().find(|(a, _, _)| *a == agency(j)).cloned();
    same.iter()
        .filter(|&&j| j != i)
        .all(|&j| get(j).is_some_and(|(_, up, b)| up && !b))
        && other
            .iter()
            .all(|&j| get(j).is_some_and(|(_, up, b)| !up && b == blocked))
}

async fn set_cut(c: &Cluster, left: &[usize], right: &[usize], block: bool) {
    for &i in left {
        for &j in right {
            for (x, y) in [(i, j), (j, i)] {
                let a: AgencyCode = agency(y).parse().unwrap();
                let v = client(c, x).peer_block(&a, block).await.unwrap();
                assert_eq!(v["blocked"], block);
                assert_eq!(v["changed"], true);
            }
        }
    }
}

/// The same partition made at the transport level: the operator blocks the cross
/// links on both sides. The test checks in `/v1/status` that no connection crosses the
/// cut (also after a restart of a blocked node: blocks are stored), writes on both
/// sides at once, unblocks, and checks all five converge to the same heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_mesh_cut_by_peer_blocks_and_healed_converges_to_the_same_heads() {
    let mut edges = Vec::new();
    for i in 0..5 {
        for j in 0..i {
            edges.push((i, j));
        }
    }
    let mut c = Cluster::simple(5, &edges);
    c.start_all().await;
    let all = [0usize, 1, 2, 3, 4];
    let left = [0usize, 1];
    let right = [2usize, 3, 4];
    let base_l = c.add(0, "base-left", 10, None).await;
    let base_r = c.add(3, "base-right", 10, None).await;
    wait_for(T, "initial convergence", || same_records(&c, &all)).await;
    for i in all {
        wait_for(T, "full mesh up", || links_are(&c, i, &all, &[], false)).await;
    }

    // Cut at the transport.
    set_cut(&c, &left, &right, true).await;
    for i in all {
        let (same, other): (&[usize], &[usize]) = if left.contains(&i) {
            (&left, &right)
        } else {
            (&right, &left)
        };
        wait_for(T, "no connection crosses the cut", || {
            links_are(&c, i, same, other, true)
        })
        .await;
    }
    assert_eq!(
        counter(&c.metrics(0), "wlnode_peer_blocked", &agency(2)),
        1.0
    );
    // A blocked node that restarts keeps its blocks (and its peers theirs).
    c.stop(4).await;
    c.start(4).await;
    wait_for(T, "the restarted node keeps the cut", || {
        links_are(&c, 4, &right, &left, true)
    })
    .await;

    // Both sides write at once: new entries, amendments and withdrawals.
    let ((new_l, changed_l), (new_r, changed_r)) = tokio::join!(
        async {
            let new = c.add(1, "cut-left", 15, None).await;
            let mut changed = Vec::new();
            for (k, w) in base_l.iter().enumerate().take(3) {
                changed.push(c.amend(0, w, &format!("left amended {k}")).await);
            }
            for w in &base_l[3..5] {
                changed.push(c.withdraw(0, w).await);
            }
            (new, changed)
        },
        async {
            let new = c.add(4, "cut-right", 15, None).await;
            let mut changed = Vec::new();
            for (k, w) in base_r.iter().enumerate().take(3) {
                changed.push(c.amend(3, w, &format!("right amended {k}")).await);
            }
            for w in &base_r[3..5] {
                changed.push(c.withdraw(3, w).await);
            }
            (new, changed)
        }
    );
    wait_for(T, "each side converges on its own", || async {
        same_heads(&c, &left).await && same_heads(&c, &right).await
    })
    .await;
    // Still cut, and nothing written during the cut crossed it.
    for i in left {
        assert!(links_are(&c, i, &left, &right, true).await);
    }
    for i in right {
        assert!(links_are(&c, i, &right, &left, true).await);
    }
    let l = c.records(0).await;
    let r = c.records(2).await;
    for w in new_r.iter().chain(&changed_r) {
        assert!(
            !l.contains(&w.record_id),
            "right-side record crossed the cut"
        );
    }
    for w in new_l.iter().chain(&changed_l) {
        assert!(
            !r.contains(&w.record_id),
            "left-side record crossed the cut"
        );
    }

    // Heal.
    set_cut(&c, &left, &right, false).await;
    for i in all {
        wait_for(T, "full mesh up again", || {
            links_are(&c, i, &all, &[], false)
        })
        .await;
    }
    wait_for(T, "all five converge after the heal", || {
        same_heads(&c, &all)
    })
    .await;
    let records = c.records(0).await;
    for w in new_l
        .iter()
        .chain(&new_r)
        .chain(&changed_l)
        .chain(&changed_r)
    {
        assert!(records.contains(&w.record_id));
    }
    let heads = c.heads(2).await;
    assert_eq!(heads.len(), 50, "10 + 10 + 15 + 15 entries");
    let withdrawn = heads
        .values()
        .filter(|(_, _, s, _)| *s == wlnode_crypto::model::Status::Withdrawn)
        .count();
    assert_eq!(withdrawn, 4);
    assert!(heads.values().all(|(_, _, _, disputed)| !disputed));
    assert_eq!(
        counter(&c.metrics(0), "wlnode_peer_blocked", &agency(2)),
        0.0
    );
    for i in all {
        c.stop(i).await;
    }
}
