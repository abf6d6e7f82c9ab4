//! Sealed agency-to-agency mail in the running node (issue 21): the [`Mail`] handle the
//! API and the consultations use to send a message and read the inbox and outbox, and
//! the mail table's layout.
//!
//! The routing state machine is `wlnode_sync::mail::Mailer`; the replication service
//! owns it (it owns the network and the peers' strikes) and carries out what it says
//! (`replication/mail.rs`). This module seals (the crypto crate's `Envelope::seal`),
//! hands the envelope to that service and waits until it is durable in the outbox, and
//! reads back what the service wrote.
//!
//! The mail table (`LocalTable::Mail`) holds, by key prefix:
//! - `q`, `r`, `s`: the mailer's held items (sealed bytes only), their places in the
//!   custody order, and seen ids;
//! - `o` + id: our own messages and their delivery state ([`OutboxItem`]);
//! - `i` + id: messages delivered to us, opened ([`InboxItem`]): this agency's own
//!   mail, the only clear text in the table. A relay never writes one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use wlnode_crypto::SecretKey;
use wlnode_crypto::mail::{Draft, Envelope, MAX_EXPIRY_MS, MailError};
use wlnode_crypto::model::{AgencyCode, MessageId};
use wlnode_crypto::seal::{EncryptionKeyring, EncryptionPublicKey};
use wlnode_crypto::time::Timestamp;
use wlnode_store::tables::LocalTable;
use wlnode_store::{StoreError, StoreHandle};

use crate::trust::TrustCell;

/// The encryption keys this node opens sealed messages with (current, previous and
/// next during a rotation), swapped whole when a reload brings a new roster or new
/// key files: readers take a snapshot and never hold the lock.
#[derive(Clone, Debug, Default)]
pub struct EncryptionKeys(Arc<std::sync::RwLock<Arc<EncryptionKeyring>>>);

impl EncryptionKeys {
    /// A cell holding `ring`.
    pub fn new(ring: EncryptionKeyring) -> Self {
        Self(Arc::new(std::sync::RwLock::new(Arc::new(ring))))
    }

    /// The keys in force.
    pub fn get(&self) -> Arc<EncryptionKeyring> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts `ring` in force.
    pub(crate) fn replace(&self, ring: EncryptionKeyring) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(ring),
            Err(p) => *p.into_inner() = Arc::new(ring),
        }
    }

    /// The public keys held.
    pub fn public_keys(&self) -> Vec<EncryptionPublicKey> {
        self.get().public_keys().copied().collect()
    }
}

/// Key prefix of our own messages' states.
pub const OUTBOX: u8 = b'o';
/// Key prefix of messages delivered to us.
pub const INBOX: u8 = b'i';
/// Most inbox messages read at once (each may be up to 256 KiB): callers page.
pub const INBOX_PAGE: usize = 100;

/// Why a message could not be sent or read.
#[derive(Debug, thiserror::Error)]
pub enum MailSendError {
    /// Sealing refused it (size, expiry, type).
    #[error("{0}")]
    Mail(#[from] MailError),
    /// The recipient has no encryption key in the roster, or is not a member.
    #[error("{0}")]
    Recipient(String),
    /// The mail service is not running (the node is stopping).
    #[error("the mail service is not running")]
    Stopped,
    /// The mailer holds as much as it may.
    #[error("the outbox is full")]
    Full,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not decode.
    #[error("mail table value {key} is corrupt: {reason}")]
    Corrupt {
        /// The key (hex).
        key: String,
        /// Why.
        reason: String,
    },
}

/// One of our messages and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Message id (hex).
    pub message_id: MessageId,
    /// Recipient.
    pub to: AgencyCode,
    /// Message type.
    pub kind: String,
    /// Sealed size in bytes.
    pub size: u64,
    /// Created (Unix ms).
    pub created_at: u64,
    /// Expires (Unix ms).
    pub expires_at: u64,
    /// `pending`, `delivered` or `expired`.
    pub state: String,
    /// When the recipient received it (from its signed receipt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<u64>,
}

/// A message delivered to us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Message id.
    pub message_id: MessageId,
    /// Sender.
    pub from: AgencyCode,
    /// Message type.
    pub kind: String,
    /// Sent (Unix ms, the sender's clock).
    pub created_at: u64,
    /// Received here (Unix ms).
    pub received_at: u64,
    /// The opened body (UTF-8; JSON for every type wlnode sends).
    pub body: String,
}

/// What the mail service tells the rest of the node.
#[derive(Clone, Debug)]
pub enum MailNotice {
    /// A message reached us.
    Delivered(InboxItem),
    /// One of ours was received (its signed receipt came back).
    Receipt {
        /// The message.
        message_id: MessageId,
        /// When the recipient received it.
        at: u64,
    },
    /// One of ours expired without a receipt.
    Expired {
        /// The message.
        message_id: MessageId,
    },
}

/// A request to the mail service.
pub(crate) enum MailCmd {
    /// Queue our sealed message; answer once it is durable.
    Send {
        env: Envelope,
        done: oneshot::Sender<Result<(), MailSendError>>,
    },
}

impl std::fmt::Debug for MailCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Send { env, .. } => f.debug_struct("Send").field("env", env).finish(),
        }
    }
}

/// The node's mail: send, inbox, outbox. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Mail {
    agency: AgencyCode,
    key: Arc<SecretKey>,
    trust: TrustCell,
    store: StoreHandle,
    tx: mpsc::UnboundedSender<MailCmd>,
    notices: broadcast::Sender<MailNotice>,
}

/// The service's end of [`Mail`].
pub(crate) struct MailPort {
    pub(crate) rx: mpsc::UnboundedReceiver<MailCmd>,
    pub(crate) notices: broadcast::Sender<MailNotice>,
}

impl std::fmt::Debug for MailPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailPort")
    }
}

/// `prefix || id`.
pub(crate) fn id_key(prefix: u8, id: &MessageId) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(id.as_bytes());
    k
}

/// `INBOX || !received_at || id || sender`: newest first in key order, and one entry
/// per (sender, id), so a member cannot overwrite another's message by reusing its id.
pub(crate) fn inbox_key(received_at: u64, from: &AgencyCode, id: &MessageId) -> Vec<u8> {
    let mut k = vec![INBOX];
    k.extend_from_slice(&(!received_at).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k.extend_from_slice(from.as_str().as_bytes());
    k
}

fn decode<T: serde::de::DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T, MailSendError> {
    serde_json::from_slice(v).map_err(|e| MailSendError::Corrupt {
        key: hex::encode(k),
        reason: e.to_string(),
    })
}

impl Mail {
    /// A handle and the service's end.
    pub(crate) fn new(
        agency: AgencyCode,
        key: Arc<SecretKey>,
        trust: TrustCell,
        store: StoreHandle,
    ) -> (Self, MailPort) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (notices, _) = broadcast::channel(1024);
        (
            Self {
                agency,
                key,
                trust,
                store,
                tx,
                notices: notices.clone(),
            },
            MailPort { rx, notices },
        )
    }

    /// This node's agency.
    pub fn agency(&self) -> &AgencyCode {
        &self.agency
    }

    /// Notices of deliveries, receipts and expiries from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MailNotice> {
        self.notices.subscribe()
    }

    /// Seals `body` to `to`'s current encryption key, signs it, and queues it; returns
    /// once the message is durable in the outbox.
    pub async fn send(
        &self,
        to: &AgencyCode,
        kind: &str,
        body: &[u8],
        ttl_ms: u64,
    ) -> Result<MessageId, MailSendError> {
        let id = MessageId::random().map_err(|e| MailSendError::Recipient(e.to_string()))?;
        self.send_as(id, to, kind, body, ttl_ms).await?;
        Ok(id)
    }

    /// Whether a message to `to` could be sealed now: the roster gives it an
    /// encryption key ([`MailSendError::Recipient`] if not). For callers that save an
    /// intent before sending it (flags), so they refuse before saving.
    pub fn check_recipient(&self, to: &AgencyCode) -> Result<(), MailSendError> {
        self.trust
            .roster()
            .encryption_key(to, Timestamp::now())
            .map(|_| ())
            .map_err(|e| MailSendError::Recipient(e.to_string()))
    }

    /// As [`Self::send`], under an id the caller chose (and saved) beforehand.
    /// Idempotent by id: when the outbox already holds `id`, nothing is sent again, so
    /// a caller that saved its intent before a crash can send it again after restart.
    pub async fn send_as(
        &self,
        id: MessageId,
        to: &AgencyCode,
        kind: &str,
        body: &[u8],
        ttl_ms: u64,
    ) -> Result<(), MailSendError> {
        if self.outbox_item(id).await?.is_some() {
            return Ok(());
        }
        let now = Timestamp::now();
        let roster = self.trust.roster();
        let key = roster
            .encryption_key(to, now)
            .map_err(|e| MailSendError::Recipient(e.to_string()))?;
        let env = Envelope::seal(
            &Draft {
                id,
                from: self.agency.clone(),
                to: to.clone(),
                kind,
                created_at: now,
                expires_at: Timestamp(now.as_millis() + ttl_ms.clamp(1, MAX_EXPIRY_MS)),
                plaintext: body,
            },
            &self.key,
            &key,
        )?;
        let (done, rx) = oneshot::channel();
        self.tx
            .send(MailCmd::Send { env, done })
            .map_err(|_| MailSendError::Stopped)?;
        rx.await.map_err(|_| MailSendError::Stopped)??;
        Ok(())
    }

    /// One of our messages.
    pub async fn outbox_item(&self, id: MessageId) -> Result<Option<OutboxItem>, MailSendError> {
        let k = id_key(OUTBOX, &id);
        let v = self
            .store
            .call(move |s| s.table_get(LocalTable::Mail, &k))
            .await?;
        v.map(|v| decode(&id_key(OUTBOX, &id), &v)).transpose()
    }

    async fn range<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        prefix: u8,
        limit: usize,
    ) -> Result<Vec<T>, MailSendError> {
        let pairs = self
            .store
            .call(move |s| s.table_range(LocalTable::Mail, &[prefix], &[prefix + 1], limit))
            .await?;
        pairs.iter().map(|(k, v)| decode(k, v)).collect()
    }

    /// Our messages (at most `limit`).
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxItem>, MailSendError> {
        self.range(OUTBOX, limit).await
    }

    /// The newest messages delivered to us (at most `limit`, and at most
    /// [`INBOX_PAGE`]), newest first.
    pub async fn inbox(&self, limit: usize) -> Result<Vec<InboxItem>, MailSendError> {
        Ok(self.inbox_page(None, limit).await?.0)
    }

    /// One page of the inbox, newest first: at most `limit` (and [`INBOX_PAGE`])
    /// messages after `cursor` (`None`: from the newest), and the cursor of the next
    /// page if there may be one.
    pub async fn inbox_page(
        &self,
        cursor: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<(Vec<InboxItem>, Option<Vec<u8>>), MailSendError> {
        let limit = limit.clamp(1, INBOX_PAGE);
        let from = match cursor {
            Some(mut c) if c.first() == Some(&INBOX) => {
                c.push(0);
                c
            }
            _ => vec![INBOX],
        };
        let pairs = self
            .store
            .call(move |s| s.table_range(LocalTable::Mail, &from, &[INBOX + 1], limit))
            .await?;
        let next = (pairs.len() == limit)
            .then(|| pairs.last().map(|(k, _)| k.clone()))
            .flatten();
        let items = pairs
            .iter()
            .map(|(k, v)| decode(k, v))
            .collect::<Result<_, _>>()?;
        Ok((items, next))
    }
}
