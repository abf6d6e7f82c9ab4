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

/// A roster as a later build's authority signs it: version 2 of the fixture with a
/// new revocation (the current key, from `T0 + 5 days`) and a federation setting this
/// build does not know, added under `[federation_settings]` beside a known one.
fn later_build_roster(f: &Fixture) -> (Vec<u8>, RosterSignature) {
    let mut d = doc(f, 2);
    d.members[0].revoked.push(Revocation {
        key: f.agency_key.public_key(),
        revoked_at: Timestamp(T0 + 5 * DAY),
        reason: "stolen".into(),
        keep: Default::default(),
    });
    let mut text = toml::to_string(&d).unwrap();
    text.push_str(
        "\n[federation_settings]\nconsultation_silence = \"objection\"\n\
         future_rule_since = 2027-03-01T00:00:00Z\n\
         future_limits = { per_day = 5, label = \"x\" }\n",
    );
    let bytes = text.into_bytes();
    let sig = sign_roster(&bytes, &f.authority);
    (bytes, sig)
}

/// Issue 21, s35 (s32 L4): a node that does not know a federation setting still
/// accepts a later roster that carries one, so the revocation in that roster takes
/// effect (a record signed by the revoked key after `revoked_at` is refused). Before,
/// `deny_unknown_fields` on `federation_settings` refused the whole roster: the node
/// stayed on the old one and kept accepting the stolen key.
#[test]
fn an_unknown_federation_setting_does_not_cut_a_node_off_a_revocation() {
    let f = fixture();
    let (b1, s1) = signed(&f, 1);
    let v1 = verify_roster(&b1, &s1, &TrustAnchor::default()).unwrap();
    let aa = AgencyCode::new("AA-EXPORT").unwrap();
    let stolen = f.agency_key.public_key();
    let after = Timestamp(T0 + 6 * DAY);
    assert!(v1.check_record_signer(&aa, &stolen, after).is_ok());
    let (b2, s2) = later_build_roster(&f);
    let v2 = verify_roster(&b2, &s2, &TrustAnchor::after(&v1))
        .expect("a roster with an unknown federation setting is accepted");
    assert_eq!(v2.version(), 2);
    assert!(matches!(
        v2.check_record_signer(&aa, &stolen, after),
        Err(RosterError::RevokedKey { .. })
    ));
    assert!(
        v2.check_record_signer(&aa, &stolen, Timestamp(T0 + DAY))
            .is_ok(),
        "before revoked_at the key stays valid"
    );
    // The known setting next to the unknown ones still applies.
    assert_eq!(
        v2.silence_rule(),
        wlnode_crypto::roster::SilenceRule::Objection
    );
    // The unknown ones are kept and visible, never silently dropped.
    assert_eq!(
        v2.settings_not_understood(),
        ["future_limits", "future_rule_since"]
    );
    // The hash is over the exact signed bytes, unknown settings included.
    assert_eq!(v2.hash(), wlnode_crypto::sha256::digest(&b2));
    // The authority's strict check names the setting.
    match v2.refuse_unknown_settings() {
        Err(RosterError::UnknownFederationSetting { field, .. }) => {
            assert_eq!(field, "future_limits");
        }
        other => panic!("{other:?}"),
    }
    // Round trip: the parsed document serialises back with the unknown settings,
    // their TOML types intact, and parses to the same document.
    let again = toml::to_string(v2.doc()).unwrap();
    assert!(
        again.contains("future_rule_since = 2027-03-01T00:00:00Z"),
        "{again}"
    );
    let reparsed = Roster::parse(again.as_bytes()).unwrap();
    assert_eq!(reparsed.doc(), v2.doc());
    // Same version, same bytes: accepted again (a reload); other bytes: refused.
    assert!(verify_roster(&b2, &s2, &TrustAnchor::after(&v2)).is_ok());
    assert_ne!(
        again.as_bytes(),
        &b2[..],
        "re-encoded, not the signed bytes"
    );
    let other = sign_roster(again.as_bytes(), &f.authority);
    assert!(matches!(
        verify_roster(again.as_bytes(), &other, &TrustAnchor::after(&v2)),
        Err(RosterError::ConflictingVersion { version: 2 })
    ));
}

/// Only `federation_settings` is lenient: an unknown field anywhere else (a new kind
/// of revocation, a top-level field) still refuses the roster, naming it, so a
/// security field is never silently ignored.
#[test]
fn every_other_level_still_refuses_an_unknown_field() {
    let f = fixture();
    let text = toml::to_string(&doc(&f, 1)).unwrap();
    let cases = [
        (
            "reason = \"compromised\"",
            "reason = \"compromised\"\nscope = \"all\"",
            "scope",
        ),
        (
            "version = 1",
            "version = 1\nrevoked_authorities = []",
            "revoked_authorities",
        ),
        (
            "role = \"member\"",
            "role = \"member\"\nsuspended = true",
            "suspended",
        ),
    ];
    for (from, to, field) in cases {
        assert!(text.contains(from), "{from} in {text}");
        let changed = text.replacen(from, to, 1);
        match Roster::parse(changed.as_bytes()) {
            Err(RosterError::Parse { message, .. }) => {
                assert!(message.contains(field), "{field}: {message}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Review s35-roster L8: the strict levels named in ARCHITECTURE.md one by one
/// (signing keys, encryption keys, authorities, besides the revocation, member and
/// top level above): an unknown field there refuses the roster, naming it. Each
/// case parses without the field, so the field is what is refused.
#[test]
fn keys_encryption_keys_and_authorities_refuse_an_unknown_field() {
    let f = fixture();
    let text = toml::to_string(&doc(&f, 1)).unwrap();
    let new_key = SecretKey::from_seed(&[42; 32]).public_key();
    let key_table =
        format!("\n[[members.keys]]\nkey = \"{new_key}\"\nvalid_from = 2026-01-01T00:00:00Z\n");
    let enc_table = format!(
        "\n[[members.encryption_keys]]\nkey = \"x25519:{}\"\nvalid_from = 2026-01-01T00:00:00Z\n",
        "11".repeat(32)
    );
    let cases = [
        (
            format!("{text}{key_table}"),
            format!("{text}{key_table}usage = \"sign\"\n"),
            "usage",
        ),
        (
            format!("{text}{enc_table}"),
            format!("{text}{enc_table}rotation = 1\n"),
            "rotation",
        ),
        (
            text.clone(),
            text.replacen(
                "name = \"Regional body\"",
                "name = \"Regional body\"\nretired_at = 2026-01-01T00:00:00Z",
                1,
            ),
            "retired_at",
        ),
    ];
    for (plain, changed, field) in cases {
        assert_ne!(plain, changed, "{field}");
        Roster::parse(plain.as_bytes()).unwrap_or_else(|e| panic!("{field}: {e}"));
        match Roster::parse(changed.as_bytes()) {
            Err(RosterError::Parse { message, .. }) => {
                assert!(message.contains(field), "{field}: {message}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Review s35-roster L8: a known setting with a value of the wrong type is refused,
/// naming it, on the lenient path too: it never lands among the settings not
/// understood (where it would be ignored).
#[test]
fn a_known_setting_of_the_wrong_type_is_refused() {
    let f = fixture();
    let text = toml::to_string(&doc(&f, 1)).unwrap();
    for (setting, field) in [
        (
            "consult_receipts_required_since = \"soon\"",
            "consult_receipts_required_since",
        ),
        (
            "mail_acks_required_since = true",
            "mail_acks_required_since",
        ),
        (
            "consultation_min_deadline_secs = \"1d\"",
            "consultation_min_deadline_secs",
        ),
        ("consultation_silence = 3", "consultation_silence"),
    ] {
        let bytes = format!("{text}\n[federation_settings]\n{setting}\n").into_bytes();
        let sig = sign_roster(&bytes, &f.authority);
        match verify_roster(&bytes, &sig, &TrustAnchor::default()) {
            // The error points into `[federation_settings]` (the lines after the
            // document `text`), at the setting or its table.
            Err(RosterError::Parse { message, line, .. }) => {
                assert!(
                    line > text.lines().count(),
                    "{field}: {message} (line {line})"
                );
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

/// Review s35-roster L3/L6: a setting name a later build could add is a plain
/// `[a-z0-9_]+` of at most 64 characters; anything else (upper case, `-`, a control
/// character, an overlong name) is refused on every path with a typed error naming
/// it (cut, escaped), so a near-miss of a known name (`Consult_Receipts_...`,
/// `consult-receipts-...`) is never silently ignored. A plain unknown name is kept.
#[test]
fn a_malformed_setting_name_is_refused_and_a_plain_one_kept() {
    let f = fixture();
    let text = toml::to_string(&doc(&f, 1)).unwrap();
    let long = "a".repeat(65);
    for (key, shown) in [
        (
            "Consult_Receipts_Required_Since".to_owned(),
            "Consult_Receipts_Required_Since".to_owned(),
        ),
        (
            "consult-receipts-required-since".to_owned(),
            "consult-receipts-required-since".to_owned(),
        ),
        (
            "\"evil\\u001b[2Jname\"".to_owned(),
            "evil\\u{1b}[2Jname".to_owned(),
        ),
        (long.clone(), "a".repeat(64)),
    ] {
        let bytes =
            format!("{text}\n[federation_settings]\n{key} = 2027-01-01T00:00:00Z\n").into_bytes();
        let sig = sign_roster(&bytes, &f.authority);
        match verify_roster(&bytes, &sig, &TrustAnchor::default()) {
            Err(e @ RosterError::MalformedFederationSetting { .. }) => {
                let RosterError::MalformedFederationSetting { field } = &e else {
                    unreachable!()
                };
                assert!(field.chars().count() <= 64, "{field}");
                let message = e.to_string();
                assert!(message.contains(&shown), "{shown}: {message}");
                assert!(!message.contains('\u{1b}'), "{message:?}");
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    let bytes = format!("{text}\n[federation_settings]\nlater_rule_2 = 1\n").into_bytes();
    let sig = sign_roster(&bytes, &f.authority);
    let r = verify_roster(&bytes, &sig, &TrustAnchor::default()).unwrap();
    assert_eq!(r.settings_not_understood(), ["later_rule_2"]);
}

/// Review s35-roster L2: the hand-kept lists match the struct. A
/// `FederationSettings` with every field set serialises to exactly the names of
/// `KNOWN_FEDERATION_SETTINGS`, and every `*_required_since` among them is a
/// cut-over `cutovers()` returns (so the past-cut-over check and the auditor's rule
/// see it). A field added to the struct but not to the lists fails here.
#[test]
fn the_known_settings_and_cutovers_lists_match_the_struct() {
    use wlnode_crypto::roster::{FederationSettings, KNOWN_FEDERATION_SETTINGS, SilenceRule};
    let t = Timestamp(T0);
    // Every field named, so a new field does not compile here until it is set.
    let all = FederationSettings {
        consultation_silence: SilenceRule::Objection,
        consultation_min_deadline_secs: Some(60),
        mail_acks_required_since: Some(t),
        consult_receipts_required_since: Some(t),
        consult_refusal_terms_required_since: Some(t),
        consult_keyed_by_requester_since: Some(t),
        not_understood: Default::default(),
    };
    let value = toml::Value::try_from(&all).unwrap();
    let keys: std::collections::BTreeSet<&str> = value
        .as_table()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let known: std::collections::BTreeSet<&str> = KNOWN_FEDERATION_SETTINGS
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(keys, known);
    let cutovers: std::collections::BTreeSet<&str> =
        all.cutovers().into_iter().map(|(n, _)| n).collect();
    let required: std::collections::BTreeSet<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.ends_with("_required_since"))
        .collect();
    assert_eq!(cutovers, required);
    // `set_names` names every field set, and only those (final read of s36).
    let names = all.set_names();
    assert_eq!(
        names
            .iter()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        keys
    );
    let some = FederationSettings {
        consult_receipts_required_since: Some(t),
        not_understood: [("later_rule".to_owned(), toml::Value::Integer(1))].into(),
        ..FederationSettings::default()
    };
    assert_eq!(
        some.set_names().into_iter().collect::<Vec<_>>(),
        [
            "consult_receipts_required_since",
            "consultation_silence",
            "later_rule"
        ]
    );
}
