//! The hand-written decoders (`crypto/src/canonical.rs`) against the prost-based
//! ones they replaced, kept as oracles: `RecordHeader::decode_canonical_reference`
//! and `Record::decode_bytes_reference`. For arbitrary headers, arbitrary bytes and
//! mutated canonical encodings, both must accept and refuse the same byte strings,
//! and give equal values when they accept.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use proptest::prelude::*;
use prost::Message;
use wlnode_crypto::SecretKey;
use wlnode_crypto::record::{Record, RecordHeader};
use wlnode_proto::Bytes;
use wlnode_proto::v1 as pb;

fn key() -> SecretKey {
    SecretKey::from_seed(&[9; 32])
}

/// Both header decoders agree on `bytes`; returns whether they accepted.
fn same_header(bytes: &[u8]) -> bool {
    let new = RecordHeader::decode_canonical(bytes);
    let old = RecordHeader::decode_canonical_reference(bytes);
    match (&new, &old) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "decoders disagree on {}: new {new:?}, old {old:?}",
            hex::encode(bytes)
        ),
    }
    new.is_ok()
}

/// Both record decoders give the same result, errors included.
fn same_record(bytes: &[u8]) -> bool {
    let new = Record::decode_bytes(Bytes::copy_from_slice(bytes));
    let old = Record::decode_bytes_reference(Bytes::copy_from_slice(bytes));
    assert_eq!(
        new,
        old,
        "record decoders disagree on {}",
        hex::encode(bytes)
    );
    new.is_ok()
}

/// Top-level protobuf fields of a well-formed message: (start, end) of each.
fn fields(bytes: &[u8]) -> Vec<(usize, usize)> {
    fn varint(b: &[u8], i: &mut usize) -> u64 {
        let mut v = 0u64;
        let mut s = 0;
        loop {
            let x = b[*i];
            *i += 1;
            v |= u64::from(x & 0x7f) << s;
            s += 7;
            if x < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let k = varint(bytes, &mut i);
        match k & 7 {
            0 => {
                varint(bytes, &mut i);
            }
            2 => {
                let l = varint(bytes, &mut i) as usize;
                i += l;
            }
            _ => unreachable!(),
        }
        out.push((start, i));
    }
    out
}

/// Positions of single-byte varints that can be re-encoded in two bytes: every key
/// and every value/length byte below 0x80 that starts a varint.
fn varint_starts(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    for (s, e) in fields(bytes) {
        out.push(s);
        if s + 1 < e && bytes[s + 1] < 0x80 {
            out.push(s + 1);
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, u8),
    Duplicate(usize),
    Swap(usize, usize),
    DropField(usize),
    LongVarint(usize),
    Trailing(Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>;
    prop_oneof![
        (idx(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (idx(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (idx(), prop::collection::vec(any::<u8>(), 1..4)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (idx(), 1u8..4).prop_map(|(i, n)| Mutation::Delete(i, n)),
        idx().prop_map(Mutation::Duplicate),
        (idx(), idx()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        idx().prop_map(Mutation::DropField),
        idx().prop_map(Mutation::LongVarint),
        prop::collection::vec(any::<u8>(), 1..4).prop_map(Mutation::Trailing),
        idx().prop_map(Mutation::Truncate),
    ]
}

/// Applies `m` to a well-formed protobuf message (`fields` must parse it).
fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.is_empty() {
        return b;
    }
    let f = fields(bytes);
    match m {
        Mutation::FlipBit(i, bit) => {
            let n = b.len();
            b[i % n] ^= 1 << bit;
        }
        Mutation::SetByte(i, v) => {
            let i = i % b.len();
            b[i] = *v;
        }
        Mutation::Insert(i, v) => {
            let i = i % (b.len() + 1);
            b.splice(i..i, v.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i % b.len();
            let e = (i + usize::from(*n)).min(b.len());
            b.drain(i..e);
        }
        Mutation::Duplicate(i) => {
            let (s, e) = f[i % f.len()];
            let copy = b[s..e].to_vec();
            b.splice(e..e, copy);
        }
        Mutation::Swap(x, y) => {
            let (a, c) = (x % f.len(), y % f.len());
            let (a, c) = (a.min(c), a.max(c));
            if a != c {
                let (s1, e1) = f[a];
                let (s2, e2) = f[c];
                let mut out = bytes[..s1].to_vec();
                out.extend_from_slice(&bytes[s2..e2]);
                out.extend_from_slice(&bytes[e1..s2]);
                out.extend_from_slice(&bytes[s1..e1]);
                out.extend_from_slice(&bytes[e2..]);
                b = out;
            }
        }
        Mutation::DropField(i) => {
            let (s, e) = f[i % f.len()];
            b.drain(s..e);
        }
        Mutation::LongVarint(i) => {
            let starts = varint_starts(bytes);
            let p = starts[i % starts.len()];
            b[p] |= 0x80;
            b.insert(p + 1, 0);
        }
        Mutation::Trailing(v) => b.extend_from_slice(v),
        Mutation::Truncate(i) => {
            let n = b.len();
            b.truncate(i % n);
        }
    }
    b
}

/// Mostly `good`, sometimes one of `bad`.
fn mostly(
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        12 => prop::sample::select(good.to_vec()),
        1 => prop::sample::select(bad.to_vec()),
    ]
    .prop_map(String::from)
}

/// Arbitrary prost headers: values from small pools, so that about half are valid
/// and the rest are invalid in one or two ways (zero, wrong length, bad syntax,
/// unsorted or duplicate set members, unknown enum values, inconsistent scope).
fn pb_header() -> impl Strategy<Value = pb::RecordHeader> {
    let digest = prop_oneof![
        30 => Just(vec![7u8; 32]),
        1 => prop::collection::vec(any::<u8>(), 0..34),
    ];
    let commitment = (prop_oneof![30 => 2i32..=4, 1 => -1i32..=12], digest).prop_map(|(tag, d)| {
        pb::FieldCommitment {
            tag,
            digest: Bytes::from(d),
        }
    });
    let groups =
        prop::collection::btree_set(mostly(&["eu", "nato", "wassenaar"], &["EU", ""]), 1..3)
            .prop_map(|g| g.into_iter().collect::<Vec<_>>());
    // Field scopes: mostly none, else sorted selectors with sorted recipients, and
    // now and then unsorted, duplicated or malformed ones.
    let recipients = prop_oneof![
        12 => prop::collection::btree_set(
            mostly(&["AA-EXPORT", "BB-CUSTOMS", "group:eu", "group:nato"], &["", "group:", "bb"]),
            0..3,
        )
        .prop_map(|r| r.into_iter().collect::<Vec<_>>()),
        1 => prop::collection::vec(mostly(&["AA-EXPORT", "group:eu"], &["x"]), 0..3),
    ];
    let scope_list = prop_oneof![
        12 => prop::collection::btree_map(
            mostly(
                &["birth_date", "identifiers", "identifiers.passport", "remarks"],
                &["", "identifier", "identifiers.", "nope"],
            ),
            recipients.clone(),
            1..3,
        )
        .prop_map(|m| m.into_iter().collect::<Vec<_>>()),
        1 => prop::collection::vec(
            (mostly(&["birth_date", "remarks"], &["x"]), recipients),
            1..3,
        ),
    ];
    let scopes = prop_oneof![6 => Just(Vec::new()), 2 => scope_list].prop_map(|v| {
        v.into_iter()
            .map(|(selector, to)| pb::FieldScope { selector, to })
            .collect::<Vec<_>>()
    });
    let distribution = (
        prop_oneof![12 => 1i32..=4, 1 => -1i32..=6],
        groups,
        prop_oneof![12 => Just(false), 1 => Just(true)],
        prop_oneof![6 => Just(0u32), 1 => any::<u32>()],
        mostly(&["restricted", "public"], &["", "Secret"]),
        scopes,
    )
        .prop_map(
            |(scope, groups, odd, max_hops, sensitivity, fields)| pb::Distribution {
                scope,
                // Groups only with scope "groups", unless `odd`.
                groups: if (scope == 3) != odd {
                    groups
                } else {
                    Vec::new()
                },
                max_hops,
                sensitivity,
                fields,
            },
        );
    let categories = prop_oneof![
        12 => prop::collection::btree_set(mostly(&["3A001", "5A002", "ML1"], &["", "a1"]), 0..3)
            .prop_map(|c| c.into_iter().collect::<Vec<_>>()),
        1 => prop::collection::vec(mostly(&["3A001", "5A002", "ML1"], &["", "a1"]), 0..3),
    ];
    (
        (
            prop_oneof![20 => Just(1u32), 1 => 0u32..3],
            prop_oneof![20 => Just(vec![1u8; 16]), 1 => prop::collection::vec(any::<u8>(), 0..18)],
            mostly(&["AA-EXPORT", "DE-BAFA"], &["", "aa", "A--B"]),
            prop_oneof![12 => 1u64..5, 1 => Just(0u64), 1 => any::<u64>()],
            prop_oneof![12 => Just(1_790_000_000_000u64), 1 => Just(0u64), 1 => any::<u64>()],
            prop_oneof![12 => 1i32..=2, 1 => -2i32..=4],
            prop::option::weighted(0.97, distribution),
        ),
        (
            mostly(
                &["", "", "", "2027-01-31"],
                &["2027-02-30", "27-01-31", "2027-1-31", "２０２７-01-31"],
            ),
            categories,
            prop_oneof![12 => 1i32..=5, 1 => -1i32..=7],
            prop_oneof![12 => 1i32..=3, 1 => -1i32..=5],
            mostly(&["", "", "IR"], &["ir", "IRN"]),
            prop::collection::vec(commitment, 0..5),
            prop_oneof![20 => Just(true), 1 => Just(false)],
            prop_oneof![12 => Just(true), 1 => Just(false)],
            prop_oneof![6 => Just(0i32), 3 => Just(1i32), 1 => -1i32..=3],
        ),
    )
        .prop_map(
            |(
                (format, entry_id, origin, version, issued_at, status, distribution),
                (
                    review_by,
                    categories,
                    reason,
                    subject_kind,
                    subject_country,
                    mut fields,
                    good_key,
                    named,
                    on_hit,
                ),
            )| {
                // Validation wants exactly one name field, first; give most headers one.
                if named {
                    fields.insert(
                        0,
                        pb::FieldCommitment {
                            tag: 1,
                            digest: Bytes::from(vec![1u8; 32]),
                        },
                    );
                }
                let signer_key = if good_key {
                    Bytes::copy_from_slice(key().public_key().as_bytes())
                } else {
                    Bytes::from(vec![0u8; 32])
                };
                // Format 2 goes with field scopes; keep most headers consistent.
                let scoped = distribution
                    .as_ref()
                    .is_some_and(|d: &pb::Distribution| !d.fields.is_empty());
                let format = if format == 1 && scoped { 2 } else { format };
                pb::RecordHeader {
                    format,
                    entry_id: Bytes::from(entry_id),
                    origin,
                    version,
                    issued_at,
                    status,
                    distribution,
                    review_by,
                    categories,
                    reason,
                    subject_kind,
                    subject_country,
                    fields,
                    signer_key,
                    on_hit,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn headers_of_signed_records_agree(draft in common::draft()) {
        let r = common::signed(&draft, &key());
        prop_assert!(same_header(r.header_bytes()));
        prop_assert!(same_record(&r.encode()));
    }

    #[test]
    fn arbitrary_prost_headers_agree(h in pb_header()) {
        let bytes = h.encode_to_vec();
        same_header(&bytes);
    }

    #[test]
    fn mutated_prost_headers_agree(h in pb_header(), ms in prop::collection::vec(mutation(), 1..3)) {
        let mut bytes = h.encode_to_vec();
        for m in &ms {
            // Only the first mutation is guaranteed to see a parsable message.
            if fields_ok(&bytes) {
                bytes = mutate(&bytes, m);
            }
        }
        same_header(&bytes);
    }

    #[test]
    fn mutated_canonical_headers_agree(draft in common::draft(), m in mutation()) {
        let r = common::signed(&draft, &key());
        let bytes = mutate(r.header_bytes(), &m);
        same_header(&bytes);
    }

    #[test]
    fn arbitrary_bytes_agree(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        same_header(&bytes);
        same_record(&bytes);
    }

    #[test]
    fn mutated_records_agree(draft in common::draft(), ms in prop::collection::vec(mutation(), 1..3)) {
        let r = common::signed(&draft, &key());
        let mut bytes = r.encode();
        for m in &ms {
            if fields_ok(&bytes) {
                bytes = mutate(&bytes, m);
            }
        }
        same_record(&bytes);
    }

    #[test]
    fn headers_with_mutated_submessages_agree(h in pb_header(), which in any::<usize>(), m in mutation()) {
        // Mutate inside `distribution` or one field commitment and re-wrap it with a
        // correct length, so the mutation reaches the nested decoders.
        let bytes = h.encode_to_vec();
        let nested: Vec<(usize, usize)> = fields(&bytes)
            .into_iter()
            .filter(|(s, _)| bytes[*s] == 0x3a || bytes[*s] == 0x6a)
            .collect();
        if !nested.is_empty() {
            let (s, e) = nested[which % nested.len()];
            same_header(&mutate_inside(&bytes, s, e, &m));
        }
    }

    #[test]
    fn records_with_mutated_disclosures_agree(draft in common::draft(), which in any::<usize>(), m in mutation()) {
        // Mutate inside one disclosure (or the signed header) and re-wrap it with a
        // correct length, so the mutation reaches the inner messages.
        let r = common::signed(&draft, &key());
        let bytes = r.encode();
        let f = fields(&bytes);
        let (s, e) = f[which % f.len()];
        same_record(&mutate_inside(&bytes, s, e, &m));
    }
}

/// Applies `m` inside the length-delimited field at `s..e` (one-byte key) and writes
/// the field back with its new length.
fn mutate_inside(bytes: &[u8], s: usize, e: usize, m: &Mutation) -> Vec<u8> {
    let mut i = s + 1;
    while bytes[i] >= 0x80 {
        i += 1;
    }
    let inner = &bytes[i + 1..e];
    let inner = if fields_ok(inner) {
        mutate(inner, m)
    } else {
        inner.to_vec()
    };
    let mut out = bytes[..s].to_vec();
    out.push(bytes[s]);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(&inner);
    out.extend_from_slice(&bytes[e..]);
    out
}

/// Whether `fields` can split `bytes` (varint and length-delimited fields only).
fn fields_ok(bytes: &[u8]) -> bool {
    let mut i = 0;
    let read = |i: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for s in 0..10 {
            let x = *bytes.get(*i)?;
            *i += 1;
            v |= u64::from(x & 0x7f) << (7 * s);
            if x < 0x80 {
                return Some(v);
            }
        }
        None
    };
    while i < bytes.len() {
        let Some(k) = read(&mut i) else { return false };
        match k & 7 {
            0 => {
                if read(&mut i).is_none() {
                    return false;
                }
            }
            2 => {
                let Some(l) = read(&mut i) else { return false };
                let Some(e) = i.checked_add(l as usize) else {
                    return false;
                };
                if e > bytes.len() {
                    return false;
                }
                i = e;
            }
            _ => return false,
        }
    }
    true
}

#[test]
fn fixed_non_canonical_forms_agree() {
    let r = common::signed(&common::twelve_field_draft(), &key());
    let h = r.header_bytes();
    assert!(same_header(h));
    // Every single-byte varint re-encoded in two bytes and trailing bytes are refused;
    // every field duplicated, dropped, or swapped with its neighbour is decided alike
    // (dropping an optional field, or duplicating an alias commitment, stays valid).
    let f = fields(h);
    for (k, _) in varint_starts(h).iter().enumerate() {
        assert!(!same_header(&mutate(h, &Mutation::LongVarint(k))));
    }
    for k in 0..f.len() {
        let i = k;
        same_header(&mutate(h, &Mutation::Duplicate(i)));
        same_header(&mutate(h, &Mutation::DropField(i)));
        if k + 1 < f.len() {
            let j = k + 1;
            same_header(&mutate(h, &Mutation::Swap(i, j)));
        }
    }
    // (`0x78 0x01` is now `on_hit = notify`, a valid header: field 16 and an unknown
    // `on_hit` value stand for "unknown trailing field".)
    for t in [
        [0u8].as_slice(),
        &[0x80, 0x01, 0x01],
        &[0x78, 0x02],
        &[0x08, 0x01],
    ] {
        assert!(!same_header(&mutate(h, &Mutation::Trailing(t.to_vec()))));
    }
    // Every bit flip of the header.
    for i in 0..h.len() {
        for bit in 0..8 {
            let mut b = h.to_vec();
            b[i] ^= 1 << bit;
            same_header(&b);
        }
    }
    // And of the whole record.
    let bytes = r.encode();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            same_record(&b);
        }
    }
}

#[test]
fn generated_headers_exercise_both_outcomes() {
    // The arbitrary-header strategy must produce valid headers as well as invalid
    // ones, or the agreement tests above would prove little.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::default());
    let (mut ok, mut err) = (0, 0);
    for _ in 0..2000 {
        let h = pb_header().new_tree(&mut runner).unwrap().current();
        if same_header(&h.encode_to_vec()) {
            ok += 1;
        } else {
            err += 1;
        }
    }
    eprintln!("{ok} accepted, {err} refused");
    assert!(ok >= 300 && err >= 300, "{ok} accepted, {err} refused");
}

#[test]
fn explicit_defaults_are_refused() {
    // A header without review_by and subject_country, then each written explicitly
    // as "" at its proper position.
    let mut draft = common::twelve_field_draft();
    draft.subject.country = None;
    let r = common::signed(&draft, &key());
    let h = r.header_bytes();
    assert!(same_header(h));
    for (field, extra) in [(8u8, [0x42u8, 0x00]), (12, [0x62, 0x00])] {
        let at = fields(h)
            .into_iter()
            .find(|(s, _)| h[*s] >> 3 > field)
            .map(|(s, _)| s)
            .unwrap();
        let mut b = h.to_vec();
        b.splice(at..at, extra);
        assert!(!same_header(&b), "explicit empty field {field} accepted");
    }
}
