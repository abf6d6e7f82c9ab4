//! The auditor's side of `/wlnode/audit/1`: a small client-only swarm that dials the
//! members listed in the auditor's `[[peers]]`, fetches each node's latest signed
//! checkpoint, a consistency proof from the auditor's last verified head, and every
//! event up to the checkpoint (paged, each inclusion proof checked against the
//! checkpoint's root), and later sends the auditor's cosignatures (witness).
//!
//! The result is the same [`ExportedLog`] that `wlnode audit export` writes, so the
//! pure verifier (`crate::audit::verify`) runs unchanged on live and exported logs.
//! Proof failures here are returned as findings for the caller to report.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{PeerId, Swarm, SwarmBuilder, noise, tcp, yamux};
use wlnode_crypto::SecretKey;
use wlnode_crypto::keys::context;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::roster::Roster;

use super::codec::{AUDIT_MAX_REQUEST, AUDIT_MAX_RESPONSE, AUDIT_PROTOCOL, Frame, FrameCodec};
use crate::audit::event::{EXPORT_FORMAT, ExportedLog, SentHeader, SignedCheckpoint};
use crate::audit::merkle::{self, Hash};
use crate::audit::verify::VerifiedHead;
use crate::audit::wire::{
    AuditRequest, AuditResponse, MAX_EVENTS_PER_REQUEST, decode_response, encode_request,
};
use crate::config::Config;

/// How long one request (or the dialing of all targets) may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why collecting from a node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditClientError {
    /// The network could not be set up.
    #[error("audit client: {0}")]
    Net(String),
    /// The node could not be reached.
    #[error("{agency}: cannot connect: {detail}")]
    Unreachable {
        /// Agency.
        agency: AgencyCode,
        /// Why.
        detail: String,
    },
    /// The node answered with an error (e.g. `forbidden`).
    #[error("{agency}: refused ({code}): {message}")]
    Refused {
        /// Agency.
        agency: AgencyCode,
        /// Error code.
        code: String,
        /// Detail.
        message: String,
    },
    /// The request failed or the answer was malformed.
    #[error("{agency}: {detail}")]
    Protocol {
        /// Agency.
        agency: AgencyCode,
        /// Why.
        detail: String,
    },
}

/// What was collected from one node.
#[derive(Debug, Clone)]
pub struct CollectedLog {
    /// The node's log up to its latest checkpoint, in export form.
    pub log: ExportedLog,
    /// Proof failures found while collecting (bad inclusion or consistency proofs).
    pub findings: Vec<String>,
}

/// A connected auditor client.
pub struct AuditClient {
    swarm: Swarm<request_response::Behaviour<FrameCodec>>,
    peers: BTreeMap<AgencyCode, PeerId>,
    /// Targets that could not be connected, with why.
    pub unreachable: Vec<AuditClientError>,
}

impl std::fmt::Debug for AuditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditClient")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

fn net(e: impl std::fmt::Display) -> AuditClientError {
    AuditClientError::Net(e.to_string())
}

impl AuditClient {
    /// Dials every `[[peers]]` entry of the auditor's config that has addresses, as
    /// the node identity `key`; a connection counts only when the remote PeerId (from
    /// the Noise handshake) belongs to that agency in `roster`.
    pub async fn connect(
        cfg: &Config,
        key: &SecretKey,
        roster: &Roster,
    ) -> Result<Self, AuditClientError> {
        let mut seed = key.seed();
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(seed.as_mut()).map_err(net)?;
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(net)?
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    FrameCodec {
                        max_request: AUDIT_MAX_REQUEST,
                        max_response: AUDIT_MAX_RESPONSE,
                    },
                    [(AUDIT_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default().with_request_timeout(TIMEOUT),
                )
            })
            .map_err(net)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let mut dialing = BTreeMap::new();
        let mut unreachable = Vec::new();
        for p in &cfg.raw.peers {
            let agency = p.agency.get_ref().clone();
            let mut any = false;
            for a in &p.addrs {
                let opts = DialOpts::unknown_peer_id().address(a.0.clone()).build();
                let id = opts.connection_id();
                match swarm.dial(opts) {
                    Ok(()) => {
                        dialing.insert(id, agency.clone());
                        any = true;
                    }
                    Err(e) => tracing::debug!(%agency, error = %e, "audit dial failed"),
                }
            }
            if !any {
                unreachable.push(AuditClientError::Unreachable {
                    agency,
                    detail: "no address could be dialed".into(),
                });
            }
        }
        let mut peers = BTreeMap::new();
        let mut errors: BTreeMap<AgencyCode, String> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while dialing.values().any(|a| !peers.contains_key(a)) {
            let Ok(ev) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await else {
                break;
            };
            match ev {
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    connection_id,
                    ..
                } => {
                    let Some(agency) = dialing.remove(&connection_id) else {
                        continue;
                    };
                    let owner = roster.agency_of_peer(&peer_id.to_base58());
                    if owner.map(|m| &m.agency) == Some(&agency) {
                        peers.insert(agency, peer_id);
                    } else {
                        errors.insert(
                            agency,
                            format!("PeerId {peer_id} is not this agency's node in the roster"),
                        );
                        let _ = swarm.disconnect_peer_id(peer_id);
                    }
                }
                SwarmEvent::OutgoingConnectionError {
                    connection_id,
                    error,
                    ..
                } => {
                    if let Some(agency) = dialing.remove(&connection_id) {
                        errors.insert(agency, error.to_string());
                    }
                }
                _ => {}
            }
            if dialing.is_empty() {
                break;
            }
        }
        for a in dialing.into_values() {
            errors.entry(a).or_insert_with(|| "timed out".into());
        }
        for (agency, detail) in errors {
            if !peers.contains_key(&agency) {
                unreachable.push(AuditClientError::Unreachable { agency, detail });
            }
        }
        Ok(Self {
            swarm,
            peers,
            unreachable,
        })
    }

    /// The agencies connected.
    pub fn agencies(&self) -> Vec<AgencyCode> {
        self.peers.keys().cloned().collect()
    }

    /// Sends one request to `agency`'s node and waits for its answer.
    pub async fn request(
        &mut self,
        agency: &AgencyCode,
        req: &AuditRequest,
    ) -> Result<AuditResponse, AuditClientError> {
        let proto = |detail: String| AuditClientError::Protocol {
            agency: agency.clone(),
            detail,
        };
        let Some(peer) = self.peers.get(agency).copied() else {
            return Err(AuditClientError::Unreachable {
                agency: agency.clone(),
                detail: "not connected".into(),
            });
        };
        let id = self
            .swarm
            .behaviour_mut()
            .send_request(&peer, Frame::Data(Bytes::from(encode_request(req))));
        let deadline = tokio::time::Instant::now() + TIMEOUT + Duration::from_secs(5);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| proto("request timed out".into()))?;
            match ev {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => {
                    let bytes = match response {
                        Frame::Data(b) => b,
                        Frame::Oversized { len, max } => {
                            return Err(proto(format!(
                                "response of {len} bytes over the limit of {max}"
                            )));
                        }
                    };
                    let r = decode_response(&bytes).map_err(|e| proto(e.to_string()))?;
                    if let AuditResponse::Error { code, message } = r {
                        return Err(AuditClientError::Refused {
                            agency: agency.clone(),
                            code,
                            message,
                        });
                    }
                    return Ok(r);
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => return Err(proto(error.to_string())),
                _ => {}
            }
        }
    }

    /// Collects `agency`'s log up to its latest checkpoint. `head` is the auditor's
    /// last verified head of that node (a consistency proof from it is checked).
    pub async fn collect(
        &mut self,
        agency: &AgencyCode,
        head: Option<&VerifiedHead>,
    ) -> Result<CollectedLog, AuditClientError> {
        let proto = |detail: String| AuditClientError::Protocol {
            agency: agency.clone(),
            detail,
        };
        let peer = self.peers.get(agency).copied();
        let cp = match self.request(agency, &AuditRequest::GetCheckpoint).await? {
            AuditResponse::Checkpoint(Some(cp)) => cp,
            AuditResponse::Checkpoint(None) => {
                return Err(proto("the node has no checkpoint yet".into()));
            }
            other => return Err(proto(format!("unexpected answer {other:?}"))),
        };
        if Some(cp.checkpoint.peer_id.as_str()) != peer.map(|p| p.to_base58()).as_deref() {
            return Err(proto(format!(
                "checkpoint names PeerId {}, not the connected node",
                cp.checkpoint.peer_id
            )));
        }
        let size = cp.checkpoint.size;
        let root = cp
            .checkpoint
            .root_hash()
            .ok_or_else(|| proto("checkpoint root is not 32 bytes of hex".into()))?;
        let mut findings = Vec::new();
        if let Some(h) = head
            && h.size > 0
            && h.size < size
        {
            let proof = match self
                .request(
                    agency,
                    &AuditRequest::GetConsistencyProof {
                        old_size: h.size,
                        new_size: size,
                    },
                )
                .await?
            {
                AuditResponse::Proof(p) => p,
                other => return Err(proto(format!("unexpected answer {other:?}"))),
            };
            let mut old: Hash = [0; 32];
            if hex::decode_to_slice(&h.root, &mut old).is_err() {
                findings.push(format!("saved head of size {} has a bad root", h.size));
            } else if let Err(e) = merkle::verify_consistency(h.size, size, &old, &root, &proof) {
                findings.push(format!(
                    "consistency proof from the verified head {} to checkpoint {size} fails: {e}",
                    h.size
                ));
            }
        }
        let mut events = Vec::new();
        // Signed headers beside `sent` events, once per record (by the id they hash to).
        let mut headers = std::collections::BTreeMap::new();
        let mut start = 0u64;
        while start < size {
            let got = match self
                .request(
                    agency,
                    &AuditRequest::GetEvents {
                        start,
                        count: MAX_EVENTS_PER_REQUEST,
                        tree_size: size,
                    },
                )
                .await?
            {
                AuditResponse::Events(e) => e,
                other => return Err(proto(format!("unexpected answer {other:?}"))),
            };
            if got.is_empty() {
                return Err(proto(format!("no events from index {start} of {size}")));
            }
            for e in got {
                let leaf = merkle::leaf_hash(&e.event);
                if let Err(err) = merkle::verify_inclusion(&leaf, start, size, &e.proof, &root) {
                    findings.push(format!(
                        "event {start}: inclusion proof against checkpoint {size} fails: {err}"
                    ));
                }
                if let Some((header, signature)) = e.header {
                    let record_id = RecordId(wlnode_crypto::sha256::digest(&header));
                    headers.entry(record_id).or_insert_with(|| SentHeader {
                        record_id,
                        header: hex::encode(&header),
                        signature: hex::encode(signature),
                    });
                }
                events.push(String::from_utf8_lossy(&e.event).into_owned());
                start += 1;
            }
        }
        Ok(CollectedLog {
            log: ExportedLog {
                format: EXPORT_FORMAT.into(),
                agency: agency.clone(),
                peer_id: cp.checkpoint.peer_id.clone(),
                events,
                checkpoints: vec![cp],
                headers: headers.into_values().collect(),
            },
            findings,
        })
    }

    /// Sends the auditor's cosignature of `checkpoint` (witness) to `agency`'s node;
    /// returns how many cosignatures the node holds.
    pub async fn cosign(
        &mut self,
        agency: &AgencyCode,
        checkpoint: &SignedCheckpoint,
        key: &SecretKey,
    ) -> Result<u64, AuditClientError> {
        let signature = key
            .sign(context::COSIGN, &checkpoint.checkpoint.message())
            .0;
        match self
            .request(
                agency,
                &AuditRequest::Cosign {
                    checkpoint: checkpoint.clone(),
                    signature,
                },
            )
            .await?
        {
            AuditResponse::Cosigned(n) => Ok(n),
            other => Err(AuditClientError::Protocol {
                agency: agency.clone(),
                detail: format!("unexpected answer {other:?}"),
            }),
        }
    }
}
