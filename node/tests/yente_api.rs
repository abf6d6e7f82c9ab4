//! The yente-compatible API (`/match`, `/search`, `/entities`, `/algorithms`) and
//! `wlnode export --format ftm` against a real node over real HTTP, and both checked by
//! the real `followthemoney` Python package (tests/interop/ftm_check.py, in the
//! virtualenv tests/interop/setup-venv.sh makes; `.ci/run` makes it first).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

/// The interop virtualenv's python (made on first use; `WLNODE_FTM_PYTHON` overrides).
fn ftm_python() -> PathBuf {
    if let Ok(p) = std::env::var("WLNODE_FTM_PYTHON") {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new("bash")
        .arg(root.join("tests/interop/setup-venv.sh"))
        .output()
        .expect("run tests/interop/setup-venv.sh");
    assert!(
        out.status.success(),
        "tests/interop/setup-venv.sh failed (it installs followthemoney from PyPI):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs the FtM checker; returns its summary line.
fn ftm_check(mode: &str, file: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(ftm_python())
        .arg(root.join("tests/interop/ftm_check.py"))
        .arg(mode)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "followthemoney rejected the {mode} output:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().to_owned()
}

struct Http {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Http {
    async fn post(&self, path: &str, query: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query)
            .json(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

fn entry(kind: &str, name: &str, extra: Value, distribution: Value, reason: &str) -> Value {
    let mut subject = json!({"kind": kind, "name": name});
    for (k, v) in extra.as_object().unwrap() {
        subject[k] = v.clone();
    }
    json!({
        "subject": subject,
        "reason": reason,
        "categories": ["3A001"],
        "legal_basis": "Reg. (EU) 2021/821 Art. 4",
        "items": "frequency changers",
        "remarks": "Front for procurement",
        "distribution": distribution,
    })
}

fn federation_wide() -> Value {
    json!({"scope": "federation", "sensitivity": "restricted"})
}

fn ids(v: &Value) -> Vec<&str> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yente_api_and_ftm_export_pass_followthemoney() {
    let dir = tempfile::tempdir().unwrap();
    let fed = common::federation(dir.path());
    let n = common::start(&fed, 0).await;
    let c = &n.client;

    // Linked parties, as FtM allows them: a person cannot be owned and a vessel cannot
    // own, so those links become UnknownLinks; the others are Ownerships.
    let rashid = c
        .add(&entry(
            "person",
            "Mohammad al-Rashid",
            json!({"country": "AE", "nationality": "SY", "birth_date": "1970-05-02",
                   "addresses": ["PO Box 1, Dubai"],
                   "identifiers": [{"type": "passport", "value": "P1234567"},
                                   {"type": "national_id", "value": "784-1970"},
                                   {"type": "owned_by", "value": "Shadow Family Trust"}]}),
            federation_wide(),
            "denial",
        ))
        .await
        .unwrap();
    let rashid_id = format!("wl-aa-export-{}", rashid["entry_id"].as_str().unwrap());
    let vessel = c
        .add(&entry(
            "vessel",
            "Ocean Star",
            json!({"country": "PA", "identifiers": [{"type": "imo", "value": "9187629"},
                                                    {"type": "mmsi", "value": "352001"},
                                                    {"type": "owner_of", "value": "Harbour Barge 7"}]}),
            json!({"scope": "groups", "groups": ["eu"], "sensitivity": "restricted"}),
            "sanctions",
        ))
        .await
        .unwrap();
    let vessel_id = format!("wl-aa-export-{}", vessel["entry_id"].as_str().unwrap());
    let acme = c
        .add(&entry(
            "organization",
            "Acme Trading FZE",
            json!({"aliases": ["Acme General Trading"], "country": "AE",
                   "identifiers": [{"type": "registration", "value": "R-1"},
                                   {"type": "owned_by", "value": rashid["entry_id"]},
                                   {"type": "front_for", "value": "Gulf Shadow Holdings"},
                                   {"type": "owner_of", "value": format!("AA-EXPORT/{}", vessel["entry_id"].as_str().unwrap())},
                                   {"type": "owner_of", "value": "Acme Shipping Sub Ltd"}]}),
            federation_wide(),
            "diversion-risk",
        ))
        .await
        .unwrap();
    let acme_id = format!("wl-aa-export-{}", acme["entry_id"].as_str().unwrap());
    let gone = c
        .add(&entry(
            "organization",
            "Acme Trading Limited",
            json!({"country": "GB"}),
            federation_wide(),
            "other",
        ))
        .await
        .unwrap();
    c.withdraw(gone["entry_id"].as_str().unwrap(), "delisted on appeal")
        .await
        .unwrap();
    let gone_id = format!("wl-aa-export-{}", gone["entry_id"].as_str().unwrap());

    let token = wlnode_config::token::read_token(
        &wlnode_config::Config::load(&n.config)
            .unwrap()
            .raw
            .api
            .token_file,
    )
    .unwrap();
    let h = Http {
        base: format!("http://{}", n.node.api_addr),
        token: token.clone(),
        http: reqwest::Client::new(),
    };

    // ---- /match: a yente-shaped batch, with names in two scripts and an identifier
    let batch = json!({"queries": {
        "p": {"schema": "Person", "properties": {
            "name": ["Muhammad Al Rashid", "Мохаммад Аль-Рашид"],
            "birthDate": ["1970-05-02"], "nationality": ["Syria"]}},
        "c": {"schema": "Company", "properties": {"name": "ACME TRDG F.Z.E.", "jurisdiction": ["ae"]}},
        "v": {"schema": "Vessel", "properties": {"name": ["Ocean Star"], "imoNumber": ["IMO 9187629"]}},
        "none": {"schema": "Person", "properties": {"name": ["Zebulon Quartermaine"]}}
    }});
    let (status, v) = h
        .post("/match/default", &[("algorithm", "best")], &batch)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["limit"], 5);
    assert_eq!(v["matcher"], "wlnode-v1");
    let p = &v["responses"]["p"];
    assert_eq!(p["status"], 200);
    assert_eq!(ids(p)[0], rashid_id, "{p}");
    let top = &p["results"][0];
    assert_eq!(top["match"], true);
    assert_eq!(top["schema"], "Person");
    assert_eq!(top["caption"], "Mohammad al-Rashid");
    assert_eq!(top["properties"]["passportNumber"], json!(["P1234567"]));
    assert_eq!(top["properties"]["nationality"], json!(["sy"]));
    assert_eq!(top["properties"]["topics"], json!(["export.control"]));
    assert_eq!(top["properties"]["publisher"], json!(["AA-EXPORT"]));
    assert_eq!(top["datasets"], json!(["aa-export"]));
    assert!(top["features"]["name_similarity"].as_f64().unwrap() > 0.8);
    assert!(
        top["features"]["birth_date_agrees"].as_f64().unwrap() > 0.0,
        "{top}"
    );
    assert!(top["explanations"]["name_similarity"]["detail"].is_string());
    assert!(p["total"]["value"].as_u64().unwrap() >= 1);
    // the echo shows what was understood: the country as its code
    assert_eq!(p["query"]["properties"]["nationality"], json!(["sy"]));
    assert_eq!(ids(&v["responses"]["c"])[0], acme_id);
    assert_eq!(ids(&v["responses"]["v"])[0], vessel_id);
    let vtop = &v["responses"]["v"]["results"][0];
    assert_eq!(vtop["properties"]["imoNumber"], json!(["9187629"]));
    assert_eq!(vtop["datasets"], json!(["aa-export", "group_eu"]));
    assert!(
        vtop["features"]["identifier_match"].as_f64().is_some(),
        "{vtop}"
    );
    assert_eq!(v["responses"]["none"]["results"], json!([]));
    assert_eq!(v["responses"]["none"]["total"]["value"], 0);
    // withdrawn entries are not matched
    let (_, w) = h
        .post(
            "/match/default",
            &[("threshold", "0.5")],
            &json!({"queries": {"x": {"schema": "Company", "properties": {"name": ["Acme Trading Limited"]}}}}),
        )
        .await;
    assert!(
        !ids(&w["responses"]["x"]).contains(&gone_id.as_str()),
        "{w}"
    );

    // threshold: `match` follows it; results below it are not returned
    let (_, low) = h
        .post(
            "/match/default",
            &[("threshold", "0.3"), ("limit", "10")],
            &json!({"queries": {"q": {"schema": "LegalEntity", "properties": {"name": ["Acme"]}}}}),
        )
        .await;
    let results = low["responses"]["q"]["results"].as_array().unwrap();
    assert!(!results.is_empty(), "{low}");
    for r in results {
        let s = r["score"].as_f64().unwrap();
        assert!(s >= 0.3);
        assert_eq!(r["match"], s >= 0.3);
    }
    let (_, high) = h
        .post(
            "/match/default",
            &[("threshold", "0.99")],
            &json!({"queries": {"q": {"schema": "LegalEntity", "properties": {"name": ["Acme"]}}}}),
        )
        .await;
    assert_eq!(high["responses"]["q"]["results"], json!([]), "{high}");
    // limit
    let (_, one) = h
        .post(
            "/match/default",
            &[("threshold", "0.3"), ("limit", "1")],
            &json!({"queries": {"q": {"schema": "LegalEntity", "properties": {"name": ["Acme"]}}}}),
        )
        .await;
    assert_eq!(
        one["responses"]["q"]["results"].as_array().unwrap().len(),
        1
    );
    assert_eq!(one["limit"], 1);
    // exclude_entity_ids: a human already cleared the top hit
    let (_, ex) = h
        .post(
            "/match/default",
            &[("exclude_entity_ids", rashid_id.as_str())],
            &json!({"queries": {"p": batch["queries"]["p"]}}),
        )
        .await;
    assert!(
        !ids(&ex["responses"]["p"]).contains(&rashid_id.as_str()),
        "{ex}"
    );
    // include_dataset and dataset paths: the vessel is only in group_eu
    let (_, g) = h
        .post(
            "/match/default",
            &[("include_dataset", "group_eu"), ("threshold", "0.3")],
            &json!({"queries": {"a": {"schema": "LegalEntity", "properties": {"name": ["Acme Trading"]}},
                                "v": {"schema": "Vessel", "properties": {"name": ["Ocean Star"]}}}}),
        )
        .await;
    assert_eq!(g["responses"]["a"]["results"], json!([]), "{g}");
    assert_eq!(ids(&g["responses"]["v"]), vec![vessel_id.as_str()]);
    let (status, g) = h
        .post(
            "/match/group_eu",
            &[],
            &json!({"queries": {"v": {"schema": "Vessel", "properties": {"name": ["Ocean Star"]}}}}),
        )
        .await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(ids(&g["responses"]["v"]), vec![vessel_id.as_str()]);
    let (status, _) = h
        .post(
            "/match/bb-customs",
            &[],
            &json!({"queries": {"v": batch["queries"]["v"]}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, e) = h.post("/match/us_ofac_sdn", &[], &batch).await;
    assert_eq!(status, 404, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("no such dataset"));

    // refusals, each naming what is wrong
    for (query, body, field) in [
        (vec![("algorithm", "logic-v2")], batch.clone(), "algorithm"),
        (vec![("limit", "0")], batch.clone(), "limit"),
        (vec![("threshold", "1.5")], batch.clone(), "threshold"),
        (
            vec![("changed_since", "yesterday")],
            batch.clone(),
            "changed_since",
        ),
        (
            vec![],
            json!({"queries": batch["queries"], "weights": {"name_literal": 0.8}}),
            "weights",
        ),
        (
            vec![],
            json!({"queries": {"a": {"schema": "Address", "properties": {"name": "x"}}}}),
            "queries.a.schema",
        ),
        (
            vec![],
            json!({"queries": {"a": {"schema": "Person", "properties": {"birthDate": "1970"}}}}),
            "queries.a.properties.name",
        ),
        (
            vec![],
            json!({"queries": {"a": {"schema": "Person", "properties": {"alias": (0..40).map(|i| format!("n{i}")).collect::<Vec<_>>()}}}}),
            "queries.a.properties.alias",
        ),
        (
            vec![],
            json!({"queries": {"a": {"schema": "Person", "properties": {"alias": (0..9).map(|i| format!("n{i}")).collect::<Vec<_>>()}}}}),
            "queries.a.properties.alias",
        ),
        (
            vec![("limit", "500")],
            json!({"queries": (0..21).map(|i| (format!("q{i}"), json!({"schema": "Person", "properties": {"name": "A B"}}))).collect::<serde_json::Map<_, _>>()}),
            "limit",
        ),
    ] {
        let (status, e) = h.post("/match/default", &query, &body).await;
        assert_eq!(status, 400, "{query:?} {body}: {e}");
        if !field.is_empty() {
            assert_eq!(e["error"]["field"], field, "{e}");
        }
        assert!(e["detail"].is_string());
    }
    let many: serde_json::Map<String, Value> = (0..=100)
        .map(|i| {
            (
                format!("q{i}"),
                json!({"schema": "Person", "properties": {"name": "A B"}}),
            )
        })
        .collect();
    let (status, e) = h
        .post("/match/default", &[], &json!({"queries": many}))
        .await;
    assert_eq!(status, 400);
    assert!(
        e["detail"].as_str().unwrap().contains("Too many queries"),
        "{e}"
    );
    let (status, _) = h.post("/match/default", &[], &json!({"queries": {}})).await;
    assert_eq!(status, 400);
    // a body far beyond any real batch is refused before it is parsed
    let r = h
        .http
        .post(format!("{}/match/default", h.base))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);

    // yente's other filters: topics, changed_since, schema ranges; and the keys of a
    // returned entity sent back as a query are ignored, as yente ignores them
    let topical = json!({"queries": {
        "v": {"schema": "Thing", "properties": {"name": ["Ocean Star"]}},
        "c": {"schema": "LegalEntity", "properties": {"name": ["Acme Trading FZE"]}, "caption": "x", "datasets": ["y"], "target": true}
    }, "some_client_key": 1});
    let (status, t) = h
        .post("/match/default", &[("topics", "sanction")], &topical)
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(ids(&t["responses"]["v"]), vec![vessel_id.as_str()]);
    assert_eq!(t["responses"]["c"]["results"], json!([]));
    let (_, t) = h.post("/match/default", &[], &topical).await;
    assert_eq!(ids(&t["responses"]["c"])[0], acme_id);
    let (_, t) = h
        .post(
            "/match/default",
            &[("changed_since", "2999-01-01")],
            &topical,
        )
        .await;
    assert_eq!(t["responses"]["v"]["results"], json!([]), "{t}");
    let (_, t) = h
        .post(
            "/match/default",
            &[("changed_since", "2000-01-01")],
            &topical,
        )
        .await;
    assert_eq!(ids(&t["responses"]["v"]), vec![vessel_id.as_str()]);
    // a LegalEntity query never answers with a vessel; excluding Asset drops vessels
    let (_, t) = h
        .post(
            "/match/default",
            &[("threshold", "0.5")],
            &json!({"queries": {"v": {"schema": "LegalEntity", "properties": {"name": ["Ocean Star"]}}}}),
        )
        .await;
    assert_eq!(t["responses"]["v"]["results"], json!([]), "{t}");
    let (_, t) = h
        .post("/match/default", &[("exclude_schema", "Asset")], &topical)
        .await;
    assert_eq!(t["responses"]["v"]["results"], json!([]), "{t}");

    // auth: no token is 401; yente's `ApiKey` scheme works like Bearer
    let r = h
        .http
        .post(format!("{}/match/default", h.base))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = h
        .http
        .post(format!("{}/match/default", h.base))
        .header("Authorization", format!("ApiKey {token}"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = h
        .http
        .post(format!("{}/match/default", h.base))
        .header("Authorization", "ApiKey wrong")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // ---- /search
    let (status, s) = h.get("/search/default", &[("q", "acme trading")]).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(ids(&s)[0], acme_id, "{s}");
    assert!(!ids(&s).contains(&gone_id.as_str()));
    assert_eq!(s["offset"], 0);
    assert_eq!(s["limit"], 10);
    let (_, s) = h
        .get(
            "/search/default",
            &[("q", "acme trading"), ("schema", "Vessel")],
        )
        .await;
    assert_eq!(s["results"], json!([]), "{s}");
    let (_, s) = h
        .get(
            "/search/default",
            &[("q", "ocean star"), ("countries", "pa")],
        )
        .await;
    assert_eq!(ids(&s), vec![vessel_id.as_str()]);
    let (_, s) = h
        .get(
            "/search/default",
            &[("q", "ocean star"), ("countries", "de")],
        )
        .await;
    assert_eq!(s["results"], json!([]));
    let (status, e) = h.get("/search/default", &[("q", "  ")]).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"]["field"], "q");
    let (status, _) = h
        .get("/search/default", &[("q", "x"), ("sort", "name")])
        .await;
    assert_eq!(status, 400);

    // ---- /entities: the subject with its sanction and relationships nested
    let (status, ent) = h.get(&format!("/entities/{acme_id}"), &[]).await;
    assert_eq!(status, 200, "{ent}");
    assert_eq!(ent["id"], acme_id);
    let sanction = &ent["properties"]["sanctions"][0];
    assert_eq!(sanction["schema"], "Sanction");
    assert_eq!(sanction["properties"]["authority"], json!(["AA-EXPORT"]));
    assert_eq!(
        sanction["properties"]["program"],
        json!(["Reg. (EU) 2021/821 Art. 4"])
    );
    let owned = &ent["properties"]["ownershipAsset"][0];
    assert_eq!(owned["schema"], "Ownership");
    assert_eq!(owned["properties"]["owner"], json!([rashid_id]));
    let owns = ent["properties"]["ownershipOwner"].as_array().unwrap();
    assert_eq!(owns.len(), 2, "{ent}");
    assert_eq!(owns[0]["properties"]["asset"], json!([vessel_id]));
    assert_eq!(owns[1]["properties"]["asset"][0]["schema"], "Company");
    let front = &ent["properties"]["unknownLinkTo"][0];
    assert_eq!(front["properties"]["role"], json!(["front company for"]));
    assert_eq!(
        front["properties"]["object"][0]["caption"],
        "Gulf Shadow Holdings"
    );
    // link identifiers are not identifiers of the subject
    assert!(ent["properties"].get("idNumber").is_none(), "{ent}");
    let (status, s) = h.get(&format!("/entities/{acme_id}-sanction"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(s["schema"], "Sanction");
    let (status, gone_e) = h.get(&format!("/entities/{gone_id}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(gone_e["target"], false);
    assert_eq!(
        gone_e["properties"]["sanctions"][0]["properties"]["status"],
        json!(["withdrawn"])
    );
    let (status, flat) = h
        .get(&format!("/entities/{acme_id}"), &[("nested", "false")])
        .await;
    assert_eq!(status, 200);
    assert!(flat["properties"].get("sanctions").is_none());
    for missing in [
        "wl-aa-export-00000000000000000000000000000000".to_owned(),
        format!("{acme_id}-link-9"),
        "NK-abc".to_owned(),
    ] {
        let (status, _) = h.get(&format!("/entities/{missing}"), &[]).await;
        assert_eq!(status, 404, "{missing}");
    }
    let (status, a) = h.get("/algorithms", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(a["best"], "wlnode-v1");
    let (_, doc) = h.get("/v1/openapi.json", &[]).await;
    for (path, method) in [
        ("/match/{dataset}", "post"),
        ("/search/{dataset}", "get"),
        ("/entities/{id}", "get"),
        ("/algorithms", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{path} undocumented"
        );
    }

    // ---- followthemoney checks the API as a yente client sees it
    let plan = json!({
        "url": h.base,
        "token": token,
        "match": [
            {"key": "p", "query": batch["queries"]["p"], "expect_top": rashid_id},
            {"key": "c", "query": batch["queries"]["c"], "expect_top": acme_id},
            {"key": "v", "query": batch["queries"]["v"], "expect_top": vessel_id},
        ],
        "search": [{"q": "Acme Trading", "expect_top": acme_id}],
        "entities": [acme_id, rashid_id, vessel_id, gone_id],
    });
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();
    let api_summary = ftm_check("api", &plan_file);
    assert!(api_summary.starts_with("ok api: 3 match"), "{api_summary}");

    // ---- export --format ftm, from the real binary, checked the same way
    let out_file = dir.path().join("export.ftm.json");
    let status = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["export", "--format", "ftm", "--config"])
        .arg(&n.config)
        .arg("--out")
        .arg(&out_file)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out_file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // four subjects and their sanctions; six links; four parties not held here (the
    // owned one a Company, the others LegalEntities)
    assert_eq!(lines.len(), 18, "{text}");
    let by_schema = |s: &str| lines.iter().filter(|e| e["schema"] == s).count();
    assert_eq!(by_schema("Sanction"), 4);
    assert_eq!(by_schema("Ownership"), 3);
    assert_eq!(by_schema("UnknownLink"), 3);
    assert_eq!(by_schema("LegalEntity"), 3);
    assert_eq!(by_schema("Company"), 3);
    let roles: Vec<&str> = lines
        .iter()
        .filter(|e| e["schema"] == "UnknownLink")
        .map(|e| e["properties"]["role"][0].as_str().unwrap())
        .collect();
    for role in ["owned by", "owner of", "front company for"] {
        assert!(roles.contains(&role), "{roles:?}");
    }
    let export_summary = ftm_check("export", &out_file);
    assert!(
        export_summary.starts_with("ok export: 18 entities valid"),
        "{export_summary}"
    );
    let status = Command::cargo_bin("wlnode")
        .unwrap()
        .args(["export", "--format", "xml", "--config"])
        .arg(&n.config)
        .status()
        .unwrap();
    assert!(!status.success());
}
