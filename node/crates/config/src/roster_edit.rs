//! Editing roster files for the roster authority (`wlnode roster ...`).
//!
//! Edits go through `toml_edit`, so comments and layout that the authority wrote are
//! kept; every edit is validated by parsing the result as a roster before it is
//! written. `sign` bumps the version, stamps `issued_at`, and signs the exact bytes.

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
}

fn parse(text: &str) -> Result<DocumentMut, RosterEditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| RosterEditError::Toml(e.to_string()))
}

/// Checks the roster as it would be once signed (version at least 1).
pub fn validate(text: &str) -> Result<Roster, RosterEditError> {
    let mut doc = parse(text)?;
    let v = doc.get("version").and_then(|v| v.as_integer()).unwrap_or(0);
    if v < 1 {
        doc.insert("version", value(1));
    }
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
/// and its detached signature.
pub fn sign(
    text: &str,
    key: &SecretKey,
) -> Result<(String, RosterSignature, Roster), RosterEditError> {
    let mut doc = parse(text)?;
    let v = doc.get("version").and_then(|v| v.as_integer()).unwrap_or(0);
    doc.insert("version", value(v + 1));
    doc.insert("issued_at", value(Timestamp::now().to_rfc3339()));
    let out = doc.to_string();
    let roster = Roster::parse(out.as_bytes())?;
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
/// encryption key at `now`, and a shortest consultation deadline under one day.
pub fn warnings(roster: &Roster, now: Timestamp) -> Vec<String> {
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
            warnings(&roster, Timestamp(1))
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
