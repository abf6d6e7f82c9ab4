//! End-to-end benchmarks behind `wlnode bench ...`, each reporting its figure next to
//! the bound it is compared with, measured in the same run. Results are JSON so that
//! BENCHMARKS.md can quote them verbatim.
//!
//! These are measurements, never assertions: nothing here fails on a slow machine.

pub mod audit;
pub mod matching;
pub mod sync;
pub mod threads;

use std::path::Path;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{AgencyCode, EntryDraft, EntryId, Status};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::time::Timestamp;

use crate::scaffold::{self, AgencySpec, NodeOptions};
use wlnode_client::{Client, ImportRow};
use wlnode_config::Config;
use wlnode_store::floor::Floor;
use wlnode_store::{Counts, EngineKind, IngestBatch, Store};
use wlnode_types::{Incoming, Source};

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[error("benchmark failed: {0}")]
pub struct BenchError(pub String);

pub(crate) fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}

/// Machine facts printed with every report.
#[derive(Debug, Serialize)]
pub struct MachineInfo {
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU model.
    pub cpu: String,
    /// wlnode version.
    pub wlnode: &'static str,
}

/// Reads the machine facts.
pub fn machine() -> MachineInfo {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    MachineInfo {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        wlnode: env!("CARGO_PKG_VERSION"),
    }
}

/// A realistic synthetic entry with about ten content fields.
pub fn synthetic_draft(i: usize) -> Result<EntryDraft, BenchError> {
    let person = i.is_multiple_of(3);
    const COUNTRIES: [&str; 5] = ["AE", "IR", "RU", "CN", "TR"];
    const REASONS: [&str; 4] = ["denial", "diversion-risk", "sanctions", "wmd-end-use"];
    const CATEGORIES: [&str; 4] = ["3A001", "5A002", "1C011", "9A012"];
    let pick = |list: &[&'static str], k: usize| list.get(k % list.len()).copied().unwrap_or("AE");
    let json = serde_json::json!({
        "subject": {
            "kind": if person { "person" } else { "organization" },
            "name": if person { format!("Person Number{i} Synthetic") } else { format!("Synthetic Trading {i} FZE") },
            "aliases": [format!("ALIAS {i}"), format!("Alias Two {i}")],
            "country": pick(&COUNTRIES, i),
            "addresses": [format!("{} Industrial Road, Free Zone {}", i % 997, i % 13)],
            "identifiers": [{"type": if person { "passport" } else { "registration" }, "value": format!("ID{i:08}")}],
            "birth_date": format!("{}-{:02}", 1950 + i % 50, 1 + i % 12),
            "nationality": pick(&COUNTRIES, i / 5)
        },
        "reason": pick(&REASONS, i),
        "categories": [pick(&CATEGORIES, i)],
        "legal_basis": "Regulation (EU) 2021/821 Art. 4",
        "items": "Dual-use items, see categories",
        "remarks": format!("Synthetic benchmark entry {i}")
    });
    serde_json::from_value(json).map_err(err)
}

/// Raw ed25519 signatures per second over all cores, signing `n` messages of
/// `msg_len` bytes.
///
/// Measured with one thread and with one per CPU; the better figure is the bound (on
/// shared VMs two vCPUs may not sign faster than one).
pub fn raw_sign_rate(n: usize, msg_len: usize) -> f64 {
    let cpus = std::thread::available_parallelism().map_or(1, |t| t.get());
    sign_rate_threads(n, msg_len, 1).max(sign_rate_threads(n, msg_len, cpus))
}

fn sign_rate_threads(n: usize, msg_len: usize, threads: usize) -> f64 {
    let key = SecretKey::from_seed(&[9; 32]);
    let msg = vec![7u8; msg_len];
    let per = n.div_ceil(threads);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    std::hint::black_box(key.sign(wlnode_crypto::keys::context::RECORD, &msg));
                }
            });
        }
    });
    (per * threads) as f64 / start.elapsed().as_secs_f64()
}

/// Result of `wlnode bench import`.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// Machine.
    pub machine: MachineInfo,
    /// Entries imported.
    pub entries: usize,
    /// Fields per entry.
    pub fields_per_entry: usize,
    /// Rows per API request.
    pub batch: usize,
    /// Wall time.
    pub seconds: f64,
    /// Entries per second, end to end through the HTTP API (JSON, validation,
    /// signing, the store's transaction and fsync).
    pub entries_per_second: f64,
    /// CPU seconds the whole process (node and client, every thread) used while
    /// importing: on this shared VM the steadier figure for comparing two builds.
    pub cpu_seconds: f64,
    /// `cpu_seconds` per entry, in microseconds (20,000 entries/s on two cores allows
    /// at most 100).
    pub cpu_us_per_entry: f64,
    /// Wall time per entry, in microseconds (20,000 entries/s is 50).
    pub wall_us_per_entry: f64,
    /// Where the import window's CPU went, by thread (per entry), with each group's
    /// wait for a core: see [`threads`].
    pub threads: Vec<threads::ThreadShare>,
    /// Bound: raw ed25519 signatures per second on all cores, same run.
    pub raw_signatures_per_second: f64,
    /// entries/s divided by signatures/s.
    pub ratio_to_signing_bound: f64,
    /// Target from the issue.
    pub target_entries_per_second: f64,
    /// Store bytes on disk after the import, per record.
    pub disk_bytes_per_record: f64,
    /// Average encoded record size.
    pub record_bytes: f64,
    /// disk / record.
    pub disk_overhead: f64,
    /// After the last import reply: seconds until the live screening index reflected
    /// every imported record (it follows the log concurrently with the import).
    pub screen_catch_up_seconds: f64,
    /// Restarting the node on the imported store: seconds from start until the
    /// screening index (scanned from the store and built) was ready.
    pub screen_start_build_seconds: f64,
    /// Entries in the rebuilt index.
    pub screen_entries: usize,
    /// The storage engine the node ran on.
    pub engine: EngineKind,
    /// Every engine's floor for the same bytes, same run.
    pub storage_floors: Vec<Floor>,
    /// Second bound: the store's engine alone writing the same bytes again, in batches of
    /// `batch` records, same run (see `store::floor`).
    pub storage_floor: Floor,
    /// entries/s divided by the storage floor's records/s (`None` if nothing was
    /// replayed).
    pub ratio_to_storage_floor: Option<f64>,
}

/// Opens the (stopped) node's store in `data_dir` and replays its writes into a fresh
/// database of every engine under `target`, the store's own engine last: the storage
/// floors reported next to ingest rates (the store's own, and every engine's for the
/// same bytes, same run). Each replay's folder is removed after it.
pub(crate) fn storage_floors(
    data_dir: &Path,
    target: &Path,
    batch: usize,
) -> Result<(Floor, Vec<Floor>), BenchError> {
    let store = Store::open(data_dir).map_err(err)?;
    let own = store.engine();
    let mut all = Vec::new();
    let mut order: Vec<EngineKind> = EngineKind::ALL.into_iter().filter(|k| *k != own).collect();
    order.push(own);
    for kind in order {
        let t = target.join(kind.as_str());
        let f = store
            .replay_floor(kind, &t, batch, thread_cpu_seconds)
            .map_err(err)?;
        let _ = std::fs::remove_dir_all(&t);
        all.push(f);
    }
    let own_floor = all
        .iter()
        .find(|f| f.engine == own)
        .cloned()
        .ok_or_else(|| err("no floor of the store's own engine"))?;
    all.sort_by_key(|f| f.engine.as_str());
    Ok((own_floor, all))
}

/// `[store] engine = ...` for a benchmark node's config.
pub(crate) fn engine_toml(engine: EngineKind) -> String {
    format!("\n[store]\nengine = \"{engine}\"\n")
}

/// Import requests the bench keeps in flight (as `wlnode import` does).
const IMPORTS_IN_FLIGHT: usize = 2;

/// Imports `n` synthetic entries into a fresh in-process node through its HTTP API.
pub async fn import(
    n: usize,
    batch: usize,
    engine: EngineKind,
    dir: &Path,
) -> Result<ImportReport, BenchError> {
    // The bound first, on an idle machine.
    let sign_rate = tokio::task::spawn_blocking(move || raw_sign_rate(n.clamp(1000, 50_000), 700))
        .await
        .map_err(err)?;
    let fed = scaffold::create(
        dir,
        "bench",
        &[AgencySpec::member("AA-EXPORT", &["eu"]).map_err(err)?],
    )
    .map_err(err)?;
    let node = fed.nodes.first().ok_or_else(|| err("no node"))?;
    scaffold::write_config(
        &fed,
        node,
        &NodeOptions {
            extra: engine_toml(engine),
            ..NodeOptions::default()
        },
    )
    .map_err(err)?;
    let cfg = Config::load(&node.config).map_err(err)?;
    let token = wlnode_config::token::read_token(&cfg.raw.api.token_file).map_err(err)?;
    let data_dir = cfg.raw.data_dir.clone();
    let running = wlnode_api::start_node(cfg).await.map_err(err)?;
    let client = Client::new(running.api_addr, token, "bench".into()).map_err(err)?;
    let drafts: Vec<EntryDraft> = (0..n).map(synthetic_draft).collect::<Result<_, _>>()?;
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let fields =
        wlnode_crypto::record::draft_fields(drafts.first().ok_or_else(|| err("n = 0"))?, None)
            .len();
    let start = Instant::now();
    let cpu = process_cpu_seconds();
    let t0 = threads::snapshot();
    // Two requests in flight, as `wlnode import` sends them: the node judges the next
    // batch while the one before commits.
    let mut replies = futures::stream::iter(drafts.chunks(batch).zip(ids.chunks(batch)))
        .map(|(chunk, idc)| {
            let client = &client;
            async move {
                let rows: Vec<ImportRow<'_>> = chunk
                    .iter()
                    .zip(idc)
                    .map(|(d, id)| ImportRow {
                        source_id: id,
                        entry: d,
                    })
                    .collect();
                client.import_batch("bench", &rows).await
            }
        })
        .buffered(IMPORTS_IN_FLIGHT);
    while let Some(reply) = replies.next().await {
        let reply = reply.map_err(err)?;
        if reply.results.iter().any(|r| r.result == "failed") {
            return Err(err("a benchmark row failed"));
        }
    }
    drop(replies);
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu;
    let by_thread = threads::shares(&t0, &threads::snapshot(), n, cpu_seconds);
    let caught_up = Instant::now();
    let head = running.services.ingested.head();
    running
        .services
        .screen
        .wait_applied(head, std::time::Duration::from_secs(3600))
        .await;
    let screen_catch_up_seconds = caught_up.elapsed().as_secs_f64();
    let (disk, counts, avg) = running
        .services
        .store
        .call(|s| {
            let c = s.counts()?;
            let mut total = 0usize;
            let mut k = 0usize;
            for (_, id) in s.log_after(0, 1000)? {
                if let Some(r) = s.record(&id)? {
                    total += r.record.encode().len();
                    k += 1;
                }
            }
            Ok((s.size_on_disk()?, c, total as f64 / k.max(1) as f64))
        })
        .await
        .map_err(err)?;
    running.stop().await;
    let restarted = Instant::now();
    let running = wlnode_api::start_node(Config::load(&node.config).map_err(err)?)
        .await
        .map_err(err)?;
    running
        .services
        .screen
        .wait_ready(std::time::Duration::from_secs(3600))
        .await;
    let screen_start_build_seconds = restarted.elapsed().as_secs_f64();
    let screen_entries = running.services.screen.len();
    running.stop().await;
    let (floor, floors) = tokio::task::block_in_place(|| {
        storage_floors(&data_dir, &dir.join("storage-floor"), batch)
    })?;
    let eps = n as f64 / seconds;
    let per_record = disk as f64 / counts.records.max(1) as f64;
    Ok(ImportReport {
        machine: machine(),
        entries: n,
        fields_per_entry: fields,
        batch,
        seconds,
        entries_per_second: eps,
        cpu_seconds,
        cpu_us_per_entry: cpu_seconds / n.max(1) as f64 * 1e6,
        wall_us_per_entry: seconds / n.max(1) as f64 * 1e6,
        threads: by_thread,
        raw_signatures_per_second: sign_rate,
        ratio_to_signing_bound: eps / sign_rate,
        target_entries_per_second: 20_000.0,
        disk_bytes_per_record: per_record,
        record_bytes: avg,
        disk_overhead: per_record / avg.max(1.0),
        screen_catch_up_seconds,
        screen_start_build_seconds,
        screen_entries,
        engine,
        storage_floors: floors,
        ratio_to_storage_floor: floor.ratio(eps),
        storage_floor: floor,
    })
}

/// Result of `wlnode bench store`.
#[derive(Debug, Serialize)]
pub struct StoreReport {
    /// Machine.
    pub machine: MachineInfo,
    /// The storage engine.
    pub engine: EngineKind,
    /// Records in the store.
    pub records: u64,
    /// Time to fill it (signing excluded).
    pub fill_seconds: f64,
    /// CPU time of the ingesting thread per record while filling, in microseconds:
    /// unlike wall time, barely moved by other load on a shared machine.
    pub ingest_cpu_us_per_record: f64,
    /// Time to open it again and read its counts and last log entry. The fill ends
    /// as a crash just before a periodic checkpoint would (none after the last
    /// batch, no clean-stop one), so this replays the most writes a crash can leave.
    pub open_seconds: f64,
    /// The periodic checkpoints (sled reopened) during the fill, as the store actor
    /// does them: seconds each, included in `fill_seconds`.
    pub checkpoint_seconds: Vec<f64>,
    /// Time to open it a second time (after a clean open and close, with nothing
    /// written in between).
    pub reopen_seconds: f64,
    /// Target open time.
    pub target_open_seconds: f64,
    /// Bytes on disk per record.
    pub disk_bytes_per_record: f64,
    /// Average encoded record size.
    pub record_bytes: f64,
    /// disk / record.
    pub disk_overhead: f64,
    /// Goal for `disk_overhead`.
    pub target_disk_overhead: f64,
    /// Every engine's floor for the same bytes (batches of 5,000 records), same run.
    pub storage_floors: Vec<Floor>,
}

/// Fills a store on `engine` with `n` records (batches of 5,000), closes it and times
/// a reopen.
pub fn store(n: usize, engine: EngineKind, dir: &Path) -> Result<StoreReport, BenchError> {
    let key = SecretKey::from_seed(&[5; 32]);
    let origin = AgencyCode::new("AA-EXPORT").map_err(err)?;
    let path = dir.join("store");
    let mut fill = 0f64;
    let mut fill_cpu = 0f64;
    let mut bytes = 0usize;
    let mut checkpoint_seconds: Vec<f64> = Vec::new();
    {
        let mut store = Store::open_with(&path, engine).map_err(err)?;
        let chunk = 5000;
        let mut i = 0;
        while i < n {
            let m = chunk.min(n - i);
            let recs = sign_many(&key, &origin, i, m)?;
            bytes += recs.iter().map(|r| r.encode().len()).sum::<usize>();
            let batch = IngestBatch {
                items: recs
                    .into_iter()
                    .map(|record| Incoming {
                        record,
                        source: Source::Local,
                        local: None,
                        inclusion: None,
                    })
                    .collect(),
                cursor: None,
                declined: Vec::new(),
                audit: Vec::new(),
            };
            let t = Instant::now();
            let c = thread_cpu_seconds();
            store.ingest(&batch, Timestamp::now()).map_err(err)?;
            fill_cpu += thread_cpu_seconds() - c;
            fill += t.elapsed().as_secs_f64();
            i += m;
            // What the store actor does after many writes; except after the last
            // batch, so that the store is left as by a crash just before a checkpoint
            // was due: the next open replays the longest stretch a crash can leave.
            if i < n && wlnode_store::checkpoint_due(&store) {
                let t = Instant::now();
                store = store.reopen().map_err(|(_, e)| err(e))?;
                let s = t.elapsed().as_secs_f64();
                checkpoint_seconds.push(s);
                fill += s;
            }
        }
    }
    // Open, read the counts and the last log entry: what a node does at start.
    let timed_open = || -> Result<(Store, Counts, f64), BenchError> {
        let t = Instant::now();
        let store = Store::open(&path).map_err(err)?;
        let counts = store.counts().map_err(err)?;
        let head = store.head_seq().map_err(err)?;
        let _ = store.log_after(head.saturating_sub(1), 1).map_err(err)?;
        Ok((store, counts, t.elapsed().as_secs_f64()))
    };
    let (store, counts, open_seconds) = timed_open()?;
    drop(store);
    let (store, again, reopen_seconds) = timed_open()?;
    if again.records != counts.records {
        return Err(err(format!(
            "record count changed across reopening: {} then {}",
            counts.records, again.records
        )));
    }
    let disk = store.size_on_disk().map_err(err)?;
    let per = disk as f64 / counts.records.max(1) as f64;
    let avg = bytes as f64 / n.max(1) as f64;
    drop(store);
    let (_, floors) = storage_floors(&path, &dir.join("storage-floor"), 5000)?;
    Ok(StoreReport {
        machine: machine(),
        engine,
        storage_floors: floors,
        target_disk_overhead: 2.0,
        records: counts.records,
        fill_seconds: fill,
        ingest_cpu_us_per_record: fill_cpu * 1e6 / n.max(1) as f64,
        open_seconds,
        checkpoint_seconds,
        reopen_seconds,
        target_open_seconds: 2.0,
        disk_bytes_per_record: per,
        record_bytes: avg,
        disk_overhead: per / avg.max(1.0),
    })
}

/// CPU seconds used by the calling thread so far (0 if the clock is unavailable).
pub fn thread_cpu_seconds() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
        .unwrap_or(0.0)
}

/// CPU seconds used by the whole process (every thread) so far (0 if unavailable).
pub fn process_cpu_seconds() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 * 1e-9)
        .unwrap_or(0.0)
}

fn sign_many(
    key: &SecretKey,
    origin: &AgencyCode,
    start: usize,
    n: usize,
) -> Result<Vec<wlnode_crypto::VerifiedRecord>, BenchError> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let per = n.div_ceil(threads);
    let now = Timestamp::now().as_millis();
    let results: Vec<Result<Vec<_>, BenchError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let lo = start + t * per;
                    let hi = (lo + per).min(start + n);
                    (lo..hi)
                        .map(|i| {
                            build_record(
                                RecordMeta {
                                    entry_id: EntryId::random().map_err(err)?,
                                    origin: origin.clone(),
                                    version: 1,
                                    issued_at: Timestamp(now + i as u64),
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
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(err("signing thread panicked")))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(n);
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}
