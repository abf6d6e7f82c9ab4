//! The Art. 16 consultation checks of an audit (issue 21): each node's trail replayed,
//! and answers cross-checked between the requester's and the origin's logs. Split
//! from `verify.rs` so mail and consultation checks evolve apart.

use super::*;

/// Art. 16 consultation trails (issue 21): each node's `consultation` steps replayed
/// by `wlnode_consult::audit_trail`; every violation (a decision before the answer
/// and the deadline, a grant despite a denial that notified nobody, ...) becomes
/// `consultation_<kind>` at that node, proven by its own checkpointed log; one in a
/// step the other party took is reported against the pair `KEEPER->ACTOR`, unproven.
pub(super) fn check_consultations(
    roster: &Roster,
    logs: &[Log<'_>],
    opts: Options,
    report: &mut Report,
) {
    for l in logs.iter().filter(|l| l.usable) {
        let steps: Vec<(u64, wlnode_consult::TrailEvent)> = l
            .events
            .iter()
            .filter(|(i, _)| *i < l.covered)
            .filter_map(|(i, e)| match &e.kind {
                EventKind::Consultation { step } => Some((*i, step.clone())),
                _ => None,
            })
            .collect();
        if steps.is_empty() {
            continue;
        }
        let trail: Vec<wlnode_consult::TrailEvent> = steps.iter().map(|(_, s)| s.clone()).collect();
        let sum = wlnode_consult::summarize(&trail);
        report.consultations.push(ConsultationsSummary {
            agency: l.export.agency.to_string(),
            consultations: sum.consultations,
            open: sum.open,
            answered: sum.answered,
            expired: sum.expired,
            decided: sum.decided,
            refused_by_origin: sum.refused_by_origin,
            granted_despite: sum.granted_despite,
            median_time_to_answer_ms: sum.median_time_to_answer_ms,
            median_time_to_decision_ms: sum.median_time_to_decision_ms,
            violations: sum.violations,
        });
        for v in wlnode_consult::audit_trail(&trail) {
            let kind = serde_json::to_value(&v.kind).unwrap_or_default();
            let name = kind
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("violation")
                .to_owned();
            let event = steps.get(v.index).map(|(i, _)| *i);
            let evidence = serde_json::json!({"consultation_id": v.consultation_id.to_hex(), "requester": v.requester.to_string(), "event": event, "kind": kind});
            // Review s31-fixes C1: a step the other party took (a requester's decision
            // as reported to the origin) is that party's act, seen through this log:
            // never proven against the honest log keeper, whose view may lag (a round
            // it refused and never recorded, an information message lost on the
            // way). Review s32-consult P1: nor reported against the other party
            // alone, since this log is the only trace and the keeper wrote it: the
            // pair `KEEPER->ACTOR`, unproven, as the cross-log rules do. A step by an
            // agency that is not the party for it (`wrong_party`) is never written by
            // an honest node (its steps take both parties from the consultation), so
            // it is proven against the keeper, never against the agency named.
            let wrong_party = matches!(v.kind, wlnode_consult::ViolationKind::WrongParty { .. });
            match steps.get(v.index).map(|(_, st)| &st.from) {
                Some(actor) if *actor != l.export.agency && !wrong_party => {
                    report.violations.push(violation(
                        &format!("consultation_{name}"),
                        &format!("{}->{actor}", l.export.agency),
                        format!(
                            "consultation {}: {name} at {}, by {actor} as {}'s log records it",
                            v.consultation_id.to_hex(),
                            v.at.as_millis(),
                            l.export.agency
                        ),
                        evidence,
                    ));
                }
                _ => {
                    report.violations.push(proven(
                        &format!("consultation_{name}"),
                        l.export.agency.as_str(),
                        format!(
                            "consultation {}: {name} at {}",
                            v.consultation_id.to_hex(),
                            v.at.as_millis()
                        ),
                        evidence,
                    ));
                }
            }
        }
    }
    check_times(logs, opts, report);
    let indexes: Vec<LogIndex<'_>> = logs
        .iter()
        .filter(|l| l.usable)
        .map(|l| LogIndex::new(l, roster.version()))
        .collect();
    check_evidence(roster, &indexes, report);
    check_settings_understood(roster, logs, report);
    check_missing_evidence(roster, &indexes, report);
    check_requests_across_logs(roster, &indexes, report);
    check_late_answers_across_logs(roster, &indexes, report);
    check_refusals(roster, &indexes, report);
}

/// What the signed receipt a consultation step keeps shows (issue 21, s33; see
/// `wlnode_consult::evidence`).
enum Evidence {
    /// The step keeps none (a log before receipts, or a sender that sent none).
    None,
    /// A receipt by a signing key the roster gives the actor (`from`) at its signed
    /// time, never revoked, naming this step: the actor signed it.
    Signed(wlnode_consult::StepReceipt),
    /// A receipt that cannot be the actor's for this step: a signature that does not
    /// verify, a body that names another step, round, party, answer or reason, or a
    /// key that was not the actor's under the roster the keeper ran when it logged
    /// the step. An honest keeper checks the receipt before it logs it, so this is
    /// proof against the keeper.
    Invented(String),
    /// A receipt that verifies, but by a key revoked at some point (it may have been
    /// stolen), or not the actor's under this roster while the keeper ran another:
    /// proves nothing either way.
    Unsure,
}

/// Judges the receipt step `step` (event `index`, round `round`) of `x`'s log keeps.
fn evidence_of(
    roster: &Roster,
    x: &LogIndex<'_>,
    index: u64,
    round: u32,
    step: &wlnode_consult::TrailEvent,
) -> Evidence {
    use wlnode_consult::{ReceiptStep, TrailKind};
    let Some(signed) = step.kind.evidence() else {
        return Evidence::None;
    };
    let r = match signed.open() {
        Ok(r) => r,
        // Review s34-consult L3: a body this build cannot read (a field or version
        // of a later build) whose signature verifies under a key the roster gives
        // the actor was signed by the actor, not forged by the keeper: it proves
        // nothing either way (a newer keeper may have read it rightly).
        Err(_)
            if signed.signed_by().is_some_and(|k| {
                roster
                    .member(&step.from)
                    .is_some_and(|m| m.keys.iter().any(|w| w.key == k))
            }) =>
        {
            return Evidence::Unsure;
        }
        Err(e) => return Evidence::Invented(e.to_string()),
    };
    let (want_step, answer, reason) = match &step.kind {
        TrailKind::Requested { .. } => (ReceiptStep::Request, None, None),
        TrailKind::Answered { answer, .. } | TrailKind::AnsweredLate { answer, .. } => {
            (ReceiptStep::Answer, Some(*answer), None)
        }
        TrailKind::RefusedByOrigin { reason, .. } => (ReceiptStep::Refusal, None, Some(*reason)),
        _ => return Evidence::Invented("a receipt on a step that takes none".into()),
    };
    let mismatch = if r.step != want_step {
        Some("step")
    } else if r.consultation_id != step.consultation_id {
        Some("consultation")
    } else if r.round != round {
        Some("round")
    } else if r.from != step.from || r.to != step.to {
        Some("parties")
    } else if r.answer != answer || r.reason != reason {
        Some("answer or reason")
    } else if r.refused_kind.is_some_and(|k| {
        want_step != ReceiptStep::Refusal || k != wlnode_consult::RefusedKind::of_round(round)
    }) {
        // s34: a refusal's signed kind is the one that opened the refused round;
        // the requester refuses a receipt naming another (`evidence::check`).
        Some("refused kind")
    } else if !r.applied_fields_fit() {
        // s35: the minimum and roster applied, both or neither, only on a
        // `deadline_too_short` refusal (`evidence::check`).
        Some("minimum or roster applied")
    } else if let TrailKind::Requested { deadline, .. } = &step.kind
        && r.deadline != Some(*deadline)
    {
        Some("deadline")
    } else {
        None
    };
    if let Some(what) = mismatch {
        return Evidence::Invented(format!("the receipt names another {what}"));
    }
    let key = match signed.public_key() {
        Ok(k) => k,
        Err(e) => return Evidence::Invented(e.to_string()),
    };
    let revoked = roster
        .member(&step.from)
        .is_some_and(|m| m.revoked.iter().any(|v| v.key == key));
    if revoked {
        return Evidence::Unsure;
    }
    match roster.check_signer(&step.from, &key, r.signed_at) {
        Ok(_) => Evidence::Signed(r),
        // The keeper checked the signer under the roster it ran: if that is this
        // roster, a key this roster does not give the actor was never accepted.
        Err(e) if x.roster_settled_before(index, roster.version(), step.at.as_millis()) => {
            Evidence::Invented(format!(
                "not {}'s key under the roster it ran: {e}",
                step.from
            ))
        }
        Err(_) => Evidence::Unsure,
    }
}

/// Issue 21, s33: a consultation step whose kept receipt cannot be the actor's
/// ([`Evidence::Invented`]) is `consultation_evidence_invalid`, proven against the
/// log's keeper (an honest node checks a receipt before it acts on the message and
/// logs it).
fn check_evidence(roster: &Roster, indexes: &[LogIndex<'_>], report: &mut Report) {
    for x in indexes {
        let mut cap = FindingCap::default();
        for (i, round, step) in &x.steps {
            let Evidence::Invented(why) = evidence_of(roster, x, *i, *round, step) else {
                continue;
            };
            if !cap.take(step) {
                continue;
            }
            report.violations.push(proven(
                "consultation_evidence_invalid",
                x.log.export.agency.as_str(),
                format!(
                    "consultation {}: {}'s log keeps a receipt of {}'s {} (round {round}) that is not {}'s: {why}",
                    step.consultation_id.to_hex(),
                    x.log.export.agency,
                    step.from,
                    step.kind.as_str(),
                    step.from,
                ),
                serde_json::json!({
                    "consultation_id": step.consultation_id.to_hex(),
                    "event": i,
                    "round": round,
                    "step": step.kind.as_str(),
                    "actor": step.from.to_string(),
                    "why": why,
                }),
            ));
        }
    }
}

/// Issue 21, s34 (review s33-consult M1 part 3): from the roster's
/// `consult_receipts_required_since`, a node refuses a request, answer or refusal
/// that comes without its sender's receipt. A step of another party's (a `requested`
/// at the origin, an `answered`, `answered_late` or `refused_by_origin` at the
/// requester) that the log keeps without a receipt and dates at or after the
/// cut-over is `consultation_evidence_missing`:
/// - proven against the log's keeper when the roster it ran at the step was the
///   auditor's, loaded at least [`wlnode_consult::TIMING_SKEW`] before (as for
///   [`Evidence::Invented`]): an honest node under that roster refused the message,
///   so the keeper took what it had to refuse, or wrote a step that never came (a
///   requester's invented answer can carry no receipt of the origin's). Its own
///   act, shown by its own log: not `consultation_evidence_invalid`, which says the
///   receipt kept is not the actor's, while here nothing was kept;
/// - otherwise reported against the pair `KEEPER->ACTOR`, unproven: the keeper may
///   have run a roster without the cut-over (or another version the auditor does
///   not know), under which taking the message was right.
///
/// The step is judged at its own time, or later when the keeper signed a
/// checkpoint without it more than
/// [`wlnode_consult::MAX_CLOCK_SKEW`] after that (review s34-consult M1: a keeper
/// could backdate its step before the cut-over). An honest node judges the message
/// when it applies it (`runtime::consultations::receipt_required_since`), after
/// every checkpoint that does not hold the step, so it never logs such a step;
/// steps before the cut-over are judged as before.
///
/// Review s35-deadline H1, by the same rules: from the roster's
/// `consult_refusal_terms_required_since`, a requester refuses a
/// `deadline_too_short` whose receipt signs no minimum and roster version (or that
/// carries no receipt): a `refused_by_origin` of that reason kept so, dated at or
/// after that cut-over, is `consultation_evidence_missing` too (proven against the
/// keeper that ran the auditor's roster, settled; otherwise the pair).
fn check_missing_evidence(roster: &Roster, indexes: &[LogIndex<'_>], report: &mut Report) {
    use wlnode_consult::TrailKind;
    let receipts_since = roster.consult_receipts_required_since();
    let terms_since = roster.consult_refusal_terms_required_since();
    if receipts_since.is_none() && terms_since.is_none() {
        return;
    }
    let skew = u64::try_from(wlnode_consult::MAX_CLOCK_SKEW.as_millis()).unwrap_or(u64::MAX);
    for x in indexes {
        let keeper = &x.log.export.agency;
        let mut cap = FindingCap::default();
        for (i, round, step) in &x.steps {
            let takes_one = matches!(
                step.kind,
                TrailKind::Requested { .. }
                    | TrailKind::Answered { .. }
                    | TrailKind::AnsweredLate { .. }
                    | TrailKind::RefusedByOrigin { .. }
            );
            // Review s34-consult M1: a keeper could date the step before the
            // cut-over. It cannot date it before a checkpoint it signed before the
            // step was appended (size at most its index): the step is judged no
            // earlier than that, less the skew.
            let at = x
                .appended_after(*i)
                .map_or(0, |t| t.saturating_sub(skew))
                .max(step.at.as_millis());
            // What the step lacks, and since when the roster requires it.
            let too_short = matches!(
                step.kind,
                TrailKind::RefusedByOrigin {
                    reason: wlnode_consult::RefusalReason::DeadlineTooShort,
                    ..
                }
            );
            // The setting that requires it rides along: a keeper whose build did not
            // understand that very setting is not proven to breach it (review
            // s35-roster H1).
            const RECEIPTS: &str = "consult_receipts_required_since";
            const TERMS: &str = "consult_refusal_terms_required_since";
            // Every setting that requires what the step lacks and applies at `at`.
            let lacks: Vec<(&str, _, &str)> = match step.kind.evidence() {
                None => {
                    let terms = terms_since.filter(|_| too_short).map(|s| (s, TERMS));
                    receipts_since
                        .map(|s| (s, RECEIPTS))
                        .into_iter()
                        .chain(terms)
                        .map(|(s, setting)| ("its receipt", s, setting))
                        .collect()
                }
                // Review s35-deadline H1: a receipt this build reads that signs no
                // minimum and roster version (one it cannot read is judged by
                // `evidence_of`).
                Some(signed) if too_short => terms_since
                    .filter(|_| signed.open().is_ok_and(|r| r.applied().is_none()))
                    .map(|s| ("the minimum and roster version its receipt signs", s, TERMS))
                    .into_iter()
                    .collect(),
                Some(_) => Vec::new(),
            };
            let applies: Vec<_> = lacks
                .into_iter()
                .filter(|(_, since, _)| at >= since.as_millis())
                .collect();
            if applies.is_empty() || !takes_one || step.from == *keeper || !cap.take(step) {
                continue;
            }
            // Review of s35-int, M2: proven when the keeper understood any one of
            // them (only the earliest was judged, so a keeper that did not
            // understand the terms cut-over escaped the receipts one it did); the
            // finding names the earliest it understood, else the earliest.
            let understood = applies
                .iter()
                .filter(|(_, _, setting)| x.not_understood.understood_before(*i, setting))
                .min_by_key(|(_, since, _)| *since);
            let Some(&(what, since, _)) =
                understood.or_else(|| applies.iter().min_by_key(|(_, since, _)| *since))
            else {
                continue;
            };
            let detail = format!(
                "consultation {}: {keeper}'s log keeps {}'s {} (round {round}) at {} without {what}, which the roster requires since {}",
                step.consultation_id.to_hex(),
                step.from,
                step.kind.as_str(),
                at,
                since.as_millis(),
            );
            let evidence = serde_json::json!({
                "consultation_id": step.consultation_id.to_hex(),
                "event": i,
                "round": round,
                "step": step.kind.as_str(),
                "actor": step.from.to_string(),
                "at": step.at.as_millis(),
                "judged_at": at,
                "required_since": since.as_millis(),
            });
            // Review s35-roster H1: a keeper whose build logged the cut-over as not
            // understood did not apply it; taking the message was that build's
            // rule, not a breach it can be proven guilty of.
            if x.roster_settled_before(*i, roster.version(), at) && understood.is_some() {
                report.violations.push(proven(
                    "consultation_evidence_missing",
                    keeper.as_str(),
                    detail,
                    evidence,
                ));
            } else {
                report.violations.push(violation(
                    "consultation_evidence_missing",
                    &format!("{keeper}->{}", step.from),
                    detail,
                    evidence,
                ));
            }
        }
    }
}

/// Review of s35-int, H2: a node's `roster_loaded` naming a setting as not
/// understood is its own word, and withholds every proof keyed on that setting
/// (review s35-roster H1). It is also a proof of its own: the node says it ran the
/// auditor's roster version on a build that does not understand a setting that
/// roster sets, and the authority signs a setting only once every node runs a build
/// that knows it (README, upgrades). So such an event is
/// `roster_setting_not_understood`, proven against the keeper: an honest node on
/// an outdated build is out of the federation's upgrade order, and a hostile one
/// that claims ignorance to escape a cut-over's proof is named for the claim. One
/// finding per node and setting; names past the logged list
/// (`not_understood_more`) are not guessed at.
fn check_settings_understood(roster: &Roster, logs: &[Log<'_>], report: &mut Report) {
    let set = roster
        .doc()
        .federation_settings
        .as_ref()
        .map(wlnode_crypto::roster::FederationSettings::set_names)
        .unwrap_or_default();
    if set.is_empty() {
        return;
    }
    for l in logs.iter().filter(|l| l.usable) {
        let mut named = std::collections::BTreeSet::new();
        for (i, e) in &l.events {
            let EventKind::RosterLoaded {
                version,
                not_understood,
                ..
            } = &e.kind
            else {
                continue;
            };
            if *i >= l.covered || *version != roster.version() {
                continue;
            }
            for name in not_understood.iter().filter(|n| set.contains(*n)) {
                if !named.insert(name.clone()) {
                    continue;
                }
                let keeper = l.export.agency.as_str();
                report.violations.push(proven(
                    "roster_setting_not_understood",
                    keeper,
                    format!(
                        "node {} of {keeper} logged loading roster v{version} without understanding federation_settings.{name}, which that roster sets: it runs a build older than the federation requires",
                        l.export.peer_id
                    ),
                    serde_json::json!({
                        "event": i,
                        "version": version,
                        "setting": name,
                        "peer_id": l.export.peer_id,
                    }),
                ));
            }
        }
    }
}

/// A verified checkpoint: its size and signed time.
type Checkpointed = (u64, u64);

/// When a log's events were at the latest vouched for: for event index `i`, the
/// earliest signed time of a verified checkpoint that covers it (its size is above
/// `i`). Unlike the latest checkpoint, this stops moving once the event is covered,
/// so a keeper cannot push it forward by signing more checkpoints (review s32-consult
/// M1).
struct FirstCover {
    /// Checkpoint sizes, ascending.
    sizes: Vec<u64>,
    /// `earliest[k]`: the earliest signed time among checkpoints `k..`.
    earliest: Vec<u64>,
}

impl FirstCover {
    fn new(l: &Log<'_>) -> Self {
        let mut cps = l.checkpoints.clone();
        cps.sort_unstable();
        let mut earliest: Vec<u64> = cps.iter().map(|(_, t)| *t).collect();
        for k in (0..earliest.len().saturating_sub(1)).rev() {
            let next = earliest.get(k + 1).copied().unwrap_or(u64::MAX);
            if let Some(e) = earliest.get_mut(k) {
                *e = (*e).min(next);
            }
        }
        Self {
            sizes: cps.iter().map(|(s, _)| *s).collect(),
            earliest,
        }
    }

    /// The earliest signed time of a verified checkpoint covering event `index`.
    fn of(&self, index: u64) -> Option<u64> {
        let k = self.sizes.partition_point(|s| *s <= index);
        self.earliest.get(k).copied()
    }
}

/// Review s32-consult M1: the times a keeper writes are bounded by the times it
/// signs, and those by the auditor's clock, so that a far-future date shows at every
/// audit instead of hiding a step from the cross-checks. Each is proven against the
/// keeper (its own signed data), once per log with a count, and allows an hour
/// ([`wlnode_consult::MAX_CLOCK_SKEW`], not the five minutes of the timing rules: an
/// NTP correction that steps an honest clock back by minutes between two checkpoints
/// is no finding; one of more than an hour is):
/// - `checkpoint_in_future`: a verified checkpoint signed later than the auditor's
///   `now` (when it has one);
/// - `checkpoint_time_reversed`: a checkpoint of a larger size signed earlier than
///   one of a smaller size;
/// - `consultation_step_after_checkpoint`: a covered consultation step dated (its
///   `at`, or a late answer's `signed_at`) after the first checkpoint that covers it.
///   An honest node writes a step at its own `now` and signs checkpoints later; a
///   late answer's `signed_at` is at most the deadline plus the skew, which had passed
///   when the step was written.
fn check_times(logs: &[Log<'_>], opts: Options, report: &mut Report) {
    use wlnode_consult::TrailKind;
    let skew = u64::try_from(wlnode_consult::MAX_CLOCK_SKEW.as_millis()).unwrap_or(u64::MAX);
    for l in logs.iter().filter(|l| l.usable) {
        let node = l.export.agency.as_str();
        if let Some(now) = opts.now_ms {
            let ahead: Vec<&(u64, u64)> = l
                .checkpoints
                .iter()
                .filter(|(_, t)| *t > now.saturating_add(skew))
                .collect();
            if let Some((size, at)) = ahead.first() {
                report.violations.push(proven(
                    "checkpoint_in_future",
                    node,
                    format!(
                        "{} checkpoint(s) signed after the auditor's now {now}, the first of size {size} at {at}",
                        ahead.len()
                    ),
                    serde_json::json!({"now": now, "size": size, "timestamp": at, "count": ahead.len()}),
                ));
            }
        }
        let mut cps = l.checkpoints.clone();
        cps.sort_unstable();
        let reversed: Vec<(&Checkpointed, &Checkpointed)> = cps
            .iter()
            .zip(cps.iter().skip(1))
            .filter(|(a, b)| b.0 > a.0 && b.1.saturating_add(skew) < a.1)
            .collect();
        if let Some((a, b)) = reversed.first() {
            report.violations.push(proven(
                "checkpoint_time_reversed",
                node,
                format!(
                    "{} time(s) a larger checkpoint was signed earlier: size {} at {}, then size {} at {}",
                    reversed.len(),
                    a.0,
                    a.1,
                    b.0,
                    b.1
                ),
                serde_json::json!({"size": a.0, "timestamp": a.1, "later_size": b.0, "later_timestamp": b.1, "count": reversed.len()}),
            ));
        }
        let cover = FirstCover::new(l);
        let after: Vec<(u64, u64, u64)> = consultation_steps(l)
            .filter_map(|(i, s)| {
                let dated = match s.kind {
                    TrailKind::AnsweredLate { signed_at, .. } => {
                        s.at.as_millis().max(signed_at.as_millis())
                    }
                    _ => s.at.as_millis(),
                };
                let c = cover.of(i)?;
                (dated > c.saturating_add(skew)).then_some((i, dated, c))
            })
            .collect();
        if let Some((i, dated, c)) = after.first() {
            report.violations.push(proven(
                "consultation_step_after_checkpoint",
                node,
                format!(
                    "{} consultation step(s) dated after the checkpoint that first covers them: event {i} dated {dated}, covered by a checkpoint signed at {c}",
                    after.len()
                ),
                serde_json::json!({"event": i, "dated": dated, "checkpoint_at": c, "count": after.len()}),
            ));
        }
    }
}

/// The covered consultation steps of a usable log.
fn consultation_steps<'a>(
    l: &'a Log<'_>,
) -> impl Iterator<Item = (u64, &'a wlnode_consult::TrailEvent)> {
    l.events
        .iter()
        .filter(|(i, _)| *i < l.covered)
        .filter_map(|(i, e)| match &e.kind {
            EventKind::Consultation { step } => Some((*i, step)),
            _ => None,
        })
}

/// A covered consultation step of a log: its event index, its round, the step.
type RoundStep<'a> = (u64, u32, &'a wlnode_consult::TrailEvent);

/// The round each covered consultation step belongs to in `l`: 1 for the request,
/// one more after each `info_supplied` of that consultation (both sides log the
/// information that opens a round, the requester when it sends it, the origin when
/// it takes it). Per consultation, that is per id and requester (review
/// s33/s34-consult L1: an origin holds one consultation per requester under an id,
/// so another member's information under the same id opens no round of this one).
/// A `delivered` step names no requester, carries no evidence and opens no round:
/// no rule reads it, so it is left out (final read of s36: placing it between its
/// two parties repeated the trail replay's `Replay::key_of` for nothing).
fn rounds<'a>(l: &'a Log<'_>) -> Vec<RoundStep<'a>> {
    let mut round: std::collections::HashMap<Consultation<'_>, u32> =
        std::collections::HashMap::new();
    consultation_steps(l)
        .filter_map(|(i, s)| {
            let c = (s.consultation_id, s.requester()?);
            let r = round.entry(c).or_insert(1);
            if matches!(s.kind, wlnode_consult::TrailKind::InfoSupplied { .. }) {
                *r = r.saturating_add(1);
            }
            Some((i, *r, s))
        })
        .collect()
}

/// Findings one cross-log rule reports for one consultation of one log, at most
/// (review s32-consult L6: a log of a million bad steps for one consultation gave a
/// million findings); the first are enough to act on.
const MAX_FINDINGS_PER_CONSULTATION: usize = 8;

/// What the cross-log rules look up in a usable log, built once per log so that each
/// step of another log costs a hash lookup or a binary search, not a scan of this
/// log (review s32-consult L6: the rules were quadratic in a hostile log).
struct LogIndex<'a> {
    log: &'a Log<'a>,
    /// Its covered consultation steps with their rounds.
    steps: Vec<RoundStep<'a>>,
    /// Its own answers (`answered` from the keeper), by consultation and the member
    /// answered: (round, answer).
    answers: HashMap<
        (wlnode_consult::ConsultationId, &'a AgencyCode),
        Vec<(u32, wlnode_consult::Answer)>,
    >,
    /// The earliest `requested` of each consultation it holds, by consultation and
    /// requester (Unix ms, the step's time).
    requested: HashMap<(wlnode_consult::ConsultationId, &'a AgencyCode), u64>,
    /// The event index of the first covered `requested` of each consultation it
    /// holds, by consultation and requester (review s33-consult H2: whether the log
    /// held a consultation before it refused is decided by position in the log, not
    /// by comparing its arrival time with a later signing time).
    requested_index: HashMap<(wlnode_consult::ConsultationId, &'a AgencyCode), u64>,
    /// Every covered `requested` as (consultation, requester, origin) (review
    /// s33-consult M2: a requester's log shows a request only if it names the same
    /// origin, not any other agency under the same id).
    requested_to: std::collections::HashSet<(
        wlnode_consult::ConsultationId,
        &'a AgencyCode,
        &'a AgencyCode,
    )>,
    /// The event index and time of the first covered `mail rejected` event of each
    /// message id (lower-case hex): where the log audited a message it refused.
    rejected: HashMap<&'a str, (u64, u64)>,
    /// Covered `roster_loaded` events: (index, version), by index.
    rosters: Vec<(u64, u64)>,
    /// The times of those `roster_loaded` events (same order).
    roster_times: Vec<u64>,
    /// Review s35-roster H1: which settings the keeper's builds logged as not
    /// understood.
    not_understood: NotUnderstood,
    /// Every `roster_loaded` event of a reload (not the one a start logs right
    /// after `node_started`), covered or not: (index, time, version), by index.
    reloads: Vec<(u64, u64, u64)>,
    /// The earliest time of an event past the latest checkpoint (none: all
    /// covered). Review s33-consult L6: a node whose clock ran fast when it signed
    /// its latest checkpoint, then stepped back, logs what it does next after the
    /// checkpoint yet dated before its time.
    uncovered_from: Option<u64>,
    /// Events by time: (time, one past the highest index of an event at or before
    /// that time).
    by_time: Vec<(u64, u64)>,
    /// Review s34-consult M1: the heads signed before later events were appended:
    /// (size, the latest signed time of a verified checkpoint of that size or
    /// smaller), by size. Event `i` was appended after every one of size at most
    /// `i`.
    appended_after: Vec<(u64, u64)>,
}

impl<'a> LogIndex<'a> {
    fn new(log: &'a Log<'a>, version: u64) -> Self {
        use wlnode_consult::TrailKind;
        let steps = rounds(log);
        let mut answers: HashMap<_, Vec<_>> = HashMap::new();
        let mut requested: HashMap<_, u64> = HashMap::new();
        let mut requested_index: HashMap<_, u64> = HashMap::new();
        let mut requested_to = std::collections::HashSet::new();
        for (i, r, s) in &steps {
            match &s.kind {
                TrailKind::Answered { answer, .. } if s.from == log.export.agency => {
                    answers
                        .entry((s.consultation_id, &s.to))
                        .or_default()
                        .push((*r, *answer));
                }
                TrailKind::Requested { .. } => {
                    let at = requested
                        .entry((s.consultation_id, &s.from))
                        .or_insert(u64::MAX);
                    *at = (*at).min(s.at.as_millis());
                    requested_index
                        .entry((s.consultation_id, &s.from))
                        .or_insert(*i);
                    requested_to.insert((s.consultation_id, &s.from, &s.to));
                }
                _ => {}
            }
        }
        let (rosters, roster_times) = log
            .events
            .iter()
            .filter(|(i, _)| *i < log.covered)
            .filter_map(|(i, e)| match e.kind {
                EventKind::RosterLoaded { version, .. } => Some(((*i, version), e.at)),
                _ => None,
            })
            .unzip();
        let not_understood = NotUnderstood::of(log, version);
        let mut reloads: Vec<(u64, u64, u64)> = log
            .events
            .iter()
            .enumerate()
            .filter_map(|(n, (i, e))| match e.kind {
                EventKind::RosterLoaded { version, .. } => {
                    let started = n
                        .checked_sub(1)
                        .and_then(|p| log.events.get(p))
                        .is_some_and(|(j, s)| {
                            *j + 1 == *i && matches!(s.kind, EventKind::NodeStarted { .. })
                        });
                    (!started).then_some((*i, e.at, version))
                }
                _ => None,
            })
            .collect();
        reloads.sort_unstable();
        let mut rejected: HashMap<&str, (u64, u64)> = HashMap::new();
        for (i, e) in log.events.iter().filter(|(i, _)| *i < log.covered) {
            if let EventKind::Mail {
                action, message_id, ..
            } = &e.kind
                && action == "rejected"
            {
                rejected.entry(message_id.as_str()).or_insert((*i, e.at));
            }
        }
        let uncovered_from = log
            .events
            .iter()
            .filter(|(i, _)| *i >= log.covered)
            .map(|(_, e)| e.at)
            .min();
        let mut by_time: Vec<(u64, u64)> = log.events.iter().map(|(i, e)| (e.at, *i + 1)).collect();
        by_time.sort_unstable();
        let mut upto = 0;
        for (_, u) in &mut by_time {
            upto = upto.max(*u);
            *u = upto;
        }
        // Review s34-consult L6: the keeper's checkpoints only. A checkpoint signs
        // the log's whole size then, so every later event was appended after it; a
        // head this auditor verified was the export's latest checkpoint, and events
        // past it may have existed already (an export read days later, a crash).
        let mut appended_after: Vec<(u64, u64)> = log.checkpoints.clone();
        appended_after.sort_unstable();
        let mut latest = 0;
        for (_, t) in &mut appended_after {
            latest = latest.max(*t);
            *t = latest;
        }
        Self {
            log,
            steps,
            answers,
            requested,
            requested_index,
            requested_to,
            rejected,
            rosters,
            roster_times,
            not_understood,
            reloads,
            uncovered_from,
            by_time,
            appended_after,
        }
    }

    /// Review s34-consult M1: the latest signed time of a checkpoint of the keeper's
    /// that did not yet hold event `index`, so the event was appended after it,
    /// whatever time it carries.
    fn appended_after(&self, index: u64) -> Option<u64> {
        let k = self
            .appended_after
            .partition_point(|(size, _)| *size <= index);
        k.checked_sub(1)
            .and_then(|k| self.appended_after.get(k))
            .map(|(_, t)| *t)
    }

    /// The version of the roster in force before event `index` (its latest covered
    /// `roster_loaded` before it), if it logged one.
    fn roster_before(&self, index: u64) -> Option<u64> {
        let k = self
            .rosters
            .partition_point(|(i, _)| *i < index.min(self.log.covered));
        k.checked_sub(1)
            .and_then(|k| self.rosters.get(k))
            .map(|(_, v)| *v)
    }

    /// Review s33-consult L3: whether the roster in force before event `index` was
    /// version `version`, loaded at least [`wlnode_consult::TIMING_SKEW`] before
    /// `at` (the keeper's time of that event). A node swaps its roster before it
    /// logs `roster_loaded`, in another task, so a step checked under the previous
    /// roster can follow a `roster_loaded` logged just before it, and (review
    /// s34-consult L4) a step checked under the next roster can precede its
    /// `roster_loaded`: not settled when one follows within the skew.
    fn roster_settled_before(&self, index: u64, version: u64, at: u64) -> bool {
        let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(u64::MAX);
        let k = self
            .rosters
            .partition_point(|(i, _)| *i < index.min(self.log.covered));
        // Review s34-consult M1: the highest version loaded before the event is in
        // force, not the latest logged: an honest node never loads an older
        // roster (its anchor refuses one), so a log that goes back to an earlier
        // version after this one does not escape the proof.
        let Some(highest) = self.rosters.iter().take(k).map(|(_, v)| *v).max() else {
            return false;
        };
        let first = self.rosters.iter().take(k).position(|(_, v)| *v == highest);
        // Review s34-consult L4: nor when the log's next reload, within the skew
        // after the event, loads a later version: the reload swapped the roster
        // before the event was checked and logged `roster_loaded` after it. Only
        // withholds a proof, so an uncovered `roster_loaded` counts too. Review
        // s34-consult L7: not a start's `roster_loaded` (a start swaps nothing under
        // a step of the previous run), nor the same or an older version (no honest
        // reload logs one), which a keeper could append after an invented step.
        let next = self.reloads.partition_point(|(i, _, _)| *i <= index);
        let swapped_after = self
            .reloads
            .get(next)
            .is_some_and(|(_, t, v)| *v > highest && *t <= at.saturating_add(skew));
        highest == version
            && !swapped_after
            && first
                .and_then(|j| self.roster_times.get(j))
                .is_some_and(|t| t.saturating_add(skew) <= at)
    }

    /// One past the highest index of an event at or before `at` (0: none).
    fn events_until(&self, at: u64) -> u64 {
        let k = self.by_time.partition_point(|(t, _)| *t <= at);
        k.checked_sub(1)
            .and_then(|k| self.by_time.get(k))
            .map_or(0, |(_, u)| *u)
    }
}

/// Review s35-roster H1: the settings a keeper's node logged, in its
/// `roster_loaded` events, as not understood by its build. A node's build changes
/// only across a restart, so what matters for an event is the `roster_loaded` events
/// of the run it belongs to (since the latest `node_started` before it).
pub(super) struct NotUnderstood {
    /// Indexes of `node_started` events, ascending.
    starts: Vec<u64>,
    /// Per setting named as not understood by a covered `roster_loaded` event: the
    /// indexes of those events, ascending. Names left out (`not_understood_more`)
    /// withhold nothing: a node lists its `*_required_since` cut-overs first, so one
    /// is left out only past 32 of them (final read of s36: a bare
    /// `not_understood_more: 1` withheld every cut-over's proof, with no finding).
    /// Kept per setting so a query costs O(log n) (final read of s36: a scan of every
    /// claim per query let a node padding its own log with `roster_loaded` events
    /// make the auditor's work quadratic in that log).
    loaded: HashMap<String, Vec<u64>>,
}

impl NotUnderstood {
    /// Only claims at `version`, the auditor's roster version, count (final read of
    /// s36: a claim logged at another version withheld the cut-over's proofs for the
    /// whole log, and `check_settings_understood` judges only claims at this one; a
    /// node that ran another version is not proven to breach this one's cut-over
    /// anyway, since every proof needs this version settled in its log).
    pub(super) fn of(log: &Log<'_>, version: u64) -> Self {
        let mut starts = Vec::new();
        let mut loaded: HashMap<String, Vec<u64>> = HashMap::new();
        for (i, e) in &log.events {
            match &e.kind {
                EventKind::NodeStarted { .. } => starts.push(*i),
                EventKind::RosterLoaded {
                    version: v,
                    not_understood,
                    ..
                } if *i < log.covered && *v == version => {
                    for name in not_understood {
                        loaded.entry(name.clone()).or_default().push(*i);
                    }
                }
                _ => {}
            }
        }
        starts.sort_unstable();
        for v in loaded.values_mut() {
            v.sort_unstable();
        }
        Self { starts, loaded }
    }

    /// Whether the keeper's build ran `setting` at event `index`, as far as its log
    /// says: false when a covered `roster_loaded` of the same run, before the event,
    /// names it as not understood.
    pub(super) fn understood_before(&self, index: u64, setting: &str) -> bool {
        let k = self.starts.partition_point(|s| *s < index);
        let run_from = k
            .checked_sub(1)
            .and_then(|k| self.starts.get(k))
            .copied()
            .unwrap_or(0);
        let Some(claims) = self.loaded.get(setting) else {
            return true;
        };
        // The first claim at or after the run's start comes before the event.
        let first = claims.partition_point(|i| *i < run_from);
        claims.get(first).is_none_or(|i| *i >= index)
    }

    /// Whether any covered `roster_loaded` of the log names `setting` as not
    /// understood.
    pub(super) fn ever(&self, setting: &str) -> bool {
        self.loaded.contains_key(setting)
    }
}

/// A consultation: its id and requester.
type Consultation<'a> = (wlnode_consult::ConsultationId, &'a AgencyCode);

/// The consultation a step belongs to: its id and requester
/// ([`wlnode_consult::TrailEvent::requester`], `to` for `expired` as in the trail
/// replay: review s35-key M2). The rules call it only with steps that name their
/// requester ([`rounds`] leaves `delivered` steps, which name none, out).
fn consultation_of(
    s: &wlnode_consult::TrailEvent,
) -> (wlnode_consult::ConsultationId, &AgencyCode) {
    (s.consultation_id, s.requester().unwrap_or(&s.from))
}

/// Counts findings per consultation (id and requester) and says whether one more
/// may be reported.
#[derive(Default)]
struct FindingCap(HashMap<(wlnode_consult::ConsultationId, AgencyCode), usize>);

impl FindingCap {
    fn take(&mut self, step: &wlnode_consult::TrailEvent) -> bool {
        let (id, requester) = consultation_of(step);
        let n = self.0.entry((id, requester.clone())).or_default();
        *n += 1;
        *n <= MAX_FINDINGS_PER_CONSULTATION
    }
}

/// Review s31-consult M2 and s31-fixes C2: every answer a requester's log records
/// (`answered` in time, and `answered_late`) is cross-checked against the origin's
/// log once that log is covered by a checkpoint signed after the answer (its signed
/// time for a late one, its arrival for one in time, each no later than the first
/// checkpoint of the requester's log that covers the step (review s32-consult M1: the
/// requester's latest checkpoint moved forward with every one it signed, so a
/// requester that dated its invented answer in the future was never checked); plus
/// the clock skew): the origin's log must hold an `answered` step of its own for the same consultation,
/// **round** and answer. Otherwise `consultation_answer_unconfirmed` is reported,
/// unproven, against the pair `REQUESTER->ORIGIN`: the logs alone cannot tell an
/// origin that signed an answer and did not log it from a requester that recorded
/// an answer that never came (and minted a consultation id the origin never saw), so
/// the finding names neither alone. A requester that invents a no-objection to grant
/// without notice is reported, with itself named first; it can no longer excuse
/// itself by framing the origin (the review's attack). Keeping the origin's signed
/// answer in the step would settle it; not built.
fn check_late_answers_across_logs(roster: &Roster, indexes: &[LogIndex<'_>], report: &mut Report) {
    use wlnode_consult::TrailKind;
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(u64::MAX);
    let ahead = u64::try_from(wlnode_consult::MAX_CLOCK_SKEW.as_millis()).unwrap_or(u64::MAX);
    for x in indexes {
        let l = x.log;
        let cover = FirstCover::new(l);
        let mut cap = FindingCap::default();
        for (i, round, step) in &x.steps {
            let (answer, when, late) = match &step.kind {
                TrailKind::AnsweredLate {
                    answer, signed_at, ..
                } => (answer, *signed_at, true),
                // Arrived in time: the origin answered before it arrived (within
                // the skew).
                TrailKind::Answered { answer, .. } => (answer, step.at, false),
                _ => continue,
            };
            // Review s32-consult M1: a time past the checkpoint that first covered the
            // step is no later than that checkpoint (a keeper that dates its steps, or
            // its later checkpoints, in the future cannot move this forward).
            let when = wlnode_crypto::Timestamp(
                cover
                    .of(*i)
                    .map_or(when.as_millis(), |c| c.min(when.as_millis())),
            );
            // Only answers this log received (at the origin, `answered` is its own).
            if step.to != l.export.agency || step.from == l.export.agency {
                continue;
            }
            // Issue 21, s33: the origin's signed receipt of the answer. Checked
            // by its own signed time, which the origin cannot move more than
            // `MAX_CLOCK_SKEW` past the checkpoint that first covered the step here
            // (the requester refuses a receipt dated further ahead of its clock;
            // review s33-consult M1: with the 5-minute skew here, an origin dating
            // its answer 10 minutes ahead turned its proven omission into a pair
            // finding). A later signed time only makes the origin's own covering
            // checkpoint below come later. One that is not the origin's is
            // `consultation_evidence_invalid` against this keeper already.
            let evidence = evidence_of(roster, x, *i, *round, step);
            if matches!(evidence, Evidence::Invented(_)) {
                continue;
            }
            let signed = match evidence {
                Evidence::Signed(r)
                    if cover
                        .of(*i)
                        .is_some_and(|c| r.signed_at.as_millis() <= c.saturating_add(ahead)) =>
                {
                    Some(r)
                }
                _ => None,
            };
            let when = signed.as_ref().map_or(when, |r| r.signed_at);
            // L5: the origin's log, among its usable ones, that existed when the
            // answer was signed (its first event no later), else the first.
            let mut of_origin = indexes
                .iter()
                .filter(|o| o.log.export.agency == step.from)
                .peekable();
            let Some(first) = of_origin.peek().copied() else {
                continue;
            };
            // (Its own first event against a time it signed, or against the
            // requester's clock for an unsigned answer: the skew is on the pair's
            // side there.)
            let existed = |o: &&LogIndex<'_>| {
                o.by_time
                    .first()
                    .is_some_and(|(t, _)| *t <= when.as_millis())
            };
            let origin = of_origin.find(existed).unwrap_or(first);
            let covers = origin
                .log
                .checkpoint_at
                .is_some_and(|c| c >= when.as_millis().saturating_add(skew));
            if !covers {
                continue;
            }
            // Review s32-consult M2: an answer the origin gave another member under
            // the same (requester-chosen) id confirms nothing here.
            let answers: &[(u32, wlnode_consult::Answer)] = origin
                .answers
                .get(&(step.consultation_id, &l.export.agency))
                .map_or(&[], |a| a.as_slice());
            // Review s33-consult L2: an agency may run several nodes; the answer
            // logged on any of them is logged.
            let shown_elsewhere = indexes
                .iter()
                .filter(|o| o.log.export.agency == step.from)
                .any(|o| {
                    o.answers
                        .get(&(step.consultation_id, &l.export.agency))
                        .is_some_and(|a| a.contains(&(*round, *answer)))
                });
            if answers.contains(&(*round, *answer)) || shown_elsewhere || !cap.take(step) {
                continue;
            }
            // And it is proven only with the log of every node the roster lists
            // for the origin at hand.
            let every_node = roster.member(&step.from).is_some_and(|m| {
                m.node_ids.iter().all(|n| {
                    indexes
                        .iter()
                        .any(|o| o.log.export.agency == step.from && &o.log.export.peer_id == n)
                })
            });
            let pair = format!("{}->{}", l.export.agency, step.from);
            // Signed by the origin, and its log, which existed then and is covered
            // after the signed time, lacks it: the origin left its own step out.
            // Review s33-consult L6: and nothing it logged after its latest
            // checkpoint is dated before the signed time plus the skew (its clock
            // stepped back after that checkpoint: the answer may be logged past it).
            let proof = signed.is_some()
                && every_node
                && existed(&origin)
                && origin
                    .uncovered_from
                    .is_none_or(|u| u >= when.as_millis().saturating_add(skew));
            report.violations.push(Violation {
                kind: if proof {
                    "consultation_answer_not_logged".into()
                } else {
                    "consultation_answer_unconfirmed".into()
                },
                node: if proof { step.from.to_string() } else { pair },
                proven: proof,
                ..violation(
                "consultation_answer_unconfirmed",
                "",
                format!(
                    "consultation {}: {}'s log records {} {} answer from {} to round {round} ({} {}), which {}'s log does not show",
                    step.consultation_id.to_hex(),
                    l.export.agency,
                    if late { "a late" } else { "an" },
                    answer.as_str(),
                    step.from,
                    if late || signed.is_some() { "signed at" } else { "arrived at" },
                    when.as_millis(),
                    step.from
                ) + if proof { ", though the origin signed it" } else { "" },
                serde_json::json!({
                    "consultation_id": step.consultation_id.to_hex(),
                    "requester": l.export.agency.to_string(),
                    "event": i,
                    "round": round,
                    "answer": answer.as_str(),
                    "origin": step.from.to_string(),
                    "signed_by_origin": signed.is_some(),
                    "origin_answers": answers
                        .iter()
                        .map(|(r, a)| serde_json::json!({"round": r, "answer": a.as_str()}))
                        .collect::<Vec<_>>(),
                }),
            )
            });
        }
    }
}

/// Issue 21 (left open at s31) and review s31-fixes C4: the origin's signed refusals
/// a requester's log records (`refused_by_origin`) are checked for plausibility
/// against the logs. Reported unproven as `consultation_refusal_implausible` against
/// the pair `REQUESTER->ORIGIN` (the requester's log is the only trace of the
/// refusal, so which of the two is wrong cannot be told):
/// - `unknown_consultation` for the request itself (round 1), or for a later round
///   while the origin's covered log holds the consultation as this requester's (it
///   answered round 1, or there would be no later round; review s32-consult M2: not
///   another member's under the same id);
/// - `deadline_too_short` although the round's deadline left at least the roster's
///   minimum (plus the clock skew) after the refusal arrived. Judged only when the
///   roster the auditor verifies with is the one in force at the requester when it
///   opened the round and when the refusal arrived, and at the origin (whose log is
///   required) when the refusal arrived: the minimum in force then, not a later one (a roster change
///   raising it makes an honest refusal look implausible under the old one).
fn check_refusals(roster: &Roster, indexes: &[LogIndex<'_>], report: &mut Report) {
    use wlnode_consult::{RefusalReason, TrailKind};
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(u64::MAX);
    let min = roster.consultation_min_deadline_secs().saturating_mul(1000);
    for x in indexes {
        let l = x.log;
        let mut cap = FindingCap::default();
        // The latest step that opened each (consultation, round) so far: (event
        // index, deadline). A consultation is an id and a requester.
        let mut opened: HashMap<(Consultation<'_>, u32), (u64, wlnode_crypto::Timestamp)> =
            HashMap::new();
        for (i, round, step) in &x.steps {
            let why: &str = match &step.kind {
                TrailKind::Requested { deadline, .. } | TrailKind::InfoSupplied { deadline } => {
                    opened.insert((consultation_of(step), *round), (*i, *deadline));
                    continue;
                }
                TrailKind::RefusedByOrigin { reason, .. }
                    if step.to == l.export.agency && step.from != l.export.agency =>
                {
                    let origin = indexes.iter().find(|o| o.log.export.agency == step.from);
                    // Issue 21, s33: a refusal the origin signed is judged on what it
                    // signed (its time, the deadline it judged, its own log), and an
                    // implausible one is proven against it.
                    // A signed one is judged on that alone (review s32-consult L2:
                    // the requester takes a signed `deadline_too_short` whatever
                    // its own minimum, so its roster says nothing here).
                    if let Evidence::Signed(r) = evidence_of(roster, x, *i, *round, step) {
                        let why = signed_refusal_implausible(
                            roster,
                            indexes,
                            origin,
                            &r,
                            &l.export.agency,
                            min,
                            skew,
                        );
                        if let Some(why) = why
                            && cap.take(step)
                        {
                            report.violations.push(proven(
                                "consultation_refusal_implausible",
                                step.from.as_str(),
                                format!(
                                    "consultation {}: {}'s signed refusal of round {round}, signed at {}: {why}",
                                    step.consultation_id.to_hex(),
                                    step.from,
                                    r.signed_at.as_millis(),
                                ),
                                serde_json::json!({
                                    "consultation_id": step.consultation_id.to_hex(),
                                    "requester": l.export.agency.to_string(),
                                    "origin": step.from.to_string(),
                                    "event": i,
                                    "round": round,
                                    "reason": reason.as_str(),
                                    "signed_at": r.signed_at.as_millis(),
                                    "deadline": r.deadline.map(|d| d.as_millis()),
                                    "signed_by_origin": true,
                                }),
                            ));
                        }
                        continue;
                    }
                    match reason {
                        RefusalReason::UnknownConsultation if *round == 1 => {
                            "unknown_consultation for the request itself"
                        }
                        RefusalReason::UnknownConsultation => {
                            let held = origin.is_some_and(|o| {
                                o.log
                                    .checkpoint_at
                                    .is_some_and(|c| c >= step.at.as_millis().saturating_add(skew))
                                    && o.requested
                                        .get(&(step.consultation_id, &l.export.agency))
                                        .is_some_and(|at| *at <= step.at.as_millis())
                            });
                            if !held {
                                continue;
                            }
                            "unknown_consultation for a consultation the origin's log holds"
                        }
                        RefusalReason::DeadlineTooShort => {
                            // The step that opened the refused round, in this log.
                            let Some((opened_at, deadline)) =
                                opened.get(&(consultation_of(step), *round)).copied()
                            else {
                                continue;
                            };
                            // Review s32-consult L9: the requester's roster at the
                            // refusal too, and the origin's log required (without it,
                            // the origin's roster then is not known).
                            let same_roster = x.roster_before(opened_at) == Some(roster.version())
                                && x.roster_before(*i) == Some(roster.version())
                                && origin.is_some_and(|o| {
                                    o.roster_before(o.events_until(step.at.as_millis()))
                                        == Some(roster.version())
                                });
                            let long_enough = deadline.as_millis()
                                >= step.at.as_millis().saturating_add(min).saturating_add(skew);
                            if !(same_roster && long_enough) {
                                continue;
                            }
                            "deadline_too_short although the deadline left at least the roster's minimum after the refusal arrived"
                        }
                        _ => continue,
                    }
                }
                _ => continue,
            };
            if !cap.take(step) {
                continue;
            }
            report.violations.push(violation(
                "consultation_refusal_implausible",
                &format!("{}->{}", l.export.agency, step.from),
                format!(
                    "consultation {}: {}'s log records {}'s refusal of round {round}: {why}",
                    step.consultation_id.to_hex(),
                    l.export.agency,
                    step.from,
                ),
                serde_json::json!({
                    "consultation_id": step.consultation_id.to_hex(),
                    "requester": l.export.agency.to_string(),
                    "origin": step.from.to_string(),
                    "event": i,
                    "round": round,
                    "reason": match &step.kind {
                        TrailKind::RefusedByOrigin { reason, .. } => reason.as_str(),
                        _ => "",
                    },
                }),
            ));
        }
    }
}

/// Issue 21, s33: a request the origin's log keeps with the requester's signed
/// receipt, which the requester's log (existing at the signed time, covered by a
/// checkpoint signed past it plus the skew) does not show as its own `requested`
/// step, is `consultation_request_not_logged`, proven against the requester: an
/// honest requester logs the request when it saves it, before it is sent, so a
/// requester that hides a consultation from its own trail (to grant on it without a
/// trace) is caught by the origin's copy of its signature.
fn check_requests_across_logs(roster: &Roster, indexes: &[LogIndex<'_>], report: &mut Report) {
    use wlnode_consult::TrailKind;
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(u64::MAX);
    for x in indexes {
        let l = x.log;
        let mut cap = FindingCap::default();
        for (i, round, step) in &x.steps {
            if !matches!(step.kind, TrailKind::Requested { .. })
                || step.to != l.export.agency
                || step.from == l.export.agency
            {
                continue;
            }
            let Evidence::Signed(r) = evidence_of(roster, x, *i, *round, step) else {
                continue;
            };
            let at = r.signed_at.as_millis();
            // Review s33-consult M2: to this origin (a `requested` of the same id
            // to another agency does not show this one).
            let shown = |q: &&LogIndex<'_>| {
                q.requested_to
                    .contains(&(step.consultation_id, &step.from, &step.to))
            };
            let judged: Vec<&LogIndex<'_>> = indexes
                .iter()
                .filter(|q| q.log.export.agency == step.from)
                .filter(|q| {
                    q.by_time.first().is_some_and(|(t, _)| *t <= at)
                        && q.log
                            .checkpoint_at
                            .is_some_and(|c| c >= at.saturating_add(skew))
                        // Review s33-consult L6, as for answers.
                        && q.uncovered_from
                            .is_none_or(|u| u >= at.saturating_add(skew))
                })
                .collect();
            // Review s33-consult L2: proven only with the log of every node the
            // roster lists for the requester at hand.
            let every_node = roster.member(&step.from).is_some_and(|m| {
                m.node_ids.iter().all(|n| {
                    indexes
                        .iter()
                        .any(|o| o.log.export.agency == step.from && &o.log.export.peer_id == n)
                })
            });
            if judged.is_empty()
                || !every_node
                || indexes
                    .iter()
                    .filter(|q| q.log.export.agency == step.from)
                    .any(|q| shown(&q))
                || !cap.take(step)
            {
                continue;
            }
            report.violations.push(proven(
                "consultation_request_not_logged",
                step.from.as_str(),
                format!(
                    "consultation {}: {}'s log keeps {}'s signed request (signed at {at}), which {}'s log does not show",
                    step.consultation_id.to_hex(),
                    l.export.agency,
                    step.from,
                    step.from,
                ),
                serde_json::json!({
                    "consultation_id": step.consultation_id.to_hex(),
                    "origin": l.export.agency.to_string(),
                    "requester": step.from.to_string(),
                    "event": i,
                    "signed_at": at,
                }),
            ));
        }
    }
}

/// Review s35-deadline H2, M1 and L1: whether the origin ran the auditor's roster,
/// settled, when it refused the message its signed refusal `r` names: the log of
/// every node the roster lists for the origin is at hand (the receipt is signed
/// with the agency's key, which all its nodes share, and each node reloads on its
/// own: one node's log says nothing of a sibling's roster); each is covered past
/// the signed time plus the skew, with nothing logged after its latest checkpoint
/// dated before that (review s33-consult L6: a clock stepped back after it); at
/// least one audits the refused message (`mail rejected`, which an honest origin
/// appends after it takes its roster snapshot and before it signs); and each shows
/// the auditor's version settled ([`LogIndex::roster_settled_before`]): by
/// position, before the `mail rejected` event, on a node that has one (review
/// s35-deadline M1: a reload appended after the signing but dated before it, by a
/// clock that stepped back, is not before it), and before the signed time on a
/// node that has none (it did not refuse this message: an extra condition, which
/// only withholds proofs). A receipt that names no refused message (before s34)
/// proves nothing here.
fn origin_ran_settled(
    roster: &Roster,
    indexes: &[LogIndex<'_>],
    r: &wlnode_consult::StepReceipt,
    skew: u64,
    understood: Option<&str>,
) -> bool {
    let Some(message) = r.refused_message else {
        return false;
    };
    let message = message.to_hex();
    let at = r.signed_at.as_millis();
    let mut logs = indexes
        .iter()
        .filter(|o| o.log.export.agency == r.from)
        .peekable();
    if logs.peek().is_none() {
        return false;
    }
    let every_node = roster.member(&r.from).is_some_and(|m| {
        m.node_ids.iter().all(|n| {
            indexes
                .iter()
                .any(|o| o.log.export.agency == r.from && &o.log.export.peer_id == n)
        })
    });
    if !every_node {
        return false;
    }
    let mut audited = false;
    for o in logs {
        let covered = o
            .log
            .checkpoint_at
            .is_some_and(|c| c >= at.saturating_add(skew))
            && o.uncovered_from
                .is_none_or(|u| u >= at.saturating_add(skew));
        // Review s35-roster H1: with `understood`, also that the node's build
        // understood that setting then (a build that logged it as not understood
        // did not apply it).
        let understands =
            |index: u64| understood.is_none_or(|u| o.not_understood.understood_before(index, u));
        let settled = match o.rejected.get(message.as_str()) {
            Some((index, when)) => {
                audited = true;
                o.roster_settled_before(*index, roster.version(), *when) && understands(*index)
            }
            None => {
                let index = o.events_until(at);
                o.roster_settled_before(index, roster.version(), at) && understands(index)
            }
        };
        if !covered || !settled {
            return false;
        }
    }
    audited
}

/// Issue 21, s33: why a refusal the origin signed (`r`, checked) is implausible by
/// the origin's own signed data alone, if it is:
/// - `unknown_consultation` for the request itself, or for a later round of a
///   consultation the origin's covered log holds as `requester`'s from before it
///   signed the refusal;
/// - `deadline_too_short` by a receipt that signs no minimum and roster version
///   (before s35, or an origin leaving them out): of a deadline that left at least
///   the roster's minimum (plus the skew) after the signed time, while the origin
///   ran the roster the auditor verifies with ([`origin_ran_settled`]: every node's
///   log, settled before the refused message's audit event). The origin judges a
///   deadline at the message's arrival, before it signs, so a deadline long enough
///   at signing was long enough then.
/// - (review s35-deadline H1) the same receipt, signed at or after the auditor's
///   roster's `consult_refusal_terms_required_since`, while the origin ran that
///   roster ([`origin_ran_settled`]): a node whose roster carries the setting signs
///   the minimum and version on every `deadline_too_short`, so leaving them out is
///   the origin's act. Before the cut-over's time it is not proven (a member may
///   still run a build that signs them not).
/// - `deadline_too_short`, by a receipt that signs the minimum and roster version
///   the origin applied (s35, review s33-consult L1), when one of these holds. An
///   honest origin takes one roster snapshot per message, judges the message with
///   its minimum at the arrival (refusing a deadline earlier than the arrival plus
///   the minimum less the skew) and signs that minimum and that snapshot's version
///   when it sends the refusal, later, by the same clock.
///   - (a) Without the origin's log: the signed deadline left at least the signed
///     minimum plus the skew after the signed time
///     ([`wlnode_consult::StepReceipt::contradicts_itself`]). Honest, the deadline
///     was before the arrival plus the minimum less the skew, and the arrival is
///     no later than the signing: only a clock stepping back by more than twice
///     the skew between the two would frame it. The minimum is in whole seconds on
///     both sides (no rounding), and no roster is read, so a reload cannot race it.
///   - (b) Without the origin's log: the signed version is the auditor's and the
///     signed minimum is not the minimum that roster writes explicitly. The origin
///     signs both from the one snapshot it judged with, so an honest origin never
///     signs another minimum for a version, under two assumptions (review
///     s35-deadline L2): the authority signs one content per version (nodes refuse
///     a second content only against their own anchor, and any authority key may
///     sign: an authority that re-signs a version with another minimum makes this
///     rule, and the requester's, frame honest origins; a member cannot, it holds
///     no authority key); and the minimum is the roster's own, not the build's
///     default (`consultation_min_deadline_secs` omitted: another build may apply
///     another default, so (b) is not judged then). No time is read (no skew, no
///     reload race).
///   - (c) With the origin's logs ([`origin_ran_settled`]): the signed version is
///     older than the auditor's, every node of the origin ran the auditor's
///     version, settled, when it audited the refused message, and the deadline
///     left at least the auditor's minimum plus the skew after the signed time.
///     Honest, the snapshot is taken when the message is applied, before the
///     `mail rejected` event and the signing, and after a swap logged earlier in
///     the log and the skew earlier in time: it was that version or later, never
///     the older one signed. However long the apply lasts, a swap after the
///     snapshot is logged at a time after the `mail rejected` event's, which is the
///     apply's clock taken before the snapshot, so it is never settled before that
///     event (review of s35-int L2, checked in s36: no guard is needed).
///   - (d) Without the origin's log (review s35-deadline H1): the signed version is
///     above the auditor's, while the auditor's roster was issued (its signed
///     `issued_at`) more than the skew after the signed time. The authority issues
///     versions in increasing time order (an assumption on the authority, which
///     nodes do not check: a version is refused only when older than the one held,
///     not when its `issued_at` is earlier), so that higher version did not exist
///     when the origin signed it: it cannot have applied it.
///
///   Not proven: a signed version the auditor does not have, higher than its own
///   and issued before the auditor's, or older while the origin's logs are
///   missing, uncovered, or show no settled load of the auditor's version: the
///   minimum of that roster is unknown here. (c) and the rule without the fields
///   also rest on the build's default minimum being the same at the origin when
///   the roster omits it.
fn signed_refusal_implausible(
    roster: &Roster,
    indexes: &[LogIndex<'_>],
    origin: Option<&LogIndex<'_>>,
    r: &wlnode_consult::StepReceipt,
    requester: &AgencyCode,
    min: u64,
    skew: u64,
) -> Option<&'static str> {
    use wlnode_consult::RefusalReason;
    let at = r.signed_at.as_millis();
    // The origin's log, covered past the signed time: needed by the
    // `unknown_consultation` rule of a later round.
    let covered = origin.filter(|o| {
        o.log
            .checkpoint_at
            .is_some_and(|c| c >= at.saturating_add(skew))
    });
    match r.reason? {
        // The receipt signs that a request was refused (s34; an s33 receipt names no
        // kind, and its round 1 was a request's: an s33 origin refused a message
        // whose envelope kind was not its payload's without answering, cda9643).
        RefusalReason::UnknownConsultation
            if r.round == 1 && r.refused_kind != Some(wlnode_consult::RefusedKind::ConsultInfo) =>
        {
            Some("unknown_consultation for the request itself")
        }
        RefusalReason::UnknownConsultation => {
            // Review s33-consult H2: the origin audits the refused message (`mail
            // rejected`) before it signs the refusal, so a `requested` of this
            // requester earlier in its log was held when it refused. Times prove
            // nothing here: a request that arrived while the origin was refusing an
            // earlier information is dated before the refusal's signing yet opened
            // after it. Without the refused message's audit event, nothing is proven.
            let o = covered?;
            let (refused_at, _) = *o.rejected.get(r.refused_message?.to_hex().as_str())?;
            o.requested_index
                .get(&(r.consultation_id, requester))
                .is_some_and(|k| *k < refused_at)
                .then_some(
                    "unknown_consultation for a consultation the origin's log held as this requester's before it audited the refused message",
                )
        }
        RefusalReason::DeadlineTooShort => {
            let deadline = r.deadline?.as_millis();
            let long_enough = deadline >= at.saturating_add(min).saturating_add(skew);
            let Some(applied) = r.applied() else {
                // Review s35-deadline H1: left out under a roster that requires
                // them, from its cut-over's time on.
                if roster
                    .consult_refusal_terms_required_since()
                    .is_some_and(|since| at >= since.as_millis())
                    && origin_ran_settled(
                        roster,
                        indexes,
                        r,
                        skew,
                        Some("consult_refusal_terms_required_since"),
                    )
                {
                    return Some(
                        "deadline_too_short signing no minimum and roster version, which the roster the origin ran requires",
                    );
                }
                // A receipt that signs no minimum: the roster the origin's logs
                // show.
                return (long_enough && origin_ran_settled(roster, indexes, r, skew, None))
                    .then_some(
                        "deadline_too_short of a deadline that left at least the roster's minimum after the origin signed the refusal",
                    );
            };
            // (a) Its own signed data contradicts itself, whatever the roster.
            if r.contradicts_itself(skew) {
                return Some(
                    "deadline_too_short of a deadline that left at least the signed minimum after the origin signed the refusal",
                );
            }
            // (b) It names our roster version with another minimum than the one our
            // roster writes.
            if applied.roster_version == roster.version()
                && roster
                    .explicit_consultation_min_deadline_secs()
                    .is_some_and(|m| m != applied.min_deadline_secs)
            {
                return Some(
                    "deadline_too_short signing another minimum than the roster's for the roster's version",
                );
            }
            // (d) It names a version above ours, which was issued after it signed.
            if applied.roster_version > roster.version()
                && roster.issued_at().as_millis() > at.saturating_add(skew)
            {
                return Some(
                    "deadline_too_short signing a roster version issued only after it signed the refusal",
                );
            }
            // (c) It names an older version than ours, which every node of the
            // origin had settled when it refused, and under which the deadline was
            // long enough.
            (applied.roster_version < roster.version()
                && long_enough
                && origin_ran_settled(roster, indexes, r, skew, None))
            .then_some(
                "deadline_too_short signing an older roster than the one its logs had loaded, under which the deadline was long enough",
            )
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "consult_tests.rs"]
mod tests;
