//! Signed hand-over acknowledgements and flag bounds (issue 21), across real
//! in-process nodes on loopback TCP.
//!
//! - Every hand-over along a relay path is answered with the next hop's signed
//!   `MailAck`, which the handing node keeps in its `handed` audit event; the auditor
//!   checks it against the roster and turns `mail_not_logged` into a proven finding
//!   when the neighbour's log hides a message it signed for.
//! - A neighbour that answers without a valid signed ack (an older build's unsigned
//!   answer, another key's signature, another message's ack) gives no custody: the
//!   answer is refused, counted, audited and struck.
//! - A relay whose connected addressee never answers hands the message on to its
//!   other neighbours after a few tries (review s34-mail M1), so it is not named;
//!   so does one whose streams to its addressee are all held open (review s37-order
//!   H1), auditing the hand-overs that found no stream as `stream`.
//! - Flag messages pending in our outbox stay under the `[flags]` in-flight cap, and
//!   each user's flag writes are rate-limited (`flag_rate_limited`, HTTP 429).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use wlnode_audit::event::{Event, EventKind};
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::mail::{HandoverBody, MailAck, MailItem};
use wlnode_crypto::model::{AgencyCode, MessageId};
use wlnode_crypto::roster::Roster;
use wlnode_crypto::time::Timestamp;
use wlnode_runtime::flags::FlagError;
use wlnode_tests::{Cluster, FAST_SYNC, RawPeer, addr, agency, counter, wait_for};

const T: Duration = Duration::from_secs(120);

fn code(i: usize) -> AgencyCode {
    AgencyCode::new(agency(i)).unwrap()
}

async fn audit_events(c: &Cluster, i: usize) -> Vec<Event> {
    c.node(i)
        .services
        .store
        .call(|s| s.audit_events(0, s.audit_size()?))
        .await
        .unwrap()
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect()
}

/// Node `i`'s `mail` events about message `id` with `action` (item `message`).
fn mail_events<'a>(events: &'a [Event], id: &MessageId, action: &str) -> Vec<&'a EventKind> {
    events
        .iter()
        .map(|e| &e.kind)
        .filter(|k| {
            matches!(k, EventKind::Mail { action: a, message_id, item, .. }
                if a == action && *message_id == id.to_hex() && item == "message")
        })
        .collect()
}

fn roster_of(c: &Cluster) -> Roster {
    let (bytes, _) = wlnode_config::roster_file::read_signed(&c.fed.roster).unwrap();
    Roster::parse(&bytes).unwrap()
}

fn export(c: &Cluster, i: usize) -> wlnode_audit::event::ExportedLog {
    let key = read_secret_key(&c.fed.nodes[i].dir.join("node.key"), KeyKind::Node).unwrap();
    let store = wlnode_store::Store::open(&c.fed.nodes[i].dir.join("data")).unwrap();
    store
        .audit_export(&code(i), &key.public_key().peer_id())
        .unwrap()
}

/// Rewrites node `i`'s log to `events` and re-signs it, as a node hiding something
/// from its auditor would.
fn rewrite(c: &Cluster, i: usize, events: &[Event]) {
    let key = read_secret_key(&c.fed.nodes[i].dir.join("node.key"), KeyKind::Node).unwrap();
    let store = wlnode_store::Store::open(&c.fed.nodes[i].dir.join("data")).unwrap();
    store.set_audit_settings(wlnode_store::audit::AuditSettings {
        signer: Some((code(i), std::sync::Arc::new(key))),
        ..wlnode_store::audit::AuditSettings::default()
    });
    store.audit_rewrite(events).unwrap();
    // Checkpointed as if some minutes later: the auditor gives a neighbour
    // MAIL_LOGGED_MARGIN_MS after it signed an ack before its log must show the item.
    let later = Timestamp::now().as_millis() + 2 * wlnode_audit::verify::MAIL_LOGGED_MARGIN_MS;
    store
        .audit_checkpoint(later, true)
        .unwrap()
        .expect("a fresh checkpoint");
}

fn verify(c: &Cluster, n: usize) -> wlnode_audit::verify::Report {
    let logs: Vec<_> = (0..n).map(|i| export(c, i)).collect();
    wlnode_audit::verify::verify(
        &roster_of(c),
        &logs,
        &wlnode_audit::verify::AuditorState::default(),
        wlnode_audit::verify::Options::default(),
    )
}

fn decoded(log: &wlnode_audit::event::ExportedLog) -> Vec<Event> {
    log.events
        .iter()
        .map(|e| Event::decode(e.as_bytes()).unwrap())
        .collect()
}

/// The signed ack in a `mail` event, verified against the roster as signed by `by`.
fn signed_ack(kind: &EventKind, roster: &Roster, by: usize) -> MailAck {
    let EventKind::Mail { ack: Some(a), .. } = kind else {
        panic!("no ack in {kind:?}");
    };
    let ack = MailAck::from_hex(a).unwrap();
    ack.verify(roster, &code(by)).unwrap();
    ack
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_overs_through_a_relay_carry_signed_acks_that_prove_a_hidden_custody() {
    // A — B — C: A and C have no link.
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start_all().await;
    let id = c
        .node(0)
        .services
        .mail
        .send(&code(2), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    wait_for(T, "A and B audit their hand-overs", || async {
        !mail_events(&audit_events(&c, 0).await, &id, "handed").is_empty()
            && !mail_events(&audit_events(&c, 1).await, &id, "handed").is_empty()
    })
    .await;
    let roster = c.node(0).services.trust.roster();
    // A's `handed` carries B's signed custody ack, naming the message, A and B.
    let a_events = audit_events(&c, 0).await;
    let ack = signed_ack(mail_events(&a_events, &id, "handed")[0], &roster, 1);
    let b: &HandoverBody = ack.body();
    assert_eq!(
        (
            b.message_id,
            b.item.as_str(),
            b.from_hop.clone(),
            b.to_hop.clone(),
            b.accepted,
            b.reason.as_str()
        ),
        (Some(id), "message", Some(code(0)), code(1), true, "ok")
    );
    // Beside it, the copy's identity bytes (s38): metadata only, hashing to the
    // digest B signed, with the expiry the message carries.
    let copy_of = |kind: &EventKind| {
        let EventKind::Mail {
            copy: Some(hex_bytes),
            expires_at,
            ..
        } = kind
        else {
            panic!("no copy in {kind:?}");
        };
        let bytes = hex::decode(hex_bytes).unwrap();
        let copy = wlnode_crypto::mail::CopyIdentity::parse(&bytes).unwrap();
        assert_eq!(Some(copy.header.expires_at.as_millis()), *expires_at);
        assert_eq!(copy.header.id, id);
        copy
    };
    let a_copy = copy_of(mail_events(&a_events, &id, "handed")[0]);
    assert_eq!(Some(a_copy.digest), b.item_digest);
    // B's carries C's.
    let b_events = audit_events(&c, 1).await;
    let handed_to_c: Vec<_> = mail_events(&b_events, &id, "handed")
        .into_iter()
        .filter(|k| matches!(k, EventKind::Mail { peer: Some(p), .. } if *p == code(2)))
        .collect();
    let ack = signed_ack(handed_to_c[0], &roster, 2);
    assert_eq!(ack.body().from_hop, Some(code(1)));
    assert_eq!(Some(copy_of(handed_to_c[0]).digest), ack.body().item_digest);
    assert_eq!(
        copy_of(handed_to_c[0]),
        a_copy,
        "one copy, whatever the hop"
    );
    // C's answer signs the addressee (`/wlnode/mail/5`, review s32-mail L1).
    assert_eq!(ack.body().addressee, Some(code(2)));
    // C's log keeps B's signed offer of that copy (review s32-mail H1): B's route is
    // evidence in C's log whatever B's own log holds.
    let c_events = audit_events(&c, 2).await;
    let offers = mail_events(&c_events, &id, "offered");
    let [
        EventKind::Mail {
            peer: Some(by),
            ack: Some(offer),
            ..
        },
    ] = offers.as_slice()
    else {
        panic!("one offered event expected in C's log: {offers:?}");
    };
    assert_eq!(*by, code(1));
    let offer = wlnode_crypto::mail::HandoverOffer::from_hex(offer).unwrap();
    offer.verify(&roster, &code(1)).unwrap();
    assert_eq!(
        (
            offer.body().message_id,
            offer.body().to_hop.clone(),
            offer.body().hops,
            Some(offer.body().item_digest)
        ),
        (id, code(2), 1, ack.body().item_digest)
    );
    // B's `received` carries its own signed custody ack: the digest of the copy it
    // took, which a refusal must name to excuse it (review s31-mail H1).
    let own = signed_ack(mail_events(&b_events, &id, "received")[0], &roster, 1);
    assert_eq!(
        (own.body().from_hop.clone(), own.body().item_digest),
        (Some(code(0)), ack.body().item_digest)
    );
    wait_for(T, "A sees the receipt", || async {
        c.node(0)
            .services
            .mail
            .outbox_item(id)
            .await
            .unwrap()
            .is_some_and(|o| o.state == "delivered")
    })
    .await;
    for i in 0..3 {
        c.stop(i).await;
    }
    // The honest logs pass.
    let report = verify(&c, 3);
    let mail: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.kind.starts_with("mail_"))
        .collect();
    assert!(mail.is_empty(), "{mail:#?}");
    // C drops every trace of the message from its log: B's signed ack proves it took
    // custody, so the finding is proven.
    let c_events: Vec<Event> = decoded(&export(&c, 2))
        .into_iter()
        .filter(
            |e| !matches!(&e.kind, EventKind::Mail { message_id, .. } if *message_id == id.to_hex()),
        )
        .collect();
    rewrite(&c, 2, &c_events);
    let report = verify(&c, 3);
    let found: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.kind == "mail_not_logged")
        .map(|v| (v.node.clone(), v.proven))
        .collect();
    assert_eq!(found, vec![(format!("{}->{}", agency(1), agency(2)), true)]);
}

/// What a hostile neighbour answers to a hand-over.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// The unsigned `accepted = true` of `/wlnode/mail/2` (field 1 = 1, field 2 = "ok").
    Unsigned,
    /// A custody ack "signed" with a key the roster does not give the neighbour.
    ForeignKey,
    /// A custody ack, properly signed, for another message.
    OtherMessage,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_a_valid_signed_ack_is_no_custody_and_is_refused_counted_audited_and_struck()
 {
    // Each hostile answer against a node of its own, side by side: each ban waits out
    // the mail layer's retry backoff (offers about 0, 2, 6 and 14 s after the neighbour
    // connects), and three such waits need not add up.
    futures::future::join_all(
        [
            Hostile::Unsigned,
            Hostile::ForeignKey,
            Hostile::OtherMessage,
        ]
        .map(bad_acks_are_no_custody),
    )
    .await;
}

/// One neighbour of the test above, answering every hand-over as `hostile` does.
async fn bad_acks_are_no_custody(hostile: Hostile) {
    // A (node 0) and agency B, played by a raw peer with B's node key; C is the
    // recipient, never started. A bans after three strikes.
    let mut c = Cluster::simple(3, &[]);
    c.extra[0] = format!(
        "{}\n[sync]\nanti_entropy_interval = \"3s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"2s\"\nban_threshold = 3\n",
        wlnode_devtools::scaffold::OPEN_POLICY
    );
    c.start(0).await;
    let id = c
        .node(0)
        .services
        .mail
        .send(&code(2), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    let b_dir = c.fed.nodes[1].dir.clone();
    let b_key = read_secret_key(&b_dir.join("agency.key"), KeyKind::Agency).unwrap();
    let mut raw = RawPeer::speaking(
        wlnode_net::codec::MAIL_PROTOCOL,
        Some(RawPeer::seed_of(&b_dir)),
        wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
        1024,
    );
    let target = addr(&c, 0);
    let server = tokio::spawn(async move {
        raw.serve(
            &target,
            T,
            move |frame| {
                let item = MailItem::decode(frame).ok();
                let now = Timestamp::now();
                let out = match hostile {
                    Hostile::Unsigned => vec![0x08, 0x01, 0x12, 0x02, b'o', b'k'],
                    Hostile::ForeignKey => MailAck::sign(
                        item.as_ref(),
                        Some(&code(0)),
                        &code(1),
                        true,
                        "ok",
                        now,
                        &wlnode_crypto::SecretKey::generate().unwrap(),
                    )
                    .encode(),
                    Hostile::OtherMessage => MailAck::sign_body(
                        HandoverBody {
                            message_id: Some(MessageId([9; 16])),
                            item: "message".into(),
                            item_digest: None,
                            hops: None,
                            addressee: None,
                            from_hop: Some(code(0)),
                            to_hop: code(1),
                            accepted: true,
                            reason: "ok".into(),
                            at: now,
                            signer_key: b_key.public_key(),
                        },
                        &b_key,
                    )
                    .encode(),
                };
                bytes::Bytes::from(out)
            },
            |_| false,
        )
        .await
    });
    let what = format!("{hostile:?}: A bans the neighbour after three bad acks");
    wait_for(T, &what, || async {
        audit_events(&c, 0)
            .await
            .iter()
            .any(|e| matches!(&e.kind, EventKind::PeerBanned { agency, .. } if *agency == code(1)))
    })
    .await;
    server.abort();
    let events = audit_events(&c, 0).await;
    // Refused and audited as a bad ack, never as custody.
    let rejected: Vec<_> = mail_events(&events, &id, "rejected")
        .into_iter()
        .filter(|k| {
            matches!(k, EventKind::Mail { reason: Some(r), peer: Some(p), .. }
                if r.starts_with("bad_ack") && *p == code(1))
        })
        .collect();
    assert!(!rejected.is_empty(), "{hostile:?}: {events:?}");
    assert!(
        mail_events(&events, &id, "handed").is_empty(),
        "{hostile:?}: a bad ack counted as custody"
    );
    assert!(
        counter(
            &c.metrics(0),
            "wlnode_mail_rejected_total",
            &format!("peer=\"{}\",reason=\"bad_ack\"", agency(1))
        ) >= 3.0,
        "{hostile:?}"
    );
    // Our message is still ours, pending.
    assert_eq!(
        c.node(0)
            .services
            .mail
            .outbox_item(id)
            .await
            .unwrap()
            .unwrap()
            .state,
        "pending"
    );
    c.stop(0).await;
}

/// Review s35-mail M2 (s34-mail M1): the addressee is connected to the relay but
/// refuses the mail protocol (it speaks another version), so the relay, which
/// offers a connected addressee the message alone, gets no answer. The relay audits
/// that (`hand_failed`, reason `unsupported`, metadata only) once per addressee and
/// message an hour, however often it tries again (before the fix it logged
/// nothing); the sender's own hand-over to the relay is answered and leaves no such
/// event. (`timeout` takes the 120 s request timeout and is covered by the runtime
/// unit test; a closed connection or stream, an honest addressee's crash, is not
/// audited at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_audits_hand_overs_its_connected_addressee_refuses_the_protocol_of() {
    // A — B — C: C is a raw peer with C's node key that speaks another mail version.
    let mut c = Cluster::simple(3, &[(0, 1), (1, 2)]);
    c.start(0).await;
    c.start(1).await;
    let c_dir = c.fed.nodes[2].dir.clone();
    let mut raw = RawPeer::speaking(
        libp2p::StreamProtocol::new("/wlnode/mail/4"),
        Some(RawPeer::seed_of(&c_dir)),
        wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
        1024,
    );
    let target = addr(&c, 1);
    let server = tokio::spawn(async move { raw.ignore(&target, T, |_| false).await });
    let id = c
        .node(0)
        .services
        .mail
        .send(&code(2), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    wait_for(
        T,
        "B audits a hand-over C refused the protocol of",
        || async { !mail_events(&audit_events(&c, 1).await, &id, "hand_failed").is_empty() },
    )
    .await;
    server.abort();
    let events = audit_events(&c, 1).await;
    let failed = mail_events(&events, &id, "hand_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        matches!(failed[0], EventKind::Mail { peer: Some(p), reason: Some(r), to, ack: None, .. }
            if *p == code(2) && *to == code(2) && r == "unsupported"),
        "{failed:?}"
    );
    assert!(mail_events(&audit_events(&c, 0).await, &id, "hand_failed").is_empty());
    c.stop(0).await;
    c.stop(1).await;
}

/// s36-delay (issue 21 "delays"): a neighbour that takes the relay's hand-over
/// streams and drops them unanswered (what an addressee resetting one copy's
/// streams to frame the relay as delaying it would do) leaves a `hand_failed`
/// `stream` event in the relay's log: to the addressee, and to a neighbour that is
/// not the addressee (A — B — C, the message for D, which is down, so B offers it to
/// C). Before s36 a failed stream, and any failure to a non-addressee, was not
/// audited, so the auditor could not tell such a relay from one that held the copy
/// back (`mail_relay_delayed` is skipped on these events). The relay's own message,
/// whose hand-over C drops as well, leaves no such event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_audits_hand_over_streams_any_neighbour_drops() {
    for addressee in [2, 3] {
        // A — B — C (and D, the addressee in the second round, never started):
        // C is a raw peer with C's node key that speaks the mail protocol and drops
        // every request unanswered.
        let mut c = Cluster::simple(4, &[(0, 1), (1, 2), (1, 3)]);
        c.start(0).await;
        c.start(1).await;
        let c_dir = c.fed.nodes[2].dir.clone();
        let mut raw = RawPeer::speaking(
            wlnode_net::codec::MAIL_PROTOCOL,
            Some(RawPeer::seed_of(&c_dir)),
            wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
            1024,
        );
        let target = addr(&c, 1);
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = taken.clone();
        let server = tokio::spawn(async move {
            raw.ignore(&target, T, |n| {
                seen.store(n, std::sync::atomic::Ordering::SeqCst);
                false
            })
            .await
        });
        // First B's own message to C: C drops its stream too, but the failure of
        // the relay's own message is never audited (review s36-delay L2: checked on
        // B, whose hand-over fails, not on A, whose hand-overs succeed).
        let own = c
            .node(1)
            .services
            .mail
            .send(&code(2), "test.note", b"{}", 3_600_000)
            .await
            .unwrap();
        wait_for(T, "C takes and drops B's own hand-over", || async {
            taken.load(std::sync::atomic::Ordering::SeqCst) > 0
        })
        .await;
        let id = c
            .node(0)
            .services
            .mail
            .send(&code(addressee), "test.note", b"{}", 3_600_000)
            .await
            .unwrap();
        let failed_to_c = |events: &[Event]| {
            events
                .iter()
                .filter(|e| {
                    matches!(&e.kind, EventKind::Mail { action, message_id, peer: Some(p), .. }
                        if action == "hand_failed" && *message_id == id.to_hex() && *p == code(2))
                })
                .count()
        };
        wait_for(T, "B audits the hand-over stream C dropped", || async {
            failed_to_c(&audit_events(&c, 1).await) > 0
        })
        .await;
        server.abort();
        let events = audit_events(&c, 1).await;
        let failed = mail_events(&events, &id, "hand_failed");
        // A dropped stream shows as a reset stream, or as a closed connection when
        // the reset reaches B that way (review s36-delay L2); either clears B.
        assert!(
            failed.iter().any(|k| matches!(k,
                EventKind::Mail { peer: Some(p), reason: Some(r), to, ack: None, .. }
                    if *p == code(2) && *to == code(addressee)
                        && (r == "stream" || r == "closed"))),
            "{failed:?}"
        );
        // Once per neighbour and item an hour, however often B retries.
        assert_eq!(failed_to_c(&events), 1, "{failed:?}");
        // B's own message, whose hand-over to C failed first, is never audited so.
        assert!(
            mail_events(&events, &own, "hand_failed").is_empty(),
            "{events:?}"
        );
        c.stop(0).await;
        c.stop(1).await;
    }
}

/// The logs of nodes `nodes`, verified together.
fn verify_logs(c: &Cluster, nodes: &[usize]) -> wlnode_audit::verify::Report {
    let logs: Vec<_> = nodes.iter().map(|i| export(c, *i)).collect();
    wlnode_audit::verify::verify(
        &roster_of(c),
        &logs,
        &wlnode_audit::verify::AuditorState::default(),
        wlnode_audit::verify::Options::default(),
    )
}

/// S (0) — R (1) — N (3), with the addressee A (2) linked to R only as a raw peer,
/// never started as a node, that takes every mail request R makes and never answers:
/// it drops each stream (`hold` false) or holds it open until its own 20 s timeout
/// (`hold` true: R's streams to A stay full). A stays connected for longer than any
/// wait of the tests (the task is aborted at their end): were A to leave, R would
/// offer its mail to N as to an away addressee. Returns once R has handed A one
/// probe message, so R counts A as connected and the next message meets a
/// connected, silent addressee.
async fn relay_with_a_raw_addressee(hold: bool) -> (Cluster, tokio::task::JoinHandle<usize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut c = Cluster::simple(4, &[(0, 1), (1, 2), (1, 3)]);
    c.start(0).await;
    c.start(1).await;
    c.start(3).await;
    let mut raw = RawPeer::speaking(
        wlnode_net::codec::MAIL_PROTOCOL,
        Some(RawPeer::seed_of(&c.fed.nodes[2].dir)),
        wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
        1024,
    );
    let taken = Arc::new(AtomicUsize::new(0));
    let target = addr(&c, 1);
    let server = tokio::spawn({
        let taken = taken.clone();
        async move {
            let count = move |n| {
                taken.store(n, Ordering::SeqCst);
                false
            };
            if hold {
                raw.hold(&target, 3 * T, count).await
            } else {
                raw.ignore(&target, 3 * T, count).await
            }
        }
    });
    let _probe = c
        .node(0)
        .services
        .mail
        .send(&code(2), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    wait_for(T, "R hands mail to the silent addressee", || async {
        taken.load(Ordering::SeqCst) > 0
    })
    .await;
    (c, server)
}

/// Issue 21 §1, review s34-mail M1 (reopened in s35): the addressee stays connected
/// to the relay and never answers its hand-overs (a raw peer with the addressee's
/// node key that takes every mail stream and drops it unanswered). A relay offered a
/// connected addressee the message alone, so before the fix the honest relay kept
/// offering it there until it expired while it handed other mail to its other
/// neighbour, and `audit verify` named the relay alone (`mail_not_relayed`). Now,
/// after three hand-overs with no signed answer, the relay offers the copy to its
/// other connected neighbours too, as when the addressee is away: the neighbour
/// takes it with a signed ack. The test waits for that hand-over (event-driven,
/// review s36-m1 L1: no wait for the expiry by the clock); without the routing
/// change the wait times out. The audit of the logs then names no one (the copy,
/// handed on, gives the relay no finding whenever it expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_hands_mail_on_past_a_connected_addressee_that_never_answers() {
    let (mut c, server) = relay_with_a_raw_addressee(false).await;
    let mail = &c.node(0).services.mail;
    // A lifetime far longer than the test: nothing here waits for it.
    let id = mail
        .send(&code(2), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    // Other mail R hands to N while the message lives: a link N signed.
    let other = mail
        .send(&code(3), "test.note", b"{}", 3_600_000)
        .await
        .unwrap();
    wait_for(T, "N takes the other message", || async {
        mail.outbox_item(other)
            .await
            .unwrap()
            .is_some_and(|o| o.state == "delivered")
    })
    .await;
    // R passes the silent A and hands the copy to N (before the fix: never).
    let handed_to_n = |events: &[Event]| -> usize {
        mail_events(events, &id, "handed")
            .into_iter()
            .filter(|k| matches!(k, EventKind::Mail { peer: Some(p), .. } if *p == code(3)))
            .count()
    };
    wait_for(T, "R hands the message for A on to N", || async {
        handed_to_n(&audit_events(&c, 1).await) > 0
    })
    .await;
    server.abort();
    for i in [0, 1, 3] {
        c.stop(i).await;
    }
    let report = verify_logs(&c, &[0, 1, 3]);
    let mail_findings: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.kind.starts_with("mail_"))
        .collect();
    assert!(mail_findings.is_empty(), "{mail_findings:#?}");
    // R handed the copy to N once, and N signed that it took custody.
    let roster = roster_of(&c);
    let r_events = decoded(&export(&c, 1));
    assert_eq!(handed_to_n(&r_events), 1, "{r_events:?}");
    let to_n = mail_events(&r_events, &id, "handed")
        .into_iter()
        .find(|k| matches!(k, EventKind::Mail { peer: Some(p), .. } if *p == code(3)))
        .unwrap();
    let ack = signed_ack(to_n, &roster, 3);
    assert!(ack.accepted && ack.reason == "ok", "{ack:?}");
}

/// Review s37-order H1, on real nodes: the addressee A (a raw peer) takes every
/// request and holds it open unanswered, so the relay R's 64 streams to A stay full
/// and its further hand-overs to A find no stream (`net`'s `Busy`, from libp2p's
/// own limit). R audits those as `stream`, as before (no new reason in the log), the
/// copies waiting for a stream count as misses of A, and R hands every copy on to
/// its other neighbour N, the ones held back behind the 64 oldest too. A smoke test
/// of the path from libp2p to the mailer and the audit log: the old code (a plain
/// stream failure) passed it as well; the behaviour across polls is pinned by the
/// sans-IO tests (`sync/src/mail/tests.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_streams_to_its_addressee_are_full_hands_every_copy_on() {
    let (mut c, server) = relay_with_a_raw_addressee(true).await;
    let mail = &c.node(0).services.mail;
    // More copies than R has streams to A.
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(
            mail.send(&code(2), "test.note", b"{}", 3_600_000)
                .await
                .unwrap(),
        );
    }
    let to = |k: &EventKind, who: usize| matches!(k, EventKind::Mail { peer: Some(p), .. } if *p == code(who));
    wait_for(T, "R hands every copy for A on to N", || async {
        let events = audit_events(&c, 1).await;
        ids.iter().all(|id| {
            mail_events(&events, id, "handed")
                .into_iter()
                .any(|k| to(k, 3))
        })
    })
    .await;
    server.abort();
    let events = audit_events(&c, 1).await;
    let reasons: Vec<&str> = ids
        .iter()
        .flat_map(|id| mail_events(&events, id, "hand_failed"))
        .filter(|k| to(k, 2))
        .filter_map(|k| match k {
            EventKind::Mail { reason, .. } => reason.as_deref(),
            _ => None,
        })
        .collect();
    // Past its 64 streams R's hand-overs to A failed for want of a stream.
    assert!(reasons.len() > 10, "{reasons:?}");
    assert!(reasons.iter().all(|r| *r == "stream"), "{reasons:?}");
    for i in [0, 1, 3] {
        c.stop(i).await;
    }
}

/// A cluster whose node 1 allows `max_in_flight` flag messages and `burst` flag
/// writes per user (then one a minute).
fn flag_cluster(max_in_flight: usize, burst: u32) -> Cluster {
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.extra[1] = format!(
        "{}{}\n[flags]\nmax_in_flight = {max_in_flight}\nburst = {burst}\nper_minute = 1\n",
        wlnode_devtools::scaffold::OPEN_POLICY,
        FAST_SYNC
    );
    c
}

async fn pending_flag_messages(c: &Cluster, i: usize) -> usize {
    c.node(i)
        .services
        .mail
        .outbox(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == "flag" && o.state == "pending")
        .count()
}

/// Issue 21: up to 10,000 flags on different entries could put as many messages in
/// our own outbox (bound 8,192). Now at most `[flags] max_in_flight` flag messages
/// are pending; later ones are saved and wait, and go once earlier ones arrive. (With
/// the cap at 2 and 4 flags set while the origin is away, 4 were pending before.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_messages_in_flight_stay_under_the_cap_and_the_rest_follow() {
    let mut c = flag_cluster(2, 100);
    c.start_all().await;
    let names = [
        "Kestrel One",
        "Kestrel Two",
        "Kestrel Three",
        "Kestrel Four",
    ];
    let w = c
        .add_drafts(
            0,
            "flags",
            names.iter().map(|n| wlnode_tests::draft(n, None)).collect(),
        )
        .await;
    wait_for(T, "B holds A's entries", || async {
        let mut all = true;
        for x in &w {
            all &= !c
                .node(1)
                .services
                .store
                .entries_by_id(x.entry_id)
                .await
                .unwrap()
                .is_empty();
        }
        all
    })
    .await;
    c.stop(0).await;
    for (i, x) in w.iter().enumerate() {
        c.node(1)
            .services
            .flags
            .set("liaison", x.entry_id, None, format!("FLAG {i}"))
            .await
            .unwrap();
    }
    c.node(1).services.flags.retry().await.unwrap();
    assert_eq!(pending_flag_messages(&c, 1).await, 2);
    // Every flag is held and shown, whether its message went or waits.
    assert_eq!(c.node(1).services.flags.list().await.unwrap().len(), 4);
    // The origin comes back: the first two arrive, then the other two go.
    c.start(0).await;
    wait_for(T, "A's inbox has all four flags", || async {
        c.node(1).services.flags.retry().await.unwrap();
        let inbox = c.node(0).services.mail.inbox(100).await.unwrap();
        (0..4).all(|i| {
            inbox
                .iter()
                .any(|m| m.kind == "flag" && m.body.contains(&format!("FLAG {i}")))
        })
    })
    .await;
    c.stop(0).await;
    c.stop(1).await;
}

/// Review s31-mail M7: one origin that is away (or withholds receipts) holds at most
/// max_in_flight / 8 (at least 4) of the flag-message slots, so the others stay free
/// for every other origin. With the cap at 40 (5 per origin) and 6 flags on one
/// origin's entries while it is away, 6 were pending before; now 5, and the sixth
/// follows once the origin is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_origin_holds_at_most_its_share_of_the_flag_messages_in_flight() {
    let mut c = flag_cluster(40, 100);
    c.start_all().await;
    let names = [
        "Heron A", "Heron B", "Heron C", "Heron D", "Heron E", "Heron F",
    ];
    let w = c
        .add_drafts(
            0,
            "flags",
            names.iter().map(|n| wlnode_tests::draft(n, None)).collect(),
        )
        .await;
    wait_for(T, "B holds A's entries", || async {
        let mut all = true;
        for x in &w {
            all &= !c
                .node(1)
                .services
                .store
                .entries_by_id(x.entry_id)
                .await
                .unwrap()
                .is_empty();
        }
        all
    })
    .await;
    c.stop(0).await;
    for (i, x) in w.iter().enumerate() {
        c.node(1)
            .services
            .flags
            .set("liaison", x.entry_id, None, format!("FLAG {i}"))
            .await
            .unwrap();
    }
    c.node(1).services.flags.retry().await.unwrap();
    assert_eq!(pending_flag_messages(&c, 1).await, 5);
    c.start(0).await;
    wait_for(T, "A's inbox has all six flags", || async {
        c.node(1).services.flags.retry().await.unwrap();
        let inbox = c.node(0).services.mail.inbox(100).await.unwrap();
        (0..6).all(|i| {
            inbox
                .iter()
                .any(|m| m.kind == "flag" && m.body.contains(&format!("FLAG {i}")))
        })
    })
    .await;
    c.stop(0).await;
    c.stop(1).await;
}

/// Issue 21: flag writes are rate-limited per user (a token bucket): past the burst
/// a set or lift is refused `RateLimited` (HTTP 429 `flag_rate_limited`) before
/// anything is saved; another user is not affected; a no-op set costs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_writes_are_rate_limited_per_user() {
    let mut c = flag_cluster(1024, 2);
    c.start_all().await;
    let w = c
        .add_drafts(
            0,
            "flags",
            vec![
                wlnode_tests::draft("Plover One", None),
                wlnode_tests::draft("Plover Two", None),
            ],
        )
        .await;
    wait_for(T, "B holds A's entries", || async {
        let mut all = true;
        for x in &w {
            all &= !c
                .node(1)
                .services
                .store
                .entries_by_id(x.entry_id)
                .await
                .unwrap()
                .is_empty();
        }
        all
    })
    .await;
    let flags = c.node(1).services.flags.clone();
    let (e1, e2) = (w[0].entry_id, w[1].entry_id);
    flags.set("ann", e1, None, "R1".into()).await.unwrap();
    // The same flag again is a no-op and costs no token.
    flags.set("ann", e1, None, "R1".into()).await.unwrap();
    flags.set("ann", e2, None, "R2".into()).await.unwrap();
    let err = flags.lift("ann", e1, None).await.unwrap_err();
    assert!(matches!(err, FlagError::RateLimited { .. }), "{err}");
    assert!(err.to_string().contains("ann"), "{err}");
    // Nothing was saved: the flag is still set.
    assert!(
        flags
            .list()
            .await
            .unwrap()
            .iter()
            .any(|f| f.entry_id == e1 && f.reason == "R1")
    );
    // Another user has its own bucket.
    flags.lift("bob", e1, None).await.unwrap();
    // Over the API: 429 with the code `flag_rate_limited`.
    let admin = wlnode_client::Client::from_config(
        &wlnode_config::Config::load(&c.fed.nodes[1].config).unwrap(),
    )
    .unwrap();
    let v: serde_json::Value = admin
        .post_json(
            "/v1/users",
            &serde_json::json!({"user": "liaison", "roles": ["consultant"]}),
        )
        .await
        .unwrap();
    let liaison = wlnode_client::Client::new(
        c.node(1).api_addr,
        v["token"].as_str().unwrap().to_owned(),
        "node.toml".into(),
    )
    .unwrap();
    let mut statuses = Vec::new();
    for reason in ["A", "B", "C"] {
        let r = liaison
            .post_json::<_, serde_json::Value>(
                "/v1/flags",
                &serde_json::json!({"entry_id": e2.to_hex(), "reason": reason}),
            )
            .await;
        statuses.push(match r {
            Ok(_) => (200, String::new()),
            Err(wlnode_client::ClientError::Api { status, code, .. }) => (status, code),
            Err(e) => panic!("{e}"),
        });
    }
    assert_eq!(
        statuses,
        vec![
            (200, String::new()),
            (200, String::new()),
            (429, "flag_rate_limited".to_owned())
        ]
    );
    // (A handle to the node's services keeps its mail service alive: let it go.)
    drop(flags);
    c.stop(0).await;
    c.stop(1).await;
}

/// Review s33-mail L3 (and H1, M1 through the request handler itself): a raw peer
/// playing neighbour B hands node A copies of C's and D's messages for A over
/// `/wlnode/mail/5`, driving `on_mail_request` end to end.
/// - Without an offer, with an offer signed by another key, offering another copy,
///   offered to another node, or signed outside the clock skew: refused `no_offer`
///   (no strike: B is not banned), and no `offered` event.
/// - An expired copy with a valid offer: refused, and its offer not audited (the
///   offer is logged only for a copy that passes the checks).
/// - A valid offer: the copy is taken and delivered, and the offer is in A's log.
/// - D's message under the same id with its own valid offer: its offer is audited
///   too (one slot per copy digest, not per id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_request_handler_refuses_relayed_copies_without_a_valid_offer() {
    use wlnode_crypto::mail::{Draft, Envelope, HandoverOffer};
    use wlnode_tests::RawOutcome;
    let mut c = Cluster::simple(4, &[]);
    // A bans after three strikes: seven `no_offer` refusals would ban B if they
    // were strikes (review s34-mail L3: with the default threshold of 100 the
    // "no strike" check could not fail).
    c.extra[0] = format!(
        "{}{}ban_threshold = 3\n",
        wlnode_devtools::scaffold::OPEN_POLICY,
        FAST_SYNC
    );
    c.start(0).await;
    let a_addr = addr(&c, 0);
    let mut b = RawPeer::speaking(
        wlnode_net::codec::MAIL_PROTOCOL,
        Some(RawPeer::seed_of(&c.fed.nodes[1].dir)),
        wlnode_crypto::mail::MAX_FRAME_BYTES + 64,
        1024,
    );
    let key_of = |i: usize| {
        read_secret_key(&c.fed.nodes[i].dir.join("agency.key"), KeyKind::Agency).unwrap()
    };
    let (b_key, c_key, d_key) = (key_of(1), key_of(2), key_of(3));
    let a_enc = roster_of(&c)
        .encryption_key(&code(0), Timestamp::now())
        .unwrap();
    let now = Timestamp::now().as_millis();
    // A copy of `from`'s message `id` for A, one hop along (B relays it).
    let copy = |id: u8, from: usize, key: &wlnode_crypto::SecretKey, created: u64, expires: u64| {
        MailItem::Envelope(
            Envelope::seal(
                &Draft {
                    id: MessageId([id; 16]),
                    from: code(from),
                    to: code(0),
                    kind: "test.note",
                    created_at: Timestamp(created),
                    expires_at: Timestamp(expires),
                    plaintext: b"{}",
                },
                key,
                &a_enc,
            )
            .unwrap()
            .next_hop(),
        )
    };
    let hour = now + 3_600_000;
    let answer = |o: RawOutcome| match o {
        RawOutcome::Response(bytes) => MailAck::decode(&bytes).unwrap(),
        RawOutcome::Failed(e) => panic!("request failed: {e}"),
    };
    let offer = |item: &MailItem, to: usize, at: u64, key: &wlnode_crypto::SecretKey| {
        HandoverOffer::sign(item, &code(1), &code(to), Timestamp(at), key)
    };
    let skew = wlnode_crypto::mail::MAX_CLOCK_SKEW_MS;
    let other = copy(9, 2, &c_key, now, hour);
    let refused: Vec<(&str, MessageId, Vec<u8>)> = vec![
        (
            "no offer",
            MessageId([1; 16]),
            copy(1, 2, &c_key, now, hour).encode(),
        ),
        ("another key", MessageId([2; 16]), {
            let item = copy(2, 2, &c_key, now, hour);
            item.encode_offered(&offer(&item, 0, now, &c_key))
        }),
        ("another copy", MessageId([3; 16]), {
            let item = copy(3, 2, &c_key, now, hour);
            item.encode_offered(&offer(&other, 0, now, &b_key))
        }),
        ("another node", MessageId([4; 16]), {
            let item = copy(4, 2, &c_key, now, hour);
            item.encode_offered(&offer(&item, 2, now, &b_key))
        }),
        ("signed too early", MessageId([5; 16]), {
            let item = copy(5, 2, &c_key, now, hour);
            item.encode_offered(&offer(&item, 0, now - 2 * skew, &b_key))
        }),
        ("signed too late", MessageId([6; 16]), {
            let item = copy(6, 2, &c_key, now, hour);
            item.encode_offered(&offer(&item, 0, now + 2 * skew, &b_key))
        }),
    ];
    for (case, _, frame) in &refused {
        let ack = answer(b.request(&a_addr, frame.clone().into()).await);
        assert!(!ack.accepted, "{case}: {ack:?}");
        assert_eq!(ack.reason, "no_offer", "{case}");
    }
    // Expired (within the skew: no strike) with a valid offer: refused, offer not
    // audited.
    let expired_id = MessageId([7; 16]);
    let expired = copy(7, 2, &c_key, now - 7_200_000, now - 1_000);
    let ack = answer(
        b.request(
            &a_addr,
            expired
                .encode_offered(&offer(&expired, 0, now, &b_key))
                .into(),
        )
        .await,
    );
    assert!(!ack.accepted, "{ack:?}");
    assert_eq!(ack.reason, "expired");
    // A valid offer: taken. Its custody is acknowledged once durable, so every
    // event of the requests before it is in the log by then.
    let good_id = MessageId([8; 16]);
    let good = copy(8, 2, &c_key, Timestamp::now().as_millis(), hour);
    let ack = answer(
        b.request(
            &a_addr,
            good.encode_offered(&offer(&good, 0, Timestamp::now().as_millis(), &b_key))
                .into(),
        )
        .await,
    );
    assert!(ack.accepted, "{ack:?}");
    // D's message under the same id, with its valid offer: another copy, audited
    // in its own slot (A refuses it, the id being in use or seen).
    let same_id = copy(8, 3, &d_key, Timestamp::now().as_millis(), hour);
    let _ = answer(
        b.request(
            &a_addr,
            same_id
                .encode_offered(&offer(&same_id, 0, Timestamp::now().as_millis(), &b_key))
                .into(),
        )
        .await,
    );
    // Its custody acknowledged durably afterwards: a last valid copy.
    let last = copy(10, 2, &c_key, Timestamp::now().as_millis(), hour);
    let ack = answer(
        b.request(
            &a_addr,
            last.encode_offered(&offer(&last, 0, Timestamp::now().as_millis(), &b_key))
                .into(),
        )
        .await,
    );
    assert!(ack.accepted, "{ack:?}");
    let events = audit_events(&c, 0).await;
    for (case, id, _) in &refused {
        assert!(
            mail_events(&events, id, "offered").is_empty(),
            "{case}: an offer that is no evidence was audited"
        );
        assert!(mail_events(&events, id, "received").is_empty(), "{case}");
    }
    assert!(mail_events(&events, &expired_id, "offered").is_empty());
    let offers: Vec<_> = mail_events(&events, &good_id, "offered")
        .into_iter()
        .map(|k| match k {
            EventKind::Mail { from, ack, .. } => {
                let o = HandoverOffer::from_hex(ack.as_deref().unwrap()).unwrap();
                (from.clone(), o.body().item_digest)
            }
            other => panic!("not a mail event: {other:?}"),
        })
        .collect();
    assert_eq!(
        offers,
        [
            (code(2), good.identity_digest()),
            (code(3), same_id.identity_digest())
        ],
        "{events:?}"
    );
    assert!(!mail_events(&events, &good_id, "delivered").is_empty());
    // No strikes: B was never banned.
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::PeerBanned { agency, .. } if *agency == code(1))),
        "{events:?}"
    );
    c.stop(0).await;
}
