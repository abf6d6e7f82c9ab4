//! The replication protocol's messages as validated domain types. Encoding and
//! decoding live in [`crate::wire`]; records inside transfers stay encoded bytes until
//! the receiver checks each one on its own. Messages that carry records are generic
//! over the record's type: [`Transfer`] in what we send, [`Received`] in what we
//! decode, so a received record can never be sent on unchecked.

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

/// A record on its way out. It can only be made from a copy that passed the policy
/// choke point ([`Prepared`]), and only outbound messages (which is what
/// [`crate::wire`] encodes) carry one: a record a peer sent us is a [`Received`], a
/// different type, so it cannot be passed on without going through the store and the
/// policy again.
///
/// ```compile_fail
/// // Outside this crate a transfer cannot be filled with arbitrary bytes:
/// let forged = wlnode_sync::msg::Transfer {
///     record: Default::default(),
///     hops: 1,
///     inclusion: None,
/// };
/// ```
///
/// ```compile_fail
/// // Nor can a record received from a peer be sent on as it is:
/// fn forward(r: wlnode_sync::msg::Received) -> wlnode_sync::msg::Transfer {
///     wlnode_sync::msg::Transfer::from(r)
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Encoded record.
    pub(crate) record: Bytes,
    /// Hops from the origin at the receiver.
    pub(crate) hops: u32,
    /// A revoked key's record's inclusion proof, from the choke point.
    pub(crate) inclusion: Option<Bytes>,
}

impl Transfer {
    /// The encoded copy.
    pub fn record(&self) -> &Bytes {
        &self.record
    }

    /// Hops from the origin at the receiver.
    pub fn hops(&self) -> u32 {
        self.hops
    }
}

impl From<Prepared> for Transfer {
    fn from(p: Prepared) -> Self {
        let (record, hops, inclusion) = p.into_wire();
        Self {
            record,
            hops,
            inclusion,
        }
    }
}

/// A record as a peer sent it: unverified bytes and the hop count the sender claims.
/// Only decoding a frame ([`crate::wire`]) makes one; the receive check
/// ([`crate::ingest::check`]) takes it from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Encoded record.
    pub(crate) record: Bytes,
    /// Hops from the origin at the receiver, as the sender claims.
    pub(crate) hops: u32,
    /// The inclusion proof sent with it (unchecked), for a revoked key's record.
    pub(crate) inclusion: Option<Bytes>,
}

impl Received {
    /// The encoded record (unverified until checked).
    pub fn record(&self) -> &Bytes {
        &self.record
    }

    /// Hops from the origin at the receiver, as the sender claims.
    pub fn hops(&self) -> u32 {
        self.hops
    }
}

/// A changes-feed batch; `T` is [`Transfer`] in the batches we send and
/// [`Received`] in those we decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<T = Transfer> {
    /// Server's epoch (a different one means: reset your cursor).
    pub log_epoch: [u8; 16],
    /// The records the server may send, in log order.
    pub records: Vec<T>,
    /// Cursor to continue from.
    pub next_seq: u64,
    /// Server's log head when the batch was cut.
    pub head_seq: u64,
    /// False when the server stopped early (limit or bytes).
    pub complete: bool,
}

/// One initiator round of reconciliation (`T` as for [`Batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconcile<T = Transfer> {
    /// Session id chosen by the initiator.
    pub session: [u8; 16],
    /// Negentropy message (empty once the set difference is known).
    pub message: Bytes,
    /// Records the responder lacks.
    pub have: Vec<T>,
    /// Records the initiator wants.
    pub need: Vec<RecordId>,
}

/// The responder's answer (`T` as for [`Batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileReply<T = Transfer> {
    /// Session id.
    pub session: [u8; 16],
    /// Negentropy reply (empty when not needed).
    pub message: Bytes,
    /// Records the initiator asked for (those policy lets it have).
    pub records: Vec<T>,
}

/// A sync request (`T` as for [`Batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<T = Transfer> {
    /// Hello.
    Hello(Hello),
    /// Notify.
    Notify(Notify),
    /// Pull.
    Pull(Pull),
    /// Reconcile round.
    Reconcile(Reconcile<T>),
}

impl<T> Request<T> {
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

/// A sync response (`T` as for [`Batch`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<T = Transfer> {
    /// Hello back.
    Hello(Hello),
    /// Notify acknowledged.
    Ack,
    /// Changes-feed batch.
    Batch(Batch<T>),
    /// Reconcile reply.
    Reconcile(ReconcileReply<T>),
    /// Refused.
    Error {
        /// Machine-readable code.
        code: String,
        /// Message.
        message: String,
    },
}

impl<T> Response<T> {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Self::Error {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}
