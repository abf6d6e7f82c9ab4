//! Editing roster files for the roster authority (`wlnode roster ...`).
//!
//! Edits go through `toml_edit`, so comments and layout that the authority wrote are
//! kept; every edit is validated by parsing the result as a roster before it is
//! written. `sign` bumps the version, stamps `issued_at`, and signs the exact bytes.
//!
//! This is the strict side of the roster (issue 21, s35): a node verifying a signed
//! roster keeps federation settings it does not understand, but every edit and
//! signing here refuses one, naming it ([`RosterError::UnknownFederationSetting`]),
//! since the authority's typo must not be signed. [`sign_with`] (the `wlnode roster
//! sign` command) also refuses a `*_required_since` cut-over that lies before the
//! roster's `issued_at` unless it is carried unchanged from the previous version or
//! the authority allows it ([`PastCutover`]).

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};
use wlnode_crypto::PublicKey;
use wlnode_crypto::keys::{SecretKey, parse_peer_id};
use wlnode_crypto::model::{AgencyCode, CountryCode, GroupName, RecordId};
use wlnode_crypto::roster::{Role, Roster, RosterError, RosterSignature, sign_roster};
use wlnode_crypto::seal::EncryptionPublicKey;
use wlnode_crypto::time::Timestamp;

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum RosterEditError {
    /// The file is not TOML.
    #[error("roster is not valid TOML: {0}")]
    Toml(String),
    /// The edit would make the roster invalid.
    #[error(transparent)]
    Invalid(#[from] RosterError),
    /// The edit does not apply.
    #[error("{0}")]
    Refused(String),
    /// A cut-over lies before the roster's `issued_at` and is new or moved in this
    /// version (refused by [`sign_with`] unless allowed).
    #[error(
        "{0}; pass --previous <the signed roster the nodes run now> if it is unchanged from it \
         (`wlnode roster sign` keeps the last roster it signed as <roster>.signed-previous and \
         uses it by default), or --allow-past-cutover if those steps are meant to be judged by \
         the rule"
    )]
    PastCutover(PastCutover),
    /// Review s35-roster M2: the previous roster (`--previous`, or the copy `wlnode
    /// roster sign` kept of the last roster it signed) is not a signed roster whose
    /// signature verifies under one of the draft's authority keys (the draft itself,
    /// edited since it was signed, is refused here: its bytes no longer match its
    /// signature).
    #[error("previous roster {path}: not a signed roster of this authority: {source}")]
    PreviousNotSigned {
        /// Where it was read.
        path: String,
        /// Why it does not verify.
        source: RosterError,
    },
    /// Review s35-roster M2: the previous roster is another federation's.
    #[error("previous roster {path} is of federation {previous:?}, not {draft:?}")]
    PreviousOtherFederation {
        /// Where it was read.
        path: String,
        /// Its federation.
        previous: String,
        /// The draft's.
        draft: String,
    },
    /// Review s35-roster M2: the previous roster is not older than the one being
    /// signed.
    #[error(
        "previous roster {path} is version {previous}, not older than the version {signing} being signed"
    )]
    PreviousNotOlder {
        /// Where it was read.
        path: String,
        /// Its version.
        previous: u64,
        /// The version being signed.
        signing: u64,
    },
    /// Review of s35-int, M1: the new version would carry an `issued_at` earlier
    /// than the previous version's. The auditor dates a roster version by
    /// `issued_at` (a receipt naming a version above its own, signed before its own
    /// roster was issued, names a version that did not exist yet), which holds only
    /// while versions are issued in increasing time: a signing machine whose clock
    /// is behind must not sign.
    #[error(
        "the previous roster (version {previous}) was issued at {previous_at}, after now ({now}) on this machine: correct the clock before signing"
    )]
    IssuedNotLater {
        /// The previous version.
        previous: u64,
        /// Its `issued_at`, RFC 3339.
        previous_at: String,
        /// This machine's time, RFC 3339.
        now: String,
    },
    /// The draft's `version` is the largest a TOML integer holds: no next version
    /// can be signed (final read of s36: `sign` added one to it unchecked).
    #[error("roster version {0} has no next version: it is the largest a roster can carry")]
    VersionExhausted(i64),
}

/// Review s35-roster L1: how long after a roster's `issued_at` a `*_required_since`
/// cut-over must lie not to count as past: nodes load a new roster by hand, so
/// hours can pass between signing and the moment every node runs it. One hour.
pub const CUTOVER_MARGIN_MS: u64 = 3_600_000;

/// Review s35-roster M3: where `wlnode roster sign` keeps a copy of the last roster
/// it signed (`<roster>.signed-previous`, its signature in
/// `<roster>.signed-previous.sig`), used as the default previous version.
pub fn signed_previous_path(roster: &std::path::Path) -> std::path::PathBuf {
    let mut s = roster.as_os_str().to_owned();
    s.push(".signed-previous");
    std::path::PathBuf::from(s)
}

/// Review s35-roster M2: checks that `bytes`/`sig` (read from `path`) are a signed
/// roster that may serve as the previous version of the draft `text`: its
/// signature verifies under one of the draft's authority keys (and its own), it is
/// of the draft's federation, and its version is lower than the one `sign` gives
/// the draft. Lenient about settings it does not understand, like a node.
pub fn check_previous(
    text: &str,
    path: &str,
    bytes: &[u8],
    sig: &RosterSignature,
) -> Result<Roster, RosterEditError> {
    let draft = validate(text)?;
    let signing = u64::try_from(next_version(&parse(text)?)?.max(1)).unwrap_or(1);
    let anchor = wlnode_crypto::roster::TrustAnchor {
        authorities: draft.authorities().copied().collect(),
        accepted: None,
    };
    let previous = wlnode_crypto::roster::verify_roster(bytes, sig, &anchor).map_err(|source| {
        RosterEditError::PreviousNotSigned {
            path: path.to_owned(),
            source,
        }
    })?;
    if previous.federation() != draft.federation() {
        return Err(RosterEditError::PreviousOtherFederation {
            path: path.to_owned(),
            previous: previous.federation().to_owned(),
            draft: draft.federation().to_owned(),
        });
    }
    if previous.version() >= signing {
        return Err(RosterEditError::PreviousNotOlder {
            path: path.to_owned(),
            previous: previous.version(),
            signing,
        });
    }
    Ok(previous)
}

/// A `*_required_since` cut-over earlier than the roster's signed `issued_at` that is
/// not carried unchanged from the previous version (review s34-consult L4): nodes
/// load the roster after `issued_at`, so steps they logged between the cut-over and
/// then are judged (by nodes and the auditor) as if the rule had already applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastCutover {
    /// The setting (`federation_settings.<field>`).
    pub field: &'static str,
    /// Its value.
    pub cutover: Timestamp,
    /// The roster's `issued_at`.
    pub issued_at: Timestamp,
    /// Whether a previous version was compared against.
    pub compared: bool,
    /// The previous version's value, when a previous version was given and set it
    /// (later than `cutover`: the cut-over moved backwards).
    pub previous: Option<Timestamp>,
}

impl std::fmt::Display for PastCutover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "federation_settings.{} = {} is earlier than the roster's issued_at {} plus the \
             distribution margin of {} min",
            self.field,
            self.cutover,
            self.issued_at,
            CUTOVER_MARGIN_MS / 60_000
        )?;
        match (self.compared, self.previous) {
            (true, Some(p)) => write!(f, " and moved backwards from {p}")?,
            (true, None) => f.write_str(" and is new in this version")?,
            (false, _) => f.write_str(" (no previous version given to compare with)")?,
        }
        f.write_str(
            ": steps logged between the cut-over and the moment nodes load this roster \
             are judged as if the rule already applied",
        )
    }
}

/// The cut-overs of `roster` that lie before its `issued_at` plus
/// [`CUTOVER_MARGIN_MS`] (review s35-roster L1), unless `previous` (the version the
/// nodes run now) already had the same or an earlier one: then the rule already
/// applied there and nothing is judged anew. Without `previous`, every such cut-over
/// (the tool cannot tell an old one from a new one).
pub fn past_cutovers(roster: &Roster, previous: Option<&Roster>) -> Vec<PastCutover> {
    let issued_at = roster.issued_at();
    let margin = Timestamp(issued_at.as_millis().saturating_add(CUTOVER_MARGIN_MS));
    roster
        .cutovers()
        .into_iter()
        .filter(|(_, t)| *t < margin)
        .filter_map(|(field, cutover)| {
            let before = previous.map(|p| {
                p.cutovers()
                    .into_iter()
                    .find(|(f, _)| *f == field)
                    .map(|(_, t)| t)
            });
            match before {
                Some(Some(p)) if p <= cutover => None,
                before => Some(PastCutover {
                    field,
                    cutover,
                    issued_at,
                    compared: before.is_some(),
                    previous: before.flatten(),
                }),
            }
        })
        .collect()
}

/// How [`sign_with`] treats a past cut-over.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignOptions<'a> {
    /// The version the nodes run now: a cut-over carried unchanged from it is fine.
    pub previous: Option<&'a Roster>,
    /// Sign even with a past cut-over (`--allow-past-cutover`); it is still
    /// returned, for the tool to warn about.
    pub allow_past_cutover: bool,
}

fn parse(text: &str) -> Result<DocumentMut, RosterEditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| RosterEditError::Toml(e.to_string()))
}

/// The version [`sign`] gives the draft `doc`: one more than its own (0 when it
/// has none). One place for `sign` and [`check_previous`] (final read of s36: each
/// worked it out itself).
fn next_version(doc: &DocumentMut) -> Result<i64, RosterEditError> {
    let v = draft_version(doc);
    v.checked_add(1).ok_or(RosterEditError::VersionExhausted(v))
}

/// The draft's own `version` (0 when it has none or it is not an integer).
fn draft_version(doc: &DocumentMut) -> i64 {
    doc.get("version").and_then(|v| v.as_integer()).unwrap_or(0)
}

/// `doc` with a version of at least 1, as a signed roster has (the checks of an
/// unsigned draft: [`validate`], [`inspect`]).
fn at_least_version_one(mut doc: DocumentMut) -> DocumentMut {
    if draft_version(&doc) < 1 {
        doc.insert("version", value(1));
    }
    doc
}

/// Checks the roster as it would be once signed (version at least 1).
pub fn validate(text: &str) -> Result<Roster, RosterEditError> {
    let doc = at_least_version_one(parse(text)?);
    let roster = Roster::parse(doc.to_string().as_bytes())?;
    roster.refuse_unknown_settings()?;
    Ok(roster)
}

/// Parses a roster for display (`wlnode roster show`), keeping federation settings
/// this build does not understand instead of refusing them (they are listed; `sign`
/// refuses them).
pub fn inspect(text: &str) -> Result<Roster, RosterEditError> {
    let doc = at_least_version_one(parse(text)?);
    Ok(Roster::parse(doc.to_string().as_bytes())?)
}

/// A new, unsigned roster (version 0) with one authority.
pub fn init(
    federation: &str,
    authority: &PublicKey,
    authority_name: &str,
) -> Result<String, RosterEditError> {
    let text = format!(
        r#"# wlnode federation roster. Edit with `wlnode roster ...`, then sign with
# `wlnode roster sign`, which bumps the version and writes roster.toml.sig.
federation = {fed}
version = 0
issued_at = {now}
# Sensitivity labels, lowest first.
sensitivities = ["public", "restricted", "confidential"]

[[authorities]]
key = "{authority}"
name = {name}
"#,
        fed = toml_edit::Value::from(federation),
        now = Timestamp::now().to_rfc3339(),
        name = toml_edit::Value::from(authority_name),
    );
    validate(&text)?;
    Ok(text)
}

fn members(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, RosterEditError> {
    if doc.get("members").is_none() {
        doc.insert("members", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc.get_mut("members")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| RosterEditError::Refused("`members` must be an array of tables".into()))
}

fn member<'a>(
    doc: &'a mut DocumentMut,
    agency: &AgencyCode,
) -> Result<&'a mut Table, RosterEditError> {
    members(doc)?
        .iter_mut()
        .find(|t| t.get("agency").and_then(|a| a.as_str()) == Some(agency.as_str()))
        .ok_or_else(|| RosterEditError::Refused(format!("agency {agency} is not in the roster")))
}

fn array_of<'a>(t: &'a mut Table, key: &str) -> Result<&'a mut Array, RosterEditError> {
    if t.get(key).is_none() {
        t.insert(key, value(Array::new()));
    }
    t.get_mut(key)
        .and_then(Item::as_array_mut)
        .ok_or_else(|| RosterEditError::Refused(format!("`{key}` must be an array")))
}

/// A new member.
#[derive(Clone, Debug)]
pub struct NewMember {
    /// Agency code.
    pub agency: AgencyCode,
    /// Full name.
    pub name: String,
    /// Country.
    pub country: CountryCode,
    /// Role.
    pub role: Role,
    /// Signing key.
    pub signing_key: PublicKey,
    /// Encryption key for sealed messages; a member without one cannot receive them.
    pub encryption_key: Option<EncryptionPublicKey>,
    /// Node PeerIds.
    pub node_ids: Vec<String>,
    /// Sharing groups.
    pub groups: Vec<GroupName>,
    /// Key validity start.
    pub valid_from: Timestamp,
}

impl NewMember {
    /// A member named by its code, in the country of the code's first two letters
    /// (`DE-BAFA` is in `DE`), with these nodes and groups: the shape samples and tests
    /// build. Fails, naming the value, on a code, country or group that is not valid.
    pub fn coded(
        agency: &str,
        role: Role,
        signing_key: PublicKey,
        node_ids: Vec<String>,
        groups: &[&str],
        valid_from: Timestamp,
    ) -> Result<Self, RosterEditError> {
        let refused = |what: &str, v: &str, e: &dyn std::fmt::Display| {
            RosterEditError::Refused(format!("{what} {v:?}: {e}"))
        };
        let country = agency.get(..2).unwrap_or(agency);
        Ok(Self {
            agency: AgencyCode::new(agency).map_err(|e| refused("agency", agency, &e))?,
            name: agency.to_owned(),
            country: CountryCode::new(country).map_err(|e| refused("country", country, &e))?,
            role,
            signing_key,
            encryption_key: None,
            node_ids,
            groups: groups
                .iter()
                .map(|g| GroupName::new(*g).map_err(|e| refused("group", g, &e)))
                .collect::<Result<_, _>>()?,
            valid_from,
        })
    }
}

/// Adds a member.
pub fn add_member(text: &str, m: &NewMember) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    for pid in &m.node_ids {
        parse_peer_id(pid)
            .map_err(|e| RosterEditError::Refused(format!("--node-id {pid}: {e}")))?;
    }
    let list = members(&mut doc)?;
    if list
        .iter()
        .any(|t| t.get("agency").and_then(|a| a.as_str()) == Some(m.agency.as_str()))
    {
        return Err(RosterEditError::Refused(format!(
            "agency {} is already in the roster; use add-key, add-node or retire-key to change it",
            m.agency
        )));
    }
    let mut t = Table::new();
    t.insert("agency", value(m.agency.as_str()));
    t.insert("name", value(m.name.as_str()));
    t.insert("country", value(m.country.as_str()));
    t.insert("role", value(m.role.to_string()));
    t.insert(
        "groups",
        value(m.groups.iter().map(|g| g.as_str()).collect::<Array>()),
    );
    t.insert(
        "node_ids",
        value(m.node_ids.iter().map(String::as_str).collect::<Array>()),
    );
    let mut keys = Array::new();
    keys.push(key_window(&m.signing_key, m.valid_from));
    t.insert("keys", value(keys));
    if let Some(k) = &m.encryption_key {
        let mut enc = Array::new();
        enc.push(enc_window(k, m.valid_from));
        t.insert("encryption_keys", value(enc));
    }
    list.push(t);
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

fn key_window(key: &PublicKey, from: Timestamp) -> InlineTable {
    let mut k = InlineTable::new();
    k.insert("key", key.to_string().into());
    k.insert("valid_from", from.to_rfc3339().into());
    k
}

fn enc_window(key: &EncryptionPublicKey, from: Timestamp) -> InlineTable {
    let mut k = InlineTable::new();
    k.insert("key", key.to_string().into());
    k.insert("valid_from", from.to_rfc3339().into());
    k
}

/// Adds an encryption key to a member (first key, or rotation step one).
pub fn add_encryption_key(
    text: &str,
    agency: &AgencyCode,
    key: &EncryptionPublicKey,
    from: Timestamp,
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    array_of(t, "encryption_keys")?.push(enc_window(key, from));
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

/// Ends an encryption key's validity window (rotation step two).
pub fn retire_encryption_key(
    text: &str,
    agency: &AgencyCode,
    key: &EncryptionPublicKey,
    at: Timestamp,
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    let arr = array_of(t, "encryption_keys")?;
    let k = arr
        .iter_mut()
        .find_map(|v| {
            let t = v.as_inline_table_mut()?;
            (t.get("key").and_then(|k| k.as_str()) == Some(key.to_string().as_str())).then_some(t)
        })
        .ok_or_else(|| {
            RosterEditError::Refused(format!("{key} is not an encryption key of {agency}"))
        })?;
    k.insert("valid_until", at.to_rfc3339().into());
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

/// Adds a signing key to a member (key rotation, step one).
pub fn add_key(
    text: &str,
    agency: &AgencyCode,
    key: &PublicKey,
    from: Timestamp,
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    array_of(t, "keys")?.push(key_window(key, from));
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

fn key_entry<'a>(arr: &'a mut Array, key: &PublicKey) -> Option<&'a mut InlineTable> {
    arr.iter_mut().find_map(|v| {
        let t = v.as_inline_table_mut()?;
        (t.get("key").and_then(|k| k.as_str()) == Some(key.to_string().as_str())).then_some(t)
    })
}

/// Ends a key's validity window (key rotation, step two); records it signed before
/// `at` stay valid.
pub fn retire_key(
    text: &str,
    agency: &AgencyCode,
    key: &PublicKey,
    at: Timestamp,
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    let arr = array_of(t, "keys")?;
    let k = key_entry(arr, key)
        .ok_or_else(|| RosterEditError::Refused(format!("{key} is not a key of {agency}")))?;
    k.insert("valid_until", at.to_rfc3339().into());
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

/// Marks a key compromised: records it signed at or after `at` are refused.
pub fn revoke_key(
    text: &str,
    agency: &AgencyCode,
    key: &PublicKey,
    at: Timestamp,
    reason: &str,
    keep: &[RecordId],
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    if key_entry(array_of(t, "keys")?, key).is_none() {
        return Err(RosterEditError::Refused(format!(
            "{key} is not a key of {agency}"
        )));
    }
    if key_entry(array_of(t, "revoked")?, key).is_some() {
        return Err(RosterEditError::Refused(format!(
            "{key} of {agency} is already revoked (to keep more of its records: keep-records)"
        )));
    }
    let mut r = InlineTable::new();
    r.insert("key", key.to_string().into());
    r.insert("revoked_at", at.to_rfc3339().into());
    r.insert("reason", reason.into());
    if !keep.is_empty() {
        r.insert("keep", ids_array(keep).into());
    }
    array_of(t, "revoked")?.push(r);
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

fn ids_array(ids: &[RecordId]) -> Array {
    let mut sorted: Vec<String> = ids.iter().map(RecordId::to_hex).collect();
    sorted.sort();
    sorted.dedup();
    sorted.into_iter().collect()
}

/// Lists more records of a revoked key as known good (`keep`): nodes accept them as if
/// the key were still valid, also nodes that never saw them before the revocation.
pub fn keep_records(
    text: &str,
    agency: &AgencyCode,
    key: &PublicKey,
    ids: &[RecordId],
) -> Result<String, RosterEditError> {
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    let Some(r) = key_entry(array_of(t, "revoked")?, key) else {
        return Err(RosterEditError::Refused(format!(
            "{key} of {agency} is not revoked"
        )));
    };
    let mut all: Vec<RecordId> = ids.to_vec();
    if let Some(old) = r.get("keep").and_then(|v| v.as_array()) {
        for v in old {
            let id = v
                .as_str()
                .and_then(|s| RecordId::from_hex(s).ok())
                .ok_or_else(|| {
                    RosterEditError::Refused(format!("keep holds {v}, not a record id"))
                })?;
            all.push(id);
        }
    }
    r.insert("keep", ids_array(&all).into());
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

/// Adds a node PeerId to a member.
pub fn add_node(text: &str, agency: &AgencyCode, peer_id: &str) -> Result<String, RosterEditError> {
    parse_peer_id(peer_id).map_err(|e| RosterEditError::Refused(format!("{peer_id}: {e}")))?;
    let mut doc = parse(text)?;
    let t = member(&mut doc, agency)?;
    array_of(t, "node_ids")?.push(peer_id);
    let out = doc.to_string();
    validate(&out)?;
    Ok(out)
}

/// Bumps the version, stamps `issued_at`, validates and signs. Returns the new text
/// and its detached signature. Refuses a federation setting this build does not know;
/// does not look at cut-overs (samples and tests build federations with any dates):
/// `wlnode roster sign` uses [`sign_with`].
pub fn sign(
    text: &str,
    key: &SecretKey,
) -> Result<(String, RosterSignature, Roster), RosterEditError> {
    sign_inner(text, key, None)
}

/// [`sign`], and refuses a cut-over earlier than the new `issued_at` (now) that is not
/// carried unchanged from `opts.previous`, unless `opts.allow_past_cutover`
/// ([`past_cutovers`]).
pub fn sign_with(
    text: &str,
    key: &SecretKey,
    opts: &SignOptions<'_>,
) -> Result<(String, RosterSignature, Roster), RosterEditError> {
    sign_inner(text, key, Some(opts))
}

fn sign_inner(
    text: &str,
    key: &SecretKey,
    opts: Option<&SignOptions<'_>>,
) -> Result<(String, RosterSignature, Roster), RosterEditError> {
    let mut doc = parse(text)?;
    let next = next_version(&doc)?;
    doc.insert("version", value(next));
    doc.insert("issued_at", value(Timestamp::now().to_rfc3339()));
    let out = doc.to_string();
    let roster = Roster::parse(out.as_bytes())?;
    roster.refuse_unknown_settings()?;
    if let Some(previous) = opts.and_then(|o| o.previous)
        && previous.issued_at() > roster.issued_at()
    {
        return Err(RosterEditError::IssuedNotLater {
            previous: previous.version(),
            previous_at: previous.issued_at().to_rfc3339(),
            now: roster.issued_at().to_rfc3339(),
        });
    }
    if let Some(opts) = opts
        && !opts.allow_past_cutover
        && let Some(p) = past_cutovers(&roster, opts.previous).into_iter().next()
    {
        return Err(RosterEditError::PastCutover(p));
    }
    if !roster.authorities().any(|a| *a == key.public_key()) {
        return Err(RosterEditError::Refused(format!(
            "the key {} is not listed under [[authorities]] in this roster",
            key.public_key()
        )));
    }
    let sig = sign_roster(out.as_bytes(), key);
    Ok((out, sig, roster))
}

/// Below this (one day), `consultation_min_deadline_secs` is reported by
/// [`warnings`]: allowed (a demonstration federation shows an expiry by silence in
/// seconds), but an origin then has less than a working day to answer.
pub const MIN_DEADLINE_WARN_SECS: u64 = 86_400;

/// What `wlnode roster verify` and `show` warn about in a valid roster (warnings,
/// not errors: the roster is signed and in force as it is): members without a valid
/// encryption key at `now`, a shortest consultation deadline under one day,
/// federation settings this build does not understand (a later build's, ignored
/// here), and cut-overs before the roster's `issued_at` not carried unchanged from
/// `previous` ([`past_cutovers`]).
pub fn warnings(roster: &Roster, now: Timestamp, previous: Option<&Roster>) -> Vec<String> {
    warnings_of(roster, now, previous, true)
}

/// [`warnings`] without those about settings this build does not understand: for an
/// unsigned draft, where such a setting is reported as a likely typo instead (final
/// read of s36: `roster show` dropped them by their wording, which left the "more
/// settings" line in).
pub fn warnings_on_known_settings(
    roster: &Roster,
    now: Timestamp,
    previous: Option<&Roster>,
) -> Vec<String> {
    warnings_of(roster, now, previous, false)
}

fn warnings_of(
    roster: &Roster,
    now: Timestamp,
    previous: Option<&Roster>,
    unknown_settings: bool,
) -> Vec<String> {
    let mut out: Vec<String> = roster
        .members_without_encryption_key(now)
        .into_iter()
        .map(|a| format!("{a} has no valid encryption key and cannot receive sealed messages"))
        .collect();
    let min = roster.consultation_min_deadline_secs();
    if min < MIN_DEADLINE_WARN_SECS {
        out.push(format!(
            "federation_settings.consultation_min_deadline_secs = {min}: consultation deadlines \
             may be shorter than one day ({MIN_DEADLINE_WARN_SECS} s), which leaves an origin no \
             working day to answer; meant for demonstrations only"
        ));
    }
    // Bounded (review s35-roster L3); names are `[a-z0-9_]+` (`Roster::parse`).
    let (names, more) = if unknown_settings {
        roster.settings_not_understood_shown()
    } else {
        (Vec::new(), 0)
    };
    for name in names {
        out.push(format!(
            "federation_settings.{name} is not understood by this build: ignored here \
             (a later build's setting; `wlnode roster sign` of this build refuses it)"
        ));
    }
    if more > 0 {
        out.push(format!(
            "{more} more federation settings are not understood by this build"
        ));
    }
    out.extend(
        past_cutovers(roster, previous)
            .iter()
            .map(ToString::to_string),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wlnode_crypto::roster::{TrustAnchor, verify_roster};

    /// `wlnode roster verify` warns (does not refuse) when the shortest consultation
    /// deadline is under one day; one day or the default gives no such warning.
    #[test]
    fn a_minimum_deadline_under_one_day_is_a_warning() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let with = |secs: Option<u64>| {
            let text = match secs {
                Some(s) => {
                    format!("{base}\n[federation_settings]\nconsultation_min_deadline_secs = {s}\n")
                }
                None => base.clone(),
            };
            let (_, _, roster) = sign(&text, &auth).unwrap();
            warnings(&roster, Timestamp(1), None)
                .into_iter()
                .filter(|w| w.contains("consultation_min_deadline_secs"))
                .collect::<Vec<_>>()
        };
        let short = with(Some(5));
        assert_eq!(short.len(), 1, "{short:?}");
        assert!(
            short.first().is_some_and(|w| w.contains("= 5")),
            "{short:?}"
        );
        assert_eq!(with(Some(86_399)).len(), 1);
        assert!(with(Some(86_400)).is_empty());
        assert!(with(Some(30 * 86_400)).is_empty());
        assert!(with(None).is_empty(), "the default is one day");
    }

    /// Final read of s36: a draft whose `version` is the largest TOML integer has no
    /// next version; `sign` and `check_previous` say so with a typed error (`sign`
    /// added one unchecked: a panic in a debug build, a wrapped version in release).
    #[test]
    fn a_draft_at_the_largest_version_is_refused_not_overflowed() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let mut doc = parse(&base).unwrap();
        doc.insert("version", value(i64::MAX));
        let text = doc.to_string();
        assert!(matches!(
            sign(&text, &auth),
            Err(RosterEditError::VersionExhausted(i64::MAX))
        ));
        let (signed, sig, _) = sign(&base, &auth).unwrap();
        assert!(matches!(
            check_previous(&text, "prev.toml", signed.as_bytes(), &sig),
            Err(RosterEditError::VersionExhausted(i64::MAX))
        ));
        // One below: signed, at the largest version.
        doc.insert("version", value(i64::MAX - 1));
        let (_, _, r) = sign(&doc.to_string(), &auth).unwrap();
        assert_eq!(r.version(), i64::MAX as u64);
    }

    /// Issue 21, s35: the authority's side stays strict. A federation setting this
    /// build does not know (a typo) is refused by every edit and by `sign`, with a
    /// typed error naming it; `inspect` (`wlnode roster show`) lists it instead.
    #[test]
    fn the_authority_refuses_an_unknown_federation_setting_naming_it() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let typo = format!("{base}\n[federation_settings]\nconsultation_silense = \"objection\"\n");
        let named = |r: Result<_, RosterEditError>| match r {
            Err(RosterEditError::Invalid(RosterError::UnknownFederationSetting {
                field, ..
            })) => field,
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(
            named(sign(&typo, &auth).map(|_| ())),
            "consultation_silense"
        );
        assert_eq!(
            named(sign_with(&typo, &auth, &SignOptions::default()).map(|_| ())),
            "consultation_silense"
        );
        assert_eq!(named(validate(&typo).map(|_| ())), "consultation_silense");
        let member = NewMember::coded(
            "AA-EXPORT",
            Role::Member,
            SecretKey::generate().unwrap().public_key(),
            vec![],
            &["eu"],
            Timestamp(1),
        )
        .unwrap();
        assert_eq!(
            named(add_member(&typo, &member).map(|_| ())),
            "consultation_silense",
            "every edit validates its result"
        );
        let err = sign(&typo, &auth).err().unwrap().to_string();
        assert!(
            err.contains("federation_settings.consultation_silense"),
            "{err}"
        );
        let shown = inspect(&typo).unwrap();
        assert_eq!(shown.settings_not_understood(), ["consultation_silense"]);
        let w = warnings(&shown, Timestamp(1), None);
        assert!(
            w.iter()
                .any(|w| w.contains("consultation_silense is not understood by this build")),
            "{w:?}"
        );
        // Spelled right, it signs.
        let right = typo.replace("silense", "silence");
        let (_, _, r) = sign(&right, &auth).unwrap();
        assert!(r.settings_not_understood().is_empty());
    }

    /// Review s34-consult L4: `wlnode roster sign` refuses a cut-over earlier than the
    /// roster's `issued_at` (now) unless the previous version already had it (or an
    /// earlier one), or the authority allows it; `warnings` (`verify`) names it.
    #[test]
    fn a_past_cutover_is_refused_unless_carried_over_or_allowed() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let now = Timestamp::now().as_millis();
        let with = |field: &str, t: u64| format!("{base}\n[federation_settings]\n{field} = {t}\n");
        let past = now - 86_400_000;
        let strict = SignOptions::default();
        for field in [
            "mail_acks_required_since",
            "consult_receipts_required_since",
        ] {
            let text = with(field, past);
            match sign_with(&text, &auth, &strict) {
                Err(RosterEditError::PastCutover(p)) => {
                    assert_eq!(p.field, field);
                    assert_eq!(p.cutover, Timestamp(past));
                    assert!(!p.compared);
                }
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
            let err = sign_with(&text, &auth, &strict).err().unwrap().to_string();
            assert!(
                err.contains(field) && err.contains("--allow-past-cutover"),
                "{err}"
            );
            // Allowed: signed, and still reported.
            let allow = SignOptions {
                previous: None,
                allow_past_cutover: true,
            };
            let (_, _, r) = sign_with(&text, &auth, &allow).unwrap();
            assert_eq!(past_cutovers(&r, None).len(), 1);
            assert!(
                warnings(&r, Timestamp(now), None)
                    .iter()
                    .any(|w| w.contains(field) && w.contains("earlier than")),
            );
            // Carried unchanged from the version the nodes run: fine.
            let carried = SignOptions {
                previous: Some(&r),
                allow_past_cutover: false,
            };
            sign_with(&text, &auth, &carried).unwrap();
            assert!(warnings(&r, Timestamp(now), Some(&r)).is_empty());
            // Moved backwards, into the past: refused, naming the previous value.
            match sign_with(&with(field, past - 1_000), &auth, &carried) {
                Err(RosterEditError::PastCutover(p)) => {
                    assert_eq!(p.previous, Some(Timestamp(past)));
                    assert!(p.to_string().contains("moved backwards"), "{p}");
                }
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
            // Moved forward but still past: the rule applied from earlier already.
            sign_with(&with(field, past + 1_000), &auth, &carried).unwrap();
            // Newly set in the past although a previous version is given: refused.
            let (_, _, without) = sign(&base, &auth).unwrap();
            let previous = SignOptions {
                previous: Some(&without),
                allow_past_cutover: false,
            };
            match sign_with(&text, &auth, &previous) {
                Err(RosterEditError::PastCutover(p)) => {
                    assert!(p.compared && p.previous.is_none());
                    assert!(p.to_string().contains("new in this version"), "{p}");
                }
                other => panic!("{field}: {:?}", other.map(|_| ())),
            }
            // A future cut-over is what the authority should sign: no finding.
            let (_, _, r) = sign_with(&with(field, now + 86_400_000), &auth, &strict).unwrap();
            assert!(past_cutovers(&r, None).is_empty());
            // The library's plain `sign` (samples, tests) does not look at dates.
            sign(&text, &auth).unwrap();
        }
    }

    /// Review s35-roster L1: a cut-over less than [`CUTOVER_MARGIN_MS`] after the
    /// signing time counts as past (nodes load the roster by hand, later); one past
    /// the margin is fine.
    #[test]
    fn a_cutover_within_the_distribution_margin_counts_as_past() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let now = Timestamp::now().as_millis();
        let with = |t: u64| {
            format!("{base}\n[federation_settings]\nconsult_receipts_required_since = {t}\n")
        };
        let strict = SignOptions::default();
        match sign_with(&with(now + 60_000), &auth, &strict) {
            Err(RosterEditError::PastCutover(p)) => {
                assert_eq!(p.field, "consult_receipts_required_since");
                assert!(p.to_string().contains("margin of 60 min"), "{p}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let (_, _, r) = sign_with(&with(now + CUTOVER_MARGIN_MS + 600_000), &auth, &strict)
            .expect("a cut-over past the margin");
        assert!(past_cutovers(&r, None).is_empty());
    }

    /// Review s35-roster M2: the previous version `sign` compares with is a signed
    /// roster of this authority and federation, older than the one signed: not the
    /// draft itself (edited since its signature), not another federation's, not one
    /// of the same or a later version, not one signed by another key. The roster
    /// signed last is accepted.
    /// Review of s35-int, M1: a version is never signed with an `issued_at` before
    /// the previous version's (a signing clock behind), since the auditor
    /// dates versions by it.
    #[test]
    fn a_version_is_not_signed_before_the_previous_was_issued() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let (v1, _, _) = sign(&base, &auth).unwrap();
        // The previous version, issued a day ahead of this machine's clock.
        let mut doc = parse(&v1).unwrap();
        let ahead = Timestamp(Timestamp::now().as_millis() + 86_400_000);
        doc.insert("issued_at", value(ahead.to_rfc3339()));
        let future = Roster::parse(doc.to_string().as_bytes()).unwrap();
        let opts = SignOptions {
            previous: Some(&future),
            allow_past_cutover: true,
        };
        match sign_with(&v1, &auth, &opts) {
            Err(RosterEditError::IssuedNotLater { previous, .. }) => {
                assert_eq!(previous, 1);
            }
            other => panic!("{other:?}"),
        }
        // A previous issued before now: signed.
        let earlier = Roster::parse(v1.as_bytes()).unwrap();
        let opts = SignOptions {
            previous: Some(&earlier),
            allow_past_cutover: false,
        };
        let (_, _, r) = sign_with(&v1, &auth, &opts).unwrap();
        assert!(r.issued_at() >= earlier.issued_at());
    }

    #[test]
    fn only_an_older_signed_roster_of_the_federation_serves_as_previous() {
        let auth = SecretKey::generate().unwrap();
        let base = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let (v1, sig1, _) = sign(&base, &auth).unwrap();
        // Accepted: the roster signed last, as the next draft's previous.
        let draft = format!(
            "{v1}\n[federation_settings]\nconsult_receipts_required_since = 2026-01-01T00:00:00Z\n"
        );
        let prev = check_previous(&draft, "v1", v1.as_bytes(), &sig1).unwrap();
        assert_eq!(prev.version(), 1);
        // The draft itself, with the signature of what it was before the edit.
        match check_previous(&draft, "draft", draft.as_bytes(), &sig1) {
            Err(RosterEditError::PreviousNotSigned { path, source }) => {
                assert_eq!(path, "draft");
                assert_eq!(source, RosterError::BadSignature);
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Signed by a key the draft does not list as an authority.
        let other_key = SecretKey::generate().unwrap();
        let other_base = init("test fed", &other_key.public_key(), "Other").unwrap();
        let (o1, osig, _) = sign(&other_base, &other_key).unwrap();
        assert!(matches!(
            check_previous(&draft, "o", o1.as_bytes(), &osig),
            Err(RosterEditError::PreviousNotSigned {
                source: RosterError::UnknownAuthority { .. },
                ..
            })
        ));
        // Another federation of the same authority.
        let elsewhere = init("other fed", &auth.public_key(), "Regional body").unwrap();
        let (e1, esig, _) = sign(&elsewhere, &auth).unwrap();
        match check_previous(&draft, "e", e1.as_bytes(), &esig) {
            Err(RosterEditError::PreviousOtherFederation {
                previous, draft, ..
            }) => {
                assert_eq!(
                    (previous.as_str(), draft.as_str()),
                    ("other fed", "test fed")
                );
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // Not older: version 2 as the previous of a draft that becomes version 2.
        let (v2, sig2, _) = sign(&v1, &auth).unwrap();
        match check_previous(&v1, "v2", v2.as_bytes(), &sig2) {
            Err(RosterEditError::PreviousNotOlder {
                previous, signing, ..
            }) => assert_eq!((previous, signing), (2, 2)),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn init_add_sign_verify_rotate() {
        let auth = SecretKey::generate().unwrap();
        let k1 = SecretKey::generate().unwrap().public_key();
        let k2 = SecretKey::generate().unwrap().public_key();
        let node = SecretKey::generate().unwrap().public_key().peer_id();
        let text = init("test fed", &auth.public_key(), "Regional body").unwrap();
        let agency = AgencyCode::new("AA-EXPORT").unwrap();
        let text = add_member(
            &text,
            &NewMember {
                agency: agency.clone(),
                name: "AA \"export\" office".into(),
                country: CountryCode::new("AA").unwrap(),
                role: Role::Member,
                signing_key: k1,
                encryption_key: None,
                node_ids: vec![node.clone()],
                groups: vec!["eu".parse().unwrap()],
                valid_from: Timestamp(1),
            },
        )
        .unwrap();
        assert!(
            text.contains("# wlnode federation roster"),
            "comments are kept"
        );
        assert!(
            add_member(
                &text,
                &NewMember {
                    agency: agency.clone(),
                    name: "dup".into(),
                    country: CountryCode::new("AA").unwrap(),
                    role: Role::Member,
                    signing_key: k1,
                    encryption_key: None,
                    node_ids: vec![],
                    groups: vec![],
                    valid_from: Timestamp(1),
                }
            )
            .is_err()
        );
        let (signed, sig, roster) = sign(&text, &auth).unwrap();
        assert_eq!(roster.version(), 1);
        let r = verify_roster(signed.as_bytes(), &sig, &TrustAnchor::default()).unwrap();
        assert_eq!(r.agency_of_peer(&node).unwrap().agency, agency);
        // Rotation.
        let t = add_key(&signed, &agency, &k2, Timestamp(1000)).unwrap();
        let t = retire_key(&t, &agency, &k1, Timestamp(1000)).unwrap();
        let t = revoke_key(&t, &agency, &k1, Timestamp(500), "compromised", &[]).unwrap();
        assert!(revoke_key(&t, &agency, &k1, Timestamp(500), "again", &[]).is_err());
        let good = RecordId([7; 32]);
        let t = keep_records(&t, &agency, &k1, &[good, good]).unwrap();
        let t = keep_records(&t, &agency, &k1, &[RecordId([1; 32])]).unwrap();
        assert!(
            keep_records(&t, &agency, &k2, &[good]).is_err(),
            "not revoked"
        );
        let (t2, sig2, r2) = sign(&t, &auth).unwrap();
        assert_eq!(r2.version(), 2);
        verify_roster(t2.as_bytes(), &sig2, &TrustAnchor::after(&r)).unwrap();
        assert!(r2.check_signer(&agency, &k1, Timestamp(600)).is_err());
        assert!(r2.check_signer(&agency, &k1, Timestamp(400)).is_ok());
        assert!(r2.check_signer(&agency, &k2, Timestamp(1001)).is_ok());
        let kept = &r2.member(&agency).unwrap().revoked[0].keep;
        assert_eq!(
            kept.iter().copied().collect::<Vec<_>>(),
            [RecordId([1; 32]), good]
        );
        assert_eq!(
            r2.key_standing(&agency, &k1, &good),
            wlnode_crypto::roster::KeyStanding::Valid
        );
        assert_eq!(
            r2.key_standing(&agency, &k1, &RecordId([2; 32])),
            wlnode_crypto::roster::KeyStanding::Revoked
        );
        assert_eq!(
            r2.key_standing(&agency, &k2, &RecordId([2; 32])),
            wlnode_crypto::roster::KeyStanding::Valid
        );
        // A stranger cannot sign.
        assert!(sign(&t, &SecretKey::generate().unwrap()).is_err());
    }
}
