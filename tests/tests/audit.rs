//! The audit log on real nodes: three nodes replicate, their exported logs verify, hold
//! no disclosure values, and tampering with a node's sled store (an edited event, a
//! truncated log, a hidden send with a re-signed tree of the same size) is caught.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use wlnode_audit::event::{Event, EventKind, ExportedLog};
use wlnode_audit::verify::{AuditorState, Options, Report, verify};
use wlnode_config::Config;
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::roster::Roster;
use wlnode_devtools::scaffold;
use wlnode_store::Store;
use wlnode_store::audit::AuditSettings;
use wlnode_tests::{Cluster, FAST_SYNC, agency, wait_for};

const T: Duration = Duration::from_secs(120);
/// Distinctive content that must never appear in an audit log.
const SECRET_NAME: &str = "Zqxjvbrt Plorkhaven";

fn opts() -> Options {
    Options {
        tolerance_ms: 0,
        ..Options::default()
    }
}

fn data_dir(c: &Cluster, i: usize) -> std::path::PathBuf {
    Config::load(&c.fed.nodes[i].config).unwrap().raw.data_dir
}

fn export(c: &Cluster, i: usize) -> ExportedLog {
    let key = read_secret_key(&c.fed.nodes[i].dir.join("node.key"), KeyKind::Node).unwrap();
    let store = Store::open(&data_dir(c, i)).unwrap();
    store
        .audit_export(&agency(i).parse().unwrap(), &key.public_key().peer_id())
        .unwrap()
}

fn roster(c: &Cluster) -> Roster {
    let (bytes, _) = wlnode_config::roster_file::read_signed(&c.fed.roster).unwrap();
    Roster::parse(&bytes).unwrap()
}

fn kinds(r: &Report) -> Vec<String> {
    r.violations.iter().map(|v| v.kind.clone()).collect()
}

/// Rewrites node `i`'s log to `events` and re-signs a checkpoint with its own key, as a
/// node hiding something from its auditor would.
fn rewrite_and_resign(c: &Cluster, i: usize, events: &[Event]) {
    let key = read_secret_key(&c.fed.nodes[i].dir.join("node.key"), KeyKind::Node).unwrap();
    let store = Store::open(&data_dir(c, i)).unwrap();
    store.set_audit_settings(AuditSettings {
        signer: Some((agency(i).parse().unwrap(), Arc::new(key))),
        ..AuditSettings::default()
    });
    store.audit_rewrite(events).unwrap();
    store
        .audit_checkpoint(wlnode_crypto::Timestamp::now().as_millis() + 1, true)
        .unwrap()
        .expect("a fresh checkpoint");
}

fn decode(log: &ExportedLog) -> Vec<Event> {
    log.events
        .iter()
        .map(|e| Event::decode(e.as_bytes()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_audit_clean_then_tampering_is_caught() {
    let extra = (0..3)
        .map(|_| {
            format!(
                "{}{FAST_SYNC}\n[audit]\ncheckpoint_every_events = 4\n",
                scaffold::OPEN_POLICY
            )
        })
        .collect();
    let specs: Vec<_> = (0..3)
        .map(|i| scaffold::AgencySpec::member(&agency(i), &["eu"]).unwrap())
        .collect();
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    c.start_all().await;
    let written = c.add(0, SECRET_NAME, 6, None).await;
    wait_for(T, "C holds A's records", || async {
        let r = c.records(2).await;
        written.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    for i in (0..3).rev() {
        c.stop(i).await;
    }

    // Clean federation: every check holds.
    let logs: Vec<ExportedLog> = (0..3).map(|i| export(&c, i)).collect();
    for log in &logs {
        let text = serde_json::to_string(log).unwrap();
        for needle in [
            SECRET_NAME,
            "Zqxjvbrt",
            "Plorkhaven",
            "integration test",
            "R-1",
        ] {
            assert!(
                !text.contains(needle),
                "{needle:?} leaked into {}'s audit export",
                log.agency
            );
        }
        assert!(!log.checkpoints.is_empty());
        // `sent` leaves name the record; its signed header travels beside them, once.
        let sent: BTreeSet<_> = log
            .events
            .iter()
            .filter_map(|e| match Event::decode(e.as_bytes()).unwrap().kind {
                EventKind::Sent {
                    record_id, header, ..
                } => {
                    assert!(header.is_none(), "inline header in a new sent event");
                    Some(record_id)
                }
                _ => None,
            })
            .collect();
        let beside: BTreeSet<_> = log.headers.iter().map(|h| h.record_id).collect();
        assert_eq!(sent, beside, "{}: one header per sent record", log.agency);
        assert_eq!(beside.len(), log.headers.len());
    }
    // The raw sled files hold the names (in records), but never in audit trees: the
    // export is every byte of the audit trees.
    let roster = roster(&c);
    let report = verify(&roster, &logs, &AuditorState::default(), opts());
    assert!(
        report.ok,
        "clean federation fails: {:#?}",
        report.violations
    );
    let ab = report
        .pairs
        .iter()
        .find(|p| p.from == agency(0) && p.to == agency(1))
        .unwrap();
    assert!(
        ab.sent >= 6 && ab.accepted >= 6 && ab.missing == 0,
        "{ab:?}"
    );
    let bc = report
        .pairs
        .iter()
        .find(|p| p.from == agency(1) && p.to == agency(2))
        .unwrap();
    assert!(bc.sent >= 6 && bc.lag_max_ms.is_some(), "{bc:?}");
    let state = report.state.clone();
    assert_eq!(state.heads.len(), 3);

    // The HTML report is one self-contained page.
    let html = wlnode_audit::html::render(&report, "test", &wlnode_api::console::text::EN.report);
    assert!(html.contains("<svg") && html.contains("PASS"));
    assert!(!html.contains("src=") && !html.contains("href="));
    screenshot(&html, "clean");

    // 1. An event edited in B's sled store: its checkpoint no longer matches.
    let b_events = decode(&logs[1]);
    let idx = b_events
        .iter()
        .position(|e| matches!(e.kind, EventKind::Accepted { .. }))
        .unwrap();
    let mut edited = b_events[idx].clone();
    if let EventKind::Accepted { hops, .. } = &mut edited.kind {
        *hops += 5;
    }
    {
        let store = Store::open(&data_dir(&c, 1)).unwrap();
        store
            .audit_tamper_event(idx as u64, &edited.encode())
            .unwrap();
    }
    let tampered = vec![logs[0].clone(), export(&c, 1), logs[2].clone()];
    let r = verify(&roster, &tampered, &state, opts());
    assert!(
        kinds(&r).contains(&"checkpoint_mismatch".into()),
        "{:?}",
        kinds(&r)
    );
    assert!(!r.ok);

    // 2. C's log truncated and re-signed: the consistency check against the auditor's
    //    last verified head catches it.
    let c_events = decode(&logs[2]);
    rewrite_and_resign(&c, 2, &c_events[..c_events.len() / 2]);
    let r = verify(
        &roster,
        &[logs[0].clone(), logs[1].clone(), export(&c, 2)],
        &state,
        opts(),
    );
    assert!(kinds(&r).contains(&"truncated".into()), "{:?}", kinds(&r));

    // 3. A hides one send: the event is replaced (same size), the tree rebuilt and a new
    //    checkpoint signed, so A's log is self-consistent. B's log still shows the
    //    receipt: the cross-check finds it, even for an auditor without prior state.
    //    (A may have sent the same record to B more than once, e.g. by pull and again
    //    by reconciliation, so every send of that record to that peer is hidden.)
    let mut a_events = decode(&logs[0]);
    let (rid, to) = a_events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Sent { record_id, to, .. } => Some((*record_id, to.clone())),
            _ => None,
        })
        .unwrap();
    for e in a_events.iter_mut() {
        if matches!(&e.kind, EventKind::Sent { record_id, to: t, .. } if *record_id == rid && *t == to)
        {
            *e = Event::new(e.at, EventKind::NodeStopped);
        }
    }
    rewrite_and_resign(&c, 0, &a_events);
    let a_new = export(&c, 0);
    assert_eq!(a_new.events.len(), logs[0].events.len());
    let r = verify(
        &roster,
        &[a_new.clone(), logs[1].clone(), logs[2].clone()],
        &AuditorState::default(),
        opts(),
    );
    assert!(
        kinds(&r).contains(&"receipt_without_send".into()),
        "{:?}",
        kinds(&r)
    );
    let v = r
        .violations
        .iter()
        .find(|v| v.kind == "receipt_without_send")
        .unwrap();
    // The logs cannot tell which side lies (B could log a receipt to frame A), so the
    // finding goes to the pair, not to A.
    assert_eq!(v.node, format!("{}->{}", agency(0), to));
    assert!(!v.proven);
    // With the auditor's state, the new root for the already verified size is a split
    // view: two signed roots for one size.
    let r = verify(
        &roster,
        &[a_new, logs[1].clone(), logs[2].clone()],
        &state,
        opts(),
    );
    assert!(kinds(&r).contains(&"split_view".into()), "{:?}", kinds(&r));
    let html = wlnode_audit::html::render(&r, "test", &wlnode_api::console::text::EN.report);
    assert!(html.contains("FAIL") && html.contains("split_view"));
    screenshot(&html, "violations");
}

/// Screenshots the page with headless Chromium when it is installed.
fn screenshot(html: &str, name: &str) {
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new("which")
                .arg(b)
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(browser) = browser else {
        println!("chromium is not installed: skipping the report screenshot");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();
    let png = dir.path().join(format!("{name}.png"));
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,1200",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        png.exists() && std::fs::metadata(&png).unwrap().len() > 1000,
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three real nodes and an auditor over `/wlnode/audit/1`: a member asking for audit
/// data is refused (and the refusal is in the target's log, which the auditor then
/// sees); the auditor collects every log live, the verifier passes, the auditor's
/// cosignatures are stored on the nodes; a second run checks consistency from the
/// saved heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_collects_live_over_the_audit_protocol() {
    use wlnode_audit::wire::AuditRequest;
    use wlnode_runtime::auditor::verify_live;
    use wlnode_runtime::auditor::{AuditClientError, Collector};
    use wlnode_tests::counter;

    let auditor = "ZZ-AUDIT";
    let mut extra: Vec<String> = (0..3)
        .map(|_| format!("{}{FAST_SYNC}", scaffold::OPEN_POLICY))
        .collect();
    extra.push(String::new());
    let mut specs: Vec<_> = (0..3)
        .map(|i| scaffold::AgencySpec::member(&agency(i), &["eu"]).unwrap())
        .collect();
    specs.push(scaffold::AgencySpec::auditor(auditor).unwrap());
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    for i in 0..3 {
        c.start(i).await;
    }
    let written = c.add(0, SECRET_NAME, 4, None).await;
    wait_for(T, "C holds A's records", || async {
        let r = c.records(2).await;
        written.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    let roster = roster(&c);

    // A member (BB, with its own node identity) asks AA for audit data: refused.
    let b_cfg = Config::load(&c.fed.nodes[1].config).unwrap();
    let b_key = read_secret_key(&c.fed.nodes[1].dir.join("node.key"), KeyKind::Node).unwrap();
    let mut member = Collector::connect(&Collector::targets(&b_cfg), &b_key, &roster)
        .await
        .unwrap();
    let aa = agency(0).parse().unwrap();
    match member.request(&aa, &AuditRequest::GetCheckpoint).await {
        Err(AuditClientError::Refused { code, .. }) => assert_eq!(code, "forbidden"),
        other => panic!("a member got audit data: {other:?}"),
    }
    drop(member);
    assert_eq!(
        counter(&c.metrics(0), "wlnode_audit_refused_total", &agency(1)),
        1.0,
        "the refusal is counted"
    );

    // The auditor's config lists every member with its address.
    let peers = (0..3)
        .map(|i| {
            (
                agency(i).parse().unwrap(),
                vec![format!("/ip4/127.0.0.1/tcp/{}", c.ports[i].unwrap())],
            )
        })
        .collect();
    let audit_node = &c.fed.nodes[3];
    scaffold::write_config(
        &c.fed,
        audit_node,
        &scaffold::NodeOptions {
            peers,
            ..scaffold::NodeOptions::default()
        },
    )
    .unwrap();
    let a_cfg = Config::load(&audit_node.config).unwrap();
    let a_key = read_secret_key(&audit_node.dir.join("node.key"), KeyKind::Node).unwrap();
    let live = verify_live(
        &a_cfg,
        &a_key,
        &roster,
        &AuditorState::default(),
        Options::default(),
        wlnode_runtime::auditor::LiveLimits::default(),
    )
    .await
    .unwrap();
    assert!(
        live.report.ok,
        "live audit fails: {:#?}",
        live.report.violations
    );
    assert_eq!(live.logs.len(), 3);
    assert_eq!(live.report.state.heads.len(), 3);
    let refused: Vec<Event> = decode(&live.logs[0])
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::AuditRefused { peer } if *peer == agency(1)))
        .collect();
    assert_eq!(refused.len(), 1, "AA's log records BB's refused request");
    let ab = live
        .report
        .pairs
        .iter()
        .find(|p| p.from == agency(0) && p.to == agency(1))
        .unwrap();
    assert!(ab.sent >= 4 && ab.accepted >= 4, "{ab:?}");
    assert_eq!(live.cosigned.len(), 3, "{:?}", live.cosigned);
    for i in 0..3 {
        assert_eq!(
            counter(&c.metrics(i), "wlnode_audit_cosignatures ", ""),
            1.0,
            "node {i} holds the auditor's cosignature"
        );
    }

    // Later: more events; the auditor checks consistency from its saved heads.
    let more = c.add(2, "Second Batch", 2, None).await;
    wait_for(T, "A holds C's records", || async {
        let r = c.records(0).await;
        more.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    let again = verify_live(
        &a_cfg,
        &a_key,
        &roster,
        &live.report.state,
        Options::default(),
        wlnode_runtime::auditor::LiveLimits::default(),
    )
    .await
    .unwrap();
    assert!(
        again.report.ok,
        "second audit fails: {:#?}",
        again.report.violations
    );
    for i in 0..3 {
        assert!(
            again.report.state.heads[&agency(i).parse().unwrap()].size
                > live.report.state.heads[&agency(i).parse().unwrap()].size
        );
        assert_eq!(
            counter(&c.metrics(i), "wlnode_audit_cosignatures ", ""),
            2.0
        );
    }

    // A node with a bigger log than one run may hold fails only its own audit: the
    // others are collected, verified and cosigned, and its saved head stays as it was.
    // AA writes 40 entries that never leave it (40 more events in its log only).
    c.add(0, "Local Only", 40, Some(r#"{"scope": "origin"}"#))
        .await;
    let others = again
        .report
        .nodes
        .iter()
        .filter(|n| n.agency != agency(0))
        .map(|n| n.verified_size)
        .max()
        .unwrap();
    let bounded = verify_live(
        &a_cfg,
        &a_key,
        &roster,
        &again.report.state,
        Options::default(),
        wlnode_runtime::auditor::LiveLimits {
            max_events: others + 20,
            ..wlnode_runtime::auditor::LiveLimits::default()
        },
    )
    .await
    .unwrap();
    let failed: Vec<&str> = bounded
        .report
        .violations
        .iter()
        .map(|v| v.node.as_str())
        .collect();
    assert_eq!(
        failed,
        [agency(0).as_str()],
        "{:#?}",
        bounded.report.violations
    );
    assert_eq!(bounded.report.violations[0].kind, "collect_failed");
    assert_eq!(bounded.logs.len(), 2);
    assert_eq!(bounded.cosigned.len(), 2, "{:?}", bounded.cosigned);
    let aa: wlnode_crypto::model::AgencyCode = agency(0).parse().unwrap();
    assert_eq!(
        bounded.report.state.heads[&aa], again.report.state.heads[&aa],
        "its saved head stays"
    );

    // The real binary: `wlnode audit verify --config auditor.toml` without --logs
    // collects live, writes the state, the logs and the HTML report, and exits 0.
    let bin = {
        let exe = std::env::current_exe().unwrap();
        let dir = exe.parent().unwrap().parent().unwrap();
        let expected = dir.join(format!("wlnode{}", std::env::consts::EXE_SUFFIX));
        assert!(
            expected.exists(),
            "{} is missing: run `cargo build -p wlnode` first",
            expected.display()
        );
        expected
    };
    let html = c.dir.path().join("report.html");
    let out = tokio::process::Command::new(&bin)
        .args(["audit", "verify", "--json", "--config"])
        .arg(&audit_node.config)
        .arg("--html")
        .arg(&html)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "wlnode audit verify (live) failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert!(html.exists());
    for i in 0..3 {
        assert!(
            a_cfg
                .raw
                .data_dir
                .join("audit")
                .join(format!("{}.json", agency(i)))
                .exists()
        );
    }
    assert!(a_cfg.raw.data_dir.join("audit-state.json").exists());

    // CC rewrites its history (one event edited, tree rebuilt, re-signed) and restarts:
    // the auditor's saved head no longer fits, whatever CC signs now.
    let state = again.report.state.clone();
    c.stop(2).await;
    let mut events = decode(&again.logs[2]);
    events[0].at += 1;
    rewrite_and_resign(&c, 2, &events);
    c.start(2).await;
    let caught = verify_live(
        &a_cfg,
        &a_key,
        &roster,
        &state,
        Options::default(),
        wlnode_runtime::auditor::LiveLimits::default(),
    )
    .await
    .unwrap();
    assert!(!caught.report.ok);
    let cc_kinds: Vec<&str> = caught
        .report
        .violations
        .iter()
        .filter(|v| v.node == agency(2))
        .map(|v| v.kind.as_str())
        .collect();
    assert!(
        cc_kinds.contains(&"not_append_only") || cc_kinds.contains(&"split_view"),
        "{cc_kinds:?}"
    );
    assert!(
        !caught.cosigned.contains_key(&agency(2).parse().unwrap()),
        "no cosignature for a rewritten log"
    );
    for i in (0..3).rev() {
        c.stop(i).await;
    }
}
