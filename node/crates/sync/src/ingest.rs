//! Checking records received from a peer before they are stored: decode (with
//! disclosure digests), the distribution as seen from the receiving side, the signer
//! key's validity in the roster, the clock, the signatures in one batch, and last our
//! accept rules, which judge only verified copies.
//!
//! Pure and CPU-bound: the replication service runs it on the blocking pool and stores what
//! passes. Every rejection keeps its reason for metrics, audit and bans.

use std::time::Duration;

use wlnode_crypto::model::{AgencyCode, Recipient, RecordId};
use wlnode_crypto::record::{MAX_VERSION, Record, verify_batch};
use wlnode_crypto::roster::{KeyStanding, RosterError};
use wlnode_crypto::time::Timestamp;

use crate::msg::Received;
use wlnode_audit::inclusion::{InclusionError, RecordInclusion};
use wlnode_policy::{Deny, Policy, check_receive};
use wlnode_types::{Declined, Facts, Incoming, Source};

/// Why a received record was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Not a well-formed record, or a disclosure does not match its digest.
    Malformed(String),
    /// Its distribution does not admit this node (or the sender, or the path).
    Distribution(Deny),
    /// Its signer key was not valid for its origin at `issued_at`.
    Roster(&'static str),
    /// Issued in the future beyond the allowed clock skew.
    FromFuture,
    /// The signature does not verify.
    BadSignature,
    /// A local accept rule refused it.
    Policy(String),
    /// Its version is 0 or above [`MAX_VERSION`].
    Version(u64),
    /// The copy disclosed fields that the origin's signed field scopes keep from this
    /// node. Those disclosures are dropped and the rest of the copy is stored.
    FieldOutOfScope {
        /// How many disclosures were dropped.
        dropped: usize,
        /// Every scope that kept a dropped field from us names a group: another
        /// roster's group membership could explain the sender's view.
        by_group: bool,
    },
    /// Its signer key is revoked, the roster authority does not keep it, and this node
    /// did not hold it before: whoever has the key may have backdated it.
    /// `from_origin`: the origin's own node sent it (a relay may be honest: it held
    /// the record before the revocation).
    RevokedBackdated {
        /// The sender is the record's origin.
        from_origin: bool,
        /// It came with an inclusion proof that is genuine but does not hold under
        /// our roster (an auditor or node it does not list, an undated cosignature,
        /// or witnessed too late): another roster version may explain it.
        with_proof: bool,
        /// Its proof predates the revocation's date and fails only because this node
        /// learned of the revocation earlier than the auditor's date, which the sender
        /// cannot know: never a strike.
        excused: bool,
    },
    /// It came with an inclusion proof that is forged or corrupt (a signature, path
    /// or encoding no honest node produces). Always a strike.
    BadInclusion(String),
    /// The store holds the most equivocation evidence it keeps for the record's
    /// (entry, version). A strike when the origin itself sends it (a relay passes on
    /// at most what it kept, which may differ from what we kept).
    EquivocationExcess {
        /// The sender is the record's origin.
        from_origin: bool,
    },
}

impl RejectReason {
    /// Machine-readable reason.
    pub fn code(&self) -> String {
        match self {
            Self::Malformed(_) => "malformed".into(),
            Self::Distribution(d) => format!("distribution_{}", d.code()),
            Self::Roster(c) => (*c).to_owned(),
            Self::FromFuture => "from_future".into(),
            Self::BadSignature => "bad_signature".into(),
            Self::Policy(_) => "declined_by_policy".into(),
            Self::Version(_) => "version_out_of_range".into(),
            Self::RevokedBackdated { .. } => "revoked_key_backdated".into(),
            Self::BadInclusion(_) => "bad_inclusion".into(),
            Self::FieldOutOfScope { .. } => "field_out_of_scope".into(),
            Self::EquivocationExcess { .. } => "equivocation_excess".into(),
        }
    }

    /// Whether an honest sender could have sent this because its roster differs
    /// from ours (a rollover in progress): keys, members, groups and roles that one
    /// roster knows and the other does not yet, or no longer. Such a refusal is
    /// "not yet known", not "invalid".
    pub fn may_be_roster_lag(&self) -> bool {
        match self {
            Self::Roster(_) => true,
            Self::RevokedBackdated { with_proof, .. } => *with_proof,
            // Group membership decides field scopes too; a scope naming only
            // agencies is the same under every roster.
            Self::FieldOutOfScope { by_group, .. } => *by_group,
            Self::Distribution(d) => matches!(
                d,
                Deny::NotInDistribution
                    | Deny::SenderNotInDistribution
                    | Deny::NotInRoster
                    | Deny::Auditor
            ),
            _ => false,
        }
    }

    /// Whether this counts against a sender whose Hello named `their_roster` while
    /// ours is `our_roster`: invalid input does, except what a roster rollover
    /// explains ([`Self::may_be_roster_lag`]) while the two differ. A sender that
    /// has not said Hello gets no such allowance.
    pub fn strikes(&self, their_roster: Option<u64>, our_roster: u64) -> bool {
        self.counts_against_sender()
            && !(self.may_be_roster_lag() && their_roster.is_some_and(|v| v != our_roster))
    }

    /// Whether this counts as invalid input from the sender (towards a ban). Clock
    /// skew and our own accept rules do not.
    pub fn counts_against_sender(&self) -> bool {
        match self {
            Self::FromFuture | Self::Policy(_) => false,
            Self::RevokedBackdated {
                from_origin,
                excused,
                ..
            } => *from_origin && !*excused,
            Self::EquivocationExcess { from_origin } => *from_origin,
            _ => true,
        }
    }
}

fn roster_code(e: &RosterError) -> &'static str {
    match e {
        RosterError::UnknownAgency(_) => "unknown_agency",
        RosterError::UnknownKey { .. } => "unknown_key",
        RosterError::KeyNotYetValid { .. } => "key_not_yet_valid",
        RosterError::ExpiredKey { .. } => "expired_key",
        RosterError::RevokedKey { .. } => "revoked_key",
        RosterError::WrongRole { .. } => "wrong_role",
        _ => "roster",
    }
}

/// One refused record.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// Its id, when it decoded.
    pub record_id: Option<RecordId>,
    /// Its origin, when it decoded.
    pub origin: Option<AgencyCode>,
    /// Why.
    pub reason: RejectReason,
}

/// The outcome of checking a batch.
#[derive(Debug, Default)]
pub struct Checked {
    /// Records to store.
    pub accepted: Vec<Incoming>,
    /// Records refused.
    pub rejected: Vec<Rejected>,
    /// Verified records this node will not store (remembered so that peers stop
    /// offering them; see [`Declined`]).
    pub declined: Vec<Declined>,
    /// Verified records signed by a revoked key the roster authority does not keep:
    /// acceptable only if this node already holds them, or their inclusion proof held
    /// ([`Checked::settle_unproven`]).
    pub unproven: Vec<(Incoming, Proof)>,
}

/// What the inclusion proof sent with a revoked key's record showed.
#[derive(Debug)]
pub enum Proof {
    /// None came with it.
    None,
    /// It proves the record was in its origin's log under a checkpoint an auditor
    /// witnessed before the revocation (the encoded proof, to keep and pass on).
    Holds(bytes::Bytes),
    /// It does not hold.
    Refused(InclusionError),
}

impl Checked {
    /// A record `from` gave us that our set shared with `from` would leave out (we
    /// would not send it back): remembered as declined for `from`, so that it counts
    /// in that set and `from` stops offering it at every session. `from` holds it, so
    /// this discloses nothing.
    fn note_known(&mut self, policy: &Policy, from: &AgencyCode, record: &Record, hops: u32) {
        let h = record.header();
        let id = record.id();
        if !policy.in_reconcile_set(&id, &Facts::of(h), hops, from) {
            self.declined.push(Declined::from_peer(h, id, from, true));
        }
    }

    /// Decides the unproven records: the ones `held` says this node holds already
    /// (it took them before the revocation) go on as duplicates, and the ones whose
    /// inclusion proof holds are taken with it (demoted); the others are refused as
    /// `revoked_key_backdated` (or `bad_inclusion`, for a forged proof) and remembered
    /// as declined, so that peers stop offering them.
    pub fn settle_unproven(
        &mut self,
        policy: &Policy,
        from: &AgencyCode,
        held: impl Fn(&RecordId) -> bool,
    ) {
        for (mut incoming, proof) in std::mem::take(&mut self.unproven) {
            let id = incoming.record.id();
            let (proven, refused) = match proof {
                Proof::Holds(bytes) => (Some(bytes), None),
                Proof::Refused(e) => (None, Some(e)),
                Proof::None => (None, None),
            };
            let forged = refused.as_ref().filter(|e| e.is_forgery());
            if let Some(e) = forged {
                // A forged proof is a strike whatever we hold; the record itself is
                // judged as if it came without one.
                self.rejected.push(Rejected {
                    record_id: Some(id),
                    origin: Some(incoming.record.header().origin.clone()),
                    reason: RejectReason::BadInclusion(e.to_string()),
                });
            }
            let is_held = held(&id);
            // A record we do not hold is new to us: our accept rules judge it, as any
            // other new record (they judge the copy and its sender: declined for it).
            if !is_held
                && proven.is_some()
                && let Err(why) = policy.accept(&incoming.record, from)
            {
                let h = incoming.record.header();
                self.declined.push(Declined::from_peer(h, id, from, false));
                self.rejected.push(Rejected {
                    record_id: Some(id),
                    origin: Some(h.origin.clone()),
                    reason: RejectReason::Policy(why),
                });
                continue;
            }
            if is_held || proven.is_some() {
                // With a proof we may send it on (the store keeps the proof); without
                // one ours is demoted and never sent, and `from` would offer it again.
                let h = incoming.record.header();
                if proven.is_none()
                    || !policy.in_reconcile_set(
                        &id,
                        &Facts {
                            proven: true,
                            ..Facts::of(h)
                        },
                        incoming_hops(&incoming),
                        from,
                    )
                {
                    self.declined.push(Declined::from_peer(h, id, from, true));
                }
                incoming.inclusion = proven;
                self.accepted.push(incoming);
                continue;
            }
            let h = incoming.record.header();
            // About the copy (it came without a proof that holds), so declined for its
            // sender only: a copy stripped of its proof must not keep out the proven
            // copy another peer holds.
            self.declined.push(Declined::from_peer(h, id, from, false));
            if forged.is_none() {
                self.rejected.push(Rejected {
                    record_id: Some(id),
                    origin: Some(h.origin.clone()),
                    reason: RejectReason::RevokedBackdated {
                        from_origin: *from == h.origin,
                        with_proof: refused.is_some(),
                        excused: refused.as_ref().is_some_and(|e| {
                            matches!(e, InclusionError::AfterRevocation { witnessed_at, .. }
                                if policy.revoked_at(&h.origin, &h.signer_key)
                                    .is_some_and(|r| *witnessed_at < r.as_millis()))
                        }),
                    },
                });
            }
        }
    }
}

fn incoming_hops(i: &Incoming) -> u32 {
    match i.source {
        Source::Peer { hops, .. } => hops,
        Source::Local => 0,
    }
}

/// Checks the inclusion proof sent with `record`, a record of a revoked key.
fn check_proof(
    policy: &Policy,
    record: &Record,
    inclusion: Option<bytes::Bytes>,
    now: Timestamp,
) -> Proof {
    let Some(bytes) = inclusion else {
        return Proof::None;
    };
    let h = record.header();
    let Some(cutoff) = policy.proof_cutoff(&h.origin, &h.signer_key, now) else {
        return Proof::None;
    };
    match RecordInclusion::decode(&bytes).and_then(|p| {
        p.verify(policy.roster(), &record.id(), &h.origin, cutoff)
            .map(|_| p)
    }) {
        // Kept and passed on in our own encoding: padding a sender added goes no
        // further.
        Ok(p) => Proof::Holds(bytes::Bytes::from(p.encode())),
        Err(e) => Proof::Refused(e),
    }
}

/// Checks records `from` sent us.
pub fn check(
    policy: &Policy,
    from: &AgencyCode,
    transfers: Vec<Received>,
    now: Timestamp,
    max_skew: Duration,
) -> Checked {
    let roster = policy.roster();
    let me = policy.me();
    let mut out = Checked::default();
    let mut pending: Vec<(Record, u32, Option<bytes::Bytes>)> = Vec::with_capacity(transfers.len());
    let limit = now
        .as_millis()
        .saturating_add(u64::try_from(max_skew.as_millis()).unwrap_or(u64::MAX));
    for t in transfers {
        let record = match Record::decode_bytes(t.record) {
            Ok(r) => r,
            Err(e) => {
                out.rejected.push(Rejected {
                    record_id: None,
                    origin: None,
                    reason: RejectReason::Malformed(e.to_string()),
                });
                continue;
            }
        };
        let h = record.header();
        let reject = |reason| Rejected {
            record_id: Some(record.id()),
            origin: Some(h.origin.clone()),
            reason,
        };
        if let Err(d) = check_receive(roster, h, me, from, t.hops) {
            out.rejected.push(reject(RejectReason::Distribution(d)));
            continue;
        }
        if h.version == 0 || h.version > MAX_VERSION {
            out.rejected.push(reject(RejectReason::Version(h.version)));
            continue;
        }
        if let Err(e) = roster.check_record_signer(&h.origin, &h.signer_key, h.issued_at) {
            out.rejected
                .push(reject(RejectReason::Roster(roster_code(&e))));
            continue;
        }
        if h.issued_at.as_millis() > limit {
            out.rejected.push(reject(RejectReason::FromFuture));
            continue;
        }
        pending.push((record, t.hops, t.inclusion));
    }
    let mut side = Vec::with_capacity(pending.len());
    let mut records = Vec::with_capacity(pending.len());
    for (r, hops, inclusion) in pending {
        side.push((hops, inclusion));
        records.push(r);
    }
    for (res, (hops, inclusion)) in verify_batch(records).into_iter().zip(side) {
        match res {
            Ok(record) => {
                // The origin's field scopes bind every hop: a disclosure they keep from
                // us is refused (and a strike), the rest of the copy is kept.
                let away = policy.scoped_away(record.header(), me);
                let record = if away.is_empty() {
                    record
                } else {
                    let (stripped, dropped) = record.redact(&away);
                    if !dropped.is_empty() {
                        let by_group = record
                            .header()
                            .distribution
                            .fields
                            .iter()
                            .filter(|s| away.contains(&s.field))
                            .all(|s| s.to.iter().any(|r| matches!(r, Recipient::Group(_))));
                        out.rejected.push(Rejected {
                            record_id: Some(record.id()),
                            origin: Some(record.header().origin.clone()),
                            reason: RejectReason::FieldOutOfScope {
                                dropped: dropped.len(),
                                by_group,
                            },
                        });
                    }
                    stripped
                };
                let h = record.header();
                let standing = roster.key_standing(&h.origin, &h.signer_key, &record.id());
                // Accept rules judge verified copies only: a forged record must not
                // be remembered (it would join our reconciliation sets as junk). They
                // judge the copy and its sender, so the refusal holds for `from`
                // only: a stripped copy from one peer must not keep out the full
                // copy from another.
                if standing == KeyStanding::Valid
                    && let Err(why) = policy.accept(&record, from)
                {
                    out.declined
                        .push(Declined::from_peer(h, record.id(), from, false));
                    out.rejected.push(Rejected {
                        record_id: Some(record.id()),
                        origin: Some(h.origin.clone()),
                        reason: RejectReason::Policy(why),
                    });
                    continue;
                }
                let incoming = Incoming {
                    record,
                    source: Source::Peer {
                        agency: from.clone(),
                        hops,
                    },
                    local: None,
                    inclusion: None,
                };
                match standing {
                    KeyStanding::Valid => {
                        out.note_known(policy, from, &incoming.record, hops);
                        out.accepted.push(incoming);
                    }
                    KeyStanding::Revoked => {
                        // Verified after the record's own signature: a proof costs
                        // two signature checks, so only a signed record earns them.
                        let proof = check_proof(policy, &incoming.record, inclusion, now);
                        out.unproven.push((incoming, proof));
                    }
                }
            }
            Err(rej) => out.rejected.push(Rejected {
                record_id: Some(rej.record.id()),
                origin: Some(rej.record.header().origin.clone()),
                reason: RejectReason::BadSignature,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use bytes::Bytes;
    use wlnode_config::Config;
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::SecretKey;
    use wlnode_crypto::model::{EntryDraft, EntryId, Status};
    use wlnode_crypto::record::{RecordMeta, build_record};
    use wlnode_crypto::roster::Role;

    use super::*;
    use crate::msg::Received;

    /// BB (this node), CC and AA, whose key `stolen` is revoked at `revoked_at` with
    /// `kept` listed as known good.
    fn policy(stolen: &SecretKey, revoked_at: Timestamp, kept: &[RecordId]) -> Policy {
        policy_with(
            stolen,
            revoked_at,
            kept,
            "[[accept]]\nfrom = [\"*\"]\norigins = [\"*\"]\n",
        )
    }

    fn policy_with(
        stolen: &SecretKey,
        revoked_at: Timestamp,
        kept: &[RecordId],
        accept: &str,
    ) -> Policy {
        let nodes = ["AA-EXPORT", "BB-CUSTOMS", "CC-TRADE"].map(|a| {
            (
                a,
                Role::Member,
                SecretKey::generate().unwrap().public_key().peer_id(),
            )
        });
        built(&nodes, stolen, revoked_at, kept, accept)
    }

    /// BB-CUSTOMS's policy (`rules`) under a roster of `members` (agency, role, node
    /// PeerId), in which AA-EXPORT's key `stolen` is revoked at `revoked_at` with `kept`
    /// listed as known good.
    fn built(
        members: &[(&str, Role, String)],
        stolen: &SecretKey,
        revoked_at: Timestamp,
        kept: &[RecordId],
        rules: &str,
    ) -> Policy {
        let authority = SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        for (agency, role, node) in members {
            text = roster_edit::add_member(
                &text,
                &NewMember::coded(
                    agency,
                    *role,
                    SecretKey::generate().unwrap().public_key(),
                    vec![node.clone()],
                    &["eu"],
                    Timestamp(1),
                )
                .unwrap(),
            )
            .unwrap();
        }
        let aa = "AA-EXPORT".parse().unwrap();
        text = roster_edit::add_key(&text, &aa, &stolen.public_key(), Timestamp(1)).unwrap();
        text = roster_edit::revoke_key(&text, &aa, &stolen.public_key(), revoked_at, "x", kept)
            .unwrap();
        let (_, _, roster) = roster_edit::sign(&text, &authority).unwrap();
        let cfg = Config::parse(
            Path::new("/x/node.toml"),
            &format!(
                "agency = \"BB-CUSTOMS\"\nroster = \"r\"\nagency_key = \"a\"\nnode_key = \"n\"\n\
                 [api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"t\"\n{rules}"
            ),
        )
        .unwrap();
        Policy::from_config(&cfg, Arc::new(roster)).unwrap().0
    }

    fn signed(key: &SecretKey, version: u64, issued_at: Timestamp) -> Record {
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": "Someone"},
            "reason": "denial",
            "distribution": {"scope": "federation"}
        }))
        .unwrap();
        build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: "AA-EXPORT".parse().unwrap(),
                version,
                issued_at,
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            key,
        )
        .unwrap()
        .into_inner()
    }

    fn received(r: &Record, hops: u32) -> Received {
        Received {
            record: Bytes::from(r.encode()),
            hops,
            inclusion: None,
        }
    }

    /// Before the fix a revoked key's record dated before `revoked_at` was accepted
    /// everywhere; now only where it was already held, or kept by the authority.
    #[test]
    fn a_revoked_keys_backdated_record_counts_only_where_held_or_kept() {
        let stolen = SecretKey::generate().unwrap();
        let now = Timestamp::now();
        let kept = signed(&stolen, 1, Timestamp(now.0 - 5_000));
        let backdated = signed(&stolen, 1, Timestamp(now.0 - 5_000));
        let held = signed(&stolen, 2, Timestamp(now.0 - 5_000));
        let after = signed(&stolen, 1, Timestamp(now.0 - 500));
        let p = policy(&stolen, Timestamp(now.0 - 1_000), &[kept.id()]);
        let aa: AgencyCode = "AA-EXPORT".parse().unwrap();
        let cc: AgencyCode = "CC-TRADE".parse().unwrap();
        for (from, hops, strikes) in [(&aa, 1, true), (&cc, 2, false)] {
            let mut c = check(
                &p,
                from,
                vec![
                    received(&kept, hops),
                    received(&backdated, hops),
                    received(&held, hops),
                    received(&after, hops),
                ],
                now,
                Duration::from_secs(60),
            );
            // Signed after the revocation: refused outright, a strike.
            assert_eq!(c.rejected.len(), 1, "{:?}", c.rejected);
            assert_eq!(c.rejected[0].reason.code(), "revoked_key");
            assert_eq!(c.accepted.len(), 1, "the kept record");
            assert_eq!(c.accepted[0].record.id(), kept.id());
            assert_eq!(c.unproven.len(), 2);
            c.settle_unproven(&p, from, |id| *id == held.id());
            let ids: Vec<RecordId> = c.accepted.iter().map(|i| i.record.id()).collect();
            assert_eq!(ids, [kept.id(), held.id()], "held before: a duplicate");
            let last = c.rejected.last().unwrap();
            assert_eq!(last.record_id, Some(backdated.id()));
            assert_eq!(last.reason.code(), "revoked_key_backdated");
            assert_eq!(
                last.reason.counts_against_sender(),
                strikes,
                "a strike only when the origin itself sends it"
            );
            // Declined for the sender (the copy came without a proof; another peer
            // may hold a proven one): the backdated record; the held one (ours is
            // demoted and never sent back); and from CC the kept one too (no share
            // rule sends AA's records back to CC).
            let mut declined: Vec<(RecordId, Option<AgencyCode>)> = c
                .declined
                .iter()
                .map(|d| (d.id, d.only_for.clone()))
                .collect();
            declined.sort();
            let mut want = vec![
                (backdated.id(), Some(from.clone())),
                (held.id(), Some(from.clone())),
            ];
            if *from == cc {
                want.push((kept.id(), Some(cc.clone())));
            }
            want.sort();
            assert_eq!(declined, want, "peers stop offering them");
        }
    }

    /// Issue 19 item 6: a record a peer gave us that our share rules would not send
    /// back to it is remembered as declined for that peer, so that it counts in the
    /// set we share with it (the peer holds it) and is not offered at every session.
    /// A peer's own records always count, so they need no note.
    /// AA-EXPORT, BB-CUSTOMS (us) and AU-AUDIT (an auditor), AA's key `stolen`
    /// revoked at `revoked_at`; share rules send everything to everyone. Returns the
    /// policy, AA's node key and the auditor's node key.
    fn with_auditor(stolen: &SecretKey, revoked_at: Timestamp) -> (Policy, SecretKey, SecretKey) {
        let (aa_node, au_node) = (
            SecretKey::generate().unwrap(),
            SecretKey::generate().unwrap(),
        );
        let policy = auditor_policy(
            stolen,
            revoked_at,
            &aa_node,
            &au_node,
            "[[accept]]\nfrom = [\"*\"]\norigins = [\"*\"]\n\
             [[share]]\nto = [\"*\"]\norigins = [\"*\"]\nrelay = true\n",
        );
        (policy, aa_node, au_node)
    }

    /// [`with_auditor`]'s federation with these node keys and `rules`.
    fn auditor_policy(
        stolen: &SecretKey,
        revoked_at: Timestamp,
        aa_node: &SecretKey,
        au_node: &SecretKey,
        rules: &str,
    ) -> Policy {
        let members = [
            ("AA-EXPORT", Role::Member, aa_node.public_key().peer_id()),
            (
                "BB-CUSTOMS",
                Role::Member,
                SecretKey::generate().unwrap().public_key().peer_id(),
            ),
            ("AU-AUDIT", Role::Auditor, au_node.public_key().peer_id()),
        ];
        built(&members, stolen, revoked_at, &[], rules)
    }

    /// The proof that AA's node logged the creation of `r` (as its only event), under
    /// a checkpoint the auditor witnessed at `witnessed_at`.
    fn proof_of(r: &Record, aa_node: &SecretKey, au_node: &SecretKey, witnessed_at: u64) -> Bytes {
        use wlnode_audit::event::{Checkpoint, Cosignature, Event, EventKind};
        use wlnode_audit::merkle::{self, MemStore};
        let mut log = MemStore::new();
        let event = Event::new(1, EventKind::Created { record_id: r.id() }).encode();
        merkle::append(&mut log, 0, merkle::leaf_hash(&event)).unwrap();
        let cp = Checkpoint {
            agency: "AA-EXPORT".parse().unwrap(),
            peer_id: aa_node.public_key().peer_id(),
            size: 1,
            root: hex::encode(merkle::root(&log, 1).unwrap()),
            timestamp: witnessed_at,
        }
        .sign(aa_node);
        let cosig = Cosignature::sign(cp, witnessed_at, au_node);
        Bytes::from(
            RecordInclusion::build(&log, 0, &event, cosig)
                .unwrap()
                .encode(),
        )
    }

    /// Issue 19 item 1: a revoked key's record that this node never held was refused
    /// even when an auditor had witnessed it in its origin's log before the
    /// revocation; now such a proof admits it (and is kept to pass on), a proof
    /// witnessed too late does not (no strike from a relay, a roster-lag allowance),
    /// and a forged one is a strike from anyone.
    #[test]
    fn an_auditor_witnessed_inclusion_admits_a_revoked_keys_record() {
        let stolen = SecretKey::generate().unwrap();
        let now = Timestamp::now();
        let revoked_at = Timestamp(now.0 - 10_000);
        let (p, aa_node, au_node) = with_auditor(&stolen, revoked_at);
        let proven = signed(&stolen, 1, Timestamp(now.0 - 60_000));
        let late = signed(&stolen, 1, Timestamp(now.0 - 60_000));
        let forged = signed(&stolen, 1, Timestamp(now.0 - 60_000));
        let bare = signed(&stolen, 1, Timestamp(now.0 - 60_000));
        let with = |r: &Record, proof: Bytes| Received {
            record: Bytes::from(r.encode()),
            hops: 1,
            inclusion: Some(proof),
        };
        let good = proof_of(&proven, &aa_node, &au_node, revoked_at.0 - 1);
        let aa: AgencyCode = "AA-EXPORT".parse().unwrap();
        let mut c = check(
            &p,
            &aa,
            vec![
                with(&proven, good.clone()),
                with(&late, proof_of(&late, &aa_node, &au_node, revoked_at.0)),
                // `proven`'s proof sent with another record.
                with(&forged, good.clone()),
                received(&bare, 1),
            ],
            now,
            Duration::from_secs(60),
        );
        assert!(c.accepted.is_empty());
        assert_eq!(c.unproven.len(), 4);
        c.settle_unproven(&p, &aa, |_| false);
        assert_eq!(c.accepted.len(), 1, "{:?}", c.rejected);
        assert_eq!(c.accepted[0].record.id(), proven.id());
        assert_eq!(
            c.accepted[0].inclusion.as_ref(),
            Some(&good),
            "kept to pass on"
        );
        let codes: Vec<(RecordId, String, bool, bool)> = c
            .rejected
            .iter()
            .map(|r| {
                (
                    r.record_id.unwrap(),
                    r.reason.code(),
                    r.reason.counts_against_sender(),
                    r.reason.may_be_roster_lag(),
                )
            })
            .collect();
        assert_eq!(
            codes,
            [
                (late.id(), "revoked_key_backdated".into(), true, true),
                (forged.id(), "bad_inclusion".into(), true, false),
                (bare.id(), "revoked_key_backdated".into(), true, false),
            ],
            "from the origin itself: strikes, except a roster difference"
        );
        // Without the proof the same record is refused, as before, and remembered for
        // this sender only: a copy stripped of its proof must not keep out the proven
        // copy another peer holds.
        let mut c = check(
            &p,
            &aa,
            vec![received(&proven, 1)],
            now,
            Duration::from_secs(60),
        );
        c.settle_unproven(&p, &aa, |_| false);
        assert!(c.accepted.is_empty());
        assert_eq!(c.rejected[0].reason.code(), "revoked_key_backdated");
        assert_eq!(c.declined.len(), 1);
        assert_eq!(c.declined[0].only_for, Some(aa.clone()));
        // A forged proof is a strike even for a record we hold (which still counts).
        let mut c = check(
            &p,
            &aa,
            vec![with(&forged, good.clone())],
            now,
            Duration::from_secs(60),
        );
        c.settle_unproven(&p, &aa, |id| *id == forged.id());
        assert_eq!(c.accepted.len(), 1);
        assert_eq!(c.accepted[0].inclusion, None);
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].reason.code(), "bad_inclusion");
        // A padded proof is kept and passed on in our own encoding.
        let mut padded = good.to_vec();
        padded.splice(1..1, std::iter::repeat_n(b' ', 4_000));
        let mut c = check(
            &p,
            &aa,
            vec![with(&proven, Bytes::from(padded))],
            now,
            Duration::from_secs(60),
        );
        c.settle_unproven(&p, &aa, |_| false);
        assert_eq!(c.accepted[0].inclusion.as_ref(), Some(&good));
        // Review of issue 19: a proven record new to us skipped our accept rules.
        let strict = auditor_policy(&stolen, revoked_at, &aa_node, &au_node, "");
        let mut c = check(
            &strict,
            &aa,
            vec![with(&proven, good.clone())],
            now,
            Duration::from_secs(60),
        );
        c.settle_unproven(&strict, &aa, |_| false);
        assert!(c.accepted.is_empty());
        assert_eq!(c.rejected[0].reason.code(), "declined_by_policy");
        assert_eq!(c.declined[0].only_for, Some(aa.clone()));
        // Review of issue 19: a node that learned of a revocation (dated ahead) before
        // the auditor's date refuses the proof, but the origin, which could not know
        // when we learned, is not struck for it.
        let ahead = Timestamp(now.0 + 86_400_000);
        let (p, aa_node2, au_node2) = with_auditor(&stolen, ahead);
        let learned = now.0 - 5_000;
        let p = p.with_revocations_known(
            [(("AA-EXPORT".parse().unwrap(), stolen.public_key()), learned)].into(),
        );
        let early = signed(&stolen, 1, Timestamp(now.0 - 60_000));
        let mut c = check(
            &p,
            &aa,
            vec![with(
                &early,
                proof_of(&early, &aa_node2, &au_node2, now.0 - 1_000),
            )],
            now,
            Duration::from_secs(60),
        );
        c.settle_unproven(&p, &aa, |_| false);
        assert!(c.accepted.is_empty(), "after we learned of it: refused");
        assert_eq!(c.rejected[0].reason.code(), "revoked_key_backdated");
        assert!(
            !c.rejected[0].reason.counts_against_sender(),
            "no strike: before the revocation's own date"
        );
    }

    #[test]
    fn records_we_would_not_send_back_are_noted_for_their_sender() {
        let k = SecretKey::generate().unwrap();
        let now = Timestamp::now();
        let r = signed(&k, 1, Timestamp(now.0 - 1_000));
        // No share rules: BB sends nothing to anyone. (The test roster revokes `k`
        // in a day and keeps `r`, so `r` is valid.)
        let p = policy(&k, Timestamp(now.0 + 86_400_000), &[r.id()]);
        let aa: AgencyCode = "AA-EXPORT".parse().unwrap();
        let cc: AgencyCode = "CC-TRADE".parse().unwrap();
        let c = check(&p, &aa, vec![received(&r, 1)], now, Duration::from_secs(60));
        assert_eq!(c.accepted.len(), 1);
        assert!(
            c.declined.is_empty(),
            "the origin's own record counts anyway"
        );
        let c = check(&p, &cc, vec![received(&r, 2)], now, Duration::from_secs(60));
        assert_eq!(c.accepted.len(), 1);
        assert_eq!(c.declined.len(), 1);
        assert_eq!(c.declined[0].id, r.id());
        assert_eq!(c.declined[0].only_for, Some(cc.clone()));
        // With a rule that sends it back, no note is needed.
        let p = policy_with(
            &k,
            Timestamp(now.0 + 86_400_000),
            &[r.id()],
            "[[accept]]\nfrom = [\"*\"]\norigins = [\"*\"]\n\
             [[share]]\nto = [\"*\"]\norigins = [\"*\"]\nrelay = true\n",
        );
        let c = check(&p, &cc, vec![received(&r, 2)], now, Duration::from_secs(60));
        assert_eq!(c.accepted.len(), 1);
        assert!(c.declined.is_empty(), "{:?}", c.declined);
    }

    /// Issue 19 item 3: accept rules ran before the signatures were checked, so a
    /// forged record that the rules refused was remembered (it entered our
    /// reconciliation sets as junk) and cost its sender no strike. And the refusal of
    /// one peer's copy held for every peer.
    #[test]
    fn accept_rules_judge_only_verified_copies_and_only_for_their_sender() {
        // AA's key `k` is revoked in a day, and the authority keeps `genuine`.
        let k = SecretKey::generate().unwrap();
        let now = Timestamp::now();
        let genuine = signed(&k, 1, Timestamp(now.0 - 1_000));
        let p = policy_with(
            &k,
            Timestamp(now.0 + 86_400_000),
            &[genuine.id()],
            "[[accept]]\nfrom = [\"AA-EXPORT\"]\norigins = [\"*\"]\n",
        );
        let cc: AgencyCode = "CC-TRADE".parse().unwrap();
        let mut sig = *genuine.signature();
        sig.0[5] ^= 0x01;
        let forged = Record::from_parts(
            genuine.header_bytes().to_vec(),
            sig,
            genuine.disclosures().to_vec(),
        )
        .unwrap();
        let c = check(
            &p,
            &cc,
            vec![received(&forged, 2)],
            now,
            Duration::from_secs(60),
        );
        assert!(c.declined.is_empty(), "nothing forged is remembered");
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].reason.code(), "bad_signature");
        assert!(c.rejected[0].reason.counts_against_sender());
        // The genuine record from CC is refused by the rules, for CC only.
        let c = check(
            &p,
            &cc,
            vec![received(&genuine, 2)],
            now,
            Duration::from_secs(60),
        );
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].reason.code(), "declined_by_policy");
        assert!(!c.rejected[0].reason.counts_against_sender());
        assert_eq!(c.declined.len(), 1);
        assert_eq!(c.declined[0].id, genuine.id());
        assert_eq!(c.declined[0].only_for, Some(cc));
    }

    /// Issue 19 item 3: mid-rollover refusals of roster facts are not strikes while
    /// the sender's Hello names another roster; everything else still is.
    #[test]
    fn roster_lag_refusals_strike_only_under_the_same_roster() {
        let lag = [
            RejectReason::Roster("unknown_key"),
            RejectReason::Roster("unknown_agency"),
            RejectReason::Roster("key_not_yet_valid"),
            RejectReason::Distribution(Deny::NotInDistribution),
            RejectReason::Distribution(Deny::SenderNotInDistribution),
        ];
        for r in &lag {
            assert!(r.strikes(Some(7), 7), "{r:?} under the same roster");
            assert!(r.strikes(None, 7), "{r:?} before any Hello");
            assert!(!r.strikes(Some(8), 7), "{r:?} mid-rollover");
            assert!(!r.strikes(Some(6), 7), "{r:?} mid-rollover");
        }
        for r in [
            RejectReason::BadSignature,
            RejectReason::Malformed("x".into()),
            RejectReason::Distribution(Deny::BadHops),
            RejectReason::Distribution(Deny::OriginOnly),
            RejectReason::Version(0),
        ] {
            assert!(r.strikes(Some(8), 7), "{r:?} is invalid under any roster");
        }
    }

    /// Issue 19 item 5: a copy that discloses a field its origin scoped away from this
    /// node (a relay that ignored the scope, or a forged relay) loses that disclosure,
    /// and the sender gets a strike; the rest of the copy is stored.
    #[test]
    fn disclosures_outside_the_origins_field_scopes_are_refused() {
        let k = SecretKey::generate().unwrap();
        let now = Timestamp::now();
        let draft: EntryDraft = serde_json::from_value(serde_json::json!({
            "subject": {"kind": "person", "name": "Scoped", "birth_date": "1970-01-02",
                        "identifiers": [{"type": "passport", "value": "P1"}]},
            "reason": "denial",
            "distribution": {"scope": "federation",
                             "fields": {"birth_date": ["CC-TRADE"], "identifiers": ["group:eu"]}}
        }))
        .unwrap();
        let rec = build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: "AA-EXPORT".parse().unwrap(),
                version: 1,
                issued_at: Timestamp(now.0 - 1_000),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &draft,
            &k,
        )
        .unwrap()
        .into_inner();
        // `k` is kept by the authority, so the record's standing is valid.
        let p = policy(&k, Timestamp(now.0 + 86_400_000), &[rec.id()]);
        let cc: AgencyCode = "CC-TRADE".parse().unwrap();
        let c = check(
            &p,
            &cc,
            vec![received(&rec, 2)],
            now,
            Duration::from_secs(60),
        );
        assert_eq!(c.accepted.len(), 1, "the rest of the copy is kept");
        let kept = &c.accepted[0].record;
        assert!(
            kept.content().birth_date.is_none(),
            "birth_date is CC's only"
        );
        assert_eq!(kept.content().identifiers.len(), 1, "BB is in group eu");
        assert_eq!(c.rejected.len(), 1);
        assert_eq!(c.rejected[0].reason.code(), "field_out_of_scope");
        assert!(c.rejected[0].reason.strikes(Some(1), 1));
        assert!(
            c.rejected[0].reason.strikes(Some(2), 1),
            "birth_date is scoped to an agency: no roster explains the copy"
        );
        // Scoped to a group only: another roster's membership could explain it.
        let mut by_group = draft.clone();
        by_group.distribution.fields =
            serde_json::from_value(serde_json::json!({"identifiers": ["group:asean"]})).unwrap();
        let rec2 = build_record(
            RecordMeta {
                entry_id: EntryId::random().unwrap(),
                origin: "AA-EXPORT".parse().unwrap(),
                version: 1,
                issued_at: Timestamp(now.0 - 1_000),
                status: Status::Active,
                withdrawal_reason: None,
            },
            &by_group,
            &k,
        )
        .unwrap()
        .into_inner();
        let p2 = policy(&k, Timestamp(now.0 + 86_400_000), &[rec2.id()]);
        let c = check(
            &p2,
            &cc,
            vec![received(&rec2, 2)],
            now,
            Duration::from_secs(60),
        );
        assert_eq!(c.rejected.len(), 1);
        assert!(c.rejected[0].reason.strikes(Some(1), 1));
        assert!(
            !c.rejected[0].reason.strikes(Some(2), 1),
            "group membership may differ mid-rollover"
        );
        // A copy without the scoped field is fine.
        let (clean, _) = rec
            .verify()
            .unwrap()
            .redact(&["birth_date".parse().unwrap()]);
        let c = check(
            &p,
            &cc,
            vec![received(&clean, 2)],
            now,
            Duration::from_secs(60),
        );
        assert!(c.rejected.is_empty() && c.accepted.len() == 1);
    }

    #[test]
    fn versions_above_the_bound_are_refused() {
        let stolen = SecretKey::generate().unwrap();
        let key = SecretKey::generate().unwrap();
        let p = policy(&stolen, Timestamp::now(), &[]);
        assert!(
            build_record(
                RecordMeta {
                    entry_id: EntryId::random().unwrap(),
                    origin: "AA-EXPORT".parse().unwrap(),
                    version: MAX_VERSION + 1,
                    issued_at: Timestamp::now(),
                    status: Status::Active,
                    withdrawal_reason: None,
                },
                &serde_json::from_value::<EntryDraft>(serde_json::json!({
                    "subject": {"kind": "person", "name": "X"}, "reason": "denial"
                }))
                .unwrap(),
                &key,
            )
            .is_err(),
            "a node never signs one"
        );
        let _ = p;
    }
}
