//! Property test: a simulated federation of 3-7 agencies with random sharing groups,
//! random topology, random `[[share]]`/`[[accept]]` rules and random records, routed
//! to a fixpoint with the real policy code (the choke point, redaction, decoding,
//! signature verification, the receive-side distribution check and accept rules).
//!
//! The result is compared with an oracle that computes, by plain graph search, which
//! agencies a record may reach and which of its fields may reach them:
//! - safety: no agency holds a record its distribution excludes, and no agency holds a
//!   field unless some path allowed that field all the way;
//! - liveness: every agency a fully permitted path reaches holds the record, and every
//!   field some path allows.
//!
//! Records carry random field scopes signed by their origin (issue 19 item 5), and a
//! third check is independent of the choke point: no agency but the origin holds a
//! disclosure that the record's own field scopes keep from it.
//!
//! Scope of the generator: `max_hops` is 0 (hop limits are covered by unit tests), and
//! accept rules use `from`, `origins` and `max_sensitivity` (the copy-dependent
//! `require_fields` and `withheld = "drop"` are covered by unit tests), so that the
//! oracle stays a graph search over per-edge decisions.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use wlnode_config::Config;
use wlnode_crypto::model::{AgencyCode, CountryCode, EntryDraft, EntryId, Status};
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::roster::{Authority, KeyWindow, Member, Role, Roster, RosterDoc};
use wlnode_crypto::{RecordId, SecretKey, Timestamp, VerifiedRecord};
use wlnode_policy::{Decision, DistRef, Policy, admits, check_receive};
use wlnode_types::{StoredRecord, SyncMeta};

const NAMES: [&str; 7] = [
    "AA-EXPORT",
    "BB-CUSTOMS",
    "CC-TRADE",
    "DD-EXPORT",
    "EE-CUSTOMS",
    "FF-TRADE",
    "GG-EXPORT",
];
const GROUPS: [&str; 3] = ["eu", "asean", "wassenaar"];
const SENS: [&str; 3] = ["public", "restricted", "confidential"];
const WITHHOLD: [&str; 6] = [
    "identifiers",
    "identifiers.passport",
    "birth_date",
    "remarks",
    "aliases",
    "addresses",
];

#[derive(Clone, Debug)]
struct Fed {
    n: usize,
    groups: Vec<BTreeSet<usize>>,
    edges: Vec<(usize, usize)>,
    share: Vec<Vec<String>>,
    accept: Vec<Vec<String>>,
    records: Vec<(usize, String, usize, usize, String)>, // origin, scope json, sensitivity, category, field scopes json
}

fn peer_sel(n: usize) -> impl Strategy<Value = String> {
    // Weighted towards permissive selectors, so that records actually flow and the
    // interesting interactions (relays, partial copies, merges) happen.
    prop_oneof![
        3 => Just("*".to_owned()),
        2 => (0..GROUPS.len()).prop_map(|g| format!("group:{}", GROUPS[g])),
        1 => (0..n).prop_map(|a| NAMES[a].to_owned()),
    ]
}

fn share_rule(n: usize) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(peer_sel(n), 1..3),
        prop::option::weighted(
            0.4,
            prop_oneof![
                Just("[\"self\"]".to_owned()),
                Just("[\"*\"]".to_owned()),
                (0..n).prop_map(|a| format!("[\"{}\"]", NAMES[a])),
            ],
        ),
        prop::bool::weighted(0.7),
        prop::option::weighted(0.2, prop_oneof![Just("[\"3A*\"]"), Just("[\"5*\"]")]),
        prop::option::weighted(0.2, 0..SENS.len()),
        prop::collection::btree_set(0..WITHHOLD.len(), 0..3),
    )
        .prop_map(|(to, origins, relay, cats, sens, withhold)| {
            let mut r = format!(
                "[[share]]\nto = [{}]\nrelay = {relay}\n",
                to.iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(o) = origins {
                r.push_str(&format!("origins = {o}\n"));
            }
            if let Some(c) = cats {
                r.push_str(&format!("categories = {c}\n"));
            }
            if let Some(s) = sens {
                r.push_str(&format!("max_sensitivity = {:?}\n", SENS[s]));
            }
            r.push_str(&format!(
                "withhold = [{}]\n",
                withhold
                    .iter()
                    .map(|w| format!("{:?}", WITHHOLD[*w]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            r
        })
}

fn accept_rule(n: usize) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(peer_sel(n), 1..3),
        prop::option::weighted(
            0.2,
            (0..n).prop_map(|a| format!("[\"{}\", \"self\"]", NAMES[a])),
        ),
        prop::option::weighted(0.2, 0..SENS.len()),
    )
        .prop_map(|(from, origins, sens)| {
            let mut r = format!(
                "[[accept]]\nfrom = [{}]\n",
                from.iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(o) = origins {
                r.push_str(&format!("origins = {o}\n"));
            }
            if let Some(s) = sens {
                r.push_str(&format!("max_sensitivity = {:?}\n", SENS[s]));
            }
            r
        })
}

/// Field scopes as entry JSON: mostly none, else one to three selectors, each to a
/// few agencies and groups (sometimes none: the field never leaves the origin).
fn field_scopes(n: usize) -> impl Strategy<Value = String> {
    let recipient = prop_oneof![
        2 => (0..n).prop_map(|a| NAMES[a].to_owned()),
        1 => (0..GROUPS.len()).prop_map(|g| format!("group:{}", GROUPS[g])),
    ];
    prop_oneof![
        2 => Just(String::new()),
        3 => prop::collection::btree_map(
            0..WITHHOLD.len(),
            prop::collection::btree_set(recipient, 0..3),
            1..4,
        )
        .prop_map(|m| {
            let body: Vec<String> = m
                .iter()
                .map(|(sel, to)| {
                    let to: Vec<String> = to.iter().map(|t| format!("{t:?}")).collect();
                    format!("{:?}:[{}]", WITHHOLD[*sel], to.join(","))
                })
                .collect();
            format!(",\"fields\":{{{}}}", body.join(","))
        }),
    ]
}

fn fed() -> impl Strategy<Value = Fed> {
    (3usize..=7).prop_flat_map(|n| {
        (
            Just(n),
            // Every group has at least one member, so rules may name it.
            prop::collection::vec(prop::collection::btree_set(0..GROUPS.len(), 1..3), n),
            prop::collection::vec(any::<prop::sample::Index>(), n - 1),
            prop::collection::vec((0..n, 0..n), 0..n),
            prop::collection::vec(prop::collection::vec(share_rule(n), 0..4), n),
            prop::collection::vec(prop::collection::vec(accept_rule(n), 1..3), n),
            prop::collection::vec(
                (
                    0..n,
                    prop_oneof![
                        4 => Just("{\"scope\":\"federation\"".to_owned()),
                        2 => Just("{\"scope\":\"neighbors\"".to_owned()),
                        1 => Just("{\"scope\":\"origin\"".to_owned()),
                        3 => (0..GROUPS.len()).prop_map(|g| format!("{{\"scope\":\"groups\",\"groups\":[{:?}]", GROUPS[g])),
                    ],
                    0..SENS.len(),
                    0..2usize,
                    field_scopes(n),
                ),
                1..4,
            ),
        )
    })
    .prop_map(|(n, mut groups, tree, extra, share, accept, records)| {
        for g in 0..GROUPS.len() {
            if !groups.iter().any(|s| s.contains(&g)) {
                groups[g % n].insert(g);
            }
        }
        // A random spanning tree plus extra links.
        let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
        for (i, idx) in tree.iter().enumerate() {
            let child = i + 1;
            let parent = idx.index(child);
            edges.insert((parent.min(child), parent.max(child)));
        }
        for (a, b) in extra {
            if a != b {
                edges.insert((a.min(b), a.max(b)));
            }
        }
        Fed {
            n,
            groups,
            edges: edges.into_iter().collect(),
            share,
            accept,
            records,
        }
    })
}

struct World {
    roster: Arc<Roster>,
    policies: Vec<Policy>,
    keys: Vec<SecretKey>,
}

fn world(f: &Fed) -> World {
    let keys: Vec<SecretKey> = (0..f.n)
        .map(|i| SecretKey::from_seed(&[i as u8 + 1; 32]))
        .collect();
    let authority = SecretKey::from_seed(&[99; 32]);
    let doc = RosterDoc {
        federation: "sim".into(),
        version: 1,
        issued_at: Timestamp(1),
        sensitivities: None,
        authorities: vec![Authority {
            key: authority.public_key(),
            name: "a".into(),
        }],
        members: (0..f.n)
            .map(|i| Member {
                agency: NAMES[i].parse().unwrap(),
                name: NAMES[i].into(),
                country: CountryCode::new(&NAMES[i][..2]).unwrap(),
                role: Role::Member,
                groups: f.groups[i]
                    .iter()
                    .map(|g| GROUPS[*g].parse().unwrap())
                    .collect(),
                node_ids: vec![
                    SecretKey::from_seed(&[i as u8 + 50; 32])
                        .public_key()
                        .peer_id(),
                ],
                keys: vec![KeyWindow {
                    key: keys[i].public_key(),
                    valid_from: Timestamp(0),
                    valid_until: None,
                }],
                revoked: vec![],
                encryption_keys: vec![],
            })
            .collect(),
        federation_settings: None,
    };
    let roster = Arc::new(Roster::parse(toml::to_string(&doc).unwrap().as_bytes()).unwrap());
    let policies = (0..f.n)
        .map(|i| {
            let text = format!(
                "agency = {:?}\nroster = \"r\"\nagency_key = \"a\"\nnode_key = \"n\"\n[api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"t\"\n{}{}",
                NAMES[i],
                f.share[i].concat(),
                f.accept[i].concat()
            );
            let cfg = Config::parse(Path::new("/sim/node.toml"), &text).unwrap();
            match Policy::from_config(&cfg, roster.clone()) {
                Ok((p, _)) => p,
                Err(e) => panic!("generated policy invalid: {e:?}\n{text}"),
            }
        })
        .collect();
    World {
        roster,
        policies,
        keys,
    }
}

fn records(f: &Fed, w: &World) -> Vec<(usize, VerifiedRecord)> {
    f.records
        .iter()
        .enumerate()
        .map(|(k, (origin, scope, sens, cat, scopes))| {
            let draft: EntryDraft = serde_json::from_str(&format!(
                r#"{{"subject":{{"kind":"person","name":"Name {k}","aliases":["Alias {k}"],"addresses":["Street {k}"],
                    "identifiers":[{{"type":"passport","value":"P{k}"}},{{"type":"national_id","value":"N{k}"}}],
                    "birth_date":"1970"}},"reason":"denial","categories":[{:?}],"remarks":"r{k}",
                    "distribution":{scope}{scopes},"sensitivity":{:?}}}}}"#,
                ["3A001", "5A002"][*cat],
                SENS[*sens]
            ))
            .unwrap();
            let rec = build_record(
                RecordMeta {
                    entry_id: EntryId::random().unwrap(),
                    origin: NAMES[*origin].parse().unwrap(),
                    version: 1,
                    issued_at: Timestamp(10 + k as u64),
                    status: Status::Active,
                    withdrawal_reason: None,
                },
                &draft,
                &w.keys[*origin],
            )
            .unwrap();
            (*origin, rec)
        })
        .collect()
}

fn stored(rec: &VerifiedRecord, hops: u32) -> StoredRecord {
    StoredRecord {
        record: rec.clone(),
        hops,
        received_from: None,
        received_at: Timestamp(1),
        seq: 1,
        inclusion: None,
    }
}

fn agency(i: usize) -> AgencyCode {
    NAMES[i].parse().unwrap()
}

/// Message passing to a fixpoint with the real code paths.
fn simulate(
    f: &Fed,
    w: &World,
    recs: &[(usize, VerifiedRecord)],
) -> Vec<HashMap<RecordId, (VerifiedRecord, u32)>> {
    let mut held: Vec<HashMap<RecordId, (VerifiedRecord, u32)>> = vec![HashMap::new(); f.n];
    for (o, r) in recs {
        held[*o].insert(r.id(), (r.clone(), 0));
    }
    let directed: Vec<(usize, usize)> = f
        .edges
        .iter()
        .flat_map(|&(a, b)| [(a, b), (b, a)])
        .collect();
    loop {
        let mut changed = false;
        for &(u, v) in &directed {
            let outgoing: Vec<(VerifiedRecord, u32)> = held[u].values().cloned().collect();
            for (rec, hops) in outgoing {
                let Ok(prep) = w.policies[u].prepare(&stored(&rec, hops), &agency(v)) else {
                    continue;
                };
                let copy = Record::decode(prep.bytes())
                    .unwrap()
                    .verify()
                    .expect("a prepared copy verifies");
                if check_receive(
                    &w.roster,
                    copy.header(),
                    &agency(v),
                    &agency(u),
                    prep.hops(),
                )
                .is_err()
                {
                    continue;
                }
                if w.policies[v].accept(&copy, &agency(u)).is_err() {
                    continue;
                }
                match held[v].get_mut(&copy.id()) {
                    None => {
                        held[v].insert(copy.id(), (copy, prep.hops()));
                        changed = true;
                    }
                    Some((mine, h)) => {
                        if mine.merge(&copy).unwrap() > 0 {
                            changed = true;
                        }
                        if prep.hops() < *h {
                            *h = prep.hops();
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            return held;
        }
    }
}

/// Per-edge permission for a record (and its withheld selectors), from the real code.
fn edge(
    w: &World,
    rec: &VerifiedRecord,
    origin: usize,
    u: usize,
    v: usize,
) -> Option<Vec<wlnode_crypto::record::FieldSelector>> {
    let hops = u32::from(u != origin);
    match w.policies[u].decide(&stored(rec, hops), &agency(v)) {
        Decision::Send { hops, withhold } => {
            check_receive(&w.roster, rec.header(), &agency(v), &agency(u), hops).ok()?;
            w.policies[v].accept(rec, &agency(u)).ok()?;
            Some(withhold)
        }
        Decision::Deny(_) => None,
    }
}

/// Who may hold the record, and who may hold each field: breadth-first search.
fn oracle(
    f: &Fed,
    w: &World,
    origin: usize,
    rec: &VerifiedRecord,
) -> (BTreeSet<usize>, Vec<BTreeSet<usize>>) {
    let h = rec.header();
    let reach = |field: Option<usize>| -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([origin]);
        let mut q = VecDeque::from([origin]);
        while let Some(u) = q.pop_front() {
            for &(a, b) in &f.edges {
                let v = if a == u {
                    b
                } else if b == u {
                    a
                } else {
                    continue;
                };
                if seen.contains(&v) {
                    continue;
                }
                let Some(withhold) = edge(w, rec, origin, u, v) else {
                    continue;
                };
                if let Some(i) = field {
                    let tag = h.fields[i].tag;
                    let value = &rec.disclosures()[i].value;
                    if withhold.iter().any(|s| s.matches(tag, value)) {
                        continue;
                    }
                }
                seen.insert(v);
                q.push_back(v);
            }
        }
        seen
    };
    let nodes = reach(None);
    let fields = (0..h.fields.len()).map(|i| reach(Some(i))).collect();
    (nodes, fields)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn nothing_leaks_and_everything_permitted_arrives(f in fed()) {
        let w = world(&f);
        let recs = records(&f, &w);
        let held = simulate(&f, &w, &recs);
        for (origin, rec) in &recs {
            let (may, fields) = oracle(&f, &w, *origin, rec);
            let h = rec.header();
            let d = DistRef { origin: &h.origin, scope: h.distribution.scope, groups: &h.distribution.groups };
            for v in 0..f.n {
                let copy = held[v].get(&rec.id());
                // Safety: the distribution admits every holder.
                if copy.is_some() {
                    prop_assert!(admits(&w.roster, d, &agency(v)), "{} holds a record its distribution excludes", NAMES[v]);
                }
                // Safety and liveness for the record as a whole.
                prop_assert_eq!(copy.is_some(), may.contains(&v), "holding of {} at {}", rec.id(), NAMES[v]);
                // ... and field by field.
                if let Some((c, _)) = copy {
                    for (i, reach) in fields.iter().enumerate() {
                        let has = c.disclosure(i as u32).is_some();
                        prop_assert_eq!(has, reach.contains(&v), "field {} ({}) at {}", i, h.fields[i].tag, NAMES[v]);
                    }
                    // Scoped fields, checked from the signed header alone.
                    if v != *origin {
                        let member = w.roster.member(&agency(v)).unwrap();
                        for d in c.disclosures() {
                            let tag = h.fields[d.index as usize].tag;
                            prop_assert!(
                                h.distribution.fields.admits_field(tag, &d.value, &agency(v), |g| member.in_group(g)),
                                "{} holds {} of {} outside its field scopes", NAMES[v], tag, rec.id()
                            );
                        }
                    }
                }
            }
            // Reconciliation sets (issue 19 item 6): a node counts a record in the set
            // it shares with a peer exactly when the peer is its origin or the choke
            // point would send it there (which the checks above show leaks nothing),
            // and never outside the distribution.
            for u in 0..f.n {
                let Some((c, hops)) = held[u].get(&rec.id()) else { continue };
                for v in (0..f.n).filter(|&v| v != u) {
                    // Through the sync index's encoding, as the node reads it.
                    let meta = SyncMeta::decode(&SyncMeta::held(c.header(), *hops).encode()).unwrap();
                    let (facts, held_hops) = meta.facts().unwrap();
                    prop_assert_eq!(held_hops, *hops);
                    let in_set = w.policies[u].in_reconcile_set(&c.id(), &facts, held_hops, &agency(v));
                    if in_set {
                        prop_assert!(
                            v == *origin || admits(&w.roster, d, &agency(v)),
                            "{} lists {} in its set with {}, outside its distribution", NAMES[u], rec.id(), NAMES[v]
                        );
                    }
                    let sends = matches!(w.policies[u].decide(&stored(c, *hops), &agency(v)), Decision::Send { .. });
                    prop_assert_eq!(in_set, sends || v == *origin, "set and choke point disagree at {} for {}", NAMES[u], NAMES[v]);
                }
            }
        }
    }
}
