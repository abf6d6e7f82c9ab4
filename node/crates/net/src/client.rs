//! A client-only swarm for one request-response protocol: what an auditor uses to
//! reach the members it audits over `/wlnode/audit/1`.
//!
//! It dials each [`Target`]'s addresses as the given identity and keeps a connection
//! only when the remote PeerId, authenticated by the Noise handshake, is one the
//! caller listed for that target (the roster's). Requests are opaque frames; what they
//! mean is the caller's business.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, noise, tcp, yamux};
use wlnode_crypto::SecretKey;

use crate::codec::{AUDIT_PROTOCOL, Frame, FrameCodec};
use crate::{FrameLimits, NetError, PeerRef, keypair};

/// One node to reach.
#[derive(Clone, Debug)]
pub struct Target {
    /// The caller's name for it (an agency code).
    pub label: String,
    /// Addresses to dial.
    pub addrs: Vec<Multiaddr>,
    /// The PeerIds it may answer as (a connection from any other is closed).
    pub peers: Vec<PeerRef>,
}

/// A target that could not be reached, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    /// The target's label.
    pub label: String,
    /// Why.
    pub detail: String,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The target is not connected.
    #[error("not connected")]
    NotConnected,
    /// No answer within the timeout.
    #[error("request timed out")]
    Timeout,
    /// The answer was over the frame limit.
    #[error("response of {len} bytes over the limit of {max}")]
    Oversized {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream failed.
    #[error("{0}")]
    Failed(String),
}

/// A connected client.
pub struct AuditClient {
    swarm: Swarm<request_response::Behaviour<FrameCodec>>,
    peers: BTreeMap<String, PeerId>,
    timeout: Duration,
}

impl std::fmt::Debug for AuditClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditClient")
            .field("peers", &self.peers)
            .finish_non_exhaustive()
    }
}

fn setup(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(e.to_string())
}

impl AuditClient {
    /// Dials every target with addresses as the identity `key` and waits (at most
    /// `timeout`) for the connections; returns the client and the targets it could not
    /// reach.
    pub async fn connect(
        key: &SecretKey,
        limits: FrameLimits,
        targets: &[Target],
        timeout: Duration,
    ) -> Result<(Self, Vec<Unreachable>), NetError> {
        let mut swarm = SwarmBuilder::with_existing_identity(keypair(key)?)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(setup)?
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    FrameCodec {
                        max_request: limits.max_request,
                        max_response: limits.max_response,
                    },
                    [(AUDIT_PROTOCOL, ProtocolSupport::Outbound)],
                    request_response::Config::default().with_request_timeout(timeout),
                )
            })
            .map_err(setup)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let mut dialing = BTreeMap::new();
        let mut unreachable = Vec::new();
        for t in targets {
            let mut any = false;
            for a in &t.addrs {
                let opts = DialOpts::unknown_peer_id().address(a.clone()).build();
                let id = opts.connection_id();
                match swarm.dial(opts) {
                    Ok(()) => {
                        dialing.insert(id, t);
                        any = true;
                    }
                    Err(e) => tracing::debug!(target = %t.label, error = %e, "audit dial failed"),
                }
            }
            if !any {
                unreachable.push(Unreachable {
                    label: t.label.clone(),
                    detail: "no address could be dialed".into(),
                });
            }
        }
        let mut peers = BTreeMap::new();
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + timeout;
        while dialing.values().any(|t| !peers.contains_key(&t.label)) {
            let Ok(ev) = tokio::time::timeout_at(deadline, swarm.select_next_some()).await else {
                break;
            };
            match ev {
                SwarmEvent::ConnectionEstablished {
                    peer_id,
                    connection_id,
                    ..
                } => {
                    let Some(t) = dialing.remove(&connection_id) else {
                        continue;
                    };
                    if t.peers.contains(&PeerRef(peer_id)) {
                        peers.insert(t.label.clone(), peer_id);
                    } else {
                        errors.insert(
                            t.label.clone(),
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
                    if let Some(t) = dialing.remove(&connection_id) {
                        errors.insert(t.label.clone(), error.to_string());
                    }
                }
                _ => {}
            }
            if dialing.is_empty() {
                break;
            }
        }
        for t in dialing.into_values() {
            errors
                .entry(t.label.clone())
                .or_insert_with(|| "timed out".into());
        }
        for (label, detail) in errors {
            if !peers.contains_key(&label) {
                unreachable.push(Unreachable { label, detail });
            }
        }
        Ok((
            Self {
                swarm,
                peers,
                timeout,
            },
            unreachable,
        ))
    }

    /// The targets connected, with their PeerIds.
    pub fn connected(&self) -> Vec<(String, PeerRef)> {
        self.peers
            .iter()
            .map(|(l, p)| (l.clone(), PeerRef(*p)))
            .collect()
    }

    /// Sends one request to `label`'s node and waits for its answer.
    pub async fn request(&mut self, label: &str, frame: Bytes) -> Result<Bytes, RequestError> {
        let Some(peer) = self.peers.get(label).copied() else {
            return Err(RequestError::NotConnected);
        };
        let id = self
            .swarm
            .behaviour_mut()
            .send_request(&peer, Frame::Data(frame));
        let deadline = tokio::time::Instant::now() + self.timeout + Duration::from_secs(5);
        loop {
            let ev = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| RequestError::Timeout)?;
            match ev {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => {
                    return match response {
                        Frame::Data(b) => Ok(b),
                        Frame::Oversized { len, max } => Err(RequestError::Oversized { len, max }),
                    };
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => return Err(RequestError::Failed(error.to_string())),
                _ => {}
            }
        }
    }
}
