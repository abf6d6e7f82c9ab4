//! Profiling aid: decodes the same 12-field records in a loop, nothing else, so that
//! `perf record` or `valgrind --tool=callgrind` sees only the decoding path:
//! `cargo build --release -p wlnode-crypto --example decode_loop`, then
//! `valgrind --tool=callgrind target/release/examples/decode_loop 64 20`.
//! `decode_loop sha` instead times SHA-256 on record-sized inputs (a 33-byte field
//! preimage, a 57-byte one, a 700-byte header) with each backend of
//! `wlnode_crypto::sha256` and with the `sha2` crate's plain `Sha256::digest`, and
//! says which backend this CPU uses.
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
    use wlnode_crypto::sha256::{Backend, backend, digest_with};
    println!("backend on this CPU: {:?}", backend());
    for len in [33usize, 57, 700] {
        let data = vec![0x5au8; len];
        let n = 200_000;
        // Best of five rounds, the three interleaved in each round.
        let mut best = [f64::MAX; 3];
        for _ in 0..5 {
            for (k, b) in best.iter_mut().enumerate() {
                let t = std::time::Instant::now();
                for _ in 0..n {
                    match k {
                        0 => black_box(digest_with(Backend::Ring, black_box(&data))),
                        1 => black_box(digest_with(Backend::Sha2, black_box(&data))),
                        _ => black_box(sha2::Sha256::digest(black_box(&data)).into()),
                    };
                }
                *b = b.min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
            }
        }
        println!(
            "{len:>4} bytes: ring {:.0} ns, sha2 backend {:.0} ns (÷ ring {:.2}), plain sha2 {:.0} ns",
            best[0],
            best[1],
            best[1] / best[0],
            best[2]
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
