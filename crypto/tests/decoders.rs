//! Arbitrary bytes fed to every decoder return an error and never panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use wlnode_crypto::record::{Record, RecordHeader};
use wlnode_crypto::roster::{Roster, RosterSignature};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn record_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Record::decode(&bytes);
    }

    #[test]
    fn header_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = RecordHeader::decode_canonical(&bytes);
    }

    #[test]
    fn roster_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Roster::parse(&bytes);
    }

    #[test]
    fn roster_parser_never_panics_on_near_toml(s in "[a-z_=\\[\\]\"0-9 .:\\n-]{0,400}") {
        let _ = Roster::parse(s.as_bytes());
    }

    #[test]
    fn signature_file_parser_never_panics(s in "\\PC{0,300}") {
        let _ = RosterSignature::parse(&s);
    }

    #[test]
    fn mutated_records_never_panic(seed in any::<u64>(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        // Start from a valid record so that mutations reach deep into the decoder.
        let key = wlnode_crypto::SecretKey::from_seed(&seed.to_le_bytes().repeat(4).try_into().unwrap());
        let draft: wlnode_crypto::model::EntryDraft = serde_json::from_str(
            r#"{"subject":{"kind":"organization","name":"Acme Trading FZE","aliases":["ACME TRDG"],
                "identifiers":[{"type":"registration","value":"123"}]},"reason":"denial"}"#).unwrap();
        let meta = wlnode_crypto::record::RecordMeta {
            entry_id: wlnode_crypto::EntryId([1; 16]),
            origin: "AA-EXPORT".parse().unwrap(),
            version: 1,
            issued_at: wlnode_crypto::Timestamp(1),
            status: wlnode_crypto::model::Status::Active,
            withdrawal_reason: None,
        };
        let mut bytes = wlnode_crypto::record::build_record(meta, &draft, &key).unwrap().encode();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        let _ = Record::decode(&bytes).map(|r| r.verify());
    }
}

#[test]
fn oversized_inputs_are_refused_before_decoding() {
    let big = vec![0u8; wlnode_crypto::record::MAX_RECORD_BYTES + 1];
    assert!(matches!(
        Record::decode(&big),
        Err(wlnode_crypto::RecordError::TooLarge { .. })
    ));
}

proptest! {
    #[test]
    fn key_file_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = wlnode_crypto::keyfile::parse_secret_key(&bytes, wlnode_crypto::keyfile::KeyKind::Agency);
    }

    #[test]
    fn key_file_parser_never_panics_on_near_misses(s in "WLNODE-SECRET-KEY v1 (agency|node)\n[0-9a-f]{0,70}\n(public ed25519:[0-9a-f]{0,66})?\n?.{0,5}") {
        let _ = wlnode_crypto::keyfile::parse_secret_key(s.as_bytes(), wlnode_crypto::keyfile::KeyKind::Agency);
    }
}
