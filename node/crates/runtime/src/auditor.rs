//! Live auditing: collect every member's log over `/wlnode/audit/1` (through the
//! network's client swarm, `wlnode_net::client`), check every inclusion and
//! consistency proof on the way, run the same pure verifier as for exported logs, and
//! cosign (witness) the checkpoints of the nodes whose logs verified.
//!
//! The collected log is the same [`ExportedLog`] that `wlnode audit export` writes, so
//! the verifier runs unchanged on live and exported logs. Collection failures
//! (unreachable node, refusal, bad inclusion or consistency proof) are violations of
//! the report, so an audit that could not see a node never passes.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use wlnode_audit::event::{Cosignature, EXPORT_FORMAT, ExportedLog, SentHeader, SignedCheckpoint};
use wlnode_audit::merkle::{self, Hash};
use wlnode_audit::verify::{AuditorState, Options, Report, VerifiedHead, Violation, verify};
use wlnode_audit::wire::{
    AuditRequest, AuditResponse, MAX_EVENTS_PER_REQUEST, decode_response, encode_request,
};
use wlnode_config::Config;
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::roster::Roster;
use wlnode_net::PeerRef;
use wlnode_net::client::{AuditClient, Target};

use crate::replication::AUDIT_LIMITS;

/// How long one request (or the dialing of all targets) may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why collecting from a node failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditClientError {
    /// The auditor's roster carries settings this build does not understand (review
    /// s35-roster M1): upgrade the auditor first.
    #[error(transparent)]
    Roster(#[from] wlnode_audit::verify::AuditorRosterError),
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

/// The auditor's connections to the members it audits.
#[derive(Debug)]
pub struct Collector {
    client: AuditClient,
    peers: BTreeMap<AgencyCode, PeerRef>,
    /// Targets that could not be connected, with why.
    pub unreachable: Vec<AuditClientError>,
}

impl Collector {
    /// Dials `targets` (agency and addresses) as the node identity `key`; a
    /// connection counts only when the remote PeerId (from the Noise handshake)
    /// belongs to that agency in `roster`.
    pub async fn connect(
        targets: &[(AgencyCode, Vec<multiaddr::Multiaddr>)],
        key: &SecretKey,
        roster: &Roster,
    ) -> Result<Self, AuditClientError> {
        let targets: Vec<Target> = targets
            .iter()
            .map(|(agency, addrs)| Target {
                label: agency.to_string(),
                addrs: addrs.clone(),
                peers: roster
                    .member(agency)
                    .map(|m| {
                        m.node_ids
                            .iter()
                            .filter_map(|p| PeerRef::parse(p).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        let (client, unreachable) = AuditClient::connect(key, AUDIT_LIMITS, &targets, TIMEOUT)
            .await
            .map_err(|e| AuditClientError::Net(e.to_string()))?;
        let agency = |label: &str| label.parse::<AgencyCode>().ok();
        Ok(Self {
            peers: client
                .connected()
                .into_iter()
                .filter_map(|(l, p)| Some((agency(&l)?, p)))
                .collect(),
            unreachable: unreachable
                .into_iter()
                .filter_map(|u| {
                    Some(AuditClientError::Unreachable {
                        agency: agency(&u.label)?,
                        detail: u.detail,
                    })
                })
                .collect(),
            client,
        })
    }

    /// The `[[peers]]` of an auditor's config with addresses, as targets.
    pub fn targets(cfg: &Config) -> Vec<(AgencyCode, Vec<multiaddr::Multiaddr>)> {
        cfg.raw
            .peers
            .iter()
            .map(|p| {
                (
                    p.agency.get_ref().clone(),
                    p.addrs.iter().map(|a| a.0.clone()).collect(),
                )
            })
            .collect()
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
        let bytes = match self
            .client
            .request(agency.as_str(), Bytes::from(encode_request(req)))
            .await
        {
            Ok(b) => b,
            Err(wlnode_net::client::RequestError::NotConnected) => {
                return Err(AuditClientError::Unreachable {
                    agency: agency.clone(),
                    detail: "not connected".into(),
                });
            }
            Err(e) => return Err(proto(e.to_string())),
        };
        let r = decode_response(&bytes).map_err(|e| proto(e.to_string()))?;
        if let AuditResponse::Error { code, message } = r {
            return Err(AuditClientError::Refused {
                agency: agency.clone(),
                code,
                message,
            });
        }
        Ok(r)
    }

    /// Collects `agency`'s log up to its latest checkpoint, refusing a log of more than
    /// `max_events` events before fetching any. `head` is the auditor's last verified
    /// head of that node (a consistency proof from it is checked).
    pub async fn collect(
        &mut self,
        agency: &AgencyCode,
        head: Option<&VerifiedHead>,
        max_events: u64,
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
        if size > max_events {
            return Err(proto(format!(
                "the node's log has {size} events, over the limit of {max_events} for one audit run (raise it with --max-events)"
            )));
        }
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
        now_ms: u64,
    ) -> Result<u64, AuditClientError> {
        let c = Cosignature::sign(checkpoint.clone(), now_ms, key);
        let mut signature = [0u8; 64];
        // Our own hex encoding of 64 bytes: it decodes.
        let _ = hex::decode_to_slice(&c.signature, &mut signature);
        match self
            .request(
                agency,
                &AuditRequest::Cosign {
                    checkpoint: checkpoint.clone(),
                    signature,
                    witnessed_at: c.witnessed_at,
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

/// The outcome of a live audit.
#[derive(Debug, Clone)]
pub struct LiveAudit {
    /// The report (collection failures included as violations).
    pub report: Report,
    /// The logs collected, in export form.
    pub logs: Vec<ExportedLog>,
    /// Cosignatures the auditor sent: agency → how many the node now holds.
    pub cosigned: BTreeMap<AgencyCode, u64>,
}

fn client_violation(e: &AuditClientError) -> Violation {
    let (kind, node) = match e {
        AuditClientError::Net(_) => ("unreachable", String::new()),
        AuditClientError::Unreachable { agency, .. } => ("unreachable", agency.to_string()),
        AuditClientError::Refused { agency, .. } => ("audit_refused", agency.to_string()),
        AuditClientError::Protocol { agency, .. } => ("collect_failed", agency.to_string()),
        AuditClientError::Roster(_) => ("roster_not_understood", String::new()),
    };
    Violation {
        kind: kind.into(),
        node,
        detail: e.to_string(),
        evidence: json!({}),
        proven: false,
    }
}

/// What one audit run may spend on one node.
#[derive(Clone, Copy, Debug)]
pub struct LiveLimits {
    /// Time to connect, collect and verify the proofs of one node.
    pub per_node: std::time::Duration,
    /// Events of one node's log collected at most (they are held in memory).
    pub max_events: u64,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            per_node: std::time::Duration::from_secs(600),
            max_events: 2_000_000,
        }
    }
}

/// Connects to and collects one node, within `limits`.
async fn collect_one(
    agency: AgencyCode,
    addrs: Vec<multiaddr::Multiaddr>,
    key: &SecretKey,
    roster: &Roster,
    head: Option<&VerifiedHead>,
    limits: LiveLimits,
) -> (
    AgencyCode,
    Result<(Collector, CollectedLog), AuditClientError>,
) {
    let work = async {
        let mut c = Collector::connect(&[(agency.clone(), addrs)], key, roster).await?;
        if let Some(e) = c.unreachable.pop() {
            return Err(e);
        }
        let log = c.collect(&agency, head, limits.max_events).await?;
        Ok((c, log))
    };
    let r = match tokio::time::timeout(limits.per_node, work).await {
        Ok(r) => r,
        Err(_) => Err(AuditClientError::Protocol {
            agency: agency.clone(),
            detail: format!(
                "collection took longer than {} s; the node's audit is incomplete",
                limits.per_node.as_secs()
            ),
        }),
    };
    (agency, r)
}

/// Audits every node in the auditor config's `[[peers]]` live, as the node identity
/// `key` (which the roster must list under an agency with role `auditor`). Each node
/// is collected over its own connection, all at once and each within `limits`: a node
/// that is slow or claims a huge log delays and costs only its own audit.
pub async fn verify_live(
    cfg: &Config,
    key: &SecretKey,
    roster: &Roster,
    state: &AuditorState,
    opts: Options,
    limits: LiveLimits,
) -> Result<LiveAudit, AuditClientError> {
    wlnode_audit::verify::auditor_may_use(roster)?;
    let runs = Collector::targets(cfg).into_iter().map(|(agency, addrs)| {
        let head = state.heads.get(&agency);
        collect_one(agency, addrs, key, roster, head, limits)
    });
    let mut extra: Vec<Violation> = Vec::new();
    let mut logs = Vec::new();
    let mut clients = BTreeMap::new();
    for (agency, r) in futures::future::join_all(runs).await {
        match r {
            Ok((client, c)) => {
                for f in c.findings {
                    extra.push(Violation {
                        kind: "bad_proof".into(),
                        node: agency.to_string(),
                        detail: f,
                        evidence: json!({"checkpoint": c.log.checkpoints.first()}),
                        proven: true,
                    });
                }
                logs.push(c.log);
                clients.insert(agency, client);
            }
            Err(e) => extra.push(client_violation(&e)),
        }
    }
    let mut report = verify(roster, &logs, state, opts);
    // A node whose proofs failed, or whose collection failed, keeps the head verified
    // before.
    for v in &extra {
        if let Ok(agency) = v.node.parse::<AgencyCode>() {
            match state.heads.get(&agency) {
                Some(h) => report.state.heads.insert(agency, h.clone()),
                None => report.state.heads.remove(&agency),
            };
        }
    }
    report.extend_violations(extra);
    // Witness: cosign the checkpoint of every node whose log verified.
    let mut cosigned = BTreeMap::new();
    for log in &logs {
        let clean = !report
            .violations
            .iter()
            .any(|v| v.node == log.agency.as_str());
        if let (true, Some(cp), Some(client)) =
            (clean, log.checkpoints.last(), clients.get_mut(&log.agency))
        {
            // Dated by the auditor's own clock at the moment it witnesses.
            let now = wlnode_crypto::time::Timestamp::now().as_millis();
            match client.cosign(&log.agency, cp, key, now).await {
                Ok(n) => {
                    cosigned.insert(log.agency.clone(), n);
                }
                Err(e) => tracing::warn!(error = %e, "cosignature not accepted"),
            }
        }
    }
    Ok(LiveAudit {
        report,
        logs,
        cosigned,
    })
}
