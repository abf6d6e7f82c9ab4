//! The sealed-mail checks of an audit (issue 21): a relay that took custody and never
//! handed on (`mail_not_relayed`), a neighbour that acknowledged custody and never
//! logged it (`mail_not_logged`). Split from `verify.rs` so mail and consultation
//! checks evolve apart.

use super::mail_delay::{DELAY_MIN_MS, REQUEST_MAX_MS, RETRY_MAX_MS};
use super::*;

/// How far from a moment a neighbour's signed refusal of a message may lie and still
/// show that a relay tried that neighbour then (`mail_not_relayed`): more than the
/// node's `hand_refused` audit interval (one hour per neighbour and
/// item) plus its longest retry delay (five minutes) and the clock skew.
pub const REFUSAL_EVIDENCE_WINDOW_MS: u64 = 70 * 60 * 1000;

/// How much later than the moment a neighbour took a message (its signed ack's
/// time, by its own clock) its checkpoint must be before its log must show the
/// message (`mail_not_logged`): the neighbour logs `received` around the time it
/// signs, not at the same instant.
pub const MAIL_LOGGED_MARGIN_MS: u64 = 60_000;

/// How many hand-overs of a relayed copy its connected addressee may let pass with
/// no signed answer before the relay offers the copy to its other neighbours too (the
/// sync mailer's `MailLimits::addressee_misses`, a constant of the code, not of the
/// configuration; `wlnode_sync`'s tests check the two agree).
pub const ADDRESSEE_MISSES: u64 = 3;

/// How long a hand-over of a relayed copy to its addressee may stay unanswered before
/// it is a miss (the sync mailer's `MailLimits::addressee_answer_ms`).
pub const ADDRESSEE_ANSWER_MS: u64 = 10_000;

/// The least remaining lifetime a copy must have had at the relay's signed custody
/// for `mail_not_relayed` (and `mail_relay_saturated_neighbour`) to judge it (s37,
/// issue 21, the s36 "silent addressee" residual): an honest relay offers a copy to
/// its connected addressee alone until the addressee missed [`ADDRESSEE_MISSES`]
/// hand-overs of it, so a copy living less than the time that takes can expire at an
/// honest relay that never got to offer it to anyone else, and a hostile sender with
/// a silent addressee would get the relay named by choosing a tiny expiry. The time,
/// from the code: each miss is an unanswered request counted after
/// [`ADDRESSEE_ANSWER_MS`], or a failed one, and the next offer to the addressee
/// waits for the copy's retry backoff, at most [`RETRY_MAX_MS`] (it is 2, 4, 8 s for
/// the first three when the addressee was connected from the custody on, but grows
/// to the maximum while the addressee is away and no other neighbour is there to
/// take the copy), so at most `ADDRESSEE_MISSES × max(ADDRESSEE_ANSWER_MS,
/// RETRY_MAX_MS)`, each with the poll tick and event-loop lag (10 s, generously);
/// then the offer to another neighbour may fail once and wait one retry
/// ([`RETRY_MAX_MS`]); its request lasts at most [`REQUEST_MAX_MS`]; and that
/// neighbour's clock may run the skew ahead of the relay's, so it refuses the copy
/// `expired` (no cover: a relay that held a copy back provokes it) the skew before
/// the relay's clock reaches the expiry. 3 × 5 min 10 s + 5 min + 2 min 10 s + 5 min
/// = 27 min 40 s, rounded up to 30 min. Both ends are signed or only clear: the
/// expiry is the earliest of the relay's own and its upstreams' (an honest relay
/// logs the one the sender signed in the envelope, so a hostile upstream cannot make
/// a short copy look longer), the custody time the relay's own (its signed custody
/// ack, its `received`; never the upstream's unsigned event time). Honest builds
/// send no mail living under an hour (consultations at least an hour, refusals two
/// days, flags 30 days), so only a copy a sender made short on purpose, or one that
/// came to the relay late in its life, is not judged; each is counted in the relay's
/// summary (`mail_short_lived_not_judged`), never a finding.
pub const MIN_JUDGED_LIFETIME_MS: u64 = 30 * 60_000;

/// The poll tick and event-loop lag allowed per miss in [`MIN_JUDGED_LIFETIME_MS`].
const MISS_LAG_MS: u64 = 10_000;

// The bound covers what it is derived from, and the delay rule (whose copies waited
// over [`DELAY_MIN_MS`] for an addressee that took them, so lived longer) never
// meets a copy under it.
const _: () = assert!(
    ADDRESSEE_MISSES * (max_u64(ADDRESSEE_ANSWER_MS, RETRY_MAX_MS) + MISS_LAG_MS)
        + RETRY_MAX_MS
        + REQUEST_MAX_MS
        + wlnode_crypto::mail::MAX_CLOCK_SKEW_MS
        <= MIN_JUDGED_LIFETIME_MS
);
const _: () = assert!(MIN_JUDGED_LIFETIME_MS <= DELAY_MIN_MS);

/// The larger of two values, in a constant expression.
const fn max_u64(a: u64, b: u64) -> u64 {
    if a > b { a } else { b }
}

/// Refusal reasons that excuse a relay (`mail_not_relayed`): the neighbour's global
/// state: `full` (`Refusal::Full`: it holds as much as it may, or as many relayed
/// ids), `store` (its writer failed) and `quota` (`Refusal::Quota`: the relay's own
/// per-neighbour share of held items there is used up). And `too_many_hops`, only
/// for a copy the neighbour signs it was handed one hop past the count the relay
/// signed it took it at: the relay did not add hops, the copy was at the limit when
/// it came (review s31-fixes X1; a `/wlnode/mail/3` answer signs no count and does
/// not excuse). And `id_in_use` (`Refusal::IdInUse`) of the very copy: the
/// neighbour holds another item under the id, which any member that learnt the id
/// can put there (the addressee always learns it: review s36-m1 H1), unless the
/// relay's own log shows it sent a message of its own under that id (it provoked
/// it: review s36-int M2). And `sender_quota` (`Refusal::SenderQuota`) of the very
/// copy: the neighbour remembers as many ids of the copy's sender as it may (the
/// sender's state there, so only that copy, that neighbour: review s36-int M2).
/// The relay can still bring about `quota` itself (its own messages relayed via the
/// neighbour to an away member fill its share there) and `id_in_use` with a
/// colluding member's message under the id: counting them only ever clears the
/// relay, never names anyone, as a colluding neighbour's `full` always could
/// (review s36-m1 H1; the cost is written in ARCHITECTURE.md). The other reasons
/// excuse only from the copy's addressee ([`addressee_refusal`]); from another
/// neighbour the handing node can provoke them (review s31-mail H1): `expired` and
/// the verification failures (a crafted copy under the same id), `legacy_body` (its
/// own message under the id); `forbidden` names no message.
const EXCUSING_REFUSALS: &[&str] = &[
    "full",
    "store",
    "quota",
    TOO_MANY_HOPS,
    ID_IN_USE,
    SENDER_QUOTA,
];

/// The refusal reasons that speak of the neighbour's state, not of the copy: each
/// covers every link moment with that neighbour within the window, whatever message
/// it names.
const GLOBAL_REFUSALS: &[&str] = &["full", "store", "quota"];

/// The refusal of a copy because the neighbour holds another item under its id.
const ID_IN_USE: &str = "id_in_use";

/// The refusal of a copy because the neighbour remembers as many ids of the copy's
/// sender as it may (`Refusal::SenderQuota`): the sender's state there, not the
/// relay's, so it covers that neighbour's links for that copy only, like
/// [`ID_IN_USE`] (review s36-int M2).
const SENDER_QUOTA: &str = "sender_quota";

/// Whether a valid signed refusal of a copy is its addressee's own final word on it
/// (review s36-m1 M2): the refuser signs that it is the copy's addressee
/// (`/wlnode/mail/5`), and it refused for a reason it gives only after it checked the
/// item and the relay's signed offer
/// ([`wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS`], the list the relay's runtime
/// uses too: not `no_offer` nor a failed verification, which a relay's bad offer or
/// clock provokes, and not `expired`, which a relay that held the copy back
/// provokes; `replayed` of the very copy is: review s36-int H1). The relay hands
/// such a copy to no one else (the destination said no), and the refusal covers it;
/// any other refusal of the addressee is a miss, after which the relay hands the
/// copy to its other neighbours.
fn addressee_refusal(a: &wlnode_crypto::mail::MailAck, refuser: &AgencyCode) -> bool {
    !a.accepted
        && a.body().addressee.as_ref() == Some(refuser)
        && wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS.contains(&a.reason.as_str())
}

/// The refusal of a copy over a neighbour's hop limit (`Refusal::TooManyHops`).
const TOO_MANY_HOPS: &str = "too_many_hops";

/// The reasons a neighbour answers a relayed message with only after it verified
/// the item and the handing node's signed offer (and so logged the offer, unless its
/// hourly cap was hit): not `no_offer`, nor a failed verification or decoding.
const AFTER_OFFER_CHECK: &[&str] = &[
    "ok",
    "seen",
    "duplicate",
    "quota",
    "sender_quota",
    "id_in_use",
    "too_many_hops",
    "full",
    "store",
    "unopenable",
    "legacy_body",
];

/// The most `offered` events a node logs per neighbour per hour (the runtime's
/// `OFFERS_PER_NEIGHBOUR`): in an hour in which a log holds this many offers from one
/// neighbour, its silence about another offer of that neighbour's is no evidence.
pub const OFFERS_LOGGED_PER_HOUR: usize = 1024;

/// The share of a copy's lifetime (the moments it could have been offered, in
/// percent) that a neighbour's log must spend saturated with a relay's offers of
/// distinct copies (as many as a node logs per neighbour and hour, within less than
/// an hour, counted over the real extent of those offers) before the pair
/// `RELAY->NEIGHBOUR` is reported `mail_relay_saturated_neighbour` for a copy no
/// audited log shows the relay offered, when every offer of its in that window lay
/// in saturated moments (review s34-mail L5, s35-mail H1/M3).
pub const SATURATED_LIFETIME_PERCENT: u64 = 50;

/// And the least saturated time, in all, within the copy's lifetime for that
/// finding: three hours. Saturation is measured from the first to the last of
/// 1,024 distinct copies offered within an hour, so the offers of one busy hour
/// cover less than an hour and never reach it (review s35-mail M3).
pub const SATURATED_MIN_MS: u64 = 3 * 3_600_000;

/// The `hand_failed` reasons an auditor notes (review s35-mail M1/M2): the
/// addressee's stream was open and it never answered (`timeout`), or it refused the
/// mail protocol (`unsupported`). A closed connection or a failed stream is what an
/// honest addressee's crash gives, and is not noted. Never evidence against anyone:
/// the events are the relay's own unsigned word.
pub const HAND_FAILED_NOTED: &[&str] = &["timeout", "unsupported"];

/// How near a relay's `hand_failed` event the addressee's own audited log must
/// hold an event for the note to say it was running then: the retry delay and
/// poll slack, on both sides.
pub const HAND_FAILED_RUNNING_MS: u64 = OFFER_SLACK_MS;

/// How long before a message's expiry a relay's offer of another item to a neighbour
/// must lie to show it could still have offered the message there too: its retry
/// delay and poll interval (minutes) plus the clock skew, generously.
pub const OFFER_SLACK_MS: u64 = 15 * 60 * 1000;

#[cfg(test)]
thread_local! {
    /// Hand-overs and refusals the judge loop of [`check_mail`] looked at (tests:
    /// its work stays linear in the log, review s34-mail H3).
    static PROBED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts `n` entries looked at by the judge loop (tests only).
fn probed(n: usize) {
    #[cfg(test)]
    PROBED.with(|p| p.set(p.get() + n as u64));
    #[cfg(not(test))]
    let _ = n;
}

/// A copy of a message: its item digest and hop count, as a neighbour signed them.
type Copy = ([u8; 32], Option<u32>);

/// A logged message id, only in its canonical form (32 lower-case hex digits, what
/// every build logs): every rule keys copies by the logged string, so an id in upper
/// case beside a genuine signed ack named a copy no other log could match (review
/// s38 H1: a hostile upstream logging its `handed` so had an honest relay that
/// handed the copy on named `mail_not_relayed`, and itself proven `mail_not_logged`
/// against the relay). Such an event's ack or offer is evidence of nothing.
fn canonical_id(message_id: &str) -> Option<wlnode_crypto::model::MessageId> {
    wlnode_crypto::model::MessageId::from_hex(message_id)
        .ok()
        .filter(|i| i.to_hex() == message_id)
}

/// A neighbour's signed answer in a `mail` event (`handed`, `hand_refused`), when it
/// is valid evidence: signed by `peer` with a key the roster gave it then, naming
/// this message, `message` as the item and `node` as the handing agency. Returns it;
/// a forged, unsigned or mismatched answer is no evidence. A key revoked since counts
/// only for an ack signed before the revocation in an event (`index` of `log`) under
/// a head this auditor verified, by its own clock, before the revocation: the ack
/// existed then, so a later compromise of the key did not make it (review s31-mail
/// M4). The log's own checkpoints do not date it: the node signs their times itself,
/// and a thief of the key (or a member holding it) backdates one (review s32-mail
/// H3). Such an ack never proves a finding against the key's owner
/// ([`check_mail`]'s `mail_not_logged`). Also read by `mail_relay_delayed`.
pub(super) fn signed_answer(
    roster: &Roster,
    ack: Option<&str>,
    node: &AgencyCode,
    peer: &AgencyCode,
    message_id: &str,
    log: &Log<'_>,
    index: u64,
) -> Option<wlnode_crypto::mail::MailAck> {
    let ack = wlnode_crypto::mail::MailAck::from_hex(ack?).ok()?;
    let id = canonical_id(message_id)?;
    let checked = || {
        Some(
            ack.verify_as_evidence(roster, peer)
                .ok()?
                .map(|t| t.as_millis()),
        )
    };
    if let Some(revoked_at) = log.signature(index, peer, checked)? {
        let vouched = log.vouched_at(index).is_some_and(|at| at < revoked_at);
        if !vouched {
            return None;
        }
    }
    (ack.fit_fields(&id, "message", None, None, node) == wlnode_crypto::mail::AckFit::Exact)
        .then_some(ack)
}

/// The expiry (Unix ms) in the header of the copy whose identity bytes are `copy`
/// (hex, as logged beside a `handed` since s38), when they hash to `digest` (what
/// the taking node signed) and name message `id`: the expiry that node took the copy
/// with. Anything else (not hex, too long, a header that fails its checks, another
/// copy) proves nothing and is `None`; the length is checked before decoding.
fn copy_expiry_of(copy: &str, id: &str, digest: [u8; 32]) -> Option<u64> {
    if copy.len() > 2 * wlnode_crypto::mail::MAX_IDENTITY_BYTES {
        return None;
    }
    let bytes = hex::decode(copy).ok()?;
    let c = wlnode_crypto::mail::CopyIdentity::parse(&bytes).ok()?;
    (c.digest == digest && c.header.id.to_hex() == id).then_some(c.header.expires_at.as_millis())
}

/// A neighbour's signed offer in an `offered` event of `keeper`'s log (`index`), when
/// it is valid evidence: signed by `offerer` with a key the roster gave it then,
/// offering message `message_id` to `keeper`. A key revoked since counts only under
/// a head this auditor verified before the revocation, as for [`signed_answer`].
pub(super) fn signed_offer(
    roster: &Roster,
    offer: &str,
    offerer: &AgencyCode,
    keeper: &AgencyCode,
    message_id: &str,
    log: &Log<'_>,
    index: u64,
) -> Option<wlnode_crypto::mail::HandoverOffer> {
    let offer = wlnode_crypto::mail::HandoverOffer::from_hex(offer).ok()?;
    let id = canonical_id(message_id)?;
    let checked = || {
        Some(
            offer
                .verify_as_evidence(roster, offerer)
                .ok()?
                .map(|t| t.as_millis()),
        )
    };
    if let Some(revoked_at) = log.signature(index, offerer, checked)? {
        let vouched = log.vouched_at(index).is_some_and(|at| at < revoked_at);
        if !vouched {
            return None;
        }
    }
    let b = offer.body();
    (b.message_id == id && b.item == "message" && b.to_hop == *keeper).then_some(offer)
}

/// A neighbour's accepting answer that verifies and fits but whose key the roster
/// revoked since (signed before the revocation): with the revocation time. Not
/// evidence of a hand-over (see [`signed_answer`]), but no proof of its absence
/// either (review s32-mail L5).
fn revoked_answer(
    roster: &Roster,
    ack: Option<&str>,
    node: &AgencyCode,
    peer: &AgencyCode,
    message_id: &str,
) -> Option<(wlnode_crypto::mail::MailAck, u64)> {
    let ack = wlnode_crypto::mail::MailAck::from_hex(ack?).ok()?;
    let id = canonical_id(message_id)?;
    let revoked_at = ack.verify_as_evidence(roster, peer).ok()??;
    (ack.accepted
        && ack.fit_fields(&id, "message", None, None, node) == wlnode_crypto::mail::AckFit::Exact)
        .then_some((ack, revoked_at.as_millis()))
}

/// Sealed mail (issue 21), from the `mail` events of the logs that are evidence:
/// - `mail_not_relayed`: a node took custody of a message for someone else
///   (`received`) and, by its latest checkpoint, after the message expired, had never
///   handed it on (from the time the node signs hand-overs, a time it cannot put off:
///   the roster's `mail_acks_required_since`, the first answer it signed in any log,
///   the first ack in its own log (review s31-fixes X2), a `handed` counts only
///   with the neighbour's valid signed acceptance: review s31-mail M2, and only of the
///   copy it took, by the acceptance's item digest, not of another message under the
///   same id: review s31-fixes X8; messages are keyed by sender and id), although it
///   had a link to another neighbour than the one it got the message from while the
///   message lived, by signed acceptances only (that neighbour's valid signed
///   acceptance of a hand-over, its own `handed` even without one, its own custody
///   acks in that neighbour's log: review s32-mail H1; not refusals: review s32-mail
///   M1; not record traffic, not anonymous, late or missing answers: review s31-mail
///   M1): it had a route. A relay whose log shows no such link was a dead end and is not blamed
///   (review of issue 21, finding 12). Nor is it blamed when every such moment of a
///   link is covered by a **signed refusal** of this message in its log (`hand_refused`
///   with the neighbour's signed `MailAck`, within [`REFUSAL_EVIDENCE_WINDOW_MS`]) from
///   that neighbour or from the message's addressee (to which alone a relay offers a
///   message while it is reachable, for its first misses: s36): its neighbours
///   refused it, it did not sit on it; a neighbour's `id_in_use` (not under an id
///   the node sent a message of its own under) or `sender_quota` of the copy covers
///   that neighbour's links, the addressee's own refusal of the copy
///   ([`addressee_refusal`]) every link (review s36-m1 H1, M2; s36-int H1, M2).
///   A refusal whose signature, key or fields do not verify, whose reason the
///   relay could provoke itself ([`EXCUSING_REFUSALS`] lists the others), or that
///   names another copy than the one the relay took (its `item_digest` differs from
///   the digest in the relay's own signed custody ack, taken from the upstream's
///   `handed` event or else the relay's `received` event; no refusal counts when
///   neither holds it) is no evidence (review s31-mail H1). A copy with less
///   than [`MIN_JUDGED_LIFETIME_MS`] of its life left at the relay's custody is
///   not judged by this rule nor the offer rule (s37: an honest relay may not have
///   passed a silent addressee in that time), only counted. Not
///   proven: the log's silence is the evidence;
/// - `mail_not_logged`: a node handed a message to a neighbour that acknowledged
///   custody, but the neighbour's log (checkpointed after the hand-over) has no
///   record of it. **Proven** when the `handed` event carries the neighbour's signed
///   custody ack: `ok` (it took the message, so its log must show `received`), or
///   `seen`/`duplicate` (it said it had the message already, so its log must know
///   the id at least; review s31-mail M3). Without one (older logs) it is reported
///   unproven, only when the neighbour's log has no trace of the id at all. Only
///   once the neighbour's checkpoint is [`MAIL_LOGGED_MARGIN_MS`] past the ack's
///   signed time (without an ack: the handing time plus the clock skew).
pub(super) fn check_mail(roster: &Roster, logs: &[Log<'_>], report: &mut Report) {
    let usable: Vec<&Log<'_>> = logs.iter().filter(|l| l.usable).collect();
    // A message is (node, sender, id): two senders' messages under one id are two
    // messages (review s31-fixes X8).
    type Key = (AgencyCode, AgencyCode, String);
    // (node, sender, message id) -> (event index, custody time, expiry, neighbour it came
    // from, addressee, the copy it took by its own signed custody ack).
    // Whether it took the copy when it already signed hand-overs.
    type Custody = (
        u64,
        u64,
        Option<u64>,
        AgencyCode,
        AgencyCode,
        Option<Copy>,
        bool,
    );
    let mut took: BTreeMap<Key, Custody> = BTreeMap::new();
    // Evidence of a working link: (node, neighbour) -> times the node's log shows
    // traffic with that neighbour.
    // Indexed by node, then neighbour (review s31-mail L1); times sorted below.
    let mut links: BTreeMap<AgencyCode, BTreeMap<AgencyCode, Vec<u64>>> = BTreeMap::new();
    // (node, sender, message id): the node had the message as its addressee or
    // sender (received, delivered).
    let mut moved: std::collections::BTreeSet<Key> = Default::default();
    // (node, sender, message id) -> the copies it handed on: the item digest in the
    // neighbour's valid signed acceptance (`None`: a bare `handed` of an older log).
    // A relay handed on the message it took only if one of them is that copy
    // (review s31-fixes X8).
    // With the event's index (a hand-over logged before the `received` is none),
    // and the neighbour when its signed answer is not `ok` (`seen`, `duplicate`: it
    // had the message already; from the upstream that is no hand-over, review
    // s32-mail L7).
    type HandedCopy = (u64, Option<[u8; 32]>, Option<AgencyCode>);
    let mut handed_copies: BTreeMap<Key, Vec<HandedCopy>> = BTreeMap::new();
    // (node, sender, id) -> (index, digest, signed time) of acceptances that verify
    // but by a key revoked since, undated by this auditor (review s32-mail L5).
    type RevokedCopy = (u64, Option<[u8; 32]>, u64);
    let mut revoked_hand_overs: BTreeMap<Key, Vec<RevokedCopy>> = BTreeMap::new();
    // (node, message id): any trace of the id in the node's log (sent, receipts...).
    let mut known: std::collections::BTreeSet<(AgencyCode, String)> = Default::default();
    // (node, sender, message id) -> (neighbour, signed time, digest of the refused
    // copy, its signed hop count, reason) of valid signed refusals.
    type Refused = (AgencyCode, u64, Option<[u8; 32]>, Option<u32>, String);
    // Only those of the copy: `too_many_hops` (a property of the copy), `id_in_use`,
    // `sender_quota`, and the addressee's own refusals ([`addressee_refusal`]).
    let mut refusals: BTreeMap<Key, Vec<Refused>> = BTreeMap::new();
    // (node, neighbour) -> signed times of the neighbour's valid signed `full`,
    // `store` and `quota` refusals of the node's hand-overs, whatever message they name: the
    // neighbour's global state, so each covers every link moment with it within the
    // window (review s31-fixes X3: a per-neighbour cap on logged refusals no longer
    // leaves messages without evidence).
    // With whether the refused item was addressed to the refusing neighbour (its
    // signed `addressee`, `/wlnode/mail/5`; `None`: an older answer, or `store`): a
    // `full` of a message for the neighbour itself speaks of its delivery state and
    // covers only messages addressed to it, any other `full` of its relay state and
    // covers only messages it would relay (review s32-mail L1).
    type GlobalRefusal = (u64, Option<bool>);
    let mut global_refusals: BTreeMap<(AgencyCode, AgencyCode), Vec<GlobalRefusal>> =
        BTreeMap::new();
    // (node, neighbour, sender, id, time, index, the neighbour's valid signed
    // accepting ack).
    type Handed = (
        AgencyCode,
        AgencyCode,
        AgencyCode,
        String,
        u64,
        u64,
        Option<wlnode_crypto::mail::MailAck>,
    );
    let mut handed: Vec<Handed> = Vec::new();
    // (node, neighbour, sender, id, index, signed hop count, digest) of the valid
    // signed refusals of a node's hand-overs.
    type RefusedAt = (
        AgencyCode,
        AgencyCode,
        AgencyCode,
        String,
        u64,
        u32,
        Option<[u8; 32]>,
    );
    let mut refused_at_hops: Vec<RefusedAt> = Vec::new();
    // From when each node signs hand-overs (review s31-fixes X2), a time the node
    // cannot put off on its own: the earliest of the roster's
    // `mail_acks_required_since` (set by the authority once the federation
    // upgraded), the time of the first valid answer it signed that another node's log
    // holds (its custody acks and refusals there), and the first event of its own log
    // that carries an ack. Before it, a bare `handed` of an older build still counts,
    // so an upgrade in place does not turn earlier hand-overs into findings.
    let roster_since = roster.mail_acks_required_since().map(|t| t.as_millis());
    let mut signing_since: HashMap<AgencyCode, u64> = HashMap::new();
    // (node, message id) -> the earliest expiry in another node's `handed` of it
    // to that node with its valid signed custody ack: the relay's own `received`
    // is not the only word on when the message expired (review s32-mail H2: a
    // missing or far-future expiry there skipped the message for good). Only an
    // earlier expiry is taken: it shortens the window the relay is judged in, so it
    // cannot frame it.
    let mut expiry_seen: HashMap<(AgencyCode, String), u64> = HashMap::new();
    // The same, per copy (node, id, digest): the expiry of a copy the node's labels
    // do not judge (review s34-mail H1, H2).
    let mut copy_expiry: HashMap<(AgencyCode, String, [u8; 32]), u64> = HashMap::new();
    // (node, message id, digest) -> the expiry in the header of the copy the node
    // signed custody of, read from the identity bytes another node logged beside the
    // hand-over (`copy`, since s38) whose SHA-256 is the digest the node signed: the
    // copy's own expiry, which neither the node's log nor the handing node's word
    // can move (s38: a relay logging an early expiry left each copy it dropped
    // unjudged, as short-lived or expired before it was due). When known it is the
    // expiry the node is judged by.
    let mut proven_expiry: HashMap<(AgencyCode, String, [u8; 32]), u64> = HashMap::new();
    // (offering node, message id, digest) -> signed times of its valid offers of
    // that copy in other nodes' logs (`offered`, `/wlnode/mail/5`).
    // (offering node, id, digest) -> (signed time, keeper, signed hop count) of
    // each of its offers of that copy.
    type OfferedCopy = (u64, AgencyCode, u32);
    let mut offered_copies: HashMap<(AgencyCode, String, [u8; 32]), Vec<OfferedCopy>> =
        HashMap::new();
    // (offering node, keeper) -> signed times of all its valid offers in the
    // keeper's log: moments it had a route to the keeper and chose it.
    let mut offer_times: HashMap<(AgencyCode, AgencyCode), Vec<u64>> = HashMap::new();
    // (offering node, keeper, id, digest) -> the earliest signed time of its valid
    // offers of that copy in the keeper's log: each distinct copy once, however
    // often the keeper logged it or the node offered it again (review s35-mail H1:
    // a keeper that repeats one offer must not make its log look saturated).
    type CopyOffered = (AgencyCode, AgencyCode, String, [u8; 32]);
    let mut first_offer_of_copy: HashMap<CopyOffered, u64> = HashMap::new();
    // (offering node, keeper, id, digest) of every `offered` event that decodes.
    let mut offers_kept: std::collections::HashSet<(AgencyCode, AgencyCode, String, [u8; 32])> =
        Default::default();
    for l in &usable {
        let me = &l.export.agency;
        for (index, e) in l.events.iter().filter(|(i, _)| *i < l.covered) {
            let EventKind::Mail {
                action,
                message_id,
                peer,
                expires_at,
                ack: Some(ack),
                copy,
                ..
            } = &e.kind
            else {
                continue;
            };
            if action == "offered" {
                // The keeper's record of an offer, whatever the offering key's status
                // now: an offer by a key revoked since that no verified head dates
                // is no evidence against the offerer, but the keeper did log it
                // (review s34-mail M2 residual: `mail_offer_not_logged`).
                if let Some(p) = peer
                    && let Ok(o) = wlnode_crypto::mail::HandoverOffer::from_hex(ack)
                {
                    offers_kept.insert((
                        p.clone(),
                        me.clone(),
                        message_id.clone(),
                        o.body().item_digest,
                    ));
                }
                // Another node's signed offer of a message to this one (review
                // s32-mail H1): evidence against the offering node, whatever its own
                // log holds.
                if let Some(p) = peer
                    && let Some(o) = signed_offer(roster, ack, p, me, message_id, l, *index)
                {
                    let b = o.body();
                    let at = b.at.as_millis();
                    offered_copies
                        .entry((p.clone(), message_id.clone(), b.item_digest))
                        .or_default()
                        .push((at, me.clone(), b.hops));
                    offer_times
                        .entry((p.clone(), me.clone()))
                        .or_default()
                        .push(at);
                    let first = first_offer_of_copy
                        .entry((p.clone(), me.clone(), message_id.clone(), b.item_digest))
                        .or_insert(at);
                    *first = (*first).min(at);
                }
                continue;
            }
            let first = signing_since.entry(me.clone()).or_insert(e.at);
            *first = (*first).min(e.at);
            if (action == "handed" || action == "hand_refused")
                && let Some(p) = peer
                && let Some(a) = signed_answer(roster, Some(ack), me, p, message_id, l, *index)
            {
                if action == "handed"
                    && a.accepted
                    && let Some(d) = a.body().item_digest
                    && let Some(x) = copy
                        .as_deref()
                        .and_then(|c| copy_expiry_of(c, message_id, d))
                {
                    proven_expiry.insert((p.clone(), message_id.clone(), d), x);
                }
                if action == "handed"
                    && a.accepted
                    && let Some(x) = expires_at
                {
                    let lowest = expiry_seen
                        .entry((p.clone(), message_id.clone()))
                        .or_insert(*x);
                    *lowest = (*lowest).min(*x);
                    if let Some(d) = a.body().item_digest {
                        let of_copy = copy_expiry
                            .entry((p.clone(), message_id.clone(), d))
                            .or_insert(*x);
                        *of_copy = (*of_copy).min(*x);
                    }
                }
                let at = a.body().at.as_millis();
                let first = signing_since.entry(p.clone()).or_insert(at);
                *first = (*first).min(at);
                // A moment of a working mail link of `p`'s with this node, by `p`'s
                // own signed acceptance in this node's log: `p` cannot strip it from
                // its own log to have no routes (review s32-mail H1). Its refusals
                // are no route (review s32-mail M1).
                if !a.accepted {
                    continue;
                }
                links
                    .entry(p.clone())
                    .or_default()
                    .entry(me.clone())
                    .or_default()
                    .push(at);
            }
        }
    }
    let mut since_of: HashMap<AgencyCode, u64> = HashMap::new();
    // (node, neighbour) -> signed times of the neighbour's valid `/wlnode/mail/5`
    // refusals (they sign the addressee) of the node's hand-overs, whatever the
    // reason: moments the neighbour answered the node, by its own signature.
    let mut refused_by: HashMap<(AgencyCode, AgencyCode), Vec<u64>> = HashMap::new();
    // (node, id, addressee) -> (time, reason) of the node's own `hand_failed`
    // events of that message to its addressee, for a reason in
    // [`HAND_FAILED_NOTED`]: its unsigned word that it reached the addressee and
    // got no answer (review s34-mail M1). Read only for copies the node signed
    // custody of, and only noted in a finding: they never change who is named
    // (review s35-mail H2).
    type FailedKey = (AgencyCode, String, AgencyCode);
    // (upstream, id) of every `received` or `delivered` event naming the neighbour
    // it came from, in any audited log (review s35-mail H1 follow-up: a neighbour
    // at its cap of offers took the copy without logging the offer).
    let mut got_from: std::collections::HashSet<(AgencyCode, String)> = Default::default();
    let mut failed_to: HashMap<FailedKey, Vec<(u64, String)>> = HashMap::new();
    // (node, id, digest) -> (neighbour, signed time, signed hop count, reason) of the
    // neighbours' valid `/wlnode/mail/5` answers of that copy in the node's log
    // (refusals here, acceptances added from `handed` below).
    type AnswerOfCopy = (AgencyCode, u64, Option<u32>, String);
    let mut answers_of_copy: HashMap<(AgencyCode, String, [u8; 32]), Vec<AnswerOfCopy>> =
        HashMap::new();
    for l in &usable {
        let me = &l.export.agency;
        // From when this node signs hand-overs (see `signing_since`): from then on
        // a `handed` without the neighbour's valid signed acceptance is no
        // hand-over (review s31-mail M2), before it a bare one still counts.
        let since = signing_since
            .get(me)
            .copied()
            .into_iter()
            // Review s35-roster H1: not the roster's cut-over for a node whose build
            // logged it as not understood (it did not apply it); its own signed
            // answers and acks still date its signing era.
            .chain(roster_since.filter(|_| {
                !super::consult::NotUnderstood::of(l, roster.version())
                    .ever("mail_acks_required_since")
            }))
            .min();
        if let Some(s) = since {
            since_of.insert(me.clone(), s);
        }
        // The signed era is decided by log position: it begins at the first event
        // at or after `since`, and every later event is in it, whatever time it
        // claims (review s32-mail H2: a backdated bare `handed` counted as one of
        // an older build).
        let mut in_era = false;
        for (index, e) in l.events.iter().filter(|(i, _)| *i < l.covered) {
            in_era |= since.is_some_and(|s| e.at >= s);
            let signs_handovers = in_era;
            // A moment of a working mail link with neighbour `n` (review s31-mail
            // M1: mail evidence only, never record traffic): its valid signed
            // acceptance of a hand-over (before the node signed hand-overs: a bare
            // `handed`, the node's own word), or its valid signed refusal. Mail taken
            // from it is no route: a neighbour that never takes the node's mail gives
            // it none. A
            // neighbour that answers anonymously, with a bad time or not at all
            // leaves no such moment, so it gives the relay no route to be blamed for.
            let mut link = |n: &AgencyCode| {
                links
                    .entry(me.clone())
                    .or_default()
                    .entry(n.clone())
                    .or_default()
                    .push(e.at);
            };
            let EventKind::Mail {
                action,
                message_id,
                item,
                from: sender,
                to,
                peer,
                expires_at,
                ack,
                reason,
                ..
            } = &e.kind
            else {
                continue;
            };
            // An `offered` event shows only that a neighbour offered the id, not that
            // this node had it before, like `rejected` (review s33-mail H4: it let a
            // neighbour that answered a false `seen` escape the proven
            // `mail_not_logged` of review s31-mail M3).
            // Nor a `hand_failed` (the relay's own unsigned word, any id: review
            // s35-mail L5).
            if action != "rejected"
                && action != "hand_refused"
                && action != "offered"
                && action != "hand_failed"
            {
                known.insert((me.clone(), message_id.clone()));
            }
            let key = (me.clone(), sender.clone(), message_id.clone());
            if item != "message" {
                continue;
            }
            if action == "hand_failed" {
                if let Some(p) = peer.as_ref().filter(|p| *p == to && *p != me)
                    && let Some(r) = reason
                        .as_ref()
                        .filter(|r| HAND_FAILED_NOTED.contains(&r.as_str()))
                {
                    failed_to
                        .entry((me.clone(), message_id.clone(), p.clone()))
                        .or_default()
                        .push((e.at, r.clone()));
                }
                continue;
            }
            // Another node's own word that it got the id from `peer`: enough to
            // spare `peer` the saturation finding below (it clears, never names).
            if (action == "received" || action == "delivered")
                && let Some(p) = peer.as_ref().filter(|p| *p != me)
            {
                got_from.insert((p.clone(), message_id.clone()));
            }
            match action.as_str() {
                "received" if to != me => {
                    let upstream = peer.clone().unwrap_or(to.clone());
                    // The relay's own signed custody ack (logged since review
                    // s31-mail H1) names the digest of the copy it took.
                    let custody =
                        signed_answer(roster, ack.as_deref(), &upstream, me, message_id, l, *index)
                            .filter(|a| a.accepted);
                    // The custody time: no later than the time the relay signed
                    // (review s32-mail H2: a `received` dated at the expiry left no
                    // window to be blamed in).
                    let at = custody
                        .as_ref()
                        .map_or(e.at, |a| e.at.min(a.body().at.as_millis()));
                    let digest = custody.and_then(|a| Some((a.body().item_digest?, a.body().hops)));
                    took.entry(key).or_insert((
                        *index,
                        at,
                        *expires_at,
                        upstream,
                        to.clone(),
                        digest,
                        signs_handovers,
                    ));
                }
                "received" | "delivered" | "handed" => {
                    if action == "handed" && peer.is_none() && signs_handovers {
                        continue;
                    }
                    if action == "handed"
                        && let Some(p) = peer
                    {
                        let custody =
                            signed_answer(roster, ack.as_deref(), me, p, message_id, l, *index)
                                .filter(|a| a.accepted);
                        // Its own word that the link worked: a route against itself
                        // even when it strips the neighbour's ack (review s32-mail
                        // H1); an honest build logs `handed` only with a valid one.
                        link(p);
                        if custody.is_none() && signs_handovers {
                            // A genuine acceptance by a key revoked since, which no
                            // head this auditor verified dates: the relay could not
                            // know of a later revocation, so the message is unknown,
                            // neither handed nor blamed (review s32-mail L5).
                            if let Some((a, revoked_at)) =
                                revoked_answer(roster, ack.as_deref(), me, p, message_id)
                            {
                                revoked_hand_overs.entry(key).or_default().push((
                                    *index,
                                    a.body().item_digest,
                                    a.body().at.as_millis().min(revoked_at),
                                ));
                            }
                            continue;
                        }
                        handed_copies.entry(key).or_default().push((
                            *index,
                            custody.as_ref().and_then(|a| a.body().item_digest),
                            custody
                                .as_ref()
                                .filter(|a| a.reason != "ok")
                                .map(|_| p.clone()),
                        ));
                        handed.push((
                            me.clone(),
                            p.clone(),
                            sender.clone(),
                            message_id.clone(),
                            e.at,
                            *index,
                            custody,
                        ));
                        continue;
                    }
                    moved.insert(key);
                }
                "hand_refused" => {
                    if let Some(p) = peer
                        && let Some(a) =
                            signed_answer(roster, ack.as_deref(), me, p, message_id, l, *index)
                        && !a.accepted
                    {
                        if a.body().addressee.is_some() {
                            refused_by
                                .entry((me.clone(), p.clone()))
                                .or_default()
                                .push(a.body().at.as_millis());
                            if let Some(d) = a.body().item_digest {
                                answers_of_copy
                                    .entry((me.clone(), message_id.clone(), d))
                                    .or_default()
                                    .push((
                                        p.clone(),
                                        a.body().at.as_millis(),
                                        a.body().hops,
                                        a.reason.clone(),
                                    ));
                            }
                        }
                        // The count the neighbour signs it was handed, checked for
                        // inflation like an accepted one (review s32-mail M2).
                        if let Some(h) = a.body().hops {
                            refused_at_hops.push((
                                me.clone(),
                                p.clone(),
                                sender.clone(),
                                message_id.clone(),
                                *index,
                                h,
                                a.body().item_digest,
                            ));
                        }
                        // A refusal shows the relay tried, not that the neighbour
                        // would take the message: no route (review s32-mail M1:
                        // signed `quota`, `id_in_use`... refusals framed a relay).
                        if !EXCUSING_REFUSALS.contains(&a.reason.as_str())
                            && !addressee_refusal(&a, p)
                        {
                            continue;
                        }
                        if GLOBAL_REFUSALS.contains(&a.reason.as_str()) {
                            let for_it = (a.reason == "full" || a.reason == "quota")
                                .then(|| a.body().addressee.as_ref().map(|x| x == p))
                                .flatten();
                            global_refusals
                                .entry((me.clone(), p.clone()))
                                .or_default()
                                .push((a.body().at.as_millis(), for_it));
                            continue;
                        }
                        // Every one counts (review s32-mail L2: a cap dropped the
                        // cover of an honest relay's long-lived message while its
                        // links stayed); the work per message is linear in them.
                        refusals.entry(key).or_default().push((
                            p.clone(),
                            a.body().at.as_millis(),
                            a.body().item_digest,
                            a.body().hops,
                            a.reason.clone(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    for times in links.values_mut().flat_map(BTreeMap::values_mut) {
        times.sort_unstable();
    }
    for times in offer_times.values_mut() {
        times.sort_unstable();
    }
    // Sorted by time: a copy reads its own with two bisections.
    for events in failed_to.values_mut() {
        events.sort_unstable();
    }
    let w = REFUSAL_EVIDENCE_WINDOW_MS;
    // The global refusals as disjoint sorted intervals [r - w, r + w] of the
    // moments they cover (review s31-fixes X4).
    // Keyed by (node, neighbour, whether the message is addressed to the neighbour).
    let global_cover: BTreeMap<(AgencyCode, AgencyCode, bool), Vec<(u64, u64)>> = global_refusals
        .into_iter()
        .flat_map(|((node, n), times)| {
            [true, false].map(|for_it| {
                let of_state = times
                    .iter()
                    .filter(|(_, f)| f.is_none_or(|f| f == for_it))
                    .map(|(t, _)| *t);
                ((node.clone(), n.clone(), for_it), merge_cover(of_state, w))
            })
        })
        .collect();
    let checkpoint_of: HashMap<&AgencyCode, Option<u64>> = usable
        .iter()
        .map(|l| (&l.export.agency, l.checkpoint_at))
        .collect();
    let skew = wlnode_crypto::mail::MAX_CLOCK_SKEW_MS;
    // The upstream node's copy of a relay's signed custody ack (its `handed` event)
    // names the digest of the copy the relay took, whatever the relay logged. Keyed
    // by (relay, sender, id, upstream), the last one kept: only for a relay whose
    // `received` names no digest of its own (an older log). The sender is the
    // upstream's unsigned label, so the key may name another copy (review s38 H2):
    // the time, addressee and offers of the copy judged come from `custody_by_id`,
    // by digest.
    type CustodyKey<'k> = (&'k AgencyCode, &'k AgencyCode, &'k str, &'k AgencyCode);
    let custody_digest: HashMap<CustodyKey<'_>, Copy> = handed
        .iter()
        .filter_map(|(from, to, sender, id, _, _, ack)| {
            let ack = ack.as_ref().filter(|a| a.reason == "ok")?;
            Some((
                (to, sender, id.as_str(), from),
                (ack.body().item_digest?, ack.body().hops),
            ))
        })
        .collect();
    // Every copy of a node's signed custody acks of an id in another node's
    // `handed`, by (node, id): whatever upstream or sender its own log names
    // (review s32-mail M2: naming another upstream hid the one that held its real
    // count).
    let mut custody_copies: HashMap<(&AgencyCode, &str), Vec<Copy>> = HashMap::new();
    for (_, to, _, id, _, _, ack) in &handed {
        if let Some(ack) = ack.as_ref().filter(|a| a.reason == "ok")
            && let Some(d) = ack.body().item_digest
        {
            custody_copies
                .entry((to, id.as_str()))
                .or_default()
                .push((d, ack.body().hops));
        }
    }
    // The copy a node took: of its own signed custody acks (in any upstream's log,
    // or its own), the one at the lowest signed hop count (review s32-mail M2: a
    // relay signs a higher count for itself to be refused `too_many_hops`).
    // The lowest count is taken among acks of one copy only (the digest named by
    // the upstream it names, else its own log, else any), so another message
    // taken under the same id later does not lower it.
    let lowest_of = |node: &AgencyCode, id: &str, digest: [u8; 32], logged: Option<Copy>| {
        custody_copies
            .get(&(node, id))
            .into_iter()
            .flatten()
            .chain(logged.iter())
            .filter(|c| c.0 == digest)
            .map(|c| c.1)
            .min_by_key(|h| (h.is_none(), *h))
            .flatten()
    };
    let taken_copy = |node: &AgencyCode, sender: &AgencyCode, id: &str| -> Option<Copy> {
        let (.., from, _, logged, _) = took.get(&(node.clone(), sender.clone(), id.to_owned()))?;
        // The copy the node's own signed custody ack (in its `received`) names first:
        // the upstream's ack under the same (unsigned) sender label may be of another
        // copy of the id, a later one reusing it or one the upstream labelled so
        // (review s38 H2: the node was judged by that copy's digest with the first
        // copy's custody time and routes, and named though it handed both on).
        let named = logged
            .or_else(|| custody_digest.get(&(node, sender, id, from)).copied())
            .or_else(|| {
                custody_copies
                    .get(&(node, id))
                    .and_then(|v| v.iter().min_by_key(|(_, h)| (h.is_none(), *h)))
                    .copied()
            })?;
        Some((named.0, lowest_of(node, id, named.0, *logged)))
    };
    // An upstream that handed a copy with more hops than it had (the next hop signed
    // the count it got; the upstream's own count is 0 as the sender, else the count
    // it signed it took the copy at, plus one): it made the copy look farther
    // travelled, so that every neighbour of the next hop refuses it (review
    // s31-fixes X1). Proven: both counts are signed, the one it handed by the next
    // hop in the upstream's own log.
    // Refusals too: the next hop signs the count it was handed whether it takes
    // the copy or not, and a refusal of the copy taken (same digest) at a count
    // above the one taken plus one proves the same (review s32-mail M2).
    let accepted_at = handed
        .iter()
        .filter_map(|(from, to, sender, id, _, index, custody)| {
            let got = custody.as_ref().and_then(|a| a.body().hops)?;
            let digest = custody.as_ref().and_then(|a| a.body().item_digest);
            Some((from, to, sender, id, *index, got, digest))
        });
    let refused_at = refused_at_hops
        .iter()
        .map(|(from, to, sender, id, index, got, digest)| {
            (from, to, sender, id, *index, *got, *digest)
        });
    // Compared with the lowest count the node signed it took that very copy at
    // (same digest): not another message taken under the id.
    for (from, to, sender, id, index, got, handed_copy) in accepted_at.chain(refused_at) {
        let had = if from == sender {
            Some(0)
        } else {
            let logged = took
                .get(&(from.clone(), sender.clone(), id.clone()))
                .and_then(|c| c.5);
            handed_copy
                .and_then(|d| lowest_of(from, id, d, logged))
                .map(|h| h.saturating_add(1))
        };
        if let Some(had) = had
            && got > had
        {
            report.violations.push(proven(
                "mail_hops_inflated",
                from.as_str(),
                format!(
                    "{from} handed message {id} to {to} at hop count {got}, but its copy was at {had}"
                ),
                serde_json::json!({"message_id": id, "event": index, "handed_hops": got, "own_hops": had}),
            ));
        }
    }
    // Per (offering node, keeper): the spans of hours in which the keeper's log holds
    // as many of its offers as a node logs per neighbour and hour (the log may have
    // left others out), as sorted intervals.
    let saturated: HashMap<(AgencyCode, AgencyCode), Vec<(u64, u64)>> = offer_times
        .iter()
        .filter(|(_, times)| times.len() >= OFFERS_LOGGED_PER_HOUR)
        .map(|(k, times)| {
            let spans = times
                .windows(OFFERS_LOGGED_PER_HOUR)
                .filter_map(|w| {
                    let (first, last) = (*w.first()?, *w.last()?);
                    (last.saturating_sub(first) < 3_600_000 + 2 * skew).then(|| {
                        (
                            first.saturating_sub(3_600_000),
                            last.saturating_add(3_600_000),
                        )
                    })
                })
                .collect::<Vec<_>>();
            (k.clone(), merge_spans(spans))
        })
        .collect();
    // Per (offering node, keeper): the moments the keeper's log really was at the
    // cap with the node's offers, for `mail_relay_saturated_neighbour` only (the
    // spans above only excuse, and are generous): from the first to the last of
    // as many distinct copies as a node logs per neighbour and hour, offered
    // within less than an hour (review s35-mail H1, M3: repeated events of one
    // copy count once, and one busy hour covers less than an hour), as sorted
    // disjoint intervals with the running sum of their lengths before each, so a
    // copy's covered time costs two bisections (review s35-mail L1).
    let mut distinct_offers: HashMap<(AgencyCode, AgencyCode), Vec<u64>> = HashMap::new();
    for ((node, keeper, ..), t) in first_offer_of_copy {
        distinct_offers.entry((node, keeper)).or_default().push(t);
    }
    let saturated_really: HashMap<(AgencyCode, AgencyCode), SpanSums> = distinct_offers
        .into_iter()
        .filter(|(_, times)| times.len() >= OFFERS_LOGGED_PER_HOUR)
        .map(|(k, mut times)| {
            times.sort_unstable();
            let spans = times
                .windows(OFFERS_LOGGED_PER_HOUR)
                .filter_map(|w| {
                    let (first, last) = (*w.first()?, *w.last()?);
                    (last.saturating_sub(first) < 3_600_000).then_some((first, last))
                })
                .collect();
            (k, SpanSums::new(merge_spans(spans)))
        })
        .collect();
    // A node's signed custody acks (`ok`) in upstreams' `handed` events, by (node,
    // id), whatever sender or upstream its own `received` names: (upstream, copy,
    // signed time, signed addressee), earliest first. The offer-based rule is keyed
    // by these, not by the node's labels (review s33-mail H5: a false sender or
    // upstream label skipped it).
    type CustodyOf<'k> = (&'k AgencyCode, Copy, u64, Option<&'k AgencyCode>);
    let mut custody_by_id: HashMap<(&AgencyCode, &str), Vec<CustodyOf<'_>>> = HashMap::new();
    for (from, to, _, id, _, _, ack) in &handed {
        if let Some(ack) = ack.as_ref().filter(|a| a.reason == "ok")
            && let Some(d) = ack.body().item_digest
        {
            custody_by_id.entry((to, id.as_str())).or_default().push((
                from,
                (d, ack.body().hops),
                ack.body().at.as_millis(),
                ack.body().addressee.as_ref(),
            ));
        }
    }
    for v in custody_by_id.values_mut() {
        v.sort_unstable_by(|a, b| (a.2, a.0).cmp(&(b.2, b.0)));
    }
    for (from, to, _, id, _, _, ack) in &handed {
        if let Some(ack) = ack.as_ref().filter(|a| a.body().addressee.is_some())
            && let Some(d) = ack.body().item_digest
        {
            answers_of_copy
                .entry((from.clone(), id.clone(), d))
                .or_default()
                .push((
                    to.clone(),
                    ack.body().at.as_millis(),
                    ack.body().hops,
                    ack.reason.clone(),
                ));
        }
    }
    let usable_agencies: std::collections::BTreeSet<&AgencyCode> =
        usable.iter().map(|l| &l.export.agency).collect();
    // (node, neighbour) -> signed times of the neighbour's valid `/wlnode/mail/5`
    // answers (they sign the addressee; a `/5` hand-over carries the node's offer)
    // to the node's hand-overs, accepting (`handed`) or refusing (`hand_refused`),
    // sorted: moments the neighbour was connected and answered the node, by its own
    // signature in the node's log.
    let mut answered_by: HashMap<(&AgencyCode, &AgencyCode), Vec<u64>> = HashMap::new();
    for (from, to, _, _, _, _, ack) in &handed {
        if let Some(ack) = ack.as_ref().filter(|a| a.body().addressee.is_some()) {
            answered_by
                .entry((from, to))
                .or_default()
                .push(ack.body().at.as_millis());
        }
    }
    // The accepting ones alone: moments the neighbour took the node's mail.
    let accepted_times = answered_by.clone();
    for ((from, to), times) in &refused_by {
        answered_by
            .entry((from, to))
            .or_default()
            .extend(times.iter().copied());
    }
    for times in answered_by.values_mut() {
        times.sort_unstable();
    }
    let mut accepted_times = accepted_times;
    for times in accepted_times.values_mut() {
        times.sort_unstable();
    }
    // A node's offers by keeper, sorted by keeper (one lookup per message, a stable
    // order of routes).
    let mut offers_by_node: HashMap<&AgencyCode, Vec<(&AgencyCode, &Vec<u64>)>> = HashMap::new();
    for ((by, keeper), times) in &offer_times {
        offers_by_node.entry(by).or_default().push((keeper, times));
    }
    for v in offers_by_node.values_mut() {
        v.sort_unstable_by_key(|(keeper, _)| *keeper);
    }
    // The moments the addressee was reachable from a node, as sorted intervals: its
    // signed answers to the node's hand-overs in the node's log, and the node's
    // offers its own log holds, each give or take the poll and retry slack.
    // Built once per (node, addressee), and each message takes only the spans
    // within its lifetime (`lo..hi`), as for the global refusals: the work stays
    // linear in the answers (review s34-mail H3 class).
    let mut reach: HashMap<(AgencyCode, AgencyCode), Vec<(u64, u64)>> = HashMap::new();
    for ((node, addressee), times) in &answered_by {
        reach
            .entry(((*node).clone(), (*addressee).clone()))
            .or_default()
            .extend(times.iter().map(|t| (*t, *t)));
    }
    for ((node, keeper), times) in &offer_times {
        reach
            .entry((node.clone(), keeper.clone()))
            .or_default()
            .extend(times.iter().map(|t| (*t, *t)));
    }
    let reach: HashMap<(AgencyCode, AgencyCode), Vec<(u64, u64)>> = reach
        .into_iter()
        .map(|(k, points)| {
            let spans = points
                .into_iter()
                .map(|(t, _)| {
                    (
                        t.saturating_sub(OFFER_SLACK_MS),
                        t.saturating_add(OFFER_SLACK_MS),
                    )
                })
                .collect();
            (k, merge_spans(spans))
        })
        .collect();
    // Every audited node's event times, sorted: whether its log shows it running
    // near a moment (for the note on a relay's `hand_failed`, review s35-mail H2).
    let running_at: HashMap<&AgencyCode, Vec<u64>> = usable
        .iter()
        .map(|l| {
            let mut times: Vec<u64> = l
                .events
                .iter()
                .filter(|(i, _)| *i < l.covered)
                .map(|(_, e)| e.at)
                .collect();
            times.sort_unstable();
            (&l.export.agency, times)
        })
        .collect();
    // The node's own `hand_failed` events of copy `id` to its addressee between `lo`
    // and `hi`, as a note for a finding (never a change of who is named: review
    // s35-mail H2): the first one's time and reason, how many, and whether the
    // addressee's own audited log holds an event within
    // [`HAND_FAILED_RUNNING_MS`] of it (`None`: its log is not audited).
    let failed_note = |node: &AgencyCode, id: &str, addressee: &AgencyCode, lo: u64, hi: u64| {
        let events = failed_to.get(&(node.clone(), id.to_owned(), addressee.clone()))?;
        probed(1);
        let first = events.partition_point(|(t, _)| *t < lo);
        let end = events.partition_point(|(t, _)| *t <= hi);
        let (t, reason) = events.get(first).filter(|_| first < end)?;
        let running = running_at.get(addressee).map(|times| {
            let i = times.partition_point(|x| x.saturating_add(HAND_FAILED_RUNNING_MS) < *t);
            times
                .get(i)
                .is_some_and(|x| *x <= t.saturating_add(HAND_FAILED_RUNNING_MS))
        });
        Some(serde_json::json!({
            "first_at": t,
            "reason": reason,
            "events": end.saturating_sub(first),
            "addressee_log_shows_it_running": running,
        }))
    };
    let failed_text = |note: &Option<serde_json::Value>, addressee: &AgencyCode| {
        note.as_ref().map_or(String::new(), |n| {
            format!(
                "; its own unsigned log says {addressee} did not answer its hand-over of it at {} ({}), which names no one",
                n["first_at"], n["reason"].as_str().unwrap_or("?")
            )
        })
    };
    let addressee_reach = |node: &AgencyCode, addressee: &AgencyCode, lo: u64, hi: u64| {
        let spans = reach
            .get(&(node.clone(), addressee.clone()))
            .map_or(&[][..], Vec::as_slice);
        let first = spans.partition_point(|(_, end)| *end < lo);
        let last = spans.partition_point(|(start, _)| *start < hi);
        let within = spans.get(first..last.max(first)).unwrap_or(&[]);
        probed(within.len());
        within
    };
    // (node, id) -> the neighbours whose logs show they handed the id to the node,
    // with whether the node signed an answer to it, whether that answer took
    // custody (`ok`), and the digest of the copy it signed. A relay does not offer
    // a message back to a neighbour that had it.
    type HandedTo<'k> = (&'k AgencyCode, bool, bool, Option<[u8; 32]>);
    let mut handed_to: HashMap<(&AgencyCode, &str), Vec<HandedTo<'_>>> = HashMap::new();
    for (from, to, _, id, _, _, ack) in &handed {
        handed_to.entry((to, id.as_str())).or_default().push((
            from,
            ack.is_some(),
            ack.as_ref().is_some_and(|a| a.reason == "ok"),
            ack.as_ref().and_then(|a| a.body().item_digest),
        ));
    }
    // Whether `other` had message `id` before `node` could offer it: a neighbour
    // whose log shows it handed the id to the node, which signed its answer (a bare
    // `handed` is the handing node's word, and must not move another node's
    // upstream); and the upstream the node names itself, unless an audited log
    // contradicts it: the named upstream's, holding no hand-over of the id to the
    // node, or another neighbour's, holding the node's signed custody of it (review
    // s32-mail M2: naming a route neighbour as the upstream must not take that
    // route out; review s33-mail M4: a true upstream whose log is not audited stays
    // out when another neighbour handed the message too, or an honest relay is
    // blamed for not handing it back).
    // Only hand-overs of the copy the node took count (`copy`, the digest of its
    // custody; either digest unknown: any): its signed answer to a neighbour's
    // hand-over of another message under the id (its own, say) must not take that
    // neighbour out as a route (review s33-mail M3).
    let had_it_before = |node: &AgencyCode,
                         id: &str,
                         copy: Option<[u8; 32]>,
                         named: &AgencyCode,
                         other: &AgencyCode| {
        let by = handed_to.get(&(node, id)).map_or(&[][..], Vec::as_slice);
        let of_copy = |d: &Option<[u8; 32]>| d.is_none() || copy.is_none() || *d == copy;
        let named_holds = if usable_agencies.contains(named) {
            by.iter().any(|(b, ..)| *b == named)
        } else {
            !by.iter()
                .any(|(b, _, custody, d)| *b != named && *custody && of_copy(d))
        };
        by.iter()
            .any(|(b, signed, _, d)| *b == other && *signed && of_copy(d))
            || (other == named && named_holds)
    };
    // The messages judged: those a node's own `received` says it took for another
    // agency, and every other copy it signed custody of (`ok`, in an upstream's
    // `handed`) for another addressee, whatever its own log says of that copy: by
    // digest, not by id or by its labels (review s34-mail H1: a `delivered` of
    // another member's message under the id re-judged an honest relay against the
    // relayed copy; H2: a relay that logged nothing of the copy it took, or labelled
    // it as addressed to itself, and handed its own message under the id, was judged
    // by no rule). A copy whose signed addressee is the node itself is never judged.
    // Such a copy is judged from its signed custody: the upstream, time, addressee,
    // copy and expiry of the upstream's `handed`; `true` marks it.
    let labelled_copies: std::collections::HashSet<(AgencyCode, String, [u8; 32])> = took
        .keys()
        .filter_map(|(n, s, i)| Some((n.clone(), i.clone(), taken_copy(n, s, i)?.0)))
        .collect();
    let mut signed_only: BTreeMap<(AgencyCode, String, [u8; 32]), (Key, Custody)> = BTreeMap::new();
    for (from, to, sender, id, handed_at, _, ack) in &handed {
        let Some(ack) = ack.as_ref().filter(|a| a.reason == "ok") else {
            continue;
        };
        let b = ack.body();
        let (Some(d), Some(addressee)) = (b.item_digest, b.addressee.as_ref()) else {
            continue;
        };
        let copy = (to.clone(), id.clone(), d);
        if addressee == to || labelled_copies.contains(&copy) {
            continue;
        }
        let Some(expires) = proven_expiry
            .get(&copy)
            .or_else(|| copy_expiry.get(&copy))
            .copied()
        else {
            continue;
        };
        let at = b.at.as_millis().min(*handed_at);
        let entry = (
            (to.clone(), sender.clone(), id.clone()),
            (
                0,
                at,
                Some(expires),
                from.clone(),
                addressee.clone(),
                Some((d, b.hops)),
                true,
            ),
        );
        match signed_only.entry(copy) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(entry);
            }
            std::collections::btree_map::Entry::Occupied(mut o) if o.get().1.1 > at => {
                o.insert(entry);
            }
            std::collections::btree_map::Entry::Occupied(_) => {}
        }
    }
    // Per node: the copies not judged for a short lifetime (counted in its summary).
    let mut short_lived_copies: HashMap<AgencyCode, u64> = HashMap::new();
    let judged: Vec<(Key, Custody, bool)> = took
        .iter()
        .map(|(k, v)| (k.clone(), v.clone(), false))
        .chain(signed_only.into_values().map(|(k, v)| (k, v, true)))
        .collect();
    // A node's hand-overs, revoked hand-overs and refusals by the copy the
    // neighbour's signed answer names, (node, id, digest), under any sender label:
    // a copy judged by its signed custody alone is looked up there, each such copy
    // once, so the work stays linear in the log whatever labels it writes (review
    // s34-mail H3: probing every label under the id for every judged message was
    // quadratic in labels the judged node wrote itself). A message its own
    // `received` names is looked up under its own key only, as before.
    type CopyKey = (AgencyCode, String, [u8; 32]);
    let mut handed_by_copy: HashMap<CopyKey, Vec<&HandedCopy>> = HashMap::new();
    for ((n, _, i), copies) in &handed_copies {
        for c in copies {
            if let Some(d) = c.1 {
                handed_by_copy
                    .entry((n.clone(), i.clone(), d))
                    .or_default()
                    .push(c);
            }
        }
    }
    let mut revoked_by_copy: HashMap<CopyKey, Vec<&RevokedCopy>> = HashMap::new();
    for ((n, _, i), copies) in &revoked_hand_overs {
        for c in copies {
            if let Some(d) = c.1 {
                revoked_by_copy
                    .entry((n.clone(), i.clone(), d))
                    .or_default()
                    .push(c);
            }
        }
    }
    let mut refusals_by_copy: HashMap<CopyKey, Vec<&Refused>> = HashMap::new();
    for ((n, _, i), v) in &refusals {
        for r in v {
            if let Some(d) = r.2 {
                refusals_by_copy
                    .entry((n.clone(), i.clone(), d))
                    .or_default()
                    .push(r);
            }
        }
    }
    for (
        (node, sender, id),
        (index, at, expires, from, addressee, logged, signed_era),
        by_digest,
    ) in &judged
    {
        let key = (node.clone(), sender.clone(), id.clone());
        let copy = match logged {
            Some((d, _)) if *by_digest => Some((*d, lowest_of(node, id, *d, *logged))),
            _ => taken_copy(node, sender, id),
        };
        let digest = copy.map(|c| c.0);
        // Its signed custody acks of this very copy (same digest) in upstreams'
        // logs, earliest first, whatever labels its own `received` gives (review of
        // the s38 fixes R1: another copy under the same labels dated and addressed
        // it; third review H1: a false sender or upstream label, with a custody ack
        // it signed late in its own log, made the copy look short-lived and judged
        // by neither rule).
        let signed_custodies = || {
            custody_by_id
                .get(&(node, id.as_str()))
                .into_iter()
                .flatten()
                .filter(move |c| Some(c.1.0) == digest)
        };
        // The earliest dates the custody (each upstream checked that time against
        // its own clock), whatever the relay's `received` says. The latest from the
        // upstream the relay names puts the message in the signed era when signed
        // at or after the node's `since` (review s32-mail H2).
        let upstream_at = signed_custodies()
            .filter(|c| c.0 == from)
            .map(|c| c.2)
            .max()
            .filter(|_| !by_digest);
        let at = &signed_custodies().map(|c| c.2).fold(*at, u64::min);
        let signed_era =
            *signed_era || upstream_at.is_some_and(|t| since_of.get(node).is_some_and(|s| t >= *s));
        // The addressee it signed in its custody ack of this copy (`/wlnode/mail/5`),
        // from the upstream it names first, else the label in its own log.
        let addressee = signed_custodies()
            .filter(|c| c.0 == from)
            .find_map(|c| c.3)
            .or_else(|| signed_custodies().find_map(|c| c.3))
            .filter(|_| !by_digest)
            .unwrap_or(addressee);
        // The count a copy handed on by it carries (review s31-fixes X1).
        let onward_hops = copy.and_then(|c| c.1).map(|h| h.saturating_add(1));
        let until = checkpoint_of.get(node).copied().flatten().unwrap_or(0);
        let seen = expiry_seen.get(&(node.clone(), id.clone())).copied();
        // The expiry in the header of the very copy it signed custody of, when a
        // log holds its bytes (s38); otherwise the earliest word on it.
        let proven =
            digest.and_then(|d| proven_expiry.get(&(node.clone(), id.clone(), d)).copied());
        let expires = match (proven, *expires, seen) {
            (Some(p), _, _) => Some(p),
            (None, Some(a), Some(b)) => Some(a.min(b)),
            (None, a, b) => a.or(b),
        };
        let Some(expires) = expires.filter(|x| *x <= until) else {
            continue;
        };
        // Its own word that it was the addressee (`received` to itself,
        // `delivered`) excuses only a copy whose signed addressee is not another
        // agency (review s33-mail H5 variant).
        let signed_for_other = *by_digest
            || custody_by_id.get(&(node, id.as_str())).is_some_and(|v| {
                v.iter()
                    .any(|(_, (d, _), _, a)| Some(*d) == digest && a.is_some_and(|a| a != node))
            });
        if moved.contains(&key) && !signed_for_other {
            continue;
        }
        // Handed on: a hand-over of the very copy it took (the neighbour's signed
        // acceptance names its digest), not of another message under the same id,
        // such as one of its own (review s31-fixes X8). Without the digest of the
        // copy taken, any accepted hand-over of the id counts only if it took the
        // copy before it signed hand-overs (an older log); since then its own
        // `received` carries its custody ack, and a log without it proves nothing.
        // A bare `handed` (no digest) counts only for a message taken before the
        // signed era, and no hand-over logged before the `received` counts
        // (review s32-mail H2).
        // A copy judged by its signed custody alone has no `received` to follow:
        // any hand-over of the same digest, under any sender label, counts.
        let copy_key = digest
            .filter(|_| *by_digest)
            .map(|d| (node.clone(), id.clone(), d));
        probed(match &copy_key {
            Some(ck) => {
                handed_by_copy.get(ck).map_or(0, Vec::len)
                    + revoked_by_copy.get(ck).map_or(0, Vec::len)
                    + refusals_by_copy.get(ck).map_or(0, Vec::len)
            }
            None => {
                handed_copies.get(&key).map_or(0, Vec::len)
                    + revoked_hand_overs.get(&key).map_or(0, Vec::len)
                    + refusals.get(&key).map_or(0, Vec::len)
            }
        });
        // A neighbour that answered it had the copy counts as a hand-over only if
        // it is not one the copy came from: the upstream the node names, nor any
        // whose log holds the node's signed custody of this copy (review of the
        // s38 fixes, third review M1: with a false upstream label, handing the copy
        // back to its true upstream, which answers `seen`, cleared the node).
        let came_from = |n: &AgencyCode| n == from || signed_custodies().any(|c| c.0 == n);
        let handed_on = match &copy_key {
            Some(ck) => handed_by_copy.get(ck).is_some_and(|v| {
                v.iter()
                    .any(|(_, _, had_it)| had_it.as_ref().is_none_or(|h| !came_from(h)))
            }),
            None => handed_copies.get(&key).is_some_and(|copies| {
                copies.iter().any(|(i, c, had_it)| {
                    *i > *index
                        && had_it.as_ref().is_none_or(|h| !came_from(h))
                        && match digest {
                            Some(_) => (c.is_none() && !signed_era) || *c == digest,
                            None => !signed_era,
                        }
                })
            }),
        };
        if handed_on {
            continue;
        }
        // Handed on with an acceptance by a key revoked since, signed after the
        // custody began and before the revocation: not blamed (review s32-mail L5).
        // A forgery with the stolen key must still claim a time before the
        // revocation and after the custody the upstream dated.
        let revoked_hand_over = match &copy_key {
            Some(ck) => revoked_by_copy
                .get(ck)
                .is_some_and(|v| v.iter().any(|(_, _, signed)| *signed >= *at)),
            None => revoked_hand_overs.get(&key).is_some_and(|v| {
                v.iter().any(|(i, d, signed)| {
                    *i > *index && d.is_some() && *d == digest && *signed >= *at
                })
            }),
        };
        if revoked_hand_over {
            continue;
        }
        // A copy whose remaining lifetime at the relay's custody was shorter than
        // [`MIN_JUDGED_LIFETIME_MS`] (s37): an honest relay may not have passed a
        // silent addressee before it expired. Neither relay rule judges it; it is
        // counted in the relay's summary. The custody time is the relay's own (a copy
        // judged by its signed custody alone: the time it signed, not the upstream's
        // event time, which would make a short copy look longer).
        let custody_own = if *by_digest {
            custody_by_id
                .get(&(node, id.as_str()))
                .into_iter()
                .flatten()
                .filter(|c| Some(c.1.0) == digest)
                .map(|c| c.2)
                .min()
                .unwrap_or(*at)
        } else {
            *at
        };
        let short_lived = expires.saturating_sub(custody_own) < MIN_JUDGED_LIFETIME_MS;
        if short_lived {
            *short_lived_copies.entry(node.clone()).or_default() += 1;
        }
        // Signed refusals of the very copy it took (same digest; none when that
        // digest is unknown) made while it lived: `too_many_hops` at the count it
        // took the copy at plus one, `id_in_use` (covers that neighbour's links),
        // the addressee's own (cover every link: review s36-m1 M2), a neighbour's
        // `sender_quota` (covers that neighbour's links: review s36-int M2). An
        // `id_in_use` covers even when the node once sent a message of its own under
        // the id (review of s36-fix H1: dropping it let a sender reusing the relay's
        // old id get the honest relay named; a relay provoking it is evasion only).
        let of_key: Vec<&Refused> = match &copy_key {
            Some(ck) => refusals_by_copy.get(ck).cloned().unwrap_or_default(),
            None => refusals.get(&key).into_iter().flatten().collect(),
        };
        let refused: Vec<&Refused> = of_key
            .into_iter()
            .filter(|(_, r, d, hops, reason)| {
                digest.is_some()
                    && *d == digest
                    && (reason != TOO_MANY_HOPS || (onward_hops.is_some() && *hops == onward_hops))
                    && r.saturating_add(skew) >= *at
                    && *r <= expires.saturating_add(skew)
            })
            .collect();
        // A moment of a link to another neighbour while the message lived that no
        // signed refusal (of that neighbour, or of the addressee) covers: it had a
        // route and did not use it. The covered moments are merged into intervals
        // and the link times searched by bisection between them, so a message
        // costs O((intervals + neighbours) log links), not the number of its link
        // moments (review s31-mail L1, s31-fixes X4).
        let first_link = |other: &AgencyCode, times: &[u64], also: &[(u64, u64)]| -> Option<u64> {
            // Not the upstream, nor another neighbour that had the message and
            // handed it to the node too: a relay offers it to neither.
            if had_it_before(node, id, digest, from, other) {
                return None;
            }
            let mut cover: Vec<(u64, u64)> = Vec::new();
            let mut by: Vec<&AgencyCode> = vec![other, addressee];
            by.dedup();
            for b in by {
                let Some(g) = global_cover.get(&(node.clone(), b.clone(), b == addressee)) else {
                    continue;
                };
                let first = g.partition_point(|(_, end)| end < at);
                cover.extend(
                    g.get(first..)
                        .unwrap_or(&[])
                        .iter()
                        .take_while(|(start, _)| *start < expires),
                );
            }
            let of_copy: Vec<u64> = refused
                .iter()
                .filter(|(by, ..)| by == other || by == addressee)
                .map(|(_, r, ..)| *r)
                .collect();
            cover.extend(merge_cover(of_copy.into_iter(), w));
            cover.extend_from_slice(also);
            cover.sort_unstable();
            first_uncovered(times, *at, expires, &cover)
        };
        // The addressee's own signed `/wlnode/mail/5` acceptance of other mail
        // from the node while the copy lived, at a moment no signed refusal covers:
        // it was reachable, a relay hands the message to it alone then (for its
        // first misses: s36), and the
        // logs cannot tell a relay that never tried from an addressee that refused
        // it for a reason that excuses nothing or never answered. Against the pair
        // (review s33-mail M2, as in this older rule: the relay alone was blamed).
        // Only by the addressee's signature: the relay's own word cannot move the
        // finding onto it.
        // The pair only when every uncovered link moment to another neighbour lies
        // where the addressee was reachable (it signed an answer to the node, or
        // kept its offer, within the poll and retry slack): at any other moment an
        // honest relay offers the message to that neighbour, and the addressee
        // cannot be at fault (review s34-mail M3: one acceptance of the relay's own
        // mail, which it can get at will, turned every "relay alone" into the pair
        // with an honest addressee).
        let reachable = addressee_reach(node, addressee, *at, expires);
        let to_addressee = accepted_times
            .get(&(node, addressee))
            .and_then(|times| first_link(addressee, times, &[]));
        let away = to_addressee.and_then(|_| {
            links.get(node)?.iter().find_map(|(other, times)| {
                (other != addressee)
                    .then(|| first_link(other, times, reachable))
                    .flatten()
                    .map(|t| (other, t))
            })
        });
        let to_addressee = to_addressee.filter(|_| away.is_none());
        let uncovered = to_addressee.map(|t| (addressee, t)).or(away).or_else(|| {
            links.get(node).and_then(|by_neighbour| {
                by_neighbour
                    .iter()
                    .find_map(|(other, times)| first_link(other, times, &[]).map(|t| (other, t)))
            })
        });
        if let Some((other, t)) = uncovered.filter(|_| !short_lived) {
            let accused = if to_addressee.is_some() {
                format!("{node}->{addressee}")
            } else {
                node.to_string()
            };
            // The node's own `hand_failed` events of this message to the addressee
            // (review s34-mail M1) are noted, never counted: they are its unsigned
            // word, and would move the finding onto an honest addressee at will
            // (review s35-mail H2).
            let failed = failed_note(node, id, addressee, *at, expires);
            let failed_says = failed_text(&failed, addressee);
            report.violations.push(violation(
                "mail_not_relayed",
                &accused,
                format!(
                    "{node} took custody of message {id} from {from} but never handed it on before it expired, though it had a link to {other} at {t} and no signed refusal of it then{failed_says}"
                ),
                serde_json::json!({"message_id": id, "event": (!by_digest).then_some(index), "route": other, "route_at": t, "signed_refusals_of_copy": refused.len(), "relay_says_addressee_failed": failed, "expires_at": expires, "expiry_from_signed_copy": proven.is_some()}),
            ));
            continue;
        }
        // Never offered (review s32-mail H1 residual): the node signed custody of
        // this copy (its ack in the upstream's log), it signed offers of other mail
        // to audited neighbours while the copy lived (it had routes, used them, and
        // offered hand-overs: `/wlnode/mail/5`), and no audited log
        // holds its offer of this copy. Its own log plays no part, so leaving every
        // event of a link out of it hides nothing.
        // An offer of other mail shows it ran `/wlnode/mail/5` then: a copy it still
        // held it offered too (one it handed on before, under an older build, its
        // own log shows handed, above).
        // The custody is the one the upstream it names holds, else its earliest in
        // any upstream's log: its own labels (sender, upstream) do not choose
        // whether it is judged (review s33-mail H5). The upstream, time and
        // addressee are then those of that custody.
        let custodies = custody_by_id
            .get(&(node, id.as_str()))
            .map_or(&[][..], Vec::as_slice);
        // A copy is judged by its own custody: the one of its digest (from the
        // upstream it names first), and only when its digest is unknown by the
        // label or the earliest (review of the s38 fixes R1: the upstream's custody
        // of another copy under the id, its own message to the node, had the honest
        // node judged by that copy's offers, time and addressee).
        let found = match digest {
            Some(d) => custodies
                .iter()
                .find(|c| c.1.0 == d && c.0 == from)
                .or_else(|| custodies.iter().find(|c| c.1.0 == d)),
            None => custodies.iter().find(|c| c.0 == from).or(custodies.first()),
        };
        let Some((from, (offered_digest, _), custody_at, signed_addressee)) = found else {
            continue;
        };
        let at = &(*at).min(*custody_at);
        let addressee = signed_addressee.unwrap_or(addressee);
        // The addressee alone is offered the message while it is reachable (for its
        // first misses: s36): its
        // log must be in the audit for the silence of the others to mean anything.
        if !usable_agencies.contains(addressee) {
            continue;
        }
        let lo = at.saturating_sub(skew);
        let hi = expires.saturating_add(skew);
        // A log's silence counts only up to its checkpoint: the addressee's, and a
        // route keeper's, must be past the copy's lifetime (review s33-mail L5: an
        // offer after a stale checkpoint was read as none).
        let covers_lifetime = |k: &AgencyCode| {
            checkpoint_of
                .get(k)
                .copied()
                .flatten()
                .is_some_and(|c| c >= hi)
        };
        if !covers_lifetime(addressee) {
            continue;
        }
        // An offer of the copy excuses only as a hand-over would (review s33-mail
        // H2): to a neighbour that had not had it (not back to the upstream), at
        // no more than the hop count of the copy it took plus one (an inflated
        // count is refused `too_many_hops` by every neighbour), and signed before
        // the copy expired by the node's own clock (an honest relay never offers
        // an expired item: offering it after the expiry is no relaying).
        let lowest = lowest_of(node, id, *offered_digest, None);
        let offered_it = offered_copies
            .get(&(node.clone(), id.clone(), *offered_digest))
            .is_some_and(|offers| {
                offers.iter().any(|(t, keeper, hops)| {
                    *t >= lo
                        && *t <= expires
                        && lowest.is_none_or(|h| *hops <= h.saturating_add(1))
                        && !had_it_before(node, id, Some(*offered_digest), from, keeper)
                })
            });
        if offered_it {
            continue;
        }
        // A neighbour's valid signed `/wlnode/mail/5` answer of this very copy in the
        // node's log, for a reason the runtime gives only after it verified the
        // offer (the request carried one, `no_offer` otherwise): proof that the
        // node offered the copy there (review s34-mail M2: such an answer was
        // ignored, and an honest relay named in a pair). The same bounds as for an
        // offer. The keeper's log then had to hold the offer, unless saturated
        // then: if it does not, the keeper is reported alone, unproven (the answer
        // goes out at once while the `offered` event waits in the writer queue).
        let answered_copy = answers_of_copy
            .get(&((*node).clone(), id.clone(), *offered_digest))
            .into_iter()
            .flatten()
            .filter(|(keeper, t, hops, reason)| {
                *t >= lo
                    && *t <= expires
                    && AFTER_OFFER_CHECK.contains(&reason.as_str())
                    && lowest.is_none_or(|h| hops.is_none_or(|x| x <= h.saturating_add(1)))
                    && !had_it_before(node, id, Some(*offered_digest), from, keeper)
            })
            .min_by_key(|(keeper, t, ..)| (*t, keeper.clone()));
        if let Some((keeper, t, _, reason)) = answered_copy {
            let logged = offers_kept.contains(&(
                (*node).clone(),
                keeper.clone(),
                id.clone(),
                *offered_digest,
            ));
            // A `store` answer says the keeper's writes failed, the `offered` event
            // most likely with them: it proves the offer, not a keeper that left it
            // out (review s34-mail M2 residual).
            let saturated_then = saturated
                .get(&((*node).clone(), keeper.clone()))
                .is_some_and(|spans| spans.iter().any(|(a, b)| a <= t && t <= b));
            if !logged && !saturated_then && reason != "store" && covers_lifetime(keeper) {
                report.violations.push(violation(
                    "mail_offer_not_logged",
                    keeper.as_str(),
                    format!(
                        "{keeper} signed a {reason} answer at {t} to {node}'s hand-over of its copy of message {id}, which it answers only after checking the offer, but its log holds no offer of that copy"
                    ),
                    serde_json::json!({"message_id": id, "relay": node, "answered_at": t, "reason": reason}),
                ));
            }
            continue;
        }
        // Too short-lived to judge (above): the keeper's log was still checked.
        if short_lived {
            continue;
        }
        // Neighbours it offered other mail to while the copy lived, long enough
        // before the expiry to have offered this copy too, whose logs did not hit
        // the per-hour cap of offers from it then. Not the upstream, nor a neighbour
        // whose log shows it handed the message to the node too (a relay does not
        // offer a message back to a neighbour that had it).
        // Both times are the node's own signatures (its custody ack, its offer), one
        // clock: an offer signed after the custody comes from a poll that held the
        // copy.
        let from_t = at.saturating_add(1_000);
        let to_t = expires.saturating_sub(OFFER_SLACK_MS);
        // The first of `times` in the window outside the spans in which `to`'s log
        // held as many of the node's offers as a node logs per neighbour and hour:
        // at such a moment its log took every offer of the node's, so an offer of
        // this copy then would be in it. A saturated hour excuses only the moments
        // it covers, not the whole lifetime (a relay with a colluding sender can
        // saturate a neighbour's log for an hour at will: review s33-mail M1
        // residual).
        let unsaturated = |to: &AgencyCode, times: &[u64]| {
            let spans = saturated
                .get(&((*node).clone(), to.clone()))
                .map_or(&[][..], Vec::as_slice);
            first_uncovered(times, from_t, to_t, spans)
        };
        // A route neighbour (as above) whose log the node's offers of distinct
        // copies really kept at the cap (`saturated_really`) for at least
        // [`SATURATED_LIFETIME_PERCENT`] of the window and [`SATURATED_MIN_MS`] in
        // all: (neighbour, percent covered, milliseconds covered). Two bisections
        // per neighbour (review s35-mail L1).
        let saturated_route = |node: &AgencyCode, from: &AgencyCode, id: &str, d: [u8; 32]| {
            let window = to_t.saturating_sub(from_t);
            if window == 0 {
                return None;
            }
            offers_by_node
                .get(node)
                .into_iter()
                .flatten()
                .filter(|(to, _)| !had_it_before(node, id, Some(d), from, to))
                .filter(|(to, _)| covers_lifetime(to))
                .find_map(|(to, times)| {
                    let sums = saturated_really.get(&(node.clone(), (*to).clone()))?;
                    let first = times.partition_point(|t| *t < from_t);
                    if times.get(first).is_none_or(|t| *t >= to_t) {
                        return None;
                    }
                    probed(1);
                    let covered = sums.covered(from_t, to_t);
                    let percent = covered.saturating_mul(100) / window;
                    (percent >= SATURATED_LIFETIME_PERCENT && covered >= SATURATED_MIN_MS)
                        .then_some((*to, percent, covered))
                })
        };
        let routes: Vec<(&AgencyCode, u64)> = offers_by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter(|(to, _)| !had_it_before(node, id, Some(*offered_digest), from, to))
            .filter(|(to, _)| covers_lifetime(to))
            .filter_map(|(to, times)| Some((*to, unsaturated(to, times)?)))
            .collect();
        // The addressee, when the node offered it other mail while the copy lived,
        // or when the addressee signed answers to the node's hand-overs then (its
        // acks and refusals in the node's `handed` and `hand_refused` events, which
        // its own log cannot strip): then it was reachable, and a relay offers the
        // message to it alone (for its first misses: s36), so its log alone had to
        // hold the offer (review
        // s33-mail M2: naming the node alone, or the pair with an honest third node,
        // blamed the wrong one; and an addressee that left every offer of the node
        // out of its log, refusing its hand-overs for a reason that excuses nothing,
        // moved the pair finding onto an honest neighbour).
        let addressee_answered = answered_by
            .get(&(node, addressee))
            .and_then(|times| unsaturated(addressee, times))
            .filter(|_| !had_it_before(node, id, Some(*offered_digest), from, addressee));
        let to_addressee = routes
            .iter()
            .find(|(to, _)| *to == addressee)
            .copied()
            .or(addressee_answered.map(|t| (addressee, t)));
        // The node's own `hand_failed` events of this message to the addressee
        // (review s34-mail M1): noted in the finding, never counted (review
        // s35-mail H2: its unsigned word moved the finding onto an honest
        // addressee, and kept the node from ever being named alone).
        let failed = failed_note(node, id, addressee, from_t, to_t);
        let failed_says = failed_text(&failed, addressee);
        // As in the link rule: the addressee is named only when no other route's
        // moment lies where it was unreachable (review s34-mail M3); otherwise the
        // routes to the others are judged as if it had been away.
        let others: Vec<(&AgencyCode, u64)> = routes
            .iter()
            .filter(|(to, _)| *to != addressee)
            .copied()
            .collect();
        let away = to_addressee.is_some() && {
            let reachable = addressee_reach(node, addressee, from_t, to_t);
            others.iter().any(|(to, _)| {
                let mut spans = saturated
                    .get(&((*node).clone(), (*to).clone()))
                    .cloned()
                    .unwrap_or_default();
                spans.extend_from_slice(reachable);
                let spans = merge_spans(spans);
                offer_times
                    .get(&((*node).clone(), (*to).clone()))
                    .is_some_and(|times| first_uncovered(times, from_t, to_t, &spans).is_some())
            })
        };
        let (to_addressee, routes) = if away {
            (None, others)
        } else {
            (to_addressee, routes)
        };
        let Some((first_route, route_at)) = to_addressee.or(routes.first().copied()) else {
            // Every offer of other mail to a route neighbour lay where its log held
            // 1,024 of the node's offers within an hour. Those are the node's own
            // signed offers: a relay with a colluding sender can keep a neighbour's
            // log saturated for a copy's whole life, so that its silence never
            // counts (review s34-mail L5). When the node's offers of distinct
            // copies really kept that log at the cap for at least
            // [`SATURATED_LIFETIME_PERCENT`] of the moments the copy could have
            // been offered and [`SATURATED_MIN_MS`] in all, the pair is named,
            // unproven, under its own kind: the node (its offers saturated the
            // log, and its own log shows no hand-over, no signed answer of the
            // copy, not even a capped `hand_refused`) or the neighbour (the keeper
            // of the saturated log, whose silence is the only evidence, and which
            // may have padded it: review s35-mail H1). Never either alone: a
            // genuinely busy relay saturates logs too.
            // Not when an audited log says it got the id from the node: the node
            // handed it on (a neighbour at its cap took it without logging the
            // offer), whatever the node's own log left out.
            let handed_by_word = got_from.contains(&((*node).clone(), id.clone()));
            if !handed_by_word
                && let Some((keeper, percent, covered)) =
                    saturated_route(node, from, id, *offered_digest)
            {
                report.violations.push(violation(
                    "mail_relay_saturated_neighbour",
                    &format!("{node}->{keeper}"),
                    format!(
                        "{node} signed custody of message {id} from {from} and no audited log holds its offer of that copy before it expired, while its offers of distinct copies kept {keeper}'s log at the hourly cap for {percent}% of the copy's lifetime ({} min){failed_says}",
                        covered / 60_000
                    ),
                    serde_json::json!({
                        "message_id": id,
                        "event": (!by_digest).then_some(index),
                        "neighbour": keeper,
                        "saturated_percent": percent,
                        "saturated_ms": covered,
                        "relay_says_addressee_failed": failed,
                    }),
                ));
            }
            continue;
        };
        // The silence is the neighbours' word (a log holds what its keeper
        // writes): against the pair when one neighbour's log alone would have to
        // hold the offer, against the node when several would; never proven.
        let accused = if routes.len() == 1 || to_addressee.is_some() {
            format!("{node}->{first_route}")
        } else {
            node.to_string()
        };
        report.violations.push(violation(
            "mail_not_relayed",
            &accused,
            format!(
                "{node} signed custody of message {id} from {from} but no audited log holds its offer of that copy before it expired, though it offered other mail to {first_route} at {route_at}{failed_says}"
            ),
            serde_json::json!({
                "message_id": id,
                "event": (!by_digest).then_some(index),
                "no_offer_of_copy": true,
                "expires_at": expires,
                "expiry_from_signed_copy": proven.is_some(),
                "addressee_answered_at": addressee_answered,
                "relay_says_addressee_failed": failed,
                "routes": routes.iter().map(|(n, t)| serde_json::json!({"neighbour": n, "offered_at": t})).collect::<Vec<_>>(),
            }),
        ));
    }
    // Copies not judged for a short lifetime: an informational count, never a finding
    // (the mail rules key a relay by agency: on its first node's summary).
    for (agency, count) in short_lived_copies {
        if let Some(s) = report
            .nodes
            .iter_mut()
            .find(|s| s.agency == agency.as_str())
        {
            s.mail_short_lived_not_judged += count;
        }
    }
    // (node, message id) of every message a node had (took, moved, handed on),
    // whatever sender its events name.
    let had_ids: std::collections::BTreeSet<(AgencyCode, String)> = moved
        .iter()
        .chain(took.keys())
        .chain(handed_copies.keys())
        .map(|(node, _, id)| (node.clone(), id.clone()))
        .collect();
    for (from, to, _, id, at, index, custody) in handed {
        let Some(Some(their_checkpoint)) = checkpoint_of.get(&to) else {
            continue;
        };
        // The neighbour's checkpoint must be later than the moment it took the
        // message by its own clock: the signed time of its ack, or, without one, the
        // handing node's time plus the allowed skew; plus its write latency.
        let took_by = custody
            .as_ref()
            .map_or(at.saturating_add(skew), |a| a.body().at.as_millis());
        if *their_checkpoint <= took_by.saturating_add(MAIL_LOGGED_MARGIN_MS) {
            continue;
        }
        // Whether the neighbour's log holds the id under any sender: the sender in
        // the handing node's event is its own unsigned label (the ack signs no
        // sender), so it must not decide whether the neighbour logged what it
        // signed (review s32-mail H4: a relay relabelled the sender of a genuine
        // custody ack and got a proven `mail_not_logged` against an honest neighbour).
        let had_it = had_ids.contains(&(to.clone(), id.clone()));
        let knew_it = known.contains(&(to.clone(), id.clone()));
        // An ack by a key revoked since (counted only when dated before the
        // revocation by this auditor) never proves a finding against the key's
        // owner: the key may have been stolen before anyone knew (review s32-mail
        // H3).
        let by_revoked_key = custody
            .as_ref()
            .is_some_and(|a| !matches!(a.verify_as_evidence(roster, &to), Ok(None)));
        let proven = |kind: &str, node: &str, detail: String, evidence: serde_json::Value| {
            if by_revoked_key {
                violation(kind, node, detail, evidence)
            } else {
                proven(kind, node, detail, evidence)
            }
        };
        match custody {
            Some(ack) if ack.reason == "ok" && !had_it => report.violations.push(proven(
                "mail_not_logged",
                &format!("{from}->{to}"),
                format!(
                    "{from} handed message {id} to {to}, which signed that it took custody, but its log has no record of receiving it"
                ),
                serde_json::json!({"message_id": id, "event": index, "ack": ack.to_hex()}),
            )),
            // It signed that it already had the message (`seen`, `duplicate`): its
            // log must know the id at least (review s31-mail M3).
            Some(ack) if ack.reason != "ok" && !knew_it => report.violations.push(proven(
                "mail_not_logged",
                &format!("{from}->{to}"),
                format!(
                    "{from} handed message {id} to {to}, which signed that it already had it ({}), but its log has no trace of it",
                    ack.reason
                ),
                serde_json::json!({"message_id": id, "event": index, "ack": ack.to_hex()}),
            )),
            None if !had_it && !knew_it => report.violations.push(violation(
                "mail_not_logged",
                &format!("{from}->{to}"),
                format!("{from} handed message {id} to {to}, whose log has no record of it"),
                serde_json::json!({"message_id": id, "event": index}),
            )),
            _ => {}
        }
    }
}

/// Refusal times as the disjoint sorted intervals `[r - w, r + w]` they cover.
fn merge_cover(times: impl Iterator<Item = u64>, w: u64) -> Vec<(u64, u64)> {
    let mut sorted: Vec<u64> = times.collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for r in sorted {
        let (start, end) = (r.saturating_sub(w), r.saturating_add(w));
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Intervals sorted by start and merged where they overlap or touch.
fn merge_spans(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Sorted disjoint intervals with the total length of those before each: the time
/// they cover within any range in two bisections (review s35-mail L1).
struct SpanSums {
    spans: Vec<(u64, u64)>,
    /// `before[i]`: the summed lengths of `spans[..i]` (one more entry than spans).
    before: Vec<u64>,
}

impl SpanSums {
    fn new(spans: Vec<(u64, u64)>) -> Self {
        let mut before = Vec::with_capacity(spans.len() + 1);
        let mut sum = 0u64;
        before.push(0);
        for (a, b) in &spans {
            sum = sum.saturating_add(b.saturating_sub(*a));
            before.push(sum);
        }
        Self { spans, before }
    }

    /// The time within `[lo, hi)` the spans cover (each span `[start, end)`).
    fn covered(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return 0;
        }
        let i = self.spans.partition_point(|(_, end)| *end <= lo);
        let j = self.spans.partition_point(|(start, _)| *start < hi);
        if j <= i {
            return 0;
        }
        let (Some(before_j), Some(before_i), Some(front), Some(back)) = (
            self.before.get(j),
            self.before.get(i),
            self.spans.get(i),
            self.spans.get(j - 1),
        ) else {
            return 0;
        };
        let whole = before_j.saturating_sub(*before_i);
        let cut_front = lo
            .saturating_sub(front.0)
            .min(front.1.saturating_sub(front.0));
        let cut_back = back.1.saturating_sub(hi);
        whole.saturating_sub(cut_front).saturating_sub(cut_back)
    }
}

/// The first of the sorted `times` in `[lo, hi)` outside every interval of `cover`
/// (sorted by start, possibly overlapping).
fn first_uncovered(times: &[u64], lo: u64, hi: u64, cover: &[(u64, u64)]) -> Option<u64> {
    let first_in = |from: u64, to: u64| -> Option<u64> {
        let i = times.partition_point(|t| *t < from);
        times.get(i).copied().filter(|t| *t < to)
    };
    let mut cursor = lo;
    for (start, end) in cover {
        if *end < cursor {
            continue;
        }
        if *start > cursor
            && let Some(t) = first_in(cursor, (*start).min(hi))
        {
            return Some(t);
        }
        cursor = cursor.max(end.saturating_add(1));
        if cursor >= hi {
            return None;
        }
    }
    first_in(cursor, hi)
}

#[cfg(test)]
#[path = "mail_tests.rs"]
mod tests;
