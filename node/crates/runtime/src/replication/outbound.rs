//! Our side of the protocol: carrying out what each peer's [`PeerSync`] asks for
//! (Hello, Notify, Pull, cursors, reconciliations), the answers to our requests, and
//! our reconciliation sessions (whose pushed records the responder prepares).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tracing::Instrument;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::time::Timestamp;
use wlnode_net::{Frame, PeerRef};
use wlnode_sync::Action;
use wlnode_sync::msg::{
    Batch, Notify, Received, Reconcile, ReconcileReply, Request, Response, Transfer,
};
use wlnode_sync::reconcile::{Initiator, Step};
use wlnode_sync::wire::decode_response;
use wlnode_types::Cursor;

use super::sets::reconcile_set;
use super::{Done, Pending, Service, round_span};
use crate::metrics::PeerLabel;

/// Most `need` ids per reconcile request (also bounded by the batch byte limit).
const MAX_NEED: usize = wlnode_sync::responder::MAX_NEED;

fn random_session() -> [u8; 16] {
    let mut s = [0u8; 16];
    if getrandom::fill(&mut s).is_err() {
        s = Timestamp::now()
            .as_millis()
            .to_le_bytes()
            .repeat(2)
            .try_into()
            .unwrap_or([0; 16]);
    }
    s
}

impl Service {
    pub(super) fn run_actions(&mut self, peer: PeerRef, actions: Vec<Action>) {
        let _span = self.peer_span(&peer).entered();
        for a in actions {
            match a {
                Action::SendHello => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    let h = self.hello(&agency);
                    self.send(peer, &Request::Hello(h), Pending::Hello);
                }
                Action::SendNotify => {
                    let n = Notify {
                        log_epoch: self.epoch,
                        head_seq: self.local_head,
                    };
                    self.send(peer, &Request::Notify(n), Pending::Notify);
                }
                Action::SendPull(p) => self.send(peer, &Request::Pull(p), Pending::Pull),
                Action::ResetCursor(c) => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    self.responder.forget_sent(&agency);
                    self.persist_cursor(agency, c);
                }
                Action::StartReconcile => self.start_reconcile(peer),
                Action::SendSessionStep(step) => self.send_step(peer, step),
                Action::Reconciled => self.note_reconciled(peer),
                Action::BacklogComplete(c) => {
                    let Some((agency, _)) = self.agency_of(&peer) else {
                        continue;
                    };
                    tracing::info!(%agency, seq = c.seq, "backlog below the cursor complete");
                    self.persist_cursor(agency, c);
                }
            }
        }
    }

    /// Remembers and durably stores a peer's cursor.
    pub(super) fn persist_cursor(&mut self, agency: AgencyCode, c: Cursor) {
        self.cursors.insert(agency.clone(), c);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.call(move |s| s.set_cursor(&agency, Some(c))).await {
                tracing::warn!(error = %e, "cannot persist cursor");
            }
        });
    }

    pub(super) fn on_response(&mut self, peer: PeerRef, token: u64, frame: Frame) {
        let Some((_, pending)) = self.pending.remove(&token) else {
            return;
        };
        let bytes = match frame {
            Frame::Data(b) => b,
            Frame::Oversized { len, max } => {
                tracing::warn!(%peer, len, max, "oversized response frame refused");
                self.protocol_violation(peer, "frame_too_large");
                self.request_failed(
                    peer,
                    pending,
                    format!("response of {len} bytes over the limit of {max}"),
                );
                return;
            }
        };
        let _span = self.peer_span(&peer).entered();
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        // Blocked while this request was in flight: take nothing from it.
        if self.blocked.contains(&agency) {
            self.request_failed(peer, pending, "peer blocked by the operator".into());
            return;
        }
        self.metrics
            .sync_bytes
            .get_or_create(&PeerLabel {
                peer: agency.to_string(),
            })
            .inc_by(bytes.len() as u64);
        let resp = match decode_response(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.protocol_violation(peer, "bad_response");
                self.request_failed(peer, pending, e.to_string());
                return;
            }
        };
        let now = Instant::now();
        match (pending, resp) {
            (Pending::Hello, Response::Hello(h)) => {
                if h.agency != agency {
                    self.protocol_violation(peer, "hello_agency_mismatch");
                    return;
                }
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|ps| ps.hello_epoch_mismatch(&h))
                {
                    self.protocol_violation(peer, "hello_epoch_mismatch");
                    return;
                }
                self.note_roster_version(&agency, h.roster_version);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_hello(&h, now);
                    self.run_actions(peer, actions);
                }
            }
            (Pending::Notify, Response::Ack) => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify_done();
                    self.run_actions(peer, actions);
                }
            }
            (Pending::Pull, Response::Batch(b)) => self.apply_batch(peer, agency, b),
            (Pending::Reconcile { session, asked }, Response::Reconcile(r)) => {
                self.on_reconcile_reply(peer, agency, session, asked, r)
            }
            (pending, Response::Error { code, message }) => {
                self.request_failed(peer, pending, format!("{code}: {message}"));
            }
            (pending, _) => {
                self.protocol_violation(peer, "unexpected_response");
                self.request_failed(peer, pending, "unexpected response type".into());
            }
        }
    }

    pub(super) fn request_failed(&mut self, peer: PeerRef, pending: Pending, error: String) {
        let _span = self.peer_span(&peer).entered();
        let now = Instant::now();
        if let Some((agency, _)) = self.agency_of(&peer) {
            self.set_error(&agency, error.clone());
        }
        match pending {
            Pending::Hello => {}
            Pending::Notify => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify_done();
                    self.run_actions(peer, actions);
                }
            }
            Pending::Pull => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.on_pull_failed(error, now);
                }
            }
            Pending::Reconcile { .. } => {
                self.initiators.remove(&peer);
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_reconcile_done(Err(error), now);
                    self.run_actions(peer, actions);
                }
            }
        }
    }

    /// A changes-feed batch from `peer`: check and store it with the cursor it
    /// advances to (the backlog mark stays as it is).
    fn apply_batch(&mut self, peer: PeerRef, agency: AgencyCode, b: Batch<Received>) {
        // We pulled under the epoch of their Hello; a batch from another log on the
        // same connection would reset the cursor with a store write per frame.
        if self
            .peers
            .get(&peer)
            .is_some_and(|ps| ps.epoch_mismatch(b.log_epoch))
        {
            self.protocol_violation(peer, "batch_epoch_mismatch");
            if let Some(ps) = self.peers.get_mut(&peer) {
                ps.on_pull_failed("batch from another log epoch".into(), Instant::now());
            }
            return;
        }
        let cursor = Cursor {
            epoch: b.log_epoch,
            seq: b.next_seq,
            backlog_complete: self.peers.get(&peer).is_some_and(|ps| {
                !ps.backlog_pending() && ps.cursor().is_some_and(|c| c.epoch == b.log_epoch)
            }),
        };
        let Batch {
            log_epoch,
            records,
            next_seq,
            head_seq,
            complete,
        } = b;
        let meta = Batch {
            log_epoch,
            records: Vec::new(),
            next_seq,
            head_seq,
            complete,
        };
        self.spawn_ingest(peer, agency, records, Some((meta, cursor)), None, None);
    }

    // ---------------------------------------------------------------- our sessions

    fn start_reconcile(&mut self, peer: PeerRef) {
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        let fut = reconcile_set(
            self.store.clone(),
            self.trust.policy(),
            agency,
            self.sets.clone(),
            self.metrics.clone(),
        );
        self.note_session_start(peer);
        let tx = self.tasks_tx.clone();
        let span = self.peer_span(&peer);
        tokio::spawn(
            async move {
                let result = match fut.await {
                    Ok(storage) => {
                        Initiator::start(Arc::unwrap_or_clone(storage), random_session())
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(Done::ReconcileReady { peer, result });
            }
            .instrument(span),
        );
    }

    pub(super) fn on_reconcile_ready(
        &mut self,
        peer: PeerRef,
        result: Result<(Initiator, Step), String>,
    ) {
        match result {
            Ok((init, step)) => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.on_reconcile_started(init.session);
                    self.initiators.insert(peer, init);
                    self.send_step(peer, step);
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot start reconciliation");
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_reconcile_done(Err(e), Instant::now());
                    self.run_actions(peer, actions);
                }
            }
        }
    }

    fn max_need(&self) -> usize {
        (self.cfg.max_batch_bytes / 2048).clamp(1, MAX_NEED)
    }

    fn max_have(&self) -> usize {
        (self.cfg.max_request_bytes / 2048).clamp(1, 2000)
    }

    /// The next request of our session with `peer`: the records it pushes are
    /// prepared by the responder first ([`Self::on_push_ready`] sends it).
    fn send_step(&mut self, peer: PeerRef, step: Step) {
        let Some(session) = self.initiators.get(&peer).map(|i| i.session) else {
            return;
        };
        let _peer_span = self.peer_span(&peer).entered();
        let _round = round_span(&session).entered();
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        let policy = self.trust.policy();
        let actions = self.responder.prepare_push(peer, agency, step, policy);
        self.serve(actions);
    }

    /// The records of our session's next request are prepared: send it.
    pub(super) fn on_push_ready(
        &mut self,
        peer: PeerRef,
        step: Step,
        transfers: Vec<Transfer>,
        leftover: Vec<RecordId>,
    ) {
        let Some(init) = self.initiators.get_mut(&peer) else {
            return;
        };
        init.requeue_have(leftover);
        let session = init.session;
        let req = Reconcile {
            session,
            message: step.message.map(Bytes::from).unwrap_or_default(),
            have: transfers,
            need: step.need,
        };
        let asked = req.need.len();
        self.send(
            peer,
            &Request::Reconcile(req),
            Pending::Reconcile { session, asked },
        );
    }

    fn on_reconcile_reply(
        &mut self,
        peer: PeerRef,
        agency: AgencyCode,
        session: [u8; 16],
        asked: usize,
        r: ReconcileReply<Received>,
    ) {
        let _round = round_span(&session).entered();
        let now = Instant::now();
        if r.session != session {
            self.protocol_violation(peer, "reconcile_session_mismatch");
            return;
        }
        let label = PeerLabel {
            peer: agency.to_string(),
        };
        self.metrics.reconcile_bytes.get_or_create(&label).inc_by(
            (r.message.len() + r.records.iter().map(|t| t.record().len()).sum::<usize>()) as u64,
        );
        if let Some(ps) = self.peers.get_mut(&peer) {
            ps.on_session_reply(session, asked, r.records.len());
        }
        if !r.records.is_empty() {
            self.spawn_ingest(peer, agency.clone(), r.records, None, Some(session), None);
        }
        let max_have = self.max_have();
        let max_need = self.max_need();
        let Some(init) = self.initiators.get_mut(&peer) else {
            return;
        };
        if let Err(e) = init.on_reply(&r.message) {
            self.initiators.remove(&peer);
            self.protocol_violation(peer, "bad_reconcile_message");
            if let Some(ps) = self.peers.get_mut(&peer) {
                let actions = ps.on_reconcile_done(Err(e.to_string()), now);
                self.run_actions(peer, actions);
            }
            return;
        }
        match init.next_step(max_have, max_need) {
            // Sent now, or once one of the session's unfinished ingests is stored
            // (the peer's state machine bounds them).
            Some(step) => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_session_step(session, step);
                    self.run_actions(peer, actions);
                }
            }
            None => {
                if let Some(done) = self.initiators.remove(&peer) {
                    self.metrics
                        .reconcile_rounds
                        .get_or_create(&label)
                        .inc_by(u64::from(done.rounds));
                    tracing::debug!(
                        %agency,
                        rounds = done.rounds,
                        pushed = done.found_have,
                        pulled = done.found_need,
                        "reconciliation finished"
                    );
                }
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_reconcile_done(Ok(()), now);
                    self.run_actions(peer, actions);
                }
            }
        }
    }
}
