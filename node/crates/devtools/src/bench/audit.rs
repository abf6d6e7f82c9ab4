//! `wlnode bench audit`: the auditor's cost of verifying N events (two logs of a
//! sender and a receiver: created + sent at one, accepted at the other), including the
//! tree rebuild, canonical decoding, each sent header's origin signature and
//! distribution, and the cross-checks.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
use wlnode_crypto::model::{EntryId, Status};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::time::Timestamp;

use super::{BenchError, MachineInfo, err, machine, synthetic_draft};
use crate::scaffold::{self, AgencySpec};
use wlnode_audit::event::{Checkpoint, EXPORT_FORMAT, Event, EventKind, ExportedLog, SentHeader};
use wlnode_audit::merkle::{self, MemStore};
use wlnode_audit::verify::{AuditorState, Options, verify};

/// The report.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// Machine.
    pub machine: MachineInfo,
    /// Events verified (both logs).
    pub events: u64,
    /// Distinct records the sends refer to (cycled when fewer than the sends).
    pub distinct_records: usize,
    /// Seconds to verify.
    pub verify_secs: f64,
    /// Events per second.
    pub events_per_sec: f64,
    /// Violations found (0 expected).
    pub violations: usize,
}

/// Runs the benchmark with about `events` events.
pub fn run(events: usize, distinct: usize, dir: &Path) -> Result<AuditReport, BenchError> {
    let fed = scaffold::create(
        dir,
        "bench",
        &[
            AgencySpec::member("AA-EXPORT", &["eu"]).map_err(err)?,
            AgencySpec::member("BB-CUSTOMS", &["eu"]).map_err(err)?,
        ],
    )
    .map_err(err)?;
    let (bytes, _) = wlnode_config::roster_file::read_signed(&fed.roster).map_err(err)?;
    let roster = wlnode_crypto::Roster::parse(&bytes).map_err(err)?;
    let node = |i: usize, f: &str, k| {
        let n = fed.nodes.get(i).ok_or_else(|| err("no node"))?;
        read_secret_key(&n.dir.join(f), k).map_err(err)
    };
    let agency_key = node(0, "agency.key", KeyKind::Agency)?;
    let (ka, kb) = (
        node(0, "node.key", KeyKind::Node)?,
        node(1, "node.key", KeyKind::Node)?,
    );
    let (a, b): (wlnode_crypto::AgencyCode, wlnode_crypto::AgencyCode) = (
        "AA-EXPORT".parse().map_err(err)?,
        "BB-CUSTOMS".parse().map_err(err)?,
    );
    let per_record = 3;
    let n_records = (events / per_record).max(1);
    let distinct = distinct.clamp(1, n_records);
    let mut records = Vec::with_capacity(distinct);
    for i in 0..distinct {
        records.push(
            build_record(
                RecordMeta {
                    entry_id: EntryId::random().map_err(err)?,
                    origin: "AA-EXPORT".parse().map_err(err)?,
                    version: 1,
                    issued_at: Timestamp::now(),
                    status: Status::Active,
                    withdrawal_reason: None,
                },
                &synthetic_draft(i)?,
                &agency_key,
            )
            .map_err(err)?,
        );
    }
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for i in 0..n_records {
        let r = records.get(i % distinct).ok_or_else(|| err("no record"))?;
        let t = i as u64;
        ea.push(Event::new(t, EventKind::Created { record_id: r.id() }));
        ea.push(Event::new(
            t,
            EventKind::Sent {
                record_id: r.id(),
                to: b.clone(),
                hops: 1,
                withheld: vec![],
                header: None,
                signature: None,
            },
        ));
        eb.push(Event::new(
            t + 5,
            EventKind::Accepted {
                record_id: r.id(),
                from: a.clone(),
                hops: 1,
                outcome: "stored".into(),
            },
        ));
    }
    let log = |agency: &wlnode_crypto::AgencyCode, key: &wlnode_crypto::SecretKey, ev: &[Event]| {
        let mut tree = MemStore::new();
        let mut strings = Vec::with_capacity(ev.len());
        for (n, e) in ev.iter().enumerate() {
            let b = e.encode();
            let _ = merkle::append(&mut tree, n as u64, merkle::leaf_hash(&b));
            strings.push(String::from_utf8(b).unwrap_or_default());
        }
        let size = ev.len() as u64;
        ExportedLog {
            format: EXPORT_FORMAT.into(),
            agency: agency.clone(),
            peer_id: key.public_key().peer_id(),
            events: strings,
            checkpoints: vec![
                Checkpoint {
                    agency: agency.clone(),
                    peer_id: key.public_key().peer_id(),
                    size,
                    root: hex::encode(merkle::root(&tree, size).unwrap_or_default()),
                    timestamp: size,
                }
                .sign(key),
            ],
            headers: vec![],
        }
    };
    let mut logs = [log(&a, &ka, &ea), log(&b, &kb, &eb)];
    // As nodes export them: each sent record's signed header once, beside the events.
    logs[0].headers = records
        .iter()
        .map(|r| SentHeader {
            record_id: r.id(),
            header: hex::encode(r.header_bytes()),
            signature: hex::encode(r.signature().0),
        })
        .collect();
    let total = (ea.len() + eb.len()) as u64;
    drop((ea, eb));
    let t0 = Instant::now();
    let report = verify(&roster, &logs, &AuditorState::default(), Options::default());
    let secs = t0.elapsed().as_secs_f64();
    Ok(AuditReport {
        machine: machine(),
        events: total,
        distinct_records: distinct,
        verify_secs: secs,
        events_per_sec: total as f64 / secs.max(1e-9),
        violations: report.violations.len(),
    })
}
