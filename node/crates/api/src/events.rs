//! `GET /v1/events`: the node's events as Server-Sent Events (the officers' roles,
//! see `users::required_role`). Each event is `id: <event id>`, `event: <type>`,
//! `data: <JSON body>` (the body a webhook receives, byte for byte). A client that falls
//! more than `wlnode_runtime::events::CAPACITY` events behind gets `event: lagged` with
//! `{"type": "lagged", "missed": n}` and continues from the oldest event still held:
//! the node never buffers more for it. At most `wlnode_runtime::events::MAX_STREAMS`
//! streams are open at once, and `MAX_STREAMS_PER_USER` per user (503
//! `too_many_streams` beyond). A stream is authorised again before every event and at
//! least every [`REAUTH`]: it ends as soon as its token no longer names an enabled user
//! with a role the route needs (disabled, rotated, roles changed). Streams end when the
//! node stops, and are exempt from `api.request_timeout`. Comments (`:`) keep idle
//! connections alive every 15 s.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;
use wlnode_runtime::events::{NodeEvent, StreamPermit};
use wlnode_runtime::users::Users;
use zeroize::Zeroizing;

use super::{ApiError, ApiState};

/// Longest an open stream goes without its token being checked again.
pub const REAUTH: Duration = Duration::from_secs(5);

#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, content_type = "text/event-stream", description = "Server-Sent Events: watch_hit, draft_awaiting_approval, peer_down, source_failed, audit_violation, consultation, flagged_entry, lagged"),
        (status = 401, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn stream(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    // The auth layer let the request through, so the token names an allowed user.
    let Some(token) = super::bearer_token(&headers).map(|t| Zeroizing::new(t.to_owned())) else {
        return ApiError::unauthorized().into_response();
    };
    let Some(actor) = allowed(&state.node.users, &token) else {
        return ApiError::unauthorized().into_response();
    };
    let users = state.node.users.clone();
    open(
        &state,
        &actor.id,
        Box::new(move || allowed(&users, &token).is_some()),
    )
}

/// Whether a stream may go on (checked before every event and every [`REAUTH`]).
pub(crate) type StillAllowed = Box<dyn Fn() -> bool + Send + Sync>;

/// Opens an event stream for user `user_id` (counted against their places), which ends
/// as soon as `still_allowed` says no.
pub(crate) fn open(state: &ApiState, user_id: &str, still_allowed: StillAllowed) -> Response {
    let bus = &state.node.events;
    let permit = match bus.stream_permit(user_id) {
        Ok(p) => p,
        Err(e) => {
            return ApiError::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                e.to_string(),
            )
            .into_response();
        }
    };
    let watch = Watch {
        still_allowed,
        rx: bus.subscribe(),
        closed: bus.closed(),
        _permit: permit,
    };
    Sse::new(events(watch))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The user `token` names, while it may still read the event stream.
pub(crate) fn allowed(users: &Users, token: &str) -> Option<wlnode_runtime::users::Actor> {
    let actor = users.authenticate(token)?;
    super::users::required_role(&Method::GET, "/v1/events")
        .met_by(&actor)
        .then_some(actor)
}

/// One open stream.
struct Watch {
    still_allowed: StillAllowed,
    rx: tokio::sync::broadcast::Receiver<NodeEvent>,
    closed: tokio::sync::watch::Receiver<bool>,
    _permit: StreamPermit,
}

fn events(watch: Watch) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(watch, |mut w| async move {
        let got = loop {
            tokio::select! {
                r = w.rx.recv() => break r,
                _ = w.closed.wait_for(|c| *c) => return None,
                () = tokio::time::sleep(REAUTH) => {
                    if !(w.still_allowed)() {
                        return None;
                    }
                }
            }
        };
        // Nothing more goes to a user who lost the right to it.
        if !(w.still_allowed)() {
            return None;
        }
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
        Some((Ok(ev), w))
    })
}
