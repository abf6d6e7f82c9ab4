//! Sources that refresh (issue 24 item 3), end to end: a real node on 127.0.0.1 with
//! `[[source]]` blocks pointing at a real HTTP server (axum, port 0) in the test,
//! refreshed on schedule and through `POST /v1/sources/{name}/run` (via the
//! client). Covers a changed list (amends and withdrawals), an unchanged one (304 to
//! the conditional request, nothing re-imported, validators kept across a restart),
//! truncated files (a Content-Length lie, a file cut mid-row, a file that lost most
//! rows: nothing withdrawn, failure recorded), a SHA-256 pin mismatch, a server that
//! is down (retried, audited, counted), and config errors. Waits are polls of the
//! node's state with generous timeouts; no fixed sleep is an assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use futures::StreamExt;
use serde_json::Value;
use wlnode_audit::event::{Event, EventKind};
use wlnode_crypto::model::{AgencyCode, Status};
use wlnode_devtools::scaffold;
use wlnode_tests::{Cluster, FAST_SYNC, agency, counter, wait_for};
use wlnode_types::EntryKey;

const WAIT: Duration = Duration::from_secs(60);

/// What the list server serves and what it saw.
#[derive(Default)]
struct Served {
    body: Vec<u8>,
    etag: String,
    /// Promise this many bytes more than are sent (a Content-Length lie).
    lie: bool,
    /// `(If-None-Match, If-Modified-Since)` of every request.
    seen: Vec<(Option<String>, Option<String>)>,
}

type Shared = Arc<Mutex<Served>>;

const LAST_MODIFIED: &str = "Sun, 06 Dec 2026 10:00:00 GMT";

async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let h = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut s = s.lock().unwrap();
    let (inm, ims) = (h(header::IF_NONE_MATCH), h(header::IF_MODIFIED_SINCE));
    s.seen.push((inm.clone(), ims));
    if inm.as_deref() == Some(s.etag.as_str()) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &s.etag)
            .body(Body::empty())
            .unwrap();
    }
    let resp = Response::builder()
        .header(header::ETAG, &s.etag)
        .header(header::LAST_MODIFIED, LAST_MODIFIED);
    if s.lie {
        // A body of unknown length under a Content-Length header 100 bytes longer:
        // hyper sends what there is, and when the stream ends short it closes the
        // connection. (The pause lets the head and the first bytes go out first.)
        let bytes = s.body.clone();
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(bytes) }).chain(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Err(std::io::Error::other("the list server stops short"))
            }),
        );
        return resp
            .header(header::CONTENT_LENGTH, s.body.len() + 100)
            .body(Body::from_stream(body))
            .unwrap();
    }
    resp.body(Body::from(s.body.clone())).unwrap()
}

/// Serves `/list.csv` from `state` on `addr` (port 0: any).
async fn serve(addr: SocketAddr, state: Shared) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let app = Router::new()
        .route("/list.csv", get(list))
        .route("/pinned.csv", get(list))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    bound
}

/// A CSV list with rows `ids`, each named `"{name_prefix} {id}"`.
fn csv(ids: impl IntoIterator<Item = u32>, renamed: &[u32]) -> Vec<u8> {
    let mut t = String::from("source_id,kind,name,country,reason\n");
    for i in ids {
        let name = if renamed.contains(&i) {
            format!("Renamed Trading {i}")
        } else {
            format!("Acme Trading {i}")
        };
        t.push_str(&format!("S{i},organization,{name},AE,denial\n"));
    }
    t.into_bytes()
}

fn source_block(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[[source]]\nname = \"{name}\"\nurl = \"{url}\"\nallow_http = true\nformat = \"csv\"\nevery = \"1h\"\nretry = \"1s\"\nwithdraw_missing = true\nsource_list = \"{name}\"\n{extra}\n"
    )
}

fn one_node(sources: &str) -> Cluster {
    let specs = [scaffold::AgencySpec::member(&agency(0), &["eu"]).unwrap()];
    Cluster::new(
        &specs,
        &[],
        vec![format!("{}{}{sources}", scaffold::OPEN_POLICY, FAST_SYNC)],
    )
}

fn client(c: &Cluster) -> wlnode_client::Client {
    let cfg = wlnode_config::Config::load(&c.fed.nodes[0].config).unwrap();
    wlnode_client::Client::from_config(&cfg).unwrap()
}

async fn run(c: &Cluster, name: &str) -> Value {
    client(c).source_run(name).await.unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v:#}"))
}

async fn status_of(c: &Cluster, name: &str) -> Value {
    let all = client(c).sources().await.unwrap();
    all["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

/// The state of the own entry imported from `list` with source id `id`.
async fn entry(c: &Cluster, list: &str, id: &str) -> Option<(u64, Status)> {
    let me = AgencyCode::new(agency(0)).unwrap();
    let key = EntryKey {
        entry_id: wlnode_import::entry_id_for(&me, list, id),
        origin: me,
    };
    c.node(0)
        .services
        .store
        .entry(key)
        .await
        .unwrap()
        .map(|s| (s.version, s.status))
}

async fn active(c: &Cluster, list: &str, ids: impl IntoIterator<Item = u32>) -> usize {
    let mut k = 0;
    for i in ids {
        if entry(c, list, &format!("S{i}")).await.map(|e| e.1) == Some(Status::Active) {
            k += 1;
        }
    }
    k
}

/// Every `source_refresh` event of the node's audit log.
async fn refresh_events(c: &Cluster) -> Vec<(String, String, Option<String>)> {
    let store = &c.node(0).services.store;
    let size = store.counts().await.unwrap().audit_events;
    store
        .call(move |s| s.audit_events(0, size))
        .await
        .unwrap()
        .iter()
        .filter_map(|b| match Event::decode(b).unwrap().kind {
            EventKind::SourceRefresh {
                source,
                outcome,
                error_class,
                ..
            } => Some((source, outcome, error_class)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_list_amends_and_withdraws_and_an_unchanged_one_is_a_304_even_after_a_restart() {
    let state: Shared = Arc::default();
    {
        let mut s = state.lock().unwrap();
        s.body = csv(1..=10, &[]);
        s.etag = "\"v1\"".into();
    }
    let addr = serve(SocketAddr::from(([127, 0, 0, 1], 0)), state.clone()).await;
    let mut c = one_node(&source_block(
        "list",
        &format!("http://{addr}/list.csv"),
        "",
    ));
    c.start(0).await;

    // The first refresh runs at start, on its own.
    wait_for(WAIT, "the first refresh", || async {
        status_of(&c, "list").await["last_success"].is_string()
    })
    .await;
    assert_eq!(active(&c, "list", 1..=10).await, 10);
    let first = &status_of(&c, "list").await["last_report"];
    assert_eq!(first["outcome"], "updated", "{first:#}");
    assert_eq!(n(first, "added"), 10);

    // Unchanged: the node asks conditionally, the server says 304, nothing is read.
    let r = run(&c, "list").await;
    assert_eq!(r["outcome"], "unchanged", "{r:#}");
    assert_eq!(r["not_modified"], true);
    assert_eq!(n(&r, "rows"), 0);
    let seen = state.lock().unwrap().seen.clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], (None, None), "the first request is unconditional");
    assert_eq!(
        seen[1],
        (Some("\"v1\"".into()), Some(LAST_MODIFIED.into())),
        "the second carries If-None-Match and If-Modified-Since"
    );
    let m = c.metrics(0);
    assert_eq!(
        counter(&m, "wlnode_source_entries_total", "result=\"added\""),
        10.0
    );
    assert_eq!(
        counter(&m, "wlnode_source_entries_total", "result=\"amended\""),
        0.0
    );
    assert_eq!(entry(&c, "list", "S1").await, Some((1, Status::Active)));

    // Changed: S1 renamed, S10 gone, S11 new.
    {
        let mut s = state.lock().unwrap();
        s.body = csv((1..=9).chain([11]), &[1]);
        s.etag = "\"v2\"".into();
    }
    let r = run(&c, "list").await;
    assert_eq!(r["outcome"], "updated", "{r:#}");
    assert_eq!(
        (
            n(&r, "added"),
            n(&r, "amended"),
            n(&r, "unchanged"),
            n(&r, "withdrawn")
        ),
        (1, 1, 8, 1),
        "{r:#}"
    );
    assert_eq!(entry(&c, "list", "S1").await, Some((2, Status::Active)));
    assert_eq!(entry(&c, "list", "S10").await, Some((2, Status::Withdrawn)));
    assert_eq!(entry(&c, "list", "S11").await, Some((1, Status::Active)));
    let events = refresh_events(&c).await;
    assert_eq!(
        events,
        [
            ("list".into(), "updated".into(), None),
            ("list".into(), "updated".into(), None)
        ],
        "one event per refresh that wrote, none for the 304"
    );

    // The validators survive a restart: the next request is conditional on v2, and
    // the restarted node does not refresh at once (its last success is recent).
    c.stop(0).await;
    c.start(0).await;
    let st = status_of(&c, "list").await;
    assert_eq!(st["last_outcome"], "updated", "{st:#}");
    assert!(st["next_run"].is_string());
    assert_eq!(state.lock().unwrap().seen.len(), 3);
    let r = run(&c, "list").await;
    assert_eq!(r["not_modified"], true, "{r:#}");
    assert_eq!(
        state.lock().unwrap().seen.last().unwrap().0.as_deref(),
        Some("\"v2\"")
    );
    assert_eq!(active(&c, "list", (1..=9).chain([11])).await, 10);

    // The routes are in the OpenAPI document, and unknown sources are 404.
    let doc: Value = client(&c).get_json("/v1/openapi.json").await.unwrap();
    assert!(doc["paths"]["/v1/sources"]["get"].is_object());
    assert!(doc["paths"]["/v1/sources/{name}/run"]["post"].is_object());
    match client(&c).source_run("nope").await {
        Err(wlnode_client::ClientError::Api { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    c.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_files_and_a_pin_mismatch_withdraw_nothing_and_are_recorded_as_failures() {
    let state: Shared = Arc::default();
    {
        let mut s = state.lock().unwrap();
        s.body = csv(1..=10, &[]);
        s.etag = "\"v1\"".into();
    }
    let addr = serve(SocketAddr::from(([127, 0, 0, 1], 0)), state.clone()).await;
    // The pinned source has a server of its own (it retries in the background).
    let pinned: Shared = Arc::default();
    {
        let mut s = pinned.lock().unwrap();
        s.body = csv(1..=3, &[]);
        s.etag = "\"p1\"".into();
    }
    let pinned_addr = serve(SocketAddr::from(([127, 0, 0, 1], 0)), pinned).await;
    let wrong_pin = hex::encode(wlnode_crypto::sha256::digest(b"another file"));
    let sources = format!(
        "{}{}",
        source_block("list", &format!("http://{addr}/list.csv"), ""),
        source_block(
            "pinned",
            &format!("http://{pinned_addr}/pinned.csv"),
            &format!("sha256 = \"{wrong_pin}\"")
        )
    );
    let mut c = one_node(&sources);
    c.start(0).await;
    wait_for(WAIT, "both first refreshes", || async {
        let a = status_of(&c, "list").await;
        let b = status_of(&c, "pinned").await;
        a["last_outcome"].is_string() && b["last_outcome"].is_string()
    })
    .await;
    assert_eq!(active(&c, "list", 1..=10).await, 10);

    // The pin does not match: a failure, and nothing of that file imported.
    let p = status_of(&c, "pinned").await;
    assert_eq!(p["last_outcome"], "failed", "{p:#}");
    assert_eq!(p["last_error_class"], "sha256_mismatch");
    assert_eq!(n(&p["last_report"], "added"), 0);
    assert_eq!(active(&c, "pinned", 1..=3).await, 0);

    // 1. A Content-Length lie: the body is 100 bytes short of the promise.
    {
        let mut s = state.lock().unwrap();
        s.body = csv(1..=5, &[2]);
        s.etag = "\"v2\"".into();
        s.lie = true;
    }
    let r = run(&c, "list").await;
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert_eq!(r["error_class"], "truncated", "{r:#}");
    assert_eq!(n(&r, "amended") + n(&r, "withdrawn"), 0);
    assert_eq!(active(&c, "list", 1..=10).await, 10);
    assert_eq!(entry(&c, "list", "S2").await, Some((1, Status::Active)));

    // 2. A file cut in the middle of a row (an honest length): the rows before it
    //    are imported, nothing is withdrawn.
    let whole = csv(1..=10, &[2]);
    let text = String::from_utf8(whole).unwrap();
    let cut = text.find("S7,organization,Acme").unwrap() + "S7,organization,Acme".len();
    {
        let mut s = state.lock().unwrap();
        s.body = text.as_bytes()[..cut].to_vec();
        s.etag = "\"v3\"".into();
        s.lie = false;
    }
    let r = run(&c, "list").await;
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert_eq!(r["error_class"], "parse_errors", "{r:#}");
    assert_eq!((n(&r, "amended"), n(&r, "withdrawn")), (1, 0), "{r:#}");
    assert_eq!(entry(&c, "list", "S2").await, Some((2, Status::Active)));
    assert_eq!(active(&c, "list", 1..=10).await, 10);

    // 3. A valid file that lost 7 of 10 rows: more than max_withdraw_fraction (0.1)
    //    would go, so nothing is withdrawn and the guard reports it.
    {
        let mut s = state.lock().unwrap();
        s.body = csv(1..=3, &[2]);
        s.etag = "\"v4\"".into();
    }
    let r = run(&c, "list").await;
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert_eq!(r["error_class"], "withdraw_guard", "{r:#}");
    assert_eq!((n(&r, "withdrawn"), n(&r, "withdraw_refused")), (0, 7));
    assert_eq!(active(&c, "list", 1..=10).await, 10);

    // A failed refresh keeps the validators of the last complete import, so the
    // same file is downloaded again (not "not modified") and refused again.
    let r = run(&c, "list").await;
    assert_eq!(r["not_modified"], false);
    assert_eq!(r["error_class"], "withdraw_guard", "{r:#}");
    assert_eq!(
        state.lock().unwrap().seen.last().unwrap().0.as_deref(),
        Some("\"v1\"")
    );

    // Every failure is counted by class and audited, at warn level in the log.
    let m = c.metrics(0);
    for (class, times) in [
        ("truncated", 1.0),
        ("parse_errors", 1.0),
        ("withdraw_guard", 2.0),
    ] {
        assert_eq!(
            counter(
                &m,
                "wlnode_source_failures_total",
                &format!("source=\"list\",class=\"{class}\"")
            ),
            times,
            "{class}: {m}"
        );
    }
    let failed: Vec<_> = refresh_events(&c)
        .await
        .into_iter()
        .filter(|e| e.1 == "failed")
        .map(|e| (e.0, e.2.unwrap_or_default()))
        .collect();
    for class in [
        "sha256_mismatch",
        "truncated",
        "parse_errors",
        "withdraw_guard",
    ] {
        assert!(
            failed.iter().any(|(_, c)| c == class),
            "{class} in {failed:?}"
        );
    }
    c.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_retried_with_backoff_audited_counted_and_then_imported() {
    // A loopback port with nothing listening (refused connections).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let mut c = one_node(&source_block(
        "list",
        &format!("http://{addr}/list.csv"),
        "",
    ));
    c.start(0).await;

    // The node counts a failure, then audits it (a flushed write), then publishes
    // the status: all three are waited for, not read once after the count (s38
    // flake hunt).
    wait_for(WAIT, "a failed refresh and a retry", || async {
        counter(
            &c.metrics(0),
            "wlnode_source_failures_total",
            "class=\"connect\"",
        ) >= 2.0
            && status_of(&c, "list").await["consecutive_failures"]
                .as_u64()
                .is_some_and(|f| f >= 2)
            && refresh_events(&c).await.len() >= 2
    })
    .await;
    let st = status_of(&c, "list").await;
    assert_eq!(st["last_outcome"], "failed", "{st:#}");
    assert_eq!(st["last_error_class"], "connect");
    assert!(n(&st, "consecutive_failures") >= 2, "{st:#}");
    assert!(st.get("last_success").is_none(), "{st:#}");
    let events = refresh_events(&c).await;
    assert!(
        events.len() >= 2
            && events
                .iter()
                .all(|e| e.1 == "failed" && e.2.as_deref() == Some("connect")),
        "{events:?}"
    );
    let m = c.metrics(0);
    assert!(
        m.contains("wlnode_source_last_attempt_seconds{source=\"list\"}"),
        "{m}"
    );
    assert!(
        !m.contains("wlnode_source_last_success_seconds{source=\"list\"}"),
        "{m}"
    );

    // The server comes up on that port: a later retry imports the list.
    let state: Shared = Arc::default();
    {
        let mut s = state.lock().unwrap();
        s.body = csv(1..=4, &[]);
        s.etag = "\"v1\"".into();
    }
    serve(addr, state.clone()).await;
    wait_for(WAIT, "a retry after the server came up", || async {
        status_of(&c, "list").await["last_success"].is_string()
    })
    .await;
    assert_eq!(active(&c, "list", 1..=4).await, 4);
    let st = status_of(&c, "list").await;
    assert_eq!(n(&st, "consecutive_failures"), 0, "{st:#}");
    assert!(
        c.metrics(0)
            .contains("wlnode_source_last_success_seconds{source=\"list\"}")
    );
    c.stop(0).await;
}

/// Serves `body` at `/list.csv` on a loopback port of its own; returns the URL and
/// the state to change what is served.
async fn list_server(body: Vec<u8>) -> (String, Shared) {
    let state: Shared = Arc::default();
    {
        let mut s = state.lock().unwrap();
        s.body = body;
        s.etag = "\"v1\"".into();
    }
    let addr = serve(SocketAddr::from(([127, 0, 0, 1], 0)), state.clone()).await;
    (format!("http://{addr}/list.csv"), state)
}

fn serve_next(state: &Shared, body: Vec<u8>) {
    let mut s = state.lock().unwrap();
    s.body = body;
    s.etag = format!("\"v{}\"", s.seen.len() + 2);
}

/// Finding 1: the guard's share is of the entries active *before* the refresh, so a
/// hostile file of 101 new rows and none of the 100 real ones withdraws nothing
/// (before the fix the new rows were counted, and all 100 were withdrawn even with
/// max_withdraw_fraction = 0.5); and a list shrunk a little per refresh stops at
/// the high-water mark's floor instead of ratcheting away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rows_do_not_dilute_the_guard_and_small_drops_do_not_ratchet_the_list_away() {
    let (hostile_url, hostile) = list_server(csv(1..=100, &[])).await;
    let (ratchet_url, ratchet) = list_server(csv(1..=100, &[])).await;
    let (half_url, half) = list_server(csv(1..=100, &[])).await;
    let sources = format!(
        "{}{}{}",
        source_block("hostile", &hostile_url, "max_withdraw_fraction = 0.5"),
        source_block("ratchet", &ratchet_url, "max_withdraw_fraction = 0.1"),
        source_block("half", &half_url, "max_withdraw_fraction = 0.5"),
    );
    let mut c = one_node(&sources);
    c.start(0).await;
    wait_for(WAIT, "the first refreshes", || async {
        let mut ok = true;
        for s in ["hostile", "ratchet", "half"] {
            ok &= status_of(&c, s).await["last_success"].is_string();
        }
        ok
    })
    .await;
    for s in ["hostile", "ratchet", "half"] {
        assert_eq!(active(&c, s, 1..=100).await, 100, "{s}");
    }

    // 101 new rows, none of the real 100.
    serve_next(&hostile, csv(1001..=1101, &[]));
    let r = run(&c, "hostile").await;
    assert_eq!(r["outcome"], "failed", "{r:#}");
    assert_eq!(r["error_class"], "withdraw_guard", "{r:#}");
    assert_eq!((n(&r, "withdrawn"), n(&r, "withdraw_refused")), (0, 100));
    assert_eq!(active(&c, "hostile", 1..=100).await, 100);

    // 9 % at a time under a fraction of 0.1: the first drop is within the guard,
    // the second would leave 83 of a high-water mark of 100 (< 90): refused.
    serve_next(&ratchet, csv(1..=91, &[]));
    let r = run(&c, "ratchet").await;
    assert_eq!(
        (r["outcome"].as_str(), n(&r, "withdrawn")),
        (Some("updated"), 9),
        "{r:#}"
    );
    serve_next(&ratchet, csv(1..=83, &[]));
    let r = run(&c, "ratchet").await;
    assert_eq!(r["error_class"], "withdraw_guard", "{r:#}");
    assert_eq!(n(&r, "withdrawn"), 0, "{r:#}");
    assert_eq!(active(&c, "ratchet", 1..=100).await, 91);

    // 49 % at a time under a fraction of 0.5: the first drop is what the operator
    // allowed; every further one is refused, however often it is tried.
    serve_next(&half, csv(1..=51, &[]));
    let r = run(&c, "half").await;
    assert_eq!(n(&r, "withdrawn"), 49, "{r:#}");
    for _ in 0..3 {
        let left = active(&c, "half", 1..=100).await as u32;
        serve_next(&half, csv(1..=left.div_ceil(2) + 1, &[]));
        let r = run(&c, "half").await;
        assert_eq!(r["outcome"], "failed", "{r:#}");
        assert_eq!(r["error_class"], "withdraw_guard", "{r:#}");
        assert_eq!(n(&r, "withdrawn"), 0, "{r:#}");
    }
    assert_eq!(active(&c, "half", 1..=100).await, 51);

    // Under the default fraction (0.1) a 49 % drop withdraws nothing at once.
    let cfg = wlnode_config::Config::load(&c.fed.nodes[0].config).unwrap();
    let f = *cfg.raw.source[0].max_withdraw_fraction.get_ref();
    assert!((f - 0.5).abs() < f64::EPSILON);
    assert!((wlnode_config::sources::DEFAULT_MAX_WITHDRAW_FRACTION - 0.1).abs() < f64::EPSILON);

    // The high-water mark is kept in the source state.
    let state: Value =
        serde_json::from_slice(&std::fs::read(cfg.raw.data_dir.join("sources.json")).unwrap())
            .unwrap();
    assert_eq!(state["sources"]["ratchet"]["high_water"], 100, "{state:#}");
    c.stop(0).await;
}

/// Finding 2: an FtM file cannot choose the list it writes to. A hostile feed whose
/// entities say `datasets: ["list"]` (another source's list) lands in the ftm
/// source's own list; the other list's entries are neither amended nor withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ftm_file_cannot_choose_the_list_it_amends_or_withdraws() {
    let (list_url, _list) = list_server(csv(1..=10, &[])).await;
    let ftm: String = (1..=2)
        .map(|i| {
            format!(
                "{{\"id\":\"S{i}\",\"schema\":\"Company\",\"properties\":{{\"name\":[\"Hostile {i}\"],\"country\":[\"ae\"]}},\"datasets\":[\"list\"]}}\n"
            )
        })
        .collect();
    let digest = hex::encode(wlnode_crypto::sha256::digest(ftm.as_bytes()));
    let (feed_url, _feed) = list_server(ftm.into_bytes()).await;
    let sources = format!(
        "{}\n[[source]]\nname = \"feed\"\nurl = \"{feed_url}\"\nallow_http = true\nformat = \"ftm\"\nevery = \"1h\"\nretry = \"1s\"\nwithdraw_missing = true\nmax_withdraw_fraction = 1.0\nreason = \"denial\"\n",
        source_block("list", &list_url, ""),
    );
    let mut c = one_node(&sources);
    c.start(0).await;
    wait_for(WAIT, "the first refreshes", || async {
        status_of(&c, "list").await["last_success"].is_string()
            && status_of(&c, "feed").await["last_success"].is_string()
    })
    .await;
    // Run the feed again after the list is in: still nothing of "list" changes.
    let r = run(&c, "feed").await;
    assert_ne!(r["outcome"], "failed", "{r:#}");
    assert_eq!(active(&c, "list", 1..=10).await, 10);
    assert_eq!(entry(&c, "list", "S1").await, Some((1, Status::Active)));
    // The feed's rows are in the feed's fixed list.
    assert_eq!(active(&c, "ftm", 1..=2).await, 2);
    // Finding 12: the audit event names where the file came from and its digest.
    let store = &c.node(0).services.store;
    let size = store.counts().await.unwrap().audit_events;
    let feed: Vec<_> = store
        .call(move |s| s.audit_events(0, size))
        .await
        .unwrap()
        .iter()
        .filter_map(|b| match Event::decode(b).unwrap().kind {
            EventKind::SourceRefresh {
                source,
                origin,
                sha256,
                ..
            } if source == "feed" => Some((origin, sha256)),
            _ => None,
        })
        .collect();
    assert_eq!(feed, [(Some(feed_url.clone()), Some(digest))], "{feed:?}");
    c.stop(0).await;
}

#[test]
fn source_config_errors_name_the_file_the_source_and_the_key() {
    let c = one_node("");
    c.write_config(0);
    let path = &c.fed.nodes[0].config;
    let base = std::fs::read_to_string(path).unwrap();
    let cases = [
        (
            source_block("un", "https://x.example/un.xml", "every = \"10s\"")
                .replace("every = \"1h\"\n", ""),
            "source[0].every",
        ),
        (
            source_block("un", "https://x.example/un.xml", "mirror = true"),
            "source[0].mirror",
        ),
        (
            format!(
                "{}{}",
                source_block("un", "https://x.example/a.csv", ""),
                source_block("un", "https://x.example/b.csv", "")
            ),
            "source[1].name",
        ),
        (
            source_block("un", "https://x.example/a.csv", "path = \"a.csv\""),
            "source[0].path",
        ),
    ];
    for (block, key) in cases {
        std::fs::write(path, format!("{base}{block}")).unwrap();
        let e = wlnode_config::Config::load(path).unwrap_err();
        assert_eq!(e.file, *path, "{e}");
        assert_eq!(e.key, key, "{e}");
        assert!(e.line > 0, "{e}");
        assert!(e.message.contains("source \"un\""), "{e}");
    }
}
