//! The Art. 16 consultation checks of an audit (issue 21): each node's trail replayed,
//! and answers cross-checked between the requester's and the origin's logs. Split
//! from `verify.rs` so mail and consultation checks evolve apart.

use super::*;

/// Art. 16 consultation trails (issue 21): each node's `consultation` steps replayed
/// by `wlnode_consult::audit_trail`; every violation (a decision before the answer
/// and the deadline, a grant despite a denial that notified nobody, ...) becomes
/// `consultation_<kind>` at that node, proven by its own checkpointed log.
pub(super) fn check_consultations(logs: &[Log<'_>], report: &mut Report) {
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
            let evidence = serde_json::json!({"consultation_id": v.consultation_id.to_hex(), "event": event, "kind": kind});
            // Review s31-fixes C1: a step the other party took (a requester's decision
            // as reported to the origin) is that party's act, seen through this log:
            // it is reported against the actor, not proven against the honest log
            // keeper, whose view may lag (a round it refused and never recorded, an
            // information message lost on the way).
            match steps.get(v.index).map(|(_, st)| &st.from) {
                Some(actor) if *actor != l.export.agency => {
                    report.violations.push(violation(
                        &format!("consultation_{name}"),
                        actor.as_str(),
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
    check_late_answers_across_logs(logs, report);
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

/// Review s31-consult M2: an answer the requester's log records as arriving late
/// (`answered_late`, signed before the deadline) is taken on the requester's word
/// unless the origin's log confirms it. When the origin's usable log is covered by
/// a checkpoint signed after the answer's signed time (plus the clock skew), it must
/// hold an `answered` step of its own for that consultation with the same answer;
/// otherwise `consultation_answer_unconfirmed` is reported, not proven (either the
/// origin signed an answer it did not log, backdating it, or the requester's log
/// records an answer that never came): against the origin when its log shows no
/// answer, against the requester when it shows a different one.
fn check_late_answers_across_logs(logs: &[Log<'_>], report: &mut Report) {
    use wlnode_consult::TrailKind;
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap_or(u64::MAX);
    let usable: Vec<&Log<'_>> = logs.iter().filter(|l| l.usable).collect();
    for l in &usable {
        for (i, step) in consultation_steps(l) {
            let TrailKind::AnsweredLate {
                answer, signed_at, ..
            } = &step.kind
            else {
                continue;
            };
            if step.to != l.export.agency {
                continue;
            }
            let Some(origin_log) = usable.iter().find(|o| o.export.agency == step.from) else {
                continue;
            };
            let covers = origin_log
                .checkpoint_at
                .is_some_and(|c| c >= signed_at.as_millis().saturating_add(skew));
            if !covers {
                continue;
            }
            let answers: Vec<wlnode_consult::Answer> = consultation_steps(origin_log)
                .filter(|(_, s)| s.consultation_id == step.consultation_id && s.from == step.from)
                .filter_map(|(_, s)| match &s.kind {
                    TrailKind::Answered { answer } => Some(*answer),
                    _ => None,
                })
                .collect();
            if answers.contains(answer) {
                continue;
            }
            let against = if answers.is_empty() {
                step.from.as_str()
            } else {
                l.export.agency.as_str()
            };
            report.violations.push(violation(
                "consultation_answer_unconfirmed",
                against,
                format!(
                    "consultation {}: {}'s log records a late {} answer from {} signed at {}, which {}'s log does not show",
                    step.consultation_id.to_hex(),
                    l.export.agency,
                    answer.as_str(),
                    step.from,
                    signed_at.as_millis(),
                    step.from
                ),
                serde_json::json!({
                    "consultation_id": step.consultation_id.to_hex(),
                    "requester": l.export.agency.to_string(),
                    "event": i,
                    "origin": step.from.to_string(),
                    "origin_answers": answers.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                }),
            ));
        }
    }
}
