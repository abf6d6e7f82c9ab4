//! Profiling aid: decodes the same 12-field records in a loop, nothing else, so that
//! `perf record` or `valgrind --tool=callgrind` sees only the decoding path:
//! `cargo build --release -p wlnode-crypto --example decode_loop`, then
//! `valgrind --tool=callgrind target/release/examples/decode_loop 64 20`.
//! `decode_loop sha` instead compares ring's SHA-256 with the `sha2` crate's on
//! record-sized inputs (a 33-byte field preimage, a 700-byte header).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;
use common::draft12;
use std::hint::black_box;

use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{AgencyCode, EntryId, Status};
use wlnode_crypto::record::{Record, RecordMeta, build_record};
use wlnode_crypto::time::Timestamp;

fn sha() {
    use sha2::Digest;
    for len in [33usize, 57, 700] {
        let data = vec![0x5au8; len];
        let n = 200_000;
        let mut best = [f64::MAX; 2];
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..n {
                black_box(wlnode_crypto::sha256::digest(black_box(&data)));
            }
            best[0] = best[0].min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
            let t = std::time::Instant::now();
            for _ in 0..n {
                black_box(sha2::Sha256::digest(black_box(&data)));
            }
            best[1] = best[1].min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
        println!(
            "{len:>4} bytes: ring {:.0} ns, sha2 {:.0} ns (sha2/ring {:.2})",
            best[0],
            best[1],
            best[1] / best[0]
        );
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("sha") {
        sha();
        return;
    }
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
