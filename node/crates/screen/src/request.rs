//! The screening request and batch shapes that the API takes and the CLI sends: one
//! party as JSON or a query string, many as a JSON list or a CSV file. Every field is
//! checked before the index is touched, and every error names its field (and, in a
//! batch, its row).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, EntryId, Identifier, InvalidValue, Reason, SubjectKind,
};
use wlnode_crypto::time::PartialDate;

use crate::{DEFAULT_LIMIT, DEFAULT_MIN_SCORE, Match, Query, QueryError};

/// Most parties in one `POST /v1/screen/batch` request.
pub const MAX_BATCH: usize = 10_000;

/// Why a screening request could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The query was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The index is still being built at node start.
    #[error("the screening index is still being built ({entries} entries so far); retry shortly")]
    Building {
        /// Entries indexed so far.
        entries: usize,
    },
}

/// A screening request as the API takes it (query string or JSON body) and the CLI
/// sends it. Every field but `name` is optional.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenRequest {
    /// The name to screen (1 to 512 characters).
    #[serde(alias = "q")]
    pub name: String,
    /// `person`, `organization` or `vessel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// ISO country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Birth or incorporation date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "birth_date")]
    pub dob: Option<String>,
    /// An identifier, `TYPE:VALUE`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "identifier")]
    pub id: Option<String>,
    /// An address (at most 512 characters): raises entries with an address that holds
    /// most of its words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Most results (1 to 1000, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Least score returned (0 to 1, default 0.80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f64>,
    /// Also return withdrawn entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_withdrawn: Option<bool>,
    /// The caller's reference (a shipment or licence id), kept in the case log.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Only entries of this origin agency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Only entries listed for this reason (`denial`, `diversion-risk`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Only entries with this control-list category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Leave these entries out (entry ids; at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
}

fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl ScreenRequest {
    /// Checks the fields and builds the engine query. Errors name the field.
    pub fn to_query(&self) -> Result<Query, InvalidValue> {
        let mut q = Query::new(self.name.clone());
        if let Some(k) = blank(&self.kind) {
            q.kind = Some(k.to_ascii_lowercase().parse::<SubjectKind>().map_err(|_| {
                InvalidValue::new(
                    "kind",
                    format!("{k:?} is not person, organization or vessel"),
                )
            })?);
        }
        if let Some(c) = blank(&self.country) {
            q.country = Some(
                CountryCode::new(c.to_ascii_uppercase())
                    .map_err(|e| InvalidValue::new("country", e.message))?,
            );
        }
        if let Some(d) = blank(&self.dob) {
            q.birth_date =
                Some(PartialDate::parse(d).map_err(|e| InvalidValue::new("dob", e.to_string()))?);
        }
        if let Some(i) = blank(&self.id) {
            q.identifier = Some(
                Identifier::parse_canonical(i)
                    .map_err(|e| InvalidValue::new("id", format!("{i:?}: {}", e.message)))?,
            );
        }
        if let Some(a) = blank(&self.address) {
            q.address = Some(a.to_owned());
        }
        if let Some(o) = blank(&self.origin) {
            q.filter.origin = Some(
                AgencyCode::new(o.to_ascii_uppercase())
                    .map_err(|e| InvalidValue::new("origin", e.message))?,
            );
        }
        if let Some(r) = blank(&self.reason) {
            q.filter.reason = Some(
                r.to_ascii_lowercase()
                    .parse::<Reason>()
                    .map_err(|e| InvalidValue::new("reason", e.message))?,
            );
        }
        if let Some(c) = blank(&self.category) {
            q.filter.category = Some(
                Category::new(c.to_ascii_uppercase())
                    .map_err(|e| InvalidValue::new("category", e.message))?,
            );
        }
        if let Some(list) = &self.exclude {
            if list.len() > crate::MAX_EXCLUDE {
                return Err(InvalidValue::new(
                    "exclude",
                    format!(
                        "{} entries; at most {} may be excluded",
                        list.len(),
                        crate::MAX_EXCLUDE
                    ),
                ));
            }
            for (i, id) in list.iter().enumerate() {
                q.filter
                    .exclude
                    .insert(EntryId::from_hex(id.trim()).map_err(|_| {
                        InvalidValue::new(
                            format!("exclude[{i}]"),
                            format!("{id:?} is not an entry id (32 hex characters)"),
                        )
                    })?);
            }
        }
        q.limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        q.min_score = self.min_score.unwrap_or(DEFAULT_MIN_SCORE);
        q.include_withdrawn = self.include_withdrawn.unwrap_or(false);
        check_query(&q)?;
        Ok(q)
    }
}

/// The checks the engine makes before searching, as a field error (so that a batch can
/// report a bad row without touching the index).
pub fn check_query(q: &Query) -> Result<(), InvalidValue> {
    let field = |e: QueryError| {
        let f = match e {
            QueryError::InvalidLimit { .. } => "limit",
            QueryError::InvalidMinScore(_) => "min_score",
            QueryError::InvalidIdentifier => "id",
            QueryError::AddressTooLong { .. } => "address",
            _ => "name",
        };
        InvalidValue::new(f, e.to_string())
    };
    if q.name.trim().is_empty() {
        return Err(field(QueryError::EmptyName));
    }
    let chars = q.name.chars().count();
    if chars > crate::MAX_QUERY_CHARS {
        return Err(field(QueryError::NameTooLong {
            chars,
            max: crate::MAX_QUERY_CHARS,
        }));
    }
    if let Some(a) = &q.address {
        let chars = a.chars().count();
        if chars > crate::MAX_QUERY_CHARS {
            return Err(field(QueryError::AddressTooLong {
                chars,
                max: crate::MAX_QUERY_CHARS,
            }));
        }
    }
    if q.limit == 0 || q.limit > crate::MAX_LIMIT {
        return Err(field(QueryError::InvalidLimit {
            limit: q.limit,
            max: crate::MAX_LIMIT,
        }));
    }
    if !(0.0..=1.0).contains(&q.min_score) {
        return Err(field(QueryError::InvalidMinScore(q.min_score)));
    }
    Ok(())
}

/// A screening answer.
#[derive(Clone, Debug, Serialize)]
pub struct ScreenResponse {
    /// The name screened.
    pub query: String,
    /// Results, best first.
    pub results: Vec<Match>,
    /// Entries in the index (withdrawn included).
    pub index_entries: usize,
    /// Search time in milliseconds.
    pub took_ms: f64,
}

/// One party of a batch: its row number and request.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// 1-based data row (for CSV: the line number in the file, header = line 1).
    pub row: usize,
    /// The party's own reference (CSV column `ref`), if any.
    pub reference: Option<String>,
    /// The request.
    pub request: ScreenRequest,
}

/// A batch row that could not be screened.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BatchRowError {
    /// 1-based data row (CSV: line number in the file).
    pub row: usize,
    /// The offending field, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Columns a batch CSV may have (`name` is required; others optional, any order).
pub const CSV_COLUMNS: [&str; 7] = ["ref", "name", "kind", "country", "dob", "id", "address"];

/// Parses a batch CSV: a header row naming columns from [`CSV_COLUMNS`] (`q` is
/// accepted for `name`, `birth_date` for `dob`, `identifier` for `id`), then one party
/// per row. Malformed rows are returned as errors with their line numbers; the rest
/// parse. An unusable header is one error for line 1.
pub fn parse_csv(body: &[u8]) -> (Vec<BatchRow>, Vec<BatchRowError>) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let header_err = |message: String| BatchRowError {
        row: 1,
        field: None,
        message,
    };
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return (
                rows,
                vec![header_err(format!("cannot read the header row: {e}"))],
            );
        }
    };
    let col = |names: &[&str]| {
        headers.iter().position(|h| {
            names
                .iter()
                .any(|n| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(n))
        })
    };
    let name_col = col(&["name", "q"]);
    let ref_col = col(&["ref", "reference", "party_id"]);
    let kind_col = col(&["kind"]);
    let country_col = col(&["country"]);
    let dob_col = col(&["dob", "birth_date"]);
    let id_col = col(&["id", "identifier"]);
    let address_col = col(&["address"]);
    let Some(name_col) = name_col else {
        return (
            rows,
            vec![header_err(format!(
                "the header row has no `name` column (columns: {})",
                CSV_COLUMNS.join(", ")
            ))],
        );
    };
    let width = headers.len();
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let row = e
                    .position()
                    .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
                errors.push(BatchRowError {
                    row,
                    field: None,
                    message: format!("malformed CSV: {e}"),
                });
                continue;
            }
        };
        let row = rec
            .position()
            .map_or(0, |p| usize::try_from(p.line()).unwrap_or(0));
        if rec.len() != width {
            errors.push(BatchRowError {
                row,
                field: None,
                message: format!(
                    "expected {width} fields as in the header, found {}",
                    rec.len()
                ),
            });
            continue;
        }
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let request = ScreenRequest {
            name: get(Some(name_col)).unwrap_or_default(),
            kind: get(kind_col),
            country: get(country_col),
            dob: get(dob_col),
            id: get(id_col),
            address: get(address_col),
            ..ScreenRequest::default()
        };
        rows.push(BatchRow {
            row,
            reference: get(ref_col),
            request,
        });
    }
    (rows, errors)
}

/// One screened party of a batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResult {
    /// Row number as in [`BatchRow::row`].
    pub row: usize,
    /// The party's reference, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The name screened.
    pub name: String,
    /// Results, best first.
    pub results: Vec<serde_json::Value>,
}

/// A batch answer: one result per good row, one error per bad row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Screened parties, in row order.
    pub results: Vec<BatchResult>,
    /// Rows that could not be screened, in row order.
    pub errors: Vec<BatchRowError>,
    /// Parties screened.
    pub screened: usize,
    /// Rows refused.
    pub failed: usize,
}

/// Screens checked rows with `search`; rows whose request is invalid become errors.
/// Blocking when `search` is.
pub fn screen_rows(
    mut search: impl FnMut(&Query) -> Result<Vec<Match>, ScreenError>,
    rows: Vec<BatchRow>,
    defaults: &ScreenRequest,
    mut errors: Vec<BatchRowError>,
    mut observe: impl FnMut(Duration),
) -> Result<BatchResponse, ScreenError> {
    let mut results = Vec::with_capacity(rows.len());
    for r in rows {
        let mut req = r.request;
        req.limit = req.limit.or(defaults.limit);
        req.min_score = req.min_score.or(defaults.min_score);
        req.include_withdrawn = req.include_withdrawn.or(defaults.include_withdrawn);
        req.origin = req.origin.or_else(|| defaults.origin.clone());
        req.reason = req.reason.or_else(|| defaults.reason.clone());
        req.category = req.category.or_else(|| defaults.category.clone());
        req.exclude = req.exclude.or_else(|| defaults.exclude.clone());
        let q = match req.to_query() {
            Ok(q) => q,
            Err(e) => {
                errors.push(BatchRowError {
                    row: r.row,
                    field: (!e.field.is_empty()).then(|| e.field.clone()),
                    message: e.to_string(),
                });
                continue;
            }
        };
        let t = Instant::now();
        match search(&q) {
            Ok(found) => {
                observe(t.elapsed());
                results.push(BatchResult {
                    row: r.row,
                    reference: r.reference,
                    name: q.name,
                    results: found
                        .iter()
                        .filter_map(|m| serde_json::to_value(m).ok())
                        .collect(),
                });
            }
            Err(ScreenError::Query(e)) => errors.push(BatchRowError {
                row: r.row,
                field: Some("name".into()),
                message: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    errors.sort_by_key(|e| e.row);
    Ok(BatchResponse {
        screened: results.len(),
        failed: errors.len(),
        results,
        errors,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn csv_reports_bad_rows_by_line_and_keeps_the_rest() {
        let body = b"ref,name,country,dob\nP1,Acme Trading,AE,\nP2,too,many,fields,here\nP3,Ivan Petrov,RU,1970\n";
        let (rows, errors) = parse_csv(body);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].row, 2);
        assert_eq!(rows[1].row, 4);
        assert_eq!(rows[1].request.dob.as_deref(), Some("1970"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].row, 3);
    }

    #[test]
    fn csv_address_column_reaches_the_request() {
        let (rows, errors) =
            parse_csv(b"name,address\nAcme Trading,\"Plot S10412, Jebel Ali Free Zone\"\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            rows[0].request.address.as_deref(),
            Some("Plot S10412, Jebel Ali Free Zone")
        );
    }

    #[test]
    fn csv_without_a_name_column_is_one_error() {
        let (rows, errors) = parse_csv(b"who,country\nx,AE\n");
        assert!(rows.is_empty());
        assert_eq!(errors[0].row, 1);
        assert!(errors[0].message.contains("name"));
    }

    #[test]
    fn request_errors_name_the_field() {
        let r = |f: fn(&mut ScreenRequest)| {
            let mut r = ScreenRequest {
                name: "Acme".into(),
                ..ScreenRequest::default()
            };
            f(&mut r);
            r.to_query().map(|_| ()).map_err(|e| e.field)
        };
        assert_eq!(r(|_| {}), Ok(()));
        assert_eq!(r(|r| r.name = "  ".into()), Err("name".into()));
        assert_eq!(r(|r| r.name = "x".repeat(513)), Err("name".into()));
        assert_eq!(r(|r| r.kind = Some("ship".into())), Err("kind".into()));
        assert_eq!(
            r(|r| r.country = Some("Ruritania".into())),
            Err("country".into())
        );
        assert_eq!(r(|r| r.dob = Some("19x0".into())), Err("dob".into()));
        assert_eq!(r(|r| r.id = Some("passport".into())), Err("id".into()));
        assert_eq!(r(|r| r.limit = Some(0)), Err("limit".into()));
        assert_eq!(r(|r| r.min_score = Some(1.5)), Err("min_score".into()));
        assert_eq!(
            r(|r| r.address = Some("y".repeat(513))),
            Err("address".into())
        );
        assert_eq!(r(|r| r.address = Some("Jebel Ali, Dubai".into())), Ok(()));
        assert_eq!(r(|r| r.kind = Some("Person".into())), Ok(()));
        assert_eq!(r(|r| r.country = Some("ae".into())), Ok(()));
    }
}
