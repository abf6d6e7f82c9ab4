//! The bodies of the cargo-fuzz targets in `fuzz/`, kept in the library so the
//! workspace test `tests/tests/fuzz_corpus.rs` replays the committed corpus through
//! exactly the code the fuzzer ran, on stable Rust and without libFuzzer.
//!
//! Each function takes arbitrary bytes and must return without panicking, whatever
//! they hold. Where a decoder has a matching encoder, the function also checks the
//! round trip (decode, encode, decode again gives the same value), so the fuzzer looks
//! for silent corruption as well as crashes.

use std::path::Path;
use std::sync::OnceLock;

use negentropy::NegentropyStorageVector;
use wlnode_crypto::model::RecordId;
use wlnode_crypto::record::{Record, RecordHeader};
use wlnode_crypto::roster::{Roster, RosterSignature, TrustAnchor, verify_roster};

use wlnode_import::{self as import, Format, ImportDefaults};
use wlnode_proto::Message;
use wlnode_proto::v1 as pb;
use wlnode_sync::reconcile;
use wlnode_sync::wire;
use wlnode_types as stored;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/run.sh` and the corpus replay test know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("store_values", store_values),
    ("record", record),
    ("roster", roster),
    ("node_toml", node_toml),
    ("reconcile", reconcile_message),
    ("import_csv", import_csv),
    ("import_jsonl", import_jsonl),
    ("import_ftm", import_ftm),
    ("import_un_xml", import_un_xml),
    ("import_ofac_xml", import_ofac_xml),
    ("import_eu_xml", import_eu_xml),
    ("import_uk_xml", import_uk_xml),
];

/// The target function called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A sync request frame as the replication service decodes it. The round trip goes
/// through the protobuf types (our own encoder takes only outbound messages, whose
/// records passed the policy): a frame that decodes must decode the same after
/// protobuf re-encodes it.
pub fn sync_request(data: &[u8]) {
    if let Ok(req) = wire::decode_request(data) {
        let m = pb::SyncRequest::decode(data);
        assert!(m.is_ok(), "a frame our decoder took is protobuf");
        if let Ok(m) = m {
            let again = wire::decode_request(&m.encode_to_vec());
            assert_eq!(again.as_ref(), Ok(&req), "sync request round trip");
        }
    }
}

/// A sync response frame as the replication service decodes it (round trip as for
/// [`sync_request`]).
pub fn sync_response(data: &[u8]) {
    if let Ok(resp) = wire::decode_response(data) {
        let m = pb::SyncResponse::decode(data);
        assert!(m.is_ok(), "a frame our decoder took is protobuf");
        if let Ok(m) = m {
            let again = wire::decode_response(&m.encode_to_vec());
            assert_eq!(again.as_ref(), Ok(&resp), "sync response round trip");
        }
    }
}

/// Every value the store decodes from sled (a corrupt or tampered data dir).
pub fn store_values(data: &[u8]) {
    let _ = stored::StoredRecord::decode(data);
    if let Ok(s) = stored::EntryState::decode(data) {
        let _ = s.records();
        let _ = s.at_version(0);
        let _ = s.at_version(u64::MAX);
        let again = stored::EntryState::decode(&s.encode());
        assert_eq!(again.as_ref(), Ok(&s), "entry state round trip");
    }
    if let Ok(m) = stored::LocalMeta::decode(data) {
        let _ = stored::LocalMeta::decode(&m.encode());
    }
    if let Ok(c) = stored::Cursor::decode(data) {
        let again = stored::Cursor::decode(&c.encode());
        assert_eq!(again.as_ref(), Ok(&c), "cursor round trip");
    }
    if let Ok(m) = stored::SyncMeta::decode(data) {
        let again = stored::SyncMeta::decode(&m.encode());
        assert_eq!(again.as_ref(), Ok(&m), "sync meta round trip");
    }
    // A record's inclusion proof (kept with it, and sent beside it): decoded and
    // checked against an empty roster, which no proof satisfies.
    if let Ok(p) = wlnode_audit::inclusion::RecordInclusion::decode(data) {
        let again = wlnode_audit::inclusion::RecordInclusion::decode(&p.encode());
        assert_eq!(again.as_ref(), Ok(&p), "inclusion proof round trip");
        if let Some(roster) = empty_roster() {
            let origin = p.cosignature.checkpoint.checkpoint.agency.clone();
            let r = p.verify(
                roster,
                &RecordId([0; 32]),
                &origin,
                wlnode_crypto::Timestamp(u64::MAX),
            );
            assert!(r.is_err(), "no proof holds under a roster without members");
        }
    }
}

fn empty_roster() -> Option<&'static Roster> {
    static R: OnceLock<Option<Roster>> = OnceLock::new();
    R.get_or_init(|| {
        let authority = wlnode_crypto::SecretKey::from_seed(&[7; 32]).public_key();
        Roster::parse(
            format!(
                "federation = \"fuzz\"\nversion = 1\nissued_at = 2026-01-01T00:00:00Z\n\
                 [[authorities]]\nkey = \"{authority}\"\n"
            )
            .as_bytes(),
        )
        .ok()
    })
    .as_ref()
}

/// A record from raw bytes: decode, re-encode, verify the signature, read the content.
/// The hand-written decoders (`wlnode_crypto`'s `canonical` module) must agree with
/// the prost-based reference decoders they replaced.
pub fn record(data: &[u8]) {
    let header = RecordHeader::decode_canonical(data);
    let reference = RecordHeader::decode_canonical_reference(data);
    assert_eq!(
        header.is_ok(),
        reference.is_ok(),
        "header decoders disagree: {header:?} vs {reference:?}"
    );
    if let (Ok(a), Ok(b)) = (&header, &reference) {
        assert_eq!(a, b, "header decoders disagree");
    }
    let rec = Record::decode(data);
    let reference = Record::decode_bytes_reference(bytes::Bytes::copy_from_slice(data));
    assert_eq!(rec, reference, "record decoders disagree");
    let Ok(rec) = rec else {
        return;
    };
    let again = Record::decode(&rec.encode());
    assert!(
        again.is_ok(),
        "a decoded record re-encodes to a decodable one"
    );
    let _ = rec.is_complete();
    if let Ok(v) = rec.verify() {
        let _ = v.content();
        let _ = v.encoded_len();
    }
}

/// Roster TOML, and a roster signature file, verified against first-use trust.
pub fn roster(data: &[u8]) {
    if let Ok(r) = Roster::parse(data) {
        let _ = r.members().count();
        let _ = r.hash();
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(sig) = RosterSignature::parse(text)
    {
        let again = RosterSignature::parse(&sig.to_text());
        assert!(again.is_ok(), "roster signature round trip");
        let _ = verify_roster(data, &sig, &TrustAnchor::default());
    }
}

/// `node.toml` text.
pub fn node_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wlnode_config::Config::parse(Path::new("/fuzz/node.toml"), text);
    }
}

fn reconcile_storage() -> &'static Option<NegentropyStorageVector> {
    static S: OnceLock<Option<NegentropyStorageVector>> = OnceLock::new();
    S.get_or_init(|| {
        let items: Vec<(u64, RecordId)> = (0u8..64)
            .map(|i| (u64::from(i) * 1000, RecordId([i; 32])))
            .collect();
        reconcile::storage(&items).ok()
    })
}

/// A peer's negentropy message, on the responder side and on the initiator side.
pub fn reconcile_message(data: &[u8]) {
    let Some(storage) = reconcile_storage() else {
        return;
    };
    let _ = reconcile::respond(storage, data);
    let items: Vec<(u64, RecordId)> = (0u8..16)
        .map(|i| (u64::from(i) * 3000, RecordId([i.wrapping_mul(7); 32])))
        .collect();
    if let Ok(s) = reconcile::storage(&items)
        && let Ok((mut init, _)) = reconcile::Initiator::start(s, [0; 16])
        && init.on_reply(data).is_ok()
    {
        while init.next_step(100, 100).is_some() {}
    }
}

fn import(format: Format, data: &[u8]) {
    let _ = import::parse(format, data, &ImportDefaults::default());
}

/// CSV import.
pub fn import_csv(data: &[u8]) {
    import(Format::Csv, data);
}

/// JSONL import.
pub fn import_jsonl(data: &[u8]) {
    import(Format::Jsonl, data);
}

/// FollowTheMoney JSONL import.
pub fn import_ftm(data: &[u8]) {
    import(Format::Ftm, data);
}

/// UN Security Council consolidated list XML import.
pub fn import_un_xml(data: &[u8]) {
    import(Format::UnXml, data);
}

/// OFAC SDN XML import.
pub fn import_ofac_xml(data: &[u8]) {
    import(Format::OfacXml, data);
}

/// EU consolidated financial sanctions list (FSF) XML import.
pub fn import_eu_xml(data: &[u8]) {
    import(Format::EuXml, data);
}

/// UK Sanctions List (FCDO) XML import.
pub fn import_uk_xml(data: &[u8]) {
    import(Format::UkXml, data);
}

#[cfg(test)]
mod tests {
    /// The inclusion-proof check in [`super::store_values`] runs only if its roster
    /// parses.
    #[test]
    fn the_roster_without_members_parses() {
        assert!(super::empty_roster().is_some());
    }
}
