//! The UN Security Council consolidated list (`CONSOLIDATED_LIST` XML), so that an
//! agency can mirror UN designations into its node without retyping them.
//!
//! Mapping, per `INDIVIDUALS/INDIVIDUAL` and `ENTITIES/ENTITY` (numbered together in
//! document order):
//!
//! - source id: `DATAID`, else `REFERENCE_NUMBER`;
//! - name: `FIRST_NAME SECOND_NAME THIRD_NAME FOURTH_NAME` (entities: `FIRST_NAME`);
//! - aliases: `INDIVIDUAL_ALIAS/ALIAS_NAME`, `ENTITY_ALIAS/ALIAS_NAME`, and
//!   `NAME_ORIGINAL_SCRIPT`;
//! - addresses: `INDIVIDUAL_ADDRESS` / `ENTITY_ADDRESS` as `STREET, CITY,
//!   STATE_PROVINCE, ZIP_CODE, COUNTRY`;
//! - identifiers: `INDIVIDUAL_DOCUMENT` (`TYPE_OF_DOCUMENT`, `NUMBER`) as `passport`,
//!   `national_id` or `other`;
//! - birth date: the first `INDIVIDUAL_DATE_OF_BIRTH` with a readable `DATE` or `YEAR`;
//! - nationality: the first `NATIONALITY/VALUE` that maps to a country code;
//! - country: the nationality, else the first address country that maps;
//! - remarks: `COMMENTS1`; legal basis: `UN Security Council <UN_LIST_TYPE> list,
//!   <REFERENCE_NUMBER>`; reason: `sanctions` unless the defaults say otherwise.

use crate::normalize::RowNotes;
use wlnode_crypto::model::{CountryCode, EntryDraft, Subject, SubjectKind};

use super::countries::country_lookup;
use super::normalize;
use super::xml::{Element, for_each_record};
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    for_each_record(
        text,
        Format::UnXml,
        "CONSOLIDATED_LIST",
        &["INDIVIDUAL", "ENTITY"],
        |n, record| read_record(n, &record, defaults, &mut out),
    )?;
    Ok(out.finish(super::source_list(defaults, Format::UnXml)))
}

fn read_record(n: usize, record: &Element, defaults: &ImportDefaults, out: &mut Collector) {
    let location = Location::Record(n);
    let Some(source_id) = record
        .text_of("DATAID")
        .or_else(|| record.text_of("REFERENCE_NUMBER"))
        .map(str::to_owned)
    else {
        out.error(
            location,
            None,
            format!("{}: neither DATAID nor REFERENCE_NUMBER", record.name),
        );
        return;
    };
    out.row(location, source_id, |notes| draft(record, defaults, notes));
}

fn draft(
    record: &Element,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let person = record.name == "INDIVIDUAL";
    let (kind, prefix) = if person {
        (SubjectKind::Person, "INDIVIDUAL")
    } else {
        (SubjectKind::Organization, "ENTITY")
    };
    let name = if person {
        normalize::join_names(
            ["FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME"]
                .iter()
                .filter_map(|p| record.text_of(p)),
        )
    } else {
        normalize::name(record.text_of("FIRST_NAME").unwrap_or_default())
    };
    if name.is_empty() {
        return Err(if person {
            "FIRST_NAME to FOURTH_NAME: all empty, so the record has no name".to_owned()
        } else {
            "FIRST_NAME: missing, so the record has no name".to_owned()
        });
    }
    let alias_tag = format!("{prefix}_ALIAS");
    let aliases = normalize::aliases(
        &name,
        record
            .all("NAME_ORIGINAL_SCRIPT")
            .chain(record.all(&alias_tag).filter_map(|a| a.child("ALIAS_NAME")))
            .filter_map(Element::value),
    );
    let address_tag = format!("{prefix}_ADDRESS");
    let mut addresses = Vec::new();
    let mut seen_addresses = std::collections::HashSet::new();
    let mut address_countries = Vec::new();
    for a in record.all(&address_tag) {
        let parts: Vec<&str> = ["STREET", "CITY", "STATE_PROVINCE", "ZIP_CODE", "COUNTRY"]
            .iter()
            .filter_map(|p| a.text_of(p))
            .collect();
        if let Some(address) = normalize::text(&parts.join(", ")) {
            normalize::push_new(&mut addresses, &mut seen_addresses, address);
        }
        address_countries.extend(a.text_of("COUNTRY"));
    }
    let mut identifiers = Vec::new();
    for d in record.all("INDIVIDUAL_DOCUMENT") {
        let Some(number) = d.text_of("NUMBER") else {
            continue;
        };
        let doc_type = d.text_of("TYPE_OF_DOCUMENT").unwrap_or_default();
        let id_type = match normalize::list_id_type(doc_type) {
            t @ ("passport" | "national_id") => t,
            _ => "other",
        };
        normalize::push_identifier(&mut identifiers, id_type, number);
    }
    // What the entry's fields cannot carry, kept in its remarks as the list wrote it.
    let mut kept = Vec::new();
    let birth_date = birth_date(record, &mut kept, notes);
    let nationalities = record.leaves("NATIONALITY", "VALUE");
    let nationality = first_country(
        &nationalities,
        "Nationality",
        "NATIONALITY",
        &mut kept,
        notes,
    );
    let country = nationality.clone().or_else(|| {
        first_country(
            &address_countries,
            "Address country",
            &format!("{address_tag}/COUNTRY"),
            &mut kept,
            notes,
        )
    });
    let list_type = record.text_of("UN_LIST_TYPE");
    let reference = record.text_of("REFERENCE_NUMBER");
    let legal_basis = match (list_type, reference) {
        (None, None) => None,
        (Some(l), None) => Some(format!("UN Security Council {l} list")),
        (None, Some(r)) => Some(format!("UN Security Council list, {r}")),
        (Some(l), Some(r)) => Some(format!("UN Security Council {l} list, {r}")),
    }
    .map(|l| normalize::cut_long(l, "legal_basis", notes));
    let remarks = record
        .text_of("COMMENTS1")
        .and_then(normalize::text)
        .map(|r| normalize::cut_long(r, "COMMENTS1", notes));
    let remarks = normalize::remarks_with(remarks, kept, notes);
    let subject = Subject {
        kind,
        name,
        aliases,
        country,
        addresses,
        identifiers,
        birth_date,
        nationality,
    };
    Ok(normalize::list_draft(
        subject,
        legal_basis,
        remarks,
        defaults,
        notes,
    ))
}

/// The dates of birth as the list writes them: `DATE`, `YEAR`, or (`TYPE_OF_DATE`
/// `BETWEEN`) `FROM_YEAR` and `TO_YEAR`, with `APPROXIMATELY` kept as "circa".
fn birth_date(
    record: &Element,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<wlnode_crypto::time::PartialDate> {
    let mut written = Vec::new();
    for d in record.all("INDIVIDUAL_DATE_OF_BIRTH") {
        let approximately = d
            .text_of("TYPE_OF_DATE")
            .is_some_and(|t| t.eq_ignore_ascii_case("APPROXIMATELY"));
        let value = match (d.text_of("DATE"), d.text_of("YEAR")) {
            (Some(v), _) | (None, Some(v)) => v.to_owned(),
            (None, None) => match (d.text_of("FROM_YEAR"), d.text_of("TO_YEAR")) {
                (Some(from), Some(to)) => format!("between {from} and {to}"),
                (Some(from), None) => format!("from {from}"),
                (None, Some(to)) => format!("until {to}"),
                (None, None) => continue,
            },
        };
        written.push(if approximately {
            format!("circa {value}")
        } else {
            value
        });
    }
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    normalize::pick_date(
        &written,
        "Date of birth",
        "INDIVIDUAL_DATE_OF_BIRTH",
        kept,
        notes,
    )
}

/// The first of `values` that maps to a country code. What the entry's one country
/// field cannot carry is kept, as the list wrote it, in `kept` (a line for the remarks,
/// headed `label`): every value when they do not all map to that code, and then a note
/// when none maps.
pub(crate) fn first_country(
    values: &[&str],
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<CountryCode> {
    let found: Vec<Option<(CountryCode, bool)>> =
        values.iter().map(|v| country_lookup(v)).collect();
    first_found(values, found, label, field, kept, notes)
}

/// [`first_country`] with the values already looked up by the caller (`found[i]` is
/// the code of `values[i]`, and whether the value says more than the code), for a list
/// that writes ISO codes beside its country names (the EU list).
pub(crate) fn first_found(
    values: &[&str],
    found: Vec<Option<(CountryCode, bool)>>,
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<CountryCode> {
    let qualified = found.iter().flatten().any(|(_, q)| *q);
    let codes: Vec<Option<CountryCode>> = found.into_iter().map(|f| f.map(|(c, _)| c)).collect();
    let code = codes.iter().flatten().next().cloned();
    let into = match label {
        "Nationality" | "Citizenship" => "nationality",
        _ => "country",
    };
    match &code {
        None if !values.is_empty() => {
            notes.push(format!(
                "{field}: none of {values:?} is a known country; kept in remarks"
            ));
            kept.push(format!("{label} as listed: {}", values.join("; ")));
            notes.kept.push(into);
        }
        Some(c) if qualified || codes.iter().any(|x| x.as_ref() != Some(c)) => {
            kept.push(format!("{label} as listed: {}", values.join("; ")));
            notes.kept.push(into);
        }
        _ => {}
    }
    code
}
