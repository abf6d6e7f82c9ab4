//! The mailer driven without sockets: three and four agencies passing items by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use wlnode_crypto::SecretKey;
use wlnode_crypto::mail::Draft;
use wlnode_crypto::seal::EncryptionSecretKey;

const T0: u64 = 1_780_000_000_000;
const HOUR: u64 = 3_600_000;

fn code(s: &str) -> AgencyCode {
    AgencyCode::new(s).unwrap()
}

fn envelope(id: u8, from: &str, to: &str, body: &[u8], key: &SecretKey) -> Envelope {
    let enc = EncryptionSecretKey::generate().unwrap();
    Envelope::seal(
        &Draft {
            id: MessageId([id; 16]),
            from: code(from),
            to: code(to),
            kind: "test",
            created_at: Timestamp(T0),
            expires_at: Timestamp(T0 + HOUR),
            plaintext: body,
        },
        key,
        &enc.public_key().unwrap(),
    )
    .unwrap()
}

fn set(codes: &[&str]) -> BTreeSet<AgencyCode> {
    codes.iter().map(|c| code(c)).collect()
}

fn t(ms: u64) -> Timestamp {
    Timestamp(T0 + ms)
}

/// Hands every send of `from` to its target mailer and reports the intakes.
fn deliver(
    from_code: &str,
    sends: Vec<Send>,
    nodes: &mut BTreeMap<String, Mailer>,
    now: Timestamp,
) -> Vec<(String, Intake)> {
    let mut out = Vec::new();
    for s in sends {
        let item = MailItem::decode(&s.frame).unwrap();
        let target = nodes.get_mut(s.to.as_str()).unwrap();
        let intake = target.on_item(&code(from_code), item, now);
        let sender = nodes.get_mut(from_code).unwrap();
        if let Intake::Refused(r) = &intake {
            // A refusal is a signed answer.
            sender.on_hand_refused(&s.to, &s.key, s.ticket, r.code());
        } else {
            sender.on_handed(&s.to, &s.key, s.ticket);
        }
        out.push((s.to.to_string(), intake));
    }
    out
}

/// The end of the hand-over of an item to a neighbour that is in flight now (the
/// tests that keep no [`Send`]): with none in flight, a ticket no request has, whose
/// end changes nothing (as a late end of a request already counted as a miss).
trait Ends {
    fn ticket(&self, peer: &str, key: &ItemKey) -> Ticket;
    /// The hand-over failed with no signed answer.
    fn fail(&mut self, peer: &str, key: &ItemKey);
    /// The neighbour took it (or had it).
    fn took(&mut self, peer: &str, key: &ItemKey);
    /// The neighbour refused it with a signed refusal.
    fn refuse(&mut self, peer: &str, key: &ItemKey, reason: &str);
}

impl Ends for Mailer {
    fn ticket(&self, peer: &str, key: &ItemKey) -> Ticket {
        self.held
            .get(key)
            .and_then(|h| h.in_flight.get(&code(peer)))
            .map_or(Ticket(u64::MAX), |f| f.ticket)
    }

    fn fail(&mut self, peer: &str, key: &ItemKey) {
        // A failure of nothing in flight would change nothing and assert less than
        // the test reads (s37 final review L6).
        assert!(
            self.held
                .get(key)
                .is_some_and(|h| h.in_flight.contains_key(&code(peer))),
            "no hand-over to {peer} in flight"
        );
        let ticket = self.ticket(peer, key);
        self.on_hand_failed(&code(peer), key, ticket);
    }

    fn took(&mut self, peer: &str, key: &ItemKey) {
        let ticket = self.ticket(peer, key);
        self.on_handed(&code(peer), key, ticket);
    }

    fn refuse(&mut self, peer: &str, key: &ItemKey, reason: &str) {
        let ticket = self.ticket(peer, key);
        self.on_hand_refused(&code(peer), key, ticket, reason);
    }
}

fn nodes(codes: &[&str]) -> BTreeMap<String, Mailer> {
    codes
        .iter()
        .map(|c| (c.to_string(), Mailer::new(code(c), MailLimits::default())))
        .collect()
}

#[test]
fn relay_delivers_and_the_receipt_comes_back_the_same_way() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut n = nodes(&["AA-X", "RR-X", "BB-X"]);
    let env = envelope(1, "AA-X", "BB-X", b"hello", &a_key);
    n.get_mut("AA-X").unwrap().send(env.clone(), t(0)).unwrap();
    // A knows only R.
    let (sends, _) = n.get_mut("AA-X").unwrap().poll(&set(&["RR-X"]), t(1));
    assert_eq!(sends.len(), 1);
    let got = deliver("AA-X", sends, &mut n, t(1));
    assert_eq!(got, vec![("RR-X".into(), Intake::Relay)]);
    // Nothing more to send until a retry is due.
    assert!(
        n.get_mut("AA-X")
            .unwrap()
            .poll(&set(&["RR-X"]), t(2))
            .0
            .is_empty()
    );
    // R is connected to A and B: it goes straight to B, not back to A.
    let (sends, _) = n
        .get_mut("RR-X")
        .unwrap()
        .poll(&set(&["AA-X", "BB-X"]), t(3));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, code("BB-X"));
    assert_eq!(
        MailItem::decode(&sends[0].frame).map(|i| match i {
            MailItem::Envelope(e) => e.hops(),
            MailItem::Receipt(_) => 99,
        }),
        Ok(1)
    );
    let got = deliver("RR-X", sends, &mut n, t(3));
    let Intake::Deliver(delivered) = &got[0].1 else {
        panic!("{got:?}")
    };
    assert_eq!(delivered.header().id, env.header().id);
    // R handed it to its addressee: done there.
    assert_eq!(n["RR-X"].held_len(), 0);
    let receipt = Receipt::sign(delivered.header(), &b_key, t(4));
    let b = n.get_mut("BB-X").unwrap();
    b.on_delivered(delivered, receipt.clone(), t(4));
    // A duplicate is dropped (and its receipt re-sent by the caller).
    assert_eq!(
        b.on_item(&code("RR-X"), MailItem::Envelope(env.clone()), t(5)),
        Intake::Duplicate
    );
    let (sends, _) = b.poll(&set(&["RR-X"]), t(5));
    assert_eq!(sends.len(), 1);
    assert_eq!(deliver("BB-X", sends, &mut n, t(5))[0].1, Intake::Relay);
    let (sends, _) = n
        .get_mut("RR-X")
        .unwrap()
        .poll(&set(&["AA-X", "BB-X"]), t(6));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, code("AA-X"));
    let got = deliver("RR-X", sends, &mut n, t(6));
    assert!(matches!(got[0].1, Intake::Receipt(_)), "{got:?}");
    assert!(!n["AA-X"].is_pending(&env.header().id));
    assert_eq!(n["AA-X"].held_len(), 0);
    assert_eq!(n["RR-X"].held_len(), 0);
}

#[test]
fn loops_end_at_seen_ids_and_hop_limits() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    // A ring of relays, the recipient nowhere.
    let mut n = nodes(&["AA-X", "R1-X", "R2-X", "R3-X"]);
    n.get_mut("AA-X")
        .unwrap()
        .send(envelope(2, "AA-X", "ZZ-X", b"x", &a_key), t(0))
        .unwrap();
    let links: BTreeMap<&str, Vec<&str>> = [
        ("AA-X", vec!["R1-X", "R3-X"]),
        ("R1-X", vec!["AA-X", "R2-X"]),
        ("R2-X", vec!["R1-X", "R3-X"]),
        ("R3-X", vec!["R2-X", "AA-X"]),
    ]
    .into();
    let mut moved = 0;
    for round in 0..10 {
        for (from, to) in &links {
            let (sends, _) = n.get_mut(*from).unwrap().poll(&set(to), t(round));
            moved += sends.len();
            deliver(from, sends, &mut n, t(round));
        }
    }
    // Every node took it once and offered it to each neighbour at most once.
    assert!(moved <= 8, "{moved} hand-overs");
    for r in ["R1-X", "R2-X", "R3-X"] {
        assert_eq!(n[r].held_len(), 1, "{r} holds it for later");
    }
    // Past the hop limit: refused.
    let mut far = envelope(3, "AA-X", "ZZ-X", b"x", &a_key);
    for _ in 0..=MailLimits::default().max_hops {
        far = far.next_hop();
    }
    assert_eq!(
        n.get_mut("R1-X")
            .unwrap()
            .on_item(&code("AA-X"), MailItem::Envelope(far), t(0)),
        Intake::Refused(Refusal::TooManyHops)
    );
}

/// Review s31-mail H3: a relay does not take custody of an item already at the hop
/// limit (it could never hand it on, and would be blamed for sitting on it); the
/// addressee still takes it, and one hop less is still relayed.
#[test]
fn a_relay_refuses_custody_at_the_hop_limit_and_the_addressee_takes_it() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let mut n = nodes(&["AA-X", "R1-X", "ZZ-X"]);
    let max = MailLimits::default().max_hops;
    let at = |id: u8, to: &str, hops: u32| {
        let mut e = envelope(id, "AA-X", to, b"x", &a_key);
        for _ in 0..hops {
            e = e.next_hop();
        }
        MailItem::Envelope(e)
    };
    let r1 = n.get_mut("R1-X").unwrap();
    assert_eq!(
        r1.on_item(&code("AA-X"), at(4, "ZZ-X", max), t(0)),
        Intake::Refused(Refusal::TooManyHops)
    );
    assert_eq!(r1.held_len(), 0);
    assert_eq!(
        r1.on_item(&code("AA-X"), at(5, "ZZ-X", max - 1), t(0)),
        Intake::Relay
    );
    let zz = n.get_mut("ZZ-X").unwrap();
    assert!(matches!(
        zz.on_item(&code("R1-X"), at(4, "ZZ-X", max), t(0)),
        Intake::Deliver(_)
    ));
}

#[test]
fn replays_expiry_and_quota_are_refused() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(
        code("RR-X"),
        MailLimits {
            per_peer_items: 2,
            ..MailLimits::default()
        },
    );
    let a = code("AA-X");
    assert_eq!(
        r.on_item(
            &a,
            MailItem::Envelope(envelope(1, "AA-X", "BB-X", b"x", &a_key)),
            t(0)
        ),
        Intake::Relay
    );
    // The same id with other content.
    let replay = MailItem::Envelope(envelope(1, "AA-X", "BB-X", b"other", &a_key));
    assert_eq!(
        r.on_item(&a, replay, t(0)),
        Intake::Refused(Refusal::Replayed { by_author: true })
    );
    assert!(Refusal::Replayed { by_author: true }.strikes());
    // Expired on arrival.
    let old = MailItem::Envelope(envelope(2, "AA-X", "BB-X", b"x", &a_key));
    assert_eq!(
        r.on_item(&a, old, t(2 * HOUR)),
        Intake::Refused(Refusal::Expired)
    );
    // Quota: two items per peer.
    assert_eq!(
        r.on_item(
            &a,
            MailItem::Envelope(envelope(3, "AA-X", "BB-X", b"x", &a_key)),
            t(0)
        ),
        Intake::Relay
    );
    assert_eq!(
        r.on_item(
            &a,
            MailItem::Envelope(envelope(4, "AA-X", "BB-X", b"x", &a_key)),
            t(0)
        ),
        Intake::Refused(Refusal::Quota)
    );
    assert!(!Refusal::Quota.strikes());
    // Others are still served.
    assert_eq!(
        r.on_item(
            &code("CC-X"),
            MailItem::Envelope(envelope(5, "AA-X", "BB-X", b"x", &a_key)),
            t(0)
        ),
        Intake::Relay
    );
}

#[test]
fn outbox_survives_restart_retries_and_expires() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let mut a = Mailer::new(code("AA-X"), MailLimits::default());
    let env = envelope(9, "AA-X", "BB-X", b"x", &a_key);
    a.send(env.clone(), t(0)).unwrap();
    let writes = a.take_writes();
    assert_eq!(
        writes.len(),
        3,
        "the held item, its place in the custody order and its seen id"
    );
    let mut back = Mailer::new(code("AA-X"), MailLimits::default());
    let bad = back.restore(
        writes
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .chain([(b"qmjunk".to_vec(), b"\x05ab".to_vec())])
            .collect(),
    );
    assert_eq!(bad, vec![b"qmjunk".to_vec()]);
    assert!(back.is_pending(&env.header().id));
    // Offered, refused, retried after the backoff.
    let (sends, _) = back.poll(&set(&["RR-X"]), t(1));
    assert_eq!(sends.len(), 1);
    back.fail("RR-X", &sends[0].key);
    assert!(back.poll(&set(&["RR-X"]), t(2)).0.is_empty());
    back.retry(t(3));
    assert_eq!(back.poll(&set(&["RR-X"]), t(3)).0.len(), 1);
    // Expiry: given up, reported, deleted from the store.
    let (_, events) = back.poll(&set(&[]), t(HOUR));
    assert!(
        matches!(&events[..], [MailEvent::Expired { id, header }]
            if *id == env.header().id && header.to == code("BB-X")),
        "{events:?}"
    );
    assert!(!back.is_pending(&env.header().id));
    assert!(
        back.take_writes()
            .iter()
            .any(|(k, v)| k[0] == HELD && v.is_none())
    );
}

/// Review of issue 21, HIGH 1: a relay signed a receipt for someone else's message
/// (its own agency as recipient) and the sender took it as delivery, and relays
/// dropped their copy.
#[test]
fn a_receipt_not_signed_by_the_recipient_is_refused_and_the_message_kept() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let m_key = SecretKey::from_seed(&[3; 32]);
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut n = nodes(&["AA-X", "RR-X", "BB-X"]);
    let env = envelope(1, "AA-X", "BB-X", b"hello", &a_key);
    n.get_mut("AA-X").unwrap().send(env.clone(), t(0)).unwrap();
    let (sends, _) = n.get_mut("AA-X").unwrap().poll(&set(&["RR-X"]), t(1));
    assert_eq!(deliver("AA-X", sends, &mut n, t(1))[0].1, Intake::Relay);
    // M signs, as recipient, a receipt for id X from A (its own header: to MM-X).
    let squat = envelope(1, "AA-X", "MM-X", b"hello", &a_key);
    let forged = MailItem::Receipt(Receipt::sign(squat.header(), &m_key, t(2)));
    let m = code("MM-X");
    assert_eq!(
        n.get_mut("AA-X").unwrap().on_item(&m, forged.clone(), t(2)),
        Intake::Refused(Refusal::WrongReceipt { by_author: true })
    );
    assert!(Refusal::WrongReceipt { by_author: true }.strikes());
    assert!(n["AA-X"].is_pending(&env.header().id));
    // The relay keeps its copy.
    assert_eq!(
        n.get_mut("RR-X").unwrap().on_item(&m, forged.clone(), t(2)),
        Intake::Refused(Refusal::WrongReceipt { by_author: true })
    );
    assert!(
        n["RR-X"]
            .held_item(&(ItemKind::Message, env.header().id))
            .is_some()
    );
    // Passed on by an honest neighbour: refused without blaming it.
    assert_eq!(
        n.get_mut("AA-X")
            .unwrap()
            .on_item(&code("RR-X"), forged, t(2)),
        Intake::Refused(Refusal::WrongReceipt { by_author: false })
    );
    // A receipt under the same id naming another sender is for another message: it
    // may pass, but does not end A's.
    let other = envelope(1, "CC-X", "BB-X", b"hello", &a_key);
    let other_sender = MailItem::Receipt(Receipt::sign(other.header(), &b_key, t(2)));
    n.get_mut("RR-X")
        .unwrap()
        .on_item(&code("BB-X"), other_sender, t(2));
    assert!(
        n["RR-X"]
            .held_item(&(ItemKind::Message, env.header().id))
            .is_some()
    );
    // A relay that handed the message on already refuses it too, so it cannot
    // occupy the receipt's place there ahead of the real one.
    let mut r2 = Mailer::new(code("R2-X"), MailLimits::default());
    assert_eq!(
        r2.on_item(&code("AA-X"), MailItem::Envelope(env.clone()), t(1)),
        Intake::Relay
    );
    r2.took("BB-X", &(ItemKind::Message, env.header().id));
    assert_eq!(r2.held_len(), 0);
    let forged = MailItem::Receipt(Receipt::sign(squat.header(), &m_key, t(2)));
    assert_eq!(
        r2.on_item(&m, forged, t(2)),
        Intake::Refused(Refusal::WrongReceipt { by_author: true })
    );
    assert_eq!(r2.held_len(), 0);
    // The real one is taken.
    let real = MailItem::Receipt(Receipt::sign(env.header(), &b_key, t(3)));
    assert!(matches!(
        n.get_mut("AA-X")
            .unwrap()
            .on_item(&code("RR-X"), real, t(3)),
        Intake::Receipt(_)
    ));
    assert!(!n["AA-X"].is_pending(&env.header().id));
}

/// Review of issue 21, HIGH 4: a receipt was held for 30 days after whatever time it
/// named; it now ends with its message's expiry when known, and one from the future
/// is refused.
#[test]
fn a_receipt_lives_no_longer_than_its_message() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = envelope(1, "AA-X", "BB-X", b"x", &a_key);
    assert_eq!(
        r.on_item(&code("AA-X"), MailItem::Envelope(env.clone()), t(0)),
        Intake::Relay
    );
    let receipt = MailItem::Receipt(Receipt::sign(env.header(), &b_key, t(10)));
    assert_eq!(r.on_item(&code("BB-X"), receipt, t(10)), Intake::Relay);
    assert_eq!(r.held_len(), 1);
    // Nobody connected; after the message's expiry (and the skew) it is gone.
    let (_, events) = r.poll(&set(&[]), t(HOUR + MAX_CLOCK_SKEW_MS + 1));
    assert_eq!(r.held_len(), 0, "{events:?}");
    // A receipt from the future is refused.
    let env2 = envelope(2, "AA-X", "BB-X", b"x", &a_key);
    let future = MailItem::Receipt(Receipt::sign(env2.header(), &b_key, t(100 * HOUR)));
    assert_eq!(
        r.on_item(&code("BB-X"), future, t(20)),
        Intake::Refused(Refusal::WrongReceipt { by_author: false })
    );
}

/// Review of issue 21, HIGH 2: ids were first come, first served across senders, so
/// a member that saw id X could pre-empt it, and an honest relay passing a replay on
/// was struck for it.
#[test]
fn another_sender_cannot_pre_empt_an_id_and_relays_are_not_blamed_for_replays() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let m_key = SecretKey::from_seed(&[3; 32]);
    let mut b = Mailer::new(code("BB-X"), MailLimits::default());
    let squat = envelope(1, "MM-X", "BB-X", b"squat", &m_key);
    let Intake::Deliver(s) = b.on_item(&code("MM-X"), MailItem::Envelope(squat), t(0)) else {
        panic!("not delivered")
    };
    b.on_delivered(&s, Receipt::sign(s.header(), &a_key, t(0)), t(0));
    let real = envelope(1, "AA-X", "BB-X", b"real", &a_key);
    assert!(matches!(
        b.on_item(&code("RR-X"), MailItem::Envelope(real.clone()), t(1)),
        Intake::Deliver(_)
    ));
    // A replay of A's id, passed on by relay R: refused, but R is not struck.
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let x = envelope(5, "AA-X", "CC-X", b"one", &a_key);
    let replay = envelope(5, "AA-X", "CC-X", b"two", &a_key);
    assert_eq!(
        r.on_item(&code("AA-X"), MailItem::Envelope(x), t(0)),
        Intake::Relay
    );
    let got = r.on_item(&code("QQ-X"), MailItem::Envelope(replay), t(0));
    assert_eq!(got, Intake::Refused(Refusal::Replayed { by_author: false }));
    assert!(!Refusal::Replayed { by_author: false }.strikes());
    // A relay holding M's message under A's id: B's honest receipt for A's message is
    // not taken for a wrong receipt (no strike against B), and M's message stays.
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let squat = envelope(6, "MM-X", "BB-X", b"squat", &m_key);
    assert_eq!(
        r.on_item(&code("MM-X"), MailItem::Envelope(squat.clone()), t(0)),
        Intake::Relay
    );
    let real = envelope(6, "AA-X", "BB-X", b"real", &a_key);
    let receipt = MailItem::Receipt(Receipt::sign(real.header(), &b_key, t(1)));
    assert_eq!(r.on_item(&code("BB-X"), receipt, t(1)), Intake::Relay);
    assert!(
        r.held_item(&(ItemKind::Message, squat.header().id))
            .is_some()
    );
}

/// Review of issue 21, HIGH 3: one sender could deliver without bound into our
/// inbox, and receipts we owed and items relayed for others filled the room for our
/// own messages (`send` returned Full).
#[test]
fn a_sender_has_a_delivery_quota_and_floods_do_not_block_our_sends() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut b = Mailer::new(
        code("BB-X"),
        MailLimits {
            per_sender_deliveries: 3,
            max_held: 4,
            ..MailLimits::default()
        },
    );
    for i in 0..3u8 {
        let env = envelope(10 + i, "AA-X", "BB-X", b"x", &a_key);
        let Intake::Deliver(e) = b.on_item(&code("AA-X"), MailItem::Envelope(env), t(0)) else {
            panic!("not delivered")
        };
        b.on_delivered(&e, Receipt::sign(e.header(), &b_key, t(0)), t(0));
    }
    let env = envelope(20, "AA-X", "BB-X", b"x", &a_key);
    assert_eq!(
        b.on_item(&code("AA-X"), MailItem::Envelope(env.clone()), t(1)),
        Intake::Refused(Refusal::SenderQuota)
    );
    assert!(!Refusal::SenderQuota.strikes());
    // Another sender is still served; A again after the window.
    let c = envelope(21, "CC-X", "BB-X", b"x", &a_key);
    assert!(matches!(
        b.on_item(&code("CC-X"), MailItem::Envelope(c), t(1)),
        Intake::Deliver(_)
    ));
    assert!(matches!(
        b.on_item(&code("AA-X"), MailItem::Envelope(env), t(HOUR + 1)),
        Intake::Deliver(_)
    ));
    // Relayed items for others, up to the bound.
    for i in 0..4u8 {
        let env = envelope(30 + i, "AA-X", "CC-X", b"x", &a_key);
        assert_eq!(
            b.on_item(&code("AA-X"), MailItem::Envelope(env), t(2)),
            Intake::Relay
        );
    }
    // Three receipts owed and four relayed items held: our own send still fits.
    let ours = envelope(40, "BB-X", "AA-X", b"x", &b_key);
    assert_eq!(b.send(ours, t(3)), Ok(()));
}

/// Review of issue 21, finding 10: remembered receipts had no bound; a member signing
/// receipts for ever new ids grew them without end.
#[test]
fn remembered_receipts_are_bounded() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let b_key = SecretKey::from_seed(&[2; 32]);
    let mut r = Mailer::new(
        code("RR-X"),
        MailLimits {
            max_seen: 4,
            ..MailLimits::default()
        },
    );
    for i in 0..20u8 {
        let env = envelope(i, "AA-X", "BB-X", b"x", &a_key);
        let receipt = MailItem::Receipt(Receipt::sign(env.header(), &b_key, t(1)));
        assert_eq!(r.on_item(&code("BB-X"), receipt, t(1)), Intake::Relay);
        r.took("AA-X", &(ItemKind::Receipt, env.header().id));
    }
    assert_eq!(r.held_len(), 0);
    assert!(r.seen_receipts_len() <= 4, "{}", r.seen_receipts_len());
}

fn envelope_until(id: u8, expires_in: u64, key: &SecretKey) -> Envelope {
    let enc = EncryptionSecretKey::generate().unwrap();
    Envelope::seal(
        &Draft {
            id: MessageId([id; 16]),
            from: code("AA-X"),
            to: code("BB-X"),
            kind: "test",
            created_at: Timestamp(T0),
            expires_at: Timestamp(T0 + expires_in),
            plaintext: b"x",
        },
        key,
        &enc.public_key().unwrap(),
    )
    .unwrap()
}

fn seen_deleted(writes: &[Write], id: u8) -> bool {
    writes
        .iter()
        .any(|(k, v)| k[0] == SEEN && k[1..17] == [id; 16] && v.is_none())
}

/// Review of issue 21, finding 10 (other half): remembered ids of expired messages
/// were dropped from memory but stayed in the store (and came back at every
/// restart). Now they follow one index ordered by expiry, and every removal reaches
/// the store. Review s30-consult2, M2: past the limit a live id is no longer evicted;
/// the next delivery is refused (no strike) until one expires.
#[test]
fn expired_ids_leave_the_store_and_live_ones_are_never_evicted() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let limits = MailLimits {
        max_seen: 2,
        ..MailLimits::default()
    };
    let mut b = Mailer::new(code("BB-X"), limits);
    let envs: Vec<Envelope> = [(1, 3 * HOUR), (2, HOUR), (3, 2 * HOUR)]
        .into_iter()
        .map(|(id, life)| envelope_until(id, life, &a_key))
        .collect();
    for env in &envs[..2] {
        let receipt = Receipt::sign(env.header(), &SecretKey::from_seed(&[2; 32]), t(0));
        b.on_delivered(env, receipt, t(0));
    }
    // At the limit of two: the third is refused, nothing is forgotten.
    assert_eq!(
        b.on_item(&code("AA-X"), MailItem::Envelope(envs[2].clone()), t(0)),
        Intake::Refused(Refusal::Full)
    );
    assert!(!Refusal::Full.strikes());
    assert_eq!(b.seen_len(), 2);
    // Id 2 expires (plus the clock skew): forgotten, and id 3 is delivered.
    let later = t(HOUR + MAX_CLOCK_SKEW_MS);
    assert!(matches!(
        b.on_item(&code("AA-X"), MailItem::Envelope(envs[2].clone()), later),
        Intake::Deliver(_)
    ));
    let receipt = Receipt::sign(envs[2].header(), &SecretKey::from_seed(&[2; 32]), later);
    b.on_delivered(&envs[2], receipt, later);
    assert_eq!(b.seen_len(), 2);
    let writes = b.take_writes();
    assert!(seen_deleted(&writes, 2), "{writes:?}");
    assert!(!seen_deleted(&writes, 1) && !seen_deleted(&writes, 3));
    assert_eq!(
        b.on_item(&code("AA-X"), MailItem::Envelope(envs[2].clone()), later),
        Intake::Duplicate
    );
    // Id 3 expires (plus the clock skew): forgotten in memory and in the store; id 1
    // stays.
    b.take_writes();
    b.poll(&set(&[]), t(2 * HOUR + MAX_CLOCK_SKEW_MS));
    assert_eq!(b.seen_len(), 1);
    let writes = b.take_writes();
    assert!(seen_deleted(&writes, 3), "{writes:?}");
    assert!(!seen_deleted(&writes, 1));
    // A restart from what the store holds brings back only id 1.
    let mut back = Mailer::new(code("BB-X"), limits);
    let mut stored = BTreeMap::new();
    let mut all = Mailer::new(code("BB-X"), limits);
    all.on_delivered(
        &envs[0],
        Receipt::sign(envs[0].header(), &SecretKey::from_seed(&[2; 32]), t(0)),
        t(0),
    );
    for (k, v) in all.take_writes() {
        if k[0] == SEEN {
            stored.insert(k, v.unwrap());
        }
    }
    assert!(back.restore(stored.into_iter().collect()).is_empty());
    assert_eq!(back.seen_len(), 1);
    back.poll(&set(&[]), t(3 * HOUR + MAX_CLOCK_SKEW_MS));
    assert_eq!(back.seen_len(), 0);
    assert!(seen_deleted(&back.take_writes(), 1));
}

/// Review of issue 21, finding 11: at every retry (at most five minutes apart) an
/// item was offered again to every neighbour for its whole life, also to those that
/// had taken it or answered that they had it. Now only the neighbours that refused it
/// (and its addressee) are offered it again, and one that reconnects.
#[test]
fn a_neighbour_that_has_an_item_is_not_offered_it_again() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let mut a = Mailer::new(code("AA-X"), MailLimits::default());
    let env = envelope_until(5, 10 * HOUR, &a_key);
    a.send(env, t(0)).unwrap();
    let neighbours = set(&["R1-X", "R2-X"]);
    let (sends, _) = a.poll(&neighbours, t(1));
    assert_eq!(sends.len(), 2);
    let key = sends[0].key;
    a.took("R1-X", &key);
    a.fail("R2-X", &key);
    for round in 0..5u64 {
        let at = t(10 * 60 * 1000 * (round + 1));
        a.retry(at);
        let (sends, _) = a.poll(&neighbours, at);
        let to: Vec<_> = sends.iter().map(|s| s.to.to_string()).collect();
        assert_eq!(to, vec!["R2-X".to_string()], "round {round}");
        if round < 4 {
            a.fail("R2-X", &key);
        } else {
            a.took("R2-X", &key);
        }
    }
    // R1 and R2 both have it now: nothing more to offer, however often we retry.
    a.retry(t(HOUR));
    assert!(a.poll(&neighbours, t(HOUR)).0.is_empty());
    // R1 reconnects (it may have lost what it held): offered once more.
    a.on_connected(&code("R1-X"));
    let (sends, _) = a.poll(&neighbours, t(HOUR));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, code("R1-X"));
    // The addressee itself is offered it at every retry (a lost receipt comes back
    // as its answer to the duplicate).
    a.took("R1-X", &key);
    let with_b = set(&["R1-X", "R2-X", "BB-X"]);
    let (sends, _) = a.poll(&with_b, t(HOUR));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, code("BB-X"));
    a.took("BB-X", &key);
    assert!(a.poll(&with_b, t(HOUR)).0.is_empty());
    a.retry(t(HOUR + 10 * 60 * 1000));
    let (sends, _) = a.poll(&with_b, t(HOUR + 10 * 60 * 1000));
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0].to, code("BB-X"));
}

fn envelope_to(id: u8, to: &str, expires_in: u64, key: &SecretKey) -> Envelope {
    let enc = EncryptionSecretKey::generate().unwrap();
    Envelope::seal(
        &Draft {
            id: MessageId([id; 16]),
            from: code("MM-X"),
            to: code(to),
            kind: "test",
            created_at: Timestamp(T0),
            expires_at: Timestamp(T0 + expires_in),
            plaintext: b"x",
        },
        key,
        &enc.public_key().unwrap(),
    )
    .unwrap()
}

/// Review s30-consult2, M2: remembered ids were one pool of `max_seen` shared by
/// relayed and delivered ids, evicting the first to expire. A member flooding
/// relayed ids with a far expiry pushed our delivered ids out, and the delivered
/// message could then be replayed into our inbox. Now a live delivered id is never
/// forgotten: relayed ids have their own bounds (per sender and in all) and past
/// them custody is refused (no strike).
#[test]
fn a_flood_of_relayed_ids_never_evicts_a_delivered_one() {
    let m_key = SecretKey::from_seed(&[7; 32]);
    let limits = MailLimits {
        max_seen: 10,
        ..MailLimits::default()
    };
    let mut b = Mailer::new(code("BB-X"), limits);
    // Delivered, expiring in an hour.
    let mine = envelope_to(200, "BB-X", HOUR, &m_key);
    assert!(matches!(
        b.on_item(&code("MM-X"), MailItem::Envelope(mine.clone()), t(0)),
        Intake::Deliver(_)
    ));
    b.on_delivered(
        &mine,
        Receipt::sign(mine.header(), &SecretKey::from_seed(&[2; 32]), t(0)),
        t(0),
    );
    // Eleven relayed ids expiring in 90 days.
    let mut refused = 0;
    for i in 0..11u8 {
        let env = envelope_to(i, "CC-X", 90 * 24 * HOUR, &m_key);
        match b.on_item(&code("MM-X"), MailItem::Envelope(env), t(1)) {
            Intake::Relay => {}
            Intake::Refused(r) => {
                assert!(!r.strikes(), "{r:?}");
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused > 0);
    assert!(b.seen_len() <= 10, "{}", b.seen_len());
    assert_eq!(
        b.on_item(&code("MM-X"), MailItem::Envelope(mine), t(2)),
        Intake::Duplicate
    );
}

/// Review of the mail fixes, H2: live ids are never forgotten, so a member
/// delivering far-expiring messages to us at its quota filled `max_seen`, and from
/// then on every delivery (from anyone) and our own `send` failed `Full` until its
/// ids expired. Now one sender has at most `per_sender_seen` remembered ids (past it
/// only that sender waits, `SenderQuota`), and deliveries leave room for our sends.
#[test]
fn one_sender_delivering_far_expiring_mail_cannot_block_others_or_our_sends() {
    let m_key = SecretKey::from_seed(&[7; 32]);
    let h_key = SecretKey::from_seed(&[8; 32]);
    let b_key = SecretKey::from_seed(&[9; 32]);
    let limits = MailLimits {
        max_seen: 16,
        per_sender_seen: 4,
        ..MailLimits::default()
    };
    let mut b = Mailer::new(code("BB-X"), limits);
    let mut refused = Vec::new();
    for i in 0..10u8 {
        // From MM-X to us, expiring in 90 days.
        let env = envelope_to(i, "BB-X", 90 * 24 * HOUR, &m_key);
        match b.on_item(&code("MM-X"), MailItem::Envelope(env.clone()), t(0)) {
            Intake::Deliver(_) => {
                b.on_delivered(&env, Receipt::sign(env.header(), &b_key, t(0)), t(0))
            }
            Intake::Refused(r) => {
                assert!(!r.strikes(), "{r:?}");
                refused.push(r);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused.len(), 6, "{refused:?}");
    assert!(refused.iter().all(|r| *r == Refusal::SenderQuota));
    // Another sender is still delivered, and our own send still goes.
    let honest = envelope(50, "HH-X", "BB-X", b"x", &h_key);
    assert!(matches!(
        b.on_item(&code("HH-X"), MailItem::Envelope(honest), t(1)),
        Intake::Deliver(_)
    ));
    b.send(envelope(60, "BB-X", "MM-X", b"x", &b_key), t(1))
        .unwrap();
}

/// The addresses of `sends`, in order.
fn targets(sends: &[Send]) -> Vec<String> {
    sends.iter().map(|s| s.to.to_string()).collect()
}

/// A message from `from` to `to` that lives ten hours (retries here are ten
/// minutes apart).
fn long_lived(id: u8, from: &str, to: &str, key: &SecretKey) -> Envelope {
    let enc = EncryptionSecretKey::generate().unwrap();
    Envelope::seal(
        &Draft {
            id: MessageId([id; 16]),
            from: code(from),
            to: code(to),
            kind: "test",
            created_at: Timestamp(T0),
            expires_at: Timestamp(T0 + 10 * HOUR),
            plaintext: b"m",
        },
        key,
        &enc.public_key().unwrap(),
    )
    .unwrap()
}

/// `relay` retries at `at` and polls with `connected`: where the item goes.
fn retry_poll(relay: &mut Mailer, connected: &BTreeSet<AgencyCode>, at: Timestamp) -> Vec<Send> {
    relay.retry(at);
    relay.poll(connected, at).0
}

/// Review s34-mail M1: the addressee stays connected to the relay and never takes
/// the message (its hand-overs time out, fail, or are refused). Before the fix the
/// relay offered it there alone until it expired, so an honest relay handed it to
/// no one while it handed other mail to its other neighbours, and the auditor named
/// it. Now it offers the addressee alone for `addressee_misses` hand-overs in a row,
/// then every connected neighbour that has not had it too (not the upstream, not a
/// neighbour that handed it to us as well), and the addressee still at every retry.
#[test]
fn a_relay_offers_others_too_once_its_connected_addressee_misses_a_message() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut n = nodes(&["SS-X", "RR-X", "NN-X", "TT-X", "AA-X"]);
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    // S and T both hand it to R: R takes S's copy and answers T "seen".
    let r = n.get_mut("RR-X").unwrap();
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env.clone()), t(0)),
        Intake::Relay
    );
    assert_eq!(
        r.on_item(&code("TT-X"), MailItem::Envelope(env.clone()), t(0)),
        Intake::Seen
    );
    let connected = set(&["SS-X", "NN-X", "TT-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut at = 0;
    for miss in 0..bound {
        // Far enough apart for every backoff.
        at += 10 * 60 * 1000;
        let sends = retry_poll(r, &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "miss {miss}");
        r.fail("AA-X", &key);
        // Nothing else until the next retry, before the bound.
        if miss + 1 < bound {
            assert!(r.poll(&connected, t(at)).0.is_empty(), "miss {miss}");
        }
    }
    // Passed: N too (not S, it came from there; not T, it had it), at once.
    let sends = r.poll(&connected, t(at)).0;
    assert_eq!(targets(&sends), ["NN-X"]);
    let got = deliver("RR-X", sends, &mut n, t(at));
    assert_eq!(got, vec![("NN-X".into(), Intake::Relay)]);
    let r = n.get_mut("RR-X").unwrap();
    // The addressee is still offered it at every retry, N (which took it) never
    // again, and the relay keeps it until the addressee takes it.
    for round in 0..3u64 {
        at += 10 * 60 * 1000;
        let sends = retry_poll(r, &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "round {round}");
        r.fail("AA-X", &key);
    }
    assert_eq!(r.held_len(), 1);
    // The addressee takes it at last: done.
    at += 10 * 60 * 1000;
    let sends = retry_poll(r, &connected, t(at));
    assert_eq!(targets(&sends), ["AA-X"]);
    let got = deliver("RR-X", sends, &mut n, t(at));
    assert!(matches!(got[0].1, Intake::Deliver(_)), "{got:?}");
    assert_eq!(n["RR-X"].held_len(), 0);
}

/// The same bound, counted per message (failures with no signed answer); its custody of other mail does not clear this message's misses (an
/// addressee silent for one message only still passes it); a neighbour that
/// refuses is offered it again only after the backoff, like the addressee; a
/// disconnect and reconnect of the addressee does not bring back "addressee alone"
/// (a hostile addressee could otherwise hold the relay there).
#[test]
fn misses_are_counted_per_message_and_survive_the_addressee_reconnecting() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let silent = long_lived(1, "SS-X", "AA-X", &s_key);
    let other = long_lived(2, "SS-X", "AA-X", &s_key);
    let silent_key = (ItemKind::Message, silent.header().id);
    let other_key = (ItemKind::Message, other.header().id);
    for e in [&silent, &other] {
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(e.clone()), t(0)),
            Intake::Relay
        );
    }
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut at = 0;
    for miss in 0..bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(&mut r, &connected, t(at));
        let to: Vec<_> = sends.iter().map(|s| (s.to.to_string(), s.key)).collect();
        if miss == 0 {
            // The addressee takes the other message at once, refuses this one.
            assert_eq!(
                to,
                [("AA-X".into(), silent_key), ("AA-X".into(), other_key)]
            );
            r.took("AA-X", &other_key);
        } else {
            assert_eq!(to, [("AA-X".into(), silent_key)], "miss {miss}");
        }
        r.fail("AA-X", &silent_key);
        if miss == 0 {
            // Away for a moment: offered to N at once (as before the fix); N
            // refuses it.
            let away = set(&["SS-X", "NN-X"]);
            let sends = r.poll(&away, t(at)).0;
            assert_eq!(targets(&sends), ["NN-X"]);
            r.fail("NN-X", &silent_key);
            r.on_connected(&code("AA-X"));
        }
    }
    assert_eq!(r.held_len(), 1, "the other message is done");
    // Passed: N (whose refusal a retry since cleared) is offered it at once, then
    // again at the next retry with the addressee, not before.
    let sends = r.poll(&connected, t(at)).0;
    assert_eq!(targets(&sends), ["NN-X"]);
    r.fail("NN-X", &silent_key);
    assert!(r.poll(&connected, t(at)).0.is_empty());
    at += 10 * 60 * 1000;
    let sends = retry_poll(&mut r, &connected, t(at));
    assert_eq!(targets(&sends), ["AA-X", "NN-X"]);
    r.fail("AA-X", &silent_key);
    r.fail("NN-X", &silent_key);
    // The addressee reconnects: still passed, N is offered it with the addressee.
    r.on_connected(&code("AA-X"));
    r.on_connected(&code("NN-X"));
    let sends = r.poll(&connected, t(at)).0;
    assert_eq!(targets(&sends), ["AA-X", "NN-X"]);
}

/// What a silent addressee can make relays do is bounded as when it is away: each
/// neighbour takes one copy (its seen filter answers a second offer "seen"), the
/// next relay does not offer it back to the relay it came from (with no other
/// neighbour it is a dead end and sends nothing), and our own messages and the
/// receipts we relay keep going to a connected addressee alone (only a relay's
/// custody of a message is judged by the auditor).
#[test]
fn passing_a_silent_addressee_is_bounded_and_only_for_relayed_messages() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let a_key = SecretKey::from_seed(&[3; 32]);
    let mut n = nodes(&["SS-X", "RR-X", "MM-X"]);
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    // S's own message to a connected, silent A: A alone, however often it misses.
    let s = n.get_mut("SS-X").unwrap();
    s.send(env.clone(), t(0)).unwrap();
    let s_connected = set(&["RR-X", "AA-X"]);
    let mut at = 0;
    for miss in 0..10 {
        at += 10 * 60 * 1000;
        let sends = retry_poll(s, &s_connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "miss {miss}");
        s.fail("AA-X", &key);
    }
    // R relays the message, and A's receipt of another message for S.
    let other = long_lived(2, "SS-X", "AA-X", &s_key);
    let receipt = Receipt::sign(other.header(), &a_key, t(1));
    let receipt_key = (ItemKind::Receipt, other.header().id);
    let r = n.get_mut("RR-X").unwrap();
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env.clone()), t(1)),
        Intake::Relay
    );
    assert_eq!(
        r.on_item(&code("AA-X"), MailItem::Receipt(receipt), t(1)),
        Intake::Relay
    );
    let r_connected = set(&["SS-X", "MM-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut passed = false;
    for miss in 0..=bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(n.get_mut("RR-X").unwrap(), &r_connected, t(at));
        let to = |k: ItemKey| -> Vec<String> {
            sends
                .iter()
                .filter(|s| s.key == k)
                .map(|s| s.to.to_string())
                .collect()
        };
        // The receipt's addressee (S) is connected: S alone, every time.
        assert_eq!(to(receipt_key), ["SS-X"], "miss {miss}");
        let message_to = to(key);
        let r = n.get_mut("RR-X").unwrap();
        r.fail("SS-X", &receipt_key);
        r.fail("AA-X", &key);
        if miss < bound {
            assert_eq!(message_to, ["AA-X"], "miss {miss}");
            continue;
        }
        // Past the bound: M too (not S, where it came from).
        assert_eq!(message_to, ["AA-X", "MM-X"]);
        let got = deliver(
            "RR-X",
            sends
                .iter()
                .filter(|s| s.key == key && s.to == code("MM-X"))
                .cloned()
                .collect(),
            &mut n,
            t(at),
        );
        assert_eq!(got, vec![("MM-X".into(), Intake::Relay)]);
        passed = true;
    }
    assert!(passed);
    // M, which took it from R, also sees A connected and silent: past its bound it
    // has no one else to offer it to (R had it): a dead end, A alone is offered it.
    let m = n.get_mut("MM-X").unwrap();
    let m_connected = set(&["RR-X", "AA-X"]);
    for miss in 0..2 * bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(m, &m_connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "miss {miss}");
        m.fail("AA-X", &key);
    }
    // R offering it to M again (say after M reconnected) gets "seen": one copy.
    assert_eq!(
        m.on_item(&code("RR-X"), MailItem::Envelope(env.next_hop()), t(at)),
        Intake::Seen
    );
}

/// After a restart the relay counts the addressee's misses again (in memory only)
/// and, past them or with the addressee away, still does not offer the message back
/// to the neighbour it came from (before s36 a restored item forgot it, and went
/// back there as soon as the addressee was away).
#[test]
fn after_a_restart_the_misses_count_again_and_the_upstream_is_not_offered_it() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut at = 0;
    for _ in 0..bound {
        at += 10 * 60 * 1000;
        assert_eq!(targets(&retry_poll(&mut r, &connected, t(at))), ["AA-X"]);
        r.fail("AA-X", &key);
    }
    assert_eq!(targets(&r.poll(&connected, t(at)).0), ["NN-X"]);
    let stored: Vec<_> = r
        .take_writes()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let restored = || {
        let mut back = Mailer::new(code("RR-X"), MailLimits::default());
        assert!(back.restore(stored.clone()).is_empty());
        back
    };
    // The addressee away: every connected neighbour but the upstream.
    let mut back = restored();
    assert_eq!(
        targets(&back.poll(&set(&["SS-X", "NN-X"]), t(at)).0),
        ["NN-X"]
    );
    // The addressee connected: alone again until it misses `bound` hand-overs.
    let mut back2 = restored();
    for miss in 0..bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(&mut back2, &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "miss {miss}");
        back2.fail("AA-X", &key);
    }
    assert_eq!(targets(&back2.poll(&connected, t(at)).0), ["NN-X"]);
}

/// Review s36-m1 M2: an honest, online addressee that refuses a message with a
/// signed answer (it cannot open it, the sender is over its quota...) is not
/// missed: the relay keeps offering it there alone at every retry, and never hands
/// the message to its other neighbours (before the fix three such refusals sent it
/// across the federation). Failures with no signed answer still count.
#[test]
fn a_signed_refusal_by_the_addressee_is_no_miss() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut at = 0;
    for round in 0..3 * bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(&mut r, &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "round {round}");
        r.refuse("AA-X", &key, "unopenable");
        assert!(r.poll(&connected, t(at)).0.is_empty(), "round {round}");
    }
    // Silence from then on: passed after `bound` misses, as before.
    for miss in 0..bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(&mut r, &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "miss {miss}");
        r.fail("AA-X", &key);
    }
    assert_eq!(targets(&r.poll(&connected, t(at)).0), ["NN-X"]);
}

/// Review s36-m1 M1: an addressee that accepts the stream and never answers made
/// each hand-over wait for the transport's timeout (120 s), so the relay passed it
/// only after about 6 min, and a message living less than that left it named. Now a
/// hand-over unanswered for `addressee_answer_ms` is a miss at the next retry (the
/// addressee is offered the message again meanwhile), so the relay offers its other
/// neighbours within a minute. The late end of a request already counted (here a
/// closed stream, then the timeouts) is not counted again. Time is the caller's
/// (250 ms ticks, as the runtime's).
#[test]
fn an_addressee_that_never_answers_is_passed_within_a_minute() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let limits = MailLimits::default();
    let mut to_addressee: Vec<u64> = Vec::new();
    let mut tickets = Vec::new();
    let mut passed_at = None;
    let mut at = 0;
    while at <= 120_000 && passed_at.is_none() {
        for s in retry_poll(&mut r, &connected, t(at)) {
            match s.to.as_str() {
                "AA-X" => {
                    to_addressee.push(at);
                    tickets.push(s.ticket);
                }
                "NN-X" => passed_at = Some(at),
                other => panic!("offered to {other}"),
            }
        }
        // The first request's stream closes late (after it counted as a miss),
        // while the second waits.
        if at == 12_000 {
            r.on_hand_failed(&code("AA-X"), &key, tickets[0]);
        }
        at += 250;
    }
    let answer = limits.addressee_answer_ms;
    let bound = u64::from(limits.addressee_misses);
    // An offer after each miss, `addressee_answer_ms` apart (the last one with N's);
    // the closed stream did not count twice (N would be offered at the second
    // miss).
    assert_eq!(
        to_addressee,
        (0..=bound).map(|i| i * answer).collect::<Vec<_>>()
    );
    assert_eq!(passed_at, Some(bound * answer));
    assert!(bound * answer < 60_000);
    // The requests' timeouts arrive: they change nothing (N is not offered again,
    // the addressee only at the next retry).
    r.on_hand_failed(&code("AA-X"), &key, tickets[1]);
    r.on_hand_failed(&code("AA-X"), &key, tickets[2]);
    r.refuse("NN-X", &key, "full");
    assert!(r.poll(&connected, t(at)).0.is_empty());
    let later = at + 10 * 60 * 1000;
    assert_eq!(
        targets(&retry_poll(&mut r, &connected, t(later))),
        ["AA-X", "NN-X"]
    );
}

/// Review s36-int H1: only the addressee's signed refusals the auditor counts as the
/// relay's cover (`ADDRESSEE_FINAL_REFUSALS`, `replayed` among them) are no miss.
/// Its `expired`, `no_offer` or failed verification, which the auditor does not
/// count, are misses: the relay passes the addressee after them and offers its other
/// neighbours (before the fix every signed refusal kept the copy on the addressee
/// alone, and the relay was named). Another neighbour's refusal is never a miss.
#[test]
fn only_the_addressee_refusals_the_auditor_counts_are_no_miss() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    for reason in ["expired", "no_offer", "bad_signature"] {
        let mut r = Mailer::new(code("RR-X"), MailLimits::default());
        let env = long_lived(1, "SS-X", "AA-X", &s_key);
        let key = (ItemKind::Message, env.header().id);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
            Intake::Relay
        );
        let mut at = 0;
        for miss in 0..bound {
            at += 10 * 60 * 1000;
            let sends = retry_poll(&mut r, &connected, t(at));
            assert_eq!(targets(&sends), ["AA-X"], "{reason} miss {miss}");
            r.refuse("AA-X", &key, reason);
        }
        assert_eq!(targets(&r.poll(&connected, t(at)).0), ["NN-X"], "{reason}");
    }
    for reason in wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS {
        let mut r = Mailer::new(code("RR-X"), MailLimits::default());
        let env = long_lived(1, "SS-X", "AA-X", &s_key);
        let key = (ItemKind::Message, env.header().id);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
            Intake::Relay
        );
        let mut at = 0;
        for round in 0..2 * bound {
            at += 10 * 60 * 1000;
            let sends = retry_poll(&mut r, &connected, t(at));
            assert_eq!(targets(&sends), ["AA-X"], "{reason} round {round}");
            r.refuse("AA-X", &key, reason);
            assert!(r.poll(&connected, t(at)).0.is_empty(), "{reason} {round}");
        }
    }
    assert!(wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS.contains(&"replayed"));
}

/// The addressee's own `replayed` refusal: a sender that sent another body under the
/// id straight to the addressee first. The addressee's mailer refuses the relayed
/// copy `replayed`, and the relay takes that as its final word (no miss), so it does
/// not spray the replay to its other neighbours (review s36-int H1, scenario 1).
#[test]
fn the_addressee_replayed_refusal_keeps_the_copy_off_other_neighbours() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let a_key = SecretKey::from_seed(&[2; 32]);
    let mut n = nodes(&["RR-X", "AA-X", "NN-X"]);
    let first = long_lived(1, "SS-X", "AA-X", &s_key);
    let second = long_lived(1, "SS-X", "AA-X", &s_key);
    assert_ne!(header_digest(&first), header_digest(&second));
    let a = n.get_mut("AA-X").unwrap();
    let Intake::Deliver(got) = a.on_item(&code("SS-X"), MailItem::Envelope(first), t(0)) else {
        panic!("not delivered")
    };
    let receipt = Receipt::sign(got.header(), &a_key, t(0));
    a.on_delivered(&got, receipt, t(0));
    assert_eq!(
        n.get_mut("RR-X")
            .unwrap()
            .on_item(&code("SS-X"), MailItem::Envelope(second), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let bound = MailLimits::default().addressee_misses;
    let mut at = 0;
    for round in 0..2 * bound {
        at += 10 * 60 * 1000;
        let sends = retry_poll(n.get_mut("RR-X").unwrap(), &connected, t(at));
        assert_eq!(targets(&sends), ["AA-X"], "round {round}");
        let got = deliver("RR-X", sends, &mut n, t(at));
        assert!(
            matches!(got[0].1, Intake::Refused(Refusal::Replayed { .. })),
            "{got:?}"
        );
        assert!(
            n.get_mut("RR-X")
                .unwrap()
                .poll(&connected, t(at))
                .0
                .is_empty(),
            "round {round}"
        );
    }
}

/// Review s36-int M1: after the relay passed the addressee, two other neighbours
/// keep the copy's hand-overs in flight in turn (each request fails late, the
/// neighbour reconnects and is sent the copy again while the other's request is
/// open). The addressee's retry used to wait for no hand-over to be in flight, so
/// it was never offered the copy again; now it is offered it within `retry_max_ms`
/// of being passed, and again at each later retry, and no neighbour has two
/// hand-overs of the copy in flight.
#[test]
fn neighbours_in_flight_in_turn_do_not_hold_back_the_addressee() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let limits = MailLimits::default();
    let mut r = Mailer::new(code("RR-X"), limits);
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "M1-X", "M2-X", "AA-X"]);
    let mut at = 0;
    for _ in 0..limits.addressee_misses {
        at += 10 * 60 * 1000;
        assert_eq!(targets(&retry_poll(&mut r, &connected, t(at))), ["AA-X"]);
        r.fail("AA-X", &key);
    }
    assert_eq!(targets(&r.poll(&connected, t(at)).0), ["M1-X", "M2-X"]);
    let passed = at;
    let mut to_addressee = Vec::new();
    let mut step = 0u64;
    let mut in_flight: BTreeMap<String, u32> =
        BTreeMap::from([("M1-X".into(), 1), ("M2-X".into(), 1)]);
    while at < passed + 3 * limits.retry_max_ms {
        at += 60_000;
        step += 1;
        // One of the two ends its request (late) and reconnects; the other's is open.
        let turn = if step.is_multiple_of(2) {
            "M1-X"
        } else {
            "M2-X"
        };
        r.fail(turn, &key);
        *in_flight.get_mut(turn).unwrap() -= 1;
        r.on_connected(&code(turn));
        for s in retry_poll(&mut r, &connected, t(at)) {
            match s.to.as_str() {
                "AA-X" => {
                    to_addressee.push(at);
                    // The addressee does not answer in time either.
                    r.fail("AA-X", &key);
                }
                other => {
                    let n = in_flight.get_mut(other).unwrap();
                    *n += 1;
                    assert_eq!(*n, 1, "{other} twice in flight");
                }
            }
        }
    }
    assert!(
        to_addressee
            .first()
            .is_some_and(|t| *t <= passed + limits.retry_max_ms + 60_000),
        "{to_addressee:?}"
    );
    assert!(to_addressee.len() >= 3, "{to_addressee:?}");
}

/// Review of s36-fix M2: one neighbour that keeps its hand-over of the copy open
/// (re-dialling before each request ends) no longer keeps a neighbour that failed
/// from being offered the copy again: at every due retry the others are offered it
/// too, never twice at once (before, they waited until nothing was in flight).
#[test]
fn a_neighbour_holding_its_hand_over_open_does_not_starve_the_others() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let limits = MailLimits::default();
    let mut r = Mailer::new(code("RR-X"), limits);
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    // The addressee is away: the copy goes to both neighbours.
    let connected = set(&["SS-X", "M1-X", "M2-X"]);
    assert_eq!(targets(&r.poll(&connected, t(0)).0), ["M1-X", "M2-X"]);
    // M1 fails at once; M2's request stays open until it is taken for a lost end
    // (`stale_request_ms`, 10 min: the network would have ended it long before).
    r.fail("M1-X", &key);
    let mut to_m1 = 0;
    let mut at = 0;
    while at + 30_000 < limits.stale_request_ms {
        at += 30_000;
        for s in retry_poll(&mut r, &connected, t(at)) {
            assert_eq!(s.to.as_str(), "M1-X", "M2 is in flight");
            to_m1 += 1;
            r.fail("M1-X", &key);
        }
    }
    assert!(to_m1 >= 3, "M1 offered again {to_m1} times");
}

/// Review s36-int M2: a relayed message whose sender's share of remembered ids is
/// full is refused `SenderQuota` (that sender's state here), not `Quota` (which the
/// auditor counts as the relay's per-neighbour share, a cover for all its messages:
/// a sender filling its own share earned its relay a global cover). Other senders'
/// messages are still taken from the same neighbour.
#[test]
fn a_relayed_message_past_its_senders_share_is_refused_sender_quota() {
    let m_key = SecretKey::from_seed(&[7; 32]);
    let h_key = SecretKey::from_seed(&[8; 32]);
    let limits = MailLimits {
        max_seen: 64,
        per_sender_seen: 2,
        ..MailLimits::default()
    };
    let mut n = Mailer::new(code("NN-X"), limits);
    let relay = code("RR-X");
    let mut refused = Vec::new();
    for i in 0..4u8 {
        let env = envelope(i, "MM-X", "AA-X", b"x", &m_key);
        match n.on_item(&relay, MailItem::Envelope(env), t(0)) {
            Intake::Relay => {}
            Intake::Refused(r) => refused.push(r),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, [Refusal::SenderQuota, Refusal::SenderQuota]);
    assert_eq!(Refusal::SenderQuota.code(), "sender_quota");
    let other = envelope(9, "HH-X", "AA-X", b"x", &h_key);
    assert_eq!(
        n.on_item(&relay, MailItem::Envelope(other), t(0)),
        Intake::Relay
    );
}

/// A message `id` from `from` to `to` living ten hours.
fn message(id: MessageId, from: &str, to: &str, key: &SecretKey) -> Envelope {
    let enc = EncryptionSecretKey::generate().unwrap();
    Envelope::seal(
        &Draft {
            id,
            from: code(from),
            to: code(to),
            kind: "test",
            created_at: Timestamp(T0),
            expires_at: Timestamp(T0 + 10 * HOUR),
            plaintext: b"m",
        },
        key,
        &enc.public_key().unwrap(),
    )
    .unwrap()
}

/// The id `n` sorts as: its first two bytes, big-endian.
fn id_of(n: u16) -> MessageId {
    let mut id = [0x5a; 16];
    id[..2].copy_from_slice(&n.to_be_bytes());
    MessageId(id)
}

/// The ids of `sends`, in order.
fn ids(sends: &[Send]) -> Vec<MessageId> {
    sends.iter().map(|s| s.key.1).collect()
}

/// Issue 21, s37: a poll hands items over in the order we took them (custody for what
/// we relay, sending for our own messages, queueing for the receipts we owe),
/// whatever ids their senders chose; an item going to several neighbours keeps its
/// sends together, in the neighbours' order. Before, the order was the held map's,
/// by kind and id (sender-chosen): this failed.
#[test]
fn sends_come_out_in_custody_order_whatever_the_ids() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let t_key = SecretKey::from_seed(&[2; 32]);
    let r_key = SecretKey::from_seed(&[3; 32]);
    let a_key = SecretKey::from_seed(&[4; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let relayed = |r: &mut Mailer, n: u16, from: &str, to: &str, key: &SecretKey, at: u64| {
        let env = message(id_of(n), from, to, key);
        assert_eq!(
            r.on_item(&code(from), MailItem::Envelope(env), t(at)),
            Intake::Relay
        );
    };
    relayed(&mut r, 0xc000, "SS-X", "AA-X", &s_key, 0);
    // Our own message, then one for an away agency (to both connected neighbours).
    r.send(message(id_of(0x1000), "RR-X", "AA-X", &r_key), t(1))
        .unwrap();
    relayed(&mut r, 0x8000, "TT-X", "ZZ-X", &t_key, 2);
    // A receipt we owe for a message delivered to us (its key sorts after every
    // message's before).
    let to_us = message(id_of(0x0100), "AA-X", "RR-X", &a_key);
    let Intake::Deliver(env) = r.on_item(&code("AA-X"), MailItem::Envelope(to_us), t(3)) else {
        panic!("not delivered")
    };
    let receipt = Receipt::sign(env.header(), &r_key, t(3));
    r.on_delivered(&env, receipt, t(3));
    relayed(&mut r, 0x0001, "SS-X", "AA-X", &s_key, 4);
    let sends = r.poll(&set(&["AA-X", "BB-X"]), t(5)).0;
    assert_eq!(
        sends
            .iter()
            .map(|s| (s.key.0, s.key.1, s.to.to_string()))
            .collect::<Vec<_>>(),
        [
            (ItemKind::Message, id_of(0xc000), "AA-X".into()),
            (ItemKind::Message, id_of(0x1000), "AA-X".into()),
            (ItemKind::Message, id_of(0x8000), "AA-X".into()),
            (ItemKind::Message, id_of(0x8000), "BB-X".into()),
            (ItemKind::Receipt, id_of(0x0100), "AA-X".into()),
            (ItemKind::Message, id_of(0x0001), "AA-X".into()),
        ]
    );
    // A retry keeps the order: everything failed, everything is offered again.
    for s in &sends {
        r.on_hand_failed(&s.to, &s.key, s.ticket);
    }
    let again = retry_poll(&mut r, &set(&["AA-X", "BB-X"]), t(10 * 60 * 1000));
    assert_eq!(ids(&again), ids(&sends));
}

/// The custody order survives a restart: each held item's place is stored in a row
/// of its own (`r`), the held row keeps the layout an older build reads, and items
/// taken after the restart come after the restored ones. Rows of an older build (no
/// place) sort first, in id order among themselves; a place whose item is not held
/// (an older build dropped it) or that does not decode is returned for deletion.
/// Before, a restored mailer polled in id order: this failed.
#[test]
fn the_custody_order_survives_a_restart_and_older_rows_sort_first() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let taken = [0xc000u16, 0x4000, 0x8000];
    for (i, n) in taken.iter().enumerate() {
        let env = message(id_of(*n), "SS-X", "AA-X", &s_key);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(i as u64)),
            Intake::Relay
        );
    }
    let stored: Vec<(Vec<u8>, Vec<u8>)> = r
        .take_writes()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let places = stored.iter().filter(|(k, _)| k[0] == b'r').count();
    assert_eq!(places, taken.len());
    let connected = set(&["SS-X", "AA-X"]);
    let later = |back: &mut Mailer| {
        let env = message(id_of(0x0001), "SS-X", "AA-X", &s_key);
        assert_eq!(
            back.on_item(&code("SS-X"), MailItem::Envelope(env), t(10)),
            Intake::Relay
        );
    };
    // Restored, in the pairs' reverse order (places before their items), then one
    // more taken: the stored order, the new one last.
    let mut back = Mailer::new(code("RR-X"), MailLimits::default());
    assert!(
        back.restore(stored.iter().rev().cloned().collect())
            .is_empty()
    );
    later(&mut back);
    assert_eq!(
        ids(&back.poll(&connected, t(11)).0),
        [0xc000, 0x4000, 0x8000, 0x0001].map(id_of)
    );
    // An older build's rows (no places), one place left over from an item it
    // dropped, one that does not decode.
    let mut rows: Vec<(Vec<u8>, Vec<u8>)> = stored
        .iter()
        .filter(|(k, _)| k[0] != b'r')
        .cloned()
        .collect();
    let mut orphan = vec![b'r', b'm'];
    orphan.extend_from_slice(id_of(0x7777).as_bytes());
    let mut short = vec![b'r', b'm'];
    short.extend_from_slice(id_of(0x4000).as_bytes());
    rows.push((orphan.clone(), 9u64.to_be_bytes().to_vec()));
    rows.push((short.clone(), vec![1, 2, 3]));
    // Review s37-order L1: a place this build never gives (damage) is a bad row.
    let mut huge = vec![b'r', b'm'];
    huge.extend_from_slice(id_of(0x8000).as_bytes());
    rows.push((huge.clone(), u64::MAX.to_be_bytes().to_vec()));
    let mut old = Mailer::new(code("RR-X"), MailLimits::default());
    let mut bad = old.restore(rows);
    bad.sort();
    let mut want = vec![orphan, short, huge];
    want.sort();
    assert_eq!(bad, want);
    later(&mut old);
    assert_eq!(
        ids(&old.poll(&connected, t(11)).0),
        [0x4000, 0x8000, 0xc000, 0x0001].map(id_of)
    );
    // A held row is as an older build wrote and reads it: the origin's length, the
    // origin, the item's frame.
    let (_, v) = stored.iter().find(|(k, _)| k[0] == b'q').unwrap();
    assert_eq!(&v[..5], b"\x04SS-X");
    assert!(MailItem::decode(&v[5..]).is_ok());
    // A dropped item takes its place with it.
    let mut back = Mailer::new(code("RR-X"), MailLimits::default());
    assert!(back.restore(stored.clone()).is_empty());
    let sends = back.poll(&connected, t(11)).0;
    let first = &sends[0];
    back.on_handed(&first.to, &first.key, first.ticket);
    let deleted: Vec<u8> = back
        .take_writes()
        .into_iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k[0])
        .collect();
    assert_eq!(deleted, [b'q', b'r']);
}

/// Issue 21, s37: a connection carries at most 64 mail streams; past them a
/// hand-over fails at once (`stream`). With a backlog for one addressee the hand-overs
/// that fail must be of the items taken last, whatever their ids: a hostile sender
/// choosing ids that sort first got its copies handed over ahead of older ones, and
/// the same high ids failed every poll. Here 100 older copies (ids in no particular
/// order) wait, then a hostile sender's 50 with the lowest ids arrive; each round the
/// first 64 sends get a stream and are taken, the rest fail: every older copy is
/// taken before any of the hostile sender's. Before, the hostile copies went first:
/// this failed.
#[test]
fn a_hostile_senders_low_ids_do_not_get_its_copies_ahead_of_older_ones() {
    const STREAMS: usize = 64;
    let h_key = SecretKey::from_seed(&[1; 32]);
    let m_key = SecretKey::from_seed(&[2; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let mut arrival = Vec::new();
    for i in 0..100u16 {
        // Scattered ids, all above the hostile ones.
        let id = id_of(0x1000 + (i * 37) % 100);
        let env = message(id, "HH-X", "AA-X", &h_key);
        assert_eq!(
            r.on_item(&code("HH-X"), MailItem::Envelope(env), t(0)),
            Intake::Relay
        );
        arrival.push(id);
    }
    for i in 0..50u16 {
        let env = message(id_of(i), "MM-X", "AA-X", &m_key);
        assert_eq!(
            r.on_item(&code("MM-X"), MailItem::Envelope(env), t(1)),
            Intake::Relay
        );
        arrival.push(id_of(i));
    }
    let connected = set(&["HH-X", "MM-X", "AA-X"]);
    let mut taken = Vec::new();
    let mut at = 2;
    while r.held_len() > 0 {
        assert!(at < 10 * HOUR, "not drained");
        let sends = retry_poll(&mut r, &connected, t(at));
        for (i, s) in sends.iter().enumerate() {
            assert_eq!(s.to, code("AA-X"));
            if i < STREAMS {
                r.on_handed(&s.to, &s.key, s.ticket);
                taken.push(s.key.1);
            } else {
                r.on_hand_failed(&s.to, &s.key, s.ticket);
            }
        }
        at += 10 * 60 * 1000;
    }
    assert_eq!(taken, arrival);
}

/// One neighbour's connection seen from the relay, for the stream-limit tests: its
/// 64 streams are all taken (by its own requests and older ones of ours) and one
/// frees every `free_every` ms, at `phase` past each multiple; the first requests of
/// the poll after get the free ones, the others fail at once for want of a stream.
struct FullStreams {
    to: AgencyCode,
    free: usize,
    free_every: u64,
    phase: u64,
}

impl FullStreams {
    /// Hands `sends` over: a request to this neighbour that gets a stream is taken;
    /// one that does not ends with `no_stream`; every other neighbour takes at once.
    /// Returns the items this neighbour took, in order.
    fn hand(
        &mut self,
        r: &mut Mailer,
        sends: &[Send],
        at: u64,
        no_stream: fn(&mut Mailer, &AgencyCode, &ItemKey, Ticket),
    ) -> Vec<MessageId> {
        if self.free_every > 0 && at % self.free_every == self.phase {
            self.free += 1;
        }
        let mut took = Vec::new();
        for s in sends {
            if s.to != self.to {
                r.on_handed(&s.to, &s.key, s.ticket);
            } else if self.free > 0 {
                self.free -= 1;
                r.on_handed(&s.to, &s.key, s.ticket);
                took.push(s.key.1);
            } else {
                no_stream(r, &s.to, &s.key, s.ticket);
            }
        }
        took
    }
}

/// A request that found no stream on our side: `net`'s `RequestFailure::Busy`.
fn busy(r: &mut Mailer, to: &AgencyCode, key: &ItemKey, ticket: Ticket) {
    r.on_hand_busy(to, key, ticket);
}

/// Review s37-order H1: the custody order held within a poll only. A copy C whose
/// hand-over failed because the connection's 64 streams were all taken waited out
/// its backoff (2 s, 4 s, ... 5 min) like any failure, while the copies taken after
/// it were offered as they came, took the streams that freed between C's retries,
/// and C could wait for hours. Here the addressee's streams are full, one frees
/// every second (a quarter second past it), and a fresh copy arrives at every poll
/// (every 250 ms, faster than the streams free). Now C goes at the first round
/// after its pause, on the stream that freed meanwhile (nothing is offered to a
/// neighbour in its pause, so a freed stream waits for the oldest), and every copy
/// is taken in the order we took it. A round offers at most 64, at most one round a
/// second. Before (a stream failure like any other, the same as `on_hand_failed`
/// here) C's retries fell at 2, 6, 14, 30 s... when no stream was free, and it was
/// not taken in the minute: this failed.
#[test]
fn an_old_copy_is_not_starved_by_fresh_ones_when_the_streams_are_full() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let connected = set(&["SS-X", "AA-X"]);
    let mut streams = FullStreams {
        to: code("AA-X"),
        free: 0,
        free_every: 1000,
        phase: 250,
    };
    let mut arrival = Vec::new();
    let mut taken = Vec::new();
    let mut rounds: Vec<(u64, usize)> = Vec::new();
    let mut at = 0;
    while at <= 60_000 {
        let n = u16::try_from(arrival.len()).unwrap();
        // Ids in no particular order: the order is custody's, not the ids'.
        let id = id_of(n.wrapping_mul(7919));
        let env = message(id, "SS-X", "AA-X", &s_key);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(at)),
            Intake::Relay
        );
        arrival.push(id);
        let sends = retry_poll(&mut r, &connected, t(at));
        if !sends.is_empty() {
            rounds.push((at, sends.len()));
        }
        taken.extend(streams.hand(&mut r, &sends, at, busy));
        at += 250;
    }
    let c = arrival[0];
    assert_eq!(taken.first(), Some(&c), "the old copy was not taken first");
    // At the first round after its pause (1 s), on the stream freed at 250 ms.
    assert_eq!(rounds[1], (1000, 5));
    // Every copy taken, in custody order (one a second, as the streams free).
    assert_eq!(taken, arrival[..taken.len()]);
    assert_eq!(taken.len(), 60);
    // The cost: after the first failure, rounds at least a second apart, each at
    // most 64 offers, however many copies wait (240 by the end).
    for w in rounds.windows(2) {
        assert!(w[1].0 >= w[0].0 + 1000, "rounds {w:?}");
    }
    assert!(rounds[1..].iter().all(|(_, n)| *n <= 64));
    assert_eq!(rounds.last().map(|(_, n)| *n), Some(64));
}

/// Review s37-order H1, the other side: an addressee that keeps our streams to it
/// full for good (it never answers, so our requests hold them until they time out)
/// costs us at most 64 stream attempts a round, and the pause between rounds doubles
/// while no hand-over to it gets a stream, up to 30 s (s37 final review M2: a round
/// a second for good, 64 frame encodes and signatures a second, failed this: 60
/// rounds in the minute), and its misses still count
/// (review s36-m1: the relay must hand its copies to others): every copy, not only
/// the 64 oldest offered at each round, is offered to the other neighbour within a
/// few seconds, and the addressee is still offered copies at each round. A
/// reconnected addressee (fresh streams) is offered at once. The copies held back
/// at each round are reported (`MailEvent::NoStream`) for the runtime to audit as
/// the `stream` failures they were before.
#[test]
fn a_neighbour_keeping_our_streams_full_costs_a_bounded_rate_and_is_passed() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let connected = set(&["SS-X", "AA-X", "BB-X"]);
    let mut streams = FullStreams {
        to: code("AA-X"),
        free: 0,
        free_every: 0,
        phase: 0,
    };
    let copies = 300u16;
    for n in 0..copies {
        let env = message(id_of(n), "SS-X", "AA-X", &s_key);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
            Intake::Relay
        );
    }
    // Our own message waits in the same queue.
    r.send(message(id_of(0xf000), "RR-X", "AA-X", &s_key), t(0))
        .unwrap();
    let mut to_addressee: Vec<(u64, usize)> = Vec::new();
    let mut to_other = BTreeSet::new();
    let mut at = 0;
    while at <= 60_000 {
        r.retry(t(at));
        let (sends, events) = r.poll(&connected, t(at));
        let n = sends.iter().filter(|s| s.to == code("AA-X")).count();
        if n > 0 {
            to_addressee.push((at, n));
        }
        // The relayed copies held back at a round are reported, to be audited as
        // failed for want of a stream (our own message is not: never audited).
        let no_stream = events
            .iter()
            .filter(|e| matches!(e, MailEvent::NoStream { to, .. } if *to == code("AA-X")))
            .count();
        let want = match n {
            0 => 0,
            _ if at == 0 => 0,
            _ => usize::from(copies) - 64,
        };
        assert_eq!(no_stream, want, "held back at {at}");
        for s in sends.iter().filter(|s| s.to == code("BB-X")) {
            to_other.insert(s.key.1);
        }
        assert!(streams.hand(&mut r, &sends, at, busy).is_empty());
        if at == 5_000 {
            // Every relayed copy went to the other neighbour too (passed at its third
            // miss, whether offered or held back in a round).
            assert_eq!(to_other.len(), usize::from(copies), "passed by 5 s");
        }
        at += 250;
    }
    // The first poll offered everything (nothing was known full); after it, rounds
    // of 64, the pause doubling from 1 s while every hand-over finds no stream, up
    // to 30 s.
    assert_eq!(to_addressee[0], (0, usize::from(copies) + 1));
    let times: Vec<u64> = to_addressee[1..].iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [1_000, 3_000, 7_000, 15_000, 31_000]);
    assert!(to_addressee[1..].iter().all(|(_, n)| *n == 64));
    r.retry(t(61_000));
    let (sends, _) = r.poll(&connected, t(61_000));
    assert_eq!(sends.iter().filter(|s| s.to == code("AA-X")).count(), 64);
    // A new connection to it has streams: everything due is offered at once.
    r.on_connected(&code("AA-X"));
    let sends = retry_poll(&mut r, &connected, t(at));
    assert!(sends.iter().filter(|s| s.to == code("AA-X")).count() > 64);
}

/// s37 final review L6 (review s37-order L3): an end of a hand-over that matches no
/// request in flight changes nothing, and is counted for the caller to log (before,
/// it was dropped silently); the late end of the addressee's slow request, already
/// counted as a miss, is expected and not counted.
#[test]
fn ends_that_match_no_request_are_counted_but_an_addressees_late_end_is_not() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "AA-X", "NN-X"]);
    let sends = retry_poll(&mut r, &connected, t(0));
    let [first] = sends.as_slice() else {
        panic!("one hand-over, to the addressee: {sends:?}");
    };
    let stale = Ticket(first.ticket.0.wrapping_add(1000));
    // Not the addressee's request: a stale ticket from another neighbour.
    r.on_hand_failed(&code("NN-X"), &key, stale);
    r.on_handed(&code("NN-X"), &key, stale);
    r.on_hand_busy(&code("NN-X"), &key, stale);
    assert_eq!(r.take_unmatched_ends(), 3);
    assert_eq!(r.take_unmatched_ends(), 0, "taken");
    // The addressee's request, slow: counted as a miss at 10 s; its late end is
    // expected.
    let _ = retry_poll(&mut r, &connected, t(10_000));
    r.on_hand_failed(&first.to, &first.key, first.ticket);
    assert_eq!(r.take_unmatched_ends(), 0);
    // An item no longer held: nothing to match, nothing counted.
    r.on_handed(&code("NN-X"), &(ItemKind::Message, id_of(0x7777)), stale);
    assert_eq!(r.take_unmatched_ends(), 0);
}

/// s37 final review M2 and L3, and the review of s37-busyfix H1: a hand-over that
/// gets a stream brings the pause between rounds back to 1 s (before, the doubled
/// pause stayed), and the rounds end only at a round that holds nothing back after
/// one whose hand-overs got streams. Here every hand-over to the addressee finds no
/// stream until the round at 3 s, where one gets a stream: the next round is at
/// 4 s (not 7 s). From then on every hand-over gets a stream: the rounds go on, 64
/// a second, oldest first, while more is due (before the H1 fix the poll after a
/// round whose hand-overs had all ended offered everything still due at once: a
/// neighbour ending each round at once got the whole backlog every second or two),
/// and end with the round that takes the last of them: then a new copy goes at once.
#[test]
fn a_stream_got_shortens_the_pause_and_the_rounds_end_when_the_backlog_fits_one() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let connected = set(&["SS-X", "AA-X"]);
    let copies = 300usize;
    for n in 0..copies {
        let env = message(id_of(u16::try_from(n).unwrap()), "SS-X", "AA-X", &s_key);
        assert_eq!(
            r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
            Intake::Relay
        );
    }
    let aa = code("AA-X");
    let mut rounds = Vec::new();
    let mut taken = 0;
    let mut at = 0;
    while at <= 10_000 {
        let sends = retry_poll(&mut r, &connected, t(at));
        let to_aa: Vec<&Send> = sends.iter().filter(|s| s.to == aa).collect();
        if !to_aa.is_empty() {
            rounds.push((at, to_aa.len()));
        }
        for s in &sends {
            if s.to != aa {
                r.on_handed(&s.to, &s.key, s.ticket);
            }
        }
        for (i, s) in to_aa.iter().enumerate() {
            let got = (at == 3_000 && i == 0) || at >= 4_000;
            if got {
                r.on_handed(&s.to, &s.key, s.ticket);
                taken += 1;
            } else {
                r.on_hand_busy(&s.to, &s.key, s.ticket);
            }
        }
        at += 250;
    }
    // 300 offered at once (no full stream known yet), then rounds: 64 at 1 s and
    // 3 s (the first taken), 64 at 4 s, 5 s, 6 s and 7 s, and the last 43 at 8 s,
    // which held nothing back after a round that got streams: the rounds end.
    assert_eq!(
        rounds,
        [
            (0, copies),
            (1_000, 64),
            (3_000, 64),
            (4_000, 64),
            (5_000, 64),
            (6_000, 64),
            (7_000, 64),
            (8_000, 43),
        ],
        "rounds"
    );
    assert_eq!(taken, copies);
    // Out of rounds: a new copy goes at the next poll.
    let env = message(id_of(0x7fff), "SS-X", "AA-X", &s_key);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(at)),
        Intake::Relay
    );
    let sends = retry_poll(&mut r, &connected, t(at));
    assert_eq!(sends.iter().filter(|s| s.to == aa).count(), 1);
}

/// Review s36-int L1: the addressee's answers were matched to its requests by count.
/// A slow request counted as a miss after 10 s; the addressee then refused the next
/// request at once with a signed refusal that is its final word (no miss), but that
/// refusal was taken for the slow request's end, the fresh request stayed in flight
/// and counted as a miss 10 s later. An addressee slow once, then refusing at once
/// every time, was passed after about 30 s and the copy spread to the other
/// neighbours. Now each end carries its request's ticket: one miss only, the copy
/// stays on the addressee, and the slow request's late end changes nothing. Before
/// the fix this failed.
#[test]
fn a_quick_refusal_is_matched_to_its_own_request_not_an_older_slow_one() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "NN-X", "AA-X"]);
    let mut slow = None;
    let mut offers = 0;
    let mut at = 0;
    while at <= 120_000 {
        for s in retry_poll(&mut r, &connected, t(at)) {
            assert_eq!(s.to.as_str(), "AA-X", "passed at {at} ms");
            offers += 1;
            if slow.is_none() {
                // The first request is left unanswered.
                slow = Some(s.ticket);
            } else {
                r.on_hand_refused(&s.to, &s.key, s.ticket, "sender_quota");
            }
        }
        if at == 60_000 {
            // The slow request's late end (a signed refusal too).
            r.on_hand_refused(&code("AA-X"), &key, slow.unwrap(), "sender_quota");
        }
        at += 250;
    }
    assert!(offers >= 4, "{offers}");
    assert_eq!(r.held[&key].addressee_misses, 1);
}

/// s37: the auditor judges a relayed copy only when it had
/// `wlnode_audit::verify::MIN_JUDGED_LIFETIME_MS` left at the relay's custody, a
/// bound derived from these limits (the addressee's misses, how long one may stay
/// unanswered, the longest retry delay), which it keeps as constants of its own: the
/// two must agree, or an honest relay is judged on copies it could not pass on.
#[test]
fn the_auditors_lifetime_bound_uses_these_limits() {
    let l = MailLimits::default();
    assert_eq!(
        u64::from(l.addressee_misses),
        wlnode_audit::verify::ADDRESSEE_MISSES
    );
    assert_eq!(
        l.addressee_answer_ms,
        wlnode_audit::verify::ADDRESSEE_ANSWER_MS
    );
    assert_eq!(l.retry_max_ms, wlnode_audit::verify::RETRY_MAX_MS);
}

/// A hand-over whose end the network never reports (a lost end: the network ends
/// every request within its 120 s timeout) no longer keeps the item from that
/// neighbour for good. Before, the neighbour stayed in flight and `poll` never
/// offered it the item again: a message we relay sat until it expired, with us named
/// for it. Past `stale_request_ms` the next retry ends it as a failure and counts
/// it; the item is offered again; the lost end, should it come after all, changes
/// nothing but the count of unmatched ends.
#[test]
fn a_hand_over_whose_end_never_comes_is_ended_at_the_bound_and_offered_again() {
    let a_key = SecretKey::from_seed(&[1; 32]);
    let mut a = Mailer::new(code("AA-X"), MailLimits::default());
    let bound = a.limits.stale_request_ms;
    let env = envelope(1, "AA-X", "BB-X", b"hello", &a_key);
    a.send(env, t(0)).unwrap();
    let r = set(&["RR-X"]);
    let first = retry_poll(&mut a, &r, t(1));
    assert_eq!(first.len(), 1, "{first:?}");
    let lost = first[0].ticket;
    let key = first[0].key;
    // Up to the bound the request is only slow: R is not offered the item again.
    let mut at = 1;
    while at < bound {
        at += 30_000;
        let sends = retry_poll(&mut a, &r, t(at.min(bound)));
        assert!(sends.is_empty(), "at +{at} ms: {sends:?}");
        assert_eq!(a.take_stale_requests(), []);
    }
    // From the bound on it is taken as failed and counted, once, and R is offered
    // the item again once the item's backoff (at most `retry_max_ms`) has passed.
    let mut sends = retry_poll(&mut a, &r, t(bound + 1));
    assert_eq!(a.take_stale_requests(), [(code("RR-X"), key, lost)]);
    at = bound + 1;
    while sends.is_empty() && at <= bound + 1 + a.limits.retry_max_ms {
        at += 1_000;
        sends = retry_poll(&mut a, &r, t(at));
    }
    assert_eq!(a.take_stale_requests(), []);
    assert_eq!(sends.len(), 1, "offered again: {sends:?}");
    assert_eq!(sends[0].to, code("RR-X"));
    assert_ne!(sends[0].ticket, lost);
    // The lost end arriving after all is not the current request.
    a.on_handed(&code("RR-X"), &key, lost);
    assert_eq!(a.take_unmatched_ends(), 1);
    assert_eq!(a.take_stale_requests(), []);
    // A request that ends in time is never counted stale.
    a.on_handed(&code("RR-X"), &key, sends[0].ticket);
    let sends = retry_poll(&mut a, &r, t(3 * bound));
    assert_eq!(a.take_stale_requests(), [], "{sends:?}");
}

/// The sweep of lost ends for a message we relay to its addressee: a request
/// normally counts as a miss after 10 s (`note_slow_addressee`); when no retry ran
/// for the whole bound (a stalled event loop, a clock jump), the sweep ends it and
/// the miss is counted once, not twice, and the addressee is offered it again.
#[test]
fn a_lost_end_of_a_hand_over_to_the_addressee_is_one_miss() {
    let s_key = SecretKey::from_seed(&[1; 32]);
    let mut r = Mailer::new(code("RR-X"), MailLimits::default());
    let env = long_lived(1, "SS-X", "AA-X", &s_key);
    let key = (ItemKind::Message, env.header().id);
    assert_eq!(
        r.on_item(&code("SS-X"), MailItem::Envelope(env), t(0)),
        Intake::Relay
    );
    let connected = set(&["SS-X", "AA-X"]);
    let first = r.poll(&connected, t(0)).0;
    assert_eq!(targets(&first), ["AA-X"]);
    let bound = r.limits.stale_request_ms;
    r.retry(t(bound));
    assert_eq!(
        r.take_stale_requests(),
        [(code("AA-X"), key, first[0].ticket)]
    );
    assert_eq!(r.held[&key].addressee_misses, 1, "one miss, not two");
    let again = r.poll(&connected, t(bound)).0;
    assert_eq!(targets(&again), ["AA-X"], "offered again");
}
