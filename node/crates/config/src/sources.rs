//! `[[source]]` blocks: source lists the node fetches on a schedule and imports as
//! `wlnode import` would (issue 24 item 3, "sources that refresh").
//!
//! This module only reads and checks the blocks: a name, exactly one of `url` or
//! `path`, an import format, how often, whether vanished rows are withdrawn and how
//! many at most, an optional SHA-256 pin, the import defaults, and the fetch bounds.
//! Fetching and importing belong to the runtime (`wlnode_runtime::sources`); the
//! HTTP request itself to `wlnode_client::fetch`. Errors name the file, line, the
//! source (by its `name`) and the key, like every other config error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;
use wlnode_crypto::model::Reason;

use crate::{Config, ConfigError, HumanDuration};

/// The shortest `every` a source may have: list publishers do not change their
/// lists by the second, and a tighter loop only hammers their servers.
pub const MIN_EVERY: Duration = Duration::from_secs(60);

/// The longest `every` a source may have (30 days): a longer period is a typo, and
/// keeps timer arithmetic far from overflow.
pub const MAX_EVERY: Duration = Duration::from_secs(30 * 24 * 3600);

/// The default `max_withdraw_fraction`: a refresh that would withdraw more than a
/// tenth of the source list's active entries withdraws nothing and fails.
pub const DEFAULT_MAX_WITHDRAW_FRACTION: f64 = 0.1;

/// The shortest first retry delay after a failed refresh.
pub const MIN_RETRY: Duration = Duration::from_secs(1);

/// The smallest body cap a source may set.
pub const MIN_MAX_BYTES: u64 = 1024;

/// The file in the data dir where the node keeps what it remembers of each source
/// across restarts (validators for conditional requests, the last outcome).
pub const SOURCES_STATE_FILE: &str = "sources.json";

/// A source's name: 1 to 64 of `a-z`, `0-9`, `-`, `_`, `.`, starting with a letter
/// or digit. It appears in URLs (`/v1/sources/{name}/run`), metric labels and audit
/// events, so it is kept to characters that need no escaping anywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceName(String);

impl SourceName {
    /// Checks `s`.
    pub fn new(s: &str) -> Result<Self, String> {
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
        let first_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !s.is_empty() && s.len() <= 64 && first_ok && s.chars().all(ok_char) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "invalid source name {s:?}: use 1 to 64 of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SourceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for SourceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The file layout of a source: the formats `wlnode import --format` reads. The
/// config crate cannot depend on the import crate, so the runtime maps these onto
/// `wlnode_import::Format` with an exhaustive match, and a runtime test checks that
/// every import format has a name here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceFormat {
    /// wlnode's own CSV layout.
    #[serde(rename = "csv")]
    Csv,
    /// Entry JSON lines.
    #[serde(rename = "jsonl")]
    Jsonl,
    /// OpenSanctions FollowTheMoney JSON lines.
    #[serde(rename = "ftm")]
    Ftm,
    /// The UN Security Council consolidated list.
    #[serde(rename = "un-xml")]
    UnXml,
    /// The OFAC SDN list.
    #[serde(rename = "ofac-xml")]
    OfacXml,
    /// The EU consolidated financial sanctions list.
    #[serde(rename = "eu-xml")]
    EuXml,
    /// The UK Sanctions List (FCDO).
    #[serde(rename = "uk-xml")]
    UkXml,
}

impl SourceFormat {
    /// The name as written in `node.toml` (and on `wlnode import --format`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
            Self::UnXml => "un-xml",
            Self::OfacXml => "ofac-xml",
            Self::EuXml => "eu-xml",
            Self::UkXml => "uk-xml",
        }
    }

    /// The source list a source of this format writes to when its block sets no
    /// `source_list`: the same fixed name `wlnode import --format` uses for the
    /// format (a runtime test checks they agree), so entry ids match a hand import.
    /// For `ftm` that is `ftm`: a scheduled source never takes its list name from
    /// the file's `datasets` (a served file must not choose which list it amends).
    pub fn default_source_list(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
            Self::UnXml => "un-sc",
            Self::OfacXml => "ofac-sdn",
            Self::EuXml => "eu-fsf",
            Self::UkXml => "uk-sanctions",
        }
    }

    /// Every format.
    pub const ALL: &'static [Self] = &[
        Self::Csv,
        Self::Jsonl,
        Self::Ftm,
        Self::UnXml,
        Self::OfacXml,
        Self::EuXml,
        Self::UkXml,
    ];
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[source]]` block.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name of the source.
    pub name: Spanned<SourceName>,
    /// Where to fetch it; exactly one of `url` and `path`. `https://`, or `http://`
    /// only with a `sha256` pin or `allow_http = true`.
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    /// Accept a plain `http://` URL without a `sha256` pin (anyone on the path then
    /// controls the list; meant for loopback tests and closed networks).
    #[serde(default)]
    pub allow_http: bool,
    /// A local file to read instead; relative to the config file's folder.
    #[serde(default)]
    pub path: Option<Spanned<PathBuf>>,
    /// The file layout.
    pub format: SourceFormat,
    /// How often to refresh it (at least [`MIN_EVERY`]).
    pub every: Spanned<HumanDuration>,
    /// First retry delay after a failure; it doubles up to half of `every`.
    #[serde(default = "default_retry")]
    pub retry: Spanned<HumanDuration>,
    /// Withdraw own entries of this source list that are no longer in it.
    #[serde(default)]
    pub withdraw_missing: bool,
    /// Refuse to withdraw when a refresh would withdraw more than this fraction of
    /// the source's active entries before the refresh, or leave fewer than
    /// `(1 - fraction) × high-water mark` active (the file is then taken to be
    /// truncated or hostile).
    #[serde(default = "default_max_withdraw_fraction")]
    pub max_withdraw_fraction: Spanned<f64>,
    /// The SHA-256 (hex) the file must have; any other content is a failure.
    #[serde(default)]
    pub sha256: Option<Spanned<String>>,
    /// Source list name for entry ids (default: the format's fixed name, see
    /// [`SourceFormat::default_source_list`]; never read from the file).
    #[serde(default)]
    pub source_list: Option<Spanned<String>>,
    /// Reason for rows that give none (as the import defaults).
    #[serde(default)]
    pub reason: Option<Reason>,
    /// Largest body accepted, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Longest a fetch may take, body included.
    #[serde(default = "default_timeout")]
    pub timeout: Spanned<HumanDuration>,
}

fn default_retry() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(30)))
}

fn default_max_withdraw_fraction() -> Spanned<f64> {
    Spanned::new(0..0, DEFAULT_MAX_WITHDRAW_FRACTION)
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}

fn default_timeout() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(300)))
}

/// Where a source comes from, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A local file (absolute).
    Path(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(u) => f.write_str(u),
            Self::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

impl SourceConfig {
    /// The name.
    pub fn name(&self) -> &SourceName {
        self.name.get_ref()
    }

    /// Where it comes from (validation guarantees exactly one of `url` and `path`).
    pub fn origin(&self) -> Origin {
        match (&self.url, &self.path) {
            (Some(u), _) => Origin::Url(u.get_ref().clone()),
            (None, Some(p)) => Origin::Path(p.get_ref().clone()),
            (None, None) => Origin::Path(PathBuf::new()),
        }
    }

    /// The source list this source writes to: `source_list`, else the format's
    /// fixed default. Never taken from the fetched file.
    pub fn effective_source_list(&self) -> &str {
        self.source_list
            .as_ref()
            .map_or(self.format.default_source_list(), |l| l.get_ref().as_str())
    }

    /// The SHA-256 pin, lower-case hex.
    pub fn sha256_pin(&self) -> Option<String> {
        self.sha256
            .as_ref()
            .map(|s| s.get_ref().to_ascii_lowercase())
    }
}

/// Checks every `[[source]]` block of `cfg` (after path resolution).
pub(crate) fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&SourceName, usize> = BTreeMap::new();
    let mut lists: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in cfg.raw.source.iter().enumerate() {
        let name = s.name();
        let err = |span: std::ops::Range<usize>, field: &str, msg: String| {
            // A default value has no span: point at the block's name.
            let span = if span == (0..0) { s.name.span() } else { span };
            cfg.error_at(
                span,
                format!("source[{i}].{field}"),
                format!("source {:?}: {msg}", name.as_str()),
            )
        };
        if let Some(first) = seen.insert(name, i) {
            return Err(err(
                s.name.span(),
                "name",
                format!("the name is already used by source[{first}]; source names must be unique"),
            ));
        }
        match (&s.url, &s.path) {
            (Some(_), Some(p)) => {
                return Err(err(
                    p.span(),
                    "path",
                    "give either url or path, not both".into(),
                ));
            }
            (None, None) => {
                return Err(err(
                    s.name.span(),
                    "url",
                    "give url (https://) or path".into(),
                ));
            }
            (Some(u), None) => {
                let plain_ok = s.allow_http || s.sha256.is_some();
                check_url(u.get_ref(), plain_ok).map_err(|m| err(u.span(), "url", m))?;
            }
            (None, Some(_)) => {}
        }
        let every = s.every.get_ref().0;
        if every < MIN_EVERY || every > MAX_EVERY {
            return Err(err(
                s.every.span(),
                "every",
                format!(
                    "must be at least {} and at most {}, got {}",
                    humantime::format_duration(MIN_EVERY),
                    humantime::format_duration(MAX_EVERY),
                    humantime::format_duration(every)
                ),
            ));
        }
        let retry = s.retry.get_ref().0;
        if retry < MIN_RETRY || retry >= every {
            return Err(err(
                s.retry.span(),
                "retry",
                format!(
                    "must be at least {} and shorter than every ({}), got {}",
                    humantime::format_duration(MIN_RETRY),
                    humantime::format_duration(every),
                    humantime::format_duration(retry)
                ),
            ));
        }
        let f = *s.max_withdraw_fraction.get_ref();
        if !(0.0..=1.0).contains(&f) {
            return Err(err(
                s.max_withdraw_fraction.span(),
                "max_withdraw_fraction",
                format!("must be between 0 and 1, got {f}"),
            ));
        }
        if let Some(h) = &s.sha256 {
            let v = h.get_ref();
            if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    h.span(),
                    "sha256",
                    format!("{v:?} is not a SHA-256 digest (64 hex characters)"),
                ));
            }
        }
        if let Some(l) = &s.source_list {
            let v = l.get_ref();
            if v.trim().is_empty() || v.chars().count() > 128 || v.chars().any(char::is_control) {
                return Err(err(
                    l.span(),
                    "source_list",
                    "must be 1 to 128 characters without control characters".into(),
                ));
            }
        }
        let list = s.effective_source_list();
        if let Some(first) = lists.insert(list, i) {
            let span = s.source_list.as_ref().map_or(s.name.span(), Spanned::span);
            return Err(err(
                span,
                "source_list",
                format!(
                    "writes to source list {list:?}, as source[{first}] does; two sources of one list would withdraw each other's entries, so give each its own source_list"
                ),
            ));
        }
        if s.max_bytes < MIN_MAX_BYTES {
            return Err(err(
                s.name.span(),
                "max_bytes",
                format!(
                    "must be at least {MIN_MAX_BYTES} bytes, got {}",
                    s.max_bytes
                ),
            ));
        }
        if s.timeout.get_ref().0.is_zero() {
            return Err(err(s.timeout.span(), "timeout", "must be above 0".into()));
        }
    }
    Ok(())
}

fn check_url(u: &str, plain_ok: bool) -> Result<(), String> {
    let parsed = url::Url::parse(u).map_err(|e| format!("invalid URL {u:?} ({e})"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if plain_ok => {}
        "http" => {
            return Err(format!(
                "{u:?} is plain http://, so anyone on the network path controls the list; use https://, pin the file with sha256, or set allow_http = true"
            ));
        }
        _ => return Err(format!("{u:?} is not an https:// URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{u:?} names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{u:?} carries credentials; sources are fetched without any"
        ));
    }
    Ok(())
}

/// For an error inside `source[i]` that serde reported (before any block was
/// checked): the block's `name`, read loosely from the text, so the message can
/// name the source too.
pub(crate) fn name_hint(text: &str, key: &str) -> Option<String> {
    let rest = key.strip_prefix("source[")?;
    let i: usize = rest.split(']').next()?.parse().ok()?;
    let table: toml::Table = text.parse().ok()?;
    let block = table.get("source")?.as_array()?.get(i)?;
    Some(block.get("name")?.as_str()?.to_owned())
}
