//! `wlnode screen`: screens one name, or every party of a CSV file (`--batch`), against
//! the running node's live index over its API.
//!
//! A batch file is parsed here with the same parser the API uses for CSV bodies, so a
//! malformed row is reported on stderr with its line number before anything is sent;
//! good rows go to `POST /v1/screen/batch` in chunks (the progress bar advances per
//! chunk). The output CSV has one row per party, bad rows included with their error.
//! The exit code is 1 when any row was refused, as for `wlnode import`.

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use wlnode_client::Client;
use wlnode_screen::csv_cell::neutralize;
use wlnode_screen::request::{BatchRowError, ScreenRequest, parse_csv};

use super::{ConfigArg, print_json};

/// Parties sent per batch request.
const CHUNK: usize = 100;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScreenArgs {
    /// The case log: record a decision on a hit, or read the log.
    #[command(subcommand)]
    action: Option<CaseCommand>,
    /// The name to screen (omit with --batch).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    name: Option<String>,
    /// A reference kept with the case (a shipment or licence id).
    #[arg(long = "ref")]
    reference: Option<String>,
    /// Only entries of this origin agency.
    #[arg(long)]
    origin: Option<String>,
    /// Only entries listed for this reason (denial, diversion-risk, sanctions, ...).
    #[arg(long)]
    reason: Option<String>,
    /// Only entries with this control-list category.
    #[arg(long)]
    category: Option<String>,
    /// Leave this entry out (repeat for several; at most 100).
    #[arg(long)]
    exclude: Vec<String>,
    #[command(flatten)]
    config: ConfigArg,
    /// Only entries of this kind.
    #[arg(long, value_parser = ["person", "organization", "vessel"])]
    kind: Option<String>,
    /// Country (ISO code): agreement raises the score, conflict lowers it.
    #[arg(long)]
    country: Option<String>,
    /// Birth or incorporation date: YYYY, YYYY-MM or YYYY-MM-DD.
    #[arg(long)]
    dob: Option<String>,
    /// An identifier TYPE:VALUE (an exact match is decisive).
    #[arg(long)]
    id: Option<String>,
    /// An address: an entry address holding most of its words raises the score.
    #[arg(long)]
    address: Option<String>,
    /// Most results (per party with --batch).
    #[arg(long)]
    limit: Option<usize>,
    /// Least score returned (default 0.80).
    #[arg(long)]
    min_score: Option<f64>,
    /// Also match withdrawn entries.
    #[arg(long)]
    include_withdrawn: bool,
    /// Print the API's JSON answer (with the full explanations).
    #[arg(long)]
    json: bool,
    /// Screen every party of this CSV file (header: name, and optionally ref, kind,
    /// country, dob, id, address).
    #[arg(long)]
    batch: Option<PathBuf>,
    /// With --batch: write the results here (CSV, or JSON with --json; default stdout).
    #[arg(long, requires = "batch")]
    out: Option<PathBuf>,
}

/// `wlnode screen decide|log`.
#[derive(Debug, clap::Subcommand)]
pub enum CaseCommand {
    /// Record a decision on a hit of a case (it applies to the entry version screened).
    Decide {
        case_id: String,
        /// The hit's entry id.
        #[arg(long)]
        entry: String,
        /// Its origin, when two origins' entries share the id.
        #[arg(long)]
        origin: Option<String>,
        /// A false positive.
        #[arg(long, group = "decision")]
        clear: bool,
        /// A true match.
        #[arg(long, group = "decision")]
        confirm: bool,
        /// Hand it up.
        #[arg(long, group = "decision")]
        escalate: bool,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Read the case log (oldest first).
    Log {
        /// Only cases with this reference.
        #[arg(long = "ref")]
        reference: Option<String>,
        /// Only cases since this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Most cases (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print CSV (one row per hit) instead of a table.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

async fn case_command(c: CaseCommand) -> anyhow::Result<ExitCode> {
    match c {
        CaseCommand::Decide {
            case_id,
            entry,
            origin,
            clear,
            confirm,
            escalate,
            reason,
            config,
            json,
        } => {
            let decision = match (clear, confirm, escalate) {
                (true, _, _) => "cleared",
                (_, true, _) => "confirmed",
                (_, _, true) => "escalated",
                _ => bail!("say --clear, --confirm or --escalate"),
            };
            if case_id.len() != 32 || !case_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("{case_id:?} is not a case id (32 hex digits)");
            }
            let mut body =
                serde_json::json!({"entry": entry, "decision": decision, "reason": reason});
            if let Some(o) = origin {
                body["origin"] = serde_json::Value::String(o);
            }
            let v: serde_json::Value = client(&config)?
                .post_json(&format!("/v1/cases/{case_id}/decisions"), &body)
                .await?;
            if json {
                print_json(&v)?;
            } else {
                outln!(
                    "{} entry {} (record {}) in case {}",
                    v["state"].as_str().unwrap_or("?"),
                    entry,
                    v["record_id"].as_str().unwrap_or("?"),
                    v["case_id"].as_str().unwrap_or("?")
                );
            }
        }
        CaseCommand::Log {
            reference,
            since,
            limit,
            csv,
            config,
            json,
        } => {
            let mut q = vec![("limit", limit.to_string())];
            if let Some(r) = reference {
                q.push(("ref", r));
            }
            if let Some(s) = since {
                q.push(("since", s));
            }
            if csv {
                q.push(("format", "csv".into()));
            }
            let query = q
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect::<Vec<_>>()
                .join("&");
            let c = client(&config)?;
            if csv {
                out!("{}", c.get_text(&format!("/v1/cases?{query}")).await?);
                return Ok(ExitCode::SUCCESS);
            }
            let v: serde_json::Value = c.get_json(&format!("/v1/cases?{query}")).await?;
            if json {
                print_json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            for case in v["cases"].as_array().cloned().unwrap_or_default() {
                outln!(
                    "{}  {}  {}  {:?}  ref {:?}  {} hits  {} decisions",
                    case["case_id"].as_str().unwrap_or("?"),
                    case["at"].as_str().unwrap_or("?"),
                    case["user_name"].as_str().unwrap_or("?"),
                    case["party"]["name"].as_str().unwrap_or(""),
                    case["party"]["reference"].as_str().unwrap_or(""),
                    case["hits"].as_array().map_or(0, Vec::len),
                    case["decisions"].as_array().map_or(0, Vec::len),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn run(a: ScreenArgs) -> anyhow::Result<ExitCode> {
    if let Some(c) = a.action {
        return case_command(c).await;
    }
    if let Some(file) = a.batch.clone() {
        return batch(a, file).await;
    }
    let req = ScreenRequest {
        name: a.name.clone().unwrap_or_default(),
        kind: a.kind.clone(),
        country: a.country.clone(),
        dob: a.dob.clone(),
        id: a.id.clone(),
        address: a.address.clone(),
        limit: a.limit,
        min_score: a.min_score,
        include_withdrawn: a.include_withdrawn.then_some(true),
        reference: a.reference.clone(),
        origin: a.origin.clone(),
        reason: a.reason.clone(),
        category: a.category.clone(),
        exclude: (!a.exclude.is_empty()).then(|| a.exclude.clone()),
    };
    let v = client(&a.config)?.screen(&req).await?;
    if a.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let results = v["results"].as_array().cloned().unwrap_or_default();
    let mut out = super::stdout();
    if results.is_empty() {
        writeln!(
            out,
            "no match for {:?} at min score {} ({} entries indexed; case {})",
            req.name,
            a.min_score.unwrap_or(wlnode_screen::DEFAULT_MIN_SCORE),
            v["index_entries"],
            v["case_id"].as_str().unwrap_or("?")
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "case {}", v["case_id"].as_str().unwrap_or("?"))?;
    writeln!(
        out,
        "{:<6} {:<32} {:<12} {:<12} {:<40} WHY",
        "SCORE", "ENTRY_ID", "ORIGIN", "KIND", "MATCHED NAME"
    )?;
    for r in &results {
        let withdrawn = if r["withdrawn"].as_bool() == Some(true) {
            " (withdrawn)"
        } else {
            ""
        };
        writeln!(
            out,
            "{:<6.3} {:<32} {:<12} {:<12} {:<40} {}{}",
            r["score"].as_f64().unwrap_or(0.0),
            r["entry_id"].as_str().unwrap_or(""),
            r["origin"].as_str().unwrap_or(""),
            format!("{}{withdrawn}", r["kind"].as_str().unwrap_or("")),
            r["matched_name"].as_str().unwrap_or(""),
            marks(r),
            {
                match r["decision"]["state"].as_str() {
                    Some(state) => format!(
                        "[{state} by {}: {}] {}",
                        r["decision"]["by_name"].as_str().unwrap_or("?"),
                        r["decision"]["reason"].as_str().unwrap_or(""),
                        why(&r["explanation"])
                    ),
                    None => why(&r["explanation"]),
                }
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a hit carries beside its score (issue 21 item 3): the origin's request for a
/// hit report and our own flag, as `[...] ` prefixes.
fn marks(r: &serde_json::Value) -> String {
    let mut out = String::new();
    if r["hit_report_requested"].as_bool() == Some(true) {
        out.push_str("[origin asks for a hit report: wlnode hit report] ");
    }
    if let Some(reason) = r["flag"]["reason"].as_str() {
        out.push_str(&format!(
            "[flagged here {}: {}] ",
            r["flag"]["flagged_at"].as_str().unwrap_or("?"),
            reason
        ));
    }
    out
}

/// A one-line summary of an explanation: token pairs and adjustments.
fn why(e: &serde_json::Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for m in e["token_matches"].as_array().into_iter().flatten() {
        let q = m["query_text"].as_str().unwrap_or("");
        let n = m["name_text"].as_str().unwrap_or("");
        let how = m["method"].as_str().unwrap_or("");
        parts.push(if how == "exact" {
            format!("{q}={n}")
        } else {
            format!("{q}~{n} ({how})")
        });
    }
    for u in e["unmatched"].as_array().into_iter().flatten() {
        parts.push(format!(
            "{} unmatched ({})",
            u["text"].as_str().unwrap_or(""),
            u["side"].as_str().unwrap_or("")
        ));
    }
    for a in e["adjustments"].as_array().into_iter().flatten() {
        parts.push(format!(
            "{} {:+.3}",
            a["kind"].as_str().unwrap_or(""),
            a["delta"].as_f64().unwrap_or(0.0)
        ));
    }
    parts.join(", ")
}

/// One output row (a CSV row, or with `--json` one element of the output list).
#[derive(serde::Serialize)]
struct OutRow {
    line: usize,
    #[serde(rename = "ref")]
    reference: String,
    name: String,
    matches: Vec<serde_json::Value>,
    error: String,
}

async fn batch(a: ScreenArgs, file: PathBuf) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let (rows, mut errors) = parse_csv(&bytes);
    if rows.is_empty() && errors.iter().any(|e| e.row == 1) {
        let msg = errors
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        bail!("{}: line 1: {msg}", file.display());
    }
    let client = client(&a.config)?;
    let mut defaults: Vec<(&str, String)> = Vec::new();
    if let Some(l) = a.limit {
        defaults.push(("limit", l.to_string()));
    }
    if let Some(s) = a.min_score {
        defaults.push(("min_score", s.to_string()));
    }
    if a.include_withdrawn {
        defaults.push(("include_withdrawn", "true".into()));
    }
    let mut out_rows: Vec<OutRow> = Vec::with_capacity(rows.len() + errors.len());
    let bar = indicatif::ProgressBar::new(rows.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} parties  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for chunk in rows.chunks(CHUNK) {
        let mut parties: Vec<ScreenRequest> = chunk.iter().map(|r| r.request.clone()).collect();
        // command-line filters apply to rows that do not set their own
        for p in &mut parties {
            if p.kind.is_none() {
                p.kind = a.kind.clone();
            }
            if p.country.is_none() {
                p.country = a.country.clone();
            }
        }
        let reply = client.screen_batch(&parties, &defaults).await?;
        // the API numbers the parties of a JSON list from 1; map back to file lines
        let line_of = |i: usize| chunk.get(i.wrapping_sub(1)).map_or(0, |r| r.row);
        let ref_of = |i: usize| {
            chunk
                .get(i.wrapping_sub(1))
                .and_then(|r| r.reference.clone())
                .unwrap_or_default()
        };
        for r in reply.results {
            out_rows.push(OutRow {
                line: line_of(r.row),
                reference: ref_of(r.row),
                name: r.name,
                matches: r.results,
                error: String::new(),
            });
        }
        for e in reply.errors {
            let line = line_of(e.row);
            out_rows.push(OutRow {
                line,
                reference: ref_of(e.row),
                name: chunk
                    .get(e.row.wrapping_sub(1))
                    .map(|r| r.request.name.clone())
                    .unwrap_or_default(),
                matches: Vec::new(),
                error: e.message.clone(),
            });
            errors.push(BatchRowError { row: line, ..e });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // rows refused while parsing are parties too: one output row each
    for e in &errors {
        if !out_rows.iter().any(|r| r.line == e.row) {
            out_rows.push(OutRow {
                line: e.row,
                reference: String::new(),
                name: String::new(),
                matches: Vec::new(),
                error: e.message.clone(),
            });
        }
    }
    out_rows.sort_by_key(|r| r.line);
    errors.sort_by_key(|e| e.row);
    let mut sink: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ),
        None => Box::new(super::stdout()),
    };
    if a.json {
        serde_json::to_writer_pretty(&mut sink, &out_rows)?;
        writeln!(sink)?;
        sink.flush()?;
        return report(&file, &out_rows, &errors);
    }
    let mut w = csv::Writer::from_writer(sink);
    w.write_record([
        "line",
        "ref",
        "name",
        "matches",
        "best_score",
        "best_entry_id",
        "best_origin",
        "best_matched_name",
        "all_matches",
        "error",
        "hit_report_requested",
        "flagged",
    ])?;
    for r in &out_rows {
        let best = r.matches.first();
        let field = |k: &str| {
            best.and_then(|b| b[k].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let all: Vec<String> = r
            .matches
            .iter()
            .map(|m| {
                format!(
                    "{:.3} {}@{}",
                    m["score"].as_f64().unwrap_or(0.0),
                    m["entry_id"].as_str().unwrap_or(""),
                    m["origin"].as_str().unwrap_or("")
                )
            })
            .collect();
        let cells = [
            r.line.to_string(),
            r.reference.clone(),
            r.name.clone(),
            r.matches.len().to_string(),
            best.and_then(|b| b["score"].as_f64())
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
            field("entry_id"),
            field("origin"),
            field("matched_name"),
            all.join("; "),
            r.error.clone(),
            // Entries of the matches whose origin asks for a hit report, and those we
            // flagged (with the flag's reason).
            r.matches
                .iter()
                .filter(|m| m["hit_report_requested"].as_bool() == Some(true))
                .map(|m| m["entry_id"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
                .join("; "),
            r.matches
                .iter()
                .filter_map(|m| {
                    m["flag"]["reason"]
                        .as_str()
                        .map(|reason| format!("{}: {reason}", m["entry_id"].as_str().unwrap_or("")))
                })
                .collect::<Vec<_>>()
                .join("; "),
        ];
        // Names and references come from shipment files and other agencies: no
        // cell may run as a spreadsheet formula.
        w.write_record(cells.iter().map(|c| neutralize(c).into_owned()))?;
    }
    w.flush()?;
    report(&file, &out_rows, &errors)
}

/// Reports refused rows and a summary on stderr; the exit code.
fn report(
    file: &std::path::Path,
    out_rows: &[OutRow],
    errors: &[BatchRowError],
) -> anyhow::Result<ExitCode> {
    let screened = out_rows.len() - errors.len().min(out_rows.len());
    let mut err = std::io::stderr().lock();
    for e in errors {
        writeln!(
            err,
            "{}: line {}: {}{}",
            file.display(),
            e.row,
            e.field
                .as_ref()
                .map(|f| format!("{f}: "))
                .filter(|_| !e.message.starts_with(e.field.as_deref().unwrap_or("\0")))
                .unwrap_or_default(),
            e.message
        )?;
    }
    writeln!(
        err,
        "{}: {} parties screened, {} rows refused, {} with matches",
        file.display(),
        screened,
        errors.len(),
        out_rows.iter().filter(|r| !r.matches.is_empty()).count()
    )?;
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
