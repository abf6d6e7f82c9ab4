//! Roster verification: each way a roster or a signer can be refused has its own error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wlnode_crypto::keys::SecretKey;
use wlnode_crypto::model::{AgencyCode, CountryCode};
use wlnode_crypto::roster::{
    Authority, KeyWindow, Member, Revocation, Role, Roster, RosterDoc, RosterError,
    RosterSignature, TrustAnchor, sign_roster, verify_roster,
};
use wlnode_crypto::time::Timestamp;

const T0: u64 = 1_780_000_000_000;
const DAY: u64 = 86_400_000;

struct Fixture {
    authority: SecretKey,
    agency_key: SecretKey,
    old_key: SecretKey,
    revoked_key: SecretKey,
    node_key: SecretKey,
}

fn fixture() -> Fixture {
    Fixture {
        authority: SecretKey::from_seed(&[1; 32]),
        agency_key: SecretKey::from_seed(&[2; 32]),
        old_key: SecretKey::from_seed(&[3; 32]),
        revoked_key: SecretKey::from_seed(&[4; 32]),
        node_key: SecretKey::from_seed(&[5; 32]),
    }
}

fn doc(f: &Fixture, version: u64) -> RosterDoc {
    RosterDoc {
        federation: "test-federation".into(),
        version,
        issued_at: Timestamp(T0),
        sensitivities: None,
        authorities: vec![Authority {
            key: f.authority.public_key(),
            name: "Regional body".into(),
        }],
        members: vec![
            Member {
                agency: AgencyCode::new("AA-EXPORT").unwrap(),
                name: "Export office of AA".into(),
                country: CountryCode::new("AA").unwrap(),
                role: Role::Member,
                groups: ["eu".parse().unwrap()].into(),
                node_ids: vec![f.node_key.public_key().peer_id()],
                keys: vec![
                    KeyWindow {
                        key: f.old_key.public_key(),
                        valid_from: Timestamp(T0 - 100 * DAY),
                        valid_until: Some(Timestamp(T0)),
                    },
                    KeyWindow {
                        key: f.agency_key.public_key(),
                        valid_from: Timestamp(T0),
                        valid_until: None,
                    },
                    KeyWindow {
                        key: f.revoked_key.public_key(),
                        valid_from: Timestamp(T0 - 100 * DAY),
                        valid_until: None,
                    },
                ],
                revoked: vec![Revocation {
                    key: f.revoked_key.public_key(),
                    revoked_at: Timestamp(T0 - 10 * DAY),
                    reason: "compromised".into(),
                    keep: Default::default(),
                }],
                encryption_keys: vec![],
            },
            Member {
                agency: AgencyCode::new("ZZ-AUDIT").unwrap(),
                name: "Regional audit".into(),
                country: CountryCode::new("ZZ").unwrap(),
                role: Role::Auditor,
                groups: Default::default(),
                node_ids: vec![],
                keys: vec![KeyWindow {
                    key: SecretKey::from_seed(&[9; 32]).public_key(),
                    valid_from: Timestamp(0),
                    valid_until: None,
                }],
                revoked: vec![],
                encryption_keys: vec![],
            },
        ],
        federation_settings: None,
    }
}

fn signed(f: &Fixture, version: u64) -> (Vec<u8>, RosterSignature) {
    let bytes = toml::to_string(&doc(f, version)).unwrap().into_bytes();
    let sig = sign_roster(&bytes, &f.authority);
    (bytes, sig)
}

#[test]
fn accepts_a_good_roster_and_answers_queries() {
    let f = fixture();
    let (bytes, sig) = signed(&f, 1);
    let sig = RosterSignature::parse(&sig.to_text()).unwrap();
    let r = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();
    let aa = AgencyCode::new("AA-EXPORT").unwrap();
    assert_eq!(r.version(), 1);
    assert_eq!(
        r.agency_of_peer(&f.node_key.public_key().peer_id())
            .unwrap()
            .agency,
        aa
    );
    assert!(r.agency_of_peer("12D3KooWnotinroster").is_none());
    assert!(r.member(&aa).unwrap().in_group(&"eu".parse().unwrap()));
    assert_eq!(
        r.sensitivity_rank(&"confidential".parse().unwrap()),
        Some(2)
    );
    assert!(
        r.check_signer(&aa, &f.agency_key.public_key(), Timestamp(T0 + DAY))
            .is_ok()
    );
    // Rotation: records signed by the old key inside its window stay valid.
    assert!(
        r.check_signer(&aa, &f.old_key.public_key(), Timestamp(T0 - DAY))
            .is_ok()
    );
    // Records signed by the revoked key before revocation stay valid.
    assert!(
        r.check_signer(&aa, &f.revoked_key.public_key(), Timestamp(T0 - 20 * DAY))
            .is_ok()
    );
}

#[test]
fn bad_signature() {
    let f = fixture();
    let (mut bytes, sig) = signed(&f, 1);
    bytes.extend_from_slice(b"\n# edited after signing\n");
    assert_eq!(
        verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap_err(),
        RosterError::BadSignature
    );
}

#[test]
fn unknown_authority() {
    let f = fixture();
    let (bytes, _) = signed(&f, 1);
    let impostor = SecretKey::from_seed(&[66; 32]);
    let sig = sign_roster(&bytes, &impostor);
    assert!(matches!(
        verify_roster(&bytes, &sig, &TrustAnchor::default()),
        Err(RosterError::UnknownAuthority { .. })
    ));
    // A roster that lists the impostor as authority is still refused by a node that
    // pinned the real authority.
    let mut d = doc(&f, 2);
    d.authorities = vec![Authority {
        key: impostor.public_key(),
        name: "impostor".into(),
    }];
    let bytes = toml::to_string(&d).unwrap().into_bytes();
    let sig = sign_roster(&bytes, &impostor);
    let anchor = TrustAnchor {
        authorities: vec![f.authority.public_key()],
        accepted: None,
    };
    assert!(matches!(
        verify_roster(&bytes, &sig, &anchor),
        Err(RosterError::UnknownAuthority { .. })
    ));
}

#[test]
fn older_version() {
    let f = fixture();
    let (b3, s3) = signed(&f, 3);
    let r3 = verify_roster(&b3, &s3, &TrustAnchor::default()).unwrap();
    let anchor = TrustAnchor::after(&r3);
    let (b2, s2) = signed(&f, 2);
    assert_eq!(
        verify_roster(&b2, &s2, &anchor).unwrap_err(),
        RosterError::OlderVersion {
            accepted: 3,
            offered: 2
        }
    );
    // The same roster again is fine; a different one with the same version is not.
    assert!(verify_roster(&b3, &s3, &anchor).is_ok());
    let mut d = doc(&f, 3);
    d.federation = "test-federation".into();
    d.issued_at = Timestamp(T0 + 1);
    let b = toml::to_string(&d).unwrap().into_bytes();
    let s = sign_roster(&b, &f.authority);
    assert_eq!(
        verify_roster(&b, &s, &anchor).unwrap_err(),
        RosterError::ConflictingVersion { version: 3 }
    );
}

#[test]
fn expired_key() {
    let f = fixture();
    let (bytes, sig) = signed(&f, 1);
    let r = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();
    let aa = AgencyCode::new("AA-EXPORT").unwrap();
    assert!(matches!(
        r.check_signer(&aa, &f.old_key.public_key(), Timestamp(T0 + DAY)),
        Err(RosterError::ExpiredKey { .. })
    ));
    assert!(matches!(
        r.check_signer(&aa, &f.agency_key.public_key(), Timestamp(T0 - DAY)),
        Err(RosterError::KeyNotYetValid { .. })
    ));
}

#[test]
fn revoked_key() {
    let f = fixture();
    let (bytes, sig) = signed(&f, 1);
    let r = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();
    let aa = AgencyCode::new("AA-EXPORT").unwrap();
    assert!(matches!(
        r.check_signer(&aa, &f.revoked_key.public_key(), Timestamp(T0 - 5 * DAY)),
        Err(RosterError::RevokedKey { .. })
    ));
}

#[test]
fn unknown_agency_and_key() {
    let f = fixture();
    let (bytes, sig) = signed(&f, 1);
    let r = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();
    assert_eq!(
        r.check_signer(
            &AgencyCode::new("XX-NOBODY").unwrap(),
            &f.agency_key.public_key(),
            Timestamp(T0)
        ),
        Err(RosterError::UnknownAgency("XX-NOBODY".into()))
    );
    assert!(matches!(
        r.check_signer(
            &AgencyCode::new("AA-EXPORT").unwrap(),
            &f.node_key.public_key(),
            Timestamp(T0)
        ),
        Err(RosterError::UnknownKey { .. })
    ));
    // Auditors issue no records.
    assert!(matches!(
        r.check_record_signer(
            &AgencyCode::new("ZZ-AUDIT").unwrap(),
            &SecretKey::from_seed(&[9; 32]).public_key(),
            Timestamp(T0)
        ),
        Err(RosterError::WrongRole { .. })
    ));
}

#[test]
fn federation_mismatch() {
    let f = fixture();
    let (b1, s1) = signed(&f, 1);
    let anchor = TrustAnchor::after(&verify_roster(&b1, &s1, &TrustAnchor::default()).unwrap());
    let mut d = doc(&f, 2);
    d.federation = "other".into();
    let b = toml::to_string(&d).unwrap().into_bytes();
    let s = sign_roster(&b, &f.authority);
    assert!(matches!(
        verify_roster(&b, &s, &anchor),
        Err(RosterError::FederationMismatch { .. })
    ));
}

#[test]
fn parse_errors_name_the_line() {
    let text = "federation = \"x\"\nversion = 1\nissued_at = 2026-01-01T00:00:00Z\nbogus = 3\n";
    match Roster::parse(text.as_bytes()) {
        Err(RosterError::Parse { line, message, .. }) => {
            assert_eq!(line, 4, "{message}");
            assert!(message.contains("bogus"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn structural_rules() {
    let f = fixture();
    let mut d = doc(&f, 1);
    d.members[0].revoked[0].key = f.node_key.public_key();
    let b = toml::to_string(&d).unwrap();
    assert!(
        matches!(Roster::parse(b.as_bytes()), Err(RosterError::Invalid(m)) if m.contains("revoked key"))
    );
    let mut d = doc(&f, 1);
    d.members[1].node_ids = d.members[0].node_ids.clone();
    let b = toml::to_string(&d).unwrap();
    assert!(
        matches!(Roster::parse(b.as_bytes()), Err(RosterError::Invalid(m)) if m.contains("more than one member"))
    );
    let mut d = doc(&f, 1);
    d.members[0].node_ids = vec!["not-a-peer-id".into()];
    let b = toml::to_string(&d).unwrap();
    assert!(matches!(
        Roster::parse(b.as_bytes()),
        Err(RosterError::Invalid(_))
    ));
}

#[test]
fn signature_file_errors() {
    assert!(matches!(
        RosterSignature::parse(""),
        Err(RosterError::SignatureFile(_))
    ));
    assert!(matches!(
        RosterSignature::parse("wlnode-roster-signature v1\nauthority ed25519:00\nsignature 00\n"),
        Err(RosterError::SignatureFile(_))
    ));
}
