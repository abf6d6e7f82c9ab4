//! The HTTP API against a real node and a real server on 127.0.0.1:0: auth,
//! lifecycle, validation errors naming the field, pagination, import, metrics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use wlnode_client::ClientError;

fn api_err(e: ClientError) -> (u16, String, Option<String>) {
    match e {
        ClientError::Api {
            status,
            code,
            field,
            ..
        } => (status, code, field),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_except_for_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let base = format!("http://{}", n.node.api_addr);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{base}/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = http
        .get(format!("{base}/v1/status"))
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let status = n.client.status().await.unwrap();
    assert_eq!(status["agency"], "AA-EXPORT");
    assert_eq!(status["records"], 0);
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_add_amend_withdraw() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let w = n
        .client
        .add(&common::draft("Acme Trading FZE"))
        .await
        .unwrap();
    assert_eq!(w["version"], 1);
    let id = w["entry_id"].as_str().unwrap().to_owned();
    let e = n.client.show(&id, None).await.unwrap();
    assert_eq!(e["origin"], "AA-EXPORT");
    assert_eq!(e["status"], "active");
    assert_eq!(e["subject"]["name"], "Acme Trading FZE");
    assert_eq!(e["record_id"], w["record_id"]);
    let w2 = n
        .client
        .amend(&id, &common::draft("Acme Trading FZCO"))
        .await
        .unwrap();
    assert_eq!(w2["version"], 2);
    assert_eq!(
        n.client.show(&id, None).await.unwrap()["subject"]["name"],
        "Acme Trading FZCO"
    );
    let w3 = n
        .client
        .withdraw(&id, "delisted after review")
        .await
        .unwrap();
    assert_eq!(w3["version"], 3);
    let e = n.client.show(&id, None).await.unwrap();
    assert_eq!(e["status"], "withdrawn");
    assert_eq!(e["withdrawal_reason"], "delisted after review");
    assert_eq!(
        e["subject"]["name"], "Acme Trading FZCO",
        "content kept on withdrawal"
    );
    assert_eq!(e["records"], 3);
    let (status, code, _) = api_err(n.client.withdraw(&id, "again").await.unwrap_err());
    assert_eq!((status, code.as_str()), (409, "already_withdrawn"));
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            {
                let mut d = common::draft("X");
                d["subject"]["identifiers"][0]["type"] = "Pass Port".into();
                d
            },
            "subject.identifiers[0].type",
        ),
        (
            {
                let mut d = common::draft("X");
                d["subject"]["kind"] = "dog".into();
                d
            },
            "subject.kind",
        ),
        (
            {
                let mut d = common::draft("X");
                d["subject"]["nickname"] = "x".into();
                d
            },
            "subject.nickname",
        ),
        (
            {
                let mut d = common::draft("X");
                d["distribution"] = serde_json::json!({"scope": "groups", "groups": ["asean"]});
                d
            },
            "distribution.groups[0]",
        ),
        (
            {
                let mut d = common::draft("X");
                d["distribution"]["sensitivity"] = "top-secret".into();
                d
            },
            "distribution.sensitivity",
        ),
        (
            {
                let mut d = common::draft("X");
                d["subject"]["name"] = "   ".into();
                d
            },
            "subject.name",
        ),
        (
            {
                let mut d = common::draft("X");
                d["subject"]["birth_date"] = "1970-02-30".into();
                d
            },
            "subject.birth_date",
        ),
    ];
    for (body, field) in cases {
        let (status, _, got) = api_err(n.client.add(&body).await.unwrap_err());
        assert_eq!(status, 400, "{field}");
        assert_eq!(got.as_deref(), Some(field), "{body}");
    }
    // Invalid JSON.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = wlnode_config::token::read_token(&fed.nodes[0].dir.join("api.token")).unwrap();
    let r = http
        .post(format!("http://{}/v1/entries", n.node.api_addr))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: serde_json::Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "invalid_json");
    // Bad and unknown ids.
    let (s, _, f) = api_err(n.client.show("xyz", None).await.unwrap_err());
    assert_eq!((s, f.as_deref()), (400, Some("id")));
    let (s, code, _) = api_err(n.client.show(&"ab".repeat(16), None).await.unwrap_err());
    assert_eq!((s, code.as_str()), (404, "not_found"));
    let (s, _, f) = api_err(
        n.client
            .list_page(&[("limit", "0".into())])
            .await
            .unwrap_err(),
    );
    assert_eq!((s, f.as_deref()), (400, Some("limit")));
    let (s, _, f) = api_err(
        n.client
            .list_page(&[("cursor", "zz".into())])
            .await
            .unwrap_err(),
    );
    assert_eq!((s, f.as_deref()), (400, Some("cursor")));
    let (s, _, _) = api_err(
        n.client
            .get_json::<serde_json::Value>("/v1/nope")
            .await
            .unwrap_err(),
    );
    assert_eq!(s, 404);
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_origin_may_change_an_entry() {
    use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
    use wlnode_store::IngestBatch;
    use wlnode_types::{Incoming, Source};
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    // A record of BB-CUSTOMS, as replication would deliver it.
    let bb_key = read_secret_key(&fed.nodes[1].dir.join("agency.key"), KeyKind::Agency).unwrap();
    let draft: wlnode_crypto::model::EntryDraft =
        serde_json::from_value(common::draft("BB entry")).unwrap();
    let rec = wlnode_crypto::record::build_record(
        wlnode_crypto::record::RecordMeta {
            entry_id: wlnode_crypto::EntryId::random().unwrap(),
            origin: "BB-CUSTOMS".parse().unwrap(),
            version: 1,
            issued_at: wlnode_crypto::Timestamp::now(),
            status: wlnode_crypto::model::Status::Active,
            withdrawal_reason: None,
        },
        &draft,
        &bb_key,
    )
    .unwrap();
    let id = rec.header().entry_id.to_hex();
    n.node
        .services
        .store
        .ingest(IngestBatch {
            items: vec![Incoming {
                record: rec,
                source: Source::Peer {
                    agency: "BB-CUSTOMS".parse().unwrap(),
                    hops: 1,
                },
                local: None,
                inclusion: None,
            }],
            cursor: None,
            declined: Vec::new(),
            audit: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        n.client.show(&id, None).await.unwrap()["origin"],
        "BB-CUSTOMS"
    );
    let (s, code, _) = api_err(
        n.client
            .amend(&id, &common::draft("hijack"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s, code.as_str()), (403, "not_origin"));
    let (s, code, _) = api_err(n.client.withdraw(&id, "hijack").await.unwrap_err());
    assert_eq!((s, code.as_str()), (403, "not_origin"));
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_returns_every_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    for i in 0..25 {
        n.client
            .add(&common::draft(&format!("Entity {i}")))
            .await
            .unwrap();
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "10".to_owned())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let page = n.client.list_page(&q).await.unwrap();
        pages += 1;
        for e in &page.entries {
            assert!(seen.insert(e["entry_id"].as_str().unwrap().to_owned()));
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(pages, 3);
    assert_eq!(n.client.list_all(&[], None).await.unwrap().len(), 25);
    assert_eq!(n.client.list_all(&[], Some(7)).await.unwrap().len(), 7);
    let none = n
        .client
        .list_all(&[("status", "withdrawn".into())], None)
        .await
        .unwrap();
    assert!(none.is_empty());
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_idempotent_and_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let rows = |name2: &str| {
        serde_json::json!({
            "source_list": "test-list",
            "items": [
                {"source_id": "1", "entry": common::draft("First Co")},
                {"source_id": "2", "entry": common::draft(name2)},
                {"source_id": "3", "entry": {"subject": {"kind": "person"}, "reason": "denial"}},
            ]
        })
    };
    let r: serde_json::Value = n
        .client
        .post_json("/v1/import", &rows("Second Co"))
        .await
        .unwrap();
    assert_eq!(r["summary"]["imported"], 2);
    assert_eq!(r["summary"]["failed"], 1);
    assert!(
        r["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("items[2]"),
        "{r}"
    );
    let r: serde_json::Value = n
        .client
        .post_json("/v1/import", &rows("Second Co"))
        .await
        .unwrap();
    assert_eq!(r["summary"]["unchanged"], 2, "{r}");
    assert_eq!(n.client.status().await.unwrap()["records"], 2);
    let r: serde_json::Value = n
        .client
        .post_json("/v1/import", &rows("Second Co Ltd"))
        .await
        .unwrap();
    assert_eq!(
        (
            r["summary"]["unchanged"].clone(),
            r["summary"]["amended"].clone()
        ),
        (1.into(), 1.into())
    );
    let v = n
        .client
        .withdraw_missing("test-list", &["1".into()])
        .await
        .unwrap();
    assert_eq!(v["withdrawn"].as_array().unwrap().len(), 1);
    let withdrawn = n
        .client
        .list_all(&[("status", "withdrawn".into())], None)
        .await
        .unwrap();
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0]["subject"]["name"], "Second Co Ltd");
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    n.client.add(&common::draft("Metered")).await.unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = wlnode_config::token::read_token(&fed.nodes[0].dir.join("api.token")).unwrap();
    let text = http
        .get(format!("http://{}/metrics", n.node.api_addr))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("wlnode_records 1"), "{text}");
    assert!(
        text.contains("wlnode_records_stored_total{source=\"local\"} 1"),
        "{text}"
    );
    let doc: serde_json::Value = n.client.get_json("/v1/openapi.json").await.unwrap();
    assert!(doc["paths"]["/v1/entries"]["post"].is_object());
    assert!(
        doc["components"]["schemas"]["EntryDraft"].is_object(),
        "{}",
        doc["components"]["schemas"]
    );
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_blocks_are_validated_stored_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let bb: wlnode_crypto::model::AgencyCode = "BB-CUSTOMS".parse().unwrap();
    for bad in ["AA-EXPORT", "ZZ-NOWHERE"] {
        let e = n
            .client
            .peer_block(&bad.parse().unwrap(), true)
            .await
            .unwrap_err();
        assert_eq!(
            api_err(e),
            (400, "invalid_field".into(), Some("agency".into()))
        );
    }
    let e = n
        .client
        .post_json::<_, serde_json::Value>("/v1/peers/not%20a%20code/block", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_err(e).0, 400);
    let v = n.client.peer_block(&bb, true).await.unwrap();
    assert_eq!(
        v,
        serde_json::json!({"agency": "BB-CUSTOMS", "blocked": true, "changed": true})
    );
    let v = n.client.peer_block(&bb, true).await.unwrap();
    assert_eq!(v["changed"], false);
    let doc: serde_json::Value = n.client.get_json("/v1/openapi.json").await.unwrap();
    assert!(doc["paths"]["/v1/peers/{agency}/block"]["post"].is_object());
    assert!(doc["paths"]["/v1/peers/{agency}/unblock"]["post"].is_object());
    n.node.stop().await;

    // Stored: still blocked after a restart, and the audit log says who did what.
    let n = common::start(&fed, 0).await;
    let metrics = n.client.get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("wlnode_peer_blocked{peer=\"BB-CUSTOMS\"} 1"),
        "{metrics}"
    );
    let v = n.client.peer_block(&bb, false).await.unwrap();
    assert_eq!(v["changed"], true);
    let blocked = n
        .node
        .services
        .store
        .call(|s| s.blocked_peers())
        .await
        .unwrap();
    assert!(blocked.is_empty());
    n.node.stop().await;
}

/// Issue 19 item 6: the API had no connection limit and no timeouts, so a local
/// client could hold it with connections that never send a request, or with a body
/// that never arrives. Now at most `max_connections` are served at once, a connection
/// that sends no headers within `idle_timeout` is closed, and a request not answered
/// within `request_timeout` gets 503 `timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_cannot_hold_the_api() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let cfg_path = &fed.nodes[0].config;
    let text = std::fs::read_to_string(cfg_path).unwrap();
    let text = text.replacen(
        "token_file =",
        "max_connections = 2\nidle_timeout = \"1s\"\nrequest_timeout = \"2s\"\ntoken_file =",
        1,
    );
    std::fs::write(cfg_path, text).unwrap();
    let n = common::start(&fed, 0).await;
    let addr = n.node.api_addr;
    let token = wlnode_config::token::read_token(
        &wlnode_config::Config::load(cfg_path)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();
    // Two connections that never send a byte take both slots.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        stalled.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // A third client is served only once a slot frees: the stalled ones are closed
    // for sending no headers in time.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut closed = 0;
    for s in &mut stalled {
        let mut buf = [0u8; 64];
        // Closed by the server: EOF (or a reset) now, without waiting.
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), s.read(&mut buf)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 1,
        "a slot was freed by closing a stalled connection"
    );
    // A body that never arrives: 503 `timeout`, not a connection held forever.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/entries HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"subject\""
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        slow.read_to_end(&mut answer),
    )
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "the request was never answered: {answer}");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"timeout\""), "{answer}");
    n.node.stop().await;
}
