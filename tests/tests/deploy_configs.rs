//! The example files under `deploy/` cannot rot: every `node.toml` (local, systemd,
//! compose, Kubernetes ConfigMap sources) and every policy file loads with
//! `Config::parse`; each federation's peers point at each other's listen addresses;
//! the policies the READMEs describe are the ones written; the example entries parse;
//! and `deploy/local/gen-keys.sh` generates a federation whose nodes pass the node's
//! own start-up checks (keys, pinned roster authority, membership).
//!
//! The gen-keys test runs the `wlnode` binary, which `cargo test --workspace` builds
//! (it is a bin target of a workspace member with integration tests); with
//! `cargo test -p wlnode-tests` alone, run `cargo build -p wlnode` first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use wlnode_config::{Config, PeerSelector, ShareRule};
use wlnode_crypto::model::{AgencyCode, EntryDraft, Sensitivity};
use wlnode_crypto::roster::{TrustAnchor, verify_roster};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .canonicalize()
        .unwrap()
}

/// Folders that scripts generate (keys, rosters, node data): not examples.
fn is_generated(p: &Path) -> bool {
    p.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("generated" | "data" | "target")
        )
    })
}

fn files_with_ext(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if is_generated(p.strip_prefix(deploy()).unwrap()) {
            continue;
        }
        if p.is_dir() {
            files_with_ext(&p, ext, out);
        } else if p.extension().and_then(|x| x.to_str()) == Some(ext) {
            out.push(p);
        }
    }
}

/// A minimal valid config that a policy-only file is appended to.
const POLICY_HOST: &str = r#"
agency = "AA-EXPORT"
roster = "roster.toml"
agency_key = "agency.key"
node_key = "node.key"
[api]
listen = "127.0.0.1:7480"
token_file = "api.token"
"#;

fn parse(path: &Path) -> Config {
    let text = std::fs::read_to_string(path).unwrap();
    Config::parse(path, &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_toml_under_deploy_is_a_valid_config_or_policy() {
    let mut files = Vec::new();
    files_with_ext(&deploy(), "toml", &mut files);
    let mut configs = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let doc: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if doc.contains_key("agency") {
            parse(f);
            configs += 1;
        } else if !doc.is_empty() && doc.keys().all(|k| k == "share" || k == "accept") {
            // A policy file: only [[share]] and [[accept]] rules. Line numbers in errors
            // are shifted by the host config's lines.
            Config::parse(f, &format!("{POLICY_HOST}{text}")).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!(
                "{}: neither a node config nor a policy; teach this test what it is",
                f.display()
            );
        }
    }
    // local (4), systemd (1), compose (4), k8s (4).
    assert!(configs >= 13, "only {configs} configs found under deploy/");
}

/// The node configs of one example federation, by agency.
fn federation(dir: &Path) -> BTreeMap<String, Config> {
    ["aa-export", "bb-customs", "cc-trade", "zz-audit"]
        .iter()
        .map(|d| {
            let c = parse(&dir.join(d).join("node.toml"));
            (c.agency().to_string(), c)
        })
        .collect()
}

fn sets() -> Vec<(&'static str, PathBuf)> {
    vec![
        ("local", deploy().join("local")),
        ("compose", deploy().join("container/config")),
        ("k8s", deploy().join("container/k8s/config")),
    ]
}

/// Sealed messages (issue 21): every member's example config names its encryption key
/// file, next to its other keys.
#[test]
fn every_member_config_names_an_encryption_key() {
    for (set, dir) in sets() {
        for (agency, cfg) in federation(&dir) {
            if agency == "ZZ-AUDIT" {
                continue;
            }
            let key = cfg.raw.encryption_key.as_ref().unwrap_or_else(|| {
                panic!("{set}: {agency} has no encryption_key");
            });
            assert_eq!(
                key.parent(),
                cfg.raw.node_key.parent(),
                "{set}: {agency}: beside the node key"
            );
        }
    }
    let systemd = parse(&deploy().join("systemd/node.toml"));
    assert!(systemd.raw.encryption_key.is_some());
}

fn tcp_port(addr: &str) -> u16 {
    let (_, port) = addr.rsplit_once("/tcp/").unwrap();
    port.parse().unwrap()
}

fn ip4(addr: &str) -> &str {
    addr.strip_prefix("/ip4/")
        .unwrap()
        .split('/')
        .next()
        .unwrap()
}

/// Service name -> its `ipv4_address` in compose.yaml.
fn compose_addresses() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(deploy().join("container/compose.yaml")).unwrap();
    let mut out = BTreeMap::new();
    let mut section = "";
    let mut service = None;
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line.trim_end_matches(':');
            service = None;
        } else if section == "services"
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && line.ends_with(':')
        {
            service = Some(line.trim().trim_end_matches(':').to_owned());
        } else if let (Some(s), Some(ip)) = (&service, line.trim().strip_prefix("ipv4_address: ")) {
            out.insert(s.clone(), ip.to_owned());
        }
    }
    out
}

#[test]
fn peers_point_at_each_others_listen_addresses() {
    let compose = compose_addresses();
    assert_eq!(compose.len(), 4, "{compose:?}");
    for (name, dir) in sets() {
        let fed = federation(&dir);
        let mut api_ports = Vec::new();
        let mut p2p_ports = Vec::new();
        for c in fed.values() {
            api_ports.push(c.raw.api.listen.get_ref().port());
            p2p_ports.push(tcp_port(&c.raw.listen[0].to_string()));
            for p in &c.raw.peers {
                let other = &fed[p.agency.get_ref().as_str()];
                assert!(!p.addrs.is_empty(), "{name}: {} dials nobody", c.agency());
                for a in &p.addrs {
                    let a = a.to_string();
                    let listen = other.raw.listen[0].to_string();
                    assert_eq!(tcp_port(&a), tcp_port(&listen), "{name}: {a}");
                    let dir_name = other.agency().as_str().to_lowercase();
                    match name {
                        "local" => assert_eq!(a, listen, "{name}"),
                        "compose" => assert_eq!(compose[&dir_name], ip4(&a), "{name}: {a}"),
                        _ => {
                            let svc = std::fs::read_to_string(
                                deploy().join(format!("container/k8s/{dir_name}.yaml")),
                            )
                            .unwrap();
                            assert!(
                                svc.contains(&format!("clusterIP: {}", ip4(&a))),
                                "{name}: no Service of {dir_name} has ClusterIP {a}"
                            );
                        }
                    }
                }
            }
        }
        if name == "local" {
            // One machine: every port differs.
            api_ports.extend(&p2p_ports);
            let n = api_ports.len();
            api_ports.sort_unstable();
            api_ports.dedup();
            assert_eq!(api_ports.len(), n, "{name}: a port is used twice");
        }
        // The three members dial each other; the auditor dials all three.
        for (agency, c) in &fed {
            let want = if agency == "ZZ-AUDIT" { 3 } else { 2 };
            assert_eq!(c.raw.peers.len(), want, "{name}: {agency}");
        }
    }
}

fn to(rule: &ShareRule) -> Vec<PeerSelector> {
    rule.to
        .get_ref()
        .iter()
        .map(|s| s.get_ref().clone())
        .collect()
}

fn agency(s: &str) -> PeerSelector {
    PeerSelector::Agency(AgencyCode::new(s).unwrap())
}

#[test]
fn example_policies_are_the_documented_ones() {
    for (name, dir) in sets() {
        let fed = federation(&dir);
        let aa = &fed["AA-EXPORT"].raw;
        let rule_to = |who: &str| {
            let rules: Vec<&ShareRule> = aa
                .share
                .iter()
                .filter(|r| to(r).contains(&agency(who)))
                .collect();
            assert_eq!(rules.len(), 1, "{name}: AA-EXPORT has one rule for {who}");
            rules[0]
        };
        // AA shares with BB in full ...
        assert!(rule_to("BB-CUSTOMS").withhold.is_empty(), "{name}");
        // ... and with CC without identifiers and birth dates.
        let mut withheld: Vec<String> = rule_to("CC-TRADE")
            .withhold
            .iter()
            .map(|f| f.to_string())
            .collect();
        withheld.sort();
        assert_eq!(withheld, ["birth_date", "identifiers"], "{name}");
        // CC only accepts public entries.
        let cc = &fed["CC-TRADE"].raw;
        assert!(!cc.accept.is_empty(), "{name}");
        for r in &cc.accept {
            assert_eq!(
                r.max_sensitivity.as_ref().map(|s| s.get_ref()),
                Some(&Sensitivity::new("public").unwrap()),
                "{name}"
            );
        }
        // The auditor has no rules: it receives no records.
        let zz = &fed["ZZ-AUDIT"].raw;
        assert!(zz.share.is_empty() && zz.accept.is_empty(), "{name}");
        // gen-keys.sh pins the roster authority by rewriting this exact line.
        for c in fed.values() {
            assert!(
                c.text.contains("\nroster_authorities = []\n"),
                "{name}: {} lacks the line gen-keys.sh pins",
                c.path.display()
            );
        }
    }
}

#[test]
fn example_entries_parse() {
    let mut files = Vec::new();
    files_with_ext(&deploy(), "json", &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        serde_json::from_str::<EntryDraft>(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn kustomization_covers_every_statefulset() {
    let k8s = deploy().join("container/k8s");
    let kust = std::fs::read_to_string(k8s.join("kustomization.yaml")).unwrap();
    for d in ["aa-export", "bb-customs", "cc-trade", "zz-audit"] {
        let m = std::fs::read_to_string(k8s.join(format!("{d}.yaml"))).unwrap();
        assert!(
            kust.contains(&format!("  - {d}.yaml\n")),
            "{d}: not a resource"
        );
        assert!(
            kust.contains(&format!("- name: {d}-config\n")),
            "{d}: config"
        );
        assert!(kust.contains(&format!("- name: {d}-keys\n")), "{d}: keys");
        for f in ["node.toml", "agency.key", "node.key", "api.token"] {
            assert!(
                kust.contains(&format!("{f}=generated/{d}/{f}\n")),
                "{d}: {f} not generated"
            );
        }
        assert!(m.contains(&format!("name: {d}-config\n")), "{d}");
        assert!(m.contains(&format!("secretName: {d}-keys\n")), "{d}");
        assert!(m.contains("defaultMode: 0400\n"), "{d}");
        assert!(m.contains("kind: StatefulSet\n") && m.contains("kind: Service\n"));
        // The Service carries the libp2p port only.
        assert_eq!(m.matches("port: 7400").count(), 1, "{d}");
        assert!(!m.contains("7480"), "{d}: the API must not leave the pod");
    }
    let compose = std::fs::read_to_string(deploy().join("container/compose.yaml")).unwrap();
    assert!(!compose.contains("ports:"), "compose publishes no port");
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

fn gen_keys(args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(deploy().join("local/gen-keys.sh"))
        .args(args)
        .env("WLNODE", wlnode_bin())
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap()
}

#[test]
fn gen_keys_makes_a_federation_the_nodes_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("generated");
    let out_s = out.to_str().unwrap();
    let o = gen_keys(&["--out", out_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (bytes, sig) = wlnode_config::roster_file::read_signed(&out.join("roster.toml")).unwrap();
    let roster = verify_roster(
        &bytes,
        &sig,
        &TrustAnchor {
            authorities: vec![sig.authority],
            accepted: None,
        },
    )
    .unwrap();
    assert_eq!(roster.members().count(), 4);
    // Every member can receive sealed messages (consultations, notices).
    let now = wlnode_crypto::time::Timestamp::now();
    assert!(
        roster.members_without_encryption_key(now).is_empty(),
        "{:?}",
        roster.members_without_encryption_key(now)
    );
    for d in ["aa-export", "bb-customs", "cc-trade", "zz-audit"] {
        let cfg = Config::load(&out.join(d).join("node.toml")).unwrap();
        // The authority is pinned, not trusted on first use.
        assert_eq!(cfg.raw.roster_authorities, vec![sig.authority], "{d}");
        // Keys and token load (mode 0600), and the roster lists this node.
        let id = wlnode_runtime::node::load_identity(&cfg).unwrap();
        wlnode_runtime::node::check_membership(&roster, &cfg, &id).unwrap();
        if d != "zz-audit" {
            // The member opens what is sealed to the key the roster lists for it.
            let ring = wlnode_runtime::node::encryption_keyring(
                &roster,
                cfg.agency(),
                wlnode_runtime::node::read_encryption_keys(&cfg).unwrap(),
                now,
            );
            let listed = roster.encryption_key(cfg.agency(), now).unwrap();
            assert!(ring.get(&listed).is_some(), "{d}");
        }
        // The policy compiles against the roster (the node refuses to start otherwise).
        wlnode_policy::Policy::from_config(&cfg, std::sync::Arc::new(roster.clone()))
            .unwrap_or_else(|e| panic!("{d}: {e:?}"));
        let member = roster.member(cfg.agency()).unwrap();
        let auditor = d == "zz-audit";
        assert_eq!(
            member.role == wlnode_crypto::roster::Role::Auditor,
            auditor,
            "{d}"
        );
        // Apart from the pinned authority, the copy is the example.
        let example = std::fs::read_to_string(deploy().join("local").join(d).join("node.toml"))
            .unwrap()
            .replace(
                "\nroster_authorities = []\n",
                &format!("\nroster_authorities = [\"{}\"]\n", sig.authority),
            );
        assert_eq!(cfg.text, example, "{d}");
    }
    // It refuses to overwrite, and --force starts over.
    let again = gen_keys(&["--out", out_s]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = gen_keys(&["--out", out_s, "--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let (_, sig2) = wlnode_config::roster_file::read_signed(&out.join("roster.toml")).unwrap();
    assert_ne!(sig2.authority, sig.authority);
}

#[test]
fn gen_keys_pins_the_container_configs() {
    for configs in ["container/config", "container/k8s/config"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("generated");
        let o = gen_keys(&[
            "--configs",
            deploy().join(configs).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let (bytes, sig) =
            wlnode_config::roster_file::read_signed(&out.join("roster.toml")).unwrap();
        let roster = std::sync::Arc::new(wlnode_crypto::roster::Roster::parse(&bytes).unwrap());
        for d in ["aa-export", "bb-customs", "cc-trade", "zz-audit"] {
            let cfg = Config::load(&out.join(d).join("node.toml")).unwrap();
            assert_eq!(cfg.raw.roster_authorities, vec![sig.authority], "{d}");
            wlnode_policy::Policy::from_config(&cfg, roster.clone())
                .unwrap_or_else(|e| panic!("{configs}/{d}: {e:?}"));
            for f in ["agency.key", "node.key", "api.token"] {
                assert!(out.join(d).join(f).exists(), "{d}/{f}");
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap();
        if name == "generated" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(name));
        } else {
            std::fs::copy(&p, to.join(name)).unwrap();
        }
    }
}

#[test]
fn k8s_manifests_render_with_kustomize() {
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: kubectl is not installed; cannot render the kustomization");
        return;
    }
    // A copy, so that the generated keys stay out of the source tree.
    let tmp = tempfile::tempdir().unwrap();
    let k8s = tmp.path().join("k8s");
    copy_dir(&deploy().join("container/k8s"), &k8s);
    let o = gen_keys(&[
        "--configs",
        k8s.join("config").to_str().unwrap(),
        "--out",
        k8s.join("generated").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("kubectl")
        .arg("kustomize")
        .arg(&k8s)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out.matches("kind: StatefulSet\n").count(), 4);
    assert_eq!(out.matches("kind: Secret\n").count(), 4);
    assert_eq!(out.matches("kind: ConfigMap\n").count(), 4);
    assert!(out.contains("kind: NetworkPolicy\n"));
    for d in ["aa-export", "bb-customs", "cc-trade", "zz-audit"] {
        // The StatefulSet refers to the generated (hash-suffixed) names.
        assert!(out.contains(&format!("secretName: {d}-keys-")), "{d}");
        assert!(out.contains(&format!("name: {d}-config-")), "{d}");
    }
    // The rendered ConfigMaps carry the pinned configs, and they still validate.
    let (_, sig) =
        wlnode_config::roster_file::read_signed(&k8s.join("generated/roster.toml")).unwrap();
    assert_eq!(
        out.matches(&format!("roster_authorities = [\"{}\"]", sig.authority))
            .count(),
        4
    );
}

/// The node each policy file under `deploy/policies/` is written for.
const POLICY_FILES: &[(&str, &str)] = &[
    ("bilateral.toml", "AA-EXPORT"),
    ("regional-group.toml", "AA-EXPORT"),
    ("observer.toml", "AA-EXPORT"),
    ("observer-node.toml", "OB-WATCH"),
    ("hub-relay.toml", "HB-REGION"),
];

/// The roster that `deploy/policies/README.md` assumes, with agency keys.
struct PolicyFed {
    _dir: tempfile::TempDir,
    roster: std::sync::Arc<wlnode_crypto::roster::Roster>,
    keys: BTreeMap<String, wlnode_crypto::SecretKey>,
}

fn policy_fed() -> PolicyFed {
    use wlnode_devtools::scaffold::{AgencySpec, create};
    let dir = tempfile::tempdir().unwrap();
    let fed = create(
        dir.path(),
        "policies",
        &[
            AgencySpec::member("AA-EXPORT", &["eu", "wassenaar"]).unwrap(),
            AgencySpec::member("BB-CUSTOMS", &["eu"]).unwrap(),
            AgencySpec::member("CC-TRADE", &["wassenaar"]).unwrap(),
            AgencySpec::member("HB-REGION", &["eu"]).unwrap(),
            AgencySpec::member("OB-WATCH", &[]).unwrap(),
            AgencySpec::auditor("ZZ-AUDIT").unwrap(),
        ],
    )
    .unwrap();
    let (bytes, _) = wlnode_config::roster_file::read_signed(&fed.roster).unwrap();
    let keys = fed
        .nodes
        .iter()
        .map(|n| {
            let k = wlnode_crypto::keyfile::read_secret_key(
                &n.dir.join("agency.key"),
                wlnode_crypto::keyfile::KeyKind::Agency,
            )
            .unwrap();
            (n.agency.to_string(), k)
        })
        .collect();
    PolicyFed {
        roster: std::sync::Arc::new(wlnode_crypto::roster::Roster::parse(&bytes).unwrap()),
        keys,
        _dir: dir,
    }
}

impl PolicyFed {
    /// A person entry by `origin`, held at `hops`, with this sensitivity.
    fn record(&self, origin: &str, sensitivity: &str, hops: u32) -> wlnode_types::StoredRecord {
        use wlnode_crypto::model::{EntryId, Status};
        use wlnode_crypto::record::{RecordMeta, build_record};
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": "Ivan Petrov", "country": "RU",
                        "birth_date": "1970-01-01",
                        "identifiers": [{"type": "passport", "value": "P1234567"},
                                        {"type": "national_id", "value": "N7654321"},
                                        {"type": "tax_id", "value": "T1"}]},
            "reason": "denial",
            "categories": ["3A001"],
            "remarks": "internal note",
            "distribution": {"scope": "federation", "sensitivity": sensitivity}
        }))
        .unwrap();
        let record = build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: origin.parse().unwrap(),
                version: 1,
                issued_at: wlnode_crypto::Timestamp::now(),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            &self.keys[origin],
        )
        .unwrap();
        wlnode_types::StoredRecord {
            record,
            hops,
            received_from: None,
            received_at: wlnode_crypto::Timestamp::now(),
            seq: 1,
            inclusion: None,
        }
    }

    fn policy(&self, file: &str) -> wlnode_policy::Policy {
        let (_, me) = POLICY_FILES
            .iter()
            .find(|(f, _)| *f == file)
            .unwrap_or_else(|| panic!("{file}: not in POLICY_FILES"));
        let path = deploy().join("policies").join(file);
        let rules = std::fs::read_to_string(&path).unwrap();
        let host = POLICY_HOST.replace("AA-EXPORT", me);
        let cfg = Config::parse(&path, &format!("{host}{rules}")).unwrap_or_else(|e| panic!("{e}"));
        let (p, warnings) = wlnode_policy::Policy::from_config(&cfg, self.roster.clone())
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert!(warnings.is_empty(), "{file}: {warnings:?}");
        p
    }
}

fn explain(
    p: &wlnode_policy::Policy,
    rec: &wlnode_types::StoredRecord,
    to: &str,
) -> wlnode_policy::Explanation {
    p.explain(rec, &AgencyCode::new(to).unwrap())
}

#[test]
fn example_policy_files_validate_and_decide_as_documented() {
    // Every file in deploy/policies is known here (and so checked below).
    let mut found: Vec<String> = std::fs::read_dir(deploy().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    found.sort();
    let mut known: Vec<String> = POLICY_FILES.iter().map(|(f, _)| f.to_string()).collect();
    known.sort();
    assert_eq!(found, known, "deploy/policies and POLICY_FILES differ");

    let fed = policy_fed();
    // Every file compiles against the roster without errors or warnings.
    let p: BTreeMap<&str, _> = POLICY_FILES
        .iter()
        .map(|(f, _)| (*f, fed.policy(f)))
        .collect();
    let own = fed.record("AA-EXPORT", "restricted", 0);

    // Bilateral: everything to BB-CUSTOMS, in full; nothing to anyone else.
    let e = explain(&p["bilateral.toml"], &own, "BB-CUSTOMS");
    assert_eq!(e.decision, "send", "{e:?}");
    assert!(e.withheld_fields.is_empty(), "{e:?}");
    let e = explain(&p["bilateral.toml"], &own, "CC-TRADE");
    assert_eq!(e.decision, "deny", "{e:?}");
    assert!(e.reason.contains("no [[share]] rule"), "{e:?}");
    let bb = fed.record("BB-CUSTOMS", "confidential", 1);
    p["bilateral.toml"]
        .accept(&bb.record, &AgencyCode::new("BB-CUSTOMS").unwrap())
        .unwrap();
    assert!(
        p["bilateral.toml"]
            .accept(&bb.record, &AgencyCode::new("CC-TRADE").unwrap())
            .is_err()
    );

    // Regional group: personal identifiers withheld from the group, tax id kept.
    let e = explain(&p["regional-group.toml"], &own, "BB-CUSTOMS");
    assert_eq!(e.decision, "send", "{e:?}");
    let mut w = e.withheld_fields.clone();
    w.sort();
    assert_eq!(
        w,
        [
            "birth_date",
            "identifiers.national_id",
            "identifiers.passport"
        ],
        "{e:?}"
    );
    assert_eq!(
        explain(&p["regional-group.toml"], &own, "CC-TRADE").decision,
        "deny",
        "CC-TRADE is not in the eu group"
    );

    // Observer: public entries only, without remarks.
    let public = fed.record("AA-EXPORT", "public", 0);
    let e = explain(&p["observer.toml"], &public, "OB-WATCH");
    assert_eq!(e.decision, "send", "{e:?}");
    assert_eq!(e.withheld_fields, ["remarks"], "{e:?}");
    let e = explain(&p["observer.toml"], &own, "OB-WATCH");
    assert_eq!(
        e.decision, "deny",
        "restricted entry went to the observer: {e:?}"
    );
    let obs = &p["observer-node.toml"];
    let from_aa = AgencyCode::new("AA-EXPORT").unwrap();
    obs.accept(&fed.record("AA-EXPORT", "public", 1).record, &from_aa)
        .unwrap();
    assert!(obs.accept(&own.record, &from_aa).is_err());
    assert_eq!(explain(obs, &public, "AA-EXPORT").decision, "deny");

    // Hub relay: BB-CUSTOMS's entry, held by the hub at hop 1, goes on to AA-EXPORT
    // at hop 2; CC-TRADE (not in eu) gets nothing.
    let relayed = fed.record("BB-CUSTOMS", "restricted", 1);
    let e = explain(&p["hub-relay.toml"], &relayed, "AA-EXPORT");
    assert_eq!((e.decision, e.hops), ("send", Some(2)), "{e:?}");
    assert!(e.withheld_fields.is_empty(), "{e:?}");
    assert_eq!(
        explain(&p["hub-relay.toml"], &relayed, "CC-TRADE").decision,
        "deny"
    );
    // The auditor never receives records, whatever a policy says.
    assert_eq!(
        explain(&p["hub-relay.toml"], &relayed, "ZZ-AUDIT").decision,
        "deny"
    );
}
