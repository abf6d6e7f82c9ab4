//! Replication, sans IO: both sides of the `/wlnode/sync/1` protocol as state machines
//! that take events, results and the time, and return the actions to take, in the
//! style of iroh-gossip's `proto`. The node runtime owns the sockets (through the net
//! crate) and the store, and does what these return; unit tests drive them without
//! either.
//!
//! - [`peer`]: [`PeerSync`], the initiating side per neighbour (changes-feed cursor,
//!   Pulls, Notify, when to reconcile, backlog settling), [`Bans`] and [`Backoff`].
//! - [`dialer`]: [`Dialer`], when to dial each configured neighbour.
//! - [`responder`]: [`Responder`], the responding side (Pull serving, reconcile
//!   serving with its session cache, preparing our pushes).
//! - [`outbound`]: the choke point on the way out (policy, sent-cache, byte budgets,
//!   `sent` audit events), the only place a [`msg::Transfer`] is made.
//! - [`ingest`]: checking records received from a peer (decode, distribution, roster,
//!   clock, accept rules, signatures in one batch).
//! - [`reconcile`]: negentropy set reconciliation sessions.
//! - [`msg`] and [`wire`]: the messages and their encoding.
//!
//! No tokio, no IO.

pub mod dialer;
pub mod ingest;
pub mod mail;
pub mod msg;
pub mod outbound;
pub mod peer;
pub mod reconcile;
pub mod responder;
mod sent;
pub mod wire;

pub use dialer::{Dial, Dialer};
pub use peer::{Action, Backoff, Bans, PeerSync};
pub use responder::{Responder, ServeAction};
pub use sent::SentCache;
