//! `mail_relay_delayed` (s36-delay, issue 21) over hand-built logs signed with real
//! roster keys: a relay that holds a copy back while its addressee takes newer mail
//! from it is named alone; an honest relay whose hand-overs failed, restarted or hit
//! its audit caps is not; the relay's new `hand_failed` reasons change no finding of
//! the other mail rules.

use wlnode_crypto::Timestamp;
use wlnode_crypto::mail::{HandoverBody, HandoverOffer, MailAck, OfferBody};
use wlnode_crypto::model::MessageId;

use super::super::tests::{Fixture, ag, fixture, log};
use super::super::*;
use super::{Cover, DELAY_BOUND_MS, EXCUSE_BEFORE_T2_MS, POLL_AFTER_CUSTODY_MS, Pair, RangeMax};

/// The sender, the relay, the addressee.
const S: usize = 0;
const R: usize = 1;
const N: usize = 2;

/// The held copy and the newer one.
const HELD: [u8; 32] = [7; 32];
const NEWER: [u8; 32] = [8; 32];

fn held_id() -> String {
    "ab".repeat(16)
}

fn newer_id() -> String {
    "cd".repeat(16)
}

const MIN: u64 = 60_000;

/// The roster's keys are valid from an hour ago.
fn t0() -> u64 {
    Timestamp::now().as_millis() - 30 * MIN
}

/// `by`'s signed answer (`accepted`, `reason`) to `node`'s hand-over of copy
/// `digest` of message `id` for `addressee`, at `at`.
#[allow(clippy::too_many_arguments)]
fn answer(
    f: &Fixture,
    by: usize,
    node: usize,
    id: &str,
    digest: [u8; 32],
    accepted: bool,
    reason: &str,
    at: u64,
) -> MailAck {
    MailAck::sign_body(
        HandoverBody {
            message_id: Some(MessageId::from_hex(id).unwrap()),
            item: "message".into(),
            item_digest: Some(digest),
            hops: Some(u32::from(node != S)),
            addressee: Some(ag(N)),
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

/// A `mail` event of message `id` from the sender to the addressee, with `peer`.
fn mail(
    action: &str,
    id: &str,
    peer: usize,
    at: u64,
    ack: Option<&MailAck>,
    reason: Option<&str>,
) -> Event {
    Event::new(
        at,
        EventKind::Mail {
            action: action.into(),
            message_id: id.into(),
            item: "message".into(),
            from: ag(S),
            to: ag(N),
            kind: "consult_request".into(),
            size: 1040,
            peer: Some(ag(peer)),
            reason: reason.map(str::to_owned),
            expires_at: Some(t0() + 48 * 60 * MIN),
            ack: ack.map(MailAck::to_hex),
            copy: None,
        },
    )
}

/// The relay's `received` of copy `digest` of `id` from the sender at `at`, with its
/// own signed custody ack.
fn took(f: &Fixture, id: &str, digest: [u8; 32], at: u64) -> Event {
    let ack = answer(f, R, S, id, digest, true, "ok", at);
    mail("received", id, S, at, Some(&ack), None)
}

/// The relay's `handed` of copy `digest` of `id` to the addressee, with the
/// addressee's signed acceptance at `at`.
fn handed(f: &Fixture, id: &str, digest: [u8; 32], at: u64) -> Event {
    let ack = answer(f, N, R, id, digest, true, "ok", at);
    mail("handed", id, N, at, Some(&ack), None)
}

/// The relay's `hand_failed` of `id` to `to` for `reason` at `at`.
fn failed(id: &str, to: usize, reason: &str, at: u64) -> Event {
    mail("hand_failed", id, to, at, None, Some(reason))
}

/// A `node_started` at `at` of a build logging every failed hand-over (s36), or
/// of an older one.
fn started(at: u64, s36: bool) -> Event {
    Event::new(
        at,
        EventKind::NodeStarted {
            version: if s36 {
                crate::event::node_started_version("0.1.0")
            } else {
                "0.1.0".into()
            },
        },
    )
}

/// The relay (an s36 build, started 20 min before) took the held copy at `tc`,
/// the newer at `tc + 10 min`, handed the newer one to the addressee at
/// `tc + 11 min` and the held one only at `tc + 2 h`; `extra` events (time-sorted
/// into place) in its log.
fn relay_log(f: &Fixture, extra: &[Event]) -> Vec<Event> {
    let tc = t0();
    let mut events = vec![
        started(tc - 20 * MIN, true),
        took(f, &held_id(), HELD, tc),
        took(f, &newer_id(), NEWER, tc + 10 * MIN),
        handed(f, &newer_id(), NEWER, tc + 11 * MIN),
        handed(f, &held_id(), HELD, tc + 120 * MIN),
    ];
    events.extend_from_slice(extra);
    events.sort_by_key(|e| e.at);
    events
}

/// The `mail_relay_delayed` findings of an audit of the relay's `events`.
fn delayed(f: &Fixture, events: &[Event]) -> Vec<Violation> {
    let rep = verify(
        &f.roster,
        &[log(f, R, events, &[events.len() as u64])],
        &AuditorState::default(),
        Options {
            tolerance_ms: 0,
            now_ms: None,
            max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
        },
    );
    rep.violations
        .into_iter()
        .filter(|v| v.kind == "mail_relay_delayed")
        .collect()
}

/// Issue 21 / s36-delay: the relay holds the copy for its addressee back for two
/// hours while the addressee takes newer mail from it (custody signed ten minutes
/// after, accepted a minute later). With no failure, refusal, restart or
/// saturated hour in its log, an honest relay would have offered the held copy in
/// the same poll: the relay alone is named, unproven. (No rule reported this before
/// s36-delay.) Not when the addressee took the held copy within the bound of the
/// newer one, nor when the other copy was not newer (custody before the held
/// one's), nor when only another neighbour took the newer mail.
#[test]
fn a_relay_that_holds_a_copy_back_while_its_addressee_takes_newer_mail_is_named() {
    let f = fixture();
    let tc = t0();
    let found = delayed(&f, &relay_log(&f, &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    let v = &found[0];
    assert_eq!(v.node, ag(R).as_str());
    assert!(!v.proven);
    assert_eq!(v.evidence["message_id"], held_id());
    assert_eq!(v.evidence["addressee"], ag(N).as_str());
    assert_eq!(v.evidence["custody_at"], tc);
    assert_eq!(v.evidence["accepted_at"], tc + 120 * MIN);
    assert_eq!(v.evidence["newer"]["message_id"], newer_id());
    assert_eq!(v.evidence["newer"]["accepted_at"], tc + 11 * MIN);

    // Taken within the bound of the newer mail (and the custody's hour): nothing.
    let prompt = vec![
        started(tc - 20 * MIN, true),
        took(&f, &held_id(), HELD, tc),
        took(&f, &newer_id(), NEWER, tc + 50 * MIN),
        handed(&f, &newer_id(), NEWER, tc + 51 * MIN),
        handed(&f, &held_id(), HELD, tc + 51 * MIN + DELAY_BOUND_MS - MIN),
    ];
    assert!(delayed(&f, &prompt).is_empty());
    // The other copy is older (its custody within the skew of the held one's):
    // the poll that sent it need not have held this one.
    let older = vec![
        started(tc - 20 * MIN, true),
        took(&f, &held_id(), HELD, tc),
        took(&f, &newer_id(), NEWER, tc + 4 * MIN),
        handed(&f, &newer_id(), NEWER, tc + 11 * MIN),
        handed(&f, &held_id(), HELD, tc + 120 * MIN),
    ];
    assert!(delayed(&f, &older).is_empty());
    // Two copies delayed alike, in order: no other acceptance between the custody
    // and the held copy's (less the bound), so nothing to judge by. (A relay that
    // delays ALL its mail to the addressee evenly is caught by the older copies it
    // hands over meanwhile since s37-relay:
    // `a_relay_that_delays_all_mail_to_its_addressee_evenly_is_named`.)
    let uniform = vec![
        started(tc - 20 * MIN, true),
        took(&f, &held_id(), HELD, tc),
        took(&f, &newer_id(), NEWER, tc + 10 * MIN),
        handed(&f, &held_id(), HELD, tc + 120 * MIN),
        handed(&f, &newer_id(), NEWER, tc + 130 * MIN),
    ];
    assert!(delayed(&f, &uniform).is_empty());
}

/// s36-delay: an honest relay whose hand-overs of the held copy to the addressee
/// failed, for any reason it now audits, or were refused with a signed answer, or
/// answered with a bad ack, or that restarted meanwhile, is not named: its own
/// events clear it (also one logged up to an hour before the custody, which may
/// have used the item's hourly slot). A failure of another message, or of this one
/// to another neighbour, does not.
#[test]
fn an_honest_relay_whose_hand_overs_to_the_addressee_failed_is_not_named() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    for reason in [
        "timeout",
        "unsupported",
        "stream",
        "closed",
        "dial",
        "unsigned_refusal",
        "bad_time",
        "bad_ack",
    ] {
        let events = relay_log(&f, &[failed(&id, N, reason, tc + 11 * MIN)]);
        assert!(delayed(&f, &events).is_empty(), "{reason}");
    }
    let early = relay_log(&f, &[failed(&id, N, "closed", tc - 50 * MIN)]);
    assert!(delayed(&f, &early).is_empty());
    let refusal = answer(&f, N, R, &id, HELD, false, "quota", tc + 11 * MIN);
    let refused = relay_log(
        &f,
        &[mail(
            "hand_refused",
            &id,
            N,
            tc + 11 * MIN,
            Some(&refusal),
            Some("quota"),
        )],
    );
    assert!(delayed(&f, &refused).is_empty());
    let bad = relay_log(
        &f,
        &[mail(
            "rejected",
            &id,
            N,
            tc + 11 * MIN,
            None,
            Some("bad_ack: forged"),
        )],
    );
    assert!(delayed(&f, &bad).is_empty());
    let restarted = relay_log(&f, &[started(tc + 30 * MIN, true)]);
    assert!(delayed(&f, &restarted).is_empty());
    // Not cleared by another message's failure, this one's to another neighbour,
    // or one long before the custody.
    for extra in [
        failed(&newer_id(), N, "closed", tc + 11 * MIN),
        failed(&id, S, "closed", tc + 11 * MIN),
        failed(&id, N, "closed", tc - 70 * MIN),
    ] {
        assert_eq!(delayed(&f, &relay_log(&f, &[extra])).len(), 1);
    }
}

/// s36-delay: in an hour in which the relay's log holds as many `hand_failed` to
/// the addressee (1,024), `hand_failed` in all (4,096) or `hand_refused` to the
/// addressee (1,024) as the runtime audits, its silence about the held copy is no
/// evidence: not named. One fewer, and it is.
#[test]
fn hours_at_the_relays_audit_caps_are_skipped() {
    let f = fixture();
    let tc = t0();
    let other = |i: u32| format!("{:032x}", u128::from(i) + 1);
    let burst = |n: u32, to: usize, action: &str| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let at = tc + 20 * MIN + u64::from(i) * 10;
                if action == "hand_refused" {
                    let a = answer(&f, to, R, &other(i), [9; 32], false, "quota", at);
                    mail(action, &other(i), to, at, Some(&a), Some("quota"))
                } else {
                    failed(&other(i), to, "stream", at)
                }
            })
            .collect()
    };
    assert!(delayed(&f, &relay_log(&f, &burst(1024, N, "hand_failed"))).is_empty());
    assert_eq!(
        delayed(&f, &relay_log(&f, &burst(1023, N, "hand_failed"))).len(),
        1
    );
    assert!(delayed(&f, &relay_log(&f, &burst(1024, N, "hand_refused"))).is_empty());
    assert_eq!(
        delayed(&f, &relay_log(&f, &burst(1023, N, "hand_refused"))).len(),
        1
    );
    assert!(delayed(&f, &relay_log(&f, &burst(4096, S, "hand_failed"))).is_empty());
    assert_eq!(
        delayed(&f, &relay_log(&f, &burst(4095, S, "hand_failed"))).len(),
        1
    );
}

/// s36-delay: the relay's `hand_failed` events with the new reasons, and those to
/// a neighbour that is not the addressee, change no finding of the other mail
/// rules nor who they name: the same violations as without them.
#[test]
fn new_hand_failed_reasons_and_neighbours_change_no_other_finding() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    let exp = tc + 60 * MIN;
    let expiring = |mut e: Event| {
        if let EventKind::Mail { expires_at, .. } = &mut e.kind {
            *expires_at = Some(exp);
        }
        e
    };
    // The relay took the copy and never handed it on before its expiry, while the
    // addressee took other mail from it: `mail_not_relayed`.
    let base = vec![
        expiring(took(&f, &id, HELD, tc)),
        took(&f, &newer_id(), NEWER, tc + 10 * MIN),
        handed(&f, &newer_id(), NEWER, tc + 11 * MIN),
        Event::new(tc + 120 * MIN, EventKind::NodeStopped),
    ];
    let run = |extra: &[Event], strip_note: bool| {
        let mut events = base.clone();
        events.extend_from_slice(extra);
        events.sort_by_key(|e| e.at);
        let rep = verify(
            &f.roster,
            &[log(&f, R, &events, &[events.len() as u64])],
            &AuditorState::default(),
            Options {
                tolerance_ms: 0,
                now_ms: None,
                max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
            },
        );
        let mut v: Vec<(String, String, bool, String)> = rep
            .violations
            .into_iter()
            .map(|v| {
                let mut evidence = v.evidence.clone();
                if let Some(o) = evidence.as_object_mut().filter(|_| strip_note) {
                    o.remove("relay_says_addressee_failed");
                }
                (v.kind, v.node, v.proven, evidence.to_string())
            })
            .collect();
        v.sort();
        v
    };
    let before = run(&[], false);
    assert!(
        before.iter().any(|v| v.0 == "mail_not_relayed"),
        "{before:?}"
    );
    // The new reasons to the addressee, and every reason to another neighbour:
    // not even the note of the addressee's failures changes.
    let mut extra = Vec::new();
    for (i, reason) in [
        "stream",
        "closed",
        "dial",
        "unsigned_refusal",
        "bad_time",
        "bad_ack",
    ]
    .into_iter()
    .enumerate()
    {
        let at = tc + 12 * MIN + i as u64 * MIN;
        extra.push(expiring(failed(&id, N, reason, at)));
    }
    for (i, reason) in ["timeout", "unsupported", "stream", "closed"]
        .into_iter()
        .enumerate()
    {
        extra.push(expiring(failed(
            &id,
            S,
            reason,
            tc + 20 * MIN + i as u64 * MIN,
        )));
    }
    assert_eq!(run(&extra, false), before);
    // With `timeout`/`unsupported` to the addressee too, only that note (s35) changes:
    // the same findings against the same nodes.
    let before = run(&[], true);
    let mut extra = Vec::new();
    for (i, reason) in [
        "timeout",
        "unsupported",
        "stream",
        "closed",
        "dial",
        "unsigned_refusal",
        "bad_time",
        "bad_ack",
    ]
    .into_iter()
    .enumerate()
    {
        let at = tc + 12 * MIN + i as u64 * MIN;
        extra.push(expiring(failed(&id, N, reason, at)));
        extra.push(expiring(failed(&id, S, reason, at)));
    }
    assert_eq!(run(&extra, true), before);
}

/// The segment tree gives the largest value and its position in every range.
#[test]
fn range_max_matches_a_scan() {
    let values: Vec<u64> = (0..37u64).map(|i| (i * 7919) % 101).collect();
    let tree = RangeMax::new(&values);
    for lo in 0..=values.len() {
        for hi in lo..=values.len() {
            let want = values[lo..hi]
                .iter()
                .enumerate()
                .map(|(i, v)| (*v, lo + i))
                .max();
            assert_eq!(tree.max(lo, hi), want, "{lo}..{hi}");
        }
    }
    assert_eq!(RangeMax::new(&[]).max(0, 0), None);
}

/// The gap maxima of [`Cover`] give what a scan of every acceptance against every
/// excusing event gives (the largest custody time of an acceptance in the range
/// that no event covers), for ranges and event sets of every shape.
#[test]
fn cover_matches_a_scan() {
    let skew = wlnode_crypto::mail::MAX_CLOCK_SKEW_MS;
    let list: Vec<(u64, u64, String, [u8; 32])> = (0..60u64)
        .map(|i| (i * 17 * MIN, (i * 7919) % 101, String::new(), [0; 32]))
        .collect();
    let pair = Pair {
        tree: RangeMax::new(&list.iter().map(|a| a.1).collect::<Vec<_>>()),
        list,
    };
    for seed in 0..12u64 {
        let excuses: Vec<u64> = (0..seed)
            .map(|k| ((k * 397 + seed * 131) % 1000) * MIN)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cover = Cover::new(&excuses, &pair, skew);
        for lo in (0..1030).step_by(23) {
            for hi in (lo..1040).step_by(17) {
                let (lo, hi) = (lo * MIN, hi * MIN);
                let want = pair
                    .list
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| a.0 > lo && a.0 < hi)
                    .filter(|(_, a)| {
                        !excuses.iter().any(|e| {
                            *e + EXCUSE_BEFORE_T2_MS >= a.0 && *e <= a.0 + DELAY_BOUND_MS + skew
                        })
                    })
                    .map(|(i, a)| (a.1, i))
                    .max();
                assert_eq!(
                    cover.uncovered_max(&pair, lo, hi).map(|m| m.0),
                    want.map(|m| m.0),
                    "{seed} {lo}..{hi}"
                );
            }
        }
    }
}

/// [`fixture`]'s three members, the relay running two nodes; with the second
/// node's key.
fn two_relay_nodes() -> (Fixture, wlnode_crypto::SecretKey) {
    two_nodes_for(R)
}

/// [`fixture`]'s three members, member `who` running two nodes; with the second
/// node's key.
fn two_nodes_for(who: usize) -> (Fixture, wlnode_crypto::SecretKey) {
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::SecretKey;
    let authority = SecretKey::generate().unwrap();
    let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
    let (mut agency_keys, mut node_keys) = (Vec::new(), Vec::new());
    let second = SecretKey::generate().unwrap();
    for i in 0..3 {
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        let mut nodes = vec![node.public_key().peer_id()];
        if i == who {
            nodes.push(second.public_key().peer_id());
        }
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                ag(i).as_str(),
                wlnode_crypto::roster::Role::Member,
                key.public_key(),
                nodes,
                &["eu"],
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        agency_keys.push(key);
        node_keys.push(node);
    }
    let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
    (
        Fixture {
            roster,
            agency_keys,
            node_keys,
        },
        second,
    )
}

/// The `mail_relay_delayed` findings of an audit of `logs`.
fn delayed_in(f: &Fixture, logs: &[ExportedLog]) -> Vec<Violation> {
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
    .violations
    .into_iter()
    .filter(|v| v.kind == "mail_relay_delayed")
    .collect()
}

/// s36-delay: an agency may run several nodes, each holding its own mail. One node
/// held the copy (and was slow to reach the addressee), another took and handed the
/// newer mail: no node held both, nobody is named. The same trail in one node's
/// log names the relay. Only a node's own `received` says which node took the
/// copy: an ack of the relay's agency in the upstream's log may be from a node
/// retired since (review s36-delay M2), even when the roster now lists one node.
#[test]
fn a_copy_is_judged_against_the_acceptances_of_the_node_that_held_it() {
    let (mut f, mut second) = two_relay_nodes();
    let tc = t0();
    let first = vec![
        started(tc - 20 * MIN, true),
        took(&f, &held_id(), HELD, tc),
        handed(&f, &held_id(), HELD, tc + 120 * MIN),
    ];
    let other = vec![
        started(tc - 20 * MIN, true),
        took(&f, &newer_id(), NEWER, tc + 10 * MIN),
        handed(&f, &newer_id(), NEWER, tc + 11 * MIN),
    ];
    let first_log = log(&f, R, &first, &[first.len() as u64]);
    std::mem::swap(&mut f.node_keys[R], &mut second);
    let other_log = log(&f, R, &other, &[other.len() as u64]);
    std::mem::swap(&mut f.node_keys[R], &mut second);
    assert!(delayed_in(&f, &[first_log, other_log]).is_empty());
    let all = relay_log(&f, &[]);
    assert_eq!(
        delayed_in(&f, &[log(&f, R, &all, &[all.len() as u64])]).len(),
        1
    );
    // Review s36-delay M2: the agency's ack in the sender's log at `tc` is from a
    // node retired since (the roster now lists one); the node audited took the copy
    // itself only at `tc + 100 min`, from another upstream, and handed it within
    // 20 min. Before the fix the sender's ack was credited to it: named.
    let single = fixture();
    let custody = answer(&single, R, S, &held_id(), HELD, true, "ok", tc);
    let sender = vec![Event::new(
        tc,
        EventKind::Mail {
            action: "handed".into(),
            message_id: held_id(),
            item: "message".into(),
            from: ag(S),
            to: ag(N),
            kind: "consult_request".into(),
            size: 1040,
            peer: Some(ag(R)),
            reason: None,
            expires_at: Some(tc + 48 * 60 * MIN),
            ack: Some(custody.to_hex()),
            copy: None,
        },
    )];
    let relay = vec![
        started(tc - 20 * MIN, true),
        took(&single, &newer_id(), NEWER, tc + 10 * MIN),
        handed(&single, &newer_id(), NEWER, tc + 11 * MIN),
        took(&single, &held_id(), HELD, tc + 100 * MIN),
        handed(&single, &held_id(), HELD, tc + 120 * MIN),
    ];
    let logs = [
        log(&single, S, &sender, &[sender.len() as u64]),
        log(&single, R, &relay, &[relay.len() as u64]),
    ];
    assert!(delayed_in(&single, &logs).is_empty());
    // Its own `received` at `tc` (the same ack) is judged as before.
    let mut own = relay.clone();
    own.insert(1, took(&single, &held_id(), HELD, tc));
    let logs = [
        log(&single, S, &sender, &[sender.len() as u64]),
        log(&single, R, &own, &[own.len() as u64]),
    ];
    assert_eq!(delayed_in(&single, &logs).len(), 1);
}

/// s36-delay, rolling upgrade: auditors upgrade first, and a relay still running an
/// older build logs no `hand_failed` for a reset stream or an anonymous refusal, so
/// its silence clears nobody: the same trail is not judged when the relay's latest
/// start before the custody is of an older build (its `node_started` version names
/// no `mail-failures`), nor when its log shows no start at all; it is again once the
/// relay restarted on an s36 build before the custody.
#[test]
fn a_relay_running_an_older_build_is_not_judged() {
    let f = fixture();
    let tc = t0();
    let older: Vec<Event> = relay_log(&f, &[])
        .into_iter()
        .map(|e| match e.kind {
            EventKind::NodeStarted { .. } => started(e.at, false),
            _ => e,
        })
        .collect();
    assert!(delayed(&f, &older).is_empty());
    // Review s36-delay M3: the copy not judged is counted in the relay's summary,
    // an informational line, never a finding.
    let rep = verify(
        &f.roster,
        &[log(&f, R, &older, &[older.len() as u64])],
        &AuditorState::default(),
        Options {
            tolerance_ms: 0,
            now_ms: None,
            max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
        },
    );
    assert_eq!(rep.nodes[0].mail_delay_older_build, 1);
    // Shown in the HTML report's nodes table too (final read of s36: JSON only).
    let labels = crate::html::Labels::from_fn(|name| name);
    assert!(crate::html::sections(&rep, &labels).contains("1 delay_not_judged"));
    assert_eq!(rep.nodes[0].violations, 0, "{:?}", rep.violations);
    let unstarted: Vec<Event> = relay_log(&f, &[])
        .into_iter()
        .filter(|e| !matches!(e.kind, EventKind::NodeStarted { .. }))
        .collect();
    assert!(delayed(&f, &unstarted).is_empty());
    let upgraded = {
        let mut v = vec![started(tc - 60 * MIN, false)];
        v.extend(relay_log(&f, &[]));
        v
    };
    assert_eq!(delayed(&f, &upgraded).len(), 1);
    assert!(crate::event::version_has(
        &crate::event::node_started_version("0.1.0"),
        crate::event::MAIL_FAILURES_LOGGED
    ));
    assert!(!crate::event::version_has(
        "0.1.0+mail-failures-2",
        crate::event::MAIL_FAILURES_LOGGED
    ));
    // Review s36-delay L1: a package version with build metadata of its own.
    let own_meta = crate::event::node_started_version("0.2.0+git.5");
    assert_eq!(own_meta, "0.2.0+git.5.mail-failures");
    for v in [own_meta.as_str(), "0.2.0+git+mail-failures"] {
        assert!(
            crate::event::version_has(v, crate::event::MAIL_FAILURES_LOGGED),
            "{v}"
        );
    }
    assert!(!crate::event::version_has(
        "0.2.0-mail-failures",
        crate::event::MAIL_FAILURES_LOGGED
    ));
}

/// `by`'s signed offer of copy `digest` of `id` to the relay, as the relay's
/// `offered` event at `at` (signed no earlier than [`t0`]: the roster's keys are
/// valid from shortly before).
fn offer(f: &Fixture, by: usize, id: &str, digest: [u8; 32], at: u64) -> Event {
    let o = HandoverOffer::sign_body(
        OfferBody {
            message_id: MessageId::from_hex(id).unwrap(),
            item: "message".into(),
            item_digest: digest,
            hops: 1,
            from_hop: ag(by),
            to_hop: ag(R),
            at: Timestamp(at.max(t0())),
            signer_key: f.agency_keys[by].public_key(),
        },
        &f.agency_keys[by],
    );
    let mut e = mail("offered", id, N, at, None, None);
    if let EventKind::Mail { ack, .. } = &mut e.kind {
        *ack = Some(o.to_hex());
    }
    e
}

/// Review s36-delay M1: the addressee got the copy elsewhere and offered it back to
/// the relay; the relay's mailer answers `seen` and counts it as the addressee's
/// until the next retry, with no failure to log. The addressee's valid signed
/// offer of the copy in the relay's log clears the relay (its own signature: it
/// can only clear), also one up to a day before the custody (a neighbour's offer
/// of an item is audited once a day; the window takes a day and an hour), and so
/// does an hour in which the relay audited as many offers by the addressee as the
/// runtime does. Not an offer signed by someone else in the addressee's name, nor
/// one older than a day and an hour.
#[test]
fn an_addressee_that_offers_the_copy_back_does_not_frame_the_relay() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    assert!(delayed(&f, &relay_log(&f, &[offer(&f, N, &id, HELD, tc + 5 * MIN)])).is_empty());
    assert!(
        delayed(
            &f,
            &relay_log(&f, &[offer(&f, N, &id, HELD, tc - 23 * 60 * MIN)])
        )
        .is_empty()
    );
    for extra in [
        offer(&f, S, &id, HELD, tc + 5 * MIN),
        offer(&f, N, &id, HELD, tc - 26 * 60 * MIN),
    ] {
        assert_eq!(delayed(&f, &relay_log(&f, &[extra])).len(), 1);
    }
    let burst = |n: u32| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let other = format!("{:032x}", u128::from(i) + 1);
                let mut d = [9; 32];
                d[..4].copy_from_slice(&i.to_be_bytes());
                offer(&f, N, &other, d, tc + 20 * MIN + u64::from(i) * 10)
            })
            .collect()
    };
    assert!(delayed(&f, &relay_log(&f, &burst(1024))).is_empty());
    assert_eq!(delayed(&f, &relay_log(&f, &burst(1023))).len(), 1);
}

/// Review s36-delay L3 (M1's worst case): a hostile addressee signs its acceptance
/// of the newer copy with its clock a skew behind, the held copy waits a full retry
/// (5 min) after an offer back the relay logged a day before, its request takes the
/// full 130 s and the addressee signs its acceptance a skew ahead: 17 min 10 s,
/// plus 10 min of a busy relay's loop, is 27 min 10 s after the newer acceptance.
/// Not named (the first bound, 20 min, named it); past the bound of 30 min, named.
#[test]
fn a_hostile_addressee_at_the_bound_does_not_frame_the_relay() {
    let f = fixture();
    let tc = t0();
    let trail = |th: u64| {
        vec![
            started(tc - 20 * MIN, true),
            took(&f, &held_id(), HELD, tc),
            took(&f, &newer_id(), NEWER, tc + 40 * MIN),
            handed(&f, &newer_id(), NEWER, tc + 45 * MIN),
            handed(&f, &held_id(), HELD, th),
        ]
    };
    let worst = tc + 45 * MIN + 27 * MIN + 10_000;
    assert!(delayed(&f, &trail(worst)).is_empty());
    assert_eq!(delayed(&f, &trail(tc + 45 * MIN + 31 * MIN)).len(), 1);
}

/// Review s36-delay M3: a restart explains only the delay before it. Held copies
/// survive it and the first poll after it offers them again, so newer mail the
/// addressee took after the restart (beyond the skew) still names the relay; a
/// restart after the last newer acceptance clears it.
#[test]
fn a_restart_explains_only_the_delay_before_it() {
    let f = fixture();
    let tc = t0();
    let third = "ef".repeat(16);
    let after = [
        started(tc + 30 * MIN, true),
        took(&f, &third, [6; 32], tc + 40 * MIN),
        handed(&f, &third, [6; 32], tc + 41 * MIN),
    ];
    assert_eq!(delayed(&f, &relay_log(&f, &after)).len(), 1);
    let late = [
        took(&f, &third, [6; 32], tc + 40 * MIN),
        handed(&f, &third, [6; 32], tc + 41 * MIN),
        started(tc + 60 * MIN, true),
    ];
    assert!(delayed(&f, &relay_log(&f, &late)).is_empty());
    // A restart on an older build stops the judgement (counted, not named).
    let downgraded = [
        started(tc + 30 * MIN, false),
        took(&f, &third, [6; 32], tc + 40 * MIN),
        handed(&f, &third, [6; 32], tc + 41 * MIN),
    ];
    assert!(delayed(&f, &relay_log(&f, &downgraded)).is_empty());
}

/// Review s36-delay M3/M4: an excusing event explains only the poll near the newer
/// acceptance it lies by (up to 1 h 15 min before it, the bound and the skew
/// after): a relay that logged one failure of the held copy early and then kept it
/// back for hours while its addressee took newer mail is named for the later newer
/// mail. A failure near each newer acceptance clears it.
#[test]
fn excuses_count_only_near_the_newer_acceptance_they_explain() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    let third = "ef".repeat(16);
    let trail = |extra: &[Event]| {
        let mut v = vec![
            started(tc - 20 * MIN, true),
            took(&f, &id, HELD, tc),
            took(&f, &newer_id(), NEWER, tc + 10 * MIN),
            handed(&f, &newer_id(), NEWER, tc + 11 * MIN),
            took(&f, &third, [6; 32], tc + 150 * MIN),
            handed(&f, &third, [6; 32], tc + 151 * MIN),
            handed(&f, &id, HELD, tc + 200 * MIN),
        ];
        v.extend_from_slice(extra);
        v.sort_by_key(|e| e.at);
        v
    };
    let once = trail(&[failed(&id, N, "timeout", tc + 11 * MIN)]);
    let found = delayed(&f, &once);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].evidence["newer"]["message_id"], third);
    assert_eq!(found[0].evidence["excuse_before_ms"], EXCUSE_BEFORE_T2_MS);
    let twice = trail(&[
        failed(&id, N, "timeout", tc + 11 * MIN),
        failed(
            &id,
            N,
            "timeout",
            tc + 151 * MIN - EXCUSE_BEFORE_T2_MS + MIN,
        ),
    ]);
    assert!(delayed(&f, &twice).is_empty());
    // One event after the later newer acceptance, within the bound: also cleared.
    let after = trail(&[
        failed(&id, N, "timeout", tc + 11 * MIN),
        failed(&id, N, "stream", tc + 151 * MIN + DELAY_BOUND_MS),
    ]);
    assert!(delayed(&f, &after).is_empty());
}

/// Review s36-delay M3: `hand_refused` clears the relay only with the addressee's
/// valid signed refusal of the copy; one the relay made up (signed by another key,
/// or none) does not.
#[test]
fn only_a_signed_refusal_clears_the_relay() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    let refused = |a: Option<&MailAck>| {
        relay_log(
            &f,
            &[mail(
                "hand_refused",
                &id,
                N,
                tc + 11 * MIN,
                a,
                Some("quota"),
            )],
        )
    };
    let real = answer(&f, N, R, &id, HELD, false, "quota", tc + 11 * MIN);
    assert!(delayed(&f, &refused(Some(&real))).is_empty());
    let mut body = real.body().clone();
    body.signer_key = f.agency_keys[R].public_key();
    let forged = MailAck::sign_body(body, &f.agency_keys[R]);
    assert_eq!(delayed(&f, &refused(Some(&forged))).len(), 1);
    assert_eq!(delayed(&f, &refused(None)).len(), 1);
}

/// Review s36-delay M3: toward the runtime's caps count only distinct ids (it audits
/// one item to one neighbour once an hour) to roster members (it hands mail to
/// nothing else): 1,024 `hand_failed` of one id to the addressee, or 4,096 to a
/// code no roster lists, fake no saturated hour.
#[test]
fn caps_count_distinct_ids_to_roster_members() {
    let f = fixture();
    let tc = t0();
    let repeats: Vec<Event> = (0..1024u64)
        .map(|i| failed(&newer_id(), N, "stream", tc + 20 * MIN + i * 10))
        .collect();
    assert_eq!(delayed(&f, &relay_log(&f, &repeats)).len(), 1);
    let stranger: AgencyCode = "ZZ-NOBODY".parse().unwrap();
    let strangers: Vec<Event> = (0..4096u64)
        .map(|i| {
            let mut e = failed(
                &format!("{:032x}", i + 1),
                S,
                "stream",
                tc + 20 * MIN + i * 10,
            );
            if let EventKind::Mail { peer, .. } = &mut e.kind {
                *peer = Some(stranger.clone());
            }
            e
        })
        .collect();
    assert_eq!(delayed(&f, &relay_log(&f, &strangers)).len(), 1);
}

/// Review s36-delay M4, the pair rule: the relay's only excuses for the held copy
/// are `timeout`s of its addressee, in two separate hours, while the addressee's one
/// audited log, covering the time, holds no offer of the copy by the relay and no
/// restart. Honest both, the addressee took newer mail while leaving the copy's
/// streams unanswered for over an hour (its failure); or the relay wrote false
/// timeouts. The pair is named (`BB-CUSTOMS->CC-TRADE`), unproven, the relay's
/// events marked as its own word; never the addressee alone. Not with one timeout,
/// timeouts less than an hour apart, an offer of the copy or a restart in the
/// addressee's log, or without the addressee's log. (A `stream` failure among them
/// withheld the pair until s37-relay; now only where the streams could have been
/// full: `a_relay_excused_only_by_its_own_word_is_named_with_its_addressee`.)
#[test]
fn a_relay_excused_only_by_its_own_timeouts_is_named_with_its_addressee() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    let two = [
        failed(&id, N, "timeout", tc + 11 * MIN),
        failed(&id, N, "timeout", tc + 80 * MIN),
    ];
    let addressee = |extra: &[Event]| {
        let mut v = honest_addressee_events();
        v.extend_from_slice(extra);
        v.sort_by_key(|e| e.at);
        log(&f, N, &v, &[v.len() as u64])
    };
    let audit = |relay: &[Event], n: Option<ExportedLog>| {
        let r = relay_log(&f, relay);
        let mut logs = vec![log(&f, R, &r, &[r.len() as u64])];
        logs.extend(n);
        delayed_in(&f, &logs)
    };
    let found = audit(&two, Some(addressee(&[])));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].node, format!("{}->{}", ag(R), ag(N)));
    assert!(!found[0].proven);
    assert_eq!(found[0].evidence["relay_excuses_own_word"], true);
    assert_eq!(
        found[0].evidence["relay_own_word_at"],
        serde_json::json!([tc + 11 * MIN, tc + 80 * MIN])
    );
    // The relay alone, as before, when nothing covers the newer acceptance.
    let alone = audit(&[], Some(addressee(&[])));
    assert_eq!(alone[0].evidence["relay_excuses_own_word"], false);
    assert_eq!(alone[0].node, ag(R).as_str());
    // Not named at all in every other case.
    let cases: Vec<(&str, Vec<Event>, Option<ExportedLog>)> = vec![
        ("no addressee log", two.to_vec(), None),
        ("one timeout", two[..1].to_vec(), Some(addressee(&[]))),
        (
            "under an hour apart",
            vec![two[0].clone(), failed(&id, N, "timeout", tc + 40 * MIN)],
            Some(addressee(&[])),
        ),
        (
            "the addressee logged an offer",
            two.to_vec(),
            Some(addressee(&[mail(
                "offered",
                &id,
                R,
                tc + 30 * MIN,
                None,
                None,
            )])),
        ),
        (
            "the addressee restarted",
            two.to_vec(),
            Some(addressee(&[started(tc + 50 * MIN, true)])),
        ),
    ];
    for (what, relay, n) in cases {
        assert!(audit(&relay, n).is_empty(), "{what}");
    }
    // s37-relay: `stream`/`closed` events are the relay's word as much as timeouts
    // (they cleared it for good before): the pair again.
    for relay in [
        vec![
            two[0].clone(),
            two[1].clone(),
            failed(&id, N, "stream", tc + 100 * MIN),
        ],
        vec![
            failed(&id, N, "stream", tc + 11 * MIN),
            failed(&id, N, "closed", tc + 80 * MIN),
        ],
    ] {
        let found = audit(&relay, Some(addressee(&[])));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].node, format!("{}->{}", ag(R), ag(N)));
    }
}

/// What an honest addressee's log holds of [`relay_log`]'s trail (review s37-relay
/// H1: the fixtures held only a start and a stop, and the pair rule passed them
/// while an honest addressee's real log withheld it every time): started before,
/// the relay's offer of the newer copy and of the held one as they arrived with
/// the hand-overs it accepted (logged a moment before it signed each acceptance),
/// their deliveries, and a stop after.
fn honest_addressee_events() -> Vec<Event> {
    let tc = t0();
    let arrived = |id: &str, accepted: u64| {
        [
            mail("offered", id, R, accepted - 2_000, None, None),
            mail("delivered", id, R, accepted, None, None),
        ]
    };
    let mut v = vec![
        started(tc - 20 * MIN, true),
        Event::new(tc + 130 * MIN, EventKind::NodeStopped),
    ];
    v.extend(arrived(&newer_id(), tc + 11 * MIN));
    v.extend(arrived(&held_id(), tc + 120 * MIN));
    v
}

/// The addressee's audited log (started before, stopped after the trail) with
/// `extra` events, for the pair rule.
fn addressee_log(f: &Fixture, extra: &[Event]) -> ExportedLog {
    let mut v = honest_addressee_events();
    v.extend_from_slice(extra);
    v.sort_by_key(|e| e.at);
    log(f, N, &v, &[v.len() as u64])
}

/// The findings of an audit of the relay's trail with `relay` events and the
/// addressee's log, if any.
fn with_addressee(f: &Fixture, relay: &[Event], n: Option<ExportedLog>) -> Vec<Violation> {
    let r = relay_log(f, relay);
    let mut logs = vec![log(f, R, &r, &[r.len() as u64])];
    logs.extend(n);
    delayed_in(f, &logs)
}

/// s37-relay, issue 21: every `hand_failed` reason, and a `rejected` `bad_ack`, is
/// the relay's own word (only a `hand_refused` carries the addressee's signature),
/// so a relay that excuses its delay only by false `stream`, `closed`, `bad_ack`,
/// ... events of the copy, in two hours or more, while the addressee's log shows no
/// restart, no offer of the copy and no item it could not read, and the logs show
/// no time the streams between them could have been full, is named in the pair
/// `RELAY->N` (before, every reason but `timeout`/`unsupported` cleared it for
/// good). Not with a restart of the addressee in the window, a signed refusal, one
/// hour of such events, the addressee refusing the relay's items or many
/// hand-overs between them near a `stream` failure (an honest relay past the 64
/// streams of the connection), or an unreadable item in the addressee's log.
#[test]
fn a_relay_excused_only_by_its_own_word_is_named_with_its_addressee() {
    let f = fixture();
    let tc = t0();
    let id = held_id();
    let pairs = [
        ("stream", "stream"),
        ("closed", "closed"),
        ("bad_ack", "bad_ack"),
        ("dial", "unsigned_refusal"),
        ("bad_time", "stream"),
    ];
    for (a, b) in pairs {
        let events = [
            failed(&id, N, a, tc + 11 * MIN),
            failed(&id, N, b, tc + 80 * MIN),
        ];
        let found = with_addressee(&f, &events, Some(addressee_log(&f, &[])));
        assert_eq!(found.len(), 1, "{a} {b}: {found:?}");
        assert_eq!(found[0].node, format!("{}->{}", ag(R), ag(N)), "{a} {b}");
        assert!(!found[0].proven);
        assert_eq!(found[0].evidence["relay_excuses_own_word"], true);
        assert_eq!(
            found[0].evidence["relay_timeouts_at"],
            serde_json::json!([tc + 11 * MIN, tc + 80 * MIN])
        );
        // Without the addressee's log: nobody (the relay's word clears it alone).
        assert!(with_addressee(&f, &events, None).is_empty(), "{a} {b}");
    }
    let bad_ack = |at: u64| mail("rejected", &id, N, at, None, Some("bad_ack: forged"));
    let acks = [bad_ack(tc + 11 * MIN), bad_ack(tc + 80 * MIN)];
    assert_eq!(
        with_addressee(&f, &acks, Some(addressee_log(&f, &[]))).len(),
        1
    );
    let streams = [
        failed(&id, N, "stream", tc + 11 * MIN),
        failed(&id, N, "stream", tc + 80 * MIN),
    ];
    let refusal = answer(&f, N, R, &id, HELD, false, "quota", tc + 50 * MIN);
    let other = |i: u64| format!("{:032x}", i + 1);
    let many: Vec<Event> = (0..64u64)
        .map(|i| {
            mail(
                "received",
                &other(i),
                R,
                tc + 60 * MIN + i * 1000,
                None,
                None,
            )
        })
        .collect();
    let cases: Vec<(&str, Vec<Event>, Vec<Event>)> = vec![
        (
            "the addressee restarted",
            streams.to_vec(),
            vec![started(tc + 50 * MIN, true)],
        ),
        (
            "a signed refusal",
            vec![
                streams[0].clone(),
                mail(
                    "hand_refused",
                    &id,
                    N,
                    tc + 50 * MIN,
                    Some(&refusal),
                    Some("quota"),
                ),
                streams[1].clone(),
            ],
            Vec::new(),
        ),
        (
            "one hour",
            vec![streams[0].clone(), failed(&id, N, "closed", tc + 60 * MIN)],
            Vec::new(),
        ),
        (
            "64 hand-overs near a stream failure",
            streams.to_vec(),
            many.clone(),
        ),
        (
            "an unreadable item from the relay beside an anonymous refusal",
            vec![
                failed(&id, N, "unsigned_refusal", tc + 11 * MIN),
                failed(&id, N, "unsigned_refusal", tc + 80 * MIN),
            ],
            vec![mail(
                "rejected",
                "",
                R,
                tc + 80 * MIN + 30_000,
                None,
                Some("malformed"),
            )],
        ),
    ];
    for (what, relay, n) in cases {
        let found = with_addressee(&f, &relay, Some(addressee_log(&f, &n)));
        assert!(found.is_empty(), "{what}: {found:?}");
    }
    // Review s37-relay M1: only the addressee's log shows the streams were full.
    // A refusal the relay can make it log (a message it holds, sent again: a quick
    // `duplicate`, which holds no stream), 64 events in the relay's own log, or an
    // unreadable item far from every `unsigned_refusal` failure withhold nothing.
    let own_many: Vec<Event> = streams.iter().cloned().chain(many.clone()).collect();
    let named: Vec<(&str, Vec<Event>, Vec<Event>)> = vec![
        (
            "the addressee refused one of the relay's items",
            streams.to_vec(),
            vec![mail(
                "rejected",
                &newer_id(),
                R,
                tc + 90 * MIN,
                None,
                Some("duplicate"),
            )],
        ),
        ("64 events in the relay's own log", own_many, Vec::new()),
        (
            "64 refusals in the addressee's log",
            streams.to_vec(),
            (0..64u64)
                .map(|i| {
                    mail(
                        "rejected",
                        &other(i),
                        R,
                        tc + 60 * MIN + i * 1000,
                        None,
                        Some("malformed"),
                    )
                })
                .collect(),
        ),
        (
            "an unreadable item far from the anonymous refusals",
            vec![
                failed(&id, N, "unsigned_refusal", tc + 11 * MIN),
                failed(&id, N, "unsigned_refusal", tc + 80 * MIN),
            ],
            vec![mail(
                "rejected",
                "",
                R,
                tc + 45 * MIN,
                None,
                Some("malformed"),
            )],
        ),
        (
            "an unreadable item beside a stream failure",
            streams.to_vec(),
            vec![mail(
                "rejected",
                "",
                R,
                tc + 11 * MIN,
                None,
                Some("malformed"),
            )],
        ),
    ];
    for (what, relay, n) in named {
        let found = with_addressee(&f, &relay, Some(addressee_log(&f, &n)));
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        assert_eq!(found[0].node, format!("{}->{}", ag(R), ag(N)), "{what}");
    }
    // The hand-overs must be near a `stream` failure, and only `stream` needs them.
    let far: Vec<Event> = many
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.at += 3 * 60 * MIN;
            e
        })
        .collect();
    assert_eq!(
        with_addressee(&f, &streams, Some(addressee_log(&f, &far))).len(),
        1
    );
    let closed = [
        failed(&id, N, "closed", tc + 11 * MIN),
        failed(&id, N, "closed", tc + 80 * MIN),
    ];
    assert_eq!(
        with_addressee(&f, &closed, Some(addressee_log(&f, &many))).len(),
        1
    );
}

/// s37-relay, issue 21: a relay that holds EVERY copy for its addressee back by the
/// same two hours keeps their order, so no newer copy is accepted first. But the
/// addressee's acceptance of an older copy 60 min after the held one's custody came
/// from a poll that started after it (the custody is signed once the copy is in the
/// relay's held map, and an acceptance is logged only within the request's 130 s
/// and the skew of the poll): that poll held the copy and would have offered it.
/// Named, by time (`newer_custody` false). Not when the older copy's acceptance
/// came within `POLL_AFTER_CUSTODY_MS` (20 min) of the custody (the poll may have
/// started before it), nor within that of a restart, nor when the backlog drained
/// in order within the bound, nor with an excuse near it.
#[test]
fn a_relay_that_delays_all_mail_to_its_addressee_evenly_is_named() {
    let f = fixture();
    let tc = t0();
    let old = "ef".repeat(16);
    let trail = |old_at: u64, held_at: u64, extra: &[Event]| {
        let mut v = vec![
            started(tc - 28 * MIN, true),
            took(&f, &old, [6; 32], tc - 25 * MIN),
            took(&f, &held_id(), HELD, tc),
            handed(&f, &old, [6; 32], old_at),
            handed(&f, &held_id(), HELD, held_at),
        ];
        v.extend_from_slice(extra);
        v.sort_by_key(|e| e.at);
        v
    };
    let even = trail(tc + 95 * MIN, tc + 120 * MIN, &[]);
    // Before s37 only a newer copy counted: 95 min after its custody is too late.
    assert!(delayed(&f, &even).is_empty());
    let even = trail(tc + 60 * MIN, tc + 120 * MIN, &[]);
    let found = delayed(&f, &even);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].node, ag(R).as_str());
    assert_eq!(found[0].evidence["newer_custody"], false);
    assert_eq!(found[0].evidence["newer"]["message_id"], old);
    assert_eq!(found[0].evidence["newer"]["accepted_at"], tc + 60 * MIN);
    assert_eq!(
        found[0].evidence["poll_after_custody_ms"],
        POLL_AFTER_CUSTODY_MS
    );
    // The margin: an acceptance at most 20 min after the custody may come from a
    // poll that started before it.
    assert!(delayed(&f, &trail(tc + 19 * MIN, tc + 120 * MIN, &[])).is_empty());
    assert_eq!(
        delayed(&f, &trail(tc + 21 * MIN, tc + 120 * MIN, &[])).len(),
        1
    );
    // Likewise after a restart (the held copies come back with it).
    let restart = [started(tc + 30 * MIN, true)];
    assert!(delayed(&f, &trail(tc + 49 * MIN, tc + 120 * MIN, &restart)).is_empty());
    assert_eq!(
        delayed(&f, &trail(tc + 51 * MIN, tc + 120 * MIN, &restart)).len(),
        1
    );
    // An honest backlog drained in order: the held copy within the bound after.
    assert!(delayed(&f, &trail(tc + 70 * MIN, tc + 75 * MIN, &[])).is_empty());
    assert!(delayed(&f, &trail(tc + 70 * MIN, tc + 99 * MIN, &[])).is_empty());
    // An excuse near the other acceptance clears it.
    let excused = [failed(&held_id(), N, "timeout", tc + 61 * MIN)];
    assert!(delayed(&f, &trail(tc + 60 * MIN, tc + 120 * MIN, &excused)).is_empty());
}

/// Review s37-relay H2: the pair rule reads the addressee's log as all of it, so
/// when the roster lists two nodes for the addressee, both must have usable logs:
/// the relay's requests may have gone to the one whose log is missing, and its
/// restart or its offers there are unseen (an honest addressee's second node
/// crash-looping gives `closed`). With one of the two logs, nobody is named; with
/// both, the pair is, as with one node.
#[test]
fn the_pair_needs_a_log_of_every_node_the_roster_lists_for_the_addressee() {
    let (mut f, mut second) = two_nodes_for(N);
    let tc = t0();
    let id = held_id();
    let relay = relay_log(
        &f,
        &[
            failed(&id, N, "closed", tc + 11 * MIN),
            failed(&id, N, "closed", tc + 80 * MIN),
        ],
    );
    let relay = log(&f, R, &relay, &[relay.len() as u64]);
    let n1 = addressee_log(&f, &[]);
    let quiet = [
        started(tc - 20 * MIN, true),
        Event::new(tc + 130 * MIN, EventKind::NodeStopped),
    ];
    std::mem::swap(&mut f.node_keys[N], &mut second);
    let n2 = log(&f, N, &quiet, &[quiet.len() as u64]);
    std::mem::swap(&mut f.node_keys[N], &mut second);
    assert!(
        delayed_in(&f, &[relay.clone(), n1.clone()]).is_empty(),
        "one of the addressee's two nodes"
    );
    let found = delayed_in(&f, &[relay, n1, n2]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].node, format!("{}->{}", ag(R), ag(N)));
}

/// Final review of s37, H1: the roster lists only the addressee's nodes of today,
/// so a node retired since is not asked for. The pair also needs each of the
/// addressee's logs to span the whole window (one that starts after the custody
/// hides the restarts before it), no log of the addressee's handed in that is not
/// usable (a node no longer listed), and the addressee's logs to hold both
/// acceptances the finding rests on (the held copy's and the other copy's: a node
/// whose log is missing took them). Each withholds the pair; all present, it is
/// named.
#[test]
fn the_pair_needs_the_addressees_logs_to_cover_the_window_and_its_acceptances() {
    let mut f = fixture();
    let tc = t0();
    let id = held_id();
    let relay = relay_log(
        &f,
        &[
            failed(&id, N, "closed", tc + 11 * MIN),
            failed(&id, N, "closed", tc + 80 * MIN),
        ],
    );
    let relay = log(&f, R, &relay, &[relay.len() as u64]);
    let full = honest_addressee_events();
    let named = delayed_in(
        &f,
        &[relay.clone(), log(&f, N, &full, &[full.len() as u64])],
    );
    assert_eq!(named.len(), 1, "{named:?}");
    // A log that starts after the custody.
    let late: Vec<Event> = full.iter().filter(|e| e.at > tc).cloned().collect();
    // A log without the other copy's delivery (another node of N took it).
    let without_newer: Vec<Event> = full
        .iter()
        .filter(
            |e| !matches!(&e.kind, EventKind::Mail { message_id, .. } if *message_id == newer_id()),
        )
        .cloned()
        .collect();
    for (what, events) in [("late start", late), ("no newer", without_newer)] {
        let n = log(&f, N, &events, &[events.len() as u64]);
        assert!(delayed_in(&f, &[relay.clone(), n]).is_empty(), "{what}");
    }
    // A log of N's from a node the roster does not list (retired since).
    let mut retired = wlnode_crypto::SecretKey::generate().unwrap();
    std::mem::swap(&mut f.node_keys[N], &mut retired);
    let quiet = [started(tc - 20 * MIN, true)];
    let unlisted = log(&f, N, &quiet, &[quiet.len() as u64]);
    std::mem::swap(&mut f.node_keys[N], &mut retired);
    let n = log(&f, N, &full, &[full.len() as u64]);
    assert!(delayed_in(&f, &[relay, n, unlisted]).is_empty());
}
