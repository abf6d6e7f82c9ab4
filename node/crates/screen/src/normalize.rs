//! Name normalisation: turns a name as written in any script into comparable Latin
//! tokens, and records everything it removed or rewrote so that explanations can show it.
//!
//! Both sides of a comparison (listed names and query names) go through exactly this
//! function, so every rule here is symmetric. Steps, in order:
//!
//! 1. Unicode NFKC, then lower-casing (with step 3 this is a case fold: `ß` → `ss`,
//!    `ς`/`σ` → `s`).
//! 2. Splitting into words at white space and punctuation; hyphens and dots split words
//!    too, except dotted letter runs (`F.Z.E.` → `fze`); apostrophes vanish (`Int'l` →
//!    `intl`).
//! 3. Transliteration to ASCII with `any_ascii` (Cyrillic, Greek, Arabic, Persian,
//!    Hebrew, Han, Hangul, ...; Latin diacritics fold: `Öztürk` → `ozturk`), with a few
//!    script rules first: the Arabic article `ال` becomes a separate particle, `بن`/`ابن`
//!    become `bin`, `عبد` becomes `abd`, ta marbuta reads `a`; Persian `ض ذ ظ` read `z` and `ژ`
//!    reads `ج` (`j`: a vowel-less `zh` is two letters, see [`skeleton`]);
//!    Greek `ου` reads `ou`; a Han or Hangul run of 2–3 characters reads as surname plus
//!    joined given name (`张小明` → `zhang xiaoming`), a longer one as two-character words
//!    after its legal-form suffix (`有限公司`).
//! 4. Token rules: Arabic particles (`al`, `el`, assimilated `ar-`/`as-`..., `bin`, `ibn`)
//!    are stripped; `abdul`/`abdel` glued to a word are split into `abd` + word, and a
//!    glued `-uddin`/`-eddine`/`-aldin` ... (`Nooruddin`, `Salaheddine`) into word + `din`
//!    as `Nur al-Din` reads; leading
//!    honorifics (`Mr`, `Dr`, `Sheikh`, `Haji`, `General`, ...) are stripped; legal forms
//!    (`LLC`, `GmbH`, `FZE`, `OOO`, `S.A.`, `Co. Ltd`, ...) are stripped from either end;
//!    abbreviations are expanded (`TRDG` → `trading`); stop words go. No rule removes the
//!    last remaining token, so a name that is only "LLC" stays "llc".
//!
//! Token order is kept (the scorer ignores it but uses it to tell middle names). Before
//! these steps, a listed person's name written `SURNAME, Given names` and a query
//! written that way are read `Given names SURNAME` ([`listed_form`], [`query_form`]), so
//! that first, middle and last tokens and leading titles are the same whichever way a
//! list writes its persons.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use super::lexicon;

/// One comparable token of a normalised name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NormToken {
    /// Lower-case ASCII letters and digits.
    pub text: String,
    /// The piece of the input it came from, as written.
    pub original: String,
    /// True when it was transliterated from a non-Latin script.
    pub transliterated: bool,
}

/// What kind of word the normaliser removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrippedKind {
    /// An organisation legal form (`LLC`, `GmbH`, `F.Z.E.`, ...).
    LegalForm,
    /// A person honorific or title (`Mr`, `Dr`, `Sheikh`, ...).
    Honorific,
    /// An Arabic name particle (`al-`, `bin`, `ibn`, ...).
    Particle,
    /// A stop word (`the`, `of`, `and`).
    StopWord,
}

/// A word the normaliser removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stripped {
    /// Why it was removed.
    pub kind: StrippedKind,
    /// As written in the input.
    pub text: String,
    /// Its normalised form (`f.z.e.` → `fze`); legal forms of several tokens are joined
    /// with spaces.
    pub normalized: String,
}

/// An abbreviation the normaliser expanded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expansion {
    /// The abbreviation as normalised (`trdg`).
    pub from: String,
    /// What it became (`trading`).
    pub to: String,
}

/// A normalised name: its tokens and what was removed or rewritten on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NormName {
    /// The comparable tokens in input order.
    pub tokens: Vec<NormToken>,
    /// Removed legal forms, honorifics, particles and stop words.
    pub stripped: Vec<Stripped>,
    /// Expanded abbreviations.
    pub expanded: Vec<Expansion>,
    /// How many of the last tokens are a listed person's surnames, known from the
    /// list's `SURNAME, Given names` form ([`listed_name`]); 0 when unknown.
    #[serde(skip)]
    pub surnames: usize,
}

impl NormName {
    /// The token texts.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| t.text.as_str())
    }

    /// The legal forms that were stripped, normalised.
    pub fn legal_forms(&self) -> impl Iterator<Item = &str> {
        self.stripped
            .iter()
            .filter(|s| s.kind == StrippedKind::LegalForm)
            .map(|s| s.normalized.as_str())
    }
}

/// A token on its way through the rules.
#[derive(Clone, Debug)]
struct Raw {
    text: String,
    original: String,
    transliterated: bool,
    /// Written with a hyphen right after it (`al-`), which marks assimilated particles.
    hyphen_after: bool,
}

/// Normalises a name. Never panics; may return no tokens (for input with no letters
/// or digits).
pub fn normalize(input: &str) -> NormName {
    // ASCII is already in NFKC
    let (folded, persian) = if input.is_ascii() {
        (input.to_ascii_lowercase(), false)
    } else {
        let folded: String = input.nfkc().flat_map(char::to_lowercase).collect();
        // Persian-only letters anywhere make the whole name Persian (`رضا` has none)
        let persian = folded
            .chars()
            .any(|c| matches!(c, 'ی' | 'ک' | 'گ' | 'پ' | 'چ' | 'ژ'));
        (folded, persian)
    };
    let mut raws = Vec::new();
    for word in folded.split(is_separator).filter(|w| !w.is_empty()) {
        split_word(word, persian, &mut raws);
    }
    apply_rules(raws)
}

/// How a listed name is read for an entry of `kind`: a person's name written
/// `SURNAME, Given names` (one comma, as consolidated lists write them) is read
/// `Given names SURNAME`, the order the scorer's position rules (first, middle and last
/// token) and the leading-honorific rule assume (`FADLALLAH, Shaykh Muhammad Husayn`
/// is `Muhammad Husayn Fadlallah`, with `Husayn` a middle name). Other names are read
/// as written.
pub fn listed_form(name: &str, kind: wlnode_crypto::model::SubjectKind) -> Cow<'_, str> {
    if kind != wlnode_crypto::model::SubjectKind::Person {
        return Cow::Borrowed(name);
    }
    swap_at_comma(name).map_or(Cow::Borrowed(name), Cow::Owned)
}

/// A listed name normalised as read by [`listed_form`], knowing, for a person written
/// `SURNAME, Given names`, which of its last tokens are surnames
/// ([`NormName::surnames`]): `NASSER ARANA, Carlos Alberto` has two, so leaving out
/// `Nasser` is not leaving out a middle name.
pub fn listed_name(name: &str, kind: wlnode_crypto::model::SubjectKind) -> NormName {
    let form = listed_form(name, kind);
    let mut norm = normalize(&form);
    if let (Cow::Owned(_), Some((before, _))) = (&form, name.split_once(',')) {
        let before = before.to_lowercase();
        let tail = norm
            .tokens
            .iter()
            .rev()
            .take_while(|t| before.contains(&t.original.to_lowercase()))
            .count();
        // the given names stay: at least one token is not a surname
        norm.surnames = tail.min(norm.tokens.len().saturating_sub(1));
    }
    norm
}

/// How a query name is read: `SURNAME, Given names` (one comma, one to three words
/// before it, and no legal form after it, so `ANHUI LAND GROUP CO., LIMITED` stays as
/// written) is read `Given names SURNAME`, like [`listed_form`].
pub fn query_form(name: &str) -> Cow<'_, str> {
    let Some(swapped) = swap_at_comma(name) else {
        return Cow::Borrowed(name);
    };
    let (before, after) = name.split_once(',').unwrap_or((name, ""));
    let after_norm = normalize(after);
    if before.split_whitespace().count() > 3
        || after_norm.tokens.is_empty()
        || after_norm.legal_forms().next().is_some()
    {
        return Cow::Borrowed(name);
    }
    Cow::Owned(swapped)
}

/// `a, b` → `b a` when the name has exactly one comma with words on both sides.
fn swap_at_comma(name: &str) -> Option<String> {
    let (before, after) = name.split_once(',')?;
    if after.contains(',') || before.trim().is_empty() || after.trim().is_empty() {
        return None;
    }
    Some(format!("{} {}", after.trim(), before.trim()))
}

/// Most tokens kept of one address (query or entry).
pub const MAX_ADDRESS_TOKENS: usize = 32;
/// Longer address tokens are left out (no address word is this long; the bound keeps
/// spelling comparisons cheap).
pub const MAX_ADDRESS_TOKEN_BYTES: usize = 32;

/// Words every address has, which say nothing about which one it is.
const ADDRESS_STOPWORDS: &[&str] = &[
    "and", "ave", "avenue", "bldg", "block", "blvd", "box", "building", "city", "de", "del",
    "district", "du", "floor", "fl", "la", "le", "no", "nr", "number", "of", "office", "p", "po",
    "rd", "road", "room", "st", "str", "street", "suite", "the", "unit",
];

/// An address as a sorted set of folded tokens (transliterated to lower-case ASCII
/// letters and digits), without the words every address has. Never panics; at most
/// the first [`MAX_ADDRESS_TOKENS`] distinct tokens, each at most
/// [`MAX_ADDRESS_TOKEN_BYTES`].
pub fn address_tokens(input: &str) -> Vec<Box<str>> {
    let folded: String = input.nfkc().flat_map(char::to_lowercase).collect();
    let mut seen = std::collections::HashSet::new();
    // The first tokens as written (not the alphabetically first), each once.
    let mut out: Vec<Box<str>> = folded
        .split(|c: char| !(c.is_alphanumeric() || is_mark(c)))
        .map(to_ascii_token)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= MAX_ADDRESS_TOKEN_BYTES
                && !ADDRESS_STOPWORDS.contains(&t.as_str())
        })
        .filter(|t| seen.insert(t.clone()))
        .take(MAX_ADDRESS_TOKENS)
        .map(String::into_boxed_str)
        .collect();
    out.sort();
    out
}

fn is_separator(c: char) -> bool {
    !(c.is_alphanumeric() || is_hyphen(c) || is_apostrophe(c) || c == '.' || is_mark(c))
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '\u{2010}' | '\u{2011}' | '\u{00AD}')
}

fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{02BC}' | '\u{02BF}' | '\u{02BE}'
    )
}

/// Combining marks (Arabic harakat, decomposed diacritics) stay inside their word.
fn is_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{064B}'..='\u{065F}' | '\u{0670}')
}

fn split_word(word: &str, persian: bool, out: &mut Vec<Raw>) {
    let parts: Vec<&str> = word.split(is_hyphen).collect();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.into_iter().enumerate() {
        let part: String = part.chars().filter(|c| !is_apostrophe(*c)).collect();
        if part.is_empty() {
            continue;
        }
        let before = out.len();
        if is_dotted_letters(&part) {
            let joined: String = part.chars().filter(|c| *c != '.').collect();
            push_piece(&joined, &part, persian, out);
        } else {
            for piece in part.split('.').filter(|p| !p.is_empty()) {
                push_piece(piece, piece, persian, out);
            }
        }
        if i < last
            && out.len() > before
            && let Some(r) = out.last_mut()
        {
            r.hyphen_after = true;
        }
    }
}

/// `f.z.e.`, `s.a`, `u.s.a.`: single letters separated by dots.
fn is_dotted_letters(part: &str) -> bool {
    let segs: Vec<&str> = part.split('.').filter(|s| !s.is_empty()).collect();
    segs.len() >= 2 && part.contains('.') && segs.iter().all(|s| s.chars().count() == 1)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cjk,
    Arabic,
    Greek,
    Other,
}

fn script_of(c: char) -> Script {
    match c {
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{AC00}'..='\u{D7AF}' => Script::Cjk,
        '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' => {
            Script::Arabic
        }
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Script::Greek,
        c if c.is_ascii() => Script::Latin,
        '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{0300}'..='\u{036F}' => {
            Script::Latin
        }
        _ => Script::Other,
    }
}

/// Splits a piece into script runs (CJK runs are read differently) and emits tokens.
fn push_piece(piece: &str, original: &str, persian: bool, out: &mut Vec<Raw>) {
    let mut run = String::new();
    let mut run_cjk = false;
    for c in piece.chars() {
        let cjk = script_of(c) == Script::Cjk;
        if !run.is_empty() && cjk != run_cjk {
            emit_run(&run, run_cjk, original, persian, out);
            run.clear();
        }
        run_cjk = cjk;
        run.push(c);
    }
    if !run.is_empty() {
        emit_run(&run, run_cjk, original, persian, out);
    }
}

fn emit_run(run: &str, cjk: bool, original: &str, persian: bool, out: &mut Vec<Raw>) {
    if cjk {
        emit_cjk(run, out);
        return;
    }
    let has_arabic = run.chars().any(|c| script_of(c) == Script::Arabic);
    if has_arabic {
        emit_arabic(run, persian, out);
        return;
    }
    let transliterated = run
        .chars()
        .any(|c| matches!(script_of(c), Script::Greek | Script::Other) && c.is_alphabetic());
    let prepared = if run.chars().any(|c| script_of(c) == Script::Greek) {
        run.replace("ου", "ou").replace("ού", "ou")
    } else {
        run.to_owned()
    };
    let text = to_ascii_token(&prepared);
    if !text.is_empty() {
        let original = if original.chars().count() == run.chars().count() {
            original.to_owned()
        } else {
            run.to_owned()
        };
        out.push(Raw {
            text,
            original,
            transliterated,
            hyphen_after: false,
        });
    }
}

/// Transliterates and keeps only lower-case ASCII letters and digits.
fn to_ascii_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            }
        } else {
            let mut buf = [0u8; 4];
            let t = any_ascii::any_ascii(c.encode_utf8(&mut buf));
            out.extend(
                t.chars()
                    .filter(char::is_ascii_alphanumeric)
                    .map(|c| c.to_ascii_lowercase()),
            );
        }
    }
    out
}

/// Han legal-form suffixes, read before the run is split into words.
const HAN_LEGAL_SUFFIXES: &[&str] = &["股份有限公司", "有限责任公司", "有限公司", "公司"];

fn emit_cjk(run: &str, out: &mut Vec<Raw>) {
    let mut core = run;
    let mut suffix = None;
    for s in HAN_LEGAL_SUFFIXES {
        if let Some(rest) = run.strip_suffix(s)
            && !rest.is_empty()
        {
            core = rest;
            suffix = Some(*s);
            break;
        }
    }
    let chars: Vec<char> = core.chars().collect();
    let groups: Vec<String> = if chars.len() <= 3 {
        let mut it = chars.iter();
        let mut g = Vec::new();
        if let Some(first) = it.next() {
            g.push(first.to_string());
        }
        let rest: String = it.collect();
        if !rest.is_empty() {
            g.push(rest);
        }
        g
    } else {
        let mut g: Vec<String> = chars.chunks(2).map(|c| c.iter().collect()).collect();
        // an odd tail joins the word before it
        if chars.len() % 2 == 1
            && g.len() >= 2
            && let Some(tail) = g.pop()
            && let Some(prev) = g.last_mut()
        {
            prev.push_str(&tail);
        }
        g
    };
    for g in groups {
        push_translit(&g, out);
    }
    if let Some(s) = suffix {
        // 有限公司 → youxian gongsi: each two-character word is a token.
        let chars: Vec<char> = s.chars().collect();
        for c in chars.chunks(2) {
            let g: String = c.iter().collect();
            push_translit(&g, out);
        }
    }
}

fn push_translit(original: &str, out: &mut Vec<Raw>) {
    let text = to_ascii_token(original);
    if !text.is_empty() {
        out.push(Raw {
            text,
            original: original.to_owned(),
            transliterated: true,
            hyphen_after: false,
        });
    }
}

fn emit_arabic(word: &str, persian: bool, out: &mut Vec<Raw>) {
    // drop harakat and tatweel; read ta marbuta as a vowel
    let mut w: String = word
        .chars()
        .filter(|c| !is_mark(*c) && *c != '\u{0640}')
        .map(|c| if c == 'ة' { 'a' } else { c })
        .collect();
    if persian {
        w = w
            .chars()
            .map(|c| match c {
                'ض' | 'ذ' | 'ظ' => 'ز',
                'ث' => 'س',
                // ژ is one letter, ж: read it as ج (`j`), since a vowel-less `zh` is z + h
                'ژ' => 'ج',
                other => other,
            })
            .collect();
    }
    let fixed = |text: &str, out: &mut Vec<Raw>, original: &str, hyphen_after: bool| {
        out.push(Raw {
            text: text.to_owned(),
            original: original.to_owned(),
            transliterated: true,
            hyphen_after,
        });
    };
    match w.as_str() {
        "بن" | "ابن" | "بنت" => return fixed("bin", out, word, false),
        "ابو" | "أبو" => return fixed("abu", out, word, false),
        "عبد" => return fixed("abd", out, word, false),
        "عبدالله" => return fixed("abdullah", out, word, false),
        _ => {}
    }
    let mut rest = w.as_str();
    if let Some(after) = rest.strip_prefix("عبد")
        && after.chars().count() >= 3
    {
        fixed("abd", out, "عبد", false);
        rest = after;
    }
    if let Some(after) = rest.strip_prefix("ال")
        && after.chars().count() >= 2
    {
        fixed("al", out, "ال", true);
        rest = after;
    }
    let text = to_ascii_token(rest);
    if !text.is_empty() {
        out.push(Raw {
            text,
            original: rest.to_owned(),
            transliterated: true,
            hyphen_after: false,
        });
    }
}

fn apply_rules(mut raws: Vec<Raw>) -> NormName {
    let mut name = NormName::default();

    // Arabic particles, anywhere but last.
    let mut i = 0;
    while i < raws.len() {
        let next_exists = i + 1 < raws.len();
        let Some(r) = raws.get(i) else { break };
        let t = r.text.as_str();
        let particle = next_exists
            && (lexicon::ARTICLE_PARTICLES.contains(&t)
                || (r.hyphen_after && lexicon::ASSIMILATED_PARTICLES.contains(&t))
                || (lexicon::NASAB_PARTICLES.contains(&t) && (t != "ben" || i > 0)));
        if particle {
            let r = raws.remove(i);
            let normalized = if lexicon::NASAB_PARTICLES.contains(&r.text.as_str()) {
                "bin".to_owned()
            } else {
                r.text
            };
            name.stripped.push(Stripped {
                kind: StrippedKind::Particle,
                text: r.original,
                normalized,
            });
        } else {
            i += 1;
        }
    }

    // abd/abu forms.
    let mut out: Vec<Raw> = Vec::with_capacity(raws.len() + 1);
    for r in raws {
        let t = r.text.as_str();
        if lexicon::ABU_FORMS.contains(&t) {
            out.push(Raw {
                text: "abu".to_owned(),
                ..r
            });
        } else if lexicon::ABD_WHOLE.contains(&t) {
            out.push(Raw {
                text: "abdullah".to_owned(),
                ..r
            });
        } else if lexicon::ABD_FORMS.contains(&t) {
            out.push(Raw {
                text: "abd".to_owned(),
                ..r
            });
        } else if lexicon::DIN_FORMS.contains(&t) {
            out.push(Raw {
                text: "din".to_owned(),
                ..r
            });
        } else if let Some((stem, _)) = lexicon::DIN_SUFFIXES.iter().find_map(|suffix| {
            t.strip_suffix(suffix)
                .filter(|stem| stem.len() >= 3)
                .map(|stem| (stem, suffix))
        }) {
            let stem = stem.to_owned();
            out.push(Raw {
                text: stem,
                ..r.clone()
            });
            out.push(Raw {
                text: "din".to_owned(),
                ..r
            });
        } else if let Some(rest) = ["abdul", "abdel", "abdal", "abdol", "abdur"]
            .iter()
            .find_map(|p| t.strip_prefix(p).filter(|rest| rest.len() >= 3))
        {
            let rest = rest.to_owned();
            out.push(Raw {
                text: "abd".to_owned(),
                ..r.clone()
            });
            out.push(Raw { text: rest, ..r });
        } else {
            out.push(r);
        }
    }
    let mut raws = out;

    // Leading honorifics (written in Latin: `عمر` transliterates to `mr` but is Omar);
    // titles written as given names among them (`Haji`, `Seyed`, `Sheikh`:
    // lexicon::TITLE_NAMES) stay, as tokens the scorer reads as titles (`Sheikh Dr.
    // Ahmed` is `sheikh ahmed`).
    let mut i = 0;
    while raws.len() > 1 {
        let Some(r) = raws.get(i) else { break };
        if r.transliterated || !lexicon::is_honorific(&r.text) {
            break;
        }
        if lexicon::is_title_name(&r.text) {
            i += 1;
            continue;
        }
        let r = raws.remove(i);
        name.stripped.push(Stripped {
            kind: StrippedKind::Honorific,
            text: r.original,
            normalized: r.text,
        });
    }

    // Legal forms at either end, longest first, repeatedly.
    strip_legal_forms(&mut raws, &mut name);

    // A misspelt legal form at the end (`Coproration`, `PJCS`): one edit from a form of 4+
    // letters (two from one of 8+), with at least two tokens left.
    // Repeatedly: `Compani P.J.S.` loses both.
    while raws.len() >= 3
        && let Some(last) = raws.last()
        && !last.transliterated
        && let Some(form) = near_legal_form(&last.text)
        && let Some(r) = raws.pop()
    {
        name.stripped.push(Stripped {
            kind: StrippedKind::LegalForm,
            text: r.original,
            normalized: form.to_owned(),
        });
        // what stood before it may be a legal form too (`Company Lymited`)
        strip_legal_forms(&mut raws, &mut name);
    }

    // Stop words.
    let mut i = 0;
    while i < raws.len() && raws.len() > 1 {
        let is_stop = raws
            .get(i)
            .is_some_and(|r| !r.transliterated && lexicon::STOPWORDS.contains(&r.text.as_str()));
        if is_stop {
            let r = raws.remove(i);
            name.stripped.push(Stripped {
                kind: StrippedKind::StopWord,
                text: r.original,
                normalized: r.text,
            });
        } else {
            i += 1;
        }
    }

    // Abbreviations.
    for r in raws {
        match lexicon::abbreviation(&r.text) {
            Some(long) => {
                name.expanded.push(Expansion {
                    from: r.text.clone(),
                    to: long.to_owned(),
                });
                for word in long.split(' ') {
                    name.tokens.push(NormToken {
                        text: word.to_owned(),
                        original: r.original.clone(),
                        transliterated: r.transliterated,
                    });
                }
            }
            None => name.tokens.push(NormToken {
                text: r.text,
                original: r.original,
                transliterated: r.transliterated,
            }),
        }
    }
    name
}

/// Strips legal forms at either end, longest first, repeatedly (never the last token).
fn strip_legal_forms(raws: &mut Vec<Raw>, name: &mut NormName) {
    loop {
        let mut changed = false;
        if let Some(n) = legal_form_at_end(raws)
            && n < raws.len()
        {
            let removed: Vec<Raw> = raws.split_off(raws.len() - n);
            name.stripped.push(stripped_form(removed));
            changed = true;
        }
        if let Some(n) = legal_form_at_start(raws)
            && n < raws.len()
        {
            let removed: Vec<Raw> = raws.drain(..n).collect();
            name.stripped.push(stripped_form(removed));
            changed = true;
        }
        if !changed {
            break;
        }
    }
}

fn matches_form(tokens: &[Raw], form: &[&str]) -> bool {
    tokens.len() == form.len() && tokens.iter().zip(form).all(|(t, f)| t.text == *f)
}

/// The legal-form lexicon prepared for lookup: multi-token and single-token forms keyed
/// by their last and their first token, and the single-token forms of 4+ letters for the
/// fuzzy step, each with a letter mask. Built once; normalisation runs for every listed
/// name at import, so it must not scan the lexicon per token.
struct LegalLookup {
    /// Last token → lengths of the forms ending with it.
    by_last: HashMap<&'static str, Vec<usize>>,
    /// First token → lengths of the forms starting with it.
    by_first: HashMap<&'static str, Vec<usize>>,
    /// Single-token forms of 4+ letters, in lexicon order (the fuzzy step returns the
    /// first within reach, as a scan would).
    near: Vec<NearForm>,
}

/// A single-token legal form the fuzzy step may meet.
struct NearForm {
    form: &'static str,
    /// Edits allowed: 1, or 2 for a form of 8+ letters.
    allowed: usize,
    letters: u64,
}

/// A set of the bytes of `s`: one bit per letter and digit, every other byte on one
/// shared bit. Sharing only undercounts the letters one side lacks, so the bound in
/// [`near_legal_form`] never rejects a form within reach.
fn letter_mask(s: &str) -> u64 {
    s.bytes().fold(0u64, |m, b| {
        let bit = match b {
            b'a'..=b'z' => b - b'a',
            b'0'..=b'9' => 26 + (b - b'0'),
            _ => 63,
        };
        m | (1u64 << bit)
    })
}

fn legal_lookup() -> &'static LegalLookup {
    static LOOKUP: OnceLock<LegalLookup> = OnceLock::new();
    LOOKUP.get_or_init(|| {
        let mut by_last: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut by_first: HashMap<&'static str, Vec<usize>> = HashMap::new();
        let mut near = Vec::new();
        for form in lexicon::LEGAL_FORMS {
            if let (Some(first), Some(last)) = (form.first(), form.last()) {
                by_last.entry(last).or_default().push(form.len());
                by_first.entry(first).or_default().push(form.len());
            }
            if let [one] = form
                && one.len() >= 4
            {
                near.push(NearForm {
                    form: one,
                    allowed: if one.len() >= 8 { 2 } else { 1 },
                    letters: letter_mask(one),
                });
            }
        }
        LegalLookup {
            by_last,
            by_first,
            near,
        }
    })
}

fn legal_form_at_end(raws: &[Raw]) -> Option<usize> {
    let last = raws.last()?;
    legal_lookup()
        .by_last
        .get(last.text.as_str())?
        .iter()
        .copied()
        .filter(|len| *len <= raws.len())
        .filter(|len| {
            raws.get(raws.len() - len..).is_some_and(|tail| {
                lexicon::LEGAL_FORMS
                    .iter()
                    .any(|f| f.len() == *len && matches_form(tail, f))
            })
        })
        .max()
}

fn legal_form_at_start(raws: &[Raw]) -> Option<usize> {
    let first = raws.first()?;
    legal_lookup()
        .by_first
        .get(first.text.as_str())?
        .iter()
        .copied()
        .filter(|len| *len <= raws.len())
        .filter(|len| {
            raws.get(..*len).is_some_and(|head| {
                lexicon::LEGAL_FORMS
                    .iter()
                    .any(|f| f.len() == *len && matches_form(head, f))
            })
        })
        .max()
}

/// The first single-token legal form of 4+ letters (in lexicon order) one edit from
/// `token` (two for a form of 8+ letters). Forms are first screened by length and by
/// letters: an edit brings at most one letter the other side lacks, so a form with more
/// such letters than edits allowed (either way) is out of reach without computing the
/// distance.
fn near_legal_form(token: &str) -> Option<&'static str> {
    if token.len() < 3 {
        return None;
    }
    let letters = letter_mask(token);
    legal_lookup()
        .near
        .iter()
        .find(|f| {
            let allowed = f.allowed as u32;
            token.len().abs_diff(f.form.len()) <= f.allowed
                && (letters & !f.letters).count_ones() <= allowed
                && (f.letters & !letters).count_ones() <= allowed
                && super::distance::osa_distance(token, f.form) <= f.allowed
        })
        .map(|f| f.form)
}

fn stripped_form(removed: Vec<Raw>) -> Stripped {
    let text = removed
        .iter()
        .map(|r| r.original.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let normalized = removed
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Stripped {
        kind: StrippedKind::LegalForm,
        text,
        normalized,
    }
}

/// A consonant skeleton of a normalised token, used as a phonetic key for Latin
/// spelling variants and vowel-less transliterations (`mohammed`, `muhammad`,
/// `mohamed` and Arabic `mhmd` all give `mhmd`; `mukhammad` from Cyrillic too).
///
/// Rules: digraphs fold (`sch`/`sh` → s, `kh` → h, `ck`/`ch`/`q`/`g`/`gh` → k (French
/// `ch` for `ش` is compared through [`abjad_readings`]), `zh`/`dj`/`dzh` → j, `ph` → f,
/// `th` → s (Arabic ث: `Uthman` = `Osman`), `dh` → d (ذ ظ: `Qadhafi` = `Gaddafi`),
/// `x` → ks, `z`/`ts`/`tz` → s), vowels and `y`/`w`/`v` drop (`و` reads `w` but Persian
/// writes `v`: `Javad` = `جواد`), doubled consonants collapse (written together:
/// `Hassan` = `Hasan`; the same consonant on both sides of a vowel stays two, `Habib` →
/// `hbb`, `Magex` → `mkks`, not `Magus`'s `mks`). Digits are kept. In a
/// vowel-less token (an abjad transliteration, see [`is_abjad`]) `zh`, `ts` and `tz`
/// are two letters (`الزهراني` → `zhrny` is z+h, as in `Zahrani`).
pub fn skeleton(token: &str) -> String {
    fold(token, |_, _| {})
}

/// The skeleton with each run of vowels kept as one `a` (`mohammed` → `mahamad`,
/// `muhammad` → `mahamad`, `mahmoud` → `mahmad`): two spellings with the same shape differ
/// only in which vowels they write.
pub fn shape(token: &str) -> String {
    let mut gaps: Vec<bool> = Vec::new();
    let skel = fold(token, |gap, _| {
        if gaps.len() <= gap {
            gaps.resize(gap + 1, false);
        }
        if let Some(g) = gaps.get_mut(gap) {
            *g = true;
        }
    });
    let mut out = String::with_capacity(skel.len() * 2 + 1);
    for (i, c) in skel.chars().enumerate() {
        if gaps.get(i).copied().unwrap_or(false) {
            out.push('a');
        }
        out.push(c);
    }
    if gaps.get(skel.len()).copied().unwrap_or(false) {
        out.push('a');
    }
    out
}

/// True for a vowel-less token: a transliteration from Arabic or Persian script
/// (`mhmd`, `rshyd`), where only long vowels appear, as `y` and `w`. A leading `i`
/// (`إ`: `ibrhym`) and a trailing `a` (`ة`, `ى`: `mstfa`) are allowed when two or more
/// letters are left, so Latin `Ida` or `Ada` are not vowel-less.
pub fn is_abjad(token: &str) -> bool {
    let core = token.strip_prefix('i').unwrap_or(token);
    let core = core.strip_suffix('a').unwrap_or(core);
    core.len() >= 2
        && core.bytes().any(|b| b.is_ascii_alphabetic())
        && !core
            .bytes()
            .any(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u'))
}

/// The vowel letters of a token by the gap of its skeleton they sit in (gap `i` is
/// before the skeleton's letter `i`; the last gap is after its last letter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VowelGaps {
    /// The skeleton.
    pub skeleton: String,
    /// Per gap: the vowel letters (`a e i o u y w v`) in it, in order.
    pub gaps: Vec<String>,
    /// The token is vowel-less ([`is_abjad`]).
    pub abjad: bool,
}

/// The skeleton of a token with the vowels of each gap.
pub fn vowel_gaps(token: &str) -> VowelGaps {
    let mut gaps: Vec<String> = Vec::new();
    let skeleton = fold(token, |gap, c| {
        if gaps.len() <= gap {
            gaps.resize(gap + 1, String::new());
        }
        if let Some(g) = gaps.get_mut(gap) {
            g.push(c);
        }
    });
    gaps.resize(skeleton.len() + 1, String::new());
    VowelGaps {
        skeleton,
        gaps,
        abjad: is_abjad(token),
    }
}

/// Latin spellings that write an Arabic letter the French or Egyptian way, and the
/// English reading a vowel-less transliteration has: `ch` for `ش` (`Rachid` / `rshyd`),
/// `g` for `ج` (`Gamal` / `jml`).
const ABJAD_READINGS: &[(&str, &str)] = &[("ch", "sh"), ("g", "j")];

/// The other readings of a Latin token against a vowel-less transliteration
/// (the `ch`→`sh` and `g`→`j` readings: `rachid` → `rashid`, `gamal` → `jamal`); none for a vowel-less
/// token.
pub fn abjad_readings(token: &str) -> Vec<String> {
    if is_abjad(token) {
        return Vec::new();
    }
    ABJAD_READINGS
        .iter()
        .filter(|(from, _)| token.contains(from))
        .map(|(from, to)| token.replace(from, to))
        .collect()
}

/// The skeletons of the Latin spellings a vowel-less token may meet through
/// [`abjad_readings`] (`rshyd` → the skeleton of `rachid`, `jml` → that of `gml`).
pub fn latin_skeletons(abjad: &str) -> Vec<String> {
    if !is_abjad(abjad) {
        return Vec::new();
    }
    ABJAD_READINGS
        .iter()
        .filter(|(_, to)| abjad.contains(to))
        .map(|(from, to)| skeleton(&abjad.replace(to, from)))
        .collect()
}

/// Folds a token to its skeleton; `vowel(gap, letter)` sees each dropped vowel letter
/// with the number of skeleton letters before it.
fn fold(token: &str, mut vowel: impl FnMut(usize, char)) -> String {
    let b = token.as_bytes();
    let abjad = is_abjad(token);
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    // a doubled consonant collapses (`Hassan` = `Hasan`), the same consonant on both
    // sides of a vowel does not (`Habib` is `hbb`, not `hb`; `Magex` is `mkks`, not
    // `Magus`'s `mks`); nor does a letter written twice in a vowel-less token, where
    // Arabic script writes no doubled letter and the two had an unwritten `ع` or hamza
    // between them (`معمر` `mmr` is `Muammar`). Two letters that fold to one consonant
    // (`kc` in the code `KCJ`, `ck`) still collapse.
    let mut after_vowel = false;
    let mut prev_letter: Option<u8> = None;
    fn push(c: char, out: &mut String, keep: bool) {
        if keep || !out.ends_with(c) {
            out.push(c);
        }
    }
    while i < b.len() {
        let rest = b.get(i..).unwrap_or_default();
        let (c, adv) = if rest.starts_with(b"sch") || rest.starts_with(b"tch") {
            (if rest.starts_with(b"sch") { 's' } else { 'k' }, 3)
        } else if rest.starts_with(b"dzh") {
            ('j', 3)
        } else if rest.starts_with(b"sh")
            || rest.starts_with(b"th")
            || (!abjad && (rest.starts_with(b"ts") || rest.starts_with(b"tz")))
        {
            ('s', 2)
        } else if rest.starts_with(b"dh") {
            ('d', 2)
        } else if rest.starts_with(b"kh") {
            ('h', 2)
        } else if rest.starts_with(b"ch") || rest.starts_with(b"ck") {
            ('k', 2)
        } else if (!abjad && rest.starts_with(b"zh")) || rest.starts_with(b"dj") {
            ('j', 2)
        } else if rest.starts_with(b"ph") {
            ('f', 2)
        } else if rest.starts_with(b"gh") {
            ('k', 2)
        } else {
            let c = rest.first().map(|&c| char::from(c)).unwrap_or('a');
            let mapped = match c {
                'c' | 'q' | 'g' => 'k',
                'z' => 's',
                'x' => {
                    push('k', &mut out, after_vowel);
                    after_vowel = false;
                    's'
                }
                'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'w' | 'v' => {
                    vowel(out.len(), c);
                    after_vowel = true;
                    '\0'
                }
                other => other,
            };
            (mapped, 1)
        };
        if c != '\0' {
            let letter = (adv == 1).then(|| rest.first().copied()).flatten();
            let written_twice = abjad && letter.is_some() && letter == prev_letter;
            push(c, &mut out, after_vowel || written_twice);
            after_vowel = false;
            prev_letter = letter;
        } else {
            prev_letter = None;
        }
        i += adv;
    }
    out
}

/// How much a token counts in a name: initials, the light particles `abu`/`abd`,
/// generic organisation words (`trading`, `group`, ...) and titles written as given
/// names (`haji`, `seyed`, `sheikh`: [`lexicon::TITLE_NAMES`]) count half.
pub fn token_weight(text: &str) -> f64 {
    if text.len() <= 1
        || text == "abu"
        || text == "abd"
        || lexicon::is_generic(text)
        || lexicon::is_title_name(text)
    {
        0.5
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        normalize(s).tokens.into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn legal_forms_and_abbreviations() {
        let n = normalize("ACME TRDG. F.Z.E.");
        assert_eq!(texts("ACME TRDG. F.Z.E."), ["acme", "trading"]);
        assert_eq!(n.legal_forms().collect::<Vec<_>>(), ["fze"]);
        assert_eq!(n.expanded.len(), 1);
        assert_eq!(texts("Acme Trading FZE"), ["acme", "trading"]);
        assert_eq!(texts("ООО «Ромашка»"), ["romashka"]);
        assert_eq!(texts("Beta Industries Co., Ltd."), ["beta", "industries"]);
        assert_eq!(texts("PJSC Gamma Oil"), ["gamma", "oil"]);
        assert_eq!(texts("LLC"), ["llc"]);
        assert_eq!(
            texts("Jetix Technologies Coproration"),
            ["jetix", "technologies"]
        );
        assert_eq!(texts("Ivan Carp"), ["ivan", "carp"]);
    }

    /// The lexicon scans the lookups replaced (kept as the reference).
    fn scanned_near_legal_form(token: &str) -> Option<&'static str> {
        if token.len() < 3 {
            return None;
        }
        lexicon::LEGAL_FORMS
            .iter()
            .filter_map(|f| match f {
                [one] if one.len() >= 4 => Some(*one),
                _ => None,
            })
            .find(|form| {
                let allowed = if form.len() >= 8 { 2 } else { 1 };
                token.len().abs_diff(form.len()) <= allowed
                    && strsim::osa_distance(token, form) <= allowed
            })
    }

    fn scanned_at(raws: &[Raw], end: bool) -> Option<usize> {
        lexicon::LEGAL_FORMS
            .iter()
            .filter(|f| f.len() <= raws.len())
            .filter(|f| {
                let part = if end {
                    raws.get(raws.len() - f.len()..)
                } else {
                    raws.get(..f.len())
                };
                part.is_some_and(|p| matches_form(p, f))
            })
            .map(|f| f.len())
            .max()
    }

    fn raws(words: &[String]) -> Vec<Raw> {
        words
            .iter()
            .map(|w| Raw {
                text: w.clone(),
                original: w.clone(),
                transliterated: false,
                hyphen_after: false,
            })
            .collect()
    }

    /// Every single-token form, each with every one-letter deletion, substitution by a
    /// neighbour letter, insertion and transposition: the near-form lookup returns
    /// exactly what scanning the lexicon returned.
    #[test]
    fn legal_form_lookup_equals_the_lexicon_scan() {
        let mut probes: Vec<String> = Vec::new();
        for form in lexicon::LEGAL_FORMS.iter().flat_map(|f| f.iter()) {
            let b = form.as_bytes();
            probes.push((*form).to_owned());
            for i in 0..b.len() {
                let mut del = b.to_vec();
                del.remove(i);
                let mut sub = b.to_vec();
                if let Some(c) = sub.get_mut(i) {
                    *c = if *c == b'z' { b'a' } else { *c + 1 };
                }
                let mut ins = b.to_vec();
                ins.insert(i, b'o');
                let mut swap = b.to_vec();
                if i + 1 < swap.len() {
                    swap.swap(i, i + 1);
                }
                for v in [del, sub, ins, swap] {
                    probes.push(String::from_utf8(v).unwrap_or_default());
                }
            }
        }
        probes.extend(["coproration", "ltdd", "ivan", "carp", "gmbhh", "x"].map(String::from));
        for p in &probes {
            assert_eq!(near_legal_form(p), scanned_near_legal_form(p), "{p}");
        }
        // whole forms at either end of a name, and tails of them
        for form in lexicon::LEGAL_FORMS {
            for take in 1..=form.len() {
                let mut words: Vec<String> = vec!["acme".into(), "co".into()];
                words.extend(form.iter().skip(form.len() - take).map(|w| (*w).to_owned()));
                let r = raws(&words);
                assert_eq!(legal_form_at_end(&r), scanned_at(&r, true), "{words:?}");
                let mut words: Vec<String> =
                    form.iter().take(take).map(|w| (*w).to_owned()).collect();
                words.extend(["acme".to_owned(), "ltd".to_owned()]);
                let r = raws(&words);
                assert_eq!(legal_form_at_start(&r), scanned_at(&r, false), "{words:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn near_legal_form_equals_the_lexicon_scan(t in "[a-z0-9]{0,11}") {
            proptest::prop_assert_eq!(near_legal_form(&t), scanned_near_legal_form(&t));
        }
    }

    #[test]
    fn arabic_particles_and_scripts() {
        assert_eq!(texts("Mohammad al-Rashid"), ["mohammad", "rashid"]);
        assert_eq!(texts("AL RASHID, MOHAMMED"), ["rashid", "mohammed"]);
        assert_eq!(texts("محمد الرشيد"), ["mhmd", "rshyd"]);
        assert_eq!(texts("Abdulrahman bin Khalid"), ["abd", "rahman", "khalid"]);
        // a title written as a given name stays (the scorer reads it as a title)
        assert_eq!(
            texts("Sheikh Dr. Ahmed as-Sayed"),
            ["sheikh", "ahmed", "sayed"]
        );
        assert_eq!(texts("Dr. Mr. Ahmed Sayed"), ["ahmed", "sayed"]);
        assert_eq!(texts("РАШИД Мухаммад"), ["rashid", "mukhammad"]);
        assert_eq!(texts("张小明"), ["zhang", "xiaoming"]);
        assert_eq!(texts("北京华为科技有限公司"), ["beijing", "huawei", "keji"]);
        assert_eq!(texts("Γιώργος Παπαδόπουλος"), ["giorgos", "papadopoulos"]);
        assert_eq!(texts("Öztürk"), ["ozturk"]);
    }

    #[test]
    fn glued_articles_and_din_compounds() {
        for v in [
            "Nooruddin",
            "Nur al-Din",
            "Nur-ud-Din",
            "Nuruddin",
            "نور الدين",
        ] {
            let t = texts(v);
            assert_eq!(t.len(), 2, "{v}: {t:?}");
            assert_eq!(skeleton(&t[0]), "nr", "{v}");
            assert_eq!(skeleton(&t[1]), "dn", "{v}");
        }
        assert_eq!(texts("Salaheddine Akkacha"), ["salah", "din", "akkacha"]);
        // a Slavic surname ending in -din keeps its stem whole
        assert_eq!(texts("Ivan Baldin"), ["ivan", "baldin"]);
        assert_eq!(texts("Borodin"), ["borodin"]);
    }

    #[test]
    fn transliteration_families_fold_together() {
        for v in ["gaddafi", "qadhafi", "kadhafi", "qdhfy"] {
            assert_eq!(skeleton(v), "kdf", "{v}");
        }
        for v in ["osman", "uthman", "othman", "thmn"] {
            assert_eq!(skeleton(v), "smn", "{v}");
        }
        assert_eq!(skeleton(&abjad_readings("akkacha")[0]), skeleton("ksha"));
        assert_eq!(skeleton(&abjad_readings("gamal")[0]), skeleton("jml"));
        assert_eq!(latin_skeletons("jml"), [skeleton("gamal")]);
        assert_eq!(skeleton("djamel"), skeleton("jamel"));
        // between Latin spellings `ch` stays k (pinyin Chen is not Shen, Michael not Misael)
        assert_ne!(skeleton("chen"), skeleton("shen"));
        assert_ne!(skeleton("michael"), skeleton("misael"));
    }

    #[test]
    fn digraphs_are_not_folded_in_vowel_less_transliterations() {
        // الزهراني: z + h, two letters; as a Latin digraph zh would read ж
        assert_eq!(texts("الزهراني"), ["zhrny"]);
        assert_eq!(skeleton("zhrny"), skeleton("zahrani"));
        assert_eq!(skeleton("zhang"), "jnk");
        assert!(is_abjad("zhrny") && is_abjad("mstfa") && is_abjad("ibrhym") && is_abjad("ly"));
        assert!(!is_abjad("zahrani") && !is_abjad("ida") && !is_abjad("ody") && !is_abjad("andre"));
    }

    #[test]
    fn vowel_gaps_place_vowels_between_skeleton_letters() {
        let g = vowel_gaps("mohammed");
        assert_eq!(g.skeleton, "mhmd");
        assert_eq!(g.gaps, ["", "o", "a", "e", ""]);
        let g = vowel_gaps("hsyn");
        assert_eq!(g.gaps, ["", "", "y", ""]);
        assert!(g.abjad);
    }

    #[test]
    fn skeletons_fold_spelling_variants() {
        for v in ["mohammed", "muhammad", "mohamed", "mhmd", "mukhammad"] {
            assert_eq!(skeleton(v), "mhmd", "{v}");
        }
        assert_eq!(skeleton("rashid"), skeleton("rshyd"));
        assert_eq!(skeleton("hussein"), skeleton("hsyn"));
        assert_eq!(shape("mohammed"), shape("muhammad"));
        assert_ne!(shape("mahmoud"), shape("mohammed"));
        assert_eq!(shape("utaybi"), shape("otaibi"));
        assert_eq!(skeleton("javad"), skeleton("jwad"));
    }

    #[test]
    fn consonants_collapse_only_when_adjacent() {
        // a doubled consonant is one (`Hassan` = `Hasan`, `Sajjad` = `Sajad`)
        assert_eq!(skeleton("hassan"), skeleton("hasan"));
        assert_eq!(skeleton("sajjad"), "sjd");
        assert_eq!(skeleton("mohammed"), "mhmd");
        // the same consonant on both sides of a vowel is two (`Habib` is not `Hab`,
        // `Magex` is not `Magus`: `g` and the `k` of `x` were one)
        assert_eq!(skeleton("habib"), "hbb");
        assert_eq!(skeleton("hbyb"), "hbb");
        assert_eq!(skeleton("magex"), "mkks");
        assert_ne!(skeleton("magex"), skeleton("magus"));
        assert_eq!(skeleton("david"), skeleton("dawud"));
        // a vowel-less token writes no doubled letter: two equal letters are two
        // (`معمر` is `Muammar`, `mmr`)
        assert_eq!(skeleton("mmr"), "mmr");
        assert_eq!(skeleton("muammar"), "mmr");
        assert_eq!(skeleton("mumin"), skeleton("mmn"));
        // two letters that fold to one consonant still collapse (`UR-KCJ` / `UR-CKJ`)
        assert_eq!(skeleton("kcj"), skeleton("ckj"));
        // the vowels stay in their gaps
        let g = vowel_gaps("habib");
        assert_eq!(g.gaps, ["", "a", "i", ""]);
    }
}
