//! Audit events, signed checkpoints and the export format.
//!
//! An event is metadata only: record ids, agency codes, reason codes and hashes. The
//! origin's signed header of a sent record (field *digests*, never field values)
//! travels beside the events ([`SentHeader`]), bound to them by the record id. Nothing
//! in this module can carry a disclosure value: no variant has a free-text field
//! filled from record content.
//!
//! A leaf of the audit tree is the event's **canonical bytes**: its compact JSON
//! encoding, with fields in declaration order and no maps (so serde_json's output is
//! deterministic). A decoder re-encodes and compares, so any other byte string for the
//! same event is refused.

use serde::{Deserialize, Serialize};
use wlnode_crypto::keys::context;
use wlnode_crypto::model::{AgencyCode, RecordId};
use wlnode_crypto::{PublicKey, SecretKey};

use super::merkle::Hash;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One audit event: when (Unix ms, the logging node's clock) and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Unix milliseconds at the logging node.
    pub at: u64,
    /// What happened.
    pub kind: EventKind,
}

/// What an audit event records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// This node created (signed) a record of its own.
    Created {
        /// The record.
        record_id: RecordId,
    },
    /// A record from a peer passed every check and was stored (or was already held).
    Accepted {
        /// The record.
        record_id: RecordId,
        /// The sending agency.
        from: AgencyCode,
        /// Hops from the origin at this node.
        hops: u32,
        /// `stored`, `merged` (added disclosures) or `duplicate`.
        outcome: String,
    },
    /// A record from a peer was refused.
    Rejected {
        /// The record, when it decoded.
        record_id: Option<RecordId>,
        /// The sending agency.
        from: AgencyCode,
        /// Machine-readable reason code (never the record's content).
        reason: String,
    },
    /// A copy of a record went to a peer through the policy choke point.
    Sent {
        /// The record.
        record_id: RecordId,
        /// The receiving agency.
        to: AgencyCode,
        /// Hop count at the receiver.
        hops: u32,
        /// Tags of the fields the copy lacked (`identifiers`, `addresses`, ...), one per
        /// field: withheld by this node, or missing from the copy it held. (Events
        /// written before field scopes listed only the fields this node withheld.)
        withheld: Vec<String>,
        /// The origin's signed header bytes (hex): distribution, origin, digests. Only in
        /// events written before headers moved beside the event ([`SentHeader`]); such
        /// events still decode and verify.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        /// The origin's signature over the header (hex), likewise only in older events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// A data-sharing policy came into force.
    PolicyLoaded {
        /// SHA-256 of its canonical form (hex).
        hash: String,
    },
    /// A roster came into force.
    RosterLoaded {
        /// Its version.
        version: u64,
        /// Review s35-roster H1: the federation settings of that roster this node's
        /// build did not understand, so did not apply (at most
        /// [`wlnode_crypto::roster::MAX_SETTINGS_SHOWN`] names, the
        /// `*_required_since` cut-overs first). Written only when there is one, so
        /// every event of a node that understands all its roster's settings is
        /// byte-identical to one written before this field existed. The auditor never
        /// proves a breach of a cut-over a node logged as not understood. An auditor
        /// older than s35 refuses a log holding it (upgrade auditors first).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_understood: Vec<String>,
        /// How many more settings were not understood than `not_understood` names
        /// (written only when some were left out; the auditor then takes every
        /// cut-over as possibly not understood).
        #[serde(default, skip_serializing_if = "is_zero")]
        not_understood_more: u64,
    },
    /// Two valid records for one entry version.
    Equivocation {
        /// The origin.
        origin: AgencyCode,
        /// The entry version.
        version: u64,
        /// Every record id held for that version.
        records: Vec<RecordId>,
    },
    /// A peer was banned for invalid input.
    PeerBanned {
        /// The agency.
        agency: AgencyCode,
        /// Ban length in seconds.
        seconds: u64,
    },
    /// The operator blocked a peer: no connection to or from its nodes until unblocked.
    PeerBlocked {
        /// The agency.
        agency: AgencyCode,
    },
    /// The operator lifted a block.
    PeerUnblocked {
        /// The agency.
        agency: AgencyCode,
    },
    /// A user of this node did something through the API: who (a stable pseudonymous
    /// id; the name stays in the node's local user table and never travels), what (a
    /// fixed action name), and on what (a record id, an agency code, a source name or
    /// another user's id; never record content). Written in the same transaction as
    /// the records an entry write creates, just before their `created` events. Added
    /// with issue 22: an auditor older than this kind refuses a log that holds one, so
    /// upgrade auditors first.
    Acted {
        /// The user's pseudonymous id (32 hex digits).
        user: String,
        /// `entry_add`, `entry_amend`, `entry_withdraw`, `import`, `withdraw_missing`,
        /// `policy_reload`, `peer_block`, `peer_unblock`, `backup`, `source_run`,
        /// `user_add`, `user_disable`, `user_rotate`, `draft_create`, `draft_approve`,
        /// `draft_reject` or `screen_decide`.
        action: String,
        /// What it acted on, when one thing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Records the action wrote (imports), when more than one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        records: Option<u64>,
    },
    /// A peer asked for audit data without the auditor role and was refused.
    AuditRefused {
        /// The agency, or the PeerId when it is not in the roster.
        peer: String,
    },
    /// A scheduled source list (`[[source]]`) was refreshed and something was written,
    /// or its refresh failed. Metadata only: the source's configured name, the outcome,
    /// counts and an error class, never row content. Added with issue 24 item 3: logs
    /// written before hold no such event and read as before; an auditor older than
    /// this kind refuses a log that holds one, so upgrade auditors first.
    SourceRefresh {
        /// The source's name in `node.toml`.
        source: String,
        /// `updated` or `failed`.
        outcome: String,
        /// Entries added.
        added: u64,
        /// Entries amended.
        amended: u64,
        /// Entries withdrawn because they vanished from the list.
        withdrawn: u64,
        /// Rows that changed nothing.
        unchanged: u64,
        /// Rows refused.
        failed: u64,
        /// Why the refresh failed (`connect`, `truncated`, `sha256_mismatch`,
        /// `withdraw_guard`, ...), on failures only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_class: Option<String>,
        /// The URL or file the source was read from (absent in events written
        /// before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<String>,
        /// SHA-256 (hex) of the file fetched, when one was (not on a 304 or a
        /// failed fetch; absent in events written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// A sealed agency-to-agency message (or its receipt) moved (issue 21). Metadata
    /// only: the routing header's id, from, to, type and size, and the neighbour;
    /// never the sealed content, which this node cannot read unless it is the
    /// recipient. An auditor older than this kind refuses a log that holds one, so
    /// upgrade auditors first.
    Mail {
        /// `sent` (our own message created), `handed` (given to the neighbour `peer`,
        /// which took custody), `received` (taken from `peer`), `delivered` (opened
        /// here, the recipient), `receipt` (the recipient's signed receipt reached the
        /// sender), `expired` (given up at expiry), `rejected` (refused from `peer`,
        /// with `reason`; `bad_ack` when `peer`'s answer to our hand-over was not a
        /// valid signed answer), `hand_refused` (`peer` refused our hand-over with
        /// `reason`, its signed answer in `ack`), `offered` (`peer` offered us a
        /// relayed message, its signed offer in `ack`, whether or not we took it) or
        /// `hand_failed` (our hand-over of a relayed message to `peer` failed:
        /// `reason` `timeout` or `unsupported` (since s35, to the addressee only),
        /// and since s36 to any neighbour, also `stream`, `closed`, `dial`,
        /// `unsigned_refusal`, `bad_time` or `bad_ack`; s34 auditors ignore it, s35
        /// ones note `timeout`/`unsupported` to the addressee in a finding, s36 ones
        /// also read any of them to clear the relay of `mail_relay_delayed`; only
        /// when a relay's sole excuses of a copy are such events (since s37 any
        /// reason, and `rejected` `bad_ack`; `stream` only where the logs show the
        /// streams could not have been full) in two hours or more, and the
        /// addressee's log shows no offer, no restart and no unreadable item from
        /// the relay, is that finding the pair `relay->addressee`, never the
        /// addressee alone).
        action: String,
        /// The message id (32 hex digits).
        message_id: String,
        /// `message` or `receipt`.
        item: String,
        /// Sender agency.
        from: AgencyCode,
        /// Recipient agency.
        to: AgencyCode,
        /// Message type (`consult.request`, ...).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        kind: String,
        /// Sealed body size in bytes.
        size: u64,
        /// The neighbour it came from or went to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<AgencyCode>,
        /// Why it was refused (`forged`, `expired`, `oversized`, `replayed`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The message's expiry (Unix ms), when known: a relay that never handed on
        /// a message it took is reported once this has passed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
        /// On `handed` and `hand_refused`: the neighbour's signed answer (the
        /// `MailResponse` frame, hex: its `HandoverBody` and the ed25519 signature in
        /// the `wlnode/mail-handover/v1` context), which an auditor checks against
        /// the roster. Absent in events written before hand-overs were signed, which
        /// read and hash as before. On `offered`: the handing agency's signed offer
        /// (the `MailOffer`, hex: its `OfferBody` and the ed25519 signature in the
        /// `wlnode/mail-offer/v1` context).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ack: Option<String>,
        /// Since s38, on `handed` of a message: the copy's identity bytes (hex of
        /// `wlnode_crypto::mail::Envelope::identity`: the sender-signed routing header
        /// and the signature, metadata only), whose SHA-256 is the digest the
        /// neighbour's custody ack in `ack` signs. An auditor reads the expiry the
        /// neighbour took the copy with from it, not from the neighbour's own log
        /// (whose early expiry had left the copy unjudged). Absent in older events,
        /// which read and hash as before, and when the header's bytes are not its
        /// canonical encoding; an auditor before s38 reports an event carrying it
        /// `bad_event` and reads the log without that hand-over: upgrade the
        /// auditors first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy: Option<String>,
    },
    /// A step of an Art. 16 consultation as this node saw it (issue 21): the
    /// consultation id, the step, when, from whom to whom, and for answers and
    /// decisions only their class; never a reason or a transaction detail. The
    /// auditor replays these (`wlnode_consult::audit_trail`).
    Consultation {
        /// The step.
        step: wlnode_consult::TrailEvent,
    },
    /// The node started.
    NodeStarted {
        /// wlnode version; since s36 with the build's audit capabilities as semver
        /// build metadata ([`node_started_version`], e.g. `0.1.0+mail-failures`).
        version: String,
    },
    /// The node stopped cleanly.
    NodeStopped,
}

/// Why event bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not an event.
    #[error("not an audit event: {0}")]
    Decode(String),
    /// An event, but not in its canonical encoding.
    #[error("audit event bytes are not canonical")]
    NonCanonical,
}

impl EventKind {
    /// The `roster_loaded` event of `roster`, naming the settings this build does
    /// not understand (review s35-roster H1).
    pub fn roster_loaded(roster: &wlnode_crypto::roster::Roster) -> Self {
        let (not_understood, not_understood_more) = roster.settings_not_understood_shown();
        Self::RosterLoaded {
            version: roster.version(),
            not_understood,
            not_understood_more,
        }
    }
}

/// The capability a build names in its `node_started` version since s36
/// (s36-delay): it audits every failed hand-over of a relayed message to any
/// neighbour (`hand_failed`, every reason). The auditor judges `mail_relay_delayed`
/// only within a run of such a build: an older relay left most failures unlogged,
/// and its silence clears nobody. To an older auditor the version is a free string.
pub const MAIL_FAILURES_LOGGED: &str = "mail-failures";

/// The `node_started` version of a build of package version `pkg`: `pkg`, with
/// this build's audit capabilities as semver build metadata (appended as one more
/// dot-separated identifier when `pkg` carries build metadata of its own).
pub fn node_started_version(pkg: &str) -> String {
    let sep = if pkg.contains('+') { '.' } else { '+' };
    format!("{pkg}{sep}{MAIL_FAILURES_LOGGED}")
}

/// Whether a `node_started` version names `capability` in its build metadata
/// (the identifiers after the first `+`, separated by `.` or by a further `+`: a
/// package version with metadata of its own must not hide it, review s36-delay L1).
pub fn version_has(version: &str, capability: &str) -> bool {
    version
        .split_once('+')
        .is_some_and(|(_, meta)| meta.split(['.', '+']).any(|c| c == capability))
}

impl Event {
    /// An event at `at`.
    pub fn new(at: u64, kind: EventKind) -> Self {
        Self { at, kind }
    }

    /// The canonical bytes (the tree leaf).
    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes canonical bytes, refusing any other encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        let e: Self =
            serde_json::from_slice(bytes).map_err(|e| EventError::Decode(e.to_string()))?;
        if e.encode() != bytes {
            return Err(EventError::NonCanonical);
        }
        Ok(e)
    }

    /// The event type name (`sent`, `accepted`, ...).
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            EventKind::Created { .. } => "created",
            EventKind::Accepted { .. } => "accepted",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Sent { .. } => "sent",
            EventKind::PolicyLoaded { .. } => "policy_loaded",
            EventKind::RosterLoaded { .. } => "roster_loaded",
            EventKind::Equivocation { .. } => "equivocation",
            EventKind::PeerBanned { .. } => "peer_banned",
            EventKind::PeerBlocked { .. } => "peer_blocked",
            EventKind::PeerUnblocked { .. } => "peer_unblocked",
            EventKind::Acted { .. } => "acted",
            EventKind::AuditRefused { .. } => "audit_refused",
            EventKind::SourceRefresh { .. } => "source_refresh",
            EventKind::Mail { .. } => "mail",
            EventKind::Consultation { .. } => "consultation",
            EventKind::NodeStarted { .. } => "node_started",
            EventKind::NodeStopped => "node_stopped",
        }
    }
}

/// A tree head a node vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The node's agency.
    pub agency: AgencyCode,
    /// The node's PeerId (its identity key signs).
    pub peer_id: String,
    /// Tree size.
    pub size: u64,
    /// Root hash (hex).
    pub root: String,
    /// Unix milliseconds at signing.
    pub timestamp: u64,
}

impl Checkpoint {
    /// The signed message: one field per line, so no two checkpoints share bytes.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "wlnode checkpoint\n{}\n{}\n{}\n{}\n{}\n",
            self.agency, self.peer_id, self.size, self.root, self.timestamp
        )
        .into_bytes()
    }

    /// The root as bytes, if it is 64 hex characters.
    pub fn root_hash(&self) -> Option<Hash> {
        let mut h = [0u8; 32];
        hex::decode_to_slice(&self.root, &mut h).ok()?;
        Some(h)
    }

    /// Signs with the node identity key (context `wlnode/checkpoint/v1\0`).
    pub fn sign(self, key: &SecretKey) -> SignedCheckpoint {
        let sig = key.sign(context::CHECKPOINT, &self.message());
        SignedCheckpoint {
            checkpoint: self,
            signature: hex::encode(sig.0),
        }
    }
}

/// A checkpoint with the node's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// ed25519 signature (hex) by the key of `checkpoint.peer_id`.
    pub signature: String,
}

/// Why a checkpoint signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The PeerId is not an ed25519 identity.
    #[error("checkpoint PeerId {0}: {1}")]
    PeerId(String, String),
    /// The signature is malformed or does not verify.
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

impl SignedCheckpoint {
    /// Verifies the signature against the key inside `checkpoint.peer_id`. Whether that
    /// PeerId belongs to the agency is the roster's question (the caller's).
    pub fn verify(&self) -> Result<PublicKey, CheckpointError> {
        let c = &self.checkpoint;
        let key = wlnode_crypto::keys::parse_peer_id(&c.peer_id)
            .map_err(|e| CheckpointError::PeerId(c.peer_id.clone(), e.to_string()))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|_| CheckpointError::BadSignature)?;
        key.verify(
            context::CHECKPOINT,
            &c.message(),
            &wlnode_crypto::keys::Signature(sig),
        )
        .map_err(|_| CheckpointError::BadSignature)?;
        Ok(key)
    }
}

/// An auditor's witness signature over one of a node's checkpoints.
///
/// Cosignatures made since trust hardening are *dated*: the auditor signs, in context
/// `wlnode/cosign/v2\0`, the checkpoint's message followed by `witnessed_at` (its own
/// clock, Unix ms) and a newline. That date is what lets a record signed by a key revoked
/// later be proven older than the revocation ([`crate::inclusion`]): the auditor, a
/// roster member, vouches that the log held it by then. Older cosignatures (context
/// `wlnode/cosign/v1\0`, no date) still verify; they prove nothing about time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosignature {
    /// The node's signed checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// The auditor's PeerId (its node identity key signs).
    pub witness: String,
    /// ed25519 signature (hex): see the type's documentation for what it covers.
    pub signature: String,
    /// When the auditor witnessed the checkpoint (Unix ms, the auditor's clock); absent
    /// in undated (v1) cosignatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witnessed_at: Option<u64>,
}

impl Cosignature {
    /// What the auditor signs over `checkpoint`, and in which context: dated when
    /// `witnessed_at` is given.
    pub fn message(checkpoint: &Checkpoint, witnessed_at: Option<u64>) -> (&'static [u8], Vec<u8>) {
        let mut m = checkpoint.message();
        match witnessed_at {
            Some(at) => {
                m.extend_from_slice(format!("{at}\n").as_bytes());
                (context::COSIGN_DATED, m)
            }
            None => (context::COSIGN, m),
        }
    }

    /// The auditor signs `checkpoint` with its node identity key, witnessed at
    /// `witnessed_at` (its clock, Unix ms).
    pub fn sign(checkpoint: SignedCheckpoint, witnessed_at: u64, key: &SecretKey) -> Self {
        let (ctx, msg) = Self::message(&checkpoint.checkpoint, Some(witnessed_at));
        let sig = key.sign(ctx, &msg);
        Self {
            checkpoint,
            witness: key.public_key().peer_id(),
            signature: hex::encode(sig.0),
            witnessed_at: Some(witnessed_at),
        }
    }

    /// Verifies the witness signature against the key inside `witness`.
    pub fn verify(&self) -> Result<PublicKey, CheckpointError> {
        let key = wlnode_crypto::keys::parse_peer_id(&self.witness)
            .map_err(|e| CheckpointError::PeerId(self.witness.clone(), e.to_string()))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut sig)
            .map_err(|_| CheckpointError::BadSignature)?;
        let (ctx, msg) = Self::message(&self.checkpoint.checkpoint, self.witnessed_at);
        key.verify(ctx, &msg, &wlnode_crypto::keys::Signature(sig))
            .map_err(|_| CheckpointError::BadSignature)?;
        Ok(key)
    }
}

/// The origin's signed header and signature of a record that `sent` events name,
/// carried beside the events (in exports and `GetEvents` replies) instead of in every
/// leaf. The leaf still commits to it: a record id is the SHA-256 of its signed header
/// bytes, and the verifier checks that hash, and the origin's signature, before it
/// reads the distribution. Keeping ~1.4 KB of hex out of each `sent` leaf is most of
/// what auditing costs replication in hashing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentHeader {
    /// The record (untrusted here: the verifier recomputes it from `header`).
    pub record_id: RecordId,
    /// Signed header bytes (hex).
    pub header: String,
    /// The origin's signature over them (hex).
    pub signature: String,
}

/// One exported log: everything an auditor needs to recompute the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedLog {
    /// Format marker, `wlnode-audit-export/v1`.
    pub format: String,
    /// The node's agency.
    pub agency: AgencyCode,
    /// The node's PeerId.
    pub peer_id: String,
    /// Every event's canonical bytes as a UTF-8 string, index order from 0.
    pub events: Vec<String>,
    /// Every signed checkpoint, by size.
    pub checkpoints: Vec<SignedCheckpoint>,
    /// The signed header of every record that a `sent` event without an inline header
    /// names, once per record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<SentHeader>,
}

/// The export format marker. v2 added `headers` (the signed headers of sent records,
/// beside the events); a v1 export (headers inline in its `sent` events) still reads.
pub const EXPORT_FORMAT: &str = "wlnode-audit-export/v2";

/// Export formats this wlnode reads.
pub const READABLE_EXPORT_FORMATS: &[&str] = &["wlnode-audit-export/v1", EXPORT_FORMAT];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip_and_refusal() {
        let e = Event::new(
            5,
            EventKind::Rejected {
                record_id: None,
                from: AgencyCode::new("AA-X").unwrap(),
                reason: "bad_signature".into(),
            },
        );
        let b = e.encode();
        assert_eq!(Event::decode(&b).unwrap(), e);
        let spaced = String::from_utf8(b.clone()).unwrap().replace(':', ": ");
        assert_eq!(
            Event::decode(spaced.as_bytes()),
            Err(EventError::NonCanonical)
        );
        assert!(Event::decode(b"{}").is_err());
        let stopped = Event::new(1, EventKind::NodeStopped).encode();
        assert_eq!(stopped, br#"{"at":1,"kind":{"type":"node_stopped"}}"#);
    }

    #[test]
    fn acted_events_are_canonical_and_carry_no_name() {
        let e = Event::new(
            9,
            EventKind::Acted {
                user: "00112233445566778899aabbccddeeff".into(),
                action: "entry_add".into(),
                target: Some("ab".repeat(32)),
                records: None,
            },
        );
        let b = e.encode();
        assert_eq!(Event::decode(&b).unwrap(), e);
        assert_eq!(e.type_name(), "acted");
        assert!(!String::from_utf8_lossy(&b).contains("records"));
    }

    #[test]
    fn source_refresh_events_are_canonical_and_older_events_read_unchanged() {
        let failed = Event::new(
            7,
            EventKind::SourceRefresh {
                source: "un-sc".into(),
                outcome: "failed".into(),
                added: 0,
                amended: 2,
                withdrawn: 0,
                unchanged: 5,
                failed: 1,
                error_class: Some("withdraw_guard".into()),
                origin: None,
                sha256: None,
            },
        );
        let b = failed.encode();
        assert_eq!(
            b,
            br#"{"at":7,"kind":{"type":"source_refresh","source":"un-sc","outcome":"failed","added":0,"amended":2,"withdrawn":0,"unchanged":5,"failed":1,"error_class":"withdraw_guard"}}"#
        );
        assert_eq!(Event::decode(&b).unwrap(), failed);
        assert_eq!(failed.type_name(), "source_refresh");
        let updated = Event::new(
            8,
            EventKind::SourceRefresh {
                source: "own".into(),
                outcome: "updated".into(),
                added: 1,
                amended: 0,
                withdrawn: 0,
                unchanged: 0,
                failed: 0,
                error_class: None,
                origin: Some("https://x.example/own.csv".into()),
                sha256: Some("ab".repeat(32)),
            },
        );
        let b = updated.encode();
        assert!(!String::from_utf8_lossy(&b).contains("error_class"));
        assert_eq!(
            b,
            format!(
                r#"{{"at":8,"kind":{{"type":"source_refresh","source":"own","outcome":"updated","added":1,"amended":0,"withdrawn":0,"unchanged":0,"failed":0,"origin":"https://x.example/own.csv","sha256":"{}"}}}}"#,
                "ab".repeat(32)
            )
            .into_bytes()
        );
        assert_eq!(Event::decode(&b).unwrap(), updated);
        // Bytes written by an older wlnode decode to the same events.
        let old = br#"{"at":1,"kind":{"type":"peer_blocked","agency":"BB-CUSTOMS"}}"#;
        assert_eq!(Event::decode(old).unwrap().encode(), old.to_vec());
    }

    /// Review s35-roster H1: `roster_loaded` names the settings the build did not
    /// understand only when there are some, so an event of a node that understands
    /// them all is the same bytes as before the field existed (and an s34 log reads
    /// and re-encodes unchanged); with them it round-trips canonically.
    #[test]
    fn roster_loaded_names_settings_not_understood_only_when_there_are_some() {
        let old = br#"{"at":3,"kind":{"type":"roster_loaded","version":7}}"#;
        let e = Event::decode(old).unwrap();
        assert_eq!(e.encode(), old.to_vec());
        assert_eq!(
            e,
            Event::new(
                3,
                EventKind::RosterLoaded {
                    version: 7,
                    not_understood: Vec::new(),
                    not_understood_more: 0,
                }
            )
        );
        let named = Event::new(
            3,
            EventKind::RosterLoaded {
                version: 8,
                not_understood: vec!["foo_required_since".into()],
                not_understood_more: 2,
            },
        );
        let b = named.encode();
        assert_eq!(
            b,
            br#"{"at":3,"kind":{"type":"roster_loaded","version":8,"not_understood":["foo_required_since"],"not_understood_more":2}}"#
        );
        assert_eq!(Event::decode(&b).unwrap(), named);
        // Written from a roster: cut-overs first, bounded.
        let authority = SecretKey::generate().unwrap();
        let mut text = format!(
            "federation = \"t\"\nversion = 2\nissued_at = 2026-01-01T00:00:00Z\n\
             [[authorities]]\nkey = \"{}\"\n[federation_settings]\n",
            authority.public_key()
        );
        for i in 0..40 {
            text.push_str(&format!("aaa_{i:02} = 1\n"));
        }
        text.push_str("zzz_required_since = 2026-02-01T00:00:00Z\n");
        let roster = wlnode_crypto::roster::Roster::parse(text.as_bytes()).unwrap();
        let EventKind::RosterLoaded {
            version,
            not_understood,
            not_understood_more,
        } = EventKind::roster_loaded(&roster)
        else {
            panic!("not a roster_loaded");
        };
        assert_eq!(version, 2);
        assert_eq!(
            not_understood.len(),
            wlnode_crypto::roster::MAX_SETTINGS_SHOWN
        );
        assert_eq!(not_understood[0], "zzz_required_since");
        assert_eq!(not_understood_more, 41 - 32);
    }

    #[test]
    fn checkpoint_signs_and_verifies() {
        let k = SecretKey::generate().unwrap();
        let c = Checkpoint {
            agency: AgencyCode::new("AA-X").unwrap(),
            peer_id: k.public_key().peer_id(),
            size: 3,
            root: hex::encode([1u8; 32]),
            timestamp: 9,
        };
        let s = c.sign(&k);
        assert_eq!(s.verify().unwrap(), k.public_key());
        let mut bad = s.clone();
        bad.checkpoint.size = 4;
        assert_eq!(bad.verify(), Err(CheckpointError::BadSignature));
    }

    /// s38: a `mail` event carries `copy` only when set, so an event without it is
    /// the same bytes as before the field existed (an s37 log reads and re-encodes
    /// unchanged), and one with it round-trips canonically, the field last.
    #[test]
    fn mail_events_carry_the_copy_only_when_set() {
        let old = br#"{"at":5,"kind":{"type":"mail","action":"handed","message_id":"ab","item":"message","from":"AA-X","to":"BB-X","size":10,"peer":"CC-X","expires_at":9,"ack":"00"}}"#;
        let e = Event::decode(old).unwrap();
        assert_eq!(e.encode(), old.to_vec());
        let EventKind::Mail { copy, .. } = &e.kind else {
            panic!("not a mail event");
        };
        assert_eq!(copy, &None);
        let mut with = e.clone();
        if let EventKind::Mail { copy, .. } = &mut with.kind {
            *copy = Some("0a0b".into());
        }
        let b = with.encode();
        assert!(b.ends_with(br#""ack":"00","copy":"0a0b"}}"#), "{b:?}");
        assert_eq!(Event::decode(&b).unwrap(), with);
    }
}
