//! Fixtures shared by the consult crate's tests: agencies, a transaction, and a
//! requester/origin pair driven through the state machine.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use wlnode_consult::{
    Action, Consultation, ConsultationId, Item, Money, NewRequest, Payload, SilenceMeans,
    TransactionDetails,
};
use wlnode_crypto::{AgencyCode, EntryId, RecordId, Timestamp};

pub const DAY: u64 = 86_400_000;
pub const T0: Timestamp = Timestamp(1_800_000_000_000);
/// The shortest deadline the origin accepts in these tests (the default, one day).
pub const MIN: std::time::Duration = std::time::Duration::from_secs(86_400);

pub fn agency(s: &str) -> AgencyCode {
    AgencyCode::new(s).unwrap()
}

pub fn req() -> AgencyCode {
    agency("AA-EXPORT")
}

pub fn org() -> AgencyCode {
    agency("BB-BAFA")
}

pub fn at(days: u64) -> Timestamp {
    Timestamp(T0.0 + days * DAY)
}

pub fn details() -> TransactionDetails {
    TransactionDetails {
        items: vec![Item {
            description: "Five-axis machine tool".into(),
            category: Some("2B001".parse().unwrap()),
        }],
        end_user: "Example Industrial Ltd".into(),
        consignee: "Example Trading FZE".into(),
        destination_country: "AE".parse().unwrap(),
        value: Money {
            amount: "1250000.00".into(),
            currency: "EUR".into(),
        },
        free_text: Some("Second shipment under the same contract.".into()),
    }
}

pub fn new_request(silence: SilenceMeans) -> NewRequest {
    NewRequest {
        id: ConsultationId([7; 16]),
        requester: req(),
        origin: org(),
        entry_id: EntryId([1; 16]),
        record_id: RecordId([2; 32]),
        version: 3,
        reference: "AA/2026/0042".into(),
        deadline: at(30),
        details: details(),
        silence,
    }
}

/// A requester and an origin holding the same fresh consultation (deadline day 30).
pub fn pair(silence: SilenceMeans) -> (Consultation, Consultation) {
    let (r, actions) = Consultation::request(new_request(silence), T0).unwrap();
    let [
        Action::Send {
            to,
            payload: Payload::ConsultRequest(body),
        },
    ] = actions.as_slice()
    else {
        panic!("expected one request, got {actions:?}");
    };
    assert_eq!(to, &org());
    let o =
        Consultation::receive_request(&org(), &req(), body.clone(), silence, MIN, at(1)).unwrap();
    (r, o)
}

/// The one payload of a single `Send`.
pub fn only_send(actions: &[Action]) -> (&AgencyCode, &Payload) {
    match actions {
        [Action::Send { to, payload }] => (to, payload),
        _ => panic!("expected one send, got {actions:?}"),
    }
}
