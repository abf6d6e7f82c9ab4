//! Screening wired into a real node: the HTTP endpoints (single, JSON body, batch with
//! bad rows, typed errors), the live index following local writes (amend, withdraw)
//! and rebuilt from the store on restart, the latency metric, and the `wlnode screen`
//! and `wlnode bench screen` commands of the real binary against an in-process node.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};
use wlnode_client::ClientError;
use wlnode_screen::request::ScreenRequest;

fn person(name: &str, country: &str, dob: &str, passport: &str) -> Value {
    json!({
        "subject": {
            "kind": "person",
            "name": name,
            "country": country,
            "birth_date": dob,
            "identifiers": [{"type": "passport", "value": passport}]
        },
        "reason": "diversion-risk",
        "categories": ["3A001"],
        "distribution": {"scope": "federation", "sensitivity": "restricted"}
    })
}

fn req(name: &str) -> ScreenRequest {
    ScreenRequest {
        name: name.into(),
        ..ScreenRequest::default()
    }
}

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

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["entry_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every result's explanation is present and its score is the result's score, and the
/// documented formula reproduces it.
fn check_explanations(v: &Value) {
    for r in v["results"].as_array().unwrap() {
        let e = &r["explanation"];
        assert!(e.is_object(), "result without explanation: {r}");
        let score = r["score"].as_f64().unwrap();
        assert!((e["score"].as_f64().unwrap() - score).abs() < 1e-9);
        let adj: f64 = e["adjustments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["delta"].as_f64().unwrap())
            .sum();
        let recomputed = (e["matched_similarity"].as_f64().unwrap() + adj).clamp(0.0, 1.0);
        assert!(
            (recomputed - score).abs() < 1e-6,
            "score {score} but explanation adds up to {recomputed}: {e}"
        );
        assert!(
            !e["token_matches"].as_array().unwrap().is_empty()
                || e["adjustments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["kind"] == "identifier_match"),
            "no matched tokens and no identifier match: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_over_http_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let acme = n
        .client
        .add(&common::draft("Acme Trading FZE"))
        .await
        .unwrap();
    let rashid = n
        .client
        .add(&person(
            "Mohammad al-Rashid",
            "AE",
            "1970-05-02",
            "P1234567",
        ))
        .await
        .unwrap();
    let acme_id = acme["entry_id"].as_str().unwrap();
    let rashid_id = rashid["entry_id"].as_str().unwrap();

    // GET: a legal-form and abbreviation variant; screenable right after the write
    let v = n.client.screen(&req("ACME TRDG. F.Z.E.")).await.unwrap();
    assert_eq!(ids(&v)[0], acme_id, "{v}");
    let r = &v["results"][0];
    assert_eq!(r["origin"], "AA-EXPORT");
    assert!(r["score"].as_f64().unwrap() >= 0.8);
    assert!(
        r["matched_name"]
            .as_str()
            .unwrap()
            .starts_with("Acme Trading")
    );
    check_explanations(&v);

    // transliteration, token order, country and date of birth
    let mut q = req("РАШИД Мухаммад");
    q.kind = Some("person".into());
    q.country = Some("ae".into());
    q.dob = Some("1970".into());
    let v = n.client.screen(&q).await.unwrap();
    assert_eq!(ids(&v), vec![rashid_id.to_owned()], "{v}");
    check_explanations(&v);
    let adj = v["results"][0]["explanation"]["adjustments"].to_string();
    assert!(
        adj.contains("country_agrees") && adj.contains("birth_date_agrees"),
        "{adj}"
    );
    // kind filter
    let mut q = req("Mohammad al-Rashid");
    q.kind = Some("organization".into());
    assert!(ids(&n.client.screen(&q).await.unwrap()).is_empty());
    // an identifier match is decisive even for another spelling
    let mut q = req("M. Rasheed");
    q.id = Some("passport:p 123-4567".into());
    let v = n.client.screen(&q).await.unwrap();
    assert_eq!(ids(&v)[0], rashid_id, "{v}");
    check_explanations(&v);

    // POST with a JSON body
    let v: Value = n
        .client
        .post_json(
            "/v1/screen",
            &json!({"name": "AL RASHID, MOHAMMED", "kind": "person", "limit": 5}),
        )
        .await
        .unwrap();
    assert_eq!(ids(&v)[0], rashid_id, "{v}");

    // typed errors
    let (s, code, field) = api_err(n.client.screen(&req("   ")).await.unwrap_err());
    assert_eq!(
        (s, code.as_str(), field.as_deref()),
        (400, "empty_query", Some("q"))
    );
    let (s, code, _) = api_err(n.client.screen(&req(&"x".repeat(513))).await.unwrap_err());
    assert_eq!((s, code.as_str()), (400, "query_too_long"));
    assert!(n.client.screen(&req(&"é".repeat(512))).await.is_ok());
    let (s, code, _) = api_err(n.client.get_json::<Value>("/v1/screen").await.unwrap_err());
    assert_eq!((s, code.as_str()), (400, "empty_query"));
    let (s, code, field) = api_err(
        n.client
            .get_json::<Value>("/v1/screen?q=acme&colour=red")
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (s, code.as_str(), field.as_deref()),
        (400, "invalid_field", Some("colour"))
    );
    for (k, v) in [
        ("country", "Ruritania"),
        ("dob", "May 1970"),
        ("id", "nocolon"),
        ("kind", "ship"),
        ("limit", "0"),
        ("min_score", "2"),
    ] {
        let (s, code, field) = api_err(
            n.client
                .get_json::<Value>(&format!("/v1/screen?q=acme&{k}={v}"))
                .await
                .unwrap_err(),
        );
        assert_eq!(
            (s, code.as_str(), field.as_deref()),
            (400, "invalid_field", Some(k))
        );
    }
    let (s, code, _) = api_err(
        n.client
            .post_json::<_, Value>("/v1/screen", &json!({"name": ""}))
            .await
            .unwrap_err(),
    );
    assert_eq!((s, code.as_str()), (400, "empty_query"));
    let (s, _, field) = api_err(
        n.client
            .post_json::<_, Value>("/v1/screen", &json!({"name": "acme", "limit": "ten"}))
            .await
            .unwrap_err(),
    );
    assert_eq!((s, field.as_deref()), (400, Some("limit")));

    // the latency histogram counts the searches
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = wlnode_config::token::read_token(
        &wlnode_config::Config::load(&n.config)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();
    let text = http
        .get(format!("http://{}/metrics", n.node.api_addr))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = text
        .lines()
        .find(|l| l.starts_with("wlnode_screen_latency_seconds_count"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(count >= 5.0, "screen latency count {count} in:\n{text}");
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_follows_amend_and_withdraw_and_is_rebuilt_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let w = n
        .client
        .add(&common::draft("Borealis Avionics GmbH"))
        .await
        .unwrap();
    let id = w["entry_id"].as_str().unwrap().to_owned();
    let kept = n
        .client
        .add(&common::draft("Kestrel Marine Services LLC"))
        .await
        .unwrap();
    assert_eq!(
        ids(&n.client.screen(&req("Borealis Avionics")).await.unwrap()),
        vec![id.clone()]
    );

    // amend: the old name stops matching, the new one matches
    n.client
        .amend(&id, &common::draft("Polaris Aerospace GmbH"))
        .await
        .unwrap();
    assert!(ids(&n.client.screen(&req("Borealis Avionics")).await.unwrap()).is_empty());
    assert_eq!(
        ids(&n.client.screen(&req("Polaris Aerospace")).await.unwrap()),
        vec![id.clone()]
    );

    // withdraw: excluded by default, included (flagged) on request
    n.client.withdraw(&id, "delisted").await.unwrap();
    assert!(ids(&n.client.screen(&req("Polaris Aerospace")).await.unwrap()).is_empty());
    let mut q = req("Polaris Aerospace");
    q.include_withdrawn = Some(true);
    let v = n.client.screen(&q).await.unwrap();
    assert_eq!(ids(&v), vec![id.clone()]);
    assert_eq!(v["results"][0]["withdrawn"], true);

    // restart: the index is rebuilt from the store, withdrawn flag included
    let config = n.config.clone();
    n.node.stop().await;
    let n = common::start(&fed, 0).await;
    assert_eq!(n.config, config);
    assert_eq!(
        ids(&n
            .client
            .screen(&req("Kestrel Marine Services"))
            .await
            .unwrap()),
        vec![kept["entry_id"].as_str().unwrap().to_owned()]
    );
    assert!(ids(&n.client.screen(&req("Polaris Aerospace")).await.unwrap()).is_empty());
    assert_eq!(ids(&n.client.screen(&q).await.unwrap()), vec![id]);
    assert_eq!(n.node.services.screen.len(), 2);
    n.node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_screens_good_rows_and_reports_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let acme = n
        .client
        .add(&common::draft("Acme Trading FZE"))
        .await
        .unwrap();
    let acme_id = acme["entry_id"].as_str().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = wlnode_config::token::read_token(
        &wlnode_config::Config::load(&n.config)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();
    let url = format!("http://{}/v1/screen/batch", n.node.api_addr);

    // CSV: line 3 has too many fields, line 4 an empty name, line 5 a bad country
    let csv = "ref,name,country\nP1,ACME TRDG FZE,AE\nP2,a,b,c\nP3,,AE\nP4,Acme Trading,Ruritania\nP5,Nobody Unlisted Whatsoever,\n";
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["screened"], 2, "{v}");
    assert_eq!(v["failed"], 3, "{v}");
    let rows: Vec<u64> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![3, 4, 5], "{v}");
    assert_eq!(v["errors"][1]["field"], "name");
    assert_eq!(v["errors"][2]["field"], "country");
    assert_eq!(v["results"][0]["row"], 2);
    assert_eq!(v["results"][0]["reference"], "P1");
    assert_eq!(v["results"][0]["results"][0]["entry_id"], acme_id);
    assert_eq!(v["results"][1]["row"], 6);
    assert!(v["results"][1]["results"].as_array().unwrap().is_empty());

    // JSON list: element 2 has a wrongly typed field, element 3 is oversized
    let body = json!([
        {"name": "Acme Trading", "ref": "J1"},
        {"name": "Acme", "limit": "many"},
        {"name": "y".repeat(600)},
        {"q": "acme trading fze", "kind": "organization"}
    ]);
    let r = http
        .post(format!("{url}?limit=3"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["screened"], 2, "{v}");
    let rows: Vec<u64> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, vec![2, 3], "{v}");
    assert_eq!(v["errors"][0]["field"], "limit");
    assert_eq!(v["results"][0]["reference"], "J1");
    assert_eq!(v["results"][1]["results"][0]["entry_id"], acme_id);

    // a CSV without a name column, and a body that is not a list
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body("who,country\nx,AE\n")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["row"], 1);
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    n.node.stop().await;
}

fn wlnode() -> Command {
    Command::cargo_bin("wlnode").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_screen_single_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let acme = n
        .client
        .add(&common::draft("Acme Trading FZE"))
        .await
        .unwrap();
    let acme_id = acme["entry_id"].as_str().unwrap().to_owned();
    let rashid = n
        .client
        .add(&person(
            "Mohammad al-Rashid",
            "AE",
            "1970-05-02",
            "P1234567",
        ))
        .await
        .unwrap();
    let rashid_id = rashid["entry_id"].as_str().unwrap().to_owned();
    let config = n.config.clone();
    let run = move |args: Vec<String>| {
        let config = config.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                wlnode()
                    .arg("screen")
                    .args(&args)
                    .arg("--config")
                    .arg(&config)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    // --json
    let out = run(s(&[
        "AL RASHID, MOHAMMED",
        "--kind",
        "person",
        "--country",
        "AE",
        "--dob",
        "1970",
        "--json",
    ]))
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids(&v), vec![rashid_id.clone()]);
    check_explanations(&v);

    // table
    let out = run(s(&["Acme Trdg", "--limit", "3"])).await;
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("case "), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("SCORE"),
        "{table}"
    );
    assert!(
        table.contains(&acme_id) && table.contains("AA-EXPORT"),
        "{table}"
    );

    // an empty name: one-line error, non-zero exit
    let out = run(s(&[""])).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("empty"), "{err}");

    // --batch with bad rows and --out
    let parties = dir.path().join("parties.csv");
    std::fs::write(
        &parties,
        "ref,name,kind,country,dob,id\n\
         S1,ACME TRDG. F.Z.E.,,AE,,\n\
         S2,broken,row\n\
         S3,Muhammed Rashid,person,,1970,\n\
         S4,,,,,\n\
         S5,Nobody Unlisted Whatsoever,,,,\n\
         S6,Someone,person,,,passport:P1234567\n",
    )
    .unwrap();
    let results = dir.path().join("results.csv");
    let out = run(vec![
        "--batch".into(),
        parties.display().to_string(),
        "--out".into(),
        results.display().to_string(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "bad rows make the exit code non-zero"
    );
    assert!(stderr.contains("line 3:"), "{stderr}");
    assert!(stderr.contains("line 5:"), "{stderr}");
    assert!(
        stderr.contains("4 parties screened, 2 rows refused"),
        "{stderr}"
    );
    let mut rdr = csv::Reader::from_path(&results).unwrap();
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "line");
    assert_eq!(&headers[5], "best_entry_id");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6, "one output row per party");
    let line = |r: &csv::StringRecord| r[0].parse::<usize>().unwrap();
    assert_eq!(
        rows.iter().map(line).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6, 7]
    );
    assert_eq!(&rows[0][1], "S1");
    assert_eq!(&rows[0][5], acme_id.as_str());
    assert!(rows[0][4].parse::<f64>().unwrap() >= 0.8);
    assert!(!rows[1][9].is_empty(), "line 3 carries its error");
    assert_eq!(&rows[2][5], rashid_id.as_str());
    assert!(!rows[3][9].is_empty(), "line 5 carries its error");
    assert_eq!(&rows[4][3], "0");
    assert_eq!(
        &rows[5][5],
        rashid_id.as_str(),
        "identifier match is decisive"
    );
    assert!(rows[2][8].contains(&format!("{rashid_id}@AA-EXPORT")));

    // Issue 19 item 6: cells that a spreadsheet would run as formulas (CSV
    // injection) come out as text.
    let hostile = dir.path().join("hostile.csv");
    std::fs::write(
        &hostile,
        "ref,name\n\
         =1+2,@SUM(1+1) Trading\n\
         +S2,-2+3 Holdings\n",
    )
    .unwrap();
    let hostile_out = dir.path().join("hostile-results.csv");
    let out = run(vec![
        "--batch".into(),
        hostile.display().to_string(),
        "--out".into(),
        hostile_out.display().to_string(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&hostile_out)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(&rows[0][1], "'=1+2");
    assert_eq!(&rows[0][2], "'@SUM(1+1) Trading");
    assert_eq!(&rows[1][1], "'+S2");
    assert_eq!(&rows[1][2], "'-2+3 Holdings");
    for r in &rows {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "a formula cell: {cell:?}"
            );
        }
    }

    // --batch --json: the same parties as a JSON list on stdout
    let out = run(vec![
        "--batch".into(),
        parties.display().to_string(),
        "--json".into(),
    ])
    .await;
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
    assert_eq!(v[0]["ref"], "S1");
    assert_eq!(v[0]["matches"][0]["entry_id"], acme_id.as_str());
    assert!(v[0]["matches"][0]["explanation"].is_object());
    assert!(!v[1]["error"].as_str().unwrap().is_empty());

    // a file without a name column is refused as a whole
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "who\nx\n").unwrap();
    let out = run(vec!["--batch".into(), bad.display().to_string()]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
    n.node.stop().await;
}

#[test]
fn bench_screen_prints_json() {
    let out = wlnode()
        .args([
            "bench",
            "screen",
            "--entries",
            "3000",
            "--positives",
            "60",
            "--negatives",
            "20",
            "--baseline",
            "10",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["options"]["entries"], 3000);
    assert!(v["overall"]["recall_at_10"].as_f64().unwrap() > 0.5, "{v}");
    assert!(v["latency"].is_object() && v["index"].is_object() && v["baseline"].is_object());
}
