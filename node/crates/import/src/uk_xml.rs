//! The UK Sanctions List published by the FCDO (`Designations` XML), so that an agency
//! can mirror UK designations into its node without retyping them. This is the list
//! the UK publishes under the Sanctions Act, including OFSI's asset freezes (the OFSI
//! consolidated list, `ArrayOfFinancialSanctionsTarget`, was frozen in January 2026 in
//! its favour); unlike OFSI's one row per name, it has one `Designation` per subject.
//!
//! Mapping, per `Designation` (numbered in document order):
//!
//! - source id: `UniqueID`; kind: `IndividualEntityShip` `Individual` → person,
//!   `Entity` → organization, `Ship` → vessel;
//! - name: the `Names/Name` whose `NameType` is `Primary Name` (else the first), as
//!   `Name1 Name2 Name3 Name4 Name5 Name6`; aliases: every other `Name` (aliases and
//!   primary name variations) and `NonLatinNames/*/NameNonLatinScript`;
//! - addresses: `Addresses/Address` as `AddressLine1, ..., AddressLine6,
//!   AddressPostalCode, AddressCountry`;
//! - identifiers: `PassportDetails/*/PassportNumber` → `passport`,
//!   `NationalIdentifierDetails/*/NationalIdentifierNumber` → `national_id` (under
//!   `IndividualDetails/Individual`), `BusinessRegistrationNumbers` → `registration`
//!   (under `EntityDetails/Entity`), `IMONumbers` → `imo` (under `ShipDetails/Ship`);
//! - birth date: the first readable `DOBs/DOB`, written `dd/mm/yyyy` with `dd` and
//!   `mm` for the parts the list does not know ("dd/mm/1965" is a year);
//! - nationality: the first `Nationalities/Nationality` that maps; country: the
//!   nationality, else a ship's `CurrentBelievedFlagOfShip`, else the first address
//!   country;
//! - legal basis: `UK Sanctions List, <RegimeName>` with `UniqueID`,
//!   `UNReferenceNumber`, `OFSIGroupID`, `SanctionsImposed`, `DesignationSource` and
//!   `DateDesignated`;
//! - remarks: `OtherInformation` and `UKStatementofReasons`; then, as "details" no
//!   entry field carries, positions, titles, genders, places of birth, the additional
//!   information on passports and national identifiers, entity types, parent companies
//!   and subsidiaries, ship types, previous flags, owners, tonnage, length and year
//!   built, phone numbers, e-mail addresses and websites; reason: `sanctions` unless
//!   the defaults say otherwise.

use wlnode_crypto::model::{EntryDraft, Subject, SubjectKind};
use wlnode_crypto::time::PartialDate;

use super::normalize::{self, RowNotes};
use super::un_xml::first_country;
use super::xml::{Element, for_each_record};
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    for_each_record(
        text,
        Format::UkXml,
        "Designations",
        &["Designation"],
        |n, record| read_record(n, &record, defaults, &mut out),
    )?;
    Ok(out.finish(super::source_list(defaults, Format::UkXml)))
}

fn read_record(n: usize, record: &Element, defaults: &ImportDefaults, out: &mut Collector) {
    let location = Location::Record(n);
    let Some(source_id) = record.text_of("UniqueID").map(str::to_owned) else {
        out.error(location, None, "UniqueID: missing");
        return;
    };
    let kind = match record.text_of("IndividualEntityShip") {
        Some(k) if k.eq_ignore_ascii_case("individual") => SubjectKind::Person,
        Some(k) if k.eq_ignore_ascii_case("entity") => SubjectKind::Organization,
        Some(k) if k.eq_ignore_ascii_case("ship") => SubjectKind::Vessel,
        Some(other) => {
            let message =
                format!("IndividualEntityShip: {other:?} is not one of Individual, Entity, Ship");
            out.error(location, Some(&source_id), message);
            return;
        }
        None => {
            out.error(location, Some(&source_id), "IndividualEntityShip: missing");
            return;
        }
    };
    out.row(location, source_id, |notes| {
        draft(kind, record, defaults, notes)
    });
}

/// `Name1 ... Name6` of a `Name`.
fn full_name(n: &Element) -> String {
    normalize::join_names(
        ["Name1", "Name2", "Name3", "Name4", "Name5", "Name6"]
            .iter()
            .filter_map(|p| n.text_of(p)),
    )
}

/// The texts of every `leaf` under a `list` child of each of `parts` (e.g. every
/// `DOBs/DOB` of every `IndividualDetails/Individual`), in document order.
fn nested<'a>(parts: &[&'a Element], list: &str, leaf: &str) -> Vec<&'a str> {
    parts.iter().flat_map(|p| p.leaves(list, leaf)).collect()
}

/// Every child of every `list` child of `parts` (the list names its items in more
/// than one way, e.g. `PassportDetails/Passport` and `PassportDetails/PassportDetail`).
fn items<'a>(parts: &[&'a Element], list: &'a str) -> Vec<&'a Element> {
    parts
        .iter()
        .flat_map(|p| p.all(list))
        .flat_map(|l| l.children.iter())
        .collect()
}

fn draft(
    kind: SubjectKind,
    record: &Element,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let names: Vec<&Element> = record.all("Names").flat_map(|l| l.all("Name")).collect();
    let primary = |n: &&&Element| {
        n.text_of("NameType")
            .is_some_and(|t| normalize::name(t).eq_ignore_ascii_case("primary name"))
    };
    let name = names
        .iter()
        .filter(primary)
        .chain(names.iter())
        .map(|n| full_name(n))
        .find(|n| !n.is_empty())
        .ok_or_else(|| {
            "Names/Name: no Name1 to Name6, so the designation has no name".to_owned()
        })?;
    let non_latin = record
        .all("NonLatinNames")
        .flat_map(|l| {
            l.all("NameNonLatinScript")
                .chain(l.children.iter().flat_map(|c| c.all("NameNonLatinScript")))
        })
        .filter_map(Element::value)
        .map(str::to_owned);
    let aliases = normalize::aliases(&name, names.iter().map(|n| full_name(n)).chain(non_latin));

    let people: Vec<&Element> = record
        .all("IndividualDetails")
        .flat_map(|d| d.all("Individual"))
        .collect();
    let entities: Vec<&Element> = record
        .all("EntityDetails")
        .flat_map(|d| d.all("Entity"))
        .collect();
    let ships: Vec<&Element> = record
        .all("ShipDetails")
        .flat_map(|d| d.all("Ship"))
        .collect();
    let whole = [record];

    // Lines for what no entry field carries, kept in the remarks.
    let mut details = Vec::new();
    let mut detail = |label: &str, values: Vec<&str>| {
        let mut unique: Vec<&str> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for v in values {
            normalize::push_new(&mut unique, &mut seen, v);
        }
        if !unique.is_empty() {
            details.push(format!("{label}: {}", unique.join("; ")));
        }
    };

    let mut identifiers = Vec::new();
    for (list, number, info, id_type, label) in [
        (
            "PassportDetails",
            "PassportNumber",
            "PassportAdditionalInformation",
            "passport",
            "Passport",
        ),
        (
            "NationalIdentifierDetails",
            "NationalIdentifierNumber",
            "NationalIdentifierAdditionalInformation",
            "national_id",
            "National identifier",
        ),
    ] {
        for item in items(&people, list) {
            let n = item.text_of(number);
            if let Some(n) = n {
                normalize::push_identifier(&mut identifiers, id_type, n);
            }
            if let Some(i) = item.text_of(info) {
                let about = n.map_or_else(|| label.to_owned(), |n| format!("{label} {n}"));
                detail(&about, vec![i]);
            }
        }
    }
    for n in nested(
        &entities,
        "BusinessRegistrationNumbers",
        "BusinessRegistrationNumber",
    ) {
        normalize::push_identifier(&mut identifiers, "registration", n);
    }
    for n in nested(&ships, "IMONumbers", "IMONumber") {
        normalize::push_identifier(&mut identifiers, "imo", n);
    }

    detail("Title", nested(&people, "Titles", "Title"));
    detail("Position", nested(&people, "Positions", "Position"));
    detail("Gender", nested(&people, "Genders", "Gender"));
    let places: Vec<String> = items(&people, "BirthDetails")
        .into_iter()
        .map(|l| {
            ["TownOfBirth", "CountryOfBirth"]
                .iter()
                .filter_map(|p| l.text_of(p))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|p| !p.is_empty())
        .collect();
    detail(
        "Place of birth",
        places.iter().map(String::as_str).collect(),
    );
    for (label, list, leaf) in [
        ("Type of entity", "TypeOfEntities", "TypeOfEntity"),
        ("Parent company", "ParentCompanies", "ParentCompany"),
        ("Subsidiary", "Subsidiaries", "Subsidiary"),
    ] {
        detail(label, nested(&entities, list, leaf));
    }
    for (label, list, leaf) in [
        ("Type of ship", "TypeOfShipDetails", "TypeOfShip"),
        ("Previous flag", "PreviousFlags", "PreviousFlag"),
        (
            "Current owner or operator",
            "CurrentOwnerOperators",
            "CurrentOwnerOperator",
        ),
        (
            "Previous owner or operator",
            "PreviousOwnerOperators",
            "PreviousOwnerOperator",
        ),
        ("Tonnage", "TonnageOfShipDetails", "TonnageOfShip"),
        ("Length", "LengthOfShipDetails", "LengthOfShip"),
        ("Year built", "YearsBuilt", "YearBuilt"),
        (
            "Hull identification number",
            "HullIdentificationNumbers",
            "HullIdentificationNumber",
        ),
    ] {
        detail(label, nested(&ships, list, leaf));
    }
    for (label, list, leaf) in [
        ("Phone", "PhoneNumbers", "PhoneNumber"),
        ("E-mail", "EmailAddresses", "EmailAddress"),
        ("Website", "Websites", "Website"),
    ] {
        detail(label, nested(&whole, list, leaf));
    }

    let mut addresses = Vec::new();
    let mut seen_addresses = std::collections::HashSet::new();
    let mut address_countries = Vec::new();
    for a in record.all("Addresses").flat_map(|l| l.all("Address")) {
        let parts: Vec<&str> = [
            "AddressLine1",
            "AddressLine2",
            "AddressLine3",
            "AddressLine4",
            "AddressLine5",
            "AddressLine6",
            "AddressPostalCode",
            "AddressCountry",
        ]
        .iter()
        .filter_map(|p| a.text_of(p))
        .collect();
        if let Some(address) = normalize::text(&parts.join(", ")) {
            normalize::push_new(&mut addresses, &mut seen_addresses, address);
        }
        address_countries.extend(a.text_of("AddressCountry"));
    }

    // What the entry's fields cannot carry, kept in its remarks as the list wrote it.
    let mut kept = Vec::new();
    let births = nested(&people, "DOBs", "DOB");
    let birth_date = normalize::pick_date_by(
        &births,
        uk_date,
        "Date of birth",
        "DOBs/DOB",
        &mut kept,
        notes,
    );
    let nationalities = nested(&people, "Nationalities", "Nationality");
    let nationality = first_country(
        &nationalities,
        "Nationality",
        "Nationalities/Nationality",
        &mut kept,
        notes,
    );
    let flags = nested(
        &ships,
        "CurrentBelievedFlagOfShips",
        "CurrentBelievedFlagOfShip",
    );
    let country = nationality
        .clone()
        .or_else(|| {
            first_country(
                &flags,
                "Flag",
                "CurrentBelievedFlagOfShips/CurrentBelievedFlagOfShip",
                &mut kept,
                notes,
            )
        })
        .or_else(|| {
            first_country(
                &address_countries,
                "Address country",
                "Addresses/Address/AddressCountry",
                &mut kept,
                notes,
            )
        });

    let measures = record.text_of("SanctionsImposed").map(|m| {
        format!(
            "measures: {}",
            m.split('|').map(str::trim).collect::<Vec<_>>().join(", ")
        )
    });
    let references: Vec<String> = [
        record.text_of("UniqueID").map(str::to_owned),
        record
            .text_of("UNReferenceNumber")
            .map(|r| format!("UN reference {r}")),
        record
            .text_of("OFSIGroupID")
            .map(|g| format!("OFSI group {g}")),
        measures,
        record
            .text_of("DesignationSource")
            .map(|s| format!("designation source {s}")),
        record
            .text_of("DateDesignated")
            .map(|d| format!("designated {d}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let legal_basis = Some(match record.text_of("RegimeName") {
        Some(regime) => format!("UK Sanctions List, {regime}: {}", references.join("; ")),
        None => format!("UK Sanctions List: {}", references.join("; ")),
    })
    .map(|l| normalize::cut_long(l, "legal_basis", notes));

    if !details.is_empty() {
        notes.kept.push("details");
    }
    let remarks = [
        record.text_of("OtherInformation").map(str::to_owned),
        record
            .text_of("UKStatementofReasons")
            .map(|r| format!("UK statement of reasons: {r}")),
    ]
    .into_iter()
    .flatten()
    .chain(details)
    .collect::<Vec<_>>()
    .join("\n");
    let remarks =
        normalize::text(&remarks).map(|r| normalize::cut_long(r, "OtherInformation", notes));
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

/// A date as the UK list writes it: `dd/mm/yyyy`, with `dd` and `mm` (or zeros) for
/// the parts it does not know: "dd/mm/1965" is 1965, "dd/04/1965" April 1965. A day
/// without its month gives the year, flagged so that the value is kept as written.
/// Any other form is read as the other lists' dates are ("circa 1965").
fn uk_date(s: &str) -> Option<(PartialDate, bool)> {
    let parts: Vec<&str> = s.trim().split('/').map(str::trim).collect();
    let [d, m, y] = parts.as_slice() else {
        return normalize::read_list_date(s);
    };
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    let known = |p: &str| digits(p, 2) && p.bytes().any(|b| b != b'0');
    let unknown = |p: &str, placeholder: &str| {
        p.eq_ignore_ascii_case(placeholder) || (digits(p, 2) && !known(p))
    };
    if y.len() != 4 || !digits(y, 4) {
        return None;
    }
    let (iso, less) = match (known(d), known(m)) {
        (true, true) => (format!("{y}-{m:0>2}-{d:0>2}"), false),
        (false, true) if unknown(d, "dd") => (format!("{y}-{m:0>2}"), false),
        (true, false) if unknown(m, "mm") => ((*y).to_owned(), true),
        (false, false) if unknown(d, "dd") && unknown(m, "mm") => ((*y).to_owned(), false),
        _ => return None,
    };
    PartialDate::parse(&iso).ok().map(|date| (date, less))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn dates_as_the_uk_list_writes_them() {
        let read = |s: &str| uk_date(s).map(|(d, less)| (d.to_string(), less));
        let exact = |s: &str| Some((s.to_owned(), false));
        assert_eq!(read("02/03/1975"), exact("1975-03-02"));
        assert_eq!(read("2/3/1975"), exact("1975-03-02"));
        assert_eq!(read("dd/mm/1965"), exact("1965"));
        assert_eq!(read("DD/MM/1965"), exact("1965"));
        assert_eq!(read("00/00/1965"), exact("1965"));
        assert_eq!(read("dd/04/1965"), exact("1965-04"));
        assert_eq!(read("12/mm/1965"), Some(("1965".to_owned(), true)));
        assert_eq!(read("circa 1965"), Some(("1965".to_owned(), true)));
        assert_eq!(read("31/02/1965"), None);
        assert_eq!(read("02/13/1965"), None);
        assert_eq!(read("02/03/65"), None);
        assert_eq!(read("xx/03/1965"), None);
        assert_eq!(read("1965-1967"), None);
        assert_eq!(read("//"), None);
        assert_eq!(read("é/é/éééé"), None);
    }
}
