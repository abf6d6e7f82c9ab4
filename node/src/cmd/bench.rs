//! `wlnode bench ...`: end-to-end benchmarks with JSON output (see BENCHMARKS.md).

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use wlnode_devtools::screen_bench::BenchOptions;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Verify N synthetic audit events (a sender's and a receiver's log) as an
    /// auditor would; reports events/s.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Distinct records the sends refer to (each sent header is still checked).
        #[arg(long, default_value_t = 20_000)]
        distinct_records: usize,
    },
    /// Import N synthetic entries through the HTTP API of a fresh node; reports
    /// entries/s next to raw ed25519 signatures/s measured in the same run.
    Import {
        #[arg(long, default_value_t = 100_000)]
        entries: usize,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// The node's storage engine (every engine's floor is reported either way).
        #[arg(long, default_value = "sled")]
        engine: wlnode_store::EngineKind,
    },
    /// Fill a store with N records, then time reopening it; reports disk per record.
    Store {
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// The storage engine (every engine's floor is reported either way).
        #[arg(long, default_value = "sled")]
        engine: wlnode_store::EngineKind,
    },
    /// Replication with real nodes on loopback: cold sync of N records next to raw
    /// verify_batch, propagation along a five-node line, reconciliation bytes.
    Sync {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 100)]
        samples: usize,
        #[arg(long, default_value_t = 100)]
        missing: usize,
        /// Run the nodes with the audit log off (`[audit] enabled = false`).
        #[arg(long)]
        no_audit: bool,
        /// The nodes' storage engine (every engine's floor is reported either way).
        #[arg(long, default_value = "sled")]
        engine: wlnode_store::EngineKind,
    },
    /// Name screening on a deterministic synthetic watchlist: recall@10 and precision
    /// on known variants and true negatives, latency, queries/s, index build time and
    /// memory, next to a brute-force Jaro-Winkler baseline (in-memory, no node).
    Screen {
        /// Entries in the synthetic watchlist.
        #[arg(long, default_value_t = BenchOptions::default().entries)]
        entries: usize,
        /// Positive (variant) queries.
        #[arg(long, default_value_t = BenchOptions::default().positives)]
        positives: usize,
        /// True-negative queries: unlisted subjects from the list's pools.
        #[arg(long, default_value_t = BenchOptions::default().negatives)]
        negatives: usize,
        /// True-negative queries: a listed person's given name with another's surname.
        #[arg(long, default_value_t = BenchOptions::default().recombined_negatives)]
        recombined: usize,
        /// True-negative queries: common names of several cultures.
        #[arg(long, default_value_t = BenchOptions::default().common_negatives)]
        common: usize,
        /// Queries in the brute-force baseline sample (0 skips it).
        #[arg(long, default_value_t = BenchOptions::default().baseline_queries)]
        baseline: usize,
        /// RNG seed.
        #[arg(long, default_value_t = BenchOptions::default().seed)]
        seed: u64,
        /// Only write the list, the queries and the engine's top 10 per query as JSON
        /// lines into this folder (for side-by-side runs of other matchers).
        #[arg(long)]
        export: Option<std::path::PathBuf>,
        /// Screen a real list instead of the synthetic one: a folder with OFAC's SDN
        /// list as published (`sdn.csv`, `alt.csv`). `--entries` is then ignored;
        /// `--negatives` counts unlisted synthetic persons.
        #[arg(long)]
        list: Option<std::path::PathBuf>,
        /// With `--list`: synthetic entries added to the real ones (speed at scale).
        #[arg(long, default_value_t = 0)]
        fill: usize,
    },
    /// The yente-compatible `POST /match/default` next to `POST /v1/screen/batch` on
    /// one node, same synthetic queries and index, alternating rounds: queries/s of
    /// each, their ratio, single-query latency, and top-hit agreement.
    Match {
        #[arg(long, default_value_t = 20_000)]
        entries: usize,
        /// Queries per round (three quarters variants, one quarter true negatives).
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
        #[arg(long, default_value_t = 6)]
        rounds: usize,
        /// Queries per request (at most 100, yente's batch limit).
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// N real `wlnode run` processes on this machine, each origin seeded with its share
    /// of the records, then linked (mesh or ring): time until every node holds every
    /// record, peak RSS per node, CPU seconds per 1,000 records replicated.
    Federation {
        #[arg(long, default_value_t = 10)]
        nodes: usize,
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, value_enum, default_value_t = super::bench_fed::Topology::Mesh)]
        topology: super::bench_fed::Topology,
        /// How long to wait for convergence.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

pub fn run(c: BenchCommand) -> anyhow::Result<ExitCode> {
    if std::env::var_os("WLNODE_LOG").is_some() {
        super::run::init_logging(wlnode_config::LogFormat::Text);
    }
    let dir = tempfile::tempdir().context("cannot create a temp dir")?;
    let report = match c {
        BenchCommand::Import {
            entries,
            batch,
            engine,
        } => serde_json::to_value(super::runtime()?.block_on(wlnode_devtools::bench::import(
            entries,
            batch.clamp(1, 5000),
            engine,
            dir.path(),
        ))?)?,
        BenchCommand::Audit {
            events,
            distinct_records,
        } => serde_json::to_value(wlnode_devtools::bench::audit::run(
            events,
            distinct_records,
            dir.path(),
        )?)?,
        BenchCommand::Store { records, engine } => {
            serde_json::to_value(wlnode_devtools::bench::store(records, engine, dir.path())?)?
        }
        BenchCommand::Sync {
            records,
            samples,
            missing,
            no_audit,
            engine,
        } => serde_json::to_value(super::runtime()?.block_on(
            wlnode_devtools::bench::sync::run(
                records,
                samples,
                missing,
                !no_audit,
                engine,
                dir.path(),
            ),
        )?)?,
        BenchCommand::Screen {
            entries,
            positives,
            negatives,
            recombined,
            common,
            baseline,
            seed,
            export,
            list,
            fill,
        } => {
            if let Some(list) = list {
                let opts = wlnode_devtools::screen_bench::RealOptions {
                    list,
                    positives,
                    recombined,
                    common,
                    unlisted: negatives,
                    fill,
                    baseline_queries: baseline,
                    seed,
                };
                let report = match export {
                    Some(dir) => serde_json::to_value(wlnode_devtools::screen_bench::export_real(
                        &opts, &dir,
                    )?)?,
                    None => serde_json::to_value(wlnode_devtools::screen_bench::run_real(opts)?)?,
                };
                super::print_json(&report)?;
                return Ok(ExitCode::SUCCESS);
            }
            let opts = BenchOptions {
                entries,
                positives,
                negatives,
                recombined_negatives: recombined,
                common_negatives: common,
                baseline_queries: baseline,
                seed,
            };
            match export {
                Some(dir) => {
                    serde_json::to_value(wlnode_devtools::screen_bench::export(&opts, &dir)?)?
                }
                None => serde_json::to_value(wlnode_devtools::screen_bench::run(opts))?,
            }
        }
        BenchCommand::Match {
            entries,
            queries,
            rounds,
            batch,
        } => serde_json::to_value(super::runtime()?.block_on(
            wlnode_devtools::bench::matching::run(
                entries.max(1),
                queries.max(4),
                rounds.max(1),
                batch,
                dir.path(),
            ),
        )?)?,
        BenchCommand::Federation {
            nodes,
            records,
            topology,
            timeout,
        } => super::runtime()?.block_on(super::bench_fed::run(
            nodes,
            records,
            topology,
            timeout,
            dir.path(),
        ))?,
    };
    super::print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}
