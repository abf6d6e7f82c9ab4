//! Watches and push notifications (issue 22 item 4) on real nodes over loopback:
//! - a watch at B fires when a matching record written at A arrives by replication:
//!   the `watch_hit` reaches an SSE client of `GET /v1/events` and a real HTTP
//!   receiver that checks the HMAC signature; a non-matching record raises nothing;
//!   the latency from A's write to B's event is printed (not asserted);
//! - a receiver that is down for a while gets the event once, after retries;
//! - drafts, failed sources and dropped peers are announced, and a webhook gets only
//!   the types it names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use wlnode_client::Client;
use wlnode_config::Config;
use wlnode_tests::{Cluster, counter, draft, wait_for};

const T: Duration = Duration::from_secs(120);
const SECRET: &str = "test-secret-0123456789";

/// What the receiver saw: the body of each POST whose signature checked out.
type Seen = mpsc::UnboundedSender<(Instant, Value)>;

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

async fn hook(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let sig = headers
        .get("x-wlnode-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if sig != format!("sha256={}", hmac_hex(SECRET, &body)) {
        // A wrong signature is refused (and would be retried): the test then times
        // out rather than receive it.
        return StatusCode::UNAUTHORIZED;
    }
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        headers.get("x-wlnode-event").unwrap().to_str().unwrap(),
        v["type"].as_str().unwrap()
    );
    let _ = seen.send((Instant::now(), v));
    StatusCode::NO_CONTENT
}

/// A webhook receiver on `addr` (port 0: any); returns its address.
async fn receiver(addr: SocketAddr, seen: Seen) -> SocketAddr {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let bound = l.local_addr().unwrap();
    let app = Router::new().route("/hook", post(hook)).with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    bound
}

fn webhook_block(addr: SocketAddr, events: &str) -> String {
    format!(
        "\n[[webhook]]\nname = \"test-receiver\"\nurl = \"http://{addr}/hook\"\nallow_http = true\nevents = [{events}]\nsecret = \"{SECRET}\"\n"
    )
}

fn client(c: &Cluster, i: usize) -> Client {
    Client::from_config(&Config::load(&c.fed.nodes[i].config).unwrap()).unwrap()
}

/// An SSE client of node `i`'s `GET /v1/events`: each event as (arrival, type, body).
/// Returns once the stream is open (the node listens from then on).
async fn sse(c: &Cluster, i: usize) -> mpsc::UnboundedReceiver<(Instant, String, Value)> {
    let cfg = Config::load(&c.fed.nodes[i].config).unwrap();
    let token = wlnode_config::token::read_token(&cfg.raw.api.token_file).unwrap();
    let mut resp = reqwest::Client::new()
        .get(format!("http://{}/v1/events", c.node(i).api_addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let (mut kind, mut data, mut id) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_owned();
                    }
                }
                if kind.is_empty() {
                    continue; // keep-alive comment
                }
                let v: Value = serde_json::from_str(&data).unwrap();
                if !id.is_empty() {
                    assert_eq!(v["id"], id.as_str());
                }
                if tx.send((Instant::now(), kind, v)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

async fn next_of<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    tokio::time::timeout(T, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("stream ended waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_fires_at_b_when_a_matching_record_arrives_from_a() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let recv_addr = receiver(SocketAddr::from(([127, 0, 0, 1], 0)), seen_tx).await;
    let mut c = Cluster::simple(2, &[(0, 1)]);
    c.extra[1].push_str(&webhook_block(recv_addr, "\"watch_hit\", \"peer_down\""));
    c.start_all().await;
    wait_for(T, "B's screening index ready", || async {
        c.node(1).services.screen.is_ready()
    })
    .await;

    // A screener at B watches a party.
    let b = client(&c, 1);
    let v: Value = b
        .post_json(
            "/v1/users",
            &json!({"user": "officer", "roles": ["screener"]}),
        )
        .await
        .unwrap();
    let officer = Client::new(
        c.node(1).api_addr,
        v["token"].as_str().unwrap().to_owned(),
        "node.toml".into(),
    )
    .unwrap();
    let added: Value = officer
        .post_json(
            "/v1/watches",
            &json!({"name": "Orion Avionics Trading", "country": "AE", "ref": "LIC-2026-0042"}),
        )
        .await
        .unwrap();
    let watch_id = added["watch_id"].as_str().unwrap().to_owned();
    assert_eq!(watch_id.len(), 32);
    let listed: Value = b.get_json("/v1/watches").await.unwrap();
    assert_eq!(listed[0]["watch_id"], watch_id.as_str());
    assert_eq!(listed[0]["created_by_name"], "officer");
    let mut events = sse(&c, 1).await;

    // A non-matching record arrives first, and raises nothing.
    let other = c
        .add_drafts(0, "timber", vec![draft("Baltic Timber Export", None)])
        .await;
    wait_for(T, "the non-matching record indexed at B", || async {
        c.node(1)
            .services
            .store
            .entries_by_id(other[0].entry_id)
            .await
            .is_ok_and(|v| !v.is_empty())
            && c.node(1).services.screen.applied_seq() >= c.node(1).services.ingested.head()
    })
    .await;

    // The matching one.
    let t0 = Instant::now();
    let written = c
        .add_drafts(0, "orion", vec![draft("ORION AVIONICS TRADING", None)])
        .await;
    let (at, kind, ev) = next_of(&mut events, "the watch_hit on the event stream").await;
    let latency = at - t0;
    assert_eq!(kind, "watch_hit", "{ev}");
    assert_eq!(ev["type"], "watch_hit");
    assert_eq!(ev["watch_id"], watch_id.as_str());
    assert_eq!(ev["ref"], "LIC-2026-0042");
    assert_eq!(ev["entry_id"], written[0].entry_id.to_string().as_str());
    assert_eq!(ev["origin"], "AA-EXPORT");
    assert_eq!(ev["record_id"], written[0].record_id.to_string().as_str());
    wlnode_crypto::time::Timestamp::parse_rfc3339(ev["at"].as_str().unwrap()).unwrap();
    // The score is what /v1/screen gives for the watch's query.
    let screened: Value = officer
        .post_json(
            "/v1/screen",
            &json!({"name": "Orion Avionics Trading", "country": "AE"}),
        )
        .await
        .unwrap();
    let top = &screened["results"][0];
    assert_eq!(top["entry_id"], ev["entry_id"], "{screened:#}");
    assert_eq!(top["score"].as_f64(), ev["score"].as_f64(), "{screened:#}");
    assert_eq!(ev["matched_name"], "ORION AVIONICS TRADING");

    // The webhook got the same event, signed (the receiver checked the HMAC).
    let (hook_at, body) = next_of(&mut seen, "the webhook delivery").await;
    assert_eq!(body, ev);
    eprintln!(
        "watch_hit latency, write at A -> event at B: {latency:?} (SSE), {:?} (webhook)",
        hook_at - t0
    );
    // Counted once the evaluation returned and the receiver's answer is back.
    wait_for(T, "the hit and the delivery counted", || async {
        let m = c.metrics(1);
        counter(&m, "wlnode_watch_hits_total", "") == 1.0
            && counter(
                &m,
                "wlnode_webhook_deliveries_total",
                "outcome=\"delivered\"",
            ) == 1.0
    })
    .await;

    // A's node goes: B announces its neighbour down, on the stream and the webhook.
    c.stop(0).await;
    let (_, kind, ev) = next_of(&mut events, "peer_down").await;
    assert_eq!(kind, "peer_down", "{ev}");
    assert_eq!(ev["agency"], "AA-EXPORT");
    let (_, body) = next_of(&mut seen, "peer_down at the webhook").await;
    assert_eq!(body["type"], "peer_down");

    // The watch is removed (screener), with an acted audit event each way.
    let removed: Value = officer
        .delete_json(&format!("/v1/watches/{watch_id}"))
        .await
        .unwrap();
    assert_eq!(removed["watch_id"], watch_id.as_str());
    let listed: Value = b.get_json("/v1/watches").await.unwrap();
    assert_eq!(listed, json!([]));
    let acted: Vec<(String, Option<String>)> = c
        .node(1)
        .services
        .store
        .call(|s| s.audit_events(0, s.audit_size()?))
        .await
        .unwrap()
        .iter()
        .map(|b| wlnode_audit::event::Event::decode(b).unwrap())
        .filter_map(|e| match e.kind {
            wlnode_audit::event::EventKind::Acted { action, target, .. } => Some((action, target)),
            _ => None,
        })
        .collect();
    for a in ["watch_add", "watch_remove"] {
        assert!(
            acted
                .iter()
                .any(|(x, t)| x == a && t.as_deref() == Some(watch_id.as_str())),
            "{a} in {acted:?}"
        );
    }
    c.stop(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_the_event_once_after_retries() {
    // A loopback port with nothing listening (refused connections).
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let mut c = Cluster::simple(1, &[]);
    c.extra[0].push_str(&webhook_block(
        addr,
        "\"watch_hit\", \"draft_awaiting_approval\"",
    ));
    c.start(0).await;
    wait_for(T, "the screening index ready", || async {
        c.node(0).services.screen.is_ready()
    })
    .await;
    let mut bus = c.node(0).services.events.subscribe();
    let _: Value = client(&c, 0)
        .post_json("/v1/watches", &json!({"name": "Kestrel Marine Services"}))
        .await
        .unwrap();
    // A local write raises the hit too.
    c.add_drafts(0, "kestrel", vec![draft("Kestrel Marine Services", None)])
        .await;
    let ev = tokio::time::timeout(T, bus.recv()).await.unwrap().unwrap();
    assert_eq!(ev.kind.as_str(), "watch_hit");

    wait_for(T, "three failed attempts", || async {
        counter(
            &c.metrics(0),
            "wlnode_webhook_deliveries_total",
            "outcome=\"failed\"",
        ) >= 3.0
    })
    .await;
    // The receiver comes up on that port: a later retry delivers the event, once.
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    receiver(addr, seen_tx).await;
    let (_, body) = next_of(&mut seen, "the delivery after retries").await;
    assert_eq!(body["id"], ev.id.as_str());
    assert_eq!(body["type"], "watch_hit");
    wait_for(T, "the delivery counted", || async {
        counter(
            &c.metrics(0),
            "wlnode_webhook_deliveries_total",
            "outcome=\"delivered\"",
        ) == 1.0
    })
    .await;
    assert!(seen.try_recv().is_err(), "delivered once");
    let m = c.metrics(0);
    assert_eq!(
        counter(&m, "wlnode_webhook_dead_letters_total", "test-receiver"),
        0.0,
        "{m}"
    );

    // A draft is announced on the bus and delivered (the receiver is up now).
    let actor = wlnode_runtime::users::Actor {
        name: "editor".into(),
        id: "0123456789abcdef0123456789abcdef".into(),
        roles: [wlnode_runtime::users::Role::Editor].into(),
    };
    let d = c
        .node(0)
        .services
        .drafts
        .create(
            &actor,
            wlnode_runtime::drafts::DraftOp::Add {
                entry: draft("Drafted Party", None),
            },
        )
        .await
        .unwrap();
    let (_, body) = next_of(&mut seen, "draft_awaiting_approval").await;
    assert_eq!(body["type"], "draft_awaiting_approval");
    assert_eq!(body["draft_id"], d.draft_id.as_str());
    c.stop(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_source_refresh_is_posted_to_the_webhooks_that_ask_for_it() {
    // A list server that is not there, and a receiver that takes source_failed.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = free.local_addr().unwrap();
    drop(free);
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let recv_addr = receiver(SocketAddr::from(([127, 0, 0, 1], 0)), seen_tx).await;
    let mut c = Cluster::simple(1, &[]);
    c.extra[0].push_str(&format!(
        "\n[[source]]\nname = \"gone\"\nurl = \"http://{dead}/list.csv\"\nallow_http = true\nformat = \"csv\"\nevery = \"1h\"\nretry = \"1s\"\n"
    ));
    c.extra[0].push_str(&webhook_block(recv_addr, "\"source_failed\""));
    c.start(0).await;
    let (_, body) = next_of(&mut seen, "source_failed at the webhook").await;
    assert_eq!(body["type"], "source_failed", "{body}");
    assert_eq!(body["source"], "gone");
    assert_eq!(body["class"], "connect");
    // A watch_hit is not among its types: a matching write posts nothing to it.
    let _: Value = client(&c, 0)
        .post_json("/v1/watches", &json!({"name": "Kestrel Marine Services"}))
        .await
        .unwrap();
    let mut bus = c.node(0).services.events.subscribe();
    c.add_drafts(0, "kestrel", vec![draft("Kestrel Marine Services", None)])
        .await;
    loop {
        let ev = tokio::time::timeout(T, bus.recv()).await.unwrap().unwrap();
        if ev.kind.as_str() == "watch_hit" {
            break;
        }
    }
    // Deliveries keep the order of the bus: the next failed retry's event, emitted
    // after the hit, comes next; had the hit been queued, it would come first.
    while let Ok((_, body)) = seen.try_recv() {
        assert_eq!(body["type"], "source_failed", "{body}");
    }
    let (_, body) = next_of(&mut seen, "the next source_failed").await;
    assert_eq!(body["type"], "source_failed", "{body}");
    c.stop(0).await;
}

/// Watches keep their own place in the arrival log (`meta/watch_cursor`): records stored
/// but not yet evaluated when the node stopped (here the cursor is set back one record,
/// as a crash between the store write and the evaluation leaves it) are evaluated at
/// the next start, and the hit reaches the webhook then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_not_yet_evaluated_at_a_stop_raise_their_hits_at_the_next_start() {
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let addr = receiver("127.0.0.1:0".parse().unwrap(), seen_tx).await;
    let mut c = Cluster::simple(1, &[]);
    c.extra[0].push_str(&webhook_block(addr, "\"watch_hit\""));
    c.start(0).await;
    wait_for(T, "the screening index ready", || async {
        c.node(0).services.screen.is_ready()
    })
    .await;
    let _: Value = client(&c, 0)
        .post_json("/v1/watches", &json!({"name": "Osprey Avionics Trading"}))
        .await
        .unwrap();
    c.add_drafts(0, "osprey", vec![draft("Osprey Avionics Trading", None)])
        .await;
    let (_, first) = next_of(&mut seen, "the hit").await;
    assert_eq!(first["type"], "watch_hit");
    c.stop(0).await;
    // As a crash right after the write would leave it: the last record not evaluated.
    {
        let store = wlnode_store::Store::open(&c.fed.nodes[0].dir.join("data")).unwrap();
        let head = store.head_seq().unwrap();
        store
            .meta_set(b"watch_cursor", &(head - 1).to_be_bytes())
            .unwrap();
    }
    c.start(0).await;
    let (_, again) = next_of(&mut seen, "the hit raised again at start").await;
    assert_eq!(again["type"], "watch_hit");
    assert_eq!(again["record_id"], first["record_id"]);
    assert_ne!(again["id"], first["id"], "a new event");
    c.stop(0).await;
}
