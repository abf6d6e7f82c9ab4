//! The `mail_relay_delayed` check of an audit (issue 21, "a node that drops or
//! delays messages it should relay shows up in the audit"; s36-delay, option (a)):
//! a relay that kept a copy from its addressee for more than an hour while the
//! addressee took newer mail from it. Drops are `mail_not_relayed` (`verify/mail.rs`);
//! this is the delay within the copy's lifetime. Kept in its own file so the two
//! mail rules evolve apart.
//!
//! Why it names the relay alone (see ARCHITECTURE.md, mail section): while its
//! addressee N is connected, a relay R offers every copy it holds for N in every
//! poll, and since s36 it audits every failed hand-over of a relayed copy
//! (`hand_failed`, any neighbour, any failure), besides the signed refusals
//! (`hand_refused`) and bad answers (`rejected`, `bad_ack`). So when N signed its
//! acceptance of a copy C2 that R signed custody of after copy C, R's poll that sent
//! C2 also offered C to N, and that offer either succeeded (N's acceptance of C no
//! later than the request timeout plus the clock skews after) or failed and left an
//! event in R's log. A copy whose acceptance came later than that, with no such
//! event, no restart of R and no hour in which R's caps on those events were
//! reached, was held back by R. Every piece is signed: R's custody acks (in the
//! upstream's or its own log), N's acceptances (in R's log), R's checkpoints over
//! its own silence. R's unsigned events only ever clear R.

use super::mail::signed_answer;
use super::*;

/// How much longer than the custody a copy must have waited for its addressee's
/// acceptance before it is judged at all: an hour.
pub const DELAY_MIN_MS: u64 = 3_600_000;

/// How long after the addressee's signed acceptance of newer mail its acceptance of
/// the held copy may come from an honest relay: the poll that sent the newer copy
/// offered this one too, and the offer ends within the request timeout (120 s, plus
/// 10 s to open the stream) in an acceptance or an audited failure; the two
/// acceptances are signed by the addressee's clock, each within the clock skew of
/// the relay's (5 min: the relay audits one outside it as `bad_time`). That is
/// 12 min 10 s; 20 min leaves room for a busy relay's poll and store writer.
pub const DELAY_BOUND_MS: u64 = 20 * 60_000;

/// The most `hand_failed` events a relay audits per neighbour per hour (the
/// runtime's `HAND_FAILED_PER_NEIGHBOUR`).
pub const HAND_FAILED_LOGGED_PER_NEIGHBOUR: usize = 1024;

/// The most `hand_failed` events a relay audits per hour in all (the runtime's
/// `HAND_FAILED_PER_HOUR`).
pub const HAND_FAILED_LOGGED_PER_HOUR: usize = 4096;

/// The most `hand_refused` events a relay audits per neighbour per hour (the
/// runtime's `HAND_REFUSED_PER_NEIGHBOUR`).
pub const HAND_REFUSED_LOGGED_PER_NEIGHBOUR: usize = 1024;

/// How long a relay's audited failure or refusal of one item to one neighbour stands
/// for the same item's later ones (the runtime's `HAND_FAILED_LOG_EVERY` and
/// `HAND_REFUSED_LOG_EVERY`): an excusing event up to this long before the custody
/// still counts (it may have used the slot of a failure of this copy).
pub const EXCUSE_LOOKBACK_MS: u64 = 3_600_000;

const HOUR_MS: u64 = 3_600_000;

/// A relay node: its agency and its node's PeerId. An agency may run several nodes,
/// each with its own log and its own held mail: a copy one node held is judged
/// against acceptances in that node's log only.
type Node = (AgencyCode, String);

/// A copy at a relay node: (node, message id, item digest).
type CopyKey = (Node, String, [u8; 32]);

/// Merged spans, sorted, in which a relay's log may have left events out because it
/// had reached a cap: around every `cap` events within an hour (plus the clock skew),
/// from the last of them to an hour after the first (the runtime's hour of that cap
/// began no earlier than the first and ends within an hour of it), widened by the
/// skew (its hours run on the monotonic clock, its events on the wall clock).
fn saturated_spans(times: &mut [u64], cap: usize, skew: u64) -> Vec<(u64, u64)> {
    if cap == 0 || times.len() < cap {
        return Vec::new();
    }
    times.sort_unstable();
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for w in times.windows(cap) {
        let (Some(&first), Some(&last)) = (w.first(), w.last()) else {
            continue;
        };
        if last - first > HOUR_MS + skew {
            continue;
        }
        let span = (
            last.saturating_sub(skew),
            first.saturating_add(HOUR_MS + skew),
        );
        match spans.last_mut() {
            Some(prev) if span.0 <= prev.1 => prev.1 = prev.1.max(span.1),
            _ => spans.push(span),
        }
    }
    spans
}

/// Whether `[lo, hi]` meets one of the sorted, merged `spans`.
fn meets(spans: &[(u64, u64)], lo: u64, hi: u64) -> bool {
    let i = spans.partition_point(|(_, end)| *end < lo);
    spans.get(i).is_some_and(|(start, _)| *start <= hi)
}

/// Whether the sorted `times` hold one in `[lo, hi]`.
fn any_within(times: &[u64], lo: u64, hi: u64) -> bool {
    let i = times.partition_point(|t| *t < lo);
    times.get(i).is_some_and(|t| *t <= hi)
}

/// A segment tree over values with their positions: the largest value (and where)
/// in any range of positions, in O(log n), in 2n entries.
struct RangeMax {
    n: usize,
    tree: Vec<(u64, usize)>,
}

impl RangeMax {
    fn new(values: &[u64]) -> Self {
        let n = values.len();
        // Leaves at `n..2n`, each inner node `i` the larger of `2i` and `2i + 1`.
        let mut tree: Vec<(u64, usize)> = vec![(0, 0); n];
        tree.extend(values.iter().copied().zip(0..));
        for i in (1..n).rev() {
            let kids = tree.get(2 * i).copied().max(tree.get(2 * i + 1).copied());
            if let (Some(k), Some(slot)) = (kids, tree.get_mut(i)) {
                *slot = k;
            }
        }
        Self { n, tree }
    }

    /// The largest value in positions `[lo, hi)` and its position.
    fn max(&self, lo: usize, hi: usize) -> Option<(u64, usize)> {
        let (mut lo, mut hi) = (lo.min(self.n) + self.n, hi.min(self.n) + self.n);
        let mut best: Option<(u64, usize)> = None;
        while lo < hi {
            if lo % 2 == 1 {
                best = best.max(self.tree.get(lo).copied());
                lo += 1;
            }
            if hi % 2 == 1 {
                hi -= 1;
                best = best.max(self.tree.get(hi).copied());
            }
            lo /= 2;
            hi /= 2;
        }
        best
    }
}

/// One acceptance by a neighbour of a relayed copy from the relay, in the relay's
/// log: (its signed time, the relay's signed custody time of that copy, id, digest).
type Acceptance = (u64, u64, String, [u8; 32]);

/// A neighbour's signed acceptance in the relay's log: (signed time, id, digest).
type Accepted = (u64, String, [u8; 32]);

/// `mail_relay_delayed` (s36-delay, issue 21): a relay node R took custody of copy C
/// at `Tc` (its agency's valid signed `ok` custody ack, in its own `received`, or in
/// the upstream's `handed` when the roster lists one node for the agency; the
/// earliest), and C's signed addressee N signed its acceptance of C from R (in R's
/// log: `handed` with N's valid signed answer; the earliest) at
/// `Th > Tc + DELAY_MIN_MS`, while N signed its acceptance, in R's log, of another
/// relayed copy C2 from R at `T2`, with R's signed custody of C2 after `Tc + skew`
/// and `Tc + skew < T2 < Th - DELAY_BOUND_MS`. Not judged when R's log holds, within
/// `[Tc - skew - EXCUSE_LOOKBACK_MS, Th + skew]`, a `hand_failed`, `hand_refused` or
/// `rejected` (`bad_ack`) of C's id to N, or meets an hour in which it holds as many
/// `hand_failed` to N, `hand_failed` in all or `hand_refused` to N as the runtime
/// audits (its silence then is no evidence), or when R's log holds a
/// `node_started` within `[Tc - skew, Th + skew]` (it was down), or its latest
/// `node_started` before that does not name [`crate::event::MAIL_FAILURES_LOGGED`]
/// (an older build, which left most failures unlogged), or names the id as its
/// own message (`from` R: its own messages' failures are not audited).
/// Everything about R is read from that node's log (an agency's other node holds
/// its own mail). Against R's agency alone, unproven (see ARCHITECTURE.md, mail
/// section). Work: linear in the logs to gather, O(log n) per copy judged (sorted
/// acceptances, a segment tree of their custody times), memory linear in the logs.
pub(super) fn check_mail_delay(roster: &Roster, logs: &[Log<'_>], report: &mut Report) {
    let skew = wlnode_crypto::mail::MAX_CLOCK_SKEW_MS;
    // Copy -> (earliest signed `ok` custody time, signed addressee).
    let mut custody: HashMap<CopyKey, (u64, AgencyCode)> = HashMap::new();
    let mut take = |relay: Node, id: &str, a: &wlnode_crypto::mail::MailAck| {
        let b = a.body();
        let (Some(digest), Some(to)) = (b.item_digest, b.addressee.as_ref()) else {
            return;
        };
        if !a.accepted || a.reason != "ok" || *to == relay.0 {
            return;
        }
        let at = b.at.as_millis();
        custody
            .entry((relay, id.to_owned(), digest))
            .and_modify(|c| c.0 = c.0.min(at))
            .or_insert((at, to.clone()));
    };
    // (relay node, neighbour) -> acceptances in the node's log: (signed time, id,
    // digest).
    let mut accepted: HashMap<(Node, AgencyCode), Vec<Accepted>> = HashMap::new();
    // (relay node, neighbour, id) -> times of the node's excusing events.
    let mut excused: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    // Times of the node's `hand_failed` events: to one neighbour, in all; of its
    // `hand_refused` events to one neighbour; of its starts.
    let mut failed_to: HashMap<(Node, AgencyCode), Vec<u64>> = HashMap::new();
    let mut failed_all: HashMap<Node, Vec<u64>> = HashMap::new();
    let mut refused_to: HashMap<(Node, AgencyCode), Vec<u64>> = HashMap::new();
    let mut started: HashMap<Node, Vec<u64>> = HashMap::new();
    // Per node: (time, whether the build logs every failed hand-over) of each of
    // its starts.
    let mut runs: HashMap<Node, Vec<(u64, bool)>> = HashMap::new();
    // (relay node, id) its own log labels as its agency's own message.
    let mut own: std::collections::HashSet<(Node, String)> = Default::default();
    // The one node of an agency the roster lists a single node for: its custody
    // acks in other logs are that node's.
    let single_node = |a: &AgencyCode| -> Option<Node> {
        let m = roster.member(a)?;
        match m.node_ids.as_slice() {
            [one] => Some((a.clone(), one.clone())),
            _ => None,
        }
    };
    for l in logs.iter().filter(|l| l.usable) {
        let me = &l.export.agency;
        let node: Node = (me.clone(), l.export.peer_id.clone());
        for (index, e) in l.events.iter().filter(|(i, _)| *i < l.covered) {
            let EventKind::Mail {
                action,
                message_id,
                item,
                from,
                peer,
                reason,
                ack,
                ..
            } = &e.kind
            else {
                if let EventKind::NodeStarted { version } = &e.kind {
                    started.entry(node.clone()).or_default().push(e.at);
                    runs.entry(node.clone()).or_default().push((
                        e.at,
                        crate::event::version_has(version, crate::event::MAIL_FAILURES_LOGGED),
                    ));
                }
                continue;
            };
            if item != "message" {
                continue;
            }
            if from == me {
                own.insert((node.clone(), message_id.clone()));
            }
            let Some(p) = peer.as_ref().filter(|p| *p != me) else {
                continue;
            };
            match action.as_str() {
                // The relay's own signed custody ack.
                "received" => {
                    if let Some(a) =
                        signed_answer(roster, ack.as_deref(), p, me, message_id, l, *index)
                    {
                        take(node.clone(), message_id, &a);
                    }
                }
                // The neighbour's signed answer: its acceptance (in the relay's log)
                // and its own custody of the copy (evidence against it elsewhere).
                "handed" => {
                    let Some(a) =
                        signed_answer(roster, ack.as_deref(), me, p, message_id, l, *index)
                    else {
                        continue;
                    };
                    if !a.accepted {
                        continue;
                    }
                    if let Some(n) = single_node(p) {
                        take(n, message_id, &a);
                    }
                    if let Some(d) = a.body().item_digest {
                        accepted
                            .entry((node.clone(), p.clone()))
                            .or_default()
                            .push((a.body().at.as_millis(), message_id.clone(), d));
                    }
                }
                "hand_failed" | "hand_refused" => {
                    excused
                        .entry((node.clone(), p.clone(), message_id.clone()))
                        .or_default()
                        .push(e.at);
                    if action == "hand_failed" {
                        failed_to
                            .entry((node.clone(), p.clone()))
                            .or_default()
                            .push(e.at);
                        failed_all.entry(node.clone()).or_default().push(e.at);
                    } else {
                        refused_to
                            .entry((node.clone(), p.clone()))
                            .or_default()
                            .push(e.at);
                    }
                }
                "rejected" if reason.as_deref().is_some_and(|r| r.starts_with("bad_ack")) => {
                    excused
                        .entry((node.clone(), p.clone(), message_id.clone()))
                        .or_default()
                        .push(e.at);
                }
                _ => {}
            }
        }
    }
    for v in excused.values_mut().chain(started.values_mut()) {
        v.sort_unstable();
    }
    for v in runs.values_mut() {
        v.sort_unstable();
    }
    // Per (relay, neighbour): its acceptances of relayed copies the relay signed
    // custody of, by signed time, with a segment tree of those custody times; and
    // the earliest acceptance of each copy.
    let mut pairs: Vec<((Node, AgencyCode), Vec<Acceptance>)> = Vec::new();
    let mut first_accepted: HashMap<(AgencyCode, CopyKey), u64> = HashMap::new();
    for ((relay, n), list) in accepted {
        let mut with_custody: Vec<Acceptance> = Vec::new();
        for (at, id, digest) in list {
            let copy = (relay.clone(), id, digest);
            let first = first_accepted
                .entry((n.clone(), copy.clone()))
                .or_insert(at);
            *first = (*first).min(at);
            if let Some((tc, _)) = custody.get(&copy) {
                with_custody.push((at, *tc, copy.1, digest));
            }
        }
        with_custody.sort_unstable();
        pairs.push(((relay, n), with_custody));
    }
    let trees: HashMap<(Node, AgencyCode), (Vec<Acceptance>, RangeMax)> = pairs
        .into_iter()
        .map(|(k, list)| {
            let tree = RangeMax::new(&list.iter().map(|a| a.1).collect::<Vec<_>>());
            (k, (list, tree))
        })
        .collect();
    let mut saturated: HashMap<(Node, AgencyCode), Vec<(u64, u64)>> = HashMap::new();
    let mut saturated_all: HashMap<Node, Vec<(u64, u64)>> = HashMap::new();
    let mut copies: Vec<(&CopyKey, &(u64, AgencyCode))> = custody.iter().collect();
    copies.sort_unstable();
    for ((relay, id, digest), (tc, n)) in copies {
        let copy = (relay.clone(), id.clone(), *digest);
        let Some(th) = first_accepted.get(&(n.clone(), copy)).copied() else {
            continue;
        };
        if th <= tc.saturating_add(DELAY_MIN_MS) {
            continue;
        }
        let pair = (relay.clone(), n.clone());
        let Some((list, tree)) = trees.get(&pair) else {
            continue;
        };
        let (lo_t, hi_t) = (tc + skew, th.saturating_sub(DELAY_BOUND_MS));
        let lo = list.partition_point(|a| a.0 <= lo_t);
        let hi = list.partition_point(|a| a.0 < hi_t);
        let Some((tc2, at)) = tree.max(lo, hi).filter(|(tc2, _)| *tc2 > lo_t) else {
            continue;
        };
        let Some((t2, _, id2, digest2)) = list.get(at) else {
            continue;
        };
        // What clears the relay: its own word, never anyone's blame.
        let (win_lo, win_hi) = (
            tc.saturating_sub(skew + EXCUSE_LOOKBACK_MS),
            th.saturating_add(skew),
        );
        // The run the custody fell in must be of a build that logs every failed
        // hand-over (its latest start before the custody says so): an older
        // build's silence clears nobody (a rolling upgrade: auditors first).
        let logs_failures = runs.get(relay).is_some_and(|v| {
            let i = v.partition_point(|(at, _)| *at < tc.saturating_sub(skew));
            i.checked_sub(1)
                .and_then(|i| v.get(i))
                .is_some_and(|(_, marked)| *marked)
        });
        if !logs_failures
            || own.contains(&(relay.clone(), id.clone()))
            || excused
                .get(&(relay.clone(), n.clone(), id.clone()))
                .is_some_and(|v| any_within(v, win_lo, win_hi))
            || started
                .get(relay)
                .is_some_and(|v| any_within(v, tc.saturating_sub(skew), win_hi))
        {
            continue;
        }
        let spans = saturated.entry(pair.clone()).or_insert_with(|| {
            let mut f = failed_to.get(&pair).cloned().unwrap_or_default();
            let mut r = refused_to.get(&pair).cloned().unwrap_or_default();
            let mut s = saturated_spans(&mut f, HAND_FAILED_LOGGED_PER_NEIGHBOUR, skew);
            s.extend(saturated_spans(
                &mut r,
                HAND_REFUSED_LOGGED_PER_NEIGHBOUR,
                skew,
            ));
            s.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for span in s {
                match merged.last_mut() {
                    Some(prev) if span.0 <= prev.1 => prev.1 = prev.1.max(span.1),
                    _ => merged.push(span),
                }
            }
            merged
        });
        if meets(spans, win_lo, win_hi) {
            continue;
        }
        let all = saturated_all.entry(relay.clone()).or_insert_with(|| {
            let mut f = failed_all.get(relay).cloned().unwrap_or_default();
            saturated_spans(&mut f, HAND_FAILED_LOGGED_PER_HOUR, skew)
        });
        if meets(all, win_lo, win_hi) {
            continue;
        }
        let (agency, peer_id) = relay;
        report.violations.push(violation(
            "mail_relay_delayed",
            agency.as_str(),
            format!(
                "{agency} took custody of message {id} for {n} at {tc} and handed it to {n} only at \
                 {th} ({} min later), although {n} took newer mail from it at {t2}, and its log \
                 shows no failed or refused hand-over of the message to {n}, no restart and no \
                 hour at its caps in that time",
                (th - tc) / 60_000
            ),
            serde_json::json!({
                "message_id": id,
                "relay_node": peer_id,
                "item_digest": hex::encode(digest),
                "addressee": n.as_str(),
                "custody_at": tc,
                "accepted_at": th,
                "newer": {
                    "message_id": id2,
                    "item_digest": hex::encode(digest2),
                    "custody_at": tc2,
                    "accepted_at": t2,
                },
                "bound_ms": DELAY_BOUND_MS,
            }),
        ));
    }
}

#[cfg(test)]
#[path = "mail_delay_tests.rs"]
mod tests;
