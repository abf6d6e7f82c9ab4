//! Strategies and fixtures shared by the crypto integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryDraft, EntryId, GroupName, Identifier,
    Reason, Scope, Sensitivity, Status, Subject, SubjectKind,
};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::time::{PartialDate, Timestamp};
use wlnode_crypto::{SecretKey, VerifiedRecord};

pub fn text(max: usize) -> impl Strategy<Value = String> {
    // Mixed scripts, with leading/trailing spaces and decomposed accents to exercise
    // canonicalisation.
    prop::string::string_regex(&format!(
        "[ ]?[A-Za-z\u{0400}-\u{044F}\u{0600}-\u{064A}e\u{0301}0-9][A-Za-z\u{0400}-\u{044F} .,'-]{{0,{max}}}[ ]?"
    ))
    .unwrap()
}

pub fn identifier() -> impl Strategy<Value = Identifier> {
    (
        prop::sample::select(vec![
            "passport",
            "national_id",
            "registration",
            "imo",
            "lei",
        ]),
        "[A-Z0-9]{4,12}",
    )
        .prop_map(|(k, v)| Identifier {
            kind: k.to_owned(),
            value: v,
        })
}

pub fn draft() -> impl Strategy<Value = EntryDraft> {
    (
        (
            prop::sample::select(SubjectKind::ALL.to_vec()),
            text(40),
            prop::collection::vec(text(30), 0..4),
            prop::option::of(prop::sample::select(vec!["IR", "RU", "CN", "AE"])),
            prop::collection::vec(text(60), 0..3),
            prop::collection::vec(identifier(), 0..4),
            prop::option::of((1900u16..2020, 1u8..=12, 1u8..=28)),
        ),
        prop::sample::select(Reason::ALL.to_vec()),
        prop::collection::btree_set("[0-9][A-E][0-9]{3}", 0..3),
        prop::option::of(text(80)),
        prop::option::of(text(80)),
        (
            prop::sample::select(vec![Scope::Federation, Scope::Groups, Scope::Neighbors]),
            prop::bool::weighted(0.3),
        ),
    )
        .prop_map(
            |(
                (kind, name, aliases, country, addresses, identifiers, dob),
                reason,
                cats,
                remarks,
                items,
                (scope, scoped),
            )| {
                EntryDraft {
                    subject: Subject {
                        kind,
                        name,
                        aliases,
                        country: country.map(|c| CountryCode::new(c).unwrap()),
                        addresses,
                        identifiers,
                        birth_date: dob.map(|(y, m, d)| {
                            PartialDate::parse(&format!("{y:04}-{m:02}-{d:02}")).unwrap()
                        }),
                        nationality: None,
                    },
                    reason,
                    categories: cats
                        .into_iter()
                        .map(|c| Category::new(c).unwrap())
                        .collect(),
                    legal_basis: None,
                    items,
                    remarks,
                    contact: None,
                    distribution: Distribution {
                        scope,
                        groups: if scope == Scope::Groups {
                            BTreeSet::from([GroupName::new("eu").unwrap()])
                        } else {
                            BTreeSet::new()
                        },
                        max_hops: 0,
                        sensitivity: Sensitivity::new("restricted").unwrap(),
                        fields: if scoped {
                            serde_json::from_value(serde_json::json!({
                                "identifiers": ["group:eu"],
                                "birth_date": ["BB-CUSTOMS"]
                            }))
                            .unwrap()
                        } else {
                            Default::default()
                        },
                    },
                    review_by: None,
                    on_hit: None,
                }
            },
        )
}

pub fn meta(version: u64) -> RecordMeta {
    RecordMeta {
        entry_id: EntryId::random().unwrap(),
        origin: AgencyCode::new("AA-EXPORT").unwrap(),
        version,
        issued_at: Timestamp(1_790_000_000_000),
        status: Status::Active,
        withdrawal_reason: None,
    }
}

/// A draft with exactly 12 content fields.
pub fn twelve_field_draft() -> EntryDraft {
    EntryDraft {
        subject: Subject {
            kind: SubjectKind::Person,
            name: "Mohammad al-Rashid".into(),
            aliases: vec![
                "Muhammed Rashid".into(),
                "РАШИД Мухаммад".into(),
                "M. al Rashid".into(),
            ],
            country: Some(CountryCode::new("AE").unwrap()),
            addresses: vec!["PO Box 1234, Jebel Ali Free Zone, Dubai".into()],
            identifiers: vec![
                Identifier {
                    kind: "passport".into(),
                    value: "P1234567".into(),
                },
                Identifier {
                    kind: "national_id".into(),
                    value: "784-1970-1234567-1".into(),
                },
            ],
            birth_date: Some(PartialDate::parse("1970-03-14").unwrap()),
            nationality: Some(CountryCode::new("SY").unwrap()),
        },
        reason: Reason::DiversionRisk,
        categories: [Category::new("3A001").unwrap()].into(),
        legal_basis: Some("Regulation (EU) 2021/821 Art. 4".into()),
        items: Some("Frequency changers, 3A225".into()),
        remarks: Some("Procurement agent for front companies".into()),
        contact: None,
        distribution: Distribution::federation(),
        review_by: None,
        on_hit: None,
    }
}

pub fn signed(draft: &EntryDraft, key: &SecretKey) -> VerifiedRecord {
    build_record(meta(1), draft, key).unwrap()
}
