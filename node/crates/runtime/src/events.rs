//! The node-local event bus: notifications for people and their systems (issue 22
//! item 4). Services [`Events::emit`] an event; the API streams them
//! (`GET /v1/events`, Server-Sent Events) and the webhook service POSTs them
//! (`crate::webhooks`).
//!
//! - One `tokio::sync::broadcast` channel of [`CAPACITY`] events. Emitting never
//!   waits and never fails for want of a listener: a listener that falls more than
//!   [`CAPACITY`] events behind loses the oldest and is told how many
//!   (`RecvError::Lagged`), so no listener can make the node hold more.
//! - An event is serialised once, when emitted: its JSON body (`type`, `id`, `at`
//!   and the event's fields) is what the stream and every webhook carry, byte for
//!   byte, so a webhook signature covers exactly what the stream shows.
//! - Events are not stored: they are notifications, not a record (the audit log is
//!   the record). A node that is down emits nothing and replays nothing. (Watch hits
//!   are kept by the watches service, in the store: `crate::watches`.)

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::broadcast;
use wlnode_config::EventType;
use wlnode_crypto::time::Timestamp;

/// Events held for the slowest listener before it lags.
pub const CAPACITY: usize = 1024;
/// Most event streams (`GET /v1/events`) open at once.
pub const MAX_STREAMS: usize = 32;
/// Most event streams one user holds open at once, so no user takes every place.
pub const MAX_STREAMS_PER_USER: usize = 4;

/// One emitted event.
#[derive(Clone, Debug)]
pub struct NodeEvent {
    /// Its type.
    pub kind: EventType,
    /// Unique id (32 hex digits).
    pub id: String,
    /// When it was emitted.
    pub at: Timestamp,
    /// The JSON body: `{"type", "id", "at", ...fields}`.
    pub json: Arc<str>,
}

/// The bus: cheap to clone; every service that emits holds one.
#[derive(Clone, Debug)]
pub struct Events {
    tx: broadcast::Sender<NodeEvent>,
    streams: Arc<tokio::sync::Semaphore>,
    /// Open streams per user (pseudonymous id).
    per_user: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

fn event_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Never fails on the platforms we run on; a time-based id is still unique
        // enough for a notification.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        b = t.to_be_bytes();
    }
    hex::encode(b)
}

impl Events {
    /// A bus with no listener.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            per_user: Arc::default(),
            closed: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Emits an event of `kind` with `fields` (a JSON object; `type`, `id` and `at`
    /// are set here and override fields of those names). Returns it.
    pub fn emit(&self, kind: EventType, fields: Value) -> NodeEvent {
        let id = event_id();
        let at = Timestamp::now();
        let mut body = Map::new();
        body.insert("type".into(), Value::from(kind.as_str()));
        body.insert("id".into(), Value::from(id.clone()));
        body.insert("at".into(), Value::from(at.to_rfc3339()));
        if let Value::Object(f) = fields {
            for (k, v) in f {
                if !matches!(k.as_str(), "type" | "id" | "at") {
                    body.insert(k, v);
                }
            }
        }
        let json: Arc<str> = Value::Object(body).to_string().into();
        let ev = NodeEvent { kind, id, at, json };
        tracing::debug!(kind = %kind, id = %ev.id, "event");
        // No listener: nobody to tell, which is fine.
        let _ = self.tx.send(ev.clone());
        ev
    }

    /// A new listener: every event emitted from now on, or `Lagged(n)` when it fell
    /// [`CAPACITY`] behind.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.tx.subscribe()
    }

    /// A place for one more event stream of `user`, unless [`MAX_STREAMS`] are open
    /// in all or [`MAX_STREAMS_PER_USER`] of that user's. Held until dropped.
    pub fn stream_permit(&self, user: &str) -> Result<StreamPermit, StreamRefused> {
        let mut counts = self.per_user.lock().map_err(|_| StreamRefused::Total)?;
        let mine = counts.get(user).copied().unwrap_or(0);
        if mine >= MAX_STREAMS_PER_USER {
            return Err(StreamRefused::PerUser);
        }
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| StreamRefused::Total)?;
        counts.insert(user.to_owned(), mine + 1);
        Ok(StreamPermit {
            _permit: permit,
            user: user.to_owned(),
            per_user: self.per_user.clone(),
        })
    }

    /// Turns true when the node stops: open streams end then.
    pub fn closed(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closed.subscribe()
    }

    /// Ends every open stream (the node is stopping).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Listeners now.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Why no event stream could be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamRefused {
    /// [`MAX_STREAMS`] are open.
    #[error("{MAX_STREAMS} event streams are open already")]
    Total,
    /// The user holds [`MAX_STREAMS_PER_USER`] open.
    #[error("you hold {MAX_STREAMS_PER_USER} event streams open already")]
    PerUser,
}

/// One open event stream's place (see [`Events::stream_permit`]).
#[derive(Debug)]
pub struct StreamPermit {
    _permit: tokio::sync::OwnedSemaphorePermit,
    user: String,
    per_user: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.per_user.lock()
            && let Some(n) = counts.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[tokio::test]
    async fn events_carry_type_id_and_time_and_a_slow_listener_lags() {
        let bus = Events::new();
        let mut rx = bus.subscribe();
        let e = bus.emit(
            EventType::PeerDown,
            serde_json::json!({"agency": "BB-CUSTOMS", "type": "spoofed"}),
        );
        let got = rx.recv().await.unwrap();
        assert_eq!(got.id, e.id);
        let v: Value = serde_json::from_str(&got.json).unwrap();
        assert_eq!(v["type"], "peer_down");
        assert_eq!(v["agency"], "BB-CUSTOMS");
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        Timestamp::parse_rfc3339(v["at"].as_str().unwrap()).unwrap();
        for _ in 0..CAPACITY + 5 {
            bus.emit(EventType::SourceFailed, serde_json::json!({}));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 5),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert_ne!(bus.emit(EventType::WatchHit, Value::Null).id, e.id);
    }
}
