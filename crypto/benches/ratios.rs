//! Interleaved ratio measurements for the foundation targets.
//!
//! On a shared 2-core VM, CPU speed drifts by tens of percent between seconds, so
//! comparing two criterion groups measured a minute apart is unreliable. This bench
//! measures each figure next to its bound in alternating rounds and reports the median
//! of the per-round ratios as JSON:
//! `cargo bench -p wlnode-crypto --bench ratios`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;
use common::draft12;
use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey};
use wlnode_crypto::SecretKey;
use wlnode_crypto::keys::context;
use wlnode_crypto::model::{AgencyCode, EntryId, Status};
use wlnode_crypto::record::{Record, RecordMeta, build_record, verify_batch};
use wlnode_crypto::time::Timestamp;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time<F: FnMut()>(n: usize, mut f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64() / n as f64 * 1e6
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let rounds = if quick { 3 } else { 15 };
    let n = 1024;
    let key = SecretKey::from_seed(&[3; 32]);
    let sk = SigningKey::from_bytes(&[3; 32]);
    let encoded: Vec<wlnode_proto::Bytes> = (0..n)
        .map(|i| {
            let meta = RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: AgencyCode::new("AA-EXPORT").unwrap(),
                version: 1,
                issued_at: Timestamp(1_790_000_000_000 + i as u64),
                status: Status::Active,
                withdrawal_reason: None,
            };
            wlnode_proto::Bytes::from(build_record(meta, &draft12(i), &key).unwrap().encode())
        })
        .collect();
    let msgs: Vec<Vec<u8>> = encoded
        .iter()
        .map(|b| {
            [
                context::RECORD,
                Record::decode_bytes(b.clone()).unwrap().header_bytes(),
            ]
            .concat()
        })
        .collect();
    let sigs: Vec<ed25519_dalek::Signature> = msgs.iter().map(|m| sk.sign(m)).collect();
    let vks = vec![sk.verifying_key(); n];
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();

    // Six measurements per round, run in a rotated order so that drift within a round
    // does not favour any of them.
    const NAMES: [&str; 6] = [
        "raw_verify_strict",
        "record_verify_single",
        "raw_verify_batch",
        "record_verify_batch",
        "record_decode_only",
        "record_verify_only_predecoded",
    ];
    let decoded: Vec<Record> = encoded
        .iter()
        .map(|e| Record::decode_bytes(e.clone()).unwrap())
        .collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); NAMES.len()];
    let mut r_single = Vec::new();
    let mut r_batch = Vec::new();
    let mut r_vs = Vec::new();
    for round in 0..rounds {
        let mut this = [0f64; 6];
        for k in 0..NAMES.len() {
            let which = (k + round) % NAMES.len();
            this[which] = match which {
                0 => time(n, || {
                    for i in 0..n {
                        vks[i].verify_strict(black_box(&msgs[i]), &sigs[i]).unwrap();
                    }
                }),
                1 => time(n, || {
                    for e in &encoded {
                        Record::decode_bytes(black_box(e).clone())
                            .unwrap()
                            .verify()
                            .unwrap();
                    }
                }),
                2 => time(n, || {
                    ed25519_dalek::verify_batch(black_box(&refs), &sigs, &vks).unwrap()
                }),
                3 => time(n, || {
                    let recs: Vec<Record> = encoded
                        .iter()
                        .map(|e| Record::decode_bytes(e.clone()).unwrap())
                        .collect();
                    assert!(verify_batch(black_box(recs)).iter().all(Result::is_ok));
                }),
                4 => time(n, || {
                    for e in &encoded {
                        black_box(Record::decode_bytes(black_box(e).clone()).unwrap());
                    }
                }),
                _ => time(n, || {
                    for r in &decoded {
                        black_box(r.clone().verify().unwrap());
                    }
                }),
            };
        }
        for (s, v) in samples.iter_mut().zip(this) {
            s.push(v);
        }
        r_single.push(this[1] / this[0]);
        r_batch.push(this[1] / this[3]);
        r_vs.push(this[3] / this[2]);
    }
    let us: serde_json::Map<String, serde_json::Value> = NAMES
        .iter()
        .zip(samples)
        .map(|(n, s)| ((*n).to_owned(), serde_json::json!(median(s))))
        .collect();
    let out = serde_json::json!({
        "records": n,
        "rounds": rounds,
        "us_per_record": us,
        "ratios": {
            "record_single_over_raw_verify_strict": median(r_single),
            "target_record_single_over_raw": 1.15,
            "record_batch_speedup_over_record_single": median(r_batch),
            "target_batch_speedup": 1.8,
            "record_batch_over_raw_batch": median(r_vs),
        }
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
