//! Live auditing: collect every member's log over `/wlnode/audit/1`
//! ([`crate::net::audit_client`]), run the same pure verifier as for exported logs,
//! and cosign (witness) the checkpoints of the nodes whose logs verified.
//!
//! Collection failures (unreachable node, refusal, bad inclusion or consistency proof)
//! are violations of the report, so an audit that could not see a node never passes.

use std::collections::BTreeMap;

use serde_json::json;
use wlnode_crypto::SecretKey;
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::Roster;

use super::event::ExportedLog;
use super::verify::{AuditorState, Options, Report, Violation, verify};
use crate::config::Config;
use crate::net::audit_client::{AuditClient, AuditClientError};

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
    };
    Violation {
        kind: kind.into(),
        node,
        detail: e.to_string(),
        evidence: json!({}),
    }
}

/// Audits every node in the auditor config's `[[peers]]` live, as the node identity
/// `key` (which the roster must list under an agency with role `auditor`).
pub async fn verify_live(
    cfg: &Config,
    key: &SecretKey,
    roster: &Roster,
    state: &AuditorState,
    opts: Options,
) -> Result<LiveAudit, AuditClientError> {
    let mut client = AuditClient::connect(cfg, key, roster).await?;
    let mut extra: Vec<Violation> = client.unreachable.iter().map(client_violation).collect();
    let mut logs = Vec::new();
    for agency in client.agencies() {
        match client.collect(&agency, state.heads.get(&agency)).await {
            Ok(c) => {
                for f in c.findings {
                    extra.push(Violation {
                        kind: "bad_proof".into(),
                        node: agency.to_string(),
                        detail: f,
                        evidence: json!({"checkpoint": c.log.checkpoints.first()}),
                    });
                }
                logs.push(c.log);
            }
            Err(e) => extra.push(client_violation(&e)),
        }
    }
    let mut report = verify(roster, &logs, state, opts);
    report.violations.extend(extra);
    for n in &mut report.nodes {
        n.violations = report
            .violations
            .iter()
            .filter(|v| v.node == n.agency)
            .count() as u64;
    }
    report.ok = report.violations.is_empty();
    // Witness: cosign the checkpoint of every node whose log verified.
    let mut cosigned = BTreeMap::new();
    for log in &logs {
        let clean = !report
            .violations
            .iter()
            .any(|v| v.node == log.agency.as_str());
        if let (true, Some(cp)) = (clean, log.checkpoints.last()) {
            match client.cosign(&log.agency, cp, key).await {
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
