//! Prometheus metrics, served as text at `/metrics` on the API port.
//!
//! One `Metrics` value is shared (behind an `Arc`) by every component; each metric is
//! a cheap atomic. Gauges that mirror store counts are refreshed at scrape time.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label: a peer agency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabel {
    /// Agency code.
    pub peer: String,
}

/// Labels: a peer and a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerReason {
    /// Agency code (or the PeerId when the agency is unknown).
    pub peer: String,
    /// Machine-readable reason.
    pub reason: String,
}

/// Label: where a record came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `local` or `peer`.
    pub source: String,
}

/// Labels: an API route and status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// Route template.
    pub route: String,
    /// HTTP status code.
    pub status: String,
}

/// Label: how a reconciliation set was built.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SetBuildLabel {
    /// `full` (the whole sync index read) or `delta` (a kept set plus the new records).
    pub kind: String,
}

/// Label: a scheduled source list (`[[source]]` name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListLabel {
    /// The source's name.
    pub source: String,
}

/// Labels: a source list and what happened to its rows.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListResultLabel {
    /// The source's name.
    pub source: String,
    /// `added`, `amended`, `unchanged`, `withdrawn` or `failed`.
    pub result: String,
}

/// Labels: a source list and a failure class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListClassLabel {
    /// The source's name.
    pub source: String,
    /// `connect`, `truncated`, `sha256_mismatch`, `withdraw_guard`, ...
    pub class: String,
}

/// Label: a webhook (`[[webhook]]` name, or `webhook<index>`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    /// The webhook.
    pub webhook: String,
}

/// Labels: a webhook and the outcome of one delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookOutcomeLabel {
    /// The webhook.
    pub webhook: String,
    /// `delivered` or `failed`.
    pub outcome: String,
}

/// Labels: a source list and a refresh outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListOutcomeLabel {
    /// The source's name.
    pub source: String,
    /// `updated`, `unchanged` or `failed`.
    pub outcome: String,
}

/// Every metric of a node.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Records held.
    pub records: Gauge,
    /// Entries known.
    pub entries: Gauge,
    /// Entries whose head is withdrawn.
    pub withdrawn: Gauge,
    /// Entry versions with equivocation.
    pub disputed_versions: Gauge,
    /// Arrival-log head.
    pub log_head: Gauge,
    /// Store bytes on disk.
    pub store_bytes: Gauge,
    /// 1 when the store accepts writes, 0 after a write error.
    pub store_healthy: Gauge,
    /// Store write errors.
    pub store_errors: Counter,
    /// 1 while the roster names a current encryption key of this agency that no
    /// configured key file holds (mail sealed to it cannot be opened), else 0.
    pub encryption_key_missing: Gauge,
    /// How many `federation_settings` of the roster in force this build does not
    /// understand (a later build's, signed and ignored; issue 21, s35): above 0, the
    /// node should be upgraded.
    pub roster_settings_not_understood: Gauge,
    /// Records newly stored, by source.
    pub stored: Family<SourceLabel, Counter>,
    /// Records received from peers.
    pub received: Family<PeerLabel, Counter>,
    /// Records sent to peers.
    pub sent: Family<PeerLabel, Counter>,
    /// Records rejected, by peer and reason.
    pub rejected: Family<PeerReason, Counter>,
    /// Fields withheld in records sent, by peer.
    pub fields_withheld: Family<PeerLabel, Counter>,
    /// Records held back from a peer by policy.
    pub withheld_by_policy: Family<PeerLabel, Counter>,
    /// Cursor lag per peer (their head seq minus our cursor).
    pub sync_lag: Family<PeerLabel, Gauge>,
    /// 1 while the first-contact backlog below our cursor for a peer is not yet
    /// fetched by a finished reconciliation.
    pub sync_backlog_pending: Family<PeerLabel, Gauge>,
    /// 1 while the operator blocks a peer (`wlnode peer block`).
    pub peer_blocked: Family<PeerLabel, Gauge>,
    /// Connected peers.
    pub peers_connected: Gauge,
    /// Connections refused by the gate, by reason.
    pub connections_refused: Family<PeerReason, Counter>,
    /// Reconciliation rounds.
    pub reconcile_rounds: Family<PeerLabel, Counter>,
    /// Reconciliation bytes (sent + received).
    pub reconcile_bytes: Family<PeerLabel, Counter>,
    /// Reconciliation sets built, by kind.
    pub reconcile_set_builds: Family<SetBuildLabel, Counter>,
    /// Sync request bytes sent + received.
    pub sync_bytes: Family<PeerLabel, Counter>,
    /// Equivocations detected.
    pub equivocations: Counter,
    /// Audit log size.
    pub audit_size: Gauge,
    /// Unix seconds of the last audit checkpoint.
    pub audit_checkpoint_time: Gauge,
    /// Audit-protocol requests refused (peer not an auditor), by peer.
    pub audit_refused: Family<PeerLabel, Counter>,
    /// Auditor cosignatures held.
    pub audit_cosignatures: Gauge,
    /// API requests.
    pub api_requests: Family<RouteLabel, Counter>,
    /// Screening latency in seconds.
    pub screen_latency: Histogram,
    /// Unix seconds of each source's last successful refresh.
    pub source_last_success: Family<ListLabel, Gauge>,
    /// Unix seconds of each source's last refresh attempt.
    pub source_last_attempt: Family<ListLabel, Gauge>,
    /// Rows of each source by what happened to them.
    pub source_entries: Family<ListResultLabel, Counter>,
    /// Failed refreshes of each source, by class.
    pub source_failures: Family<ListClassLabel, Counter>,
    /// Refreshes of each source, by outcome.
    pub source_refreshes: Family<ListOutcomeLabel, Counter>,
    /// Webhook delivery attempts, by outcome.
    pub webhook_deliveries: Family<WebhookOutcomeLabel, Counter>,
    /// Events given up on (queue full, lagged, or out of attempts), per webhook.
    pub webhook_dead_letters: Family<WebhookLabel, Counter>,
    /// `watch_hit` events raised.
    pub watch_hits: Counter,
    /// Sealed messages and receipts moved, by action (`sent`, `handed`, `received`,
    /// `delivered`, `receipt`, `expired`, `duplicate`, `relay_expired`,
    /// `unmatched_end`: ends of hand-overs that matched no request in flight, s37,
    /// and `stale_request`: hand-overs with no end reported long past the request
    /// timeout, ended as failures, s38).
    pub mail: Family<MailLabel, Counter>,
    /// Sealed messages and receipts refused, by peer and reason (`forged`,
    /// `replayed`, `expired`, `oversized`, `malformed`, `quota`, ...).
    pub mail_rejected: Family<PeerReason, Counter>,
    /// Items the mailer holds (our undelivered messages and others' in transit).
    pub mail_held: Gauge,
}

/// Label of the `mail` counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabel {
    /// What happened.
    pub action: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("wlnode");
        let m = Self {
            records: Gauge::default(),
            entries: Gauge::default(),
            withdrawn: Gauge::default(),
            disputed_versions: Gauge::default(),
            log_head: Gauge::default(),
            store_bytes: Gauge::default(),
            store_healthy: Gauge::default(),
            store_errors: Counter::default(),
            encryption_key_missing: Gauge::default(),
            roster_settings_not_understood: Gauge::default(),
            stored: Family::default(),
            received: Family::default(),
            sent: Family::default(),
            rejected: Family::default(),
            fields_withheld: Family::default(),
            withheld_by_policy: Family::default(),
            sync_lag: Family::default(),
            sync_backlog_pending: Family::default(),
            peer_blocked: Family::default(),
            peers_connected: Gauge::default(),
            connections_refused: Family::default(),
            reconcile_rounds: Family::default(),
            reconcile_bytes: Family::default(),
            reconcile_set_builds: Family::default(),
            sync_bytes: Family::default(),
            equivocations: Counter::default(),
            audit_size: Gauge::default(),
            audit_checkpoint_time: Gauge::default(),
            audit_refused: Family::default(),
            audit_cosignatures: Gauge::default(),
            api_requests: Family::default(),
            screen_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            source_last_success: Family::default(),
            source_last_attempt: Family::default(),
            source_entries: Family::default(),
            source_failures: Family::default(),
            source_refreshes: Family::default(),
            webhook_deliveries: Family::default(),
            webhook_dead_letters: Family::default(),
            watch_hits: Counter::default(),
            mail: Family::default(),
            mail_rejected: Family::default(),
            mail_held: Gauge::default(),
            registry: Registry::default(),
        };
        r.register("records", "Records held", m.records.clone());
        r.register("entries", "Entries known", m.entries.clone());
        r.register(
            "entries_withdrawn",
            "Entries whose head is withdrawn",
            m.withdrawn.clone(),
        );
        r.register(
            "disputed_versions",
            "Entry versions with two or more records (equivocation)",
            m.disputed_versions.clone(),
        );
        r.register(
            "log_head_seq",
            "Arrival-log head sequence number",
            m.log_head.clone(),
        );
        r.register("store_bytes", "Store size on disk", m.store_bytes.clone());
        r.register(
            "store_healthy",
            "1 when the store accepts writes, 0 after a write error",
            m.store_healthy.clone(),
        );
        r.register("store_errors", "Store write errors", m.store_errors.clone());
        r.register(
            "encryption_key_missing",
            "1 while the roster's current encryption key of this agency is in no configured key file",
            m.encryption_key_missing.clone(),
        );
        r.register(
            "roster_settings_not_understood",
            "Federation settings of the roster in force this build does not understand (ignored; upgrade the node)",
            m.roster_settings_not_understood.clone(),
        );
        r.register(
            "records_stored",
            "Records newly stored, by source",
            m.stored.clone(),
        );
        r.register(
            "records_received",
            "Records received from peers",
            m.received.clone(),
        );
        r.register("records_sent", "Records sent to peers", m.sent.clone());
        r.register(
            "mail_items",
            "Sealed messages and receipts moved, by action",
            m.mail.clone(),
        );
        r.register(
            "mail_rejected",
            "Sealed messages and receipts refused, by peer and reason",
            m.mail_rejected.clone(),
        );
        r.register(
            "mail_held",
            "Sealed items held (own undelivered, others' in transit)",
            m.mail_held.clone(),
        );
        r.register(
            "records_rejected",
            "Records rejected, by peer and reason",
            m.rejected.clone(),
        );
        r.register(
            "fields_withheld",
            "Fields withheld from records sent, by peer",
            m.fields_withheld.clone(),
        );
        r.register(
            "records_withheld_by_policy",
            "Records held back from a peer by distribution or policy",
            m.withheld_by_policy.clone(),
        );
        r.register(
            "sync_lag",
            "Changes-feed lag per peer, in log entries",
            m.sync_lag.clone(),
        );
        r.register(
            "sync_backlog_pending",
            "1 while records below our cursor for a peer still await a finished reconciliation",
            m.sync_backlog_pending.clone(),
        );
        r.register(
            "peer_blocked",
            "1 while the operator blocks a peer at the transport level",
            m.peer_blocked.clone(),
        );
        r.register(
            "peers_connected",
            "Connected peers",
            m.peers_connected.clone(),
        );
        r.register(
            "connections_refused",
            "Connections refused, by reason",
            m.connections_refused.clone(),
        );
        r.register(
            "reconcile_rounds",
            "Reconciliation rounds",
            m.reconcile_rounds.clone(),
        );
        r.register(
            "reconcile_bytes",
            "Reconciliation bytes",
            m.reconcile_bytes.clone(),
        );
        r.register(
            "reconcile_set_builds",
            "Reconciliation sets built (full reads of the sync index, or kept sets brought up to date)",
            m.reconcile_set_builds.clone(),
        );
        r.register("sync_bytes", "Sync protocol bytes", m.sync_bytes.clone());
        r.register(
            "equivocations",
            "Equivocations detected",
            m.equivocations.clone(),
        );
        r.register(
            "audit_log_size",
            "Audit log size (events)",
            m.audit_size.clone(),
        );
        r.register(
            "audit_last_checkpoint_seconds",
            "Unix time of the last audit checkpoint",
            m.audit_checkpoint_time.clone(),
        );
        r.register(
            "audit_refused",
            "Audit-protocol requests refused (the peer is not an auditor)",
            m.audit_refused.clone(),
        );
        r.register(
            "audit_cosignatures",
            "Auditor cosignatures of our checkpoints held",
            m.audit_cosignatures.clone(),
        );
        r.register("api_requests", "API requests", m.api_requests.clone());
        r.register(
            "screen_latency_seconds",
            "Screening query latency",
            m.screen_latency.clone(),
        );
        r.register(
            "source_last_success_seconds",
            "Unix time of each source list's last successful refresh",
            m.source_last_success.clone(),
        );
        r.register(
            "source_last_attempt_seconds",
            "Unix time of each source list's last refresh attempt",
            m.source_last_attempt.clone(),
        );
        r.register(
            "source_entries",
            "Rows of each source list by result (added, amended, unchanged, withdrawn, failed)",
            m.source_entries.clone(),
        );
        r.register(
            "source_failures",
            "Failed refreshes of each source list, by class",
            m.source_failures.clone(),
        );
        r.register(
            "source_refreshes",
            "Refreshes of each source list, by outcome",
            m.source_refreshes.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by webhook and outcome (delivered, failed)",
            m.webhook_deliveries.clone(),
        );
        r.register(
            "webhook_dead_letters",
            "Events a webhook gave up on (queue full, lagged, or out of attempts)",
            m.webhook_dead_letters.clone(),
        );
        r.register(
            "watch_hits",
            "watch_hit events raised",
            m.watch_hits.clone(),
        );
        Self { registry: r, ..m }
    }

    /// Refreshes the store gauges.
    pub fn set_counts(&self, c: &wlnode_store::Counts) {
        let g = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        self.records.set(g(c.records));
        self.entries.set(g(c.entries));
        self.withdrawn.set(g(c.withdrawn));
        self.disputed_versions.set(g(c.disputed_versions));
        self.log_head.set(g(c.head_seq));
        self.audit_size.set(g(c.audit_events));
        self.audit_cosignatures.set(g(c.audit_cosignatures));
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts one mail action.
    pub fn mail(&self, action: &str) {
        self.mail
            .get_or_create(&MailLabel {
                action: action.to_owned(),
            })
            .inc();
    }

    /// Counts `n` of one mail action.
    pub fn mail_n(&self, action: &str, n: u64) {
        self.mail
            .get_or_create(&MailLabel {
                action: action.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts one refused mail item.
    pub fn mail_reject(&self, peer: &str, reason: &str) {
        self.mail_rejected
            .get_or_create(&PeerReason {
                peer: peer.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counter of rejections for `peer` and `reason`.
    pub fn reject(&self, peer: &str, reason: &str) {
        self.rejected
            .get_or_create(&PeerReason {
                peer: peer.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_text() {
        let m = Metrics::new();
        m.reject("BB-CUSTOMS", "bad_signature");
        m.stored
            .get_or_create(&SourceLabel {
                source: "local".into(),
            })
            .inc_by(3);
        let t = m.encode();
        assert!(
            t.contains(
                "wlnode_records_rejected_total{peer=\"BB-CUSTOMS\",reason=\"bad_signature\"} 1"
            ),
            "{t}"
        );
        assert!(
            t.contains("wlnode_records_stored_total{source=\"local\"} 3"),
            "{t}"
        );
        assert!(t.contains("# EOF"));
    }
}
