//! The outbound choke point and the receive-side distribution check.
//!
//! Every record that leaves this node, whether in a Pull batch, a Reconcile transfer
//! or a relay, passes through [`Policy::decide`] and is cut to size by
//! [`Policy::prepare`]. Nothing else in the node builds an outbound copy of a record.
//! The origin's signed distribution is checked first and no rule can override it.
//!
//! The same rules, seen from the receiving side, are [`check_receive`]: a copy whose
//! distribution does not admit this node is refused even if its signature is valid.

use std::fmt;
use std::sync::Arc;

use wlnode_crypto::model::{AgencyCode, GroupName, Scope};
use wlnode_crypto::record::{FieldSelector, RecordHeader};
use wlnode_crypto::roster::{Role, Roster};

use crate::wire::StoredRecord;

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
    pub groups: &'a [GroupName],
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

fn dist_of(h: &RecordHeader) -> (Scope, Vec<GroupName>) {
    (
        h.distribution.scope,
        h.distribution.groups.iter().cloned().collect(),
    )
}

/// The distribution check for sending a copy held at `hops_here` to `to`. Returns the
/// hop count the receiver will hold it at.
pub fn distribution_send(
    roster: &Roster,
    h: &RecordHeader,
    hops_here: u32,
    to: &AgencyCode,
) -> Result<u32, Deny> {
    let member = roster.member(to).ok_or(Deny::NotInRoster)?;
    if member.role != Role::Member {
        return Err(Deny::Auditor);
    }
    let next = hops_here.saturating_add(1);
    if *to == h.origin {
        // Giving the origin its own record back (e.g. after it lost data) leaks nothing.
        return Ok(next);
    }
    let (scope, groups) = dist_of(h);
    let d = DistRef {
        origin: &h.origin,
        scope,
        groups: &groups,
    };
    if scope == Scope::Origin {
        return Err(Deny::OriginOnly);
    }
    if !admits(roster, d, to) {
        return Err(Deny::NotInDistribution);
    }
    if scope == Scope::Neighbors && hops_here != 0 {
        return Err(Deny::NoRelay);
    }
    if h.distribution.max_hops > 0 && next > h.distribution.max_hops {
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
    let (scope, groups) = dist_of(h);
    let d = DistRef {
        origin: &h.origin,
        scope,
        groups: &groups,
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

/// The policy in force: the roster snapshot and this node's identity (and, with the
/// policy issue, the share and accept rules).
#[derive(Clone, Debug)]
pub struct Policy {
    me: AgencyCode,
    roster: Arc<Roster>,
}

/// A copy ready to send.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// Encoded record (with withheld fields removed).
    pub bytes: bytes::Bytes,
    /// Hop count at the receiver.
    pub hops: u32,
    /// How many disclosures were withheld.
    pub withheld: usize,
}

impl Policy {
    /// A policy for `me` under `roster`.
    pub fn new(me: AgencyCode, roster: Arc<Roster>) -> Self {
        Self { me, roster }
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
    /// The distribution is checked first; nothing overrides it.
    pub fn decide(&self, rec: &StoredRecord, to: &AgencyCode) -> Decision {
        match distribution_send(&self.roster, rec.record.header(), rec.hops, to) {
            Ok(hops) => Decision::Send {
                hops,
                withhold: Vec::new(),
            },
            Err(d) => Decision::Deny(d),
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
                Ok(Prepared {
                    bytes: copy.encode().into(),
                    hops,
                    withheld: removed.len(),
                })
            }
        }
    }

    /// Whether `rec` belongs in the reconciliation set shared with `peer`.
    pub fn reconcile_member(&self, d: DistRef<'_>, peer: &AgencyCode) -> bool {
        shared_between(&self.roster, d, &self.me, peer)
    }
}
