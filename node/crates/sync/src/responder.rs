//! The responding side of replication, sans IO: serving a peer's Pull (the changes
//! feed) and its Reconcile rounds (with the negentropy session cache), and preparing
//! the records our own session pushes. Every record it hands out has passed the policy
//! choke point, the sent-cache and the byte budget ([`crate::outbound`]), and its
//! `sent` audit event is appended before the message goes out.
//!
//! [`Responder`] takes requests and the results of the work it asked for, and returns
//! [`ServeAction`]s: read the log or records from the store, build a reconciliation
//! set, run a negentropy step or a [`PrepareJob`] on a blocking thread, append audit
//! events, ingest pushed records, and finally respond (or hand a prepared push back to
//! the initiator). Each request is a job keyed by a [`JobId`]; the caller feeds each
//! result back with that id. Unit tests drive it without sockets or a store.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use negentropy::NegentropyStorageVector;
use wlnode_audit::event::Event;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_policy::Policy;

use crate::msg::{Batch, Pull, Received, Reconcile, ReconcileReply, Response, Transfer};
use crate::outbound::{
    Outbound, Outgoing, PrepareDone, PrepareError, PrepareJob, RawBatch, SentCaches,
};
use crate::reconcile::Step;

/// Most records a Pull batch may carry.
pub const MAX_PULL_LIMIT: u32 = 5000;
/// Most `need` ids served per reconcile request (also bounded by the batch byte limit).
pub const MAX_NEED: usize = 4000;
/// A cached responder session expires this long after its last round.
pub const SESSION_TTL: Duration = Duration::from_secs(120);
/// Room left in each frame for the message envelope.
pub const FRAME_SLACK: usize = 16 * 1024;
/// Room left in a reconcile frame for the negentropy message.
const NEGENTROPY_SLACK: usize = 70_000;
/// Room for one `need` id in a request.
const NEED_ID_BYTES: usize = 40;
/// New reconciliation sessions a peer may open in a burst. Each costs a pass over
/// the whole set (and, when the store changed, a rebuild of the set on the store
/// thread); an honest peer opens one per anti-entropy interval, plus one after a
/// policy reload or a lost connection.
pub const SESSION_BURST: u32 = 10;
/// A peer regains one new-session allowance this often.
pub const SESSION_REFILL: Duration = Duration::from_secs(1);

/// The frame limits the responder cuts its messages to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest response frame (and Pull batch) in bytes.
    pub max_batch_bytes: usize,
    /// Largest request frame in bytes.
    pub max_request_bytes: usize,
}

/// One request being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub(crate) u64);

/// What a finished response or push carried, for metrics and the peer's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The peer.
    pub agency: AgencyCode,
    /// Records sent.
    pub records: u64,
    /// Disclosures withheld over all of them.
    pub withheld_fields: u64,
    /// Records the policy kept from the peer.
    pub denied: u64,
    /// For Pull batches: whether the batch reached our log head.
    pub at_head: Option<bool>,
}

/// What the log read of a Pull found.
#[derive(Debug)]
pub struct LogRead {
    /// Our log head.
    pub head: u64,
    /// The records after the cursor, in log order.
    pub raws: RawBatch,
    /// The read stopped early at twice the byte budget.
    pub truncated: bool,
    /// Whether the audit log is on (then `sent` events are written).
    pub audit: bool,
}

/// A negentropy step that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepFailure {
    /// The peer's message is invalid.
    BadRequest(String),
    /// Our side failed (a task died).
    Unavailable(String),
}

/// What the caller should do next.
#[derive(Debug)]
pub enum ServeAction<P, R> {
    /// Read our log head, then [`Responder::on_head`].
    ReadHead {
        /// The job.
        job: JobId,
    },
    /// Read the log after `after` (at most `limit` entries; stop once more than
    /// `max_read_bytes` of records were read), then [`Responder::on_log_read`].
    ReadLog {
        /// The job.
        job: JobId,
        /// The peer's cursor.
        after: u64,
        /// Most log entries.
        limit: usize,
        /// Stop reading past this many bytes of records.
        max_read_bytes: usize,
    },
    /// Read these records raw, then [`Responder::on_records_read`].
    ReadRecords {
        /// The job.
        job: JobId,
        /// The records.
        ids: Vec<RecordId>,
    },
    /// Check and store records the peer pushed, then [`Responder::on_ingested`].
    Ingest {
        /// The job.
        job: JobId,
        /// The peer.
        peer: P,
        /// Its agency.
        agency: AgencyCode,
        /// The records.
        transfers: Vec<Received>,
    },
    /// Build the reconciliation set we share with `agency` under `policy`, then
    /// [`Responder::on_set_built`].
    BuildSet {
        /// The job.
        job: JobId,
        /// The peer's agency.
        agency: AgencyCode,
        /// The policy that says which records the set holds.
        policy: Arc<Policy>,
    },
    /// Answer a negentropy message over `storage` (CPU work), then
    /// [`Responder::on_negentropy`].
    Negentropy {
        /// The job.
        job: JobId,
        /// The set.
        storage: Arc<NegentropyStorageVector>,
        /// The peer's message.
        message: Bytes,
    },
    /// Run this on a blocking thread, then [`Responder::on_prepared`].
    Prepare(PrepareJob),
    /// Append these `sent` events durably, then [`Responder::on_sent_appended`].
    AppendSent {
        /// The job.
        job: JobId,
        /// The events.
        events: Vec<Event>,
    },
    /// Count what went out (and, for a Pull, tell the peer's state machine).
    Served(Served),
    /// The peer did something hostile: count a strike against it.
    Strike {
        /// The peer.
        peer: P,
        /// Reason code, for metrics.
        reason: &'static str,
    },
    /// Send this response on `reply`.
    Respond {
        /// Where the request came from.
        reply: R,
        /// The answer.
        response: Response,
    },
    /// Our session's next request may go out with these prepared records (`leftover`:
    /// ids that did not fit, for a later request).
    PushReady {
        /// The peer.
        peer: P,
        /// The step the records belong to.
        step: Step,
        /// The prepared records.
        transfers: Vec<Transfer>,
        /// Ids that did not fit.
        leftover: Vec<RecordId>,
    },
}

#[derive(Debug)]
enum Kind<R> {
    /// A Pull whose cursor names another log: answer with our head only.
    PullReset {
        reply: R,
    },
    Pull {
        reply: R,
        after: u64,
        limit: usize,
        budget: usize,
        head: u64,
        read: usize,
        truncated: bool,
    },
    Reconcile {
        reply: R,
        session: [u8; 16],
        message: Bytes,
        need: Vec<RecordId>,
        budget: usize,
        cached: Option<Arc<NegentropyStorageVector>>,
        /// The store generation the set reflects (see [`Responder::on_store_changed`]).
        set_generation: u64,
        reply_message: Bytes,
    },
    Push {
        step: Step,
        budget: usize,
    },
}

#[derive(Debug)]
struct Job<P, R> {
    peer: P,
    agency: AgencyCode,
    policy: Arc<Policy>,
    kind: Kind<R>,
    /// Prepared and waiting for its `sent` events to be appended.
    out: Option<Outbound>,
}

/// A reconciliation set served to a peer.
#[derive(Debug)]
struct CachedSet {
    session: [u8; 16],
    storage: Arc<NegentropyStorageVector>,
    /// The store generation it reflects.
    generation: u64,
    last_used: Instant,
}

/// A token bucket of new sessions.
#[derive(Clone, Copy, Debug)]
struct Allowance {
    tokens: u32,
    at: Instant,
}

impl Allowance {
    fn take(&mut self, now: Instant) -> bool {
        let refill =
            now.saturating_duration_since(self.at).as_millis() / SESSION_REFILL.as_millis().max(1);
        if refill > 0 {
            let add = u32::try_from(refill).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(add).min(SESSION_BURST);
            self.at = now;
        }
        if self.tokens == 0 {
            return false;
        }
        if self.tokens == SESSION_BURST {
            self.at = now;
        }
        self.tokens -= 1;
        true
    }
}

/// Serves one node's peers; see the module documentation.
#[derive(Debug)]
pub struct Responder<P, R> {
    epoch: [u8; 16],
    limits: Limits,
    sent: SentCaches,
    /// The last reconciliation set served to each connected peer, for the next round
    /// of the same session, and for its next session while the store is unchanged.
    sessions: HashMap<P, CachedSet>,
    /// Bumped whenever what reconciliation sets hold may have changed.
    generation: u64,
    /// The generation at the last policy change: a set from before it is not cached.
    policy_floor: u64,
    /// Each agency's allowance of new sessions. Kept across connections (a peer
    /// that reconnects gets no fresh allowance); bounded by the roster.
    allowance: HashMap<AgencyCode, Allowance>,
    connected: HashSet<P>,
    jobs: HashMap<JobId, Job<P, R>>,
    next_job: u64,
}

impl<P: Clone + Eq + Hash, R> Responder<P, R> {
    /// A responder for the log `epoch`.
    pub fn new(epoch: [u8; 16], limits: Limits) -> Self {
        Self {
            epoch,
            limits,
            sent: SentCaches::default(),
            sessions: HashMap::new(),
            generation: 0,
            policy_floor: 0,
            allowance: HashMap::new(),
            connected: HashSet::new(),
            jobs: HashMap::new(),
            next_job: 0,
        }
    }

    /// Requests being served.
    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// A peer connected: what we sent its agency before counts for nothing now (it may
    /// have restarted or lost data).
    pub fn on_connected(&mut self, peer: P, agency: &AgencyCode) {
        self.connected.insert(peer);
        self.sent.forget_peer(agency);
    }

    /// A peer's last connection closed: its cached session goes.
    pub fn on_disconnected(&mut self, peer: &P) {
        self.connected.remove(peer);
        self.sessions.remove(peer);
    }

    /// What the store holds for reconciliation may have changed (records stored or
    /// declined): cached sets no longer serve new sessions, only their own.
    pub fn on_store_changed(&mut self) {
        self.generation += 1;
    }

    /// We reset our cursor into `agency`'s log: it may have lost what we sent.
    pub fn forget_sent(&self, agency: &AgencyCode) {
        self.sent.forget_peer(agency);
    }

    /// The policy or the roster changed: a cached set was built under the old rules
    /// and may hold records the peer may no longer learn of, so the next round of every
    /// session builds its set again.
    pub fn on_policy_changed(&mut self) {
        self.sessions.clear();
        // A set being built now was read under the old rules: never cached.
        self.generation += 1;
        self.policy_floor = self.generation;
    }

    /// Expires cached sessions.
    pub fn on_tick(&mut self, now: Instant) {
        self.sessions
            .retain(|_, c| now.duration_since(c.last_used) < SESSION_TTL);
    }

    fn add(&mut self, job: Job<P, R>) -> JobId {
        self.next_job += 1;
        let id = JobId(self.next_job);
        self.jobs.insert(id, job);
        id
    }

    /// The prepare step of `job`, under `policy`.
    fn prepare(
        &self,
        job: JobId,
        policy: Arc<Policy>,
        outgoing: Outgoing,
        raws: RawBatch,
    ) -> ServeAction<P, R> {
        ServeAction::Prepare(PrepareJob {
            job,
            outgoing,
            policy,
            sent: self.sent.clone(),
            raws,
        })
    }

    // ------------------------------------------------------------------ requests

    /// A Pull from `peer` of `agency`, served under `policy`.
    pub fn on_pull(
        &mut self,
        peer: P,
        agency: AgencyCode,
        reply: R,
        p: Pull,
        policy: Arc<Policy>,
    ) -> Vec<ServeAction<P, R>> {
        if p.log_epoch != self.epoch {
            // Their cursor belongs to a log we no longer have: restart from 0.
            let job = self.add(Job {
                peer,
                agency,
                policy,
                kind: Kind::PullReset { reply },
                out: None,
            });
            return vec![ServeAction::ReadHead { job }];
        }
        let budget = usize::try_from(p.max_bytes)
            .unwrap_or(usize::MAX)
            .min(self.limits.max_batch_bytes)
            .saturating_sub(FRAME_SLACK)
            .max(1024);
        let limit = usize::try_from(p.limit.clamp(1, MAX_PULL_LIMIT)).unwrap_or(1);
        let job = self.add(Job {
            peer,
            agency,
            policy,
            kind: Kind::Pull {
                reply,
                after: p.after_seq,
                limit,
                budget,
                head: 0,
                read: 0,
                truncated: false,
            },
            out: None,
        });
        // Stored copies are at least as large as what is sent, so reading past twice
        // the budget is wasted store time.
        vec![ServeAction::ReadLog {
            job,
            after: p.after_seq,
            limit,
            max_read_bytes: budget.saturating_mul(2),
        }]
    }

    /// A round of `peer`'s reconciliation session, served under `policy`.
    pub fn on_reconcile(
        &mut self,
        peer: P,
        agency: AgencyCode,
        reply: R,
        r: Reconcile<Received>,
        policy: Arc<Policy>,
        now: Instant,
    ) -> Vec<ServeAction<P, R>> {
        let entry = self.sessions.get(&peer);
        let same_session = entry.is_some_and(|c| c.session == r.session);
        // A new session costs a pass over the whole set (and maybe a rebuild): each
        // peer gets a bounded allowance of them, and going past it is a strike.
        if !same_session && !r.message.is_empty() {
            let allowance = self.allowance.entry(agency.clone()).or_insert(Allowance {
                tokens: SESSION_BURST,
                at: now,
            });
            if !allowance.take(now) {
                return vec![
                    ServeAction::Strike {
                        peer,
                        reason: "reconcile_session_flood",
                    },
                    ServeAction::Respond {
                        reply,
                        response: Response::error(
                            "busy",
                            "too many new reconciliation sessions; try again later",
                        ),
                    },
                ];
            }
        }
        // The same session's set, or, while the store is unchanged, the last one.
        let (cached, set_generation) = match entry {
            Some(c) if same_session || c.generation == self.generation => {
                (Some(c.storage.clone()), c.generation)
            }
            _ => (None, self.generation),
        };
        let budget = self
            .limits
            .max_batch_bytes
            .saturating_sub(FRAME_SLACK + NEGENTROPY_SLACK);
        let Reconcile {
            session,
            message,
            have,
            need,
        } = r;
        let job = self.add(Job {
            peer: peer.clone(),
            agency: agency.clone(),
            policy,
            kind: Kind::Reconcile {
                reply,
                session,
                message,
                need: need.into_iter().take(MAX_NEED).collect(),
                budget,
                cached,
                set_generation,
                reply_message: Bytes::new(),
            },
            out: None,
        });
        if have.is_empty() {
            self.reconcile_message(job)
        } else {
            // What the peer pushed is stored before we answer.
            vec![ServeAction::Ingest {
                job,
                peer,
                agency,
                transfers: have,
            }]
        }
    }

    /// Prepares the records our own session's `step` pushes to `peer`, under `policy`.
    pub fn prepare_push(
        &mut self,
        peer: P,
        agency: AgencyCode,
        step: Step,
        policy: Arc<Policy>,
    ) -> Vec<ServeAction<P, R>> {
        if step.have.is_empty() {
            return vec![ServeAction::PushReady {
                peer,
                step,
                transfers: Vec::new(),
                leftover: Vec::new(),
            }];
        }
        let budget = self
            .limits
            .max_request_bytes
            .saturating_sub(FRAME_SLACK + step.need.len() * NEED_ID_BYTES + NEGENTROPY_SLACK);
        let ids = step.have.clone();
        let job = self.add(Job {
            peer,
            agency,
            policy,
            kind: Kind::Push { step, budget },
            out: None,
        });
        vec![ServeAction::ReadRecords { job, ids }]
    }

    // ------------------------------------------------------------------- results

    /// Our log head (for a Pull from another epoch), or the store's error.
    pub fn on_head<E: Display>(
        &mut self,
        job: JobId,
        head: Result<u64, E>,
    ) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.remove(&job) else {
            return Vec::new();
        };
        let Kind::PullReset { reply } = j.kind else {
            return Vec::new();
        };
        match head {
            Ok(head) => vec![
                ServeAction::Served(Served {
                    agency: j.agency,
                    records: 0,
                    withheld_fields: 0,
                    denied: 0,
                    at_head: Some(false),
                }),
                ServeAction::Respond {
                    reply,
                    response: Response::Batch(Batch {
                        log_epoch: self.epoch,
                        records: Vec::new(),
                        next_seq: 0,
                        head_seq: head,
                        complete: false,
                    }),
                },
            ],
            Err(e) => vec![ServeAction::Respond {
                reply,
                response: Response::error("unavailable", e.to_string()),
            }],
        }
    }

    /// The log read of a Pull, or the store's error.
    pub fn on_log_read<E: Display>(
        &mut self,
        job: JobId,
        read: Result<LogRead, E>,
    ) -> Vec<ServeAction<P, R>> {
        let read = match read {
            Ok(r) => r,
            Err(e) => return self.fail(job, e.to_string()),
        };
        let Some(j) = self.jobs.get_mut(&job) else {
            return Vec::new();
        };
        let Kind::Pull {
            head,
            read: n,
            truncated,
            budget,
            ..
        } = &mut j.kind
        else {
            return Vec::new();
        };
        *head = read.head;
        *n = read.raws.len();
        *truncated = read.truncated;
        let outgoing = Outgoing::pull(j.agency.clone(), *budget, read.audit);
        let policy = j.policy.clone();
        vec![self.prepare(job, policy, outgoing, read.raws)]
    }

    /// Records read for a reconcile reply or a push (with whether the audit log is
    /// on), or the store's error.
    pub fn on_records_read<E: Display>(
        &mut self,
        job: JobId,
        read: Result<(RawBatch, bool), E>,
    ) -> Vec<ServeAction<P, R>> {
        let (raws, audit) = match read {
            Ok(r) => r,
            Err(e) => return self.fail(job, e.to_string()),
        };
        let Some(j) = self.jobs.get(&job) else {
            return Vec::new();
        };
        let outgoing = match &j.kind {
            Kind::Reconcile { budget, .. } => Outgoing::reconcile(j.agency.clone(), *budget, audit),
            Kind::Push { budget, .. } => Outgoing::push(j.agency.clone(), *budget, audit),
            _ => return Vec::new(),
        };
        let policy = j.policy.clone();
        vec![self.prepare(job, policy, outgoing, raws)]
    }

    /// Records the peer pushed in its round were checked and stored (whatever the
    /// outcome: rejections are the caller's to count).
    pub fn on_ingested(&mut self, job: JobId) -> Vec<ServeAction<P, R>> {
        if self.jobs.contains_key(&job) {
            self.reconcile_message(job)
        } else {
            Vec::new()
        }
    }

    /// The reconciliation set for a reconcile round, or why it could not be built.
    pub fn on_set_built<E: Display>(
        &mut self,
        job: JobId,
        set: Result<Arc<NegentropyStorageVector>, E>,
    ) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.get(&job) else {
            return Vec::new();
        };
        let Kind::Reconcile { message, .. } = &j.kind else {
            return Vec::new();
        };
        match set {
            Ok(storage) => vec![ServeAction::Negentropy {
                job,
                storage,
                message: message.clone(),
            }],
            Err(e) => self.refuse(job, "unavailable", e.to_string()),
        }
    }

    /// Our negentropy answer over `storage`, computed at `now`.
    pub fn on_negentropy(
        &mut self,
        job: JobId,
        storage: Arc<NegentropyStorageVector>,
        answer: Result<Vec<u8>, StepFailure>,
        now: Instant,
    ) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.get_mut(&job) else {
            return Vec::new();
        };
        let Kind::Reconcile {
            reply_message,
            session,
            set_generation,
            ..
        } = &mut j.kind
        else {
            return Vec::new();
        };
        match answer {
            Ok(m) => {
                *reply_message = Bytes::from(m);
                let cached = CachedSet {
                    session: *session,
                    storage,
                    generation: *set_generation,
                    last_used: now,
                };
                // Not a set from before a policy change: it may name records the
                // new rules keep from the peer.
                if self.connected.contains(&j.peer) && cached.generation >= self.policy_floor {
                    self.sessions.insert(j.peer.clone(), cached);
                }
                self.reconcile_records(job)
            }
            Err(StepFailure::BadRequest(e)) => self.refuse(job, "bad_request", e),
            Err(StepFailure::Unavailable(e)) => self.refuse(job, "unavailable", e),
        }
    }

    /// A prepared batch (from [`PrepareJob::run`]).
    pub fn on_prepared(&mut self, done: PrepareDone) -> Vec<ServeAction<P, R>> {
        let job = done.job;
        let Some(j) = self.jobs.get_mut(&job) else {
            return Vec::new();
        };
        match done.result {
            Ok(mut out) => {
                let events = std::mem::take(&mut out.events);
                j.out = Some(out);
                if events.is_empty() {
                    self.finish(job)
                } else {
                    vec![ServeAction::AppendSent { job, events }]
                }
            }
            Err(e @ (PrepareError::Corrupt { .. } | PrepareError::Failed(_))) => {
                self.fail(job, e.to_string())
            }
        }
    }

    /// The `sent` events were appended (or the append failed: then the copies are not
    /// sent, and leave the sent-cache so that a later message sends them).
    pub fn on_sent_appended<E: Display>(
        &mut self,
        job: JobId,
        result: Result<(), E>,
    ) -> Vec<ServeAction<P, R>> {
        match result {
            Ok(()) => self.finish(job),
            Err(e) => {
                if let Some(out) = self.jobs.get_mut(&job).and_then(|j| j.out.take())
                    && let Some(to) = &out.to
                {
                    self.sent.forget(to, &out.cached);
                }
                self.fail(job, e.to_string())
            }
        }
    }

    // ------------------------------------------------------------------ internals

    /// The negentropy part of a reconcile round, once pushed records are stored.
    fn reconcile_message(&mut self, job: JobId) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.get(&job) else {
            return Vec::new();
        };
        let Kind::Reconcile {
            message, cached, ..
        } = &j.kind
        else {
            return Vec::new();
        };
        if message.is_empty() {
            return self.reconcile_records(job);
        }
        match cached {
            Some(storage) => vec![ServeAction::Negentropy {
                job,
                storage: storage.clone(),
                message: message.clone(),
            }],
            None => vec![ServeAction::BuildSet {
                job,
                agency: j.agency.clone(),
                policy: j.policy.clone(),
            }],
        }
    }

    /// The records a reconcile round asked for.
    fn reconcile_records(&mut self, job: JobId) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.get_mut(&job) else {
            return Vec::new();
        };
        let Kind::Reconcile { need, .. } = &mut j.kind else {
            return Vec::new();
        };
        if need.is_empty() {
            j.out = Some(Outbound::default());
            return self.finish(job);
        }
        let ids = std::mem::take(need);
        vec![ServeAction::ReadRecords { job, ids }]
    }

    /// Answers with an error and no records.
    fn refuse(&mut self, job: JobId, code: &str, message: String) -> Vec<ServeAction<P, R>> {
        match self.jobs.remove(&job).map(|j| j.kind) {
            Some(
                Kind::Reconcile { reply, .. }
                | Kind::Pull { reply, .. }
                | Kind::PullReset { reply },
            ) => {
                vec![ServeAction::Respond {
                    reply,
                    response: Response::error(code, message),
                }]
            }
            _ => Vec::new(),
        }
    }

    /// The store or a prepare step failed: a Pull is answered `unavailable`; a
    /// reconcile round and a push go on without records.
    fn fail(&mut self, job: JobId, error: String) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.get_mut(&job) else {
            return Vec::new();
        };
        match &j.kind {
            Kind::Pull { .. } | Kind::PullReset { .. } => self.refuse(job, "unavailable", error),
            Kind::Reconcile { .. } | Kind::Push { .. } => {
                j.out = Some(Outbound::default());
                self.finish(job)
            }
        }
    }

    /// The message is ready: count it and send it.
    fn finish(&mut self, job: JobId) -> Vec<ServeAction<P, R>> {
        let Some(j) = self.jobs.remove(&job) else {
            return Vec::new();
        };
        let out = j.out.unwrap_or_default();
        let mut served = Served {
            agency: j.agency,
            records: out.transfers.len() as u64,
            withheld_fields: out.withheld,
            denied: out.denied,
            at_head: None,
        };
        let next = match j.kind {
            Kind::PullReset { .. } => return Vec::new(),
            Kind::Pull {
                reply,
                after,
                limit,
                head,
                read,
                truncated,
                ..
            } => {
                let complete = !out.cut && !truncated && read < limit;
                let next_seq = out.last_seq.unwrap_or(after).max(after.min(head));
                served.at_head = Some(complete && next_seq >= head);
                ServeAction::Respond {
                    reply,
                    response: Response::Batch(Batch {
                        log_epoch: self.epoch,
                        records: out.transfers,
                        next_seq,
                        head_seq: head,
                        complete,
                    }),
                }
            }
            Kind::Reconcile {
                reply,
                session,
                reply_message,
                ..
            } => ServeAction::Respond {
                reply,
                response: Response::Reconcile(ReconcileReply {
                    session,
                    message: reply_message,
                    records: out.transfers,
                }),
            },
            Kind::Push { step, .. } => ServeAction::PushReady {
                peer: j.peer,
                step,
                transfers: out.transfers,
                leftover: out.leftover,
            },
        };
        vec![ServeAction::Served(served), next]
    }
}

#[cfg(test)]
mod tests;
