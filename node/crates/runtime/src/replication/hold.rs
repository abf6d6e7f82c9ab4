//! Releasing the hold on local writes (`wlnode_store`'s `hold` module) once this node
//! has reconciled with every configured member peer since the hold began.
//!
//! A restore or a store reopen may lose records this node signed and served; they
//! come back from peers by reconciliation. Only our own completed session with a peer
//! says we hold what it would give us, so while writes are held every new connection
//! starts one at once, and each completed session is timed by its start.

use std::collections::HashMap;

use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::Role;
use wlnode_crypto::time::Timestamp;
use wlnode_net::PeerRef;

use super::{Done, Service};

/// Which of `required` have not completed a session that started at or after
/// `since` (ms), according to `reconciled` (agency → start of its last completed
/// session, ms).
pub(super) fn still_to_reconcile<'a>(
    required: impl IntoIterator<Item = &'a AgencyCode>,
    reconciled: &HashMap<AgencyCode, u64>,
    since: u64,
) -> Vec<AgencyCode> {
    required
        .into_iter()
        .filter(|a| reconciled.get(*a).is_none_or(|t| *t < since))
        .cloned()
        .collect()
}

impl Service {
    /// The peers a hold waits for: configured neighbours that are roster members and
    /// not blocked by the operator.
    fn hold_peers(&self) -> Vec<AgencyCode> {
        let roster = self.trust.roster();
        self.configured
            .iter()
            .filter(|a| {
                roster.member(a).is_some_and(|m| m.role == Role::Member)
                    && !self.blocked.contains(*a)
            })
            .cloned()
            .collect()
    }

    /// Our own session with `peer` starts now.
    pub(super) fn note_session_start(&mut self, peer: PeerRef) {
        self.session_started
            .insert(peer, Timestamp::now().as_millis());
    }

    /// Our own session with `peer` completed and its records are stored.
    pub(super) fn note_reconciled(&mut self, peer: PeerRef) {
        let Some((agency, _)) = self.agency_of(&peer) else {
            return;
        };
        let Some(started) = self.session_started.remove(&peer) else {
            return;
        };
        self.reconciled.insert(agency, started);
        self.check_hold();
    }

    /// Releases a hold on local writes if every peer it waits for has reconciled
    /// since it began. Reads the hold from the store each time: a reopen on the store
    /// thread may have set one while we run.
    pub(super) fn check_hold(&self) {
        let peers = self.hold_peers();
        let reconciled = self.reconciled.clone();
        let store = self.store.clone();
        let tx = self.tasks_tx.clone();
        tokio::spawn(async move {
            let result = store
                .call(move |s| {
                    let Some(since) = s.local_writes_held()? else {
                        return Ok(None);
                    };
                    let waiting = still_to_reconcile(&peers, &reconciled, since);
                    if waiting.is_empty() {
                        s.release_local_writes(since)?;
                    }
                    Ok(Some(waiting))
                })
                .await;
            match result {
                Ok(Some(w)) if w.is_empty() => {
                    tracing::info!(
                        "reconciled with every configured peer: local writes are no longer held"
                    );
                    let _ = tx.send(Done::HoldWaiting(w));
                }
                Ok(Some(w)) => {
                    let waiting: Vec<String> = w.iter().map(ToString::to_string).collect();
                    tracing::info!(waiting = ?waiting, "local writes stay held until these peers reconcile");
                    let _ = tx.send(Done::HoldWaiting(w));
                }
                Ok(None) => {
                    let _ = tx.send(Done::HoldWaiting(Vec::new()));
                }
                Err(e) => tracing::warn!(error = %e, "cannot check the hold on local writes"),
            }
        });
    }
}

impl Service {
    /// A hold waits for `waiting` (none: there is no hold, or it just ended): ask
    /// each connected one for our own session now (again after a failed one: this
    /// runs at every check), and reconcile with every peer that connects while it
    /// lasts.
    pub(super) fn on_hold_waiting(&mut self, waiting: &[AgencyCode]) {
        self.writes_held = !waiting.is_empty();
        let now = std::time::Instant::now();
        let peers: Vec<PeerRef> = self
            .agencies
            .iter()
            .filter(|(_, (a, _))| waiting.contains(a))
            .map(|(p, _)| *p)
            .collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.request_reconcile(now);
                self.run_actions(p, actions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_waits_for_sessions_that_started_after_it() {
        let a: AgencyCode = "AA-EXPORT".parse().unwrap();
        let b: AgencyCode = "BB-CUSTOMS".parse().unwrap();
        let mut r = HashMap::new();
        assert_eq!(
            still_to_reconcile([&a, &b], &r, 100),
            vec![a.clone(), b.clone()]
        );
        r.insert(a.clone(), 99);
        r.insert(b.clone(), 100);
        assert_eq!(still_to_reconcile([&a, &b], &r, 100), vec![a.clone()]);
        r.insert(a.clone(), 150);
        assert!(still_to_reconcile([&a, &b], &r, 100).is_empty());
        assert!(
            still_to_reconcile([], &r, 100).is_empty(),
            "no peers: nothing to wait for"
        );
    }
}
