//! The EU consolidated list of persons, groups and entities subject to financial
//! sanctions (the Financial Sanctions Files "FSF" XML export), so that an agency can
//! mirror EU designations into its node without retyping them.
//!
//! Almost everything in this list is in attributes. Mapping, per `sanctionEntity`
//! (numbered in document order; only direct children of it are read):
//!
//! - source id: `logicalId`, else `euReferenceNumber`; kind: `subjectType` `code`
//!   `person` → person, `enterprise` → organization (else `classificationCode` `P` /
//!   `E`);
//! - name: the first `nameAlias` marked `strong="true"`, else the first one, as its
//!   `wholeName` or else `firstName middleName lastName`; aliases: every other
//!   `nameAlias`;
//! - addresses: `address` as `street, PO Box poBox, city, zipCode, region, place,
//!   countryDescription`;
//! - identifiers: `identification` (`identificationTypeCode`, `number`, else
//!   `latinNumber`): `passport` → `passport`; `id`, `nationcert`, `NRN` →
//!   `national_id`; `regnumber` → `registration`; `fiscalcode` → `tax_id`; `imo` →
//!   `imo`; the rest `other` with the type's description kept in the value;
//! - birth date: the first readable `birthdate`, from its `birthdate` attribute, else
//!   `year`, `monthOfYear`, `dayOfMonth`, else `yearRangeFrom` / `yearRangeTo` (a
//!   range: kept in the remarks); `circa="true"` makes it approximate, and a date in
//!   another `calendarType` than Gregorian is not read but kept;
//! - countries: `countryIso2Code` when it is a country code (the list writes `00` for
//!   none), else `countryDescription` through the country table; a description that
//!   says more than the code ("Iraq (in custody)") is kept in the remarks; `UNKNOWN`
//!   is no country. Nationality: the first `citizenship`; country: the nationality,
//!   else the first address country;
//! - legal basis: `EU financial sanctions:` with each `regulation`'s `numberTitle`,
//!   `programme` and `publicationUrl`, the `euReferenceNumber`, `unitedNationId` and
//!   `designationDate`;
//! - remarks: the `remark`s; then, as "details" no entry field carries, the
//!   `designationDetails`, each name's `function`, `title`, `gender` and remarks,
//!   places of birth, the issuing country and authority of identifications,
//!   `contactInfo` and the remarks under addresses, identifications, births and
//!   citizenships; reason: `sanctions` unless the defaults say otherwise.

use wlnode_crypto::model::{CountryCode, EntryDraft, Subject, SubjectKind};

use super::countries::country_lookup;
use super::normalize::{self, RowNotes};
use super::un_xml::first_found;
use super::xml::{Element, for_each_record};
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    for_each_record(
        text,
        Format::EuXml,
        "export",
        &["sanctionEntity"],
        |n, record| read_record(n, &record, defaults, &mut out),
    )?;
    Ok(out.finish(super::source_list(defaults, Format::EuXml)))
}

fn read_record(n: usize, record: &Element, defaults: &ImportDefaults, out: &mut Collector) {
    let location = Location::Record(n);
    let Some(source_id) = record
        .attr("logicalId")
        .or_else(|| record.attr("euReferenceNumber"))
        .map(str::to_owned)
    else {
        out.error(
            location,
            None,
            "sanctionEntity: neither logicalId nor euReferenceNumber",
        );
        return;
    };
    let kind = match subject_kind(record) {
        Ok(kind) => kind,
        Err(message) => {
            out.error(location, Some(&source_id), message);
            return;
        }
    };
    out.row(location, source_id, |notes| {
        draft(kind, record, defaults, notes)
    });
}

fn subject_kind(record: &Element) -> Result<SubjectKind, String> {
    let Some(subject) = record.child("subjectType") else {
        return Err("subjectType: missing".to_owned());
    };
    let code = subject.attr("code").map(str::to_lowercase);
    let class = subject.attr("classificationCode").map(str::to_uppercase);
    match (code.as_deref(), class.as_deref()) {
        (Some("person"), _) | (None, Some("P")) => Ok(SubjectKind::Person),
        (Some("enterprise"), _) | (None, Some("E")) => Ok(SubjectKind::Organization),
        (None, None) => Err("subjectType: neither code nor classificationCode".to_owned()),
        (Some(other), _) => Err(format!(
            "subjectType: code {other:?} is not person or enterprise"
        )),
        (None, Some(other)) => Err(format!(
            "subjectType: classificationCode {other:?} is not P or E"
        )),
    }
}

/// A `nameAlias` as one name: `wholeName`, else `firstName middleName lastName`.
fn alias_name(a: &Element) -> String {
    match a.attr("wholeName") {
        Some(whole) => normalize::name(whole),
        None => normalize::join_names(
            ["firstName", "middleName", "lastName"]
                .iter()
                .filter_map(|p| a.attr(p)),
        ),
    }
}

/// Whether an attribute says yes (`true`, `1`, `yes`, any case).
fn yes(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        ["true", "1", "yes"]
            .iter()
            .any(|y| v.eq_ignore_ascii_case(y))
    })
}

/// The trimmed, non-empty texts of the `remark` children of `e`.
fn remarks_of(e: &Element) -> Vec<&str> {
    e.all("remark").filter_map(Element::value).collect()
}

/// Adds `value` to `list` unless it is there already.
fn push_unique(list: &mut normalize::Unique, value: &str) {
    let value = normalize::name(value);
    if !value.is_empty() {
        list.push(value);
    }
}

fn draft(
    kind: SubjectKind,
    record: &Element,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let names: Vec<(String, bool)> = record
        .all("nameAlias")
        .map(|a| (alias_name(a), yes(a.attr("strong"))))
        .filter(|(n, _)| !n.is_empty())
        .collect();
    let Some(name) = names
        .iter()
        .find(|(_, strong)| *strong)
        .or_else(|| names.first())
        .map(|(n, _)| n.clone())
    else {
        return Err(
            "nameAlias: no wholeName, firstName or lastName, so the entry has no name".to_owned(),
        );
    };
    let aliases = normalize::aliases(&name, names.iter().map(|(n, _)| n.as_str()));

    // Lines for what no entry field carries, kept in the remarks.
    let mut details = Vec::new();
    if let Some(d) = record.attr("designationDetails") {
        details.push(format!("Designation details: {d}"));
    }
    let (mut functions, mut titles, mut genders, mut name_remarks) = (
        normalize::Unique::default(),
        normalize::Unique::default(),
        normalize::Unique::default(),
        normalize::Unique::default(),
    );
    for a in record.all("nameAlias") {
        for (list, value) in [
            (&mut functions, a.attr("function")),
            (&mut titles, a.attr("title")),
            (&mut genders, a.attr("gender")),
        ] {
            if let Some(v) = value {
                push_unique(list, v);
            }
        }
        for r in remarks_of(a) {
            push_unique(&mut name_remarks, r);
        }
    }
    for (label, list) in [
        ("Function", &functions),
        ("Title", &titles),
        ("Gender", &genders),
        ("Name remark", &name_remarks),
    ] {
        if !list.is_empty() {
            details.push(format!("{label}: {}", list.join("; ")));
        }
    }

    let mut addresses = Vec::new();
    let mut seen_addresses = std::collections::HashSet::new();
    let mut address_countries = Vec::new();
    for a in record.all("address") {
        let po_box = a.attr("poBox").map(|p| format!("PO Box {p}"));
        let country = eu_country(a);
        let parts: Vec<&str> = [a.attr("street"), po_box.as_deref()]
            .into_iter()
            .chain(
                ["city", "zipCode", "region", "place"]
                    .iter()
                    .map(|p| a.attr(p)),
            )
            .chain([country.as_ref().map(|(written, _)| written.as_str())])
            .flatten()
            .collect();
        if let Some(address) = normalize::text(&parts.join(", ")) {
            normalize::push_new(&mut addresses, &mut seen_addresses, address);
        }
        address_countries.extend(country);
        for c in a.all("contactInfo") {
            if let Some(value) = c.attr("value") {
                let key = c.attr("key").unwrap_or("contact");
                details.push(format!("Contact ({key}): {value}"));
            }
        }
        for r in remarks_of(a) {
            details.push(format!("Address remark: {r}"));
        }
    }

    let mut identifiers = Vec::new();
    for id in record.all("identification") {
        let type_code = id.attr("identificationTypeCode").unwrap_or_default();
        let description = id.attr("identificationTypeDescription");
        let id_type = match type_code.to_lowercase().as_str() {
            "passport" => "passport",
            "id" | "nationcert" | "nrn" => "national_id",
            "regnumber" => "registration",
            "fiscalcode" => "tax_id",
            "imo" => "imo",
            _ => "other",
        };
        let numbers: Vec<&str> = [id.attr("number"), id.attr("latinNumber")]
            .into_iter()
            .flatten()
            .collect();
        for number in &numbers {
            match (
                id_type,
                description.or((!type_code.is_empty()).then_some(type_code)),
            ) {
                ("other", Some(label)) => normalize::push_identifier(
                    &mut identifiers,
                    "other",
                    &format!("{label}: {number}"),
                ),
                (t, _) => normalize::push_identifier(&mut identifiers, t, number),
            }
        }
        let Some(number) = numbers.first() else {
            continue;
        };
        let issued: Vec<String> = [
            id.attr("issuedBy").map(|i| format!("issued by {i}")),
            eu_country(id).map(|(c, _)| c),
            id.attr("issueDate").map(|d| format!("issued on {d}")),
            yes(id.attr("diplomatic")).then(|| "diplomatic".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let label = description.unwrap_or("Identification");
        if !issued.is_empty() {
            details.push(format!("{label} {number}: {}", issued.join(", ")));
        }
        for r in remarks_of(id) {
            details.push(format!("{label} {number}: {r}"));
        }
    }

    // What the entry's fields cannot carry, kept in its remarks as the list wrote it.
    let mut kept = Vec::new();
    let mut births = Vec::new();
    for b in record.all("birthdate") {
        births.extend(birth_written(b));
        let place: Vec<&str> = ["city", "place", "region"]
            .iter()
            .filter_map(|p| b.attr(p))
            .chain(b.attr("countryDescription").filter(|c| !unknown(c)))
            .collect();
        if !place.is_empty() {
            details.push(format!("Place of birth: {}", place.join(", ")));
        }
        for r in remarks_of(b) {
            details.push(format!("Birth remark: {r}"));
        }
    }
    let births: Vec<&str> = births.iter().map(String::as_str).collect();
    let birth_date = normalize::pick_date(&births, "Date of birth", "birthdate", &mut kept, notes);

    let citizenships: Vec<(String, Option<(CountryCode, bool)>)> =
        record.all("citizenship").filter_map(eu_country).collect();
    for c in record.all("citizenship") {
        for r in remarks_of(c) {
            details.push(format!("Citizenship remark: {r}"));
        }
    }
    let nationality = countries(citizenships, "Citizenship", "citizenship", &mut kept, notes);
    let country = nationality.clone().or_else(|| {
        countries(
            address_countries,
            "Address country",
            "address",
            &mut kept,
            notes,
        )
    });

    let mut regulations = normalize::Unique::default();
    for r in record.all("regulation") {
        let url = r
            .attr("publicationUrl")
            .or_else(|| r.text_of("publicationUrl"));
        let programme = r.attr("programme").map(|p| format!("({p})"));
        let parts: Vec<&str> = [r.attr("numberTitle"), programme.as_deref(), url]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            push_unique(&mut regulations, &parts.join(" "));
        }
    }
    let references: Vec<String> = [
        record
            .attr("euReferenceNumber")
            .map(|r| format!("EU reference {r}")),
        record
            .attr("unitedNationId")
            .map(|r| format!("UN reference {r}")),
        record
            .attr("designationDate")
            .map(|d| format!("designated {d}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let legal_basis = match (regulations.is_empty(), references.is_empty()) {
        (true, true) => None,
        (false, true) => Some(format!(
            "EU financial sanctions: {}",
            regulations.join("; ")
        )),
        (true, false) => Some(format!("EU financial sanctions, {}", references.join(", "))),
        (false, false) => Some(format!(
            "EU financial sanctions: {}; {}",
            regulations.join("; "),
            references.join(", ")
        )),
    }
    .map(|l| normalize::cut_long(l, "legal_basis", notes));

    if !details.is_empty() {
        notes.kept.push("details");
    }
    let remarks = remarks_of(record)
        .into_iter()
        .map(str::to_owned)
        .chain(details)
        .collect::<Vec<_>>()
        .join("\n");
    let remarks = normalize::text(&remarks).map(|r| normalize::cut_long(r, "remark", notes));
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

/// The list's word for a country it does not know.
fn unknown(description: &str) -> bool {
    description.eq_ignore_ascii_case("unknown")
}

/// The country of an element with `countryIso2Code` and `countryDescription`: the
/// value as the list wrote it (the description, else the code) and what it maps to.
/// A code the country table knows is taken as it is; the description then only says
/// more than the code when it does not read as that same country. `None` when the
/// element names no country (`00`, `UNKNOWN`, nothing).
fn eu_country(e: &Element) -> Option<(String, Option<(CountryCode, bool)>)> {
    let description = e.attr("countryDescription").filter(|d| !unknown(d));
    let code = e
        .attr("countryIso2Code")
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
    let by_code = code.and_then(country_lookup).map(|(c, _)| c);
    match (description, by_code) {
        (None, None) => code.map(|c| (c.to_owned(), None)),
        (None, Some(c)) => Some((code.unwrap_or_default().to_owned(), Some((c, false)))),
        (Some(d), Some(c)) => {
            let same = country_lookup(d).is_some_and(|(by_name, q)| by_name == c && !q);
            Some((d.to_owned(), Some((c, !same))))
        }
        (Some(d), None) => Some((d.to_owned(), country_lookup(d))),
    }
}

/// The first of the looked-up `values` with a code (see [`first_found`]).
fn countries(
    values: Vec<(String, Option<(CountryCode, bool)>)>,
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<CountryCode> {
    let (written, found): (Vec<String>, Vec<Option<(CountryCode, bool)>>) =
        values.into_iter().unzip();
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    first_found(&written, found, label, field, kept, notes)
}

/// A `birthdate` element as one written date: its `birthdate`, else `year`,
/// `monthOfYear` and `dayOfMonth` (a `0` is an unknown part), else a year range;
/// "circa" before it when the list says so, and the calendar after it when it is not
/// Gregorian (so that it is kept as written, not read as a Gregorian date).
fn birth_written(b: &Element) -> Option<String> {
    let part = |name: &str| b.attr(name).filter(|v| v.bytes().any(|c| c != b'0'));
    let value = match (b.attr("birthdate"), part("year")) {
        (Some(d), _) => d.to_owned(),
        (None, Some(y)) => match (part("monthOfYear"), part("dayOfMonth")) {
            (Some(m), Some(d)) => format!("{y}-{m:0>2}-{d:0>2}"),
            (Some(m), None) => format!("{y}-{m:0>2}"),
            (None, _) => y.to_owned(),
        },
        (None, None) => match (part("yearRangeFrom"), part("yearRangeTo")) {
            (Some(from), Some(to)) => format!("between {from} and {to}"),
            (Some(from), None) => format!("from {from}"),
            (None, Some(to)) => format!("until {to}"),
            (None, None) => return None,
        },
    };
    let value = if yes(b.attr("circa")) {
        format!("circa {value}")
    } else {
        value
    };
    Some(match b.attr("calendarType") {
        Some(c) if !c.eq_ignore_ascii_case("gregorian") => format!("{value} ({c} calendar)"),
        _ => value,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn element(attributes: &[(&str, &str)]) -> Element {
        Element {
            name: "birthdate".to_owned(),
            attributes: attributes
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..Element::default()
        }
    }

    #[test]
    fn birth_dates_as_written() {
        for (attributes, want) in [
            (
                &[("birthdate", "1966-02-02+01:00")][..],
                Some("1966-02-02+01:00"),
            ),
            (
                &[("year", "1970"), ("monthOfYear", "3"), ("dayOfMonth", "0")][..],
                Some("1970-03"),
            ),
            (&[("year", "1970"), ("dayOfMonth", "4")][..], Some("1970")),
            (
                &[("year", "1970"), ("circa", "true")][..],
                Some("circa 1970"),
            ),
            (
                &[("yearRangeFrom", "1960"), ("yearRangeTo", "1965")][..],
                Some("between 1960 and 1965"),
            ),
            (
                &[("year", "1390"), ("calendarType", "ISLAMIC")][..],
                Some("1390 (ISLAMIC calendar)"),
            ),
            (&[("year", "0"), ("city", "Kabul")][..], None),
        ] {
            assert_eq!(birth_written(&element(attributes)).as_deref(), want);
        }
    }

    #[test]
    fn countries_by_code_then_description() {
        let code = |a: &[(&str, &str)]| {
            eu_country(&element(a)).map(|(w, f)| (w, f.map(|(c, q)| (c.as_str().to_owned(), q))))
        };
        let some = |w: &str, c: &str, q: bool| Some((w.to_owned(), Some((c.to_owned(), q))));
        assert_eq!(
            code(&[
                ("countryIso2Code", "VG"),
                ("countryDescription", "Virgin Islands, British")
            ]),
            some("Virgin Islands, British", "VG", false)
        );
        assert_eq!(
            code(&[
                ("countryIso2Code", "IQ"),
                ("countryDescription", "Iraq (in custody)")
            ]),
            some("Iraq (in custody)", "IQ", true)
        );
        assert_eq!(
            code(&[
                ("countryIso2Code", "00"),
                ("countryDescription", "Sultanate of Oman")
            ]),
            some("Sultanate of Oman", "OM", false)
        );
        assert_eq!(code(&[("countryIso2Code", "RU")]), some("RU", "RU", false));
        assert_eq!(
            code(&[("countryIso2Code", "00"), ("countryDescription", "UNKNOWN")]),
            None
        );
        assert_eq!(
            code(&[
                ("countryIso2Code", "00"),
                ("countryDescription", "Atlantis")
            ]),
            Some(("Atlantis".to_owned(), None))
        );
    }
}
