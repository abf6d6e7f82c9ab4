//! The auditor's own page (issue 23, decision (b)): `wlnode audit verify --serve ADDR`.
//!
//! The auditor is a separate party and has no user on a member's node, so its
//! federation report (nodes, the pair matrix, a lag chart, violations with their
//! evidence, consultation timings) is served by its own process, not by a node's
//! console. This module is that server: read-only, in the console's style and under
//! the console's security headers (the same CSP: no inline script or style, nothing
//! from elsewhere), with no JavaScript at all (the chart is server-rendered SVG; while
//! a verification runs the page reloads itself with `<meta http-equiv="refresh">`).
//!
//! - **One verifier task** owns the verification: it runs once at start, then every
//!   `every`, or sooner when woken by "re-verify now". So at most one verification runs
//!   at a time, and requests made while one runs coalesce into one more run after it.
//! - **Routes**: `GET /` (and `HEAD`) the page, `GET /static/console.css`, and `POST
//!   /reverify`, which only wakes the verifier. Every other method on these paths is
//!   405, every other path 404. The POST carries a token drawn at start and embedded in
//!   the page: another site's page cannot read ours, so it cannot make the auditor's
//!   browser ask (CSRF); whoever can read the page may ask, which costs at most one
//!   queued run.
//! - **Host check**: only requests whose `Host` is an IP address, `localhost` or a
//!   name given with `--host-name` are answered (421 otherwise), against DNS
//!   rebinding; a request is answered within 10 s and 16 connections are served at
//!   once.
//! - **Who can read it**: whoever reaches the address. The command's documented use
//!   binds 127.0.0.1 (reach it over SSH, or put an authenticating proxy in front); the
//!   report carries agency codes, PeerIds, counts, timings and the violations'
//!   evidence (event metadata), never entry or consultation content.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use tokio::sync::Notify;
use wlnode_audit::verify::Report;
use wlnode_crypto::time::Timestamp;

use super::session::{random_token, same};
use super::text::Text;
use super::{html_response, text_of, time_el};

/// One verification: the report, or why it could not be made (a node unreachable, a
/// log file unreadable).
pub type Verification = Pin<Box<dyn Future<Output = Result<Report, VerificationFailed>> + Send>>;

/// Why a verification produced no report. The page shows it (with its causes) where
/// the report would be, and the next run tries again.
#[derive(Debug, thiserror::Error)]
pub enum VerificationFailed {
    /// The verification ran and could not finish: a log unreadable or not an audit
    /// export, a node unreachable, the state file unwritable (the cause says which).
    #[error("the verification could not finish")]
    Verify(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The task running it stopped before it returned (it panicked or was cancelled).
    #[error("the verification task stopped before it finished")]
    Task(#[from] tokio::task::JoinError),
}

impl VerificationFailed {
    /// The error and each of its causes, joined by `: ` (what the page shows).
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        s
    }
}

/// What runs one verification (the command's: exported logs or live collection).
pub type Verifier = Box<dyn Fn() -> Verification + Send + Sync>;

/// The outcome of the latest verification.
struct Outcome {
    at: Timestamp,
    took: Duration,
    result: Result<Report, VerificationFailed>,
}

#[derive(Default)]
struct Status {
    latest: Option<Outcome>,
    running_since: Option<Timestamp>,
    /// "Re-verify now" was asked and the verifier has not started that run yet.
    queued: bool,
    next_at: Option<Timestamp>,
}

struct Shared {
    status: Mutex<Status>,
    wake: Notify,
    every: Duration,
    csrf: String,
    /// Host names (besides IP addresses and `localhost`) the page answers to.
    host_names: Vec<String>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The auditor's page server: [`AuditorPage::router`] to serve, [`AuditorPage::run`]
/// to verify (one task).
#[derive(Clone)]
pub struct AuditorPage {
    shared: Arc<Shared>,
}

/// Why the page cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AuditorPageError {
    /// The system's random source failed (no CSRF token).
    #[error("no random bytes for the page's CSRF token")]
    Random,
}

impl std::fmt::Debug for AuditorPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditorPage")
            .field("every", &self.shared.every)
            .finish_non_exhaustive()
    }
}

impl AuditorPage {
    /// A page re-verified every `every` (at least one second), answering requests
    /// whose `Host` is an IP address, `localhost`, or one of `host_names` (see
    /// [`host_allowed`]).
    pub fn new(every: Duration, host_names: Vec<String>) -> Result<Self, AuditorPageError> {
        Ok(Self {
            shared: Arc::new(Shared {
                status: Mutex::new(Status::default()),
                wake: Notify::new(),
                every: every.max(Duration::from_secs(1)),
                csrf: random_token().ok_or(AuditorPageError::Random)?,
                host_names: host_names
                    .into_iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
            }),
        })
    }

    /// The verifier: runs `verify` now, then every `every` or when woken, one at a
    /// time, forever (spawn it; it ends when dropped). `on_done` sees each outcome (the
    /// command prints a line).
    pub async fn run(
        self,
        verify: Verifier,
        on_done: impl Fn(&Result<Report, VerificationFailed>),
    ) {
        let s = &self.shared;
        loop {
            let started = Instant::now();
            {
                let mut st = s.status();
                st.running_since = Some(Timestamp::now());
                st.queued = false;
            }
            let result = verify().await;
            on_done(&result);
            let next = Timestamp(
                Timestamp::now()
                    .0
                    .saturating_add(u64::try_from(s.every.as_millis()).unwrap_or(u64::MAX)),
            );
            {
                let mut st = s.status();
                st.latest = Some(Outcome {
                    at: Timestamp::now(),
                    took: started.elapsed(),
                    result,
                });
                st.running_since = None;
                st.next_at = Some(next);
            }
            tokio::select! {
                () = tokio::time::sleep(s.every) => {}
                () = s.wake.notified() => {}
            }
        }
    }

    /// Serves the page on `listener` until `shutdown` turns true, within the API's
    /// connection bounds: at most 16 connections at once, headers within 10 s.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let limits = crate::limits::ServeLimits {
            max_connections: 16,
            header_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(5),
        };
        crate::limits::serve(listener, self.router(), limits, shutdown).await;
    }

    /// The routes (security headers included).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(page))
            .route("/reverify", post(reverify))
            .route("/static/console.css", get(super::css))
            // A request (its body included) is answered within 10 s, so slow clients
            // cannot hold the 16 connections.
            .layer(middleware::from_fn_with_state(
                Duration::from_secs(10),
                crate::limits::request_timeout,
            ))
            .layer(middleware::from_fn_with_state(
                self.shared.clone(),
                check_host,
            ))
            .layer(middleware::from_fn(super::security_headers))
            .with_state(self.shared.clone())
    }
}

/// Whether a request's `Host` names this page: an IP address or `localhost` (any port:
/// an SSH tunnel's local port differs from the bound one), or a configured name. A
/// page with no log-in on loopback is otherwise readable by any web site through DNS
/// rebinding (its name re-pointed at 127.0.0.1 in the auditor's browser).
pub fn host_allowed(host: &str, names: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest
            .split(']')
            .next()
            .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let name = name.to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok() || name == "localhost" || names.contains(&name)
}

async fn check_host(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, &s.host_names) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this page answers to its IP address, localhost or its --host-name only\n",
        )
            .into_response();
    }
    next.run(req).await
}

#[derive(serde::Deserialize)]
struct PageQuery {
    requested: Option<String>,
}

async fn reverify(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let t = text_of(&headers);
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if !token.is_some_and(|c| same(&c, &s.csrf)) {
        return (
            StatusCode::FORBIDDEN,
            html_response(shell(
                t,
                t.error_title,
                None,
                html! {
                    p.error role="alert" #error { (t.csrf_refused) }
                    p { a href="/" { (t.back) } }
                },
            )),
        )
            .into_response();
    }
    // Wakes the verifier, or leaves it one permit if it is running: never a second
    // verification at once.
    s.status().queued = true;
    s.wake.notify_one();
    super::see_other("/?requested=1")
}

async fn page(State(s): State<Arc<Shared>>, headers: HeaderMap, q: Query<PageQuery>) -> Response {
    let t = text_of(&headers);
    let st = s.status();
    let running = st.running_since.is_some() || st.queued;
    let body = html! {
        p { (t.auditor_intro) " " code { "wlnode audit verify" } }
        @if q.requested.is_some() {
            p.notice role="status" #requested { (t.auditor_requested) }
        }
        @if running {
            p.notice role="status" #running {
                @if st.latest.is_none() { (t.auditor_first_run) " " }
                (t.auditor_running)
            }
        }
        @if let Some(o) = &st.latest {
            dl #run {
                dt { (t.auditor_last_run) } dd { (time_el(t, o.at)) }
                dt { (t.auditor_took) } dd { (format!("{:.1}", o.took.as_secs_f64())) " " (t.secs_short) }
                dt { (t.auditor_every) } dd { (span_text(t, s.every)) }
                @if let (Some(n), false) = (st.next_at, running) {
                    dt { (t.auditor_next) } dd { (time_el(t, n)) }
                }
            }
        }
        form method="post" action="/reverify" {
            input type="hidden" name="csrf" value=(s.csrf);
            button #reverify type="submit" aria-describedby="reverify-help" { (t.auditor_reverify) }
            small #reverify-help { (t.auditor_reverify_help) }
        }
        @match st.latest.as_ref().map(|o| &o.result) {
            None => {}
            Some(Err(e)) => {
                p.error role="alert" #run-error { (t.auditor_run_failed) " " (e.chain()) }
            }
            Some(Ok(report)) => {
                @if running { p { (t.auditor_previous) } }
                p #verdict data-ok=(report.ok) {
                    @if report.ok {
                        span.ok { (t.auditor_pass) }
                    } @else {
                        span.bad { (t.auditor_fail) ": " (report.violations.len()) " " (t.auditor_violations) }
                    }
                }
                // The audit crate's report sections: every value in them is escaped
                // there (`wlnode_audit::html`), the chart is inline SVG.
                div.report {
                    nav.sections aria-label=(t.auditor_sections) {
                        @for (i, (id, label)) in [("nodes", t.auditor_s_nodes), ("pairs", t.auditor_s_pairs), ("consultations", t.auditor_s_consultations), ("lag", t.auditor_s_lag), ("violations", t.auditor_s_violations)].into_iter().enumerate() {
                            @if i > 0 { " · " }
                            a href=(format!("#{id}")) { (label) }
                        }
                    }
                    (PreEscaped(wlnode_audit::html::sections(report, &t.report)))
                }
            }
        }
    };
    let refresh = running.then_some(2);
    drop(st);
    html_response(shell(t, t.auditor_title, refresh, body))
}

/// A span of time in its largest whole unit: "1 h", "10 min", "90 s".
fn span_text(t: &Text, d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{} {}", s / 3600, t.unit_h),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{} {}", s / 60, t.unit_min),
        _ => format!("{s} {}", t.unit_s),
    }
}

/// The page around `body`: the console's stylesheet and header, no script.
fn shell(t: &Text, title: &str, refresh_secs: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(t.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(r) = refresh_secs {
                    meta http-equiv="refresh" content=(format!("{r}; url=/"));
                }
                title { (title) " · " (t.auditor_app) }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top { span.app { (t.auditor_app) } }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::host_allowed;
    use wlnode_audit::html::Labels;
    use wlnode_audit::verify::{LagPoint, NodeSummary, PairStats, Report, Violation};

    /// A report that reaches every branch of the renderer, whose data (agencies,
    /// PeerIds, kinds, details, evidence) are digits only: any letter on the page is
    /// then a word, and every word must be one of the catalogue's.
    fn report_with_everything() -> Report {
        let node = |a: &str| NodeSummary {
            agency: a.into(),
            peer_id: format!("{a}0"),
            events: 3,
            checkpoints: 2,
            checkpoints_verified: 1,
            verified_size: 4,
            by_type: [("77".to_owned(), 3)].into(),
            violations: 1,
            pair_violations: 2,
            mail_delay_older_build: 5,
            mail_short_lived_not_judged: 6,
        };
        let pair = |from: &str, to: &str, missing| PairStats {
            from: from.into(),
            to: to.into(),
            sent: 5,
            accepted: 4,
            missing,
            lag_mean_ms: Some(12.0),
            lag_max_ms: Some(20),
            ..PairStats::default()
        };
        Report {
            ok: false,
            nodes: vec![node("11"), node("22")],
            pairs: vec![pair("11", "22", 1), pair("22", "11", 0)],
            lag: vec![
                LagPoint {
                    at: 1_000,
                    from: "11".into(),
                    to: "22".into(),
                    lag_ms: 10,
                },
                LagPoint {
                    at: 9_000,
                    from: "22".into(),
                    to: "11".into(),
                    lag_ms: 20,
                },
            ],
            violations: vec![Violation {
                kind: "33".into(),
                node: "11".into(),
                detail: "44".into(),
                evidence: serde_json::json!({"55": 66}),
                proven: true,
            }],
            consultations: vec![wlnode_audit::verify::ConsultationsSummary {
                agency: "11".into(),
                consultations: 2,
                median_time_to_answer_ms: Some(1_500),
                ..Default::default()
            }],
            ..Report::default()
        }
    }

    /// The visible text of `html`: no tags, no style block, no character references.
    fn visible_text(html: &str) -> String {
        let mut out = String::new();
        let mut rest = html;
        if let (Some(a), Some(b)) = (rest.find("<style>"), rest.find("</style>")) {
            out.push_str(&rest[..a]);
            out.push(' ');
            rest = &rest[b..];
        }
        out.push_str(rest);
        let mut text = String::new();
        let mut in_tag = false;
        for c in out.chars() {
            match c {
                '<' => in_tag = true,
                '>' => {
                    in_tag = false;
                    text.push(' ');
                }
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        for r in ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"] {
            text = text.replace(r, " ");
        }
        text
    }

    /// The catalogue holds every word of the federation audit report (issue 23): the
    /// report is rendered, as the auditor's page and as the CLI's whole page, with a
    /// pseudo-translation in which every label is `⟦field⟧`. Once those are taken out,
    /// no letter is left (the data are digits), every attribute a person hears
    /// (`aria-label`) is a label too, and every label of the table is used. English
    /// fills every label.
    #[test]
    fn every_word_of_the_audit_report_comes_from_the_catalogue() {
        let en = &crate::console::text::EN.report;
        for (name, value) in en.fields() {
            assert!(
                !value.trim().is_empty(),
                "report label {name} is empty in English"
            );
        }
        let pseudo = Labels::from_fn(|name| Box::leak(format!("⟦{name}⟧").into_boxed_str()));
        let full = report_with_everything();
        let empty = Report {
            ok: true,
            ..Report::default()
        };
        let pages = [
            wlnode_audit::html::sections(&full, &pseudo),
            wlnode_audit::html::sections(&empty, &pseudo),
            wlnode_audit::html::render(&full, "1765000000000", &pseudo),
            wlnode_audit::html::render(&empty, "1765000000000", &pseudo),
        ];
        for page in &pages {
            let mut text = visible_text(page);
            for (_, label) in pseudo.fields() {
                text = text.replace(label, " ");
            }
            assert!(
                !text.chars().any(char::is_alphabetic),
                "words outside the catalogue in the audit report: {text:?}"
            );
            for (i, _) in page.match_indices("aria-label=\"") {
                let v = &page[i + 12..];
                let v = &v[..v.find('"').unwrap()];
                assert!(v.starts_with('⟦') && v.ends_with('⟧'), "aria-label {v:?}");
            }
        }
        let all = pages.concat();
        for (name, label) in pseudo.fields() {
            assert!(all.contains(label), "report label {name} is never shown");
        }
        // The English page reads as before (the CLI's `--html` and the tests read it).
        let html = wlnode_audit::html::render(&full, "now", en);
        assert!(html.contains("FAIL: 1 violation(s)") && html.contains("Consultations (Art. 16)"));
        assert!(html.contains("<html lang=\"en\">"));
    }

    /// A page with no log-in must not answer a rebound DNS name (another site's name
    /// pointed at 127.0.0.1 in the auditor's browser).
    #[test]
    fn only_ip_addresses_localhost_and_given_names_are_answered() {
        let names = vec!["audit.example.org".to_owned()];
        for ok in [
            "127.0.0.1:8090",
            "127.0.0.1",
            "localhost:9000",
            "LOCALHOST",
            "[::1]:8090",
            "10.1.2.3:80",
            "audit.example.org",
            "Audit.Example.org:443",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:8090",
            "",
            "[nope]:1",
            "localhost.evil.com",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }
}
