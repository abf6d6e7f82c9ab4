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
                    inclusion: None,
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

/// Issue 19 item 3 (reproduced from outside): refused connections were counted per
/// PeerId, so strangers with fresh keys each added a metric series. Now they share
/// one label, whatever their number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_with_fresh_keys_share_one_metric_series() {
    let mut c = Cluster::simple(1, &[]);
    c.start_all().await;
    let pull = Bytes::from(wlnode_sync::wire::encode_request(
        &wlnode_sync::msg::Request::Pull(wlnode_sync::msg::Pull {
            log_epoch: c.node(0).services.store.epoch(),
            after_seq: 0,
            limit: 1,
            max_bytes: 1 << 20,
        }),
    ));
    const STRANGERS: usize = 25;
    for _ in 0..STRANGERS {
        let mut stranger = RawPeer::new(None, 1 << 20, 1 << 20);
        let _ = stranger.request(&addr(&c, 0), pull.clone()).await;
    }
    wait_for(T, "every refusal to be counted", || async {
        counter(
            &c.metrics(0),
            "wlnode_connections_refused_total",
            "not_in_roster",
        ) >= STRANGERS as f64
    })
    .await;
    let m = c.metrics(0);
    let series: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("wlnode_connections_refused_total{"))
        .collect();
    assert_eq!(series.len(), 1, "{series:?}");
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
        &[],
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
    // Then a record of AA's valid key, which M passes on.
    let aa_key = read_secret_key(&c.fed.nodes[0].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let sentinel = record(&aa_key, "AA-EXPORT", "sentinel");
    let sentinel_id = sentinel.id();
    inject(&c, 2, vec![sentinel], from_aa()).await;
    // The node holding them does not pass them on: its choke point refuses a revoked
    // key's records when B pulls or asks for them, and its reconciliation set with B
    // leaves them out, so no session offers them (a node that pushes them anyway is
    // `malicious.rs`'s case, refused as `revoked_key` with a strike each). B gets the
    // valid record by the same path, after the others had their chance.
    wait_for(T, "B to receive AA's valid record through M", || async {
        c.records(1).await.contains(&sentinel_id)
    })
    .await;
    let held = c.records(1).await;
    assert!(
        ids.iter().all(|id| !held.contains(id)),
        "no forged record stored"
    );
    // ... and none was even offered: B refused nothing (a revoked key's record M
    // passed on would be refused as `revoked_key...` and counted).
    assert_eq!(
        counter(
            &c.metrics(1),
            "wlnode_records_rejected_total",
            "revoked_key"
        ),
        0.0,
        "M offered a revoked key's record"
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
    // 8 MiB frame: over B's 4 MiB limit, refused before it is read. B answers having
    // read its length alone, while M is still writing the body (so M's request would
    // end only at its timeout): waited for until B counts it.
    let big = rogue
        .request_until(
            &b,
            Bytes::from(vec![0u8; 8 << 20]),
            T,
            "both violations counted",
            || async {
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
            },
        )
        .await;
    match big {
        None | Some(RawOutcome::Failed(_)) => {}
        Some(RawOutcome::Response(r)) => {
            let resp = wlnode_sync::wire::decode_response(&r).unwrap();
            assert!(
                matches!(resp, wlnode_sync::msg::Response::Error { ref code, .. } if code == "frame_too_large"),
                "{resp:?}"
            );
        }
    }
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

/// Re-signs the cluster's roster with `edit` applied and reloads it on the nodes given.
async fn reroster(c: &Cluster, nodes: &[usize], edit: impl FnOnce(&str) -> String) {
    let text = std::fs::read_to_string(&c.fed.roster).unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&edit(&text), &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    for i in nodes {
        c.node(*i).services.control.reload().await.unwrap();
    }
}

/// Node `i`'s head of `key`: (version, record, status, disputed).
async fn head_at(
    c: &Cluster,
    key: &wlnode_types::EntryKey,
    i: usize,
) -> (
    u64,
    wlnode_crypto::model::RecordId,
    wlnode_crypto::model::Status,
    bool,
) {
    c.heads(i).await.get(key).cloned().unwrap()
}

/// One version of an entry of AA, signed by `key`.
fn version_of(
    key: &SecretKey,
    entry: EntryId,
    version: u64,
    status: wlnode_crypto::model::Status,
    issued_at: Timestamp,
) -> VerifiedRecord {
    build_record(
        RecordMeta {
            entry_id: entry,
            origin: "AA-EXPORT".parse().unwrap(),
            version,
            issued_at,
            status,
            withdrawal_reason: (status == wlnode_crypto::model::Status::Withdrawn)
                .then(|| "stolen key".into()),
        },
        &draft("Kept Alive Trading", None),
        key,
    )
    .unwrap()
}

/// The attack of issue 19: a thief with a key that is revoked later signs a backdated
/// `version = MAX_VERSION, withdrawn` record for an honest entry.
/// - Before the fix, every node took it and kept it as the head forever, and the
///   agency's next amend computed `u64::MAX + 1`.
/// - Now a node that held it before the revocation keeps it demoted: the agency's next
///   record, signed by its valid key, becomes the head everywhere.
/// - A node that did not hold it refuses it, `revoked_key_backdated`, and so does every
///   node for the thief's later backdated records.
/// - A record the roster authority keeps stays valid, also where it was never seen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_keys_backdated_records_are_refused_and_demoted_and_never_block_the_agency() {
    use wlnode_crypto::model::Status;
    use wlnode_crypto::record::MAX_VERSION;
    let mut c = cluster(
        &[
            ("AA-EXPORT", &["eu"]),
            ("BB-CUSTOMS", &["eu"]),
            ("CC-TRADE", &["eu"]),
        ],
        &[(0, 1), (1, 2)],
    );
    // AA holds a second key, which leaks; the roster lists it (valid, for now).
    let stolen = SecretKey::generate().unwrap();
    let aa: wlnode_crypto::model::AgencyCode = "AA-EXPORT".parse().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let text = std::fs::read_to_string(&c.fed.roster).unwrap();
    let text = wlnode_config::roster_edit::add_key(&text, &aa, &stolen.public_key(), past).unwrap();
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let (signed, sig, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    std::fs::write(&c.fed.roster, signed).unwrap();
    std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    c.start(0).await;
    c.start(1).await;
    let honest = c.add(0, "honest", 1, None).await.remove(0);
    wait_for(T, "B holds AA's entry", || async {
        c.records(1).await.contains(&honest.record_id)
    })
    .await;
    // Before the revocation the thief's record reaches B (valid then) and takes over.
    let backdated = Timestamp(Timestamp::now().as_millis() - 60_000);
    let forged = version_of(
        &stolen,
        honest.entry_id,
        MAX_VERSION,
        Status::Withdrawn,
        backdated,
    );
    inject(&c, 1, vec![forged.clone()], from_aa()).await;
    let key = wlnode_types::EntryKey {
        entry_id: honest.entry_id,
        origin: aa.clone(),
    };
    assert_eq!(
        head_at(&c, &key, 1).await.1,
        forged.id(),
        "the thief's record won at B"
    );
    // An honest record of the stolen key that C never saw: the authority keeps it.
    let kept = version_of(&stolen, EntryId::random().unwrap(), 1, Status::Active, past);
    // The authority revokes the key; the nodes reload.
    let now = Timestamp::now();
    reroster(&c, &[0, 1], |t| {
        wlnode_config::roster_edit::revoke_key(
            t,
            &aa,
            &stolen.public_key(),
            now,
            "stolen",
            &[kept.id()],
        )
        .unwrap()
    })
    .await;
    c.start(2).await;
    // B keeps the thief's record (it held it) but demoted: AA's own version is the head.
    assert_eq!(
        head_at(&c, &key, 1).await.1,
        honest.record_id,
        "demoted at B"
    );
    assert!(
        c.records(1).await.contains(&forged.id()),
        "kept as evidence"
    );
    // AA amends: version 2, not u64::MAX + 1, and the head everywhere.
    let amended = c.amend(0, &honest, "Kept Alive Trading (amended)").await;
    assert_eq!(amended.version, 2);
    for i in 0..3 {
        wait_for(T, "the amendment is the head on every node", || async {
            c.heads(i)
                .await
                .get(&key)
                .is_some_and(|h| h.1 == amended.record_id && h.2 == Status::Active && !h.3)
        })
        .await;
    }
    // C never held the thief's record and never will: B does not send it, and when a
    // peer does (here, straight into the sync protocol), C refuses it.
    assert!(!c.records(2).await.contains(&forged.id()));
    let later = version_of(
        &stolen,
        EntryId::random().unwrap(),
        1,
        Status::Active,
        backdated,
    );
    let mut thief = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[1].dir)),
        4 << 20,
        4 << 20,
    );
    let push = |records: &[&VerifiedRecord]| {
        use prost::Message;
        use wlnode_proto::v1 as pb;
        Bytes::from(
            pb::SyncRequest {
                kind: Some(pb::sync_request::Kind::Reconcile(pb::Reconcile {
                    session: Bytes::from_static(&[5; 16]),
                    message: Bytes::new(),
                    have: records
                        .iter()
                        .map(|r| pb::Transfer {
                            record: Bytes::from(r.encode()),
                            hops: 2,
                            inclusion: Bytes::new(),
                        })
                        .collect(),
                    need: Vec::new(),
                })),
            }
            .encode_to_vec(),
        )
    };
    let out = thief
        .request(&addr(&c, 2), push(&[&later, &forged, &kept]))
        .await;
    assert!(matches!(out, RawOutcome::Response(_)), "{out:?}");
    wait_for(T, "C refuses the backdated records", || async {
        counter(
            &c.metrics(2),
            "wlnode_records_rejected_total",
            "reason=\"revoked_key_backdated\"",
        ) >= 2.0
    })
    .await;
    let held = c.records(2).await;
    assert!(!held.contains(&later.id()) && !held.contains(&forged.id()));
    assert!(
        held.contains(&kept.id()),
        "the kept record is valid everywhere"
    );
    for i in 0..3 {
        c.stop(i).await;
    }
}

/// Issue 19 item 1, the auditor's half: a revoked key's honest record is accepted on a
/// node that never held it when an auditor witnessed it in its origin's log before the
/// revocation.
/// - Before: C, which joined after the revocation, never got AA's records of the
///   revoked key (B held them demoted and never sent them, and C would have refused
///   them as `revoked_key_backdated`).
/// - Now: AA builds proofs from its own log and the auditor's dated cosignature when
///   the revocation comes into force; B takes the proofs when AA sends the records
///   again and passes them on; C checks and takes them, demoted.
/// - A record AA created after the cosigned checkpoint has no proof and stays where it
///   was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_an_auditor_witnessed_before_a_revocation_reach_nodes_that_never_held_them() {
    use wlnode_audit::verify::{AuditorState, Options};
    use wlnode_devtools::scaffold;
    use wlnode_runtime::auditor::{LiveLimits, verify_live};
    let mut specs: Vec<AgencySpec> = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE"]
        .iter()
        .map(|a| AgencySpec::member(a, &["eu"]).unwrap())
        .collect();
    specs.push(AgencySpec::auditor("ZZ-AUDIT").unwrap());
    let mut extra: Vec<String> = (0..3)
        .map(|_| format!("{OPEN_POLICY}{FAST_SYNC}"))
        .collect();
    extra.push(String::new());
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    c.start(0).await;
    c.start(1).await;
    let witnessed = c.add(0, "witnessed", 5, None).await;
    wait_for(T, "B holds AA's records", || async {
        let r = c.records(1).await;
        witnessed.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    // The auditor audits AA live and cosigns its checkpoint (dated).
    let audit_node = &c.fed.nodes[3];
    scaffold::write_config(
        &c.fed,
        audit_node,
        &scaffold::NodeOptions {
            peers: vec![(
                "AA-EXPORT".parse().unwrap(),
                vec![format!("/ip4/127.0.0.1/tcp/{}", c.ports[0].unwrap())],
            )],
            ..scaffold::NodeOptions::default()
        },
    )
    .unwrap();
    let roster = {
        let (bytes, _) = wlnode_config::roster_file::read_signed(&c.fed.roster).unwrap();
        wlnode_crypto::roster::Roster::parse(&bytes).unwrap()
    };
    let live = verify_live(
        &wlnode_config::Config::load(&audit_node.config).unwrap(),
        &read_secret_key(&audit_node.dir.join("node.key"), KeyKind::Node).unwrap(),
        &roster,
        &AuditorState::default(),
        Options::default(),
        LiveLimits::default(),
    )
    .await
    .unwrap();
    assert!(live.report.ok, "{:#?}", live.report.violations);
    assert_eq!(live.cosigned.len(), 1);
    // A record AA creates after the cosigned checkpoint: no proof can cover it.
    let late = c.add(0, "late", 1, None).await.remove(0);
    wait_for(T, "B holds the late record", || async {
        c.records(1).await.contains(&late.record_id)
    })
    .await;
    // AA's key is revoked (AA would sign with a new one from now on).
    let aa: wlnode_crypto::model::AgencyCode = "AA-EXPORT".parse().unwrap();
    let aa_key = read_secret_key(&c.fed.nodes[0].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let revoked_at = Timestamp(Timestamp::now().as_millis() + 1);
    reroster(&c, &[0, 1], |t| {
        wlnode_config::roster_edit::revoke_key(
            t,
            &aa,
            &aa_key.public_key(),
            revoked_at,
            "compromised",
            &[],
        )
        .unwrap()
    })
    .await;
    // C joins after the revocation and never held any of them.
    c.start(2).await;
    wait_for(
        T,
        "C holds every witnessed record, with its proof",
        || async {
            let r = c.records(2).await;
            witnessed.iter().all(|w| r.contains(&w.record_id))
        },
    )
    .await;
    for w in &witnessed {
        let id = w.record_id;
        let stored = c
            .node(2)
            .services
            .store
            .call(move |s| s.record(&id))
            .await
            .unwrap()
            .unwrap();
        assert!(
            stored.inclusion.is_some(),
            "C keeps the proof to pass it on"
        );
        assert_eq!(stored.hops, 2, "through B");
    }
    assert!(
        !c.records(2).await.contains(&late.record_id),
        "no proof covers the late record"
    );
    assert_eq!(
        counter(
            &c.metrics(2),
            "wlnode_records_rejected_total",
            "reason=\"revoked_key_backdated\"",
        ),
        0.0,
        "B offered C only records it could prove"
    );
    for i in 0..3 {
        c.stop(i).await;
    }
}

/// Issue 19 item 4: right after a restore the store lacks what the node signed since
/// the backup, and peers hold it. An amend then signed a second record for a version
/// peers held (equivocation by an honest node). Now local writes to existing entries
/// wait until the node has reconciled with its configured peers, or are forced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_amends_wait_for_reconciliation_so_the_node_never_equivocates() {
    use wlnode_runtime::entries::LifecycleError;
    let mut c = cluster(
        &[("AA-EXPORT", &["eu"]), ("BB-CUSTOMS", &["eu"])],
        &[(0, 1)],
    );
    c.start_all().await;
    let w = c.add(0, "restored", 2, None).await;
    let (e, f) = (&w[0], &w[1]);
    let data = c.node(0).services.config.raw.data_dir.clone();
    let backup = data.with_file_name("a.wlbackup");
    let b = backup.clone();
    c.node(0)
        .services
        .store
        .call(move |s| Ok(s.backup_to_file(&b)))
        .await
        .unwrap()
        .unwrap();
    // After the backup: E is amended to version 2, and B holds it.
    let v2 = c.amend(0, e, "restored amended once").await;
    assert_eq!(v2.version, 2);
    wait_for(T, "B holds version 2", || async {
        c.records(1).await.contains(&v2.record_id)
    })
    .await;
    // A loses its disk and is restored from the backup while B is down.
    c.stop(0).await;
    c.stop(1).await;
    wlnode_store::backup::restore(&backup, &data, true).unwrap();
    c.start(0).await;
    let lifecycle = c.node(0).services.lifecycle.clone();
    match lifecycle.amend(e.entry_id, draft("too early", None)).await {
        Err(LifecycleError::AwaitingReconcile { .. }) => {}
        other => panic!("an amend right after the restore: {other:?}"),
    }
    // An officer who knows no peer holds a newer version of F may force it.
    let (forced, _) = lifecycle
        .forcing()
        .amend(f.entry_id, draft("forced", None))
        .await
        .unwrap();
    assert_eq!(forced.version, 2);
    // Once A has reconciled with B the hold ends, and the amend builds on version 2.
    c.start(1).await;
    wait_for(T, "A's hold on local writes ends", || async {
        c.node(0)
            .services
            .store
            .call(|s| s.local_writes_held())
            .await
            .unwrap()
            .is_none()
    })
    .await;
    assert!(c.records(0).await.contains(&v2.record_id), "v2 came back");
    let (v3, _) = lifecycle
        .amend(e.entry_id, draft("restored amended twice", None))
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    wait_for(T, "B holds version 3", || async {
        c.records(1).await.contains(&v3.record_id)
    })
    .await;
    for i in 0..2 {
        let disputed: Vec<_> = c
            .heads(i)
            .await
            .into_iter()
            .filter(|(_, (_, _, _, d))| *d)
            .collect();
        assert!(disputed.is_empty(), "node {i}: {disputed:?}");
    }
    // The writer holds a store handle; the store stops when the last one goes.
    drop(lifecycle);
    c.stop(0).await;
    c.stop(1).await;
}

/// Issue 19 item 4 (review): a hold that begins while the node runs (the store actor
/// reopened the store after a disk error) was only seen at the next start, and a node
/// that never initiates sessions never ran its own, so the hold could last until a
/// restart. Now the service finds it within seconds and asks every peer it waits for
/// for a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_begun_while_running_ends_after_reconciliation_on_both_sides() {
    let mut c = cluster(
        &[("AA-EXPORT", &["eu"]), ("BB-CUSTOMS", &["eu"])],
        &[(0, 1)],
    );
    c.start_all().await;
    let w = c.add(0, "held", 1, None).await;
    wait_for(T, "B holds A's entry", || async {
        c.records(1).await.contains(&w[0].record_id)
    })
    .await;
    // What the recovery reopen does, on both nodes (one of them never initiates).
    for i in 0..2 {
        c.node(i)
            .services
            .store
            .call(|s| s.hold_local_writes(Timestamp::now().as_millis()))
            .await
            .unwrap();
    }
    wait_for(T, "both holds end", || async {
        for i in 0..2 {
            let held = c
                .node(i)
                .services
                .store
                .call(|s| s.local_writes_held())
                .await
                .unwrap();
            if held.is_some() {
                return false;
            }
        }
        true
    })
    .await;
    c.amend(0, &w[0], "after the hold").await;
    c.stop(0).await;
    c.stop(1).await;
}
