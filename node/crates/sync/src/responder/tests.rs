//! The responder driven without sockets or a store: each test plays the service,
//! feeding each action's result back by hand.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use wlnode_audit::event::EventKind;
use wlnode_config::Config;
use wlnode_config::roster_edit::{self, NewMember};
use wlnode_crypto::model::{EntryDraft, EntryId, RecordId, Status};
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::roster::Role;
use wlnode_crypto::{SecretKey, Timestamp};
use wlnode_types::{RawRecord, StoredRecord};

use super::*;
use crate::reconcile;

/// The peer key and reply token the tests use.
type R = Responder<u8, u32>;
type A = ServeAction<u8, u32>;

const EPOCH: [u8; 16] = [5; 16];
const BB: u8 = 2;

struct World {
    key: SecretKey,
    policy: Arc<Policy>,
}

/// AA-EXPORT serving BB-CUSTOMS (both in `eu`) under "share everything", withholding
/// passports.
fn world() -> World {
    world_with("withhold = [\"identifiers.passport\"]")
}

/// AA-EXPORT serving BB-CUSTOMS under one share rule ending in `extra`.
fn world_with(extra: &str) -> World {
    let authority = SecretKey::generate().unwrap();
    let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
    let mut keys = Vec::new();
    for agency in ["AA-EXPORT", "BB-CUSTOMS"] {
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                agency,
                Role::Member,
                key.public_key(),
                vec![node.public_key().peer_id()],
                &["eu"],
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        keys.push(key);
    }
    let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
    let cfg = Config::parse(
        Path::new("/x/node.toml"),
        &(r#"
agency = "AA-EXPORT"
roster = "roster.toml"
agency_key = "agency.key"
node_key = "node.key"
[api]
listen = "127.0.0.1:0"
token_file = "api.token"
[[share]]
to = ["*"]
origins = ["*"]
"#
        .to_owned()
            + extra),
    )
    .unwrap();
    let (policy, _) = Policy::from_config(&cfg, Arc::new(roster)).unwrap();
    World {
        key: keys.swap_remove(0),
        policy: Arc::new(policy),
    }
}

/// A record of AA-EXPORT with `scope`, held here since `seq`.
fn stored(w: &World, scope: &str, seq: u64) -> StoredRecord {
    let draft: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "person", "name": format!("Person {seq}"),
                    "identifiers": [{"type": "passport", "value": "P1"}]},
        "reason": "denial",
        "remarks": "x".repeat(300),
        "distribution": {"scope": scope, "sensitivity": "restricted"}
    }))
    .unwrap();
    StoredRecord {
        record: build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: "AA-EXPORT".parse().unwrap(),
                version: 1,
                issued_at: Timestamp::now(),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            &w.key,
        )
        .unwrap(),
        hops: 0,
        received_from: None,
        received_at: Timestamp::now(),
        seq,
        inclusion: None,
    }
}

fn raws(records: &[StoredRecord]) -> RawBatch {
    records
        .iter()
        .map(|r| {
            (
                r.seq,
                r.record.id(),
                Some(RawRecord::from_owner(r.encode())),
            )
        })
        .collect()
}

fn bb() -> AgencyCode {
    "BB-CUSTOMS".parse().unwrap()
}

fn limits() -> Limits {
    Limits {
        max_batch_bytes: 4 << 20,
        max_request_bytes: 4 << 20,
    }
}

fn pull(after: u64, max_bytes: u64) -> Pull {
    Pull {
        log_epoch: EPOCH,
        after_seq: after,
        limit: 100,
        max_bytes,
    }
}

fn one(mut actions: Vec<A>) -> A {
    assert_eq!(actions.len(), 1, "{actions:?}");
    actions.remove(0)
}

/// Runs a prepare step the way the service does (on "another thread").
fn run(a: A) -> PrepareDone {
    match a {
        ServeAction::Prepare(p) => p.run(Instant::now(), Timestamp::now()),
        other => panic!("expected a prepare step, got {other:?}"),
    }
}

/// Feeds a Pull through read, prepare and audit; returns what the responder ends with.
fn serve_pull(r: &mut R, w: &World, held: &[StoredRecord], p: Pull, head: u64) -> Vec<A> {
    let (job, after, limit) = match one(r.on_pull(BB, bb(), 7, p, w.policy.clone())) {
        ServeAction::ReadLog {
            job, after, limit, ..
        } => (job, after, limit),
        other => panic!("{other:?}"),
    };
    let batch: Vec<StoredRecord> = held
        .iter()
        .filter(|s| s.seq > after)
        .take(limit)
        .cloned()
        .collect();
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head,
            raws: raws(&batch),
            truncated: false,
            audit: true,
        }),
    ));
    let done = r.on_prepared(run(prepare));
    match done.as_slice() {
        [ServeAction::AppendSent { job: j, events }] => {
            assert_eq!(*j, job);
            assert!(!events.is_empty());
            r.on_sent_appended(job, Ok::<_, String>(()))
        }
        _ => done,
    }
}

fn batch_of(actions: &[A]) -> (&Served, &Batch) {
    match actions {
        [
            ServeAction::Served(s),
            ServeAction::Respond {
                reply: 7,
                response: Response::Batch(b),
            },
        ] => (s, b),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_pull_is_read_prepared_audited_and_answered_in_log_order() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=5).map(|s| stored(&w, "federation", s)).collect();
    let mut r = R::new(EPOCH, limits());
    let (job, max_read) = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog {
            job,
            after: 0,
            limit: 100,
            max_read_bytes,
        } => (job, max_read_bytes),
        other => panic!("{other:?}"),
    };
    assert_eq!(max_read, 2 * ((1 << 20) - FRAME_SLACK), "twice the budget");
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 5,
            raws: raws(&held),
            truncated: false,
            audit: true,
        }),
    ));
    // Nothing goes out before its `sent` events are durable.
    let events = match one(r.on_prepared(run(prepare))) {
        ServeAction::AppendSent { events, .. } => events,
        other => panic!("{other:?}"),
    };
    assert_eq!(events.len(), 5);
    for (e, h) in events.iter().zip(&held) {
        match &e.kind {
            EventKind::Sent {
                record_id,
                to,
                hops,
                withheld,
                header: None,
                ..
            } => {
                assert_eq!(*record_id, h.record.id());
                assert_eq!(*to, bb());
                assert_eq!(*hops, 1);
                assert_eq!(withheld, &vec!["identifiers".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }
    let out = r.on_sent_appended(job, Ok::<_, String>(()));
    let (served, b) = batch_of(&out);
    assert_eq!(
        *served,
        Served {
            agency: bb(),
            records: 5,
            withheld_fields: 5,
            denied: 0,
            at_head: Some(true),
        }
    );
    assert_eq!((b.next_seq, b.head_seq, b.complete), (5, 5, true));
    assert_eq!(b.log_epoch, EPOCH);
    for (t, h) in b.records.iter().zip(&held) {
        let copy = Record::decode(t.record()).unwrap().verify().unwrap();
        assert_eq!(
            copy.id(),
            h.record.id(),
            "same record id with a field withheld"
        );
        assert_eq!(copy.disclosures().len() + 1, h.record.disclosures().len());
        assert_eq!(t.hops(), 1);
    }
    assert_eq!(r.jobs(), 0, "the job is done");
}

#[test]
fn a_pull_from_another_log_epoch_restarts_the_peer_at_zero() {
    let w = world();
    let mut r = R::new(EPOCH, limits());
    let mut p = pull(40, 1 << 20);
    p.log_epoch = [9; 16];
    let job = match one(r.on_pull(BB, bb(), 7, p, w.policy.clone())) {
        ServeAction::ReadHead { job } => job,
        other => panic!("{other:?}"),
    };
    let out = r.on_head(job, Ok::<_, String>(12));
    let (served, b) = batch_of(&out);
    assert_eq!(served.at_head, Some(false));
    assert_eq!(
        (b.log_epoch, b.next_seq, b.head_seq, b.complete),
        (EPOCH, 0, 12, false)
    );
    assert!(b.records.is_empty());
}

#[test]
fn the_byte_budget_cuts_a_pull_the_first_record_always_goes_and_the_cut_one_follows() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=3).map(|s| stored(&w, "federation", s)).collect();
    let mut r = R::new(EPOCH, limits());
    // A budget below one record: the first still goes, so the cursor advances.
    let out = serve_pull(&mut r, &w, &held, pull(0, 1), 3);
    let (served, b) = batch_of(&out);
    assert_eq!(served.records, 1);
    assert_eq!((b.records.len(), b.next_seq, b.complete), (1, 1, false));
    assert_eq!(served.at_head, Some(false));
    // The record cut at the budget was not remembered as sent: the next Pull sends it.
    let out = serve_pull(&mut r, &w, &held, pull(1, 1), 3);
    let (_, b) = batch_of(&out);
    let copy = Record::decode(b.records[0].record()).unwrap();
    assert_eq!(copy.id(), held[1].record.id());
    assert_eq!(b.next_seq, 2);
}

#[test]
fn the_policy_keeps_records_out_and_counts_them_and_the_cursor_still_moves() {
    let w = world();
    let held = vec![
        stored(&w, "origin", 1),
        stored(&w, "federation", 2),
        stored(&w, "origin", 3),
    ];
    let mut r = R::new(EPOCH, limits());
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 3);
    let (served, b) = batch_of(&out);
    assert_eq!((served.records, served.denied), (1, 2));
    assert_eq!(b.records.len(), 1);
    assert_eq!(b.next_seq, 3, "denied records are consumed, not re-offered");
    assert!(b.complete);
}

#[test]
fn a_copy_sent_moments_ago_is_not_pulled_again_but_reconcile_sends_it() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=2).map(|s| stored(&w, "federation", s)).collect();
    let mut r = R::new(EPOCH, limits());
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    assert_eq!(batch_of(&out).1.records.len(), 2);
    // The same log range again (a peer that lost its cursor): nothing twice.
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    let (served, b) = batch_of(&out);
    assert_eq!((served.records, served.denied, b.next_seq), (0, 0, 2));
    // Reconciliation shows the peer lacks them: they go regardless.
    let job = match one(r.on_reconcile(
        BB,
        bb(),
        8,
        Reconcile {
            session: [1; 16],
            message: Bytes::new(),
            have: Vec::new(),
            need: held.iter().map(|h| h.record.id()).collect(),
        },
        w.policy.clone(),
        Instant::now(),
    )) {
        ServeAction::ReadRecords { job, ids } => {
            assert_eq!(ids.len(), 2);
            job
        }
        other => panic!("{other:?}"),
    };
    let prepare = one(r.on_records_read(job, Ok::<_, String>((raws(&held), false))));
    // The audit log is off here: no events, the answer goes at once.
    match r.on_prepared(run(prepare)).as_slice() {
        [
            ServeAction::Served(s),
            ServeAction::Respond {
                reply: 8,
                response: Response::Reconcile(rr),
            },
        ] => {
            assert_eq!(s.records, 2);
            assert_eq!(rr.records.len(), 2);
            assert_eq!(rr.session, [1; 16]);
        }
        other => panic!("{other:?}"),
    }
    // A new connection forgets what was sent: the Pull sends them again.
    r.on_connected(BB, &bb());
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    assert_eq!(batch_of(&out).0.records, 2);
}

#[test]
fn a_failed_audit_append_sends_nothing_and_a_later_pull_sends_the_copies() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=2).map(|s| stored(&w, "federation", s)).collect();
    let mut r = R::new(EPOCH, limits());
    let job = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 2,
            raws: raws(&held),
            truncated: false,
            audit: true,
        }),
    ));
    assert!(matches!(
        one(r.on_prepared(run(prepare))),
        ServeAction::AppendSent { .. }
    ));
    match one(r.on_sent_appended(job, Err("disk full"))) {
        ServeAction::Respond {
            reply: 7,
            response: Response::Error { code, message },
        } => {
            assert_eq!(code, "unavailable");
            assert!(message.contains("disk full"));
        }
        other => panic!("{other:?}"),
    }
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    assert_eq!(batch_of(&out).0.records, 2, "not skipped as recently sent");
}

#[test]
fn a_store_error_answers_a_pull_unavailable_and_a_reconcile_round_without_records() {
    let w = world();
    let mut r = R::new(EPOCH, limits());
    let job = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, .. } => job,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        one(r.on_log_read(job, Err("store IO error"))),
        ServeAction::Respond {
            response: Response::Error { .. },
            ..
        }
    ));
    let job = match one(r.on_reconcile(
        BB,
        bb(),
        8,
        Reconcile {
            session: [1; 16],
            message: Bytes::new(),
            have: Vec::new(),
            need: vec![RecordId([1; 32])],
        },
        w.policy.clone(),
        Instant::now(),
    )) {
        ServeAction::ReadRecords { job, .. } => job,
        other => panic!("{other:?}"),
    };
    match r.on_records_read(job, Err("store IO error")).as_slice() {
        [
            ServeAction::Served(s),
            ServeAction::Respond {
                response: Response::Reconcile(rr),
                ..
            },
        ] => {
            assert_eq!(s.records, 0);
            assert!(rr.records.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

/// One reconcile round whose negentropy message goes through `storage`; returns the
/// round's first action after the pushed records (if any) are stored.
fn round(r: &mut R, w: &World, session: [u8; 16], message: &[u8]) -> Vec<A> {
    r.on_reconcile(
        BB,
        bb(),
        9,
        Reconcile {
            session,
            message: Bytes::copy_from_slice(message),
            have: Vec::new(),
            need: Vec::new(),
        },
        w.policy.clone(),
        Instant::now(),
    )
}

#[test]
fn reconcile_rounds_reuse_the_peers_set_until_it_leaves_or_the_set_expires() {
    let w = world();
    let ids: Vec<(u64, RecordId)> = (0u8..50)
        .map(|i| (u64::from(i), RecordId([i; 32])))
        .collect();
    let ours = Arc::new(reconcile::storage(&ids).unwrap());
    let (_, first) =
        reconcile::Initiator::start(reconcile::storage(&ids[..10]).unwrap(), [3; 16]).unwrap();
    let msg = first.message.unwrap();
    let mut r = R::new(EPOCH, limits());
    r.on_connected(BB, &bb());
    let t0 = Instant::now();
    // First round: the set is built.
    let job = match one(round(&mut r, &w, [3; 16], &msg)) {
        ServeAction::BuildSet { job, agency, .. } => {
            assert_eq!(agency, bb());
            job
        }
        other => panic!("{other:?}"),
    };
    let (job, storage, message) = match one(r.on_set_built(job, Ok::<_, String>(ours.clone()))) {
        ServeAction::Negentropy {
            job,
            storage,
            message,
        } => (job, storage, message),
        other => panic!("{other:?}"),
    };
    let answer = reconcile::respond(&storage, &message).unwrap();
    match r
        .on_negentropy(job, storage, Ok(answer.clone()), t0)
        .as_slice()
    {
        [
            ServeAction::Served(_),
            ServeAction::Respond {
                reply: 9,
                response: Response::Reconcile(rr),
            },
        ] => assert_eq!(rr.message.as_ref(), answer.as_slice()),
        other => panic!("{other:?}"),
    }
    // The next round of the same session goes straight to negentropy.
    assert!(matches!(
        one(round(&mut r, &w, [3; 16], &msg)),
        ServeAction::Negentropy { .. }
    ));
    // Another session reuses the set while the store is unchanged...
    assert!(matches!(
        one(round(&mut r, &w, [4; 16], &msg)),
        ServeAction::Negentropy { .. }
    ));
    // ...and builds its own once it changed.
    r.on_store_changed();
    assert!(matches!(
        one(round(&mut r, &w, [5; 16], &msg)),
        ServeAction::BuildSet { .. }
    ));
    // So does the same session once the cached set expired...
    r.on_tick(t0 + SESSION_TTL);
    assert!(matches!(
        one(round(&mut r, &w, [3; 16], &msg)),
        ServeAction::BuildSet { .. }
    ));
    // ...and a peer that disconnected (nothing is cached for a gone peer).
    r.on_disconnected(&BB);
    let job = match one(round(&mut r, &w, [3; 16], &msg)) {
        ServeAction::BuildSet { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let (job, storage) = match one(r.on_set_built(job, Ok::<_, String>(ours))) {
        ServeAction::Negentropy { job, storage, .. } => (job, storage),
        other => panic!("{other:?}"),
    };
    let _ = r.on_negentropy(job, storage, Ok(answer), t0);
    assert!(matches!(
        one(round(&mut r, &w, [3; 16], &msg)),
        ServeAction::BuildSet { .. }
    ));
}

#[test]
fn pushed_records_are_stored_before_the_round_is_answered() {
    let w = world();
    let held = stored(&w, "federation", 1);
    let mut r = R::new(EPOCH, limits());
    let have = vec![crate::msg::Received {
        record: Bytes::from(held.record.encode()),
        hops: 1,
        inclusion: None,
    }];
    let job = match one(r.on_reconcile(
        BB,
        bb(),
        9,
        Reconcile {
            session: [3; 16],
            message: Bytes::new(),
            have: have.clone(),
            need: Vec::new(),
        },
        w.policy.clone(),
        Instant::now(),
    )) {
        ServeAction::Ingest {
            job,
            peer,
            agency,
            transfers,
        } => {
            assert_eq!((peer, agency, transfers), (BB, bb(), have));
            job
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(r.jobs(), 1, "no answer yet");
    match r.on_ingested(job).as_slice() {
        [
            ServeAction::Served(_),
            ServeAction::Respond {
                response: Response::Reconcile(rr),
                ..
            },
        ] => assert!(rr.message.is_empty() && rr.records.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bad_negentropy_message_is_refused_as_a_bad_request() {
    let w = world();
    let mut r = R::new(EPOCH, limits());
    let job = match one(round(&mut r, &w, [3; 16], b"\x61\x00\x02")) {
        ServeAction::BuildSet { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let storage = Arc::new(reconcile::storage(&[]).unwrap());
    let (job, storage, message) = match one(r.on_set_built(job, Ok::<_, String>(storage))) {
        ServeAction::Negentropy {
            job,
            storage,
            message,
        } => (job, storage, message),
        other => panic!("{other:?}"),
    };
    let err = reconcile::respond(&storage, &message).unwrap_err();
    match one(r.on_negentropy(
        job,
        storage,
        Err(StepFailure::BadRequest(err.to_string())),
        Instant::now(),
    )) {
        ServeAction::Respond {
            response: Response::Error { code, .. },
            ..
        } => assert_eq!(code, "bad_request"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_round_serves_at_most_max_need_ids() {
    let w = world();
    let mut r = R::new(EPOCH, limits());
    let need: Vec<RecordId> = (0..MAX_NEED + 10)
        .map(|i| RecordId([(i % 251) as u8; 32]))
        .collect();
    match one(r.on_reconcile(
        BB,
        bb(),
        9,
        Reconcile {
            session: [1; 16],
            message: Bytes::new(),
            have: Vec::new(),
            need,
        },
        w.policy.clone(),
        Instant::now(),
    )) {
        ServeAction::ReadRecords { ids, .. } => assert_eq!(ids.len(), MAX_NEED),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_push_fills_its_request_budget_and_sets_the_rest_aside() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=20).map(|s| stored(&w, "federation", s)).collect();
    let one_copy = held[0].record.encode().len();
    // Room for about five copies after the slack the request keeps.
    let small = Limits {
        max_batch_bytes: 4 << 20,
        max_request_bytes: FRAME_SLACK + 70_000 + 5 * one_copy,
    };
    let mut r = R::new(EPOCH, small);
    let step = reconcile::Step {
        message: None,
        have: held.iter().map(|h| h.record.id()).collect(),
        need: Vec::new(),
    };
    let job = match one(r.prepare_push(BB, bb(), step.clone(), w.policy.clone())) {
        ServeAction::ReadRecords { job, ids } => {
            assert_eq!(ids, step.have);
            job
        }
        other => panic!("{other:?}"),
    };
    let mut batch = raws(&held);
    for b in &mut batch {
        b.0 = 0;
    }
    let prepare = one(r.on_records_read(job, Ok::<_, String>((batch, false))));
    match r.on_prepared(run(prepare)).as_slice() {
        [
            ServeAction::Served(s),
            ServeAction::PushReady {
                peer: BB,
                step: st,
                transfers,
                leftover,
            },
        ] => {
            assert_eq!(*st, step);
            assert!((4..=6).contains(&transfers.len()), "{}", transfers.len());
            assert_eq!(transfers.len() + leftover.len(), 20);
            assert_eq!(s.records, transfers.len() as u64);
            assert_eq!(leftover.as_slice(), &step.have[transfers.len()..]);
        }
        other => panic!("{other:?}"),
    }
    // A step with nothing to push is ready at once, and counts nothing.
    let empty = reconcile::Step {
        message: Some(vec![1]),
        have: Vec::new(),
        need: vec![RecordId([1; 32])],
    };
    assert!(matches!(
        one(r.prepare_push(BB, bb(), empty, w.policy.clone())),
        ServeAction::PushReady { .. }
    ));
}

#[test]
fn results_for_unknown_jobs_are_ignored() {
    let mut r = R::new(EPOCH, limits());
    assert!(r.on_head(JobId(99), Ok::<_, String>(1)).is_empty());
    assert!(r.on_ingested(JobId(99)).is_empty());
    assert!(
        r.on_sent_appended(JobId(99), Ok::<_, String>(()))
            .is_empty()
    );
    assert!(
        r.on_prepared(PrepareDone::failed(JobId(99), "x".into()))
            .is_empty()
    );
}

/// A cached set was built under the policy of its first round; after a reload it
/// could still tell the peer of records the new rules keep from it.
#[test]
fn a_policy_change_drops_the_cached_sets() {
    let w = world();
    let ids: Vec<(u64, RecordId)> = (0u8..5)
        .map(|i| (u64::from(i), RecordId([i; 32])))
        .collect();
    let ours = Arc::new(reconcile::storage(&ids).unwrap());
    let (_, first) =
        reconcile::Initiator::start(reconcile::storage(&ids[..2]).unwrap(), [3; 16]).unwrap();
    let msg = first.message.unwrap();
    let mut r = R::new(EPOCH, limits());
    r.on_connected(BB, &bb());
    let job = match one(round(&mut r, &w, [3; 16], &msg)) {
        ServeAction::BuildSet { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let (job, storage) = match one(r.on_set_built(job, Ok::<_, String>(ours))) {
        ServeAction::Negentropy { job, storage, .. } => (job, storage),
        other => panic!("{other:?}"),
    };
    let answer = reconcile::respond(&storage, &msg).unwrap();
    let _ = r.on_negentropy(job, storage, Ok(answer), Instant::now());
    assert!(matches!(
        one(round(&mut r, &w, [3; 16], &msg)),
        ServeAction::Negentropy { .. }
    ));
    r.on_policy_changed();
    assert!(matches!(
        one(round(&mut r, &w, [3; 16], &msg)),
        ServeAction::BuildSet { .. }
    ));
}

/// A record that no longer decodes stops its batch; the copies prepared before it in
/// that batch were never sent, so they must not count as recently sent either (they
/// used to stay in the cache, and the next Pull skipped them for five minutes).
#[test]
fn a_corrupt_stored_record_fails_its_batch_without_marking_the_others_sent() {
    let w = world();
    let held: Vec<StoredRecord> = (1..=2).map(|s| stored(&w, "federation", s)).collect();
    let mut r = R::new(EPOCH, limits());
    let job = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let mut batch = raws(&held);
    batch.push((
        3,
        RecordId([9; 32]),
        Some(RawRecord::from_owner(vec![0xff; 40])),
    ));
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 3,
            raws: batch,
            truncated: false,
            audit: true,
        }),
    ));
    match one(r.on_prepared(run(prepare))) {
        ServeAction::Respond {
            response: Response::Error { code, message },
            ..
        } => {
            assert_eq!(code, "unavailable");
            assert!(message.contains("corrupt"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The two good records go out with the next Pull.
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    assert_eq!(batch_of(&out).0.records, 2);
}

/// Issue 19 item 3: every Reconcile with an unknown session id rebuilt the whole set
/// on the store thread. Now a new session reuses the set while the store is
/// unchanged, and a peer gets `SESSION_BURST` new sessions, then one per
/// `SESSION_REFILL`; past that it is refused `busy` and struck.
#[test]
fn new_sessions_are_bounded_per_peer_and_reuse_the_set_while_the_store_is_unchanged() {
    let w = world();
    let ids: Vec<(u64, RecordId)> = (0u8..20)
        .map(|i| (u64::from(i), RecordId([i; 32])))
        .collect();
    let ours = Arc::new(reconcile::storage(&ids).unwrap());
    let (_, first) =
        reconcile::Initiator::start(reconcile::storage(&ids[..3]).unwrap(), [3; 16]).unwrap();
    let msg = first.message.unwrap();
    let mut r = R::new(EPOCH, limits());
    r.on_connected(BB, &bb());
    let t0 = Instant::now();
    let flood = |r: &mut R, session: u8, now: Instant| {
        r.on_reconcile(
            BB,
            bb(),
            9,
            Reconcile {
                session: [session; 16],
                message: Bytes::copy_from_slice(&msg),
                have: Vec::new(),
                need: Vec::new(),
            },
            w.policy.clone(),
            now,
        )
    };
    let mut builds = 0;
    let mut strikes = 0;
    for k in 0..100u8 {
        // The store changes between every request: the worst case for rebuilds.
        r.on_store_changed();
        for a in flood(&mut r, k, t0) {
            match a {
                ServeAction::BuildSet { job, .. } => {
                    builds += 1;
                    if let ServeAction::Negentropy {
                        job,
                        storage,
                        message,
                    } = one(r.on_set_built(job, Ok::<_, String>(ours.clone())))
                    {
                        let answer = reconcile::respond(&storage, &message).unwrap();
                        let _ = r.on_negentropy(job, storage, Ok(answer), t0);
                    }
                }
                ServeAction::Strike { peer, reason } => {
                    assert_eq!((peer, reason), (BB, "reconcile_session_flood"));
                    strikes += 1;
                }
                ServeAction::Respond { response, .. } => assert!(
                    matches!(&response, Response::Error { code, .. } if code == "busy"),
                    "{response:?}"
                ),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(builds, SESSION_BURST as usize);
    assert_eq!(strikes, 100 - SESSION_BURST as usize);
    assert_eq!(r.jobs(), 0, "nothing left queued");
    // The allowance refills with time.
    assert!(matches!(
        one(flood(&mut r, 200, t0 + SESSION_REFILL)),
        ServeAction::BuildSet { .. }
    ));
    // With the store unchanged, a new session builds nothing.
    let mut r = R::new(EPOCH, limits());
    r.on_connected(BB, &bb());
    let job = match one(flood(&mut r, 1, t0)) {
        ServeAction::BuildSet { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let (job, storage) = match one(r.on_set_built(job, Ok::<_, String>(ours))) {
        ServeAction::Negentropy { job, storage, .. } => (job, storage),
        other => panic!("{other:?}"),
    };
    let answer = reconcile::respond(&storage, &msg).unwrap();
    let _ = r.on_negentropy(job, storage, Ok(answer), t0);
    for k in 2..=SESSION_BURST as u8 {
        assert!(matches!(
            one(flood(&mut r, k, t0)),
            ServeAction::Negentropy { .. }
        ));
    }
}

/// Review of issue 19 item 3: a set whose build was in flight when the policy changed
/// was cached afterwards and served later sessions under the old rules; and a peer
/// that reconnected got a fresh allowance of new sessions.
#[test]
fn a_set_built_across_a_policy_change_is_not_cached_and_reconnecting_restores_no_allowance() {
    let w = world();
    let ids: Vec<(u64, RecordId)> = (0u8..5)
        .map(|i| (u64::from(i), RecordId([i; 32])))
        .collect();
    let ours = Arc::new(reconcile::storage(&ids).unwrap());
    let (_, first) =
        reconcile::Initiator::start(reconcile::storage(&ids[..2]).unwrap(), [3; 16]).unwrap();
    let msg = first.message.unwrap();
    let mut r = R::new(EPOCH, limits());
    r.on_connected(BB, &bb());
    let job = match one(round(&mut r, &w, [3; 16], &msg)) {
        ServeAction::BuildSet { job, .. } => job,
        other => panic!("{other:?}"),
    };
    r.on_policy_changed();
    let (job, storage) = match one(r.on_set_built(job, Ok::<_, String>(ours.clone()))) {
        ServeAction::Negentropy { job, storage, .. } => (job, storage),
        other => panic!("{other:?}"),
    };
    let answer = reconcile::respond(&storage, &msg).unwrap();
    let _ = r.on_negentropy(job, storage, Ok(answer), Instant::now());
    assert!(
        matches!(
            one(round(&mut r, &w, [3; 16], &msg)),
            ServeAction::BuildSet { .. }
        ),
        "the old-rules set is not reused"
    );
    // Reconnecting does not refill the allowance.
    let t = Instant::now();
    let mut r = R::new(EPOCH, limits());
    let mut strikes = 0;
    for k in 0..(2 * SESSION_BURST) {
        r.on_connected(BB, &bb());
        let acts = r.on_reconcile(
            BB,
            bb(),
            9,
            Reconcile {
                session: [k as u8; 16],
                message: Bytes::copy_from_slice(&msg),
                have: Vec::new(),
                need: Vec::new(),
            },
            w.policy.clone(),
            t,
        );
        strikes += acts
            .iter()
            .filter(|a| matches!(a, ServeAction::Strike { .. }))
            .count();
        r.on_disconnected(&BB);
    }
    assert_eq!(strikes, SESSION_BURST as usize);
}

/// Issue 20: a copy that goes whole is the stored encoded record as it is (read
/// without decoding its disclosures), byte for byte what decoding and re-encoding it
/// gave, and its `sent` event still lists the fields the held copy lacks.
#[test]
fn a_whole_copy_is_served_as_stored_and_audited_as_before() {
    let w = world_with("");
    let full = stored(&w, "federation", 1);
    // A copy held without its passport (an earlier hop withheld it).
    let passport = full
        .record
        .header()
        .fields
        .iter()
        .position(|f| f.tag.as_str() == "identifiers")
        .unwrap();
    let (lacking, _) = full
        .record
        .redact(&["identifiers.passport".parse().unwrap()]);
    let partial = StoredRecord {
        record: lacking,
        seq: 2,
        ..full.clone()
    };
    // A record BB-CUSTOMS sent us: a Pull does not send it back.
    let theirs = StoredRecord {
        received_from: Some(bb()),
        hops: 1,
        seq: 3,
        ..stored(&w, "federation", 3)
    };
    let held = vec![full.clone(), partial.clone(), theirs];
    let mut r = R::new(EPOCH, limits());
    let (job, _) = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, after, .. } => (job, after),
        other => panic!("{other:?}"),
    };
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 3,
            raws: raws(&held),
            truncated: false,
            audit: true,
        }),
    ));
    let events = match one(r.on_prepared(run(prepare))) {
        ServeAction::AppendSent { events, .. } => events,
        other => panic!("{other:?}"),
    };
    let withheld: Vec<Vec<String>> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::Sent { withheld, .. } => withheld.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(withheld, vec![vec![], vec!["identifiers".to_owned()]]);
    let out = r.on_sent_appended(job, Ok::<_, String>(()));
    let (served, b) = batch_of(&out);
    assert_eq!((served.records, served.withheld_fields), (2, 0));
    assert_eq!((b.records.len(), b.next_seq), (2, 3), "theirs is skipped");
    for (t, h) in b.records.iter().zip(&held) {
        // The old path: decode the stored record, prepare it through the choke point.
        let decoded = RawRecord::from_owner(h.encode()).decode().unwrap();
        let old = w.policy.prepare(&decoded, &bb()).unwrap();
        assert_eq!(t.record(), old.bytes(), "the same bytes as re-encoding");
        assert_eq!(t.hops(), old.hops());
        let copy = Record::decode(t.record()).unwrap().verify().unwrap();
        assert_eq!(copy.id(), h.record.id());
    }
    assert_eq!(
        Record::decode(b.records[1].record())
            .unwrap()
            .disclosure(u32::try_from(passport).unwrap()),
        None
    );
}

/// Issue 20: reading only the header keeps the choke point whole: a record whose
/// distribution keeps it from the peer is not sent, and a stored value whose header
/// is not the record asked for fails the batch as corrupt.
#[test]
fn a_header_read_still_denies_and_a_stored_value_under_the_wrong_id_is_corrupt() {
    let w = world_with("");
    let held = vec![stored(&w, "origin", 1), stored(&w, "federation", 2)];
    let mut r = R::new(EPOCH, limits());
    let out = serve_pull(&mut r, &w, &held, pull(0, 1 << 20), 2);
    let (served, b) = batch_of(&out);
    assert_eq!((served.records, served.denied), (1, 1));
    assert_eq!(
        Record::decode(b.records[0].record()).unwrap().id(),
        held[1].record.id()
    );

    let mut r = R::new(EPOCH, limits());
    let job = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let mut batch = raws(&held[1..]);
    batch[0].1 = held[0].record.id();
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 2,
            raws: batch,
            truncated: false,
            audit: true,
        }),
    ));
    match one(r.on_prepared(run(prepare))) {
        ServeAction::Respond {
            response: Response::Error { code, message },
            ..
        } => {
            assert_eq!(code, "unavailable");
            assert!(message.contains("corrupt"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 20: a stored record decoded zero-copy (`RawRecord::decode`) is the one the
/// prost path decodes, field for field, and the header read agrees with both.
#[test]
fn a_stored_record_decodes_the_same_zero_copy_and_its_view_agrees() {
    let w = world_with("");
    let mut rec = stored(&w, "federation", 9);
    rec.hops = 3;
    rec.received_from = Some(bb());
    rec.inclusion = Some(bytes::Bytes::from_static(b"{\"proof\":1}"));
    let bytes = rec.encode();
    let raw = RawRecord::from_owner(bytes.clone());
    let fast = raw.decode().unwrap();
    let slow = StoredRecord::decode(&bytes).unwrap();
    assert_eq!(fast.encode(), slow.encode());
    assert_eq!(fast.encode(), bytes);
    let v = raw.view().unwrap();
    assert_eq!(v.id, rec.record.id());
    assert_eq!(v.header, *rec.record.header());
    assert_eq!(v.record.as_ref(), rec.record.encode().as_slice());
    assert_eq!((v.hops, v.received_from.clone()), (3, Some(bb())));
    assert_eq!(v.inclusion, rec.inclusion);
    let held: Vec<u32> = rec.record.disclosures().iter().map(|d| d.index).collect();
    assert_eq!(v.disclosed, held);
    // A value that is no stored record is an error, never a panic.
    assert!(RawRecord::from_owner(vec![0x0a, 0x05, 1]).decode().is_err());
    assert!(RawRecord::from_owner(vec![0x0a, 0x05, 1]).view().is_err());
}

/// Review s33-sync S1: a whole copy is sent as the stored bytes, so a disclosure value
/// changed on disk (bit rot, a damaged restore) must fail its batch as corrupt here,
/// reported locally, and never reach the peer, which would strike us for it.
#[test]
fn a_disclosure_value_changed_on_disk_is_corrupt_and_never_sent_whole() {
    let w = world_with("");
    let held = stored(&w, "federation", 1);
    let mut bytes = held.encode();
    // `remarks` is 300 × "x": change one of them, still valid UTF-8.
    let at = bytes
        .windows(300)
        .position(|s| s.iter().all(|&b| b == b'x'))
        .expect("the remarks value is in the stored bytes")
        + 150;
    bytes[at] = b'y';
    let damaged = RawRecord::from_owner(bytes);
    // The envelope and the header are intact: only the digest check can tell.
    assert!(damaged.view().is_err());
    assert!(damaged.decode().is_err());

    let mut r = R::new(EPOCH, limits());
    let job = match one(r.on_pull(BB, bb(), 7, pull(0, 1 << 20), w.policy.clone())) {
        ServeAction::ReadLog { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let prepare = one(r.on_log_read(
        job,
        Ok::<_, String>(LogRead {
            head: 1,
            raws: vec![(1, held.record.id(), Some(damaged))],
            truncated: false,
            audit: true,
        }),
    ));
    match one(r.on_prepared(run(prepare))) {
        ServeAction::Respond {
            response: Response::Error { code, message },
            ..
        } => {
            assert_eq!(code, "unavailable");
            assert!(message.contains("corrupt"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}
