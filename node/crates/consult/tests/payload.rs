//! Payload validation and the canonical encoding: every kind round-trips; oversized,
//! malformed, non-canonical and out-of-bounds payloads are refused with the field
//! named.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use wlnode_consult::payload::{KINDS, MAX_ITEMS, MAX_PARTY};
use wlnode_consult::{
    Answer, ConsultAnswer, ConsultDecision, ConsultInfo, ConsultRequest, ConsultationId, Decision,
    Despite, Flag, FlagAction, HitContext, HitReport, Item, MAX_PAYLOAD_BYTES, Payload,
    PayloadError, TransactionDetails, decode, encode,
};
use wlnode_crypto::{EntryId, RecordId};

fn request() -> ConsultRequest {
    ConsultRequest {
        receipt: None,
        consultation_id: ConsultationId([7; 16]),
        entry_id: EntryId([1; 16]),
        record_id: RecordId([2; 32]),
        version: 3,
        reference: "AA/2026/0042".into(),
        deadline: at(30),
        details: details(),
    }
}

fn every_kind() -> Vec<Payload> {
    vec![
        Payload::ConsultRequest(request()),
        Payload::ConsultAnswer(ConsultAnswer {
            receipt: None,
            answered_at: None,
            consultation_id: ConsultationId([7; 16]),
            round: 1,
            answer: Answer::Objection,
            reason: Some("Same end user as our denial 2025-17.".into()),
        }),
        Payload::ConsultInfo(ConsultInfo {
            consultation_id: ConsultationId([7; 16]),
            round: 2,
            deadline: at(40),
            text: "The end-use statement is attached to our file.".into(),
            details: Some(details()),
        }),
        Payload::ConsultDecision(ConsultDecision {
            consultation_id: ConsultationId([7; 16]),
            entry_id: EntryId([1; 16]),
            decision: Decision::Granted,
            reason: None,
            despite: Despite::Objection,
        }),
        Payload::ConsultRefusal(wlnode_consult::ConsultRefusal {
            receipt: None,
            consultation_id: ConsultationId([7; 16]),
            round: 1,
            reason: wlnode_consult::RefusalReason::DeadlineTooShort,
            message_id: Some(wlnode_crypto::model::MessageId([8; 16])),
        }),
        Payload::HitReport(HitReport {
            entry_id: EntryId([1; 16]),
            record_id: RecordId([2; 32]),
            context: HitContext::Customs,
            details: "Declaration 26DE000123 held at Hamburg.".into(),
            reported_at: at(2),
        }),
        Payload::Flag(Flag {
            entry_id: EntryId([1; 16]),
            action: FlagAction::Set,
            reason: Some("Entity dissolved in our jurisdiction.".into()),
        }),
    ]
}

fn invalid_field(r: Result<impl std::fmt::Debug, PayloadError>) -> String {
    match r {
        Err(PayloadError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn every_kind_round_trips_and_names_its_routing_kind() {
    let payloads = every_kind();
    let kinds: Vec<&str> = payloads.iter().map(Payload::kind).collect();
    assert_eq!(kinds, KINDS);
    for p in payloads {
        let bytes = encode(&p).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(&format!(
                r#"{{"v":1,"payload":{{"kind":"{}","body":{{"#,
                p.kind()
            )),
            "{text}"
        );
        assert_eq!(decode(&bytes).unwrap(), p);
    }
}

#[test]
fn consultation_payloads_name_their_consultation() {
    for p in every_kind() {
        let expected = matches!(
            p,
            Payload::ConsultRequest(_)
                | Payload::ConsultAnswer(_)
                | Payload::ConsultInfo(_)
                | Payload::ConsultDecision(_)
                | Payload::ConsultRefusal(_)
        )
        .then_some(ConsultationId([7; 16]));
        assert_eq!(p.consultation_id(), expected, "{}", p.kind());
    }
}

#[test]
fn an_oversized_payload_is_refused_before_parsing() {
    let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(
        decode(&big),
        Err(PayloadError::TooLarge {
            size: MAX_PAYLOAD_BYTES + 1,
            max: MAX_PAYLOAD_BYTES
        })
    );
}

#[test]
fn the_largest_valid_payloads_fit_the_limit() {
    // Every bound at its maximum, with characters JSON must escape (`"`, `\`), which
    // double in size: still under the limit.
    let worst = |n: usize| "\"\\".repeat(n / 2);
    let mut d = details();
    d.items = (0..MAX_ITEMS)
        .map(|_| Item {
            description: worst(256),
            category: Some("ML22.A-1".parse().unwrap()),
        })
        .collect();
    d.end_user = worst(MAX_PARTY);
    d.consignee = worst(MAX_PARTY);
    d.free_text = Some(worst(8192));
    d.value.amount = "1".repeat(24);
    let info = Payload::ConsultInfo(ConsultInfo {
        consultation_id: ConsultationId([7; 16]),
        round: 5,
        deadline: at(400),
        text: worst(4096),
        details: Some(d.clone()),
    });
    let bytes = encode(&info).unwrap();
    assert!(bytes.len() <= MAX_PAYLOAD_BYTES, "{}", bytes.len());
    assert_eq!(decode(&bytes).unwrap(), info);
    let mut r = request();
    r.reference = worst(128);
    r.details = d;
    assert!(encode(&Payload::ConsultRequest(r)).is_ok());
}

#[test]
fn too_many_items_and_no_items_are_refused() {
    let mut d = details();
    d.items = vec![d.items[0].clone(); MAX_ITEMS + 1];
    assert_eq!(invalid_field(d.validate("details")), "details.items");
    d.items.clear();
    assert_eq!(invalid_field(d.validate("details")), "details.items");
}

#[test]
fn oversized_strings_name_their_field() {
    let mut d = details();
    d.items[0].description = "x".repeat(257);
    assert_eq!(
        invalid_field(d.validate("details")),
        "details.items[0].description"
    );
    let mut d = details();
    d.end_user = "x".repeat(MAX_PARTY + 1);
    assert_eq!(invalid_field(d.validate("details")), "details.end_user");
    let mut r = request();
    r.reference = "x".repeat(129);
    assert_eq!(
        invalid_field(encode(&Payload::ConsultRequest(r))),
        "reference"
    );
}

#[test]
fn control_characters_and_blank_text_are_refused() {
    let mut d = details();
    d.consignee = "Example\u{0}Trading".into();
    assert_eq!(invalid_field(d.validate("details")), "details.consignee");
    let mut d = details();
    d.free_text = Some("bell\u{7}".into());
    assert_eq!(invalid_field(d.validate("details")), "details.free_text");
    let mut d = details();
    d.items[0].description = "   ".into();
    assert_eq!(
        invalid_field(d.validate("details")),
        "details.items[0].description"
    );
    // Newline and tab are text.
    let mut d = details();
    d.free_text = Some("line one\n\tline two".into());
    d.validate("details").unwrap();
}

#[test]
fn a_bad_country_is_refused_with_its_position() {
    let json = br#"{"items":[{"description":"lathe"}],"end_user":"E","consignee":"C","destination_country":"ae","value":{"amount":"1","currency":"EUR"}}"#;
    let e = TransactionDetails::from_json(json).unwrap_err();
    let PayloadError::Malformed(m) = e else {
        panic!("{e:?}")
    };
    assert!(m.contains("ISO 3166-1") && m.contains("line 1"), "{m}");
    let json = br#"{"items":[{"description":"lathe"}],"end_user":"E","consignee":"C","destination_country":"XYZ","value":{"amount":"1","currency":"EUR"}}"#;
    assert!(matches!(
        TransactionDetails::from_json(json),
        Err(PayloadError::Malformed(_))
    ));
}

#[test]
fn details_json_reads_and_refuses_unknown_fields() {
    let ok = br#"{"items":[{"description":"lathe","category":"2B001"}],"end_user":"E","consignee":"C","destination_country":"AE","value":{"amount":"10.5","currency":"EUR"}}"#;
    let d = TransactionDetails::from_json(ok).unwrap();
    assert_eq!(d.items[0].category.as_ref().unwrap().as_str(), "2B001");
    let extra = br#"{"items":[{"description":"lathe"}],"end_user":"E","consignee":"C","destination_country":"AE","value":{"amount":"1","currency":"EUR"},"secret":1}"#;
    let PayloadError::Malformed(m) = TransactionDetails::from_json(extra).unwrap_err() else {
        panic!()
    };
    assert!(m.contains("unknown field `secret`"), "{m}");
}

#[test]
fn amounts_and_currencies_have_one_exact_form() {
    for good in ["0", "1", "1250000.00", "0.5", "12.3456"] {
        let mut d = details();
        d.value.amount = good.into();
        d.validate("details").unwrap();
    }
    for bad in [
        "",
        "-1",
        "01",
        "1.",
        ".5",
        "1e6",
        "1.23456",
        "1,000",
        "+1",
        &"9".repeat(25),
    ] {
        let mut d = details();
        d.value.amount = bad.into();
        assert_eq!(
            invalid_field(d.validate("details")),
            "details.value.amount",
            "{bad}"
        );
    }
    for bad in ["eur", "EU", "EURO", "€"] {
        let mut d = details();
        d.value.currency = bad.into();
        assert_eq!(
            invalid_field(d.validate("details")),
            "details.value.currency",
            "{bad}"
        );
    }
    // A JSON number is not an amount.
    let json = br#"{"items":[{"description":"lathe"}],"end_user":"E","consignee":"C","destination_country":"AE","value":{"amount":1,"currency":"EUR"}}"#;
    assert!(TransactionDetails::from_json(json).is_err());
}

#[test]
fn reasons_are_required_where_they_carry_the_answer() {
    let a = |answer, reason: Option<&str>| {
        Payload::ConsultAnswer(ConsultAnswer {
            receipt: None,
            answered_at: None,
            consultation_id: ConsultationId([7; 16]),
            round: 1,
            answer,
            reason: reason.map(Into::into),
        })
        .validate()
    };
    assert_eq!(invalid_field(a(Answer::Objection, None)), "reason");
    assert_eq!(invalid_field(a(Answer::InfoRequested, None)), "reason");
    a(Answer::NoObjection, None).unwrap();
    assert_eq!(
        invalid_field(a(Answer::NoObjection, Some("x\u{1b}[31m"))),
        "reason"
    );
    let flag = Payload::Flag(Flag {
        entry_id: EntryId([1; 16]),
        action: FlagAction::Set,
        reason: None,
    });
    assert_eq!(invalid_field(flag.validate()), "reason");
    let unflag = Payload::Flag(Flag {
        entry_id: EntryId([1; 16]),
        action: FlagAction::Unset,
        reason: None,
    });
    unflag.validate().unwrap();
}

#[test]
fn a_refusal_goes_against_nothing_and_rounds_start_at_one() {
    let d = Payload::ConsultDecision(ConsultDecision {
        consultation_id: ConsultationId([7; 16]),
        entry_id: EntryId([1; 16]),
        decision: Decision::Refused,
        reason: None,
        despite: Despite::Objection,
    });
    assert_eq!(invalid_field(d.validate()), "despite");
    let a = Payload::ConsultAnswer(ConsultAnswer {
        receipt: None,
        answered_at: None,
        consultation_id: ConsultationId([7; 16]),
        round: 0,
        answer: Answer::NoObjection,
        reason: None,
    });
    assert_eq!(invalid_field(a.validate()), "round");
    let i = Payload::ConsultInfo(ConsultInfo {
        consultation_id: ConsultationId([7; 16]),
        round: 1,
        deadline: at(3),
        text: "more".into(),
        details: None,
    });
    assert_eq!(invalid_field(i.validate()), "round");
    let mut r = request();
    r.version = 0;
    assert_eq!(invalid_field(r_validate(r)), "version");
}

fn r_validate(r: ConsultRequest) -> Result<(), PayloadError> {
    Payload::ConsultRequest(r).validate()
}

#[test]
fn non_canonical_encodings_are_refused() {
    let p = every_kind().remove(1);
    let bytes = encode(&p).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    // Whitespace, a duplicated key, an explicit null for an absent field, upper-case
    // hex: each parses, none is the canonical form.
    let spaced = text.replacen(r#""v":1"#, r#""v": 1"#, 1);
    assert_eq!(decode(spaced.as_bytes()), Err(PayloadError::NonCanonical));
    let dup = text.replacen(r#""round":1"#, r#""round":1,"round":1"#, 1);
    assert!(decode(dup.as_bytes()).is_err());
    let d = Payload::ConsultDecision(ConsultDecision {
        consultation_id: ConsultationId([0xab; 16]),
        entry_id: EntryId([1; 16]),
        decision: Decision::Refused,
        reason: None,
        despite: Despite::None,
    });
    let text = String::from_utf8(encode(&d).unwrap()).unwrap();
    let upper = text.replacen(&"ab".repeat(16), &"AB".repeat(16), 1);
    assert!(decode(upper.as_bytes()).is_err());
    let null = text.replacen(
        r#""decision":"refused","#,
        r#""decision":"refused","reason":null,"#,
        1,
    );
    assert_ne!(null, text);
    assert_eq!(decode(null.as_bytes()), Err(PayloadError::NonCanonical));
}

#[test]
fn unknown_versions_kinds_and_fields_are_refused() {
    let text = String::from_utf8(encode(&every_kind().remove(6)).unwrap()).unwrap();
    let v2 = text.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert_eq!(
        decode(v2.as_bytes()),
        Err(PayloadError::UnsupportedVersion(2))
    );
    let kind = text.replacen(r#""kind":"flag""#, r#""kind":"exec""#, 1);
    assert!(matches!(
        decode(kind.as_bytes()),
        Err(PayloadError::Malformed(_))
    ));
    let field = text.replacen(r#""action":"set""#, r#""action":"set","extra":true"#, 1);
    assert!(matches!(
        decode(field.as_bytes()),
        Err(PayloadError::Malformed(_))
    ));
    assert!(matches!(
        decode(b"not json"),
        Err(PayloadError::Malformed(_))
    ));
    assert!(matches!(decode(b""), Err(PayloadError::Malformed(_))));
}

#[test]
fn a_decoded_payload_is_validated() {
    // Well-formed JSON in canonical layout, but a field out of bounds.
    let mut r = request();
    r.details.end_user = "x".repeat(MAX_PARTY + 1);
    let text = serde_json::json!({"v": 1, "payload": {"kind": "consult_request", "body": r}});
    let bytes = serde_json::to_vec(&text).unwrap();
    assert_eq!(invalid_field(decode(&bytes)), "details.end_user");
}

#[test]
fn times_past_the_year_9999_are_refused() {
    let mut r = request();
    r.deadline = wlnode_crypto::Timestamp(u64::MAX);
    assert_eq!(invalid_field(r_validate(r)), "deadline");
}

#[test]
fn consultation_ids_are_lower_case_hex() {
    let id = ConsultationId([0xab; 16]);
    assert_eq!(id.to_string(), "ab".repeat(16));
    assert_eq!(id.to_string().parse::<ConsultationId>().unwrap(), id);
    assert!("xyz".parse::<ConsultationId>().is_err());
    let a = ConsultationId::random().unwrap();
    let b = ConsultationId::random().unwrap();
    assert_ne!(a, b);
}

#[test]
fn a_refusal_round_trips_and_its_round_is_bounded() {
    let r = wlnode_consult::Payload::ConsultRefusal(wlnode_consult::ConsultRefusal {
        receipt: None,
        consultation_id: wlnode_consult::ConsultationId([3; 16]),
        round: 1,
        reason: wlnode_consult::RefusalReason::NotOurEntry,
        message_id: None,
    });
    assert_eq!(r.kind(), "consult_refusal");
    let bytes = wlnode_consult::encode(&r).unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"v":1,"payload":{"kind":"consult_refusal","body":{"consultation_id":"03030303030303030303030303030303","round":1,"reason":"not_our_entry"}}}"#
    );
    assert_eq!(wlnode_consult::decode(&bytes).unwrap(), r);
    for round in [0, wlnode_consult::MAX_ROUNDS + 1] {
        let bad = wlnode_consult::Payload::ConsultRefusal(wlnode_consult::ConsultRefusal {
            receipt: None,
            consultation_id: wlnode_consult::ConsultationId([3; 16]),
            round,
            reason: wlnode_consult::RefusalReason::Invalid,
            message_id: None,
        });
        assert!(wlnode_consult::encode(&bad).is_err(), "round {round}");
    }
}

/// A refusal names the message it refuses, signed with the rest; one without it
/// (from a node before the field) still decodes, to the same bytes as before.
#[test]
fn a_refusal_binds_the_refused_message_id() {
    let r = wlnode_consult::Payload::ConsultRefusal(wlnode_consult::ConsultRefusal {
        receipt: None,
        consultation_id: wlnode_consult::ConsultationId([3; 16]),
        round: 2,
        reason: wlnode_consult::RefusalReason::DeadlineTooShort,
        message_id: Some(wlnode_crypto::model::MessageId([0xab; 16])),
    });
    let bytes = wlnode_consult::encode(&r).unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        r#"{"v":1,"payload":{"kind":"consult_refusal","body":{"consultation_id":"03030303030303030303030303030303","round":2,"reason":"deadline_too_short","message_id":"abababababababababababababababab"}}}"#
    );
    assert_eq!(wlnode_consult::decode(&bytes).unwrap(), r);
    let upper = std::str::from_utf8(&bytes)
        .unwrap()
        .replace("abababab", "ABABABAB");
    assert!(
        wlnode_consult::decode(upper.as_bytes()).is_err(),
        "one encoding only"
    );
}
