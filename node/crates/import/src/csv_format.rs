//! wlnode's own CSV layout, so that an agency can keep its watchlist in a spreadsheet
//! and load it in one go. The columns are documented in the module docs of `import`.

use crate::normalize::RowNotes;
use std::collections::BTreeSet;

use wlnode_crypto::model::{
    Category, Distribution, EntryDraft, GroupName, Identifier, Reason, Scope, Sensitivity, Subject,
};
use wlnode_crypto::time::Date;

use super::countries::country_code;
use super::normalize;
use super::{Collector, Format, ImportDefaults, ImportError, Location, Parsed};

/// Every column the CSV layout knows, in the documented order.
pub(crate) const COLUMNS: &[&str] = &[
    "source_id",
    "kind",
    "name",
    "aliases",
    "country",
    "addresses",
    "identifiers",
    "birth_date",
    "nationality",
    "reason",
    "categories",
    "legal_basis",
    "items",
    "remarks",
    "contact",
    "scope",
    "groups",
    "max_hops",
    "sensitivity",
    "review_by",
    "on_hit",
];

const REQUIRED: &[&str] = &["source_id", "kind", "name"];

/// Where each known column is in the file.
struct Header {
    /// For each entry of [`COLUMNS`], its index in the file's rows.
    index: Vec<Option<usize>>,
    width: usize,
}

impl Header {
    fn read(cells: &csv::StringRecord) -> Result<Self, ImportError> {
        let mut index = vec![None; COLUMNS.len()];
        for (position, cell) in cells.iter().enumerate() {
            let name = cell.trim().to_lowercase();
            let Some(known) = COLUMNS.iter().position(|c| *c == name) else {
                return Err(ImportError::UnknownColumn {
                    column: cell.to_owned(),
                    position: position + 1,
                });
            };
            match index.get_mut(known) {
                Some(slot @ None) => *slot = Some(position),
                _ => return Err(ImportError::DuplicateColumn(name)),
            }
        }
        let header = Self {
            index,
            width: cells.len(),
        };
        let missing: Vec<String> = REQUIRED
            .iter()
            .filter(|c| header.position(c).is_none())
            .map(|c| (*c).to_owned())
            .collect();
        if missing.is_empty() {
            Ok(header)
        } else {
            Err(ImportError::MissingColumns(missing))
        }
    }

    fn position(&self, column: &str) -> Option<usize> {
        let known = COLUMNS.iter().position(|c| *c == column)?;
        self.index.get(known).copied().flatten()
    }
}

/// One data row, read through the header.
struct Row<'a> {
    header: &'a Header,
    cells: &'a csv::StringRecord,
}

impl Row<'_> {
    /// The trimmed cell of `column`; `None` when the column is absent or the cell empty.
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.header.position(column)?;
        let v = self.cells.get(i)?.trim();
        (!v.is_empty()).then_some(v)
    }

    /// The `;`-separated items of `column`, trimmed, empty ones skipped.
    fn list(&self, column: &str) -> Vec<&str> {
        self.get(column)
            .map(|v| {
                v.split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(crate) fn parse(text: &str, defaults: &ImportDefaults) -> Result<Parsed, ImportError> {
    if text.trim().is_empty() {
        return Err(ImportError::EmptyCsv);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = Header::read(
        reader
            .headers()
            .map_err(|e| ImportError::CsvHeader(e.to_string()))?,
    )?;
    let mut out = Collector::default();
    let mut record = csv::StringRecord::new();
    loop {
        let line_before = usize::try_from(reader.position().line()).unwrap_or(usize::MAX);
        let byte_before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .and_then(|p| usize::try_from(p.line()).ok())
                    .unwrap_or(line_before);
                read_row(&header, &record, Location::Line(line), defaults, &mut out);
            }
            Err(e) => {
                let line = e
                    .position()
                    .and_then(|p| usize::try_from(p.line()).ok())
                    .unwrap_or(line_before);
                out.error(
                    Location::Line(line),
                    None,
                    format!("unreadable CSV row: {e}"),
                );
                // Stop rather than spin should the reader ever fail without moving on.
                if reader.is_done() || reader.position().byte() == byte_before {
                    break;
                }
            }
        }
    }
    Ok(out.finish(super::source_list(defaults, Format::Csv)))
}

fn read_row(
    header: &Header,
    cells: &csv::StringRecord,
    location: Location,
    defaults: &ImportDefaults,
    out: &mut Collector,
) {
    if cells.iter().all(|c| c.trim().is_empty()) {
        return;
    }
    let row = Row { header, cells };
    let source_id = row.get("source_id").map(str::to_owned);
    if cells.len() != header.width {
        out.error(
            location,
            source_id.as_deref(),
            format!(
                "the row has {} cells but the header names {} columns",
                cells.len(),
                header.width
            ),
        );
        return;
    }
    let Some(source_id) = source_id else {
        out.error(location, None, "source_id: missing");
        return;
    };
    out.row(location, source_id, |notes| draft(&row, defaults, notes));
}

fn draft(
    row: &Row<'_>,
    defaults: &ImportDefaults,
    notes: &mut RowNotes,
) -> Result<EntryDraft, String> {
    let kind_cell = row.get("kind").ok_or("kind: missing")?;
    let kind = normalize::subject_kind(kind_cell).ok_or_else(|| {
        format!("kind: {kind_cell:?} is not one of: person, organization, vessel")
    })?;
    let name = normalize::name(row.get("name").ok_or("name: missing")?);
    let aliases = normalize::aliases(&name, row.list("aliases"));
    // Values the entry's fields cannot carry, kept in its remarks as written.
    let mut kept = Vec::new();
    let country = optional_country(row, "country", &mut kept, notes);
    let nationality = optional_country(row, "nationality", &mut kept, notes);
    let addresses = row
        .list("addresses")
        .into_iter()
        .filter_map(normalize::text)
        .collect();
    let mut identifiers: Vec<Identifier> = Vec::new();
    for item in row.list("identifiers") {
        let (kind, value) = item
            .split_once(':')
            .ok_or_else(|| format!("identifiers: {item:?} is not TYPE:VALUE"))?;
        normalize::push_identifier(&mut identifiers, &normalize::own_id_type(kind), value);
    }
    let birth_date = match row.get("birth_date") {
        None => None,
        Some(v) => {
            let (d, approximate) = normalize::read_list_date(v).ok_or_else(|| {
                format!("birth_date: {v:?} is not a date such as 1970, 1970-01 or 1970-01-31")
            })?;
            if approximate {
                kept.push(format!("birth_date as written: {v}"));
                notes.kept.push("birth_date");
            }
            Some(d)
        }
    };
    let reason = match row.get("reason") {
        Some(v) => v
            .to_lowercase()
            .parse::<Reason>()
            .map_err(|e| format!("reason: {}", e.message))?,
        None => defaults
            .reason
            .ok_or("reason: missing, and no default reason was given")?,
    };
    let categories = match row.get("categories") {
        None => defaults.categories.clone(),
        Some(_) => row
            .list("categories")
            .into_iter()
            .map(|c| {
                Category::new(c.to_uppercase()).map_err(|e| format!("categories: {}", e.message))
            })
            .collect::<Result<BTreeSet<_>, _>>()?,
    };
    let review_by = row
        .get("review_by")
        .map(Date::parse)
        .transpose()
        .map_err(|e| format!("review_by: {e}"))?;
    let on_hit = row
        .get("on_hit")
        .map(|v| v.parse::<wlnode_crypto::model::OnHit>())
        .transpose()
        .map_err(|e| format!("on_hit: {}", e.message))?;
    Ok(EntryDraft {
        subject: Subject {
            kind,
            name,
            aliases,
            country,
            addresses,
            identifiers,
            birth_date,
            nationality,
        },
        reason,
        categories,
        legal_basis: row.get("legal_basis").and_then(normalize::text),
        items: row.get("items").and_then(normalize::text),
        remarks: normalize::remarks_with(row.get("remarks").and_then(normalize::text), kept, notes),
        contact: row.get("contact").and_then(normalize::text),
        distribution: distribution(row, &defaults.distribution)?,
        review_by,
        on_hit,
    })
}

/// The cell's country code; a value that maps to none is kept in `kept` (a line for
/// the remarks) as written.
fn optional_country(
    row: &Row<'_>,
    column: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<wlnode_crypto::model::CountryCode> {
    let v = row.get(column)?;
    let code = country_code(v);
    if code.is_none() {
        notes.push(format!(
            "{column}: {v:?} is not a country code or a known country name; kept in remarks"
        ));
        kept.push(format!("{column} as written: {v}"));
        notes.kept.push(if column == "nationality" {
            "nationality"
        } else {
            "country"
        });
    }
    code
}

/// The defaults' distribution with whatever the row's `scope`, `groups`, `max_hops` and
/// `sensitivity` cells say laid over it. A row that names another scope than `groups`
/// and no groups drops the default groups.
fn distribution(row: &Row<'_>, default: &Distribution) -> Result<Distribution, String> {
    let mut d = default.clone();
    if let Some(v) = row.get("scope") {
        d.scope = v
            .to_lowercase()
            .parse::<Scope>()
            .map_err(|e| format!("scope: {}", e.message))?;
        if d.scope != Scope::Groups {
            d.groups.clear();
        }
    }
    if row.get("groups").is_some() {
        d.groups = row
            .list("groups")
            .into_iter()
            .map(|g| GroupName::new(g.to_lowercase()).map_err(|e| format!("groups: {}", e.message)))
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = row.get("max_hops") {
        d.max_hops = v
            .parse()
            .map_err(|_| format!("max_hops: {v:?} is not a whole number (0 = no limit)"))?;
    }
    if let Some(v) = row.get("sensitivity") {
        d.sensitivity = Sensitivity::new(v.to_lowercase())
            .map_err(|e| format!("sensitivity: {}", e.message))?;
    }
    Ok(d)
}
