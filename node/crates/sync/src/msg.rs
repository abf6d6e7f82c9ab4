//! The replication protocol's messages as validated domain types. Encoding and
//! decoding live in [`crate::wire`]; records inside transfers stay encoded bytes until
//! the receiver checks each one on its own.

use bytes::Bytes;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_policy::Prepared;

/// Exchanged on connect, in both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Sender's agency.
    pub agency: AgencyCode,
    /// Sender's roster version.
    pub roster_version: u64,
    /// Sender's arrival-log epoch.
    pub log_epoch: [u8; 16],
    /// Sender's arrival-log head.
    pub head_seq: u64,
    /// The sender has no complete cursor for our log and reconciles on connect itself.
    pub backlog_pending: bool,
}

/// "I stored new records; my log head is now `head_seq`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Notify {
    /// Sender's log epoch.
    pub log_epoch: [u8; 16],
    /// Sender's log head.
    pub head_seq: u64,
}

/// Changes-feed pull.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pull {
    /// Epoch the cursor belongs to.
    pub log_epoch: [u8; 16],
    /// Last sequence number already received.
    pub after_seq: u64,
    /// Most records wanted.
    pub limit: u32,
    /// Most bytes wanted.
    pub max_bytes: u64,
}

/// A record in transit. An outbound one can only be made from a copy that passed the
/// policy choke point ([`Prepared`]); an inbound one only by decoding a frame
/// ([`crate::wire`]). Nothing else can fill one.
///
/// ```compile_fail
/// // Outside this crate a transfer cannot be filled with arbitrary bytes:
/// let forged = wlnode_sync::msg::Transfer {
///     record: Default::default(),
///     hops: 1,
/// };
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Encoded record.
    pub(crate) record: Bytes,
    /// Hops from the origin at the receiver.
    pub(crate) hops: u32,
}

impl Transfer {
    /// The encoded record (unverified until the receiver checks it).
    pub fn record(&self) -> &Bytes {
        &self.record
    }

    /// Hops from the origin at the receiver, as the sender claims.
    pub fn hops(&self) -> u32 {
        self.hops
    }
}

impl From<Prepared> for Transfer {
    fn from(p: Prepared) -> Self {
        let (record, hops) = p.into_wire();
        Self { record, hops }
    }
}

/// A changes-feed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Server's epoch (a different one means: reset your cursor).
    pub log_epoch: [u8; 16],
    /// The records the server may send, in log order.
    pub records: Vec<Transfer>,
    /// Cursor to continue from.
    pub next_seq: u64,
    /// Server's log head when the batch was cut.
    pub head_seq: u64,
    /// False when the server stopped early (limit or bytes).
    pub complete: bool,
}

/// One initiator round of reconciliation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconcile {
    /// Session id chosen by the initiator.
    pub session: [u8; 16],
    /// Negentropy message (empty once the set difference is known).
    pub message: Bytes,
    /// Records the responder lacks.
    pub have: Vec<Transfer>,
    /// Records the initiator wants.
    pub need: Vec<RecordId>,
}

/// The responder's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileReply {
    /// Session id.
    pub session: [u8; 16],
    /// Negentropy reply (empty when not needed).
    pub message: Bytes,
    /// Records the initiator asked for (those policy lets it have).
    pub records: Vec<Transfer>,
}

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Hello.
    Hello(Hello),
    /// Notify.
    Notify(Notify),
    /// Pull.
    Pull(Pull),
    /// Reconcile round.
    Reconcile(Reconcile),
}

impl Request {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Notify(_) => "notify",
            Self::Pull(_) => "pull",
            Self::Reconcile(_) => "reconcile",
        }
    }
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Hello back.
    Hello(Hello),
    /// Notify acknowledged.
    Ack,
    /// Changes-feed batch.
    Batch(Batch),
    /// Reconcile reply.
    Reconcile(ReconcileReply),
    /// Refused.
    Error {
        /// Machine-readable code.
        code: String,
        /// Message.
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}
