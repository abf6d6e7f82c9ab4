//! The crate layering, checked from `cargo metadata` rather than by review: every
//! dependency between workspace crates points down an allowed edge, and the absences
//! ARCHITECTURE.md states hold (who may use libp2p, the storage engines sled and fjall,
//! axum, reqwest, clap, indicatif; what the pure crates never pull in, even
//! transitively; that no runtime crate links the developer tools; that no engine type
//! is public outside the store).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Crates with no tokio and no IO crate below them.
const PURE: &[&str] = &[
    "wlnode-types",
    "wlnode-config",
    "wlnode-policy",
    "wlnode-audit",
    "wlnode-screen",
    "wlnode-import",
    "wlnode-sync",
    "wlnode-consult",
];

/// The workspace crates that make IO.
const IO: &[&str] = &[
    "wlnode-store",
    "wlnode-net",
    "wlnode-runtime",
    "wlnode-api",
    "wlnode-client",
    "wlnode-devtools",
];

/// Every allowed (normal) dependency between workspace crates. An edge not listed
/// here fails the test; so does a cycle, which Cargo refuses anyway.
const ALLOWED: &[(&str, &[&str])] = &[
    ("wlnode-proto", &[]),
    ("wlnode-crypto", &["wlnode-proto"]),
    ("wlnode-types", &["wlnode-proto", "wlnode-crypto"]),
    ("wlnode-config", &["wlnode-crypto"]),
    (
        "wlnode-policy",
        &["wlnode-crypto", "wlnode-config", "wlnode-types"],
    ),
    (
        "wlnode-audit",
        &[
            "wlnode-proto",
            "wlnode-crypto",
            "wlnode-policy",
            // The consultation trail auditor (issue 21).
            "wlnode-consult",
        ],
    ),
    ("wlnode-screen", &["wlnode-crypto", "wlnode-types"]),
    ("wlnode-import", &["wlnode-crypto"]),
    ("wlnode-consult", &["wlnode-crypto"]),
    (
        "wlnode-sync",
        &[
            "wlnode-proto",
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-policy",
            "wlnode-audit",
        ],
    ),
    (
        "wlnode-store",
        &["wlnode-crypto", "wlnode-types", "wlnode-audit"],
    ),
    ("wlnode-net", &["wlnode-crypto"]),
    (
        "wlnode-runtime",
        &[
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-config",
            "wlnode-policy",
            "wlnode-audit",
            "wlnode-screen",
            "wlnode-import",
            "wlnode-sync",
            "wlnode-consult",
            "wlnode-store",
            "wlnode-net",
            // The fetch of scheduled source lists: wlnode-client owns reqwest.
            "wlnode-client",
        ],
    ),
    (
        "wlnode-api",
        &[
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-config",
            "wlnode-policy",
            // The auditor's page renders the audit crate's report (console::auditor).
            "wlnode-audit",
            "wlnode-screen",
            "wlnode-import",
            "wlnode-store",
            "wlnode-runtime",
            "wlnode-consult",
        ],
    ),
    (
        "wlnode-client",
        &["wlnode-crypto", "wlnode-config", "wlnode-screen"],
    ),
    (
        "wlnode-devtools",
        &[
            "wlnode-proto",
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-config",
            "wlnode-policy",
            "wlnode-audit",
            "wlnode-screen",
            "wlnode-import",
            "wlnode-sync",
            "wlnode-store",
            "wlnode-runtime",
            "wlnode-api",
            "wlnode-client",
        ],
    ),
    (
        "wlnode",
        &[
            "wlnode-proto",
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-config",
            "wlnode-policy",
            "wlnode-audit",
            "wlnode-screen",
            "wlnode-import",
            // `consult request` checks details.json with the node's own types.
            "wlnode-consult",
            "wlnode-store",
            "wlnode-runtime",
            "wlnode-api",
            "wlnode-client",
            "wlnode-devtools",
        ],
    ),
    (
        "wlnode-tests",
        &[
            "wlnode-proto",
            "wlnode-crypto",
            "wlnode-types",
            "wlnode-config",
            "wlnode-net",
            "wlnode-runtime",
            "wlnode-api",
            "wlnode-devtools",
        ],
    ),
];

/// External crates that exactly one workspace crate may depend on directly (besides
/// `wlnode-tests`, whose hostile peer drives a raw libp2p swarm).
const OWNERS: &[(&str, &[&str])] = &[
    ("libp2p", &["wlnode-net"]),
    ("sled", &["wlnode-store"]),
    ("fjall", &["wlnode-store"]),
    ("lsm-tree", &["wlnode-store"]),
    ("axum", &["wlnode-api"]),
    ("reqwest", &["wlnode-client"]),
    ("clap", &["wlnode"]),
    ("indicatif", &["wlnode"]),
    ("mimalloc", &["wlnode"]),
];

/// External crates the pure crates must not reach, directly or through anything.
const NOT_PURE: &[&str] = &[
    "tokio", "sled", "fjall", "libp2p", "axum", "hyper", "reqwest", "mio",
];

/// How each storage engine's types are named in source: none may appear in a public
/// signature of the store, nor anywhere outside it.
const ENGINE_PATHS: &[&str] = &["sled::", "IVec", "fjall::", "lsm_tree::"];

struct Graph {
    /// Workspace package name → its normal (non-dev, non-build) dependency names.
    direct: BTreeMap<String, BTreeSet<String>>,
    /// Package id → (name, normal dependency ids), over the whole resolve.
    resolve: BTreeMap<String, (String, Vec<String>)>,
    /// Workspace package name → its id.
    ids: BTreeMap<String, String>,
    /// Workspace package name → its manifest directory.
    dirs: BTreeMap<String, PathBuf>,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn graph() -> &'static Graph {
    static GRAPH: std::sync::OnceLock<Graph> = std::sync::OnceLock::new();
    GRAPH.get_or_init(read_graph)
}

fn read_graph() -> Graph {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["metadata", "--format-version", "1"])
        .current_dir(workspace_root());
    // This machine's dependencies only: the resolve then needs no other platform's
    // crates (which an offline machine does not have).
    if std::env::consts::OS == "linux" {
        cmd.arg("--filter-platform")
            .arg(format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
    }
    let out = cmd.output().expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: BTreeSet<String> = m["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut direct = BTreeMap::new();
    let mut ids = BTreeMap::new();
    let mut dirs = BTreeMap::new();
    for p in m["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap().to_owned();
        if !members.contains(&id) {
            continue;
        }
        let name = p["name"].as_str().unwrap().to_owned();
        let deps: BTreeSet<String> = p["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect();
        dirs.insert(
            name.clone(),
            Path::new(p["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap()
                .to_owned(),
        );
        ids.insert(name.clone(), id);
        direct.insert(name, deps);
    }
    let mut resolve = BTreeMap::new();
    let names: BTreeMap<String, String> = m["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for n in m["resolve"]["nodes"].as_array().unwrap() {
        let id = n["id"].as_str().unwrap().to_owned();
        let deps = n["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null())
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        resolve.insert(id.clone(), (names[&id].clone(), deps));
    }
    Graph {
        direct,
        resolve,
        ids,
        dirs,
    }
}

impl Graph {
    /// Every crate `name` links, transitively, through normal dependencies.
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        let mut todo = vec![self.ids[name].clone()];
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let (n, deps) = &self.resolve[&id];
            names.insert(n.clone());
            todo.extend(deps.iter().cloned());
        }
        names.remove(name);
        names
    }

    fn internal(&self, name: &str) -> BTreeSet<String> {
        self.direct[name]
            .iter()
            .filter(|d| self.direct.contains_key(*d))
            .cloned()
            .collect()
    }
}

#[test]
fn every_edge_between_workspace_crates_is_allowed() {
    let g = graph();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(c, d)| (*c, d.iter().copied().collect()))
        .collect();
    let mut problems = Vec::new();
    for name in g.direct.keys() {
        let Some(ok) = allowed.get(name.as_str()) else {
            problems.push(format!("{name} is not in the layering table"));
            continue;
        };
        for d in g.internal(name) {
            if !ok.contains(d.as_str()) {
                problems.push(format!("{name} -> {d} is not an allowed edge"));
            }
        }
    }
    for c in allowed.keys() {
        if !g.direct.contains_key(*c) {
            problems.push(format!(
                "{c} is in the layering table but not in the workspace"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn libp2p_sled_axum_reqwest_clap_and_indicatif_each_have_one_owner() {
    let g = graph();
    let mut problems = Vec::new();
    for (dep, owners) in OWNERS {
        for (name, deps) in &g.direct {
            if deps.contains(*dep) && !owners.contains(&name.as_str()) {
                let exempt = name == "wlnode-tests" && *dep == "libp2p";
                if !exempt {
                    problems.push(format!("{name} depends on {dep}; only {owners:?} may"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_pure_crates_reach_neither_tokio_nor_any_io_crate() {
    let g = graph();
    let mut problems = Vec::new();
    for p in PURE {
        let reach = g.closure(p);
        for bad in NOT_PURE.iter().chain(IO) {
            if reach.contains(*bad) {
                problems.push(format!("{p} reaches {bad}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_runtime_crate_links_the_devtools() {
    let g = graph();
    let tools = ["wlnode-devtools", "wlnode", "wlnode-tests"];
    let mut problems = Vec::new();
    for name in g.direct.keys().filter(|n| !tools.contains(&n.as_str())) {
        if g.closure(name).contains("wlnode-devtools") {
            problems.push(format!("{name} links wlnode-devtools"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

/// A store built on another engine could not be swapped in if its callers could name
/// an engine's types (sled's or fjall's); so none appears in a public signature of the
/// store crate, and no other crate names them at all.
#[test]
fn no_engine_type_is_public_outside_the_store() {
    let g = graph();
    let mut problems = Vec::new();
    for f in sources(&g.dirs["wlnode-store"].join("src")) {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut in_pub_signature = false;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with("pub ") && !t.starts_with("pub(") {
                in_pub_signature = true;
            }
            if in_pub_signature && ENGINE_PATHS.iter().any(|p| t.contains(p)) {
                problems.push(format!("{}:{}: {t}", f.display(), i + 1));
            }
            if t.contains('{') || t.ends_with(';') {
                in_pub_signature = false;
            }
            if [
                "pub use sled",
                "impl From<sled",
                "pub use fjall",
                "impl From<fjall",
            ]
            .iter()
            .any(|p| t.starts_with(p))
            {
                problems.push(format!("{}:{}: {t}", f.display(), i + 1));
            }
        }
    }
    // No other crate names an engine at all.
    for (name, dir) in &g.dirs {
        if name == "wlnode-store" {
            continue;
        }
        let files = ["src", "tests", "benches", "examples"]
            .iter()
            .map(|d| dir.join(d))
            .filter(|d| d.is_dir())
            .flat_map(|d| sources(&d));
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            if !f.ends_with("layering.rs")
                && let Some(p) = ENGINE_PATHS.iter().find(|p| text.contains(**p))
            {
                problems.push(format!("{} names {p}", f.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The network crate stays a transport adaptor; a file growing past this is where
/// protocol logic would be creeping back in.
#[test]
fn no_file_of_the_network_crate_is_over_800_lines() {
    let g = graph();
    let mut problems = Vec::new();
    for f in sources(&g.dirs["wlnode-net"].join("src")) {
        let lines = std::fs::read_to_string(&f).unwrap().lines().count();
        if lines > 800 {
            problems.push(format!("{}: {lines} lines", f.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
