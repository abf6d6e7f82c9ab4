//! `wlnode bench federation`: load and scale figures for issue 9 with N real
//! `wlnode run` processes on this machine. Each origin is seeded alone first (so
//! seeding costs nothing in the figures); then every node restarts with its peers
//! (mesh or ring) on the same ports, and the run measures the time until every node
//! holds every record, each node's peak RSS (VmHWM) and CPU time (utime + stime from
//! /proc), and CPU seconds per 1,000 records replicated.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use wlnode_client::ImportRow;
use wlnode_crypto::model::EntryDraft;
use wlnode_devtools::scaffold::{self, AgencySpec, NodeOptions};

use super::procs::{Child, start_node, stop_all, tail};

/// How the nodes are linked.
#[derive(Clone, Copy, Debug, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Every node peers with every other node.
    Mesh,
    /// Node i peers with i-1 and i+1 (records relay around the ring).
    Ring,
}

/// One node's figures.
#[derive(Debug, Serialize)]
struct NodeFigures {
    agency: String,
    own_records: u64,
    replicated_records: u64,
    seconds_to_full: Option<f64>,
    peak_rss_mib: Option<f64>,
    cpu_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    machine: wlnode_devtools::bench::MachineInfo,
    load_average_before: String,
    load_average_after: String,
    nodes: usize,
    topology: Topology,
    records: u64,
    seed_seconds: f64,
    converged: bool,
    /// From spawning the processes with peers to every node holding every record.
    seconds_to_converge: Option<f64>,
    records_replicated: u64,
    cpu_seconds_total: Option<f64>,
    cpu_seconds_per_1k_replicated: Option<f64>,
    peak_rss_mib_max: Option<f64>,
    per_node: Vec<NodeFigures>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Peak resident set size of `pid` in MiB (VmHWM).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// User plus system CPU seconds of `pid`. /proc reports clock ticks of USER_HZ,
/// which is 100 on Linux for every architecture wlnode targets.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn agency_code(i: usize) -> anyhow::Result<String> {
    let c = char::from(b'A' + u8::try_from(i).context("too many nodes")?);
    Ok(format!("{c}{c}-BENCH"))
}

/// Runs the benchmark in `dir`.
pub async fn run(
    nodes: usize,
    records: usize,
    topology: Topology,
    timeout: Duration,
    dir: &Path,
) -> anyhow::Result<serde_json::Value> {
    if !(2..=26).contains(&nodes) {
        bail!("--nodes must be 2 to 26");
    }
    let load_before = load_average();
    let specs: Vec<AgencySpec> = (0..nodes)
        .map(|i| Ok(AgencySpec::member(&agency_code(i)?, &["eu"])?))
        .collect::<anyhow::Result<_>>()?;
    let fed = scaffold::create(dir, "bench-federation", &specs)?;
    let sync = "\n[sync]\nanti_entropy_interval = \"10s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"2s\"\n";
    let extra = format!("{}{sync}", scaffold::OPEN_POLICY);

    // Phase 1: each origin alone, seeded through its import API.
    let mut children: Vec<Child> = Vec::new();
    let result = async {
        for node in &fed.nodes {
            scaffold::write_config(
                &fed,
                node,
                &NodeOptions {
                    extra: extra.clone(),
                    ..NodeOptions::default()
                },
            )?;
            children.push(start_node(node, "member").await?);
        }
        let share = |i: usize| records / nodes + usize::from(i < records % nodes);
        let t_seed = Instant::now();
        let mut tasks = Vec::new();
        let mut first = 0usize;
        for (i, c) in children.iter().enumerate() {
            let client = c.client.clone();
            let range = first..first + share(i);
            first = range.end;
            tasks.push(tokio::spawn(async move {
                let ids: Vec<String> = range.clone().map(|k| format!("bench-{k}")).collect();
                let drafts: Vec<EntryDraft> = range
                    .map(wlnode_devtools::bench::synthetic_draft)
                    .collect::<Result<_, _>>()?;
                for (d, id) in drafts.chunks(1000).zip(ids.chunks(1000)) {
                    let rows: Vec<ImportRow<'_>> = d
                        .iter()
                        .zip(id)
                        .map(|(entry, source_id)| ImportRow { source_id, entry })
                        .collect();
                    let reply = client.import_batch("bench", &rows).await?;
                    if let Some(f) = reply.results.iter().find(|r| r.result == "failed") {
                        bail!("seeding failed: {}", f.error.clone().unwrap_or_default());
                    }
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let seed_seconds = t_seed.elapsed().as_secs_f64();
        errln!("seeded {records} records at {nodes} origins in {seed_seconds:.1} s");
        let listen: Vec<Vec<String>> = children.iter().map(|c| c.listen.clone()).collect();
        stop_all(&mut children).await;
        children.clear();

        // Phase 2: every node with its peers, on the ports it had.
        for (i, node) in fed.nodes.iter().enumerate() {
            let linked = |j: usize| match topology {
                Topology::Mesh => j != i,
                Topology::Ring => j == (i + 1) % nodes || (j + 1) % nodes == i,
            };
            let peers = fed
                .nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| linked(*j))
                .map(|(j, o)| (o.agency.clone(), listen.get(j).cloned().unwrap_or_default()))
                .collect();
            let own = listen
                .get(i)
                .and_then(|l| l.first())
                .and_then(|a| a.split("/p2p/").next())
                .context("a node had no listen address")?
                .to_owned();
            scaffold::write_config(
                &fed,
                node,
                &NodeOptions {
                    listen: own,
                    peers,
                    extra: extra.clone(),
                    ..NodeOptions::default()
                },
            )?;
        }
        let t0 = Instant::now();
        let started =
            futures::future::join_all(fed.nodes.iter().map(|n| start_node(n, "member"))).await;
        for s in started {
            children.push(s?);
        }
        errln!(
            "{nodes} nodes started with peers ({topology:?}) in {:.1} s; replicating...",
            t0.elapsed().as_secs_f64()
        );
        let total = records as u64;
        let mut full: Vec<Option<f64>> = vec![None; nodes];
        let mut last_report = Instant::now();
        let converged = loop {
            for c in children.iter_mut() {
                if let Some(status) = c.process.try_wait()? {
                    bail!(
                        "{} exited ({status}); its log ends with:\n{}",
                        c.agency,
                        tail(&c.log, 15)
                    );
                }
            }
            // Concurrently: a busy node's store answers status only after the ingest
            // jobs queued before it, so one slow node must not delay the others'
            // readings. A node counts as full at the moment its answer arrives (an
            // upper bound, by that queueing delay).
            let done: Vec<bool> = full.iter().map(Option::is_some).collect();
            let done = &done;
            let counts =
                futures::future::join_all(children.iter().enumerate().map(|(i, c)| async move {
                    if done.get(i).copied().unwrap_or(true) {
                        return None;
                    }
                    let s = c.client.status().await.ok()?;
                    Some(s.get("records").and_then(serde_json::Value::as_u64) == Some(total))
                        .filter(|b| *b)
                        .map(|_| t0.elapsed().as_secs_f64())
                }))
                .await;
            for (slot, at) in full.iter_mut().zip(counts) {
                if slot.is_none() {
                    *slot = at;
                }
            }
            if full.iter().all(Option::is_some) {
                break true;
            }
            if t0.elapsed() > timeout {
                break false;
            }
            if last_report.elapsed() > Duration::from_secs(10) {
                last_report = Instant::now();
                errln!(
                    "  {:.0} s: {}/{nodes} nodes hold all {total} records",
                    t0.elapsed().as_secs_f64(),
                    full.iter().filter(|f| f.is_some()).count()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let seconds = converged.then(|| t0.elapsed().as_secs_f64());
        let mut per_node = Vec::new();
        for (i, c) in children.iter().enumerate() {
            let pid = c.process.id();
            let own = share(i) as u64;
            per_node.push(NodeFigures {
                agency: c.agency.clone(),
                own_records: own,
                replicated_records: total - own,
                seconds_to_full: full.get(i).copied().flatten(),
                peak_rss_mib: pid.and_then(peak_rss_mib),
                cpu_seconds: pid.and_then(cpu_seconds),
            });
        }
        let replicated: u64 = per_node.iter().map(|n| n.replicated_records).sum();
        let cpu: Option<f64> = per_node.iter().map(|n| n.cpu_seconds).sum();
        let report = Report {
            bench: "federation",
            machine: wlnode_devtools::bench::machine(),
            load_average_before: load_before,
            load_average_after: load_average(),
            nodes,
            topology,
            records: total,
            seed_seconds,
            converged,
            seconds_to_converge: seconds,
            records_replicated: replicated,
            cpu_seconds_total: cpu,
            cpu_seconds_per_1k_replicated: cpu
                .filter(|_| replicated > 0)
                .map(|c| c / (replicated as f64 / 1000.0)),
            peak_rss_mib_max: per_node
                .iter()
                .filter_map(|n| n.peak_rss_mib)
                .reduce(f64::max),
            per_node,
        };
        Ok(serde_json::to_value(report)?)
    }
    .await;
    stop_all(&mut children).await;
    result
}
