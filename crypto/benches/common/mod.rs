//! The realistic 12-field entry the crypto benchmarks and the decode profiling example
//! sign and verify, in one place so every figure is measured on the same record.
#![allow(clippy::unwrap_used, dead_code)]

use wlnode_crypto::model::{
    Category, CountryCode, Distribution, EntryDraft, Identifier, Reason, Subject, SubjectKind,
};
use wlnode_crypto::time::PartialDate;

/// Entry `i`: name, 3 aliases (one Cyrillic), address, 2 identifiers, birth date,
/// nationality, legal basis, items, remarks.
pub fn draft12(i: usize) -> EntryDraft {
    EntryDraft {
        subject: Subject {
            kind: SubjectKind::Person,
            name: format!("Mohammad al-Rashid {i}"),
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
                    value: format!("P{i:07}"),
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
