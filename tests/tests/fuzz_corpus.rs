//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same
//! functions the cargo-fuzz targets call (`wlnode_devtools::fuzz`), so CI checks on
//! stable Rust that no input the fuzzer ever kept, and no crash it ever found, panics.
//!
//! `regenerate_seed_corpus` (ignored) rebuilds the seeds from real encodings: a node's
//! own records, store values, sync frames, the scaffolded roster and node.toml, and the
//! import fixtures. Run it with `cargo test -p wlnode-tests --test fuzz_corpus --
//! --ignored regenerate_seed_corpus`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use wlnode_crypto::model::RecordId;
use wlnode_sync::msg::{Hello, Notify, Pull, Request, Response};
use wlnode_sync::wire;
use wlnode_tests::Cluster;
use wlnode_types::Cursor;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn every_target_has_a_seed_corpus_and_replays_without_panic() {
    let root = corpus_root();
    let mut total = 0usize;
    for (name, f) in wlnode_devtools::fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "target {name} has no seed corpus");
        for p in &files {
            let data = std::fs::read(p).unwrap();
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "target {name} panicked on {}", p.display());
            total += 1;
        }
    }
    assert!(total > 0);
    // fuzz/Cargo.toml names one binary per target.
    let manifest = std::fs::read_to_string(root.join("../Cargo.toml")).unwrap();
    for (name, _) in wlnode_devtools::fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks target {name}"
        );
    }
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = corpus_root().join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "rebuilds fuzz/corpus seeds; run by hand"]
async fn regenerate_seed_corpus() {
    let mut c = Cluster::simple(2, &[(1, 0)]);
    c.start_all().await;
    let written = c.add(0, "seed", 3, None).await;
    let amended = c.amend(0, &written[0], "seed entity renamed").await;
    c.withdraw(0, &written[1]).await;
    let _ = amended;
    let (records, entries, metas) = c
        .node(0)
        .services
        .store
        .call(|s| {
            let mut recs = Vec::new();
            for (_, id) in s.sync_items()? {
                if let Some(r) = s.record(&id)? {
                    recs.push(r);
                }
            }
            let (all, _) = s.list_entries(&Default::default(), None, usize::MAX)?;
            let mut metas = Vec::new();
            for (k, _) in &all {
                if let Some(m) = s.local_meta(k)? {
                    metas.push(m);
                }
            }
            Ok((recs, all, metas))
        })
        .await
        .unwrap();
    assert!(records.len() >= 5);
    for (i, r) in records.iter().enumerate() {
        write("record", &format!("record-{i}"), &r.record.encode());
        write("store_values", &format!("stored-record-{i}"), &r.encode());
        write(
            "store_values",
            &format!("sync-meta-{i}"),
            &wlnode_types::SyncMeta::of(r.record.header()).encode(),
        );
        write(
            "store_values",
            &format!("sync-meta-held-{i}"),
            &wlnode_types::SyncMeta::held(r.record.header(), r.hops).encode(),
        );
    }
    // A redacted copy (fewer disclosures than fields).
    let (redacted, _) = records[0].record.redact(&["remarks"
        .parse::<wlnode_crypto::record::FieldSelector>()
        .unwrap()]);
    write("record", "record-redacted", &redacted.encode());
    write("record", "header-0", records[0].record.header_bytes());
    for (i, (_, st)) in entries.iter().enumerate() {
        write("store_values", &format!("entry-state-{i}"), &st.encode());
    }
    for (i, m) in metas.iter().enumerate() {
        write("store_values", &format!("local-meta-{i}"), &m.encode());
    }
    write(
        "store_values",
        "cursor",
        &Cursor {
            epoch: [7; 16],
            seq: 42,
            backlog_complete: false,
        }
        .encode(),
    );

    // Frames that carry records are built from the wire types: our own code makes an
    // outbound transfer only from a copy that passed the policy.
    use prost::Message;
    use wlnode_proto::v1 as pb;
    let transfers: Vec<pb::Transfer> = records
        .iter()
        .take(3)
        .map(|r| pb::Transfer {
            record: Bytes::from(r.record.encode()),
            hops: 1,
            inclusion: Bytes::new(),
        })
        .collect();
    let hello = Hello {
        agency: "AA-EXPORT".parse().unwrap(),
        roster_version: 1,
        log_epoch: [1; 16],
        head_seq: 9,
        backlog_pending: false,
    };
    let reqs: [(&str, Request); 3] = [
        ("hello", Request::Hello(hello.clone())),
        (
            "notify",
            Request::Notify(Notify {
                log_epoch: [1; 16],
                head_seq: 9,
            }),
        ),
        (
            "pull",
            Request::Pull(Pull {
                log_epoch: [1; 16],
                after_seq: 3,
                limit: 500,
                max_bytes: 1 << 20,
            }),
        ),
    ];
    for (n, r) in &reqs {
        write("sync_request", n, &wire::encode_request(r));
    }
    let reconcile = pb::SyncRequest {
        kind: Some(pb::sync_request::Kind::Reconcile(pb::Reconcile {
            session: Bytes::from_static(&[2; 16]),
            message: Bytes::from_static(b"\x61\x00\x00\x01\x02"),
            have: transfers.clone(),
            need: vec![Bytes::from_static(&[3; 32])],
        })),
    }
    .encode_to_vec();
    assert!(matches!(
        wire::decode_request(&reconcile),
        Ok(Request::Reconcile(r)) if r.have.len() == 3
    ));
    write("sync_request", "reconcile", &reconcile);
    let resps: [(&str, Response); 3] = [
        ("hello", Response::Hello(hello)),
        ("ack", Response::Ack),
        ("error", Response::error("banned", "go away")),
    ];
    for (n, r) in &resps {
        write("sync_response", n, &wire::encode_response(r));
    }
    let batch = pb::SyncResponse {
        kind: Some(pb::sync_response::Kind::Batch(pb::Batch {
            log_epoch: Bytes::from_static(&[4; 16]),
            records: transfers.clone(),
            next_seq: 9,
            head_seq: 10,
            complete: true,
        })),
    }
    .encode_to_vec();
    let reply = pb::SyncResponse {
        kind: Some(pb::sync_response::Kind::Reconcile(pb::ReconcileReply {
            session: Bytes::from_static(&[2; 16]),
            message: Bytes::new(),
            records: transfers,
        })),
    }
    .encode_to_vec();
    for (n, frame) in [("batch", &batch), ("reconcile", &reply)] {
        assert!(wire::decode_response(frame).is_ok(), "{n}");
        write("sync_response", n, frame);
    }

    // Real negentropy messages: an initiator's first message and a responder's reply.
    let items: Vec<(u64, RecordId)> = (0u8..40)
        .map(|i| (u64::from(i) * 1000, RecordId([i; 32])))
        .collect();
    let other: Vec<(u64, RecordId)> = (0u8..16)
        .map(|i| (u64::from(i) * 3000, RecordId([i.wrapping_mul(7); 32])))
        .collect();
    let s = wlnode_sync::reconcile::storage(&other).unwrap();
    let (_, first) = wlnode_sync::reconcile::Initiator::start(s, [0; 16]).unwrap();
    let first = first.message.unwrap();
    write("reconcile", "initiate", &first);
    let theirs = wlnode_sync::reconcile::storage(&items).unwrap();
    let reply = wlnode_sync::reconcile::respond(&theirs, &first).unwrap();
    write("reconcile", "reply", &reply);

    // Roster and its signature; node.toml.
    let roster = std::fs::read(&c.fed.roster).unwrap();
    write("roster", "roster.toml", &roster);
    let cfg = wlnode_config::Config::load(&c.fed.nodes[0].config).unwrap();
    let sig = std::fs::read(cfg.roster_sig_path()).unwrap();
    write("roster", "roster.sig", &sig);
    write("node_toml", "node.toml", cfg.text.as_bytes());
    let cfg1 = wlnode_config::Config::load(&c.fed.nodes[1].config).unwrap();
    write("node_toml", "node-with-peer.toml", cfg1.text.as_bytes());
    write(
        "node_toml",
        "template.toml",
        wlnode_config::template(
            &"AA-EXPORT".parse().unwrap(),
            "/ip4/127.0.0.1/tcp/0",
            &"127.0.0.1:8080".parse().unwrap(),
        )
        .as_bytes(),
    );

    // Import fixtures, good and bad.
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../node/crates/import/tests/fixtures/import");
    for (target, files) in [
        ("import_csv", &["good.csv", "bad.csv"][..]),
        ("import_jsonl", &["good.jsonl", "bad.jsonl"][..]),
        ("import_ftm", &["good.ftm.jsonl", "bad.ftm.jsonl"][..]),
        ("import_un_xml", &["good.un.xml", "bad.un.xml"][..]),
        ("import_ofac_xml", &["good.ofac.xml", "bad.ofac.xml"][..]),
        ("import_eu_xml", &["good.eu.xml", "bad.eu.xml"][..]),
        ("import_uk_xml", &["good.uk.xml", "bad.uk.xml"][..]),
    ] {
        for f in files {
            write(target, f, &std::fs::read(fixtures.join(f)).unwrap());
        }
    }
    c.stop(0).await;
    c.stop(1).await;
}
