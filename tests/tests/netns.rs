//! Real `wlnode run` processes in Linux network namespaces, driven by
//! `deploy/netns/netns.sh`: three nodes on a bridge converge after a partition (one
//! node cut off while both sides add entries) and relay around a cut link; and
//! `deploy/local/run.sh` starts the example federation (in a private network
//! namespace, so its fixed ports cannot clash) and stops it on Ctrl-C.
//!
//! A third test is issue 9's slow link: every node-to-node path gets 200 ms of delay
//! and 5 % loss (with `tc netem`, or where the kernel lacks sch_netem, with
//! `deploy/netns/userlink.py` joining TAP pairs in user space), and the federation
//! still converges; it prints the times it took.
//!
//! These tests need root and iproute2 (and the slow link, sch_netem or python3 with
//! /dev/net/tun). Where namespaces cannot be made they print
//! `SKIPPED: ...` and pass. They run the `wlnode` binary, which `cargo test
//! --workspace` builds; with `cargo test -p wlnode-tests` alone, run `cargo build -p
//! wlnode` first. Every script call and wait is bounded, and the namespaces are
//! removed on failure too (a guard runs `netns.sh down`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The `wlnode` binary that `cargo test --workspace` builds next to this test.
fn wlnode_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let expected = dir.join(format!("wlnode{}", std::env::consts::EXE_SUFFIX));
    assert!(
        expected.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p wlnode` first)",
        expected.display()
    );
    assert_cmd::cargo::cargo_bin("wlnode")
}

/// Runs `cmd` to completion, killing it after `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{cmd:?} took longer than {limit:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A federation made by netns.sh; `down` runs when it is dropped, even on panic.
struct NetnsFed {
    script: PathBuf,
    prefix: String,
    state: PathBuf,
    wlnode: PathBuf,
    _tmp: tempfile::TempDir,
}

impl NetnsFed {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(&self.script)
            .args(["-p", &self.prefix, "-d"])
            .arg(&self.state)
            .args(args)
            .env("WLNODE", &self.wlnode);
        c
    }

    fn try_run(&self, args: &[&str], limit: Duration) -> Output {
        run_bounded(&mut self.command(args), limit)
    }

    fn run(&self, args: &[&str]) -> String {
        let o = self.try_run(args, Duration::from_secs(120));
        assert!(
            o.status.success(),
            "netns.sh {args:?} failed: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn cli_json(&self, node: usize, args: &[&str]) -> serde_json::Value {
        let n = node.to_string();
        let mut all = vec!["cli", &n];
        all.extend_from_slice(args);
        all.push("--json");
        serde_json::from_str(&self.run(&all)).unwrap()
    }

    /// (origin, entry id, head record id) of every entry node `i` holds.
    fn entries(&self, node: usize) -> BTreeSet<(String, String, String)> {
        let v = self.cli_json(node, &["entry", "list"]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap().to_owned();
                (s("origin"), s("entry_id"), s("record_id"))
            })
            .collect()
    }

    fn has(&self, node: usize, entry_id: &str) -> bool {
        self.entries(node).iter().any(|(_, id, _)| id == entry_id)
    }

    /// Adds an entry at node `i`; returns its id.
    fn add(&self, node: usize, name: &str) -> String {
        let file = self.state.join(format!("entry-{name}.json"));
        std::fs::write(
            &file,
            serde_json::json!({
                "subject": {"kind": "organization", "name": name, "country": "AE",
                            "identifiers": [{"type": "registration", "value": name}]},
                "reason": "diversion-risk",
                "categories": ["3A001"],
                "distribution": {"scope": "federation", "sensitivity": "restricted"}
            })
            .to_string(),
        )
        .unwrap();
        let v = self.cli_json(node, &["entry", "add", "--file", file.to_str().unwrap()]);
        v["entry_id"].as_str().unwrap().to_owned()
    }

    fn wait(&self, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn namespaces(&self) -> Vec<String> {
        let o = Command::new("ip").args(["netns", "list"]).output().unwrap();
        text(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for NetnsFed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for i in 1..=3 {
                let log = self.state.join(format!("logs/n{i}.log"));
                if let Ok(t) = std::fs::read_to_string(&log) {
                    let tail: Vec<&str> = t.lines().rev().take(40).collect();
                    eprintln!("--- node {i} log (last lines, newest first):");
                    for l in tail {
                        eprintln!("{l}");
                    }
                }
            }
        }
        let o = self.try_run(&["down"], Duration::from_secs(90));
        if !o.status.success() {
            eprintln!("netns.sh down failed: {}", text(&o.stderr));
        }
    }
}

/// Whether namespaces can be made here; prints why not.
fn netns_available(script: &Path, prefix: &str) -> Option<String> {
    let o = Command::new("bash")
        .arg(script)
        .args(["-p", prefix, "check"])
        .output();
    match o {
        Ok(o) if o.status.success() => Some(text(&o.stdout)),
        Ok(o) => {
            eprintln!(
                "SKIPPED: cannot create network namespaces here: {}",
                text(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run bash: {e}");
            None
        }
    }
}

const CONVERGE: Duration = Duration::from_secs(120);

#[test]
fn three_namespaced_nodes_converge_after_a_partition() {
    let script = deploy().join("netns/netns.sh");
    let prefix = format!("wlt{}", std::process::id() % 10_000_000);
    let Some(check) = netns_available(&script, &prefix) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fed = NetnsFed {
        script,
        prefix,
        state: tmp.path().join("state"),
        wlnode: wlnode_bin(),
        _tmp: tmp,
    };
    fed.run(&["up", "-n", "3"]);
    assert_eq!(fed.namespaces().len(), 4, "{:?}", fed.namespaces());

    // Connected as a full mesh, and replicating.
    fed.wait(CONVERGE, "every node connected to both others", || {
        (1..=3).all(|i| {
            let s = fed.cli_json(i, &["status"]);
            s["peers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["connected"] == true)
                .count()
                == 2
        })
    });
    let before = fed.add(1, "Before Partition Trading");
    fed.wait(CONVERGE, "the first entry on every node", || {
        (1..=3).all(|i| fed.has(i, &before))
    });

    // Partition: node 3 alone; both sides keep writing.
    fed.run(&["cut", "3"]);
    let left = fed.add(1, "Left Side Holdings");
    let right = fed.add(3, "Right Side Logistics");
    fed.wait(CONVERGE, "node 2 to get node 1's entry", || {
        fed.has(2, &left)
    });
    // The cut holds: nodes 1 and 2 complete two more sync rounds with their peers
    // (a change in node 2's `last_sync` of its peers, each a finished batch or
    // reconciliation; node 3 cannot finish one across the cut), in which a leak would
    // have reached node 3, and node 3 still lacks the entry (was a fixed 8 s sleep,
    // "longer than an anti-entropy round": s36).
    let rounds = || -> Vec<serde_json::Value> {
        fed.cli_json(2, &["status"])["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["last_sync"].clone())
            .collect()
    };
    let mut seen = rounds();
    for round in 1..=2 {
        fed.wait(
            CONVERGE,
            &format!("sync round {round} of node 2 after the cut"),
            || {
                let now = rounds();
                let changed = now != seen;
                if changed {
                    seen = now;
                }
                changed
            },
        );
    }
    assert!(!fed.has(3, &left), "node 3 got an entry through the cut");
    assert!(!fed.has(1, &right) && !fed.has(2, &right));

    // Latency on the healed link, where the kernel has netem.
    let netem = check.contains("tc netem: yes");
    if netem {
        fed.run(&["netem", "3", "delay", "40ms", "10ms", "loss", "2%"]);
    } else {
        eprintln!("note: tc netem is not available here; healing without added latency");
    }
    fed.run(&["heal", "3"]);
    fed.wait(CONVERGE, "all three nodes to hold the same records", || {
        let a = fed.entries(1);
        a.len() == 3 && fed.entries(2) == a && fed.entries(3) == a
    });
    if netem {
        fed.run(&["netem", "3", "clear"]);
    }

    // A cut between two nodes only: node 3 relays between them.
    fed.run(&["cut", "1", "2"]);
    let relayed = fed.add(1, "Relayed Around The Cut");
    fed.wait(CONVERGE, "node 2 to get node 1's entry via node 3", || {
        fed.has(2, &relayed)
    });
    fed.run(&["heal"]);
    let all = fed.entries(1);
    assert_eq!(all.len(), 4);
    fed.wait(CONVERGE, "all nodes equal after the last heal", || {
        fed.entries(2) == all && fed.entries(3) == all
    });
    let origins: BTreeSet<String> = all.iter().map(|(o, _, _)| o.clone()).collect();
    assert_eq!(
        origins,
        ["NODE-1", "NODE-3"].map(String::from).into_iter().collect()
    );

    fed.run(&["down"]);
    assert!(fed.namespaces().is_empty(), "{:?}", fed.namespaces());
    // Idempotent.
    fed.run(&["down"]);
}

/// Issue 9, item 5: a three-node federation converges over slow, lossy links. netem
/// acts on what an interface sends, and netns.sh sets it on both ends of a node's
/// link; a packet from node i to node j leaves i's link and enters j's, so 100 ms and
/// 2.53 % per link give each node-to-node path 200 ms one way (400 ms round trip) and
/// 1 - 0.9747^2 = 5 % loss in each direction. Where the kernel has no sch_netem, the
/// links are TAP pairs joined by deploy/netns/userlink.py, which applies the same
/// delay and loss to each direction of each node's link in user space.
#[test]
fn three_namespaced_nodes_converge_over_a_slow_lossy_link() {
    let script = deploy().join("netns/netns.sh");
    let prefix = format!("wls{}", std::process::id() % 10_000_000);
    let Some(check) = netns_available(&script, &prefix) else {
        return;
    };
    let links = if check.contains("tc netem: yes") {
        "veth"
    } else if check.contains("userspace links: yes") {
        eprintln!("note: the kernel lacks sch_netem; delay and loss come from userlink.py");
        "user"
    } else {
        eprintln!(
            "SKIPPED: neither tc netem nor userspace links work here: {}",
            check.trim()
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let fed = NetnsFed {
        script,
        prefix,
        state: tmp.path().join("state"),
        wlnode: wlnode_bin(),
        _tmp: tmp,
    };
    fed.run(&["up", "-n", "3", "--links", links]);
    for i in ["1", "2", "3"] {
        fed.run(&["netem", i, "delay", "100ms", "loss", "2.53%"]);
    }
    let connected = |i: usize| {
        let s = fed.cli_json(i, &["status"]);
        s["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["connected"] == true)
            .count()
    };
    let start = Instant::now();
    fed.wait(CONVERGE, "every node connected to both others", || {
        (1..=3).all(|i| connected(i) == 2)
    });
    // Entries written at all three nodes at once; time until every node has all.
    let start_entries = Instant::now();
    let mut ids = BTreeSet::new();
    for i in 1..=3 {
        for k in 0..3 {
            ids.insert(fed.add(i, &format!("Slow Link Node{i} Entry{k}")));
        }
    }
    let written = start_entries.elapsed();
    let holds_all = |i: usize, ids: &BTreeSet<String>| {
        let have: BTreeSet<String> = fed.entries(i).into_iter().map(|(_, id, _)| id).collect();
        ids.is_subset(&have)
    };
    fed.wait(CONVERGE, "all nine entries on every node", || {
        (1..=3).all(|i| holds_all(i, &ids))
    });
    let converged = start_entries.elapsed();

    // A node restarts behind the slow link and catches up: a fresh connection
    // (handshakes under loss) plus a pull.
    fed.run(&["stop", "3"]);
    for k in 0..3 {
        ids.insert(fed.add(1, &format!("Slow Link While Away {k}")));
    }
    let restart = Instant::now();
    fed.run(&["start", "3"]);
    fed.wait(CONVERGE, "node 3 to catch up after its restart", || {
        holds_all(3, &ids)
    });
    let caught_up = restart.elapsed();
    fed.wait(CONVERGE, "node 2 to hold node 1's new entries too", || {
        holds_all(2, &ids)
    });
    eprintln!(
        "slow link ({links} links; 200 ms one way, 5 % loss per node-to-node path): mesh connected in \
         {:.1} s; 9 entries written at 3 nodes in {:.1} s, converged on all nodes \
         {:.1} s after the first write; restarted node caught up on 3 entries in {:.1} s \
         (from `start`, including process start)",
        start_entries.duration_since(start).as_secs_f64(),
        written.as_secs_f64(),
        converged.as_secs_f64(),
        caught_up.as_secs_f64()
    );
    for i in ["1", "2", "3"] {
        fed.run(&["netem", i, "clear"]);
    }
}

/// The run.sh under test. On drop (a failed test), it gets SIGTERM so that its trap
/// stops the nodes; anything still alive in its private network namespace after that
/// is killed.
struct RunSh {
    child: std::process::Child,
    /// `net:[inode]` of its network namespace.
    netns: String,
}

impl Drop for RunSh {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let start = Instant::now();
            while matches!(self.child.try_wait(), Ok(None))
                && start.elapsed() < Duration::from_secs(40)
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Our nodes, if any survived: every process in the namespace we created.
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if std::fs::read_link(e.path().join("ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == self.netns)
            {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }
}

#[test]
fn local_run_sh_starts_the_federation_and_stops_on_ctrl_c() {
    let script = deploy().join("netns/netns.sh");
    let prefix = format!("wlr{}", std::process::id() % 10_000_000);
    if netns_available(&script, &prefix).is_none() {
        return;
    }
    let unshare_ok = Command::new("env")
        .args(["--default-signal=INT", "unshare", "--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !unshare_ok {
        eprintln!(
            "SKIPPED: `unshare --net` (under GNU env 8.31 or later, for --default-signal) does not work here"
        );
        return;
    }
    let wlnode = wlnode_bin();
    let tmp = tempfile::tempdir().unwrap();
    let gen_dir = tmp.path().join("generated");
    let o = run_bounded(
        Command::new("bash")
            .arg(deploy().join("local/gen-keys.sh"))
            .arg("--out")
            .arg(&gen_dir)
            .env("WLNODE", &wlnode),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));

    // run.sh in a private network namespace (only loopback): its fixed ports are free
    // there whatever else runs on this machine, and the namespace dies with it.
    // Under `env --default-signal=INT`: a shell that started this test in the
    // background (`cmd &` without job control) leaves SIGINT ignored in every
    // process below it, and bash cannot trap a signal ignored on entry, so run.sh
    // never saw the Ctrl-C (s38: a clean-clone CI run started in the background
    // failed so). env, unshare and bash each exec the next: the pid stays run.sh's.
    let log = tmp.path().join("run.log");
    let child = Command::new("env")
        .arg("--default-signal=INT")
        .arg("unshare")
        .arg("--net")
        .arg("--")
        .arg("bash")
        .arg("-c")
        .arg(r#"ip link set lo up && exec bash "$0" --dir "$1" --auditor"#)
        .arg(deploy().join("local/run.sh"))
        .arg(&gen_dir)
        .env("WLNODE", &wlnode)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(tmp.path().join("run.err")).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let netns = format!("--net=/proc/{pid}/ns/net");
    // Wait until unshare has entered the new namespace (it differs from ours).
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let start = Instant::now();
    let theirs = loop {
        let l = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        if l != ours {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "unshare did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut child = RunSh {
        child,
        netns: theirs.to_string_lossy().into_owned(),
    };
    let cli = |args: &[&str]| -> Output {
        run_bounded(
            Command::new("nsenter")
                .arg(&netns)
                .arg("--")
                .arg(&wlnode)
                .args(args),
            Duration::from_secs(60),
        )
    };
    let config = |d: &str| gen_dir.join(d).join("node.toml");
    let dump = || {
        format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(tmp.path().join("run.err")).unwrap_or_default()
        )
    };

    let start = Instant::now();
    while !std::fs::read_to_string(tmp.path().join("run.err"))
        .unwrap_or_default()
        .contains("federation running")
    {
        assert!(
            child.child.try_wait().unwrap().is_none(),
            "run.sh exited early:\n{}",
            dump()
        );
        assert!(
            start.elapsed() < CONVERGE,
            "run.sh did not start:\n{}",
            dump()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let added = cli(&[
        "entry",
        "add",
        "--config",
        config("aa-export").to_str().unwrap(),
        "--file",
        deploy().join("local/entries/public.json").to_str().unwrap(),
        "--json",
    ]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let id = serde_json::from_slice::<serde_json::Value>(&added.stdout).unwrap()["entry_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // AA-EXPORT shares its own entries with BB-CUSTOMS in full.
    let start = Instant::now();
    loop {
        let o = cli(&[
            "entry",
            "list",
            "--config",
            config("bb-customs").to_str().unwrap(),
            "--json",
        ]);
        if o.status.success() && text(&o.stdout).contains(&id) {
            break;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "BB-CUSTOMS never got the entry:\n{}",
            dump()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let audit = cli(&[
        "status",
        "--config",
        config("zz-audit").to_str().unwrap(),
        "--json",
    ]);
    assert!(audit.status.success(), "{}", text(&audit.stderr));

    // Ctrl-C: SIGINT to run.sh stops every node and run.sh exits.
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "run.sh did not stop on SIGINT:\n{}",
            dump()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status.code(), Some(130), "{}", dump());
    // The log lines pass through `sed`, which may finish just after run.sh.
    let start = Instant::now();
    while dump().matches("node stopped").count() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not every node stopped cleanly:\n{}",
            dump()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
