//! The outbound choke point and the receive-side distribution check.
//!
//! Every record that leaves this node, whether in a Pull batch, a Reconcile transfer
//! or a relay, passes through [`Policy::decide`] and is cut to size by
//! [`Policy::prepare`]. Nothing else in the node builds an outbound copy of a record.
//! The origin's signed distribution is checked first and no rule can override it.
//!
//! The same rules, seen from the receiving side, are [`check_receive`]: a copy whose
//! distribution does not admit this node is refused even if its signature is valid.
//! After that, the admin's `[[accept]]` rules decide whether the copy is stored
//! ([`Policy::accept`]). `rules` compiles the config rules; `check` validates them
//! against the roster for `wlnode policy check` and at start-up.

pub mod check;
pub mod rules;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use wlnode_crypto::model::{AgencyCode, GroupName, RecordId, Scope};
use wlnode_crypto::record::{FieldSelector, RecordHeader};
use wlnode_crypto::roster::{KeyStanding, Role, Roster};

use rules::{Accept, Miss, Share};
use wlnode_config::Config;
use wlnode_types::{Facts, HeldView, StoredRecord};

/// Why a record may not go to (or come from) a peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Deny {
    /// The distribution does not admit the agency.
    NotInDistribution,
    /// `scope = origin`: the record never leaves its origin.
    OriginOnly,
    /// `scope = neighbors`: only the origin itself may send it, at hop 1.
    NoRelay,
    /// Beyond `max_hops`.
    HopLimit,
    /// The hop count in the transfer is impossible for its sender.
    BadHops,
    /// The sender was not allowed to hold the record itself.
    SenderNotInDistribution,
    /// The peer is an auditor: auditors receive no records.
    Auditor,
    /// The agency is not in the roster.
    NotInRoster,
    /// No `[[share]]` rule covers this record for this peer (default deny).
    NoShareRule,
    /// The record's signer key is revoked (and the roster authority does not keep the
    /// record): a node that did not hold it before would refuse it.
    RevokedKey,
}

impl Deny {
    /// Machine-readable reason, for metrics, audit and `policy explain`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotInDistribution => "not_in_distribution",
            Self::OriginOnly => "origin_only",
            Self::NoRelay => "neighbors_no_relay",
            Self::HopLimit => "hop_limit",
            Self::BadHops => "bad_hops",
            Self::SenderNotInDistribution => "sender_not_in_distribution",
            Self::Auditor => "auditor",
            Self::NotInRoster => "not_in_roster",
            Self::NoShareRule => "no_share_rule",
            Self::RevokedKey => "revoked_key",
        }
    }
}

impl fmt::Display for Deny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotInDistribution => "the record's distribution does not admit this agency",
            Self::OriginOnly => "the record's scope is origin: it never leaves its origin",
            Self::NoRelay => {
                "the record's scope is neighbors: only the origin may send it, directly"
            }
            Self::HopLimit => "the record's max_hops would be exceeded",
            Self::BadHops => "the hop count is impossible for this sender",
            Self::SenderNotInDistribution => "the sender itself was not allowed to hold the record",
            Self::Auditor => "auditors receive no records",
            Self::NotInRoster => "the agency is not in the roster",
            Self::NoShareRule => {
                "no [[share]] rule covers this record for this peer (default deny)"
            }
            Self::RevokedKey => {
                "the record's signer key is revoked and the roster authority does not keep it"
            }
        })
    }
}

/// The part of a distribution the rules need.
#[derive(Clone, Copy, Debug)]
pub struct DistRef<'a> {
    /// The origin.
    pub origin: &'a AgencyCode,
    /// The scope.
    pub scope: Scope,
    /// Groups, for `scope = groups`.
    pub groups: &'a BTreeSet<GroupName>,
}

/// Whether the distribution lets `agency` hold the record at all, ignoring hops and
/// path. The origin always may.
pub fn admits(roster: &Roster, d: DistRef<'_>, agency: &AgencyCode) -> bool {
    if agency == d.origin {
        return true;
    }
    let Some(m) = roster.member(agency) else {
        return false;
    };
    if m.role != Role::Member {
        return false;
    }
    match d.scope {
        Scope::Origin => false,
        Scope::Neighbors | Scope::Federation => true,
        Scope::Groups => d.groups.iter().any(|g| m.in_group(g)),
    }
}

/// Whether two neighbours should both count a record in their reconciliation sets: the
/// distribution admits both, and for `neighbors` scope one of them is the origin.
pub fn shared_between(roster: &Roster, d: DistRef<'_>, a: &AgencyCode, b: &AgencyCode) -> bool {
    if d.scope == Scope::Neighbors && a != d.origin && b != d.origin {
        return false;
    }
    admits(roster, d, a) && admits(roster, d, b)
}

/// The distribution check for sending a copy held at `hops_here` to `to`. Returns the
/// hop count the receiver will hold it at.
pub fn distribution_send(
    roster: &Roster,
    f: &Facts<'_>,
    hops_here: u32,
    to: &AgencyCode,
) -> Result<u32, Deny> {
    let member = roster.member(to).ok_or(Deny::NotInRoster)?;
    if member.role != Role::Member {
        return Err(Deny::Auditor);
    }
    let next = hops_here.saturating_add(1);
    if to == f.origin {
        // Giving the origin its own record back (e.g. after it lost data) leaks nothing.
        return Ok(next);
    }
    let d = DistRef {
        origin: f.origin,
        scope: f.scope,
        groups: f.groups,
    };
    if f.scope == Scope::Origin {
        return Err(Deny::OriginOnly);
    }
    if !admits(roster, d, to) {
        return Err(Deny::NotInDistribution);
    }
    if f.scope == Scope::Neighbors && hops_here != 0 {
        return Err(Deny::NoRelay);
    }
    if f.max_hops > 0 && next > f.max_hops {
        return Err(Deny::HopLimit);
    }
    Ok(next)
}

/// The receive-side check of a copy that `from` sent to `me`, claiming `hops`.
pub fn check_receive(
    roster: &Roster,
    h: &RecordHeader,
    me: &AgencyCode,
    from: &AgencyCode,
    hops: u32,
) -> Result<(), Deny> {
    if hops == 0 || (*from == h.origin && hops != 1) || (*from != h.origin && hops < 2) {
        return Err(Deny::BadHops);
    }
    if *me == h.origin {
        return Ok(());
    }
    let scope = h.distribution.scope;
    let d = DistRef {
        origin: &h.origin,
        scope,
        groups: &h.distribution.groups,
    };
    if scope == Scope::Origin {
        return Err(Deny::OriginOnly);
    }
    if !admits(roster, d, me) {
        return Err(Deny::NotInDistribution);
    }
    if !admits(roster, d, from) {
        return Err(Deny::SenderNotInDistribution);
    }
    if scope == Scope::Neighbors && *from != h.origin {
        return Err(Deny::NoRelay);
    }
    if h.distribution.max_hops > 0 && hops > h.distribution.max_hops {
        return Err(Deny::HopLimit);
    }
    Ok(())
}

/// The decision for one record and one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send, at this hop count, withholding these fields.
    Send {
        /// Hop count at the receiver.
        hops: u32,
        /// Fields to withhold.
        withhold: Vec<FieldSelector>,
    },
    /// Do not send.
    Deny(Deny),
}

/// The policy in force: the roster snapshot, this node's identity, and its compiled
/// share and accept rules.
#[derive(Clone, Debug)]
pub struct Policy {
    me: AgencyCode,
    roster: Arc<Roster>,
    share: Vec<Share>,
    accept: Vec<Accept>,
    /// SHA-256 of the canonical form of the rules, for the audit log.
    hash: [u8; 32],
    /// When this node first learned of each revocation (agency, key → Unix ms), from
    /// its store: the cutoff for proofs of a revoked key's records is the earlier of
    /// this and the revocation's date.
    revocations_known: std::collections::BTreeMap<(AgencyCode, wlnode_crypto::PublicKey), u64>,
    /// Which of our own writes need a second user's approval (`[release]`).
    release: wlnode_config::RequireApproval,
    /// The rules as written, with the line of each in the config the policy was read
    /// from: what a frontend shows as the policy in force (`Self::rules`).
    source: Arc<Rules>,
}

/// The share and accept rules of a policy as written (each with its line in the
/// config it was read from), for display.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `[[share]]` rules in order, with their lines.
    pub share: Vec<(usize, wlnode_config::ShareRule)>,
    /// `[[accept]]` rules in order, with their lines.
    pub accept: Vec<(usize, wlnode_config::AcceptRule)>,
}

/// Why `policy explain` decided as it did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// `send` or `deny`.
    pub decision: &'static str,
    /// The distribution check.
    pub distribution: DistributionCheck,
    /// Share rules that matched (1-based numbers and config lines).
    pub matched_rules: Vec<RuleRef>,
    /// Share rules that did not match, with the first failing condition.
    pub unmatched_rules: Vec<Miss>,
    /// Fields withheld from the copy: the union of the matched rules' `withhold` and
    /// of the field scopes that do not admit the peer.
    pub withheld_fields: Vec<String>,
    /// The origin's field scopes, and whether each admits the peer.
    pub field_scopes: Vec<FieldScopeCheck>,
    /// Hop count the peer would hold the record at.
    pub hops: Option<u32>,
    /// One-line summary.
    pub reason: String,
}

/// One of the origin's field scopes, as `explain` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldScopeCheck {
    /// The field selector.
    pub field: String,
    /// Who may receive it.
    pub to: Vec<String>,
    /// Whether the peer is among them (otherwise the field is withheld).
    pub admitted: bool,
}

/// The distribution part of an explanation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DistributionCheck {
    /// Whether the origin's distribution admits the peer on this path.
    pub allowed: bool,
    /// Reason code when it does not.
    pub reason: Option<&'static str>,
    /// Human-readable reason.
    pub detail: String,
}

/// A rule by number (1-based, as admins count them) and config line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleRef {
    /// 1-based rule number within its kind.
    pub rule: usize,
    /// Line in node.toml.
    pub line: usize,
}

/// A copy of a record ready to go to one peer: the only form in which a record leaves
/// the node. Its fields are private and [`Policy::prepare`] is its only constructor, so
/// a copy that has not passed the choke point cannot exist (the sync protocol's
/// outbound `Transfer` is made from one of these and nothing else).
///
/// ```compile_fail
/// // Outside this crate a copy cannot be forged around the choke point:
/// let forged = wlnode_policy::Prepared {
///     bytes: Default::default(),
///     to: "BB-CUSTOMS".parse().unwrap(),
///     hops: 1,
///     withheld_indices: Vec::new(),
///     inclusion: None,
/// };
/// ```
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Encoded record (with withheld fields removed).
    bytes: bytes::Bytes,
    /// The peer the copy was prepared for.
    to: AgencyCode,
    /// Hop count at the receiver.
    hops: u32,
    /// Field indices of the withheld disclosures (for the audit log).
    withheld_indices: Vec<u32>,
    /// For a revoked key's record: the inclusion proof it is sent with (without it
    /// the receiver refuses the record).
    inclusion: Option<bytes::Bytes>,
}

impl Prepared {
    /// The encoded copy (withheld fields removed).
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.bytes
    }

    /// The peer the copy was prepared for.
    pub fn to(&self) -> &AgencyCode {
        &self.to
    }

    /// Hop count at the receiver.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// How many disclosures were withheld.
    pub fn withheld(&self) -> usize {
        self.withheld_indices.len()
    }

    /// Field indices of the withheld disclosures (for the audit log).
    pub fn withheld_indices(&self) -> &[u32] {
        &self.withheld_indices
    }

    /// The inclusion proof the copy goes with, if any.
    pub fn inclusion(&self) -> Option<&bytes::Bytes> {
        self.inclusion.as_ref()
    }

    /// The encoded copy, its hop count and its inclusion proof, consuming the
    /// prepared copy.
    pub fn into_wire(self) -> (bytes::Bytes, u32, Option<bytes::Bytes>) {
        (self.bytes, self.hops, self.inclusion)
    }
}

impl Policy {
    /// A policy for `me` under `roster` with no rules: nothing is sent or accepted.
    pub fn deny_all(me: AgencyCode, roster: Arc<Roster>) -> Self {
        Self {
            me,
            roster,
            share: Vec::new(),
            accept: Vec::new(),
            hash: wlnode_crypto::sha256::digest(b"[]"),
            revocations_known: Default::default(),
            release: Default::default(),
            source: Arc::default(),
        }
    }

    /// Compiles the rules of `cfg` against `roster`. Fails with every error
    /// `policy check` would report; warnings are returned alongside.
    pub fn from_config(
        cfg: &Config,
        roster: Arc<Roster>,
    ) -> Result<(Self, Vec<wlnode_config::ConfigError>), Vec<wlnode_config::ConfigError>> {
        let report = check::check(cfg, &roster);
        if !report.errors.is_empty() {
            return Err(report.errors);
        }
        let line = |span: std::ops::Range<usize>| wlnode_config::line_col(&cfg.text, span.start).0;
        let share = cfg
            .raw
            .share
            .iter()
            .enumerate()
            .map(|(i, r)| Share::compile(i, line(r.to.span()), r, &roster))
            .collect();
        let accept = cfg
            .raw
            .accept
            .iter()
            .enumerate()
            .map(|(i, r)| Accept::compile(i, line(r.from.span()), r, &roster))
            .collect();
        // The release rule joins the hash only when set, so that the hash of a policy
        // without one stays what older nodes logged.
        let canonical = match &cfg.raw.release.require_approval {
            wlnode_config::RequireApproval::All(false) => {
                serde_json::to_vec(&(&cfg.raw.share, &cfg.raw.accept))
            }
            release => serde_json::to_vec(&(&cfg.raw.share, &cfg.raw.accept, release)),
        }
        .unwrap_or_default();
        let source = Arc::new(Rules {
            share: cfg
                .raw
                .share
                .iter()
                .map(|r| (line(r.to.span()), r.clone()))
                .collect(),
            accept: cfg
                .raw
                .accept
                .iter()
                .map(|r| (line(r.from.span()), r.clone()))
                .collect(),
        });
        Ok((
            Self {
                me: cfg.agency().clone(),
                roster,
                share,
                accept,
                hash: wlnode_crypto::sha256::digest(&canonical),
                revocations_known: Default::default(),
                release: cfg.raw.release.require_approval.clone(),
                source,
            },
            report.warnings,
        ))
    }

    /// The share and accept rules in force, as written.
    pub fn rules(&self) -> &Rules {
        &self.source
    }

    /// `[release] require_approval` in force.
    pub fn release(&self) -> &wlnode_config::RequireApproval {
        &self.release
    }

    /// Whether one of our own writes at `sensitivity` waits for a second user's
    /// approval (`[release] require_approval`).
    pub fn needs_approval(&self, sensitivity: &wlnode_crypto::model::Sensitivity) -> bool {
        self.release.applies(sensitivity)
    }

    /// Whether any write may need approval (`[release] require_approval` is set).
    pub fn four_eyes(&self) -> bool {
        self.release != wlnode_config::RequireApproval::All(false)
    }

    /// SHA-256 of the rules' canonical form.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The same policy, knowing when this node first learned of each revocation
    /// (agency, key → Unix ms; see [`Self::proof_cutoff`]).
    pub fn with_revocations_known(
        mut self,
        known: std::collections::BTreeMap<(AgencyCode, wlnode_crypto::PublicKey), u64>,
    ) -> Self {
        self.revocations_known = known;
        self
    }

    /// When our roster says `origin`'s `key` was revoked, if it is.
    pub fn revoked_at(
        &self,
        origin: &AgencyCode,
        key: &wlnode_crypto::PublicKey,
    ) -> Option<wlnode_crypto::time::Timestamp> {
        self.roster
            .member(origin)
            .and_then(|m| m.revoked.iter().find(|r| r.key == *key))
            .map(|r| r.revoked_at)
    }

    /// For a record of `origin` signed by `key`, revoked in our roster: the time an
    /// inclusion proof's cosignature must predate. It is the earlier of the
    /// revocation's date and when this node learned of it (`now` when it has no record
    /// of that, which is never earlier than when it learned). `None` when the key is
    /// not revoked.
    pub fn proof_cutoff(
        &self,
        origin: &AgencyCode,
        key: &wlnode_crypto::PublicKey,
        now: wlnode_crypto::time::Timestamp,
    ) -> Option<wlnode_crypto::time::Timestamp> {
        let revoked_at = self.revoked_at(origin, key)?;
        let known = self
            .revocations_known
            .get(&(origin.clone(), *key))
            .copied()
            .unwrap_or(now.as_millis());
        Some(wlnode_crypto::time::Timestamp(
            revoked_at.as_millis().min(known),
        ))
    }

    /// This node's agency.
    pub fn me(&self) -> &AgencyCode {
        &self.me
    }

    /// The roster the policy was built against.
    pub fn roster(&self) -> &Arc<Roster> {
        &self.roster
    }

    /// THE choke point: may `rec`, as held here, go to `to`, and with which fields?
    /// The distribution is checked first; nothing overrides it. Then at least one
    /// share rule must match, and the copy withholds the union of the matching
    /// rules' fields.
    pub fn decide(&self, rec: &StoredRecord, to: &AgencyCode) -> Decision {
        self.decide_on(
            &rec.record.id(),
            rec.record.header(),
            &Facts::held(rec),
            rec.hops,
            to,
        )
    }

    /// [`Self::decide`] on a held record's id, header and facts: the one decision,
    /// whether the record was decoded whole or read as a [`HeldView`].
    fn decide_on(
        &self,
        id: &RecordId,
        h: &RecordHeader,
        facts: &Facts<'_>,
        hops_here: u32,
        to: &AgencyCode,
    ) -> Decision {
        let (hops, mut withhold) = match self.send_check(id, facts, hops_here, to) {
            Ok(x) => x,
            Err(d) => return Decision::Deny(d),
        };
        // The origin's field scopes bind every hop, whatever the share rules say.
        for f in self.scoped_away(h, to) {
            if !withhold.iter().any(|w| w.covers(&f)) {
                withhold.retain(|w| !f.covers(w));
                withhold.push(f);
            }
        }
        withhold.sort();
        Decision::Send { hops, withhold }
    }

    /// The record-level half of [`Self::decide`], shared with [`Self::would_send`]: the
    /// distribution, the signer's standing, and the share rules, on the facts alone.
    /// Returns the receiver's hop count and the share rules' withholdings.
    fn send_check(
        &self,
        id: &RecordId,
        f: &Facts<'_>,
        hops_here: u32,
        to: &AgencyCode,
    ) -> Result<(u32, Vec<FieldSelector>), Deny> {
        let hops = distribution_send(&self.roster, f, hops_here, to)?;
        // A revoked key's record goes only with a proof that it predates the
        // revocation (the receiver checks it, and refuses the record without one).
        if !f.proven && self.roster.key_standing(f.origin, f.signer_key, id) == KeyStanding::Revoked
        {
            return Err(Deny::RevokedKey);
        }
        let mut matched = false;
        let mut withhold: Vec<FieldSelector> = Vec::new();
        for r in &self.share {
            if r.matches(&self.roster, &self.me, f, to).is_ok() {
                matched = true;
                for f in &r.withhold {
                    if !withhold.iter().any(|w| w.covers(f)) {
                        withhold.retain(|w| !f.covers(w));
                        withhold.push(f.clone());
                    }
                }
            }
        }
        if !matched {
            return Err(Deny::NoShareRule);
        }
        Ok((hops, withhold))
    }

    /// Whether [`Self::decide`] would send record `id`, held at `hops_here` with facts
    /// `f`, to `to` (with whatever withholdings): the test for a reconciliation set,
    /// so that a peer learns the ids, times and count only of what it would receive.
    pub fn would_send(
        &self,
        id: &RecordId,
        f: &Facts<'_>,
        hops_here: u32,
        to: &AgencyCode,
    ) -> bool {
        self.send_check(id, f, hops_here, to).is_ok()
    }

    /// Whether a held record belongs in the reconciliation set shared with `peer`: its
    /// own records (it knows them; without this, a node with no relay rule would be
    /// offered every record of its neighbour again at each session), and whatever
    /// [`Self::would_send`] would send it. Nothing else: a set member's id, time and
    /// count are what a peer learns.
    ///
    /// A revoked key's record held without an inclusion proof is in no set, not even
    /// its origin's: so an origin that can prove it sees that we lack the proof, and
    /// sends the record again with it; and one that cannot leaves it out too.
    pub fn in_reconcile_set(
        &self,
        id: &RecordId,
        f: &Facts<'_>,
        hops_here: u32,
        peer: &AgencyCode,
    ) -> bool {
        if f.origin == peer {
            f.proven || self.roster.key_standing(f.origin, f.signer_key, id) == KeyStanding::Valid
        } else {
            self.would_send(id, f, hops_here, peer)
        }
    }

    /// The fields the origin's signed field scopes keep from `to` (none for the
    /// origin itself).
    pub fn scoped_away(&self, h: &RecordHeader, to: &AgencyCode) -> Vec<FieldSelector> {
        if *to == h.origin || h.distribution.fields.is_empty() {
            return Vec::new();
        }
        let member = self.roster.member(to);
        h.distribution
            .fields
            .withheld_from(to, |g| member.is_some_and(|m| m.in_group(g)))
    }

    /// Explains [`Self::decide`] for `policy explain`.
    pub fn explain(&self, rec: &StoredRecord, to: &AgencyCode) -> Explanation {
        let h = rec.record.header();
        let dist = distribution_send(&self.roster, &Facts::of(h), rec.hops, to);
        let distribution = match &dist {
            Ok(_) => DistributionCheck {
                allowed: true,
                reason: None,
                detail: format!(
                    "scope {} admits {to}{}",
                    h.distribution.scope,
                    if h.distribution.max_hops > 0 {
                        format!(" within max_hops {}", h.distribution.max_hops)
                    } else {
                        String::new()
                    }
                ),
            },
            Err(d) => DistributionCheck {
                allowed: false,
                reason: Some(d.code()),
                detail: d.to_string(),
            },
        };
        let mut matched_rules = Vec::new();
        let mut unmatched_rules = Vec::new();
        for r in &self.share {
            match r.matches(&self.roster, &self.me, &Facts::of(h), to) {
                Ok(()) => matched_rules.push(RuleRef {
                    rule: r.index + 1,
                    line: r.line,
                }),
                Err(condition) => unmatched_rules.push(Miss {
                    rule: r.index + 1,
                    condition,
                }),
            }
        }
        let decision = self.decide(rec, to);
        let (decision_s, withheld_fields, hops, reason) = match &decision {
            Decision::Send { hops, withhold } => (
                "send",
                withhold.iter().map(ToString::to_string).collect(),
                Some(*hops),
                format!(
                    "sent under share rule(s) {}",
                    matched_rules
                        .iter()
                        .map(|r| format!("#{} (line {})", r.rule, r.line))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Decision::Deny(d) => ("deny", Vec::new(), None, d.to_string()),
        };
        let away = self.scoped_away(h, to);
        let field_scopes = h
            .distribution
            .fields
            .iter()
            .map(|s| FieldScopeCheck {
                field: s.field.to_string(),
                to: s.to.iter().map(ToString::to_string).collect(),
                admitted: !away.contains(&s.field),
            })
            .collect();
        Explanation {
            decision: decision_s,
            distribution,
            matched_rules,
            unmatched_rules,
            withheld_fields,
            field_scopes,
            hops,
            reason,
        }
    }

    /// Whether a verified copy from `from` may be stored: some accept rule applies,
    /// and the copy meets the requirements of every rule that applies.
    pub fn accept(
        &self,
        record: &wlnode_crypto::record::Record,
        from: &AgencyCode,
    ) -> Result<(), String> {
        let h = record.header();
        let mut applies = self
            .accept
            .iter()
            .filter(|r| r.applies(&self.roster, &self.me, h, from))
            .peekable();
        if applies.peek().is_none() {
            return Err(format!(
                "no [[accept]] rule covers records of {} from {from}",
                h.origin
            ));
        }
        for r in applies {
            if let Some(why) = r.unmet(record) {
                return Err(why);
            }
        }
        Ok(())
    }

    /// A copy of this policy under a new roster snapshot (same rules).
    pub fn with_roster(&self, roster: Arc<Roster>) -> Self {
        Self {
            roster,
            ..self.clone()
        }
    }

    /// Applies [`Self::decide`] and builds the copy to send, or `None` when denied.
    pub fn prepare(&self, rec: &StoredRecord, to: &AgencyCode) -> Result<Prepared, Deny> {
        match self.decide(rec, to) {
            Decision::Deny(d) => Err(d),
            Decision::Send { hops, withhold } => {
                let (copy, removed) = if withhold.is_empty() {
                    (rec.record.clone(), Vec::new())
                } else {
                    rec.record.redact(&withhold)
                };
                let h = rec.record.header();
                let revoked = self
                    .roster
                    .key_standing(&h.origin, &h.signer_key, &rec.record.id())
                    == KeyStanding::Revoked;
                Ok(Prepared {
                    bytes: copy.encode().into(),
                    to: to.clone(),
                    hops,
                    withheld_indices: removed,
                    inclusion: if revoked { rec.inclusion.clone() } else { None },
                })
            }
        }
    }

    /// The choke point for a held record read as a [`HeldView`]: the same decision as [`Self::prepare`]. When it sends the copy
    /// whole (nothing withheld), the copy is the stored encoded record as it is;
    /// `Ok(None)` when some field must be withheld, so the caller decodes the record
    /// and calls [`Self::prepare`], which redacts it.
    pub fn prepare_held(&self, v: &HeldView, to: &AgencyCode) -> Result<Option<Prepared>, Deny> {
        match self.decide_on(&v.id, &v.header, &Facts::viewed(v), v.hops, to) {
            Decision::Deny(d) => Err(d),
            Decision::Send { withhold, .. } if !withhold.is_empty() => Ok(None),
            Decision::Send { hops, .. } => {
                let h = &v.header;
                let revoked = self.roster.key_standing(&h.origin, &h.signer_key, &v.id)
                    == KeyStanding::Revoked;
                Ok(Some(Prepared {
                    bytes: v.record.clone(),
                    to: to.clone(),
                    hops,
                    withheld_indices: Vec::new(),
                    inclusion: if revoked { v.inclusion.clone() } else { None },
                }))
            }
        }
    }

    /// Whether `rec` belongs in the reconciliation set shared with `peer`.
    pub fn reconcile_member(&self, d: DistRef<'_>, peer: &AgencyCode) -> bool {
        shared_between(&self.roster, d, &self.me, peer)
    }
}

#[cfg(test)]
mod tests;
