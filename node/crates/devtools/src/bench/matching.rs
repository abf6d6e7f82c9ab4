//! `wlnode bench match`: the yente-compatible `POST /match/default` next to
//! `POST /v1/screen/batch`, on one node over real HTTP, same queries, same index, same
//! run. The rounds alternate which endpoint goes first (ABBA), so that the shared
//! machine's drift lands on both; the figure is the median over rounds of
//! `/match` queries/s divided by `/v1/screen/batch` queries/s, next to each rate.
//!
//! The watchlist and the queries are the screening benchmark's synthetic ones
//! (`screen_bench::synth`): names across scripts, with variants and true negatives.
//! Both endpoints must agree on every query's top hit; the report counts any that
//! differ, so a fast but different answer cannot pass for a fast one.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use wlnode_crypto::model::EntryDraft;
use wlnode_screen::request::ScreenRequest;

use super::{BenchError, MachineInfo, err, machine};
use crate::scaffold::{self, AgencySpec, NodeOptions};
use crate::screen_bench::synth;
use wlnode_client::{Client, ImportRow};
use wlnode_config::Config;

/// One endpoint's figures in one round.
#[derive(Debug, Serialize)]
pub struct Round {
    /// `/v1/screen/batch` queries per second.
    pub screen_qps: f64,
    /// `/match/default` queries per second.
    pub match_qps: f64,
    /// match / screen.
    pub ratio: f64,
}

/// Result of `wlnode bench match`.
#[derive(Debug, Serialize)]
pub struct MatchReport {
    /// Machine.
    pub machine: MachineInfo,
    /// Entries on the node.
    pub entries: usize,
    /// Queries per round (variants and true negatives).
    pub queries: usize,
    /// Queries per request (yente's batch limit is 100).
    pub batch: usize,
    /// Results asked per query (yente's default 5).
    pub limit: usize,
    /// Every round.
    pub rounds: Vec<Round>,
    /// Median `/match` queries/s.
    pub match_qps_median: f64,
    /// Bound, same run: median `/v1/screen/batch` queries/s.
    pub screen_qps_median: f64,
    /// Median over rounds of match/screen.
    pub ratio_median: f64,
    /// One query per request, alternating: median latency of `POST /match`, ms.
    pub match_single_p50_ms: f64,
    /// ... and of `GET /v1/screen`, ms.
    pub screen_single_p50_ms: f64,
    /// Queries whose top hit differs between the endpoints (should be 0).
    pub top_hit_disagreements: usize,
    /// The case log alone (every screening is logged): parties logged per second, in
    /// batches of `batch` with their hits, straight into the node's `CaseLog`.
    pub case_log_cases_per_second: f64,
    /// The share of a screened party's time (at `/v1/screen/batch`'s median rate,
    /// logging included) that logging takes: screen_qps_median ÷ case_log rate.
    /// Bound from the issue: ≤ 0.10.
    pub case_log_share: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The draft an entry of the synthetic watchlist becomes.
fn draft_of(e: &synth::SynthEntry) -> Result<EntryDraft, BenchError> {
    let d = &e.doc;
    let mut names = d.names.iter().filter(|n| !n.trim().is_empty());
    let name = names
        .next()
        .ok_or_else(|| err("a synthetic entry without a name"))?;
    let json = json!({
        "subject": {
            "kind": d.kind.as_str(),
            "name": name,
            "aliases": names.take(16).collect::<Vec<_>>(),
            "country": d.country.as_ref().map(|c| c.as_str()),
        },
        "reason": "denial",
        "categories": ["3A001"],
    });
    serde_json::from_value(json).map_err(err)
}

fn top_of_screen(v: &Value) -> Option<String> {
    let r = v.get("results")?.as_array()?.first()?;
    Some(format!(
        "{}/{}",
        r.get("origin")?.as_str()?,
        r.get("entry_id")?.as_str()?
    ))
}

fn top_of_match(v: &Value) -> Option<String> {
    let id = v.get("results")?.as_array()?.first()?.get("id")?.as_str()?;
    let (origin, entry) = wlnode_api::ftm::parse_entity_id(id)?;
    Some(format!("{origin}/{}", entry.to_hex()))
}

/// Runs the benchmark on a fresh node in `dir`.
pub async fn run(
    entries: usize,
    queries: usize,
    rounds: usize,
    batch: usize,
    dir: &std::path::Path,
) -> Result<MatchReport, BenchError> {
    const LIMIT: usize = 5;
    let batch = batch.clamp(1, 100);
    let list = synth::watchlist(entries, 7);
    let qs = synth::queries(&list, queries - queries / 4, queries / 4, 7);
    let fed = scaffold::create(
        dir,
        "bench",
        &[AgencySpec::member("AA-EXPORT", &["eu"]).map_err(err)?],
    )
    .map_err(err)?;
    let node = fed.nodes.first().ok_or_else(|| err("no node"))?;
    scaffold::write_config(&fed, node, &NodeOptions::default()).map_err(err)?;
    let cfg = Config::load(&node.config).map_err(err)?;
    let token = wlnode_config::token::read_token(&cfg.raw.api.token_file).map_err(err)?;
    let running = wlnode_api::start_node(cfg).await.map_err(err)?;
    let client = Client::new(running.api_addr, token, "bench".into()).map_err(err)?;

    let drafts: Vec<EntryDraft> = list.iter().map(draft_of).collect::<Result<_, _>>()?;
    let ids: Vec<String> = (0..drafts.len()).map(|i| i.to_string()).collect();
    for (chunk, idc) in drafts.chunks(1000).zip(ids.chunks(1000)) {
        let rows: Vec<ImportRow<'_>> = chunk
            .iter()
            .zip(idc)
            .map(|(d, id)| ImportRow {
                source_id: id,
                entry: d,
            })
            .collect();
        let reply = client.import_batch("bench", &rows).await.map_err(err)?;
        if reply.results.iter().any(|r| r.result == "failed") {
            return Err(err("a benchmark row failed to import"));
        }
    }
    let head = running.services.ingested.head();
    running
        .services
        .screen
        .wait_applied(head, std::time::Duration::from_secs(3600))
        .await;

    let names: Vec<String> = qs.iter().map(|q| q.name.clone()).collect();
    let limit_q = format!("/match/default?limit={LIMIT}");
    let screen_pass = |chunk: &[String]| {
        let parties: Vec<ScreenRequest> = chunk
            .iter()
            .map(|n| ScreenRequest {
                name: n.clone(),
                ..ScreenRequest::default()
            })
            .collect();
        let client = &client;
        async move {
            client
                .screen_batch(&parties, &[("limit", LIMIT.to_string())])
                .await
                .map_err(err)
        }
    };
    let match_pass = |chunk: &[String], offset: usize| {
        let queries: serde_json::Map<String, Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    format!("q{}", offset + i),
                    json!({"schema": "LegalEntity", "properties": {"name": [n]}}),
                )
            })
            .collect();
        let client = &client;
        let path = limit_q.clone();
        async move {
            client
                .post_json::<_, Value>(&path, &json!({ "queries": queries }))
                .await
                .map_err(err)
        }
    };

    // Warm-up and the agreement check (not timed).
    let mut disagreements = 0usize;
    for (k, chunk) in names.chunks(batch).enumerate() {
        let s = screen_pass(chunk).await?;
        let m = match_pass(chunk, k * batch).await?;
        for (i, r) in s.results.iter().enumerate() {
            let screen_top = top_of_screen(&json!({ "results": r.results }));
            let match_top = m
                .get("responses")
                .and_then(|x| x.get(format!("q{}", k * batch + i)))
                .and_then(top_of_match);
            if screen_top != match_top {
                disagreements += 1;
            }
        }
    }

    let mut out = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let mut screen_s = 0.0;
        let mut match_s = 0.0;
        for order in [r % 2 == 0, r % 2 != 0] {
            if order {
                let t = Instant::now();
                for chunk in names.chunks(batch) {
                    screen_pass(chunk).await?;
                }
                screen_s = t.elapsed().as_secs_f64();
            } else {
                let t = Instant::now();
                for (k, chunk) in names.chunks(batch).enumerate() {
                    match_pass(chunk, k * batch).await?;
                }
                match_s = t.elapsed().as_secs_f64();
            }
        }
        let screen_qps = names.len() as f64 / screen_s;
        let match_qps = names.len() as f64 / match_s;
        out.push(Round {
            screen_qps,
            match_qps,
            ratio: match_qps / screen_qps,
        });
    }

    // One query per request, alternating.
    let mut single_match = Vec::new();
    let mut single_screen = Vec::new();
    for (i, n) in names.iter().take(200).enumerate() {
        let t = Instant::now();
        let req = ScreenRequest {
            name: n.clone(),
            limit: Some(LIMIT),
            ..ScreenRequest::default()
        };
        client.screen(&req).await.map_err(err)?;
        single_screen.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        match_pass(std::slice::from_ref(n), i).await?;
        single_match.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // The case log alone: log every query with its hits, `batch` parties per job.
    let admin = running
        .services
        .users
        .authenticate(
            &wlnode_config::token::read_token(
                &Config::load(&node.config).map_err(err)?.raw.api.token_file,
            )
            .map_err(err)?,
        )
        .ok_or_else(|| err("the bootstrap admin's token is refused"))?;
    let mut logged_batches = Vec::new();
    for chunk in names.chunks(batch) {
        let s = screen_pass(chunk).await?;
        let parties: Vec<_> = s
            .results
            .iter()
            .zip(chunk)
            .map(|(r, n)| {
                let hits = r
                    .results
                    .iter()
                    .filter_map(|v| {
                        Some(wlnode_runtime::cases::Hit {
                            origin: wlnode_crypto::model::AgencyCode::new(
                                v.get("origin")?.as_str()?.to_owned(),
                            )
                            .ok()?,
                            entry_id: wlnode_crypto::model::EntryId::from_hex(
                                v.get("entry_id")?.as_str()?,
                            )
                            .ok()?,
                            score: v.get("score")?.as_f64()?,
                            matched_name: v.get("matched_name")?.as_str()?.to_owned(),
                        })
                    })
                    .collect();
                (
                    wlnode_runtime::cases::Party {
                        name: n.clone(),
                        ..Default::default()
                    },
                    hits,
                )
            })
            .collect();
        logged_batches.push(parties);
    }
    let t = Instant::now();
    let mut logged = 0usize;
    for parties in logged_batches {
        logged += parties.len();
        running
            .services
            .cases
            .record(&admin, wlnode_runtime::cases::Channel::Batch, parties)
            .await
            .map_err(err)?;
    }
    let case_log_cases_per_second = logged as f64 / t.elapsed().as_secs_f64();
    running.stop().await;

    let mut m: Vec<f64> = out.iter().map(|r| r.match_qps).collect();
    let mut s: Vec<f64> = out.iter().map(|r| r.screen_qps).collect();
    let mut ratios: Vec<f64> = out.iter().map(|r| r.ratio).collect();
    Ok(MatchReport {
        machine: machine(),
        entries: list.len(),
        queries: names.len(),
        batch,
        limit: LIMIT,
        match_qps_median: median(&mut m),
        screen_qps_median: median(&mut s),
        ratio_median: median(&mut ratios),
        rounds: out,
        match_single_p50_ms: median(&mut single_match),
        screen_single_p50_ms: median(&mut single_screen),
        top_hit_disagreements: disagreements,
        case_log_share: median(&mut s.clone()) / case_log_cases_per_second,
        case_log_cases_per_second,
    })
}
