//! JSON lines of entry JSON, so that scripts can feed entries in the API's own shape and
//! an `export` of a node re-imports: each line is an `EntryDraft` plus a `source_id`
//! string, and the keys only an export carries (`entry_id`, `origin`, `version`,
//! `status`, `record_id`, `issued_at`, `review_due`, `disputed`, `withheld`,
//! `updated_at`) are accepted and ignored, except that `entry_id` stands in for a
//! missing `source_id`.
//!
//! Keys the entry JSON does not know fail the line, naming the key's path. A line
//! without `reason`, `categories` or `distribution` takes them from the defaults.

use crate::normalize::RowNotes;
use std::collections::BTreeSet;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;
use wlnode_crypto::model::{
    Category, Distribution, EntryDraft, Identifier, Reason, Subject, SubjectKind,
};
use wlnode_crypto::time::Date;

use super::countries::country_code;
use super::normalize;
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

/// One line as written: the entry JSON with lenient countries, dates and identifier
/// types, optional reason/categories/distribution, a source id and the export-only keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default, rename = "source_id")]
    _source_id: Option<String>,
    subject: LineSubject,
    #[serde(default)]
    reason: Option<Reason>,
    #[serde(default)]
    categories: Option<BTreeSet<Category>>,
    #[serde(default)]
    legal_basis: Option<String>,
    #[serde(default)]
    items: Option<String>,
    #[serde(default)]
    remarks: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    distribution: Option<Distribution>,
    #[serde(default)]
    review_by: Option<Date>,
    #[serde(default, deserialize_with = "wlnode_crypto::model::on_hit_field")]
    on_hit: Option<wlnode_crypto::model::OnHit>,
    #[serde(default, rename = "entry_id")]
    _entry_id: Option<String>,
    #[serde(default, rename = "origin")]
    _origin: Option<IgnoredAny>,
    #[serde(default, rename = "version")]
    _version: Option<IgnoredAny>,
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
    #[serde(default, rename = "record_id")]
    _record_id: Option<IgnoredAny>,
    #[serde(default, rename = "issued_at")]
    _issued_at: Option<IgnoredAny>,
    #[serde(default, rename = "review_due")]
    _review_due: Option<IgnoredAny>,
    #[serde(default, rename = "disputed")]
    _disputed: Option<IgnoredAny>,
    #[serde(default, rename = "withheld")]
    _withheld: Option<IgnoredAny>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineSubject {
    kind: SubjectKind,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    identifiers: Vec<Identifier>,
    #[serde(default)]
    birth_date: Option<String>,
    #[serde(default)]
    nationality: Option<String>,
}

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        read_line(line, Location::Line(i + 1), defaults, &mut out);
    }
    Ok(out.finish(super::source_list(defaults, Format::Jsonl)))
}

/// The trimmed, non-empty string at `key` of a JSON object.
pub(crate) fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn read_line(line: &str, location: Location, defaults: &ImportDefaults, out: &mut Collector) {
    let value: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            out.error(location, None, format!("not a JSON object: {e}"));
            return;
        }
    };
    if !value.is_object() {
        out.error(location, None, "not a JSON object");
        return;
    }
    let source_id = str_at(&value, "source_id")
        .or_else(|| str_at(&value, "entry_id"))
        .map(str::to_owned);
    let parsed: Line = match serde_path_to_error::deserialize(value) {
        Ok(l) => l,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = if path == "." {
                inner.to_string()
            } else {
                format!("{path}: {inner}")
            };
            out.error(location, source_id.as_deref(), message);
            return;
        }
    };
    let Some(source_id) = source_id else {
        out.error(
            location,
            None,
            "source_id: missing, and no entry_id to stand in",
        );
        return;
    };
    out.row(location, source_id, |notes| draft(parsed, defaults, notes));
}

fn draft(
    line: Line,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let s = line.subject;
    let name = normalize::name(&s.name);
    let aliases = normalize::aliases(&name, &s.aliases);
    // Values the entry's fields cannot carry, kept in its remarks as written.
    let mut kept = Vec::new();
    let mut country_of = |field: &str, v: Option<String>| {
        let v = v?;
        let code = country_code(&v);
        if code.is_none() && !v.trim().is_empty() {
            notes.push(format!(
                "subject.{field}: {v:?} is not a country code or a known country name; kept in remarks"
            ));
            kept.push(format!("subject.{field} as written: {}", v.trim()));
            notes.kept.push(if field == "nationality" {
                "nationality"
            } else {
                "country"
            });
        }
        code
    };
    let country = country_of("country", s.country);
    let nationality = country_of("nationality", s.nationality);
    let birth_date = match s.birth_date.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => {
            let (d, approximate) = normalize::read_list_date(v).ok_or_else(|| {
                format!(
                    "subject.birth_date: {v:?} is not a date such as 1970, 1970-01 or 1970-01-31"
                )
            })?;
            if approximate {
                kept.push(format!("subject.birth_date as written: {v}"));
                notes.kept.push("birth_date");
            }
            Some(d)
        }
    };
    let mut identifiers = Vec::new();
    for id in &s.identifiers {
        normalize::push_identifier(
            &mut identifiers,
            &normalize::own_id_type(&id.kind),
            &id.value,
        );
    }
    let reason = line
        .reason
        .or(defaults.reason)
        .ok_or("reason: missing, and no default reason was given")?;
    let text = |v: Option<String>| v.as_deref().and_then(normalize::text);
    Ok(EntryDraft {
        subject: Subject {
            kind: s.kind,
            name,
            aliases,
            country,
            addresses: s
                .addresses
                .iter()
                .filter_map(|a| normalize::text(a))
                .collect(),
            identifiers,
            birth_date,
            nationality,
        },
        reason,
        categories: line
            .categories
            .unwrap_or_else(|| defaults.categories.clone()),
        legal_basis: text(line.legal_basis),
        items: text(line.items),
        remarks: normalize::remarks_with(text(line.remarks), kept, notes),
        contact: text(line.contact),
        distribution: line
            .distribution
            .unwrap_or_else(|| defaults.distribution.clone()),
        review_by: line.review_by,
        on_hit: line.on_hit,
    })
}
