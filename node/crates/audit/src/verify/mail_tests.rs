//! The sealed-mail audit checks (`check_mail`) over hand-built logs signed with real
//! roster keys: the fixes of review s31-fixes (X1, X2, X8) and review s31-mail (M1,
//! M4). Kept apart from `verify/tests.rs` so mail and consultation work do not meet.

use wlnode_crypto::mail::{HandoverBody, HandoverOffer, MailAck, OfferBody};
use wlnode_crypto::model::MessageId;
use wlnode_crypto::{SecretKey, Timestamp};

use super::super::*;
use super::{
    MIN_JUDGED_LIFETIME_MS, OFFERS_LOGGED_PER_HOUR, SpanSums, first_uncovered, merge_cover,
};
use crate::event::{Checkpoint, EXPORT_FORMAT};

const NAMES: [&str; 5] = [
    "AA-EXPORT",
    "BB-CUSTOMS",
    "CC-TRADE",
    "DD-TRADE",
    "EE-TRADE",
];
/// Indices into [`NAMES`]: the sender, the relay, a neighbour, the addressee, another
/// neighbour.
const S: usize = 0;
const R: usize = 1;
const N: usize = 2;
const D: usize = 3;
const E: usize = 4;

struct Fixture {
    roster: Roster,
    agency_keys: Vec<SecretKey>,
    node_keys: Vec<SecretKey>,
}

fn fixture() -> Fixture {
    fixture_with("")
}

/// A signed roster of the four members, with `settings` (TOML lines) appended to its
/// `[federation_settings]`.
fn fixture_with(settings: &str) -> Fixture {
    fixture_revoking(settings, None)
}

/// [`fixture_with`], with member `revoked.0`'s key revoked at `revoked.1`.
fn fixture_revoking(settings: &str, revoked: Option<(usize, u64)>) -> Fixture {
    use wlnode_config::roster_edit::{self, NewMember};
    let authority = SecretKey::generate().unwrap();
    let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
    let (mut agency_keys, mut node_keys) = (Vec::new(), Vec::new());
    for agency in NAMES {
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                agency,
                wlnode_crypto::roster::Role::Member,
                key.public_key(),
                vec![node.public_key().peer_id()],
                &["eu"],
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        agency_keys.push(key);
        node_keys.push(node);
    }
    if let Some((i, at)) = revoked {
        text = roster_edit::revoke_key(
            &text,
            &ag(i),
            &agency_keys[i].public_key(),
            Timestamp(at),
            "compromised",
            &[],
        )
        .unwrap();
    }
    if !settings.is_empty() {
        text.push_str(&format!("\n[federation_settings]\n{settings}\n"));
    }
    let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
    Fixture {
        roster,
        agency_keys,
        node_keys,
    }
}

fn ag(i: usize) -> AgencyCode {
    NAMES[i].parse().unwrap()
}

fn id() -> String {
    "ab".repeat(16)
}

/// The roster's keys are valid from an hour ago: signed mail events use real times.
fn t0() -> u64 {
    Timestamp::now().as_millis() - 1_800_000
}

/// The copy of the sender's message the relay took.
const TAKEN: [u8; 32] = [7; 32];

/// `by`'s signed answer to `node`'s hand-over of a copy with `digest`, at the hop
/// count an honest node hands it at (0 from the sender, 1 from the relay).
fn answer(
    f: &Fixture,
    by: usize,
    node: usize,
    accepted: bool,
    reason: &str,
    at: u64,
    digest: [u8; 32],
) -> MailAck {
    let hops = u32::from(node != S);
    answer_hops(f, by, node, accepted, reason, at, digest, Some(hops))
}

/// [`answer`] signing the hop count `hops`.
#[allow(clippy::too_many_arguments)]
fn answer_hops(
    f: &Fixture,
    by: usize,
    node: usize,
    accepted: bool,
    reason: &str,
    at: u64,
    digest: [u8; 32],
    hops: Option<u32>,
) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&id()).unwrap()),
            item: "message".into(),
            item_digest: Some(digest),
            hops,
            addressee: None,
            from_hop: Some(ag(node)),
            to_hop: ag(by),
            accepted,
            reason: reason.into(),
            at: Timestamp(at),
            signer_key: f.agency_keys[by].public_key(),
        },
        &f.agency_keys[by],
    )
}

/// A `mail` event of a message from `sender` to `to` with neighbour `peer`.
fn mail(
    action: &str,
    sender: usize,
    to: usize,
    peer: usize,
    at: u64,
    expires_at: u64,
    ack: Option<&MailAck>,
) -> Event {
    Event::new(
        at,
        EventKind::Mail {
            action: action.into(),
            message_id: id(),
            item: "message".into(),
            from: ag(sender),
            to: ag(to),
            kind: "consult_request".into(),
            size: 1040,
            peer: Some(ag(peer)),
            reason: ack
                .filter(|_| action == "hand_refused")
                .map(|a| a.reason.clone()),
            expires_at: Some(expires_at),
            ack: ack.map(MailAck::to_hex),
            copy: None,
        },
    )
}

/// The relay's `received` of the sender's message for the addressee, with its own
/// signed custody ack of the copy [`TAKEN`].
fn took(f: &Fixture, at: u64, exp: u64) -> Event {
    let ack = answer(f, R, S, true, "ok", at, TAKEN);
    mail("received", S, D, S, at, exp, Some(&ack))
}

/// The log of node `i` with `events`, checkpointed once after the last.
fn log(f: &Fixture, i: usize, events: &[Event]) -> ExportedLog {
    let last = events.iter().map(|e| e.at).max().unwrap_or(1);
    log_at(f, i, events, &[(events.len() as u64, last)])
}

/// The log of node `i` with `events` and checkpoints of (size, signed time).
fn log_at(f: &Fixture, i: usize, events: &[Event], checkpoints: &[(u64, u64)]) -> ExportedLog {
    let mut tree = MemStore::new();
    for (n, e) in events.iter().enumerate() {
        merkle::append(&mut tree, n as u64, merkle::leaf_hash(&e.encode())).unwrap();
    }
    let key = &f.node_keys[i];
    ExportedLog {
        format: EXPORT_FORMAT.into(),
        agency: ag(i),
        peer_id: key.public_key().peer_id(),
        events: events
            .iter()
            .map(|e| String::from_utf8(e.encode()).unwrap())
            .collect(),
        checkpoints: checkpoints
            .iter()
            .map(|(size, timestamp)| {
                Checkpoint {
                    agency: ag(i),
                    peer_id: key.public_key().peer_id(),
                    size: *size,
                    root: hex::encode(merkle::root(&tree, *size).unwrap()),
                    timestamp: *timestamp,
                }
                .sign(key)
            })
            .collect(),
        headers: vec![],
    }
}

fn audit(f: &Fixture, logs: &[ExportedLog]) -> Report {
    verify(
        &f.roster,
        logs,
        &AuditorState::default(),
        Options {
            tolerance_ms: 0,
            now_ms: None,
            max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
        },
    )
}

/// The kinds of violations reported against `node`.
fn against(rep: &Report, node: usize) -> Vec<String> {
    rep.violations
        .iter()
        .filter(|v| v.node == NAMES[node])
        .map(|v| v.kind.clone())
        .collect()
}

/// Review s31-fixes X8: the relay took the sender's message (copy [`TAKEN`]) and
/// handed on only a message of its own under the same id, which the neighbour
/// accepted with a valid signed ack of that other copy. That is no hand-over of the
/// message it took: it is blamed (this failed before the fix). Handing the copy it
/// took clears it.
#[test]
fn handing_its_own_message_under_the_same_id_does_not_clear_a_relay() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let own = answer(&f, N, R, true, "ok", t + 60_000, [9; 32]);
    let events = [
        took(&f, t, exp),
        mail("handed", R, D, N, t + 60_000, exp, Some(&own)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert!(
        against(&rep, R).contains(&"mail_not_relayed".to_owned()),
        "{:?}",
        rep.violations
    );
    // Under the sender's name, but still another copy: blamed as well.
    let mut forged = events.clone();
    forged[1] = mail("handed", S, D, N, t + 60_000, exp, Some(&own));
    let rep = audit(&f, &[log(&f, R, &forged)]);
    assert!(
        against(&rep, R).contains(&"mail_not_relayed".to_owned()),
        "{:?}",
        rep.violations
    );
    // The copy it took, accepted by the neighbour: handed on.
    let real = answer(&f, N, R, true, "ok", t + 60_000, TAKEN);
    let mut honest = events.clone();
    honest[1] = mail("handed", S, D, N, t + 60_000, exp, Some(&real));
    let rep = audit(&f, &[log(&f, R, &honest)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
}

/// Review s31-fixes X1: the relay took the copy at hop count 7 (signed in its custody
/// ack); with a hop limit of 8 only the addressee, unreachable, may take it. The
/// neighbour's signed `too_many_hops` refusals of that copy at count 8 excuse it (it
/// was blamed before the fix). A refusal of the copy at 9 (the relay added a hop)
/// does not, nor one without a signed count (a `/wlnode/mail/3` answer).
#[test]
fn a_relay_given_a_copy_at_the_hop_limit_is_excused_by_signed_too_many_hops_refusals() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let relay_copy = |refused_hops: Option<u32>, digest: [u8; 32]| {
        let custody = answer_hops(&f, R, S, true, "ok", t, TAKEN, Some(7));
        let no = answer_hops(
            &f,
            N,
            R,
            false,
            "too_many_hops",
            t + 60_000,
            digest,
            refused_hops,
        );
        let events = [
            mail("received", S, D, S, t, exp, Some(&custody)),
            own_hand_over(&f, N, t + 60_000),
            mail("hand_refused", S, D, N, t + 60_000, exp, Some(&no)),
            Event::new(done, EventKind::NodeStopped),
        ];
        against(&audit(&f, &[log(&f, R, &events)]), R)
    };
    let relay = |hops| relay_copy(hops, TAKEN);
    assert!(relay(Some(8)).is_empty(), "{:?}", relay(Some(8)));
    // Another copy under the id (one the relay crafted at the limit): no evidence.
    assert!(relay_copy(Some(8), [8; 32]).contains(&"mail_not_relayed".to_owned()));
    assert!(relay(Some(9)).contains(&"mail_not_relayed".to_owned()));
    assert!(relay(None).contains(&"mail_not_relayed".to_owned()));
}

/// Review s31-fixes X1: an upstream that hands a copy at a higher hop count than it
/// had (the next hop signed the count it got) is proven `mail_hops_inflated`; an
/// honest hand-over is not reported.
#[test]
fn an_upstream_that_inflates_the_hop_count_is_proven() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let sender = |hops: u32| {
        let ack = answer_hops(&f, R, S, true, "ok", t, TAKEN, Some(hops));
        let events = [
            mail("handed", S, D, R, t, exp, Some(&ack)),
            Event::new(t + 1_000, EventKind::NodeStopped),
        ];
        audit(&f, &[log(&f, S, &events)])
    };
    assert!(against(&sender(0), S).is_empty());
    let rep = sender(7);
    assert_eq!(against(&rep, S), ["mail_hops_inflated"]);
    assert!(rep.violations[0].proven);
    // A relay that took the copy at 2 and handed it at 7.
    let custody = answer_hops(&f, R, S, true, "ok", t, TAKEN, Some(2));
    let onward = answer_hops(&f, N, R, true, "ok", t + 1_000, TAKEN, Some(7));
    let events = [
        mail("received", S, D, S, t, exp, Some(&custody)),
        mail("handed", S, D, N, t + 1_000, exp, Some(&onward)),
        Event::new(t + 2_000, EventKind::NodeStopped),
    ];
    assert_eq!(
        against(&audit(&f, &[log(&f, R, &events)]), R),
        ["mail_hops_inflated"]
    );
}

/// A moment of a mail link of the relay's with `to` (review s31-mail M1): it hands
/// a message of its own under the same id (another copy, at hop count 0) and `to`
/// signs that it took it.
fn own_hand_over(f: &Fixture, to: usize, at: u64) -> Event {
    let ack = answer_hops(f, to, R, true, "ok", at, [5; 32], Some(0));
    mail("handed", R, to, to, at, at + 3_600_000, Some(&ack))
}

/// The relay's events for a second message, from the addressee to the sender (another
/// key), taken at `at` and handed to the neighbour with signed acks.
fn second_message(f: &Fixture, at: u64, exp: u64) -> [Event; 2] {
    let custody = answer(f, R, D, true, "ok", at, [5; 32]);
    let onward = answer(f, N, R, true, "ok", at + 1_000, [5; 32]);
    [
        mail("received", D, S, D, at, exp, Some(&custody)),
        mail("handed", D, S, N, at + 1_000, exp, Some(&onward)),
    ]
}

/// Review s31-fixes X2 (framing at upgrade): an honest relay handed the sender's
/// message on before its upgrade (a bare `handed`, no acks then); after the upgrade
/// its log carries acks. The early hand-over still counts (before the fix every
/// bare `handed` of a log with any ack stopped counting).
#[test]
fn hand_overs_before_a_nodes_upgrade_still_count() {
    let f = fixture();
    let t = t0();
    let exp = t + 600_000;
    let mut events = vec![
        mail("received", S, D, S, t, exp, None),
        mail("handed", S, D, N, t + 60_000, exp, None),
    ];
    events.extend(second_message(&f, t + 900_000, t + 3_600_000));
    events.push(Event::new(t + 2 * 3_600_000, EventKind::NodeStopped));
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
}

/// Review s31-fixes X2 (evasion): a relay that strips every ack from its log is not
/// excused by its bare `handed` once the roster says every member signs hand-overs,
/// nor once another log holds an answer it signed earlier (its custody ack in the
/// sender's `handed`). Without either, its log is read as an older build's.
#[test]
fn a_relay_that_strips_its_acks_is_not_excused_after_the_cut_over() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    // It keeps the acks of its other hand-overs (its links: review s31-mail M1).
    let stripped = |f: &Fixture| {
        [
            mail("received", S, D, S, t, exp, None),
            mail("handed", S, D, N, t + 60_000, exp, None),
            own_hand_over(f, N, t + 120_000),
            Event::new(done, EventKind::NodeStopped),
        ]
    };
    let f = fixture();
    let rep = audit(&f, &[log(&f, R, &stripped(&f))]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
    // The roster's cut-over, before the relay took the message.
    let f = fixture_with(&format!("mail_acks_required_since = {}", t - 1_000));
    assert_eq!(
        f.roster.mail_acks_required_since(),
        Some(Timestamp(t - 1_000))
    );
    let rep = audit(&f, &[log(&f, R, &stripped(&f))]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    // A cut-over after it: an older build's log.
    let f = fixture_with(&format!("mail_acks_required_since = {}", done));
    let rep = audit(&f, &[log(&f, R, &stripped(&f))]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
    // No roster cut-over, but the sender's log holds the relay's signed custody ack.
    let f = fixture();
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = [
        mail("handed", S, D, R, t, exp, Some(&custody)),
        Event::new(t + 1_000, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, S, &sender), log(&f, R, &stripped(&f))]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    assert!(against(&rep, S).is_empty(), "{:?}", rep.violations);
}

/// Review s35-roster H1: a relay whose build logged the roster's
/// `mail_acks_required_since` as not understood (in its `roster_loaded`) did not
/// apply the cut-over, so its bare `handed` is read as that build's, as before a
/// cut-over: the roster's cut-over is no evidence against it (its own signed acks
/// still are). Another setting not understood changes nothing.
#[test]
fn a_relay_that_did_not_understand_the_mail_cut_over_is_not_judged_by_it() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let f = fixture_with(&format!("mail_acks_required_since = {}", t - 1_000));
    let run = |names: &[&str]| {
        vec![
            Event::new(
                t - 600_000,
                EventKind::NodeStarted {
                    version: "0.1.0".into(),
                },
            ),
            Event::new(
                t - 600_000,
                EventKind::RosterLoaded {
                    version: f.roster.version(),
                    not_understood: names.iter().map(|n| (*n).to_owned()).collect(),
                    not_understood_more: 0,
                },
            ),
            mail("received", S, D, S, t, exp, None),
            mail("handed", S, D, N, t + 60_000, exp, None),
            own_hand_over(&f, N, t + 120_000),
            Event::new(done, EventKind::NodeStopped),
        ]
    };
    let rep = audit(&f, &[log(&f, R, &run(&["some_later_setting"]))]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    let rep = audit(&f, &[log(&f, R, &run(&["mail_acks_required_since"]))]);
    // Not judged by the cut-over; the claim itself is proven against it (review of
    // s35-int, H2: a hostile relay could log it to escape the cut-over).
    assert_eq!(
        against(&rep, R),
        ["roster_setting_not_understood"],
        "{:?}",
        rep.violations
    );
}

fn audit_with(f: &Fixture, logs: &[ExportedLog], state: &AuditorState) -> Report {
    verify(
        &f.roster,
        logs,
        state,
        Options {
            tolerance_ms: 0,
            now_ms: None,
            max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
        },
    )
}

/// An auditor state that verified node `i`'s first `size` `events` at `verified_at`
/// (its own clock).
fn verified_head(i: usize, events: &[Event], size: u64, verified_at: u64) -> AuditorState {
    let mut tree = MemStore::new();
    for (n, e) in events.iter().enumerate() {
        merkle::append(&mut tree, n as u64, merkle::leaf_hash(&e.encode())).unwrap();
    }
    let mut state = AuditorState::default();
    state.heads.insert(
        ag(i),
        VerifiedHead {
            size,
            root: hex::encode(merkle::root(&tree, size).unwrap()),
            timestamp: verified_at,
            verified_at: Some(verified_at),
        },
    );
    state
}

/// Review s31-mail M4 and s32-mail H3: the addressee's key was revoked after it
/// signed a `full` refusal of the copy the relay took. The refusal still excuses the
/// relay (its route to the other neighbour) when this auditor verified a head
/// covering it before the revocation, by its own clock; not when only the relay's
/// own checkpoints date it, however early their signed times (a stolen key's
/// forgery is backdated so: the relay was excused before the s32 fix), not when the
/// auditor verified it only after the revocation, nor when the refusal claims a
/// time at or after the revocation.
#[test]
fn an_ack_of_a_key_revoked_later_counts_only_when_the_auditor_dated_it_before_the_revocation() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let revoked_at = t + 10 * 60_000;
    let f = fixture_revoking("", Some((N, revoked_at)));
    let events = |refused_at: u64| {
        let custody = answer(&f, R, S, true, "ok", t, TAKEN);
        let no = answer(&f, N, R, false, "full", refused_at, TAKEN);
        [
            mail("received", S, N, S, t, exp, Some(&custody)),
            mail("hand_refused", S, N, N, refused_at, exp, Some(&no)),
            own_hand_over(&f, D, t + 90_000),
            Event::new(done, EventKind::NodeStopped),
        ]
    };
    let relay = |refused_at: u64, checkpoints: &[(u64, u64)], state: &AuditorState| {
        let log = log_at(&f, R, &events(refused_at), checkpoints);
        against(&audit_with(&f, &[log], state), R)
    };
    let early = t + 60_000;
    let before = (2, t + 2 * 60_000);
    let after = (4, done);
    let none = AuditorState::default();
    let seen_before = verified_head(R, &events(early), 2, revoked_at - 1_000);
    assert!(
        relay(early, &[after], &seen_before).is_empty(),
        "{:?}",
        relay(early, &[after], &seen_before)
    );
    // Only the relay's own early checkpoint: its word, no evidence.
    assert_eq!(relay(early, &[before, after], &none), ["mail_not_relayed"]);
    assert_eq!(relay(early, &[after], &none), ["mail_not_relayed"]);
    // The auditor saw it only after the revocation.
    let seen_after = verified_head(R, &events(early), 2, revoked_at + 1_000);
    assert_eq!(relay(early, &[after], &seen_after), ["mail_not_relayed"]);
    // Dated before the revocation by the auditor, but signed after it: no evidence.
    let late = revoked_at + 1_000;
    let seen_before = verified_head(R, &events(late), 2, revoked_at - 1_000);
    assert_eq!(relay(late, &[after], &seen_before), ["mail_not_relayed"]);
}

/// Review s32-mail H3: a member holding the neighbour's stolen key forges, after the
/// revocation, the neighbour's `ok` custody ack of a message dated before it, and
/// backdates a checkpoint of its own over it. That is no proven `mail_not_logged`
/// against the neighbour (it was before the fix); even when this auditor dated the
/// ack before the revocation it is reported unproven only.
#[test]
fn a_stolen_key_does_not_prove_mail_not_logged_against_its_owner() {
    let t = t0();
    let exp = t + 3_600_000;
    let revoked_at = t + 10 * 60_000;
    let done = t + 20 * 60_000;
    let f = fixture_revoking("", Some((N, revoked_at)));
    let forged = answer(&f, N, R, true, "ok", t + 60_000, TAKEN);
    let relay = [
        took(&f, t, exp),
        mail("handed", S, D, N, t + 60_000, exp, Some(&forged)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let neighbour = [Event::new(done, EventKind::NodeStopped)];
    let logs = [
        log_at(&f, R, &relay, &[(2, t + 2 * 60_000), (3, done)]),
        log(&f, N, &neighbour),
    ];
    let proven_not_logged = |rep: &Report| {
        rep.violations
            .iter()
            .any(|v| v.kind == "mail_not_logged" && v.proven)
    };
    let rep = audit_with(&f, &logs, &AuditorState::default());
    assert!(!proven_not_logged(&rep), "{:?}", rep.violations);
    let rep = audit_with(&f, &logs, &verified_head(R, &relay, 2, t + 3 * 60_000));
    assert!(!proven_not_logged(&rep), "{:?}", rep.violations);
    assert!(
        rep.violations.iter().any(|v| v.kind == "mail_not_logged"),
        "{:?}",
        rep.violations
    );
}

/// Review s31-mail M1: a neighbour that keeps syncing records with the relay but
/// answers its hand-overs anonymously, with an ack of a bad time or not at all leaves
/// no mail evidence in the relay's log: record traffic is no route, so the relay is
/// not blamed (it was before the fix). A valid signed acceptance of other mail by
/// that neighbour is a route.
#[test]
fn record_traffic_is_no_route_for_mail() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let record_link = Event::new(
        t + 60_000,
        EventKind::Sent {
            record_id: wlnode_crypto::model::RecordId([3; 32]),
            to: ag(N),
            hops: 1,
            withheld: vec![],
            header: None,
            signature: None,
        },
    );
    let events = [
        took(&f, t, exp),
        record_link,
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert!(
        !against(&rep, R).contains(&"mail_not_relayed".to_owned()),
        "{:?}",
        rep.violations
    );
    let mut routed = events.clone();
    routed[1] = own_hand_over(&f, N, t + 60_000);
    let rep = audit(&f, &[log(&f, R, &routed)]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
}

/// Review s31-fixes X3: the neighbour is `full` (its global state). The relay logged
/// its signed `full` refusal for one message only (its per-neighbour evidence cap
/// was used up); that refusal covers its link moments with the neighbour for every
/// other message too (before the fix only a refusal naming the message counted).
#[test]
fn a_full_refusal_of_one_message_covers_the_relays_other_messages() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    // The refusal names a message of another sender (the addressee's, to S).
    let no = answer(&f, N, R, false, "full", t + 60_000, [5; 32]);
    let mut refusal = mail("hand_refused", D, S, N, t + 60_000, exp, Some(&no));
    if let EventKind::Mail { message_id, .. } = &mut refusal.kind {
        *message_id = "cd".repeat(16);
    }
    let no = MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&"cd".repeat(16)).unwrap()),
            ..no.body().clone()
        },
        &f.agency_keys[N],
    );
    if let EventKind::Mail { ack, .. } = &mut refusal.kind {
        *ack = Some(no.to_hex());
    }
    let events = [
        took(&f, t, exp),
        refusal,
        own_hand_over(&f, N, t + 120_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
    // Without it, the link moment is a route: blamed.
    let mut bare = events.to_vec();
    bare.remove(1);
    let rep = audit(&f, &[log(&f, R, &bare)]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
}

/// Review s31-fixes X4: the coverage walk over merged refusal intervals finds the
/// first uncovered link moment, also among many covered ones.
#[test]
fn coverage_is_found_between_merged_intervals() {
    let w = 10;
    let cover = merge_cover([100, 105, 300].into_iter(), w);
    assert_eq!(cover, [(90, 115), (290, 310)]);
    let times: Vec<u64> = (0..400).collect();
    assert_eq!(first_uncovered(&times, 95, 400, &cover), Some(116));
    assert_eq!(first_uncovered(&times, 95, 116, &cover), None);
    assert_eq!(first_uncovered(&[100, 295, 500], 0, 400, &cover), None);
    assert_eq!(first_uncovered(&[100, 295, 311], 0, 400, &cover), Some(311));
    assert_eq!(first_uncovered(&[], 0, 400, &cover), None);
    // A hundred thousand covered moments and one uncovered at the end.
    let mut times: Vec<u64> = (0..100_000).map(|i| i * 10).collect();
    times.push(2_000_000);
    let refusals = (0..100_000u64).map(|i| i * 10);
    let cover = merge_cover(refusals, w);
    assert_eq!(cover.len(), 1);
    assert_eq!(
        first_uncovered(&times, 0, u64::MAX, &cover),
        Some(2_000_000)
    );
}

/// Review s32-mail H4: the relay handed the sender's message to the honest neighbour,
/// which signed custody and logged `received` under the sender. The relay's own
/// `handed` event names another sender (the ack signs none): that is no proven
/// `mail_not_logged` against the neighbour (it was before the fix). A neighbour
/// whose log has no trace of the id at all is still proven.
#[test]
fn a_relabelled_sender_does_not_frame_the_neighbour() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 10 * 60_000;
    let ok = answer(&f, N, R, true, "ok", t + 60_000, TAKEN);
    let relay = [
        took(&f, t, exp),
        mail("handed", S, D, N, t + 60_000, exp, Some(&ok)),
        mail("handed", N, D, N, t + 61_000, exp, Some(&ok)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let neighbour = [
        mail("received", S, D, R, t + 60_000, exp, Some(&ok)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &neighbour)]);
    assert!(
        !rep.violations.iter().any(|v| v.kind == "mail_not_logged"),
        "{:?}",
        rep.violations
    );
    // The neighbour's log without the message: proven against it.
    let silent = [Event::new(done, EventKind::NodeStopped)];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &silent)]);
    assert!(
        rep.violations
            .iter()
            .any(|v| v.kind == "mail_not_logged" && v.proven),
        "{:?}",
        rep.violations
    );
}

/// `ack` re-signed by `by` for the message id `other`, and `event` naming that id.
fn under_id(f: &Fixture, by: usize, mut event: Event, ack: &MailAck, other: &str) -> Event {
    let ack = MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(other).unwrap()),
            ..ack.body().clone()
        },
        &f.agency_keys[by],
    );
    if let EventKind::Mail {
        message_id,
        ack: logged,
        ..
    } = &mut event.kind
    {
        *message_id = other.to_owned();
        *logged = Some(ack.to_hex());
    }
    event
}

/// Review s32-mail H1: a relay that took the sender's message and logs no hand-over
/// at all (or only ones stripped of their acks) still had a route: the neighbour's
/// log holds the relay's own signed custody ack of other mail while the message
/// lived, and its own ack-less `handed` is its word that the link worked. It is
/// blamed (it had no routes before the fix).
#[test]
fn a_relay_that_logs_no_acks_still_has_the_routes_its_signatures_show() {
    let f = fixture_with(&format!("mail_acks_required_since = {}", t0() - 1_000));
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let relay = [took(&f, t, exp), Event::new(done, EventKind::NodeStopped)];
    let signed = answer(&f, R, N, true, "ok", t + 60_000, [5; 32]);
    let other = "cd".repeat(16);
    let handed = mail("handed", N, D, R, t + 60_000, exp, Some(&signed));
    let neighbour = [
        under_id(&f, R, handed, &signed, &other),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &neighbour)]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    // Its own hand-over of other mail, stripped of the neighbour's ack.
    let stripped = [
        took(&f, t, exp),
        mail("handed", D, S, N, t + 60_000, exp, None),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &stripped)]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
}

/// Review s32-mail H2: in the signed era, a bare `handed` dated before the cut-over
/// (appended after the message's `received`) is no hand-over, and a `received`
/// dated at the expiry is dated by the relay's own signed custody ack instead. Both
/// excused the relay before the fix.
#[test]
fn backdated_or_postdated_events_do_not_excuse_a_relay() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    for settings in [
        String::new(),
        format!("mail_acks_required_since = {}", t - 1_000),
    ] {
        let f = fixture_with(&settings);
        let backdated = [
            took(&f, t, exp),
            own_hand_over(&f, N, t + 60_000),
            mail("handed", S, D, N, 1, exp, None),
            Event::new(done, EventKind::NodeStopped),
        ];
        let rep = audit(&f, &[log(&f, R, &backdated)]);
        assert_eq!(
            against(&rep, R),
            ["mail_not_relayed"],
            "{settings}: {:?}",
            rep.violations
        );
        let custody = answer(&f, R, S, true, "ok", t, TAKEN);
        let late = [
            mail("received", S, D, S, exp - 1, exp, Some(&custody)),
            own_hand_over(&f, N, t + 60_000),
            Event::new(done, EventKind::NodeStopped),
        ];
        let rep = audit(&f, &[log(&f, R, &late)]);
        assert_eq!(
            against(&rep, R),
            ["mail_not_relayed"],
            "{settings}: {:?}",
            rep.violations
        );
    }
}

/// Review s32-mail M1: the neighbour's only answers to the relay are signed `quota`
/// refusals of the message (a reason the relay cannot disprove): that is evidence
/// the relay tried, not a route, so it is not blamed (it was before the fix).
#[test]
fn signed_refusals_that_do_not_excuse_are_no_route() {
    let f = fixture();
    let t = t0();
    let exp = t + 600_000;
    let done = t + 3_600_000;
    let no = answer(&f, N, R, false, "quota", t + 60_000, TAKEN);
    let events = [
        took(&f, t, exp),
        mail("hand_refused", S, D, N, t + 60_000, exp, Some(&no)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
}

/// Review s32-mail H2 (attack C): the relay's `received` names no expiry, or a far
/// one; the sender's `handed` of it with the relay's signed custody ack names the
/// real one, so the relay is judged by it (it was skipped for good before the fix).
#[test]
fn the_upstreams_expiry_bounds_the_relays() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = [
        mail("handed", S, D, R, t, exp, Some(&custody)),
        Event::new(t + 1_000, EventKind::NodeStopped),
    ];
    for claimed in [None, Some(u64::MAX)] {
        let mut received = took(&f, t, exp);
        if let EventKind::Mail { expires_at, .. } = &mut received.kind {
            *expires_at = claimed;
        }
        let relay = [
            received,
            own_hand_over(&f, N, t + 60_000),
            Event::new(done, EventKind::NodeStopped),
        ];
        let rep = audit(&f, &[log(&f, S, &sender), log(&f, R, &relay)]);
        assert_eq!(
            against(&rep, R),
            ["mail_not_relayed"],
            "{claimed:?}: {:?}",
            rep.violations
        );
    }
}

/// Review s32-mail M2: the relay took the copy at hop count 0 (its custody ack in the
/// sender's log), names another upstream in its own `received` with a custody ack
/// it signs itself at 7, and hands the copy on at 8 so that the neighbour refuses it
/// `too_many_hops`. The lowest count it signed is the one taken: the refusal does
/// not excuse it, and, signed at 8 of the copy taken at 0, proves the inflation
/// (it was fully excused before the fix).
#[test]
fn a_relay_that_signs_itself_a_higher_count_is_not_excused_and_is_proven() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let real = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = [
        mail("handed", S, D, R, t, exp, Some(&real)),
        Event::new(t + 1_000, EventKind::NodeStopped),
    ];
    let claimed = answer_hops(&f, R, N, true, "ok", t, TAKEN, Some(7));
    let no = answer_hops(&f, N, R, false, "too_many_hops", t + 60_000, TAKEN, Some(8));
    let relay = [
        mail("received", S, D, N, t, exp, Some(&claimed)),
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, t + 60_000, exp, Some(&no)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, S, &sender), log(&f, R, &relay)]);
    let mut kinds = against(&rep, R);
    kinds.sort();
    assert_eq!(
        kinds,
        ["mail_hops_inflated", "mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    assert!(
        rep.violations
            .iter()
            .any(|v| v.kind == "mail_hops_inflated" && v.proven)
    );
    // Without the sender's log, its own count is all there is: excused.
    let rep = audit(&f, &[log(&f, R, &relay)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
}

/// Review s32-mail L7: handing the message back to the upstream it came from and
/// collecting its signed `seen` is no hand-over (it was before the fix); a `seen`
/// from another neighbour still is.
#[test]
fn handing_back_to_the_upstream_is_no_hand_over() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let back = answer(&f, S, R, true, "seen", t + 60_000, TAKEN);
    let events = [
        took(&f, t, exp),
        own_hand_over(&f, N, t + 60_000),
        mail("handed", S, D, S, t + 60_000, exp, Some(&back)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &events)]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
    let onward = answer(&f, N, R, true, "seen", t + 60_000, TAKEN);
    let mut honest = events.clone();
    honest[2] = mail("handed", S, D, N, t + 60_000, exp, Some(&onward));
    let rep = audit(&f, &[log(&f, R, &honest)]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
}

/// Review s32-mail L5: the relay handed the copy it took to the neighbour, which
/// accepted with a valid signed ack; the neighbour's key was revoked afterwards and
/// no head this auditor verified dates the ack. The relay is not blamed (it was
/// before the fix: the hand-over counted as none and its other link as a route).
/// An ack claimed before the custody began does not clear it.
#[test]
fn a_hand_over_to_a_neighbour_revoked_later_does_not_blame_the_relay() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let revoked_at = t + 10 * 60_000;
    let f = fixture_revoking("", Some((N, revoked_at)));
    let relay = |accepted_at: u64| {
        let ok = answer(&f, N, R, true, "ok", accepted_at, TAKEN);
        let events = [
            took(&f, t, exp),
            mail("handed", S, D, N, t + 60_000, exp, Some(&ok)),
            own_hand_over(&f, D, t + 90_000),
            Event::new(done, EventKind::NodeStopped),
        ];
        against(&audit(&f, &[log(&f, R, &events)]), R)
    };
    assert!(relay(t + 60_000).is_empty(), "{:?}", relay(t + 60_000));
    assert_eq!(relay(t - 60_000), ["mail_not_relayed"]);
}

/// Review s32-mail M2 (no framing by the fix): a relay that took the copy at 2 and
/// handed it at 3 is honest even when another node's log holds its custody ack of
/// another message under the same id at 0: counts are compared per copy (digest).
#[test]
fn another_copy_under_the_id_does_not_make_a_hand_over_inflated() {
    let f = fixture();
    let t = t0();
    let exp = t + 600_000;
    let custody = answer_hops(&f, R, S, true, "ok", t, TAKEN, Some(2));
    let onward = answer_hops(&f, N, R, true, "ok", t + 1_000, TAKEN, Some(3));
    let relay = [
        mail("received", S, D, S, t, exp, Some(&custody)),
        mail("handed", S, D, N, t + 1_000, exp, Some(&onward)),
        Event::new(t + 2_000, EventKind::NodeStopped),
    ];
    let other = answer_hops(&f, R, D, true, "ok", t + 1_500, [9; 32], Some(0));
    let crafted = [
        mail("handed", D, S, R, t + 1_500, exp, Some(&other)),
        Event::new(t + 2_000, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, D, &crafted)]);
    assert!(
        !against(&rep, R).contains(&"mail_hops_inflated".to_owned()),
        "{:?}",
        rep.violations
    );
}

/// `by`'s signed offer (`/wlnode/mail/5`) of message `mid`'s copy `digest` to
/// `keeper`, as the `offered` event of `keeper`'s log.
fn offered(f: &Fixture, by: usize, keeper: usize, mid: &str, digest: [u8; 32], at: u64) -> Event {
    offered_hops(f, by, keeper, mid, digest, at, 1)
}

/// [`offered`] signing the hop count `hops`.
fn offered_hops(
    f: &Fixture,
    by: usize,
    keeper: usize,
    mid: &str,
    digest: [u8; 32],
    at: u64,
    hops: u32,
) -> Event {
    let offer = HandoverOffer::sign_body(
        OfferBody {
            message_id: MessageId::from_hex(mid).unwrap(),
            item: "message".into(),
            item_digest: digest,
            hops,
            from_hop: ag(by),
            to_hop: ag(keeper),
            at: Timestamp(at),
            signer_key: f.agency_keys[by].public_key(),
        },
        &f.agency_keys[by],
    );
    Event::new(
        at,
        EventKind::Mail {
            action: "offered".into(),
            message_id: mid.into(),
            item: "message".into(),
            from: ag(S),
            to: ag(D),
            kind: "consult_request".into(),
            size: 1040,
            peer: Some(ag(by)),
            reason: None,
            expires_at: Some(at + 3_600_000),
            ack: Some(offer.to_hex()),
            copy: None,
        },
    )
}

/// Violations of `kind` reported against `node` (alone or in a pair `node->...`).
fn naming(rep: &Report, kind: &str, node: &str) -> Vec<String> {
    rep.violations
        .iter()
        .filter(|v| v.kind == kind && (v.node == node || v.node.starts_with(&format!("{node}->"))))
        .map(|v| v.node.clone())
        .collect()
}

/// Review s32-mail H1 residual: the relay took the sender's message (its signed
/// custody ack is in the sender's log) and leaves every other event out of its own
/// log. Its signed offers of other mail in the neighbours' logs show it had routes
/// while the message lived; no log holds its offer of the copy it took: reported
/// (against the pair with one such neighbour, against the relay with two; never
/// proven: the silence is the neighbours' word). Not reported when a neighbour's log
/// holds its offer of the copy (an honest relay, whatever its neighbours answered),
/// when that neighbour had handed it the message itself,
/// when the addressee's log is not in the audit (the addressee alone is offered the
/// message while reachable), or when the other offers came too late to matter.
#[test]
fn a_relay_that_logs_nothing_is_seen_by_the_offers_in_its_neighbours_logs() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    let relay = log(
        &f,
        R,
        &[took(&f, t, exp), Event::new(done, EventKind::NodeStopped)],
    );
    let keeper = |i: usize, offers: Vec<Event>| {
        let mut events = offers;
        events.push(Event::new(done, EventKind::NodeStopped));
        log(&f, i, &events)
    };
    let route = || offered(&f, R, N, &other, [5; 32], t + 60_000);
    let addressee = keeper(D, vec![]);
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(N, vec![route()]),
            addressee.clone(),
        ],
    );
    let found = naming(&rep, "mail_not_relayed", NAMES[R]);
    assert_eq!(
        found,
        [format!("{}->{}", NAMES[R], NAMES[N])],
        "{:?}",
        rep.violations
    );
    assert!(
        rep.violations.iter().all(|v| !v.proven),
        "{:?}",
        rep.violations
    );
    // Two neighbours (not the addressee) it offered other mail to: against the
    // relay.
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(N, vec![route()]),
            keeper(E, vec![offered(&f, R, E, &other, [5; 32], t + 90_000)]),
            addressee.clone(),
        ],
    );
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [NAMES[R]],
        "{:?}",
        rep.violations
    );
    // Review s33-mail M2: it offered other mail to the addressee too, which was
    // then reachable and alone had to be offered the message: against the pair
    // with the addressee, not the relay alone nor with the other neighbour.
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(N, vec![route()]),
            keeper(D, vec![offered(&f, R, D, &other, [5; 32], t + 90_000)]),
        ],
    );
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [format!("{}->{}", NAMES[R], NAMES[D])],
        "{:?}",
        rep.violations
    );
    // Its offer of the copy it took is in a neighbour's log: not blamed, whatever
    // that neighbour answered.
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(
                N,
                vec![route(), offered(&f, R, N, &id(), TAKEN, t + 61_000)],
            ),
            addressee.clone(),
        ],
    );
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
    // The neighbour had the message itself (its log shows it handed it to the relay,
    // which signed `seen`): a relay does not offer it back, so no silence to explain.
    let seen = answer(&f, R, N, true, "seen", t + 30_000, TAKEN);
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(
                N,
                vec![
                    mail("handed", S, D, R, t + 30_000, exp, Some(&seen)),
                    route(),
                ],
            ),
            addressee.clone(),
        ],
    );
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
    // Review s33-mail M3: the neighbour handed the relay another message under the
    // id (the relay's own, say), which the relay answered `seen`: that neighbour
    // never had the copy the relay took, and stays a route (it was taken out before
    // the fix); here the relay's signed answer in its log is a link too, so the
    // older rule reports it first.
    let other_copy = answer(&f, R, N, true, "seen", t + 30_000, [9; 32]);
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(
                N,
                vec![
                    mail("handed", R, E, R, t + 30_000, exp, Some(&other_copy)),
                    route(),
                ],
            ),
            addressee.clone(),
        ],
    );
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [NAMES[R]],
        "{:?}",
        rep.violations
    );
    // An offer of another copy under the id is no offer of the one it took.
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(
                N,
                vec![route(), offered(&f, R, N, &id(), [8; 32], t + 61_000)],
            ),
            addressee.clone(),
        ],
    );
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]).len(),
        1,
        "{:?}",
        rep.violations
    );
    // The addressee's log is not in the audit: it may have been offered it alone.
    let rep = audit(
        &f,
        &[sender.clone(), relay.clone(), keeper(N, vec![route()])],
    );
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
    // Its only other offer came just before the expiry: no time left to offer this.
    let late = offered(&f, R, N, &other, [5; 32], exp - 60_000);
    let rep = audit(
        &f,
        &[
            sender.clone(),
            relay.clone(),
            keeper(N, vec![late]),
            addressee.clone(),
        ],
    );
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
    // An offer signed by another key than the relay's is no route.
    let mut forged = route();
    if let EventKind::Mail { ack, .. } = &mut forged.kind {
        let o = HandoverOffer::from_hex(ack.as_deref().unwrap()).unwrap();
        *ack = Some(HandoverOffer::sign_body(o.body().clone(), &f.agency_keys[N]).to_hex());
    }
    let rep = audit(&f, &[sender, relay, keeper(N, vec![forged]), addressee]);
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
}

/// Review s32-mail L1: a `full` refusal signs the refused item's addressee. One of a
/// message addressed to the refusing neighbour itself speaks of its delivery state
/// and no longer covers the relay's hand-overs of mail it would relay; one of relayed
/// mail still does.
#[test]
fn a_full_refusal_covers_only_the_state_it_names() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 3_600_000;
    let refusal = |addressee: usize| {
        let no = answer(&f, N, R, false, "full", t + 60_000, [5; 32]);
        let no = MailAck::sign_body(
            HandoverBody {
                message_id: Some(MessageId::from_hex(&"cd".repeat(16)).unwrap()),
                addressee: Some(ag(addressee)),
                ..no.body().clone()
            },
            &f.agency_keys[N],
        );
        let mut e = mail("hand_refused", S, addressee, N, t + 60_000, exp, Some(&no));
        if let EventKind::Mail { message_id, .. } = &mut e.kind {
            *message_id = "cd".repeat(16);
        }
        [
            took(&f, t, exp),
            e,
            own_hand_over(&f, N, t + 120_000),
            Event::new(done, EventKind::NodeStopped),
        ]
    };
    // N was full as a relay (the refused message was for D): covers.
    let rep = audit(&f, &[log(&f, R, &refusal(D))]);
    assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
    // N was full for its own mail (the refused message was for N): no cover.
    let rep = audit(&f, &[log(&f, R, &refusal(N))]);
    assert_eq!(
        against(&rep, R),
        ["mail_not_relayed"],
        "{:?}",
        rep.violations
    );
}

/// Review s32-mail H3 residual: the auditor dated the relay's first head (holding a
/// refusal signed by a key revoked later) before the revocation, then adopted a
/// longer head of the same log after it. The dating survives: the refusal still
/// excuses the relay in the next run (it was lost with the latest head alone).
/// State written before the history was kept loads, and the history stays bounded.
#[test]
fn the_auditors_dating_survives_adopting_the_next_head() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let revoked_at = t + 10 * 60_000;
    let f = fixture_revoking("", Some((N, revoked_at)));
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let no = answer(&f, N, R, false, "full", t + 60_000, TAKEN);
    let events = [
        mail("received", S, N, S, t, exp, Some(&custody)),
        mail("hand_refused", S, N, N, t + 60_000, exp, Some(&no)),
        own_hand_over(&f, D, t + 90_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let seen_before = verified_head(R, &events, 2, revoked_at - 1_000);
    // The auditor adopts the head of size 3 (after the revocation, by its clock).
    let run = |state: &AuditorState, size: u64, now: u64| {
        verify(
            &f.roster,
            &[log_at(&f, R, &events[..size as usize], &[(size, done)])],
            state,
            Options {
                tolerance_ms: 0,
                now_ms: Some(now),
                max_checkpoint_age_ms: u64::MAX / 4,
            },
        )
    };
    let second = run(&seen_before, 3, revoked_at + 60_000);
    assert_eq!(second.state.heads[&ag(R)].size, 3);
    assert_eq!(
        second.state.earlier[&ag(R)],
        [DatedHead {
            size: 2,
            verified_at: revoked_at - 1_000
        }]
    );
    // The next run, on the whole log: the refusal is still dated before the
    // revocation, by the earlier head.
    let third = run(&second.state, 4, revoked_at + 120_000);
    assert!(against(&third, R).is_empty(), "{:?}", third.violations);
    // Without the history (state as written before it was kept): blamed.
    let mut old = second.state.clone();
    old.earlier.clear();
    let json = serde_json::to_string(&old).unwrap();
    assert!(!json.contains("earlier"), "{json}");
    let old: AuditorState = serde_json::from_str(&json).unwrap();
    let third = run(&old, 4, revoked_at + 120_000);
    assert_eq!(
        against(&third, R),
        ["mail_not_relayed"],
        "{:?}",
        third.violations
    );
    // Bounded: the oldest and newest heads stay.
    let mut list = Vec::new();
    for size in 1..=400 {
        super::super::remember_head(
            &mut list,
            DatedHead {
                size,
                verified_at: size,
            },
            &[],
        );
    }
    assert_eq!(list.len(), MAX_EARLIER_HEADS);
    assert_eq!((list[0].size, list[MAX_EARLIER_HEADS - 1].size), (1, 400));
}

/// Review s33-mail H4: the neighbour logged the relay's signed offer of the message
/// and answered with a signed `seen` without taking it; its log holds nothing else of
/// the id. The offer is no trace of having had the message, so the neighbour is
/// still proven `mail_not_logged` (review s31-mail M3; it was not before the fix).
#[test]
fn an_offer_in_the_log_is_no_trace_of_having_had_the_message() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 20 * 60_000;
    let seen = answer(&f, N, R, true, "seen", t + 60_000, TAKEN);
    let relay = [
        took(&f, t, exp),
        mail("handed", S, D, N, t + 60_000, exp, Some(&seen)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let neighbour = [
        offered(&f, R, N, &id(), TAKEN, t + 60_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &neighbour)]);
    assert!(
        rep.violations.iter().any(|v| v.kind == "mail_not_logged"
            && v.proven
            && v.node == format!("{}->{}", NAMES[R], NAMES[N])),
        "{:?}",
        rep.violations
    );
}

/// Review s33-mail M4: the honest relay took the message from the sender, whose log
/// is not in the audit, and another neighbour handed it the message too (its log
/// shows the relay's signed `seen`). The relay's acceptances by the sender of other
/// mail are no route for this message: a relay does not hand a message back to its
/// upstream (it was blamed before the fix). A neighbour that only claims in the
/// relay's own label to be its upstream, and whose audited log shows no hand-over of
/// the id, is still a route.
#[test]
fn an_unaudited_upstream_stays_no_route_when_another_neighbour_handed_the_message_too() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let seen = answer(&f, R, N, true, "seen", t + 30_000, TAKEN);
    let relay = [
        took(&f, t, exp),
        own_hand_over(&f, S, t + 60_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let neighbour = [
        mail("handed", S, D, R, t + 30_000, exp, Some(&seen)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &neighbour)]);
    assert!(
        naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
        "{:?}",
        rep.violations
    );
    // The sender's log is audited and holds no hand-over of the id to the relay: the
    // upstream the relay names is its word only, and its link to it a route.
    let sender = [Event::new(done, EventKind::NodeStopped)];
    let rep = audit(
        &f,
        &[
            log(&f, R, &relay),
            log(&f, N, &neighbour),
            log(&f, S, &sender),
        ],
    );
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [NAMES[R]],
        "{:?}",
        rep.violations
    );
}

/// Review s33-mail H2: the relay took the copy (its custody ack in the sender's log)
/// and offered other mail to a neighbour while it lived; its only offer of the copy
/// went back to the sender it came from, or after the copy expired, or at an
/// inflated hop count that every neighbour refuses. None of these is relaying: it is
/// reported (each excused it before the fix). An offer of the copy at its count
/// before the expiry still excuses it.
#[test]
fn an_offer_back_late_or_inflated_does_not_excuse_a_relay() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = |extra: Vec<Event>| {
        let mut events = vec![mail("handed", S, D, R, t, exp, Some(&custody))];
        events.extend(extra);
        events.push(Event::new(done, EventKind::NodeStopped));
        log(&f, S, &events)
    };
    let relay = log(
        &f,
        R,
        &[took(&f, t, exp), Event::new(done, EventKind::NodeStopped)],
    );
    let keeper = |i: usize, offers: Vec<Event>| {
        let mut events = offers;
        events.push(Event::new(done, EventKind::NodeStopped));
        log(&f, i, &events)
    };
    let route = || offered(&f, R, N, &other, [5; 32], t + 60_000);
    let addressee = keeper(D, vec![]);
    let reported = |s: ExportedLog, n: ExportedLog| {
        let rep = audit(&f, &[s, relay.clone(), n, addressee.clone()]);
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    let pair = [format!("{}->{}", NAMES[R], NAMES[N])];
    // Back to the upstream.
    let back = offered(&f, R, S, &id(), TAKEN, t + 61_000);
    assert_eq!(reported(sender(vec![back]), keeper(N, vec![route()])), pair);
    // After the expiry.
    let late = offered(&f, R, N, &id(), TAKEN, exp + 60_000);
    assert_eq!(
        reported(sender(vec![]), keeper(N, vec![route(), late])),
        pair
    );
    // At an inflated hop count.
    let inflated = offered_hops(&f, R, N, &id(), TAKEN, t + 61_000, 255);
    assert_eq!(
        reported(sender(vec![]), keeper(N, vec![route(), inflated])),
        pair
    );
    // Honest: to the neighbour, at its count, before the expiry.
    let honest = offered(&f, R, N, &id(), TAKEN, t + 61_000);
    assert!(reported(sender(vec![]), keeper(N, vec![route(), honest])).is_empty());
}

/// Review s33-mail H5: the relay took the copy (its custody ack in the sender's log)
/// and keeps a `received` event, but labels it with another sender or another
/// upstream. The offer-based rule is keyed by its signed custody, not by those
/// labels: it is still reported (it was skipped before the fix).
#[test]
fn a_relay_with_false_labels_on_its_received_event_is_still_judged() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            offered(&f, R, N, &other, [5; 32], t + 60_000),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    let addressee = log(&f, D, &[Event::new(done, EventKind::NodeStopped)]);
    let pair = [format!("{}->{}", NAMES[R], NAMES[N])];
    for (label_sender, label_upstream) in [(S, S), (E, S), (S, N), (E, N)] {
        let relay = log(
            &f,
            R,
            &[
                mail(
                    "received",
                    label_sender,
                    D,
                    label_upstream,
                    t,
                    exp,
                    Some(&custody),
                ),
                Event::new(done, EventKind::NodeStopped),
            ],
        );
        let rep = audit(
            &f,
            &[sender.clone(), relay, neighbour.clone(), addressee.clone()],
        );
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            pair,
            "sender {label_sender}, upstream {label_upstream}: {:?}",
            rep.violations
        );
    }
}

/// Review s33-mail L5: the neighbour's log holds the relay's offer of other mail, but
/// its latest checkpoint predates the copy's expiry: its silence about the copy
/// after that checkpoint is no evidence, so the relay is not reported (it was before
/// the fix). The same with the addressee's checkpoint stale.
#[test]
fn a_log_is_silent_only_up_to_its_checkpoint() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    let relay = log(
        &f,
        R,
        &[took(&f, t, exp), Event::new(done, EventKind::NodeStopped)],
    );
    let route = [
        offered(&f, R, N, &other, [5; 32], t + 60_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let stopped = [Event::new(done, EventKind::NodeStopped)];
    let stale = t + 1_800_000;
    let run = |n: ExportedLog, d: ExportedLog| {
        let rep = audit(&f, &[sender.clone(), relay.clone(), n, d]);
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    assert_eq!(
        run(log(&f, N, &route), log(&f, D, &stopped)),
        [format!("{}->{}", NAMES[R], NAMES[N])]
    );
    assert!(run(log_at(&f, N, &route, &[(1, stale)]), log(&f, D, &stopped)).is_empty());
    let early = [
        Event::new(t + 1_000, EventKind::NodeStopped),
        Event::new(done, EventKind::NodeStopped),
    ];
    assert!(run(log(&f, N, &route), log_at(&f, D, &early, &[(1, stale)])).is_empty());
}

/// `by`'s signed custody ack (`ok`) of `node`'s hand-over of the copy [`TAKEN`],
/// signing `addressee` as the message's addressee (`/wlnode/mail/5`).
fn custody_for(f: &Fixture, by: usize, node: usize, at: u64, addressee: usize) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&id()).unwrap()),
            item: "message".into(),
            item_digest: Some(TAKEN),
            hops: Some(u32::from(node != S)),
            addressee: Some(ag(addressee)),
            from_hop: Some(ag(node)),
            to_hop: ag(by),
            accepted: true,
            reason: "ok".into(),
            at: Timestamp(at),
            signer_key: f.agency_keys[by].public_key(),
        },
        &f.agency_keys[by],
    )
}

/// Review s33-mail H5 variant: the relay took the sender's message for the addressee
/// (its custody ack in the sender's log signs the addressee) but labels it in its own
/// log as addressed to itself: a `received` to itself, a `delivered`, or both beside
/// its true `received`. Before the fix such a label put the message among those the
/// relay had delivered and no rule judged it; now the signed addressee decides, and
/// the relay is reported as with honest labels. An honest trail where the relay is
/// the addressee it signed (it did take delivery) gives no finding.
#[test]
fn a_relay_that_labels_the_message_as_addressed_to_itself_is_still_judged() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let neighbour = log(
        &f,
        N,
        &[
            offered(&f, R, N, &other, [5; 32], t + 60_000),
            stopped.clone(),
        ],
    );
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let relay_with = |addressed: usize, events: Vec<Event>| {
        let custody = custody_for(&f, R, S, t, addressed);
        let sender = log(
            &f,
            S,
            &[
                mail("handed", S, addressed, R, t, exp, Some(&custody)),
                stopped.clone(),
            ],
        );
        let mut events = events;
        events.push(stopped.clone());
        let relay = log(&f, R, &events);
        audit(&f, &[sender, relay, neighbour.clone(), addressee.clone()])
    };
    let own = custody_for(&f, R, S, t, D);
    let to_itself = mail("received", S, R, S, t, exp, Some(&own));
    let delivered = |at| {
        let mut e = mail("delivered", S, R, S, at, exp, None);
        if let EventKind::Mail { peer, .. } = &mut e.kind {
            *peer = None;
        }
        e
    };
    let pair = [format!("{}->{}", NAMES[R], NAMES[N])];
    for (case, events) in [
        ("received to itself", vec![to_itself.clone()]),
        (
            "received to itself and delivered",
            vec![to_itself.clone(), delivered(t + 1_000)],
        ),
        ("delivered only", vec![delivered(t)]),
        (
            "true received and a delivered",
            vec![
                mail("received", S, D, S, t, exp, Some(&own)),
                delivered(t + 1_000),
            ],
        ),
    ] {
        let rep = relay_with(D, events);
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            pair,
            "{case}: {:?}",
            rep.violations
        );
        assert!(rep.violations.iter().all(|v| !v.proven), "{case}");
    }
    // Honest: the relay is the addressee it signed, and took delivery.
    let mine = custody_for(&f, R, S, t, R);
    let rep = relay_with(
        R,
        vec![
            mail("received", S, R, S, t, exp, Some(&mine)),
            delivered(t + 1_000),
        ],
    );
    assert!(rep.violations.is_empty(), "{:?}", rep.violations);
}

/// Review s33-mail L4: the auditor adopted more heads of the relay's log than the bound around a
/// revocation. Only one head holding the neighbour's `full` refusal (signed before
/// the revocation by the key revoked later) was verified before the revocation, and
/// it was closest to the head before it (by size and by time): the thinning dropped
/// it, the next head was verified after the revocation, and the honest relay was
/// blamed. Now the head that dates evidence against a known revocation stays; the
/// history is still bounded, and the relay is not blamed.
#[test]
fn thinning_the_head_history_keeps_the_head_that_dated_an_ack() {
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let revoked_at = t + 10 * 60_000;
    let f = fixture_revoking("", Some((N, revoked_at)));
    let custody = answer(&f, R, S, true, "ok", t, TAKEN);
    let no = answer(&f, N, R, false, "full", t + 60_000, TAKEN);
    let mut events = vec![
        Event::new(t - 1_000, EventKind::NodeStopped),
        mail("received", S, N, S, t, exp, Some(&custody)),
        mail("hand_refused", S, N, N, t + 60_000, exp, Some(&no)),
        own_hand_over(&f, D, t + 90_000),
    ];
    for n in 0..2 * MAX_EARLIER_HEADS as u64 + 20 {
        events.push(Event::new(t + 100_000 + n, EventKind::NodeStopped));
    }
    events.push(Event::new(done, EventKind::NodeStopped));
    // Heads: size 2 (before the refusal) and size 3 (holding it, the only one
    // verified before the revocation, one event and one second after the one
    // before), then sizes 5, 7, ... verified a minute apart after the revocation.
    let mut heads = vec![
        DatedHead {
            size: 2,
            verified_at: revoked_at - 2_000,
        },
        DatedHead {
            size: 3,
            verified_at: revoked_at - 1_000,
        },
    ];
    for n in 0..MAX_EARLIER_HEADS as u64 + 8 {
        heads.push(DatedHead {
            size: 5 + 2 * n,
            verified_at: revoked_at + 60_000 * (n + 1),
        });
    }
    let latest = heads.pop().unwrap();
    let run = |keep: &[u64]| {
        let mut list = Vec::new();
        for h in &heads {
            super::super::remember_head(&mut list, *h, keep);
        }
        assert_eq!(list.len(), MAX_EARLIER_HEADS);
        let mut state = verified_head(R, &events, latest.size, latest.verified_at);
        state.earlier.insert(ag(R), list);
        let rep = verify(
            &f.roster,
            &[log_at(&f, R, &events, &[(events.len() as u64, done)])],
            &state,
            Options {
                tolerance_ms: 0,
                now_ms: Some(latest.verified_at + 60_000),
                max_checkpoint_age_ms: u64::MAX / 4,
            },
        );
        against(&rep, R)
    };
    let revocations: Vec<u64> = f
        .roster
        .revocations()
        .map(|(_, r)| r.revoked_at.as_millis())
        .collect();
    assert_eq!(revocations, [revoked_at]);
    assert!(run(&revocations).is_empty());
    // Thinned without regard to the revocation (as before the fix): blamed.
    assert_eq!(run(&[]), ["mail_not_relayed"]);
}

/// Review s33-mail M2 residual: the relay offered the copy to the addressee alone
/// (reachable: it answered the relay's hand-over with a signed `/wlnode/mail/5`
/// refusal for a reason that excuses nothing), and the addressee left every offer
/// of the relay out of its log. The relay's only other route is an honest
/// neighbour that never had to hold the offer: the pair with the addressee is
/// named, not the pair with that neighbour (as before the fix). An older refusal
/// that signs no addressee (no `/5` answer) changes nothing. Review s34-mail M2:
/// when that refusal names the very copy, for a reason given only after the offer
/// was checked, it proves the offer: the relay is not named, the addressee alone is
/// (`mail_offer_not_logged`, unproven), and nobody when its log holds the offer.
#[test]
fn an_addressee_that_drops_every_offer_of_the_relay_is_named_not_an_honest_neighbour() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            offered(&f, R, N, &other, [5; 32], t + 60_000),
            stopped.clone(),
        ],
    );
    let silent_addressee = log(&f, D, std::slice::from_ref(&stopped));
    let run = |signs_addressee: bool, reason: &str, digest: [u8; 32], addressee: &ExportedLog| {
        let no = MailAck::sign_body(
            HandoverBody {
                message_id: Some(MessageId::from_hex(&id()).unwrap()),
                item: "message".into(),
                item_digest: Some(digest),
                hops: Some(1),
                addressee: signs_addressee.then(|| ag(D)),
                from_hop: Some(ag(R)),
                to_hop: ag(D),
                accepted: false,
                reason: reason.into(),
                at: Timestamp(t + 120_000),
                signer_key: f.agency_keys[D].public_key(),
            },
            &f.agency_keys[D],
        );
        let relay = log(
            &f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                mail("hand_refused", S, D, D, t + 120_000, exp, Some(&no)),
                stopped.clone(),
            ],
        );
        let rep = audit(
            &f,
            &[sender.clone(), relay, neighbour.clone(), addressee.clone()],
        );
        assert!(
            rep.violations.iter().all(|v| !v.proven),
            "{:?}",
            rep.violations
        );
        (
            naming(&rep, "mail_not_relayed", NAMES[R]),
            naming(&rep, "mail_offer_not_logged", NAMES[D]),
        )
    };
    let none: [String; 0] = [];
    // A refusal of another copy under the id proves no offer of this one.
    let (relayed, _) = run(true, "quota", [5; 32], &silent_addressee);
    assert_eq!(relayed, [format!("{}->{}", NAMES[R], NAMES[D])]);
    // Nor does a `no_offer` refusal (given before the offer is checked).
    let (relayed, _) = run(true, "no_offer", TAKEN, &silent_addressee);
    assert_eq!(relayed, [format!("{}->{}", NAMES[R], NAMES[D])]);
    let (relayed, _) = run(false, "quota", [5; 32], &silent_addressee);
    assert_eq!(relayed, [format!("{}->{}", NAMES[R], NAMES[N])]);
    // Review s34-mail M2: the addressee's signed `quota` refusal of the very copy
    // (given only after it checked the relay's offer) proves the relay offered it:
    // the relay is not named; the addressee, whose log left the offer out, is,
    // alone and unproven.
    let (relayed, dropped) = run(true, "quota", TAKEN, &silent_addressee);
    assert_eq!(relayed, none);
    assert_eq!(dropped, [NAMES[D]]);
    // An honest addressee that logged the offer: no finding at all.
    let honest = log(
        &f,
        D,
        &[
            offered(&f, R, D, &id(), TAKEN, t + 120_000),
            stopped.clone(),
        ],
    );
    let (relayed, dropped) = run(true, "quota", TAKEN, &honest);
    assert_eq!((relayed, dropped), (none.to_vec(), none.to_vec()));
}

/// Review s33-mail M1 residual ("the saturation rule trusts the keeper's count"):
/// the relay, with a colluding sender, filled the neighbour's log with its offers
/// for one hour early in the copy's six-hour lifetime (1,024 offers, the per-hour
/// cap), and offered it other mail again hours later, when the neighbour's log took
/// every offer. Before the fix one saturated hour took the neighbour out as a route
/// for the whole lifetime; now only the moments it covers: reported. With the
/// saturated hour alone, still not reported (the log may have left the offer out).
#[test]
fn one_saturated_hour_does_not_excuse_a_relay_for_the_whole_lifetime() {
    let f = fixture();
    let t = t0();
    let exp = t + 6 * 3_600_000;
    let done = exp + 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let flood: Vec<Event> = (0..OFFERS_LOGGED_PER_HOUR as u64)
        .map(|n| {
            offered(
                &f,
                R,
                N,
                &format!("{:032x}", 1_000 + n),
                [5; 32],
                t + 60_000 + n * 1_000,
            )
        })
        .collect();
    let run = |later: bool| {
        let mut events = flood.clone();
        if later {
            events.push(offered(
                &f,
                R,
                N,
                &"cd".repeat(16),
                [5; 32],
                t + 3 * 3_600_000,
            ));
        }
        events.push(stopped.clone());
        let rep = audit(
            &f,
            &[
                sender.clone(),
                relay.clone(),
                log(&f, N, &events),
                addressee.clone(),
            ],
        );
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    assert_eq!(run(true), [format!("{}->{}", NAMES[R], NAMES[N])]);
    assert!(run(false).is_empty());
}

/// Review s34-mail L5, s35-mail H1/M3: the relay, with a colluding sender, keeps
/// the neighbour's log at the hourly cap with offers of distinct copies (1,200 an
/// hour, for three and a half hours of the copy's six-hour life) and offers nothing
/// else: every offer lies in a saturated moment, so before s35 nothing was
/// reported. Now the pair `RELAY->NEIGHBOUR` is named `mail_relay_saturated_neighbour`
/// (unproven; never either alone: the keeper may have padded its log). Two busy
/// hours (1,024 copies each, about 70% of the life by the old spans of an hour on
/// either side) name nobody (less than three hours really saturated), nor does one
/// busy hour in a two-hour life (100% before the fix), nor a keeper's log padded
/// with every retry of eight copies over the same hours (named the relay alone
/// before the fix), nor a neighbour whose log says it received the copy from the
/// relay, nor a busy relay whose log holds the neighbour's signed refusal
/// of the very copy (it offered it).
#[test]
fn a_neighbour_saturated_by_the_relay_for_most_of_a_copys_life_names_the_pair() {
    let f = fixture();
    let t = t0();
    let run = |life: u64, hours: &[&Vec<Event>], extra: &[Event]| {
        let exp = t + life;
        let done = exp + 3_600_000;
        let stopped = Event::new(done, EventKind::NodeStopped);
        let custody = custody_for(&f, R, S, t, D);
        let sender = log(
            &f,
            S,
            &[
                mail("handed", S, D, R, t, exp, Some(&custody)),
                stopped.clone(),
            ],
        );
        let mut mine = vec![mail("received", S, D, S, t, exp, Some(&custody))];
        mine.extend_from_slice(extra);
        mine.push(stopped.clone());
        let mut events: Vec<Event> = hours.iter().flat_map(|h| h.iter().cloned()).collect();
        events.sort_by_key(|e| e.at);
        events.push(stopped.clone());
        let rep = audit(
            &f,
            &[
                sender,
                log(&f, R, &mine),
                log(&f, N, &events),
                log(&f, D, std::slice::from_ref(&stopped)),
            ],
        );
        assert!(
            rep.violations.iter().all(|v| !v.proven),
            "{:?}",
            rep.violations
        );
        // Never anyone alone.
        assert!(against(&rep, N).is_empty(), "{:?}", rep.violations);
        assert!(against(&rep, R).is_empty(), "{:?}", rep.violations);
        (
            naming(&rep, "mail_relay_saturated_neighbour", NAMES[R]),
            naming(&rep, "mail_not_relayed", NAMES[R]),
        )
    };
    // `count` offers of distinct copies `every` ms apart from `from`.
    let flood = |from: u64, base: u64, count: u64, every: u64| -> Vec<Event> {
        (0..count)
            .map(|n| {
                offered(
                    &f,
                    R,
                    N,
                    &format!("{:032x}", base + n),
                    [5; 32],
                    from + n * every,
                )
            })
            .collect()
    };
    let none: Vec<String> = Vec::new();
    let six = 6 * 3_600_000;
    let pair = format!("{}->{}", NAMES[R], NAMES[N]);
    // Three and a half hours at 1,200 distinct copies an hour: about 60% of the
    // window, over three hours.
    let long = flood(t + 60_000, 1_000, 4_200, 3_000);
    assert_eq!(run(six, &[&long], &[]), (vec![pair], none.clone()));
    // The neighbour took the copy (its `received` names the relay) while its log
    // was at the cap, and the relay left the hand-over out of its own log: the
    // neighbour's word that it got it spares the relay, and nobody is named.
    let took_it = vec![mail("received", S, D, R, t + 120_000, t + six, None)];
    assert_eq!(
        run(six, &[&long, &took_it], &[]),
        (none.clone(), none.clone())
    );
    // Two busy hours.
    let count = OFFERS_LOGGED_PER_HOUR as u64;
    let first = flood(t + 60_000, 10_000, count, 1_000);
    let second = flood(t + 4 * 3_600_000, 20_000, count, 1_000);
    assert_eq!(
        run(six, &[&first, &second], &[]),
        (none.clone(), none.clone())
    );
    // One busy hour (spread over 51 minutes) in a two-hour life.
    let busy = flood(t + 60_000, 30_000, count, 3_000);
    assert_eq!(
        run(2 * 3_600_000, &[&busy], &[]),
        (none.clone(), none.clone())
    );
    // A padded log: eight copies the relay offered again and again (its retries
    // sign fresh offers), each retry logged: 1,200 offers an hour for three and a
    // half hours, as above, but of eight distinct copies.
    let padded: Vec<Event> = (0..4_200u64)
        .map(|n| {
            offered(
                &f,
                R,
                N,
                &format!("{:032x}", 40_000 + n % 8),
                [5; 32],
                t + 60_000 + n * 3_000,
            )
        })
        .collect();
    assert_eq!(run(six, &[&padded], &[]), (none.clone(), none.clone()));
    // A busy relay that offered the copy: the neighbour's signed refusal of it
    // (given after the offer was checked) is in its log.
    let no = MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&id()).unwrap()),
            item: "message".into(),
            item_digest: Some(TAKEN),
            hops: Some(1),
            addressee: Some(ag(D)),
            from_hop: Some(ag(R)),
            to_hop: ag(N),
            accepted: false,
            reason: "quota".into(),
            at: Timestamp(t + 120_000),
            signer_key: f.agency_keys[N].public_key(),
        },
        &f.agency_keys[N],
    );
    let refused = mail("hand_refused", S, D, N, t + 120_000, t + six, Some(&no));
    assert_eq!(run(six, &[&long], &[refused]), (none.clone(), none));
}

/// Review s35-mail H2, M1, M2: the relay's own `hand_failed` events (its unsigned
/// word that the addressee did not answer) never change who is named. The offer rule
/// names the pair with the one other neighbour the relay offered other mail to, and
/// the link rule the relay alone, with or without them (before the fix both named
/// the pair with the addressee: a hostile relay moved its finding onto an honest
/// addressee at will). A `timeout` or `unsupported` event of the message to its
/// addressee is noted in the finding, with whether the addressee's audited log shows
/// it running then; a `connection_closed` one (an honest addressee's crash) is not
/// even noted, nor one to another neighbour.
#[test]
fn a_relays_failed_hand_overs_to_the_addressee_never_change_who_is_named() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let received = mail("received", S, D, S, t, exp, Some(&custody));
    let failed = |at: u64, to: usize, why: &str| {
        let mut e = mail("hand_failed", S, to, to, at, exp, None);
        if let EventKind::Mail { reason, .. } = &mut e.kind {
            *reason = Some(why.into());
        }
        e
    };
    let addressee = log(
        &f,
        D,
        &[
            Event::new(
                t + 100_000,
                EventKind::NodeStarted {
                    version: "s35".into(),
                },
            ),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            offered(&f, R, N, &other, [5; 32], t + 60_000),
            stopped.clone(),
        ],
    );
    let run = |relay_events: &[Event]| {
        let mut mine = vec![received.clone()];
        mine.extend_from_slice(relay_events);
        mine.push(stopped.clone());
        let rep = audit(
            &f,
            &[
                sender.clone(),
                log(&f, R, &mine),
                neighbour.clone(),
                addressee.clone(),
            ],
        );
        // (The link's hand-over is not in the neighbour's log: `mail_not_logged`.)
        assert!(
            rep.violations
                .iter()
                .all(|v| !v.proven || v.kind == "mail_not_logged"),
            "{:?}",
            rep.violations
        );
        assert!(against(&rep, D).is_empty(), "{:?}", rep.violations);
        let found: Vec<_> = rep
            .violations
            .iter()
            .filter(|v| v.kind == "mail_not_relayed")
            .collect();
        assert_eq!(found.len(), 1, "{:?}", rep.violations);
        (
            found[0].node.clone(),
            found[0].evidence["relay_says_addressee_failed"].clone(),
        )
    };
    let (alone, pair_n) = (NAMES[R].to_string(), format!("{}->{}", NAMES[R], NAMES[N]));
    let null = serde_json::Value::Null;
    // The offer rule.
    assert_eq!(run(&[]), (pair_n.clone(), null.clone()));
    let (named, note) = run(&[failed(t + 120_000, D, "timeout")]);
    assert_eq!(named, pair_n);
    assert_eq!(note["reason"], "timeout");
    assert_eq!(note["first_at"], t + 120_000);
    assert_eq!(note["addressee_log_shows_it_running"], true);
    let (named, note) = run(&[failed(t + 120_000, D, "unsupported")]);
    assert_eq!(
        (named, &note["reason"]),
        (pair_n.clone(), &"unsupported".into())
    );
    assert_eq!(
        run(&[failed(t + 120_000, D, "connection_closed")]),
        (pair_n.clone(), null.clone())
    );
    assert_eq!(
        run(&[failed(t + 120_000, N, "timeout")]),
        (pair_n, null.clone())
    );
    // The link rule: the neighbour's signed acceptance of other mail in the
    // relay's log at t + 60 s.
    let link = own_hand_over(&f, N, t + 60_000);
    assert_eq!(run(std::slice::from_ref(&link)), (alone.clone(), null));
    let (named, note) = run(&[link.clone(), failed(t + 50 * 60_000, D, "timeout")]);
    assert_eq!(named, alone);
    assert_eq!(note["addressee_log_shows_it_running"], false);
}

/// Review s35-mail M1: an honest relay hands the copy to an honest addressee, which
/// crashes mid-stream and stays down until the copy expires (its log ends with
/// `NodeStopped`); the relay had no other route and logged `hand_failed`
/// (`connection_closed`, or even `timeout`). Nobody is named (before the fix: the
/// pair with the addressee, on that one event).
#[test]
fn an_addressee_that_crashed_names_nobody() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let custody = custody_for(&f, R, S, t, D);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    for why in ["connection_closed", "timeout"] {
        let mut e = mail("hand_failed", S, D, D, t + 120_000, exp, None);
        if let EventKind::Mail { reason, .. } = &mut e.kind {
            *reason = Some(why.into());
        }
        let rep = audit(
            &f,
            &[
                sender.clone(),
                log(
                    &f,
                    R,
                    &[
                        mail("received", S, D, S, t, exp, Some(&custody)),
                        e,
                        stopped.clone(),
                    ],
                ),
                log(&f, N, std::slice::from_ref(&stopped)),
                log(
                    &f,
                    D,
                    &[
                        Event::new(t + 110_000, EventKind::NodeStopped),
                        Event::new(
                            done,
                            EventKind::NodeStarted {
                                version: "s35".into(),
                            },
                        ),
                    ],
                ),
            ],
        );
        assert!(rep.violations.is_empty(), "{why}: {:?}", rep.violations);
    }
}

/// Review s33-mail M2, in the older link rule: the addressee signed a `/5`
/// acceptance of other mail from the relay while the copy lived (in the relay's
/// log), and the relay logged no hand-over or signed refusal of the copy: the relay
/// never tried, or the addressee refused it for a reason that excuses nothing or
/// never answered, which the logs cannot tell apart. The pair with the addressee is
/// named (the relay alone was before). A link to another neighbour, or an older
/// acceptance by the addressee that signs no addressee, still names the relay alone.
#[test]
fn an_addressee_that_took_other_mail_is_named_with_the_relay_by_the_link_rule() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let neighbour = log(&f, N, std::slice::from_ref(&stopped));
    // Its own message (another id) to `to`, handed at t + 60 s, with `to`'s signed
    // acceptance signing `to` as its addressee (or none).
    let hand_over = |to: usize, signs: bool| {
        let ack = MailAck::sign_body(
            HandoverBody {
                message_id: Some(MessageId::from_hex(&other).unwrap()),
                item: "message".into(),
                item_digest: Some([5; 32]),
                hops: Some(0),
                addressee: signs.then(|| ag(to)),
                from_hop: Some(ag(R)),
                to_hop: ag(to),
                accepted: true,
                reason: "ok".into(),
                at: Timestamp(t + 60_000),
                signer_key: f.agency_keys[to].public_key(),
            },
            &f.agency_keys[to],
        );
        let mut e = mail("handed", R, to, to, t + 60_000, exp, Some(&ack));
        if let EventKind::Mail { message_id, .. } = &mut e.kind {
            *message_id = other.clone();
        }
        e
    };
    let run = |link: Event| {
        let relay = log(
            &f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                link,
                stopped.clone(),
            ],
        );
        let rep = audit(
            &f,
            &[sender.clone(), relay, neighbour.clone(), addressee.clone()],
        );
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    assert_eq!(
        run(hand_over(D, true)),
        [format!("{}->{}", NAMES[R], NAMES[D])]
    );
    assert_eq!(run(hand_over(D, false)), [NAMES[R]]);
    assert_eq!(run(hand_over(N, true)), [NAMES[R]]);
}

/// `by`'s signed `ok` custody of `node`'s hand-over of copy `digest` at hop count
/// `hops`, signing `addressee` (`/wlnode/mail/5`).
fn custody_of(
    f: &Fixture,
    by: usize,
    node: usize,
    at: u64,
    addressee: usize,
    digest: [u8; 32],
    hops: u32,
) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&id()).unwrap()),
            item: "message".into(),
            item_digest: Some(digest),
            hops: Some(hops),
            addressee: Some(ag(addressee)),
            from_hop: Some(ag(node)),
            to_hop: ag(by),
            accepted: true,
            reason: "ok".into(),
            at: Timestamp(at),
            signer_key: f.agency_keys[by].public_key(),
        },
        &f.agency_keys[by],
    )
}

/// A `mail` event as [`mail`], without a neighbour (an honest `delivered`).
fn no_peer(mut e: Event) -> Event {
    if let EventKind::Mail { peer, .. } = &mut e.kind {
        *peer = None;
    }
    e
}

/// Review s34-mail H1 (framing): the relay honestly relays the sender's message
/// (copy [`TAKEN`], for the addressee) and hands it on to the neighbour. Another
/// member then sends a message of its own under the same id, addressed to the relay,
/// which takes delivery (`received` to itself, `delivered` without a neighbour).
/// Before the fix the `delivered` was judged against the earliest custody of the
/// id, the relayed copy, and the honest relay got `mail_not_relayed`. The
/// member's copy, whose signed addressee is the relay, is not judged; the relayed
/// copy is, and it was handed on.
#[test]
fn another_members_message_under_the_id_delivered_to_the_relay_does_not_frame_it() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let theirs = [9; 32];
    let custody = custody_for(&f, R, S, t, D);
    let onward = answer(&f, N, R, true, "ok", t + 60_000, TAKEN);
    let own = custody_of(&f, R, E, t + 120_000, R, theirs, 0);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let member = log(
        &f,
        E,
        &[
            mail("handed", E, R, R, t + 120_000, exp, Some(&own)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            mail("received", S, D, R, t + 60_000, exp, Some(&onward)),
            stopped.clone(),
        ],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, exp, Some(&custody)),
            mail("handed", S, D, N, t + 60_000, exp, Some(&onward)),
            mail("received", E, R, E, t + 120_000, exp, Some(&own)),
            no_peer(mail("delivered", E, R, E, t + 121_000, exp, None)),
            stopped.clone(),
        ],
    );
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let rep = audit(&f, &[sender, member, neighbour, relay, addressee]);
    assert!(
        rep.violations
            .iter()
            .all(|v| !v.node.contains(NAMES[R]) && v.kind != "mail_not_relayed"),
        "{:?}",
        rep.violations
    );
}

/// Review s34-mail H1 (escape) and H2: the relay took the sender's message for the
/// addressee (its signed custody in the sender's log) and dropped it, while it had
/// a link to the neighbour. Its own log either labels the message as received from
/// a colluding member (whose own message under the id, addressed to the relay, it
/// took too) as addressed to itself, or holds nothing of it at all and only a
/// hand-over of a message of its own under the id. Before the fix neither rule
/// judged the copy it took; now its signed custody is judged whatever its log says.
#[test]
fn a_copy_the_relay_signed_custody_of_is_judged_whatever_its_log_says() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let theirs = [9; 32];
    let custody = custody_for(&f, R, S, t, D);
    let colluded = custody_of(&f, R, E, t + 30_000, R, theirs, 0);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let member = log(
        &f,
        E,
        &[
            mail("handed", E, R, R, t + 30_000, exp, Some(&colluded)),
            stopped.clone(),
        ],
    );
    // The neighbour took the relay's own message under the id.
    let mine = answer_hops(&f, N, R, true, "ok", t + 90_000, [5; 32], Some(0));
    let neighbour = log(
        &f,
        N,
        &[
            mail("received", R, N, R, t + 90_000, exp, Some(&mine)),
            stopped.clone(),
        ],
    );
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let own_to_n = mail("handed", R, N, N, t + 90_000, exp, Some(&mine));
    for (case, events) in [
        (
            "labelled to itself from the colluder",
            vec![
                mail("received", S, R, E, t, exp, Some(&colluded)),
                own_to_n.clone(),
            ],
        ),
        ("nothing but its own message", vec![own_to_n.clone()]),
    ] {
        let mut events = events;
        events.push(stopped.clone());
        let relay = log(&f, R, &events);
        let rep = audit(
            &f,
            &[
                sender.clone(),
                member.clone(),
                neighbour.clone(),
                addressee.clone(),
                relay,
            ],
        );
        assert!(
            !naming(&rep, "mail_not_relayed", NAMES[R]).is_empty(),
            "{case}: {:?}",
            rep.violations
        );
        assert!(
            rep.violations.iter().all(|v| !v.proven),
            "{case}: {:?}",
            rep.violations
        );
    }
}

/// Review s34-mail M3: the relay dropped the sender's message for the addressee,
/// which signed one answer to the relay a minute after the custody (an acceptance of
/// the relay's own mail under another id, which the relay can get at will; or a
/// refusal). Hours later, with no answer of the addressee's near, the relay had a
/// route to the neighbour: an honest relay would have handed the message there, so
/// the addressee cannot be at fault. Before the fix that one answer put the blame
/// on the pair with the addressee; now the relay alone (link rule) or the pair with
/// that neighbour (offer rule, one route) is named. When the other route lies where
/// the addressee was reachable, the pair with the addressee is still named.
#[test]
fn one_answer_of_the_addressee_does_not_move_blame_for_routes_while_it_was_away() {
    let f = fixture();
    let t = t0();
    let exp = t + 4 * 3_600_000;
    let done = t + 5 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    // The addressee took the relay's own message under the other id.
    let mut took_own = mail("received", R, D, R, t + 60_000, exp, None);
    if let EventKind::Mail { message_id, .. } = &mut took_own.kind {
        *message_id = other.clone();
    }
    let addressee = log(&f, D, &[took_own, stopped.clone()]);
    // The addressee's signed `/5` answer (accepting its own mail under another id,
    // or refusing another copy under this one) at t + 60 s.
    let answer_of_d = |accepted: bool| {
        let mid = if accepted { other.clone() } else { id() };
        let ack = MailAck::sign_body(
            HandoverBody {
                message_id: Some(MessageId::from_hex(&mid).unwrap()),
                item: "message".into(),
                item_digest: Some([5; 32]),
                hops: Some(0),
                addressee: Some(ag(D)),
                from_hop: Some(ag(R)),
                to_hop: ag(D),
                accepted,
                reason: if accepted { "ok" } else { "quota" }.into(),
                at: Timestamp(t + 60_000),
                signer_key: f.agency_keys[D].public_key(),
            },
            &f.agency_keys[D],
        );
        let action = if accepted { "handed" } else { "hand_refused" };
        let mut e = mail(action, R, D, D, t + 60_000, exp, Some(&ack));
        if let EventKind::Mail { message_id, .. } = &mut e.kind {
            *message_id = mid;
        }
        e
    };
    let pair_d = [format!("{}->{}", NAMES[R], NAMES[D])];
    // Link rule: the relay's own hand-over to the neighbour at `at`.
    let link_rule = |at: u64| {
        let relay = log(
            &f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                answer_of_d(true),
                own_hand_over(&f, N, at),
                stopped.clone(),
            ],
        );
        let rep = audit(&f, &[sender.clone(), relay, addressee.clone()]);
        assert!(
            rep.violations.iter().all(|v| !v.proven),
            "{:?}",
            rep.violations
        );
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    assert_eq!(link_rule(t + 2 * 3_600_000), [NAMES[R]]);
    assert_eq!(link_rule(t + 5 * 60_000), pair_d);
    // Offer rule: the relay logs no link; the neighbour's log holds its offer of
    // other mail at `at`.
    let offer_rule = |at: u64| {
        let relay = log(
            &f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                answer_of_d(false),
                stopped.clone(),
            ],
        );
        let neighbour = log(
            &f,
            N,
            &[offered(&f, R, N, &other, [5; 32], at), stopped.clone()],
        );
        let rep = audit(&f, &[sender.clone(), relay, neighbour, addressee.clone()]);
        assert!(
            rep.violations.iter().all(|v| !v.proven),
            "{:?}",
            rep.violations
        );
        naming(&rep, "mail_not_relayed", NAMES[R])
    };
    assert_eq!(
        offer_rule(t + 2 * 3_600_000),
        [format!("{}->{}", NAMES[R], NAMES[N])]
    );
    assert_eq!(offer_rule(t + 5 * 60_000), pair_d);
}

/// Review s34-mail L1: the auditor adopts a head of the relay's log every 10 min for
/// a week; a key is revoked at `T`, and the auditor's roster holds the revocation
/// only two hours later. Until then the history is thinned without it. The head
/// verified just before `T` must still be there when the revocation is known, or
/// the evidence it held stops being dated before the revocation. Thinning evenly in
/// time dropped it within two runs; thinning by age keeps recent history dense.
#[test]
fn a_revocation_learnt_hours_late_still_finds_the_head_verified_before_it() {
    let step = 10 * 60_000;
    let base = 1_780_000_000_000u64;
    let at = |k: u64| base + k * step;
    let before_t = 1_000u64;
    let revoked_at = at(before_t) + step / 2;
    let learnt = before_t + 12;
    let mut list = Vec::new();
    for k in 0..=learnt {
        let keep: &[u64] = if k == learnt { &[revoked_at] } else { &[] };
        super::super::remember_head(
            &mut list,
            DatedHead {
                size: k + 1,
                verified_at: at(k),
            },
            keep,
        );
    }
    assert_eq!(list.len(), MAX_EARLIER_HEADS);
    assert!(
        list.iter().any(|h| h.size == before_t + 1),
        "{:?}",
        list.iter().rev().take(20).collect::<Vec<_>>()
    );
}

/// Review s34-mail H3: a member writes into its own log thousands of hand-overs of
/// the id under distinct sender labels (reusing one genuine signed acceptance) and
/// thousands of `received` events under other labels. Each judged message used to
/// probe every label under the id: quadratic (here about 2.3 million probes). Now
/// a message its `received` names is looked up under its own key and a copy judged
/// by its signed custody under its digest: linear in the log.
#[test]
fn many_sender_labels_under_one_id_keep_the_mail_check_linear() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let labels = 1_500usize;
    let label = |n: usize| -> AgencyCode { format!("XX-{n}").parse().unwrap() };
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            Event::new(done, EventKind::NodeStopped),
        ],
    );
    let own = answer_hops(&f, N, R, true, "ok", t + 3_000, [5; 32], Some(0));
    let mut events = Vec::new();
    for n in 0..labels {
        let mut e = mail("handed", R, N, N, t + 3_000, exp, Some(&own));
        if let EventKind::Mail { from, .. } = &mut e.kind {
            *from = label(n);
        }
        events.push(e);
    }
    for n in 0..labels {
        let mut e = mail("received", S, D, S, t + 2_000, exp, None);
        if let EventKind::Mail { from, .. } = &mut e.kind {
            *from = label(labels + n);
        }
        events.push(e);
    }
    events.push(Event::new(done, EventKind::NodeStopped));
    let relay = log(&f, R, &events);
    super::PROBED.with(|p| p.set(0));
    let rep = audit(&f, &[sender, relay]);
    let probed = super::PROBED.with(std::cell::Cell::get);
    assert!(
        probed <= 4 * events.len() as u64,
        "{probed} probes for {} events",
        events.len()
    );
    // The copy it signed custody of is still judged.
    assert!(!naming(&rep, "mail_not_relayed", NAMES[R]).is_empty());
}

/// Review s34-mail M2 residuals: the addressee's signed answer of the very copy
/// excuses the relay; the addressee is reported `mail_offer_not_logged` only when
/// its log holds no offer of the copy. Not for a `store` answer (its writes failed,
/// the `offered` event most likely with them), and not when its log does hold the
/// offer, signed by the relay's key revoked since and undated by this auditor (no
/// evidence against the relay, but the keeper logged it).
#[test]
fn a_keeper_that_logged_the_offer_or_failed_to_store_is_not_reported() {
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let revoked_at = t + 3 * 3_600_000;
    let other = "cd".repeat(16);
    let stopped = Event::new(done, EventKind::NodeStopped);
    let run = |f: &Fixture, reason: &str, keeper_logs_offer: bool| {
        let custody = custody_for(f, R, S, t, D);
        let sender_events = [
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ];
        let sender = log(f, S, &sender_events);
        let neighbour = log(
            f,
            N,
            &[
                offered(f, R, N, &other, [5; 32], t + 60_000),
                stopped.clone(),
            ],
        );
        let mut kept = vec![stopped.clone()];
        if keeper_logs_offer {
            kept.insert(0, offered(f, R, D, &id(), TAKEN, t + 120_000));
        }
        let addressee = log(f, D, &kept);
        let no = MailAck::sign_body(
            HandoverBody {
                message_id: Some(MessageId::from_hex(&id()).unwrap()),
                item: "message".into(),
                item_digest: Some(TAKEN),
                hops: Some(1),
                addressee: Some(ag(D)),
                from_hop: Some(ag(R)),
                to_hop: ag(D),
                accepted: false,
                reason: reason.into(),
                at: Timestamp(t + 120_000),
                signer_key: f.agency_keys[D].public_key(),
            },
            &f.agency_keys[D],
        );
        let relay = log(
            f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                mail("hand_refused", S, D, D, t + 120_000, exp, Some(&no)),
                stopped.clone(),
            ],
        );
        // This auditor verified the sender's handing before any revocation.
        let state = verified_head(S, &sender_events, 1, t + 1_000);
        let rep = audit_with(f, &[sender, relay, neighbour, addressee], &state);
        (
            naming(&rep, "mail_not_relayed", NAMES[R]),
            naming(&rep, "mail_offer_not_logged", NAMES[D]),
        )
    };
    let none: Vec<String> = Vec::new();
    let f = fixture();
    assert_eq!(
        run(&f, "quota", false),
        (none.clone(), vec![NAMES[D].to_owned()])
    );
    assert_eq!(run(&f, "store", false), (none.clone(), none.clone()));
    // The relay's key revoked later: its offer in the keeper's log is undated.
    let f = fixture_revoking("", Some((R, revoked_at)));
    assert_eq!(run(&f, "quota", true), (none.clone(), none.clone()));
}

/// Review s34-mail H3 class, in the M3 split: the relay's log replays one signed
/// acceptance of the addressee's under thousands of labels, and holds thousands of
/// `received` events for that addressee. The addressee's reachable spans are built
/// once and each message takes only those within its lifetime, so the work stays
/// linear (rebuilding them per message was quadratic: about 2.3 million steps here).
#[test]
fn many_replayed_answers_of_the_addressee_keep_the_mail_check_linear() {
    let f = fixture();
    let t = t0();
    let exp = t + 40 * 60_000;
    let done = t + 45 * 60_000;
    let labels = 1_500usize;
    let label = |n: usize| -> AgencyCode { format!("XX-{n}").parse().unwrap() };
    let other = "cd".repeat(16);
    let ack = MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(&other).unwrap()),
            item: "message".into(),
            item_digest: Some([5; 32]),
            hops: Some(0),
            addressee: Some(ag(D)),
            from_hop: Some(ag(R)),
            to_hop: ag(D),
            accepted: true,
            reason: "ok".into(),
            at: Timestamp(t + 3_000),
            signer_key: f.agency_keys[D].public_key(),
        },
        &f.agency_keys[D],
    );
    let mut events = Vec::new();
    for n in 0..labels {
        let mut e = mail("received", S, D, S, t + 2_000, exp, None);
        if let EventKind::Mail { from, .. } = &mut e.kind {
            *from = label(n);
        }
        events.push(e);
    }
    for n in 0..labels {
        let mut e = mail("handed", R, D, D, t + 3_000 + n as u64, exp, Some(&ack));
        if let EventKind::Mail {
            from, message_id, ..
        } = &mut e.kind
        {
            *from = label(labels + n);
            *message_id = other.clone();
        }
        events.push(e);
    }
    events.push(Event::new(done, EventKind::NodeStopped));
    let relay = log(&f, R, &events);
    super::PROBED.with(|p| p.set(0));
    let rep = audit(&f, &[relay]);
    let probed = super::PROBED.with(std::cell::Cell::get);
    assert!(
        probed <= 4 * events.len() as u64,
        "{probed} steps for {} events",
        events.len()
    );
    assert!(!naming(&rep, "mail_not_relayed", NAMES[R]).is_empty());
}

/// Review s35-mail L1: the covered time of disjoint spans within a range, by two
/// bisections over running sums, is the brute-force sum of the clipped spans.
#[test]
fn span_sums_give_the_covered_time_within_any_range() {
    let spans = vec![(10, 20), (30, 35), (50, 90)];
    let sums = SpanSums::new(spans.clone());
    for lo in 0..100u64 {
        for hi in 0..100u64 {
            let brute: u64 = spans
                .iter()
                .map(|(a, b)| (*b).min(hi).saturating_sub((*a).max(lo)))
                .sum();
            assert_eq!(sums.covered(lo, hi), brute, "{lo}..{hi}");
        }
    }
    assert_eq!(SpanSums::new(Vec::new()).covered(0, 100), 0);
}

/// Review s35-mail L5: as in `an_offer_in_the_log_is_no_trace_of_having_had_the_message`,
/// but the neighbour also logged a `hand_failed` of the id (its own unsigned word, any
/// id it likes). That is no trace of having had the message either: the neighbour is
/// still proven `mail_not_logged` (before the fix the event made the id known).
#[test]
fn a_hand_failed_in_the_log_is_no_trace_of_having_had_the_message() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 20 * 60_000;
    let seen = answer(&f, N, R, true, "seen", t + 60_000, TAKEN);
    let relay = [
        took(&f, t, exp),
        mail("handed", S, D, N, t + 60_000, exp, Some(&seen)),
        Event::new(done, EventKind::NodeStopped),
    ];
    let mut failed = mail("hand_failed", S, D, D, t + 30_000, exp, None);
    if let EventKind::Mail { reason, .. } = &mut failed.kind {
        *reason = Some("timeout".into());
    }
    let neighbour = [
        failed,
        offered(&f, R, N, &id(), TAKEN, t + 60_000),
        Event::new(done, EventKind::NodeStopped),
    ];
    let rep = audit(&f, &[log(&f, R, &relay), log(&f, N, &neighbour)]);
    assert!(
        rep.violations.iter().any(|v| v.kind == "mail_not_logged"
            && v.proven
            && v.node == format!("{}->{}", NAMES[R], NAMES[N])),
        "{:?}",
        rep.violations
    );
}

/// Review s34-mail M1 (s36): the trails an honest relay leaves since it offers a
/// message past a connected addressee that never answers it (the addressee's log
/// holds nothing of the copy). The relay's only route besides the addressee is the
/// neighbour, which took other mail from it while the copy lived.
/// - Before s36 the relay offered the addressee alone: its log shows no hand-over
///   of the copy and it is named alone (the case the routing change closes).
/// - It hands the copy to the neighbour, which signs custody: no one is named, nor
///   the neighbour, whose only other route is the relay it came from (a dead end).
/// - The neighbour had the copy already (the sender handed it there too) and signs
///   `seen`: no one is named.
/// - The neighbour refuses it `full`: covered, no one is named.
/// - A line, sender — relay — addressee: the relay's only other link is its
///   upstream, which had the copy: no one is named, and no hand-over back to the
///   upstream is needed for that.
#[test]
fn a_relay_that_passed_a_silent_addressee_leaves_trails_that_name_no_one() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let to_relay = mail("handed", S, D, R, t, exp, Some(&custody));
    let received = mail("received", S, D, S, t, exp, Some(&custody));
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    // The neighbour's signed acceptance of other mail from the relay at t + 60 s.
    let link = own_hand_over(&f, N, t + 60_000);
    let passed_at = t + 10 * 60_000;
    let findings = |logs: &[ExportedLog]| -> Vec<(String, String)> {
        audit(&f, logs)
            .violations
            .iter()
            .filter(|v| v.kind == "mail_not_relayed" || v.kind == "mail_relay_saturated_neighbour")
            .map(|v| (v.kind.clone(), v.node.clone()))
            .collect()
    };
    let sender = log(&f, S, &[to_relay.clone(), stopped.clone()]);
    let quiet_neighbour = log(&f, N, std::slice::from_ref(&stopped));
    // Before s36: the addressee alone was offered it.
    let relay = log(&f, R, &[received.clone(), link.clone(), stopped.clone()]);
    assert_eq!(
        findings(&[
            sender.clone(),
            relay,
            quiet_neighbour.clone(),
            addressee.clone()
        ]),
        [("mail_not_relayed".to_string(), NAMES[R].to_string())]
    );
    // Handed to the neighbour, which signs custody and holds it to the end.
    let took_it = custody_of(&f, N, R, passed_at, D, TAKEN, 1);
    let relay = log(
        &f,
        R,
        &[
            received.clone(),
            link.clone(),
            mail("handed", S, D, N, passed_at, exp, Some(&took_it)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            offered(&f, R, N, &id(), TAKEN, passed_at),
            mail("received", S, D, R, passed_at, exp, Some(&took_it)),
            stopped.clone(),
        ],
    );
    assert_eq!(
        findings(&[sender.clone(), relay, neighbour, addressee.clone()]),
        []
    );
    // The neighbour had it already (from the sender) and answers `seen`.
    let from_sender = custody_of(&f, N, S, t, D, TAKEN, 0);
    let sender_both = log(
        &f,
        S,
        &[
            to_relay.clone(),
            mail("handed", S, D, N, t, exp, Some(&from_sender)),
            stopped.clone(),
        ],
    );
    let seen = answer(&f, N, R, true, "seen", passed_at, TAKEN);
    let relay = log(
        &f,
        R,
        &[
            received.clone(),
            link.clone(),
            mail("handed", S, D, N, passed_at, exp, Some(&seen)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            mail("received", S, D, S, t, exp, Some(&from_sender)),
            offered(&f, R, N, &id(), TAKEN, passed_at),
            stopped.clone(),
        ],
    );
    assert_eq!(
        findings(&[sender_both, relay, neighbour, addressee.clone()]),
        []
    );
    // The neighbour refuses it `full`.
    let full = answer(&f, N, R, false, "full", passed_at, TAKEN);
    let relay = log(
        &f,
        R,
        &[
            received.clone(),
            link,
            mail("hand_refused", S, D, N, passed_at, exp, Some(&full)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[offered(&f, R, N, &id(), TAKEN, passed_at), stopped.clone()],
    );
    assert_eq!(
        findings(&[sender.clone(), relay, neighbour, addressee.clone()]),
        []
    );
    // A line: the relay's only other link is the sender, its upstream, which took
    // other mail from it while the copy lived.
    let relay = log(
        &f,
        R,
        &[received, own_hand_over(&f, S, t + 60_000), stopped],
    );
    assert_eq!(findings(&[sender, relay, addressee]), []);
}

/// `ack` signed again by `by`, naming `addressee` as the refused item's addressee
/// (`/wlnode/mail/5`) and, when `mid` is given, another message id.
fn resigned(f: &Fixture, by: usize, ack: &MailAck, addressee: usize, mid: Option<&str>) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            message_id: mid
                .map(|m| MessageId::from_hex(m).unwrap())
                .or(ack.body().message_id),
            addressee: Some(ag(addressee)),
            ..ack.body().clone()
        },
        &f.agency_keys[by],
    )
}

/// Review s36-m1 H1: the relay passed a connected addressee that never answers, but
/// its neighbours refuse the copy `id_in_use` (the addressee, which learnt the id
/// from the relay's hand-over, flooded its own message under it to every node but
/// the relay), or `quota` (the relay's share at the neighbour filled with mail for
/// an away addressee). Before the fix neither refusal covered, and the honest relay
/// was named. Now a neighbour's `id_in_use` of the copy covers that neighbour's link
/// moments (not another neighbour's), and a `quota` of any message covers that
/// neighbour's link moments for every message the relay held then, as `full` does.
#[test]
fn id_in_use_and_quota_refusals_cover_a_relay_that_passed_a_silent_addressee() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let received = mail("received", S, D, S, t, exp, Some(&custody));
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let passed_at = t + 10 * 60_000;
    let neighbour = log(
        &f,
        N,
        &[offered(&f, R, N, &id(), TAKEN, passed_at), stopped.clone()],
    );
    let named = |relay: &[Event], more: &[ExportedLog]| -> Vec<String> {
        let mut logs = vec![sender.clone(), log(&f, R, relay), neighbour.clone()];
        logs.push(addressee.clone());
        logs.extend_from_slice(more);
        naming(&audit(&f, &logs), "mail_not_relayed", NAMES[R])
    };
    // N took other mail from the relay while the copy lived, and refused the copy
    // `id_in_use`: covered.
    let in_use = answer(&f, N, R, false, "id_in_use", passed_at, TAKEN);
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, passed_at, exp, Some(&in_use)),
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]), Vec::<String>::new());
    // It covers N's links only: a link to E, which the relay never tried, names it.
    let relay_e = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        own_hand_over(&f, E, t + 60_000),
        mail("hand_refused", S, D, N, passed_at, exp, Some(&in_use)),
        stopped.clone(),
    ];
    let e_log = log(&f, E, std::slice::from_ref(&stopped));
    assert_eq!(named(&relay_e, &[e_log]).len(), 1);
    // An `id_in_use` of another copy under the id covers nothing.
    let other_copy = answer(&f, N, R, false, "id_in_use", passed_at, [9; 32]);
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, passed_at, exp, Some(&other_copy)),
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]).len(), 1);
    // N refused another message of the relay's `quota` (its share there was used
    // up): that covers N's link moments for this copy too.
    let other = "cd".repeat(16);
    let quota = resigned(
        &f,
        N,
        &answer(&f, N, R, false, "quota", passed_at, [5; 32]),
        E,
        Some(&other),
    );
    let mut refused_other = mail("hand_refused", S, E, N, passed_at, exp, Some(&quota));
    if let EventKind::Mail { message_id, .. } = &mut refused_other.kind {
        *message_id = other.clone();
    }
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        refused_other,
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]), Vec::<String>::new());
    // Without either refusal the relay is named (the contrast case).
    let relay = [received, own_hand_over(&f, N, t + 60_000), stopped];
    assert_eq!(named(&relay, &[]).len(), 1);
}

/// Review s36-m1 M2: the addressee is online and refuses the copy with a signed
/// answer (it cannot open it, say); the relay no longer hands it to its other
/// neighbours (the destination said no), so the addressee's own valid signed
/// refusal of that copy covers every link moment of the relay's within the window.
/// Not a refusal of another copy, not one that does not sign the refuser as the
/// addressee (a neighbour's `unopenable` still covers nothing), not `expired` (a
/// relay that held the copy back provokes it), not `no_offer` (a relay that sent
/// no offer does).
#[test]
fn the_addressees_signed_refusal_of_the_copy_covers_the_relay() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let received = mail("received", S, D, S, t, exp, Some(&custody));
    let refused_at = t + 5 * 60_000;
    let addressee = log(
        &f,
        D,
        &[offered(&f, R, D, &id(), TAKEN, refused_at), stopped.clone()],
    );
    let quiet_neighbour = log(&f, N, std::slice::from_ref(&stopped));
    let named = |by: usize, reason: &str, digest: [u8; 32], signs_addressee: bool| {
        let no = answer(&f, by, R, false, reason, refused_at, digest);
        let no = if signs_addressee {
            resigned(&f, by, &no, D, None)
        } else {
            no
        };
        let relay = [
            received.clone(),
            own_hand_over(&f, N, t + 60_000),
            mail("hand_refused", S, D, by, refused_at, exp, Some(&no)),
            stopped.clone(),
        ];
        let logs = [
            sender.clone(),
            log(&f, R, &relay),
            quiet_neighbour.clone(),
            addressee.clone(),
        ];
        naming(&audit(&f, &logs), "mail_not_relayed", NAMES[R])
    };
    assert_eq!(named(D, "unopenable", TAKEN, true), Vec::<String>::new());
    assert_eq!(named(D, "sender_quota", TAKEN, true), Vec::<String>::new());
    // Review s36-int H1: the addressee's `replayed` of the copy (it holds that id
    // from the sender with another body) is its final word on the copy too; the
    // relay's mailer hands it to no one else after it, so it covers. From another
    // neighbour it covers nothing.
    assert_eq!(named(D, "replayed", TAKEN, true), Vec::<String>::new());
    assert_eq!(named(D, "replayed", [9; 32], true).len(), 1);
    assert_eq!(named(N, "replayed", TAKEN, false).len(), 1);
    assert_eq!(named(D, "unopenable", [9; 32], true).len(), 1);
    assert_eq!(named(D, "unopenable", TAKEN, false).len(), 1);
    assert_eq!(named(D, "expired", TAKEN, true).len(), 1);
    assert_eq!(named(D, "no_offer", TAKEN, true).len(), 1);
    assert_eq!(named(N, "unopenable", TAKEN, false).len(), 1);
}

/// Review s36-int M2: a neighbour's signed `sender_quota` of the copy (it remembers
/// as many ids of the copy's sender as it may) covers that neighbour's links for that
/// copy only, like `id_in_use`; before the fix it covered nothing (and the mailer
/// answered `quota`, a cover of every message). And a neighbour's `id_in_use` of
/// the copy covers even when the relay's own log shows a message of its own under
/// that id (review of s36-fix H1: s36-int M2 dropped the cover then, and a sender
/// reusing the relay's old id got the honest relay named; a relay provoking it is
/// evasion, documented).
#[test]
fn sender_quota_covers_the_copy_and_id_in_use_covers_even_under_the_relays_own_id() {
    let f = fixture();
    let t = t0();
    let exp = t + 3_600_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let received = mail("received", S, D, S, t, exp, Some(&custody));
    let addressee = log(&f, D, std::slice::from_ref(&stopped));
    let refused_at = t + 10 * 60_000;
    let neighbour = log(
        &f,
        N,
        &[offered(&f, R, N, &id(), TAKEN, refused_at), stopped.clone()],
    );
    let named = |relay: &[Event], more: &[ExportedLog]| -> Vec<String> {
        let mut logs = vec![sender.clone(), log(&f, R, relay), neighbour.clone()];
        logs.push(addressee.clone());
        logs.extend_from_slice(more);
        naming(&audit(&f, &logs), "mail_not_relayed", NAMES[R])
    };
    // N refused the copy `sender_quota`: covered.
    let sender_full = answer(&f, N, R, false, "sender_quota", refused_at, TAKEN);
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, refused_at, exp, Some(&sender_full)),
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]), Vec::<String>::new());
    // Only N's links: a link to E names the relay.
    let relay_e = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        own_hand_over(&f, E, t + 60_000),
        mail("hand_refused", S, D, N, refused_at, exp, Some(&sender_full)),
        stopped.clone(),
    ];
    let e_log = log(&f, E, std::slice::from_ref(&stopped));
    assert_eq!(named(&relay_e, &[e_log]).len(), 1);
    // Only that copy: a `sender_quota` of another message covers nothing.
    let other = "cd".repeat(16);
    let of_other = resigned(
        &f,
        N,
        &answer(&f, N, R, false, "sender_quota", refused_at, [5; 32]),
        E,
        Some(&other),
    );
    let mut refused_other = mail("hand_refused", S, E, N, refused_at, exp, Some(&of_other));
    if let EventKind::Mail { message_id, .. } = &mut refused_other.kind {
        *message_id = other.clone();
    }
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        refused_other,
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]).len(), 1);
    // N refused the copy `id_in_use`: covered, also when the relay sent a message
    // of its own under the id.
    let in_use = answer(&f, N, R, false, "id_in_use", refused_at, TAKEN);
    let mut own_sent = mail("sent", R, E, R, t + 30_000, exp, None);
    if let EventKind::Mail { peer, .. } = &mut own_sent.kind {
        *peer = None;
    }
    let relay = [
        received.clone(),
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, refused_at, exp, Some(&in_use)),
        stopped.clone(),
    ];
    assert_eq!(named(&relay, &[]), Vec::<String>::new());
    let relay = [
        received,
        own_sent,
        own_hand_over(&f, N, t + 60_000),
        mail("hand_refused", S, D, N, refused_at, exp, Some(&in_use)),
        stopped,
    ];
    assert_eq!(named(&relay, &[]), Vec::<String>::new());
}

/// s37 (issue 21, the s36 "silent addressee" residual): a hostile sender gives its
/// message less life than an honest relay needs to pass a connected addressee that
/// never answers (a colluding one), so the copy expires at the relay, which offered
/// it to the addressee alone while it handed other mail to its neighbour. Before
/// s37 the honest relay was named `mail_not_relayed`; now a copy with less than
/// [`MIN_JUDGED_LIFETIME_MS`] left at the relay's custody is not judged, only
/// counted in the relay's summary and the HTML report. Neither the sender's
/// `handed` naming a later expiry (the earliest expiry counts: the relay logged the
/// one the sender signed) nor, for a copy judged by its signed custody alone, the
/// sender's earlier event time (the relay's signed custody time counts) makes it
/// judged. The keeper's log is still checked (`mail_offer_not_logged`).
#[test]
fn a_short_lived_copy_expiring_at_a_relay_past_a_silent_addressee_is_not_judged() {
    let f = fixture();
    let t = t0();
    let exp = t + 10 * 60_000;
    let done = t + 2 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    // The relay took the copy at `t`, offered it to the silent addressee alone (its
    // log holds nothing of it) and handed other mail to the neighbour 10 s later.
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, exp, Some(&custody)),
            own_hand_over(&f, N, t + 10_000),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let sender = |claimed_exp: u64, at: u64| {
        log(
            &f,
            S,
            &[
                mail("handed", S, D, R, at, claimed_exp, Some(&custody)),
                stopped.clone(),
            ],
        )
    };
    let relay_findings = |rep: &Report| {
        let mut v = naming(rep, "mail_not_relayed", NAMES[R]);
        v.extend(naming(rep, "mail_relay_saturated_neighbour", NAMES[R]));
        v
    };
    let rep = audit(&f, &[sender(exp, t), relay.clone(), quiet(N), quiet(D)]);
    assert_eq!(
        relay_findings(&rep),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
    let summary = rep.nodes.iter().find(|n| n.agency == NAMES[R]).unwrap();
    assert_eq!(summary.mail_short_lived_not_judged, 1);
    assert_eq!(summary.violations, 0);
    let labels = crate::html::Labels::from_fn(|name| name);
    assert!(crate::html::sections(&rep, &labels).contains("1 short_lived_not_judged"));
    // The hostile sender writes a later expiry in its own `handed`: the relay's
    // (the one the sender signed in the envelope) is earlier, and counts.
    let rep = audit(
        &f,
        &[sender(t + 3_600_000, t), relay.clone(), quiet(N), quiet(D)],
    );
    assert_eq!(
        relay_findings(&rep),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
    // A copy judged by its signed custody alone (the relay's log names no
    // `received`): the sender's `handed` dated 40 min before the custody the relay
    // signed does not lengthen the copy's life at the relay.
    let unlabelled = log(&f, R, &[own_hand_over(&f, N, t + 10_000), stopped.clone()]);
    let rep = audit(
        &f,
        &[sender(exp, t - 40 * 60_000), unlabelled, quiet(N), quiet(D)],
    );
    assert_eq!(
        relay_findings(&rep),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
    // The keeper's log is still checked: the addressee signed a `quota` refusal of
    // the very copy (given only after it checked the relay's offer) and its log
    // holds no offer of it: it is reported `mail_offer_not_logged`, as for a long
    // copy; the relay is not named.
    let no = MailAck::sign_body(
        HandoverBody {
            addressee: Some(ag(D)),
            ..answer(&f, D, R, false, "quota", t + 120_000, TAKEN)
                .body()
                .clone()
        },
        &f.agency_keys[D],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, exp, Some(&custody)),
            own_hand_over(&f, N, t + 10_000),
            mail("hand_refused", S, D, D, t + 120_000, exp, Some(&no)),
            stopped.clone(),
        ],
    );
    let rep = audit(&f, &[sender(exp, t), relay, quiet(N), quiet(D)]);
    assert_eq!(
        relay_findings(&rep),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
    assert_eq!(
        naming(&rep, "mail_offer_not_logged", NAMES[D]),
        [NAMES[D].to_string()],
        "{:?}",
        rep.violations
    );
}

/// s37: the bound does not hide a relay that really sat on a copy with enough life
/// to pass the addressee. With [`MIN_JUDGED_LIFETIME_MS`] and a second left at its
/// custody, the relay that handed other mail to its neighbour and never offered the
/// copy to anyone but the silent addressee is named, as before s37 (nothing counted
/// in its summary); with a second less it is not judged and is counted.
#[test]
fn a_copy_just_above_the_lifetime_bound_is_still_judged() {
    let f = fixture();
    let t = t0();
    let done = t + 3 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let run = |exp: u64| {
        let relay = log(
            &f,
            R,
            &[
                mail("received", S, D, S, t, exp, Some(&custody)),
                own_hand_over(&f, N, t + 20 * 60_000),
                stopped.clone(),
            ],
        );
        let sender = log(
            &f,
            S,
            &[
                mail("handed", S, D, R, t, exp, Some(&custody)),
                stopped.clone(),
            ],
        );
        let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
        audit(&f, &[sender, relay, quiet(N), quiet(D)])
    };
    let above = run(t + MIN_JUDGED_LIFETIME_MS + 1_000);
    assert_eq!(
        naming(&above, "mail_not_relayed", NAMES[R]),
        [NAMES[R].to_string()],
        "{:?}",
        above.violations
    );
    let summary = above.nodes.iter().find(|n| n.agency == NAMES[R]).unwrap();
    assert_eq!(summary.mail_short_lived_not_judged, 0);
    let below = run(t + MIN_JUDGED_LIFETIME_MS - 1_000);
    assert_eq!(
        naming(&below, "mail_not_relayed", NAMES[R]),
        Vec::<String>::new(),
        "{:?}",
        below.violations
    );
    let summary = below.nodes.iter().find(|n| n.agency == NAMES[R]).unwrap();
    assert_eq!(summary.mail_short_lived_not_judged, 1);
}

/// A real sealed message of the sender to the addressee under [`id`], created at
/// `created` and expiring at `expires` (its identity bytes and digest are real).
fn sealed_by_s(f: &Fixture, created: u64, expires: u64) -> wlnode_crypto::mail::Envelope {
    let recipient = wlnode_crypto::seal::EncryptionSecretKey::generate()
        .unwrap()
        .public_key()
        .unwrap();
    wlnode_crypto::mail::Envelope::seal(
        &wlnode_crypto::mail::Draft {
            id: MessageId::from_hex(&id()).unwrap(),
            from: ag(S),
            to: ag(D),
            kind: "consult_request",
            created_at: Timestamp(created),
            expires_at: Timestamp(expires),
            plaintext: b"details",
        },
        &f.agency_keys[S],
        &recipient,
    )
    .unwrap()
}

/// s38 (s37 left it open): a relay logs its `received` of a copy with an expiry
/// earlier than the one the sender signed, under [`MIN_JUDGED_LIFETIME_MS`] from
/// its custody, and drops the copy. The earliest logged expiry counted, so the copy
/// was not judged (short-lived) and the relay was never named, for every copy it
/// dropped so. The sender now logs the copy's identity bytes beside its `handed`:
/// their SHA-256 is the digest the relay signed custody of, so the expiry in them is
/// the one the relay took the copy with, and the relay is judged by it and named.
/// Bytes of another copy (a later expiry a hostile sender made up), bytes that do
/// not decode, and an older sender's `handed` without them prove nothing: the
/// relay's expiry counts, as before.
#[test]
fn a_relay_logging_an_early_expiry_is_judged_by_the_expiry_of_the_copy_it_signed() {
    let f = fixture();
    let t = t0();
    let done = t + 3 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let sealed = |expires: u64| sealed_by_s(&f, t - 1_000, expires);
    // The copy the relay took lives 45 min; the relay logs 10.
    let real = sealed(t + 45 * 60_000);
    let logged_exp = t + 10 * 60_000;
    let custody = MailAck::sign_body(
        HandoverBody {
            item_digest: Some(real.identity_digest()),
            ..custody_for(&f, R, S, t, D).body().clone()
        },
        &f.agency_keys[R],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, logged_exp, Some(&custody)),
            own_hand_over(&f, N, t + 20 * 60_000),
            stopped.clone(),
        ],
    );
    let run = |copy: Option<String>| {
        let mut handed = mail("handed", S, D, R, t, logged_exp, Some(&custody));
        if let EventKind::Mail { copy: c, .. } = &mut handed.kind {
            *c = copy;
        }
        let sender = log(&f, S, &[handed, stopped.clone()]);
        let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
        audit(&f, &[sender, relay.clone(), quiet(N), quiet(D)])
    };
    let not_judged = |rep: &Report| {
        assert_eq!(
            naming(rep, "mail_not_relayed", NAMES[R]),
            Vec::<String>::new(),
            "{:?}",
            rep.violations
        );
        let summary = rep.nodes.iter().find(|n| n.agency == NAMES[R]).unwrap();
        assert_eq!(summary.mail_short_lived_not_judged, 1);
    };
    // The copy's own bytes: judged by its 45 min, and named.
    let rep = run(real.identity().map(hex::encode));
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [NAMES[R].to_string()],
        "{:?}",
        rep.violations
    );
    let summary = rep.nodes.iter().find(|n| n.agency == NAMES[R]).unwrap();
    assert_eq!(summary.mail_short_lived_not_judged, 0);
    let v = rep
        .violations
        .iter()
        .find(|v| v.kind == "mail_not_relayed")
        .unwrap();
    assert_eq!(v.evidence["expiry_from_signed_copy"], true, "{v:?}");
    assert_eq!(v.evidence["expires_at"], t + 45 * 60_000, "{v:?}");
    // No bytes (an older sender), bytes of another copy under the same id (which a
    // hostile sender could write to frame the relay with a later expiry), bytes that
    // do not decode, or too many of them: the relay's own expiry counts.
    not_judged(&run(None));
    not_judged(&run(sealed(t + 2 * 3_600_000).identity().map(hex::encode)));
    not_judged(&run(Some("zz".repeat(40))));
    not_judged(&run(Some(hex::encode(&real.identity().unwrap()[..40]))));
    let mut long = real.identity().unwrap();
    long.resize(wlnode_crypto::mail::MAX_IDENTITY_BYTES + 1, 0);
    not_judged(&run(Some(hex::encode(long))));
}

/// Review s38 H1: a hostile upstream logs its `handed` of the copy under the id in
/// upper case, beside the relay's genuine custody ack. Ids parsed either way, but
/// every rule keys copies by the logged string, so the relay's hand-over (logged in
/// lower case, as every build does) matched nothing: the honest relay was named
/// `mail_not_relayed` and itself proven `mail_not_logged`. An id not in its
/// canonical form now makes the event's ack evidence of nothing.
#[test]
fn an_upstream_logging_the_id_in_upper_case_frames_no_one() {
    let f = fixture();
    let t = t0();
    let exp = t + 2 * 3_600_000;
    let stopped = Event::new(exp + 3_600_000, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let onward = answer(&f, N, R, true, "ok", t + 60_000, TAKEN);
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, exp, Some(&custody)),
            mail("handed", S, D, N, t + 60_000, exp, Some(&onward)),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let run = |upper: bool| {
        let mut handed = mail("handed", S, D, R, t, exp, Some(&custody));
        if let EventKind::Mail { message_id, .. } = &mut handed.kind
            && upper
        {
            *message_id = message_id.to_uppercase();
        }
        let sender = log(&f, S, &[handed, stopped.clone()]);
        audit(&f, &[sender, relay.clone(), quiet(N), quiet(D)])
    };
    let findings = |rep: &Report| -> Vec<(String, String, bool)> {
        rep.violations
            .iter()
            .filter(|v| v.kind.starts_with("mail_"))
            .map(|v| (v.kind.clone(), v.node.clone(), v.proven))
            .collect()
    };
    let (lower, upper) = (run(false), run(true));
    // N's quiet log leaves the relay's hand-over to it unlogged there (the pair
    // `BB-CUSTOMS->CC-TRADE`), in both runs alike; nothing names the relay or the
    // pair with the sender.
    assert_eq!(findings(&upper), findings(&lower), "{:?}", upper.violations);
    assert_eq!(
        naming(&upper, "mail_not_relayed", NAMES[R]),
        Vec::<String>::new()
    );
    assert!(
        !findings(&upper)
            .iter()
            .any(|(_, node, _)| node.starts_with(NAMES[S])),
        "{:?}",
        upper.violations
    );
}

/// Review s38 H2, a sender reusing an id after its first message expired: the relay
/// handed the first copy on at once; the second had no route in its life. The relay
/// was judged by the second copy's digest (the upstream's ack under the same label,
/// last one kept) with the first copy's custody time, and named with "a link at
/// +60 s", before the second copy existed (the dead-end rule says: not named). Its
/// own signed custody ack now names the copy its `received` is judged by, and the
/// second copy is judged by its own custody.
#[test]
fn a_reused_id_does_not_judge_the_first_copy_by_the_second() {
    let f = fixture();
    let t = t0();
    let e1 = t + 2 * 3_600_000;
    let t2 = t + 3 * 3_600_000;
    let e2 = t + 5 * 3_600_000;
    let stopped = Event::new(e2 + 3_600_000, EventKind::NodeStopped);
    let cust = |at: u64, d: [u8; 32]| {
        MailAck::sign_body(
            HandoverBody {
                item_digest: Some(d),
                ..custody_for(&f, R, S, at, D).body().clone()
            },
            &f.agency_keys[R],
        )
    };
    let (c1, c2) = (cust(t, [7; 32]), cust(t2, [8; 32]));
    let onward = answer(&f, N, R, true, "ok", t + 60_000, [7; 32]);
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, S, t, e1, Some(&c1)),
            mail("handed", S, D, N, t + 60_000, e1, Some(&onward)),
            mail("received", S, D, S, t2, e2, Some(&c2)),
            stopped.clone(),
        ],
    );
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, e1, Some(&c1)),
            mail("handed", S, D, R, t2, e2, Some(&c2)),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let rep = audit(&f, &[sender, relay, quiet(N), quiet(D)]);
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
}

/// Review s38 H2, a hostile upstream relabelling: it relays S's message honestly,
/// then hands the relay its own message under the same id, logging the sender as S.
/// The relay handed both copies to the addressee, which signed acceptance of each;
/// it was named because its first `received` was judged by the second copy's
/// digest. Not named now (nor with the true label).
#[test]
fn an_upstream_relabelling_its_own_copy_under_the_id_frames_no_one() {
    let f = fixture();
    let u = E;
    let t = t0();
    let e1 = t + 2 * 3_600_000;
    let t2 = t + 30 * 60_000;
    let e2 = t + 4 * 3_600_000;
    let stopped = Event::new(e2 + 3_600_000, EventKind::NodeStopped);
    let (d1, d2) = ([7u8; 32], [8u8; 32]);
    let cust = |at: u64, d: [u8; 32]| {
        MailAck::sign_body(
            HandoverBody {
                item_digest: Some(d),
                hops: Some(1),
                ..custody_for(&f, R, u, at, D).body().clone()
            },
            &f.agency_keys[R],
        )
    };
    let (c1, c2) = (cust(t, d1), cust(t2, d2));
    let to_d = |at: u64, d: [u8; 32]| {
        MailAck::sign_body(
            HandoverBody {
                item_digest: Some(d),
                hops: Some(2),
                ..custody_for(&f, D, R, at, D).body().clone()
            },
            &f.agency_keys[D],
        )
    };
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, u, t, e1, Some(&c1)),
            mail(
                "handed",
                S,
                D,
                D,
                t + 60_000,
                e1,
                Some(&to_d(t + 60_000, d1)),
            ),
            mail("received", u, D, u, t2, e2, Some(&c2)),
            mail(
                "handed",
                u,
                D,
                D,
                t2 + 60_000,
                e2,
                Some(&to_d(t2 + 60_000, d2)),
            ),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    for label in [S, u] {
        let upstream = log(
            &f,
            u,
            &[
                mail("handed", S, D, R, t, e1, Some(&c1)),
                mail("handed", label, D, R, t2, e2, Some(&c2)),
                stopped.clone(),
            ],
        );
        let rep = audit(&f, &[upstream, relay.clone(), quiet(S), quiet(N), quiet(D)]);
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            Vec::<String>::new(),
            "label {}: {:?}",
            NAMES[label],
            rep.violations
        );
    }
}

/// Review s38: the relay of [`a_relay_logging_an_early_expiry_is_judged_by_the_expiry_of_the_copy_it_signed`]
/// also labelling its `received` otherwise (the id in upper case, a custody ack of
/// a made-up digest, another upstream, another sender) is still judged by the
/// expiry of the copy its signed custody ack in the sender's log names, and named.
#[test]
fn a_relay_logging_an_early_expiry_under_other_labels_is_still_named() {
    let f = fixture();
    let t = t0();
    let done = t + 3 * 3_600_000;
    let stopped = Event::new(done, EventKind::NodeStopped);
    let real = sealed_by_s(&f, t - 1_000, t + 45 * 60_000);
    let logged_exp = t + 10 * 60_000;
    let signed = |digest: [u8; 32], from: usize| {
        MailAck::sign_body(
            HandoverBody {
                item_digest: Some(digest),
                ..custody_for(&f, R, from, t, D).body().clone()
            },
            &f.agency_keys[R],
        )
    };
    let custody = signed(real.identity_digest(), S);
    let mut handed = mail("handed", S, D, R, t, t + 45 * 60_000, Some(&custody));
    if let EventKind::Mail { copy, .. } = &mut handed.kind {
        *copy = real.identity().map(hex::encode);
    }
    let sender = log(&f, S, &[handed, stopped.clone()]);
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let mut upper = mail("received", S, D, S, t, logged_exp, Some(&custody));
    if let EventKind::Mail { message_id, .. } = &mut upper.kind {
        *message_id = message_id.to_uppercase();
    }
    let variants = [
        (
            "true label",
            mail("received", S, D, S, t, logged_exp, Some(&custody)),
        ),
        ("upper case", upper),
        (
            "made-up digest",
            mail(
                "received",
                S,
                D,
                S,
                t,
                logged_exp,
                Some(&signed([9; 32], S)),
            ),
        ),
        (
            "another upstream",
            mail(
                "received",
                S,
                D,
                E,
                t,
                logged_exp,
                Some(&signed(real.identity_digest(), E)),
            ),
        ),
        (
            "another sender",
            mail("received", E, D, S, t, logged_exp, Some(&custody)),
        ),
    ];
    for (name, received) in variants {
        let relay = log(
            &f,
            R,
            &[
                received,
                own_hand_over(&f, N, t + 20 * 60_000),
                stopped.clone(),
            ],
        );
        let rep = audit(&f, &[sender.clone(), relay, quiet(N), quiet(D), quiet(E)]);
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            [NAMES[R].to_string()],
            "{name}: {:?}",
            rep.violations
        );
    }
}

/// The relay's signed custody ack of copy `d` taken from `upstream` (not the sender)
/// at `at` for `addressee`: at hop 0 when the relay is the addressee (the
/// upstream's own message to it), else hop 1.
fn custody_from(f: &Fixture, upstream: usize, at: u64, d: [u8; 32], addressee: usize) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            item_digest: Some(d),
            hops: Some(u32::from(addressee != R)),
            addressee: Some(ag(addressee)),
            ..custody_for(f, R, upstream, at, D).body().clone()
        },
        &f.agency_keys[R],
    )
}

/// Review of the s38 fixes R1: a hostile upstream hands the relay its own message
/// under the id of a message it relays, addressed to the relay, and labels it in
/// its log as the other sender's, after the relayed copy. Its custody time and
/// signed addressee (the relay) were taken for the relayed copy's: the relay's link
/// to its neighbour before the relayed copy existed counted as a route, and the
/// honest dead-end relay was named. The custody time and addressee are now those of
/// the copy judged (same digest).
#[test]
fn another_copys_custody_under_the_label_does_not_date_or_address_the_judged_one() {
    let f = fixture();
    let u = E;
    let t = t0();
    let (t_a, t_b) = (t, t + 30 * 60_000);
    let e_b = t_b + 2 * 3_600_000;
    let stopped = Event::new(e_b + 3_600_000, EventKind::NodeStopped);
    let signed = |at: u64, d: [u8; 32], addressee: usize| custody_from(&f, u, at, d, addressee);
    let (c_a, c_b) = (signed(t_a, [8; 32], R), signed(t_b, [7; 32], D));
    // The relay took the relayed copy at t_b and had no route in its life; it had
    // handed other mail to N 29 min before.
    let relay = log(
        &f,
        R,
        &[
            own_hand_over(&f, N, t_a + 60_000),
            mail("received", S, D, u, t_b, e_b, Some(&c_b)),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let run = |lie: bool| {
        let mut events = vec![mail("handed", S, D, R, t_b, e_b, Some(&c_b))];
        // Its own message to the relay under the id, labelled as S's when it lies.
        let label = if lie { S } else { u };
        events.push(mail(
            "handed",
            label,
            R,
            R,
            t_a,
            t_a + 3_600_000,
            Some(&c_a),
        ));
        events.push(stopped.clone());
        let upstream = log(&f, u, &events);
        audit(&f, &[upstream, relay.clone(), quiet(S), quiet(N), quiet(D)])
    };
    for lie in [false, true] {
        let rep = run(lie);
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            Vec::<String>::new(),
            "label lie {lie}: {:?}",
            rep.violations
        );
    }
}

/// Review of the s38 fixes R1, the offer rule: a hostile upstream hands the relay its
/// own message under the id of a message it relays (true labels). The relay offered
/// the relayed copy to its neighbour, whose log keeps the offer, and the copy
/// expired there (an honest dead end). The offer rule checked the offers against
/// the earliest custody from that upstream under the id, the upstream's own copy,
/// found none, and named the relay; it now checks those of the copy judged.
#[test]
fn the_offer_rule_judges_the_copy_the_relay_took_not_another_under_the_id() {
    let f = fixture();
    let u = E;
    let t = t0();
    let (t_a, t_b) = (t, t + 5 * 60_000);
    let e_b = t_b + 2 * 3_600_000;
    let stopped = Event::new(e_b + 3_600_000, EventKind::NodeStopped);
    let (d_a, d_b) = ([8u8; 32], [7u8; 32]);
    let signed = |at: u64, d: [u8; 32], addressee: usize| custody_from(&f, u, at, d, addressee);
    let (c_a, c_b) = (signed(t_a, d_a, R), signed(t_b, d_b, D));
    let upstream = log(
        &f,
        u,
        &[
            mail("handed", u, R, R, t_a, t_a + 3_600_000, Some(&c_a)),
            mail("handed", S, D, R, t_b, e_b, Some(&c_b)),
            stopped.clone(),
        ],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, u, t_b, e_b, Some(&c_b)),
            stopped.clone(),
        ],
    );
    let neighbour = log(
        &f,
        N,
        &[
            offered_hops(&f, R, N, &id(), d_b, t_b + 60_000, 2),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let rep = audit(&f, &[upstream, relay, neighbour, quiet(S), quiet(D)]);
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        Vec::<String>::new(),
        "{:?}",
        rep.violations
    );
}

/// Review of the s38 fixes (third review) H1: the relay took the sender's copy at
/// `t` (its signed custody ack is in the sender's log) and labels its `received`
/// with another sender and a custody ack it signed itself 29 min before the
/// expiry. The label matched nothing of the sender's log, so the relay's own late
/// time was the custody: the copy looked short-lived, neither rule judged it, and
/// the relay that dropped it was never named. The custody time is now the earliest
/// it signed for that very copy in any log, whatever its labels.
#[test]
fn a_false_label_with_a_late_custody_does_not_make_a_dropped_copy_short_lived() {
    let f = fixture();
    let t = t0();
    let exp = t + 2 * 3_600_000;
    let late = exp - 29 * 60_000;
    let stopped = Event::new(exp + 3_600_000, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let own_late = custody_for(&f, R, S, late, D);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    for (label, upstream) in [(S, S), (E, S), (S, E)] {
        let relay = log(
            &f,
            R,
            &[
                own_hand_over(&f, N, t + 20 * 60_000),
                mail("received", label, D, upstream, late, exp, Some(&own_late)),
                stopped.clone(),
            ],
        );
        let rep = audit(&f, &[sender.clone(), relay, quiet(N), quiet(D), quiet(E)]);
        assert_eq!(
            naming(&rep, "mail_not_relayed", NAMES[R]),
            [NAMES[R].to_string()],
            "sender label {}, upstream label {}: {:?}",
            NAMES[label],
            NAMES[upstream],
            rep.violations
        );
    }
}

/// Review of the s38 fixes (third review) M1: the relay labels its `received` with
/// another upstream and hands the copy back to its true upstream, which answers
/// that it has it (`seen`). With the true label that was no hand-over (review
/// s31); with the false one it counted, and the relay that dropped the copy was
/// cleared. A neighbour whose log holds the relay's custody of the copy is an
/// upstream whatever the label.
#[test]
fn handing_back_to_the_true_upstream_under_a_false_label_is_no_hand_over() {
    let f = fixture();
    let t = t0();
    let exp = t + 2 * 3_600_000;
    let stopped = Event::new(exp + 3_600_000, EventKind::NodeStopped);
    let custody = custody_for(&f, R, S, t, D);
    let back = answer(&f, S, R, true, "seen", t + 60_000, TAKEN);
    let sender = log(
        &f,
        S,
        &[
            mail("handed", S, D, R, t, exp, Some(&custody)),
            stopped.clone(),
        ],
    );
    let relay = log(
        &f,
        R,
        &[
            mail("received", S, D, E, t, exp, Some(&custody)),
            own_hand_over(&f, N, t + 20 * 60_000),
            mail("handed", S, D, S, t + 60_000, exp, Some(&back)),
            stopped.clone(),
        ],
    );
    let quiet = |i: usize| log(&f, i, std::slice::from_ref(&stopped));
    let rep = audit(&f, &[sender, relay, quiet(N), quiet(D), quiet(E)]);
    assert_eq!(
        naming(&rep, "mail_not_relayed", NAMES[R]),
        [NAMES[R].to_string()],
        "{:?}",
        rep.violations
    );
}
