//! Runs the screening benchmark and prints its JSON report, like `wlnode bench screen`
//! (kept for profiling the engine alone): `cargo run --release --example screen_bench
//! -p wlnode -- --entries 1000000`.

use clap::Parser;
use wlnode_devtools::screen_bench::{BenchOptions, run};

/// Screening benchmark options (defaults: `BenchOptions::default()`).
#[derive(Debug, Parser)]
struct Args {
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
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let report = run(BenchOptions {
        entries: a.entries,
        positives: a.positives,
        negatives: a.negatives,
        recombined_negatives: a.recombined,
        common_negatives: a.common,
        baseline_queries: a.baseline,
        seed: a.seed,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
