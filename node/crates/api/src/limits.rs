//! Serving the API within bounds, so that no local client can hold it:
//! - at most `api.max_connections` connections are served at once; the next waits in
//!   the kernel's accept queue, not in our memory;
//! - a connection must send a request's headers within `api.idle_timeout` (hyper's
//!   header-read timeout; axum's own server sets none, so a client that opens a
//!   connection and stalls used to hold it forever);
//! - each request is answered within `api.request_timeout`, body reading included
//!   (503 `timeout` otherwise). `POST /v1/backup`, which snapshots the whole store
//!   before it streams, is exempt.
//!
//! The accept loop is ours (hyper's HTTP/1 connection driver over the axum router)
//! because axum's `serve` exposes neither a connection limit nor a header timeout.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::ApiError;

/// The bounds, from `[api]`.
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Longest wait for a request's headers.
    pub header_timeout: Duration,
    /// How long a clean stop waits for requests in flight.
    pub drain: Duration,
}

/// Serves `app` on `listener` within `limits` until `shutdown` turns true; then
/// stops accepting, lets requests in flight finish (up to `limits.drain`) and
/// returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    loop {
        // A free slot first, then the connection.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = wait_true(&mut shutdown) => break,
        };
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, go on.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = wait_true(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let header_timeout = limits.header_timeout;
        conns.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "API connection ended");
                    }
                    return;
                }
                _ = wait_true(&mut stop) => conn.as_mut().graceful_shutdown(),
            }
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "API connection ended");
            }
        });
        // Reap finished connections as we go.
        while conns.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = conns.len(),
            "API requests still running at shutdown; closing them"
        );
        conns.abort_all();
    }
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            std::future::pending::<Infallible>().await;
        }
    }
}

/// Answers 503 `timeout` when a request takes longer than `limit`.
pub(crate) async fn request_timeout(
    State(limit): State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::timeout(limit).into_response(),
    }
}
