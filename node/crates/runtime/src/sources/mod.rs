//! Sources that refresh (issue 24 item 3): the `[[source]]` lists of `node.toml`,
//! fetched on a schedule and imported through the same writer as `wlnode import`
//! (`Lifecycle::import`, then `Lifecycle::withdraw_missing_at_most`), so refreshes
//! are idempotent, amend what changed and withdraw what vanished.
//!
//! One task owns every source ([`spawn`]): it sleeps until the earliest due source
//! (a timer, never a polling loop), refreshes due sources one at a time, and takes
//! "run now" requests from the API through [`Sources`]. Timing is decided by the
//! sans-IO [`schedule`]; what is remembered across restarts (validators for
//! conditional requests, the digest of the last file imported) by [`state`]; the HTTP
//! request itself by `wlnode_client::fetch`.
//!
//! **A refresh that fails, or whose file may be truncated, never withdraws
//! anything.** Truncation is recognised three ways: a body shorter than its
//! `Content-Length` (the fetch fails and nothing is imported), a parse that reports
//! row errors (the rows that parsed are imported, as `wlnode import` does, but
//! nothing is withdrawn and the refresh counts as failed), and the withdrawal guard:
//! when the new file would withdraw more than `max_withdraw_fraction` of the list's
//! active entries counted *before* its rows were imported, or leave fewer than
//! `(1 - max_withdraw_fraction)` × the list's high-water mark (kept in the state
//! file, raised only by successful refreshes), nothing is withdrawn and the refresh
//! counts as failed. A CSV, JSON lines or FtM file cut at a row boundary is not
//! detected; only the guard limits it. A SHA-256 pin that does not match imports
//! nothing. The source list written to is fixed by the config
//! (`effective_source_list`), never read from the file. After any failure the validators of the
//! last complete import are kept, so the next try downloads the file again rather
//! than hearing "not modified" about a file that was never fully applied.

pub mod schedule;
pub mod state;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use wlnode_audit::event::{Event, EventKind};
use wlnode_client::fetch::{FetchLimits, Fetched, Fetcher, Validators};
use wlnode_config::sources::Origin;
use wlnode_config::{Config, SourceConfig, SourceFormat};
use wlnode_crypto::Timestamp;
use wlnode_import::{Format, ImportDefaults};
use wlnode_store::StoreHandle;

use crate::entries::{
    ImportItem, ImportOutcome, Lifecycle, LifecycleError, MissingOutcome, WithdrawGuard,
};
use crate::handles::Ingested;
use crate::metrics::{ListClassLabel, ListLabel, ListOutcomeLabel, ListResultLabel, Metrics};
use crate::trust::TrustCell;

use schedule::{Ran, Schedule, Step};
use state::{Remembered, StateFile};

/// Rows per import call (the API's bound for one import request).
const BATCH: usize = 5000;

/// The withdrawal reason of entries that vanished from a source.
const WITHDRAW_REASON: &str = "no longer in the source list";

/// The import format of a source format. Exhaustive both ways: a format added to
/// the import crate fails `every_import_format_can_be_a_source` until it has a name
/// in the config.
pub fn import_format(f: SourceFormat) -> Format {
    match f {
        SourceFormat::Csv => Format::Csv,
        SourceFormat::Jsonl => Format::Jsonl,
        SourceFormat::Ftm => Format::Ftm,
        SourceFormat::UnXml => Format::UnXml,
        SourceFormat::OfacXml => Format::OfacXml,
        SourceFormat::EuXml => Format::EuXml,
        SourceFormat::UkXml => Format::UkXml,
    }
}

/// How a refresh ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Something was written (added, amended or withdrawn).
    Updated,
    /// Nothing to write: not modified, the same file, or every row unchanged.
    Unchanged,
    /// The refresh failed; see `error_class`. Nothing was withdrawn.
    Failed,
}

impl Outcome {
    /// The name used in metrics, audit events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Failed => "failed",
        }
    }
}

/// What one refresh did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RefreshReport {
    /// The source.
    pub source: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Machine-readable failure class: `connect`, `timeout`, `http_status`,
    /// `too_large`, `truncated`, `redirect`, `read`, `sha256_mismatch`, `parse`,
    /// `parse_errors`, `withdraw_guard`, `held`, `store`, `import`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// The failure, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server answered 304 to the conditional request.
    pub not_modified: bool,
    /// The file was byte for byte the last one imported (nothing parsed).
    pub same_file: bool,
    /// Bytes read.
    pub bytes: u64,
    /// SHA-256 (hex) of the file read, when one was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Rows in the file (parsed and failed).
    pub rows: usize,
    /// Entries added.
    pub added: usize,
    /// Entries amended.
    pub amended: usize,
    /// Rows that changed nothing.
    pub unchanged: usize,
    /// Rows refused (parse errors, invalid for the roster).
    pub failed: usize,
    /// Entries withdrawn because they vanished from the list.
    pub withdrawn: usize,
    /// Entries the guard kept from being withdrawn.
    pub withdraw_refused: usize,
    /// When the refresh started.
    pub started_at: Timestamp,
    /// How long it took.
    pub duration_ms: u64,
}

impl RefreshReport {
    fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            outcome: Outcome::Unchanged,
            error_class: None,
            error: None,
            not_modified: false,
            same_file: false,
            bytes: 0,
            sha256: None,
            rows: 0,
            added: 0,
            amended: 0,
            unchanged: 0,
            failed: 0,
            withdrawn: 0,
            withdraw_refused: 0,
            started_at: Timestamp::now(),
            duration_ms: 0,
        }
    }
}

/// One source as `GET /v1/sources` shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    /// Its name.
    pub name: String,
    /// The URL or file it comes from.
    pub origin: String,
    /// Its format.
    pub format: String,
    /// Its period, e.g. `6h`.
    pub every: String,
    /// Whether vanished rows are withdrawn.
    pub withdraw_missing: bool,
    /// The withdrawal guard.
    pub max_withdraw_fraction: f64,
    /// The last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    /// The last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// The last outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<Outcome>,
    /// The last failure's class, while failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_class: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// When it runs next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Timestamp>,
    /// The last refresh since the node started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_report: Option<RefreshReport>,
}

/// Why a request about sources was refused.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// No such source in the config.
    #[error("no source named {0:?} in the config")]
    Unknown(String),
    /// The node is stopping.
    #[error("the sources service has stopped")]
    Stopped,
}

/// A request to the service.
#[derive(Debug)]
pub struct RunRequest {
    index: usize,
    reply: oneshot::Sender<RefreshReport>,
}

/// The handle frontends use: the sources' status and "run now".
#[derive(Clone, Debug)]
pub struct Sources {
    status: Arc<Mutex<Vec<SourceStatus>>>,
    cmd: mpsc::Sender<RunRequest>,
}

impl Sources {
    /// The handle for `cfg`'s sources, and the service's end of the request queue.
    pub(crate) fn new(cfg: &Config) -> (Self, mpsc::Receiver<RunRequest>) {
        let status = cfg
            .raw
            .source
            .iter()
            .map(|s| SourceStatus {
                name: s.name().to_string(),
                origin: s.origin().to_string(),
                format: s.format.to_string(),
                every: humantime::format_duration(s.every.get_ref().0).to_string(),
                withdraw_missing: s.withdraw_missing,
                max_withdraw_fraction: *s.max_withdraw_fraction.get_ref(),
                last_attempt: None,
                last_success: None,
                last_outcome: None,
                last_error_class: None,
                consecutive_failures: 0,
                next_run: None,
                last_report: None,
            })
            .collect();
        let (tx, rx) = mpsc::channel(16);
        (
            Self {
                status: Arc::new(Mutex::new(status)),
                cmd: tx,
            },
            rx,
        )
    }

    /// Every configured source, in config order.
    pub fn list(&self) -> Vec<SourceStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Refreshes `name` now and returns what happened (after any refresh already
    /// running).
    pub async fn run(&self, name: &str) -> Result<RefreshReport, SourceError> {
        let index = self
            .list()
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| SourceError::Unknown(name.to_owned()))?;
        let (reply, rx) = oneshot::channel();
        self.cmd
            .send(RunRequest { index, reply })
            .await
            .map_err(|_| SourceError::Stopped)?;
        rx.await.map_err(|_| SourceError::Stopped)
    }
}

/// What the service writes through: the entry writer, the roster (to check rows),
/// ingest bookkeeping, the store (audit events) and metrics.
#[derive(Clone, Debug)]
pub(crate) struct Deps {
    pub lifecycle: Lifecycle,
    pub trust: TrustCell,
    pub ingested: Ingested,
    pub store: StoreHandle,
    pub metrics: Arc<Metrics>,
    /// Where `source_failed` is announced.
    pub events: crate::events::Events,
}

/// Starts the service for `cfg`'s sources (none configured: no task).
pub(crate) async fn spawn(
    cfg: Arc<Config>,
    handle: &Sources,
    requests: mpsc::Receiver<RunRequest>,
    deps: Deps,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if cfg.raw.source.is_empty() {
        return None;
    }
    let state_file = state::path(&cfg.raw.data_dir);
    let remembered = state::load(&state_file).await;
    let now = Instant::now();
    let now_ms = Timestamp::now().as_millis();
    let mut schedules = Vec::new();
    let mut fetchers = Vec::new();
    for s in &cfg.raw.source {
        let mem = remembered
            .sources
            .get(s.name().as_str())
            .filter(|m| m.key == memory_key(s));
        let since = mem
            .and_then(|m| m.last_success_ms)
            .map(|t| Duration::from_millis(now_ms.saturating_sub(t)));
        schedules.push(Schedule::new(
            now,
            s.every.get_ref().0,
            s.retry.get_ref().0,
            since,
        ));
        fetchers.push(Fetcher::new(FetchLimits {
            max_bytes: s.max_bytes,
            timeout: s.timeout.get_ref().0,
        }));
    }
    let service = Service {
        cfg,
        deps,
        fetchers,
        schedules,
        state: remembered,
        state_file,
        status: handle.status.clone(),
    };
    for i in 0..service.schedules.len() {
        service.publish(i, None);
    }
    Some(tokio::spawn(service.run(requests, shutdown)))
}

/// What a source's memory is valid for: a change of origin, of the import settings,
/// of the SHA-256 pin or of the withdrawal settings forgets the validators, the
/// digest and the guard's high-water mark, so the file is fetched in full and
/// imported again under the new settings (a 304 never vouches for a file checked
/// against other settings).
fn memory_key(s: &SourceConfig) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}",
        s.origin(),
        s.format,
        s.effective_source_list(),
        s.reason.map_or("", |r| r.as_str()),
        s.sha256_pin().unwrap_or_default(),
        s.withdraw_missing,
        s.max_withdraw_fraction.get_ref()
    )
}

/// The validators to send: those remembered, except when the source is pinned and
/// the remembered digest is not the pin (then the request is unconditional, so a
/// 304 cannot stand for a file never checked against the pin).
fn conditional_validators(src: &SourceConfig, mem: &Remembered) -> Validators {
    match src.sha256_pin() {
        Some(pin) if mem.sha256.as_deref() != Some(pin.as_str()) => Validators::default(),
        _ => mem.validators.clone(),
    }
}

/// The fewest active entries the cumulative guard leaves: `(1 - fraction) ×
/// high_water`, rounded up (a hair of slack for floating point).
fn withdraw_floor(fraction: f64, high_water: u64) -> usize {
    let floor = ((1.0 - fraction) * high_water as f64 - 1e-9).ceil();
    if floor <= 0.0 {
        0
    } else {
        // Bounded by high_water, which counts entries in memory.
        floor as usize
    }
}

/// A failed refresh: its class and message.
struct Failure {
    class: &'static str,
    message: String,
}

impl Failure {
    fn new(class: &'static str, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

struct Service {
    cfg: Arc<Config>,
    deps: Deps,
    fetchers: Vec<Result<Fetcher, wlnode_client::fetch::FetchError>>,
    schedules: Vec<Schedule>,
    state: StateFile,
    state_file: std::path::PathBuf,
    status: Arc<Mutex<Vec<SourceStatus>>>,
}

impl Service {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<RunRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let now = Instant::now();
            let mut wake: Option<Instant> = None;
            let mut due = None;
            for (i, s) in self.schedules.iter().enumerate() {
                match s.poll(now) {
                    Step::Run => {
                        due = Some(i);
                        break;
                    }
                    Step::WaitUntil(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                }
            }
            if let Some(i) = due {
                tokio::select! {
                    _ = self.refresh(i) => {}
                    _ = shutdown.changed() => return,
                }
                continue;
            }
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(
                wake.unwrap_or_else(|| schedule::later(now, Duration::from_secs(3600))),
            ));
            tokio::select! {
                () = sleep => {}
                req = requests.recv() => {
                    let Some(RunRequest { index, reply }) = req else { return };
                    if index < self.schedules.len() {
                        tokio::select! {
                            report = self.refresh(index) => { let _ = reply.send(report); }
                            _ = shutdown.changed() => return,
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Refreshes source `i`, records the outcome everywhere, and schedules the next
    /// run.
    async fn refresh(&mut self, i: usize) -> RefreshReport {
        let Some(src) = self.cfg.raw.source.get(i).cloned() else {
            return RefreshReport::new("");
        };
        let name = src.name().to_string();
        let t0 = Instant::now();
        let mut report = RefreshReport::new(&name);
        let key = memory_key(&src);
        let mut mem = self
            .state
            .sources
            .get(&name)
            .filter(|m| m.key == key)
            .cloned()
            .unwrap_or_else(|| Remembered {
                key: key.clone(),
                ..Remembered::default()
            });
        let result = self.fetch_and_import(i, &src, &mut mem, &mut report).await;
        report.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now_ms = Timestamp::now().as_millis();
        mem.last_attempt_ms = Some(now_ms);
        let ran = match result {
            Ok(()) => {
                report.outcome = if report.added + report.amended + report.withdrawn > 0 {
                    Outcome::Updated
                } else {
                    Outcome::Unchanged
                };
                mem.last_success_ms = Some(now_ms);
                mem.last_error_class = None;
                Ran::Ok
            }
            Err(f) => {
                report.outcome = Outcome::Failed;
                report.error_class = Some(f.class.to_owned());
                report.error = Some(f.message);
                mem.last_error_class = Some(f.class.to_owned());
                Ran::Failed
            }
        };
        mem.last_outcome = Some(report.outcome.as_str().to_owned());
        if let Some(s) = self.schedules.get_mut(i) {
            s.finished(Instant::now(), ran);
        }
        self.state.sources.insert(name.clone(), mem);
        if let Err(e) = state::save(&self.state_file, &self.state).await {
            tracing::warn!(file = %self.state_file.display(), error = %e, "cannot write the source state");
        }
        self.record(&report, &src.origin().to_string()).await;
        self.publish(i, Some(report.clone()));
        report
    }

    /// Fetches (or reads) the file and imports it. On `Ok`, `mem` holds the new
    /// validators and digest.
    async fn fetch_and_import(
        &self,
        i: usize,
        src: &SourceConfig,
        mem: &mut Remembered,
        report: &mut RefreshReport,
    ) -> Result<(), Failure> {
        let (bytes, validators) = match src.origin() {
            Origin::Url(url) => {
                let fetcher = self
                    .fetchers
                    .get(i)
                    .ok_or_else(|| Failure::new("setup", "no fetcher"))?
                    .as_ref()
                    .map_err(|e| Failure::new(e.class(), e.to_string()))?;
                let sent = conditional_validators(src, mem);
                match fetcher.get(&url, &sent).await {
                    Ok(Fetched::NotModified) => {
                        report.not_modified = true;
                        // A 304 stands for the file last imported, so it needs one
                        // (and, for a pinned source, one that matched the pin).
                        if sent == Validators::default() || mem.sha256.is_none() {
                            return Err(Failure::new(
                                "http_status",
                                "HTTP status 304 to a request that named no version; nothing imported",
                            ));
                        }
                        return Ok(());
                    }
                    Ok(Fetched::Body { bytes, validators }) => (bytes, validators),
                    Err(e) => return Err(Failure::new(e.class(), e.to_string())),
                }
            }
            Origin::Path(path) => (
                read_bounded(&path, src.max_bytes).await?,
                Default::default(),
            ),
        };
        report.bytes = bytes.len() as u64;
        let digest = hex::encode(wlnode_crypto::sha256::digest(&bytes));
        report.sha256 = Some(digest.clone());
        if let Some(pin) = src.sha256_pin()
            && pin != digest
        {
            return Err(Failure::new(
                "sha256_mismatch",
                format!("the file's SHA-256 is {digest}, the config pins {pin}; nothing imported"),
            ));
        }
        if mem.sha256.as_deref() == Some(digest.as_str()) {
            report.same_file = true;
            mem.validators = validators;
            return Ok(());
        }
        let format = import_format(src.format);
        // The list is fixed by the config, never read from the file (an FtM file's
        // `datasets` must not choose which list it amends and withdraws from).
        let list = src.effective_source_list().to_owned();
        let defaults = ImportDefaults {
            source_list: Some(list.clone()),
            reason: src.reason,
            ..ImportDefaults::default()
        };
        let parsed =
            tokio::task::spawn_blocking(move || wlnode_import::parse(format, &bytes, &defaults))
                .await
                .map_err(|e| Failure::new("import", e.to_string()))?
                .map_err(|e| Failure::new("parse", format!("{e}; nothing imported")))?;
        report.rows = parsed.rows.len() + parsed.errors.len();
        report.failed = parsed.errors.len();
        let roster = self.deps.trust.roster();
        let mut keep = HashSet::new();
        let mut items = Vec::new();
        for row in parsed.rows {
            keep.insert(row.source_id.clone());
            match crate::entries::check_against_roster(&row.draft, &roster) {
                Ok(()) => items.push(ImportItem {
                    source_id: row.source_id,
                    draft: row.draft,
                }),
                Err(e) => {
                    report.failed += 1;
                    tracing::debug!(source = %src.name(), row = %row.location, error = %e, "source row refused");
                }
            }
        }
        let lifecycle = &self.deps.lifecycle;
        // The guard's baseline: the list's active entries before this file's rows
        // are imported (new rows in a hostile file must not dilute it).
        let active_before = if src.withdraw_missing {
            lifecycle
                .active_count(&list)
                .await
                .map_err(|e| self.write_failure(e))?
        } else {
            0
        };
        let mut rest = items;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(BATCH));
            let batch = std::mem::replace(&mut rest, tail);
            let (outcomes, written) = lifecycle
                .import(&list, batch)
                .await
                .map_err(|e| self.write_failure(e))?;
            if let Some(r) = &written {
                self.deps.ingested.after_ingest(r, "local");
            }
            for o in outcomes {
                match o {
                    ImportOutcome::Imported { .. } => report.added += 1,
                    ImportOutcome::Amended { .. } => report.amended += 1,
                    ImportOutcome::Unchanged { .. } => report.unchanged += 1,
                    ImportOutcome::Failed { .. } => report.failed += 1,
                }
            }
        }
        if !parsed.errors.is_empty() {
            let first = parsed
                .errors
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            return Err(Failure::new(
                "parse_errors",
                format!(
                    "{} rows failed to parse (first: {first}); the file may be truncated, so nothing was withdrawn",
                    parsed.errors.len()
                ),
            ));
        }
        let mut high_water = mem.high_water;
        if src.withdraw_missing {
            let fraction = *src.max_withdraw_fraction.get_ref();
            let mark = mem.high_water.unwrap_or(0).max(active_before as u64);
            let guard = WithdrawGuard {
                max_fraction: fraction,
                active_before: Some(active_before),
                floor: withdraw_floor(fraction, mark),
            };
            match lifecycle
                .withdraw_missing_at_most(&list, &keep, WITHDRAW_REASON, &guard)
                .await
                .map_err(|e| self.write_failure(e))?
            {
                MissingOutcome::Withdrawn {
                    written,
                    report: r,
                    active,
                } => {
                    report.withdrawn = written.len();
                    if let Some(r) = &r {
                        self.deps.ingested.after_ingest(r, "local");
                    }
                    let after = active.saturating_sub(written.len()) as u64;
                    high_water = Some(mark.max(after));
                }
                MissingOutcome::Refused {
                    would_withdraw,
                    active,
                    base,
                    remaining,
                    floor,
                } => {
                    report.withdraw_refused = would_withdraw;
                    return Err(Failure::new(
                        "withdraw_guard",
                        format!(
                            "the file would withdraw {would_withdraw} of the {active} active entries ({base} before this refresh), leaving {remaining}; max_withdraw_fraction = {fraction} allows at most {} at once and no fewer than {floor} left (high-water mark {mark}); the file may be truncated or hostile, so nothing was withdrawn (raise the fraction for one run, or run `wlnode import --withdraw-missing` by hand, if the list really shrank)",
                            (fraction * base as f64).floor()
                        ),
                    ));
                }
            }
        }
        mem.validators = validators;
        mem.sha256 = Some(digest);
        mem.high_water = high_water;
        Ok(())
    }

    fn write_failure(&self, e: LifecycleError) -> Failure {
        match e {
            LifecycleError::Store(s) => {
                self.deps.ingested.write_failed(&s);
                Failure::new("store", s.to_string())
            }
            e @ LifecycleError::AwaitingReconcile { .. } => Failure::new("held", e.to_string()),
            e => Failure::new("import", e.to_string()),
        }
    }

    /// Logs, counts and audits a finished refresh.
    async fn record(&self, r: &RefreshReport, origin: &str) {
        let m = &self.deps.metrics;
        let label = ListLabel {
            source: r.source.clone(),
        };
        let now_s = i64::try_from(Timestamp::now().as_millis() / 1000).unwrap_or(i64::MAX);
        m.source_last_attempt.get_or_create(&label).set(now_s);
        m.source_refreshes
            .get_or_create(&ListOutcomeLabel {
                source: r.source.clone(),
                outcome: r.outcome.as_str().to_owned(),
            })
            .inc();
        for (result, n) in [
            ("added", r.added),
            ("amended", r.amended),
            ("unchanged", r.unchanged),
            ("withdrawn", r.withdrawn),
            ("failed", r.failed),
        ] {
            m.source_entries
                .get_or_create(&ListResultLabel {
                    source: r.source.clone(),
                    result: result.to_owned(),
                })
                .inc_by(n as u64);
        }
        match &r.error_class {
            None => {
                m.source_last_success.get_or_create(&label).set(now_s);
                tracing::info!(
                    source = %r.source, outcome = r.outcome.as_str(), not_modified = r.not_modified,
                    same_file = r.same_file, bytes = r.bytes, rows = r.rows, added = r.added,
                    amended = r.amended, unchanged = r.unchanged, failed = r.failed,
                    withdrawn = r.withdrawn, ms = r.duration_ms, "source refreshed"
                );
            }
            Some(class) => {
                self.deps.events.emit(
                    wlnode_config::EventType::SourceFailed,
                    serde_json::json!({
                        "source": r.source,
                        "class": class,
                        "error": r.error,
                        "added": r.added,
                        "amended": r.amended,
                        "withdraw_refused": r.withdraw_refused,
                    }),
                );
                m.source_failures
                    .get_or_create(&ListClassLabel {
                        source: r.source.clone(),
                        class: class.clone(),
                    })
                    .inc();
                tracing::warn!(
                    source = %r.source, class = %class, error = r.error.as_deref().unwrap_or(""),
                    added = r.added, amended = r.amended, failed = r.failed,
                    withdraw_refused = r.withdraw_refused, "source refresh failed; nothing withdrawn"
                );
            }
        }
        if r.outcome == Outcome::Unchanged {
            return;
        }
        let count = |n: usize| n as u64;
        let event = Event::new(
            Timestamp::now().as_millis(),
            EventKind::SourceRefresh {
                source: r.source.clone(),
                origin: Some(origin.to_owned()),
                sha256: r.sha256.clone(),
                outcome: r.outcome.as_str().to_owned(),
                added: count(r.added),
                amended: count(r.amended),
                withdrawn: count(r.withdrawn),
                unchanged: count(r.unchanged),
                failed: count(r.failed),
                error_class: r.error_class.clone(),
            },
        );
        if let Err(e) = self
            .deps
            .store
            .call(move |s| s.audit_append(&[event]))
            .await
        {
            tracing::warn!(source = %r.source, error = %e, "cannot write the source_refresh audit event");
        }
    }

    /// Updates the status `GET /v1/sources` shows for source `i`.
    fn publish(&self, i: usize, report: Option<RefreshReport>) {
        let Some(src) = self.cfg.raw.source.get(i) else {
            return;
        };
        let mem = self
            .state
            .sources
            .get(src.name().as_str())
            .filter(|m| m.key == memory_key(src));
        let now = Instant::now();
        let wall = Timestamp::now().as_millis();
        let schedule = self.schedules.get(i);
        let mut all = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(st) = all.get_mut(i) else {
            return;
        };
        st.last_attempt = mem.and_then(|m| m.last_attempt_ms).map(Timestamp);
        st.last_success = mem.and_then(|m| m.last_success_ms).map(Timestamp);
        st.last_outcome = mem
            .and_then(|m| m.last_outcome.as_deref())
            .and_then(|o| match o {
                "updated" => Some(Outcome::Updated),
                "unchanged" => Some(Outcome::Unchanged),
                "failed" => Some(Outcome::Failed),
                _ => None,
            });
        st.last_error_class = mem.and_then(|m| m.last_error_class.clone());
        st.consecutive_failures = schedule.map_or(0, Schedule::failures);
        st.next_run = schedule.map(|s| {
            let wait = s.next().saturating_duration_since(now);
            Timestamp(wall.saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX / 2)))
        });
        if report.is_some() {
            st.last_report = report;
        }
    }
}

/// Reads a local source file, refusing one over `max_bytes`.
async fn read_bounded(path: &std::path::Path, max_bytes: u64) -> Result<Vec<u8>, Failure> {
    let too_large = || {
        Failure::new(
            "too_large",
            format!("{} exceeds the limit of {max_bytes} bytes", path.display()),
        )
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| Failure::new("read", format!("cannot read {}: {e}", path.display())))?;
    if meta.len() > max_bytes {
        return Err(too_large());
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| Failure::new("read", format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_format_can_be_a_source() {
        for f in Format::ALL {
            let s = SourceFormat::ALL
                .iter()
                .find(|s| s.as_str() == f.as_str())
                .unwrap_or_else(|| panic!("import format {f} has no source format"));
            assert_eq!(import_format(*s), *f);
        }
        assert_eq!(SourceFormat::ALL.len(), Format::ALL.len());
    }

    #[test]
    fn a_source_writes_to_the_fixed_list_of_its_format_as_a_hand_import_does() {
        for f in SourceFormat::ALL {
            assert_eq!(
                f.default_source_list(),
                import_format(*f).default_source_list()
            );
        }
    }

    fn source(extra: &str) -> SourceConfig {
        let cfg = Config::parse(
            std::path::Path::new("/x/node.toml"),
            &format!(
                "agency = \"BB-CUSTOMS\"\nroster = \"r\"\nagency_key = \"a\"\nnode_key = \"n\"\n\
                 [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"t\"\n\
                 [[source]]\nname = \"l\"\nurl = \"https://x.example/l.csv\"\nformat = \"csv\"\nevery = \"1h\"\n{extra}"
            ),
        )
        .unwrap();
        cfg.raw.source.first().cloned().unwrap()
    }

    const PIN: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_new_pin_or_withdrawal_setting_forgets_the_memory() {
        let plain = memory_key(&source(""));
        for extra in [
            format!("sha256 = \"{PIN}\""),
            "withdraw_missing = true".to_owned(),
            "max_withdraw_fraction = 0.3".to_owned(),
        ] {
            assert_ne!(memory_key(&source(&extra)), plain, "{extra}");
        }
        // The same settings keep it.
        assert_eq!(memory_key(&source("")), plain);
    }

    #[test]
    fn a_pinned_source_asks_unconditionally_until_the_pin_was_verified() {
        let pinned = source(&format!("sha256 = \"{PIN}\""));
        let mut mem = Remembered {
            validators: Validators {
                etag: Some("\"v1\"".into()),
                last_modified: None,
            },
            sha256: Some("ab".repeat(32)),
            ..Remembered::default()
        };
        assert_eq!(conditional_validators(&pinned, &mem), Validators::default());
        mem.sha256 = Some(PIN.to_owned());
        assert_eq!(conditional_validators(&pinned, &mem), mem.validators);
        mem.sha256 = Some("ab".repeat(32));
        assert_eq!(conditional_validators(&source(""), &mem), mem.validators);
    }

    #[test]
    fn the_cumulative_floor() {
        assert_eq!(withdraw_floor(0.1, 1000), 900);
        assert_eq!(withdraw_floor(0.1, 0), 0);
        assert_eq!(withdraw_floor(1.0, 1000), 0);
        assert_eq!(withdraw_floor(0.0, 7), 7);
        assert_eq!(withdraw_floor(0.5, 3), 2);
    }
}
