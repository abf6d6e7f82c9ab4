//! Connection gating: only PeerIds listed in the roster may hold a connection, a
//! banned peer is refused until its ban expires, and a peer the operator blocked
//! (`wlnode peer block`) is refused until unblocked. The check runs when the security
//! handshake has authenticated the remote PeerId, before any protocol stream opens.
//! The event loop logs and counts each refusal from the swarm's connection errors.

use std::collections::{HashMap, HashSet};
use std::task::{Context, Poll};
use std::time::Instant;

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Why the gate refused a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The PeerId is not in the roster.
    #[error("peer {0} is not in the roster")]
    NotInRoster(PeerId),
    /// The peer is banned.
    #[error("peer {0} is banned")]
    Banned(PeerId),
    /// The operator blocked the peer's agency.
    #[error("peer {0} is blocked by the operator")]
    Blocked(PeerId),
}

impl Refused {
    /// Machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotInRoster(_) => "not_in_roster",
            Self::Banned(_) => "banned",
            Self::Blocked(_) => "blocked",
        }
    }
}

/// The gate behaviour.
#[derive(Debug, Default)]
pub struct Gate {
    allowed: HashSet<PeerId>,
    banned: HashMap<PeerId, Instant>,
    blocked: HashSet<PeerId>,
    refusals: Vec<Refused>,
}

impl Gate {
    /// Replaces the set of roster PeerIds.
    pub fn set_allowed(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.allowed = peers.into_iter().collect();
    }

    /// Replaces the set of blocked PeerIds.
    pub fn set_blocked(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.blocked = peers.into_iter().collect();
    }

    /// Bans `peer` until `until`.
    pub fn ban(&mut self, peer: PeerId, until: Instant) {
        self.banned.insert(peer, until);
    }

    /// The refusals since the last call, for logging and metrics.
    pub fn take_refusals(&mut self) -> Vec<Refused> {
        std::mem::take(&mut self.refusals)
    }

    fn gate(&mut self, peer: &PeerId) -> Result<(), ConnectionDenied> {
        self.check(peer).map_err(|r| {
            if self.refusals.len() < 10_000 {
                self.refusals.push(r.clone());
            }
            ConnectionDenied::new(r)
        })
    }

    /// Whether `peer` may connect now.
    pub fn check(&mut self, peer: &PeerId) -> Result<(), Refused> {
        if !self.allowed.contains(peer) {
            return Err(Refused::NotInRoster(*peer));
        }
        if self.blocked.contains(peer) {
            return Err(Refused::Blocked(*peer));
        }
        if let Some(until) = self.banned.get(peer) {
            if Instant::now() < *until {
                return Err(Refused::Banned(*peer));
            }
            self.banned.remove(peer);
        }
        Ok(())
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.gate(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.gate(&peer)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm<'_>) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        ev: THandlerOutEvent<Self>,
    ) {
        match ev {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_peers_are_refused_until_unblocked() {
        let a = PeerId::random();
        let b = PeerId::random();
        let mut g = Gate::default();
        g.set_allowed([a, b]);
        g.set_blocked([b]);
        assert_eq!(g.check(&a), Ok(()));
        assert_eq!(g.check(&b), Err(Refused::Blocked(b)));
        assert_eq!(Refused::Blocked(b).code(), "blocked");
        g.set_blocked([]);
        assert_eq!(g.check(&b), Ok(()));
        // Outside the roster stays refused whatever the blocks say.
        let c = PeerId::random();
        assert_eq!(g.check(&c), Err(Refused::NotInRoster(c)));
    }
}
