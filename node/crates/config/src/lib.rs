//! `node.toml`: the node's one configuration file.
//!
//! Parsing is strict: unknown keys are errors, values are validated while they are
//! deserialized, and every error names the file, line, column and dotted key, e.g.
//! `node.toml:14:7: sync.anti_entropy_interval: invalid duration "60 parsecs"`.
//! Relative paths resolve against the folder that holds the config file.
//!
//! The `[[share]]` and `[[accept]]` rules are parsed and checked for syntax here;
//! `wlnode-policy` gives them meaning and checks them against the roster.
//!
//! The crate also reads the other files an operator writes or is handed: the signed
//! roster and its `.sig` ([`roster_file`]), the API token file ([`token`]), and edits
//! roster files for the roster authority ([`roster_edit`]). Pure apart from reading
//! those files: no tokio, no network, no store.

pub mod roster_edit;
pub mod roster_file;
pub mod sources;
pub mod token;
pub mod webhooks;

pub use sources::{SourceConfig, SourceFormat, SourceName};
pub use webhooks::{EventType, WebhookConfig};

/// The file in the data dir where a started node writes its API address (the CLI and
/// scripts read it when the config asks for port 0).
pub const API_ADDR_FILE: &str = "api.addr";

/// The file in the data dir where a started node lists its libp2p listen addresses,
/// one multiaddr (with `/p2p/<peer id>`) per line.
pub const LISTEN_ADDRS_FILE: &str = "listen.addrs";

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;
use wlnode_crypto::PublicKey;
use wlnode_crypto::model::{
    AgencyCode, CountryCode, GroupName, InvalidValue, Reason, Sensitivity, SubjectKind,
};
use wlnode_crypto::record::FieldSelector;

/// A config file could not be read or is invalid. Display: `file:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// Dotted key path, e.g. `share[1].to[0]`; empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Byte offset to 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A duration written as `60s`, `5m`, `1h 30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?} ({e}); write e.g. \"60s\" or \"5m\""
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

/// A libp2p multiaddr, syntax-checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Addr(pub multiaddr::Multiaddr);

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<multiaddr::Multiaddr>().map(Addr).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid multiaddr {s:?} ({e}); write e.g. \"/ip4/127.0.0.1/tcp/7400\""
            ))
        })
    }
}

impl Serialize for Addr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who a rule applies to: an agency code, `group:NAME` or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerSelector {
    /// Every member.
    Any,
    /// One agency.
    Agency(AgencyCode),
    /// Members of a sharing group.
    Group(GroupName),
}

impl FromStr for PeerSelector {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if s == "*" {
            return Ok(Self::Any);
        }
        if let Some(g) = s.strip_prefix("group:") {
            return GroupName::new(g).map(Self::Group);
        }
        AgencyCode::new(s).map(Self::Agency).map_err(|_| {
            InvalidValue::new(
                "",
                format!("{s:?} is not an agency code, \"group:NAME\" or \"*\""),
            )
        })
    }
}

impl fmt::Display for PeerSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Agency(a) => a.fmt(f),
            Self::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// Whose records a rule applies to: `self`, an agency, `group:NAME` or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OriginSelector {
    /// This node's own agency.
    SelfAgency,
    /// Any origin.
    Any,
    /// One agency.
    Agency(AgencyCode),
    /// Members of a sharing group.
    Group(GroupName),
}

impl FromStr for OriginSelector {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if s == "self" {
            return Ok(Self::SelfAgency);
        }
        match s.parse::<PeerSelector>() {
            Ok(PeerSelector::Any) => Ok(Self::Any),
            Ok(PeerSelector::Agency(a)) => Ok(Self::Agency(a)),
            Ok(PeerSelector::Group(g)) => Ok(Self::Group(g)),
            Err(_) => Err(InvalidValue::new(
                "",
                format!("{s:?} is not \"self\", an agency code, \"group:NAME\" or \"*\""),
            )),
        }
    }
}

impl fmt::Display for OriginSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfAgency => f.write_str("self"),
            Self::Any => f.write_str("*"),
            Self::Agency(a) => a.fmt(f),
            Self::Group(g) => write!(f, "group:{g}"),
        }
    }
}

macro_rules! deserialize_from_str {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse()
                    .map_err(|e: InvalidValue| serde::de::Error::custom(e.message))
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
deserialize_from_str!(PeerSelector);
deserialize_from_str!(OriginSelector);

/// A category glob such as `3A*` or `ML1?`; `*` and `?` are the only wildcards.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CategoryGlob(String);

impl CategoryGlob {
    /// Whether `category` matches.
    pub fn matches(&self, category: &str) -> bool {
        glob_match(self.0.as_bytes(), category.as_bytes())
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with single backtrack point.
    let (mut p, mut i) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while i < s.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some(p);
                mark = i;
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == s.get(i) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some(sp) => {
                    p = sp + 1;
                    mark += 1;
                    i = mark;
                }
                None => return false,
            },
        }
    }
    while pat.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pat.len()
}

impl<'de> Deserialize<'de> for CategoryGlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.len() <= 16
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"*?.-".contains(&b));
        if ok {
            Ok(Self(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid category pattern {s:?}; use upper-case letters, digits, '.', '-' and the wildcards '*' and '?', e.g. \"3A*\""
            )))
        }
    }
}

impl Serialize for CategoryGlob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// An outbound data-sharing rule (`[[share]]`). Absent lists impose no restriction;
/// an empty list matches nothing.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// Peers the rule sends to.
    pub to: Spanned<Vec<Spanned<PeerSelector>>>,
    /// Origins whose records it covers; absent means `["*"]`.
    #[serde(default)]
    pub origins: Option<Vec<Spanned<OriginSelector>>>,
    /// Category patterns; a record matches if any of its categories matches any pattern.
    #[serde(default)]
    pub categories: Option<Vec<CategoryGlob>>,
    /// Listing reasons.
    #[serde(default)]
    pub reasons: Option<Vec<Reason>>,
    /// Subject countries.
    #[serde(default)]
    pub subject_countries: Option<Vec<CountryCode>>,
    /// Subject kinds.
    #[serde(default)]
    pub subject_kinds: Option<Vec<SubjectKind>>,
    /// Highest sensitivity sent.
    #[serde(default)]
    pub max_sensitivity: Option<Spanned<Sensitivity>>,
    /// Fields withheld from the copies this rule sends.
    #[serde(default)]
    pub withhold: Vec<FieldSelector>,
    /// Whether records of other origins may be relayed.
    #[serde(default)]
    pub relay: bool,
}

/// What to do with copies that arrive with withheld fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WithheldCopies {
    /// Keep partial copies.
    #[default]
    Keep,
    /// Drop any copy that withholds a field.
    Drop,
}

/// An inbound rule (`[[accept]]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRule {
    /// Peers the rule accepts from.
    pub from: Spanned<Vec<Spanned<PeerSelector>>>,
    /// Origins it accepts; absent means `["*"]`.
    #[serde(default)]
    pub origins: Option<Vec<Spanned<OriginSelector>>>,
    /// Highest sensitivity accepted.
    #[serde(default)]
    pub max_sensitivity: Option<Spanned<Sensitivity>>,
    /// Drop copies that lack any of these fields.
    #[serde(default)]
    pub require_fields: Vec<FieldSelector>,
    /// Keep or drop copies with withheld fields.
    #[serde(default)]
    pub withheld: WithheldCopies,
}

/// `[api]`: the local HTTP API.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Loopback address to listen on, e.g. `127.0.0.1:7480`.
    pub listen: Spanned<SocketAddr>,
    /// File holding the bearer token.
    pub token_file: PathBuf,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503 `timeout`.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Most connections served at once; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that neither sends nor takes a byte for this long is closed
    /// (a client that stalls mid-request holds no slot for long).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(120))
}

fn default_max_connections() -> usize {
    64
}

fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// One configured neighbour.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its roster agency code.
    pub agency: Spanned<AgencyCode>,
    /// Addresses to dial.
    #[serde(default)]
    pub addrs: Vec<Addr>,
}

/// `[sync]`: replication settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Anti-entropy (reconciliation) period.
    pub anti_entropy_interval: HumanDuration,
    /// Largest request frame accepted.
    pub max_request_bytes: usize,
    /// Largest response (batch) frame accepted.
    pub max_batch_bytes: usize,
    /// Most records per Pull batch (also bounded by `max_batch_bytes`; at most 5,000):
    /// each stored batch costs one durable commit, so larger batches sync faster.
    pub pull_limit: u32,
    /// Invalid records from one peer within `ban_window` that get it banned.
    pub ban_threshold: u32,
    /// Window for counting invalid records.
    pub ban_window: HumanDuration,
    /// How long a banned peer is refused.
    pub ban_duration: HumanDuration,
    /// First reconnect delay.
    pub reconnect_min: HumanDuration,
    /// Longest reconnect delay.
    pub reconnect_max: HumanDuration,
    /// Allowed clock skew for records issued in the future.
    pub max_clock_skew: HumanDuration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            anti_entropy_interval: HumanDuration(Duration::from_secs(60)),
            max_request_bytes: 4 * 1024 * 1024,
            max_batch_bytes: 4 * 1024 * 1024,
            pull_limit: 5000,
            ban_threshold: 100,
            ban_window: HumanDuration(Duration::from_secs(60)),
            ban_duration: HumanDuration(Duration::from_secs(600)),
            reconnect_min: HumanDuration(Duration::from_millis(250)),
            reconnect_max: HumanDuration(Duration::from_secs(60)),
            max_clock_skew: HumanDuration(Duration::from_secs(300)),
        }
    }
}

/// `[audit]`: the tamper-evident audit log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Whether the node logs audit events at all.
    pub enabled: bool,
    /// Sign a checkpoint after this many new events ...
    pub checkpoint_every_events: u64,
    /// ... or this many seconds after the last one, if events arrived since.
    pub checkpoint_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            checkpoint_every_events: 1000,
            checkpoint_interval_secs: 60,
        }
    }
}

/// `[screening]`: the screening case log.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScreeningConfig {
    /// How long screening cases are kept (older ones are pruned hourly).
    pub retain: HumanDuration,
}

impl Default for ScreeningConfig {
    fn default() -> Self {
        Self {
            // Five years of 365 days.
            retain: HumanDuration(Duration::from_secs(5 * 365 * 86_400)),
        }
    }
}

/// `[flags]`: bounds on flags of other agencies' entries (issue 21 item 3). Each flag
/// write sends a sealed message to the entry's origin; these keep flags from filling
/// our own outbox (8,192 messages) and one officer from sending a flood.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlagsConfig {
    /// Flag messages handed to the mail service and not yet delivered or expired, at
    /// most (1 to 4,096); later flag writes are saved and their messages wait.
    pub max_in_flight: usize,
    /// Flag writes (set or lift) one user may make in a burst (at least 1).
    pub burst: u32,
    /// Flag writes one user may make per minute after the burst (at least 1).
    pub per_minute: u32,
}

impl Default for FlagsConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 1024,
            burst: 128,
            per_minute: 60,
        }
    }
}

/// `[store]`: the node's database.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// The storage engine. Unset: the engine the data dir was written by, or sled for
    /// a new one. Set: a data dir written by another engine is refused at start (convert
    /// it with `wlnode store migrate`).
    pub engine: Option<StoreEngine>,
}

/// A storage engine (`[store] engine`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreEngine {
    /// sled 0.34.
    Sled,
    /// fjall 2.
    Fjall,
}

/// `[release]`: four-eyes release of this agency's own entry writes.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseConfig {
    /// `true`: every entry write waits for a second user's approval; a list of
    /// sensitivity labels: writes at those labels do; `false` (default): none does.
    pub require_approval: RequireApproval,
}

/// Which writes need approval.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RequireApproval {
    /// All or none.
    All(bool),
    /// Writes whose distribution has one of these sensitivity labels.
    Labels(Vec<Sensitivity>),
}

impl Default for RequireApproval {
    fn default() -> Self {
        Self::All(false)
    }
}

impl RequireApproval {
    /// Whether a write at `sensitivity` needs approval.
    pub fn applies(&self, sensitivity: &Sensitivity) -> bool {
        match self {
            Self::All(all) => *all,
            Self::Labels(labels) => labels.contains(sensitivity),
        }
    }
}

/// The file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// This node's agency code.
    pub agency: Spanned<AgencyCode>,
    /// Data directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Roster file; its signature is `<roster>.sig`.
    pub roster: PathBuf,
    /// Trusted roster authority keys; empty pins the first roster's authorities.
    #[serde(default)]
    pub roster_authorities: Vec<PublicKey>,
    /// Agency signing key file.
    pub agency_key: PathBuf,
    /// libp2p identity key file.
    pub node_key: PathBuf,
    /// The agency's X25519 encryption key file for sealed messages; without it the
    /// node sends sealed messages but cannot open any (`wlnode init` writes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<PathBuf>,
    /// A folder of further encryption key files (`*.key`, mode 0600) for a key
    /// rotation: the previous key, whose messages may still be in flight, and the next
    /// one, before the roster makes it current. The node holds every key of these
    /// files (and `encryption_key`) that the roster lists for its agency, opens each
    /// message with the key its header names, and re-reads them on reload (SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_keys_dir: Option<PathBuf>,
    /// libp2p listen addresses.
    #[serde(default)]
    pub listen: Vec<Addr>,
    /// Log format.
    #[serde(default)]
    pub log_format: LogFormat,
    /// HTTP API.
    pub api: ApiConfig,
    /// Neighbours to dial.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Replication settings.
    #[serde(default)]
    pub sync: SyncConfig,
    /// Outbound rules.
    #[serde(default)]
    pub share: Vec<ShareRule>,
    /// Inbound rules.
    #[serde(default)]
    pub accept: Vec<AcceptRule>,
    /// Audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Source lists fetched and imported on a schedule (`[[source]]`).
    #[serde(default)]
    pub source: Vec<SourceConfig>,
    /// Four-eyes release.
    #[serde(default)]
    pub release: ReleaseConfig,
    /// The screening case log.
    #[serde(default)]
    pub screening: ScreeningConfig,
    /// Where notifications are POSTed (`[[webhook]]`).
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
    /// The database (`[store]`).
    #[serde(default)]
    pub store: StoreConfig,
    /// Bounds on flag writes (`[flags]`).
    #[serde(default)]
    pub flags: FlagsConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// A loaded config with paths resolved.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config file.
    pub path: PathBuf,
    /// Its text, for error positions.
    pub text: String,
    /// Parsed content, paths absolute.
    pub raw: RawConfig,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Validates config text as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err_at = |offset: Option<usize>, key: String, message: String| {
            let (line, column) = offset.map_or((0, 0), |o| line_col(text, o));
            ConfigError {
                file: path.to_owned(),
                line,
                column,
                key,
                message,
            }
        };
        let de = toml::de::Deserializer::parse(text).map_err(|e| {
            err_at(
                e.span().map(|s| s.start),
                String::new(),
                e.message().to_owned(),
            )
        })?;
        let mut raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let message = match sources::name_hint(text, &key) {
                Some(name) => format!("source {name:?}: {}", inner.message()),
                None => inner.message().to_owned(),
            };
            err_at(
                inner.span().map(|s| s.start),
                if key == "." { String::new() } else { key },
                message,
            )
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut raw.data_dir);
        resolve(&mut raw.roster);
        resolve(&mut raw.agency_key);
        resolve(&mut raw.node_key);
        if let Some(p) = &mut raw.encryption_key {
            resolve(p);
        }
        if let Some(p) = &mut raw.encryption_keys_dir {
            resolve(p);
        }
        resolve(&mut raw.api.token_file);
        for s in &mut raw.source {
            if let Some(p) = &mut s.path {
                resolve(p.get_mut());
            }
        }
        let cfg = Self {
            path: path.to_owned(),
            text: text.to_owned(),
            raw,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// An error positioned at a span of this file.
    pub fn error_at(
        &self,
        span: std::ops::Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_col(&self.text, span.start);
        ConfigError {
            file: self.path.clone(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let api = &self.raw.api.listen;
        if !api.get_ref().ip().is_loopback() {
            return Err(self.error_at(
                api.span(),
                "api.listen",
                format!(
                    "{} is not a loopback address; the API must only listen on 127.0.0.1 or ::1",
                    api.get_ref()
                ),
            ));
        }
        let a = &self.raw.api;
        if a.max_connections == 0 || a.request_timeout.0.is_zero() || a.idle_timeout.0.is_zero() {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                column: 0,
                key: "api".into(),
                message: "max_connections, request_timeout and idle_timeout must be above 0".into(),
            });
        }
        let fl = &self.raw.flags;
        if !(1..=4096).contains(&fl.max_in_flight) || fl.burst == 0 || fl.per_minute == 0 {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                column: 0,
                key: "flags".into(),
                message: format!(
                    "max_in_flight must be 1 to 4096 (got {}), burst and per_minute at least 1",
                    fl.max_in_flight
                ),
            });
        }
        let s = &self.raw.sync;
        for (key, v, min) in [
            ("sync.max_request_bytes", s.max_request_bytes, 1024usize),
            ("sync.max_batch_bytes", s.max_batch_bytes, 64 * 1024),
        ] {
            if v < min {
                return Err(ConfigError {
                    file: self.path.clone(),
                    line: 0,
                    column: 0,
                    key: key.into(),
                    message: format!("must be at least {min} bytes, got {v}"),
                });
            }
        }
        if s.pull_limit == 0 || s.ban_threshold == 0 {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                column: 0,
                key: "sync".into(),
                message: "pull_limit and ban_threshold must be at least 1".into(),
            });
        }
        if s.reconnect_min > s.reconnect_max {
            return Err(ConfigError {
                file: self.path.clone(),
                line: 0,
                column: 0,
                key: "sync.reconnect_min".into(),
                message: "must not exceed sync.reconnect_max".into(),
            });
        }
        for (i, p) in self.raw.peers.iter().enumerate() {
            if p.agency.get_ref() == self.raw.agency.get_ref() {
                return Err(self.error_at(
                    p.agency.span(),
                    format!("peers[{i}].agency"),
                    "a node cannot peer with its own agency",
                ));
            }
        }
        sources::validate(self)?;
        webhooks::validate(self)
    }

    /// This node's agency.
    pub fn agency(&self) -> &AgencyCode {
        self.raw.agency.get_ref()
    }

    /// The roster signature file next to the roster.
    pub fn roster_sig_path(&self) -> PathBuf {
        roster_file::sig_path(&self.raw.roster)
    }
}

/// The commented `node.toml` that `wlnode init` writes.
pub fn template(agency: &AgencyCode, listen: &str, api: &SocketAddr) -> String {
    format!(
        r#"# wlnode node configuration. Every key is documented in deploy/README.md.
# Relative paths resolve against the folder that holds this file.

# Roster agency code of this node.
agency = "{agency}"
# Where the node keeps its store. Only one process may open it.
data_dir = "data"
# Federation roster, signed by the roster authority; the signature is roster.toml.sig.
roster = "roster.toml"
# Roster authority keys this node trusts ("ed25519:<hex>"). Leave empty to trust the
# authorities of the first roster the node loads (trust on first use).
roster_authorities = []
# ed25519 signing key of the agency (mode 0600).
agency_key = "agency.key"
# libp2p identity key of this node (mode 0600).
node_key = "node.key"
# X25519 encryption key for sealed agency-to-agency messages (mode 0600).
encryption_key = "encryption.key"
# During an encryption-key rotation, a folder of further key files (previous and next
# keys, mode 0600), re-read on reload:
# encryption_keys_dir = "encryption-keys"
# libp2p listen addresses.
listen = ["{listen}"]
# "text" or "json".
log_format = "text"

[api]
# Local HTTP API; loopback only.
listen = "{api}"
# Bearer token for the API (mode 0600).
token_file = "api.token"

# Neighbours to dial, one block each:
# [[peers]]
# agency = "BB-CUSTOMS"
# addrs = ["/ip4/127.0.0.1/tcp/7401"]

[sync]
# How often neighbours reconcile their record sets.
anti_entropy_interval = "60s"

# Data-sharing rules. Default deny: with no [[share]] rule nothing is sent, and with
# no [[accept]] rule nothing is stored. Example:
# [[share]]
# to = ["group:eu"]
# origins = ["self"]
# withhold = ["identifiers"]
#
# [[accept]]
# from = ["*"]
# origins = ["*"]
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
agency = "AA-EXPORT"
data_dir = "data"
roster = "roster.toml"
agency_key = "agency.key"
node_key = "node.key"
listen = ["/ip4/127.0.0.1/tcp/7400"]
log_format = "text"

[api]
listen = "127.0.0.1:7480"
token_file = "api.token"

[[peers]]
agency = "BB-CUSTOMS"
addrs = ["/ip4/127.0.0.1/tcp/7401"]

[sync]
anti_entropy_interval = "60s"

[[share]]
to = ["group:eu"]
origins = ["self"]
withhold = ["identifiers"]

[[accept]]
from = ["*"]
origins = ["*"]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/wlnode/node.toml"), text)
    }

    #[test]
    fn design_example_parses_and_resolves_paths() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.agency().as_str(), "AA-EXPORT");
        assert_eq!(c.raw.data_dir, PathBuf::from("/etc/wlnode/data"));
        assert_eq!(
            c.roster_sig_path(),
            PathBuf::from("/etc/wlnode/roster.toml.sig")
        );
        assert_eq!(c.raw.sync.anti_entropy_interval.0, Duration::from_secs(60));
        assert_eq!(c.raw.share.len(), 1);
        assert_eq!(
            c.raw.share[0].withhold,
            vec!["identifiers".parse().unwrap()]
        );
    }

    #[test]
    fn template_parses() {
        let t = template(
            &AgencyCode::new("AA-EXPORT").unwrap(),
            "/ip4/127.0.0.1/tcp/7400",
            &"127.0.0.1:7480".parse().unwrap(),
        );
        parse(&t).unwrap();
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace(
            "anti_entropy_interval = \"60s\"",
            "anti_entropy_interval = \"60s\"\nfrobnicate = 1",
        );
        let e = parse(&text).unwrap_err();
        assert_eq!(e.file, PathBuf::from("/etc/wlnode/node.toml"));
        assert_eq!(e.line, 20, "{e}");
        assert!(e.message.contains("frobnicate"), "{e}");
        assert!(
            e.to_string().starts_with("/etc/wlnode/node.toml:20:"),
            "{e}"
        );
    }

    #[test]
    fn store_engine_is_optional_and_an_unknown_one_names_file_line_and_key() {
        assert_eq!(parse(GOOD).unwrap().raw.store.engine, None);
        let fjall = parse(&format!("{GOOD}\n[store]\nengine = \"fjall\"\n")).unwrap();
        assert_eq!(fjall.raw.store.engine, Some(StoreEngine::Fjall));
        let text = format!("{GOOD}\n[store]\nengine = \"rocks\"\n");
        let line = text.lines().count();
        let e = parse(&text).unwrap_err();
        assert_eq!(e.file, PathBuf::from("/etc/wlnode/node.toml"));
        assert_eq!((e.line, e.key.as_str()), (line, "store.engine"), "{e}");
        assert!(
            e.message.contains("sled") && e.message.contains("fjall"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            (
                "anti_entropy_interval = \"60s\"",
                "anti_entropy_interval = \"sixty\"",
                "sync.anti_entropy_interval",
            ),
            (
                "to = [\"group:eu\"]",
                "to = [\"group:EU\"]",
                "share[0].to[0]",
            ),
            (
                "agency = \"BB-CUSTOMS\"",
                "agency = \"bb customs\"",
                "peers[0].agency",
            ),
            (
                "withhold = [\"identifiers\"]",
                "withhold = [\"passports\"]",
                "share[0].withhold[0]",
            ),
            (
                "\"/ip4/127.0.0.1/tcp/7401\"",
                "\"/ip9/x\"",
                "peers[0].addrs[0]",
            ),
        ];
        for (from, to, key) in cases {
            let e = parse(&GOOD.replace(from, to)).unwrap_err();
            assert_eq!(e.key, key, "{e}");
            assert!(e.line > 0, "{e}");
        }
    }

    #[test]
    fn api_must_be_loopback() {
        let e = parse(&GOOD.replace("127.0.0.1:7480", "0.0.0.0:7480")).unwrap_err();
        assert_eq!(e.key, "api.listen");
        assert_eq!(e.line, 11);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("agency = \n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    const SOURCES: &str = r#"
[[source]]
name = "un-sc"
url = "https://scsanctions.un.org/resources/xml/en/consolidated.xml"
format = "un-xml"
every = "6h"
withdraw_missing = true

[[source]]
name = "own-list"
path = "lists/own.csv"
format = "csv"
every = "10m"
retry = "5s"
max_withdraw_fraction = 0.25
sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
source_list = "own"
reason = "denial"
max_bytes = 1048576
timeout = "30s"
"#;

    #[test]
    fn sources_parse_with_defaults_and_resolved_paths() {
        let c = parse(&format!("{GOOD}{SOURCES}")).unwrap();
        let [un, own] = c.raw.source.as_slice() else {
            panic!("two sources")
        };
        assert_eq!(un.name().as_str(), "un-sc");
        assert_eq!(un.format, SourceFormat::UnXml);
        assert_eq!(un.every.get_ref().0, Duration::from_secs(6 * 3600));
        assert_eq!(un.retry.get_ref().0, Duration::from_secs(30));
        assert!((*un.max_withdraw_fraction.get_ref() - 0.1).abs() < f64::EPSILON);
        assert!(!un.allow_http);
        assert_eq!(un.effective_source_list(), "un-sc");
        assert_eq!(own.effective_source_list(), "own");
        assert_eq!(un.max_bytes, 256 * 1024 * 1024);
        assert!(matches!(un.origin(), sources::Origin::Url(u) if u.starts_with("https://")));
        assert_eq!(
            own.origin(),
            sources::Origin::Path(PathBuf::from("/etc/wlnode/lists/own.csv"))
        );
        assert_eq!(
            own.sha256_pin().unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(own.reason, Some(Reason::Denial));
    }

    #[test]
    fn source_errors_name_the_file_the_source_and_the_key() {
        let text = format!("{GOOD}{SOURCES}");
        let cases = [
            // (replace, with, key, words in the message)
            (
                "every = \"10m\"",
                "every = \"30s\"",
                "source[1].every",
                "at least 1m",
            ),
            (
                "every = \"6h\"",
                "every = \"31days\"",
                "source[0].every",
                "at most 30days",
            ),
            (
                "every = \"6h\"",
                "every = \"often\"",
                "source[0].every",
                "invalid duration",
            ),
            (
                "format = \"csv\"",
                "format = \"xlsx\"",
                "source[1].format",
                "unknown variant",
            ),
            (
                "retry = \"5s\"",
                "retry = \"20m\"",
                "source[1].retry",
                "shorter than every",
            ),
            (
                "max_withdraw_fraction = 0.25",
                "max_withdraw_fraction = 1.5",
                "source[1].max_withdraw_fraction",
                "between 0 and 1",
            ),
            (
                "sha256 = \"E3B0",
                "sha256 = \"XX",
                "source[1].sha256",
                "not a SHA-256",
            ),
            (
                "name = \"own-list\"",
                "name = \"un-sc\"",
                "source[1].name",
                "unique",
            ),
            (
                "name = \"own-list\"",
                "name = \"Own List\"",
                "source[1].name",
                "invalid source name",
            ),
            (
                "url = \"https://scsanctions",
                "url = \"ftp://scsanctions",
                "source[0].url",
                "not an https",
            ),
            (
                "url = \"https://scsanctions",
                "url = \"http://scsanctions",
                "source[0].url",
                "allow_http",
            ),
            (
                "source_list = \"own\"",
                "source_list = \"un-sc\"",
                "source[1].source_list",
                "withdraw each other's entries",
            ),
            (
                "url = \"https://scsanctions",
                "url = \"https://user:pw@scsanctions",
                "source[0].url",
                "credentials",
            ),
            (
                "path = \"lists/own.csv\"",
                "path = \"lists/own.csv\"\nurl = \"https://x.example/a.csv\"",
                "source[1].path",
                "not both",
            ),
            ("path = \"lists/own.csv\"", "", "source[1].url", "give url"),
            (
                "timeout = \"30s\"",
                "timeout = \"30s\"\ncolour = \"red\"",
                "source[1].colour",
                "unknown field",
            ),
        ];
        for (from, to, key, words) in cases {
            assert!(text.contains(from), "{from}");
            let e = parse(&text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.file, PathBuf::from("/etc/wlnode/node.toml"), "{e}");
            assert_eq!(e.key, key, "{e}");
            assert!(e.line > 28, "{e}");
            assert!(e.message.contains(words), "{e}");
            let source = if key.starts_with("source[0]") {
                "un-sc"
            } else if from.starts_with("name") {
                ""
            } else {
                "own-list"
            };
            assert!(e.message.contains(&format!("source \"{source}")), "{e}");
        }
    }

    #[test]
    fn plain_http_needs_a_pin_or_allow_http_and_default_lists_must_differ() {
        let http = SOURCES.replacen("url = \"https://", "url = \"http://", 1);
        let allowed = http.replacen(
            "withdraw_missing = true",
            "withdraw_missing = true\nallow_http = true",
            1,
        );
        assert!(parse(&format!("{GOOD}{allowed}")).is_ok());
        let pinned = http.replacen(
            "withdraw_missing = true",
            "withdraw_missing = true\nsha256 = \"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
            1,
        );
        assert!(parse(&format!("{GOOD}{pinned}")).is_ok());
        // Two sources of one format with no source_list share the format's list.
        let twice = format!(
            "{GOOD}{SOURCES}\n[[source]]\nname = \"un-copy\"\nurl = \"https://mirror.example/un.xml\"\nformat = \"un-xml\"\nevery = \"6h\"\n"
        );
        let e = parse(&twice).unwrap_err();
        assert_eq!(e.key, "source[2].source_list", "{e}");
        assert!(e.message.contains("\"un-sc\""), "{e}");
        let fixed = twice.replacen(
            "name = \"un-copy\"",
            "name = \"un-copy\"\nsource_list = \"un-mirror\"",
            1,
        );
        assert!(parse(&fixed).is_ok());
    }

    #[test]
    fn every_import_format_name_is_a_source_format() {
        for (f, name) in SourceFormat::ALL.iter().zip([
            "csv", "jsonl", "ftm", "un-xml", "ofac-xml", "eu-xml", "uk-xml",
        ]) {
            assert_eq!(f.as_str(), name);
            let t: toml::Table = toml::from_str(&format!("f = \"{name}\"")).unwrap();
            let parsed: SourceFormat = t["f"].clone().try_into().unwrap();
            assert_eq!(parsed, *f);
        }
    }

    const WEBHOOKS: &str = r#"
[[webhook]]
name = "case-system"
url = "https://cases.example/hooks/wlnode"
events = ["watch_hit", "draft_awaiting_approval"]
secret = "0123456789abcdef-long"

[[webhook]]
url = "http://127.0.0.1:9000/hook"
allow_http = true
events = ["peer_down", "source_failed"]
secret = "another-secret-of-16+"
"#;

    #[test]
    fn webhooks_parse_and_their_errors_name_file_line_and_key() {
        let c = parse(&format!("{GOOD}{WEBHOOKS}")).unwrap();
        let [a, b] = c.raw.webhook.as_slice() else {
            panic!("two webhooks")
        };
        assert_eq!(webhooks::label(a, 0), "case-system");
        assert_eq!(webhooks::label(b, 1), "webhook1");
        assert!(a.event_set().contains(&EventType::WatchHit));
        assert!(
            !format!("{a:?}").contains("0123456789abcdef"),
            "secret in Debug"
        );
        let text = format!("{GOOD}{WEBHOOKS}");
        let cases = [
            (
                "url = \"https://cases",
                "url = \"http://cases",
                "webhook[0].url",
                "allow_http",
            ),
            (
                "secret = \"0123456789abcdef-long\"",
                "secret = \"short\"",
                "webhook[0].secret",
                "at least 16",
            ),
            (
                "events = [\"peer_down\", \"source_failed\"]",
                "events = []",
                "webhook[1].events",
                "at least one",
            ),
            (
                "events = [\"peer_down\", \"source_failed\"]",
                "events = [\"peer_down\", \"tea_time\"]",
                "webhook[1].events[1]",
                "unknown variant",
            ),
            (
                "url = \"https://cases.example/hooks/wlnode\"",
                "url = \"ftp://cases.example/\"",
                "webhook[0].url",
                "not an https",
            ),
            (
                "name = \"case-system\"",
                "name = \"Case System\"",
                "webhook[0].name",
                "a-z",
            ),
            (
                "secret = \"another-secret-of-16+\"",
                "colour = \"red\"",
                "webhook[1].colour",
                "unknown field",
            ),
        ];
        for (from, to, key, words) in cases {
            assert!(text.contains(from), "{from}");
            let e = parse(&text.replacen(from, to, 1)).unwrap_err();
            assert_eq!(e.file, PathBuf::from("/etc/wlnode/node.toml"), "{e}");
            assert_eq!(e.key, key, "{e}");
            assert!(e.line > 28, "{e}");
            assert!(e.message.contains(words), "{e}");
        }
    }

    #[test]
    fn globs() {
        let g = |p: &str| CategoryGlob(p.into());
        assert!(g("3A*").matches("3A001"));
        assert!(!g("3A*").matches("5A002"));
        assert!(g("ML?").matches("ML1"));
        assert!(!g("ML?").matches("ML10"));
        assert!(g("*").matches(""));
        assert!(g("*0*1").matches("3A001"));
    }
}
