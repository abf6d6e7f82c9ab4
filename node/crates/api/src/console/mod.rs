//! The web console (issue 23): server-rendered HTML under `/ui/` on the API address,
//! for officers, editors, approvers and admins who work in a browser.
//!
//! - **Same rules as the API.** Every console route names the API route whose role it
//!   needs ([`ROUTES`]); the guard checks `users::required_role` of that route, so
//!   pages and buttons are gated exactly as the API is. A console route missing from
//!   the table needs `admin`, as an API route missing from the API's table does. The
//!   handlers call the API's own handler functions and the runtime handles in-process:
//!   no HTTP loopback, no second copy of validation.
//! - **Sessions** (`session`): `/ui/login` takes a user's API token and sets an
//!   `HttpOnly; SameSite=Strict` cookie (`Secure` behind a TLS proxy that sends
//!   `X-Forwarded-Proto: https`); the server keeps the session, bounded, with an idle
//!   timeout; each request authenticates the session's token again, so a disabled user's
//!   sessions die at once.
//! - **CSRF**: every form carries the session's token in a hidden `csrf` field, and the
//!   guard refuses (403) every POST whose body does not carry it, before any handler
//!   runs. The log-in form, before a session exists, uses a double-submit cookie.
//! - **Headers**: a strict Content-Security-Policy (`default-src 'none'`, scripts and
//!   styles only from `/ui/static/`, no inline script or style), `frame-ancestors
//!   'none'` and `X-Frame-Options: DENY`, `nosniff`, no referrer, and `no-store` on
//!   everything but the static files.
//! - Templates are `maud` (checked at compile time, escaped by default); every string a
//!   person reads comes from `text`; pages work without JavaScript except the
//!   dashboard's live events.
//! - Consultations (`consult`): inbox and outbox, detail with the trail, the answer,
//!   decision, request and hit report forms, behind the consultation routes' roles.

pub mod auditor;
mod consult;
mod dashboard;
mod entries;
mod flags;
mod screen;
pub mod session;
pub mod text;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use wlnode_runtime::users::{Actor, Role};

use self::session::same;
use self::text::Text;
use super::users::{Need, required_role};
use super::{ApiError, ApiState};

/// The session cookie's name, before the node's tag ([`session_cookie`]).
pub const SESSION_COOKIE: &str = "wlnode_session";
/// The log-in form's double-submit CSRF cookie's name, before the node's tag.
pub const LOGIN_COOKIE: &str = "wlnode_login";

/// The node's tag in its cookie names: the last 12 letters and digits of its libp2p
/// PeerId. Browsers do not separate cookies by port, so two nodes on one host (the
/// demo: several on 127.0.0.1) would overwrite each other's session under one name.
fn node_tag(peer_id: &str) -> String {
    let chars: Vec<char> = peer_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    chars
        .get(chars.len().saturating_sub(12)..)
        .unwrap_or_default()
        .iter()
        .collect()
}

/// The session cookie of the node with libp2p PeerId `peer_id`:
/// `wlnode_session_<tag>`.
pub fn session_cookie(peer_id: &str) -> String {
    format!("{SESSION_COOKIE}_{}", node_tag(peer_id))
}

/// The log-in form's CSRF cookie of the node with PeerId `peer_id`.
pub fn login_cookie(peer_id: &str) -> String {
    format!("{LOGIN_COOKIE}_{}", node_tag(peer_id))
}
/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A console route and the API route (method, routed path) whose role it needs.
#[derive(Clone, Copy, Debug)]
pub struct UiRoute {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The console path as routed.
    pub path: &'static str,
    /// The API route it stands for.
    pub api: (&'static str, &'static str),
}

const fn r(method: &'static str, path: &'static str, api: (&'static str, &'static str)) -> UiRoute {
    UiRoute { method, path, api }
}

/// Every guarded console route. Log-in, the static files and the not-found page are
/// public; everything else is here.
pub const ROUTES: &[UiRoute] = &[
    r("GET", "/ui/", ("GET", "/v1/status")),
    r("GET", "/ui/events", ("GET", "/v1/events")),
    r("POST", "/ui/logout", ("GET", "/v1/users/me")),
    r("GET", "/ui/screen", ("POST", "/v1/screen")),
    r("POST", "/ui/screen", ("POST", "/v1/screen")),
    r("POST", "/ui/screen/batch", ("POST", "/v1/screen/batch")),
    r("GET", "/ui/cases", ("GET", "/v1/cases")),
    r("GET", "/ui/cases.csv", ("GET", "/v1/cases")),
    r("GET", "/ui/cases/{id}", ("GET", "/v1/cases/{id}")),
    r(
        "POST",
        "/ui/cases/{id}/decide",
        ("POST", "/v1/cases/{id}/decisions"),
    ),
    r("GET", "/ui/entries", ("GET", "/v1/entries")),
    r("GET", "/ui/entries/new", ("POST", "/v1/entries")),
    r("POST", "/ui/entries", ("POST", "/v1/entries")),
    r("GET", "/ui/entries/{id}", ("GET", "/v1/entries/{id}")),
    r("GET", "/ui/entries/{id}/amend", ("PUT", "/v1/entries/{id}")),
    r(
        "POST",
        "/ui/entries/{id}/amend",
        ("PUT", "/v1/entries/{id}"),
    ),
    r(
        "POST",
        "/ui/entries/{id}/withdraw",
        ("POST", "/v1/entries/{id}/withdraw"),
    ),
    r("GET", "/ui/drafts", ("GET", "/v1/drafts")),
    r(
        "POST",
        "/ui/drafts/{id}/approve",
        ("POST", "/v1/drafts/{id}/approve"),
    ),
    r(
        "POST",
        "/ui/drafts/{id}/reject",
        ("POST", "/v1/drafts/{id}/reject"),
    ),
    r(
        "GET",
        "/ui/import-batches/{id}",
        ("GET", "/v1/import-batches/{id}"),
    ),
    r(
        "POST",
        "/ui/import-batches/{id}/approve",
        ("POST", "/v1/import-batches/{id}/approve"),
    ),
    r(
        "POST",
        "/ui/import-batches/{id}/reject",
        ("POST", "/v1/import-batches/{id}/reject"),
    ),
    r("GET", "/ui/consultations", ("GET", "/v1/consultations")),
    r("POST", "/ui/consultations", ("POST", "/v1/consultations")),
    r(
        "GET",
        "/ui/consultations/new",
        ("POST", "/v1/consultations"),
    ),
    r(
        "GET",
        "/ui/consultations/{id}",
        ("GET", "/v1/consultations/{id}"),
    ),
    r(
        "POST",
        "/ui/consultations/{id}/respond",
        ("POST", "/v1/consultations/{id}/respond"),
    ),
    r(
        "POST",
        "/ui/consultations/{id}/decide",
        ("POST", "/v1/consultations/{id}/decide"),
    ),
    r(
        "POST",
        "/ui/consultations/{id}/supply-info",
        ("POST", "/v1/consultations/{id}/supply-info"),
    ),
    r("POST", "/ui/hits", ("POST", "/v1/hits")),
    r("GET", "/ui/flags", ("GET", "/v1/flags")),
    r("POST", "/ui/flags", ("POST", "/v1/flags")),
    r("POST", "/ui/flags/lift", ("DELETE", "/v1/flags")),
    r("GET", "/ui/policy", ("GET", "/v1/policy/explain")),
    // The rules themselves (the share and accept sections of the config) are served
    // by no API route (explain names only the rule that decided); the one API route
    // about the whole policy is the reload, so they are shown to whoever may reload
    // them (`admin`).
    r("GET", "/ui/policy/rules", ("POST", "/v1/policy/reload")),
    // The page lists the watches (`GET /v1/watches`: case readers) and the watch
    // hits, which the API gives only through the event stream: the narrower of the
    // two, so a viewer, who may list watches but not read events, sees neither here.
    r("GET", "/ui/watches", ("GET", "/v1/events")),
    // No API route reads the audit log: `/v1/audit` is not routed, so its need is the
    // table's closed default, `admin`.
    r("GET", "/ui/audit", ("GET", "/v1/audit")),
];

/// What the role table says a console route needs: the need of its API route, or
/// `admin` for a route missing from [`ROUTES`] (closed by default, as the API is).
pub fn ui_need(method: &Method, path: &str) -> Need {
    // HEAD is answered by the GET route.
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .map_or(Need::Role(Role::Admin), |r| {
            let m = Method::from_bytes(r.api.0.as_bytes()).unwrap_or(Method::POST);
            required_role(&m, r.api.1)
        })
}

/// What a guarded handler knows about its request.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The user.
    pub actor: Actor,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// The strings.
    pub t: &'static Text,
}

impl Ctx {
    /// Whether this user may use console route `method path` (to show its link or
    /// button): the same check the guard makes.
    pub fn can(&self, method: &str, path: &str) -> bool {
        let m = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
        ui_need(&m, path).met_by(&self.actor)
    }

    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// Shared state of the console: the API's, plus the sessions.
pub type ConsoleState = ApiState;

/// The console router (merged into the API router).
pub fn router(state: ApiState) -> Router<ApiState> {
    let guarded = Router::new()
        .route("/ui/", get(dashboard::dashboard))
        .route("/ui/logout", post(logout))
        .route("/ui/screen", get(screen::form).post(screen::run))
        .route("/ui/screen/batch", post(screen::batch))
        .route("/ui/cases", get(screen::log))
        .route("/ui/cases.csv", get(screen::log_csv))
        .route("/ui/cases/{id}", get(screen::case))
        .route("/ui/cases/{id}/decide", post(screen::decide))
        .route("/ui/entries", get(entries::list).post(entries::add))
        .route("/ui/entries/new", get(entries::new_form))
        .route("/ui/entries/{id}", get(entries::show))
        .route(
            "/ui/entries/{id}/amend",
            get(entries::amend_form).post(entries::amend),
        )
        .route("/ui/entries/{id}/withdraw", post(entries::withdraw))
        .route("/ui/drafts", get(entries::drafts))
        .route("/ui/drafts/{id}/approve", post(entries::approve))
        .route("/ui/drafts/{id}/reject", post(entries::reject))
        .route("/ui/import-batches/{id}", get(entries::batch))
        .route(
            "/ui/import-batches/{id}/approve",
            post(entries::approve_batch),
        )
        .route(
            "/ui/import-batches/{id}/reject",
            post(entries::reject_batch),
        )
        .route(
            "/ui/consultations",
            get(consult::list).post(consult::request),
        )
        .route("/ui/consultations/new", get(consult::new_form))
        .route("/ui/consultations/{id}", get(consult::show))
        .route("/ui/consultations/{id}/respond", post(consult::respond))
        .route("/ui/consultations/{id}/decide", post(consult::decide))
        .route(
            "/ui/consultations/{id}/supply-info",
            post(consult::supply_info),
        )
        .route("/ui/hits", post(consult::hit_report))
        .route("/ui/flags", get(flags::list).post(flags::set))
        .route("/ui/flags/lift", post(flags::lift))
        .route("/ui/policy", get(dashboard::policy))
        .route("/ui/policy/rules", get(dashboard::policy_rules))
        .route("/ui/watches", get(dashboard::watches))
        .route("/ui/audit", get(dashboard::audit))
        .route_layer(middleware::from_fn_with_state(
            state.node.config.raw.api.request_timeout.0,
            super::limits::request_timeout,
        ))
        // The event stream lasts as long as its page: no time limit (as the API's).
        .route("/ui/events", get(dashboard::events))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/login",
            get(login_form)
                .post(login)
                // An unauthenticated body that never arrives must not hold a
                // connection past the request timeout.
                .route_layer(middleware::from_fn_with_state(
                    state.node.config.raw.api.request_timeout.0,
                    super::limits::request_timeout,
                )),
        )
        .route("/ui/static/console.css", get(css))
        .route("/ui/static/console.js", get(js))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .merge(guarded)
        .layer(middleware::from_fn(security_headers))
}

/// Adds the security headers to every console response.
async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/ui/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if is_static {
            "public, max-age=3600"
        } else {
            "no-store"
        }),
    );
    resp
}

/// A cookie's value from the request.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the browser reached us over TLS (a TLS-terminating proxy in front says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, tls: bool, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if tls {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn text_of(headers: &HeaderMap) -> &'static Text {
    text::for_request(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The `csrf` field of a form body (URL-encoded or multipart).
async fn csrf_of(content_type: &str, body: &Bytes) -> Option<String> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return form_urlencoded::parse(body)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
    }
    if content_type.starts_with("multipart/form-data") {
        let req = Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.clone()))
            .ok()?;
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .ok()?;
        while let Ok(Some(field)) = mp.next_field().await {
            if field.name() == Some("csrf") {
                return field.text().await.ok();
            }
        }
    }
    None
}

/// The guard of every console route but log-in and static files: a live session whose
/// token still names an enabled user, the CSRF token on every POST, and the role the
/// route's API counterpart needs.
async fn guard(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let t = text_of(req.headers());
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(String::new, |p| p.as_str().to_owned());
    let sid = cookie(req.headers(), &session_cookie(&state.node.info.peer_id)).map(str::to_owned);
    let live = sid.as_deref().and_then(|id| state.console.get(id));
    let actor = live
        .as_ref()
        .and_then(|l| state.node.users.authenticate(&l.token));
    let (Some(live), Some(actor)) = (live, actor) else {
        if let Some(id) = &sid {
            // A disabled or rotated user's session ends here.
            state.console.close(id);
        }
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return Redirect::to("/ui/login?expired=1").into_response();
        }
        return error_page(None, t, StatusCode::FORBIDDEN, t.session_expired);
    };
    let ctx = Ctx {
        actor,
        csrf: live.csrf.clone(),
        t,
    };
    let need = ui_need(req.method(), &path);
    let req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let limit = state.node.config.raw.api.max_body_bytes;
        // Read within the request timeout (the guard runs outside the route's own).
        let read = tokio::time::timeout(
            state.node.config.raw.api.request_timeout.0,
            axum::body::to_bytes(body, limit),
        )
        .await;
        let Ok(Ok(bytes)) = read else {
            return error_page(Some(&ctx), t, StatusCode::PAYLOAD_TOO_LARGE, t.error_title);
        };
        let ct = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = csrf_of(ct, &bytes)
            .await
            .is_some_and(|c| same(&c, &live.csrf));
        if !ok {
            return error_page(Some(&ctx), t, StatusCode::FORBIDDEN, t.csrf_refused);
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    if !need.met_by(&ctx.actor) {
        let msg = format!("{} ({})", t.forbidden, need.names());
        return error_page(Some(&ctx), t, StatusCode::FORBIDDEN, &msg);
    }
    let mut req = req;
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

/// A whole page: the navigation (the links this user's roles open), the title, the
/// body.
pub fn page(ctx: Option<&Ctx>, t: &Text, title: &str, body: Markup) -> Markup {
    let nav: &[(&str, &str)] = &[
        ("/ui/", t.nav_dashboard),
        ("/ui/screen", t.nav_screen),
        ("/ui/cases", t.nav_cases),
        ("/ui/entries", t.nav_entries),
        ("/ui/drafts", t.nav_drafts),
        ("/ui/consultations", t.nav_consultations),
        ("/ui/flags", t.nav_flags),
        ("/ui/watches", t.nav_watches),
        ("/ui/policy", t.nav_policy),
        ("/ui/audit", t.nav_audit),
    ];
    html! {
        (DOCTYPE)
        html lang=(t.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t.app) }
                link rel="stylesheet" href="/ui/static/console.css";
                script src="/ui/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    span.app { (t.app) }
                    @if let Some(c) = ctx {
                        nav aria-label=(t.app) {
                            ul {
                                @for (href, label) in nav {
                                    @if c.can("GET", href) {
                                        li { a href=(href) { (label) } }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (t.signed_in_as) " " strong #user { (c.actor.name) } }
                            " · "
                            span { (t.roles) ": "
                                (c.actor.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")) }
                            form.inline method="post" action="/ui/logout" {
                                (c.csrf_field())
                                button #logout type="submit" { (t.logout) }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A rendered page as a response.
pub fn html_response(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

/// An error page with `status`.
pub fn error_page(ctx: Option<&Ctx>, t: &Text, status: StatusCode, message: &str) -> Response {
    let body = html! {
        p.error role="alert" #error { (message) }
        p { a href="/ui/" { (t.back) } }
    };
    (status, html_response(page(ctx, t, t.error_title, body))).into_response()
}

impl ApiError {
    /// This error as a console page (its status, its message).
    pub fn page(self, ctx: &Ctx) -> Response {
        let msg = match &self.field {
            Some(f) => format!("{} ({f})", self.message),
            None => self.message.clone(),
        };
        error_page(Some(ctx), ctx.t, self.status, &msg)
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    let t = text_of(&headers);
    error_page(None, t, StatusCode::NOT_FOUND, t.not_found)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("static/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("static/console.js"),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    expired: Option<String>,
    out: Option<String>,
}

fn login_page(
    t: &Text,
    csrf: &str,
    notice: Option<&str>,
    tls: bool,
    login_cookie_name: &str,
) -> Response {
    let body = html! {
        @if let Some(n) = notice {
            p.notice role="status" #notice { (n) }
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(csrf);
            p {
                label for="token" { (t.login_token) }
                input #token type="password" name="token" autocomplete="off" required aria-describedby="token-help";
                small #token-help { (t.login_token_help) }
            }
            p { button #login type="submit" { (t.login_submit) } }
        }
    };
    let mut resp = html_response(page(None, t, t.login_title, body));
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(login_cookie_name, csrf, tls, Some(3600)),
    );
    resp
}

async fn login_form(
    State(state): State<ApiState>,
    headers: HeaderMap,
    q: axum::extract::Query<LoginQuery>,
) -> Response {
    let t = text_of(&headers);
    let Some(csrf) = session::random_token() else {
        return error_page(None, t, StatusCode::INTERNAL_SERVER_ERROR, t.error_title);
    };
    let notice = if q.out.is_some() {
        Some(t.logged_out)
    } else if q.expired.is_some() {
        Some(t.session_expired)
    } else {
        None
    };
    login_page(
        t,
        &csrf,
        notice,
        over_tls(&headers),
        &login_cookie(&state.node.info.peer_id),
    )
}

async fn login(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    let t = text_of(&headers);
    let tls = over_tls(&headers);
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let (session_name, login_name) = (
        session_cookie(&state.node.info.peer_id),
        login_cookie(&state.node.info.peer_id),
    );
    let ok = match (field("csrf"), cookie(&headers, &login_name)) {
        (Some(a), Some(b)) => !a.is_empty() && same(a, b),
        _ => false,
    };
    if !ok {
        return error_page(None, t, StatusCode::FORBIDDEN, t.csrf_refused);
    }
    let Some(fresh) = session::random_token() else {
        return error_page(None, t, StatusCode::INTERNAL_SERVER_ERROR, t.error_title);
    };
    let token = field("token").unwrap_or("").trim();
    let actor = if token.is_empty() {
        None
    } else {
        state.node.users.authenticate(token)
    };
    let Some(actor) = actor else {
        // Past the limit, failures answer 429. A valid token is never refused: tokens
        // are 256-bit, so the limit guards nothing a guesser could reach, and refusing
        // good tokens let anyone who can reach the page lock every officer out.
        if !state.console.login_allowed() {
            let mut r = login_page(t, &fresh, Some(t.login_rate_limited), tls, &login_name);
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return r;
        }
        state.console.login_failed();
        let mut r = login_page(t, &fresh, Some(t.login_failed), tls, &login_name);
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    };
    // Logging in again from this browser ends the session it held: it is replaced,
    // not left alive until it idles out.
    if let Some(old) = cookie(&headers, &session_name) {
        state.console.close(old);
    }
    let Some((sid, _csrf)) = state.console.open(token, &actor.id) else {
        return error_page(None, t, StatusCode::INTERNAL_SERVER_ERROR, t.error_title);
    };
    let mut resp = Redirect::to("/ui/").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&session_name, &sid, tls, None),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&login_name, "", tls, Some(0)),
    );
    resp
}

async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let name = session_cookie(&state.node.info.peer_id);
    if let Some(id) = cookie(&headers, &name) {
        state.console.close(id);
    }
    let mut resp = Redirect::to("/ui/login?out=1").into_response();
    *resp.status_mut() = StatusCode::SEE_OTHER;
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&name, "", over_tls(&headers), Some(0)),
    );
    resp
}

/// A 303 to `to` (after a POST). A `to` that is no valid header value (it never is
/// from the console's own pages) goes to the start page instead of panicking.
pub fn see_other(to: &str) -> Response {
    match HeaderValue::try_from(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => {
            tracing::warn!("console redirect to an invalid location refused");
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/")]).into_response()
        }
    }
}

/// Reads a handler's JSON answer (the console calls the API's handlers in-process).
pub async fn json_of(resp: Response) -> (StatusCode, serde_json::Value) {
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The pairs of a URL-encoded form, without the CSRF field and without empty values.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .into_owned()
        .filter(|(k, v)| k != "csrf" && !v.trim().is_empty())
        .collect()
}

/// A time as people read it: `2026-12-06 21:09 UTC` (the minute; pages that need
/// more carry the full RFC 3339 time in a `datetime` attribute).
pub fn when(t: wlnode_crypto::time::Timestamp) -> String {
    let s = t.to_rfc3339();
    match (s.get(..10), s.get(11..16)) {
        (Some(d), Some(hm)) => format!("{d} {hm} UTC"),
        _ => s,
    }
}

/// How far `at` is from `now`, as people say it: "just now", "5 min ago", "in 3 h"
/// (the largest unit, rounded down; words from the catalogue).
pub fn relative(
    t: &Text,
    at: wlnode_crypto::time::Timestamp,
    now: wlnode_crypto::time::Timestamp,
) -> String {
    let (past, ms) = if at.0 <= now.0 {
        (true, now.0 - at.0)
    } else {
        (false, at.0 - now.0)
    };
    let s = ms / 1000;
    if s < 10 {
        return t.time_just_now.to_owned();
    }
    let amount = match s {
        0..60 => format!("{s} {}", t.unit_s),
        60..3600 => format!("{} {}", s / 60, t.unit_min),
        3600..86_400 => format!("{} {}", s / 3600, t.unit_h),
        _ => format!("{} {}", s / 86_400, t.unit_d),
    };
    if past {
        format!("{amount} {}", t.time_ago)
    } else {
        format!("{} {amount}", t.time_in)
    }
}

/// A time on a page: relative to now ([`relative`]), with the exact UTC time in the
/// `title` (shown on hover) and the RFC 3339 time in `datetime`.
pub fn time_el(t: &Text, at: wlnode_crypto::time::Timestamp) -> Markup {
    let now = wlnode_crypto::time::Timestamp::now();
    html! {
        time datetime=(at.to_rfc3339()) title=(exact(at)) { (relative(t, at, now)) }
    }
}

/// A time to the second, in UTC: `2026-12-06 21:09:03 UTC`.
pub fn exact(t: wlnode_crypto::time::Timestamp) -> String {
    let s = t.to_rfc3339();
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(hms)) => format!("{d} {hms} UTC"),
        _ => s,
    }
}

/// A JSON object's member, or null.
pub fn g<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    static NULL: serde_json::Value = serde_json::Value::Null;
    v.get(key).unwrap_or(&NULL)
}

/// One field of a form.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_route_is_gated_by_its_api_route() {
        for r in ROUTES {
            let api = Method::from_bytes(r.api.0.as_bytes()).unwrap();
            let m = Method::from_bytes(r.method.as_bytes()).unwrap();
            assert_eq!(ui_need(&m, r.path), required_role(&api, r.api.1), "{r:?}");
        }
        // Not in the table: closed.
        assert_eq!(ui_need(&Method::GET, "/ui/new"), Need::Role(Role::Admin));
        assert_eq!(
            ui_need(&Method::POST, "/ui/screen"),
            Need::Role(Role::Screener)
        );
        assert_eq!(
            ui_need(&Method::POST, "/ui/drafts/{id}/approve"),
            Need::Role(Role::Approver)
        );
    }

    #[test]
    fn cookies_are_httponly_strict_and_secure_behind_tls() {
        let c = set_cookie(SESSION_COOKIE, "abc", false, None);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        let c = set_cookie(SESSION_COOKIE, "abc", true, None);
        assert!(c.to_str().unwrap().ends_with("; Secure"));
        let mut h = HeaderMap::new();
        assert!(!over_tls(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(over_tls(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wlnode_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
    }

    /// Review of issue 23: cookies ignore ports, so two nodes on one host shared one
    /// session cookie name and logging in to one logged out of the other. Each node's
    /// names carry its own tag.
    #[test]
    fn two_nodes_on_one_host_use_different_cookie_names() {
        let a = session_cookie("12D3KooWAbcdefghijkLMNOPQRSTUVWxyz0123456789aaaa");
        let b = session_cookie("12D3KooWAbcdefghijkLMNOPQRSTUVWxyz0123456789bbbb");
        assert_ne!(a, b);
        assert_eq!(a, "wlnode_session_23456789aaaa");
        assert_ne!(login_cookie("x1"), session_cookie("x1"));
        assert_eq!(session_cookie("ab"), "wlnode_session_ab");
    }

    #[test]
    fn times_read_relative_to_now_with_the_exact_utc_time_apart() {
        use wlnode_crypto::time::Timestamp;
        let t = &text::EN;
        let now = Timestamp(1_765_000_000_000);
        let ago = |ms: u64| relative(t, Timestamp(now.0 - ms), now);
        assert_eq!(ago(3_000), "just now");
        assert_eq!(ago(42_000), "42 s ago");
        assert_eq!(ago(5 * 60_000 + 59_000), "5 min ago");
        assert_eq!(ago(3 * 3_600_000), "3 h ago");
        assert_eq!(ago(2 * 86_400_000 + 5), "2 d ago");
        assert_eq!(relative(t, Timestamp(now.0 + 90 * 60_000), now), "in 1 h");
        assert_eq!(exact(now), "2025-12-06 05:46:40 UTC");
        let m = time_el(t, now).into_string();
        assert!(m.contains("title=\"2025-12-06 05:46:40 UTC\""), "{m}");
        assert!(m.contains("datetime=\"2025-12-06T05:46:40.000Z\""), "{m}");
    }

    /// The console's invariants, checked on its source: no inline script, style or
    /// event handler in any template, and every form posts a CSRF field.
    #[test]
    fn templates_have_no_inline_script_or_style_and_forms_carry_csrf() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("screen.rs"),
            include_str!("entries.rs"),
            include_str!("dashboard.rs"),
            include_str!("consult.rs"),
            include_str!("auditor.rs"),
            include_str!("flags.rs"),
        ];
        for src in sources {
            // Built from pieces so this test's own text does not match.
            for bad in [
                ["script", " {"].concat(),
                [" style", "="].concat(),
                [" onclick", "="].concat(),
                [" onsubmit", "="].concat(),
                ["javascript", ":"].concat(),
            ] {
                assert!(!src.contains(&bad), "inline {bad:?} in a console template");
            }
            let forms = src.matches("form method=\"post\"").count()
                + src.matches("form.inline method=\"post\"").count();
            let csrf = src.matches("(ctx.csrf_field())").count()
                + src.matches("(c.csrf_field())").count()
                + src.matches("name=\"csrf\"").count();
            assert!(csrf >= forms, "a POST form without its CSRF field");
        }
    }
}
