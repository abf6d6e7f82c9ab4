//! Webhook delivery: each `[[webhook]]` (checked by `wlnode_config::webhooks`) gets
//! the node's events of the types it names, POSTed as JSON with
//! `X-Wlnode-Signature: sha256=<hex HMAC-SHA256 of the exact body with the secret>`.
//!
//! Per webhook, two tasks:
//! - the **collector** listens on the event bus (`crate::events`) and puts each event
//!   of a wanted type on the webhook's bounded queue ([`QUEUE`] events) with
//!   `try_send`: it never waits, so neither the bus nor anything that emits ever waits
//!   for a receiver. An event that finds the queue full is dead-lettered, as are
//!   events the collector lost by lagging on the bus;
//! - the **deliverer** takes one event at a time and POSTs it through
//!   `wlnode_client::webhook` (timeout [`TIMEOUT`], no redirects). A 2xx delivers it;
//!   anything else is retried after [`FIRST_RETRY`], doubling up to [`MAX_RETRY`], at
//!   most [`MAX_ATTEMPTS`] times, then dead-lettered. Events are delivered in order;
//!   a receiver that is down holds up only its own queue.
//!
//! `wlnode_webhook_deliveries_total{webhook,outcome}` counts attempts (`delivered`,
//! `failed`), `wlnode_webhook_dead_letters_total{webhook}` the events given up on.
//! Nothing is kept across restarts: a queued event is lost when the node stops.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::{broadcast, mpsc, watch};
use wlnode_client::webhook::WebhookPoster;
use wlnode_config::{Config, EventType, WebhookConfig};

use crate::events::{Events, NodeEvent};
use crate::metrics::{Metrics, WebhookLabel, WebhookOutcomeLabel};

/// Events queued per webhook.
pub const QUEUE: usize = 1000;
/// Attempts per event before it is dead-lettered.
pub const MAX_ATTEMPTS: u32 = 10;
/// Delay before the first retry.
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Longest delay between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Longest one attempt may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Wlnode-Signature";

/// `sha256=<hex HMAC-SHA256 of body with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempt + 1` (attempt counts from 1).
pub fn backoff(attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    FIRST_RETRY.saturating_mul(factor).min(MAX_RETRY)
}

#[derive(Clone)]
struct Hook {
    label: String,
    url: String,
    secret: Arc<str>,
    metrics: Arc<Metrics>,
}

impl Hook {
    fn dead_letter(&self, n: u64, why: &str) {
        self.metrics
            .webhook_dead_letters
            .get_or_create(&WebhookLabel {
                webhook: self.label.clone(),
            })
            .inc_by(n);
        tracing::warn!(webhook = %self.label, events = n, why, "webhook events dead-lettered");
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .webhook_deliveries
            .get_or_create(&WebhookOutcomeLabel {
                webhook: self.label.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// Starts the collector and deliverer of every configured webhook.
pub(crate) fn spawn(
    cfg: &Config,
    events: &Events,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Sender<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for (i, w) in cfg.raw.webhook.iter().enumerate() {
        let hook = Hook {
            label: wlnode_config::webhooks::label(w, i),
            url: w.url.get_ref().clone(),
            secret: w.secret.get_ref().as_str().into(),
            metrics: metrics.clone(),
        };
        let poster = match WebhookPoster::new(TIMEOUT) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(webhook = %hook.label, error = %e, "webhook disabled: no HTTP client");
                continue;
            }
        };
        // Initialise the series so a scrape shows every webhook from the start.
        hook.metrics
            .webhook_dead_letters
            .get_or_create(&WebhookLabel {
                webhook: hook.label.clone(),
            })
            .inc_by(0);
        let (tx, rx) = mpsc::channel(QUEUE);
        tasks.push(tokio::spawn(collect(
            hook.clone(),
            w.clone(),
            events.subscribe(),
            tx,
            shutdown.subscribe(),
        )));
        tasks.push(tokio::spawn(deliver(
            hook,
            poster,
            rx,
            shutdown.subscribe(),
        )));
    }
    tasks
}

async fn collect(
    hook: Hook,
    cfg: WebhookConfig,
    mut bus: broadcast::Receiver<NodeEvent>,
    queue: mpsc::Sender<NodeEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let wanted: std::collections::BTreeSet<EventType> = cfg.event_set();
    loop {
        let ev = tokio::select! {
            r = bus.recv() => r,
            _ = shutdown.changed() => return,
        };
        match ev {
            Ok(ev) if wanted.contains(&ev.kind) => match queue.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => hook.dead_letter(1, "queue full"),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            },
            Ok(_) => {}
            // Some of the lost events may not have been of a wanted type; counted all
            // the same (better an over-count than a silent loss).
            Err(broadcast::error::RecvError::Lagged(n)) => hook.dead_letter(n, "lagged"),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn deliver(
    hook: Hook,
    poster: WebhookPoster,
    mut queue: mpsc::Receiver<NodeEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let ev = tokio::select! {
            ev = queue.recv() => match ev { Some(ev) => ev, None => return },
            _ = shutdown.changed() => return,
        };
        let body = ev.json.as_bytes().to_vec();
        let headers = [
            (SIGNATURE_HEADER, signature(&hook.secret, &body)),
            ("X-Wlnode-Event", ev.kind.as_str().to_owned()),
            ("X-Wlnode-Delivery", ev.id.clone()),
        ];
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let sent = tokio::select! {
                r = poster.post(&hook.url, &headers, body.clone()) => r,
                _ = shutdown.changed() => return,
            };
            match sent {
                Ok(_) => {
                    hook.count("delivered");
                    tracing::debug!(webhook = %hook.label, event = %ev.id, attempt, "webhook delivered");
                    break;
                }
                Err(e) => {
                    hook.count("failed");
                    tracing::info!(webhook = %hook.label, event = %ev.id, attempt, error = %e, "webhook delivery failed");
                    if attempt >= MAX_ATTEMPTS {
                        hook.dead_letter(1, "out of attempts");
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff(attempt)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), FIRST_RETRY);
        assert_eq!(backoff(2), FIRST_RETRY * 2);
        assert_eq!(backoff(3), FIRST_RETRY * 4);
        assert_eq!(backoff(40), MAX_RETRY);
    }
}
