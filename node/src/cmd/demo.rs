//! `wlnode demo`: a whole federation on this machine in one command.
//!
//! It exists so that a newcomer (an agency's IT team, a regional body evaluating wlnode)
//! sees the system work end to end without writing a config. It generates a roster
//! authority, fictional agencies in two sharing groups and an auditor, with different
//! data-sharing policies; starts every node as a real `wlnode run` child process on
//! loopback; seeds synthetic entries at their origins; shows replication progress; and
//! checks the result against what each node *should* hold. That expectation is computed
//! here from the seeding plan and the policies' intent, independently of the node's
//! policy engine, so the demo doubles as an end-to-end check (`--exit-after-sync` exits
//! non-zero when the federation did not converge as the policies say it should).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use wlnode_client::{Client, ImportRow};
use wlnode_config::Config;
use wlnode_devtools::scaffold::{self, AgencySpec, Federation, NodeOptions};

use super::procs::{Child, start_node, stop_all, tail};
use wlnode_crypto::model::EntryDraft;
use wlnode_devtools::screen_bench::synth;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Member agencies, 2 to 6 (AA-EXPORT, BB-CUSTOMS, CC-TRADE, then DD, EE, FF).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=6))]
    nodes: u8,
    /// Entries to seed, spread evenly over the member agencies.
    #[arg(long, default_value_t = 2000)]
    entries: usize,
    /// Folder for the federation's files (kept afterwards; must not exist or be empty).
    /// Without it, a temporary folder is used and removed on exit.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Exit once the federation has converged (exit code 1 if it did not).
    #[arg(long)]
    exit_after_sync: bool,
    /// How long to wait for convergence.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the summary as one JSON value on stdout (progress goes to stderr).
    #[arg(long)]
    json: bool,
}

/// Member agencies the demo can create, with their sharing groups.
/// A member agency: its code and sharing groups.
type Member = (&'static str, &'static [&'static str]);

const MEMBERS: [Member; 6] = [
    ("AA-EXPORT", &["eu"]),
    ("BB-CUSTOMS", &["eu", "pacific"]),
    ("CC-TRADE", &["pacific"]),
    ("DD-LICENCE", &["eu"]),
    ("EE-CUSTOMS", &["pacific"]),
    ("FF-CONTROL", &["eu", "pacific"]),
];
const AUDITOR: &str = "ZZ-AUDIT";
/// What AA-EXPORT withholds from BB-CUSTOMS.
const PERSONAL: [&str; 3] = ["identifiers", "birth_date", "nationality"];

/// The policy of member `code`, as its admin would write it.
fn policy(code: &str) -> String {
    let accept_all = "\n[[accept]]\nfrom = [\"*\"]\norigins = [\"*\"]\n";
    match code {
        // Shares its own entries with everyone, but withholds personal identifiers from
        // BB-CUSTOMS (rules compose: the union of matching rules' withholdings applies).
        "AA-EXPORT" => format!(
            "\n# Personal identifiers stay out of BB-CUSTOMS's copies.\n\
             [[share]]\nto = [\"BB-CUSTOMS\"]\norigins = [\"self\"]\nwithhold = {personal:?}\n\
             \n[[share]]\nto = [\"*\"]\norigins = [\"self\"]\n{accept_all}",
            personal = PERSONAL
        ),
        // The hub: relays every record it holds to every neighbour.
        "BB-CUSTOMS" => {
            format!("\n[[share]]\nto = [\"*\"]\norigins = [\"*\"]\nrelay = true\n{accept_all}")
        }
        // Only keeps `public` entries from others.
        "CC-TRADE" => "\n[[share]]\nto = [\"*\"]\norigins = [\"self\"]\n\
             \n# Only public entries are kept here.\n\
             [[accept]]\nfrom = [\"*\"]\norigins = [\"*\"]\nmax_sensitivity = \"public\"\n"
            .to_owned(),
        _ => format!("\n[[share]]\nto = [\"*\"]\norigins = [\"self\"]\n{accept_all}"),
    }
}

/// One seeded entry, as the plan knows it.
#[derive(Clone, Debug)]
struct Seeded {
    origin: usize,
    entry_id: String,
    /// `Some(groups)` for `scope = groups`, `None` for the federation.
    groups: Option<Vec<&'static str>>,
    public: bool,
    /// It carries identifiers, a birth date or a nationality.
    personal: bool,
    /// Its origin signed a field scope: identifiers only to group `eu`.
    eu_identifiers: bool,
}

/// Why a node holds or does not hold a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Holds,
    OutsideDistribution,
    DeclinedByPolicy,
}

/// What member `n` should hold of `s`, from the distribution and the policies' intent.
/// Every member shares its own records directly with every other (full mesh), so the
/// question is only whether the distribution admits `n` and `n`'s accept rules keep it.
fn expect(members: &[Member], s: &Seeded, n: usize) -> Expect {
    if n == s.origin {
        return Expect::Holds;
    }
    let Some((code, groups)) = members.get(n) else {
        return Expect::OutsideDistribution;
    };
    if let Some(g) = &s.groups
        && !g.iter().any(|g| groups.contains(g))
    {
        return Expect::OutsideDistribution;
    }
    if *code == "CC-TRADE" && !s.public {
        return Expect::DeclinedByPolicy;
    }
    Expect::Holds
}

/// Member `n`'s copies of records from `origin` must lack the personal fields.
fn personal_withheld(members: &[Member], origin: usize, n: usize) -> bool {
    matches!(
        (members.get(origin), members.get(n)),
        (Some(("AA-EXPORT", _)), Some(("BB-CUSTOMS", _)))
    )
}

/// The entry JSON for seeded entry `k` of origin `origin`.
fn draft(
    e: &synth::SynthEntry,
    k: usize,
    origin: usize,
    groups: &[&'static str],
) -> (Value, Seeded) {
    let d = &e.doc;
    let class = (k / MEMBERS.len()) % 10;
    let (distribution, dist_groups, public) = match class {
        0..=5 => (
            json!({"scope": "federation", "sensitivity": "public"}),
            None,
            true,
        ),
        6..=8 => (
            json!({"scope": "federation", "sensitivity": "restricted"}),
            None,
            false,
        ),
        _ => {
            let g: Vec<&'static str> = groups.first().map(|g| vec![*g]).unwrap_or_default();
            (
                json!({"scope": "groups", "groups": g, "sensitivity": "restricted"}),
                Some(g),
                false,
            )
        }
    };
    let mut identifiers: Vec<Value> = d
        .identifiers
        .iter()
        .map(|i| json!({"type": i.kind, "value": i.value}))
        .collect();
    // Some public entries carry a field scope signed by their origin: identifiers go
    // to `eu` members only, at every hop (the hub relays them to `pacific` without).
    let eu_identifiers = public && k % 4 == 1;
    if identifiers.is_empty() && (k.is_multiple_of(3) || eu_identifiers) {
        let kind = match d.kind.as_str() {
            "person" => "passport",
            "vessel" => "imo",
            _ => "registration",
        };
        identifiers.push(json!({"type": kind, "value": format!("D{:07}", k * 7919 % 10_000_000)}));
    }
    let mut subject = serde_json::Map::new();
    subject.insert("kind".into(), json!(d.kind.as_str()));
    subject.insert(
        "name".into(),
        json!(
            d.names
                .first()
                .cloned()
                .unwrap_or_else(|| format!("Demo subject {k}"))
        ),
    );
    subject.insert(
        "aliases".into(),
        json!(d.names.iter().skip(1).take(4).collect::<Vec<_>>()),
    );
    if let Some(c) = &d.country {
        subject.insert("country".into(), json!(c.as_str()));
    }
    if !identifiers.is_empty() {
        subject.insert("identifiers".into(), Value::Array(identifiers.clone()));
    }
    if let Some(b) = &d.birth_date {
        subject.insert("birth_date".into(), json!(b.to_string()));
    }
    let mut distribution = distribution;
    if eu_identifiers && let Some(d) = distribution.as_object_mut() {
        d.insert("fields".into(), json!({"identifiers": ["group:eu"]}));
    }
    let reasons = ["denial", "diversion-risk", "sanctions", "wmd-end-use"];
    let categories = [["3A001"], ["1C010"], ["9A012"], ["2B001"], ["5A002"]];
    let v = json!({
        "subject": subject,
        "reason": reasons.get(k % reasons.len()).copied().unwrap_or("other"),
        "categories": categories.get(k % categories.len()).map(|c| c.to_vec()).unwrap_or_default(),
        "remarks": format!("Synthetic demo entry {k}; not a real listing."),
        "distribution": distribution,
    });
    let personal = !identifiers.is_empty() || d.birth_date.is_some();
    (
        v,
        Seeded {
            origin,
            entry_id: String::new(),
            groups: dist_groups,
            public,
            personal,
            eu_identifiers,
        },
    )
}

/// Member `n` must hold entry `s` without identifiers: its origin scoped them to `eu`.
fn identifiers_scoped_away(members: &[Member], s: &Seeded, n: usize) -> bool {
    s.eu_identifiers
        && n != s.origin
        && members
            .get(n)
            .is_some_and(|(_, groups)| !groups.contains(&"eu"))
}

/// One row of the summary.
#[derive(Debug, Serialize)]
struct NodeSummary {
    agency: String,
    role: &'static str,
    /// Records held now.
    records: u64,
    /// Records the plan says this node should hold.
    expected: u64,
    /// Seeded records the origin's distribution keeps from this node.
    outside_distribution: u64,
    /// Seeded records this node's accept rules decline.
    declined_by_policy: u64,
    /// Held records that arrived with fields withheld, and which fields.
    records_with_withheld_fields: u64,
    /// Held records whose identifiers their origin scoped to group `eu`, held here
    /// (outside `eu`) without them, as the signed scope demands at every hop.
    scoped_fields_withheld: u64,
    withheld_fields: BTreeSet<String>,
    /// Records rejected as invalid (bad signature, revoked key, ...), not counting
    /// copies declined by accept rules.
    rejected: u64,
    equivocations: u64,
    audit: String,
    api: String,
    token_file: PathBuf,
    config: PathBuf,
    /// Problems found: empty when the node holds exactly what it should.
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Summary {
    converged: bool,
    seconds_to_converge: Option<f64>,
    dir: PathBuf,
    nodes: Vec<NodeSummary>,
    /// The Art. 16 consultations run after convergence, with their trails.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    consultations: Vec<super::demo_consult::ConsultRun>,
}

pub fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(demo(a))
}

async fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let members: Vec<Member> = MEMBERS.iter().take(usize::from(a.nodes)).copied().collect();
    let (dir, _temp) = match &a.dir {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d)?.next().is_some() {
                bail!(
                    "{} exists and is not empty; choose a new --dir",
                    d.display()
                );
            }
            (d.clone(), None)
        }
        None => {
            let t = tempfile::Builder::new().prefix("wlnode-demo-").tempdir()?;
            (t.path().to_owned(), Some(t))
        }
    };
    let say = |s: String| errln!("{s}");
    say(format!("Creating a federation in {}", dir.display()));
    let mut specs = Vec::new();
    for (code, groups) in &members {
        specs.push(AgencySpec::member(code, groups)?);
    }
    specs.push(AgencySpec::auditor(AUDITOR)?);
    let fed = scaffold::create(&dir, "demo-federation", &specs)?;
    let version = demo_roster_settings(&fed)?;
    say(format!(
        "  roster authority, signed roster (version {version}), {} agencies in groups eu and pacific, auditor {AUDITOR}",
        members.len()
    ));

    // Start the members one by one: each dials the ones already running.
    let mut children: Vec<Child> = Vec::new();
    let result = run_federation(&a, &fed, &members, &mut children).await;
    stop_all(&mut children).await;
    if a.dir.is_none() {
        say("Removed the temporary federation folder.".into());
    }
    result
}

/// Re-signs the demo roster with a shorter minimum consultation deadline, so the
/// demo can show an expiry by silence in seconds (a real federation keeps the default
/// of one day).
/// Adds the demo's federation settings to the generated roster and signs it again;
/// returns the roster's new version.
fn demo_roster_settings(fed: &Federation) -> anyhow::Result<u64> {
    use wlnode_crypto::keyfile::{KeyKind, read_secret_key};
    let text = std::fs::read_to_string(&fed.roster)
        .with_context(|| format!("cannot read {}", fed.roster.display()))?;
    anyhow::ensure!(
        !text.contains("[federation_settings]"),
        "the generated roster already has federation settings"
    );
    let text = format!(
        "{text}\n[federation_settings]\n# Demo only: deadlines of seconds, to show an expiry by silence.\nconsultation_min_deadline_secs = {}\n",
        super::demo_consult::DEMO_MIN_DEADLINE_SECS
    );
    let auth = read_secret_key(&fed.authority_key, KeyKind::Authority)?;
    let (signed, sig, roster) = wlnode_config::roster_edit::sign(&text, &auth)?;
    std::fs::write(&fed.roster, signed)?;
    std::fs::write(fed.roster.with_extension("toml.sig"), sig.to_text())?;
    Ok(roster.version())
}

async fn run_federation(
    a: &DemoArgs,
    fed: &Federation,
    members: &[Member],
    children: &mut Vec<Child>,
) -> anyhow::Result<ExitCode> {
    for (i, node) in fed.nodes.iter().enumerate() {
        let is_auditor = node.agency.as_str() == AUDITOR;
        let mut peers = Vec::new();
        if !is_auditor {
            for (j, other) in fed.nodes.iter().enumerate() {
                if j == i || other.agency.as_str() == AUDITOR {
                    continue;
                }
                let addrs = children
                    .get(j)
                    .map(|c| c.listen.clone())
                    .unwrap_or_default();
                peers.push((other.agency.clone(), addrs));
            }
        }
        let extra = if is_auditor {
            String::new()
        } else {
            policy(node.agency.as_str())
        };
        let sync = "\n[sync]\nanti_entropy_interval = \"10s\"\nreconnect_min = \"200ms\"\nreconnect_max = \"2s\"\n";
        scaffold::write_config(
            fed,
            node,
            &NodeOptions {
                peers,
                extra: format!("{extra}{sync}"),
                ..NodeOptions::default()
            },
        )?;
        let role = if is_auditor { "auditor" } else { "member" };
        let child = start_node(node, role).await?;
        errln!(
            "  started {:<11} {role:<7} API {}",
            child.agency,
            child.client_addr()
        );
        children.push(child);
    }

    // Seed entries at their origins.
    let m = members.len();
    let list = synth::watchlist(a.entries, 2026);
    let mut per_origin: Vec<Vec<(Value, Seeded, String)>> = vec![Vec::new(); m];
    for (k, e) in list.iter().enumerate() {
        let origin = k % m;
        let groups = members.get(origin).map(|(_, g)| *g).unwrap_or(&[]);
        let (v, s) = draft(e, k, origin, groups);
        if let Some(p) = per_origin.get_mut(origin) {
            p.push((v, s, format!("demo-{k}")));
        }
    }
    let t_seed = Instant::now();
    let mut seeded: Vec<Seeded> = Vec::new();
    for (origin, items) in per_origin.into_iter().enumerate() {
        let Some(child) = children.get(origin) else {
            continue;
        };
        for chunk in items.chunks(250) {
            let drafts: Vec<EntryDraft> = chunk
                .iter()
                .map(|(v, _, _)| serde_json::from_value(v.clone()))
                .collect::<Result<_, _>>()
                .context("a generated demo entry is invalid")?;
            let rows: Vec<ImportRow<'_>> = chunk
                .iter()
                .zip(&drafts)
                .map(|((_, _, id), d)| ImportRow {
                    source_id: id,
                    entry: d,
                })
                .collect();
            let reply = child.client.import_batch("demo-seed", &rows).await?;
            for ((_, s, _), r) in chunk.iter().zip(reply.results) {
                match r.entry_id {
                    Some(id) if r.result != "failed" => {
                        let mut s = s.clone();
                        s.entry_id = id.to_string();
                        seeded.push(s);
                    }
                    _ => bail!(
                        "{} refused a demo entry: {}",
                        child.agency,
                        r.error.unwrap_or_default()
                    ),
                }
            }
        }
    }
    errln!(
        "Seeded {} entries at their origins in {:.1} s; replicating...",
        seeded.len(),
        t_seed.elapsed().as_secs_f64()
    );

    // Expected holdings per member.
    let mut expected: Vec<BTreeSet<(String, String)>> = vec![BTreeSet::new(); m];
    for s in &seeded {
        for (n, set) in expected.iter_mut().enumerate() {
            if expect(members, s, n) == Expect::Holds {
                let origin = members.get(s.origin).map(|(c, _)| *c).unwrap_or_default();
                set.insert((origin.to_owned(), s.entry_id.clone()));
            }
        }
    }

    let t_sync = Instant::now();
    let converged = tokio::select! {
        r = wait_converged(children, &expected, a.timeout) => Some(r?),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(converged) = converged else {
        errln!("Interrupted; stopping the nodes.");
        return Ok(ExitCode::from(130));
    };
    let secs = converged.then(|| t_sync.elapsed().as_secs_f64());
    let summary = summarize(
        children, members, &seeded, &expected, converged, secs, &fed.dir,
    )
    .await?;
    let mut summary = summary;
    if converged {
        let t_consult = Instant::now();
        errln!(
            "Consulting (Art. 16): {} asks {} about three of its entries...",
            members.first().map_or("", |m| m.0),
            members.get(1).map_or("", |m| m.0)
        );
        let candidates: Vec<String> = seeded
            .iter()
            .filter(|s| s.origin == 1 && expect(members, s, 0) == Expect::Holds)
            .map(|s| s.entry_id.clone())
            .take(3)
            .collect();
        match <[String; 3]>::try_from(candidates) {
            Ok(entries) => match super::demo_consult::run(children, 0, 1, &entries).await {
                Ok(runs) => {
                    errln!(
                        "  three consultations done in {:.1} s",
                        t_consult.elapsed().as_secs_f64()
                    );
                    summary.consultations = runs;
                }
                Err(e) => {
                    if let Some(n) = summary.nodes.first_mut() {
                        n.problems.push(format!("consultations: {e:#}"));
                    }
                }
            },
            Err(_) => errln!(
                "  (skipped: fewer than three entries of the second agency held by the first; seed more with --entries)"
            ),
        }
        errln!("Auditing every member live over /wlnode/audit/1 as {AUDITOR}...");
        let (verdict, problems) = live_audit(fed, children).await;
        // Members are audited by the auditor: each carries its verdict, named as such.
        for n in &mut summary.nodes {
            n.audit = if n.role == "auditor" {
                verdict.clone()
            } else {
                format!("by {AUDITOR}: {verdict}")
            };
        }
        if let Some(n) = summary.nodes.iter_mut().find(|n| n.role == "auditor") {
            n.problems.extend(problems);
        }
    }
    let ok = summary.converged && summary.nodes.iter().all(|n| n.problems.is_empty());
    if a.json {
        super::print_json(&summary)?;
    } else {
        print_summary(&summary)?;
        if !summary.consultations.is_empty() {
            super::demo_consult::print(&summary.consultations)?;
        }
    }
    if !ok {
        errln!(
            "The federation did NOT converge as the policies say it should; node logs are next to each node.toml in {}.",
            fed.dir.display()
        );
        if a.dir.is_none() {
            errln!("(Run with --dir DIR to keep the files.)");
        }
        return Ok(ExitCode::FAILURE);
    }
    if a.exit_after_sync {
        return Ok(ExitCode::SUCCESS);
    }
    let sample = seeded
        .iter()
        .find(|s| s.origin == 0 && s.personal)
        .map(|s| s.entry_id.clone());
    print_console(children).await?;
    print_next_steps(children, sample.as_deref())?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    errln!("\nCtrl-C: stopping every node cleanly...");
    Ok(ExitCode::SUCCESS)
}

/// Polls the members until each holds its expected count, then compares exact sets.
/// Returns false on timeout. Fails early if a child dies.
async fn wait_converged(
    children: &mut [Child],
    expected: &[BTreeSet<(String, String)>],
    timeout: Duration,
) -> anyhow::Result<bool> {
    let tty = std::io::stderr().is_terminal();
    let bars = indicatif::MultiProgress::new();
    let style =
        indicatif::ProgressStyle::with_template("  {prefix:<11} [{bar:30}] {pos}/{len} records")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
    let mut pbs = Vec::new();
    for (c, e) in children.iter().zip(expected) {
        let pb = bars.add(indicatif::ProgressBar::new(e.len() as u64));
        pb.set_style(style.clone());
        pb.set_prefix(c.agency.clone());
        pbs.push(pb);
    }
    let deadline = Instant::now() + timeout;
    let mut last_line = Instant::now();
    loop {
        let mut counts = Vec::new();
        for (c, pb) in children.iter_mut().zip(&pbs) {
            if let Some(s) = c.process.try_wait()? {
                bail!(
                    "{} exited ({s}); its log {} ends with:\n{}",
                    c.agency,
                    c.log.display(),
                    tail(&c.log, 15)
                );
            }
            let records = c
                .client
                .status()
                .await?
                .get("records")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            pb.set_position(records);
            counts.push(records);
        }
        if !tty && last_line.elapsed() > Duration::from_secs(2) {
            let line: Vec<String> = children
                .iter()
                .zip(counts.iter().zip(expected))
                .map(|(c, (n, e))| format!("{} {n}/{}", c.agency, e.len()))
                .collect();
            errln!("  {}", line.join("  "));
            last_line = Instant::now();
        }
        if counts
            .iter()
            .zip(expected)
            .all(|(n, e)| *n >= e.len() as u64)
        {
            let mut all = true;
            for (c, e) in children.iter().zip(expected) {
                all &= held(&c.client).await? == *e;
            }
            if all {
                for pb in &pbs {
                    pb.finish();
                }
                return Ok(true);
            }
        }
        if Instant::now() > deadline {
            for pb in &pbs {
                pb.abandon();
            }
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the auditor's live verification against every member (as `wlnode audit verify
/// --config` without `--logs` would) and returns the verdict and the violations. The
/// running auditor node's config is left alone: a copy with the members as `[[peers]]`
/// is written next to it.
async fn live_audit(fed: &Federation, children: &[Child]) -> (String, Vec<String>) {
    match try_live_audit(fed, children).await {
        Ok(r) => r,
        Err(e) => (format!("FAILED: {e:#}"), vec![format!("live audit: {e:#}")]),
    }
}

async fn try_live_audit(
    fed: &Federation,
    children: &[Child],
) -> anyhow::Result<(String, Vec<String>)> {
    let node = fed
        .nodes
        .iter()
        .find(|n| n.agency.as_str() == AUDITOR)
        .context("no auditor in the federation")?;
    let mut text = std::fs::read_to_string(&node.config)
        .with_context(|| format!("cannot read {}", node.config.display()))?;
    for c in children.iter().filter(|c| c.role == "member") {
        let addrs: Vec<String> = c.listen.iter().map(|a| format!("{a:?}")).collect();
        text.push_str(&format!(
            "\n[[peers]]\nagency = \"{}\"\naddrs = [{}]\n",
            c.agency,
            addrs.join(", ")
        ));
    }
    let path = node.config.with_file_name("audit-live.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let cfg = Config::load(&path)?;
    let key = wlnode_crypto::keyfile::read_secret_key(
        &cfg.raw.node_key,
        wlnode_crypto::keyfile::KeyKind::Node,
    )?;
    let roster = super::policy::load_roster(&cfg, None)?;
    let live = wlnode_runtime::auditor::verify_live(
        &cfg,
        &key,
        &roster,
        &wlnode_audit::verify::AuditorState::default(),
        wlnode_audit::verify::Options {
            now_ms: Some(wlnode_crypto::Timestamp::now().as_millis()),
            ..wlnode_audit::verify::Options::default()
        },
        wlnode_runtime::auditor::LiveLimits::default(),
    )
    .await?;
    let r = &live.report;
    if r.ok {
        let events: u64 = r.nodes.iter().map(|n| n.events).sum();
        Ok((
            format!(
                "ok ({events} events, {} nodes; {} checkpoints cosigned)",
                r.nodes.len(),
                live.cosigned.len()
            ),
            Vec::new(),
        ))
    } else {
        let problems: Vec<String> = r
            .violations
            .iter()
            .map(|v| format!("audit violation {} at {}: {}", v.kind, v.node, v.detail))
            .collect();
        Ok((
            format!("FAILED: {} violation(s)", r.violations.len()),
            problems,
        ))
    }
}

/// The (origin, entry_id) pairs a node holds.
async fn held(client: &Client) -> anyhow::Result<BTreeSet<(String, String)>> {
    Ok(client
        .list_all(&[], None)
        .await?
        .iter()
        .filter_map(|e| {
            Some((
                e.get("origin")?.as_str()?.to_owned(),
                e.get("entry_id")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// Sums the samples of counter `name`, leaving out those whose labels contain `skip`.
fn metric_sum(metrics: &str, name: &str, skip: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.contains(skip))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[allow(clippy::too_many_arguments)]
async fn summarize(
    children: &[Child],
    members: &[Member],
    seeded: &[Seeded],
    expected: &[BTreeSet<(String, String)>],
    converged: bool,
    secs: Option<f64>,
    dir: &Path,
) -> anyhow::Result<Summary> {
    let by_id: BTreeMap<&str, &Seeded> = seeded.iter().map(|s| (s.entry_id.as_str(), s)).collect();
    let mut nodes = Vec::new();
    for (n, c) in children.iter().enumerate() {
        let status = c.client.status().await?;
        let metrics = c.client.get_text("/metrics").await.unwrap_or_default();
        let member = n < members.len();
        let mut s = NodeSummary {
            agency: c.agency.clone(),
            role: c.role,
            records: status.get("records").and_then(Value::as_u64).unwrap_or(0),
            expected: expected.get(n).map_or(0, |e| e.len() as u64),
            outside_distribution: 0,
            declined_by_policy: 0,
            records_with_withheld_fields: 0,
            scoped_fields_withheld: 0,
            withheld_fields: BTreeSet::new(),
            rejected: metric_sum(
                &metrics,
                "wlnode_records_rejected_total",
                "reason=\"declined_by_policy\"",
            ),
            equivocations: status
                .get("disputed_versions")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            audit: "not checked: the federation did not converge".into(),
            api: c.client_addr(),
            token_file: c.token_file.clone(),
            config: c.config.clone(),
            problems: Vec::new(),
        };
        if member {
            for sd in seeded {
                match expect(members, sd, n) {
                    Expect::Holds => {}
                    Expect::OutsideDistribution => s.outside_distribution += 1,
                    Expect::DeclinedByPolicy => s.declined_by_policy += 1,
                }
            }
            let entries = c.client.list_all(&[], None).await?;
            let mut got = BTreeSet::new();
            for e in &entries {
                let origin = e.get("origin").and_then(Value::as_str).unwrap_or_default();
                let id = e
                    .get("entry_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                got.insert((origin.to_owned(), id.to_owned()));
                let withheld: Vec<String> = e
                    .get("withheld")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if !withheld.is_empty() {
                    s.records_with_withheld_fields += 1;
                    s.withheld_fields.extend(withheld.iter().cloned());
                }
                let Some(sd) = by_id.get(id) else { continue };
                let subject = e.get("subject").cloned().unwrap_or(Value::Null);
                let carries_personal = PERSONAL.iter().any(|f| {
                    subject
                        .get(*f)
                        .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
                });
                if personal_withheld(members, sd.origin, n) && carries_personal {
                    s.problems.push(format!(
                        "holds entry {id} from {origin} WITH personal identifiers that its origin withholds from it"
                    ));
                }
                if personal_withheld(members, sd.origin, n) && sd.personal && withheld.is_empty() {
                    s.problems.push(format!(
                        "its copy of entry {id} from {origin} should show personal fields as withheld"
                    ));
                }
                let carries_identifiers = subject
                    .get("identifiers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                if identifiers_scoped_away(members, sd, n) {
                    if carries_identifiers {
                        s.problems.push(format!(
                            "holds identifiers of entry {id} from {origin} that its origin scoped to group eu"
                        ));
                    } else {
                        s.scoped_fields_withheld += 1;
                    }
                }
                if expect(members, sd, n) != Expect::Holds {
                    s.problems.push(format!(
                        "holds entry {id} from {origin} that it should not hold"
                    ));
                }
            }
            if let Some(e) = expected.get(n) {
                let missing = e.difference(&got).count();
                if missing > 0 {
                    s.problems
                        .push(format!("{missing} expected entries are missing"));
                }
            }
            if s.rejected > 0 {
                s.problems.push(format!(
                    "{} records rejected; see {}",
                    s.rejected,
                    c.log.display()
                ));
            }
            if s.equivocations > 0 {
                s.problems
                    .push(format!("{} equivocating versions", s.equivocations));
            }
        }
        s.problems.truncate(10);
        nodes.push(s);
    }
    Ok(Summary {
        converged,
        seconds_to_converge: secs,
        dir: dir.to_owned(),
        nodes,
        consultations: Vec::new(),
    })
}

fn print_summary(s: &Summary) -> anyhow::Result<()> {
    outln!();
    match s.seconds_to_converge {
        Some(t) => outln!(
            "Converged in {t:.1} s: every node holds exactly what the distributions and policies allow."
        ),
        None => outln!("NOT converged within the timeout."),
    }
    outln!();
    outln!(
        "{:<11} {:<7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>6}  api",
        "node",
        "role",
        "records",
        "expected",
        "not-dist",
        "declined",
        "withheld",
        "rejected",
        "equiv",
    );
    for n in &s.nodes {
        outln!(
            "{:<11} {:<7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>6}  {}",
            n.agency,
            n.role,
            n.records,
            n.expected,
            n.outside_distribution,
            n.declined_by_policy,
            n.records_with_withheld_fields,
            n.rejected,
            n.equivocations,
            n.api
        );
    }
    outln!();
    outln!("  not-dist: seeded records whose signed distribution excludes the node");
    outln!(
        "  declined: records the node's accept rules refused (CC-TRADE keeps only public entries)"
    );
    outln!("  withheld: copies held with fields withheld by the sender's policy");
    for n in &s.nodes {
        if !n.withheld_fields.is_empty() {
            let f: Vec<&str> = n.withheld_fields.iter().map(String::as_str).collect();
            outln!("  {} holds copies without: {}", n.agency, f.join(", "));
        }
        if n.scoped_fields_withheld > 0 {
            outln!(
                "  {} holds {} copies without the identifiers their origins' signed field scopes keep for group eu",
                n.agency,
                n.scoped_fields_withheld
            );
        }
        if n.role == "auditor" {
            outln!("  {} (auditor) audit: {}", n.agency, n.audit);
        }
        for p in &n.problems {
            outln!("  PROBLEM at {}: {p}", n.agency);
        }
    }
    outln!();
    outln!("Federation files: {}", s.dir.display());
    Ok(())
}

/// The demo's console users on the first member: one per officer role, made by the
/// bootstrap admin, each printed with its token so a browser can log in at once.
pub const CONSOLE_USERS: &[(&str, &[&str])] = &[
    ("officer", &["screener"]),
    ("editor", &["editor"]),
    ("approver", &["approver"]),
    ("viewer", &["viewer"]),
];

/// Prints the web console's URL on the first member with a login token for each demo
/// user (and the bootstrap admin's token file).
async fn print_console(children: &[Child]) -> anyhow::Result<()> {
    let Some(first) = children.first() else {
        return Ok(());
    };
    outln!();
    outln!("Web console: http://{}/ui/", first.client.addr());
    outln!("  Log in with one of these tokens (one user per role):");
    for (name, roles) in CONSOLE_USERS {
        let body = serde_json::json!({"user": name, "roles": roles});
        match first
            .client
            .post_json::<_, serde_json::Value>("/v1/users", &body)
            .await
        {
            Ok(v) => outln!(
                "  {name:<9} ({}): {}",
                roles.join(", "),
                v.get("token").and_then(|t| t.as_str()).unwrap_or("?")
            ),
            Err(e) => outln!("  {name}: could not be created ({e})"),
        }
    }
    match wlnode_config::token::read_token(&first.token_file) {
        Ok(t) => outln!("  {:<9} (admin): {t}", "admin"),
        Err(e) => outln!("  admin: {e}"),
    }
    Ok(())
}

fn print_next_steps(children: &[Child], sample: Option<&str>) -> anyhow::Result<()> {
    let Some(first) = children.first() else {
        return Ok(());
    };
    let second = children.get(1).unwrap_or(first);
    let cfg = first.config.display();
    outln!("The nodes keep running. In another terminal, try:");
    outln!("  wlnode status --config {cfg}");
    outln!(
        "  wlnode entry list --config {} --limit 5",
        second.config.display()
    );
    if let (Some(id), Some(to)) = (sample, children.get(1)) {
        outln!(
            "  wlnode policy explain --config {cfg} --entry {id} --to {}",
            to.agency
        );
    }
    outln!(
        "API tokens are in each node's api.token (e.g. {}).",
        first.token_file.display()
    );
    outln!("Press Ctrl-C to stop every node.");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use wlnode_config::Config;

    fn seeded(origin: usize, groups: Option<Vec<&'static str>>, public: bool) -> Seeded {
        Seeded {
            origin,
            entry_id: String::new(),
            groups,
            public,
            personal: true,
            eu_identifiers: false,
        }
    }

    #[test]
    fn expectations_follow_distribution_and_accept_rules() {
        let m: Vec<Member> = MEMBERS.iter().take(3).copied().collect();
        // A public federation-wide record from AA reaches everyone.
        let s = seeded(0, None, true);
        assert!((0..3).all(|n| expect(&m, &s, n) == Expect::Holds));
        // A restricted one is declined by CC-TRADE's accept rule.
        let s = seeded(0, None, false);
        assert_eq!(expect(&m, &s, 2), Expect::DeclinedByPolicy);
        assert_eq!(expect(&m, &s, 1), Expect::Holds);
        // A group "eu" record never reaches CC-TRADE (pacific only).
        let s = seeded(0, Some(vec!["eu"]), false);
        assert_eq!(expect(&m, &s, 2), Expect::OutsideDistribution);
        assert_eq!(expect(&m, &s, 1), Expect::Holds);
        // Only AA -> BB withholds personal fields.
        assert!(personal_withheld(&m, 0, 1));
        assert!(!personal_withheld(&m, 0, 2));
        assert!(!personal_withheld(&m, 1, 0));
    }

    #[test]
    fn every_policy_loads_against_the_generated_roster() {
        let dir = tempfile::tempdir().unwrap();
        let mut specs: Vec<AgencySpec> = MEMBERS
            .iter()
            .map(|(c, g)| AgencySpec::member(c, g).unwrap())
            .collect();
        specs.push(AgencySpec::auditor(AUDITOR).unwrap());
        let fed = scaffold::create(dir.path(), "demo", &specs).unwrap();
        for node in &fed.nodes {
            scaffold::write_config(
                &fed,
                node,
                &NodeOptions {
                    extra: policy(node.agency.as_str()),
                    ..NodeOptions::default()
                },
            )
            .unwrap();
            let cfg = Config::load(&node.config).unwrap();
            let (bytes, sig) = wlnode_config::roster_file::read_signed(&fed.roster).unwrap();
            let roster = wlnode_crypto::roster::verify_roster(
                &bytes,
                &sig,
                &wlnode_crypto::roster::TrustAnchor {
                    authorities: vec![fed.authority],
                    accepted: None,
                },
            )
            .unwrap();
            let r = wlnode_policy::Policy::from_config(&cfg, std::sync::Arc::new(roster));
            assert!(r.is_ok(), "{}: {:?}", node.agency, r.err());
        }
    }

    #[test]
    fn generated_entries_are_valid_drafts() {
        let list = synth::watchlist(60, 7);
        for (k, e) in list.iter().enumerate() {
            let (v, s) = draft(e, k, k % 3, MEMBERS[k % 3].1);
            let d: EntryDraft = serde_json::from_value(v).unwrap();
            d.validate().unwrap();
            assert_eq!(s.origin, k % 3);
        }
    }
}
