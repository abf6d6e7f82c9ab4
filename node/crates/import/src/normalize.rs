//! Value clean-up that every import format shares, so that a name, date, country or
//! identifier reads the same whether it came from a spreadsheet, an OpenSanctions export
//! or an official XML list.

use wlnode_crypto::model::{EntryDraft, Identifier, MAX_FIELDS, MAX_LONG_TEXT, SubjectKind};
use wlnode_crypto::time::PartialDate;

/// What reading one row noted: warnings (values left out or cut, in words), and per
/// field what was kept in the remarks, dropped or cut, for the import's field summary.
#[derive(Debug, Default)]
pub(crate) struct RowNotes {
    /// Warnings, in the order they arose.
    pub(crate) warnings: Vec<String>,
    /// Fields whose values were (also) kept in the remarks as the source wrote them.
    pub(crate) kept: Vec<&'static str>,
    /// Fields and how many values of them were dropped.
    pub(crate) dropped: Vec<(&'static str, usize)>,
    /// Fields cut to the longest text a record carries.
    pub(crate) cut: Vec<&'static str>,
}

impl RowNotes {
    /// Adds a warning.
    pub(crate) fn push(&mut self, warning: String) {
        self.warnings.push(warning);
    }
}

/// A name with surrounding whitespace trimmed and inner whitespace (including line
/// breaks) collapsed to single spaces.
pub(crate) fn name(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Name parts (first, second, ... names) joined with single spaces, empty parts skipped.
pub(crate) fn join_names<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    name(&parts.into_iter().collect::<Vec<_>>().join(" "))
}

/// Cleans alias candidates: trimmed, empty ones skipped, and any that repeat the primary
/// name or an earlier alias (ignoring case) dropped.
pub(crate) fn aliases<S: AsRef<str>>(
    primary: &str,
    candidates: impl IntoIterator<Item = S>,
) -> Vec<String> {
    // A hash set: a hostile record with many aliases costs linear time, not quadratic.
    let mut seen = std::collections::HashSet::from([primary.to_lowercase()]);
    let mut out = Vec::new();
    for c in candidates {
        let alias = name(c.as_ref());
        if alias.is_empty() {
            continue;
        }
        if !seen.insert(alias.to_lowercase()) {
            continue;
        }
        out.push(alias);
    }
    out
}

/// Free text with Windows and old Mac line ends made `\n` and surrounding whitespace
/// trimmed; `None` when nothing is left.
pub(crate) fn text(s: &str) -> Option<String> {
    let t = s.replace("\r\n", "\n").replace('\r', "\n");
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Cuts `s` to at most [`MAX_LONG_TEXT`] bytes at a character boundary, noting in
/// `notes` that `field` was cut. Used for long texts from published lists, where a
/// shortened remark is better than a refused row.
pub(crate) fn cut_long(s: String, field: &str, notes: &mut RowNotes) -> String {
    if s.len() <= MAX_LONG_TEXT {
        return s;
    }
    let end = boundary_at_most(&s, MAX_LONG_TEXT);
    notes.push(format!(
        "{field}: cut from {} to {end} bytes (the longest a record carries)",
        s.len()
    ));
    notes.cut.push(draft_field(field));
    s.get(..end).unwrap_or_default().to_owned()
}

/// The largest character boundary of `s` at or below `max`.
fn boundary_at_most(s: &str, max: usize) -> usize {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// The entry field a source field fills, for the import summary.
fn draft_field(source_field: &str) -> &'static str {
    match source_field {
        "legal_basis" => "legal_basis",
        "items" => "items",
        _ => "remarks",
    }
}

/// Makes a draft from a published list fit the record's field limit ([`MAX_FIELDS`]) by
/// dropping its last aliases, then its last addresses, noting how many were dropped.
/// Heavily aliased listings exist, and a screening list is better off with the entry and
/// most of its aliases than without the entry.
pub(crate) fn fit_field_limit(draft: &mut EntryDraft, notes: &mut RowNotes) {
    let s = &draft.subject;
    let singles = 1
        + usize::from(s.birth_date.is_some())
        + usize::from(s.nationality.is_some())
        + [
            &draft.legal_basis,
            &draft.items,
            &draft.remarks,
            &draft.contact,
        ]
        .iter()
        .filter(|v| v.is_some())
        .count();
    let total = singles + s.aliases.len() + s.addresses.len() + s.identifiers.len();
    let Some(mut excess) = total.checked_sub(MAX_FIELDS).filter(|e| *e > 0) else {
        return;
    };
    let s = &mut draft.subject;
    for (field, list) in [("aliases", &mut s.aliases), ("addresses", &mut s.addresses)] {
        let cut = excess.min(list.len());
        if cut > 0 {
            list.truncate(list.len() - cut);
            excess -= cut;
            notes.dropped.push((field, cut));
            notes.push(format!(
                "{field}: the last {cut} left out, as a record carries at most {MAX_FIELDS} fields"
            ));
        }
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Month number of an English month name or its abbreviation of three letters or more.
fn month(s: &str) -> Option<u8> {
    let lower = s.trim_end_matches('.').to_lowercase();
    if lower.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&lower))
        .and_then(|i| u8::try_from(i + 1).ok())
}

fn number(s: &str, max_len: usize) -> Option<u16> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn ymd(year: u16, month: Option<u8>, day: Option<u8>) -> Option<PartialDate> {
    let s = match (month, day) {
        (None, _) => format!("{year:04}"),
        (Some(m), None) => format!("{year:04}-{m:02}"),
        (Some(m), Some(d)) => format!("{year:04}-{m:02}-{d:02}"),
    };
    PartialDate::parse(&s).ok()
}

/// Reads a birth or incorporation date as the lists write them: `YYYY`, `YYYY-MM`,
/// `YYYY-MM-DD` (also with a time after it, or an `xsd:date` time zone such as
/// `1966-02-02-05:00` or `1966-02-02Z`), `12 Jan 1970`, `12-Jan-1970`, `Jan 1970`,
/// `January 1970` and `12.01.1970`, each also after "circa", "c.", "ca.", "approx.",
/// "about" or "around" (see [`read_list_date`] for whether it was approximate).
/// Ranges and anything else give `None`.
pub fn parse_partial_date(s: &str) -> Option<PartialDate> {
    read_list_date(s).map(|(d, _)| d)
}

/// [`parse_partial_date`], and whether the list wrote the date as approximate.
pub fn read_list_date(s: &str) -> Option<(PartialDate, bool)> {
    let s = s.trim();
    for q in [
        "approximately",
        "approx.",
        "approx",
        "circa",
        "about",
        "around",
        "ca.",
        "ca",
        "c.",
    ] {
        // The qualifiers are ASCII: compare without case, keep the original's case.
        let Some(rest) = s
            .get(..q.len())
            .filter(|p| p.eq_ignore_ascii_case(q))
            .and_then(|_| s.get(q.len()..))
        else {
            continue;
        };
        // A word needs a separator after it ("cairo 1970" is no date).
        if q.ends_with('.') || rest.starts_with([' ', '-']) {
            return exact_date(rest.trim_start_matches([' ', '-', '.'])).map(|d| (d, true));
        }
    }
    exact_date(s).map(|d| (d, false))
}

fn exact_date(s: &str) -> Option<PartialDate> {
    let s = s.trim();
    if let Ok(d) = PartialDate::parse(s) {
        return Some(d);
    }
    // An xsd:date with a time zone: 1966-02-02Z, 1966-02-02-05:00, 1966-02-02+01:00.
    if let Some(date) = s.get(..10)
        && let Some(zone) = s.get(10..)
        && is_time_zone(zone)
        && let Ok(d) = PartialDate::parse(date)
    {
        return Some(d);
    }
    // An ISO datetime such as 1970-01-12T00:00:00 or 1970-01-12 00:00, with an
    // optional time zone. Nothing else may follow the date ("1970-01-12 to 1975" is a
    // range, not a date).
    if s.len() > 10
        && matches!(s.as_bytes().get(10), Some(b'T' | b' '))
        && s.get(11..).is_some_and(is_time)
        && let Some(d) = s.get(..10).and_then(|d| PartialDate::parse(d).ok())
    {
        return Some(d);
    }
    let dotted: Vec<&str> = s.split('.').collect();
    if let [d, m, y] = dotted.as_slice() {
        let (d, m, y) = (number(d, 2)?, number(m, 2)?, number(y, 4)?);
        return ymd(y, Some(u8::try_from(m).ok()?), Some(u8::try_from(d).ok()?));
    }
    let parts: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [d, m, y] => {
            let day = u8::try_from(number(d, 2)?).ok()?;
            ymd(number(y, 4)?, Some(month(m)?), Some(day))
        }
        [m, y] => ymd(number(y, 4)?, Some(month(m)?), None),
        _ => None,
    }
}

/// `Z`, or `+hh:mm` / `-hh:mm` (at most 14 hours): an xsd time zone.
fn is_time_zone(z: &str) -> bool {
    if z == "Z" {
        return true;
    }
    let b = z.as_bytes();
    b.len() == 6
        && matches!(b.first(), Some(b'+' | b'-'))
        && b.get(3) == Some(&b':')
        && z.get(1..3)
            .and_then(|h| number(h, 2))
            .is_some_and(|h| h <= 14)
        && z.get(4..6)
            .and_then(|m| number(m, 2))
            .is_some_and(|m| m < 60)
}

/// `hh:mm`, `hh:mm:ss` or `hh:mm:ss.fff`, then an optional time zone.
fn is_time(t: &str) -> bool {
    let (clock, zone) = match t.find(['Z', '+', '-']) {
        Some(i) => (
            t.get(..i).unwrap_or_default(),
            t.get(i..).unwrap_or_default(),
        ),
        None => (t, ""),
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let parts: Vec<&str> = hms.split(':').collect();
    let two = |p: &&str| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit());
    (parts.len() == 2 || parts.len() == 3)
        && parts.iter().all(two)
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
        && (zone.is_empty() || is_time_zone(zone))
}

/// The first of `written` that reads as a date, for an entry's one date field. What the
/// date field cannot say is kept, as the list wrote it, in `kept` (a line for the
/// entry's remarks): every value when there are several, or when the one taken was
/// approximate, or when none reads as a date (then `notes` says so too).
pub(crate) fn pick_date(
    written: &[&str],
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<PartialDate> {
    pick_date_by(written, read_list_date, label, field, kept, notes)
}

/// [`pick_date`] for a list with a date form of its own: `read` reads one value and
/// says whether the date it gives is approximate (or says less than the list wrote).
pub(crate) fn pick_date_by(
    written: &[&str],
    read: impl Fn(&str) -> Option<(PartialDate, bool)>,
    label: &str,
    field: &str,
    kept: &mut Vec<String>,
    notes: &mut RowNotes,
) -> Option<PartialDate> {
    let readings: Vec<Option<(PartialDate, bool)>> = written.iter().map(|w| read(w)).collect();
    let taken = readings.iter().flatten().next().cloned();
    match &taken {
        None if !written.is_empty() => {
            notes.push(format!(
                "{field}: none of {written:?} is a date; kept in remarks"
            ));
            kept.push(format!("{label} as listed: {}", written.join("; ")));
            notes.kept.push("birth_date");
        }
        Some((_, approximate)) if *approximate || written.len() > 1 => {
            kept.push(format!("{label} as listed: {}", written.join("; ")));
            notes.kept.push("birth_date");
        }
        _ => {}
    }
    taken.map(|(d, _)| d)
}

/// The entry's remarks with the `kept` lines (values the entry's fields could not
/// carry) after them, cut to the longest text a record carries.
pub(crate) fn remarks_with(
    remarks: Option<String>,
    kept: Vec<String>,
    notes: &mut RowNotes,
) -> Option<String> {
    if kept.is_empty() {
        return remarks;
    }
    let kept = cut_long(kept.join("\n"), "remarks", notes);
    match remarks {
        None => Some(kept),
        // Over the limit on its own (our own formats): the row fails as it would have.
        Some(r) if r.len() > MAX_LONG_TEXT => Some(format!("{r}\n\n{kept}")),
        Some(r) => {
            // The kept lines stay whole; the source's remarks give way if need be.
            let room = MAX_LONG_TEXT.saturating_sub(kept.len() + 2);
            let r = if r.len() > room {
                let end = boundary_at_most(&r, room);
                notes.push(format!(
                    "remarks: cut from {} to {end} bytes to keep the values the entry's fields cannot carry",
                    r.len()
                ));
                notes.cut.push("remarks");
                r.get(..end).unwrap_or_default().to_owned()
            } else {
                r
            };
            Some(if r.is_empty() {
                kept
            } else {
                format!("{r}\n\n{kept}")
            })
        }
    }
}

/// A subject kind from the words sources use for it, in any case.
pub(crate) fn subject_kind(s: &str) -> Option<SubjectKind> {
    match s.trim().to_lowercase().as_str() {
        "person" | "individual" | "natural person" => Some(SubjectKind::Person),
        "organization" | "organisation" | "entity" | "company" | "legal entity" => {
            Some(SubjectKind::Organization)
        }
        "vessel" | "ship" => Some(SubjectKind::Vessel),
        _ => None,
    }
}

/// An identifier type as written in wlnode's own formats (CSV, JSONL): lower-cased, a
/// few common spellings mapped to the standard types, anything else kept as written so
/// that [`Identifier::validate`] accepts or names it.
pub(crate) fn own_id_type(s: &str) -> String {
    let t = s.trim().to_lowercase().replace([' ', '-'], "_");
    let mapped = match t.as_str() {
        "passport_number" | "passport_no" | "passport_nr" => "passport",
        "nationalid" | "national_id_number" | "national_identification" | "id_card" => {
            "national_id"
        }
        "registration_number" | "reg" | "company_number" | "reg_no" => "registration",
        "imo_number" | "imo_no" => "imo",
        "lei_code" => "lei",
        "tax" | "taxid" | "tax_number" | "tin" | "vat" | "inn" => "tax_id",
        _ => return t,
    };
    mapped.to_owned()
}

/// An identifier type as published lists write it ("Passport", "National ID No.",
/// "Tax ID No.", "Registration ID", "IMO", ...) mapped to one of `passport`,
/// `national_id`, `registration`, `imo`, `lei`, `tax_id` or `other`.
pub(crate) fn list_id_type(s: &str) -> &'static str {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    if lower.contains("passport") {
        "passport"
    } else if has("imo") {
        "imo"
    } else if has("lei") || lower.contains("legal entity") {
        "lei"
    } else if lower.contains("tax")
        || ["tin", "vat", "inn", "rfc", "nit", "cuit", "ruc", "itin"]
            .iter()
            .any(|w| has(w))
    {
        "tax_id"
    } else if lower.contains("regist") || has("ogrn") || has("company") || has("business") {
        "registration"
    } else if lower.contains("national")
        || lower.contains("identity")
        || lower.contains("identification")
        || ["id", "cedula", "dni", "nic"].iter().any(|w| has(w))
    {
        "national_id"
    } else {
        "other"
    }
}

/// Adds an identifier unless its value is empty or it is already there. An `imo` value
/// loses an `IMO` prefix ("IMO 9187629" becomes "9187629"); a value written as
/// "IMO 1234567" under another type (as OFAC's "Vessel Registration Identification")
/// becomes an `imo` identifier.
pub(crate) fn push_identifier(ids: &mut Vec<Identifier>, kind: &str, value: &str) {
    let value = name(value);
    if value.is_empty() {
        return;
    }
    let imo_digits = value
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("imo"))
        .and_then(|_| value.get(3..))
        .map(|rest| rest.trim_start_matches([' ', ':', '-']))
        .filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()));
    let id = match imo_digits {
        Some(digits) if kind == "imo" || kind == "registration" || kind == "other" => Identifier {
            kind: "imo".to_owned(),
            value: digits.to_owned(),
        },
        _ => Identifier {
            kind: kind.to_owned(),
            value,
        },
    };
    // Past MAX_FIELDS distinct identifiers the entry is refused anyway (too many
    // fields), so further values are not compared: the dedup stays linear in the
    // record's size however many identifiers a hostile record carries.
    if ids.len() > MAX_FIELDS || !ids.contains(&id) {
        ids.push(id);
    }
}

/// A list of distinct strings in first-seen order, deduplicated by hash.
#[derive(Debug, Default)]
pub(crate) struct Unique {
    list: Vec<String>,
    seen: std::collections::HashSet<String>,
}

impl Unique {
    /// Adds `value` unless it is there already.
    pub(crate) fn push(&mut self, value: String) {
        push_new(&mut self.list, &mut self.seen, value);
    }
}

impl std::ops::Deref for Unique {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.list
    }
}

/// Adds `value` to `list` unless `seen` holds it already: an order-keeping dedup in
/// linear time (a hostile record may carry thousands of values).
pub(crate) fn push_new<T: Clone + Eq + std::hash::Hash>(
    list: &mut Vec<T>,
    seen: &mut std::collections::HashSet<T>,
    value: T,
) {
    if seen.insert(value.clone()) {
        list.push(value);
    }
}

/// The draft of a published list's record: its subject, legal basis and remarks, with
/// the import's defaults for the reason, categories and distribution, cut to the
/// record's field limits (what was cut is noted).
pub(crate) fn list_draft(
    subject: wlnode_crypto::model::Subject,
    legal_basis: Option<String>,
    remarks: Option<String>,
    defaults: &crate::ImportDefaults,
    notes: &mut RowNotes,
) -> EntryDraft {
    let mut draft = EntryDraft {
        subject,
        reason: defaults
            .reason
            .unwrap_or(wlnode_crypto::model::Reason::Sanctions),
        categories: defaults.categories.clone(),
        legal_basis,
        items: None,
        remarks,
        contact: None,
        distribution: defaults.distribution.clone(),
        review_by: None,
        on_hit: None,
    };
    fit_field_limit(&mut draft, notes);
    draft
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn date(s: &str) -> Option<String> {
        parse_partial_date(s).map(|d| d.to_string())
    }

    #[test]
    fn dates_in_list_formats() {
        assert_eq!(date("1970").as_deref(), Some("1970"));
        assert_eq!(date("1970-07").as_deref(), Some("1970-07"));
        assert_eq!(date("1970-07-12").as_deref(), Some("1970-07-12"));
        assert_eq!(date("1970-07-12T00:00:00").as_deref(), Some("1970-07-12"));
        assert_eq!(date("12 Jan 1970").as_deref(), Some("1970-01-12"));
        assert_eq!(date("2 sept 1970").as_deref(), Some("1970-09-02"));
        assert_eq!(date("12-JAN-1970").as_deref(), Some("1970-01-12"));
        assert_eq!(date("Jan 1970").as_deref(), Some("1970-01"));
        assert_eq!(date("December 1970").as_deref(), Some("1970-12"));
        assert_eq!(date("12.01.1970").as_deref(), Some("1970-01-12"));
        assert_eq!(date("31 Feb 1970"), None);
        assert_eq!(date("1965 to 1967"), None);
        assert_eq!(date("1965-1967"), None);
        // xsd:date with a time zone (issue 24: these were "not a date").
        assert_eq!(date("1966-02-02-05:00").as_deref(), Some("1966-02-02"));
        assert_eq!(date("1966-02-02+01:00").as_deref(), Some("1966-02-02"));
        assert_eq!(date("1966-02-02Z").as_deref(), Some("1966-02-02"));
        assert_eq!(date("1966-02-02-5:00"), None);
        assert_eq!(date("1966-02-02+99:99"), None);
        assert_eq!(date("1970-01-12T00:00:00Z").as_deref(), Some("1970-01-12"));
        assert_eq!(date("1970-01-12 00:00").as_deref(), Some("1970-01-12"));
        assert_eq!(
            date("1970-01-12T00:00:00.000+02:00").as_deref(),
            Some("1970-01-12")
        );
        // A range or a qualifier after the date is not that date.
        assert_eq!(date("1970-01-12 to 1975-01-01"), None);
        assert_eq!(date("1970-01-12 (approx.)"), None);
        assert_eq!(
            read_list_date("CIRCA 1966-02-02Z").map(|(d, a)| (d.to_string(), a)),
            Some(("1966-02-02".to_owned(), true))
        );
        assert_eq!(
            read_list_date("circa 1970-01-12T00:00").map(|(d, a)| (d.to_string(), a)),
            Some(("1970-01-12".to_owned(), true))
        );
        // Approximate dates: the date, flagged.
        for (s, want) in [
            ("circa 1970", "1970"),
            ("Circa-1970", "1970"),
            ("c. 1970", "1970"),
            ("ca. 1970", "1970"),
            ("approx. Jan 1970", "1970-01"),
            ("approximately 1970", "1970"),
            ("about 12 Jan 1970", "1970-01-12"),
        ] {
            let (d, approximate) = read_list_date(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!((d.to_string().as_str(), approximate), (want, true), "{s}");
        }
        assert_eq!(read_list_date("1970").map(|(_, a)| a), Some(false));
        assert_eq!(date("circa"), None);
        assert_eq!(date("cairo 1970"), None);
        assert_eq!(date("Ja 1970"), None);
        assert_eq!(date(""), None);
        // Only a time may follow the date.
        assert_eq!(date("1970-07-12Tx"), None);
        assert_eq!(date("ééééééééééééé"), None);
    }

    #[test]
    fn aliases_drop_empties_and_repeats() {
        let a = aliases(
            "Ivan Petrov",
            ["", " IVAN  PETROV ", "Vanya", "vanya", "Иван Петров"],
        );
        assert_eq!(a, vec!["Vanya".to_owned(), "Иван Петров".to_owned()]);
    }

    #[test]
    fn list_identifier_types() {
        assert_eq!(list_id_type("Passport"), "passport");
        assert_eq!(list_id_type("Diplomatic Passport"), "passport");
        assert_eq!(list_id_type("National ID No."), "national_id");
        assert_eq!(list_id_type("Cedula No."), "national_id");
        assert_eq!(list_id_type("Tax ID No."), "tax_id");
        assert_eq!(list_id_type("RFC"), "tax_id");
        assert_eq!(list_id_type("Registration ID"), "registration");
        assert_eq!(list_id_type("Business Registration Number"), "registration");
        assert_eq!(list_id_type("IMO"), "imo");
        assert_eq!(list_id_type("Legal Entity Number"), "lei");
        assert_eq!(list_id_type("SWIFT/BIC"), "other");
        assert_eq!(list_id_type("Timor stamp"), "other");
    }

    #[test]
    fn imo_values_lose_their_prefix() {
        let mut ids = Vec::new();
        push_identifier(&mut ids, "registration", "IMO 9187629");
        push_identifier(&mut ids, "imo", "imo:9187629");
        push_identifier(&mut ids, "passport", "  ");
        push_identifier(&mut ids, "passport", "IMO 1");
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].canonical(), "imo:9187629");
        assert_eq!(ids[1].canonical(), "passport:IMO 1");
    }

    #[test]
    fn long_alias_lists_are_cut_to_the_field_limit() {
        let mut draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": "N"},
            "reason": "sanctions",
            "remarks": "r"
        }))
        .unwrap();
        draft.subject.aliases = (0..300).map(|i| format!("alias {i}")).collect();
        draft.subject.addresses = vec!["a".to_owned(); 3];
        let mut notes = RowNotes::default();
        fit_field_limit(&mut draft, &mut notes);
        assert!(draft.validate().is_ok());
        assert_eq!(draft.subject.aliases.len(), MAX_FIELDS - 2 - 3);
        assert_eq!(draft.subject.aliases[0], "alias 0");
        assert_eq!(notes.warnings.len(), 1);
        assert_eq!(notes.dropped, [("aliases", 300 - (MAX_FIELDS - 2 - 3))]);
        let mut notes = RowNotes::default();
        fit_field_limit(&mut draft, &mut notes);
        assert!(notes.warnings.is_empty() && notes.dropped.is_empty());
    }

    /// The values kept for the entry's fields stay whole; the source's remarks give
    /// way (the review of issue 24's change found them cut off instead).
    #[test]
    fn kept_values_survive_long_remarks() {
        let mut notes = RowNotes::default();
        let long = "x".repeat(MAX_LONG_TEXT);
        let kept = vec!["Nationality as listed: Atlantis".to_owned()];
        let r = remarks_with(Some(long.clone()), kept.clone(), &mut notes).unwrap();
        assert!(r.len() <= MAX_LONG_TEXT);
        assert!(
            r.ends_with("\n\nNationality as listed: Atlantis"),
            "{}",
            &r[r.len() - 60..]
        );
        assert_eq!(notes.cut, ["remarks"]);
        // Remarks over the limit on their own (our own formats) are left for the
        // row's validation to refuse, as before.
        let over = "x".repeat(MAX_LONG_TEXT + 1);
        let r = remarks_with(Some(over), kept, &mut RowNotes::default()).unwrap();
        assert!(r.len() > MAX_LONG_TEXT);
        // Nothing kept: the remarks as they were.
        assert_eq!(
            remarks_with(Some("r".into()), Vec::new(), &mut notes).as_deref(),
            Some("r")
        );
    }

    #[test]
    fn own_types_map_spellings() {
        assert_eq!(own_id_type(" Passport "), "passport");
        assert_eq!(own_id_type("National ID"), "national_id");
        assert_eq!(own_id_type("TIN"), "tax_id");
        assert_eq!(own_id_type("swift"), "swift");
    }
}
