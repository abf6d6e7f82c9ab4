//! yente-compatible screening endpoints, so that the tools compliance teams already
//! point at OpenSanctions' yente (its `/match` clients, spreadsheets and case tools)
//! screen against the federation's merged list with a change of URL. The shapes follow
//! yente's published API (`yente/routers/match.py`, `search.py` and
//! `yente/data/common.py`):
//!
//! - `POST /match/{dataset}`: a batch of FtM query entities (`{"queries": {key:
//!   {"schema", "properties"}}}`) in; `{"responses": {key: {"status", "results",
//!   "total", "query"}}, "limit", "matcher"}` out. Each result is an FtM entity
//!   ([`crate::ftm`]) with `score`, `match` (score ≥ `threshold`), `features` and
//!   `explanations`, plus wlnode's own full `explanation`.
//! - `GET /search/{dataset}?q=`: a name search, yente's `SearchResponse`.
//! - `GET /entities/{id}`: one entity with its sanction and relationships nested.
//! - `GET /algorithms`: the one algorithm served.
//!
//! Every search runs on the same index as `/v1/screen`, beside it. Datasets are those
//! of [`crate::ftm`]: `default`, one per origin agency, one per sharing group.
//!
//! **Algorithm.** wlnode serves its own scorer, named [`ALGORITHM`]; yente's alias
//! `best` selects it. yente's other algorithm names (`logic-v1`, `logic-v2`,
//! `name-based`, `regression-v1`, ...) are refused with 400 rather than answered by a
//! different scorer under their name; so are non-empty `weights` and `config`, which
//! only those scorers understand. The default `threshold` is wlnode's calibrated
//! threshold, 0.80, not yente's 0.70: the scores are wlnode's.
//!
//! **Query properties used:** `name`, `alias`, `weakAlias`, `previousName` (or
//! `firstName`/`middleName`/`lastName` when no name is given) as names;
//! `birthDate`/`incorporationDate`/`buildDate`; `nationality`, `citizenship`, `country`,
//! `jurisdiction`, `flag` (ISO codes or names, mapped by the import crate's country
//! table); `idNumber`, `passportNumber`, `registrationNumber`, `imoNumber`, `leiCode`,
//! `taxNumber`, `innCode`, `vatCode`, `ogrnCode`; the first `address` (matched against
//! entry addresses, a small raise when most of its words agree). As in yente, a value that cannot be read (a date or country that is not one)
//! is left out of the echoed `query`, which shows what was understood.
//!
//! **Filters:** `threshold`, `cutoff`, `limit`, `include_dataset`, `exclude_dataset`,
//! `exclude_schema` (with FtM's inheritance: `Asset` excludes vessels and companies),
//! `exclude_entity_ids`, `topics` and `changed_since` are honoured, and a query's schema
//! bounds its results the same way (a `LegalEntity` query never returns a vessel).
//! yente's presentational parameters (`fuzzy`, `simple`, `facets`, `filter_op`) are
//! accepted without effect; any other parameter is refused by name. Other keys in the
//! body and in query entities are ignored, as yente ignores them (clients send entities
//! back as the API returned them).
//!
//! **Bounds**, each checked before the work it limits: a 1 MiB body; at most
//! [`MAX_QUERIES`] queries per batch, [`MAX_VALUES`] values per property, [`MAX_NAMES`]
//! names and [`MAX_IDENTIFIERS`] identifiers per query, [`MAX_SEARCHES`] index searches
//! and [`MAX_CANDIDATES`] candidates per request, 50 `exclude_entity_ids`, `limit` ≤
//! 500. Candidates are read from the store in jobs of 256 entries, so replication never
//! waits behind a whole batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wlnode_crypto::model::{AgencyCode, CountryCode, EntryId, Identifier, SubjectKind};
use wlnode_crypto::time::{PartialDate, Timestamp};
use wlnode_runtime::cases::{Channel, Hit, Party};
use wlnode_runtime::entries::EntryView;
use wlnode_screen::request::ScreenError;
use wlnode_screen::{EntryKey, MAX_QUERY_CHARS, Match, Query as ScreenQuery};

use super::ftm::{self, FtmEntity};
use super::{ApiError, ApiState, parse_json};

/// The name of the one scoring algorithm `/match` serves.
pub const ALGORITHM: &str = "wlnode-v1";
/// Most queries in one `/match` batch (yente's `MAX_BATCH`).
pub const MAX_QUERIES: usize = 100;
/// Most names one query entity may carry.
pub const MAX_NAMES: usize = 8;
/// Most identifiers one query entity may carry.
pub const MAX_IDENTIFIERS: usize = 8;
/// Most results per query (yente's `MAX_MATCHES`).
pub const MAX_MATCHES: usize = 500;
/// Results per query when `limit` is not given (yente's `MATCH_PAGE`).
pub const DEFAULT_MATCHES: usize = 5;
/// Most `exclude_entity_ids` (as yente).
pub const MAX_EXCLUDED: usize = 50;
/// Least score a `/search` result needs.
pub const SEARCH_FLOOR: f64 = 0.5;
/// Most values one property of a query entity may carry (checked before any work).
pub const MAX_VALUES: usize = 32;
/// Most index searches one `/match` request may cause (queries × their names and
/// identifiers).
pub const MAX_SEARCHES: usize = 400;
/// Most candidates one `/match` request reads from the store, over all its queries
/// (`limit` × queries beyond this is refused).
pub const MAX_CANDIDATES: usize = 10_000;
/// Largest `/match` body: a full batch of 100 rich query entities is far smaller.
pub const MAX_MATCH_BODY: usize = 1 << 20;

// ---------------------------------------------------------------- datasets

/// Which entries a dataset name selects.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Dataset {
    /// Everything the node holds.
    All,
    /// Entries of one origin agency.
    Agency(String),
    /// Entries distributed to one sharing group.
    Group(String),
}

impl Dataset {
    /// The dataset an entity's `datasets` list must contain, if any.
    fn name(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Agency(n) | Self::Group(n) => Some(n),
        }
    }
}

/// Resolves a dataset name against the roster: `default`, a member agency (its code in
/// any case) or `group_<name>` of a roster group. 404 for anything else.
fn dataset(state: &ApiState, name: &str) -> Result<Dataset, ApiError> {
    let lower = name.trim().to_ascii_lowercase();
    if lower == "default" {
        return Ok(Dataset::All);
    }
    let roster = state.node.trust.roster();
    if let Some(g) = lower.strip_prefix("group_")
        && roster.groups().iter().any(|x| x.as_str() == g)
    {
        return Ok(Dataset::Group(lower));
    }
    if let Ok(code) = AgencyCode::new(lower.to_ascii_uppercase())
        && roster.member(&code).is_some()
    {
        return Ok(Dataset::Agency(lower));
    }
    Err(ApiError::not_found(format!(
        "no such dataset {name:?}: use default, an agency code in lower case, or group_<name>"
    )))
}

// ---------------------------------------------------------------- parameters

/// Parameters common to `/match` and `/search`.
#[derive(Debug, Default)]
struct Params {
    limit: Option<usize>,
    offset: usize,
    threshold: Option<f64>,
    cutoff: Option<f64>,
    include_dataset: Vec<String>,
    exclude_dataset: Vec<String>,
    exclude_schema: Vec<String>,
    exclude_entity_ids: Vec<String>,
    countries: Vec<String>,
    topics: Vec<String>,
    changed_since: Option<Timestamp>,
    q: Option<String>,
    schema: Option<String>,
}

fn bad_param(field: &str, message: impl Into<String>) -> ApiError {
    let mut e = ApiError::with_status(StatusCode::BAD_REQUEST, "invalid_field", message);
    e.field = Some(field.to_owned());
    e
}

fn number<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, ApiError> {
    v.trim()
        .parse()
        .map_err(|_| bad_param(field, format!("{field}: {v:?} is not a number")))
}

/// Reads the query string. `allowed` names the parameters this route honours; yente's
/// purely presentational ones (`fuzzy`, `simple`, `facets`, `filter_op`) are accepted
/// and have no effect; anything else is refused by name, so a filter wlnode cannot apply
/// never silently widens an answer.
fn params(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    allowed: &[&str],
) -> Result<Params, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut p = Params::default();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            if ["fuzzy", "simple", "facets", "filter_op"].contains(&k.as_str()) {
                continue;
            }
            return Err(bad_param(
                &k,
                format!(
                    "{k}: not a parameter wlnode honours here (it takes {})",
                    allowed.join(", ")
                ),
            ));
        }
        match k.as_str() {
            "limit" => p.limit = Some(number("limit", &v)?),
            "offset" => p.offset = number("offset", &v)?,
            "threshold" => p.threshold = Some(number("threshold", &v)?),
            "cutoff" => p.cutoff = Some(number("cutoff", &v)?),
            "algorithm" => {
                let a = v.trim().to_ascii_lowercase();
                if a != "best" && a != ALGORITHM {
                    return Err(bad_param(
                        "algorithm",
                        format!(
                            "algorithm: {v:?} is not served; wlnode serves {ALGORITHM} (also called best)"
                        ),
                    ));
                }
            }
            "include_dataset" => p.include_dataset.push(v.trim().to_ascii_lowercase()),
            "exclude_dataset" => p.exclude_dataset.push(v.trim().to_ascii_lowercase()),
            "exclude_schema" => p.exclude_schema.push(v.trim().to_owned()),
            "exclude_entity_ids" => p.exclude_entity_ids.push(v.trim().to_owned()),
            "countries" => p.countries.push(v),
            "topics" => p.topics.push(v.trim().to_owned()),
            "changed_since" => {
                p.changed_since = Some(since(&v).ok_or_else(|| {
                    bad_param(
                        "changed_since",
                        format!(
                            "changed_since: {v:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"
                        ),
                    )
                })?);
            }
            "q" => p.q = Some(v),
            "schema" => p.schema = Some(v),
            _ => {}
        }
    }
    for (field, v) in [("threshold", p.threshold), ("cutoff", p.cutoff)] {
        if let Some(x) = v
            && !(0.0..=1.0).contains(&x)
        {
            return Err(bad_param(
                field,
                format!("{field}: must be between 0 and 1, got {x}"),
            ));
        }
    }
    if p.exclude_entity_ids.len() > MAX_EXCLUDED {
        return Err(bad_param(
            "exclude_entity_ids",
            format!(
                "exclude_entity_ids: {} given, at most {MAX_EXCLUDED} are allowed",
                p.exclude_entity_ids.len()
            ),
        ));
    }
    Ok(p)
}

/// `changed_since` as yente takes it: a date or an RFC 3339 time.
fn since(v: &str) -> Option<Timestamp> {
    let v = v.trim();
    Timestamp::parse_rfc3339(v)
        .ok()
        .or_else(|| Timestamp::parse_rfc3339(&format!("{v}T00:00:00Z")).ok())
}

/// The FtM schemata an entity of each wlnode schema is, itself included (FtM's
/// inheritance, as far as these three go).
fn ancestors(schema: &str) -> &'static [&'static str] {
    match schema {
        "Person" => &["Person", "LegalEntity", "Thing"],
        "Company" => &[
            "Company",
            "Organization",
            "LegalEntity",
            "Asset",
            "Value",
            "Thing",
        ],
        "Vessel" => &["Vessel", "Vehicle", "Asset", "Value", "Thing"],
        _ => &[],
    }
}

/// Whether an entity of `entity_schema` is a `schema` (FtM's `is_a`).
fn is_a(entity_schema: &str, schema: &str) -> bool {
    ancestors(entity_schema).contains(&schema)
}

/// The kind a query schema asks for (`None`: any kind, filtered by [`is_a`] after the
/// search), or an error for a schema that is not a party wlnode matches.
fn kind_of_schema(schema: &str) -> Option<Option<SubjectKind>> {
    match schema {
        "Person" => Some(Some(SubjectKind::Person)),
        "Organization" | "Company" => Some(Some(SubjectKind::Organization)),
        "Vessel" => Some(Some(SubjectKind::Vessel)),
        "LegalEntity" | "Thing" | "Asset" => Some(None),
        _ => None,
    }
}

/// Whether an entity's schema is one of the excluded ones or descends from one.
fn schema_excluded(entity_schema: &str, excluded: &[String]) -> bool {
    excluded.iter().any(|x| is_a(entity_schema, x))
}

// ---------------------------------------------------------------- query entities

/// A `/match` body (yente's `EntityMatchQuery`). As in yente, other keys are ignored.
#[derive(Deserialize)]
struct MatchBody {
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    #[serde(default)]
    config: BTreeMap<String, Value>,
    queries: BTreeMap<String, Option<Example>>,
}

/// A query entity (yente's `EntityExample`). yente asks clients to send entities
/// "formatted like those returned by the API", so their other keys (`caption`,
/// `datasets`, `target`, ...) are ignored, as yente ignores them.
#[derive(Deserialize)]
struct Example {
    #[serde(default)]
    id: Option<String>,
    schema: String,
    #[serde(default)]
    properties: BTreeMap<String, Value>,
}

/// The echo of a query as understood (yente's parsed `EntityExample`).
#[derive(Clone, Debug, Serialize)]
struct Echo {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    schema: String,
    properties: BTreeMap<String, Vec<String>>,
}

/// What a query entity asks, ready for the index.
#[derive(Debug)]
struct Parsed {
    echo: Echo,
    kind: Option<SubjectKind>,
    names: Vec<String>,
    birth_date: Option<PartialDate>,
    country: Option<CountryCode>,
    identifiers: Vec<Identifier>,
    /// The first address given (matched against entry addresses).
    address: Option<String>,
}

const NAME_PROPS: &[&str] = &["name", "alias", "weakAlias", "previousName"];
const NAME_PART_PROPS: &[&str] = &["firstName", "secondName", "middleName", "lastName"];
const DATE_PROPS: &[&str] = &["birthDate", "incorporationDate", "buildDate"];
const COUNTRY_PROPS: &[&str] = &[
    "nationality",
    "citizenship",
    "country",
    "jurisdiction",
    "flag",
];
const ID_PROPS: &[(&str, &str)] = &[
    ("idNumber", "national_id"),
    ("passportNumber", "passport"),
    ("registrationNumber", "registration"),
    ("ogrnCode", "registration"),
    ("imoNumber", "imo"),
    ("leiCode", "lei"),
    ("taxNumber", "tax_id"),
    ("innCode", "tax_id"),
    ("vatCode", "tax_id"),
];

/// The text values of one property: a string or a list of strings and numbers.
fn texts(field: &str, v: &Value) -> Result<Vec<String>, ApiError> {
    let one = |x: &Value| match x {
        Value::String(s) => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(bad_param(
            field,
            format!("{field}: values must be strings or numbers"),
        )),
    };
    let out: Vec<String> = match v {
        Value::Array(list) if list.len() > MAX_VALUES => {
            return Err(bad_param(
                field,
                format!(
                    "{field}: {} values; at most {MAX_VALUES} are allowed",
                    list.len()
                ),
            ));
        }
        Value::Array(list) => list.iter().map(one).collect::<Result<_, _>>()?,
        Value::Null => Vec::new(),
        x => vec![one(x)?],
    };
    for s in &out {
        let chars = s.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(bad_param(
                field,
                format!(
                    "{field}: a value has {chars} characters; at most {MAX_QUERY_CHARS} are allowed"
                ),
            ));
        }
    }
    Ok(out.into_iter().filter(|s| !s.is_empty()).collect())
}

/// A date value as yente's clients send it: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or longer
/// ISO text (a time is ignored).
fn query_date(s: &str) -> Option<PartialDate> {
    [10, 7, 4]
        .into_iter()
        .filter_map(|n| s.get(..n.min(s.len())))
        .find_map(|p| PartialDate::parse(p).ok())
}

fn parse_example(key: &str, ex: Example) -> Result<Parsed, ApiError> {
    let f = |prop: &str| format!("queries.{key}.properties.{prop}");
    let kind = kind_of_schema(ex.schema.trim()).ok_or_else(|| {
        bad_param(
            &format!("queries.{key}.schema"),
            format!(
                "Cannot parse example entity: schema {:?} is not a party wlnode matches (Person, Organization, Company, PublicBody, LegalEntity, Vessel)",
                ex.schema
            ),
        )
    })?;
    let mut echo = Echo {
        id: ex.id,
        schema: ex.schema.trim().to_owned(),
        properties: BTreeMap::new(),
    };
    let props = &ex.properties;
    let get = |prop: &str| -> Result<Vec<String>, ApiError> {
        props
            .get(prop)
            .map_or(Ok(Vec::new()), |v| texts(&f(prop), v))
    };

    let mut names: Vec<String> = Vec::new();
    for prop in NAME_PROPS {
        for n in get(prop)? {
            if !names.contains(&n) {
                if names.len() == MAX_NAMES {
                    return Err(bad_param(
                        &f(prop),
                        format!(
                            "queries.{key} has more than {MAX_NAMES} names; at most {MAX_NAMES} are matched per query"
                        ),
                    ));
                }
                names.push(n.clone());
            }
            echo.properties
                .entry((*prop).to_owned())
                .or_default()
                .push(n);
        }
    }
    if names.is_empty() {
        let mut parts = Vec::new();
        for prop in NAME_PART_PROPS {
            for n in get(prop)? {
                echo.properties
                    .entry((*prop).to_owned())
                    .or_default()
                    .push(n.clone());
                parts.push(n);
            }
        }
        if !parts.is_empty() {
            names.push(parts.join(" "));
        }
    }
    if names.is_empty() {
        return Err(bad_param(
            &f("name"),
            format!(
                "Cannot parse example entity: queries.{key} has no name to match (name, alias, or firstName and lastName)"
            ),
        ));
    }

    let mut birth_date = None;
    for prop in DATE_PROPS {
        for d in get(prop)? {
            if let Some(pd) = query_date(&d) {
                birth_date = birth_date.or(Some(pd));
                echo.properties
                    .entry((*prop).to_owned())
                    .or_default()
                    .push(pd.to_string());
            }
        }
    }
    let mut country = None;
    for prop in COUNTRY_PROPS {
        for c in get(prop)? {
            if let Some(code) = wlnode_import::country_code(&c) {
                echo.properties
                    .entry((*prop).to_owned())
                    .or_default()
                    .push(code.as_str().to_ascii_lowercase());
                country = country.or(Some(code));
            }
        }
    }
    let mut identifiers = Vec::new();
    for (prop, kind) in ID_PROPS {
        for v in get(prop)? {
            let id = Identifier {
                kind: (*kind).to_owned(),
                value: v.clone(),
            };
            if id.validate().is_ok() && !identifiers.contains(&id) {
                if identifiers.len() == MAX_IDENTIFIERS {
                    return Err(bad_param(
                        &f(prop),
                        format!(
                            "queries.{key} has more than {MAX_IDENTIFIERS} identifiers; at most {MAX_IDENTIFIERS} are matched per query"
                        ),
                    ));
                }
                identifiers.push(id);
                echo.properties
                    .entry((*prop).to_owned())
                    .or_default()
                    .push(v);
            }
        }
    }
    let mut address = None;
    for a in get("address")? {
        if address.is_none() && a.chars().count() <= wlnode_screen::MAX_QUERY_CHARS {
            address = Some(a.clone());
        }
        echo.properties
            .entry("address".to_owned())
            .or_default()
            .push(a);
    }
    Ok(Parsed {
        echo,
        kind,
        names,
        birth_date,
        country,
        identifiers,
        address,
    })
}

impl Parsed {
    /// The index queries: each name (with the first identifier), then the first name
    /// with each further identifier. At most `MAX_NAMES + MAX_IDENTIFIERS - 1`.
    fn queries(&self, limit: usize, min_score: f64) -> Vec<ScreenQuery> {
        let base = |name: &str, id: Option<&Identifier>| {
            let mut q = ScreenQuery::new(name.to_owned());
            q.kind = self.kind;
            q.country = self.country.clone();
            q.birth_date = self.birth_date;
            q.identifier = id.cloned();
            q.address = self.address.clone();
            q.limit = limit;
            q.min_score = min_score;
            q
        };
        let mut out: Vec<ScreenQuery> = self
            .names
            .iter()
            .map(|n| base(n, self.identifiers.first()))
            .collect();
        if let Some(first) = self.names.first() {
            out.extend(
                self.identifiers
                    .iter()
                    .skip(1)
                    .map(|i| base(first, Some(i))),
            );
        }
        out
    }
}

// ---------------------------------------------------------------- searching

/// Runs the queries on a blocking thread and merges their matches per entry, best
/// score first.
async fn search_merged(
    state: &ApiState,
    batches: Vec<(Vec<ScreenQuery>, usize)>,
) -> Result<Vec<Vec<Match>>, ApiError> {
    let handle = state.node.screen.clone();
    super::screen::ready(state, &handle).await?;
    let metrics = state.node.metrics.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(batches.len());
        for (queries, fetch) in batches {
            let t = Instant::now();
            // Best match per entry; ties keep the index's order of the first query.
            let mut merged: Vec<Match> = Vec::new();
            let mut at: HashMap<EntryKey, usize> = HashMap::new();
            for q in &queries {
                let found = match handle.search(q) {
                    Ok(found) => found,
                    // A name with nothing to match (only punctuation) among others.
                    Err(ScreenError::Query(wlnode_screen::QueryError::NothingToMatch {
                        ..
                    })) if queries.len() > 1 => continue,
                    Err(e) => return Err(e),
                };
                for m in found {
                    let key = EntryKey {
                        origin: m.origin.clone(),
                        entry_id: m.entry_id,
                    };
                    match at.get(&key).and_then(|&i| merged.get_mut(i)) {
                        Some(b) if b.score >= m.score => {}
                        Some(b) => *b = m,
                        None => {
                            at.insert(key, merged.len());
                            merged.push(m);
                        }
                    }
                }
            }
            merged.sort_by(|a, b| b.score.total_cmp(&a.score));
            merged.truncate(fetch);
            metrics.screen_latency.observe(t.elapsed().as_secs_f64());
            out.push(merged);
        }
        Ok(out)
    })
    .await
    .map_err(|e| {
        ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?
    .map_err(ApiError::from)
}

/// Keys read per store job: replication and writes wait behind at most one.
const VIEWS_PER_JOB: usize = 256;

/// The entry views of these keys, in store jobs of [`VIEWS_PER_JOB`] (keys the store no
/// longer holds are left out).
async fn views(state: &ApiState, keys: Vec<EntryKey>) -> Result<Vec<EntryView>, ApiError> {
    let today = Timestamp::now().date();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(VIEWS_PER_JOB) {
        let chunk = chunk.to_vec();
        let part = state
            .node
            .store
            .call(move |s| {
                let mut out = Vec::with_capacity(chunk.len());
                for key in chunk {
                    let Some(st) = s.entry(&key)? else { continue };
                    let Some(head) = s.record(&st.head)? else {
                        continue;
                    };
                    out.push(EntryView::new(&key, &st, &head, today));
                }
                Ok(out)
            })
            .await?;
        out.extend(part);
    }
    Ok(out)
}

/// The filters a result must pass besides its score.
struct Filters {
    dataset: Dataset,
    include: Vec<String>,
    exclude: Vec<String>,
    exclude_schema: Vec<String>,
    exclude_ids: BTreeSet<(AgencyCode, EntryId)>,
    exclude_entry_ids: BTreeSet<EntryId>,
    countries: BTreeSet<CountryCode>,
    topics: Vec<String>,
    changed_since: Option<Timestamp>,
    /// Results must be of this FtM schema (the query's, or `/search`'s `schema`).
    schema: Option<String>,
}

impl Filters {
    fn new(state: &ApiState, dataset: Dataset, p: &Params) -> Result<Self, ApiError> {
        for d in p.include_dataset.iter().chain(&p.exclude_dataset) {
            self::dataset(state, d)?;
        }
        let mut exclude_ids = BTreeSet::new();
        let mut exclude_entry_ids = BTreeSet::new();
        for id in &p.exclude_entity_ids {
            if let Some(k) = ftm::parse_entity_id(id) {
                exclude_ids.insert(k);
            } else if let Ok(e) = EntryId::from_hex(id) {
                exclude_entry_ids.insert(e);
            }
            // Ids of other systems cannot name an entry here: nothing to exclude.
        }
        let mut countries = BTreeSet::new();
        for c in &p.countries {
            let code = wlnode_import::country_code(c).ok_or_else(|| {
                bad_param("countries", format!("countries: {c:?} is not a country"))
            })?;
            countries.insert(code);
        }
        Ok(Self {
            dataset,
            include: p.include_dataset.clone(),
            exclude: p.exclude_dataset.clone(),
            exclude_schema: p.exclude_schema.clone(),
            exclude_ids,
            exclude_entry_ids,
            countries,
            topics: p.topics.clone(),
            changed_since: p.changed_since,
            schema: None,
        })
    }

    /// The same filters, for results of a query of `schema`.
    fn for_schema(&self, schema: &str) -> Self {
        Self {
            dataset: self.dataset.clone(),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            exclude_schema: self.exclude_schema.clone(),
            exclude_ids: self.exclude_ids.clone(),
            exclude_entry_ids: self.exclude_entry_ids.clone(),
            countries: self.countries.clone(),
            topics: self.topics.clone(),
            changed_since: self.changed_since,
            schema: Some(schema.to_owned()),
        }
    }

    /// Whether any filter can drop an index match (then more candidates are fetched).
    fn narrows(&self) -> bool {
        self.dataset != Dataset::All
            || !self.include.is_empty()
            || !self.exclude.is_empty()
            || !self.exclude_schema.is_empty()
            || !self.exclude_ids.is_empty()
            || !self.exclude_entry_ids.is_empty()
            || !self.countries.is_empty()
            || !self.topics.is_empty()
            || self.changed_since.is_some()
            || self
                .schema
                .as_deref()
                .is_some_and(|s| kind_of_schema(s) == Some(None))
    }

    fn excludes_key(&self, m: &Match) -> bool {
        self.exclude_entry_ids.contains(&m.entry_id)
            || self.exclude_ids.contains(&(m.origin.clone(), m.entry_id))
    }

    fn admits(&self, e: &FtmEntity, view: &EntryView) -> bool {
        let has = |d: &str| e.datasets.iter().any(|x| x == d);
        self.dataset.name().is_none_or(has)
            && (self.include.is_empty() || self.include.iter().any(|d| has(d)))
            && !self.exclude.iter().any(|d| has(d))
            && !schema_excluded(&e.schema, &self.exclude_schema)
            && self.schema.as_deref().is_none_or(|s| is_a(&e.schema, s))
            && (self.topics.is_empty()
                || e.texts("topics")
                    .any(|t| self.topics.iter().any(|x| x == t)))
            && self.changed_since.is_none_or(|t| view.issued_at >= t)
            && (self.countries.is_empty()
                || [&view.subject.country, &view.subject.nationality]
                    .into_iter()
                    .flatten()
                    .any(|c| self.countries.contains(c)))
    }
}

/// How many index matches to fetch for `wanted` results.
fn candidates(wanted: usize, filters: &Filters) -> usize {
    let n = if filters.narrows() {
        wanted.saturating_mul(4).max(20)
            + filters.exclude_ids.len()
            + filters.exclude_entry_ids.len()
    } else {
        wanted
    };
    n.clamp(1, wlnode_screen::MAX_LIMIT)
}

/// The entry views of every match of every query (each entry read once).
async fn views_of(
    state: &ApiState,
    all: &[Vec<Match>],
    filters: &Filters,
) -> Result<HashMap<EntryKey, EntryView>, ApiError> {
    let keys: BTreeSet<EntryKey> = all
        .iter()
        .flatten()
        .filter(|m| !filters.excludes_key(m))
        .map(|m| EntryKey {
            origin: m.origin.clone(),
            entry_id: m.entry_id,
        })
        .collect();
    Ok(views(state, keys.into_iter().collect())
        .await?
        .into_iter()
        .map(|v| {
            (
                EntryKey {
                    origin: v.origin.clone(),
                    entry_id: v.entry_id,
                },
                v,
            )
        })
        .collect())
}

/// The matches that pass the filters, with their entities, best first.
fn filtered(
    matches: Vec<Match>,
    views: &HashMap<EntryKey, EntryView>,
    filters: &Filters,
) -> Vec<(Match, FtmEntity)> {
    let mut out = Vec::with_capacity(matches.len());
    for m in matches {
        if filters.excludes_key(&m) {
            continue;
        }
        let key = EntryKey {
            origin: m.origin.clone(),
            entry_id: m.entry_id,
        };
        // An entry the store no longer holds (removed since the search) is left out.
        let Some(view) = views.get(&key) else {
            continue;
        };
        let e = ftm::subject_entity(view);
        if filters.admits(&e, view) {
            out.push((m, e));
        }
    }
    out
}

// ---------------------------------------------------------------- /match

/// One feature's share of a score (nomenklatura's `FeatureResult`).
#[derive(Clone, Debug, Serialize)]
struct Feature {
    score: f64,
    detail: String,
}

/// A scored result (yente's `ScoredEntityResponse`).
#[derive(Serialize)]
struct Scored {
    #[serde(flatten)]
    entity: FtmEntity,
    score: f64,
    #[serde(rename = "match")]
    is_match: bool,
    features: BTreeMap<String, f64>,
    explanations: BTreeMap<String, Feature>,
    /// wlnode's own explanation: which token matched which, and every adjustment.
    explanation: wlnode_screen::Explanation,
    /// The decision in force for this party and entry version (wlnode's case log).
    decision: Option<wlnode_runtime::cases::Decision>,
}

fn scored(m: Match, entity: FtmEntity, threshold: f64) -> Scored {
    let e = &m.explanation;
    let mut features = BTreeMap::new();
    let mut explanations = BTreeMap::new();
    features.insert("name_similarity".to_owned(), e.matched_similarity);
    explanations.insert(
        "name_similarity".to_owned(),
        Feature {
            score: e.matched_similarity,
            detail: format!(
                "{} of the query's tokens matched {:?}",
                e.token_matches.len(),
                m.matched_name
            ),
        },
    );
    for a in &e.adjustments {
        let name = serde_json::to_value(a.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", a.kind));
        *features.entry(name.clone()).or_insert(0.0) += a.delta;
        explanations.insert(
            name,
            Feature {
                score: a.delta,
                detail: a.detail.clone(),
            },
        );
    }
    Scored {
        entity,
        score: m.score,
        is_match: m.score >= threshold,
        features,
        explanations,
        explanation: m.explanation,
        decision: None,
    }
}

/// yente's `TotalSpec`.
#[derive(Serialize)]
struct Total {
    value: usize,
    relation: &'static str,
}

/// yente's `EntityMatches`.
#[derive(Serialize)]
struct Matches {
    status: u16,
    results: Vec<Scored>,
    total: Total,
    query: Echo,
    /// The screening's case in wlnode's case log.
    case_id: String,
}

/// yente's `EntityMatchResponse`, with the algorithm that scored it.
#[derive(Serialize)]
pub(super) struct MatchResponse {
    responses: BTreeMap<String, Matches>,
    limit: usize,
    matcher: &'static str,
}

const MATCH_PARAMS: &[&str] = &[
    "limit",
    "threshold",
    "cutoff",
    "algorithm",
    "include_dataset",
    "exclude_dataset",
    "exclude_schema",
    "exclude_entity_ids",
    "topics",
    "changed_since",
];

/// `POST /match/{dataset}`.
#[utoipa::path(post, path = "/match/{dataset}", tag = "yente",
    params(("dataset" = String, Path, description = "default, an origin agency code in lower case, or group_<name>"),
        ("limit" = Option<usize>, Query, description = "Results per query, 1 to 500 (default 5)"),
        ("threshold" = Option<f64>, Query, description = "Score at which a result is a match (default 0.80)"),
        ("cutoff" = Option<f64>, Query, description = "Deprecated in yente: least score returned (at most threshold)"),
        ("algorithm" = Option<String>, Query, description = "best or wlnode-v1 (the one served)"),
        ("include_dataset" = Option<Vec<String>>, Query, description = "Only results in these datasets"),
        ("exclude_dataset" = Option<Vec<String>>, Query, description = "No results in these datasets"),
        ("exclude_schema" = Option<Vec<String>>, Query, description = "No results of these schemata"),
        ("exclude_entity_ids" = Option<Vec<String>>, Query, description = "Entity ids already decided by a human (at most 50)")),
    request_body(content = Object, description = "yente's EntityMatchQuery: {\"queries\": {key: {\"schema\", \"properties\"}}}"),
    responses((status = 200, description = "yente's EntityMatchResponse: responses.{key}.results[] with score, match, features and explanations"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc), (status = 503, body = super::openapi::ErrorDoc)))]
pub(super) async fn match_entities(
    State(state): State<ApiState>,
    Extension(actor): Extension<wlnode_runtime::users::Actor>,
    Path(dataset_name): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
    body: Bytes,
) -> Result<Json<MatchResponse>, ApiError> {
    let p = params(q, MATCH_PARAMS)?;
    let ds = dataset(&state, &dataset_name)?;
    let limit = p.limit.unwrap_or(DEFAULT_MATCHES);
    if limit == 0 || limit > MAX_MATCHES {
        return Err(bad_param(
            "limit",
            format!("limit: must be between 1 and {MAX_MATCHES}, got {limit}"),
        ));
    }
    let threshold = p.threshold.unwrap_or(wlnode_screen::DEFAULT_MIN_SCORE);
    let cutoff = p.cutoff.unwrap_or(threshold).min(threshold);
    let body: MatchBody = parse_json(&body)?;
    if let Some(w) = body.weights.keys().next() {
        return Err(bad_param(
            "weights",
            format!("weights: {w:?} is a weight of yente's algorithms; {ALGORITHM} takes none"),
        ));
    }
    if let Some(c) = body.config.keys().next() {
        return Err(bad_param(
            "config",
            format!("Invalid configuration parameter: {c} for algorithm {ALGORITHM}"),
        ));
    }
    let examples: Vec<(String, Example)> = body
        .queries
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if examples.is_empty() {
        return Err(ApiError::bad_request("No queries provided."));
    }
    if examples.len() > MAX_QUERIES {
        return Err(ApiError::bad_request(format!(
            "Too many queries in one batch (limit: {MAX_QUERIES})"
        )));
    }
    let filters = Filters::new(&state, ds, &p)?;
    if limit.saturating_mul(examples.len()) > MAX_CANDIDATES {
        return Err(bad_param(
            "limit",
            format!(
                "limit {limit} × {} queries asks for more than {MAX_CANDIDATES} results; lower the limit or split the batch",
                examples.len()
            ),
        ));
    }
    // Each query fetches what its filters need, within its share of the budget.
    let share = (MAX_CANDIDATES / examples.len()).max(limit);
    let mut parsed = Vec::with_capacity(examples.len());
    let mut searches = 0usize;
    for (key, ex) in examples {
        let pq = parse_example(&key, ex)?;
        let qf = filters.for_schema(&pq.echo.schema);
        let fetch = candidates(limit, &qf).min(share);
        let queries = pq.queries(fetch, cutoff);
        searches += queries.len();
        if searches > MAX_SEARCHES {
            return Err(ApiError::bad_request(format!(
                "the batch needs more than {MAX_SEARCHES} index searches (one per name, and one per further identifier, of each query); split it"
            )));
        }
        parsed.push((key, pq, qf, fetch, queries));
    }
    let batches = parsed
        .iter_mut()
        .map(|(_, _, _, fetch, queries)| (std::mem::take(queries), *fetch))
        .collect();
    let results = search_merged(&state, batches).await?;
    let views = views_of(&state, &results, &filters).await?;
    let mut answered = Vec::with_capacity(parsed.len());
    for ((key, pq, qf, fetch, _), matches) in parsed.into_iter().zip(results) {
        let fetched = matches.len();
        let passing = filtered(matches, &views, &qf);
        let total = Total {
            value: passing.len(),
            relation: if fetched >= fetch { "gte" } else { "eq" },
        };
        let hits: Vec<Hit> = passing
            .iter()
            .take(limit)
            .map(|(m, _)| Hit::from(m))
            .collect();
        let results: Vec<Scored> = passing
            .into_iter()
            .take(limit)
            .map(|(m, e)| scored(m, e, threshold))
            .collect();
        let party = Party {
            name: pq.names.first().cloned().unwrap_or_default(),
            country: pq.country.as_ref().map(|c| c.as_str().to_owned()),
            dob: pq.birth_date.map(|d| d.to_string()),
            reference: pq.echo.id.clone(),
            id: pq.identifiers.first().map(|i| i.canonical()),
            address: pq.address.clone(),
        };
        answered.push((key, pq.echo, total, results, party, hits));
    }
    // Every query is a screening: log them as cases, in one store job.
    let logged = state
        .node
        .cases
        .record(
            &actor,
            Channel::Match,
            answered
                .iter()
                .map(|(_, _, _, _, party, hits)| (party.clone(), hits.clone()))
                .collect(),
        )
        .await?;
    let mut responses = BTreeMap::new();
    for ((key, echo, total, mut results, _, _), l) in answered.into_iter().zip(logged) {
        for (r, d) in results.iter_mut().zip(l.decisions) {
            r.decision = d;
        }
        responses.insert(
            key,
            Matches {
                status: 200,
                results,
                total,
                query: echo,
                case_id: l.case_id,
            },
        );
    }
    Ok(Json(MatchResponse {
        responses,
        limit,
        matcher: ALGORITHM,
    }))
}

// ---------------------------------------------------------------- /search

/// yente's `SearchResponse` (no facets are computed: `facets` is empty).
#[derive(Serialize)]
pub(super) struct SearchResponse {
    results: Vec<FtmEntity>,
    facets: BTreeMap<String, Value>,
    total: Total,
    limit: usize,
    offset: usize,
}

const SEARCH_PARAMS: &[&str] = &[
    "q",
    "schema",
    "limit",
    "offset",
    "countries",
    "include_dataset",
    "exclude_dataset",
    "exclude_schema",
    "topics",
    "changed_since",
];

/// `GET /search/{dataset}?q=`.
#[utoipa::path(get, path = "/search/{dataset}", tag = "yente",
    params(("dataset" = String, Path, description = "default, an origin agency code in lower case, or group_<name>"),
        ("q" = String, Query, description = "Name to search for"),
        ("schema" = Option<String>, Query, description = "Person, Organization, Company, Vessel, LegalEntity"),
        ("limit" = Option<usize>, Query, description = "1 to 500 (default 10)"),
        ("offset" = Option<usize>, Query, description = "offset + limit at most 1000"),
        ("countries" = Option<Vec<String>>, Query, description = "Only entities of these countries or nationalities"),
        ("include_dataset" = Option<Vec<String>>, Query), ("exclude_dataset" = Option<Vec<String>>, Query),
        ("exclude_schema" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "yente's SearchResponse (facets empty)"),
        (status = 400, body = super::openapi::ErrorDoc), (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn search(
    State(state): State<ApiState>,
    Path(dataset_name): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let p = params(q, SEARCH_PARAMS)?;
    let ds = dataset(&state, &dataset_name)?;
    let text = p.q.clone().unwrap_or_default();
    if text.trim().is_empty() {
        let mut e = ApiError::with_status(
            StatusCode::BAD_REQUEST,
            "empty_query",
            "q: the text to search for is missing or empty (GET /search/default?q=NAME)",
        );
        e.field = Some("q".into());
        return Err(e);
    }
    let limit = p.limit.unwrap_or(10);
    if limit == 0 || limit > MAX_MATCHES {
        return Err(bad_param(
            "limit",
            format!("limit: must be between 1 and {MAX_MATCHES}, got {limit}"),
        ));
    }
    if p.offset.saturating_add(limit) > wlnode_screen::MAX_LIMIT {
        return Err(bad_param(
            "offset",
            format!(
                "offset: offset + limit must be at most {}",
                wlnode_screen::MAX_LIMIT
            ),
        ));
    }
    let kind = match p.schema.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => kind_of_schema(s)
            .ok_or_else(|| bad_param("schema", format!("schema: {s:?} is not a party schema")))?,
    };
    let base = Filters::new(&state, ds, &p)?;
    let filters = match p.schema.as_deref().map(str::trim) {
        None | Some("") => base,
        Some(s) => base.for_schema(s),
    };
    let fetch = candidates(p.offset + limit, &filters)
        .max(p.offset + limit)
        .min(wlnode_screen::MAX_LIMIT);
    let mut query = ScreenQuery::new(text.clone());
    query.kind = kind;
    query.limit = fetch.min(wlnode_screen::MAX_LIMIT);
    query.min_score = SEARCH_FLOOR;
    let found = search_merged(&state, vec![(vec![query], fetch)]).await?;
    let views = views_of(&state, &found, &filters).await?;
    let matches = found.into_iter().next().unwrap_or_default();
    let fetched = matches.len();
    let passing = filtered(matches, &views, &filters);
    let total = Total {
        value: passing.len(),
        relation: if fetched >= fetch { "gte" } else { "eq" },
    };
    let results = passing
        .into_iter()
        .skip(p.offset)
        .take(limit)
        .map(|(_, e)| e)
        .collect();
    Ok(Json(SearchResponse {
        results,
        facets: BTreeMap::new(),
        total,
        limit,
        offset: p.offset,
    }))
}

// ---------------------------------------------------------------- /entities

/// `GET /entities/{id}`: the subject with its sanction and relationships nested, or
/// one of those entities by its own id. Accepts `?nested=false` for the flat subject.
#[utoipa::path(get, path = "/entities/{id}", tag = "yente",
    params(("id" = String, Path, description = "wl-<origin>-<entry id>, or a -sanction / -link-N / -party-N id"),
        ("nested" = Option<bool>, Query, description = "Nest the sanction and relationships (default true)")),
    responses((status = 200, description = "An FtM entity"),
        (status = 401, body = super::openapi::ErrorDoc), (status = 404, body = super::openapi::ErrorDoc)))]
pub(super) async fn entity(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<FtmEntity>, ApiError> {
    let Query(pairs) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut nested = true;
    for (k, v) in pairs {
        match (k.as_str(), v.trim()) {
            ("nested", "true" | "1" | "") => nested = true,
            ("nested", "false" | "0") => nested = false,
            ("nested", other) => {
                return Err(bad_param(
                    "nested",
                    format!("nested: {other:?} is not true or false"),
                ));
            }
            (other, _) => {
                return Err(bad_param(
                    other,
                    format!("{other}: not a parameter (nested)"),
                ));
            }
        }
    }
    let not_found = || ApiError::not_found(format!("No such entity: {id:?}"));
    let (origin, entry) = ftm::parse_entity_id(&id).ok_or_else(not_found)?;
    let key = EntryKey {
        origin: origin.clone(),
        entry_id: entry,
    };
    let view = views(&state, vec![key])
        .await?
        .pop()
        .ok_or_else(not_found)?;
    // Which linked entries this node holds, in one store job.
    let linked: Vec<EntryKey> = view
        .subject
        .identifiers
        .iter()
        .filter(|i| ftm::LINK_TYPES.contains(&i.kind.as_str()))
        .filter_map(|i| ftm::linked_entry(&view.origin, &i.value))
        .map(|(origin, entry_id)| EntryKey { origin, entry_id })
        .collect();
    let held: BTreeMap<(AgencyCode, EntryId), SubjectKind> = state
        .node
        .store
        .call(move |s| {
            let mut held = BTreeMap::new();
            for k in linked {
                if let Some(st) = s.entry(&k)?
                    && let Some(head) = s.record(&st.head)?
                {
                    held.insert((k.origin, k.entry_id), head.record.header().subject_kind);
                }
            }
            Ok(held)
        })
        .await?;
    let is_held = |o: &AgencyCode, e: EntryId| held.get(&(o.clone(), e)).copied();
    let subject_id = ftm::entity_id(&origin, entry);
    if id == subject_id {
        return Ok(Json(if nested {
            ftm::nested_entity(&view, is_held)
        } else {
            ftm::subject_entity(&view)
        }));
    }
    ftm::entry_entities(&view, is_held)
        .into_iter()
        .find(|e| e.id == id)
        .map(Json)
        .ok_or_else(not_found)
}

// ---------------------------------------------------------------- /algorithms

/// yente's `AlgorithmResponse`, listing the one algorithm served.
#[derive(Serialize)]
pub(super) struct Algorithms {
    algorithms: Vec<AlgorithmDoc>,
    default: &'static str,
    best: &'static str,
}

/// yente's `Algorithm`: name, description, the deprecated `features` and `docs`.
#[derive(Serialize)]
struct AlgorithmDoc {
    name: &'static str,
    description: &'static str,
    features: BTreeMap<&'static str, FeatureDoc>,
    docs: AlgorithmDocs,
}

/// nomenklatura's `FeatureDoc`.
#[derive(Clone, Serialize)]
struct FeatureDoc {
    description: &'static str,
    coefficient: f64,
    url: &'static str,
}

/// nomenklatura's `AlgorithmDocs`.
#[derive(Serialize)]
struct AlgorithmDocs {
    name: &'static str,
    description: &'static str,
    config: BTreeMap<&'static str, Value>,
    features: BTreeMap<&'static str, FeatureDoc>,
}

/// The features a result's `features` and `explanations` may name.
fn feature_docs() -> BTreeMap<&'static str, FeatureDoc> {
    let doc = |description| FeatureDoc {
        description,
        coefficient: 1.0,
        url: "",
    };
    BTreeMap::from([
        (
            "name_similarity",
            doc("Weighted similarity of the aligned name tokens (transliterated, order-free)"),
        ),
        (
            "missing_tokens",
            doc("Lowers the score for tokens on either side without a counterpart"),
        ),
        (
            "birth_date_agrees",
            doc("Raises the score when the dates agree on every known part"),
        ),
        (
            "birth_date_conflict",
            doc("Lowers the score when the dates disagree"),
        ),
        (
            "country_agrees",
            doc("Raises the score when the query's country is the entity's country or nationality"),
        ),
        (
            "country_conflict",
            doc("Lowers the score when both differ from the query's country"),
        ),
        (
            "identifier_match",
            doc("An identifier matches exactly: the score becomes 1"),
        ),
        (
            "identifier_conflict",
            doc("The entity has another identifier of the query's type"),
        ),
    ])
}

const DESCRIPTION: &str = "wlnode's screening scorer: transliteration-aware, token-order-insensitive name similarity with country, date and identifier adjustments (the same as /v1/screen)";

/// `GET /algorithms`.
#[utoipa::path(get, path = "/algorithms", tag = "yente",
    responses((status = 200, description = "The one algorithm served, as yente's AlgorithmResponse")))]
pub(super) async fn algorithms() -> Json<Algorithms> {
    Json(Algorithms {
        algorithms: vec![AlgorithmDoc {
            name: ALGORITHM,
            description: DESCRIPTION,
            features: feature_docs(),
            docs: AlgorithmDocs {
                name: ALGORITHM,
                description: DESCRIPTION,
                config: BTreeMap::new(),
                features: feature_docs(),
            },
        }],
        default: ALGORITHM,
        best: ALGORITHM,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn example(schema: &str, props: Value) -> Example {
        Example {
            id: None,
            schema: schema.into(),
            properties: serde_json::from_value(props).unwrap(),
        }
    }

    #[test]
    fn query_entities_become_index_queries() {
        let p = parse_example(
            "q1",
            example(
                "Person",
                serde_json::json!({
                    "name": ["Arkadii Rotenberg", "Ротенберг Аркадий"],
                    "birthDate": ["1951-12-15T00:00:00"],
                    "nationality": ["Russia", "not a country"],
                    "passportNumber": "P123",
                    "idNumber": ["X-9"],
                    "address": "Moscow",
                    "gender": "male"
                }),
            ),
        )
        .unwrap();
        assert_eq!(p.kind, Some(SubjectKind::Person));
        assert_eq!(p.names.len(), 2);
        assert_eq!(p.birth_date.unwrap().to_string(), "1951-12-15");
        assert_eq!(p.country.as_ref().unwrap().as_str(), "RU");
        assert_eq!(p.echo.properties["nationality"], vec!["ru"]);
        assert_eq!(p.echo.properties["address"], vec!["Moscow"]);
        // The address is matched too: every index query carries it.
        assert!(
            p.queries(10, 0.7)
                .iter()
                .all(|q| q.address.as_deref() == Some("Moscow"))
        );
        assert!(!p.echo.properties.contains_key("gender"));
        // two names with the first identifier, then the first name with the second
        let qs = p.queries(5, 0.8);
        assert_eq!(qs.len(), 3);
        assert_eq!(qs[2].identifier.as_ref().unwrap().kind, "passport");
        assert_eq!(qs[0].identifier.as_ref().unwrap().kind, "national_id");
    }

    #[test]
    fn name_parts_compose_a_name_and_bad_queries_name_their_field() {
        let p = parse_example(
            "k",
            example(
                "Person",
                serde_json::json!({"firstName": "Ana", "lastName": "Pérez"}),
            ),
        )
        .unwrap();
        assert_eq!(p.names, vec!["Ana Pérez"]);
        let e =
            parse_example("k", example("Address", serde_json::json!({"name": "x"}))).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("queries.k.schema"));
        let e = parse_example(
            "k",
            example("Person", serde_json::json!({"birthDate": "1970"})),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("queries.k.properties.name"));
        let e = parse_example(
            "k",
            example("Person", serde_json::json!({"name": [{"a": 1}]})),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("queries.k.properties.name"));
        let many: Vec<String> = (0..=MAX_NAMES).map(|i| format!("Name {i}")).collect();
        let e =
            parse_example("k", example("Person", serde_json::json!({"alias": many}))).unwrap_err();
        assert!(e.message.contains("at most"), "{}", e.message);
        let long = "x".repeat(MAX_QUERY_CHARS + 1);
        assert!(parse_example("k", example("Person", serde_json::json!({"name": long}))).is_err());
    }

    #[test]
    fn every_feature_a_result_can_name_is_documented() {
        use wlnode_screen::score::AdjustmentKind as K;
        let docs = feature_docs();
        assert!(docs.contains_key("name_similarity"));
        for k in [
            K::MissingTokens,
            K::BirthDateAgrees,
            K::BirthDateConflict,
            K::CountryAgrees,
            K::CountryConflict,
            K::IdentifierMatch,
            K::IdentifierConflict,
        ] {
            let name = serde_json::to_value(k).unwrap();
            assert!(docs.contains_key(name.as_str().unwrap()), "{name}");
        }
    }

    #[test]
    fn schemata_follow_ftm_inheritance() {
        assert!(is_a("Company", "Organization"));
        assert!(is_a("Company", "Asset"));
        assert!(is_a("Vessel", "Asset"));
        assert!(!is_a("Vessel", "LegalEntity"));
        assert!(!is_a("Person", "Asset"));
        assert!(schema_excluded("Vessel", &["Thing".to_owned()]));
        assert!(!schema_excluded("Person", &["Organization".to_owned()]));
        assert_eq!(kind_of_schema("PublicBody"), None);
        assert_eq!(kind_of_schema("Asset"), Some(None));
    }

    #[test]
    fn dates_read_as_yente_clients_write_them() {
        assert_eq!(query_date("1975-04-21").unwrap().to_string(), "1975-04-21");
        assert_eq!(query_date("1975-04").unwrap().to_string(), "1975-04");
        assert_eq!(query_date("1975").unwrap().to_string(), "1975");
        assert_eq!(
            query_date("1975-04-21T10:00:00Z").unwrap().to_string(),
            "1975-04-21"
        );
        assert!(query_date("yesterday").is_none());
        assert!(query_date("").is_none());
        assert!(query_date("19").is_none());
        assert!(query_date("é").is_none());
        // a multi-byte character where a prefix would end: the shorter prefixes still
        // read
        assert_eq!(query_date("1975-04-2é").unwrap().to_string(), "1975-04");
    }
}
