//! The screening engine finds listed entries under the name variants officers meet
//! (typos, other scripts, reordered tokens, dropped middle names, initials, changed
//! legal forms, honorifics), keeps true negatives under the threshold, explains every
//! score consistently, and updates incrementally.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, RwLock};

use proptest::prelude::*;
use wlnode_crypto::model::{AgencyCode, CountryCode, EntryId, Identifier, SubjectKind};
use wlnode_crypto::time::PartialDate;
use wlnode_screen::score::{AdjustmentKind, MatchMethod, Side};
use wlnode_screen::{
    DEFAULT_MIN_SCORE, EntryKey, Match, Query, QueryError, ScreenDoc, ScreenIndex,
};

fn id(n: u8) -> EntryId {
    EntryId([n; 16])
}

fn doc(n: u8, kind: SubjectKind, names: &[&str]) -> ScreenDoc {
    ScreenDoc {
        entry_id: id(n),
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

fn person(n: u8, names: &[&str]) -> ScreenDoc {
    doc(n, SubjectKind::Person, names)
}

fn org(n: u8, names: &[&str]) -> ScreenDoc {
    doc(n, SubjectKind::Organization, names)
}

const RASHID: u8 = 1;
const ACME: u8 = 2;
const PETROVSKY: u8 = 3;
const PAPADOPOULOS: u8 = 4;
const ZHANG: u8 = 5;
const HUAWEI: u8 = 6;
const OZTURK: u8 = 7;
const BOUT: u8 = 8;
const SMITH: u8 = 9;
const REZAEI: u8 = 10;

fn fixture() -> ScreenIndex {
    let mut rashid = person(RASHID, &["Mohammad al-Rashid"]);
    rashid.country = Some(CountryCode::new("AE").unwrap());
    rashid.birth_date = Some(PartialDate::parse("1970-05-02").unwrap());
    rashid.identifiers = vec![Identifier {
        kind: "passport".into(),
        value: "X1234567".into(),
    }];
    let mut bout = person(BOUT, &["Viktor Anatolyevich Bout"]);
    bout.withdrawn = true;
    let docs = vec![
        rashid,
        org(ACME, &["Acme Trading FZE", "ACME TRDG. F.Z.E."]),
        person(PETROVSKY, &["Sergei Ivanovich Petrovsky"]),
        person(PAPADOPOULOS, &["Georgios Papadopoulos"]),
        person(ZHANG, &["Zhang Xiaoming"]),
        org(HUAWEI, &["北京华为科技有限公司"]),
        person(OZTURK, &["Mehmet Öztürk"]),
        bout,
        person(SMITH, &["John Robert Smith"]),
        person(REZAEI, &["Ali Rezaei"]),
        // distractors that share tokens with the targets
        person(20, &["Mohammed Hassan"]),
        person(21, &["Ahmed al-Rashidi"]),
        person(22, &["Sergey Ivanov"]),
        person(23, &["Ivan Petrov"]),
        org(24, &["Acme Logistics GmbH"]),
        person(25, &["Zhang Wei"]),
        person(26, &["Georgios Papadakis"]),
        person(27, &["Rashid Khan"]),
        person(28, &["Mehmet Yilmaz"]),
        person(29, &["Jane Smith"]),
        org(30, &["Beijing Keji Trading Co., Ltd."]),
        person(31, &["Ali Hosseini"]),
    ];
    ScreenIndex::build(docs)
}

fn search(index: &ScreenIndex, name: &str) -> Vec<Match> {
    index.search(&Query::new(name)).unwrap()
}

/// Asserts that `name` finds entry `n` first, above the default threshold.
fn finds_first(index: &ScreenIndex, name: &str, n: u8) -> Match {
    let res = search(index, name);
    assert!(!res.is_empty(), "{name:?} found nothing");
    let top = res[0].clone();
    assert_eq!(
        top.entry_id,
        id(n),
        "{name:?}: expected entry {n} first, got {:?} ({:.3})",
        top.matched_name,
        top.score
    );
    assert!(top.score >= DEFAULT_MIN_SCORE && top.score <= 1.0);
    top
}

fn methods(m: &Match) -> Vec<MatchMethod> {
    m.explanation
        .token_matches
        .iter()
        .map(|t| t.method.clone())
        .collect()
}

#[test]
fn exact_name_scores_one() {
    let ix = fixture();
    let m = finds_first(&ix, "Mohammad al-Rashid", RASHID);
    assert!((m.score - 1.0).abs() < 1e-12);
    assert_eq!(m.matched_name, "Mohammad al-Rashid");
}

#[test]
fn typos() {
    let ix = fixture();
    let m = finds_first(&ix, "Sergei Ivanovich Petrovksy", PETROVSKY);
    assert!(m.score > 0.9, "{}", m.score);
    assert!(methods(&m).iter().any(|x| matches!(
        x,
        MatchMethod::Fuzzy {
            edit_distance: 1,
            ..
        }
    )));
    finds_first(&ix, "Mohamad al-Rashld", RASHID);
    finds_first(&ix, "Georgios Papadopolous", PAPADOPOULOS);
}

#[test]
fn transliteration_cyrillic() {
    let ix = fixture();
    let m = finds_first(&ix, "Сергей Иванович Петровский", PETROVSKY);
    assert!(m.score > 0.85, "{}", m.score);
    assert!(m.explanation.token_matches.iter().all(|t| t.transliterated));
    finds_first(&ix, "РАШИД Мухаммад", RASHID);
}

#[test]
fn transliteration_arabic_and_persian() {
    let ix = fixture();
    let m = finds_first(&ix, "محمد الرشيد", RASHID);
    assert!(
        methods(&m)
            .iter()
            .any(|x| matches!(x, MatchMethod::Phonetic { .. }))
    );
    assert!(
        m.explanation
            .query_stripped
            .iter()
            .any(|s| s.normalized == "al")
    );
    finds_first(&ix, "علی رضایی", REZAEI);
}

#[test]
fn transliteration_greek_and_chinese() {
    let ix = fixture();
    let m = finds_first(&ix, "Γιώργος Παπαδόπουλος", PAPADOPOULOS);
    assert!(m.score > 0.9, "{}", m.score);
    let m = finds_first(&ix, "张小明", ZHANG);
    assert!(methods(&m).contains(&MatchMethod::Transliterated));
    assert!((m.score - 1.0).abs() < 1e-12);
    // Latin query against a listed Han name, legal form in another language
    let m = finds_first(&ix, "Beijing Huawei Keji Co., Ltd.", HUAWEI);
    assert!(m.score > 0.95);
}

#[test]
fn arabic_name_variants_all_find_the_same_entry() {
    let ix = fixture();
    for q in [
        "Mohammad al-Rashid",
        "Muhammed Rashid",
        "AL RASHID, MOHAMMED",
        "РАШИД Мухаммад",
        "محمد الرشيد",
        "Mohamed el-Rashid",
        "Muhammad ar-Rashid",
    ] {
        finds_first(&ix, q, RASHID);
    }
}

#[test]
fn token_order() {
    let ix = fixture();
    let m = finds_first(&ix, "Petrovsky Sergei Ivanovich", PETROVSKY);
    assert!((m.score - 1.0).abs() < 1e-12);
    finds_first(&ix, "Xiaoming Zhang", ZHANG);
    finds_first(&ix, "SMITH, John Robert", SMITH);
}

#[test]
fn dropped_middle_name() {
    let ix = fixture();
    let m = finds_first(&ix, "Sergei Petrovsky", PETROVSKY);
    assert!(m.score > 0.85 && m.score < 1.0, "{}", m.score);
    let un = &m.explanation.unmatched;
    assert_eq!(un.len(), 1);
    assert_eq!(un[0].side, Side::Name);
    assert_eq!(un[0].text, "ivanovich");
    let missing = &m.explanation.adjustments[0];
    assert_eq!(missing.kind, AdjustmentKind::MissingTokens);
    assert!(missing.delta < 0.0);
    finds_first(&ix, "John Smith", SMITH);
}

#[test]
fn initials() {
    let ix = fixture();
    let m = finds_first(&ix, "J. R. Smith", SMITH);
    assert!(methods(&m).contains(&MatchMethod::Initial));
    finds_first(&ix, "S. I. Petrovsky", PETROVSKY);
}

#[test]
fn legal_form_changes() {
    let ix = fixture();
    for q in [
        "ACME TRDG. F.Z.E.",
        "Acme Trading FZE",
        "Acme Trading LLC",
        "ACME TRADING CO., LTD.",
        "OOO Acme Trading",
    ] {
        let m = finds_first(&ix, q, ACME);
        assert!((m.score - 1.0).abs() < 1e-12, "{q}: {}", m.score);
    }
    let m = finds_first(&ix, "Acme Trdg GmbH", ACME);
    assert!(
        m.explanation
            .query_stripped
            .iter()
            .any(|s| s.normalized == "gmbh")
    );
    assert!(
        m.explanation
            .query_expanded
            .iter()
            .any(|e| e.from == "trdg" && e.to == "trading")
    );
    // the alias matched with its own legal form recorded
    let m = finds_first(&ix, "ACME TRDG. F.Z.E.", ACME);
    assert!(
        m.explanation
            .name_stripped
            .iter()
            .any(|s| s.normalized == "fze")
    );
}

#[test]
fn honorifics() {
    let ix = fixture();
    let m = finds_first(&ix, "Dr. Sheikh Mohammad al-Rashid", RASHID);
    let stripped: Vec<_> = m
        .explanation
        .query_stripped
        .iter()
        .map(|s| s.normalized.as_str())
        .collect();
    // `Dr` is stripped; `Sheikh`, a title written as a given name, stays a token that
    // meets only a title and, unmatched, costs half a middle name (0.5 × 0.3)
    assert!(stripped.contains(&"dr") && !stripped.contains(&"sheikh"));
    assert!((m.score - 4.0 / 4.15).abs() < 1e-12, "{}", m.score);
    assert!(
        m.explanation.unmatched.iter().any(|u| u.text == "sheikh"),
        "{:?}",
        m.explanation.unmatched
    );
    finds_first(&ix, "Mr John Robert Smith", SMITH);
    finds_first(&ix, "Haji Mehmet Ozturk", OZTURK);
}

#[test]
fn true_negatives_stay_under_the_threshold() {
    let ix = fixture();
    for q in [
        "Olga Sidorova",
        "Global Widgets Inc",
        "Peter Jones",
        "Hassan Nasrallah Mahmoud",
        "Wang Fang",
        "Konstantinos Nikolaidis",
        "Zenith Marine Services",
        "Acme Widgets",
    ] {
        let res = search(&ix, q);
        assert!(
            res.is_empty(),
            "{q:?} matched {:?} at {:.3}",
            res[0].matched_name,
            res[0].score
        );
    }
}

/// Every score is recomputed from its explanation.
fn assert_consistent(m: &Match) {
    let e = &m.explanation;
    let (mut sw, mut w) = (0.0, 0.0);
    for t in &e.token_matches {
        assert!((0.0..=1.0).contains(&t.similarity));
        sw += t.similarity * t.weight;
        w += t.weight;
    }
    let matched = if w > 0.0 { sw / w } else { 0.0 };
    assert!((matched - e.matched_similarity).abs() < 1e-9);
    let counted: f64 = e.unmatched.iter().map(|u| u.counted_weight).sum();
    let mut adj = e.adjustments.iter();
    if !e.unmatched.is_empty() {
        let missing = adj.next().unwrap();
        assert_eq!(missing.kind, AdjustmentKind::MissingTokens);
        let name_score = if w > 0.0 { sw / (w + counted) } else { 0.0 };
        assert!((missing.delta - (name_score - matched)).abs() < 1e-9);
    }
    for a in adj {
        assert_ne!(a.kind, AdjustmentKind::MissingTokens);
    }
    let sum: f64 = e.adjustments.iter().map(|a| a.delta).sum();
    let recomputed = (matched + sum).clamp(0.0, 1.0);
    assert!(
        (recomputed - e.score).abs() < 1e-9,
        "{recomputed} vs {}",
        e.score
    );
    assert!((m.score - e.score).abs() < 1e-12);
    // tokens referenced by matches exist and are used once
    let mut q_used = vec![false; e.query_tokens.len()];
    let mut n_used = vec![false; e.name_tokens.len()];
    for t in &e.token_matches {
        for &i in &t.query {
            assert!(!q_used[i]);
            q_used[i] = true;
        }
        for &i in &t.name {
            assert!(!n_used[i]);
            n_used[i] = true;
        }
    }
    for u in &e.unmatched {
        let used = match u.side {
            Side::Query => &mut q_used,
            Side::Name => &mut n_used,
        };
        assert!(!used[u.index]);
        used[u.index] = true;
    }
    assert!(q_used.iter().all(|u| *u) && n_used.iter().all(|u| *u));
}

#[test]
fn explanations_add_up_to_the_score() {
    let ix = fixture();
    let mut checked = 0;
    for name in [
        "Mohammad al-Rashid",
        "Sergei Petrovsky",
        "J. R. Smith",
        "محمد الرشيد",
        "Acme Trdg GmbH",
        "Zhang",
        "Ivan Sergeevich Petrov",
        "Rashid",
        "Mehmet",
    ] {
        let mut q = Query::new(name);
        q.min_score = 0.0;
        q.limit = 50;
        q.include_withdrawn = true;
        for with_facts in [false, true] {
            if with_facts {
                q.country = Some(CountryCode::new("AE").unwrap());
                q.birth_date = Some(PartialDate::parse("1970").unwrap());
                q.identifier = Some(Identifier {
                    kind: "passport".into(),
                    value: "x123-4567".into(),
                });
            }
            for m in ix.search(&q).unwrap() {
                assert_consistent(&m);
                checked += 1;
                let json = serde_json::to_value(&m).unwrap();
                assert!(json["explanation"]["token_matches"].is_array());
                assert_eq!(json["entry_id"].as_str().unwrap().len(), 32);
            }
        }
    }
    assert!(checked > 40, "{checked}");
}

#[test]
fn withdrawn_entries_only_with_include_withdrawn() {
    let ix = fixture();
    assert!(search(&ix, "Viktor Bout").is_empty());
    let mut q = Query::new("Viktor Bout");
    q.include_withdrawn = true;
    let res = ix.search(&q).unwrap();
    assert_eq!(res[0].entry_id, id(BOUT));
    assert!(res[0].withdrawn);
}

#[test]
fn upsert_replaces_names_and_remove_removes() {
    let mut ix = fixture();
    let before = ix.len();
    let vocab = ix.vocabulary_len();
    ix.upsert(org(50, &["Quantum Widgets Trading LLC"]));
    assert_eq!(ix.len(), before + 1);
    finds_first(&ix, "Quantum Widgets Trading", 50);
    ix.upsert(org(50, &["Nebula Shipping Ltd", "Nebula Marine"]));
    assert_eq!(ix.len(), before + 1);
    assert!(search(&ix, "Quantum Widgets Trading").is_empty());
    finds_first(&ix, "Nebula Shipping", 50);
    finds_first(&ix, "Nebula Marine", 50);
    // a new version that withdraws the entry
    let mut w = org(50, &["Nebula Shipping Ltd"]);
    w.withdrawn = true;
    ix.upsert(w);
    assert!(search(&ix, "Nebula Shipping").is_empty());
    let key = EntryKey {
        origin: AgencyCode::new("AA-EXPORT").unwrap(),
        entry_id: id(50),
    };
    assert!(ix.remove(&key));
    assert!(!ix.remove(&key));
    assert_eq!(ix.len(), before);
    let mut q = Query::new("Nebula Shipping");
    q.include_withdrawn = true;
    assert!(ix.search(&q).unwrap().is_empty());
    // tokens of removed names leave the vocabulary
    assert_eq!(ix.vocabulary_len(), vocab);
    // the same entry id from another origin is another entry
    let mut other = person(RASHID, &["Someone Else Entirely"]);
    other.origin = AgencyCode::new("BB-CUSTOMS").unwrap();
    ix.upsert(other);
    assert_eq!(ix.len(), before + 1);
    finds_first(&ix, "Mohammad al-Rashid", RASHID);
}

#[test]
fn incremental_index_equals_bulk_build() {
    let bulk = fixture();
    let mut inc = ScreenIndex::new();
    // insert in another order, with a detour through other names
    let mut docs = vec![
        person(PETROVSKY, &["Placeholder Name"]),
        org(ACME, &["Acme Trading FZE", "ACME TRDG. F.Z.E."]),
        person(PETROVSKY, &["Sergei Ivanovich Petrovsky"]),
        person(ZHANG, &["Zhang Xiaoming"]),
        person(25, &["Zhang Wei"]),
    ];
    for d in docs.drain(..) {
        inc.upsert(d);
    }
    for q in ["Sergei Petrovsky", "Zhang Xiaoming", "Acme Trading LLC"] {
        let a = search(&bulk, q);
        let b = search(&inc, q);
        assert_eq!(a[0].entry_id, b[0].entry_id);
        assert!((a[0].score - b[0].score).abs() < 1e-12);
    }
    assert!(search(&inc, "Placeholder Name").is_empty());
}

#[test]
fn identifier_match_is_decisive() {
    let ix = fixture();
    let mut q = Query::new("Completely Different Person");
    q.identifier = Some(Identifier {
        kind: "Passport".into(),
        value: "x-123 4567".into(),
    });
    let res = ix.search(&q).unwrap();
    assert_eq!(res[0].entry_id, id(RASHID));
    assert!((res[0].score - 1.0).abs() < 1e-12);
    assert!(
        res[0]
            .explanation
            .adjustments
            .iter()
            .any(|a| a.kind == AdjustmentKind::IdentifierMatch)
    );
    assert_consistent(&res[0]);
    // another passport number lowers the score
    let mut q = Query::new("Mohammad al-Rashid");
    q.identifier = Some(Identifier {
        kind: "passport".into(),
        value: "Y7654321".into(),
    });
    q.min_score = 0.0;
    let res = ix.search(&q).unwrap();
    assert_eq!(res[0].entry_id, id(RASHID));
    assert!(res[0].score < 0.95);
}

#[test]
fn country_and_date_raise_or_lower() {
    let ix = fixture();
    let score = |country: Option<&str>, date: Option<&str>| {
        let mut q = Query::new("Muhammed Rashid");
        q.min_score = 0.0;
        q.country = country.map(|c| CountryCode::new(c).unwrap());
        q.birth_date = date.map(|d| PartialDate::parse(d).unwrap());
        let res = ix.search(&q).unwrap();
        let m = res.iter().find(|m| m.entry_id == id(RASHID)).unwrap();
        assert_consistent(m);
        m.score
    };
    let plain = score(None, None);
    assert!(score(Some("AE"), None) > plain);
    assert!(score(Some("DE"), None) < plain);
    assert!(score(None, Some("1970-05")) > plain);
    assert!(score(None, Some("1971")) < plain);
    assert!(score(Some("DE"), Some("1971")) < score(Some("DE"), None));
}

#[test]
fn kind_filter() {
    let ix = fixture();
    let mut q = Query::new("Acme Trading");
    q.kind = Some(SubjectKind::Person);
    assert!(ix.search(&q).unwrap().is_empty());
    q.kind = Some(SubjectKind::Organization);
    assert_eq!(ix.search(&q).unwrap()[0].entry_id, id(ACME));
}

#[test]
fn bad_queries_are_errors() {
    let ix = fixture();
    assert_eq!(ix.search(&Query::new("")), Err(QueryError::EmptyName));
    assert_eq!(ix.search(&Query::new(" \t\n ")), Err(QueryError::EmptyName));
    let long = "a".repeat(513);
    assert_eq!(
        ix.search(&Query::new(long)),
        Err(QueryError::NameTooLong {
            chars: 513,
            max: 512
        })
    );
    assert!(ix.search(&Query::new("ж".repeat(512))).is_ok());
    assert!(matches!(
        ix.search(&Query::new("!!! ??? ---")),
        Err(QueryError::NothingToMatch { .. })
    ));
    let mut q = Query::new("Smith");
    q.limit = 0;
    assert!(matches!(
        ix.search(&q),
        Err(QueryError::InvalidLimit { .. })
    ));
    let mut q = Query::new("Smith");
    q.min_score = f64::NAN;
    assert!(matches!(ix.search(&q), Err(QueryError::InvalidMinScore(_))));
    let mut q = Query::new("Smith");
    q.identifier = Some(Identifier {
        kind: "passport".into(),
        value: " - ".into(),
    });
    assert_eq!(ix.search(&q), Err(QueryError::InvalidIdentifier));
}

#[test]
fn concurrent_readers_behind_a_rwlock() {
    let ix = Arc::new(RwLock::new(fixture()));
    let expected = search(&ix.read().unwrap(), "Sergei Petrovsky")[0].clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let ix = Arc::clone(&ix);
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let g = ix.read().unwrap();
                    let r = search(&g, "Sergei Petrovsky");
                    assert_eq!(r[0].entry_id, id(PETROVSKY));
                    let _ = search(&g, "Acme Trading LLC");
                }
            })
        })
        .collect();
    ix.write()
        .unwrap()
        .upsert(person(60, &["Writer Thread Entry"]));
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(search(&ix.read().unwrap(), "Sergei Petrovsky")[0], expected);
}

#[test]
fn memory_estimate_grows_with_content() {
    let empty = ScreenIndex::new().memory_bytes();
    let ix = fixture();
    assert!(ix.memory_bytes() > empty);
    assert_eq!(ix.len(), 22);
    assert_eq!(ix.names_len(), 23);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}", t in ".{0,40}") {
        let ix = fixture();
        let _ = wlnode_screen::normalize::normalize(&s);
        let _ = wlnode_screen::normalize::normalize(&t);
        let mut q = Query::new(s.clone());
        q.min_score = 0.0;
        if let Ok(res) = ix.search(&q) {
            for m in &res {
                assert_consistent(m);
            }
        }
        let _ = ix.search(&Query::new(t));
    }

    #[test]
    fn arbitrary_names_index_and_remove(names in proptest::collection::vec("\\PC{0,30}", 1..4)) {
        let mut ix = fixture();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        ix.upsert(person(70, &refs));
        for n in &names {
            let mut q = Query::new(n.clone());
            q.min_score = 0.0;
            let _ = ix.search(&q);
        }
        let key = EntryKey { origin: AgencyCode::new("AA-EXPORT").unwrap(), entry_id: id(70) };
        prop_assert!(ix.remove(&key));
        prop_assert_eq!(ix.len(), 22);
    }
}

#[test]
fn officers_filters_choose_candidates_not_just_results() {
    use wlnode_crypto::model::{Category, Reason};
    // 100 entries of one name from AA-EXPORT, and one from BB-CUSTOMS listed for
    // another reason and category: more than the candidate pool holds, so a filter
    // applied only to the final results would lose the one that passes.
    let mut docs: Vec<ScreenDoc> = (0..100).map(|n| org(n, &["Acme Trading LLC"])).collect();
    let mut other = org(200, &["Acme Trading LLC"]);
    other.origin = AgencyCode::new("BB-CUSTOMS").unwrap();
    other.reason = Some(Reason::Sanctions);
    other.categories = vec![Category::new("ML1").unwrap()];
    docs.push(other);
    for d in &mut docs[..100] {
        d.reason = Some(Reason::Denial);
    }
    let index = ScreenIndex::build(docs);
    let run = |f: &dyn Fn(&mut Query)| {
        let mut q = Query::new("Acme Trading LLC");
        q.limit = 5;
        f(&mut q);
        index.search(&q).unwrap()
    };
    let only = |m: Vec<Match>| m.iter().map(|m| m.entry_id).collect::<Vec<_>>();
    assert_eq!(
        only(run(
            &|q| q.filter.origin = Some(AgencyCode::new("BB-CUSTOMS").unwrap())
        )),
        vec![id(200)]
    );
    assert_eq!(
        only(run(&|q| q.filter.reason = Some(Reason::Sanctions))),
        vec![id(200)]
    );
    assert_eq!(
        only(run(
            &|q| q.filter.category = Some(Category::new("ML1").unwrap())
        )),
        vec![id(200)]
    );
    let excluded = run(&|q| {
        q.filter.exclude = (0..100).map(id).collect();
    });
    assert_eq!(only(excluded), vec![id(200)]);
    // unfiltered: five results, all scored alike
    assert_eq!(run(&|_| {}).len(), 5);
}

/// Address matching (issue 22 item 3): an entry address that holds most of the query
/// address's words raises the score a little and says which words; one that differs, or
/// none at all, changes nothing; the words every address has do not count.
#[test]
fn address_agreement_raises_and_explains_and_a_different_address_costs_nothing() {
    let mut listed = org(1, &["Orion Avionics Trading LLC"]);
    listed.addresses = vec![
        "Office 1204, Al Quoz Industrial Area 3, Dubai".into(),
        "Plot S10412, Jebel Ali Free Zone, Dubai".into(),
    ];
    let mut elsewhere = org(2, &["Orion Avionics Trading LLC"]);
    elsewhere.addresses = vec!["Lenin Street 5, Novosibirsk".into()];
    let bare = org(3, &["Orion Avionics Trading LLC"]);
    let idx = ScreenIndex::build([listed, elsewhere, bare]);
    let score_of = |q: &Query, n: u8| -> Match {
        idx.search(q)
            .unwrap()
            .into_iter()
            .find(|m| m.entry_id == id(n))
            .unwrap()
    };
    let mut q = Query::new("Orian Avionix Trading");
    let plain = score_of(&q, 1).score;
    assert!(plain < 0.95, "{plain}");
    q.address = Some("JEBEL ALI FREE ZONE, plot S-10412, Dubai, U.A.E.".into());
    let near = score_of(&q, 1);
    let adj = near
        .explanation
        .adjustments
        .iter()
        .find(|a| a.kind == AdjustmentKind::AddressAgrees)
        .expect("the address agrees");
    assert!(adj.delta > 0.0 && adj.delta <= 0.04, "{adj:?}");
    assert!(adj.detail.contains("address 2"), "{}", adj.detail);
    assert!(adj.detail.contains("jebel"), "{}", adj.detail);
    assert!((near.score - (plain + adj.delta)).abs() < 1e-9);
    // An entry at another address, or with none, scores as without an address.
    for other in [2, 3] {
        let m = score_of(&q, other);
        assert!(
            m.explanation
                .adjustments
                .iter()
                .all(|a| a.kind != AdjustmentKind::AddressAgrees),
            "{:?}",
            m.explanation.adjustments
        );
        assert!((m.score - plain).abs() < 1e-9, "entry {other}");
    }
    // Only the words every address has in common do not agree.
    q.address = Some("Office 7, Street 9, Building 3, Floor 2, Dubai".into());
    assert!(
        score_of(&q, 1)
            .explanation
            .adjustments
            .iter()
            .all(|a| a.kind != AdjustmentKind::AddressAgrees)
    );
    // Bounded like the name.
    q.address = Some("x".repeat(513));
    assert!(matches!(
        idx.search(&q),
        Err(QueryError::AddressTooLong { chars: 513, .. })
    ));
}

#[test]
fn address_tokens_fold_scripts_and_drop_generic_words() {
    use wlnode_screen::normalize::address_tokens;
    let t = address_tokens("Straße 5, Gebäude B, Zürich — P.O. Box 77");
    assert!(t.iter().any(|x| &**x == "zurich"), "{t:?}");
    assert!(t.iter().any(|x| &**x == "77"), "{t:?}");
    assert!(!t.iter().any(|x| &**x == "box" || &**x == "p"), "{t:?}");
    assert!(address_tokens("  ,;; ").is_empty());
    assert!(address_tokens(&"a1 ".repeat(1000)).len() <= 32);
}

/// Review of address matching: the raise counts in candidate selection too (an
/// address-only query is not cut on its name score), numbers match only exactly, a
/// city and a country alone do not agree, huge tokens are left out, and "address N"
/// counts every listed address.
#[test]
fn address_review_selection_numbers_bounds_and_positions() {
    use wlnode_screen::normalize::address_tokens;
    let mut listed = org(1, &["Orion Avionics Trading LLC"]);
    listed.addresses = vec![
        "P.O. Box".into(),
        "Plot S10412, Jebel Ali Free Zone, Dubai".into(),
    ];
    let idx = ScreenIndex::build([listed]);
    let mut q = Query::new("Orian Avionix Trading");
    let plain = idx.search(&q).unwrap()[0].score;
    q.address = Some("Jebel Ali Free Zone, Dubai".into());
    q.min_score = plain + 0.01;
    let hits = idx.search(&q).unwrap();
    assert_eq!(hits.len(), 1, "the address raise counts in selection");
    let adj = hits[0]
        .explanation
        .adjustments
        .iter()
        .find(|a| a.kind == AdjustmentKind::AddressAgrees)
        .unwrap();
    assert!(adj.detail.contains("address 2"), "{}", adj.detail);
    // A city and a country alone do not agree.
    q.min_score = 0.0;
    q.address = Some("Dubai, UAE".into());
    assert!(
        idx.search(&q).unwrap()[0]
            .explanation
            .adjustments
            .iter()
            .all(|a| a.kind != AdjustmentKind::AddressAgrees)
    );
    // Postal codes one digit apart are different places.
    let mut moscow = org(2, &["Volga Machine Tools"]);
    moscow.addresses = vec!["119011 Moscow Prechistenka 10".into()];
    let idx = ScreenIndex::build([moscow]);
    let mut q = Query::new("Volga Machine Tools");
    q.address = Some("119019 Moscow Prechistenka 12".into());
    let m = &idx.search(&q).unwrap()[0];
    assert!(
        m.explanation
            .adjustments
            .iter()
            .all(|a| a.kind != AdjustmentKind::AddressAgrees),
        "{:?}",
        m.explanation.adjustments
    );
    // Bounds: a token longer than any address word is left out; the first tokens as
    // written are kept.
    assert!(address_tokens(&"a".repeat(8000)).is_empty());
    let many: String = (0..40).map(|i| format!("w{i:02} ")).collect();
    let t = address_tokens(&many);
    assert_eq!(t.len(), 32);
    assert!(t.iter().any(|x| &**x == "w00") && !t.iter().any(|x| &**x == "w39"));
}
