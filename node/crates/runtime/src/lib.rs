//! The node runtime: wires the services of a running node and owns their lifecycle.
//!
//! - [`node`]: start-up (identity, roster, policy, store, API, network), clean stop, and
//!   the [`Services`] handed to frontends;
//! - [`handles`]: the narrow handles services share (ingest bookkeeping, store health,
//!   reload and peer blocks, the peer-status table);
//! - [`trust`]: loading the roster against the pinned anchor, and the roster/policy
//!   cell;
//! - `replication`: the service between the network transport and the sans-IO sync
//!   protocol;
//! - [`entries`]: this agency's entry lifecycle (add, amend, withdraw, import);
//! - [`cases`]: the screening case log and officers' decisions on hits;
//! - [`drafts`]: four-eyes release (writes that wait for a second user's approval);
//! - [`import_batches`]: four-eyes release of imports (a list approved as a batch, by
//!   the digest of what it would change);
//! - [`index`]: the live screening index and the task that keeps it current;
//! - [`events`]: the node-local event bus (`GET /v1/events`, webhooks);
//! - [`watches`]: watched parties, checked against every new head on the follower;
//! - [`webhooks`]: signed delivery of events to `[[webhook]]` receivers;
//! - [`auditor`]: the auditor's live audit over the audit protocol;
//! - [`sources`]: source lists fetched and imported on a schedule (`[[source]]`);
//! - [`users`]: the API's users, roles and tokens (only hashes kept);
//! - [`metrics`]: Prometheus metrics;
//! - [`mail`]: sealed agency-to-agency messages (send, inbox, outbox);
//! - [`consultations`]: Art. 16 consultations over sealed messages.
//!
//! Everything with IO below it (store, network) is reached through its crate's handle;
//! nothing here decodes a wire frame except through the sync and audit crates.

pub mod auditor;
pub mod cases;
pub mod consultations;
pub mod drafts;
pub mod entries;
pub mod events;
pub mod flags;
pub mod handles;
pub mod import_batches;
pub mod index;
pub mod mail;
pub mod metrics;
pub mod node;
mod replication;
pub mod sources;
pub mod trust;
pub mod users;
pub mod watches;
pub mod webhooks;

pub use handles::{Control, Health, Ingested, PeerInfo, PeerTable, ReloadReport};
pub use node::{ApiServing, ApiStarter, NodeError, NodeInfo, RunningNode, Services};
pub use replication::{AUDIT_LIMITS, MAIL_LIMITS};
