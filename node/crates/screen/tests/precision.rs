//! The precision classes of issue 25, one test per class: each shows the class's
//! variants now matching (or its false matches now staying under the threshold), and a
//! regression test that a Latin-only name does not alert on an unrelated one because
//! of the change. Every score checked here is also recomputed from its explanation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use wlnode_crypto::model::{AgencyCode, EntryId, SubjectKind};
use wlnode_screen::score::MatchMethod;
use wlnode_screen::{DEFAULT_MIN_SCORE, Match, Query, ScreenDoc, ScreenIndex};

fn doc(n: u8, kind: SubjectKind, names: &[&str]) -> ScreenDoc {
    ScreenDoc {
        entry_id: EntryId([n; 16]),
        origin: AgencyCode::new("AA-EXPORT").unwrap(),
        kind,
        names: names.iter().map(|s| s.to_string()).collect(),
        country: None,
        nationality: None,
        birth_date: None,
        identifiers: Vec::new(),
        addresses: Vec::new(),
        withdrawn: false,
        reason: None,
        categories: Vec::new(),
    }
}

/// The score is the explanation's arithmetic.
fn check(m: &Match) {
    let e = &m.explanation;
    let (sw, w) = e.token_matches.iter().fold((0.0, 0.0), |(sw, w), t| {
        (sw + t.similarity * t.weight, w + t.weight)
    });
    let counted: f64 = e.unmatched.iter().map(|u| u.counted_weight).sum();
    let name_score = if w > 0.0 { sw / (w + counted) } else { 0.0 };
    let adj: f64 = e.adjustments.iter().map(|a| a.delta).sum();
    assert!(
        (name_score - (e.matched_similarity + adj)).abs() < 1e-9,
        "{e:?}"
    );
    assert!((m.score - name_score.clamp(0.0, 1.0)).abs() < 1e-9);
}

/// Best score of `query` against an index of `listed` (one entry per name), without
/// threshold, and the entry it came from.
fn best(kind: SubjectKind, listed: &[&str], query: &str) -> (f64, usize) {
    let docs = listed
        .iter()
        .enumerate()
        .map(|(i, n)| doc(u8::try_from(i).unwrap(), kind, &[n]));
    let ix = ScreenIndex::build(docs);
    let mut q = Query::new(query);
    q.min_score = 0.0;
    let res = ix.search(&q).unwrap();
    res.iter().for_each(check);
    res.first()
        .map(|m| (m.score, usize::from(m.entry_id.0[0])))
        .unwrap_or((0.0, usize::MAX))
}

fn person(listed: &str, query: &str) -> f64 {
    best(SubjectKind::Person, &[listed], query).0
}

fn org(listed: &str, query: &str) -> f64 {
    best(SubjectKind::Organization, &[listed], query).0
}

fn alerts(score: f64) -> bool {
    score >= DEFAULT_MIN_SCORE
}

#[test]
fn glued_articles() {
    for (listed, query) in [
        ("Ahmed al-Nasir", "Ahmed Alnasir"),
        ("Mohammed al-Najdi", "Mohammed Alnajdi"),
        ("Ahmed Alnasir", "Ahmed al-Nasir"),
        ("Khalid el-Masri", "Khalid Elmasri"),
        ("Nur al-Din Ahmadi", "Nooruddin Ahmadi"),
        ("Salah al-Din Yusuf", "Salaheddine Youssef"),
        ("Alauddin Karimi", "Ala al-Din Karimi"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
    let ix = ScreenIndex::build([doc(1, SubjectKind::Person, &["Ahmed al-Nasir"])]);
    let m = &ix.search(&Query::new("Ahmed Alnasir")).unwrap()[0];
    assert!(m.explanation.token_matches.iter().any(|t| t.method
        == MatchMethod::GluedArticle {
            article: "al".into()
        }));
}

#[test]
fn glued_articles_latin_regression() {
    // a first name that starts like the article is not read as one
    assert!(!alerts(person("Bert Stone", "Albert Stone")));
    assert!(!alerts(person("Ena Morris", "Elena Morris")));
    // nor is a Slavic surname in -din split like Nur al-Din
    assert!(!alerts(person("Ivan Bal", "Ivan Baldin")));
}

#[test]
fn transliteration_families() {
    for (listed, query) in [
        ("Muammar Gaddafi", "Moammar Qadhafi"),
        ("Muammar Gaddafi", "Muammar Kadhafi"),
        ("Muammar Gaddafi", "معمر القذافي"),
        ("Uthman Ali", "Osman Ali"),
        ("Osman Ali", "عثمان علي"),
        ("Omar Hassan", "Omer Hassan"),
        ("Akkasha Jamel", "Akkacha Djamel"),
        ("Bashir Hashem", "Bachir Hachem"),
        ("عكاشة رشيد", "Akkacha Rachid"),
        ("Rachid Akkacha", "رشيد عكاشة"),
        ("Gamal Saleh", "جمال صالح"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn transliteration_families_latin_regression() {
    // folding g/k and th/s still needs the vowels to agree
    assert!(!alerts(person("Kenny Miller", "Gina Miller")));
    assert!(!alerts(person("Kyle Brown", "Gail Brown")));
}

#[test]
fn digraphs_in_transliterated_arabic() {
    // الزهراني is z + h; read as the digraph zh (ж) it missed the Latin listing
    let (s, _) = best(
        SubjectKind::Person,
        &["Saeed al-Zahrani", "Saeed al-Jarani"],
        "سعيد الزهراني",
    );
    assert!(alerts(s), "{s:.3}");
    assert_eq!(
        best(
            SubjectKind::Person,
            &["Saeed al-Zahrani", "Saeed al-Jarani"],
            "سعيد الزهراني"
        )
        .1,
        0
    );
    // Persian ژ is one letter (ж), not z + h
    assert!(alerts(person("Mahmoud Ahmadinejad", "محمود احمدینژاد")));
}

#[test]
fn digraphs_in_transliterated_arabic_latin_regression() {
    // a Latin zh still reads ж
    assert!(!alerts(person("Sanna Ivanova", "Zhanna Ivanova")));
}

#[test]
fn vowel_blind_equivalence() {
    for (listed, query) in [
        ("Omar Khan", "Amir Khan"),
        ("Hussain Ali", "Hasan Ali"),
        ("Mohammed Abbas", "Mahmoud Abbas"),
        ("Mahmoud Abbas", "Mohammed Abbas"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    for (listed, query) in [
        ("Muhammad Abbas", "Mohammed Abbas"),
        ("Khalid al-Otaibi", "Khaled al-Utaybi"),
        ("Youssef Ibrahim", "Yusuf Ebrahim"),
        ("Hussein Ali", "Husayn Ali"),
        ("Sulaiman Hassan", "Suleiman Hasan"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn vowel_blind_equivalence_latin_regression() {
    assert!(!alerts(person("Tom Becker", "Tim Becker")));
    assert!(!alerts(person("Ada Becker", "Ida Becker")));
}

#[test]
fn short_names() {
    // one consonant each: the skeleton alone no longer reaches the threshold
    assert!(!alerts(org("AQI", "UCI")));
    assert!(!alerts(person("Aly", "Ali")));
    // but it still counts beside other tokens
    assert!(alerts(person("Aly Hassan", "Ali Hassan")));
}

#[test]
fn short_names_latin_regression() {
    assert!(!alerts(org("OKO", "IKEA")));
    assert!(!alerts(person("Ody Smith", "Ida Smith")));
}

#[test]
fn legal_forms_and_abbreviations() {
    for (listed, query) in [
        ("Acme Company", "Acme Co"),
        ("Acme Co Ltd", "Acme Company Limited"),
        ("National Iranian Oil Company", "Natl Iranian Oil Co"),
        ("Lumex General Trading Foundation", "Lumex Genl Trading Fdn"),
        ("Commercial Bank of Syria", "Coml Bank of Syria"),
        ("Rostek International Company", "Rostek Intl Co"),
        ("Sharif Scientific Institute", "Sharif Sci Inst"),
    ] {
        let s = org(listed, query);
        assert!(s > 0.97, "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn legal_forms_latin_regression() {
    assert!(!alerts(org("Apex Company", "Acme Company")));
    assert!(!alerts(org("Acme Foundry", "Acme Fdn")));
}

#[test]
fn coverage() {
    // the right entry's full name beats a short alias of another entry that covers
    // only the query's first and last token
    let (s, e) = best(
        SubjectKind::Person,
        &["Jon Michael Smyth", "John Smith"],
        "John Michael Smith",
    );
    assert_eq!(e, 0, "{s:.3}");
    // a query that leaves out a listed middle name still finds it
    assert!(alerts(person("John Michael Smith", "John Smith")));
}

#[test]
fn coverage_latin_regression() {
    assert!(!alerts(person("Ali Mansour", "Ali Hassan Kamal Mansour")));
    assert!(!alerts(person("Maria Garcia", "Maria Elena Sofia Garcia")));
}

#[test]
fn original_script_vowel_less_aliases() {
    // حسن is Hasan: its skeleton no longer stands for Hussein
    assert!(!alerts(person("Hussein Ali", "حسن علي")));
    assert!(alerts(person("Hasan Ali", "حسن علي")));
    // محمود writes its long u: not Mohammed
    assert!(!alerts(person("Mohammed Abbas", "محمود عباس")));
    assert!(alerts(person("Mahmoud Abbas", "محمود عباس")));
    // and the reverse: a vowel-less listing is not a wildcard for Latin queries
    assert!(!alerts(person("حسين علي", "Hasan Ali")));
    assert!(alerts(person("حسين علي", "Hussein Ali")));
}

#[test]
fn original_script_vowel_less_aliases_latin_regression() {
    assert!(!alerts(person("Husain Ali", "Hassan Ali")));
}

#[test]
fn acronym_queries() {
    let listed = [
        "National Iranian Oil Company",
        "Islamic Republic of Iran Shipping Lines",
        "Korea Mining Development Trading Corporation",
        "Bank Melli Iran",
    ];
    // capitals or dotted letters spell the initials of every word, legal form optional
    for (query, want) in [
        ("NIOC", 0),
        ("N.I.O.C.", 0),
        ("NIO", 0),
        ("IRISL", 1),
        ("KOMID", usize::MAX),
        ("KMDTC", 2),
    ] {
        let (s, e) = best(SubjectKind::Organization, &listed, query);
        if want == usize::MAX {
            // initials of syllables (KOMID) are not initials of words
            assert!(!alerts(s), "{query}: {s:.3}");
        } else {
            assert_eq!(e, want, "{query}");
            assert!(s > 0.0, "{query}");
        }
    }
    // four letters and more alert; three rank the organisation but do not alert
    assert!(alerts(org("National Iranian Oil Company", "NIOC")));
    assert!(!alerts(org("National Iranian Oil Company", "NIO")));
    assert!(!alerts(org("Bank Melli Iran", "BMI")));
    // explained as initials, the pair covering every listed token
    let ix = ScreenIndex::build([doc(
        1,
        SubjectKind::Organization,
        &["National Iranian Oil Company"],
    )]);
    let m = &ix.search(&Query::new("NIOC")).unwrap()[0];
    check(m);
    assert_eq!(m.explanation.token_matches[0].method, MatchMethod::Initial);
    assert_eq!(m.explanation.token_matches[0].name, vec![0, 1, 2]);
}

#[test]
fn acronym_queries_latin_regression() {
    // a name typed in lower or mixed case is never read as an acronym
    assert!(!alerts(org("Nordic Industrial Oil Corp", "Nioc")));
    assert!(!alerts(org("Atlas Logistics International", "Ali")));
    // nor are a person's initials, nor a name of several words
    assert!(!alerts(person("Nadia Ines Olga Castro", "NIOC")));
    assert!(!alerts(org("National Iranian Oil Company", "NIOC Trading")));
    assert!(!alerts(org("North Island Ocean Carriers", "NIOS")));
}

#[test]
fn surname_first_listed_persons() {
    // consolidated lists write persons `SURNAME, Given names`: a middle name left out
    // of the query costs what it costs in a name written given names first, and a
    // title after the comma is a title
    for (listed, query) in [
        ("FADLALLAH, Shaykh Muhammad Husayn", "Muhammad Fadlallah"),
        ("MANAN, Abdul Rahim", "Abdul Manan"),
        ("NASSER ARANA, Carlos Alberto", "Carlos Nasser Arana"),
        (
            "AL-ZOMOR, Abboud Abdul Latif Hassan",
            "Abboud Hassan Al-Zomor",
        ),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
        assert!(
            (s - person(&listed_given_first(listed), query)).abs() < 1e-9,
            "{listed}"
        );
    }
    // a query written surname first reads the same as given names first
    let a = person("Muhammad Husayn Fadlallah", "FADLALLAH, Muhammad");
    let b = person("Muhammad Husayn Fadlallah", "Muhammad Fadlallah");
    assert!((a - b).abs() < 1e-9, "{a} {b}");
}

fn listed_given_first(listed: &str) -> String {
    let (sur, given) = listed.split_once(", ").unwrap();
    format!("{given} {sur}")
}

#[test]
fn surname_first_listed_persons_latin_regression() {
    // another given name with the listed surname stays under the threshold
    assert!(!alerts(person(
        "NASSER ARANA, Carlos Alberto",
        "Jorge Nasser Arana"
    )));
    assert!(!alerts(person("SMITH, John", "Peter Smith")));
    // an organisation with a comma is not reordered, nor a query with a legal form
    // after its comma
    assert!(alerts(org(
        "ANHUI LAND GROUP CO., LIMITED",
        "ANHUI LAND GROUP CO., LIMITED"
    )));
    assert!(!alerts(org(
        "ANHUI LAND GROUP CO., LIMITED",
        "ANHUI SEA GROUP"
    )));
}

#[test]
fn latin_american_legal_forms() {
    for (listed, query) in [
        (
            "MARIMBA ENTERTAINMENT, S.R.L. DE C.V.",
            "Marimba Entertainment FZE",
        ),
        (
            "G Y R ARQUITECTOS, S. DE R.L. DE C.V.",
            "G Y R Arquitectos LLC",
        ),
        ("AVIANDINA S.A.C.", "AVIANDINA"),
        ("SALLIZAR SHIPPING SAL", "Sallizar Shipping Co."),
    ] {
        let s = org(listed, query);
        assert!(s > 0.97, "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn latin_american_legal_forms_latin_regression() {
    // the form goes, the distinctive word stays
    assert!(!alerts(org("AVIANDINA S.A.C.", "AVIANCA S.A.C.")));
    assert!(!alerts(org(
        "Marimba Entertainment S. de R.L.",
        "Rumba Entertainment S. de R.L."
    )));
}

#[test]
fn short_syllable_vowel_changes() {
    // Chinese, Vietnamese and Korean names are written one syllable a token, and the
    // vowel is most of the syllable: a vowel change makes another name
    for (listed, query) in [
        ("CHOI, Chin-pang", "Ping Chen"),
        ("HUANG, Wang Ken", "Huong Nguyen"),
        ("Chen Ping", "Chen Pang"),
        ("KANG, Min", "Min Wang"),
        ("CHANG, Ping Yun", "Ding Chang"),
        ("Wang Lin", "Wang Lan"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    // the same syllables spelt alike, and romanisations of one vowel, still meet
    for (listed, query) in [
        ("Chen Ping", "Chen Ping"),
        ("Lee Min Ho", "Li Min Ho"),
        ("Kang Mun-kil", "Kang Moun-kil"),
        ("Kim Jong Un", "Kym Jong Un"),
        ("Nguyen Van Huong", "Nguyễn Văn Hương"),
        ("Zhang Xiaoming", "Zhang Xiao Ming"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn short_syllable_vowel_changes_latin_regression() {
    // unrelated Latin names with one vowel changed in a short word stay apart
    assert!(!alerts(person("Juan Martin", "Jean Martin")));
    assert!(!alerts(person("Tim Hanson", "Tom Hanson")));
    // and the rule leaves transliterations of Arabic alone: vowels there are unwritten
    assert!(alerts(person("Omar Hassan", "Omer Hasan")));
    assert!(alerts(person("Zaid Khalil", "Zayd Khalil")));
}

#[test]
fn two_of_three_tokens() {
    // two of three tokens paired exactly, the third a first or last token the other
    // side lacks: under the threshold, on either side
    for (listed, query) in [
        ("MANSOUR, Mohammad Youssef", "Youssef Mansour"),
        ("Youssef Mansour", "Karim Youssef Mansour"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    assert!(!alerts(org("Azure Falcon Kestrel", "Azure Kestrel")));
    // an optional token left out still alerts: a middle name, an initial
    for (listed, query) in [
        ("MANSOUR, Mohammad Youssef", "Mohammad Mansour"),
        ("Mohammad Y. Mansour", "Mohammad Mansour"),
        ("John Michael Smith", "John Smith"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
    // and four tokens with three paired still alert
    assert!(alerts(person(
        "Carlos Alberto Nasser Arana",
        "Alberto Nasser Arana"
    )));
}

#[test]
fn two_of_three_tokens_latin_regression() {
    assert!(!alerts(person("Peter Paul Rubens", "Peter Paul")));
    assert!(!alerts(person("Anna Maria Keller", "Maria Keller Stein")));
}

#[test]
fn nisba_surnames() {
    // `Mohammadi`, `Mahmoudi`, `Ibrahimi` are surnames made from a name, not the name
    for (listed, query) in [
        ("MOHAMMED, Mustafa", "Mustafa Mohammadi"),
        ("MAHMOUDI, Mohammad", "Mohamed Mahmoud"),
        ("IBRAHIMI, Hasan Dahqan", "Hassan Ibrahim"),
        ("SALAMI, Hossein", "Hossein Salam"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    // spellings of the same name with the ending on both sides still meet
    assert!(alerts(person("AHMADI, Reza", "Reza Ahmady")));
    assert!(alerts(person("MOHAMMADI, Ali", "Ali Mohamadi")));
}

#[test]
fn nisba_surnames_latin_regression() {
    assert!(!alerts(person("Mario Rossi", "Mario Ross")));
    assert!(alerts(person("Andrei Popescu", "Andre Popescu")));
}

#[test]
fn surnames_of_surname_first_persons() {
    // `SURNAME1 SURNAME2, Given`: the surnames are never optional middle names
    let listed = "MONTOYA SANCHEZ, Juan Carlos";
    let s = person(listed, "Juan Sanchez");
    assert!(!alerts(s), "{s:.3}");
    // before, `Montoya` counted as a middle name: 4 / 4.6
    // a given middle name left out still alerts
    assert!(alerts(person(listed, "Juan Montoya Sanchez")));
}

#[test]
fn surnames_of_surname_first_persons_latin_regression() {
    assert!(!alerts(person("GIL GARCIA, Jose Alejandro", "Jose Garcia")));
    assert!(!alerts(person("SMITH JONES, Peter", "Peter Brown Jones")));
}

#[test]
fn single_letters_in_organisation_names() {
    // a letter of an organisation's or vessel's name is not an initial of a query word
    assert!(!alerts(org("M-SAAN", "Susan Milczyk")));
    assert!(!alerts(org("YK-AYE", "Ayşe Kaya")));
    let vessel = best(SubjectKind::Vessel, &["M-SAAN"], "Susan Milczyk").0;
    assert!(!alerts(vessel), "{vessel:.3}");
    // the name itself still alerts, and so does a listed person's initial
    assert!(alerts(org("M-SAAN", "M SAAN")));
    assert!(alerts(person("SMITH, J. Peter", "John Peter Smith")));
}

#[test]
fn single_letters_in_organisation_names_latin_regression() {
    assert!(!alerts(org("J M Holdings", "James Morgan Holdings")));
    assert!(!alerts(org("A. Z. Shipping", "Anna Zimmer Shipping")));
}

#[test]
fn vowel_less_latin_tokens() {
    // `KGK` written in Latin letters is an acronym, not an unvowelled transliteration
    // whose skeleton `k` meets any name spelling one `k` sound
    let s = org("KGK", "AYACHE, Dr.");
    assert!(!alerts(s), "{s:.3}");
    assert!(alerts(org("KGK", "KGK")));
    // a vowel-less transliteration of Arabic script still meets Latin spellings
    assert!(alerts(person("محمد علي", "Mohammed Ali")));
    assert!(alerts(person("Mohammed Ali", "محمد علي")));
}

#[test]
fn vowel_less_latin_tokens_latin_regression() {
    assert!(!alerts(org("MBC", "Mubac")));
    assert!(!alerts(person("Brd Tmr", "Bardo Timur")));
}

#[test]
fn abd_compounds() {
    // `Abd al-Rahman` is one name written in two tokens: it weighs one name, and no
    // longer carries a name whose one distinctive token is another name
    let s = person("MILAD, Abd al-Rahman", "Milan Abd el-Rahman");
    assert!(s < 0.93, "{s:.3}");
    // two compounds that differ still do not alert
    assert!(!alerts(person(
        "MILAD, Abd al-Karim",
        "Milad Abd al-Rahman"
    )));
    // the name, and spellings of it, still alert
    for query in [
        "Milad Abd al-Rahman",
        "Milad Abdul Rahman",
        "Abdelrahman Milad",
        "Milad Abd al-Rahmane",
    ] {
        let s = person("MILAD, Abd al-Rahman", query);
        assert!(alerts(s), "{query}: {s:.3}");
    }
}

#[test]
fn abd_compounds_latin_regression() {
    assert!(!alerts(person(
        "CARPENTER, Peter Michael",
        "John Michael Carpenter"
    )));
    assert!(!alerts(person("SMITH, Peter", "John Smith")));
}

#[test]
fn titles_as_given_names() {
    // a title written in the place of a given name (`Seyed`, `Haji`, `Sheikh`, `Mullah`,
    // `Mawlawi`) meets only a title: it no longer carries the listed person's given
    // name on its skeleton (`Seyed` / `Ziyad` was 0.94)
    for (listed, query) in [
        ("SABSABI, Ziyad", "Seyed Sabsabi"),
        ("SABSABI, Ziyad", "Sabsabi Seyed"),
        ("KHALIL, Shakir", "Sheikh Khalil"),
        ("RAHMAN, Mala", "Mullah Rahman"),
        ("KABIR, Mawla", "Mawlawi Kabir"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    // a title the listed name lacks is a token it lacks (it was stripped: 0.934)
    assert!(person("FARHAT, Mohammad", "Haji Mohammad Farzat") < 0.92);
    // a name that is only title and surname finds the listed person whose title and
    // surname agree, in any of the title's spellings
    for (listed, query) in [
        ("BASIR, Haji Abdul", "Haji Basir"),
        ("SABSABI, Sayyid Ahmad", "Seyed Sabsabi"),
        ("ZAHIR, Mullah Abdul", "Mulla Zahir"),
        ("AL-SHAMI, Shaykh Ibrahim", "Sheikh Ibrahim al-Shami"),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
    // a listed title left unmatched does not make the query's extra middle name a
    // variant it failed to reach (`ASHRAF, Haji M.` / `Mohammadreza Ali Ashraf` was 0.848)
    let s = person("ASHRAF, Haji M.", "ASHRAF, Mohammadreza Ali");
    assert!(!alerts(s), "{s:.3}");
    // a title the query adds or leaves out costs little
    assert!(person("SABSABI, Ziyad", "Seyed Ziyad Sabsabi") > 0.9);
    assert!(person("SABSABI, Haji Ziyad", "Ziyad Sabsabi") > 0.9);
    // `Dr` and `Mr` are still stripped
    assert!(person("SABSABI, Ziyad", "Dr. Ziyad Sabsabi") > 0.99);
}

#[test]
fn titles_as_given_names_latin_regression() {
    assert!(!alerts(person("Ziyad Smith", "Sayed Smith")));
    assert!(!alerts(person("Harry Miller", "Haji Miller")));
    assert!(alerts(person("Harry Miller", "Mr Harry Miller")));
}

#[test]
fn short_nisba_surnames() {
    // the nisba rule holds for short names too: `Lami` is `Lam` with a nisba, another
    // name (it needed four letters before the ending: 0.887)
    let s = person("AL-LAMI, Ismail", "Ismael Lam");
    assert!(!alerts(s), "{s:.3}");
    assert!(!alerts(person("NURI, Ahmad", "Ahmed Nur")));
    // the same short name spelt another way still meets
    assert!(alerts(person("AL-LAMI, Ismail", "Ismael Lamy")));
    assert!(alerts(person("AL-LAMI, Ismail", "Ismail al-Lami")));
}

#[test]
fn short_nisba_surnames_latin_regression() {
    assert!(!alerts(person("Sami Berg", "Sam Berg")));
    assert!(alerts(person("Toni Berg", "Tony Berg")));
}

#[test]
fn conflicting_patronymics() {
    // two patronymics that differ name two fathers (was 0.835 on the real list)
    let s = person("NAZAROV, Sergey Makarovich", "Sergei Vladimirovich Nazarov");
    assert!(!alerts(s), "{s:.3}");
    let s = person("IVANOVA, Olga Petrovna", "Olga Sergeyevna Ivanova");
    assert!(!alerts(s), "{s:.3}");
    // the same patronymic, or none on one side, still alerts
    assert!(alerts(person(
        "NAZAROV, Sergey Makarovich",
        "Sergei Makarovich Nazarov"
    )));
    assert!(alerts(person(
        "NAZAROV, Sergey Makarovich",
        "Sergei Nazarov"
    )));
    assert!(alerts(person(
        "NAZAROV, Sergey",
        "Sergei Makarovich Nazarov"
    )));
}

#[test]
fn conflicting_patronymics_latin_regression() {
    assert!(!alerts(person(
        "John Heinrich Meyer",
        "Jon Ulrich Meyer Smith"
    )));
    assert!(alerts(person("John Heinrich Meyer", "John Meyer")));
}

#[test]
fn different_middle_given_names() {
    // a middle given name on each side, neither a spelling of the other: two people
    // (0.909, 0.812, 0.806 and 0.800 on the real list)
    for (listed, query) in [
        (
            "CASTILLO LONDONO, Claudia Jannet",
            "LONDONO, Claudia Patricia Castillo",
        ),
        ("ASADI, Ali Farhan", "Ali Mansur al-Saadi"),
        ("SALEH, Abdel Moneim Ahmad", "Abdul Aziz Adil Ahmad Saleh"),
        ("MUHAYIRI, Muhammad Nasir", "Mohamed Adil al-Muhairi"),
    ] {
        let s = person(listed, query);
        assert!(!alerts(s), "{query} / {listed}: {s:.3}");
    }
    // a middle name left out, or spelt another way, still alerts
    for (listed, query) in [
        (
            "CASTILLO LONDONO, Claudia Jannet",
            "Claudia Castillo Londono",
        ),
        (
            "CASTILLO LONDONO, Claudia Jannet",
            "Claudia Janet Castillo Londono",
        ),
        ("ASADI, Ali Farhan", "Ali Farhan Asadi"),
        ("BRODSKY, Ivan Josef", "Ivan Iosif Brodsky"),
        (
            "AL-HAYASHI, Sayf Abdulrab Salem",
            "Saif Abdoulrab Salem Al-hayashi",
        ),
    ] {
        let s = person(listed, query);
        assert!(alerts(s), "{query} / {listed}: {s:.3}");
    }
}

#[test]
fn different_middle_given_names_latin_regression() {
    assert!(!alerts(person("SMITH, John Peter", "John Paul Smith")));
    assert!(alerts(person("SMITH, John Peter", "John Smith")));
    assert!(alerts(person("SMITH, John Peter", "John Pete Smith")));
}

#[test]
fn same_consonant_across_a_vowel() {
    // the same consonant on both sides of a vowel is two consonants, not a doubled one
    // (`Magex` met `Magus` on one skeleton: 0.918 on the real list)
    let s = org("MAGUS HOLDING LLC", "Magex Holdings Inc");
    assert!(!alerts(s), "{s:.3}");
    let s = person("HAB, Rahman", "Rahman Habib");
    assert!(!alerts(s), "{s:.3}");
    // a letter written twice in a vowel-less transliteration is two (`معمر` is
    // `Muammar`), two letters folding to one consonant are one (`KCJ` / `CKJ`)
    assert!(alerts(person("QADHAFI, Muammar", "معمر القذافي")));
    assert!(alerts(org("UR-CKJ", "UR-KCJ")));
    // doubled consonants and spellings of one name still meet
    assert!(alerts(person("HABIB, Ahmad", "Ahmed Habeeb")));
    assert!(alerts(person("HABIB, Ahmad", "Ahmed Habbib")));
    assert!(alerts(person("HASSAN, Ali", "Ali Hasan")));
    assert!(alerts(person("TAHMASEBI, Sajjad", "Sajad Tahmasebi")));
}

#[test]
fn same_consonant_across_a_vowel_latin_regression() {
    assert!(!alerts(org("LULU TRADING LLC", "Lu Trading")));
    assert!(alerts(org("LULU TRADING LLC", "Loulou Trading")));
    assert!(alerts(org("KOKO TRADING LLC", "Coco Trading")));
}
