//! Loading the roster against the node's trust anchor, and the cell that holds the
//! roster and the policy in force.
//!
//! The anchor (trusted authority keys and the last accepted roster's federation,
//! version and hash) is persisted in the store, so a node refuses an older roster even
//! after a restart. Keys listed in `roster_authorities` in node.toml override the
//! pinned set; with neither, the first roster's authorities are pinned (trust on first
//! use) and the node logs a warning.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use wlnode_config::roster_file::{RosterFileError, read_signed};
use wlnode_crypto::PublicKey;
use wlnode_crypto::roster::{KeyStanding, Roster, RosterError, verify_roster};
use wlnode_policy::Policy;
use wlnode_store::{Store, StoreError};

/// Why the roster could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The roster file or its signature file could not be read.
    #[error(transparent)]
    File(#[from] RosterFileError),
    /// The roster was refused.
    #[error("roster {path} refused: {source}")]
    Refused {
        /// The roster file.
        path: PathBuf,
        /// Why.
        source: RosterError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of loading the roster.
#[derive(Debug)]
pub struct Loaded {
    /// The verified roster.
    pub roster: Roster,
    /// The authorities were pinned now, on first use.
    pub trust_on_first_use: bool,
}

/// Verifies the roster at `path` against the stored anchor and `configured` authority
/// keys, and persists the new anchor. Runs on the store thread.
pub fn load_roster(
    store: &Store,
    path: &Path,
    configured: &[PublicKey],
) -> Result<Loaded, TrustError> {
    let loaded = verify_roster_file(store, path, configured)?;
    store.set_roster_anchor(&loaded.roster)?;
    Ok(loaded)
}

/// Verifies the roster at `path` against the stored anchor and `configured` authority
/// keys **without** persisting it: a reload anchors it only once every other check
/// passed, so the stored anchor and the roster in force never disagree (review
/// s31-mail M6). Runs on the store thread.
pub fn verify_roster_file(
    store: &Store,
    path: &Path,
    configured: &[PublicKey],
) -> Result<Loaded, TrustError> {
    let (bytes, sig) = read_signed(path)?;
    let mut anchor = store.roster_anchor()?.unwrap_or_default();
    if !configured.is_empty() {
        anchor.authorities = configured.to_vec();
    }
    let trust_on_first_use = anchor.authorities.is_empty();
    let roster = verify_roster(&bytes, &sig, &anchor).map_err(|source| TrustError::Refused {
        path: path.to_owned(),
        source,
    })?;
    Ok(Loaded {
        roster,
        trust_on_first_use,
    })
}

/// Brings the store's entry states in line with `roster`'s revocations (nothing is
/// read when they are the ones applied last), then the inclusion proofs held for
/// records of revoked keys: built for `me`'s own records from its audit log, dropped
/// where `roster` no longer supports them. Runs on the store thread; the report's
/// `head_seq` is the arrival log's head after both. Also returns when this node first
/// learned of each revocation, for the policy ([`Policy::with_revocations_known`]).
pub fn apply_revocations(
    store: &Store,
    roster: &Roster,
    me: &wlnode_crypto::model::AgencyCode,
) -> Result<
    (
        wlnode_store::revocations::RevocationReport,
        wlnode_store::inclusions::RevocationsKnown,
    ),
    StoreError,
> {
    let digest = roster.revocations_digest();
    // A store that never applied revocations, under a roster that revokes nothing, has
    // nothing to demote: no scan of its records (a node's first start with an imported
    // or restored store would otherwise read every record).
    if roster.revocations().next().is_none()
        && store
            .meta_get(wlnode_store::schema::meta::REVOCATIONS_APPLIED)?
            .is_none()
    {
        store.meta_set(wlnode_store::schema::meta::REVOCATIONS_APPLIED, &digest)?;
    }
    let mut report = store.apply_revocations(
        digest,
        |h, id| roster.key_standing(&h.origin, &h.signer_key, id) == KeyStanding::Revoked,
        wlnode_crypto::Timestamp::now(),
    )?;
    if report.applied {
        tracing::warn!(
            demoted_records = report.demoted_records,
            entries_changed = report.entries_changed,
            heads_changed = report.heads_changed,
            "revocations applied: records of revoked keys rank below the agencies' valid ones"
        );
    }
    let known = store.revocations_known(roster, wlnode_crypto::Timestamp::now())?;
    let proofs = store.refresh_inclusions(roster, me, &known)?;
    if proofs.proven + proofs.unprovable + proofs.dropped > 0 {
        tracing::warn!(
            proven = proofs.proven,
            unprovable = proofs.unprovable,
            dropped = proofs.dropped,
            "inclusion proofs for records of revoked keys: our own ones proven from our audit \
             log go out with their proofs; unprovable ones stay here, demoted"
        );
    }
    report.head_seq = store.head_seq()?;
    Ok((report, known))
}

/// Applies `roster`'s revocations ([`apply_revocations`]) and only then anchors it
/// (review s31-fixes X7: the anchor was written first, so a store error while
/// applying the revocations left a raised anchor beside the old roster in force).
/// A store error in the revocation step leaves the anchor where it was; one in the
/// anchor write after it leaves the revocations applied, which a retry (the next
/// reload or start) finds done by their digest and reads nothing for, then anchors.
/// The anchor is a version floor, so it never runs ahead of what the store applied.
/// Runs on the store thread.
pub fn apply_revocations_and_anchor(
    store: &Store,
    roster: &Roster,
    me: &wlnode_crypto::model::AgencyCode,
) -> Result<
    (
        wlnode_store::revocations::RevocationReport,
        wlnode_store::inclusions::RevocationsKnown,
    ),
    StoreError,
> {
    let applied = apply_revocations(store, roster, me)?;
    store.set_roster_anchor(roster)?;
    Ok(applied)
}

/// The roster and the policy in force, swapped together on reload. Readers take a
/// snapshot (`Arc`) and never hold the lock.
#[derive(Clone, Debug)]
pub struct TrustCell {
    roster: Arc<RwLock<Arc<Roster>>>,
    policy: Arc<RwLock<Arc<Policy>>>,
    /// The version of the roster last anchored and when this node first accepted
    /// it (Unix ms, the store anchor's `adopted_at`): noted at start and at every
    /// reload before the roster is put in force, so the revocation grace of a roster
    /// taken by a live reload starts at its adoption, as after a restart (review
    /// s33-mail L2: it started at the first ack judged under it).
    adopted: Arc<RwLock<Option<(u64, u64)>>>,
}

impl TrustCell {
    /// A cell holding `roster` and `policy`.
    pub fn new(roster: Arc<Roster>, policy: Policy) -> Self {
        Self {
            roster: Arc::new(RwLock::new(roster)),
            policy: Arc::new(RwLock::new(Arc::new(policy))),
            adopted: Arc::new(RwLock::new(None)),
        }
    }

    /// The version of the roster last anchored and when this node first accepted it
    /// (Unix ms), if the anchor records it.
    pub fn adopted(&self) -> Option<(u64, u64)> {
        match self.adopted.read() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    /// Notes the anchor's (version, adoption time) of the roster about to be put
    /// in force (see [`TrustCell::adopted`]).
    pub(crate) fn note_adopted(&self, adopted: Option<(u64, u64)>) {
        if let Ok(mut g) = self.adopted.write() {
            *g = adopted;
        }
    }

    /// The current roster.
    pub fn roster(&self) -> Arc<Roster> {
        match self.roster.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts a new roster and policy in force.
    pub(crate) fn replace(&self, roster: Arc<Roster>, policy: Policy) {
        if let Ok(mut g) = self.roster.write() {
            *g = roster;
        }
        if let Ok(mut g) = self.policy.write() {
            *g = Arc::new(policy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wlnode_config::roster_edit::{self, NewMember};
    use wlnode_crypto::{SecretKey, Timestamp};

    /// Issue 21, s35 (s32 L4): a node loads (verifies, anchors, applies) a roster
    /// that a later build's authority signed with a federation setting this build
    /// does not know, and the revocation in the same roster takes effect: a record
    /// signed by the revoked key after `revoked_at` is refused. The setting is
    /// reported (warning, gauge). Before, the roster was refused (`deny_unknown_fields`
    /// on `federation_settings`) and the node kept trusting the stolen key.
    #[test]
    fn a_later_builds_setting_does_not_keep_a_revocation_from_the_node() {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store::open(store_dir.path()).unwrap();
        let authority = SecretKey::generate().unwrap();
        let me: wlnode_crypto::model::AgencyCode = "AA-EXPORT".parse().unwrap();
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        let start = Timestamp::now().as_millis() - 3_600_000;
        let text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        let text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                me.as_str(),
                wlnode_crypto::roster::Role::Member,
                key.public_key(),
                vec![node.public_key().peer_id()],
                &["eu"],
                Timestamp(start),
            )
            .unwrap(),
        )
        .unwrap();
        let path = dir.path().join("roster.toml");
        let publish = |bytes: &[u8]| {
            let sig = wlnode_crypto::roster::sign_roster(bytes, &authority);
            std::fs::write(&path, bytes).unwrap();
            std::fs::write(wlnode_config::roster_file::sig_path(&path), sig.to_text()).unwrap();
        };
        let (v1_text, _, _) = roster_edit::sign(&text, &authority).unwrap();
        publish(v1_text.as_bytes());
        let v1 = load_roster(&store, &path, &[]).unwrap().roster;
        apply_revocations_and_anchor(&store, &v1, &me).unwrap();
        let revoked_at = Timestamp(start + 1_800_000);
        let later = Timestamp(start + 2_400_000);
        assert!(
            v1.check_record_signer(&me, &key.public_key(), later)
                .is_ok()
        );
        // Version 2, as a later build signs it: the revocation plus a setting this
        // build does not know (this build's `sign` would refuse it, so the bytes are
        // signed directly, as the later authority's tool does).
        let revoked =
            roster_edit::revoke_key(&v1_text, &me, &key.public_key(), revoked_at, "stolen", &[])
                .unwrap();
        let (v2_text, _, _) = roster_edit::sign(&revoked, &authority).unwrap();
        let v2_text = format!(
            "{v2_text}\n[federation_settings]\nsettlement_rule_since = 2027-01-01T00:00:00Z\n"
        );
        publish(v2_text.as_bytes());
        let loaded = load_roster(&store, &path, &[]).expect("the later roster is loaded");
        let v2 = loaded.roster;
        assert_eq!(v2.version(), 2);
        assert_eq!(v2.hash(), wlnode_crypto::sha256::digest(v2_text.as_bytes()));
        assert!(matches!(
            v2.check_record_signer(&me, &key.public_key(), later),
            Err(RosterError::RevokedKey { .. })
        ));
        apply_revocations_and_anchor(&store, &v2, &me).unwrap();
        let anchor = store.roster_anchor().unwrap().unwrap().accepted.unwrap();
        assert_eq!((anchor.1, anchor.2), (2, v2.hash()));
        let metrics = crate::metrics::Metrics::new();
        let w = crate::node::report_settings_not_understood(&v2, &metrics).unwrap();
        assert!(w.contains("settlement_rule_since"), "{w}");
        assert_eq!(metrics.roster_settings_not_understood.get(), 1);
        assert!(crate::node::report_settings_not_understood(&v1, &metrics).is_none());
        assert_eq!(metrics.roster_settings_not_understood.get(), 0);
    }

    /// Review s31-fixes X7: a store error while the revocations of a new roster are
    /// applied leaves the stored anchor at the old roster; the retry applies both.
    /// Review s32-consult L7: the store's switch now also fails the N-th write alone,
    /// so the test fails each of the first two writes in turn; with the anchor
    /// written first (the order before X7) the second write fails in the revocation
    /// step after the anchor reached the new roster, and the test fails.
    #[test]
    fn a_store_error_applying_revocations_leaves_the_anchor_at_the_old_roster() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let authority = SecretKey::generate().unwrap();
        let me: wlnode_crypto::model::AgencyCode = "AA-EXPORT".parse().unwrap();
        let key = SecretKey::generate().unwrap();
        let node = SecretKey::generate().unwrap();
        let mut text = roster_edit::init("t", &authority.public_key(), "authority").unwrap();
        text = roster_edit::add_member(
            &text,
            &NewMember::coded(
                me.as_str(),
                wlnode_crypto::roster::Role::Member,
                key.public_key(),
                vec![node.public_key().peer_id()],
                &["eu"],
                Timestamp(Timestamp::now().as_millis() - 3_600_000),
            )
            .unwrap(),
        )
        .unwrap();
        let (text, _, v1) = roster_edit::sign(&text, &authority).unwrap();
        apply_revocations_and_anchor(&store, &v1, &me).unwrap();
        let anchored = |s: &Store| s.roster_anchor().unwrap().unwrap().accepted.unwrap().1;
        assert_eq!(anchored(&store), v1.version());
        let revoked = roster_edit::revoke_key(
            &text,
            &me,
            &key.public_key(),
            Timestamp(Timestamp::now().as_millis() - 60_000),
            "compromised",
            &[],
        )
        .unwrap();
        let (_, _, v2) = roster_edit::sign(&revoked, &authority).unwrap();
        assert!(v2.revocations().next().is_some());
        let applied_digest = |s: &Store| {
            s.meta_get(wlnode_store::schema::meta::REVOCATIONS_APPLIED)
                .unwrap()
        };
        // Review s32-consult L7: fail each of the first writes in turn, on a store at
        // v1 each time. Whichever write fails, the anchor never runs ahead of the
        // revocations the store applied (with the anchor written first, the second
        // write fails inside the revocation step after the anchor reached v2).
        for n in 1..=2 {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            apply_revocations_and_anchor(&store, &v1, &me).unwrap();
            store.faults().fail_nth_write(n);
            assert!(
                apply_revocations_and_anchor(&store, &v2, &me).is_err(),
                "write {n} failed"
            );
            store.faults().clear();
            if anchored(&store) == v2.version() {
                assert_eq!(
                    applied_digest(&store).as_deref(),
                    Some(&v2.revocations_digest()[..]),
                    "write {n} failed: the anchor is at v2, so v2's revocations are applied"
                );
            }
            apply_revocations_and_anchor(&store, &v2, &me).unwrap();
            assert_eq!(anchored(&store), v2.version());
        }
        store.faults().fail_writes(1);
        assert!(apply_revocations_and_anchor(&store, &v2, &me).is_err());
        assert_eq!(anchored(&store), v1.version(), "the anchor stayed");
        assert_ne!(
            applied_digest(&store).as_deref(),
            Some(&v2.revocations_digest()[..]),
            "and the new revocations are not applied"
        );
        apply_revocations_and_anchor(&store, &v2, &me).unwrap();
        assert_eq!(anchored(&store), v2.version());
        assert_eq!(
            applied_digest(&store).as_deref(),
            Some(&v2.revocations_digest()[..])
        );
    }
}
