//! The admin's `[[share]]` and `[[accept]]` rules, compiled against the roster.
//!
//! Semantics (README.md repeats them for operators):
//! - Default deny: a record goes to a peer only if some share rule matches, and a copy
//!   is stored only if some accept rule matches.
//! - A list that is absent imposes no restriction; a list that is present but empty
//!   matches nothing.
//! - A share rule covers records of other origins only with `relay = true`.
//! - When several share rules match, the fields withheld are the union of their
//!   `withhold` lists: the strictest wins.
//! - When several accept rules match, the copy must satisfy all of them (every
//!   `require_fields`, and `withheld = "drop"` if any says so): the strictest wins.

use std::collections::BTreeSet;

use wlnode_crypto::model::{
    AgencyCode, Category, CountryCode, FieldTag, Reason, Sensitivity, SubjectKind,
};
use wlnode_crypto::record::{FieldSelector, Record, RecordHeader};
use wlnode_crypto::roster::Roster;
use wlnode_types::Facts;

use wlnode_config::{
    AcceptRule, CategoryGlob, OriginSelector, PeerSelector, ShareRule, WithheldCopies,
};

/// A compiled share rule.
#[derive(Clone, Debug)]
pub struct Share {
    /// Position in the config (0-based), for `explain`.
    pub index: usize,
    /// Line of the rule's `to` in the config, for `explain`.
    pub line: usize,
    to: Vec<PeerSelector>,
    origins: Option<Vec<OriginSelector>>,
    categories: Option<Vec<CategoryGlob>>,
    reasons: Option<Vec<Reason>>,
    subject_countries: Option<Vec<CountryCode>>,
    subject_kinds: Option<Vec<SubjectKind>>,
    max_sensitivity: Option<usize>,
    /// Fields this rule withholds.
    pub withhold: Vec<FieldSelector>,
    relay: bool,
}

/// A compiled accept rule.
#[derive(Clone, Debug)]
pub struct Accept {
    /// Position in the config (0-based).
    pub index: usize,
    /// Line of the rule's `from` in the config.
    pub line: usize,
    from: Vec<PeerSelector>,
    origins: Option<Vec<OriginSelector>>,
    max_sensitivity: Option<usize>,
    require_fields: Vec<FieldSelector>,
    drop_withheld: bool,
}

/// Why a share rule did not match, for `explain`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Miss {
    /// Rule index.
    pub rule: usize,
    /// First condition that failed.
    pub condition: &'static str,
}

fn peer_matches(roster: &Roster, sel: &PeerSelector, agency: &AgencyCode) -> bool {
    match sel {
        PeerSelector::Any => true,
        PeerSelector::Agency(a) => a == agency,
        PeerSelector::Group(g) => roster.member(agency).is_some_and(|m| m.in_group(g)),
    }
}

fn origin_matches(
    roster: &Roster,
    sel: &OriginSelector,
    origin: &AgencyCode,
    me: &AgencyCode,
) -> bool {
    match sel {
        OriginSelector::SelfAgency => origin == me,
        OriginSelector::Any => true,
        OriginSelector::Agency(a) => a == origin,
        OriginSelector::Group(g) => roster.member(origin).is_some_and(|m| m.in_group(g)),
    }
}

fn category_matches(globs: &[CategoryGlob], cats: &BTreeSet<Category>) -> bool {
    cats.iter()
        .any(|c| globs.iter().any(|g| g.matches(c.as_str())))
}

fn rank(roster: &Roster, s: &Sensitivity) -> Option<usize> {
    roster.sensitivity_rank(s)
}

impl Share {
    /// Compiles a config rule (names must already be checked against the roster).
    pub fn compile(index: usize, line: usize, r: &ShareRule, roster: &Roster) -> Self {
        Self {
            index,
            line,
            to: r.to.get_ref().iter().map(|s| s.get_ref().clone()).collect(),
            origins: r
                .origins
                .as_ref()
                .map(|o| o.iter().map(|s| s.get_ref().clone()).collect()),
            categories: r.categories.clone(),
            reasons: r.reasons.clone(),
            subject_countries: r.subject_countries.clone(),
            subject_kinds: r.subject_kinds.clone(),
            max_sensitivity: r
                .max_sensitivity
                .as_ref()
                .map(|s| rank(roster, s.get_ref()).unwrap_or(0)),
            withhold: r.withhold.clone(),
            relay: r.relay,
        }
    }

    /// Whether the rule covers sending a record with facts `f` (held here) to `to`; the
    /// first failing
    /// condition otherwise.
    pub fn matches(
        &self,
        roster: &Roster,
        me: &AgencyCode,
        f: &Facts<'_>,
        to: &AgencyCode,
    ) -> Result<(), &'static str> {
        if !self.to.iter().any(|s| peer_matches(roster, s, to)) {
            return Err("to");
        }
        let origins_ok = match &self.origins {
            None => true,
            Some(list) => list.iter().any(|s| origin_matches(roster, s, f.origin, me)),
        };
        if !origins_ok {
            return Err("origins");
        }
        if f.origin != me && !self.relay {
            return Err("relay");
        }
        if let Some(globs) = &self.categories
            && !category_matches(globs, f.categories)
        {
            return Err("categories");
        }
        if self
            .reasons
            .as_ref()
            .is_some_and(|r| !r.contains(&f.reason))
        {
            return Err("reasons");
        }
        if let Some(cs) = &self.subject_countries
            && !f.subject_country.is_some_and(|c| cs.contains(c))
        {
            return Err("subject_countries");
        }
        if self
            .subject_kinds
            .as_ref()
            .is_some_and(|k| !k.contains(&f.subject_kind))
        {
            return Err("subject_kinds");
        }
        if let Some(max) = self.max_sensitivity {
            match rank(roster, f.sensitivity) {
                Some(r) if r <= max => {}
                _ => return Err("max_sensitivity"),
            }
        }
        Ok(())
    }
}

/// Whether a copy discloses what `sel` names (for `require_fields`): every committed
/// field with that tag, or at least one identifier of that type.
fn discloses(record: &Record, sel: &FieldSelector) -> bool {
    let h = record.header();
    match sel {
        FieldSelector::Tag(tag) => h
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.tag == *tag)
            .all(|(i, _)| {
                u32::try_from(i)
                    .ok()
                    .and_then(|i| record.disclosure(i))
                    .is_some()
            }),
        FieldSelector::IdentifierType(_) => record.disclosures().iter().any(|d| {
            usize::try_from(d.index)
                .ok()
                .and_then(|i| h.fields.get(i))
                .is_some_and(|f| f.tag == FieldTag::Identifier && sel.matches(f.tag, &d.value))
        }),
    }
}

impl Accept {
    /// Compiles a config rule.
    pub fn compile(index: usize, line: usize, r: &AcceptRule, roster: &Roster) -> Self {
        Self {
            index,
            line,
            from: r
                .from
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            origins: r
                .origins
                .as_ref()
                .map(|o| o.iter().map(|s| s.get_ref().clone()).collect()),
            max_sensitivity: r
                .max_sensitivity
                .as_ref()
                .map(|s| rank(roster, s.get_ref()).unwrap_or(0)),
            require_fields: r.require_fields.clone(),
            drop_withheld: r.withheld == WithheldCopies::Drop,
        }
    }

    /// Whether the rule applies to a copy of `h` from `from`.
    pub fn applies(
        &self,
        roster: &Roster,
        me: &AgencyCode,
        h: &RecordHeader,
        from: &AgencyCode,
    ) -> bool {
        self.from.iter().any(|s| peer_matches(roster, s, from))
            && match &self.origins {
                None => true,
                Some(list) => list
                    .iter()
                    .any(|s| origin_matches(roster, s, &h.origin, me)),
            }
            && self.max_sensitivity.is_none_or(|max| {
                rank(roster, &h.distribution.sensitivity).is_some_and(|r| r <= max)
            })
    }

    /// Why the copy fails this rule's requirements, if it does.
    pub fn unmet(&self, record: &Record) -> Option<String> {
        if self.drop_withheld && !record.is_complete() {
            return Some(format!(
                "accept rule {} drops copies with withheld fields",
                self.index + 1
            ));
        }
        self.require_fields
            .iter()
            .find(|sel| !discloses(record, sel))
            .map(|sel| format!("accept rule {} requires field {sel}", self.index + 1))
    }
}
