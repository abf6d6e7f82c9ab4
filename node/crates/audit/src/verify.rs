//! What an auditor checks over the exported audit logs of a federation's nodes: pure
//! (no IO, no clock), so every check is testable from in-memory logs.
//!
//! Per log: each event decodes canonically; the tree recomputed from the events matches
//! every signed checkpoint (an edited event breaks this); the log is not shorter than
//! its checkpoints; two checkpoints of one size agree (else: split view); and the log
//! only grew since the auditor's last verified tree head (a consistency proof).
//!
//! Across logs: every "sent R to B" in A's log has B's "accepted/rejected R from A"
//! and vice versa (outside a tolerance window for in-flight records and for logs
//! exported at different times); every sent header's signed distribution admits the
//! receiver; equivocations are listed; and replication lag per pair is measured from
//! the sender's own accept (or creation) of a record to the receiver's accept.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use wlnode_crypto::keys::{Signature, context};
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::record::RecordHeader;
use wlnode_crypto::roster::Roster;

use super::event::{Event, EventKind, ExportedLog, SentHeader};
use super::merkle::{self, Hash, MemStore};

/// A tree head the auditor verified before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedHead {
    /// Tree size.
    pub size: u64,
    /// Root (hex).
    pub root: String,
    /// Checkpoint timestamp (Unix ms).
    pub timestamp: u64,
    /// When this auditor first verified a head of this size (Unix ms, the auditor's
    /// own clock, `Options::now_ms`): a date the log's node does not control, so
    /// an event under this head existed then (review s32-mail H3). `None` in
    /// state written before it was kept, or when the run had no clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<u64>,
}

/// What the auditor remembers between runs: the last verified head of each node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditorState {
    /// By agency.
    pub heads: BTreeMap<AgencyCode, VerifiedHead>,
    /// By agency: heads adopted before the latest, with when this auditor first
    /// verified each, oldest first, at most [`MAX_EARLIER_HEADS`] (review s32-mail
    /// H3: with the latest head alone, the dating of earlier events was lost at the
    /// next adoption). Each was a prefix of the next, checked when it was adopted.
    /// Empty in state written before it was kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub earlier: BTreeMap<AgencyCode, Vec<DatedHead>>,
}

/// A head this auditor adopted before a node's latest: its size and when this auditor
/// first verified it (Unix ms, its own clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedHead {
    /// Tree size.
    pub size: u64,
    /// When this auditor first verified a head of this size.
    pub verified_at: u64,
}

/// The most earlier heads kept per node ([`AuditorState::earlier`]): past it, the
/// heads that date evidence stay (see [`remember_head`]), and of the others the one
/// verified closest in time to the one before it, relative to its age, goes (the
/// oldest and the newest stay), so the history thins out geometrically with age:
/// dense over the last hours, where a revocation learnt late still finds the head
/// verified just before it (review s34-mail L1: thinning evenly in time dropped
/// that head within two runs, and 5-13 h of evidence lost their dating when the
/// auditor learnt of the revocation 20 min or more after it), and the state stays
/// small (about 16 bytes a head).
pub const MAX_EARLIER_HEADS: usize = 160;

/// Adds `head` to `list` (sizes ascending) and thins it to [`MAX_EARLIER_HEADS`].
/// A head is the evidence that the events below its size existed when this auditor
/// verified it; what counts for a key revoked at `T` is only whether some head
/// holding the event was verified before `T`, so for each of `revoked_at` (Unix ms,
/// the revocations of the roster in force) the largest head verified before it is
/// never thinned out: the outcome of dating against a known revocation never
/// changes (review s33-mail L4: thinning by size gap dropped that head, and an
/// honest relay's evidence by a revoked key stopped counting). Only if every inner
/// head is such a head (more revocations than the bound) does one of them go.
fn remember_head(list: &mut Vec<DatedHead>, head: DatedHead, revoked_at: &[u64]) {
    if list.last().is_some_and(|l| l.size >= head.size) {
        return;
    }
    list.push(head);
    while list.len() > MAX_EARLIER_HEADS {
        let dates = |i: usize| {
            let h = list.get(i);
            revoked_at.iter().any(|t| {
                h.is_some_and(|h| h.verified_at < *t)
                    && !list
                        .iter()
                        .any(|o| o.verified_at < *t && o.size > h.map_or(0, |h| h.size))
            })
        };
        // The gap to the head before, relative to the age (by the newest head).
        let newest = list.last().map_or(0, |h| h.verified_at);
        let gap = |i: usize| {
            let at = list.get(i).map_or(0, |h| h.verified_at);
            let before = list.get(i.wrapping_sub(1)).map_or(0, |h| h.verified_at);
            let age = newest.saturating_sub(at).max(1);
            (u128::from(at.saturating_sub(before)) << 32) / u128::from(age)
        };
        let inner = 1..list.len().saturating_sub(1);
        let drop = inner
            .clone()
            .filter(|&i| !dates(i))
            .min_by_key(|&i| gap(i))
            .or_else(|| inner.min_by_key(|&i| gap(i)))
            .unwrap_or(1);
        list.remove(drop);
    }
}

/// Verification settings.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How long a send may stay unmatched (in flight) before it is a violation (ms).
    pub tolerance_ms: u64,
    /// The auditor's clock (Unix ms), for checkpoint freshness; `None` skips that
    /// check (tests of old logs).
    pub now_ms: Option<u64>,
    /// A node's latest signed checkpoint older than this (by the auditor's clock) is a
    /// `stale_checkpoint`.
    pub max_checkpoint_age_ms: u64,
}

/// Default [`Options::max_checkpoint_age_ms`]: a day.
pub const MAX_CHECKPOINT_AGE_MS: u64 = 24 * 3_600_000;

impl Default for Options {
    fn default() -> Self {
        Self {
            tolerance_ms: 120_000,
            now_ms: None,
            max_checkpoint_age_ms: MAX_CHECKPOINT_AGE_MS,
        }
    }
}

/// One finding that makes the audit fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// `bad_event`, `checkpoint_mismatch`, `truncated`, `not_append_only`,
    /// `split_view`, `bad_checkpoint`, `unknown_node`, `no_checkpoint`,
    /// `stale_checkpoint`, `missing_receipt`, `receipt_without_send`, `distribution`,
    /// `field_scope`, `bad_header`, `equivocation`, `checkpoint_in_future`,
    /// `checkpoint_time_reversed`, `consultation_*` (see `verify/consult.rs`).
    pub kind: String,
    /// The node it is attributed to; for a send and a receipt that do not match, the
    /// pair `FROM->TO` (the logs cannot tell which side is at fault).
    pub node: String,
    /// What is wrong, in one sentence.
    pub detail: String,
    /// The evidence: event indices, hashes, record ids.
    pub evidence: serde_json::Value,
    /// Whether data the node itself signed proves it at fault (its checkpoints, its
    /// signed headers); false where the logs only disagree.
    #[serde(default)]
    pub proven: bool,
}

/// Per-node summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// Agency.
    pub agency: String,
    /// PeerId.
    pub peer_id: String,
    /// Events in the log.
    pub events: u64,
    /// Checkpoints, and how many verified.
    pub checkpoints: u64,
    /// Checkpoints whose signature and root verified.
    pub checkpoints_verified: u64,
    /// Latest verified checkpoint size.
    pub verified_size: u64,
    /// Counts per event type.
    pub by_type: BTreeMap<String, u64>,
    /// Violations attributed to this node.
    pub violations: u64,
    /// Violations attributed to a pair `A->B` this node is one side of (the logs
    /// cannot tell which side is at fault; review s32-consult L8: counted for both,
    /// apart from [`Self::violations`]).
    #[serde(default)]
    pub pair_violations: u64,
    /// Copies this relay node held for more than an hour before its addressee took
    /// them that `mail_relay_delayed` did not judge because the node ran an older
    /// build then (its `node_started` names no `mail-failures`): informational,
    /// never a finding (review s36-delay M3; absent in reports before s36).
    #[serde(default)]
    pub mail_delay_older_build: u64,
    /// Copies this relay agency took custody of with less than
    /// `MIN_JUDGED_LIFETIME_MS` (30 min) of their signed lifetime left and that
    /// expired with it, no hand-over in its log, which `mail_not_relayed` and
    /// `mail_relay_saturated_neighbour` did not judge: an honest relay may not have
    /// passed a silent addressee in that time (s37). Informational, never a finding;
    /// counted on the agency's first node (absent in reports before s37).
    #[serde(default)]
    pub mail_short_lived_not_judged: u64,
}

/// Sent/received counts of one ordered pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// "sent" events at the sender.
    pub sent: u64,
    /// "accepted" events at the receiver.
    pub accepted: u64,
    /// "rejected" events at the receiver.
    pub rejected: u64,
    /// Sends with no receipt beyond the tolerance.
    pub missing: u64,
    /// Sends with no receipt yet, within the tolerance.
    pub in_flight: u64,
    /// Receipts with no send in the sender's log.
    pub unexplained: u64,
    /// Mean lag from the sender's accept to the receiver's accept (ms).
    pub lag_mean_ms: Option<f64>,
    /// Largest lag (ms).
    pub lag_max_ms: Option<u64>,
}

/// One lag measurement (for the chart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LagPoint {
    /// Receiver's accept time (Unix ms).
    pub at: u64,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Lag (ms).
    pub lag_ms: u64,
}

/// The audit report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Whether every check held.
    pub ok: bool,
    /// Per node.
    pub nodes: Vec<NodeSummary>,
    /// Per ordered pair with traffic.
    pub pairs: Vec<PairStats>,
    /// Lag samples (at most [`MAX_LAG_POINTS`], evenly thinned).
    pub lag: Vec<LagPoint>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// The auditor state to keep for the next run.
    pub state: AuditorState,
    /// Consultations per node: counts and timings from its trail, never content
    /// (absent in reports written before issue 21).
    #[serde(default)]
    pub consultations: Vec<ConsultationsSummary>,
}

/// One node's consultations, from its `consultation` steps: counts and timings only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsultationsSummary {
    /// The node's agency.
    pub agency: String,
    /// Consultations in its trail.
    pub consultations: usize,
    /// Still open.
    pub open: usize,
    /// Answered, not decided.
    pub answered: usize,
    /// Expired, not decided.
    pub expired: usize,
    /// Decided.
    pub decided: usize,
    /// Ended by the origin's signed refusal (absent in reports written before it).
    #[serde(default)]
    pub refused_by_origin: usize,
    /// Granted despite an objection or an expired denial.
    pub granted_despite: usize,
    /// Median request-to-answer time (ms).
    pub median_time_to_answer_ms: Option<u64>,
    /// Median request-to-decision time (ms).
    pub median_time_to_decision_ms: Option<u64>,
    /// Trail violations.
    pub violations: usize,
}

/// Most lag samples kept in a report.
pub const MAX_LAG_POINTS: usize = 2000;

/// A decoded log: its events with their indices, and how far its signed checkpoints
/// vouch for them.
struct Log<'a> {
    export: &'a ExportedLog,
    events: Vec<(u64, Event)>,
    /// Events `[0, covered)` are under a verified checkpoint: only those are evidence.
    covered: u64,
    /// When the node signed its latest verified checkpoint (Unix ms, its clock).
    checkpoint_at: Option<u64>,
    /// Every verified checkpoint: (size, signed time), in the export's order.
    checkpoints: Vec<(u64, u64)>,
    /// The log may be evidence at all (a roster node, with a verified checkpoint).
    usable: bool,
    /// The heads this auditor verified in earlier runs, when this log extends them:
    /// (size, the auditor's time of that verification). Their events `[0, size)`
    /// existed by then, whatever times the node wrote (review s32-mail H3).
    vouched_before: Vec<(u64, u64)>,
    /// Per (event index, signer): the outcome of the roster check of the signature
    /// on that event's ack or offer (see [`Log::signature`]).
    /// Per event index, since an event carries one ack or offer (a lookup clones
    /// nothing).
    signatures: std::cell::RefCell<HashMap<u64, Vec<(AgencyCode, SignatureCheck)>>>,
}

/// The outcome of a roster check of a signature: `None` when it fails, else the
/// revocation time of the signing key, if it was revoked since.
type SignatureCheck = Option<Option<u64>>;

impl Log<'_> {
    /// The roster check of the signature on event `index`'s ack or offer as
    /// `signer`'s (`verify_as_evidence`: `None` when it fails, else the revocation
    /// time of the key, if any), made by `check` once per log, event and signer: the
    /// mail rules (`check_mail`, `check_mail_delay`) read the same events, and
    /// verified each signature twice (s37-relay). The answer depends on nothing but
    /// the event, the signer and the roster of this run.
    fn signature(
        &self,
        index: u64,
        signer: &AgencyCode,
        check: impl FnOnce() -> SignatureCheck,
    ) -> SignatureCheck {
        let known = self.signatures.borrow().get(&index).and_then(|v| {
            v.iter()
                .find(|(who, _)| who == signer)
                .map(|(_, outcome)| *outcome)
        });
        if let Some(known) = known {
            return known;
        }
        let outcome = check();
        self.signatures
            .borrow_mut()
            .entry(index)
            .or_default()
            .push((signer.clone(), outcome));
        outcome
    }

    /// The earliest time this auditor verified a head holding event `index`.
    fn vouched_at(&self, index: u64) -> Option<u64> {
        self.vouched_before
            .iter()
            .filter(|(size, _)| *size > index)
            .map(|(_, at)| *at)
            .min()
    }
}

fn violation(kind: &str, node: &str, detail: String, evidence: serde_json::Value) -> Violation {
    Violation {
        kind: kind.into(),
        node: node.into(),
        detail,
        evidence,
        proven: false,
    }
}

/// A violation that the node's own signed data proves.
fn proven(kind: &str, node: &str, detail: String, evidence: serde_json::Value) -> Violation {
    Violation {
        proven: true,
        ..violation(kind, node, detail, evidence)
    }
}

/// Review s35-roster M1: the auditor refuses a roster carrying federation settings
/// its build does not understand. A node keeps and ignores such a setting, so it
/// still learns the roster's revocations; an auditor that ignored it would skip the
/// checks the setting turns on (a later build's cut-over) and could report a clean
/// log the setting makes a breach. Auditors upgrade before nodes (README, upgrade
/// order: the authority's tools, the auditors, then the nodes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditorRosterError {
    /// The roster carries settings this auditor does not understand.
    #[error(
        "roster version {version} carries federation settings this auditor does not understand: \
         {names}{more}; upgrade the auditor first (auditors upgrade before nodes), then verify again",
        names = .names.join(", "),
        more = if *.more > 0 { format!(" and {} more", .more) } else { String::new() }
    )]
    SettingsNotUnderstood {
        /// The roster's version.
        version: u64,
        /// The settings (at most [`wlnode_crypto::roster::MAX_SETTINGS_SHOWN`], the
        /// cut-overs first; every one `[a-z0-9_]+`).
        names: Vec<String>,
        /// How many more were left out.
        more: u64,
    },
}

/// Review s35-roster M1: whether this auditor may verify against `roster` (it
/// understands every federation setting the roster carries).
pub fn auditor_may_use(roster: &Roster) -> Result<(), AuditorRosterError> {
    let (names, more) = roster.settings_not_understood_shown();
    if names.is_empty() && more == 0 {
        return Ok(());
    }
    Err(AuditorRosterError::SettingsNotUnderstood {
        version: roster.version(),
        names,
        more,
    })
}

/// Verifies `logs` under `roster`, against the auditor's previous `state`.
pub fn verify(
    roster: &Roster,
    logs: &[ExportedLog],
    state: &AuditorState,
    opts: Options,
) -> Report {
    let mut report = Report {
        state: state.clone(),
        ..Default::default()
    };
    let mut decoded: Vec<Log<'_>> = Vec::new();
    for export in logs {
        let (log, summary) = verify_log(roster, export, state, opts, &mut report);
        report.nodes.push(summary);
        decoded.push(log);
    }
    cross_check(roster, &decoded, opts, &mut report);
    check_mail(roster, &decoded, &mut report);
    mail_delay::check_mail_delay(roster, &decoded, &mut report);
    check_consultations(roster, &decoded, opts, &mut report);
    report.extend_violations([]);
    report
}

impl Report {
    /// Adds violations found outside the verifier (a live audit's collection
    /// failures) and recounts each node's violations and the verdict.
    pub fn extend_violations(&mut self, extra: impl IntoIterator<Item = Violation>) {
        self.violations.extend(extra);
        for n in &mut self.nodes {
            n.violations = self
                .violations
                .iter()
                .filter(|v| v.node == n.agency)
                .count() as u64;
            n.pair_violations = self
                .violations
                .iter()
                .filter(|v| {
                    v.node
                        .split_once("->")
                        .is_some_and(|(a, b)| a == n.agency || b == n.agency)
                })
                .count() as u64;
        }
        self.ok = self.violations.is_empty();
    }
}

fn verify_log<'a>(
    roster: &Roster,
    export: &'a ExportedLog,
    state: &AuditorState,
    opts: Options,
    report: &mut Report,
) -> (Log<'a>, NodeSummary) {
    let before = report.violations.len();
    let node = export.agency.as_str();
    let mut summary = NodeSummary {
        agency: node.into(),
        peer_id: export.peer_id.clone(),
        events: export.events.len() as u64,
        checkpoints: export.checkpoints.len() as u64,
        ..Default::default()
    };
    let listed = roster
        .member(&export.agency)
        .is_some_and(|m| m.node_ids.contains(&export.peer_id));
    if !listed {
        report.violations.push(violation(
            "unknown_node",
            node,
            format!("PeerId {} is not a roster node of {node}", export.peer_id),
            serde_json::json!({"peer_id": export.peer_id}),
        ));
    }
    let mut tree = MemStore::new();
    let mut size = 0u64;
    let mut events = Vec::with_capacity(export.events.len());
    for (i, text) in export.events.iter().enumerate() {
        let index = i as u64;
        let leaf = merkle::leaf_hash(text.as_bytes());
        size = merkle::append(&mut tree, size, leaf).unwrap_or(size + 1);
        match Event::decode(text.as_bytes()) {
            Ok(e) => {
                *summary.by_type.entry(e.type_name().into()).or_default() += 1;
                events.push((index, e));
            }
            Err(e) => report.violations.push(violation(
                "bad_event",
                node,
                format!("event {index} does not decode: {e}"),
                serde_json::json!({"index": index, "bytes": text}),
            )),
        }
    }
    let root_at = |s: u64| -> Option<Hash> { merkle::root(&tree, s).ok() };

    // Checkpoints: signature, roster, root.
    let mut by_size: BTreeMap<u64, String> = BTreeMap::new();
    let mut latest: Option<VerifiedHead> = None;
    let mut verified: Vec<(u64, u64)> = Vec::new();
    let mut any_signed = false;
    for cp in &export.checkpoints {
        let c = &cp.checkpoint;
        let ev =
            serde_json::json!({"size": c.size, "signed_root": c.root, "timestamp": c.timestamp});
        let signed =
            c.agency == export.agency && c.peer_id == export.peer_id && cp.verify().is_ok();
        any_signed |= signed;
        if !signed {
            report.violations.push(violation(
                "bad_checkpoint",
                node,
                format!(
                    "checkpoint of size {} is not validly signed by this node",
                    c.size
                ),
                ev,
            ));
            continue;
        }
        if let Some(other) = by_size.get(&c.size)
            && *other != c.root
        {
            report.violations.push(proven(
                "split_view",
                node,
                format!(
                    "two signed checkpoints of size {} with different roots",
                    c.size
                ),
                serde_json::json!({"size": c.size, "roots": [other, c.root]}),
            ));
        }
        by_size.insert(c.size, c.root.clone());
        if c.size > size {
            report.violations.push(proven(
                "truncated",
                node,
                format!(
                    "the log holds {size} events but the node signed a checkpoint of size {}",
                    c.size
                ),
                ev,
            ));
            continue;
        }
        let recomputed = root_at(c.size).map(hex::encode).unwrap_or_default();
        if recomputed != c.root {
            report.violations.push(proven(
                "checkpoint_mismatch",
                node,
                format!(
                    "the events do not reproduce the signed root of size {}: an event was changed",
                    c.size
                ),
                serde_json::json!({"size": c.size, "signed_root": c.root, "recomputed_root": recomputed}),
            ));
            continue;
        }
        summary.checkpoints_verified += 1;
        verified.push((c.size, c.timestamp));
        if latest.as_ref().is_none_or(|l| c.size >= l.size) {
            latest = Some(VerifiedHead {
                size: c.size,
                root: c.root.clone(),
                timestamp: c.timestamp,
                verified_at: opts.now_ms,
            });
        }
    }

    // Append-only since the auditor's last verified head.
    let mut vouched_before = Vec::new();
    if let Some(prev) = state.heads.get(&export.agency) {
        let mut prev_ok = true;
        if let Some(r) = by_size.get(&prev.size)
            && *r != prev.root
        {
            prev_ok = false;
            report.violations.push(proven(
                "split_view",
                node,
                format!(
                    "the node signed a root for size {} that differs from the one verified before",
                    prev.size
                ),
                serde_json::json!({"size": prev.size, "verified_root": prev.root, "signed_root": r}),
            ));
        }
        if prev.size > size {
            report.violations.push(proven(
                "truncated",
                node,
                format!(
                    "the log shrank: {size} events now, {} verified before",
                    prev.size
                ),
                serde_json::json!({"verified_size": prev.size, "size": size}),
            ));
        } else if prev_ok {
            let proof = merkle::consistency_proof(&tree, prev.size, size).unwrap_or_default();
            let old_root = hex_hash(&prev.root);
            let new_root = root_at(size);
            let consistent = match (old_root, new_root) {
                (Some(o), Some(n)) => {
                    merkle::verify_consistency(prev.size, size, &o, &n, &proof).is_ok()
                }
                _ => false,
            };
            if consistent {
                // The earlier heads were prefixes of this one when it was adopted.
                vouched_before = state
                    .earlier
                    .get(&export.agency)
                    .into_iter()
                    .flatten()
                    .filter(|h| h.size <= prev.size)
                    .map(|h| (h.size, h.verified_at))
                    .chain(prev.verified_at.map(|at| (prev.size, at)))
                    .collect();
            } else {
                report.violations.push(proven(
                    "not_append_only",
                    node,
                    format!(
                        "the consistency proof from the verified size {} to {size} fails: history was rewritten",
                        prev.size
                    ),
                    serde_json::json!({"verified_size": prev.size, "verified_root": prev.root, "size": size, "proof": proof.iter().map(hex::encode).collect::<Vec<_>>()}),
                ));
            }
        }
    }
    // Only integrity findings (above) keep a log from being adopted; a stale
    // checkpoint is still the node's genuine history.
    let clean = report.violations.len() == before;
    let (covered, checkpoint_at) = match &latest {
        Some(l) => (l.size, Some(l.timestamp)),
        // Signed checkpoints that do not match are reported above.
        None if any_signed => (0, None),
        None => {
            report.violations.push(violation(
                "no_checkpoint",
                node,
                format!(
                    "no checkpoint of this log is validly signed by {node}: its {} events vouch for nothing",
                    export.events.len()
                ),
                serde_json::json!({"events": export.events.len()}),
            ));
            (0, None)
        }
    };
    if let (Some(at), Some(now)) = (checkpoint_at, opts.now_ms)
        && at.saturating_add(opts.max_checkpoint_age_ms) < now
    {
        report.violations.push(violation(
            "stale_checkpoint",
            node,
            format!(
                "the latest checkpoint {node} signed is {} s old (at most {} s allowed): events since are not vouched for",
                now.saturating_sub(at) / 1000,
                opts.max_checkpoint_age_ms / 1000
            ),
            serde_json::json!({"checkpoint_at": at, "now": now, "size": covered}),
        ));
    }
    // A log that broke an integrity rule is never adopted as the node's verified head:
    // the next run still checks against the history verified before (and so still
    // reports a rewrite, instead of accepting it the second time). Nor is the log of a
    // PeerId the roster does not give the agency.
    if let Some(mut l) = latest {
        summary.verified_size = l.size;
        // The same head verified before keeps the time it was first verified.
        if let Some(prev) = state.heads.get(&export.agency)
            && prev.size == l.size
            && prev.root == l.root
        {
            l.verified_at = prev.verified_at.or(l.verified_at);
        }
        let grows = state
            .heads
            .get(&export.agency)
            .is_none_or(|p| l.size >= p.size);
        if grows && clean && listed {
            if let Some(prev) = state.heads.get(&export.agency)
                && prev.size < l.size
                && let Some(at) = prev.verified_at
            {
                let revoked_at: Vec<u64> = roster
                    .revocations()
                    .map(|(_, r)| r.revoked_at.as_millis())
                    .collect();
                remember_head(
                    report
                        .state
                        .earlier
                        .entry(export.agency.clone())
                        .or_default(),
                    DatedHead {
                        size: prev.size,
                        verified_at: at,
                    },
                    &revoked_at,
                );
            }
            report.state.heads.insert(export.agency.clone(), l);
        }
    }
    (
        Log {
            export,
            events,
            covered,
            checkpoint_at,
            checkpoints: verified,
            usable: listed && checkpoint_at.is_some(),
            vouched_before,
            signatures: Default::default(),
        },
        summary,
    )
}

fn hex_hash(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok()?;
    Some(h)
}

type PairKey = (AgencyCode, AgencyCode);

fn cross_check(roster: &Roster, logs: &[Log<'_>], opts: Options, report: &mut Report) {
    // Only logs that can be evidence: a roster node's, with a verified checkpoint; and
    // of those only the events the checkpoint covers.
    let usable: Vec<&Log<'_>> = logs.iter().filter(|l| l.usable).collect();
    let present: HashMap<&AgencyCode, &Log<'_>> =
        usable.iter().map(|l| (&l.export.agency, *l)).collect();
    // (from, to, record) -> (time, index) of the first send / receipt.
    let mut sends: HashMap<(PairKey, RecordId), (u64, u64)> = HashMap::new();
    let mut receipts: HashMap<(PairKey, RecordId), (u64, u64)> = HashMap::new();
    // (node, record) -> when that node first had it (created or accepted as new).
    let mut had: HashMap<(AgencyCode, RecordId), u64> = HashMap::new();
    let mut pairs: BTreeMap<PairKey, PairStats> = BTreeMap::new();
    let mut lags: Vec<LagPoint> = Vec::new();
    let mut equivocations = Equivocations::default();
    let pair = |pairs: &mut BTreeMap<PairKey, PairStats>, a: &AgencyCode, b: &AgencyCode| {
        pairs
            .entry((a.clone(), b.clone()))
            .or_insert_with(|| PairStats {
                from: a.to_string(),
                to: b.to_string(),
                ..Default::default()
            })
            .sent += 0;
    };

    for log in &usable {
        let me = &log.export.agency;
        let node = me.as_str();
        // Headers carried beside the events, by the id they really hash to (a header
        // filed under another record's id is simply not found for that record).
        let beside: HashMap<RecordId, &SentHeader> = log
            .export
            .headers
            .iter()
            .filter_map(|h| {
                let bytes = hex::decode(&h.header).ok()?;
                Some((RecordId(wlnode_crypto::sha256::digest(&bytes)), h))
            })
            .collect();
        for (index, e) in log.events.iter().filter(|(i, _)| *i < log.covered) {
            match &e.kind {
                EventKind::Created { record_id } => {
                    had.entry((me.clone(), *record_id)).or_insert(e.at);
                }
                EventKind::Accepted {
                    record_id,
                    from,
                    outcome,
                    ..
                } => {
                    if outcome != "duplicate" {
                        had.entry((me.clone(), *record_id)).or_insert(e.at);
                    }
                    receipts
                        .entry(((from.clone(), me.clone()), *record_id))
                        .or_insert((e.at, *index));
                    pair(&mut pairs, from, me);
                    if let Some(p) = pairs.get_mut(&(from.clone(), me.clone())) {
                        p.accepted += 1;
                    }
                }
                EventKind::Rejected {
                    record_id: Some(record_id),
                    from,
                    reason,
                } => {
                    // The receiver says the sender's copy carried a field the origin's
                    // scopes keep from it. The sender's log may say it withheld it;
                    // one of the two is wrong, and the logs cannot say which.
                    if reason == "field_out_of_scope" {
                        report.violations.push(violation(
                            "field_scope",
                            &format!("{from}->{me}"),
                            format!(
                                "{me} logged that {from}'s copy of record {record_id} carried a field the origin's signed scopes keep from {me}"
                            ),
                            serde_json::json!({"index": index, "record_id": record_id, "from": from, "to": me, "fault": "undetermined"}),
                        ));
                    }
                    receipts
                        .entry(((from.clone(), me.clone()), *record_id))
                        .or_insert((e.at, *index));
                    pair(&mut pairs, from, me);
                    if let Some(p) = pairs.get_mut(&(from.clone(), me.clone())) {
                        p.rejected += 1;
                    }
                }
                EventKind::Sent {
                    record_id,
                    to,
                    hops,
                    withheld,
                    header,
                    signature,
                } => {
                    sends
                        .entry(((me.clone(), to.clone()), *record_id))
                        .or_insert((e.at, *index));
                    pair(&mut pairs, me, to);
                    if let Some(p) = pairs.get_mut(&(me.clone(), to.clone())) {
                        p.sent += 1;
                    }
                    let signed = header.as_deref().zip(signature.as_deref()).or_else(|| {
                        beside
                            .get(record_id)
                            .map(|h| (h.header.as_str(), h.signature.as_str()))
                    });
                    let v = match signed {
                        Some((header, signature)) => match check_sent(
                            roster, me, to, *hops, record_id, header, signature, *index,
                        ) {
                            Sent::Genuine(h, v) => {
                                equivocations.header(roster, &h, *record_id, me, to);
                                report.violations.extend(check_field_scopes(
                                    roster, me, to, &h, withheld, record_id, *index,
                                ));
                                v
                            }
                            Sent::Bad(v) => Some(v),
                        },
                        None => Some(violation(
                            "bad_header",
                            node,
                            format!(
                                "sent event {index} for record {record_id}: no signed header, neither in the event nor beside it"
                            ),
                            serde_json::json!({"index": index, "record_id": record_id}),
                        )),
                    };
                    report.violations.extend(v);
                }
                EventKind::Equivocation {
                    origin,
                    version,
                    records,
                } => equivocations.reported(origin, *version, records, me),
                _ => {}
            }
        }
    }

    // A send and a receipt that do not match are reported once the other side's signed
    // checkpoint is later than the event plus the tolerance, by the clock of that
    // checkpoint, not by times the accused side wrote into its own events. The two
    // logs cannot say which side is wrong (a node could log a send it never made, or a
    // receipt of a send that never happened, to frame its peer), so the finding goes to
    // the pair and is not `proven`.
    let due = |log: &Log<'_>, at: u64| {
        log.checkpoint_at
            .is_some_and(|c| at.saturating_add(opts.tolerance_ms) <= c)
    };
    for (((from, to), id), (at, index)) in &sends {
        let Some(receiver) = present.get(to) else {
            continue;
        };
        if receipts.contains_key(&((from.clone(), to.clone()), *id)) {
            continue;
        }
        let p = pairs.entry((from.clone(), to.clone())).or_default();
        if due(receiver, *at) {
            p.missing += 1;
            report.violations.push(violation(
                "missing_receipt",
                &format!("{from}->{to}"),
                format!(
                    "{from} logged sending record {id} to {to}, whose signed log has no receipt for it; either {from} did not send it or {to} did not log it"
                ),
                serde_json::json!({"record_id": id, "from": from, "to": to, "sent_at": at, "sender_event": index, "receiver_checkpoint_at": receiver.checkpoint_at, "fault": "undetermined"}),
            ));
        } else {
            p.in_flight += 1;
        }
    }
    for (((from, to), id), (at, index)) in &receipts {
        let Some(sender) = present.get(from) else {
            continue;
        };
        if sends.contains_key(&((from.clone(), to.clone()), *id)) {
            continue;
        }
        if due(sender, *at) {
            if let Some(p) = pairs.get_mut(&(from.clone(), to.clone())) {
                p.unexplained += 1;
            }
            report.violations.push(violation(
                "receipt_without_send",
                &format!("{from}->{to}"),
                format!(
                    "{to} logged receiving record {id} from {from}, whose signed log has no send of it; either {from} did not log it or {to} did not receive it from {from}"
                ),
                serde_json::json!({"record_id": id, "from": from, "to": to, "received_at": at, "receiver_event": index, "sender_checkpoint_at": sender.checkpoint_at, "fault": "undetermined"}),
            ));
        }
    }
    // Lag: sender's own accept (or creation) to the receiver's accept.
    let mut per_pair: BTreeMap<PairKey, Vec<u64>> = BTreeMap::new();
    for (((from, to), id), (at, _)) in &receipts {
        let Some(t0) = had.get(&(from.clone(), *id)) else {
            continue;
        };
        if !had.contains_key(&(to.clone(), *id)) {
            continue;
        }
        let lag = at.saturating_sub(*t0);
        per_pair
            .entry((from.clone(), to.clone()))
            .or_default()
            .push(lag);
        lags.push(LagPoint {
            at: *at,
            from: from.to_string(),
            to: to.to_string(),
            lag_ms: lag,
        });
    }
    for (k, v) in per_pair {
        if let Some(p) = pairs.get_mut(&k)
            && !v.is_empty()
        {
            p.lag_mean_ms = Some(v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64);
            p.lag_max_ms = v.iter().max().copied();
        }
    }
    report.violations.extend(equivocations.into_violations());
    lags.sort_by_key(|l| l.at);
    if lags.len() > MAX_LAG_POINTS {
        let step = lags.len().div_ceil(MAX_LAG_POINTS);
        lags = lags.into_iter().step_by(step).collect();
    }
    report.lag = lags;
    report.pairs = pairs.into_values().collect();
    report
        .violations
        .sort_by(|a, b| (&a.kind, &a.node, &a.detail).cmp(&(&b.kind, &b.node, &b.detail)));
}

/// Equivocations, from the signed headers of `sent` events (the auditor holds every
/// one: two different records an origin signed for one version of one entry prove it)
/// and from the nodes' own `equivocation` events.
#[derive(Default)]
struct Equivocations {
    /// (origin, entry, version) -> record -> who sent it to whom.
    signed:
        BTreeMap<(AgencyCode, wlnode_crypto::model::EntryId, u64), BTreeMap<RecordId, Vec<String>>>,
    /// (origin, version, records) -> the node that reported it.
    reported: BTreeMap<(AgencyCode, u64, Vec<RecordId>), String>,
}

impl Equivocations {
    fn header(
        &mut self,
        roster: &Roster,
        h: &RecordHeader,
        id: RecordId,
        from: &AgencyCode,
        to: &AgencyCode,
    ) {
        // A revoked key's record next to the origin's valid one is the key thief's,
        // not the origin's (the nodes demote it); it proves nothing against the origin.
        if roster.key_standing(&h.origin, &h.signer_key, &id)
            == wlnode_crypto::roster::KeyStanding::Revoked
        {
            return;
        }
        self.signed
            .entry((h.origin.clone(), h.entry_id, h.version))
            .or_default()
            .entry(id)
            .or_default()
            .push(format!("{from}->{to}"));
    }

    fn reported(
        &mut self,
        origin: &AgencyCode,
        version: u64,
        records: &[RecordId],
        by: &AgencyCode,
    ) {
        let mut r = records.to_vec();
        r.sort();
        self.reported
            .entry((origin.clone(), version, r))
            .or_insert_with(|| by.to_string());
    }

    fn into_violations(self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut proved: Vec<(AgencyCode, u64, Vec<RecordId>)> = Vec::new();
        for ((origin, entry, version), records) in self.signed {
            if records.len() < 2 {
                continue;
            }
            let ids: Vec<RecordId> = records.keys().copied().collect();
            proved.push((origin.clone(), version, ids.clone()));
            out.push(proven(
                "equivocation",
                origin.as_str(),
                format!(
                    "{origin} signed {} different records for version {version} of entry {entry}, and they were sent to different neighbours",
                    ids.len()
                ),
                serde_json::json!({"origin": origin, "entry_id": entry, "version": version, "records": ids, "sent": records}),
            ));
        }
        for ((origin, version, records), by) in self.reported {
            if proved.iter().any(|(o, v, r)| {
                *o == origin && *v == version && records.iter().all(|x| r.contains(x))
            }) {
                continue;
            }
            out.push(violation(
                "equivocation",
                origin.as_str(),
                format!("{origin} signed two different records for version {version} of one entry (reported by {by})"),
                serde_json::json!({"origin": origin, "version": version, "records": records, "reported_by": by}),
            ));
        }
        out
    }
}

/// What a `sent` event's header says.
enum Sent {
    /// The origin signed it; the violation, if the send broke its distribution.
    Genuine(Box<RecordHeader>, Option<Violation>),
    /// Not a genuine header.
    Bad(Violation),
}

/// Checks one "sent" event: the header is genuine (id, origin signature) and its signed
/// distribution admits the receiver from this sender at these hops.
#[allow(clippy::too_many_arguments)]
fn check_sent(
    roster: &Roster,
    from: &AgencyCode,
    to: &AgencyCode,
    hops: u32,
    record_id: &RecordId,
    header: &str,
    signature: &str,
    index: u64,
) -> Sent {
    let bad = |why: String| {
        Sent::Bad(violation(
            "bad_header",
            from.as_str(),
            format!("sent event {index} for record {record_id}: {why}"),
            serde_json::json!({"index": index, "record_id": record_id}),
        ))
    };
    let Ok(bytes) = hex::decode(header) else {
        return bad("header is not hex".into());
    };
    if wlnode_crypto::sha256::digest(&bytes) != record_id.0 {
        return bad("header does not hash to the record id".into());
    }
    let Ok(h) = RecordHeader::decode_canonical(&bytes) else {
        return bad("header does not decode".into());
    };
    let mut sig = [0u8; 64];
    if hex::decode_to_slice(signature, &mut sig).is_err()
        || h.signer_key
            .verify(context::RECORD, &bytes, &Signature(sig))
            .is_err()
    {
        return bad("the origin's signature does not verify".into());
    }
    let auditor = roster
        .member(to)
        .is_some_and(|m| m.role == wlnode_crypto::roster::Role::Auditor);
    let verdict = if auditor {
        Err("auditor")
    } else {
        wlnode_policy::check_receive(roster, &h, to, from, hops).map_err(|d| d.code())
    };
    let v = match verdict {
        Ok(()) => None,
        Err(code) => Some(proven(
            "distribution",
            from.as_str(),
            format!(
                "{from} sent record {record_id} (origin {}) to {to} although its signed distribution does not allow it ({code})",
                h.origin
            ),
            serde_json::json!({"index": index, "record_id": record_id, "origin": h.origin, "to": to, "hops": hops, "deny": code, "header": header}),
        )),
    };
    Sent::Genuine(Box::new(h), v)
}

/// A `sent` event that gave `to` a field the origin's signed field scopes keep from
/// it: the header says how many fields of each tag the record has, and the event which
/// it withheld. Scopes by identifier type (`identifiers.passport`) are not decidable
/// here: the type is in the disclosed value, not in the header.
fn check_field_scopes(
    roster: &Roster,
    from: &AgencyCode,
    to: &AgencyCode,
    h: &RecordHeader,
    withheld: &[String],
    record_id: &RecordId,
    index: u64,
) -> Option<Violation> {
    if *to == h.origin {
        return None;
    }
    let member = roster.member(to);
    let mut leaked = Vec::new();
    // Group membership is judged by the auditor's roster; the sender may have sent
    // under another one, so a finding that rests on a group is not proven.
    let mut by_group = false;
    for s in h.distribution.fields.iter() {
        if s.admits(to, |g| member.is_some_and(|m| m.in_group(g))) {
            continue;
        }
        let wlnode_crypto::record::FieldSelector::Tag(tag) = &s.field else {
            continue;
        };
        let present = h.fields.iter().filter(|f| f.tag == *tag).count();
        let kept = withheld.iter().filter(|w| *w == tag.as_str()).count();
        if kept < present {
            leaked.push(tag.as_str());
            by_group |=
                s.to.iter()
                    .any(|r| matches!(r, wlnode_crypto::model::Recipient::Group(_)));
        }
    }
    if leaked.is_empty() {
        return None;
    }
    let detail = format!(
        "{from} sent record {record_id} (origin {}) to {to} with {} that the origin's signed field scopes keep from {to}{}",
        h.origin,
        leaked.join(", "),
        if by_group {
            " (by group membership in the auditor's roster)"
        } else {
            ""
        }
    );
    let evidence = serde_json::json!({"index": index, "record_id": record_id, "origin": h.origin, "to": to, "fields": leaked, "by_group": by_group});
    Some(if by_group {
        violation("field_scope", from.as_str(), detail, evidence)
    } else {
        proven("field_scope", from.as_str(), detail, evidence)
    })
}

mod consult;
mod mail;
mod mail_delay;

use consult::check_consultations;
use mail::check_mail;
pub use mail::{
    ADDRESSEE_ANSWER_MS, ADDRESSEE_MISSES, MAIL_LOGGED_MARGIN_MS, MIN_JUDGED_LIFETIME_MS,
    REFUSAL_EVIDENCE_WINDOW_MS,
};
pub use mail_delay::{
    DELAY_BOUND_MS, DELAY_MIN_MS, HAND_FAILED_LOGGED_PER_HOUR, HAND_FAILED_LOGGED_PER_NEIGHBOUR,
    MAIL_STREAMS, RETRY_MAX_MS,
};

#[cfg(test)]
mod tests;
