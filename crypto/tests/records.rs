//! Property tests for canonical records, signatures and selective disclosure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use proptest::prelude::*;
use wlnode_crypto::model::FieldTag;
use wlnode_crypto::record::{
    Disclosure, FieldSelector, Record, RecordError, RecordHeader, build_record, canonical_text,
    verify_batch,
};
use wlnode_crypto::{SecretKey, Signature};

fn key() -> SecretKey {
    SecretKey::from_seed(&[7u8; 32])
}

fn rebuilt(
    header: Vec<u8>,
    sig: Signature,
    disclosures: Vec<Disclosure>,
) -> Result<(), RecordError> {
    let rec = Record::from_parts(header, sig, disclosures)?;
    rec.verify().map(|_| ()).map_err(|(_, e)| e)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn encoding_round_trips(d in common::draft()) {
        let r = common::signed(&d, &key());
        let bytes = r.encode();
        let back = Record::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &*r);
        prop_assert_eq!(back.encode(), bytes);
        let header = RecordHeader::decode_canonical(r.header_bytes()).unwrap();
        prop_assert_eq!(&header, r.header());
        prop_assert_eq!(header.encode(), r.header_bytes().to_vec());
        prop_assert!(back.verify().is_ok());
    }

    #[test]
    fn content_survives_the_trip(d in common::draft()) {
        let r = common::signed(&d, &key());
        let c = Record::decode(&r.encode()).unwrap().content();
        prop_assert_eq!(c.name, Some(canonical_text(&d.subject.name)));
        prop_assert_eq!(c.aliases.len(), d.subject.aliases.len());
        prop_assert_eq!(c.identifiers.len(), d.subject.identifiers.len());
        prop_assert!(c.withheld.is_empty());
    }

    #[test]
    fn any_bit_flip_in_header_fails(d in common::draft(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let r = common::signed(&d, &key());
        let mut h = r.header_bytes().to_vec();
        let i = pos.index(h.len());
        h[i] ^= 1 << bit;
        let ds: Vec<_> = r.disclosures().to_vec();
        prop_assert!(rebuilt(h, *r.signature(), ds).is_err());
    }

    #[test]
    fn any_bit_flip_in_signature_fails(d in common::draft(), pos in 0usize..64, bit in 0u8..8) {
        let r = common::signed(&d, &key());
        let mut sig = *r.signature();
        sig.0[pos] ^= 1 << bit;
        let ds: Vec<_> = r.disclosures().to_vec();
        prop_assert!(rebuilt(r.header_bytes().to_vec(), sig, ds.clone()).is_err());
        // The batch path must agree.
        let rec = Record::from_parts(r.header_bytes().to_vec(), sig, ds).unwrap();
        let res = verify_batch(vec![rec.clone(), rec.clone(), rec.clone(), rec.clone(), rec]);
        prop_assert!(res.iter().all(|x| x.is_err()));
    }

    #[test]
    fn any_bit_flip_in_a_disclosure_fails(
        d in common::draft(),
        which in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
        in_salt in any::<bool>(),
    ) {
        let r = common::signed(&d, &key());
        let mut ds: Vec<Disclosure> = r.disclosures().to_vec();
        let k = which.index(ds.len());
        if in_salt {
            let i = pos.index(16);
            ds[k].salt[i] ^= 1 << bit;
        } else {
            let mut bytes = ds[k].value.as_bytes().to_vec();
            let i = pos.index(bytes.len());
            bytes[i] ^= 1 << bit;
            match String::from_utf8(bytes.clone()) {
                Ok(v) => ds[k].value = v.into(),
                // Not UTF-8 any more, so no `Disclosure` can hold it: put the flipped
                // bytes on the wire instead, where decoding must refuse them.
                Err(_) => {
                    let mut wire = wlnode_proto::v1::Record::from(&*r);
                    wire.disclosures[k].value = bytes.into();
                    let encoded = prost::Message::encode_to_vec(&wire);
                    prop_assert!(Record::decode(&encoded).is_err());
                    return Ok(());
                }
            }
        }
        prop_assert!(rebuilt(r.header_bytes().to_vec(), *r.signature(), ds).is_err());
    }

    #[test]
    fn redacted_copy_verifies_and_keeps_id(d in common::draft(), mask in any::<u16>()) {
        let r = common::signed(&d, &key());
        let selectors: Vec<FieldSelector> = FieldTag::ALL
            .iter()
            .enumerate()
            .filter(|(i, t)| mask & (1 << i) != 0 && **t != FieldTag::Name)
            .map(|(_, t)| FieldSelector::Tag(*t))
            .collect();
        let (copy, removed) = r.redact(&selectors);
        prop_assert_eq!(copy.id(), r.id());
        let wire = Record::decode(&copy.encode()).unwrap();
        prop_assert_eq!(wire.id(), r.id());
        prop_assert_eq!(wire.disclosures().len() + removed.len(), r.disclosures().len());
        let verified = wire.verify().unwrap();
        let c = verified.content();
        for sel in &selectors {
            if let FieldSelector::Tag(t) = sel {
                let present = match t {
                    FieldTag::Alias => !c.aliases.is_empty(),
                    FieldTag::Address => !c.addresses.is_empty(),
                    FieldTag::Identifier => !c.identifiers.is_empty(),
                    FieldTag::BirthDate => c.birth_date.is_some(),
                    FieldTag::Remarks => c.remarks.is_some(),
                    FieldTag::Items => c.items.is_some(),
                    _ => false,
                };
                prop_assert!(!present, "{} still present", t);
            }
        }
    }

    #[test]
    fn merging_partial_copies_gives_the_union(d in common::draft(), mask_a in any::<u64>(), mask_b in any::<u64>()) {
        let r = common::signed(&d, &key());
        let keep = |mask: u64| -> Record {
            let ds: Vec<Disclosure> = r
                .disclosures()
                .iter()
                .filter(|d| mask & (1 << (d.index % 64)) != 0)
                .cloned()
                .collect();
            Record::from_parts(r.header_bytes().to_vec(), *r.signature(), ds).unwrap()
        };
        let a = keep(mask_a);
        let b = keep(mask_b);
        let mut merged = a.clone().verify().unwrap();
        merged.merge(&b).unwrap();
        let expect: std::collections::BTreeSet<u32> =
            a.disclosures().iter().map(|d| &d.index).chain(b.disclosures().iter().map(|d| &d.index)).copied().collect();
        let got: std::collections::BTreeSet<u32> = merged.disclosures().iter().map(|d| d.index).collect();
        prop_assert_eq!(got, expect);
        prop_assert!(Record::decode(&merged.encode()).unwrap().verify().is_ok());
    }
}

#[test]
fn identifier_type_redaction_only_drops_that_type() {
    let r = common::signed(&common::twelve_field_draft(), &key());
    let (copy, removed) = r.redact(&["identifiers.passport".parse().unwrap()]);
    assert_eq!(removed.len(), 1);
    let c = copy.content();
    assert_eq!(c.identifiers.len(), 1);
    assert_eq!(c.identifiers[0].kind, "national_id");
    assert_eq!(c.withheld, vec![FieldTag::Identifier]);
}

#[test]
fn merge_refuses_other_records() {
    let k = key();
    let mut a = common::signed(&common::twelve_field_draft(), &k);
    let b = common::signed(&common::twelve_field_draft(), &k);
    assert!(matches!(
        a.merge(&b),
        Err(RecordError::DifferentRecords(..))
    ));
}

#[test]
fn twelve_field_draft_has_twelve_fields() {
    let r = common::signed(&common::twelve_field_draft(), &key());
    assert_eq!(r.header().fields.len(), 12);
}

#[test]
fn non_canonical_headers_are_refused() {
    use prost::Message;
    use wlnode_proto::v1 as pb;
    let r = common::signed(&common::twelve_field_draft(), &key());
    let mut msg = pb::RecordHeader::decode(r.header_bytes()).unwrap();
    // An unknown field appended.
    let mut bytes = r.header_bytes().to_vec();
    bytes.extend_from_slice(&[0xF8, 0x01, 0x01]); // field 31, varint 1
    assert_eq!(
        RecordHeader::decode_canonical(&bytes),
        Err(RecordError::NonCanonical)
    );
    // Explicit default value (format field re-encoded with a zero-length extra field).
    let mut bytes = r.header_bytes().to_vec();
    bytes.extend_from_slice(&[0x62, 0x00]); // field 12 (subject_country) = ""
    assert_eq!(
        RecordHeader::decode_canonical(&bytes),
        Err(RecordError::NonCanonical)
    );
    // Unsorted categories.
    msg.categories = vec!["5A002".into(), "3A001".into()];
    let err = RecordHeader::decode_canonical(&msg.encode_to_vec()).unwrap_err();
    assert!(
        matches!(err, RecordError::Invalid(ref v) if v.field == "categories"),
        "{err}"
    );
}

#[test]
fn batch_verification_finds_the_bad_ones() {
    let k = key();
    let mut records: Vec<Record> = (0..100)
        .map(|_| common::signed(&common::twelve_field_draft(), &k).into_inner())
        .collect();
    for i in [3usize, 50, 99] {
        let r = &records[i];
        let mut sig = *r.signature();
        sig.0[40] ^= 1;
        records[i] =
            Record::from_parts(r.header_bytes().to_vec(), sig, r.disclosures().to_vec()).unwrap();
    }
    let out = verify_batch(records);
    assert_eq!(out.len(), 100);
    for (i, r) in out.iter().enumerate() {
        assert_eq!(r.is_err(), [3, 50, 99].contains(&i), "record {i}");
    }
}

#[test]
fn small_order_signature_r_is_refused_by_the_batch_path() {
    let k = key();
    let r = common::signed(&common::twelve_field_draft(), &k);
    // R = the identity point (small order), which verify_strict refuses; the batch
    // path must refuse it too rather than let the batch equation decide.
    let mut sig = *r.signature();
    let mut bad_r = [0u8; 32];
    bad_r[0] = 1;
    sig.0[..32].copy_from_slice(&bad_r);
    let rec = Record::from_parts(r.header_bytes().to_vec(), sig, vec![]).unwrap();
    let out = verify_batch(vec![
        rec.clone(),
        rec.clone(),
        rec.clone(),
        rec.clone(),
        rec,
    ]);
    assert!(
        out.iter()
            .all(|x| matches!(x, Err(e) if e.error == RecordError::BadSignature))
    );
}

#[test]
fn withdrawal_reason_needs_withdrawn_status() {
    let mut m = common::meta(2);
    m.withdrawal_reason = Some("delisted by court order".into());
    assert!(matches!(
        build_record(m.clone(), &common::twelve_field_draft(), &key()),
        Err(RecordError::Draft(_))
    ));
    m.status = wlnode_crypto::model::Status::Withdrawn;
    let r = build_record(m, &common::twelve_field_draft(), &key()).unwrap();
    assert_eq!(
        r.content().withdrawal_reason.as_deref(),
        Some("delisted by court order")
    );
}

/// Issue 19 item 5: field scopes are part of the signed distribution. A record with
/// scopes is header format 2 (a wlnode that cannot enforce them refuses it), one
/// without stays format 1 and byte-for-byte as before.
#[test]
fn field_scopes_are_signed_and_set_the_header_format() {
    use wlnode_crypto::model::{AgencyCode, EntryDraft, GroupName};
    let mut d: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "person", "name": "Scoped Person",
                    "identifiers": [{"type": "passport", "value": "P1"}], "birth_date": "1970-01-02"},
        "reason": "denial",
        "distribution": {"scope": "federation",
                         "fields": {"identifiers.passport": ["group:eu"], "birth_date": ["BB-CUSTOMS"]}}
    }))
    .unwrap();
    let scoped = common::signed(&d, &key());
    let h = scoped.header();
    assert_eq!(h.distribution.fields.iter().count(), 2);
    assert_eq!(
        RecordHeader::decode_canonical(scoped.header_bytes())
            .unwrap()
            .distribution,
        h.distribution
    );
    // The JSON form round-trips, sorted by field name.
    let json = serde_json::to_value(&h.distribution).unwrap();
    assert_eq!(
        json["fields"],
        serde_json::json!({"birth_date": ["BB-CUSTOMS"], "identifiers.passport": ["group:eu"]})
    );
    let bb = AgencyCode::new("BB-CUSTOMS").unwrap();
    let cc = AgencyCode::new("CC-TRADE").unwrap();
    let eu = |g: &GroupName| g.as_str() == "eu";
    let none = |_: &GroupName| false;
    let f = &h.distribution.fields;
    assert!(f.admits_field(FieldTag::BirthDate, "1970-01-02", &bb, none));
    assert!(!f.admits_field(FieldTag::BirthDate, "1970-01-02", &cc, eu));
    assert!(f.admits_field(FieldTag::Identifier, "passport:P1", &cc, eu));
    assert!(!f.admits_field(FieldTag::Identifier, "passport:P1", &cc, none));
    assert!(
        f.admits_field(FieldTag::Identifier, "imo:1234567", &cc, none),
        "only passports are scoped"
    );
    assert_eq!(
        f.withheld_from(&cc, none)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["birth_date", "identifiers.passport"]
    );
    // Without scopes: format 1.
    d.distribution.fields = Default::default();
    let plain = common::signed(&d, &key());
    assert_eq!(plain.header_bytes().get(..2), Some(&[0x08, 0x01][..]));
    assert_eq!(scoped.header_bytes().get(..2), Some(&[0x08, 0x02][..]));
    // A format-1 header carrying scopes (or format 2 without) is not canonical.
    let mut forged = scoped.header_bytes().to_vec();
    forged[1] = 0x01;
    assert!(matches!(
        RecordHeader::decode_canonical(&forged),
        Err(RecordError::NonCanonical)
    ));
    // A field named twice in one object is an error, not "the last one wins":
    // two readers of the same JSON must never see different scopes.
    let e = serde_json::from_str::<wlnode_crypto::model::Distribution>(
        r#"{"scope": "federation", "fields": {"remarks": ["AA-EXPORT"], "remarks": ["BB-CUSTOMS"]}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("named twice"), "{e}");
    // Bad scopes in entry JSON name what is wrong.
    for (fields, want) in [
        (
            serde_json::json!({"identifier": ["AA-EXPORT"]}),
            "not a field name",
        ),
        (
            serde_json::json!({"remarks": ["aa"]}),
            "neither an agency code nor group:NAME",
        ),
        (
            serde_json::json!({"remarks": ["AA-EXPORT", "AA-EXPORT"]}),
            "listed twice",
        ),
    ] {
        let e = serde_json::from_value::<wlnode_crypto::model::Distribution>(
            serde_json::json!({"scope": "federation", "fields": fields}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn on_hit_is_signed_only_when_asked_and_old_headers_keep_their_bytes() {
    use wlnode_crypto::model::{EntryDraft, OnHit};
    let mut d: EntryDraft = serde_json::from_value(serde_json::json!({
        "subject": {"kind": "organization", "name": "Kestrel Notify Trading"},
        "reason": "denial"
    }))
    .unwrap();
    assert_eq!(d.on_hit, None);
    let plain = common::signed(&d, &key());
    // No request: no field 15 at all, so a header written before on_hit existed and
    // one written now without it are the same bytes (and record id).
    let h = plain.header().clone();
    assert_eq!(h.on_hit, None);
    assert_eq!(h.encode(), plain.header_bytes().to_vec());
    assert!(!plain.header_bytes().ends_with(&[0x78, 0x01]));
    d.on_hit = Some(OnHit::Notify);
    let asks = common::signed(&d, &key());
    assert!(asks.header_bytes().ends_with(&[0x78, 0x01]));
    let decoded = RecordHeader::decode_canonical(asks.header_bytes()).unwrap();
    assert_eq!(decoded.on_hit, Some(OnHit::Notify));
    assert_eq!(
        RecordHeader::decode_canonical_reference(asks.header_bytes()).unwrap(),
        decoded
    );
    // The same header with the request taken out is exactly the header without it.
    let mut stripped = decoded.clone();
    stripped.on_hit = None;
    let mut without = asks.header_bytes().to_vec();
    without.truncate(without.len() - 2);
    assert_eq!(stripped.encode(), without);
    // An unknown value in the header is refused, naming the field; an explicit 0 is
    // not canonical.
    let mut bad = without.clone();
    bad.extend_from_slice(&[0x78, 0x02]);
    assert!(
        matches!(RecordHeader::decode_canonical(&bad), Err(RecordError::Invalid(v)) if v.field == "on_hit")
    );
    let mut zero = without.clone();
    zero.extend_from_slice(&[0x78, 0x00]);
    assert!(matches!(
        RecordHeader::decode_canonical(&zero),
        Err(RecordError::NonCanonical)
    ));
    // Entry JSON: an unknown value is an error naming the field.
    let e = serde_json::from_value::<EntryDraft>(serde_json::json!({
        "subject": {"kind": "organization", "name": "X"},
        "reason": "denial",
        "on_hit": "email"
    }))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("on_hit: ") && e.contains("email") && e.contains("notify"),
        "{e}"
    );
}
