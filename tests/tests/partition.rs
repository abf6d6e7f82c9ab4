//! Partition and heal: five nodes in a full mesh split into {A, B} and {C, D, E}.
//! Entries are added, amended and withdrawn on both sides of the cut; after the heal
//! every node holds the same record ids and derives the same state for every entry.
//!
//! The cut is made with the data-sharing policy (each side shares with and accepts
//! from its own side only, loaded with a live policy reload), not at the transport:
//! connections stay up but no record crosses, which is what a partition does to the
//! data. The node has no runtime connection-gating control to cut links with, and
//! network namespaces need root; RELIABILITY.md says so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode::scaffold::OPEN_POLICY;
use wlnode_tests::{Cluster, FAST_SYNC, agency, wait_for};

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
        c.node(i).ctx.reload().await.unwrap();
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
        c.node(i).ctx.reload().await.unwrap();
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
