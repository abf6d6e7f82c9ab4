//! Posting one notification to a webhook receiver: the HTTP half of the runtime's
//! webhook delivery (`wlnode_runtime::webhooks`), which decides what to send, signs
//! it, queues it and retries. This crate is the node's only HTTP client user.
//!
//! Bounds: a timeout covering the whole exchange, no redirects (a receiver that
//! moves must be reconfigured: a redirect would carry signed events elsewhere), no
//! proxy, and at most [`MAX_RESPONSE_BYTES`] of the answer read (the body is not
//! used; a hostile receiver cannot make the node buffer a large one).

use std::time::Duration;

/// Most bytes of a receiver's answer read before the connection is dropped.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Why a delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// No connection, or the exchange broke off.
    #[error("cannot deliver: {0}")]
    Connect(String),
    /// No complete answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The receiver answered with a status other than 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl PostError {
    /// A short class for metrics and logs.
    pub fn class(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "http_status",
            Self::Setup(_) => "setup",
        }
    }
}

/// An HTTP(S) client for webhook receivers.
#[derive(Clone, Debug)]
pub struct WebhookPoster {
    http: reqwest::Client,
    timeout: Duration,
}

impl WebhookPoster {
    /// A client whose every exchange ends within `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, PostError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("wlnode/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PostError::Setup(e.to_string()))?;
        Ok(Self { http, timeout })
    }

    /// POSTs `body` (JSON) to `url` with the given extra headers. `Ok` on any 2xx.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, PostError> {
        let mut req = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let mut resp = req.body(body).send().await.map_err(|e| self.map_err(e))?;
        let status = resp.status();
        // Read a little of the answer (so the connection can be reused), never more.
        let mut read = 0usize;
        while read < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(c)) => read += c.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(PostError::Status(status.as_u16()))
        }
    }

    fn map_err(&self, e: reqwest::Error) -> PostError {
        if e.is_timeout() {
            PostError::Timeout(self.timeout)
        } else {
            // Never the URL (it may hold a token): reqwest puts it in its errors.
            PostError::Connect(e.without_url().to_string())
        }
    }
}
