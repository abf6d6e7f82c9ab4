//! Share/accept semantics and `policy check`, against a generated roster.

use std::path::Path;
use std::sync::Arc;

use wlnode_crypto::model::{AgencyCode, EntryDraft, EntryId, FieldTag, Status};
use wlnode_crypto::record::{RecordMeta, build_record};
use wlnode_crypto::roster::Roster;
use wlnode_crypto::{SecretKey, Timestamp};

use super::*;
use wlnode_config::Config;

struct Fixture {
    roster: Arc<Roster>,
    aa: SecretKey,
    bb: SecretKey,
}

/// A signed roster with AA-EXPORT and BB-CUSTOMS in `eu`, CC-TRADE in `asean` and the
/// auditor ZZ-AUDIT, built in memory the way `wlnode roster` builds one on disk.
fn fixture() -> Fixture {
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::roster::Role;
    let authority = SecretKey::generate().unwrap();
    let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
    let mut keys = Vec::new();
    for (agency, role, groups) in [
        ("AA-EXPORT", Role::Member, &["eu"][..]),
        ("BB-CUSTOMS", Role::Member, &["eu"]),
        ("CC-TRADE", Role::Member, &["asean"]),
        ("ZZ-AUDIT", Role::Auditor, &[]),
    ] {
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                agency,
                role,
                key.public_key(),
                vec![node.public_key().peer_id()],
                groups,
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        keys.push(key);
    }
    let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
    let mut keys = keys.into_iter();
    Fixture {
        roster: Arc::new(roster),
        aa: keys.next().unwrap(),
        bb: keys.next().unwrap(),
    }
}

const BASE: &str = r#"
agency = "AA-EXPORT"
roster = "roster.toml"
agency_key = "agency.key"
node_key = "node.key"
[api]
listen = "127.0.0.1:0"
token_file = "api.token"
"#;

fn cfg(rules: &str) -> Config {
    Config::parse(Path::new("/x/node.toml"), &format!("{BASE}{rules}")).unwrap()
}

fn policy(f: &Fixture, rules: &str) -> Policy {
    Policy::from_config(&cfg(rules), f.roster.clone())
        .unwrap()
        .0
}

fn record(key: &SecretKey, origin: &str, extra: serde_json::Value) -> StoredRecord {
    let mut v = serde_json::json!({
        "subject": {"kind": "person", "name": "Ivan Petrov", "aliases": ["I. Petrov"],
                    "country": "RU", "addresses": ["Moscow"], "birth_date": "1970",
                    "identifiers": [{"type": "passport", "value": "P1"}, {"type": "national_id", "value": "N1"}]},
        "reason": "denial",
        "categories": ["3A001"],
        "remarks": "r",
        "distribution": {"scope": "federation", "sensitivity": "restricted"}
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    let draft: EntryDraft = serde_json::from_value(v).unwrap();
    StoredRecord {
        record: build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: origin.parse().unwrap(),
                version: 1,
                issued_at: Timestamp::now(),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            key,
        )
        .unwrap(),
        hops: u32::from(origin != "AA-EXPORT"),
        received_from: None,
        received_at: Timestamp::now(),
        seq: 1,
        inclusion: None,
    }
}

fn to(a: &str) -> AgencyCode {
    a.parse().unwrap()
}

#[test]
fn default_deny_and_empty_lists() {
    let f = fixture();
    let r = record(&f.aa, "AA-EXPORT", serde_json::json!({}));
    assert_eq!(
        policy(&f, "").decide(&r, &to("BB-CUSTOMS")),
        Decision::Deny(Deny::NoShareRule)
    );
    let p = policy(&f, "[[share]]\nto = []\n");
    assert_eq!(
        p.decide(&r, &to("BB-CUSTOMS")),
        Decision::Deny(Deny::NoShareRule)
    );
    let p = policy(&f, "[[share]]\nto = [\"*\"]\ncategories = []\n");
    assert_eq!(
        p.decide(&r, &to("BB-CUSTOMS")),
        Decision::Deny(Deny::NoShareRule)
    );
}

#[test]
fn selectors_and_filters() {
    let f = fixture();
    let r = record(&f.aa, "AA-EXPORT", serde_json::json!({}));
    let send = |p: &Policy, a: &str| matches!(p.decide(&r, &to(a)), Decision::Send { .. });
    let p = policy(&f, "[[share]]\nto = [\"group:eu\"]\n");
    assert!(send(&p, "BB-CUSTOMS"));
    assert!(!send(&p, "CC-TRADE"));
    let p = policy(
        &f,
        "[[share]]\nto = [\"*\"]\ncategories = [\"3A*\"]\nreasons = [\"denial\"]\nsubject_countries = [\"RU\"]\nsubject_kinds = [\"person\"]\n",
    );
    assert!(send(&p, "CC-TRADE"));
    for rule in [
        "categories = [\"5A*\"]",
        "reasons = [\"sanctions\"]",
        "subject_countries = [\"IR\"]",
        "subject_kinds = [\"vessel\"]",
        "max_sensitivity = \"public\"",
        "origins = [\"BB-CUSTOMS\"]",
    ] {
        let p = policy(&f, &format!("[[share]]\nto = [\"*\"]\n{rule}\n"));
        assert!(!send(&p, "BB-CUSTOMS"), "{rule} should not match");
    }
    // Auditors never receive records, whatever the rules say.
    let p = policy(&f, "[[share]]\nto = [\"*\"]\n");
    assert_eq!(p.decide(&r, &to("ZZ-AUDIT")), Decision::Deny(Deny::Auditor));
}

#[test]
fn distribution_comes_first() {
    let f = fixture();
    let p = policy(&f, "[[share]]\nto = [\"*\"]\nrelay = true\n");
    let eu_only = record(
        &f.aa,
        "AA-EXPORT",
        serde_json::json!({"distribution": {"scope": "groups", "groups": ["eu"], "sensitivity": "restricted"}}),
    );
    assert_eq!(
        p.decide(&eu_only, &to("CC-TRADE")),
        Decision::Deny(Deny::NotInDistribution)
    );
    let origin_only = record(
        &f.aa,
        "AA-EXPORT",
        serde_json::json!({"distribution": {"scope": "origin"}}),
    );
    assert_eq!(
        p.decide(&origin_only, &to("BB-CUSTOMS")),
        Decision::Deny(Deny::OriginOnly)
    );
    let mut near = record(
        &f.aa,
        "AA-EXPORT",
        serde_json::json!({"distribution": {"scope": "neighbors"}}),
    );
    assert!(matches!(
        p.decide(&near, &to("BB-CUSTOMS")),
        Decision::Send { hops: 1, .. }
    ));
    near.hops = 1;
    assert_eq!(
        p.decide(&near, &to("CC-TRADE")),
        Decision::Deny(Deny::NoRelay)
    );
    let mut hop2 = record(
        &f.aa,
        "AA-EXPORT",
        serde_json::json!({"distribution": {"scope": "federation", "max_hops": 2}}),
    );
    hop2.hops = 2;
    assert_eq!(
        p.decide(&hop2, &to("CC-TRADE")),
        Decision::Deny(Deny::HopLimit)
    );
}

#[test]
fn relay_needs_relay_true() {
    let f = fixture();
    let theirs = record(&f.bb, "BB-CUSTOMS", serde_json::json!({}));
    let p = policy(&f, "[[share]]\nto = [\"*\"]\n");
    assert_eq!(
        p.decide(&theirs, &to("CC-TRADE")),
        Decision::Deny(Deny::NoShareRule)
    );
    let p = policy(&f, "[[share]]\nto = [\"*\"]\nrelay = true\n");
    assert!(matches!(
        p.decide(&theirs, &to("CC-TRADE")),
        Decision::Send { .. }
    ));
    let p = policy(
        &f,
        "[[share]]\nto = [\"*\"]\norigins = [\"self\"]\nrelay = true\n",
    );
    assert_eq!(
        p.decide(&theirs, &to("CC-TRADE")),
        Decision::Deny(Deny::NoShareRule)
    );
}

#[test]
fn withheld_fields_are_the_union_and_the_copy_still_verifies() {
    let f = fixture();
    let r = record(&f.aa, "AA-EXPORT", serde_json::json!({}));
    let p = policy(
        &f,
        "[[share]]\nto = [\"*\"]\nwithhold = [\"identifiers.passport\"]\n[[share]]\nto = [\"group:eu\"]\nwithhold = [\"birth_date\", \"remarks\"]\n",
    );
    match p.decide(&r, &to("BB-CUSTOMS")) {
        Decision::Send { withhold, .. } => {
            let names: Vec<String> = withhold.iter().map(ToString::to_string).collect();
            assert_eq!(names, vec!["birth_date", "remarks", "identifiers.passport"]);
        }
        other => panic!("{other:?}"),
    }
    // A broader selector absorbs a narrower one.
    let p2 = policy(
        &f,
        "[[share]]\nto = [\"*\"]\nwithhold = [\"identifiers.passport\"]\n[[share]]\nto = [\"*\"]\nwithhold = [\"identifiers\"]\n",
    );
    assert!(
        matches!(p2.decide(&r, &to("BB-CUSTOMS")), Decision::Send { withhold, .. } if withhold.len() == 1)
    );
    let prep = p.prepare(&r, &to("BB-CUSTOMS")).unwrap();
    let copy = wlnode_crypto::record::Record::decode(prep.bytes())
        .unwrap()
        .verify()
        .unwrap();
    assert_eq!(copy.id(), r.record.id());
    let c = copy.content();
    assert_eq!(c.identifiers.len(), 1);
    assert_eq!(c.identifiers[0].kind, "national_id");
    assert!(c.birth_date.is_none() && c.remarks.is_none());
    assert_eq!(prep.withheld(), 3);
    // CC is not in eu: only the passport is withheld.
    let prep = p.prepare(&r, &to("CC-TRADE")).unwrap();
    assert_eq!(prep.withheld(), 1);
}

#[test]
fn accept_rules_strictest_wins() {
    let f = fixture();
    let full = record(&f.bb, "BB-CUSTOMS", serde_json::json!({}));
    let (partial, _) = full
        .record
        .redact(&[wlnode_crypto::record::FieldSelector::Tag(
            FieldTag::Identifier,
        )]);
    let bb = to("BB-CUSTOMS");
    assert!(
        policy(&f, "").accept(&full.record, &bb).is_err(),
        "default deny"
    );
    let p = policy(&f, "[[accept]]\nfrom = [\"*\"]\n");
    assert!(p.accept(&partial, &bb).is_ok());
    let p = policy(
        &f,
        "[[accept]]\nfrom = [\"*\"]\n[[accept]]\nfrom = [\"BB-CUSTOMS\"]\nrequire_fields = [\"identifiers.passport\"]\n",
    );
    assert!(p.accept(&full.record, &bb).is_ok());
    assert!(
        p.accept(&partial, &bb)
            .unwrap_err()
            .contains("identifiers.passport")
    );
    let p = policy(&f, "[[accept]]\nfrom = [\"*\"]\nwithheld = \"drop\"\n");
    assert!(p.accept(&partial, &bb).is_err());
    assert!(p.accept(&full.record, &bb).is_ok());
    let p = policy(
        &f,
        "[[accept]]\nfrom = [\"*\"]\nmax_sensitivity = \"public\"\n",
    );
    assert!(p.accept(&full.record, &bb).is_err(), "restricted > public");
    let p = policy(&f, "[[accept]]\nfrom = [\"group:asean\"]\n");
    assert!(p.accept(&full.record, &bb).is_err());
}

#[test]
fn check_reports_unknown_names_with_lines_and_warnings() {
    let f = fixture();
    let c = cfg(
        "[[peers]]\nagency = \"XX-NOBODY\"\n[[share]]\nto = [\"group:nato\"]\n[[share]]\nto = [\"ZZ-AUDIT\"]\n[[share]]\nto = [\"*\"]\norigins = [\"BB-CUSTOMS\"]\n[[accept]]\nfrom = [\"*\"]\nmax_sensitivity = \"secret\"\n",
    );
    let r = check::check(&c, &f.roster);
    let errs: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].contains("peers[0].agency") && errs[0].contains("XX-NOBODY"),
        "{}",
        errs[0]
    );
    assert!(errs[1].contains("share[0].to[0]") && errs[1].contains("nato"));
    assert!(errs[2].contains("accept[0].max_sensitivity"));
    assert!(r.errors.iter().all(|e| e.line > 0));
    let warns: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert!(warns.iter().any(|w| w.contains("auditor")), "{warns:#?}");
    assert!(
        warns.iter().any(|w| w.contains("relay = false")),
        "{warns:#?}"
    );
    assert!(Policy::from_config(&c, f.roster.clone()).is_err());
    // A peer nothing is shared with.
    let c = cfg(
        "[[peers]]\nagency = \"CC-TRADE\"\n[[share]]\nto = [\"group:eu\"]\n[[accept]]\nfrom = [\"*\"]\n",
    );
    let r = check::check(&c, &f.roster);
    assert!(r.errors.is_empty());
    assert!(r.warnings.iter().any(|w| {
        w.message
            .contains("no [[share]] rule sends anything to CC-TRADE")
    }));
    // The same peers on the auditor's node: no "nothing will flow" warning (s35 QA
    // W12), since an auditor holds and stores no records; its other checks stay.
    let auditor = |rules: &str| {
        Config::parse(
            Path::new("/x/node.toml"),
            &format!(
                "{}{rules}",
                BASE.replace("agency = \"AA-EXPORT\"", "agency = \"ZZ-AUDIT\"")
            ),
        )
        .unwrap()
    };
    let r = check::check(
        &auditor("[[peers]]\nagency = \"AA-EXPORT\"\n[[peers]]\nagency = \"CC-TRADE\"\n"),
        &f.roster,
    );
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    let r = check::check(&auditor("[[peers]]\nagency = \"XX-NOBODY\"\n"), &f.roster);
    assert!(
        r.errors.iter().any(|e| e.to_string().contains("XX-NOBODY")),
        "{:#?}",
        r.errors
    );
    // Issue 19 item 5: `origins = ["*"]` without `relay = true` silently shares only
    // the node's own records.
    let c = cfg("[[share]]\nto = [\"*\"]\norigins = [\"*\"]\n[[accept]]\nfrom = [\"*\"]\n");
    let r = check::check(&c, &f.roster);
    assert!(r.errors.is_empty());
    let w: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("share[0].relay") && w.contains("only this node's own records")),
        "{w:#?}"
    );
    for fine in [
        "[[share]]\nto = [\"*\"]\norigins = [\"*\"]\nrelay = true\n",
        "[[share]]\nto = [\"*\"]\norigins = [\"self\"]\n",
        "[[share]]\nto = [\"*\"]\n",
    ] {
        let r = check::check(&cfg(fine), &f.roster);
        assert!(
            !r.warnings.iter().any(|w| w.message.contains("own records")),
            "{fine}"
        );
    }
}

#[test]
fn explain_names_the_rule_and_fields() {
    let f = fixture();
    let r = record(&f.aa, "AA-EXPORT", serde_json::json!({}));
    let p = policy(
        &f,
        "[[share]]\nto = [\"CC-TRADE\"]\nwithhold = [\"identifiers\"]\n[[share]]\nto = [\"group:eu\"]\nreasons = [\"sanctions\"]\n",
    );
    let e = p.explain(&r, &to("CC-TRADE"));
    assert_eq!(e.decision, "send");
    assert_eq!(e.matched_rules.len(), 1);
    assert_eq!(e.matched_rules[0].rule, 1);
    assert!(e.matched_rules[0].line > 0);
    assert_eq!(e.withheld_fields, vec!["identifiers"]);
    assert_eq!(e.unmatched_rules[0].condition, "to");
    let e = p.explain(&r, &to("BB-CUSTOMS"));
    assert_eq!(e.decision, "deny");
    assert!(e.distribution.allowed);
    assert_eq!(e.unmatched_rules[1].condition, "reasons");
}

#[test]
fn release_rules_say_which_writes_wait_for_approval() {
    let f = fixture();
    let s = |l: &str| wlnode_crypto::model::Sensitivity::new(l.to_owned()).unwrap();
    let none = policy(&f, "");
    assert!(!none.four_eyes());
    assert!(!none.needs_approval(&s("restricted")));
    let all = policy(&f, "[release]\nrequire_approval = true\n");
    assert!(all.four_eyes() && all.needs_approval(&s("public")));
    let some = policy(&f, "[release]\nrequire_approval = [\"confidential\"]\n");
    assert!(some.four_eyes());
    assert!(some.needs_approval(&s("confidential")));
    assert!(!some.needs_approval(&s("restricted")));
    // The rule is part of the policy's hash, and only when set.
    assert_ne!(all.hash(), none.hash());
    assert_eq!(
        policy(&f, "[release]\nrequire_approval = false\n").hash(),
        none.hash()
    );
    // A label ranked above a listed one, but not listed, is a warning.
    let ranks: Vec<String> = f
        .roster
        .sensitivities()
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    if let Some(lowest) = ranks.first() {
        let c = cfg(&format!("[release]\nrequire_approval = [\"{lowest}\"]\n"));
        let r = check::check(&c, &f.roster);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert!(ranks.len() > 1, "the fixture ranks several labels");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.to_string().contains("labels match exactly")),
            "{:?}",
            r.warnings
        );
        let all = ranks
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let c = cfg(&format!("[release]\nrequire_approval = [{all}]\n"));
        let r = check::check(&c, &f.roster);
        assert!(
            !r.warnings
                .iter()
                .any(|w| w.to_string().contains("labels match exactly")),
            "{:?}",
            r.warnings
        );
    }
    // A label the roster does not have is an error naming the key.
    let c = cfg("[release]\nrequire_approval = [\"ultra\"]\n");
    let r = check::check(&c, &f.roster);
    assert!(
        r.errors
            .iter()
            .any(|e| e.to_string().contains("release.require_approval[0]")),
        "{:?}",
        r.errors
    );
    // Anything but a bool or a list of labels is refused when the config is read.
    assert!(
        Config::parse(
            Path::new("/x/node.toml"),
            &format!("{BASE}[release]\nrequire_approval = \"yes\"\n")
        )
        .is_err()
    );
}
