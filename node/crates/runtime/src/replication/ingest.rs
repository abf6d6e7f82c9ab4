//! Records from peers: checked on the blocking pool (`wlnode_sync::ingest::check`:
//! decode, distribution, roster, clock, accept rules, signatures), stored in one batch
//! with their rejections' audit events (and a changes-feed cursor, for a Pull batch),
//! then accounted: metrics, the peer's error line, strikes towards a ban, and the
//! peer's state machine.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::Instrument;
use wlnode_audit::event::{Event as AuditEvent, EventKind};
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::time::Timestamp;
use wlnode_net::PeerRef;
use wlnode_store::{IngestBatch, StoreError, StoreHandle};
use wlnode_sync::ingest::{RejectReason, Rejected, check};
use wlnode_sync::msg::{Batch, Received};
use wlnode_sync::responder::JobId;
use wlnode_types::{Cursor, Outcome};

use super::{Done, Service};
use crate::handles::Ingested;
use crate::metrics::PeerLabel;
use crate::trust::TrustCell;

/// What became of one batch of records from a peer.
#[derive(Default)]
pub(crate) struct IngestOutcome {
    received: u64,
    stored: u64,
    rejected: Vec<Rejected>,
    /// Records were remembered as declined (reconciliation sets changed).
    declined: bool,
    /// Some of them for every peer, not only the sender.
    declined_for_all: bool,
    error: Option<String>,
}

/// A batch checked and stored, back in the service's loop.
pub(super) struct Applied {
    peer: PeerRef,
    agency: AgencyCode,
    /// For a Pull batch: the batch (without records) and the cursor stored with it.
    batch: Option<(Batch<Received>, Cursor)>,
    /// Records returned in our reconciliation session with this id.
    session: Option<[u8; 16]>,
    /// Records pushed in the peer's session, whose reply waits for this.
    job: Option<JobId>,
    outcome: IngestOutcome,
}

/// What checking and storing needs.
#[derive(Clone)]
struct Ingest {
    store: StoreHandle,
    trust: TrustCell,
    ingested: Ingested,
    skew: Duration,
    /// The sender's Hello named another roster version than ours.
    rosters_differ: bool,
}

/// Checks and stores records from `agency`, with an optional cursor to persist.
async fn ingest(
    i: &Ingest,
    agency: &AgencyCode,
    transfers: Vec<Received>,
    cursor: Option<Cursor>,
) -> IngestOutcome {
    let received = transfers.len() as u64;
    let policy = i.trust.policy();
    let from = agency.clone();
    let skew = i.skew;
    let for_check = policy.clone();
    let mut checked = match tokio::task::spawn_blocking(move || {
        check(&for_check, &from, transfers, Timestamp::now(), skew)
    })
    .await
    {
        Ok(c) => c,
        Err(e) => {
            return IngestOutcome {
                received,
                error: Some(format!("verification task failed: {e}")),
                ..Default::default()
            };
        }
    };
    if !checked.unproven.is_empty() {
        // A revoked key's records count only where this node held them before it
        // learned of the revocation, or with a proof that they predate it.
        let ids: Vec<RecordId> = checked
            .unproven
            .iter()
            .map(|(r, _)| r.record.id())
            .collect();
        let held = match i
            .store
            .call(move |s| {
                ids.into_iter()
                    .filter_map(|id| s.has_record(&id).map(|h| h.then_some(id)).transpose())
                    .collect::<Result<HashSet<RecordId>, _>>()
            })
            .await
        {
            Ok(h) => h,
            Err(e) => {
                return IngestOutcome {
                    received,
                    error: Some(e.to_string()),
                    ..Default::default()
                };
            }
        };
        checked.settle_unproven(&policy, agency, |id| held.contains(id));
    }
    let at = Timestamp::now().as_millis();
    // One audit event per refused record, except refusals a roster difference
    // explains while the rosters differ: those are no strike, so a member could send
    // them without end; they get one event per reason and batch (no record id).
    let mut lag_reasons: Vec<String> = Vec::new();
    let mut audit: Vec<AuditEvent> = Vec::new();
    for r in &checked.rejected {
        let code = r.reason.code();
        let record_id = if i.rosters_differ && r.reason.may_be_roster_lag() {
            if lag_reasons.contains(&code) {
                continue;
            }
            lag_reasons.push(code.clone());
            None
        } else {
            r.record_id
        };
        audit.push(AuditEvent::new(
            at,
            EventKind::Rejected {
                record_id,
                from: agency.clone(),
                reason: code,
            },
        ));
    }
    let mut outcome = IngestOutcome {
        received,
        rejected: checked.rejected,
        ..Default::default()
    };
    if checked.accepted.is_empty() && cursor.is_none() && checked.declined.is_empty() {
        if !audit.is_empty()
            && let Err(e) = i.store.call(move |s| s.audit_append(&audit)).await
        {
            i.ingested.write_failed(&e);
        }
        return outcome;
    }
    let items: Vec<(RecordId, AgencyCode)> = checked
        .accepted
        .iter()
        .map(|i| (i.record.id(), i.record.header().origin.clone()))
        .collect();
    let for_all = checked.declined.iter().any(|d| d.only_for.is_none());
    let batch = IngestBatch {
        items: checked.accepted,
        cursor: cursor.map(|c| (agency.clone(), c)),
        declined: checked.declined,
        audit,
    };
    match i.store.ingest(batch).await {
        Ok(report) => {
            // Sets change only when a declined entry is new: a peer re-sending what
            // it gave us before must not make every cached set stale.
            outcome.declined = report.declined_new > 0;
            // The store declines an equivocation excess for every peer itself.
            outcome.declined_for_all = outcome.declined
                && (for_all
                    || report
                        .outcomes
                        .iter()
                        .any(|o| matches!(o, Outcome::EquivocationExcess)));
            outcome.stored = report.changed() as u64;
            // The store refused what went past its bound on equivocation evidence
            // (and audited it): a rejection like any other.
            for ((id, origin), o) in items.into_iter().zip(&report.outcomes) {
                if matches!(o, Outcome::EquivocationExcess) {
                    outcome.rejected.push(Rejected {
                        record_id: Some(id),
                        reason: RejectReason::EquivocationExcess {
                            from_origin: origin == *agency,
                        },
                        origin: Some(origin),
                    });
                }
            }
            i.ingested.after_ingest(&report, "peer");
        }
        Err(e) => {
            i.ingested.write_failed(&e);
            outcome.error = Some(match e {
                StoreError::Closed => "store closed".into(),
                other => other.to_string(),
            });
        }
    }
    outcome
}

impl Service {
    /// Checks and stores `transfers` from `peer` in a task; [`Self::on_applied`]
    /// follows.
    pub(super) fn spawn_ingest(
        &mut self,
        peer: PeerRef,
        agency: AgencyCode,
        transfers: Vec<Received>,
        batch: Option<(Batch<Received>, Cursor)>,
        session: Option<[u8; 16]>,
        job: Option<JobId>,
    ) {
        let ours = self.trust.roster().version();
        let i = Ingest {
            store: self.store.clone(),
            trust: self.trust.clone(),
            ingested: self.ingested.clone(),
            skew: self.cfg.max_clock_skew.0,
            rosters_differ: self
                .peers
                .get(&peer)
                .and_then(|ps| ps.roster_version)
                .is_some_and(|v| v != ours),
        };
        let tx = self.tasks_tx.clone();
        let span = self.peer_span(&peer);
        let cursor = batch.as_ref().map(|(_, c)| *c);
        tokio::spawn(
            async move {
                let outcome = ingest(&i, &agency, transfers, cursor).await;
                let _ = tx.send(Done::Applied(Applied {
                    peer,
                    agency,
                    batch,
                    session,
                    job,
                    outcome,
                }));
            }
            .instrument(span),
        );
    }

    pub(super) fn on_applied(&mut self, a: Applied) {
        let Applied {
            peer,
            agency,
            batch,
            session,
            job,
            outcome,
        } = a;
        let now = Instant::now();
        if outcome.declined {
            self.sets
                .on_declined((!outcome.declined_for_all).then_some(&agency));
            self.responder.on_store_changed();
        }
        let label = PeerLabel {
            peer: agency.to_string(),
        };
        self.metrics
            .received
            .get_or_create(&label)
            .inc_by(outcome.received);
        let c = self.counters.entry(agency.clone()).or_default();
        c.received += outcome.received;
        c.rejected += outcome.rejected.len() as u64;
        let mut against = 0u32;
        let their_roster = self.peers.get(&peer).and_then(|ps| ps.roster_version);
        let our_roster = self.trust.roster().version();
        for r in &outcome.rejected {
            self.metrics.reject(agency.as_str(), &r.reason.code());
            if r.reason.strikes(their_roster, our_roster) {
                against += 1;
            }
            tracing::warn!(
                %agency,
                record = ?r.record_id.map(|i| i.to_hex()),
                origin = ?r.origin.as_ref().map(|o| o.to_string()),
                reason = %r.reason.code(),
                "record rejected"
            );
        }
        if !outcome.rejected.is_empty() {
            self.set_error(
                &agency,
                format!(
                    "{} record(s) rejected, last: {}",
                    outcome.rejected.len(),
                    outcome
                        .rejected
                        .last()
                        .map(|r| r.reason.code())
                        .unwrap_or_default()
                ),
            );
        }
        self.record_invalid(&agency, against);
        if let Some(s) = session
            && let Some(ps) = self.peers.get_mut(&peer)
        {
            let actions = ps.on_session_stored(s, outcome.error.is_none(), now);
            self.run_actions(peer, actions);
        } else if batch.is_none()
            && let Some(ps) = self.peers.get_mut(&peer)
        {
            ps.on_push_stored(now);
        }
        match (batch, outcome.error) {
            (Some((b, cursor)), None) => {
                self.cursors.insert(agency.clone(), cursor);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_batch_applied(b.log_epoch, cursor.seq, b.head_seq, now);
                    let latest = ps.cursor();
                    self.run_actions(peer, actions);
                    // The backlog was settled while this batch was in flight with the
                    // older mark: store the mark again.
                    if let Some(c) = latest
                        && c.epoch == cursor.epoch
                        && c.backlog_complete
                        && !cursor.backlog_complete
                    {
                        self.persist_cursor(agency.clone(), c);
                    }
                }
            }
            (Some(_), Some(e)) => {
                self.set_error(&agency, e.clone());
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.on_pull_failed(e, now);
                }
            }
            (None, Some(e)) => self.set_error(&agency, e),
            (None, None) => {}
        }
        tracing::debug!(%agency, stored = outcome.stored, "records applied");
        if let Some(job) = job {
            let actions = self.responder.on_ingested(job);
            self.serve(actions);
        }
    }
}
