//! `[[webhook]]` blocks: where the node POSTs its notifications (issue 22 item 4,
//! "watches and push notifications").
//!
//! This module only reads and checks the blocks: a URL (`https://`, or `http://`
//! with `allow_http = true`), the event types to send, and the HMAC secret (at least
//! [`MIN_SECRET_CHARS`] characters). Delivery, signing and retries belong to the
//! runtime (`wlnode_runtime::webhooks`); the HTTP request itself to
//! `wlnode_client::webhook`. Errors name the file, line, the block and the key, like
//! every other config error.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{Config, ConfigError};

/// The shortest secret a webhook may have.
pub const MIN_SECRET_CHARS: usize = 16;

/// The kinds of node events (the `type` of an event's JSON body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// A new or amended entry matches a watch.
    WatchHit,
    /// A write became a draft that awaits a second user's approval.
    DraftAwaitingApproval,
    /// A neighbour's last connection dropped.
    PeerDown,
    /// A scheduled source refresh failed.
    SourceFailed,
    /// This node saw a breach of the federation's rules: an origin signed two
    /// different records for one entry version (equivocation), or a member was banned
    /// for sending invalid records or frames.
    AuditViolation,
    /// A consultation arrived, was answered or decided, or nears its deadline; or a
    /// hit report arrived (`kind` says which).
    Consultation,
    /// Another agency flagged one of our entries "not actionable here", or lifted its
    /// flag (issue 21 item 3; metadata only: entry, flagging agency, set or lifted).
    FlaggedEntry,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 7] = [
        EventType::WatchHit,
        EventType::DraftAwaitingApproval,
        EventType::PeerDown,
        EventType::SourceFailed,
        EventType::AuditViolation,
        EventType::Consultation,
        EventType::FlaggedEntry,
    ];

    /// The name, as in `node.toml` and in the event's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WatchHit => "watch_hit",
            Self::DraftAwaitingApproval => "draft_awaiting_approval",
            Self::PeerDown => "peer_down",
            Self::SourceFailed => "source_failed",
            Self::AuditViolation => "audit_violation",
            Self::Consultation => "consultation",
            Self::FlaggedEntry => "flagged_entry",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[webhook]]` block.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name for logs and metric labels (default `webhook<index>`).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Where to POST (`https://`; `http://` only with `allow_http = true`).
    pub url: Spanned<String>,
    /// Accept a plain `http://` URL (anyone on the path then reads the events;
    /// meant for loopback receivers and closed networks).
    #[serde(default)]
    pub allow_http: bool,
    /// The event types sent to it (at least one).
    pub events: Spanned<Vec<EventType>>,
    /// The HMAC-SHA256 key of `X-Wlnode-Signature` (at least 16 characters).
    pub secret: Spanned<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name.as_ref().map(|n| n.get_ref()))
            .field("url", self.url.get_ref())
            .field("allow_http", &self.allow_http)
            .field("events", self.events.get_ref())
            .field("secret", &"..")
            .finish()
    }
}

impl WebhookConfig {
    /// The events this webhook takes.
    pub fn event_set(&self) -> BTreeSet<EventType> {
        self.events.get_ref().iter().copied().collect()
    }
}

/// The label of webhook `i`: its `name`, else `webhook<i>`.
pub fn label(w: &WebhookConfig, i: usize) -> String {
    w.name
        .as_ref()
        .map_or_else(|| format!("webhook{i}"), |n| n.get_ref().clone())
}

/// Checks every `[[webhook]]` block of `cfg`.
pub(crate) fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let mut names = BTreeSet::new();
    for (i, w) in cfg.raw.webhook.iter().enumerate() {
        let err = |span: std::ops::Range<usize>, field: &str, msg: String| {
            cfg.error_at(
                span,
                format!("webhook[{i}].{field}"),
                format!("webhook {:?}: {msg}", label(w, i)),
            )
        };
        if let Some(n) = &w.name {
            let v = n.get_ref();
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(err(
                    n.span(),
                    "name",
                    "use 1 to 64 of a-z, 0-9, '-', '_', '.'".into(),
                ));
            }
        }
        if !names.insert(label(w, i)) {
            let span = w.name.as_ref().map_or(w.url.span(), Spanned::span);
            return Err(err(span, "name", "the name is used twice".into()));
        }
        check_url(w.url.get_ref(), w.allow_http).map_err(|m| err(w.url.span(), "url", m))?;
        if w.events.get_ref().is_empty() {
            return Err(err(
                w.events.span(),
                "events",
                format!(
                    "name at least one event type ({})",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            ));
        }
        let n = w.secret.get_ref().chars().count();
        if n < MIN_SECRET_CHARS || w.secret.get_ref().trim().len() != w.secret.get_ref().len() {
            return Err(err(
                w.secret.span(),
                "secret",
                format!(
                    "must be at least {MIN_SECRET_CHARS} characters without leading or trailing white space (got {n})"
                ),
            ));
        }
    }
    Ok(())
}

fn check_url(u: &str, allow_http: bool) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("invalid URL {u:?} ({e})"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(format!(
                "{u:?} is plain http://, so anyone on the network path reads the events; use https:// or set allow_http = true"
            ));
        }
        _ => return Err(format!("{u:?} is not an https:// URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{u:?} names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{u:?} carries credentials; webhooks authenticate with the signature"
        ));
    }
    Ok(())
}
