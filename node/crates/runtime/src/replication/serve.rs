//! Carrying out the responder's actions. The store thread only reads raw bytes and
//! appends events; decoding, the policy and negentropy run on the blocking pool; each
//! result goes back to the responder through the service's loop.

use std::sync::Arc;
use std::time::Instant;

use negentropy::NegentropyStorageVector;
use wlnode_crypto::model::RecordId;
use wlnode_crypto::time::Timestamp;
use wlnode_net::PeerRef;
use wlnode_store::StoreError;
use wlnode_sync::ServeAction;
use wlnode_sync::outbound::{PrepareDone, RawBatch};
use wlnode_sync::reconcile::{self, ReconcileError};
use wlnode_sync::responder::{JobId, LogRead, Served, StepFailure};
use wlnode_types::RawRecord;

use super::sets::reconcile_set;
use super::{Done, Reply, Service};
use crate::metrics::PeerLabel;

/// Why a step of serving a peer failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reconciliation set could not be built.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// A blocking task failed.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The node is stopping: the message will not go out.
    #[error("the node is stopping")]
    Stopping,
}

/// The result of one responder step, back in the loop.
pub(super) enum ServeDone {
    Head(JobId, Result<u64, StoreError>),
    Log(JobId, Result<LogRead, StoreError>),
    Records(JobId, Result<(RawBatch, bool), StoreError>),
    Set(JobId, Result<Arc<NegentropyStorageVector>, StepError>),
    Negentropy(
        JobId,
        Arc<NegentropyStorageVector>,
        Result<Vec<u8>, StepFailure>,
    ),
    Prepared(PrepareDone),
    Appended(JobId, Result<(), StepError>),
}

impl Service {
    /// Carries out `actions`.
    pub(super) fn serve(&mut self, actions: Vec<ServeAction<PeerRef, Reply>>) {
        for a in actions {
            self.serve_one(a);
        }
    }

    fn spawn_step<F>(&self, f: F)
    where
        F: std::future::Future<Output = ServeDone> + Send + 'static,
    {
        let tx = self.tasks_tx.clone();
        tokio::spawn(async move {
            let done = f.await;
            let _ = tx.send(Done::Serve(done));
        });
    }

    fn serve_one(&mut self, a: ServeAction<PeerRef, Reply>) {
        match a {
            ServeAction::ReadHead { job } => {
                let store = self.store.clone();
                self.spawn_step(async move {
                    let head = store.call(|s| s.head_seq()).await;
                    ServeDone::Head(job, head)
                });
            }
            ServeAction::ReadLog {
                job,
                after,
                limit,
                max_read_bytes,
            } => {
                let store = self.store.clone();
                self.spawn_step(async move {
                    // The store thread only reads; decoding and preparing happen on
                    // the blocking pool.
                    let read = store
                        .call(move |s| {
                            let head = s.head_seq()?;
                            let mut raws: RawBatch = Vec::new();
                            let (mut read_bytes, mut truncated) = (0usize, false);
                            for (seq, id) in s.log_after(after, limit)? {
                                if read_bytes > max_read_bytes {
                                    truncated = true;
                                    break;
                                }
                                let raw = s.record_raw(&id)?;
                                read_bytes += raw.as_ref().map_or(0, RawRecord::len);
                                raws.push((seq, id, raw));
                            }
                            Ok(LogRead {
                                head,
                                raws,
                                truncated,
                                audit: s.audit_enabled(),
                            })
                        })
                        .await;
                    ServeDone::Log(job, read)
                });
            }
            ServeAction::ReadRecords { job, ids } => {
                let store = self.store.clone();
                self.spawn_step(async move {
                    let read = store.call(move |s| read_records(s, ids)).await;
                    ServeDone::Records(job, read)
                });
            }
            ServeAction::Ingest {
                job,
                peer,
                agency,
                transfers,
            } => self.spawn_ingest(peer, agency, transfers, None, None, Some(job)),
            ServeAction::BuildSet {
                job,
                agency,
                policy,
            } => {
                let fut = reconcile_set(
                    self.store.clone(),
                    policy,
                    agency,
                    self.sets.clone(),
                    self.metrics.clone(),
                );
                self.spawn_step(async move { ServeDone::Set(job, fut.await) });
            }
            ServeAction::Negentropy {
                job,
                storage,
                message,
            } => {
                self.spawn_step(async move {
                    let st = storage.clone();
                    let answer = match tokio::task::spawn_blocking(move || {
                        reconcile::respond(&st, &message)
                    })
                    .await
                    {
                        Ok(Ok(m)) => Ok(m),
                        Ok(Err(e)) => Err(StepFailure::BadRequest(e.to_string())),
                        Err(e) => Err(StepFailure::Unavailable(e.to_string())),
                    };
                    ServeDone::Negentropy(job, storage, answer)
                });
            }
            ServeAction::Prepare(p) => {
                self.spawn_step(async move {
                    let job = p.job();
                    match tokio::task::spawn_blocking(move || {
                        p.run(Instant::now(), Timestamp::now())
                    })
                    .await
                    {
                        Ok(done) => ServeDone::Prepared(done),
                        Err(e) => ServeDone::Prepared(PrepareDone::failed(job, e.to_string())),
                    }
                });
            }
            ServeAction::AppendSent { job, events } => {
                let store = self.store.clone();
                let closing = self.tasks_tx.clone();
                let net = self.net.clone();
                self.spawn_step(async move {
                    // A message that cannot go out (the node is stopping) is not
                    // audited as sent.
                    let r = if closing.is_closed() || net.is_closed() {
                        Err(StepError::Stopping)
                    } else {
                        store
                            .call(move |s| s.audit_append(&events))
                            .await
                            .map(|_| ())
                            .map_err(StepError::from)
                    };
                    ServeDone::Appended(job, r)
                });
            }
            ServeAction::Served(s) => self.on_served(s),
            ServeAction::Strike { peer, reason } => self.protocol_violation(peer, reason),
            ServeAction::Respond { reply, response } => self.respond(reply, &response),
            ServeAction::PushReady {
                peer,
                step,
                transfers,
                leftover,
            } => self.on_push_ready(peer, step, transfers, leftover),
        }
    }

    pub(super) fn on_serve_done(&mut self, d: ServeDone) {
        let actions = match d {
            ServeDone::Head(job, r) => self.responder.on_head(job, r),
            ServeDone::Log(job, r) => self.responder.on_log_read(job, r),
            ServeDone::Records(job, r) => self.responder.on_records_read(job, r),
            ServeDone::Set(job, r) => self.responder.on_set_built(job, r),
            ServeDone::Negentropy(job, storage, r) => {
                self.responder
                    .on_negentropy(job, storage, r, Instant::now())
            }
            ServeDone::Prepared(done) => self.responder.on_prepared(done),
            ServeDone::Appended(job, r) => self.responder.on_sent_appended(job, r),
        };
        self.serve(actions);
    }

    /// Counts what a response or push carried, and tells the peer's state machine
    /// whether a Pull batch reached our head.
    fn on_served(&mut self, s: Served) {
        let now = Instant::now();
        let Served {
            agency,
            records,
            withheld_fields,
            denied,
            at_head,
        } = s;
        if let Some(at_head) = at_head {
            let peers: Vec<PeerRef> = self
                .peers
                .iter()
                .filter(|(_, p)| p.agency == agency)
                .map(|(id, _)| *id)
                .collect();
            for p in peers {
                if let Some(ps) = self.peers.get_mut(&p) {
                    let actions = ps.on_pull_served(at_head, now);
                    self.run_actions(p, actions);
                }
            }
        }
        let label = PeerLabel {
            peer: agency.to_string(),
        };
        if records > 0 {
            tracing::debug!(%agency, records, withheld_fields, denied, "records sent");
        }
        self.metrics.sent.get_or_create(&label).inc_by(records);
        self.metrics
            .fields_withheld
            .get_or_create(&label)
            .inc_by(withheld_fields);
        self.metrics
            .withheld_by_policy
            .get_or_create(&label)
            .inc_by(denied);
        self.counters.entry(agency).or_default().sent += records;
    }
}

/// Reads `ids` raw (log position 0: not from the log), with whether the audit log is
/// on.
fn read_records(
    s: &wlnode_store::Store,
    ids: Vec<RecordId>,
) -> Result<(RawBatch, bool), wlnode_store::StoreError> {
    let mut raws: RawBatch = Vec::with_capacity(ids.len());
    for id in ids {
        let raw = s.record_raw(&id)?;
        raws.push((0, id, raw));
    }
    Ok((raws, s.audit_enabled()))
}
