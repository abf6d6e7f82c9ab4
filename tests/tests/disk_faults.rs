//! Disk trouble (issue 9, item 3): the store's disk refuses writes, or a write fails
//! partway through a batch, simulated with the store's fault-injection switches
//! (`wlnode_store::faults`, enabled by this crate's `fault-injection` dev feature).
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

use wlnode_client::{Client, ClientError};
use wlnode_config::Config;
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

/// A two-node cluster whose nodes run on storage engine `engine`: the fault tests
/// run on every engine.
fn cluster_on(engine: &str) -> Cluster {
    let mut c = Cluster::simple(2, &[(0, 1)]);
    for e in &mut c.extra {
        e.push_str(&format!("\n[store]\nengine = \"{engine}\"\n"));
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_refusing_writes_is_reported_refused_and_recovered_on_sled() {
    disk_refusing_writes("sled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_refusing_writes_is_reported_refused_and_recovered_on_fjall() {
    disk_refusing_writes("fjall").await;
}

async fn disk_refusing_writes(engine: &str) {
    let mut c = cluster_on(engine);
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
    let faults = c.node(1).services.store.faults();
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
    let a0 = wlnode_crypto::model::AgencyCode::new(agency(0)).unwrap();
    let cursor_before = c.node(1).services.store.cursor(a0.clone()).await.unwrap();
    c.add(0, "during", 4, None).await;
    wait_for(
        T,
        "node 1 to fail ingesting node 0's new records",
        || async { metric(&c, 1, "wlnode_store_errors") >= errors + 1.0 },
    )
    .await;
    assert_eq!(c.records(1).await.len(), 3);
    assert_eq!(
        c.node(1).services.store.cursor(a0.clone()).await.unwrap(),
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
async fn sync_batches_failing_partway_are_invisible_then_retried_on_sled() {
    sync_batches_failing_partway("sled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_batches_failing_partway_are_invisible_then_retried_on_fjall() {
    sync_batches_failing_partway("fjall").await;
}

async fn sync_batches_failing_partway(engine: &str) {
    let mut c = cluster_on(engine);
    c.start_all().await;
    c.add(0, "before", 2, None).await;
    wait_for(T, "node 1 to replicate the first entries", || async {
        c.records(1).await.len() == 2
    })
    .await;
    let before = c.node(1).services.store.counts().await.unwrap();

    // Every batch node 1 ingests now fails after its first record is written.
    let faults = c.node(1).services.store.faults();
    faults.fail_mid_batch(u64::MAX);
    let errors = metric(&c, 1, "wlnode_store_errors");
    c.add(0, "partway", 6, None).await;
    wait_for(T, "node 1 to fail a batch partway", || async {
        metric(&c, 1, "wlnode_store_errors") >= errors + 2.0
    })
    .await;
    // Nothing of the failed batches is visible: counts, log and entries unchanged.
    assert_eq!(c.node(1).services.store.counts().await.unwrap(), before);
    assert_eq!(c.records(1).await.len(), 2);
    assert_eq!(c.heads(1).await.len(), 2);
    assert!(!writable(&client(&c, 1)).await.0);

    faults.clear();
    wait_for(T, "node 1 to catch up after the fault clears", || async {
        c.records(1).await.len() == 8
    })
    .await;
    assert_eq!(c.heads(1).await, c.heads(0).await);
    let after = c.node(1).services.store.counts().await.unwrap();
    assert_eq!(after.records, 8);
    assert_eq!(after.entries, 8);
}

/// A real `wlnode run` process whose data dir is a 32 MiB tmpfs in a private mount
/// namespace (so nothing is mounted on the host, and the mount dies with the
/// process); it is killed on drop.
struct FullDiskNode {
    child: std::process::Child,
    wlnode: std::path::PathBuf,
    config: std::path::PathBuf,
    data: std::path::PathBuf,
}

impl FullDiskNode {
    /// `cmd` run inside the node's mount namespace.
    fn ns(&self, cmd: &[&std::ffi::OsStr]) -> std::process::Output {
        std::process::Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.child.id()))
            .arg("--")
            .args(cmd)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut v: Vec<&std::ffi::OsStr> = vec![self.wlnode.as_os_str()];
        v.extend(args.iter().map(std::ffi::OsStr::new));
        v.extend([
            "--config".as_ref(),
            self.config.as_os_str(),
            "--json".as_ref(),
        ]);
        self.ns(&v)
    }

    fn add(&self, dir: &std::path::Path, name: &str) -> Result<String, String> {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, draft(name).to_string()).unwrap();
        let o = self.cli(&["entry", "add", "--file", file.to_str().unwrap()]);
        if o.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            Ok(v["entry_id"].as_str().unwrap().to_owned())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).into_owned())
        }
    }

    fn names(&self) -> Vec<String> {
        let o = self.cli(&["entry", "list"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn store_status(&self) -> serde_json::Value {
        let o = self.cli(&["status"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["store"].clone()
    }
}

impl Drop for FullDiskNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Found by this test: after a real disk error (ENOSPC here) sled refuses every
/// later write until it is opened again, so the node stayed unwritable after the disk
/// had room again, and the batch whose flush failed stayed visible although its writer
/// got a 503. The store actor now reopens the store once a probe write succeeds.
#[test]
fn node_recovers_after_a_real_full_disk_clears_on_sled() {
    node_recovers_after_a_real_full_disk_clears("sled");
}

#[test]
fn node_recovers_after_a_real_full_disk_clears_on_fjall() {
    node_recovers_after_a_real_full_disk_clears("fjall");
}

fn node_recovers_after_a_real_full_disk_clears(engine: &str) {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let unshare = root
        && std::process::Command::new("unshare")
            .args(["--mount", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !unshare {
        eprintln!(
            "SKIPPED: needs root and `unshare --mount` (a tmpfs data dir in a private mount namespace)"
        );
        return;
    }
    let wlnode = assert_cmd::cargo::cargo_bin("wlnode");
    assert!(wlnode.exists(), "run `cargo build -p wlnode` first");
    let tmp = tempfile::tempdir().unwrap();
    let specs = [wlnode_devtools::scaffold::AgencySpec::member("AA-EXPORT", &["eu"]).unwrap()];
    let fed = wlnode_devtools::scaffold::create(tmp.path(), "disk-federation", &specs).unwrap();
    let node = &fed.nodes[0];
    wlnode_devtools::scaffold::write_config(
        &fed,
        node,
        &wlnode_devtools::scaffold::NodeOptions {
            extra: format!(
                "{}\n[store]\nengine = \"{engine}\"\n",
                wlnode_devtools::scaffold::OPEN_POLICY
            ),
            ..Default::default()
        },
    )
    .unwrap();
    let data = Config::load(&node.config).unwrap().raw.data_dir;
    std::fs::create_dir_all(&data).unwrap();
    let log = std::fs::File::create(tmp.path().join("node.log")).unwrap();
    let child = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=32m tmpfs "$0" && exec "$1" run --config "$2""#)
        .arg(&data)
        .arg(&wlnode)
        .arg(&node.config)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let n = FullDiskNode {
        child,
        wlnode,
        config: node.config.clone(),
        data: data.clone(),
    };
    let dump = || std::fs::read_to_string(tmp.path().join("node.log")).unwrap_or_default();
    let start = std::time::Instant::now();
    while !n
        .ns(&[
            "test".as_ref(),
            "-f".as_ref(),
            n.data.join("api.addr").as_os_str(),
        ])
        .status
        .success()
    {
        assert!(start.elapsed() < T, "node did not start:\n{}", dump());
        std::thread::sleep(Duration::from_millis(200));
    }
    n.add(tmp.path(), "Before Full Trading").unwrap();

    // Fill the disk.
    let ballast = n.data.join("ballast");
    let of = format!("of={}", ballast.display());
    n.ns(&[
        "dd".as_ref(),
        "if=/dev/zero".as_ref(),
        of.as_ref(),
        "bs=1M".as_ref(),
    ]);
    // sled may still place a write or two in space it had already allocated; the
    // first write that needs new space fails with a 503.
    let mut refused = None;
    let mut accepted = vec!["Before Full Trading".to_owned()];
    for k in 0..20 {
        let name = format!("Full Disk Trading {k}");
        match n.add(tmp.path(), &name) {
            Ok(_) => accepted.push(name),
            Err(e) => {
                assert!(e.contains("503"), "{e}");
                refused = Some(name);
                break;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("no write failed on a full disk:\n{}", dump()));
    let s = n.store_status();
    assert_eq!(s["writable"], false, "{s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("No space left"),
        "{s}"
    );
    assert!(
        n.names().contains(&"Before Full Trading".to_owned()),
        "reads"
    );

    // Room again: the next writes go through (after at most a probe interval).
    n.ns(&["rm".as_ref(), "-f".as_ref(), ballast.as_os_str()]);
    let start = std::time::Instant::now();
    loop {
        match n.add(tmp.path(), "After Full Trading") {
            Ok(_) => break,
            Err(e) => assert!(
                start.elapsed() < T,
                "the node did not recover after the disk had room again: {e}\n{}",
                dump()
            ),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(n.store_status()["writable"], true);
    let names = n.names();
    assert!(names.contains(&"After Full Trading".to_owned()));
    for a in &accepted {
        assert!(names.contains(a), "acknowledged {a:?} was lost: {names:?}");
    }
    assert!(
        !names.contains(&refused),
        "the refused write is visible: {names:?}"
    );
}
