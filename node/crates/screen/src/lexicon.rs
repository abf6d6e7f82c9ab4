//! Word lists the normaliser uses: organisation legal forms, person honorifics, Arabic
//! name particles, abbreviations and stop words.
//!
//! They live apart from the normaliser's code so that a reviewer (or an agency that
//! reports a missed legal form) can read and extend the lists without touching logic.
//! Every entry is written in the normalised form: lower-case ASCII letters and digits,
//! one string per token (so `F.Z.E.`, `FZE` and `ООО`/`OOO` appear once each).

/// Organisation legal forms as token sequences. Stripped from the start or the end of a
/// name (never from the middle), longest sequence first.
pub(crate) const LEGAL_FORMS: &[&[&str]] = &[
    // multi-token forms first (matching prefers the longest)
    &["gmbh", "co", "kg"],
    &["sp", "z", "oo"],
    // Latin American forms (`S. de R.L. de C.V.`, `S.A.P.I. de C.V.`), frequent on
    // consolidated lists
    &["s", "de", "rl", "de", "cv"],
    &["srl", "de", "cv"],
    &["sapi", "de", "cv"],
    &["sab", "de", "cv"],
    &["sa", "de", "cv"],
    &["s", "de", "rl"],
    &["cia", "ltda"],
    &["co", "ltd"],
    &["co", "llc"],
    &["co", "inc"],
    &["company", "limited"],
    &["company", "ltd"],
    &["pte", "ltd"],
    &["pvt", "ltd"],
    &["private", "limited"],
    &["sdn", "bhd"],
    &["fz", "llc"],
    &["fz", "co"],
    &["public", "joint", "stock", "company"],
    &["closed", "joint", "stock", "company"],
    &["open", "joint", "stock", "company"],
    &["joint", "stock", "company"],
    &["limited", "liability", "company"],
    &["limited", "liability", "partnership"],
    &["kabushiki", "kaisha"],
    &["youxian", "gongsi"],
    &["youxian", "zeren", "gongsi"],
    &["gufen", "youxian", "gongsi"],
    // single tokens
    &["llc"],
    &["ltd"],
    &["limited"],
    &["gmbh"],
    &["mbh"],
    &["fze"],
    &["fzco"],
    &["fzc"],
    &["fzllc"],
    &["dmcc"],
    &["ooo"],
    // Russian `АО` (joint-stock company), as `OAO`/`ZAO`/`PAO`
    &["ao"],
    // Singapore's `Pte.` written without its `Ltd.` (`PTE. Co.`, `PTE. Inc.`)
    &["pte"],
    &["zao"],
    &["oao"],
    &["pao"],
    &["sarl"],
    &["sas"],
    &["sa"],
    &["sl"],
    &["srl"],
    &["sro"],
    &["spa"],
    &["co"],
    &["inc"],
    &["incorporated"],
    &["corp"],
    &["corporation"],
    &["jsc"],
    &["pjsc"],
    &["cjsc"],
    &["ojsc"],
    &["llp"],
    &["lp"],
    &["plc"],
    &["bv"],
    &["nv"],
    &["ag"],
    &["kg"],
    &["ab"],
    &["oy"],
    &["aps"],
    &["asa"],
    &["kft"],
    &["zrt"],
    &["doo"],
    &["eood"],
    &["ltda"],
    &["sac"],
    &["saa"],
    &["sal"],
    &["eirl"],
    &["ca"],
    &["bhd"],
    &["tbk"],
    &["pt"],
    &["wll"],
    &["spc"],
    &["est"],
    &["establishment"],
    &["kk"],
    &["gongsi"],
    // `Co` is stripped, so its long form must be too (`Acme Company` = `Acme Co`)
    &["company"],
];

/// Honorifics and titles, stripped from the start of a name (several may follow each
/// other: "Dr. Sheikh ...").
pub(crate) const HONORIFICS: &[&str] = &[
    "mr",
    "mrs",
    "ms",
    "miss",
    "mx",
    "dr",
    "prof",
    "professor",
    "sir",
    "dame",
    "madam",
    "madame",
    "mme",
    "mlle",
    "herr",
    "frau",
    "sheikh",
    "shaikh",
    "sheik",
    "shaykh",
    "cheikh",
    "haji",
    "hajji",
    "hadji",
    "hajj",
    "alhaj",
    "alhajj",
    "mullah",
    "mulla",
    "imam",
    "ayatollah",
    "general",
    "gen",
    "lt",
    "colonel",
    "col",
    "major",
    "maj",
    "capt",
    "captain",
    "admiral",
    "adm",
    "brigadier",
    "brig",
    "sgt",
    "sergeant",
    "eng",
    "engr",
    "engineer",
    "ustad",
    "ustaz",
    "rev",
    "gospodin",
    "gospozha",
    "haj",
    // titles that are also written as given names (see TITLE_NAMES)
    "seyed",
    "seyyed",
    "sayed",
    "sayyed",
    "sayyid",
    "syed",
    "mawlawi",
    "maulawi",
    "mawlavi",
    "maulavi",
    "molvi",
    "maulvi",
    "moulvi",
    "mawlana",
    "maulana",
    "mollah",
    "mulah",
    "sheykh",
    "shaik",
    "hojatoleslam",
];

/// The honorifics of [`HONORIFICS`] that are religious or social titles written in
/// the place of a given name (`Seyed Ali`, `Haji Basir`, `Sheikh Ibrahim`, `Mullah
/// Omar`, `Mawlawi Abdul Kabir`): descent from the Prophet (`Sayyid` and its
/// spellings), the pilgrimage (`Haji`), elders and scholars (`Sheikh`, `Mullah`,
/// `Mawlawi`, `Imam`, `Ustad`). Unlike `Mr` or `Dr`, a list keeps them as part of the
/// name, so the normaliser keeps them as tokens instead of stripping them; the scorer
/// reads them as titles ([`is_title_name`]): a title meets only a title, counts half,
/// and is optional when unmatched. So a title never carries a match on its own
/// (`Seyed Sabsabi` is not `SABSABI, Ziyad`), while a name written as title and
/// surname finds the listed person whose title and surname agree (`Haji Basir` /
/// `BASIR, Haji Abdul`).
pub(crate) const TITLE_NAMES: &[&str] = &[
    "seyed",
    "seyyed",
    "sayed",
    "sayyed",
    "sayyid",
    "syed",
    "haji",
    "hajji",
    "hadji",
    "hajj",
    "haj",
    "alhaj",
    "alhajj",
    "sheikh",
    "shaikh",
    "sheik",
    "shaykh",
    "sheykh",
    "shaik",
    "cheikh",
    "mullah",
    "mulla",
    "mollah",
    "mulah",
    "mawlawi",
    "maulawi",
    "mawlavi",
    "maulavi",
    "molvi",
    "maulvi",
    "moulvi",
    "mawlana",
    "maulana",
    "imam",
    "ayatollah",
    "hojatoleslam",
    "ustad",
    "ustaz",
];

/// True for a title written in the place of a given name ([`TITLE_NAMES`]).
pub(crate) fn is_title_name(token: &str) -> bool {
    TITLE_NAMES.contains(&token)
}

/// Abbreviations expanded to their full word, so that `ACME TRDG` meets `Acme Trading`.
pub(crate) const ABBREVIATIONS: &[(&str, &str)] = &[
    ("trdg", "trading"),
    ("tradg", "trading"),
    ("trd", "trading"),
    ("intl", "international"),
    ("internat", "international"),
    ("mfg", "manufacturing"),
    ("mfrs", "manufacturers"),
    ("engg", "engineering"),
    ("engrg", "engineering"),
    ("svcs", "services"),
    ("svc", "service"),
    ("mgmt", "management"),
    ("grp", "group"),
    ("hldg", "holding"),
    ("hldgs", "holdings"),
    ("bros", "brothers"),
    ("assoc", "associates"),
    ("natl", "national"),
    ("dev", "development"),
    ("devt", "development"),
    ("elec", "electronics"),
    ("electr", "electronics"),
    ("chem", "chemical"),
    ("pharm", "pharmaceutical"),
    ("ind", "industries"),
    ("inds", "industries"),
    ("indus", "industries"),
    ("tech", "technology"),
    ("techn", "technology"),
    ("technol", "technology"),
    ("ent", "enterprises"),
    ("entp", "enterprises"),
    ("mktg", "marketing"),
    ("distr", "distribution"),
    ("equip", "equipment"),
    ("sys", "systems"),
    ("sci", "scientific"),
    ("impex", "import export"),
    ("imp", "import"),
    ("exp", "export"),
    ("logist", "logistics"),
    ("shpg", "shipping"),
    ("transp", "transport"),
    ("petrochem", "petrochemical"),
    ("aero", "aerospace"),
    ("gen", "general"),
    ("genl", "general"),
    ("mach", "machinery"),
    ("fdn", "foundation"),
    ("fndn", "foundation"),
    ("coml", "commercial"),
    ("comml", "commercial"),
    ("assn", "association"),
    ("inst", "institute"),
    ("univ", "university"),
    ("acad", "academy"),
    ("govt", "government"),
    ("dept", "department"),
    ("ctr", "center"),
    ("corpn", "corporation"),
];

/// Words that carry no identity in names and are dropped.
pub(crate) const STOPWORDS: &[&str] = &["the", "of", "and", "und", "et"];

/// Arabic definite-article particles (`al-Rashid`, `el-Sayed`, `ar-Rashid`), stripped when
/// another token follows. The assimilated forms (`ar`, `as`, `ash`, ...) only count when
/// written with a hyphen, since they are also ordinary words.
pub(crate) const ARTICLE_PARTICLES: &[&str] = &["al", "el", "ul"];
/// Assimilated forms of the article, recognised only before a hyphen.
pub(crate) const ASSIMILATED_PARTICLES: &[&str] = &[
    "ad", "adh", "an", "ar", "as", "ash", "at", "ath", "az", "ed", "en", "er", "es", "esh", "et",
    "ez", "ud",
];
/// Spellings of `al-Din` written as one word after a name (`Nur Uddin`, `Nur Eddine`).
pub(crate) const DIN_FORMS: &[&str] = &["uddin", "uddeen", "uddine", "eddin", "eddine", "iddin"];
/// Endings of a name glued to `al-Din` (`Nooruddin`, `Salaheddine`, `Alaaldin`), split
/// into the name and `din` when 3 or more letters are left.
pub(crate) const DIN_SUFFIXES: &[&str] = &[
    "uddin", "uddeen", "uddine", "eddin", "eddine", "iddin", "aldin", "addin",
];
/// Patronymic connectors (`bin`, `ibn`, `ben`, `bint`), stripped when not the last token.
pub(crate) const NASAB_PARTICLES: &[&str] = &["bin", "ibn", "ben", "bint", "binti", "bn"];
/// Spellings of `abu` ("father of"), which stays a (light) token.
pub(crate) const ABU_FORMS: &[&str] = &["abu", "abou", "abo"];
/// Spellings of `abd` ("servant of"); `abdul`, `abdel` ... glued to the next word are split.
pub(crate) const ABD_FORMS: &[&str] = &["abd", "abdul", "abdel", "abdal", "abdol", "abdur", "abdu"];
/// Whole names that start like `abd` forms but are one word.
pub(crate) const ABD_WHOLE: &[&str] = &[
    "abdullah", "abdallah", "abdulla", "abdalla", "abdellah", "abdollah", "abdulah",
];

/// Looks up an abbreviation's expansion.
pub(crate) fn abbreviation(token: &str) -> Option<&'static str> {
    ABBREVIATIONS
        .iter()
        .find(|(short, _)| *short == token)
        .map(|(_, long)| *long)
}

/// True for a person honorific.
pub(crate) fn is_honorific(token: &str) -> bool {
    HONORIFICS.contains(&token)
}

/// Generic words of organisation names (sector words, in English and pinyin); they
/// count half in the name score since many unrelated companies share them.
pub(crate) const GENERIC_ORG_WORDS: &[&str] = &[
    "aerospace",
    "chemical",
    "chemicals",
    "company",
    "components",
    "dianzi",
    "electronics",
    "energy",
    "engineering",
    "enterprises",
    "equipment",
    "export",
    "general",
    "global",
    "group",
    "guangdian",
    "guoji",
    "holding",
    "holdings",
    "huagong",
    "import",
    "industries",
    "industry",
    "international",
    "jixie",
    "keji",
    "logistics",
    "machinery",
    "manufacturing",
    "maoyi",
    "marine",
    "nengyuan",
    "service",
    "services",
    "shipping",
    "shiye",
    "solutions",
    "supply",
    "systems",
    "technologies",
    "technology",
    "trading",
    "wuliu",
];

/// True for a generic organisation word.
pub(crate) fn is_generic(token: &str) -> bool {
    GENERIC_ORG_WORDS.binary_search(&token).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_words_are_sorted_for_binary_search() {
        assert!(GENERIC_ORG_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(is_generic("trading") && !is_generic("acme"));
    }
}
