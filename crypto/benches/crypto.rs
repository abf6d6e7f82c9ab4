//! Criterion benchmarks for the trust core (issue: foundation).
//!
//! Raw ed25519 (sign, verify, verify_strict, verify_batch of 64 and 1024) is measured
//! next to the same work on whole records, so BENCHMARKS.md can report each record
//! figure against its raw bound from the same run:
//! `cargo bench -p wlnode-crypto --bench crypto`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod common;
use common::draft12;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use wlnode_crypto::model::{AgencyCode, EntryId, Status};
use wlnode_crypto::record::{Record, RecordMeta, build_record, verify_batch};
use wlnode_crypto::time::Timestamp;
use wlnode_crypto::{SecretKey, keys::context};

fn meta(i: usize) -> RecordMeta {
    RecordMeta {
        entry_id: EntryId::random().unwrap(),
        origin: AgencyCode::new("AA-EXPORT").unwrap(),
        version: 1,
        issued_at: Timestamp(1_790_000_000_000 + i as u64),
        status: Status::Active,
        withdrawal_reason: None,
    }
}

fn records(n: usize, key: &SecretKey) -> Vec<wlnode_proto::Bytes> {
    (0..n)
        .map(|i| {
            build_record(meta(i), &draft12(i), key)
                .unwrap()
                .encode()
                .into()
        })
        .collect()
}

fn raw_inputs(
    n: usize,
) -> (
    Vec<Vec<u8>>,
    Vec<ed25519_dalek::Signature>,
    Vec<ed25519_dalek::VerifyingKey>,
) {
    let sk = SigningKey::from_bytes(&[3; 32]);
    let key = SecretKey::from_seed(&[3; 32]);
    let msgs: Vec<Vec<u8>> = records(n, &key)
        .iter()
        .map(|b| {
            let r = Record::decode_bytes(b.clone()).unwrap();
            let mut m = context::RECORD.to_vec();
            m.extend_from_slice(r.header_bytes());
            m
        })
        .collect();
    let sigs = msgs.iter().map(|m| sk.sign(m)).collect();
    let keys = vec![sk.verifying_key(); n];
    (msgs, sigs, keys)
}

fn raw(c: &mut Criterion) {
    let (msgs, sigs, keys) = raw_inputs(1024);
    let sk = SigningKey::from_bytes(&[3; 32]);
    let mut g = c.benchmark_group("raw_ed25519");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| sk.sign(black_box(&msgs[0]))));
    g.bench_function("verify", |b| {
        b.iter(|| keys[0].verify(black_box(&msgs[0]), &sigs[0]).unwrap())
    });
    g.bench_function("verify_strict", |b| {
        b.iter(|| {
            keys[0]
                .verify_strict(black_box(&msgs[0]), &sigs[0])
                .unwrap()
        })
    });
    for n in [64usize, 1024] {
        let refs: Vec<&[u8]> = msgs[..n].iter().map(Vec::as_slice).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_batch_{n}"), |b| {
            b.iter(|| {
                ed25519_dalek::verify_batch(black_box(&refs), &sigs[..n], &keys[..n]).unwrap()
            })
        });
    }
    g.finish();
}

fn record_level(c: &mut Criterion) {
    let key = SecretKey::from_seed(&[3; 32]);
    let encoded = records(1024, &key);
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(1));
    let d = draft12(1);
    g.bench_function("build_12_fields", |b| {
        b.iter(|| build_record(meta(1), black_box(&d), &key).unwrap())
    });
    g.bench_function("verify_12_disclosures", |b| {
        b.iter(|| {
            Record::decode_bytes(black_box(&encoded[0]).clone())
                .unwrap()
                .verify()
                .unwrap()
        })
    });
    for n in [64usize, 1024] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("verify_single_{n}"), |b| {
            b.iter(|| {
                for e in &encoded[..n] {
                    Record::decode_bytes(black_box(e).clone())
                        .unwrap()
                        .verify()
                        .unwrap();
                }
            })
        });
        g.bench_function(format!("verify_batch_{n}"), |b| {
            b.iter_batched(
                || (),
                |()| {
                    let recs: Vec<Record> = encoded[..n]
                        .iter()
                        .map(|e| Record::decode_bytes(e.clone()).unwrap())
                        .collect();
                    let out = verify_batch(black_box(recs));
                    assert!(out.iter().all(Result::is_ok));
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = raw, record_level
}
criterion_main!(benches, bd);

fn breakdown(c: &mut Criterion) {
    let key = SecretKey::from_seed(&[3; 32]);
    let encoded = records(4, &key);
    let r = Record::decode(&encoded[0]).unwrap();
    let mut g = c.benchmark_group("breakdown");
    g.bench_function("decode_only", |b| {
        b.iter(|| Record::decode_bytes(black_box(&encoded[0]).clone()).unwrap())
    });
    g.bench_function("header_decode_only", |b| {
        b.iter(|| {
            wlnode_crypto::record::RecordHeader::decode_canonical(black_box(r.header_bytes()))
                .unwrap()
        })
    });
    g.bench_function("sha256_header", |b| {
        b.iter(|| wlnode_crypto::sha256::digest(black_box(r.header_bytes())))
    });
    g.bench_function("key_from_bytes", |b| {
        b.iter(|| {
            wlnode_crypto::PublicKey::from_bytes(black_box(key.public_key().as_bytes())).unwrap()
        })
    });
    g.finish();
}
criterion_group! {
    name = bd;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_secs(1));
    targets = breakdown
}
