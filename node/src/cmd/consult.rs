//! `wlnode consult request|list|show|respond|supply-info|decide`, `wlnode inbox` and `wlnode hit
//! report`: Art. 16 consultations, the sealed-message inbox and hit reports on the
//! running node, through the local API (a `consultant`'s token; hit reports also a
//! `screener`'s).

// These commands format `serde_json::Value`s from the API; `value["key"]` returns
// `Null` for a missing key and never panics.
#![allow(clippy::indexing_slicing)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use wlnode_client::Client;

use super::{ConfigArg, print_json};

#[derive(Debug, Subcommand)]
pub enum ConsultCommand {
    /// Ask the origin of an entry before granting a licence for a like transaction.
    Request {
        /// The entry (of another agency).
        #[arg(long)]
        entry: String,
        /// The entry's origin agency (required when several agencies hold an entry
        /// with this id).
        #[arg(long)]
        origin: Option<String>,
        /// Your licence application's reference.
        #[arg(long)]
        reference: String,
        /// JSON file with the intended transaction (items, end_user, consignee,
        /// destination_country, value, free_text).
        #[arg(long)]
        file: PathBuf,
        /// How long the origin has to answer, e.g. 30d.
        #[arg(long, default_value = "30d")]
        deadline: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// List consultations.
    List {
        /// open, answered, expired, decided or refused_by_origin.
        #[arg(long)]
        state: Option<String>,
        /// sent (we asked) or received (our entries).
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Show one consultation.
    Show {
        /// The consultation id, or REQUESTER:ID when several requesters used the
        /// id with us (the id alone is then refused as ambiguous, naming them).
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Answer a consultation of one of our entries (at the origin).
    #[command(group(clap::ArgGroup::new("answer").required(true).args(["objection", "no_objection", "need_info"])))]
    Respond {
        /// The consultation id, or REQUESTER:ID when several requesters used the
        /// id with us (the id alone is then refused as ambiguous, naming them).
        id: String,
        /// Object to the transaction (needs --reason).
        #[arg(long)]
        objection: bool,
        /// No objection to the transaction.
        #[arg(long)]
        no_objection: bool,
        /// Ask the requester for more information (needs --reason: what is missing).
        #[arg(long)]
        need_info: bool,
        /// Why (required for an objection and a request for information).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Answer the origin's request for information (at the requester): opens the
    /// next round with a new deadline.
    #[command(group(clap::ArgGroup::new("info").required(true).args(["file", "text"])))]
    SupplyInfo {
        /// The consultation id, or REQUESTER:ID when several requesters used the
        /// id with us (the id alone is then refused as ambiguous, naming them).
        id: String,
        /// JSON file `{"text": "...", "details": {...}}` (details optional: the
        /// corrected transaction, as for `request`).
        #[arg(long)]
        file: Option<PathBuf>,
        /// The information as plain text.
        #[arg(long)]
        text: Option<String>,
        /// How long the origin has to answer this round, e.g. 30d.
        #[arg(long, default_value = "30d")]
        deadline: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Record the licence decision (at the requester).
    #[command(group(clap::ArgGroup::new("decision").required(true).args(["granted", "refused"])))]
    Decide {
        /// The consultation id, or REQUESTER:ID when several requesters used the
        /// id with us (the id alone is then refused as ambiguous, naming them).
        id: String,
        /// The licence was granted (against an objection or an expired denial,
        /// this sends the Art. 16 decision notice to every admitted member).
        #[arg(long)]
        granted: bool,
        /// The licence was refused.
        #[arg(long)]
        refused: bool,
        /// Why (optional).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

/// `wlnode hit ...`.
#[derive(Debug, Subcommand)]
pub enum HitCommand {
    /// Send a sealed hit report on another agency's entry to its origin.
    Report {
        /// The entry that was hit.
        #[arg(long)]
        entry: String,
        /// The entry's origin agency (required when several agencies hold an entry
        /// with this id).
        #[arg(long)]
        origin: Option<String>,
        /// customs, licensing or other.
        #[arg(long)]
        context: String,
        /// A text file (or JSON) describing the hit; sent as it is.
        #[arg(long, help = format!(
            "A text file (or JSON) describing the hit; sent as it is (at most {} bytes)",
            wlnode_crypto::model::MAX_LONG_TEXT
        ))]
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

/// `wlnode flag ...`.
#[derive(Debug, Subcommand)]
pub enum FlagCommand {
    /// Flag another agency's entry as not actionable here; its origin is told.
    Set {
        /// The entry (of another agency).
        #[arg(long)]
        entry: String,
        /// The entry's origin agency (required when several agencies hold an entry
        /// with this id).
        #[arg(long)]
        origin: Option<String>,
        /// Why it is not actionable here (sent to the origin).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Lift our flag on an entry; its origin is told.
    Lift {
        /// The entry.
        #[arg(long)]
        entry: String,
        /// Its origin (when several agencies hold an entry with this id).
        #[arg(long)]
        origin: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
    /// Our flags in force.
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

fn flag_line(v: &Value) -> String {
    format!(
        "{}  entry {}  origin {}  {}",
        v["flagged_at"].as_str().unwrap_or("?"),
        v["entry_id"].as_str().unwrap_or("?"),
        v["origin"].as_str().unwrap_or("?"),
        v["reason"].as_str().unwrap_or("")
    )
}

/// A refused flag write, with a clear word when it was the per-user rate limit (HTTP
/// 429, `flag_rate_limited`).
fn flag_write_error(e: wlnode_client::ClientError) -> anyhow::Error {
    match &e {
        wlnode_client::ClientError::Api {
            status: 429,
            message,
            ..
        } => anyhow::anyhow!(
            "flag write refused: rate limit reached ({message}); flag writes are limited per user by [flags] burst and per_minute in node.toml"
        ),
        _ => e.into(),
    }
}

/// Runs a `flag` subcommand.
pub async fn flag(c: FlagCommand) -> anyhow::Result<ExitCode> {
    let mut lifted = false;
    let (v, json): (Value, bool) = match c {
        FlagCommand::Set {
            entry,
            origin,
            reason,
            config,
            json,
        } => (
            client(&config)?
                .post_json(
                    "/v1/flags",
                    &json!({"entry_id": entry, "origin": origin, "reason": reason}),
                )
                .await
                .map_err(flag_write_error)?,
            json,
        ),
        FlagCommand::Lift {
            entry,
            origin,
            config,
            json,
        } => {
            anyhow::ensure!(
                entry.len() == 32 && entry.bytes().all(|b| b.is_ascii_hexdigit()),
                "--entry {entry:?} is not an entry id (32 hex digits)"
            );
            let mut path = format!("/v1/flags?entry_id={entry}");
            if let Some(o) = origin {
                anyhow::ensure!(
                    o.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                    "--origin {o:?} is not an agency code"
                );
                path.push_str(&format!("&origin={o}"));
            }
            lifted = true;
            (
                client(&config)?
                    .delete_json(&path)
                    .await
                    .map_err(flag_write_error)?,
                json,
            )
        }
        FlagCommand::List { config, json } => (client(&config)?.get_json("/v1/flags").await?, json),
    };
    if json {
        print_json(&v)?;
    } else if let Some(list) = v.as_array() {
        for f in list {
            outln!("{}", flag_line(f));
        }
    } else if lifted {
        outln!("lifted: {}", flag_line(&v));
    } else {
        outln!("{}", flag_line(&v));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a `hit` subcommand.
pub async fn hit(c: HitCommand) -> anyhow::Result<ExitCode> {
    let HitCommand::Report {
        entry,
        origin,
        context,
        file,
        config,
        json,
    } = c;
    let details = String::from_utf8(read_bounded(&file)?)
        .with_context(|| format!("{} is not UTF-8 text", file.display()))?;
    let v: Value = client(&config)?
        .post_json(
            "/v1/hits",
            &json!({"entry_id": entry, "origin": origin, "context": context, "details": details}),
        )
        .await?;
    if json {
        print_json(&v)?;
    } else {
        outln!(
            "hit report {} sent to {}",
            v["message_id"].as_str().unwrap_or("?"),
            v["origin"].as_str().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `wlnode inbox`.
#[derive(Debug, clap::Args)]
pub struct InboxArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long)]
    json: bool,
}

fn client(c: &ConfigArg) -> anyhow::Result<Client> {
    Ok(Client::from_config(&c.for_client()?)?)
}

/// Reads an officer's file of at most [`wlnode_consult::MAX_PAYLOAD_BYTES`] (the
/// most a message body takes), without reading more than one byte past it: a path
/// mistyped onto a huge file is refused by size, naming the file, before it is
/// parsed (review s36-qa L5).
fn read_bounded(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let max = wlnode_consult::MAX_PAYLOAD_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() <= max,
        "{} is larger than {max} bytes, the most a message takes",
        path.display()
    );
    Ok(bytes)
}

/// `ID` (32 hex digits) or `REQUESTER:ID` (an agency code by the roster's rules),
/// as the path segment of the API's `/v1/consultations/{id}`: parsed by the node's
/// own rules and given back in its canonical form, percent-encoded anyway (review
/// s35-key L4: `../../users/x:<hex>` went into the path as given, and the URL parser
/// removed the dot segments).
fn check_id(id: &str) -> anyhow::Result<String> {
    let r = wlnode_runtime::consultations::ConsultationRef::parse(id).map_err(|e| {
        anyhow::anyhow!("{id:?} is not a consultation id (32 hex digits, or REQUESTER:ID): {e}")
    })?;
    Ok(path_segment(&r.to_string()))
}

/// `s` percent-encoded as one URL path segment (every byte but ASCII letters, digits,
/// `-`, `.`, `_`, `~` and `:`). Belt and braces: a canonical consultation reference
/// holds none of the bytes it escapes today (final read of s36), so it guards a
/// later change to the reference's rules, not any input now.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn line(v: &Value) -> String {
    // Optional columns as `  name value`, only when the view has them (QA s35 W1:
    // delivery, refusal reason, deemed answer and `despite` were only in `--json`).
    let opt = |name: &str, key: &str| {
        v[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(|x| format!("  {name} {x}"))
            .unwrap_or_default()
    };
    format!(
        "{}  {:<8} {:<17} entry {}  origin {}  requester {}  ref {}  deadline {}{}{}{}{}{}{}",
        v["consultation_id"].as_str().unwrap_or("?"),
        v["role"].as_str().unwrap_or("?"),
        v["state"].as_str().unwrap_or("?"),
        v["entry_id"].as_str().unwrap_or("?"),
        v["origin"].as_str().unwrap_or("?"),
        v["requester"].as_str().unwrap_or("?"),
        v["reference"].as_str().unwrap_or("?"),
        v["deadline"].as_str().unwrap_or("?"),
        v["answer"]
            .as_str()
            .map(|a| format!("  answer {a}"))
            .unwrap_or_default(),
        v["decision"]
            .as_str()
            .map(|d| format!("  decision {d}"))
            .unwrap_or_default(),
        opt("despite", "despite"),
        // Without an expiry the deemed answer is the current answer, already shown.
        if v["deemed_answer"] != v["answer"] {
            opt("deemed", "deemed_answer")
        } else {
            String::new()
        },
        opt("refusal", "refusal"),
        opt("delivery", "delivery"),
    )
}

/// The lines `consult show` prints under the list line: what the list line leaves
/// out (QA s35 W1: delivery, the deemed answer, the origin's refusal reason and what
/// a grant went against were only in `--json`).
fn detail_lines(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let field = |k: &str| v[k].as_str().filter(|s| !s.is_empty());
    if let Some(k) = field("key") {
        out.push(format!("  key            {k}"));
    }
    if let Some(d) = field("delivery") {
        out.push(format!("  delivery       {d}"));
    }
    if let Some(s) = field("silence") {
        out.push(format!("  silence means  {s}"));
    }
    if let Some(a) = field("answer") {
        let late = if v["answer_late"].as_bool() == Some(true) {
            " (late, signed in time)"
        } else {
            ""
        };
        let why = field("answer_reason")
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push(format!("  answer         {a}{late}{why}"));
    }
    // The deemed answer is the current answer unless the consultation expired
    // unanswered (then the roster's silence rule): shown only when it differs.
    if let Some(d) = field("deemed_answer").filter(|d| field("answer") != Some(*d)) {
        out.push(format!("  deemed answer  {d} (silence at the deadline)"));
    }
    if let Some(r) = field("refusal") {
        out.push(format!(
            "  refused        {r} (signed refusal by the origin)"
        ));
    }
    if let Some(d) = field("decision") {
        let why = field("decision_reason")
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push(format!("  decision       {d}{why}"));
    }
    if let Some(d) = field("despite") {
        out.push(format!("  despite        {d}"));
    }
    for m in v["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        out.push(format!(
            "  message        {} {} to {}: {}{}",
            m["message_id"].as_str().unwrap_or("?"),
            m["kind"].as_str().unwrap_or("?"),
            m["to"].as_str().unwrap_or("?"),
            m["delivery"].as_str().unwrap_or("?"),
            if m["notice"].as_bool() == Some(true) {
                " (decision notice)"
            } else {
                ""
            },
        ));
    }
    out
}

/// The fixed list shape: `{consultation_id, entry_id, origin, requester, reference,
/// state, deadline, answer, decision}` and the rest of the view.
fn print_one(v: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(v)?;
    } else {
        outln!("{}", line(v));
    }
    Ok(())
}

/// Runs a `consult` subcommand.
pub async fn run(c: ConsultCommand) -> anyhow::Result<ExitCode> {
    match c {
        ConsultCommand::Request {
            entry,
            origin,
            reference,
            file,
            deadline,
            config,
            json,
        } => {
            let text = read_bounded(&file)?;
            let details: Value = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            // Checked here with the node's own types, so that a position in the error
            // is one in the user's file, not in the re-encoded request (s35 QA B2).
            wlnode_consult::payload::TransactionDetails::from_json(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let v: Value = client(&config)?
                .post_json(
                    "/v1/consultations",
                    &json!({"entry_id": entry, "origin": origin, "reference": reference, "details": details, "deadline": deadline}),
                )
                .await?;
            if json {
                print_json(&json!({
                    "consultation_id": v["consultation_id"],
                    "origin": v["origin"],
                    "deadline": v["deadline"],
                }))?;
            } else {
                outln!(
                    "consultation {} sent to {}, deadline {}",
                    v["consultation_id"].as_str().unwrap_or("?"),
                    v["origin"].as_str().unwrap_or("?"),
                    v["deadline"].as_str().unwrap_or("?")
                );
            }
        }
        ConsultCommand::List {
            state,
            role,
            config,
            json,
        } => {
            let mut q = Vec::new();
            if let Some(s) = state {
                q.push(format!("state={s}"));
            }
            if let Some(r) = role {
                q.push(format!("role={r}"));
            }
            let path = if q.is_empty() {
                "/v1/consultations".to_owned()
            } else {
                format!("/v1/consultations?{}", q.join("&"))
            };
            let v: Value = client(&config)?.get_json(&path).await?;
            if json {
                print_json(&v)?;
            } else {
                for c in v.as_array().cloned().unwrap_or_default() {
                    outln!("{}", line(&c));
                }
            }
        }
        ConsultCommand::Show { id, config, json } => {
            let id = check_id(&id)?;
            let v: Value = client(&config)?
                .get_json(&format!("/v1/consultations/{id}"))
                .await?;
            print_one(&v, json)?;
            if !json {
                for l in detail_lines(&v) {
                    outln!("{l}");
                }
            }
        }
        ConsultCommand::Respond {
            id,
            objection,
            no_objection,
            need_info,
            reason,
            config,
            json,
        } => {
            let id = check_id(&id)?;
            let answer = match (objection, no_objection, need_info) {
                (true, _, _) => "objection",
                (_, true, _) => "no_objection",
                _ => "info_requested",
            };
            let v: Value = client(&config)?
                .post_json(
                    &format!("/v1/consultations/{id}/respond"),
                    &json!({"answer": answer, "reason": reason}),
                )
                .await?;
            print_one(&v, json)?;
        }
        ConsultCommand::SupplyInfo {
            id,
            file,
            text,
            deadline,
            config,
            json,
        } => {
            let id = check_id(&id)?;
            let mut body = match (file, text) {
                (Some(f), _) => {
                    let b = read_bounded(&f)?;
                    let v: Value = serde_json::from_slice(&b)
                        .with_context(|| format!("{} is not JSON", f.display()))?;
                    anyhow::ensure!(
                        v.is_object(),
                        "{}: expected an object {{\"text\": ..., \"details\": ...}}",
                        f.display()
                    );
                    // Checked here with the node's own bounds, so an error names a
                    // line and column of this file (s35 QA leftover).
                    wlnode_consult::InformationFile::from_json(&b)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                    v
                }
                (None, Some(t)) => json!({ "text": t }),
                (None, None) => anyhow::bail!("give --file or --text"),
            };
            if let Some(o) = body.as_object_mut() {
                o.insert("deadline".into(), deadline.into());
            }
            let v: Value = client(&config)?
                .post_json(&format!("/v1/consultations/{id}/supply-info"), &body)
                .await?;
            print_one(&v, json)?;
        }
        ConsultCommand::Decide {
            id,
            granted,
            refused,
            reason,
            config,
            json,
        } => {
            let id = check_id(&id)?;
            let decision = if granted && !refused {
                "granted"
            } else {
                "refused"
            };
            let v: Value = client(&config)?
                .post_json(
                    &format!("/v1/consultations/{id}/decide"),
                    &json!({"decision": decision, "reason": reason}),
                )
                .await?;
            print_one(&v, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `wlnode inbox`.
pub async fn inbox(a: InboxArgs) -> anyhow::Result<ExitCode> {
    let v: Value = client(&a.config)?.get_json("/v1/inbox").await?;
    if a.json {
        print_json(&v)?;
    } else {
        for m in v.as_array().cloned().unwrap_or_default() {
            outln!(
                "{}  {}  from {}  {}",
                m["received_at"].as_str().unwrap_or("?"),
                m["message_id"].as_str().unwrap_or("?"),
                m["from"].as_str().unwrap_or("?"),
                m["kind"].as_str().unwrap_or("?"),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QA s35 W1: the text forms carry what README says `list` and `show` show.
    #[test]
    fn text_forms_show_delivery_refusal_deemed_answer_and_despite() {
        let v = json!({
            "consultation_id": "0123456789abcdef0123456789abcdef",
            "key": "AA-EXPORT:0123456789abcdef0123456789abcdef",
            "role": "sent", "state": "refused_by_origin", "entry_id": "e1",
            "origin": "BB-CUSTOMS", "requester": "AA-EXPORT", "reference": "LIC-1",
            "deadline": "2026-12-31T00:00:00Z", "silence": "no_objection",
            "refusal": "deadline_too_short", "delivery": "delivered",
            "messages": [{"message_id": "m1", "kind": "consult_request",
                          "to": "BB-CUSTOMS", "delivery": "delivered", "notice": false}],
        });
        let l = line(&v);
        assert!(l.contains("refused_by_origin entry e1"), "{l}");
        assert!(l.contains("refusal deadline_too_short"), "{l}");
        assert!(l.contains("delivery delivered"), "{l}");
        let d = detail_lines(&v).join("\n");
        assert!(d.contains("refused        deadline_too_short"), "{d}");
        assert!(
            d.contains("message        m1 consult_request to BB-CUSTOMS: delivered"),
            "{d}"
        );
        let granted = json!({
            "consultation_id": "c", "state": "decided", "decision": "granted",
            "despite": "expired_denial", "deemed_answer": "objection",
        });
        let l = line(&granted);
        assert!(
            l.contains("decision granted  despite expired_denial  deemed objection"),
            "{l}"
        );
        let d = detail_lines(&granted).join("\n");
        assert!(d.contains("deemed answer  objection"), "{d}");
        assert!(d.contains("despite        expired_denial"), "{d}");
    }

    /// Review s35-key L4: the requester part is an agency code (the roster's rules),
    /// so no argument puts `/`, `..`, `?` or `#` into the API path; what goes there is
    /// the canonical `REQUESTER:ID` or `ID`.
    #[test]
    fn a_consultation_argument_is_checked_before_it_goes_into_a_path() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert_eq!(check_id(hex).unwrap(), hex);
        assert_eq!(
            check_id(&format!("BB-CUSTOMS:{hex}")).unwrap(),
            format!("BB-CUSTOMS:{hex}")
        );
        for bad in [
            "../../users/x:{hex}",
            "..:{hex}",
            "BB?x=1:{hex}",
            "BB#x:{hex}",
            ":{hex}",
            "bb-customs:{hex}",
            "BB-CUSTOMS:{hex}/../../x",
            "{hex}?x",
            "xyz",
        ] {
            let bad = bad.replace("{hex}", hex);
            assert!(check_id(&bad).is_err(), "{bad}");
        }
        assert_eq!(path_segment("A B/%"), "A%20B%2F%25");
    }
}
