//! The `/wlnode/mail/5` side of the replication service (issue 21): carries out what
//! the sans-IO `Mailer` says, checks what neighbours hand us, and keeps the mail
//! table, the audit log and the metrics current.
//!
//! Every item a neighbour hands us is decoded with the crypto crate's limits and its
//! signature checked against the roster before the mailer sees it. A forged, replayed,
//! expired, oversized or malformed item is refused, counted (`mail_rejected`), audited
//! (a `mail` event with action `rejected`) and counts as a strike against the
//! neighbour like an invalid record; everyone else keeps being served. A message for
//! us is opened with the agency's encryption key; nothing else is ever opened, and a
//! relay keeps only the sealed bytes.
//!
//! Store writes go through one writer task in order, and we answer a neighbour only
//! once what it handed us is durable (so custody is never acknowledged and then lost).
//!
//! Every answer to a hand-over is a [`MailAck`] signed with the agency key (custody
//! taken, or why not). The handing node verifies the neighbour's signed answer
//! against the roster: a bad, unsigned or mismatched one is a protocol failure
//! (refused as custody, counted and audited as `bad_ack`, a strike); a valid custody
//! ack goes into the `handed` audit event, and a valid refusal into a `hand_refused`
//! event (at most once per neighbour and item per [`HAND_REFUSED_LOG_EVERY`]), so an
//! auditor can tell a relay that sat on a message from one whose neighbours refused
//! it.
//!
//! Since `/wlnode/mail/5` every hand-over carries the handing agency's signed
//! [`HandoverOffer`] (review s32-mail H1): the neighbour keeps a valid offer of a
//! relayed message in its own audit log (an `offered` event, the offer in `ack`)
//! whether or not it takes the message, once per item and neighbour per
//! [`OFFER_LOG_EVERY`] and at most [`OFFERS_PER_NEIGHBOUR`] per neighbour an hour.
//! So a relay's route and the copy it held show in its neighbours' logs even when
//! its own log holds nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};
use wlnode_audit::event::{Event as AuditEvent, EventKind};
use wlnode_crypto::SecretKey;
use wlnode_crypto::mail::{
    AckFit, Envelope, HandoverOffer, MAX_CLOCK_SKEW_MS, MailAck, MailError, MailItem, Receipt,
};
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::Role;
use wlnode_crypto::time::Timestamp;
use wlnode_net::{Frame, InboundId, NetHandle, PeerRef};
use wlnode_store::StoreHandle;
use wlnode_store::tables::LocalTable;
use wlnode_sync::mail::{Intake, ItemKey, ItemKind, MailEvent, Mailer, Ticket, Write};

use super::Service;
use crate::mail::{
    InboxItem, MailCmd, MailNotice, MailSendError, OUTBOX, OutboxItem, id_key, inbox_key,
};
use crate::metrics::Metrics;

/// The keys the mail service signs receipts and opens messages with.
pub(crate) struct MailKeys {
    pub(crate) sign: Arc<SecretKey>,
    pub(crate) enc: crate::mail::EncryptionKeys,
}

/// One of our mail requests in flight (see `MailState::pending`): the neighbour, the
/// item's name, the item, the mailer's ticket, and when it was sent.
pub(crate) type PendingHandOver = (AgencyCode, ItemKey, MailItem, Ticket, std::time::Instant);

/// The mail part of the service's state.
pub(crate) struct MailState {
    pub(crate) mailer: Mailer,
    pub(crate) rx: mpsc::UnboundedReceiver<MailCmd>,
    pub(crate) keys: MailKeys,
    pub(crate) writer: mpsc::UnboundedSender<MailJob>,
    /// Our mail requests in flight: token → (neighbour, item, the mailer's ticket
    /// of the hand-over, handed back with its end so that the mailer matches the
    /// answer to this request: review s36-int L1).
    /// (The item itself is kept for the `handed` audit event: its receipt may come
    /// back, and the mailer drop it, before the neighbour's answer.) With when it
    /// was sent: one with no end for `MailLimits::stale_request_ms` is forgotten.
    pub(crate) pending: std::collections::HashMap<u64, PendingHandOver>,
    /// Neighbours connected at the last poll.
    pub(crate) connected: BTreeSet<AgencyCode>,
    /// When a refusal that is no strike was last audited, per (neighbour, reason):
    /// such refusals (quotas, skew, roster lag, others' replays) are audited at most
    /// once per [`super::AUDIT_REFUSAL_LOG_EVERY`] each, so a member cannot grow our
    /// audit log without bound by sending them (struck ones end in a ban).
    pub(crate) refusals_logged: std::collections::HashMap<(AgencyCode, String), std::time::Instant>,
    /// When a neighbour's signed refusal of one of our hand-overs was last audited
    /// (`hand_refused`), per (neighbour, item): at most once per
    /// [`HAND_REFUSED_LOG_EVERY`], which the auditor's `mail_not_relayed` rule allows
    /// for.
    pub(crate) refusals_evidenced: EvidenceSlots<ItemKey>,
    /// Per neighbour: when its current hour of `hand_refused` events began and how
    /// many were audited in it (at most [`HAND_REFUSED_PER_NEIGHBOUR`]).
    pub(crate) refusals_evidenced_per_peer:
        std::collections::HashMap<AgencyCode, (std::time::Instant, usize)>,
    /// The roster version we judge acks under and when this node first accepted it
    /// (Unix ms; for [`REVOCATION_GRACE`]): from the store's roster anchor at start,
    /// so a restart does not start the grace again (review s32-mail L6). Only a
    /// fallback: the trust cell's adoption time, which a live reload sets from the
    /// anchor too, comes first (see [`grace_start`]).
    pub(crate) roster_seen: Option<(u64, u64)>,
    /// When a neighbour's signed offer of an item was last audited (`offered`), per
    /// (neighbour, the item's identity digest): at most once per [`OFFER_LOG_EVERY`].
    /// By digest, not id: another sender's message under the same id must not use
    /// up the slot of the copy the neighbour took.
    pub(crate) offers_logged: EvidenceSlots<[u8; 32]>,
    /// Per neighbour: when its current hour of `offered` events began and how many
    /// were audited in it (at most [`OFFERS_PER_NEIGHBOUR`]).
    pub(crate) offers_logged_per_peer:
        std::collections::HashMap<AgencyCode, (std::time::Instant, usize)>,
    /// Which failed hand-overs of relayed messages were audited (`hand_failed`) and
    /// when (review s34-mail M1, s35-mail L4; to any neighbour since s36-delay).
    pub(crate) failures: HandFailures,
}

/// The `hand_failed` events audited: at most once per (neighbour, item) per
/// [`HAND_FAILED_LOG_EVERY`], [`HAND_FAILED_PER_NEIGHBOUR`] per neighbour an hour and
/// [`HAND_FAILED_PER_HOUR`] in all an hour. Keyed by the neighbour handed to, whether
/// or not it is the addressee (s36-delay): the per-item slots hold at most
/// `3 × HAND_FAILED_PER_NEIGHBOUR` entries per roster member (see [`EvidenceSlots`]),
/// the per-neighbour hours one entry per member.
#[derive(Debug, Default)]
pub(crate) struct HandFailures {
    per_item: EvidenceSlots<ItemKey>,
    /// Per neighbour: when its current hour began and how many were audited in it.
    per_peer: std::collections::HashMap<AgencyCode, (std::time::Instant, usize)>,
    /// When the current hour of all neighbours began and how many were audited.
    all: Option<(std::time::Instant, usize)>,
}

impl HandFailures {
    /// Whether a failed hand-over of `item` (`key`) to `agency`, for `reason`, is
    /// audited now: only a message we (`me`) relay ([`hand_failure_evidence`]), and
    /// within the caps (noting it). Returns the reason to audit.
    fn due(
        &mut self,
        (item, key): (&MailItem, ItemKey),
        me: &AgencyCode,
        agency: &AgencyCode,
        reason: &'static str,
        now: std::time::Instant,
    ) -> Option<&'static str> {
        if !hand_failure_evidence(item, me) {
            return None;
        }
        let all = self.all.get_or_insert((now, 0));
        if now.saturating_duration_since(all.0) >= EVIDENCE_BUCKET {
            *all = (now, 0);
        }
        if all.1 >= HAND_FAILED_PER_HOUR {
            return None;
        }
        if !evidence_due(
            &mut self.per_item,
            &mut self.per_peer,
            (agency, key),
            (HAND_FAILED_LOG_EVERY, HAND_FAILED_PER_NEIGHBOUR),
            now,
        ) {
            return None;
        }
        all.1 += 1;
        Some(reason)
    }
}

/// How often a failed hand-over of one relayed message to one neighbour is audited
/// (`hand_failed`, review s34-mail M1): the relay offers it again every few
/// minutes, and one event an hour says the hand-over kept failing through that
/// hour. They are the relay's unsigned word: an auditor notes those to the
/// addressee for `timeout`/`unsupported` in a finding without changing who is named
/// (review s35-mail H2), and takes any of them only to clear the relay of
/// `mail_relay_delayed` (s36-delay); since s37 any reason of them, in two hours or
/// more, with nothing in the neighbour's own log to explain them (and, for
/// `stream`, no sign in the addressee's logs that the connection's streams could
/// have been full: since s37-short only the addressee's logs count for that trace),
/// turns that finding into the unproven pair with the neighbour, never the
/// neighbour alone.
pub const HAND_FAILED_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The most `hand_failed` events audited per neighbour per hour: a neighbour that
/// never answers grows our audit log by at most this many events (about 400 bytes
/// each) an hour. An auditor does not hold the relay's silence against it in an
/// hour with this many (`wlnode_audit::verify::HAND_FAILED_LOGGED_PER_NEIGHBOUR`).
pub const HAND_FAILED_PER_NEIGHBOUR: usize = 1024;

/// The most `hand_failed` events audited per hour across all neighbours (review
/// s35-mail L4): however many members never answer, at most about 1.6 MB of audit
/// log an hour (`wlnode_audit::verify::HAND_FAILED_LOGGED_PER_HOUR`).
pub const HAND_FAILED_PER_HOUR: usize = 4096;

/// How often one neighbour's signed offer of one item is audited (`offered`): the
/// first offer is the evidence (the neighbour held that copy and chose this route);
/// retries every few minutes add nothing.
pub const OFFER_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The most `offered` events audited per neighbour per hour: a neighbour offering
/// many items grows our audit log by at most this many events (about 1 KB each) an
/// hour. An auditor does not take our silence about a neighbour's offers as evidence
/// in an hour in which our log holds this many of them
/// (`wlnode_audit::verify::OFFERS_LOGGED_PER_HOUR`).
pub const OFFERS_PER_NEIGHBOUR: usize = 1024;

/// The most `hand_refused` events audited per neighbour per
/// [`HAND_REFUSED_LOG_EVERY`] (review s31-mail M5): a neighbour refusing everything
/// grows our audit log by at most this many events (about 1 KB each) an hour. A relay
/// holding more relayed messages than this for one refusing neighbour logs evidence
/// for the first ones only; the others may be reported `mail_not_relayed` (unproven).
pub const HAND_REFUSED_PER_NEIGHBOUR: usize = 1024;

/// How often one neighbour's signed refusal of one item is audited (`hand_refused`):
/// the item is offered again at least every few minutes, and the audit log must not
/// grow by one event per retry. The auditor's `mail_not_relayed` rule accepts gaps up
/// to `wlnode_audit::verify::REFUSAL_EVIDENCE_WINDOW_MS`, more than this plus the
/// longest retry delay.
pub const HAND_REFUSED_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long after this node first used a roster version a neighbour announcing an
/// older one is excused for acks signed with a key that version revokes (review
/// s31-fixes X6): long enough for the new roster to reach every member.
pub const REVOCATION_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// When this node first accepted roster `version` (Unix ms), the start of its
/// [`REVOCATION_GRACE`]: the adoption time the store's anchor records (`adopted`,
/// noted by the trust cell at start and at every reload, so a live reload and a
/// restart agree: review s33-mail L2), else the one noted in `seen` for that
/// version, else `now_ms` (noted). A recorded adoption time ahead of `now_ms` (a
/// clock that was ahead when the roster was taken) is replaced by the first time it
/// is seen ahead, noted in `seen` and used from then on, so it cannot hold the grace
/// open until that date (review s34-mail L2: clamping it to `now_ms` at every call
/// restarted the grace at every call).
fn grace_start(
    adopted: Option<(u64, u64)>,
    seen: &mut Option<(u64, u64)>,
    version: u64,
    now_ms: u64,
) -> u64 {
    match (adopted, *seen) {
        (Some((v, at)), _) if v == version && at <= now_ms => at,
        (_, Some((v, at))) if v == version && at <= now_ms => at,
        _ => {
            *seen = Some((version, now_ms));
            now_ms
        }
    }
}

/// What a roster rollover may explain about a neighbour's ack (review s31-mail L2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rollover {
    /// The neighbour announces another roster version than ours.
    pub differ: bool,
    /// It announces an older one, and we have used ours for less than
    /// [`REVOCATION_GRACE`]: it may not know yet that a key of its was revoked.
    pub revocation_news: bool,
}

impl Rollover {
    /// From the versions the neighbour's nodes announce, ours, and how long we
    /// have used ours (review s31-fixes X6: the excuse for a revoked key rests on our
    /// own roster history, not only on the version the neighbour claims).
    pub(crate) fn judge(
        theirs: impl IntoIterator<Item = u64>,
        ours: u64,
        ours_for: std::time::Duration,
    ) -> Self {
        let mut r = Self::default();
        for v in theirs {
            r.differ |= v != ours;
            r.revocation_news |= v < ours && ours_for < REVOCATION_GRACE;
        }
        r
    }
}

/// Whether a neighbour's ack that fails verification with `e` is a strike: not
/// while a rollover explains it: a key we do not know yet or outside its window
/// while our rosters differ; a key our roster revokes only while the revocation is
/// news (review s31-mail L2, s31-fixes X6: a member announcing an old roster version
/// forever is struck once the grace has passed).
fn ack_error_strikes(e: &MailError, rollover: Rollover) -> bool {
    match e {
        MailError::RevokedSigner { .. }
        | MailError::Signer(wlnode_crypto::roster::RosterError::RevokedKey { .. }) => {
            !rollover.revocation_news
        }
        MailError::Signer(_) => !rollover.differ,
        _ => true,
    }
}

/// Whether a neighbour's signed refusal of `item` is evidence worth auditing
/// (`hand_refused`): only for a message we relay (not ours: we are its sender), the
/// one thing the auditor's `mail_not_relayed` looks at (review s31-mail M5).
fn refusal_needs_evidence(item: &MailItem, me: &AgencyCode) -> bool {
    matches!(item, MailItem::Envelope(e) if e.header().from != *me)
}

/// Whether a failed hand-over of `item` is audited (`hand_failed`): a message we
/// (`me`) relay, to any neighbour (s36-delay; before, only to its addressee and only
/// for `timeout`/`unsupported`). Every failure of such a hand-over is evidence, for
/// the relay only: an auditor's `mail_relay_delayed` holds a copy the addressee took
/// late while it took newer mail from the relay against the relay alone, and these
/// events are what clears an honest relay whose hand-overs of that copy failed (a
/// reset stream, an anonymous refusal from an older build). Our own messages and
/// receipts are not audited.
fn hand_failure_evidence(item: &MailItem, me: &AgencyCode) -> bool {
    matches!(item, MailItem::Envelope(e) if e.header().from != *me)
}

/// The `hand_failed` reason of a failed request: the neighbour's stream was open and
/// it never answered (`timeout`), it refused the mail protocol (`unsupported`:
/// review s35-mail M2), the stream failed or was reset, or the connection had no
/// stream to spare for it (`stream`; `Busy` since s37, audited as before so that
/// the log format and the auditor's full-streams trace stay as they are), the connection
/// closed before the answer (`closed`), or the neighbour, connected at the poll that
/// chose it, could not be dialled when the request went out (`dial`). The last three
/// are also what an honest neighbour's crash gives (review s35-mail M1): an auditor
/// never names anyone by them.
fn request_failure_reason(failure: wlnode_net::RequestFailure) -> &'static str {
    use wlnode_net::RequestFailure as F;
    match failure {
        F::Timeout => "timeout",
        F::Unsupported => "unsupported",
        F::Stream | F::Busy => "stream",
        F::ConnectionClosed => "closed",
        F::Dial => "dial",
    }
}

/// Tells `mailer` how the hand-over `ticket` of `key` to `agency` failed, and
/// returns the `hand_failed` reason to audit ([`request_failure_reason`]): a
/// request that found the connection's streams all taken (`Busy`) goes to
/// [`Mailer::on_hand_busy`] (offered again at the neighbour's next round, oldest
/// first, its backoff untouched: review s37-order H1), any other failure to
/// [`Mailer::on_hand_failed`]. A function of its own so that the dispatch is
/// tested (s37 final review M3).
fn end_failed_hand_over(
    mailer: &mut Mailer,
    agency: &AgencyCode,
    key: &ItemKey,
    ticket: Ticket,
    failure: wlnode_net::RequestFailure,
) -> &'static str {
    if failure == wlnode_net::RequestFailure::Busy {
        mailer.on_hand_busy(agency, key, ticket);
    } else {
        mailer.on_hand_failed(agency, key, ticket);
    }
    request_failure_reason(failure)
}

/// The audit event, if one is due, for a hand-over of `key` to `to` held back at a
/// round for want of a stream ([`MailEvent::NoStream`]; review s37-order H1): the
/// failed hand-over it was before, `hand_failed` `stream`, within the same caps
/// ([`HandFailures::due`]), so our log says why the copy waited. The caps are
/// checked before the event is made (they drop most), and only an item still held
/// has one. Tested on its own (s37 final review M3).
fn no_stream_event(
    failures: &mut HandFailures,
    mailer: &Mailer,
    me: &AgencyCode,
    (key, to): (ItemKey, &AgencyCode),
    now: std::time::Instant,
) -> Option<AuditEvent> {
    let item = mailer.held_item(&key)?;
    let reason = failures.due((item, key), me, to, "stream", now)?;
    Some(mail_event("hand_failed", item, Some(to), Some(reason)))
}

/// Whether `agency`'s signed refusal of `key` is to be audited now (and if so, notes
/// it): once per item per [`HAND_REFUSED_LOG_EVERY`], and at most
/// [`HAND_REFUSED_PER_NEIGHBOUR`] per neighbour in that time. The per-item slots
/// are bounded (see [`EvidenceSlots`]); the per-neighbour map holds roster members.
fn refusal_evidence_due(
    per_item: &mut EvidenceSlots<ItemKey>,
    per_peer: &mut std::collections::HashMap<AgencyCode, (std::time::Instant, usize)>,
    agency: &AgencyCode,
    key: ItemKey,
    now: std::time::Instant,
) -> bool {
    evidence_due(
        per_item,
        per_peer,
        (agency, key),
        (HAND_REFUSED_LOG_EVERY, HAND_REFUSED_PER_NEIGHBOUR),
        now,
    )
}

/// When evidence about each (neighbour, item) was last audited, for
/// [`evidence_due`], in buckets of one hour ([`EVIDENCE_BUCKET`]) by insertion time
/// (review s34-mail L4: the map pruned only once doubled held about twice the live
/// entries, some 190 MB in the worst case a hostile neighbour could drive).
///
/// A bucket is dropped whole once its newest possible entry is older than the keep
/// time (`every`), at the next insert: each entry is dropped once, so pruning is
/// amortised O(1) per insert, and a lookup reads at most `every / 1 h + 2` buckets.
/// Entries keep their exact time (milliseconds into their bucket), so "at most once
/// per `every`" is exact, as before.
///
/// Bound, per neighbour: every entry held was inserted within the last `every + 1
/// h`; [`evidence_due`] lets at most `cap` slots of a neighbour in per neighbour
/// hour, and such a window meets at most `every / 1 h + 2` of them, so a neighbour
/// holds at most `cap × (every / 1 h + 2)` entries (offers: 26 × 1,024; refusals
/// and `hand_failed`: 3 × 1,024). That is also a hard cap per neighbour
/// ([`EvidenceSlots::insert`]): past it the neighbour's own oldest entries go (never
/// another neighbour's, never the current hour's bucket: review s35-mail M4, L3),
/// so a flooding member costs only its own deduplication and its own hourly budget.
/// In all at most `members × cap × (every / 1 h + 2)` entries. An entry costs the
/// key and 4 bytes in a hash map (37 bytes for a 32-byte digest, at most about 85
/// with the table's slack), the neighbour's code once per bucket: about 2.3 MB per
/// member flooding offers, 0.3 MB per member for the others.
#[derive(Debug)]
pub(crate) struct EvidenceSlots<K> {
    /// Oldest first; a new bucket starts at the first insert an hour or more after
    /// the newest one's start.
    buckets: std::collections::VecDeque<SlotBucket<K>>,
    /// Entries held in all buckets.
    len: usize,
    /// Entries held per neighbour, in all buckets.
    per_agency: std::collections::HashMap<AgencyCode, usize>,
}

/// One hour of [`EvidenceSlots`]: per neighbour, per item, the milliseconds after
/// `start` at which it was audited.
#[derive(Debug)]
struct SlotBucket<K> {
    start: std::time::Instant,
    slots: std::collections::HashMap<AgencyCode, std::collections::HashMap<K, u32>>,
}

/// The span of one [`EvidenceSlots`] bucket.
pub const EVIDENCE_BUCKET: std::time::Duration = std::time::Duration::from_secs(3600);

impl<K> Default for EvidenceSlots<K> {
    fn default() -> Self {
        Self {
            buckets: std::collections::VecDeque::new(),
            len: 0,
            per_agency: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> EvidenceSlots<K> {
    /// When `key` of `agency` was last audited (the newest bucket holding it).
    fn get(&self, agency: &AgencyCode, key: &K) -> Option<std::time::Instant> {
        self.buckets.iter().rev().find_map(|b| {
            let ms = *b.slots.get(agency)?.get(key)?;
            Some(b.start + std::time::Duration::from_millis(u64::from(ms)))
        })
    }

    /// The most entries one neighbour holds with keep time `every` and at most
    /// `cap` inserts per neighbour hour: `cap × (every / 1 h + 2)`, hours rounded up.
    fn per_agency_max(every: std::time::Duration, cap: usize) -> usize {
        let hours = every.as_secs().div_ceil(EVIDENCE_BUCKET.as_secs());
        cap.saturating_mul(
            usize::try_from(hours)
                .unwrap_or(usize::MAX)
                .saturating_add(2),
        )
    }

    /// Takes `agency`'s entries out of bucket `i`.
    fn evict(&mut self, i: usize, agency: &AgencyCode) {
        let Some(gone) = self.buckets.get_mut(i).and_then(|b| b.slots.remove(agency)) else {
            return;
        };
        self.len = self.len.saturating_sub(gone.len());
        if let Some(n) = self.per_agency.get_mut(agency) {
            *n = n.saturating_sub(gone.len());
            if *n == 0 {
                self.per_agency.remove(agency);
            }
        }
    }

    /// Notes `key` of `agency` as audited at `now`, first dropping the buckets whose
    /// entries are all older than `every`. When `agency` already holds its most
    /// entries (`cap` an hour, see [`EvidenceSlots::per_agency_max`]), its own
    /// entries in its oldest bucket go first; if it has none but in the current
    /// bucket, the key is not noted (it may be logged again, within its own hourly
    /// budget). Other neighbours' entries are never touched.
    fn insert(
        &mut self,
        agency: &AgencyCode,
        key: K,
        now: std::time::Instant,
        (every, cap): (std::time::Duration, usize),
    ) {
        let keep = every.saturating_add(EVIDENCE_BUCKET);
        while self
            .buckets
            .front()
            .is_some_and(|b| now.saturating_duration_since(b.start) >= keep)
        {
            let Some(b) = self.buckets.pop_front() else {
                break;
            };
            for (a, m) in b.slots {
                self.len = self.len.saturating_sub(m.len());
                if let Some(n) = self.per_agency.get_mut(&a) {
                    *n = n.saturating_sub(m.len());
                    if *n == 0 {
                        self.per_agency.remove(&a);
                    }
                }
            }
        }
        let fresh = self
            .buckets
            .back()
            .is_none_or(|b| now.saturating_duration_since(b.start) >= EVIDENCE_BUCKET);
        if fresh {
            self.buckets.push_back(SlotBucket {
                start: now,
                slots: std::collections::HashMap::new(),
            });
        }
        let max = Self::per_agency_max(every, cap);
        if self.per_agency.get(agency).is_some_and(|n| *n >= max) {
            let older = self.buckets.len().saturating_sub(1);
            let oldest = (0..older).find(|i| {
                self.buckets
                    .get(*i)
                    .is_some_and(|b| b.slots.contains_key(agency))
            });
            match oldest {
                Some(i) => self.evict(i, agency),
                None => return,
            }
        }
        let Some(b) = self.buckets.back_mut() else {
            return;
        };
        // Within the bucket's hour (a `now` before its start, which a monotonic
        // clock never gives, is noted at the start: later, so never logged sooner).
        let ms =
            u32::try_from(now.saturating_duration_since(b.start).as_millis()).unwrap_or(u32::MAX);
        let per_key = match b.slots.get_mut(agency) {
            Some(m) => m,
            None => b.slots.entry(agency.clone()).or_default(),
        };
        if per_key.insert(key, ms).is_none() {
            self.len += 1;
            *self.per_agency.entry(agency.clone()).or_insert(0) += 1;
        }
    }

    /// The number of entries held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// The number of entries held for `agency`.
    #[cfg(test)]
    fn len_of(&self, agency: &AgencyCode) -> usize {
        self.per_agency.get(agency).copied().unwrap_or(0)
    }
}

/// Whether evidence about `agency` and `key` is to be audited now (and if so, notes
/// it): once per item per `every`, and at most `cap` per neighbour an hour. The
/// per-item slots are held in hourly buckets dropped whole (see [`EvidenceSlots`]);
/// the per-neighbour map holds roster members.
fn evidence_due<K: std::hash::Hash + Eq>(
    per_item: &mut EvidenceSlots<K>,
    per_peer: &mut std::collections::HashMap<AgencyCode, (std::time::Instant, usize)>,
    (agency, key): (&AgencyCode, K),
    (every, cap): (std::time::Duration, usize),
    now: std::time::Instant,
) -> bool {
    let hour_len = std::time::Duration::from_secs(3600);
    if per_item
        .get(agency, &key)
        .is_some_and(|t| now.saturating_duration_since(t) < every)
    {
        return false;
    }
    let hour = per_peer.entry(agency.clone()).or_insert((now, 0));
    if now.duration_since(hour.0) >= hour_len {
        *hour = (now, 0);
    }
    if hour.1 >= cap {
        return false;
    }
    hour.1 += 1;
    per_item.insert(agency, key, now, (every, cap));
    true
}

/// One ordered store job of the mail service, and what to do once it is durable.
#[derive(Default)]
pub(crate) struct MailJob {
    writes: Vec<Write>,
    puts: Vec<(Vec<u8>, Vec<u8>)>,
    events: Vec<AuditEvent>,
    /// The signed answer once the job is durable, and the signed `store` refusal
    /// sent instead when the store write failed.
    respond: Option<(InboundId, MailAck, MailAck)>,
    notices: Vec<MailNotice>,
    done: Option<oneshot::Sender<Result<(), MailSendError>>>,
}

/// The writer task: applies jobs in order, then answers and notifies.
pub(crate) fn spawn_writer(
    store: StoreHandle,
    net: NetHandle,
    notices: broadcast::Sender<MailNotice>,
    metrics: Arc<Metrics>,
) -> (mpsc::UnboundedSender<MailJob>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<MailJob>();
    let task = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let MailJob {
                writes,
                mut puts,
                events,
                respond,
                notices: out,
                done,
            } = job;
            let mut deletes = Vec::new();
            for (k, v) in writes {
                match v {
                    Some(v) => puts.push((k, v)),
                    None => deletes.push(k),
                }
            }
            let result = store
                .call(move |s| {
                    if !puts.is_empty() {
                        s.table_put(LocalTable::Mail, &puts, true)?;
                    }
                    for k in &deletes {
                        let mut end = k.clone();
                        end.push(0);
                        s.table_remove_range(LocalTable::Mail, k, &end, 1)?;
                    }
                    if !events.is_empty() {
                        s.audit_append(&events)?;
                    }
                    Ok(())
                })
                .await;
            let ok = result.is_ok();
            if let Err(e) = &result {
                tracing::error!(error = %e, "mail table write failed");
                metrics.store_errors.inc();
            }
            if let Some((id, ack, store_failed)) = respond {
                let ack = if ok { ack } else { store_failed };
                net.respond(id, Bytes::from(ack.encode()));
            }
            if ok {
                for n in out {
                    let _ = notices.send(n);
                }
            }
            if let Some(d) = done {
                let _ = d.send(result.map_err(MailSendError::Store));
            }
        }
    });
    (tx, task)
}

/// A `mail` audit event about `item`.
fn mail_event(
    action: &str,
    item: &MailItem,
    peer: Option<&AgencyCode>,
    reason: Option<&str>,
) -> AuditEvent {
    let mut copy = None;
    let (message_id, what, from, to, kind, size, expires_at) = match item {
        MailItem::Envelope(e) => {
            let h = e.header();
            // A message the neighbour signed custody of: the copy's identity bytes,
            // so an auditor reads the expiry it took the copy with from the bytes its
            // signed digest names (s38: a relay's own early expiry had left the copy
            // unjudged). Metadata only: none when the sender wrote its header with
            // extra fields, which could carry anything (review s38 M1).
            if action == "handed" {
                copy = e.identity().map(hex::encode);
            }
            (
                h.id,
                ItemKind::Message,
                h.from.clone(),
                h.to.clone(),
                h.kind.clone(),
                u64::from(h.size),
                Some(h.expires_at.as_millis()),
            )
        }
        MailItem::Receipt(r) => {
            let b = r.body();
            (
                b.message_id,
                ItemKind::Receipt,
                b.recipient.clone(),
                b.sender.clone(),
                String::new(),
                0,
                None,
            )
        }
    };
    AuditEvent::new(
        Timestamp::now().as_millis(),
        EventKind::Mail {
            action: action.into(),
            message_id: message_id.to_hex(),
            item: what.as_str().into(),
            from,
            to,
            kind,
            size,
            peer: peer.cloned(),
            reason: reason.map(str::to_owned),
            expires_at,
            ack: None,
            copy,
        },
    )
}

/// Whether `agency`'s `offer` handed with `item` is evidence for our (`me`) log: a
/// relayed message (not the offering agency's own, which no audit rule needs), the
/// offer signed by `agency` with a key the roster gives it, offering exactly this copy
/// to us, and signed within the clock skew of `now`.
fn offer_is_evidence(
    offer: &HandoverOffer,
    roster: &wlnode_crypto::roster::Roster,
    agency: &AgencyCode,
    me: &AgencyCode,
    item: &MailItem,
    now: Timestamp,
) -> bool {
    refusal_needs_evidence(item, agency)
        && offer.verify(roster, agency).is_ok()
        && offer.fits(item, me)
        && offer.body().at.as_millis().abs_diff(now.as_millis()) <= MAX_CLOCK_SKEW_MS
}

/// The refusal of a relayed message handed without a valid signed offer.
pub const NO_OFFER: &str = "no_offer";

/// Whether `item`, handed by `agency`, is refused for want of a valid signed offer
/// (`offer`: the one that passed [`offer_is_evidence`], if any): every relayed
/// message needs one; the sender's own message does not (no audit rule needs it).
fn lacks_offer(offer: Option<&HandoverOffer>, item: &MailItem, agency: &AgencyCode) -> bool {
    refusal_needs_evidence(item, agency) && offer.is_none()
}

/// Whether a neighbour's valid offer of an item is audited, by what our checks of
/// the item gave (`failed`: the error, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OfferLog {
    /// The item failed for a reason other than a roster rollover (a bad signature,
    /// a date out of range, expired): a member can make such items at will, so
    /// their offers are not audited (review s33-mail M1).
    Skip,
    /// Our roster cannot verify the item while the neighbour's differs: audited,
    /// but at most once a minute per neighbour.
    RosterLag,
    /// A valid item: audited (once per copy, capped per neighbour an hour).
    Due,
}

fn offer_log_kind(failed: Option<&MailError>, rosters_differ: bool) -> OfferLog {
    match failed {
        None => OfferLog::Due,
        Some(MailError::Signer(_) | MailError::NotAMember { .. }) if rosters_differ => {
            OfferLog::RosterLag
        }
        Some(_) => OfferLog::Skip,
    }
}

/// `event` with the neighbour's signed answer attached (`handed`, `hand_refused`).
fn with_ack(mut event: AuditEvent, signed: &MailAck) -> AuditEvent {
    if let EventKind::Mail { ack, .. } = &mut event.kind {
        *ack = Some(signed.to_hex());
    }
    event
}

/// The reason code of an item that failed verification, and whether it is a strike
/// against the neighbour. Like records: what clock skew explains (a creation or
/// receipt time ahead of ours; an expiry passed by less than the allowed skew) and,
/// while the neighbour's roster version differs from ours, what a roster rollover
/// explains (an unknown agency or key, a key outside its window, no encryption key)
/// is refused but not struck. A message well past its expiry that a neighbour still
/// hands on is a replay, and a strike.
fn verify_refusal(e: &MailError, now: Timestamp, rosters_differ: bool) -> (&'static str, bool) {
    match e {
        MailError::Expired { expires_at } => {
            if now.as_millis() >= expires_at.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) {
                ("replayed", true)
            } else {
                ("expired", false)
            }
        }
        MailError::FromTheFuture { .. } | MailError::ReceiptTime { .. } => (e.code(), false),
        MailError::Signer(_) | MailError::NotAMember { .. } => (e.code(), !rosters_differ),
        other => (other.code(), true),
    }
}

/// Whether a verified message for us that does not open (`err`; `None`: the body is
/// not UTF-8) is a strike against the neighbour `agency`. Never when it is sealed to
/// a key we do not hold (none configured, or a key file not provisioned): verification
/// checked that the roster gives us that key, so the sender did nothing wrong (review
/// of issue 21, finding 7). Otherwise (it does not open, or its padding is bad) the
/// sender's fault, so a strike only when the neighbour is the sender. Nor when it is
/// sealed in the unpadded format of an older build (review s30-consult2, M5): every
/// node needs the same build, and a sender not yet upgraded is not hostile.
fn unopenable_strikes(err: Option<&MailError>, from: &AgencyCode, agency: &AgencyCode) -> bool {
    match err {
        Some(MailError::NotOurKey { .. } | MailError::LegacyBody) => false,
        _ => from == agency,
    }
}

fn outbox_item(h: &wlnode_crypto::mail::MailHeader) -> OutboxItem {
    OutboxItem {
        message_id: h.id,
        to: h.to.clone(),
        kind: h.kind.clone(),
        size: u64::from(h.size),
        created_at: h.created_at.as_millis(),
        expires_at: h.expires_at.as_millis(),
        state: "pending".into(),
        delivered_at: None,
    }
}

impl Service {
    /// Our signed answer to `from`'s hand-over of `item` (`None`: it did not decode;
    /// `from` `None`: not in our roster).
    fn sign_ack(
        &self,
        item: Option<&MailItem>,
        from: Option<&AgencyCode>,
        accepted: bool,
        reason: &str,
    ) -> MailAck {
        MailAck::sign(
            item,
            from,
            &self.agency,
            accepted,
            reason,
            Timestamp::now(),
            &self.mail.keys.sign,
        )
    }

    /// Answers a hand-over now (nothing to make durable first).
    fn answer(
        &self,
        id: InboundId,
        item: Option<&MailItem>,
        from: Option<&AgencyCode>,
        accepted: bool,
        reason: &str,
    ) {
        let ack = self.sign_ack(item, from, accepted, reason);
        self.net.respond(id, Bytes::from(ack.encode()));
    }

    /// The answer for a job: `accepted`/`reason` once durable, `store` if not.
    fn respond_after(
        &self,
        id: InboundId,
        item: Option<&MailItem>,
        from: &AgencyCode,
        accepted: bool,
        reason: &str,
    ) -> Option<(InboundId, MailAck, MailAck)> {
        Some((
            id,
            self.sign_ack(item, Some(from), accepted, reason),
            self.sign_ack(item, Some(from), false, "store"),
        ))
    }

    fn mail_job(&mut self, mut job: MailJob) {
        job.writes.extend(self.mail.mailer.take_writes());
        self.metrics
            .mail_held
            .set(i64::try_from(self.mail.mailer.held_len()).unwrap_or(i64::MAX));
        if self.mail.writer.send(job).is_err() {
            tracing::warn!("mail writer stopped");
        }
    }

    /// A request from the mail handle.
    pub(super) fn on_mail_cmd(&mut self, c: MailCmd) {
        match c {
            MailCmd::Send { env, done } => {
                let item = MailItem::Envelope(env.clone());
                if self
                    .mail
                    .mailer
                    .send(env.clone(), Timestamp::now())
                    .is_err()
                {
                    let _ = done.send(Err(MailSendError::Full));
                    return;
                }
                let h = env.header();
                let out = outbox_item(h);
                self.metrics.mail("sent");
                self.mail_job(MailJob {
                    puts: vec![(
                        id_key(OUTBOX, &h.id),
                        serde_json::to_vec(&out).unwrap_or_default(),
                    )],
                    events: vec![mail_event("sent", &item, None, None)],
                    done: Some(done),
                    ..MailJob::default()
                });
                self.mail_poll();
            }
        }
    }

    /// Refuses an item from `agency`: counted, audited, and a strike when hostile.
    fn mail_refuse(
        &mut self,
        id: InboundId,
        agency: &AgencyCode,
        item: Option<&MailItem>,
        reason: &str,
        strike: bool,
    ) {
        tracing::warn!(%agency, reason, "mail item refused");
        self.metrics.mail_reject(agency.as_str(), reason);
        if !strike && !self.mail_refusal_due(agency, reason, std::time::Instant::now()) {
            self.answer(id, item, Some(agency), false, reason);
            return;
        }
        let events = item
            .map(|i| vec![mail_event("rejected", i, Some(agency), Some(reason))])
            .unwrap_or_else(|| {
                // Nothing decoded: the event names the neighbour and the reason only.
                vec![AuditEvent::new(
                    Timestamp::now().as_millis(),
                    EventKind::Mail {
                        action: "rejected".into(),
                        message_id: String::new(),
                        item: "message".into(),
                        from: agency.clone(),
                        to: self.agency.clone(),
                        kind: String::new(),
                        size: 0,
                        peer: Some(agency.clone()),
                        reason: Some(reason.into()),
                        expires_at: None,
                        ack: None,
                        copy: None,
                    },
                )]
            });
        let respond = self.respond_after(id, item, agency, false, reason);
        self.mail_job(MailJob {
            events,
            respond,
            ..MailJob::default()
        });
        if strike {
            self.record_invalid(agency, 1);
        }
    }

    /// Whether an unstruck refusal of `reason` from `agency` is to be audited now
    /// (and if so, notes it).
    fn mail_refusal_due(
        &mut self,
        agency: &AgencyCode,
        reason: &str,
        now: std::time::Instant,
    ) -> bool {
        let key = (agency.clone(), reason.to_owned());
        let due = self
            .mail
            .refusals_logged
            .get(&key)
            .is_none_or(|t| now.duration_since(*t) >= super::AUDIT_REFUSAL_LOG_EVERY);
        if due {
            self.mail.refusals_logged.insert(key, now);
        }
        due
    }

    /// A mail request from a neighbour.
    pub(super) fn on_mail_request(&mut self, peer: PeerRef, id: InboundId, frame: Frame) {
        let Some((agency, role)) = self.agency_of(&peer) else {
            self.answer(id, None, None, false, "not_in_roster");
            return;
        };
        if role != Role::Member || self.blocked.contains(&agency) {
            self.answer(id, None, Some(&agency), false, "forbidden");
            return;
        }
        let bytes = match frame {
            Frame::Data(b) => b,
            Frame::Oversized { .. } => {
                self.mail_refuse(id, &agency, None, "oversized", true);
                return;
            }
        };
        let (item, offer) = match MailItem::decode_offered(&bytes) {
            Ok(i) => i,
            Err(e) => {
                self.mail_refuse(id, &agency, None, e.code(), true);
                return;
            }
        };
        let now = Timestamp::now();
        let roster = self.trust.roster();
        let checked = match &item {
            MailItem::Envelope(e) => e.verify(&roster, now),
            MailItem::Receipt(r) => r.verify(&roster, now),
        };
        let rosters_differ = self
            .peers
            .get(&peer)
            .and_then(|ps| ps.roster_version)
            .is_some_and(|v| v != roster.version());
        // The neighbour's signed offer of a relayed message: kept whether or not we
        // take it. Only of a copy that passes our checks, or fails them only for a
        // roster rollover (review s32-mail H1: a copy our roster cannot verify yet
        // must not look as if it was never offered), and that case at most once a
        // minute per neighbour: junk items (a bad signature, a date out of range)
        // must not grow our audit log (review s33-mail M1).
        let offer = offer
            .and_then(Result::ok)
            .filter(|o| offer_is_evidence(o, &roster, &agency, &self.agency, &item, now));
        if let Some(offer) = &offer {
            let instant = std::time::Instant::now();
            let due = match offer_log_kind(checked.as_ref().err(), rosters_differ) {
                OfferLog::Skip => false,
                OfferLog::RosterLag => self.mail_refusal_due(&agency, "offered", instant),
                OfferLog::Due => true,
            } && evidence_due(
                &mut self.mail.offers_logged,
                &mut self.mail.offers_logged_per_peer,
                (&agency, item.identity_digest()),
                (OFFER_LOG_EVERY, OFFERS_PER_NEIGHBOUR),
                instant,
            );
            if due {
                let mut event = mail_event("offered", &item, Some(&agency), None);
                if let EventKind::Mail { ack, .. } = &mut event.kind {
                    *ack = Some(offer.to_hex());
                }
                self.mail_job(MailJob {
                    events: vec![event],
                    ..MailJob::default()
                });
            }
        }
        if let Err(e) = checked {
            let (reason, strike) = verify_refusal(&e, now, rosters_differ);
            self.mail_refuse(id, &agency, Some(&item), reason, strike);
            return;
        }
        // A relayed message comes with the handing agency's valid signed offer, or
        // is not taken (review s33-mail H1: a relay that sent no offer left no trace
        // in its neighbours' logs, and could drop mail unseen). No strike: a clock
        // off by more than the skew or a roster rollover explains a bad one; the
        // item is offered again.
        if lacks_offer(offer.as_ref(), &item, &agency) {
            self.mail_refuse(id, &agency, Some(&item), NO_OFFER, false);
            return;
        }
        // Our own message, if this is its receipt (the mailer drops it on intake).
        let own = match &item {
            MailItem::Receipt(r) => self
                .mail
                .mailer
                .held_item(&(ItemKind::Message, r.body().message_id))
                .cloned(),
            MailItem::Envelope(_) => None,
        };
        match self.mail.mailer.on_item(&agency, item.clone(), now) {
            Intake::Deliver(env) => self.mail_deliver(id, &agency, &item, &env, now),
            Intake::Duplicate => {
                self.metrics.mail("duplicate");
                if let MailItem::Envelope(env) = &item {
                    let receipt = Receipt::sign(env.header(), &self.mail.keys.sign, now);
                    self.mail.mailer.queue_receipt(receipt, now);
                }
                // Honest retries, but a neighbour can send them without end: audited
                // at most once a minute per neighbour, like refusals that are no strike.
                let events =
                    if self.mail_refusal_due(&agency, "duplicate", std::time::Instant::now()) {
                        vec![mail_event(
                            "rejected",
                            &item,
                            Some(&agency),
                            Some("duplicate"),
                        )]
                    } else {
                        Vec::new()
                    };
                let respond = self.respond_after(id, Some(&item), &agency, true, "duplicate");
                self.mail_job(MailJob {
                    events,
                    respond,
                    ..MailJob::default()
                });
                self.mail_poll();
            }
            Intake::Receipt(r) => {
                self.metrics.mail("receipt");
                let mid = r.body().message_id;
                let at = r.body().received_at.as_millis();
                let mut puts = Vec::new();
                if let Some(MailItem::Envelope(env)) = own {
                    let mut o = outbox_item(env.header());
                    o.state = "delivered".into();
                    o.delivered_at = Some(at);
                    puts.push((
                        id_key(OUTBOX, &mid),
                        serde_json::to_vec(&o).unwrap_or_default(),
                    ));
                }
                let respond = self.respond_after(id, Some(&item), &agency, true, "ok");
                self.mail_job(MailJob {
                    puts,
                    events: vec![mail_event("receipt", &item, Some(&agency), None)],
                    respond,
                    notices: vec![MailNotice::Receipt {
                        message_id: mid,
                        at,
                    }],
                    ..MailJob::default()
                });
            }
            Intake::Relay => {
                self.metrics.mail("received");
                let respond = self.respond_after(id, Some(&item), &agency, true, "ok");
                // Our own signed custody ack goes into the `received` event: it names
                // the digest of the copy we took, which alone a neighbour's refusal
                // must name to excuse us (review s31-mail H1).
                let mut received = mail_event("received", &item, Some(&agency), None);
                if let Some((_, ok, _)) = &respond {
                    received = with_ack(received, ok);
                }
                self.mail_job(MailJob {
                    events: vec![received],
                    respond,
                    ..MailJob::default()
                });
                self.mail_poll();
            }
            Intake::Seen => {
                self.answer(id, Some(&item), Some(&agency), true, "seen");
            }
            Intake::Refused(r) => {
                self.mail_refuse(id, &agency, Some(&item), r.code(), r.strikes());
            }
        }
    }

    fn mail_deliver(
        &mut self,
        id: InboundId,
        agency: &AgencyCode,
        item: &MailItem,
        env: &Envelope,
        now: Timestamp,
    ) {
        // Opened with the key the header names: after a rotation, messages sealed to
        // the previous key (still listed) open as well as those sealed to the new one.
        let opened = env.open_with(&self.mail.keys.enc.get());
        let body = match opened.map(String::from_utf8) {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                let strike = unopenable_strikes(None, &env.header().from, agency);
                self.mail_refuse(id, agency, Some(item), "unopenable", strike);
                return;
            }
            Err(e) => {
                let strike = unopenable_strikes(Some(&e), &env.header().from, agency);
                let reason = match e {
                    MailError::LegacyBody => "legacy_body",
                    _ => "unopenable",
                };
                self.mail_refuse(id, agency, Some(item), reason, strike);
                return;
            }
        };
        let h = env.header();
        let entry = InboxItem {
            message_id: h.id,
            from: h.from.clone(),
            kind: h.kind.clone(),
            created_at: h.created_at.as_millis(),
            received_at: now.as_millis(),
            body,
        };
        let receipt = Receipt::sign(h, &self.mail.keys.sign, now);
        self.mail.mailer.on_delivered(env, receipt, now);
        self.metrics.mail("delivered");
        let respond = self.respond_after(id, Some(item), agency, true, "ok");
        self.mail_job(MailJob {
            puts: vec![(
                inbox_key(now.as_millis(), &h.from, &h.id),
                serde_json::to_vec(&entry).unwrap_or_default(),
            )],
            events: vec![
                mail_event("received", item, Some(agency), None),
                mail_event("delivered", item, None, None),
            ],
            respond,
            notices: vec![MailNotice::Delivered(entry)],
            ..MailJob::default()
        });
        self.mail_poll();
    }

    /// The neighbour's answer to one of our mail requests: its signed [`MailAck`],
    /// checked against the roster before it counts. Custody goes into the `handed`
    /// audit event with the signed ack; a signed refusal of this item into a
    /// `hand_refused` event; anything else that is not a valid signed answer to this
    /// hand-over is a protocol failure (see [`ack_verdict`]).
    pub(super) fn on_mail_response(&mut self, token: u64, frame: Frame) {
        let Some((agency, key, item, ticket, _)) = self.mail.pending.remove(&token) else {
            return;
        };
        let decoded = match frame {
            Frame::Data(b) => MailAck::decode(&b),
            Frame::Oversized { len, .. } => Err(MailError::TooLarge {
                what: "mail response",
                size: len,
                limit: wlnode_crypto::mail::MAX_ACK_BYTES,
            }),
        };
        let roster = self.trust.roster();
        // When we first accepted this roster version.
        let now_ms = Timestamp::now().as_millis();
        let first_used = grace_start(
            self.trust.adopted(),
            &mut self.mail.roster_seen,
            roster.version(),
            now_ms,
        );
        let rosters_differ = Rollover::judge(
            self.peers
                .iter()
                .filter(|(p, _)| self.agencies.get(p).is_some_and(|(a, _)| *a == agency))
                .filter_map(|(_, ps)| ps.roster_version),
            roster.version(),
            std::time::Duration::from_millis(now_ms.saturating_sub(first_used)),
        );
        let verdict = ack_verdict(
            decoded,
            &roster,
            &agency,
            &self.agency,
            &item,
            Timestamp::now(),
            rosters_differ,
        );
        match verdict {
            AckVerdict::Custody(ack) => {
                self.metrics.mail("handed");
                let event = with_ack(mail_event("handed", &item, Some(&agency), None), &ack);
                self.mail.mailer.on_handed(&agency, &key, ticket);
                self.mail_job(MailJob {
                    events: vec![event],
                    ..MailJob::default()
                });
            }
            AckVerdict::Refused(ack) => {
                tracing::debug!(%agency, reason = %ack.reason, "mail hand-over refused");
                self.metrics.mail("hand_refused");
                // Only relayed messages need the evidence (the auditor's
                // `mail_not_relayed` looks at nothing else): our own messages and
                // receipts are not audited (review s31-mail M5).
                let needs = refusal_needs_evidence(&item, &self.agency);
                let logged =
                    needs && self.refusal_evidence_due(&agency, key, std::time::Instant::now());
                // A signed answer: a miss of the addressee only for a reason that
                // is not its final word on the copy, the auditor's own list
                // ([`wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS`], review s36-int
                // H1; the mailer decides). A refusal of a relayed copy not logged now
                // (once an hour per neighbour and item, 1,024 per neighbour an hour)
                // is no cover in any log, so it is a miss whatever it says (review
                // of s36-fix M1: neighbours filling that cap kept the copy on an
                // addressee whose final refusal went unlogged).
                if needs && !logged {
                    self.mail.mailer.on_hand_failed(&agency, &key, ticket);
                } else {
                    self.mail
                        .mailer
                        .on_hand_refused(&agency, &key, ticket, &ack.reason);
                }
                if logged {
                    let event = with_ack(
                        mail_event("hand_refused", &item, Some(&agency), Some(&ack.reason)),
                        &ack,
                    );
                    self.mail_job(MailJob {
                        events: vec![event],
                        ..MailJob::default()
                    });
                }
            }
            AckVerdict::RefusedNoEvidence(reason) => {
                tracing::debug!(%agency, reason, "mail hand-over refused without evidence");
                self.mail.mailer.on_hand_failed(&agency, &key, ticket);
                // No evidence against the neighbour, but the relay's own word that
                // this hand-over failed (`unsigned_refusal`, `bad_time`: s36-delay).
                self.audit_hand_failed(&agency, (&item, key), reason);
            }
            AckVerdict::Bad { reason, strike } => {
                tracing::warn!(%agency, reason, "neighbour's answer to a mail hand-over is not a valid signed ack");
                self.mail.mailer.on_hand_failed(&agency, &key, ticket);
                self.metrics.mail_reject(agency.as_str(), "bad_ack");
                if strike || self.mail_refusal_due(&agency, "bad_ack", std::time::Instant::now()) {
                    self.mail_job(MailJob {
                        events: vec![mail_event(
                            "rejected",
                            &item,
                            Some(&agency),
                            Some(&format!("bad_ack: {reason}")),
                        )],
                        ..MailJob::default()
                    });
                } else {
                    // The `rejected` is audited once per neighbour, not per item: a
                    // relayed item's failure is audited as `hand_failed` (s36-delay).
                    self.audit_hand_failed(&agency, (&item, key), "bad_ack");
                }
                if strike {
                    self.record_invalid(&agency, 1);
                }
            }
        }
    }

    /// Whether `agency`'s signed refusal of `key` is to be audited now (see
    /// [`refusal_evidence_due`]).
    fn refusal_evidence_due(
        &mut self,
        agency: &AgencyCode,
        key: ItemKey,
        now: std::time::Instant,
    ) -> bool {
        refusal_evidence_due(
            &mut self.mail.refusals_evidenced,
            &mut self.mail.refusals_evidenced_per_peer,
            agency,
            key,
            now,
        )
    }

    /// One of our mail requests failed. A failed hand-over of a relayed message to
    /// any neighbour is audited (`hand_failed`, metadata only, the failure in
    /// `reason`: [`request_failure_reason`]), within the caps of [`HandFailures`]
    /// (review s34-mail M1, s35-mail M1, M2, L4; s36-delay): an auditor takes these
    /// as the relay's word, to clear it (see [`HAND_FAILED_LOG_EVERY`] for the one
    /// pair finding they can help make), never to name the neighbour alone. A
    /// request that found the connection's streams all taken (`Busy`) is audited the
    /// same (`stream`, the same caps) but tells the mailer so
    /// ([`Mailer::on_hand_busy`]: offered again after a short pause, oldest first,
    /// its backoff untouched: review s37-order H1).
    pub(super) fn on_mail_failed(&mut self, token: u64, failure: wlnode_net::RequestFailure) {
        let Some((agency, key, item, ticket, _)) = self.mail.pending.remove(&token) else {
            return;
        };
        let reason = end_failed_hand_over(&mut self.mail.mailer, &agency, &key, ticket, failure);
        self.audit_hand_failed(&agency, (&item, key), reason);
    }

    /// Audits a failed hand-over of `item` to `agency` for `reason` (`hand_failed`),
    /// if [`HandFailures::due`] says so.
    fn audit_hand_failed(
        &mut self,
        agency: &AgencyCode,
        (item, key): (&MailItem, ItemKey),
        reason: &'static str,
    ) {
        let Some(reason) = self.mail.failures.due(
            (item, key),
            &self.agency,
            agency,
            reason,
            std::time::Instant::now(),
        ) else {
            return;
        };
        self.mail_job(MailJob {
            events: vec![mail_event("hand_failed", item, Some(agency), Some(reason))],
            ..MailJob::default()
        });
    }

    /// Whether `token` is one of our mail requests.
    pub(super) fn is_mail_token(&self, token: u64) -> bool {
        self.mail.pending.contains_key(&token)
    }

    /// Hands out what the mailer says, and expires what is due (called on the tick
    /// and after changes).
    pub(super) fn mail_poll(&mut self) {
        let now = Timestamp::now();
        let connected: BTreeSet<AgencyCode> = self
            .agencies
            .values()
            .filter(|(a, r)| *r == Role::Member && *a != self.agency)
            .map(|(a, _)| a.clone())
            .collect();
        for a in connected.difference(&self.mail.connected.clone()) {
            self.mail.mailer.on_connected(a);
        }
        self.mail.connected = connected.clone();
        // Ends of our hand-overs that matched no request in flight since the last
        // poll: they changed nothing (s37 final review L6: dropped silently before).
        let unmatched = self.mail.mailer.take_unmatched_ends();
        if unmatched > 0 {
            tracing::debug!(
                unmatched,
                "mail hand-over ends that matched no request in flight"
            );
            self.metrics.mail_n("unmatched_end", unmatched);
        }
        // Our requests with no end for `MailLimits::stale_request_ms` end as timed
        // out, before the mailer's own sweep in `retry` (which then finds them
        // ended): the mailer offers the item again, a relayed message's is audited
        // `hand_failed` `timeout` within the same caps, and the request is
        // forgotten (review s38 L2, L3; review of the s38 fixes R2: the addressee's
        // request, a miss after 10 s, was never handed back by the mailer, and each
        // such entry kept its item here for good; third review L1: the mailer's
        // ticket is ended too, whatever its clock says).
        let bound = std::time::Duration::from_millis(self.mail.mailer.limits().stale_request_ms);
        let lost: Vec<u64> = self
            .mail
            .pending
            .iter()
            .filter(|(_, p)| p.4.elapsed() >= bound)
            .map(|(token, _)| *token)
            .collect();
        let lost_here = lost.len();
        for token in lost {
            self.on_mail_failed(token, wlnode_net::RequestFailure::Timeout);
        }
        self.mail.mailer.retry(now);
        // With those, the hand-overs the mailer's retry ended as failures for the
        // same reason (a backstop: the ones above are ended already). An end was
        // lost, which should never happen, so it is a warning.
        let stale = lost_here + self.mail.mailer.take_stale_requests().len();
        if stale > 0 {
            tracing::warn!(
                stale,
                "mail hand-overs with no end reported long past the request timeout: ended as failures, offered again"
            );
            self.metrics.mail_n("stale_request", stale as u64);
        }
        let (sends, events) = self.mail.mailer.poll(&connected, now);
        let mut job = MailJob::default();
        for ev in events {
            match ev {
                MailEvent::Expired { id, header } => {
                    self.metrics.mail("expired");
                    job.events.push(AuditEvent::new(
                        now.as_millis(),
                        EventKind::Mail {
                            action: "expired".into(),
                            message_id: id.to_hex(),
                            item: "message".into(),
                            from: self.agency.clone(),
                            to: header.to.clone(),
                            kind: header.kind.clone(),
                            size: u64::from(header.size),
                            peer: None,
                            reason: None,
                            expires_at: Some(header.expires_at.as_millis()),
                            ack: None,
                            copy: None,
                        },
                    ));
                    job.notices.push(MailNotice::Expired { message_id: id });
                    let mut o = outbox_item(&header);
                    o.state = "expired".into();
                    job.puts.push((
                        id_key(OUTBOX, &id),
                        serde_json::to_vec(&o).unwrap_or_default(),
                    ));
                }
                MailEvent::RelayExpired { key } => {
                    self.metrics.mail("relay_expired");
                    tracing::info!(message = %key.1, "relayed mail item expired in transit");
                }
                MailEvent::NoStream { key, to } => {
                    if let Some(e) = no_stream_event(
                        &mut self.mail.failures,
                        &self.mail.mailer,
                        &self.agency,
                        (key, &to),
                        std::time::Instant::now(),
                    ) {
                        job.events.push(e);
                    }
                }
            }
        }
        for s in sends {
            let Some(peer) = self
                .agencies
                .iter()
                .find(|(_, (a, _))| *a == s.to)
                .map(|(p, _)| *p)
            else {
                self.mail.mailer.on_hand_failed(&s.to, &s.key, s.ticket);
                continue;
            };
            self.next_token += 1;
            let token = self.next_token;
            let Ok(item) = MailItem::decode(&s.frame) else {
                self.mail.mailer.on_hand_failed(&s.to, &s.key, s.ticket);
                continue;
            };
            // Our signed offer goes with every hand-over (`/wlnode/mail/5`): the
            // neighbour's log keeps it, so the route we chose is evidence there.
            let offer = HandoverOffer::sign(&item, &self.agency, &s.to, now, &self.mail.keys.sign);
            let frame = item.encode_offered(&offer);
            self.mail.pending.insert(
                token,
                (
                    s.to.clone(),
                    s.key,
                    item,
                    s.ticket,
                    std::time::Instant::now(),
                ),
            );
            self.net.mail_request(peer, token, Bytes::from(frame));
        }
        if !job.events.is_empty() || !job.notices.is_empty() {
            self.mail_job(job);
        } else {
            let writes = self.mail.mailer.take_writes();
            if !writes.is_empty() {
                self.mail_job(MailJob {
                    writes,
                    ..MailJob::default()
                });
            }
        }
    }
}

/// What a neighbour's answer to our hand-over amounts to.
#[derive(Debug)]
enum AckVerdict {
    /// A valid signed custody ack for this item from us: evidence for `handed`.
    Custody(MailAck),
    /// A valid signed refusal of this item from us: evidence for `hand_refused`.
    Refused(MailAck),
    /// A valid signed refusal naming neither the item nor us (the neighbour could not
    /// tell: `unsigned_refusal`), or one whose time is off by more than the clock
    /// skew (`bad_time`): not custody, no strike, no evidence against the neighbour;
    /// a relayed item's is audited as `hand_failed` with this reason (s36-delay).
    RefusedNoEvidence(&'static str),
    /// Not a valid signed answer to this hand-over: refused as custody, counted,
    /// audited, and a strike unless a roster rollover explains it.
    Bad {
        /// Why (`malformed`, `oversized`, `forged`, `mismatch`).
        reason: &'static str,
        /// A strike against the neighbour.
        strike: bool,
    },
}

/// Judges `agency`'s answer to our (`me`) hand-over of `item` at `now`: the signature
/// and key against the roster, the signed fields against the hand-over, the signed
/// time against our clock (see [`AckVerdict`]). A missing or unsigned answer (an
/// older build's) is `Bad`.
fn ack_verdict(
    decoded: Result<MailAck, MailError>,
    roster: &wlnode_crypto::roster::Roster,
    agency: &AgencyCode,
    me: &AgencyCode,
    item: &MailItem,
    now: Timestamp,
    rosters_differ: Rollover,
) -> AckVerdict {
    let ack = match decoded {
        Ok(a) => a,
        Err(e) => {
            return AckVerdict::Bad {
                reason: e.code(),
                strike: true,
            };
        }
    };
    if let Err(e) = ack.verify(roster, agency) {
        let strike = ack_error_strikes(&e, rosters_differ);
        return AckVerdict::Bad {
            reason: e.code(),
            strike,
        };
    }
    match ack.fit(item, me) {
        AckFit::Mismatch => AckVerdict::Bad {
            reason: "mismatch",
            strike: true,
        },
        AckFit::Anonymous => AckVerdict::RefusedNoEvidence("unsigned_refusal"),
        AckFit::Exact => {
            let at = ack.body().at.as_millis();
            if at.abs_diff(now.as_millis()) > MAX_CLOCK_SKEW_MS {
                AckVerdict::RefusedNoEvidence("bad_time")
            } else if ack.accepted {
                AckVerdict::Custody(ack)
            } else {
                AckVerdict::Refused(ack)
            }
        }
    }
}

/// Loads the mailer's state from the mail table.
pub(crate) async fn load_mailer(
    store: &StoreHandle,
    mut mailer: Mailer,
) -> Result<Mailer, wlnode_store::StoreError> {
    let mut from = vec![b'q'];
    let mut pairs = Vec::new();
    // Held items (`q`), their places in the custody order (`r`) and seen ids
    // (`s`), page by page.
    loop {
        let f = from.clone();
        let page = store
            .call(move |s| {
                s.table_range(LocalTable::Mail, &f, b"t", wlnode_store::tables::MAX_RANGE)
            })
            .await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        from = last.clone();
        from.push(0);
        let n = page.len();
        pairs.extend(page);
        if n < wlnode_store::tables::MAX_RANGE {
            break;
        }
    }
    let bad = mailer.restore(pairs);
    if !bad.is_empty() {
        tracing::warn!(entries = bad.len(), "unreadable mail table entries dropped");
        store
            .call(move |s| {
                for k in &bad {
                    let mut end = k.clone();
                    end.push(0);
                    s.table_remove_range(LocalTable::Mail, k, &end, 1)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(mailer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sealed test message with id `[n; 16]` from `from` to `to`, living an hour
    /// from a fixed time (one signing key, one recipient key, for the whole test).
    fn sealed_for_test() -> impl Fn(u8, &str, &str) -> Envelope {
        let key = wlnode_crypto::SecretKey::from_seed(&[3; 32]);
        let enc = wlnode_crypto::seal::EncryptionSecretKey::generate().unwrap();
        move |n, from, to| {
            Envelope::seal(
                &wlnode_crypto::mail::Draft {
                    id: wlnode_crypto::model::MessageId([n; 16]),
                    from: from.parse().unwrap(),
                    to: to.parse().unwrap(),
                    kind: "test",
                    created_at: Timestamp(1_780_000_000_000),
                    expires_at: Timestamp(1_780_003_600_000),
                    plaintext: b"x",
                },
                &key,
                &enc.public_key().unwrap(),
            )
            .unwrap()
        }
    }
    use wlnode_crypto::roster::RosterError;

    /// Review of issue 21, finding 8: every verification failure was a strike, so
    /// clock skew and a roster rollover could get honest neighbours banned.
    #[test]
    fn skew_and_roster_lag_are_refused_without_a_strike() {
        let now = Timestamp(1_780_000_000_000);
        let just = MailError::Expired {
            expires_at: Timestamp(now.as_millis() - 1000),
        };
        assert_eq!(verify_refusal(&just, now, false), ("expired", false));
        let long = MailError::Expired {
            expires_at: Timestamp(now.as_millis() - MAX_CLOCK_SKEW_MS - 1),
        };
        assert_eq!(verify_refusal(&long, now, false), ("replayed", true));
        let future = MailError::FromTheFuture {
            created_at: Timestamp(now.as_millis() + 10 * MAX_CLOCK_SKEW_MS),
        };
        assert!(!verify_refusal(&future, now, false).1);
        let unknown = MailError::Signer(RosterError::UnknownAgency("ZZ-X".into()));
        assert_eq!(verify_refusal(&unknown, now, true), ("forged", false));
        assert_eq!(verify_refusal(&unknown, now, false), ("forged", true));
        assert!(verify_refusal(&MailError::BadSignature, now, true).1);
    }

    /// Review s33-mail M1: a neighbour's valid offer of an item that fails our checks
    /// for anything but a roster rollover (an expired, future-dated or badly signed
    /// item a member makes at will) is not audited; before the fix every such offer
    /// was, up to 1,024 an hour per neighbour, with no strike. Roster lag is audited
    /// at the once-a-minute rate, a valid item normally.
    #[test]
    fn offers_of_junk_items_are_not_audited() {
        let now = Timestamp(1_780_000_000_000);
        let expired = MailError::Expired {
            expires_at: Timestamp(now.as_millis() - 1000),
        };
        let future = MailError::FromTheFuture {
            created_at: Timestamp(now.as_millis() + 10 * MAX_CLOCK_SKEW_MS),
        };
        for junk in [&expired, &future, &MailError::BadSignature] {
            assert_eq!(
                offer_log_kind(Some(junk), false),
                OfferLog::Skip,
                "{junk:?}"
            );
            assert_eq!(offer_log_kind(Some(junk), true), OfferLog::Skip, "{junk:?}");
        }
        let unknown = MailError::Signer(RosterError::UnknownAgency("ZZ-X".into()));
        assert_eq!(offer_log_kind(Some(&unknown), true), OfferLog::RosterLag);
        assert_eq!(offer_log_kind(Some(&unknown), false), OfferLog::Skip);
        assert_eq!(offer_log_kind(None, false), OfferLog::Due);
    }

    /// Review s31-mail L2: an ack signed with a key our newer roster revokes is no
    /// strike while the rosters differ (as for an unknown key); otherwise it is.
    /// Review s31-fixes X6: for a revoked key only while the neighbour announces an
    /// older version and we have used ours for less than REVOCATION_GRACE (before
    /// the fix any claimed older version excused it forever); a newer claimed
    /// version excuses nothing.
    #[test]
    fn a_revoked_ack_signer_is_no_strike_during_a_roster_rollover() {
        use std::time::Duration;
        let revoked = MailError::RevokedSigner {
            agency: "AA-X".parse().unwrap(),
            key: "ed25519:00".into(),
        };
        let revoked_at = MailError::Signer(RosterError::RevokedKey {
            agency: "AA-X".into(),
            key: "ed25519:00".into(),
            revoked_at: Timestamp(1),
            at: Timestamp(2),
        });
        let fresh = Rollover::judge([4], 5, Duration::from_secs(60));
        let stale = Rollover::judge([4], 5, REVOCATION_GRACE + Duration::from_secs(1));
        let newer = Rollover::judge([6], 5, Duration::from_secs(60));
        let same = Rollover::judge([5], 5, Duration::from_secs(60));
        for e in [&revoked, &revoked_at] {
            assert!(!ack_error_strikes(e, fresh));
            assert!(ack_error_strikes(e, stale));
            assert!(ack_error_strikes(e, newer));
            assert!(ack_error_strikes(e, same));
        }
        let unknown = MailError::Signer(RosterError::UnknownAgency("ZZ-X".into()));
        assert!(!ack_error_strikes(&unknown, fresh));
        assert!(!ack_error_strikes(&unknown, stale));
        assert!(!ack_error_strikes(&unknown, newer));
        assert!(ack_error_strikes(&unknown, same));
        assert!(ack_error_strikes(&MailError::BadSignature, fresh));
    }

    /// Review s33-mail L2: after a live reload to a roster that revokes a key, the
    /// grace starts at the adoption the anchor records, not at the first ack judged
    /// under the roster: an ack judged two graces after the adoption is past it
    /// (before the fix, the grace began at that ack, and the revoked key was excused
    /// for another hour). A restart and a reload agree, and an adoption time ahead of
    /// the clock does not hold the grace open.
    #[test]
    fn the_grace_of_a_reloaded_roster_starts_at_its_adoption() {
        use std::time::Duration;
        let grace = REVOCATION_GRACE.as_millis() as u64;
        let adopted_at = 1_780_000_000_000u64;
        let now = adopted_at + 2 * grace;
        // Version 4 in force since start; the reload anchors version 5.
        let mut seen = Some((4, adopted_at - 10 * grace));
        let start = grace_start(Some((5, adopted_at)), &mut seen, 5, now);
        assert_eq!(start, adopted_at);
        let elapsed = Duration::from_millis(now - start);
        assert!(!Rollover::judge([4], 5, elapsed).revocation_news);
        // After a restart (the cell noted the same anchor), the same.
        let mut fresh = None;
        assert_eq!(
            grace_start(Some((5, adopted_at)), &mut fresh, 5, now),
            adopted_at
        );
        // No adoption time recorded for this version: from the first ack judged.
        let mut none = None;
        assert_eq!(grace_start(Some((4, adopted_at)), &mut none, 5, now), now);
        assert_eq!(grace_start(None, &mut none, 5, now + 1), now);
        // An adoption time ahead of the clock counts from the first time it is
        // seen ahead, and the grace then ends (review s34-mail L2: it restarted
        // at every call).
        let mut ahead = None;
        let future = Some((5, now + 365 * 24 * grace));
        assert_eq!(grace_start(future, &mut ahead, 5, now), now);
        let later = now + 2 * grace;
        let start = grace_start(future, &mut ahead, 5, later);
        assert_eq!(start, now);
        let elapsed = Duration::from_millis(later - start);
        assert!(!Rollover::judge([4], 5, elapsed).revocation_news);
    }

    /// Review s31-mail M5: `hand_refused` evidence only for messages we relay, once
    /// per item an hour and at most HAND_REFUSED_PER_NEIGHBOUR per neighbour an hour.
    #[test]
    fn refusal_evidence_is_logged_for_relayed_messages_only_and_capped_per_neighbour() {
        use wlnode_crypto::model::MessageId;
        let a: AgencyCode = "AA-X".parse().unwrap();
        let me: AgencyCode = "BB-X".parse().unwrap();
        let sealed = sealed_for_test();
        let env = |from: &str| sealed(1, from, "CC-X");
        assert!(refusal_needs_evidence(
            &MailItem::Envelope(env("AA-X")),
            &me
        ));
        assert!(!refusal_needs_evidence(
            &MailItem::Envelope(env("BB-X")),
            &me
        ));
        let (mut per_item, mut per_peer) = Default::default();
        let t = std::time::Instant::now();
        let item = |n: usize| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            (wlnode_sync::mail::ItemKind::Message, MessageId(id))
        };
        assert!(refusal_evidence_due(
            &mut per_item,
            &mut per_peer,
            &a,
            item(0),
            t
        ));
        // The same item again within the hour: not logged.
        assert!(!refusal_evidence_due(
            &mut per_item,
            &mut per_peer,
            &a,
            item(0),
            t
        ));
        for n in 1..HAND_REFUSED_PER_NEIGHBOUR {
            assert!(refusal_evidence_due(
                &mut per_item,
                &mut per_peer,
                &a,
                item(n),
                t
            ));
        }
        // Past the cap for this neighbour: not logged; another neighbour still is.
        let n = HAND_REFUSED_PER_NEIGHBOUR;
        assert!(!refusal_evidence_due(
            &mut per_item,
            &mut per_peer,
            &a,
            item(n),
            t
        ));
        let b: AgencyCode = "DD-X".parse().unwrap();
        assert!(refusal_evidence_due(
            &mut per_item,
            &mut per_peer,
            &b,
            item(n),
            t
        ));
        // An hour later the neighbour's count starts again.
        let later = t + HAND_REFUSED_LOG_EVERY;
        assert!(refusal_evidence_due(
            &mut per_item,
            &mut per_peer,
            &a,
            item(n),
            later
        ));
    }

    /// Review s34-mail L4 (and s33-mail L1): driven across many hours at every
    /// neighbour's hourly cap, the slots never hold more than the entries inserted
    /// within the keep time plus one bucket (before: up to twice the live entries,
    /// or the 65,536-entry prune floor, whichever was more), copies stay
    /// deduplicated for exactly the keep time, and entries past it go.
    #[test]
    fn evidence_slots_stay_within_the_live_window_across_hours() {
        let every = std::time::Duration::from_secs(4 * 3600);
        let cap = OFFERS_PER_NEIGHBOUR;
        let mut slots = EvidenceSlots::<[u8; 32]>::default();
        let mut per_peer = std::collections::HashMap::new();
        let t = std::time::Instant::now();
        let neighbours: Vec<AgencyCode> = ["AA-X", "BB-X"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        let digest = |n: usize, i: u64| {
            let mut d = [n as u8; 32];
            d[..8].copy_from_slice(&i.to_be_bytes());
            d
        };
        // Each neighbour offers `cap` new copies an hour, plus last hour's copies
        // again (deduplicated within the keep time), for 40 hours.
        let bound = neighbours.len() * cap * (every.as_secs() as usize / 3600 + 2);
        let mut most = 0;
        for hour in 0..40u64 {
            let at = t + std::time::Duration::from_secs(3600 * hour);
            for (n, a) in neighbours.iter().enumerate() {
                for i in 0..cap as u64 {
                    let fresh = hour * cap as u64 + i;
                    assert!(evidence_due(
                        &mut slots,
                        &mut per_peer,
                        (a, digest(n, fresh)),
                        (every, cap),
                        at,
                    ));
                    most = most.max(slots.len());
                    if hour > 0 {
                        let again = fresh - cap as u64;
                        assert!(!evidence_due(
                            &mut slots,
                            &mut per_peer,
                            (a, digest(n, again)),
                            (every, cap),
                            at,
                        ));
                    }
                }
            }
            // Entries inserted within the keep time, plus the bucket being dropped.
            let live = neighbours.len() * cap * (hour.min(every.as_secs() / 3600) as usize + 1);
            assert!(
                slots.len() <= live + neighbours.len() * cap,
                "hour {hour}: {} held, {live} live",
                slots.len()
            );
        }
        assert!(most <= bound, "{most} held, bound {bound}");
        // Exactly the keep time: a copy audited at `at` is not due before `at +
        // every`, and due then (its bucket may still be held).
        let a = &neighbours[0];
        let at = t + std::time::Duration::from_secs(3600 * 40);
        let copy = digest(0, u64::MAX);
        assert!(evidence_due(
            &mut slots,
            &mut per_peer,
            (a, copy),
            (every, cap),
            at
        ));
        let before = at + every - std::time::Duration::from_millis(1);
        assert!(!evidence_due(
            &mut slots,
            &mut per_peer,
            (a, copy),
            (every, cap),
            before
        ));
        assert!(evidence_due(
            &mut slots,
            &mut per_peer,
            (a, copy),
            (every, cap),
            at + every
        ));
        // Long after, one insert drops every stale bucket.
        let much_later = at + 10 * every;
        assert!(evidence_due(
            &mut slots,
            &mut per_peer,
            (a, digest(0, 1)),
            (every, cap),
            much_later
        ));
        assert_eq!(slots.len(), 1);
    }

    /// Review s35-mail M4, L3: a neighbour whose slots pass their bound (here by
    /// inserting far past its hourly cap, as a broken limiter would) evicts only its
    /// own oldest entries: an honest neighbour's entries all stay, the flooder never
    /// holds more than `cap × (every / 1 h + 2)`, and its entries of the current hour
    /// are never all dropped (before the fix one cap for all neighbours dropped the
    /// oldest bucket, honest entries included, and could drop the current one).
    #[test]
    fn a_flooding_neighbour_evicts_only_its_own_evidence_slots() {
        let every = std::time::Duration::from_secs(2 * 3600);
        let cap = 100;
        let max = cap * 4;
        let mut slots = EvidenceSlots::<[u8; 32]>::default();
        let t = std::time::Instant::now();
        let (honest, flooder): (AgencyCode, AgencyCode) =
            ("BB-X".parse().unwrap(), "AA-X".parse().unwrap());
        let digest = |n: u8, i: u64| {
            let mut d = [n; 32];
            d[..8].copy_from_slice(&i.to_be_bytes());
            d
        };
        for i in 0..50 {
            slots.insert(&honest, digest(1, i), t, (every, cap));
        }
        for hour in 0..6u64 {
            let at = t + std::time::Duration::from_secs(3600 * hour);
            for i in 0..1_000u64 {
                slots.insert(&flooder, digest(2, hour * 1_000 + i), at, (every, cap));
                assert!(slots.len_of(&flooder) <= max, "hour {hour}");
            }
            // The current hour's first entry is still held.
            assert_eq!(slots.get(&flooder, &digest(2, hour * 1_000)), Some(at));
            if hour <= 2 {
                // Within the keep time: every honest entry is still held.
                for i in 0..50 {
                    assert_eq!(slots.get(&honest, &digest(1, i)), Some(t), "hour {hour}");
                }
                assert_eq!(slots.len_of(&honest), 50);
            }
        }
        assert!(slots.len() <= max + 50);
    }

    /// s37 final review L1: the stream limit per connection (`net`), the most
    /// hand-overs a mailer's round offers a neighbour whose streams were full
    /// (sync, which cannot depend on net: its default is checked here), and the
    /// auditor's `MAIL_STREAMS` (how many of the addressee's events with the relay
    /// explain a `stream` failure) are one number: lowered in one place only, an
    /// honest relay whose fewer streams were full would find no excuse in the
    /// auditor's trace.
    #[test]
    fn the_stream_limit_is_one_number_in_net_the_mailer_and_the_auditor() {
        use wlnode_sync::mail::{FULL_STREAMS_BATCH, MailLimits};
        assert_eq!(FULL_STREAMS_BATCH, wlnode_net::MAX_STREAMS);
        assert_eq!(
            MailLimits::default().full_streams_batch,
            wlnode_net::MAX_STREAMS
        );
        assert_eq!(wlnode_audit::verify::MAIL_STREAMS, wlnode_net::MAX_STREAMS);
    }

    /// The mailer's sweep of hand-overs whose end never came waits well past the
    /// network's request timeout, so a slow answer is never taken for a lost one
    /// (and two requests of one item to one neighbour are never open because of it).
    #[test]
    fn a_lost_end_is_swept_only_long_after_the_request_timeout() {
        let limits = wlnode_sync::mail::MailLimits::default();
        let timeout = u64::try_from(wlnode_net::REQUEST_TIMEOUT.as_millis()).unwrap();
        assert!(
            limits.stale_request_ms >= 4 * timeout,
            "{} ms against a {timeout} ms timeout",
            limits.stale_request_ms
        );
    }

    /// s37 final review M3: the runtime's half of review s37-order H1. A request
    /// that found no stream (`Busy`) must reach [`Mailer::on_hand_busy`], so the
    /// copy is offered again at the neighbour's next round (1 s), and any other
    /// failure [`Mailer::on_hand_failed`], so it waits for the item's backoff; both
    /// are audited with their reason (`stream` for `Busy`). A copy held back at a
    /// round (`NoStream`) is audited `hand_failed` `stream` within the same caps:
    /// once per item and neighbour an hour, and never for an item we no longer
    /// hold or our own message. Reverting the dispatch to `on_hand_failed` for
    /// every failure, or the `NoStream` mapping, fails this test.
    #[test]
    fn a_failed_hand_over_reaches_the_mailer_by_kind_and_a_held_back_copy_is_audited_stream() {
        use wlnode_crypto::model::MessageId;
        use wlnode_net::RequestFailure as F;
        use wlnode_sync::mail::MailLimits;
        let env = sealed_for_test();
        let me: AgencyCode = "BB-X".parse().unwrap();
        let sender: AgencyCode = "AA-X".parse().unwrap();
        let addressee: AgencyCode = "CC-X".parse().unwrap();
        let connected: BTreeSet<AgencyCode> = [sender.clone(), addressee.clone()].into();
        let t0 = Timestamp(1_780_000_001_000);
        let later = Timestamp(1_780_000_002_000);
        for (failure, offered_again, reason) in [
            (F::Busy, true, "stream"),
            (F::Stream, false, "stream"),
            (F::Timeout, false, "timeout"),
            (F::ConnectionClosed, false, "closed"),
        ] {
            let mut mailer = Mailer::new(me.clone(), MailLimits::default());
            let _ = mailer.on_item(&sender, MailItem::Envelope(env(1, "AA-X", "CC-X")), t0);
            let (sends, _) = mailer.poll(&connected, t0);
            let [s] = sends.as_slice() else {
                panic!("one hand-over, to the addressee: {sends:?}");
            };
            assert_eq!(s.to, addressee);
            let got = end_failed_hand_over(&mut mailer, &s.to, &s.key, s.ticket, failure);
            assert_eq!(got, reason, "{failure:?}");
            // No retry run: only a copy that was not counted as tried is offered
            // again, at the neighbour's round a second later.
            let (sends, _) = mailer.poll(&connected, later);
            assert_eq!(
                sends.iter().any(|s| s.to == addressee),
                offered_again,
                "{failure:?}"
            );
        }
        // A copy held back at a round.
        let mut mailer = Mailer::new(me.clone(), MailLimits::default());
        let relayed = env(1, "AA-X", "CC-X");
        let relayed_key = (ItemKind::Message, relayed.header().id);
        let _ = mailer.on_item(&sender, MailItem::Envelope(relayed), t0);
        mailer
            .send(env(2, "BB-X", "CC-X"), t0)
            .expect("room for our own");
        let own_key = (ItemKind::Message, MessageId([2; 16]));
        let gone_key = (ItemKind::Message, MessageId([9; 16]));
        let mut failures = HandFailures::default();
        let now = std::time::Instant::now();
        let event = no_stream_event(&mut failures, &mailer, &me, (relayed_key, &addressee), now)
            .expect("a held-back relayed copy is audited");
        match &event.kind {
            EventKind::Mail {
                action,
                peer,
                reason,
                message_id,
                ..
            } => {
                assert_eq!(action, "hand_failed");
                assert_eq!(peer.as_ref(), Some(&addressee));
                assert_eq!(reason.as_deref(), Some("stream"));
                assert_eq!(*message_id, MessageId([1; 16]).to_hex());
            }
            other => panic!("not a mail event: {other:?}"),
        }
        // Within the caps: the same copy and neighbour not again within the hour.
        assert!(
            no_stream_event(&mut failures, &mailer, &me, (relayed_key, &addressee), now).is_none()
        );
        assert!(no_stream_event(&mut failures, &mailer, &me, (own_key, &addressee), now).is_none());
        assert!(
            no_stream_event(&mut failures, &mailer, &me, (gone_key, &addressee), now).is_none()
        );
    }

    /// Review s35-mail M1, M2, L4, s34-mail M1, and s36-delay: a failed hand-over is
    /// audited (`hand_failed`) for a message we relay, to ANY neighbour (not only its
    /// addressee), for every failure (`timeout`, `unsupported`, `stream`, `closed`,
    /// `dial`, and from the answer paths `unsigned_refusal`, `bad_time`, `bad_ack`),
    /// never for our own messages or receipts; once per neighbour and item an hour,
    /// at most [`HAND_FAILED_PER_NEIGHBOUR`] per neighbour an hour, and at most
    /// [`HAND_FAILED_PER_HOUR`] across neighbours an hour. (Before s36-delay only
    /// `timeout`/`unsupported` to the addressee were audited: the non-addressee and
    /// new-reason cases below failed then.)
    #[test]
    fn failed_hand_overs_of_relayed_messages_are_evidence_within_their_caps() {
        use wlnode_crypto::model::MessageId;
        use wlnode_net::RequestFailure as F;
        let sealed = sealed_for_test();
        let env = |n: u8, from: &str, to: &str| MailItem::Envelope(sealed(n, from, to));
        let me: AgencyCode = "BB-X".parse().unwrap();
        let addressee: AgencyCode = "CC-X".parse().unwrap();
        let other: AgencyCode = "DD-X".parse().unwrap();
        let relayed = env(1, "AA-X", "CC-X");
        let own = env(2, "BB-X", "CC-X");
        assert!(hand_failure_evidence(&relayed, &me));
        assert!(!hand_failure_evidence(&own, &me));
        assert_eq!(
            [
                F::Timeout,
                F::Unsupported,
                F::Stream,
                F::ConnectionClosed,
                F::Dial,
                F::Busy
            ]
            .map(request_failure_reason),
            [
                "timeout",
                "unsupported",
                "stream",
                "closed",
                "dial",
                "stream"
            ]
        );
        let item_key = |n: u32| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            (ItemKind::Message, MessageId(id))
        };
        let t = std::time::Instant::now();
        let hour = std::time::Duration::from_secs(3600);
        let due = |failures: &mut HandFailures,
                   to: &AgencyCode,
                   item: &MailItem,
                   n: u32,
                   reason: &'static str,
                   at: std::time::Instant| {
            failures.due((item, item_key(n)), &me, to, reason, at)
        };
        let mut failures = HandFailures::default();
        // Every reason, to the addressee and to another neighbour, each once.
        for (n, reason) in [
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
            let n = 100 + n as u32;
            for to in [&addressee, &other] {
                assert_eq!(
                    due(&mut failures, to, &relayed, n, reason, t),
                    Some(reason),
                    "{reason} to {to}"
                );
            }
        }
        // Our own message: never audited, no budget used.
        assert_eq!(due(&mut failures, &addressee, &own, 1, "timeout", t), None);
        // Once per neighbour and item an hour, whatever the reason; the other
        // neighbour has its own slot for the same item.
        let mut failures = HandFailures::default();
        assert_eq!(
            due(&mut failures, &addressee, &relayed, 1, "closed", t),
            Some("closed")
        );
        let soon = t + std::time::Duration::from_secs(300);
        assert_eq!(
            due(&mut failures, &addressee, &relayed, 1, "timeout", soon),
            None
        );
        assert_eq!(
            due(&mut failures, &other, &relayed, 1, "stream", soon),
            Some("stream")
        );
        assert_eq!(
            due(&mut failures, &addressee, &relayed, 1, "timeout", t + hour),
            Some("timeout")
        );
        // Per neighbour (addressee or not), then across neighbours, within one hour.
        let neighbours: Vec<AgencyCode> = ["CC-X", "DD-X", "EE-X", "FF-X", "GG-X"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect();
        let later = t + 5 * hour;
        let mut failures = HandFailures::default();
        let mut audited = Vec::new();
        for to in &neighbours {
            let n = (0..HAND_FAILED_PER_NEIGHBOUR as u32 + 10)
                .filter(|n| due(&mut failures, to, &relayed, *n, "stream", later).is_some())
                .count();
            audited.push(n);
        }
        assert_eq!(
            audited,
            [1024, 1024, 1024, 1024, 0],
            "{HAND_FAILED_PER_NEIGHBOUR} per neighbour, {HAND_FAILED_PER_HOUR} in all"
        );
        // The next hour, the budget is back.
        assert_eq!(
            due(
                &mut failures,
                &neighbours[4],
                &relayed,
                1,
                "unsigned_refusal",
                later + hour
            ),
            Some("unsigned_refusal")
        );
    }

    /// s36-delay: a neighbour's answer that names neither the item nor us (an older
    /// build that could not decode it, or one refusing anonymously on purpose) and a
    /// signed answer dated outside the clock skew are no custody and no evidence
    /// against the neighbour, and come back with the `hand_failed` reasons the relay
    /// audits them under (`unsigned_refusal`, `bad_time`; before s36 the first was
    /// `anonymous` and neither was audited). A fitting, timely one is custody.
    #[test]
    fn unsigned_and_late_answers_carry_their_hand_failed_reasons() {
        use wlnode_config::roster_edit::{self, NewMember};
        use wlnode_crypto::model::MessageId;
        let authority = wlnode_crypto::SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        let mut keys = Vec::new();
        for code in ["AA-X", "BB-X", "CC-X"] {
            let key = wlnode_crypto::SecretKey::generate().unwrap();
            text = roster_edit::add_member(
                &text,
                &NewMember::coded(
                    code,
                    Role::Member,
                    key.public_key(),
                    vec![],
                    &["eu"],
                    Timestamp(Timestamp::now().as_millis() - 3_600_000),
                )
                .unwrap(),
            )
            .unwrap();
            keys.push(key);
        }
        let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
        let (relay, addressee): (AgencyCode, AgencyCode) =
            ("BB-X".parse().unwrap(), "CC-X".parse().unwrap());
        let enc = wlnode_crypto::seal::EncryptionSecretKey::generate().unwrap();
        let now = Timestamp::now();
        let item = MailItem::Envelope(
            Envelope::seal(
                &wlnode_crypto::mail::Draft {
                    id: MessageId([1; 16]),
                    from: "AA-X".parse().unwrap(),
                    to: addressee.clone(),
                    kind: "test",
                    created_at: now,
                    expires_at: Timestamp(now.as_millis() + 3_600_000),
                    plaintext: b"x",
                },
                &keys[0],
                &enc.public_key().unwrap(),
            )
            .unwrap()
            .next_hop(),
        );
        let judge = |ack: MailAck| {
            ack_verdict(
                Ok(ack),
                &roster,
                &addressee,
                &relay,
                &item,
                now,
                Rollover::default(),
            )
        };
        let anonymous = MailAck::sign(None, None, &addressee, false, "malformed", now, &keys[2]);
        assert!(matches!(
            judge(anonymous),
            AckVerdict::RefusedNoEvidence("unsigned_refusal")
        ));
        let late = Timestamp(now.as_millis() - MAX_CLOCK_SKEW_MS - 1_000);
        let stale = MailAck::sign(
            Some(&item),
            Some(&relay),
            &addressee,
            true,
            "ok",
            late,
            &keys[2],
        );
        assert!(matches!(
            judge(stale),
            AckVerdict::RefusedNoEvidence("bad_time")
        ));
        let ok = MailAck::sign(
            Some(&item),
            Some(&relay),
            &addressee,
            true,
            "ok",
            now,
            &keys[2],
        );
        assert!(matches!(judge(ok), AckVerdict::Custody(_)));
    }

    /// Review of issue 21, finding 7: a message sealed to our previous encryption key
    /// (still listed in the roster) was a strike against its sender on every retry.
    #[test]
    fn a_message_sealed_to_a_key_we_do_not_hold_is_no_strike() {
        let a: AgencyCode = "AA-X".parse().unwrap();
        let b: AgencyCode = "BB-X".parse().unwrap();
        let old = wlnode_crypto::seal::EncryptionSecretKey::generate()
            .unwrap()
            .public_key()
            .unwrap();
        let not_ours = MailError::NotOurKey { key: old };
        assert!(!unopenable_strikes(Some(&not_ours), &a, &a));
        let bad = MailError::Seal(wlnode_crypto::seal::SealError::Open);
        assert!(unopenable_strikes(Some(&bad), &a, &a));
        assert!(!unopenable_strikes(Some(&bad), &a, &b));
        assert!(unopenable_strikes(None, &a, &a));
        // Review s30-consult2, M5: a body of an older build's format is no strike.
        assert!(!unopenable_strikes(Some(&MailError::LegacyBody), &a, &a));
        let odd = MailError::Malformed {
            field: "body",
            reason: "padded to 1500 bytes".into(),
        };
        assert!(unopenable_strikes(Some(&odd), &a, &a));
    }

    /// Review s32-mail H1 (`/wlnode/mail/5`): a neighbour's offer is evidence for our
    /// log only when it offers a relayed message (not its own), signed by that
    /// neighbour with its roster key, offers exactly this copy to us, and is signed
    /// within the clock skew; it is logged once per copy and neighbour a day (by
    /// digest: another sender's message under the same id has its own slot), and at
    /// most [`OFFERS_PER_NEIGHBOUR`] per neighbour an hour.
    #[test]
    fn offers_are_evidence_only_for_relayed_copies_offered_to_us_and_logged_once_per_copy() {
        use wlnode_config::roster_edit::{self, NewMember};
        use wlnode_crypto::model::MessageId;
        let authority = wlnode_crypto::SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        let mut keys = Vec::new();
        for code in ["AA-X", "BB-X", "CC-X"] {
            let key = wlnode_crypto::SecretKey::generate().unwrap();
            text = roster_edit::add_member(
                &text,
                &NewMember::coded(
                    code,
                    Role::Member,
                    key.public_key(),
                    vec![
                        wlnode_crypto::SecretKey::generate()
                            .unwrap()
                            .public_key()
                            .peer_id(),
                    ],
                    &["eu"],
                    Timestamp(Timestamp::now().as_millis() - 3_600_000),
                )
                .unwrap(),
            )
            .unwrap();
            keys.push(key);
        }
        let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
        let (sender, relay, me): (AgencyCode, AgencyCode, AgencyCode) = (
            "AA-X".parse().unwrap(),
            "BB-X".parse().unwrap(),
            "CC-X".parse().unwrap(),
        );
        let enc = wlnode_crypto::seal::EncryptionSecretKey::generate().unwrap();
        let now = Timestamp::now();
        let env = |from: &AgencyCode, key: &wlnode_crypto::SecretKey, body: &[u8]| {
            MailItem::Envelope(
                Envelope::seal(
                    &wlnode_crypto::mail::Draft {
                        id: MessageId([1; 16]),
                        from: from.clone(),
                        to: me.clone(),
                        kind: "test",
                        created_at: now,
                        expires_at: Timestamp(now.as_millis() + 3_600_000),
                        plaintext: body,
                    },
                    key,
                    &enc.public_key().unwrap(),
                )
                .unwrap()
                .next_hop(),
            )
        };
        let item = env(&sender, &keys[0], b"x");
        let offer = HandoverOffer::sign(&item, &relay, &me, now, &keys[1]);
        assert!(offer_is_evidence(&offer, &roster, &relay, &me, &item, now));
        // Its own message: no audit rule needs the offer.
        let own = env(&relay, &keys[1], b"x");
        let own_offer = HandoverOffer::sign(&own, &relay, &me, now, &keys[1]);
        assert!(!offer_is_evidence(
            &own_offer, &roster, &relay, &me, &own, now
        ));
        // Signed by another member, offered to another node, of another copy, or
        // signed outside the skew: no evidence.
        let forged = HandoverOffer::sign(&item, &relay, &me, now, &keys[2]);
        assert!(!offer_is_evidence(
            &forged, &roster, &relay, &me, &item, now
        ));
        let elsewhere = HandoverOffer::sign(&item, &relay, &sender, now, &keys[1]);
        assert!(!offer_is_evidence(
            &elsewhere, &roster, &relay, &me, &item, now
        ));
        let other = env(&sender, &keys[0], b"y");
        assert!(!offer_is_evidence(
            &offer, &roster, &relay, &me, &other, now
        ));
        let late = Timestamp(now.as_millis() + MAX_CLOCK_SKEW_MS + 1_000);
        assert!(!offer_is_evidence(
            &offer, &roster, &relay, &me, &item, late
        ));
        // Review s33-mail H1: a relayed message handed without an offer that passes
        // these checks (none, forged, elsewhere, late: the call site keeps only one
        // that is evidence) is refused; the sender's own message needs none.
        assert!(lacks_offer(None, &item, &relay));
        assert!(!lacks_offer(Some(&offer), &item, &relay));
        assert!(!lacks_offer(None, &own, &relay));
        // Logged once per copy a day; another copy under the same id has its slot.
        let (mut per_item, mut per_peer) = Default::default();
        let t = std::time::Instant::now();
        let due = |per_item: &mut _, per_peer: &mut _, it: &MailItem, at| {
            evidence_due(
                per_item,
                per_peer,
                (&relay, it.identity_digest()),
                (OFFER_LOG_EVERY, OFFERS_PER_NEIGHBOUR),
                at,
            )
        };
        assert!(due(&mut per_item, &mut per_peer, &item, t));
        assert!(!due(
            &mut per_item,
            &mut per_peer,
            &item,
            t + std::time::Duration::from_secs(3600)
        ));
        assert!(due(&mut per_item, &mut per_peer, &other, t));
        assert!(due(
            &mut per_item,
            &mut per_peer,
            &item,
            t + OFFER_LOG_EVERY
        ));
    }
}
