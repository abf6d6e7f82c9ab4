//! The `mail_relay_delayed` check of an audit (issue 21, "a node that drops or
//! delays messages it should relay shows up in the audit"; s36-delay, option (a)):
//! a relay that kept a copy from its addressee for more than an hour while the
//! addressee took newer mail from it. Drops are `mail_not_relayed` (`verify/mail.rs`);
//! this is the delay within the copy's lifetime. Kept in its own file so the two
//! mail rules evolve apart.
//!
//! Why it names the relay alone (see ARCHITECTURE.md, mail section): while its
//! addressee N is connected, a relay R offers every copy it holds for N in every
//! poll, unless a hand-over of it to N is in flight, failed, or N offered it back
//! (both wait at most one retry, 5 min), or the connection's streams to N are full
//! (since s37 it then offers N the oldest 64 due copies a round, rounds 1 s to
//! 30 s apart, and audits each
//! copy it holds back as `hand_failed` `stream`: while it waits there, no newer copy
//! goes first), and since s36 it audits every failed
//! hand-over of a relayed copy (`hand_failed`, any neighbour, any failure), besides
//! the signed refusals (`hand_refused`), bad answers (`rejected`, `bad_ack`) and N's
//! signed offers (`offered`). So when N signed its acceptance of a copy C2 that R
//! signed custody of after copy C, or of any copy at least
//! [`POLL_AFTER_CUSTODY_MS`] after C's custody (s37-relay: a relay delaying all
//! mail evenly keeps the order), R's poll near that time held C, and C's offer
//! then either succeeded (N's acceptance of C no later than [`DELAY_BOUND_MS`]
//! after) or left an event in R's log near that time. A copy whose acceptance came
//! later than that, with no such event near a newer acceptance, no restart before
//! it and no hour in which R's caps on those events were reached, was held back by
//! R. Every piece is signed: R's custody acks (in its own log), N's acceptances (in
//! R's log), R's checkpoints over its own silence. R's unsigned events clear R
//! alone; when they are all that explains the delay (any `hand_failed`, a
//! `rejected` `bad_ack`: only a `hand_refused` carries N's signature), over two
//! hours, and N's own log explains nothing, the finding names the pair R->N.

use super::mail::signed_answer;
use super::*;

/// How much longer than the custody a copy must have waited for its addressee's
/// acceptance before it is judged at all: an hour.
pub const DELAY_MIN_MS: u64 = 3_600_000;

/// The longest a relay keeps a copy from a connected neighbour between two tries
/// (the sync mailer's `MailLimits::retry_max_ms`, a constant of the code, not of
/// the configuration): after a failed hand-over, and after the neighbour offered the
/// copy back itself (`Intake::Seen` marks it handed to that neighbour until the next
/// retry).
pub const RETRY_MAX_MS: u64 = 5 * 60_000;

/// The longest a hand-over request lasts: the request timeout (120 s) plus 10 s to
/// open the stream. It ends in the neighbour's signed answer or an audited failure.
pub const REQUEST_MAX_MS: u64 = 130_000;

/// How long after the addressee's signed acceptance of newer mail its acceptance of
/// the held copy may come from an honest relay. The poll that sent the newer copy
/// either offered this one too, or found it in flight (a request of at most
/// [`REQUEST_MAX_MS`]), or waiting for its retry (at most [`RETRY_MAX_MS`]) after an
/// audited failure or an offer of it by the addressee itself (audited `offered`, the
/// addressee's signed word); each offer ends within [`REQUEST_MAX_MS`] in an
/// acceptance or an audited failure. The two acceptances are signed by the
/// addressee's clock, each within the clock skew (5 min) of the relay's (the relay
/// audits one outside it as `bad_time`). That is 5 min + 2 min 10 s + 10 min =
/// 17 min 10 s; 30 min leaves nearly 13 min for a busy relay's poll tick, event loop
/// and store writer (review s36-delay M1: the retry delay enters, the first bound of
/// 20 min left under 3 min).
pub const DELAY_BOUND_MS: u64 = 30 * 60_000;

/// How long before the addressee's signed acceptance `T2` of newer mail a relay's
/// excusing event of the held copy (a failure, a refusal, a bad answer) still
/// explains why the poll near `T2` did not hand the copy over (review s36-delay M4):
/// that poll ran no earlier than `T2` minus the skew and [`REQUEST_MAX_MS`]; the copy
/// then waited at most [`RETRY_MAX_MS`] since a failure; the failure was audited
/// then, or its per-item hourly slot was used by an event of the same copy at most
/// an hour before. 1 h + 5 min + 2 min 10 s + 5 min = 1 h 12 min 10 s, rounded up to
/// 1 h 15 min for the poll tick. (The lead's estimate was about 1 h 7 min, one hour
/// plus the skew; the retry wait and the request come on top.) After `T2` an event
/// counts up to the bound plus the skew: the poll's own offer ends by then. So a
/// relay that lies about failures must write one false event per copy for every
/// hour and a quarter of delay.
pub const EXCUSE_BEFORE_T2_MS: u64 = 75 * 60_000;

// The bound and the excuse window cover what they are derived from.
const _: () = assert!(
    RETRY_MAX_MS + REQUEST_MAX_MS + 2 * wlnode_crypto::mail::MAX_CLOCK_SKEW_MS + 10 * 60_000
        <= DELAY_BOUND_MS
);
const _: () = assert!(
    HOUR_MS + RETRY_MAX_MS + REQUEST_MAX_MS + wlnode_crypto::mail::MAX_CLOCK_SKEW_MS
        <= EXCUSE_BEFORE_T2_MS
);

/// How long after the held copy's custody (or the relay's last restart) the
/// addressee's signed acceptance of ANY copy from the relay, older ones too, shows
/// a poll of the relay that already held the copy (s37-relay, issue 21: a relay
/// delaying all mail to its addressee evenly keeps the order, so no NEWER copy is
/// ever accepted first). The relay's mailer takes the copy into its held map
/// (`Mailer::take_custody`) before its runtime signs the custody ack
/// (`respond_after`, after `on_item`, with a fresh clock reading), so the custody's
/// signed time is after the copy entered the map; the store write only delays the
/// answer, not the map (`spawn_writer`). Every hand-over is sent by a poll
/// (`mail_poll`) at `tp`; the addressee's acceptance is logged only when the relay
/// read it within the skew of its signed time `T2` (else `bad_time`), at most
/// [`REQUEST_MAX_MS`] after the request's timer started, plus the lag between the
/// poll and that start (the net command queue, a dial, the stream's setup: review
/// s37-relay L2) and the relay's event loop reading the answer: `T2 <= tp + skew +
/// REQUEST_MAX_MS + lag`. So `T2 > Tc + skew + REQUEST_MAX_MS + lag` puts `tp`
/// after the custody: that poll held the copy, and offered it too (or it was in
/// flight, failed or offered back, as for a newer copy). 5 min + 2 min 10 s + 10
/// min of lag (the margin [`DELAY_BOUND_MS`] leaves a busy relay too) is 17 min
/// 10 s, rounded up to 20 min.
pub const POLL_AFTER_CUSTODY_MS: u64 = 20 * 60_000;

const _: () = assert!(
    wlnode_crypto::mail::MAX_CLOCK_SKEW_MS + REQUEST_MAX_MS + 10 * 60_000 <= POLL_AFTER_CUSTODY_MS
);

/// The mail protocol's streams per connection (`with_max_concurrent_streams(64)`
/// in `net/src/lib.rs`, inbound and outbound together): past them a hand-over fails
/// at once as `stream`. An honest relay fails a copy with `stream` only while that
/// many hand-overs with the addressee were open, in either direction (s37-relay),
/// or holds it back as `stream` in the rounds that follow such a failure (s37-busy:
/// the oldest due copies go in rounds, the rest wait; a copy held back at rounds
/// for hours needs older copies due at every round, and those that get a stream
/// end in an event of the addressee's log, while those that find the streams full
/// again leave none: then the streams are held by slow hand-overs that do, or by
/// the addressee's own requests, which it logs: final review of s37 L2, runtime L4).
pub const MAIL_STREAMS: usize = 64;

/// How far from a relay's `stream` failure the ends of the hand-overs that filled
/// the streams then are looked for: each ended within [`REQUEST_MAX_MS`], dated by
/// the relay's or the addressee's clock (within the skew) after the relay's loop
/// lag; the bound's 30 min covers that.
pub const STREAM_TRACE_MS: u64 = DELAY_BOUND_MS;

const _: () = assert!(
    REQUEST_MAX_MS + 2 * wlnode_crypto::mail::MAX_CLOCK_SKEW_MS + 10 * 60_000 <= STREAM_TRACE_MS
);

/// How long before the custody (less the skew) an `offered` of the held copy by its
/// addressee still counts: a relay audits a neighbour's signed offer of one item
/// once a day (the runtime's `OFFER_LOG_EVERY`, on the monotonic clock), and the
/// offer that kept the copy from the poll near `T2` came at most a retry (5 min)
/// before that poll, itself at most 130 s plus the skew before `T2`. A day and an
/// hour: the offer is the addressee's signature, so a wide window only clears.
pub const OFFER_LOOKBACK_MS: u64 = 25 * 3_600_000;

/// The most `offered` events a relay audits per neighbour per hour (the runtime's
/// `OFFERS_PER_NEIGHBOUR`).
pub const OFFERS_LOGGED_PER_NEIGHBOUR: usize = 1024;

/// The most `hand_failed` events a relay audits per neighbour per hour (the
/// runtime's `HAND_FAILED_PER_NEIGHBOUR`).
pub const HAND_FAILED_LOGGED_PER_NEIGHBOUR: usize = 1024;

/// The most `hand_failed` events a relay audits per hour in all (the runtime's
/// `HAND_FAILED_PER_HOUR`).
pub const HAND_FAILED_LOGGED_PER_HOUR: usize = 4096;

/// The most `hand_refused` events a relay audits per neighbour per hour (the
/// runtime's `HAND_REFUSED_PER_NEIGHBOUR`).
pub const HAND_REFUSED_LOGGED_PER_NEIGHBOUR: usize = 1024;

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

/// The acceptances of one (relay node, neighbour) pair sorted by signed time, with
/// a segment tree of their custody times.
struct Pair {
    list: Vec<Acceptance>,
    tree: RangeMax,
}

impl Pair {
    /// The largest custody time (and its position) of an acceptance signed in the
    /// open interval `(lo, hi)`.
    fn max_in(&self, lo: u64, hi: u64) -> Option<(u64, usize)> {
        let l = self.list.partition_point(|a| a.0 <= lo);
        let h = self.list.partition_point(|a| a.0 < hi);
        self.tree.max(l, h)
    }
}

/// The times a relay's excusing events of one id to one neighbour cover (review
/// s36-delay M4): an acceptance of newer mail signed at `T2` is explained by an
/// event at `e` when `T2 - DELAY_BOUND_MS - skew <= e <= T2 + EXCUSE_BEFORE_T2_MS`,
/// i.e. `T2` in `[e - DELAY_BOUND_MS - skew, e + EXCUSE_BEFORE_T2_MS]`. Merged
/// closed intervals, and per gap between them (gap `j` lies before interval `j`,
/// the last after the last) the largest custody time of an acceptance in it, in a
/// segment tree: a copy's query costs O(log n) whatever the number of events.
struct Cover {
    intervals: Vec<(u64, u64)>,
    gaps: RangeMax,
    /// Per gap: the position in the pair's list of its largest custody time.
    best: Vec<usize>,
}

impl Cover {
    fn new(excuses: &[u64], pair: &Pair, skew: u64) -> Self {
        let mut intervals: Vec<(u64, u64)> = Vec::new();
        for &e in excuses {
            let iv = (
                e.saturating_sub(DELAY_BOUND_MS + skew),
                e.saturating_add(EXCUSE_BEFORE_T2_MS),
            );
            match intervals.last_mut() {
                Some(prev) if iv.0 <= prev.1 => prev.1 = prev.1.max(iv.1),
                _ => intervals.push(iv),
            }
        }
        let (mut values, mut best) = (Vec::new(), Vec::new());
        for j in 0..=intervals.len() {
            let lo = j
                .checked_sub(1)
                .and_then(|i| intervals.get(i))
                .map_or(0, |iv| iv.1);
            let hi = intervals.get(j).map_or(u64::MAX, |iv| iv.0);
            // A gap's value is its largest custody time plus one, 0 for a gap with
            // no acceptance (s37-relay: the rule by time asks whether any is there).
            let (v, at) = pair
                .max_in(lo, hi)
                .map_or((0, 0), |(v, at)| (v.saturating_add(1), at));
            values.push(v);
            best.push(at);
        }
        Self {
            gaps: RangeMax::new(&values),
            intervals,
            best,
        }
    }

    /// The largest custody time (and its position in the pair's list) of an
    /// acceptance signed in `(lo, hi)` that no excuse covers.
    fn uncovered_max(&self, pair: &Pair, lo: u64, hi: u64) -> Option<(u64, usize)> {
        // Gap j is (end of interval j-1, start of interval j); those meeting (lo, hi).
        let first = self.intervals.partition_point(|iv| iv.0 <= lo);
        let last = self.intervals.partition_point(|iv| iv.1 < hi);
        if first > last {
            return None;
        }
        let clip = |j: usize| {
            let a = j
                .checked_sub(1)
                .and_then(|i| self.intervals.get(i))
                .map_or(0, |iv| iv.1);
            let b = self.intervals.get(j).map_or(u64::MAX, |iv| iv.0);
            pair.max_in(a.max(lo), b.min(hi))
        };
        let mut found = clip(first).max(clip(last));
        if last > first + 1
            && let Some((v, j)) = self.gaps.max(first + 1, last)
            && v > 0
            && let Some(&at) = self.best.get(j)
        {
            found = found.max(Some((v - 1, at)));
        }
        found
    }
}

/// Keeps, of each key's sorted times, only those at least an hour (less the skew)
/// after the last one kept: the runtime audits one item to one neighbour at most
/// once an hour, so only distinct items count toward its caps (review s36-delay M3:
/// repeats of one id must not fake a saturated hour).
fn distinct_hourly<K>(raw: &mut HashMap<K, Vec<u64>>, skew: u64) {
    for times in raw.values_mut() {
        times.sort_unstable();
        let mut last: Option<u64> = None;
        times.retain(|&t| {
            let keep = last.is_none_or(|l| t >= l.saturating_add(HOUR_MS - skew));
            if keep {
                last = Some(t);
            }
            keep
        });
    }
}

/// The times of `raw`, gathered per `group` of their keys.
fn grouped<K, G: std::hash::Hash + Eq>(
    raw: &HashMap<K, Vec<u64>>,
    group: impl Fn(&K) -> G,
) -> HashMap<G, Vec<u64>> {
    let mut out: HashMap<G, Vec<u64>> = HashMap::new();
    for (k, times) in raw {
        out.entry(group(k)).or_default().extend_from_slice(times);
    }
    out
}

/// Merged saturated spans of several caps over one list each.
fn saturated_union(lists: &mut [(Vec<u64>, usize)], skew: u64) -> Vec<(u64, u64)> {
    let mut s: Vec<(u64, u64)> = Vec::new();
    for (times, cap) in lists.iter_mut() {
        s.extend(saturated_spans(times, *cap, skew));
    }
    s.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for span in s {
        match merged.last_mut() {
            Some(prev) if span.0 <= prev.1 => prev.1 = prev.1.max(span.1),
            _ => merged.push(span),
        }
    }
    merged
}

/// Of a relay's sorted `stream` failures of one copy to one neighbour, those at
/// which the streams between them may have been full (s37-relay): an honest relay
/// fails a hand-over with `stream` only while [`MAIL_STREAMS`] hand-overs with that
/// neighbour are open, either way, and it takes slow ones to keep them open. (A
/// duplicate or a refusal is answered after the neighbour's store writer too, and
/// the neighbour logs a refusal once a minute: a slow neighbour store whose traffic
/// from the relay is mostly copies it holds already keeps the streams full with few
/// events counted here, and the pair is then named with the neighbour at fault;
/// final review of s37 M1.) Each slow one ends within [`REQUEST_MAX_MS`] in
/// an event of the NEIGHBOUR's log with the relay (`received` or `delivered` of
/// what it took, `offered` of an item the first time in a day, `handed`,
/// `hand_failed` or `hand_refused` of its own requests to the relay; not its
/// `rejected` refusals, which end at once), or the neighbour never answered it,
/// which is its own failure. So a failure at `e` is
/// kept when the neighbour's logs (`events`: their sorted times with the relay)
/// hold [`MAIL_STREAMS`] events within `[e - 1 h - STREAM_TRACE_MS, e +
/// STREAM_TRACE_MS]`. Only the neighbour's logs count (review s37-relay M1: the
/// relay's own events, and a `rejected` it could make the neighbour log by
/// resending it a message it holds, switched the trace on at will). O(log n) per
/// failure.
fn full_streams(failures: &[u64], events: &[u64]) -> Vec<u64> {
    let count = |v: &[u64], lo: u64, hi: u64| {
        v.partition_point(|t| *t <= hi)
            .saturating_sub(v.partition_point(|t| *t < lo))
    };
    failures
        .iter()
        .copied()
        .filter(|&e| {
            let (lo, hi) = (
                e.saturating_sub(HOUR_MS + STREAM_TRACE_MS),
                e.saturating_add(STREAM_TRACE_MS),
            );
            count(events, lo, hi) >= MAIL_STREAMS
        })
        .collect()
}

/// How near a relay's `unsigned_refusal` failure of a copy the addressee's log
/// must hold an item from the relay it could not read (`rejected`, no message id)
/// for the two to be one event (review s37-relay M1): the request's time, the
/// clock skew, and a minute for the addressee's once-a-minute audit of such
/// refusals.
pub const UNREADABLE_NEAR_MS: u64 =
    REQUEST_MAX_MS + wlnode_crypto::mail::MAX_CLOCK_SKEW_MS + 60_000;

/// `mail_relay_delayed` (s36-delay, issue 21): a relay node R took custody of copy C
/// at `Tc` (its agency's valid signed `ok` custody ack in the node's own `received`;
/// the earliest), and C's signed addressee N signed its acceptance of C from R (in
/// R's log: `handed` with N's valid signed answer; the earliest) at
/// `Th > Tc + DELAY_MIN_MS`, while N signed its acceptance, in R's log, of another
/// relayed copy C2 from R at `T2`, with R's signed custody of C2 after `Tc + skew`
/// and `max(Tc, last restart of R in [Tc - skew, Th + skew]) + skew < T2 < Th -
/// DELAY_BOUND_MS` (a restart explains only the delay before it), or, whatever C2's
/// custody (s37-relay: an even delay of all mail), `max(Tc, that restart) +
/// POLL_AFTER_CUSTODY_MS < T2 < Th - DELAY_BOUND_MS`, and no excusing
/// event of C's id to N in R's log within `[T2 - DELAY_BOUND_MS - skew, T2 +
/// EXCUSE_BEFORE_T2_MS]` (`hand_failed`, `hand_refused` with N's valid signed
/// refusal, `rejected` `bad_ack`: R's own word, tied to the time it explains). Not
/// judged when R's log holds N's valid signed offer of C's id (`offered`) within
/// `[Tc - skew - OFFER_LOOKBACK_MS, Th + skew]` (N offered it back: R's mailer then
/// counts it as N's), or meets an hour in which it holds as many `hand_failed` to N,
/// `hand_failed` to roster members in all, `hand_refused` to N or `offered` by N as
/// the runtime audits (distinct ids; its silence then is no evidence), or when R's
/// run at `T2` (its last start before) does not name
/// [`crate::event::MAIL_FAILURES_LOGGED`] (an older build, which left most failures
/// unlogged: counted in the node's summary, never a finding), or R's log names the
/// id as its own message (`from` R: its own messages' failures are not audited).
/// When every such `T2` is covered, but only by R's own word, its `hand_failed`
/// (any reason) and `rejected` `bad_ack` events of C to N (no `hand_refused` with
/// N's signed refusal within `[Tc - skew - EXCUSE_BEFORE_T2_MS, Th + skew]`), in
/// two separate hours (two at least an hour less the skew apart), and a usable log
/// of every node the roster lists for N (and no other of N's; review s37-relay H2),
/// each reaching `Th + skew`, holds no `offered` of C's id by R within `[Tc - skew -
/// OFFER_LOOKBACK_MS, Th - REQUEST_MAX_MS]` (review s37-relay H1: the offer of the
/// hand-over N accepted at `Th` is logged just before it), no start within `[Tc - skew, Th + skew]`, no hour at its offer cap for R and no
/// `rejected` item from R it could not read (no message id: an honest N on another
/// build) within [`UNREADABLE_NEAR_MS`] of one of R's `unsigned_refusal` failures of
/// C in the window, and none of R's `stream` failures of C there came when N's logs
/// show the streams between them could have been full ([`full_streams`]),
/// the pair `R->N` is named instead, unproven, the relay's events marked as its own
/// word (review s36-delay M4; s37-relay: before, only `timeout`/`unsupported` made
/// the pair and every other reason cleared R for good); never N alone.
/// Everything about R is read from that node's log (an agency's other node, or a
/// node retired since, holds its own mail: an upstream's ack of R's agency is not
/// used, review s36-delay M2). Against R's agency alone, unproven (see
/// ARCHITECTURE.md, mail section). Work: linear in the logs to gather, O(log n) per
/// copy judged and per excusing event (sorted acceptances, segment trees of their
/// custody times), memory linear in the logs.
pub(super) fn check_mail_delay(roster: &Roster, logs: &[Log<'_>], report: &mut Report) {
    let skew = wlnode_crypto::mail::MAX_CLOCK_SKEW_MS;
    // Copy -> (earliest signed `ok` custody time in the node's own log, addressee).
    let mut custody: HashMap<CopyKey, (u64, AgencyCode)> = HashMap::new();
    // (relay node, neighbour) -> acceptances in the node's log.
    let mut accepted: HashMap<(Node, AgencyCode), Vec<Accepted>> = HashMap::new();
    // (relay node, neighbour, id) -> times of the node's excusing events.
    let mut excused: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    // (relay node, neighbour, id) -> times of its excusing events that carry the
    // neighbour's signature (`hand_refused`), of those that are its own word alone
    // (`hand_failed` for any reason, `rejected` `bad_ack`: the pair rule), and of
    // its `stream` failures among them.
    let mut strong: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    let mut weak: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    let mut streamed: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    // Its `unsigned_refusal` failures (an anonymous answer: review s37-relay M1).
    let mut anonymous: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    // (keeping agency, neighbour) -> times of its `mail` events with that neighbour
    // but refusals, and of its `rejected` events naming no message (an item that did
    // not decode): the traces of full streams (s37-relay).
    let mut busy: HashMap<(AgencyCode, AgencyCode), Vec<u64>> = HashMap::new();
    let mut unreadable: HashMap<(AgencyCode, AgencyCode), Vec<u64>> = HashMap::new();
    // Per keeping agency: (offering agency, id) of every `offered` event in its
    // logs; its starts; its usable logs (node, earliest and latest covered event
    // time); the ids it took from a neighbour (`received`/`delivered`, by agency
    // and neighbour); the agencies some log of which was handed in but is not usable.
    let mut kept_offers: HashMap<(AgencyCode, AgencyCode, String), Vec<u64>> = HashMap::new();
    let mut agency_starts: HashMap<AgencyCode, Vec<u64>> = HashMap::new();
    let mut agency_logs: HashMap<AgencyCode, Vec<(Node, u64, u64)>> = HashMap::new();
    let mut took_from: std::collections::HashSet<(AgencyCode, AgencyCode, String)> =
        Default::default();
    let unusable: std::collections::HashSet<&AgencyCode> = logs
        .iter()
        .filter(|l| !l.usable)
        .map(|l| &l.export.agency)
        .collect();
    // (relay node, neighbour, id) -> times of the neighbour's valid signed offers.
    let mut offered: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    // Raw times toward the caps, per (node, roster member, id or digest, kind).
    let mut capped: HashMap<(Node, AgencyCode, String, &'static str), Vec<u64>> = HashMap::new();
    // Per node: (time, whether the build logs every failed hand-over) of each of
    // its starts.
    let mut runs: HashMap<Node, Vec<(u64, bool)>> = HashMap::new();
    // (relay node, id) its own log labels as its agency's own message.
    let mut own: std::collections::HashSet<(Node, String)> = Default::default();
    for l in logs.iter().filter(|l| l.usable) {
        let me = &l.export.agency;
        let node: Node = (me.clone(), l.export.peer_id.clone());
        let (earliest, latest) = l
            .events
            .iter()
            .filter(|(i, _)| *i < l.covered)
            .fold((u64::MAX, 0), |(lo, hi), (_, e)| {
                (lo.min(e.at), hi.max(e.at))
            });
        agency_logs
            .entry(me.clone())
            .or_default()
            .push((node.clone(), earliest, latest));
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
                    agency_starts.entry(me.clone()).or_default().push(e.at);
                    runs.entry(node.clone()).or_default().push((
                        e.at,
                        crate::event::version_has(version, crate::event::MAIL_FAILURES_LOGGED),
                    ));
                }
                continue;
            };
            // Every mail event with a neighbour, either way, any item (s37-relay:
            // the traces of a full set of streams, read from the addressee's side
            // only), but refusals: a relay can make its neighbour log one a minute by
            // sending junk (review s37-relay M1); and the items from it this node
            // could not read.
            if let Some(p) = peer.as_ref().filter(|p| *p != me) {
                let pair = (me.clone(), p.clone());
                if action != "rejected" {
                    busy.entry(pair).or_default().push(e.at);
                } else if message_id.is_empty() {
                    unreadable.entry(pair).or_default().push(e.at);
                }
            }
            if item != "message" {
                continue;
            }
            if from == me {
                own.insert((node.clone(), message_id.clone()));
            }
            let Some(p) = peer.as_ref().filter(|p| *p != me) else {
                continue;
            };
            let member = roster.member(p).is_some();
            let key = (node.clone(), p.clone(), message_id.clone());
            if matches!(action.as_str(), "received" | "delivered") {
                took_from.insert((me.clone(), p.clone(), message_id.clone()));
            }
            match action.as_str() {
                // The relay's own signed custody ack.
                "received" => {
                    let Some(a) =
                        signed_answer(roster, ack.as_deref(), p, me, message_id, l, *index)
                    else {
                        continue;
                    };
                    let b = a.body();
                    let (Some(digest), Some(to)) = (b.item_digest, b.addressee.as_ref()) else {
                        continue;
                    };
                    if !a.accepted || a.reason != "ok" || to == me {
                        continue;
                    }
                    let at = b.at.as_millis();
                    custody
                        .entry((node.clone(), message_id.clone(), digest))
                        .and_modify(|c| c.0 = c.0.min(at))
                        .or_insert((at, to.clone()));
                }
                // The neighbour's signed acceptance, in the relay's log.
                "handed" => {
                    let Some(a) =
                        signed_answer(roster, ack.as_deref(), me, p, message_id, l, *index)
                    else {
                        continue;
                    };
                    if let (true, Some(d)) = (a.accepted, a.body().item_digest) {
                        accepted
                            .entry((node.clone(), p.clone()))
                            .or_default()
                            .push((a.body().at.as_millis(), message_id.clone(), d));
                    }
                }
                // The relay's own word, whatever the reason (s37-relay): it clears
                // the relay alone, and leaves the pair rule open.
                "hand_failed" => {
                    if reason.as_deref() == Some("stream") {
                        streamed.entry(key.clone()).or_default().push(e.at);
                    }
                    if reason.as_deref() == Some("unsigned_refusal") {
                        anonymous.entry(key.clone()).or_default().push(e.at);
                    }
                    weak.entry(key.clone()).or_default().push(e.at);
                    excused.entry(key).or_default().push(e.at);
                    if member {
                        capped
                            .entry((node.clone(), p.clone(), message_id.clone(), "failed"))
                            .or_default()
                            .push(e.at);
                    }
                }
                "hand_refused" => {
                    // Only with the neighbour's valid signed refusal (review
                    // s36-delay M3): the relay cannot make one up.
                    if signed_answer(roster, ack.as_deref(), me, p, message_id, l, *index)
                        .is_some_and(|a| !a.accepted)
                    {
                        strong.entry(key.clone()).or_default().push(e.at);
                        excused.entry(key).or_default().push(e.at);
                    }
                    if member {
                        capped
                            .entry((node.clone(), p.clone(), message_id.clone(), "refused"))
                            .or_default()
                            .push(e.at);
                    }
                }
                "rejected" if reason.as_deref().is_some_and(|r| r.starts_with("bad_ack")) => {
                    weak.entry(key.clone()).or_default().push(e.at);
                    excused.entry(key).or_default().push(e.at);
                }
                // The neighbour's own signed offer of the copy to the relay.
                "offered" => {
                    kept_offers
                        .entry((me.clone(), p.clone(), message_id.clone()))
                        .or_default()
                        .push(e.at);
                    let Some(o) = ack
                        .as_deref()
                        .and_then(|a| wlnode_crypto::mail::HandoverOffer::from_hex(a).ok())
                    else {
                        continue;
                    };
                    // Toward the offer cap: any offer the neighbour signed (a key
                    // revoked since included: the relay audited it then).
                    let checked =
                        || Some(o.verify_as_evidence(roster, p).ok()?.map(|t| t.as_millis()));
                    if l.signature(*index, p, checked).is_some() {
                        let d = hex::encode(o.body().item_digest);
                        capped
                            .entry((node.clone(), p.clone(), d, "offered"))
                            .or_default()
                            .push(e.at);
                    }
                    if super::mail::signed_offer(
                        roster,
                        ack.as_deref().unwrap_or(""),
                        p,
                        me,
                        message_id,
                        l,
                        *index,
                    )
                    .is_some()
                    {
                        offered.entry(key).or_default().push(e.at);
                    }
                }
                _ => {}
            }
        }
    }
    for v in excused
        .values_mut()
        .chain(offered.values_mut())
        .chain(strong.values_mut())
        .chain(weak.values_mut())
        .chain(streamed.values_mut())
        .chain(anonymous.values_mut())
        .chain(busy.values_mut())
        .chain(unreadable.values_mut())
        .chain(kept_offers.values_mut())
        .chain(agency_starts.values_mut())
    {
        v.sort_unstable();
    }
    for v in runs.values_mut() {
        v.sort_unstable();
    }
    // Toward the caps: distinct items an hour, to roster members only (review
    // s36-delay M3).
    let (mut failed_raw, mut refused_raw, mut offers_raw) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    for ((node, p, id, kind), times) in capped {
        let dest = match kind {
            "failed" => &mut failed_raw,
            "refused" => &mut refused_raw,
            _ => &mut offers_raw,
        };
        dest.insert((node, p, id), times);
    }
    for raw in [&mut failed_raw, &mut refused_raw, &mut offers_raw] {
        distinct_hourly(raw, skew);
    }
    let by_pair = |k: &(Node, AgencyCode, String)| (k.0.clone(), k.1.clone());
    let failed_all = grouped(&failed_raw, |k: &(Node, AgencyCode, String)| k.0.clone());
    let failed_to = grouped(&failed_raw, by_pair);
    let refused_to = grouped(&refused_raw, by_pair);
    let offers_to = grouped(&offers_raw, by_pair);
    // Per (relay, neighbour): its acceptances of relayed copies the relay signed
    // custody of, by signed time, with a segment tree of those custody times; and
    // the earliest acceptance of each copy.
    let mut first_accepted: HashMap<(AgencyCode, CopyKey), u64> = HashMap::new();
    let mut pairs: HashMap<(Node, AgencyCode), Pair> = HashMap::new();
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
        let tree = RangeMax::new(&with_custody.iter().map(|a| a.1).collect::<Vec<_>>());
        pairs.insert(
            (relay, n),
            Pair {
                list: with_custody,
                tree,
            },
        );
    }
    let mut covers: HashMap<(Node, AgencyCode, String), Cover> = HashMap::new();
    let mut saturated: HashMap<(Node, AgencyCode), Vec<(u64, u64)>> = HashMap::new();
    let mut saturated_all: HashMap<Node, Vec<(u64, u64)>> = HashMap::new();
    let mut older_build: HashMap<Node, u64> = HashMap::new();
    // The addressee's hours at its offer cap for the relay (the pair rule).
    let mut offer_sat: HashMap<(Node, AgencyCode), Vec<(u64, u64)>> = HashMap::new();
    // Per (relay node, neighbour, id): the times of its `stream` failures when the
    // addressee's logs show the streams could have been full (the pair rule).
    let mut stream_traced: HashMap<(Node, AgencyCode, String), Vec<u64>> = HashMap::new();
    let mut copies: Vec<(&CopyKey, &(u64, AgencyCode))> = custody.iter().collect();
    copies.sort_unstable();
    for ((relay, id, digest), (tc, n)) in copies {
        let tc = *tc;
        let copy = (relay.clone(), id.clone(), *digest);
        let Some(th) = first_accepted.get(&(n.clone(), copy)).copied() else {
            continue;
        };
        if th <= tc.saturating_add(DELAY_MIN_MS) || own.contains(&(relay.clone(), id.clone())) {
            continue;
        }
        let pair_key = (relay.clone(), n.clone());
        let Some(pair) = pairs.get(&pair_key) else {
            continue;
        };
        let (win_lo, win_hi) = (tc.saturating_sub(skew), th.saturating_add(skew));
        // The relay's last start in the window: it explains only the delay before
        // it (review s36-delay M3: held copies survive a restart, the first poll
        // after it offers them again). The run judged is the one from that start,
        // or the one the custody fell in.
        let starts = runs.get(relay).map(Vec::as_slice).unwrap_or_default();
        let upto = starts.partition_point(|(at, _)| *at <= win_hi);
        let run = upto.checked_sub(1).and_then(|i| starts.get(i));
        let restart = run.map(|r| r.0).filter(|at| *at >= win_lo);
        let run = match restart {
            Some(_) => run,
            None => starts
                .partition_point(|(at, _)| *at < win_lo)
                .checked_sub(1)
                .and_then(|i| starts.get(i)),
        };
        if !run.is_some_and(|(_, marked)| *marked) {
            // An older build's silence clears nobody, and is no finding either
            // (a rolling upgrade: auditors first): counted in the node's summary.
            *older_build.entry(relay.clone()).or_default() += 1;
            continue;
        }
        let key = (relay.clone(), n.clone(), id.clone());
        if offered
            .get(&key)
            .is_some_and(|v| any_within(v, win_lo.saturating_sub(OFFER_LOOKBACK_MS), win_hi))
        {
            continue;
        }
        let from = tc.max(restart.unwrap_or(0));
        let (lo_t, hi_t) = (from.saturating_add(skew), th.saturating_sub(DELAY_BOUND_MS));
        if lo_t >= hi_t {
            continue;
        }
        // s37-relay: an acceptance of any copy, older ones too, this long after the
        // custody (and the last restart) came from a poll that held the copy.
        let lo_any = from.saturating_add(POLL_AFTER_CUSTODY_MS);
        let cover = covers.entry(key.clone()).or_insert_with(|| {
            Cover::new(
                excused.get(&key).map(Vec::as_slice).unwrap_or_default(),
                pair,
                skew,
            )
        });
        let newer = |m: Option<(u64, usize)>| m.filter(|(tc2, _)| *tc2 > tc.saturating_add(skew));
        let alone = newer(cover.uncovered_max(pair, lo_t, hi_t)).or_else(|| {
            (lo_any < hi_t)
                .then(|| cover.uncovered_max(pair, lo_any, hi_t))
                .flatten()
        });
        // Review s36-delay M4, the pair rule: every such acceptance is covered, but
        // only by the relay's own word (`hand_failed` for any reason, `rejected`
        // `bad_ack`; s37-relay: not only `timeout`/`unsupported`), in at least two
        // separate hours, while the logs of every node of the addressee, covering
        // the time, hold no earlier offer of the copy by the relay, no restart, no hour at its offer
        // cap and no item from the relay it could not read, and no `stream` failure
        // of the copy came while the addressee's logs show the streams could have been full
        // (s37-relay, see [`MAIL_STREAMS`]): the relay or the addressee, never the
        // addressee alone. A signed refusal (`hand_refused`) withholds it.
        let (wlo, whi) = (tc.saturating_sub(skew + EXCUSE_BEFORE_T2_MS), win_hi);
        let as_pair = match alone {
            Some(_) => None,
            None => newer(pair.max_in(lo_t, hi_t))
                .or_else(|| (lo_any < hi_t).then(|| pair.max_in(lo_any, hi_t)).flatten())
                .filter(|&(_, at)| {
                    let only_weak = !strong.get(&key).is_some_and(|v| any_within(v, wlo, whi));
                    let hours = weak.get(&key).is_some_and(|v| {
                        let first = v.get(v.partition_point(|t| *t < wlo));
                        let last = v
                            .partition_point(|t| *t <= whi)
                            .checked_sub(1)
                            .and_then(|i| v.get(i));
                        matches!((first, last), (Some(a), Some(b)) if *b >= a.saturating_add(HOUR_MS - skew))
                    });
                    let full = stream_traced.entry(key.clone()).or_insert_with(|| {
                        full_streams(
                            streamed.get(&key).map(Vec::as_slice).unwrap_or_default(),
                            busy.get(&(n.clone(), relay.0.clone()))
                                .map(Vec::as_slice)
                                .unwrap_or_default(),
                        )
                    });
                    let no_full = !any_within(full, wlo, whi);
                    // Review s37-relay H2: every node the roster lists for N, each
                    // with a usable log reaching the window's end (R's requests go
                    // to any of them; an unaudited node's restart would be unseen),
                    // and no other log of N's.
                    // Final review of s37 H1: a node retired since is no longer
                    // listed, so also each log must span the whole window, no log
                    // of N's handed in may be unusable, and N's logs must hold the
                    // two acceptances the finding rests on (C's at `Th`, the other
                    // copy's at `T2`): a node of N's whose log is missing took them.
                    let n_logs = agency_logs.get(n).map(Vec::as_slice).unwrap_or_default();
                    let listed = roster.member(n).map(|m| &m.node_ids);
                    let all_of_n = listed.is_some_and(|ids| {
                        !ids.is_empty()
                            && ids.len() == n_logs.len()
                            && ids.iter().all(|id| {
                                n_logs.iter().any(|((_, p), earliest, latest)| {
                                    p == id && *earliest <= win_lo && *latest >= win_hi
                                })
                            })
                    }) && !unusable.contains(n)
                        && took_from.contains(&(n.clone(), relay.0.clone(), id.clone()))
                        && pair.list.get(at).is_some_and(|a| {
                            took_from.contains(&(n.clone(), relay.0.clone(), a.2.clone()))
                        });
                    // Review s37-relay H1: the offer that came with the hand-over N
                    // accepted at `Th` is in N's log, logged in the same request
                    // before N signed its acceptance (on N's clock, within the
                    // request's time): only an offer that reached N before it shows
                    // an earlier try.
                    let offers_before = th.saturating_sub(REQUEST_MAX_MS);
                    let n_log = all_of_n
                        && !kept_offers
                            .get(&(n.clone(), relay.0.clone(), id.clone()))
                            .is_some_and(|v| {
                                any_within(
                                    v,
                                    win_lo.saturating_sub(OFFER_LOOKBACK_MS),
                                    offers_before,
                                )
                            })
                        && !agency_starts
                            .get(n)
                            .is_some_and(|v| any_within(v, win_lo, win_hi))
                        // An item from R that N could not read, near one of R's
                        // `unsigned_refusal` failures of C (review s37-relay M1:
                        // anywhere in the window, one malformed frame withheld the
                        // pair for every reason).
                        && !anonymous.get(&key).is_some_and(|fails| {
                            let unread = unreadable
                                .get(&(n.clone(), relay.0.clone()))
                                .map(Vec::as_slice)
                                .unwrap_or_default();
                            let (a, b) = (
                                fails.partition_point(|t| *t < wlo),
                                fails.partition_point(|t| *t <= whi),
                            );
                            fails.get(a..b).unwrap_or_default().iter().any(|t| {
                                any_within(
                                    unread,
                                    t.saturating_sub(UNREADABLE_NEAR_MS),
                                    t.saturating_add(UNREADABLE_NEAR_MS),
                                )
                            })
                        })
                        && n_logs.iter().all(|(n_node, _, _)| {
                            !meets(
                                offer_sat
                                    .entry((n_node.clone(), relay.0.clone()))
                                    .or_insert_with(|| {
                                        saturated_spans(
                                            &mut offers_to
                                                .get(&(n_node.clone(), relay.0.clone()))
                                                .cloned()
                                                .unwrap_or_default(),
                                            OFFERS_LOGGED_PER_NEIGHBOUR,
                                            skew,
                                        )
                                    }),
                                win_lo,
                                win_hi,
                            )
                        });
                    only_weak && hours && no_full && n_log
                }),
        };
        let Some((tc2, at)) = alone.or(as_pair) else {
            continue;
        };
        let Some((t2, _, id2, digest2)) = pair.list.get(at) else {
            continue;
        };
        // Hours at the relay's caps: its silence there is no evidence.
        let sat_lo = tc.saturating_sub(skew + EXCUSE_BEFORE_T2_MS);
        let spans = saturated.entry(pair_key.clone()).or_insert_with(|| {
            saturated_union(
                &mut [
                    (
                        failed_to.get(&pair_key).cloned().unwrap_or_default(),
                        HAND_FAILED_LOGGED_PER_NEIGHBOUR,
                    ),
                    (
                        refused_to.get(&pair_key).cloned().unwrap_or_default(),
                        HAND_REFUSED_LOGGED_PER_NEIGHBOUR,
                    ),
                    (
                        offers_to.get(&pair_key).cloned().unwrap_or_default(),
                        OFFERS_LOGGED_PER_NEIGHBOUR,
                    ),
                ],
                skew,
            )
        });
        if meets(spans, sat_lo, win_hi) {
            continue;
        }
        let all = saturated_all.entry(relay.clone()).or_insert_with(|| {
            let mut f = failed_all.get(relay).cloned().unwrap_or_default();
            saturated_spans(&mut f, HAND_FAILED_LOGGED_PER_HOUR, skew)
        });
        if meets(all, sat_lo, win_hi) {
            continue;
        }
        let (agency, peer_id) = relay;
        // The other copy's custody after the held one's: a newer copy; else its
        // acceptance came late enough after the custody (s37-relay, even delays).
        let is_newer = tc2 > tc.saturating_add(skew);
        let (named, detail) = if alone.is_some() {
            (
                agency.to_string(),
                "its log shows no failed or refused hand-over of the message to {n} near that \
                 time, no offer of it by {n}, no restart since and no hour at its caps"
                    .replace("{n}", n.as_str()),
            )
        } else {
            (
                format!("{agency}->{n}"),
                format!(
                    "its log explains that only by hand-overs to {n} it says failed (its own \
                     word: no signed refusal), in two separate hours, while {n}'s logs show no \
                     earlier offer of the message by it, no restart and no unreadable item from it, and \
                     no stream failure came while the streams could have been full: the relay \
                     or {n}"
                ),
            )
        };
        let other = if is_newer {
            format!("newer mail from it at {t2}")
        } else {
            format!(
                "other mail from it at {t2} ({} min after the custody, so a poll that held the \
                 message)",
                (t2.saturating_sub(tc)) / 60_000
            )
        };
        let own_word_at: Vec<u64> = if alone.is_none() {
            weak.get(&key)
                .map(|v| {
                    v.iter()
                        .filter(|t| (wlo..=whi).contains(*t))
                        .take(16)
                        .copied()
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        report.violations.push(violation(
            "mail_relay_delayed",
            &named,
            format!(
                "{agency} took custody of message {id} for {n} at {tc} and handed it to {n} only at \
                 {th} ({} min later), although {n} took {other}, and {detail}",
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
                // s37-relay: whether the other copy is newer (its custody after the
                // held one's) or only accepted late enough after the custody
                // (`poll_after_custody_ms`): an even delay of all mail.
                "newer_custody": is_newer,
                "poll_after_custody_ms": POLL_AFTER_CUSTODY_MS,
                "bound_ms": DELAY_BOUND_MS,
                "excuse_before_ms": EXCUSE_BEFORE_T2_MS,
                // The pair rule: the relay's `hand_failed`/`bad_ack` events are its
                // own word (times in its log, under the s36 name), not evidence
                // against the addressee.
                "relay_excuses_own_word": alone.is_none(),
                "relay_own_word_at": own_word_at,
                // The same times under the s36 name, for s36 readers (review
                // s37-relay L1: every reason now, not only timeouts).
                "relay_timeouts_at": own_word_at,
            }),
        ));
    }
    // Relays not judged for an older build: an informational count, never a finding
    // (review s36-delay M3).
    for ((agency, peer_id), count) in older_build {
        if let Some(s) = report
            .nodes
            .iter_mut()
            .find(|s| s.agency == agency.as_str() && s.peer_id == peer_id)
        {
            s.mail_delay_older_build += count;
        }
    }
}

#[cfg(test)]
#[path = "mail_delay_tests.rs"]
mod tests;
