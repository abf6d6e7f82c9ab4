//! Sealed agency-to-agency mail, sans IO (issue 21): the outbox, the relay queue, the
//! inbox's duplicate filter and receipt routing as one state machine, [`Mailer`].
//!
//! The runtime feeds it what neighbours hand us ([`Mailer::on_item`], after decoding),
//! the neighbours' answers ([`Mailer::on_handed`], [`Mailer::on_hand_failed`]), who is
//! connected, and the time; it returns what to send to whom ([`Mailer::poll`]), what
//! happened ([`MailEvent`]: delivered to us, a receipt for one of ours, expired...), and
//! the store writes that make all of it survive a restart ([`Mailer::take_writes`],
//! loaded back with [`Mailer::restore`]).
//!
//! Routing is store-and-forward along existing peer links. An item (a sealed message,
//! or a receipt on its way back) goes straight to its addressee when that agency is
//! connected, and otherwise to every connected neighbour that has not had it, except
//! the one it came from. A message we relay whose connected addressee let
//! [`MailLimits::addressee_misses`] hand-overs of it pass with no signed answer (none
//! within [`MailLimits::addressee_answer_ms`], a failed stream) is from then on
//! offered to those neighbours too, as if the addressee were away, and still to the
//! addressee (review s34-mail M1: an addressee that stays connected and never
//! answers kept an honest relay from handing the message to anyone, and the relay
//! was named for it). The addressee's signed refusal is no miss (review s36-m1 M2).
//! Loops end at the seen-id filter (every node takes a (sender,
//! id) once: an id is the sender's, so another member cannot pre-empt it) and at the
//! hop limit. A relay keeps what it holds until the addressee itself took
//! it, a receipt for it passed by, or it expired; our own messages are offered again
//! with exponential backoff until their receipt arrives or they expire. What one peer
//! can make us hold is bounded (items and bytes per peer, and in all; our own
//! messages, the receipts we owe and what we relay for others each have their own
//! bound), and so is what one sender can deliver into our inbox per window.
//! Within a poll, the hand-overs due go out in the order we took the items, oldest
//! first, not in the order of their sender-chosen ids (issue 21, s37): of those
//! offered together, the newest are the ones that fail when a connection's streams
//! run out, and no sender's choice of ids puts its copies ahead of older ones in a
//! poll. Across polls, a hand-over that failed because the connection's 64 streams
//! were all taken on our side ([`Mailer::on_hand_busy`], `net`'s
//! `RequestFailure::Busy`) does not count as tried, so it does not wait for the
//! item's backoff (review s37-order H1: waiting up to 5 min, an old copy let the
//! copies taken after it, offered as they came, take the streams that freed, and
//! could wait for hours): nothing is
//! offered to that neighbour for [`MailLimits::full_streams_pause_ms`] (1 s), then
//! its oldest due hand-overs go first, at most [`MailLimits::full_streams_batch`]
//! (64) a round, one round a pause while some wait, so a stream that frees goes to
//! the oldest copy waiting for it. While a neighbour is in this state, first offers
//! and backoff retries to it also go only in its rounds. The pause doubles after
//! each round whose hand-overs found no stream, up to
//! [`MailLimits::full_streams_pause_max_ms`] (30 s), back to 1 s when a hand-over
//! to it gets a stream, and the state ends at a round that holds nothing back after
//! one whose hand-overs got streams, a round finds nothing due, or the neighbour
//! reconnects (s37 final review M2, L3; review of s37-busyfix H1: never with a
//! backlog left to go out at once). A neighbour that keeps our streams to it full so
//! costs us, however many of the up to 3 × `max_held` items we hold wait for it,
//! at most 64 stream attempts (each a frame encode and signed offer) a round:
//! 64 a second at worst while some of its hand-overs still get a stream, and for
//! one that never frees a stream rounds at 1, 3, 7, 15, 31 s after the first full
//! one, then one every 30 s (about 2 attempts a second). Outside that state, first
//! offers and retries go as before. It is still passed as an addressee that
//! misses (a copy held back at a round counts a miss, as one that failed for want of a stream does, and a
//! relayed one is reported, [`MailEvent::NoStream`], to be audited as that failure
//! was). What the order still does not cover across polls: an item waiting out its
//! backoff after any other failure (timeout, reset, refusal) is overtaken by items
//! taken since, requests already open keep their streams (nothing is pre-empted),
//! and the copies offered before a full stream was first reported (one request's
//! round trip) are not held back.
//! Each hand-over has a [`Ticket`], handed back with its end, so an answer is
//! matched to its own request.
//!
//! A receipt under the id of a message we hold (ours, or one we relay) is taken only
//! if it is that message's: signed by its recipient (the caller checked the
//! signature against the roster), naming its sender. Otherwise it is refused, the
//! message kept, and the neighbour struck only if it signed the receipt itself.
//!
//! Signatures and the roster are checked by the caller before [`Mailer::on_item`]
//! (the crypto crate's `Envelope::verify`): this machine only routes.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use wlnode_crypto::mail::{Envelope, MAX_CLOCK_SKEW_MS, MailItem, Receipt};
use wlnode_crypto::model::{AgencyCode, MessageId};
use wlnode_crypto::time::Timestamp;

/// The default [`MailLimits::full_streams_batch`]: `net`'s stream limit per
/// connection (`wlnode_net::MAX_STREAMS`, which sync cannot name; the runtime's
/// tests tie the two, and the auditor's `MAIL_STREAMS`, together).
pub const FULL_STREAMS_BATCH: usize = 64;

/// Bounds on what the mailer holds and how it retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MailLimits {
    /// Relays an item may pass; more is refused (a loop or a flood).
    pub max_hops: u32,
    /// Items one neighbour may have us hold for others at once.
    pub per_peer_items: usize,
    /// Bytes one neighbour may have us hold for others at once.
    pub per_peer_bytes: usize,
    /// Items held in all (ours and others').
    pub max_held: usize,
    /// Message ids remembered (until their expiry; a live id is never forgotten:
    /// past the bound, new ones are refused). Ids of messages relayed for others may
    /// take at most three quarters of it, the rest is kept for ids delivered to us
    /// and our own.
    pub max_seen: usize,
    /// Ids of other senders' messages (relayed for others or delivered to us)
    /// remembered per sender: one member cannot take the room of everyone else's,
    /// nor, with far expiries, fill it until our own sends fail.
    pub per_sender_seen: usize,
    /// First retry delay of our own messages, ms.
    pub retry_min_ms: u64,
    /// Longest retry delay, ms.
    pub retry_max_ms: u64,
    /// Hand-overs of a message we relay to its connected addressee that may miss
    /// (end with no signed answer: no answer within [`MailLimits::addressee_answer_ms`],
    /// a failed stream or connection, an unsupported protocol, an answer that is no
    /// valid signed ack) before the message is offered to every other connected
    /// neighbour that has not had it too, as if the addressee were away (review
    /// s34-mail M1). The addressee is still offered it at every retry. A signed
    /// refusal by the addressee is no miss ([`Mailer::on_hand_refused`]: review
    /// s36-m1 M2, the addressee said no, and its refusal in our log covers us).
    /// With the defaults an addressee whose streams fail at once is passed after
    /// about 6 s (about 3 s when it is our side that has no stream to spare:
    /// [`Mailer::on_hand_busy`]), one that never answers after about 30 s (review
    /// s36-m1 M1).
    pub addressee_misses: u32,
    /// How long a hand-over of a message we relay to its addressee may stay
    /// unanswered, ms, before it counts as a miss at the next retry (run before each
    /// poll; the addressee is offered the message again at that or a later retry,
    /// while the first request still waits for its transport timeout): an addressee
    /// that lets every request time out (120 s) no longer holds the message three
    /// times that long (review s36-m1 M1). An answer after it does not undo the
    /// miss.
    pub addressee_answer_ms: u64,
    /// How long a receipt is held on its way back, ms.
    pub receipt_ttl_ms: u64,
    /// How long hand-overs to a neighbour wait after one failed for want of a stream
    /// on our side ([`Mailer::on_hand_busy`]: the connection already ran its most
    /// concurrent streams), ms, counted from that request: then the oldest are offered
    /// again, at most [`MailLimits::full_streams_batch`] of them, and the others wait
    /// for the next such round (review s37-order H1). The first pause; it doubles at
    /// each round after one whose hand-overs found no stream (none got one since the
    /// round before, and one failed so), up to [`MailLimits::full_streams_pause_max_ms`],
    /// and is back to this as soon as a hand-over to that neighbour gets a stream
    /// (any answer, or a failure other than a full one) or it reconnects (s37 final
    /// review M2).
    pub full_streams_pause_ms: u64,
    /// The longest pause between two rounds to a neighbour whose streams stay full, ms
    /// (see [`MailLimits::full_streams_pause_ms`]).
    pub full_streams_pause_max_ms: u64,
    /// The most hand-overs offered to a neighbour in one round while its streams are
    /// full (the oldest first; `net`'s stream limit, [`FULL_STREAMS_BATCH`]: more
    /// cannot get a stream at once). With the pauses it bounds what a neighbour that
    /// keeps our streams to it full costs us, whatever we hold: at most this many
    /// stream attempts (and frame encodes) a round; rounds are at least
    /// [`MailLimits::full_streams_pause_ms`] apart (1 s: at most 64 a second, the
    /// worst case, while hand-overs to it keep getting a stream now and then), and
    /// once no hand-over to it gets a stream the pause doubles at each round up to
    /// [`MailLimits::full_streams_pause_max_ms`] (rounds 1, 3, 7, 15 and 31 s after
    /// the first full stream, then one every 30 s: 64 per 30 s, about 2 a second,
    /// for a neighbour that never frees a stream).
    pub full_streams_batch: usize,
    /// How long a hand-over may stay in flight with no end reported, ms, before the
    /// next [`Mailer::retry`] takes it as failed (a miss, as a failure with no signed
    /// answer) and counts it ([`Mailer::take_stale_requests`]). The network ends every
    /// request within its timeout (`wlnode_net::REQUEST_TIMEOUT`, 120 s), so this only
    /// catches an end that was lost: without it the item was never offered to that
    /// neighbour again, and a message we relay could sit until it expired, with us
    /// named for it (`mail_not_relayed`). Far past the timeout, so a slow answer is
    /// never taken for a lost one (a runtime test ties the two).
    pub stale_request_ms: u64,
    /// Messages one sender may deliver into our inbox per window.
    pub per_sender_deliveries: usize,
    /// Bytes one sender may deliver into our inbox per window.
    pub per_sender_delivery_bytes: usize,
    /// The delivery quota's window, ms.
    pub delivery_window_ms: u64,
}

impl Default for MailLimits {
    fn default() -> Self {
        Self {
            max_hops: 8,
            per_peer_items: 512,
            per_peer_bytes: 16 * 1024 * 1024,
            max_held: 8192,
            max_seen: 200_000,
            per_sender_seen: 20_000,
            retry_min_ms: 1_000,
            retry_max_ms: 5 * 60 * 1000,
            addressee_misses: 3,
            addressee_answer_ms: 10_000,
            receipt_ttl_ms: 30 * 24 * 3600 * 1000,
            full_streams_pause_ms: 1_000,
            full_streams_pause_max_ms: 30_000,
            full_streams_batch: FULL_STREAMS_BATCH,
            stale_request_ms: 10 * 60 * 1000,
            per_sender_deliveries: 256,
            per_sender_delivery_bytes: 16 * 1024 * 1024,
            delivery_window_ms: 3600 * 1000,
        }
    }
}

/// Whether an item is a message or a receipt (with the id, it names a held item).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// A sealed message.
    Message,
    /// A receipt.
    Receipt,
}

impl ItemKind {
    fn byte(self) -> u8 {
        match self {
            Self::Message => b'm',
            Self::Receipt => b'r',
        }
    }

    /// `message` or `receipt` (audit events).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Receipt => "receipt",
        }
    }
}

/// A held item's name.
pub type ItemKey = (ItemKind, MessageId);

/// Why an item from a neighbour was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Past the hop limit.
    TooManyHops,
    /// The neighbour's relay quota (items or bytes) is full.
    Quota,
    /// We hold as much as we may.
    Full,
    /// The same sender and id with other content than the one we saw (a replay under
    /// a reused id). `by_author`: the neighbour is the message's sender (a relay
    /// forwarding someone else's replay is not at fault).
    Replayed {
        /// The neighbour is the sender.
        by_author: bool,
    },
    /// Expired on arrival.
    Expired,
    /// A receipt that is not the one for the message we hold under its id: signed by
    /// another agency than that message's recipient, or naming another sender.
    /// `by_author`: the neighbour signed it.
    WrongReceipt {
        /// The neighbour is the receipt's signer.
        by_author: bool,
    },
    /// We hold another item under this id (from another sender) for relaying.
    IdInUse,
    /// The sender delivered as much into our inbox as it may for now, or we remember
    /// as many ids of its relayed messages as we may (its share of `max_seen`).
    SenderQuota,
}

impl Refusal {
    /// A short, stable code (metrics, audit).
    pub fn code(self) -> &'static str {
        match self {
            Self::TooManyHops => "too_many_hops",
            Self::Quota => "quota",
            Self::Full => "full",
            Self::Replayed { .. } => "replayed",
            Self::Expired => "expired",
            Self::WrongReceipt { .. } => "wrong_receipt",
            Self::IdInUse => "id_in_use",
            Self::SenderQuota => "sender_quota",
        }
    }

    /// Whether it counts as hostile input from the neighbour (a strike): a replay or
    /// a wrong receipt the neighbour made itself, or an expired message, is; a full
    /// queue, a quota, a long path, or someone else's replay passed on is not the
    /// neighbour's fault.
    pub fn strikes(self) -> bool {
        match self {
            Self::Replayed { by_author } | Self::WrongReceipt { by_author } => by_author,
            Self::Expired => true,
            Self::TooManyHops | Self::Quota | Self::Full | Self::IdInUse | Self::SenderQuota => {
                false
            }
        }
    }
}

/// What became of an item a neighbour handed us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Intake {
    /// A message for us, new: open it, keep it, then call [`Mailer::on_delivered`].
    Deliver(Envelope),
    /// A message for us we already have: dropped, and its receipt sent again.
    Duplicate,
    /// A receipt for one of our messages: it is delivered.
    Receipt(Receipt),
    /// Held for relaying.
    Relay,
    /// An id we already hold or passed on: dropped (the neighbour still gets "ok").
    Seen,
    /// Refused.
    Refused(Refusal),
}

/// Something the runtime should know (and audit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailEvent {
    /// One of our messages expired without a receipt.
    Expired {
        /// The message.
        id: MessageId,
        /// Its routing header.
        header: Box<wlnode_crypto::mail::MailHeader>,
    },
    /// An item we relayed expired before it reached its addressee.
    RelayExpired {
        /// The item.
        key: ItemKey,
    },
    /// A message we relay was due to `to` but held back at a round for want of a
    /// stream: `to`'s streams were found full and older hand-overs took this
    /// round's ([`MailLimits::full_streams_batch`]; review s37-order H1). Before, the
    /// same hand-over was offered and failed for want of a stream, and it is to be
    /// audited as such a failure (`stream`), within the same caps, so that the
    /// relay's log says why the copy did not go, as it did.
    NoStream {
        /// The item.
        key: ItemKey,
        /// The neighbour it waits for.
        to: AgencyCode,
    },
}

/// An item to hand to a neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    /// The neighbour.
    pub to: AgencyCode,
    /// The item's name.
    pub key: ItemKey,
    /// The `MailRequest` frame.
    pub frame: Vec<u8>,
    /// This hand-over's name, handed back with its end.
    pub ticket: Ticket,
}

/// A store write: the mail table's key and the new value, or `None` to delete.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// Names one hand-over [`Mailer::poll`] asked for ([`Send::ticket`]): the caller hands
/// it back with the hand-over's end ([`Mailer::on_handed`], [`Mailer::on_hand_failed`],
/// [`Mailer::on_hand_refused`]), so an answer is matched to its own request, never
/// to another one open to the same neighbour (review s36-int L1: a quick refusal was
/// taken for the end of an older, slow request, and the fresh request counted as a
/// miss 10 s later). Unique within one run of a mailer; never stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// A hand-over in flight: its ticket and when it was sent (ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    ticket: Ticket,
    sent: u64,
}

#[derive(Clone, Debug)]
struct Held {
    item: MailItem,
    /// The neighbour that handed it to us (`None`: our own).
    from_peer: Option<AgencyCode>,
    /// Neighbours that took it (or answered that they had it): not offered it again
    /// unless they reconnect (they may have restarted) or are its addressee.
    handed: BTreeSet<AgencyCode>,
    /// Neighbours that refused it or whose hand-over failed: offered again once the
    /// item's backoff has passed.
    failed: BTreeSet<AgencyCode>,
    /// Neighbours with a hand-over in flight, each with its current request (one per
    /// neighbour: [`Mailer::poll`] never offers a neighbour in here). The addressee's
    /// request counted as a miss for taking too long leaves it
    /// ([`Held::note_slow_addressee`]), so the addressee may have older requests still
    /// open: their end, whose ticket is not the one here, changes nothing but what
    /// an acceptance says.
    in_flight: BTreeMap<AgencyCode, InFlight>,
    /// Not before (ms): backoff of our own messages.
    next_try: u64,
    attempts: u32,
    bytes: usize,
    /// Hand-overs to the addressee that ended with no signed answer (or had none
    /// within [`MailLimits::addressee_answer_ms`]), since we hold the item (kept in
    /// memory only: a restart counts again). Never reset: an addressee that answers
    /// the next one takes the item, which ends it (a relayed message is done once its
    /// addressee took it), and going back to offering it the addressee alone would
    /// leave the other neighbours untried again.
    addressee_misses: u32,
    /// When we took the item, as a place in the mailer's custody order (our own
    /// messages when sent, receipts we owe when queued, what we relay when we took
    /// custody): [`Mailer::poll`] hands items over in this order, the oldest first
    /// (issue 21: in id order, a sender choosing low ids got its copies ahead of
    /// older ones, and past a connection's 64 streams the same high ids lost every
    /// poll). Stored beside the item (`r` rows); an item restored from a row of an
    /// older build has none and gets 0: before everything taken since, in id order
    /// among themselves.
    seq: u64,
}

impl Held {
    /// `bytes`: what the item counts in the neighbour's quota (its frame as it came).
    fn new(
        item: MailItem,
        from_peer: Option<AgencyCode>,
        bytes: usize,
        next_try: u64,
        seq: u64,
    ) -> Self {
        // The neighbour it came from had it: not offered it back.
        let handed = from_peer.iter().cloned().collect();
        Self {
            item,
            from_peer,
            handed,
            failed: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            next_try,
            attempts: 0,
            bytes,
            addressee_misses: 0,
            seq,
        }
    }

    fn addressee(&self) -> &AgencyCode {
        match &self.item {
            MailItem::Envelope(e) => &e.header().to,
            MailItem::Receipt(r) => &r.body().sender,
        }
    }

    /// Whether this is a message we relay whose addressee let `bound` hand-overs
    /// in a row pass without taking it: it is routed as if the addressee were away
    /// (see [`MailLimits::addressee_misses`]). Not our own messages nor receipts:
    /// the auditor judges only a relay's custody of messages.
    fn addressee_passed(&self, bound: u32) -> bool {
        self.relayed_message() && self.addressee_misses >= bound
    }

    /// A message we relay for others (the only items whose addressee's misses count).
    fn relayed_message(&self) -> bool {
        self.from_peer.is_some() && matches!(self.item, MailItem::Envelope(_))
    }

    /// Whether the end of a hand-over to `peer` that matches no request in flight is
    /// expected: the late end of an addressee's request already counted as a miss
    /// for taking too long ([`Held::note_slow_addressee`]). Any other is a caller's
    /// mistake or a stale ticket, counted ([`Mailer::take_unmatched_ends`]).
    fn late_end_expected(&self, peer: &AgencyCode) -> bool {
        self.relayed_message() && peer == self.addressee()
    }

    /// The hand-over of a message we relay to its addressee in flight longer than
    /// `bound_ms` counts as a miss now: the addressee leaves `in_flight` for `failed`
    /// (offered again at the next retry), and the request's late end, whose ticket
    /// is then no longer the addressee's current one, is not counted again.
    fn note_slow_addressee(&mut self, now_ms: u64, bound_ms: u64) {
        if !self.relayed_message() {
            return;
        }
        let addressee = self.addressee().clone();
        let slow = self
            .in_flight
            .get(&addressee)
            .is_some_and(|f| now_ms >= f.sent.saturating_add(bound_ms));
        if slow {
            self.in_flight.remove(&addressee);
            self.failed.insert(addressee);
            self.addressee_misses = self.addressee_misses.saturating_add(1);
        }
    }

    /// The end of the hand-over `ticket` to `peer`: whether it was `peer`'s current
    /// request (which leaves `in_flight`). Otherwise it is the late end of an
    /// addressee's request already counted as a miss for taking too long, and
    /// changes nothing else (review s36-int L1: matched by count, a quick answer to
    /// the next request was taken for the slow one's end).
    /// Returns when that request was sent, if it was the current one.
    ///
    /// (See also [`Held::sweep_stale_requests`], which ends requests whose end never
    /// came.)
    fn end_request(&mut self, peer: &AgencyCode, ticket: Ticket) -> Option<u64> {
        if self.in_flight.get(peer).is_some_and(|f| f.ticket == ticket) {
            self.in_flight.remove(peer).map(|f| f.sent)
        } else {
            None
        }
    }

    /// Hand-overs in flight for `bound_ms` or longer, whose end was never reported,
    /// end now as failures with no signed answer: the neighbour leaves `in_flight`
    /// for `failed` (offered the item again at a retry), and the addressee of a
    /// message we relay counts a miss. Their late end, if it ever comes, is no
    /// longer the neighbour's current request and changes nothing. Returns the
    /// neighbours and tickets of those that ended so.
    fn sweep_stale_requests(&mut self, now_ms: u64, bound_ms: u64) -> Vec<(AgencyCode, Ticket)> {
        let stale: Vec<(AgencyCode, Ticket)> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now_ms >= f.sent.saturating_add(bound_ms))
            .map(|(p, f)| (p.clone(), f.ticket))
            .collect();
        for (peer, _) in &stale {
            self.in_flight.remove(peer);
            if self.relayed_message() && peer == self.addressee() {
                self.addressee_misses = self.addressee_misses.saturating_add(1);
            }
            self.failed.insert(peer.clone());
        }
        stale
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    /// The message's recipient: only its receipt ends the message, also at a relay
    /// that handed the message on already.
    to: AgencyCode,
    /// Forget it after this (ms).
    until: u64,
    /// SHA-256 of the message's header (a replay under the same id differs).
    digest: [u8; 32],
    /// Delivered to us (we are the recipient).
    delivered: bool,
}

/// A neighbour whose streams were found full ([`Mailer::on_hand_busy`]): when its
/// next round is, how long the pause after it, and how the last round went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FullStreams {
    /// Nothing is offered to it before this (ms); then a round.
    until: u64,
    /// The current pause, ms: doubles after a round whose hand-overs found no
    /// stream (to [`MailLimits::full_streams_pause_max_ms`]), back to
    /// [`MailLimits::full_streams_pause_ms`] when a hand-over gets one.
    pause: u64,
    /// When its last round ran (ms; its hand-overs were sent then), if one did.
    round: Option<u64>,
    /// A hand-over to it failed for want of a stream since the last round.
    busy: bool,
    /// A hand-over to it got a stream (it ended otherwise) since the last round.
    got: bool,
}

/// One round's hand-overs to a neighbour whose streams were full, collected in
/// [`Mailer::poll`]'s pass: the oldest `batch` (a max-heap by place, so each
/// offer costs O(log batch), not a sort of all that wait) and the others.
#[derive(Debug, Default)]
struct Round {
    kept: BinaryHeap<(u64, ItemKey)>,
    held_back: Vec<ItemKey>,
}

impl Round {
    fn offer(&mut self, seq: u64, key: ItemKey, batch: usize) {
        self.kept.push((seq, key));
        if self.kept.len() > batch
            && let Some((_, newest)) = self.kept.pop()
        {
            self.held_back.push(newest);
        }
    }
}

/// Key prefixes in the mail table: held items, their custody order, seen ids.
const HELD: u8 = b'q';
const ORDER: u8 = b'r';
const SEEN: u8 = b's';

fn held_key(k: &ItemKey) -> Vec<u8> {
    item_row_key(HELD, k)
}

/// `ORDER || kind || id`: a held item's place in the custody order ([`Held::seq`],
/// 8 bytes big-endian), a row of its own beside the held item's so that a node of
/// an older build reads the held rows as before (its restore skips this prefix;
/// had it been added to the held row, that build would drop the row as
/// undecodable, and the mail with it).
fn order_key(k: &ItemKey) -> Vec<u8> {
    item_row_key(ORDER, k)
}

fn item_row_key(prefix: u8, k: &ItemKey) -> Vec<u8> {
    let mut out = vec![prefix, k.0.byte()];
    out.extend_from_slice(k.1.as_bytes());
    out
}

/// The item an `ORDER` row is about, and its place.
fn decode_order(k: &[u8], v: &[u8]) -> Option<(ItemKey, u64)> {
    let kind = match k.get(1)? {
        b'm' => ItemKind::Message,
        b'r' => ItemKind::Receipt,
        _ => return None,
    };
    let id = MessageId::from_slice(k.get(2..)?).ok()?;
    // A place this build never gives (review s37-order L1: a damaged row near
    // `u64::MAX` would saturate the counter and every later item would share one
    // place): a bad row, deleted, and the item sorts as an older build's.
    let seq = u64::from_be_bytes(v.try_into().ok()?);
    (seq < 1 << 63).then_some(((kind, id), seq))
}

/// A message's identity for the duplicate filter: its sender and id (an id is only
/// unique per sender, so one member cannot pre-empt another's id).
type SeenKey = (AgencyCode, MessageId);

/// A receipt's identity: the message's sender, its recipient (who signed), and id.
type ReceiptKey = (AgencyCode, AgencyCode, MessageId);

fn seen_key(k: &SeenKey) -> Vec<u8> {
    let mut out = vec![SEEN];
    out.extend_from_slice(k.1.as_bytes());
    out.extend_from_slice(k.0.as_str().as_bytes());
    out
}

fn key_of(item: &MailItem) -> ItemKey {
    match item {
        MailItem::Envelope(e) => (ItemKind::Message, e.header().id),
        MailItem::Receipt(r) => (ItemKind::Receipt, r.body().message_id),
    }
}

fn header_digest(env: &Envelope) -> [u8; 32] {
    env.identity_digest()
}

/// The mail state machine; see the module documentation.
#[derive(Debug)]
pub struct Mailer {
    me: AgencyCode,
    limits: MailLimits,
    held: BTreeMap<ItemKey, Held>,
    seen: BTreeMap<SeenKey, Seen>,
    /// The same ids ordered by when they may be forgotten: expiry and eviction of
    /// the oldest take the first entries instead of scanning them all.
    seen_order: BTreeSet<(u64, SeenKey)>,
    /// How many remembered ids are of messages relayed for others, per sender.
    relayed_seen: BTreeMap<AgencyCode, usize>,
    /// How many remembered ids are of other senders' messages (relayed or delivered
    /// to us), per sender.
    sender_seen: BTreeMap<AgencyCode, usize>,
    /// Receipts already seen (relayed or ours), until their time-to-live.
    seen_receipts: BTreeMap<ReceiptKey, u64>,
    per_peer: BTreeMap<AgencyCode, (usize, usize)>,
    /// Deliveries into our inbox per sender in the current window: (window start,
    /// messages, bytes).
    delivered: BTreeMap<AgencyCode, (u64, usize, usize)>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The next item's place in the custody order ([`Held::seq`]; 0 is left to
    /// items restored without one).
    next_seq: u64,
    /// The next hand-over's ticket.
    next_ticket: u64,
    /// Neighbours whose streams were full ([`Mailer::on_hand_busy`]), each with the
    /// time (ms) before which nothing is offered to it: then at most
    /// [`MailLimits::full_streams_batch`] hand-overs, the oldest first, and the next
    /// pause. At most one entry per neighbour that was connected; it leaves at a
    /// round that holds nothing back after one whose hand-overs got streams, a round
    /// that finds nothing waiting, or when the neighbour reconnects.
    full: BTreeMap<AgencyCode, FullStreams>,
    /// Ends of hand-overs that matched no request in flight, since the caller last
    /// took the count ([`Mailer::take_unmatched_ends`]; s37 final review L6).
    unmatched_ends: u64,
    /// Hand-overs in flight past [`MailLimits::stale_request_ms`] with no end
    /// reported, ended as failures since the caller last took them
    /// ([`Mailer::take_stale_requests`]): neighbour, item and ticket.
    stale_requests: Vec<(AgencyCode, ItemKey, Ticket)>,
}

impl Mailer {
    /// An empty mailer for agency `me`.
    pub fn new(me: AgencyCode, limits: MailLimits) -> Self {
        Self {
            me,
            limits,
            held: BTreeMap::new(),
            seen: BTreeMap::new(),
            seen_order: BTreeSet::new(),
            relayed_seen: BTreeMap::new(),
            sender_seen: BTreeMap::new(),
            seen_receipts: BTreeMap::new(),
            per_peer: BTreeMap::new(),
            delivered: BTreeMap::new(),
            writes: BTreeMap::new(),
            next_seq: 1,
            next_ticket: 0,
            full: BTreeMap::new(),
            unmatched_ends: 0,
            stale_requests: Vec::new(),
        }
    }

    /// Loads what [`Mailer::take_writes`] wrote before a restart. Entries that do not
    /// decode are skipped and returned as keys to delete, so is a custody-order row
    /// whose item is not held (an older build dropped the item and left the row).
    /// A held item without an order row (written by an older build) is placed
    /// before everything taken since, in id order among its like.
    pub fn restore(&mut self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<Vec<u8>> {
        let mut bad = Vec::new();
        let mut order = Vec::new();
        for (k, v) in pairs {
            let ok = match k.first() {
                Some(&HELD) => self.restore_held(&v),
                Some(&SEEN) => self.restore_seen(&k, &v),
                Some(&ORDER) => {
                    if let Some(o) = decode_order(&k, &v) {
                        order.push((k, o));
                        continue;
                    }
                    false
                }
                _ => true,
            };
            if !ok {
                bad.push(k);
            }
        }
        // After every held row, whatever order the pairs came in.
        for (k, (key, seq)) in order {
            match self.held.get_mut(&key) {
                Some(h) => {
                    h.seq = seq;
                    self.next_seq = self.next_seq.max(seq.saturating_add(1));
                }
                None => bad.push(k),
            }
        }
        bad
    }

    fn restore_held(&mut self, v: &[u8]) -> bool {
        let Some((&n, rest)) = v.split_first() else {
            return false;
        };
        let Some((origin, frame)) = rest.split_at_checked(usize::from(n)) else {
            return false;
        };
        let from_peer = if n == 0 {
            None
        } else {
            match std::str::from_utf8(origin).ok().map(AgencyCode::new) {
                Some(Ok(a)) => Some(a),
                _ => return false,
            }
        };
        let Ok(item) = MailItem::decode(frame) else {
            return false;
        };
        let bytes = frame.len();
        if let Some(p) = &from_peer {
            let q = self.per_peer.entry(p.clone()).or_default();
            q.0 += 1;
            q.1 += bytes;
        }
        // The neighbour it came from had it: not offered it back after a restart
        // either (as while we ran: `Held::new` notes it). Its place in the custody
        // order is its `ORDER` row's (0 without one).
        self.held
            .insert(key_of(&item), Held::new(item, from_peer, bytes, 0, 0));
        true
    }

    fn restore_seen(&mut self, k: &[u8], v: &[u8]) -> bool {
        let (Some(id), Some(from), Some(until), Some(digest), Some(flag), Some(to)) = (
            k.get(1..17).and_then(|b| MessageId::from_slice(b).ok()),
            k.get(17..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|a| AgencyCode::new(a).ok()),
            v.get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            v.get(8..40).and_then(|b| <[u8; 32]>::try_from(b).ok()),
            v.get(40),
            v.get(41..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|a| AgencyCode::new(a).ok()),
        ) else {
            return false;
        };
        self.insert_seen(
            (from, id),
            Seen {
                to,
                until,
                digest,
                delivered: *flag == 1,
            },
        );
        true
    }

    /// The store writes made since the last call, in key order.
    pub fn take_writes(&mut self) -> Vec<Write> {
        std::mem::take(&mut self.writes).into_iter().collect()
    }

    fn persist_held(&mut self, key: &ItemKey) {
        let held = self.held.get(key);
        let value = held.map(|h| {
            let origin = h.from_peer.as_ref().map(|a| a.as_str()).unwrap_or("");
            let mut v = Vec::with_capacity(1 + origin.len() + h.bytes);
            v.push(u8::try_from(origin.len()).unwrap_or(0));
            v.extend_from_slice(origin.as_bytes());
            v.extend_from_slice(&h.item.encode());
            v
        });
        let order = held.map(|h| h.seq.to_be_bytes().to_vec());
        self.writes.insert(held_key(key), value);
        self.writes.insert(order_key(key), order);
    }

    /// The next place in the custody order.
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        seq
    }

    fn persist_seen(&mut self, id: &SeenKey) {
        let value = self.seen.get(id).map(|s| {
            let mut v = Vec::with_capacity(41 + s.to.as_str().len());
            v.extend_from_slice(&s.until.to_be_bytes());
            v.extend_from_slice(&s.digest);
            v.push(u8::from(s.delivered));
            v.extend_from_slice(s.to.as_str().as_bytes());
            v
        });
        self.writes.insert(seen_key(id), value);
    }

    /// Receipts remembered (relayed or ours).
    pub fn seen_receipts_len(&self) -> usize {
        self.seen_receipts.len()
    }

    /// The limits it runs with.
    pub fn limits(&self) -> &MailLimits {
        &self.limits
    }

    /// Items held (ours and others').
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// A held item (ours or in transit).
    pub fn held_item(&self, key: &ItemKey) -> Option<&MailItem> {
        self.held.get(key).map(|h| &h.item)
    }

    /// Whether one of our messages with this id still awaits its receipt.
    pub fn is_pending(&self, id: &MessageId) -> bool {
        self.held
            .get(&(ItemKind::Message, *id))
            .is_some_and(|h| h.from_peer.is_none())
    }

    /// How many held items are of each sort: (our own messages, receipts we owe,
    /// items relayed for others). Each sort has its own bound, so what others hand us
    /// never fills the room for our own messages.
    fn held_counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for ((kind, _), h) in &self.held {
            match (h.from_peer.is_some(), kind) {
                (true, _) => c.2 += 1,
                (false, ItemKind::Message) => c.0 += 1,
                (false, ItemKind::Receipt) => c.1 += 1,
            }
        }
        c
    }

    /// Queues our own sealed message for sending.
    pub fn send(&mut self, env: Envelope, now: Timestamp) -> Result<(), Refusal> {
        if self.held_counts().0 >= self.limits.max_held || !self.seen_room(None, now.as_millis()) {
            return Err(Refusal::Full);
        }
        let item = MailItem::Envelope(env);
        let key = key_of(&item);
        self.remember(&item, now, false);
        let bytes = item.encode().len();
        let seq = self.take_seq();
        self.held
            .insert(key, Held::new(item, None, bytes, now.as_millis(), seq));
        self.persist_held(&key);
        Ok(())
    }

    fn remember(&mut self, item: &MailItem, now: Timestamp, delivered: bool) {
        match item {
            MailItem::Envelope(e) => {
                let id = (e.header().from.clone(), e.header().id);
                self.insert_seen(
                    id.clone(),
                    Seen {
                        to: e.header().to.clone(),
                        until: e.header().expires_at.as_millis(),
                        digest: header_digest(e),
                        delivered,
                    },
                );
                self.persist_seen(&id);
            }
            MailItem::Receipt(r) => {
                let b = r.body();
                let until = self.receipt_until(r, now);
                self.seen_receipts
                    .insert((b.sender.clone(), b.recipient.clone(), b.message_id), until);
                // Bounded like the seen ids (review of issue 21, finding 10): past
                // the limit, forget the expired, then the first in key order (cheap;
                // forgetting one only means relaying its message once more).
                if self.seen_receipts.len() > self.limits.max_seen {
                    let now_ms = now.as_millis();
                    self.seen_receipts.retain(|_, u| *u > now_ms);
                    while self.seen_receipts.len() > self.limits.max_seen {
                        self.seen_receipts.pop_first();
                    }
                }
            }
        }
    }

    /// Whether a remembered id is of a message relayed for others (neither ours nor
    /// delivered to us).
    fn is_relayed(&self, id: &SeenKey, seen: &Seen) -> bool {
        id.0 != self.me && seen.to != self.me && !seen.delivered
    }

    fn insert_seen(&mut self, id: SeenKey, seen: Seen) {
        if let Some(old) = self.seen.remove(&id) {
            self.seen_order.remove(&(old.until, id.clone()));
            self.uncount_seen(&id, &old);
        }
        if self.is_relayed(&id, &seen) {
            *self.relayed_seen.entry(id.0.clone()).or_default() += 1;
        }
        if id.0 != self.me {
            *self.sender_seen.entry(id.0.clone()).or_default() += 1;
        }
        self.seen_order.insert((seen.until, id.clone()));
        self.seen.insert(id, seen);
    }

    fn uncount_seen(&mut self, id: &SeenKey, seen: &Seen) {
        if self.is_relayed(id, seen) {
            uncount(&mut self.relayed_seen, &id.0);
        }
        if id.0 != self.me {
            uncount(&mut self.sender_seen, &id.0);
        }
    }

    /// Forgets the remembered id that expires first (in the store too). Only called
    /// for ids past their expiry: a live id is never forgotten (review s30-consult2,
    /// M2: evicting live ids let a flood of relayed ids push out delivered ones, and
    /// the delivered message be replayed).
    fn forget_oldest_seen(&mut self) {
        if let Some((_, id)) = self.seen_order.pop_first() {
            if let Some(old) = self.seen.remove(&id) {
                self.uncount_seen(&id, &old);
            }
            self.persist_seen(&id);
        }
    }

    /// Whether one more id may be remembered: `relayed_from` is the sender of a
    /// message we would relay (`None`: ours, or one delivered to us). Expired ids are
    /// forgotten first; live ones never are, so past the bounds the item is refused
    /// instead (`Full` or `Quota`, no strike).
    fn seen_room(&mut self, relayed_from: Option<&AgencyCode>, now_ms: u64) -> bool {
        self.forget_expired_seen(now_ms);
        if self.seen.len() >= self.limits.max_seen {
            return false;
        }
        match relayed_from {
            None => true,
            Some(from) => {
                let relayed: usize = self.relayed_seen.values().sum();
                relayed < self.relayed_seen_cap() && self.sender_has_room(from)
            }
        }
    }

    /// Whether one more message of `from` may be delivered to us and its id
    /// remembered (review of the mail fixes, H2: live ids are never forgotten, so a
    /// member delivering far-expiring messages at its quota would otherwise fill
    /// `max_seen` within weeks, and every later delivery and our own `send` would
    /// fail `Full` until its ids expired). Per sender at most `per_sender_seen`
    /// (past it `SenderQuota`: only that sender waits), and deliveries leave an
    /// eighth of `max_seen` for our own messages.
    fn delivery_room(&mut self, from: &AgencyCode, now_ms: u64) -> Result<(), Refusal> {
        self.forget_expired_seen(now_ms);
        if !self.sender_has_room(from) {
            return Err(Refusal::SenderQuota);
        }
        let m = self.limits.max_seen;
        if self.seen.len() >= m.saturating_sub(m / 8) {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    fn sender_has_room(&self, from: &AgencyCode) -> bool {
        self.sender_seen.get(from).copied().unwrap_or(0) < self.limits.per_sender_seen
    }

    /// The most ids of relayed messages remembered in all: three quarters of
    /// `max_seen`, the rest is kept for ours and those delivered to us.
    fn relayed_seen_cap(&self) -> usize {
        let m = self.limits.max_seen;
        m.saturating_sub((m / 4).max(1))
    }

    /// Forgets (in memory and in the store) the ids whose message expired more than
    /// the clock skew ago: no copy of it can be accepted any more anyway.
    fn forget_expired_seen(&mut self, now_ms: u64) {
        while let Some((until, _)) = self.seen_order.first()
            && until.saturating_add(MAX_CLOCK_SKEW_MS) <= now_ms
        {
            self.forget_oldest_seen();
        }
    }

    /// Ids remembered (for the duplicate filter).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// An item `peer` handed us, already decoded and verified (signatures, roster,
    /// limits of the frame). Returns what became of it.
    pub fn on_item(&mut self, peer: &AgencyCode, item: MailItem, now: Timestamp) -> Intake {
        let key = key_of(&item);
        let hops = match &item {
            MailItem::Envelope(e) => e.hops(),
            MailItem::Receipt(r) => r.hops(),
        };
        if hops > self.limits.max_hops {
            return Intake::Refused(Refusal::TooManyHops);
        }
        match item {
            MailItem::Envelope(env) => {
                let h = env.header();
                if now.as_millis() >= h.expires_at.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) {
                    return Intake::Refused(Refusal::Expired);
                }
                if let Some(s) = self.seen.get(&(h.from.clone(), h.id)) {
                    if s.digest != header_digest(&env) {
                        return Intake::Refused(Refusal::Replayed {
                            by_author: *peer == h.from,
                        });
                    }
                    if h.to == self.me {
                        return Intake::Duplicate;
                    }
                    if let Some(held) = self.held.get_mut(&key) {
                        held.handed.insert(peer.clone());
                    }
                    return Intake::Seen;
                }
                if h.to == self.me {
                    if !self.delivery_allowed(&h.from, env.encoded_len(), now) {
                        return Intake::Refused(Refusal::SenderQuota);
                    }
                    // Its id must be remembered once delivered, and no live id is
                    // forgotten to make room.
                    if let Err(r) = self.delivery_room(&h.from, now.as_millis()) {
                        return Intake::Refused(r);
                    }
                    return Intake::Deliver(env);
                }
                if self
                    .seen_receipts
                    .contains_key(&(h.from.clone(), h.to.clone(), h.id))
                {
                    return Intake::Seen;
                }
                self.take_custody(peer, MailItem::Envelope(env), now)
            }
            MailItem::Receipt(r) => {
                let b = r.body();
                // A receipt under the id of a message we hold must be that message's:
                // signed by its recipient, naming its sender. Another member's claim
                // is refused, and the message kept.
                // From the future (the caller's verification refuses it first; clock
                // skew may explain it, so no strike).
                if b.received_at.as_millis() > now.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) {
                    return Intake::Refused(Refusal::WrongReceipt { by_author: false });
                }
                let mkey = (ItemKind::Message, b.message_id);
                // (A message of another sender under the same id is another message.)
                if let Some(MailItem::Envelope(e)) = self.held.get(&mkey).map(|h| &h.item)
                    && e.header().from == b.sender
                    && !r.is_for(e.header())
                {
                    return Intake::Refused(Refusal::WrongReceipt {
                        by_author: *peer == b.recipient,
                    });
                }
                // The same for a message we passed on already (or delivered).
                if self
                    .seen
                    .get(&(b.sender.clone(), b.message_id))
                    .is_some_and(|s| s.to != b.recipient)
                {
                    return Intake::Refused(Refusal::WrongReceipt {
                        by_author: *peer == b.recipient,
                    });
                }
                if b.sender == self.me {
                    if self.is_pending(&b.message_id) {
                        self.held.remove(&(ItemKind::Message, b.message_id));
                        self.persist_held(&(ItemKind::Message, b.message_id));
                        self.remember(&MailItem::Receipt(r.clone()), now, false);
                        return Intake::Receipt(r);
                    }
                    return Intake::Seen;
                }
                if self.seen_receipts.contains_key(&(
                    b.sender.clone(),
                    b.recipient.clone(),
                    b.message_id,
                )) {
                    if let Some(held) = self.held.get_mut(&key)
                        && matches!(&held.item, MailItem::Receipt(h) if h.body() == b)
                    {
                        held.handed.insert(peer.clone());
                    }
                    return Intake::Seen;
                }
                // A receipt passing by ends our relaying of its message (checked above
                // to be that message's).
                if self.held.get(&mkey).is_some_and(|h| {
                    h.from_peer.is_some()
                        && matches!(&h.item, MailItem::Envelope(e) if r.is_for(e.header()))
                }) {
                    self.drop_held(&mkey);
                }
                let item = MailItem::Receipt(r);
                self.take_custody(peer, item, now)
            }
        }
    }

    fn take_custody(&mut self, peer: &AgencyCode, item: MailItem, now: Timestamp) -> Intake {
        // We are not the addressee: an item already at the hop limit could never be
        // handed on (every neighbour refuses it one hop further), so custody is
        // refused here and a dropped item stays the sender's doing, not ours (review
        // s31-mail H3: hops are not signed, so an upstream node can set them).
        let hops = match &item {
            MailItem::Envelope(e) => e.hops(),
            MailItem::Receipt(r) => r.hops(),
        };
        if hops >= self.limits.max_hops {
            return Intake::Refused(Refusal::TooManyHops);
        }
        if self.held.contains_key(&key_of(&item)) {
            // Another sender's item under the same id: the first keeps its place (and
            // the other's sender retries, through other neighbours too).
            return Intake::Refused(Refusal::IdInUse);
        }
        if self.held_counts().2 >= self.limits.max_held {
            return Intake::Refused(Refusal::Full);
        }
        let bytes = item.encode().len();
        let q = self.per_peer.get(peer).copied().unwrap_or_default();
        if q.0 + 1 > self.limits.per_peer_items || q.1 + bytes > self.limits.per_peer_bytes {
            return Intake::Refused(Refusal::Quota);
        }
        // A relayed message's id is remembered until its expiry: within the sender's
        // share and the relayed share of `max_seen`, else custody is refused (live
        // ids, delivered ones above all, are never forgotten to make room).
        if let MailItem::Envelope(e) = &item {
            let from = e.header().from.clone();
            self.forget_expired_seen(now.as_millis());
            if self.seen.len() >= self.limits.max_seen {
                return Intake::Refused(Refusal::Full);
            }
            // The sender's share full is that sender's state, not the neighbour's
            // quota: `SenderQuota`, which covers only this copy at the auditor
            // (review s36-int M2: as `Quota` it covered the relay's links for all
            // its messages); the relayed share full is our state: `Full`.
            if !self.sender_has_room(&from) {
                return Intake::Refused(Refusal::SenderQuota);
            }
            if !self.seen_room(Some(&from), now.as_millis()) {
                return Intake::Refused(Refusal::Full);
            }
        }
        self.per_peer.insert(peer.clone(), (q.0 + 1, q.1 + bytes));
        self.remember(&item, now, false);
        let key = key_of(&item);
        let next = match &item {
            MailItem::Envelope(e) => MailItem::Envelope(e.next_hop()),
            MailItem::Receipt(r) => MailItem::Receipt(r.next_hop()),
        };
        let seq = self.take_seq();
        self.held.insert(
            key,
            Held::new(next, Some(peer.clone()), bytes, now.as_millis(), seq),
        );
        self.persist_held(&key);
        Intake::Relay
    }

    /// A message for us was opened and kept: remember it as delivered and queue the
    /// signed receipt (made by the caller) back to the sender.
    pub fn on_delivered(&mut self, env: &Envelope, receipt: Receipt, now: Timestamp) {
        self.remember(&MailItem::Envelope(env.clone()), now, true);
        let q = self.delivery_window(&env.header().from, now);
        q.1 += 1;
        q.2 += env.encoded_len();
        self.queue_receipt(receipt, now);
    }

    /// The sender's delivery counters, restarted when the window has passed.
    fn delivery_window(&mut self, from: &AgencyCode, now: Timestamp) -> &mut (u64, usize, usize) {
        let window = self.limits.delivery_window_ms;
        let q = self
            .delivered
            .entry(from.clone())
            .or_insert((now.as_millis(), 0, 0));
        if now.as_millis() >= q.0.saturating_add(window) || now.as_millis() < q.0 {
            *q = (now.as_millis(), 0, 0);
        }
        q
    }

    /// Whether `from` may deliver one more message of `bytes` into our inbox now.
    fn delivery_allowed(&mut self, from: &AgencyCode, bytes: usize, now: Timestamp) -> bool {
        let limits = self.limits;
        let q = self.delivery_window(from, now);
        q.1 < limits.per_sender_deliveries
            && q.2.saturating_add(bytes) <= limits.per_sender_delivery_bytes
    }

    /// A duplicate of a delivered message arrived: its receipt (made again by the
    /// caller) goes back once more, in case the first one was lost.
    pub fn queue_receipt(&mut self, receipt: Receipt, now: Timestamp) {
        let item = MailItem::Receipt(receipt);
        let key = key_of(&item);
        if self.held.contains_key(&key) || self.held_counts().1 >= self.limits.max_held {
            return;
        }
        let bytes = item.encode().len();
        let seq = self.take_seq();
        self.held
            .insert(key, Held::new(item, None, bytes, now.as_millis(), seq));
        self.persist_held(&key);
    }

    fn drop_held(&mut self, key: &ItemKey) {
        if let Some(h) = self.held.remove(key) {
            if let Some(p) = &h.from_peer
                && let Some(q) = self.per_peer.get_mut(p)
            {
                q.0 = q.0.saturating_sub(1);
                q.1 = q.1.saturating_sub(h.bytes);
            }
            self.persist_held(key);
        }
    }

    fn expiry(&self, h: &Held) -> u64 {
        match &h.item {
            MailItem::Envelope(e) => e.header().expires_at.as_millis(),
            MailItem::Receipt(r) => self.receipt_until(r, Timestamp(u64::MAX)),
        }
    }

    /// How long a receipt is kept: its time-to-live after the receipt's time (never
    /// after `now` plus the time-to-live), and not past the clock skew after its
    /// message's expiry when we hold (or remember) that message.
    fn receipt_until(&self, r: &Receipt, now: Timestamp) -> u64 {
        let b = r.body();
        let ttl = self.limits.receipt_ttl_ms;
        let mut until = b
            .received_at
            .as_millis()
            .min(now.as_millis())
            .saturating_add(ttl);
        let message_expiry = match self.held.get(&(ItemKind::Message, b.message_id)) {
            Some(Held {
                item: MailItem::Envelope(e),
                ..
            }) if r.is_for(e.header()) => Some(e.header().expires_at.as_millis()),
            _ => self
                .seen
                .get(&(b.sender.clone(), b.message_id))
                .map(|s| s.until),
        };
        if let Some(e) = message_expiry {
            until = until.min(e.saturating_add(MAX_CLOCK_SKEW_MS));
        }
        until
    }

    /// What to hand to whom now, given the connected neighbours; also expires what
    /// is due. The sends come in custody order, the item we took first first
    /// ([`Held::seq`], then the item's key, then the neighbour), whatever ids the
    /// senders chose: the caller opens the requests in this order, so when a
    /// connection's streams run out (64, `net`), the hand-overs of this poll that
    /// fail at once are of the items taken last. To a neighbour whose streams were
    /// found full ([`Mailer::on_hand_busy`]) nothing goes in its pause, then at most
    /// [`MailLimits::full_streams_batch`] a round, the oldest first, so across polls
    /// too a freed stream goes to the oldest copy waiting for it (an item in its
    /// retry backoff after any other failure is still overtaken: see the module
    /// documentation). Cost: one pass over what we hold (as before) and a sort of
    /// the sends, O(s log s) for s sends; a hand-over due to a neighbour in its
    /// pause is skipped in the pass (not collected: s37 final review M1), and at its
    /// round each one waiting for it costs O(log 64) in a bounded heap that keeps
    /// the oldest 64, so a neighbour holding our streams costs O(held) per round,
    /// not per poll.
    ///
    /// A hand-over to the addressee unanswered for
    /// [`MailLimits::addressee_answer_ms`] is counted as a miss by
    /// [`Mailer::retry`], which the caller runs before each poll at the same time
    /// (the runtime's `mail_poll` does): it has to come first, so that the retry
    /// offers that addressee the message again in the same round (s36 counted it in
    /// both; here it could only find what the retry just counted).
    pub fn poll(
        &mut self,
        connected: &BTreeSet<AgencyCode>,
        now: Timestamp,
    ) -> (Vec<Send>, Vec<MailEvent>) {
        let now_ms = now.as_millis();
        let mut events = Vec::new();
        let expired: Vec<ItemKey> = self
            .held
            .iter()
            .filter(|(_, h)| now_ms >= self.expiry(h))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            if let Some(h) = self.held.get(&key) {
                match (&h.item, &h.from_peer) {
                    (MailItem::Envelope(e), None) => events.push(MailEvent::Expired {
                        id: e.header().id,
                        header: Box::new(e.header().clone()),
                    }),
                    _ => events.push(MailEvent::RelayExpired { key }),
                }
            }
            self.drop_held(&key);
        }
        self.forget_expired_seen(now_ms);
        self.seen_receipts.retain(|_, until| *until > now_ms);
        // Every hand-over due: (place, item, neighbour), but those to a neighbour
        // whose streams were found full: none in its pause (not even collected:
        // review s37 final M1), and at its round only the oldest batch, kept in a
        // bounded heap.
        let mut offers: Vec<(u64, ItemKey, AgencyCode)> = Vec::new();
        let batch = self.limits.full_streams_batch;
        let mut rounds: BTreeMap<&AgencyCode, Round> = self
            .full
            .iter()
            .filter(|(_, f)| now_ms >= f.until)
            .map(|(a, _)| (a, Round::default()))
            .collect();
        let misses = self.limits.addressee_misses;
        for (key, h) in &self.held {
            let to = h.addressee();
            // A connected addressee alone, unless it let hand-overs of a message we
            // relay pass without taking it: then every connected neighbour (it too).
            let targets: Vec<&AgencyCode> = if connected.contains(to) && !h.addressee_passed(misses)
            {
                vec![to]
            } else {
                connected.iter().filter(|a| **a != self.me).collect()
            };
            for a in targets {
                if h.handed.contains(a) || h.failed.contains(a) || h.in_flight.contains_key(a) {
                    continue;
                }
                if !self.full.contains_key(a) {
                    offers.push((h.seq, *key, a.clone()));
                } else if let Some(r) = rounds.get_mut(a) {
                    r.offer(h.seq, *key, batch);
                }
                // Otherwise in its pause: waits.
            }
        }
        let rounds: Vec<(AgencyCode, Round)> =
            rounds.into_iter().map(|(a, r)| (a.clone(), r)).collect();
        self.run_rounds(rounds, now_ms, &mut offers, &mut events);
        // An item's offers together, in the neighbours' order, and items of the
        // same place (restored from an older build's rows) in key order: the order
        // of the pass.
        offers.sort_unstable();
        let mut sends = Vec::with_capacity(offers.len());
        let mut frame: Option<(ItemKey, Vec<u8>)> = None;
        for (_, key, a) in offers {
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            let ticket = Ticket(self.next_ticket);
            self.next_ticket = self.next_ticket.wrapping_add(1);
            h.in_flight.insert(
                a.clone(),
                InFlight {
                    ticket,
                    sent: now_ms,
                },
            );
            // Encoded once per item: its offers are next to each other.
            let bytes = match &frame {
                Some((k, f)) if *k == key => f.clone(),
                _ => {
                    let f = h.item.encode();
                    frame = Some((key, f.clone()));
                    f
                }
            };
            sends.push(Send {
                to: a,
                key,
                frame: bytes,
                ticket,
            });
        }
        (sends, events)
    }

    /// The rounds due now to neighbours whose streams were found full
    /// ([`Mailer::full`]; review s37-order H1): each offers its
    /// [`MailLimits::full_streams_batch`] oldest due hand-overs (added to `offers`),
    /// the others wait for its next round, one pause later (the pause doubled if no
    /// hand-over to it got a stream since its last round and one found none: s37
    /// final review M2). A round that finds nothing waiting ends the neighbour's
    /// full state. An offer held back at a round, of a message we relay to its
    /// addressee, counts as a miss of that addressee, as the same offer failing for
    /// want of a stream would (and did before s37-busy): an addressee that keeps our
    /// streams to it full is still passed, all of its copies, not only the oldest
    /// ones at the head of the queue. Misses are counted at the rounds only, so at
    /// most once per pause; so are the [`MailEvent::NoStream`] of the messages we
    /// relay held back (one per held-back hand-over and round: at most what we hold,
    /// each round, for the caller to audit within its caps).
    fn run_rounds(
        &mut self,
        rounds: Vec<(AgencyCode, Round)>,
        now_ms: u64,
        offers: &mut Vec<(u64, ItemKey, AgencyCode)>,
        events: &mut Vec<MailEvent>,
    ) {
        let base = self.limits.full_streams_pause_ms;
        let max = self.limits.full_streams_pause_max_ms.max(base);
        for (a, r) in rounds {
            let Some(f) = self.full.get_mut(&a) else {
                continue;
            };
            if r.kept.is_empty() && r.held_back.is_empty() {
                // Nothing waits for it: a new stream failure puts it back.
                self.full.remove(&a);
                continue;
            }
            if r.held_back.is_empty() && f.got && !f.busy {
                // Review of s37-busyfix H1: the last round's hand-overs got streams
                // and all that is due fits in this one: it goes, and the rounds end.
                // Only then, so leaving never lets a backlog out at once (it did:
                // a neighbour ending each round's hand-overs at once was offered
                // every due copy at the next poll, some 24k, again every second or
                // two). What falls due later goes as it comes; a new full stream
                // starts the rounds again.
                self.full.remove(&a);
                offers.extend(r.kept.into_iter().map(|(seq, key)| (seq, key, a.clone())));
                continue;
            }
            f.pause = if f.got {
                base
            } else if f.busy {
                f.pause.saturating_mul(2).min(max)
            } else {
                f.pause
            };
            f.until = now_ms.saturating_add(f.pause);
            f.round = Some(now_ms);
            f.busy = false;
            f.got = false;
            offers.extend(r.kept.into_iter().map(|(seq, key)| (seq, key, a.clone())));
            for key in r.held_back {
                let Some(h) = self.held.get_mut(&key) else {
                    continue;
                };
                if !h.relayed_message() {
                    continue;
                }
                if *h.addressee() == a {
                    h.addressee_misses = h.addressee_misses.saturating_add(1);
                }
                events.push(MailEvent::NoStream { key, to: a.clone() });
            }
        }
    }

    /// A hand-over to `peer` sent at `sent` ended: `busy` when it found no stream
    /// (our side's streams to it full), otherwise it got one. Keeps `peer`'s full
    /// state ([`FullStreams`]): a stream got brings the pause back to the first one
    /// and the next round within it (s37 final review L3: a healthy link goes a batch
    /// a second, not a batch per doubled pause). The rounds end at a round that holds
    /// nothing back after one that found no full stream ([`Mailer::poll`]; review of
    /// s37-busyfix H1: ending them here, when a round's hand-overs had all ended,
    /// let the whole backlog out at the next poll).
    fn note_stream(&mut self, peer: &AgencyCode, sent: u64, busy: bool) {
        let base = self.limits.full_streams_pause_ms;
        let Some(f) = self.full.get_mut(peer) else {
            return;
        };
        if busy {
            f.busy = true;
            f.until = f.until.max(sent.saturating_add(f.pause));
        } else {
            f.got = true;
            f.pause = base;
            let from = f.round.map_or(sent, |r| r.max(sent));
            f.until = f.until.min(from.saturating_add(base));
        }
    }

    /// `peer` took custody of `key` (or already had it), answering the hand-over
    /// `ticket` (a late answer to a request already counted as a miss too: the
    /// addressee has the item all the same).
    pub fn on_handed(&mut self, peer: &AgencyCode, key: &ItemKey, ticket: Ticket) {
        let (done, sent) = match self.held.get_mut(key) {
            Some(h) => {
                let sent = h.end_request(peer, ticket);
                if sent.is_none() && !h.late_end_expected(peer) {
                    self.unmatched_ends = self.unmatched_ends.saturating_add(1);
                }
                h.handed.insert(peer.clone());
                // A receipt is done once a neighbour took it (a lost one is sent again
                // when the sender's retry arrives as a duplicate); a relayed message
                // once its addressee took it; our own message waits for its receipt.
                let done =
                    key.0 == ItemKind::Receipt || (peer == h.addressee() && h.from_peer.is_some());
                (done, sent)
            }
            None => (false, None),
        };
        if let Some(sent) = sent {
            self.note_stream(peer, sent, false);
        }
        if done {
            self.drop_held(key);
        }
    }

    /// Handing `key` to `peer` failed with no signed answer (no answer in time, a
    /// failed stream or connection, an unsupported protocol, an answer that is no
    /// valid signed ack, a dial failure): it counts as tried, and [`Mailer::retry`]
    /// offers it again after the item's backoff. Such a miss of the item's addressee
    /// counts towards [`MailLimits::addressee_misses`]: its willingness is unknown.
    /// The end of a request that is no longer `peer`'s current one (`ticket`: one
    /// already counted as a miss for taking too long) changes nothing.
    pub fn on_hand_failed(&mut self, peer: &AgencyCode, key: &ItemKey, ticket: Ticket) {
        self.hand_ended(peer, key, ticket, true);
    }

    /// Handing `key` to `peer` failed on our side before the request was written:
    /// the connection already ran its most concurrent streams (`net`'s
    /// `RequestFailure::Busy`; review s37-order H1). Unlike
    /// [`Mailer::on_hand_failed`] it does not count as tried: `peer` is not put among
    /// the neighbours offered the item again only once its backoff (up to 5 min) has
    /// passed ([`Mailer::retry`]). Instead nothing is offered to `peer` for [`MailLimits::full_streams_pause_ms`]
    /// from this request, and then the oldest hand-overs due to it go first, at most
    /// [`MailLimits::full_streams_batch`] a round ([`Mailer::poll`]), so this item goes
    /// ahead of every item taken after it (before, it waited out a backoff of up to
    /// 5 min while newer copies, offered at once, took the streams that freed). It
    /// is still a miss of the item's addressee, as any hand-over that ends with no
    /// signed answer: an addressee keeping our streams to it full is passed. As
    /// there, the end of a request that is not `peer`'s current one changes nothing.
    pub fn on_hand_busy(&mut self, peer: &AgencyCode, key: &ItemKey, ticket: Ticket) {
        let Some(h) = self.held.get_mut(key) else {
            return;
        };
        let Some(sent) = h.end_request(peer, ticket) else {
            if !h.late_end_expected(peer) {
                self.unmatched_ends = self.unmatched_ends.saturating_add(1);
            }
            return;
        };
        if peer == h.addressee() {
            h.addressee_misses = h.addressee_misses.saturating_add(1);
        }
        let base = self.limits.full_streams_pause_ms;
        self.full.entry(peer.clone()).or_insert(FullStreams {
            until: sent.saturating_add(base),
            pause: base,
            round: None,
            busy: true,
            got: false,
        });
        self.note_stream(peer, sent, true);
    }

    /// `peer` refused `key` with a valid signed refusal for `reason`: tried, offered
    /// again after the item's backoff, like [`Mailer::on_hand_failed`]. A miss of the
    /// addressee only when `reason` is not in
    /// [`wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS`], the list of the
    /// addressee's refusals the auditor counts as the relay's cover (review s36-m1
    /// M2: the addressee said no, so handing the message to others is pointless, and
    /// an honest online addressee's refusals must not send mail it cannot open
    /// across the federation; review s36-int H1: a refusal the auditor does not count,
    /// `expired`, `no_offer`..., left the relay offering the copy to the addressee
    /// alone and named for it). Other neighbours' refusals are never misses. As
    /// there, the late refusal of a request already counted as a miss (`ticket`)
    /// changes nothing.
    pub fn on_hand_refused(
        &mut self,
        peer: &AgencyCode,
        key: &ItemKey,
        ticket: Ticket,
        reason: &str,
    ) {
        let miss = self.held.get(key).is_some_and(|h| peer == h.addressee())
            && !wlnode_crypto::mail::ADDRESSEE_FINAL_REFUSALS.contains(&reason);
        self.hand_ended(peer, key, ticket, miss);
    }

    fn hand_ended(&mut self, peer: &AgencyCode, key: &ItemKey, ticket: Ticket, miss: bool) {
        if let Some(h) = self.held.get_mut(key) {
            // Matched by ticket, not by count (review s36-int L1).
            let Some(sent) = h.end_request(peer, ticket) else {
                if !h.late_end_expected(peer) {
                    self.unmatched_ends = self.unmatched_ends.saturating_add(1);
                }
                return;
            };
            h.failed.insert(peer.clone());
            if miss && peer == h.addressee() {
                h.addressee_misses = h.addressee_misses.saturating_add(1);
            }
            // It got a stream (a failure for want of one is `on_hand_busy`).
            self.note_stream(peer, sent, false);
        }
    }

    /// How many ends of hand-overs of items still held matched no request in flight
    /// since the last call (the late ends of an addressee's slow requests, already
    /// counted as misses, aside): each changed nothing, and the caller logs and
    /// counts them (review s37-order L3, s37 final review L6: they were dropped
    /// silently).
    pub fn take_unmatched_ends(&mut self) -> u64 {
        std::mem::take(&mut self.unmatched_ends)
    }

    /// The hand-overs [`Mailer::retry`] ended as failures since the last call because
    /// no end was reported within [`MailLimits::stale_request_ms`] (neighbour, item,
    /// ticket): each is an end the network layer lost, which the caller logs and
    /// counts. (The runtime ends its own requests with no end for as long before it
    /// calls [`Mailer::retry`], through the usual failure path, so this is a
    /// backstop there.)
    pub fn take_stale_requests(&mut self) -> Vec<(AgencyCode, ItemKey, Ticket)> {
        std::mem::take(&mut self.stale_requests)
    }

    /// A neighbour came back (or another connected): offer our own undelivered items
    /// to everyone again after the current backoff (what a relay held may have been
    /// lost there).
    pub fn on_connected(&mut self, peer: &AgencyCode) {
        // A new connection has streams to spare.
        self.full.remove(peer);
        for h in self.held.values_mut() {
            h.failed.remove(peer);
            if h.from_peer.is_none() || h.addressee() == peer {
                h.handed.remove(peer);
            }
        }
    }

    /// Once an item's backoff has passed (doubling each time up to the limit), it is
    /// offered again to the neighbours that refused it or could not be reached, and to
    /// its addressee (which answers a message it has with the receipt again). A
    /// neighbour that took custody or answered that it has the item is not offered it
    /// again: it keeps it until the addressee took it, its receipt passed by, or it
    /// expired, and one that restarted is offered it again when it reconnects
    /// ([`Mailer::on_connected`]) (review of issue 21, finding 11: items were offered
    /// to every neighbour at every retry, for their whole life). Retries run even while
    /// other hand-overs of the item are in flight (review s36-int M1, review of
    /// s36-fix M2), each neighbour's own in-flight hand-over excepted. A hand-over in
    /// flight for [`MailLimits::stale_request_ms`] with no end reported is ended here
    /// as a failure first.
    pub fn retry(&mut self, now: Timestamp) {
        let limits = self.limits;
        for (key, h) in self.held.iter_mut() {
            for (peer, ticket) in h.sweep_stale_requests(now.as_millis(), limits.stale_request_ms) {
                self.stale_requests.push((peer, *key, ticket));
            }
            // Here, not in `poll` (which runs after this): an addressee whose request
            // just counted as a miss is not busy any more, and is offered the
            // message again in this round when the backoff has passed.
            h.note_slow_addressee(now.as_millis(), limits.addressee_answer_ms);
            if h.next_try > now.as_millis() {
                continue;
            }
            let addressee = h.addressee().clone();
            // Every neighbour that refused or failed is offered it again, whatever
            // is still in flight: [`Mailer::poll`] never offers a neighbour whose
            // hand-over is in flight, so at most one per neighbour is (review
            // s36-int M1 and of s36-fix M2: neighbours keeping streams of the copy
            // open kept it from the addressee, then one kept it from the others).
            let addressee_busy = h.in_flight.contains_key(&addressee);
            if addressee_busy && h.failed.is_empty() {
                // Nothing to offer again yet: the backoff waits for the answer.
                continue;
            }
            h.failed.clear();
            if !addressee_busy {
                h.handed.remove(&addressee);
            }
            h.attempts = h.attempts.saturating_add(1);
            let delay = limits
                .retry_min_ms
                .saturating_mul(1u64 << h.attempts.min(20))
                .min(limits.retry_max_ms);
            h.next_try = now.as_millis().saturating_add(delay);
        }
    }
}

/// One less in a per-sender count; a count of zero leaves the map.
fn uncount(counts: &mut BTreeMap<AgencyCode, usize>, sender: &AgencyCode) {
    if let Some(n) = counts.get_mut(sender) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(sender);
        }
    }
}

#[cfg(test)]
mod tests;
