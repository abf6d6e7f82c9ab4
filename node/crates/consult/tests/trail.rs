//! The trail auditor: honest trails pass; a decision before the answer and the
//! deadline, a grant despite a denial that notified nobody, an answer after the
//! deadline and steps out of order or by the wrong party are reported. The summary
//! gives counts and timings.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use wlnode_consult::{
    Answer, ConsultationId, Decision, Despite, State, TrailEvent, TrailKind, ViolationKind,
    audit_trail, summarize,
};
use wlnode_crypto::{AgencyCode, Timestamp};

const ID: ConsultationId = ConsultationId([7; 16]);

fn ev(kind: TrailKind, at: Timestamp, from: AgencyCode, to: AgencyCode) -> TrailEvent {
    TrailEvent {
        consultation_id: ID,
        kind,
        at,
        from,
        to,
    }
}

fn requested(day: u64) -> TrailEvent {
    ev(
        TrailKind::Requested {
            evidence: None,
            deadline: at(30),
        },
        at(day),
        req(),
        org(),
    )
}

fn answered(answer: Answer, day: u64) -> TrailEvent {
    ev(
        TrailKind::Answered {
            evidence: None,
            answer,
        },
        at(day),
        org(),
        req(),
    )
}

fn decided(decision: Decision, despite: Despite, day: u64) -> TrailEvent {
    ev(
        TrailKind::Decided { decision, despite },
        at(day),
        req(),
        org(),
    )
}

fn notice(to: &str, day: u64) -> TrailEvent {
    ev(TrailKind::NoticeSent, at(day), req(), agency(to))
}

fn kinds(trail: &[TrailEvent]) -> Vec<ViolationKind> {
    audit_trail(trail).into_iter().map(|v| v.kind).collect()
}

#[test]
fn honest_trails_pass() {
    let delivered = ev(TrailKind::Delivered, at(1), org(), req());
    let trails = [
        vec![],
        vec![requested(0)],
        // Objection, grant despite it, notices.
        vec![
            requested(0),
            delivered.clone(),
            answered(Answer::Objection, 5),
            decided(Decision::Granted, Despite::Objection, 6),
            notice("BB-BAFA", 6),
            notice("CC-THIRD", 6),
        ],
        // Expiry by silence, grant despite the denial, a notice.
        vec![
            requested(0),
            ev(TrailKind::Expired, at(30), req(), org()),
            decided(Decision::Granted, Despite::ExpiredDenial, 31),
            notice("BB-BAFA", 31),
        ],
        // Past the deadline without a logged expiry: a refusal needs no notice.
        vec![requested(0), decided(Decision::Refused, Despite::None, 31)],
        // No objection, grant.
        vec![
            requested(0),
            answered(Answer::NoObjection, 2),
            decided(Decision::Granted, Despite::None, 3),
        ],
        // A round of information, then no objection.
        vec![
            requested(0),
            answered(Answer::InfoRequested, 2),
            ev(
                TrailKind::InfoSupplied { deadline: at(50) },
                at(40),
                req(),
                org(),
            ),
            answered(Answer::NoObjection, 45),
            decided(Decision::Granted, Despite::None, 46),
        ],
        // Information asked, then refused.
        vec![
            requested(0),
            answered(Answer::InfoRequested, 2),
            decided(Decision::Refused, Despite::None, 3),
        ],
    ];
    for t in trails {
        assert_eq!(audit_trail(&t), vec![], "{t:?}");
    }
}

#[test]
fn a_decision_before_the_answer_and_the_deadline_is_reported() {
    let t = [requested(0), decided(Decision::Refused, Despite::None, 10)];
    let v = audit_trail(&t);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].index, 1);
    assert_eq!(v[0].consultation_id, ID);
    assert_eq!(
        v[0].kind,
        ViolationKind::PrematureDecision { deadline: at(30) }
    );
    // The answer arriving later does not cure it.
    let t = [
        requested(0),
        decided(Decision::Granted, Despite::None, 10),
        answered(Answer::NoObjection, 11),
    ];
    assert!(kinds(&t).contains(&ViolationKind::PrematureDecision { deadline: at(30) }));
}

#[test]
fn a_grant_while_information_is_outstanding_is_premature() {
    let t = [
        requested(0),
        answered(Answer::InfoRequested, 2),
        decided(Decision::Granted, Despite::None, 3),
    ];
    assert_eq!(
        kinds(&t),
        [ViolationKind::PrematureDecision { deadline: at(30) }]
    );
}

#[test]
fn a_grant_despite_a_denial_without_notice_is_reported() {
    // Despite an objection; the decision even claims "none".
    for claimed in [Despite::Objection, Despite::None] {
        let t = [
            requested(0),
            answered(Answer::Objection, 5),
            decided(Decision::Granted, claimed, 6),
        ];
        let v = audit_trail(&t);
        assert_eq!(
            v.iter().map(|v| (&v.kind, v.index)).collect::<Vec<_>>(),
            [(
                &ViolationKind::GrantWithoutNotice {
                    despite: Despite::Objection
                },
                2
            )]
        );
    }
    // Despite an expired denial, logged or not.
    for t in [
        vec![
            requested(0),
            decided(Decision::Granted, Despite::ExpiredDenial, 31),
        ],
        vec![
            requested(0),
            ev(TrailKind::Expired, at(30), req(), org()),
            decided(Decision::Granted, Despite::ExpiredDenial, 31),
        ],
    ] {
        assert_eq!(
            kinds(&t),
            [ViolationKind::GrantWithoutNotice {
                despite: Despite::ExpiredDenial
            }]
        );
    }
}

#[test]
fn an_answer_after_the_deadline_is_reported() {
    let t = [requested(0), answered(Answer::NoObjection, 30)];
    assert_eq!(
        kinds(&t),
        [ViolationKind::AnswerAfterDeadline { deadline: at(30) }]
    );
    let t = [
        requested(0),
        ev(TrailKind::Expired, at(30), req(), org()),
        answered(Answer::Objection, 31),
    ];
    assert_eq!(
        kinds(&t),
        [ViolationKind::AnswerAfterDeadline { deadline: at(30) }]
    );
}

#[test]
fn steps_out_of_order_are_reported() {
    let cases: Vec<(Vec<TrailEvent>, &str)> = vec![
        (
            vec![answered(Answer::Objection, 1)],
            "a step before the request",
        ),
        (vec![requested(0), requested(1)], "a second request"),
        (
            vec![requested(5), ev(TrailKind::Delivered, at(4), org(), req())],
            "time goes backwards",
        ),
        (
            vec![
                requested(0),
                answered(Answer::NoObjection, 1),
                answered(Answer::Objection, 2),
            ],
            "a second answer",
        ),
        (
            vec![
                requested(0),
                answered(Answer::NoObjection, 1),
                decided(Decision::Granted, Despite::None, 2),
                decided(Decision::Refused, Despite::None, 3),
            ],
            "a second decision",
        ),
        (
            vec![requested(0), ev(TrailKind::Expired, at(29), req(), org())],
            "an expiry before the deadline",
        ),
        (
            vec![
                requested(0),
                answered(Answer::Objection, 1),
                ev(
                    TrailKind::InfoSupplied { deadline: at(50) },
                    at(2),
                    req(),
                    org(),
                ),
            ],
            "information nobody asked for",
        ),
        (
            vec![requested(0), notice("CC-THIRD", 1)],
            "a notice before the decision",
        ),
        (
            vec![ev(
                TrailKind::Requested {
                    evidence: None,
                    deadline: at(0),
                },
                at(0),
                req(),
                org(),
            )],
            "a deadline not after the request",
        ),
    ];
    for (t, reason) in cases {
        assert!(
            kinds(&t).contains(&ViolationKind::OutOfOrder { reason }),
            "{reason}: {:?}",
            audit_trail(&t)
        );
    }
}

#[test]
fn steps_by_the_wrong_party_are_reported() {
    let t = [
        requested(0),
        ev(
            TrailKind::Answered {
                evidence: None,
                answer: Answer::NoObjection,
            },
            at(1),
            req(),
            org(),
        ),
    ];
    assert_eq!(
        kinds(&t),
        [ViolationKind::WrongParty {
            expected: org(),
            got: req()
        }]
    );
    let t = [
        requested(0),
        answered(Answer::NoObjection, 1),
        ev(
            TrailKind::Decided {
                decision: Decision::Granted,
                despite: Despite::None,
            },
            at(2),
            agency("CC-THIRD"),
            org(),
        ),
    ];
    assert!(matches!(kinds(&t)[..], [ViolationKind::WrongParty { .. }]));
    // Review s35-key L7: however many requests the keeper logs under the id first
    // (here nine, made to itself), a third party's decision on its consultation is
    // still placed on it and reported as a wrong party, not as a step before the
    // request (only the first 8 requesters were looked through).
    let mut padded: Vec<TrailEvent> = (0..9)
        .map(|i| {
            ev(
                TrailKind::Requested {
                    evidence: None,
                    deadline: at(30),
                },
                at(0),
                agency(&format!("PAD-{i}")),
                req(),
            )
        })
        .collect();
    padded.extend(t.clone());
    assert!(
        matches!(kinds(&padded)[..], [ViolationKind::WrongParty { .. }]),
        "{:?}",
        kinds(&padded)
    );
    // Nor one request invented under the id with the third party as origin (review
    // s36-qa L1: the step was placed on it, as a step addressed to another party).
    let mut invented = vec![ev(
        TrailKind::Requested {
            evidence: None,
            deadline: at(30),
        },
        at(0),
        agency("PAD-D"),
        agency("CC-THIRD"),
    )];
    invented.extend(t);
    assert!(
        matches!(kinds(&invented)[..], [ViolationKind::WrongParty { .. }]),
        "{:?}",
        kinds(&invented)
    );
}

#[test]
fn consultations_in_one_trail_are_audited_apart() {
    let other = ConsultationId([8; 16]);
    let mut early = decided(Decision::Refused, Despite::None, 3);
    early.consultation_id = other;
    let mut req2 = requested(1);
    req2.consultation_id = other;
    let t = [
        requested(0),
        req2,
        answered(Answer::NoObjection, 2),
        early,
        decided(Decision::Granted, Despite::None, 4),
    ];
    let v = audit_trail(&t);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!((v[0].consultation_id, v[0].index), (other, 3));
}

#[test]
fn the_summary_has_counts_and_timings_only() {
    let mut expired = requested(0);
    expired.consultation_id = ConsultationId([8; 16]);
    let mut exp = ev(TrailKind::Expired, at(30), req(), org());
    exp.consultation_id = ConsultationId([8; 16]);
    let t = [
        requested(0),
        expired,
        answered(Answer::Objection, 4),
        decided(Decision::Granted, Despite::Objection, 6),
        notice("BB-BAFA", 6),
        notice("CC-THIRD", 6),
        exp,
    ];
    let s = summarize(&t);
    assert_eq!(
        (s.consultations, s.open, s.answered, s.expired, s.decided),
        (2, 0, 0, 1, 1)
    );
    assert_eq!(s.granted_despite, 1);
    assert_eq!(s.violations, 0);
    assert_eq!(s.median_time_to_answer_ms, Some(4 * DAY));
    assert_eq!(s.median_time_to_decision_ms, Some(6 * DAY));
    let first = &s.timings[0];
    assert_eq!(first.consultation_id, ID);
    assert_eq!(first.state, State::Decided);
    assert_eq!(
        (first.time_to_answer_ms, first.time_to_decision_ms),
        (Some(4 * DAY), Some(6 * DAY))
    );
    assert_eq!((first.granted_despite, first.notices), (true, 2));
    assert_eq!(s.timings[1].state, State::Expired);
    assert_eq!(s.timings[1].time_to_answer_ms, None);
    // It serialises for the report.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["timings"][0]["state"], "decided");
}

#[test]
fn an_early_expiry_does_not_excuse_an_early_decision() {
    let t = [
        requested(0),
        ev(TrailKind::Expired, at(10), req(), org()),
        decided(Decision::Refused, Despite::None, 11),
    ];
    let v = kinds(&t);
    assert!(v.contains(&ViolationKind::OutOfOrder {
        reason: "an expiry before the deadline"
    }));
    assert!(v.contains(&ViolationKind::PrematureDecision { deadline: at(30) }));
}

fn late(answer: Answer, signed_day: u64, arrival: Timestamp) -> TrailEvent {
    ev(
        TrailKind::AnsweredLate {
            evidence: None,
            answer,
            signed_at: at(signed_day),
            arrived_at: None,
        },
        arrival,
        org(),
        req(),
    )
}

/// Finding 13: the requester decided on silence, then the origin's answer, signed
/// before the deadline, arrived. The decision is not reported as taken before the
/// answer, nor the answer as after the deadline; an undecided one becomes answered.
#[test]
fn a_late_answer_signed_in_time_passes_and_a_decision_on_silence_before_it_stands() {
    let arrival = Timestamp(at(30).0 + 3_600_000);
    let decided_on_silence = vec![
        requested(0),
        ev(TrailKind::Expired, at(30), req(), org()),
        decided(Decision::Refused, Despite::None, 30),
        late(Answer::Objection, 29, arrival),
    ];
    assert_eq!(kinds(&decided_on_silence), vec![]);
    assert_eq!(
        summarize(&decided_on_silence).timings[0].state,
        State::Decided
    );
    // Recorded as an ordinary answer it would read as out of order.
    let mut as_answer = decided_on_silence.clone();
    as_answer[3] = ev(
        TrailKind::Answered {
            evidence: None,
            answer: Answer::Objection,
        },
        arrival,
        org(),
        req(),
    );
    assert!(!kinds(&as_answer).is_empty());
    // A second late answer is out of order.
    let mut twice = decided_on_silence.clone();
    twice.push(late(Answer::NoObjection, 29, Timestamp(arrival.0 + 1)));
    assert!(matches!(
        kinds(&twice)[..],
        [ViolationKind::OutOfOrder { .. }]
    ));

    // Undecided: answered, and a grant then goes against the objection.
    let undecided = vec![
        requested(0),
        ev(TrailKind::Expired, at(30), req(), org()),
        late(Answer::Objection, 29, arrival),
        ev(
            TrailKind::Decided {
                decision: Decision::Granted,
                despite: Despite::Objection,
            },
            Timestamp(arrival.0 + 1),
            req(),
            org(),
        ),
    ];
    assert!(matches!(
        kinds(&undecided)[..],
        [ViolationKind::GrantWithoutNotice {
            despite: Despite::Objection
        }]
    ));
    let mut notified = undecided.clone();
    notified.push(ev(
        TrailKind::NoticeSent,
        Timestamp(arrival.0 + 1),
        req(),
        agency("CC-THIRD"),
    ));
    assert_eq!(kinds(&notified), vec![]);
}

/// A late answer signed after the deadline (beyond the skew), or arriving after the
/// window, is reported as an answer after the deadline.
#[test]
fn a_late_answer_signed_or_arriving_too_late_is_reported() {
    for (signed_day, arrival) in [(31, Timestamp(at(31).0 + 1)), (29, at(40))] {
        let trail = vec![
            requested(0),
            ev(TrailKind::Expired, at(30), req(), org()),
            late(Answer::Objection, signed_day, arrival),
        ];
        assert!(
            matches!(
                kinds(&trail)[..],
                [ViolationKind::AnswerAfterDeadline { .. }]
            ),
            "{:?}",
            kinds(&trail)
        );
    }
}

/// A refusal by the origin, before the deadline: no violation. It is no veto
/// (review s31-consult M1): a decision before the deadline is premature, a grant
/// after it is despite an expired denial and needs a notice; a refusal taken after
/// the deadline, or whose reason the trail contradicts, is reported.
#[test]
fn a_refusal_by_the_origin_is_taken_before_the_deadline_and_is_no_veto() {
    let refusal = |reason, day| {
        ev(
            TrailKind::RefusedByOrigin {
                evidence: None,
                reason,
            },
            at(day),
            org(),
            req(),
        )
    };
    let refused = refusal(wlnode_consult::RefusalReason::DeadlineTooShort, 1);
    let trail = vec![requested(0), refused.clone()];
    assert_eq!(kinds(&trail), vec![]);
    let s = summarize(&trail);
    assert_eq!(
        (s.refused_by_origin, s.timings[0].state),
        (1, State::RefusedByOrigin)
    );
    // Before the deadline: premature.
    let mut early = trail.clone();
    early.push(decided(Decision::Refused, Despite::None, 10));
    assert!(matches!(
        kinds(&early)[..],
        [ViolationKind::PrematureDecision { .. }]
    ));
    // After it: a grant despite an expired denial, with a notice, passes; without
    // one it is reported.
    let mut then = trail.clone();
    then.push(decided(Decision::Granted, Despite::ExpiredDenial, 31));
    assert!(matches!(
        kinds(&then)[..],
        [ViolationKind::GrantWithoutNotice { .. }]
    ));
    then.push(ev(TrailKind::NoticeSent, at(31), req(), org()));
    assert_eq!(kinds(&then), vec![]);
    // Taken after the deadline, or with a reason the trail contradicts.
    for bad in [
        refusal(wlnode_consult::RefusalReason::TooManyOpen, 31),
        refusal(wlnode_consult::RefusalReason::NotOurEntry, 1),
        refusal(wlnode_consult::RefusalReason::DeadlineTooLong, 1),
    ] {
        let t = vec![requested(0), bad];
        assert!(
            matches!(kinds(&t)[..], [ViolationKind::OutOfOrder { .. }]),
            "{:?}",
            kinds(&t)
        );
    }
    let mut forged = vec![requested(0), refused];
    forged[1].from = agency("CC-THIRD");
    assert!(matches!(
        kinds(&forged)[..],
        [ViolationKind::WrongParty { .. }]
    ));
}

/// Review s31-consult L1: a late answer applied after the window closed (a catch-up)
/// is judged by its arrival, which the step carries; an arrival after the window,
/// or claimed after it was applied, is still reported.
#[test]
fn a_late_answer_is_judged_at_its_arrival_not_when_it_was_applied() {
    let applied = at(33);
    for (arrived, ok) in [(at(30).0 + 3_600_000, true), (at(31).0 + 3_600_000, false)] {
        let mut step = late(Answer::Objection, 29, applied);
        if let TrailKind::AnsweredLate { arrived_at, .. } = &mut step.kind {
            *arrived_at = Some(Timestamp(arrived));
        }
        let trail = vec![
            requested(0),
            ev(TrailKind::Expired, at(30), req(), org()),
            step,
        ];
        assert_eq!(
            kinds(&trail).is_empty(),
            ok,
            "{arrived}: {:?}",
            kinds(&trail)
        );
    }
}

/// Review s31-consult M2 (the per-log part): an `answered_late` step before the
/// deadline is never written by an honest node (a late answer is recorded only
/// once the round expired): reported.
#[test]
fn a_late_answer_recorded_before_the_deadline_is_reported() {
    let trail = vec![requested(0), late(Answer::NoObjection, 29, at(29))];
    assert!(
        matches!(kinds(&trail)[..], [ViolationKind::OutOfOrder { .. }]),
        "{:?}",
        kinds(&trail)
    );
}
