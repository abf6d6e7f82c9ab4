//! Validating a node's policy against the roster: `wlnode policy check`, and the
//! refusal to start on a policy that names agencies, groups or sensitivities the roster
//! lacks. Every finding carries the config file, line and key.

use std::collections::BTreeSet;

use toml::Spanned;
use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::{Role, Roster};

use wlnode_config::{Config, ConfigError, OriginSelector, PeerSelector};

/// Errors (the node refuses to start) and warnings.
#[derive(Debug, Default)]
pub struct Report {
    /// Problems that make the policy invalid.
    pub errors: Vec<ConfigError>,
    /// Rules that can never match, peers nothing flows to, and the like.
    pub warnings: Vec<ConfigError>,
}

struct Ctx<'a> {
    cfg: &'a Config,
    roster: &'a Roster,
    me: &'a AgencyCode,
    out: Report,
}

impl Ctx<'_> {
    fn error(&mut self, span: std::ops::Range<usize>, key: String, msg: String) {
        let e = self.cfg.error_at(span, key, msg);
        self.out.errors.push(e);
    }

    fn warn(&mut self, span: std::ops::Range<usize>, key: String, msg: String) {
        let e = self.cfg.error_at(span, key, msg);
        self.out.warnings.push(e);
    }

    fn check_peer_sel(&mut self, s: &Spanned<PeerSelector>, key: String) {
        match s.get_ref() {
            PeerSelector::Any => {}
            PeerSelector::Agency(a) => {
                if self.roster.member(a).is_none() {
                    self.error(s.span(), key, format!("agency {a} is not in the roster"));
                }
            }
            PeerSelector::Group(g) => {
                if !self.roster.groups().contains(g) {
                    self.error(
                        s.span(),
                        key,
                        format!("group {g:?} is not a sharing group in the roster"),
                    );
                }
            }
        }
    }

    fn check_origin_sel(&mut self, s: &Spanned<OriginSelector>, key: String) {
        match s.get_ref() {
            OriginSelector::SelfAgency | OriginSelector::Any => {}
            OriginSelector::Agency(a) => {
                if self.roster.member(a).is_none() {
                    self.error(s.span(), key, format!("agency {a} is not in the roster"));
                }
            }
            OriginSelector::Group(g) => {
                if !self.roster.groups().contains(g) {
                    self.error(
                        s.span(),
                        key,
                        format!("group {g:?} is not a sharing group in the roster"),
                    );
                }
            }
        }
    }

    fn check_sensitivity(&mut self, s: &Spanned<wlnode_crypto::model::Sensitivity>, key: String) {
        if self.roster.sensitivity_rank(s.get_ref()).is_none() {
            let known = self
                .roster
                .sensitivities()
                .iter()
                .map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(" < ");
            self.error(
                s.span(),
                key,
                format!(
                    "sensitivity {:?} is not in the roster ({known})",
                    s.get_ref().as_str()
                ),
            );
        }
    }

    /// Agencies a peer selector can reach that may receive records.
    fn receivers(&self, sel: &PeerSelector) -> Vec<AgencyCode> {
        self.roster
            .members()
            .filter(|m| m.role == Role::Member && m.agency != *self.me)
            .filter(|m| match sel {
                PeerSelector::Any => true,
                PeerSelector::Agency(a) => *a == m.agency,
                PeerSelector::Group(g) => m.in_group(g),
            })
            .map(|m| m.agency.clone())
            .collect()
    }
}

/// Checks `cfg`'s agency, peers and rules against `roster`.
pub fn check(cfg: &Config, roster: &Roster) -> Report {
    let mut c = Ctx {
        cfg,
        roster,
        me: cfg.agency(),
        out: Report::default(),
    };
    let raw = &cfg.raw;
    if roster.member(cfg.agency()).is_none() {
        c.error(
            raw.agency.span(),
            "agency".into(),
            format!("agency {} is not in the roster", cfg.agency()),
        );
    }
    for (i, p) in raw.peers.iter().enumerate() {
        match roster.member(p.agency.get_ref()) {
            None => c.error(
                p.agency.span(),
                format!("peers[{i}].agency"),
                format!("agency {} is not in the roster", p.agency.get_ref()),
            ),
            Some(m) if m.role == Role::Auditor => c.warn(
                p.agency.span(),
                format!("peers[{i}].agency"),
                format!(
                    "{} is an auditor: it receives no records, only audit data",
                    m.agency
                ),
            ),
            Some(_) => {}
        }
    }
    let mut covered: BTreeSet<AgencyCode> = BTreeSet::new();
    for (i, r) in raw.share.iter().enumerate() {
        let k = |f: &str| format!("share[{i}].{f}");
        for (j, s) in r.to.get_ref().iter().enumerate() {
            c.check_peer_sel(s, format!("share[{i}].to[{j}]"));
        }
        if let Some(origins) = &r.origins {
            for (j, s) in origins.iter().enumerate() {
                c.check_origin_sel(s, format!("share[{i}].origins[{j}]"));
            }
        }
        if let Some(s) = &r.max_sensitivity {
            c.check_sensitivity(s, k("max_sensitivity"));
        }
        let span = r.to.span();
        let empty: Vec<&str> = [
            ("to", r.to.get_ref().is_empty()),
            ("origins", r.origins.as_ref().is_some_and(Vec::is_empty)),
            (
                "categories",
                r.categories.as_ref().is_some_and(Vec::is_empty),
            ),
            ("reasons", r.reasons.as_ref().is_some_and(Vec::is_empty)),
            (
                "subject_countries",
                r.subject_countries.as_ref().is_some_and(Vec::is_empty),
            ),
            (
                "subject_kinds",
                r.subject_kinds.as_ref().is_some_and(Vec::is_empty),
            ),
        ]
        .iter()
        .filter(|(_, e)| *e)
        .map(|(n, _)| *n)
        .collect();
        if !empty.is_empty() {
            c.warn(
                span.clone(),
                k(empty.first().copied().unwrap_or("to")),
                format!(
                    "this rule can never match: {} is an empty list, and an empty list matches nothing",
                    empty.join(", ")
                ),
            );
        }
        let only_others = r.origins.as_ref().is_some_and(|o| {
            !o.is_empty()
                && o.iter().all(|s| match s.get_ref() {
                    OriginSelector::SelfAgency | OriginSelector::Any => false,
                    OriginSelector::Agency(a) => a != cfg.agency(),
                    OriginSelector::Group(g) => {
                        roster.member(cfg.agency()).is_none_or(|m| !m.in_group(g))
                    }
                })
        });
        if only_others && !r.relay {
            c.warn(
                span.clone(),
                k("relay"),
                "this rule can never match: it only covers other agencies' records but relay = false".into(),
            );
        }
        // Seen when tried as a new user would: `origins = ["*"]` reads as "everything",
        // but without `relay = true` only this node's own records go.
        let names_others = r.origins.as_ref().is_some_and(|o| {
            o.iter().any(|s| match s.get_ref() {
                OriginSelector::SelfAgency => false,
                OriginSelector::Any | OriginSelector::Group(_) => true,
                OriginSelector::Agency(a) => a != cfg.agency(),
            })
        });
        if names_others && !only_others && !r.relay {
            c.warn(
                span.clone(),
                k("relay"),
                "origins names other agencies, but relay = false: this rule sends only this node's own records; set relay = true to relay theirs, or write origins = [\"self\"]".into(),
            );
        }
        let mut reach = BTreeSet::new();
        for s in r.to.get_ref() {
            let rs = c.receivers(s.get_ref());
            if rs.is_empty() {
                let why = match s.get_ref() {
                    PeerSelector::Agency(a) if a == cfg.agency() => {
                        "a node never sends records to its own agency".to_owned()
                    }
                    PeerSelector::Agency(a)
                        if roster.member(a).is_some_and(|m| m.role == Role::Auditor) =>
                    {
                        format!(
                            "{a} is an auditor; no distribution admits auditors, so this has no effect"
                        )
                    }
                    other => format!("{other} matches no member that may receive records"),
                };
                c.warn(s.span(), format!("share[{i}].to"), why);
            }
            reach.extend(rs);
        }
        covered.extend(reach);
    }
    for (i, r) in raw.accept.iter().enumerate() {
        for (j, s) in r.from.get_ref().iter().enumerate() {
            c.check_peer_sel(s, format!("accept[{i}].from[{j}]"));
        }
        if let Some(origins) = &r.origins {
            for (j, s) in origins.iter().enumerate() {
                c.check_origin_sel(s, format!("accept[{i}].origins[{j}]"));
            }
            if origins.is_empty() {
                c.warn(
                    r.from.span(),
                    format!("accept[{i}].origins"),
                    "this rule can never match: origins is an empty list".into(),
                );
            }
        }
        if r.from.get_ref().is_empty() {
            c.warn(
                r.from.span(),
                format!("accept[{i}].from"),
                "this rule can never match: from is an empty list".into(),
            );
        }
        if let Some(s) = &r.max_sensitivity {
            c.check_sensitivity(s, format!("accept[{i}].max_sensitivity"));
        }
    }
    if let wlnode_config::RequireApproval::Labels(labels) = &raw.release.require_approval {
        // The labels carry no spans (a bool-or-list value); point at the key's line.
        let at = cfg.text.find("require_approval").unwrap_or(0);
        for (i, s) in labels.iter().enumerate() {
            c.check_sensitivity(
                &Spanned::new(at..at, s.clone()),
                format!("release.require_approval[{i}]"),
            );
        }
        // Labels match exactly: a label ranked above a listed one but not listed
        // itself lets a write at that higher label skip the second pair of eyes.
        let lowest = labels
            .iter()
            .filter_map(|l| roster.sensitivity_rank(l))
            .min();
        if let Some(lowest) = lowest {
            let skipped: Vec<&str> = roster
                .sensitivities()
                .iter()
                .skip(lowest + 1)
                .filter(|s| !labels.contains(s))
                .map(|s| s.as_str())
                .collect();
            if !skipped.is_empty() {
                c.warn(
                    at..at,
                    "release.require_approval".into(),
                    format!(
                        "labels match exactly: writes at {} (ranked above a listed label) need no approval; list them too",
                        skipped.join(", ")
                    ),
                );
            }
        }
    }
    // An auditor's node holds no records to share and stores none it receives: the
    // two "nothing will flow" warnings below are its normal state, not a mistake
    // (s35 QA W12: `policy check` on an auditor's config warned for every peer).
    let auditor = roster
        .member(cfg.agency())
        .is_some_and(|m| m.role == Role::Auditor);
    for (i, p) in raw.peers.iter().enumerate() {
        let a = p.agency.get_ref();
        if !auditor
            && roster.member(a).is_some_and(|m| m.role == Role::Member)
            && !covered.contains(a)
        {
            c.warn(
                p.agency.span(),
                format!("peers[{i}].agency"),
                format!(
                    "no [[share]] rule sends anything to {a}: nothing this node holds will reach it"
                ),
            );
        }
    }
    if !auditor && raw.accept.is_empty() && !raw.peers.is_empty() {
        c.warn(
            raw.agency.span(),
            "accept".into(),
            "there is no [[accept]] rule: this node will store nothing it receives (default deny)"
                .into(),
        );
    }
    c.out
}
