//! OpenSanctions FollowTheMoney entities (JSON lines), so that an agency can load any
//! OpenSanctions dataset export without writing a converter.
//!
//! Each line is `{"id", "schema", "properties": {prop: [values]}, "datasets": [...]}`.
//! `Person`, `Organization`, `Company`, `LegalEntity`, `PublicBody` and `Vessel`
//! entities become entries; every other schema (`Address`, `Sanction`, `Ownership`, ...)
//! and entities marked `"target": false` (relatives, owners and other non-listed
//! parties of the export) are skipped and counted in [`Parsed::skipped`]. Keys and
//! properties this importer does not use are ignored, as FtM has many.
//!
//! The source list is the caller's, else the `datasets` value when every entry of the
//! file has the same one (e.g. `us_ofac_sdn`; several datasets are joined with `+`),
//! else `ftm`.

use crate::normalize::RowNotes;
use serde_json::{Map, Value};
use wlnode_crypto::model::{CountryCode, EntryDraft, Subject, SubjectKind};

use super::jsonl::str_at;
use super::normalize;
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

/// Identifier properties and the types they map to; `idNumber` is handled apart.
const IDENTIFIER_PROPS: &[(&str, &str)] = &[
    ("passportNumber", "passport"),
    ("registrationNumber", "registration"),
    ("ogrnCode", "registration"),
    ("imoNumber", "imo"),
    ("leiCode", "lei"),
    ("taxNumber", "tax_id"),
    ("innCode", "tax_id"),
    ("vatCode", "tax_id"),
];

/// The datasets seen on the file's entries so far.
enum Datasets {
    None,
    One(String),
    Mixed,
}

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    let mut datasets = Datasets::None;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let location = Location::Line(i + 1);
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.error(location, None, format!("not a JSON object: {e}"));
                continue;
            }
        };
        let Some(entity) = value.as_object() else {
            out.error(location, None, "not a JSON object");
            continue;
        };
        let id = str_at(&value, "id").map(str::to_owned);
        let Some(schema) = entity.get("schema").and_then(Value::as_str) else {
            out.error(location, id.as_deref(), "schema: missing");
            continue;
        };
        let Some(kind) = subject_kind(schema) else {
            out.skipped += 1;
            continue;
        };
        if entity.get("target") == Some(&Value::Bool(false)) {
            out.skipped += 1;
            continue;
        }
        let Some(id) = id else {
            out.error(location, None, "id: missing");
            continue;
        };
        note_datasets(&mut datasets, entity);
        let empty = Map::new();
        out.row(location, id, |notes| {
            let props = match entity.get("properties") {
                None => &empty,
                Some(Value::Object(p)) => p,
                Some(_) => return Err("properties: expected a JSON object".to_owned()),
            };
            draft(kind, props, defaults, notes)
        });
    }
    let list = match (&defaults.source_list, datasets) {
        (Some(list), _) => list.clone(),
        (None, Datasets::One(d)) => d,
        (None, _) => Format::Ftm.default_source_list().to_owned(),
    };
    Ok(out.finish(list))
}

fn subject_kind(schema: &str) -> Option<SubjectKind> {
    match schema {
        "Person" => Some(SubjectKind::Person),
        "Organization" | "Company" | "LegalEntity" | "PublicBody" => {
            Some(SubjectKind::Organization)
        }
        "Vessel" => Some(SubjectKind::Vessel),
        _ => None,
    }
}

fn note_datasets(seen: &mut Datasets, entity: &Map<String, Value>) {
    let mut names: Vec<&str> = match entity.get("datasets") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    };
    names.sort_unstable();
    names.dedup();
    let value = names.join("+");
    *seen = match std::mem::replace(seen, Datasets::Mixed) {
        _ if value.is_empty() => Datasets::Mixed,
        Datasets::None => Datasets::One(value),
        Datasets::One(v) if v == value => Datasets::One(v),
        _ => Datasets::Mixed,
    };
}

/// The string values of property `key` (FtM gives lists of strings; a bare string is
/// taken as a list of one, anything else is ignored).
fn values<'a>(props: &'a Map<String, Value>, key: &str) -> Vec<&'a str> {
    match props.get(key) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

/// The first value of the properties `keys` (in that order) that is a country; what
/// the one field cannot carry goes to `kept` (see [`crate::un_xml::first_country`]).
fn first_country(
    props: &Map<String, Value>,
    keys: &[&str],
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<CountryCode> {
    let all: Vec<&str> = keys.iter().flat_map(|k| values(props, k)).collect();
    crate::un_xml::first_country(&all, label, field, kept, notes)
}

fn draft(
    kind: SubjectKind,
    props: &Map<String, Value>,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let names = values(props, "name");
    let mut names = names.iter().map(|n| normalize::name(n));
    let name = names
        .find(|n| !n.is_empty())
        .ok_or("properties.name: missing")?;
    let aliases = normalize::aliases(
        &name,
        names
            .chain(
                ["alias", "weakAlias", "previousName"]
                    .iter()
                    .flat_map(|k| values(props, k))
                    .map(str::to_owned),
            )
            .collect::<Vec<_>>(),
    );
    // What the entry's fields cannot carry, kept in its remarks as the source wrote it.
    let mut kept = Vec::new();
    let nationality = match kind {
        SubjectKind::Person => first_country(
            props,
            &["nationality", "citizenship"],
            "Nationality",
            "properties.nationality",
            &mut kept,
            notes,
        ),
        _ => None,
    };
    // Nationalities were kept above already: the country reads them without keeping.
    let country = first_country(
        props,
        &["country", "jurisdiction", "flag"],
        "Country",
        "properties.country",
        &mut kept,
        notes,
    )
    .or_else(|| nationality.clone());
    let date_prop = match kind {
        SubjectKind::Person => "birthDate",
        _ => "incorporationDate",
    };
    let dates = values(props, date_prop);
    let label = match kind {
        SubjectKind::Person => "Date of birth",
        _ => "Date of incorporation",
    };
    let birth_date = normalize::pick_date(
        &dates,
        label,
        &format!("properties.{date_prop}"),
        &mut kept,
        notes,
    );
    let mut identifiers = Vec::new();
    for (prop, id_type) in IDENTIFIER_PROPS {
        for v in values(props, prop) {
            normalize::push_identifier(&mut identifiers, id_type, v);
        }
    }
    let id_number_type = match kind {
        SubjectKind::Person => "national_id",
        SubjectKind::Organization => "registration",
        SubjectKind::Vessel => "other",
    };
    for v in values(props, "idNumber") {
        normalize::push_identifier(&mut identifiers, id_number_type, v);
    }
    let remarks = normalize::text(&values(props, "notes").join("\n\n"))
        .map(|r| normalize::cut_long(r, "properties.notes", notes));
    let remarks = normalize::remarks_with(remarks, kept, notes);
    let subject = Subject {
        kind,
        name,
        aliases,
        country,
        addresses: values(props, "address")
            .into_iter()
            .filter_map(normalize::text)
            .collect(),
        identifiers,
        birth_date,
        nationality,
    };
    Ok(normalize::list_draft(
        subject, None, remarks, defaults, notes,
    ))
}
