//! The initiating side of replication with one neighbour, sans IO: [`PeerSync`] takes
//! events and the time and returns the [`Action`]s to take (Hello, Notify, Pull and
//! cursors of the changes feed; when to reconcile and when the backlog below a
//! first-contact cursor is complete; when the next step of our own session may go,
//! given how many of its replies are still being stored). Also [`Bans`] (invalid input
//! per peer in a sliding window) and [`Backoff`] (reconnect delays).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use wlnode_crypto::model::AgencyCode;

use wlnode_types::Cursor;

use crate::msg::{Hello, Notify, Pull};
use crate::reconcile::Step;

/// What the event loop should do for a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send our Hello.
    SendHello,
    /// Send a Pull.
    SendPull(Pull),
    /// Replace the stored cursor: we had none for this log (first contact, our store
    /// was wiped, or the peer's log epoch changed). The cursor jumps to the peer's
    /// head and reconciliation fetches the backlog, so nothing is sent twice.
    ResetCursor(Cursor),
    /// Start a reconciliation session as initiator.
    StartReconcile,
    /// Our own session with this peer finished and every record it fetched is stored:
    /// persist the cursor, now marked `backlog_complete`.
    BacklogComplete(Cursor),
    /// Our own session with this peer finished without error and every record it
    /// fetched is stored: we hold whatever the peer would give us as of the session's
    /// start (what a hold on local writes waits for).
    Reconciled,
    /// Send a Notify with our head.
    SendNotify,
    /// Send this next step of our current session (one that was held back while
    /// [`MAX_SESSION_INGESTS`] of its replies were still being checked and stored).
    SendSessionStep(Step),
}

/// Changes-feed and reconciliation state of one connected neighbour.
#[derive(Clone, Debug)]
pub struct PeerSync {
    /// The neighbour's agency.
    pub agency: AgencyCode,
    /// Whether we start reconciliations with this peer on connect (the side with the
    /// smaller PeerId does; the other side only steps in if none happens for twice the
    /// interval).
    pub initiator: bool,
    interval: Duration,
    pull_limit: u32,
    max_bytes: u64,
    hello_done: bool,
    /// Another connection to the peer opened (it may have restarted, with a new store
    /// and epoch, before the old connection was seen to close): its next Hello may
    /// name a new epoch once.
    epoch_change_allowed: bool,
    /// Their roster version, from Hello.
    pub roster_version: Option<u64>,
    their_epoch: Option<[u8; 16]>,
    their_head: u64,
    cursor: Option<Cursor>,
    pull_in_flight: bool,
    pull_retry_at: Option<Instant>,
    peer_behind: bool,
    reconcile_in_flight: bool,
    reconcile_wanted: Option<Instant>,
    last_reconcile: Option<Instant>,
    connected_at: Instant,
    notify_in_flight: bool,
    notify_dirty: bool,
    /// Bumped whenever the cursor is reset, so that a session started for an older
    /// log cannot complete the new one's backlog.
    reset_gen: u64,
    /// Our current (or just finished) session, while its records are being stored.
    own: Option<OwnSession>,
    /// No backlog session starts before this (a failed or short one backs off).
    reconcile_not_before: Option<Instant>,
    backlog_retry: Duration,
    /// What our Hellos on this connection say (`Hello::backlog_pending`): fixed at
    /// connect, from the stored cursor.
    declared_pending: bool,
    /// Last time we served (or stored a push of) a round of the peer's session.
    last_served: Option<Instant>,
    /// Last time we stored records the peer pushed in its session.
    last_pushed: Option<Instant>,
    /// The wish comes from [`Self::request_reconcile`]: it starts at once and a
    /// session of the peer's does not cancel it.
    reconcile_forced: bool,
    /// Last time a batch or reconciliation completed.
    pub last_sync: Option<Instant>,
    /// Last error seen with this peer.
    pub last_error: Option<String>,
}

/// What we track of a session we initiated, to know when it has filled the backlog:
/// it must finish, every record it returned must be stored, and the peer must have
/// returned every record we asked for, unless it returned none at all.
///
/// A reply can come back short for two kinds of reason: a byte budget cut it (the rest
/// comes in the next session), or the peer will never serve those ids (its share rules
/// or hop limit refuse us, the record is only in its declined set, or one record is
/// larger than the budget). Only the first kind is backlog, and it always makes
/// progress; so a short session that brought records is retried, and one that brought
/// nothing settles the backlog (otherwise a peer with share rules would keep us
/// reconciling every 30 s forever).
#[derive(Clone, Debug)]
struct OwnSession {
    session: [u8; 16],
    reset_gen: u64,
    finished: Option<bool>,
    short: bool,
    received: usize,
    ingests: u32,
    ingest_failed: bool,
    /// The next step, held back while [`MAX_SESSION_INGESTS`] replies are unfinished.
    parked: Option<Step>,
}

/// Most replies with records of one session of ours that may be checked and stored at
/// once. The next step goes out only below this, so a peer that answers faster than
/// we can check (each reply up to the reply byte budget) cannot make us hold more than
/// this many replies: one being stored while the next arrives.
pub const MAX_SESSION_INGESTS: u32 = 2;

/// First delay before another backlog session when one failed or came back short.
const BACKLOG_RETRY_MIN: Duration = Duration::from_secs(2);
/// Longest delay between backlog sessions (a short session is usually one that
/// overlapped the peer's own session, whose records are arriving).
const BACKLOG_RETRY_MAX: Duration = Duration::from_secs(30);

/// How long the peer's session must have been quiet before a non-initiator with an
/// undeclared pending backlog runs its own (confirming) session. Generous: if ours
/// starts while the peer is still preparing a push, the same records cross twice
/// (reconciliation sends what the peer lacks even if it was sent recently).
const SERVED_QUIET: Duration = Duration::from_secs(10);

/// Delay before retrying a failed Pull.
const PULL_RETRY: Duration = Duration::from_secs(2);
/// Longest a wanted reconciliation waits for the changes feed to catch up.
const RECONCILE_MAX_WAIT: Duration = Duration::from_secs(30);

impl PeerSync {
    /// A new connection to `agency`, with the cursor we stored for it.
    pub fn new(
        agency: AgencyCode,
        initiator: bool,
        cursor: Option<Cursor>,
        interval: Duration,
        pull_limit: u32,
        max_bytes: u64,
        now: Instant,
    ) -> Self {
        Self {
            agency,
            initiator,
            interval,
            pull_limit,
            max_bytes,
            hello_done: false,
            epoch_change_allowed: false,
            roster_version: None,
            their_epoch: None,
            their_head: 0,
            cursor,
            pull_in_flight: false,
            pull_retry_at: None,
            peer_behind: false,
            reconcile_in_flight: false,
            reconcile_wanted: None,
            last_reconcile: None,
            connected_at: now,
            notify_in_flight: false,
            notify_dirty: false,
            reset_gen: 0,
            own: None,
            reconcile_not_before: None,
            backlog_retry: BACKLOG_RETRY_MIN,
            declared_pending: cursor.is_some_and(|c| !c.backlog_complete),
            last_served: None,
            last_pushed: None,
            reconcile_forced: false,
            last_sync: None,
            last_error: None,
        }
    }

    /// On connect: introduce ourselves.
    pub fn on_connected(&mut self) -> Vec<Action> {
        vec![Action::SendHello]
    }

    /// Whether Hello has been exchanged.
    pub fn ready(&self) -> bool {
        self.hello_done
    }

    /// Changes-feed lag: their head minus our cursor.
    pub fn lag(&self) -> Option<u64> {
        let epoch = self.their_epoch?;
        let seq = match self.cursor {
            Some(c) if c.epoch == epoch => c.seq,
            _ => 0,
        };
        Some(self.their_head.saturating_sub(seq))
    }

    fn observe(&mut self, epoch: [u8; 16], head: u64, now: Instant, out: &mut Vec<Action>) {
        if self.their_epoch != Some(epoch) {
            self.their_epoch = Some(epoch);
            self.their_head = head;
            if self.cursor.is_none_or(|c| c.epoch != epoch) {
                // An empty log has no backlog.
                let c = Cursor {
                    epoch,
                    seq: head,
                    backlog_complete: head == 0,
                };
                self.cursor = Some(c);
                self.reset_gen += 1;
                out.push(Action::ResetCursor(c));
                if !c.backlog_complete {
                    self.want_reconcile(now);
                }
            }
        } else {
            self.their_head = self.their_head.max(head);
        }
    }

    /// What our Hello to this peer says in `backlog_pending`: a cursor stored pending
    /// (a backlog left unfinished by a crash or a lost connection). With no cursor at
    /// all we cannot know yet (their log may be empty) and say false.
    pub fn declares_pending(&self) -> bool {
        self.declared_pending
    }

    /// Whether the stored cursor still lacks records below it (first-contact jump not
    /// yet backfilled by a finished reconciliation).
    pub fn backlog_pending(&self) -> bool {
        self.cursor.is_some_and(|c| !c.backlog_complete)
    }

    /// Asks for a reconciliation soon (e.g. after a policy reload that may let more
    /// records flow). Both sides do this, so no initiator rule applies.
    pub fn request_reconcile(&mut self, now: Instant) -> Vec<Action> {
        self.reconcile_wanted = Some(now.checked_sub(RECONCILE_MAX_WAIT).unwrap_or(now));
        // A session the peer is running was prepared before this change and does
        // not cover it.
        self.reconcile_forced = true;
        let mut out = Vec::new();
        self.maybe_reconcile(now, &mut out);
        out
    }

    fn want_reconcile(&mut self, now: Instant) {
        if self.reconcile_wanted.is_none() {
            self.reconcile_wanted = Some(now);
        }
    }

    /// Both changes feeds are idle: we have pulled their log to its head, and their
    /// last pull from us reached ours.
    fn caught_up(&self) -> bool {
        !self.pull_in_flight
            && !self.peer_behind
            && self.cursor.is_some_and(|c| c.seq >= self.their_head)
    }

    /// We answered one of their Pulls; `at_head` says whether it reached our head.
    pub fn on_pull_served(&mut self, at_head: bool, now: Instant) -> Vec<Action> {
        self.peer_behind = !at_head;
        let mut out = Vec::new();
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// Starts a wanted reconciliation once the changes feed has caught up (so the two
    /// paths do not send the same records), or after waiting too long for that, but
    /// then not while the peer's session is still pushing records to us (unless the
    /// wish is forced).
    fn maybe_reconcile(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(since) = self.reconcile_wanted else {
            return;
        };
        if !self.hello_done || self.reconcile_in_flight || self.own.is_some() {
            return;
        }
        if self.reconcile_not_before.is_some_and(|t| now < t) {
            return;
        }
        // When both sides want a session (say, after one lost its store), only the
        // initiator starts at once; the other waits, and drops its wish as soon as it
        // serves the initiator's session (unless the wish is forced), so records are
        // not sent twice. A side whose
        // backlog is pending runs its own session at once: only a session it initiated
        // tells it when the backlog is filled, whichever side dialled.
        let waited = now.duration_since(since) >= RECONCILE_MAX_WAIT;
        // A non-initiator that found its backlog pending only on this connection did
        // not say so in its Hello, so the initiator runs its on-connect session and
        // sends the backlog; ours follows once that session has been quiet for a
        // while, finds little or nothing left, and settles the mark.
        let yield_to_initiator = !self.initiator
            && !self.declared_pending
            && self
                .last_served
                .is_none_or(|t| now.duration_since(t) < SERVED_QUIET);
        let ours = (self.initiator || self.backlog_pending()) && !yield_to_initiator;
        // Waiting too long for the changes feed never starts a session while the
        // peer's session is still pushing records to us: ours would ask again for
        // every record not yet stored (a slow cold sync got them twice).
        let peer_pushing = self
            .last_pushed
            .is_some_and(|t| now.duration_since(t) < SERVED_QUIET);
        if (ours && self.caught_up()) || (waited && (self.reconcile_forced || !peer_pushing)) {
            self.reconcile_wanted = None;
            self.reconcile_forced = false;
            self.reconcile_in_flight = true;
            out.push(Action::StartReconcile);
        }
    }

    fn maybe_pull(&mut self, now: Instant, out: &mut Vec<Action>) {
        if !self.hello_done || self.pull_in_flight || self.pull_retry_at.is_some_and(|t| now < t) {
            return;
        }
        let (Some(epoch), Some(cursor)) = (self.their_epoch, self.cursor) else {
            return;
        };
        if self.their_head > cursor.seq {
            self.pull_in_flight = true;
            self.pull_retry_at = None;
            out.push(Action::SendPull(Pull {
                log_epoch: epoch,
                after_seq: cursor.seq,
                limit: self.pull_limit,
                max_bytes: self.max_bytes,
            }));
        }
    }

    /// Whether a Hello names another log epoch than the first Hello on this
    /// connection did. A node's epoch changes only with a new store, hence a restart
    /// and a new connection; a Hello that changes it on a live connection would reset
    /// (and durably rewrite) our cursor and queue a reconciliation for every frame.
    pub fn hello_epoch_mismatch(&self, h: &Hello) -> bool {
        !self.epoch_change_allowed && self.epoch_mismatch(h.log_epoch)
    }

    /// Another connection to the peer opened while this state lives on: the peer may
    /// have restarted, so its next Hello may name a new epoch (once per connection).
    pub fn on_new_connection(&mut self) {
        self.epoch_change_allowed = true;
    }

    /// Whether `epoch` differs from the one the peer's Hello named.
    pub fn epoch_mismatch(&self, epoch: [u8; 16]) -> bool {
        self.hello_done && self.their_epoch.is_some_and(|e| e != epoch)
    }

    /// Their Hello (as a request or as the reply to ours). One that changes the
    /// epoch on a live connection ([`Self::hello_epoch_mismatch`]) is ignored.
    pub fn on_hello(&mut self, h: &Hello, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.hello_epoch_mismatch(h) {
            return out;
        }
        self.epoch_change_allowed = false;
        let first = !self.hello_done;
        self.hello_done = true;
        self.roster_version = Some(h.roster_version);
        self.observe(h.log_epoch, h.head_seq, now, &mut out);
        // On connect, a side with a pending backlog reconciles (only its own session
        // can settle it). The usual initiator also does, unless the peer says it has a
        // pending backlog: the peer's session covers both directions, and a second one
        // at the same time would send the same records again.
        if first && (self.backlog_pending() || (self.initiator && !h.backlog_pending)) {
            self.want_reconcile(now);
        }
        self.maybe_pull(now, &mut out);
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// Whether a Notify names another log epoch than the peer's Hello did. A node's
    /// epoch changes only with a new store, hence a restart and a new Hello; a Notify
    /// that changes it would reset (and durably rewrite) our cursor for every frame.
    pub fn notify_epoch_mismatch(&self, n: &Notify) -> bool {
        self.epoch_mismatch(n.log_epoch)
    }

    /// Their Notify.
    pub fn on_notify(&mut self, n: &Notify, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.hello_done || self.notify_epoch_mismatch(n) {
            return out;
        }
        self.observe(n.log_epoch, n.head_seq, now, &mut out);
        self.maybe_pull(now, &mut out);
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// A batch from them was checked and stored (with the cursor it advanced to).
    pub fn on_batch_applied(
        &mut self,
        epoch: [u8; 16],
        next_seq: u64,
        head_seq: u64,
        now: Instant,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        self.pull_in_flight = false;
        self.last_sync = Some(now);
        self.last_error = None;
        if self.their_epoch != Some(epoch) {
            // Their log was recreated: adopt the new one at its head and reconcile.
            self.observe(epoch, head_seq, now, &mut out);
        } else {
            self.cursor = Some(Cursor {
                epoch,
                seq: next_seq,
                backlog_complete: !self.backlog_pending(),
            });
            self.their_head = self.their_head.max(head_seq);
        }
        self.maybe_pull(now, &mut out);
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// The Pull failed (timeout, connection trouble, refused).
    pub fn on_pull_failed(&mut self, error: String, now: Instant) {
        self.pull_in_flight = false;
        self.pull_retry_at = Some(now + PULL_RETRY);
        self.last_error = Some(error);
    }

    /// Our session `session` (asked for by [`Action::StartReconcile`]) has begun.
    pub fn on_reconcile_started(&mut self, session: [u8; 16]) {
        self.own = Some(OwnSession {
            session,
            reset_gen: self.reset_gen,
            finished: None,
            short: false,
            received: 0,
            ingests: 0,
            ingest_failed: false,
            parked: None,
        });
    }

    /// The next step of our session `session`, after a reply: send it at once
    /// ([`Action::SendSessionStep`]) unless [`MAX_SESSION_INGESTS`] of the session's
    /// replies are still being stored; then it waits for one of them
    /// ([`Self::on_session_stored`] returns it).
    pub fn on_session_step(&mut self, session: [u8; 16], step: Step) -> Vec<Action> {
        match self.own.as_mut() {
            Some(o)
                if o.session == session
                    && o.finished.is_none()
                    && o.ingests >= MAX_SESSION_INGESTS =>
            {
                o.parked = Some(step);
                Vec::new()
            }
            // The session's replies are not counted here (it is not the one we track):
            // the step goes out, as it did before the bound.
            _ => vec![Action::SendSessionStep(step)],
        }
    }

    /// A reply in our session returned `got` records for the `asked` ids we named;
    /// the records (if any) are being stored, and [`Self::on_session_stored`] follows.
    pub fn on_session_reply(&mut self, session: [u8; 16], asked: usize, got: usize) {
        if let Some(o) = self.own.as_mut().filter(|o| o.session == session) {
            o.short |= got < asked;
            o.received = o.received.saturating_add(got);
            if got > 0 {
                o.ingests += 1;
            }
        }
    }

    /// Records of our session's reply were checked and stored (`ok`), or the store
    /// refused them. A step held back for [`MAX_SESSION_INGESTS`] goes out now.
    pub fn on_session_stored(&mut self, session: [u8; 16], ok: bool, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(o) = self.own.as_mut().filter(|o| o.session == session) {
            o.ingests = o.ingests.saturating_sub(1);
            o.ingest_failed |= !ok;
            if o.ingests < MAX_SESSION_INGESTS
                && let Some(step) = o.parked.take()
            {
                out.push(Action::SendSessionStep(step));
            }
        }
        out.extend(self.settle_session(now));
        out
    }

    /// A reconciliation with this peer finished (either side initiated it).
    pub fn on_reconcile_done(&mut self, ok: Result<(), String>, now: Instant) -> Vec<Action> {
        self.reconcile_in_flight = false;
        self.last_reconcile = Some(now);
        let done = ok.is_ok();
        match ok {
            Ok(()) => {
                self.last_sync = Some(now);
            }
            Err(e) => self.last_error = Some(e),
        }
        if let Some(o) = self.own.as_mut() {
            if o.finished.is_none() {
                o.finished = Some(done);
            }
            // An ended session sends nothing more.
            o.parked = None;
        } else if !done && self.backlog_pending() {
            // It failed before it began (our item set could not be built).
            self.retry_backlog(now);
        }
        self.settle_session(now)
    }

    fn retry_backlog(&mut self, now: Instant) {
        self.reconcile_not_before = Some(now + self.backlog_retry);
        self.backlog_retry = (self.backlog_retry * 2).min(BACKLOG_RETRY_MAX);
        self.want_reconcile(now);
    }

    /// Once our session has finished and its records are stored: mark the backlog
    /// complete if it filled it, or retry with backoff if it could not.
    fn settle_session(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let Some(o) = self.own.as_ref() else {
            return out;
        };
        let Some(finished_ok) = o.finished else {
            return out;
        };
        if o.ingests > 0 {
            return out;
        }
        // Short with nothing received: what is left is what the peer will not serve.
        let complete = finished_ok && (!o.short || o.received == 0) && !o.ingest_failed;
        if complete {
            out.push(Action::Reconciled);
        }
        let filled = complete && o.reset_gen == self.reset_gen;
        self.own = None;
        if let Some(c) = self.cursor.filter(|c| !c.backlog_complete) {
            if filled {
                let c = Cursor {
                    backlog_complete: true,
                    ..c
                };
                self.cursor = Some(c);
                self.reconcile_not_before = None;
                self.backlog_retry = BACKLOG_RETRY_MIN;
                out.push(Action::BacklogComplete(c));
            } else {
                self.retry_backlog(now);
            }
        }
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// We served a reconciliation round for this peer: their session covers ours
    /// (unless our backlog is pending: only our own session can settle that; or our
    /// wish is forced: their session was prepared before what we want covered).
    pub fn on_reconcile_served(&mut self, now: Instant) {
        self.last_reconcile = Some(now);
        self.last_served = Some(now);
        if !self.backlog_pending() && !self.reconcile_forced {
            self.reconcile_wanted = None;
        }
    }

    /// We stored records the peer pushed in its session: that session is still
    /// going, as far as ours is concerned.
    pub fn on_push_stored(&mut self, now: Instant) {
        self.last_pushed = Some(now);
        self.on_reconcile_served(now);
    }

    /// Our log head moved: tell them, one Notify in flight at a time.
    pub fn on_local_change(&mut self) -> Vec<Action> {
        if !self.hello_done {
            return Vec::new();
        }
        if self.notify_in_flight {
            self.notify_dirty = true;
            return Vec::new();
        }
        self.notify_in_flight = true;
        vec![Action::SendNotify]
    }

    /// Our Notify was answered (or failed).
    pub fn on_notify_done(&mut self) -> Vec<Action> {
        self.notify_in_flight = false;
        if std::mem::take(&mut self.notify_dirty) {
            self.notify_in_flight = true;
            return vec![Action::SendNotify];
        }
        Vec::new()
    }

    /// Periodic timer.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.maybe_pull(now, &mut out);
        if self.hello_done && !self.reconcile_in_flight && self.reconcile_wanted.is_none() {
            let since = self.last_reconcile.unwrap_or(self.connected_at);
            let due = if self.initiator {
                self.interval
            } else {
                self.interval * 2
            };
            if now.duration_since(since) >= due {
                self.want_reconcile(now);
            }
        }
        self.maybe_reconcile(now, &mut out);
        out
    }

    /// The cursor as last stored.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor
    }
}

/// Counts invalid input per peer in a sliding window and decides bans.
#[derive(Debug)]
pub struct Bans {
    threshold: u32,
    window: Duration,
    duration: Duration,
    events: HashMap<AgencyCode, VecDeque<(Instant, u32)>>,
    banned: HashMap<AgencyCode, Instant>,
}

impl Bans {
    /// Ban after more than `threshold` invalid items within `window`, for `duration`.
    pub fn new(threshold: u32, window: Duration, duration: Duration) -> Self {
        Self {
            threshold,
            window,
            duration,
            events: HashMap::new(),
            banned: HashMap::new(),
        }
    }

    /// Records `n` invalid items from `peer`; returns the ban expiry if this bans it.
    pub fn record(&mut self, peer: &AgencyCode, n: u32, now: Instant) -> Option<Instant> {
        if n == 0 || self.is_banned(peer, now) {
            return None;
        }
        let q = self.events.entry(peer.clone()).or_default();
        q.push_back((now, n));
        while q
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.window)
        {
            q.pop_front();
        }
        let total: u32 = q.iter().map(|(_, k)| *k).sum();
        if total > self.threshold {
            q.clear();
            let until = now + self.duration;
            self.banned.insert(peer.clone(), until);
            return Some(until);
        }
        None
    }

    /// Whether `peer` is banned at `now` (expired bans are forgotten).
    pub fn is_banned(&mut self, peer: &AgencyCode, now: Instant) -> bool {
        match self.banned.get(peer) {
            Some(until) if now < *until => true,
            Some(_) => {
                self.banned.remove(peer);
                false
            }
            None => false,
        }
    }

    /// Current bans with their expiry.
    pub fn active(&self, now: Instant) -> Vec<(AgencyCode, Instant)> {
        self.banned
            .iter()
            .filter(|(_, u)| now < **u)
            .map(|(a, u)| (a.clone(), *u))
            .collect()
    }
}

/// Exponential reconnect backoff with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays from `min`, doubling, capped at `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            attempt: 0,
        }
    }

    /// The next delay, given a jitter factor in `[0, 1)` (the caller supplies the
    /// randomness). The delay is uniformly spread over the upper half of the window.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// After a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(initiator: bool, now: Instant) -> PeerSync {
        PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            initiator,
            None,
            Duration::from_secs(60),
            100,
            1 << 20,
            now,
        )
    }

    fn hello(epoch: u8, head: u64) -> Hello {
        Hello {
            agency: "BB-CUSTOMS".parse().unwrap(),
            roster_version: 1,
            log_epoch: [epoch; 16],
            head_seq: head,
            backlog_pending: false,
        }
    }

    #[test]
    fn hello_pulls_from_zero_and_initiator_reconciles() {
        let t = Instant::now();
        let mut p = peer(true, t);
        assert_eq!(p.on_connected(), vec![Action::SendHello]);
        // First contact: adopt their head, fetch the backlog by reconciliation.
        let acts = p.on_hello(&hello(1, 10), t);
        assert_eq!(
            acts,
            vec![
                Action::ResetCursor(Cursor {
                    epoch: [1; 16],
                    seq: 10,
                    backlog_complete: false,
                }),
                Action::StartReconcile
            ]
        );
        assert_eq!(p.lag(), Some(0));
        // New records after that come by the changes feed.
        let acts = p.on_notify(
            &Notify {
                log_epoch: [1; 16],
                head_seq: 12,
            },
            t,
        );
        assert!(matches!(
            acts[0],
            Action::SendPull(Pull { after_seq: 10, .. })
        ));
        // No second pull while one is in flight.
        assert!(
            p.on_notify(
                &Notify {
                    log_epoch: [1; 16],
                    head_seq: 14
                },
                t
            )
            .is_empty()
        );
        let acts = p.on_batch_applied([1; 16], 12, 14, t);
        assert!(matches!(
            acts[0],
            Action::SendPull(Pull { after_seq: 12, .. })
        ));
        let acts = p.on_batch_applied([1; 16], 14, 14, t);
        assert!(acts.is_empty());
        assert_eq!(p.lag(), Some(0));
    }

    #[test]
    fn a_new_epoch_resets_the_cursor() {
        let t = Instant::now();
        let mut p = PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            false,
            Some(Cursor {
                epoch: [1; 16],
                seq: 50,
                backlog_complete: true,
            }),
            Duration::from_secs(60),
            100,
            1 << 20,
            t,
        );
        p.on_connected();
        let acts = p.on_hello(&hello(1, 60), t);
        assert!(
            matches!(acts[..], [Action::SendPull(Pull { after_seq: 50, .. })]),
            "resume: {acts:?}"
        );
        p.on_batch_applied([1; 16], 60, 60, t);
        // A Hello naming another epoch on the same connection is ignored: no reset,
        // no store write, no reconciliation.
        assert!(p.hello_epoch_mismatch(&hello(2, 3)));
        assert!(p.on_hello(&hello(2, 3), t).is_empty());
        assert_eq!(p.cursor().map(|c| (c.epoch, c.seq)), Some(([1; 16], 60)));
        // A restarted peer whose new connection opened before the old one was seen
        // to close: one new epoch per new connection, no more.
        let mut q = p.clone();
        q.on_new_connection();
        assert!(!q.hello_epoch_mismatch(&hello(2, 3)));
        assert!(matches!(
            q.on_hello(&hello(2, 3), t)[..],
            [Action::ResetCursor(Cursor { seq: 3, .. }), ..]
        ));
        assert!(
            q.hello_epoch_mismatch(&hello(4, 3)),
            "the allowance is used up"
        );
        // Their store was wiped: they restart, reconnect and say Hello with a new
        // epoch. Jump to its head, marked pending. Our Hello did not say so, so the
        // initiator sends the backlog in its session; ours follows when that has gone
        // quiet (or, if none comes, after the usual wait), and settles the mark.
        let mut p = PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            false,
            p.cursor(),
            Duration::from_secs(60),
            100,
            1 << 20,
            t,
        );
        p.on_connected();
        let acts = p.on_hello(&hello(2, 3), t);
        assert_eq!(
            acts,
            vec![Action::ResetCursor(Cursor {
                epoch: [2; 16],
                seq: 3,
                backlog_complete: false,
            })]
        );
        assert!(p.on_tick(t + Duration::from_secs(5)).is_empty());
        assert_eq!(
            p.on_tick(t + RECONCILE_MAX_WAIT),
            vec![Action::StartReconcile]
        );
        p.on_reconcile_started([9; 16]);
        assert_eq!(
            p.on_reconcile_done(Ok(()), t),
            vec![
                Action::Reconciled,
                Action::BacklogComplete(Cursor {
                    epoch: [2; 16],
                    seq: 3,
                    backlog_complete: true,
                })
            ],
            "nothing fetched: complete"
        );
        assert!(!p.backlog_pending());
        // A Notify naming yet another epoch is refused, not a cursor reset.
        let stray = Notify {
            log_epoch: [3; 16],
            head_seq: 1,
        };
        assert!(p.notify_epoch_mismatch(&stray));
        assert!(p.on_notify(&stray, t).is_empty());
    }

    #[test]
    fn failed_pull_retries_after_a_delay() {
        let t = Instant::now();
        let mut p = peer(false, t);
        p.on_hello(&hello(1, 0), t);
        p.on_notify(
            &Notify {
                log_epoch: [1; 16],
                head_seq: 5,
            },
            t,
        );
        p.on_pull_failed("timeout".into(), t);
        assert!(p.on_tick(t + Duration::from_millis(100)).is_empty());
        let acts = p.on_tick(t + PULL_RETRY + Duration::from_millis(1));
        assert!(matches!(acts[0], Action::SendPull(_)));
    }

    #[test]
    fn periodic_reconcile_with_a_backstop_for_the_non_initiator() {
        let t = Instant::now();
        let c0 = Some(Cursor {
            epoch: [1; 16],
            seq: 0,
            backlog_complete: true,
        });
        let mk = |initiator| {
            PeerSync::new(
                "BB-CUSTOMS".parse().unwrap(),
                initiator,
                c0,
                Duration::from_secs(60),
                100,
                1 << 20,
                t,
            )
        };
        let mut a = mk(true);
        let mut b = mk(false);
        assert_eq!(a.on_hello(&hello(1, 0), t), vec![Action::StartReconcile]);
        a.on_reconcile_done(Ok(()), t);
        assert!(b.on_hello(&hello(1, 0), t).is_empty());
        let at = t + Duration::from_secs(61);
        assert_eq!(a.on_tick(at), vec![Action::StartReconcile]);
        assert!(b.on_tick(at).is_empty());
        assert!(b.on_tick(t + Duration::from_secs(121)).is_empty());
        assert_eq!(
            b.on_tick(t + Duration::from_secs(121) + RECONCILE_MAX_WAIT),
            vec![Action::StartReconcile]
        );
    }

    #[test]
    fn notifies_coalesce() {
        let t = Instant::now();
        let mut p = peer(false, t);
        p.on_hello(&hello(1, 0), t);
        assert_eq!(p.on_local_change(), vec![Action::SendNotify]);
        assert!(p.on_local_change().is_empty());
        assert!(p.on_local_change().is_empty());
        assert_eq!(p.on_notify_done(), vec![Action::SendNotify]);
        assert!(p.on_notify_done().is_empty());
    }

    #[test]
    fn bans_after_threshold_in_window() {
        let t = Instant::now();
        let mut b = Bans::new(10, Duration::from_secs(60), Duration::from_secs(600));
        let p: AgencyCode = "EVIL-NODE".parse().unwrap();
        assert!(b.record(&p, 6, t).is_none());
        // Outside the window, the first 6 no longer count.
        assert!(b.record(&p, 6, t + Duration::from_secs(61)).is_none());
        let until = b.record(&p, 5, t + Duration::from_secs(62)).unwrap();
        assert!(b.is_banned(&p, t + Duration::from_secs(63)));
        assert!(!b.is_banned(&p, until + Duration::from_secs(1)));
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let d: Vec<Duration> = (0..8).map(|_| b.next_delay(0.999)).collect();
        assert!(d[0] < Duration::from_millis(101) && d[0] >= Duration::from_millis(99));
        assert!(d[1] > d[0] && d[2] > d[1]);
        assert!(d[7] <= Duration::from_secs(2));
        b.reset();
        assert!(b.next_delay(0.0) <= Duration::from_millis(50));
    }
}

#[cfg(test)]
mod coordination_tests {
    use super::*;

    fn hello(head: u64) -> Hello {
        Hello {
            agency: "BB-CUSTOMS".parse().unwrap(),
            roster_version: 1,
            log_epoch: [1; 16],
            head_seq: head,
            backlog_pending: false,
        }
    }

    fn follower(cursor: Option<Cursor>, t: Instant) -> PeerSync {
        let mut p = PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            false,
            cursor,
            Duration::from_secs(60),
            100,
            1 << 20,
            t,
        );
        p.on_connected();
        p
    }

    fn at(seq: u64, backlog_complete: bool) -> Cursor {
        Cursor {
            epoch: [1; 16],
            seq,
            backlog_complete,
        }
    }

    #[test]
    fn a_served_session_cancels_our_wish() {
        let t = Instant::now();
        let mut p = follower(Some(at(9, true)), t);
        assert!(p.on_hello(&hello(9), t).is_empty());
        // The backstop wants a session after twice the interval, but waits for one
        // from the initiator...
        let wish = t + Duration::from_secs(121);
        assert!(p.on_tick(wish).is_empty());
        // ...which comes.
        p.on_reconcile_served(wish + Duration::from_secs(1));
        assert!(
            p.on_tick(wish + RECONCILE_MAX_WAIT + Duration::from_secs(1))
                .is_empty()
        );
    }

    #[test]
    fn first_contact_marks_the_backlog_pending_until_our_session_has_stored_it() {
        let t = Instant::now();
        let mut p = follower(None, t);
        // First contact: the backlog is pending. Our Hello could not say so (no cursor
        // yet), so the initiator's on-connect session sends it...
        assert!(!p.declares_pending());
        let acts = p.on_hello(&hello(9), t);
        assert_eq!(acts, vec![Action::ResetCursor(at(9, false))]);
        assert!(p.backlog_pending());
        p.on_reconcile_served(t);
        // ...which does not settle ours; once it has gone quiet we confirm with our
        // own session (not the initiator, yet it reconciles: its backlog is pending).
        assert!(p.on_tick(t + Duration::from_secs(1)).is_empty());
        assert_eq!(p.on_tick(t + SERVED_QUIET), vec![Action::StartReconcile]);
        p.on_reconcile_started([5; 16]);
        p.on_session_reply([5; 16], 9, 9);
        // Finished, but the records are not stored yet: still pending.
        assert!(p.on_reconcile_done(Ok(()), t).is_empty());
        assert!(p.backlog_pending());
        // A stale reply from another session counts for nothing.
        assert!(p.on_session_stored([6; 16], true, t).is_empty());
        assert_eq!(
            p.on_session_stored([5; 16], true, t),
            vec![Action::Reconciled, Action::BacklogComplete(at(9, true))]
        );
        assert!(!p.backlog_pending());
        // The changes feed keeps the mark.
        p.on_notify(
            &Notify {
                log_epoch: [1; 16],
                head_seq: 12,
            },
            t,
        );
        p.on_batch_applied([1; 16], 12, 12, t);
        assert_eq!(p.cursor(), Some(at(12, true)));
    }

    #[test]
    fn a_long_push_from_the_initiator_is_not_fetched_again_by_ours() {
        let t = Instant::now();
        let mut p = follower(None, t);
        assert_eq!(
            p.on_hello(&hello(9), t),
            vec![Action::ResetCursor(at(9, false))]
        );
        // The initiator's on-connect session pushes the backlog for longer than the
        // wait limit; each stored push counts as serving it.
        let mut now = t;
        while now < t + RECONCILE_MAX_WAIT * 3 {
            now += Duration::from_secs(2);
            p.on_push_stored(now);
            assert!(p.on_tick(now).is_empty(), "at {:?}", now - t);
        }
        // Once it has gone quiet, ours confirms.
        assert!(p.on_tick(now + SERVED_QUIET / 2).is_empty());
        assert_eq!(p.on_tick(now + SERVED_QUIET), vec![Action::StartReconcile]);
    }

    #[test]
    fn sessions_of_the_peer_that_push_nothing_do_not_hold_ours_back_for_long() {
        let t = Instant::now();
        let mut p = follower(None, t);
        p.on_hello(&hello(9), t);
        // The initiator reconciles every few seconds and has nothing to push: we
        // never see a quiet stretch, yet the wait limit still starts ours.
        let mut now = t;
        let mut started = None;
        while now < t + RECONCILE_MAX_WAIT * 2 {
            now += Duration::from_secs(3);
            p.on_reconcile_served(now);
            if p.on_tick(now) == vec![Action::StartReconcile] {
                started = Some(now - t);
                break;
            }
        }
        assert_eq!(started, Some(RECONCILE_MAX_WAIT));
    }

    #[test]
    fn a_requested_reconcile_starts_at_once_and_survives_the_peers_session() {
        let t = Instant::now();
        let mut p = follower(Some(at(9, true)), t);
        p.on_hello(&hello(9), t);
        // The peer is in the middle of pushing to us when our policy is reloaded.
        p.on_push_stored(t);
        assert_eq!(p.request_reconcile(t), vec![Action::StartReconcile]);
        p.on_reconcile_done(Ok(()), t);
        // Reloaded again while our own session runs: the wish waits for it, and the
        // peer's session (prepared before the reload) does not cancel it.
        let later = t + Duration::from_secs(1);
        p.on_reconcile_started([7; 16]);
        assert!(p.request_reconcile(later).is_empty());
        p.on_push_stored(later);
        p.on_reconcile_served(later);
        assert_eq!(
            p.on_reconcile_done(Ok(()), later),
            vec![Action::Reconciled, Action::StartReconcile]
        );
    }

    #[test]
    fn a_pending_backlog_after_restart_reconciles_on_connect_and_retries_when_short() {
        let t = Instant::now();
        // Killed mid cold sync: the stored cursor says the backlog is pending.
        let mut p = follower(Some(at(9, false)), t);
        assert_eq!(p.on_hello(&hello(9), t), vec![Action::StartReconcile]);
        p.on_reconcile_started([5; 16]);
        // The peer returned fewer records than asked (a byte limit cut the reply).
        p.on_session_reply([5; 16], 9, 4);
        assert!(p.on_reconcile_done(Ok(()), t).is_empty());
        assert!(p.on_session_stored([5; 16], true, t).is_empty());
        assert!(p.backlog_pending());
        // Another session after a short backoff, not at once.
        assert!(p.on_tick(t + Duration::from_millis(500)).is_empty());
        assert_eq!(
            p.on_tick(t + BACKLOG_RETRY_MIN),
            vec![Action::StartReconcile]
        );
        p.on_reconcile_started([6; 16]);
        // A store failure also leaves it pending.
        p.on_session_reply([6; 16], 5, 5);
        p.on_session_stored([6; 16], false, t);
        assert!(p.on_reconcile_done(Ok(()), t).is_empty());
        assert!(p.backlog_pending());
        let later = t + BACKLOG_RETRY_MIN * 4;
        assert_eq!(p.on_tick(later), vec![Action::StartReconcile]);
        p.on_reconcile_started([7; 16]);
        assert_eq!(
            p.on_reconcile_done(Ok(()), later),
            vec![Action::Reconciled, Action::BacklogComplete(at(9, true))]
        );
    }

    #[test]
    fn a_session_whose_missing_ids_the_peer_never_serves_settles_the_backlog() {
        let t = Instant::now();
        let mut p = follower(Some(at(9, false)), t);
        assert_eq!(p.on_hello(&hello(9), t), vec![Action::StartReconcile]);
        // A budget cut: some records came, so the rest is backlog; retry.
        p.on_reconcile_started([5; 16]);
        p.on_session_reply([5; 16], 10, 6);
        assert!(p.on_reconcile_done(Ok(()), t).is_empty());
        assert!(p.on_session_stored([5; 16], true, t).is_empty());
        assert!(p.backlog_pending());
        let next = t + BACKLOG_RETRY_MIN;
        assert_eq!(p.on_tick(next), vec![Action::StartReconcile]);
        // The peer's share rules refuse us the last four: it sends none of them.
        p.on_reconcile_started([6; 16]);
        p.on_session_reply([6; 16], 4, 0);
        assert_eq!(
            p.on_reconcile_done(Ok(()), next),
            vec![Action::Reconciled, Action::BacklogComplete(at(9, true))]
        );
        assert!(!p.backlog_pending());
        // And no more backlog sessions follow.
        assert!(p.on_tick(next + Duration::from_secs(40)).is_empty());
    }

    #[test]
    fn the_initiator_leaves_the_on_connect_session_to_a_peer_with_a_pending_backlog() {
        let t = Instant::now();
        let mut p = PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            true,
            Some(at(9, true)),
            Duration::from_secs(60),
            100,
            1 << 20,
            t,
        );
        p.on_connected();
        // The peer will reconcile itself: one session, not two sending the same records.
        let h = Hello {
            backlog_pending: true,
            ..hello(9)
        };
        assert!(p.on_hello(&h, t).is_empty());
        // Otherwise the initiator reconciles on connect as before.
        let mut q = PeerSync::new(
            "BB-CUSTOMS".parse().unwrap(),
            true,
            Some(at(9, true)),
            Duration::from_secs(60),
            100,
            1 << 20,
            t,
        );
        q.on_connected();
        assert_eq!(q.on_hello(&hello(9), t), vec![Action::StartReconcile]);
    }

    #[test]
    fn an_empty_log_has_no_backlog() {
        let t = Instant::now();
        let mut p = follower(None, t);
        assert_eq!(
            p.on_hello(&hello(0), t),
            vec![Action::ResetCursor(at(0, true))]
        );
        assert!(!p.backlog_pending());
    }

    fn step(n: u8) -> Step {
        Step {
            message: Some(vec![n]),
            have: Vec::new(),
            need: vec![wlnode_crypto::model::RecordId([n; 32])],
        }
    }

    #[test]
    fn a_session_holds_at_most_two_unfinished_replies() {
        let t = Instant::now();
        let mut p = follower(Some(at(9, true)), t);
        p.on_hello(&hello(9), t);
        p.on_reconcile_started([5; 16]);
        // Full replies arrive faster than we check and store them: the step after the
        // first goes out (one reply being stored while the next arrives)...
        p.on_session_reply([5; 16], 4, 4);
        assert_eq!(
            p.on_session_step([5; 16], step(2)),
            vec![Action::SendSessionStep(step(2))]
        );
        // ...the one after the second waits: two replies are unfinished.
        p.on_session_reply([5; 16], 4, 4);
        assert!(p.on_session_step([5; 16], step(3)).is_empty());
        // One is stored: the held step goes out, once.
        assert_eq!(
            p.on_session_stored([5; 16], true, t),
            vec![Action::SendSessionStep(step(3))]
        );
        assert!(p.on_session_stored([5; 16], true, t).is_empty());
        // Replies without records are not held back.
        p.on_session_reply([5; 16], 0, 0);
        assert_eq!(
            p.on_session_step([5; 16], step(4)),
            vec![Action::SendSessionStep(step(4))]
        );
        p.on_session_reply([5; 16], 0, 0);
        assert_eq!(
            p.on_session_step([5; 16], step(5)),
            vec![Action::SendSessionStep(step(5))]
        );
        // The session still settles as before once everything is stored.
        assert_eq!(p.on_reconcile_done(Ok(()), t), vec![Action::Reconciled]);
    }

    #[test]
    fn a_held_step_is_dropped_when_the_session_ends() {
        let t = Instant::now();
        let mut p = follower(Some(at(9, true)), t);
        p.on_hello(&hello(9), t);
        p.on_reconcile_started([5; 16]);
        p.on_session_reply([5; 16], 4, 4);
        p.on_session_reply([5; 16], 4, 4);
        assert!(p.on_session_step([5; 16], step(3)).is_empty());
        // The session fails (say, the peer is gone): its held step is never sent,
        // and a stored reply of it releases nothing.
        assert!(p.on_reconcile_done(Err("gone".into()), t).is_empty());
        assert!(p.on_session_stored([5; 16], true, t).is_empty());
        assert!(p.on_session_stored([5; 16], true, t).is_empty());
        // The next session starts clean.
        let later = t + Duration::from_secs(1);
        assert_eq!(p.request_reconcile(later), vec![Action::StartReconcile]);
        p.on_reconcile_started([6; 16]);
        p.on_session_reply([6; 16], 4, 4);
        assert_eq!(
            p.on_session_step([6; 16], step(2)),
            vec![Action::SendSessionStep(step(2))]
        );
    }
}
