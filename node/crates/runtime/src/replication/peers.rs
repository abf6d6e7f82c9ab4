//! Connections and what follows from them: a state machine per connected member,
//! dialing the configured neighbours with backoff, operator blocks, reloads of the
//! roster and policy, and the peer-status table the API shows.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use wlnode_crypto::model::AgencyCode;
use wlnode_crypto::roster::Role;
use wlnode_crypto::time::Timestamp;
use wlnode_net::{Command, PeerRef};
use wlnode_sync::responder::MAX_PULL_LIMIT;
use wlnode_sync::{Action, PeerSync};

use super::{HOLD_CHECK_EVERY, Service, jitter, peers_of, roster_peers};
use crate::handles::PeerInfo;
use crate::metrics::PeerLabel;

impl Service {
    pub(super) fn on_connected(&mut self, peer: PeerRef, n: u32, dial: Option<u64>) {
        let who = self.agency_of(&peer);
        let agencies = &self.agencies;
        self.dialer.on_connected(
            dial,
            who.as_ref().map(|(a, _)| a),
            |a| agencies.values().any(|(x, _)| x == a),
            Instant::now(),
            jitter(),
        );
        let Some((agency, role)) = who else {
            // The gate only admits roster peers; a roster change may have raced.
            self.net.disconnect(peer);
            return;
        };
        if n > 1 {
            // A second connection: the peer may have restarted (a new store, a new
            // epoch) before its old connection was seen to close.
            if let Some(ps) = self.peers.get_mut(&peer) {
                ps.on_new_connection();
            }
            return;
        }
        self.agencies.insert(peer, (agency.clone(), role));
        // A new connection: the peer may have restarted or lost data, so what we sent
        // it before counts for nothing now.
        self.responder.on_connected(peer, &agency);
        self.metrics.peers_connected.inc();
        tracing::info!(%agency, %peer, role = %role, "peer connected");
        if role != Role::Member {
            return;
        }
        let initiator = self.me < peer;
        let mut ps = PeerSync::new(
            agency.clone(),
            initiator,
            self.cursors.get(&agency).copied(),
            self.cfg.anti_entropy_interval.0,
            self.cfg.pull_limit.min(MAX_PULL_LIMIT),
            u64::try_from(self.cfg.max_batch_bytes).unwrap_or(u64::MAX),
            Instant::now(),
        );
        let mut actions = ps.on_connected();
        if self.writes_held {
            // Our own session with it, at once: only that ends the hold.
            actions.extend(ps.request_reconcile(Instant::now()));
        }
        self.peers.insert(peer, ps);
        self.run_actions(peer, actions);
        self.refresh_status();
    }

    pub(super) fn on_disconnected(&mut self, peer: PeerRef, cause: Option<String>) {
        let Some((agency, _)) = self.agencies.remove(&peer) else {
            return;
        };
        self.metrics.peers_connected.dec();
        tracing::info!(%agency, %peer, cause = cause.as_deref().unwrap_or("closed"), "peer disconnected");
        self.peers.remove(&peer);
        self.initiators.remove(&peer);
        self.session_started.remove(&peer);
        self.responder.on_disconnected(&peer);
        self.pending.retain(|_, (p, _)| *p != peer);
        let still = self.agencies.values().any(|(a, _)| *a == agency);
        if !still {
            // Its last connection: the neighbour is down (for us).
            self.node_events.emit(
                wlnode_config::EventType::PeerDown,
                serde_json::json!({
                    "agency": agency.to_string(),
                    "peer_id": peer.to_string(),
                    "cause": cause.as_deref().unwrap_or("closed"),
                }),
            );
            self.sets.forget(&agency);
            self.dialer
                .on_disconnected(&agency, Instant::now(), jitter());
        }
        if let Some(c) = cause {
            self.set_error(&agency, c);
        }
        self.refresh_status();
    }

    /// One address of a dial failed; once none is left and the agency is not
    /// connected, the next dial waits for the backoff.
    pub(super) fn on_dial_failed(&mut self, dial: u64, error: String) {
        tracing::debug!(dial, error = %error, "dial failed");
        let agencies = &self.agencies;
        self.dialer.on_dial_failed(
            dial,
            |a| agencies.values().any(|(x, _)| x == a),
            Instant::now(),
            jitter(),
        );
    }

    /// The operator's block set changed: dial the unblocked ones again at once.
    pub(super) fn on_blocked(&mut self) {
        let new = self.blocked_rx.borrow_and_update().clone();
        let old = std::mem::replace(&mut self.blocked, new);
        for a in old.difference(&self.blocked) {
            self.dialer.on_unblocked(a, Instant::now());
        }
        self.apply_blocks();
    }

    /// Enforces the operator's blocks: the network refuses the blocked agencies'
    /// PeerIds (as the current roster lists them) both ways and closes their open
    /// connections, and nobody dials them.
    pub(super) fn apply_blocks(&mut self) {
        let roster = self.trust.roster();
        self.net
            .send(Command::SetBlocked(peers_of(&roster, &self.blocked)));
        for a in roster.members().map(|m| &m.agency) {
            self.metrics
                .peer_blocked
                .get_or_create(&PeerLabel {
                    peer: a.to_string(),
                })
                .set(i64::from(self.blocked.contains(a)));
        }
        self.refresh_status();
    }

    /// The policy or roster was reloaded: admit exactly the new roster's peers (the
    /// network drops connections it no longer lists), drop reconciliation sets built
    /// under the old rules, and reconcile with every neighbour so that records a
    /// widened policy now allows flow without waiting.
    pub(super) fn on_reloaded(&mut self) {
        let roster = self.trust.roster();
        self.net.send(Command::SetAllowed(roster_peers(&roster)));
        self.responder.on_policy_changed();
        self.sets.clear();
        self.apply_blocks();
        let now = Instant::now();
        let peers: Vec<PeerRef> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                // Hello again first: the peer judges what we send under our roster
                // version (a refusal a roster difference explains is no strike), and
                // it changed.
                let mut actions = vec![Action::SendHello];
                actions.extend(ps.request_reconcile(now));
                self.run_actions(p, actions);
            }
        }
    }

    pub(super) fn on_local_head(&mut self, head: u64) {
        if head <= self.local_head {
            return;
        }
        self.local_head = head;
        self.responder.on_store_changed();
        let peers: Vec<PeerRef> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.on_local_change();
                self.run_actions(p, actions);
            }
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        let peers: Vec<PeerRef> = self.peers.keys().copied().collect();
        for p in peers {
            if let Some(ps) = self.peers.get_mut(&p) {
                let actions = ps.on_tick(now);
                self.run_actions(p, actions);
            }
        }
        self.responder.on_tick(now);
        if now.duration_since(self.hold_checked) >= HOLD_CHECK_EVERY {
            // A reopen on the store thread may have begun a hold while we run; with
            // no peer to wait for (or all reconciled since) it ends here.
            self.hold_checked = now;
            self.check_hold();
        }
        let banned: std::collections::HashSet<AgencyCode> =
            self.bans.active(now).into_iter().map(|(a, _)| a).collect();
        let blocked = &self.blocked;
        for d in self
            .dialer
            .due(now, |a| banned.contains(a) || blocked.contains(a), jitter())
        {
            self.net.dial(d.id, d.addrs);
        }
        self.refresh_status();
    }

    pub(super) fn refresh_status(&mut self) {
        let roster = self.trust.roster();
        let ours = roster.version();
        let now = Instant::now();
        let wall = Timestamp::now();
        let banned: HashMap<AgencyCode, Instant> = self.bans.active(now).into_iter().collect();
        let mut table = BTreeMap::new();
        let previous = self
            .table
            .read()
            .ok()
            .map(|t| t.clone())
            .unwrap_or_default();
        let neighbours: Vec<AgencyCode> = self
            .configured
            .iter()
            .cloned()
            .chain(
                self.agencies
                    .values()
                    .filter(|(_, r)| *r == Role::Member)
                    .map(|(a, _)| a.clone()),
            )
            .collect();
        for agency in neighbours {
            let connected: Vec<(&PeerRef, &PeerSync)> = self
                .peers
                .iter()
                .filter(|(_, p)| p.agency == agency)
                .collect();
            let c = self.counters.get(&agency).cloned().unwrap_or_default();
            let ps = connected.first().map(|(_, p)| *p);
            let to_wall =
                |t: Instant| {
                    Timestamp(wall.as_millis().saturating_sub(
                        u64::try_from(now.duration_since(t).as_millis()).unwrap_or(0),
                    ))
                };
            let info = PeerInfo {
                agency: agency.to_string(),
                peer_id: connected
                    .first()
                    .map(|(p, _)| p.to_base58())
                    .or_else(|| {
                        roster
                            .member(&agency)
                            .and_then(|m| m.node_ids.first().cloned())
                    })
                    .unwrap_or_default(),
                connected: !connected.is_empty(),
                lag: ps.and_then(PeerSync::lag),
                backlog_pending: self
                    .cursors
                    .get(&agency)
                    .is_some_and(|c| !c.backlog_complete),
                last_sync: ps.and_then(|p| p.last_sync).map(to_wall),
                records_received: c.received,
                records_sent: c.sent,
                records_rejected: c.rejected,
                roster_version: ps.and_then(|p| p.roster_version),
                our_roster_outdated: ps.and_then(|p| p.roster_version).is_some_and(|v| v > ours),
                blocked: self.blocked.contains(&agency),
                banned_until: banned.get(&agency).map(|u| {
                    Timestamp(
                        wall.as_millis()
                            + u64::try_from(u.duration_since(now).as_millis()).unwrap_or(0),
                    )
                }),
                last_error: ps.and_then(|p| p.last_error.clone()).or_else(|| {
                    previous
                        .get(agency.as_str())
                        .and_then(|i| i.last_error.clone())
                }),
            };
            self.metrics
                .sync_backlog_pending
                .get_or_create(&PeerLabel {
                    peer: agency.to_string(),
                })
                .set(i64::from(info.backlog_pending));
            if let Some(lag) = info.lag {
                self.metrics
                    .sync_lag
                    .get_or_create(&PeerLabel {
                        peer: agency.to_string(),
                    })
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
            table.insert(agency.to_string(), info);
        }
        if let Ok(mut t) = self.table.write() {
            *t = table;
        }
    }
}
