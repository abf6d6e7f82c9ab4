//! Every transition of the consultation state machine, on both sides, and every
//! illegal move: each refused move leaves the consultation unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::*;
use wlnode_consult::{
    Action, Answer, ConsultAnswer, ConsultDecision, ConsultError, ConsultInfo, ConsultRefusal,
    Consultation, ConsultationId, DeadlineBounds, DeadlineError, Decision, Despite,
    LATE_ANSWER_WINDOW, MAX_ROUNDS, Payload, PayloadError, RefusalReason, Role, RosterTerms,
    SilenceMeans, State, TIMING_SKEW, deadline_after, notice_recipients, parse_deadline,
    refusal_reason, tick_all,
};
use wlnode_crypto::{AgencyCode, EntryId, Timestamp};

const SILENCES: [SilenceMeans; 2] = [SilenceMeans::NoObjection, SilenceMeans::Objection];

/// The origin answers; the requester records it. Returns the answer sent.
fn answer_both(
    r: &mut Consultation,
    o: &mut Consultation,
    answer: Answer,
    now: Timestamp,
) -> ConsultAnswer {
    let reason = (answer != Answer::NoObjection).then(|| "because".to_string());
    let actions = o.answer(answer, reason, now).unwrap();
    let (to, payload) = only_send(&actions);
    assert_eq!(to, &req());
    let Payload::ConsultAnswer(a) = payload else {
        panic!("{payload:?}")
    };
    r.receive_answer(&org(), a, now, now).unwrap();
    a.clone()
}

fn decision_of(actions: &[Action]) -> ConsultDecision {
    match actions[0].payload() {
        Payload::ConsultDecision(d) => d.clone(),
        p => panic!("{p:?}"),
    }
}

/// Runs `f` on a clone, expects the error, and checks the original is unchanged by
/// running it on the original too.
fn refused<T: std::fmt::Debug>(
    c: &mut Consultation,
    f: impl Fn(&mut Consultation) -> Result<T, ConsultError>,
) -> ConsultError {
    let before = c.clone();
    let e = f(c).unwrap_err();
    assert_eq!(*c, before, "a refused move changed the consultation ({e})");
    e
}

#[test]
fn a_request_opens_the_consultation_and_goes_to_the_origin() {
    let (r, actions) = Consultation::request(new_request(SilenceMeans::Objection), T0).unwrap();
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.role(), Role::Requester);
    assert_eq!(r.round(), 1);
    assert_eq!(r.silence(), SilenceMeans::Objection);
    assert_eq!(r.deadline(), at(30));
    let (to, payload) = only_send(&actions);
    assert_eq!(to, &org());
    assert_eq!(payload, &Payload::ConsultRequest(r.request_payload()));
    assert_eq!(payload.kind(), "consult_request");
}

#[test]
fn the_origin_opens_its_side_with_the_same_terms() {
    for silence in SILENCES {
        let (r, o) = pair(silence);
        assert_eq!(o.role(), Role::Origin);
        assert_eq!(o.state(), State::Open);
        assert_eq!(
            (o.id(), o.requester(), o.origin()),
            (r.id(), r.requester(), r.origin())
        );
        assert_eq!(o.request_payload(), r.request_payload());
        assert_eq!(o.silence(), silence);
    }
}

#[test]
fn bad_requests_are_refused() {
    let mut n = new_request(SilenceMeans::Objection);
    n.origin = req();
    assert!(matches!(
        Consultation::request(n, T0),
        Err(ConsultError::SelfConsultation(_))
    ));
    let mut n = new_request(SilenceMeans::Objection);
    n.deadline = T0;
    assert!(matches!(
        Consultation::request(n, T0),
        Err(ConsultError::BadDeadline { .. })
    ));
    let mut n = new_request(SilenceMeans::Objection);
    n.deadline = at(366);
    assert!(matches!(
        Consultation::request(n, T0),
        Err(ConsultError::BadDeadline { .. })
    ));
    let mut n = new_request(SilenceMeans::Objection);
    n.details.items.clear();
    assert!(matches!(
        Consultation::request(n, T0),
        Err(ConsultError::Invalid(PayloadError::Invalid { .. }))
    ));
    // At the origin: from itself, or a deadline beyond 365 days and the clock skew.
    let (r, _) = pair(SilenceMeans::Objection);
    let body = r.request_payload();
    assert!(matches!(
        Consultation::receive_request(
            &org(),
            &org(),
            body.clone(),
            SilenceMeans::Objection,
            MIN,
            T0
        ),
        Err(ConsultError::SelfConsultation(_))
    ));
    let mut far = body;
    far.deadline = at(367);
    assert!(matches!(
        Consultation::receive_request(&org(), &req(), far, SilenceMeans::Objection, MIN, T0),
        Err(ConsultError::BadDeadline { .. })
    ));
}

/// A request whose deadline passed before it arrived is refused (it used to open
/// and expire at once, which let a requester skip the origin's answer): see the next
/// test.
#[test]
fn a_request_arriving_after_its_deadline_is_refused() {
    let (r, _) = pair(SilenceMeans::Objection);
    let e = Consultation::receive_request(
        &org(),
        &req(),
        r.request_payload(),
        SilenceMeans::Objection,
        MIN,
        at(31),
    )
    .unwrap_err();
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
}

/// Review s30-consult2 H2 / s30-consult M4: the origin holds a request and a round
/// of further information to the roster's shortest deadline (less the five minutes
/// of clock skew), whatever the requester's API did.
#[test]
fn the_origin_refuses_a_deadline_shorter_than_the_rosters_minimum() {
    let (r, _) = pair(SilenceMeans::Objection);
    let mut body = r.request_payload();
    body.deadline = Timestamp(at(1).0 + 1);
    let e = Consultation::receive_request(
        &org(),
        &req(),
        body.clone(),
        SilenceMeans::Objection,
        MIN,
        at(1),
    )
    .unwrap_err();
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
    // Exactly the minimum less the skew is accepted.
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap();
    body.deadline = Timestamp(at(2).0 - skew);
    Consultation::receive_request(&org(), &req(), body, SilenceMeans::Objection, MIN, at(1))
        .unwrap();
    // A round of information with a 1 ms deadline.
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::InfoRequested, at(2));
    let info = ConsultInfo {
        consultation_id: o.id(),
        round: 2,
        deadline: Timestamp(at(3).0 + 1),
        text: "more".into(),
        details: None,
    };
    let e = refused(&mut o, |c| c.receive_info(&req(), &info, MIN, at(3)));
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
    // Review of the fixes, M1: under a one-second minimum (a demo roster), a deadline
    // already past is still refused (`now + min - skew` lay in the past).
    let (r, _) = pair(SilenceMeans::Objection);
    let mut body = r.request_payload();
    body.deadline = Timestamp(at(1).0 - 60_000);
    let e = Consultation::receive_request(
        &org(),
        &req(),
        body,
        SilenceMeans::Objection,
        Duration::from_secs(1),
        at(1),
    )
    .unwrap_err();
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
}

#[test]
fn an_objection_is_answered_and_recorded_on_both_sides() {
    let (mut r, mut o) = pair(SilenceMeans::NoObjection);
    let a = answer_both(&mut r, &mut o, Answer::Objection, at(5));
    assert_eq!(a.round, 1);
    for c in [&r, &o] {
        assert_eq!(c.state(), State::Answered);
        assert_eq!(c.current_answer(), Some(Answer::Objection));
        assert_eq!(c.deemed_answer(), Some(Answer::Objection));
        assert_eq!(c.answers().len(), 1);
        assert_eq!(c.answers()[0].reason.as_deref(), Some("because"));
    }
}

#[test]
fn answering_is_the_origins_alone_and_once() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    // At the requester's side.
    let e = refused(&mut r, |c| c.answer(Answer::NoObjection, None, at(2)));
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
    // An answer from someone other than the origin.
    let a = ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: r.id(),
        round: 1,
        answer: Answer::NoObjection,
        reason: None,
    };
    let e = refused(&mut r, |c| {
        c.receive_answer(&agency("CC-THIRD"), &a, at(2), at(2))
    });
    assert!(matches!(e, ConsultError::NotOrigin { .. }), "{e}");
    // The requester itself forging the origin's answer at the origin's side.
    let e = refused(&mut o, |c| c.receive_answer(&req(), &a, at(2), at(2)));
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
    // Without the reason an objection needs.
    let e = refused(&mut o, |c| c.answer(Answer::Objection, None, at(2)));
    assert!(matches!(e, ConsultError::Invalid(_)), "{e}");
    // Twice.
    answer_both(&mut r, &mut o, Answer::NoObjection, at(3));
    let e = refused(&mut o, |c| {
        c.answer(Answer::Objection, Some("late".into()), at(4))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    let e = refused(&mut r, |c| c.receive_answer(&org(), &a, at(4), at(4)));
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
}

/// Review s33-consult M1/L4: an answer that arrives in time but was signed before
/// its round was opened here (beyond the skew) is refused: a backdated answer
/// placed the answer before the origin's current log began, so its omission from
/// that log proved nothing. One signed within the skew before is taken.
#[test]
fn an_in_time_answer_signed_before_its_round_opened_is_refused() {
    let (mut r, _) = pair(SilenceMeans::Objection);
    let id = r.id();
    let backdated = |before: u64| ConsultAnswer {
        receipt: None,
        answered_at: Some(Timestamp(T0.0 - before)),
        consultation_id: id,
        round: 1,
        answer: Answer::Objection,
        reason: Some("because".into()),
    };
    let year = backdated(365 * DAY);
    let e = refused(&mut r, |c| c.receive_answer(&org(), &year, at(2), at(2)));
    assert_eq!(
        e,
        ConsultError::AnswerBeforeRound {
            signed_at: Timestamp(T0.0 - 365 * DAY),
            opened: T0,
        }
    );
    let skew = u64::try_from(TIMING_SKEW.as_millis()).unwrap();
    let within = backdated(skew / 2);
    r.receive_answer(&org(), &within, at(2), at(2)).unwrap();
    assert_eq!(r.state(), State::Answered);
}

#[test]
fn an_answer_for_another_consultation_or_round_is_refused() {
    let (mut r, _) = pair(SilenceMeans::Objection);
    let other = ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: ConsultationId([9; 16]),
        round: 1,
        answer: Answer::NoObjection,
        reason: None,
    };
    let e = refused(&mut r, |c| c.receive_answer(&org(), &other, at(2), at(2)));
    assert!(matches!(e, ConsultError::Mismatch { .. }), "{e}");
    let stale = ConsultAnswer {
        answered_at: None,
        consultation_id: r.id(),
        round: 2,
        ..other
    };
    let e = refused(&mut r, |c| c.receive_answer(&org(), &stale, at(2), at(2)));
    assert_eq!(
        e,
        ConsultError::StaleRound {
            expected: 1,
            got: 2
        }
    );
}

#[test]
fn an_answer_after_the_deadline_is_refused_and_the_consultation_expires() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    let e = o.answer(Answer::NoObjection, None, at(30)).unwrap_err();
    assert_eq!(e, ConsultError::AnswerAfterDeadline { deadline: at(30) });
    assert_eq!(o.state(), State::Expired);
    let a = ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: r.id(),
        round: 1,
        answer: Answer::NoObjection,
        reason: None,
    };
    let e = r.receive_answer(&org(), &a, at(31), at(31)).unwrap_err();
    assert_eq!(e, ConsultError::AnswerAfterDeadline { deadline: at(30) });
    assert_eq!(r.state(), State::Expired);
    assert!(r.answers().is_empty());
    // Once expired, a later answer stays refused.
    let e = refused(&mut r, |c| c.receive_answer(&org(), &a, at(32), at(32)));
    assert!(matches!(e, ConsultError::AnswerAfterDeadline { .. }), "{e}");
}

#[test]
fn tick_expires_open_consultations_at_the_deadline_only() {
    for silence in SILENCES {
        let (mut r, mut o) = pair(silence);
        assert!(!r.tick(at(29)));
        assert_eq!(r.state(), State::Open);
        assert!(r.tick(at(30)));
        assert_eq!(r.state(), State::Expired);
        assert_eq!(r.expired_at(), Some(at(30)));
        assert!(!r.tick(at(31)), "expires once");
        assert_eq!(r.expired_at(), Some(at(30)));
        // The silence rule is shown as the answer.
        assert_eq!(r.deemed_answer(), Some(silence.as_answer()));
        assert_eq!(r.current_answer(), None);
        // An answered consultation does not expire.
        o.answer(Answer::NoObjection, None, at(2)).unwrap();
        assert!(!o.tick(at(100)));
        assert_eq!(o.state(), State::Answered);
    }
}

#[test]
fn tick_all_expires_every_open_consultation_past_its_deadline() {
    let (mut a, _) = pair(SilenceMeans::Objection);
    let mut n = new_request(SilenceMeans::Objection);
    n.id = ConsultationId([8; 16]);
    n.deadline = at(60);
    let (mut b, _) = Consultation::request(n, T0).unwrap();
    let expired = tick_all([&mut a, &mut b], at(45));
    assert_eq!(expired, vec![a.id()]);
    assert_eq!((a.state(), b.state()), (State::Expired, State::Open));
    assert!(tick_all([&mut a, &mut b], at(45)).is_empty());
}

#[test]
fn info_requested_opens_another_round_and_the_origin_answers_again() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::InfoRequested, at(3));
    assert_eq!(r.current_answer(), Some(Answer::InfoRequested));
    // Waiting for the requester: the deadline is suspended.
    assert!(!r.tick(at(31)) && !o.tick(at(31)));
    let mut d = details();
    d.end_user = "Example Industrial Ltd (Sharjah branch)".into();
    let actions = r
        .supply_info(
            "End-use statement attached.".into(),
            Some(d.clone()),
            at(45),
            at(31),
        )
        .unwrap();
    let (to, payload) = only_send(&actions);
    assert_eq!(to, &org());
    let Payload::ConsultInfo(info) = payload else {
        panic!("{payload:?}")
    };
    assert_eq!((info.round, info.deadline), (2, at(45)));
    o.receive_info(&req(), info, MIN, at(31)).unwrap();
    for c in [&r, &o] {
        assert_eq!(c.state(), State::Open);
        assert_eq!(c.round(), 2);
        assert_eq!(c.deadline(), at(45));
        assert_eq!(c.details(), &d);
        assert_eq!(c.infos().len(), 1);
        assert_eq!(c.current_answer(), None);
    }
    let a = answer_both(&mut r, &mut o, Answer::NoObjection, at(33));
    assert_eq!(a.round, 2);
    let actions = r.decide(Decision::Granted, None, &[org()], at(34)).unwrap();
    let (to, _) = only_send(&actions);
    assert_eq!(to, &org());
    assert_eq!(decision_of(&actions).despite, Despite::None);
    o.receive_decision(&req(), &decision_of(&actions), at(34))
        .unwrap();
    assert_eq!(o.state(), State::Decided);
    assert_eq!(r.answers().len(), 2);
}

#[test]
fn information_moves_are_checked() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    // Nobody asked.
    let e = refused(&mut r, |c| c.supply_info("x".into(), None, at(40), at(2)));
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    answer_both(&mut r, &mut o, Answer::InfoRequested, at(3));
    // At the origin's side, with a past deadline, too far ahead.
    let e = refused(&mut o, |c| c.supply_info("x".into(), None, at(40), at(4)));
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
    let e = refused(&mut r, |c| c.supply_info("x".into(), None, at(4), at(4)));
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
    let e = refused(&mut r, |c| c.supply_info("x".into(), None, at(400), at(4)));
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
    let e = refused(&mut r, |c| {
        c.supply_info("bad\u{0}".into(), None, at(40), at(4))
    });
    assert!(matches!(e, ConsultError::Invalid(_)), "{e}");
    // From someone other than the requester, or for the wrong round.
    let info = ConsultInfo {
        consultation_id: o.id(),
        round: 2,
        deadline: at(40),
        text: "more".into(),
        details: None,
    };
    let e = refused(&mut o, |c| {
        c.receive_info(&agency("CC-THIRD"), &info, MIN, at(4))
    });
    assert!(matches!(e, ConsultError::NotRequester { .. }), "{e}");
    let stale = ConsultInfo {
        round: 3,
        ..info.clone()
    };
    let e = refused(&mut o, |c| c.receive_info(&req(), &stale, MIN, at(4)));
    assert_eq!(
        e,
        ConsultError::StaleRound {
            expected: 2,
            got: 3
        }
    );
    // A grant must wait for the information; a refusal need not.
    let e = refused(&mut r, |c| c.decide(Decision::Granted, None, &[], at(5)));
    assert_eq!(e, ConsultError::InfoOutstanding);
    let mut r2 = r.clone();
    let actions = r2.decide(Decision::Refused, None, &[], at(5)).unwrap();
    assert_eq!(only_send(&actions).0, &org());
    assert_eq!(r2.state(), State::Decided);
}

#[test]
fn a_consultation_has_at_most_max_rounds() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    let mut day = 2;
    for round in 1..=MAX_ROUNDS {
        assert_eq!(r.round(), round);
        answer_both(&mut r, &mut o, Answer::InfoRequested, at(day));
        day += 1;
        if round == MAX_ROUNDS {
            break;
        }
        let actions = r
            .supply_info("more".into(), None, at(day + 20), at(day))
            .unwrap();
        let Payload::ConsultInfo(info) = actions[0].payload() else {
            panic!()
        };
        o.receive_info(&req(), info, MIN, at(day)).unwrap();
    }
    let e = refused(&mut r, |c| {
        c.supply_info("more".into(), None, at(day + 20), at(day))
    });
    assert_eq!(e, ConsultError::TooManyRounds { max: MAX_ROUNDS });
    let info = ConsultInfo {
        consultation_id: o.id(),
        round: MAX_ROUNDS + 1,
        deadline: at(day + 20),
        text: "more".into(),
        details: None,
    };
    let e = refused(&mut o, |c| c.receive_info(&req(), &info, MIN, at(day)));
    assert_eq!(e, ConsultError::TooManyRounds { max: MAX_ROUNDS });
}

#[test]
fn no_decision_before_the_answer_or_the_deadline() {
    let (mut r, _) = pair(SilenceMeans::NoObjection);
    for d in [Decision::Granted, Decision::Refused] {
        let e = refused(&mut r, |c| c.decide(d, None, &[org()], at(29)));
        assert_eq!(e, ConsultError::PrematureDecision { deadline: at(30) });
    }
}

#[test]
fn deciding_is_the_requesters_alone_and_once() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::NoObjection, at(2));
    let e = refused(&mut o, |c| c.decide(Decision::Granted, None, &[], at(3)));
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
    let e = refused(&mut r, |c| {
        c.decide(Decision::Granted, Some("\u{7}".into()), &[], at(3))
    });
    assert!(matches!(e, ConsultError::Invalid(_)), "{e}");
    r.decide(Decision::Granted, Some("No objection.".into()), &[], at(3))
        .unwrap();
    assert_eq!(r.state(), State::Decided);
    let d = r.decision().unwrap();
    assert_eq!(
        (d.decision, d.despite, d.at),
        (Decision::Granted, Despite::None, at(3))
    );
    let e = refused(&mut r, |c| c.decide(Decision::Refused, None, &[], at(4)));
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    // Nothing moves a decided consultation.
    assert!(!r.tick(at(100)));
    assert_eq!(r.state(), State::Decided);
}

#[test]
fn a_grant_despite_an_objection_notifies_every_admitted_member_and_no_one_else() {
    let (mut r, mut o) = pair(SilenceMeans::NoObjection);
    answer_both(&mut r, &mut o, Answer::Objection, at(2));
    let admitted = [
        agency("DD-FOUR"),
        req(),
        org(),
        agency("CC-THIRD"),
        agency("DD-FOUR"),
    ];
    let actions = r
        .decide(
            Decision::Granted,
            Some("National interest.".into()),
            &admitted,
            at(3),
        )
        .unwrap();
    let to: Vec<&AgencyCode> = actions
        .iter()
        .map(|a| match a {
            Action::SendNotice { to, .. } => to,
            Action::Send { .. } => panic!("a plain send: {a:?}"),
        })
        .collect();
    assert_eq!(to, [&org(), &agency("CC-THIRD"), &agency("DD-FOUR")]);
    let d = decision_of(&actions);
    assert_eq!(
        (d.decision, d.despite),
        (Decision::Granted, Despite::Objection)
    );
    assert!(actions.iter().all(|a| a.payload() == actions[0].payload()));
    assert_eq!(r.decision().unwrap().despite, Despite::Objection);
    // The origin records it as its decision.
    o.receive_decision(&req(), &d, at(3)).unwrap();
    assert_eq!(o.decision().unwrap().despite, Despite::Objection);
}

#[test]
fn a_refusal_or_a_grant_without_objection_goes_to_the_origin_only() {
    for (answer, decision) in [
        (Answer::Objection, Decision::Refused),
        (Answer::NoObjection, Decision::Granted),
        (Answer::NoObjection, Decision::Refused),
    ] {
        let (mut r, mut o) = pair(SilenceMeans::Objection);
        answer_both(&mut r, &mut o, answer, at(2));
        let actions = r
            .decide(decision, None, &[org(), agency("CC-THIRD")], at(3))
            .unwrap();
        assert_eq!(only_send(&actions).0, &org());
        assert_eq!(decision_of(&actions).despite, Despite::None);
    }
}

#[test]
fn any_grant_on_an_expired_consultation_is_despite_the_denial() {
    for silence in SILENCES {
        let (mut r, _) = pair(silence);
        // Not ticked: deciding past the deadline expires it first.
        let actions = r
            .decide(
                Decision::Granted,
                None,
                &[org(), agency("CC-THIRD")],
                at(31),
            )
            .unwrap();
        assert_eq!(r.expired_at(), Some(at(31)));
        assert_eq!(r.decision().unwrap().despite, Despite::ExpiredDenial);
        assert_eq!(r.deemed_answer(), Some(silence.as_answer()));
        let to: Vec<&AgencyCode> = actions
            .iter()
            .map(|a| {
                assert!(matches!(a, Action::SendNotice { .. }));
                a.to()
            })
            .collect();
        assert_eq!(to, [&org(), &agency("CC-THIRD")]);
        // A refusal of an expired one notifies only the origin.
        let (mut r, _) = pair(silence);
        r.tick(at(30));
        let actions = r
            .decide(Decision::Refused, None, &[agency("CC-THIRD")], at(31))
            .unwrap();
        assert_eq!(only_send(&actions).0, &org());
    }
}

#[test]
fn notice_recipients_never_leave_the_admitted_members() {
    let admitted = [agency("CC-THIRD"), req(), agency("CC-THIRD")];
    let to = notice_recipients(&req(), &org(), &admitted);
    assert_eq!(to, [org(), agency("CC-THIRD")]);
    assert_eq!(notice_recipients(&req(), &org(), &[]), [org()]);
    assert_eq!(notice_recipients(&req(), &org(), &[req()]), [org()]);
}

#[test]
fn the_origin_checks_the_decision_it_is_sent() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    let d = ConsultDecision {
        consultation_id: o.id(),
        entry_id: o.entry_id(),
        decision: Decision::Granted,
        reason: None,
        despite: Despite::ExpiredDenial,
    };
    // Before the answer and the deadline by the origin's clock.
    let e = refused(&mut o, |c| c.receive_decision(&req(), &d, at(10)));
    assert_eq!(e, ConsultError::PrematureDecision { deadline: at(30) });
    // From someone else; about another entry; at the requester's side.
    let e = refused(&mut o, |c| {
        c.receive_decision(&agency("CC-THIRD"), &d, at(31))
    });
    assert!(matches!(e, ConsultError::NotRequester { .. }), "{e}");
    let other = ConsultDecision {
        entry_id: EntryId([5; 16]),
        ..d.clone()
    };
    let e = refused(&mut o, |c| c.receive_decision(&req(), &other, at(31)));
    assert!(matches!(e, ConsultError::Mismatch { .. }), "{e}");
    let e = refused(&mut r, |c| c.receive_decision(&req(), &d, at(31)));
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
    // After the deadline: recorded (expiring first), once.
    o.receive_decision(&req(), &d, at(31)).unwrap();
    assert_eq!(o.state(), State::Decided);
    assert_eq!(o.expired_at(), Some(at(31)));
    let e = refused(&mut o, |c| c.receive_decision(&req(), &d, at(32)));
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
}

/// Review of issue 21, finding 18: the origin recorded whatever `despite` the
/// requester's decision claimed. A requester granting against the origin's objection
/// while calling it `none` (so notifying nobody) left the origin's record saying the
/// same. The origin now records its own view, and the claim beside it.
#[test]
fn the_origin_records_what_a_grant_went_against_by_its_own_view() {
    let (mut r, mut o) = pair(SilenceMeans::NoObjection);
    answer_both(&mut r, &mut o, Answer::Objection, at(2));
    let hidden = ConsultDecision {
        consultation_id: o.id(),
        entry_id: o.entry_id(),
        decision: Decision::Granted,
        reason: None,
        despite: Despite::None,
    };
    o.receive_decision(&req(), &hidden, at(3)).unwrap();
    let d = o.decision().unwrap();
    assert_eq!(d.despite, Despite::Objection);
    assert_eq!(d.claimed_despite, Some(Despite::None));
    assert_eq!(o.view().despite, Despite::Objection);
    // An overstated claim is not taken either: a grant after "no objection" goes
    // against nothing.
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::NoObjection, at(2));
    let claim = ConsultDecision {
        consultation_id: o.id(),
        entry_id: o.entry_id(),
        decision: Decision::Granted,
        reason: None,
        despite: Despite::ExpiredDenial,
    };
    o.receive_decision(&req(), &claim, at(3)).unwrap();
    let d = o.decision().unwrap();
    assert_eq!(d.despite, Despite::None);
    assert_eq!(d.claimed_despite, Some(Despite::ExpiredDenial));
    // An honest claim is recorded as it is, with nothing beside it.
    let (mut r, mut o) = pair(SilenceMeans::NoObjection);
    answer_both(&mut r, &mut o, Answer::Objection, at(2));
    let actions = r.decide(Decision::Granted, None, &[], at(3)).unwrap();
    o.receive_decision(&req(), &decision_of(&actions), at(3))
        .unwrap();
    assert_eq!(o.decision().unwrap().despite, Despite::Objection);
    assert_eq!(o.decision().unwrap().claimed_despite, None);
}

/// Review of issue 21, finding 13 (the origin's side), with review s30-consult2 M1
/// and H2: a decision before the origin's deadline is premature here however little
/// early (the runtime holds one within the five-minute `TIMING_SKEW` and applies it
/// once the deadline passed); applied then, it keeps its real arrival time beside
/// the time it was recorded, never back-dated to the deadline.
#[test]
fn a_decision_just_before_the_deadline_is_applied_after_it_with_its_real_arrival() {
    let skew = u64::try_from(wlnode_consult::TIMING_SKEW.as_millis()).unwrap();
    let (_, mut o) = pair(SilenceMeans::Objection);
    let d = ConsultDecision {
        consultation_id: o.id(),
        entry_id: o.entry_id(),
        decision: Decision::Granted,
        reason: None,
        despite: Despite::ExpiredDenial,
    };
    let behind = Timestamp(at(30).0 - skew / 2);
    let e = refused(&mut o, |c| c.receive_decision(&req(), &d, behind));
    assert_eq!(e, ConsultError::PrematureDecision { deadline: at(30) });
    let applied = Timestamp(at(30).0 + 1);
    o.receive_held_decision(&req(), &d, behind, applied)
        .unwrap();
    assert_eq!(o.expired_at(), Some(applied));
    let rec = o.decision().unwrap();
    assert_eq!(rec.at, applied, "recorded when applied, after the deadline");
    assert_eq!(rec.received_at, Some(behind), "the real arrival is kept");
    assert_eq!(rec.despite, Despite::ExpiredDenial);
    assert_eq!(rec.claimed_despite, None);
    // Review s30-consult2 H2: half an hour early is premature too.
    let (_, mut o) = pair(SilenceMeans::Objection);
    let half_hour_early = Timestamp(at(30).0 - 30 * 60 * 1000);
    let e = refused(&mut o, |c| c.receive_decision(&req(), &d, half_hour_early));
    assert_eq!(e, ConsultError::PrematureDecision { deadline: at(30) });
}

#[test]
fn a_consultation_survives_a_store_round_trip() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::Objection, at(2));
    let json = serde_json::to_string(&r).unwrap();
    let back: Consultation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn deadlines_parse_within_bounds() {
    let b = DeadlineBounds::DEFAULT;
    assert_eq!(
        parse_deadline("30d", b).unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(
        parse_deadline("2w", b).unwrap(),
        Duration::from_secs(14 * 86_400)
    );
    assert_eq!(
        parse_deadline("24h", b).unwrap(),
        Duration::from_secs(86_400)
    );
    assert_eq!(
        parse_deadline("365d", b).unwrap(),
        Duration::from_secs(365 * 86_400)
    );
    for bad in ["30", "d", "30x", "-1d", "1.5d", "30 d", "", "9999999999d"] {
        assert!(
            matches!(parse_deadline(bad, b), Err(DeadlineError::Syntax(_))),
            "{bad}"
        );
    }
    for out in ["0d", "23h", "366d", "53w", "999999999w"] {
        assert!(
            matches!(
                parse_deadline(out, b),
                Err(DeadlineError::OutOfBounds { .. })
            ),
            "{out}"
        );
    }
    // A test federation may allow seconds, never more than 365 days.
    let test = DeadlineBounds {
        min: Duration::from_secs(1),
        max: Duration::from_secs(10 * 365 * 86_400),
    };
    assert_eq!(parse_deadline("5s", test).unwrap(), Duration::from_secs(5));
    assert!(parse_deadline("366d", test).is_err());
    assert_eq!(
        deadline_after(T0, Duration::from_secs(86_400)),
        Timestamp(T0.0 + DAY)
    );
}

#[test]
fn the_view_shows_the_answer_silence_gives_and_the_decision() {
    let (mut r, _) = pair(SilenceMeans::Objection);
    let v = r.view();
    assert_eq!(
        (v.state, v.answer, v.answer_by_silence),
        (State::Open, None, false)
    );
    assert_eq!(
        (v.origin, v.requester, v.role),
        (org(), req(), Role::Requester)
    );
    r.decide(Decision::Granted, None, &[org()], at(31)).unwrap();
    let v = r.view();
    assert_eq!(v.state, State::Decided);
    assert_eq!(
        (v.answer, v.answer_by_silence),
        (Some(Answer::Objection), true)
    );
    assert_eq!(
        (v.decision, v.despite),
        (Some(Decision::Granted), Despite::ExpiredDenial)
    );
    let json = serde_json::to_value(&v).unwrap();
    for key in [
        "consultation_id",
        "entry_id",
        "origin",
        "requester",
        "reference",
        "state",
        "deadline",
        "answer",
        "decision",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["state"], "decided");
    assert_eq!(json["silence"], "objection");
}

#[cfg(feature = "openapi")]
#[test]
fn the_json_types_have_openapi_schemas() {
    use utoipa::PartialSchema;
    let schema = serde_json::to_value(wlnode_consult::TransactionDetails::schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "items",
        "end_user",
        "consignee",
        "destination_country",
        "value",
        "free_text",
    ] {
        assert!(props.contains_key(key), "{key}: {schema}");
    }
    let view = serde_json::to_value(wlnode_consult::ConsultationView::schema()).unwrap();
    assert!(view["properties"]["state"].is_object(), "{view}");
}

const SKEW: u64 = TIMING_SKEW.as_millis() as u64;
const WINDOW: u64 = LATE_ANSWER_WINDOW.as_millis() as u64;

fn plus(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp(t.0 + ms)
}

fn minus(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp(t.0 - ms)
}

/// The origin's objection to round 1, as its message carries it.
fn objection(r: &Consultation) -> ConsultAnswer {
    ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: r.id(),
        round: 1,
        answer: Answer::Objection,
        reason: Some("same end user".into()),
    }
}

/// Finding 13, requester side: an answer the origin signed before the deadline that
/// a relay held past it counts, judged by its signed time; the consultation that had
/// expired here becomes `answered`, and a grant now goes against the objection.
#[test]
fn an_answer_signed_in_time_that_arrives_after_the_deadline_counts_if_undecided() {
    for tick_first in [true, false] {
        let (mut r, mut o) = pair(SilenceMeans::NoObjection);
        let actions = o
            .answer(Answer::Objection, Some("same end user".into()), at(29))
            .unwrap();
        let (_, Payload::ConsultAnswer(a)) = only_send(&actions) else {
            panic!("{actions:?}")
        };
        let arrival = plus(at(30), 3 * 3_600_000);
        if tick_first {
            assert!(r.tick(at(30)));
            assert_eq!(r.state(), State::Expired);
        }
        r.receive_answer(&org(), a, at(29), arrival).unwrap();
        assert_eq!(r.state(), State::Answered);
        assert_eq!(r.expired_at(), None);
        assert_eq!(r.current_answer(), Some(Answer::Objection));
        assert_eq!(r.deemed_answer(), Some(Answer::Objection));
        let rec = &r.answers()[0];
        assert_eq!((rec.at, rec.signed_at), (arrival, Some(at(29))));
        assert!(rec.late());
        let v = r.view();
        assert!(v.answer_late && !v.answer_by_silence, "{v:?}");
        // Not a grant on silence (which the silence rule would call no objection):
        // a grant against the objection, notified.
        let actions = r
            .decide(Decision::Granted, None, &[org()], plus(arrival, 1))
            .unwrap();
        assert_eq!(decision_of(&actions).despite, Despite::Objection);
        assert!(matches!(actions[0], Action::SendNotice { .. }));
    }
}

/// Finding 13: the requester decided on silence before the late answer came. The
/// decision stands; the answer is recorded beside it, once.
#[test]
fn a_late_answer_after_a_decision_on_silence_is_recorded_and_the_decision_stands() {
    let (mut r, _) = pair(SilenceMeans::Objection);
    r.tick(at(30));
    r.decide(
        Decision::Refused,
        Some("no reply".into()),
        &[org()],
        plus(at(30), 1000),
    )
    .unwrap();
    let decided = r.decision().unwrap().clone();
    r.receive_answer(&org(), &objection(&r), at(29), plus(at(30), 60_000))
        .unwrap();
    assert_eq!(r.state(), State::Decided);
    assert_eq!(r.decision(), Some(&decided));
    assert_eq!(r.answers().len(), 1);
    assert!(r.answers()[0].late());
    // Still deemed by silence: that is what the decision was taken on.
    assert!(r.view().answer_by_silence);
    let e = refused(&mut r, |c| {
        c.receive_answer(&org(), &objection(c), at(29), plus(at(30), 120_000))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
}

/// Review s31-consult M3: the origin recorded its answer a minute before the
/// deadline, but the send was retried (a crash, a full outbox) and the message sealed
/// ten minutes after it. The answer carries its recording time, signed in the body,
/// and counts; judged by the seal time alone (an older origin's answer without it)
/// it is refused. A recording time later than the seal changes nothing.
#[test]
fn an_answer_recorded_in_time_and_sealed_late_on_a_retry_counts() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    let recorded = minus(at(30), 60_000);
    let actions = o
        .answer(Answer::Objection, Some("same end user".into()), recorded)
        .unwrap();
    let (_, payload) = only_send(&actions);
    let Payload::ConsultAnswer(a) = payload else {
        panic!("{payload:?}")
    };
    assert_eq!(a.answered_at, Some(recorded));
    let sealed = plus(at(30), 10 * 60_000);
    let arrival = plus(at(30), 11 * 60_000);
    r.tick(at(30));
    let mut old = r.clone();
    let without = ConsultAnswer {
        answered_at: None,
        ..a.clone()
    };
    let e = refused(&mut old, |c| {
        c.receive_answer(&org(), &without, sealed, arrival)
    });
    assert!(matches!(e, ConsultError::AnswerAfterDeadline { .. }), "{e}");
    let mut later = r.clone();
    let after_seal = ConsultAnswer {
        answered_at: Some(plus(sealed, 1)),
        ..a.clone()
    };
    let e = refused(&mut later, |c| {
        c.receive_answer(&org(), &after_seal, sealed, arrival)
    });
    assert!(matches!(e, ConsultError::AnswerAfterDeadline { .. }), "{e}");
    r.receive_answer(&org(), a, sealed, arrival).unwrap();
    assert_eq!(r.state(), State::Answered);
    assert_eq!(r.answers()[0].signed_at, Some(recorded));
}

/// A decision taken on an answer is not one "on silence": a late answer after it is
/// refused.
#[test]
fn a_late_answer_after_a_decision_on_an_answer_is_refused() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::NoObjection, at(2));
    r.decide(Decision::Granted, None, &[org()], at(3)).unwrap();
    let e = refused(&mut r, |c| {
        c.receive_answer(&org(), &objection(c), at(2), plus(at(30), 1))
    });
    assert!(
        matches!(
            e,
            ConsultError::StaleRound { .. } | ConsultError::IllegalMove { .. }
        ),
        "{e}"
    );
}

/// The bounds on a late answer's signed time, and on how late it may arrive: a
/// backdating origin gains at most the window, and never a time before the request.
#[test]
fn a_late_answer_is_judged_by_its_signed_time_within_bounds() {
    let deadline = at(30);
    let arrival = plus(deadline, 3_600_000);
    let cases = [
        // (signed at, arrives at, counts)
        (minus(deadline, 1), arrival, true),
        // The origin's clock a little behind, or a send just after recording.
        (plus(deadline, SKEW - 1), arrival, true),
        (plus(deadline, SKEW), arrival, false),
        (plus(deadline, 86_400_000), arrival, false),
        // Not before the request was made (T0 here), less the skew.
        (minus(T0, SKEW), arrival, true),
        (minus(T0, SKEW + 1), arrival, false),
        (Timestamp(0), arrival, false),
        // Arriving at the end of the window still counts; after it, no longer.
        (at(29), plus(deadline, WINDOW + SKEW), true),
        (at(29), plus(deadline, WINDOW + SKEW + 1), false),
        (at(29), at(60), false),
    ];
    for (signed, arrives, counts) in cases {
        let (mut r, _) = pair(SilenceMeans::Objection);
        let a = objection(&r);
        let got = r.receive_answer(&org(), &a, signed, arrives);
        if counts {
            got.unwrap();
            assert_eq!(r.state(), State::Answered, "signed {signed:?}");
        } else {
            assert_eq!(
                got,
                Err(ConsultError::AnswerAfterDeadline { deadline }),
                "signed {signed:?} arriving {arrives:?}"
            );
            assert_eq!(r.state(), State::Expired);
            assert!(r.answers().is_empty());
        }
    }
}

/// A later round is bounded by when its information was supplied.
#[test]
fn a_late_answer_to_a_later_round_is_not_signed_before_that_round_opened() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    answer_both(&mut r, &mut o, Answer::InfoRequested, at(2));
    r.supply_info("invoice".into(), None, at(10), at(3))
        .unwrap();
    let a = ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: r.id(),
        round: 2,
        answer: Answer::NoObjection,
        reason: None,
    };
    // Signed on day 2, before the information of day 3 existed: refused.
    let mut early = r.clone();
    assert!(matches!(
        early.receive_answer(&org(), &a, at(2), plus(at(10), 1)),
        Err(ConsultError::AnswerAfterDeadline { .. })
    ));
    r.receive_answer(&org(), &a, at(9), plus(at(10), 1))
        .unwrap();
    assert_eq!(r.state(), State::Answered);
}

/// The origin refused the request: the requester's consultation becomes
/// `refused_by_origin`, not an expiry by silence. It is no veto (review s31-consult
/// M1): before the deadline nothing moves it; after the deadline the requester
/// decides as on silence, and a grant is despite an expired denial, with notices.
#[test]
fn a_signed_refusal_ends_the_round_and_the_requester_decides_after_the_deadline() {
    let (mut r, _) = pair(SilenceMeans::Objection);
    let refusal = ConsultRefusal {
        receipt: None,
        consultation_id: r.id(),
        round: 1,
        reason: RefusalReason::TooManyOpen,
        message_id: None,
    };
    // From anyone but the origin, for another consultation or round: refused.
    let e = refused(&mut r, |c| {
        c.receive_refusal(&agency("CC-THIRD"), &refusal, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::NotOrigin { .. }), "{e}");
    let other = ConsultRefusal {
        consultation_id: ConsultationId([9; 16]),
        ..refusal.clone()
    };
    let e = refused(&mut r, |c| {
        c.receive_refusal(&org(), &other, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::Mismatch { .. }), "{e}");
    let stale = ConsultRefusal {
        round: 2,
        ..refusal.clone()
    };
    let e = refused(&mut r, |c| {
        c.receive_refusal(&org(), &stale, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::StaleRound { .. }), "{e}");

    r.receive_refusal(&org(), &refusal, at(1), MIN, at(1))
        .unwrap();
    assert_eq!(r.state(), State::RefusedByOrigin);
    assert_eq!(r.refusal().unwrap().reason, RefusalReason::TooManyOpen);
    assert_eq!(r.view().refusal, Some(RefusalReason::TooManyOpen));
    assert_eq!(
        serde_json::to_value(r.view()).unwrap()["state"],
        "refused_by_origin"
    );
    // No expiry, no answer, no second refusal, no decision before the deadline.
    assert!(!r.tick(at(40)));
    let e = refused(&mut r, |c| {
        c.decide(Decision::Granted, None, &[org()], at(10))
    });
    assert!(matches!(e, ConsultError::PrematureDecision { .. }), "{e}");
    let e = refused(&mut r, |c| {
        c.receive_answer(&org(), &objection(c), at(2), at(2))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    let e = refused(&mut r, |c| {
        c.receive_refusal(&org(), &refusal, at(2), MIN, at(2))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    // It survives the store.
    let back: Consultation = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
    // After the deadline: a grant despite an expired denial, notices to everyone.
    let third = agency("CC-THIRD");
    let actions = r
        .decide(Decision::Granted, None, &[org(), third.clone()], at(31))
        .unwrap();
    assert_eq!(r.state(), State::Decided);
    assert_eq!(r.decision().unwrap().despite, Despite::ExpiredDenial);
    let notified: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::SendNotice { .. }))
        .map(|a| a.to().clone())
        .collect();
    assert_eq!(notified, vec![org(), third]);
}

/// A refusal after the deadline (the consultation expired, the officer may decide
/// on silence), after an answer, or at the origin is refused: a refusal cannot take
/// a decision away (review s31-consult M1).
#[test]
fn a_refusal_after_the_deadline_an_answer_or_at_the_origin_is_refused() {
    let (mut r, mut o) = pair(SilenceMeans::Objection);
    let refusal = ConsultRefusal {
        receipt: None,
        consultation_id: r.id(),
        round: 1,
        reason: RefusalReason::Invalid,
        message_id: None,
    };
    // Signed in time, arriving after the deadline: not taken.
    let e = refused(&mut r, |c| {
        c.receive_refusal(&org(), &refusal, at(29), MIN, at(31))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    let mut expired = r.clone();
    assert!(expired.tick(at(31)));
    let e = refused(&mut expired, |c| {
        c.receive_refusal(&org(), &refusal, at(29), MIN, at(31))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    expired
        .decide(Decision::Granted, None, &[org()], at(32))
        .unwrap();
    answer_both(&mut r, &mut o, Answer::Objection, at(2));
    let e = refused(&mut r, |c| {
        c.receive_refusal(&org(), &refusal, at(3), MIN, at(3))
    });
    assert!(matches!(e, ConsultError::IllegalMove { .. }), "{e}");
    let e = refused(&mut o, |c| {
        c.receive_refusal(&req(), &refusal, at(3), MIN, at(3))
    });
    assert!(matches!(e, ConsultError::WrongSide { .. }), "{e}");
}

/// A refusal whose signed time or reason contradicts what the requester knows is
/// refused (review s31-consult M1); a plausible one is taken.
#[test]
fn a_refusal_that_contradicts_what_the_requester_knows_is_refused() {
    let (r, _) = pair(SilenceMeans::Objection);
    let refusal = |reason| ConsultRefusal {
        receipt: None,
        consultation_id: r.id(),
        round: 1,
        reason,
        message_id: None,
    };
    let skew = u64::try_from(TIMING_SKEW.as_millis()).unwrap();
    let implausible = [
        // The consultation went to the entry's signed origin.
        (RefusalReason::NotOurEntry, at(1)),
        // The request itself named the consultation.
        (RefusalReason::UnknownConsultation, at(1)),
        // 29 days left when the refusal was signed: at least the minimum.
        (RefusalReason::DeadlineTooShort, at(1)),
        // Within 365 days of the request.
        (RefusalReason::DeadlineTooLong, at(1)),
        // Signed after the deadline (beyond the skew), or before the request.
        (RefusalReason::TooManyOpen, plus(at(30), skew)),
        (RefusalReason::TooManyOpen, minus(at(0), skew + 1)),
    ];
    for (reason, signed) in implausible {
        let mut c = r.clone();
        let e = refused(&mut c, |c| {
            c.receive_refusal(&org(), &refusal(reason), signed, MIN, at(2))
        });
        assert!(
            matches!(e, ConsultError::ImplausibleRefusal { .. }),
            "{reason:?} signed {signed:?}: {e}"
        );
    }
    // Too short is plausible when signed less than the minimum before the deadline
    // (the request was held on the way); too many open always is.
    for (reason, signed) in [
        (RefusalReason::DeadlineTooShort, plus(at(29), 3_600_000)),
        (RefusalReason::TooManyOpen, at(1)),
    ] {
        let mut c = r.clone();
        c.receive_refusal(&org(), &refusal(reason), signed, MIN, signed)
            .unwrap();
        assert_eq!(c.state(), State::RefusedByOrigin);
    }
}

/// The reason code a refusal carries for the origin's own errors.
#[test]
fn refusal_reasons_name_what_the_origin_refused() {
    let (r, _) = pair(SilenceMeans::Objection);
    let mut body = r.request_payload();
    body.deadline = plus(at(1), 3_600_000);
    let e = Consultation::receive_request(
        &org(),
        &req(),
        body.clone(),
        SilenceMeans::Objection,
        MIN,
        at(1),
    )
    .unwrap_err();
    assert_eq!(refusal_reason(&e), RefusalReason::DeadlineTooShort);
    body.deadline = at(400);
    let e =
        Consultation::receive_request(&org(), &req(), body, SilenceMeans::Objection, MIN, at(1))
            .unwrap_err();
    assert_eq!(refusal_reason(&e), RefusalReason::DeadlineTooLong);
    assert_eq!(
        refusal_reason(&ConsultError::StaleRound {
            expected: 2,
            got: 3
        }),
        RefusalReason::WrongRound
    );
    assert_eq!(
        refusal_reason(&ConsultError::SelfConsultation(org())),
        RefusalReason::Invalid
    );
}

/// Injected clock, finding "judged at arrival": a request that arrived in time but is
/// applied more than five minutes later (a catch-up after a restart) passes when
/// judged at its arrival, and would not when judged at the later application.
#[test]
fn a_request_is_judged_at_its_arrival_not_when_it_is_applied() {
    let (r, _) = pair(SilenceMeans::Objection);
    let arrived = at(1);
    let mut body = r.request_payload();
    // The shortest deadline, less four minutes: within the five-minute skew.
    body.deadline = plus(arrived, MIN.as_millis() as u64 - 4 * 60_000);
    let applied = plus(arrived, 10 * 60_000);
    Consultation::receive_request(
        &org(),
        &req(),
        body.clone(),
        SilenceMeans::Objection,
        MIN,
        arrived,
    )
    .unwrap();
    let e =
        Consultation::receive_request(&org(), &req(), body, SilenceMeans::Objection, MIN, applied)
            .unwrap_err();
    assert!(matches!(e, ConsultError::BadDeadline { .. }), "{e}");
}

/// Review s31-fixes C4: a `deadline_too_short` refusal is judged against the larger
/// of the roster minimum in force now and the one the round was opened under. The
/// request went out under a 30-day minimum with a 30-day deadline; the origin, still
/// under it, got it a while later and refused it as too short; meanwhile the
/// requester's roster lowered the minimum to `MIN`. Judged by `MIN` alone the refusal
/// would be implausible (and audited as the origin's fault).
#[test]
fn a_too_short_refusal_is_judged_under_the_minimum_the_round_was_opened_under() {
    let (r, _) = pair(SilenceMeans::Objection);
    let refusal = ConsultRefusal {
        receipt: None,
        consultation_id: r.id(),
        round: 1,
        reason: RefusalReason::DeadlineTooShort,
        message_id: None,
    };
    let mut plain = r.clone();
    let e = refused(&mut plain, |c| {
        c.receive_refusal(&org(), &refusal, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::ImplausibleRefusal { .. }), "{e}");
    let mut opened_under_30_days = r.clone();
    opened_under_30_days.set_round_min_deadline(std::time::Duration::from_secs(30 * 86_400));
    assert_eq!(
        opened_under_30_days.round_min_deadline(),
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    opened_under_30_days
        .receive_refusal(&org(), &refusal, at(1), MIN, at(1))
        .unwrap();
    assert_eq!(opened_under_30_days.state(), State::RefusedByOrigin);
    // The recorded minimum survives a store round trip, and an older stored
    // consultation without it reads as before.
    let json = serde_json::to_value(&opened_under_30_days).unwrap();
    assert_eq!(json["round_min_deadline_secs"], 30 * 86_400);
    let old: Consultation = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(old.round_min_deadline(), None);
}

/// Review s32-consult L2: the origin runs a roster whose minimum is larger than the
/// requester's (the requester has not loaded it yet). Its `deadline_too_short`
/// carries its signed receipt (checked by the caller) and is taken; the same refusal
/// without a receipt is refused as before.
#[test]
fn a_signed_too_short_refusal_is_taken_under_the_origins_roster() {
    let (r, _) = pair(SilenceMeans::Objection);
    let refusal = ConsultRefusal {
        receipt: None,
        consultation_id: r.id(),
        round: 1,
        reason: RefusalReason::DeadlineTooShort,
        message_id: Some(wlnode_crypto::model::MessageId([1; 16])),
    };
    let mut plain = r.clone();
    let e = refused(&mut plain, |c| {
        c.receive_refusal(&org(), &refusal, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::ImplausibleRefusal { .. }), "{e}");
    let key = wlnode_crypto::SecretKey::generate().unwrap();
    let mut p = Payload::ConsultRefusal(refusal);
    wlnode_consult::evidence::seal(
        &mut p,
        &org(),
        r.requester(),
        &key,
        at(1),
        Some(wlnode_consult::evidence::Refused {
            deadline: r.deadline(),
            kind: Some(wlnode_consult::RefusedKind::ConsultRequest),
            applied: None,
        }),
    )
    .unwrap();
    let Payload::ConsultRefusal(sealed) = p else {
        unreachable!()
    };
    let mut signed = r.clone();
    signed
        .receive_refusal(&org(), &sealed, at(1), MIN, at(1))
        .unwrap();
    assert_eq!(signed.state(), State::RefusedByOrigin);
}

/// s35 (review s33-consult L1): a signed `deadline_too_short` whose receipt signs the
/// minimum and roster the origin applied is refused when it contradicts itself (the
/// round's deadline, day 30, leaves far more than the signed one-day minimum after
/// the signed time, day 1) or when it names the requester's roster version with
/// another minimum than that roster's; it is taken when it holds together (a 30-day
/// minimum) under a version the requester does not run. A refused one leaves the
/// consultation open (the round reads as silence, then expiry).
#[test]
fn a_signed_too_short_refusal_contradicting_what_it_signs_is_refused() {
    use wlnode_consult::evidence::{Applied, Refused, seal};
    let (r, _) = pair(SilenceMeans::Objection);
    let key = wlnode_crypto::SecretKey::generate().unwrap();
    let sealed = |min_deadline_secs: u64, roster_version: u64| {
        let mut p = Payload::ConsultRefusal(ConsultRefusal {
            receipt: None,
            consultation_id: r.id(),
            round: 1,
            reason: RefusalReason::DeadlineTooShort,
            message_id: Some(wlnode_crypto::model::MessageId([1; 16])),
        });
        let refused = Refused {
            deadline: r.deadline(),
            kind: Some(wlnode_consult::RefusedKind::ConsultRequest),
            applied: Some(Applied {
                min_deadline_secs,
                roster_version,
            }),
        };
        seal(&mut p, &org(), r.requester(), &key, at(1), Some(refused)).unwrap();
        let Payload::ConsultRefusal(sealed) = p else {
            unreachable!()
        };
        sealed
    };
    const THIRTY_DAYS: u64 = 30 * 86_400;
    let v5 = RosterTerms {
        version: 5,
        explicit_min_deadline_secs: Some(MIN.as_secs()),
        terms_required_since: None,
    };
    // Self-contradictory: refused, with or without our roster version.
    let one_day = sealed(MIN.as_secs(), 7);
    let mut c = r.clone();
    let e = refused(&mut c, |c| {
        c.receive_refusal_under(&org(), &one_day, at(1), MIN, Some(&v5), at(1))
    });
    assert!(
        matches!(&e, ConsultError::ImplausibleRefusal { why, .. } if why.contains("signed minimum")),
        "{e}"
    );
    let e = refused(&mut c, |c| {
        c.receive_refusal(&org(), &one_day, at(1), MIN, at(1))
    });
    assert!(matches!(e, ConsultError::ImplausibleRefusal { .. }), "{e}");
    assert_eq!(c.state(), State::Open);
    // Our roster version (5, whose minimum is one day) with a 30-day minimum: refused.
    let ours = sealed(THIRTY_DAYS, 5);
    let e = refused(&mut c, |c| {
        c.receive_refusal_under(&org(), &ours, at(1), MIN, Some(&v5), at(1))
    });
    assert!(
        matches!(&e, ConsultError::ImplausibleRefusal { why, .. } if why.contains("our roster version")),
        "{e}"
    );
    // A version we do not run, with a minimum the deadline did not meet: taken.
    let theirs = sealed(THIRTY_DAYS, 6);
    let mut taken = r.clone();
    taken
        .receive_refusal_under(&org(), &theirs, at(1), MIN, Some(&v5), at(1))
        .unwrap();
    assert_eq!(taken.state(), State::RefusedByOrigin);
    // And our version with our minimum, when our roster's minimum is 30 days: taken.
    let mut taken = r.clone();
    taken
        .receive_refusal_under(
            &org(),
            &ours,
            at(1),
            std::time::Duration::from_secs(THIRTY_DAYS),
            Some(&RosterTerms {
                explicit_min_deadline_secs: Some(THIRTY_DAYS),
                ..v5
            }),
            at(1),
        )
        .unwrap();
    assert_eq!(taken.state(), State::RefusedByOrigin);
    // Review s35-deadline L2: our version with another minimum, while our roster
    // leaves the minimum to the build's default (another build may have another):
    // taken.
    let mut taken = r.clone();
    taken
        .receive_refusal_under(
            &org(),
            &ours,
            at(1),
            MIN,
            Some(&RosterTerms {
                explicit_min_deadline_secs: None,
                ..v5
            }),
            at(1),
        )
        .unwrap();
    assert_eq!(taken.state(), State::RefusedByOrigin);
}

/// Review s35-deadline H1: from the roster's `consult_refusal_terms_required_since`
/// on (judged when the requester applies the refusal), a `deadline_too_short`
/// whose receipt signs no minimum and roster version, or that carries no receipt,
/// is refused (an origin leaving them out escaped every proof); before the cut-over,
/// or under a roster without it, it is taken as before (s34 origins during a
/// rollout). One that signs them is taken after the cut-over.
#[test]
fn a_too_short_refusal_without_its_terms_is_refused_from_the_rosters_cut_over() {
    use wlnode_consult::evidence::{Applied, Refused, seal};
    let (r, _) = pair(SilenceMeans::Objection);
    let key = wlnode_crypto::SecretKey::generate().unwrap();
    let refusal = |applied: Option<Applied>, with_receipt: bool| {
        let mut p = Payload::ConsultRefusal(ConsultRefusal {
            receipt: None,
            consultation_id: r.id(),
            round: 1,
            reason: RefusalReason::DeadlineTooShort,
            message_id: Some(wlnode_crypto::model::MessageId([1; 16])),
        });
        if with_receipt {
            let refused = Refused {
                deadline: r.deadline(),
                kind: Some(wlnode_consult::RefusedKind::ConsultRequest),
                applied,
            };
            seal(&mut p, &org(), r.requester(), &key, at(1), Some(refused)).unwrap();
        }
        let Payload::ConsultRefusal(sealed) = p else {
            unreachable!()
        };
        sealed
    };
    // The round's deadline (day 30) is short of a 60-day minimum, so the
    // refusal is plausible in itself.
    const SIXTY_DAYS: u64 = 60 * 86_400;
    let sixty = Duration::from_secs(SIXTY_DAYS);
    let bare = refusal(None, true);
    let no_receipt = refusal(None, false);
    let terms = refusal(
        Some(Applied {
            min_deadline_secs: SIXTY_DAYS,
            roster_version: 6,
        }),
        true,
    );
    let cut = RosterTerms {
        version: 5,
        explicit_min_deadline_secs: Some(MIN.as_secs()),
        terms_required_since: Some(at(1)),
    };
    let mut c = r.clone();
    for p in [&bare, &no_receipt] {
        let e = refused(&mut c, |c| {
            c.receive_refusal_under(&org(), p, at(1), sixty, Some(&cut), at(1))
        });
        assert!(
            matches!(&e, ConsultError::ImplausibleRefusal { why, .. } if why.contains("requires")),
            "{e}"
        );
    }
    assert_eq!(c.state(), State::Open);
    // Signed with them: taken after the cut-over.
    let mut taken = r.clone();
    taken
        .receive_refusal_under(&org(), &terms, at(1), sixty, Some(&cut), at(1))
        .unwrap();
    assert_eq!(taken.state(), State::RefusedByOrigin);
    // Before the cut-over, or under a roster without it: the bare one is taken.
    let before = RosterTerms {
        terms_required_since: Some(at(2)),
        ..cut
    };
    let without = RosterTerms {
        terms_required_since: None,
        ..cut
    };
    for t in [&before, &without] {
        let mut taken = r.clone();
        taken
            .receive_refusal_under(&org(), &bare, at(1), sixty, Some(t), at(1))
            .unwrap();
        assert_eq!(taken.state(), State::RefusedByOrigin);
    }
}
