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
        TrailKind::Requested { deadline: at(30) },
        at(day),
        req(),
        org(),
    )
}

fn answered(answer: Answer, day: u64) -> TrailEvent {
    ev(TrailKind::Answered { answer }, at(day), org(), req())
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
                TrailKind::Requested { deadline: at(0) },
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
