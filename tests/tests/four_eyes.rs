//! Four-eyes release (issue 22 item 2) on a real two-node federation: with `[release]
//! require_approval = true` on A, an editor's write is a draft that nothing signs or
//! sends; its author cannot approve it; an approver releases it and B receives exactly
//! that record; a rejected draft leaves no record anywhere; direct imports are refused,
//! and a list goes up as an import batch that an approver releases by the digest of
//! the plan they reviewed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use serde_json::{Value, json};
use wlnode_client::{Client, ClientError};
use wlnode_tests::{Cluster, FAST_SYNC, agency, wait_for};

fn api_status(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("expected an API error, got {other}"),
    }
}

fn draft(name: &str) -> Value {
    json!({
        "subject": {"kind": "organization", "name": name, "country": "AE"},
        "reason": "denial",
        "categories": ["3A001"],
        "distribution": {"scope": "federation", "sensitivity": "restricted"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_wait_for_a_second_user_and_rejected_ones_leave_nothing() {
    let specs: Vec<_> = (0..2)
        .map(|i| wlnode_devtools::scaffold::AgencySpec::member(&agency(i), &["eu"]).unwrap())
        .collect();
    let open = format!("{}{}", wlnode_devtools::scaffold::OPEN_POLICY, FAST_SYNC);
    let mut c = Cluster::new(
        &specs,
        &[(0, 1)],
        vec![
            format!("{open}\n[release]\nrequire_approval = true\n"),
            open.clone(),
        ],
    );
    c.start_all().await;
    let a = c.node(0);
    let cfg = wlnode_config::Config::load(&c.fed.nodes[0].config).unwrap();
    let admin = Client::from_config(&cfg).unwrap();
    let as_user = |token: &Value| {
        Client::new(
            a.api_addr,
            token.as_str().unwrap().to_owned(),
            "test".into(),
        )
        .unwrap()
    };
    let mut users = Vec::new();
    for (name, roles) in [
        ("ed", vec!["editor"]),
        ("ap", vec!["approver"]),
        ("both", vec!["editor", "approver"]),
    ] {
        let v: Value = admin
            .post_json("/v1/users", &json!({"user": name, "roles": roles}))
            .await
            .unwrap();
        users.push(as_user(&v["token"]));
    }
    let (ed, ap, both) = (&users[0], &users[1], &users[2]);
    let records_before = c.records(0).await;

    // A write is a draft: 202, nothing signed.
    let d1 = ed.add(&draft("Released Trading FZE")).await.unwrap();
    assert_eq!(d1["state"], "awaiting_approval", "{d1}");
    let d1_id = d1["draft_id"].as_str().unwrap().to_owned();
    let d2 = ed.add(&draft("Rejected Holdings Ltd")).await.unwrap();
    let d2_id = d2["draft_id"].as_str().unwrap().to_owned();
    let d3 = both.add(&draft("Self Approved Co")).await.unwrap();
    let d3_id = d3["draft_id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.records(0).await,
        records_before,
        "a draft signed a record"
    );
    let pending: Value = ap
        .get_json("/v1/drafts?state=awaiting_approval")
        .await
        .unwrap();
    assert_eq!(pending.as_array().unwrap().len(), 3, "{pending}");

    // The author cannot approve; an editor cannot approve at all.
    let e = both
        .post_json::<_, Value>(&format!("/v1/drafts/{d3_id}/approve"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (403, "own_draft".into()));
    let e = ed
        .post_json::<_, Value>(&format!("/v1/drafts/{d1_id}/approve"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (403, "forbidden".into()));

    // The token file's admin holds every role but is no second person.
    let e = admin
        .post_json::<_, Value>(&format!("/v1/drafts/{d1_id}/approve"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (403, "bootstrap_cannot_approve".into()));

    // Imports cannot bypass the second pair of eyes.
    let e = ed
        .post_json::<_, Value>("/v1/import", &json!({"source_list": "x", "items": []}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "approval_required".into()));

    // Reject d2; approve d1 (once).
    let r: Value = ap
        .post_json(
            &format!("/v1/drafts/{d2_id}/reject"),
            &json!({"reason": "wrong party"}),
        )
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected");
    let w: Value = ap
        .post_json(&format!("/v1/drafts/{d1_id}/approve"), &json!({}))
        .await
        .unwrap();
    let record_id: wlnode_crypto::model::RecordId =
        w["record_id"].as_str().unwrap().parse().unwrap();
    let e = ap
        .post_json::<_, Value>(&format!("/v1/drafts/{d1_id}/approve"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "decided".into()));
    let e = ap
        .post_json::<_, Value>(&format!("/v1/drafts/{d2_id}/approve"), &json!({}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "decided".into()));

    // B receives exactly the released record; the rejected draft is nowhere.
    wait_for(
        Duration::from_secs(60),
        "B holds the released record",
        || {
            let c = &c;
            async move { c.records(1).await.contains(&record_id) }
        },
    )
    .await;
    let a_new: Vec<_> = c
        .records(0)
        .await
        .difference(&records_before)
        .copied()
        .collect();
    assert_eq!(a_new, vec![record_id], "A signed only the released draft");
    let from_a: Vec<_> = c
        .heads(1)
        .await
        .into_keys()
        .filter(|k| k.origin.as_str() == agency(0))
        .collect();
    assert_eq!(from_a.len(), 1, "B holds one entry of A: {from_a:?}");
    for i in 0..2 {
        let v: Value =
            Client::from_config(&wlnode_config::Config::load(&c.fed.nodes[i].config).unwrap())
                .unwrap()
                .screen(&wlnode_screen::request::ScreenRequest {
                    name: "Rejected Holdings Ltd".into(),
                    min_score: Some(0.9),
                    ..Default::default()
                })
                .await
                .unwrap();
        assert_eq!(
            v["results"],
            json!([]),
            "node {i} has the rejected draft: {v}"
        );
    }
    let all: Value = ap.get_json("/v1/drafts").await.unwrap();
    let states: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["approved", "rejected", "awaiting_approval"]);
    let released = &all[0];
    assert_eq!(released["author_name"], "ed");
    assert_eq!(released["decided_by_name"], "ap");
    assert_eq!(released["written"]["record_id"], w["record_id"]);

    // Two amend drafts of one entry: once one is released, the other is stale and
    // cannot silently revert it.
    let entry = w["entry_id"].as_str().unwrap();
    let a1 = ed
        .amend(entry, &draft("Released Trading FZE (first amendment)"))
        .await
        .unwrap();
    let a2 = ed
        .amend(entry, &draft("Released Trading FZE (second amendment)"))
        .await
        .unwrap();
    ap.post_json::<_, Value>(
        &format!("/v1/drafts/{}/approve", a2["draft_id"].as_str().unwrap()),
        &json!({}),
    )
    .await
    .unwrap();
    let e = ap
        .post_json::<_, Value>(
            &format!("/v1/drafts/{}/approve", a1["draft_id"].as_str().unwrap()),
            &json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "stale".into()));
}

fn row(source_id: &str, name: &str) -> Value {
    json!({"source_id": source_id, "entry": draft(name)})
}

/// Opens, fills and submits an import batch as `who`; returns it (with its summary).
async fn submit_batch(who: &Client, source_list: &str, full: bool, rows: &[Value]) -> Value {
    let b: Value = who
        .post_json(
            "/v1/import-batches",
            &json!({"source_list": source_list, "withdraw_missing": full}),
        )
        .await
        .unwrap();
    let id = b["batch_id"].as_str().unwrap().to_owned();
    for chunk in rows.chunks(2) {
        let _: Value = who
            .post_json(
                &format!("/v1/import-batches/{id}/rows"),
                &json!({"items": chunk}),
            )
            .await
            .unwrap();
    }
    who.post_json(&format!("/v1/import-batches/{id}/submit"), &json!({}))
        .await
        .unwrap()
}

async fn approve_batch(who: &Client, b: &Value, plan: &str) -> Result<Value, ClientError> {
    who.post_json(
        &format!(
            "/v1/import-batches/{}/approve",
            b["batch_id"].as_str().unwrap()
        ),
        &json!({"plan_digest": plan}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_batches_are_released_by_another_user_as_the_plan_they_reviewed() {
    let specs: Vec<_> = (0..2)
        .map(|i| wlnode_devtools::scaffold::AgencySpec::member(&agency(i), &["eu"]).unwrap())
        .collect();
    let open = format!("{}{}", wlnode_devtools::scaffold::OPEN_POLICY, FAST_SYNC);
    let mut c = Cluster::new(
        &specs,
        &[(0, 1)],
        vec![
            format!("{open}\n[release]\nrequire_approval = true\n"),
            open.clone(),
        ],
    );
    c.start_all().await;
    let a = c.node(0);
    let cfg = wlnode_config::Config::load(&c.fed.nodes[0].config).unwrap();
    let admin = Client::from_config(&cfg).unwrap();
    let mut users = Vec::new();
    for (name, roles) in [
        ("ed", vec!["editor"]),
        ("ed2", vec!["editor"]),
        ("ap", vec!["approver"]),
        ("both", vec!["editor", "approver"]),
    ] {
        let v: Value = admin
            .post_json("/v1/users", &json!({"user": name, "roles": roles}))
            .await
            .unwrap();
        users.push(
            Client::new(
                a.api_addr,
                v["token"].as_str().unwrap().to_owned(),
                "test".into(),
            )
            .unwrap(),
        );
    }
    let (ed, ed2, ap, both) = (&users[0], &users[1], &users[2], &users[3]);
    let before = c.records(0).await;

    // Uploads are checked row by row; refused rows are answered and not kept.
    let b: Value = ed
        .post_json("/v1/import-batches", &json!({"source_list": "acme-list"}))
        .await
        .unwrap();
    let x_id = b["batch_id"].as_str().unwrap().to_owned();
    let up: Value = ed
        .post_json(
            &format!("/v1/import-batches/{x_id}/rows"),
            &json!({"items": [row("r1", "Batch Alpha Trading"), row("r2", "Batch Beta Metals"),
                {"source_id": "bad", "entry": {"subject": {"kind": "organization"}}}]}),
        )
        .await
        .unwrap();
    assert_eq!(up["accepted"], 2, "{up}");
    assert_eq!(up["failed"][0]["index"], 2, "{up}");
    assert!(
        up["failed"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("items[2]"),
        "{up}"
    );
    // Only the author uploads to it.
    let e = ed2
        .post_json::<_, Value>(
            &format!("/v1/import-batches/{x_id}/rows"),
            &json!({"items": [row("r9", "Smuggled Row Ltd")]}),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (403, "not_author".into()));
    let _: Value = ed
        .post_json(
            &format!("/v1/import-batches/{x_id}/rows"),
            &json!({"items": [row("r3", "Batch Gamma Optics"), row("r3", "Batch Gamma Optics Dup")]}),
        )
        .await
        .unwrap();
    let x: Value = ed
        .post_json(&format!("/v1/import-batches/{x_id}/submit"), &json!({}))
        .await
        .unwrap();
    assert_eq!(x["state"], "awaiting_approval", "{x}");
    let s = &x["summary"];
    assert_eq!(
        (&s["rows"], &s["new"], &s["failed"], &s["amended"]),
        (&json!(4), &json!(3), &json!(1), &json!(0)),
        "{x}"
    );
    assert!(
        s["sample_failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("twice"),
        "{x}"
    );
    let x_plan = s["plan_digest"].as_str().unwrap().to_owned();
    assert_eq!(
        c.records(0).await,
        before,
        "a submitted batch signed a record"
    );

    // Nobody but a second person with the approver role releases it.
    let e = approve_batch(ed, &x, &x_plan).await.unwrap_err();
    assert_eq!(api_status(e), (403, "forbidden".into()));
    let e = approve_batch(&admin, &x, &x_plan).await.unwrap_err();
    assert_eq!(api_status(e), (403, "bootstrap_cannot_approve".into()));
    let own = submit_batch(both, "own-list", false, &[row("o1", "Own Batch Co")]).await;
    let own_plan = own["summary"]["plan_digest"].as_str().unwrap().to_owned();
    let e = approve_batch(both, &own, &own_plan).await.unwrap_err();
    assert_eq!(api_status(e), (403, "own_batch".into()));

    // A write that lands between review and approval changes the plan: the approver
    // is refused and reviews the new summary; the batch never releases unseen.
    let y = submit_batch(ed2, "acme-list", false, &[row("r1", "Batch Alpha Trading")]).await;
    let y_plan = y["summary"]["plan_digest"].as_str().unwrap().to_owned();
    let released = approve_batch(ap, &y, &y_plan).await.unwrap();
    assert_eq!(released["state"], "approved", "{released}");
    assert_eq!(released["result"]["imported"], 1, "{released}");
    assert_eq!(released["decided_by_name"], "ap");
    let e = approve_batch(ap, &x, &x_plan).await.unwrap_err();
    assert_eq!(api_status(e), (409, "stale".into()));
    let x: Value = ap
        .get_json(&format!("/v1/import-batches/{x_id}"))
        .await
        .unwrap();
    assert_eq!(x["summary"]["new"], 2, "{x}");
    assert_eq!(x["summary"]["unchanged"], 1, "{x}");
    let x_plan2 = x["summary"]["plan_digest"].as_str().unwrap().to_owned();
    assert_ne!(x_plan, x_plan2);
    let e = approve_batch(ap, &x, "00").await.unwrap_err();
    assert_eq!(api_status(e), (409, "stale".into()));
    let released = approve_batch(ap, &x, &x_plan2).await.unwrap();
    assert_eq!(released["state"], "approved", "{released}");
    assert_eq!(
        (
            &released["result"]["imported"],
            &released["result"]["unchanged"],
            &released["result"]["failed"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{released}"
    );
    let e = approve_batch(ap, &x, &x_plan2).await.unwrap_err();
    assert_eq!(api_status(e), (409, "state".into()));

    // B receives what was released: three entries of the list.
    let a_new: std::collections::BTreeSet<_> =
        c.records(0).await.difference(&before).copied().collect();
    assert_eq!(a_new.len(), 3, "A signed exactly the released rows");
    wait_for(Duration::from_secs(60), "B holds the released rows", || {
        let (c, a_new) = (&c, &a_new);
        async move { a_new.is_subset(&c.records(1).await) }
    })
    .await;

    // A full list that drops two rows would withdraw them: the summary says so, and
    // a rejected batch leaves everything as it was, its rows dropped.
    let z = submit_batch(ed, "acme-list", true, &[row("r2", "Batch Beta Metals")]).await;
    assert_eq!(z["summary"]["withdrawn"], 2, "{z}");
    assert_eq!(z["summary"]["unchanged"], 1, "{z}");
    let z_id = z["batch_id"].as_str().unwrap();
    let r: Value = ap
        .post_json(
            &format!("/v1/import-batches/{z_id}/reject"),
            &json!({"reason": "the file is truncated"}),
        )
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected");
    assert_eq!(c.records(0).await.len(), before.len() + 3);
    let e = approve_batch(ap, &z, z["summary"]["plan_digest"].as_str().unwrap())
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "state".into()));

    // Bounded: an author has at most two batches undecided (one is open here).
    let _open2: Value = ed
        .post_json("/v1/import-batches", &json!({"source_list": "l2"}))
        .await
        .unwrap();
    let _open3: Value = ed
        .post_json("/v1/import-batches", &json!({"source_list": "l3"}))
        .await
        .unwrap();
    let e = ed
        .post_json::<_, Value>("/v1/import-batches", &json!({"source_list": "l4"}))
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "limit".into()));
    // Its author abandons an open batch (and no other editor can); that frees a place.
    let open2_id = _open2["batch_id"].as_str().unwrap();
    let e = ed2
        .post_json::<_, Value>(
            &format!("/v1/import-batches/{open2_id}/reject"),
            &json!({"reason": "not mine"}),
        )
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (403, "not_author".into()));
    let r: Value = ed
        .post_json(
            &format!("/v1/import-batches/{open2_id}/reject"),
            &json!({"reason": "wrong file"}),
        )
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected");

    // Review of this feature: what an approver must see and what an upload may hold.
    let open3_id = _open3["batch_id"].as_str().unwrap();
    let rows_url = format!("/v1/import-batches/{open3_id}/rows");
    // A source id is named in summaries read on a terminal: no control characters, no
    // megabytes.
    let up: Value = ed
        .post_json(
            &rows_url,
            &json!({"items": [
                {"source_id": "x\u{1b}[2Ky", "entry": draft("Escape Co")},
                {"source_id": "z".repeat(129), "entry": draft("Long Id Co")},
            ]}),
        )
        .await
        .unwrap();
    assert_eq!(up["accepted"], 0, "{up}");
    for f in up["failed"].as_array().unwrap() {
        assert!(f["error"].as_str().unwrap().contains("source_id"), "{up}");
    }
    // Uploads that keep nothing store nothing.
    assert_eq!(up["batch"]["chunks"], 0, "{up}");
    let up: Value = ed
        .post_json(&rows_url, &json!({"items": []}))
        .await
        .unwrap();
    assert_eq!(up["batch"]["chunks"], 0, "{up}");
    let r: Value = ed
        .post_json(
            &format!("/v1/import-batches/{open3_id}/reject"),
            &json!({"reason": "wrong list"}),
        )
        .await
        .unwrap();
    assert_eq!(r["state"], "rejected");
    // An amendment that widens who receives an entry is shown in full, before and
    // after; a source id seen earlier in the batch is refused, not written twice.
    let mut wider = draft("Batch Beta Metals");
    wider["distribution"] =
        json!({"scope": "groups", "groups": ["eu"], "sensitivity": "restricted"});
    let w = submit_batch(
        ed,
        "acme-list",
        false,
        &[
            json!({"source_id": "r2", "entry": wider}),
            row("r4", "Batch Delta Freight"),
            row("r2", "Batch Beta Metals Renamed"),
        ],
    )
    .await;
    let ws = &w["summary"];
    assert_eq!(ws["distribution_changed"], 1, "{w}");
    let change = &ws["distribution_changes"][0];
    assert_eq!(change["before"]["scope"], "federation", "{w}");
    assert_eq!(change["after"]["scope"], "groups", "{w}");
    assert_eq!(ws["changed_parts"]["distribution"], 1, "{w}");
    assert_eq!(ws["failed"], 1, "{w}");
    assert!(
        ws["sample_failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("first in row 1"),
        "{w}"
    );
    // Every row is readable by the approver, not only the samples.
    let page: Value = ap
        .get_json(&format!(
            "/v1/import-batches/{}/rows?limit=2",
            w["batch_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(page["rows"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["rows"][0]["entry"]["distribution"]["scope"], "groups");
    // A plan is written only as approved: a write in between makes the release stop
    // before the changed row, never write over it.
    let lifecycle = &c.node(0).services.lifecycle;
    let items = vec![wlnode_runtime::entries::ImportItem {
        source_id: "r4".into(),
        draft: serde_json::from_value(draft("Batch Delta Freight")).unwrap(),
    }];
    let planned: Vec<_> = lifecycle
        .plan_import("acme-list", &items)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    lifecycle.import("acme-list", items.clone()).await.unwrap();
    let n = c.records(0).await.len();
    let e = lifecycle
        .import_expecting(
            "acme-list",
            vec![wlnode_runtime::entries::ImportItem {
                source_id: "r4".into(),
                draft: serde_json::from_value(draft("Batch Delta Freight Changed")).unwrap(),
            }],
            &planned,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            wlnode_runtime::entries::LifecycleError::PlanChanged { .. }
        ),
        "{e}"
    );
    assert_eq!(c.records(0).await.len(), n, "nothing written");
    // So the reviewed batch W is stale now (r4 exists): approval is refused and the
    // summary recomputed.
    let e = approve_batch(ap, &w, ws["plan_digest"].as_str().unwrap())
        .await
        .unwrap_err();
    assert_eq!(api_status(e), (409, "stale".into()));
    // Every step is attributed: open, submit, approve, released, reject.
    let acted: Vec<String> = c
        .node(0)
        .services
        .store
        .call(|s| s.audit_events(0, s.audit_size()?))
        .await
        .unwrap()
        .iter()
        .map(|b| wlnode_audit::event::Event::decode(b).unwrap())
        .filter_map(|e| match e.kind {
            wlnode_audit::event::EventKind::Acted { action, .. } => Some(action),
            _ => None,
        })
        .collect();
    for a in [
        "import_batch_open",
        "import_batch_submit",
        "import_batch_approve",
        "import_batch_released",
        "import_batch_reject",
    ] {
        assert!(acted.iter().any(|x| x == a), "no {a} in {acted:?}");
    }
}
