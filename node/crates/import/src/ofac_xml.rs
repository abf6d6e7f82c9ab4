//! The OFAC Specially Designated Nationals list (`sdnList` XML), so that an agency can
//! mirror US designations into its node without retyping them.
//!
//! Mapping, per `sdnEntry` (numbered in document order):
//!
//! - source id: `uid`; kind: `sdnType` `Individual` → person, `Entity` → organization,
//!   `Vessel` → vessel (`Aircraft` entries are skipped and counted);
//! - name: `firstName lastName` (entities and vessels: `lastName`); aliases: every
//!   `akaList/aka` the same way;
//! - addresses: `addressList/address` as `address1, address2, address3, city,
//!   stateOrProvince, postalCode, country`;
//! - identifiers: `idList/id` (`idType`, `idNumber`): `Passport` → `passport`, IMO
//!   numbers → `imo`, registration, tax, national and LEI types by their wording,
//!   informational types (gender, websites, e-mail, sanctions notes) left out, the rest
//!   `other` with the type kept in the value; an `Organization Established Date` becomes
//!   the birth (incorporation) date;
//! - birth date: the `dateOfBirthList/dateOfBirthItem` marked `mainEntry`, else the first
//!   readable one (`12 Jan 1970`, `Jan 1970`, `1970`);
//! - nationality: `nationalityList`, else `citizenshipList`; country: the nationality,
//!   else the vessel flag, else the first address country;
//! - legal basis: `OFAC SDN program(s): ...` from `programList/program`; remarks:
//!   `remarks`; reason: `sanctions` unless the defaults say otherwise.

use crate::normalize::RowNotes;
use wlnode_crypto::model::{EntryDraft, Subject, SubjectKind};

use super::normalize;
use super::un_xml::first_country;
use super::xml::{Element, for_each_record};
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

/// `idType`s that describe the entry rather than identify it; they are left out.
const INFORMATIONAL_ID_TYPES: &[&str] = &[
    "gender",
    "website",
    "email address",
    "secondary sanctions risk",
    "additional sanctions information",
    "transactions prohibited",
    "executive order",
    "organization type",
    "target type",
    "vessel year of build",
    "vessel flag",
    "other vessel flag",
    "vessel type",
    "nationality of registration",
];

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    let mut out = Collector::default();
    for_each_record(
        text,
        Format::OfacXml,
        "sdnList",
        &["sdnEntry"],
        |n, record| {
            read_record(n, &record, defaults, &mut out);
        },
    )?;
    Ok(out.finish(super::source_list(defaults, Format::OfacXml)))
}

fn read_record(n: usize, record: &Element, defaults: &ImportDefaults, out: &mut Collector) {
    let location = Location::Record(n);
    let Some(source_id) = record.text_of("uid").map(str::to_owned) else {
        out.error(location, None, "uid: missing");
        return;
    };
    let kind = match record.text_of("sdnType") {
        Some("Individual") => SubjectKind::Person,
        Some("Entity") => SubjectKind::Organization,
        Some("Vessel") => SubjectKind::Vessel,
        Some("Aircraft") => {
            out.skipped += 1;
            return;
        }
        Some(other) => {
            let message =
                format!("sdnType: {other:?} is not one of Individual, Entity, Vessel, Aircraft");
            out.error(location, Some(&source_id), message);
            return;
        }
        None => {
            out.error(location, Some(&source_id), "sdnType: missing");
            return;
        }
    };
    out.row(location, source_id, |notes| {
        draft(kind, record, defaults, notes)
    });
}

/// `firstName lastName` of an entry or an aka.
fn full_name(e: &Element) -> String {
    normalize::join_names(
        [e.text_of("firstName"), e.text_of("lastName")]
            .into_iter()
            .flatten(),
    )
}

fn draft(
    kind: SubjectKind,
    record: &Element,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let name = match kind {
        SubjectKind::Person => full_name(record),
        _ => normalize::name(record.text_of("lastName").unwrap_or_default()),
    };
    if name.is_empty() {
        return Err("lastName: missing, so the entry has no name".to_owned());
    }
    let aliases = normalize::aliases(
        &name,
        record
            .all("akaList")
            .flat_map(|l| l.all("aka"))
            .map(full_name),
    );
    let mut addresses = Vec::new();
    let mut seen_addresses = std::collections::HashSet::new();
    let mut address_countries = Vec::new();
    for a in record.all("addressList").flat_map(|l| l.all("address")) {
        let parts: Vec<&str> = [
            "address1",
            "address2",
            "address3",
            "city",
            "stateOrProvince",
            "postalCode",
            "country",
        ]
        .iter()
        .filter_map(|p| a.text_of(p))
        .collect();
        if let Some(address) = normalize::text(&parts.join(", ")) {
            normalize::push_new(&mut addresses, &mut seen_addresses, address);
        }
        address_countries.extend(a.text_of("country"));
    }
    let mut identifiers = Vec::new();
    let mut established: Vec<&str> = Vec::new();
    for id in record.all("idList").flat_map(|l| l.all("id")) {
        let (Some(id_type), Some(number)) = (id.text_of("idType"), id.text_of("idNumber")) else {
            continue;
        };
        let lower = id_type.to_lowercase();
        if lower.starts_with("organization established date") {
            established.push(number);
            continue;
        }
        if INFORMATIONAL_ID_TYPES.iter().any(|t| lower.starts_with(t)) {
            continue;
        }
        match normalize::list_id_type(id_type) {
            "other" => {
                let value = format!("{}: {number}", id_type.trim_end_matches([':', ' ']));
                normalize::push_identifier(&mut identifiers, "other", &value);
            }
            t => normalize::push_identifier(&mut identifiers, t, number),
        }
    }
    // What the entry's fields cannot carry, kept in its remarks as the list wrote it.
    let mut kept = Vec::new();
    let birth_date = match kind {
        SubjectKind::Person => person_birth_date(record, &mut kept, notes),
        _ => normalize::pick_date(
            &established,
            "Date of establishment",
            "idList/id (Organization Established Date)",
            &mut kept,
            notes,
        ),
    };
    let nationalities: Vec<&str> = record
        .all("nationalityList")
        .flat_map(|l| l.all("nationality"))
        .filter_map(|n| n.text_of("country"))
        .collect();
    let citizenships: Vec<&str> = record
        .all("citizenshipList")
        .flat_map(|l| l.all("citizenship"))
        .filter_map(|n| n.text_of("country"))
        .collect();
    // Nationalities and citizenships together: a citizenship the nationality does not
    // say is kept, not dropped.
    let nationality = match kind {
        SubjectKind::Person => {
            let both: Vec<&str> = nationalities.iter().chain(&citizenships).copied().collect();
            first_country(
                &both,
                "Nationality",
                "nationalityList, citizenshipList",
                &mut kept,
                notes,
            )
        }
        _ => None,
    };
    let flags: Vec<&str> = record
        .all("vesselInfo")
        .filter_map(|v| v.text_of("vesselFlag"))
        .collect();
    let country = nationality
        .clone()
        .or_else(|| first_country(&flags, "Flag", "vesselInfo/vesselFlag", &mut kept, notes))
        .or_else(|| {
            first_country(
                &address_countries,
                "Address country",
                "addressList/address/country",
                &mut kept,
                notes,
            )
        });
    let programs = record.leaves("programList", "program");
    let legal_basis = match programs.as_slice() {
        [] => None,
        [one] => Some(format!("OFAC SDN program: {one}")),
        many => Some(format!("OFAC SDN programs: {}", many.join(", "))),
    }
    .map(|l| normalize::cut_long(l, "legal_basis", notes));
    let remarks = record
        .text_of("remarks")
        .and_then(normalize::text)
        .map(|r| normalize::cut_long(r, "remarks", notes));
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

/// The main-entry date of birth, else the first readable one; the others, and an
/// approximate one, kept in `kept` as listed.
fn person_birth_date(
    record: &Element,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<wlnode_crypto::time::PartialDate> {
    let items: Vec<(&str, bool)> = record
        .all("dateOfBirthList")
        .flat_map(|l| l.all("dateOfBirthItem"))
        .filter_map(|i| {
            let main = i
                .text_of("mainEntry")
                .is_some_and(|m| m.eq_ignore_ascii_case("true"));
            i.text_of("dateOfBirth").map(|d| (d, main))
        })
        .collect();
    let written: Vec<&str> = items
        .iter()
        .filter(|(_, main)| *main)
        .chain(items.iter().filter(|(_, main)| !*main))
        .map(|(d, _)| *d)
        .collect();
    normalize::pick_date(&written, "Date of birth", "dateOfBirthList", kept, notes)
}
