//! Profiling aid: decodes the same 12-field records in a loop, nothing else, so that
//! `perf record` or `valgrind --tool=callgrind` sees only the decoding path:
//! `cargo build --release -p wlnode-crypto --example decode_loop`, then
//! `valgrind --tool=callgrind target/release/examples/decode_loop 64 20`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, Distribution, EntryDraft, EntryId, Identifier, Reason,
    Status, Subject, SubjectKind,
};
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::time::{PartialDate, Timestamp};

fn draft12(i: usize) -> EntryDraft {
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
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let key = SecretKey::from_seed(&[3; 32]);
    let encoded: Vec<wlnode_proto::Bytes> = (0..n)
        .map(|i| {
            let meta = RecordMeta {
                entry_id: EntryId([7; 16]),
                origin: AgencyCode::new("AA-EXPORT").unwrap(),
                version: 1,
                issued_at: Timestamp(1_790_000_000_000 + i as u64),
                status: Status::Active,
                withdrawal_reason: None,
            };
            wlnode_proto::Bytes::from(build_record(meta, &draft12(i), &key).unwrap().encode())
        })
        .collect();
    let t = std::time::Instant::now();
    for _ in 0..reps {
        for e in &encoded {
            black_box(Record::decode_bytes(black_box(e).clone()).unwrap());
        }
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / (n * reps) as f64;
    println!("{us:.2} us per record decode");
}
