//! The screening benchmark on a real consolidated list (`wlnode bench screen --list
//! DIR`): the synthetic list's name pools recombine into listed names (see
//! `BENCHMARKS.md`), so precision targets set on a real list need a real list.
//!
//! The list is OFAC's SDN list in its published CSV form (`sdn.csv`: one row per
//! listed subject; `alt.csv`: one row per alias; a US government work, public domain).
//! The data is not checked in; `DIR` holds the two files as OFAC publishes them.
//! Only primary names and the aliases of `alt.csv` are indexed: the "weak" a.k.a.s in
//! the remarks column are not screened, as OFAC advises.
//!
//! Queries are made from the listed names the way [`synth`] makes them from synthetic
//! ones (the same variant classes, by rules that do not look at any particular name),
//! plus an `acronym` class (the initials of an organisation's words) reported on its
//! own. True negatives are (a) a listed person's given name(s) with the surname of a
//! different listed person, (b) common names of several cultures ([`synth::COMMON`]),
//! (c) unlisted persons from the synthetic pools; none equal, after normalisation
//! (ASCII-folded, lower-cased, words as a set), to any listed name or alias, nor with
//! the same tokens as one after the screen's own normalisation ([`screen_key`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use wlnode_crypto::model::{AgencyCode, EntryId, SubjectKind};
use wlnode_screen::{ScreenDoc, normalize};

use super::synth::{self, NegativeKind, Rng, TestQuery, Variant};

/// Why a list could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RealListError {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A row is not of the published form.
    #[error("{path}:{line}: field {field}: {problem}")]
    Row {
        /// The file.
        path: PathBuf,
        /// 1-based line of the row.
        line: u64,
        /// The field (column name of the published form).
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// One listed subject of the real list.
#[derive(Clone, Debug)]
pub struct RealEntry {
    /// The document indexed.
    pub doc: ScreenDoc,
    /// For a person listed `SURNAME, Given names`: the surname words.
    pub surname: Vec<String>,
    /// ... and the given-name words.
    pub given: Vec<String>,
    /// The sanctions programme tags (`SDGT] [IRAN` ...).
    pub programs: String,
}

impl RealEntry {
    fn is_person(&self) -> bool {
        self.doc.kind == SubjectKind::Person
    }

    /// A person as written on a shipping document: given names, then the surname.
    fn natural(&self) -> Option<String> {
        if !self.is_person() || self.surname.is_empty() || self.given.is_empty() {
            return None;
        }
        let mut w = self.given.clone();
        w.extend(self.surname.iter().map(|s| titlecase(s)));
        Some(w.join(" "))
    }
}

fn titlecase(w: &str) -> String {
    let lower = w.to_lowercase();
    let mut cs = lower.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().chain(cs).collect(),
        None => String::new(),
    }
}

/// `-0-` is the published form's empty field.
fn field(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && t != "-0-").then_some(t)
}

fn read(path: &Path) -> Result<Vec<(u64, csv::StringRecord)>, RealListError> {
    let bytes = std::fs::read(path).map_err(|source| RealListError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.as_slice());
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| RealListError::Row {
            path: path.to_owned(),
            line: e.position().map_or(0, |p| p.line()),
            field: "row",
            problem: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        // the published files end with an end-of-file marker row
        if rec.len() <= 1 {
            continue;
        }
        out.push((line, rec));
    }
    Ok(out)
}

fn ent_num(path: &Path, line: u64, rec: &csv::StringRecord) -> Result<u64, RealListError> {
    rec.get(0)
        .and_then(field)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RealListError::Row {
            path: path.to_owned(),
            line,
            field: "ent_num",
            problem: format!("not a number: {:?}", rec.get(0).unwrap_or("")),
        })
}

fn split_person(name: &str) -> (Vec<String>, Vec<String>) {
    let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
    match name.split_once(',') {
        Some((sur, given)) => (words(sur), words(given)),
        None => (Vec::new(), Vec::new()),
    }
}

/// Reads `sdn.csv` and `alt.csv` from `dir` (OFAC's published CSV form).
pub fn load_ofac(dir: &Path) -> Result<Vec<RealEntry>, RealListError> {
    let sdn_path = dir.join("sdn.csv");
    let alt_path = dir.join("alt.csv");
    let origin = AgencyCode::new("US-OFAC").map_err(|e| RealListError::Row {
        path: sdn_path.clone(),
        line: 0,
        field: "origin",
        problem: e.to_string(),
    })?;
    let mut aliases: HashMap<u64, Vec<String>> = HashMap::new();
    for (line, rec) in read(&alt_path)? {
        let n = ent_num(&alt_path, line, &rec)?;
        let Some(name) = rec.get(3).and_then(field) else {
            return Err(RealListError::Row {
                path: alt_path,
                line,
                field: "alt_name",
                problem: "empty".into(),
            });
        };
        aliases.entry(n).or_default().push(name.to_owned());
    }
    let mut out = Vec::new();
    for (line, rec) in read(&sdn_path)? {
        let n = ent_num(&sdn_path, line, &rec)?;
        let Some(name) = rec.get(1).and_then(field) else {
            return Err(RealListError::Row {
                path: sdn_path,
                line,
                field: "SDN_Name",
                problem: "empty".into(),
            });
        };
        let kind = match rec.get(2).and_then(field) {
            Some("individual") => SubjectKind::Person,
            Some("vessel" | "aircraft") => SubjectKind::Vessel,
            _ => SubjectKind::Organization,
        };
        let mut names = vec![name.to_owned()];
        for a in aliases.remove(&n).unwrap_or_default() {
            if !names.contains(&a) {
                names.push(a);
            }
        }
        let (surname, given) = if kind == SubjectKind::Person {
            split_person(name)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut id = [0u8; 16];
        for (d, b) in id
            .iter_mut()
            .zip(b"OFAC".iter().copied().chain(n.to_be_bytes()))
        {
            *d = b;
        }
        out.push(RealEntry {
            doc: ScreenDoc {
                entry_id: EntryId(id),
                origin: origin.clone(),
                kind,
                names,
                country: None,
                nationality: None,
                birth_date: None,
                identifiers: Vec::new(),
                addresses: Vec::new(),
                withdrawn: false,
                reason: None,
                categories: Vec::new(),
            },
            surname,
            given,
            programs: rec.get(3).and_then(field).unwrap_or("").to_owned(),
        });
    }
    Ok(out)
}

/// The comparison key of the negatives' exclusion: ASCII-folded, lower-cased letter
/// and digit words, as a sorted set.
pub fn name_key(s: &str) -> String {
    let ascii = any_ascii::any_ascii(s).to_lowercase();
    let mut w: Vec<&str> = ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    w.sort_unstable();
    w.dedup();
    w.join(" ")
}

/// The screen's own reading of a name as a sorted list of its tokens: names with the
/// same key are the same name to any name matcher that transliterates (`Abdallah` and
/// `Abdullah` are both `abd allah`, one Arabic name), so neither is a true negative of
/// the other.
pub fn screen_key(s: &str) -> String {
    let mut t: Vec<String> = normalize::normalize(s)
        .tokens
        .into_iter()
        .map(|t| t.text)
        .collect();
    t.sort_unstable();
    t.join(" ")
}

/// Spelling alternations between common romanisations (Arabic, Persian, Russian,
/// Turkic, French- and English-style), applied to whole words; each is a rule of
/// transliteration practice, not of any listed name.
const SPELLINGS: &[(&str, &str)] = &[
    ("ou", "u"),
    ("oo", "u"),
    ("u", "ou"),
    ("ee", "i"),
    ("iy", "i"),
    ("y", "i"),
    ("i", "y"),
    ("kh", "h"),
    ("ph", "f"),
    ("q", "k"),
    ("k", "q"),
    ("dh", "d"),
    ("j", "dj"),
    ("dj", "j"),
    ("sh", "ch"),
    ("ch", "sh"),
    ("w", "v"),
    ("v", "w"),
    ("ss", "s"),
    ("mm", "m"),
    ("dd", "d"),
    ("ah", "a"),
    ("ei", "ey"),
    ("ai", "ay"),
    ("ya", "ia"),
    ("ed", "ad"),
    ("ad", "ed"),
    ("ov", "off"),
    ("yev", "yeu"),
];

/// Applies one spelling alternation to one word (not its first letter).
fn respell(rng: &mut Rng, word: &str) -> Option<String> {
    let lower = word.to_lowercase();
    let start = rng.below(SPELLINGS.len());
    for k in 0..SPELLINGS.len() {
        let (from, to) = SPELLINGS.get((start + k) % SPELLINGS.len())?;
        let hits: Vec<usize> = lower
            .match_indices(from)
            .map(|(i, _)| i)
            .filter(|i| *i > 0)
            .collect();
        let Some(&at) = hits.get(rng.below(hits.len().max(1))) else {
            continue;
        };
        let mut s = lower.clone();
        s.replace_range(at..at + from.len(), to);
        let upper = word
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase);
        return Some(if upper {
            s.to_uppercase()
        } else {
            titlecase(&s)
        });
    }
    None
}

/// Russian-style Latin (BGN/PCGN or passport) to Cyrillic, longest rule first. Those
/// systems write no `j`: a `j` in a listed name is English (`Sajjad`, `Jamal`), which
/// Russian writes `дж` (`Саджад`, `Джамал`), once for a doubled `jj`.
const TO_CYRILLIC: &[(&str, &str)] = &[
    ("shch", "щ"),
    ("jj", "дж"),
    ("iy", "ий"),
    ("yy", "ый"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("ch", "ч"),
    ("sh", "ш"),
    ("yu", "ю"),
    ("ya", "я"),
    ("ye", "е"),
    ("yo", "ё"),
    ("a", "а"),
    ("b", "б"),
    ("v", "в"),
    ("g", "г"),
    ("d", "д"),
    ("e", "е"),
    ("z", "з"),
    ("i", "и"),
    ("y", "ы"),
    ("k", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("f", "ф"),
    ("c", "к"),
    ("h", "х"),
    ("w", "в"),
    ("x", "кс"),
    ("j", "дж"),
    ("q", "к"),
];

fn to_cyrillic(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut out = String::new();
    let mut rest = lower.as_str();
    'outer: while !rest.is_empty() {
        for (from, to) in TO_CYRILLIC {
            if let Some(r) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = r;
                continue 'outer;
            }
        }
        let mut cs = rest.chars();
        if let Some(c) = cs.next()
            && c != '\''
        {
            out.push(c);
        }
        rest = cs.as_str();
    }
    // capitalise each word as Russian is written
    out.split(' ').map(titlecase).collect::<Vec<_>>().join(" ")
}

const LEGAL_FORMS: &[&str] = &[
    "LTD",
    "LTD.",
    "LIMITED",
    "LLC",
    "L.L.C.",
    "CO",
    "CO.",
    "COMPANY",
    "INC",
    "INC.",
    "GMBH",
    "SA",
    "S.A.",
    "JSC",
    "OJSC",
    "CJSC",
    "PJSC",
    "OOO",
    "AO",
    "OAO",
    "ZAO",
    "LLP",
    "CORP",
    "CORP.",
    "CORPORATION",
    "SARL",
    "S.R.L.",
    "SRL",
    "FZE",
    "FZCO",
    "FZ-LLC",
    "PLC",
    "AG",
    "B.V.",
    "BV",
    "S.A.S.",
    "SAS",
    "LTDA",
    "LTDA.",
    "C.A.",
    "S.A.C.",
    "S.L.",
    "PTE",
];

const NEW_LEGAL: &[&str] = &[
    "Ltd", "Limited", "LLC", "Co.", "Company", "Inc.", "GmbH", "S.A.", "JSC", "Corp.", "FZE", "PLC",
];

const HONORIFICS: &[&str] = &["Mr", "Dr.", "Sheikh", "Haji", "General", "Mrs"];

const ACRONYM_SKIP: &[&str] = &[
    "of", "the", "and", "for", "de", "del", "la", "y", "&", "du", "des", "al", "el",
];

fn words_of(s: &str) -> Vec<&str> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

fn is_legal(w: &str) -> bool {
    LEGAL_FORMS.iter().any(|l| l.eq_ignore_ascii_case(w))
}

/// Words that belong to a legal form of several words (`S.A. DE C.V.`, `JOINT STOCK
/// COMPANY`, `S. DE R.L.`).
const LEGAL_PARTS: &[&str] = &[
    "DE",
    "C.V.",
    "R.L.",
    "S.",
    "JOINT",
    "STOCK",
    "LIABILITY",
    "OPEN",
    "CLOSED",
    "PUBLIC",
    "PRIVATE",
    "S.A.DE",
    "RL",
    "CV",
];

/// Where the legal form at the end of an organisation's words starts (the whole run of
/// legal-form words), if it has one.
fn legal_suffix(words: &[&str]) -> Option<usize> {
    let mut start = words.len();
    while start > 1 {
        let w = words.get(start - 1)?;
        if is_legal(w) || LEGAL_PARTS.iter().any(|p| p.eq_ignore_ascii_case(w)) {
            start -= 1;
        } else {
            break;
        }
    }
    // a run of connecting words alone (`DE`) is no legal form
    (start < words.len() && words.get(start..)?.iter().any(|w| is_legal(w))).then_some(start)
}

/// The initials of an organisation's significant words, when it has three or more.
fn acronym(name: &str) -> Option<String> {
    let letters: String = words_of(name)
        .into_iter()
        .filter(|w| !is_legal(w))
        .filter(|w| !ACRONYM_SKIP.iter().any(|s| s.eq_ignore_ascii_case(w)))
        .filter_map(|w| w.chars().find(|c| c.is_alphabetic()))
        .flat_map(char::to_uppercase)
        .collect();
    (letters.chars().count() >= 3 && letters.is_ascii()).then_some(letters)
}

fn russian_program(programs: &str) -> bool {
    ["RUSSIA", "UKRAINE", "BELARUS", "CYBER", "MAGNIT"]
        .iter()
        .any(|p| programs.contains(p))
}

/// Makes a query of class `v` from the entry, if the class applies.
fn variant(rng: &mut Rng, e: &RealEntry, v: Variant) -> Option<(String, String)> {
    let person = e.is_person();
    let listed = e.doc.names.first()?.clone();
    // persons are screened as written on documents: given names first
    let base = e.natural().unwrap_or_else(|| listed.clone());
    let out = match v {
        Variant::Typo => synth::typo(rng, &base)?,
        Variant::Transliteration => {
            if person && russian_program(&e.programs) && rng.chance(0.5) {
                to_cyrillic(&base)
            } else {
                let mut words: Vec<String> =
                    words_of(&base).into_iter().map(str::to_owned).collect();
                let letters: Vec<usize> = (0..words.len())
                    .filter(|i| {
                        words
                            .get(*i)
                            .is_some_and(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4)
                    })
                    .collect();
                if letters.is_empty() {
                    return None;
                }
                let n = if letters.len() >= 2 && rng.chance(0.4) {
                    2
                } else {
                    1
                };
                let first = rng.below(letters.len());
                let mut changed = false;
                for k in 0..n {
                    let i = *letters.get((first + k) % letters.len())?;
                    let w = words.get(i)?.clone();
                    if let Some(new) = respell(rng, &w)
                        && let Some(slot) = words.get_mut(i)
                    {
                        *slot = new;
                        changed = true;
                    }
                }
                if !changed {
                    return None;
                }
                words.join(" ")
            }
        }
        Variant::TokenOrder => {
            // an organisation's legal form stays at the end
            let w = words_of(&base);
            let cut = if person {
                w.len()
            } else {
                legal_suffix(&w).unwrap_or(w.len())
            };
            let (core, legal) = w.split_at(cut);
            if core.len() < 2 {
                return None;
            }
            let mut out: Vec<&str> = core.iter().rev().copied().collect();
            out.extend(legal);
            out.join(" ")
        }
        Variant::DroppedMiddle => {
            if !person || e.given.len() < 2 {
                return None;
            }
            let drop = 1 + rng.below(e.given.len() - 1);
            let mut w: Vec<String> = e
                .given
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != drop)
                .map(|(_, g)| g.clone())
                .collect();
            w.extend(e.surname.iter().map(|s| titlecase(s)));
            w.join(" ")
        }
        Variant::LegalForm => {
            if person {
                return None;
            }
            // the whole legal form is replaced by another, or left out
            let w = words_of(&listed);
            let legal = legal_suffix(&w)?;
            let mut out: Vec<String> = w.iter().take(legal).map(|x| (*x).to_owned()).collect();
            if !rng.chance(0.2) {
                let new = rng.pick(NEW_LEGAL);
                let old = w.get(legal..)?.join(" ");
                if new.eq_ignore_ascii_case(&old) {
                    return None;
                }
                out.push(new.to_owned());
            }
            out.join(" ")
        }
        Variant::Honorific => {
            if !person {
                return None;
            }
            format!("{} {base}", rng.pick(HONORIFICS))
        }
        Variant::Acronym => {
            if person || e.doc.kind == SubjectKind::Vessel {
                return None;
            }
            acronym(&listed)?
        }
    };
    let key = name_key(&out);
    (!key.is_empty() && out.trim() != listed.trim()).then_some((out, listed))
}

/// Positives (the classes in turn), then the three kinds of true negatives.
pub fn queries(
    list: &[RealEntry],
    positives: usize,
    recombined: usize,
    common: usize,
    unlisted: usize,
    seed: u64,
) -> Vec<TestQuery> {
    let mut rng = Rng::new(seed ^ 0x0FAC_0FAC);
    let listed: HashSet<String> = list
        .iter()
        .flat_map(|e| e.doc.names.iter().map(|n| name_key(n)))
        .collect();
    let listed_screen: HashSet<String> = list
        .iter()
        .flat_map(|e| {
            e.doc
                .names
                .iter()
                .map(|n| screen_key(&normalize::listed_form(n, e.doc.kind)))
        })
        .collect();
    // acronym queries that equal a listed name or alias (of any entry) are not variants
    let mut out = Vec::new();
    let classes = Variant::REAL;
    let mut k = 0usize;
    let mut attempts = 0usize;
    while !list.is_empty() && out.len() < positives && attempts < positives * 200 {
        attempts += 1;
        let Some(v) = classes.get(k % classes.len()).copied() else {
            break;
        };
        let Some(e) = list.get(rng.below(list.len())) else {
            continue;
        };
        let Some((name, listed_name)) = variant(&mut rng, e, v) else {
            continue;
        };
        if v == Variant::Acronym && listed.contains(&name_key(&name)) {
            continue;
        }
        let across_scripts = synth::latin_only(&name) != synth::latin_only(&listed_name);
        out.push(TestQuery {
            name,
            variant: Some(v),
            target: Some(e.doc.entry_id),
            negative: None,
            across_scripts,
        });
        k += 1;
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut push_negative = |out: &mut Vec<TestQuery>, name: String, kind: NegativeKind| {
        let key = name_key(&name);
        if key.is_empty()
            || listed.contains(&key)
            || listed_screen.contains(&screen_key(&normalize::query_form(&name)))
            || !seen.insert(key)
        {
            return false;
        }
        out.push(TestQuery {
            name,
            variant: None,
            target: None,
            negative: Some(kind),
            across_scripts: false,
        });
        true
    };
    let persons: Vec<&RealEntry> = list
        .iter()
        .filter(|e| e.is_person() && !e.given.is_empty() && !e.surname.is_empty())
        .collect();
    let (mut made, mut attempts) = (0usize, 0usize);
    while !persons.is_empty() && made < recombined && attempts < recombined * 100 {
        attempts += 1;
        let (Some(a), Some(b)) = (
            persons.get(rng.below(persons.len())),
            persons.get(rng.below(persons.len())),
        ) else {
            continue;
        };
        if a.surname == b.surname {
            continue;
        }
        let take = if a.given.len() >= 2 && rng.chance(0.5) {
            2
        } else {
            1
        };
        let mut w: Vec<String> = a.given.iter().take(take).cloned().collect();
        w.extend(b.surname.iter().map(|s| titlecase(s)));
        let name = match w.split_last() {
            Some((last, rest)) if rng.chance(0.2) => {
                format!("{}, {}", last.to_uppercase(), rest.join(" "))
            }
            _ => w.join(" "),
        };
        if push_negative(&mut out, name, NegativeKind::Recombined) {
            made += 1;
        }
    }
    let (mut made, mut attempts) = (0usize, 0usize);
    while made < common && attempts < common * 100 {
        attempts += 1;
        let Some((given, surnames)) = synth::COMMON.get(rng.below(synth::COMMON.len())) else {
            continue;
        };
        let (g, s) = (rng.pick(given), rng.pick(surnames));
        if g == s {
            continue;
        }
        if push_negative(&mut out, format!("{g} {s}"), NegativeKind::Common) {
            made += 1;
        }
    }
    let (mut made, mut attempts) = (0usize, 0usize);
    while made < unlisted && attempts < unlisted * 100 {
        attempts += 1;
        let locale = synth::pick_locale(&mut rng);
        let p = synth::persona(&mut rng, locale);
        let r = p.rendering(&mut rng, synth::Script::Latin);
        if push_negative(&mut out, p.render(&r), NegativeKind::Unlisted) {
            made += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        let r = std::fs::write(dir.join(name), body);
        assert!(r.is_ok(), "{r:?}");
    }

    #[test]
    fn reads_the_published_form_and_names_the_bad_row() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir");
        };
        write(
            dir.path(),
            "sdn.csv",
            "36,AEROCARIBBEAN AIRLINES,-0- ,CUBA,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n\
             2674,\"ABBAS, Abu\",individual,SDGT,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,DOB 1948.\n\u{1a}\n",
        );
        write(dir.path(), "alt.csv", "36,12,aka,AERO-CARIBBEAN,-0- \n");
        let list = load_ofac(dir.path());
        let Ok(list) = list else {
            panic!("{list:?}");
        };
        assert_eq!(list.len(), 2);
        let names: Vec<&Vec<String>> = list.iter().map(|e| &e.doc.names).collect();
        assert_eq!(
            names[0],
            &vec![
                "AEROCARIBBEAN AIRLINES".to_owned(),
                "AERO-CARIBBEAN".to_owned()
            ]
        );
        assert_eq!(list[1].doc.kind, SubjectKind::Person);
        assert_eq!(list[1].surname, vec!["ABBAS".to_owned()]);
        assert_eq!(list[1].natural().as_deref(), Some("Abu Abbas"));

        write(dir.path(), "alt.csv", "x36,12,aka,AERO-CARIBBEAN,-0- \n");
        let err = load_ofac(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("alt.csv:1: field ent_num"), "{err}");
    }

    #[test]
    fn negatives_never_equal_a_listed_name_and_classes_apply() {
        let doc = |n: u64, kind: SubjectKind, names: &[&str]| RealEntry {
            doc: ScreenDoc {
                entry_id: EntryId([n as u8; 16]),
                origin: AgencyCode::new("US-OFAC").unwrap_or_else(|_| panic!("code")),
                kind,
                names: names.iter().map(|s| (*s).to_owned()).collect(),
                country: None,
                nationality: None,
                birth_date: None,
                identifiers: Vec::new(),
                addresses: Vec::new(),
                withdrawn: false,
                reason: None,
                categories: Vec::new(),
            },
            surname: split_person(names[0]).0,
            given: split_person(names[0]).1,
            programs: "RUSSIA-EO14024".into(),
        };
        let list = vec![
            doc(1, SubjectKind::Person, &["IVANOV, Sergei Petrovich"]),
            doc(
                2,
                SubjectKind::Person,
                &["PETROV, Sergei", "IVANOV, Sergei"],
            ),
            doc(3, SubjectKind::Person, &["SMIRNOV, Oleg Ivanovich"]),
            doc(
                4,
                SubjectKind::Organization,
                &["NATIONAL IRANIAN OIL COMPANY", "NIOC"],
            ),
            doc(
                5,
                SubjectKind::Organization,
                &["ROSTEC STATE TECHNOLOGIES CORPORATION LTD"],
            ),
        ];
        let q = queries(&list, 60, 40, 20, 20, 3);
        let listed: HashSet<String> = list
            .iter()
            .flat_map(|e| e.doc.names.iter().map(|n| name_key(n)))
            .collect();
        for n in q.iter().filter(|q| q.negative.is_some()) {
            assert!(!listed.contains(&name_key(&n.name)), "{}", n.name);
        }
        assert!(
            q.iter()
                .any(|q| q.negative == Some(NegativeKind::Recombined))
        );
        // NIOC is listed as an alias, so no acronym query may be made of entry 4
        assert!(
            !q.iter()
                .any(|q| q.variant == Some(Variant::Acronym) && q.name == "NIOC")
        );
        assert!(
            q.iter()
                .any(|q| q.variant == Some(Variant::Acronym) && q.name == "RST")
        );
        assert!(q.iter().any(|q| q.across_scripts));
        assert_eq!(to_cyrillic("Sergei Shchukin"), "Сергеи Щукин");
        // an English `j` is `дж` (it was `й`: `Sajjad` became `Саййад`, the name Sayyad)
        assert_eq!(to_cyrillic("Sajjad Jamal"), "Саджад Джамал");
    }
}
