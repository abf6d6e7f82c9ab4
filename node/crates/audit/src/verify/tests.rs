//! The auditor's checks over hand-built logs signed with real roster node keys.

use wlnode_crypto::model::{EntryDraft, EntryId, Status};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::{SecretKey, Timestamp, VerifiedRecord};

use super::*;
use crate::event::{Checkpoint, EXPORT_FORMAT, SentHeader};

pub(super) struct Fixture {
    pub(super) roster: Roster,
    pub(super) agency_keys: Vec<SecretKey>,
    pub(super) node_keys: Vec<SecretKey>,
}

pub(super) const NAMES: [&str; 3] = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE"];

/// A signed roster of the three members (AA and BB in `eu`, CC in `asean`), built in
/// memory the way `wlnode roster` builds one on disk.
pub(super) fn fixture() -> Fixture {
    fixture_settings("")
}

/// [`fixture`], with `settings` (TOML lines) as the roster's
/// `[federation_settings]` when not empty.
pub(super) fn fixture_settings(settings: &str) -> Fixture {
    use wlnode_config::roster_edit::{self, NewMember};
    let authority = SecretKey::generate().unwrap();
    let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
    let (mut agency_keys, mut node_keys) = (Vec::new(), Vec::new());
    for (agency, group) in NAMES.iter().zip(["eu", "eu", "asean"]) {
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                agency,
                wlnode_crypto::roster::Role::Member,
                key.public_key(),
                vec![node.public_key().peer_id()],
                &[group],
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        agency_keys.push(key);
        node_keys.push(node);
    }
    if !settings.is_empty() {
        text.push_str(&format!("\n[federation_settings]\n{settings}\n"));
    }
    let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
    Fixture {
        roster,
        agency_keys,
        node_keys,
    }
}

pub(super) fn ag(i: usize) -> AgencyCode {
    NAMES[i].parse().unwrap()
}

/// A record of AA-EXPORT for group `eu` only.
fn eu_record(f: &Fixture) -> VerifiedRecord {
    let draft: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "person", "name": "Secret Name"},
        "reason": "denial",
        "distribution": {"scope": "groups", "groups": ["eu"], "sensitivity": "restricted"}
    }))
    .unwrap();
    build_record(
        RecordMeta {
            entry_id: EntryId::random().unwrap(),
            origin: ag(0),
            version: 1,
            issued_at: Timestamp::now(),
            status: Status::Active,
            withdrawal_reason: None,
        },
        &draft,
        &f.agency_keys[0],
    )
    .unwrap()
}

/// A `sent` event in the older form, with the header inline.
fn sent(r: &VerifiedRecord, to: usize, at: u64) -> Event {
    let mut e = sent_bare(r, to, at);
    if let EventKind::Sent {
        header, signature, ..
    } = &mut e.kind
    {
        *header = Some(hex::encode(r.header_bytes()));
        *signature = Some(hex::encode(r.signature().0));
    }
    e
}

/// A `sent` event as nodes write it now: the header travels beside it.
fn sent_bare(r: &VerifiedRecord, to: usize, at: u64) -> Event {
    Event::new(
        at,
        EventKind::Sent {
            record_id: r.id(),
            to: ag(to),
            hops: 1,
            withheld: vec![],
            header: None,
            signature: None,
        },
    )
}

fn beside(r: &VerifiedRecord) -> SentHeader {
    SentHeader {
        record_id: r.id(),
        header: hex::encode(r.header_bytes()),
        signature: hex::encode(r.signature().0),
    }
}

fn accepted(r: &VerifiedRecord, from: usize, at: u64) -> Event {
    Event::new(
        at,
        EventKind::Accepted {
            record_id: r.id(),
            from: ag(from),
            hops: 1,
            outcome: "stored".into(),
        },
    )
}

/// The log of node `i` with `events` and a checkpoint at each of `sizes`.
pub(super) fn log(f: &Fixture, i: usize, events: &[Event], sizes: &[u64]) -> ExportedLog {
    let mut tree = MemStore::new();
    for (n, e) in events.iter().enumerate() {
        merkle::append(&mut tree, n as u64, merkle::leaf_hash(&e.encode())).unwrap();
    }
    let key = &f.node_keys[i];
    ExportedLog {
        format: EXPORT_FORMAT.into(),
        agency: ag(i),
        peer_id: key.public_key().peer_id(),
        events: events
            .iter()
            .map(|e| String::from_utf8(e.encode()).unwrap())
            .collect(),
        checkpoints: sizes
            .iter()
            .map(|s| {
                Checkpoint {
                    agency: ag(i),
                    peer_id: key.public_key().peer_id(),
                    size: *s,
                    root: hex::encode(merkle::root(&tree, *s).unwrap()),
                    // Signed after the events it covers, as a node does.
                    timestamp: events
                        .iter()
                        .take(usize::try_from(*s).unwrap())
                        .map(|e| e.at)
                        .max()
                        .unwrap_or(1),
                }
                .sign(key)
            })
            .collect(),
        headers: vec![],
    }
}

fn kinds(r: &Report) -> Vec<&str> {
    r.violations.iter().map(|v| v.kind.as_str()).collect()
}

pub(super) const NO_TOLERANCE: Options = Options {
    tolerance_ms: 0,
    now_ms: None,
    max_checkpoint_age_ms: super::MAX_CHECKPOINT_AGE_MS,
};

#[test]
fn clean_pair_passes_with_lag() {
    let f = fixture();
    let r = eu_record(&f);
    let a = log(
        &f,
        0,
        &[
            Event::new(1000, EventKind::Created { record_id: r.id() }),
            sent(&r, 1, 1010),
        ],
        &[2],
    );
    let b = log(
        &f,
        1,
        &[
            accepted(&r, 0, 1250),
            Event::new(2000, EventKind::NodeStopped),
        ],
        &[2],
    );
    let rep = verify(&f.roster, &[a, b], &AuditorState::default(), NO_TOLERANCE);
    assert!(rep.ok, "{:?}", rep.violations);
    let p = &rep.pairs[0];
    assert_eq!((p.sent, p.accepted, p.missing), (1, 1, 0));
    assert_eq!(p.lag_max_ms, Some(250));
    assert_eq!(rep.state.heads.len(), 2);
}

#[test]
fn a_send_that_skipped_the_choke_point_is_a_distribution_violation() {
    // A test-only sender: AA-EXPORT sends an `eu`-only record to CC-TRADE (asean),
    // bypassing the policy, and logs it honestly.
    let f = fixture();
    let r = eu_record(&f);
    let a = log(&f, 0, &[sent(&r, 2, 10)], &[1]);
    let c = log(&f, 2, &[Event::new(5, EventKind::NodeStopped)], &[1]);
    let rep = verify(
        &f.roster,
        &[a, c],
        &AuditorState::default(),
        Options::default(),
    );
    assert!(!rep.ok);
    let v = rep
        .violations
        .iter()
        .find(|v| v.kind == "distribution")
        .unwrap();
    assert_eq!(v.node, NAMES[0]);
    assert_eq!(v.evidence["deny"], "not_in_distribution");
    // Within the tolerance the missing receipt is only in flight.
    assert_eq!(rep.pairs[0].in_flight, 1);
}

#[test]
fn missing_receipt_outside_the_tolerance() {
    let f = fixture();
    let r = eu_record(&f);
    let a = log(&f, 0, &[sent(&r, 1, 10)], &[1]);
    let b = log(&f, 1, &[Event::new(10_000, EventKind::NodeStopped)], &[1]);
    let rep = verify(
        &f.roster,
        &[a.clone(), b.clone()],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&rep), ["missing_receipt"]);
    let rep = verify(
        &f.roster,
        &[a, b],
        &AuditorState::default(),
        Options {
            tolerance_ms: 60_000,
            ..NO_TOLERANCE
        },
    );
    assert!(rep.ok);
}

#[test]
fn split_view_edit_truncation_and_forgery() {
    let f = fixture();
    let e = |at| {
        Event::new(
            at,
            EventKind::NodeStarted {
                version: "1".into(),
            },
        )
    };
    let events = [e(1), e(2), e(3)];
    let good = log(&f, 0, &events, &[2, 3]);
    let rep = verify(
        &f.roster,
        std::slice::from_ref(&good),
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(rep.ok);
    let state = rep.state;

    // Another history of the same size, signed: a split view against the state.
    let other = log(&f, 0, &[e(1), e(2), e(9)], &[3]);
    let rep = verify(
        &f.roster,
        std::slice::from_ref(&other),
        &state,
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&rep), ["split_view"]);
    // Both checkpoints in one export: split view too.
    let mut both = good.clone();
    both.checkpoints.extend(other.checkpoints);
    assert!(
        kinds(&verify(
            &f.roster,
            &[both],
            &AuditorState::default(),
            NO_TOLERANCE
        ))
        .contains(&"split_view")
    );

    // An edited event: the checkpoint covering it no longer matches.
    let mut edited = good.clone();
    edited.events[1] = String::from_utf8(e(7).encode()).unwrap();
    let k = kinds(&verify(
        &f.roster,
        &[edited],
        &AuditorState::default(),
        NO_TOLERANCE,
    ))
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    assert_eq!(k, ["checkpoint_mismatch", "checkpoint_mismatch"]);

    // Truncated below its own checkpoint, and below the auditor's state.
    let mut cut = good.clone();
    cut.events.pop();
    assert_eq!(
        kinds(&verify(
            &f.roster,
            &[cut.clone()],
            &AuditorState::default(),
            NO_TOLERANCE
        )),
        ["truncated"]
    );
    cut.checkpoints.retain(|c| c.checkpoint.size <= 2);
    assert_eq!(
        kinds(&verify(&f.roster, &[cut], &state, NO_TOLERANCE)),
        ["truncated"]
    );

    // Grown but rewritten: the consistency proof fails.
    let rewritten = log(&f, 0, &[e(1), e(8), e(3), e(4)], &[4]);
    assert_eq!(
        kinds(&verify(&f.roster, &[rewritten], &state, NO_TOLERANCE)),
        ["not_append_only"]
    );
    // Grown honestly: passes, and the state advances.
    let grown = log(&f, 0, &[e(1), e(2), e(3), e(4)], &[4]);
    let rep = verify(&f.roster, &[grown], &state, NO_TOLERANCE);
    assert!(rep.ok, "{:?}", rep.violations);
    assert_eq!(rep.state.heads[&ag(0)].size, 4);

    // A checkpoint signed by another node's key.
    let mut forged = good;
    forged.checkpoints[0] = forged.checkpoints[0]
        .checkpoint
        .clone()
        .sign(&f.node_keys[1]);
    assert_eq!(
        kinds(&verify(
            &f.roster,
            &[forged],
            &AuditorState::default(),
            NO_TOLERANCE
        )),
        ["bad_checkpoint"]
    );
}

#[test]
fn equivocations_are_reported_once() {
    let f = fixture();
    let (r1, r2) = (eu_record(&f), eu_record(&f));
    let eq = Event::new(
        5,
        EventKind::Equivocation {
            origin: ag(0),
            version: 1,
            records: vec![r1.id(), r2.id()],
        },
    );
    let a = log(&f, 0, std::slice::from_ref(&eq), &[1]);
    let b = log(&f, 1, &[eq], &[1]);
    let rep = verify(&f.roster, &[a, b], &AuditorState::default(), NO_TOLERANCE);
    assert_eq!(kinds(&rep), ["equivocation"]);
}

#[test]
fn peer_block_events_verify_and_are_counted() {
    let f = fixture();
    let a = log(
        &f,
        0,
        &[
            Event::new(1000, EventKind::PeerBlocked { agency: ag(1) }),
            Event::new(2000, EventKind::PeerUnblocked { agency: ag(1) }),
        ],
        &[1, 2],
    );
    let rep = verify(&f.roster, &[a], &AuditorState::default(), NO_TOLERANCE);
    assert!(rep.ok, "{:?}", rep.violations);
    let s = &rep.nodes[0];
    assert_eq!(s.by_type.get("peer_blocked"), Some(&1));
    assert_eq!(s.by_type.get("peer_unblocked"), Some(&1));
}

#[test]
fn source_refresh_events_verify_and_are_counted() {
    let f = fixture();
    let refresh = |at, outcome: &str, class: Option<&str>| {
        Event::new(
            at,
            EventKind::SourceRefresh {
                source: "un-sc".into(),
                outcome: outcome.into(),
                added: 3,
                amended: 1,
                withdrawn: 0,
                unchanged: 10,
                failed: 0,
                error_class: class.map(str::to_owned),
                origin: Some("https://scsanctions.un.org/l.xml".into()),
                sha256: (outcome == "updated").then(|| "cd".repeat(32)),
            },
        )
    };
    let a = log(
        &f,
        0,
        &[
            refresh(1000, "updated", None),
            refresh(2000, "failed", Some("truncated")),
        ],
        &[1, 2],
    );
    let rep = verify(&f.roster, &[a], &AuditorState::default(), NO_TOLERANCE);
    assert!(rep.ok, "{:?}", rep.violations);
    assert_eq!(rep.nodes[0].by_type.get("source_refresh"), Some(&2));
}

/// `sent` events without an inline header are checked against the headers carried
/// beside them: a genuine one is used (and a distribution violation still found), a
/// missing one or one filed under another record's id is a `bad_header`, and so is a
/// header whose signature was swapped.
#[test]
fn headers_beside_sent_events_are_bound_by_the_record_id() {
    let f = fixture();
    let r = eu_record(&f);
    let other = eu_record(&f);
    let stopped = |at| Event::new(at, EventKind::NodeStopped);
    let with = |events: &[Event], headers: Vec<SentHeader>| {
        let mut l = log(&f, 0, events, &[events.len() as u64]);
        l.headers = headers;
        l
    };
    let b = log(&f, 1, &[accepted(&r, 0, 20), stopped(30)], &[2]);
    let c = log(&f, 2, &[stopped(30)], &[1]);
    let run = |a: ExportedLog| {
        verify(
            &f.roster,
            &[a, b.clone(), c.clone()],
            &AuditorState::default(),
            Options::default(),
        )
    };

    let rep = run(with(&[sent_bare(&r, 1, 10)], vec![beside(&r)]));
    assert!(rep.ok, "{:?}", rep.violations);

    let rep = run(with(&[sent_bare(&r, 1, 10)], vec![]));
    assert_eq!(kinds(&rep), ["bad_header"]);
    assert!(rep.violations[0].detail.contains("no signed header"));

    // Another record's header filed under this record's id is not this record's.
    let mut wrong = beside(&other);
    wrong.record_id = r.id();
    let rep = run(with(&[sent_bare(&r, 1, 10)], vec![wrong]));
    assert_eq!(kinds(&rep), ["bad_header"]);

    let mut forged = beside(&r);
    forged.signature = beside(&other).signature;
    let rep = run(with(&[sent_bare(&r, 1, 10)], vec![forged]));
    assert_eq!(kinds(&rep), ["bad_header"]);
    assert!(rep.violations[0].detail.contains("signature"));

    // The distribution check reads the header beside the event.
    let rep = run(with(&[sent_bare(&r, 2, 10)], vec![beside(&r)]));
    assert!(
        kinds(&rep).contains(&"distribution"),
        "{:?}",
        rep.violations
    );
}

fn started(at: u64) -> Event {
    Event::new(
        at,
        EventKind::NodeStarted {
            version: "1".into(),
        },
    )
}

/// Issue 19: the first run reported the rewrite, and adopted the rewritten log as the
/// verified head, so the second run passed.
#[test]
fn a_rewritten_log_is_reported_again_on_the_next_run() {
    let f = fixture();
    let good = log(&f, 0, &[started(1), started(2), started(3)], &[3]);
    let state = verify(&f.roster, &[good], &AuditorState::default(), NO_TOLERANCE).state;
    let rewritten = log(
        &f,
        0,
        &[started(1), started(8), started(3), started(4)],
        &[4],
    );
    let first = verify(
        &f.roster,
        std::slice::from_ref(&rewritten),
        &state,
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&first), ["not_append_only"]);
    assert!(
        first.violations[0].proven,
        "its own signed checkpoints prove it"
    );
    assert_eq!(
        first.state.heads[&ag(0)].size,
        3,
        "the rewrite is not adopted"
    );
    let second = verify(&f.roster, &[rewritten], &first.state, NO_TOLERANCE);
    assert_eq!(kinds(&second), ["not_append_only"], "still reported");
    // The same for a split view.
    let other = log(&f, 0, &[started(1), started(2), started(9)], &[3]);
    let first = verify(
        &f.roster,
        std::slice::from_ref(&other),
        &state,
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&first), ["split_view"]);
    let second = verify(&f.roster, &[other], &first.state, NO_TOLERANCE);
    assert_eq!(kinds(&second), ["split_view"]);
}

#[test]
fn an_export_naming_a_peer_id_outside_the_roster_leaves_the_state_alone() {
    let f = fixture();
    let mut stranger = log(&f, 0, &[started(1)], &[1]);
    // Signed consistently by a key the roster does not list for AA.
    let key = SecretKey::generate().unwrap();
    stranger.peer_id = key.public_key().peer_id();
    stranger.checkpoints = vec![
        Checkpoint {
            peer_id: stranger.peer_id.clone(),
            ..stranger.checkpoints[0].checkpoint.clone()
        }
        .sign(&key),
    ];
    let rep = verify(
        &f.roster,
        &[stranger],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&rep), ["unknown_node"]);
    assert!(rep.state.heads.is_empty(), "nothing adopted");
}

#[test]
fn a_checkpoint_older_than_the_limit_is_stale() {
    let f = fixture();
    let a = log(&f, 0, &[started(1_000)], &[1]);
    let opts = |now| Options {
        now_ms: Some(now),
        max_checkpoint_age_ms: 60_000,
        ..NO_TOLERANCE
    };
    let rep = verify(
        &f.roster,
        std::slice::from_ref(&a),
        &AuditorState::default(),
        opts(30_000),
    );
    assert!(rep.ok, "{:?}", rep.violations);
    let rep = verify(&f.roster, &[a], &AuditorState::default(), opts(1_000_000));
    assert_eq!(kinds(&rep), ["stale_checkpoint"]);
    assert_eq!(
        rep.state.heads[&ag(0)].size,
        1,
        "still the node's genuine history"
    );
}

/// A log with no signed checkpoint vouches for nothing: it is a violation, and what it
/// says of other nodes is no evidence against them. Nor are events after a log's last
/// checkpoint.
#[test]
fn unsigned_events_are_no_evidence_against_another_node() {
    let f = fixture();
    let r = eu_record(&f);
    // B claims a receipt from A that A never logged, without a checkpoint.
    let b = log(&f, 1, &[accepted(&r, 0, 100), started(5_000)], &[]);
    let a = log(&f, 0, &[started(9_000)], &[1]);
    let rep = verify(
        &f.roster,
        &[a.clone(), b],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert_eq!(kinds(&rep), ["no_checkpoint"]);
    assert_eq!(rep.violations[0].node, "BB-CUSTOMS");
    // The same claim after B's last checkpoint: still nothing against A.
    let b = log(
        &f,
        1,
        &[started(50), accepted(&r, 0, 100), started(5_000)],
        &[1],
    );
    let rep = verify(
        &f.roster,
        &[a.clone(), b],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(rep.ok, "{:?}", rep.violations);
    // Under B's checkpoint it is a finding, but for the pair: the logs cannot tell who
    // lies.
    let b = log(&f, 1, &[accepted(&r, 0, 100), started(5_000)], &[2]);
    let rep = verify(&f.roster, &[a, b], &AuditorState::default(), NO_TOLERANCE);
    assert_eq!(kinds(&rep), ["receipt_without_send"]);
    let v = &rep.violations[0];
    assert_eq!(v.node, "AA-EXPORT->BB-CUSTOMS");
    assert!(!v.proven);
    assert!(
        rep.nodes.iter().all(|n| n.violations == 0),
        "neither node is blamed"
    );
}

/// A logs a send to B that never happened: before, the missing receipt was charged to
/// B, judged by times B itself wrote.
#[test]
fn a_node_cannot_frame_an_honest_peer() {
    let f = fixture();
    let r = eu_record(&f);
    let a = log(&f, 0, &[sent(&r, 1, 100), started(200)], &[2]);
    // B's checkpoint predates the alleged send plus the tolerance: in flight, no finding
    // (before, B's later events were enough to call it missing).
    let b = log(&f, 1, &[started(50), started(100_000)], &[1]);
    let opts = Options {
        tolerance_ms: 1_000,
        ..NO_TOLERANCE
    };
    let rep = verify(&f.roster, &[a.clone(), b], &AuditorState::default(), opts);
    assert!(rep.ok, "{:?}", rep.violations);
    assert_eq!(rep.pairs[0].in_flight, 1);
    // B signed a checkpoint well after it: the send is unmatched, for the pair.
    let b = log(&f, 1, &[started(50), started(100_000)], &[2]);
    let rep = verify(&f.roster, &[a, b], &AuditorState::default(), opts);
    assert_eq!(kinds(&rep), ["missing_receipt"]);
    assert_eq!(rep.violations[0].node, "AA-EXPORT->BB-CUSTOMS");
    assert_eq!(rep.violations[0].evidence["fault"], "undetermined");
    assert!(rep.nodes.iter().all(|n| n.violations == 0));
}

/// The auditor holds every sent header: two different records of one version of one
/// entry, signed by the origin and sent to different neighbours, prove an equivocation
/// even though no node holds both.
#[test]
fn an_origin_signing_two_versions_for_different_neighbours_is_caught_from_the_headers() {
    let f = fixture();
    let r1 = eu_record(&f);
    let draft: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "person", "name": "Another Name"},
        "reason": "denial",
        "distribution": {"scope": "groups", "groups": ["eu"], "sensitivity": "restricted"}
    }))
    .unwrap();
    let r2 = build_record(
        RecordMeta {
            entry_id: r1.header().entry_id,
            origin: ag(0),
            version: 1,
            issued_at: Timestamp::now(),
            status: Status::Active,
            withdrawal_reason: None,
        },
        &draft,
        &f.agency_keys[0],
    )
    .unwrap();
    let mut a = log(
        &f,
        0,
        &[sent_bare(&r1, 1, 10), sent_bare(&r2, 2, 11), started(20)],
        &[3],
    );
    a.headers = vec![beside(&r1), beside(&r2)];
    let rep = verify(&f.roster, &[a], &AuditorState::default(), NO_TOLERANCE);
    let eq: Vec<&Violation> = rep
        .violations
        .iter()
        .filter(|v| v.kind == "equivocation")
        .collect();
    assert_eq!(eq.len(), 1, "{:?}", rep.violations);
    assert_eq!(eq[0].node, "AA-EXPORT");
    assert!(eq[0].proven);
}

/// Issue 19 item 5: the auditor reports a `sent` event that gave a scoped field to an
/// agency outside its scope, proven by the origin's signed header and the sender's
/// own log (what it says it withheld).
#[test]
fn a_send_of_a_scoped_field_outside_its_scope_is_reported() {
    let f = fixture();
    let draft: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "person", "name": "Scoped Name", "birth_date": "1970-01-02",
                    "identifiers": [{"type": "passport", "value": "P1"}]},
        "reason": "denial",
        "distribution": {"scope": "federation",
                         "fields": {"birth_date": ["BB-CUSTOMS"], "identifiers": ["group:eu"]}}
    }))
    .unwrap();
    let r = build_record(
        RecordMeta {
            entry_id: EntryId::random().unwrap(),
            origin: ag(0),
            version: 1,
            issued_at: Timestamp::now(),
            status: Status::Active,
            withdrawal_reason: None,
        },
        &draft,
        &f.agency_keys[0],
    )
    .unwrap();
    let to_cc = |withheld: &[&str]| {
        let mut e = sent(&r, 2, 10);
        if let EventKind::Sent { withheld: w, .. } = &mut e.kind {
            *w = withheld.iter().map(|s| (*s).to_owned()).collect();
        }
        e
    };
    let run = |e: Event| {
        let a = log(&f, 0, &[e], &[1]);
        let c = log(&f, 2, &[Event::new(5, EventKind::NodeStopped)], &[1]);
        verify(
            &f.roster,
            &[a, c],
            &AuditorState::default(),
            Options::default(),
        )
    };
    // CC (asean, not BB) got the birth date and the identifier.
    let rep = run(to_cc(&[]));
    let v = rep
        .violations
        .iter()
        .find(|v| v.kind == "field_scope")
        .expect("reported");
    assert_eq!(v.node, NAMES[0]);
    assert_eq!(
        v.evidence["fields"],
        serde_json::json!(["birth_date", "identifiers"])
    );
    assert!(
        !v.proven,
        "the identifiers scope rests on group membership, judged by the auditor's roster"
    );
    // Only the birth date (scoped to an agency): proven by signed data alone.
    let rep = run(to_cc(&["identifiers"]));
    let v = rep
        .violations
        .iter()
        .find(|v| v.kind == "field_scope")
        .expect("reported");
    assert!(v.proven);
    assert_eq!(v.evidence["fields"], serde_json::json!(["birth_date"]));
    // The receiver logged refusing a scoped field that the sender says it withheld:
    // one of them is wrong; reported for the pair, not proven.
    let a = log(&f, 0, &[to_cc(&["identifiers", "birth_date"])], &[1]);
    let refused = Event::new(
        12,
        EventKind::Rejected {
            record_id: Some(r.id()),
            from: ag(0),
            reason: "field_out_of_scope".into(),
        },
    );
    let c = log(&f, 2, &[refused], &[1]);
    let rep = verify(
        &f.roster,
        &[a, c],
        &AuditorState::default(),
        Options::default(),
    );
    let v = rep
        .violations
        .iter()
        .find(|v| v.kind == "field_scope")
        .expect("reported");
    assert_eq!(v.node, format!("{}->{}", NAMES[0], NAMES[2]));
    assert!(!v.proven);
    // Withholding both: no finding.
    let rep = run(to_cc(&["identifiers", "birth_date"]));
    assert!(
        !kinds(&rep).contains(&"field_scope"),
        "{:?}",
        rep.violations
    );
    // To BB (in eu, named for the birth date) nothing is out of scope.
    let a = log(&f, 0, &[sent(&r, 1, 10)], &[1]);
    let b = log(&f, 1, &[Event::new(5, EventKind::NodeStopped)], &[1]);
    let rep = verify(
        &f.roster,
        &[a, b],
        &AuditorState::default(),
        Options::default(),
    );
    assert!(
        !kinds(&rep).contains(&"field_scope"),
        "{:?}",
        rep.violations
    );
}

fn mail(action: &str, to: usize, peer: usize, at: u64, expires_at: u64) -> Event {
    Event::new(
        at,
        EventKind::Mail {
            action: action.into(),
            message_id: "ab".repeat(16),
            item: "message".into(),
            from: ag(0),
            to: ag(to),
            kind: "consult_request".into(),
            size: 1040,
            peer: Some(ag(peer)),
            reason: None,
            expires_at: Some(expires_at),
            ack: None,
            copy: None,
        },
    )
}

/// Review of issue 21, finding 12: a relay that took a message and had no onward
/// link (a dead end) was reported as `mail_not_relayed`. Now only a relay whose own
/// log shows a link to another neighbour while the message lived is reported.
#[test]
fn a_dead_end_relay_is_not_blamed_for_mail_it_could_not_hand_on() {
    const EXP: u64 = 1000 + 40 * 60_000;
    let f = fixture();
    let r = eu_record(&f);
    // BB took AA's message for CC at 1000; it expired 40 min later (s37: a copy
    // living under `MIN_JUDGED_LIFETIME_MS` is not judged); BB checkpointed after.
    let dead_end = log(
        &f,
        1,
        &[
            mail("received", 2, 0, 1000, EXP),
            // Only AA, where the message came from, is in its log.
            accepted(&r, 0, 2000),
            Event::new(EXP + 4000, EventKind::NodeStopped),
        ],
        &[3],
    );
    let rep = verify(
        &f.roster,
        &[dead_end],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(
        !kinds(&rep).contains(&"mail_not_relayed"),
        "{:?}",
        rep.violations
    );
    // With CC reachable while the message lived (it sent CC a record), sitting on the
    // message is reported.
    let sat_on_it = log(
        &f,
        1,
        &[
            mail("received", 2, 0, 1000, EXP),
            legacy_route(2, 3000),
            Event::new(EXP + 4000, EventKind::NodeStopped),
        ],
        &[3],
    );
    let rep = verify(
        &f.roster,
        &[sat_on_it],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(
        kinds(&rep).contains(&"mail_not_relayed"),
        "{:?}",
        rep.violations
    );
    // A link only after the expiry is no route either.
    let late = log(
        &f,
        1,
        &[
            mail("received", 2, 0, 1000, EXP),
            legacy_route(2, EXP + 1000),
            Event::new(EXP + 4000, EventKind::NodeStopped),
        ],
        &[3],
    );
    let rep = verify(&f.roster, &[late], &AuditorState::default(), NO_TOLERANCE);
    assert!(
        !kinds(&rep).contains(&"mail_not_relayed"),
        "{:?}",
        rep.violations
    );
    // Handed on: nothing to report.
    let relayed = log(
        &f,
        1,
        &[
            mail("received", 2, 0, 1000, EXP),
            mail("handed", 2, 2, 1100, EXP),
            Event::new(EXP + 4000, EventKind::NodeStopped),
        ],
        &[3],
    );
    let rep = verify(
        &f.roster,
        &[relayed],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(
        !kinds(&rep).contains(&"mail_not_relayed"),
        "{:?}",
        rep.violations
    );
}

/// Review s31-consult M2: a late answer in the requester's log that the origin's
/// log, covered past its signed time, does not show is reported (not proven: one of
/// the two logs is wrong, so against the pair, review s31-fixes C2); one the origin
/// logged, or one its log does not cover yet, is not.
#[test]
fn a_late_answer_the_origins_log_does_not_show_is_reported() {
    use wlnode_consult::{Answer, ConsultationId, TrailEvent, TrailKind};
    let f = fixture();
    let id = ConsultationId([7; 16]);
    let day = 86_400_000u64;
    let deadline = 30 * day;
    let step = |kind: TrailKind, at: u64, from: usize, to: usize| {
        Event::new(
            at,
            EventKind::Consultation {
                step: TrailEvent {
                    consultation_id: id,
                    kind,
                    at: Timestamp(at),
                    from: ag(from),
                    to: ag(to),
                },
            },
        )
    };
    let requested = |at| {
        step(
            TrailKind::Requested {
                evidence: None,
                deadline: Timestamp(deadline),
            },
            at,
            1,
            0,
        )
    };
    let requester = log(
        &f,
        1,
        &[
            requested(1000),
            step(TrailKind::Expired, deadline, 0, 1),
            step(
                TrailKind::AnsweredLate {
                    evidence: None,
                    answer: Answer::NoObjection,
                    signed_at: Timestamp(deadline - 60_000),
                    arrived_at: None,
                },
                deadline + 2000,
                0,
                1,
            ),
        ],
        &[3],
    );
    let origin = |answered: bool, until: u64| {
        let mut events = vec![requested(1000)];
        if answered {
            events.push(step(
                TrailKind::Answered {
                    evidence: None,
                    answer: Answer::NoObjection,
                },
                deadline - 60_000,
                0,
                1,
            ));
        } else if until >= deadline {
            events.push(step(TrailKind::Expired, deadline, 0, 1));
        }
        events.push(Event::new(until, EventKind::NodeStopped));
        let n = events.len() as u64;
        log(&f, 0, &events, &[n])
    };
    let unconfirmed = |o: ExportedLog| {
        let rep = verify(
            &f.roster,
            &[o, requester.clone()],
            &AuditorState::default(),
            NO_TOLERANCE,
        );
        rep.violations
            .into_iter()
            .filter(|v| v.kind.starts_with("consultation_"))
            .collect::<Vec<_>>()
    };
    let v = unconfirmed(origin(false, deadline + 600_000));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].kind.as_str(), v[0].node.as_str(), v[0].proven),
        (
            "consultation_answer_unconfirmed",
            "BB-CUSTOMS->AA-EXPORT",
            false
        )
    );
    assert!(unconfirmed(origin(true, deadline + 600_000)).is_empty());
    assert!(
        unconfirmed(origin(false, deadline - day)).is_empty(),
        "the origin's log does not cover the answer's time yet"
    );
}

/// Review s31-fixes C1: the origin asked for information, then refused the next round
/// (never recording it), and the requester granted after that round's deadline. The
/// origin's log shows a grant while information was outstanding: that is the
/// requester's act as reported to the origin, so it is reported against the pair
/// `ORIGIN->REQUESTER` (review s32-consult P1), unproven, never proven against the
/// honest origin keeping the log. A
/// step the log keeper took itself stays proven against it.
#[test]
fn a_violation_on_the_other_partys_step_is_reported_against_it_unproven() {
    use wlnode_consult::{Answer, ConsultationId, Decision, Despite, TrailEvent, TrailKind};
    let f = fixture();
    let id = ConsultationId([9; 16]);
    let day = 86_400_000u64;
    let deadline = 30 * day;
    let step = |kind: TrailKind, at: u64, from: usize, to: usize| {
        Event::new(
            at,
            EventKind::Consultation {
                step: TrailEvent {
                    consultation_id: id,
                    kind,
                    at: Timestamp(at),
                    from: ag(from),
                    to: ag(to),
                },
            },
        )
    };
    let origin_log = log(
        &f,
        0,
        &[
            step(
                TrailKind::Requested {
                    evidence: None,
                    deadline: Timestamp(deadline),
                },
                1000,
                1,
                0,
            ),
            step(
                TrailKind::Answered {
                    evidence: None,
                    answer: Answer::InfoRequested,
                },
                day,
                0,
                1,
            ),
            step(
                TrailKind::Decided {
                    decision: Decision::Granted,
                    despite: Despite::ExpiredDenial,
                },
                deadline + day,
                1,
                0,
            ),
            step(TrailKind::NoticeSent, deadline + day, 1, 0),
            Event::new(deadline + 2 * day, EventKind::NodeStopped),
        ],
        &[5],
    );
    let rep = verify(
        &f.roster,
        &[origin_log],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    let v: Vec<_> = rep
        .violations
        .iter()
        .filter(|v| v.kind.starts_with("consultation_"))
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].kind.as_str(), v[0].node.as_str(), v[0].proven),
        (
            "consultation_premature_decision",
            "AA-EXPORT->BB-CUSTOMS",
            false
        ),
        "{v:?}"
    );
    // The origin's own late answer in its own log stays proven against it.
    let late = log(
        &f,
        0,
        &[
            step(
                TrailKind::Requested {
                    evidence: None,
                    deadline: Timestamp(deadline),
                },
                1000,
                1,
                0,
            ),
            step(
                TrailKind::Answered {
                    evidence: None,
                    answer: Answer::Objection,
                },
                deadline + day,
                0,
                1,
            ),
            Event::new(deadline + 2 * day, EventKind::NodeStopped),
        ],
        &[3],
    );
    let rep = verify(&f.roster, &[late], &AuditorState::default(), NO_TOLERANCE);
    let v: Vec<_> = rep
        .violations
        .iter()
        .filter(|v| v.kind.starts_with("consultation_"))
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].kind.as_str(), v[0].node.as_str(), v[0].proven),
        ("consultation_answer_after_deadline", NAMES[0], true),
        "{v:?}"
    );
}

/// The roster's keys are valid from an hour ago: signed mail events use real times.
fn t0() -> u64 {
    Timestamp::now().as_millis() - 1_800_000
}

/// The neighbour `by`'s signed answer (with `key`) to `node`'s hand-over of the
/// fixture's message at `at`.
fn answer(
    key: &SecretKey,
    by: usize,
    node: usize,
    accepted: bool,
    reason: &str,
    at: u64,
) -> wlnode_crypto::mail::MailAck {
    answer_for(key, by, node, accepted, reason, at, [7; 32])
}

/// [`answer`] naming the copy with `digest`.
fn answer_for(
    key: &SecretKey,
    by: usize,
    node: usize,
    accepted: bool,
    reason: &str,
    at: u64,
    digest: [u8; 32],
) -> wlnode_crypto::mail::MailAck {
    wlnode_crypto::mail::MailAck::sign_body(
        wlnode_crypto::mail::HandoverBody {
            message_id: Some(wlnode_crypto::model::MessageId::from_hex(&"ab".repeat(16)).unwrap()),
            item: "message".into(),
            item_digest: Some(digest),
            hops: Some(1),
            addressee: None,
            from_hop: Some(ag(node)),
            to_hop: ag(by),
            accepted,
            reason: reason.into(),
            at: Timestamp(at),
            signer_key: key.public_key(),
        },
        key,
    )
}

/// A `mail` event of node BB (1) carrying `ack` from neighbour `peer`.
fn mail_acked(
    action: &str,
    peer: usize,
    at: u64,
    expires_at: u64,
    ack: &wlnode_crypto::mail::MailAck,
) -> Event {
    let mut e = mail(action, 2, peer, at, expires_at);
    if let EventKind::Mail { ack: a, reason, .. } = &mut e.kind {
        *a = Some(ack.to_hex());
        if action == "hand_refused" {
            *reason = Some(ack.reason.clone());
        }
    }
    e
}

/// BB's `received` of AA's message at `at`, carrying BB's own signed custody ack
/// (digest `[7; 32]`), as a relay logs it.
fn took_at(f: &Fixture, at: u64, expires_at: u64) -> Event {
    mail_acked(
        "received",
        0,
        at,
        expires_at,
        &answer(&f.agency_keys[1], 1, 0, true, "ok", at),
    )
}

/// A moment of a mail link of BB's with neighbour `to` at `at` (review s31-mail M1:
/// routes come from mail evidence only): BB hands a message of its own (another
/// copy, sent at hop count 0) under the same id, and `to` signs that it took it.
fn route(f: &Fixture, to: usize, at: u64) -> Event {
    let ack = wlnode_crypto::mail::MailAck::sign_body(
        wlnode_crypto::mail::HandoverBody {
            hops: Some(0),
            addressee: None,
            ..answer_for(&f.agency_keys[to], to, 1, true, "ok", at, [9; 32])
                .body()
                .clone()
        },
        &f.agency_keys[to],
    );
    let mut e = mail_acked("handed", to, at, at + 3_600_000, &ack);
    if let EventKind::Mail { from, .. } = &mut e.kind {
        *from = ag(1);
    }
    e
}

/// [`route`] in an older log (no acks): a bare `handed` of BB's own message.
fn legacy_route(to: usize, at: u64) -> Event {
    let mut e = mail("handed", to, to, at, at + 3_600_000);
    if let EventKind::Mail { from, .. } = &mut e.kind {
        *from = ag(1);
    }
    e
}

fn relayed_kinds(f: &Fixture, events: &[Event]) -> Vec<String> {
    let n = events.len() as u64;
    let rep = verify(
        &f.roster,
        &[log(f, 1, events, &[n])],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    rep.violations.iter().map(|v| v.kind.clone()).collect()
}

/// Signed hand-over acks (issue 21): a neighbour (CC) that refuses everything the
/// relay BB offers cannot get BB blamed for sitting on AA's message when BB's log
/// holds CC's signed refusals; without them, or with refusals whose signature does
/// not verify, the same log is blamed (this test fails without the rule).
#[test]
fn a_relay_whose_neighbour_refused_everything_is_not_blamed_when_it_logged_the_signed_refusals() {
    let f = fixture();
    let t = t0();
    let exp = t + 3 * 3_600_000;
    let done = t + 4 * 3_600_000;
    // BB took AA's message for CC at t; CC was reachable the whole time (records
    // sent to it) and refused each offer, signed; the refusals are logged hourly.
    let mut events = vec![took_at(&f, t, exp)];
    for h in 0..3u64 {
        let at = t + 60_000 + h * 3_600_000;
        events.push(mail_acked(
            "hand_refused",
            2,
            at,
            exp,
            &answer(&f.agency_keys[2], 2, 1, false, "full", at),
        ));
        events.push(route(&f, 2, at + 1_800_000));
    }
    events.push(Event::new(done, EventKind::NodeStopped));
    let with_refusals = relayed_kinds(&f, &events);
    assert!(
        !with_refusals.iter().any(|k| k == "mail_not_relayed"),
        "{with_refusals:?}"
    );
    // The same log without the refusals: BB had a route and shows no attempt.
    let bare: Vec<Event> = events
        .iter()
        .filter(|e| !matches!(&e.kind, EventKind::Mail { action, .. } if action == "hand_refused"))
        .cloned()
        .collect();
    let blamed = relayed_kinds(&f, &bare);
    assert!(blamed.iter().any(|k| k == "mail_not_relayed"), "{blamed:?}");
    // Refusals "signed" by another key than CC's (BB forging them with its own key)
    // are no evidence.
    let forged: Vec<Event> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Mail { action, .. } if action == "hand_refused" => mail_acked(
                "hand_refused",
                2,
                e.at,
                exp,
                &answer(&f.agency_keys[1], 2, 1, false, "full", e.at),
            ),
            _ => e.clone(),
        })
        .collect();
    let forged_kinds = relayed_kinds(&f, &forged);
    assert!(
        forged_kinds.iter().any(|k| k == "mail_not_relayed"),
        "{forged_kinds:?}"
    );
    // A refusal with its signature bytes damaged is no evidence either.
    let tampered: Vec<Event> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Mail {
                action,
                ack: Some(a),
                ..
            } if action == "hand_refused" => {
                let mut e = e.clone();
                let mut bytes = hex::decode(a).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                if let EventKind::Mail { ack, .. } = &mut e.kind {
                    *ack = Some(hex::encode(bytes));
                }
                e
            }
            _ => e.clone(),
        })
        .collect();
    let tampered_kinds = relayed_kinds(&f, &tampered);
    assert!(
        tampered_kinds.iter().any(|k| k == "mail_not_relayed"),
        "{tampered_kinds:?}"
    );
    // Genuinely signed refusals for a reason the relay can provoke itself (a hop count
    // it raised: hops are not signed) are no evidence either.
    let provoked: Vec<Event> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Mail { action, .. } if action == "hand_refused" => mail_acked(
                "hand_refused",
                2,
                e.at,
                exp,
                &answer(&f.agency_keys[2], 2, 1, false, "too_many_hops", e.at),
            ),
            _ => e.clone(),
        })
        .collect();
    let provoked_kinds = relayed_kinds(&f, &provoked);
    assert!(
        provoked_kinds.iter().any(|k| k == "mail_not_relayed"),
        "{provoked_kinds:?}"
    );
    // Review s31-mail H1: the real CC's signed refusals for the right id but another
    // copy (a crafted envelope under the id, refused `expired` at no cost), or for
    // the right copy with a reason BB can provoke (its own message first under the
    // id, its own quota filled), are no evidence.
    // (A `full` refusal naming another copy now counts: `full` is the neighbour's
    // global state, review s31-fixes X3. So do `id_in_use` of the right copy and
    // `quota` since review s36-m1 H1: any member can provoke them to frame the
    // relay, and they only ever clear it, as a colluding neighbour's `full` could.
    // And `sender_quota` of the right copy since review s36-int M2: the sender's
    // share of ids at the neighbour, not the relay's doing.)
    for (reason, digest) in [
        ("expired", [8; 32]),
        ("expired", [7; 32]),
        ("legacy_body", [7; 32]),
        ("id_in_use", [8; 32]),
        ("sender_quota", [8; 32]),
    ] {
        let other: Vec<Event> = events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Mail { action, .. } if action == "hand_refused" => mail_acked(
                    "hand_refused",
                    2,
                    e.at,
                    exp,
                    &answer_for(&f.agency_keys[2], 2, 1, false, reason, e.at, digest),
                ),
                _ => e.clone(),
            })
            .collect();
        let k = relayed_kinds(&f, &other);
        assert!(
            k.iter().any(|k| k == "mail_not_relayed"),
            "{reason} {digest:?}: {k:?}"
        );
    }
    for reason in ["id_in_use", "quota", "sender_quota"] {
        let covered: Vec<Event> = events
            .iter()
            .map(|e| match &e.kind {
                EventKind::Mail { action, .. } if action == "hand_refused" => mail_acked(
                    "hand_refused",
                    2,
                    e.at,
                    exp,
                    &answer_for(&f.agency_keys[2], 2, 1, false, reason, e.at, [7; 32]),
                ),
                _ => e.clone(),
            })
            .collect();
        let k = relayed_kinds(&f, &covered);
        assert!(
            !k.iter().any(|k| k == "mail_not_relayed"),
            "{reason}: {k:?}"
        );
    }
    // Without BB's custody ack in its `received` event the copy it took is unknown,
    // but `full` refusals are the neighbour's global state and count for any copy
    // (review s31-fixes X3; the copy still binds `too_many_hops`)...
    let mut unbound = events.clone();
    unbound[0] = mail("received", 2, 0, t, exp);
    let k = relayed_kinds(&f, &unbound);
    assert!(!k.iter().any(|k| k == "mail_not_relayed"), "{k:?}");
    // ...and with AA's log, whose `handed` carries BB's signed custody ack.
    let aa = log(
        &f,
        0,
        &[
            mail_acked(
                "handed",
                1,
                t,
                exp,
                &answer(&f.agency_keys[1], 1, 0, true, "ok", t),
            ),
            Event::new(t + 1000, EventKind::NodeStopped),
        ],
        &[2],
    );
    let n = unbound.len() as u64;
    let rep = verify(
        &f.roster,
        &[aa, log(&f, 1, &unbound, &[n])],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(
        !kinds(&rep).contains(&"mail_not_relayed"),
        "{:?}",
        rep.violations
    );
}

/// A signed refusal covers only the moments near it: a relay that logged one refusal
/// at custody and then had a route for hours without trying again is blamed; a
/// refusal from another neighbour than the route (not the addressee) covers nothing.
#[test]
fn a_relay_with_a_route_and_no_attempts_is_blamed_and_refusals_cover_only_their_time() {
    let f = fixture();
    let r = eu_record(&f);
    let t = t0();
    let exp = t + 3 * 3_600_000;
    let done = t + 4 * 3_600_000;
    // No attempt at all, a route to CC: blamed.
    let idle = relayed_kinds(
        &f,
        &[
            mail("received", 2, 0, t, exp),
            route(&f, 2, t + 600_000),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    assert!(idle.iter().any(|k| k == "mail_not_relayed"), "{idle:?}");
    // One refusal at the start, the route two hours later uncovered: blamed.
    let stale = relayed_kinds(
        &f,
        &[
            took_at(&f, t, exp),
            mail_acked(
                "hand_refused",
                2,
                t + 1000,
                exp,
                &answer(&f.agency_keys[2], 2, 1, false, "full", t + 1000),
            ),
            route(&f, 2, t + 2 * 3_600_000),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    assert!(stale.iter().any(|k| k == "mail_not_relayed"), "{stale:?}");
    // A signed refusal for another handing agency (AA's hand-over, not BB's) is not
    // BB's evidence.
    let not_ours = relayed_kinds(
        &f,
        &[
            took_at(&f, t, exp),
            mail_acked(
                "hand_refused",
                2,
                t + 1000,
                exp,
                &answer(&f.agency_keys[2], 2, 0, false, "full", t + 1000),
            ),
            route(&f, 2, t + 2000),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    assert!(
        not_ours.iter().any(|k| k == "mail_not_relayed"),
        "{not_ours:?}"
    );
    // Dead end (no link but to AA, where it came from): still not blamed, with or
    // without refusals.
    let dead_end = relayed_kinds(
        &f,
        &[
            mail("received", 2, 0, t, exp),
            accepted(&r, 0, t + 1000),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    assert!(
        !dead_end.iter().any(|k| k == "mail_not_relayed"),
        "{dead_end:?}"
    );
}

/// `mail_not_logged` is proven when the `handed` event carries the neighbour's signed
/// custody ack; without one (an older log) it stays unproven; a forged ack is no proof;
/// an honest neighbour's log clears it.
#[test]
fn mail_not_logged_is_proven_by_the_neighbours_signed_custody_ack() {
    let f = fixture();
    let t = t0();
    let exp = t + 3 * 3_600_000;
    // CC checkpointed well after the hand-over (past the skew and the margin).
    let cc_silent = log(
        &f,
        2,
        &[Event::new(t + 600_000, EventKind::NodeStopped)],
        &[1],
    );
    let findings = |handed: Event, cc: &ExportedLog| {
        let bb = log(
            &f,
            1,
            &[
                mail("received", 2, 0, t, exp),
                handed,
                Event::new(t + 4000, EventKind::NodeStopped),
            ],
            &[3],
        );
        verify(
            &f.roster,
            &[bb, cc.clone()],
            &AuditorState::default(),
            NO_TOLERANCE,
        )
        .violations
        .into_iter()
        .filter(|v| v.kind == "mail_not_logged")
        .map(|v| (v.node, v.proven))
        .collect::<Vec<_>>()
    };
    let signed = answer(&f.agency_keys[2], 2, 1, true, "ok", t + 1000);
    let pair = format!("{}->{}", ag(1), ag(2));
    assert_eq!(
        findings(mail_acked("handed", 2, t + 1000, exp, &signed), &cc_silent),
        vec![(pair.clone(), true)]
    );
    // An older log's `handed` without an ack: reported, not proven.
    assert_eq!(
        findings(mail("handed", 2, 2, t + 1000, exp), &cc_silent),
        vec![(pair.clone(), false)]
    );
    // An ack BB signed itself in CC's name: no proof, and (a log with acks, review
    // s31-mail M2) no hand-over either, so CC is not reported at all.
    let forged = answer(&f.agency_keys[1], 2, 1, true, "ok", t + 1000);
    assert!(findings(mail_acked("handed", 2, t + 1000, exp, &forged), &cc_silent).is_empty());
    // CC logged the message: nothing to report.
    let cc_honest = log(
        &f,
        2,
        &[
            mail("received", 2, 1, t + 1000, exp),
            Event::new(t + 600_000, EventKind::NodeStopped),
        ],
        &[2],
    );
    assert!(findings(mail_acked("handed", 2, t + 1000, exp, &signed), &cc_honest).is_empty());
    // CC said it had the message already (`seen`, e.g. only its receipt passed by)
    // and its log knows the id: no finding.
    let seen = answer(&f.agency_keys[2], 2, 1, true, "seen", t + 1000);
    let mut receipt = mail("received", 2, 1, t + 500, exp);
    if let EventKind::Mail { item, .. } = &mut receipt.kind {
        *item = "receipt".into();
    }
    let cc_receipt = log(
        &f,
        2,
        &[receipt, Event::new(t + 600_000, EventKind::NodeStopped)],
        &[2],
    );
    assert!(findings(mail_acked("handed", 2, t + 1000, exp, &seen), &cc_receipt).is_empty());
    // Review s31-mail M3: CC signed `seen` (or `duplicate`) and its log has no trace
    // of the id: its signature is the proof.
    assert_eq!(
        findings(mail_acked("handed", 2, t + 1000, exp, &seen), &cc_silent),
        vec![(pair.clone(), true)]
    );
    let duplicate = answer(&f.agency_keys[2], 2, 1, true, "duplicate", t + 1000);
    assert_eq!(
        findings(
            mail_acked("handed", 2, t + 1000, exp, &duplicate),
            &cc_silent
        ),
        vec![(pair.clone(), true)]
    );
}

/// Review s31-mail H2: CC's checkpoint lies after BB's `handed` time but before CC
/// signed its custody ack (BB's clock behind, or a backdated `handed`), or less than
/// the margin after it: CC's log need not show the message yet, so there is no
/// `mail_not_logged`, proven or not. Without an ack the skew is allowed as well.
#[test]
fn a_hand_over_after_the_neighbours_checkpoint_by_its_own_clock_is_not_reported() {
    let f = fixture();
    let t = t0();
    let exp = t + 3 * 3_600_000;
    let findings = |handed: Event, cc_checkpoint: u64| {
        let bb = log(
            &f,
            1,
            &[
                mail("received", 2, 0, t, exp),
                handed,
                Event::new(t + 4000, EventKind::NodeStopped),
            ],
            &[3],
        );
        let cc = log(
            &f,
            2,
            &[Event::new(cc_checkpoint, EventKind::NodeStopped)],
            &[1],
        );
        verify(&f.roster, &[bb, cc], &AuditorState::default(), NO_TOLERANCE)
            .violations
            .into_iter()
            .filter(|v| v.kind == "mail_not_logged")
            .map(|v| v.proven)
            .collect::<Vec<_>>()
    };
    // BB logged `handed` at t+1000; CC signed at t+100_000 by its clock.
    let signed = answer(&f.agency_keys[2], 2, 1, true, "ok", t + 100_000);
    let handed = mail_acked("handed", 2, t + 1000, exp, &signed);
    // Checkpoint between the handed time and the signed time.
    assert!(findings(handed.clone(), t + 50_000).is_empty());
    // Checkpoint after the signed time but within the margin.
    assert!(findings(handed.clone(), t + 130_000).is_empty());
    // Past the margin: proven.
    assert_eq!(findings(handed, t + 200_000), vec![true]);
    // No ack (an older log): BB's time plus the skew plus the margin.
    assert!(findings(mail("handed", 2, 2, t + 1000, exp), t + 200_000).is_empty());
    assert_eq!(
        findings(mail("handed", 2, 2, t + 1000, exp), t + 600_000),
        vec![false]
    );
}

/// Review s31-mail M2: in a log that carries acks (a build that signs hand-overs),
/// a `handed` without the neighbour's valid signed acceptance (none, forged, or a
/// refusal) is no hand-over: the relay with a route is blamed, and the neighbour it
/// names is not reported. In an older log (no acks anywhere) a bare `handed` still
/// counts.
#[test]
fn a_handed_event_without_a_valid_signed_acceptance_does_not_clear_a_relay() {
    let f = fixture();
    let t = t0();
    let exp = t + 3 * 3_600_000;
    let done = t + 4 * 3_600_000;
    let relay = |handed: Event| {
        vec![
            took_at(&f, t, exp),
            route(&f, 2, t + 600_000),
            handed,
            Event::new(done, EventKind::NodeStopped),
        ]
    };
    let bare = relay(mail("handed", 2, 2, t + 700_000, exp));
    assert!(
        relayed_kinds(&f, &bare)
            .iter()
            .any(|k| k == "mail_not_relayed")
    );
    let forged = relay(mail_acked(
        "handed",
        2,
        t + 700_000,
        exp,
        &answer(&f.agency_keys[1], 2, 1, true, "ok", t + 700_000),
    ));
    assert!(
        relayed_kinds(&f, &forged)
            .iter()
            .any(|k| k == "mail_not_relayed")
    );
    let refused = relay(mail_acked(
        "handed",
        2,
        t + 700_000,
        exp,
        &answer(&f.agency_keys[2], 2, 1, false, "full", t + 700_000),
    ));
    assert!(
        relayed_kinds(&f, &refused)
            .iter()
            .any(|k| k == "mail_not_relayed")
    );
    // CC, silent, is not reported for the bare `handed` (event 2; only for the
    // route's hand-over, event 1, which it signed for).
    let cc = log(&f, 2, &[Event::new(done, EventKind::NodeStopped)], &[1]);
    let rep = verify(
        &f.roster,
        &[log(&f, 1, &bare, &[4]), cc],
        &AuditorState::default(),
        NO_TOLERANCE,
    );
    assert!(
        !rep.violations
            .iter()
            .any(|v| v.kind == "mail_not_logged" && v.evidence["event"] == 2),
        "{:?}",
        rep.violations
    );
    // CC's valid signed custody ack: handed on.
    let signed = relay(mail_acked(
        "handed",
        2,
        t + 700_000,
        exp,
        &answer(&f.agency_keys[2], 2, 1, true, "ok", t + 700_000),
    ));
    assert!(
        !relayed_kinds(&f, &signed)
            .iter()
            .any(|k| k == "mail_not_relayed")
    );
    // An older log (no acks at all): a bare `handed` still counts.
    let mut old = bare.clone();
    old[0] = mail("received", 2, 0, t, exp);
    old[1] = legacy_route(2, t + 600_000);
    assert!(
        !relayed_kinds(&f, &old)
            .iter()
            .any(|k| k == "mail_not_relayed")
    );
}

/// Old `mail` events (no `ack`) keep their exact bytes; new ones with an ack round-trip.
#[test]
fn mail_events_with_and_without_acks_are_canonical() {
    let f = fixture();
    let old = mail("handed", 2, 2, 1000, 5000);
    let text = String::from_utf8(old.encode()).unwrap();
    assert!(!text.contains("ack"), "{text}");
    assert_eq!(Event::decode(text.as_bytes()).unwrap(), old);
    let t = t0();
    let new = mail_acked(
        "hand_refused",
        2,
        t,
        t + 1000,
        &answer(&f.agency_keys[2], 2, 1, false, "full", t),
    );
    assert_eq!(Event::decode(&new.encode()).unwrap(), new);
}
