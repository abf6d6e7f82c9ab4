//! Sealed messages and receipts: a relay can verify but not read, the recipient can
//! read, and every way to forge, re-route, tamper or oversize is refused with its own
//! error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wlnode_crypto::keys::SecretKey;
use wlnode_crypto::mail::{
    BodyFormat, CopyIdentity, Draft, Envelope, MAX_BODY_BYTES, MAX_EXPIRY_MS, MAX_IDENTITY_BYTES,
    MAX_PLAINTEXT_BYTES, MailError, MailItem, Receipt,
};
use wlnode_crypto::model::{AgencyCode, CountryCode, MessageId};
use wlnode_crypto::roster::{
    Authority, EncryptionKeyWindow, KeyWindow, Member, Revocation, Role, Roster, RosterDoc,
    SilenceRule,
};
use wlnode_crypto::seal::EncryptionSecretKey;
use wlnode_crypto::time::Timestamp;
use wlnode_proto::Message;
use wlnode_proto::v1 as pb;

const T0: u64 = 1_780_000_000_000;
const DAY: u64 = 86_400_000;

struct Agency {
    code: AgencyCode,
    sign: SecretKey,
    enc: EncryptionSecretKey,
}

fn agency(code: &str, seed: u8) -> Agency {
    Agency {
        code: AgencyCode::new(code).unwrap(),
        sign: SecretKey::from_seed(&[seed; 32]),
        enc: EncryptionSecretKey::generate().unwrap(),
    }
}

fn roster(agencies: &[&Agency], silence: Option<SilenceRule>) -> Roster {
    let doc = RosterDoc {
        federation: "t".into(),
        version: 1,
        issued_at: Timestamp(T0),
        sensitivities: None,
        authorities: vec![Authority {
            key: SecretKey::from_seed(&[99; 32]).public_key(),
            name: "a".into(),
        }],
        members: agencies
            .iter()
            .map(|a| Member {
                agency: a.code.clone(),
                name: a.code.to_string(),
                country: CountryCode::new(&a.code.as_str()[..2]).unwrap(),
                role: Role::Member,
                groups: Default::default(),
                node_ids: vec![],
                keys: vec![KeyWindow {
                    key: a.sign.public_key(),
                    valid_from: Timestamp(0),
                    valid_until: None,
                }],
                revoked: vec![],
                encryption_keys: vec![EncryptionKeyWindow {
                    key: a.enc.public_key().unwrap(),
                    valid_from: Timestamp(0),
                    valid_until: None,
                }],
            })
            .collect(),
        federation_settings: silence.map(|s| wlnode_crypto::roster::FederationSettings {
            consultation_silence: s,
            consultation_min_deadline_secs: None,
            mail_acks_required_since: None,
            consult_receipts_required_since: None,
            consult_refusal_terms_required_since: None,
            not_understood: Default::default(),
            consult_keyed_by_requester_since: None,
        }),
    };
    Roster::parse(toml::to_string(&doc).unwrap().as_bytes()).unwrap()
}

fn draft<'a>(from: &Agency, to: &Agency, body: &'a [u8]) -> Draft<'a> {
    Draft {
        id: MessageId([7; 16]),
        from: from.code.clone(),
        to: to.code.clone(),
        kind: "consult.request",
        created_at: Timestamp(T0),
        expires_at: Timestamp(T0 + DAY),
        plaintext: body,
    }
}

#[test]
fn relay_verifies_recipient_opens_and_nobody_else_reads() {
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], None);
    let body = b"MARKER-details of the intended transaction";
    let env = Envelope::seal(
        &draft(&a, &b, body),
        &a.sign,
        &r.encryption_key(&b.code, Timestamp(T0)).unwrap(),
    )
    .unwrap();
    let wire = MailItem::Envelope(env.clone()).encode();
    assert!(
        !wire.windows(6).any(|w| w == b"MARKER"),
        "the clear text is not on the wire"
    );
    let MailItem::Envelope(back) = MailItem::decode(&wire).unwrap() else {
        panic!("not an envelope")
    };
    // The relay (C) checks the sender without any secret.
    back.verify(&r, Timestamp(T0 + 1)).unwrap();
    assert_eq!(back.header().to, b.code);
    assert_eq!(
        back.header().size as usize,
        wlnode_crypto::mail::padded_len(body.len()) + 16
    );
    // C cannot open it; B can.
    assert!(matches!(
        back.open(&c.enc),
        Err(MailError::NotOurKey { .. })
    ));
    assert_eq!(back.open(&b.enc).unwrap(), body);
    assert_eq!(r.silence_rule(), SilenceRule::NoObjection);
}

#[test]
fn forged_rerouted_tampered_and_expired_are_refused() {
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], Some(SilenceRule::Objection));
    assert_eq!(r.silence_rule(), SilenceRule::Objection);
    let bkey = r.encryption_key(&b.code, Timestamp(T0)).unwrap();
    // Signed by a key that is not A's.
    let forged = Envelope::seal(
        &draft(&a, &b, b"x"),
        &SecretKey::from_seed(&[50; 32]),
        &bkey,
    )
    .unwrap();
    let err = forged.verify(&r, Timestamp(T0)).unwrap_err();
    assert_eq!(err.code(), "forged", "{err}");
    // Re-routed by a relay: the header changed under the signature.
    let env = Envelope::seal(&draft(&a, &b, b"x"), &a.sign, &bkey).unwrap();
    assert_eq!(
        env.rerouted(c.code.clone()).verify(&r, Timestamp(T0)),
        Err(MailError::BadSignature)
    );
    // Body bytes changed.
    let mut p = pb::MailEnvelope::decode(env.encode().as_slice()).unwrap();
    let mut ct = p.ciphertext.to_vec();
    ct[0] ^= 1;
    p.ciphertext = ct.into();
    let tampered = Envelope::decode(&p.encode_to_vec()).unwrap();
    assert_eq!(
        tampered.verify(&r, Timestamp(T0)),
        Err(MailError::BadSignature)
    );
    // Expired, and from the future.
    assert!(matches!(
        env.verify(&r, Timestamp(T0 + DAY)),
        Err(MailError::Expired { .. })
    ));
    assert!(matches!(
        env.verify(&r, Timestamp(T0 - DAY)),
        Err(MailError::FromTheFuture { .. })
    ));
    // The hop count is outside the signature: a relay may raise it.
    env.next_hop().verify(&r, Timestamp(T0)).unwrap();
}

/// Review of issue 21 (minor): the sealed body's size (in the clear header and on
/// the wire) gave relays the exact content length. Bodies are now padded inside the
/// seal to size buckets: two small messages of different lengths look alike, and the
/// recipient still gets back exactly what was sealed (also a body ending in zeros or
/// in the marker byte, and one filling its bucket to the last byte).
#[test]
fn bodies_are_padded_to_size_buckets() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let bkey = r.encryption_key(&b.code, Timestamp(T0)).unwrap();
    let short = Envelope::seal(&draft(&a, &b, b"no"), &a.sign, &bkey).unwrap();
    let long_body = vec![b'y'; 700];
    let long = Envelope::seal(&draft(&a, &b, &long_body), &a.sign, &bkey).unwrap();
    assert_eq!(short.header().size, long.header().size);
    assert_eq!(short.encoded_len(), long.encoded_len());
    assert_eq!(short.header().size as usize, 1024 + 16);
    for body in [
        &b""[..],
        b"ends in zeros\0\0",
        b"ends in the marker\x80",
        &[0x80u8; 1023][..],
        &[7u8; 1024][..],
        &[0u8; 5000][..],
    ] {
        let env = Envelope::seal(&draft(&a, &b, body), &a.sign, &bkey).unwrap();
        assert_eq!(env.open(&b.enc).unwrap(), body, "len {}", body.len());
        assert!((env.header().size as usize - 16).is_power_of_two());
    }
    let biggest = vec![1u8; MAX_PLAINTEXT_BYTES];
    let env = Envelope::seal(&draft(&a, &b, &biggest), &a.sign, &bkey).unwrap();
    assert_eq!(env.header().size as usize, MAX_BODY_BYTES);
    assert_eq!(env.open(&b.enc).unwrap(), biggest);
}

#[test]
fn limits_are_enforced_on_seal_and_decode() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let bkey = r.encryption_key(&b.code, Timestamp(T0)).unwrap();
    let big = vec![0u8; MAX_PLAINTEXT_BYTES + 1];
    assert!(matches!(
        Envelope::seal(&draft(&a, &b, &big), &a.sign, &bkey),
        Err(MailError::TooLarge { .. })
    ));
    let mut d = draft(&a, &b, b"x");
    d.expires_at = Timestamp(T0 + MAX_EXPIRY_MS + 1);
    assert!(matches!(
        Envelope::seal(&d, &a.sign, &bkey),
        Err(MailError::BadExpiry { .. })
    ));
    // An oversized body on the wire is refused before any signature work.
    let env = Envelope::seal(&draft(&a, &b, b"x"), &a.sign, &bkey).unwrap();
    let mut p = pb::MailEnvelope::decode(env.encode().as_slice()).unwrap();
    p.ciphertext = vec![0u8; MAX_BODY_BYTES + 1].into();
    let err = Envelope::decode(&p.encode_to_vec()).unwrap_err();
    assert_eq!(err.code(), "oversized", "{err}");
    // Garbage never panics.
    for junk in [&b""[..], b"\xff\xff\xff", b"\x0a\x05abc"] {
        assert!(MailItem::decode(junk).is_err());
        assert!(Receipt::decode(junk).is_err());
    }
}

#[test]
fn receipt_is_signed_by_the_recipient() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let env = Envelope::seal(
        &draft(&a, &b, b"x"),
        &a.sign,
        &r.encryption_key(&b.code, Timestamp(T0)).unwrap(),
    )
    .unwrap();
    let receipt = Receipt::sign(env.header(), &b.sign, Timestamp(T0 + 5));
    let MailItem::Receipt(back) = MailItem::decode(&MailItem::Receipt(receipt).encode()).unwrap()
    else {
        panic!("not a receipt")
    };
    back.verify(&r, Timestamp(T0 + 5)).unwrap();
    assert_eq!(back.body().message_id, env.header().id);
    assert_eq!(back.body().sender, a.code);
    // A receipt signed by someone else than the recipient is refused.
    let fake = Receipt::sign(env.header(), &a.sign, Timestamp(T0 + 5));
    assert!(fake.verify(&r, Timestamp(T0 + 5)).is_err());
}

#[test]
fn rotation_seals_to_the_newest_valid_key() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let new = EncryptionSecretKey::generate().unwrap();
    let mut doc = roster(&[&a, &b], None).doc().clone();
    let m = doc.members.iter_mut().find(|m| m.agency == b.code).unwrap();
    m.encryption_keys[0].valid_until = Some(Timestamp(T0 + DAY));
    m.encryption_keys.push(EncryptionKeyWindow {
        key: new.public_key().unwrap(),
        valid_from: Timestamp(T0),
        valid_until: None,
    });
    let r = Roster::parse(toml::to_string(&doc).unwrap().as_bytes()).unwrap();
    assert_eq!(
        r.encryption_key(&b.code, Timestamp(T0 + 1)).unwrap(),
        new.public_key().unwrap()
    );
    assert_eq!(
        r.encryption_key(&b.code, Timestamp(T0 - 1)).unwrap(),
        b.enc.public_key().unwrap()
    );
    // A message sealed to the old key while it was valid still verifies.
    let mut d = draft(&a, &b, b"x");
    d.created_at = Timestamp(T0 - 10);
    let env = Envelope::seal(&d, &a.sign, &b.enc.public_key().unwrap()).unwrap();
    env.verify(&r, Timestamp(T0)).unwrap();
    assert!(r.members_without_encryption_key(Timestamp(T0)).is_empty());
}

/// Review of issue 21, HIGH 4: a receipt's sender and time were not checked, so a
/// member could sign receipts naming any sender and a far-future time, which every
/// relay then held (and remembered) for ever.
#[test]
fn receipt_naming_an_outsider_or_a_time_out_of_window_is_refused() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let now = Timestamp(T0 + 5);
    let outsider = agency("ZZ-X", 9);
    let env = Envelope::seal(
        &draft(&outsider, &b, b"x"),
        &outsider.sign,
        &b.enc.public_key().unwrap(),
    )
    .unwrap();
    let to_outsider = Receipt::sign(env.header(), &b.sign, now);
    assert!(matches!(
        to_outsider.verify(&r, now),
        Err(MailError::NotAMember {
            field: "sender",
            ..
        })
    ));
    let env = Envelope::seal(&draft(&a, &b, b"x"), &a.sign, &b.enc.public_key().unwrap()).unwrap();
    let future = Receipt::sign(env.header(), &b.sign, Timestamp(u64::MAX / 2));
    assert!(matches!(
        future.verify(&r, now),
        Err(MailError::ReceiptTime { .. })
    ));
    let ancient = Receipt::sign(env.header(), &b.sign, Timestamp(T0 - MAX_EXPIRY_MS - DAY));
    assert!(matches!(
        ancient.verify(&r, now),
        Err(MailError::ReceiptTime { .. })
    ));
    // Within the clock skew it is fine.
    Receipt::sign(env.header(), &b.sign, Timestamp(T0 + 60_000))
        .verify(&r, now)
        .unwrap();
    // And it is for that message only.
    let receipt = Receipt::sign(env.header(), &b.sign, now);
    assert!(receipt.is_for(env.header()));
    let other =
        Envelope::seal(&draft(&b, &a, b"x"), &b.sign, &a.enc.public_key().unwrap()).unwrap();
    assert!(!receipt.is_for(other.header()));
}

/// Review of issue 21, finding 6: a revoked key signed mail and receipts by claiming a
/// creation time before the revocation.
#[test]
fn revoked_key_is_refused_whatever_time_the_mail_claims() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let mut doc = roster(&[&a, &b], None).doc().clone();
    for m in &mut doc.members {
        m.revoked = vec![Revocation {
            key: SecretKey::from_seed(&[if m.agency == a.code { 1 } else { 2 }; 32]).public_key(),
            revoked_at: Timestamp(T0 + DAY / 4),
            reason: "stolen".into(),
            keep: Default::default(),
        }];
    }
    let r = Roster::parse(toml::to_string(&doc).unwrap().as_bytes()).unwrap();
    // Backdated to before the revocation.
    let env = Envelope::seal(&draft(&a, &b, b"x"), &a.sign, &b.enc.public_key().unwrap()).unwrap();
    let now = Timestamp(T0 + DAY / 2);
    assert!(matches!(
        env.verify(&r, now),
        Err(MailError::RevokedSigner { .. })
    ));
    let receipt = Receipt::sign(env.header(), &b.sign, Timestamp(T0 + 1));
    assert!(matches!(
        receipt.verify(&r, now),
        Err(MailError::RevokedSigner { .. })
    ));
}

/// The roster's shortest consultation deadline: one day unless the authority signed a
/// lower one (the demo federation does), never below one second.
#[test]
fn the_roster_sets_the_shortest_consultation_deadline() {
    let a = agency("AA-X", 1);
    let r = roster(&[&a], Some(SilenceRule::Objection));
    assert_eq!(r.consultation_min_deadline_secs(), 86_400);
    let with = |set: u64| {
        let mut doc = r.doc().clone();
        if let Some(s) = doc.federation_settings.as_mut() {
            s.consultation_min_deadline_secs = Some(set);
        }
        Roster::parse(toml::to_string(&doc).unwrap().as_bytes())
    };
    assert_eq!(with(5).unwrap().consultation_min_deadline_secs(), 5);
    assert_eq!(
        with(365 * 86_400).unwrap().consultation_min_deadline_secs(),
        365 * 86_400
    );
    // Review s30-consult2 L2: out of 1 s..365 days is refused, naming the field.
    for bad in [0, 365 * 86_400 + 1] {
        let e = with(bad).unwrap_err();
        assert!(
            e.to_string().contains("consultation_min_deadline_secs"),
            "{e}"
        );
    }
}

/// Review s30-consult2, M5: the padding changed the sealed body's format under the
/// same HPKE label, so a body from an older build opened as "malformed" (a strike
/// against its sender). Padded bodies are now sealed under `wlnode/mail-seal/v2`; an
/// unpadded one under the old label is recognised and refused as `legacy_body`.
#[test]
fn a_body_of_the_older_unpadded_format_is_recognised_as_such() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let bkey = r.encryption_key(&b.code, Timestamp(T0)).unwrap();
    let body = b"sealed by an older build";
    let old = Envelope::seal_raw(
        &draft(&a, &b, body),
        &a.sign,
        &bkey,
        body,
        BodyFormat::Unpadded,
    )
    .unwrap();
    old.verify(&r, Timestamp(T0 + 1)).unwrap();
    let err = old.open(&b.enc).unwrap_err();
    assert_eq!(err, MailError::LegacyBody);
    assert_eq!(err.code(), "legacy_body");
    // The same bytes padded as today, but under the old label, are legacy too; under
    // the new label they open.
    let mut padded = body.to_vec();
    padded.push(0x80);
    padded.resize(wlnode_crypto::mail::padded_len(body.len()), 0);
    let d = draft(&a, &b, body);
    let v1 = Envelope::seal_raw(&d, &a.sign, &bkey, &padded, BodyFormat::Unpadded).unwrap();
    assert_eq!(v1.open(&b.enc), Err(MailError::LegacyBody));
    let v2 = Envelope::seal_raw(&d, &a.sign, &bkey, &padded, BodyFormat::Padded).unwrap();
    assert_eq!(v2.open(&b.enc).unwrap(), body);
}

/// Review s30-consult2, L1: unpadding took any marker followed by zeros, so one
/// content had many encodings (a sender could choose a bigger bucket, or a length no
/// bucket has). Now the padded length must be `padded_len` of the content.
#[test]
fn non_canonical_padding_is_refused() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let bkey = r.encryption_key(&b.code, Timestamp(T0)).unwrap();
    let body = b"short";
    let d = draft(&a, &b, body);
    for total in [body.len() + 1, 1500, 2048, 1023] {
        let mut padded = body.to_vec();
        padded.push(0x80);
        padded.resize(total, 0);
        let env = Envelope::seal_raw(&d, &a.sign, &bkey, &padded, BodyFormat::Padded).unwrap();
        assert!(
            matches!(
                env.open(&b.enc),
                Err(MailError::Malformed { field: "body", .. })
            ),
            "padded to {total}"
        );
    }
    // No marker at all.
    let env = Envelope::seal_raw(&d, &a.sign, &bkey, &[0u8; 1024], BodyFormat::Padded).unwrap();
    assert!(matches!(env.open(&b.enc), Err(MailError::Malformed { .. })));
}

/// Issue 21, signed hand-over acks: the next hop's answer is signed in its own
/// context and binds the item, both hops, the outcome and the time; a signature made
/// for anything else (a receipt, another item, another signer) does not pass, and a
/// flipped `accepted` is caught.
#[test]
fn hand_over_acks_are_signed_bound_and_domain_separated() {
    use wlnode_crypto::keys::context;
    use wlnode_crypto::mail::{AckFit, MailAck};
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], None);
    let env = Envelope::seal(
        &draft(&a, &c, b"x"),
        &a.sign,
        &r.encryption_key(&c.code, Timestamp(T0)).unwrap(),
    )
    .unwrap();
    let item = MailItem::Envelope(env.clone());
    let at = Timestamp(T0 + 5);
    // B took A's hand-over.
    let ack = MailAck::sign(Some(&item), Some(&a.code), &b.code, true, "ok", at, &b.sign);
    let back = MailAck::decode(&ack.encode()).unwrap();
    assert_eq!(back, ack);
    back.verify(&r, &b.code).unwrap();
    assert_eq!(back.fit(&item, &a.code), AckFit::Exact);
    // The same copy one hop further: the identity is the same, but the ack signs the
    // hop count it took, so it does not fit (review s31-fixes X1).
    assert_eq!(
        MailItem::Envelope(env.next_hop()).identity_digest(),
        item.identity_digest()
    );
    assert_eq!(
        back.fit(&MailItem::Envelope(env.next_hop()), &a.code),
        AckFit::Mismatch
    );
    assert_eq!(back.body().hops, Some(env.hops()));
    assert_eq!(MailAck::from_hex(&ack.to_hex()).unwrap(), ack);
    // Bound to the handing agency and the item.
    assert_eq!(back.fit(&item, &c.code), AckFit::Mismatch);
    let other = Envelope::seal(
        &Draft {
            id: MessageId([8; 16]),
            ..draft(&a, &c, b"x")
        },
        &a.sign,
        &r.encryption_key(&c.code, Timestamp(T0)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        back.fit(&MailItem::Envelope(other), &a.code),
        AckFit::Mismatch
    );
    // Signed by B, claimed as C's: refused.
    assert!(back.verify(&r, &c.code).is_err());
    // Signed with a key the roster does not give B.
    let forged = MailAck::sign(
        Some(&item),
        Some(&a.code),
        &b.code,
        true,
        "ok",
        at,
        &SecretKey::from_seed(&[42; 32]),
    );
    assert!(matches!(
        MailAck::decode(&forged.encode())
            .unwrap()
            .verify(&r, &b.code),
        Err(MailError::Signer(_))
    ));
    // `accepted` flipped on the decoded value without re-signing.
    let mut flipped = back.clone();
    flipped.accepted = false;
    assert_eq!(flipped.verify(&r, &b.code), Err(MailError::BadSignature));
    // The same body signed in the receipt context does not verify as an ack.
    let body = pb::MailResponse::decode(ack.encode().as_slice())
        .unwrap()
        .body;
    let wrong_ctx = pb::MailResponse {
        body: body.clone(),
        signature: b
            .sign
            .sign(context::RECEIPT, &body)
            .as_bytes()
            .to_vec()
            .into(),
    }
    .encode_to_vec();
    assert_eq!(
        MailAck::decode(&wrong_ctx).unwrap().verify(&r, &b.code),
        Err(MailError::BadSignature)
    );
    // The unsigned answer of `/wlnode/mail/2` does not decode as an ack.
    assert!(MailAck::decode(&[0x08, 0x01, 0x12, 0x02, b'o', b'k']).is_err());
    // A refusal that could name neither the item nor the hand-over's sender is a
    // refusal without evidence; a custody claim that names nothing is a mismatch.
    let anon = MailAck::sign(None, None, &b.code, false, "not_in_roster", at, &b.sign);
    assert_eq!(anon.fit(&item, &a.code), AckFit::Anonymous);
    let anon_custody = MailAck::sign(None, None, &b.code, true, "ok", at, &b.sign);
    assert_eq!(anon_custody.fit(&item, &a.code), AckFit::Mismatch);
    // Refusals bind the same way.
    let no = MailAck::sign(
        Some(&item),
        Some(&a.code),
        &b.code,
        false,
        "full",
        at,
        &b.sign,
    );
    let no = MailAck::decode(&no.encode()).unwrap();
    no.verify(&r, &b.code).unwrap();
    assert_eq!((no.accepted, no.reason.as_str()), (false, "full"));
    assert_eq!(no.fit(&item, &a.code), AckFit::Exact);
}

/// Review s31-fixes X1: a `/wlnode/mail/4` answer signs the hop count of the copy it
/// answers; a `/wlnode/mail/3` answer (no count, as old audit logs hold them) still
/// decodes and verifies, fits an audit event's fields, but is no answer to a copy
/// handed now (the count is required on the wire).
#[test]
fn hand_over_acks_sign_the_hop_count_and_older_acks_stay_readable() {
    use wlnode_crypto::mail::{AckFit, HandoverBody, MailAck};
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], None);
    let env = Envelope::seal(
        &draft(&a, &c, b"x"),
        &a.sign,
        &r.encryption_key(&c.code, Timestamp(T0)).unwrap(),
    )
    .unwrap()
    .next_hop()
    .next_hop();
    let item = MailItem::Envelope(env.clone());
    let at = Timestamp(T0 + 5);
    let ack = MailAck::sign(Some(&item), Some(&a.code), &b.code, true, "ok", at, &b.sign);
    assert_eq!(ack.body().hops, Some(2));
    let back = MailAck::decode(&ack.encode()).unwrap();
    back.verify(&r, &b.code).unwrap();
    assert_eq!(back.body().hops, Some(2));
    assert_eq!(back.fit(&item, &a.code), AckFit::Exact);
    let old = MailAck::sign_body(
        HandoverBody {
            hops: None,
            addressee: None,
            ..ack.body().clone()
        },
        &b.sign,
    );
    let old = MailAck::from_hex(&old.to_hex()).unwrap();
    old.verify(&r, &b.code).unwrap();
    assert_eq!(old.body().hops, None);
    assert_eq!(old.fit(&item, &a.code), AckFit::Mismatch);
    assert_eq!(
        old.fit_fields(&env.header().id, "message", None, None, &a.code),
        AckFit::Exact
    );
}

/// Review s32-mail H1, L1 (`/wlnode/mail/5`): the handing agency signs an offer of the
/// copy it hands (id, digest, hop count, from, to, time) in its own context; it
/// travels in the request frame beside the item, verifies only as its signer's and
/// only for that copy and neighbour, and no other signature verifies as one (nor it
/// as an ack). A frame without an offer (`/wlnode/mail/4`) still decodes. The answer
/// signs the item's addressee; an older answer without it still verifies.
#[test]
fn hand_over_offers_are_signed_in_their_own_context_and_answers_sign_the_addressee() {
    use wlnode_crypto::keys::context;
    use wlnode_crypto::mail::{HandoverBody, HandoverOffer, MailAck};
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], None);
    let env = Envelope::seal(
        &draft(&a, &c, b"x"),
        &a.sign,
        &r.encryption_key(&c.code, Timestamp(T0)).unwrap(),
    )
    .unwrap()
    .next_hop();
    let item = MailItem::Envelope(env.clone());
    let at = Timestamp(T0 + 5);
    let offer = HandoverOffer::sign(&item, &b.code, &a.code, at, &b.sign);
    let frame = item.encode_offered(&offer);
    let (back, got) = MailItem::decode_offered(&frame).unwrap();
    assert_eq!(back, item);
    let got = got.unwrap().unwrap();
    assert_eq!(got, offer);
    got.verify(&r, &b.code).unwrap();
    assert!(got.fits(&item, &a.code));
    assert!(!got.fits(&item, &c.code), "offered to another neighbour");
    assert!(
        !got.fits(&MailItem::Envelope(env.next_hop()), &a.code),
        "another count"
    );
    assert!(
        got.verify(&r, &a.code).is_err(),
        "offered by another agency"
    );
    assert_eq!(HandoverOffer::from_hex(&got.to_hex()).unwrap(), got);
    assert_eq!(got.verify_as_evidence(&r, &b.code).unwrap(), None);
    // Signed with another member's key: refused.
    let forged = HandoverOffer::sign_body(offer.body().clone(), &c.sign);
    assert!(forged.verify(&r, &b.code).is_err());
    // The same body bytes signed in another context do not verify as an offer.
    let pb_offer = pb::MailOffer::decode(offer.encode().as_slice()).unwrap();
    for other in [
        context::HANDOVER,
        context::MAIL,
        context::RECEIPT,
        context::CHECKPOINT,
    ] {
        assert_ne!(other, context::HANDOVER_OFFER);
        let wrong = pb::MailOffer {
            body: pb_offer.body.clone(),
            signature: b
                .sign
                .sign(other, &pb_offer.body)
                .as_bytes()
                .to_vec()
                .into(),
        };
        let wrong = HandoverOffer::decode(&wrong.encode_to_vec()).unwrap();
        assert!(wrong.verify(&r, &b.code).is_err());
    }
    // An offer's signature is no hand-over answer.
    let as_ack = pb::MailResponse {
        body: pb_offer.body.clone(),
        signature: pb_offer.signature.clone(),
    };
    if let Ok(ack) = MailAck::decode(&as_ack.encode_to_vec()) {
        assert!(ack.verify(&r, &b.code).is_err());
    }
    // A `/wlnode/mail/4` frame: the item, no offer.
    let (old, none) = MailItem::decode_offered(&item.encode()).unwrap();
    assert_eq!(old, item);
    assert!(none.is_none());
    // The answer signs the addressee; one without it (an older build's) still verifies.
    let ack = MailAck::sign(
        Some(&item),
        Some(&b.code),
        &a.code,
        false,
        "full",
        at,
        &a.sign,
    );
    assert_eq!(ack.body().addressee.as_ref(), Some(&c.code));
    let back = MailAck::decode(&ack.encode()).unwrap();
    back.verify(&r, &a.code).unwrap();
    assert_eq!(back.body().addressee.as_ref(), Some(&c.code));
    let old = MailAck::sign_body(
        HandoverBody {
            addressee: None,
            ..ack.body().clone()
        },
        &a.sign,
    );
    let old = MailAck::decode(&old.encode()).unwrap();
    old.verify(&r, &a.code).unwrap();
    assert_eq!(old.body().addressee, None);
}

/// Review s33-mail H3: an answer that signs another addressee than the item's, or
/// none, does not fit a hand-over of that item (the handing node takes it as a bad
/// ack): a relay can no longer sign any addressee in its custody ack to steer the
/// audit. One signing the item's addressee fits.
#[test]
fn an_answer_signing_another_addressee_does_not_fit() {
    use wlnode_crypto::mail::{AckFit, HandoverBody, MailAck};
    let (a, b, c) = (agency("AA-X", 1), agency("BB-X", 2), agency("CC-X", 3));
    let r = roster(&[&a, &b, &c], None);
    let env = Envelope::seal(
        &draft(&a, &c, b"x"),
        &a.sign,
        &r.encryption_key(&c.code, Timestamp(T0)).unwrap(),
    )
    .unwrap()
    .next_hop();
    let item = MailItem::Envelope(env);
    let at = Timestamp(T0 + 5);
    let ack = MailAck::sign(Some(&item), Some(&a.code), &b.code, true, "ok", at, &b.sign);
    assert_eq!(ack.body().addressee.as_ref(), Some(&c.code));
    assert_eq!(ack.fit(&item, &a.code), AckFit::Exact);
    for addressee in [Some(b.code.clone()), None] {
        let steered = MailAck::sign_body(
            HandoverBody {
                addressee,
                ..ack.body().clone()
            },
            &b.sign,
        );
        steered.verify(&r, &b.code).unwrap();
        assert_eq!(steered.fit(&item, &a.code), AckFit::Mismatch);
    }
}

/// A copy's identity bytes read back give its header (the expiry an auditor judges a
/// relay by) and the digest a custody ack signs; they carry no body; anything else
/// (truncated, too long, a header that fails its checks) is a typed error.
#[test]
fn a_copys_identity_reads_back_to_its_header_and_signed_digest() {
    let (a, b) = (agency("AA-X", 1), agency("BB-X", 2));
    let r = roster(&[&a, &b], None);
    let body = b"MARKER-details of the intended transaction";
    let env = Envelope::seal(
        &draft(&a, &b, body),
        &a.sign,
        &r.encryption_key(&b.code, Timestamp(T0)).unwrap(),
    )
    .unwrap();
    let bytes = env.next_hop().identity().unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"MARKER"), "metadata only");
    assert!(bytes.len() <= MAX_IDENTITY_BYTES);
    let id = CopyIdentity::parse(&bytes).unwrap();
    assert_eq!(&id.header, env.header());
    assert_eq!(id.header.expires_at, Timestamp(T0 + DAY));
    assert_eq!(id.digest, env.identity_digest());
    assert_eq!(id.digest, MailItem::Envelope(env.clone()).identity_digest());
    // Another signature is another copy: same header, another digest.
    let mut other = bytes.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    let o = CopyIdentity::parse(&other).unwrap();
    assert_eq!(o.header, id.header);
    assert_ne!(o.digest, id.digest);
    // Bad bytes are typed errors, never a panic.
    assert!(matches!(
        CopyIdentity::parse(&bytes[..63]),
        Err(MailError::Malformed { .. })
    ));
    assert!(CopyIdentity::parse(&bytes[..bytes.len() - 65]).is_err());
    assert!(CopyIdentity::parse(&[0xff; 200]).is_err());
    assert!(matches!(
        CopyIdentity::parse(&vec![0; MAX_IDENTITY_BYTES + 1]),
        Err(MailError::TooLarge { .. })
    ));
}
