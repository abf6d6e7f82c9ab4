//! Fetching a source list over HTTP(S) for the node's scheduled sources: one
//! conditional GET with hard bounds.
//!
//! This crate is the node's only HTTP client user (reqwest, rustls with the webpki
//! roots, no native TLS), so the fetch lives here; what to fetch, when, and what to do
//! with the bytes is the runtime's business (`wlnode_runtime::sources`). Bounds: a
//! request timeout covering the body, a body size cap checked against the promised
//! `Content-Length` before reading and while reading, at most [`MAX_REDIRECTS`]
//! redirects, never from `https` down to `http`, never to an IP literal in a
//! loopback, private, link-local or unspecified range (or `localhost`) unless the
//! URL first asked for was such a host itself ([`redirect_allowed`]), and no proxy.
//! A host *name* that resolves to a private address is not caught here. A body shorter
//! than its `Content-Length` is [`FetchError::Truncated`], never a short success.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};

/// Most redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 5;

/// Longest validator value kept (an `ETag` or `Last-Modified` beyond this is ignored).
const MAX_VALIDATOR: usize = 1024;

/// The bounds of one fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest body accepted.
    pub max_bytes: u64,
    /// Longest the whole request may take, body included.
    pub timeout: Duration,
}

/// What a server said about the version it sent, for the next conditional request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` (sent back as `If-None-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` date (sent back as `If-Modified-Since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// The result of a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the server's copy has not changed since the validators we sent.
    NotModified,
    /// The whole body, as promised.
    Body {
        /// The bytes.
        bytes: Vec<u8>,
        /// Validators for the next request.
        validators: Validators,
    },
}

/// Why a fetch failed. Every variant means "no trustworthy body".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse or is not http(s).
    #[error("invalid URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No connection (refused, DNS, TLS handshake).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The request took longer than the limit.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// Too many redirects, or a redirect from https to http.
    #[error("redirect refused: {0}")]
    Redirect(String),
    /// The server answered with a status other than 200 or 304.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body is (or promised to be) larger than the cap.
    #[error("the body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// The body ended before its `Content-Length`.
    #[error("truncated: {got} of the {expected} bytes promised by Content-Length")]
    Truncated {
        /// Promised.
        expected: u64,
        /// Received.
        got: u64,
    },
    /// The body broke off for another reason.
    #[error("the body broke off after {got} bytes: {reason}")]
    Body {
        /// Bytes received.
        got: u64,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

impl FetchError {
    /// A short machine-readable class, for metrics and audit events.
    pub fn class(&self) -> &'static str {
        match self {
            Self::BadUrl { .. } => "bad_url",
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Redirect(_) => "redirect",
            Self::Status(_) => "http_status",
            Self::TooLarge { .. } => "too_large",
            Self::Truncated { .. } | Self::Body { .. } => "truncated",
            Self::Setup(_) => "setup",
        }
    }
}

/// Whether `url`'s host is an address of this machine or its networks: an IP literal
/// in a loopback, private (RFC 1918, unique local), link-local, shared (RFC 6598) or
/// unspecified range, or `localhost`.
pub fn is_internal_host(url: &reqwest::Url) -> bool {
    use std::net::IpAddr;
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    let v4 = |a: std::net::Ipv4Addr| {
        let [x, y, ..] = a.octets();
        a.is_loopback()
            || a.is_private()
            || a.is_link_local()
            || a.is_unspecified()
            || a.is_broadcast()
            || (x == 100 && (64..128).contains(&y))
    };
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => v4(a),
        Ok(IpAddr::V6(a)) => {
            let first = a.segments().first().copied().unwrap_or(0);
            a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(v4)
        }
        Err(_) => false,
    }
}

/// Whether a fetch of `original` may follow a redirect to `target`: not into an
/// internal host ([`is_internal_host`]) unless `original` was one itself (so a
/// hostile list server cannot point the node at services on its own network).
pub fn redirect_allowed(original: &reqwest::Url, target: &reqwest::Url) -> Result<(), String> {
    if is_internal_host(target) && !is_internal_host(original) {
        return Err(format!(
            "to {}, an internal address, from {}",
            target.host_str().unwrap_or_default(),
            original.host_str().unwrap_or_default()
        ));
    }
    Ok(())
}

/// An HTTP(S) client for source lists.
#[derive(Clone, Debug)]
pub struct Fetcher {
    http: reqwest::Client,
    limits: FetchLimits,
}

impl Fetcher {
    /// A client with these bounds.
    pub fn new(limits: FetchLimits) -> Result<Self, FetchError> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            let inward = attempt
                .previous()
                .first()
                .and_then(|first| redirect_allowed(first, attempt.url()).err());
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if downgrade {
                attempt.error("from https to http")
            } else if let Some(why) = inward {
                attempt.error(why)
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(Duration::from_secs(30)))
            .redirect(policy)
            .no_proxy()
            .user_agent(concat!("wlnode/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Setup(e.to_string()))?;
        Ok(Self { http, limits })
    }

    /// GETs `url`, conditionally on `known` (`If-None-Match`, `If-Modified-Since`).
    pub async fn get(&self, url: &str, known: &Validators) -> Result<Fetched, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl {
                url: url.to_owned(),
                reason: "not http or https".into(),
            });
        }
        let mut req = self.http.get(parsed);
        if let Some(e) = &known.etag {
            req = req.header(IF_NONE_MATCH, e);
        }
        if let Some(m) = &known.last_modified {
            req = req.header(IF_MODIFIED_SINCE, m);
        }
        let mut resp = req.send().await.map_err(|e| self.map_err(e, 0))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let limit = self.limits.max_bytes;
        // The header as sent (reqwest's `content_length` is the body's size hint).
        let promised: Option<u64> = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if promised.is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR)
                .map(str::to_owned)
        };
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let cap = usize::try_from(promised.unwrap_or(0).min(limit)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(cap);
        loop {
            let got = bytes.len() as u64;
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(match promised {
                        Some(expected) if !e.is_timeout() => {
                            FetchError::Truncated { expected, got }
                        }
                        _ => self.map_err(e, got),
                    });
                }
            };
            if got + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        let got = bytes.len() as u64;
        if let Some(expected) = promised
            && got != expected
        {
            return Err(FetchError::Truncated { expected, got });
        }
        Ok(Fetched::Body { bytes, validators })
    }

    fn map_err(&self, e: reqwest::Error, got: u64) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.limits.timeout)
        } else if e.is_redirect() {
            FetchError::Redirect(error_chain(&e))
        } else if e.is_connect() {
            FetchError::Connect(error_chain(&e))
        } else if e.is_body() || e.is_decode() {
            FetchError::Body {
                got,
                reason: error_chain(&e),
            }
        } else {
            FetchError::Connect(error_chain(&e))
        }
    }
}

/// The error and its causes on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    //! Against a raw HTTP/1.1 server on 127.0.0.1 (port 0) that answers each
    //! connection with a canned response, so it can lie about `Content-Length`.
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves `responses` in order, one per connection; returns the base URL and the
    /// request heads it saw.
    async fn serve(responses: Vec<Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            for r in responses {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let _ = s.write_all(&r).await;
                let _ = s.shutdown().await;
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn fetcher() -> Fetcher {
        Fetcher::new(FetchLimits {
            max_bytes: 64,
            timeout: Duration::from_secs(20),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_whole_body_comes_with_its_validators_and_they_are_sent_back() {
        let (base, seen) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"v1\"\r\nLast-Modified: Sun, 06 Dec 2026 10:00:00 GMT\r\nConnection: close\r\n\r\nhello".to_vec(),
            b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_vec(),
        ])
        .await;
        let f = fetcher();
        let Fetched::Body { bytes, validators } = f
            .get(&format!("{base}/list"), &Validators::default())
            .await
            .unwrap()
        else {
            panic!("a body")
        };
        assert_eq!(bytes, b"hello");
        assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
        let again = f.get(&format!("{base}/list"), &validators).await.unwrap();
        assert_eq!(again, Fetched::NotModified);
        let heads = seen.lock().unwrap().clone();
        let second = heads[1].to_ascii_lowercase();
        assert!(second.contains("if-none-match: \"v1\""), "{second}");
        assert!(
            second.contains("if-modified-since: sun, 06 dec 2026 10:00:00 gmt"),
            "{second}"
        );
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_content_length_is_truncated() {
        let (base, _) = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\nConnection: close\r\n\r\nonly twenty bytes..."
                .to_vec(),
        ])
        .await;
        let e = fetcher()
            .get(&base, &Validators::default())
            .await
            .unwrap_err();
        assert!(
            matches!(e, FetchError::Truncated { expected: 40, got } if got <= 20),
            "{e:?}"
        );
        assert_eq!(e.class(), "truncated");
    }

    #[tokio::test]
    async fn bodies_over_the_cap_and_bad_statuses_are_refused() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{}",
            "x".repeat(100)
        );
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n64\r\n{}\r\n0\r\n\r\n",
            "y".repeat(100)
        );
        let (base, _) = serve(vec![
            big.into_bytes(),
            chunked.into_bytes(),
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
        ])
        .await;
        let f = fetcher();
        for _ in 0..2 {
            let e = f.get(&base, &Validators::default()).await.unwrap_err();
            assert_eq!(e, FetchError::TooLarge { limit: 64 });
        }
        let e = f.get(&base, &Validators::default()).await.unwrap_err();
        assert_eq!(e, FetchError::Status(503));
    }

    #[test]
    fn redirects_to_private_addresses_are_refused_from_public_urls() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let public = u("https://lists.example.org/l.xml");
        for inward in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
            "http://[::1]/x",
            "http://[fd00::1]/x",
            "http://[fe80::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://localhost:8080/x",
        ] {
            assert!(redirect_allowed(&public, &u(inward)).is_err(), "{inward}");
            // A source configured on loopback (the tests) may redirect there.
            assert!(redirect_allowed(&u("http://127.0.0.1:9/l"), &u(inward)).is_ok());
        }
        for outward in [
            "https://cdn.example.net/l.xml",
            "https://8.8.8.8/l",
            "http://[2001:db8::1]/",
        ] {
            assert!(redirect_allowed(&public, &u(outward)).is_ok(), "{outward}");
        }
    }

    #[tokio::test]
    async fn redirect_loops_stop_and_refused_connections_are_connect_errors() {
        let hop = |n: usize| {
            format!("HTTP/1.1 302 Found\r\nLocation: /r{n}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        };
        let (base, seen) = serve((0..10).map(hop).collect()).await;
        let e = fetcher()
            .get(&base, &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.class(), "redirect", "{e:?}");
        assert_eq!(seen.lock().unwrap().len(), MAX_REDIRECTS + 1);

        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = l.local_addr().unwrap();
        drop(l);
        let e = fetcher()
            .get(&format!("http://{closed}/"), &Validators::default())
            .await
            .unwrap_err();
        assert_eq!(e.class(), "connect", "{e:?}");
    }
}
