//! The federation roster: who is in the federation, with which keys and nodes.
//!
//! The roster authority (the regional body) writes a TOML file and signs its exact
//! bytes; the signature travels in a detached `roster.toml.sig`. A node accepts a roster
//! only if the signature verifies, the signing key is one of the roster's own
//! authorities *and* one the node already trusts (configured, or pinned from the roster
//! it accepted before), and the version is not older than the one it accepted before.
//!
//! ```toml
//! federation = "example"
//! version = 3
//! issued_at = 2026-11-21T10:00:00Z
//! sensitivities = ["public", "restricted", "confidential"]   # optional, low to high
//!
//! [[authorities]]
//! key = "ed25519:…"
//! name = "Regional export-control body"
//!
//! [[members]]
//! agency = "DE-BAFA"
//! name = "Federal Office for Economic Affairs and Export Control"
//! country = "DE"
//! role = "member"                   # or "auditor"
//! groups = ["eu", "wassenaar"]
//! node_ids = ["12D3KooW…"]
//! keys = [{ key = "ed25519:…", valid_from = 2026-01-01T00:00:00Z, valid_until = 2027-01-01T00:00:00Z }]
//! revoked = [{ key = "ed25519:…", revoked_at = 2026-06-01T00:00:00Z, reason = "compromised",
//!             keep = ["<record id hex>", …] }]
//! # sealed messages (issue 21): optional; a member without one cannot receive them
//! encryption_keys = [{ key = "x25519:…", valid_from = 2026-01-01T00:00:00Z }]
//!
//! [federation_settings]               # optional; the one level a later build may extend
//! consultation_silence = "objection"  # or "no_objection" (the default)
//! consultation_min_deadline_secs = 86400  # shortest consultation deadline (default 1 day)
//! mail_acks_required_since = 2026-12-10T00:00:00Z  # optional: every member signs hand-overs since
//! consult_receipts_required_since = 2026-12-10T00:00:00Z  # optional: consultation steps need receipts since
//! consult_refusal_terms_required_since = 2026-12-20T00:00:00Z  # optional: deadline_too_short signs its terms
//! consult_keyed_by_requester_since = 2026-12-20T00:00:00Z  # optional: one consultation per requester and id since
//! ```
//!
//! Forward compatibility (issue 21, s35): a node keeps a `federation_settings` entry
//! it does not understand (signed like the rest, ignored, listed by `wlnode roster
//! show`/`verify` and warned about when loaded), so a setting added by a later build
//! does not cut it off the revocations of later rosters. Every other level refuses an
//! unknown field; see [`RosterDoc`]. The authority's tools refuse an unknown setting
//! ([`Roster::refuse_unknown_settings`]). Only a plain name (`[a-z0-9_]+`, at most
//! [`MAX_SETTING_NAME_CHARS`]) is kept; any other refuses the roster on every path
//! ([`RosterError::MalformedFederationSetting`], review s35-roster L3/L6). A new
//! setting goes into [`FederationSettings`], [`KNOWN_FEDERATION_SETTINGS`] and, for a
//! `*_required_since` cut-over, [`FederationSettings::cutovers`] (a test ties the
//! three together), and an auditor proof keyed on it checks that the node understood
//! it (`wlnode_audit`, review s35-roster H1).
//!
//! Encryption keys rotate like signing keys: a new roster version adds the new key and
//! ends the old one's window; senders seal to the newest key valid at the time of
//! sending, and a recipient opens with whichever of its keys the message names.
//!
//! A revoked key's records are suspect whatever their `issued_at` says, since whoever
//! holds the key chooses it. Nodes keep the ones they held before they learned of the
//! revocation (demoted: any record of the agency signed by a valid key supersedes them),
//! refuse the ones they did not (`revoked_key_backdated`), and accept the ones the
//! authority lists under `keep`, known good, as if the key were still valid.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::keys::{PublicKey, SecretKey, Signature, context, parse_peer_id};
use crate::model::{AgencyCode, CountryCode, GroupName, Sensitivity};
use crate::seal::EncryptionPublicKey;
use crate::time::Timestamp;

/// Largest roster file accepted.
pub const MAX_ROSTER_BYTES: usize = 4 * 1024 * 1024;

/// Why a roster was refused, or why a signer is not valid under it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The TOML does not parse or does not match the schema.
    #[error("roster line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The roster parses but breaks a rule.
    #[error("roster is invalid: {0}")]
    Invalid(String),
    /// The signature file is malformed.
    #[error("roster signature file is malformed: {0}")]
    SignatureFile(String),
    /// The signature does not verify over the roster bytes.
    #[error(
        "roster signature does not verify (the file was changed after signing, or the signature belongs to another file)"
    )]
    BadSignature,
    /// The signing key is not a trusted roster authority.
    #[error("roster is signed by {key}, which is not a trusted roster authority")]
    UnknownAuthority {
        /// The key that signed (`ed25519:<hex>`).
        key: String,
    },
    /// The roster is older than the one already accepted.
    #[error("roster version {offered} is older than the accepted version {accepted}")]
    OlderVersion {
        /// Version already accepted.
        accepted: u64,
        /// Version offered.
        offered: u64,
    },
    /// Same version as the accepted roster, but different content.
    #[error("roster version {version} differs from the accepted roster of the same version")]
    ConflictingVersion {
        /// The version.
        version: u64,
    },
    /// The authority's tools (`wlnode roster sign`, the editing commands) refuse a
    /// federation setting the build does not know: a typo must not be signed. Only a
    /// node verifying a signed roster keeps such a setting (and ignores it).
    #[error(
        "federation_settings.{field} is not a setting this build knows (known: {known}); \
         a typo? The authority signs only settings its own build understands"
    )]
    UnknownFederationSetting {
        /// The unknown setting's name.
        field: String,
        /// The settings this build knows, comma separated.
        known: &'static str,
    },
    /// Review s35-roster L3/L6: a federation setting name this build does not know
    /// is kept (and ignored) only when it is a plain name (`[a-z0-9_]+`, at most
    /// [`MAX_SETTING_NAME_CHARS`] characters), as every setting wlnode defines is;
    /// anything else (upper case, `-`, control characters, an overlong name) is a
    /// malformed roster, refused on every path. This also refuses a near-miss of a
    /// known name that differs only by case or `-`/`_`, which no later build adds.
    #[error(
        "federation_settings.{field:?} is not a well-formed setting name (only a-z, 0-9 and _, \
         at most {MAX_SETTING_NAME_CHARS} characters)"
    )]
    MalformedFederationSetting {
        /// The name (cut to [`MAX_SETTING_NAME_CHARS`] characters).
        field: String,
    },
    /// The roster is for another federation.
    #[error("roster is for federation {offered:?}, but this node belongs to {accepted:?}")]
    FederationMismatch {
        /// Federation already accepted.
        accepted: String,
        /// Federation offered.
        offered: String,
    },
    /// The agency is not in the roster.
    #[error("agency {0} is not in the roster")]
    UnknownAgency(String),
    /// The key is not one of the agency's keys.
    #[error("key {key} is not a signing key of {agency}")]
    UnknownKey {
        /// Agency.
        agency: String,
        /// Key (`ed25519:<hex>`).
        key: String,
    },
    /// The key's validity window had not started.
    #[error("key {key} of {agency} is not valid before {valid_from} (used at {at})")]
    KeyNotYetValid {
        /// Agency.
        agency: String,
        /// Key (`ed25519:<hex>`).
        key: String,
        /// Start of validity.
        valid_from: Timestamp,
        /// When it was used.
        at: Timestamp,
    },
    /// The key's validity window had ended.
    #[error("key {key} of {agency} expired at {valid_until} (used at {at})")]
    ExpiredKey {
        /// Agency.
        agency: String,
        /// Key (`ed25519:<hex>`).
        key: String,
        /// End of validity.
        valid_until: Timestamp,
        /// When it was used.
        at: Timestamp,
    },
    /// The key was revoked before it was used.
    #[error("key {key} of {agency} was revoked at {revoked_at} (used at {at})")]
    RevokedKey {
        /// Agency.
        agency: String,
        /// Key (`ed25519:<hex>`).
        key: String,
        /// Revocation time.
        revoked_at: Timestamp,
        /// When it was used.
        at: Timestamp,
    },
    /// The agency lists no encryption key valid at that time, so it cannot receive
    /// sealed messages.
    #[error(
        "agency {agency} has no encryption key valid at {at}; it cannot receive sealed messages"
    )]
    NoEncryptionKey {
        /// Agency.
        agency: String,
        /// When.
        at: Timestamp,
    },
    /// The agency's role does not allow this (auditors issue no records).
    #[error("agency {agency} has role {role} and may not {action}")]
    WrongRole {
        /// Agency.
        agency: String,
        /// Its role.
        role: Role,
        /// What it tried.
        action: &'static str,
    },
}

/// A member's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Issues and receives watchlist records.
    Member,
    /// Reads audit logs only.
    Auditor,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Member => "member",
            Self::Auditor => "auditor",
        })
    }
}

/// A signing key's validity window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyWindow {
    /// The key.
    pub key: PublicKey,
    /// Valid from (inclusive).
    pub valid_from: Timestamp,
    /// Valid until (exclusive); open-ended when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

/// An encryption key's validity window (rotation as for signing keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKeyWindow {
    /// The key.
    pub key: EncryptionPublicKey,
    /// Valid from (inclusive).
    pub valid_from: Timestamp,
    /// Valid until (exclusive); open-ended when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

impl EncryptionKeyWindow {
    /// Whether the window covers `at`.
    pub fn covers(&self, at: Timestamp) -> bool {
        at >= self.valid_from && self.valid_until.is_none_or(|u| at < u)
    }
}

/// What silence means when a consultation's deadline passes without an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceRule {
    /// Silence counts as no objection (the default).
    #[default]
    NoObjection,
    /// Silence counts as an objection.
    Objection,
}

impl fmt::Display for SilenceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoObjection => "no_objection",
            Self::Objection => "objection",
        })
    }
}

/// Federation-wide settings the authority signs with the roster.
///
/// The one lenient level of the roster (issue 21, s35): a setting this build does not
/// know is kept in [`Self::not_understood`] instead of refusing the whole roster, so
/// that an older node still takes a newer roster and with it the revocations it
/// carries (before, every new setting cut every older node off all later rosters).
/// The price is that an older node ignores the new setting, which is why only
/// settings an older node may ignore go here; a field an older node must not ignore
/// (a new kind of revocation, say) goes on a strict level, where an older node
/// refuses the roster loudly. The authority's own tools stay strict:
/// [`Roster::refuse_unknown_settings`] (`wlnode roster sign`) refuses a setting the
/// signing build does not know, naming it, so a typo is never signed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FederationSettings {
    /// What a consultation's silence at its deadline means.
    #[serde(default)]
    pub consultation_silence: SilenceRule,
    /// The shortest consultation deadline a requester may set, in seconds (default
    /// one day; at least one second). Enforced by the requester's API and, binding
    /// on a requester that skips it, by the origin on every arriving request and
    /// round of information (less the mail layer's 5 min clock skew). Only a
    /// demonstration or test federation lowers it (`wlnode demo` sets a few seconds
    /// to show an expiry by silence); the authority signs it with the roster, so no
    /// node lowers it on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation_min_deadline_secs: Option<u64>,
    /// From when every member's node signs mail hand-overs (`/wlnode/mail/4` or
    /// later; issue 21): the authority sets it once the federation has upgraded. The
    /// auditor then counts a `handed` event of that time or later only with the
    /// neighbour's valid signed acceptance, whatever the node's log holds: the
    /// logging node cannot choose its own cut-over (review s31-fixes X2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_acks_required_since: Option<Timestamp>,
    /// From when every consultation request, answer and refusal must carry its
    /// sender's signed receipt (`wlnode_consult::evidence`; issue 21, s34): the
    /// authority sets it once every member runs a node that signs them. A node then
    /// refuses (and audits) such a message without one, and the auditor proves a
    /// step without one, logged as accepted at or after this time, against the node
    /// that logged it. Absent: receipts stay optional, as before (review s33-consult
    /// M1 part 3: a guilty origin left its receipt out and fell back to the pair
    /// rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consult_receipts_required_since: Option<Timestamp>,
    /// Issue 21, s35 (review s35-deadline H1): while the roster a node runs carries
    /// this setting (any value), its signed `deadline_too_short` refusals sign the
    /// minimum and roster version it applied (`min_deadline_secs`, `roster_version`
    /// in the receipt); absent, it signs them not, so requesters of an older build
    /// keep reading its refusals during a rollout. From this time on a requester
    /// refuses (and audits) a `deadline_too_short` without them, and the auditor
    /// proves one against the origin whose logs show it ran a roster with the
    /// setting. The authority sets it once every member runs a build that signs
    /// them, no earlier than `consult_receipts_required_since`, and far enough
    /// ahead that every node has loaded the roster by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consult_refusal_terms_required_since: Option<Timestamp>,
    /// From when an origin opens a requester's own consultation under an id another
    /// requester already holds there (issue 21, s35: one consultation per requester
    /// and id, closing the two-message probe on ids). The authority sets it once
    /// every auditor (and node) runs s35: an auditor before s35 replays a node's log
    /// on one track per id and would prove two requesters' tracks under one id
    /// against the honest origin (review s35-key H1). Absent, or before it: such a
    /// request is refused as before s35 (quietly, or with the refusal a new request
    /// would get), so no log shows two requesters under one id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consult_keyed_by_requester_since: Option<Timestamp>,
    /// Settings a later build signed that this build does not understand, by name,
    /// with their TOML values, kept (and ignored) rather than refused; see the type's
    /// documentation. Serialised back in place, so a round trip keeps them.
    #[serde(flatten)]
    pub not_understood: BTreeMap<String, toml::Value>,
}

impl FederationSettings {
    /// The `*_required_since` cut-overs this build knows, by field name, when set.
    pub fn cutovers(&self) -> Vec<(&'static str, Timestamp)> {
        [
            ("mail_acks_required_since", self.mail_acks_required_since),
            (
                "consult_receipts_required_since",
                self.consult_receipts_required_since,
            ),
            (
                "consult_refusal_terms_required_since",
                self.consult_refusal_terms_required_since,
            ),
        ]
        .into_iter()
        .filter_map(|(name, t)| t.map(|t| (name, t)))
        .collect()
    }

    /// The names of the settings this roster sets: `consultation_silence` (it always
    /// has a value), every optional one that is present, and those this build does
    /// not understand. The auditor's `roster_setting_not_understood` judges a node's
    /// claim against these (final read of s36: it read them through a JSON round
    /// trip, which a failure would have turned off quietly).
    pub fn set_names(&self) -> BTreeSet<String> {
        let known = [
            ("consultation_silence", true),
            (
                "consultation_min_deadline_secs",
                self.consultation_min_deadline_secs.is_some(),
            ),
            (
                "consult_keyed_by_requester_since",
                self.consult_keyed_by_requester_since.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .chain(self.cutovers().into_iter().map(|(name, _)| name));
        known
            .map(str::to_owned)
            .chain(self.not_understood.keys().cloned())
            .collect()
    }
}

/// A revoked key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The key.
    pub key: PublicKey,
    /// Records claiming to be signed at or after this time are refused outright
    /// (`revoked_key`); earlier ones are suspect (see the module documentation).
    pub revoked_at: Timestamp,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Records of this key the authority knows to be good: they stay valid everywhere,
    /// also on nodes that never saw them before the revocation.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub keep: BTreeSet<crate::model::RecordId>,
}

/// How a record stands with its signer key's revocation, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStanding {
    /// The key is not revoked, or the authority keeps this record: a valid record.
    Valid,
    /// The key is revoked and the record is not kept: valid only where it was held
    /// before the revocation became known, and then below every valid record of the
    /// same entry.
    Revoked,
}

/// A roster authority key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authority {
    /// The key.
    pub key: PublicKey,
    /// Who holds it.
    #[serde(default)]
    pub name: String,
}

/// One federation member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Agency code.
    pub agency: AgencyCode,
    /// Full name.
    pub name: String,
    /// Country.
    pub country: CountryCode,
    /// Role.
    pub role: Role,
    /// Sharing groups.
    #[serde(default)]
    pub groups: BTreeSet<GroupName>,
    /// libp2p PeerIds of the agency's nodes.
    #[serde(default)]
    pub node_ids: Vec<String>,
    /// Signing keys with validity windows.
    #[serde(default)]
    pub keys: Vec<KeyWindow>,
    /// Revoked keys.
    #[serde(default)]
    pub revoked: Vec<Revocation>,
    /// X25519 keys sealed messages to this agency are encrypted to; none means the
    /// agency cannot receive sealed messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encryption_keys: Vec<EncryptionKeyWindow>,
}

impl Member {
    /// Whether the member belongs to `group`.
    pub fn in_group(&self, group: &GroupName) -> bool {
        self.groups.contains(group)
    }
}

/// The roster file's schema.
///
/// Every level but `federation_settings` refuses an unknown field
/// (`deny_unknown_fields`): the top level, authorities, members, keys and
/// revocations are what trust is built from, and a field there that this build would
/// ignore (a new kind of revocation, an authority's retirement) could leave it
/// trusting what the authority withdrew. A roster with one is refused, and the node
/// keeps the roster it had and says so. New settings an older node may ignore go
/// under `federation_settings`, which keeps what it does not understand
/// ([`FederationSettings`]), so such settings never cut an older node off the
/// revocations of later rosters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterDoc {
    /// Federation name.
    pub federation: String,
    /// Version, bumped on every signing.
    pub version: u64,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// Sensitivity labels, lowest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivities: Option<Vec<Sensitivity>>,
    /// Authority keys.
    #[serde(default)]
    pub authorities: Vec<Authority>,
    /// Members.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Federation-wide settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_settings: Option<FederationSettings>,
}

/// The federation settings this build knows, for [`RosterError::UnknownFederationSetting`].
/// A test ties it to [`FederationSettings`]' fields (review s35-roster L2).
pub const KNOWN_FEDERATION_SETTINGS: &str = "consultation_silence, consultation_min_deadline_secs, \
     mail_acks_required_since, consult_receipts_required_since, \
     consult_refusal_terms_required_since, consult_keyed_by_requester_since";

/// The longest federation setting name accepted (review s35-roster L3).
pub const MAX_SETTING_NAME_CHARS: usize = 64;

/// How many names of settings not understood are shown (in a log line, a reload
/// report, `wlnode roster show`, the audit log's `roster_loaded`); the rest are
/// counted (review s35-roster L3).
pub const MAX_SETTINGS_SHOWN: usize = 32;

/// Whether `name` is a well-formed setting name: `[a-z0-9_]+`, at most
/// [`MAX_SETTING_NAME_CHARS`] characters.
pub fn well_formed_setting_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SETTING_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The default sensitivity order when the roster defines none.
pub const DEFAULT_SENSITIVITIES: [&str; 3] = ["public", "restricted", "confidential"];

/// A parsed, validated roster.
#[derive(Clone, Debug)]
pub struct Roster {
    doc: RosterDoc,
    hash: [u8; 32],
    members: BTreeMap<AgencyCode, usize>,
    peers: HashMap<String, usize>,
    sensitivities: Vec<Sensitivity>,
    groups: BTreeSet<GroupName>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Roster {
    /// Parses and validates roster TOML (no signature check; see [`verify_roster`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, RosterError> {
        if bytes.len() > MAX_ROSTER_BYTES {
            return Err(RosterError::Invalid(format!(
                "file is {} bytes, over the limit of {MAX_ROSTER_BYTES}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let (line, column) = line_col(
                std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                    .unwrap_or_default(),
                e.valid_up_to(),
            );
            RosterError::Parse {
                line,
                column,
                message: "not UTF-8".into(),
            }
        })?;
        let doc: RosterDoc = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            RosterError::Parse {
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        Self::from_doc(doc, crate::sha256::digest(bytes))
    }

    fn from_doc(doc: RosterDoc, hash: [u8; 32]) -> Result<Self, RosterError> {
        let invalid = |m: String| Err(RosterError::Invalid(m));
        if doc.federation.trim().is_empty() || doc.federation.len() > 128 {
            return invalid("federation must be a non-empty name of at most 128 bytes".into());
        }
        if doc.version == 0 {
            return invalid("version must be at least 1".into());
        }
        if doc.authorities.is_empty() {
            return invalid("at least one [[authorities]] key is required".into());
        }
        // Review s30-consult2 L2: a minimum of 0 or of years is a signing mistake,
        // refused here rather than clamped silently.
        if let Some(secs) = doc
            .federation_settings
            .as_ref()
            .and_then(|f| f.consultation_min_deadline_secs)
            && !(1..=365 * 86_400).contains(&secs)
        {
            return invalid(format!(
                "federation_settings.consultation_min_deadline_secs = {secs}: must be 1 s to 365 days (31536000)"
            ));
        }
        if let Some(bad) = doc.federation_settings.as_ref().and_then(|f| {
            f.not_understood
                .keys()
                .find(|k| !well_formed_setting_name(k))
        }) {
            return Err(RosterError::MalformedFederationSetting {
                field: bad.chars().take(MAX_SETTING_NAME_CHARS).collect(),
            });
        }
        let sensitivities = match &doc.sensitivities {
            Some(list) => {
                if list.is_empty() {
                    return invalid("sensitivities, when given, must not be empty".into());
                }
                let unique: BTreeSet<_> = list.iter().collect();
                if unique.len() != list.len() {
                    return invalid("sensitivities must be unique".into());
                }
                list.clone()
            }
            None => DEFAULT_SENSITIVITIES
                .iter()
                .map(|s| Sensitivity::new(*s))
                .collect::<Result<_, _>>()
                .map_err(|e| RosterError::Invalid(e.to_string()))?,
        };
        let mut members = BTreeMap::new();
        let mut peers = HashMap::new();
        let mut groups = BTreeSet::new();
        for (i, m) in doc.members.iter().enumerate() {
            let at = format!("members[{i}] ({})", m.agency);
            if members.insert(m.agency.clone(), i).is_some() {
                return invalid(format!("{at}: agency listed twice"));
            }
            if m.keys.is_empty() {
                return invalid(format!("{at}: needs at least one signing key"));
            }
            let mut seen_keys = BTreeSet::new();
            for k in &m.keys {
                if !seen_keys.insert(k.key) {
                    return invalid(format!("{at}: key {} listed twice", k.key));
                }
                if k.valid_until.is_some_and(|u| u <= k.valid_from) {
                    return invalid(format!(
                        "{at}: key {} has valid_until before valid_from",
                        k.key
                    ));
                }
            }
            for r in &m.revoked {
                if !seen_keys.contains(&r.key) {
                    return invalid(format!(
                        "{at}: revoked key {} must stay listed under keys so that earlier records still verify",
                        r.key
                    ));
                }
            }
            let mut seen_enc = BTreeSet::new();
            for k in &m.encryption_keys {
                if !seen_enc.insert(k.key) {
                    return invalid(format!("{at}: encryption key {} listed twice", k.key));
                }
                if k.valid_until.is_some_and(|u| u <= k.valid_from) {
                    return invalid(format!(
                        "{at}: encryption key {} has valid_until before valid_from",
                        k.key
                    ));
                }
            }
            for pid in &m.node_ids {
                parse_peer_id(pid)
                    .map_err(|e| RosterError::Invalid(format!("{at}: node_ids: {e}")))?;
                if peers.insert(pid.clone(), i).is_some() {
                    return invalid(format!(
                        "{at}: node id {pid} is listed for more than one member"
                    ));
                }
            }
            groups.extend(m.groups.iter().cloned());
        }
        Ok(Self {
            doc,
            hash,
            members,
            peers,
            sensitivities,
            groups,
        })
    }

    /// The parsed document.
    pub fn doc(&self) -> &RosterDoc {
        &self.doc
    }

    /// Federation name.
    pub fn federation(&self) -> &str {
        &self.doc.federation
    }

    /// Version.
    pub fn version(&self) -> u64 {
        self.doc.version
    }

    /// SHA-256 of the roster file bytes.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Authority keys.
    pub fn authorities(&self) -> impl Iterator<Item = &PublicKey> {
        self.doc.authorities.iter().map(|a| &a.key)
    }

    /// All members.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.doc.members.iter()
    }

    /// One member by agency code.
    pub fn member(&self, agency: &AgencyCode) -> Option<&Member> {
        self.members
            .get(agency)
            .and_then(|i| self.doc.members.get(*i))
    }

    /// Which agency owns this PeerId (base58 text).
    pub fn agency_of_peer(&self, peer_id: &str) -> Option<&Member> {
        self.peers
            .get(peer_id)
            .and_then(|i| self.doc.members.get(*i))
    }

    /// Every sharing group some member belongs to.
    pub fn groups(&self) -> &BTreeSet<GroupName> {
        &self.groups
    }

    /// Sensitivity labels, lowest first.
    pub fn sensitivities(&self) -> &[Sensitivity] {
        &self.sensitivities
    }

    /// Rank of a sensitivity label (0 = lowest), or `None` if the roster lacks it.
    pub fn sensitivity_rank(&self, s: &Sensitivity) -> Option<usize> {
        self.sensitivities.iter().position(|x| x == s)
    }

    /// What silence at a consultation's deadline means in this federation.
    pub fn silence_rule(&self) -> SilenceRule {
        self.doc
            .federation_settings
            .as_ref()
            .map(|s| s.consultation_silence)
            .unwrap_or_default()
    }

    /// The shortest consultation deadline in this federation, in seconds: the roster's
    /// `consultation_min_deadline_secs` (at least 1), else one day.
    pub fn consultation_min_deadline_secs(&self) -> u64 {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.consultation_min_deadline_secs)
            .map_or(86_400, |s| s.max(1))
    }

    /// The names of the federation settings this build does not understand (kept,
    /// signed, and ignored; see [`FederationSettings`]), sorted.
    pub fn settings_not_understood(&self) -> Vec<&str> {
        self.doc
            .federation_settings
            .as_ref()
            .map(|s| s.not_understood.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The settings this build does not understand, bounded for a log line, a
    /// report or the audit log's `roster_loaded` (review s35-roster L3, H1): at most
    /// [`MAX_SETTINGS_SHOWN`] names, the `*_required_since` cut-overs first (the ones
    /// an auditor asks about), then the rest by name; and how many were left out.
    /// Every name is well formed (`Roster::parse` refuses others), so none needs
    /// escaping.
    pub fn settings_not_understood_shown(&self) -> (Vec<String>, u64) {
        let mut names = self.settings_not_understood();
        names.sort_by_key(|n| (!n.ends_with("_required_since"), *n));
        let more = names.len().saturating_sub(MAX_SETTINGS_SHOWN);
        names.truncate(MAX_SETTINGS_SHOWN);
        (
            names.into_iter().map(str::to_owned).collect(),
            u64::try_from(more).unwrap_or(u64::MAX),
        )
    }

    /// The authority's strict check: refuses, naming it, the first federation setting
    /// this build does not know (see [`RosterError::UnknownFederationSetting`]).
    pub fn refuse_unknown_settings(&self) -> Result<(), RosterError> {
        match self.settings_not_understood().first() {
            Some(field) => Err(RosterError::UnknownFederationSetting {
                field: (*field).to_owned(),
                known: KNOWN_FEDERATION_SETTINGS,
            }),
            None => Ok(()),
        }
    }

    /// When the roster was issued (its signed `issued_at`, stamped by `wlnode roster
    /// sign`).
    pub fn issued_at(&self) -> Timestamp {
        self.doc.issued_at
    }

    /// The `*_required_since` cut-overs this build knows, by field name, when set.
    pub fn cutovers(&self) -> Vec<(&'static str, Timestamp)> {
        self.doc
            .federation_settings
            .as_ref()
            .map(FederationSettings::cutovers)
            .unwrap_or_default()
    }

    /// From when every member signs mail hand-overs, if the authority says so
    /// (`federation_settings.mail_acks_required_since`).
    pub fn mail_acks_required_since(&self) -> Option<Timestamp> {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.mail_acks_required_since)
    }

    /// From when every consultation request, answer and refusal must carry its
    /// sender's signed receipt, if the authority says so
    /// (`federation_settings.consult_receipts_required_since`).
    pub fn consult_receipts_required_since(&self) -> Option<Timestamp> {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.consult_receipts_required_since)
    }

    /// From when a signed `deadline_too_short` must sign the minimum and roster
    /// version the origin applied, if the authority says so
    /// (`federation_settings.consult_refusal_terms_required_since`); while it is set
    /// at all, a node signs them.
    pub fn consult_refusal_terms_required_since(&self) -> Option<Timestamp> {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.consult_refusal_terms_required_since)
    }

    /// The shortest consultation deadline as the authority wrote it
    /// (`federation_settings.consultation_min_deadline_secs`, at least 1), `None`
    /// when the roster leaves it to the build's default: a proof that compares
    /// another node's minimum with this roster's must not rest on a default a
    /// later build may change (review s35-deadline L2).
    pub fn explicit_consultation_min_deadline_secs(&self) -> Option<u64> {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.consultation_min_deadline_secs)
            .filter(|s| *s >= 1)
    }

    /// From when an origin keeps one consultation per requester and id, opening a
    /// request under an id another requester holds there, if the authority says so
    /// (`federation_settings.consult_keyed_by_requester_since`).
    pub fn consult_keyed_by_requester_since(&self) -> Option<Timestamp> {
        self.doc
            .federation_settings
            .as_ref()
            .and_then(|s| s.consult_keyed_by_requester_since)
    }

    /// The key to seal a message to `agency` with at `at`: of its encryption keys
    /// valid then, the one whose window started last.
    pub fn encryption_key(
        &self,
        agency: &AgencyCode,
        at: Timestamp,
    ) -> Result<EncryptionPublicKey, RosterError> {
        let member = self
            .member(agency)
            .ok_or_else(|| RosterError::UnknownAgency(agency.to_string()))?;
        member
            .encryption_keys
            .iter()
            .filter(|k| k.covers(at))
            .max_by_key(|k| k.valid_from)
            .map(|k| k.key)
            .ok_or_else(|| RosterError::NoEncryptionKey {
                agency: agency.to_string(),
                at,
            })
    }

    /// Was `key` an encryption key of `agency` valid at `at`?
    pub fn check_encryption_key(
        &self,
        agency: &AgencyCode,
        key: &EncryptionPublicKey,
        at: Timestamp,
    ) -> Result<(), RosterError> {
        let member = self
            .member(agency)
            .ok_or_else(|| RosterError::UnknownAgency(agency.to_string()))?;
        if member
            .encryption_keys
            .iter()
            .any(|k| k.key == *key && k.covers(at))
        {
            Ok(())
        } else {
            Err(RosterError::NoEncryptionKey {
                agency: agency.to_string(),
                at,
            })
        }
    }

    /// Members that cannot receive sealed messages (no encryption key valid at `at`),
    /// for the roster check's warning.
    pub fn members_without_encryption_key(&self, at: Timestamp) -> Vec<&AgencyCode> {
        self.members()
            .filter(|m| m.role == Role::Member && !m.encryption_keys.iter().any(|k| k.covers(at)))
            .map(|m| &m.agency)
            .collect()
    }

    /// Was `key` a valid signing key of `agency` at time `at`?
    pub fn check_signer(
        &self,
        agency: &AgencyCode,
        key: &PublicKey,
        at: Timestamp,
    ) -> Result<&Member, RosterError> {
        let member = self
            .member(agency)
            .ok_or_else(|| RosterError::UnknownAgency(agency.to_string()))?;
        let window =
            member
                .keys
                .iter()
                .find(|k| k.key == *key)
                .ok_or_else(|| RosterError::UnknownKey {
                    agency: agency.to_string(),
                    key: key.to_string(),
                })?;
        if let Some(r) = member.revoked.iter().find(|r| r.key == *key)
            && at >= r.revoked_at
        {
            return Err(RosterError::RevokedKey {
                agency: agency.to_string(),
                key: key.to_string(),
                revoked_at: r.revoked_at,
                at,
            });
        }
        if at < window.valid_from {
            return Err(RosterError::KeyNotYetValid {
                agency: agency.to_string(),
                key: key.to_string(),
                valid_from: window.valid_from,
                at,
            });
        }
        if let Some(until) = window.valid_until
            && at >= until
        {
            return Err(RosterError::ExpiredKey {
                agency: agency.to_string(),
                key: key.to_string(),
                valid_until: until,
                at,
            });
        }
        Ok(member)
    }

    /// How `record` (of `origin`, signed by `key`) stands with the key's revocation.
    pub fn key_standing(
        &self,
        origin: &AgencyCode,
        key: &PublicKey,
        record: &crate::model::RecordId,
    ) -> KeyStanding {
        match self
            .member(origin)
            .and_then(|m| m.revoked.iter().find(|r| r.key == *key))
        {
            Some(r) if !r.keep.contains(record) => KeyStanding::Revoked,
            _ => KeyStanding::Valid,
        }
    }

    /// The revocations of every member, as `(agency, revocation)`.
    pub fn revocations(&self) -> impl Iterator<Item = (&AgencyCode, &Revocation)> {
        self.members()
            .flat_map(|m| m.revoked.iter().map(move |r| (&m.agency, r)))
    }

    /// SHA-256 of every revocation (agency, key, kept records), in a canonical order:
    /// what a store records as applied, so it re-derives entry states only when the
    /// revocations change.
    pub fn revocations_digest(&self) -> [u8; 32] {
        let mut h = crate::sha256::Hasher::new();
        for (agency, r) in self.revocations() {
            h.update(agency.as_str().as_bytes());
            h.update(b"\0");
            h.update(r.key.as_bytes());
            for id in &r.keep {
                h.update(&id.0);
            }
            h.update(b"\n");
        }
        h.finish()
    }

    /// [`Self::check_signer`] for a record: the signer must also have role `member`.
    pub fn check_record_signer(
        &self,
        agency: &AgencyCode,
        key: &PublicKey,
        at: Timestamp,
    ) -> Result<&Member, RosterError> {
        let m = self.check_signer(agency, key, at)?;
        if m.role != Role::Member {
            return Err(RosterError::WrongRole {
                agency: agency.to_string(),
                role: m.role,
                action: "issue watchlist records",
            });
        }
        Ok(m)
    }
}

/// The detached signature of a roster file (`roster.toml.sig`):
///
/// ```text
/// wlnode-roster-signature v1
/// authority ed25519:<64 hex>
/// signature <128 hex>
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterSignature {
    /// The authority key that signed.
    pub authority: PublicKey,
    /// Signature over `"wlnode/roster/v1\0" || roster bytes`.
    pub signature: Signature,
}

const SIG_MAGIC: &str = "wlnode-roster-signature v1";

impl RosterSignature {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, RosterError> {
        let bad = |m: &str| RosterError::SignatureFile(m.to_owned());
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        if lines.next().map(str::trim) != Some(SIG_MAGIC) {
            return Err(bad(&format!("first line must be {SIG_MAGIC:?}")));
        }
        let authority = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("authority "))
            .ok_or_else(|| bad("second line must be \"authority ed25519:<hex>\""))?
            .parse::<PublicKey>()
            .map_err(|e| bad(&e.to_string()))?;
        let sig_hex = lines
            .next()
            .and_then(|l| l.trim().strip_prefix("signature "))
            .ok_or_else(|| bad("third line must be \"signature <128 hex>\""))?;
        let mut sig = [0u8; 64];
        hex::decode_to_slice(sig_hex.trim(), &mut sig)
            .map_err(|_| bad("signature must be 128 hex characters"))?;
        if lines.next().is_some() {
            return Err(bad("unexpected content after the signature line"));
        }
        Ok(Self {
            authority,
            signature: Signature(sig),
        })
    }

    /// The text form.
    pub fn to_text(&self) -> String {
        format!(
            "{SIG_MAGIC}\nauthority {}\nsignature {}\n",
            self.authority,
            hex::encode(self.signature.0)
        )
    }
}

/// Signs roster bytes with the authority key.
pub fn sign_roster(roster_bytes: &[u8], key: &SecretKey) -> RosterSignature {
    RosterSignature {
        authority: key.public_key(),
        signature: key.sign(context::ROSTER, roster_bytes),
    }
}

/// What a node already trusts when it is offered a roster.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchor {
    /// Authority keys the node trusts: configured, or those of the roster it accepted
    /// before. Empty only on first use, when the roster's own authorities are pinned.
    pub authorities: Vec<PublicKey>,
    /// The roster accepted before: (federation, version, hash).
    pub accepted: Option<(String, u64, [u8; 32])>,
}

impl TrustAnchor {
    /// The anchor that accepting `roster` leaves behind.
    pub fn after(roster: &Roster) -> Self {
        Self {
            authorities: roster.authorities().copied().collect(),
            accepted: Some((
                roster.federation().to_owned(),
                roster.version(),
                roster.hash(),
            )),
        }
    }
}

/// Verifies a signed roster against what the node already trusts.
pub fn verify_roster(
    bytes: &[u8],
    sig: &RosterSignature,
    anchor: &TrustAnchor,
) -> Result<Roster, RosterError> {
    sig.authority
        .verify(context::ROSTER, bytes, &sig.signature)
        .map_err(|_| RosterError::BadSignature)?;
    let roster = Roster::parse(bytes)?;
    let listed = roster.authorities().any(|k| *k == sig.authority);
    let trusted = anchor.authorities.is_empty() || anchor.authorities.contains(&sig.authority);
    if !listed || !trusted {
        return Err(RosterError::UnknownAuthority {
            key: sig.authority.to_string(),
        });
    }
    if let Some((federation, version, hash)) = &anchor.accepted {
        if roster.federation() != federation {
            return Err(RosterError::FederationMismatch {
                accepted: federation.clone(),
                offered: roster.federation().to_owned(),
            });
        }
        if roster.version() < *version {
            return Err(RosterError::OlderVersion {
                accepted: *version,
                offered: roster.version(),
            });
        }
        if roster.version() == *version && roster.hash() != *hash {
            return Err(RosterError::ConflictingVersion {
                version: roster.version(),
            });
        }
    }
    Ok(roster)
}
