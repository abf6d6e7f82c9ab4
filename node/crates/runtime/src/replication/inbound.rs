//! Requests from peers. Sync requests are checked (roster member, not an auditor, not
//! blocked, decodable, Hello naming the sender's own agency) and go to the peer's
//! state machine or the responder; audit requests are answered only for roster
//! auditors, and every refusal is audited before the peer hears of it.

use std::time::Instant;

use bytes::Bytes;
use wlnode_audit::event::{Event as AuditEvent, EventKind};
use wlnode_audit::wire::{self as audit_wire, AuditResponse};
use wlnode_crypto::roster::Role;
use wlnode_crypto::time::Timestamp;
use wlnode_net::{Frame, InboundId, PeerRef};
use wlnode_sync::msg::{Hello, Request, Response};
use wlnode_sync::wire::decode_request;

use super::{AUDIT_REFUSAL_LOG_EVERY, Done, Reply, Service, UNKNOWN_PEER};
use crate::metrics::PeerLabel;

impl Service {
    pub(super) fn on_sync_request(&mut self, peer: PeerRef, id: InboundId, frame: Frame) {
        let reply = (peer, id);
        let bytes = match frame {
            Frame::Data(b) => b,
            Frame::Oversized { len, max } => {
                tracing::warn!(%peer, len, max, "oversized request frame refused");
                self.respond(
                    reply,
                    &Response::error(
                        "frame_too_large",
                        format!("frame of {len} bytes is over the limit of {max}"),
                    ),
                );
                self.protocol_violation(peer, "frame_too_large");
                return;
            }
        };
        let _span = self.peer_span(&peer).entered();
        self.count_bytes(&peer, bytes.len());
        let Some((agency, role)) = self.agency_of(&peer) else {
            self.respond(reply, &Response::error("forbidden", "not in the roster"));
            return;
        };
        if role != Role::Member {
            self.respond(
                reply,
                &Response::error("forbidden", "auditors may only use the audit protocol"),
            );
            return;
        }
        // Blocked, but its connection not yet closed: serve nothing in between.
        if self.blocked.contains(&agency) {
            self.respond(
                reply,
                &Response::error("forbidden", "blocked by the operator"),
            );
            return;
        }
        let req = match decode_request(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.respond(reply, &Response::error("bad_request", e.to_string()));
                self.protocol_violation(peer, "bad_request");
                return;
            }
        };
        let now = Instant::now();
        match req {
            Request::Hello(h) => {
                if h.agency != agency {
                    self.respond(
                        reply,
                        &Response::error("bad_request", "Hello names another agency"),
                    );
                    self.protocol_violation(peer, "hello_agency_mismatch");
                    return;
                }
                let ours = self.hello(&agency);
                self.respond(reply, &Response::Hello(ours));
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
            Request::Notify(n) => {
                self.respond(reply, &Response::Ack);
                if self
                    .peers
                    .get(&peer)
                    .is_some_and(|ps| ps.notify_epoch_mismatch(&n))
                {
                    self.protocol_violation(peer, "notify_epoch_mismatch");
                    return;
                }
                if let Some(ps) = self.peers.get_mut(&peer) {
                    let actions = ps.on_notify(&n, now);
                    self.run_actions(peer, actions);
                }
            }
            Request::Pull(p) => {
                let policy = self.trust.policy();
                let actions = self.responder.on_pull(peer, agency, reply, p, policy);
                self.serve(actions);
            }
            Request::Reconcile(r) => {
                if let Some(ps) = self.peers.get_mut(&peer) {
                    ps.on_reconcile_served(now);
                }
                self.metrics
                    .reconcile_bytes
                    .get_or_create(&PeerLabel {
                        peer: agency.to_string(),
                    })
                    .inc_by(
                        (r.message.len() + r.have.iter().map(|t| t.record().len()).sum::<usize>())
                            as u64,
                    );
                let policy = self.trust.policy();
                let actions = self
                    .responder
                    .on_reconcile(peer, agency, reply, r, policy, now);
                self.serve(actions);
            }
        }
    }

    /// Our Hello to `to`.
    pub(super) fn hello(&self, to: &wlnode_crypto::model::AgencyCode) -> Hello {
        Hello {
            agency: self.agency.clone(),
            roster_version: self.trust.roster().version(),
            log_epoch: self.epoch,
            head_seq: self.local_head,
            backlog_pending: self.peers.values().find(|p| p.agency == *to).map_or_else(
                || self.cursors.get(to).is_some_and(|c| !c.backlog_complete),
                wlnode_sync::PeerSync::declares_pending,
            ),
        }
    }

    pub(super) fn note_roster_version(
        &self,
        agency: &wlnode_crypto::model::AgencyCode,
        theirs: u64,
    ) {
        let ours = self.trust.roster().version();
        if theirs != ours {
            tracing::warn!(
                %agency,
                ours,
                theirs,
                "roster versions differ; the node with the older roster should load the newer one"
            );
        }
    }

    pub(super) fn audit_respond(&self, reply: Reply, response: &AuditResponse) {
        self.net
            .respond(reply.1, Bytes::from(audit_wire::encode_response(response)));
    }

    /// Serves one audit request: only roster auditors are answered; anyone else gets
    /// `forbidden`, a strike, and the refusal goes into our metrics and (at most once
    /// a minute per agency) our audit log. The answer
    /// itself is computed on the store thread by `wlnode_audit::serve`.
    pub(super) fn on_audit_request(&mut self, peer: PeerRef, id: InboundId, frame: Frame) {
        let reply = (peer, id);
        let bytes = match frame {
            Frame::Data(b) => b,
            Frame::Oversized { len, max } => {
                self.audit_respond(
                    reply,
                    &AuditResponse::error(
                        "bad_request",
                        format!("frame of {len} bytes is over the limit of {max}"),
                    ),
                );
                self.protocol_violation(peer, "frame_too_large");
                return;
            }
        };
        let who = self.agency_of(&peer);
        if !matches!(&who, Some((_, Role::Auditor))) {
            self.refuse_audit(reply, who.map(|(a, _)| a));
            return;
        }
        let req = match audit_wire::decode_request(&bytes) {
            Ok(r) => r,
            Err(e) => {
                self.audit_respond(reply, &AuditResponse::error("bad_request", e.to_string()));
                self.protocol_violation(peer, "bad_request");
                return;
            }
        };
        let store = self.store.clone();
        let tx = self.tasks_tx.clone();
        let witness = peer.to_base58();
        tokio::spawn(async move {
            let response = match store
                .call(move |s| {
                    wlnode_audit::serve::serve(s, &witness, req, Timestamp::now().as_millis())
                })
                .await
            {
                Ok(r) => r,
                Err(e) => AuditResponse::error("unavailable", e.to_string()),
            };
            let _ = tx.send(Done::AuditRespond { reply, response });
        });
    }

    /// Refuses an audit request from a node that is not a roster auditor. Members
    /// never use the audit protocol, so it is a strike. Every refusal is counted; the
    /// audit log gets one event per agency a minute, since each is a flushed write
    /// that a member could otherwise force at will.
    fn refuse_audit(&mut self, reply: Reply, agency: Option<wlnode_crypto::model::AgencyCode>) {
        let peer = reply.0;
        let label = agency.map_or_else(|| UNKNOWN_PEER.to_owned(), |a| a.to_string());
        tracing::warn!(peer = %label, "audit request refused: not an auditor");
        self.metrics
            .audit_refused
            .get_or_create(&PeerLabel {
                peer: label.clone(),
            })
            .inc();
        self.protocol_violation(peer, "audit_forbidden");
        let response = AuditResponse::error(
            "forbidden",
            "only roster auditors may use the audit protocol",
        );
        let now = Instant::now();
        let due = self
            .audit_refusals_logged
            .get(&label)
            .is_none_or(|t| now.duration_since(*t) >= AUDIT_REFUSAL_LOG_EVERY);
        if !due {
            self.audit_respond(reply, &response);
            return;
        }
        self.audit_refusals_logged.insert(label.clone(), now);
        let ev = AuditEvent::new(
            Timestamp::now().as_millis(),
            EventKind::AuditRefused { peer: label },
        );
        let store = self.store.clone();
        let tx = self.tasks_tx.clone();
        let ingested = self.ingested.clone();
        // The refusal is appended before the peer hears of it (a failed append
        // still answers, and shows as the store's failure).
        tokio::spawn(async move {
            if let Err(e) = store.call(move |s| s.audit_append(&[ev])).await {
                ingested.write_failed(&e);
            }
            let _ = tx.send(Done::AuditRespond { reply, response });
        });
    }
}
