//! Store ingest rules against a real store on disk, on the engine that
//! `WLNODE_TEST_STORE_ENGINE` names (sled when unset): CI runs this suite once per
//! engine. Tests that compare engines loop over [`EngineKind::ALL`] themselves.

use wlnode_crypto::model::{AgencyCode, EntryDraft, EntryId, Status};
use wlnode_crypto::record::{FieldSelector, RecordMeta, build_record};
use wlnode_crypto::time::Timestamp;
use wlnode_crypto::{SecretKey, VerifiedRecord};

use super::*;

fn draft(name: &str) -> EntryDraft {
    serde_json::from_str(&format!(
        r#"{{"subject":{{"kind":"person","name":"{name}","aliases":["alias one"],
            "identifiers":[{{"type":"passport","value":"X1"}}]}},"reason":"denial"}}"#
    ))
    .unwrap()
}

fn rec(
    key: &SecretKey,
    origin: &str,
    id: EntryId,
    version: u64,
    status: Status,
    name: &str,
) -> VerifiedRecord {
    build_record(
        RecordMeta {
            entry_id: id,
            origin: AgencyCode::new(origin).unwrap(),
            version,
            issued_at: Timestamp(1_790_000_000_000 + version),
            status,
            withdrawal_reason: None,
        },
        &draft(name),
        key,
    )
    .unwrap()
}

fn local(r: &VerifiedRecord) -> Incoming {
    Incoming {
        record: r.clone(),
        source: Source::Local,
        local: None,
        inclusion: None,
    }
}

fn batch(items: Vec<Incoming>) -> IngestBatch {
    IngestBatch {
        items,
        cursor: None,
        declined: Vec::new(),
        audit: Vec::new(),
    }
}

fn key_of(r: &VerifiedRecord) -> EntryKey {
    EntryKey {
        entry_id: r.header().entry_id,
        origin: r.header().origin.clone(),
    }
}

#[test]
fn head_is_highest_version_and_history_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let id = EntryId::random().unwrap();
    let v1 = rec(&k, "AA-EXPORT", id, 1, Status::Active, "One");
    let v2 = rec(&k, "AA-EXPORT", id, 2, Status::Active, "Two");
    let v3 = rec(&k, "AA-EXPORT", id, 3, Status::Withdrawn, "Two");
    // Out of order: v3 then v1 then v2.
    let r = s
        .ingest(&batch(vec![local(&v3), local(&v1)]), Timestamp(5))
        .unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Stored, Outcome::Stored]);
    s.ingest(&batch(vec![local(&v2)]), Timestamp(6)).unwrap();
    let st = s.entry(&key_of(&v1)).unwrap().unwrap();
    assert_eq!(st.head, v3.id());
    assert_eq!(st.version, 3);
    assert_eq!(
        st.status,
        Status::Withdrawn,
        "withdrawn head is kept as a delisting"
    );
    assert_eq!(st.records(), 3);
    assert!(!st.disputed);
    let c = s.counts().unwrap();
    assert_eq!(
        (c.records, c.entries, c.withdrawn, c.head_seq),
        (3, 1, 1, 3)
    );
    let versions = s.entry_versions(&key_of(&v1)).unwrap();
    assert_eq!(
        versions.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn duplicates_merge_disclosures() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let full = rec(
        &k,
        "AA-EXPORT",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "Full",
    );
    let (partial, removed) = full.redact(&[FieldSelector::Tag(
        wlnode_crypto::model::FieldTag::Identifier,
    )]);
    assert_eq!(removed.len(), 1);
    let peer = |r: &VerifiedRecord, hops| Incoming {
        record: r.clone(),
        source: Source::Peer {
            agency: AgencyCode::new("BB-CUSTOMS").unwrap(),
            hops,
        },
        local: None,
        inclusion: None,
    };
    let r = s
        .ingest(&batch(vec![peer(&partial, 2)]), Timestamp(1))
        .unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Stored]);
    let r = s
        .ingest(&batch(vec![peer(&partial, 1)]), Timestamp(2))
        .unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Duplicate]);
    assert_eq!(
        s.record(&full.id()).unwrap().unwrap().hops,
        1,
        "fewer hops remembered"
    );
    let r = s
        .ingest(&batch(vec![peer(&full, 1)]), Timestamp(3))
        .unwrap();
    assert_eq!(r.outcomes, vec![Outcome::Merged { added: 1 }]);
    let stored = s.record(&full.id()).unwrap().unwrap();
    assert!(stored.record.is_complete());
    assert_eq!(s.counts().unwrap().records, 1);
    // The merge was appended to the log so that peers pick up the new field.
    assert_eq!(s.log_after(0, 10).unwrap().len(), 2);
}

#[test]
fn equivocation_keeps_both_and_marks_disputed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let id = EntryId::random().unwrap();
    let a = rec(&k, "AA-EXPORT", id, 1, Status::Active, "Version A");
    let b = rec(&k, "AA-EXPORT", id, 1, Status::Active, "Version B");
    s.ingest(&batch(vec![local(&a)]), Timestamp(1)).unwrap();
    let r = s.ingest(&batch(vec![local(&b)]), Timestamp(2)).unwrap();
    assert_eq!(r.equivocations.len(), 1);
    let e = &r.equivocations[0];
    assert_eq!(e.version, 1);
    assert_eq!(e.records.len(), 2);
    let st = s.entry(&key_of(&a)).unwrap().unwrap();
    assert!(st.disputed);
    assert_eq!(
        st.head,
        a.id().min(b.id()),
        "deterministic head among equals"
    );
    assert!(s.record(&a.id()).unwrap().is_some() && s.record(&b.id()).unwrap().is_some());
    assert_eq!(s.disputes().unwrap().len(), 1);
    // The same pair in the other order gives the same state on another node.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Store::open(dir2.path()).unwrap();
    s2.ingest(&batch(vec![local(&b), local(&a)]), Timestamp(1))
        .unwrap();
    let st2 = s2.entry(&key_of(&a)).unwrap().unwrap();
    assert_eq!((st2.head, st2.disputed), (st.head, true));
}

#[test]
fn entries_are_keyed_by_origin_so_ids_cannot_be_hijacked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let id = EntryId::random().unwrap();
    let a = rec(
        &SecretKey::generate().unwrap(),
        "AA-EXPORT",
        id,
        1,
        Status::Active,
        "Real",
    );
    let b = rec(
        &SecretKey::generate().unwrap(),
        "BB-CUSTOMS",
        id,
        9,
        Status::Withdrawn,
        "Hijack",
    );
    s.ingest(&batch(vec![local(&a), local(&b)]), Timestamp(1))
        .unwrap();
    let st = s.entry(&key_of(&a)).unwrap().unwrap();
    assert_eq!((st.version, st.status), (1, Status::Active));
    assert_eq!(s.entries_by_id(&id).unwrap().len(), 2);
}

#[test]
fn survives_reopen_and_refuses_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let k = SecretKey::generate().unwrap();
    let r = rec(
        &k,
        "AA-EXPORT",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "Kept",
    );
    let epoch;
    {
        let s = Store::open(dir.path()).unwrap();
        epoch = s.epoch();
        s.ingest(&batch(vec![local(&r)]), Timestamp(1)).unwrap();
        // A second open while this one is alive is refused at once.
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(
            err.to_string().contains("in use by another wlnode process"),
            "{err}"
        );
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.epoch(), epoch, "epoch is stable across restarts");
    assert_eq!(s.counts().unwrap().records, 1);
    assert!(s.record(&r.id()).unwrap().unwrap().record.is_complete());
}

#[test]
fn cursor_is_written_with_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let r = rec(
        &k,
        "AA-EXPORT",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "C",
    );
    let peer = AgencyCode::new("AA-EXPORT").unwrap();
    let cursor = wlnode_types::Cursor {
        epoch: [1; 16],
        seq: 42,
        backlog_complete: false,
    };
    s.ingest(
        &IngestBatch {
            items: vec![local(&r)],
            cursor: Some((peer.clone(), cursor)),
            declined: Vec::new(),
            audit: Vec::new(),
        },
        Timestamp(1),
    )
    .unwrap();
    assert_eq!(s.cursor(&peer).unwrap(), Some(cursor));
}

#[test]
fn listing_pages_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let items: Vec<Incoming> = (0..25)
        .map(|i| {
            let st = if i % 5 == 0 {
                Status::Withdrawn
            } else {
                Status::Active
            };
            local(&rec(
                &k,
                "AA-EXPORT",
                EntryId::random().unwrap(),
                1,
                st,
                &format!("N{i}"),
            ))
        })
        .collect();
    s.ingest(&batch(items), Timestamp(1)).unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = s
            .list_entries(&EntryFilter::default(), after.as_ref(), 7)
            .unwrap();
        all.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(all.len(), 25);
    let f = EntryFilter {
        status: Some(Status::Withdrawn),
        ..Default::default()
    };
    assert_eq!(s.list_entries(&f, None, 100).unwrap().0.len(), 5);
    let f = EntryFilter {
        updated_since: Some(Timestamp(2)),
        ..Default::default()
    };
    assert_eq!(s.list_entries(&f, None, 100).unwrap().0.len(), 0);
}

#[test]
fn audit_events_commit_with_ingest_and_checkpoints_follow_the_tree() {
    use wlnode_audit::event::{Event, EventKind};
    use wlnode_audit::merkle;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let node_key = std::sync::Arc::new(SecretKey::generate().unwrap());
    s.set_audit_settings(audit::AuditSettings {
        enabled: true,
        signer: Some((AgencyCode::new("DE-BAFA").unwrap(), node_key.clone())),
        every_events: 3,
        interval_ms: u64::MAX,
    });
    let peer = AgencyCode::new("FR-SBDU").unwrap();
    let r1 = rec(&k, "DE-BAFA", EntryId([1; 16]), 1, Status::Active, "a");
    let r2 = rec(&k, "FR-SBDU", EntryId([2; 16]), 1, Status::Active, "b");
    let mut b = batch(vec![
        local(&r1),
        Incoming {
            record: r2.clone(),
            source: Source::Peer {
                agency: peer.clone(),
                hops: 1,
            },
            local: None,
            inclusion: None,
        },
    ]);
    b.audit.push(Event::new(
        5,
        EventKind::Rejected {
            record_id: None,
            from: peer.clone(),
            reason: "malformed".into(),
        },
    ));
    s.ingest(&b, Timestamp(7)).unwrap();
    // The batch's rejection, then one event per record, in one transaction.
    assert_eq!(s.audit_size().unwrap(), 3);
    let evs: Vec<Event> = s
        .audit_events(0, 3)
        .unwrap()
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect();
    assert_eq!(evs[1].kind, EventKind::Created { record_id: r1.id() });
    assert!(
        matches!(&evs[2].kind, EventKind::Accepted { from, outcome, .. } if *from == peer && outcome == "stored")
    );
    // Three events: a checkpoint is due and matches the tree.
    let cps = s.audit_checkpoints().unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].checkpoint.size, 3);
    assert_eq!(cps[0].verify().unwrap(), node_key.public_key());
    assert_eq!(
        cps[0].checkpoint.root_hash(),
        Some(s.audit_root(3).unwrap())
    );
    // A duplicate from the peer is still a receipt.
    s.ingest(
        &batch(vec![Incoming {
            record: r2.clone(),
            source: Source::Peer {
                agency: peer,
                hops: 1,
            },
            local: None,
            inclusion: None,
        }]),
        Timestamp(8),
    )
    .unwrap();
    s.audit_append(&[Event::new(9, EventKind::NodeStopped)])
        .unwrap();
    assert_eq!(s.audit_size().unwrap(), 5);
    // Proofs read from sled verify against the roots.
    let (r3, r5) = (s.audit_root(3).unwrap(), s.audit_root(5).unwrap());
    let proof = s.audit_consistency_proof(3, 5).unwrap();
    merkle::verify_consistency(3, 5, &r3, &r5, &proof).unwrap();
    let leaf = merkle::leaf_hash(&s.audit_events(3, 4).unwrap()[0]);
    let incl = s.audit_inclusion_proof(3, 5).unwrap();
    merkle::verify_inclusion(&leaf, 3, 5, &incl, &r5).unwrap();
    // Off: nothing is logged.
    s.set_audit_settings(audit::AuditSettings {
        enabled: false,
        ..audit::AuditSettings::default()
    });
    s.ingest(&batch(vec![local(&r1)]), Timestamp(10)).unwrap();
    assert_eq!(s.audit_size().unwrap(), 5);
}

/// Injected disk faults (store/faults.rs): a refused write and a write that fails
/// partway through a batch leave nothing visible, reads keep working, and the next
/// write after the fault clears goes through.
#[test]
fn a_batch_failing_partway_leaves_nothing_visible() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let key = SecretKey::generate().unwrap();
    let first = rec(
        &key,
        "AA-EXPORT",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "First",
    );
    s.ingest(&batch(vec![local(&first)]), Timestamp::now())
        .unwrap();
    let before = s.counts().unwrap();
    let peer = AgencyCode::new("BB-CUSTOMS").unwrap();
    let cursor = Cursor {
        epoch: [7; 16],
        seq: 42,
        backlog_complete: true,
    };
    let recs: Vec<VerifiedRecord> = (0..5)
        .map(|k| {
            rec(
                &key,
                "AA-EXPORT",
                EntryId::random().unwrap(),
                1,
                Status::Active,
                &format!("Batch {k}"),
            )
        })
        .collect();
    let with_cursor = |items: Vec<Incoming>| IngestBatch {
        items,
        cursor: Some((peer.clone(), cursor)),
        declined: Vec::new(),
        audit: Vec::new(),
    };
    let invisible = |s: &Store| {
        assert_eq!(s.counts().unwrap(), before);
        for r in &recs {
            assert!(!s.has_record(&r.id()).unwrap(), "a half-written record");
            assert!(s.entry(&key_of(r)).unwrap().is_none());
        }
        assert_eq!(s.sync_items().unwrap().len(), 1);
        assert!(
            s.cursor(&peer).unwrap().is_none(),
            "cursor ahead of the data"
        );
        // Reads keep working.
        assert!(s.has_record(&first.id()).unwrap());
    };

    // Partway: the first record of the batch is written inside the transaction, then
    // the write fails; also a one-record batch (fails after its record).
    let faults = s.faults();
    faults.fail_mid_batch(2);
    let e = s
        .ingest(
            &with_cursor(recs.iter().map(local).collect()),
            Timestamp::now(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("partway"), "{e}");
    invisible(&s);
    let e = s
        .ingest(&with_cursor(vec![local(&recs[0])]), Timestamp::now())
        .unwrap_err();
    assert!(e.to_string().contains("partway"), "{e}");
    invisible(&s);

    // Refused outright, for every kind of write.
    faults.fail_writes(u64::MAX);
    for _ in 0..3 {
        let e = s
            .ingest(
                &with_cursor(recs.iter().map(local).collect()),
                Timestamp::now(),
            )
            .unwrap_err();
        assert!(matches!(e, StoreError::Io(_)), "{e}");
    }
    assert!(s.set_cursor(&peer, Some(cursor)).is_err());
    assert!(s.meta_set(b"k", b"v").is_err());
    assert!(s.clear_declined().is_err());
    invisible(&s);

    // The disk is back: the whole batch lands at once, with its cursor.
    faults.clear();
    let r = s
        .ingest(
            &with_cursor(recs.iter().map(local).collect()),
            Timestamp::now(),
        )
        .unwrap();
    assert_eq!(r.changed(), 5);
    assert_eq!(s.counts().unwrap().records, before.records + 5);
    assert_eq!(s.cursor(&peer).unwrap(), Some(cursor));
    drop(s);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.counts().unwrap().records, before.records + 5);
}

/// The store keeps only subtrees of 16 leaves or more and recomputes smaller ones from
/// the events: roots and proofs for every size must equal those of a tree that keeps
/// every node, whatever the batch boundaries.
#[test]
fn audit_tree_with_recomputed_small_subtrees_matches_the_full_tree() {
    use wlnode_audit::event::{Event, EventKind};
    use wlnode_audit::merkle::{self, MemStore};

    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mut full = MemStore::new();
    let mut size = 0u64;
    for batch in [1usize, 2, 5, 16, 1, 31, 17, 64, 3, 40, 65, 130] {
        let events: Vec<Event> = (0..batch)
            .map(|i| {
                Event::new(
                    size + i as u64,
                    EventKind::RosterLoaded {
                        version: 7,
                        not_understood: Vec::new(),
                        not_understood_more: 0,
                    },
                )
            })
            .collect();
        s.audit_append_nosync(&events).unwrap();
        for e in &events {
            size = merkle::append(&mut full, size, merkle::leaf_hash(&e.encode())).unwrap();
        }
        assert_eq!(s.audit_size().unwrap(), size);
    }
    for n in 1..=size {
        assert_eq!(
            s.audit_root(n).unwrap(),
            merkle::root(&full, n).unwrap(),
            "size {n}"
        );
    }
    for (i, n) in [
        (0u64, 1u64),
        (3, 20),
        (15, 16),
        (16, 17),
        (100, 180),
        (179, 180),
        (200, 375),
        (374, 375),
    ] {
        assert_eq!(
            s.audit_inclusion_proof(i, n).unwrap(),
            merkle::inclusion_proof(&full, i, n).unwrap(),
            "inclusion {i} in {n}"
        );
    }
    for (a, b) in [
        (1u64, 2u64),
        (5, 24),
        (16, 32),
        (17, 100),
        (99, 180),
        (180, 180),
        (181, 375),
    ] {
        assert_eq!(
            s.audit_consistency_proof(a, b).unwrap(),
            merkle::consistency_proof(&full, a, b).unwrap(),
            "consistency {a} -> {b}"
        );
    }
    // Far fewer stored nodes than a full tree's ~2 per leaf.
    assert!(s.t.audit_nodes.len().unwrap() < size / 8);
    // A gap in the events (a damaged store) is an error, never a shifted hash.
    let (chunk_of_5, _) =
        s.t.audit_events
            .range(..=5u64.to_be_bytes())
            .next_back()
            .unwrap()
            .unwrap();
    s.t.audit_events.remove(chunk_of_5).unwrap();
    assert!(matches!(s.audit_root(7), Err(StoreError::Corrupt { .. })));
}

/// Events are stored in chunks of up to 64: every range read returns exactly the
/// events appended, in order, across chunk and batch boundaries and a reopen; and a
/// store written before chunking (one event per key, no `audit_edge`) keeps working.
#[test]
fn chunked_audit_events_read_back_exactly_and_legacy_layout_still_appends() {
    use wlnode_audit::event::{Event, EventKind};
    use wlnode_audit::merkle::{self, MemStore};

    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<Vec<u8>> = Vec::new();
    let mut full = MemStore::new();
    let mut append = |s: &Store, all: &mut Vec<Vec<u8>>, n: usize| {
        let events: Vec<Event> = (0..n)
            .map(|i| {
                Event::new(
                    all.len() as u64 + i as u64,
                    EventKind::PolicyLoaded {
                        hash: format!("h{}", all.len() + i),
                    },
                )
            })
            .collect();
        s.audit_append_nosync(&events).unwrap();
        for e in events {
            let b = e.encode();
            merkle::append(&mut full, all.len() as u64, merkle::leaf_hash(&b)).unwrap();
            all.push(b);
        }
    };
    {
        // The layout before chunking: one event per key (batches of one), no edge.
        let s = Store::open(dir.path()).unwrap();
        for _ in 0..21 {
            append(&s, &mut all, 1);
        }
        assert_eq!(s.t.audit_events.len().unwrap(), 21);
        s.t.meta.remove(meta::AUDIT_EDGE).unwrap();
        append(&s, &mut all, 70);
        assert_eq!(s.t.audit_events.len().unwrap(), 21 + 2);
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    append(&s, &mut all, 3);
    append(&s, &mut all, 128);
    append(&s, &mut all, 1);
    let size = all.len() as u64;
    assert_eq!(s.audit_size().unwrap(), size);
    for from in [0u64, 1, 20, 21, 22, 63, 64, 90, 91, 94, 150, size - 1] {
        for to in [
            from,
            from + 1,
            from + 5,
            from + 64,
            from + 65,
            size,
            size + 10,
        ] {
            let want: Vec<Vec<u8>> = all
                .iter()
                .skip(from as usize)
                .take(to.min(size).saturating_sub(from) as usize)
                .cloned()
                .collect();
            assert_eq!(s.audit_events(from, to).unwrap(), want, "[{from}, {to})");
        }
    }
    for n in 1..=size {
        assert_eq!(
            s.audit_root(n).unwrap(),
            merkle::root(&full, n).unwrap(),
            "{n}"
        );
    }
    // Tampering rewrites one event inside its chunk and nothing else.
    let forged = Event::new(1, EventKind::NodeStopped).encode();
    s.audit_tamper_event(100, &forged).unwrap();
    let after = s.audit_events(0, size).unwrap();
    assert_eq!(after[100], forged);
    assert_eq!(after.len(), all.len());
    assert!(
        after
            .iter()
            .zip(&all)
            .enumerate()
            .all(|(i, (a, b))| i == 100 || a == b)
    );
}

/// The arrival log is stored as one chunk per batch (at most 256 ids per value):
/// `log_after` returns the same sequence as one key per record would, for every
/// starting point and limit, across batch and chunk boundaries.
#[test]
fn chunked_arrival_log_reads_like_one_key_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let mut ids = Vec::new();
    for n in [1usize, 3, 300, 1, 256, 2] {
        let recs: Vec<VerifiedRecord> = (0..n)
            .map(|i| {
                rec(
                    &k,
                    "AA-EXPORT",
                    EntryId::random().unwrap(),
                    1,
                    Status::Active,
                    &format!("Log Chunk {i}"),
                )
            })
            .collect();
        ids.extend(recs.iter().map(|r| r.id()));
        s.ingest(&batch(recs.iter().map(local).collect()), Timestamp(1))
            .unwrap();
    }
    let head = s.head_seq().unwrap();
    assert_eq!(head, ids.len() as u64);
    let expected: Vec<(u64, RecordId)> = (1u64..).zip(ids.iter().copied()).collect();
    for after in [
        0u64,
        1,
        2,
        4,
        5,
        100,
        258,
        259,
        303,
        304,
        305,
        560,
        562,
        head,
        head + 5,
    ] {
        for limit in [0usize, 1, 7, 256, 257, 10_000] {
            let want: Vec<(u64, RecordId)> = expected
                .iter()
                .filter(|(seq, _)| *seq > after)
                .take(limit)
                .copied()
                .collect();
            assert_eq!(
                s.log_after(after, limit).unwrap(),
                want,
                "after {after} limit {limit}"
            );
        }
    }
    // One chunk per batch, two for the batch of 300.
    assert_eq!(s.t.log.len().unwrap(), 7);
    assert_eq!(s.log_after(u64::MAX, 10).unwrap(), vec![]);
}

/// Schema 2 (chunked values) opens a schema 1 store, whose one-item values read the
/// same, and marks it current so that an older wlnode refuses it; an unknown version
/// is refused with the version named. Schema 5: a store from before has its sync
/// index rebuilt with the facts the send decision reads.
#[test]
fn older_schema_stores_open_and_are_marked_current_unknown_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(SCHEMA_VERSION, 6);
    let k = SecretKey::generate().unwrap();
    let r = rec(
        &k,
        "DE-BAFA",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "Old",
    );
    let skey = schema::sync_key(r.header().issued_at.as_millis(), &r.id().0);
    let from_peer = Incoming {
        record: r.clone(),
        source: Source::Peer {
            agency: AgencyCode::new("BB-CUSTOMS").unwrap(),
            hops: 2,
        },
        local: None,
        inclusion: None,
    };
    for old in [1u32, 2, 3, 4, 5] {
        {
            let s = Store::open(dir.path()).unwrap();
            s.ingest(&batch(vec![from_peer.clone()]), Timestamp::now())
                .unwrap();
            // What a version 1-4 store holds: the distribution only (a version 5
            // store holds the facts, with no proofs: it reads as it is).
            if old < 5 {
                s.t.sync_index
                    .insert(&skey[..], SyncMeta::of(r.header()).encode())
                    .unwrap();
            }
            s.meta_set(meta::SCHEMA_VERSION, &old.to_be_bytes())
                .unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.meta_get(meta::SCHEMA_VERSION).unwrap().unwrap(),
            SCHEMA_VERSION.to_be_bytes()
        );
        let v = s.t.sync_index.get(&skey[..]).unwrap().unwrap();
        assert_eq!(
            SyncMeta::decode(&v).unwrap(),
            SyncMeta::held(r.header(), 2),
            "schema {old}: rebuilt, at the hops held"
        );
    }
    {
        let s = Store::open(dir.path()).unwrap();
        s.meta_set(meta::SCHEMA_VERSION, &7u32.to_be_bytes())
            .unwrap();
        s.flush().unwrap();
    }
    let e = Store::open(dir.path()).err().unwrap();
    assert!(matches!(e, StoreError::Schema { found: 7 }), "{e}");
    assert!(e.to_string().contains("version 7"), "{e}");
}

/// The sync index keeps the hops a record is held at current, since the send
/// decision (and so the reconciliation set) reads them.
#[test]
fn the_sync_index_follows_the_fewest_hops_held() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let r = rec(
        &k,
        "DE-BAFA",
        EntryId::random().unwrap(),
        1,
        Status::Active,
        "Hops",
    );
    let peer = |hops| Incoming {
        record: r.clone(),
        source: Source::Peer {
            agency: AgencyCode::new("BB-CUSTOMS").unwrap(),
            hops,
        },
        local: None,
        inclusion: None,
    };
    let skey = schema::sync_key(r.header().issued_at.as_millis(), &r.id().0);
    let held_hops = || {
        let v = s.t.sync_index.get(&skey[..]).unwrap().unwrap();
        SyncMeta::decode(&v).unwrap().facts().unwrap().1
    };
    s.ingest(&batch(vec![peer(3)]), Timestamp::now()).unwrap();
    assert_eq!(held_hops(), 3);
    s.ingest(&batch(vec![peer(4)]), Timestamp::now()).unwrap();
    assert_eq!(held_hops(), 3);
    s.ingest(&batch(vec![peer(1)]), Timestamp::now()).unwrap();
    assert_eq!(held_hops(), 1);
}

fn signing_settings() -> audit::AuditSettings {
    audit::AuditSettings {
        enabled: true,
        signer: Some((
            AgencyCode::new("DE-BAFA").unwrap(),
            std::sync::Arc::new(SecretKey::generate().unwrap()),
        )),
        every_events: 1000,
        interval_ms: u64::MAX,
    }
}

fn fresh(k: &SecretKey, n: usize) -> IngestBatch {
    batch(
        (0..n)
            .map(|i| {
                local(&rec(
                    k,
                    "DE-BAFA",
                    EntryId::random().unwrap(),
                    1,
                    Status::Active,
                    &format!("n{i}"),
                ))
            })
            .collect(),
    )
}

#[test]
fn reopen_keeps_data_epoch_settings_and_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.set_audit_settings(signing_settings());
    let k = SecretKey::generate().unwrap();
    s.ingest(&fresh(&k, 3), Timestamp(5)).unwrap();
    let (epoch, counts, root) = (s.epoch(), s.counts().unwrap(), s.audit_root(3).unwrap());
    // Three records and their three audit events.
    assert_eq!(s.writes_since_open(), 6);
    let s = s.reopen().map_err(|(_, e)| e).unwrap();
    assert_eq!(s.writes_since_open(), 0);
    assert_eq!(
        (s.epoch(), s.counts().unwrap(), s.audit_root(3).unwrap()),
        (epoch, counts, root)
    );
    assert!(s.audit_settings().signer.is_some(), "signer survives");
    // The data dir stayed locked throughout.
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    s.ingest(&fresh(&k, 2), Timestamp(6)).unwrap();
    assert_eq!(s.counts().unwrap().records, 5);
}

/// sled's recovery snapshots in `dir`, each named after the log position it covers
/// (none on another engine).
fn snapshots(dir: &std::path::Path) -> std::collections::BTreeSet<String> {
    let Ok(rd) = std::fs::read_dir(dir.join("db")) else {
        return std::collections::BTreeSet::new();
    };
    rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snap."))
        .collect()
}

#[tokio::test]
async fn the_actor_reopens_after_many_writes_and_on_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    // A record and its audit event are two writes.
    let (h, actor) = StoreHandle::open_checkpointing(dir.path(), None, 20, 5).unwrap();
    h.call(|s| {
        s.set_audit_settings(signing_settings());
        Ok(())
    })
    .await
    .unwrap();
    let k = SecretKey::generate().unwrap();
    let writes = || h.call(|s| Ok(s.writes_since_open()));
    for _ in 0..2 {
        h.ingest(fresh(&k, 4)).await.unwrap();
    }
    assert_eq!(writes().await.unwrap(), 16);
    // The third batch crosses the threshold: the actor reopens sled after it.
    h.ingest(fresh(&k, 4)).await.unwrap();
    assert_eq!(writes().await.unwrap(), 0);
    let signer = h
        .call(|s| Ok(s.audit_settings().signer.is_some()))
        .await
        .unwrap();
    assert!(signer, "the node's audit settings survive the reopen");
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Locked { .. })
    ));
    h.ingest(fresh(&k, 4)).await.unwrap();
    let c = h.counts().await.unwrap();
    assert_eq!((c.records, c.audit_events), (16, 16));
    let before = snapshots(dir.path());
    drop(h);
    actor.join();
    // Stopped with 8 writes since the reopen (over the stop threshold of 5): reopened
    // once more, which wrote a snapshot covering them (sled: other engines keep none).
    if crate::default_engine() == EngineKind::Sled {
        assert_ne!(
            snapshots(dir.path()),
            before,
            "a clean stop writes a new snapshot"
        );
    }

    // Below the stop threshold, a clean stop does not reopen.
    let (h, actor) = StoreHandle::open_checkpointing(dir.path(), None, 20, 100).unwrap();
    assert_eq!(h.counts().await.unwrap(), c);
    let before = snapshots(dir.path());
    h.ingest(fresh(&k, 4)).await.unwrap();
    drop(h);
    actor.join();
    assert_eq!(snapshots(dir.path()), before);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.counts().unwrap().records, 20);
}

/// Every key/value of `tree` in `db`.
#[cfg(feature = "floor")]
fn tree_contents(
    db: &std::sync::Arc<dyn crate::engine::Kv>,
    tree: &str,
) -> Vec<(bytes::Bytes, bytes::Bytes)> {
    crate::engine::Tree::open(db, tree)
        .unwrap()
        .iter()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[cfg(feature = "floor")]
#[test]
fn the_storage_floor_writes_exactly_what_ingest_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&dir.path().join("store")).unwrap();
    // An empty store replays nothing and gives no ratio.
    let empty = s
        .replay_floor(EngineKind::Sled, &dir.path().join("empty"), 64, || 0.0)
        .unwrap();
    assert_eq!((empty.records, empty.transactions), (0, 0));
    assert_eq!(empty.ratio(1000.0), None);
    let k = SecretKey::generate().unwrap();
    for round in 0..3 {
        let mut b = fresh(&k, 100);
        // Import bookkeeping for some records, so that `local` is replayed too.
        for (i, item) in b.items.iter_mut().enumerate().step_by(3) {
            item.local = Some(LocalMeta {
                source_list: "list".into(),
                source_id: format!("{round}-{i}"),
            });
        }
        s.ingest(&b, Timestamp(5 + round)).unwrap();
    }
    for kind in EngineKind::ALL {
        let target = dir.path().join(format!("floor-{kind}"));
        let floor = s
            .replay_floor(kind, &target, 64, || 0.0)
            .expect("replay into a fresh directory");
        assert_eq!(floor.engine, kind);
        assert_eq!(floor.records, 300);
        assert_eq!(floor.transactions, 5, "300 records in groups of 64");
        assert!(floor.seconds > 0.0 && floor.records_per_second > 0.0);
        // The writer's engine may hold its file lock for a moment after it is dropped.
        let db = crate::engine::open(kind, &target, std::time::Duration::from_secs(30))
            .expect("the replayed database opens");
        check_floor(&s, &db, &floor);
    }
}

#[cfg(feature = "floor")]
fn check_floor(s: &Store, db: &std::sync::Arc<dyn crate::engine::Kv>, floor: &crate::floor::Floor) {
    let mut bytes = 0u64;
    for tree in [
        trees::RECORDS,
        trees::ENTRIES,
        trees::SYNC_INDEX,
        trees::LOCAL,
        trees::LOG,
        trees::AUDIT_EVENTS,
        trees::AUDIT_NODES,
    ] {
        let ours = tree_contents(&s.db, tree);
        assert!(!ours.is_empty(), "{tree} was written by ingest");
        assert_eq!(tree_contents(db, tree), ours, "{tree} replayed exactly");
        bytes += ours
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
    }
    assert_eq!(tree_contents(&s.db, trees::LOCAL).len(), 102);
    // Plus the four 8-byte meta values per transaction.
    let meta_bytes: u64 = [
        meta::NEXT_SEQ,
        COUNT_RECORDS,
        COUNT_ENTRIES,
        COUNT_WITHDRAWN,
    ]
    .iter()
    .map(|k| k.len() as u64 + 8)
    .sum();
    assert_eq!(floor.bytes, bytes + 5 * meta_bytes);
}

/// A revoked key's records, once demoted, rank below the agency's valid records
/// whatever their versions and do not make an equivocation; before the fix the highest
/// version was the head forever, so a thief's `u32::MAX` record could never be
/// superseded.
#[test]
fn a_revoked_keys_records_rank_below_valid_ones_and_dispute_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let valid = SecretKey::generate().unwrap();
    let thief = SecretKey::generate().unwrap();
    let id = EntryId::random().unwrap();
    let v1 = rec(&valid, "AA-EXPORT", id, 1, Status::Active, "Honest");
    let fake1 = rec(&thief, "AA-EXPORT", id, 1, Status::Active, "Other");
    let huge = rec(
        &thief,
        "AA-EXPORT",
        id,
        u64::from(u32::MAX),
        Status::Withdrawn,
        "X",
    );
    s.ingest(
        &batch(vec![local(&v1), local(&fake1), local(&huge)]),
        Timestamp(5),
    )
    .unwrap();
    let key = key_of(&v1);
    let st = s.entry(&key).unwrap().unwrap();
    assert_eq!(
        (st.head, st.disputed),
        (huge.id(), true),
        "before the revocation"
    );
    let thief_key = thief.public_key();
    let revoked = |h: &wlnode_crypto::record::RecordHeader, _: &RecordId| h.signer_key == thief_key;
    let r = s.apply_revocations([1; 32], revoked, Timestamp(6)).unwrap();
    assert!(r.applied);
    assert_eq!(
        (r.demoted_records, r.entries_changed, r.heads_changed),
        (2, 1, 1)
    );
    let st = s.entry(&key).unwrap().unwrap();
    assert_eq!(st.head, v1.id(), "the valid record is the head");
    assert_eq!((st.version, st.status), (1, Status::Active));
    assert!(
        !st.disputed,
        "a revoked key's same-version record disputes nothing"
    );
    assert_eq!(st.valid_version(), 1);
    assert_eq!(st.records(), 3, "the demoted records stay as evidence");
    let c = s.counts().unwrap();
    assert_eq!((c.withdrawn, c.disputed_versions), (0, 0));
    assert_eq!(c.head_seq, 4, "the new head went on the arrival log again");
    // The same revocations again: nothing is read.
    let again = s.apply_revocations([1; 32], revoked, Timestamp(7)).unwrap();
    assert!(!again.applied);
    // The agency's next version is the head, not an overflow.
    let v2 = rec(
        &valid,
        "AA-EXPORT",
        id,
        st.valid_version() + 1,
        Status::Active,
        "Two",
    );
    s.ingest(&batch(vec![local(&v2)]), Timestamp(8)).unwrap();
    assert_eq!(s.entry(&key).unwrap().unwrap().head, v2.id());
    // A roster that keeps them (or drops the revocation) restores the order.
    let r = s
        .apply_revocations([2; 32], |_, _| false, Timestamp(9))
        .unwrap();
    assert_eq!(r.entries_changed, 1);
    let st = s.entry(&key).unwrap().unwrap();
    assert_eq!((st.head, st.disputed), (huge.id(), true));
    assert!(st.demoted.is_empty());
}

/// Issue 19 item 3: a declined record joins only the reconciliation sets of the peers
/// it was declined for (all of them for a refusal about the record itself), once.
/// Issue 19 item 6: once held, a record is judged by the send test, except that a
/// note of what a peer gave us (`known`) keeps counting for that peer; a refusal for
/// everyone of a record held since no longer counts (review: it listed a held record
/// our rules keep from the peer). A reload clears refusals and keeps the notes.
#[test]
fn declined_records_join_only_their_peers_sets_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let mk = |name: &str| {
        rec(
            &k,
            "DE-BAFA",
            EntryId::random().unwrap(),
            1,
            Status::Active,
            name,
        )
    };
    let (held, held_all, for_a, for_all) = (
        mk("held"),
        mk("held, once refused"),
        mk("for a"),
        mk("for all"),
    );
    let a = AgencyCode::new("AA-EXPORT").unwrap();
    let b = AgencyCode::new("BB-CUSTOMS").unwrap();
    let declined = |r: &VerifiedRecord, only_for: Option<&AgencyCode>, known: bool| Declined {
        issued_at: r.header().issued_at.as_millis(),
        id: r.id(),
        meta: SyncMeta::of(r.header()),
        only_for: only_for.cloned(),
        known,
    };
    let mut b1 = batch(vec![local(&held), local(&held_all)]);
    b1.declined = vec![
        declined(&for_a, Some(&a), false),
        declined(&for_all, None, false),
        declined(&for_all, Some(&a), false),
        declined(&held, Some(&b), true),
        declined(&held_all, None, false),
    ];
    s.ingest(&b1, Timestamp::now()).unwrap();
    let set = |peer: &AgencyCode, send: bool| {
        let mut v: Vec<RecordId> = s
            .reconcile_items(peer, |_, _| send, |_| true)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let n = v.len();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), n, "each id once");
        v
    };
    let sorted = |mut v: Vec<RecordId>| {
        v.sort();
        v
    };
    // Everything held is sendable.
    assert_eq!(
        set(&a, true),
        sorted(vec![held.id(), held_all.id(), for_a.id(), for_all.id()])
    );
    assert_eq!(
        set(&b, true),
        sorted(vec![held.id(), held_all.id(), for_all.id()])
    );
    // Nothing held is sendable: only declined records and notes count.
    assert_eq!(set(&a, false), sorted(vec![for_a.id(), for_all.id()]));
    assert_eq!(set(&b, false), sorted(vec![held.id(), for_all.id()]));
    // A reload forgets the four refusals and keeps the note.
    assert_eq!(s.clear_declined().unwrap(), 4);
    assert_eq!(set(&a, true), sorted(vec![held.id(), held_all.id()]));
    assert_eq!(set(&a, false), Vec::<RecordId>::new());
    assert_eq!(set(&b, false), vec![held.id()]);
}

/// Issue 19 item 3: a store keeps `MAX_EQUIVOCATION_EVIDENCE` records per (entry,
/// version); the rest are refused and declined for every peer (review: refused
/// without being remembered, they were offered again in every session).
#[test]
fn equivocation_evidence_is_bounded_and_the_excess_declined_for_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let entry = EntryId::random().unwrap();
    let flood: Vec<VerifiedRecord> = (0..MAX_EQUIVOCATION_EVIDENCE + 2)
        .map(|i| {
            rec(
                &k,
                "DE-BAFA",
                entry,
                1,
                Status::Active,
                &format!("variant {i}"),
            )
        })
        .collect();
    let report = s
        .ingest(&batch(flood.iter().map(local).collect()), Timestamp::now())
        .unwrap();
    let excess = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::EquivocationExcess))
        .count();
    assert_eq!(excess, 2);
    let state = s.entry(&key_of(&flood[0])).unwrap().unwrap();
    assert_eq!(state.history.len(), MAX_EQUIVOCATION_EVIDENCE);
    assert!(state.disputed);
    let peer = AgencyCode::new("AA-EXPORT").unwrap();
    let set = s.reconcile_items(&peer, |_, _| true, |_| true).unwrap();
    assert_eq!(
        set.len(),
        flood.len(),
        "held or declined: none is offered again"
    );
    // The same excess record again is refused again, and nothing grows.
    let report = s
        .ingest(
            &batch(vec![local(&flood[flood.len() - 1])]),
            Timestamp::now(),
        )
        .unwrap();
    assert!(matches!(report.outcomes[0], Outcome::EquivocationExcess));
    assert_eq!(
        s.entry(&key_of(&flood[0])).unwrap().unwrap().history.len(),
        MAX_EQUIVOCATION_EVIDENCE
    );
}

/// Issue 19 item 3 (review): a kept reconciliation set is brought up to date from
/// the log only under the store opening it was built in and below the log head; a
/// reopen may have dropped records it listed.
#[test]
fn reconcile_deltas_refuse_sets_from_another_opening_or_past_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let k = SecretKey::generate().unwrap();
    let recs: Vec<_> = (0..3)
        .map(|i| {
            rec(
                &k,
                "DE-BAFA",
                EntryId::random().unwrap(),
                1,
                Status::Active,
                &format!("delta {i}"),
            )
        })
        .collect();
    s.ingest(&batch(vec![local(&recs[0])]), Timestamp::now())
        .unwrap();
    let head = s.head_seq().unwrap();
    s.ingest(
        &batch(recs[1..].iter().map(local).collect()),
        Timestamp::now(),
    )
    .unwrap();
    let (delta, to) = s
        .reconcile_delta(s.opening(), head, 100, |_, _| true)
        .unwrap()
        .unwrap();
    let ids: Vec<RecordId> = delta.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, vec![recs[1].id(), recs[2].id()]);
    assert_eq!(to, s.head_seq().unwrap());
    // Too many since, another opening, a head behind the set: build in full.
    assert!(
        s.reconcile_delta(s.opening(), head, 1, |_, _| true)
            .unwrap()
            .is_none()
    );
    assert!(
        s.reconcile_delta(s.opening() + 1, head, 100, |_, _| true)
            .unwrap()
            .is_none()
    );
    assert!(
        s.reconcile_delta(s.opening(), to + 1, 100, |_, _| true)
            .unwrap()
            .is_none()
    );
    let opening = s.opening();
    let s = s.reopen().unwrap();
    assert_ne!(s.opening(), opening, "a reopen is a new opening");
}

/// Issue 19 item 1, the auditor's half: the origin proves its own records of a
/// revoked key from its audit log and an auditor's cosignature dated before the
/// revocation; a later (or undated) cosignature of the same checkpoint does not erase
/// the earlier date; a record created after the cosigned checkpoint stays unproven;
/// and a proof stops holding when this node learned of the revocation before the
/// auditor's date.
#[test]
fn the_origin_proves_its_revoked_keys_records_from_its_cosigned_log() {
    use wlnode_audit::event::Cosignature;
    use wlnode_audit::inclusion::RecordInclusion;
    use wlnode_crypto::roster::Roster;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let me = AgencyCode::new("DE-BAFA").unwrap();
    let k = SecretKey::generate().unwrap();
    let node_key = std::sync::Arc::new(SecretKey::generate().unwrap());
    let auditor = SecretKey::generate().unwrap();
    s.set_audit_settings(audit::AuditSettings {
        enabled: true,
        signer: Some((me.clone(), node_key.clone())),
        every_events: 1_000,
        interval_ms: u64::MAX,
    });
    let r1 = rec(&k, "DE-BAFA", EntryId([1; 16]), 1, Status::Active, "a");
    let r2 = rec(&k, "DE-BAFA", EntryId([2; 16]), 1, Status::Active, "b");
    let r3 = rec(&k, "DE-BAFA", EntryId([3; 16]), 1, Status::Active, "c");
    s.ingest(&batch(vec![local(&r1), local(&r2)]), Timestamp(10))
        .unwrap();
    let cp = s.audit_checkpoint(11, true).unwrap().unwrap();
    let revoked_at: u64 = 1_798_761_600_000; // 2027-01-01
    let w1 = revoked_at - 86_400_000;
    s.audit_add_cosignature(&Cosignature::sign(cp.clone(), w1, &auditor))
        .unwrap();
    // The auditor's next runs, after the revocation date and undated: the earliest
    // date stays.
    s.audit_add_cosignature(&Cosignature::sign(cp.clone(), revoked_at + 5, &auditor))
        .unwrap();
    let mut undated = Cosignature::sign(cp.clone(), w1, &auditor);
    undated.witnessed_at = None;
    s.audit_add_cosignature(&undated).unwrap();
    // The node re-signs the same tree with a new timestamp while idle; the auditor
    // cosigns that one later: the earlier date of the same tree stays.
    let resigned = wlnode_audit::event::Checkpoint {
        timestamp: cp.checkpoint.timestamp + 60_000,
        ..cp.checkpoint.clone()
    }
    .sign(&node_key);
    s.audit_add_cosignature(&Cosignature::sign(resigned, revoked_at + 9, &auditor))
        .unwrap();
    let held = s.audit_cosignatures().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].witnessed_at, Some(w1), "the earliest date is kept");
    // Created after the cosigned checkpoint.
    s.ingest(&batch(vec![local(&r3)]), Timestamp(12)).unwrap();
    let roster = Roster::parse(
        format!(
            "federation = \"t\"\nversion = 1\nissued_at = 2026-01-01T00:00:00Z\n\
             [[authorities]]\nkey = \"{auth}\"\n\
             [[members]]\nagency = \"DE-BAFA\"\nname = \"x\"\ncountry = \"DE\"\nrole = \"member\"\n\
             node_ids = [\"{node}\"]\n\
             keys = [{{ key = \"{k}\", valid_from = 2020-01-01T00:00:00Z }}]\n\
             revoked = [{{ key = \"{k}\", revoked_at = 2027-01-01T00:00:00Z, reason = \"x\" }}]\n\
             [[members]]\nagency = \"BE-AUDIT\"\nname = \"a\"\ncountry = \"BE\"\nrole = \"auditor\"\n\
             node_ids = [\"{aud}\"]\n\
             keys = [{{ key = \"{auth}\", valid_from = 2020-01-01T00:00:00Z }}]\n",
            auth = SecretKey::generate().unwrap().public_key(),
            node = node_key.public_key().peer_id(),
            k = k.public_key(),
            aud = auditor.public_key().peer_id(),
        )
        .as_bytes(),
    )
    .unwrap();
    // Learned of the revocation after its date: the date is the cutoff.
    let known = s
        .revocations_known(&roster, Timestamp(revoked_at + 1_000))
        .unwrap();
    assert_eq!(
        s.revocations_known(&roster, Timestamp(revoked_at + 9_000))
            .unwrap(),
        known,
        "the first time is kept"
    );
    let rep = s.refresh_inclusions(&roster, &me, &known).unwrap();
    assert_eq!(
        (rep.applied, rep.proven, rep.unprovable, rep.dropped),
        (true, 2, 1, 0)
    );
    for r in [&r1, &r2] {
        let stored = s.record(&r.id()).unwrap().unwrap();
        let proof = RecordInclusion::decode(stored.inclusion.as_ref().unwrap()).unwrap();
        assert_eq!(
            proof.verify(&roster, &r.id(), &me, Timestamp(revoked_at)),
            Ok(w1)
        );
        let v =
            s.t.sync_index
                .get(&schema::sync_key(r.header().issued_at.as_millis(), &r.id().0)[..])
                .unwrap()
                .unwrap();
        assert!(SyncMeta::decode(&v).unwrap().facts().unwrap().0.proven);
        assert!(stored.seq > 3, "on the arrival log again");
    }
    assert!(s.record(&r3.id()).unwrap().unwrap().inclusion.is_none());
    assert!(
        !s.refresh_inclusions(&roster, &me, &known).unwrap().applied,
        "once per roster"
    );
    // Had this node learned of the revocation before the auditor's date, the proofs
    // would not hold: they are dropped.
    let mut earlier = known.clone();
    for at in earlier.values_mut() {
        *at = w1 - 1;
    }
    let rep = s.refresh_inclusions(&roster, &me, &earlier).unwrap();
    assert_eq!((rep.proven, rep.unprovable, rep.dropped), (0, 3, 2));
    assert!(s.record(&r1.id()).unwrap().unwrap().inclusion.is_none());
}

/// A store with records, audit events, a cursor and local-table rows, on `kind`.
fn filled(dir: &std::path::Path, kind: EngineKind) -> Store {
    let s = Store::open_with(dir, kind).unwrap();
    s.set_audit_settings(signing_settings());
    let k = SecretKey::generate().unwrap();
    for round in 0..3 {
        s.ingest(&fresh(&k, 50), Timestamp(10 + round)).unwrap();
    }
    s.set_cursor(
        &"BB-CUSTOMS".parse().unwrap(),
        Some(Cursor {
            epoch: [7; 16],
            seq: 42,
            backlog_complete: true,
        }),
    )
    .unwrap();
    s.table_put(
        tables::LocalTable::Cases,
        &[(b"case-1".to_vec(), b"{}".to_vec())],
        true,
    )
    .unwrap();
    s
}

#[test]
fn a_data_dir_opened_with_the_other_engine_is_a_typed_error_not_a_new_store() {
    for (written, asked) in [
        (EngineKind::Sled, EngineKind::Fjall),
        (EngineKind::Fjall, EngineKind::Sled),
    ] {
        let dir = tempfile::tempdir().unwrap();
        drop(filled(dir.path(), written));
        assert_eq!(recorded_engine(dir.path()).unwrap(), Some(written));
        match Store::open_with(dir.path(), asked) {
            Err(StoreError::WrongEngine { found, wanted, .. }) => {
                assert_eq!((found, wanted), (written, asked));
            }
            other => panic!("{written} dir opened as {asked}: {other:?}"),
        }
        // Nothing of the asked engine was created, and the store still opens as it was.
        assert!(!dir.path().join(asked.subdir()).exists());
        let s = Store::open(dir.path()).unwrap();
        assert_eq!((s.engine(), s.counts().unwrap().records), (written, 150));
    }
}

#[test]
fn a_data_dir_from_before_engines_is_read_as_sled() {
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path(), EngineKind::Sled));
    std::fs::remove_file(dir.path().join(ENGINE_FILE)).unwrap();
    assert_eq!(recorded_engine(dir.path()).unwrap(), Some(EngineKind::Sled));
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.counts().unwrap().records, 150);
    assert!(
        dir.path().join(ENGINE_FILE).exists(),
        "recorded from now on"
    );
}

#[test]
fn migrate_copies_every_tree_to_the_other_engine_and_refuses_a_running_store() {
    for (from_kind, to_kind) in [
        (EngineKind::Sled, EngineKind::Fjall),
        (EngineKind::Fjall, EngineKind::Sled),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        let src = filled(&from, from_kind);
        let (counts, epoch) = (src.counts().unwrap(), src.epoch());
        let log = src.log_after(0, usize::MAX).unwrap();
        // A node runs on it (the store holds the lock): refused, and nothing written.
        match migrate::migrate(&from, &to, to_kind) {
            Err(migrate::MigrateError::Store(StoreError::Locked { .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(!to.exists());
        drop(src);
        // A non-empty target is refused.
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("x"), b"x").unwrap();
        assert!(matches!(
            migrate::migrate(&from, &to, to_kind),
            Err(migrate::MigrateError::NotEmpty { .. })
        ));
        std::fs::remove_file(to.join("x")).unwrap();
        let sum = migrate::migrate(&from, &to, to_kind).unwrap();
        assert_eq!((sum.from_engine, sum.to_engine), (from_kind, to_kind));
        assert_eq!(sum.counts, counts);
        assert_eq!(sum.pairs.get(schema::trees::RECORDS), Some(&150));
        let s = Store::open(&to).unwrap();
        assert_eq!(s.engine(), to_kind);
        assert_eq!(s.counts().unwrap(), counts);
        assert_eq!(s.epoch(), epoch, "the same log: peers' cursors stay valid");
        assert_eq!(s.log_after(0, usize::MAX).unwrap(), log);
        assert_eq!(
            s.cursor(&"BB-CUSTOMS".parse().unwrap()).unwrap(),
            Some(Cursor {
                epoch: [7; 16],
                seq: 42,
                backlog_complete: true
            })
        );
        assert_eq!(
            s.table_get(tables::LocalTable::Cases, b"case-1").unwrap(),
            Some(b"{}".to_vec())
        );
        let size = s.audit_size().unwrap();
        assert_eq!(size, counts.audit_events);
        s.audit_root(size).unwrap();
        // The copy takes new writes.
        let k = SecretKey::generate().unwrap();
        s.ingest(&fresh(&k, 2), Timestamp(99)).unwrap();
        assert_eq!(s.counts().unwrap().records, 152);
    }
}

#[test]
fn a_backup_taken_on_one_engine_restores_onto_the_other() {
    for (from_kind, to_kind) in [
        (EngineKind::Sled, EngineKind::Fjall),
        (EngineKind::Fjall, EngineKind::Sled),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("b.wlbackup");
        let (counts, log) = {
            let s = filled(&tmp.path().join("src"), from_kind);
            s.backup_to_file(&file).unwrap();
            (s.counts().unwrap(), s.log_after(0, usize::MAX).unwrap())
        };
        let dst = tmp.path().join("dst");
        let sum = backup::restore_with(&file, &dst, false, Some(to_kind)).unwrap();
        assert_eq!(sum.records, 150);
        let s = Store::open(&dst).unwrap();
        assert_eq!(s.engine(), to_kind);
        let c = s.counts().unwrap();
        assert_eq!(
            (c.records, c.entries, c.head_seq),
            (counts.records, counts.entries, counts.head_seq)
        );
        assert_eq!(s.log_after(0, usize::MAX).unwrap(), log);
        assert_eq!(
            s.table_get(tables::LocalTable::Cases, b"case-1").unwrap(),
            Some(b"{}".to_vec())
        );
    }
}

#[test]
fn local_tables_range_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0u8..10).map(|i| (vec![i], vec![i, i])).collect();
    s.table_put(crate::tables::LocalTable::Cases, &pairs, true)
        .unwrap();
    let fwd = s
        .table_range(crate::tables::LocalTable::Cases, &[2], &[7], 3)
        .unwrap();
    assert_eq!(
        fwd.iter().map(|(k, _)| k[0]).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let rev = s
        .table_range_rev(crate::tables::LocalTable::Cases, &[2], &[7], 3)
        .unwrap();
    assert_eq!(
        rev.iter().map(|(k, _)| k[0]).collect::<Vec<_>>(),
        vec![6, 5, 4]
    );
    assert_eq!(rev[0].1, vec![6, 6]);
}

/// Group commit ([`Store::ingest_group`]): each batch of a group is its own atomic
/// transaction and one flush makes the group durable. A batch that fails partway fails
/// alone and writes nothing; the others are stored, with their own reports, and are
/// there after a reopen.
#[test]
fn a_group_commit_stores_each_batch_on_its_own_and_durably() {
    let dir = tempfile::tempdir().unwrap();
    let k = SecretKey::generate().unwrap();
    let recs: Vec<VerifiedRecord> = (0..6)
        .map(|i| {
            let id = EntryId::random().unwrap();
            rec(
                &k,
                "AA-EXPORT",
                id,
                1,
                Status::Active,
                &format!("Member {i}"),
            )
        })
        .collect();
    let group: Vec<IngestBatch> = recs
        .chunks(2)
        .map(|c| batch(c.iter().map(local).collect()))
        .collect();
    {
        let s = Store::open(dir.path()).unwrap();
        // The first batch of the group fails after its first record was written.
        s.faults().fail_mid_batch(1);
        let out = s.ingest_group(&group, Timestamp::now());
        assert_eq!(out.len(), 3);
        let e = out[0].as_ref().unwrap_err();
        assert!(e.to_string().contains("partway"), "{e}");
        for r in &out[1..] {
            assert_eq!(r.as_ref().unwrap().changed(), 2);
        }
        for r in &recs[0..2] {
            assert!(
                !s.has_record(&r.id()).unwrap(),
                "the failed batch wrote nothing"
            );
        }
        // Dropped without a clean close: only the group's flush made it durable.
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.counts().unwrap().records, 4);
    for r in &recs[2..] {
        assert!(s.has_record(&r.id()).unwrap());
    }
    assert!(!s.has_record(&recs[0].id()).unwrap());
}
