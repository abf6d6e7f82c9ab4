//! `GET /v1/events`: the node's events as Server-Sent Events (any role). Each event
//! is `id: <event id>`, `event: <type>`, `data: <JSON body>` (the body a webhook
//! receives, byte for byte). A client that falls more than
//! `wlnode_runtime::events::CAPACITY` events behind gets `event: lagged` with
//! `{"type": "lagged", "missed": n}` and continues from the oldest event still held:
//! the node never buffers more for it. At most `wlnode_runtime::events::MAX_STREAMS`
//! streams are open at once (503 `too_many_streams` beyond); streams end when the
//! node stops, and are exempt from `api.request_timeout`. Comments (`:`) keep idle
//! connections alive every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, ApiState};

#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events: watch_hit, draft_awaiting_approval, peer_down, source_failed, audit_violation, lagged"),
        (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn stream(State(state): State<ApiState>) -> Response {
    let bus = &state.node.events;
    let Some(permit) = bus.stream_permit() else {
        return ApiError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} event streams are open already",
                wlnode_runtime::events::MAX_STREAMS
            ),
        )
        .into_response();
    };
    let rx = bus.subscribe();
    let closed = bus.closed();
    Sse::new(events(rx, closed, permit))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(
    rx: tokio::sync::broadcast::Receiver<wlnode_runtime::events::NodeEvent>,
    closed: tokio::sync::watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (rx, closed, permit),
        |(mut rx, mut closed, permit)| async move {
            let got = tokio::select! {
                r = rx.recv() => r,
                _ = closed.wait_for(|c| *c) => return None,
            };
            let ev = match got {
                Ok(ev) => Event::default()
                    .id(ev.id.clone())
                    .event(ev.kind.as_str())
                    .data(&*ev.json),
                Err(RecvError::Lagged(n)) => Event::default()
                    .event("lagged")
                    .data(format!("{{\"type\":\"lagged\",\"missed\":{n}}}")),
                Err(RecvError::Closed) => return None,
            };
            Some((Ok(ev), (rx, closed, permit)))
        },
    )
}
