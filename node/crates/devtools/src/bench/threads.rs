//! Where a benchmark's time goes, thread by thread: CPU time and run-queue wait per
//! thread group (tokio workers, the blocking pool, the store actor, ...) over a timed
//! window, read from `/proc/self/task/*/schedstat`. Next to the window's wall time it
//! says which stage is busy, which waits for a core, and which is blocked (IO, a
//! channel, a lock): the part of the "where the time goes" table a CPU profile cannot
//! give.
//!
//! Threads that exit inside the window (the scoped threads import signs on, idle
//! blocking-pool threads after 10 s) are gone from `/proc` at its end: their CPU is the
//! process's CPU time minus the listed threads', reported as [`EXITED`].

use std::collections::BTreeMap;

use serde::Serialize;

/// The name under which the CPU of threads that exited inside the window is reported.
pub const EXITED: &str = "(threads exited in the window)";

/// One thread's counters at one instant.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    run_ns: u64,
    wait_ns: u64,
}

/// Every thread of this process at one instant, by thread id.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<u32, Sample>);

/// A thread group's share of a window, per record (or entry).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ThreadShare {
    /// Thread name with its trailing digits dropped (`tokio-runtime-w`, `store`, ...).
    pub name: String,
    /// Threads of this name that ran in the window.
    pub threads: usize,
    /// CPU time per record, microseconds.
    pub cpu_us: f64,
    /// Time spent ready but waiting for a core, per record, microseconds.
    pub runqueue_us: f64,
}

/// Reads every thread's counters now (empty where /proc is unavailable).
pub fn snapshot() -> Snapshot {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Snapshot(out);
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let name = std::fs::read_to_string(p.join("comm"))
            .map(|s| {
                s.trim()
                    .trim_end_matches(|c: char| c.is_ascii_digit())
                    .to_owned()
            })
            .unwrap_or_default();
        let Ok(stat) = std::fs::read_to_string(p.join("schedstat")) else {
            continue;
        };
        let mut f = stat
            .split_whitespace()
            .map(|x| x.parse::<u64>().unwrap_or(0));
        let (run_ns, wait_ns) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
        out.insert(
            tid,
            Sample {
                name,
                run_ns,
                wait_ns,
            },
        );
    }
    Snapshot(out)
}

/// The window from `start` to `end`, by thread name, per `n` records, busiest first;
/// `process_cpu_seconds` is the process's CPU time in the same window (the part no
/// listed thread accounts for is reported as [`EXITED`]).
pub fn shares(
    start: &Snapshot,
    end: &Snapshot,
    n: usize,
    process_cpu_seconds: f64,
) -> Vec<ThreadShare> {
    let mut by: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for (tid, e) in &end.0 {
        let (run0, wait0) = start.0.get(tid).map_or((0, 0), |s| (s.run_ns, s.wait_ns));
        let run = e.run_ns.saturating_sub(run0);
        let wait = e.wait_ns.saturating_sub(wait0);
        if run == 0 && wait == 0 {
            continue;
        }
        let g = by.entry(e.name.as_str()).or_default();
        g.0 += 1;
        g.1 += run;
        g.2 += wait;
    }
    let per = |ns: u64| ns as f64 / 1e3 / n.max(1) as f64;
    let mut out: Vec<ThreadShare> = by
        .into_iter()
        .map(|(name, (threads, run, wait))| ThreadShare {
            name: name.to_owned(),
            threads,
            cpu_us: (per(run) * 10.0).round() / 10.0,
            runqueue_us: (per(wait) * 10.0).round() / 10.0,
        })
        .collect();
    let listed: f64 = out.iter().map(|t| t.cpu_us).sum();
    let exited = per((process_cpu_seconds.max(0.0) * 1e9) as u64) - listed;
    if !start.0.is_empty() && exited >= 0.1 {
        out.push(ThreadShare {
            name: EXITED.to_owned(),
            threads: 0,
            cpu_us: (exited * 10.0).round() / 10.0,
            runqueue_us: 0.0,
        });
    }
    out.sort_by(|a, b| b.cpu_us.total_cmp(&a.cpu_us));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_shows_up_with_its_cpu() {
        let a = snapshot();
        let (done, busy_done) = std::sync::mpsc::channel();
        let t = std::thread::Builder::new()
            .name("busy-bench".into())
            .spawn(move || {
                // 20 ms of this thread's own CPU time, however loaded the machine is.
                let c0 = super::super::thread_cpu_seconds();
                let mut x = 0u64;
                while super::super::thread_cpu_seconds() - c0 < 0.02 {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                let _ = done.send(());
                // Still alive when the second snapshot is taken.
                std::thread::park();
            })
            .unwrap();
        busy_done.recv().unwrap();
        let b = snapshot();
        t.thread().unpark();
        t.join().unwrap();
        if a.0.is_empty() {
            return; // no /proc here
        }
        let s = shares(&a, &b, 1, 0.0);
        let busy = s.iter().find(|s| s.name == "busy-bench").expect("listed");
        assert_eq!(busy.threads, 1);
        assert!(busy.cpu_us >= 15_000.0, "{busy:?}");
    }
}
