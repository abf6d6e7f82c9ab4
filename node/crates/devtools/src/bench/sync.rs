//! `wlnode bench sync`: replication figures with real nodes over loopback TCP.
//!
//! - Cold sync: N records from one node to an empty one, next to raw
//!   `ed25519_dalek::verify_batch` throughput over the same records, same run.
//! - Propagation: one new entry to the last node of a five-node line, p50/p99.
//! - Reconciliation: N shared records, D missing on one side: bytes on the wire and
//!   round trips, next to the bound `1.5 × D × average record bytes + 32 KiB`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use wlnode_crypto::SecretKey;
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::model::{EntryId, Status};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::time::Timestamp;

use super::{
    BenchError, MachineInfo, engine_toml, err, machine, process_cpu_seconds, storage_floors,
    synthetic_draft,
};
use crate::scaffold::{self, AgencySpec, Federation, NodeOptions, OPEN_POLICY};
use wlnode_config::Config;
use wlnode_runtime::RunningNode;
use wlnode_store::floor::Floor;
use wlnode_store::{EngineKind, IngestBatch, Store};
use wlnode_types::{Incoming, Source};

const SYNC_CFG: &str = r#"
[sync]
anti_entropy_interval = "3600s"
reconnect_min = "50ms"
reconnect_max = "1s"
"#;

fn federation(dir: &Path, n: usize) -> Result<Federation, BenchError> {
    const NAMES: [&str; 5] = [
        "AA-EXPORT",
        "BB-CUSTOMS",
        "CC-TRADE",
        "DD-EXPORT",
        "EE-CUSTOMS",
    ];
    let specs: Vec<AgencySpec> = NAMES
        .iter()
        .take(n)
        .map(|a| AgencySpec::member(a, &["eu"]))
        .collect::<Result<_, _>>()
        .map_err(err)?;
    scaffold::create(dir, "bench", &specs).map_err(err)
}

async fn start(
    fed: &Federation,
    i: usize,
    peers: &[(usize, String)],
    extra_cfg: &str,
) -> Result<RunningNode, BenchError> {
    let node = fed.nodes.get(i).ok_or_else(|| err("no such node"))?;
    let opts = NodeOptions {
        peers: peers
            .iter()
            .filter_map(|(j, a)| {
                fed.nodes.get(*j).map(|n| {
                    (
                        n.agency.clone(),
                        if a.is_empty() {
                            vec![]
                        } else {
                            vec![a.clone()]
                        },
                    )
                })
            })
            .collect(),
        extra: format!("{OPEN_POLICY}{SYNC_CFG}{extra_cfg}"),
        ..NodeOptions::default()
    };
    scaffold::write_config(fed, node, &opts).map_err(err)?;
    wlnode_api::start_node(Config::load(&node.config).map_err(err)?)
        .await
        .map_err(err)
}

fn addr(n: &RunningNode) -> String {
    n.listen_addrs
        .first()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

/// Signs `n` records of `origin` with its key from the node folder, in parallel.
fn sign(
    fed: &Federation,
    origin: usize,
    n: usize,
    offset: usize,
) -> Result<Vec<wlnode_crypto::VerifiedRecord>, BenchError> {
    let node = fed.nodes.get(origin).ok_or_else(|| err("no such node"))?;
    let key = read_secret_key(&node.dir.join("agency.key"), KeyKind::Agency).map_err(err)?;
    let agency = node.agency.clone();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = n.div_ceil(threads);
    // Inside the key validity window the scaffold sets (from an hour ago).
    let base = Timestamp::now().as_millis().saturating_sub(1_800_000);
    let key: &SecretKey = &key;
    let chunks: Vec<Result<Vec<_>, BenchError>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let agency = agency.clone();
                s.spawn(move || {
                    let lo = t * per;
                    let hi = (lo + per).min(n);
                    (lo..hi)
                        .map(|i| {
                            let i = i + offset;
                            build_record(
                                RecordMeta {
                                    entry_id: EntryId::random().map_err(err)?,
                                    origin: agency.clone(),
                                    version: 1,
                                    issued_at: Timestamp(base + i as u64),
                                    status: Status::Active,
                                    withdrawal_reason: None,
                                },
                                &synthetic_draft(i)?,
                                key,
                            )
                            .map_err(err)
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(err("signing thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(n);
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}

/// Writes records into a node's store before the node starts (as if created there).
fn preload(
    fed: &Federation,
    i: usize,
    records: &[wlnode_crypto::VerifiedRecord],
    engine: EngineKind,
) -> Result<(), BenchError> {
    let node = fed.nodes.get(i).ok_or_else(|| err("no such node"))?;
    let store = Store::open_with(&node.dir.join("data"), engine).map_err(err)?;
    for chunk in records.chunks(5000) {
        store
            .ingest(
                &IngestBatch {
                    items: chunk
                        .iter()
                        .map(|r| Incoming {
                            record: r.clone(),
                            source: Source::Local,
                            local: None,
                            inclusion: None,
                        })
                        .collect(),
                    cursor: None,
                    declined: Vec::new(),
                    audit: Vec::new(),
                },
                Timestamp::now(),
            )
            .map_err(err)?;
    }
    Ok(())
}

/// Calls `check` every `every` until it gives a value; after `timeout`, fails with
/// the last "not yet" description it gave.
async fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<Result<T, String>, BenchError>,
) -> Result<T, BenchError> {
    let start = Instant::now();
    loop {
        match check().await? {
            Ok(v) => return Ok(v),
            Err(why) if start.elapsed() > timeout => {
                return Err(err(format!("timed out after {timeout:?}: {why}")));
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

async fn wait_records(n: &RunningNode, want: u64, timeout: Duration) -> Result<(), BenchError> {
    poll_until(timeout, Duration::from_millis(20), async || {
        let c = n.services.store.counts().await.map_err(err)?;
        Ok(if c.records >= want {
            Ok(())
        } else {
            Err(format!("{} of {want} records", c.records))
        })
    })
    .await
}

/// Raw `verify_batch` throughput (records/s) over the records' header signatures, in
/// batches of 1024, single thread.
fn raw_verify_batch_rate(records: &[wlnode_crypto::VerifiedRecord]) -> f64 {
    let msgs: Vec<Vec<u8>> = records
        .iter()
        .map(|r| [wlnode_crypto::keys::context::RECORD, r.header_bytes()].concat())
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = records
        .iter()
        .map(|r| ed25519_dalek::Signature::from_bytes(&r.signature().0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = records
        .iter()
        .filter_map(|r| {
            ed25519_dalek::VerifyingKey::from_bytes(r.header().signer_key.as_bytes()).ok()
        })
        .collect();
    let start = Instant::now();
    let mut done = 0usize;
    for ((m, s), k) in msgs
        .chunks(1024)
        .zip(sigs.chunks(1024))
        .zip(keys.chunks(1024))
    {
        let refs: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
        if ed25519_dalek::verify_batch(&refs, s, k).is_ok() {
            done += refs.len();
        }
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Cold-sync figures.
#[derive(Debug, Serialize)]
pub struct ColdSync {
    /// Records synced.
    pub records: usize,
    /// Wall time until the receiver held them all.
    pub seconds: f64,
    /// Records per second, end to end.
    pub records_per_second: f64,
    /// Bound: raw `verify_batch` over the same records, same run.
    pub raw_verify_batch_per_second: f64,
    /// Ratio to the bound.
    pub ratio: f64,
    /// Target ratio.
    pub target_ratio: f64,
    /// Second bound: B's engine alone writing B's bytes again, in batches of B's
    /// `pull_limit` records, same run (see `store::floor`).
    pub storage_floor: Floor,
    /// Every engine's floor for the same bytes, same run.
    pub storage_floors: Vec<Floor>,
    /// records/s divided by the storage floor's records/s (`None` if nothing was
    /// replayed).
    pub ratio_to_storage_floor: Option<f64>,
    /// CPU seconds the whole process (both nodes, every thread) used during the sync.
    /// On this shared VM the CPU's speed drifts between runs, so CPU per record is the
    /// steadier figure for comparing two configurations (audit on and off).
    pub cpu_seconds: f64,
    /// `cpu_seconds` per record, in microseconds.
    pub cpu_us_per_record: f64,
    /// Where the window's CPU went, by thread (both nodes together, per record), with
    /// each group's wait for a core: see [`super::threads`].
    pub threads: Vec<super::threads::ThreadShare>,
    /// Records B received, counted once B's own reconciliation has settled its
    /// backlog (after the timed window): more than `records` means some arrived twice.
    pub records_delivered: u64,
}

/// Propagation figures.
#[derive(Debug, Serialize)]
pub struct Propagation {
    /// Nodes in the line.
    pub nodes: usize,
    /// Entries timed.
    pub samples: usize,
    /// Median milliseconds from signing at the first node to storage at the last.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Target p50.
    pub target_p50_ms: f64,
}

/// Reconciliation figures.
#[derive(Debug, Serialize)]
pub struct Reconciliation {
    /// Records both hold.
    pub shared: usize,
    /// Records only one side holds.
    pub missing: usize,
    /// Sync-protocol bytes exchanged (both directions, all frames).
    pub bytes: u64,
    /// Average encoded record size.
    pub record_bytes: f64,
    /// Bound: 1.5 × missing × record bytes + 32 KiB.
    pub bound_bytes: f64,
    /// bytes / bound.
    pub ratio: f64,
    /// Reconciliation request/response round trips.
    pub round_trips: u64,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct SyncReport {
    /// Machine.
    pub machine: MachineInfo,
    /// The storage engine both nodes ran on.
    pub engine: EngineKind,
    /// Whether the nodes kept the audit log.
    pub audit: bool,
    /// Cold sync.
    pub cold_sync: ColdSync,
    /// Propagation.
    pub propagation: Propagation,
    /// Reconciliation.
    pub reconciliation: Reconciliation,
}

/// Cold sync of `n` records from A to an empty B.
pub async fn cold_sync(
    n: usize,
    dir: &Path,
    extra: &str,
    engine: EngineKind,
) -> Result<ColdSync, BenchError> {
    let fed = federation(dir, 2)?;
    let records = tokio::task::block_in_place(|| sign(&fed, 0, n, 0))?;
    tokio::task::block_in_place(|| preload(&fed, 0, &records, engine))?;
    let raw = tokio::task::block_in_place(|| raw_verify_batch_rate(&records));
    drop(records);
    let a = start(&fed, 0, &[(1, String::new())], extra).await?;
    // A serving node has long built its screening index; A's start-up build (a scan
    // of its preloaded records) is not cold-sync work, and shared the two cores with
    // the timed window: 33-48 us of CPU per synced record at 100k (BENCHMARKS.md
    // "Storage engines, fourth pass").
    if !a
        .services
        .screen
        .wait_ready(Duration::from_secs(3600))
        .await
    {
        return Err(err("node A's screening index was not ready within an hour"));
    }
    let t = Instant::now();
    let cpu = process_cpu_seconds();
    let t0 = super::threads::snapshot();
    let b = start(&fed, 1, &[(0, addr(&a))], extra).await?;
    wait_records(&b, n as u64, Duration::from_secs(3600)).await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu;
    let by_thread = super::threads::shares(&t0, &super::threads::snapshot(), n, cpu);
    let delivered = settled_deliveries(&b, n as u64, Duration::from_secs(600)).await?;
    b.stop().await;
    a.stop().await;
    let b_cfg =
        Config::load(&fed.nodes.get(1).ok_or_else(|| err("no node B"))?.config).map_err(err)?;
    let pull_limit = usize::try_from(b_cfg.raw.sync.pull_limit).unwrap_or(1000);
    let (floor, floors) = tokio::task::block_in_place(|| {
        storage_floors(&b_cfg.raw.data_dir, &dir.join("storage-floor"), pull_limit)
    })?;
    let rate = n as f64 / secs;
    Ok(ColdSync {
        records: n,
        seconds: secs,
        records_per_second: rate,
        raw_verify_batch_per_second: raw,
        ratio: rate / raw,
        target_ratio: 0.6,
        cpu_seconds: cpu,
        cpu_us_per_record: cpu / n.max(1) as f64 * 1e6,
        threads: by_thread,
        records_delivered: delivered,
        ratio_to_storage_floor: floor.ratio(rate),
        storage_floor: floor,
        storage_floors: floors,
    })
}

/// Once B's own session has settled its backlog (after the timed window), how many
/// records B received from its one peer: a record delivered twice counts twice.
async fn settled_deliveries(
    b: &RunningNode,
    want: u64,
    timeout: Duration,
) -> Result<u64, BenchError> {
    poll_until(timeout, Duration::from_millis(100), async || {
        let peer = b
            .services
            .peers
            .read()
            .map_err(|_| err("peer table poisoned"))?
            .values()
            .next()
            .cloned();
        // The table shows no pending backlog before the first Hello, so also wait
        // for the records B is known to hold.
        Ok(match peer {
            Some(p) if !p.backlog_pending && p.records_received >= want => Ok(p.records_received),
            _ => Err("backlog still pending".to_owned()),
        })
    })
    .await
}

/// Propagation of `samples` entries along a five-node line.
pub async fn propagation(
    samples: usize,
    dir: &Path,
    extra: &str,
) -> Result<Propagation, BenchError> {
    let fed = federation(dir, 5)?;
    let mut nodes: Vec<RunningNode> = Vec::new();
    for i in 0..5 {
        let peers: Vec<(usize, String)> = match i {
            0 => vec![(1, String::new())],
            _ => {
                let mut p = vec![(i - 1, nodes.get(i - 1).map(addr).unwrap_or_default())];
                if i < 4 {
                    p.push((i + 1, String::new()));
                }
                p
            }
        };
        nodes.push(start(&fed, i, &peers, extra).await?);
    }
    let first = nodes.first().ok_or_else(|| err("no nodes"))?;
    let last = nodes.last().ok_or_else(|| err("no nodes"))?;
    // Wait until the line is connected end to end.
    let probe = first
        .services
        .lifecycle
        .add(synthetic_draft(999_999)?)
        .await
        .map_err(err)?;
    first.services.ingested.after_ingest(&probe.1, "local");
    wait_records(last, 1, Duration::from_secs(120)).await?;
    let mut lat = Vec::with_capacity(samples);
    for k in 0..samples {
        let before = last.services.store.counts().await.map_err(err)?.records;
        let t = Instant::now();
        let (_, report) = first
            .services
            .lifecycle
            .add(synthetic_draft(k)?)
            .await
            .map_err(err)?;
        first.services.ingested.after_ingest(&report, "local");
        wait_records(last, before + 1, Duration::from_secs(60)).await?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for n in nodes {
        n.stop().await;
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Propagation {
        nodes: 5,
        samples,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        target_p50_ms: 100.0,
    })
}

/// Reconciliation with `n` shared records and `d` missing on one side.
pub async fn reconciliation(
    n: usize,
    d: usize,
    dir: &Path,
    extra: &str,
    engine: EngineKind,
) -> Result<Reconciliation, BenchError> {
    let fed = federation(dir, 2)?;
    let shared = tokio::task::block_in_place(|| sign(&fed, 0, n, 0))?;
    let extra_records = tokio::task::block_in_place(|| sign(&fed, 0, d, n))?;
    let record_bytes = extra_records
        .iter()
        .map(|r| r.encode().len())
        .sum::<usize>() as f64
        / d.max(1) as f64;
    tokio::task::block_in_place(|| {
        preload(&fed, 0, &shared, engine)?;
        preload(&fed, 0, &extra_records, engine)?;
        preload(&fed, 1, &shared, engine)
    })?;
    drop(shared);
    let a = start(&fed, 0, &[(1, String::new())], extra).await?;
    let b = start(&fed, 1, &[(0, addr(&a))], extra).await?;
    wait_records(&b, (n + d) as u64, Duration::from_secs(600)).await?;
    // Let the session's last round trip finish before reading the counters.
    let counter_of = |node: &RunningNode, name: &str| -> u64 {
        node.services
            .metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    let mut last = (0, 0);
    for _ in 0..50 {
        let now = (
            counter_of(&a, "wlnode_sync_bytes_total"),
            counter_of(&b, "wlnode_reconcile_rounds_total")
                + counter_of(&a, "wlnode_reconcile_rounds_total"),
        );
        if now == last && now.1 > 0 {
            break;
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bytes = counter_of(&a, "wlnode_sync_bytes_total");
    let rounds = counter_of(&a, "wlnode_reconcile_rounds_total")
        + counter_of(&b, "wlnode_reconcile_rounds_total");
    b.stop().await;
    a.stop().await;
    let bound = 1.5 * d as f64 * record_bytes + 32.0 * 1024.0;
    Ok(Reconciliation {
        shared: n,
        missing: d,
        bytes,
        record_bytes,
        bound_bytes: bound,
        ratio: bytes as f64 / bound,
        round_trips: rounds,
    })
}

/// All three figures.
pub async fn run(
    records: usize,
    samples: usize,
    missing: usize,
    audit: bool,
    engine: EngineKind,
    dir: &Path,
) -> Result<SyncReport, BenchError> {
    let extra = format!(
        "{}{}",
        if audit {
            ""
        } else {
            "\n[audit]\nenabled = false\n"
        },
        engine_toml(engine)
    );
    let extra = extra.as_str();
    let cold = cold_sync(records, &dir.join("cold"), extra, engine).await?;
    let prop = propagation(samples, &dir.join("prop"), extra).await?;
    let rec = reconciliation(records, missing, &dir.join("rec"), extra, engine).await?;
    Ok(SyncReport {
        machine: machine(),
        engine,
        audit,
        cold_sync: cold,
        propagation: prop,
        reconciliation: rec,
    })
}
