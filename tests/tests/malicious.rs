//! A compromised roster member attacks one node (B) of an honest line A - B - C.
//! `trust.rs` covers strangers, revoked keys relayed by a node, a tampered copy and a
//! single garbage/oversized frame; this file drives each attack past B's ban threshold
//! or at volume, and checks in every case that A and C keep converging through B, that
//! every rejection is counted by reason, and that the bad peer ends up banned where the
//! attack consists of invalid input. The nodes run in this process, so the memory
//! figure printed is the test process's peak RSS (`VmHWM`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use bytes::Bytes;
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::model::Status;
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::{EntryId, RecordId, SecretKey, Timestamp, VerifiedRecord};
use wlnode_devtools::scaffold::{AgencySpec, OPEN_POLICY};
use wlnode_sync::msg::{Notify, Pull, Request, Response};
use wlnode_sync::wire::{decode_response, encode_request};
use wlnode_tests::{Cluster, RawOutcome, RawPeer, addr, counter, draft, peak_rss_kib, wait_for};

const T: Duration = Duration::from_secs(120);
const THRESHOLD: u32 = 5;
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const M: usize = 3;

/// A - B - C honest, M a roster member that only ever talks to B through a RawPeer.
/// B bans after more than `THRESHOLD` invalid items a minute.
async fn line() -> (Cluster, RawPeer) {
    let names = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE", "MM-ROGUE"];
    let specs: Vec<AgencySpec> = names
        .iter()
        .map(|a| AgencySpec::member(a, &["eu"]).unwrap())
        .collect();
    let sync = format!(
        "\n[sync]\nanti_entropy_interval = \"3s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"2s\"\n\
         ban_threshold = {THRESHOLD}\nban_window = \"60s\"\nban_duration = \"600s\"\n"
    );
    let extra = names
        .iter()
        .map(|_| format!("{OPEN_POLICY}{sync}"))
        .collect();
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    c.start(A).await;
    c.start(B).await;
    c.start(C).await;
    let rogue = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[M].dir)),
        64 << 20,
        64 << 20,
    );
    (c, rogue)
}

/// M says Hello to B (log epoch `[1; 16]`, B's roster version), as any member would.
async fn hello_as_m(c: &Cluster, rogue: &mut RawPeer, b: &libp2p::Multiaddr) {
    let hello = Bytes::from(encode_request(&Request::Hello(wlnode_sync::msg::Hello {
        agency: "MM-ROGUE".parse().unwrap(),
        roster_version: c.node(B).services.trust.roster().version(),
        log_epoch: [1; 16],
        head_seq: 0,
        backlog_pending: false,
    })));
    let RawOutcome::Response(_) = rogue.request(b, hello).await else {
        panic!("Hello refused");
    };
}

/// M sends B `frames` (up to 10,000 a second for a minute); B bans M and counts at
/// least `THRESHOLD` rejections for `reason`.
async fn flood_until_banned(
    c: &Cluster,
    rogue: &mut RawPeer,
    b: &libp2p::Multiaddr,
    frames: impl IntoIterator<Item = Bytes>,
    what: &str,
    reason: &str,
) {
    let _ = rogue
        .flood(b, frames, 10_000, Duration::from_secs(60))
        .await;
    wait_for(T, what, || banned(c)).await;
    let m = c.metrics(B);
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            &format!("reason=\"{reason}\"")
        ) >= f64::from(THRESHOLD),
        "{m}"
    );
}

/// A adds entries; they reach C through B.
async fn honest_traffic_flows(c: &Cluster, tag: &str) {
    let w = c.add(A, tag, 20, None).await;
    wait_for(
        T,
        &format!("C receives A's {tag} entries through B"),
        || async {
            let r = c.records(C).await;
            w.iter().all(|x| r.contains(&x.record_id))
        },
    )
    .await;
}

/// Waits (up to `T`) for an `audit_violation` event of `kind` that `matches`, on a
/// node's bus since `rx` was made, and returns it. The node counts a ban or an
/// equivocation in its metrics a moment before it emits the event, so a test that saw
/// the count must wait for the event, not take what the bus holds at that instant
/// (CI failure at s37: the bus was read between the two). A lagging receiver skips
/// what it lost and reads on.
async fn violation(
    rx: &mut tokio::sync::broadcast::Receiver<wlnode_runtime::events::NodeEvent>,
    kind: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    use tokio::sync::broadcast::error::RecvError;
    let mut seen = Vec::new();
    let found = tokio::time::timeout(T, async {
        loop {
            match rx.recv().await {
                Ok(e) if e.kind == wlnode_config::EventType::AuditViolation => {
                    let v: serde_json::Value = serde_json::from_str(&e.json).unwrap();
                    if v["kind"] == kind {
                        if matches(&v) {
                            return Some(v);
                        }
                        seen.push(v);
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        _ => panic!("no matching {kind} violation within {T:?}; others of that kind: {seen:?}"),
    }
}

async fn banned(c: &Cluster) -> bool {
    counter(
        &c.metrics(B),
        "wlnode_records_rejected_total",
        "reason=\"banned\"",
    ) >= 1.0
}

async fn stop(mut c: Cluster, what: &str) {
    eprintln!(
        "{what}: peak RSS of the test process (4 nodes) {} KiB",
        peak_rss_kib()
    );
    for i in 0..3 {
        c.stop(i).await;
    }
}

fn record(
    key: &SecretKey,
    origin: &str,
    entry: EntryId,
    version: u64,
    name: &str,
) -> VerifiedRecord {
    build_record(
        RecordMeta {
            entry_id: entry,
            origin: origin.parse().unwrap(),
            version,
            issued_at: Timestamp::now(),
            status: Status::Active,
            withdrawal_reason: None,
        },
        &draft(name, None),
        key,
    )
    .unwrap()
}

/// A Reconcile request that pushes `records` (the way a node offers what the other
/// side lacks): hop 1 for M's own records, hop 2 for relayed ones. Built from the wire
/// types, as a hostile node builds its frames.
fn push(records: &[Record]) -> Bytes {
    use prost::Message;
    use wlnode_proto::v1 as pb;
    Bytes::from(
        pb::SyncRequest {
            kind: Some(pb::sync_request::Kind::Reconcile(pb::Reconcile {
                session: Bytes::from_static(&[9; 16]),
                message: Bytes::new(),
                have: records
                    .iter()
                    .map(|r| pb::Transfer {
                        record: Bytes::from(r.encode()),
                        hops: if r.header().origin.as_str() == "MM-ROGUE" {
                            1
                        } else {
                            2
                        },
                        inclusion: Bytes::new(),
                    })
                    .collect(),
                need: Vec::new(),
            })),
        }
        .encode_to_vec(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_ban_the_sender_at_the_threshold() {
    let (c, mut rogue) = line().await;
    let mut events = c.node(B).services.events.subscribe();
    let b = addr(&c, B);
    // Three garbage frames, three over the 4 MiB request limit: six violations, one
    // more than the threshold.
    for k in 0..3u8 {
        let out = rogue
            .request(&b, Bytes::from(vec![0xff, 0xfe, k, 0x00, 0x13]))
            .await;
        assert!(matches!(out, RawOutcome::Response(_)), "{out:?}");
    }
    // B answers each having read its length alone, while M is still writing a body
    // nobody reads (so M's request would end only at its timeout): each is waited for
    // until B counts it.
    for k in 1..=3 {
        let _ = rogue
            .request_until(
                &b,
                Bytes::from(vec![0u8; 5 << 20]),
                T,
                &format!("B counts oversized frame {k}"),
                || async {
                    counter(
                        &c.metrics(B),
                        "wlnode_records_rejected_total",
                        "reason=\"frame_too_large\"",
                    ) >= f64::from(k)
                },
            )
            .await;
    }
    wait_for(T, "B bans M", || banned(&c)).await;
    // The ban is announced to B's officers as an audit violation.
    violation(&mut events, "peer_banned", |v| v["agency"] == "MM-ROGUE").await;
    let m = c.metrics(B);
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"bad_request\""
        ) >= 3.0
    );
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"frame_too_large\""
        ) >= 3.0
    );
    // Banned: a well-formed request no longer gets an answer.
    let notify = Bytes::from(encode_request(&Request::Notify(Notify {
        log_epoch: [0; 16],
        head_seq: 1,
    })));
    let mut again = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[M].dir)),
        1 << 20,
        1 << 20,
    );
    match again.request(&b, notify).await {
        RawOutcome::Failed(_) => {}
        RawOutcome::Response(r) => {
            let resp = decode_response(&r).unwrap();
            assert!(
                matches!(resp, Response::Error { .. }),
                "a banned peer got {resp:?}"
            );
        }
    }
    honest_traffic_flows(&c, "after-junk").await;
    stop(c, "garbage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_pushed_by_a_member_are_rejected_and_ban_it() {
    let (c, mut rogue) = line().await;
    let aa_key = read_secret_key(&c.fed.nodes[A].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let mm_key = read_secret_key(&c.fed.nodes[M].dir.join("agency.key"), KeyKind::Agency).unwrap();
    // Records claiming to be A's: half with a flipped signature bit, half signed by
    // M's own key (a key the roster does not give A).
    let mut bad = Vec::new();
    for k in 0..4 {
        let honest = record(
            &aa_key,
            "AA-EXPORT",
            EntryId::random().unwrap(),
            1,
            &format!("forged {k}"),
        );
        let mut sig = *honest.signature();
        sig.0[5] ^= 0x01;
        bad.push(
            Record::from_parts(
                honest.header_bytes().to_vec(),
                sig,
                honest.disclosures().to_vec(),
            )
            .unwrap(),
        );
        let wrong = record(
            &mm_key,
            "AA-EXPORT",
            EntryId::random().unwrap(),
            1,
            &format!("impostor {k}"),
        );
        bad.push(wrong.into_inner());
    }
    let ids: Vec<_> = bad.iter().map(|r| r.id()).collect();
    let _ = rogue.request(&addr(&c, B), push(&bad)).await;
    wait_for(T, "B bans M after 8 forged records", || banned(&c)).await;
    let m = c.metrics(B);
    let bad_sig = counter(
        &m,
        "wlnode_records_rejected_total",
        "reason=\"bad_signature\"",
    );
    let all = counter(&m, "wlnode_records_rejected_total", "peer=\"MM-ROGUE\"");
    assert!(bad_sig >= 4.0, "bad_signature counted: {bad_sig}\n{m}");
    assert!(
        all >= 9.0,
        "8 records and the ban counted for M: {all}\n{m}"
    );
    let held = c.records(B).await;
    assert!(
        ids.iter().all(|id| !held.contains(id)),
        "no forged record stored"
    );
    honest_traffic_flows(&c, "after-forgery").await;
    stop(c, "forged").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_signed_by_a_revoked_key_pushed_directly_are_rejected() {
    // trust.rs covers revoked-key records relayed by a node's sync; here the member
    // pushes them itself, past the threshold.
    let names = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE", "MM-ROGUE"];
    let specs: Vec<AgencySpec> = names
        .iter()
        .map(|a| AgencySpec::member(a, &["eu"]).unwrap())
        .collect();
    let sync = format!(
        "\n[sync]\nanti_entropy_interval = \"3s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"2s\"\nban_threshold = {THRESHOLD}\n"
    );
    let extra = names
        .iter()
        .map(|_| format!("{OPEN_POLICY}{sync}"))
        .collect();
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    let stolen = SecretKey::generate().unwrap();
    let roster = std::fs::read_to_string(&c.fed.roster).unwrap();
    let mm = "MM-ROGUE".parse().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let text =
        wlnode_config::roster_edit::add_key(&roster, &mm, &stolen.public_key(), past).unwrap();
    let text = wlnode_config::roster_edit::revoke_key(
        &text,
        &mm,
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
    for i in 0..3 {
        c.start(i).await;
    }
    let mut rogue = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[M].dir)),
        64 << 20,
        64 << 20,
    );
    let revoked: Vec<Record> = (0..THRESHOLD + 2)
        .map(|k| {
            record(
                &stolen,
                "MM-ROGUE",
                EntryId::random().unwrap(),
                1,
                &format!("revoked {k}"),
            )
            .into_inner()
        })
        .collect();
    let ids: Vec<_> = revoked.iter().map(|r| r.id()).collect();
    let _ = rogue.request(&addr(&c, B), push(&revoked)).await;
    wait_for(T, "B bans M after revoked-key records", || banned(&c)).await;
    let m = c.metrics(B);
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"revoked_key\""
        ) >= f64::from(THRESHOLD + 2),
        "{m}"
    );
    let held = c.records(B).await;
    assert!(ids.iter().all(|id| !held.contains(id)));
    honest_traffic_flows(&c, "after-revoked").await;
    stop(c, "revoked").await;
}

/// Issue 21, s35 (s32 L4): the authority revokes a stolen key in a roster that also
/// carries a federation setting this build does not know (signed by a later build).
/// The running node reloads it (reporting the setting), and the revocation takes
/// effect: a record the stolen key signs after `revoked_at`, pushed by its holder, is
/// refused (`revoked_key`) and not stored, where the same key's record was stored
/// before. Before, `deny_unknown_fields` made the reload fail: the node stayed on the
/// old roster and kept taking the stolen key's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_with_a_later_builds_setting_still_revokes_a_stolen_key() {
    let (c, mut rogue) = line().await;
    let auth = read_secret_key(&c.fed.authority_key, KeyKind::Authority).unwrap();
    let publish = |text: &str| {
        let sig = wlnode_crypto::roster::sign_roster(text.as_bytes(), &auth);
        std::fs::write(&c.fed.roster, text).unwrap();
        std::fs::write(c.fed.roster.with_extension("toml.sig"), sig.to_text()).unwrap();
    };
    // The key M will steal is one of MM's, valid: a record of it is stored.
    let stolen = SecretKey::generate().unwrap();
    let mm = "MM-ROGUE".parse().unwrap();
    let past = Timestamp(Timestamp::now().as_millis() - 7_200_000);
    let roster = std::fs::read_to_string(&c.fed.roster).unwrap();
    let text =
        wlnode_config::roster_edit::add_key(&roster, &mm, &stolen.public_key(), past).unwrap();
    let (v2, _, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    publish(&v2);
    c.node(B).services.control.reload().await.unwrap();
    let before = record(
        &stolen,
        "MM-ROGUE",
        EntryId::random().unwrap(),
        1,
        "Before Ltd",
    );
    let before_id = before.id();
    let _ = rogue
        .request(&addr(&c, B), push(&[before.into_inner()]))
        .await;
    wait_for(
        T,
        "B to store the key's record before the revocation",
        || async { c.records(B).await.contains(&before_id) },
    )
    .await;
    // The revocation, in a roster a later build signed with a setting this one lacks.
    let text = wlnode_config::roster_edit::revoke_key(
        &v2,
        &mm,
        &stolen.public_key(),
        Timestamp::now(),
        "stolen",
        &[],
    )
    .unwrap();
    let (v3, _, _) = wlnode_config::roster_edit::sign(&text, &auth).unwrap();
    publish(&format!(
        "{v3}\n[federation_settings]\nsettlement_rule_since = 2027-06-01T00:00:00Z\n"
    ));
    // Review s35-roster L4: a reload that fails after reading that roster (here B's
    // policy names an agency no roster lists) leaves the previous roster in force,
    // and the gauge describes that one, not the roster it refused.
    let cfg_path = c.fed.nodes[B].config.clone();
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        format!("{cfg}\n[[accept]]\nfrom = [\"ZZ-NOBODY\"]\n"),
    )
    .unwrap();
    let refused = c.node(B).services.control.reload().await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(c.node(B).services.trust.roster().version(), 2);
    assert_eq!(
        counter(&c.metrics(B), "wlnode_roster_settings_not_understood", ""),
        0.0
    );
    std::fs::write(&cfg_path, cfg).unwrap();
    let size_before = c
        .node(B)
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    let report = c
        .node(B)
        .services
        .control
        .reload()
        .await
        .expect("the node loads the roster with the unknown setting");
    assert!(report.roster_changed);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("settlement_rule_since")),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        counter(&c.metrics(B), "wlnode_roster_settings_not_understood", ""),
        1.0
    );
    // Review s35-roster H1: the audit log's `roster_loaded` names it, so an auditor
    // proves no breach of a cut-over this node did not apply.
    let events = c
        .node(B)
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| String::from_utf8_lossy(e).contains(
            r#""type":"roster_loaded","version":3,"not_understood":["settlement_rule_since"]}"#
        )),
        "{:?}",
        events
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect::<Vec<_>>()
    );
    let after = record(
        &stolen,
        "MM-ROGUE",
        EntryId::random().unwrap(),
        1,
        "After Ltd",
    );
    let after_id = after.id();
    let _ = rogue
        .request(&addr(&c, B), push(&[after.into_inner()]))
        .await;
    wait_for(T, "B to refuse the stolen key's record", || async {
        counter(
            &c.metrics(B),
            "wlnode_records_rejected_total",
            "reason=\"revoked_key\"",
        ) >= 1.0
    })
    .await;
    assert!(!c.records(B).await.contains(&after_id));
    stop(c, "later-setting").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_version_replayed_after_a_newer_one_changes_nothing() {
    let (c, mut rogue) = line().await;
    let mm_key = read_secret_key(&c.fed.nodes[M].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let entry = EntryId::random().unwrap();
    let v1 = record(&mm_key, "MM-ROGUE", entry, 1, "Replay Holdings v1");
    let v2 = record(&mm_key, "MM-ROGUE", entry, 2, "Replay Holdings v2");
    let b = addr(&c, B);
    let _ = rogue.request(&b, push(&[v2.clone().into_inner()])).await;
    wait_for(T, "v2 reaches A and C", || async {
        c.records(A).await.contains(&v2.id()) && c.records(C).await.contains(&v2.id())
    })
    .await;
    // Replay v1 (valid, signed, older) several times.
    for _ in 0..3 {
        let _ = rogue.request(&b, push(&[v1.clone().into_inner()])).await;
    }
    wait_for(T, "v1 reaches A and C as history", || async {
        c.records(A).await.contains(&v1.id()) && c.records(C).await.contains(&v1.id())
    })
    .await;
    for i in [A, B, C] {
        let heads = c.heads(i).await;
        let (_, (version, head, status, disputed)) = heads
            .iter()
            .find(|(k, _)| k.entry_id == entry)
            .expect("entry present");
        assert_eq!(
            (*version, *head, *status, *disputed),
            (2, v2.id(), Status::Active, false),
            "node {i}"
        );
    }
    // A valid old version is history, not an attack: no ban.
    assert!(!banned(&c).await);
    honest_traffic_flows(&c, "after-replay").await;
    stop(c, "replay").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_pair_is_kept_and_marked_disputed_everywhere() {
    let (c, mut rogue) = line().await;
    let mut events = c.node(B).services.events.subscribe();
    let mm_key = read_secret_key(&c.fed.nodes[M].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let entry = EntryId::random().unwrap();
    let x = record(&mm_key, "MM-ROGUE", entry, 1, "Equivocation Trading A");
    let y = record(&mm_key, "MM-ROGUE", entry, 1, "Equivocation Trading B");
    assert_ne!(x.id(), y.id());
    let _ = rogue
        .request(
            &addr(&c, B),
            push(&[x.clone().into_inner(), y.clone().into_inner()]),
        )
        .await;
    wait_for(
        T,
        "every honest node holds both and marks the entry disputed",
        || async {
            for i in [A, B, C] {
                let r = c.records(i).await;
                if !(r.contains(&x.id()) && r.contains(&y.id())) {
                    return false;
                }
                let heads = c.heads(i).await;
                if !heads
                    .iter()
                    .any(|(k, (_, _, _, d))| k.entry_id == entry && *d)
                {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let mut derived = Vec::new();
    for i in [A, B, C] {
        let h = c.heads(i).await;
        derived.push(h.into_iter().find(|(k, _)| k.entry_id == entry).unwrap().1);
    }
    assert!(
        derived.windows(2).all(|w| w[0] == w[1]),
        "same derived state: {derived:?}"
    );
    // B announced the equivocation to its officers, naming both records.
    let ev = violation(&mut events, "equivocation", |v| {
        v["entry_id"] == entry.to_hex().as_str()
    })
    .await;
    assert_eq!(ev["origin"], "MM-ROGUE");
    for r in [x.id(), y.id()] {
        assert!(
            ev["records"]
                .as_array()
                .unwrap()
                .contains(&serde_json::Value::from(r.to_string())),
            "{ev}"
        );
    }
    honest_traffic_flows(&c, "after-equivocation").await;
    stop(c, "equivocation").await;
}

/// Issue 19 item 3: one member signing many records for one (entry, version) made
/// every node's work and audit growth quadratic (each new record rewrote the entry
/// state with all of them, and its equivocation event listed all of them). Now a
/// store keeps `MAX_EQUIVOCATION_EVIDENCE` and refuses the rest, as strikes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocation_flood_keeps_bounded_evidence_and_bans_the_signer() {
    use wlnode_store::MAX_EQUIVOCATION_EVIDENCE;
    let (c, mut rogue) = line().await;
    let mm_key = read_secret_key(&c.fed.nodes[M].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let entry = EntryId::random().unwrap();
    let flood: Vec<Record> = (0..200)
        .map(|k| record(&mm_key, "MM-ROGUE", entry, 1, &format!("Variant {k}")).into_inner())
        .collect();
    let size_before = c
        .node(B)
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    for chunk in flood.chunks(20) {
        let _ = rogue.request(&addr(&c, B), push(chunk)).await;
        if banned(&c).await {
            break;
        }
    }
    wait_for(T, "B bans M for the flood", || banned(&c)).await;
    let held: Vec<_> = c
        .records(B)
        .await
        .into_iter()
        .filter(|id| flood.iter().any(|r| r.id() == *id))
        .collect();
    assert_eq!(held.len(), MAX_EQUIVOCATION_EVIDENCE, "bounded evidence");
    let heads = c.heads(B).await;
    assert!(
        heads
            .iter()
            .any(|(k, (_, _, _, d))| k.entry_id == entry && *d),
        "the entry is disputed"
    );
    let m = c.metrics(B);
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"equivocation_excess\""
        ) >= f64::from(THRESHOLD),
        "{m}"
    );
    // The audit log grew linearly: no equivocation event lists more than the bound.
    let events = c
        .node(B)
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap();
    for e in &events {
        assert!(e.len() < 2_000, "audit event of {} bytes", e.len());
    }
    honest_traffic_flows(&c, "after-equivocation-flood").await;
    stop(c, "equivocation flood").await;
}

/// Issue 19 item 3: during a roster rollover an honest peer with another roster
/// sends records whose key or member our roster does not know yet (or no longer),
/// and each used to be a strike, so rollovers banned honest peers. While the Hello
/// names another roster version such refusals are "not yet known": counted and
/// audited, no strike. With the same roster they are invalid and strike as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_a_roster_rollover_explains_are_not_strikes() {
    let (c, mut rogue) = line().await;
    let ours = c.node(B).services.trust.roster().version();
    let b = addr(&c, B);
    let hello = |roster_version| {
        Bytes::from(encode_request(&Request::Hello(wlnode_sync::msg::Hello {
            agency: "MM-ROGUE".parse().unwrap(),
            roster_version,
            log_epoch: [1; 16],
            head_seq: 0,
            backlog_pending: false,
        })))
    };
    // A key that a newer roster would give MM-ROGUE.
    let new_key = SecretKey::generate().unwrap();
    let unknown_key = |n: usize| -> Vec<Record> {
        (0..n)
            .map(|k| {
                record(
                    &new_key,
                    "MM-ROGUE",
                    EntryId::random().unwrap(),
                    1,
                    &format!("new key {k}"),
                )
                .into_inner()
            })
            .collect()
    };
    let RawOutcome::Response(_) = rogue.request(&b, hello(ours + 1)).await else {
        panic!("Hello refused");
    };
    let size_before = c
        .node(B)
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    let _ = rogue
        .request(&b, push(&unknown_key(3 * THRESHOLD as usize)))
        .await;
    wait_for(T, "B counts the refusals", || async {
        counter(
            &c.metrics(B),
            "wlnode_records_rejected_total",
            "reason=\"unknown_key\"",
        ) >= f64::from(3 * THRESHOLD)
    })
    .await;
    assert!(
        !banned(&c).await,
        "an honest peer mid-rollover is not banned"
    );
    // No strike, so no record-by-record audit either (review): one event for the
    // batch, or a member could grow the audit log without end.
    let events = c
        .node(B)
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap();
    let refusals = events
        .iter()
        .filter(|e| String::from_utf8_lossy(e).contains("\"unknown_key\""))
        .count();
    assert_eq!(refusals, 1, "one audit event for the batch");
    // Claiming our roster, the same records are invalid.
    let RawOutcome::Response(_) = rogue.request(&b, hello(ours)).await else {
        panic!("Hello refused");
    };
    let _ = rogue
        .request(&b, push(&unknown_key(3 * THRESHOLD as usize)))
        .await;
    wait_for(T, "B bans M", || banned(&c)).await;
    honest_traffic_flows(&c, "after-rollover").await;
    stop(c, "roster rollover").await;
}

/// Issue 19 item 5: a relay that holds a field its origin scoped to it alone, and
/// passes it on to an agency outside the scope. Before, B stored the disclosure (the
/// copy verifies: the origin signed every field). Now B drops it, keeps the rest,
/// strikes the relay and writes an audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_passing_on_a_field_outside_its_origins_scope_is_refused() {
    let (c, mut rogue) = line().await;
    let aa_key = read_secret_key(&c.fed.nodes[A].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let scoped = build_record(
        RecordMeta {
            entry_id: EntryId::random().unwrap(),
            origin: "AA-EXPORT".parse().unwrap(),
            version: 1,
            issued_at: Timestamp::now(),
            status: Status::Active,
            withdrawal_reason: None,
        },
        &draft(
            "Scoped Birth Date Trading",
            Some(r#"{"scope":"federation","fields":{"birth_date":["MM-ROGUE"]}}"#),
        ),
        &aa_key,
    )
    .unwrap();
    assert!(scoped.content().birth_date.is_some());
    let size_before = c
        .node(B)
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    // M relays A's full copy (hop 2) to B, which the scope leaves out.
    let _ = rogue
        .request(&addr(&c, B), push(&[scoped.clone().into_inner()]))
        .await;
    wait_for(T, "B stores the record", || async {
        c.records(B).await.contains(&scoped.id())
    })
    .await;
    let held = c
        .node(B)
        .services
        .store
        .record(scoped.id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        held.record.content().birth_date.is_none(),
        "the scoped field was dropped"
    );
    assert!(held.record.content().name.is_some(), "the rest is kept");
    let m = c.metrics(B);
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"field_out_of_scope\""
        ) >= 1.0,
        "{m}"
    );
    let events = c
        .node(B)
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| String::from_utf8_lossy(e).contains("\"field_out_of_scope\"")),
        "audited"
    );
    stop(c, "field scope").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_flood_is_absorbed() {
    let (c, mut rogue) = line().await;
    let before = peak_rss_kib();
    let frames = (0..20_000u64).map(|k| {
        Bytes::from(encode_request(&Request::Notify(Notify {
            log_epoch: [k as u8; 16],
            head_seq: k,
        })))
    });
    let started = std::time::Instant::now();
    let (ok, failed) = rogue
        .flood(&addr(&c, B), frames, 10_000, Duration::from_secs(90))
        .await;
    eprintln!(
        "notify flood: 20000 sent in {:?}, {ok} acked, {failed} refused; peak RSS {before} -> {} KiB",
        started.elapsed(),
        peak_rss_kib()
    );
    assert!(ok > 0, "B answers Notifies");
    honest_traffic_flows(&c, "during-flood").await;
    stop(c, "notify flood").await;
}

/// Found by `a_notify_flood_is_absorbed`'s review: a member that has said Hello could
/// name a new log epoch in every Notify, and each one reset and durably rewrote B's
/// cursor for it. Now a Notify must carry the Hello's epoch; others are strikes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_flood_with_changing_epochs_is_refused_and_bans_the_sender() {
    let (c, mut rogue) = line().await;
    let b = addr(&c, B);
    hello_as_m(&c, &mut rogue, &b).await;
    let frames = (0..1_000u64).map(|k| {
        Bytes::from(encode_request(&Request::Notify(Notify {
            log_epoch: [(k % 200 + 2) as u8; 16],
            head_seq: k,
        })))
    });
    flood_until_banned(
        &c,
        &mut rogue,
        &b,
        frames,
        "B bans M for epoch-changing Notifies",
        "notify_epoch_mismatch",
    )
    .await;
    honest_traffic_flows(&c, "after-epoch-flood").await;
    stop(c, "epoch flood").await;
}

/// Issue 19 item 3: a Hello that named a new log epoch on a live connection reset
/// B's cursor for M (a flushed store write) and queued a reconciliation, every frame.
/// Now only the first Hello of a connection sets the epoch; others are strikes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_flood_with_changing_epochs_is_refused_and_bans_the_sender() {
    let (c, mut rogue) = line().await;
    let b = addr(&c, B);
    let hello = |epoch: u8| {
        Bytes::from(encode_request(&Request::Hello(wlnode_sync::msg::Hello {
            agency: "MM-ROGUE".parse().unwrap(),
            roster_version: c.node(B).services.trust.roster().version(),
            log_epoch: [epoch; 16],
            head_seq: 7,
            backlog_pending: false,
        })))
    };
    let RawOutcome::Response(_) = rogue.request(&b, hello(1)).await else {
        panic!("Hello refused");
    };
    let frames = (0..1_000u64).map(|k| hello((k % 200 + 2) as u8));
    flood_until_banned(
        &c,
        &mut rogue,
        &b,
        frames,
        "B bans M for epoch-changing Hellos",
        "hello_epoch_mismatch",
    )
    .await;
    // The cursor B keeps for M still names the first Hello's epoch: no reset was
    // written for any of the others.
    let cursor = c
        .node(B)
        .services
        .store
        .call(|s| s.cursor(&"MM-ROGUE".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        cursor.map(|cur| cur.epoch),
        Some([1; 16]),
        "cursor reset by a later Hello"
    );
    honest_traffic_flows(&c, "after-hello-flood").await;
    stop(c, "hello epoch flood").await;
}

/// Issue 19 item 3: each Reconcile naming an unknown session made B build its whole
/// reconciliation set again on the store thread. Now new sessions are bounded per
/// peer, reuse the set while B's store is unchanged, and a flood is struck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_floods_with_fresh_sessions_are_bounded_and_ban_the_sender() {
    use wlnode_sync::reconcile;
    let (c, mut rogue) = line().await;
    c.add(B, "settable", 50, None).await;
    let b = addr(&c, B);
    hello_as_m(&c, &mut rogue, &b).await;
    let (_, first) =
        reconcile::Initiator::start(reconcile::storage(&[]).unwrap(), [0; 16]).unwrap();
    let message = Bytes::from(first.message.unwrap());
    let frames = (0..1_000u32).map(|k| {
        let mut session = [0u8; 16];
        session[..4].copy_from_slice(&k.to_be_bytes());
        Bytes::from(encode_request(&Request::Reconcile(
            wlnode_sync::msg::Reconcile {
                session,
                message: message.clone(),
                have: Vec::new(),
                need: Vec::new(),
            },
        )))
    });
    flood_until_banned(
        &c,
        &mut rogue,
        &b,
        frames,
        "B bans M for a flood of new sessions",
        "reconcile_session_flood",
    )
    .await;
    honest_traffic_flows(&c, "after-session-flood").await;
    stop(c, "reconcile session flood").await;
}

/// Issue 19 item 3: every refused audit request cost a flushed audit-log write, so a
/// member could make B write at will. Now refusals are strikes, every one is counted,
/// and the audit log gets at most one a minute per agency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_audit_requests_are_struck_and_logged_at_most_once_a_minute() {
    let (c, _) = line().await;
    let mut rogue = RawPeer::speaking(
        wlnode_net::codec::AUDIT_PROTOCOL,
        Some(RawPeer::seed_of(&c.fed.nodes[M].dir)),
        1 << 20,
        8 << 20,
    );
    let b = addr(&c, B);
    let size_before = c
        .node(B)
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    let req = Bytes::from(wlnode_audit::wire::encode_request(
        &wlnode_audit::wire::AuditRequest::GetCheckpoint,
    ));
    let frames = (0..200).map(|_| req.clone());
    let _ = rogue
        .flood(&b, frames, 10_000, Duration::from_secs(60))
        .await;
    wait_for(T, "B bans M for audit requests", || banned(&c)).await;
    let m = c.metrics(B);
    assert!(
        counter(&m, "wlnode_audit_refused_total", "MM-ROGUE") >= f64::from(THRESHOLD),
        "{m}"
    );
    assert!(
        counter(
            &m,
            "wlnode_records_rejected_total",
            "reason=\"audit_forbidden\""
        ) >= f64::from(THRESHOLD),
        "{m}"
    );
    let events = c
        .node(B)
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap();
    let refusals = events
        .iter()
        .filter(|e| String::from_utf8_lossy(e).contains("\"audit_refused\""))
        .count();
    assert_eq!(
        refusals, 1,
        "one audit event a minute, however many requests"
    );
    honest_traffic_flows(&c, "after-audit-flood").await;
    stop(c, "audit flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_with_absurd_cursors_and_limits_get_bounded_answers() {
    let (c, mut rogue) = line().await;
    c.add(B, "pullable", 200, None).await;
    let epoch = c.node(B).services.store.epoch();
    let b = addr(&c, B);
    let cases = [
        (epoch, 0, u32::MAX, u64::MAX),
        (epoch, u64::MAX, u32::MAX, u64::MAX),
        (epoch, u64::MAX - 1, 0, 0),
        (epoch, 0, 0, 0),
        ([0xee; 16], u64::MAX, u32::MAX, u64::MAX),
    ];
    for (log_epoch, after_seq, limit, max_bytes) in cases {
        let req = Bytes::from(encode_request(&Request::Pull(Pull {
            log_epoch,
            after_seq,
            limit,
            max_bytes,
        })));
        let RawOutcome::Response(r) = rogue.request(&b, req).await else {
            panic!("pull after={after_seq} limit={limit} failed");
        };
        assert!(r.len() <= 4 << 20, "answer within the batch limit");
        match decode_response(&r).unwrap() {
            Response::Batch(batch) => {
                assert!(batch.records.len() <= 5000);
                if log_epoch != epoch {
                    assert!(batch.records.is_empty() && batch.next_seq == 0);
                }
                if after_seq >= u64::MAX - 1 {
                    assert!(batch.records.is_empty(), "nothing after the end of the log");
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A flood of maximal pulls is answered or refused, never queued without bound.
    let frames = (0..2_000).map(|_| {
        Bytes::from(encode_request(&Request::Pull(Pull {
            log_epoch: epoch,
            after_seq: 0,
            limit: u32::MAX,
            max_bytes: u64::MAX,
        })))
    });
    let (ok, failed) = rogue
        .flood(&b, frames, 2_000, Duration::from_secs(90))
        .await;
    eprintln!(
        "pull flood: 2000 maximal pulls, {ok} answered, {failed} refused; peak RSS {} KiB",
        peak_rss_kib()
    );
    assert!(ok > 0);
    honest_traffic_flows(&c, "after-pulls").await;
    stop(c, "absurd pulls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_never_block_honest_peers() {
    use tokio::io::AsyncWriteExt;
    let (c, _rogue) = line().await;
    let port = c.ports[B].unwrap();
    // 200 TCP connections that start a handshake and never finish it, and 50 more
    // that send a stream-protocol header and stall.
    let mut held = Vec::new();
    for k in 0..250u32 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        if k >= 200 {
            let _ = s.write_all(b"\x13/multistream/1.0.0\n").await;
        }
        held.push(s);
    }
    honest_traffic_flows(&c, "with-half-open").await;
    eprintln!(
        "half-open: 250 stalled connections held; peak RSS {} KiB",
        peak_rss_kib()
    );
    drop(held);
    stop(c, "half-open").await;
}

/// Issue 19 item 6: reconciliation sets were built from the distribution alone, so a
/// member learned the ids, times and count of records that B's share rules keep from
/// it by reconciling an empty set. Now B's set with a peer holds what B would send it
/// (and the peer's own records). Here B shares with M only what A originates: M's
/// reconciliation finds A's records, and none of B's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_set_discloses_nothing_the_share_rules_keep_from_the_peer() {
    use wlnode_sync::reconcile;
    let names = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE", "MM-ROGUE"];
    let specs: Vec<AgencySpec> = names
        .iter()
        .map(|a| AgencySpec::member(a, &["eu"]).unwrap())
        .collect();
    let b_policy = r#"
[[share]]
to = ["AA-EXPORT", "CC-TRADE"]
origins = ["*"]
relay = true

[[share]]
to = ["MM-ROGUE"]
origins = ["AA-EXPORT"]
relay = true

[[accept]]
from = ["*"]
origins = ["*"]
"#;
    let extra = names
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if i == B {
                b_policy.to_owned()
            } else {
                OPEN_POLICY.to_owned()
            }
        })
        .collect();
    let mut c = Cluster::new(&specs, &[(0, 1), (1, 2)], extra);
    c.start(A).await;
    c.start(B).await;
    c.start(C).await;
    let mut rogue = RawPeer::new(
        Some(RawPeer::seed_of(&c.fed.nodes[M].dir)),
        64 << 20,
        64 << 20,
    );
    let from_a = c.add(A, "shared", 12, None).await;
    let own = c.add(B, "kept", 30, None).await;
    wait_for(T, "B holds A's entries", || async {
        let r = c.records(B).await;
        from_a.iter().all(|w| r.contains(&w.record_id))
    })
    .await;
    let b = addr(&c, B);
    hello_as_m(&c, &mut rogue, &b).await;
    // An empty set against B's: every id B's set holds comes back as "need".
    let session = [7u8; 16];
    let (mut init, mut step) =
        reconcile::Initiator::start(reconcile::storage(&[]).unwrap(), session).unwrap();
    let mut learned: Vec<RecordId> = Vec::new();
    loop {
        learned.extend(step.need.iter().copied());
        let Some(message) = step.message.take() else {
            break;
        };
        let req = Bytes::from(encode_request(&Request::Reconcile(
            wlnode_sync::msg::Reconcile {
                session,
                message: Bytes::from(message),
                have: Vec::new(),
                need: Vec::new(),
            },
        )));
        let RawOutcome::Response(frame) = rogue.request(&b, req).await else {
            panic!("Reconcile refused");
        };
        let reply = match decode_response(&frame).unwrap() {
            Response::Reconcile(r) => r,
            other => panic!("unexpected reply {other:?}"),
        };
        init.on_reply(&reply.message).unwrap();
        match init.next_step(0, usize::MAX) {
            Some(s) => step = s,
            None => break,
        }
    }
    assert!(init.difference_known(), "the session ran to its end");
    let leaked: Vec<&RecordId> = own
        .iter()
        .map(|w| &w.record_id)
        .filter(|id| learned.contains(id))
        .collect();
    assert!(
        leaked.is_empty(),
        "M learned {} of B's {} records its share rules keep from M",
        leaked.len(),
        own.len()
    );
    // What B would send M is in the set: the reconciliation still works.
    for w in &from_a {
        assert!(
            learned.contains(&w.record_id),
            "A's record missing from the set"
        );
    }
    assert_eq!(learned.len(), from_a.len(), "{learned:?}");
    stop(c, "reconciliation set").await;
}
