//! Users and roles on a real node over real HTTP: every documented route with every
//! role (allowed, or 403 naming the role it needs), tokens (only hashes stored; a
//! disabled or rotated token refused), attribution in the audit log (a pseudonymous id,
//! never the name), and the CLI acting as a user (`--token-file`, `WLNODE_TOKEN`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use reqwest::Method;
use serde_json::{Value, json};
use wlnode_api::users::{Need, required_role};
use wlnode_audit::event::{Event, EventKind};
use wlnode_runtime::users::Role;

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: &str,
    path: &str,
) -> (u16, Value) {
    let url = format!("{base}{path}");
    let req = match method {
        "get" => http.get(url),
        "post" => http.post(url).json(&json!({})),
        "put" => http.put(url).json(&json!({})),
        "delete" => http.delete(url),
        other => panic!("method {other}"),
    };
    let r = req.bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    // An event stream (`GET /v1/events`) never ends: its status is the answer.
    if r.headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        return (status, Value::Null);
    }
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_gated_by_role_and_writes_are_attributed() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let base = format!("http://{}", n.node.api_addr);
    let http = reqwest::Client::new();
    let admin_token = wlnode_config::token::read_token(
        &wlnode_config::Config::load(&n.config)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();

    // One user per role, made by the bootstrap admin.
    let mut tokens: BTreeMap<Role, String> = BTreeMap::new();
    for role in Role::ALL {
        let v: Value = n
            .client
            .post_json(
                "/v1/users",
                &json!({"user": format!("u-{role}"), "roles": [role.as_str()]}),
            )
            .await
            .unwrap();
        assert_eq!(v["user"], format!("u-{role}"));
        tokens.insert(role, v["token"].as_str().unwrap().to_owned());
    }

    // Every documented route, with every role.
    let doc: Value = n.client.get_json("/v1/openapi.json").await.unwrap();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "00000000000000000000000000000000")
                .replace("{agency}", "ZZ-NOWHERE")
                .replace("{dataset}", "default")
                .replace("{name}", "nobody");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let need = required_role(&m, path);
            for (role, token) in &tokens {
                let allowed = match need {
                    Need::AnyRole => true,
                    Need::Role(r) => r == *role,
                    Need::AnyOf(rs) => rs.contains(role),
                };
                let (status, body) = call(&http, &base, token, method, &concrete).await;
                if allowed {
                    assert!(
                        status != 403 && status != 401,
                        "{role} on {method} {path}: {status} {body}"
                    );
                } else {
                    assert_eq!(status, 403, "{role} on {method} {path}: {body}");
                    assert_eq!(body["error"]["code"], "forbidden");
                    assert!(
                        body["error"]["message"]
                            .as_str()
                            .unwrap()
                            .contains(&format!("needs the {} role", need.names())),
                        "{body}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 6 * 25, "only {checked} checks");

    // Attribution: the editor's write carries their pseudonymous id; names never
    // appear in the audit log.
    let editor = &tokens[&Role::Editor];
    let size_before = n
        .node
        .services
        .store
        .call(|s| s.audit_size())
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/v1/entries"))
        .bearer_auth(editor)
        .json(&common::draft("Attributed Trading LLC"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let written: Value = r.json().await.unwrap();
    let users: Value = n.client.get_json("/v1/users").await.unwrap();
    let editor_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "u-editor")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events: Vec<Event> = n
        .node
        .services
        .store
        .call(move |s| s.audit_events(size_before, s.audit_size()?))
        .await
        .unwrap()
        .iter()
        .map(|b| Event::decode(b).unwrap())
        .collect();
    let acted = events
        .iter()
        .position(|e| {
            matches!(&e.kind, EventKind::Acted { user, action, target, .. }
            if *user == editor_id && action == "entry_add"
                && target.as_deref() == written["record_id"].as_str())
        })
        .expect("an acted event for the editor's write");
    assert!(
        matches!(events[acted + 1].kind, EventKind::Created { .. }),
        "the record's created event follows: {events:?}"
    );
    let all: Vec<Vec<u8>> = n
        .node
        .services
        .store
        .call(|s| s.audit_events(0, s.audit_size()?))
        .await
        .unwrap();
    for b in &all {
        let text = String::from_utf8_lossy(b);
        assert!(
            !text.contains("u-editor") && !text.contains("u-admin"),
            "{text}"
        );
    }

    // Tokens: only hashes kept; disabled and rotated tokens refused; the bootstrap
    // admin is the token file's and cannot be disabled through the API.
    let table = n
        .node
        .services
        .store
        .call(|s| s.meta_get(b"users"))
        .await
        .unwrap()
        .unwrap();
    let table = String::from_utf8(table).unwrap();
    for t in tokens.values().chain([&admin_token]) {
        assert!(!table.contains(t.as_str()), "a token is stored in clear");
    }
    let screener = tokens[&Role::Screener].clone();
    let (s, _) = call(&http, &base, &screener, "get", "/v1/users/me").await;
    assert_eq!(s, 200);
    let v: Value = n
        .client
        .post_json("/v1/users/u-screener/rotate", &json!({}))
        .await
        .unwrap();
    let rotated = v["token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&http, &base, &screener, "get", "/v1/users/me").await.0,
        401
    );
    let (s, me) = call(&http, &base, &rotated, "get", "/v1/users/me").await;
    assert_eq!(s, 200);
    assert_eq!(me["roles"], json!(["screener"]));
    n.client
        .post_json::<_, Value>("/v1/users/u-screener/disable", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        call(&http, &base, &rotated, "get", "/v1/users/me").await.0,
        401
    );
    for (path, body, status) in [
        ("/v1/users/admin/disable", json!({}), 409),
        ("/v1/users/admin/rotate", json!({}), 409),
        (
            "/v1/users",
            json!({"user": "u-editor", "roles": ["viewer"]}),
            409,
        ),
        (
            "/v1/users",
            json!({"user": "Bad Name", "roles": ["viewer"]}),
            400,
        ),
        ("/v1/users", json!({"user": "x", "roles": ["root"]}), 400),
        ("/v1/users", json!({"user": "x", "roles": []}), 400),
    ] {
        let e = n
            .client
            .post_json::<_, Value>(path, &body)
            .await
            .unwrap_err();
        match e {
            wlnode_client::ClientError::Api { status: got, .. } => {
                assert_eq!(got, status, "{path} {body}")
            }
            other => panic!("{other}"),
        }
    }
    // Empty and malformed authorisation headers are refused.
    for h in ["Bearer ", "Bearer", "", "Basic abc"] {
        let r = http
            .get(format!("{base}/v1/status"))
            .header("Authorization", h)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{h:?}");
    }
    n.node.stop().await;

    // The table survives a restart; the bootstrap admin still works.
    let n = common::start(&fed, 0).await;
    let users: Value = n.client.get_json("/v1/users").await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 7, "{users}");
    let base = format!("http://{}", n.node.api_addr);
    assert_eq!(
        call(&http, &base, editor, "get", "/v1/users/me").await.0,
        200
    );
    assert_eq!(
        call(&http, &base, &rotated, "get", "/v1/users/me").await.0,
        401
    );

    // The CLI acts as a user: --token-file, or WLNODE_TOKEN.
    let tok_file = dir.path().join("viewer.token");
    std::fs::write(&tok_file, &tokens[&Role::Viewer]).unwrap();
    std::fs::set_permissions(
        &tok_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["entry", "add", "--config"])
        .arg(&n.config)
        .arg("--token-file")
        .arg(&tok_file)
        .arg("--file")
        .arg(write_draft(dir.path()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs the editor role"), "{err}");
    let out = Command::cargo_bin("wlnode")
        .unwrap()
        .args([
            "user", "add", "carol", "--role", "editor", "--role", "screener", "--json", "--config",
        ])
        .arg(&n.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let carol: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(carol["roles"], json!(["screener", "editor"]));
    let out = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["entry", "add", "--json", "--config"])
        .arg(&n.config)
        .arg("--file")
        .arg(write_draft(dir.path()))
        .env("WLNODE_TOKEN", carol["token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["user", "list", "--json", "--config"])
        .arg(&n.config)
        .env("WLNODE_TOKEN", carol["token"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success(), "carol is no admin");
    n.node.stop().await;

    // The agency's own inspectors get the id -> name map, apart from the log.
    let log = dir.path().join("audit.json");
    let names = dir.path().join("names.json");
    let out = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["audit", "export", "--config"])
        .arg(&n.config)
        .arg("--out")
        .arg(&log)
        .arg("--user-names")
        .arg(&names)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&names).unwrap()).unwrap();
    assert_eq!(map[&editor_id], "u-editor");
    let exported = std::fs::read_to_string(&log).unwrap();
    assert!(exported.contains(&editor_id) && !exported.contains("u-editor"));
}

fn write_draft(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("draft.json");
    std::fs::write(&p, common::draft("Cli Written Trading LLC").to_string()).unwrap();
    p
}
