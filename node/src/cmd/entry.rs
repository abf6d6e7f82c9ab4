//! Commands that talk to a running node over its API: `entry ...`, `import`,
//! `export`, `status`.

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use futures::StreamExt;
use wlnode_client::{Client, ImportRow};
use wlnode_import::{Format, ImportDefaults};

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum EntryCommand {
    /// Add an entry from a JSON file (or - for stdin).
    Add {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Amend an own entry with full new content.
    Amend {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        file: PathBuf,
        #[arg(long)]
        json: bool,
        /// Write even while the node holds local writes after a restore or a store
        /// reopen (only if no peer can hold a newer version of this entry).
        #[arg(long)]
        force: bool,
    },
    /// Withdraw (delist) an own entry.
    Withdraw {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
        /// Write even while the node holds local writes after a restore or a store
        /// reopen (only if no peer can hold a newer version of this entry).
        #[arg(long)]
        force: bool,
    },
    /// Show one entry.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Origin, when several agencies use the same id.
        #[arg(long)]
        origin: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Approve a draft (four-eyes release): sign and release it as you. The author
    /// cannot approve their own draft.
    Approve {
        draft_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Reject a draft: nothing is written.
    Reject {
        draft_id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// List drafts (default: those awaiting approval; --all for every kept draft).
    Drafts {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// List entries (all of them unless --limit).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        origin: Option<String>,
        /// active or withdrawn.
        #[arg(long)]
        status: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        updated_since: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

fn read_input(file: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read stdin")?;
    } else {
        text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// A draft id, checked before it goes into a URL path.
fn hex_id(id: &str) -> anyhow::Result<&str> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        anyhow::bail!("{id:?} is not a draft id (32 hex digits)")
    }
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

fn print_written(v: &serde_json::Value, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        print_json(v)
    } else if let Some(d) = v["draft_id"].as_str() {
        outln!("draft {d} awaiting approval (nothing signed or sent yet)");
        Ok(())
    } else {
        outln!(
            "{verb} entry {} version {} (record {})",
            v["entry_id"].as_str().unwrap_or("?"),
            v["version"],
            v["record_id"].as_str().unwrap_or("?")
        );
        Ok(())
    }
}

fn row(e: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    let mut flags = Vec::new();
    if e["disputed"].as_bool() == Some(true) {
        flags.push("DISPUTED");
    }
    if e["review_due"].as_bool() == Some(true) {
        flags.push("REVIEW");
    }
    format!(
        "{}  {:<12} v{:<3} {:<9} {:<12} {}{}",
        s(&e["entry_id"]),
        s(&e["origin"]),
        e["version"],
        s(&e["status"]),
        s(&e["subject"]["kind"]),
        e["subject"]["name"].as_str().unwrap_or("(name withheld)"),
        if flags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", flags.join(","))
        }
    )
}

pub async fn run(c: EntryCommand) -> anyhow::Result<ExitCode> {
    match c {
        EntryCommand::Add { config, file, json } => {
            let body = read_input(&file)?;
            let v = client(&config)?.add(&body).await?;
            print_written(&v, json, "added")?;
        }
        EntryCommand::Amend {
            id,
            config,
            file,
            json,
            force,
        } => {
            let body = read_input(&file)?;
            let v = client(&config)?.forcing(force).amend(&id, &body).await?;
            print_written(&v, json, "amended")?;
        }
        EntryCommand::Withdraw {
            id,
            config,
            reason,
            json,
            force,
        } => {
            let v = client(&config)?
                .forcing(force)
                .withdraw(&id, &reason)
                .await?;
            print_written(&v, json, "withdrew")?;
        }
        EntryCommand::Approve {
            draft_id,
            config,
            json,
        } => {
            let v: serde_json::Value = client(&config)?
                .post_json(
                    &format!("/v1/drafts/{}/approve", hex_id(&draft_id)?),
                    &serde_json::json!({}),
                )
                .await?;
            print_written(&v, json, "released")?;
        }
        EntryCommand::Reject {
            draft_id,
            config,
            reason,
            json,
        } => {
            let v: serde_json::Value = client(&config)?
                .post_json(
                    &format!("/v1/drafts/{}/reject", hex_id(&draft_id)?),
                    &serde_json::json!({ "reason": reason }),
                )
                .await?;
            if json {
                print_json(&v)?;
            } else {
                outln!("draft {} rejected", v["draft_id"].as_str().unwrap_or("?"));
            }
        }
        EntryCommand::Drafts { config, all, json } => {
            let path = if all {
                "/v1/drafts"
            } else {
                "/v1/drafts?state=awaiting_approval"
            };
            let v: serde_json::Value = client(&config)?.get_json(path).await?;
            if json {
                print_json(&v)?;
            } else {
                for d in v.as_array().cloned().unwrap_or_default() {
                    outln!(
                        "{}  {}  {} by {}  {}",
                        d["draft_id"].as_str().unwrap_or("?"),
                        d["state"].as_str().unwrap_or("?"),
                        d["write"]["op"].as_str().unwrap_or("?"),
                        d["author_name"].as_str().unwrap_or("?"),
                        d["write"]["entry"]["subject"]["name"]
                            .as_str()
                            .or(d["write"]["entry_id"].as_str())
                            .unwrap_or("")
                    );
                }
            }
        }
        EntryCommand::Show {
            id,
            config,
            origin,
            json,
        } => {
            let v = client(&config)?.show(&id, origin.as_deref()).await?;
            if json {
                print_json(&v)?;
            } else {
                outln!("{}", row(&v));
                outln!("{}", serde_json::to_string_pretty(&v)?);
            }
        }
        EntryCommand::List {
            config,
            origin,
            status,
            updated_since,
            limit,
            json,
        } => {
            let mut q = Vec::new();
            if let Some(o) = origin {
                q.push(("origin", o));
            }
            if let Some(s) = status {
                q.push(("status", s));
            }
            if let Some(u) = updated_since {
                q.push(("updated_since", u));
            }
            let all = client(&config)?.list_all(&q, limit).await?;
            if json {
                print_json(&all)?;
            } else {
                for e in &all {
                    outln!("{}", row(e));
                }
                errln!("{} entries", all.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// csv, jsonl, ftm, un-xml, ofac-xml, eu-xml or uk-xml.
    #[arg(long)]
    format: Format,
    /// The file to import.
    file: PathBuf,
    /// Name of the source list (default per format, e.g. un-sc, ofac-sdn).
    #[arg(long)]
    source_list: Option<String>,
    /// This is the full list: withdraw own entries of this source list that are no
    /// longer in it.
    #[arg(long)]
    withdraw_missing: bool,
    /// Rows per API request.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    #[arg(long)]
    json: bool,
    /// Import even while the node holds local writes after a restore or a store
    /// reopen (only if no peer can hold newer versions of this list's entries).
    #[arg(long)]
    force: bool,
}

#[derive(serde::Serialize, Default)]
struct ImportSummary {
    source_list: String,
    rows: usize,
    imported: usize,
    amended: usize,
    unchanged: usize,
    failed: usize,
    withdrawn: usize,
    skipped: usize,
    failures: Vec<Failure>,
    warnings: Vec<String>,
    /// Per field: mapped, kept in remarks as written, dropped, cut.
    fields: std::collections::BTreeMap<String, wlnode_import::FieldSummary>,
}

#[derive(serde::Serialize)]
struct Failure {
    location: String,
    source_id: Option<String>,
    error: String,
}

/// Import requests `wlnode import` keeps in flight (bounded: the node judges one while
/// the one before it commits).
const IMPORTS_IN_FLIGHT: usize = 2;

pub async fn import(a: ImportArgs) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let defaults = ImportDefaults {
        source_list: a.source_list.clone(),
        ..ImportDefaults::default()
    };
    let parsed = wlnode_import::parse(a.format, &bytes, &defaults)
        .with_context(|| format!("{}", a.file.display()))?;
    let client = client(&a.config)?.forcing(a.force);
    let mut sum = ImportSummary {
        source_list: parsed.source_list.clone(),
        rows: parsed.rows.len() + parsed.errors.len(),
        skipped: parsed.skipped,
        warnings: parsed.warnings.iter().map(|w| w.to_string()).collect(),
        fields: parsed.summary.clone(),
        ..Default::default()
    };
    for e in &parsed.errors {
        sum.failed += 1;
        sum.failures.push(Failure {
            location: e.location.to_string(),
            source_id: e.source_id.clone(),
            error: e.message.clone(),
        });
    }
    let bar = if std::io::stderr().is_terminal() && !a.json {
        let b = indicatif::ProgressBar::new(parsed.rows.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let batch = a.batch_size.clamp(1, 5000);
    let chunks: Vec<&[wlnode_import::ImportRow]> = parsed.rows.chunks(batch).collect();
    fn rows_of(chunk: &[wlnode_import::ImportRow]) -> Vec<ImportRow<'_>> {
        chunk
            .iter()
            .map(|r| ImportRow {
                source_id: &r.source_id,
                entry: &r.draft,
            })
            .collect()
    }
    let tally = |sum: &mut ImportSummary,
                 chunk: &[wlnode_import::ImportRow],
                 reply: wlnode_client::ImportReply| {
        for (r, res) in chunk.iter().zip(reply.results) {
            match res.result.as_str() {
                "imported" => sum.imported += 1,
                "amended" => sum.amended += 1,
                "unchanged" => sum.unchanged += 1,
                _ => {
                    sum.failed += 1;
                    sum.failures.push(Failure {
                        location: r.location.to_string(),
                        source_id: Some(r.source_id.clone()),
                        error: res.error.unwrap_or_default(),
                    });
                }
            }
        }
        if let Some(b) = &bar {
            b.inc(chunk.len() as u64);
        }
    };
    // The first request goes alone: with four-eyes on, the node refuses direct imports
    // (before writing anything) and the rows go up as one import batch for an approver
    // to release.
    let mut held: Option<String> = None;
    if let Some(first) = chunks.first() {
        match client
            .import_batch(&parsed.source_list, &rows_of(first))
            .await
        {
            Ok(reply) => tally(&mut sum, first, reply),
            Err(wlnode_client::ClientError::Api { code, .. }) if code == "approval_required" => {
                if a.withdraw_missing && !parsed.errors.is_empty() {
                    bail!(
                        "not importing as the full list: {} rows failed to parse, so the file may not be the full list",
                        parsed.errors.len()
                    );
                }
                held = Some(
                    client
                        .open_import_batch(&parsed.source_list, a.withdraw_missing)
                        .await?,
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(id) = &held {
        for chunk in &chunks {
            let reply = client.upload_import_rows(id, &rows_of(chunk)).await?;
            for f in reply.failed {
                let r = chunk.get(f.index);
                sum.failed += 1;
                sum.failures.push(Failure {
                    location: r.map(|r| r.location.to_string()).unwrap_or_default(),
                    source_id: r.map(|r| r.source_id.clone()),
                    error: f.error,
                });
            }
            if let Some(b) = &bar {
                b.inc(chunk.len() as u64);
            }
        }
    } else {
        // The rest with two requests in flight: the node judges the next batch while
        // the one before commits (its reply still waits for that batch's fsync). The
        // replies are taken in file order; the first error stops the import (a request
        // already sent may still be written: importing the file again is idempotent).
        // Two in flight are safe only because the parse above keeps one row per source
        // id (a repeat is a row error, `claim` in wlnode_import): the two requests go on
        // separate pooled connections, so request k+1 may reach the node's writer lock
        // before request k, and two rows of one entry in flight would then be written
        // in either order. Keep that check if this changes.
        let list = parsed.source_list.as_str();
        let client = &client;
        let mut replies = futures::stream::iter(chunks.iter().skip(1))
            .map(|chunk| async move { (*chunk, client.import_batch(list, &rows_of(chunk)).await) })
            .buffered(IMPORTS_IN_FLIGHT);
        while let Some((chunk, reply)) = replies.next().await {
            tally(&mut sum, chunk, reply?);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(id) = held {
        if a.withdraw_missing && sum.failed > 0 {
            // A refused row is missing from the batch: as the full list it would
            // withdraw that row's entry. Abandon the batch instead.
            let _: serde_json::Value = client
                .post_json(
                    &format!("/v1/import-batches/{id}/reject"),
                    &serde_json::json!({"reason": "abandoned by wlnode import: rows were refused, so it is not the full list"}),
                )
                .await?;
            bail!(
                "not submitting import batch {id} as the full list: the node refused {} rows (first: {}), which would withdraw their entries; the batch was abandoned",
                sum.failed,
                sum.failures
                    .first()
                    .map(|f| format!("{}: {}", f.location, f.error))
                    .unwrap_or_default()
            );
        }
        let submitted = client.submit_import_batch(&id).await?;
        sum.failures.sort_by(|a, b| a.location.cmp(&b.location));
        let out = serde_json::json!({
            "batch_id": id,
            "state": submitted["state"],
            "source_list": sum.source_list,
            "rows": sum.rows,
            "failed": sum.failed,
            "failures": sum.failures,
            "warnings": sum.warnings,
            "summary": submitted["summary"],
        });
        if a.json {
            print_json(&out)?;
        } else {
            outln!(
                "import batch {id}: awaiting approval by another user with the approver role\n{}",
                super::import_batch::describe(&submitted)
            );
            for f in &sum.failures {
                outln!("  refused {}: {}", f.location, f.error);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.withdraw_missing {
        if !parsed.errors.is_empty() {
            bail!(
                "not withdrawing missing entries: {} rows failed to parse, so the file may not be the full list",
                parsed.errors.len()
            );
        }
        let keep: Vec<String> = parsed.rows.iter().map(|r| r.source_id.clone()).collect();
        let v = client.withdraw_missing(&parsed.source_list, &keep).await?;
        sum.withdrawn = v["withdrawn"].as_array().map_or(0, Vec::len);
    }
    sum.failures.sort_by(|a, b| a.location.cmp(&b.location));
    if a.json {
        print_json(&sum)?;
    } else {
        let mut out = super::stdout();
        writeln!(
            out,
            "{}: {} rows: {} imported, {} amended, {} unchanged, {} failed, {} withdrawn, {} skipped",
            sum.source_list,
            sum.rows,
            sum.imported,
            sum.amended,
            sum.unchanged,
            sum.failed,
            sum.withdrawn,
            sum.skipped
        )?;
        for f in &sum.failures {
            writeln!(
                out,
                "  failed {}{}: {}",
                f.location,
                f.source_id
                    .as_ref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default(),
                f.error
            )?;
        }
        for w in &sum.warnings {
            writeln!(out, "  warning {w}")?;
        }
        if !sum.fields.is_empty() {
            writeln!(
                out,
                "  {:<12} {:>8} {:>16} {:>8} {:>5}",
                "field", "mapped", "kept in remarks", "dropped", "cut"
            )?;
            for (name, f) in &sum.fields {
                writeln!(
                    out,
                    "  {:<12} {:>8} {:>16} {:>8} {:>5}",
                    name, f.mapped, f.kept_in_remarks, f.dropped, f.cut
                )?;
            }
        }
    }
    Ok(if sum.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// jsonl (one entry per line, with status, version and origin) or ftm
    /// (FollowTheMoney entities, one per line: each entry's subject, its sanction, and
    /// its linked parties with their relationships).
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Output file (default stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    origin: Option<String>,
    #[arg(long)]
    status: Option<String>,
}

pub async fn export(a: ExportArgs) -> anyhow::Result<ExitCode> {
    let ftm = match a.format.as_str() {
        "jsonl" => false,
        "ftm" => true,
        other => bail!("--format {other:?} is not supported; use jsonl or ftm"),
    };
    let mut q = Vec::new();
    if let Some(o) = a.origin {
        q.push(("origin", o));
    }
    if let Some(s) = a.status {
        q.push(("status", s));
    }
    let all = client(&a.config)?.list_all(&q, None).await?;
    let mut w: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(super::stdout())),
    };
    let mut lines = 0usize;
    if ftm {
        let views = all
            .into_iter()
            .map(serde_json::from_value::<wlnode_runtime::entries::EntryView>)
            .collect::<Result<Vec<_>, _>>()
            .context("the node sent an entry this version cannot read")?;
        let held: BTreeMap<_, _> = views
            .iter()
            .map(|v| ((v.origin.clone(), v.entry_id), v.subject.kind))
            .collect();
        for v in &views {
            for e in wlnode_api::ftm::entry_entities(v, |o, id| held.get(&(o.clone(), id)).copied())
            {
                serde_json::to_writer(&mut w, &e)?;
                writeln!(w)?;
                lines += 1;
            }
        }
        if a.out.is_some() {
            errln!("exported {} entries as {lines} FtM entities", views.len());
        }
    } else {
        for e in &all {
            serde_json::to_writer(&mut w, e)?;
            writeln!(w)?;
        }
        if a.out.is_some() {
            errln!("exported {} entries", all.len());
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long)]
    json: bool,
}

pub async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let v = client(&a.config)?.status().await?;
    if a.json {
        print_json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    outln!(
        "{} ({}) federation {:?} roster v{}",
        s(&v["agency"]),
        s(&v["peer_id"]),
        s(&v["federation"]),
        v["roster_version"]
    );
    if v["roster_outdated"].as_bool() == Some(true) {
        outln!(
            "roster_outdated: a neighbour runs a newer roster; replace roster.toml and .sig, then reload"
        );
    }
    outln!(
        "records {}  entries {}  withdrawn {}  disputed versions {}",
        v["records"],
        v["entries"],
        v["withdrawn"],
        v["disputed_versions"]
    );
    let store = &v["store"];
    outln!(
        "store: {}  head seq {}  {} bytes{}",
        if store["writable"].as_bool() == Some(true) {
            "writable"
        } else {
            "NOT WRITABLE"
        },
        store["head_seq"],
        store["size_bytes"],
        store["last_error"]
            .as_str()
            .map(|e| format!("  last error: {e}"))
            .unwrap_or_default()
    );
    let empty = Vec::new();
    let mut peers: BTreeMap<String, &serde_json::Value> = BTreeMap::new();
    for p in v["peers"].as_array().unwrap_or(&empty) {
        peers.insert(s(&p["agency"]), p);
    }
    for (agency, p) in peers {
        outln!(
            "  peer {:<14} {}  lag {}{}",
            agency,
            if p["connected"].as_bool() == Some(true) {
                "connected   "
            } else {
                "disconnected"
            },
            p["lag"],
            if p["our_roster_outdated"].as_bool() == Some(true) {
                format!("  runs a newer roster (v{})", p["roster_version"])
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
