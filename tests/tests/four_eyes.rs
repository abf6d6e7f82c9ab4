//! Four-eyes release (issue 22 item 2) on a real two-node federation: with `[release]
//! require_approval = true` on A, an editor's write is a draft that nothing signs or
//! sends; its author cannot approve it; an approver releases it and B receives exactly
//! that record; a rejected draft leaves no record anywhere; imports are refused.
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
