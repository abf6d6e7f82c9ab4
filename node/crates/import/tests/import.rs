//! The import parsers turn each format's fixture into the expected drafts, report bad
//! rows with their line or record number while the good rows still come through, give
//! deterministic entry ids, and never panic on arbitrary or mutated input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::json;
use wlnode_crypto::model::{AgencyCode, Category, EntryDraft, Reason};
use wlnode_import::{
    Format, ImportDefaults, ImportError, ImportRow, Location, Parsed, entry_id_for, parse,
};

const GOOD_CSV: &[u8] = include_bytes!("fixtures/import/good.csv");
const BAD_CSV: &[u8] = include_bytes!("fixtures/import/bad.csv");
const GOOD_JSONL: &[u8] = include_bytes!("fixtures/import/good.jsonl");
const BAD_JSONL: &[u8] = include_bytes!("fixtures/import/bad.jsonl");
const GOOD_FTM: &[u8] = include_bytes!("fixtures/import/good.ftm.jsonl");
const BAD_FTM: &[u8] = include_bytes!("fixtures/import/bad.ftm.jsonl");
const GOOD_UN: &[u8] = include_bytes!("fixtures/import/good.un.xml");
const ODD_UN: &[u8] = include_bytes!("fixtures/import/oddities.un.xml");
const BAD_UN: &[u8] = include_bytes!("fixtures/import/bad.un.xml");
const GOOD_OFAC: &[u8] = include_bytes!("fixtures/import/good.ofac.xml");
const BAD_OFAC: &[u8] = include_bytes!("fixtures/import/bad.ofac.xml");
const GOOD_EU: &[u8] = include_bytes!("fixtures/import/good.eu.xml");
const BAD_EU: &[u8] = include_bytes!("fixtures/import/bad.eu.xml");
const GOOD_UK: &[u8] = include_bytes!("fixtures/import/good.uk.xml");
const BAD_UK: &[u8] = include_bytes!("fixtures/import/bad.uk.xml");

const FIXTURES: &[(Format, &[u8])] = &[
    (Format::Csv, GOOD_CSV),
    (Format::Csv, BAD_CSV),
    (Format::Jsonl, GOOD_JSONL),
    (Format::Jsonl, BAD_JSONL),
    (Format::Ftm, GOOD_FTM),
    (Format::Ftm, BAD_FTM),
    (Format::UnXml, GOOD_UN),
    (Format::UnXml, BAD_UN),
    (Format::OfacXml, GOOD_OFAC),
    (Format::OfacXml, BAD_OFAC),
    (Format::EuXml, GOOD_EU),
    (Format::EuXml, BAD_EU),
    (Format::UkXml, GOOD_UK),
    (Format::UkXml, BAD_UK),
];

fn defaults() -> ImportDefaults {
    ImportDefaults::default()
}

fn draft(v: serde_json::Value) -> EntryDraft {
    serde_json::from_value(v).unwrap()
}

fn row<'a>(p: &'a Parsed, source_id: &str) -> &'a ImportRow {
    p.rows
        .iter()
        .find(|r| r.source_id == source_id)
        .unwrap_or_else(|| panic!("no row {source_id}: {p:#?}"))
}

/// The error at `location`, checking that its message contains `needle`.
fn assert_error(p: &Parsed, location: Location, source_id: Option<&str>, needle: &str) {
    let e = p
        .errors
        .iter()
        .find(|e| e.location == location)
        .unwrap_or_else(|| panic!("no error at {location}: {:#?}", p.errors));
    assert_eq!(e.source_id.as_deref(), source_id, "{e}");
    assert!(
        e.message.contains(needle),
        "{e} does not mention {needle:?}"
    );
}

fn ids(p: &Parsed) -> Vec<&str> {
    p.rows.iter().map(|r| r.source_id.as_str()).collect()
}

fn error_locations(p: &Parsed) -> Vec<Location> {
    p.errors.iter().map(|e| e.location).collect()
}

#[test]
fn format_names() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), *f);
    }
    assert_eq!("un-xml".parse::<Format>().unwrap(), Format::UnXml);
    assert_eq!("ofac-xml".parse::<Format>().unwrap(), Format::OfacXml);
    assert_eq!("eu-xml".parse::<Format>().unwrap(), Format::EuXml);
    assert_eq!("uk-xml".parse::<Format>().unwrap(), Format::UkXml);
    assert_eq!(Format::EuXml.default_source_list(), "eu-fsf");
    assert_eq!(Format::UkXml.default_source_list(), "uk-sanctions");
    let err = "xlsx".parse::<Format>().unwrap_err();
    assert!(
        err.to_string()
            .contains("csv, jsonl, ftm, un-xml, ofac-xml, eu-xml, uk-xml")
    );
    assert_eq!(Location::Line(12).to_string(), "line 12");
    assert_eq!(Location::Record(7).to_string(), "record 7");
}

#[test]
fn csv_fixture_parses_into_the_expected_drafts() {
    let d = ImportDefaults {
        reason: Some(Reason::Other),
        categories: BTreeSet::from([Category::new("5A002").unwrap()]),
        ..defaults()
    };
    let p = parse(Format::Csv, GOOD_CSV, &d).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "csv");
    assert_eq!(ids(&p), ["AA-001", "AA-002", "AA-003", "AA-004"]);

    let acme = row(&p, "AA-001");
    assert_eq!(acme.location, Location::Line(2));
    assert_eq!(
        acme.draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "Acme Trading FZE",
                "aliases": ["ACME TRDG. F.Z.E."],
                "country": "AE",
                "addresses": ["PO Box 1234, Jebel Ali Free Zone, Dubai"],
                "identifiers": [
                    {"type": "registration", "value": "FZE-12345"},
                    {"type": "lei", "value": "5299000J2N45DDNE4Y28"}
                ],
                "birth_date": "2009-04"
            },
            "reason": "diversion-risk",
            "categories": ["3A001", "3A002"],
            "legal_basis": "Regulation (EU) 2021/821 Art. 4",
            "items": "Frequency changers",
            "remarks": "Procurement front",
            "contact": "desk@aa-export.example",
            "distribution": {"scope": "groups", "groups": ["eu"], "max_hops": 2, "sensitivity": "restricted"},
            "review_by": "2027-06-30"
        }))
    );

    // A Cyrillic name with a doubled space, a country name, a quoted two-line cell.
    let ivan = row(&p, "AA-002");
    assert_eq!(ivan.location, Location::Line(3));
    assert_eq!(ivan.draft.subject.name, "Иван Сергеевич Петров");
    assert_eq!(
        ivan.draft.subject.aliases,
        ["Ivan Sergeyevich Petrov", "I. S. Petrov"]
    );
    assert_eq!(ivan.draft.subject.country.as_ref().unwrap().as_str(), "RU");
    assert_eq!(
        ivan.draft.subject.nationality.as_ref().unwrap().as_str(),
        "RU"
    );
    assert_eq!(
        ivan.draft.subject.birth_date.unwrap().to_string(),
        "1970-01-12"
    );
    assert_eq!(ivan.draft.remarks.as_deref(), Some("Two lines\nof remarks"));
    assert_eq!(ivan.draft.reason, Reason::Denial);
    assert!(ivan.draft.categories.is_empty() || ivan.draft.categories == d.categories);

    // Empty cells fall back to the defaults; the record after the two-line one is on line 5.
    let vessel = row(&p, "AA-003");
    assert_eq!(vessel.location, Location::Line(5));
    assert_eq!(vessel.draft.reason, Reason::Other);
    assert_eq!(vessel.draft.categories, d.categories);
    assert_eq!(vessel.draft.distribution, d.distribution);
    assert_eq!(
        vessel.draft.subject.identifiers[0].canonical(),
        "imo:9187629"
    );

    // An Arabic name; an unmappable country is kept in the remarks, with a warning.
    let arabic = row(&p, "AA-004");
    assert_eq!(arabic.draft.subject.name, "محمد عبد الله");
    assert_eq!(arabic.draft.subject.country, None);
    assert!(
        arabic
            .draft
            .remarks
            .as_deref()
            .is_some_and(|r| r.ends_with("country as written: Atlantis")),
        "{:?}",
        arabic.draft.remarks
    );
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].location, Location::Line(6));
    assert!(p.warnings[0].message.contains("Atlantis"));
}

#[test]
fn csv_empty_cells_use_the_defaults_per_cell() {
    // Categories given in the row replace the default ones; without a default reason a
    // row without one fails.
    let p = parse(Format::Csv, GOOD_CSV, &defaults()).unwrap();
    assert_eq!(error_locations(&p), [Location::Line(5)]);
    assert_error(&p, Location::Line(5), Some("AA-003"), "reason");
    assert_eq!(row(&p, "AA-004").draft.categories.len(), 1);
}

#[test]
fn csv_bad_rows_are_reported_and_good_rows_kept() {
    let p = parse(Format::Csv, BAD_CSV, &defaults()).unwrap();
    assert_eq!(ids(&p), ["B-1", "B-10"]);
    assert_eq!(row(&p, "B-10").location, Location::Line(11));
    assert_error(&p, Location::Line(3), Some("B-2"), "kind");
    assert_error(&p, Location::Line(4), Some("B-3"), "name");
    assert_error(&p, Location::Line(5), Some("B-4"), "birth_date");
    assert_error(&p, Location::Line(6), None, "source_id");
    assert_error(&p, Location::Line(7), Some("B-1"), "duplicate source_id");
    assert_error(&p, Location::Line(8), Some("B-7"), "identifiers");
    assert_error(
        &p,
        Location::Line(9),
        Some("B-8"),
        "subject.identifiers[0].type",
    );
    assert_error(&p, Location::Line(10), Some("B-9"), "8 cells");
    assert_error(&p, Location::Line(12), Some("B-11"), "reason");
    assert_eq!(p.errors.len(), 9);
    assert!(p.warnings[0].message.contains("\"xx\""));
}

#[test]
fn csv_whole_file_failures_name_what_is_wrong() {
    let d = defaults();
    assert_eq!(
        parse(Format::Csv, b"source_id,name\nX,Y\n", &d).unwrap_err(),
        ImportError::MissingColumns(vec!["kind".to_owned()])
    );
    let err = parse(Format::Csv, b"source_id,kind,name,colour\n", &d).unwrap_err();
    assert_eq!(
        err,
        ImportError::UnknownColumn {
            column: "colour".to_owned(),
            position: 4
        }
    );
    assert!(err.to_string().contains("\"colour\""));
    assert_eq!(
        parse(Format::Csv, b"source_id,kind,name,Name\n", &d).unwrap_err(),
        ImportError::DuplicateColumn("name".to_owned())
    );
    assert_eq!(
        parse(Format::Csv, b"  \n", &d).unwrap_err(),
        ImportError::EmptyCsv
    );
    assert_eq!(
        parse(Format::Csv, b"source_id,kind,name\nA,person,\xff\n", &d).unwrap_err(),
        ImportError::NotUtf8 {
            line: 2,
            offset: 29
        }
    );
    // A byte-order mark and header case do not matter; columns may come in any order.
    let p = parse(
        Format::Csv,
        "\u{feff}Name,KIND,Source_ID,Reason\nX Y,person,1,denial\n".as_bytes(),
        &d,
    )
    .unwrap();
    assert_eq!(p.rows[0].draft.subject.name, "X Y");
}

#[test]
fn jsonl_fixture_parses_and_an_export_re_imports() {
    let d = ImportDefaults {
        reason: Some(Reason::WmdEndUse),
        ..defaults()
    };
    let p = parse(Format::Jsonl, GOOD_JSONL, &d).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "jsonl");
    assert_eq!(
        ids(&p),
        ["J-1", "J-2", "0123456789abcdef0123456789abcdef", "J-4"]
    );
    // The README's entry JSON comes through unchanged.
    assert_eq!(
        row(&p, "J-1").draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "Acme Trading FZE",
                "aliases": ["ACME TRDG. F.Z.E."],
                "country": "AE",
                "addresses": ["PO Box 1234, Jebel Ali Free Zone, Dubai"],
                "identifiers": [{"type": "registration", "value": "FZE-12345"}],
                "birth_date": "2009-04",
                "nationality": "AE"
            },
            "reason": "diversion-risk",
            "categories": ["3A001"],
            "legal_basis": "Regulation (EU) 2021/821 Art. 4",
            "items": "Frequency changers",
            "remarks": "Procurement front",
            "contact": "desk@aa-export.example",
            "distribution": {"scope": "groups", "groups": ["eu"], "max_hops": 0, "sensitivity": "restricted"},
            "review_by": "2027-06-30"
        }))
    );
    // Blank line 2 is skipped; names are trimmed, aliases equal to the name dropped,
    // country codes upper-cased, identifier types lower-cased.
    let fatima = row(&p, "J-2");
    assert_eq!(fatima.location, Location::Line(3));
    assert_eq!(
        fatima.draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "Фатима Ахмедова",
                "aliases": ["Fatima Akhmedova"],
                "nationality": "TJ",
                "identifiers": [{"type": "passport", "value": "P1234567"}]
            },
            "reason": "denial"
        }))
    );
    // An export-shaped line: export-only keys ignored, entry_id stands in for source_id.
    let export = row(&p, "0123456789abcdef0123456789abcdef");
    assert_eq!(export.location, Location::Line(4));
    assert_eq!(
        export.draft,
        draft(json!({
            "subject": {"kind": "vessel", "name": "Sea Falcon", "country": "PA"},
            "reason": "sanctions"
        }))
    );
    // No reason in the line: the default one.
    let nour = row(&p, "J-4");
    assert_eq!(nour.draft.reason, Reason::WmdEndUse);
    assert_eq!(nour.draft.subject.name, "نور الهدى");
}

#[test]
fn jsonl_export_of_drafts_round_trips() {
    // What an export prints (the draft plus export-only keys) parses back to the draft.
    let p = parse(
        Format::Jsonl,
        GOOD_JSONL,
        &ImportDefaults {
            reason: Some(Reason::Other),
            ..defaults()
        },
    )
    .unwrap();
    let mut lines = String::new();
    for (i, r) in p.rows.iter().enumerate() {
        let mut v = serde_json::to_value(&r.draft).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("entry_id".into(), json!(format!("{:032x}", i)));
        o.insert("origin".into(), json!("AA-EXPORT"));
        o.insert("version".into(), json!(1));
        o.insert("status".into(), json!("active"));
        o.insert("record_id".into(), json!("00".repeat(32)));
        o.insert("issued_at".into(), json!("2026-11-21T10:00:00.000Z"));
        o.insert("updated_at".into(), json!("2026-11-21T10:00:00.000Z"));
        o.insert("review_due".into(), json!(false));
        o.insert("disputed".into(), json!(false));
        o.insert("withheld".into(), json!([]));
        lines.push_str(&serde_json::to_string(&v).unwrap());
        lines.push('\n');
    }
    let again = parse(Format::Jsonl, lines.as_bytes(), &defaults()).unwrap();
    assert!(again.errors.is_empty(), "{:#?}", again.errors);
    let before: Vec<&EntryDraft> = p.rows.iter().map(|r| &r.draft).collect();
    let after: Vec<&EntryDraft> = again.rows.iter().map(|r| &r.draft).collect();
    assert_eq!(before, after);
}

#[test]
fn jsonl_bad_lines_are_reported_and_good_lines_kept() {
    let p = parse(Format::Jsonl, BAD_JSONL, &defaults()).unwrap();
    assert_eq!(ids(&p), ["K-1", "K-11"]);
    assert_error(&p, Location::Line(2), Some("K-2"), "subject.nickname");
    assert_error(&p, Location::Line(3), Some("K-3"), "colour");
    assert_error(&p, Location::Line(4), None, "JSON");
    assert_error(&p, Location::Line(5), None, "source_id");
    assert_error(&p, Location::Line(6), Some("K-1"), "duplicate source_id");
    assert_error(&p, Location::Line(7), Some("K-7"), "subject.birth_date");
    assert_error(&p, Location::Line(8), Some("K-8"), "subject.kind");
    assert_error(&p, Location::Line(9), None, "JSON object");
    assert_error(&p, Location::Line(10), Some("K-10"), "subject.name");
    assert_error(&p, Location::Line(12), Some("K-12"), "distribution.groups");
    assert_error(&p, Location::Line(13), Some("K-13"), "reason");
    assert_eq!(p.errors.len(), 11);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("Narnia"));
}

#[test]
fn ftm_fixture_parses_into_the_expected_drafts() {
    let p = parse(Format::Ftm, GOOD_FTM, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "test_list");
    // Address, Sanction and the non-target relative.
    assert_eq!(p.skipped, 3);
    assert_eq!(ids(&p), ["NK-aaa", "NK-bbb", "NK-ccc"]);
    assert_eq!(
        row(&p, "NK-aaa").draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "Алексей Николаевич Смирнов",
                "aliases": ["Aleksei Nikolaevich Smirnov", "Alexei Smirnov", "Lyosha"],
                "country": "RU",
                "addresses": ["Ulitsa Lenina 1, Moskva"],
                "identifiers": [
                    {"type": "passport", "value": "4501123456"},
                    {"type": "national_id", "value": "770012345678"}
                ],
                "birth_date": "1968-03-14",
                "nationality": "RU"
            },
            "reason": "sanctions",
            "remarks": "Fictional test person."
        }))
    );
    let company = row(&p, "NK-bbb");
    assert_eq!(company.location, Location::Line(2));
    assert_eq!(
        company.draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "شركة النور للتجارة",
                "aliases": ["Al-Nour Trading Company"],
                "country": "AE",
                "identifiers": [
                    {"type": "registration", "value": "CN-998877"},
                    {"type": "lei", "value": "5493001KJTIIGC8Y1R12"},
                    {"type": "tax_id", "value": "100200300400003"}
                ],
                "birth_date": "2011"
            },
            "reason": "sanctions"
        }))
    );
    let vessel = row(&p, "NK-ccc");
    assert_eq!(vessel.location, Location::Line(4));
    assert_eq!(
        vessel.draft.subject.country.as_ref().unwrap().as_str(),
        "KP"
    );
    assert_eq!(
        vessel.draft.subject.identifiers[0].canonical(),
        "imo:9312345"
    );

    // The caller's list name and reason win.
    let d = ImportDefaults {
        reason: Some(Reason::Denial),
        source_list: Some("opensanctions-test".to_owned()),
        ..defaults()
    };
    let p = parse(Format::Ftm, GOOD_FTM, &d).unwrap();
    assert_eq!(p.source_list, "opensanctions-test");
    assert!(p.rows.iter().all(|r| r.draft.reason == Reason::Denial));
}

#[test]
fn ftm_bad_lines_are_reported_and_good_lines_kept() {
    let p = parse(Format::Ftm, BAD_FTM, &defaults()).unwrap();
    assert_eq!(ids(&p), ["F-1", "F-8"]);
    // Two entries from different datasets: the generic list name.
    assert_eq!(p.source_list, "ftm");
    assert_error(&p, Location::Line(2), None, "JSON");
    assert_error(&p, Location::Line(3), None, "id");
    assert_error(&p, Location::Line(4), Some("F-4"), "schema");
    assert_error(&p, Location::Line(5), Some("F-5"), "properties.name");
    assert_error(&p, Location::Line(6), Some("F-1"), "duplicate source_id");
    assert_error(&p, Location::Line(7), Some("F-7"), "properties");
    assert_error(&p, Location::Line(9), None, "JSON object");
    assert_eq!(p.errors.len(), 7);
    assert_eq!(
        p.warnings.iter().map(|w| w.location).collect::<Vec<_>>(),
        [Location::Line(1), Location::Line(8)]
    );
}

/// Issue 24: country and date forms that official lists write were "not a known
/// country" or "not a date" and left out. Now each maps, what the entry's one field
/// cannot carry (a second nationality, an approximate date, a range) is kept in the
/// remarks as listed, and no warning is left.
#[test]
fn official_list_country_and_date_forms_map_without_loss() {
    let p = parse(Format::UnXml, ODD_UN, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert!(p.warnings.is_empty(), "{:#?}", p.warnings);
    let subject = |id: &str| row(&p, id).draft.subject.clone();
    let code =
        |c: &Option<wlnode_crypto::model::CountryCode>| c.as_ref().map(|c| c.as_str().to_owned());
    let one = subject("9200001");
    assert_eq!(code(&one.nationality).as_deref(), Some("AF"), "Afghan");
    assert_eq!(
        one.birth_date.unwrap().to_string(),
        "1966-02-02",
        "xsd:date with a zone"
    );
    assert_eq!(row(&p, "9200001").draft.remarks, None, "nothing left over");
    let two = row(&p, "9200002");
    assert_eq!(
        code(&two.draft.subject.nationality).as_deref(),
        Some("SO"),
        "Somali"
    );
    assert_eq!(two.draft.subject.birth_date.unwrap().to_string(), "1970");
    assert_eq!(
        two.draft.remarks.as_deref(),
        Some(
            "Date of birth as listed: circa 1970; between 1968 and 1972\n\
             Nationality as listed: Somali; Sultanate of Oman"
        )
    );
    let three = subject("9200003");
    assert_eq!(
        code(&three.nationality).as_deref(),
        Some("IQ"),
        "(in custody)"
    );
    assert_eq!(three.birth_date.unwrap().to_string(), "1971-03-04");
    let entity = subject("9300001");
    assert_eq!(code(&entity.country).as_deref(), Some("HK"));
    assert_eq!(code(&subject("9300002").country).as_deref(), Some("VG"));
    // The field summary `wlnode import` prints.
    let field = |f: &str| p.summary.get(f).cloned().unwrap_or_default();
    assert_eq!(
        field("nationality"),
        wlnode_import::FieldSummary {
            mapped: 3,
            kept_in_remarks: 2,
            dropped: 0,
            cut: 0
        }
    );
    assert_eq!(field("birth_date").mapped, 3);
    assert_eq!(field("birth_date").kept_in_remarks, 1);
    assert_eq!(field("country").mapped, 5);
}

#[test]
fn un_fixture_parses_into_the_expected_drafts() {
    let p = parse(Format::UnXml, GOOD_UN, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "un-sc");
    assert_eq!(ids(&p), ["9000001", "9000002", "9100001"]);
    let korvan = row(&p, "9000001");
    assert_eq!(korvan.location, Location::Record(1));
    assert_eq!(
        korvan.draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "KORVAN DELIK ZARO",
                "aliases": ["코르반 델릭", "Korvan Delik"],
                "country": "KP",
                "addresses": ["Pyongyang, Democratic People's Republic of Korea"],
                "identifiers": [
                    {"type": "passport", "value": "563210184"},
                    {"type": "national_id", "value": "KP-7788"},
                    {"type": "other", "value": "DL 55"}
                ],
                "birth_date": "1964-07-17",
                "nationality": "KP"
            },
            "reason": "sanctions",
            "legal_basis": "UN Security Council DPRK list, KPi.901",
            "remarks": "Fictional person for tests. Procurement agent & courier."
        }))
    );
    // Arabic name; an unknown nationality is kept in the remarks and the address
    // country used; the approximate year is kept as listed too.
    let arabic = row(&p, "9000002");
    assert_eq!(arabic.draft.subject.name, "عبد الرحمن الفلاني");
    assert_eq!(arabic.draft.subject.nationality, None);
    assert_eq!(
        arabic.draft.remarks.as_deref(),
        Some("Date of birth as listed: circa 1975\nNationality as listed: Atlantis")
    );
    assert_eq!(
        arabic.draft.subject.country.as_ref().unwrap().as_str(),
        "SY"
    );
    assert_eq!(arabic.draft.subject.birth_date.unwrap().to_string(), "1975");
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].location, Location::Record(2));
    // Entities are numbered after the individuals; the alias equal to the name is dropped.
    let pine = row(&p, "9100001");
    assert_eq!(pine.location, Location::Record(3));
    assert_eq!(
        pine.draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "GREEN PINE TEST ASSOCIATED CORPORATION",
                "aliases": ["Чхонсон Тест"],
                "country": "KP",
                "addresses": ["Nungrado, Pyongyang, Democratic People's Republic of Korea"]
            },
            "reason": "sanctions",
            "legal_basis": "UN Security Council DPRK list, KPe.950",
            "remarks": "Fictional entity for tests."
        }))
    );
}

#[test]
fn un_bad_records_are_reported_and_good_records_kept() {
    let p = parse(Format::UnXml, BAD_UN, &defaults()).unwrap();
    assert_eq!(ids(&p), ["8000001", "8100002"]);
    assert_eq!(row(&p, "8100002").location, Location::Record(5));
    assert_eq!(
        row(&p, "8100002")
            .draft
            .subject
            .country
            .as_ref()
            .unwrap()
            .as_str(),
        "IR"
    );
    assert_error(&p, Location::Record(2), None, "DATAID");
    assert_error(&p, Location::Record(3), Some("8000003"), "name");
    assert_error(
        &p,
        Location::Record(4),
        Some("8000001"),
        "duplicate source_id",
    );
    assert_error(
        &p,
        Location::Record(6),
        Some("8100003"),
        "subject.aliases[0]",
    );
    assert_eq!(p.errors.len(), 4);
}

#[test]
fn ofac_fixture_parses_into_the_expected_drafts() {
    let p = parse(Format::OfacXml, GOOD_OFAC, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "ofac-sdn");
    assert_eq!(ids(&p), ["90001", "90002", "90003"]);
    // The aircraft.
    assert_eq!(p.skipped, 1);
    assert_eq!(
        row(&p, "90001").draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "Dmitri VOLKOV-TESTOV",
                "aliases": ["Дмитрий Волков-Тестов", "DIMA"],
                "country": "RU",
                "addresses": ["Moscow, Russia"],
                "identifiers": [
                    {"type": "passport", "value": "7100123456"},
                    {"type": "tax_id", "value": "771234567890"},
                    {"type": "other", "value": "SWIFT/BIC: TESTRUMM"}
                ],
                "birth_date": "1970-01-12",
                "nationality": "RU"
            },
            "reason": "sanctions",
            "legal_basis": "OFAC SDN programs: RUSSIA-EO14024, CYBER2",
            // The second date of birth was dropped before issue 24; it is kept now.
            "remarks": "Fictional individual for tests.\n\nDate of birth as listed: 12 Jan 1970; circa 1969"
        }))
    );
    assert_eq!(
        row(&p, "90002").draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "AL-MANARA TEST SHIPPING LLC",
                "aliases": ["شركة المنارة للشحن"],
                "country": "AE",
                "addresses": ["Office 12, Test Tower, Dubai, United Arab Emirates"],
                "identifiers": [{"type": "registration", "value": "CR-445566"}],
                "birth_date": "2004-03"
            },
            "reason": "sanctions",
            "legal_basis": "OFAC SDN program: SDGT"
        }))
    );
    let vessel = row(&p, "90003");
    assert_eq!(vessel.location, Location::Record(3));
    assert_eq!(
        vessel.draft,
        draft(json!({
            "subject": {
                "kind": "vessel",
                "name": "OCEAN TEST",
                "country": "PA",
                "identifiers": [{"type": "imo", "value": "9187629"}]
            },
            "reason": "sanctions",
            "legal_basis": "OFAC SDN program: IRAN"
        }))
    );
}

#[test]
fn ofac_bad_records_are_reported_and_good_records_kept() {
    // The fixture uses a namespace prefix on every element.
    let p = parse(Format::OfacXml, BAD_OFAC, &defaults()).unwrap();
    assert_eq!(ids(&p), ["70001", "70006"]);
    assert_eq!(row(&p, "70006").location, Location::Record(6));
    assert_eq!(row(&p, "70006").draft.subject.name, "Good SECOND");
    assert_error(&p, Location::Record(2), None, "uid");
    assert_error(&p, Location::Record(3), Some("70003"), "sdnType");
    assert_error(&p, Location::Record(4), Some("70004"), "lastName");
    assert_error(
        &p,
        Location::Record(5),
        Some("70001"),
        "duplicate source_id",
    );
    assert_eq!(p.errors.len(), 4);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("1965 to 1967"));
}

#[test]
fn xml_whole_file_failures_name_what_is_wrong() {
    let d = defaults();
    assert!(matches!(
        parse(Format::UnXml, b"source_id,kind,name\n", &d),
        Err(ImportError::NotXml(_))
    ));
    assert!(matches!(
        parse(Format::OfacXml, b"", &d),
        Err(ImportError::NotXml(_))
    ));
    let err = parse(Format::OfacXml, GOOD_UN, &d).unwrap_err();
    assert_eq!(
        err,
        ImportError::WrongRoot {
            format: Format::OfacXml,
            expected: "sdnList",
            found: "CONSOLIDATED_LIST".to_owned()
        }
    );
    assert!(err.to_string().contains("<sdnList>"));
    // A truncated download is refused as a whole rather than imported in part.
    let cut = &GOOD_OFAC[..GOOD_OFAC.len() / 2];
    assert!(matches!(
        parse(Format::OfacXml, cut, &d),
        Err(ImportError::Xml {
            record: Some(1),
            ..
        })
    ));
    let broken = String::from_utf8(GOOD_UN.to_vec())
        .unwrap()
        .replace("</SECOND_NAME>", "</SECOND>");
    let err = parse(Format::UnXml, broken.as_bytes(), &d).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Xml {
                line: 9,
                record: Some(1),
                ..
            }
        ),
        "{err}"
    );
}

fn code(c: &Option<wlnode_crypto::model::CountryCode>) -> Option<&str> {
    c.as_ref().map(wlnode_crypto::model::CountryCode::as_str)
}

fn summary(p: &Parsed, field: &str) -> (usize, usize, usize, usize) {
    let f = p.summary.get(field).cloned().unwrap_or_default();
    (f.mapped, f.kept_in_remarks, f.dropped, f.cut)
}

#[test]
fn eu_fixture_parses_into_the_expected_drafts() {
    let p = parse(Format::EuXml, GOOD_EU, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "eu-fsf");
    assert_eq!(ids(&p), ["900001", "900002", "900003", "900004", "900005"]);
    let testerov = row(&p, "900001");
    assert_eq!(testerov.location, Location::Record(1));
    assert_eq!(
        testerov.draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "Oleg Ivanovich TESTEROV",
                // The weak alias is an alias too; the second strong name is not primary.
                "aliases": ["Олег Иванович ТЕСТЕРОВ", "Oleg Testeroff"],
                "country": "RU",
                "addresses": ["Test Street 1, Moscow, 101000, RUSSIAN FEDERATION"],
                "identifiers": [
                    {"type": "passport", "value": "7100999999"},
                    {"type": "tax_id", "value": "771999999999"}
                ],
                "birth_date": "1966-02-02",
                "nationality": "RU"
            },
            "reason": "sanctions",
            "legal_basis": "EU financial sanctions: 2022/330 (OJ L53) (UKR) \
                https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=OJ:L:2022:053:FULL; \
                EU reference EU.9001.01, designated 2022-02-28",
            // Attribute and text entities unescaped; what no field carries is kept.
            "remarks": "Fictional person for tests. Oversees \"test\" policy & budgets.\n\
                Function: Deputy Minister of Test Affairs\n\
                Gender: M\n\
                National passport 7100999999: RUSSIAN FEDERATION\n\
                Place of birth: Testograd, RUSSIAN FEDERATION"
        }))
    );
    assert_eq!(
        row(&p, "900002").draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "HARBOUR TEST TRADING LIMITED",
                "aliases": ["Harbour Test Trading Co."],
                "country": "HK",
                "addresses": [
                    "Unit 5, Test Tower, PO Box 1234, Kowloon, Hong Kong Special Administrative Region"
                ],
                "identifiers": [
                    {"type": "registration", "value": "HK-445566"},
                    {"type": "other", "value": "SWIFT BIC: HTTLHKHH"}
                ]
            },
            "reason": "sanctions",
            // publicationUrl as an attribute or as a child element.
            "legal_basis": "EU financial sanctions: 2017/1509 (OJ L224) (PRK) \
                https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=OJ:L:2017:224:FULL; \
                2018/1009 (OJ L181) (PRK); EU reference EU.9002.02, UN reference KPe.999, \
                designated 2016-06-01",
            "remarks": "Name remark: Low quality alias.\n\
                Contact (PHONE): +852 0000 0000\n\
                Registration Number HK-445566: HONG KONG"
        }))
    );
    // The official-list oddities: a demonym without a code, circa and range dates.
    let one = &row(&p, "900003").draft;
    assert_eq!(code(&one.subject.nationality), Some("AF"), "Afghan");
    assert_eq!(one.subject.birth_date.unwrap().to_string(), "1970");
    assert_eq!(
        one.remarks.as_deref(),
        Some("Title: Mullah\n\nDate of birth as listed: circa 1970; between 1968 and 1972")
    );
    // An ISO code is used as it is; a description that says more is kept; an
    // xsd:date with a time zone reads.
    let two = &row(&p, "900004").draft;
    assert_eq!(code(&two.subject.nationality), Some("IQ"), "(in custody)");
    assert_eq!(two.subject.birth_date.unwrap().to_string(), "1971-03-04");
    assert_eq!(
        two.remarks.as_deref(),
        Some("Citizenship as listed: Iraq (in custody); Sultanate of Oman")
    );
    // A `00` code: the description goes through the country table; an unknown one is
    // kept with a warning; a non-Gregorian date is kept, not misread; zero parts of a
    // date are unknown parts.
    let three = &row(&p, "900005").draft;
    assert_eq!(three.subject.nationality, None);
    assert_eq!(
        code(&three.subject.country),
        Some("VG"),
        "Virgin Islands, British"
    );
    assert_eq!(three.subject.birth_date.unwrap().to_string(), "1975");
    assert_eq!(
        three.remarks.as_deref(),
        Some(
            "Date of birth as listed: 1975; 1394 (ISLAMIC calendar)\n\
             Citizenship as listed: Atlantis"
        )
    );
    assert_eq!(p.warnings.len(), 1, "{:#?}", p.warnings);
    assert_eq!(p.warnings[0].location, Location::Record(5));
    assert!(p.warnings[0].message.contains("citizenship"));
    assert!(p.warnings[0].message.contains("Atlantis"));
    // The field summary `wlnode import` prints.
    assert_eq!(summary(&p, "nationality"), (3, 2, 0, 0));
    assert_eq!(summary(&p, "country"), (5, 0, 0, 0));
    assert_eq!(summary(&p, "birth_date"), (4, 2, 0, 0));
    assert_eq!(summary(&p, "aliases"), (3, 0, 0, 0));
    assert_eq!(summary(&p, "addresses"), (4, 0, 0, 0));
    assert_eq!(summary(&p, "identifiers"), (4, 0, 0, 0));
    assert_eq!(summary(&p, "details"), (0, 3, 0, 0));
}

#[test]
fn eu_bad_records_are_reported_and_good_records_kept() {
    // The fixture uses a namespace prefix on every element.
    let p = parse(Format::EuXml, BAD_EU, &defaults()).unwrap();
    assert_eq!(ids(&p), ["800001", "EU.8007.07"]);
    assert_eq!(row(&p, "EU.8007.07").location, Location::Record(7));
    assert_eq!(row(&p, "EU.8007.07").draft.subject.name, "Good SECOND");
    assert_error(&p, Location::Record(2), None, "logicalId");
    assert_error(&p, Location::Record(3), Some("800003"), "subjectType");
    assert_error(&p, Location::Record(4), Some("800004"), "no name");
    assert_error(
        &p,
        Location::Record(5),
        Some("800001"),
        "duplicate source_id",
    );
    assert_error(
        &p,
        Location::Record(6),
        Some("800006"),
        "subjectType: missing",
    );
    assert_eq!(p.errors.len(), 5);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("1965 to 1967"));
    assert_eq!(
        row(&p, "EU.8007.07").draft.remarks.as_deref(),
        Some("Date of birth as listed: 1965 to 1967")
    );
    assert_eq!(summary(&p, "birth_date"), (0, 1, 0, 0));
}

#[test]
fn uk_fixture_parses_into_the_expected_drafts() {
    let p = parse(Format::UkXml, GOOD_UK, &defaults()).unwrap();
    assert!(p.errors.is_empty(), "{:#?}", p.errors);
    assert_eq!(p.source_list, "uk-sanctions");
    assert_eq!(
        ids(&p),
        [
            "RUS9001", "DPR9002", "DPR9003", "AFG9004", "IRQ9005", "GHR9006"
        ]
    );
    let testerov = row(&p, "RUS9001");
    assert_eq!(testerov.location, Location::Record(1));
    assert_eq!(
        testerov.draft,
        draft(json!({
            "subject": {
                "kind": "person",
                "name": "Oleg Ivanovich TESTEROV",
                // The primary name variation equal to the name is not an alias.
                "aliases": ["Oleg TESTEROFF", "Олег Иванович ТЕСТЕРОВ"],
                "country": "RU",
                "addresses": ["Test Street 1, Moscow, 101000, Russia"],
                "identifiers": [
                    {"type": "passport", "value": "7100999999"},
                    {"type": "national_id", "value": "771999999999"}
                ],
                "birth_date": "1966-02-02",
                "nationality": "RU"
            },
            "reason": "sanctions",
            "legal_basis": "UK Sanctions List, Russia: RUS9001; OFSI group 99001; \
                measures: Asset freeze, Trust services sanctions, Travel Ban; \
                designation source UK; designated 15/03/2022",
            "remarks": "Fictional person for tests.\n\
                UK statement of reasons: Involved in fictional test activity & its funding.\n\
                Passport 7100999999: Russian passport, issued 2015\n\
                Position: Deputy Minister of Test Affairs\n\
                Gender: Male\n\
                Place of birth: Testograd, Russia"
        }))
    );
    assert_eq!(
        row(&p, "DPR9002").draft,
        draft(json!({
            "subject": {
                "kind": "organization",
                "name": "HARBOUR TEST TRADING LIMITED",
                "aliases": ["Harbour Test Trading Co."],
                "country": "HK",
                "addresses": [
                    "Unit 5, Test Tower, Kowloon, Hong Kong Special Administrative Region"
                ],
                "identifiers": [{"type": "registration", "value": "HK-445566"}]
            },
            "reason": "sanctions",
            "legal_basis": "UK Sanctions List, Democratic People's Republic of Korea: DPR9002; \
                UN reference KPe.999; measures: Asset freeze; designation source UN; \
                designated 29/06/2017",
            "remarks": "Type of entity: Trading company\n\
                Parent company: Test Holdings Group\n\
                Phone: +852 0000 0000"
        }))
    );
    // A ship: its flag ("Sultanate of Oman") is the country; IMO prefix dropped.
    assert_eq!(
        row(&p, "DPR9003").draft,
        draft(json!({
            "subject": {
                "kind": "vessel",
                "name": "OCEAN TEST",
                "aliases": ["Sea Trial"],
                "country": "OM",
                "identifiers": [{"type": "imo", "value": "9187629"}]
            },
            "reason": "sanctions",
            "legal_basis": "UK Sanctions List, Democratic People's Republic of Korea: DPR9003; \
                measures: Prohibition of port entry, Specification of ship; \
                designation source UN; designated 03/10/2017",
            "remarks": "Type of ship: Bulk Carrier\n\
                Previous flag: Panama\n\
                Current owner or operator: Test Shipping Ltd\n\
                Year built: 2001"
        }))
    );
    // The official-list oddities.
    let one = &row(&p, "AFG9004").draft;
    assert_eq!(code(&one.subject.nationality), Some("AF"), "Afghan");
    assert_eq!(one.subject.birth_date.unwrap().to_string(), "1970");
    assert_eq!(
        one.remarks.as_deref(),
        Some("Title: Mullah\n\nDate of birth as listed: circa 1970; dd/mm/1968")
    );
    let two = &row(&p, "IRQ9005").draft;
    assert_eq!(code(&two.subject.nationality), Some("IQ"), "(in custody)");
    assert_eq!(two.subject.birth_date.unwrap().to_string(), "1971-03-04");
    assert_eq!(
        two.remarks.as_deref(),
        Some("Nationality as listed: Iraq (in custody)")
    );
    let three = &row(&p, "GHR9006").draft;
    assert_eq!(three.subject.nationality, None);
    assert_eq!(
        code(&three.subject.country),
        Some("VG"),
        "Virgin Islands, British"
    );
    assert_eq!(
        three.subject.birth_date.unwrap().to_string(),
        "1975-04",
        "dd/04/1975"
    );
    assert_eq!(
        three.remarks.as_deref(),
        Some("Nationality as listed: Atlantis")
    );
    assert_eq!(p.warnings.len(), 1, "{:#?}", p.warnings);
    assert_eq!(p.warnings[0].location, Location::Record(6));
    assert!(p.warnings[0].message.contains("Atlantis"));
    assert_eq!(summary(&p, "nationality"), (3, 2, 0, 0));
    assert_eq!(summary(&p, "country"), (6, 0, 0, 0));
    assert_eq!(summary(&p, "birth_date"), (4, 1, 0, 0));
    assert_eq!(summary(&p, "aliases"), (4, 0, 0, 0));
    assert_eq!(summary(&p, "addresses"), (4, 0, 0, 0));
    assert_eq!(summary(&p, "identifiers"), (4, 0, 0, 0));
    assert_eq!(summary(&p, "details"), (0, 4, 0, 0));
}

#[test]
fn uk_bad_records_are_reported_and_good_records_kept() {
    let p = parse(Format::UkXml, BAD_UK, &defaults()).unwrap();
    assert_eq!(ids(&p), ["BAD0001", "BAD0007"]);
    assert_eq!(row(&p, "BAD0007").location, Location::Record(7));
    assert_eq!(row(&p, "BAD0007").draft.subject.name, "Good SECOND");
    assert_error(&p, Location::Record(2), None, "UniqueID");
    assert_error(
        &p,
        Location::Record(3),
        Some("BAD0003"),
        "IndividualEntityShip",
    );
    assert_error(&p, Location::Record(4), Some("BAD0004"), "no name");
    assert_error(
        &p,
        Location::Record(5),
        Some("BAD0001"),
        "duplicate source_id",
    );
    assert_error(
        &p,
        Location::Record(6),
        Some("BAD0006"),
        "IndividualEntityShip: missing",
    );
    assert_eq!(p.errors.len(), 5);
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("1965 to 1967"));
    assert_eq!(summary(&p, "birth_date"), (0, 1, 0, 0));
}

#[test]
fn eu_and_uk_whole_file_failures_name_what_is_wrong() {
    let d = defaults();
    for (format, good, root) in [
        (Format::EuXml, GOOD_EU, "export"),
        (Format::UkXml, GOOD_UK, "Designations"),
    ] {
        let err = parse(format, GOOD_OFAC, &d).unwrap_err();
        assert_eq!(
            err,
            ImportError::WrongRoot {
                format,
                expected: root,
                found: "sdnList".to_owned()
            }
        );
        assert!(matches!(
            parse(format, b"", &d),
            Err(ImportError::NotXml(_))
        ));
        assert!(matches!(
            parse(format, b"\xff<export/>", &d),
            Err(ImportError::NotUtf8 { line: 1, offset: 0 })
        ));
        // A truncated download is refused as a whole rather than imported in part.
        let text = std::str::from_utf8(good).unwrap();
        // Inside the third EU record, the fourth UK one.
        let cut = text
            .find("<citizenship countryIso2Code=\"00\" countryDescription=\"Afghan\"")
            .or_else(|| text.find("<Titles>"))
            .unwrap();
        let err = parse(format, &good[..cut], &d).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::Xml {
                    record: Some(3 | 4),
                    ..
                }
            ),
            "{format}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    // A malformed attribute names its line and record.
    let broken = String::from_utf8(GOOD_EU.to_vec())
        .unwrap()
        .replace("logicalId=\"32\"", "logicalId=\"32\" logicalId=\"33\"");
    let err = parse(Format::EuXml, broken.as_bytes(), &d).unwrap_err();
    let line = std::str::from_utf8(GOOD_EU)
        .unwrap()
        .lines()
        .position(|l| l.contains("logicalId=\"32\""))
        .unwrap()
        + 1;
    assert!(
        matches!(err, ImportError::Xml { line: l, record: Some(3), .. } if l == line),
        "{err}"
    );
    let broken = String::from_utf8(GOOD_EU.to_vec()).unwrap().replace(
        "strong=\"true\" logicalId=\"41\"",
        "strong=\"t&rue\" logicalId=\"41\"",
    );
    let err = parse(Format::EuXml, broken.as_bytes(), &d).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Xml {
                record: Some(4),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("strong"), "{err}");
}

/// Every cut of the EU and UK fixtures before the root closes is refused with a typed
/// error (never a panic, never a partial import).
#[test]
fn eu_and_uk_truncations_are_typed_errors() {
    for (format, good) in [(Format::EuXml, GOOD_EU), (Format::UkXml, GOOD_UK)] {
        let text = std::str::from_utf8(good).unwrap();
        let closed = text.rfind("</").unwrap();
        for cut in (0..closed).step_by(3) {
            match parse(format, &good[..cut], &defaults()) {
                Err(
                    ImportError::Xml { .. } | ImportError::NotXml(_) | ImportError::NotUtf8 { .. },
                ) => {}
                other => panic!("{format} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn duplicate_source_ids_keep_the_first_row() {
    let csv = b"source_id,kind,name,reason\nX,person,First,denial\nX,person,Second,denial\n";
    let p = parse(Format::Csv, csv, &defaults()).unwrap();
    assert_eq!(p.rows.len(), 1);
    assert_eq!(p.rows[0].draft.subject.name, "First");
    assert_eq!(p.errors[0].location, Location::Line(3));
    assert!(p.errors[0].message.contains("first seen at line 2"));

    let jsonl = br#"{"source_id":"X","subject":{"kind":"person","name":"First"},"reason":"denial"}
{"entry_id":"X","subject":{"kind":"person","name":"Second"},"reason":"denial"}"#;
    let p = parse(Format::Jsonl, jsonl, &defaults()).unwrap();
    assert_eq!(ids(&p), ["X"]);
    assert_eq!(p.errors[0].location, Location::Line(2));
}

#[test]
fn entry_ids_are_deterministic_and_differ_by_origin_list_and_id() {
    let aa = AgencyCode::new("AA-EXPORT").unwrap();
    let bb = AgencyCode::new("BB-CUSTOMS").unwrap();
    let id = entry_id_for(&aa, "csv", "AA-001");
    // SHA-256("wlnode/import/v1\0AA-EXPORT\0csv\0AA-001"), first 16 bytes.
    assert_eq!(id.to_hex(), "507b23801af3fca4e212b28d40805a94");
    assert_eq!(id, entry_id_for(&aa, "csv", "AA-001"));
    assert_ne!(id, entry_id_for(&bb, "csv", "AA-001"));
    assert_ne!(id, entry_id_for(&aa, "jsonl", "AA-001"));
    assert_ne!(id, entry_id_for(&aa, "csv", "AA-002"));
    // The separators keep the parts apart.
    assert_ne!(entry_id_for(&aa, "ab", "c"), entry_id_for(&aa, "a", "bc"));
    let p = parse(Format::Csv, GOOD_CSV, &defaults()).unwrap();
    assert_eq!(p.entry_id(&aa, &p.rows[0]), id);
}

#[test]
fn every_fixture_row_validates() {
    for (format, bytes) in FIXTURES {
        let p = parse(*format, bytes, &defaults()).unwrap();
        assert!(!p.rows.is_empty(), "{format}");
        for r in &p.rows {
            r.draft.validate().unwrap();
        }
    }
}

/// Parses `bytes` in every format; panics only through the checks here.
fn parse_everything(bytes: &[u8]) {
    for format in Format::ALL {
        if let Ok(p) = parse(*format, bytes, &defaults()) {
            for r in &p.rows {
                assert!(r.draft.validate().is_ok(), "{format}: {r:?}");
                assert!(!r.source_id.is_empty());
            }
            let mut seen = std::collections::HashSet::new();
            assert!(p.rows.iter().all(|r| seen.insert(r.source_id.clone())));
        }
    }
}

/// A small deterministic generator, so the mutation loop needs no seed file.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    const SPECIAL: &[u8] = b"<>/&;:,\"'{}[]\n\r\t \\#-0x\xff\xc3\x00";
    let mut out = input.to_vec();
    for _ in 0..=rng.below(6) {
        let len = out.len();
        let at = rng.below(len);
        match rng.below(6) {
            0 if len > 0 => out[at] = SPECIAL[rng.below(SPECIAL.len())],
            1 if len > 0 => out[at] = u8::try_from(rng.below(256)).unwrap(),
            2 => {
                let end = (at + rng.below(64)).min(len);
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(200)).min(len);
                let copy = out[at..end].to_vec();
                let to = rng.below(out.len());
                out.splice(to..to, copy);
            }
            4 => out.truncate(at),
            _ => out.insert(at.min(len), SPECIAL[rng.below(SPECIAL.len())]),
        }
    }
    out
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for (_, bytes) in FIXTURES {
        for _ in 0..150 {
            parse_everything(&mutate(&mut rng, bytes));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        parse_everything(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[<>/a-zA-Z_0-9 \n\",;:{}\\[\\]&#]{0,400}") {
        parse_everything(text.as_bytes());
    }

    #[test]
    fn eu_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..10_000) {
        let _ = parse(Format::EuXml, &bytes, &defaults());
        let _ = parse(Format::EuXml, &GOOD_EU[..cut.min(GOOD_EU.len())], &defaults());
    }

    #[test]
    fn uk_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..10_000) {
        let _ = parse(Format::UkXml, &bytes, &defaults());
        let _ = parse(Format::UkXml, &GOOD_UK[..cut.min(GOOD_UK.len())], &defaults());
    }

    #[test]
    fn fixture_prefixes_never_panic(which in 0..FIXTURES.len(), cut in 0usize..10_000) {
        let bytes = FIXTURES[which].1;
        parse_everything(&bytes[..cut.min(bytes.len())]);
    }
}

#[test]
fn on_hit_is_read_from_csv_and_jsonl_and_an_unknown_value_names_the_field() {
    use wlnode_crypto::model::OnHit;
    let csv = b"source_id,kind,name,reason,on_hit\n\
        H-1,organization,Kestrel Notify Trading,denial,notify\n\
        H-2,organization,Osprey Silent Trading,denial,\n\
        H-3,organization,Heron Wrong Trading,denial,email\n";
    let p = parse(Format::Csv, csv, &defaults()).unwrap();
    assert_eq!(row(&p, "H-1").draft.on_hit, Some(OnHit::Notify));
    assert_eq!(row(&p, "H-2").draft.on_hit, None);
    assert_error(&p, Location::Line(4), Some("H-3"), "on_hit");
    let jsonl = concat!(
        r#"{"source_id":"J-1","subject":{"kind":"person","name":"Ann Notify"},"reason":"denial","on_hit":"notify"}"#,
        "\n",
        r#"{"source_id":"J-2","subject":{"kind":"person","name":"Bob Wrong"},"reason":"denial","on_hit":"mail"}"#,
        "\n"
    );
    let p = parse(Format::Jsonl, jsonl.as_bytes(), &defaults()).unwrap();
    assert_eq!(row(&p, "J-1").draft.on_hit, Some(OnHit::Notify));
    assert_error(&p, Location::Line(2), Some("J-2"), "on_hit");
}
