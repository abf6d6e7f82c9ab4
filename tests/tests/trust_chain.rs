//! End-to-end trust chain across the crates: a signed roster on disk, agency keys in
//! key files, a record built at one agency, sent as wire bytes, and checked by another
//! agency against the roster. Multi-node federations join this crate with the
//! replication issue.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wlnode_crypto::keyfile::{KeyKind, read_secret_key, write_secret_key};
use wlnode_crypto::model::{AgencyCode, CountryCode, EntryDraft, EntryId, Status};
use wlnode_crypto::record::{FieldSelector, Record, RecordMeta, build_record, verify_batch};
use wlnode_crypto::roster::{
    Authority, KeyWindow, Member, Revocation, Role, RosterDoc, RosterError, RosterSignature,
    TrustAnchor, sign_roster, verify_roster,
};
use wlnode_crypto::{SecretKey, Timestamp};

const T0: u64 = 1_790_000_000_000;

fn member(agency: &str, key: &SecretKey, node: &SecretKey) -> Member {
    Member {
        agency: AgencyCode::new(agency).unwrap(),
        name: format!("{agency} office"),
        country: CountryCode::new(&agency[..2]).unwrap(),
        role: Role::Member,
        groups: ["eu".parse().unwrap()].into(),
        node_ids: vec![node.public_key().peer_id()],
        keys: vec![KeyWindow {
            key: key.public_key(),
            valid_from: Timestamp(T0 - 1_000_000),
            valid_until: None,
        }],
        revoked: vec![],
        encryption_keys: vec![],
    }
}

#[test]
fn record_from_one_agency_verifies_at_another_through_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let authority = SecretKey::generate().unwrap();
    let aa_path = dir.path().join("aa.key");
    write_secret_key(&aa_path, &SecretKey::generate().unwrap(), KeyKind::Agency).unwrap();
    let aa_key = read_secret_key(&aa_path, KeyKind::Agency).unwrap();
    let bb_key = SecretKey::generate().unwrap();
    let stolen = SecretKey::generate().unwrap();

    let mut aa = member("AA-EXPORT", &aa_key, &SecretKey::generate().unwrap());
    aa.keys.push(KeyWindow {
        key: stolen.public_key(),
        valid_from: Timestamp(T0 - 1_000_000),
        valid_until: None,
    });
    aa.revoked.push(Revocation {
        key: stolen.public_key(),
        revoked_at: Timestamp(T0 - 10),
        reason: "compromised".into(),
        keep: Default::default(),
    });
    let doc = RosterDoc {
        federation: "test".into(),
        version: 1,
        issued_at: Timestamp(T0),
        sensitivities: None,
        authorities: vec![Authority {
            key: authority.public_key(),
            name: "authority".into(),
        }],
        members: vec![
            aa,
            member("BB-CUSTOMS", &bb_key, &SecretKey::generate().unwrap()),
        ],
        federation_settings: None,
    };
    let roster_path = dir.path().join("roster.toml");
    std::fs::write(&roster_path, toml::to_string(&doc).unwrap()).unwrap();
    let bytes = std::fs::read(&roster_path).unwrap();
    let sig_text = sign_roster(&bytes, &authority).to_text();
    std::fs::write(dir.path().join("roster.toml.sig"), &sig_text).unwrap();

    // BB loads the roster from disk, pinning the authority on first use.
    let sig = RosterSignature::parse(
        &std::fs::read_to_string(dir.path().join("roster.toml.sig")).unwrap(),
    )
    .unwrap();
    let roster = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();

    let draft: EntryDraft = serde_json::from_str(
        r#"{"subject":{"kind":"organization","name":"Acme Trading FZE","aliases":["ACME TRDG. F.Z.E."],
            "country":"AE","identifiers":[{"type":"registration","value":"FZE-12345"}]},
            "reason":"diversion-risk","categories":["3A001"],
            "distribution":{"scope":"groups","groups":["eu"],"sensitivity":"restricted"}}"#,
    )
    .unwrap();
    let meta = |key_time: u64| RecordMeta {
        entry_id: EntryId::random().unwrap(),
        origin: AgencyCode::new("AA-EXPORT").unwrap(),
        version: 1,
        issued_at: Timestamp(key_time),
        status: Status::Active,
        withdrawal_reason: None,
    };
    let good = build_record(meta(T0), &draft, &aa_key).unwrap();
    let forged = build_record(meta(T0), &draft, &stolen).unwrap();
    // AA withholds identifiers from BB.
    let (sent, _) = good.redact(&[FieldSelector::Tag(
        wlnode_crypto::model::FieldTag::Identifier,
    )]);

    // Over the wire as protobuf bytes.
    let wire: Vec<Vec<u8>> = [&sent, &forged].iter().map(|r| r.encode()).collect();
    let received: Vec<Record> = wire.iter().map(|b| Record::decode(b).unwrap()).collect();
    let results = verify_batch(received);
    let mut accepted = Vec::new();
    for r in results {
        let r = r.unwrap(); // both signatures are mathematically valid
        match roster.check_record_signer(
            &r.header().origin,
            &r.header().signer_key,
            r.header().issued_at,
        ) {
            Ok(_) => accepted.push(r),
            Err(e) => assert!(matches!(e, RosterError::RevokedKey { .. }), "{e}"),
        }
    }
    assert_eq!(accepted.len(), 1);
    let c = accepted[0].content();
    assert_eq!(accepted[0].id(), good.id());
    assert_eq!(c.name.as_deref(), Some("Acme Trading FZE"));
    assert!(c.identifiers.is_empty());
    assert_eq!(c.withheld, vec![wlnode_crypto::model::FieldTag::Identifier]);
}
