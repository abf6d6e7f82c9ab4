//! Country values to ISO 3166-1 alpha-2 codes, because published lists write countries
//! as names ("Syrian Arab Republic", "Virgin Islands, British", "Sultanate of Oman"),
//! long official names, demonyms ("Afghan", "Somali") or alpha-3 codes, while a
//! record's clear header carries only alpha-2 codes.
//!
//! The names come from `keshvar` (the `countries` data set: ISO short and long names,
//! unofficial names, nationality adjectives and alpha-3 codes for every country), with
//! a small table of the forms official lists use that it lacks ([`ALIASES`]). A value
//! is also tried with a list's inverted form turned round ("Korea, Republic of") and
//! without a trailing qualifier in brackets ("Iraq (in custody)"). A name that two
//! countries share in the same source (such as "The Virgin Islands", the long name of
//! both VG and VI) maps to neither. A value that maps to no code is never a failure:
//! the importers keep it in the entry's remarks, as the list wrote it.

use std::collections::HashMap;
use std::sync::OnceLock;

use wlnode_crypto::model::CountryCode;

/// Forms that official lists write and the country data lacks (normalised as by
/// [`normalise`]), and codes outside ISO 3166-1 that the lists use. Consulted before
/// the library's names, so an entry here also settles a name the data gets wrong.
const ALIASES: &[(&str, &str)] = &[
    ("xk", "XK"),
    ("kosovo", "XK"),
    ("republic of kosovo", "XK"),
    ("kosovar", "XK"),
    ("hong kong special administrative region", "HK"),
    ("hong kong sar", "HK"),
    ("hong kong, china", "HK"),
    ("macao special administrative region", "MO"),
    ("macau special administrative region", "MO"),
    ("macao sar", "MO"),
    ("virgin islands, british", "VG"),
    ("virgin islands (british)", "VG"),
    ("virgin islands, u.s", "VI"),
    ("virgin islands (u.s.)", "VI"),
    ("united states virgin islands", "VI"),
    ("uk", "GB"),
    ("great britain", "GB"),
    ("britain", "GB"),
    ("usa", "US"),
    ("u.s.a", "US"),
    ("u.s", "US"),
    ("burma", "MM"),
    ("ivory coast", "CI"),
    ("swaziland", "SZ"),
    ("macedonia", "MK"),
    ("former yugoslav republic of macedonia", "MK"),
    ("czechia", "CZ"),
    ("turkiye", "TR"),
    ("cabo verde", "CV"),
    ("palestinian", "PS"),
    ("occupied palestinian territory", "PS"),
    ("gaza strip", "PS"),
    ("west bank", "PS"),
    ("north korea", "KP"),
    ("south korea", "KR"),
    ("congo, democratic republic of the", "CD"),
    ("congo, republic of the", "CG"),
    ("democratic republic of congo", "CD"),
    ("congo (democratic republic)", "CD"),
    ("drc", "CD"),
    ("lao pdr", "LA"),
    ("dprk", "KP"),
    ("russia", "RU"),
    ("syria", "SY"),
    ("iran", "IR"),
    ("vietnam", "VN"),
    ("bolivia", "BO"),
    ("venezuela", "VE"),
    ("tanzania", "TZ"),
    ("moldova", "MD"),
    ("laos", "LA"),
    ("brunei", "BN"),
    ("east timor", "TL"),
    ("vatican", "VA"),
    ("holy see (vatican city state)", "VA"),
    ("emirati", "AE"),
    ("iraqi", "IQ"),
    ("yemeni", "YE"),
    ("saudi", "SA"),
    ("saudi arabian", "SA"),
    ("british", "GB"),
    ("north korean", "KP"),
    ("south korean", "KR"),
    ("afghani", "AF"),
    ("pakistani", "PK"),
    ("filipino", "PH"),
    ("nigerian", "NG"),
    ("nigerien", "NE"),
    ("congolese (drc)", "CD"),
];

/// Names that stand for more than one country: mapped to none, whatever the data says
/// (a wrong country is worse than none on a screening list).
const AMBIGUOUS: &[&str] = &["virgin islands", "korea", "congo, republic of"];

/// Lower case and ASCII (accents dropped, typographic apostrophes made plain), a
/// leading "the " and trailing dots dropped, inner whitespace collapsed.
fn normalise(s: &str) -> String {
    let ascii = any_ascii::any_ascii(s.trim())
        .to_lowercase()
        .replace('`', "'");
    let collapsed = ascii.split_whitespace().collect::<Vec<_>>().join(" ");
    let no_dot = collapsed.trim_end_matches('.');
    no_dot.strip_prefix("the ").unwrap_or(no_dot).to_owned()
}

/// Normalised name → code; `None` marks a name two countries share in one source.
type Index = HashMap<String, Option<CountryCode>>;

/// Adds one source's names: a name already indexed from an earlier source keeps its
/// code; a name this source gives two countries goes to the one that is a UN member
/// if exactly one is ("Chinese": CN, not MO; "Dutch": NL, not AW), else to neither.
fn add_source(index: &mut Index, names: impl IntoIterator<Item = (String, CountryCode, bool)>) {
    let mut source: HashMap<String, Vec<(CountryCode, bool)>> = HashMap::new();
    for (name, code, member) in names {
        if name.is_empty() || index.contains_key(&name) {
            continue;
        }
        let codes = source.entry(name).or_default();
        if !codes.iter().any(|(c, _)| *c == code) {
            codes.push((code, member));
        }
    }
    for (name, codes) in source {
        let code = match codes.as_slice() {
            [(only, _)] => Some(only.clone()),
            many => {
                let members: Vec<&CountryCode> =
                    many.iter().filter(|(_, m)| *m).map(|(c, _)| c).collect();
                match members.as_slice() {
                    [one] => Some((*one).clone()),
                    _ => None,
                }
            }
        };
        index.insert(name, code);
    }
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let countries: Vec<(keshvar::Country, CountryCode)> = keshvar::CountryIterator::new()
            .filter_map(|c| {
                let code = CountryCode::new(c.alpha2().to_string()).ok()?;
                Some((c, code))
            })
            .collect();
        let member = |c: &keshvar::Country| c.un_member();
        let mut index: Index = AMBIGUOUS.iter().map(|n| ((*n).to_owned(), None)).collect();
        add_source(
            &mut index,
            ALIASES.iter().filter_map(|(name, code)| {
                Some((normalise(name), CountryCode::new(*code).ok()?, true))
            }),
        );
        // Codes: alpha-2 and alpha-3 (in any case).
        add_source(
            &mut index,
            countries.iter().flat_map(|(c, code)| {
                [
                    (code.as_str().to_ascii_lowercase(), code.clone(), true),
                    (
                        c.alpha3().to_string().to_ascii_lowercase(),
                        code.clone(),
                        true,
                    ),
                ]
            }),
        );
        add_source(
            &mut index,
            countries
                .iter()
                .map(|(c, code)| (normalise(c.iso_short_name()), code.clone(), member(c))),
        );
        add_source(
            &mut index,
            countries.iter().flat_map(|(c, code)| {
                c.unofficial_name_list()
                    .iter()
                    .map(|n| (normalise(n), code.clone(), member(c)))
                    .collect::<Vec<_>>()
            }),
        );
        add_source(
            &mut index,
            countries
                .iter()
                .map(|(c, code)| (normalise(c.iso_long_name()), code.clone(), member(c))),
        );
        add_source(
            &mut index,
            countries.iter().filter_map(|(c, code)| {
                Some((normalise(c.maybe_nationality()?), code.clone(), member(c)))
            }),
        );
        index
    })
}

fn lookup(key: &str) -> Option<CountryCode> {
    index().get(key).cloned().flatten()
}

/// Qualifiers lists put in brackets after a country that do not change which country
/// it is. Any other bracketed text may ("Guinea (Bissau)", "Congo (DRC)"), so it is not
/// stripped.
const QUALIFIERS: &[&str] = &[
    "in custody",
    "formerly",
    "former",
    "reportedly",
    "allegedly",
    "possibly",
    "probably",
    "unconfirmed",
    "disputed",
    "previously",
];

/// The alpha-2 code of `value`: an alpha-2 or alpha-3 code in any case, a country's
/// name in any of the forms above, or its nationality adjective. `None` for anything
/// else, and for a name two countries share.
pub fn country_code(value: &str) -> Option<CountryCode> {
    country_lookup(value).map(|(c, _)| c)
}

/// [`country_code`], and whether a qualifier ("in custody") was set aside to find it:
/// then the value says more than the code, and the caller keeps it as written.
pub(crate) fn country_lookup(value: &str) -> Option<(CountryCode, bool)> {
    let key = normalise(value);
    if key.is_empty() {
        return None;
    }
    // As written, or in the list's inverted form ("Korea, Republic of", "Gambia, The").
    let find = |k: &str| {
        lookup(k).or_else(|| {
            let (head, tail) = k.split_once(", ")?;
            if tail.contains(',') {
                return None;
            }
            lookup(&normalise(&format!("{tail} {head}")))
        })
    };
    if let Some(c) = find(&key) {
        return Some((c, false));
    }
    // "Iraq (in custody)": a qualifier from the list above, in brackets after the name.
    let open = key.rfind(" (")?;
    let inner = key.get(open + 2..key.len().checked_sub(1)?)?;
    if !key.ends_with(')') || !QUALIFIERS.contains(&inner.trim()) {
        return None;
    }
    find(key.get(..open)?.trim()).map(|c| (c, true))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn code(s: &str) -> Option<String> {
        country_code(s).map(|c| c.as_str().to_owned())
    }

    #[test]
    fn every_alias_is_normalised_and_a_valid_code() {
        for (name, c) in ALIASES {
            assert_eq!(normalise(name), *name, "{name}");
            assert!(CountryCode::new(*c).is_ok(), "{c}");
        }
        for name in AMBIGUOUS {
            assert_eq!(normalise(name), *name, "{name}");
        }
    }

    #[test]
    fn every_country_of_the_library_is_indexed_by_its_codes_and_short_name() {
        let mut n = 0;
        for c in keshvar::CountryIterator::new() {
            let a2 = c.alpha2().to_string();
            assert_eq!(code(&a2).as_deref(), Some(a2.as_str()));
            assert_eq!(code(&c.alpha3().to_string()).as_deref(), Some(a2.as_str()));
            assert_eq!(
                code(c.iso_short_name()).as_deref(),
                Some(a2.as_str()),
                "{}",
                c.iso_short_name()
            );
            n += 1;
        }
        assert!(n >= 249, "{n} countries");
    }

    #[test]
    fn a_set_aside_qualifier_is_reported() {
        assert_eq!(
            country_lookup("Iraq (in custody)").map(|(c, q)| (c.as_str().to_owned(), q)),
            Some(("IQ".to_owned(), true))
        );
        assert_eq!(
            country_lookup("Iraq").map(|(c, q)| (c.as_str().to_owned(), q)),
            Some(("IQ".to_owned(), false))
        );
    }

    #[test]
    fn maps_codes_and_names_as_lists_write_them() {
        for (value, want) in [
            ("de", "DE"),
            (" Ru ", "RU"),
            ("IRN", "IR"),
            ("XK", "XK"),
            ("Syrian Arab Republic", "SY"),
            ("Iran (Islamic Republic of)", "IR"),
            ("Democratic People\u{2019}s Republic of Korea", "KP"),
            ("Korea, Democratic People's Republic of", "KP"),
            ("Korea, Republic of", "KR"),
            ("the Netherlands", "NL"),
            ("UK", "GB"),
            // The forms issue 24 found dropped.
            ("Virgin Islands, British", "VG"),
            ("Hong Kong Special Administrative Region", "HK"),
            ("Sultanate of Oman", "OM"),
            ("Afghan", "AF"),
            ("Somali", "SO"),
            ("Iraq (in custody)", "IQ"),
            ("Côte d'Ivoire", "CI"),
            ("Cote d'Ivoire", "CI"),
            ("Russian Federation", "RU"),
            ("United Kingdom of Great Britain and Northern Ireland", "GB"),
            ("Congo, Democratic Republic of the", "CD"),
            // The UK Sanctions List's form.
            ("Congo (Democratic Republic)", "CD"),
            ("Lao People's Democratic Republic", "LA"),
            ("Iranian", "IR"),
            ("Syrian", "SY"),
            ("Kosovo", "XK"),
            ("Gambia, The", "GM"),
            ("Bahamas, The", "BS"),
            ("Chinese", "CN"),
            ("Indian", "IN"),
            ("Dutch", "NL"),
            ("French", "FR"),
            ("Nigerian", "NG"),
            ("Nigerien", "NE"),
            ("Iraq (formerly)", "IQ"),
        ] {
            assert_eq!(code(value).as_deref(), Some(want), "{value:?}");
        }
        for value in [
            "XX",
            "zz",
            "Atlantis",
            "",
            "  ",
            "(in custody)",
            "The Virgin Islands",
            "Korea",
            // A bracket that changes the country is not set aside.
            "Guinea (Bissau)",
            "Congo (DRC)",
            "Sudan (South)",
            "China (Hong Kong)",
        ] {
            assert_eq!(code(value), None, "{value:?}");
        }
    }
}
