//! Trust on the wire: only roster peers may sync, records signed by revoked keys and
//! tampered records are rejected (and the honest copy still arrives), and garbage or
//! oversized frames cost the sender, not the other peers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use bytes::Bytes;
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::{EntryId, SecretKey, Timestamp, VerifiedRecord};
use wlnode_devtools::scaffold::{AgencySpec, OPEN_POLICY};
use wlnode_store::IngestBatch;
use wlnode_tests::{Cluster, FAST_SYNC, RawOutcome, RawPeer, addr, counter, draft, wait_for};
use wlnode_types::{Incoming, Source};

const T: Duration = Duration::from_secs(120);

fn cluster(names: &[(&str, &[&str])], edges: &[(usize, usize)]) -> Cluster {
    let specs: Vec<AgencySpec> = names
        .iter()
        .map(|(a, g)| AgencySpec::member(a, g).unwrap())
        .collect();
    let extra = names
        .iter()
        .map(|_| format!("{OPEN_POLICY}{FAST_SYNC}"))
        .collect();
    Cluster::new(&specs, edges, extra)
}

fn record(key: &SecretKey, origin: &str, name: &str) -> VerifiedRecord {
    build_record(
        RecordMeta {
            entry_id: EntryId::random().unwrap(),
            origin: origin.parse().unwrap(),
            version: 1,
            issued_at: Timestamp::now(),
            status: wlnode_crypto::model::Status::Active,
            withdrawal_reason: None,
        },
        &draft(name, None),
        key,
    )
    .unwrap()
}

fn from_aa() -> Source {
    Source::Peer {
        agency: "AA-EXPORT".parse().unwrap(),
        hops: 1,
    }
}

/// Puts records straight into node `i`'s store (as a compromised node would hold
/// them) and tells its neighbours.
async fn inject(c: &Cluster, i: usize, records: Vec<VerifiedRecord>, source: Source) {
    let ctx = &c.node(i).services;
    let report = ctx
        .store
        .ingest(IngestBatch {
            items: records
                .into_iter()
                .map(|record| Incoming {
                    record,
                    source: source.clone(),
                    local: None,
                })
                .collect(),
            cursor: None,
            declined: Vec::new(),
            audit: Vec::new(),
        })
        .await
        .unwrap();
    ctx.ingested.after_ingest(&report, "peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_roster_cannot_open_the_sync_protocol() {
    let mut c = Cluster::simple(1, &[]);
    c.start_all().await;
    c.add(0, "secret", 3, None).await;
    let mut stranger = RawPeer::new(None, 1 << 20, 4 << 20);
    let hello = wlnode_sync::wire::encode_request(&wlnode_sync::msg::Request::Pull(
        wlnode_sync::msg::Pull {
            log_epoch: c.node(0).services.store.epoch(),
            after_seq: 0,
            limit: 100,
            max_bytes: 1 << 20,
        },
    ));
    match stranger.request(&addr(&c, 0), Bytes::from(hello)).await {
        RawOutcome::Failed(_) => {}
        RawOutcome::Response(r) => panic!("a stranger got a response: {r:?}"),
    }
    wait_for(T, "the refusal to be counted", || async {
        counter(
            &c.metrics(0),
            "wlnode_connections_refused_total",
            "not_in_roster",
        ) >= 1.0
    })
    .await;
    c.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_signed_by_a_revoked_key_are_rejected() {
    let mut c = cluster(
        &[
            ("AA-EXPORT", &["eu"]),
            ("BB-CUSTOMS", &["eu"]),
            ("MM-ROGUE", &["eu"]),
        ],
        &[(1, 2)],
    );
    // The roster authority revokes a stolen AA key; the roster is re-signed.
    let stolen = SecretKey::generate().unwrap();
    let roster = std::fs::read_to_string(&c.fed.roster).unwrap();
    let aa = "AA-EXPORT".parse().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let text =
        wlnode_config::roster_edit::add_key(&roster, &aa, &stolen.public_key(), past).unwrap();
    let text = wlnode_config::roster_edit::revoke_key(
        &text,
        &aa,
        &stolen.public_key(),
        Timestamp(past.0 + 1000),
        "stolen",
    )
    .unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    c.start(1).await;
    c.start(2).await;
    let forged: Vec<VerifiedRecord> = (0..20)
        .map(|k| record(&stolen, "AA-EXPORT", &format!("forged {k}")))
        .collect();
    let ids: Vec<_> = forged.iter().map(|r| r.id()).collect();
    inject(&c, 2, forged, from_aa()).await;
    wait_for(T, "20 revoked-key rejections at B", || async {
        counter(
            &c.metrics(1),
            "wlnode_records_rejected_total",
            "reason=\"revoked_key\"",
        ) >= 20.0
    })
    .await;
    let held = c.records(1).await;
    assert!(
        ids.iter().all(|id| !held.contains(id)),
        "no forged record stored"
    );
    c.stop(1).await;
    c.stop(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_copy_is_rejected_and_the_honest_copy_still_arrives() {
    let mut c = cluster(
        &[
            ("AA-EXPORT", &["eu"]),
            ("BB-CUSTOMS", &["eu"]),
            ("MM-ROGUE", &["eu"]),
        ],
        &[(0, 1), (1, 2)],
    );
    let aa_key = read_secret_key(&c.fed.nodes[0].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let honest = record(&aa_key, "AA-EXPORT", "Honest Trading LLC");
    let mut sig = *honest.signature();
    sig.0[10] ^= 0x40;
    let tampered = VerifiedRecord::from_local_store(
        Record::from_parts(
            honest.header_bytes().to_vec(),
            sig,
            honest.disclosures().to_vec(),
        )
        .unwrap(),
    );
    c.start(1).await;
    c.start(2).await;
    inject(&c, 2, vec![tampered], from_aa()).await;
    wait_for(T, "B rejects the tampered copy", || async {
        counter(
            &c.metrics(1),
            "wlnode_records_rejected_total",
            "reason=\"bad_signature\"",
        ) >= 1.0
    })
    .await;
    assert!(!c.records(1).await.contains(&honest.id()));
    c.start(0).await;
    inject(&c, 0, vec![honest.clone()], Source::Local).await;
    wait_for(T, "B holds the honest copy", || async {
        c.records(1).await.contains(&honest.id())
    })
    .await;
    for i in 0..3 {
        c.stop(i).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_cost_only_their_sender() {
    // A - B - C syncing; M is a roster member that sends B junk.
    let mut c = cluster(
        &[
            ("AA-EXPORT", &["eu"]),
            ("BB-CUSTOMS", &["eu"]),
            ("CC-TRADE", &["eu"]),
            ("MM-ROGUE", &["eu"]),
        ],
        &[(0, 1), (1, 2)],
    );
    c.start(0).await;
    c.start(1).await;
    c.start(2).await;
    let mut rogue = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[3].dir)),
        64 << 20,
        64 << 20,
    );
    let b = addr(&c, 1);
    match rogue
        .request(
            &b,
            Bytes::from_static(b"\xff\xfe garbage that is not protobuf"),
        )
        .await
    {
        RawOutcome::Response(r) => {
            let resp = wlnode_sync::wire::decode_response(&r).unwrap();
            assert!(
                matches!(resp, wlnode_sync::msg::Response::Error { ref code, .. } if code == "bad_request"),
                "{resp:?}"
            );
        }
        RawOutcome::Failed(e) => panic!("garbage should get an error response, got {e}"),
    }
    // 8 MiB frame: over B's 4 MiB limit, refused before it is read.
    match rogue.request(&b, Bytes::from(vec![0u8; 8 << 20])).await {
        RawOutcome::Failed(_) => {}
        RawOutcome::Response(r) => {
            let resp = wlnode_sync::wire::decode_response(&r).unwrap();
            assert!(
                matches!(resp, wlnode_sync::msg::Response::Error { ref code, .. } if code == "frame_too_large"),
                "{resp:?}"
            );
        }
    }
    wait_for(T, "both violations counted", || async {
        let m = c.metrics(1);
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"bad_request\"",
        ) >= 1.0
            && counter(
                &m,
                "wlnode_records_rejected_total",
                "reason=\"frame_too_large\"",
            ) >= 1.0
    })
    .await;
    // Everyone else keeps syncing.
    let w = c.add(0, "after-junk", 50, None).await;
    wait_for(T, "C receives A's entries through B", || async {
        let r = c.records(2).await;
        w.iter().all(|x| r.contains(&x.record_id))
    })
    .await;
    for i in 0..3 {
        c.stop(i).await;
    }
}
